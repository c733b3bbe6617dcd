//! `eddy bench nexmark`: Nexmark's queries in ksqlDB's dialect (`sql/nexmark/`) over events
//! `eddy datagen nexmark` makes, loaded into the log first; each query is timed from its
//! start until every stage has committed its input to the end, and reported in events per
//! second (all generated events, as Nexmark counts them) and per core.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::bench_dir;
use super::queries::open_engine;
use crate::datagen::Generator;
use crate::datagen::nexmark::Nexmark;
use crate::datagen::row::{KeyFormat, Row, ValueFormat, encode_key, encode_value};
use crate::engine::Session;
use crate::log::{BatchBuilder, FlushPolicy, Log, TopicConfig};

/// The dialect's Nexmark queries, by name, with the DDL they run on.
pub const DDL: &str = include_str!("../../sql/nexmark/ddl.sql");
pub const QUERIES: &[(&str, &str)] = &[
    ("q0", include_str!("../../sql/nexmark/q0.sql")),
    ("q1", include_str!("../../sql/nexmark/q1.sql")),
    ("q2", include_str!("../../sql/nexmark/q2.sql")),
    ("q3", include_str!("../../sql/nexmark/q3.sql")),
    ("q4", include_str!("../../sql/nexmark/q4.sql")),
    ("q5", include_str!("../../sql/nexmark/q5.sql")),
    ("q7", include_str!("../../sql/nexmark/q7.sql")),
    ("q8", include_str!("../../sql/nexmark/q8.sql")),
    ("q11", include_str!("../../sql/nexmark/q11.sql")),
    ("q12", include_str!("../../sql/nexmark/q12.sql")),
    ("q14", include_str!("../../sql/nexmark/q14.sql")),
    ("q17", include_str!("../../sql/nexmark/q17.sql")),
    ("q18", include_str!("../../sql/nexmark/q18.sql")),
    ("q20", include_str!("../../sql/nexmark/q20.sql")),
    ("q21", include_str!("../../sql/nexmark/q21.sql")),
    ("q22", include_str!("../../sql/nexmark/q22.sql")),
];

pub struct NexmarkArgs {
    /// `q1`, a list (`q0,q1,q2`) or `all`.
    pub query: String,
    pub events: u64,
    pub partitions: i32,
    pub dir: Option<PathBuf>,
}

fn chosen(query: &str) -> Result<Vec<(&'static str, &'static str)>, String> {
    if query == "all" {
        return Ok(QUERIES.to_vec());
    }
    query
        .split(',')
        .map(|q| {
            let q = q.trim().to_ascii_lowercase();
            QUERIES.iter().find(|(name, _)| *name == q).copied().ok_or_else(|| {
                let names: Vec<&str> = QUERIES.iter().map(|(n, _)| *n).collect();
                format!("no Nexmark query {q} in the dialect; there are {} (or all)", names.join(", "))
            })
        })
        .collect()
}

pub fn nexmark(a: NexmarkArgs) -> Result<(), String> {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("| query | events | seconds | events/s | events/s per core | output records |");
    println!("|---|---|---|---|---|---|");
    for (name, sql) in chosen(&a.query)? {
        let (secs, out) = run_one(&a, sql)?;
        let rate = a.events as f64 / secs;
        println!("| {name} | {} | {secs:.2} | {rate:.0} | {:.0} | {out} |", a.events, rate / cores as f64);
    }
    Ok(())
}

/// Loads the events, runs the DDL and one query; its seconds and the records its sinks hold.
fn run_one(a: &NexmarkArgs, sql: &str) -> Result<(f64, i64), String> {
    let (dir, _guard) = bench_dir(&a.dir)?;
    let (engine, log, _rt) = open_engine(&dir)?;
    load_events(&log, a.events, a.partitions)?;
    let mut session = Session::default();
    engine.execute(DDL, &mut session).map_err(|e| format!("the Nexmark DDL failed: {e}"))?;
    // Tables the joins read are loaded before the query starts (as a long-running
    // deployment would have them).
    wait_caught_up(&engine, &log)?;
    let before: Vec<String> = engine.catalog().queries().iter().map(|q| q.id.clone()).collect();
    let start = Instant::now();
    engine.execute(sql, &mut session).map_err(|e| format!("the query failed: {e}"))?;
    wait_caught_up(&engine, &log)?;
    let secs = start.elapsed().as_secs_f64();
    let mut out = 0i64;
    for q in engine.catalog().queries().iter().filter(|q| !before.contains(&q.id)) {
        if let Some(source) = engine.catalog().source(&q.sink)
            && let Ok(t) = log.topic(&source.topic)
        {
            out += t.partitions().iter().map(|p| p.end_offset()).sum::<i64>();
        }
    }
    engine.shutdown();
    Ok((secs, out))
}

/// Appends `events` Nexmark events to nexmark_person, nexmark_auction and nexmark_bid.
fn load_events(log: &Log, events: u64, partitions: i32) -> Result<(), String> {
    let mut g = Nexmark::new(42, 1_700_000_000_000, 10_000.0);
    let schemas = g.schemas();
    let mut topics = Vec::new();
    for s in schemas {
        let t = log
            .create_topic(&format!("nexmark_{}", s.name), partitions, TopicConfig { flush: FlushPolicy::Never, ..TopicConfig::default() })
            .map_err(|e| e.to_string())?;
        topics.push(t);
    }
    let mut builders: Vec<Vec<BatchBuilder>> = topics.iter().map(|t| (0..t.partition_count()).map(|_| BatchBuilder::default()).collect()).collect();
    let mut row = Row::with_fields(1);
    let (mut key, mut value) = (Vec::new(), Vec::new());
    for n in 0..events {
        g.next(&mut row);
        key.clear();
        value.clear();
        let schema = &schemas[row.stream];
        encode_key(schema, &row, KeyFormat::Kafka, &mut key);
        encode_value(schema, &row, ValueFormat::Json, &mut value);
        let p = crate::log::murmur2::partition_for_key(&key, partitions) as usize;
        builders[row.stream][p].push(row.timestamp, Some(&key), Some(&value), &[]);
        if (n + 1) % 1000 == 0 || n + 1 == events {
            for (s, per) in builders.iter_mut().enumerate() {
                for (p, b) in per.iter_mut().enumerate() {
                    if !b.is_empty() {
                        let batch = std::mem::take(b).finish();
                        topics[s].partition(p as i32).map_err(|e| e.to_string())?.append(batch).map_err(|e| e.to_string())?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Waits until every query's consumer groups have read their inputs to the end and no
/// topic grows, twice in a row (a stage's output is another stage's input).
fn wait_caught_up(engine: &crate::engine::Engine, log: &Log) -> Result<(), String> {
    let start = Instant::now();
    let mut last_ends: Vec<i64> = Vec::new();
    let mut stable = 0;
    while stable < 2 {
        let groups = log.offsets().groups();
        let started = engine.catalog().queries().iter().all(|q| groups.contains(&q.id));
        let lag: i64 = groups.iter().map(|g| log.group_lag(g).iter().map(|l| l.lag).sum::<i64>()).sum();
        let ends: Vec<i64> = log.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.end_offset()).collect::<Vec<_>>()).collect();
        stable = if started && lag == 0 && ends == last_ends { stable + 1 } else { 0 };
        last_ends = ends;
        if start.elapsed() > Duration::from_secs(3600) {
            return Err("timed out waiting for the queries to catch up".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_chosen_by_name_list_or_all() {
        assert_eq!(chosen("q1").unwrap().len(), 1);
        assert_eq!(chosen("Q0, q2").unwrap().iter().map(|q| q.0).collect::<Vec<_>>(), ["q0", "q2"]);
        assert_eq!(chosen("all").unwrap().len(), QUERIES.len());
        assert!(chosen("q6").unwrap_err().contains("no Nexmark query q6"));
    }
}
