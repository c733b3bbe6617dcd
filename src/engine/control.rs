//! Statements that control running queries and the server rather than define data: PAUSE
//! and RESUME of persistent queries, ALTER SYSTEM, ASSERT TOPIC / SCHEMA, and the answer to
//! connector statements. PAUSE, RESUME and ALTER SYSTEM go through the command topic like
//! any catalog change, so a restart keeps a paused query paused and a system setting set.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::ddl::Change;
use super::{Engine, EngineError, Rejection};
use crate::sql::ast::{Ident, ParsedStatement, PropValue, Props, Statement};

/// ksqlDB's `ksql.assert.topic.default.timeout.ms` and `ksql.assert.schema.default.timeout.ms`.
pub const DEFAULT_ASSERT_TIMEOUT: Duration = Duration::from_millis(1000);

/// The longest TIMEOUT an ASSERT may wait: the request holds a connection meanwhile.
pub const MAX_ASSERT_TIMEOUT: Duration = Duration::from_secs(300);

/// Properties ALTER SYSTEM sets, with the values each takes (empty: a whole number): the
/// server-wide defaults of the per-request properties Eddy honours.
const SYSTEM_PROPERTIES: &[(&str, &[&str])] = &[
    ("auto.offset.reset", &["earliest", "latest"]),
    ("ksql.streams.auto.offset.reset", &["earliest", "latest"]),
    ("cache.max.bytes.buffering", &[]),
    ("ksql.streams.cache.max.bytes.buffering", &[]),
    ("commit.interval.ms", &[]),
    ("ksql.streams.commit.interval.ms", &[]),
    (super::COLLECT_LIST_LIMIT, &[]),
    (super::COLLECT_SET_LIMIT, &[]),
    (crate::sql::pull_rules::TABLE_SCAN_ENABLED, BOOLEAN),
    (crate::sql::pull_rules::RANGE_SCAN_ENABLED, BOOLEAN),
    (crate::sql::pull_rules::LIMIT_ENABLED, BOOLEAN),
    ("ksql.query.push.v2.enabled", BOOLEAN),
    (super::push_start::TOKENS_ENABLED, BOOLEAN),
];

const BOOLEAN: &[&str] = &["true", "false"];

/// What a PAUSE, RESUME or ALTER SYSTEM changes.
pub(super) enum ControlChange {
    /// `target` is the query id, or ALL.
    Pause {
        ids: Vec<String>,
        target: String,
    },
    /// `start` is false while the command topic replays: queries start once it is done.
    Resume {
        ids: Vec<String>,
        target: String,
        start: bool,
    },
    AlterSystem {
        name: String,
        value: String,
    },
}

impl Engine {
    /// The ids a PAUSE or RESUME names (ALL: every persistent query).
    fn controlled_ids(&self, query_id: &Option<Ident>) -> Result<Vec<String>, EngineError> {
        match query_id {
            None => Ok(self.catalog.queries().iter().map(|q| q.id.clone()).collect()),
            Some(id) if id.value.starts_with("transient_") => {
                Err(EngineError::rule(format!("Transient queries cannot be paused or resumed: {}. Close it with TERMINATE {} instead.", id.value, id.value)))
            }
            Some(id) if self.catalog.query(&id.value).is_none() => Err(EngineError::rule(format!("Unknown queryId: {}", id.value))),
            Some(id) => Ok(vec![id.value.clone()]),
        }
    }

    pub(super) fn prepare_control(&self, statement: &Statement, replay: bool) -> Result<Change, EngineError> {
        Ok(Change::Control(match statement {
            Statement::Pause { query_id } => ControlChange::Pause { ids: self.controlled_ids(query_id)?, target: target(query_id) },
            Statement::Resume { query_id } => ControlChange::Resume { ids: self.controlled_ids(query_id)?, target: target(query_id), start: !replay },
            Statement::AlterSystem { name, value } => {
                let Some((_, values)) = SYSTEM_PROPERTIES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) else {
                    let known: Vec<&str> = SYSTEM_PROPERTIES.iter().map(|(n, _)| *n).collect();
                    return Err(EngineError::rule(format!("Unknown system property '{name}'. ALTER SYSTEM sets: {}", known.join(", "))));
                };
                if values.is_empty() && value.trim().parse::<u64>().is_err() {
                    return Err(EngineError::rule(format!("Invalid value '{value}' for system property '{name}'; expected a whole number of bytes")));
                }
                if !values.is_empty() && !values.iter().any(|v| v.eq_ignore_ascii_case(value)) {
                    return Err(EngineError::rule(format!("Invalid value '{value}' for system property '{name}'; expected one of: {}", values.join(", "))));
                }
                ControlChange::AlterSystem { name: name.to_ascii_lowercase(), value: value.to_ascii_lowercase() }
            }
            _ => return Err(EngineError::inconsistent("not a control statement")),
        }))
    }

    pub(super) fn commit_control(&self, change: ControlChange, p: &ParsedStatement, seq: i64) -> Result<Value, EngineError> {
        let status = |command_id: String, message: String| {
            json!({
                "@type": "currentStatus",
                "statementText": p.text,
                "commandId": command_id,
                "commandStatus": {"status": "SUCCESS", "message": message, "queryId": null},
                "commandSequenceNumber": seq,
                "warnings": []
            })
        };
        match change {
            ControlChange::Pause { ids, target } => {
                for id in &ids {
                    self.catalog.set_paused(id, true);
                    self.runtime.stop_persistent(id);
                }
                Ok(status(format!("pause/{target}/execute"), "Query paused.".into()))
            }
            ControlChange::Resume { ids, target, start } => {
                for id in &ids {
                    let was_paused = self.catalog.is_paused(id);
                    self.catalog.set_paused(id, false);
                    if start
                        && was_paused
                        && let Some(q) = self.catalog.query(id)
                    {
                        self.start_query(&q)?;
                    }
                }
                Ok(status(format!("resume/{target}/execute"), "Query resumed.".into()))
            }
            ControlChange::AlterSystem { name, value } => {
                self.catalog.set_system_property(&name, &value);
                // Cached pull-query plans passed the pull-query settings they were planned under.
                self.pull_plans.clear();
                Ok(status(format!("alter-system/{name}/execute"), format!("System property '{name}' set to '{value}'.")))
            }
        }
    }

    /// ASSERT [NOT EXISTS] TOPIC: waits up to the timeout for the topic to exist (or not),
    /// with the partition count WITH names. Blocking.
    pub(super) fn assert_topic(&self, topic: &Ident, exists: bool, props: &Props, timeout: Option<Duration>, text: &str) -> Result<Value, EngineError> {
        let mut expected_partitions = None;
        if exists {
            for (name, value, _) in &props.0 {
                match (name.as_str(), value) {
                    ("PARTITIONS", PropValue::Number(n)) => expected_partitions = n.parse::<i64>().ok(),
                    // One copy of each partition: the embedded log does not replicate.
                    ("REPLICAS", PropValue::Number(n)) if n == "1" => {}
                    ("REPLICAS", v) => {
                        return Err(Rejection::AssertionFailed(format!(
                            "Mismatched configuration for topic {}: For config replicas, expected {} got 1",
                            topic.value,
                            v.as_text()
                        ))
                        .into());
                    }
                    (other, _) => {
                        return Err(Rejection::AssertionFailed(format!(
                            "Cannot assert unknown topic property: {other}. ASSERT TOPIC checks PARTITIONS and REPLICAS"
                        ))
                        .into());
                    }
                }
            }
        }
        let failure = wait_for(timeout, || {
            let found = self.log.get_topic(&topic.value).filter(|_| !super::describe::is_internal_topic(&topic.value));
            match (found, exists) {
                (None, true) => Err(format!("Topic {} does not exist", topic.value)),
                (Some(_), false) => Err(format!("Topic {} exists", topic.value)),
                (Some(t), true) => match expected_partitions {
                    Some(n) if t.partition_count() as i64 != n => {
                        Err(format!("Mismatched configuration for topic {}: For config partitions, expected {n} got {}", topic.value, t.partition_count()))
                    }
                    _ => Ok(()),
                },
                (None, false) => Ok(()),
            }
        });
        if let Err(message) = failure {
            return Err(Rejection::AssertionFailed(message).into());
        }
        Ok(json!({"@type": "assert_topic", "statementText": text, "topicName": topic.value, "exists": exists, "warnings": []}))
    }

    /// ASSERT [NOT EXISTS] SCHEMA: waits up to the timeout for the registry to hold
    /// (or not) a schema: the subject's latest version, the schema with the id, or both at
    /// once (the subject has a live version with that id). Blocking.
    pub(super) fn assert_schema(
        &self,
        subject: &Option<String>,
        id: Option<u64>,
        exists: bool,
        timeout: Option<Duration>,
        text: &str,
    ) -> Result<Value, EngineError> {
        let named = match (subject, id) {
            (Some(s), Some(i)) => format!("Schema with subject name {s} id {i}"),
            (Some(s), None) => format!("Schema with subject name {s}"),
            (None, Some(i)) => format!("Schema with id {i}"),
            (None, None) => "Schema".into(),
        };
        let found = || {
            let Some(registry) = self.schema_source() else { return false };
            let id = id.and_then(|i| i32::try_from(i).ok());
            match (subject, id) {
                (Some(s), Some(i)) => registry.subject_has(s, i).unwrap_or(false),
                (Some(s), None) => registry.latest(s).is_ok(),
                (None, Some(i)) => registry.schema(i).is_ok(),
                (None, None) => false,
            }
        };
        let failure = wait_for(timeout, || match (found(), exists) {
            (true, true) | (false, false) => Ok(()),
            (false, true) => Err(format!("{named} does not exist")),
            (true, false) => Err(format!("{named} exists")),
        });
        if let Err(message) = failure {
            return Err(Rejection::AssertionFailed(message).into());
        }
        Ok(json!({"@type": "assert_schema", "statementText": text, "subject": subject, "id": id, "exists": exists, "warnings": []}))
    }

    /// The answer to CREATE/DROP/DESCRIBE/SHOW CONNECTOR(S).
    pub(super) fn connectors_unsupported(&self, action: &str) -> EngineError {
        EngineError::rule(format!(
            "{action}: connectors are not part of Eddy. Eddy runs no Kafka Connect workers; run connectors in a Kafka Connect cluster \
             pointed at Eddy's Kafka listener (bootstrap.servers), then declare the topics they read or write with CREATE STREAM or CREATE TABLE."
        ))
    }
}

/// The id a PAUSE or RESUME names, or ALL.
fn target(query_id: &Option<Ident>) -> String {
    query_id.as_ref().map(|q| q.value.clone()).unwrap_or_else(|| "ALL".into())
}

/// Checks `check` until it holds or the timeout passes; the last failure otherwise.
fn wait_for(timeout: Option<Duration>, mut check: impl FnMut() -> Result<(), String>) -> Result<(), String> {
    let timeout = timeout.unwrap_or(DEFAULT_ASSERT_TIMEOUT).min(MAX_ASSERT_TIMEOUT);
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50).min(timeout)),
        }
    }
}

/// Request properties (`streamsProperties`, `SET`) a client may set: ksqlDB's own
/// (`ksql.*`) and the Kafka Streams, consumer and producer settings ksqlDB passes on.
const CLIENT_PROPERTIES: &[&str] = &[
    "auto.offset.reset",
    "cache.max.bytes.buffering",
    "commit.interval.ms",
    "num.stream.threads",
    "processing.guarantee",
    "buffered.records.per.partition",
    "max.poll.records",
    "fetch.min.bytes",
    "fetch.max.wait.ms",
    "max.partition.fetch.bytes",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "linger.ms",
    "batch.size",
    "acks",
    "compression.type",
    "retries",
];

/// Server-only ksqlDB settings a request may not change.
const SERVER_ONLY_PROPERTIES: &[&str] = &["ksql.service.id", "ksql.internal.topic.replicas", "ksql.persistent.prefix", "ksql.query.persistent.active.limit"];

/// Whether a client may set a property (`/is_valid_property`); the reason when not.
pub fn check_client_property(name: &str) -> Result<(), String> {
    let lower = name.to_ascii_lowercase();
    if SERVER_ONLY_PROPERTIES.contains(&lower.as_str()) {
        return Err(format!("Cannot override property '{name}': it is a server setting"));
    }
    let bare = lower.strip_prefix("ksql.streams.").unwrap_or(&lower);
    let bare = bare.strip_prefix("consumer.").or_else(|| bare.strip_prefix("producer.")).unwrap_or(bare);
    if lower.starts_with("ksql.") && !lower.starts_with("ksql.streams.") || CLIENT_PROPERTIES.contains(&bare) {
        return Ok(());
    }
    Err(format!("Not recognizable as ksql, streams, consumer, or producer property: '{name}'"))
}

impl Engine {
    /// ksqlDB's cluster termination (`/ksql/terminate`): every persistent query is
    /// terminated and every stream and table dropped; topics whose names match one of
    /// `delete_topics` (names or regular expressions) are deleted with them. Blocking.
    pub fn terminate_cluster(&self, delete_topics: &[String]) -> Result<Vec<Value>, EngineError> {
        let patterns = delete_topics
            .iter()
            .map(|p| {
                regex::Regex::new(&format!("^(?:{p})$"))
                    .map_err(|e| EngineError::rule_caused(format!("'{p}' in deleteTopicList is not a regular expression: {e}"), e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut session = super::Session::default();
        let mut entities = Vec::new();
        if !self.catalog.queries().is_empty() {
            entities.extend(self.execute("TERMINATE ALL;", &mut session)?);
        }
        for source in self.catalog.sources() {
            // A read-only source does not own its topic (DROP ... DELETE TOPIC refuses it).
            let delete = !source.read_only && patterns.iter().any(|p| p.is_match(&source.topic));
            let statement =
                format!("DROP {} {}{};", source.kind.name(), crate::catalog::types::quote_ident(&source.name), if delete { " DELETE TOPIC" } else { "" });
            entities.extend(self.execute(&statement, &mut session)?);
        }
        Ok(entities)
    }
}
