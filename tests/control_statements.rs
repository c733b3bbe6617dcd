//! Statements that control queries and check the environment, as a ksqlDB user sends them
//! over REST: PAUSE / RESUME (kept across a restart), ALTER SYSTEM, ASSERT TOPIC / SCHEMA
//! with timeouts, and connector statements answered with what to do instead.

mod common;

use std::time::Duration;

use common::TestServer;
use serde_json::{Value, json};

async fn query_state(s: &TestServer, id: &str) -> String {
    let shown = s.ksql_ok("SHOW QUERIES;").await;
    let queries = shown[0]["queries"].as_array().expect("queries").clone();
    queries.iter().find(|q| q["id"] == id).map(|q| q["state"].as_str().unwrap_or_default().to_string()).unwrap_or_default()
}

#[tokio::test]
async fn pause_holds_a_query_back_until_resume_even_across_a_restart() {
    let mut s = TestServer::start();
    s.ksql_ok("CREATE STREAM clicks (id INT KEY, page STRING) WITH (kafka_topic='clicks', value_format='JSON', partitions=1);").await;
    s.ksql_ok("CREATE STREAM copies AS SELECT * FROM clicks;").await;
    s.ksql_ok("INSERT INTO clicks (id, page) VALUES (1, 'home');").await;
    s.wait_until("the first click to be copied", async |s| s.read_topic("COPIES").await.len() == 1).await;

    let paused = s.ksql_ok("PAUSE CSAS_COPIES_1;").await;
    assert_eq!(paused[0]["commandId"], "pause/CSAS_COPIES_1/execute", "{paused}");
    assert_eq!(query_state(&s, "CSAS_COPIES_1").await, "PAUSED");
    s.ksql_ok("INSERT INTO clicks (id, page) VALUES (2, 'cart');").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(s.read_topic("COPIES").await.len(), 1, "a paused query copies nothing");

    s.stop();
    s.restart();
    assert_eq!(query_state(&s, "CSAS_COPIES_1").await, "PAUSED", "a restart keeps the query paused");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.read_topic("COPIES").await.len(), 1);

    s.ksql_ok("RESUME ALL;").await;
    s.wait_until("the held-back click to be copied", async |s| s.read_topic("COPIES").await.len() == 2).await;
    assert_eq!(query_state(&s, "CSAS_COPIES_1").await, "RUNNING");

    for (sql, expected) in
        [("PAUSE NO_SUCH_QUERY;", "Unknown queryId: NO_SUCH_QUERY"), ("RESUME transient_CLICKS_1;", "Transient queries cannot be paused or resumed")]
    {
        let (status, body) = s.ksql(sql).await;
        assert_eq!(status, 400, "{sql}: {body}");
        assert!(body["message"].as_str().unwrap_or_default().contains(expected), "{sql}: {body}");
    }
}

#[tokio::test]
async fn alter_system_sets_where_new_queries_start_and_is_kept() {
    let mut s = TestServer::start();
    s.ksql_ok("CREATE STREAM events (id INT KEY, v INT) WITH (kafka_topic='events', value_format='JSON', partitions=1);").await;
    s.ksql_ok("INSERT INTO events (id, v) VALUES (1, 10);").await;
    let (status, body) = s.ksql("ALTER SYSTEM 'auto.offset.reset'='earliest';").await;
    assert_eq!(status, 200, "{body}");
    s.stop();
    s.restart();
    // No session property: the system setting decides, so the earlier record is read.
    let (status, body) = s.ksql("CREATE STREAM copied AS SELECT * FROM events;").await;
    assert_eq!(status, 200, "{body}");
    s.wait_until("the record written before the query to be copied", async |s| s.read_topic("COPIED").await.len() == 1).await;
    let props = s.ksql_ok("SHOW PROPERTIES;").await;
    let listed = props[0]["properties"].as_array().expect("properties").clone();
    assert!(listed.iter().any(|p| p["name"] == "ksql.streams.auto.offset.reset" && p["value"] == "earliest"), "{props}");

    let (status, body) = s.ksql("ALTER SYSTEM 'no.such.setting'='1';").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("Unknown system property 'no.such.setting'"), "{body}");
    let (status, body) = s.ksql("ALTER SYSTEM 'auto.offset.reset'='sometimes';").await;
    assert_eq!(status, 400, "{body}");
    // The record cache can be turned off (or on) for the whole server.
    let (status, body) = s.ksql("ALTER SYSTEM 'ksql.streams.cache.max.bytes.buffering'='0';").await;
    assert_eq!(status, 200, "{body}");
    let props = s.ksql_ok("SHOW PROPERTIES;").await;
    let listed = props[0]["properties"].as_array().expect("properties").clone();
    assert!(listed.iter().any(|p| p["name"] == "ksql.streams.cache.max.bytes.buffering" && p["value"] == "0"), "{props}");
    let (status, body) = s.ksql("ALTER SYSTEM 'cache.max.bytes.buffering'='lots';").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("expected a whole number of bytes"), "{body}");
}

#[tokio::test]
async fn alter_system_sets_the_pull_and_push_query_defaults_of_every_request() {
    let s = TestServer::start();
    s.ksql_ok("CREATE TABLE prices (id INT PRIMARY KEY, p INT) WITH (kafka_topic='prices', value_format='JSON', partitions=1);").await;
    s.ksql_ok("INSERT INTO prices (id, p) VALUES (1, 10);").await;
    let pull = |sql: &'static str, props: Value| {
        let s = &s;
        async move { s.post("/query", json!({"ksql": sql, "streamsProperties": props})).await }
    };
    // A table scan answers (and its plan is cached) ...
    let scan = "SELECT * FROM prices WHERE p > 5;";
    assert_eq!(pull(scan, json!({})).await.0, 200);
    // ... until table scans are turned off for the whole server; a request can still turn
    // them on for itself, and key lookups are not scans.
    let (status, body) = s.ksql("ALTER SYSTEM 'ksql.query.pull.table.scan.enabled'='false';").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = pull(scan, json!({})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(pull(scan, json!({"ksql.query.pull.table.scan.enabled": true})).await.0, 200);
    assert_eq!(pull("SELECT * FROM prices WHERE id = 1;", json!({})).await.0, 200);

    // Continuation tokens for every push query that can have them.
    let (status, body) = s.ksql("ALTER SYSTEM 'ksql.query.push.v2.continuation.tokens.enabled'='true';").await;
    assert_eq!(status, 200, "{body}");
    s.ksql_ok("CREATE STREAM ticks (id INT KEY) WITH (kafka_topic='ticks', value_format='JSON', partitions=1);").await;
    s.ksql_ok("INSERT INTO ticks (id) VALUES (1);").await;
    let (status, body) =
        s.post("/query", json!({"ksql": "SELECT * FROM ticks EMIT CHANGES LIMIT 1;", "streamsProperties": {"auto.offset.reset": "earliest"}})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.as_array().unwrap().iter().any(|e| e.get("continuationToken").is_some()), "{body}");

    let (status, body) = s.ksql("ALTER SYSTEM 'ksql.query.push.v2.enabled'='maybe';").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("expected one of: true, false"), "{body}");
}

#[tokio::test]
async fn assert_topic_waits_for_its_timeout_and_checks_partitions() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM present (id INT KEY) WITH (kafka_topic='present', value_format='JSON', partitions=2);").await;
    let ok = s.ksql_ok("ASSERT TOPIC present WITH (PARTITIONS=2) TIMEOUT 1 SECONDS;").await;
    assert_eq!(ok[0]["@type"], "assert_topic");
    assert_eq!(ok[0]["exists"], true);
    s.ksql_ok("ASSERT NOT EXISTS TOPIC absent;").await;

    for (sql, expected) in [
        ("ASSERT TOPIC absent TIMEOUT 200 MILLISECONDS;", "Topic absent does not exist"),
        ("ASSERT NOT EXISTS TOPIC present;", "Topic present exists"),
        ("ASSERT TOPIC present WITH (PARTITIONS=3);", "For config partitions, expected 3 got 2"),
        ("ASSERT SCHEMA SUBJECT 'present-value' TIMEOUT 100 MILLISECONDS;", "Schema with subject name present-value does not exist"),
    ] {
        let (status, body) = s.ksql(sql).await;
        assert_eq!(status, 417, "{sql}: {body}");
        assert_eq!(body["error_code"], 41700, "{sql}: {body}");
        assert!(body["message"].as_str().unwrap_or_default().contains(expected), "{sql}: {body}");
    }

    // A topic created while the assertion waits satisfies it.
    let url_owner = &s;
    let (waited, created) = tokio::join!(url_owner.ksql("ASSERT TOPIC late TIMEOUT 20 SECONDS;"), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        url_owner.ksql("CREATE STREAM late (id INT KEY) WITH (kafka_topic='late', value_format='JSON', partitions=1);").await
    });
    assert_eq!(created.0, 200, "{}", created.1);
    assert_eq!(waited.0, 200, "{}", waited.1);
}

#[tokio::test]
async fn assert_schema_checks_the_built_in_registry_by_subject_and_id() {
    let s = TestServer::start();
    let register = s.post("/subjects/orders-value/versions", serde_json::json!({"schema": "\"string\""})).await;
    assert_eq!(register, (200, serde_json::json!({"id": 1})));
    for sql in [
        "ASSERT SCHEMA SUBJECT 'orders-value';",
        "ASSERT SCHEMA ID 1;",
        "ASSERT SCHEMA SUBJECT 'orders-value' ID 1 TIMEOUT 1 SECONDS;",
        "ASSERT NOT EXISTS SCHEMA SUBJECT 'other-value';",
        "ASSERT NOT EXISTS SCHEMA SUBJECT 'orders-value' ID 2;",
    ] {
        let (status, body) = s.ksql(sql).await;
        assert_eq!(status, 200, "{sql}: {body}");
        assert_eq!(body[0]["@type"], "assert_schema", "{sql}: {body}");
    }
    for (sql, expected) in [
        ("ASSERT SCHEMA ID 2 TIMEOUT 100 MILLISECONDS;", "Schema with id 2 does not exist"),
        ("ASSERT NOT EXISTS SCHEMA SUBJECT 'orders-value' TIMEOUT 100 MILLISECONDS;", "Schema with subject name orders-value exists"),
    ] {
        let (status, body) = s.ksql(sql).await;
        assert_eq!(status, 417, "{sql}: {body}");
        assert!(body["message"].as_str().unwrap_or_default().contains(expected), "{sql}: {body}");
    }
    // A schema registered while the assertion waits satisfies it.
    let (waited, registered) = tokio::join!(s.ksql("ASSERT SCHEMA SUBJECT 'late-value' TIMEOUT 20 SECONDS;"), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        s.post("/subjects/late-value/versions", serde_json::json!({"schema": "\"long\""})).await
    });
    assert_eq!(registered.0, 200, "{}", registered.1);
    assert_eq!(waited.0, 200, "{}", waited.1);
}

#[tokio::test]
async fn connector_statements_say_that_eddy_runs_no_connectors() {
    let s = TestServer::start();
    for sql in [
        "CREATE SOURCE CONNECTOR jdbc WITH ('connector.class'='io.confluent.connect.jdbc.JdbcSourceConnector');",
        "CREATE SINK CONNECTOR IF NOT EXISTS es WITH ('topics'='x');",
        "DROP CONNECTOR jdbc;",
        "DESCRIBE CONNECTOR jdbc;",
        "SHOW CONNECTORS;",
        "LIST CONNECTORS;",
    ] {
        let (status, body) = s.ksql(sql).await;
        assert_eq!(status, 400, "{sql}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains("connectors are not part of Eddy") && message.contains("Kafka Connect"), "{sql}: {body}");
    }
    // Other statements in the same request before it still ran.
    let (status, body) =
        s.post("/ksql", json!({"ksql": "CREATE STREAM a (id INT KEY) WITH (kafka_topic='a', value_format='JSON', partitions=1); SHOW CONNECTORS;"})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["entities"].as_array().map(Vec::len), Some(1), "{body}");
}
