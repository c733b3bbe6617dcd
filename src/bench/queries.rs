//! Query benchmarks over JSON pageviews loaded straight into the log: a filter/projection
//! CSAS and GROUP BY aggregations, each timed from query start until every input record
//! has been processed.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::bench_dir;
use crate::engine::{Engine, EngineConfig, QueryOutput, Session};
use crate::exec::OffsetReset;
use crate::log::{BatchBuilder, FlushPolicy, Log, TopicConfig};

const PAGES: [&str; 5] = ["home", "cart", "search", "checkout", "docs"];

/// An engine over a fresh log in `dir` (no fsync: the benchmarks measure processing).
pub(super) fn open_engine(dir: &std::path::Path) -> Result<(Engine, Arc<Log>, tokio::runtime::Runtime), String> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    let log = Arc::new(Log::open(dir, TopicConfig { flush: FlushPolicy::Never, ..TopicConfig::default() }).map_err(|e| e.to_string())?);
    let state = Arc::new(crate::state::StateDb::open(&dir.join("state")).map_err(|e| e.to_string())?);
    let engine = Engine::open(log.clone(), state, rt.handle().clone(), EngineConfig { default_offset_reset: OffsetReset::Earliest, ..EngineConfig::default() })
        .map_err(|e| e.to_string())?;
    Ok((engine, log, rt))
}

/// Appends `records` records to `topic`, record j being `record(j)` = (key, JSON value,
/// timestamp); keys go to the partition murmur2 picks, as a producer would send them.
pub(super) fn load_records(log: &Log, topic: &str, records: u64, mut record: impl FnMut(u64, &mut String, &mut String) -> i64) -> Result<(), String> {
    let mut text = String::new();
    load_bytes(log, topic, records, |j, key, value| {
        text.clear();
        let ts = record(j, key, &mut text);
        value.extend_from_slice(text.as_bytes());
        ts
    })
}

/// [`load_records`] with values as bytes.
fn load_bytes(log: &Log, topic: &str, records: u64, mut record: impl FnMut(u64, &mut String, &mut Vec<u8>) -> i64) -> Result<(), String> {
    let topic = log.topic(topic).map_err(|e| e.to_string())?;
    let partitions = topic.partition_count();
    let per_batch = 1000u64;
    let mut i = 0u64;
    let mut key = String::new();
    let mut value = Vec::new();
    while i < records {
        let mut builders: Vec<BatchBuilder> = (0..partitions).map(|_| BatchBuilder::default()).collect();
        for j in i..(i + per_batch).min(records) {
            key.clear();
            value.clear();
            let ts = record(j, &mut key, &mut value);
            let p = crate::log::murmur2::partition_for_key(key.as_bytes(), partitions);
            builders[p as usize].push(ts, Some(key.as_bytes()), Some(&value), &[]);
        }
        for (p, b) in builders.into_iter().enumerate() {
            if !b.is_empty() {
                topic.partition(p as i32).map_err(|e| e.to_string())?.append(b.finish()).map_err(|e| e.to_string())?;
            }
        }
        i += per_batch;
    }
    Ok(())
}

/// The value formats the query benchmarks load pageviews in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchFormat {
    Json,
    /// JSON, the Flink peer's records (`eddy datagen pageviews`): the same input both
    /// engines read in BENCHMARKS.md's side-by-side runs.
    Peer,
    Avro,
    Protobuf,
}

impl BenchFormat {
    /// A comma-separated list (`json,avro`).
    pub fn parse_list(text: &str) -> Result<Vec<BenchFormat>, String> {
        text.split(',')
            .map(|f| match f.trim().to_ascii_lowercase().as_str() {
                "json" => Ok(BenchFormat::Json),
                "peer" => Ok(BenchFormat::Peer),
                "avro" => Ok(BenchFormat::Avro),
                "protobuf" => Ok(BenchFormat::Protobuf),
                other => Err(format!("unknown --format {other}; use json, peer (JSON, the Flink peer's records), avro, protobuf or a list (json,avro)")),
            })
            .collect()
    }

    pub fn name(self) -> &'static str {
        match self {
            BenchFormat::Json => "JSON",
            BenchFormat::Peer => "JSON (the Flink peer's records)",
            BenchFormat::Avro => "AVRO",
            BenchFormat::Protobuf => "PROTOBUF",
        }
    }

    /// The VALUE_FORMAT of the stream the records are in.
    fn sql_format(self) -> &'static str {
        match self {
            BenchFormat::Json | BenchFormat::Peer => "JSON",
            BenchFormat::Avro => "AVRO",
            BenchFormat::Protobuf => "PROTOBUF",
        }
    }
}

/// Appends an Avro long or int (zig-zag varint).
fn avro_long(n: i64, out: &mut Vec<u8>) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// An engine over a fresh log in `dir`, with a `pageviews` stream holding `records`
/// records over `keys` users in `format` (AVRO records are framed with the schema the
/// stream registered); record j has event time `j * ms_per_record`. Returns the engine
/// and the load time.
pub(super) fn load_pageviews(
    dir: &std::path::Path,
    records: u64,
    partitions: i32,
    keys: u64,
    ms_per_record: i64,
    format: BenchFormat,
) -> Result<(Engine, Arc<Log>, tokio::runtime::Runtime, f64), String> {
    let (engine, log, rt) = open_engine(dir)?;
    engine
        .execute(
            &format!(
                "CREATE STREAM pageviews (user_id VARCHAR KEY, page VARCHAR, dwell_ms BIGINT) WITH (kafka_topic='pageviews', value_format='{}', \
                partitions={partitions}, flush='never');",
                format.sql_format()
            ),
            &mut Session::default(),
        )
        .map_err(|e| e.to_string())?;
    let schema_id = engine.catalog().source("PAGEVIEWS").and_then(|s| s.value_format.schema_id).unwrap_or(0);
    let load = Instant::now();
    if format == BenchFormat::Peer {
        use crate::datagen::Generator;
        let mut peer = crate::datagen::Pageviews::new(42, keys, 1_700_000_000_000, Some(records));
        let schema = &peer.schemas()[0];
        let mut row = crate::datagen::row::Row::with_fields(4);
        load_bytes(&log, "pageviews", records, |_, key, value| {
            peer.next(&mut row);
            if let crate::datagen::row::Val::Str(user) = &row.values[0] {
                key.push_str(user);
            }
            crate::datagen::row::encode_value(schema, &row, crate::datagen::row::ValueFormat::Json, value);
            row.timestamp
        })?;
        return Ok((engine, log, rt, load.elapsed().as_secs_f64()));
    }
    load_bytes(&log, "pageviews", records, |j, key, value| {
        use std::fmt::Write;
        let _ = write!(key, "u{}", j % keys);
        let page = PAGES[(j % 5) as usize];
        let dwell = (j % 3000) as i64;
        match format {
            BenchFormat::Json | BenchFormat::Peer => {
                use std::io::Write;
                let _ = write!(value, r#"{{"PAGE":"{page}","DWELL_MS":{dwell}}}"#);
            }
            BenchFormat::Protobuf => {
                // Confluent's frame with message index 0, then the message
                // {string PAGE = 1; int64 DWELL_MS = 2;}.
                value.push(0);
                value.extend_from_slice(&schema_id.to_be_bytes());
                value.push(0);
                value.push(0x0a);
                value.push(page.len() as u8);
                value.extend_from_slice(page.as_bytes());
                if dwell != 0 {
                    value.push(0x10);
                    let mut z = dwell as u64;
                    while z >= 0x80 {
                        value.push((z as u8 & 0x7f) | 0x80);
                        z >>= 7;
                    }
                    value.push(z as u8);
                }
            }
            BenchFormat::Avro => {
                // Confluent's frame, then the record {PAGE: ["null","string"], DWELL_MS: ["null","long"]}.
                value.push(0);
                value.extend_from_slice(&schema_id.to_be_bytes());
                value.push(2);
                avro_long(page.len() as i64, value);
                value.extend_from_slice(page.as_bytes());
                value.push(2);
                avro_long(dwell, value);
            }
        }
        j as i64 * ms_per_record
    })?;
    Ok((engine, log, rt, load.elapsed().as_secs_f64()))
}

/// Waits until consumer group `group` has committed every partition of `topic` to its end.
pub(super) fn wait_committed(log: &Log, group: &str, topic: &str, start: Instant) -> Result<(), String> {
    let t = log.topic(topic).map_err(|e| e.to_string())?;
    loop {
        let behind = t.partitions().iter().any(|p| log.offsets().fetch(group, topic, p.id()).map(|c| c.offset).unwrap_or(0) < p.end_offset());
        if !behind {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(3600) {
            return Err("timed out".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub struct CsasArgs {
    pub records: u64,
    pub partitions: i32,
    pub dir: Option<PathBuf>,
    /// Value formats to run in turn (`json,avro`).
    pub format: String,
}

/// Loads pageviews into the log in each format, then times a filter/projection CSAS over
/// them (the result in the same format).
pub fn csas(a: CsasArgs) -> Result<(), String> {
    for format in BenchFormat::parse_list(&a.format)? {
        csas_in(&a, format)?;
    }
    Ok(())
}

fn csas_in(a: &CsasArgs, format: BenchFormat) -> Result<(), String> {
    let (dir, _guard) = bench_dir(&a.dir)?;
    let (engine, log, _rt, load_secs) = load_pageviews(&dir, a.records, a.partitions, 10_000, 1, format)?;
    let start = Instant::now();
    engine
        .execute(
            "CREATE STREAM long_views WITH (flush='never') AS SELECT user_id, UCASE(page) AS page, dwell_ms / 1000.0 AS dwell_s FROM pageviews WHERE \
                dwell_ms > 1000;",
            &mut Session::default(),
        )
        .map_err(|e| e.to_string())?;
    let id = engine.catalog().queries().first().map(|q| q.id.clone()).ok_or("query did not start")?;
    // Done when the query has committed its input to the end: its output is appended and
    // committed with it (filter, projection, encoding, append and commit all timed).
    wait_committed(&log, &id, "pageviews", start)?;
    let secs = start.elapsed().as_secs_f64();
    let out = engine.runtime().stats(&id).map(|s| s.records_out.load(Ordering::Relaxed)).unwrap_or(0);
    let sink = engine.catalog().source("LONG_VIEWS").map(|s| s.topic.clone()).ok_or("the CSAS's stream is not in the catalog")?;
    let written: i64 = log.topic(&sink).map_err(|e| e.to_string())?.partitions().iter().map(|p| p.end_offset()).sum();
    println!(
        "csas: {} {} records in {} partitions (loaded in {load_secs:.2}s): filter+projection processed and committed in {secs:.2}s = {:.0} \
            records/s; {out} rows out, {written} records in the output topic",
        a.records,
        format.name(),
        a.partitions,
        a.records as f64 / secs,
    );
    engine.shutdown();
    Ok(())
}

pub struct AggArgs {
    pub records: u64,
    pub partitions: i32,
    /// Distinct users (GROUP BY user_id keys).
    pub keys: u64,
    /// `key` (GROUP BY the source key), `page` (through a repartition topic) or `window`
    /// (GROUP BY user_id in 1-minute tumbling windows).
    pub shape: String,
    pub dir: Option<PathBuf>,
    /// Keep the data directory (a table to measure start-up against).
    pub keep: bool,
    /// Value formats to run in turn (`json,avro`).
    pub format: String,
}

/// Loads pageviews in each format, then times a COUNT/SUM GROUP BY over them and checks
/// the result.
pub fn agg(a: AggArgs) -> Result<(), String> {
    for format in BenchFormat::parse_list(&a.format)? {
        agg_in(&a, format)?;
    }
    Ok(())
}

fn agg_in(a: &AggArgs, format: BenchFormat) -> Result<(), String> {
    let (dir, mut guard) = bench_dir(&a.dir)?;
    if a.keep {
        // Leave a temporary directory in place for the start-up measurement.
        if let Some(g) = guard.take() {
            let _ = g.keep();
        }
    }
    // One record per 10 ms of event time: 6,000 records per 1-minute window.
    let (engine, log, _rt, load_secs) = load_pageviews(&dir, a.records, a.partitions, a.keys, 10, format)?;
    let sql = match a.shape.as_str() {
        "key" => "CREATE TABLE stats WITH (flush='never') AS SELECT user_id, COUNT(*) AS n, SUM(dwell_ms) AS total FROM pageviews GROUP BY user_id;",
        "page" => "CREATE TABLE stats WITH (flush='never') AS SELECT page, COUNT(*) AS n, SUM(dwell_ms) AS total FROM pageviews GROUP BY page;",
        "window" => {
            "CREATE TABLE stats WITH (flush='never') AS SELECT user_id, COUNT(*) AS n, SUM(dwell_ms) AS total FROM pageviews WINDOW TUMBLING (SIZE 1 \
                MINUTE) GROUP BY user_id;"
        }
        other => return Err(format!("unknown --shape {other}; use key, page or window")),
    };
    let start = Instant::now();
    engine.execute(sql, &mut Session::default()).map_err(|e| e.to_string())?;
    let id = engine.catalog().queries().first().map(|q| q.id.clone()).ok_or("query did not start")?;
    // Done when every stage has committed (state and offsets) up to its input's end.
    let mut stages = vec![(id.clone(), "pageviews".to_string())];
    if a.shape == "page" {
        stages = vec![(format!("{id}/repartition"), "pageviews".to_string()), (id.clone(), crate::exec::Runtime::repartition_topic(&log, &id))];
    }
    for (group, topic) in &stages {
        wait_committed(&log, group, topic, start)?;
    }
    let secs = start.elapsed().as_secs_f64();
    // Check: the counts in the table add up to the input.
    let QueryOutput::Pull(pulled) = engine.query("SELECT n FROM stats;", &Session::default()).map_err(|e| e.to_string())? else {
        return Err("a pull query on the table did not return its rows".into());
    };
    let mut counted: i64 = 0;
    let mut rows = 0u64;
    for r in &pulled.rows {
        rows += 1;
        counted += r.trim_matches(|c| c == '[' || c == ']').parse::<i64>().unwrap_or(0);
    }
    println!(
        "agg ({}): {} {} records, {} users, {} partitions (loaded in {load_secs:.2}s): aggregated in {secs:.2}s = {:.0} records/s; table has {rows} \
            rows counting {counted} records",
        a.shape,
        a.records,
        format.name(),
        a.keys,
        a.partitions,
        a.records as f64 / secs,
    );
    engine.shutdown();
    // Windowed tables drop windows past retention (24 h of event time by default).
    if counted != a.records as i64 && a.shape != "window" {
        return Err(format!("the table counts {counted} records, expected {}", a.records));
    }
    if a.keep {
        println!("data directory kept: {}", dir.display());
    }
    drop(guard);
    Ok(())
}
