//! Checkpoints of stateful tasks, kept in RocksDB next to their state so that state,
//! source offset, sink sequence numbers and stream time commit in one write batch.

use serde::{Deserialize, Serialize};

use super::ExecError;
use super::sink::SinkCheckpoint;
use crate::state::{CHECKPOINTS, StateBatch, StateDb};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCheckpoint {
    /// Next source offset to read.
    pub offset: i64,
    #[serde(default)]
    pub sink: SinkCheckpoint,
    /// Largest event time seen (windows close behind it).
    #[serde(default = "min_time")]
    pub stream_time: i64,
}

fn min_time() -> i64 {
    i64::MIN
}

fn key(task: &str, topic: &str, partition: i32) -> Vec<u8> {
    format!("{task}/{topic}/{partition}").into_bytes()
}

pub fn load(state: &StateDb, task: &str, topic: &str, partition: i32) -> Result<Option<TaskCheckpoint>, ExecError> {
    match state.get(CHECKPOINTS, &key(task, topic, partition))? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b).map(Some).map_err(|e| ExecError::UnreadableCheckpoint { task: task.to_string(), source: e }),
    }
}

/// The last committed checkpoint of a task that starts over after a failed step, or
/// `initial` (what it started from) when it has committed none. On a cluster the local
/// state first takes in what the changelog holds past it (and the task's open
/// transaction is aborted), so the task goes on from its last commit. Blocking.
pub fn committed(state: &StateDb, task: &str, topic: &str, partition: i32, initial: &TaskCheckpoint) -> Result<TaskCheckpoint, ExecError> {
    state.restore_task(task, partition)?;
    Ok(load(state, task, topic, partition)?.unwrap_or_else(|| initial.clone()))
}

pub fn put(batch: &mut StateBatch, task: &str, topic: &str, partition: i32, cp: &TaskCheckpoint) -> Result<(), ExecError> {
    let v = serde_json::to_vec(cp)?;
    batch.put(CHECKPOINTS, key(task, topic, partition), v);
    Ok(())
}

/// Deletes every checkpoint whose task name starts with `prefix` (a terminated query).
pub fn delete_all(state: &StateDb, prefix: &str) -> Result<(), ExecError> {
    let p = format!("{prefix}/").into_bytes();
    let end = crate::state::keys::prefix_end(&p);
    let mut batch = StateBatch::default();
    state.scan(CHECKPOINTS, Some(&p), end.as_deref(), |k, _| {
        batch.delete(CHECKPOINTS, k.to_vec());
        true
    })?;
    // Stage tasks are named "<query>/<stage>": their checkpoints start with the query id too.
    state.write(batch, true)?;
    Ok(())
}
