//! The CPU a key lookup costs the server beyond HTTP: pull queries by key
//! (`Engine::try_pull_in_memory`, the path `/query` takes) and 100-key feature lookups
//! (`Engine::feature_lookup`, the path `/features` takes), on one thread, against a source
//! table whose rows are all held in memory. No sockets and no load generator share the
//! machine, so the figure moves only with the code (and the CPU's caches), unlike the
//! end-to-end numbers of `scripts/bench-serving.sh`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::bench_dir;
use super::queries::{load_records, open_engine};
use crate::engine::{Engine, FeatureKey, QueryOutput, Session};
use crate::state::ReadMode;

pub struct LookupArgs {
    /// Rows in the table.
    pub keys: u64,
    /// Lookups per timed round.
    pub lookups: u64,
    /// Keys per feature lookup.
    pub batch: usize,
    pub dir: Option<PathBuf>,
}

/// Timed rounds; the best is reported (the others differ by what else the machine ran).
const ROUNDS: usize = 5;

/// Uniformly spread pseudo-random key numbers below `keys` (xorshift; reproducible).
fn random_keys(keys: u64, count: usize, seed: u64) -> Vec<u64> {
    let mut x = seed | 1;
    (0..count)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % keys
        })
        .collect()
}

/// Loads a source table FEATURES of `keys` rows and waits until all are materialized.
fn load_features(dir: &std::path::Path, keys: u64) -> Result<(Engine, tokio::runtime::Runtime), String> {
    let (engine, log, rt) = open_engine(dir)?;
    engine
        .execute(
            "CREATE TABLE features (id VARCHAR PRIMARY KEY, views BIGINT, avg_dwell DOUBLE, last_page VARCHAR) WITH (kafka_topic='features', \
                value_format='JSON', partitions=3, flush='never');",
            &mut Session::default(),
        )
        .map_err(|e| e.to_string())?;
    load_records(&log, "features", keys, |j, key, value| {
        use std::fmt::Write;
        let _ = write!(key, "k{j}");
        let _ = write!(value, r#"{{"VIEWS":{j},"AVG_DWELL":{},"LAST_PAGE":"p{}"}}"#, j as f64 / 7.0, j % 50);
        j as i64
    })?;
    let start = Instant::now();
    loop {
        let QueryOutput::Pull(rows) = engine.query("SELECT ID FROM features;", &Session::default()).map_err(|e| e.to_string())? else {
            return Err("a pull query on the table did not return its rows".into());
        };
        if rows.rows.len() as u64 >= keys {
            return Ok((engine, rt));
        }
        if start.elapsed() > Duration::from_secs(600) {
            return Err(format!("only {} of {keys} rows materialized after 10 minutes", rows.rows.len()));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs `f` over every item `ROUNDS` times; the best time per item.
fn best_per_item<T>(items: &[T], mut f: impl FnMut(&T) -> Result<(), String>) -> Result<Duration, String> {
    let mut best = Duration::MAX;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for i in items {
            f(i)?;
        }
        best = best.min(start.elapsed() / items.len().max(1) as u32);
    }
    Ok(best)
}

pub fn lookups(a: LookupArgs) -> Result<(), String> {
    let (dir, _guard) = bench_dir(&a.dir)?;
    let load = Instant::now();
    let (engine, _rt) = load_features(&dir, a.keys)?;
    let load_secs = load.elapsed().as_secs_f64();
    let keys = a.keys.max(1);
    let session = Session::default();
    let sqls: Vec<String> =
        random_keys(keys, a.lookups as usize, 0x9e37_79b9).into_iter().map(|k| format!("SELECT * FROM FEATURES WHERE ID = 'k{k}';")).collect();
    // Warm-up, as a server that has been serving a while: every statement once through the
    // full path (which plans the first and reads RocksDB for rows not yet in memory).
    for sql in &sqls {
        engine.query(sql, &session).map_err(|e| format!("{sql} failed: {e}"))?;
    }
    let pull = best_per_item(&sqls, |sql| match engine.try_pull_in_memory(sql) {
        Some(Ok(rows)) if rows.rows.len() == 1 => Ok(()),
        Some(Ok(rows)) => Err(format!("{sql} returned {} rows, expected 1", rows.rows.len())),
        Some(Err(e)) => Err(format!("{sql} failed: {e}")),
        None => Err(format!("{sql} was not answered from memory")),
    })?;
    let batch = a.batch.max(1);
    let requests: Vec<Vec<FeatureKey>> = random_keys(keys, a.lookups as usize, 0x85eb_ca6b)
        .chunks(batch)
        .filter(|c| c.len() == batch)
        .map(|c| c.iter().map(|k| FeatureKey::Str(format!("k{k}").into())).collect())
        .collect();
    for keys in &requests {
        engine.feature_lookup("features", keys, ReadMode::Any).map_err(|e| format!("a feature lookup failed: {e}"))?;
    }
    let features = best_per_item(&requests, |keys| match engine.feature_lookup("features", keys, ReadMode::MemoryOnly) {
        Ok(Some(out)) if out.contains("\"row\"") => Ok(()),
        Ok(Some(out)) => Err(format!("a feature lookup found no rows: {out}")),
        Ok(None) => Err("a feature lookup was not answered from memory".into()),
        Err(e) => Err(format!("a feature lookup failed: {e}")),
    })?;
    let family = engine.catalog().source("FEATURES").map(|s| s.state_family()).ok_or("table FEATURES is gone")?;
    let stats = engine.runtime().state().lookup_stats(&family);
    println!(
        "lookups: table of {} rows (loaded in {load_secs:.1}s), one thread, best of {ROUNDS} rounds: pull query by key {:.2} us ({:.0}/s); {batch}-key \
            feature lookup {:.2} us ({:.0}/s, {:.0} ns per key){}",
        a.keys,
        pull.as_secs_f64() * 1e6,
        1.0 / pull.as_secs_f64(),
        features.as_secs_f64() * 1e6,
        1.0 / features.as_secs_f64(),
        features.as_secs_f64() * 1e9 / batch as f64,
        stats.map(|s| format!("; {} of {} keys from memory", s.from_memory, s.keys_looked_up)).unwrap_or_default(),
    );
    engine.shutdown();
    Ok(())
}
