//! The transaction coordinator: transactional producers (`transactional.id`) write to
//! several partitions and commit consumer offsets atomically.
//!
//! InitProducerId gives a transactional id its producer id and a new epoch (fencing older
//! instances, and aborting a transaction they left open); AddPartitionsToTxn and
//! AddOffsetsToTxn record what a transaction touches; TxnOffsetCommit holds offsets until
//! the end; EndTxn writes a commit or abort marker (a control batch) into every partition
//! touched and, on commit, stores the held offsets. The log keeps the last stable offset
//! and the aborted transactions per partition, which read-committed readers use.
//!
//! The coordinator's state is a small file rewritten durably whenever a transaction starts
//! touching something or ends, so a transaction open at a crash is aborted on restart
//! (as Kafka aborts it on timeout). Open transactions older than their timeout are aborted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use kafka_protocol::messages::add_offsets_to_txn_response::AddOffsetsToTxnResponse;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnRequest;
use kafka_protocol::messages::add_partitions_to_txn_response::{AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResponse, AddPartitionsToTxnTopicResult};
use kafka_protocol::messages::end_txn_request::EndTxnRequest;
use kafka_protocol::messages::end_txn_response::EndTxnResponse;
use kafka_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequest;
use kafka_protocol::messages::txn_offset_commit_response::{TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::Broker;
use super::errors::KafkaError;
use crate::log::batch::{ControlKind, control_batch};
use crate::log::{Log, LogError, write_file_durably};

const FILE: &str = "transactions.json";

/// An offset held by an open transaction: (group, topic, partition, offset, metadata).
type HeldOffset = (String, String, i32, i64, String);

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Txn {
    producer_id: i64,
    epoch: i16,
    timeout_ms: i64,
    /// When the open transaction first touched something (ms since the epoch).
    started_ms: Option<i64>,
    partitions: BTreeSet<(String, i32)>,
    groups: BTreeSet<String>,
    offsets: Vec<HeldOffset>,
}

impl Txn {
    fn is_open(&self) -> bool {
        !self.partitions.is_empty() || !self.groups.is_empty()
    }
}

pub struct TxnCoordinator {
    path: PathBuf,
    txns: Mutex<BTreeMap<String, Txn>>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl TxnCoordinator {
    /// Loads the coordinator's state and aborts every transaction a crash left open.
    /// Blocking.
    pub fn open(dir: &Path, log: &Log) -> Result<TxnCoordinator, KafkaError> {
        let path = dir.join(FILE);
        let txns: BTreeMap<String, Txn> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| LogError::Corrupt { what: path.display().to_string(), detail: e.to_string() })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(LogError::io(format!("reading {}", path.display()), e).into()),
        };
        let c = TxnCoordinator { path, txns: Mutex::new(txns) };
        {
            let mut txns = c.txns.lock();
            let open: Vec<String> = txns.iter().filter(|(_, t)| t.is_open()).map(|(id, _)| id.clone()).collect();
            for id in open {
                if let Some(t) = txns.get_mut(&id) {
                    tracing::warn!(transactional_id = %id, "aborting a transaction left open by the previous run");
                    end(log, t, false)?;
                }
            }
            c.save(&txns)?;
        }
        Ok(c)
    }

    fn save(&self, txns: &BTreeMap<String, Txn>) -> Result<(), LogError> {
        let bytes = serde_json::to_vec(txns).map_err(|e| LogError::io("encoding transactions", e.into()))?;
        write_file_durably(&self.path, &bytes)
    }

    /// InitProducerId for a transactional id: the producer id and a new epoch. Blocking.
    pub fn init(&self, log: &Log, broker: &Broker, id: &str, timeout_ms: i32) -> Result<(i64, i16), LogError> {
        let mut txns = self.txns.lock();
        let t = match txns.get_mut(id) {
            Some(t) => {
                if t.is_open() {
                    tracing::info!(transactional_id = %id, "a new producer instance aborts the transaction the previous one left open");
                    end(log, t, false)?;
                }
                if t.epoch >= i16::MAX - 1 {
                    t.producer_id = broker.producer_ids.allocate()?;
                    t.epoch = 0;
                } else {
                    t.epoch += 1;
                }
                t
            }
            None => {
                let producer_id = broker.producer_ids.allocate()?;
                txns.entry(id.to_string()).or_insert(Txn { producer_id, epoch: 0, ..Txn::default() })
            }
        };
        t.timeout_ms = i64::from(timeout_ms.max(1));
        let out = (t.producer_id, t.epoch);
        self.save(&txns)?;
        Ok(out)
    }

    /// Whether a transactional produce may write to this partition: the producer is the
    /// current instance of `id` and added the partition to its open transaction.
    pub fn covers(&self, id: &str, producer_id: i64, epoch: i16, topic: &str, partition: i32) -> Result<(), ResponseError> {
        let mut txns = self.txns.lock();
        let t = Self::check(&mut txns, id, producer_id, epoch)?;
        if t.partitions.contains(&(topic.to_string(), partition)) { Ok(()) } else { Err(ResponseError::InvalidTxnState) }
    }

    /// The transaction of `id` when the caller is its current producer instance.
    fn check<'a>(txns: &'a mut BTreeMap<String, Txn>, id: &str, producer_id: i64, epoch: i16) -> Result<&'a mut Txn, ResponseError> {
        let t = txns.get_mut(id).ok_or(ResponseError::InvalidProducerIdMapping)?;
        if t.producer_id != producer_id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if epoch < t.epoch {
            return Err(ResponseError::ProducerFenced);
        }
        if epoch > t.epoch {
            return Err(ResponseError::InvalidProducerEpoch);
        }
        Ok(t)
    }

    /// Expires open transactions older than their timeout. Blocking.
    pub fn abort_expired(&self, log: &Log) {
        let now = now_ms();
        let mut txns = self.txns.lock();
        let mut changed = false;
        for (id, t) in txns.iter_mut() {
            if t.is_open() && t.started_ms.is_some_and(|s| now - s > t.timeout_ms) {
                tracing::warn!(transactional_id = %id, timeout_ms = t.timeout_ms, "aborting a transaction that passed its timeout");
                if let Err(e) = end(log, t, false) {
                    tracing::error!(transactional_id = %id, "cannot abort an expired transaction: {e}");
                }
                // Fence the producer that let it expire.
                t.epoch = t.epoch.saturating_add(1);
                changed = true;
            }
        }
        if changed && let Err(e) = self.save(&txns) {
            tracing::error!("cannot save transaction state: {e}");
        }
    }
}

/// Writes the marker into every partition the transaction touched, stores its offsets on
/// commit, and empties it. Blocking.
fn end(log: &Log, t: &mut Txn, commit: bool) -> Result<(), LogError> {
    let kind = if commit { ControlKind::Commit } else { ControlKind::Abort };
    for (topic, partition) in &t.partitions {
        // A topic deleted meanwhile has nothing left to mark.
        let Some(tp) = log.get_topic(topic) else { continue };
        let p = tp.local_partition(*partition)?;
        p.append(control_batch(t.producer_id, t.epoch, kind, 0, now_ms()))?;
    }
    if commit {
        let mut by_group: BTreeMap<&str, Vec<(&str, i32, i64, &str)>> = BTreeMap::new();
        for (g, topic, p, o, m) in &t.offsets {
            by_group.entry(g).or_default().push((topic, *p, *o, m));
        }
        for (g, offsets) in by_group {
            log.offsets().commit(g, &offsets)?;
        }
    }
    t.partitions.clear();
    t.groups.clear();
    t.offsets.clear();
    t.started_ms = None;
    Ok(())
}

fn storage_error(e: &LogError) -> ResponseError {
    tracing::error!("transaction coordinator: {e}");
    ResponseError::KafkaStorageError
}

/// Runs a coordinator step on a blocking thread.
async fn blocking<T: Send + 'static>(broker: &Arc<Broker>, f: impl FnOnce(&Broker) -> T + Send + 'static) -> Option<T> {
    let b = broker.clone();
    tokio::task::spawn_blocking(move || f(&b)).await.ok()
}

pub async fn add_partitions(broker: &Arc<Broker>, req: AddPartitionsToTxnRequest) -> AddPartitionsToTxnResponse {
    let id = req.v3_and_below_transactional_id.0.to_string();
    let (pid, epoch) = (req.v3_and_below_producer_id.0, req.v3_and_below_producer_epoch);
    let topics = req.v3_and_below_topics;
    let results = blocking(broker, move |b| {
        let mut txns = b.txns.txns.lock();
        let verdict = TxnCoordinator::check(&mut txns, &id, pid, epoch).map(|_| ());
        let mut out = Vec::with_capacity(topics.len());
        let mut added = false;
        for t in topics {
            let name = t.name.0.to_string();
            let exists = b.log.get_topic(&name);
            let parts = t
                .partitions
                .iter()
                .map(|p| {
                    let code = match (&verdict, &exists) {
                        (Err(e), _) => e.code(),
                        (Ok(()), Some(tp)) if tp.local_partition(*p).is_ok() => {
                            if let Some(txn) = txns.get_mut(&id) {
                                txn.started_ms.get_or_insert_with(now_ms);
                                added |= txn.partitions.insert((name.clone(), *p));
                            }
                            0
                        }
                        (Ok(()), _) => ResponseError::UnknownTopicOrPartition.code(),
                    };
                    AddPartitionsToTxnPartitionResult::default().with_partition_index(*p).with_partition_error_code(code)
                })
                .collect();
            out.push(AddPartitionsToTxnTopicResult::default().with_name(t.name).with_results_by_partition(parts));
        }
        if added && let Err(e) = b.txns.save(&txns) {
            let code = storage_error(&e).code();
            for t in &mut out {
                for p in &mut t.results_by_partition {
                    p.partition_error_code = code;
                }
            }
        }
        out
    })
    .await
    .unwrap_or_default();
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results)
}

pub async fn add_offsets(broker: &Arc<Broker>, req: AddOffsetsToTxnRequest) -> AddOffsetsToTxnResponse {
    let code = blocking(broker, move |b| {
        let mut txns = b.txns.txns.lock();
        let t = match TxnCoordinator::check(&mut txns, req.transactional_id.0.as_str(), req.producer_id.0, req.producer_epoch) {
            Ok(t) => t,
            Err(e) => return e.code(),
        };
        t.started_ms.get_or_insert_with(now_ms);
        if t.groups.insert(req.group_id.0.to_string())
            && let Err(e) = b.txns.save(&txns)
        {
            return storage_error(&e).code();
        }
        0
    })
    .await
    .unwrap_or(ResponseError::UnknownServerError.code());
    AddOffsetsToTxnResponse::default().with_error_code(code)
}

pub async fn txn_offset_commit(broker: &Arc<Broker>, req: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse {
    let topics = blocking(broker, move |b| {
        let mut txns = b.txns.txns.lock();
        let group = req.group_id.0.to_string();
        let verdict = TxnCoordinator::check(&mut txns, req.transactional_id.0.as_str(), req.producer_id.0, req.producer_epoch)
            .and_then(|t| if t.groups.contains(&group) { Ok(t) } else { Err(ResponseError::InvalidTxnState) });
        let mut held: Vec<HeldOffset> = Vec::new();
        let code = verdict.as_ref().map(|_| 0).unwrap_or_else(|e| e.code());
        let topics: Vec<TxnOffsetCommitResponseTopic> = req
            .topics
            .into_iter()
            .map(|t| {
                let parts = t
                    .partitions
                    .iter()
                    .map(|p| {
                        held.push((
                            group.clone(),
                            t.name.0.to_string(),
                            p.partition_index,
                            p.committed_offset,
                            p.committed_metadata.as_ref().map(|m| m.to_string()).unwrap_or_default(),
                        ));
                        TxnOffsetCommitResponsePartition::default().with_partition_index(p.partition_index).with_error_code(code)
                    })
                    .collect();
                TxnOffsetCommitResponseTopic::default().with_name(t.name).with_partitions(parts)
            })
            .collect();
        if let Ok(t) = verdict {
            // A later commit of the same partition replaces the earlier one.
            t.offsets.retain(|(g, tp, p, _, _)| !held.iter().any(|(hg, htp, hp, _, _)| hg == g && htp == tp && hp == p));
            t.offsets.extend(held);
        }
        topics
    })
    .await
    .unwrap_or_default();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

pub async fn end_txn(broker: &Arc<Broker>, req: EndTxnRequest) -> EndTxnResponse {
    let code = blocking(broker, move |b| {
        let mut txns = b.txns.txns.lock();
        let t = match TxnCoordinator::check(&mut txns, req.transactional_id.0.as_str(), req.producer_id.0, req.producer_epoch) {
            Ok(t) => t,
            Err(e) => return e.code(),
        };
        if let Err(e) = end(&b.log, t, req.committed) {
            return storage_error(&e).code();
        }
        match b.txns.save(&txns) {
            Ok(()) => 0,
            Err(e) => storage_error(&e).code(),
        }
    })
    .await
    .unwrap_or(ResponseError::UnknownServerError.code());
    EndTxnResponse::default().with_error_code(code)
}

/// InitProducerId with a transactional id.
pub async fn init_producer_id(broker: &Arc<Broker>, id: String, timeout_ms: i32) -> Result<(i64, i16), ResponseError> {
    blocking(broker, move |b| b.txns.init(&b.log, b, &id, timeout_ms).map_err(|e| storage_error(&e))).await.unwrap_or(Err(ResponseError::UnknownServerError))
}
