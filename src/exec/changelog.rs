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

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;

use super::ExecError;
use crate::log::{BatchBuilder, CleanupPolicy, Log, Topic, TopicConfig};
use crate::state::{CHECKPOINTS, StateBatch, StateDb, StateJournal};

/// State writes read back per restore batch.
const RESTORE_BATCH: usize = 10_000;

/// The changelog topic of a task (`/` in stage names becomes `-`).
pub fn changelog_topic(log: &Log, task: &str) -> String {
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
    topics: Mutex<HashMap<String, Arc<Topic>>>,
}

impl Changelogs {
    pub fn new(log: Arc<Log>) -> Changelogs {
        Changelogs { log, topics: Mutex::new(HashMap::new()) }
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

    /// Rebuilds a task's state from its changelog partition (when it has one). Blocking.
    pub fn restore(&self, state: &StateDb, task: &str, partition: i32) -> Result<u64, ExecError> {
        let Some(topic) = self.log.get_topic(&changelog_topic(&self.log, task)) else { return Ok(0) };
        let part = topic.partition(partition)?.clone();
        let mut batch = StateBatch::default();
        let mut families: HashSet<String> = HashSet::new();
        let mut restored = 0u64;
        let mut failed = None;
        crate::log::replay::replay(part.as_ref(), part.start_offset(), |seen| {
            if failed.is_some() {
                return;
            }
            let Ok(r) = seen else {
                tracing::error!(task, partition, "skipping a changelog record that cannot be read");
                return;
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
            if batch.len() >= RESTORE_BATCH
                && let Err(e) = state.write_restored(std::mem::take(&mut batch))
            {
                failed = Some(e);
            }
        })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        state.write_restored(batch)?;
        if restored > 0 {
            tracing::info!(task, partition, records = restored, "restored the task's state from its changelog");
        }
        Ok(restored)
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

impl StateJournal for Changelogs {
    /// Appends a task's batch (one that commits a checkpoint) to its changelog partition;
    /// other batches (a dropped query's clean-up) are not the task's state.
    fn record(&self, batch: &StateBatch) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let owner = batch.ops().find_map(|(family, key, value)| (family == CHECKPOINTS && value.is_some()).then(|| checkpoint_owner(key)).flatten());
        let Some((task, source_topic, partition)) = owner else { return Ok(()) };
        let topic = self.topic(task, source_topic)?;
        let part = topic.partition(partition)?;
        let now = chrono::Utc::now().timestamp_millis();
        let mut records = BatchBuilder::default();
        for (family, key, value) in batch.ops() {
            records.push(now, Some(&encode_key(family, key)), value, &[]);
        }
        part.append(records.finish())?;
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
}
