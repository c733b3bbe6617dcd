//! A partition of a remote Kafka cluster as the query runtime uses a local
//! `PartitionLog`: blocking reads of committed record batches from an offset (aborted
//! transactions left out, markers kept), blocking appends of record batches, the end
//! offsets, and a watch of the end offset that wakes readers when records arrive (fed by a
//! long-polling fetch on a connection of its own). Blocking calls run on the caller's
//! thread (the runtime's blocking pool) and wait on the client's runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::runtime::Handle;
use tokio::sync::watch;

use super::{ClientError, Isolation, KafkaClient};
use crate::log::{AppendOutcome, BatchHeader, LogError, PartitionStore};

/// How long one long poll waits for records before it asks again.
const POLL_WAIT: Duration = Duration::from_millis(500);

/// The ends of a remote partition, as its last fetch saw them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ends {
    pub log_start: i64,
    pub last_stable: i64,
    pub high_watermark: i64,
}

/// One partition of a topic on the cluster.
pub struct RemotePartition {
    client: Arc<KafkaClient>,
    topic: String,
    id: i32,
    runtime: Handle,
    ends: watch::Sender<Ends>,
    /// The end offset readers are woken for (the last stable offset).
    end: watch::Sender<i64>,
    polls: AtomicI64,
}

impl RemotePartition {
    /// The partition, with a task on `runtime` that keeps its ends current until the
    /// partition is dropped.
    pub fn open(client: Arc<KafkaClient>, topic: &str, id: i32, runtime: Handle) -> Arc<RemotePartition> {
        let partition = Arc::new(RemotePartition {
            client,
            topic: topic.to_string(),
            id,
            runtime: runtime.clone(),
            ends: watch::Sender::new(Ends::default()),
            end: watch::Sender::new(0),
            polls: AtomicI64::new(0),
        });
        let weak = Arc::downgrade(&partition);
        runtime.spawn(async move {
            let mut conn = None;
            loop {
                let Some(p) = weak.upgrade() else { return };
                let from = p.end.borrow().to_owned();
                let polled = async {
                    let c = match &conn {
                        Some(c) => Arc::clone(c),
                        None => p.client.dedicated_leader(&p.topic, p.id, POLL_WAIT).await?,
                    };
                    conn = Some(c.clone());
                    p.client.fetch_waiting(c, (&p.topic, p.id), from, 1, Isolation::ReadCommitted, POLL_WAIT).await
                }
                .await;
                match polled {
                    Ok(f) => p.observe(&f),
                    Err(e) => {
                        // Leadership moved or the broker went away: a new connection next time.
                        conn = None;
                        tracing::debug!(topic = %p.topic, partition = p.id, "polling the partition's end failed: {e}");
                        drop(p);
                        tokio::time::sleep(POLL_WAIT).await;
                        continue;
                    }
                }
                p.polls.fetch_add(1, Ordering::Relaxed);
            }
        });
        partition
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn id(&self) -> i32 {
        self.id
    }

    fn observe(&self, f: &super::FetchedPartition) {
        let ends = Ends { log_start: f.log_start_offset, last_stable: f.last_stable_offset.max(0), high_watermark: f.high_watermark };
        self.ends.send_if_modified(|e| std::mem::replace(e, ends) != ends);
        self.end.send_if_modified(|e| std::mem::replace(e, ends.last_stable) != ends.last_stable);
    }

    /// The ends as last seen.
    pub fn ends(&self) -> Ends {
        *self.ends.borrow()
    }

    fn fetch(&self, offset: i64, max_bytes: usize, isolation: Isolation) -> Result<super::FetchedPartition, LogError> {
        let max = i32::try_from(max_bytes).unwrap_or(i32::MAX);
        match self.runtime.block_on(self.client.fetch(&self.topic, self.id, offset, max, isolation)) {
            Ok(f) => {
                self.observe(&f);
                Ok(f)
            }
            Err(e) => Err(self.log_error(e, offset)),
        }
    }

    /// A client error as the log's: an offset out of range as the log says it (readers
    /// move to the start), the rest as the cluster's.
    fn log_error(&self, e: ClientError, offset: i64) -> LogError {
        if e.response_error() == Some(kafka_protocol::ResponseError::OffsetOutOfRange) {
            let ends = self.ends();
            return LogError::OffsetOutOfRange { topic: self.topic.clone(), partition: self.id, offset, start: ends.log_start, end: ends.high_watermark };
        }
        LogError::Remote { topic: self.topic.clone(), partition: self.id, source: Arc::new(e) }
    }
}

impl PartitionStore for RemotePartition {
    fn topic(&self) -> &str {
        &self.topic
    }

    fn id(&self) -> i32 {
        self.id
    }

    fn start_offset(&self) -> i64 {
        self.ends().log_start
    }

    fn end_offset(&self) -> i64 {
        self.ends().high_watermark
    }

    fn last_stable_offset(&self) -> i64 {
        self.ends().last_stable
    }

    fn current_end_offset(&self) -> Result<i64, LogError> {
        let end = self.runtime.block_on(self.client.list_offset(&self.topic, self.id, -1)).map_err(|e| self.log_error(e, -1))?;
        Ok(end.unwrap_or(0))
    }

    fn is_deleted(&self) -> bool {
        false
    }

    /// Wakes when the last stable offset moves (records a committed reader can read).
    fn subscribe(&self) -> watch::Receiver<i64> {
        self.end.subscribe()
    }

    fn read(&self, offset: i64, max_bytes: usize) -> Result<Vec<u8>, LogError> {
        Ok(self.fetch(offset, max_bytes, Isolation::ReadUncommitted)?.batches_all().concat())
    }

    fn read_committed(&self, offset: i64, max_bytes: usize) -> Result<Vec<u8>, LogError> {
        Ok(self.fetch(offset, max_bytes, Isolation::ReadCommitted)?.committed_batches().concat())
    }

    /// Appends once every in-sync replica has the batch.
    fn append(&self, batch: Vec<u8>) -> Result<AppendOutcome, LogError> {
        let records = BatchHeader::parse(&batch).map(|h| i64::from(h.last_offset_delta)).map_err(LogError::Batch)?;
        let base_offset = self.runtime.block_on(self.client.produce(&self.topic, self.id, Bytes::from(batch), -1)).map_err(|e| self.log_error(e, -1))?;
        // The write is in: the end is at least past it (readers here need not wait for a poll).
        let end = base_offset + records + 1;
        self.ends.send_if_modified(|e| {
            let moved = end > e.high_watermark;
            e.high_watermark = e.high_watermark.max(end);
            moved
        });
        Ok(AppendOutcome { base_offset, last_offset: base_offset + records, duplicate: false })
    }
}
