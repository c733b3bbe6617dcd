//! Settings of Eddy's internal topics, fit for their roles, whatever they were created
//! with: the command topic keeps every command forever (the catalog is rebuilt from it),
//! as the schema registry's topic keeps every schema change,
//! and a repartition topic keeps its records until the query that reads it has committed
//! past them, then drops them (as Kafka Streams purges its repartition topics). Applied by
//! the log when such a topic is created and whenever it is opened.

use crate::log::{CleanupPolicy, FlushPolicy, INTERNAL_TOPIC_PREFIX, TopicConfig};

use super::command_log::COMMAND_TOPIC;

/// The schema registry's topic (Confluent's name): every schema change, kept forever.
pub const SCHEMAS_TOPIC: &str = "_schemas";

/// Internal topics a query repartitions through end with this.
pub const REPARTITION_SUFFIX: &str = "_repartition";

/// Segment size of repartition topics: small enough that purging committed records gives
/// space back soon (Kafka Streams uses 50 MiB).
const REPARTITION_SEGMENT_BYTES: u64 = 50 * 1024 * 1024;
/// Repartition segments roll at least this often, so a slow stream is purged too.
const REPARTITION_SEGMENT_MS: u64 = 10 * 60 * 1000;

/// Whether `name` is a repartition topic.
pub fn is_repartition_topic(name: &str) -> bool {
    name.starts_with(INTERNAL_TOPIC_PREFIX) && name.ends_with(REPARTITION_SUFFIX)
}

/// Forces the settings an internal topic's role needs; other topics are left alone.
pub fn enforce(name: &str, config: &mut TopicConfig) {
    if name == COMMAND_TOPIC || name == SCHEMAS_TOPIC {
        config.retention_ms = None;
        config.retention_bytes = None;
        config.cleanup = CleanupPolicy::DELETE;
        config.flush = FlushPolicy::Always;
        config.purge_committed = false;
    } else if is_repartition_topic(name) {
        config.retention_ms = None;
        config.retention_bytes = None;
        config.cleanup = CleanupPolicy::DELETE;
        config.purge_committed = true;
        config.segment_bytes = config.segment_bytes.min(REPARTITION_SEGMENT_BYTES);
        config.segment_ms = config.segment_ms.min(REPARTITION_SEGMENT_MS);
    }
}

/// The policy to hand to the log.
pub fn policy() -> crate::log::ConfigPolicy {
    std::sync::Arc::new(enforce)
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
        enforce(COMMAND_TOPIC, &mut c);
        assert_eq!((c.retention_ms, c.retention_bytes, c.cleanup, c.flush), (None, None, CleanupPolicy::DELETE, FlushPolicy::Always));
    }

    #[test]
    fn repartition_topics_are_purged_not_expired_and_user_topics_are_untouched() {
        let mut c = TopicConfig::default();
        enforce("_eddy_CTAS_X_1_repartition", &mut c);
        assert!(c.purge_committed && c.retention_ms.is_none() && c.segment_bytes == REPARTITION_SEGMENT_BYTES);
        let mut user = TopicConfig::default();
        enforce("orders_repartition", &mut user);
        assert_eq!(user, TopicConfig::default());
    }
}
