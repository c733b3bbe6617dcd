//! State: one RocksDB instance per server, a column family per materialized table or
//! operator, and task checkpoints. Materialized rows and operator state of a task are
//! written together with the task's source offsets in one write batch, which is what makes
//! processing exactly once. Key lookups for serving go through [`hot_rows`] first.
//!
//! All methods block (RocksDB I/O); async callers run them on blocking threads.

pub mod hot_rows;
pub mod keys;
pub mod rows;

use std::path::{Path, PathBuf};

use hot_rows::HotRows;
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBWithThreadMode, Direction, IteratorMode, MultiThreaded, Options, ReadOptions, ReadTier, WriteBatch,
    WriteOptions,
};

/// Column family holding task checkpoints (source offset, sink sequences, stream time).
pub const CHECKPOINTS: &str = "_checkpoints";

/// Column family holding, per changelog topic partition, the offset up to which the local
/// state holds its records (written in the same batch as the state).
pub const CHANGELOG_POSITIONS: &str = "_changelog_positions";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state store error ({context}): {source}; check that the data directory is writable, not full, and not used by another server")]
    Rocks { context: String, source: rocksdb::Error },
    #[error("state for '{0}' does not exist")]
    MissingFamily(String),
    #[error("state record is corrupt: {0}")]
    Corrupt(String),
    #[error("cannot create the state directory {dir}: {source}; check that the data directory is writable and not full")]
    CreateDir { dir: String, source: std::io::Error },
    /// The journal that backs the state (a changelog topic) did not take a batch; the batch
    /// was not applied.
    #[error("the state's changelog did not take the write: {0}")]
    Journal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Where every state write is recorded before it is applied (changelog topics, when the
/// server runs on a Kafka cluster), so state lost with a machine can be rebuilt.
pub trait StateJournal: Send + Sync {
    /// Records a batch about to be applied (and may add to it what the local state must
    /// remember of the recording); an error keeps the batch from being applied.
    fn record(&self, batch: &mut StateBatch) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
    /// Brings a task's local state up to what the journal holds of it (before the task
    /// starts over from its last commit, after a failed step).
    fn restore_task(&self, _state: &StateDb, _task: &str, _partition: i32) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Ok(())
    }
}

fn rocks(context: impl Into<String>) -> impl FnOnce(rocksdb::Error) -> StateError {
    let context = context.into();
    move |source| StateError::Rocks { context, source }
}

/// Where a read may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// Memory or disk (callers run on a blocking thread).
    Any,
    /// Memtables and the block cache only, so the read never waits for the disk and may
    /// run on an async executor thread.
    MemoryOnly,
}

/// Writes to apply atomically.
#[derive(Debug, Default)]
pub struct StateBatch {
    ops: Vec<(String, Vec<u8>, Option<Vec<u8>>)>,
}

impl StateBatch {
    pub fn put(&mut self, family: &str, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push((family.to_string(), key, Some(value)));
    }

    pub fn delete(&mut self, family: &str, key: Vec<u8>) {
        self.ops.push((family.to_string(), key, None));
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Adds `other`'s writes after these.
    pub fn append(&mut self, mut other: StateBatch) {
        self.ops.append(&mut other.ops);
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The writes in order: family, key, and the value (None: a deletion).
    pub fn ops(&self) -> impl Iterator<Item = (&str, &[u8], Option<&[u8]>)> {
        self.ops.iter().map(|(f, k, v)| (f.as_str(), k.as_slice(), v.as_deref()))
    }
}

/// Values found by [`StateDb::lookup`], by the index of their key.
#[derive(Debug)]
pub struct LookedUp {
    bytes: Vec<u8>,
    spans: Vec<Option<(usize, usize)>>,
}

impl LookedUp {
    fn set(&mut self, i: usize, value: Option<&[u8]>) {
        if let Some(v) = value {
            self.spans[i] = Some((self.bytes.len(), v.len()));
            self.bytes.extend_from_slice(v);
        }
    }

    /// Each key's value, in key order (`None`: the key has no row).
    pub fn iter(&self) -> impl Iterator<Item = Option<&[u8]>> + '_ {
        self.spans.iter().map(|s| s.map(|(at, len)| &self.bytes[at..at + len]))
    }
}

/// Memory for the row cache (see `open`).
const ROW_CACHE_BYTES: usize = 64 << 20;

/// Memory for hot rows (see [`hot_rows`]) unless the server is told otherwise.
pub const DEFAULT_HOT_ROWS_BYTES: usize = 256 << 20;

/// Write-ahead log kept at most (see `open`); replaying this much takes well under a second.
const MAX_TOTAL_WAL_BYTES: u64 = 32 << 20;

pub struct StateDb {
    db: DBWithThreadMode<MultiThreaded>,
    path: PathBuf,
    cf_options: Options,
    hot: HotRows,
    journal: parking_lot::RwLock<Option<std::sync::Arc<dyn StateJournal>>>,
}

fn family_options(cache: &Cache) -> Options {
    let mut block = BlockBasedOptions::default();
    block.set_block_cache(cache);
    block.set_bloom_filter(10.0, false);
    // Index and filter split into 4 KB partitions under a small top level: a large table
    // file's whole filter (8 MB for 6.5 M keys) is bigger than a block cache shard, so it
    // would be read and checksummed again on every lookup; its partitions stay cached.
    block.set_index_type(rocksdb::BlockBasedIndexType::TwoLevelIndexSearch);
    block.set_partition_filters(true);
    block.set_metadata_block_size(4096);
    block.set_pin_top_level_index_and_filter(true);
    block.set_cache_index_and_filter_blocks(true);
    block.set_pin_l0_filter_and_index_blocks_in_cache(true);
    // A hash index inside each data block: point lookups (pull queries, feature lookups)
    // find their key without a binary search over the block's restart points.
    block.set_data_block_index_type(rocksdb::DataBlockIndexType::BinaryAndHash);
    block.set_data_block_hash_ratio(0.75);
    let mut o = Options::default();
    o.set_block_based_table_factory(&block);
    o.set_compression_type(rocksdb::DBCompressionType::Lz4);
    o
}

/// Table files RocksDB keeps open when not told otherwise.
pub const DEFAULT_MAX_OPEN_FILES: i32 = 512;

impl StateDb {
    /// Opens (creating) the state store in `dir`, with every column family it holds.
    pub fn open(dir: &Path) -> Result<StateDb, StateError> {
        StateDb::open_with_hot_rows(dir, DEFAULT_HOT_ROWS_BYTES)
    }

    /// [`StateDb::open`] holding at most `hot_rows_bytes` of hot rows (0: none).
    pub fn open_with_hot_rows(dir: &Path, hot_rows_bytes: usize) -> Result<StateDb, StateError> {
        StateDb::open_with(dir, hot_rows_bytes, DEFAULT_MAX_OPEN_FILES)
    }

    /// [`StateDb::open_with_hot_rows`] keeping at most `max_open_files` table files open.
    pub fn open_with(dir: &Path, hot_rows_bytes: usize, max_open_files: i32) -> Result<StateDb, StateError> {
        std::fs::create_dir_all(dir).map_err(|source| StateError::CreateDir { dir: dir.display().to_string(), source })?;
        let cache = Cache::new_lru_cache(256 << 20);
        let cf_options = family_options(&cache);
        // After a crash, open with the replayed log in memtables instead of first writing
        // them out as table files: serving starts sooner; they flush in the background.
        let mut db_opts = Options::default().get_options_from_string("avoid_flush_during_recovery=true").map_err(rocks("setting state options"))?;
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.increase_parallelism(2);
        // Table files are opened on demand beyond this (the default keeps every one open).
        db_opts.set_max_open_files(max_open_files.max(16));
        // Bounds the write-ahead log a start after a crash replays: past this size RocksDB
        // flushes the memtables holding the oldest log data.
        db_opts.set_max_total_wal_size(MAX_TOTAL_WAL_BYTES);
        // Recently looked-up rows by key, ahead of the block cache.
        db_opts.set_row_cache(&Cache::new_lru_cache(ROW_CACHE_BYTES));
        let existing = DBWithThreadMode::<MultiThreaded>::list_cf(&db_opts, dir).unwrap_or_else(|_| vec!["default".to_string()]);
        let mut names: Vec<String> = existing;
        for family in [CHECKPOINTS, CHANGELOG_POSITIONS] {
            if !names.iter().any(|n| n == family) {
                names.push(family.to_string());
            }
        }
        let descriptors = names.iter().map(|n| ColumnFamilyDescriptor::new(n, cf_options.clone()));
        let db = DBWithThreadMode::<MultiThreaded>::open_cf_descriptors(&db_opts, dir, descriptors).map_err(rocks(format!("opening {}", dir.display())))?;
        Ok(StateDb { db, path: dir.to_path_buf(), cf_options, hot: HotRows::new(hot_rows_bytes), journal: parking_lot::RwLock::new(None) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates a column family if it does not exist.
    pub fn ensure_family(&self, name: &str) -> Result<(), StateError> {
        if self.db.cf_handle(name).is_none() {
            self.db.create_cf(name, &self.cf_options).map_err(rocks(format!("creating state '{name}'")))?;
        }
        Ok(())
    }

    /// Drops a column family and its data (no error if it does not exist).
    pub fn drop_family(&self, name: &str) -> Result<(), StateError> {
        if self.db.cf_handle(name).is_some() {
            self.db.drop_cf(name).map_err(rocks(format!("dropping state '{name}'")))?;
        }
        // After the family is gone, so no reader can fill the next map from the old data.
        self.hot.drop_family(name);
        Ok(())
    }

    pub fn has_family(&self, name: &str) -> bool {
        self.db.cf_handle(name).is_some()
    }

    pub fn get(&self, family: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        let cf = self.db.cf_handle(family).ok_or_else(|| StateError::MissingFamily(family.to_string()))?;
        self.db.get_pinned_cf(&cf, key).map(|v| v.map(|p| p.to_vec())).map_err(rocks(format!("reading '{family}'")))
    }

    pub fn multi_get(&self, family: &str, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, StateError> {
        let cf = self.db.cf_handle(family).ok_or_else(|| StateError::MissingFamily(family.to_string()))?;
        self.db
            .batched_multi_get_cf(&cf, keys.iter(), false)
            .into_iter()
            .map(|r| r.map(|v| v.map(|p| p.to_vec())).map_err(rocks(format!("reading '{family}'"))))
            .collect()
    }

    /// Key lookups for serving (pull queries, feature lookups): from the family's hot rows,
    /// then [`StateDb::multi_get`] or [`StateDb::multi_get_in_memory`] as `mode` says for
    /// the keys not held, which are then held. `None` only when memory-only and some key
    /// would need a disk read.
    pub fn lookup(&self, family: &str, keys: &[Vec<u8>], mode: ReadMode) -> Result<Option<LookedUp>, StateError> {
        let read = |keys: &[Vec<u8>]| match mode {
            ReadMode::Any => self.multi_get(family, keys).map(Some),
            ReadMode::MemoryOnly => self.multi_get_in_memory(family, keys),
        };
        let mut out = LookedUp { bytes: Vec::with_capacity(keys.len() * 128), spans: vec![None; keys.len()] };
        let Some(held) = self.hot.family(family) else {
            let Some(found) = read(keys)? else {
                return Ok(None);
            };
            for (i, v) in found.iter().enumerate() {
                out.set(i, v.as_deref());
            }
            return Ok(Some(out));
        };
        let missed = held.probe_many(keys, |i, v| out.set(i, v));
        if missed.is_empty() {
            return Ok(Some(out));
        }
        let missed_keys: Vec<Vec<u8>> = missed.iter().map(|(i, _)| keys[*i].clone()).collect();
        let Some(found) = read(&missed_keys)? else {
            return Ok(None);
        };
        for ((i, ticket), v) in missed.into_iter().zip(found) {
            held.fill(&self.hot, &keys[i], ticket, v.as_deref());
            out.set(i, v.as_deref());
        }
        Ok(Some(out))
    }

    /// How key lookups on `family` have been served (`None` before the first, or with
    /// hot rows off).
    pub fn lookup_stats(&self, family: &str) -> Option<hot_rows::HotStats> {
        self.hot.stats(family)
    }

    /// Bytes of hot rows held.
    pub fn hot_rows_bytes(&self) -> usize {
        self.hot.used_bytes()
    }

    /// RocksDB's table files and memtables, in bytes, over every column family. Blocking
    /// (it lists the column families).
    pub fn stored_bytes(&self) -> Result<(u64, u64), StateError> {
        let names = DBWithThreadMode::<MultiThreaded>::list_cf(&Options::default(), &self.path).map_err(rocks("listing state"))?;
        let (mut files, mut memtables) = (0u64, 0u64);
        for cf in names.iter().filter_map(|n| self.db.cf_handle(n)) {
            let read = |name: &str| self.db.property_int_value_cf(&cf, name).ok().flatten().unwrap_or(0);
            files += read("rocksdb.total-sst-files-size");
            memtables += read("rocksdb.size-all-mem-tables");
        }
        Ok((files, memtables))
    }

    /// Like [`StateDb::multi_get`], but only from memory (memtables and the block cache):
    /// `None` when some key would need a disk read. Safe to call on an async executor.
    pub fn multi_get_in_memory(&self, family: &str, keys: &[Vec<u8>]) -> Result<Option<Vec<Option<Vec<u8>>>>, StateError> {
        let cf = self.db.cf_handle(family).ok_or_else(|| StateError::MissingFamily(family.to_string()))?;
        let mut opts = ReadOptions::default();
        opts.set_read_tier(ReadTier::BlockCache);
        // Point reads, not the batched multi-get: RocksDB's MultiGet reads table files
        // despite the block-cache tier (and then does not cache what it read).
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            match self.db.get_pinned_cf_opt(&cf, k, &opts) {
                Ok(v) => out.push(v.map(|p| p.to_vec())),
                Err(e) if e.kind() == rocksdb::ErrorKind::Incomplete => return Ok(None),
                Err(e) => {
                    return Err(StateError::Rocks { context: format!("reading '{family}'"), source: e });
                }
            }
        }
        Ok(Some(out))
    }

    /// Visits entries with `from <= key < to` in key order until `f` returns false.
    pub fn scan(&self, family: &str, from: Option<&[u8]>, to: Option<&[u8]>, mut f: impl FnMut(&[u8], &[u8]) -> bool) -> Result<(), StateError> {
        let cf = self.db.cf_handle(family).ok_or_else(|| StateError::MissingFamily(family.to_string()))?;
        let mode = match from {
            Some(k) => IteratorMode::From(k, Direction::Forward),
            None => IteratorMode::Start,
        };
        for item in self.db.iterator_cf(&cf, mode) {
            let (k, v) = item.map_err(rocks(format!("scanning '{family}'")))?;
            if to.is_some_and(|t| k.as_ref() >= t) {
                break;
            }
            if !f(&k, &v) {
                break;
            }
        }
        Ok(())
    }

    /// Writes every column family's memtable to table files (and syncs the WAL), so the
    /// next open has no log to replay.
    pub fn flush(&self) -> Result<(), StateError> {
        let names = DBWithThreadMode::<MultiThreaded>::list_cf(&Options::default(), &self.path).map_err(rocks("listing state"))?;
        for cf in names.iter().filter_map(|n| self.db.cf_handle(n)) {
            self.db.flush_cf(&cf).map_err(rocks("flushing state"))?;
        }
        Ok(())
    }

    /// Records every later write in `journal` before applying it.
    pub fn set_journal(&self, journal: std::sync::Arc<dyn StateJournal>) {
        *self.journal.write() = Some(journal);
    }

    /// Applies a batch atomically (recorded in the journal first, when there is one); with
    /// `sync`, durably (WAL fsync) before returning.
    pub fn write(&self, mut batch: StateBatch, sync: bool) -> Result<(), StateError> {
        let journal = self.journal.read().clone();
        if let Some(journal) = journal {
            journal.record(&mut batch).map_err(StateError::Journal)?;
        }
        self.apply(batch, sync)
    }

    /// Brings a task's local state up to what the journal holds of it (when there is a
    /// journal). Blocking.
    pub fn restore_task(&self, task: &str, partition: i32) -> Result<(), StateError> {
        let journal = self.journal.read().clone();
        match journal {
            Some(journal) => journal.restore_task(self, task, partition).map_err(StateError::Journal),
            None => Ok(()),
        }
    }

    /// Applies a batch read back from the journal (not recorded again).
    pub fn write_restored(&self, batch: StateBatch) -> Result<(), StateError> {
        self.apply(batch, true)
    }

    fn apply(&self, batch: StateBatch, sync: bool) -> Result<(), StateError> {
        let mut wb = WriteBatch::default();
        for (family, key, value) in &batch.ops {
            let cf = self.db.cf_handle(family).ok_or_else(|| StateError::MissingFamily(family.clone()))?;
            match value {
                Some(v) => wb.put_cf(&cf, key, v),
                None => wb.delete_cf(&cf, key),
            }
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(sync);
        let in_flight = self.hot.begin_writes(batch.ops.iter().map(|(family, key, _)| (family.as_str(), key.as_slice())));
        let result = self.db.write_opt(wb, &opts).map_err(rocks("writing state"));
        in_flight.finish();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_batches_and_scans_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = StateDb::open(dir.path()).unwrap();
            db.ensure_family("t").unwrap();
            let mut b = StateBatch::default();
            for k in ["b", "a", "c", "d"] {
                b.put("t", k.as_bytes().to_vec(), format!("v{k}").into_bytes());
            }
            b.put(CHECKPOINTS, b"q".to_vec(), b"1".to_vec());
            db.write(b, true).unwrap();
            let mut b = StateBatch::default();
            b.delete("t", b"d".to_vec());
            db.write(b, true).unwrap();
        }
        let db = StateDb::open(dir.path()).unwrap();
        assert_eq!(db.get("t", b"a").unwrap(), Some(b"va".to_vec()));
        assert_eq!(db.get("t", b"d").unwrap(), None);
        assert_eq!(db.multi_get("t", &[b"c".to_vec(), b"z".to_vec()]).unwrap(), vec![Some(b"vc".to_vec()), None]);
        let mut seen = Vec::new();
        db.scan("t", Some(b"b"), Some(b"d"), |k, _| {
            seen.push(k.to_vec());
            true
        })
        .unwrap();
        assert_eq!(seen, vec![b"b".to_vec(), b"c".to_vec()]);
        assert_eq!(db.get(CHECKPOINTS, b"q").unwrap(), Some(b"1".to_vec()));
        // Nothing read yet after the reopen is in the block cache; reading it once caches it.
        let keys = [b"a".to_vec(), b"z".to_vec()];
        if db.multi_get_in_memory("t", &keys).unwrap().is_none() {
            db.multi_get("t", &keys).unwrap();
        }
        assert_eq!(db.multi_get_in_memory("t", &keys).unwrap(), Some(vec![Some(b"va".to_vec()), None]));
        db.drop_family("t").unwrap();
        assert!(matches!(db.get("t", b"a"), Err(StateError::MissingFamily(_))));
    }

    fn looked_up(db: &StateDb, family: &str, keys: &[&[u8]]) -> Vec<Option<Vec<u8>>> {
        let keys: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
        db.lookup(family, &keys, ReadMode::Any).unwrap().unwrap().iter().map(|v| v.map(<[u8]>::to_vec)).collect()
    }

    fn put(db: &StateDb, family: &str, key: &[u8], value: Option<&[u8]>) {
        let mut b = StateBatch::default();
        match value {
            Some(v) => b.put(family, key.to_vec(), v.to_vec()),
            None => b.delete(family, key.to_vec()),
        }
        db.write(b, false).unwrap();
    }

    #[test]
    fn lookups_see_every_write_once_it_is_applied() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path()).unwrap();
        db.ensure_family("t").unwrap();
        put(&db, "t", b"k", Some(b"v1"));
        assert_eq!(looked_up(&db, "t", &[b"k", b"none"]), vec![Some(b"v1".to_vec()), None]);
        assert!(db.hot_rows_bytes() > 0, "the rows read are held");
        put(&db, "t", b"k", Some(b"v2"));
        put(&db, "t", b"none", Some(b"now"));
        assert_eq!(looked_up(&db, "t", &[b"k", b"none"]), vec![Some(b"v2".to_vec()), Some(b"now".to_vec())]);
        put(&db, "t", b"k", None);
        assert_eq!(looked_up(&db, "t", &[b"k"]), vec![None]);
        // A family dropped and created again starts empty.
        put(&db, "t", b"k", Some(b"old"));
        assert_eq!(looked_up(&db, "t", &[b"k"]), vec![Some(b"old".to_vec())]);
        db.drop_family("t").unwrap();
        db.ensure_family("t").unwrap();
        assert_eq!(looked_up(&db, "t", &[b"k"]), vec![None]);
        // Without hot rows, lookups read RocksDB every time.
        let cold = StateDb::open_with_hot_rows(&dir.path().join("cold"), 0).unwrap();
        cold.ensure_family("t").unwrap();
        put(&cold, "t", b"k", Some(b"v"));
        assert_eq!(looked_up(&cold, "t", &[b"k", b"x"]), vec![Some(b"v".to_vec()), None]);
        assert_eq!(cold.hot_rows_bytes(), 0);
    }

    #[test]
    fn concurrent_lookups_never_see_a_row_go_back_to_an_older_value() {
        let dir = tempfile::tempdir().unwrap();
        let db = std::sync::Arc::new(StateDb::open(dir.path()).unwrap());
        db.ensure_family("t").unwrap();
        let keys: Vec<Vec<u8>> = (0..8).map(|i| format!("k{i}").into_bytes()).collect();
        const WRITES: u64 = 3000;
        let writer = {
            let (db, keys) = (db.clone(), keys.clone());
            std::thread::spawn(move || {
                for n in 1..=WRITES {
                    let mut b = StateBatch::default();
                    for k in &keys {
                        b.put("t", k.clone(), n.to_be_bytes().to_vec());
                    }
                    db.write(b, false).unwrap();
                }
            })
        };
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let (db, keys, done) = (db.clone(), keys.clone(), done.clone());
                std::thread::spawn(move || {
                    let mut last = vec![0u64; keys.len()];
                    loop {
                        // Read the flag first: a lookup after the writer finished sees its last write.
                        let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                        let found = db.lookup("t", &keys, ReadMode::Any).unwrap().unwrap();
                        for (i, v) in found.iter().enumerate() {
                            let n = v.map_or(0, |v| u64::from_be_bytes(v.try_into().unwrap()));
                            assert!(n >= last[i], "key {i} went from {} back to {n}", last[i]);
                            last[i] = n;
                        }
                        if finished {
                            assert_eq!(last, vec![WRITES; keys.len()], "lookups after the last write see it");
                            return;
                        }
                    }
                })
            })
            .collect();
        writer.join().unwrap();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        for r in readers {
            r.join().unwrap();
        }
    }

    #[test]
    fn rows_read_once_from_table_files_are_then_read_from_memory() {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<Vec<u8>> = (0..20_000).map(|i| format!("key-{i:06}").into_bytes()).collect();
        {
            let db = StateDb::open(dir.path()).unwrap();
            db.ensure_family("t").unwrap();
            let mut b = StateBatch::default();
            for k in &keys {
                b.put("t", k.clone(), vec![b'v'; 40]);
            }
            db.write(b, false).unwrap();
            db.flush().unwrap();
        }
        let db = StateDb::open(dir.path()).unwrap();
        let sample: Vec<Vec<u8>> = keys.iter().step_by(97).cloned().collect();
        assert!(db.multi_get_in_memory("t", &sample).unwrap().is_none(), "nothing is cached right after opening");
        let from_disk = db.multi_get("t", &sample).unwrap();
        assert!(from_disk.iter().all(|v| v.is_some()));
        assert_eq!(db.multi_get_in_memory("t", &sample).unwrap(), Some(from_disk));
    }
}
