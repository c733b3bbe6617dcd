//! Work an aggregation has done but not committed yet. Under a backlog, a non-windowed
//! aggregation without a record cache commits every `commit.interval.ms` (ksqlDB's
//! property, 2 s by default; at most [`COMMIT_AFTER_MAX`]) or [`COMMIT_AFTER_BYTES`] of
//! input, instead of after every read: the states and
//! materialized rows of keys updated many times in between are written once, with one
//! checkpoint. As soon as it has read everything there is, it commits, so a lookup sees an
//! update as soon as the query has caught up. A failure drops the pending work (the step
//! rewinds to the last commit and replays; the sink skips what it already wrote).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::state::StateBatch;

/// Longest time an aggregation keeps work uncommitted while input keeps coming, whatever
/// `commit.interval.ms` says.
pub const COMMIT_AFTER_MAX: Duration = Duration::from_millis(1000);
/// Most input bytes read between commits.
pub const COMMIT_AFTER_BYTES: usize = 64 << 20;

#[derive(Default)]
pub struct Pending {
    /// Other writes of the steps (none for the aggregations that defer; kept in order).
    pub batch: StateBatch,
    /// Materialized rows by table key: the last value (None: deleted).
    pub rows: HashMap<Vec<u8>, Option<Vec<u8>>>,
    /// Group states to write.
    pub dirty: HashSet<Vec<u8>>,
    since: Option<Instant>,
    bytes: usize,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.since.is_none()
    }

    /// Counts a step's input; whether the pending work is due for a commit (`interval_ms`:
    /// `commit.interval.ms`).
    pub fn add_step(&mut self, input_bytes: usize, interval_ms: u64) -> bool {
        let since = *self.since.get_or_insert_with(Instant::now);
        self.bytes += input_bytes;
        since.elapsed() >= Duration::from_millis(interval_ms).min(COMMIT_AFTER_MAX) || self.bytes >= COMMIT_AFTER_BYTES
    }

    /// Takes the pending writes (rows into `batch`) and the dirty group keys, sorted.
    pub fn take(&mut self, table_family: &str) -> (StateBatch, Vec<Vec<u8>>) {
        let mut batch = std::mem::take(&mut self.batch);
        for (k, v) in self.rows.drain() {
            match v {
                Some(v) => batch.put(table_family, k, v),
                None => batch.delete(table_family, k),
            }
        }
        let mut dirty: Vec<Vec<u8>> = self.dirty.drain().collect();
        dirty.sort();
        self.since = None;
        self.bytes = 0;
        (batch, dirty)
    }

    /// Forgets everything (a failed step rewinds to the last commit).
    pub fn clear(&mut self) {
        *self = Pending::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_a_key_are_written_once_with_their_last_value() {
        let mut p = Pending::default();
        assert!(p.is_empty());
        p.rows.insert(b"k".to_vec(), Some(b"1".to_vec()));
        p.rows.insert(b"k".to_vec(), Some(b"2".to_vec()));
        p.rows.insert(b"gone".to_vec(), None);
        p.dirty.insert(b"b".to_vec());
        p.dirty.insert(b"a".to_vec());
        assert!(!p.add_step(10, 2000), "neither old nor big yet");
        let (batch, dirty) = p.take("t");
        let mut ops: Vec<_> = batch.ops().map(|(f, k, v)| (f.to_string(), k.to_vec(), v.map(<[u8]>::to_vec))).collect();
        ops.sort();
        assert_eq!(ops, vec![("t".into(), b"gone".to_vec(), None), ("t".into(), b"k".to_vec(), Some(b"2".to_vec()))]);
        assert_eq!(dirty, vec![b"a".to_vec(), b"b".to_vec()]);
        assert!(p.is_empty());
        assert!(p.add_step(COMMIT_AFTER_BYTES, 2000), "a big step is due at once");
        assert!(p.add_step(0, 0), "commit.interval.ms 0: every step commits");
    }
}
