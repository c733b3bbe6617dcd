//! Tables as users reach them over REST: source tables with upserts and tombstones,
//! aggregations (by key and through a repartition topic), table aggregations that retract,
//! windows, pull queries, feature lookups, EXPLAIN, restart without replay, and the 400s
//! for statements that cannot run.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::TestServer;
use serde_json::{Value, json};

fn rows_by_first_column(rows: Vec<Vec<Value>>) -> BTreeMap<String, Vec<Value>> {
    rows.into_iter().map(|r| (r[0].as_str().map(str::to_string).unwrap_or_else(|| r[0].to_string()), r)).collect()
}

async fn explain_access(s: &TestServer, sql: &str) -> String {
    let body = s.ksql_ok(&format!("EXPLAIN {sql}")).await;
    body[0]["queryDescription"]["executionPlan"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn source_table_upserts_tombstones_and_pull_query_access_paths() {
    let s = TestServer::start();
    s.ksql_ok("CREATE TABLE users (id VARCHAR PRIMARY KEY, name VARCHAR, age INT) WITH (kafka_topic='users', value_format='JSON', partitions=2);").await;
    s.produce(
        "users",
        vec![
            json!({"key": "a", "value": {"name": "Ann", "age": 30}}),
            json!({"key": "b", "value": {"name": "Bob", "age": 40}}),
            json!({"key": "c", "value": {"name": "Cy", "age": 50}}),
            json!({"key": "a", "value": {"name": "Ann2", "age": 31}}),
            json!({"key": "b", "value": null}),
            json!({"key": "e", "value": {"name": "Eve", "age": 25}}),
        ],
    )
    .await;
    s.ksql_ok("INSERT INTO users (id, name, age) VALUES ('d', 'Dee', 22);").await;
    // The latest value per key wins and the tombstone deleted b.
    let expected: Vec<Vec<Value>> = vec![
        vec![json!("a"), json!("Ann2"), json!(31)],
        vec![json!("c"), json!("Cy"), json!(50)],
        vec![json!("d"), json!("Dee"), json!(22)],
        vec![json!("e"), json!("Eve"), json!(25)],
    ];
    s.wait_until("the table holds the latest row per key", async |s| s.rows("SELECT * FROM users;").await == expected).await;

    // Key lookups.
    assert_eq!(s.rows("SELECT * FROM users WHERE id = 'a';").await, vec![vec![json!("a"), json!("Ann2"), json!(31)]]);
    assert_eq!(s.rows("SELECT name FROM users WHERE id = 'b';").await, Vec::<Vec<Value>>::new());
    assert_eq!(s.rows("SELECT name FROM users WHERE id IN ('c', 'b', 'a');").await.len(), 2);
    // A range on the key, a scan with a predicate on a value column, ORDER BY and LIMIT.
    assert_eq!(s.rows("SELECT id FROM users WHERE id >= 'b' AND id < 'e';").await, vec![vec![json!("c")], vec![json!("d")]]);
    assert_eq!(
        s.rows("SELECT id, age FROM users WHERE age > 24 ORDER BY age DESC;").await,
        vec![vec![json!("c"), json!(50)], vec![json!("a"), json!(31)], vec![json!("e"), json!(25)]]
    );
    assert_eq!(s.rows("SELECT id FROM users ORDER BY age LIMIT 2;").await, vec![vec![json!("d")], vec![json!("e")]]);
    assert_eq!(s.rows("SELECT UCASE(name) AS n FROM users WHERE id = 'e';").await, vec![vec![json!("EVE")]]);

    // The header marks the key column, like ksqlDB's.
    let q = s.query("SELECT * FROM users WHERE id = 'a';").await;
    assert_eq!(q[0]["header"]["schema"], "`ID` STRING KEY, `NAME` STRING, `AGE` INTEGER");
    assert!(q.last().unwrap().get("finalMessage").is_none(), "pull queries end without a final message");

    // /query-stream answers pull queries too.
    let r = reqwest::Client::new()
        .post(format!("{}/query-stream", s.url))
        .json(&json!({"sql": "SELECT * FROM users WHERE id = 'c';"}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = r.lines().collect();
    assert_eq!(lines.len(), 2, "{r}");
    assert_eq!(serde_json::from_str::<Value>(lines[1]).unwrap(), json!(["c", "Cy", 50]));

    // EXPLAIN names the access path.
    assert!(explain_access(&s, "SELECT * FROM users WHERE id = 'a';").await.contains("KEY_LOOKUP"));
    assert!(explain_access(&s, "SELECT * FROM users WHERE id IN ('a', 'b');").await.contains("KEY_LOOKUP"));
    assert!(explain_access(&s, "SELECT * FROM users WHERE id > 'a';").await.contains("RANGE_SCAN"));
    assert!(explain_access(&s, "SELECT * FROM users WHERE age > 3;").await.contains("TABLE_SCAN"));

    // A later tombstone deletes a key that was already materialized.
    s.produce("users", vec![json!({"key": "a", "value": null})]).await;
    s.wait_until("the tombstone deletes a", async |s| s.rows("SELECT * FROM users;").await.len() == 3).await;
    let (status, body) = s.post("/features/users", json!({"keys": ["a", "c"]})).await;
    assert_eq!(status, 200);
    assert_eq!(body["results"][0], json!({"key": "a", "missing": true}));
    assert_eq!(body["results"][1]["row"], json!({"ID": "c", "NAME": "Cy", "AGE": 50}));
}

/// Pull queries that differ only in their key literals reuse one plan; every answer must
/// still be the one a fresh plan gives, and a catalog change must not serve an old plan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_queries_with_other_key_literals_answer_like_fresh_plans() {
    let s = TestServer::start();
    s.ksql_ok("CREATE TABLE kv (id VARCHAR PRIMARY KEY, n BIGINT) WITH (kafka_topic='kv', value_format='JSON', partitions=2);").await;
    let mut records: Vec<Value> = (0..40).map(|i| json!({"key": format!("k{i}"), "value": {"n": i}})).collect();
    records.push(json!({"key": "it's", "value": {"n": 100}}));
    s.produce("kv", records).await;
    s.wait_until("all keys are materialized", async |s| s.rows("SELECT * FROM kv;").await.len() == 41).await;

    for i in (0..40).rev() {
        assert_eq!(s.rows(&format!("SELECT * FROM kv WHERE id = 'k{i}';")).await, vec![vec![json!(format!("k{i}")), json!(i)]]);
        // The same shape with a different layout of whitespace and a value filter.
        assert_eq!(s.rows(&format!("SELECT n FROM kv\n WHERE id = 'k{i}' AND n >= 20;")).await.len(), usize::from(i >= 20), "k{i}");
    }
    assert_eq!(s.rows("SELECT n FROM kv WHERE id = 'it''s';").await, vec![vec![json!(100)]]);
    assert_eq!(s.rows("SELECT n FROM kv WHERE id = 'nope';").await, Vec::<Vec<Value>>::new());
    // IN lists of other lengths and values, duplicates included.
    assert_eq!(s.rows("SELECT n FROM kv WHERE id IN ('k1', 'k2');").await.len(), 2);
    let mut got: Vec<i64> = s.rows("SELECT n FROM kv WHERE id IN ('k5', 'k9');").await.iter().map(|r| r[0].as_i64().unwrap()).collect();
    got.sort();
    assert_eq!(got, vec![5, 9]);
    assert_eq!(s.rows("SELECT n FROM kv WHERE id IN ('k3', 'k4', 'k6');").await.len(), 3);
    // A different non-key literal is a different plan.
    assert_eq!(s.rows("SELECT n FROM kv WHERE id = 'k30' AND n >= 31;").await, Vec::<Vec<Value>>::new());
    // A key of the wrong type after good ones: still the planner's positioned 400.
    let (status, body) = s.post("/query", json!({"ksql": "SELECT * FROM kv WHERE id = 5;"})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("Cannot compare ID (STRING) to 5 (INTEGER)"), "{body}");

    // Recreated with other columns: the same statement shape must use the new table.
    s.ksql_ok("DROP TABLE kv DELETE TOPIC;").await;
    s.ksql_ok("CREATE TABLE kv (id VARCHAR PRIMARY KEY, label VARCHAR, n BIGINT) WITH (kafka_topic='kv2', value_format='JSON', partitions=1);").await;
    s.produce("kv2", vec![json!({"key": "k7", "value": {"label": "seven", "n": 7}})]).await;
    s.wait_until("the new table has its row", async |s| !s.rows("SELECT * FROM kv WHERE id = 'k7';").await.is_empty()).await;
    assert_eq!(s.rows("SELECT * FROM kv WHERE id = 'k7';").await, vec![vec![json!("k7"), json!("seven"), json!(7)]]);
    let q = s.query("SELECT * FROM kv WHERE id = 'k8';").await;
    assert_eq!(q[0]["header"]["schema"], "`ID` STRING KEY, `LABEL` STRING, `N` BIGINT");
}

/// Test data for aggregations: 60 page views over 4 users and 3 pages.
fn views() -> Vec<(String, String, Option<String>, i64, f64)> {
    (0..60)
        .map(|i: i64| {
            let referrer = (i % 5 != 0).then(|| format!("r{}", i % 2));
            (format!("u{}", i % 4), format!("p{}", i % 3), referrer, (i * 37) % 100, i as f64 / 2.0 + (i % 7) as f64)
        })
        .collect()
}

fn stddev_samp(xs: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
}

fn correlation(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let cov: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let vx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    let vy: f64 = ys.iter().map(|y| (y - my).powi(2)).sum();
    cov / (vx.sqrt() * vy.sqrt())
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-9 * b.abs().max(1.0))
}

#[tokio::test]
async fn group_by_aggregates_compute_every_function_per_key() {
    let s = TestServer::start();
    s.ksql_ok(
        "CREATE STREAM views (user_id VARCHAR KEY, page VARCHAR, referrer VARCHAR, dwell BIGINT, score DOUBLE) WITH (kafka_topic='views', \
        value_format='JSON', partitions=3);",
    )
    .await;
    let data = views();
    s.produce("views", data.iter().map(|(u, p, r, d, sc)| json!({"key": u, "value": {"page": p, "referrer": r, "dwell": d, "score": sc}})).collect()).await;
    s.ksql_ok(
        "CREATE TABLE by_user AS SELECT user_id, COUNT(*) AS n, COUNT(referrer) AS refs, SUM(dwell) AS total, AVG(dwell) AS avg_dwell, \
         MIN(dwell) AS lo, MAX(dwell) AS hi, LATEST_BY_OFFSET(page) AS last_page, EARLIEST_BY_OFFSET(page) AS first_page, \
         COLLECT_LIST(dwell) AS dwells, COLLECT_SET(page) AS pages, COUNT_DISTINCT(page) AS distinct_pages, TOPK(dwell, 2) AS top2, \
         TOPKDISTINCT(dwell, 2) AS top2d, HISTOGRAM(page) AS hist, STDDEV_SAMP(score) AS sd, CORRELATION(CAST(dwell AS DOUBLE), score) AS corr \
         FROM views GROUP BY user_id EMIT CHANGES;",
    )
    .await;
    s.ksql_ok("CREATE TABLE by_page AS SELECT page, COUNT(*) AS n, SUM(dwell) AS total FROM views GROUP BY page EMIT CHANGES;").await;
    s.wait_until("all views aggregated", async |s| s.rows("SELECT n FROM by_user;").await.iter().map(|r| r[0].as_i64().unwrap_or(0)).sum::<i64>() == 60).await;
    let got = rows_by_first_column(s.rows("SELECT * FROM by_user;").await);
    assert_eq!(got.len(), 4);
    for u in 0..4 {
        let user = format!("u{u}");
        let mine: Vec<_> = data.iter().filter(|r| r.0 == user).collect();
        let dwells: Vec<i64> = mine.iter().map(|r| r.3).collect();
        let pages: Vec<&str> = mine.iter().map(|r| r.1.as_str()).collect();
        let row = &got[&user];
        assert_eq!(row[1], json!(mine.len()), "{user} COUNT(*)");
        assert_eq!(row[2], json!(mine.iter().filter(|r| r.2.is_some()).count()), "{user} COUNT(referrer) skips nulls");
        assert_eq!(row[3], json!(dwells.iter().sum::<i64>()), "{user} SUM");
        assert!(close(&row[4], dwells.iter().sum::<i64>() as f64 / dwells.len() as f64), "{user} AVG {}", row[4]);
        assert_eq!(row[5], json!(dwells.iter().min().unwrap()), "{user} MIN");
        assert_eq!(row[6], json!(dwells.iter().max().unwrap()), "{user} MAX");
        assert_eq!(row[7], json!(pages.last().unwrap()), "{user} LATEST_BY_OFFSET");
        assert_eq!(row[8], json!(pages.first().unwrap()), "{user} EARLIEST_BY_OFFSET");
        assert_eq!(row[9], json!(dwells), "{user} COLLECT_LIST keeps arrival order");
        let set: BTreeSet<&str> = row[10].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(set, pages.iter().copied().collect::<BTreeSet<_>>(), "{user} COLLECT_SET");
        assert_eq!(row[10].as_array().unwrap().len(), set.len(), "{user} COLLECT_SET has no duplicates");
        assert_eq!(row[11], json!(set.len()), "{user} COUNT_DISTINCT");
        let mut sorted = dwells.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(row[12], json!(sorted[..2]), "{user} TOPK");
        sorted.dedup();
        assert_eq!(row[13], json!(sorted[..2]), "{user} TOPKDISTINCT");
        let mut hist: BTreeMap<&str, i64> = BTreeMap::new();
        for p in &pages {
            *hist.entry(p).or_default() += 1;
        }
        assert_eq!(row[14], json!(hist), "{user} HISTOGRAM");
        let scores: Vec<f64> = mine.iter().map(|r| r.4).collect();
        assert!(close(&row[15], stddev_samp(&scores)), "{user} STDDEV_SAMP {} vs {}", row[15], stddev_samp(&scores));
        let dw: Vec<f64> = dwells.iter().map(|d| *d as f64).collect();
        assert!(close(&row[16], correlation(&dw, &scores)), "{user} CORRELATION {} vs {}", row[16], correlation(&dw, &scores));
    }

    // GROUP BY a value column goes through a repartition topic; totals are exact.
    s.wait_until("pages aggregated", async |s| s.rows("SELECT n FROM by_page;").await.iter().map(|r| r[0].as_i64().unwrap_or(0)).sum::<i64>() == 60).await;
    let pages = rows_by_first_column(s.rows("SELECT * FROM by_page;").await);
    for p in 0..3 {
        let page = format!("p{p}");
        let mine: Vec<_> = data.iter().filter(|r| r.1 == page).collect();
        assert_eq!(pages[&page][1], json!(mine.len()));
        assert_eq!(pages[&page][2], json!(mine.iter().map(|r| r.3).sum::<i64>()));
    }
    assert!(explain_access(&s, "CREATE TABLE x AS SELECT page, COUNT(*) FROM views GROUP BY page;").await.contains("Repartition"));

    // The output topic holds one update per input record; the last per key is the row.
    let out = s.read_topic("BY_USER").await;
    assert_eq!(out.len(), 60, "EMIT CHANGES writes every update");
    let mut last: BTreeMap<String, Value> = BTreeMap::new();
    for (_, r) in &out {
        last.insert(r["key"].as_str().unwrap().to_string(), r["value"].clone());
    }
    for (user, row) in &got {
        assert_eq!(last[user]["N"], row[1]);
        assert_eq!(last[user]["TOTAL"], row[3]);
    }

    // Feature lookups: request order, missing keys, every column.
    let (status, body) = s.post("/features/by_user", json!({"keys": ["u2", "nobody", "u0"]})).await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["key"], "u2");
    assert_eq!(results[0]["row"]["USER_ID"], "u2");
    assert_eq!(results[0]["row"]["N"], got["u2"][1]);
    assert!(results[0]["rowtime"].as_i64().unwrap() > 0 && results[0]["updatedAt"].as_i64().unwrap() > 0);
    assert_eq!(results[1], json!({"key": "nobody", "missing": true}));
    assert_eq!(results[2]["row"]["TOTAL"], got["u0"][3]);
    let too_many: Vec<String> = (0..1001).map(|i| format!("k{i}")).collect();
    let (status, body) = s.post("/features/by_user", json!({"keys": too_many})).await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("at most 1000"), "{body}");
    let (status, _) = s.post("/features/no_such_table", json!({"keys": ["a"]})).await;
    assert_eq!(status, 404);
    let (status, body) = s.post("/features/views", json!({"keys": ["a"]})).await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("stream"), "{body}");
    let (status, body) = s.post("/features/by_user", json!({"keys": [17]})).await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("USER_ID"), "{body}");
    let (status, doc) = s.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["paths"]["/features/{table}"]["post"].is_object());
}

#[tokio::test]
async fn aggregating_a_table_retracts_old_values_and_having_deletes_rows() {
    let s = TestServer::start();
    s.ksql_ok("CREATE TABLE input (k VARCHAR PRIMARY KEY, id BIGINT, name VARCHAR) WITH (kafka_topic='input', value_format='JSON', partitions=1);").await;
    s.ksql_ok("CREATE TABLE counts AS SELECT id, COUNT(*) AS n, COLLECT_LIST(name) AS names FROM input GROUP BY id HAVING COUNT(*) > 0 EMIT CHANGES;").await;
    s.ksql_ok("CREATE TABLE all_counts AS SELECT id, COUNT(*) AS n FROM input GROUP BY id EMIT CHANGES;").await;
    s.produce(
        "input",
        vec![
            json!({"key": "1", "value": {"id": 3, "name": "a"}}),
            json!({"key": "2", "value": {"id": 3, "name": "b"}}),
            json!({"key": "1", "value": {"id": 4, "name": "a2"}}),
            json!({"key": "2", "value": null}),
        ],
    )
    .await;
    s.wait_until("the updates are aggregated", async |s| s.read_topic("COUNTS").await.len() == 5).await;
    // BIGINT keys in the KAFKA format are 8 big-endian bytes.
    let bigint_key = |k: &Value| -> String {
        let bytes: Vec<u8> = k.as_str().expect("key").chars().map(|c| c as u8).collect();
        i64::from_be_bytes(bytes.try_into().expect("8 bytes")).to_string()
    };
    let out: Vec<(String, Value)> = s.read_topic("COUNTS").await.into_iter().map(|(_, r)| (bigint_key(&r["key"]), r["value"]["N"].clone())).collect();
    // 3:1, 3:2, then key 1 moves: 3 retracts to 1 and 4 counts 1, then key 2 is deleted: 3 drops to 0 and HAVING deletes it.
    let expected: Vec<(String, Value)> =
        vec![("3".into(), json!(1)), ("3".into(), json!(2)), ("3".into(), json!(1)), ("4".into(), json!(1)), ("3".into(), Value::Null)];
    assert_eq!(out, expected);
    assert_eq!(s.rows("SELECT * FROM counts;").await, vec![vec![json!(4), json!(1), json!(["a2"])]]);
    // Without HAVING the emptied group stays with a count of 0, as in ksqlDB.
    s.wait_rows("SELECT * FROM all_counts WHERE n = 0;", 1).await;
    assert_eq!(s.rows("SELECT * FROM all_counts;").await, vec![vec![json!(3), json!(0)], vec![json!(4), json!(1)]]);
}

async fn describe_extended(s: &TestServer, name: &str) -> Value {
    s.ksql_ok(&format!("DESCRIBE {name} EXTENDED;")).await[0]["sourceDescription"].clone()
}

#[tokio::test]
async fn windowed_aggregations_tumbling_hopping_session_and_emit_final() {
    let s = TestServer::start();
    s.ksql_ok(
        "CREATE STREAM clicks (user_id VARCHAR KEY, page VARCHAR, ts BIGINT) WITH (kafka_topic='clicks', value_format='JSON', partitions=1, timestamp='ts');",
    )
    .await;
    for (stmt, name) in [
        (
            "CREATE TABLE per_minute AS SELECT page, COUNT(*) AS n FROM clicks WINDOW TUMBLING (SIZE 1 MINUTE, GRACE PERIOD 10 SECONDS) GROUP BY page \
                EMIT CHANGES;",
            "PER_MINUTE",
        ),
        (
            "CREATE TABLE per_minute_final AS SELECT page, COUNT(*) AS n FROM clicks WINDOW TUMBLING (SIZE 1 MINUTE, GRACE PERIOD 10 SECONDS) GROUP BY \
                page EMIT FINAL;",
            "PER_MINUTE_FINAL",
        ),
        (
            "CREATE TABLE hopping AS SELECT page, COUNT(*) AS n FROM clicks WINDOW HOPPING (SIZE 60 SECONDS, ADVANCE BY 30 SECONDS) GROUP BY page EMIT \
                CHANGES;",
            "HOPPING",
        ),
        ("CREATE TABLE sessions AS SELECT user_id, COUNT(*) AS n FROM clicks WINDOW SESSION (30 SECONDS) GROUP BY user_id EMIT CHANGES;", "SESSIONS"),
    ] {
        let body = s.ksql_ok(stmt).await;
        assert_eq!(body[0]["commandStatus"]["status"], "SUCCESS", "{name}: {body}");
    }
    let clicks = [
        ("u1", "home", 1000),
        ("u2", "home", 20000),
        ("u3", "about", 30000),
        ("u1", "home", 59000),
        ("u2", "home", 61000),
        ("u2", "home", 90000),
        ("u3", "home", 5000),
    ];
    let mut records: Vec<Value> = clicks.iter().map(|(u, p, ts)| json!({"key": u, "value": {"page": p, "ts": ts}})).collect();
    // A record whose timestamp column is null is counted and skipped.
    records.push(json!({"key": "u9", "value": {"page": "home", "ts": null}}));
    s.produce("clicks", records).await;
    s.wait_until("the late record is counted", async |s| {
        describe_extended(s, "per_minute").await["errorStats"].as_str().unwrap_or("").contains("late-records: 1")
    })
    .await;

    // Late records are counted while a batch is processed; its state commits just after.
    s.wait_rows("SELECT * FROM per_minute;", 3).await;
    let d = describe_extended(&s, "per_minute").await;
    assert_eq!(d["windowType"], "TUMBLING");
    assert!(d["errorStats"].as_str().unwrap().contains("failed-messages: 1"), "the null timestamp is counted: {}", d["errorStats"]);
    assert_eq!(
        s.rows("SELECT * FROM per_minute;").await,
        vec![
            vec![json!("about"), json!(0), json!(60000), json!(1)],
            vec![json!("home"), json!(0), json!(60000), json!(3)],
            vec![json!("home"), json!(60000), json!(120000), json!(2)]
        ],
        "the record at 5000 arrived after the window closed (grace 10 s) and was dropped"
    );
    assert_eq!(
        s.rows("SELECT * FROM per_minute WHERE page = 'home' AND WINDOWSTART >= '1970-01-01T00:01:00';").await,
        vec![vec![json!("home"), json!(60000), json!(120000), json!(2)]]
    );
    assert_eq!(s.rows("SELECT n FROM per_minute WHERE page = 'home' AND WINDOWEND <= 60000;").await, vec![vec![json!(3)]]);
    assert_eq!(s.rows("SELECT page FROM per_minute WHERE WINDOWSTART = 0 ORDER BY n DESC;").await, vec![vec![json!("home")], vec![json!("about")]]);

    // EMIT FINAL: one row per closed window and nothing for the open one.
    s.wait_until("both closed windows are emitted", async |s| s.read_topic("PER_MINUTE_FINAL").await.len() >= 2).await;
    s.wait_until("the other queries caught up", async |s| {
        let rows = s
            .rows("SELECT n FROM sessions;")
            .await
            .iter()
            .chain(s.rows("SELECT n FROM hopping WHERE WINDOWSTART = 90000;").await.iter())
            .map(|r| r[0].as_i64().unwrap_or(0))
            .sum::<i64>();
        rows == 7 + 1
    })
    .await;
    let fin = s.read_topic("PER_MINUTE_FINAL").await;
    let mut finals: Vec<i64> = fin.iter().map(|(_, r)| r["value"]["N"].as_i64().unwrap()).collect();
    finals.sort_unstable();
    assert_eq!(finals, vec![1, 3], "{fin:?}");
    assert_eq!(s.rows("SELECT page, n FROM per_minute_final;").await.len(), 2);

    assert_eq!(
        s.rows("SELECT WINDOWSTART, n FROM hopping WHERE page = 'home';").await,
        vec![vec![json!(0), json!(4)], vec![json!(30000), json!(2)], vec![json!(60000), json!(2)], vec![json!(90000), json!(1)]],
        "hopping windows start at 0 or later; without GRACE PERIOD the late record is accepted"
    );
    assert_eq!(
        s.rows("SELECT user_id, WINDOWSTART, WINDOWEND, n FROM sessions;").await,
        vec![
            vec![json!("u1"), json!(1000), json!(1000), json!(1)],
            vec![json!("u1"), json!(59000), json!(59000), json!(1)],
            vec![json!("u2"), json!(20000), json!(20000), json!(1)],
            vec![json!("u2"), json!(61000), json!(90000), json!(2)],
            vec![json!("u3"), json!(5000), json!(30000), json!(2)],
        ],
        "sessions split on 30 s of inactivity and merge when a record bridges them"
    );
    let tables = s.ksql_ok("SHOW TABLES;").await;
    let windowed: BTreeMap<String, bool> =
        tables[0]["tables"].as_array().unwrap().iter().map(|t| (t["name"].as_str().unwrap().to_string(), t["isWindowed"].as_bool().unwrap())).collect();
    assert!(windowed["SESSIONS"]);
    let (status, body) = s.post("/features/per_minute", json!({"keys": ["home"]})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("windowed"));
}

#[tokio::test]
async fn statements_that_cannot_run_are_400s_that_say_what_is_allowed() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM views (user_id VARCHAR KEY, page VARCHAR, dwell BIGINT) WITH (kafka_topic='views', value_format='JSON', partitions=1);").await;
    s.ksql_ok("CREATE TABLE by_user AS SELECT user_id, COUNT(*) AS n FROM views GROUP BY user_id;").await;
    for (sql, needle) in [
        ("CREATE TABLE t1 AS SELECT user_id, SUM(nope) AS s FROM views GROUP BY user_id;", "NOPE"),
        ("CREATE TABLE t2 AS SELECT user_id, page, COUNT(*) AS n FROM views GROUP BY user_id;", "GROUP BY"),
        ("CREATE TABLE t3 AS SELECT user_id, COUNT(*) AS n FROM views GROUP BY user_id EMIT FINAL;", "window"),
        ("CREATE TABLE t4 AS SELECT page, COUNT(*) AS n FROM views WHERE COUNT(*) > 1 GROUP BY page;", "HAVING"),
        ("CREATE STREAM t5 AS SELECT user_id, COUNT(*) AS n FROM views GROUP BY user_id;", "CREATE TABLE"),
    ] {
        let (status, body) = s.ksql(sql).await;
        assert_eq!(status, 400, "{sql}: {body}");
        let m = body["message"].as_str().unwrap_or_default();
        assert!(m.contains(needle), "{sql}: message {m:?} should mention {needle}");
    }
    for (sql, needle) in [
        ("SELECT * FROM by_user WHERE user_id = 1;", "STRING"),
        ("SELECT user_id, COUNT(*) FROM by_user GROUP BY user_id;", "Pull queries don't support GROUP BY clauses"),
        ("SELECT *, ROWOFFSET FROM by_user;", "Pull queries don't support the following columns in SELECT clauses: `ROWOFFSET`"),
        ("SELECT * FROM by_user WHERE user_id = NULL;", "Comparison with NULL not supported"),
        ("SELECT * FROM by_user WHERE n > 'x';", "Cannot compare N (BIGINT) to 'x' (STRING) with GREATER_THAN"),
        ("SELECT * FROM by_user WHERE WINDOWSTART > 0;", "windowed"),
        ("SELECT * FROM by_user WHERE nope = 1;", "NOPE"),
    ] {
        let (status, body) = s.post("/query", json!({"ksql": sql})).await;
        assert_eq!(status, 400, "{sql}: {body}");
        let m = body["message"].as_str().unwrap_or_default();
        assert!(m.contains(needle), "{sql}: message {m:?} should mention {needle}");
    }
    // A record with a null key is counted and skipped; the query keeps running.
    s.produce("views", vec![json!({"key": null, "value": {"page": "x", "dwell": 1}}), json!({"key": "u1", "value": {"page": "y", "dwell": 2}})]).await;
    s.wait_rows("SELECT * FROM by_user;", 1).await;
    let d = describe_extended(&s, "by_user").await;
    assert!(d["errorStats"].as_str().unwrap().contains("failed-messages: 1"), "{}", d["errorStats"]);
}

#[tokio::test]
async fn pull_queries_with_table_scans_disabled_must_look_keys_up() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM views (user_id VARCHAR KEY, page VARCHAR) WITH (kafka_topic='views', value_format='JSON', partitions=1);").await;
    s.ksql_ok("CREATE TABLE by_user AS SELECT user_id, COUNT(*) AS n FROM views GROUP BY user_id;").await;
    s.produce("views", vec![json!({"key": "a", "value": {"page": "x"}}), json!({"key": "b", "value": {"page": "y"}})]).await;
    s.wait_rows("SELECT * FROM by_user;", 2).await;
    let no_scans = json!({"ksql.query.pull.table.scan.enabled": false});
    let query = |sql: &str| json!({"ksql": sql, "streamsProperties": no_scans});
    // Key lookups and a range of the STRING key still run.
    let (status, body) = s.post("/query", query("SELECT * FROM by_user WHERE user_id = 'a';")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[1]["row"]["columns"], json!(["a", 1]));
    let (status, body) = s.post("/query", query("SELECT * FROM by_user WHERE user_id > 'a';")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[1]["row"]["columns"], json!(["b", 1]));
    for (sql, needle) in [
        ("SELECT * FROM by_user WHERE n = 1;", "WHERE clause missing key column for disjunct: (N = 1)"),
        ("SELECT * FROM by_user WHERE user_id != 'a';", "must currently be '='"),
        ("SELECT * FROM by_user WHERE user_id = 'a' OR user_id > 'b';", "Query requires table scan to be enabled"),
        ("SELECT * FROM by_user;", "Query requires table scan to be enabled"),
    ] {
        let (status, body) = s.post("/query", query(sql)).await;
        assert_eq!(status, 400, "{sql}: {body}");
        let m = body["message"].as_str().unwrap_or_default();
        assert!(m.contains(needle), "{sql}: message {m:?} should contain {needle:?}");
    }
    // The same scan runs when scans are allowed (the default).
    assert_eq!(s.rows("SELECT * FROM by_user WHERE n = 1;").await.len(), 2);
}

#[tokio::test]
async fn windowed_source_declared_over_a_windowed_result_keeps_each_records_window() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM clicks (page VARCHAR KEY, n INT) WITH (kafka_topic='clicks', value_format='JSON', partitions=1);").await;
    s.ksql_ok("CREATE TABLE per_second AS SELECT page, COUNT(*) AS c FROM clicks WINDOW TUMBLING (SIZE 1 SECOND) GROUP BY page;").await;
    // The aggregate's topic read back as a windowed stream.
    s.ksql_ok(
        "CREATE STREAM counts (page VARCHAR KEY, c BIGINT) WITH (kafka_topic='PER_SECOND', value_format='JSON', window_type='Tumbling', \
        window_size='1 second');",
    )
    .await;
    s.ksql_ok("CREATE STREAM later AS SELECT page, c FROM counts WHERE WINDOWSTART >= 2000;").await;
    s.produce(
        "clicks",
        vec![
            json!({"key": "home", "value": {"n": 1}, "timestamp": 1500}),
            json!({"key": "home", "value": {"n": 1}, "timestamp": 2500}),
            json!({"key": "home", "value": {"n": 1}, "timestamp": 2600}),
        ],
    )
    .await;
    // A push query lists the window bounds after the key.
    let q = s.query("SELECT * FROM counts EMIT CHANGES LIMIT 3;").await;
    assert_eq!(q[0]["header"]["schema"], "`PAGE` STRING, `WINDOWSTART` BIGINT, `WINDOWEND` BIGINT, `C` BIGINT");
    let rows: Vec<&Value> = q.iter().filter_map(|r| r.get("row")).map(|r| &r["columns"]).collect();
    assert_eq!(rows, vec![&json!(["home", 1000, 2000, 1]), &json!(["home", 2000, 3000, 1]), &json!(["home", 2000, 3000, 2])]);
    // The CSAS keeps the records of windows from 2000 on, each still keyed by its window.
    s.wait_until("two later records", async |s| s.read_topic("LATER").await.len() == 2).await;
    let later = s.query("SELECT WINDOWSTART, WINDOWEND, c FROM later EMIT CHANGES LIMIT 2;").await;
    let rows: Vec<&Value> = later.iter().filter_map(|r| r.get("row")).map(|r| &r["columns"]).collect();
    assert_eq!(rows, vec![&json!([2000, 3000, 1]), &json!([2000, 3000, 2])]);
    // Windowed sources must be declared completely, and cannot be re-keyed.
    let (status, body) =
        s.ksql("CREATE STREAM bad (page VARCHAR KEY, c BIGINT) WITH (kafka_topic='PER_SECOND', value_format='JSON', window_type='tumbling');").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("WINDOW_SIZE"), "{body}");
    let (status, body) = s.ksql("CREATE STREAM rekeyed AS SELECT * FROM counts PARTITION BY c;").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("Implicit repartitioning of windowed sources is not supported"), "{body}");
}

#[tokio::test]
async fn push_queries_stream_table_changes_and_aggregate_until_their_limit() {
    let s = TestServer::start();
    s.ksql_ok("CREATE TABLE users (id INT PRIMARY KEY, name VARCHAR) WITH (kafka_topic='users', format='JSON', partitions=1);").await;
    s.ksql_ok("CREATE STREAM views (user_id INT KEY, page VARCHAR) WITH (kafka_topic='views', format='JSON', partitions=1);").await;
    s.produce("users", vec![json!({"key": 1, "value": {"name": "ann"}}), json!({"key": 1, "value": null}), json!({"key": 2, "value": {"name": "bo"}})]).await;
    // A table's changes, with the delete as a tombstone row.
    let q = s.query("SELECT * FROM users EMIT CHANGES LIMIT 3;").await;
    assert_eq!(q[0]["header"]["schema"], "`ID` INTEGER, `NAME` STRING");
    assert_eq!(q[1]["row"], json!({"columns": [1, "ann"]}));
    assert_eq!(q[2]["row"], json!({"columns": [1, null], "tombstone": true}));
    assert_eq!(q[3]["row"], json!({"columns": [2, "bo"]}));
    assert_eq!(q[4]["finalMessage"], "Limit Reached");

    // Aggregating push queries: every update, grouped or not, key selected or not.
    s.produce("views", vec![json!({"key": 1, "value": {"page": "a"}}), json!({"key": 2, "value": {"page": "a"}}), json!({"key": 1, "value": {"page": "b"}})])
        .await;
    let rows = s.rows("SELECT page, COUNT(*) AS n FROM views GROUP BY page EMIT CHANGES LIMIT 3;").await;
    assert_eq!(rows, vec![vec![json!("a"), json!(1)], vec![json!("a"), json!(2)], vec![json!("b"), json!(1)]]);
    assert_eq!(s.rows("SELECT COUNT(*) AS n FROM views GROUP BY page EMIT CHANGES LIMIT 2;").await, vec![vec![json!(1)], vec![json!(2)]]);
    assert_eq!(s.rows("SELECT COUNT(*) AS n FROM views EMIT CHANGES LIMIT 3;").await, vec![vec![json!(1)], vec![json!(2)], vec![json!(3)]]);
    let q = s.query("SELECT WINDOWSTART, user_id, COUNT(*) AS n FROM views WINDOW TUMBLING (SIZE 1 HOUR) GROUP BY user_id EMIT CHANGES LIMIT 1;").await;
    assert_eq!(q[0]["header"]["schema"], "`WINDOWSTART` BIGINT, `USER_ID` INTEGER, `N` BIGINT");
    // The private aggregations end with their queries: only the two sources' topics remain.
    s.wait_until("the push queries' topics are removed", async |s| {
        let (_, topics) = s.get("/topics").await;
        topics["topics"].as_array().map(|t| t.iter().filter(|t| t["name"].as_str().is_some_and(|n| n.to_uppercase().contains("TRANSIENT_AGG"))).count())
            == Some(0)
    })
    .await;
}

#[tokio::test]
async fn restart_resumes_aggregations_from_committed_offsets_without_replay() {
    let mut s = TestServer::start();
    s.ksql_ok("CREATE STREAM views (user_id VARCHAR KEY, page VARCHAR, dwell BIGINT) WITH (kafka_topic='views', value_format='JSON', partitions=2);").await;
    s.ksql_ok("CREATE TABLE by_user AS SELECT user_id, COUNT(*) AS n, SUM(dwell) AS total FROM views GROUP BY user_id;").await;
    s.ksql_ok("CREATE TABLE by_page AS SELECT page, COUNT(*) AS n FROM views GROUP BY page;").await;
    let batch =
        |from: i64| (from..from + 40).map(|i| json!({"key": format!("u{}", i % 5), "value": {"page": format!("p{}", i % 2), "dwell": i}})).collect::<Vec<_>>();
    s.produce("views", batch(0)).await;
    let total = async |s: &TestServer, t: &str| s.rows(&format!("SELECT n FROM {t};")).await.iter().map(|r| r[0].as_i64().unwrap_or(0)).sum::<i64>();
    s.wait_until("the first batch", async |s| total(s, "by_user").await == 40 && total(s, "by_page").await == 40).await;
    assert!(s.stop(), "clean shutdown");
    s.restart();
    // Rows are served from RocksDB right after the restart.
    assert_eq!(total(&s, "by_user").await, 40);
    s.produce("views", batch(40)).await;
    s.wait_until("the second batch", async |s| total(s, "by_user").await == 80 && total(s, "by_page").await == 80).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(total(&s, "by_user").await, 80, "nothing was counted twice");
    assert_eq!(s.read_topic("BY_USER").await.len(), 80, "no update was written twice");
    let sums: i64 = s.rows("SELECT total FROM by_user;").await.iter().map(|r| r[0].as_i64().unwrap()).sum();
    assert_eq!(sums, (0..80).sum::<i64>());
}

#[tokio::test]
async fn table_projections_keep_the_key_turn_deletes_and_filtered_rows_into_tombstones_and_are_queryable() {
    let s = TestServer::start();
    s.ksql_ok("CREATE TABLE users (id VARCHAR PRIMARY KEY, name VARCHAR, age INT) WITH (kafka_topic='users', value_format='JSON', partitions=2);").await;
    let body = s.ksql_ok("CREATE TABLE adults AS SELECT id, UCASE(name) AS name FROM users WHERE age >= 18;").await;
    assert_eq!(body[0]["commandStatus"]["status"], "SUCCESS", "{body}");
    for (sql, needle) in [
        ("CREATE STREAM s AS SELECT id, name FROM users;", "CREATE TABLE AS SELECT"),
        ("CREATE TABLE no_key AS SELECT name FROM users;", "must include the key column ID in its projection"),
    ] {
        let (status, body) = s.ksql(sql).await;
        assert_eq!(status, 400, "{sql}: {body}");
        assert!(body["message"].as_str().unwrap_or_default().contains(needle), "{sql}: {body}");
    }
    s.produce(
        "users",
        vec![
            json!({"key": "a", "value": {"name": "Ann", "age": 30}}),
            json!({"key": "b", "value": {"name": "Bob", "age": 12}}),
            json!({"key": "c", "value": {"name": "Cy", "age": 40}}),
        ],
    )
    .await;
    s.wait_rows("SELECT * FROM adults;", 2).await;
    // Ann turns out to be 17 (filtered out), Cy is deleted, Bob grows up.
    s.produce(
        "users",
        vec![
            json!({"key": "a", "value": {"name": "Ann", "age": 17}}),
            json!({"key": "c", "value": null}),
            json!({"key": "b", "value": {"name": "Bob", "age": 18}}),
        ],
    )
    .await;
    s.wait_until("only Bob is an adult", async |s| s.rows("SELECT id, name FROM adults;").await == vec![vec![json!("b"), json!("BOB")]]).await;
    let changelog: Vec<(String, Value)> =
        s.read_topic("ADULTS").await.into_iter().map(|(_, r)| (r["key"].as_str().unwrap_or_default().to_string(), r["value"].clone())).collect();
    for k in ["a", "c"] {
        assert!(changelog.iter().any(|(key, v)| key == k && v.is_null()), "{k} leaves the result with a tombstone: {changelog:?}");
    }
}

#[tokio::test]
async fn lookups_on_many_keep_alive_connections_spread_over_http_threads_each_get_their_own_row() {
    let mut s = TestServer::start_with(&["--http-threads", "3"]);
    s.ksql_ok("CREATE TABLE users (id VARCHAR PRIMARY KEY, n BIGINT) WITH (kafka_topic='users', value_format='JSON', partitions=2);").await;
    s.produce("users", (0..200).map(|i| json!({"key": format!("u{i}"), "value": {"n": i}})).collect()).await;
    s.wait_rows("SELECT * FROM users;", 200).await;
    // Twelve clients, each with its own keep-alive connection, interleaving pull queries and
    // feature lookups; connections are handed to the three threads in turn.
    let mut tasks = Vec::new();
    for c in 0..12i64 {
        let url = s.url.clone();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().expect("client");
            for j in 0..25i64 {
                let i = (c * 25 + j) % 200;
                let sql = format!("SELECT * FROM users WHERE id = 'u{i}';");
                let body: Value = client.post(format!("{url}/query")).json(&json!({"ksql": sql})).send().await.expect("query").json().await.expect("json");
                assert_eq!(body[1]["row"]["columns"], json!([format!("u{i}"), i]), "{sql}: {body}");
                let body: Value = client
                    .post(format!("{url}/features/users"))
                    .json(&json!({"keys": [format!("u{i}"), "nope"]}))
                    .send()
                    .await
                    .expect("lookup")
                    .json()
                    .await
                    .expect("json");
                assert_eq!(body["results"][0]["row"]["N"], json!(i), "{body}");
                assert_eq!(body["results"][1]["missing"], json!(true), "{body}");
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    // A push query still streaming when the server is told to stop does not keep it up.
    let push =
        reqwest::Client::new().post(format!("{}/query", s.url)).json(&json!({"ksql": "SELECT * FROM users EMIT CHANGES;"})).send().await.expect("push query");
    assert_eq!(push.status().as_u16(), 200);
    let started = std::time::Instant::now();
    assert!(s.stop(), "clean shutdown with a push query open");
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "shutdown took {:?}", started.elapsed());
    drop(push);
}

/// Lookups read rows from memory once read; every update of the table must still show in
/// the next lookup, for keys already read and for keys first looked up while missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_follow_a_table_as_it_changes() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM clicks (user_id VARCHAR KEY, page VARCHAR) WITH (kafka_topic='clicks', value_format='JSON', partitions=2);").await;
    s.ksql_ok("CREATE TABLE clicks_per_user AS SELECT user_id, COUNT(*) AS n, LATEST_BY_OFFSET(page) AS last_page FROM clicks GROUP BY user_id EMIT CHANGES;")
        .await;
    let feature = async |s: &TestServer, user: &str| -> Value {
        let (status, body) = s.post("/features/clicks_per_user", json!({"keys": [user]})).await;
        assert_eq!(status, 200, "{body}");
        body["results"][0].clone()
    };
    assert_eq!(feature(&s, "late").await, json!({"key": "late", "missing": true}));
    for round in 1..=12i64 {
        let page = format!("p{round}");
        s.produce("clicks", vec![json!({"key": "u1", "value": {"page": page}})]).await;
        s.wait_until(&format!("round {round} shows in the feature lookup"), async |s| {
            feature(s, "u1").await["row"] == json!({"USER_ID": "u1", "N": round, "LAST_PAGE": page})
        })
        .await;
        assert_eq!(s.rows("SELECT n, last_page FROM clicks_per_user WHERE user_id = 'u1';").await, vec![vec![json!(round), json!(page)]]);
    }
    s.produce("clicks", vec![json!({"key": "late", "value": {"page": "x"}})]).await;
    s.wait_until("a key first looked up while missing shows once written", async |s| feature(s, "late").await["row"]["N"] == json!(1)).await;
    assert_eq!(s.rows("SELECT n FROM clicks_per_user WHERE user_id IN ('late', 'u1');").await.len(), 2);
    // DESCRIBE EXTENDED says how lookups were served.
    let stats = describe_extended(&s, "clicks_per_user").await["statistics"].as_str().unwrap_or("").to_string();
    let looked_up: u64 = stats
        .split("key-lookups: ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no key-lookups in {stats}"));
    assert!(looked_up >= 27, "{stats}");
    assert!(stats.contains("from-memory: ") && stats.contains("rows-in-memory: 2"), "{stats}");
}

#[tokio::test]
async fn collect_list_and_collect_set_keep_at_most_their_configured_number_of_values() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM vals (id INT KEY, v INT) WITH (kafka_topic='vals', format='JSON', partitions=1);").await;
    let props = json!({"auto.offset.reset": "earliest", "ksql.functions.collect_list.limit": "2", "ksql.functions.collect_set.limit": "1"});
    let (status, body) = s.ksql_with("CREATE TABLE collected AS SELECT id, COLLECT_LIST(v) AS l, COLLECT_SET(v) AS st FROM vals GROUP BY id;", props).await;
    assert_eq!(status, 200, "{body}");
    s.produce("vals", (0..5).map(|i| json!({"key": 1, "value": {"V": i}})).collect()).await;
    s.wait_until("the limited lists", async |s| s.rows("SELECT l, st FROM collected WHERE id = 1;").await == vec![vec![json!([0, 1]), json!([0])]]).await;
    // Maps with the same entries in another order are the same value to COLLECT_SET.
    s.ksql_ok("CREATE STREAM maps (id INT KEY, m MAP<STRING, INT>) WITH (kafka_topic='maps', format='JSON', partitions=1);").await;
    s.ksql_with("CREATE TABLE map_set AS SELECT id, COLLECT_SET(m) AS ms FROM maps GROUP BY id;", json!({"auto.offset.reset": "earliest"})).await;
    let m = |v: Value| json!({"key": 1, "value": {"M": v}});
    s.produce("maps", vec![m(json!({"a": 1, "b": 2})), m(json!({"b": 2, "a": 1})), m(json!({"c": 3}))]).await;
    let expected = vec![vec![json!([{"a": 1, "b": 2}, {"c": 3}])]];
    s.wait_until("two maps in the set", async |s| s.rows("SELECT ms FROM map_set WHERE id = 1;").await == expected).await;
    // The server's default, as ksqlDB's: 1000 values.
    s.ksql_ok("CREATE TABLE collected_all AS SELECT id, COLLECT_LIST(v) AS l FROM vals GROUP BY id;").await;
    s.produce("vals", (0..1005).map(|i| json!({"key": 2, "value": {"V": i}})).collect()).await;
    s.wait_until("a thousand values", async |s| {
        s.rows("SELECT l FROM collected_all WHERE id = 2;").await.first().and_then(|r| r[0].as_array().map(Vec::len)) == Some(1000)
    })
    .await;
}

#[tokio::test]
async fn a_closed_session_takes_no_more_records_and_a_late_record_is_dropped() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM visits (user_id STRING KEY, page STRING) WITH (kafka_topic='visits', value_format='JSON', partitions=1);").await;
    let sql = "CREATE TABLE visit_sessions AS SELECT user_id, COUNT(*) AS n FROM visits \
               WINDOW SESSION (30 SECONDS, GRACE PERIOD 60 SECONDS) GROUP BY user_id;";
    s.ksql_with(sql, json!({"auto.offset.reset": "earliest"})).await;
    // Stream time reaches 100010: sessions ending before 10010 (= 100010 - 30 s gap - 60 s
    // grace) are closed. The record at 10009 would join the closed session [0, 0]: it is
    // late and dropped. The one at 10010 starts a session of its own.
    let at = |t: i64| json!({"key": "u", "value": {"PAGE": "p"}, "timestamp": t});
    s.produce("visits", vec![at(0), at(100_010), at(10_009), at(10_010)]).await;
    // One row per session, each of one visit, stamped with the session's end.
    s.wait_until("three sessions", async |s| s.read_topic("VISIT_SESSIONS").await.len() >= 3).await;
    let out = s.read_topic("VISIT_SESSIONS").await;
    let mut sessions: Vec<(i64, Value)> = out.iter().map(|(_, r)| (r["timestamp"].as_i64().unwrap_or(-1), r["value"]["N"].clone())).collect();
    sessions.sort_by_key(|(t, _)| *t);
    assert_eq!(sessions, vec![(0, json!(1)), (10_010, json!(1)), (100_010, json!(1))], "{out:?}");
    let described = s.ksql_ok("DESCRIBE visit_sessions EXTENDED;").await;
    let errors = described[0]["sourceDescription"]["errorStats"].as_str().unwrap_or_default().to_string();
    assert!(errors.contains("late-records: 1"), "{errors}");
}
