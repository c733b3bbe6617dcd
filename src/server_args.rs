//! The `eddy server` command line: every option, and the server configuration made of them.

use std::path::PathBuf;

use clap::Args;

use eddy::engine::EngineConfig;
use eddy::exec::OffsetReset;
use eddy::log::{FlushPolicy, TopicConfig};
use eddy::net::ConnectionTimeouts;
use eddy::server::guard::GuardConfig;
use eddy::server::{HttpConfig, ServerConfig};

fn ms(v: u64) -> std::time::Duration {
    std::time::Duration::from_millis(v.max(1))
}

/// The values of a comma-separated option, without empty ones.
fn non_empty(v: Vec<String>) -> Vec<String> {
    v.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

#[derive(Args)]
pub struct ServerArgs {
    #[arg(long, default_value = "./eddy-data")]
    data_dir: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8088")]
    http_listen: String,
    /// Address for the Kafka protocol listener; '' turns it off.
    #[arg(long, default_value = "127.0.0.1:9092")]
    kafka_listen: String,
    /// Keep every topic (sources, sinks, Eddy's internal topics) on this Kafka cluster
    /// (host:port[,host:port...]) instead of the data directory, which then holds only
    /// query state and checkpoints. The Kafka listener is then off: clients use the cluster.
    #[arg(long, default_value = "")]
    kafka_bootstrap: String,
    /// Replicas per partition of the topics Eddy creates on the cluster (-1: the broker's
    /// default.replication.factor).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    kafka_replication_factor: i16,
    #[command(flatten)]
    kafka_client: KafkaClientArgs,
    /// With --kafka-bootstrap: how many other servers of the service keep a warm copy of
    /// each partition's query state (Kafka Streams' num.standby.replicas), following its
    /// changelog; a server that dies leaves each partition to a server with a copy.
    #[arg(long, default_value_t = 1)]
    standby_replicas: usize,
    /// With --kafka-bootstrap: the service this server belongs to (ksqlDB's
    /// ksql.service.id). Servers of one service share its command topic and internal topics
    /// (named `_eddy-<service id>_...`); services on one cluster share nothing.
    #[arg(long, default_value = "default_")]
    service_id: String,
    /// With --kafka-bootstrap: how long a server of the service that stops answering
    /// (killed, cut off) stays its active server before a standby takes over (Kafka's
    /// session.timeout.ms; brokers accept 6000 and up by default).
    #[arg(long, default_value_t = eddy::kafka_client::service::DEFAULT_SESSION_TIMEOUT.as_millis() as u64)]
    kafka_session_timeout_ms: u64,
    /// With --kafka-bootstrap: the URL other servers of the service reach this one's REST
    /// API at (standbys forward queries to the active server there); by default the
    /// address --http-listen bound. Set it when listening on 0.0.0.0.
    #[arg(long)]
    advertised_url: Option<String>,
    /// A second listener serving only Confluent Schema Registry's API, for clients that
    /// expect it on its own port (Confluent's is 8081); '' (the default) serves it on the
    /// HTTP port only.
    #[arg(long, default_value = "")]
    schema_registry_listen: String,
    /// Use an external Confluent-compatible schema registry (http://host:8081) for the
    /// AVRO and JSON_SR formats instead of the built-in one.
    #[arg(long)]
    schema_registry_url: Option<String>,
    /// Host written into Kafka Metadata responses when listening on 0.0.0.0.
    #[arg(long, default_value = "127.0.0.1")]
    kafka_advertised_host: String,
    /// Port written into Kafka Metadata responses (by default the port --kafka-listen
    /// bound), for clients that reach the listener through a proxy or a port mapping.
    #[arg(long)]
    kafka_advertised_port: Option<u16>,
    /// Partitions of topics Kafka clients create implicitly (num.partitions).
    #[arg(long, default_value_t = 1)]
    kafka_default_partitions: i32,
    /// Whether Kafka clients may create topics by naming them (auto.create.topics.enable).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    kafka_auto_create_topics: bool,
    /// How long a new consumer group waits for more members (group.initial.rebalance.delay.ms).
    #[arg(long, default_value_t = 3000)]
    kafka_group_initial_delay_ms: u64,
    /// Default durability of topics: always (fsync before acknowledging), interval, never.
    #[arg(long, default_value = "always")]
    flush: String,
    /// Period for --flush interval.
    #[arg(long, default_value_t = 1000)]
    flush_interval_ms: u64,
    /// Where new queries start without `SET 'auto.offset.reset'`: latest or earliest.
    #[arg(long, default_value = "latest")]
    auto_offset_reset: String,
    /// How often retention and compaction run (Kafka's log.retention.check.interval.ms).
    #[arg(long, default_value_t = 5000)]
    log_cleaner_interval_ms: u64,
    /// Threads serving HTTP connections (each connection stays on one); 0 = half the cores.
    #[arg(long, default_value_t = 0)]
    http_threads: usize,
    /// Memory (MiB) for rows that key lookups read recently, held in front of RocksDB; 0 turns it off.
    #[arg(long, default_value_t = (eddy::state::DEFAULT_HOT_ROWS_BYTES >> 20) as u64)]
    lookup_cache_mb: u64,
    /// Most partitions one topic may have (SQL, REST and Kafka CreateTopics are refused beyond).
    #[arg(long, default_value_t = eddy::log::PartitionLimits::default().per_topic)]
    max_partitions_per_topic: i64,
    /// HTTP connections held open at once; one more is answered 503 (0: derived from the
    /// open-file limit).
    #[arg(long, default_value_t = 0)]
    http_max_connections: usize,
    /// An HTTP connection with no request in flight and nothing sent or received for this
    /// long is closed.
    #[arg(long, default_value_t = 60_000)]
    http_idle_timeout_ms: u64,
    /// A request head (HTTP) must arrive whole within this of its first byte.
    #[arg(long, default_value_t = 30_000)]
    http_request_timeout_ms: u64,
    /// The largest request body accepted; larger ones get a 413.
    #[arg(long, default_value_t = eddy::server::DEFAULT_MAX_BODY_BYTES)]
    http_max_body_bytes: usize,
    /// Origins (e.g. https://console.example.com) whose web pages may call the API
    /// (CORS, ksqlDB's access.control.allow.origin); '*' allows any. Comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "")]
    http_allow_origin: Vec<String>,
    /// Host names accepted besides localhost and loopback addresses when listening on
    /// a loopback address (DNS-rebinding protection). Comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "")]
    http_allowed_hosts: Vec<String>,
    /// Kafka connections held open at once (max.connections; 0: derived from the
    /// open-file limit); more are closed on accept.
    #[arg(long, default_value_t = 0)]
    kafka_max_connections: usize,
    /// Idle Kafka connections close after this long (connections.max.idle.ms).
    #[arg(long, default_value_t = 600_000)]
    kafka_idle_timeout_ms: u64,
    /// A Kafka request frame must arrive whole within this of its size prefix.
    #[arg(long, default_value_t = 30_000)]
    kafka_request_timeout_ms: u64,
    /// Memory (MiB) for Kafka request frames being read or served, over all connections
    /// (queued.max.request.bytes); a frame that does not fit waits.
    #[arg(long, default_value_t = (eddy::kafka::DEFAULT_BUFFERED_REQUEST_BYTES >> 20) as u64)]
    kafka_max_buffered_request_mb: u64,
    /// Most partitions all topics together may have.
    #[arg(long, default_value_t = eddy::log::PartitionLimits::default().total)]
    max_partitions: i64,
}

impl ServerArgs {
    /// The server configuration, or what is wrong with an option.
    pub fn into_config(self) -> Result<ServerConfig, String> {
        let flush = FlushPolicy::parse(&self.flush, Some(self.flush_interval_ms)).map_err(|e| format!("--flush: {e}"))?;
        let reset = OffsetReset::parse(&self.auto_offset_reset).ok_or("--auto-offset-reset must be 'latest' or 'earliest'")?;
        let service_id = self.service_id.trim().to_string();
        if service_id.is_empty() || service_id.len() > 100 || !service_id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
            return Err(format!("--service-id must be 1 to 100 ASCII letters, digits, '_', '-' or '.', got '{service_id}'"));
        }
        Ok(ServerConfig {
            data_dir: self.data_dir,
            http_listen: self.http_listen,
            http_threads: self.http_threads,
            lookup_cache_bytes: usize::try_from(self.lookup_cache_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
            kafka_listen: if self.kafka_bootstrap.trim().is_empty() { self.kafka_listen } else { String::new() },
            cluster: match self.kafka_bootstrap.trim() {
                "" if self.kafka_client.is_set() => {
                    return Err("--kafka-property and --kafka-properties set how to reach a Kafka cluster: give the cluster with --kafka-bootstrap".into());
                }
                "" => None,
                bootstrap => {
                    if self.kafka_replication_factor == 0 || self.kafka_replication_factor < -1 {
                        return Err(format!(
                            "--kafka-replication-factor must be 1 or more (or -1 for the broker's default), got {}",
                            self.kafka_replication_factor
                        ));
                    }
                    Some(eddy::server::ClusterConfig {
                        security: self.kafka_client.security()?,
                        standby_replicas: self.standby_replicas,
                        bootstrap: bootstrap.to_string(),
                        replication_factor: self.kafka_replication_factor,
                        service_id: service_id.clone(),
                        session_timeout: std::time::Duration::from_millis(self.kafka_session_timeout_ms.max(1)),
                        advertised_url: match self.advertised_url {
                            Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                                return Err(format!("--advertised-url must be an http:// or https:// URL, got '{url}'"));
                            }
                            other => other,
                        },
                    })
                }
            },
            schema_registry_listen: self.schema_registry_listen,
            kafka: eddy::kafka::KafkaConfig {
                advertised_host: self.kafka_advertised_host,
                advertised_port: self.kafka_advertised_port.map_or(0, i32::from),
                auto_create_topics: self.kafka_auto_create_topics,
                default_partitions: self.kafka_default_partitions.max(1),
                group_initial_delay: std::time::Duration::from_millis(self.kafka_group_initial_delay_ms),
                max_connections: self.kafka_max_connections,
                timeouts: ConnectionTimeouts { idle: ms(self.kafka_idle_timeout_ms), request: ms(self.kafka_request_timeout_ms) },
                max_buffered_request_bytes: usize::try_from(self.kafka_max_buffered_request_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
            },
            topic_defaults: TopicConfig { flush, ..TopicConfig::default() },
            engine: EngineConfig {
                service_id: service_id.clone(),
                default_offset_reset: reset,
                // Decided by the service's group when the server runs on a cluster.
                active: true,
                share: eddy::exec::Share::All,
                processing_log: true,
                record_cache: true,
                schema_registry_url: match self.schema_registry_url {
                    Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                        return Err(format!("--schema-registry-url must be an http:// or https:// URL, got '{url}'"));
                    }
                    other => other,
                },
            },
            cleaner_interval: std::time::Duration::from_millis(self.log_cleaner_interval_ms.max(10)),
            partition_limits: eddy::log::PartitionLimits { per_topic: self.max_partitions_per_topic.max(1), total: self.max_partitions.max(1) },
            http: HttpConfig {
                guard: GuardConfig {
                    allow_origins: non_empty(self.http_allow_origin),
                    allowed_hosts: non_empty(self.http_allowed_hosts),
                    max_body_bytes: self.http_max_body_bytes.max(1024),
                },
                max_connections: self.http_max_connections,
                timeouts: ConnectionTimeouts { idle: ms(self.http_idle_timeout_ms), request: ms(self.http_request_timeout_ms) },
            },
        })
    }
}

/// How Eddy's Kafka client reaches a cluster (`eddy server --kafka-bootstrap`,
/// `eddy kafka-check`): Kafka client properties.
#[derive(Args, Debug, Clone, Default)]
pub struct KafkaClientArgs {
    /// A Kafka client property for reaching the cluster, KEY=VALUE (repeatable):
    /// security.protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL), sasl.mechanism
    /// (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), sasl.username, sasl.password,
    /// sasl.jaas.config, ssl.ca.location, ssl.certificate.location, ssl.key.location,
    /// ssl.endpoint.identification.algorithm.
    #[arg(long = "kafka-property", value_name = "KEY=VALUE")]
    kafka_property: Vec<String>,
    /// A file of Kafka client properties (a client.properties file: KEY=VALUE lines),
    /// read before --kafka-property.
    #[arg(long = "kafka-properties", value_name = "FILE")]
    kafka_properties: Option<PathBuf>,
}

impl KafkaClientArgs {
    fn is_set(&self) -> bool {
        !self.kafka_property.is_empty() || self.kafka_properties.is_some()
    }

    /// The TLS and SASL settings the properties ask for.
    pub fn security(&self) -> Result<eddy::kafka_client::security::ClientSecurity, String> {
        let mut props = Vec::new();
        if let Some(path) = &self.kafka_properties {
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read --kafka-properties file {}: {e}", path.display()))?;
            props.extend(eddy::kafka_client::security::parse_properties(&text));
        }
        for p in &self.kafka_property {
            let (k, v) = p.split_once('=').ok_or_else(|| format!("--kafka-property must be KEY=VALUE, got '{p}'"))?;
            props.push((k.trim().to_string(), v.trim().to_string()));
        }
        eddy::kafka_client::security::ClientSecurity::from_properties(&props).map_err(|e| e.to_string())
    }
}
