//! ksqlDB's processing log: every record a query skips is written, with why, to a topic
//! (`<service id>ksql_processing_log`) that the `KSQL_PROCESSING_LOG` stream reads, so
//! bad records can be found with SQL. Entries have ksqlDB's schema (LOGGER, LEVEL, TIME,
//! MESSAGE with TYPE 0 for a deserialization error and 1 for a record processing error).
//! Writing the log never stops a query: a failed write is reported in the server log.

use std::sync::Arc;

use serde_json::{Value, json};

use super::ExecError;
use super::source::{RecordError, RecordErrorKind};
use crate::log::{BatchBuilder, FlushPolicy, Log, PartitionStore, TopicConfig};

/// The stream over the processing log topic.
pub const PROCESSING_LOG_STREAM: &str = "KSQL_PROCESSING_LOG";

/// The processing log keeps at most this much per partition (oldest entries go first), so
/// a flood of bad records cannot fill the disk.
pub const RETENTION_BYTES: u64 = 256 << 20;

/// Its column list, as ksqlDB documents the stream.
pub const STREAM_COLUMNS: &str = "LOGGER STRING, LEVEL STRING, `TIME` BIGINT, MESSAGE STRUCT<`TYPE` INTEGER, \
     DESERIALIZATIONERROR STRUCT<TARGET STRING, ERRORMESSAGE STRING, RECORDB64 STRING, CAUSE ARRAY<STRING>, `topic` STRING>, \
     RECORDPROCESSINGERROR STRUCT<ERRORMESSAGE STRING, RECORD STRING, CAUSE ARRAY<STRING>>, PRODUCTIONERROR STRUCT<ERRORMESSAGE STRING>, \
     SERIALIZATIONERROR STRUCT<TARGET STRING, ERRORMESSAGE STRING, RECORD STRING, CAUSE ARRAY<STRING>, `topic` STRING>>";

pub struct ProcessingLog {
    topic: String,
    partition: Arc<dyn PartitionStore>,
}

impl std::fmt::Debug for ProcessingLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessingLog").field("topic", &self.topic).finish()
    }
}

impl ProcessingLog {
    /// The processing log topic of a service, created with one partition when missing.
    /// Blocking.
    pub fn open(log: &Log, service_id: &str) -> Result<Arc<ProcessingLog>, ExecError> {
        let name = topic_name(service_id);
        // Servers of one service starting together may both create it: the second opens it.
        let config = TopicConfig { flush: FlushPolicy::Interval(1000), retention_bytes: Some(RETENTION_BYTES), ..TopicConfig::default() };
        let topic = log.topic_or_create(&name, 1, config)?;
        Ok(Arc::new(ProcessingLog { partition: topic.partition(0)?.clone(), topic: name }))
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Appends one entry per skipped record. Blocking.
    pub fn write(&self, query_id: &str, source_topic: &str, errors: &[RecordError]) {
        // A query over the log itself does not log into it: one bad entry would loop.
        if errors.is_empty() || source_topic == self.topic {
            return;
        }
        let now = chrono::Utc::now().timestamp_millis();
        let mut b = BatchBuilder::default();
        for e in errors {
            let value = entry(query_id, source_topic, e, now).to_string();
            b.push(now, None, Some(value.as_bytes()), &[]);
        }
        if let Err(e) = self.partition.append(b.finish()) {
            tracing::warn!(query = query_id, "could not write {} entries to the processing log {}: {e}", errors.len(), self.topic);
        }
    }
}

/// `<service id>ksql_processing_log`, as ksqlDB names it.
pub fn topic_name(service_id: &str) -> String {
    format!("{service_id}ksql_processing_log")
}

fn entry(query_id: &str, source_topic: &str, e: &RecordError, now: i64) -> Value {
    let text = format!("partition {} offset {}: {}", e.partition, e.offset, e.message);
    let message = match e.kind {
        RecordErrorKind::Deserialization => {
            let target = if e.message.starts_with("key") { "key" } else { "value" };
            json!({"TYPE": 0, "DESERIALIZATIONERROR": {"TARGET": target, "ERRORMESSAGE": text, "RECORDB64": null, "CAUSE": [], "topic": source_topic},
                   "RECORDPROCESSINGERROR": null, "PRODUCTIONERROR": null, "SERIALIZATIONERROR": null})
        }
        RecordErrorKind::Processing => json!({"TYPE": 1, "DESERIALIZATIONERROR": null,
                   "RECORDPROCESSINGERROR": {"ERRORMESSAGE": text, "RECORD": null, "CAUSE": []}, "PRODUCTIONERROR": null, "SERIALIZATIONERROR": null}),
    };
    json!({"LOGGER": format!("processing.{query_id}"), "LEVEL": "ERROR", "TIME": now, "MESSAGE": message})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_say_what_failed_where() {
        let e = RecordError { kind: RecordErrorKind::Deserialization, partition: 2, offset: 7, message: "value: not JSON".into() };
        let v = entry("CSAS_X_1", "clicks", &e, 5);
        assert_eq!(v["LOGGER"], "processing.CSAS_X_1");
        assert_eq!(v["MESSAGE"]["TYPE"], 0);
        assert_eq!(v["MESSAGE"]["DESERIALIZATIONERROR"]["TARGET"], "value");
        assert_eq!(v["MESSAGE"]["DESERIALIZATIONERROR"]["ERRORMESSAGE"], "partition 2 offset 7: value: not JSON");
        assert_eq!(v["MESSAGE"]["DESERIALIZATIONERROR"]["topic"], "clicks");
        let p = RecordError { kind: RecordErrorKind::Processing, partition: 0, offset: 1, message: "division by zero".into() };
        assert_eq!(entry("q", "t", &p, 5)["MESSAGE"]["TYPE"], 1);
    }
}
