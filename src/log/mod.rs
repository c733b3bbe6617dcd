//! The partitioned log: topics of ordered partitions stored as Kafka v2 record batches in
//! segment files, committed offsets, and idempotent-producer state. Knows nothing of SQL.
//!
//! All methods that touch files are blocking; async callers run them on blocking threads.

pub mod batch;
pub mod cleaner;
pub mod compression;
pub mod groups;
pub mod maintenance;
pub mod murmur2;
pub mod offsets;
pub mod partition;
pub mod producer;
pub mod segment;
pub mod topic;
pub mod varint;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

pub use batch::{BatchBuilder, BatchError, BatchHeader, Record, RecordIter};
pub use offsets::{CommittedOffset, OffsetStore};
pub use partition::{AppendOutcome, AppendTicket, PartitionLog};
pub use producer::AbortedTxn;
pub use topic::{CleanupPolicy, FlushPolicy, INTERNAL_TOPIC_PREFIX, Topic, TopicConfig, is_internal_topic, validate_topic_name};

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("topic '{0}' does not exist; create it first (CREATE STREAM ... WITH (kafka_topic=..., partitions=N))")]
    UnknownTopic(String),
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    #[error("invalid topic name '{name}': {reason}")]
    InvalidTopicName { name: String, reason: String },
    #[error("topic '{topic}' cannot have {partitions} partitions; use 1 or more")]
    InvalidPartitions { topic: String, partitions: i32 },
    #[error("topic '{topic}' has no partition {partition}")]
    UnknownPartition { topic: String, partition: i32 },
    #[error("offset {offset} is out of range for {topic}-{partition}: stored offsets are {start}..{end}")]
    OffsetOutOfRange { topic: String, partition: i32, offset: i64, start: i64, end: i64 },
    #[error("a record batch must hold at least one record")]
    EmptyBatch,
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("producer {producer_id} with epoch {epoch} is fenced by a newer epoch {current_epoch}")]
    ProducerFenced { producer_id: i64, epoch: i16, current_epoch: i16 },
    #[error("out-of-order sequence from producer {producer_id} on {topic}-{partition}: expected {expected}, received {received}")]
    OutOfOrderSequence { topic: String, partition: i32, producer_id: i64, expected: i32, received: i32 },
    #[error("{what} is corrupt: {detail}; restore it from a backup or remove it to start empty")]
    Corrupt { what: String, detail: String },
    #[error("I/O error {context}: {source}; check that the data directory is writable and the disk is not full")]
    Io { context: String, source: std::io::Error },
}

impl LogError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> LogError {
        LogError::Io { context: context.into(), source }
    }
}

/// Writes a whole file so that after a crash either the old or the new content is there:
/// temporary file, fsync, rename, fsync of the directory.
pub fn write_file_durably(path: &Path, bytes: &[u8]) -> Result<(), LogError> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| LogError::io(format!("creating {}", tmp.display()), e))?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| LogError::io(format!("writing {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path).map_err(|e| LogError::io(format!("renaming {}", tmp.display()), e))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), LogError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| LogError::io(format!("syncing directory {}", dir.display()), e))
}

/// The set of topics under one data directory, and their committed offsets.
pub struct Log {
    topics_dir: PathBuf,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    offsets: OffsetStore,
    defaults: TopicConfig,
}

impl Log {
    /// Opens the log under `dir` (creating it), recovering every partition.
    pub fn open(dir: &Path, defaults: TopicConfig) -> Result<Log, LogError> {
        let topics_dir = dir.join("topics");
        std::fs::create_dir_all(&topics_dir).map_err(|e| LogError::io(format!("creating data directory {}", topics_dir.display()), e))?;
        let mut topics = BTreeMap::new();
        for entry in std::fs::read_dir(&topics_dir).map_err(|e| LogError::io(format!("listing {}", topics_dir.display()), e))? {
            let entry = entry.map_err(|e| LogError::io(format!("listing {}", topics_dir.display()), e))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with(".deleted-") {
                let _ = std::fs::remove_dir_all(&path);
                continue;
            }
            if !path.is_dir() {
                continue;
            }
            if let Some(topic) = Topic::open(&path)? {
                topics.insert(topic.name().to_string(), Arc::new(topic));
            } else {
                // A topic whose creation did not finish.
                let _ = std::fs::remove_dir_all(&path);
            }
        }
        let offsets = OffsetStore::open(&dir.join("offsets"))?;
        Ok(Log { topics_dir, topics: RwLock::new(topics), offsets, defaults })
    }

    pub fn defaults(&self) -> &TopicConfig {
        &self.defaults
    }

    pub fn offsets(&self) -> &OffsetStore {
        &self.offsets
    }

    /// Creates a topic with the server defaults overridden by `config`.
    pub fn create_topic(&self, name: &str, partitions: i32, config: TopicConfig) -> Result<Arc<Topic>, LogError> {
        validate_topic_name(name)?;
        let mut topics = self.topics.write();
        if topics.contains_key(name) {
            return Err(LogError::TopicExists(name.to_string()));
        }
        let topic = Arc::new(Topic::create(&self.topics_dir.join(name), name, partitions, config)?);
        sync_dir(&self.topics_dir)?;
        topics.insert(name.to_string(), topic.clone());
        Ok(topic)
    }

    pub fn topic(&self, name: &str) -> Result<Arc<Topic>, LogError> {
        self.get_topic(name).ok_or_else(|| LogError::UnknownTopic(name.to_string()))
    }

    pub fn get_topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().get(name).cloned()
    }

    pub fn topics(&self) -> Vec<Arc<Topic>> {
        self.topics.read().values().cloned().collect()
    }

    /// Deletes a topic and its data. Readers holding it see `is_deleted()`.
    pub fn delete_topic(&self, name: &str) -> Result<(), LogError> {
        let topic = self.topics.write().remove(name).ok_or_else(|| LogError::UnknownTopic(name.to_string()))?;
        for p in topic.partitions() {
            p.mark_deleted();
        }
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let trash = self.topics_dir.join(format!(".deleted-{name}-{nanos}"));
        std::fs::rename(topic.dir(), &trash).map_err(|e| LogError::io(format!("deleting topic {name}"), e))?;
        sync_dir(&self.topics_dir)?;
        let _ = std::fs::remove_dir_all(&trash);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_survive_reopen_and_deletion_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = Log::open(dir.path(), TopicConfig::default()).unwrap();
            let t = log.create_topic("a", 3, TopicConfig::default()).unwrap();
            let mut b = BatchBuilder::default();
            b.push(1, None, Some(b"x"), &[]);
            t.partition(2).unwrap().append(b.finish()).unwrap();
            log.create_topic("b", 1, TopicConfig::default()).unwrap();
            assert!(matches!(log.create_topic("a", 1, TopicConfig::default()), Err(LogError::TopicExists(_))));
            log.delete_topic("b").unwrap();
        }
        let log = Log::open(dir.path(), TopicConfig::default()).unwrap();
        let names: Vec<_> = log.topics().iter().map(|t| t.name().to_string()).collect();
        assert_eq!(names, vec!["a"]);
        assert_eq!(log.topic("a").unwrap().partition(2).unwrap().end_offset(), 1);
    }

    #[test]
    fn bad_topic_names_are_rejected_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), TopicConfig::default()).unwrap();
        let err = log.create_topic("a/b", 1, TopicConfig::default()).unwrap_err();
        assert!(err.to_string().contains("use only ASCII letters"), "{err}");
    }
}
