//! Task transactions on a Kafka cluster (exactly-once processing, as Kafka Streams does
//! it): every stateful task of a query partition has a transactional producer of its own,
//! `<internal prefix><task>-<partition>`. What a step writes — its output records, its
//! state changes in the changelog, and its source offsets (into the group
//! `<internal prefix><task>`) — commits in one transaction, and the local state is written
//! after the commit.
//!
//! Fencing: a server that starts a task registers the task's transactional id first (the
//! cluster aborts what the last server left open and refuses that server from then on),
//! then reads the committed changelog. A task that failed part-way (or was fenced: it
//! stalled while another server took it over) registers again and reads the committed
//! changelog again before it goes on, so it continues from the last commit — its own or
//! another server's — and writes nothing twice.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::ExecError;
use crate::log::{Log, TransactionalWriter};

/// How long a task's transaction may stay open before the cluster aborts it (a server
/// that stopped in the middle of a step; a task that takes it over aborts it at once).
const TRANSACTION_TIMEOUT_MS: i32 = 60_000;

/// The task whose transaction (and changelog) a task name belongs to: a join's two inputs
/// commit together, as their stage.
pub fn transaction_task(task: &str) -> &str {
    task.strip_suffix(super::join_start::RIGHT_INPUT_SUFFIX).unwrap_or(task)
}

/// The transactional id of a task's partition.
pub fn transactional_id(log: &Log, task: &str, partition: i32) -> String {
    format!("{}{}-{partition}", log.internal_prefix(), transaction_task(task).replace('/', "-"))
}

/// The consumer group a task's source offsets are committed to (shown by Kafka's tools).
pub fn offsets_group(log: &Log, task: &str) -> String {
    format!("{}{}", log.internal_prefix(), task)
}

/// The transactional producers of the tasks this server started.
pub struct TaskTransactions {
    log: Arc<Log>,
    writers: Mutex<HashMap<(String, i32), Arc<dyn TransactionalWriter>>>,
}

impl TaskTransactions {
    pub fn new(log: Arc<Log>) -> TaskTransactions {
        TaskTransactions { log, writers: Mutex::new(HashMap::new()) }
    }

    /// Registers a task's transactional producer (before its state is restored): the
    /// server that ran it before can no longer commit, and what it left open is aborted.
    /// Blocking.
    pub fn begin(&self, task: &str, partition: i32) -> Result<(), ExecError> {
        let Some(cluster) = self.log.cluster() else { return Ok(()) };
        let task = transaction_task(task);
        let writer = cluster.transactional_writer(&transactional_id(&self.log, task, partition), TRANSACTION_TIMEOUT_MS)?;
        self.writers.lock().insert((task.to_string(), partition), writer);
        Ok(())
    }

    /// The transactional producer of a task's partition, once begun.
    pub fn of(&self, task: &str, partition: i32) -> Option<Arc<dyn TransactionalWriter>> {
        self.writers.lock().get(&(transaction_task(task).to_string(), partition)).cloned()
    }

    /// Before a task that failed part-way starts over: whatever its transaction holds is
    /// aborted (by registering again, which also takes the task back from a server that
    /// took it while this one stalled). Blocking.
    pub fn recover(&self, task: &str, partition: i32) -> Result<(), ExecError> {
        if let Some(writer) = self.of(task, partition).filter(|w| w.is_open()) {
            tracing::info!(transactional_id = writer.id(), "aborting the transaction of a failed step; the task starts over from its last commit");
            writer.reset()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::TopicConfig;

    #[test]
    fn a_join_stage_and_its_right_input_share_one_transactional_id() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), TopicConfig::default()).unwrap();
        let right = format!("CSAS_J_1{}", super::super::join_start::RIGHT_INPUT_SUFFIX);
        assert_eq!(transactional_id(&log, &right, 3), transactional_id(&log, "CSAS_J_1", 3));
        assert_eq!(transactional_id(&log, "CTAS_X_1/repartition", 0), format!("{}CTAS_X_1-repartition-0", log.internal_prefix()));
        assert_ne!(transactional_id(&log, "CTAS_X_1", 0), transactional_id(&log, "CTAS_X_1", 1));
    }
}
