//! Nexmark in ksqlDB's dialect: every `sql/nexmark/q*.sql` runs on a server over events
//! `eddy datagen nexmark` produced to it over the Kafka protocol, without errors, and
//! writes results.

mod common;

use std::process::Command;

use common::{TestServer, eddy_bin};
use serde_json::{Value, json};

const QUERIES: &[&str] = &["q0", "q1", "q2", "q3", "q4", "q5", "q7", "q8", "q11", "q12", "q14", "q17", "q18", "q20", "q21", "q22"];

fn sql(name: &str) -> String {
    let path = format!("{}/sql/nexmark/{name}.sql", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_nexmark_query_runs_over_generated_events_and_writes_results() {
    let s = TestServer::start();
    // 200 events a second of event time: 8,000 events span 40 s, so 10-second windows close.
    let out = Command::new(eddy_bin())
        .args(["datagen", "nexmark", "-q", "--count", "8000", "--events-per-second", "200", "--topic", "nexmark", "--partitions", "2", "--bootstrap"])
        .arg(&s.kafka)
        .output()
        .expect("run eddy datagen");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let earliest = json!({"auto.offset.reset": "earliest"});
    let (status, body) = s.ksql_with(&sql("ddl"), earliest.clone()).await;
    assert_eq!(status, 200, "ddl.sql: {body}");
    let mut sinks = Vec::new();
    for q in QUERIES {
        let (status, body) = s.ksql_with(&sql(q), earliest.clone()).await;
        assert_eq!(status, 200, "{q}.sql: {body}");
        // The last statement's sink is the query's result.
        let last = body.as_array().and_then(|a| a.last()).cloned().unwrap_or(Value::Null);
        let id = last["commandStatus"]["queryId"].as_str().unwrap_or_else(|| panic!("{q}: no query started: {body}")).to_string();
        sinks.push((q, id, format!("NEXMARK_{}", q.to_uppercase())));
    }
    for (q, id, sink) in &sinks {
        s.wait_until(&format!("{q} ({id}) to write to {sink}"), async |s| {
            let (_, t) = s.get(&format!("/topics/{sink}")).await;
            t["partitions"].as_array().is_some_and(|ps| ps.iter().map(|p| p["logEndOffset"].as_i64().unwrap_or(0)).sum::<i64>() > 0)
        })
        .await;
    }
    let shown = s.ksql_ok("SHOW QUERIES;").await;
    for q in shown[0]["queries"].as_array().expect("queries") {
        assert_eq!(q["state"], "RUNNING", "{q}");
        assert_eq!(q["processingErrors"], 0, "{q}");
    }
}
