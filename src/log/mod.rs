//! The partitioned log: topics of ordered partitions stored as Kafka v2 record batches in
//! segment files, committed offsets, and idempotent-producer state. Knows nothing of SQL.
//!
//! All methods that touch files are blocking; async callers run them on blocking threads.

pub mod batch;
pub mod cleaner;
pub mod cluster;
pub mod compression;
pub mod groups;
pub mod maintenance;
pub mod murmur2;
pub mod offsets;
pub mod partition;
pub mod producer;
pub mod replay;
pub mod segment;
pub mod storage;
pub mod store;
pub mod topic;
pub mod varint;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

use storage::OpenFiles;

pub use batch::{BatchBuilder, BatchError, BatchHeader, Record, RecordIter};
pub use cluster::{Cluster, TransactionalWriter};
pub use offsets::{CommittedOffset, OffsetStore};
pub use partition::{AppendOutcome, AppendTicket, PartitionLog};
pub use producer::AbortedTxn;
pub use store::{PartitionStore, ProducerSequence};
pub use topic::{CleanupPolicy, FlushPolicy, INTERNAL_TOPIC_PREFIX, Topic, TopicConfig, service_prefix, validate_topic_name};

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
    #[error("topic '{topic}' cannot have {partitions} partitions: {limit}")]
    TooManyPartitions { topic: String, partitions: i64, limit: String },
    #[error("{what} is corrupt: {detail}; restore it from a backup or remove it to start empty")]
    Corrupt { what: String, detail: String },
    #[error(
        "insufficient space on the disk of the data directory ({context}: {source}); nothing was written: free disk space or move the data directory \
            to a larger disk, then retry"
    )]
    DiskFull { context: String, source: std::io::Error },
    #[error("partition {topic}-{partition} refuses writes: {reason}; restart the server to recover it from what is on disk")]
    PartitionOffline { topic: String, partition: i32, reason: String },
    #[error("I/O error {context}: {source}; check that the data directory is writable and the disk is not full")]
    Io { context: String, source: std::io::Error },
    /// The Kafka cluster keeping the topics did not do what was asked.
    #[error("the Kafka cluster at {bootstrap} could not {action}: {source}")]
    Cluster {
        bootstrap: String,
        action: String,
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// A transactional producer was replaced by a newer one with its id (another server
    /// runs the task now), or its transaction passed its timeout.
    #[error(
        "transactional producer '{transactional_id}' was fenced: another server took its task over, or its transaction ran past its timeout; \
            the task starts over from what was committed"
    )]
    TransactionFenced { transactional_id: String },
    /// A partition kept by a Kafka cluster could not be read or written.
    #[error("partition {topic}-{partition} on the Kafka cluster: {source}")]
    Remote {
        topic: String,
        partition: i32,
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
}

impl LogError {
    /// An I/O error while `context`; a full disk (ENOSPC, EDQUOT) becomes `DiskFull`.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> LogError {
        let full = source.kind() == std::io::ErrorKind::StorageFull || matches!(source.raw_os_error(), Some(28) | Some(122));
        if full { LogError::DiskFull { context: context.into(), source } } else { LogError::Io { context: context.into(), source } }
    }

    /// Whether the error is the disk's (I/O, full disk, an offline partition) rather than
    /// the request's.
    pub fn is_storage(&self) -> bool {
        matches!(self, LogError::Io { .. } | LogError::DiskFull { .. } | LogError::PartitionOffline { .. } | LogError::Corrupt { .. })
    }

    /// The same error again, for each of several waiters (I/O errors keep their kind and
    /// message).
    pub fn shared(&self) -> LogError {
        let copy = |e: &std::io::Error| match e.raw_os_error() {
            Some(code) => std::io::Error::from_raw_os_error(code),
            None => std::io::Error::new(e.kind(), e.to_string()),
        };
        match self {
            LogError::UnknownTopic(t) => LogError::UnknownTopic(t.clone()),
            LogError::TopicExists(t) => LogError::TopicExists(t.clone()),
            LogError::InvalidTopicName { name, reason } => LogError::InvalidTopicName { name: name.clone(), reason: reason.clone() },
            LogError::InvalidPartitions { topic, partitions } => LogError::InvalidPartitions { topic: topic.clone(), partitions: *partitions },
            LogError::UnknownPartition { topic, partition } => LogError::UnknownPartition { topic: topic.clone(), partition: *partition },
            LogError::OffsetOutOfRange { topic, partition, offset, start, end } => {
                LogError::OffsetOutOfRange { topic: topic.clone(), partition: *partition, offset: *offset, start: *start, end: *end }
            }
            LogError::EmptyBatch => LogError::EmptyBatch,
            LogError::Batch(b) => LogError::Batch(b.clone()),
            LogError::ProducerFenced { producer_id, epoch, current_epoch } => {
                LogError::ProducerFenced { producer_id: *producer_id, epoch: *epoch, current_epoch: *current_epoch }
            }
            LogError::TransactionFenced { transactional_id } => LogError::TransactionFenced { transactional_id: transactional_id.clone() },
            LogError::OutOfOrderSequence { topic, partition, producer_id, expected, received } => LogError::OutOfOrderSequence {
                topic: topic.clone(),
                partition: *partition,
                producer_id: *producer_id,
                expected: *expected,
                received: *received,
            },
            LogError::TooManyPartitions { topic, partitions, limit } => {
                LogError::TooManyPartitions { topic: topic.clone(), partitions: *partitions, limit: limit.clone() }
            }
            LogError::Corrupt { what, detail } => LogError::Corrupt { what: what.clone(), detail: detail.clone() },
            LogError::DiskFull { context, source } => LogError::DiskFull { context: context.clone(), source: copy(source) },
            LogError::PartitionOffline { topic, partition, reason } => {
                LogError::PartitionOffline { topic: topic.clone(), partition: *partition, reason: reason.clone() }
            }
            LogError::Io { context, source } => LogError::Io { context: context.clone(), source: copy(source) },
            LogError::Cluster { bootstrap, action, source } => {
                LogError::Cluster { bootstrap: bootstrap.clone(), action: action.clone(), source: source.clone() }
            }
            LogError::Remote { topic, partition, source } => LogError::Remote { topic: topic.clone(), partition: *partition, source: source.clone() },
        }
    }
}

/// How many partitions topics may have; creating more is refused with a clear error
/// rather than exhausting file descriptors or memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionLimits {
    pub per_topic: i64,
    pub total: i64,
}

impl Default for PartitionLimits {
    fn default() -> Self {
        PartitionLimits { per_topic: 1000, total: 10_000 }
    }
}

/// Writes a whole file so that after a crash either the old or the new content is there:
/// temporary file, fsync, rename, fsync of the directory.
pub fn write_file_durably(path: &Path, bytes: &[u8]) -> Result<(), LogError> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let written = std::fs::File::create(&tmp)
        .map_err(|e| LogError::io(format!("creating {}", tmp.display()), e))
        .and_then(|mut f| f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| LogError::io(format!("writing {}", tmp.display()), e)))
        .and_then(|_| std::fs::rename(&tmp, path).map_err(|e| LogError::io(format!("renaming {}", tmp.display()), e)));
    if let Err(e) = written {
        // The old file is untouched; a partial temporary file would only hold disk space.
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), LogError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| LogError::io(format!("syncing directory {}", dir.display()), e))
}

/// Settings a topic must have whatever it was created with (the roles of a caller's
/// internal topics). Applied when a topic is created and each time it is opened, so topics
/// of data directories written by older versions are brought up to date.
pub type ConfigPolicy = Arc<dyn Fn(&str, &mut TopicConfig) + Send + Sync>;

/// How a log reaches its files and what it allows.
#[derive(Clone)]
pub struct LogOptions {
    pub files: Arc<OpenFiles>,
    pub limits: PartitionLimits,
    pub policy: Option<ConfigPolicy>,
    /// How the names of Eddy's own topics begin ([`INTERNAL_TOPIC_PREFIX`] on a data
    /// directory, [`service_prefix`] on a cluster).
    pub internal_prefix: String,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions { files: OpenFiles::os(), limits: PartitionLimits::default(), policy: None, internal_prefix: INTERNAL_TOPIC_PREFIX.to_string() }
    }
}

/// The set of topics under one data directory, or of a Kafka cluster, and the committed
/// offsets (always in the data directory).
pub struct Log {
    topics_dir: PathBuf,
    /// The Kafka cluster keeping the topics; `topics` then caches what it was seen to hold.
    cluster: Option<Arc<dyn Cluster>>,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    offsets: OffsetStore,
    defaults: TopicConfig,
    files: Arc<OpenFiles>,
    limits: PartitionLimits,
    policy: Option<ConfigPolicy>,
    internal_prefix: String,
}

impl Log {
    /// Opens the log under `dir` (creating it) on real files, recovering every partition.
    pub fn open(dir: &Path, defaults: TopicConfig) -> Result<Log, LogError> {
        Log::open_with(dir, defaults, LogOptions::default())
    }

    /// Opens the log under `dir` (creating it), its segment files reached through `files`,
    /// recovering every partition.
    pub fn open_with(dir: &Path, defaults: TopicConfig, options: LogOptions) -> Result<Log, LogError> {
        let LogOptions { files, limits, policy, internal_prefix } = options;
        let topics_dir = dir.join("topics");
        std::fs::create_dir_all(&topics_dir).map_err(|e| LogError::io(format!("creating data directory {}", topics_dir.display()), e))?;
        let mut topics = BTreeMap::new();
        for entry in std::fs::read_dir(&topics_dir).map_err(|e| LogError::io(format!("listing {}", topics_dir.display()), e))? {
            let entry = entry.map_err(|e| LogError::io(format!("listing {}", topics_dir.display()), e))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with(".deleted-") {
                if let Err(e) = std::fs::remove_dir_all(&path) {
                    tracing::warn!(dir = %path.display(), "cannot remove a deleted topic's files: {e}");
                }
                continue;
            }
            if !path.is_dir() {
                continue;
            }
            if let Some(topic) = Topic::open(&files, &path, policy.as_ref())? {
                topics.insert(topic.name().to_string(), Arc::new(topic));
            } else {
                // A topic whose creation did not finish.
                tracing::warn!(dir = %path.display(), "removing a topic directory whose creation did not finish");
                if let Err(e) = std::fs::remove_dir_all(&path) {
                    tracing::warn!(dir = %path.display(), "cannot remove it: {e}");
                }
            }
        }
        let offsets = OffsetStore::open(&dir.join("offsets"))?;
        Ok(Log { topics_dir, cluster: None, topics: RwLock::new(topics), offsets, defaults, files, limits, policy, internal_prefix })
    }

    /// A log whose topics are those of a Kafka cluster; committed offsets stay under `dir`.
    pub fn on_cluster(dir: &Path, defaults: TopicConfig, options: LogOptions, cluster: Arc<dyn Cluster>) -> Result<Log, LogError> {
        let LogOptions { files, limits, policy, internal_prefix } = options;
        std::fs::create_dir_all(dir).map_err(|e| LogError::io(format!("creating data directory {}", dir.display()), e))?;
        let offsets = OffsetStore::open(&dir.join("offsets"))?;
        let log = Log {
            topics_dir: dir.join("topics"),
            cluster: Some(cluster),
            topics: RwLock::new(BTreeMap::new()),
            offsets,
            defaults,
            files,
            limits,
            policy,
            internal_prefix,
        };
        log.topics();
        Ok(log)
    }

    /// How the names of Eddy's own topics begin.
    pub fn internal_prefix(&self) -> &str {
        &self.internal_prefix
    }

    /// Whether a topic is one of this server's own (Kafka clients and SQL may read it but
    /// not write or delete it).
    pub fn is_internal_topic(&self, name: &str) -> bool {
        name.starts_with(&self.internal_prefix)
    }

    /// The Kafka cluster keeping the topics, if the log is on one.
    pub fn cluster(&self) -> Option<&Arc<dyn Cluster>> {
        self.cluster.as_ref()
    }

    /// A topic of the cluster, its settings as Eddy's policy makes them.
    fn remote_topic(&self, cluster: &Arc<dyn Cluster>, name: &str, partitions: i32, mut config: TopicConfig) -> Arc<Topic> {
        if let Some(policy) = &self.policy {
            policy(name, &mut config);
        }
        let parts = (0..partitions).map(|p| cluster.open_partition(name, p)).collect();
        Arc::new(Topic::remote(name.to_string(), config, parts))
    }

    /// The bounded set of open segment files.
    pub fn files(&self) -> &Arc<OpenFiles> {
        &self.files
    }

    pub fn limits(&self) -> PartitionLimits {
        self.limits
    }

    /// Refuses a partition count over the limits (before anything is created).
    pub fn check_partitions(&self, name: &str, partitions: i64) -> Result<(), LogError> {
        if partitions < 1 {
            return Err(LogError::InvalidPartitions { topic: name.to_string(), partitions: partitions.clamp(i64::from(i32::MIN), 0) as i32 });
        }
        if partitions > self.limits.per_topic {
            return Err(LogError::TooManyPartitions {
                topic: name.to_string(),
                partitions,
                limit: format!("a topic may have at most {} (server option --max-partitions-per-topic)", self.limits.per_topic),
            });
        }
        let existing: i64 = self.topics.read().values().map(|t| i64::from(t.partition_count())).sum();
        if existing + partitions > self.limits.total {
            return Err(LogError::TooManyPartitions {
                topic: name.to_string(),
                partitions,
                limit: format!(
                    "the server holds {existing} partitions and allows {} in all (server option --max-partitions); delete unused topics or raise the limit",
                    self.limits.total
                ),
            });
        }
        Ok(())
    }

    pub fn defaults(&self) -> &TopicConfig {
        &self.defaults
    }

    pub fn offsets(&self) -> &OffsetStore {
        &self.offsets
    }

    /// Creates a topic with the server defaults overridden by `config`.
    /// A creation that fails leaves nothing behind.
    pub fn create_topic(&self, name: &str, partitions: i32, mut config: TopicConfig) -> Result<Arc<Topic>, LogError> {
        validate_topic_name(name)?;
        if let Some(policy) = &self.policy {
            policy(name, &mut config);
        }
        self.check_partitions(name, i64::from(partitions))?;
        if let Some(cluster) = &self.cluster {
            cluster.create_topic(name, partitions, &config)?;
            let topic = self.remote_topic(cluster, name, partitions, config);
            self.topics.write().insert(name.to_string(), topic.clone());
            return Ok(topic);
        }
        let mut topics = self.topics.write();
        if topics.contains_key(name) {
            return Err(LogError::TopicExists(name.to_string()));
        }
        let dir = self.topics_dir.join(name);
        let created = Topic::create(&self.files, &dir, name, partitions, config).and_then(|t| sync_dir(&self.topics_dir).map(|_| t));
        let topic = match created {
            Ok(t) => Arc::new(t),
            Err(e) => {
                if let Err(cleanup) = std::fs::remove_dir_all(&dir) {
                    tracing::warn!(dir = %dir.display(), "cannot remove the directory of a topic whose creation failed (removed at the next start): {cleanup}");
                }
                return Err(e);
            }
        };
        topics.insert(name.to_string(), topic.clone());
        Ok(topic)
    }

    /// A topic (asked of the cluster when the log is on one and has not seen it yet).
    pub fn topic(&self, name: &str) -> Result<Arc<Topic>, LogError> {
        if let Some(t) = self.topics.read().get(name) {
            return Ok(t.clone());
        }
        let Some(cluster) = &self.cluster else {
            return Err(LogError::UnknownTopic(name.to_string()));
        };
        let partitions = cluster.partition_count(name)?.ok_or_else(|| LogError::UnknownTopic(name.to_string()))?;
        let topic = self.remote_topic(cluster, name, partitions, self.defaults.clone());
        Ok(self.topics.write().entry(name.to_string()).or_insert(topic).clone())
    }

    /// The topic, created with `partitions` and `config` when there is none (another
    /// server creating it at the same moment is fine).
    pub fn topic_or_create(&self, name: &str, partitions: i32, config: TopicConfig) -> Result<Arc<Topic>, LogError> {
        match self.topic(name) {
            Err(LogError::UnknownTopic(_)) => match self.create_topic(name, partitions, config) {
                Err(LogError::TopicExists(_)) => self.topic(name),
                created => created,
            },
            found => found,
        }
    }

    /// [`Log::topic`], None when it does not exist or the cluster cannot say (logged).
    pub fn get_topic(&self, name: &str) -> Option<Arc<Topic>> {
        match self.topic(name) {
            Ok(t) => Some(t),
            Err(LogError::UnknownTopic(_)) => None,
            Err(e) => {
                tracing::warn!(topic = name, "cannot look the topic up: {e}");
                None
            }
        }
    }

    /// Every topic. On a cluster, what it holds now (what was last seen when it cannot
    /// answer; logged).
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        if let Some(cluster) = &self.cluster {
            match cluster.list_topics() {
                Ok(listed) => {
                    let mut topics = self.topics.write();
                    let names: std::collections::BTreeSet<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
                    topics.retain(|name, t| {
                        let keep = names.contains(name.as_str());
                        if !keep {
                            t.partitions().iter().for_each(|p| p.mark_deleted());
                        }
                        keep
                    });
                    for (name, partitions) in listed {
                        if let std::collections::btree_map::Entry::Vacant(slot) = topics.entry(name) {
                            let topic = self.remote_topic(cluster, slot.key(), partitions, self.defaults.clone());
                            slot.insert(topic);
                        }
                    }
                }
                Err(e) => tracing::warn!("cannot list the cluster's topics (showing those last seen): {e}"),
            }
        }
        self.topics.read().values().cloned().collect()
    }

    /// Deletes a topic and its data. Readers holding it see `is_deleted()`.
    pub fn delete_topic(&self, name: &str) -> Result<(), LogError> {
        if let Some(cluster) = &self.cluster {
            cluster.delete_topic(name)?;
            if let Some(topic) = self.topics.write().remove(name) {
                topic.partitions().iter().for_each(|p| p.mark_deleted());
            }
            return Ok(());
        }
        let topic = self.topics.write().remove(name).ok_or_else(|| LogError::UnknownTopic(name.to_string()))?;
        for p in topic.partitions() {
            p.mark_deleted();
        }
        let Some(dir) = topic.dir() else { return Ok(()) };
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let trash = self.topics_dir.join(format!(".deleted-{name}-{nanos}"));
        std::fs::rename(dir, &trash).map_err(|e| LogError::io(format!("deleting topic {name}"), e))?;
        sync_dir(&self.topics_dir)?;
        // The rename made the deletion durable; what is left is removed at the next start.
        if let Err(e) = std::fs::remove_dir_all(&trash) {
            tracing::warn!(dir = %trash.display(), "cannot remove a deleted topic's files now (removed at the next start): {e}");
        }
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

    #[test]
    fn a_failed_topic_creation_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let storage = storage::FaultyStorage::default();
        let files = OpenFiles::new(Arc::new(storage.clone()), 16);
        let log = Log::open_with(dir.path(), TopicConfig::default(), LogOptions { files, ..LogOptions::default() }).unwrap();
        let t = log.create_topic("ok", 2, TopicConfig::default()).unwrap();
        assert_eq!(t.partition_count(), 2);
        // Six partitions are created, then the process runs out of file descriptors.
        storage.faults.creates_left.store(6, std::sync::atomic::Ordering::Release);
        let err = log.create_topic("big", 8, TopicConfig::default()).unwrap_err();
        assert!(err.is_storage(), "{err}");
        assert!(!dir.path().join("topics").join("big").exists(), "the half-created topic's directory was removed");
        assert!(log.get_topic("big").is_none());
        storage.faults.creates_left.store(-1, std::sync::atomic::Ordering::Release);
        log.create_topic("big", 8, TopicConfig::default()).unwrap();
        drop(log);
        let log = Log::open(dir.path(), TopicConfig::default()).unwrap();
        assert_eq!(log.topic("big").unwrap().partition_count(), 8);
    }

    #[test]
    fn partition_counts_over_the_limits_are_refused_before_anything_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let limits = PartitionLimits { per_topic: 10, total: 15 };
        let log = Log::open_with(dir.path(), TopicConfig::default(), LogOptions { limits, ..LogOptions::default() }).unwrap();
        let err = log.create_topic("huge", 100_000, TopicConfig::default()).unwrap_err();
        assert!(err.to_string().contains("at most 10"), "{err}");
        assert!(!dir.path().join("topics").join("huge").exists());
        log.create_topic("a", 10, TopicConfig::default()).unwrap();
        let err = log.create_topic("b", 6, TopicConfig::default()).unwrap_err();
        assert!(err.to_string().contains("holds 10 partitions"), "{err}");
        log.create_topic("b", 5, TopicConfig::default()).unwrap();
    }

    #[test]
    fn the_config_policy_applies_at_creation_and_upgrades_topics_at_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = Log::open(dir.path(), TopicConfig::default()).unwrap();
            log.create_topic("_internal", 1, TopicConfig::default()).unwrap();
        }
        let keep_forever: ConfigPolicy = Arc::new(|name: &str, c: &mut TopicConfig| {
            if name.starts_with('_') {
                c.retention_ms = None;
            }
        });
        let options = || LogOptions { policy: Some(keep_forever.clone()), ..LogOptions::default() };
        let log = Log::open_with(dir.path(), TopicConfig::default(), options()).unwrap();
        assert_eq!(log.topic("_internal").unwrap().config().retention_ms, None, "upgraded at open");
        log.create_topic("_new", 1, TopicConfig { retention_ms: Some(5), ..TopicConfig::default() }).unwrap();
        assert_eq!(log.topic("_new").unwrap().config().retention_ms, None, "applied at creation");
        assert!(log.create_topic("user", 1, TopicConfig { retention_ms: Some(5), ..TopicConfig::default() }).unwrap().config().retention_ms == Some(5));
        drop(log);
        let log = Log::open(dir.path(), TopicConfig::default()).unwrap();
        assert_eq!(log.topic("_internal").unwrap().config().retention_ms, None, "the upgrade was written to disk");
    }
}
