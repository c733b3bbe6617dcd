//! This server's part in its service on a Kafka cluster. The servers of a service split
//! the work of every persistent query by partition ([`Share`]); one of them runs the
//! statements, the others follow the command topic every second, starting their share of
//! each new query. Each keeps warm copies of the state of the partitions the others run by
//! following their changelog topics, so that it answers pull queries on them and takes
//! them over without reading whole changelogs. When the service rebalances (a server
//! joined, left or died), every server stops its tasks ([`Engine::release_share`]), then
//! starts those of its new share ([`Engine::take_share`]), each restoring the tail of its
//! changelog past the local copy.

use std::sync::atomic::Ordering;

use std::sync::Arc;

use super::{Engine, EngineError, Session};
use crate::exec::Share;
use crate::sql::ast::Statement;
use crate::sql::pull::plan_pull;
use crate::sql::pull::{PullAccess, PullPlan};
use crate::sql::pull_template::SqlShape;

impl Engine {
    /// Whether this server runs its service's statements.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// The partitions of persistent queries this server runs.
    pub fn share(&self) -> Share {
        self.runtime.share()
    }

    /// Whether `sql` holds a statement that changes the catalog (only the server that runs
    /// the service's statements runs those); statements that do not parse here are passed
    /// on when they use variables (their definitions may make them parse).
    pub fn changes_catalog(&self, sql: &str) -> bool {
        match self.parse(sql) {
            Ok(statements) => statements.iter().any(|p| {
                matches!(
                    &p.statement,
                    Statement::CreateSource { .. }
                        | Statement::CreateAsSelect { .. }
                        | Statement::InsertSelect { .. }
                        | Statement::Drop { .. }
                        | Statement::CreateType { .. }
                        | Statement::DropType { .. }
                        | Statement::Alter { .. }
                        | Statement::Pause { .. }
                        | Statement::Resume { .. }
                        | Statement::AlterSystem { .. }
                ) || matches!(&p.statement, Statement::Terminate { query_id } if !query_id.as_ref().is_some_and(|id| id.value.starts_with("transient_")))
            }),
            Err(_) => sql.contains("${"),
        }
    }

    /// The place of the server that runs the partitions a pull query's keys live in, when
    /// that is one server and not this one (None: this server answers — it runs them, the
    /// query is not a key lookup on a table, or its keys live on several servers or
    /// nowhere yet). Blocking (RocksDB reads).
    pub fn pull_owner(&self, sql: &str, session: &Session) -> Result<Option<usize>, EngineError> {
        let Share::Of { .. } = self.share() else { return Ok(None) };
        let sql = super::substitute(sql, &session.variables)?;
        let Some((plan, access)) = self.table_pull_plan(&sql) else { return Ok(None) };
        let partitions = crate::exec::pull::key_partitions(self.runtime.state(), &plan, &access)?;
        Ok(self.other_owner(partitions))
    }

    /// The plan of a pull query on a table (cached when one of its shape was planned);
    /// None for any other statement, or one that does not plan.
    pub(super) fn table_pull_plan(&self, sql: &str) -> Option<(Arc<PullPlan>, PullAccess)> {
        if let Some(cached) = SqlShape::scan(sql).as_ref().and_then(|s| self.pull_plans.lookup(s)) {
            return Some(cached);
        }
        let mut parsed = self.parse(sql).ok()?;
        let Some(Statement::Select(q)) = parsed.pop().map(|p| p.statement).filter(|_| parsed.is_empty()) else { return None };
        if q.emit.is_some() || !self.is_table_query(&q) {
            return None;
        }
        let plan = plan_pull(&q, &self.catalog).ok()?;
        let access = plan.access.clone();
        Some((Arc::new(plan), access))
    }

    /// [`Engine::pull_owner`] for a feature lookup. Blocking.
    pub fn feature_owner(&self, table: &str, keys: &[super::FeatureKey<'_>]) -> Result<Option<usize>, EngineError> {
        let Share::Of { .. } = self.share() else { return Ok(None) };
        Ok(self.other_owner(self.feature_partitions(table, keys)?))
    }

    /// The one other server that runs `partitions`, if one does.
    fn other_owner(&self, partitions: Option<Vec<i32>>) -> Option<usize> {
        let share = self.share();
        let Share::Of { rank, .. } = share else { return None };
        let mut owners: Vec<u32> = partitions?.into_iter().filter_map(|p| share.owner(p)).collect();
        owners.sort_unstable();
        owners.dedup();
        match owners.as_slice() {
            [owner] if *owner != rank => usize::try_from(*owner).ok(),
            _ => None,
        }
    }

    pub(super) fn ensure_active(&self) -> Result<(), EngineError> {
        if self.is_active() { Ok(()) } else { Err(EngineError::Standby(self.config.service_id.clone())) }
    }

    /// Applies the commands appended to the command topic since this server last looked
    /// (starting its share of new queries), and what the changelogs of the partitions other
    /// servers run hold past the local copies; how many commands. Blocking.
    pub fn follow_commands(&self) -> Result<usize, EngineError> {
        let n = {
            let _guard = self.ddl.lock();
            let n = self.catch_up()?;
            if n > 0 && self.runtime.share() != Share::Nothing {
                self.start_stopped_queries();
            }
            n
        };
        let _share = self.share_change.lock();
        self.runtime.follow_changelogs()?;
        Ok(n)
    }

    /// Waits until this server has applied the command at `seq` of the command topic (a
    /// client's `commandSequenceNumber`: a statement it ran, perhaps through another
    /// server), reading the command topic meanwhile. Blocking.
    pub fn await_command(&self, seq: i64, timeout: std::time::Duration) -> Result<(), EngineError> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let applied = self.applied.load(Ordering::Acquire);
            if applied > seq {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(EngineError::CommandNotApplied { seq, applied });
            }
            {
                let _guard = self.ddl.lock();
                if self.catch_up()? > 0 && self.runtime.share() != Share::Nothing {
                    self.start_stopped_queries();
                }
            }
            if self.applied.load(Ordering::Acquire) <= seq {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
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

    /// How old this server's copies of other servers' state may be: the time since it
    /// last caught up with their changelogs (None: it has not yet).
    pub fn standby_staleness_ms(&self) -> Option<i64> {
        let last = self.runtime.changelogs_followed_ms();
        (last > 0).then(|| (chrono::Utc::now().timestamp_millis() - last).max(0))
    }

    /// Stops every task of this server (its service rebalances: its share may go to
    /// another server). Blocking.
    pub fn release_share(&self) {
        let _guard = self.ddl.lock();
        let _share = self.share_change.lock();
        for q in self.catalog.queries() {
            self.runtime.stop_persistent(&q.id);
        }
        self.runtime.set_share(Share::Nothing);
        tracing::info!("the service rebalances: this server stopped its tasks");
    }

    /// Takes this server's new place in its service: applies what is new on the command
    /// topic, then starts its share of every query (their state comes back from their
    /// changelogs, past the local copies); whether it runs the statements. How many
    /// queries started. Blocking.
    pub fn take_share(&self, runs_statements: bool, share: Share) -> Result<usize, EngineError> {
        let _guard = self.ddl.lock();
        // Before the share lock: applying a command takes it.
        self.catch_up()?;
        let _share = self.share_change.lock();
        for q in self.catalog.queries() {
            self.runtime.stop_persistent(&q.id);
        }
        self.runtime.set_share(share.clone());
        // Another server may have written this server's changelog partitions since it
        // last did: it takes new producer epochs, fencing the servers it took them from.
        self.runtime.take_over_changelogs();
        self.active.store(runs_statements, Ordering::Release);
        let started = self.start_stopped_queries();
        tracing::info!(queries = started, ?share, runs_statements, "this server took its share of the service's queries");
        Ok(started)
    }
}
