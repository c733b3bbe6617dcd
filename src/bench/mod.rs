//! `eddy bench`: reproducible throughput measurements (results go in BENCHMARKS.md).
//!
//! - `append`: raw appends of fixed-size records into one partition, batched, under a
//!   flush policy.
//! - `csas`: a filter/projection CREATE STREAM AS SELECT over JSON records already in the
//!   log, timed from query start until every input record has been processed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::engine::{Engine, EngineConfig, Session};
use crate::exec::OffsetReset;
use crate::log::{BatchBuilder, FlushPolicy, Log, TopicConfig};

pub struct AppendArgs {
    /// Concurrent writer threads sharing the partition (group commit under `always`).
    pub writers: usize,
    pub records: u64,
    pub record_bytes: usize,
    pub batch_records: usize,
    pub flush: FlushPolicy,
    pub dir: Option<PathBuf>,
    /// Read everything back afterwards and report the read rate.
    pub read: bool,
}

fn bench_dir(dir: &Option<PathBuf>) -> Result<(PathBuf, Option<tempfile::TempDir>), String> {
    match dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
            Ok((d.clone(), None))
        }
        None => {
            let t = tempfile::tempdir_in(".").map_err(|e| format!("cannot create a temporary directory here: {e}"))?;
            Ok((t.path().to_path_buf(), Some(t)))
        }
    }
}

/// Appends `records` records and prints throughput.
pub fn append(a: AppendArgs) -> Result<(), String> {
    let (dir, _guard) = bench_dir(&a.dir)?;
    let log = Log::open(&dir, TopicConfig::default()).map_err(|e| e.to_string())?;
    let topic = log
        .create_topic("bench", 1, TopicConfig { flush: a.flush, ..TopicConfig::default() })
        .map_err(|e| e.to_string())?;
    let part = topic.partition(0).map_err(|e| e.to_string())?.clone();
    let start = Instant::now();
    let writers = a.writers.max(1);
    let per_writer = a.records / writers as u64;
    let handles: Vec<_> = (0..writers)
        .map(|_| {
            let part = part.clone();
            let (record_bytes, batch_records) = (a.record_bytes, a.batch_records);
            std::thread::spawn(move || -> Result<u64, String> {
                let value = vec![b'x'; record_bytes];
                let mut written = 0u64;
                let mut bytes = 0u64;
                while written < per_writer {
                    let n = (per_writer - written).min(batch_records as u64);
                    let mut b = BatchBuilder::with_capacity(None, n as usize * (record_bytes + 16));
                    for i in 0..n {
                        b.push((written + i) as i64, None, Some(&value), &[]);
                    }
                    let batch = b.finish();
                    bytes += batch.len() as u64;
                    part.append(batch).map_err(|e| e.to_string())?;
                    written += n;
                }
                Ok(bytes)
            })
        })
        .collect();
    let mut payload_bytes = 0u64;
    for h in handles {
        payload_bytes += h.join().map_err(|_| "writer thread panicked".to_string())??;
    }
    let records = per_writer * writers as u64;
    part.sync().map_err(|e| e.to_string())?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "append: {records} records of {} bytes, {} per batch, {writers} writer(s), flush={}: {:.2}s, {:.0} records/s, {:.1} MB/s of payload ({:.1} MB/s on disk)",
        a.record_bytes,
        a.batch_records,
        a.flush.name(),
        secs,
        records as f64 / secs,
        (records * a.record_bytes as u64) as f64 / secs / 1e6,
        payload_bytes as f64 / secs / 1e6,
    );
    if a.read {
        read_back(&part, records)?;
    }
    Ok(())
}

/// Reads the whole partition back and prints the read rate.
fn read_back(part: &crate::log::PartitionLog, expected: u64) -> Result<(), String> {
    use crate::log::batch::{self, RecordIter};
    let start = Instant::now();
    let mut at = part.start_offset();
    let (mut records, mut bytes) = (0u64, 0u64);
    while at < part.end_offset() {
        let data = part.read(at, 4 << 20).map_err(|e| e.to_string())?;
        for b in batch::split_batches(&data) {
            let (h, payload) = batch::payload(b).map_err(|e| e.to_string())?;
            for r in RecordIter::over(h, &payload) {
                let r = r.map_err(|e| e.to_string())?;
                bytes += r.value.map(|v| v.len() as u64).unwrap_or(0);
                records += 1;
            }
            at = h.last_offset() + 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    if records != expected {
        return Err(format!("read {records} records, expected {expected}"));
    }
    println!("read: {records} records, every record decoded: {secs:.2}s, {:.0} records/s, {:.1} MB/s of payload", records as f64 / secs, bytes as f64 / secs / 1e6);
    Ok(())
}

pub struct CsasArgs {
    pub records: u64,
    pub partitions: i32,
    pub dir: Option<PathBuf>,
}

/// Loads JSON pageviews into the log, then times a filter/projection CSAS over them.
pub fn csas(a: CsasArgs) -> Result<(), String> {
    let (dir, _guard) = bench_dir(&a.dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    let log = Arc::new(Log::open(&dir, TopicConfig { flush: FlushPolicy::Never, ..TopicConfig::default() }).map_err(|e| e.to_string())?);
    let state = Arc::new(crate::state::StateDb::open(&dir.join("state")).map_err(|e| e.to_string())?);
    let engine = Engine::open(log.clone(), state, rt.handle().clone(), EngineConfig { default_offset_reset: OffsetReset::Earliest, ..EngineConfig::default() })
        .map_err(|e| e.to_string())?;
    let mut session = Session::default();
    engine
        .execute(
            &format!("CREATE STREAM pageviews (user_id VARCHAR KEY, page VARCHAR, dwell_ms BIGINT) WITH (kafka_topic='pageviews', value_format='JSON', partitions={}, flush='never');", a.partitions),
            &mut session,
        )
        .map_err(|e| e.to_string())?;
    let topic = log.topic("pageviews").map_err(|e| e.to_string())?;
    let load = Instant::now();
    let pages = ["home", "cart", "search", "checkout", "docs"];
    let per_batch = 1000u64;
    let mut i = 0u64;
    while i < a.records {
        let p = (i / per_batch) as i32 % a.partitions;
        let mut b = BatchBuilder::default();
        for j in i..(i + per_batch).min(a.records) {
            let key = format!("u{}", j % 10_000);
            let value = format!(r#"{{"PAGE":"{}","DWELL_MS":{}}}"#, pages[(j % 5) as usize], j % 3000);
            b.push(j as i64, Some(key.as_bytes()), Some(value.as_bytes()), &[]);
        }
        topic.partition(p).map_err(|e| e.to_string())?.append(b.finish()).map_err(|e| e.to_string())?;
        i += per_batch;
    }
    let load_secs = load.elapsed().as_secs_f64();
    let start = Instant::now();
    engine
        .execute(
            "CREATE STREAM long_views WITH (flush='never') AS SELECT user_id, UCASE(page) AS page, dwell_ms / 1000.0 AS dwell_s FROM pageviews WHERE dwell_ms > 1000;",
            &mut session,
        )
        .map_err(|e| e.to_string())?;
    let id = engine.catalog().queries().first().map(|q| q.id.clone()).ok_or("query did not start")?;
    let stats = engine.runtime().stats(&id).ok_or("no stats")?;
    loop {
        let done = stats.records_in.load(std::sync::atomic::Ordering::Relaxed);
        if done >= a.records {
            break;
        }
        if start.elapsed() > Duration::from_secs(3600) {
            return Err(format!("timed out after processing {done} records"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let secs = start.elapsed().as_secs_f64();
    let out = stats.records_out.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "csas: {} JSON records in {} partitions (loaded in {:.2}s): filter+projection processed in {:.2}s = {:.0} records/s; {} rows written",
        a.records,
        a.partitions,
        load_secs,
        secs,
        a.records as f64 / secs,
        out
    );
    engine.shutdown();
    Ok(())
}
