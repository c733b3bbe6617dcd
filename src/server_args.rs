//! The `eddy server` command line: every option, and the server configuration made of them.

use std::path::PathBuf;

use clap::Args;

use eddy::engine::EngineConfig;
use eddy::exec::OffsetReset;
use eddy::log::{FlushPolicy, TopicConfig};
use eddy::server::ServerConfig;

#[derive(Args)]
pub struct ServerArgs {
    #[arg(long, default_value = "./eddy-data")]
    data_dir: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8088")]
    http_listen: String,
    /// Address for the Kafka protocol listener; '' turns it off.
    #[arg(long, default_value = "127.0.0.1:9092")]
    kafka_listen: String,
    /// Host written into Kafka Metadata responses when listening on 0.0.0.0.
    #[arg(long, default_value = "127.0.0.1")]
    kafka_advertised_host: String,
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
    /// Most partitions all topics together may have.
    #[arg(long, default_value_t = eddy::log::PartitionLimits::default().total)]
    max_partitions: i64,
}

impl ServerArgs {
    /// The server configuration, or what is wrong with an option.
    pub fn into_config(self) -> Result<ServerConfig, String> {
        let flush = FlushPolicy::parse(&self.flush, Some(self.flush_interval_ms)).map_err(|e| format!("--flush: {e}"))?;
        let reset = OffsetReset::parse(&self.auto_offset_reset).ok_or("--auto-offset-reset must be 'latest' or 'earliest'")?;
        Ok(ServerConfig {
            data_dir: self.data_dir,
            http_listen: self.http_listen,
            http_threads: self.http_threads,
            lookup_cache_bytes: usize::try_from(self.lookup_cache_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
            kafka_listen: self.kafka_listen,
            kafka: eddy::kafka::KafkaConfig {
                advertised_host: self.kafka_advertised_host,
                advertised_port: 9092,
                auto_create_topics: self.kafka_auto_create_topics,
                default_partitions: self.kafka_default_partitions.max(1),
                group_initial_delay: std::time::Duration::from_millis(self.kafka_group_initial_delay_ms),
            },
            topic_defaults: TopicConfig { flush, ..TopicConfig::default() },
            engine: EngineConfig { default_offset_reset: reset, ..EngineConfig::default() },
            cleaner_interval: std::time::Duration::from_millis(self.log_cleaner_interval_ms.max(10)),
            partition_limits: eddy::log::PartitionLimits { per_topic: self.max_partitions_per_topic.max(1), total: self.max_partitions.max(1) },
        })
    }
}
