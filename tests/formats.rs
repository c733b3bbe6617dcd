//! Value and key formats and event time, through SQL: DELIMITED, KAFKA and JSON values,
//! JSON field names matched case-insensitively, and the TIMESTAMP property.

mod common;

use common::TestServer;
use serde_json::json;

#[tokio::test]
async fn delimited_values_convert_to_json_output() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM csv (k VARCHAR KEY, id BIGINT, name VARCHAR, score DOUBLE) WITH (kafka_topic='csv', value_format='DELIMITED', partitions=1);")
        .await;
    s.ksql_ok("INSERT INTO csv (k, id, name, score) VALUES ('a', 1, 'x,y', 2.5);").await;
    let (_, printed) = s.post("/query", json!({"ksql": "PRINT 'csv' FROM BEGINNING LIMIT 1;"})).await;
    assert!(printed.as_str().unwrap().contains(r#"value: 1,"x,y",2.5"#), "{printed}");
    s.ksql_ok("CREATE STREAM as_json WITH (value_format='JSON') AS SELECT k, id, name FROM csv;").await;
    let rows = s.wait_rows("SELECT * FROM as_json;", 1).await;
    assert_eq!(rows[0], vec![json!("a"), json!(1), json!("x,y")]);
    let (_, printed) = s.post("/query", json!({"ksql": "PRINT 'AS_JSON' FROM BEGINNING LIMIT 1;"})).await;
    assert!(printed.as_str().unwrap().contains(r#"value: {"ID":1,"NAME":"x,y"}"#), "{printed}");
}

#[tokio::test]
async fn json_fields_match_columns_case_insensitively() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM pv (id VARCHAR KEY, page VARCHAR, `camelCase` INT) WITH (kafka_topic='pv', partitions=1);").await;
    s.ksql_ok("CREATE STREAM raw (line VARCHAR) WITH (kafka_topic='pv', value_format='KAFKA');").await;
    s.ksql_ok(r#"INSERT INTO raw (line) VALUES ('{"page": "lower", "camelCase": 7}');"#).await;
    let rows = s.rows("SELECT page, `camelCase` FROM pv;").await;
    assert_eq!(rows, vec![vec![json!("lower"), json!(7)]]);
}

#[tokio::test]
async fn kafka_format_keys_and_values_round_trip() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM nums (k BIGINT KEY, v INT) WITH (kafka_topic='nums', value_format='KAFKA', partitions=2);").await;
    s.ksql_ok("INSERT INTO nums (k, v) VALUES (123456789012, 42);").await;
    let rows = s.rows("SELECT k, v FROM nums;").await;
    assert_eq!(rows, vec![vec![json!(123456789012i64), json!(42)]]);
    let (_, printed) = s.post("/query", json!({"ksql": "PRINT 'nums' FROM BEGINNING LIMIT 1;"})).await;
    assert!(printed.as_str().unwrap().contains("key: 123456789012, value: 42"), "{printed}");
}

#[tokio::test]
async fn timestamp_property_sets_rowtime_and_insert_can_set_rowtime() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM ev (id INT KEY, ts BIGINT) WITH (kafka_topic='ev', partitions=1, timestamp='ts');").await;
    s.ksql_ok("INSERT INTO ev (id, ts) VALUES (1, 1700000000000);").await;
    let rows = s.rows("SELECT id, ROWTIME FROM ev;").await;
    assert_eq!(rows, vec![vec![json!(1), json!(1700000000000i64)]]);
    s.ksql_ok("CREATE STREAM plain (id INT KEY, v INT) WITH (kafka_topic='plain', partitions=1);").await;
    s.ksql_ok("INSERT INTO plain (ROWTIME, id, v) VALUES (1234, 1, 2);").await;
    let rows = s.rows("SELECT ROWTIME, id FROM plain;").await;
    assert_eq!(rows, vec![vec![json!(1234), json!(1)]]);
    let (status, body) = s.ksql("CREATE STREAM bad (id INT KEY) WITH (kafka_topic='bad', partitions=1, timestamp='nope');").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("'NOPE'"), "{body}");
}
