//! ksqlDB's REST routes beyond /ksql and /query, reached the way ksqlDB's clients reach
//! them: `/inserts-stream` over HTTP/1.1 and HTTP/2 (each row acknowledged while the
//! request is still open), `/status/{type}/{entity}/{action}`, `/clusterStatus`,
//! `/is_valid_property/{name}`, `/lag` and `/ksql/terminate`.

mod common;

use bytes::Bytes;
use common::TestServer;
use serde_json::{Value, json};
use tokio::sync::mpsc;

const DELIMITED: &str = "application/vnd.ksqlapi.delimited.v1";

async fn setup(s: &TestServer) {
    s.ksql_ok("CREATE STREAM readings (id INT KEY, sensor STRING, v DOUBLE) WITH (kafka_topic='readings', value_format='JSON', partitions=2);").await;
    s.ksql_ok("CREATE TABLE latest (id INT PRIMARY KEY, v DOUBLE) WITH (kafka_topic='latest', value_format='JSON', partitions=1);").await;
}

/// Reads the response until `n` complete ack lines arrived.
async fn next_acks(resp: &mut reqwest::Response, pending: &mut String, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        if let Some(i) = pending.find('\n') {
            let line: String = pending.drain(..=i).collect();
            out.push(serde_json::from_str(line.trim()).expect("an ack is JSON"));
            continue;
        }
        let chunk = resp.chunk().await.expect("response").expect("the stream ended early");
        pending.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
    }
    out
}

async fn streamed_inserts(client: reqwest::Client, s: &TestServer) {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) }));
    tx.send(Ok(Bytes::from("{\"target\":\"readings\",\"properties\":{}}\n{\"ID\":1,\"SENSOR\":\"a\",\"V\":1.5}\n"))).await.expect("send");
    let mut resp = client.post(format!("{}/inserts-stream", s.url)).header("content-type", DELIMITED).body(body).send().await.expect("request");
    assert_eq!(resp.status(), 200);
    let mut pending = String::new();
    // The first row is acknowledged while the request is still open.
    assert_eq!(next_acks(&mut resp, &mut pending, 1).await, vec![json!({"status": "ok", "seq": 0})]);
    tx.send(Ok(Bytes::from("{\"id\":2,\"sensor\":\"b\"}\nnot json\n{\"ID\":3,\"COLOUR\":\"red\"}\n{\"ID\":\"four\"}\n[1]\n"))).await.expect("send");
    let acks = next_acks(&mut resp, &mut pending, 5).await;
    assert_eq!(acks[0], json!({"status": "ok", "seq": 1}));
    for (i, expected) in
        [(1, "not valid JSON"), (2, "Column name COLOUR does not exist in READINGS"), (3, "failed to parse \"four\""), (4, "must be a JSON object")]
    {
        assert_eq!(acks[i]["status"], "error", "{}", acks[i]);
        assert_eq!(acks[i]["seq"], json!(i + 1), "{}", acks[i]);
        assert!(acks[i]["message"].as_str().unwrap_or_default().contains(expected), "{}", acks[i]);
    }
    // Rows after a bad one are still written.
    tx.send(Ok(Bytes::from("{\"ID\":5,\"V\":2.5}"))).await.expect("send");
    drop(tx);
    assert_eq!(next_acks(&mut resp, &mut pending, 1).await, vec![json!({"status": "ok", "seq": 6})]);
    let mut rest = Vec::new();
    while let Some(c) = resp.chunk().await.expect("end") {
        rest.extend_from_slice(&c);
    }
    assert!(rest.is_empty() && pending.is_empty(), "nothing follows the last ack: {rest:?} {pending:?}");
}

#[tokio::test]
async fn inserts_stream_acknowledges_each_row_as_it_is_written_over_http1_and_http2() {
    let s = TestServer::start();
    setup(&s).await;
    streamed_inserts(reqwest::Client::new(), &s).await;
    let rows = s.wait_rows("SELECT id, sensor, v FROM readings EMIT CHANGES LIMIT 3;", 3).await;
    let mut ids: Vec<i64> = rows.iter().map(|r| r[0].as_i64().expect("id")).collect();
    ids.sort();
    assert_eq!(ids, vec![1, 2, 5]);
    assert!(rows.contains(&vec![json!(2), json!("b"), Value::Null]), "{rows:?}");

    // The Java and Node clients speak HTTP/2 without TLS (prior knowledge).
    let h2 = reqwest::Client::builder().http2_prior_knowledge().build().expect("client");
    streamed_inserts(h2, &s).await;
    s.wait_rows("SELECT id FROM readings EMIT CHANGES LIMIT 6;", 6).await;

    // With Accept: application/json the acknowledgements are one JSON array.
    let resp = reqwest::Client::new()
        .post(format!("{}/inserts-stream", s.url))
        .header("content-type", DELIMITED)
        .header("accept", "application/json")
        .body("{\"target\":\"READINGS\"}\n{\"ID\":9}\n{\"ID\":10}\n")
        .send()
        .await
        .expect("request");
    let acks: Value = serde_json::from_str(&resp.text().await.expect("body")).expect("a JSON array");
    assert_eq!(acks, json!([{"status": "ok", "seq": 0}, {"status": "ok", "seq": 1}]));
}

#[tokio::test]
async fn inserts_stream_refuses_unknown_targets_tables_and_endless_lines() {
    let s = TestServer::start();
    setup(&s).await;
    let client = reqwest::Client::new();
    let post = async |body: String| {
        let r = client.post(format!("{}/inserts-stream", s.url)).header("content-type", DELIMITED).body(body).send().await.expect("request");
        (r.status().as_u16(), r.text().await.expect("body"))
    };
    for (body, expected) in [
        ("{\"target\":\"nowhere\"}\n{\"ID\":1}\n".to_string(), "Cannot insert into an unknown stream: `NOWHERE`"),
        ("{\"target\":\"latest\"}\n{\"ID\":1}\n".to_string(), "/inserts-stream inserts into streams"),
        ("{\"properties\":{}}\n".to_string(), "no \\\"target\\\""),
        (String::new(), "The request body is empty"),
    ] {
        let (status, text) = post(body.clone()).await;
        assert_eq!(status, 400, "{body}: {text}");
        assert!(text.contains(expected), "{body}: {text}");
    }
    // A row line that never ends is cut off, not buffered without bound.
    let endless = format!("{{\"target\":\"readings\"}}\n{{\"ID\":1}}\n{{\"SENSOR\":\"{}", "x".repeat(3 << 20));
    let (status, text) = post(endless).await;
    assert_eq!(status, 200, "{text}");
    let acks: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("ack")).collect();
    assert_eq!(acks[0], json!({"status": "ok", "seq": 0}));
    assert!(acks[1]["message"].as_str().unwrap_or_default().contains("longer than"), "{text}");
    // The server still serves.
    s.ksql_ok("SHOW STREAMS;").await;
}

#[tokio::test]
async fn status_cluster_property_lag_and_terminate_routes_answer_as_ksqldb_does() {
    let s = TestServer::start();
    setup(&s).await;
    s.ksql_ok("CREATE STREAM hot AS SELECT * FROM readings WHERE v > 10;").await;

    let (status, body) = s.get("/status/stream/%60HOT%60/create").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "SUCCESS");
    let (status, body) = s.get("/status/stream/%60NOPE%60/create").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error_code"], 40400);

    let (status, body) = s.get("/clusterStatus").await;
    assert_eq!(status, 200, "{body}");
    let hosts = body["clusterStatus"].as_object().expect("hosts");
    assert_eq!(hosts.len(), 1, "{body}");
    let me = hosts.values().next().expect("this server");
    assert_eq!(me["hostAlive"], true);
    let queries = me["activeStandbyPerQuery"].as_object().expect("queries");
    assert!(queries.keys().any(|q| q.starts_with("CSAS_HOT_")), "{body}");

    assert_eq!(s.get("/is_valid_property/ksql.streams.auto.offset.reset").await, (200, json!(true)));
    assert_eq!(s.get("/is_valid_property/auto.offset.reset").await, (200, json!(true)));
    let (status, body) = s.get("/is_valid_property/not.a.property").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("not.a.property"), "{body}");
    let (status, _) = s.get("/is_valid_property/ksql.service.id").await;
    assert_eq!(status, 400, "a client cannot move the server's service id");

    let (status, body) = s.post("/lag", json!({"lagReportingRequest": {}})).await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = s.post("/ksql/terminate", json!({"deleteTopicList": ["HOT", "late.*"]})).await;
    assert_eq!(status, 200, "{body}");
    let shown = s.ksql_ok("SHOW STREAMS; SHOW TABLES; SHOW QUERIES;").await;
    assert_eq!(shown[0]["streams"], json!([]), "{shown}");
    assert_eq!(shown[1]["tables"], json!([]), "{shown}");
    assert_eq!(shown[2]["queries"], json!([]), "{shown}");
    assert_eq!(s.get("/topics/HOT").await.0, 404, "HOT matched the delete list");
    assert_eq!(s.get("/topics/readings").await.0, 200, "readings did not");
    let (status, body) = s.post("/ksql/terminate", json!({"deleteTopicList": ["("]})).await;
    assert_eq!(status, 400, "{body}");
    // Every topic matched: the read-only processing log's topic stays, the rest go.
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM again (id INT KEY) WITH (kafka_topic='again', value_format='JSON', partitions=1);").await;
    let (status, body) = s.post("/ksql/terminate", json!({"deleteTopicList": [".*"]})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(s.get("/topics/again").await.0, 404);
    assert_eq!(s.get("/topics/default_ksql_processing_log").await.0, 200);
}

#[tokio::test]
async fn query_stream_writes_each_row_in_its_own_http2_frame() {
    let s = TestServer::start();
    setup(&s).await;
    for i in 1..=3 {
        s.ksql_ok(&format!("INSERT INTO readings (id, sensor, v) VALUES ({i}, 's{i}', {i}.5);")).await;
    }
    s.ksql_ok("CREATE TABLE by_id AS SELECT id, COUNT(*) AS n FROM readings GROUP BY id;").await;
    s.wait_rows("SELECT * FROM by_id;", 3).await;
    let h2 = reqwest::Client::builder().http2_prior_knowledge().build().expect("client");
    for sql in ["SELECT id, sensor FROM readings EMIT CHANGES LIMIT 3;", "SELECT * FROM by_id;"] {
        let mut resp = h2
            .post(format!("{}/query-stream", s.url))
            .json(&json!({"sql": sql, "properties": {"auto.offset.reset": "earliest"}}))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 200);
        let mut frames = Vec::new();
        while let Some(c) = resp.chunk().await.expect("frame") {
            if !c.is_empty() {
                frames.push(String::from_utf8(c.to_vec()).expect("utf-8"));
            }
        }
        // The rows were all there when the query started, yet each has a frame of its own.
        assert_eq!(frames.len(), 4, "{sql}: metadata and three rows in four frames: {frames:?}");
        assert!(frames[0].contains("columnNames"), "{frames:?}");
        for f in &frames[1..] {
            assert_eq!(f.matches('\n').count(), 1, "one row per frame: {frames:?}");
            assert!(serde_json::from_str::<Value>(f.trim()).expect("a row").is_array());
        }
    }
}
