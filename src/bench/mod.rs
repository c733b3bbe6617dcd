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
    pub records: u64,
    pub record_bytes: usize,
    pub batch_records: usize,
    pub flush: FlushPolicy,
    pub dir: Option<PathBuf>,
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
    let value = vec![b'x'; a.record_bytes];
    let start = Instant::now();
    let mut written = 0u64;
    let mut payload_bytes = 0u64;
    while written < a.records {
        let n = (a.records - written).min(a.batch_records as u64);
        let mut b = BatchBuilder::default();
        for i in 0..n {
            b.push((written + i) as i64, None, Some(&value), &[]);
        }
        let batch = b.finish();
        payload_bytes += batch.len() as u64;
        part.append(batch).map_err(|e| e.to_string())?;
        written += n;
    }
    part.sync().map_err(|e| e.to_string())?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "append: {} records of {} bytes, {} per batch, flush={}: {:.2}s, {:.0} records/s, {:.1} MB/s of payload ({:.1} MB/s on disk)",
        a.records,
        a.record_bytes,
        a.batch_records,
        a.flush.name(),
        secs,
        a.records as f64 / secs,
        (a.records * a.record_bytes as u64) as f64 / secs / 1e6,
        payload_bytes as f64 / secs / 1e6,
    );
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
    let engine = Engine::open(log.clone(), rt.handle().clone(), EngineConfig { default_offset_reset: OffsetReset::Earliest, ..EngineConfig::default() })
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
