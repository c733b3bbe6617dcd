//! The first end-to-end pipeline, driven over HTTP as a user would: create a stream,
//! insert, derive a stream with a persistent query, watch it with a push query, inspect
//! the catalog, print a topic, terminate and drop.

mod common;

use std::time::Duration;

use common::TestServer;
use futures::StreamExt;
use serde_json::{Value, json};

const CREATE: &str = "CREATE STREAM pageviews (user_id VARCHAR KEY, page VARCHAR, dwell_ms BIGINT) \
    WITH (kafka_topic='pageviews', value_format='JSON', partitions=3);";
const CSAS: &str = "CREATE STREAM long_views AS SELECT user_id, UCASE(page) AS page, dwell_ms / 1000.0 AS dwell_s \
    FROM pageviews WHERE dwell_ms > 1000 EMIT CHANGES;";

fn message(entity: &Value) -> String {
    entity["commandStatus"]["message"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn quick_start_scenario_runs_end_to_end() {
    let s = TestServer::start();
    let created = s.ksql_ok(CREATE).await;
    assert_eq!(created[0]["@type"], "currentStatus");
    assert_eq!(message(&created[0]), "Stream created");
    assert_eq!(created[0]["commandId"], "stream/`PAGEVIEWS`/create");

    let inserted = s.ksql_ok("INSERT INTO pageviews (user_id, page, dwell_ms) VALUES ('u1', 'home', 1200);").await;
    assert_eq!(inserted, json!([]));
    s.ksql_ok("INSERT INTO pageviews (user_id, page, dwell_ms) VALUES ('u2', 'cart', 300);").await;

    let csas = s.ksql_ok(CSAS).await;
    let query_id = csas[0]["commandStatus"]["queryId"].as_str().expect("query id").to_string();
    assert!(query_id.starts_with("CSAS_LONG_VIEWS_"), "{query_id}");
    assert_eq!(message(&csas[0]), format!("Created query with ID {query_id}"));

    // The persistent query processed the earlier insert (auto.offset.reset=earliest).
    let rows = s.wait_rows("SELECT * FROM long_views;", 1).await;
    assert_eq!(rows[0][0], "u1");
    assert_eq!(rows[0][1], "HOME");
    assert_eq!(rows[0][2].as_f64(), Some(1.2));

    // A push query keeps streaming rows inserted after it started.
    let client = reqwest::Client::new();
    let resp =
        client.post(format!("{}/query", s.url)).json(&json!({"ksql": "SELECT * FROM long_views EMIT CHANGES;", "streamsProperties": {}})).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let mut text = String::new();
    while !text.contains("header") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next()).await.expect("header in time").unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains(r#""schema":"`USER_ID` STRING, `PAGE` STRING, `DWELL_S` DECIMAL"#), "{text}");
    s.ksql_ok("INSERT INTO pageviews (user_id, page, dwell_ms) VALUES ('u3', 'about', 5000);").await;
    while !text.contains("ABOUT") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next()).await.expect("row streamed in time").unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains(r#"{"row":{"columns":["u3","ABOUT",5.0000]}}"#), "{text}");
    drop(body);

    let streams = s.ksql_ok("SHOW STREAMS;").await;
    assert_eq!(common::user_streams(&streams), vec!["LONG_VIEWS", "PAGEVIEWS"]);

    let queries = s.ksql_ok("SHOW QUERIES;").await;
    let q = &queries[0]["queries"][0];
    assert_eq!(q["id"], query_id.as_str());
    assert_eq!(q["state"], "RUNNING");
    assert_eq!(q["sinks"], json!(["LONG_VIEWS"]));

    let topics = s.ksql_ok("SHOW TOPICS;").await;
    let listed = topics[0]["topics"].as_array().unwrap();
    let topic_names: Vec<&str> = listed.iter().map(|x| x["name"].as_str().unwrap()).filter(|n| *n != common::BUILT_IN_TOPIC).collect();
    assert_eq!(topic_names, vec!["LONG_VIEWS", "pageviews"]);
    let pageviews = listed.iter().find(|t| t["name"] == "pageviews").expect("pageviews");
    assert_eq!(pageviews["replicaInfo"].as_array().unwrap().len(), 3);

    let desc = s.ksql_ok("DESCRIBE long_views;").await;
    let d = &desc[0]["sourceDescription"];
    assert_eq!(d["name"], "LONG_VIEWS");
    assert_eq!(d["fields"][0], json!({"name": "USER_ID", "schema": {"type": "STRING", "fields": null, "memberSchema": null}, "type": "KEY"}));
    assert_eq!(d["fields"][1]["name"], "PAGE");
    assert_eq!(d["fields"][2]["schema"]["type"], "DECIMAL");
    assert_eq!(d["writeQueries"][0]["id"], query_id.as_str());

    // PRINT over /query streams text lines.
    let (status, printed) = s.post("/query", json!({"ksql": "PRINT 'pageviews' FROM BEGINNING LIMIT 2;"})).await;
    assert_eq!(status, 200);
    let printed = printed.as_str().unwrap().to_string();
    let records: Vec<&str> = printed.lines().filter(|l| l.starts_with("rowtime:")).collect();
    assert_eq!(records.len(), 2, "{printed}");
    assert!(printed.contains("Value format: JSON"), "{printed}");
    assert!(records.iter().all(|l| l.contains("value: {\"PAGE\":")), "{printed}");

    let terminated = s.ksql_ok(&format!("TERMINATE {query_id};")).await;
    assert_eq!(message(&terminated[0]), "Query terminated.");
    let queries = s.ksql_ok("SHOW QUERIES;").await;
    assert_eq!(queries[0]["queries"], json!([]));

    let dropped = s.ksql_ok("DROP STREAM long_views DELETE TOPIC;").await;
    assert_eq!(message(&dropped[0]), "Source `LONG_VIEWS` (topic: LONG_VIEWS) was dropped.");
    let topics = s.ksql_ok("SHOW TOPICS;").await;
    let left: Vec<&str> = topics[0]["topics"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).filter(|n| *n != common::BUILT_IN_TOPIC).collect();
    assert_eq!(left, vec!["pageviews"]);
}

#[tokio::test]
async fn push_query_with_limit_ends_with_limit_reached() {
    let s = TestServer::start();
    s.ksql_ok(CREATE).await;
    for i in 0..5 {
        s.ksql_ok(&format!("INSERT INTO pageviews (user_id, page, dwell_ms) VALUES ('u{i}', 'p', {i});")).await;
    }
    let out = s.query("SELECT user_id FROM pageviews EMIT CHANGES LIMIT 3;").await;
    assert_eq!(out.len(), 5, "{out:?}");
    assert_eq!(out[0]["header"]["schema"], "`USER_ID` STRING");
    assert_eq!(out[4], json!({"finalMessage": "Limit Reached"}));
}

#[tokio::test]
async fn query_stream_endpoint_uses_delimited_framing() {
    let s = TestServer::start();
    s.ksql_ok(CREATE).await;
    s.ksql_ok("INSERT INTO pageviews (user_id, page, dwell_ms) VALUES ('u1', 'home', 10);").await;
    let r = reqwest::Client::new()
        .post(format!("{}/query-stream", s.url))
        .json(&json!({"sql": "SELECT user_id, dwell_ms FROM pageviews;", "properties": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let meta: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(meta["columnNames"], json!(["USER_ID", "DWELL_MS"]));
    assert_eq!(meta["columnTypes"], json!(["STRING", "BIGINT"]));
    assert_eq!(lines[1], r#"["u1",10]"#);
}

#[tokio::test]
async fn query_stream_over_cleartext_http2_streams_a_push_query_and_statements_work_too() {
    let s = TestServer::start();
    // Prior knowledge, no upgrade: how ksqlDB's Java client talks to /query-stream.
    let h2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let r = h2.post(format!("{}/ksql", s.url)).json(&json!({"ksql": CREATE})).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    for i in 0..3 {
        s.ksql_ok(&format!("INSERT INTO pageviews (user_id, page, dwell_ms) VALUES ('u{i}', 'p', {i});")).await;
    }
    let r = h2
        .post(format!("{}/query-stream", s.url))
        .json(&json!({"sql": "SELECT user_id, dwell_ms FROM pageviews EMIT CHANGES LIMIT 2;", "properties": {"auto.offset.reset": "earliest"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    let text = tokio::time::timeout(Duration::from_secs(30), r.text()).await.expect("the push query ends at its limit").unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(serde_json::from_str::<Value>(lines[0]).unwrap()["columnNames"], json!(["USER_ID", "DWELL_MS"]));
    // Two of the three rows (they come from several partitions, in no fixed order).
    let mut rows: Vec<&str> = lines[1..].to_vec();
    rows.sort();
    rows.dedup();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(rows.iter().all(|r| [r#"["u0",0]"#, r#"["u1",1]"#, r#"["u2",2]"#].contains(r)), "{text}");
}

#[tokio::test]
async fn close_query_stops_a_push_query() {
    let s = TestServer::start();
    s.ksql_ok(CREATE).await;
    let resp = reqwest::Client::new().post(format!("{}/query", s.url)).json(&json!({"ksql": "SELECT * FROM pageviews EMIT CHANGES;"})).send().await.unwrap();
    let mut body = resp.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(10), body.next()).await.unwrap().unwrap().unwrap();
    let header: Value = serde_json::from_str(String::from_utf8_lossy(&first).trim_start_matches('[')).unwrap();
    let id = header["header"]["queryId"].as_str().unwrap().to_string();
    let (status, _) = s.post("/close-query", json!({"queryId": id})).await;
    assert_eq!(status, 200);
    // The response ends.
    let rest = tokio::time::timeout(Duration::from_secs(10), async {
        let mut t = String::new();
        while let Some(Ok(c)) = body.next().await {
            t.push_str(&String::from_utf8_lossy(&c));
        }
        t
    })
    .await
    .expect("stream ended after close-query");
    assert!(rest.trim_end().ends_with(']'), "{rest}");
    let (status, err) = s.post("/close-query", json!({"queryId": "nope"})).await;
    assert_eq!(status, 400);
    assert_eq!(err["error_code"], 40000);
}

#[tokio::test]
async fn insert_into_select_and_partition_by_rekey_records() {
    let s = TestServer::start();
    s.ksql_ok(CREATE).await;
    s.ksql_ok("CREATE STREAM by_page AS SELECT * FROM pageviews PARTITION BY page;").await;
    let desc = s.ksql_ok("DESCRIBE by_page;").await;
    let fields = &desc[0]["sourceDescription"]["fields"];
    assert_eq!(fields[0]["name"], "PAGE");
    assert_eq!(fields[0]["type"], "KEY");
    s.ksql_ok("CREATE STREAM all_views (user_id VARCHAR KEY, page VARCHAR, dwell_ms BIGINT) WITH (kafka_topic='all_views', partitions=1);").await;
    s.ksql_ok("INSERT INTO all_views SELECT * FROM pageviews WHERE dwell_ms >= 0;").await;
    s.ksql_ok("INSERT INTO pageviews (user_id, page, dwell_ms) VALUES ('u9', 'docs', 1);").await;
    let rows = s.wait_rows("SELECT * FROM by_page;", 1).await;
    // As in ksqlDB, `*` under PARTITION BY lists the values before the old key.
    assert_eq!(rows[0], vec![json!("docs"), json!(1), json!("u9")]);
    let rows = s.wait_rows("SELECT user_id FROM all_views;", 1).await;
    assert_eq!(rows[0], vec![json!("u9")]);
    // Records in by_page are keyed by page: PRINT shows the key.
    let (_, printed) = s.post("/query", json!({"ksql": "PRINT 'BY_PAGE' FROM BEGINNING LIMIT 1;"})).await;
    assert!(printed.as_str().unwrap().contains("key: docs"), "{printed}");
}

#[tokio::test]
async fn csas_with_timestamp_column_stamps_records_and_skips_bad_times() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM events (k VARCHAR KEY, id BIGINT, at VARCHAR) WITH (kafka_topic='events', value_format='JSON', partitions=1);").await;
    s.ksql_ok(
        "CREATE STREAM stamped WITH (kafka_topic='stamped', timestamp='AT', timestamp_format='yyyy-MM-dd''T''HH:mm:ssX') AS SELECT k, id, at FROM events;",
    )
    .await;
    s.produce(
        "events",
        vec![
            json!({"key": "a", "value": {"id": 1, "at": "2018-05-11T21:58:33Z"}}),
            json!({"key": "b", "value": {"id": 2, "at": "not a timestamp"}}),
            json!({"key": "c", "value": {"id": 3, "at": "2019-05-11T21:58:33Z"}}),
        ],
    )
    .await;
    s.wait_until("two stamped records", async |s| s.read_topic("stamped").await.len() == 2).await;
    let records = s.read_topic("stamped").await;
    let times: Vec<i64> = records.iter().map(|(_, r)| r["timestamp"].as_i64().unwrap_or_default()).collect();
    assert_eq!(times, vec![1_526_075_913_000, 1_557_611_913_000]);
    // The column must hold a time.
    let (status, body) = s.ksql("CREATE STREAM bad WITH (timestamp='NOPE') AS SELECT k, id FROM events;").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("does not exist"), "{body}");
    let (status, body) = s.ksql("CREATE STREAM bad WITH (timestamp='D') AS SELECT k, CAST(id AS DOUBLE) AS d FROM events;").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("should be LONG(INT64), TIMESTAMP, or a String with a timestamp_format"), "{body}");
}

#[tokio::test]
async fn expressions_cover_case_cast_like_in_between_and_nested_access() {
    let s = TestServer::start();
    s.ksql_ok(
        "CREATE STREAM events (id INT KEY, name VARCHAR, score DOUBLE, tags ARRAY<VARCHAR>, attrs MAP<VARCHAR, INT>, \
         addr STRUCT<city VARCHAR, zip INT>) WITH (kafka_topic='events', partitions=1);",
    )
    .await;
    s.ksql_ok(
        "INSERT INTO events (id, name, score, tags, attrs, addr) VALUES \
         (1, 'alice', 9.5, ARRAY['a', 'b'], MAP('x' := 1), STRUCT(city := 'Oslo', zip := 150));",
    )
    .await;
    s.ksql_ok("INSERT INTO events (id, name, score) VALUES (2, 'bob', NULL);").await;
    let rows = s
        .rows(
            "SELECT id, CASE WHEN score > 9 THEN 'high' ELSE 'low' END AS level, CAST(score AS INT) AS s, \
             name LIKE 'a%' AS a, id IN (1, 3) AS one, score BETWEEN 1 AND 10 AS mid, score IS NULL AS missing, \
             tags[1] AS t1, tags[-1] AS tlast, attrs['x'] AS x, addr->city AS city, LEN(name) AS n, \
             SUBSTRING(name, 2, 2) AS sub, CONCAT(name, '!') AS c, ROWPARTITION AS p, ROWOFFSET AS o \
             FROM events EMIT CHANGES LIMIT 2;",
        )
        .await;
    assert_eq!(
        rows[0],
        vec![
            json!(1),
            json!("high"),
            json!(9),
            json!(true),
            json!(true),
            json!(true),
            json!(false),
            json!("a"),
            json!("b"),
            json!(1),
            json!("Oslo"),
            json!(5),
            json!("li"),
            json!("alice!"),
            json!(0),
            json!(0)
        ]
    );
    assert_eq!(rows[1][1], "low");
    assert_eq!(rows[1][6], true);
    assert_eq!(rows[1][7], Value::Null);
}
