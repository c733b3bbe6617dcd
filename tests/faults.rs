//! The crash-and-fault matrix: failed fsyncs and failed writes injected in the file layer
//! (a test double for segment files), and a real full disk (a small tmpfs the test mounts).
//! After each, every acknowledged record is there exactly once and nothing unacknowledged
//! is visible; a full disk is a clear error to writers (`insufficient space` over REST,
//! KAFKA_STORAGE_ERROR over Kafka) while reads go on, and aggregations stay exactly-once.
//! (`crash.rs` and `exactly_once.rs` kill the server with SIGKILL at random points.)

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::kafka_wire::{call, connect, produce_request};
use common::{ProcessLimits, TestServer};
use eddy::log::storage::{FaultyStorage, OpenFiles};
use eddy::log::{BatchBuilder, FlushPolicy, Log, LogOptions, RecordIter, TopicConfig, batch};
use kafka_protocol::messages::{ApiKey, ProduceResponse};
use serde_json::json;

/// Every (key, value) in partition 0 of a topic, in offset order.
fn records(log: &Log, topic: &str) -> Vec<(i64, String)> {
    let p = log.topic(topic).unwrap().partition(0).unwrap().clone();
    let mut out = Vec::new();
    let mut at = p.start_offset();
    while at < p.end_offset() {
        let data = p.read(at, 1 << 20).unwrap();
        for b in batch::split_batches(&data) {
            let (h, payload) = batch::payload(b).unwrap();
            for r in RecordIter::over(h, &payload) {
                let r = r.unwrap();
                out.push((r.offset, String::from_utf8_lossy(r.value.unwrap()).to_string()));
            }
            at = h.last_offset() + 1;
        }
    }
    out
}

#[test]
fn after_failed_fsyncs_and_failed_writes_every_acknowledged_record_is_there_once_and_nothing_else() {
    for (fault, lose_unsynced) in [("fsync", true), ("fsync", false), ("write", false), ("full disk", false)] {
        let dir = tempfile::tempdir().unwrap();
        let storage = FaultyStorage::default();
        storage.faults.lose_unsynced_on_failed_sync.store(lose_unsynced, Ordering::Release);
        let options = LogOptions { files: OpenFiles::new(Arc::new(storage.clone()), 16), ..LogOptions::default() };
        let cfg = TopicConfig { flush: FlushPolicy::Always, segment_bytes: 4096, ..TopicConfig::default() };
        let mut acked = Vec::new();
        let mut refused = 0;
        {
            let log = Log::open_with(dir.path(), cfg.clone(), options).unwrap();
            let topic = log.create_topic("t", 1, cfg.clone()).unwrap();
            let p = topic.local_partition(0).unwrap().clone();
            // Four writers append concurrently (group commits) while faults are injected; they
            // go on until the injection is over, however the threads are scheduled.
            let injecting = Arc::new(AtomicBool::new(true));
            let failures = Arc::new(AtomicU64::new(0));
            let writers: Vec<_> = (0..4)
                .map(|w| {
                    let p = p.clone();
                    let injecting = injecting.clone();
                    let failures = failures.clone();
                    std::thread::spawn(move || {
                        let mut mine = Vec::new();
                        let mut failed = 0;
                        for n in 0.. {
                            if n >= 150 && !injecting.load(Ordering::Acquire) {
                                break;
                            }
                            let value = format!("w{w}-{n}");
                            let mut b = BatchBuilder::default();
                            b.push(n, None, Some(value.as_bytes()), &[]);
                            match p.append(b.finish()) {
                                Ok(_) => mine.push(value),
                                Err(e) => {
                                    assert!(e.is_storage(), "{e}");
                                    failures.fetch_add(1, Ordering::AcqRel);
                                    failed += 1;
                                }
                            }
                        }
                        (mine, failed)
                    })
                })
                .collect();
            // At least 12 rounds, and on until a fault has fired and an append failed (10 s at most).
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            for round in 0.. {
                let done = round >= 12 && storage.faults.fired.load(Ordering::Acquire) > 0 && failures.load(Ordering::Acquire) > 0;
                if done || std::time::Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(3));
                match fault {
                    "fsync" => storage.faults.fail_syncs.store(1, Ordering::Release),
                    "write" => storage.faults.fail_writes.store(1, Ordering::Release),
                    _ => storage.faults.space_left.store(if round % 2 == 0 { 300 } else { -1 }, Ordering::Release),
                }
            }
            storage.faults.space_left.store(-1, Ordering::Release);
            injecting.store(false, Ordering::Release);
            for w in writers {
                let (mine, failed) = w.join().unwrap();
                acked.extend(mine);
                refused += failed;
            }
            assert!(storage.faults.fired.load(Ordering::Acquire) > 0, "{fault}: no fault fired");
            assert!(refused > 0, "{fault}: no append failed");
            assert!(p.offline_reason().is_none(), "{fault}: the partition undid every failure");
        }
        // Recovery from what is on disk.
        let log = Log::open(dir.path(), cfg.clone()).unwrap();
        let stored = records(&log, "t");
        let offsets: Vec<i64> = stored.iter().map(|(o, _)| *o).collect();
        assert_eq!(offsets, (0..stored.len() as i64).collect::<Vec<_>>(), "{fault}: failed appends used no offsets");
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, v) in &stored {
            *count.entry(v.as_str()).or_default() += 1;
        }
        for v in &acked {
            assert_eq!(count.get(v.as_str()), Some(&1), "{fault}: acknowledged {v} is not there exactly once");
        }
        assert_eq!(stored.len(), acked.len(), "{fault}: records whose append failed are visible after a restart");
    }
}

/// A tmpfs of `mib` MiB mounted for the test; unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(mib: u64) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn free_bytes(&self) -> u64 {
        let out = std::process::Command::new("df").args(["-B1", "--output=avail"]).arg(self.path()).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().nth(1).and_then(|l| l.trim().parse().ok()).unwrap_or(0)
    }

    /// Fills the disk until `leave` bytes are free.
    fn fill(&self, leave: u64) -> PathBuf {
        let filler = self.path().join("filler");
        let size = self.free_bytes().saturating_sub(leave);
        let f = std::fs::File::create(&filler).unwrap();
        // Written, not sparse: tmpfs counts written pages.
        use std::io::Write;
        let mut w = std::io::BufWriter::new(f);
        let chunk = vec![0u8; 1 << 20];
        let mut left = size;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            if w.write_all(&chunk[..n]).is_err() {
                break;
            }
            left -= n as u64;
        }
        let _ = w.flush();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_a_clear_error_reads_go_on_and_counts_stay_exactly_once() {
    let Some(disk) = SmallDisk::mount(96) else {
        eprintln!("!! SKIPPED a_full_disk_is_a_clear_error...: cannot mount a tmpfs here (needs root); the full-disk case was NOT tested");
        return;
    };
    let data = disk.path().join("data");
    let mut s = TestServer::start_in(&data, &[], ProcessLimits::default());
    s.ksql_ok("CREATE STREAM events (id VARCHAR KEY, grp VARCHAR) WITH (kafka_topic='events', partitions=1, value_format='JSON');").await;
    s.ksql_ok("CREATE TABLE counts AS SELECT grp, COUNT(*) AS n FROM events GROUP BY grp;").await;
    let mut acked = 0i64;
    let mut full_errors = 0;
    let insert = async |s: &TestServer, i: i64| -> bool {
        let (status, body) = s.ksql(&format!("INSERT INTO events (id, grp) VALUES ('e{i}', 'g{}');", i % 3)).await;
        if status == 200 {
            return true;
        }
        assert_eq!(status, 500, "{body}");
        assert!(body["message"].as_str().unwrap_or_default().contains("insufficient space"), "a full disk is named: {body}");
        false
    };
    for i in 0..40 {
        assert!(insert(&s, i).await);
        acked += 1;
    }
    s.wait_until("the first counts", async |s| s.rows("SELECT n FROM counts;").await.iter().map(|r| r[0].as_i64().unwrap_or(0)).sum::<i64>() == 40).await;
    let filler = disk.fill(256 * 1024);
    let mut i = 40;
    while full_errors < 5 && i < 5000 {
        if insert(&s, i).await {
            acked += 1;
        } else {
            full_errors += 1;
        }
        i += 1;
    }
    assert!(full_errors >= 5, "the disk never filled");
    // Reads go on while the disk is full.
    let (status, body) = s.post("/query", json!({"ksql": "SELECT * FROM counts;"})).await;
    assert_eq!(status, 200, "{body}");
    // Kafka producers get Kafka's storage error.
    let mut k = connect(&s.kafka);
    let mut refused = false;
    for _ in 0..20 {
        let mut b = BatchBuilder::default();
        b.push(1, Some(b"kafka"), Some(format!("{{\"GRP\": \"g1\", \"PAD\": \"{}\"}}", "x".repeat(8192)).as_bytes()), &[]);
        let r: ProduceResponse = call(&mut k, ApiKey::Produce, 8, &produce_request("events", bytes::Bytes::from(b.finish())));
        let code = r.responses[0].partition_responses[0].error_code;
        if code == 56 {
            refused = true;
            break;
        }
        assert_eq!(code, 0, "a full disk is KAFKA_STORAGE_ERROR (56)");
        acked += 1;
    }
    assert!(refused, "Kafka produce was never refused for a full disk");
    // Space comes back; writes go on, and every record counts exactly once.
    std::fs::remove_file(filler).unwrap();
    for _ in 0..30 {
        if insert(&s, i).await {
            acked += 1;
        }
        i += 1;
    }
    let (_, topic) = s.get("/topics/events").await;
    assert_eq!(topic["partitions"][0]["logEndOffset"], acked, "failed appends used up no offsets: {topic}");
    let total = |rows: Vec<Vec<serde_json::Value>>| rows.iter().map(|r| r[0].as_i64().unwrap_or(0)).sum::<i64>();
    s.wait_until("counts of every acknowledged record", async |s| total(s.rows("SELECT n FROM counts;").await) >= acked).await;

    // Now the query's own writes fail: a backlog it works through while the disk fills up
    // (its output appends and state commits fail and are retried).
    s.stop();
    let backlog = 30_000i64;
    {
        let log = Log::open(&data, TopicConfig::default()).unwrap();
        let p = log.topic("events").unwrap().partition(0).unwrap().clone();
        for chunk in 0..backlog / 1000 {
            let mut b = BatchBuilder::default();
            for j in 0..1000 {
                let n = chunk * 1000 + j;
                b.push(n, Some(format!("b{n}").as_bytes()), Some(format!("{{\"GRP\": \"backlog-{n}\"}}").as_bytes()), &[]);
            }
            p.append(b.finish()).unwrap();
        }
    }
    let filler = disk.fill(2 << 20);
    s.restart();
    let stuck = async |s: &TestServer| {
        let (_, d) = s.ksql("DESCRIBE counts EXTENDED;").await;
        d[0]["sourceDescription"]["errorStats"].as_str().unwrap_or_default().contains("insufficient space")
    };
    s.wait_until("the query to run out of disk", stuck).await;
    std::fs::remove_file(filler).unwrap();
    let expected = acked + backlog;
    s.wait_until("counts of every record", async |s| total(s.rows("SELECT n FROM counts;").await) >= expected).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(total(s.rows("SELECT n FROM counts;").await), expected, "a record was counted twice");
    s.stop();
    s.restart();
    assert_eq!(total(s.rows("SELECT n FROM counts;").await), expected, "after a restart");
}
