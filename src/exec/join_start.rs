//! Starts a join query: a repartition stage for each source side that needs one, the
//! earlier stages of an N-way join (each writing its joined rows, keyed by the next join's
//! key, to an internal topic), then one join task per partition of each stage.

use std::sync::Arc;

use std::sync::atomic::AtomicI64;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::join::{JoinInput, JoinOutput, JoinTask, NextStage, Upstream};
use super::join_input::SideInput;
use super::join_rekey::JoinRekeyTask;
use super::push::{CHANNEL_MESSAGES, PushQuery, PushShared};
use super::sink::{IdempotentWriter, TopicSink};
use super::stats::QueryStats;
use super::table_source::row_encoder;
use super::task::{ClientOutput, drive};
use super::{ExecError, OffsetReset, Running, Runtime, Share, Transient, transient_id};
use crate::catalog::DataSource;
use crate::catalog::types::{Column, ColumnKind};
use crate::format::{FormatKind, FormatSpec, Role};
use crate::log::{Log, Topic};
use crate::sql::join_plan::{JoinPlan, JoinShape, SideInputKind};
use crate::state::StateDb;

/// Deepest N-way join (stages) a query may have.
const MAX_STAGES: usize = 16;

/// The internal topic a join side is repartitioned through.
pub fn join_repartition_topic(prefix: &str, stage_id: &str, side: &str) -> String {
    format!("{prefix}{stage_id}_{side}_repartition")
}

/// Ids of a join query's stages: the query id, then the earlier stages of an N-way join.
pub fn join_stage_ids(query_id: &str) -> Vec<String> {
    let mut ids = vec![query_id.to_string()];
    for _ in 1..MAX_STAGES {
        let last = ids.last().cloned().unwrap_or_default();
        ids.push(format!("{last}-L"));
    }
    ids
}

/// Consumer groups (and checkpoint names) of one stage besides its id.
pub fn join_stage_groups(stage_id: &str) -> Vec<String> {
    vec![format!("{stage_id}/left-repartition"), format!("{stage_id}/right-repartition"), right_input_name(stage_id)]
}

fn right_input_name(stage_id: &str) -> String {
    format!("{stage_id}{RIGHT_INPUT_SUFFIX}")
}

/// How the name of a join stage's right input ends (its left input is named as the stage).
pub const RIGHT_INPUT_SUFFIX: &str = "/right-input";

/// Removes what a join query's stages kept: state, internal topics, consumer groups.
/// Blocking.
pub fn cleanup_join(log: &Log, state: &StateDb, query_id: &str) -> Result<(), ExecError> {
    for stage in join_stage_ids(query_id) {
        for side in ["left", "right"] {
            let internal = join_repartition_topic(log.internal_prefix(), &stage, side);
            if log.get_topic(&internal).is_some() {
                log.delete_topic(&internal)?;
            }
        }
    }
    cleanup_join_state(log, state, query_id)
}

/// Removes what this server kept of a join's stages (not their internal topics).
pub fn cleanup_join_state(log: &Log, state: &StateDb, query_id: &str) -> Result<(), ExecError> {
    for stage in join_stage_ids(query_id) {
        state.drop_family(&Runtime::query_family(&stage))?;
        log.offsets().delete_group(&stage)?;
        for group in join_stage_groups(&stage) {
            log.offsets().delete_group(&group)?;
        }
    }
    super::checkpoint::delete_all(state, query_id)
}

/// Where a stage writes: the query's sink, the next stage's input, or a push query's
/// client.
enum StageTarget<'a> {
    Result { sink: &'a DataSource, topic: Arc<Topic> },
    Next { topic: Arc<Topic>, plan: &'a JoinPlan, partition_format: FormatSpec },
    Client(ClientOutput),
}

/// The key format repartitioned rows are partitioned by: the one of a side read directly.
fn partition_format(plan: &JoinPlan) -> FormatSpec {
    let direct = [&plan.left, &plan.right].into_iter().find(|s| !s.repartition).and_then(|s| s.source());
    let any = [&plan.left, &plan.right].into_iter().find_map(|s| s.source());
    direct.or(any).map(|s| s.key_format.clone()).unwrap_or_else(|| FormatSpec::new(FormatKind::Kafka))
}

struct Spawner<'a> {
    rt: &'a Runtime,
    /// The partitions to run (a push join runs all of them; a persistent one this
    /// server's share).
    share: Share,
    reset: OffsetReset,
    stats: Arc<QueryStats>,
    cancel: watch::Receiver<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Spawner<'_> {
    /// The stage `group` feeding an input from `topic`, as far as this server runs it.
    fn upstream(&self, group: String, topic: &Arc<Topic>) -> Upstream {
        Upstream { group, partitions: topic.partitions().iter().filter(|p| self.share.owns(p.id())).cloned().collect() }
    }

    fn internal_topic(&self, name: &str, partitions: i32) -> Result<Arc<Topic>, ExecError> {
        Ok(self.rt.log.topic_or_create(name, partitions, self.rt.log.defaults().clone())?)
    }

    /// Starts one stage (and, first, the stages and repartitions that feed it).
    fn stage(&mut self, stage_id: &str, plan: &Arc<JoinPlan>, target: StageTarget<'_>) -> Result<(), ExecError> {
        let rt = self.rt;
        let qfamily = Runtime::query_family(stage_id);
        rt.state.ensure_family(&qfamily)?;
        let format = partition_format(plan);
        let key_column = Column::new("K", plan.key_type.clone(), ColumnKind::Key);
        // Each side's source topic and, when it is repartitioned, its stage's name and topic.
        type Input = (Arc<Topic>, Option<Upstream>);
        let mut inputs: Vec<Input> = Vec::new();
        for (tag, side) in [("left", &plan.left), ("right", &plan.right)] {
            match &side.input {
                SideInputKind::Source(source) if !side.repartition => inputs.push((rt.log.topic(&source.topic)?, None)),
                SideInputKind::Source(source) => {
                    let internal = self.internal_topic(&join_repartition_topic(rt.log.internal_prefix(), stage_id, tag), plan.partitions)?;
                    let source_topic = rt.log.topic(&source.topic)?;
                    let group = format!("{stage_id}/{tag}-repartition");
                    for part in source_topic.partitions().iter().filter(|p| self.share.owns(p.id())) {
                        let cp = rt.stateful_start(&group, part, self.reset)?;
                        let writer = IdempotentWriter::new(internal.clone(), rt.task_producer(&group, part.id()), &cp.sink);
                        let encoder = format.encoder(&[&key_column], Role::Key);
                        let reader = SideInput::direct(side, source, plan, part.id());
                        let task = JoinRekeyTask::new(
                            group.clone(),
                            part.clone(),
                            cp.offset,
                            reader,
                            encoder,
                            writer,
                            rt.state.clone(),
                            self.stats.clone(),
                            rt.log.clone(),
                        );
                        self.tasks.push(rt.handle.spawn(drive(task, self.cancel.clone())));
                    }
                    let upstream = self.upstream(group, &source_topic);
                    inputs.push((internal, Some(upstream)));
                }
                SideInputKind::Stage(inner) => {
                    let internal = self.internal_topic(&join_repartition_topic(rt.log.internal_prefix(), stage_id, tag), plan.partitions)?;
                    let inner_id = format!("{stage_id}-L");
                    let inner = Arc::new((**inner).clone());
                    let inner_input = inner.left.source().map(|s| s.topic.clone());
                    self.stage(&inner_id, &inner, StageTarget::Next { topic: internal.clone(), plan, partition_format: format.clone() })?;
                    // Wait for the earlier stage like for a repartition stage (by its left input).
                    let upstream = match inner_input {
                        Some(t) if !inner.left.repartition => self.upstream(inner_id.clone(), &rt.log.topic(&t)?),
                        _ => self.upstream(inner_id.clone(), &rt.log.topic(&join_repartition_topic(rt.log.internal_prefix(), &inner_id, "left"))?),
                    };
                    let upstream = Some(upstream);
                    inputs.push((internal, upstream));
                }
            }
        }
        let tfamily = match &target {
            StageTarget::Result { sink, .. } if plan.shape == JoinShape::TableTable => {
                rt.state.ensure_family(&sink.state_family())?;
                Some(sink.state_family())
            }
            _ => None,
        };
        for p in (0..plan.partitions).filter(|p| self.share.owns(*p)) {
            let mut opened = Vec::new();
            for (i, (side, (topic, upstream))) in [&plan.left, &plan.right].into_iter().zip(&inputs).enumerate() {
                let name = if i == 0 { stage_id.to_string() } else { right_input_name(stage_id) };
                let part = topic.partition(p)?.clone();
                let start = if side.repartition { OffsetReset::Earliest } else { self.reset };
                let cp = rt.stateful_start(&name, &part, start)?;
                let reader = match side.source() {
                    Some(source) if !side.repartition => SideInput::direct(side, source, plan, p),
                    _ => SideInput::Repartitioned,
                };
                opened.push((JoinInput { name, partition: part, position: cp.offset, reader, upstream: upstream.clone() }, cp));
            }
            let (right, rcp) = opened.pop().ok_or_else(|| ExecError::Invariant("join input missing"))?;
            let (left, cp) = opened.pop().ok_or_else(|| ExecError::Invariant("join input missing"))?;
            let producer = rt.task_producer(stage_id, p);
            let output = match &target {
                StageTarget::Result { sink, topic } => JoinOutput::Result {
                    sink: TopicSink::new(topic.clone(), sink, plan.key_indices(), plan.value_indices(), producer.clone(), &cp.sink),
                    tfamily: tfamily.clone(),
                },
                StageTarget::Client(out) => JoinOutput::Client(out.clone()),
                StageTarget::Next { topic, plan: next, partition_format } => JoinOutput::Next(NextStage {
                    writer: IdempotentWriter::new(topic.clone(), producer, &cp.sink),
                    key: next.left.key.clone(),
                    encoder: row_encoder(&next.left.stored_fields(&next.key_type)),
                    partition_key: partition_format.encoder(&[&Column::new("K", next.key_type.clone(), ColumnKind::Key)], Role::Key),
                    row_key: next.left_row_key.clone(),
                }),
            };
            let task = JoinTask::new(
                left,
                right,
                [cp.stream_time, rcp.stream_time],
                plan.clone(),
                rt.state.clone(),
                qfamily.clone(),
                output,
                self.stats.clone(),
                rt.log.clone(),
            );
            self.tasks.push(rt.handle.spawn(drive(task, self.cancel.clone())));
        }
        Ok(())
    }
}

impl Runtime {
    /// Starts a join as a push query: its stages run until the client goes (or LIMIT is
    /// reached), then everything they kept is removed.
    pub fn start_push_join(&self, plan: Arc<JoinPlan>, reset: OffsetReset) -> Result<PushQuery, ExecError> {
        let id = transient_id("JOIN");
        let (tx, rx) = mpsc::channel(CHANNEL_MESSAGES);
        let (shared, cancel_rx) = PushShared::new();
        let shared = Arc::new(shared);
        let stats = self.new_stats();
        let remaining = plan.limit.map(|l| Arc::new(AtomicI64::new(l as i64)));
        if plan.limit == Some(0) {
            shared.limit_reached();
        }
        let out = ClientOutput { tx: tx.clone(), remaining, shared: shared.clone(), wants_progress: false };
        let mut spawner = Spawner { rt: self, share: Share::All, reset, stats: stats.clone(), cancel: cancel_rx.clone(), tasks: Vec::new() };
        if let Err(e) = spawner.stage(&id, &plan, StageTarget::Client(out)) {
            shared.close();
            cleanup_join(&self.log, &self.state, &id)?;
            return Err(e);
        }
        let tasks = spawner.tasks;
        self.transient.lock().insert(id.clone(), Transient { shared: shared.clone(), stats });
        let (registry, log, state, sup_shared, sup_id) = (self.transient.clone(), self.log.clone(), self.state.clone(), shared.clone(), id.clone());
        let mut cancel = cancel_rx;
        let query_id = id.clone();
        self.handle.spawn(async move {
            // Until the client leaves, LIMIT is reached or the query is closed.
            tokio::select! {
                _ = tx.closed() => {},
                _ = cancel.wait_for(|c| *c) => {},
            }
            sup_shared.close();
            for t in tasks {
                let _ = t.await;
            }
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(e) = cleanup_join(&log, &state, &sup_id) {
                    tracing::warn!(query = %sup_id, "could not remove a finished push join's state: {e}");
                }
            })
            .await;
            registry.lock().remove(&id);
            drop(tx);
        });
        Ok(PushQuery {
            id: query_id,
            header_schema: plan.columns.iter().map(|c| format!("{} {}", crate::catalog::types::quote_ident(&c.name), c.expr.ty)).collect::<Vec<_>>().join(", "),
            column_names: plan.columns.iter().map(|c| c.name.clone()).collect(),
            column_types: plan.columns.iter().map(|c| c.expr.ty.to_string()).collect(),
            rx,
            shared,
            is_print: false,
            continuation: None,
        })
    }

    /// Starts a join writing into `sink`, on this server's share of its partitions.
    /// Blocking.
    pub fn start_join(&self, query_id: &str, plan: Arc<JoinPlan>, sink: &DataSource, sink_topic: Arc<Topic>, reset: OffsetReset) -> Result<(), ExecError> {
        self.start_join_on(self.share(), query_id, plan, sink, sink_topic, reset)
    }

    /// [`Runtime::start_join`] on the partitions of `share`. Blocking.
    pub(super) fn start_join_on(
        &self,
        share: Share,
        query_id: &str,
        plan: Arc<JoinPlan>,
        sink: &DataSource,
        sink_topic: Arc<Topic>,
        reset: OffsetReset,
    ) -> Result<(), ExecError> {
        let stats = self.new_stats();
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let mut spawner = Spawner { rt: self, share, reset, stats: stats.clone(), cancel: cancel_rx, tasks: Vec::new() };
        spawner.stage(query_id, &plan, StageTarget::Result { sink, topic: sink_topic })?;
        self.persistent.lock().insert(query_id.to_string(), Running { stats, cancel: cancel_tx, tasks: spawner.tasks });
        Ok(())
    }
}
