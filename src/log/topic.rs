//! A topic: a name, its configuration and its partitions, stored as
//! `topics/<name>/topic.json` plus one directory per partition.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::LogError;
use super::partition::PartitionLog;
use super::storage::OpenFiles;
use super::store::PartitionStore;

/// When appended data is forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlushPolicy {
    /// fsync before an append is acknowledged.
    Always,
    /// fsync when at least this many milliseconds passed since the last one.
    Interval(u64),
    /// Leave it to the operating system.
    Never,
}

impl FlushPolicy {
    /// Parses `always`, `never` or `interval` (with a period in ms).
    pub fn parse(s: &str, interval_ms: Option<u64>) -> Result<FlushPolicy, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "always" => Ok(FlushPolicy::Always),
            "never" => Ok(FlushPolicy::Never),
            "interval" => Ok(FlushPolicy::Interval(interval_ms.unwrap_or(1000))),
            other => Err(format!("unknown flush policy '{other}'; use 'always', 'interval' or 'never'")),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            FlushPolicy::Always => "always",
            FlushPolicy::Interval(_) => "interval",
            FlushPolicy::Never => "never",
        }
    }
}

/// What happens to old records: `delete` (retention), `compact` (latest per key), or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupPolicy {
    pub delete: bool,
    pub compact: bool,
}

impl CleanupPolicy {
    pub const DELETE: CleanupPolicy = CleanupPolicy { delete: true, compact: false };

    /// Parses Kafka's `cleanup.policy`: `delete`, `compact` or `compact,delete`.
    pub fn parse(s: &str) -> Result<CleanupPolicy, String> {
        let mut p = CleanupPolicy { delete: false, compact: false };
        for part in s.split(',').map(|x| x.trim().to_ascii_lowercase()) {
            match part.as_str() {
                "delete" => p.delete = true,
                "compact" => p.compact = true,
                other => {
                    return Err(format!("unknown cleanup policy '{other}'; use 'delete', 'compact' or 'compact,delete'"));
                }
            }
        }
        if !p.delete && !p.compact {
            return Err("cleanup policy is empty; use 'delete', 'compact' or 'compact,delete'".into());
        }
        Ok(p)
    }

    pub fn name(&self) -> &'static str {
        match (self.compact, self.delete) {
            (true, true) => "compact,delete",
            (true, false) => "compact",
            _ => "delete",
        }
    }
}

impl Default for CleanupPolicy {
    fn default() -> Self {
        CleanupPolicy::DELETE
    }
}

/// A topic's configuration (Kafka's topic configs, with Kafka's defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TopicConfig {
    /// `segment.bytes`: roll the active segment at this size.
    pub segment_bytes: u64,
    /// `segment.ms`: roll the active segment when its first record is this old.
    pub segment_ms: u64,
    /// `index.interval.bytes`: bytes between offset/time index entries.
    pub index_interval_bytes: u64,
    pub flush: FlushPolicy,
    /// `retention.ms`: delete segments whose newest record is older; None keeps forever.
    pub retention_ms: Option<i64>,
    /// `retention.bytes`: delete the oldest segments while the partition is larger; None: no limit.
    pub retention_bytes: Option<u64>,
    /// `cleanup.policy`.
    pub cleanup: CleanupPolicy,
    /// `delete.retention.ms`: how long compaction keeps tombstones.
    pub delete_retention_ms: i64,
    /// `compression.type`: how Eddy compresses the batches it writes into this topic.
    pub compression: String,
    /// Delete sealed segments once every consumer group with committed offsets on the
    /// partition has committed past them (internal repartition topics, as Kafka Streams
    /// purges its repartition topics after each commit).
    pub purge_committed: bool,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            segment_bytes: 256 * 1024 * 1024,
            segment_ms: 7 * 24 * 3600 * 1000,
            index_interval_bytes: 4096,
            flush: FlushPolicy::Always,
            retention_ms: Some(7 * 24 * 3600 * 1000),
            retention_bytes: None,
            cleanup: CleanupPolicy::DELETE,
            delete_retention_ms: 24 * 3600 * 1000,
            compression: "none".into(),
            purge_committed: false,
        }
    }
}

impl TopicConfig {
    /// The codec for batches Eddy writes into this topic.
    pub fn codec(&self) -> super::batch::Compression {
        super::batch::Compression::parse(&self.compression).unwrap_or(super::batch::Compression::None)
    }

    /// Kafka-style name/value pairs (for DescribeConfigs and the REST API).
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "-1".into());
        vec![
            ("cleanup.policy", self.cleanup.name().to_string()),
            ("compression.type", self.compression.clone()),
            ("delete.retention.ms", self.delete_retention_ms.to_string()),
            ("flush", self.flush.name().to_string()),
            (
                "flush.ms",
                match self.flush {
                    FlushPolicy::Interval(ms) => ms.to_string(),
                    FlushPolicy::Always => "0".into(),
                    FlushPolicy::Never => "-1".into(),
                },
            ),
            ("retention.bytes", opt(self.retention_bytes.map(|v| v.to_string()))),
            ("retention.ms", opt(self.retention_ms.map(|v| v.to_string()))),
            ("segment.bytes", self.segment_bytes.to_string()),
            ("segment.ms", self.segment_ms.to_string()),
        ]
        .into_iter()
        .chain(self.purge_committed.then(|| ("eddy.purge.committed", "true".to_string())))
        .collect()
    }

    /// Applies one Kafka-style setting (`retention.ms`, `cleanup.policy`, ...).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let key = name.trim().to_ascii_lowercase().replace('_', ".");
        let num = |v: &str| v.trim().parse::<i64>().map_err(|_| format!("{name} must be a whole number, got '{v}'"));
        match key.as_str() {
            "segment.bytes" => {
                let n = num(value)?;
                if n < 1024 {
                    return Err(format!("segment.bytes must be at least 1024, got {n}"));
                }
                self.segment_bytes = n as u64;
            }
            "segment.ms" => self.segment_ms = num(value)?.max(1) as u64,
            "index.interval.bytes" => self.index_interval_bytes = num(value)?.max(1) as u64,
            "retention.ms" => self.retention_ms = Some(num(value)?).filter(|v| *v >= 0),
            "retention.bytes" => self.retention_bytes = Some(num(value)?).filter(|v| *v >= 0).map(|v| v as u64),
            "cleanup.policy" => self.cleanup = CleanupPolicy::parse(value)?,
            "delete.retention.ms" => self.delete_retention_ms = num(value)?.max(0),
            "compression.type" | "compression" => {
                super::batch::Compression::parse(value).ok_or_else(|| format!("unknown compression '{value}'; use none, gzip, snappy, lz4 or zstd"))?;
                self.compression = value.trim().to_ascii_lowercase();
            }
            "flush" => {
                let interval = match self.flush {
                    FlushPolicy::Interval(ms) => Some(ms),
                    _ => None,
                };
                self.flush = FlushPolicy::parse(value, interval)?;
            }
            "flush.ms" | "flush.interval.ms" => self.flush = FlushPolicy::Interval(num(value)?.max(1) as u64),
            other => return Err(format!("unknown topic configuration '{other}'")),
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TopicMeta {
    name: String,
    partitions: i32,
    config: TopicConfig,
}

/// A topic: its partitions, wherever they are kept. A topic of the data directory also
/// has its local partitions (for the Kafka listener and maintenance); a topic of a Kafka
/// cluster has none.
pub struct Topic {
    name: String,
    dir: Option<PathBuf>,
    config: TopicConfig,
    partitions: Vec<Arc<dyn PartitionStore>>,
    local: Vec<Arc<PartitionLog>>,
}

/// Prefix of the topics an Eddy server on its data directory keeps for itself (the command
/// topic, repartition and other query-internal topics). Kafka clients may read them but
/// not write or delete them. Servers on a Kafka cluster name theirs after their service
/// ([`service_prefix`]).
pub const INTERNAL_TOPIC_PREFIX: &str = "_eddy_";

/// The prefix of the internal topics of the Eddy servers of service `service_id` on a
/// Kafka cluster (as ksqlDB's `_confluent-ksql-<service id>`): services sharing a cluster,
/// and an Eddy serving as the cluster's broker, never share an internal topic.
pub fn service_prefix(service_id: &str) -> String {
    format!("_eddy-{}_", service_id.trim_end_matches('_'))
}

pub fn validate_topic_name(name: &str) -> Result<(), LogError> {
    let bad = |reason: &str| Err(LogError::InvalidTopicName { name: name.to_string(), reason: reason.to_string() });
    if name.is_empty() {
        return bad("it is empty");
    }
    if name == "." || name == ".." {
        return bad("'.' and '..' are reserved");
    }
    if name.len() > 249 {
        return bad("it is longer than 249 characters");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-') {
        return bad("use only ASCII letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

impl std::fmt::Debug for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topic").field("name", &self.name).field("partitions", &self.partitions.len()).finish()
    }
}

impl Topic {
    /// Creates a new topic directory with `partitions` empty partitions.
    pub(crate) fn create(files: &Arc<OpenFiles>, dir: &Path, name: &str, partitions: i32, config: TopicConfig) -> Result<Topic, LogError> {
        if partitions < 1 {
            return Err(LogError::InvalidPartitions { topic: name.to_string(), partitions });
        }
        std::fs::create_dir_all(dir).map_err(|e| LogError::io(format!("creating {}", dir.display()), e))?;
        let meta = TopicMeta { name: name.to_string(), partitions, config: config.clone() };
        let parts = (0..partitions)
            .map(|p| PartitionLog::open_with(files, name, p, &dir.join(p.to_string()), config.clone()).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let bytes = serde_json::to_vec_pretty(&meta).map_err(|e| LogError::io("encoding topic metadata", e.into()))?;
        super::write_file_durably(&dir.join("topic.json"), &bytes)?;
        Ok(Topic::local(name.to_string(), dir.to_path_buf(), config, parts))
    }

    /// Opens an existing topic directory; `None` if it holds no topic metadata.
    pub(crate) fn open(files: &Arc<OpenFiles>, dir: &Path, policy: Option<&super::ConfigPolicy>) -> Result<Option<Topic>, LogError> {
        let meta_path = dir.join("topic.json");
        let bytes = match std::fs::read(&meta_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LogError::io(format!("reading {}", meta_path.display()), e)),
        };
        let mut meta: TopicMeta =
            serde_json::from_slice(&bytes).map_err(|e| LogError::Corrupt { what: meta_path.display().to_string(), detail: e.to_string() })?;
        if let Some(policy) = policy {
            let mut config = meta.config.clone();
            policy(&meta.name, &mut config);
            if config != meta.config {
                tracing::info!(topic = %meta.name, "bringing the settings of an internal topic up to date: {:?}", config.entries());
                meta.config = config;
                let bytes = serde_json::to_vec_pretty(&meta).map_err(|e| LogError::io("encoding topic metadata", e.into()))?;
                super::write_file_durably(&meta_path, &bytes)?;
            }
        }
        let parts = (0..meta.partitions)
            .map(|p| PartitionLog::open_with(files, &meta.name, p, &dir.join(p.to_string()), meta.config.clone()).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Topic::local(meta.name, dir.to_path_buf(), meta.config, parts)))
    }

    fn local(name: String, dir: PathBuf, config: TopicConfig, local: Vec<Arc<PartitionLog>>) -> Topic {
        let partitions = local.iter().map(|p| Arc::clone(p) as Arc<dyn PartitionStore>).collect();
        Topic { name, dir: Some(dir), config, partitions, local }
    }

    /// A topic kept by a Kafka cluster.
    pub(crate) fn remote(name: String, config: TopicConfig, partitions: Vec<Arc<dyn PartitionStore>>) -> Topic {
        Topic { name, dir: None, config, partitions, local: Vec::new() }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The topic's directory (None for a topic of a Kafka cluster).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    pub fn config(&self) -> &TopicConfig {
        &self.config
    }

    pub fn partition_count(&self) -> i32 {
        self.partitions.len() as i32
    }

    pub fn partitions(&self) -> &[Arc<dyn PartitionStore>] {
        &self.partitions
    }

    pub fn partition(&self, id: i32) -> Result<&Arc<dyn PartitionStore>, LogError> {
        usize::try_from(id).ok().and_then(|i| self.partitions.get(i)).ok_or_else(|| LogError::UnknownPartition { topic: self.name.clone(), partition: id })
    }

    /// The partitions in the data directory (none for a topic of a Kafka cluster).
    pub fn local_partitions(&self) -> &[Arc<PartitionLog>] {
        &self.local
    }

    /// A partition in the data directory.
    pub fn local_partition(&self, id: i32) -> Result<&Arc<PartitionLog>, LogError> {
        usize::try_from(id).ok().and_then(|i| self.local.get(i)).ok_or_else(|| LogError::UnknownPartition { topic: self.name.clone(), partition: id })
    }

    /// Sum of end offsets minus start offsets: the records currently stored.
    pub fn record_count(&self) -> i64 {
        self.partitions.iter().map(|p| p.end_offset() - p.start_offset()).sum()
    }
}
