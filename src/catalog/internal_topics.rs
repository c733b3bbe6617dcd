//! Settings of Eddy's internal topics, fit for their roles, whatever they were created
//! with: the command topic keeps every command forever (the catalog is rebuilt from it),
//! as the schema registry's topic keeps every schema change,
//! and a repartition topic keeps its records until the query that reads it has committed
//! past them, then drops them (as Kafka Streams purges its repartition topics). Applied by
//! the log when such a topic is created and whenever it is opened.

use crate::log::{CleanupPolicy, FlushPolicy, INTERNAL_TOPIC_PREFIX, TopicConfig};

/// The schema registry's topic on a data directory (Confluent's name): every schema
/// change, kept forever.
pub const SCHEMAS_TOPIC: &str = "_schemas";

/// The command topic of the servers whose internal topics begin with `prefix`.
pub fn command_topic(prefix: &str) -> String {
    format!("{prefix}command_topic")
}

/// The schema registry's topic: Confluent's name on a data directory; on a cluster a name
/// of the service's own (the cluster may run Confluent's registry on `_schemas`).
pub fn schemas_topic(prefix: &str) -> String {
    if prefix == INTERNAL_TOPIC_PREFIX { SCHEMAS_TOPIC.to_string() } else { format!("{prefix}schemas") }
}

/// Internal topics a query repartitions through end with this.
pub const REPARTITION_SUFFIX: &str = "_repartition";

/// Segment size of repartition topics: small enough that purging committed records gives
/// space back soon (Kafka Streams uses 50 MiB).
const REPARTITION_SEGMENT_BYTES: u64 = 50 * 1024 * 1024;
/// Repartition segments roll at least this often, so a slow stream is purged too.
const REPARTITION_SEGMENT_MS: u64 = 10 * 60 * 1000;

/// Whether `name` is a repartition topic.
pub fn is_repartition_topic(prefix: &str, name: &str) -> bool {
    name.starts_with(prefix) && name.ends_with(REPARTITION_SUFFIX)
}

/// Forces the settings an internal topic's role needs (the internal topics' names begin
/// with `prefix`); other topics are left alone.
pub fn enforce(prefix: &str, name: &str, config: &mut TopicConfig) {
    if name == command_topic(prefix) || name == schemas_topic(prefix) {
        config.retention_ms = None;
        config.retention_bytes = None;
        config.cleanup = CleanupPolicy::DELETE;
        config.flush = FlushPolicy::Always;
        config.purge_committed = false;
    } else if is_repartition_topic(prefix, name) {
        config.retention_ms = None;
        config.retention_bytes = None;
        config.cleanup = CleanupPolicy::DELETE;
        config.purge_committed = true;
        config.segment_bytes = config.segment_bytes.min(REPARTITION_SEGMENT_BYTES);
        config.segment_ms = config.segment_ms.min(REPARTITION_SEGMENT_MS);
    }
}

/// The policy to hand to a log whose internal topics begin with `prefix`.
pub fn policy(prefix: &str) -> crate::log::ConfigPolicy {
    let prefix = prefix.to_string();
    std::sync::Arc::new(move |name: &str, config: &mut TopicConfig| enforce(&prefix, name, config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_topic_keeps_everything_whatever_it_was_given() {
        let mut c = TopicConfig {
            retention_ms: Some(1),
            retention_bytes: Some(10),
            cleanup: CleanupPolicy { delete: true, compact: true },
            flush: FlushPolicy::Never,
            ..TopicConfig::default()
        };
        enforce(INTERNAL_TOPIC_PREFIX, "_eddy_command_topic", &mut c);
        assert_eq!((c.retention_ms, c.retention_bytes, c.cleanup, c.flush), (None, None, CleanupPolicy::DELETE, FlushPolicy::Always));
    }

    #[test]
    fn repartition_topics_are_purged_not_expired_and_user_topics_are_untouched() {
        let mut c = TopicConfig::default();
        enforce(INTERNAL_TOPIC_PREFIX, "_eddy_CTAS_X_1_repartition", &mut c);
        assert!(c.purge_committed && c.retention_ms.is_none() && c.segment_bytes == REPARTITION_SEGMENT_BYTES);
        let mut user = TopicConfig::default();
        enforce(INTERNAL_TOPIC_PREFIX, "orders_repartition", &mut user);
        assert_eq!(user, TopicConfig::default());
        let on_cluster = crate::log::service_prefix("svc");
        let mut c = TopicConfig::default();
        enforce(&on_cluster, "_eddy-svc_schemas", &mut c);
        assert_eq!(c.retention_ms, None, "a service's registry topic keeps everything");
        let mut other = TopicConfig::default();
        enforce(&on_cluster, "_eddy_CTAS_X_1_repartition", &mut other);
        assert_eq!(other, TopicConfig::default(), "another service's topics are not this one's");
    }
}
