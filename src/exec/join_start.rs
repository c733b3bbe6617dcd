//! Starts a join query: a repartition stage for each side that needs one, then one join
//! task per partition of the co-partitioned inputs.

use std::sync::Arc;

use tokio::sync::watch;

use super::join::{JoinInput, JoinTask};
use super::join_input::SideInput;
use super::join_rekey::JoinRekeyTask;
use super::sink::{IdempotentWriter, TopicSink, task_producer_id};
use super::stats::QueryStats;
use super::task::drive;
use super::{ExecError, OffsetReset, Running, Runtime};
use crate::catalog::DataSource;
use crate::catalog::types::{Column, ColumnKind};
use crate::format::Role;
use crate::log::Topic;
use crate::sql::join_plan::{JoinPlan, JoinShape, JoinSide};

/// The internal topic a join side is repartitioned through.
pub fn join_repartition_topic(query_id: &str, side: &str) -> String {
    format!("_eddy_{query_id}_{side}_repartition")
}

/// Names of a join query's stages (consumer groups and checkpoints), besides the query id.
pub fn join_stage_names(query_id: &str) -> Vec<String> {
    vec![format!("{query_id}/left-repartition"), format!("{query_id}/right-repartition"), right_input_name(query_id)]
}

fn right_input_name(query_id: &str) -> String {
    format!("{query_id}/right-input")
}

impl Runtime {
    /// Starts a join writing into `sink`. Blocking.
    pub fn start_join(&self, query_id: &str, plan: Arc<JoinPlan>, sink: &DataSource, sink_topic: Arc<Topic>, reset: OffsetReset) -> Result<(), ExecError> {
        let qfamily = Self::query_family(query_id);
        self.state.ensure_family(&qfamily)?;
        let tfamily = (plan.shape == JoinShape::TableTable).then(|| sink.state_family());
        if let Some(t) = &tfamily {
            self.state.ensure_family(t)?;
        }
        let stats = Arc::new(QueryStats::default());
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        // Repartitioned rows land where the side read directly keeps the same key.
        let partition_format = if !plan.left.repartition { &plan.left.source.key_format } else if !plan.right.repartition { &plan.right.source.key_format } else { &plan.left.source.key_format };
        let key_column = Column::new("K", plan.key_type.clone(), ColumnKind::Key);
        let mut inputs: Vec<Arc<Topic>> = Vec::new();
        let mut upstreams: Vec<Option<(String, Arc<Topic>)>> = Vec::new();
        for (tag, side) in [("left", &plan.left), ("right", &plan.right)] {
            let source_topic = self.log.topic(&side.source.topic)?;
            if !side.repartition {
                inputs.push(source_topic);
                upstreams.push(None);
                continue;
            }
            let name = join_repartition_topic(query_id, tag);
            let internal = match self.log.get_topic(&name) {
                Some(t) => t,
                None => self.log.create_topic(&name, plan.partitions, self.log.defaults().clone())?,
            };
            let stage = format!("{query_id}/{tag}-repartition");
            for part in source_topic.partitions() {
                let cp = self.stateful_start(&stage, part, reset)?;
                let writer = IdempotentWriter::new(internal.clone(), task_producer_id(&stage, part.id()), &cp.sink);
                let encoder = partition_format.encoder(&[&key_column], Role::Key);
                let reader = SideInput::direct(side, &plan, part.id());
                let task = JoinRekeyTask::new(stage.clone(), part.clone(), cp.offset, reader, encoder, writer, self.state.clone(), stats.clone(), self.log.clone());
                tasks.push(self.handle.spawn(drive(task, cancel_rx.clone())));
            }
            inputs.push(internal);
            upstreams.push(Some((stage, source_topic)));
        }
        let (left_topic, right_topic) = (&inputs[0], &inputs[1]);
        let open = |name: &str, topic: &Arc<Topic>, side: &JoinSide, upstream: &Option<(String, Arc<Topic>)>, p: i32| -> Result<(JoinInput, super::checkpoint::TaskCheckpoint), ExecError> {
            let part = topic.partition(p)?.clone();
            let start = if side.repartition { OffsetReset::Earliest } else { reset };
            let cp = self.stateful_start(name, &part, start)?;
            let reader = if side.repartition { SideInput::Repartitioned } else { SideInput::direct(side, &plan, p) };
            Ok((JoinInput { name: name.to_string(), partition: part, position: cp.offset, reader, upstream: upstream.clone() }, cp))
        };
        for p in 0..plan.partitions {
            let (left, cp) = open(query_id, left_topic, &plan.left, &upstreams[0], p)?;
            let (right, _) = open(&right_input_name(query_id), right_topic, &plan.right, &upstreams[1], p)?;
            let sink_writer = TopicSink::new(sink_topic.clone(), sink, plan.key_indices(), plan.value_indices(), task_producer_id(query_id, p), &cp.sink);
            let task = JoinTask::new(left, right, cp.stream_time, plan.clone(), self.state.clone(), qfamily.clone(), tfamily.clone(), sink_writer, stats.clone(), self.log.clone());
            tasks.push(self.handle.spawn(drive(task, cancel_rx.clone())));
        }
        self.persistent.lock().insert(query_id.to_string(), Running { stats, cancel: cancel_tx, tasks });
        Ok(())
    }
}
