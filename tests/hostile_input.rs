//! Input an attacker or a careless client sends never takes the server down or keeps it
//! down: deeply nested statements and records, writes to internal topics, requests a web
//! page makes behind the user's back, and oversized bodies all get clear refusals, and the
//! server goes on serving.

mod common;

use common::TestServer;
use serde_json::{Value, json};

/// POST /query or /ksql with a statement.
async fn statement(s: &TestServer, sql: &str) -> (u16, Value) {
    let path = if sql.starts_with("SELECT") { "/query" } else { "/ksql" };
    s.post(path, json!({"ksql": sql, "streamsProperties": {"auto.offset.reset": "earliest"}})).await
}

async fn assert_serving(s: &TestServer, after: &str) {
    let (status, body) = s.get("/healthcheck").await;
    assert_eq!(status, 200, "after {after}: {body}");
    s.ksql_ok("SHOW STREAMS;").await;
}

#[tokio::test]
async fn deeply_nested_statements_are_refused_with_a_position_and_the_server_keeps_serving() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM s (id VARCHAR KEY, n INT) WITH (kafka_topic='s', partitions=1, value_format='JSON');").await;
    s.ksql_ok("CREATE TABLE t AS SELECT id, COUNT(*) AS n FROM s GROUP BY id;").await;
    let nested = |open: &str, inner: &str, close: &str, n: usize| format!("{}{inner}{}", open.repeat(n), close.repeat(n));
    let cases = [
        ("5,000 parentheses in a pull query", format!("SELECT * FROM t WHERE {};", nested("(", "n = 1", ")", 5000))),
        ("50,000 ANDs", format!("SELECT * FROM t WHERE {};", vec!["n = 1"; 50_000].join(" AND "))),
        ("20,000 NOTs", format!("SELECT * FROM t WHERE {}n = 1;", "NOT ".repeat(20_000))),
        ("a chain of 50,000 +1", format!("SELECT n{} FROM t;", " + 1".repeat(50_000))),
        ("5,000 nested ABS(", format!("SELECT {} FROM t;", nested("ABS(", "n", ")", 5000))),
        ("parentheses in INSERT VALUES", format!("INSERT INTO s (id, n) VALUES ('a', {});", nested("(", "1", ")", 5000))),
        ("parentheses in a CSAS WHERE", format!("CREATE STREAM deep AS SELECT * FROM s WHERE {};", nested("(", "n = 1", ")", 5000))),
        ("a STRUCT type nested 5,000 deep", format!("CREATE STREAM z (a {}) WITH (kafka_topic='z', partitions=1);", nested("STRUCT<x ", "INT", ">", 5000))),
        ("20,000 unary minus signs", format!("SELECT {}n FROM t;", "- ".repeat(20_000))),
    ];
    for (what, sql) in cases {
        let (status, body) = statement(&s, &sql).await;
        assert_eq!(status, 400, "{what}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains("nests too deeply") && message.contains("stack depth limit exceeded"), "{what}: {message}");
        assert!(message.starts_with("line 1:"), "{what}: the refusal names the position: {message}");
        assert_serving(&s, what).await;
    }
    // A long flat list is not nesting: 20,000 values in IN (...) are answered.
    let values: Vec<String> = (0..20_000).map(|i| i.to_string()).collect();
    for sql in [format!("SELECT * FROM s WHERE n IN ({});", values.join(", ")), format!("SELECT * FROM t WHERE n IN ({});", values.join(", "))] {
        let (status, body) = statement(&s, &sql).await;
        assert_eq!(status, 200, "{}", body.to_string().chars().take(300).collect::<String>());
    }
    assert_serving(&s, "a long IN list").await;
    // Nothing was created by the refused statements.
    let (_, streams) = s.ksql("SHOW STREAMS;").await;
    let names: Vec<&str> = streams[0]["streams"].as_array().unwrap().iter().filter_map(|x| x["name"].as_str()).collect();
    assert!(!names.contains(&"DEEP") && !names.contains(&"Z"), "{names:?}");
}

#[tokio::test]
async fn statements_at_the_depth_limit_run_and_replay_after_a_restart() {
    let mut s = TestServer::start();
    s.ksql_ok("CREATE STREAM s (id VARCHAR KEY, n INT) WITH (kafka_topic='s', partitions=1, value_format='JSON');").await;
    let depth = 240;
    let filter = format!("{}n > 0{}", "(".repeat(depth), ")".repeat(depth));
    let value = format!("{}n{}", "ABS(".repeat(depth), ")".repeat(depth));
    s.ksql_ok(&format!("CREATE STREAM deep AS SELECT id, {value} AS a, n{} AS b FROM s WHERE {filter};", " + 1".repeat(depth))).await;
    s.ksql_ok("INSERT INTO s (id, n) VALUES ('k1', -5);").await;
    s.ksql_ok("INSERT INTO s (id, n) VALUES ('k2', 7);").await;
    let rows = s.wait_rows("SELECT id, a, b FROM deep;", 1).await;
    assert_eq!(rows[0], vec![json!("k2"), json!(7), json!(7 + depth as i64)]);
    // What was accepted replays: the server starts and the query runs on.
    s.stop();
    s.restart();
    let (_, queries) = s.ksql("SHOW QUERIES;").await;
    let q = &queries[0]["queries"][0];
    assert_eq!(q["state"], "RUNNING", "{queries}");
    s.ksql_ok("INSERT INTO s (id, n) VALUES ('k3', 1);").await;
    s.wait_rows("SELECT id FROM deep;", 2).await;
}

#[tokio::test]
async fn a_record_nested_beyond_the_limit_is_a_counted_bad_record_and_does_not_brick_the_server() {
    let mut s = TestServer::start();
    s.ksql_ok("CREATE STREAM s (id VARCHAR KEY, v VARCHAR, n INT) WITH (kafka_topic='s', partitions=1, value_format='JSON');").await;
    s.ksql_ok("CREATE STREAM copy AS SELECT * FROM s;").await;
    let deep = format!("{{\"v\": {}{}, \"n\": 1}}", "[".repeat(50_000), "]".repeat(50_000));
    s.produce("s", vec![json!({"key": "bad", "value": deep}), json!({"key": "good", "value": "{\"v\": \"ok\", \"n\": 2}"})]).await;
    let rows = s.wait_rows("SELECT id, n FROM copy;", 1).await;
    assert_eq!(rows[0], vec![json!("good"), json!(2)]);
    // A pull query over the stream skips it too.
    assert_eq!(s.rows("SELECT id FROM s;").await, vec![vec![json!("good")]]);
    let (_, d) = s.ksql("DESCRIBE copy EXTENDED;").await;
    let stats = d[0]["sourceDescription"]["errorStats"].as_str().unwrap_or_default().to_string();
    assert!(stats.contains("nests more than 1000 levels"), "the bad record is counted with its reason: {d}");
    // And the data directory still starts.
    s.kill9();
    s.restart();
    assert_eq!(s.rows("SELECT id FROM s;").await, vec![vec![json!("good")]]);
    s.ksql_ok("INSERT INTO s (id, v, n) VALUES ('after', 'x', 3);").await;
    s.wait_rows("SELECT id FROM copy;", 2).await;
}

#[tokio::test]
async fn internal_topics_cannot_be_written_deleted_or_declared_writable() {
    let mut s = TestServer::start();
    s.ksql_ok("CREATE STREAM s (id VARCHAR KEY, n INT) WITH (kafka_topic='s', partitions=1, value_format='JSON');").await;
    s.ksql_ok("CREATE TABLE c AS SELECT n, COUNT(*) AS k FROM s GROUP BY n;").await;
    let (status, body) = s.post("/topics/_eddy_command_topic/records", json!({"records": [{"value": "garbage"}]})).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["message"].as_str().unwrap().contains("internal"), "{body}");
    let repartition = s.get("/topics").await.1["topics"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .find(|n| n.ends_with("_repartition"))
        .map(str::to_string);
    for topic in ["_eddy_command_topic".to_string()].into_iter().chain(repartition) {
        let (status, body) = s.ksql(&format!("CREATE STREAM grab (v VARCHAR) WITH (kafka_topic='{topic}', value_format='JSON');")).await;
        assert_eq!(status, 400, "{topic}: {body}");
        assert!(body["message"].as_str().unwrap().contains("CREATE SOURCE STREAM"), "{body}");
        // Reading through a read-only source is allowed; deleting its topic is not.
        s.ksql_ok(&format!("CREATE SOURCE STREAM peek (v VARCHAR) WITH (kafka_topic='{topic}', value_format='JSON');")).await;
        let (status, body) = s.ksql("DROP STREAM peek DELETE TOPIC;").await;
        assert_eq!(status, 400, "{body}");
        let (status, body) = s.ksql("INSERT INTO peek (v) VALUES ('x');").await;
        assert_eq!(status, 400, "{body}");
        s.ksql_ok("DROP STREAM peek;").await;
        let (status, body) = s.ksql(&format!("CREATE STREAM out WITH (kafka_topic='{topic}') AS SELECT * FROM s;")).await;
        assert_eq!(status, 400, "{topic}: {body}");
    }
    let (status, body) = s.ksql("CREATE STREAM fresh (v VARCHAR) WITH (kafka_topic='_eddy_mine', partitions=1);").await;
    assert_eq!(status, 400, "{body}");
    // The catalog and the query are intact after a restart.
    s.stop();
    s.restart();
    s.ksql_ok("INSERT INTO s (id, n) VALUES ('a', 1);").await;
    s.wait_rows("SELECT * FROM c WHERE n = 1;", 1).await;
}

/// A raw HTTP/1.1 request; the status code and body of the answer.
async fn raw(s: &TestServer, request: String) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.url.trim_start_matches("http://").to_string();
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), c.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    (status, body)
}

fn post(path: &str, headers: &str, body: &str) -> String {
    format!("POST {path} HTTP/1.1\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}", body.len())
}

#[tokio::test]
async fn web_pages_cannot_drive_the_api_behind_the_users_back() {
    let s = TestServer::start_with(&["--http-allow-origin", "https://console.example"]);
    let create = r#"{"ksql": "CREATE STREAM x (v VARCHAR) WITH (kafka_topic='x', partitions=1);"}"#;
    // A simple cross-site request (text/plain, form, or no type) is refused before it runs.
    for ct in ["content-type: text/plain\r\n", "content-type: application/x-www-form-urlencoded\r\n", ""] {
        let (status, body) = raw(&s, post("/ksql", &format!("host: 127.0.0.1\r\n{ct}"), create)).await;
        assert_eq!(status, 415, "{ct:?}: {body}");
        assert!(body.contains("application/json"), "{body}");
    }
    // Another origin, even with JSON: refused.
    let (status, body) = raw(&s, post("/ksql", "host: 127.0.0.1\r\norigin: http://attacker.example\r\ncontent-type: application/json\r\n", create)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("--http-allow-origin"), "{body}");
    // DNS rebinding: a foreign Host on a loopback listener.
    let (status, body) = raw(&s, post("/ksql", "host: attacker.example:8088\r\ncontent-type: application/json\r\n", create)).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = raw(&s, "GET /info HTTP/1.1\r\nhost: attacker.example\r\nconnection: close\r\n\r\n".into()).await;
    assert_eq!(status, 403);
    // Lookups answered on the fast path follow the same rules.
    let pull = r#"{"ksql": "SELECT * FROM x;"}"#;
    let (status, _) = raw(&s, post("/query", "host: attacker.example\r\ncontent-type: application/json\r\n", pull)).await;
    assert_eq!(status, 403);
    let (status, _) = raw(&s, post("/query", "host: 127.0.0.1\r\ncontent-type: text/plain\r\n", pull)).await;
    assert_eq!(status, 415);
    let (_, streams) = s.ksql("SHOW STREAMS;").await;
    assert_eq!(common::user_streams(&streams).len(), 0, "no refused request ran: {streams}");
    // The allowed origin gets CORS, including preflights.
    let c = reqwest::Client::new();
    let pre = c
        .request(reqwest::Method::OPTIONS, format!("{}/ksql", s.url))
        .header("origin", "https://console.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 204);
    assert_eq!(pre.headers()["access-control-allow-origin"], "https://console.example");
    let r = c.post(format!("{}/ksql", s.url)).header("origin", "https://console.example").json(&json!({"ksql": "SHOW STREAMS;"})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "https://console.example");
    // ksqlDB's own content type is accepted.
    let r = c.post(format!("{}/ksql", s.url)).header("content-type", "application/vnd.ksql.v1+json").body(r#"{"ksql": "SHOW STREAMS;"}"#).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn an_oversized_body_gets_ksqldbs_json_error() {
    let s = TestServer::start_with(&["--http-max-body-bytes", "4096"]);
    let big = "x".repeat(10_000);
    let (status, body) = s.post("/topics/t/records", json!({"records": [{"value": big}]})).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error_code"], 41300, "{body}");
    assert!(body["message"].as_str().unwrap().contains("4096"), "{body}");
    assert_serving(&s, "an oversized body").await;
}
