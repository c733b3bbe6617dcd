//! A partition of a remote Kafka cluster as the query runtime uses a local
//! `PartitionLog`: blocking reads of committed record batches from an offset (aborted
//! transactions left out, markers kept), blocking appends of record batches, the end
//! offsets, and a watch of the end offset that wakes readers when records arrive (fed by a
//! long-polling fetch on a connection of its own). Blocking calls run on the caller's
//! thread (the runtime's blocking pool) and wait on the client's runtime.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Once, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::runtime::Handle;
use tokio::sync::watch;

use super::{ClientError, Isolation, KafkaClient};
use crate::log::{AppendOutcome, BatchHeader, LogError, PartitionStore, ProducerSequence};

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
    deleted: AtomicBool,
    me: Weak<RemotePartition>,
    started: Once,
}

/// Long-polls the partition's leader for records past the last stable offset seen, and
/// records the ends each answer gives, until the partition is dropped or deleted.
async fn follow_ends(weak: Weak<RemotePartition>) {
    let mut conn = None;
    loop {
        let Some(p) = weak.upgrade().filter(|p| !p.deleted.load(Ordering::Acquire)) else { return };
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
}

impl RemotePartition {
    /// The partition. Its ends are read, and a task on `runtime` starts keeping them
    /// current (until the partition is dropped or deleted), when first asked for: a server
    /// sees every topic of the cluster but reads few.
    pub fn open(client: Arc<KafkaClient>, topic: &str, id: i32, runtime: Handle) -> Arc<RemotePartition> {
        Arc::new_cyclic(|me| RemotePartition {
            client,
            topic: topic.to_string(),
            id,
            runtime,
            me: me.clone(),
            started: Once::new(),
            ends: watch::Sender::new(Ends::default()),
            end: watch::Sender::new(0),
            polls: AtomicI64::new(0),
            deleted: AtomicBool::new(false),
        })
    }

    /// Reads the ends now and starts the task that follows them (once). Blocking.
    fn start(&self) {
        self.started.call_once(|| {
            let (client, topic, id) = (self.client.clone(), self.topic.clone(), self.id);
            let first = super::blocking::wait(&self.runtime, async move {
                let start = client.list_offset(&topic, id, -2).await?.unwrap_or(0);
                client.fetch(&topic, id, start, 1, Isolation::ReadCommitted).await
            });
            match first {
                Ok(f) => self.observe(&f),
                Err(e) => tracing::warn!(topic = %self.topic, partition = self.id, "cannot read the partition's ends yet (retrying): {e}"),
            }
            self.runtime.spawn(follow_ends(self.me.clone()));
        });
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

    /// The ends as last seen (read first when they never were).
    pub fn ends(&self) -> Ends {
        self.start();
        *self.ends.borrow()
    }

    fn fetch(&self, offset: i64, max_bytes: usize, isolation: Isolation) -> Result<super::FetchedPartition, LogError> {
        let max = i32::try_from(max_bytes).unwrap_or(i32::MAX);
        let (client, topic, id) = (self.client.clone(), self.topic.clone(), self.id);
        match super::blocking::wait(&self.runtime, async move { client.fetch(&topic, id, offset, max, isolation).await }) {
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
        let (client, topic, id) = (self.client.clone(), self.topic.clone(), self.id);
        let end = super::blocking::wait(&self.runtime, async move { client.list_offset(&topic, id, -1).await }).map_err(|e| self.log_error(e, -1))?;
        Ok(end.unwrap_or(0))
    }

    fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Release);
        self.end.send_modify(|_| {});
    }

    fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<i64>, LogError> {
        let (client, topic, id) = (self.client.clone(), self.topic.clone(), self.id);
        super::blocking::wait(&self.runtime, async move { client.list_offset(&topic, id, timestamp.max(0)).await }).map_err(|e| self.log_error(e, -1))
    }

    fn producer_sequence(&self, producer_id: i64) -> Result<Option<ProducerSequence>, LogError> {
        let (client, topic, id) = (self.client.clone(), self.topic.clone(), self.id);
        let state =
            super::blocking::wait(&self.runtime, async move { client.producer_sequence(&topic, id, producer_id).await }).map_err(|e| self.log_error(e, -1))?;
        Ok(state.map(|(epoch, last_sequence)| ProducerSequence { epoch, last_sequence }))
    }

    /// Wakes when the last stable offset moves (records a committed reader can read).
    fn subscribe(&self) -> watch::Receiver<i64> {
        self.start();
        self.end.subscribe()
    }

    fn read(&self, offset: i64, max_bytes: usize) -> Result<Vec<u8>, LogError> {
        Ok(self.fetch(offset, max_bytes, Isolation::ReadUncommitted)?.batches_all().concat())
    }

    /// Records below the last stable offset, without aborted transactions' batches (their
    /// markers stay, so readers move past them). A chunk of aborted batches only is read
    /// past, so nothing comes back only at the last stable offset.
    fn read_committed(&self, offset: i64, max_bytes: usize) -> Result<Vec<u8>, LogError> {
        let mut at = offset;
        loop {
            let fetched = self.fetch(at, max_bytes, Isolation::ReadCommitted)?;
            let committed = fetched.committed_batches();
            if !committed.is_empty() {
                return Ok(committed.concat());
            }
            let past = fetched.batches_all().last().and_then(|b| BatchHeader::parse(b).ok()).map(|h| h.last_offset() + 1);
            match past {
                Some(next) if next > at => at = next,
                _ => return Ok(Vec::new()),
            }
        }
    }

    /// Appends once every in-sync replica has the batch.
    fn append(&self, batch: Vec<u8>) -> Result<AppendOutcome, LogError> {
        let records = BatchHeader::parse(&batch).map(|h| i64::from(h.last_offset_delta)).map_err(LogError::Batch)?;
        let (client, topic, id) = (self.client.clone(), self.topic.clone(), self.id);
        let base_offset =
            super::blocking::wait(&self.runtime, async move { client.produce(&topic, id, Bytes::from(batch), -1).await }).map_err(|e| self.log_error(e, -1))?;
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
