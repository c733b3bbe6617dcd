//! `eddy bench push`: many concurrent push queries over one stream, as ksqlDB's scalable
//! push queries serve them: each client runs a filter/projection with continuation tokens
//! from the beginning of the stream, and the time is until every client has every row.

use std::path::PathBuf;
use std::time::Instant;

use super::bench_dir;
use super::queries::load_pageviews;
use crate::engine::{QueryOutput, Session};

pub struct PushArgs {
    pub records: u64,
    pub partitions: i32,
    /// Concurrent push queries.
    pub clients: usize,
    pub dir: Option<PathBuf>,
}

/// Loads JSON pageviews, then times `clients` push queries reading all of them.
pub fn push(a: PushArgs) -> Result<(), String> {
    let (dir, _guard) = bench_dir(&a.dir)?;
    let (engine, _log, rt, load_secs) = load_pageviews(&dir, a.records, a.partitions, 10_000, 1, super::queries::BenchFormat::Json)?;
    // The rows `dwell_ms > 1000` keeps (record j has dwell j % 3000).
    let expected = (0..a.records).filter(|j| j % 3000 > 1000).count() as u64;
    let mut session = Session::default();
    session.properties.insert("auto.offset.reset".into(), "earliest".into());
    session.properties.insert("ksql.query.push.v2.continuation.tokens.enabled".into(), "true".into());
    let sql = "SELECT user_id, UCASE(page) AS page, dwell_ms FROM pageviews WHERE dwell_ms > 1000 EMIT CHANGES;";
    let start = Instant::now();
    let mut clients = Vec::with_capacity(a.clients);
    for _ in 0..a.clients.max(1) {
        let QueryOutput::Push(mut pq) = engine.query(sql, &session).map_err(|e| e.to_string())? else {
            return Err("the push query did not start as one".into());
        };
        clients.push(rt.spawn(async move {
            let (mut rows, mut tokens) = (0u64, 0u64);
            while rows < expected {
                let Some(message) = pq.rx.recv().await else { break };
                rows += message.rows.len() as u64;
                // What the REST edge does per read: move the token and write it out.
                if let (Some(token), Some((partition, next))) = (pq.continuation.as_mut(), message.read_to) {
                    token.advance(partition, next);
                    std::hint::black_box(token.to_text());
                    tokens += 1;
                }
            }
            let done = start.elapsed().as_secs_f64();
            let ended = pq.shared.final_state();
            pq.shared.close();
            (rows, tokens, done, ended)
        }));
    }
    let results: Vec<_> = rt.block_on(futures::future::join_all(clients)).into_iter().collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    let secs = start.elapsed().as_secs_f64();
    let delivered: u64 = results.iter().map(|r| r.0).sum();
    let tokens: u64 = results.iter().map(|r| r.1).sum();
    let slowest = results.iter().map(|r| r.2).fold(0.0, f64::max);
    let fastest = results.iter().map(|r| r.2).fold(f64::MAX, f64::min);
    println!(
        "push: {} clients x {expected} rows of {} JSON records in {} partitions (loaded in {load_secs:.2}s): every row to every client in {secs:.2}s \
         = {:.0} rows/s delivered ({:.0} input records/s per client); first client done at {fastest:.2}s, last at {slowest:.2}s; {tokens} \
         continuation tokens",
        a.clients,
        a.records,
        a.partitions,
        delivered as f64 / secs,
        a.records as f64 / slowest,
    );
    if let Some(short) = results.iter().find(|r| r.0 < expected) {
        return Err(format!("a client got {} of {expected} rows and ended with {:?}", short.0, short.3));
    }
    engine.shutdown();
    Ok(())
}
