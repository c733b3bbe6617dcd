//! Join benchmarks over JSON records loaded straight into the log: a stream-table
//! enrichment against a large table, and a stream-stream join within a 10-second window.
//! Timed from query start until both inputs are committed to their end; the state size is
//! what RocksDB holds for the query afterwards.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::bench_dir;
use super::queries::{load_records, open_engine, wait_committed};
use crate::engine::Session;

pub struct JoinArgs {
    /// Stream records (split over both streams for `stream-stream`).
    pub records: u64,
    /// Table rows (`stream-table`) or distinct join keys (`stream-stream`).
    pub keys: u64,
    pub partitions: i32,
    /// `stream-table` or `stream-stream`.
    pub shape: String,
    pub dir: Option<PathBuf>,
}

fn dir_bytes(p: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(p) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

pub fn join(a: JoinArgs) -> Result<(), String> {
    let (dir, _guard) = bench_dir(&a.dir)?;
    let (engine, log, _rt) = open_engine(&dir)?;
    let p = a.partitions;
    let run = |sql: &str| engine.execute(sql, &mut Session::default()).map(|_| ()).map_err(|e| e.to_string());
    let load = Instant::now();
    let (sql, left, right) = match a.shape.as_str() {
        "stream-table" => {
            run(&format!(
                "CREATE TABLE users (user_id VARCHAR PRIMARY KEY, tier VARCHAR, country VARCHAR) WITH (kafka_topic='users', value_format='JSON', \
                    partitions={p}, flush='never');"
            ))?;
            run(&format!(
                "CREATE STREAM events (user_id VARCHAR KEY, page VARCHAR, dwell_ms BIGINT) WITH (kafka_topic='events', value_format='JSON', \
                    partitions={p}, flush='never');"
            ))?;
            let keys = a.keys;
            load_records(&log, "users", keys, |j, k, v| {
                use std::fmt::Write;
                let _ = write!(k, "u{j}");
                let _ = write!(v, r#"{{"TIER":"t{}","COUNTRY":"c{}"}}"#, j % 5, j % 50);
                0
            })?;
            load_records(&log, "events", a.records, |j, k, v| {
                use std::fmt::Write;
                let _ = write!(k, "u{}", (j * 7919) % keys);
                let _ = write!(v, r#"{{"PAGE":"p{}","DWELL_MS":{}}}"#, j % 10, j % 3000);
                1 + j as i64
            })?;
            (
                "CREATE STREAM enriched WITH (flush='never') AS SELECT e.user_id, e.page, e.dwell_ms, u.tier, u.country FROM events e JOIN users u ON \
                    e.user_id = u.user_id;",
                "events",
                "users",
            )
        }
        "stream-stream" => {
            run(&format!(
                "CREATE STREAM impressions (ad_id VARCHAR KEY, imp VARCHAR) WITH (kafka_topic='impressions', value_format='JSON', partitions={p}, \
                    flush='never');"
            ))?;
            run(&format!(
                "CREATE STREAM clicks (ad_id VARCHAR KEY, click VARCHAR) WITH (kafka_topic='clicks', value_format='JSON', partitions={p}, flush='never');"
            ))?;
            let (keys, half) = (a.keys, a.records / 2);
            // One record per millisecond on each side: ~10,000 rows per side in a window.
            load_records(&log, "impressions", half, |j, k, v| {
                use std::fmt::Write;
                let _ = write!(k, "a{}", (j * 7919) % keys);
                let _ = write!(v, r#"{{"IMP":"i{j}"}}"#);
                j as i64
            })?;
            load_records(&log, "clicks", half, |j, k, v| {
                use std::fmt::Write;
                let _ = write!(k, "a{}", (j * 104_729) % keys);
                let _ = write!(v, r#"{{"CLICK":"c{j}"}}"#);
                j as i64
            })?;
            (
                "CREATE STREAM matched WITH (flush='never') AS SELECT i.ad_id, i.imp, c.click FROM impressions i JOIN clicks c WITHIN 10 SECONDS ON \
                    i.ad_id = c.ad_id;",
                "impressions",
                "clicks",
            )
        }
        other => return Err(format!("unknown --shape {other}; use stream-table or stream-stream")),
    };
    let load_secs = load.elapsed().as_secs_f64();
    let start = Instant::now();
    run(sql)?;
    let id = engine.catalog().queries().iter().find(|q| q.sink != "USERS").map(|q| q.id.clone()).ok_or("query did not start")?;
    wait_committed(&log, &id, left, start)?;
    wait_committed(&log, &format!("{id}/right-input"), right, start)?;
    let secs = start.elapsed().as_secs_f64();
    let stats = engine.runtime().stats(&id).ok_or("no stats for the query")?;
    let (inputs, outputs) = (stats.records_in.load(Ordering::Relaxed), stats.records_out.load(Ordering::Relaxed));
    engine.shutdown();
    let state_mb = dir_bytes(&dir.join("state")) as f64 / 1e6;
    println!(
        "join ({}): {} stream records, {} keys, {p} partitions (loaded in {load_secs:.2}s): joined in {secs:.2}s = {:.0} input records/s ({inputs} \
            read, {outputs} results); state directory after shutdown {state_mb:.1} MB",
        a.shape,
        a.records,
        a.keys,
        inputs as f64 / secs,
    );
    Ok(())
}
