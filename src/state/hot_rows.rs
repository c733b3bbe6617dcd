//! Hot rows: rows of served tables that key lookups (pull queries, feature lookups) read
//! recently, held by key in hash maps in front of RocksDB, within a memory budget.
//!
//! A RocksDB point read walks the memtables' skip lists and, for rows in table files, the
//! row cache or block cache: 1.2 – 1.9 µs per key on a 2-core EPYC VM. A hash-map hit is a
//! few cache misses (~0.2 µs), which took a 100-key feature lookup from ~120 µs of server
//! CPU to ~45 µs there (BENCHMARKS.md, serving fourth round).
//!
//! Only reads fill the map (a family gets one on its first key lookup, created only while no
//! write is in flight); writes invalidate.
//! Every write to a family with a map goes through [`HotRows::begin_writes`] before
//! RocksDB applies it and [`WritesInFlight::finish`] after: both bump the generation of
//! each shard the write touches, and while a write is in flight nothing is filled in that
//! shard. A reader that missed fills the row it read from RocksDB only if its shard's
//! generation is the one it saw before reading and no write is in flight — so the map
//! never holds a value older than RocksDB's, and a reader never sees a row go back to an
//! older value. Absent keys are held too, so repeated lookups of keys without a row are as
//! cheap as hits.
//!
//! Each shard is one hash table with its entries (key, row pointer, reference bit) inline
//! in the buckets: a lookup reads the control bytes, the bucket and the row — one cache
//! miss fewer than a map whose table indexes a separate entry array.
//!
//! When the budget is exceeded, a fill first evicts in its own shard (its lock is already
//! held) by CLOCK: a hand walks the shard's buckets in order, sparing once each entry read
//! since the hand last passed it, so rows read again survive and rows filled but never read
//! again go first. Every few evictions the hand of a shard of any family (in turn) moves
//! too, so a family nobody reads any more gives its memory back to the ones being read.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use hashbrown::HashTable;
use parking_lot::{RwLock, RwLockReadGuard};
use smallvec::SmallVec;

/// Shards per family: a write locks one shard, never the whole map.
const SHARDS: usize = 16;

/// A shard's table with more buckets than this is shrunk once 7 in 8 of them are empty.
const SPARSE_MIN_BUCKETS: usize = 1024;

/// Buckets (occupied or not) a hand passes over at most before it evicts the first entry
/// it passed.
const CLOCK_SCAN_LIMIT: usize = 128;

/// One eviction in this many also moves the hand of another shard, in turn over all
/// families' shards.
const ROUND_ROBIN_EVERY: u64 = 8;

/// What an entry costs beyond its key and value bytes: its bucket (56 bytes) and control
/// byte at the table's load (between 7/16 and 7/8 full), and the row's allocation header.
const ENTRY_OVERHEAD: usize = 96;

/// Keys up to this long sit in the bucket itself (one cache miss less per lookup).
type HotKey = SmallVec<[u8; 24]>;

/// A row held for a served family: `None` when the key has no row.
type HotValue = Option<Box<[u8]>>;

/// The state of a shard when a key was not found in it: after reading the key from
/// RocksDB, pass it to [`FamilyRows::fill`].
#[derive(Clone, Copy, Debug)]
pub struct Ticket {
    shard: usize,
    generation: u64,
}

struct Entry {
    key: HotKey,
    value: HotValue,
    /// Read since the clock hand last passed.
    referenced: AtomicBool,
}

/// Removes the entry found, if any; what it cost.
fn removed(found: Result<hashbrown::hash_table::OccupiedEntry<'_, Entry>, hashbrown::hash_table::AbsentEntry<'_, Entry>>) -> usize {
    found.map_or(0, |entry| {
        let (e, _) = entry.remove();
        cost(&e.key, &e.value)
    })
}

fn cost(key: &[u8], value: &Option<impl AsRef<[u8]>>) -> usize {
    key.len() + value.as_ref().map_or(0, |v| v.as_ref().len()) + ENTRY_OVERHEAD
}

#[derive(Default)]
struct Shard {
    rows: HashTable<Entry>,
    /// Bumped when a write to a key of this shard starts and when it ends.
    generation: u64,
    writes_in_flight: u32,
    /// The CLOCK hand: the index of the bucket eviction looks at next.
    hand: usize,
    /// What the entries cost (counted in [`HotRows::used_bytes`] too, under this lock).
    bytes: usize,
    /// The family was dropped: nothing is filled any more.
    dropped: bool,
}

impl Shard {
    /// Evicts one entry by CLOCK; the bytes freed (0 when the shard is empty), which the
    /// caller takes off [`HotRows::used_bytes`].
    fn evict_one(&mut self, hasher: &foldhash::fast::RandomState) -> usize {
        if self.rows.is_empty() {
            return 0;
        }
        let buckets = self.rows.num_buckets();
        let mut victim = None;
        let mut first_passed = None;
        for _ in 0..CLOCK_SCAN_LIMIT {
            if self.hand >= buckets {
                self.hand = 0;
            }
            if let Some(e) = self.rows.get_bucket_mut(self.hand) {
                if !std::mem::replace(e.referenced.get_mut(), false) {
                    victim = Some(self.hand);
                    break;
                }
                first_passed.get_or_insert(self.hand);
            }
            self.hand += 1;
        }
        // Every entry passed was read since: the first of them (its bit now cleared) goes;
        // with none passed (a sparse stretch of buckets), the next entry after the hand.
        let at = match victim.or(first_passed) {
            Some(at) => at,
            None => match (0..buckets).map(|i| (self.hand + i) % buckets).find(|&i| self.rows.get_bucket(i).is_some()) {
                Some(at) => {
                    self.hand = at;
                    at
                }
                None => return 0,
            },
        };
        let freed = removed(self.rows.get_bucket_entry(at));
        self.forget(freed, hasher)
    }

    fn remove(&mut self, hash: u64, key: &[u8], hasher: &foldhash::fast::RandomState) -> usize {
        let freed = removed(self.rows.find_entry(hash, |e| e.key.as_slice() == key));
        self.forget(freed, hasher)
    }

    /// Takes `freed` bytes off the shard's count and, once the table is mostly empty (a
    /// family no longer read, its rows evicted in turn), gives its buckets back: the
    /// budget counts entries, not the bucket array. Returns `freed`.
    fn forget(&mut self, freed: usize, hasher: &foldhash::fast::RandomState) -> usize {
        self.bytes -= freed;
        let buckets = self.rows.num_buckets();
        if buckets > SPARSE_MIN_BUCKETS && self.rows.len() * 8 < buckets {
            self.rows.shrink_to_fit(|e| hasher.hash_one(e.key.as_slice()));
            self.hand = 0;
        }
        freed
    }
}

/// The hot rows of one column family.
pub struct FamilyRows {
    hasher: foldhash::fast::RandomState,
    shards: Vec<RwLock<Shard>>,
    /// Keys looked up, and how many of them were held.
    probed: AtomicU64,
    held: AtomicU64,
}

/// How a family's lookups have been served, for DESCRIBE EXTENDED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HotStats {
    /// Keys looked up since the server started.
    pub keys_looked_up: u64,
    /// Of those, keys answered from memory.
    pub from_memory: u64,
    /// Rows (and absent keys) held now.
    pub rows_held: usize,
}

impl FamilyRows {
    fn new() -> FamilyRows {
        FamilyRows {
            hasher: foldhash::fast::RandomState::default(),
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect(),
            probed: AtomicU64::new(0),
            held: AtomicU64::new(0),
        }
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The shard of a key's hash: bits its shard's table does not use (hashbrown takes the
    /// bucket from the low bits and the tag from the top seven).
    fn shard_of(hash: u64) -> usize {
        (hash >> 32) as usize % SHARDS
    }

    /// Looks `keys` up, a shard at a time (one lock per shard, no atomic per key, so the
    /// memory reads of neighbouring keys overlap); calls `found(i, row)` for each key held,
    /// while its shard is locked, and returns the keys not held with their tickets.
    pub fn probe_many(&self, keys: &[Vec<u8>], mut found: impl FnMut(usize, Option<&[u8]>)) -> Vec<(usize, Ticket)> {
        let hashes: Vec<u64> = keys.iter().map(|k| self.hash(k)).collect();
        let mut missed = Vec::new();
        for shard in 0..SHARDS {
            let mut mine = hashes.iter().enumerate().filter(|(_, h)| Self::shard_of(**h) == shard).map(|(i, _)| i).peekable();
            if mine.peek().is_none() {
                continue;
            }
            let s = self.shards[shard].read();
            // Find every key first, then read each row's first byte, then hand the rows
            // over: the loads of one pass do not depend on each other, so the cache misses
            // of many keys are under way at once instead of one key's after another's.
            type Hit<'r> = (usize, Option<&'r [u8]>);
            let mut hits: SmallVec<[Hit; 16]> = SmallVec::new();
            for i in mine {
                let key = keys[i].as_slice();
                match s.rows.find(hashes[i], |e| e.key.as_slice() == key) {
                    Some(e) => {
                        // Load first: most hits find it set and leave the line clean.
                        if !e.referenced.load(Ordering::Relaxed) {
                            e.referenced.store(true, Ordering::Relaxed);
                        }
                        hits.push((i, e.value.as_deref()));
                    }
                    None => missed.push((i, Ticket { shard, generation: s.generation })),
                }
            }
            if hits.len() > 1 {
                let touched = hits.iter().fold(0u8, |acc, (_, v)| acc ^ v.and_then(|v| v.first().copied()).unwrap_or(0));
                std::hint::black_box(touched);
            }
            for (i, v) in hits.drain(..) {
                found(i, v);
            }
        }
        self.probed.fetch_add(keys.len() as u64, Ordering::Relaxed);
        self.held.fetch_add((keys.len() - missed.len()) as u64, Ordering::Relaxed);
        missed
    }

    /// Holds `value`, read from RocksDB after `ticket`'s miss, unless a write to its shard
    /// started since (then the value may be stale and the next reader reads RocksDB).
    /// Makes room first if the budget would be exceeded.
    pub fn fill(&self, hot: &HotRows, key: &[u8], ticket: Ticket, value: Option<&[u8]>) {
        let added = cost(key, &value);
        let hash = self.hash(key);
        let mut evicted = false;
        {
            let mut s = self.shards[ticket.shard].write();
            if s.dropped || s.generation != ticket.generation || s.writes_in_flight > 0 || s.rows.find(hash, |e| e.key.as_slice() == key).is_some() {
                return;
            }
            while hot.used.load(Ordering::Relaxed) + added > hot.budget {
                evicted = true;
                let freed = s.evict_one(&self.hasher);
                if freed == 0 {
                    break;
                }
                hot.used.fetch_sub(freed, Ordering::Relaxed);
            }
            let hasher = &self.hasher;
            s.rows.insert_unique(hash, Entry { key: HotKey::from_slice(key), value: value.map(Box::from), referenced: AtomicBool::new(false) }, |e| {
                hasher.hash_one(e.key.as_slice())
            });
            s.bytes += added;
            hot.used.fetch_add(added, Ordering::Relaxed);
        }
        if evicted && hot.evictions.fetch_add(1, Ordering::Relaxed).is_multiple_of(ROUND_ROBIN_EVERY) {
            hot.evict_in_turn();
        }
    }

    /// Forgets `key` and marks a write in flight on its shard; the shard to finish.
    fn begin_write(&self, hot: &HotRows, key: &[u8]) -> usize {
        let hash = self.hash(key);
        let shard = Self::shard_of(hash);
        let mut s = self.shards[shard].write();
        s.generation += 1;
        s.writes_in_flight += 1;
        hot.used.fetch_sub(s.remove(hash, key, &self.hasher), Ordering::Relaxed);
        shard
    }

    fn finish_write(&self, shard: usize) {
        let mut s = self.shards[shard].write();
        s.generation += 1;
        s.writes_in_flight -= 1;
    }

    /// What the family's entries cost.
    pub fn bytes(&self) -> usize {
        self.shards.iter().map(|s| s.read().bytes).sum()
    }

    /// Rows held (for tests and stats).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().rows.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Hot rows of every served family, sharing one memory budget.
pub struct HotRows {
    budget: usize,
    used: AtomicUsize,
    /// Fills that had to evict.
    evictions: AtomicU64,
    /// The next shard (over all families) whose hand [`HotRows::evict_in_turn`] moves.
    turn: AtomicU64,
    families: RwLock<HashMap<String, Arc<FamilyRows>>>,
}

/// Writes marked in flight by [`HotRows::begin_writes`]; finish them once RocksDB has
/// applied (or failed to apply) the write. Until then no family's map is created or
/// dropped: a map created while a write was in flight, to a family that had no map when
/// the write began, could be filled with the row the write is about to replace.
#[must_use]
pub struct WritesInFlight<'a> {
    _families: RwLockReadGuard<'a, HashMap<String, Arc<FamilyRows>>>,
    shards: Vec<(Arc<FamilyRows>, usize)>,
}

impl WritesInFlight<'_> {
    pub fn finish(self) {
        for (family, shard) in &self.shards {
            family.finish_write(*shard);
        }
    }
}

impl HotRows {
    /// Hot rows within `budget` bytes (0 holds nothing).
    pub fn new(budget: usize) -> HotRows {
        HotRows { budget, used: AtomicUsize::new(0), evictions: AtomicU64::new(0), turn: AtomicU64::new(0), families: RwLock::new(HashMap::new()) }
    }

    /// The family's map, created on first use; `None` when the budget is zero.
    pub fn family(&self, name: &str) -> Option<Arc<FamilyRows>> {
        if self.budget == 0 {
            return None;
        }
        if let Some(f) = self.families.read().get(name) {
            return Some(f.clone());
        }
        Some(self.families.write().entry(name.to_string()).or_insert_with(|| Arc::new(FamilyRows::new())).clone())
    }

    /// How the family's lookups have been served; `None` before its first lookup.
    pub fn stats(&self, name: &str) -> Option<HotStats> {
        let f = self.families.read().get(name)?.clone();
        Some(HotStats { keys_looked_up: f.probed.load(Ordering::Relaxed), from_memory: f.held.load(Ordering::Relaxed), rows_held: f.len() })
    }

    /// Forgets a dropped family's rows. A reader still holding the family's map fills
    /// nothing more into it.
    pub fn drop_family(&self, name: &str) {
        let Some(f) = self.families.write().remove(name) else { return };
        for shard in &f.shards {
            let mut s = shard.write();
            s.dropped = true;
            s.rows.clear();
            self.used.fetch_sub(std::mem::take(&mut s.bytes), Ordering::Relaxed);
        }
    }

    /// Invalidates the keys a write is about to change, in families that have a map;
    /// `writes` yields (family, key).
    pub fn begin_writes<'a>(&self, writes: impl Iterator<Item = (&'a str, &'a [u8])>) -> WritesInFlight<'_> {
        let mut shards = Vec::new();
        let families = self.families.read();
        if families.is_empty() {
            return WritesInFlight { _families: families, shards };
        }
        let mut last: Option<(&str, Option<&Arc<FamilyRows>>)> = None;
        for (name, key) in writes {
            let family = match last {
                Some((n, f)) if n == name => f,
                _ => {
                    let f = families.get(name);
                    last = Some((name, f));
                    f
                }
            };
            if let Some(f) = family {
                shards.push((f.clone(), f.begin_write(self, key)));
            }
        }
        WritesInFlight { _families: families, shards }
    }

    /// Bytes held (approximate: keys, values and a fixed overhead per entry).
    pub fn used_bytes(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Moves the hand of the next shard in turn (over every family's shards), evicting
    /// one entry there; empty shards are skipped.
    fn evict_in_turn(&self) {
        let families = self.families.read();
        let slots = (families.len() * SHARDS) as u64;
        for _ in 0..slots {
            let i = self.turn.fetch_add(1, Ordering::Relaxed) % slots;
            // HashMap order is stable while the map is unchanged, which is good enough here.
            let Some(family) = families.values().nth((i / SHARDS as u64) as usize) else { return };
            let freed = family.shards[(i % SHARDS as u64) as usize].write().evict_one(&family.hasher);
            if freed > 0 {
                self.used.fetch_sub(freed, Ordering::Relaxed);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(s: &str) -> Option<Vec<u8>> {
        Some(s.as_bytes().to_vec())
    }

    fn probe(f: &FamilyRows, key: &[u8]) -> Result<Option<Vec<u8>>, Ticket> {
        let mut hit = None;
        let missed = f.probe_many(&[key.to_vec()], |_, v| hit = Some(v.map(<[u8]>::to_vec)));
        match (hit, missed.first()) {
            (Some(v), None) => Ok(v),
            (None, Some((0, t))) => Err(*t),
            other => panic!("one key probed, got {other:?}"),
        }
    }

    fn read(hot: &HotRows, family: &str, key: &[u8], rocks: &Option<Vec<u8>>) -> Option<Vec<u8>> {
        let f = hot.family(family).unwrap();
        match probe(&f, key) {
            Ok(v) => v,
            Err(t) => {
                f.fill(hot, key, t, rocks.as_deref());
                rocks.clone()
            }
        }
    }

    fn held(hot: &HotRows, family: &str, key: &[u8]) -> Option<Option<Vec<u8>>> {
        probe(&hot.family(family).unwrap(), key).ok()
    }

    #[test]
    fn keys_are_found_whichever_shards_they_fall_in() {
        let hot = HotRows::new(1 << 20);
        let f = hot.family("t").unwrap();
        let keys: Vec<Vec<u8>> = (0..200).map(|i| format!("key{i}").into_bytes()).collect();
        for (i, k) in keys.iter().enumerate().filter(|(i, _)| i % 3 != 0) {
            read(&hot, "t", k, &Some(format!("v{i}").into_bytes()));
        }
        let mut found = vec![None; keys.len()];
        let missed = f.probe_many(&keys, |i, v| found[i] = Some(v.map(<[u8]>::to_vec)));
        let mut missed: Vec<usize> = missed.iter().map(|(i, _)| *i).collect();
        missed.sort();
        assert_eq!(missed, (0..200).filter(|i| i % 3 == 0).collect::<Vec<_>>());
        for (i, v) in found.iter().enumerate() {
            if i % 3 == 0 {
                assert_eq!(v, &None);
            } else {
                assert_eq!(v, &Some(Some(format!("v{i}").into_bytes())), "key {i}");
            }
        }
    }

    #[test]
    fn a_read_row_is_held_and_a_write_forgets_it() {
        let hot = HotRows::new(1 << 20);
        assert_eq!(read(&hot, "t", b"k", &value("v1")), value("v1"));
        assert_eq!(held(&hot, "t", b"k"), Some(value("v1")));
        assert_eq!(read(&hot, "t", b"gone", &None), None);
        assert_eq!(held(&hot, "t", b"gone"), Some(None), "absent keys are held too");
        hot.begin_writes([("t", &b"k"[..])].into_iter()).finish();
        assert_eq!(held(&hot, "t", b"k"), None);
        assert_eq!(read(&hot, "t", b"k", &value("v2")), value("v2"));
        assert_eq!(held(&hot, "t", b"k"), Some(value("v2")));
        assert_eq!(hot.stats("t"), Some(HotStats { keys_looked_up: 7, from_memory: 3, rows_held: 2 }));
        assert_eq!(hot.stats("never"), None);
    }

    #[test]
    fn a_value_read_before_or_during_a_write_is_not_held() {
        let hot = HotRows::new(1 << 20);
        let f = hot.family("t").unwrap();
        // Read before the write started, filled after it finished: stale, not held.
        let before = probe(&f, b"k").unwrap_err();
        hot.begin_writes([("t", &b"k"[..])].into_iter()).finish();
        f.fill(&hot, b"k", before, Some(b"old"));
        assert_eq!(held(&hot, "t", b"k"), None);
        // Missed while the write is in flight, filled during or after it: not held.
        let w = hot.begin_writes([("t", &b"k"[..])].into_iter());
        let during = probe(&f, b"k").unwrap_err();
        f.fill(&hot, b"k", during, Some(b"maybe-old"));
        assert_eq!(held(&hot, "t", b"k"), None);
        w.finish();
        f.fill(&hot, b"k", during, Some(b"maybe-old"));
        assert_eq!(held(&hot, "t", b"k"), None);
        // A write to another family or with no map leaves the shard alone.
        let t = probe(&f, b"k").unwrap_err();
        hot.begin_writes([("other", &b"k"[..])].into_iter()).finish();
        f.fill(&hot, b"k", t, Some(b"new"));
        assert_eq!(held(&hot, "t", b"k"), Some(value("new")));
    }

    #[test]
    fn memory_stays_within_budget_and_recently_read_rows_survive() {
        let budget = 1000 * (ENTRY_OVERHEAD + 8 + 100);
        let hot = HotRows::new(budget);
        let big = Some(vec![b'x'; 100]);
        for i in 0..5000u32 {
            read(&hot, "t", format!("k{i:07}").as_bytes(), &big);
            // Keep k0000000 hot.
            read(&hot, "t", b"k0000000", &big);
        }
        assert!(hot.used_bytes() <= budget, "{} > {budget}", hot.used_bytes());
        let n = hot.family("t").unwrap().len();
        assert!((900..=1000).contains(&n), "{n} rows held");
        assert!(held(&hot, "t", b"k0000000").is_some(), "the row read on every request is still held");
    }

    #[test]
    fn eviction_takes_memory_from_families_no_longer_read() {
        let budget = 200 * (ENTRY_OVERHEAD + 8 + 10);
        let hot = HotRows::new(budget);
        let v = value("0123456789");
        for i in 0..200u32 {
            read(&hot, "old", format!("k{i:07}").as_bytes(), &v);
        }
        // A family being read, with more keys than fit: its fills evict, and the old
        // family's rows go too, in turn.
        for _ in 0..20 {
            for i in 0..400u32 {
                read(&hot, "new", format!("k{i:07}").as_bytes(), &v);
            }
        }
        assert!(hot.used_bytes() <= budget);
        assert!(hot.family("new").unwrap().len() > 150);
        assert!(hot.family("old").unwrap().len() < 50);
        hot.drop_family("new");
        assert_eq!(hot.used_bytes(), hot.family("old").unwrap().bytes());
    }

    #[test]
    fn a_table_emptied_by_writes_gives_back_its_buckets() {
        let hot = HotRows::new(1 << 30);
        let keys: Vec<Vec<u8>> = (0..100_000u32).map(|i| format!("k{i}").into_bytes()).collect();
        for k in &keys {
            read(&hot, "t", k, &value("v"));
        }
        let f = hot.family("t").unwrap();
        let buckets = |f: &FamilyRows| f.shards.iter().map(|s| s.read().rows.num_buckets()).sum::<usize>();
        let full = buckets(&f);
        assert!(full >= 100_000, "{full} buckets for 100000 rows");
        // Writes to 99% of the keys forget them; the tables shrink rather than keep their
        // (unbudgeted) buckets.
        hot.begin_writes(keys.iter().take(99_000).map(|k| ("t", k.as_slice()))).finish();
        assert_eq!(f.len(), 1000);
        assert!(buckets(&f) < full / 8, "{} buckets left of {full}", buckets(&f));
        for k in &keys[99_000..] {
            assert_eq!(held(&hot, "t", k), Some(value("v")), "rows not written are still held");
        }
        assert_eq!(hot.used_bytes(), f.bytes());
    }

    #[test]
    fn a_family_dropped_while_being_read_fills_nothing_and_frees_its_memory() {
        let hot = HotRows::new(1 << 20);
        read(&hot, "t", b"a", &value("1"));
        read(&hot, "other", b"a", &value("1"));
        let f = hot.family("t").unwrap();
        let ticket = probe(&f, b"b").unwrap_err();
        hot.drop_family("t");
        assert_eq!(hot.used_bytes(), hot.family("other").unwrap().bytes());
        f.fill(&hot, b"b", ticket, Some(b"2"));
        assert!(f.is_empty());
        assert_eq!(hot.used_bytes(), hot.family("other").unwrap().bytes());
        assert!(hot.family("t").unwrap().is_empty(), "a family created again starts empty");
    }

    #[test]
    fn a_map_is_not_created_while_a_write_is_in_flight() {
        let hot = Arc::new(HotRows::new(1 << 20));
        let write = hot.begin_writes([("t", &b"k"[..])].into_iter());
        let created = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (hot, created) = (hot.clone(), created.clone());
            std::thread::spawn(move || {
                let f = hot.family("t").unwrap();
                created.store(true, Ordering::SeqCst);
                f
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!created.load(Ordering::SeqCst), "the map was created while a write to its family was in flight");
        write.finish();
        reader.join().unwrap();
        assert!(created.load(Ordering::SeqCst));
    }

    #[test]
    fn a_zero_budget_holds_nothing() {
        let hot = HotRows::new(0);
        assert!(hot.family("t").is_none());
        hot.begin_writes([("t", &b"k"[..])].into_iter()).finish();
    }
}
