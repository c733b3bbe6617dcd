//! `eddy bench`: reproducible throughput measurements (results go in BENCHMARKS.md).
//!
//! - `append`: raw appends of fixed-size records into one partition, batched, under a
//!   flush policy.
//! - `csas`: a filter/projection CREATE STREAM AS SELECT over JSON records already in the
//!   log, timed from query start until every input record has been processed.
//! - `agg`: a GROUP BY aggregation (optionally windowed or repartitioned) over JSON
//!   records already in the log, timed the same way and checked against the table.
//! - `lookups`: the CPU of pull queries by key and feature lookups on one thread, without
//!   HTTP, against a table held in memory.
//! - `join`: a stream-table enrichment or a stream-stream join over JSON records already in
//!   the log, with the state size it leaves.
//! - `push`: many concurrent push queries (with continuation tokens) reading one stream.
//! - `nexmark`: Nexmark's queries in ksqlDB's dialect (`sql/nexmark/`) over generated
//!   events, in events per second.
//! - `cluster`, `failover`: servers on a Kafka-protocol broker, as processes (see
//!   [`cluster`]).

use std::path::PathBuf;
use std::time::Instant;

use crate::log::{BatchBuilder, FlushPolicy, Log, TopicConfig};

mod cluster;
mod joins;
mod lookups;
mod nexmark;
mod push;
mod queries;
pub use cluster::{ClusterArgs, FailoverArgs, cluster, failover};
pub use joins::{JoinArgs, join};
pub use lookups::{LookupArgs, lookups};
pub use nexmark::{NexmarkArgs, nexmark};
pub use push::{PushArgs, push};
pub use queries::{AggArgs, CsasArgs, agg, csas};

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

pub(crate) fn bench_dir(dir: &Option<PathBuf>) -> Result<(PathBuf, Option<tempfile::TempDir>), String> {
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
    let topic = log.create_topic("bench", 1, TopicConfig { flush: a.flush, ..TopicConfig::default() }).map_err(|e| e.to_string())?;
    let part = topic.local_partition(0).map_err(|e| e.to_string())?.clone();
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
        "append: {records} records of {} bytes, {} per batch, {writers} writer(s), flush={}: {:.2}s, {:.0} records/s, {:.1} MB/s of payload ({:.1} \
            MB/s on disk)",
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
    println!(
        "read: {records} records, every record decoded: {secs:.2}s, {:.0} records/s, {:.1} MB/s of payload",
        records as f64 / secs,
        bytes as f64 / secs / 1e6
    );
    Ok(())
}
