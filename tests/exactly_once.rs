//! Exactly once under crashes: while two aggregations (one by the source key, one through a
//! repartition topic) consume a large topic, the server is killed with SIGKILL at random
//! moments and restarted. Afterwards the tables and the output topics must equal those of
//! an uninterrupted run: every key's sequence of updates is 1, 2, ..., n with the exact
//! running sums, with nothing lost or repeated.
//!
//! Size and rounds: `EDDY_EO_RECORDS` (default 1,000,000), `EDDY_EO_KILLS` (default 3),
//! `EDDY_EO_SEED` (default: the clock; printed so a failure can be replayed). The soak
//! command in the README runs many more kills.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::TestServer;
use serde_json::json;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// xorshift64*: a small deterministic generator for kill times.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

const KEYS: u64 = 1000;
const GROUPS: u64 = 7;

fn key_of(i: u64) -> String {
    format!("k{}", (i * 7919) % KEYS)
}

fn group_of(i: u64) -> String {
    format!("g{}", i % GROUPS)
}

async fn total(s: &TestServer, table: &str) -> i64 {
    let (status, body) = s.post("/query", json!({"ksql": format!("SELECT n FROM {table};")})).await;
    if status != 200 {
        return -1;
    }
    body.as_array().map(|a| a.iter().filter_map(|e| e["row"]["columns"][0].as_i64()).sum()).unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregations_are_exactly_once_across_repeated_kill9() {
    let records = env_or("EDDY_EO_RECORDS", 1_000_000);
    let kills = env_or("EDDY_EO_KILLS", 3);
    let seed = env_or("EDDY_EO_SEED", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64) | 1;
    eprintln!("exactly-once: {records} records, {kills} kills, EDDY_EO_SEED={seed}");
    let mut rng = Rng(seed);

    let mut s = TestServer::start();
    s.ksql_ok("CREATE STREAM src (k VARCHAR KEY, grp VARCHAR, v BIGINT) WITH (kafka_topic='src', value_format='JSON', partitions=3);").await;
    let start = Instant::now();
    let chunk = 20_000;
    let mut i = 0;
    while i < records {
        let end = (i + chunk).min(records);
        s.produce("src", (i..end).map(|i| json!({"key": key_of(i), "value": {"grp": group_of(i), "v": i}})).collect()).await;
        i = end;
    }
    eprintln!("produced in {:?}", start.elapsed());

    s.ksql_ok("CREATE TABLE by_key AS SELECT k, COUNT(*) AS n, SUM(v) AS total FROM src GROUP BY k;").await;
    s.ksql_ok("CREATE TABLE by_grp AS SELECT grp, COUNT(*) AS n, SUM(v) AS total FROM src GROUP BY grp;").await;
    let started = Instant::now();
    // Kill at random points spread over the run (a debug build aggregates ~25k records/s).
    let spread = (records / 40).clamp(500, 8000);
    for round in 0..kills {
        let wait = 300 + rng.next() % spread;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let done = (total(&s, "by_key").await, total(&s, "by_grp").await);
        eprintln!("round {round}: kill -9 after {wait} ms with {done:?} of {records} aggregated");
        s.kill9();
        s.restart();
    }
    let deadline = Instant::now() + Duration::from_secs(1200);
    loop {
        let done = (total(&s, "by_key").await, total(&s, "by_grp").await);
        if done == (records as i64, records as i64) {
            break;
        }
        assert!(Instant::now() < deadline, "aggregations did not finish: {done:?} of {records}");
        assert!(done.0 <= records as i64 && done.1 <= records as i64, "counted more records than exist: {done:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!("aggregated in {:?} including restarts", started.elapsed());

    // The uninterrupted run, computed here: per key the running count and sum.
    let mut expected: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    let mut group_totals: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for i in 0..records {
        let seq = expected.entry(key_of(i)).or_default();
        let (n, sum) = seq.last().copied().unwrap_or((0, 0));
        seq.push((n + 1, sum + i as i64));
        let g = group_totals.entry(group_of(i)).or_default();
        *g = (g.0 + 1, g.1 + i as i64);
    }

    // Tables.
    let rows = s.rows("SELECT k, n, total FROM by_key;").await;
    assert_eq!(rows.len(), expected.len());
    for r in &rows {
        let want = expected[r[0].as_str().unwrap()].last().copied().unwrap();
        assert_eq!((r[1].as_i64().unwrap(), r[2].as_i64().unwrap()), want, "row of {}", r[0]);
    }
    let rows = s.rows("SELECT grp, n, total FROM by_grp;").await;
    assert_eq!(rows.len(), group_totals.len());
    for r in &rows {
        assert_eq!((r[1].as_i64().unwrap(), r[2].as_i64().unwrap()), group_totals[r[0].as_str().unwrap()], "row of {}", r[0]);
    }

    // Output topics: each key's updates exactly as an uninterrupted run writes them.
    let mut got: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for (_, r) in s.read_topic("BY_KEY").await {
        got.entry(r["key"].as_str().unwrap().to_string()).or_default().push((r["value"]["N"].as_i64().unwrap(), r["value"]["TOTAL"].as_i64().unwrap()));
    }
    assert_eq!(got.len(), expected.len());
    for (k, want) in &expected {
        assert!(
            got[k] == *want,
            "updates of {k} differ from an uninterrupted run: {} written, {} expected; first difference at {:?}",
            got[k].len(),
            want.len(),
            got[k].iter().zip(want).position(|(a, b)| a != b)
        );
    }
    // Through the repartition topic records of different source partitions interleave,
    // so running sums depend on arrival order; counts still run 1..n and totals are exact.
    let mut grp: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for (_, r) in s.read_topic("BY_GRP").await {
        grp.entry(r["key"].as_str().unwrap().to_string()).or_default().push((r["value"]["N"].as_i64().unwrap(), r["value"]["TOTAL"].as_i64().unwrap()));
    }
    for (g, (n, sum)) in &group_totals {
        let seq = &grp[g];
        assert_eq!(seq.len() as i64, *n, "updates of {g}");
        assert!(seq.iter().enumerate().all(|(i, (c, _))| *c == i as i64 + 1), "counts of {g} must run 1..n");
        assert_eq!(seq.last().unwrap().1, *sum);
    }
}

/// Each order's expected tier: users are loaded before any order, so every order joins the
/// tier its user has at the end of loading.
fn tier_of(user: u64) -> String {
    format!("t{}", user % 5)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_are_exactly_once_across_repeated_kill9() {
    let records = env_or("EDDY_EO_JOIN_RECORDS", 400_000);
    let kills = env_or("EDDY_EO_KILLS", 2);
    let seed = env_or("EDDY_EO_SEED", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64) | 1;
    eprintln!("exactly-once join: {records} records, {kills} kills, EDDY_EO_SEED={seed}");
    let mut rng = Rng(seed);
    let users = 1000u64;
    let mut s = TestServer::start();
    s.ksql_ok("CREATE TABLE users (user_id VARCHAR PRIMARY KEY, tier VARCHAR) WITH (kafka_topic='users', value_format='JSON', partitions=3);").await;
    s.ksql_ok("CREATE STREAM orders (order_id VARCHAR KEY, user_id VARCHAR, amount BIGINT) WITH (kafka_topic='orders', value_format='JSON', partitions=3);")
        .await;
    s.produce("users", (0..users).map(|u| json!({"key": format!("u{u}"), "value": {"tier": tier_of(u)}, "timestamp": 1})).collect()).await;
    let chunk = 20_000;
    let mut i = 0;
    while i < records {
        let end = (i + chunk).min(records);
        s.produce(
            "orders",
            (i..end)
                .map(|i| json!({"key": format!("o{i}"), "value": {"user_id": format!("u{}", i % users), "amount": i}, "timestamp": 10 + i as i64}))
                .collect(),
        )
        .await;
        i = end;
    }
    // Keyed by order id: the join repartitions orders by user_id first.
    s.ksql_ok("CREATE STREAM enriched AS SELECT o.user_id, o.order_id, o.amount, u.tier FROM orders o JOIN users u ON o.user_id = u.user_id;").await;
    let count = async |s: &TestServer| -> usize {
        let (status, t) = s.get("/topics/ENRICHED").await;
        if status != 200 {
            return 0;
        }
        t["partitions"].as_array().map(|ps| ps.iter().filter_map(|p| p["logEndOffset"].as_i64()).sum::<i64>() as usize).unwrap_or(0)
    };
    // A debug build joins roughly 100k records/s: kill within the first seconds.
    let spread = (records / 200).clamp(300, 2000);
    for round in 0..kills {
        let wait = 100 + rng.next() % spread;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        eprintln!("round {round}: kill -9 after {wait} ms with {} of {records} joined", count(&s).await);
        s.kill9();
        s.restart();
    }
    let deadline = Instant::now() + Duration::from_secs(900);
    while count(&s).await < records as usize {
        assert!(Instant::now() < deadline, "the join did not finish: {} of {records}", count(&s).await);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Give a duplicate the chance to show up before checking there is none.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let out = s.read_topic("ENRICHED").await;
    assert_eq!(out.len(), records as usize, "one result per order, none repeated");
    let mut seen = vec![false; records as usize];
    for (_, r) in &out {
        let order: usize = r["value"]["ORDER_ID"].as_str().and_then(|o| o.strip_prefix('o')).and_then(|n| n.parse().ok()).expect("order id");
        assert!(!seen[order], "order {order} joined twice");
        seen[order] = true;
        let user = order as u64 % users;
        assert_eq!(r["key"].as_str(), Some(format!("u{user}").as_str()));
        assert_eq!(r["value"]["TIER"].as_str(), Some(tier_of(user).as_str()), "order {order}");
    }
}
