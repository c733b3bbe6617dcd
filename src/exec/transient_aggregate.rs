//! Push queries that aggregate (`SELECT k, COUNT(*) FROM s GROUP BY k EMIT CHANGES`): the
//! aggregation runs as a private table query (not in the catalog) writing an internal
//! topic, and the client's push query streams that table's changes. Over a join, the join
//! runs first as a private stage writing the joined rows to an internal topic that the
//! aggregation reads. When the client's query ends — LIMIT reached, closed, or the client
//! gone — the private stages stop and their topics, state and offsets are removed.

use std::sync::Arc;

use super::push::PushQuery;
use super::{ExecError, OffsetReset, PushStart, Running, Runtime, Share};
use crate::catalog::DataSource;
use crate::sql::aggregate_plan::AggregatePlan;
use crate::sql::join_plan::JoinPlan;
use crate::sql::planner::SelectPlan;

/// A join a push query aggregates: its plan and the private stream or table (outside the
/// catalog) its rows are written to.
pub struct PrivateJoin {
    pub plan: Arc<JoinPlan>,
    pub result: DataSource,
}

/// A private stage of a push query: its running tasks and what it leaves to remove.
struct PrivateStage {
    query_id: String,
    running: Option<Running>,
    topic: String,
    family: String,
}

impl Runtime {
    /// Starts `aggregate` into `table` (whose topic is created here, with as many
    /// partitions as the aggregated source) and `push` over `table`; with `join`, the join
    /// first, into its result's topic, which the aggregation reads. Blocking.
    pub fn start_push_aggregate(
        &self,
        aggregate: Arc<AggregatePlan>,
        table: &DataSource,
        push: Arc<SelectPlan>,
        reset: OffsetReset,
        join: Option<PrivateJoin>,
    ) -> Result<PushQuery, ExecError> {
        let mut stages = Vec::new();
        let started = self.start_private_stages(aggregate, table, reset, join, &mut stages);
        let pq = match started.and_then(|()| self.start_push(push, PushStart::Reset(OffsetReset::Earliest), false, false)) {
            Ok(pq) => pq,
            Err(e) => {
                self.release(stages, None);
                return Err(e);
            }
        };
        self.release(stages, Some(pq.shared.cancel_receiver()));
        Ok(pq)
    }

    fn start_private_stages(
        &self,
        aggregate: Arc<AggregatePlan>,
        table: &DataSource,
        mut reset: OffsetReset,
        join: Option<PrivateJoin>,
        stages: &mut Vec<PrivateStage>,
    ) -> Result<(), ExecError> {
        if let Some(j) = join {
            let topic = self.log.create_topic(&j.result.topic, j.plan.partitions, self.log.defaults().clone())?;
            let id = j.result.name.clone();
            // A push query's stages run on every partition, whatever this server's share.
            let started = self.start_join_on(Share::All, &id, j.plan.clone(), &j.result, topic, reset);
            stages.push(PrivateStage {
                running: self.persistent.lock().remove(&id),
                query_id: id,
                topic: j.result.topic.clone(),
                family: j.result.state_family(),
            });
            started?;
            // The join's topic holds only what it joined for this query: all of it is read.
            reset = OffsetReset::Earliest;
        }
        let partitions = self.log.topic(&aggregate.source.topic)?.partition_count();
        let topic = self.log.create_topic(&table.topic, partitions, self.log.defaults().clone())?;
        let id = table.name.clone();
        let started = self.start_aggregate_on(Share::All, &id, aggregate, table, topic, reset);
        // The stages belong to the client's query, not to the persistent queries.
        stages.push(PrivateStage { running: self.persistent.lock().remove(&id), query_id: id, topic: table.topic.clone(), family: table.state_family() });
        started
    }

    /// Once `ended` says the client's query is over (at once without it), stops the
    /// stages and removes their topics, state and offsets.
    fn release(&self, stages: Vec<PrivateStage>, ended: Option<tokio::sync::watch::Receiver<bool>>) {
        let (log, state) = (self.log.clone(), self.state.clone());
        self.handle.spawn(async move {
            if let Some(mut ended) = ended {
                while !*ended.borrow() {
                    if ended.changed().await.is_err() {
                        break;
                    }
                }
            }
            let mut leftovers = Vec::new();
            for mut stage in stages {
                if let Some(r) = stage.running.take() {
                    r.cancel.send_replace(true);
                    for t in r.tasks {
                        let _ = t.await;
                    }
                }
                leftovers.push(stage);
            }
            let cleanup = tokio::task::spawn_blocking(move || {
                for stage in leftovers {
                    Runtime::cleanup_in(&log, &state, &stage.query_id, true)?;
                    state.drop_family(&stage.family)?;
                    if log.get_topic(&stage.topic).is_some() {
                        log.delete_topic(&stage.topic)?;
                    }
                }
                Ok::<(), ExecError>(())
            });
            if let Ok(Err(e)) = cleanup.await {
                tracing::warn!(error = %e, "cleaning up a push query's private stages failed");
            }
        });
    }
}
