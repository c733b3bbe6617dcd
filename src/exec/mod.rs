//! The continuous query runtime: tasks per source partition that read the log, run the
//! compiled operators on Arrow batches and write to sink topics or client channels.

pub mod aggregate;
pub mod changelog;
pub mod checkpoint;
pub mod continuation;
pub mod expr;
pub mod join;
pub mod join_input;
pub mod join_rekey;
pub mod join_start;
pub mod placement;
pub mod print;
pub mod processing_log;
pub mod pull;
pub mod push;
mod record_cache;
pub mod repartition;
pub mod sink;
pub mod source;
pub mod stats;
pub mod table_source;
pub mod task;
pub mod transaction;
mod transient_aggregate;
pub use transient_aggregate::PrivateJoin;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::catalog::DataSource;
use crate::log::{Log, LogError, PartitionStore, Topic};
use crate::sql::aggregate_plan::AggregatePlan;
use crate::sql::planner::SelectPlan;
use crate::state::StateDb;
use checkpoint::TaskCheckpoint;
use push::{CHANNEL_MESSAGES, PushQuery, PushShared};
use sink::{TopicSink, task_producer_id};
use source::SourceDecoder;
use stats::{QueryState, QueryStats};
use task::{ClientOutput, Output, Task, drive, load_checkpoint};

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Batch(#[from] crate::log::BatchError),
    #[error(transparent)]
    Format(#[from] crate::format::FormatError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error("internal error in the query runtime: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// An expression failed where a row cannot be skipped (a key, a stored row).
    #[error("internal error in the query runtime: {0}")]
    Expr(#[from] expr::ExprError),
    #[error("internal error in the query runtime: {0}")]
    Aggregate(#[from] crate::sql::aggregates::AggregateError),
    #[error("internal error in the query runtime: {0}")]
    Json(#[from] serde_json::Error),
    #[error("internal error in the query runtime: checkpoint of {task} is unreadable: {source}")]
    UnreadableCheckpoint { task: String, source: serde_json::Error },
    #[error("internal error in the query runtime: stored row is not a JSON object: {json}")]
    StoredRowNotObject { json: String },
    #[error("internal error in the query runtime: evaluating the pull query failed: {0}")]
    PullEvaluation(#[source] expr::ExprError),
    /// Something the runtime relies on does not hold (stored state of another shape, a
    /// plan without the part its operator needs).
    #[error("internal error in the query runtime: {0}")]
    Invariant(&'static str),
}

/// Where a query without committed offsets starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    Earliest,
    Latest,
}

/// Where a push query starts reading its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushStart {
    /// From each partition's start or end.
    Reset(OffsetReset),
    /// From these offsets, one per partition (a continuation token's).
    At(Vec<i64>),
}

impl OffsetReset {
    pub fn parse(s: &str) -> Option<OffsetReset> {
        match s.trim().to_ascii_lowercase().as_str() {
            "earliest" => Some(OffsetReset::Earliest),
            "latest" => Some(OffsetReset::Latest),
            _ => None,
        }
    }
}

/// Which partitions of every persistent query this server runs. Alone, all of them; as
/// one of several servers of a service on a Kafka cluster, those its service's
/// [`placement::Placement`] gives its place `rank` of `count` (every stage of a query is
/// split by the same partition number, so a partition's stages run on one server); while
/// its service rebalances, none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Share {
    All,
    Of { rank: u32, count: u32, placement: Arc<placement::Placement> },
    Nothing,
}

impl Share {
    /// The share of the server at `rank` among `count` servers, partition `p` on the
    /// server at `p mod count`, no copies.
    pub fn of(rank: usize, count: usize) -> Share {
        Share::placed(rank, count, Arc::new(placement::Placement::modulo(count)))
    }

    /// The share of the server at `rank` among `count` servers as `placement` says.
    pub fn placed(rank: usize, count: usize, placement: Arc<placement::Placement>) -> Share {
        match (u32::try_from(rank), u32::try_from(count)) {
            (Ok(rank), Ok(count)) if rank < count => Share::Of { rank, count, placement },
            _ => Share::Nothing,
        }
    }

    pub fn owns(&self, partition: i32) -> bool {
        match self {
            Share::All => true,
            Share::Of { rank, placement, .. } => placement.owner(partition) == Some(*rank),
            Share::Nothing => false,
        }
    }

    /// Whether this server keeps a warm copy of `partition` (another server runs it).
    pub fn copies(&self, partition: i32) -> bool {
        match self {
            Share::Of { rank, placement, .. } => placement.is_standby(partition, *rank),
            Share::All | Share::Nothing => false,
        }
    }

    /// The place of the server that runs `partition`, on a service's server.
    pub fn owner(&self, partition: i32) -> Option<u32> {
        match self {
            Share::Of { placement, .. } => placement.owner(partition),
            Share::All | Share::Nothing => None,
        }
    }
}

/// The partitions of `topic` in `share`.
fn shared_partitions(share: Share, topic: &Topic) -> impl Iterator<Item = &Arc<dyn PartitionStore>> {
    topic.partitions().iter().filter(move |p| share.owns(p.id()))
}

struct Running {
    stats: Arc<QueryStats>,
    cancel: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

struct Transient {
    shared: Arc<PushShared>,
    stats: Arc<QueryStats>,
}

/// Runs persistent and transient queries on the tokio runtime it was created on.
pub struct Runtime {
    log: Arc<Log>,
    state: Arc<StateDb>,
    handle: Handle,
    persistent: Mutex<HashMap<String, Running>>,
    transient: Arc<Mutex<HashMap<String, Transient>>>,
    processing_log: Option<Arc<processing_log::ProcessingLog>>,
    /// On a Kafka cluster: the changelog topics backing stateful tasks' state.
    changelogs: Option<Arc<changelog::Changelogs>>,
    /// When a standby last caught up with the changelogs (ms since the epoch; 0: never).
    changelogs_followed_ms: AtomicI64,
    /// The partitions of persistent queries this server runs.
    share: Mutex<Share>,
}

pub fn transient_id(source: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in t.to_be_bytes().into_iter().chain(n.to_be_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(h >> 1);
    let mut id = String::with_capacity(11 + source.len() + digits.len());
    id.push_str("transient_");
    id.push_str(source);
    id.push('_');
    id.push_str(digits);
    id
}

impl Runtime {
    pub fn new(log: Arc<Log>, state: Arc<StateDb>, handle: Handle, processing_log: Option<Arc<processing_log::ProcessingLog>>) -> Runtime {
        let changelogs = log.cluster().map(|_| Arc::new(changelog::Changelogs::new(log.clone())));
        if let Some(c) = &changelogs {
            state.set_journal(c.clone());
        }
        Runtime {
            log,
            state,
            handle,
            persistent: Mutex::new(HashMap::new()),
            transient: Arc::new(Mutex::new(HashMap::new())),
            processing_log,
            changelogs,
            changelogs_followed_ms: AtomicI64::new(0),
            share: Mutex::new(Share::All),
        }
    }

    /// Which partitions of persistent queries this server runs.
    pub fn share(&self) -> Share {
        self.share.lock().clone()
    }

    /// Sets the share queries started from now on run (running ones keep theirs: stop and
    /// start them to move them).
    pub fn set_share(&self, share: Share) {
        *self.share.lock() = share;
    }

    /// The partitions of `topic` this server runs.
    fn owned_partitions<'a>(&self, topic: &'a Topic) -> impl Iterator<Item = &'a Arc<dyn PartitionStore>> + use<'a> {
        shared_partitions(self.share(), topic)
    }

    /// Stats for a new query; its skipped records go to the processing log too.
    fn new_stats(&self) -> Arc<QueryStats> {
        Arc::new(QueryStats::logging_to(self.processing_log.clone()))
    }

    pub fn processing_log(&self) -> Option<&Arc<processing_log::ProcessingLog>> {
        self.processing_log.as_ref()
    }

    pub fn state(&self) -> &Arc<StateDb> {
        &self.state
    }

    /// Where a stateful task starts: its checkpoint, or `reset` (committed at once).
    fn stateful_start(&self, task: &str, part: &Arc<dyn PartitionStore>, reset: OffsetReset) -> Result<TaskCheckpoint, ExecError> {
        // On a cluster the changelog may hold more than the local state (none at all on a
        // new machine; what another server wrote since this one last ran the task).
        if let Some(changelogs) = &self.changelogs {
            // The task's transactional producer first: the server that ran the task before
            // can commit nothing more, and what it left open is aborted before the
            // changelog is read (a join's right input shares its stage's producer).
            if transaction::transaction_task(task) == task {
                changelogs.transactions().begin(task, part.id())?;
            }
            changelogs.restore(&self.state, task, part.id())?;
        }
        if let Some(cp) = checkpoint::load(&self.state, task, part.topic(), part.id())? {
            return Ok(cp);
        }
        let offset = match reset {
            OffsetReset::Earliest => part.start_offset(),
            OffsetReset::Latest => part.end_offset(),
        };
        let cp = TaskCheckpoint { offset, sink: Default::default(), stream_time: i64::MIN };
        let mut batch = crate::state::StateBatch::default();
        checkpoint::put(&mut batch, task, part.topic(), part.id(), &cp)?;
        self.state.write(batch, true)?;
        Ok(cp)
    }

    /// Starts the query that materializes a source table into its column family.
    /// Blocking.
    pub fn start_table_source(&self, query_id: &str, table: &DataSource, reset: OffsetReset) -> Result<(), ExecError> {
        let topic = self.log.topic(&table.topic)?;
        self.state.ensure_family(&table.state_family())?;
        let stats = self.new_stats();
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        for part in self.owned_partitions(&topic) {
            let cp = self.stateful_start(query_id, part, reset)?;
            stats.set_progress(part.id(), cp.offset, part.end_offset());
            let task =
                table_source::TableSourceTask::new(query_id.to_string(), part.clone(), cp.offset, table, self.state.clone(), stats.clone(), self.log.clone());
            tasks.push(self.handle.spawn(drive(task, cancel_rx.clone())));
        }
        self.persistent.lock().insert(query_id.to_string(), Running { stats, cancel: cancel_tx, tasks });
        Ok(())
    }

    /// How a task writes its output: in its transaction (on a cluster, once started with
    /// `stateful_start`), else as an idempotent producer of its own.
    fn task_producer(&self, task: &str, partition: i32) -> sink::TaskProducer {
        match self.changelogs.as_ref().and_then(|c| c.transactions().of(task, partition)) {
            Some(txn) => sink::TaskProducer::Transactional(txn),
            None => sink::TaskProducer::Idempotent(task_producer_id(task, partition)),
        }
    }

    /// This server takes its service's queries over: its changelog writes take new
    /// producer epochs (fencing the server it took them from).
    pub fn take_over_changelogs(&self) {
        if let Some(c) = &self.changelogs {
            c.forget_writers();
        }
    }

    /// Keeps warm copies of the state of the query partitions other servers run: applies
    /// what their changelog partitions hold past the local state. Blocking.
    pub fn follow_changelogs(&self) -> Result<u64, ExecError> {
        let Some(c) = &self.changelogs else { return Ok(0) };
        let started = chrono::Utc::now().timestamp_millis();
        let share = self.share();
        let applied = c.follow_all(&self.state, |p| share.copies(p))?;
        self.changelogs_followed_ms.store(started, Ordering::Release);
        Ok(applied)
    }

    /// When a standby last caught up with the changelogs (ms since the epoch; 0: never).
    pub fn changelogs_followed_ms(&self) -> i64 {
        self.changelogs_followed_ms.load(Ordering::Acquire)
    }

    /// The internal topic a query repartitions through.
    pub fn repartition_topic(log: &Log, query_id: &str) -> String {
        format!("{}{query_id}_repartition", log.internal_prefix())
    }

    /// The column family of a query's operator state.
    pub fn query_family(query_id: &str) -> String {
        format!("q/{query_id}")
    }

    /// Starts an aggregation (with its repartition stage when the plan needs one) on this
    /// server's share of its partitions. Blocking.
    pub fn start_aggregate(
        &self,
        query_id: &str,
        plan: Arc<AggregatePlan>,
        sink: &DataSource,
        sink_topic: Arc<Topic>,
        reset: OffsetReset,
    ) -> Result<(), ExecError> {
        self.start_aggregate_on(self.share(), query_id, plan, sink, sink_topic, reset)
    }

    /// [`Runtime::start_aggregate`] on the partitions of `share` (a push query's private
    /// stages run on every partition). Blocking.
    fn start_aggregate_on(
        &self,
        share: Share,
        query_id: &str,
        plan: Arc<AggregatePlan>,
        sink: &DataSource,
        sink_topic: Arc<Topic>,
        reset: OffsetReset,
    ) -> Result<(), ExecError> {
        let source_topic = self.log.topic(&plan.source.topic)?;
        let qfamily = Self::query_family(query_id);
        self.state.ensure_family(&qfamily)?;
        self.state.ensure_family(&sink.state_family())?;
        let stats = self.new_stats();
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let key_idx: Vec<usize> = sink.schema.key_columns().map(|k| plan.columns.iter().position(|c| c.name == k.name).expect("key from SELECT")).collect();
        let value_idx = plan.value_indices();
        let stage2_input: Arc<Topic> = if plan.repartition {
            let name = Self::repartition_topic(&self.log, query_id);
            let internal = self.log.topic_or_create(&name, source_topic.partition_count(), self.log.defaults().clone())?;
            let stage = format!("{query_id}/repartition");
            for part in shared_partitions(share.clone(), &source_topic) {
                let cp = self.stateful_start(&stage, part, reset)?;
                let writer = sink::IdempotentWriter::new(internal.clone(), self.task_producer(&stage, part.id()), &cp.sink);
                let task = repartition::RepartitionTask::new(
                    stage.clone(),
                    part.clone(),
                    cp.offset,
                    plan.clone(),
                    writer,
                    self.state.clone(),
                    qfamily.clone(),
                    stats.clone(),
                    self.log.clone(),
                );
                tasks.push(self.handle.spawn(drive(task, cancel_rx.clone())));
            }
            internal
        } else {
            source_topic.clone()
        };
        for part in shared_partitions(share, &stage2_input) {
            let start_reset = if plan.repartition { OffsetReset::Earliest } else { reset };
            let cp = self.stateful_start(query_id, part, start_reset)?;
            let input = if plan.repartition {
                let fields: Vec<arrow::datatypes::Field> =
                    aggregate::payload_fields(&plan).into_iter().map(|(n, t)| arrow::datatypes::Field::new(n, t, true)).collect();
                aggregate::AggInput::Repartitioned(crate::format::json::JsonDecoder::new(fields.into(), false))
            } else {
                aggregate::AggInput::Direct(SourceDecoder::new(&plan.source, part.id()))
            };
            let sink_writer = TopicSink::new(sink_topic.clone(), sink, key_idx.clone(), value_idx.clone(), self.task_producer(query_id, part.id()), &cp.sink);
            stats.set_progress(part.id(), cp.offset, part.end_offset());
            let task = aggregate::AggregateTask::new(
                query_id.to_string(),
                part.clone(),
                &cp,
                input,
                plan.clone(),
                self.state.clone(),
                sink_writer,
                stats.clone(),
                self.log.clone(),
                sink.state_family(),
                qfamily.clone(),
            );
            tasks.push(self.handle.spawn(drive(task, cancel_rx.clone())));
        }
        self.persistent.lock().insert(query_id.to_string(), Running { stats, cancel: cancel_tx, tasks });
        Ok(())
    }

    /// Removes what a terminated query kept: operator state, checkpoints, internal
    /// topics and committed offsets. Blocking.
    /// With `shared` false only what this server kept is removed: another server of the
    /// service (the one that ran the TERMINATE) removes the internal topics.
    pub fn cleanup(&self, query_id: &str, shared: bool) -> Result<(), ExecError> {
        Self::cleanup_in(&self.log, &self.state, query_id, shared)
    }

    fn cleanup_in(log: &Log, state: &StateDb, query_id: &str, shared: bool) -> Result<(), ExecError> {
        state.drop_family(&Self::query_family(query_id))?;
        if shared {
            join_start::cleanup_join(log, state, query_id)?;
            let internal = Self::repartition_topic(log, query_id);
            if log.get_topic(&internal).is_some() {
                log.delete_topic(&internal)?;
            }
            if let Some(cluster) = log.cluster() {
                changelog::Changelogs::delete(log, query_id)?;
                // The groups its tasks committed their source offsets to.
                let own = transaction::offsets_group(log, query_id);
                let (stages, inner) = (format!("{own}/"), format!("{own}-"));
                if let Err(e) = cluster.delete_groups(&|g| g == own || g.starts_with(&stages) || g.starts_with(&inner)) {
                    tracing::warn!(query = query_id, "cannot delete the consumer groups of the query's tasks: {e}");
                }
            }
        } else {
            join_start::cleanup_join_state(log, state, query_id)?;
        }
        log.offsets().delete_group(query_id)?;
        log.offsets().delete_group(&format!("{query_id}/repartition"))?;
        log.offsets().delete_group(&Self::materialize_stage(query_id))?;
        Ok(())
    }

    /// Starts a persistent query writing into `sink` (whose topic is `sink_topic`).
    /// Each source partition resumes from its committed offset, or `reset` when it has
    /// none (which is committed at once, so a restart resumes from the same place).
    /// Blocking.
    pub fn start_persistent(
        &self,
        query_id: &str,
        plan: Arc<SelectPlan>,
        sink: &DataSource,
        sink_topic: Arc<Topic>,
        reset: OffsetReset,
    ) -> Result<(), ExecError> {
        let source_topic = self.log.topic(&plan.source.topic)?;
        let stats = self.new_stats();
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        // On a cluster the task's checkpoint is kept with the state, in its changelog, so
        // that another server that takes the partition over resumes where it was left.
        let journaled = self.changelogs.is_some().then(|| self.state.clone());
        for part in self.owned_partitions(&source_topic) {
            let started = match &journaled {
                Some(_) => {
                    let cp = self.stateful_start(query_id, part, reset)?;
                    Some((cp.offset, cp.sink))
                }
                None => load_checkpoint(&self.log, query_id, source_topic.name(), part.id()),
            };
            let (position, checkpoint) = match started {
                Some(c) => c,
                None => {
                    let start = match reset {
                        OffsetReset::Earliest => part.start_offset(),
                        OffsetReset::Latest => part.end_offset(),
                    };
                    let cp = sink::SinkCheckpoint::default();
                    let meta = serde_json::to_string(&cp)?;
                    self.log.offsets().commit(query_id, &[(source_topic.name(), part.id(), start, &meta)])?;
                    (start, cp)
                }
            };
            let producer = self.task_producer(query_id, part.id());
            let sink_writer = TopicSink::new(sink_topic.clone(), sink, plan.key_indices(), plan.value_indices(), producer, &checkpoint);
            stats.set_progress(part.id(), position, part.end_offset());
            let task = Task {
                query_id: query_id.to_string(),
                partition: part.clone(),
                position,
                stop_at: None,
                decoder: {
                    // A stream record without a value passes through a plain projection
                    // as a record without a value; a filter drops it.
                    let d = SourceDecoder::new(&plan.source, part.id());
                    if plan.source.kind == crate::catalog::SourceKind::Stream && plan.filter.is_none() && plan.table_functions.is_empty() {
                        d.keeping_null_values()
                    } else {
                        d
                    }
                },
                plan: plan.clone(),
                output: Output::Topic { sink: sink_writer, log: self.log.clone(), journaled: journaled.clone() },
                stats: stats.clone(),
            };
            tasks.push(self.handle.spawn(drive(task, cancel_rx.clone())));
        }
        if sink.kind == crate::catalog::SourceKind::Table {
            // A table result is materialized from its own changelog, so pull queries and
            // feature lookups read it like any table.
            self.state.ensure_family(&sink.state_family())?;
            let stage = Self::materialize_stage(query_id);
            for part in self.owned_partitions(&sink_topic) {
                let cp = self.stateful_start(&stage, part, OffsetReset::Earliest)?;
                let task =
                    table_source::TableSourceTask::new(stage.clone(), part.clone(), cp.offset, sink, self.state.clone(), self.new_stats(), self.log.clone());
                tasks.push(self.handle.spawn(drive(task, cancel_rx.clone())));
            }
        }
        self.persistent.lock().insert(query_id.to_string(), Running { stats, cancel: cancel_tx, tasks });
        Ok(())
    }

    /// The stage that materializes a filter/projection table's result.
    fn materialize_stage(query_id: &str) -> String {
        format!("{query_id}/materialize")
    }

    /// Stops a persistent query and waits for its tasks. Blocking.
    pub fn stop_persistent(&self, query_id: &str) -> bool {
        let Some(running) = self.persistent.lock().remove(query_id) else { return false };
        running.cancel.send_replace(true);
        running.stats.set_state(QueryState::Terminated);
        for t in running.tasks {
            let _ = self.handle.block_on(t);
        }
        true
    }

    pub fn is_running(&self, query_id: &str) -> bool {
        self.persistent.lock().contains_key(query_id)
    }

    pub fn stats(&self, query_id: &str) -> Option<Arc<QueryStats>> {
        if let Some(r) = self.persistent.lock().get(query_id) {
            return Some(r.stats.clone());
        }
        self.transient.lock().get(query_id).map(|t| t.stats.clone())
    }

    /// Ids of running transient queries.
    pub fn transient_ids(&self) -> Vec<String> {
        self.transient.lock().keys().cloned().collect()
    }

    /// Starts a push query (`pull` = read to the current end and finish). With
    /// `continuation`, the client follows where the query's reading stands (continuation
    /// tokens).
    pub fn start_push(&self, plan: Arc<SelectPlan>, start: PushStart, pull: bool, continuation: bool) -> Result<PushQuery, ExecError> {
        let topic = self.log.topic(&plan.source.topic)?;
        let positions: Vec<i64> = match start {
            PushStart::At(offsets) => offsets,
            _ if pull => topic.partitions().iter().map(|p| p.start_offset()).collect(),
            PushStart::Reset(OffsetReset::Earliest) => topic.partitions().iter().map(|p| p.start_offset()).collect(),
            PushStart::Reset(OffsetReset::Latest) => topic.partitions().iter().map(|p| p.end_offset()).collect(),
        };
        let id = transient_id(&plan.source.name);
        let (tx, rx) = mpsc::channel(CHANNEL_MESSAGES);
        let (shared, cancel_rx) = PushShared::new();
        let shared = Arc::new(shared);
        let stats = self.new_stats();
        let remaining = plan.limit.map(|l| Arc::new(AtomicI64::new(l as i64)));
        if remaining.as_ref().is_some_and(|r| r.load(Ordering::SeqCst) == 0) {
            shared.limit_reached();
        }
        let mut handles = Vec::new();
        for (part, &position) in topic.partitions().iter().zip(&positions) {
            let task = Task {
                query_id: id.clone(),
                partition: part.clone(),
                position,
                // A pull query reads committed data up to the last stable offset.
                stop_at: pull.then(|| part.last_stable_offset()),
                decoder: SourceDecoder::new(&plan.source, part.id()),
                plan: plan.clone(),
                output: Output::Client(ClientOutput { tx: tx.clone(), remaining: remaining.clone(), shared: shared.clone(), wants_progress: continuation }),
                stats: stats.clone(),
            };
            handles.push(self.handle.spawn(drive(task, cancel_rx.clone())));
        }
        self.supervise(id.clone(), handles, tx, shared.clone(), stats, pull);
        Ok(PushQuery {
            id,
            header_schema: plan.header_schema(false),
            column_names: plan.columns.iter().map(|c| c.name.clone()).collect(),
            column_types: plan.columns.iter().map(|c| c.expr.ty.to_string()).collect(),
            rx,
            shared,
            is_print: false,
            continuation: continuation.then(|| continuation::ContinuationToken::new(topic.name(), positions)),
        })
    }

    /// Starts PRINT on a topic.
    pub fn start_print(
        &self,
        topic: Arc<Topic>,
        from_beginning: bool,
        interval: u64,
        limit: Option<u64>,
        registry: Option<crate::format::RegistryHandle>,
    ) -> PushQuery {
        let id = transient_id(&format!("PRINT_{}", topic.name()));
        let (tx, rx) = mpsc::channel(CHANNEL_MESSAGES);
        let (shared, cancel_rx) = PushShared::new();
        let shared = Arc::new(shared);
        let stats = self.new_stats();
        let remaining = limit.map(|l| Arc::new(AtomicI64::new(l as i64)));
        if limit == Some(0) {
            shared.limit_reached();
        }
        let header_done = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        for part in topic.partitions() {
            let task = print::PrintTask {
                name: id.clone(),
                partition: part.clone(),
                position: if from_beginning { part.start_offset() } else { part.end_offset() },
                interval,
                seen: 0,
                out: ClientOutput { tx: tx.clone(), remaining: remaining.clone(), shared: shared.clone(), wants_progress: false },
                stats: stats.clone(),
                header_done: header_done.clone(),
                registry: registry.clone(),
            };
            handles.push(self.handle.spawn(drive(task, cancel_rx.clone())));
        }
        self.supervise(id.clone(), handles, tx, shared.clone(), stats, false);
        PushQuery { id, header_schema: String::new(), column_names: vec![], column_types: vec![], rx, shared, is_print: true, continuation: None }
    }

    /// Waits for a transient query's tasks, records how it ended, then releases the
    /// channel so the client sees the end.
    fn supervise(
        &self,
        id: String,
        handles: Vec<JoinHandle<()>>,
        tx: mpsc::Sender<push::ClientRows>,
        shared: Arc<PushShared>,
        stats: Arc<QueryStats>,
        pull: bool,
    ) {
        self.transient.lock().insert(id.clone(), Transient { shared: shared.clone(), stats });
        let registry = self.transient.clone();
        self.handle.spawn(async move {
            for h in handles {
                let _ = h.await;
            }
            if pull {
                shared.completed();
            } else {
                shared.close();
            }
            registry.lock().remove(&id);
            drop(tx);
        });
    }

    /// Stops a transient query (close-query). Returns false for an unknown id.
    pub fn close_transient(&self, id: &str) -> bool {
        match self.transient.lock().get(id) {
            Some(t) => {
                t.shared.close();
                true
            }
            None => false,
        }
    }

    /// Stops everything (server shutdown). Blocking.
    pub fn shutdown(&self) {
        let ids: Vec<String> = self.persistent.lock().keys().cloned().collect();
        for id in ids {
            self.stop_persistent(&id);
        }
        for t in self.transient.lock().values() {
            t.shared.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Share;

    #[test]
    fn a_share_owns_every_partition_of_its_place_and_nothing_else() {
        let shares: Vec<Share> = (0..3).map(|r| Share::of(r, 3)).collect();
        for p in 0..12 {
            let owners: Vec<usize> = (0..3).filter(|&r| shares[r].owns(p)).collect();
            assert_eq!(owners, vec![(p % 3) as usize], "partition {p}");
        }
        assert!(Share::All.owns(7));
        assert!(!Share::Nothing.owns(0));
        assert!(!Share::of(0, 2).owns(-1));
        assert_eq!(Share::of(3, 3), Share::Nothing, "a place past the roster");
        assert_eq!(Share::of(0, 0), Share::Nothing);
    }
}
