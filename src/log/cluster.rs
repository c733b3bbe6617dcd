//! A Kafka cluster keeping a log's topics in place of the data directory
//! (`eddy server --kafka-bootstrap`). The log layer only names what it needs of one; the
//! Kafka client (`kafka_client::cluster`) provides it. Blocking, like the rest of the log.

use std::sync::Arc;

use super::batch::ProducerStamp;
use super::{AppendOutcome, LogError, PartitionStore, TopicConfig};

/// The topics of a Kafka cluster.
pub trait Cluster: Send + Sync {
    /// The bootstrap servers, for messages.
    fn bootstrap(&self) -> &str;
    /// Every topic and its partition count.
    fn list_topics(&self) -> Result<Vec<(String, i32)>, LogError>;
    /// A topic's partition count; None when the cluster has no such topic.
    fn partition_count(&self, topic: &str) -> Result<Option<i32>, LogError>;
    /// Creates a topic with the cluster's replication factor (or the one configured).
    /// `LogError::TopicExists` when it exists.
    fn create_topic(&self, name: &str, partitions: i32, config: &TopicConfig) -> Result<(), LogError>;
    fn delete_topic(&self, name: &str) -> Result<(), LogError>;
    /// One partition of a topic, for reading and writing.
    fn open_partition(&self, topic: &str, id: i32) -> Arc<dyn PartitionStore>;
    /// The transactional producer of `transactional_id`, registered with the cluster: a
    /// producer that held the id before is fenced and its open transaction aborted.
    fn transactional_writer(&self, transactional_id: &str, timeout_ms: i32) -> Result<Arc<dyn TransactionalWriter>, LogError>;
    /// A consumer group's committed positions of a topic's partitions (None: none).
    fn committed_offsets(&self, group: &str, topic: &str, partitions: &[i32]) -> Result<Vec<(i32, Option<i64>)>, LogError>;
    /// Deletes the consumer groups whose id `doomed` picks (with their committed offsets).
    fn delete_groups(&self, doomed: &dyn Fn(&str) -> bool) -> Result<(), LogError>;
}

/// One transactional producer on a cluster (Kafka's exactly-once producer): the records it
/// appends and the consumer offsets it commits become visible to read-committed readers
/// together when its transaction commits, or never. A transaction opens with the first
/// append. Blocking.
pub trait TransactionalWriter: Send + Sync {
    /// The transactional id.
    fn id(&self) -> &str;
    /// The stamp of the next batch of `records` records to `topic`/`partition` (which joins
    /// the open transaction first); build the batch with it, marked transactional.
    fn stamp(&self, topic: &str, partition: i32, records: i32) -> Result<ProducerStamp, LogError>;
    /// Appends a batch built with [`TransactionalWriter::stamp`].
    fn append(&self, topic: &str, partition: i32, batch: Vec<u8>) -> Result<AppendOutcome, LogError>;
    /// Commits the open transaction with these consumer offsets (group, topic, partition,
    /// next offset to read).
    fn commit(&self, offsets: &[(&str, &str, i32, i64)]) -> Result<(), LogError>;
    /// Whether a transaction is open, or failed part-way (and must be aborted before the
    /// producer writes again).
    fn is_open(&self) -> bool;
    /// Registers the id again (a new epoch): ends whatever this producer or a newer one
    /// left open, and makes this one the current producer of the id. For a task that
    /// failed part-way, or was fenced, and now starts over from the committed state.
    fn reset(&self) -> Result<(), LogError>;
}
