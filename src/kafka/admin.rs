//! Admin APIs: CreateTopics, DeleteTopics, DescribeConfigs (topic configs) and
//! DescribeProducers (idempotent producers' state per partition), over the same topics SQL
//! creates and reads.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::TopicName;
use kafka_protocol::messages::create_topics_request::CreateTopicsRequest;
use kafka_protocol::messages::create_topics_response::{CreatableTopicResult, CreateTopicsResponse};
use kafka_protocol::messages::delete_topics_request::DeleteTopicsRequest;
use kafka_protocol::messages::delete_topics_response::{DeletableTopicResult, DeleteTopicsResponse};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsRequest;
use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResponse, DescribeConfigsResult};
use kafka_protocol::messages::describe_producers_request::DescribeProducersRequest;
use kafka_protocol::messages::describe_producers_response::{DescribeProducersResponse, PartitionResponse, ProducerState, TopicResponse};
use kafka_protocol::protocol::StrBytes;

use super::Broker;
use super::errors::log_error_code;
use crate::log::{LogError, TopicConfig};

/// DescribeConfigs resource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// DescribeConfigs config sources.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DEFAULT: i8 = 5;

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

pub async fn create_topics(broker: &Arc<Broker>, req: CreateTopicsRequest, version: i16) -> CreateTopicsResponse {
    let b = broker.clone();
    let results = tokio::task::spawn_blocking(move || {
        req.topics
            .into_iter()
            .map(|t| {
                let name = t.name.0.to_string();
                let partitions = if t.num_partitions == -1 { b.config.default_partitions } else { t.num_partitions };
                let result = CreatableTopicResult::default().with_name(t.name.clone());
                let mut config: TopicConfig = b.log.defaults().clone();
                for c in &t.configs {
                    let Some(value) = &c.value else { continue };
                    if let Err(e) = config.set(c.name.as_str(), value.as_str()) {
                        return result.with_error_code(ResponseError::InvalidConfig.code()).with_error_message(Some(s(e)));
                    }
                }
                if b.log.is_internal_topic(&name) {
                    return result.with_error_code(ResponseError::InvalidTopicException.code()).with_error_message(Some(s(format!(
                        "topic names starting with '{}' are reserved for Eddy's internal topics",
                        b.log.internal_prefix()
                    ))));
                }
                if partitions < 1 {
                    return result
                        .with_error_code(ResponseError::InvalidPartitions.code())
                        .with_error_message(Some(s(format!("topic '{name}' cannot have {partitions} partitions; use 1 or more"))));
                }
                if req.validate_only {
                    if let Err(e) = crate::log::validate_topic_name(&name) {
                        return result.with_error_code(log_error_code(&e)).with_error_message(Some(s(e.to_string())));
                    }
                    if b.log.get_topic(&name).is_some() {
                        let e = LogError::TopicExists(name);
                        return result.with_error_code(log_error_code(&e)).with_error_message(Some(s(e.to_string())));
                    }
                    if let Err(e) = b.log.check_partitions(&name, i64::from(partitions)) {
                        return result.with_error_code(log_error_code(&e)).with_error_message(Some(s(e.to_string())));
                    }
                    return result.with_num_partitions(partitions).with_replication_factor(1);
                }
                match b.log.create_topic(&name, partitions, config) {
                    Ok(_) => result.with_num_partitions(partitions).with_replication_factor(1),
                    Err(e) => result.with_error_code(log_error_code(&e)).with_error_message(Some(s(e.to_string()))),
                }
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    // Fields a version lacks must keep their defaults.
    let results = results
        .into_iter()
        .map(|mut r| {
            if version < 5 {
                r.num_partitions = -1;
                r.replication_factor = -1;
            }
            if version < 1 {
                r.error_message = None;
            }
            r
        })
        .collect();
    CreateTopicsResponse::default().with_topics(results)
}

pub async fn delete_topics(broker: &Arc<Broker>, req: DeleteTopicsRequest, version: i16) -> DeleteTopicsResponse {
    let b = broker.clone();
    let names: Vec<TopicName> = req.topic_names;
    let results = tokio::task::spawn_blocking(move || {
        names
            .into_iter()
            .map(|n| {
                let r = DeletableTopicResult::default().with_name(Some(n.clone()));
                if b.log.is_internal_topic(n.0.as_str()) {
                    let r = r.with_error_code(ResponseError::InvalidTopicException.code());
                    return if version >= 5 { r.with_error_message(Some(s("Eddy's internal topics cannot be deleted by Kafka clients"))) } else { r };
                }
                match b.log.delete_topic(n.0.as_str()) {
                    Ok(()) => r,
                    Err(e) if version >= 5 => r.with_error_code(log_error_code(&e)).with_error_message(Some(s(e.to_string()))),
                    Err(e) => r.with_error_code(log_error_code(&e)),
                }
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    DeleteTopicsResponse::default().with_responses(results)
}

pub fn describe_configs(broker: &Arc<Broker>, req: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let defaults = broker.log.defaults().entries();
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let result = DescribeConfigsResult::default().with_resource_type(r.resource_type).with_resource_name(r.resource_name.clone());
            let wanted = |name: &str| r.configuration_keys.as_ref().is_none_or(|keys| keys.iter().any(|k| k.as_str() == name));
            let entries: Vec<(&'static str, String, i8)> = match r.resource_type {
                RESOURCE_TOPIC => match broker.log.get_topic(r.resource_name.as_str()) {
                    Some(t) => t
                        .config()
                        .entries()
                        .into_iter()
                        .map(|(k, v)| {
                            let source = if defaults.iter().any(|(dk, dv)| *dk == k && *dv == v) { SOURCE_DEFAULT } else { SOURCE_TOPIC };
                            (k, v, source)
                        })
                        .collect(),
                    None => {
                        let e = LogError::UnknownTopic(r.resource_name.to_string());
                        return result.with_error_code(log_error_code(&e)).with_error_message(Some(s(e.to_string())));
                    }
                },
                RESOURCE_BROKER => defaults.iter().map(|(k, v)| (*k, v.clone(), SOURCE_DEFAULT)).collect(),
                other => {
                    return result
                        .with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(s(format!("resource type {other} is not described here; use 2 (topic) or 4 (broker)"))));
                }
            };
            let configs = entries
                .into_iter()
                .filter(|(k, _, _)| wanted(k))
                .map(|(k, v, source)| {
                    DescribeConfigsResourceResult::default().with_name(s(k)).with_value(Some(s(v))).with_config_source(source).with_read_only(true)
                })
                .collect();
            result.with_configs(configs)
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

/// The idempotent and transactional producers each asked partition remembers: epoch, last
/// sequence and the start of an open transaction (Kafka's DescribeProducers, which
/// `kafka-transactions.sh describe-producers` and Eddy's own Kafka client use).
pub fn describe_producers(broker: &Arc<Broker>, req: DescribeProducersRequest) -> DescribeProducersResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let topic = broker.log.get_topic(&t.name.0);
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&p| {
                    let answer = PartitionResponse::default().with_partition_index(p);
                    let Some(part) = topic.as_ref().and_then(|tp| tp.local_partition(p).ok()) else {
                        return answer.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let producers = part
                        .producers()
                        .into_iter()
                        .filter_map(|(pid, entry, open)| {
                            let last = entry.batches.back()?;
                            Some(
                                ProducerState::default()
                                    .with_producer_id(kafka_protocol::messages::ProducerId(pid))
                                    .with_producer_epoch(i32::from(entry.epoch))
                                    .with_last_sequence(last.last_seq)
                                    .with_last_timestamp(-1)
                                    .with_coordinator_epoch(-1)
                                    .with_current_txn_start_offset(open.unwrap_or(-1)),
                            )
                        })
                        .collect();
                    answer.with_active_producers(producers)
                })
                .collect();
            TopicResponse::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}
