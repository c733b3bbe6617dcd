//! ksqlDB's record cache for an aggregation's output (`cache.max.bytes.buffering`): the
//! latest result row of each group (key and window) waits here, and goes out once per
//! commit interval (`commit.interval.ms`), or earlier when a new group would overflow the
//! cache's bytes. A busy group thus emits one row per interval instead of one per update.
//!
//! The waiting rows are part of the operator's state: each step writes them (`p` + table
//! key -> row) in the same RocksDB batch as the group states and the checkpoint, so a
//! crash between two flushes loses none of them; they go out after the restart.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::ExecError;
use crate::state::{StateBatch, StateDb};

/// Tag of a waiting row's key in the query's column family.
const TAG: u8 = b'p';
/// What a waiting row costs besides its key and JSON: its map entry and fields.
const ENTRY_OVERHEAD: u64 = 64;

/// One result row waiting to go out: its time, window bounds, whether it deletes the key,
/// and its columns as the table stores them (JSON, window bounds included).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct CachedRow {
    pub rowtime: i64,
    pub start: i64,
    pub end: i64,
    pub tombstone: bool,
    pub json: Vec<u8>,
    /// Order of the row's last update: rows go out in that order.
    seq: u64,
}

impl CachedRow {
    pub fn new(rowtime: i64, window: (i64, i64), tombstone: bool, json: Vec<u8>) -> CachedRow {
        CachedRow { rowtime, start: window.0, end: window.1, tombstone, json, seq: 0 }
    }

    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(33 + self.json.len());
        v.extend_from_slice(&self.seq.to_be_bytes());
        v.extend_from_slice(&self.rowtime.to_be_bytes());
        v.extend_from_slice(&self.start.to_be_bytes());
        v.extend_from_slice(&self.end.to_be_bytes());
        v.push(u8::from(self.tombstone));
        v.extend_from_slice(&self.json);
        v
    }

    fn decode(b: &[u8]) -> Option<CachedRow> {
        let int = |at: usize| b.get(at..at + 8).and_then(|s| s.try_into().ok()).map(i64::from_be_bytes);
        Some(CachedRow { seq: int(0)? as u64, rowtime: int(8)?, start: int(16)?, end: int(24)?, tombstone: *b.get(32)? != 0, json: b.get(33..)?.to_vec() })
    }
}

pub(super) struct RecordCache {
    capacity: u64,
    interval: Duration,
    family: String,
    rows: HashMap<Vec<u8>, CachedRow>,
    used: u64,
    next_seq: u64,
    last_flush: Instant,
}

impl RecordCache {
    pub fn new(capacity: u64, interval_ms: u64, family: String) -> RecordCache {
        RecordCache { capacity, interval: Duration::from_millis(interval_ms), family, rows: HashMap::new(), used: 0, next_seq: 0, last_flush: Instant::now() }
    }

    fn cost(key: &[u8], row: &CachedRow) -> u64 {
        (key.len() + row.json.len()) as u64 + ENTRY_OVERHEAD
    }

    /// Forgets what is in memory and reads the committed waiting rows back (start-up and
    /// after a failed step).
    pub fn load(&mut self, state: &StateDb) -> Result<(), ExecError> {
        self.rows.clear();
        self.used = 0;
        let mut corrupt = false;
        let mut loaded = Vec::new();
        state.scan(&self.family, Some(&[TAG]), Some(&[TAG + 1]), |k, v| {
            match CachedRow::decode(v) {
                Some(row) => loaded.push((k[1..].to_vec(), row)),
                None => corrupt = true,
            }
            true
        })?;
        if corrupt {
            return Err(ExecError::Invariant("a row waiting in the record cache is unreadable"));
        }
        for (key, row) in loaded {
            self.next_seq = self.next_seq.max(row.seq + 1);
            self.used += Self::cost(&key, &row);
            self.rows.insert(key, row);
        }
        // Rows found here waited through a restart (or a failed step): they are due now.
        self.last_flush = Instant::now();
        if !self.rows.is_empty() {
            self.last_flush = self.last_flush.checked_sub(self.interval).unwrap_or(self.last_flush);
        }
        Ok(())
    }

    /// Puts a group's latest row in the cache, in place of the group's waiting one. When a
    /// new group would overflow the cache, the waiting rows go to `out` first.
    pub fn put(&mut self, key: Vec<u8>, mut row: CachedRow, batch: &mut StateBatch, out: &mut Vec<CachedRow>) {
        let size = Self::cost(&key, &row);
        match self.rows.get(&key) {
            Some(old) => self.used -= Self::cost(&key, old),
            None if self.used + size > self.capacity && !self.rows.is_empty() => out.extend(self.drain(batch)),
            None => {}
        }
        row.seq = self.next_seq;
        self.next_seq += 1;
        self.used += size;
        batch.put(&self.family, stored_key(&key), row.encode());
        self.rows.insert(key, row);
    }

    /// Whether the commit interval has passed with rows waiting.
    pub fn due(&self) -> bool {
        !self.rows.is_empty() && self.last_flush.elapsed() >= self.interval
    }

    /// When the waiting rows must go out (None: nothing waits).
    pub fn deadline(&self) -> Option<Instant> {
        (!self.rows.is_empty()).then(|| self.last_flush + self.interval)
    }

    /// Takes every waiting row out, in the order of their last updates.
    pub fn drain(&mut self, batch: &mut StateBatch) -> Vec<CachedRow> {
        let mut rows: Vec<(Vec<u8>, CachedRow)> = self.rows.drain().collect();
        rows.sort_by_key(|(_, r)| r.seq);
        self.used = 0;
        self.last_flush = Instant::now();
        rows.into_iter()
            .map(|(k, r)| {
                batch.delete(&self.family, stored_key(&k));
                r
            })
            .collect()
    }
}

fn stored_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(TAG);
    k.extend_from_slice(key);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t: i64, json: &str) -> CachedRow {
        CachedRow::new(t, (0, 0), false, json.as_bytes().to_vec())
    }

    #[test]
    fn a_cached_row_survives_its_encoding() {
        let mut r = CachedRow::new(-5, (10, 20), true, b"{\"N\":1}".to_vec());
        r.seq = 7;
        assert_eq!(CachedRow::decode(&r.encode()), Some(r));
        assert_eq!(CachedRow::decode(b"short"), None);
    }

    #[test]
    fn updates_to_a_group_keep_only_the_latest_row() {
        let mut cache = RecordCache::new(1 << 20, 60_000, "q".into());
        let (mut batch, mut out) = (StateBatch::default(), Vec::new());
        cache.put(b"a".to_vec(), row(1, "1"), &mut batch, &mut out);
        cache.put(b"b".to_vec(), row(2, "2"), &mut batch, &mut out);
        cache.put(b"a".to_vec(), row(3, "3"), &mut batch, &mut out);
        assert!(out.is_empty());
        assert!(!cache.due(), "the interval has not passed");
        let rows = cache.drain(&mut batch);
        let got: Vec<(i64, &[u8])> = rows.iter().map(|r| (r.rowtime, r.json.as_slice())).collect();
        assert_eq!(got, vec![(2, &b"2"[..]), (3, &b"3"[..])], "in the order of each group's last update");
        assert_eq!(cache.deadline(), None);
    }

    #[test]
    fn a_new_group_that_overflows_the_cache_lets_the_waiting_rows_out() {
        let mut cache = RecordCache::new(1, 60_000, "q".into());
        let (mut batch, mut out) = (StateBatch::default(), Vec::new());
        cache.put(b"a".to_vec(), row(1, "1"), &mut batch, &mut out);
        assert!(out.is_empty(), "an empty cache takes one row whatever its size");
        cache.put(b"a".to_vec(), row(2, "2"), &mut batch, &mut out);
        assert!(out.is_empty(), "the same group replaces its row");
        cache.put(b"b".to_vec(), row(3, "3"), &mut batch, &mut out);
        assert_eq!(out.iter().map(|r| r.rowtime).collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn a_zero_interval_is_due_as_soon_as_a_row_waits() {
        let mut cache = RecordCache::new(1 << 20, 0, "q".into());
        assert!(!cache.due());
        cache.put(b"a".to_vec(), row(1, "1"), &mut StateBatch::default(), &mut Vec::new());
        assert!(cache.due());
    }
}
