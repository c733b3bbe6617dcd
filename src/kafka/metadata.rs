//! Metadata: this broker (node 0) leads every partition of every topic; topics a client
//! names that do not exist are created when auto-creation is on and the client allows it.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::metadata_request::MetadataRequest;
use kafka_protocol::messages::metadata_response::{MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic};
use kafka_protocol::messages::{BrokerId, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::errors::log_error_code;
use super::{Broker, NODE_ID};
use crate::log::{LogError, Topic};

/// Cluster id reported to clients.
pub const CLUSTER_ID: &str = "eddy";

/// The topic, creating it with the default partition count when `create` is set and it
/// does not exist. Topic creation writes files, so it runs on a blocking thread.
pub(crate) async fn find_or_create(broker: &Arc<Broker>, name: &str, create: bool) -> Result<Arc<Topic>, LogError> {
    if let Some(t) = broker.log.get_topic(name) {
        return Ok(t);
    }
    if !create {
        return Err(LogError::UnknownTopic(name.to_string()));
    }
    if broker.log.is_internal_topic(name) {
        return Err(LogError::InvalidTopicName {
            name: name.to_string(),
            reason: format!("names starting with '{}' are reserved for Eddy's internal topics", broker.log.internal_prefix()),
        });
    }
    let b = broker.clone();
    let name = name.to_string();
    tokio::task::spawn_blocking(move || {
        let defaults = b.log.defaults().clone();
        match b.log.create_topic(&name, b.config.default_partitions, defaults) {
            Ok(t) => {
                tracing::info!(topic = %name, partitions = b.config.default_partitions, "created topic requested by a Kafka client");
                Ok(t)
            }
            // Another connection created it meanwhile.
            Err(LogError::TopicExists(_)) => b.log.topic(&name),
            Err(e) => Err(e),
        }
    })
    .await
    .map_err(|e| LogError::io("creating a topic", std::io::Error::other(e)))?
}

pub(crate) fn broker_entry(broker: &Broker) -> MetadataResponseBroker {
    MetadataResponseBroker::default()
        .with_node_id(BrokerId(NODE_ID))
        .with_host(StrBytes::from_string(broker.config.advertised_host.clone()))
        .with_port(broker.config.advertised_port)
}

fn topic_entry(broker: &Broker, topic: &Topic) -> MetadataResponseTopic {
    let partitions = (0..topic.partition_count())
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(NODE_ID))
                .with_replica_nodes(vec![BrokerId(NODE_ID)])
                .with_isr_nodes(vec![BrokerId(NODE_ID)])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name().to_string()))))
        .with_is_internal(broker.log.is_internal_topic(topic.name()))
        .with_partitions(partitions)
}

fn error_topic(name: &str, code: i16) -> MetadataResponseTopic {
    MetadataResponseTopic::default().with_name(Some(TopicName(StrBytes::from_string(name.to_string())))).with_error_code(code)
}

pub async fn metadata(broker: &Arc<Broker>, req: MetadataRequest, version: i16) -> MetadataResponse {
    // v0: an empty list means all topics; v1+: null means all, empty means none.
    let requested: Option<Vec<String>> = match req.topics {
        None => None,
        Some(ts) if ts.is_empty() && version == 0 => None,
        Some(ts) => Some(ts.into_iter().filter_map(|t| t.name.map(|n| n.0.to_string())).collect()),
    };
    let allow_create = broker.config.auto_create_topics && (version < 4 || req.allow_auto_topic_creation);
    let topics = match requested {
        None => broker.log.topics().iter().map(|t| topic_entry(broker, t)).collect(),
        Some(names) => {
            let mut out = Vec::with_capacity(names.len());
            for name in names {
                match find_or_create(broker, &name, allow_create).await {
                    Ok(t) => out.push(topic_entry(broker, &t)),
                    Err(e) => out.push(error_topic(&name, log_error_code(&e))),
                }
            }
            out
        }
    };
    // Fields a version lacks must keep their defaults, or the response cannot be encoded.
    let mut resp = MetadataResponse::default().with_brokers(vec![broker_entry(broker)]).with_topics(topics);
    if version >= 1 {
        resp.controller_id = BrokerId(NODE_ID);
    }
    if version >= 2 {
        resp.cluster_id = Some(StrBytes::from_static_str(CLUSTER_ID));
    }
    resp
}

/// UNKNOWN_TOPIC_OR_PARTITION, for handlers that name a partition a topic lacks.
pub(crate) fn unknown_partition() -> i16 {
    ResponseError::UnknownTopicOrPartition.code()
}
