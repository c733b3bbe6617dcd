//! A transactional producer, as Kafka Streams' exactly-once v2 uses one: InitProducerId
//! at the transaction coordinator (which fences an earlier producer with the same
//! transactional id by bumping its epoch), AddPartitionsToTxn before a partition's first
//! batch in a transaction, idempotent batches (producer id, epoch, sequence) marked
//! transactional, consumer offsets sent into the transaction (AddOffsetsToTxn, then
//! TxnOffsetCommit at the group coordinator), and EndTxn to commit or abort.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use kafka_protocol::messages::add_partitions_to_txn_request::{AddPartitionsToTxnRequest, AddPartitionsToTxnTopic};
use kafka_protocol::messages::end_txn_request::EndTxnRequest;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::txn_offset_commit_request::{TxnOffsetCommitRequest, TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic};
use kafka_protocol::messages::{GroupId, ProducerId, TransactionalId};
use kafka_protocol::protocol::StrBytes;

use super::groups::GroupMember;
use super::{BrokerConnection, ClientError, KafkaClient, topic_name};
use crate::log::batch::ProducerStamp;

/// A record to send: key, value, timestamp (ms).
pub type OutRecord<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, i64);

/// A producer whose writes and offset commits become visible together, or not at all.
pub struct TransactionalProducer {
    client: Arc<KafkaClient>,
    transactional_id: String,
    producer_id: i64,
    epoch: i16,
    coordinator: Arc<BrokerConnection>,
    /// The next sequence number per partition.
    sequences: HashMap<(String, i32), i32>,
    /// Partitions added to the open transaction.
    in_transaction: BTreeSet<(String, i32)>,
    /// Groups whose offsets the open transaction commits.
    offsets_added: BTreeSet<String>,
    timeout_ms: i32,
}

fn txn_id(id: &str) -> TransactionalId {
    TransactionalId(StrBytes::from_string(id.to_string()))
}

/// Coordinator answers that say "wait and ask again": a transaction is still ending
/// (CONCURRENT_TRANSACTIONS), the coordinator is loading its state.
fn is_transient(code: i16) -> bool {
    matches!(ResponseError::try_from_code(code), Some(ResponseError::ConcurrentTransactions | ResponseError::CoordinatorLoadInProgress))
}

/// How often a transient coordinator answer is retried, and the pause between tries.
const TRANSIENT_TRIES: u32 = 50;
const TRANSIENT_PAUSE: Duration = Duration::from_millis(20);

impl TransactionalProducer {
    /// Registers `transactional_id` with its coordinator; a producer that held it before
    /// is fenced (its next request fails) and its open transaction aborted.
    pub async fn init(client: Arc<KafkaClient>, transactional_id: &str, transaction_timeout_ms: i32) -> Result<TransactionalProducer, ClientError> {
        let conn = client.any_broker().await?;
        let found = conn.send(&FindCoordinatorRequest::default().with_key(StrBytes::from_string(transactional_id.to_string())).with_key_type(1)).await?;
        if found.error_code != 0 {
            return Err(ClientError::broker("FindCoordinator", found.error_code, conn.addr()));
        }
        let coordinator = client.connection(&format!("{}:{}", found.host, found.port)).await?;
        let mut producer = TransactionalProducer {
            client,
            transactional_id: transactional_id.to_string(),
            producer_id: -1,
            epoch: -1,
            timeout_ms: transaction_timeout_ms,
            coordinator,
            sequences: HashMap::new(),
            in_transaction: BTreeSet::new(),
            offsets_added: BTreeSet::new(),
        };
        producer.register().await?;
        Ok(producer)
    }

    /// InitProducerId: a new epoch (or producer id) for the transactional id; whatever it
    /// left open is aborted first, by the coordinator.
    pub async fn register(&mut self) -> Result<(), ClientError> {
        let request = InitProducerIdRequest::default()
            .with_transactional_id(Some(txn_id(&self.transactional_id)))
            .with_transaction_timeout_ms(self.timeout_ms)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        if self.coordinator.is_broken() {
            let addr = self.coordinator.addr().to_string();
            self.coordinator = self.client.connection(&addr).await?;
        }
        for _ in 0..TRANSIENT_TRIES {
            let answer = self.coordinator.send(&request).await?;
            if is_transient(answer.error_code) {
                tokio::time::sleep(TRANSIENT_PAUSE).await;
                continue;
            }
            if answer.error_code != 0 {
                return Err(ClientError::broker("InitProducerId", answer.error_code, self.coordinator.addr()));
            }
            self.producer_id = answer.producer_id.0;
            self.epoch = answer.producer_epoch;
            self.sequences.clear();
            self.in_transaction.clear();
            self.offsets_added.clear();
            return Ok(());
        }
        Err(ClientError::broker("InitProducerId", ResponseError::ConcurrentTransactions.code(), self.coordinator.addr()))
    }

    /// The producer id and epoch the coordinator gave.
    pub fn identity(&self) -> (i64, i16) {
        (self.producer_id, self.epoch)
    }

    /// Whether records or offsets were added since the last commit or abort.
    pub fn is_open(&self) -> bool {
        !self.in_transaction.is_empty() || !self.offsets_added.is_empty()
    }

    /// Adds partitions to the open transaction (those not in it yet, in one request).
    pub async fn add_partitions(&mut self, partitions: &[(&str, i32)]) -> Result<(), ClientError> {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in partitions.iter().filter(|(t, p)| !self.in_transaction.contains(&(t.to_string(), *p))) {
            by_topic.entry(t).or_default().push(*p);
        }
        if by_topic.is_empty() {
            return Ok(());
        }
        let topics: Vec<AddPartitionsToTxnTopic> =
            by_topic.iter().map(|(t, ps)| AddPartitionsToTxnTopic::default().with_name(topic_name(t)).with_partitions(ps.clone())).collect();
        let request = AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(txn_id(&self.transactional_id))
            .with_v3_and_below_producer_id(ProducerId(self.producer_id))
            .with_v3_and_below_producer_epoch(self.epoch)
            .with_v3_and_below_topics(topics);
        for _ in 0..TRANSIENT_TRIES {
            let answer = self.coordinator.send(&request).await?;
            let codes: Vec<i16> =
                answer.results_by_topic_v3_and_below.iter().flat_map(|t| t.results_by_partition.iter()).map(|p| p.partition_error_code).collect();
            // A partition refused makes the others OPERATION_NOT_ATTEMPTED: report the cause.
            let not_attempted = ResponseError::OperationNotAttempted.code();
            let failed = [answer.error_code].into_iter().chain(codes.iter().copied()).filter(|c| *c != 0);
            match failed.clone().find(|c| *c != not_attempted).or_else(|| failed.clone().next()) {
                None => {
                    for (t, ps) in by_topic {
                        self.in_transaction.extend(ps.into_iter().map(|p| (t.to_string(), p)));
                    }
                    return Ok(());
                }
                Some(code) if is_transient(code) => tokio::time::sleep(TRANSIENT_PAUSE).await,
                Some(code) => return Err(ClientError::broker("AddPartitionsToTxn", code, self.coordinator.addr())),
            }
        }
        Err(ClientError::broker("AddPartitionsToTxn", ResponseError::ConcurrentTransactions.code(), self.coordinator.addr()))
    }

    /// The stamp of the next batch of `records` records to a partition already in the
    /// transaction (its sequence numbers are taken).
    pub fn stamp(&mut self, topic: &str, partition: i32, records: i32) -> ProducerStamp {
        let sequence = self.sequences.entry((topic.to_string(), partition)).or_insert(0);
        let stamp = ProducerStamp { producer_id: self.producer_id, producer_epoch: self.epoch, base_sequence: *sequence };
        *sequence = sequence.wrapping_add(records) & i32::MAX;
        stamp
    }

    /// Appends a batch built with [`TransactionalProducer::stamp`]; its base offset.
    pub async fn produce(&self, topic: &str, partition: i32, batch: Bytes) -> Result<i64, ClientError> {
        self.client.produce_in(topic, partition, batch, -1, Some(&self.transactional_id)).await
    }

    /// Sends records to a partition inside the open transaction; the offset of the first.
    pub async fn send(&mut self, topic: &str, partition: i32, records: &[OutRecord<'_>]) -> Result<i64, ClientError> {
        self.add_partitions(&[(topic, partition)]).await?;
        let stamp = self.stamp(topic, partition, records.len() as i32);
        let mut batch = crate::log::BatchBuilder::new(Some(stamp)).transactional();
        for (k, v, ts) in records {
            batch.push(*ts, *k, *v, &[]);
        }
        self.produce(topic, partition, Bytes::from(batch.finish())).await
    }

    /// Commits a group member's positions as part of the open transaction.
    pub async fn send_offsets(&mut self, member: &GroupMember, offsets: &[(&str, i32, i64)]) -> Result<(), ClientError> {
        let holder = (member.generation(), member.member_id(), member.coordinator_connection().clone());
        self.send_group_offsets(member.group(), Some(holder), offsets).await
    }

    /// Commits positions of a group no member of which is in this process (one a task
    /// keeps its source offsets in, for lag and for Kafka's tools), as part of the open
    /// transaction.
    pub async fn send_offsets_to(&mut self, group: &str, offsets: &[(&str, i32, i64)]) -> Result<(), ClientError> {
        self.send_group_offsets(group, None, offsets).await
    }

    async fn send_group_offsets(
        &mut self,
        group_name: &str,
        member: Option<(i32, &str, Arc<BrokerConnection>)>,
        offsets: &[(&str, i32, i64)],
    ) -> Result<(), ClientError> {
        let group = GroupId(StrBytes::from_string(group_name.to_string()));
        if !self.offsets_added.contains(group_name) {
            let request = AddOffsetsToTxnRequest::default()
                .with_transactional_id(txn_id(&self.transactional_id))
                .with_producer_id(ProducerId(self.producer_id))
                .with_producer_epoch(self.epoch)
                .with_group_id(group.clone());
            let mut tries = 0;
            loop {
                let answer = self.coordinator.send(&request).await?;
                tries += 1;
                match answer.error_code {
                    0 => break,
                    code if is_transient(code) && tries < TRANSIENT_TRIES => tokio::time::sleep(TRANSIENT_PAUSE).await,
                    code => return Err(ClientError::broker("AddOffsetsToTxn", code, self.coordinator.addr())),
                }
            }
            self.offsets_added.insert(group_name.to_string());
        }
        let mut by_topic: HashMap<&str, Vec<TxnOffsetCommitRequestPartition>> = HashMap::new();
        for (t, p, o) in offsets {
            by_topic.entry(t).or_default().push(TxnOffsetCommitRequestPartition::default().with_partition_index(*p).with_committed_offset(*o));
        }
        let topics = by_topic.into_iter().map(|(t, ps)| TxnOffsetCommitRequestTopic::default().with_name(topic_name(t)).with_partitions(ps)).collect();
        let (generation, member_id, group_coordinator) = match member {
            Some((g, m, c)) => (g, m.to_string(), c),
            None => (-1, String::new(), self.client.coordinator(group_name).await?),
        };
        let request = TxnOffsetCommitRequest::default()
            .with_transactional_id(txn_id(&self.transactional_id))
            .with_group_id(group)
            .with_producer_id(ProducerId(self.producer_id))
            .with_producer_epoch(self.epoch)
            .with_generation_id(generation)
            .with_member_id(StrBytes::from_string(member_id))
            .with_topics(topics);
        let answer = group_coordinator.send(&request).await?;
        if let Some(code) = answer.topics.iter().flat_map(|t| t.partitions.iter()).map(|p| p.error_code).find(|c| *c != 0) {
            return Err(ClientError::broker("TxnOffsetCommit", code, group_coordinator.addr()));
        }
        Ok(())
    }

    /// Commits the open transaction: its records and offsets become visible.
    pub async fn commit(&mut self) -> Result<(), ClientError> {
        self.end(true).await
    }

    /// Aborts the open transaction: read-committed readers never see its records.
    pub async fn abort(&mut self) -> Result<(), ClientError> {
        self.end(false).await
    }

    async fn end(&mut self, committed: bool) -> Result<(), ClientError> {
        if !self.is_open() {
            return Ok(());
        }
        let request = EndTxnRequest::default()
            .with_transactional_id(txn_id(&self.transactional_id))
            .with_producer_id(ProducerId(self.producer_id))
            .with_producer_epoch(self.epoch)
            .with_committed(committed);
        // A retry after a lost answer is answered as the first try was (the coordinator
        // keeps the outcome): a commit is never half-known for long.
        let mut tries = 0;
        loop {
            tries += 1;
            let answer = match self.coordinator.send(&request).await {
                Ok(a) => a,
                Err(e @ ClientError::Io { .. }) if tries < 3 => {
                    tracing::debug!(transactional_id = %self.transactional_id, "EndTxn failed, retrying: {e}");
                    let addr = self.coordinator.addr().to_string();
                    self.coordinator = self.client.connection(&addr).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            match answer.error_code {
                0 => break,
                code if is_transient(code) && tries < TRANSIENT_TRIES as i32 => tokio::time::sleep(TRANSIENT_PAUSE).await,
                code => return Err(ClientError::broker("EndTxn", code, self.coordinator.addr())),
            }
        }
        self.in_transaction.clear();
        self.offsets_added.clear();
        Ok(())
    }
}
