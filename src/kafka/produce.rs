//! Produce: each partition's record batches are appended as they arrived (offsets assigned,
//! CRC checked and kept, idempotent-producer sequences checked). Partitions are appended on
//! blocking threads in parallel, so their fsyncs overlap.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_request::ProduceRequest;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, ProduceResponse, TopicProduceResponse};
use kafka_protocol::protocol::StrBytes;

use super::Broker;
use super::errors::log_error_code;
use super::metadata::{find_or_create, unknown_partition};
use crate::log::batch::{BatchHeader, split_batches_exact};
use crate::log::partition::AppendTicket;
use crate::log::{LogError, PartitionLog};

/// Outcome of one partition's append.
struct Appended {
    error_code: i16,
    error_message: Option<String>,
    base_offset: i64,
    log_start_offset: i64,
}

/// Collects the results of one partition's queued batches. Blocking.
fn complete_partition(partition: &PartitionLog, queued: Vec<Result<AppendTicket, LogError>>) -> Appended {
    let failed = |e: &LogError| Appended { error_code: log_error_code(e), error_message: Some(e.to_string()), base_offset: -1, log_start_offset: -1 };
    let mut base = -1;
    let mut first_error: Option<LogError> = None;
    for q in queued {
        let r = q.and_then(|ticket| partition.complete(ticket));
        match r {
            Ok(o) if base < 0 && first_error.is_none() => base = o.base_offset,
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(topic = partition.topic(), partition = partition.id(), "produce refused: {e}");
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => failed(&e),
        None => Appended { error_code: 0, error_message: None, base_offset: base, log_start_offset: partition.start_offset() },
    }
}

/// Splits a partition's records into batches, with the producer of the first.
fn split(records: &[u8]) -> Result<(Vec<&[u8]>, BatchHeader), LogError> {
    let batches = split_batches_exact(records)?;
    let first = batches.first().ok_or(LogError::EmptyBatch)?;
    let header = BatchHeader::parse(first)?;
    Ok((batches, header))
}

/// Queues one partition's batches in order (no I/O).
fn queue_partition(partition: &PartitionLog, batches: &[&[u8]]) -> Vec<Result<AppendTicket, LogError>> {
    batches.iter().map(|b| partition.enqueue(b.to_vec())).collect()
}

/// Transactional batches must come from the current instance of a transactional id that
/// added this partition to its open transaction, or the partition's last stable offset
/// would wait for a marker that never comes.
fn check_transactional(
    broker: &Broker,
    txn_id: Option<&str>,
    batches: &[&[u8]],
    header: &BatchHeader,
    topic: &str,
    partition: i32,
) -> Result<(), (ResponseError, String)> {
    let transactional = batches.iter().any(|b| BatchHeader::parse(b).is_ok_and(|h| h.is_transactional()));
    match txn_id {
        None if transactional => Err((ResponseError::InvalidTxnState, "transactional batches need the producer's transactional.id".into())),
        None => Ok(()),
        Some(id) => broker.txns.covers(id, header.producer_id, header.producer_epoch, topic, partition).map_err(|e| {
            (
                e,
                format!(
                    "partition {topic}-{partition} is not part of an open transaction of '{id}' for producer {} epoch {}",
                    header.producer_id, header.producer_epoch
                ),
            )
        }),
    }
}

/// A Produce request whose batches are queued; awaiting it waits for them to be written
/// (and fsynced) and gives the response, or `None` for acks=0.
pub type PendingProduce = std::pin::Pin<Box<dyn Future<Output = Option<ProduceResponse>> + Send>>;

/// Queues a Produce request's batches in request order and returns the wait for their
/// results. Requests on one connection are started in order, so their batches are
/// appended in order, while their writes and fsyncs overlap (one group commit can cover
/// several pipelined requests).
pub async fn start(broker: &Arc<Broker>, req: ProduceRequest, version: i16) -> PendingProduce {
    let mut topics = Vec::with_capacity(req.topic_data.len());
    let mut pending = Vec::new();
    for topic in req.topic_data {
        let name = topic.name.0.to_string();
        let found = find_or_create(broker, &name, broker.config.auto_create_topics).await;
        let mut parts = Vec::with_capacity(topic.partition_data.len());
        for pd in topic.partition_data {
            let slot = parts.len();
            let idx = pd.index;
            parts.push(PartitionProduceResponse::default().with_index(idx));
            let partition = match &found {
                Err(e) => {
                    parts[slot].error_code = log_error_code(e);
                    continue;
                }
                Ok(t) => match t.local_partition(idx) {
                    Ok(p) => p.clone(),
                    Err(_) => {
                        parts[slot].error_code = unknown_partition();
                        continue;
                    }
                },
            };
            if broker.log.is_internal_topic(&name) {
                parts[slot].error_code = ResponseError::InvalidTopicException.code();
                if version >= 8 {
                    parts[slot].error_message =
                        Some(StrBytes::from_string(format!("'{name}' is one of Eddy's internal topics; Kafka clients may read it but not write to it")));
                }
                continue;
            }
            let records = pd.records.unwrap_or_default();
            let queued = match split(&records) {
                Err(e) => vec![Err(e)],
                Ok((batches, header)) => {
                    let txn_id = req.transactional_id.as_ref().map(|t| t.0.as_str());
                    if let Err((code, why)) = check_transactional(broker, txn_id, &batches, &header, &name, idx) {
                        parts[slot].error_code = code.code();
                        if version >= 8 {
                            parts[slot].error_message = Some(StrBytes::from_string(why));
                        }
                        continue;
                    }
                    queue_partition(&partition, &batches)
                }
            };
            let task = tokio::task::spawn_blocking(move || complete_partition(&partition, queued));
            pending.push((topics.len(), slot, task));
        }
        topics.push(TopicProduceResponse::default().with_name(topic.name).with_partition_responses(parts));
    }
    let acks = req.acks;
    Box::pin(async move {
        for (t, p, task) in pending {
            let r: &mut PartitionProduceResponse = &mut topics[t].partition_responses[p];
            match task.await {
                Ok(a) => {
                    r.error_code = a.error_code;
                    r.base_offset = a.base_offset;
                    // Fields a version lacks must keep their defaults.
                    if version >= 5 {
                        r.log_start_offset = a.log_start_offset;
                    }
                    if version >= 8 {
                        r.error_message = a.error_message.map(StrBytes::from_string);
                    }
                }
                Err(e) => {
                    r.error_code = ResponseError::UnknownServerError.code();
                    tracing::error!("append failed: {e}");
                }
            }
        }
        if acks == 0 {
            return None;
        }
        Some(ProduceResponse::default().with_responses(topics))
    })
}

/// Handles a Produce request to the end; `None` for acks=0.
pub async fn produce(broker: &Arc<Broker>, req: ProduceRequest, version: i16) -> Option<ProduceResponse> {
    start(broker, req, version).await.await
}
