//! A Kafka client over the wire protocol: the first piece of running Eddy on an existing
//! Kafka cluster (issue 26). It speaks the same `kafka-protocol` messages the listener in
//! `src/kafka` serves, and moves record batches as the raw bytes `src/log` stores (Kafka's
//! format, magic 2), so a partition of a remote cluster reads and appends the same bytes
//! as a local `PartitionLog`. Built on this: the cluster's view (brokers, partition
//! leaders), topic creation and deletion, produce, fetch and offset lookups, consumer
//! group membership (`groups`) and transactional producers (`transactions`). Not yet
//! here: SASL and TLS, fetch sessions, pipelined requests.
//!
//! Uses nothing of Eddy but `src/log`'s record-batch builder.

pub mod blocking;
pub mod check;
pub mod cluster;
pub mod connection;
pub mod groups;
pub mod partition;
pub mod sasl;
pub mod security;
pub mod service;
pub mod transactional_writer;
pub mod transactions;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig, CreateTopicsRequest};
use kafka_protocol::messages::delete_topics_request::DeleteTopicsRequest;
use kafka_protocol::messages::describe_producers_request::{DescribeProducersRequest, TopicRequest};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, ProduceRequest, TopicProduceData};
use kafka_protocol::messages::{BrokerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use parking_lot::Mutex;

pub use connection::BrokerConnection;

/// Why a request to the cluster failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot talk to the Kafka broker at {addr}: {source}")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("none of the bootstrap brokers {bootstrap} answered (the last: {last}); check the address and that the brokers are up")]
    NoBroker {
        bootstrap: String,
        #[source]
        last: Box<ClientError>,
    },
    #[error("the Kafka broker at {addr} answered {api} with error {code} ({name})")]
    Broker { api: String, code: i16, name: String, addr: String },
    #[error("{api}: {detail}")]
    Protocol { api: String, detail: String },
    #[error("{api} is not available at {addr}: {detail}")]
    Unsupported { api: String, addr: String, detail: String },
    #[error("topic '{0}' does not exist on the Kafka cluster")]
    UnknownTopic(String),
    #[error("topic '{topic}' has no partition {partition} (it has {count})")]
    NoPartition { topic: String, partition: i32, count: i32 },
    #[error("partition {partition} of topic '{topic}' has no leader right now; the cluster is electing one, retry shortly")]
    NoLeader { topic: String, partition: i32 },
    #[error("TLS to the Kafka broker at {addr} failed: {detail}; check ssl.ca.location and that the broker's certificate names this host")]
    Tls { addr: String, detail: String },
    #[error("SASL {mechanism} authentication with the Kafka broker at {addr} failed: {detail}; check sasl.mechanism, sasl.username and sasl.password")]
    Authentication { addr: String, mechanism: &'static str, detail: String },
}

impl ClientError {
    pub(crate) fn broker(api: &str, code: i16, addr: &str) -> ClientError {
        let name = ResponseError::try_from_code(code).map(|e| format!("{e:?}")).unwrap_or_else(|| "unknown error code".into());
        ClientError::Broker { api: api.to_string(), code, name, addr: addr.to_string() }
    }

    pub(crate) fn protocol(api: &str, detail: String) -> ClientError {
        ClientError::Protocol { api: api.to_string(), detail }
    }

    /// The broker's error, if it answered with one.
    pub fn response_error(&self) -> Option<ResponseError> {
        match self {
            ClientError::Broker { code, .. } => ResponseError::try_from_code(*code),
            _ => None,
        }
    }
}

/// One partition's answer to a fetch.
#[derive(Debug, Clone)]
pub struct FetchedPartition {
    /// Record batches from the fetched offset on, as the broker stores them (the last may
    /// be cut short by the size limit, as Kafka's fetches may).
    pub records: Bytes,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// Aborted transactions in the fetched range (read-committed fetches): producer id and
    /// the offset of its first record.
    pub aborted: Vec<(i64, i64)>,
}

impl FetchedPartition {
    /// The whole data batches a reader sees, in order: control batches (transaction
    /// markers) left out, and for read-committed fetches the batches of aborted
    /// transactions too (a producer's batches from the first offset its aborted transaction
    /// names up to its abort marker). A batch cut short at the end is left out.
    pub fn visible_batches(&self) -> Vec<&[u8]> {
        self.batches(false)
    }

    /// The whole batches a read-committed reader steps through: aborted transactions' data
    /// batches left out, transaction markers kept (so a reader's position moves past them),
    /// as `PartitionLog::read_committed` returns them.
    pub fn committed_batches(&self) -> Vec<&[u8]> {
        self.batches(true)
    }

    /// Every whole batch fetched, markers and aborted ones too (a read-uncommitted reader's
    /// view, as `PartitionLog::read` returns it).
    pub fn batches_all(&self) -> Vec<&[u8]> {
        crate::log::batch::split_batches(&self.records).collect()
    }

    fn batches(&self, keep_markers: bool) -> Vec<&[u8]> {
        use crate::log::batch::{ControlKind, control_kind, split_batches};
        let mut aborting: std::collections::HashSet<i64> = std::collections::HashSet::new();
        // Each aborted transaction starts aborting its producer once, at its first offset.
        let mut pending: Vec<(i64, i64)> = self.aborted.iter().map(|(pid, first)| (*first, *pid)).collect();
        pending.sort_unstable_by(|a, b| b.cmp(a));
        let mut out = Vec::new();
        for batch in split_batches(&self.records) {
            let Ok(header) = crate::log::BatchHeader::parse(batch) else { break };
            while pending.last().is_some_and(|(first, _)| *first <= header.last_offset()) {
                if let Some((_, pid)) = pending.pop() {
                    aborting.insert(pid);
                }
            }
            if header.is_control() {
                if control_kind(batch) == Some(ControlKind::Abort) {
                    aborting.remove(&header.producer_id);
                }
                if keep_markers {
                    out.push(batch);
                }
                continue;
            }
            if !(header.is_transactional() && aborting.contains(&header.producer_id)) {
                out.push(batch);
            }
        }
        out
    }
}

/// Which offsets a fetch may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    ReadUncommitted,
    ReadCommitted,
}

/// Where the cluster's partitions are.
#[derive(Debug, Default)]
struct ClusterView {
    /// The topics the last full refresh listed.
    listed: std::collections::HashSet<String>,
    brokers: HashMap<i32, String>,
    controller: Option<i32>,
    /// Partition leaders by topic (-1: no leader).
    leaders: HashMap<String, Vec<i32>>,
}

/// A client of one Kafka cluster.
pub struct KafkaClient {
    bootstrap: Vec<String>,
    client_id: String,
    timeout: Duration,
    /// TLS and SASL for every connection.
    security: security::ClientSecurity,
    view: Mutex<ClusterView>,
    connections: tokio::sync::Mutex<HashMap<String, Arc<BrokerConnection>>>,
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

impl KafkaClient {
    /// A client of the cluster that `bootstrap` (host:port[,host:port...]) belongs to; the
    /// first broker that answers gives the cluster's brokers.
    pub async fn connect(bootstrap: &str, client_id: &str, timeout: Duration) -> Result<KafkaClient, ClientError> {
        Self::connect_securely(bootstrap, client_id, timeout, security::ClientSecurity::plaintext()).await
    }

    /// [`KafkaClient::connect`] with TLS and SASL as `security` says.
    pub async fn connect_securely(bootstrap: &str, client_id: &str, timeout: Duration, security: security::ClientSecurity) -> Result<KafkaClient, ClientError> {
        let servers: Vec<String> = bootstrap.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        let client = KafkaClient {
            bootstrap: servers,
            client_id: client_id.to_string(),
            timeout,
            security,
            view: Mutex::new(ClusterView::default()),
            connections: tokio::sync::Mutex::new(HashMap::new()),
        };
        client.refresh(None).await?;
        Ok(client)
    }

    /// A connection to `addr`, opened when there is none or the last one failed.
    async fn connection(&self, addr: &str) -> Result<Arc<BrokerConnection>, ClientError> {
        let mut conns = self.connections.lock().await;
        if let Some(c) = conns.get(addr).filter(|c| !c.is_broken()) {
            return Ok(c.clone());
        }
        let c = Arc::new(BrokerConnection::connect_securely(addr, &self.client_id, self.timeout, &self.security).await?);
        conns.insert(addr.to_string(), c.clone());
        Ok(c)
    }

    /// Whether a broker of the cluster speaks each of `apis` at a version this client does.
    pub async fn serves(&self, apis: &[kafka_protocol::messages::ApiKey]) -> Result<(), ClientError> {
        let conn = self.any_broker().await?;
        apis.iter().try_for_each(|api| conn.version(*api).map(|_| ()))
    }

    /// A connection to any broker: a known one, else a bootstrap server.
    async fn any_broker(&self) -> Result<Arc<BrokerConnection>, ClientError> {
        let known: Vec<String> = self.view.lock().brokers.values().cloned().collect();
        let mut last = None;
        for addr in known.iter().chain(self.bootstrap.iter()) {
            match self.connection(addr).await {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        let last = last.unwrap_or_else(|| ClientError::protocol("bootstrap", "no bootstrap servers were given".into()));
        Err(ClientError::NoBroker { bootstrap: self.bootstrap.join(","), last: Box::new(last) })
    }

    /// Reads the cluster's brokers and the leaders of `topics` (all topics when None).
    pub async fn refresh(&self, topics: Option<&[&str]>) -> Result<(), ClientError> {
        let conn = self.any_broker().await?;
        let wanted = topics.map(|ts| ts.iter().map(|t| MetadataRequestTopic::default().with_name(Some(topic_name(t)))).collect());
        let answer = conn.send(&MetadataRequest::default().with_topics(wanted).with_allow_auto_topic_creation(false)).await?;
        let mut view = self.view.lock();
        if topics.is_none() {
            view.listed = answer.topics.iter().filter(|t| t.error_code == 0).filter_map(|t| t.name.as_ref().map(|n| n.0.to_string())).collect();
        }
        view.brokers = answer.brokers.iter().map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port))).collect();
        view.controller = Some(answer.controller_id.0).filter(|c| *c >= 0);
        for t in &answer.topics {
            let Some(name) = t.name.as_ref().map(|n| n.0.to_string()) else { continue };
            if t.error_code != 0 {
                view.leaders.remove(&name);
                continue;
            }
            let count = t.partitions.iter().map(|p| p.partition_index + 1).max().unwrap_or(0).max(0) as usize;
            let mut leaders = vec![-1; count];
            for p in &t.partitions {
                leaders[p.partition_index as usize] = if p.error_code == 0 || p.leader_id.0 >= 0 { p.leader_id.0 } else { -1 };
            }
            view.leaders.insert(name, leaders);
        }
        Ok(())
    }

    /// Every topic of the cluster (internal ones such as `__consumer_offsets` too) and its
    /// partition count, read now.
    pub async fn topics(&self) -> Result<Vec<(String, i32)>, ClientError> {
        self.refresh(None).await?;
        let mut view = self.view.lock();
        let listed = std::mem::take(&mut view.listed);
        view.leaders.retain(|name, _| listed.contains(name));
        let mut out: Vec<(String, i32)> = view.leaders.iter().map(|(n, l)| (n.clone(), l.len() as i32)).collect();
        out.sort();
        Ok(out)
    }

    /// The cluster's brokers (id, host:port).
    pub fn brokers(&self) -> Vec<(i32, String)> {
        let mut out: Vec<(i32, String)> = self.view.lock().brokers.iter().map(|(id, a)| (*id, a.clone())).collect();
        out.sort();
        out
    }

    /// The partition count of `topic` (read from the cluster when not known yet).
    pub async fn partitions(&self, topic: &str) -> Result<i32, ClientError> {
        if let Some(l) = self.view.lock().leaders.get(topic) {
            return Ok(l.len() as i32);
        }
        self.refresh(Some(&[topic])).await?;
        self.view.lock().leaders.get(topic).map(|l| l.len() as i32).ok_or_else(|| ClientError::UnknownTopic(topic.to_string()))
    }

    /// A connection to the leader of a partition.
    async fn leader(&self, topic: &str, partition: i32) -> Result<Arc<BrokerConnection>, ClientError> {
        let count = self.partitions(topic).await?;
        if partition < 0 || partition >= count {
            return Err(ClientError::NoPartition { topic: topic.to_string(), partition, count });
        }
        let addr = {
            let view = self.view.lock();
            let leader = view.leaders.get(topic).and_then(|l| l.get(partition as usize)).copied().unwrap_or(-1);
            view.brokers.get(&leader).cloned()
        };
        match addr {
            Some(a) => self.connection(&a).await,
            None => Err(ClientError::NoLeader { topic: topic.to_string(), partition }),
        }
    }

    /// Creates a topic; `replication` -1 takes the broker's default.
    pub async fn create_topic(&self, name: &str, partitions: i32, replication: i16, configs: &[(&str, &str)]) -> Result<(), ClientError> {
        let controller = {
            let view = self.view.lock();
            view.controller.and_then(|c| view.brokers.get(&c).cloned())
        };
        let conn = match controller {
            Some(addr) => self.connection(&addr).await?,
            None => self.any_broker().await?,
        };
        let configs = configs
            .iter()
            .map(|(k, v)| {
                CreatableTopicConfig::default().with_name(StrBytes::from_string(k.to_string())).with_value(Some(StrBytes::from_string(v.to_string())))
            })
            .collect();
        let topic =
            CreatableTopic::default().with_name(topic_name(name)).with_num_partitions(partitions).with_replication_factor(replication).with_configs(configs);
        let timeout_ms = self.timeout.as_millis().min(i32::MAX as u128) as i32;
        let answer = conn.send(&CreateTopicsRequest::default().with_topics(vec![topic]).with_timeout_ms(timeout_ms)).await?;
        for r in &answer.topics {
            if r.error_code != 0 {
                return Err(ClientError::broker("CreateTopics", r.error_code, conn.addr()));
            }
        }
        self.refresh(Some(&[name])).await
    }

    /// Deletes a topic.
    pub async fn delete_topic(&self, name: &str) -> Result<(), ClientError> {
        let conn = self.any_broker().await?;
        let timeout_ms = self.timeout.as_millis().min(i32::MAX as u128) as i32;
        // By name (versions 1 to 5; later ones name topics in `topics`).
        let request = DeleteTopicsRequest::default().with_topic_names(vec![topic_name(name)]).with_timeout_ms(timeout_ms);
        let answer = conn.send(&request).await?;
        for r in &answer.responses {
            if r.error_code != 0 {
                return Err(ClientError::broker("DeleteTopics", r.error_code, conn.addr()));
            }
        }
        self.view.lock().leaders.remove(name);
        Ok(())
    }

    /// Appends one record batch (Kafka's format) to a partition; the offset the broker gave
    /// its first record. `acks`: -1 all in-sync replicas, 1 the leader.
    pub async fn produce(&self, topic: &str, partition: i32, batch: Bytes, acks: i16) -> Result<i64, ClientError> {
        self.produce_in(topic, partition, batch, acks, None).await
    }

    /// [`KafkaClient::produce`] for a transactional producer's batch.
    pub(crate) async fn produce_in(&self, topic: &str, partition: i32, batch: Bytes, acks: i16, txn: Option<&str>) -> Result<i64, ClientError> {
        let conn = self.leader(topic, partition).await?;
        let data = TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default().with_index(partition).with_records(Some(batch))]);
        let timeout_ms = self.timeout.as_millis().min(i32::MAX as u128) as i32;
        let txn = txn.map(|t| kafka_protocol::messages::TransactionalId(StrBytes::from_string(t.to_string())));
        let request = ProduceRequest::default().with_transactional_id(txn).with_acks(acks).with_timeout_ms(timeout_ms).with_topic_data(vec![data]);
        let answer = conn.send(&request).await?;
        let p = answer
            .responses
            .first()
            .and_then(|t| t.partition_responses.first())
            .ok_or_else(|| ClientError::protocol("Produce", "no partition in the answer".into()))?;
        self.partition_answer("Produce", p.error_code, topic, &conn)?;
        Ok(p.base_offset)
    }

    /// Record batches of a partition from `offset`, at most about `max_bytes`.
    pub async fn fetch(&self, topic: &str, partition: i32, offset: i64, max_bytes: i32, isolation: Isolation) -> Result<FetchedPartition, ClientError> {
        let conn = self.leader(topic, partition).await?;
        self.fetch_waiting(conn, (topic, partition), offset, max_bytes, isolation, Duration::ZERO).await
    }

    /// A connection of its own to a partition's leader, for long polls (a waiting fetch
    /// must not hold up other requests to that broker).
    pub async fn dedicated_leader(&self, topic: &str, partition: i32, wait: Duration) -> Result<Arc<BrokerConnection>, ClientError> {
        let pooled = self.leader(topic, partition).await?;
        Ok(Arc::new(BrokerConnection::connect_securely(pooled.addr(), &self.client_id, self.timeout + wait, &self.security).await?))
    }

    /// [`KafkaClient::fetch`] on `conn` (a connection to the leader), the broker holding
    /// the answer up to `wait` until there is something past `offset` (a long poll).
    pub async fn fetch_waiting(
        &self,
        conn: Arc<BrokerConnection>,
        (topic, partition): (&str, i32),
        offset: i64,
        max_bytes: i32,
        isolation: Isolation,
        wait: Duration,
    ) -> Result<FetchedPartition, ClientError> {
        let wanted = FetchPartition::default().with_partition(partition).with_fetch_offset(offset).with_partition_max_bytes(max_bytes);
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(wait.as_millis().min(i32::MAX as u128) as i32)
            .with_min_bytes(i32::from(!wait.is_zero()))
            .with_max_bytes(max_bytes)
            .with_isolation_level(if isolation == Isolation::ReadCommitted { 1 } else { 0 })
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default().with_topic(topic_name(topic)).with_partitions(vec![wanted])]);
        let answer = conn.send(&request).await?;
        if answer.error_code != 0 {
            return Err(ClientError::broker("Fetch", answer.error_code, conn.addr()));
        }
        let p =
            answer.responses.first().and_then(|t| t.partitions.first()).ok_or_else(|| ClientError::protocol("Fetch", "no partition in the answer".into()))?;
        self.partition_answer("Fetch", p.error_code, topic, &conn)?;
        Ok(FetchedPartition {
            records: p.records.clone().unwrap_or_default(),
            high_watermark: p.high_watermark,
            last_stable_offset: p.last_stable_offset,
            log_start_offset: p.log_start_offset,
            aborted: p.aborted_transactions.iter().flatten().map(|a| (a.producer_id.0, a.first_offset)).collect(),
        })
    }

    /// The offset for a timestamp: -1 the end of the partition, -2 its start, else the
    /// first record at or after it (None: none is).
    pub async fn list_offset(&self, topic: &str, partition: i32, timestamp: i64) -> Result<Option<i64>, ClientError> {
        let conn = self.leader(topic, partition).await?;
        let wanted = ListOffsetsPartition::default().with_partition_index(partition).with_timestamp(timestamp);
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default().with_name(topic_name(topic)).with_partitions(vec![wanted])]);
        let answer = conn.send(&request).await?;
        let p = answer
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or_else(|| ClientError::protocol("ListOffsets", "no partition in the answer".into()))?;
        self.partition_answer("ListOffsets", p.error_code, topic, &conn)?;
        Ok(Some(p.offset).filter(|o| *o >= 0))
    }

    /// An idempotent producer's epoch and last sequence number in a partition, as the
    /// leader remembers it (DescribeProducers, Kafka 2.8 and later); None when it has not
    /// written there (or the broker has forgotten it).
    pub async fn producer_sequence(&self, topic: &str, partition: i32, producer_id: i64) -> Result<Option<(i16, i32)>, ClientError> {
        let conn = self.leader(topic, partition).await?;
        let request =
            DescribeProducersRequest::default().with_topics(vec![TopicRequest::default().with_name(topic_name(topic)).with_partition_indexes(vec![partition])]);
        let answer = conn.send(&request).await?;
        let p = answer
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or_else(|| ClientError::protocol("DescribeProducers", "no partition in the answer".into()))?;
        self.partition_answer("DescribeProducers", p.error_code, topic, &conn)?;
        let state = p.active_producers.iter().find(|s| s.producer_id.0 == producer_id);
        Ok(state.map(|s| (s.producer_epoch as i16, s.last_sequence)).filter(|(_, seq)| *seq >= 0))
    }

    /// A partition's error code as the client's error; leadership errors also mean the
    /// view is stale, so the next request reads it again.
    fn partition_answer(&self, api: &str, code: i16, topic: &str, conn: &BrokerConnection) -> Result<(), ClientError> {
        if code == 0 {
            return Ok(());
        }
        let stale = matches!(
            ResponseError::try_from_code(code),
            Some(ResponseError::NotLeaderOrFollower | ResponseError::LeaderNotAvailable | ResponseError::UnknownTopicOrPartition)
        );
        if stale {
            self.view.lock().leaders.remove(topic);
        }
        Err(ClientError::broker(api, code, conn.addr()))
    }
}
