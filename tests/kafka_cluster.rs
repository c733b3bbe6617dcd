//! `eddy server --kafka-bootstrap`: an Eddy server whose topics are those of a Kafka
//! cluster. The "cluster" here is a real Kafka-protocol broker on loopback: another Eddy in
//! embedded mode, reached only through its Kafka listener; what the broker holds is read
//! back through its own REST API.

mod common;

use std::collections::BTreeMap;

use common::TestServer;
use serde_json::{Value, json};

/// A server whose topics are on `broker`.
fn on_cluster(broker: &TestServer) -> TestServer {
    TestServer::start_with(&["--kafka-bootstrap", &broker.kafka])
}

fn topic_names(shown: &Value) -> Vec<String> {
    shown[0]["topics"].as_array().map(|ts| ts.iter().filter_map(|t| t["name"].as_str().map(String::from)).collect()).unwrap_or_default()
}

/// Counts per user from the broker's copy of a table's changelog topic: the last value of
/// each key.
async fn latest_per_key(broker: &TestServer, topic: &str) -> BTreeMap<String, Value> {
    broker.read_topic(topic).await.into_iter().map(|(_, r)| (r["key"].as_str().unwrap_or_default().to_string(), r["value"].clone())).collect()
}

const SETUP: &[&str] = &[
    "CREATE STREAM clicks (user VARCHAR KEY, page VARCHAR, ms INT) WITH (kafka_topic='clicks', partitions=3, value_format='JSON');",
    "CREATE STREAM slow AS SELECT user, page, ms FROM clicks WHERE ms > 100 EMIT CHANGES;",
    "CREATE TABLE per_user AS SELECT user, COUNT(*) AS n, SUM(ms) AS total FROM clicks GROUP BY user EMIT CHANGES;",
];

/// Produces the first 300 clicks and waits until `eddy` counted them and the counts are
/// on the broker.
async fn counted_300(broker: &TestServer, eddy: &TestServer) {
    broker.produce("clicks", clicks(0, 300)).await;
    eddy.wait_until("the clicks are counted", async |s| table_rows(s).await == expected(300)).await;
    let want_changelog: BTreeMap<String, Value> = expected(300).iter().map(|(u, (n, t))| (u.clone(), json!({"N": n, "TOTAL": t}))).collect();
    broker.wait_until("the counts are on the broker", async |b| latest_per_key(b, "PER_USER").await == want_changelog).await;
}

/// The pages of the filtered stream's records, as the broker holds them.
async fn slow_pages(broker: &TestServer) -> Vec<String> {
    broker.read_topic("SLOW").await.into_iter().filter_map(|(_, r)| r["value"]["PAGE"].as_str().map(String::from)).collect()
}

/// The names of the broker's topics.
async fn broker_topics(broker: &TestServer) -> Vec<String> {
    let (_, topics) = broker.get("/topics").await;
    topics["topics"].as_array().into_iter().flatten().filter_map(|t| t["name"].as_str().map(String::from)).collect()
}

/// DESCRIBE EXTENDED's statistics line of the aggregation's table.
async fn per_user_statistics(s: &TestServer) -> String {
    let (_, described) = s.ksql("DESCRIBE per_user EXTENDED;").await;
    described[0]["sourceDescription"]["statistics"].as_str().unwrap_or_default().to_string()
}

/// A server on `broker` running [`SETUP`] from the earliest records.
async fn with_pipeline(broker: &TestServer) -> TestServer {
    let eddy = on_cluster(broker);
    for sql in SETUP {
        let (status, body) = eddy.ksql_with(sql, json!({"ksql.streams.auto.offset.reset": "earliest"})).await;
        assert_eq!(status, 200, "{sql}: {body}");
    }
    eddy
}

fn clicks(from: usize, to: usize) -> Vec<Value> {
    (from..to).map(|i| json!({"key": format!("u{}", i % 7), "value": {"page": format!("/p{i}"), "ms": (i * 37) % 250}})).collect()
}

/// What the pipeline must hold after `clicks(0, n)`: per user (count, total).
fn expected(n: usize) -> BTreeMap<String, (i64, i64)> {
    let mut out: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for i in 0..n {
        let e = out.entry(format!("u{}", i % 7)).or_default();
        e.0 += 1;
        e.1 += ((i * 37) % 250) as i64;
    }
    out
}

async fn table_rows(s: &TestServer) -> BTreeMap<String, (i64, i64)> {
    s.rows("SELECT user, n, total FROM per_user;")
        .await
        .into_iter()
        .map(|r| (r[0].as_str().unwrap_or_default().to_string(), (r[1].as_i64().unwrap_or(-1), r[2].as_i64().unwrap_or(-1))))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_on_a_kafka_cluster_keeps_every_topic_there_and_runs_its_queries() {
    let broker = TestServer::start();
    let eddy = with_pipeline(&broker).await;
    assert!(eddy.kafka.is_empty(), "no Kafka listener of its own: clients use the cluster");
    // Records written to the cluster by others (here through the broker), and by INSERT.
    broker.produce("clicks", clicks(0, 200)).await;
    eddy.ksql_ok("INSERT INTO clicks (user, page, ms) VALUES ('u0', '/inserted', 500);").await;
    let mut want = expected(200);
    let u0 = want.entry("u0".into()).or_default();
    u0.0 += 1;
    u0.1 += 500;
    eddy.wait_until("the table counts every click", async |s| table_rows(s).await == want).await;

    // Every topic is the broker's: sources, sinks and Eddy's own.
    let on_broker = broker_topics(&broker).await;
    for t in ["clicks", "SLOW", "PER_USER"] {
        assert!(on_broker.contains(&t.to_string()), "{t} is on the broker: {on_broker:?}");
    }
    assert!(on_broker.contains(&"_eddy-default_command_topic".to_string()), "the command topic is on the broker: {on_broker:?}");
    assert!(!eddy.data_dir.join("topics").exists(), "no topic is kept in the data directory");
    let (_, shown) = eddy.ksql("SHOW TOPICS;").await;
    assert!(topic_names(&shown).contains(&"clicks".to_string()), "{shown}");

    // The sinks' records, read from the broker: exactly the filtered stream and the counts.
    let slow: Vec<Value> = broker.read_topic("SLOW").await.into_iter().map(|(_, r)| r["value"]["MS"].clone()).collect();
    let want_slow = (0..200).map(|i| (i * 37) % 250).filter(|ms| *ms > 100).count() + 1;
    assert_eq!(slow.len(), want_slow, "{slow:?}");
    // The table's changelog reaches the topic when the record cache is flushed.
    let want_changelog: BTreeMap<String, Value> = want.iter().map(|(u, (n, total))| (u.clone(), json!({"N": n, "TOTAL": total}))).collect();
    broker.wait_until("the broker holds every user's latest count", async |b| latest_per_key(b, "PER_USER").await == want_changelog).await;

    // Pull and push queries, PRINT and key lookups as on the embedded log.
    assert_eq!(eddy.rows("SELECT n FROM per_user WHERE user = 'u3';").await, vec![vec![json!(want["u3"].0)]]);
    let pushed = eddy.query("SELECT page FROM clicks EMIT CHANGES LIMIT 3;").await;
    assert!(pushed.len() >= 3, "{pushed:?}");
    let (status, body) = eddy.post("/features/per_user", json!({"keys": ["u1", "nobody"]})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["row"]["N"], json!(want["u1"].0), "{body}");
    assert_eq!(body["results"][1]["missing"], json!(true), "{body}");
    let printed = reqwest::Client::new()
        .post(format!("{}/query", eddy.url))
        .json(&json!({"ksql": "PRINT 'clicks' FROM BEGINNING LIMIT 2;"}))
        .send()
        .await
        .expect("print")
        .text()
        .await
        .expect("body");
    assert!(printed.contains("/p"), "{printed}");

    // Each query's progress on the cluster's partitions: committed offsets and lag.
    eddy.wait_until("the aggregation's group has caught up with the cluster", async |s| {
        let (_, groups) = s.get("/groups").await;
        groups["groups"].as_array().into_iter().flatten().any(|g| {
            g["group"].as_str().is_some_and(|n| n.starts_with("CTAS_PER_USER")) && g["topics"].as_array().is_some_and(|t| !t.is_empty()) && g["lag"] == json!(0)
        })
    })
    .await;

    // Dropping with DELETE TOPIC deletes on the cluster.
    eddy.ksql_ok("DROP STREAM slow DELETE TOPIC;").await;
    let (_, after) = broker.ksql("SHOW TOPICS;").await;
    assert!(!topic_names(&after).contains(&"SLOW".to_string()), "{after}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_on_a_cluster_restarts_from_its_command_topic_and_resumes_without_duplicates() {
    let broker = TestServer::start();
    let mut eddy = with_pipeline(&broker).await;
    broker.produce("clicks", clicks(0, 300)).await;
    eddy.wait_until("the first clicks are counted", async |s| table_rows(s).await == expected(300)).await;
    eddy.kill9();
    broker.produce("clicks", clicks(300, 500)).await;
    eddy.restart();
    eddy.wait_until("every click is counted once", async |s| table_rows(s).await == expected(500)).await;
    let (_, streams) = eddy.ksql("SHOW STREAMS;").await;
    assert!(streams.to_string().contains("SLOW"), "the statements were replayed from the cluster: {streams}");
    let pages = slow_pages(&broker).await;
    let want: Vec<String> = (0..500).filter(|i| (i * 37) % 250 > 100).map(|i| format!("/p{i}")).collect();
    let mut got = pages.clone();
    got.sort();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(got, want_sorted, "every filtered click once, none twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_cluster_is_a_clear_start_up_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(common::eddy_bin())
        .args(["server", "--http-listen", "127.0.0.1:0", "--kafka-bootstrap", "127.0.0.1:1", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach the Kafka cluster at 127.0.0.1:1") && err.contains("--kafka-bootstrap"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn joins_windows_and_schema_registry_formats_run_on_the_cluster() {
    let broker = TestServer::start();
    let eddy = on_cluster(&broker);
    let earliest = json!({"ksql.streams.auto.offset.reset": "earliest"});
    for sql in [
        "CREATE STREAM clicks (user VARCHAR KEY, page VARCHAR, ms INT) WITH (kafka_topic='clicks', partitions=2, value_format='JSON');",
        "CREATE TABLE users (id VARCHAR PRIMARY KEY, name VARCHAR) WITH (kafka_topic='users', partitions=2, value_format='JSON');",
        "CREATE STREAM enriched AS SELECT c.user AS user, u.name AS name, c.page AS page FROM clicks c JOIN users u ON c.user = u.id EMIT CHANGES;",
        "CREATE TABLE per_minute AS SELECT user, COUNT(*) AS n FROM clicks WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY user EMIT CHANGES;",
        "CREATE STREAM clicks_avro WITH (value_format='AVRO') AS SELECT * FROM clicks EMIT CHANGES;",
    ] {
        let (status, body) = eddy.ksql_with(sql, earliest.clone()).await;
        assert_eq!(status, 200, "{sql}: {body}");
    }
    broker.produce("users", vec![json!({"key": "u1", "value": {"name": "Ann"}}), json!({"key": "u2", "value": {"name": "Bob"}})]).await;
    // The table side is read first: clicks come later.
    eddy.wait_until("the users table is loaded", async |s| s.rows("SELECT * FROM users;").await.len() == 2).await;
    let minute = 1_800_000_000_000i64;
    broker
        .produce(
            "clicks",
            vec![
                json!({"key": "u1", "value": {"page": "/a", "ms": 1}, "timestamp": minute}),
                json!({"key": "u2", "value": {"page": "/b", "ms": 2}, "timestamp": minute + 1_000}),
                json!({"key": "u1", "value": {"page": "/c", "ms": 3}, "timestamp": minute + 61_000}),
                json!({"key": "u3", "value": {"page": "/d", "ms": 4}, "timestamp": minute + 62_000}),
            ],
        )
        .await;
    broker
        .wait_until("the join's output is on the broker", async |b| {
            let mut rows: Vec<(String, String)> = b
                .read_topic("ENRICHED")
                .await
                .into_iter()
                .map(|(_, r)| (r["value"]["NAME"].as_str().unwrap_or_default().to_string(), r["value"]["PAGE"].as_str().unwrap_or_default().to_string()))
                .collect();
            rows.sort();
            rows == vec![("Ann".into(), "/a".into()), ("Ann".into(), "/c".into()), ("Bob".into(), "/b".into())]
        })
        .await;
    eddy.wait_until("two one-minute windows for u1", async |s| {
        s.rows("SELECT n FROM per_minute WHERE user = 'u1';").await == vec![vec![json!(1)], vec![json!(1)]]
    })
    .await;
    // AVRO through the built-in registry, whose topic is the service's own on the cluster.
    eddy.wait_until("the AVRO stream is read back", async |s| s.query("SELECT page FROM clicks_avro EMIT CHANGES LIMIT 4;").await.len() >= 4).await;
    let (status, subjects) = eddy.get("/subjects").await;
    assert_eq!(status, 200, "{subjects}");
    assert!(subjects.to_string().contains("CLICKS_AVRO-value"), "{subjects}");
    let (_, on_broker) = broker.get("/topics").await;
    assert!(on_broker.to_string().contains("_eddy-default_schemas"), "{on_broker}");
}

#[tokio::test(flavor = "multi_thread")]
async fn queries_ride_out_a_broker_that_goes_away_and_comes_back() {
    // The broker keeps its Kafka port across its restart, as a real broker's address does.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
    let listen = format!("127.0.0.1:{port}");
    let mut broker = TestServer::start_with(&["--kafka-listen", &listen]);
    let eddy = with_pipeline(&broker).await;
    broker.produce("clicks", clicks(0, 100)).await;
    eddy.wait_until("the first clicks are counted", async |s| table_rows(s).await == expected(100)).await;
    broker.kill9();
    // The server keeps serving what it has while the cluster is away.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(table_rows(&eddy).await, expected(100));
    let (status, _) = eddy.get("/info").await;
    assert_eq!(status, 200);
    broker.restart();
    broker.produce("clicks", clicks(100, 250)).await;
    eddy.wait_until("the queries resumed where they were", async |s| table_rows(s).await == expected(250)).await;
    let slow = broker.read_topic("SLOW").await.len();
    assert_eq!(slow, (0..250).filter(|i| (i * 37) % 250 > 100).count(), "every filtered click once");
}

/// A CTAS aggregation and a stream-table join over 6 partitions.
const SPLIT_SETUP: &[&str] = &[
    "CREATE TABLE users (id VARCHAR PRIMARY KEY, region VARCHAR) WITH (kafka_topic='users', partitions=6, value_format='JSON');",
    "CREATE STREAM clicks (user VARCHAR KEY, page VARCHAR, ms INT) WITH (kafka_topic='clicks', partitions=6, value_format='JSON');",
    "CREATE TABLE per_user AS SELECT user, COUNT(*) AS n, SUM(ms) AS total FROM clicks GROUP BY user EMIT CHANGES;",
    "CREATE STREAM enriched AS SELECT c.user AS user, c.page AS page, u.region AS region FROM clicks c JOIN users u ON c.user = u.id EMIT CHANGES;",
];

/// A broker holding the split pipeline's users.
async fn split_broker() -> TestServer {
    let broker = TestServer::start();
    let users: Vec<Value> = (0..SPLIT_USERS).map(|i| json!({"key": format!("u{i}"), "value": {"region": format!("r{}", i % 3)}})).collect();
    broker.ksql_ok("CREATE STREAM seed (v INT) WITH (kafka_topic='users', partitions=6, value_format='JSON');").await;
    broker.produce("users", users).await;
    broker
}

/// Runs [`SPLIT_SETUP`] from the earliest records, statement `i` sent to server `i mod n`.
async fn split_setup(servers: &[&TestServer]) {
    for (i, sql) in SPLIT_SETUP.iter().enumerate() {
        let props = json!({"ksql.streams.auto.offset.reset": "earliest", "ksql.streams.cache.max.bytes.buffering": "0"});
        let (status, body) = servers[i % servers.len()].ksql_with(sql, props).await;
        assert_eq!(status, 200, "{sql}: {body}");
    }
}

/// Users of the split pipeline: enough keys that every partition has some.
const SPLIT_USERS: usize = 40;

fn split_clicks(from: usize, to: usize) -> Vec<Value> {
    (from..to).map(|i| json!({"key": format!("u{}", i % SPLIT_USERS), "value": {"page": format!("/p{i}"), "ms": (i * 37) % 250}})).collect()
}

fn split_expected(n: usize) -> BTreeMap<String, (i64, i64)> {
    let mut out: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for i in 0..n {
        let e = out.entry(format!("u{}", i % SPLIT_USERS)).or_default();
        e.0 += 1;
        e.1 += ((i * 37) % 250) as i64;
    }
    out
}

/// What `/healthcheck` says of a server's share: (its place, how many servers).
async fn share(s: &TestServer) -> Option<(i64, i64)> {
    let (_, health) = s.get("/healthcheck").await;
    let p = &health["queryPartitions"];
    Some((p["rank"].as_i64()?, p["servers"].as_i64()?))
}

/// Waits until the servers split the work `servers.len()` ways, each in its own place.
async fn split_among(servers: &[&TestServer]) {
    let n = servers.len() as i64;
    servers[0]
        .wait_until("the servers split the queries", async |_| {
            let mut ranks = Vec::new();
            for s in servers {
                match share(s).await {
                    Some((rank, count)) if count == n => ranks.push(rank),
                    _ => return false,
                }
            }
            ranks.sort();
            ranks == (0..n).collect::<Vec<_>>()
        })
        .await;
}

/// How many source records a server's share of the aggregation read (DESCRIBE EXTENDED's
/// statistics are the server's own).
async fn messages_read(s: &TestServer) -> i64 {
    let statistics = per_user_statistics(s).await;
    statistics.split("total-messages:").nth(1).and_then(|t| t.split_whitespace().next()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// Every joined click on the broker, by page, with its region.
async fn enriched(broker: &TestServer) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (_, r) in broker.read_topic("ENRICHED").await {
        out.entry(r["value"]["PAGE"].as_str().unwrap_or_default().to_string()).or_default().push(r["value"]["REGION"].as_str().unwrap_or_default().to_string());
    }
    out
}

fn enriched_expected(n: usize) -> BTreeMap<String, Vec<String>> {
    (0..n).map(|i| (format!("/p{i}"), vec![format!("r{}", (i % SPLIT_USERS) % 3)])).collect()
}

/// Per user, the counts the aggregation's output topic holds, in order: an uninterrupted
/// run without a record cache writes 1, 2, ..., n.
async fn count_sequences(broker: &TestServer) -> BTreeMap<String, Vec<i64>> {
    let mut out: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (_, r) in broker.read_topic("PER_USER").await {
        out.entry(r["key"].as_str().unwrap_or_default().to_string()).or_default().push(r["value"]["N"].as_i64().unwrap_or(-1));
    }
    out
}

fn uninterrupted_sequences(n: usize) -> BTreeMap<String, Vec<i64>> {
    split_expected(n).into_iter().map(|(u, (count, _))| (u, (1..=count).collect())).collect()
}

/// The table's rows on a server; none until it knows the table (it follows the command
/// topic every second).
async fn split_rows(s: &TestServer) -> BTreeMap<String, (i64, i64)> {
    let (status, body) = s.post("/query", json!({"ksql": "SELECT user, n, total FROM per_user;"})).await;
    if status != 200 {
        return BTreeMap::new();
    }
    body.as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["row"]["columns"].as_array().cloned())
        .map(|r| (r[0].as_str().unwrap_or_default().to_string(), (r[1].as_i64().unwrap_or(-1), r[2].as_i64().unwrap_or(-1))))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn servers_of_a_service_split_its_queries_by_partition_and_move_them_when_one_dies_or_joins() {
    let broker = split_broker().await;
    let servers = [on_cluster(&broker), on_cluster(&broker), on_cluster(&broker)];
    split_among(&servers.iter().collect::<Vec<_>>()).await;
    // Statements sent to any server apply on all; every record's output appears once.
    split_setup(&servers.iter().collect::<Vec<_>>()).await;
    broker.produce("clicks", split_clicks(0, 600)).await;
    for s in &servers {
        s.wait_until("every server answers with every partition's counts", async |s| split_rows(s).await == split_expected(600)).await;
    }
    broker.wait_until("every click is joined once", async |b| enriched(b).await == enriched_expected(600)).await;
    // Each server ran its share: together all 6 partitions of each query's sources.
    let mut read = Vec::new();
    for s in &servers {
        read.push(messages_read(s).await);
    }
    assert!(read.iter().all(|n| *n > 0) && read.iter().sum::<i64>() == 600, "every server counted some clicks, each click one server: {read:?}");
    // A push query's aggregation runs whole on the server asked, whatever its share.
    let u1 = split_expected(600)["u1"].0;
    for s in &servers {
        let sql = format!("SELECT user, COUNT(*) AS n FROM clicks WHERE user = 'u1' GROUP BY user EMIT CHANGES LIMIT {u1};");
        let pushed = tokio::time::timeout(std::time::Duration::from_secs(30), s.query(&sql)).await.expect("the push query reaches its LIMIT");
        let counts: Vec<i64> = pushed.iter().filter_map(|e| e["row"]["columns"][1].as_i64()).collect();
        assert_eq!(counts, (1..=u1).collect::<Vec<_>>(), "{pushed:?}");
    }
    // A lookup of one key is answered by the server that runs its partition. The server
    // keeping a copy of that partition (--standby-replicas 1, the default) knows the key's
    // partition and passes the lookup on, once its copy has the key; a server without a
    // copy gathers it from the others. Every answer is right either way.
    let mut answers: Vec<(Option<String>, Option<String>)> = Vec::new();
    for _ in 0..50 {
        answers.clear();
        for s in &servers {
            let answer = reqwest::Client::new()
                .post(format!("{}/query", s.url))
                .json(&json!({"ksql": "SELECT n FROM per_user WHERE user = 'u1';"}))
                .send()
                .await
                .expect("answered");
            let header = |name: &str| answer.headers().get(name).and_then(|v| v.to_str().ok()).map(String::from);
            answers.push((header("x-eddy-answered-by"), header("x-eddy-gathered-from")));
            let text = answer.text().await.expect("body");
            assert!(text.contains(&format!("[{}]", split_expected(600)["u1"].0)), "{text} ({answers:?})");
        }
        if answers.iter().any(|(by, _)| by.is_some()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let alone: Vec<usize> = (0..3).filter(|i| answers[*i] == (None, None)).collect();
    assert_eq!(alone.len(), 1, "one server runs the key's partition and answers alone: {answers:?}");
    let owner = &servers[alone[0]].url;
    for (by, from) in &answers {
        assert!(by.is_none() && from.is_none() || by.as_ref() == Some(owner) || from.as_ref().is_some_and(|f| f.contains(owner.as_str())), "{answers:?}");
    }
    assert_eq!(answers.iter().filter(|(by, _)| by.as_ref() == Some(owner)).count(), 1, "the server with the copy passes it on: {answers:?}");
    // A scan on any server takes the rows of the others' partitions from them (live, not
    // its copies), and says where they came from.
    for s in &servers {
        let answer =
            reqwest::Client::new().post(format!("{}/query", s.url)).json(&json!({"ksql": "SELECT user, n FROM per_user;"})).send().await.expect("answered");
        let from = answer.headers().get("x-eddy-gathered-from").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let others: Vec<&str> = servers.iter().filter(|o| o.url != s.url).map(|o| o.url.as_str()).collect();
        let mut named: Vec<&str> = from.split(',').collect();
        named.sort();
        let mut expected_from = others.clone();
        expected_from.sort();
        assert_eq!(named, expected_from, "the scan gathered from both other servers");
        assert!(answer.headers().get("x-eddy-standby-staleness-ms").is_none(), "no copy was read");
        let rows: Vec<Value> = answer.json().await.expect("json");
        assert_eq!(rows.iter().filter(|e| e.get("row").is_some()).count(), SPLIT_USERS, "{rows:?}");
    }
    // A feature lookup of every user on any server finds every row: keys in partitions the
    // server runs or copies are read here (copies up to a second behind), the others are
    // gathered from the servers that run them.
    let users: Vec<String> = (0..SPLIT_USERS).map(|i| format!("u{i}")).collect();
    let want: BTreeMap<String, i64> = split_expected(600).into_iter().map(|(u, (n, _))| (u, n)).collect();
    for s in &servers {
        s.wait_until("every user's features are found on every server", async |s| {
            let (status, body) = s.post("/features/per_user", json!({"keys": users})).await;
            let got: BTreeMap<String, i64> =
                body["results"].as_array().into_iter().flatten().filter_map(|r| Some((r["key"].as_str()?.to_string(), r["row"]["N"].as_i64()?))).collect();
            status == 200 && got == want
        })
        .await;
    }
    // SHOW QUERIES counts the servers running each query; DESCRIBE EXTENDED of the source
    // says, per partition, which server runs it and how far the query read (the offsets
    // its tasks committed to the cluster in their transactions).
    let (_, queries) = servers[2].ksql("SHOW QUERIES;").await;
    let per_user = queries[0]["queries"].as_array().into_iter().flatten().find(|q| q["id"].as_str().is_some_and(|id| id.starts_with("CTAS_PER_USER")));
    assert_eq!(per_user.map(|q| q["statusCount"].clone()), Some(json!({"RUNNING": 3})), "{queries}");
    // SHOW QUERIES EXTENDED (EXPLAIN of each) names every server's state of the query, and
    // per source partition the server that runs its task and the one keeping its copy.
    let (_, extended) = servers[0].ksql("SHOW QUERIES EXTENDED;").await;
    let described = extended[0]["queryDescriptions"].as_array().cloned().unwrap_or_default();
    let agg = described.iter().find(|d| d["id"].as_str().is_some_and(|id| id.starts_with("CTAS_PER_USER"))).expect("the aggregation is described");
    assert_eq!(agg["ksqlHostQueryStatus"].as_object().map(|h| h.len()), Some(3), "{agg}");
    let tasks = agg["tasksMetadata"].as_array().cloned().unwrap_or_default();
    assert_eq!(tasks.len(), 6, "{agg}");
    for t in &tasks {
        let (host, standbys) = (t["host"].as_str().unwrap_or_default(), t["standbyHosts"].as_array().cloned().unwrap_or_default());
        assert!(servers.iter().any(|s| s.url.ends_with(host)) && !host.is_empty(), "{t}");
        assert!(standbys.len() == 1 && standbys[0].as_str() != Some(host), "{t}");
    }
    servers[2]
        .wait_until("DESCRIBE EXTENDED shows every partition read to its end, and where it runs", async |s| {
            let (_, described) = s.ksql("DESCRIBE clicks EXTENDED;").await;
            let summaries = described[0]["sourceDescription"]["queryOffsetSummaries"].as_array().cloned().unwrap_or_default();
            let Some(agg) = summaries.iter().find(|q| q["groupId"].as_str().is_some_and(|g| g.starts_with("CTAS_PER_USER"))) else { return false };
            let offsets = agg["topicSummaries"][0]["offsets"].as_array().cloned().unwrap_or_default();
            offsets.len() == 6
                && offsets.iter().all(|o| o["consumerOffset"] == o["logEndOffset"] && servers.iter().any(|srv| o["host"].as_str() == Some(srv.url.as_str())))
        })
        .await;
    let (_, status) = servers[1].get("/clusterStatus").await;
    let hosts = status["clusterStatus"].as_object().cloned().unwrap_or_default();
    assert_eq!(hosts.len(), 3, "{status}");
    let partitions_of = |host: &Value, kind: &str| -> Vec<i64> {
        host["activeStandbyPerQuery"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(q, _)| q.starts_with("CTAS_PER_USER"))
            .flat_map(|(_, q)| q[kind].as_array().cloned().unwrap_or_default())
            .filter_map(|p| p["partition"].as_i64())
            .collect()
    };
    for kind in ["activePartitions", "standByPartitions"] {
        let mut all: Vec<i64> = hosts.values().flat_map(|h| partitions_of(h, kind)).collect();
        all.sort();
        assert_eq!(all, (0..6).collect::<Vec<_>>(), "each partition on one server, and one copy of it elsewhere: {status}");
    }
    for h in hosts.values() {
        let (active, standby) = (partitions_of(h, "activePartitions"), partitions_of(h, "standByPartitions"));
        assert_eq!(active.len(), 2, "an even split: {status}");
        assert!(standby.iter().all(|p| !active.contains(p)), "no server keeps a copy of its own partition: {status}");
    }

    // The server that runs the statements dies mid-run: the others take its partitions
    // over; pull queries and lookups sent to them keep answering meanwhile.
    let mut servers = servers;
    let mut leader = None;
    for (i, s) in servers.iter().enumerate() {
        if s.get("/healthcheck").await.1["serviceRole"] == json!("active") {
            leader = Some(i);
        }
    }
    let leader = leader.expect("one server runs the statements");
    servers[leader].kill9();
    let killed = std::time::Instant::now();
    broker.produce("clicks", split_clicks(600, 900)).await;
    let survivors: Vec<&TestServer> = servers.iter().enumerate().filter(|(i, _)| *i != leader).map(|(_, s)| s).collect();
    // Lookups, and pull queries that allow standby reads, keep answering (from copies while
    // the dead server's partitions have no owner); other pull queries of keys there are
    // refused (503) until the partitions move.
    let mut failed = Vec::new();
    let mut refused: Vec<std::time::Duration> = Vec::new();
    let mut answered_all = None;
    let stale_ok = json!({"ksql.query.pull.enable.standby.reads": true});
    while killed.elapsed() < std::time::Duration::from_secs(60) {
        for s in &survivors {
            for user in ["u1", "u2", "u3", "u4", "u5", "u6"] {
                let sql = format!("SELECT n FROM per_user WHERE user = '{user}';");
                let (status, body) = s.post("/query", json!({"ksql": sql, "streamsProperties": stale_ok})).await;
                let (fstatus, _) = s.post("/features/per_user", json!({"keys": [user]})).await;
                if status != 200 || fstatus != 200 {
                    failed.push((killed.elapsed(), status, fstatus, body));
                }
                let (strict, body) = s.post("/query", json!({"ksql": sql})).await;
                match strict {
                    200 => {}
                    503 => refused.push(killed.elapsed()),
                    _ => failed.push((killed.elapsed(), strict, 0, body)),
                }
            }
        }
        if split_rows(survivors[0]).await == split_expected(900) && split_rows(survivors[1]).await == split_expected(900) {
            answered_all = Some(killed.elapsed());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let caught_up = answered_all.expect("the survivors count every click within a minute");
    eprintln!("failover: every partition's counts were current on the survivors {caught_up:?} after the kill");
    assert!(failed.is_empty(), "pull queries and lookups kept answering: {failed:?}");
    let unavailable = refused.last().copied().unwrap_or_default();
    eprintln!("failover: strict pull queries of the moved keys were refused until {unavailable:?} after the kill ({} refusals)", refused.len());
    assert!(unavailable < caught_up + std::time::Duration::from_secs(1), "strict pull queries answer again once the partitions moved");
    split_among(&survivors).await;
    // The survivors kept their partitions, and each of the dead server's went to the
    // server that kept its copy.
    let (_, after) = survivors[0].get("/clusterStatus").await;
    let after = after["clusterStatus"].as_object().cloned().unwrap_or_default();
    let dead_host = servers[leader].url.trim_start_matches("http://").to_string();
    for (host, now) in &after {
        let (before, copies) = (partitions_of(&hosts[host], "activePartitions"), partitions_of(&hosts[host], "standByPartitions"));
        let dead_active = partitions_of(&hosts[&dead_host], "activePartitions");
        let mut expected: Vec<i64> = before.iter().chain(copies.iter().filter(|p| dead_active.contains(p))).copied().collect();
        expected.sort();
        let mut active = partitions_of(now, "activePartitions");
        active.sort();
        assert_eq!(active, expected, "{host} keeps its partitions and takes those it had copies of: before {hosts:?}, after {after:?}");
    }
    survivors[0].ksql_ok("CREATE STREAM after_failover (v INT) WITH (kafka_topic='after_failover', partitions=1, value_format='JSON');").await;
    broker.wait_until("every click is joined once", async |b| enriched(b).await == enriched_expected(900)).await;

    // A fourth server joins: it takes a share, its state restored from the changelogs.
    let fourth = on_cluster(&broker);
    let mut all: Vec<&TestServer> = survivors.clone();
    all.push(&fourth);
    split_among(&all).await;
    broker.produce("clicks", split_clicks(900, 1200)).await;
    for s in &all {
        s.wait_until("every server counts every click", async |s| split_rows(s).await == split_expected(1200)).await;
    }
    assert!(messages_read(&fourth).await > 0, "the new server counted some clicks: {}", per_user_statistics(&fourth).await);
    let (_, streams) = fourth.ksql("SHOW STREAMS;").await;
    assert!(streams.to_string().contains("AFTER_FAILOVER"), "{streams}");
    broker.wait_until("every click is joined once", async |b| enriched(b).await == enriched_expected(1200)).await;
    assert_eq!(count_sequences(&broker).await, uninterrupted_sequences(1200), "every user's counts, once each, in order");

    // The new server is stopped with SIGTERM: it stops its tasks, then leaves the group,
    // and the others take its share at once (no session to expire).
    let mut fourth = fourth;
    let stopped = std::time::Instant::now();
    assert!(fourth.stop(), "a clean stop");
    split_among(&survivors).await;
    eprintln!("hand-over: the two servers split the work {:?} after the SIGTERM", stopped.elapsed());
    broker.produce("clicks", split_clicks(1200, 1500)).await;
    for s in &survivors {
        s.wait_until("every click is counted", async |s| split_rows(s).await == split_expected(1500)).await;
    }
    broker.wait_until("every click is joined once", async |b| enriched(b).await == enriched_expected(1500)).await;
    assert_eq!(count_sequences(&broker).await, uninterrupted_sequences(1500), "every user's counts, once each, in order");
}

#[tokio::test(flavor = "multi_thread")]
async fn services_on_one_cluster_share_nothing() {
    let broker = TestServer::start();
    let first = on_cluster(&broker);
    first.ksql_ok("CREATE STREAM mine (v INT) WITH (kafka_topic='mine', partitions=1, value_format='JSON');").await;
    let other = TestServer::start_with(&["--kafka-bootstrap", &broker.kafka, "--service-id", "analytics"]);
    let (_, streams) = other.ksql("SHOW STREAMS;").await;
    assert!(!streams.to_string().contains("MINE"), "{streams}");
    other.ksql_ok("CREATE STREAM theirs (v INT) WITH (kafka_topic='theirs', partitions=1, value_format='JSON');").await;
    let (_, streams) = first.ksql("SHOW STREAMS;").await;
    assert!(!streams.to_string().contains("THEIRS"), "{streams}");
    let (_, topics) = broker.get("/topics").await;
    assert!(topics.to_string().contains("_eddy-analytics_command_topic") && topics.to_string().contains("_eddy-default_command_topic"), "{topics}");
    let err = common::refused_cluster_start(&broker.kafka, &["--service-id", "bad/id"]);
    assert!(err.contains("--service-id must be"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_on_a_new_machine_restores_query_state_from_changelog_topics() {
    let broker = TestServer::start();
    let mut first = with_pipeline(&broker).await;
    counted_300(&broker, &first).await;
    let names = broker_topics(&broker).await;
    assert!(names.iter().any(|n| n.starts_with("_eddy-default_CTAS_PER_USER") && n.ends_with("-changelog")), "a changelog topic backs the state: {names:?}");
    let written = broker.read_topic("PER_USER").await.len();
    assert!(first.stop());

    // Another server, on an empty data directory: the catalog comes from the command topic,
    // the aggregation's state and checkpoint from its changelog.
    let second = on_cluster(&broker);
    second.wait_until("the state is restored", async |s| table_rows(s).await == expected(300)).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(broker.read_topic("PER_USER").await.len(), written, "nothing was written again");
    let statistics = per_user_statistics(&second).await;
    assert!(statistics.contains("total-messages: 0"), "restored, not recomputed from the source: {statistics}");
    broker.produce("clicks", clicks(300, 450)).await;
    second.wait_until("new clicks add to the restored counts", async |s| table_rows(s).await == expected(450)).await;
    let pages = slow_pages(&broker).await;
    let unique: std::collections::BTreeSet<&String> = pages.iter().collect();
    assert_eq!(unique.len(), pages.len(), "no filtered click twice");
    assert_eq!(pages.len(), (0..450).filter(|i| (i * 37) % 250 > 100).count(), "every filtered click once");
    // Dropping the table drops its changelog.
    second.ksql_ok("DROP TABLE per_user DELETE TOPIC;").await;
    let names = broker_topics(&broker).await;
    assert!(!names.iter().any(|n| n.contains("CTAS_PER_USER") && n.ends_with("-changelog")), "{names:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn statements_sent_to_both_servers_at_once_apply_in_one_order_on_both() {
    let broker = TestServer::start();
    let mut first = on_cluster(&broker);
    let second = on_cluster(&broker);
    let role = async |s: &TestServer| s.get("/healthcheck").await.1["serviceRole"].clone();
    assert_eq!((role(&first).await, role(&second).await), (json!("active"), json!("member")));
    // Ten statements, half through each server, all at once; two of them conflict.
    let statements: Vec<(usize, String)> = (0..10)
        .map(|i| {
            let name = if i == 9 { "s_0".to_string() } else { format!("s_{i}") };
            (i, format!("CREATE STREAM {name} (v INT) WITH (kafka_topic='{name}_{i}', partitions=1, value_format='JSON');"))
        })
        .collect();
    let sent = statements.iter().map(|(i, sql)| {
        let server = if i % 2 == 0 { &first } else { &second };
        async move { server.ksql(sql).await }
    });
    let answers = futures::future::join_all(sent).await;
    let created = answers.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!(created, 9, "one of the two S_0 was refused: {answers:?}");
    let streams = async |s: &TestServer| -> Vec<(String, String)> {
        let (_, shown) = s.ksql("SHOW STREAMS;").await;
        let mut out: Vec<(String, String)> = shown[0]["streams"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| Some((t["name"].as_str()?.to_string(), t["topic"].as_str()?.to_string())))
            .filter(|(n, _)| n.starts_with("S_"))
            .collect();
        out.sort();
        out
    };
    let on_first = streams(&first).await;
    assert_eq!(on_first.len(), 9);
    // A client sees what it ran: on the server it sent the statement to (which waits for
    // the command before it answers), and on any other that it tells the command's number.
    let (_, created) = first.ksql("CREATE STREAM seen (v INT) WITH (kafka_topic='seen', partitions=1, value_format='JSON');").await;
    let seq = created[0]["commandSequenceNumber"].as_i64().expect("a command sequence number");
    let (status, body) = second.post("/ksql", json!({"ksql": "DESCRIBE seen;", "commandSequenceNumber": seq})).await;
    assert_eq!(status, 200, "{body}");
    second.ksql_ok("CREATE STREAM seen_here (v INT) WITH (kafka_topic='seen_here', partitions=1, value_format='JSON');").await;
    let (status, body) = second.ksql("DESCRIBE seen_here;").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = second.post("/query", json!({"ksql": "SELECT * FROM seen;", "commandSequenceNumber": 1_000_000})).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.to_string().contains("timed out waiting for command 1000000"), "{body}");
    let on_first = streams(&first).await;
    // The second server's own catalog (it answers itself once the first is gone) was
    // replayed from the command topic: the same streams, the same winner of the conflict.
    first.kill9();
    second.wait_until("the second server took over", async |s| role(s).await == json!("active")).await;
    assert_eq!(streams(&second).await, on_first);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_stalls_while_another_takes_its_tasks_over_writes_nothing_twice() {
    let broker = split_broker().await;
    let servers = [on_cluster(&broker), on_cluster(&broker)];
    split_among(&servers.iter().collect::<Vec<_>>()).await;
    split_setup(&[&servers[0]]).await;
    broker.produce("clicks", split_clicks(0, 300)).await;
    for s in &servers {
        s.wait_until("both servers count every click", async |s| split_rows(s).await == split_expected(300)).await;
    }
    // The server that does not run the statements stalls (SIGSTOP); clicks arrive for its
    // partitions, and the other server takes them over once the stalled one's session
    // expires.
    let mut stalled = None;
    for (i, s) in servers.iter().enumerate() {
        if s.get("/healthcheck").await.1["serviceRole"] != json!("active") {
            stalled = Some(i);
        }
    }
    let stalled = stalled.expect("one server is a member");
    let survivor = &servers[1 - stalled];
    servers[stalled].freeze();
    broker.produce("clicks", split_clicks(300, 600)).await;
    survivor.wait_until("the survivor counts every click", async |s| split_rows(s).await == split_expected(600)).await;
    // The stalled server wakes with work it had not done: whatever it tries to write
    // belongs to a transaction that can no longer commit. It takes its share back.
    servers[stalled].thaw();
    split_among(&servers.iter().collect::<Vec<_>>()).await;
    broker.produce("clicks", split_clicks(600, 900)).await;
    for s in &servers {
        s.wait_until("both servers count every click", async |s| split_rows(s).await == split_expected(900)).await;
    }
    broker.wait_until("every click is joined once", async |b| enriched(b).await == enriched_expected(900)).await;
    assert_eq!(count_sequences(&broker).await, uninterrupted_sequences(900), "every user's counts, once each, in order");
    // The tasks' source offsets were committed in their transactions, to consumer groups
    // of the cluster, as Kafka's tools see them.
    broker
        .wait_until("the aggregation's group has read every click", async |b| {
            let (_, groups) = b.get("/groups").await;
            let ours: Vec<&Value> =
                groups["groups"].as_array().into_iter().flatten().filter(|g| g["group"].as_str().is_some_and(|n| n.contains("CTAS_PER_USER"))).collect();
            ours.iter().any(|g| g["topics"] == json!(["clicks"]) && g["lag"] == json!(0))
        })
        .await;
}
