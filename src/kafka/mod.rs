//! The Kafka wire protocol listener: unmodified Kafka clients (kcat, librdkafka,
//! kafka-python, the Java client) produce to and consume from Eddy's log.
//!
//! Owns framing (`connection`), the API table (`versions`), and one handler module per
//! family of requests. Message bodies come from the `kafka-protocol` crate; record batches
//! stay the raw bytes `src/log` stores, so produce appends what arrived and fetch returns
//! what is stored. Uses only `src/log` below it: topics created here are the topics SQL
//! sees, and group offsets live in the log's `OffsetStore`.

mod admin;
mod connection;
mod coordinator;
mod errors;
mod fetch;
pub mod frame;
mod groups;
mod metadata;
mod produce;
mod producer_ids;
mod transactions;
pub mod versions;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::log::Log;

pub use connection::MAX_FRAME_BYTES;
pub use errors::KafkaError;
pub use frame::{FrameError, Incoming, decode_request};
pub use versions::SUPPORTED_APIS;

/// Settings of the Kafka listener.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// Host written into Metadata and FindCoordinator responses.
    pub advertised_host: String,
    /// Port written into responses (0: the port the listener bound).
    pub advertised_port: i32,
    /// Create topics that Metadata or Produce name but that do not exist
    /// (`auto.create.topics.enable`).
    pub auto_create_topics: bool,
    /// Partitions of auto-created topics and of CreateTopics with -1 (`num.partitions`).
    pub default_partitions: i32,
    /// How long a new group waits for more members before its first rebalance
    /// (`group.initial.rebalance.delay.ms`).
    pub group_initial_delay: Duration,
    /// Connections held open at once (`max.connections`); 0: chosen by the server.
    pub max_connections: usize,
    /// Idle connections close (`connections.max.idle.ms`); a request frame must arrive
    /// whole within `request` of its first byte.
    pub timeouts: crate::net::ConnectionTimeouts,
    /// Bytes of request frames held in memory at once over all connections
    /// (`queued.max.request.bytes`); a connection whose frame does not fit waits.
    pub max_buffered_request_bytes: usize,
}

/// Memory for request frames by default: a few of the largest frames at once.
pub const DEFAULT_BUFFERED_REQUEST_BYTES: usize = 256 * 1024 * 1024;

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            advertised_host: "127.0.0.1".into(),
            advertised_port: 0,
            auto_create_topics: true,
            default_partitions: 1,
            group_initial_delay: Duration::from_millis(3000),
            max_connections: 1024,
            timeouts: crate::net::ConnectionTimeouts { idle: Duration::from_secs(600), request: Duration::from_secs(30) },
            max_buffered_request_bytes: DEFAULT_BUFFERED_REQUEST_BYTES,
        }
    }
}

/// Everything a request handler needs: the log, the group coordinator and the producer-id
/// allocator. One per server, shared by all connections.
pub struct Broker {
    pub(crate) log: Arc<Log>,
    pub(crate) config: KafkaConfig,
    pub(crate) groups: coordinator::GroupCoordinator,
    pub(crate) producer_ids: producer_ids::ProducerIdAllocator,
    pub(crate) txns: transactions::TxnCoordinator,
    pub(crate) connections: Arc<crate::net::ConnectionLimit>,
    /// Bytes of request frames in memory; a frame holds its bytes until answered.
    pub(crate) request_bytes: Arc<tokio::sync::Semaphore>,
}

/// The only broker's node id.
pub(crate) const NODE_ID: i32 = 0;

impl Broker {
    /// Opens the broker over `log`; producer-id blocks and transaction state are persisted
    /// under `data_dir`. Blocking (reads small files; aborts transactions a crash left open).
    pub fn open(log: Arc<Log>, data_dir: &std::path::Path, config: KafkaConfig) -> Result<Arc<Broker>, KafkaError> {
        let producer_ids = producer_ids::ProducerIdAllocator::open(&data_dir.join("kafka"))?;
        let txns = transactions::TxnCoordinator::open(&data_dir.join("kafka"), &log)?;
        let groups = coordinator::GroupCoordinator::new(config.group_initial_delay);
        let connections = crate::net::ConnectionLimit::new("kafka", config.max_connections);
        let request_bytes =
            Arc::new(tokio::sync::Semaphore::new(config.max_buffered_request_bytes.clamp(MAX_FRAME_BYTES, tokio::sync::Semaphore::MAX_PERMITS)));
        Ok(Arc::new(Broker { log, config, groups, producer_ids, txns, connections, request_bytes }))
    }
}

/// Accepts connections until `shutdown` turns true; each connection is served by its own
/// task, so one misbehaving client never holds up the others. Also runs the group
/// coordinator's timer (session expiry, rebalance deadlines).
pub async fn serve(listener: TcpListener, broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let ticker = tokio::spawn(coordinator::run_timers(broker.clone(), shutdown.clone()));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Over the limit the connection is closed at once, as Kafka does
                    // (clients retry with backoff).
                    let Some(slot) = broker.connections.try_acquire() else { continue };
                    let _ = stream.set_nodelay(true);
                    let b = broker.clone();
                    let stop = shutdown.clone();
                    tokio::spawn(async move {
                        let _slot = slot;
                        if let Err(e) = connection::serve_connection(stream, peer, b, stop).await {
                            tracing::debug!(%peer, "kafka connection closed: {e}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("kafka listener accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
    ticker.abort();
}
