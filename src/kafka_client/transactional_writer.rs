//! The log's [`TransactionalWriter`] on a Kafka cluster: a [`TransactionalProducer`] used
//! from the log's blocking callers. A request that fails part-way through a transaction
//! leaves it failed: the caller starts over with [`TransactionalWriter::reset`], which
//! registers the id again (the coordinator aborts what was left open).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::runtime::Handle;

use super::blocking::wait;
use super::transactions::TransactionalProducer;
use super::{ClientError, KafkaClient};
use crate::log::batch::ProducerStamp;
use crate::log::{AppendOutcome, BatchHeader, LogError, TransactionalWriter};

/// A transactional producer of one task.
pub struct KafkaTransactionalWriter {
    id: String,
    bootstrap: String,
    runtime: Handle,
    producer: Arc<tokio::sync::Mutex<TransactionalProducer>>,
    /// Records or offsets were added since the last commit (or a request failed in
    /// between).
    open: AtomicBool,
}

impl KafkaTransactionalWriter {
    /// Registers `id` with its coordinator (fencing an earlier producer of it). Blocking.
    pub fn start(client: Arc<KafkaClient>, runtime: Handle, bootstrap: &str, id: &str, timeout_ms: i32) -> Result<KafkaTransactionalWriter, LogError> {
        let name = id.to_string();
        let producer = wait(&runtime, async move { TransactionalProducer::init(client, &name, timeout_ms).await })
            .map_err(|e| error(bootstrap, id, "register the transactional producer", e))?;
        Ok(KafkaTransactionalWriter {
            id: id.to_string(),
            bootstrap: bootstrap.to_string(),
            runtime,
            producer: Arc::new(tokio::sync::Mutex::new(producer)),
            open: AtomicBool::new(false),
        })
    }

    fn error(&self, action: &str, e: ClientError) -> LogError {
        error(&self.bootstrap, &self.id, action, e)
    }
}

/// A client error as the log's: the coordinator's "a newer producer has this id" (or "your
/// transaction expired") as fencing, the rest as the cluster's.
fn error(bootstrap: &str, id: &str, action: &str, e: ClientError) -> LogError {
    let fenced =
        matches!(e.response_error(), Some(ResponseError::ProducerFenced | ResponseError::InvalidProducerEpoch | ResponseError::InvalidProducerIdMapping));
    if fenced {
        return LogError::TransactionFenced { transactional_id: id.to_string() };
    }
    LogError::Cluster { bootstrap: bootstrap.to_string(), action: format!("{action} (transactional id '{id}')"), source: Arc::new(e) }
}

impl TransactionalWriter for KafkaTransactionalWriter {
    fn id(&self) -> &str {
        &self.id
    }

    fn stamp(&self, topic: &str, partition: i32, records: i32) -> Result<ProducerStamp, LogError> {
        self.open.store(true, Ordering::Release);
        let (producer, name) = (self.producer.clone(), topic.to_string());
        wait(&self.runtime, async move {
            let mut p = producer.lock().await;
            p.add_partitions(&[(&name, partition)]).await?;
            Ok(p.stamp(&name, partition, records))
        })
        .map_err(|e| self.error(&format!("add {topic}-{partition} to its transaction"), e))
    }

    fn append(&self, topic: &str, partition: i32, batch: Vec<u8>) -> Result<AppendOutcome, LogError> {
        let records = BatchHeader::parse(&batch).map(|h| i64::from(h.last_offset_delta)).map_err(LogError::Batch)?;
        let (producer, name) = (self.producer.clone(), topic.to_string());
        let base_offset = wait(&self.runtime, async move { producer.lock().await.produce(&name, partition, Bytes::from(batch)).await })
            .map_err(|e| self.error(&format!("write to {topic}-{partition} in its transaction"), e))?;
        Ok(AppendOutcome { base_offset, last_offset: base_offset + records, duplicate: false })
    }

    fn commit(&self, offsets: &[(&str, &str, i32, i64)]) -> Result<(), LogError> {
        self.open.store(true, Ordering::Release);
        let producer = self.producer.clone();
        let offsets: Vec<(String, String, i32, i64)> = offsets.iter().map(|(g, t, p, o)| (g.to_string(), t.to_string(), *p, *o)).collect();
        wait(&self.runtime, async move {
            let mut p = producer.lock().await;
            let mut groups: Vec<&str> = offsets.iter().map(|o| o.0.as_str()).collect();
            groups.dedup();
            for group in groups {
                let of_group: Vec<(&str, i32, i64)> = offsets.iter().filter(|o| o.0 == group).map(|o| (o.1.as_str(), o.2, o.3)).collect();
                p.send_offsets_to(group, &of_group).await?;
            }
            p.commit().await
        })
        .map_err(|e| self.error("commit its transaction", e))?;
        self.open.store(false, Ordering::Release);
        Ok(())
    }

    fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    fn reset(&self) -> Result<(), LogError> {
        let producer = self.producer.clone();
        wait(&self.runtime, async move { producer.lock().await.register().await }).map_err(|e| self.error("register the transactional producer again", e))?;
        self.open.store(false, Ordering::Release);
        Ok(())
    }
}
