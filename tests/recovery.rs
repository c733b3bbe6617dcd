//! Durability: the catalog and persistent queries survive a clean restart and `kill -9`,
//! and a query resumes from its committed offsets with no output row lost or duplicated.

mod common;

use std::collections::BTreeMap;

use common::TestServer;
use serde_json::Value;

const CREATE: &str = "CREATE STREAM src (id VARCHAR KEY, n BIGINT) WITH (kafka_topic='src', value_format='JSON', partitions=3);";
const CSAS: &str = "CREATE STREAM evens AS SELECT id, n * 10 AS n10 FROM src WHERE n % 2 = 0;";

async fn insert_batch(s: &TestServer, from: usize, to: usize) {
    let sql: String = (from..to).map(|i| format!("INSERT INTO src (id, n) VALUES ('k{i}', {i});")).collect();
    s.ksql_ok(&sql).await;
}

/// Every expected output row exactly once.
fn assert_exactly_once(rows: &[Vec<Value>], inserted: usize) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for r in rows {
        *seen.entry(r[0].as_str().unwrap().to_string()).or_default() += 1;
        let n: i64 = r[0].as_str().unwrap()[1..].parse().unwrap();
        assert_eq!(r[1].as_i64(), Some(n * 10));
    }
    let expected: Vec<String> = (0..inserted).filter(|i| i % 2 == 0).map(|i| format!("k{i}")).collect();
    let dups: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).collect();
    assert!(dups.is_empty(), "duplicated output rows: {dups:?}");
    let missing: Vec<_> = expected.iter().filter(|k| !seen.contains_key(*k)).collect();
    assert!(missing.is_empty(), "lost output rows: {missing:?}");
    assert_eq!(rows.len(), expected.len());
}

#[tokio::test]
async fn restart_restores_catalog_and_resumes_query() {
    let mut s = TestServer::start();
    s.ksql_ok(CREATE).await;
    s.ksql_ok(CSAS).await;
    insert_batch(&s, 0, 20).await;
    s.wait_rows("SELECT * FROM evens;", 10).await;
    assert!(s.stop(), "server did not stop cleanly on SIGTERM");
    s.restart();
    let streams = s.ksql_ok("SHOW STREAMS;").await;
    assert_eq!(common::user_streams(&streams).len(), 2);
    let queries = s.ksql_ok("SHOW QUERIES;").await;
    assert_eq!(queries[0]["queries"][0]["state"], "RUNNING");
    insert_batch(&s, 20, 40).await;
    let rows = s.wait_rows("SELECT * FROM evens;", 20).await;
    assert_exactly_once(&rows, 40);
}

#[tokio::test]
async fn kill9_recovers_log_and_running_query_exactly_once() {
    // flush='never' keeps the test fast; kill -9 loses nothing the OS page cache holds.
    let mut s = TestServer::start_with(&["--flush", "never"]);
    s.ksql_ok(CREATE).await;
    s.ksql_ok(CSAS).await;
    let mut inserted = 0;
    for round in 0..6 {
        insert_batch(&s, inserted, inserted + 400).await;
        inserted += 400;
        // Kill while the query is (likely) still processing the batch.
        if round % 2 == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(5 * round as u64)).await;
        }
        s.kill9();
        s.restart();
    }
    let rows = s.wait_rows("SELECT * FROM evens;", inserted / 2).await;
    assert_exactly_once(&rows, inserted);
    // The source log holds every acknowledged insert exactly once.
    let src = s.rows("SELECT id FROM src;").await;
    assert_eq!(src.len(), inserted);
}

#[tokio::test]
async fn dropped_and_terminated_objects_stay_gone_after_restart() {
    let mut s = TestServer::start();
    s.ksql_ok(CREATE).await;
    let csas = s.ksql_ok(CSAS).await;
    let id = csas[0]["commandStatus"]["queryId"].as_str().unwrap().to_string();
    s.ksql_ok(&format!("TERMINATE {id};")).await;
    s.ksql_ok("DROP STREAM evens DELETE TOPIC;").await;
    s.kill9();
    s.restart();
    let streams = s.ksql_ok("SHOW STREAMS;").await;
    assert_eq!(common::user_streams(&streams).len(), 1);
    let queries = s.ksql_ok("SHOW QUERIES;").await;
    assert_eq!(queries[0]["queries"].as_array().unwrap().len(), 0);
    let topics = s.ksql_ok("SHOW TOPICS;").await;
    let user_topics = topics[0]["topics"].as_array().unwrap().iter().filter(|t| t["name"] != common::BUILT_IN_TOPIC).count();
    assert_eq!(user_topics, 1);
    // The name can be reused.
    s.ksql_ok(CSAS).await;
}

#[tokio::test]
async fn custom_types_and_altered_columns_survive_restart() {
    let mut s = TestServer::start();
    s.ksql_ok(
        "CREATE TYPE ADDRESS AS STRUCT<number INT, city STRING>;
         CREATE TABLE people (k STRING PRIMARY KEY, home ADDRESS) WITH (kafka_topic='people', value_format='JSON', partitions=1);",
    )
    .await;
    let types = s.ksql_ok("SHOW TYPES;").await;
    assert_eq!(types[0]["types"]["ADDRESS"]["type"], "STRUCT", "{types}");
    let altered = s.ksql_ok("ALTER TABLE people ADD COLUMN age INT;").await;
    assert_eq!(altered[0]["commandStatus"]["status"], "SUCCESS", "{altered}");
    // Dropping the type leaves the table (and its materialization) as it was declared.
    s.ksql_ok("DROP TYPE ADDRESS;").await;
    assert!(s.stop(), "server did not stop cleanly on SIGTERM");
    s.restart();
    assert_eq!(s.ksql_ok("SHOW TYPES;").await[0]["types"], serde_json::json!({}));
    s.ksql_ok("INSERT INTO people (k, home, age) VALUES ('u1', STRUCT(NUMBER := 7, CITY := 'Oslo'), 41);").await;
    let rows = s.wait_rows("SELECT * FROM people WHERE k = 'u1';", 1).await;
    assert_eq!(rows[0], vec![serde_json::json!("u1"), serde_json::json!({"NUMBER": 7, "CITY": "Oslo"}), serde_json::json!(41)]);
}
