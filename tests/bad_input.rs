//! Bad input gets a clear error and loses nothing: malformed SQL is a 400 with a position,
//! malformed records are counted and skipped while the query keeps running.

mod common;

use common::TestServer;
use serde_json::json;

#[tokio::test]
async fn malformed_sql_is_a_statement_error_with_line_and_column() {
    let s = TestServer::start();
    let (status, body) = s.ksql("SHOW STREAMS;\nSELECT *\n  FRM pageviews;").await;
    assert_eq!(status, 400);
    assert_eq!(body["@type"], "statement_error");
    assert_eq!(body["error_code"], 40001);
    let msg = body["message"].as_str().unwrap();
    assert!(msg.starts_with("line 3:3: Syntax Error\nexpected FROM, found 'FRM'\nStatement: SELECT *\n  FRM pageviews;"), "{msg}");
    assert!(msg.contains("Hint:"), "{msg}");
}

#[tokio::test]
async fn non_json_bodies_and_missing_fields_are_bad_requests() {
    let s = TestServer::start();
    // A body that is not sent as JSON is refused for its type (a browser could send it).
    let r = reqwest::Client::new().post(format!("{}/ksql", s.url)).body("SHOW STREAMS;").send().await.unwrap();
    assert_eq!(r.status(), 415);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["@type"], "generic_error");
    assert_eq!(body["error_code"], 41500);
    // Sent as JSON but not JSON: a malformed request.
    let r = reqwest::Client::new().post(format!("{}/ksql", s.url)).header("content-type", "application/json").body("SHOW STREAMS;").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["@type"], "generic_error");
    assert_eq!(body["error_code"], 40000);
    let (status, body) = s.post("/ksql", json!({"sql": "SHOW STREAMS;"})).await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("'ksql'"), "{body}");
    let (status, body) = s.post("/query", json!([1, 2])).await;
    assert_eq!(status, 400);
    assert_eq!(body["error_code"], 40000);
    // The server keeps serving.
    s.ksql_ok("SHOW STREAMS;").await;
}

#[tokio::test]
async fn select_sent_to_ksql_endpoint_names_the_right_endpoint() {
    let s = TestServer::start();
    let (status, body) = s.ksql("SELECT * FROM x EMIT CHANGES;").await;
    assert_eq!(status, 400);
    assert_eq!(body["error_code"], 40002);
    assert!(body["message"].as_str().unwrap().contains("/query"));
}

#[tokio::test]
async fn a_query_on_an_unknown_source_is_a_statement_error_that_quotes_the_statement() {
    let s = TestServer::start();
    for sql in ["SELECT * FROM nope;", "SELECT * FROM nope EMIT CHANGES;", "SELECT * FROM nope WHERE id = 'k';"] {
        let (status, body) = s.post("/query", json!({"ksql": sql})).await;
        assert_eq!(status, 400, "{sql}: {body}");
        assert_eq!(body["@type"], "statement_error", "{sql}: {body}");
        assert!(body["message"].as_str().unwrap_or_default().contains("NOPE does not exist"), "{sql}: {body}");
        assert_eq!(body["statementText"], sql, "{sql}: {body}");
    }
}

#[tokio::test]
async fn unknown_streams_and_columns_are_named() {
    let s = TestServer::start();
    let (status, body) = s.ksql("CREATE STREAM x AS SELECT * FROM nope;").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("NOPE does not exist"), "{body}");
    s.ksql_ok("CREATE STREAM s (id INT KEY, v VARCHAR) WITH (kafka_topic='s', partitions=1);").await;
    let (status, body) = s.ksql("CREATE STREAM y AS SELECT id, missing_col FROM s;").await;
    assert_eq!(status, 400);
    let msg = body["message"].as_str().unwrap();
    assert!(msg.contains("column 'MISSING_COL' cannot be resolved"), "{msg}");
    assert!(msg.contains("ID, V"), "{msg}");
    let (status, body) = s.ksql("INSERT INTO nope (a) VALUES (1);").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("unknown stream/table: `NOPE`"), "{body}");
    let (status, body) = s.ksql("INSERT INTO s (id, v) VALUES ('abc', 'x');").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("Expected type INTEGER for field ID"), "{body}");
    let (status, body) = s.ksql("CREATE STREAM t (id INT KEY) WITH (kafka_topic='new_topic');").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("PARTITIONS"), "{body}");
}

#[tokio::test]
async fn malformed_records_are_counted_and_the_query_keeps_running() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM pv (user_id VARCHAR KEY, page VARCHAR, dwell_ms BIGINT) WITH (kafka_topic='pv', partitions=1);").await;
    // A second view of the same topic that writes raw text, to produce bad records.
    s.ksql_ok("CREATE STREAM pv_raw (line VARCHAR) WITH (kafka_topic='pv', value_format='KAFKA');").await;
    s.ksql_ok("CREATE STREAM out AS SELECT user_id, page FROM pv;").await;
    s.ksql_ok("INSERT INTO pv (user_id, page, dwell_ms) VALUES ('u1', 'a', 1);").await;
    s.ksql_ok("INSERT INTO pv_raw (line) VALUES ('this is not json');").await;
    s.ksql_ok(r#"INSERT INTO pv_raw (line) VALUES ('{"PAGE": "b", "DWELL_MS": "not a number"}');"#).await;
    s.ksql_ok("INSERT INTO pv (user_id, page, dwell_ms) VALUES ('u2', 'c', 2);").await;
    let rows = s.wait_rows("SELECT * FROM out;", 2).await;
    assert_eq!(rows[0][1], "a");
    assert_eq!(rows[1][1], "c");
    let queries = s.ksql_ok("SHOW QUERIES;").await;
    assert_eq!(queries[0]["queries"][0]["processingErrors"], 2);
    assert_eq!(queries[0]["queries"][0]["state"], "RUNNING");
    let desc = s.ksql_ok("DESCRIBE out EXTENDED;").await;
    let errors = desc[0]["sourceDescription"]["errorStats"].as_str().unwrap();
    assert!(errors.contains("failed-messages: 2"), "{errors}");
    assert!(errors.contains("offset 2"), "{errors}");
}

#[tokio::test]
async fn division_by_zero_skips_only_the_failing_row() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM nums (k VARCHAR KEY, a INT, b INT) WITH (kafka_topic='nums', partitions=1);").await;
    s.ksql_ok("CREATE STREAM ratios AS SELECT k, a / b AS r FROM nums;").await;
    s.ksql_ok("INSERT INTO nums (k, a, b) VALUES ('x', 6, 3); INSERT INTO nums (k, a, b) VALUES ('y', 1, 0); INSERT INTO nums (k, a, b) VALUES ('z', 9, 3);")
        .await;
    let rows = s.wait_rows("SELECT * FROM ratios;", 2).await;
    assert_eq!(rows, vec![vec![json!("x"), json!(2)], vec![json!("z"), json!(3)]]);
    let queries = s.ksql_ok("SHOW QUERIES;").await;
    assert_eq!(queries[0]["queries"][0]["processingErrors"], 1);
}

#[tokio::test]
async fn type_and_alter_mistakes_name_the_problem() {
    let s = TestServer::start();
    s.ksql_ok("CREATE TYPE ADDRESS AS STRUCT<city STRING>;").await;
    let (status, body) = s.ksql("CREATE TYPE ADDRESS AS STRING;").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("Cannot register custom type 'ADDRESS' since it is already registered"), "{body}");
    let (status, body) = s.ksql("DROP TYPE NOPE;").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("Type 'NOPE' does not exist."), "{body}");
    // An unknown type name is a syntax error at its position.
    let (status, body) = s.ksql("CREATE STREAM s (k STRING KEY, a ADDRES) WITH (kafka_topic='s', value_format='JSON', partitions=1);").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().starts_with("line 1:34: Syntax Error"), "{body}");
    s.ksql_ok("CREATE STREAM s (k STRING KEY, a ADDRESS) WITH (kafka_topic='s', value_format='JSON', partitions=1);").await;
    let (status, body) = s.ksql("ALTER STREAM s ADD COLUMN a INT;").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("Cannot add column `A` to schema. A column with the same name already exists."), "{body}");
    s.ksql_ok("CREATE STREAM s2 AS SELECT * FROM s;").await;
    let (status, body) = s.ksql("ALTER STREAM s2 ADD COLUMN b INT;").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("ALTER command is not supported for CREATE ... AS statements."), "{body}");
}
