//! ksqlDB's statements and clauses that the other suites do not reach, as a user sends
//! them over REST: variables (DEFINE, UNDEFINE, SHOW VARIABLES), session properties (SET,
//! UNSET), IF [NOT] EXISTS, CREATE OR REPLACE of a query, SHOW ... EXTENDED, and the NONE key format and
//! WRAP_SINGLE_VALUE.

mod common;

use common::TestServer;
use serde_json::json;

#[tokio::test]
async fn variables_are_defined_substituted_listed_and_undefined() {
    let s = TestServer::start();
    let out = s
        .ksql_ok(
            "DEFINE topic = 'v_events'; DEFINE n = '2'; SHOW VARIABLES; CREATE STREAM ev (id INT KEY) WITH \
        (kafka_topic='${topic}', value_format='JSON', partitions=${n});",
        )
        .await;
    let vars = out[0]["variables"].as_array().expect("variables");
    assert!(vars.contains(&json!({"name": "topic", "value": "v_events"})), "{out}");
    let described = s.ksql_ok("DESCRIBE ev EXTENDED;").await;
    assert_eq!(described[0]["sourceDescription"]["topic"], "v_events");
    assert_eq!(described[0]["sourceDescription"]["partitions"], 2);
    let (status, body) =
        s.ksql("DEFINE t = 'x'; UNDEFINE t; CREATE STREAM gone (id INT KEY) WITH (kafka_topic='${t}', value_format='JSON', partitions=1);").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("Variable 't' is not defined"), "{body}");
    // Variables also come with a request (sessionVariables), as ksqlDB's clients send them.
    let (status, body) = s
        .post(
            "/ksql",
            json!({"ksql": "CREATE STREAM ev2 (id INT KEY) WITH (kafka_topic='${t}', value_format='JSON', partitions=1);", "sessionVariables": {"t": "v2"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn set_and_unset_change_properties_for_the_rest_of_the_request() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM src (id INT KEY, v INT) WITH (kafka_topic='src', value_format='JSON', partitions=1);").await;
    s.ksql_ok("INSERT INTO src (id, v) VALUES (1, 1);").await;
    let (status, body) = s
        .ksql(
            "SET 'auto.offset.reset'='earliest'; SHOW PROPERTIES; CREATE STREAM from_start AS SELECT * FROM src; UNSET \
        'auto.offset.reset'; CREATE STREAM from_now AS SELECT * FROM src;",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let overwritten = body[0]["overwrittenProperties"].as_array().expect("overwritten");
    assert!(overwritten.contains(&json!("auto.offset.reset")), "{body}");
    s.wait_until("the earliest query to copy the old record", async |s| s.read_topic("FROM_START").await.len() == 1).await;
    s.ksql_ok("INSERT INTO src (id, v) VALUES (2, 2);").await;
    s.wait_until("the latest query to copy the new record", async |s| s.read_topic("FROM_NOW").await.len() == 1).await;
    assert_eq!(s.read_topic("FROM_START").await.len(), 2);
}

#[tokio::test]
async fn if_exists_and_or_replace_answer_without_failing() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM a (id INT KEY, v INT) WITH (kafka_topic='a', value_format='JSON', partitions=1);").await;
    let again = s.ksql_ok("CREATE STREAM IF NOT EXISTS a (id INT KEY, v INT) WITH (kafka_topic='a', value_format='JSON', partitions=1);").await;
    assert!(again[0]["commandStatus"]["message"].as_str().unwrap_or_default().contains("already exists"), "{again}");
    s.ksql_ok("CREATE TABLE IF NOT EXISTS t AS SELECT id, COUNT(*) AS n FROM a GROUP BY id;").await;
    s.ksql_ok("CREATE TABLE IF NOT EXISTS t AS SELECT id, COUNT(*) AS n FROM a GROUP BY id;").await;
    s.ksql_ok("CREATE TYPE IF NOT EXISTS point AS STRUCT<x INT, y INT>;").await;
    s.ksql_ok("CREATE TYPE IF NOT EXISTS point AS STRUCT<x INT, y INT>;").await;
    s.ksql_ok("DROP TYPE IF EXISTS nothing;").await;
    s.ksql_ok("DROP STREAM IF EXISTS nothing;").await;
    s.ksql_ok("DROP TABLE IF EXISTS nothing DELETE TOPIC;").await;
    s.ksql_ok("CREATE STREAM big AS SELECT * FROM a WHERE v > 10;").await;
    let (status, body) = s.ksql("DROP STREAM nothing;").await;
    assert_eq!(status, 400, "{body}");
    let listed = s.ksql_ok("SHOW STREAMS EXTENDED; SHOW TABLES EXTENDED;").await;
    assert!(listed[0]["sourceDescriptions"].as_array().expect("streams").iter().any(|d| d["name"] == "A"), "{listed}");
    assert!(listed[1]["sourceDescriptions"].as_array().expect("tables").iter().any(|d| d["name"] == "T"), "{listed}");
}

#[tokio::test]
async fn none_key_format_and_unwrapped_single_values_are_written_as_declared() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM raw (v STRING) WITH (kafka_topic='raw', key_format='NONE', value_format='JSON', wrap_single_value=false, partitions=1);").await;
    s.ksql_ok("INSERT INTO raw (v) VALUES ('plain');").await;
    let records = s.read_topic("raw").await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].1["key"], serde_json::Value::Null, "NONE writes no key: {records:?}");
    assert_eq!(records[0].1["value"], json!("plain"), "an unwrapped value is the bare JSON string: {records:?}");
    let rows = s.wait_rows("SELECT * FROM raw EMIT CHANGES LIMIT 1;", 1).await;
    assert_eq!(rows, vec![vec![json!("plain")]]);
    // Schema ids need a schema registry format: refused rather than ignored.
    let (status, body) = s.ksql("CREATE STREAM ids (id INT KEY) WITH (kafka_topic='ids', value_format='JSON', value_schema_id=3, partitions=1);").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("VALUE_SCHEMA_ID is provided but format JSON does not support Schema Registry"), "{body}");
    let (status, body) = s.ksql("CREATE STREAM pb (id INT KEY) WITH (kafka_topic='pb', value_format='PROTOBUF_SR', partitions=1);").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("Unknown format: PROTOBUF_SR"), "{body}");
}

#[tokio::test]
async fn create_or_replace_upgrades_a_query_in_place_from_where_it_left_off() {
    let mut s = TestServer::start();
    s.ksql_ok("CREATE STREAM a (id INT KEY, v INT) WITH (kafka_topic='a', value_format='JSON', partitions=1);").await;
    let created = s.ksql_ok("CREATE STREAM big AS SELECT * FROM a WHERE v > 10;").await;
    let id = created[0]["commandStatus"]["queryId"].as_str().expect("id").to_string();
    s.ksql_ok("INSERT INTO a (id, v) VALUES (1, 50); INSERT INTO a (id, v) VALUES (2, 500);").await;
    s.wait_until("the first definition's output", async |s| s.read_topic("BIG").await.len() == 2).await;

    // A new filter and an added column; the same query id, the same topic.
    let replaced = s.ksql_ok("CREATE OR REPLACE STREAM big AS SELECT id, v, v * 2 AS doubled FROM a WHERE v > 100;").await;
    assert_eq!(replaced[0]["commandStatus"]["queryId"], id.as_str(), "{replaced}");
    s.ksql_ok("INSERT INTO a (id, v) VALUES (3, 60); INSERT INTO a (id, v) VALUES (4, 600);").await;
    s.wait_until("the new definition's output", async |s| s.read_topic("BIG").await.len() == 3).await;
    let records = s.read_topic("BIG").await;
    assert_eq!(records[2].1["value"], json!({"V": 600, "DOUBLED": 1200}), "old records are not read again; new ones pass the new filter: {records:?}");
    let described = s.ksql_ok("DESCRIBE big EXTENDED;").await;
    let writer = described[0]["sourceDescription"]["writeQueries"][0].clone();
    assert_eq!(writer["id"], id.as_str());
    assert!(writer["queryString"].as_str().unwrap_or_default().contains("v > 100"), "{described}");

    // The replacement is kept across a restart.
    s.stop();
    s.restart();
    s.ksql_ok("INSERT INTO a (id, v) VALUES (5, 70); INSERT INTO a (id, v) VALUES (6, 700);").await;
    s.wait_until("the new definition after a restart", async |s| s.read_topic("BIG").await.len() == 4).await;

    for (sql, expected) in [
        ("CREATE OR REPLACE STREAM big AS SELECT id, v FROM a;", "Cannot upgrade data source"),
        ("CREATE OR REPLACE TABLE counts AS SELECT id, COUNT(*) AS n FROM a GROUP BY id;", "Cannot replace"),
    ] {
        if sql.contains("counts") {
            s.ksql_ok("CREATE TABLE counts AS SELECT id, COUNT(*) AS n FROM a GROUP BY id;").await;
        }
        let (status, body) = s.ksql(sql).await;
        assert_eq!(status, 400, "{sql}: {body}");
        assert!(body["message"].as_str().unwrap_or_default().contains(expected), "{sql}: {body}");
    }
}

#[tokio::test]
async fn a_stream_of_key_columns_only_takes_inserts_and_streams_them() {
    let s = TestServer::start();
    for format in ["JSON", "DELIMITED"] {
        s.ksql_ok(&format!("CREATE STREAM keys_{format} (id INT KEY) WITH (kafka_topic='keys_{format}', value_format='{format}', partitions=1);")).await;
        s.ksql_ok(&format!("INSERT INTO keys_{format} (id) VALUES (7);")).await;
        // The value has no fields: `{}` in JSON, an empty line in DELIMITED.
        let rows = s.rows(&format!("SELECT * FROM keys_{format} EMIT CHANGES LIMIT 1;")).await;
        assert_eq!(rows, vec![vec![json!(7)]], "{format}");
    }
    let written = s.read_topic("keys_JSON").await;
    assert_eq!(written[0].1["value"], json!({}), "{written:?}");
}
