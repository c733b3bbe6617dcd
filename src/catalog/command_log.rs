//! The command topic: an internal single-partition topic holding, in order, every
//! statement that changed the catalog, with the query ids it was given. Replaying it
//! rebuilds the catalog and restarts persistent queries after a restart or crash.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::CatalogError;
use crate::log::{BatchBuilder, FlushPolicy, Log, PartitionLog, RecordIter, TopicConfig, batch};

/// Name of the internal command topic.
pub const COMMAND_TOPIC: &str = "_eddy_command_topic";

/// One catalog change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// The statement text as the user sent it (after variable substitution).
    pub statement: String,
    /// Session properties in effect (e.g. auto.offset.reset).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// The query id assigned to a persistent query, so replay reuses it.
    #[serde(default)]
    pub query_id: Option<String>,
}

pub struct CommandLog {
    partition: Arc<PartitionLog>,
}

impl CommandLog {
    /// Opens (creating when missing) the command topic. Blocking.
    pub fn open(log: &Log) -> Result<CommandLog, CatalogError> {
        let topic = match log.get_topic(COMMAND_TOPIC) {
            Some(t) => t,
            None => log.create_topic(COMMAND_TOPIC, 1, TopicConfig { flush: FlushPolicy::Always, ..TopicConfig::default() })?,
        };
        Ok(CommandLog { partition: topic.partition(0)?.clone() })
    }

    /// Durably appends a command; returns its sequence number (offset). Blocking.
    pub fn append(&self, cmd: &Command) -> Result<i64, CatalogError> {
        let value = serde_json::to_vec(cmd).map_err(|e| CatalogError::BadCommand(e.to_string()))?;
        let mut b = BatchBuilder::default();
        b.push(chrono::Utc::now().timestamp_millis(), None, Some(&value), &[]);
        Ok(self.partition.append(b.finish())?.base_offset)
    }

    /// Every command, in order, with its sequence number. Blocking.
    pub fn read_all(&self) -> Result<Vec<(i64, Command)>, CatalogError> {
        let mut out = Vec::new();
        let mut offset = self.partition.start_offset();
        let end = self.partition.end_offset();
        while offset < end {
            let data = self.partition.read(offset, 1 << 20)?;
            if data.is_empty() {
                break;
            }
            for b in batch::split_batches(&data) {
                let (h, payload) = batch::payload(b)?;
                for r in RecordIter::over(h, &payload) {
                    let r = r?;
                    if r.offset < offset {
                        continue;
                    }
                    let Some(v) = r.value else { continue };
                    let cmd: Command = serde_json::from_slice(v).map_err(|e| CatalogError::BadCommand(e.to_string()))?;
                    out.push((r.offset, cmd));
                }
                offset = h.last_offset() + 1;
            }
        }
        Ok(out)
    }

    /// The next sequence number.
    pub fn end_offset(&self) -> i64 {
        self.partition.end_offset()
    }
}
