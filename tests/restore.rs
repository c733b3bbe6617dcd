//! A data directory always starts: a catalog command that no longer applies, or a command
//! topic record that cannot be read, is reported and skipped while everything else is
//! served; the catalog never expires with the log; and a command topic that lost its
//! beginning is refused loudly rather than served as half a catalog.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::TestServer;
use eddy::catalog::command_log::{COMMAND_TOPIC, Command, CommandLog};
use eddy::log::{BatchBuilder, CleanupPolicy, FlushPolicy, Log, TopicConfig};
use serde_json::json;

fn open_log(s: &TestServer) -> Log {
    Log::open(&s.data_dir, TopicConfig::default()).expect("open the stopped server's log")
}

#[tokio::test]
async fn a_command_that_fails_on_replay_is_marked_failed_and_everything_else_is_served() {
    let mut s = TestServer::start();
    s.ksql_ok("CREATE STREAM s (id VARCHAR KEY, n INT) WITH (kafka_topic='s', partitions=1, value_format='JSON');").await;
    s.ksql_ok("CREATE STREAM good AS SELECT id, n * 2 AS n2 FROM s;").await;
    s.stop();
    {
        // As if written by a version that knew a function this one does not, followed by a
        // record no version can read.
        let log = open_log(&s);
        let commands = CommandLog::open(&log).unwrap();
        let broken = Command {
            statement: "CREATE STREAM broken AS SELECT id, NO_SUCH_FUNCTION(n) AS x FROM s;".into(),
            properties: BTreeMap::new(),
            query_id: Some("CSAS_BROKEN_9".into()),
        };
        commands.append(&broken).unwrap();
        let mut b = BatchBuilder::default();
        b.push(1, None, Some(b"this is not a catalog command"), &[]);
        log.topic(COMMAND_TOPIC).unwrap().partition(0).unwrap().append(b.finish()).unwrap();
    }
    s.restart();
    // Served: the good query runs.
    s.ksql_ok("INSERT INTO s (id, n) VALUES ('a', 21);").await;
    assert_eq!(s.wait_rows("SELECT n2 FROM good;", 1).await, vec![vec![json!(42)]]);
    // Reported: SHOW QUERIES, DESCRIBE, /status and /healthcheck say what failed and why.
    let (_, queries) = s.ksql("SHOW QUERIES;").await;
    let broken = queries[0]["queries"].as_array().unwrap().iter().find(|q| q["id"] == "CSAS_BROKEN_9").cloned().unwrap_or_else(|| panic!("{queries}"));
    assert_eq!(broken["state"], "ERROR");
    assert!(broken["errorMessage"].as_str().unwrap().contains("NO_SUCH_FUNCTION"), "{broken}");
    let (status, body) = s.ksql("DESCRIBE broken;").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("could not be restored"), "{body}");
    let (_, st) = s.get("/status").await;
    assert_eq!(st["commandStatuses"]["stream/`BROKEN`/create"], "ERROR", "{st}");
    assert_eq!(st["commandStatuses"]["stream/`GOOD`/create"], "SUCCESS", "{st}");
    let (_, health) = s.get("/healthcheck").await;
    assert_eq!(health["details"]["commandRunner"]["unreadableCommands"], 1, "{health}");
    assert_eq!(health["details"]["commandRunner"]["failedCommands"], 1, "{health}");
    // Dropping what failed removes it for good.
    s.ksql_ok("DROP STREAM broken;").await;
    s.stop();
    s.restart();
    let (_, queries) = s.ksql("SHOW QUERIES;").await;
    assert!(!queries.to_string().contains("CSAS_BROKEN_9"), "{queries}");
    let (status, body) = s.ksql("DESCRIBE broken;").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("Could not find"), "{body}");
}

/// Writes the command topic's settings as an older version created it: Kafka's defaults,
/// seven days of retention, and tiny segments so each command is in a segment of its own.
fn make_command_topic_expire(s: &TestServer) {
    let meta_path = s.data_dir.join("topics").join(COMMAND_TOPIC).join("topic.json");
    let mut meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    let old = TopicConfig { segment_bytes: 1024, flush: FlushPolicy::Always, cleanup: CleanupPolicy::DELETE, ..TopicConfig::default() };
    meta["config"] = serde_json::to_value(&old).unwrap();
    std::fs::write(&meta_path, serde_json::to_vec_pretty(&meta).unwrap()).unwrap();
}

#[tokio::test]
async fn the_catalog_survives_an_aged_log_and_a_restart() {
    let mut s = TestServer::start_with(&["--log-cleaner-interval-ms", "50"]);
    s.stop();
    make_command_topic_expire(&s);
    {
        // Commands written a month ago, each rolling a segment.
        let log = open_log(&s);
        let part = log.topic(COMMAND_TOPIC).unwrap().partition(0).unwrap().clone();
        let month_ago = chrono::Utc::now().timestamp_millis() - 30 * 24 * 3600 * 1000;
        let statements = [
            "CREATE STREAM old_s (id VARCHAR KEY, n INT) WITH (kafka_topic='old_s', partitions=2, value_format='JSON');",
            "CREATE TABLE old_counts AS SELECT n, COUNT(*) AS c FROM old_s GROUP BY n;",
            "CREATE STREAM old_copy AS SELECT * FROM old_s;",
        ];
        for (i, statement) in statements.iter().enumerate() {
            let cmd =
                Command { statement: statement.to_string(), properties: BTreeMap::from([("auto.offset.reset".into(), "earliest".into())]), query_id: None };
            let query_id = match i {
                1 => Some("CTAS_OLD_COUNTS_1".to_string()),
                2 => Some("CSAS_OLD_COPY_2".to_string()),
                _ => None,
            };
            let cmd = Command { query_id, ..cmd };
            let mut b = BatchBuilder::default();
            b.push(month_ago, None, Some(&serde_json::to_vec(&cmd).unwrap()), &[]);
            part.append(b.finish()).unwrap();
            let mut pad = BatchBuilder::default();
            pad.push(month_ago, None, Some(&[b' '; 1100]), &[]);
            part.append(pad.finish()).unwrap();
        }
    }
    s.restart();
    // The cleaner runs many times over the aged command topic, then the server restarts.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.stop();
    s.restart();
    s.ksql_ok("INSERT INTO old_s (id, n) VALUES ('a', 1);").await;
    s.ksql_ok("INSERT INTO old_s (id, n) VALUES ('b', 1);").await;
    s.wait_until("both rows counted", async |s| s.rows("SELECT c FROM old_counts WHERE n = 1;").await == vec![vec![json!(2)]]).await;
    s.wait_rows("SELECT id FROM old_copy;", 2).await;
    let (_, topic) = s.get(&format!("/topics/{COMMAND_TOPIC}")).await;
    assert_eq!(topic["partitions"][0]["logStartOffset"], 0, "nothing was deleted from the command topic: {topic}");
}

#[tokio::test]
async fn a_command_topic_missing_its_beginning_refuses_to_start_with_a_clear_error() {
    let mut s = TestServer::start();
    s.ksql_ok("CREATE STREAM s (id VARCHAR KEY, n INT) WITH (kafka_topic='s', partitions=1);").await;
    s.ksql_ok("CREATE STREAM t AS SELECT * FROM s;").await;
    s.stop();
    // The first commands are gone: the segment now starts at offset 1.
    let dir = s.data_dir.join("topics").join(COMMAND_TOPIC).join("0");
    std::fs::rename(dir.join("00000000000000000000.log"), dir.join("00000000000000000001.log")).unwrap();
    let _ = std::fs::remove_file(dir.join("00000000000000000000.index"));
    let out = std::process::Command::new(common::eddy_bin())
        .args(["server", "--http-listen", "127.0.0.1:0", "--kafka-listen", ""])
        .arg("--data-dir")
        .arg(&s.data_dir)
        .output()
        .unwrap();
    assert!(!out.status.success(), "the server started with half a catalog");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("catalog commands are missing") && stderr.contains("backup"), "{stderr}");
}
