//! A Kafka cluster keeping a log's topics in place of the data directory
//! (`eddy server --kafka-bootstrap`). The log layer only names what it needs of one; the
//! Kafka client (`kafka_client::cluster`) provides it. Blocking, like the rest of the log.

use std::sync::Arc;

use super::{LogError, PartitionStore, TopicConfig};

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
}
