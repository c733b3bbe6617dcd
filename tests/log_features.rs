//! The log as users reach it: topic settings in WITH, produce/read over REST with
//! headers and compression, retention, compaction, offsets by time, consumer-group lag and
//! resets.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use serde_json::{Value, json};

async fn wait_until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn headers_and_compressed_batches_are_readable_in_sql() {
    let s = TestServer::start();
    s.ksql_ok(
        "CREATE STREAM events (id VARCHAR KEY, v INT, hs ARRAY<STRUCT<key STRING, value BYTES>> HEADERS, trace BYTES HEADER('trace')) \
         WITH (kafka_topic='events', partitions=1);",
    )
    .await;
    for (i, codec) in ["none", "gzip", "snappy", "lz4", "zstd"].iter().enumerate() {
        let (status, body) = s
            .post(
                "/topics/events/records",
                json!({"compression": codec, "records": [
                    {"key": format!("k{i}"), "value": {"V": i}, "headers": [{"key": "trace", "value": format!("t{i}")}, {"key": "other", "value": null}]}
                ]}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["offsets"][0]["offset"], i as i64);
    }
    let rows = s.rows("SELECT id, v, trace, hs FROM events;").await;
    assert_eq!(rows.len(), 5);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r[0], format!("k{i}"));
        assert_eq!(r[1], i as i64);
        // BYTES are base64 in JSON.
        let t = base64_decode(r[2].as_str().unwrap());
        assert_eq!(t, format!("t{i}").into_bytes());
        assert_eq!(r[3][0]["KEY"], "trace");
        assert_eq!(r[3][1], json!({"KEY": "other", "VALUE": null}));
    }
    let desc = s.ksql_ok("DESCRIBE events;").await;
    let fields = &desc[0]["sourceDescription"]["fields"];
    assert_eq!(fields[2]["type"], "HEADER");
    assert_eq!(fields[3]["headerKey"], "trace");
    let (status, body) = s.ksql("INSERT INTO events (id, v, trace) VALUES ('x', 1, 'YQ==');").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("HEADER"), "{body}");
    // Raw read endpoint shows the headers too.
    let (_, recs) = s.get("/topics/events/partitions/0/records?offset=3&limit=1").await;
    assert_eq!(recs["records"][0]["headers"][0], json!({"key": "trace", "value": "t3"}));
    assert_eq!(recs["records"][0]["value"], r#"{"V":3}"#);
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

#[tokio::test]
async fn topic_settings_in_with_clause_configure_the_topic_and_output_compression() {
    let s = TestServer::start();
    s.ksql_ok(
        "CREATE STREAM a (id INT KEY, v VARCHAR) WITH (kafka_topic='a', partitions=2, retention_ms=3600000, segment_bytes=65536, \
        compression_type='zstd', flush='interval', flush_interval_ms=50);",
    )
    .await;
    let (_, t) = s.get("/topics/a").await;
    assert_eq!(t["config"]["retention.ms"], "3600000");
    assert_eq!(t["config"]["segment.bytes"], "65536");
    assert_eq!(t["config"]["compression.type"], "zstd");
    assert_eq!(t["config"]["flush"], "interval");
    assert_eq!(t["config"]["flush.ms"], "50");
    s.ksql_ok("INSERT INTO a (id, v) VALUES (1, 'x');").await;
    s.ksql_ok("CREATE STREAM b WITH (compression_type='snappy') AS SELECT * FROM a;").await;
    let rows = s.wait_rows("SELECT * FROM b;", 1).await;
    assert_eq!(rows[0], vec![json!(1), json!("x")]);
    let (_, t) = s.get("/topics/B").await;
    assert_eq!(t["config"]["compression.type"], "snappy");
    let (status, body) = s.ksql("CREATE STREAM c (id INT KEY) WITH (kafka_topic='a', retention_ms=5);").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("already exists"), "{body}");
    let (status, body) = s.ksql("CREATE STREAM d (id INT KEY) WITH (kafka_topic='d', partitions=1, cleanup_policy='shred');").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("unknown cleanup policy"), "{body}");
}

#[tokio::test]
async fn retention_deletes_old_segments_and_reads_below_the_start_are_out_of_range() {
    let s = TestServer::start_with(&["--log-cleaner-interval-ms", "50"]);
    s.ksql_ok("CREATE STREAM r (id VARCHAR KEY, v VARCHAR) WITH (kafka_topic='r', partitions=1, segment_bytes=1024, retention_bytes=3000);").await;
    for batch in 0..10 {
        let records: Vec<Value> = (0..20).map(|i| json!({"key": format!("{batch}-{i}"), "value": {"V": "x".repeat(40)}})).collect();
        let (status, _) = s.post("/topics/r/records", json!({"records": records})).await;
        assert_eq!(status, 200);
    }
    wait_until("retention to advance the log start", async || {
        let (_, t) = s.get("/topics/r").await;
        t["partitions"][0]["logStartOffset"].as_i64().unwrap_or(0) > 0 && t["partitions"][0]["sizeBytes"].as_u64().unwrap_or(u64::MAX) < 3000 + 2000
    })
    .await;
    // The cleaner runs every 50 ms: wait until it has nothing left to delete, so the
    // start offset read below stays the start.
    wait_until("retention to settle", async || {
        let (_, a) = s.get("/topics/r").await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let (_, b) = s.get("/topics/r").await;
        a["partitions"][0]["logStartOffset"] == b["partitions"][0]["logStartOffset"]
    })
    .await;
    let (_, t) = s.get("/topics/r").await;
    let start = t["partitions"][0]["logStartOffset"].as_i64().unwrap();
    assert_eq!(t["partitions"][0]["logEndOffset"], 200);
    let (status, err) = s.get("/topics/r/partitions/0/records?offset=0").await;
    assert_eq!(status, 416);
    assert!(err["message"].as_str().unwrap().contains(&format!("stored offsets are {start}..200")), "{err}");
    let (status, recs) = s.get(&format!("/topics/r/partitions/0/records?offset={start}&limit=1000")).await;
    assert_eq!(status, 200);
    assert_eq!(recs["records"].as_array().unwrap().len() as i64, 200 - start);
    // Queries read what is left.
    let rows = s.rows("SELECT id FROM r;").await;
    assert_eq!(rows.len() as i64, 200 - start);
}

#[tokio::test]
async fn compaction_keeps_the_latest_value_per_key_at_its_original_offset() {
    let s = TestServer::start_with(&["--log-cleaner-interval-ms", "50"]);
    s.ksql_ok(
        "CREATE STREAM c (id VARCHAR KEY, v INT) WITH (kafka_topic='c', partitions=1, segment_bytes=1024, cleanup_policy='compact', delete_retention_ms=0);",
    )
    .await;
    let mut latest = std::collections::BTreeMap::new();
    for round in 0..10 {
        let records: Vec<Value> = (0..5).map(|k| json!({"key": format!("k{k}"), "value": {"V": round * 10 + k}})).collect();
        let (_, body) = s.post("/topics/c/records", json!({"records": records})).await;
        for k in 0..5 {
            latest.insert(format!("k{k}"), (body["offsets"][k]["offset"].as_i64().unwrap(), Some(json!({"V": round * 10 + k as i64}).to_string())));
        }
    }
    // A tombstone for k2 (removed at once: delete_retention_ms=0), then filler to seal segments.
    s.post("/topics/c/records", json!({"records": [{"key": "k2", "value": null, "timestamp": 1000}]})).await;
    latest.remove("k2");
    for _ in 0..10 {
        let (_, body) = s.post("/topics/c/records", json!({"records": [{"key": "filler", "value": {"V": 0}}]})).await;
        latest.insert("filler".into(), (body["offsets"][0]["offset"].as_i64().unwrap(), Some(json!({"V": 0}).to_string())));
    }
    // The active segment is never compacted (as in Kafka): a record larger than a segment
    // rolls it, so everything above is sealed.
    let big = json!({"V": 1, "PAD": "x".repeat(1500)});
    let (_, body) = s.post("/topics/c/records", json!({"records": [{"key": "big", "value": big}]})).await;
    latest.insert("big".into(), (body["offsets"][0]["offset"].as_i64().unwrap(), Some(big.to_string())));
    let read_all = async || {
        let (_, recs) = s.get("/topics/c/partitions/0/records?offset=0&limit=1000").await;
        recs["records"].as_array().unwrap().clone()
    };
    wait_until("compaction", async || {
        let recs = read_all().await;
        let keys: std::collections::BTreeSet<_> = recs.iter().map(|r| r["key"].as_str().unwrap().to_string()).collect();
        recs.len() == keys.len()
    })
    .await;
    let recs = read_all().await;
    let got: std::collections::BTreeMap<String, (i64, Option<String>)> =
        recs.iter().map(|r| (r["key"].as_str().unwrap().to_string(), (r["offset"].as_i64().unwrap(), r["value"].as_str().map(str::to_string)))).collect();
    assert_eq!(got, latest);
}

#[tokio::test]
async fn offsets_by_time_group_lag_and_resets() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM t (id VARCHAR KEY, v INT) WITH (kafka_topic='t', partitions=1);").await;
    let records: Vec<Value> = (0..10).map(|i| json!({"key": format!("{i}"), "value": {"V": i}, "timestamp": 1000 + i * 100})).collect();
    s.post("/topics/t/records", json!({"records": records})).await;
    let (_, o) = s.get("/topics/t/offsets?timestamp=1450").await;
    assert_eq!(o["partitions"][0]["offset"], 5);
    let (_, o) = s.get("/topics/t/offsets?timestamp=99999").await;
    assert_eq!(o["partitions"][0]["offset"], Value::Null);

    // A consumer group positioned by time.
    let (status, body) = s.post("/groups/analytics/reset", json!({"topic": "t", "to": "timestamp", "value": 1700})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["offsets"][0]["offset"], 7);
    let (_, g) = s.get("/groups/analytics").await;
    assert_eq!(g["offsets"][0]["lag"], 3);
    assert_eq!(g["offsets"][0]["logEndOffset"], 10);
    let (_, body) = s.post("/groups/analytics/reset", json!({"topic": "t", "to": "earliest"})).await;
    assert_eq!(body["offsets"][0]["offset"], 0);
    let (status, _) = s.post("/groups/analytics/reset", json!({"topic": "t", "to": "sideways"})).await;
    assert_eq!(status, 400);

    // A persistent query's group: lag in SHOW TOPICS EXTENDED and DESCRIBE EXTENDED.
    let csas = s.ksql_ok("CREATE STREAM t2 AS SELECT * FROM t;").await;
    let id = csas[0]["commandStatus"]["queryId"].as_str().unwrap().to_string();
    s.wait_rows("SELECT * FROM t2;", 10).await;
    let topics = s.ksql_ok("SHOW TOPICS EXTENDED;").await;
    let t = topics[0]["topics"].as_array().unwrap().iter().find(|t| t["name"] == "t").unwrap().clone();
    let groups: Vec<&str> = t["consumerGroups"].as_array().unwrap().iter().map(|g| g["group"].as_str().unwrap()).collect();
    assert!(groups.contains(&id.as_str()) && groups.contains(&"analytics"), "{t}");
    let q = t["consumerGroups"].as_array().unwrap().iter().find(|g| g["group"] == id.as_str()).unwrap();
    assert_eq!(q["lag"], 0);
    let desc = s.ksql_ok("DESCRIBE t EXTENDED;").await;
    let summary = &desc[0]["sourceDescription"]["queryOffsetSummaries"][0];
    assert_eq!(summary["groupId"], id.as_str());
    assert_eq!(summary["topicSummaries"][0]["offsets"][0]["consumerOffset"], 10);
    assert_eq!(summary["topicSummaries"][0]["offsets"][0]["lag"], 0);
    let (status, err) = s.post(&format!("/groups/{id}/reset"), json!({"topic": "t", "to": "earliest"})).await;
    assert_eq!(status, 409, "{err}");
}
