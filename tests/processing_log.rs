//! ksqlDB's processing log as a user finds it: the server declares the
//! `KSQL_PROCESSING_LOG` stream, every record a query skips is an entry in it (queryable
//! with SQL), the stream survives a restart once, and it is read-only.

mod common;

use common::TestServer;
use serde_json::json;

#[tokio::test]
async fn skipped_records_are_entries_of_the_processing_log_stream() {
    let mut s = TestServer::start();
    s.ksql_ok("CREATE STREAM readings (id INT KEY, v INT) WITH (kafka_topic='readings', format='JSON', partitions=1);").await;
    s.ksql_ok("CREATE STREAM doubled AS SELECT id, v * 2 AS v2 FROM readings;").await;
    let shown = s.ksql_ok("SHOW QUERIES;").await;
    let id = shown[0]["queries"]
        .as_array()
        .expect("queries")
        .iter()
        .filter_map(|q| q["id"].as_str())
        .find(|i| i.starts_with("CSAS_DOUBLED_"))
        .expect("query")
        .to_string();
    s.produce("readings", vec![json!({"key": 1, "value": "{\"V\": 1"}), json!({"key": 2, "value": {"V": 2}})]).await;
    s.wait_until("the good record to pass", async |s| s.read_topic("DOUBLED").await.len() == 1).await;

    let entries = s
        .wait_rows(
            "SELECT LOGGER, LEVEL, MESSAGE->`TYPE` AS KIND, MESSAGE->DESERIALIZATIONERROR->TARGET AS TARGET, \
             MESSAGE->DESERIALIZATIONERROR->`topic` AS SOURCE_TOPIC FROM KSQL_PROCESSING_LOG EMIT CHANGES LIMIT 1;",
            1,
        )
        .await;
    assert_eq!(entries, vec![vec![json!(format!("processing.{id}")), json!("ERROR"), json!(0), json!("value"), json!("readings")]]);
    let message = s.wait_rows("SELECT MESSAGE->DESERIALIZATIONERROR->ERRORMESSAGE FROM KSQL_PROCESSING_LOG EMIT CHANGES LIMIT 1;", 1).await;
    let text = message[0][0].as_str().unwrap_or_default();
    assert!(text.starts_with("partition 0 offset 0: value: "), "{text}");
    // The count the query keeps agrees.
    let shown = s.ksql_ok("SHOW QUERIES;").await;
    let q = shown[0]["queries"].as_array().expect("queries").iter().find(|q| q["id"] == id.as_str()).cloned().expect("query");
    assert_eq!(q["processingErrors"], 1);

    let (status, body) = s.ksql("INSERT INTO KSQL_PROCESSING_LOG (LOGGER) VALUES ('me');").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("read-only"), "{body}");

    s.stop();
    s.restart();
    let streams = s.ksql_ok("SHOW STREAMS;").await;
    let named: Vec<&str> = streams[0]["streams"].as_array().expect("streams").iter().filter_map(|x| x["name"].as_str()).collect();
    assert_eq!(named.iter().filter(|n| **n == "KSQL_PROCESSING_LOG").count(), 1, "{streams}");
    let kept = s.wait_rows("SELECT LOGGER FROM KSQL_PROCESSING_LOG EMIT CHANGES LIMIT 1;", 1).await;
    assert_eq!(kept, vec![vec![json!(format!("processing.{id}"))]]);
}

#[tokio::test]
async fn a_dropped_processing_log_stream_stays_dropped_after_a_restart() {
    let mut s = TestServer::start();
    s.ksql_ok("DROP STREAM KSQL_PROCESSING_LOG;").await;
    s.stop();
    s.restart();
    let streams = s.ksql_ok("SHOW STREAMS;").await;
    assert_eq!(streams[0]["streams"], json!([]), "{streams}");
    let (status, body) = s.get("/status").await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.to_string().contains("ERROR"), "the replayed DROP applied cleanly: {body}");
    // It can be declared again by hand, over the same topic.
    s.ksql_ok("CREATE STREAM KSQL_PROCESSING_LOG (LOGGER STRING) WITH (kafka_topic='default_ksql_processing_log', value_format='JSON');").await;
}
