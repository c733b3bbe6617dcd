//! `eddy datagen`: generated records, as ksql-datagen and Flink's datagen make them.
//! Presets `pageviews` (the Flink peer's input, record for record), `users`, `orders` and
//! `nexmark` (person, auction and bid streams); a count or endless, at a rate or as fast as
//! possible; JSON or DELIMITED values with KAFKA or JSON keys; into a topic over the Kafka
//! protocol (Eddy's listener or any Kafka cluster) or into JSON-lines files.

pub mod nexmark;
pub mod numpy_rng;
mod presets;
pub use presets::Pageviews;
mod progress;
pub mod row;
mod to_topic;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use progress::{Pace, Progress};
use row::{KeyFormat, Row, Schema, ValueFormat, encode_value};

/// Makes records, one at a time, for one or more streams.
pub trait Generator: Send {
    /// The streams it writes (one for most presets).
    fn schemas(&self) -> &'static [Schema];
    /// Fills `row` with the next record.
    fn next(&mut self, row: &mut Row);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    Pageviews,
    Users,
    Orders,
    Nexmark,
}

#[derive(Debug, thiserror::Error)]
pub enum DatagenError {
    #[error("cannot write {path}: {source}")]
    File { path: PathBuf, source: std::io::Error },
    #[error("cannot produce to {bootstrap}: {source}. Is a server listening for Kafka clients there? (`eddy server` does on 127.0.0.1:9092)")]
    Kafka {
        bootstrap: String,
        #[source]
        source: crate::kafka_client::ClientError,
    },
    #[error("cannot start the producer: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("say where the records go: --topic NAME (a Kafka topic) or --output PATH (JSON lines)")]
    NoDestination,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DatagenArgs {
    /// What to generate: pageviews (the Flink peer's input), users, orders, nexmark (person,
    /// auction and bid streams).
    #[arg(value_enum)]
    pub preset: Preset,
    /// Records to write (default: until Ctrl-C).
    #[arg(long)]
    pub count: Option<u64>,
    /// Records per second (default: as fast as possible).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Distinct users (pageviews: 100,000; users: 1,000) or customers (orders: 1,000).
    #[arg(long)]
    pub keys: Option<u64>,
    /// The same seed and arguments give the same records.
    #[arg(long, default_value_t = 42)]
    pub seed: u32,
    /// Event time of the first record, epoch milliseconds (records follow 1 ms apart;
    /// nexmark at --events-per-second).
    #[arg(long, default_value_t = 1_700_000_000_000)]
    pub start_time: i64,
    /// Nexmark: events per second of event time (Nexmark's default rate).
    #[arg(long, default_value_t = 10_000.0)]
    pub events_per_second: f64,
    /// Kafka topic to produce to (nexmark: <topic>_person, <topic>_auction, <topic>_bid);
    /// created with --partitions when missing.
    #[arg(long)]
    pub topic: Option<String>,
    /// Kafka bootstrap address (Eddy's listener or a Kafka cluster).
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap: String,
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    /// Write lines to this file instead ("-": standard output; nexmark: <stem>.<stream>.jsonl).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "json")]
    pub value_format: ValueFormat,
    /// KAFKA: strings as UTF-8, integers as 8 big-endian bytes (ksqlDB's BIGINT key); or JSON.
    #[arg(long, value_enum, default_value = "kafka")]
    pub key_format: KeyFormat,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

fn generator(a: &DatagenArgs) -> Box<dyn Generator> {
    match a.preset {
        Preset::Pageviews => Box::new(presets::Pageviews::new(a.seed, a.keys.unwrap_or(100_000), a.start_time, a.count)),
        Preset::Users => Box::new(presets::Users::new(a.seed, a.keys.unwrap_or(1_000), a.start_time)),
        Preset::Orders => Box::new(presets::Orders::new(a.seed, a.keys.unwrap_or(1_000), a.start_time)),
        Preset::Nexmark => Box::new(nexmark::Nexmark::new(a.seed, a.start_time, a.events_per_second)),
    }
}

/// What a run wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub records: u64,
    pub bytes: u64,
    /// Records per stream (topic or file), in the preset's order.
    pub per_stream: Vec<(String, u64)>,
    pub text: String,
}

/// Where a stream's records go: the file for one stream, or one per stream (`<stem>.<name>.jsonl`).
fn file_for(output: &Path, schemas: &[Schema], stream: usize) -> PathBuf {
    if schemas.len() == 1 || output == Path::new("-") {
        return output.to_path_buf();
    }
    let stem = output.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    output.with_file_name(format!("{stem}.{}.jsonl", schemas[stream].name))
}

/// The topic of a stream: the topic given, or `<topic>_<stream>` for several streams.
pub fn topic_for(topic: &str, schemas: &[Schema], stream: usize) -> String {
    if schemas.len() == 1 { topic.to_string() } else { format!("{topic}_{}", schemas[stream].name) }
}

/// Stops on Ctrl-C: records generated so far are written, then the summary.
fn interrupted() -> &'static std::sync::atomic::AtomicBool {
    static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    &STOP
}

pub fn run(a: DatagenArgs) -> Result<Summary, DatagenError> {
    match (&a.output, &a.topic) {
        (Some(path), _) => to_files(&a, path),
        (None, Some(topic)) => {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(DatagenError::Runtime)?;
            runtime.block_on(to_topic::run(&a, topic))
        }
        (None, None) => Err(DatagenError::NoDestination),
    }
}

/// Writes JSON lines (one file per stream), or DELIMITED lines with that format.
fn to_files(a: &DatagenArgs, output: &Path) -> Result<Summary, DatagenError> {
    let mut g = generator(a);
    let schemas = g.schemas();
    let mut files = Vec::new();
    for s in 0..schemas.len() {
        let path = file_for(output, schemas, s);
        let w: Box<dyn Write> = if path == Path::new("-") {
            Box::new(std::io::stdout().lock())
        } else {
            Box::new(std::fs::File::create(&path).map_err(|source| DatagenError::File { path: path.clone(), source })?)
        };
        files.push((path, std::io::BufWriter::with_capacity(1 << 22, w)));
    }
    ctrlc_watch();
    let mut progress = Progress::new(a.count, a.quiet || output == Path::new("-"));
    let pace = a.rate.map(|r| Pace::new(Instant::now(), r));
    let mut row = Row::with_fields(1);
    let mut line = Vec::with_capacity(1024);
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut per_stream = vec![0u64; schemas.len()];
    while a.count.is_none_or(|c| records < c) && !interrupted().load(std::sync::atomic::Ordering::Relaxed) {
        if let Some(p) = &pace
            && records.is_multiple_of(p.check_every())
            && let Some(wait) = p.wait_before(records, Instant::now())
        {
            std::thread::sleep(wait);
        }
        g.next(&mut row);
        line.clear();
        encode_value(&schemas[row.stream], &row, a.value_format, &mut line);
        line.push(b'\n');
        let (path, w) = &mut files[row.stream];
        w.write_all(&line).map_err(|source| DatagenError::File { path: path.clone(), source })?;
        records += 1;
        bytes += line.len() as u64;
        per_stream[row.stream] += 1;
        if records.is_multiple_of(4096) {
            progress.update(records, bytes);
        }
    }
    for (path, w) in &mut files {
        w.flush().map_err(|source| DatagenError::File { path: path.clone(), source })?;
    }
    let names: Vec<(String, u64)> = (0..schemas.len()).map(|s| (file_for(output, schemas, s).display().to_string(), per_stream[s])).collect();
    let to = if names.len() == 1 { names[0].0.clone() } else { format!("{} files", names.len()) };
    let text = progress.finish(records, bytes, &to, &names);
    Ok(Summary { records, bytes, per_stream: names, text })
}

/// Sets the stop flag on Ctrl-C (once per process).
fn ctrlc_watch() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(libc::SIGINT, on_interrupt as *const () as libc::sighandler_t);
        }
    });
}

extern "C" fn on_interrupt(_: libc::c_int) {
    interrupted().store(true, std::sync::atomic::Ordering::Relaxed);
}
