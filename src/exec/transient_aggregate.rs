//! Push queries that aggregate (`SELECT k, COUNT(*) FROM s GROUP BY k EMIT CHANGES`): the
//! aggregation runs as a private table query (not in the catalog) writing an internal
//! topic, and the client's push query streams that table's changes. When the client's
//! query ends — LIMIT reached, closed, or the client gone — the aggregation stops and its
//! topic, state and offsets are removed.

use std::sync::Arc;

use super::push::PushQuery;
use super::{ExecError, OffsetReset, Runtime};
use crate::catalog::DataSource;
use crate::sql::aggregate_plan::AggregatePlan;
use crate::sql::planner::SelectPlan;

impl Runtime {
    /// Starts `aggregate` into `table` (whose topic is created here, with as many
    /// partitions as the aggregated source) and `push` over `table`. Blocking.
    pub fn start_push_aggregate(
        &self,
        aggregate: Arc<AggregatePlan>,
        table: &DataSource,
        push: Arc<SelectPlan>,
        reset: OffsetReset,
    ) -> Result<PushQuery, ExecError> {
        let partitions = self.log.topic(&aggregate.source.topic)?.partition_count();
        let topic = self.log.create_topic(&table.topic, partitions, self.log.defaults().clone())?;
        let query_id = table.name.clone();
        self.start_aggregate(&query_id, aggregate, table, topic, reset)?;
        // The aggregation belongs to the client's query, not to the persistent queries.
        let running = self.persistent.lock().remove(&query_id);
        let pq = match self.start_push(push, super::PushStart::Reset(OffsetReset::Earliest), false, false) {
            Ok(pq) => pq,
            Err(e) => {
                if let Some(r) = running {
                    r.cancel.send_replace(true);
                }
                return Err(e);
            }
        };
        let mut ended = pq.shared.cancel_receiver();
        let (log, state) = (self.log.clone(), self.state.clone());
        let (internal_topic, family) = (table.topic.clone(), table.state_family());
        self.handle.spawn(async move {
            while !*ended.borrow() {
                if ended.changed().await.is_err() {
                    break;
                }
            }
            if let Some(r) = running {
                r.cancel.send_replace(true);
                for t in r.tasks {
                    let _ = t.await;
                }
            }
            let cleanup = tokio::task::spawn_blocking(move || {
                Runtime::cleanup_in(&log, &state, &query_id)?;
                state.drop_family(&family)?;
                if log.get_topic(&internal_topic).is_some() {
                    log.delete_topic(&internal_topic)?;
                }
                Ok::<(), ExecError>(())
            });
            if let Ok(Err(e)) = cleanup.await {
                tracing::warn!(error = %e, "cleaning up a push query's aggregation failed");
            }
        });
        Ok(pq)
    }
}
