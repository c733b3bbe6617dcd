//! A transactional producer, as Kafka Streams' exactly-once v2 uses one: InitProducerId
//! at the transaction coordinator (which fences an earlier producer with the same
//! transactional id by bumping its epoch), AddPartitionsToTxn before a partition's first
//! batch in a transaction, idempotent batches (producer id, epoch, sequence) marked
//! transactional, consumer offsets sent into the transaction (AddOffsetsToTxn, then
//! TxnOffsetCommit at the group coordinator), and EndTxn to commit or abort.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;
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
    offsets_added: bool,
}

fn txn_id(id: &str) -> TransactionalId {
    TransactionalId(StrBytes::from_string(id.to_string()))
}

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
        let request = InitProducerIdRequest::default()
            .with_transactional_id(Some(txn_id(transactional_id)))
            .with_transaction_timeout_ms(transaction_timeout_ms)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        let answer = coordinator.send(&request).await?;
        if answer.error_code != 0 {
            return Err(ClientError::broker("InitProducerId", answer.error_code, coordinator.addr()));
        }
        Ok(TransactionalProducer {
            client,
            transactional_id: transactional_id.to_string(),
            producer_id: answer.producer_id.0,
            epoch: answer.producer_epoch,
            coordinator,
            sequences: HashMap::new(),
            in_transaction: BTreeSet::new(),
            offsets_added: false,
        })
    }

    /// The producer id and epoch the coordinator gave.
    pub fn identity(&self) -> (i64, i16) {
        (self.producer_id, self.epoch)
    }

    /// Sends records to a partition inside the open transaction; the offset of the first.
    pub async fn send(&mut self, topic: &str, partition: i32, records: &[OutRecord<'_>]) -> Result<i64, ClientError> {
        let key = (topic.to_string(), partition);
        if !self.in_transaction.contains(&key) {
            let add = AddPartitionsToTxnTopic::default().with_name(topic_name(topic)).with_partitions(vec![partition]);
            let request = AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(txn_id(&self.transactional_id))
                .with_v3_and_below_producer_id(ProducerId(self.producer_id))
                .with_v3_and_below_producer_epoch(self.epoch)
                .with_v3_and_below_topics(vec![add]);
            let answer = self.coordinator.send(&request).await?;
            let codes = answer.results_by_topic_v3_and_below.iter().flat_map(|t| t.results_by_partition.iter()).map(|p| p.partition_error_code);
            if let Some(code) = codes.chain([answer.error_code]).find(|c| *c != 0) {
                return Err(ClientError::broker("AddPartitionsToTxn", code, self.coordinator.addr()));
            }
            self.in_transaction.insert(key.clone());
        }
        let sequence = self.sequences.get(&key).copied().unwrap_or(0);
        let stamp = ProducerStamp { producer_id: self.producer_id, producer_epoch: self.epoch, base_sequence: sequence };
        let mut batch = crate::log::BatchBuilder::new(Some(stamp)).transactional();
        for (k, v, ts) in records {
            batch.push(*ts, *k, *v, &[]);
        }
        let offset = self.client.produce_in(topic, partition, Bytes::from(batch.finish()), -1, Some(&self.transactional_id)).await?;
        self.sequences.insert(key, sequence.wrapping_add(records.len() as i32));
        Ok(offset)
    }

    /// Commits a group member's positions as part of the open transaction.
    pub async fn send_offsets(&mut self, member: &GroupMember, offsets: &[(&str, i32, i64)]) -> Result<(), ClientError> {
        let group = GroupId(StrBytes::from_string(member.group().to_string()));
        if !self.offsets_added {
            let request = AddOffsetsToTxnRequest::default()
                .with_transactional_id(txn_id(&self.transactional_id))
                .with_producer_id(ProducerId(self.producer_id))
                .with_producer_epoch(self.epoch)
                .with_group_id(group.clone());
            let answer = self.coordinator.send(&request).await?;
            if answer.error_code != 0 {
                return Err(ClientError::broker("AddOffsetsToTxn", answer.error_code, self.coordinator.addr()));
            }
            self.offsets_added = true;
        }
        let mut by_topic: HashMap<&str, Vec<TxnOffsetCommitRequestPartition>> = HashMap::new();
        for (t, p, o) in offsets {
            by_topic.entry(t).or_default().push(TxnOffsetCommitRequestPartition::default().with_partition_index(*p).with_committed_offset(*o));
        }
        let topics = by_topic.into_iter().map(|(t, ps)| TxnOffsetCommitRequestTopic::default().with_name(topic_name(t)).with_partitions(ps)).collect();
        let request = TxnOffsetCommitRequest::default()
            .with_transactional_id(txn_id(&self.transactional_id))
            .with_group_id(group)
            .with_producer_id(ProducerId(self.producer_id))
            .with_producer_epoch(self.epoch)
            .with_generation_id(member.generation())
            .with_member_id(StrBytes::from_string(member.member_id().to_string()))
            .with_topics(topics);
        let group_coordinator = member.coordinator_connection();
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
        if self.in_transaction.is_empty() && !self.offsets_added {
            return Ok(());
        }
        let request = EndTxnRequest::default()
            .with_transactional_id(txn_id(&self.transactional_id))
            .with_producer_id(ProducerId(self.producer_id))
            .with_producer_epoch(self.epoch)
            .with_committed(committed);
        let answer = self.coordinator.send(&request).await?;
        if answer.error_code != 0 {
            return Err(ClientError::broker("EndTxn", answer.error_code, self.coordinator.addr()));
        }
        self.in_transaction.clear();
        self.offsets_added = false;
        Ok(())
    }
}
