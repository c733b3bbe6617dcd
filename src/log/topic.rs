//! A topic: a name, its configuration and its partitions, stored as
//! `topics/<name>/topic.json` plus one directory per partition.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::partition::PartitionLog;
use super::LogError;

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TopicConfig {
    pub segment_bytes: u64,
    pub index_interval_bytes: u64,
    pub flush: FlushPolicy,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig { segment_bytes: 256 * 1024 * 1024, index_interval_bytes: 4096, flush: FlushPolicy::Always }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TopicMeta {
    name: String,
    partitions: i32,
    config: TopicConfig,
}

pub struct Topic {
    name: String,
    dir: PathBuf,
    config: TopicConfig,
    partitions: Vec<Arc<PartitionLog>>,
}

/// Checks a topic name against Kafka's rules.
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
    pub(crate) fn create(dir: &Path, name: &str, partitions: i32, config: TopicConfig) -> Result<Topic, LogError> {
        if partitions < 1 {
            return Err(LogError::InvalidPartitions { topic: name.to_string(), partitions });
        }
        std::fs::create_dir_all(dir).map_err(|e| LogError::io(format!("creating {}", dir.display()), e))?;
        let meta = TopicMeta { name: name.to_string(), partitions, config: config.clone() };
        let parts = (0..partitions)
            .map(|p| PartitionLog::open(name, p, &dir.join(p.to_string()), config.clone()).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let bytes = serde_json::to_vec_pretty(&meta).map_err(|e| LogError::io("encoding topic metadata", e.into()))?;
        super::write_file_durably(&dir.join("topic.json"), &bytes)?;
        Ok(Topic { name: name.to_string(), dir: dir.to_path_buf(), config, partitions: parts })
    }

    /// Opens an existing topic directory; `None` if it holds no topic metadata.
    pub(crate) fn open(dir: &Path) -> Result<Option<Topic>, LogError> {
        let meta_path = dir.join("topic.json");
        let bytes = match std::fs::read(&meta_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LogError::io(format!("reading {}", meta_path.display()), e)),
        };
        let meta: TopicMeta = serde_json::from_slice(&bytes).map_err(|e| LogError::Corrupt {
            what: meta_path.display().to_string(),
            detail: e.to_string(),
        })?;
        let parts = (0..meta.partitions)
            .map(|p| PartitionLog::open(&meta.name, p, &dir.join(p.to_string()), meta.config.clone()).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Topic { name: meta.name, dir: dir.to_path_buf(), config: meta.config, partitions: parts }))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &TopicConfig {
        &self.config
    }

    pub fn partition_count(&self) -> i32 {
        self.partitions.len() as i32
    }

    pub fn partitions(&self) -> &[Arc<PartitionLog>] {
        &self.partitions
    }

    pub fn partition(&self, id: i32) -> Result<&Arc<PartitionLog>, LogError> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.partitions.get(i))
            .ok_or_else(|| LogError::UnknownPartition { topic: self.name.clone(), partition: id })
    }

    /// Sum of end offsets minus start offsets: the records currently stored.
    pub fn record_count(&self) -> i64 {
        self.partitions.iter().map(|p| p.end_offset() - p.start_offset()).sum()
    }
}
