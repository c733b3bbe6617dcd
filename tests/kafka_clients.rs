//! Unmodified Kafka clients against a real Eddy server: kcat (librdkafka), kafka-python and
//! confluent-kafka. The tools are installed by `make test` (scripts/ensure-test-tools.sh);
//! a missing tool fails the test with that instruction rather than skipping it.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::TestServer;
use serde_json::Value;

const INSTALL_HINT: &str = "install the Kafka client tools with scripts/ensure-test-tools.sh (make test runs it)";

fn require_kcat() {
    let ok = Command::new("kcat").arg("-V").output().map(|o| o.status.success()).unwrap_or(false);
    assert!(ok, "kcat is not installed: {INSTALL_HINT}");
}

fn require_python_module(module: &str) {
    let ok = Command::new("python3").args(["-c", &format!("import {module}")]).output().map(|o| o.status.success()).unwrap_or(false);
    assert!(ok, "python3 module '{module}' is not installed: {INSTALL_HINT}");
}

/// Runs kcat (bounded by `timeout`), feeding `input` on stdin.
fn kcat(broker: &str, args: &[&str], input: Option<&str>) -> Output {
    let mut child = Command::new("timeout")
        .arg("60")
        .arg("kcat")
        .args(["-b", broker])
        .args(args)
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kcat");
    if let Some(text) = input {
        child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write to kcat");
    }
    let out = child.wait_with_output().expect("kcat output");
    assert!(out.status.success(), "kcat {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn stdout_lines(out: &Output) -> Vec<String> {
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    lines.sort();
    lines
}

fn python(script: &str, args: &[&str]) -> Value {
    // The directory at run time: a shared target directory may hold a binary built from another clone.
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    let path = format!("{root}/tests/kafka_clients/{script}");
    let out = Command::new("timeout").arg("240").arg("python3").arg(&path).args(args).output().expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let last = stdout.lines().last().unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{script} printed no JSON ({e}): {stdout}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn kcat_lists_topics_produces_keyed_lines_and_reads_them_back() {
    require_kcat();
    let server = TestServer::start();
    server.ksql_ok("CREATE STREAM clicks (user_id VARCHAR KEY, page VARCHAR) WITH (kafka_topic='clicks', value_format='JSON', partitions=3);").await;
    let listing = String::from_utf8_lossy(&kcat(&server.kafka, &["-L"], None).stdout).to_string();
    assert!(listing.contains("topic \"clicks\" with 3 partitions"), "SQL's topic is not listed:\n{listing}");
    assert!(listing.contains(&format!("broker 0 at {}", server.kafka)), "{listing}");

    let lines: String = (0..30).map(|i| format!("u{i}:{{\"page\":\"p{i}\"}}\n")).collect();
    kcat(&server.kafka, &["-P", "-t", "clicks", "-K:", "-X", "partitioner=murmur2_random"], Some(&lines));
    let read = kcat(&server.kafka, &["-C", "-t", "clicks", "-o", "beginning", "-e", "-q", "-f", "%k|%s|%p\n"], None);
    let got = stdout_lines(&read);
    assert_eq!(got.len(), 30, "{got:?}");
    for line in got {
        let parts: Vec<&str> = line.split('|').collect();
        let (key, value, partition) = (parts[0], parts[1], parts[2].parse::<i32>().expect("partition"));
        let i: usize = key[1..].parse().expect("key number");
        assert_eq!(value, format!("{{\"page\":\"p{i}\"}}"));
        // Java-compatible murmur2: the partition SQL inserts would use for this key.
        assert_eq!(partition, eddy::log::murmur2::partition_for_key(key.as_bytes(), 3), "key {key}");
    }
    // SQL sees what kcat wrote.
    let rows = server.rows("SELECT * FROM clicks WHERE user_id = 'u7';").await;
    assert_eq!(rows, vec![vec![Value::from("u7"), Value::from("p7")]]);
    // Kafka clients see topics they create implicitly, and SQL can use them.
    kcat(&server.kafka, &["-P", "-t", "made_by_kcat", "-K:"], Some("a:{\"n\":1}\n"));
    server.ksql_ok("CREATE STREAM made (k VARCHAR KEY, n INT) WITH (kafka_topic='made_by_kcat', value_format='JSON');").await;
    assert_eq!(server.rows("SELECT * FROM made;").await, vec![vec![Value::from("a"), Value::from(1)]]);
}

#[tokio::test(flavor = "multi_thread")]
async fn kcat_group_consumer_commits_offsets_that_show_as_group_lag() {
    require_kcat();
    let server = TestServer::start();
    server.ksql_ok("CREATE STREAM events (id VARCHAR KEY, n INT) WITH (kafka_topic='events', value_format='JSON', partitions=2);").await;
    let lines: String = (0..20).map(|i| format!("e{i}:{{\"n\":{i}}}\n")).collect();
    kcat(&server.kafka, &["-P", "-t", "events", "-K:"], Some(&lines));
    let read = kcat(&server.kafka, &["-G", "kcat-group", "events", "-o", "beginning", "-e", "-q", "-f", "%k\n"], None);
    assert_eq!(stdout_lines(&read).len(), 20);
    let (status, group) = server.get("/groups/kcat-group").await;
    assert_eq!(status, 200, "{group}");
    let offsets = group["offsets"].as_array().expect("offsets");
    let committed: i64 = offsets.iter().map(|o| o["committedOffset"].as_i64().unwrap_or(0)).sum();
    assert_eq!((offsets.len(), committed, group["lag"].as_i64()), (2, 20, Some(0)), "{group}");
    // More records: the group's lag grows until it consumes again.
    kcat(&server.kafka, &["-P", "-t", "events", "-K:"], Some("late:{\"n\":99}\n"));
    let (_, group) = server.get("/groups/kcat-group").await;
    assert_eq!(group["lag"].as_i64(), Some(1), "{group}");
    let shown = server.ksql_ok("SHOW TOPICS EXTENDED;").await;
    let events = shown[0]["topics"].as_array().expect("topics").iter().find(|t| t["name"] == "events").cloned().expect("events listed");
    let groups = events["consumerGroups"].as_array().expect("groups");
    assert!(groups.iter().any(|g| g["group"] == "kcat-group" && g["lag"] == 1), "{events}");
    let read = kcat(&server.kafka, &["-G", "kcat-group", "events", "-e", "-q", "-f", "%k\n"], None);
    assert_eq!(stdout_lines(&read), vec!["late".to_string()], "a group resumes from its committed offsets");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_over_a_kcat_topic_feeds_a_persistent_query_whose_output_kcat_reads() {
    require_kcat();
    let server = TestServer::start();
    server.ksql_ok("CREATE STREAM orders (id VARCHAR KEY, amount INT, country VARCHAR) WITH (kafka_topic='orders', value_format='JSON', partitions=2);").await;
    server
        .ksql_ok(
            "CREATE STREAM big_orders WITH (kafka_topic='big_orders') AS SELECT id, amount * 10 AS amount10, country FROM orders WHERE amount > \
        50 EMIT CHANGES;",
        )
        .await;
    let lines: String = (0..40).map(|i| format!("o{i}:{{\"amount\":{},\"country\":\"c{}\"}}\n", i * 5, i % 3)).collect();
    kcat(&server.kafka, &["-P", "-t", "orders", "-K:"], Some(&lines));
    // o11..o39 have amount > 50.
    server
        .wait_until("the persistent query's output", async |s| {
            let out = kcat(&s.kafka, &["-C", "-t", "big_orders", "-o", "beginning", "-e", "-q", "-f", "%k\n"], None);
            stdout_lines(&out).len() >= 29
        })
        .await;
    let out = kcat(&server.kafka, &["-C", "-t", "big_orders", "-o", "beginning", "-e", "-q", "-f", "%k|%s\n"], None);
    let got = stdout_lines(&out);
    assert_eq!(got.len(), 29, "{got:?}");
    assert!(got.contains(&"o12|{\"AMOUNT10\":600,\"COUNTRY\":\"c0\"}".to_string()), "{got:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_python_group_members_split_partitions_commit_and_rebalance_when_one_leaves() {
    require_python_module("kafka");
    let server = TestServer::start();
    server.ksql_ok("CREATE STREAM kp (k VARCHAR KEY, n INT) WITH (kafka_topic='kp', value_format='JSON', partitions=4);").await;
    let report = python("kafka_python_group.py", &[&server.kafka, "kp", "py-group"]);
    assert_eq!(report["errors"], serde_json::json!([]), "{report}");
    assert_eq!(report["idempotent"], Value::Bool(true), "kafka-python 3 produces idempotently by default: {report}");
    // The default partitioner is murmur2, so keys land where SQL puts them.
    for (key, partition) in report["sent_partitions"].as_object().expect("partitions") {
        assert_eq!(partition.as_i64(), Some(i64::from(eddy::log::murmur2::partition_for_key(key.as_bytes(), 4))), "key {key}");
    }
    assert_eq!(report["split_ok"], Value::Bool(true), "two members must split the 4 partitions: {report}");
    assert_eq!(report["rebalanced_ok"], Value::Bool(true), "the remaining member must take every partition: {report}");
    assert_eq!(report["keys"].as_u64(), Some(300), "{report}");
    // Commits landed in the shared offset store: no lag left.
    let (_, group) = server.get("/groups/py-group").await;
    assert_eq!(group["lag"].as_i64(), Some(0), "{group}");
    let committed: i64 = group["offsets"].as_array().expect("offsets").iter().map(|o| o["committedOffset"].as_i64().unwrap_or(0)).sum();
    assert_eq!(committed, 300, "{group}");
    // SQL reads the Python producer's records.
    assert_eq!(server.rows("SELECT n FROM kp WHERE k = 'k42';").await, vec![vec![Value::from(42)]]);
}

#[tokio::test(flavor = "multi_thread")]
async fn confluent_kafka_lz4_and_zstd_batches_are_stored_and_read_by_consumers_and_sql() {
    require_python_module("confluent_kafka");
    let server = TestServer::start();
    server.ksql_ok("CREATE STREAM cc (k VARCHAR KEY, codec VARCHAR, n INT) WITH (kafka_topic='cc', value_format='JSON', partitions=3);").await;
    let report = python("confluent_compression.py", &[&server.kafka, "cc", "cc-group"]);
    assert_eq!(report["delivery_errors"], serde_json::json!([]), "{report}");
    assert_eq!((report["delivered"].as_u64(), report["consumed"].as_u64()), (Some(1000), Some(1000)), "{report}");
    assert_eq!(report["values_match_keys"], Value::Bool(true), "{report}");
    let rows = server.rows("SELECT k, codec FROM cc WHERE n = 7;").await;
    let mut keys: Vec<String> = rows.iter().map(|r| r[0].as_str().unwrap_or("").to_string()).collect();
    keys.sort();
    assert_eq!(keys, vec!["lz4-7".to_string(), "zstd-7".to_string()]);
    let (_, group) = server.get("/groups/cc-group").await;
    assert_eq!(group["lag"].as_i64(), Some(0), "{group}");
}

/// Keys a SQL pull query over the stream returns (it reads committed data only).
async fn sql_keys(server: &TestServer, stream: &str) -> Vec<String> {
    let mut keys: Vec<String> = server.rows(&format!("SELECT k FROM {stream};")).await.iter().map(|r| r[0].as_str().unwrap_or("").to_string()).collect();
    keys.sort();
    keys
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().expect("array").iter().map(|k| k.as_str().unwrap_or("").to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn confluent_kafka_transactions_commit_abort_fence_and_an_open_one_is_aborted_by_a_crash() {
    require_python_module("confluent_kafka");
    let mut server = TestServer::start();
    server.ksql_ok("CREATE STREAM tx (k VARCHAR KEY, n INT, txn VARCHAR) WITH (kafka_topic='tx', value_format='JSON', partitions=1);").await;
    let run = python("confluent_transactions.py", &[&server.kafka, "tx", "run"]);
    assert_eq!(run["fenced"], Value::Bool(true), "a second instance with the same transactional.id fences the first: {run}");
    assert_eq!(run["source_committed_offset"].as_i64(), Some(10), "offsets sent in the transaction are committed with it: {run}");
    let mut expected: Vec<String> = (0..100).map(|i| format!("c1-{i}")).chain((0..10).map(|i| format!("t-s{i}"))).chain(["c2-0".to_string()]).collect();
    expected.sort();
    let seen = python("confluent_transactions.py", &[&server.kafka, "tx", "count"]);
    assert_eq!(strings(&seen["committed"]), expected, "read_committed sees committed transactions only");
    let uncommitted = strings(&seen["uncommitted"]);
    assert_eq!(uncommitted.iter().filter(|k| k.starts_with("a-")).count(), 50, "read_uncommitted sees the aborted records too");
    assert_eq!(sql_keys(&server, "tx").await, expected, "SQL reads committed data only");

    // A producer dies with its transaction open: committed readers stop at it...
    python("confluent_transactions.py", &[&server.kafka, "tx", "leave-open"]);
    python("confluent_transactions.py", &[&server.kafka, "tx", "commit-one"]);
    assert_eq!(sql_keys(&server, "tx").await, expected, "the open transaction holds back what follows it");
    // ...until a restart aborts it (as a coordinator does when a transaction times out).
    server.kill9();
    server.restart();
    let seen = python("confluent_transactions.py", &[&server.kafka, "tx", "count"]);
    let committed = strings(&seen["committed"]);
    assert!(committed.contains(&"after-0".to_string()), "{committed:?}");
    assert!(!committed.iter().any(|k| k.starts_with("open-")), "the open transaction was aborted: {committed:?}");
    let mut after = expected.clone();
    after.push("after-0".to_string());
    after.sort();
    assert_eq!(sql_keys(&server, "tx").await, after);
}

#[tokio::test(flavor = "multi_thread")]
async fn confluent_avro_serdes_produce_to_a_stream_without_columns_and_read_its_csas_output() {
    require_python_module("confluent_kafka.schema_registry.avro");
    let server = TestServer::start();
    let registry = server.url.clone();
    server.ksql_ok("CREATE STREAM raw (a INT) WITH (kafka_topic='users', value_format='JSON', partitions=2);").await;
    let produced = python("confluent_avro.py", &[&server.kafka, &registry, "produce", "users", "10"]);
    assert_eq!(produced["produced"], 10, "{produced}");
    // No columns: they come from the schema the serializer registered under users-value.
    server.ksql_ok("CREATE STREAM users WITH (kafka_topic='users', value_format='AVRO');").await;
    let (_, described) = server.ksql("DESCRIBE users;").await;
    let fields: Vec<&str> = described[0]["sourceDescription"]["fields"].as_array().expect("fields").iter().filter_map(|f| f["name"].as_str()).collect();
    assert_eq!(fields, vec!["NAME", "AGE", "TAGS", "SCORE"], "{described}");
    let (status, body) = server
        .ksql_with(
            "CREATE STREAM adults WITH (value_format='AVRO') AS SELECT name, age, tags, score * 2 AS double_score FROM users WHERE age IS NULL OR age >= 15;",
            serde_json::json!({"auto.offset.reset": "earliest"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // users 0 and 5 have no age; 6..9 are 16..19.
    let read = python("confluent_avro.py", &[&server.kafka, &registry, "consume", "ADULTS", "6"]);
    assert_eq!(read["fields"], serde_json::json!(["NAME", "AGE", "TAGS", "DOUBLE_SCORE"]), "{read}");
    let mut rows: Vec<String> = read["rows"].as_array().expect("rows").iter().map(|r| r.to_string()).collect();
    rows.sort();
    assert_eq!(rows.len(), 6, "{read}");
    assert!(rows.contains(&r#"{"NAME":"user7","AGE":17,"TAGS":["t","7"],"DOUBLE_SCORE":"14.50"}"#.to_string()), "{rows:?}");
    assert!(rows.contains(&r#"{"NAME":"user0","AGE":null,"TAGS":["t","0"],"DOUBLE_SCORE":"0.50"}"#.to_string()), "{rows:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn confluent_json_schema_serdes_round_trip_through_a_json_sr_stream() {
    require_python_module("confluent_kafka.schema_registry.json_schema");
    let server = TestServer::start();
    let registry = server.url.clone();
    server.ksql_ok("CREATE STREAM raw (a INT) WITH (kafka_topic='visits', value_format='JSON', partitions=1);").await;
    let produced = python("confluent_json_sr.py", &[&server.kafka, &registry, "produce", "visits", "5"]);
    assert_eq!(produced["produced"], 5, "{produced}");
    server.ksql_ok("CREATE STREAM visits WITH (kafka_topic='visits', value_format='JSON_SR');").await;
    let (status, body) = server
        .ksql_with(
            "CREATE STREAM long_visits WITH (value_format='JSON_SR') AS SELECT page, seconds * 60 AS ms FROM visits WHERE seconds >= 2;",
            serde_json::json!({"auto.offset.reset": "earliest"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let read = python("confluent_json_sr.py", &[&server.kafka, &registry, "consume", "LONG_VISITS", "3"]);
    assert_eq!(read["schema_type"], "JSON", "{read}");
    let mut rows: Vec<String> = read["rows"].as_array().expect("rows").iter().map(|r| r.to_string()).collect();
    rows.sort();
    assert_eq!(rows, vec![r#"{"PAGE":"/p2","MS":120}"#, r#"{"PAGE":"/p3","MS":180}"#, r#"{"PAGE":"/p4","MS":240}"#], "{read}");
}

#[tokio::test(flavor = "multi_thread")]
async fn confluent_protobuf_serdes_produce_to_a_stream_without_columns_and_read_its_csas_output() {
    require_python_module("confluent_kafka.schema_registry.protobuf");
    let server = TestServer::start();
    let registry = server.url.clone();
    server.ksql_ok("CREATE STREAM raw (a INT) WITH (kafka_topic='orders', value_format='JSON', partitions=1);").await;
    let produced = python("confluent_protobuf.py", &[&server.kafka, &registry, "produce", "orders", "6"]);
    assert_eq!(produced["produced"], 6, "{produced}");
    // The file's first message is Customer: the full name picks Order.
    server.ksql_ok("CREATE STREAM orders WITH (kafka_topic='orders', value_format='PROTOBUF', value_schema_full_name='shop.Order');").await;
    let (_, described) = server.ksql("DESCRIBE orders;").await;
    let fields: Vec<&str> = described[0]["sourceDescription"]["fields"].as_array().expect("fields").iter().filter_map(|f| f["name"].as_str()).collect();
    assert_eq!(fields, vec!["ID", "QTY", "PRICE", "TAGS", "CUSTOMER", "STATUS", "ATTRS", "CREATED"], "{described}");
    let (status, body) = server
        .ksql_with(
            "CREATE STREAM big_orders WITH (value_format='PROTOBUF') AS SELECT id, qty * 2 AS double_qty, tags[2] AS tag, customer->name AS customer, \
             status, attrs['a'] AS a, created FROM orders WHERE qty >= 3;",
            serde_json::json!({"auto.offset.reset": "earliest"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let read = python("confluent_protobuf.py", &[&server.kafka, &registry, "consume", "BIG_ORDERS", "3"]);
    assert_eq!(read["schema_type"], "PROTOBUF", "{read}");
    let mut rows: Vec<String> = read["rows"].as_array().expect("rows").iter().map(|r| r.to_string()).collect();
    rows.sort();
    assert_eq!(rows.len(), 3, "{read}");
    // Timestamps are google.protobuf.Timestamp in RFC 3339 through MessageToDict; int64 as strings.
    assert_eq!(rows[0], r#"{"ID":"o3","DOUBLE_QTY":6,"TAG":"3","CUSTOMER":"c3","STATUS":"NEW","A":"30","CREATED":"2023-11-14T22:13:20.003Z"}"#, "{read}");
}
