//! One partition as the readers and writers above the log see it, whoever keeps it: the
//! embedded [`PartitionLog`], or a partition of a Kafka cluster
//! (`kafka_client::partition::RemotePartition`). Blocking, like the log: callers on the
//! async runtime use blocking threads.

use tokio::sync::watch;

use super::{AppendOutcome, LogError, PartitionLog};

/// A partition's offsets, reads and appends.
pub trait PartitionStore: Send + Sync {
    fn topic(&self) -> &str;
    fn id(&self) -> i32;
    /// The first offset still stored.
    fn start_offset(&self) -> i64;
    /// The offset the next record will take (as last seen, for a remote partition).
    fn end_offset(&self) -> i64;
    /// The end offset asked of whoever keeps the partition now (a remote partition's seen
    /// end may lag). Blocking.
    fn current_end_offset(&self) -> Result<i64, LogError> {
        Ok(self.end_offset())
    }
    /// Below it every transaction has ended.
    fn last_stable_offset(&self) -> i64;
    /// Whether the partition's topic was deleted under its readers.
    fn is_deleted(&self) -> bool;
    /// Wakes when records can be read past the last value seen.
    fn subscribe(&self) -> watch::Receiver<i64>;
    /// Whole record batches from the one holding `offset`, about `max_bytes`.
    fn read(&self, offset: i64, max_bytes: usize) -> Result<Vec<u8>, LogError>;
    /// [`PartitionStore::read`] up to the last stable offset, aborted transactions' batches
    /// left out and their markers kept.
    fn read_committed(&self, offset: i64, max_bytes: usize) -> Result<Vec<u8>, LogError>;
    /// Appends a record batch (Kafka's format); the offsets it took.
    fn append(&self, batch: Vec<u8>) -> Result<AppendOutcome, LogError>;
    /// The first offset whose record is at or after `timestamp` (None: none is). Blocking.
    fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<i64>, LogError>;
    /// What the partition remembers of an idempotent producer: its epoch and the sequence
    /// of its last batch (None when it has not written here). Blocking.
    fn producer_sequence(&self, producer_id: i64) -> Result<Option<ProducerSequence>, LogError>;
    /// Tells readers the partition's topic is gone.
    fn mark_deleted(&self);
}

/// An idempotent producer's place in a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerSequence {
    pub epoch: i16,
    /// The sequence number of its last batch's last record.
    pub last_sequence: i32,
}

impl PartitionStore for PartitionLog {
    fn topic(&self) -> &str {
        PartitionLog::topic(self)
    }

    fn id(&self) -> i32 {
        PartitionLog::id(self)
    }

    fn start_offset(&self) -> i64 {
        PartitionLog::start_offset(self)
    }

    fn end_offset(&self) -> i64 {
        PartitionLog::end_offset(self)
    }

    fn last_stable_offset(&self) -> i64 {
        PartitionLog::last_stable_offset(self)
    }

    fn is_deleted(&self) -> bool {
        PartitionLog::is_deleted(self)
    }

    fn subscribe(&self) -> watch::Receiver<i64> {
        PartitionLog::subscribe(self)
    }

    fn read(&self, offset: i64, max_bytes: usize) -> Result<Vec<u8>, LogError> {
        PartitionLog::read(self, offset, max_bytes)
    }

    fn read_committed(&self, offset: i64, max_bytes: usize) -> Result<Vec<u8>, LogError> {
        PartitionLog::read_committed(self, offset, max_bytes)
    }

    fn append(&self, batch: Vec<u8>) -> Result<AppendOutcome, LogError> {
        PartitionLog::append(self, batch)
    }

    fn producer_sequence(&self, producer_id: i64) -> Result<Option<ProducerSequence>, LogError> {
        Ok(self.producer_state(producer_id).and_then(|s| s.last_seq().map(|last_sequence| ProducerSequence { epoch: s.epoch, last_sequence })))
    }

    fn mark_deleted(&self) {
        PartitionLog::mark_deleted(self)
    }

    fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<i64>, LogError> {
        PartitionLog::offset_for_timestamp(self, timestamp)
    }
}
