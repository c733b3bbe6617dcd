//! A Kafka cluster as the log's keeper of topics (`log::Cluster`): topics listed, created
//! (with the configured replication factor and the Kafka settings a topic's configuration
//! maps to) and deleted through the client, partitions opened as [`RemotePartition`]s.

use std::sync::Arc;

use tokio::runtime::Handle;

use super::blocking::wait;
use super::partition::RemotePartition;
use super::transactional_writer::KafkaTransactionalWriter;
use super::{ClientError, KafkaClient};
use crate::log::{Cluster, LogError, PartitionStore, TopicConfig, TransactionalWriter};

/// The topics of one Kafka cluster.
pub struct KafkaCluster {
    client: Arc<KafkaClient>,
    runtime: Handle,
    bootstrap: String,
    /// Replicas per partition of the topics Eddy creates; -1 takes the broker's default.
    replication_factor: i16,
}

impl KafkaCluster {
    pub fn new(client: Arc<KafkaClient>, runtime: Handle, bootstrap: &str, replication_factor: i16) -> KafkaCluster {
        KafkaCluster { client, runtime, bootstrap: bootstrap.to_string(), replication_factor }
    }

    pub fn client(&self) -> &Arc<KafkaClient> {
        &self.client
    }

    fn error(&self, action: String, e: ClientError) -> LogError {
        LogError::Cluster { bootstrap: self.bootstrap.clone(), action, source: Arc::new(e) }
    }
}

/// The Kafka topic settings a topic's configuration sets (Eddy's own, such as its flush
/// policy, have no meaning on a cluster; compression is left to the producer unless one
/// was chosen).
pub fn kafka_topic_configs(config: &TopicConfig) -> Vec<(&'static str, String)> {
    let mut out = vec![
        ("cleanup.policy", config.cleanup.name().to_string()),
        ("retention.ms", config.retention_ms.unwrap_or(-1).to_string()),
        ("delete.retention.ms", config.delete_retention_ms.to_string()),
    ];
    if let Some(bytes) = config.retention_bytes {
        out.push(("retention.bytes", bytes.to_string()));
    }
    if config.compression != "none" {
        out.push(("compression.type", config.compression.clone()));
    }
    if !config.cleanup.delete {
        out.retain(|(k, _)| *k != "retention.ms");
    }
    out
}

impl Cluster for KafkaCluster {
    fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    fn list_topics(&self) -> Result<Vec<(String, i32)>, LogError> {
        let client = self.client.clone();
        wait(&self.runtime, async move { client.topics().await }).map_err(|e| self.error("list its topics".into(), e))
    }

    fn partition_count(&self, topic: &str) -> Result<Option<i32>, LogError> {
        let (client, name) = (self.client.clone(), topic.to_string());
        match wait(&self.runtime, async move { client.partitions(&name).await }) {
            Ok(n) => Ok(Some(n)),
            Err(ClientError::UnknownTopic(_)) => Ok(None),
            Err(e) => Err(self.error(format!("describe topic '{topic}'"), e)),
        }
    }

    fn create_topic(&self, name: &str, partitions: i32, config: &TopicConfig) -> Result<(), LogError> {
        let configs = kafka_topic_configs(config);
        let (client, topic, replication) = (self.client.clone(), name.to_string(), self.replication_factor);
        let created = wait(&self.runtime, async move {
            let configs: Vec<(&str, &str)> = configs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            client.create_topic(&topic, partitions, replication, &configs).await
        });
        match created {
            Ok(()) => Ok(()),
            Err(e) if e.response_error() == Some(kafka_protocol::ResponseError::TopicAlreadyExists) => Err(LogError::TopicExists(name.to_string())),
            Err(e) => Err(self.error(format!("create topic '{name}' with {partitions} partitions"), e)),
        }
    }

    fn delete_topic(&self, name: &str) -> Result<(), LogError> {
        let (client, topic) = (self.client.clone(), name.to_string());
        match wait(&self.runtime, async move { client.delete_topic(&topic).await }) {
            Ok(()) => Ok(()),
            Err(e) if e.response_error() == Some(kafka_protocol::ResponseError::UnknownTopicOrPartition) => Err(LogError::UnknownTopic(name.to_string())),
            Err(e) => Err(self.error(format!("delete topic '{name}'"), e)),
        }
    }

    fn open_partition(&self, topic: &str, id: i32) -> Arc<dyn PartitionStore> {
        RemotePartition::open(self.client.clone(), topic, id, self.runtime.clone())
    }

    fn transactional_writer(&self, transactional_id: &str, timeout_ms: i32) -> Result<Arc<dyn TransactionalWriter>, LogError> {
        let writer = KafkaTransactionalWriter::start(self.client.clone(), self.runtime.clone(), &self.bootstrap, transactional_id, timeout_ms)?;
        Ok(Arc::new(writer))
    }

    fn committed_offsets(&self, group: &str, topic: &str, partitions: &[i32]) -> Result<Vec<(i32, Option<i64>)>, LogError> {
        let (client, g, t, ps) = (self.client.clone(), group.to_string(), topic.to_string(), partitions.to_vec());
        wait(&self.runtime, async move { client.group_offsets(&g, &t, &ps).await }).map_err(|e| self.error(format!("fetch the offsets of group '{group}'"), e))
    }

    fn delete_groups(&self, doomed: &dyn Fn(&str) -> bool) -> Result<(), LogError> {
        let client = self.client.clone();
        let groups = match wait(&self.runtime, async move { client.list_groups().await }) {
            Ok(g) => g,
            Err(e @ ClientError::Unsupported { .. }) => {
                // An older broker (or Eddy's own, for now): the groups stay, with no members.
                tracing::info!("consumer groups are left on the cluster: {e}");
                return Ok(());
            }
            Err(e) => return Err(self.error("list its consumer groups".into(), e)),
        };
        let groups: Vec<String> = groups.into_iter().filter(|g| doomed(g)).collect();
        if groups.is_empty() {
            return Ok(());
        }
        let (client, names) = (self.client.clone(), groups.clone());
        wait(&self.runtime, async move { client.delete_groups(&names).await }).map_err(|e| self.error(format!("delete consumer groups {groups:?}"), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::CleanupPolicy;

    #[test]
    fn topic_settings_map_to_kafka_configs() {
        let plain = kafka_topic_configs(&TopicConfig::default());
        assert!(plain.contains(&("cleanup.policy", "delete".into())));
        assert!(plain.contains(&("retention.ms", (7 * 24 * 3600 * 1000i64).to_string())));
        assert!(!plain.iter().any(|(k, _)| *k == "compression.type" || *k == "flush"));
        let mut compacted =
            TopicConfig { cleanup: CleanupPolicy { delete: false, compact: true }, retention_ms: None, compression: "zstd".into(), ..TopicConfig::default() };
        compacted.retention_bytes = Some(10);
        let c = kafka_topic_configs(&compacted);
        assert!(c.contains(&("cleanup.policy", "compact".into())) && c.contains(&("compression.type", "zstd".into())));
        assert!(c.contains(&("retention.bytes", "10".into())) && !c.iter().any(|(k, _)| *k == "retention.ms"));
    }
}
