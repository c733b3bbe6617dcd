//! Changelog topics: on a Kafka cluster, every state write of a stateful task (its
//! operator state, the table rows it serves, its checkpoint — one RocksDB batch) is first
//! appended to a compacted topic of the task, `<internal prefix><task>-changelog`, in the
//! partition of the task's source partition. A task that finds no local checkpoint (a new
//! machine, a lost data directory) rebuilds its state by reading its changelog partition
//! back before it starts; the checkpoint comes back with it, so it resumes where the last
//! write left it (source offset, sink sequence numbers, stream time).
//!
//! A record's key is the state key prefixed by its column family (`u16` length, name); a
//! deletion is a tombstone. A batch written twice (a crash between the append and the
//! local write) reads back to the same state.
//!
//! A task's changelog records commit in the task's transaction, with its output and its
//! source offsets (`exec::transaction`); the changelog is read back as a read-committed
//! consumer reads it, so a step that never committed leaves nothing behind.
//!
//! Without a transaction (a log that is not a cluster's), each changelog partition is
//! written by an idempotent producer of the task, and every writer that starts writing one
//! takes the next producer epoch (sequence 0): one that stalled while another took over
//! then writes with an older epoch and is refused.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;

use super::ExecError;
use crate::log::{BatchBuilder, CleanupPolicy, Log, Topic, TopicConfig, TransactionalWriter};
use crate::state::{CHANGELOG_POSITIONS, CHECKPOINTS, StateBatch, StateDb, StateJournal};

/// State writes read back per restore batch.
const RESTORE_BATCH: usize = 10_000;

/// The changelog topic of a task (`/` in stage names becomes `-`). A join stage's two
/// inputs commit together and share the stage's changelog.
pub fn changelog_topic(log: &Log, task: &str) -> String {
    let task = super::transaction::transaction_task(task);
    format!("{}{}-changelog", log.internal_prefix(), task.replace('/', "-"))
}

fn encode_key(family: &str, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + family.len() + key.len());
    out.extend_from_slice(&(family.len() as u16).to_be_bytes());
    out.extend_from_slice(family.as_bytes());
    out.extend_from_slice(key);
    out
}

fn decode_key(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let len = usize::from(u16::from_be_bytes(bytes.get(..2)?.try_into().ok()?));
    let family = std::str::from_utf8(bytes.get(2..2 + len)?).ok()?;
    Some((family, &bytes[2 + len..]))
}

/// The task, source topic and partition a checkpoint key names (`task/topic/partition`;
/// a task name may hold `/`, a topic name never does).
fn checkpoint_owner(key: &[u8]) -> Option<(&str, &str, i32)> {
    let key = std::str::from_utf8(key).ok()?;
    let mut parts = key.rsplitn(3, '/');
    let partition = parts.next()?.parse().ok()?;
    let topic = parts.next()?;
    Some((parts.next()?, topic, partition))
}

/// The changelog topics of a log's stateful tasks.
pub struct Changelogs {
    log: Arc<Log>,
    transactions: super::transaction::TaskTransactions,
    topics: Mutex<HashMap<String, Arc<Topic>>>,
    /// This server's producer epoch and next sequence per changelog partition.
    writers: Mutex<HashMap<(String, i32), Stamp>>,
}

/// The producer epoch a server writes a changelog partition with, and the next sequence.
#[derive(Debug, Clone, Copy)]
struct Stamp {
    epoch: i16,
    next: i32,
}

/// Why a changelog write was refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "changelog {topic}-{partition} is written by another server now (producer epoch {theirs}, this server's {ours}); this server stopped \
        being the one that runs the query"
)]
pub struct Fenced {
    topic: String,
    partition: i32,
    ours: i16,
    theirs: i16,
}

/// The producer id a changelog partition is written with (stable across servers).
fn changelog_producer_id(topic: &str, partition: i32) -> i64 {
    super::sink::task_producer_id(topic, partition)
}

impl Changelogs {
    pub fn new(log: Arc<Log>) -> Changelogs {
        let transactions = super::transaction::TaskTransactions::new(log.clone());
        Changelogs { log, transactions, topics: Mutex::new(HashMap::new()), writers: Mutex::new(HashMap::new()) }
    }

    /// The transactional producers of the tasks this server runs.
    pub fn transactions(&self) -> &super::transaction::TaskTransactions {
        &self.transactions
    }

    /// The task's changelog topic, created (compacted, with its source's partitions) when
    /// missing.
    fn topic(&self, task: &str, source_topic: &str) -> Result<Arc<Topic>, ExecError> {
        let name = changelog_topic(&self.log, task);
        if let Some(t) = self.topics.lock().get(&name) {
            return Ok(t.clone());
        }
        let partitions = self.log.topic(source_topic)?.partition_count();
        let config = TopicConfig { cleanup: CleanupPolicy { delete: false, compact: true }, retention_ms: None, ..self.log.defaults().clone() };
        let topic = self.log.topic_or_create(&name, partitions, config)?;
        self.topics.lock().insert(name, topic.clone());
        Ok(topic)
    }

    /// Brings a task's local state up to the end of its changelog partition (when it has
    /// one): the records past what the local state holds, or all of them when it holds
    /// none. How many were applied. Blocking.
    pub fn restore(&self, state: &StateDb, task: &str, partition: i32) -> Result<u64, ExecError> {
        match self.log.get_topic(&changelog_topic(&self.log, task)) {
            Some(topic) => catch_up(state, &topic, partition),
            None => Ok(0),
        }
    }

    /// Forgets this server's producer epochs: it writes again after another server did
    /// (it became the active server again), so it takes a new epoch first.
    pub fn forget_writers(&self) {
        self.writers.lock().clear();
    }

    /// Keeps warm copies of the state of the service's tasks on the partitions `follow`
    /// picks (those other servers run, so that this one takes them over without reading
    /// whole changelogs, and answers pull queries on them). How many records were applied.
    /// Blocking.
    pub fn follow_all(&self, state: &StateDb, follow: impl Fn(i32) -> bool) -> Result<u64, ExecError> {
        let mut applied = 0;
        for topic in self.log.topics().into_iter().filter(|t| self.log.is_internal_topic(t.name()) && t.name().ends_with("-changelog")) {
            for p in (0..topic.partition_count()).filter(|p| follow(*p)) {
                applied += catch_up(state, &topic, p)?;
            }
        }
        Ok(applied)
    }

    /// Deletes the changelog topics of a query's tasks (its stages too). Blocking.
    pub fn delete(log: &Log, query_id: &str) -> Result<(), ExecError> {
        let own = changelog_topic(log, query_id);
        let stages = format!("{}{}-", log.internal_prefix(), query_id);
        for t in log.topics() {
            let name = t.name();
            if name == own || (name.starts_with(&stages) && name.ends_with("-changelog")) {
                log.delete_topic(name)?;
            }
        }
        Ok(())
    }
}

/// The key of a changelog partition's position in [`CHANGELOG_POSITIONS`].
fn position_key(topic: &str, partition: i32) -> Vec<u8> {
    format!("{topic}/{partition}").into_bytes()
}

/// Applies the records of a changelog partition past the local state's position, and
/// moves the position with them (in the same batches). Blocking.
fn catch_up(state: &StateDb, topic: &Topic, partition: i32) -> Result<u64, ExecError> {
    let part = topic.partition(partition)?.clone();
    let key = position_key(topic.name(), partition);
    let stored = state.get(CHANGELOG_POSITIONS, &key)?.and_then(|v| v.try_into().ok()).map(i64::from_be_bytes);
    let start = part.start_offset();
    let from = match stored {
        Some(at) if at >= start => at,
        Some(at) => {
            // Compaction removed records the local state never saw: read it all again.
            tracing::warn!(topic = topic.name(), partition, at, start, "the changelog was compacted past the local state; reading it from its start");
            start
        }
        None => start,
    };
    let mut batch = StateBatch::default();
    let mut families: HashSet<String> = HashSet::new();
    let mut restored = 0u64;
    let mut next = from;
    let mut failed = None;
    crate::log::replay::replay_committed(part.as_ref(), from, |seen| {
        if failed.is_some() {
            return;
        }
        let r = match seen {
            Ok(r) => {
                next = r.offset + 1;
                r
            }
            Err((offset, why)) => {
                next = next.max(offset + 1);
                tracing::error!(topic = topic.name(), partition, offset, "skipping a changelog record that cannot be read: {why}");
                return;
            }
        };
        let Some((family, key)) = r.key.and_then(decode_key) else { return };
        if families.insert(family.to_string())
            && let Err(e) = state.ensure_family(family)
        {
            failed = Some(e);
            return;
        }
        match r.value {
            Some(v) => batch.put(family, key.to_vec(), v.to_vec()),
            None => batch.delete(family, key.to_vec()),
        }
        restored += 1;
        if batch.len() >= RESTORE_BATCH {
            batch.put(CHANGELOG_POSITIONS, position_key(topic.name(), partition), (r.offset + 1).to_be_bytes().to_vec());
            if let Err(e) = state.write_restored(std::mem::take(&mut batch)) {
                failed = Some(e);
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    if next == from && stored == Some(from) {
        // Nothing new (a standby's follow finds this most of the time): nothing to write.
        return Ok(0);
    }
    // The position moves past what was read (records appended meanwhile are read next time).
    batch.put(CHANGELOG_POSITIONS, key, next.to_be_bytes().to_vec());
    state.write_restored(batch)?;
    if restored > 0 {
        tracing::info!(topic = topic.name(), partition, records = restored, "brought the local state up to its changelog");
    }
    Ok(restored)
}

impl Changelogs {
    /// Appends a task's batch to its changelog partition in the task's transaction and
    /// commits it, with the source offsets of the batch's checkpoints. Blocking.
    fn record_in(&self, txn: &dyn TransactionalWriter, topic: &Topic, partition: i32, batch: &mut StateBatch) -> Result<(), ExecError> {
        let now = chrono::Utc::now().timestamp_millis();
        let mut records = BatchBuilder::new(None);
        let mut offsets = Vec::new();
        for (family, key, value) in batch.ops() {
            records.push(now, Some(&encode_key(family, key)), value, &[]);
            if family == CHECKPOINTS
                && let (Some((task, source, p)), Some(value)) = (checkpoint_owner(key), value)
            {
                let cp: super::checkpoint::TaskCheckpoint =
                    serde_json::from_slice(value).map_err(|e| ExecError::UnreadableCheckpoint { task: task.to_string(), source: e })?;
                offsets.push((super::transaction::offsets_group(&self.log, task), source.to_string(), p, cp.offset));
            }
        }
        let stamp = txn.stamp(topic.name(), partition, records.len() as i32)?;
        let appended = txn.append(topic.name(), partition, records.stamped(stamp).transactional().finish())?;
        let offsets: Vec<(&str, &str, i32, i64)> = offsets.iter().map(|(g, t, p, o)| (g.as_str(), t.as_str(), *p, *o)).collect();
        txn.commit(&offsets)?;
        batch.put(CHANGELOG_POSITIONS, position_key(topic.name(), partition), (appended.last_offset + 1).to_be_bytes().to_vec());
        Ok(())
    }
}

impl StateJournal for Changelogs {
    /// Appends a task's batch (one that commits a checkpoint) to its changelog partition,
    /// and adds the partition's new end to the batch as the local state's position; other
    /// batches (a dropped query's clean-up) are not the task's state.
    fn record(&self, batch: &mut StateBatch) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let owner = batch.ops().find_map(|(family, key, value)| (family == CHECKPOINTS && value.is_some()).then(|| checkpoint_owner(key)).flatten());
        let Some((task, source_topic, partition)) = owner else { return Ok(()) };
        let topic = self.topic(task, source_topic)?;
        if let Some(txn) = self.transactions.of(task, partition) {
            return Ok(self.record_in(txn.as_ref(), &topic, partition, batch)?);
        }
        let part = topic.partition(partition)?.clone();
        let slot = (topic.name().to_string(), partition);
        let producer_id = changelog_producer_id(topic.name(), partition);
        let known = self.writers.lock().get(&slot).copied();
        let stamp = match known {
            Some(s) => s,
            None => {
                // The first write of this server: the epoch after the last writer's.
                let epoch = part.producer_sequence(producer_id)?.map_or(0, |s| s.epoch.wrapping_add(1).max(0));
                Stamp { epoch, next: 0 }
            }
        };
        let now = chrono::Utc::now().timestamp_millis();
        let stamped = crate::log::batch::ProducerStamp { producer_id, producer_epoch: stamp.epoch, base_sequence: stamp.next };
        let mut records = BatchBuilder::new(Some(stamped));
        let n = batch.len() as i32;
        for (family, key, value) in batch.ops() {
            records.push(now, Some(&encode_key(family, key)), value, &[]);
        }
        let appended = match part.append(records.finish()) {
            Ok(a) => a,
            Err(e) => {
                // Refused: fenced by a newer writer, or a retry after an answer was lost
                // (the broker holds the batch already, or more): it says which.
                let theirs = part.producer_sequence(producer_id)?;
                let fresh = theirs.filter(|s| s.epoch == stamp.epoch).map(|s| Stamp { epoch: stamp.epoch, next: s.last_sequence.wrapping_add(1) & i32::MAX });
                match (theirs, fresh) {
                    (Some(t), _) if t.epoch != stamp.epoch => {
                        return Err(Box::new(Fenced { topic: slot.0, partition, ours: stamp.epoch, theirs: t.epoch }));
                    }
                    (_, Some(f)) => {
                        self.writers.lock().insert(slot, f);
                    }
                    _ => {}
                }
                return Err(e.into());
            }
        };
        self.writers.lock().insert(slot, Stamp { epoch: stamp.epoch, next: stamp.next.wrapping_add(n) & i32::MAX });
        batch.put(CHANGELOG_POSITIONS, position_key(topic.name(), partition), (appended.last_offset + 1).to_be_bytes().to_vec());
        Ok(())
    }

    /// Before a task starts over from its last commit: what its transaction left open is
    /// aborted, and what the changelog holds past the local state (a commit whose local
    /// write failed; another server's commits) is applied.
    fn restore_task(&self, state: &StateDb, task: &str, partition: i32) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.transactions.recover(task, partition)?;
        self.restore(state, task, partition)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_their_family_and_checkpoint_keys_name_their_task() {
        let k = encode_key("q/CTAS_X_1", b"\x00key");
        assert_eq!(decode_key(&k), Some(("q/CTAS_X_1", &b"\x00key"[..])));
        assert_eq!(decode_key(b"\x00"), None);
        assert_eq!(checkpoint_owner(b"CTAS_X_1/repartition/_eddy_CTAS_X_1_repartition/3"), Some(("CTAS_X_1/repartition", "_eddy_CTAS_X_1_repartition", 3)));
        assert_eq!(checkpoint_owner(b"q/t/x"), None);
    }

    fn task_batch(value: &[u8]) -> StateBatch {
        let mut b = StateBatch::default();
        b.put("q/T", b"k".to_vec(), value.to_vec());
        b.put(CHECKPOINTS, b"T/src/1".to_vec(), b"{}".to_vec());
        b
    }

    #[test]
    fn a_server_that_lost_the_task_is_fenced_from_its_changelog() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(Log::open(&dir.path().join("log"), TopicConfig::default()).unwrap());
        log.create_topic("src", 2, TopicConfig::default()).unwrap();
        let (zombie, successor) = (Changelogs::new(log.clone()), Changelogs::new(log.clone()));
        zombie.record(&mut task_batch(b"old")).unwrap();
        zombie.record(&mut task_batch(b"old-2")).unwrap();
        // Another server takes the task over; the first one, stalled meanwhile, writes on.
        successor.record(&mut task_batch(b"new")).unwrap();
        let refused = zombie.record(&mut task_batch(b"stale")).unwrap_err();
        assert!(refused.downcast_ref::<Fenced>().is_some(), "{refused}");
        successor.record(&mut task_batch(b"newer")).unwrap();
        // What a new machine restores is the successor's state.
        let state = StateDb::open(&dir.path().join("state")).unwrap();
        assert_eq!(successor.restore(&state, "T", 1).unwrap(), 8);
        assert_eq!(state.get("q/T", b"k").unwrap().as_deref(), Some(&b"newer"[..]));
        // Taking over again, the first server takes a newer epoch and may write.
        zombie.forget_writers();
        zombie.record(&mut task_batch(b"back")).unwrap();
        assert!(successor.record(&mut task_batch(b"late")).unwrap_err().downcast_ref::<Fenced>().is_some());
    }
}
