//! The command topic: an internal single-partition topic holding, in order, every
//! statement that changed the catalog, with the query ids it was given. Replaying it
//! rebuilds the catalog and restarts persistent queries after a restart or crash.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::CatalogError;
use crate::log::{BatchBuilder, FlushPolicy, Log, PartitionStore, TopicConfig};

/// Name of the command topic of a server on its data directory (see
/// `internal_topics::command_topic` for a service's on a cluster).
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

/// What replaying the command topic found.
#[derive(Debug, Default)]
pub struct ReadCommands {
    /// Every readable command, in order, with its sequence number (offset).
    pub commands: Vec<(i64, Command)>,
    /// Records that could not be read, by offset, with the reason: skipped.
    pub skipped: Vec<(i64, String)>,
}

pub struct CommandLog {
    partition: Arc<dyn PartitionStore>,
}

impl CommandLog {
    /// Opens (creating when missing) the command topic. Blocking.
    pub fn open(log: &Log) -> Result<CommandLog, CatalogError> {
        let name = super::internal_topics::command_topic(log.internal_prefix());
        let mut config = TopicConfig { flush: FlushPolicy::Always, ..TopicConfig::default() };
        super::internal_topics::enforce(log.internal_prefix(), &name, &mut config);
        let topic = log.topic_or_create(&name, 1, config)?;
        Ok(CommandLog { partition: topic.partition(0)?.clone() })
    }

    /// The command log kept in `partition` (the command topic's only partition), wherever
    /// it is kept: servers sharing one partition see one order of statements.
    pub fn over(partition: Arc<dyn PartitionStore>) -> CommandLog {
        CommandLog { partition }
    }

    /// Durably appends a command; returns its sequence number (offset). Blocking.
    pub fn append(&self, cmd: &Command) -> Result<i64, CatalogError> {
        let value = serde_json::to_vec(cmd).map_err(CatalogError::BadCommand)?;
        let mut b = BatchBuilder::default();
        b.push(chrono::Utc::now().timestamp_millis(), None, Some(&value), &[]);
        Ok(self.partition.append(b.finish())?.base_offset)
    }

    /// Every command, in order, with its sequence number. A record that cannot be read is
    /// skipped with a loud log line and listed in `skipped`; a topic whose first commands
    /// are missing is an error (a catalog rebuilt from the rest would be half a catalog).
    /// Blocking.
    pub fn read_all(&self) -> Result<ReadCommands, CatalogError> {
        let start = self.partition.start_offset();
        if start > 0 {
            return Err(CatalogError::CommandTopicTruncated { topic: self.partition.topic().to_string(), start });
        }
        self.read_from(start)
    }

    /// The commands from offset `from` to the end, as [`CommandLog::read_all`] reads them.
    /// Blocking.
    pub fn read_from(&self, from: i64) -> Result<ReadCommands, CatalogError> {
        let mut out = ReadCommands::default();
        let mut skipped = Vec::new();
        crate::log::replay::replay(self.partition.as_ref(), from, |seen| match seen {
            Ok(r) => match r.value.map(serde_json::from_slice::<Command>) {
                Some(Ok(cmd)) => out.commands.push((r.offset, cmd)),
                Some(Err(e)) => skipped.push((r.offset, format!("it is not a catalog command ({e})"))),
                None => skipped.push((r.offset, "it has no value".into())),
            },
            Err(unreadable) => skipped.push(unreadable),
        })?;
        for (offset, why) in skipped {
            tracing::error!(topic = self.partition.topic(), offset, "skipping a command topic record that cannot be read: {why}");
            out.skipped.push((offset, why));
        }
        Ok(out)
    }

    /// The next sequence number.
    pub fn end_offset(&self) -> i64 {
        self.partition.end_offset()
    }
}
