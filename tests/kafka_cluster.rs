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

/// How many source partitions `/clusterStatus` says the server runs, over all queries.
async fn active_partitions(s: &TestServer) -> usize {
    let (status, body) = s.get("/clusterStatus").await;
    assert_eq!(status, 200, "{body}");
    let hosts = body["clusterStatus"].as_object().cloned().unwrap_or_default();
    hosts
        .values()
        .flat_map(|h| h["activeStandbyPerQuery"].as_object().cloned().unwrap_or_default().into_values())
        .map(|q| q["activePartitions"].as_array().map_or(0, |a| a.len()))
        .sum()
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

/// Starts a server on `broker` that is expected not to start; its stderr.
fn refused_start(broker: &TestServer, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(common::eddy_bin())
        .args(["server", "--http-listen", "127.0.0.1:0", "--kafka-bootstrap", &broker.kafka, "--data-dir"])
        .arg(dir.path())
        .args(extra)
        .output()
        .expect("runs");
    assert!(!out.status.success(), "the server started: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standby_follows_the_active_server_and_takes_over_when_it_is_killed() {
    let broker = TestServer::start();
    let mut active = with_pipeline(&broker).await;
    counted_300(&broker, &active).await;

    // A second server of the service stands by: it has the catalog, runs nothing, and
    // says so when asked for rows.
    let standby = on_cluster(&broker);
    let (_, streams) = standby.ksql("SHOW STREAMS;").await;
    assert!(streams.to_string().contains("SLOW"), "{streams}");
    let (_, queries) = standby.ksql("SHOW QUERIES;").await;
    let states: Vec<&Value> = queries[0]["queries"].as_array().into_iter().flatten().map(|q| &q["state"]).collect();
    assert!(states.len() == 2 && states.iter().all(|s| **s == json!("RUNNING")), "the service runs its queries (on the active server): {queries}");
    let role = async |s: &TestServer| s.get("/healthcheck").await.1["serviceRole"].clone();
    assert_eq!((role(&active).await, role(&standby).await), (json!("active"), json!("standby")));
    // Queries, lookups and statements sent to the standby are answered by the active server.
    assert_eq!(table_rows(&standby).await, expected(300), "a pull query through the standby");
    let (status, body) = standby.post("/features/per_user", json!({"keys": ["u1"]})).await;
    assert_eq!((status, &body["results"][0]["row"]["N"]), (200, &json!(expected(300)["u1"].0)), "{body}");
    let pushed = standby.query("SELECT page FROM clicks EMIT CHANGES LIMIT 2;").await;
    assert!(pushed.len() >= 2, "a push query through the standby: {pushed:?}");
    standby.ksql_ok("CREATE STREAM later (v INT) WITH (kafka_topic='later', partitions=1, value_format='JSON');").await;

    // /clusterStatus says who runs what.
    assert_eq!(active_partitions(&active).await, 3 + 3, "the filter's and the aggregation's source partitions");
    assert_eq!(active_partitions(&standby).await, 0);

    // The active server dies: the standby takes over with the state from the changelogs.
    active.kill9();
    let killed = std::time::Instant::now();
    // Until the standby takes over, a pull query that allows it reads the standby's warm
    // copy, told how old it may be; one that does not gets a 503.
    let answer = reqwest::Client::new()
        .post(format!("{}/query", standby.url))
        .json(&json!({"ksql": "SELECT n FROM per_user WHERE user = 'u1';", "streamsProperties": {"ksql.query.pull.enable.standby.reads": true}}))
        .send()
        .await
        .expect("answered");
    let staleness = answer.headers().get("x-eddy-standby-staleness-ms").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i64>().ok());
    let body = answer.text().await.expect("body");
    assert!(staleness.is_some_and(|ms| ms < 5_000), "the copy's age is said: {staleness:?} {body}");
    assert!(body.contains(&format!("[{}]", expected(300)["u1"].0)), "{body}");
    let (status, _) = standby.post("/query", json!({"ksql": "SELECT n FROM per_user WHERE user = 'u1';"})).await;
    assert_eq!(status, 503, "no standby reads unless asked");
    standby
        .wait_until("the standby answers with the restored state", async |s| {
            // 503 while it stands by, then the rows.
            let (status, _) = s.post("/query", json!({"ksql": "SELECT * FROM per_user WHERE user = 'u1';"})).await;
            status == 200 && table_rows(s).await == expected(300)
        })
        .await;
    eprintln!("failover: the standby answered pull queries {:?} after the active server was killed", killed.elapsed());
    assert_eq!(active_partitions(&standby).await, 3 + 3, "the former standby runs every partition");
    let (_, streams) = standby.ksql("SHOW STREAMS;").await;
    assert!(streams.to_string().contains("LATER"), "it followed the command topic while it stood by: {streams}");
    broker.produce("clicks", clicks(300, 450)).await;
    standby.wait_until("new clicks add to the restored counts", async |s| table_rows(s).await == expected(450)).await;

    // The first server comes back: it stands by, its stale state brought up to the
    // changelogs; when the second one dies it takes over from where that one was.
    active.restart();
    let role = async |s: &TestServer| s.get("/healthcheck").await.1["serviceRole"].clone();
    active.wait_until("the restarted server stands by", async |s| role(s).await == json!("standby")).await;
    broker.produce("clicks", clicks(450, 500)).await;
    standby.wait_until("the active server counts on", async |s| table_rows(s).await == expected(500)).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let mut standby = standby;
    standby.kill9();
    active
        .wait_until("the first server took over again", async |s| {
            let (status, _) = s.post("/query", json!({"ksql": "SELECT * FROM per_user WHERE user = 'u1';"})).await;
            status == 200 && table_rows(s).await == expected(500)
        })
        .await;
    let statistics = per_user_statistics(&active).await;
    assert!(statistics.contains("total-messages: 0"), "its state was brought up to the changelog, not recomputed: {statistics}");
    broker.produce("clicks", clicks(500, 600)).await;
    active.wait_until("every click is counted once", async |s| table_rows(s).await == expected(600)).await;
    let pages = slow_pages(&broker).await;
    let unique: std::collections::BTreeSet<&String> = pages.iter().collect();
    assert_eq!((unique.len(), pages.len()), (pages.len(), (0..600).filter(|i| (i * 37) % 250 > 100).count()), "every filtered click once");
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
    let err = refused_start(&broker, &["--service-id", "bad/id"]);
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
    assert_eq!((role(&first).await, role(&second).await), (json!("active"), json!("standby")));
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
    // The second server's own catalog (it answers itself once the first is gone) was
    // replayed from the command topic: the same streams, the same winner of the conflict.
    first.kill9();
    second.wait_until("the second server took over", async |s| role(s).await == json!("active")).await;
    assert_eq!(streams(&second).await, on_first);
}
