//! Active and standby servers of one service on a Kafka cluster. The active server runs
//! statements, the persistent queries, and pull and push queries. A standby replays the
//! command topic and keeps following it, so its catalog is the service's, and keeps warm
//! copies of the queries' state by following their changelog topics, but starts no query
//! and answers no query: a 503 names the situation. When it is made active (the active
//! server left or died), it applies what is new, starts every query — each reading only
//! the tail of its changelog past its warm copy — and serves.

use std::sync::atomic::Ordering;

use super::{Engine, EngineError, Session};

/// ksqlDB's property that lets a pull query be answered by a standby's copy of the state.
pub const STANDBY_READS: &str = "ksql.query.pull.enable.standby.reads";

/// Whether a session lets a standby answer its pull queries.
pub fn reads_allowed(session: &Session) -> bool {
    session.properties.iter().any(|(k, v)| k.eq_ignore_ascii_case(STANDBY_READS) && v.trim().eq_ignore_ascii_case("true"))
}

impl Engine {
    /// Whether this server runs its service's queries.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    pub(super) fn ensure_active(&self) -> Result<(), EngineError> {
        if self.is_active() { Ok(()) } else { Err(EngineError::Standby(self.config.service_id.clone())) }
    }

    /// Applies the commands appended to the command topic since this server last looked,
    /// and what the queries' changelogs hold past the local state (a standby follows the
    /// active server this way, keeping warm copies of its state); how many commands.
    /// Blocking.
    pub fn follow_commands(&self) -> Result<usize, EngineError> {
        let _guard = self.ddl.lock();
        let n = self.catch_up()?;
        self.runtime.follow_changelogs()?;
        Ok(n)
    }

    /// With the catalog lock held: applies every command past the last applied one.
    fn catch_up(&self) -> Result<usize, EngineError> {
        let from = self.applied.load(Ordering::Acquire);
        let read = self.commands.read_from(from)?;
        let n = read.commands.len();
        for (seq, cmd) in read.commands {
            self.apply_command(seq, &cmd);
            self.applied.store(seq + 1, Ordering::Release);
        }
        if let Some((offset, _)) = read.skipped.last() {
            self.applied.fetch_max(offset + 1, Ordering::AcqRel);
        }
        Ok(n)
    }

    /// How old a standby's copy of the state may be: the time since it last caught up
    /// with the changelogs (None: it has not yet).
    pub fn standby_staleness_ms(&self) -> Option<i64> {
        let last = self.runtime.changelogs_followed_ms();
        (last > 0).then(|| (chrono::Utc::now().timestamp_millis() - last).max(0))
    }

    /// Makes this server its service's active server: applies what is new on the command
    /// topic, then starts every query (their state comes back from their changelogs).
    /// Blocking.
    pub fn activate(&self) -> Result<usize, EngineError> {
        let _guard = self.ddl.lock();
        self.catch_up()?;
        self.runtime.take_over_changelogs();
        self.active.store(true, Ordering::Release);
        let started = self.start_stopped_queries();
        tracing::info!(queries = started, "this server is now its service's active server");
        Ok(started)
    }

    /// Stops running the service's queries (another server became active). Blocking.
    pub fn deactivate(&self) {
        let _guard = self.ddl.lock();
        self.active.store(false, Ordering::Release);
        for q in self.catalog.queries() {
            self.runtime.stop_persistent(&q.id);
        }
        tracing::warn!("another server is now its service's active server: this one stopped its queries and stands by");
    }
}
