//! Crash safety under `flush='always'`: writers insert concurrently while the server is
//! repeatedly killed with SIGKILL; every acknowledged record must be there exactly once.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::TestServer;
use parking_lot::RwLock;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_inserts_survive_repeated_kill9_exactly_once() {
    let mut s = TestServer::start();
    s.ksql_ok("CREATE STREAM acks (id VARCHAR KEY, writer INT, n INT) WITH (kafka_topic='acks', partitions=3, flush='always');").await;
    let url = Arc::new(RwLock::new(s.url.clone()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..8 {
        let url = url.clone();
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
            let mut acked = Vec::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let id = format!("w{w}-{n}");
                let sql = format!("INSERT INTO acks (id, writer, n) VALUES ('{id}', {w}, {n});");
                let u = url.read().clone();
                match client.post(format!("{u}/ksql")).json(&json!({"ksql": sql})).send().await {
                    Ok(r) if r.status().is_success() => acked.push(id),
                    // Not acknowledged: the record may or may not exist; never retried.
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
            acked
        }));
    }
    for round in 0..4 {
        tokio::time::sleep(Duration::from_millis(150 + 70 * round)).await;
        s.kill9();
        s.restart();
        *url.write() = s.url.clone();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    assert!(acked.len() > 50, "too few acknowledged writes to be meaningful: {}", acked.len());
    let rows = s.rows("SELECT id FROM acks;").await;
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for r in &rows {
        *count.entry(r[0].as_str().unwrap().to_string()).or_default() += 1;
    }
    let duplicated: Vec<_> = count.iter().filter(|(_, c)| **c > 1).collect();
    assert!(duplicated.is_empty(), "records stored twice: {duplicated:?}");
    let lost: Vec<_> = acked.iter().filter(|id| !count.contains_key(*id)).collect();
    assert!(lost.is_empty(), "acknowledged records lost: {lost:?}");
}
