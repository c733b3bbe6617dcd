//! Fetch and ListOffsets.
//!
//! Fetch returns stored batches byte for byte (starting with the batch that holds the fetch
//! offset), and long-polls: when fewer than `min_bytes` are available it waits on the
//! partitions' end-offset watches until data arrives or `max_wait_ms` passes.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_request::FetchRequest;
use kafka_protocol::messages::fetch_response::{AbortedTransaction, FetchResponse, FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_request::ListOffsetsRequest;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ProducerId, TopicName};
use tokio::sync::watch;
use tokio::time::Instant;

use super::Broker;
use super::errors::log_error_code;
use super::metadata::unknown_partition;
use crate::log::batch::{BatchHeader, RecordIter, payload, split_batches};
use crate::log::{LogError, PartitionLog};

/// Longest wait a client may ask for (Kafka clients default to 500 ms).
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);

struct Wanted {
    topic: usize,
    partition_index: i32,
    log: Option<Arc<PartitionLog>>,
    offset: i64,
    max_bytes: usize,
}

struct ReadOne {
    error_code: i16,
    data: Vec<u8>,
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
    /// Read committed: aborted transactions among the batches returned.
    aborted: Vec<crate::log::AbortedTxn>,
}

/// Reads every wanted partition within the response's byte budget; read-committed reads
/// stop at the last stable offset and list the aborted transactions they cover (the
/// client drops those batches). Blocking.
fn read_all(wanted: &[Wanted], response_max: usize, read_committed: bool) -> Vec<ReadOne> {
    let mut budget = response_max;
    let mut out = Vec::with_capacity(wanted.len());
    let mut any_data = false;
    for w in wanted {
        let Some(log) = &w.log else {
            out.push(ReadOne {
                error_code: unknown_partition(),
                data: Vec::new(),
                high_watermark: -1,
                last_stable_offset: -1,
                log_start_offset: -1,
                aborted: Vec::new(),
            });
            continue;
        };
        let hw = log.end_offset();
        let lso = log.last_stable_offset();
        let start = log.start_offset();
        let limit = w.max_bytes.min(budget);
        // At least one batch is returned for the first partition with data (KIP-74), even
        // when it is larger than the limits; later partitions stop at the budget.
        let data = if limit == 0 && any_data { Ok(Vec::new()) } else { log.read(w.offset, limit.max(1)) };
        match data {
            Ok(mut d) => {
                let mut aborted = Vec::new();
                if read_committed {
                    let visible: usize = split_batches(&d).take_while(|b| BatchHeader::parse(b).is_ok_and(|h| h.base_offset < lso)).map(|b| b.len()).sum();
                    d.truncate(visible);
                    if !d.is_empty() {
                        aborted = log.aborted_transactions(w.offset, lso);
                    }
                }
                budget = budget.saturating_sub(d.len());
                any_data |= !d.is_empty();
                out.push(ReadOne { error_code: 0, data: d, high_watermark: hw, last_stable_offset: lso, log_start_offset: start, aborted });
            }
            Err(e) => out.push(ReadOne {
                error_code: log_error_code(&e),
                data: Vec::new(),
                high_watermark: hw,
                last_stable_offset: lso,
                log_start_offset: start,
                aborted: Vec::new(),
            }),
        }
    }
    out
}

pub async fn fetch(broker: &Arc<Broker>, req: FetchRequest, version: i16) -> FetchResponse {
    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64).min(MAX_WAIT_CAP);
    let min_bytes = req.min_bytes.max(0) as usize;
    let response_max = if req.max_bytes <= 0 { usize::MAX } else { req.max_bytes as usize };
    let read_committed = req.isolation_level == 1;
    let mut names: Vec<TopicName> = Vec::with_capacity(req.topics.len());
    let mut wanted = Vec::new();
    for (ti, t) in req.topics.into_iter().enumerate() {
        let topic = broker.log.get_topic(t.topic.0.as_str());
        for p in t.partitions {
            let log = topic.as_ref().and_then(|tp| tp.local_partition(p.partition).ok().cloned());
            wanted.push(Wanted { topic: ti, partition_index: p.partition, log, offset: p.fetch_offset, max_bytes: p.partition_max_bytes.max(0) as usize });
        }
        names.push(t.topic);
    }
    let wanted = Arc::new(wanted);
    let reads = loop {
        // Subscribe before reading, so an append between the read and the wait wakes us.
        let mut watches: Vec<watch::Receiver<i64>> = wanted.iter().filter_map(|w| w.log.as_ref().map(|l| l.subscribe())).collect();
        let w = wanted.clone();
        let reads = match tokio::task::spawn_blocking(move || read_all(&w, response_max, read_committed)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("fetch read failed: {e}");
                let resp = FetchResponse::default();
                return if version >= 7 { resp.with_error_code(ResponseError::UnknownServerError.code()) } else { resp };
            }
        };
        let bytes: usize = reads.iter().map(|r| r.data.len()).sum();
        let errored = reads.iter().any(|r| r.error_code != 0);
        if bytes >= min_bytes || errored || watches.is_empty() || Instant::now() >= deadline {
            break reads;
        }
        let any_change = futures::future::select_all(watches.iter_mut().map(|rx| Box::pin(rx.changed())));
        if tokio::time::timeout_at(deadline, any_change).await.is_err() {
            // Waited the whole max_wait: answer with what there is (nothing new arrived).
            break reads;
        }
    };
    let mut topics: Vec<FetchableTopicResponse> = names.into_iter().map(|n| FetchableTopicResponse::default().with_topic(n)).collect();
    for (w, r) in wanted.iter().zip(reads) {
        let pd = PartitionData::default()
            .with_partition_index(w.partition_index)
            .with_error_code(r.error_code)
            .with_high_watermark(r.high_watermark)
            .with_last_stable_offset(r.last_stable_offset)
            .with_log_start_offset(if version >= 5 { r.log_start_offset } else { -1 })
            .with_aborted_transactions(read_committed.then(|| {
                r.aborted.iter().map(|a| AbortedTransaction::default().with_producer_id(ProducerId(a.producer_id)).with_first_offset(a.first_offset)).collect()
            }))
            .with_records(Some(Bytes::from(r.data)));
        topics[w.topic].partitions.push(pd);
    }
    FetchResponse::default().with_responses(topics)
}

/// The timestamp of the record at `offset`. Blocking.
fn timestamp_at(log: &PartitionLog, offset: i64) -> Result<i64, LogError> {
    let data = log.read(offset, 1)?;
    for b in split_batches(&data) {
        let (header, body) = payload(b)?;
        for rec in RecordIter::over(header, &body) {
            let rec = rec?;
            if rec.offset >= offset {
                return Ok(rec.timestamp);
            }
        }
    }
    Ok(-1)
}

/// (offset, timestamp) for one ListOffsets partition; None for a timestamp that is neither
/// -1 (latest), -2 (earliest) nor a time. Blocking.
fn list_one(log: &PartitionLog, timestamp: i64) -> Result<Option<(i64, i64)>, LogError> {
    Ok(Some(match timestamp {
        -1 => (log.end_offset(), -1),
        -2 => (log.start_offset(), -1),
        ts if ts >= 0 => match log.offset_for_timestamp(ts)? {
            Some(o) => (o, timestamp_at(log, o)?),
            None => (-1, -1),
        },
        _ => return Ok(None),
    }))
}

pub async fn list_offsets(broker: &Arc<Broker>, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let b = broker.clone();
    let topics = tokio::task::spawn_blocking(move || {
        req.topics
            .into_iter()
            .map(|t| {
                let topic = b.log.get_topic(t.name.0.as_str());
                let partitions = t
                    .partitions
                    .into_iter()
                    .map(|p| {
                        let r = ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
                        let Some(log) = topic.as_ref().and_then(|tp| tp.local_partition(p.partition_index).ok()) else {
                            return r.with_error_code(unknown_partition());
                        };
                        match list_one(log, p.timestamp) {
                            Ok(Some((offset, ts))) => r.with_offset(offset).with_timestamp(ts),
                            Ok(None) => r.with_error_code(ResponseError::InvalidRequest.code()),
                            Err(e) => r.with_error_code(log_error_code(&e)),
                        }
                    })
                    .collect();
                ListOffsetsTopicResponse::default().with_name(t.name).with_partitions(partitions)
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    ListOffsetsResponse::default().with_topics(topics)
}
