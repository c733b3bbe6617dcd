//! The Kafka layer's error type, and the mapping from log errors to Kafka error codes.

use kafka_protocol::ResponseError;

use crate::log::{BatchError, LogError};

#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("request frame of {size} bytes is larger than the {max}-byte limit; send smaller requests (max.request.size)")]
    FrameTooLarge { size: i64, max: usize },
    #[error("the connection closed after {got} of a {size}-byte request frame")]
    Truncated { got: usize, size: usize },
    #[error("only {got} of a {size}-byte request frame arrived within the request timeout; the connection was closed")]
    Timeout { got: usize, size: usize },
    #[error("no handler for {0}")]
    NoHandler(String),
    #[error(transparent)]
    Frame(#[from] super::frame::FrameError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("I/O error on a Kafka connection: {0}")]
    Io(#[from] std::io::Error),
}

/// The Kafka error code a client acts on for a log error.
pub(crate) fn log_error_code(e: &LogError) -> i16 {
    let err = match e {
        LogError::UnknownTopic(_) | LogError::UnknownPartition { .. } => ResponseError::UnknownTopicOrPartition,
        LogError::TopicExists(_) => ResponseError::TopicAlreadyExists,
        LogError::InvalidTopicName { .. } => ResponseError::InvalidTopicException,
        LogError::InvalidPartitions { .. } | LogError::TooManyPartitions { .. } => ResponseError::InvalidPartitions,
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        LogError::EmptyBatch => ResponseError::InvalidRecord,
        LogError::Batch(BatchError::Crc { .. }) => ResponseError::CorruptMessage,
        LogError::Batch(_) => ResponseError::CorruptMessage,
        LogError::ProducerFenced { .. } => ResponseError::InvalidProducerEpoch,
        LogError::TransactionFenced { .. } => ResponseError::ProducerFenced,
        LogError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        LogError::Corrupt { .. } => ResponseError::KafkaStorageError,
        // A full disk is a storage error, as Kafka reports a log directory it cannot write.
        LogError::Io { .. } | LogError::DiskFull { .. } | LogError::PartitionOffline { .. } => ResponseError::KafkaStorageError,
        // The cluster behind it did not answer: retriable, as a follower's fetch would be.
        LogError::Remote { .. } => ResponseError::NotLeaderOrFollower,
        LogError::Cluster { .. } => ResponseError::UnknownServerError,
    };
    err.code()
}
