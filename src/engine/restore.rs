//! Restoring the catalog on start: the command topic is replayed statement by statement.
//! A statement that no longer applies (or a query that no longer starts) does not stop the
//! server: it is recorded as a restore failure with its reason, shown by `SHOW QUERIES`
//! and `DESCRIBE`, and everything else is served. `DROP` (or `TERMINATE`) of what failed
//! removes the failure for good.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::{Engine, EngineError, Session};
use crate::catalog::command_log::Command;
use crate::sql::ast::Statement;
use crate::sql::parser;

/// A catalog command that could not be restored.
#[derive(Debug, Clone)]
pub struct RestoreFailure {
    pub seq: i64,
    pub statement: String,
    /// The persistent query the command created or started.
    pub query_id: Option<String>,
    /// The stream or table the command created.
    pub source: Option<String>,
    pub reason: String,
}

/// Restore failures, and how many command records could not be read at all.
#[derive(Debug, Default)]
pub struct RestoreFailures {
    failures: Mutex<Vec<RestoreFailure>>,
    unreadable: AtomicU64,
}

impl RestoreFailures {
    pub fn all(&self) -> Vec<RestoreFailure> {
        self.failures.lock().clone()
    }

    /// How many command topic records could not be read (skipped on start).
    pub fn unreadable_commands(&self) -> u64 {
        self.unreadable.load(Ordering::Relaxed)
    }

    pub fn of_query(&self, id: &str) -> Option<RestoreFailure> {
        self.failures.lock().iter().find(|f| f.query_id.as_deref() == Some(id)).cloned()
    }

    pub fn of_source(&self, name: &str) -> Option<RestoreFailure> {
        self.failures.lock().iter().find(|f| f.source.as_deref() == Some(name)).cloned()
    }

    fn record(&self, f: RestoreFailure) {
        let (query, source) = (f.query_id.as_deref().unwrap_or("-"), f.source.as_deref().unwrap_or("-"));
        let reason = &f.reason;
        tracing::error!(seq = f.seq, query, source, statement = %f.statement, "could not restore a catalog command; the server starts without it: {reason}");
        let mut all = self.failures.lock();
        // A query that failed to start after its statement applied is one failure.
        if let Some(existing) = all.iter_mut().find(|e| e.query_id.is_some() && e.query_id == f.query_id) {
            *existing = f;
        } else {
            all.push(f);
        }
    }

    /// Forgets the failures of a dropped source (and of the query that wrote it).
    pub fn forget_source(&self, name: &str) -> bool {
        let mut all = self.failures.lock();
        let before = all.len();
        all.retain(|f| f.source.as_deref() != Some(name));
        all.len() != before
    }

    /// Forgets the failure of a terminated query.
    pub fn forget_query(&self, id: &str) -> bool {
        let mut all = self.failures.lock();
        let before = all.len();
        all.retain(|f| f.query_id.as_deref() != Some(id));
        all.len() != before
    }
}

impl Engine {
    /// Replays the command topic and starts the queries still in the catalog. Fails only
    /// when the command topic itself cannot be read or is missing its beginning.
    pub(super) fn replay(&self) -> Result<(), EngineError> {
        let read = self.commands.read_all()?;
        self.restore.unreadable.store(read.skipped.len() as u64, Ordering::Relaxed);
        let n = read.commands.len();
        for (seq, cmd) in read.commands {
            self.apply_command(seq, &cmd);
            self.applied.store(seq + 1, Ordering::Release);
        }
        // Each query runs on the partitions of this server's share.
        let started = self.start_stopped_queries();
        if n > 0 {
            tracing::info!(
                commands = n,
                sources = self.catalog.sources().len(),
                queries = started,
                failed = self.restore.all().len(),
                unreadable = read.skipped.len(),
                "restored the catalog from the command topic"
            );
        }
        Ok(())
    }

    /// Applies one command read back from the command topic (at start, or appended by the
    /// service's active server while this one stands by); what does not apply is recorded.
    pub(super) fn apply_command(&self, seq: i64, cmd: &Command) {
        let failure = |reason: String| RestoreFailure {
            seq,
            statement: cmd.statement.clone(),
            query_id: cmd.query_id.clone(),
            source: parser::created_source_name(&cmd.statement),
            reason,
        };
        let parsed = match self.parse(&cmd.statement) {
            Ok(mut v) if v.len() == 1 => v.remove(0),
            Ok(v) => return self.restore.record(failure(format!("the stored statement holds {} statements, not one", v.len()))),
            Err(e) => return self.restore.record(failure(format!("the stored statement no longer parses: {e}"))),
        };
        let session = Session { properties: cmd.properties.clone(), ..Session::default() };
        if let Err(e) = self.apply(&parsed, &session, seq, cmd.query_id.as_deref(), true) {
            self.restore.record(failure(e.to_string()));
        }
        self.pull_plans.clear();
    }

    /// Starts the catalog's queries that are not paused and not running; how many started.
    pub(super) fn start_stopped_queries(&self) -> usize {
        let mut started = 0;
        for q in self.catalog.queries().into_iter().filter(|q| !self.catalog.is_paused(&q.id) && !self.runtime.is_running(&q.id)) {
            match self.start_query(&q) {
                Ok(()) => started += 1,
                Err(e) => self.restore.record(RestoreFailure {
                    seq: -1,
                    statement: q.sql.clone(),
                    query_id: Some(q.id.clone()),
                    source: Some(q.sink.clone()),
                    reason: format!("the query could not start: {e}"),
                }),
            }
        }
        started
    }

    /// A DROP of a source, or a TERMINATE of a query, that only exists as a restore
    /// failure: the failure is forgotten.
    pub(super) fn forgets_failure(&self, statement: &Statement) -> bool {
        match statement {
            Statement::Drop { name, .. } if self.catalog.source(&name.value).is_none() => self.restore.forget_source(&name.value),
            Statement::Terminate { query_id: Some(id) } if self.catalog.query(&id.value).is_none() => self.restore.forget_query(&id.value),
            _ => false,
        }
    }

    pub fn restore_failures(&self) -> &RestoreFailures {
        &self.restore
    }
}
