//! A query task: one source partition of one query. It waits for new records, then on a
//! blocking thread reads them, decodes, filters and projects, and hands the rows to its
//! output — a sink topic (persistent queries, which then commit the source offset with
//! the sink's sequence numbers) or a client channel (push and pull queries).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use arrow::array::{Array, AsArray, Int64Array};
use arrow::compute::take;
use tokio::sync::{mpsc, watch};

use super::ExecError;
use super::expr::filter_project;
use super::push::{ClientRows, PushShared};
use super::sink::{SinkCheckpoint, TopicSink};
use super::source::SourceDecoder;
use super::stats::QueryStats;
use crate::format::json::encode_json_arrays;
use crate::log::{Log, LogError, PartitionStore};
use crate::sql::planner::SelectPlan;

/// Bytes read from the log per step.
const READ_BYTES: usize = 1 << 20;

pub enum Output {
    /// A persistent query's sink. With `journaled`, the task commits its checkpoint to the
    /// state (and so to its changelog, on a cluster) instead of the log's offsets.
    Topic {
        sink: TopicSink,
        log: Arc<Log>,
        journaled: Option<Arc<crate::state::StateDb>>,
    },
    Client(ClientOutput),
}

/// Rows for a push or pull query's client.
#[derive(Clone)]
pub struct ClientOutput {
    pub tx: mpsc::Sender<ClientRows>,
    /// Rows still allowed under LIMIT (shared by the query's tasks).
    pub remaining: Option<Arc<AtomicI64>>,
    pub shared: Arc<PushShared>,
    /// Whether the client follows its reading position (continuation tokens): reads that
    /// give it no rows are reported too.
    pub wants_progress: bool,
}

/// What became of rows sent to a client.
pub enum ClientSend {
    Sent,
    /// Sent up to the LIMIT: the query is done.
    LimitReached,
    /// The client is gone or too slow: stop.
    Gone,
}

impl ClientOutput {
    /// Sends encoded rows, honouring LIMIT; a client whose channel is full is cut off.
    /// `read_to` is the partition the rows were read from and the offset after them.
    pub fn send(&self, mut rows: Vec<String>, mut read_to: Option<(i32, i64)>, stats: &QueryStats) -> ClientSend {
        let mut outcome = ClientSend::Sent;
        if let Some(rem) = &self.remaining {
            let before = rem.fetch_sub(rows.len() as i64, Ordering::SeqCst);
            if before <= rows.len() as i64 {
                if before < rows.len() as i64 {
                    // Rows of this read are left out: the read is not the client's whole.
                    read_to = None;
                }
                rows.truncate(before.max(0) as usize);
                outcome = ClientSend::LimitReached;
                self.shared.limit_reached();
            }
        }
        stats.record_output(rows.len() as u64);
        if !rows.is_empty() {
            match self.tx.try_send(ClientRows { rows, read_to }) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.shared.overflow();
                    return ClientSend::Gone;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return ClientSend::Gone,
            }
        }
        outcome
    }

    /// Tells a client that wants continuation tokens that a read of `partition` up to
    /// `next` gave it no rows. Skipped when the client's queue is full: a later read's
    /// rows carry the position as well.
    pub fn send_progress(&self, partition: i32, next: i64) {
        if self.wants_progress {
            let _ = self.tx.try_send(ClientRows { rows: Vec::new(), read_to: Some((partition, next)) });
        }
    }
}

pub enum StepOutcome {
    Progress,
    /// Nothing could be done yet (an upstream stage is still catching up): try again soon.
    Idle,
    /// The task has nothing more to do (pull query at its end, LIMIT reached, client gone).
    Finished,
}

pub struct Task {
    pub query_id: String,
    pub partition: Arc<dyn PartitionStore>,
    pub position: i64,
    /// Pull queries stop at the end offset seen when they started.
    pub stop_at: Option<i64>,
    pub decoder: SourceDecoder,
    pub plan: Arc<SelectPlan>,
    pub output: Output,
    pub stats: Arc<QueryStats>,
}

impl Task {
    fn source_topic(&self) -> &str {
        self.partition.topic()
    }

    /// Reads and processes the next chunk. Blocking.
    pub fn step(&mut self) -> Result<StepOutcome, ExecError> {
        let data = match self.partition.read_committed(self.position, READ_BYTES) {
            Ok(d) => d,
            Err(LogError::OffsetOutOfRange { start, end, .. }) if self.position < start => {
                tracing::warn!(query = %self.query_id, topic = self.source_topic(), from = self.position, to = start, end, "records before the log \
                    start were deleted; continuing from the log start");
                self.position = start;
                return Ok(StepOutcome::Progress);
            }
            Err(e) => return Err(e.into()),
        };
        if data.is_empty() {
            return Ok(StepOutcome::Progress);
        }
        let mut decoded = self.decoder.decode(&data, self.position);
        if let Some(stop) = self.stop_at {
            decoded.next_offset = decoded.next_offset.min(stop);
        }
        self.stats.record_input_at(self.partition.id(), decoded.records, data.len());
        self.stats.record_errors(&self.query_id, self.partition.topic(), &decoded.errors);
        let mut finished = false;
        let mut rows_sent = false;
        if let Some(mut batch) = decoded.batch.take() {
            if let Some(stop) = self.stop_at {
                let offsets = batch.column(batch.num_columns() - 1).as_primitive::<arrow::datatypes::Int64Type>().clone();
                let n = offsets.iter().take_while(|o| o.is_some_and(|o| o < stop)).count();
                batch = batch.slice(0, n);
            }
            if !self.plan.table_functions.is_empty() {
                let schema = crate::sql::table_functions::exploded_schema(&batch.schema(), &self.plan.table_functions);
                match super::expr::explode(&batch, &self.plan.table_functions, schema.clone()) {
                    Ok((exploded, rows)) => {
                        decoded.tombstones = rows.values().iter().map(|&r| decoded.tombstones.get(r as usize).copied().unwrap_or(false)).collect();
                        batch = exploded;
                    }
                    Err(message) => {
                        // The table function failed on this chunk: its records are reported
                        // and skipped, the query goes on.
                        let offsets = batch.column(batch.num_columns() - 1).as_primitive::<arrow::datatypes::Int64Type>();
                        let errs: Vec<_> = (0..batch.num_rows())
                            .map(|r| super::source::RecordError {
                                kind: super::source::RecordErrorKind::Processing,
                                partition: self.partition.id(),
                                offset: offsets.value(r),
                                message: message.to_string(),
                            })
                            .collect();
                        self.stats.record_errors(&self.query_id, self.partition.topic(), &errs);
                        batch = arrow::array::RecordBatch::new_empty(schema);
                        decoded.tombstones.clear();
                    }
                }
            }
            let projection: Vec<_> = self.plan.columns.iter().map(|c| &c.expr).collect();
            // Over a table every row is kept: a deleted row, or one WHERE rejects, leaves
            // the result as a tombstone for its key.
            let table = self.plan.source.kind == crate::catalog::SourceKind::Table;
            // A push query over a table streams its changes: WHERE filters them and a
            // deleted row is sent as a tombstone row.
            let table_result = table && matches!(self.output, Output::Topic { .. });
            let (mut projected, row_errors) = filter_project(&batch, if table_result { None } else { self.plan.filter.as_ref() }, &projection);
            // Each failed row is reported with its reason.
            let mut row_errors: Vec<(usize, String)> = row_errors.into_iter().map(|(row, e)| (row, e.to_string())).collect();
            if table {
                // A table row needs its PRIMARY KEY: rows with a null key are reported and skipped.
                let key_cols: Vec<usize> = self
                    .plan
                    .source
                    .schema
                    .columns()
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.kind == crate::catalog::types::ColumnKind::Key)
                    .map(|(i, _)| i)
                    .collect();
                let keep: Vec<u32> = (0..projected.rows.len() as u32)
                    .filter(|&i| {
                        let r = projected.rows.value(i as usize) as usize;
                        let ok = key_cols.iter().all(|&k| batch.column(k).is_valid(r));
                        if !ok {
                            row_errors.push((r, "the record has a null key; a table row needs its PRIMARY KEY".into()));
                        }
                        ok
                    })
                    .collect();
                if keep.len() < projected.rows.len() {
                    let idx = arrow::array::UInt32Array::from(keep);

                    projected.columns = projected.columns.iter().map(|c| take(c, &idx, None)).collect::<Result<_, _>>()?;
                    projected.rows = take(&projected.rows, &idx, None)?.as_primitive::<arrow::datatypes::UInt32Type>().clone();
                }
            }
            let tombstones: Option<Vec<bool>> = if table_result {
                let keep = match &self.plan.filter {
                    Some(f) => Some(super::expr::evaluate(f, &batch)?),
                    None => None,
                };
                Some(
                    projected
                        .rows
                        .values()
                        .iter()
                        .map(|&r| {
                            let r = r as usize;
                            let deleted = decoded.tombstones.get(r).copied().unwrap_or(false);
                            let rejected = keep.as_ref().is_some_and(|k| {
                                let k = k.as_boolean();
                                !(k.is_valid(r) && k.value(r))
                            });
                            deleted || rejected
                        })
                        .collect(),
                )
            } else if decoded.tombstones.iter().any(|t| *t) {
                // Stream records without a value stay records without a value.
                Some(projected.rows.values().iter().map(|&r| decoded.tombstones.get(r as usize).copied().unwrap_or(false)).collect())
            } else {
                None
            };
            if !row_errors.is_empty() {
                let offsets = batch.column(batch.num_columns() - 1).as_primitive::<arrow::datatypes::Int64Type>();
                let errs: Vec<_> = row_errors
                    .into_iter()
                    .map(|(row, message)| super::source::RecordError {
                        kind: super::source::RecordErrorKind::Processing,
                        partition: self.partition.id(),
                        offset: offsets.value(row),
                        message,
                    })
                    .collect();
                self.stats.record_errors(&self.query_id, self.partition.topic(), &errs);
            }
            let n = projected.num_rows();
            if n > 0 {
                match &mut self.output {
                    Output::Topic { sink, .. } => {
                        let rowtime = batch.column(batch.num_columns() - 3);
                        let ts = take(rowtime, &projected.rows, None)?;
                        let ts: &Int64Array = ts.as_primitive();
                        // A windowed source's records keep their windows.
                        let bounds = match self.plan.source.window {
                            Some(w) => {
                                let at = self.plan.source.schema.columns().len();
                                let pick = |i: usize| {
                                    take(batch.column(i), &projected.rows, None).map(|a| a.as_primitive::<arrow::datatypes::Int64Type>().values().to_vec())
                                };

                                Some((pick(at)?, pick(at + 1)?, w == crate::catalog::WindowType::Session))
                            }
                            None => None,
                        };
                        let windows = bounds.as_ref().map(|(starts, ends, session)| super::sink::WindowKeys { starts, ends, session: *session });
                        let appended = sink.write_rows(&projected.columns, n, ts.values(), self.partition.id(), windows, tombstones.as_deref())?;
                        self.stats.record_output_at(self.partition.id(), appended);
                    }
                    Output::Client(out) => {
                        let mut rows = encode_json_arrays(&projected.columns, n).map_err(ExecError::Format)?;
                        if let Some(t) = &tombstones {
                            for (row, deleted) in rows.iter_mut().zip(t) {
                                if *deleted {
                                    super::push::mark_tombstone(row);
                                }
                            }
                        }
                        rows_sent = true;
                        match out.send(rows, Some((self.partition.id(), decoded.next_offset)), &self.stats) {
                            ClientSend::Sent => {}
                            ClientSend::LimitReached => finished = true,
                            ClientSend::Gone => return Ok(StepOutcome::Finished),
                        }
                    }
                }
            }
        }
        self.position = decoded.next_offset;
        match &self.output {
            Output::Topic { sink, log, journaled: None } => {
                let meta = serde_json::to_string(&sink.checkpoint())?;
                log.offsets().commit(&self.query_id, &[(self.partition.topic(), self.partition.id(), self.position, &meta)])?;
            }
            Output::Topic { sink, log, journaled: Some(state) } => {
                let cp = super::checkpoint::TaskCheckpoint { offset: self.position, sink: sink.checkpoint(), stream_time: i64::MIN };
                let mut batch = crate::state::StateBatch::default();
                super::checkpoint::put(&mut batch, &self.query_id, self.partition.topic(), self.partition.id(), &cp)?;
                state.write(batch, true)?;
                // The log's offsets say how far the query read (its lag).
                log.offsets().commit_unsynced(&self.query_id, &[(self.partition.topic(), self.partition.id(), self.position, "")])?;
            }
            Output::Client(out) if !rows_sent => out.send_progress(self.partition.id(), self.position),
            Output::Client(_) => {}
        }
        self.stats.set_progress(self.partition.id(), self.position, self.partition.end_offset());
        if finished || self.stop_at.is_some_and(|s| self.position >= s) {
            return Ok(StepOutcome::Finished);
        }
        Ok(StepOutcome::Progress)
    }
}

/// The checkpoint a persistent task resumes from, if it committed one.
pub fn load_checkpoint(log: &Log, query_id: &str, topic: &str, partition: i32) -> Option<(i64, SinkCheckpoint)> {
    let c = log.offsets().fetch(query_id, topic, partition)?;
    let cp = serde_json::from_str(&c.metadata).unwrap_or_default();
    Some((c.offset, cp))
}

/// What `drive` needs of a task.
/// Reads the next chunk of a persistent task's input from `position`. `None` when there is
/// nothing new, or when the records at `position` were deleted by retention: the position
/// then moves to the log start.
pub(super) fn read_input(partition: &dyn PartitionStore, position: &mut i64) -> Result<Option<Vec<u8>>, ExecError> {
    match partition.read_committed(*position, READ_BYTES) {
        Ok(d) if d.is_empty() => Ok(None),
        Ok(d) => Ok(Some(d)),
        Err(LogError::OffsetOutOfRange { start, .. }) if *position < start => {
            tracing::warn!(
                topic = partition.topic(),
                partition = partition.id(),
                from = *position,
                to = start,
                "records before the log start were deleted; continuing from the log start"
            );
            *position = start;
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

pub trait PartitionTask: Send + 'static {
    fn name(&self) -> &str;
    fn partition(&self) -> &Arc<dyn PartitionStore>;
    fn position(&self) -> i64;
    /// A second input partition and its read position (joins); the task runs when
    /// either input has new records.
    fn second_input(&self) -> Option<(&Arc<dyn PartitionStore>, i64)> {
        None
    }
    /// Where a bounded task (a pull query over a stream) stops.
    fn stop_at(&self) -> Option<i64> {
        None
    }
    /// The client a transient task feeds.
    fn client(&self) -> Option<&ClientOutput> {
        None
    }
    fn stats(&self) -> &Arc<QueryStats>;
    /// When the task must run even without new input (output it holds back, such as a
    /// record cache's, is due then).
    fn wake_at(&self) -> Option<std::time::Instant> {
        None
    }
    /// Reads and processes the next chunk. Blocking.
    fn step(&mut self) -> Result<StepOutcome, ExecError>;
    /// Work to do once before waiting for input (e.g. closing windows). Blocking.
    fn on_start(&mut self) -> Result<(), ExecError> {
        Ok(())
    }
    /// Work to do when the query stops (TERMINATE, PAUSE, shutdown): output held back
    /// goes out. Blocking.
    fn on_stop(&mut self) -> Result<(), ExecError> {
        Ok(())
    }
    /// Forgets everything done since the last commit, after a failed step: the task goes
    /// back to its committed checkpoint (read position, operator state, output sequence
    /// numbers) exactly as after a crash, so the retried step counts no record twice and
    /// writes no output twice. Tasks that feed a client have nothing to go back to.
    /// Blocking.
    fn rewind(&mut self) -> Result<(), ExecError> {
        Ok(())
    }
}

impl PartitionTask for Task {
    fn name(&self) -> &str {
        &self.query_id
    }
    fn partition(&self) -> &Arc<dyn PartitionStore> {
        &self.partition
    }
    fn position(&self) -> i64 {
        self.position
    }
    fn stop_at(&self) -> Option<i64> {
        self.stop_at
    }
    fn client(&self) -> Option<&ClientOutput> {
        match &self.output {
            Output::Client(c) => Some(c),
            Output::Topic { .. } => None,
        }
    }
    fn stats(&self) -> &Arc<QueryStats> {
        &self.stats
    }
    fn step(&mut self) -> Result<StepOutcome, ExecError> {
        Task::step(self)
    }
    fn rewind(&mut self) -> Result<(), ExecError> {
        let Output::Topic { sink, log, journaled } = &mut self.output else { return Ok(()) };
        let committed = match journaled {
            Some(state) => {
                state.restore_task(&self.query_id, self.partition.id())?;
                super::checkpoint::load(state, &self.query_id, self.partition.topic(), self.partition.id())?.map(|cp| (cp.offset, cp.sink))
            }
            None => load_checkpoint(log, &self.query_id, self.partition.topic(), self.partition.id()),
        };
        if let Some((position, cp)) = committed {
            self.position = position;
            sink.reset(&cp);
        }
        Ok(())
    }
}

/// Runs a task until it finishes or is cancelled. Failures are recorded and retried.
pub async fn drive<T: PartitionTask>(mut task: T, mut cancel: watch::Receiver<bool>) {
    let mut end = task.partition().subscribe();
    let mut second_end = task.second_input().map(|(p, _)| p.subscribe());
    let stats = task.stats().clone();
    // After a failed step the task goes back to its last commit before it runs again.
    let mut needs_rewind = false;
    match tokio::task::spawn_blocking(move || {
        let r = task.on_start();
        (task, r)
    })
    .await
    {
        Ok((t, r)) => {
            task = t;
            if let Err(e) = r {
                tracing::warn!(query = %task.name(), "query task start-up work failed: {e}");
                stats.record_failure(e.to_string());
                needs_rewind = true;
            }
        }
        Err(e) => {
            stats.record_failure(format!("query task panicked: {e}"));
            return;
        }
    }
    loop {
        if *cancel.borrow() {
            break;
        }
        if let Some(out) = task.client()
            && (out.tx.is_closed() || out.shared.is_finished())
        {
            break;
        }
        if task.stop_at().is_some_and(|s| task.position() >= s) {
            break;
        }
        if task.partition().is_deleted() {
            stats.record_failure(format!("topic {} was deleted", task.partition().topic()));
            break;
        }
        let available = *end.borrow_and_update();
        let second_available = match (&mut second_end, task.second_input()) {
            (Some(rx), Some((_, position))) => *rx.borrow_and_update() > position,
            _ => false,
        };
        if available <= task.position() && !second_available {
            let tx = task.client().map(|c| c.tx.clone());
            let closed = async move {
                match tx {
                    Some(tx) => tx.closed().await,
                    None => std::future::pending().await,
                }
            };
            let second = async {
                match &mut second_end {
                    Some(rx) => rx.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            let wake_at = task.wake_at();
            let wake = async move {
                match wake_at {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            let woken = tokio::select! {
                r = end.changed() => if r.is_err() { break } else { false },
                ok = second => if !ok { break } else { false },
                _ = cancel.changed() => false,
                _ = closed => break,
                () = wake => true,
            };
            if !woken {
                continue;
            }
        }
        let rewind = needs_rewind;
        let result = tokio::task::spawn_blocking(move || {
            let r = if rewind { task.rewind() } else { Ok(()) }.and_then(|()| task.step());
            (task, r)
        })
        .await;
        let (t, r) = match result {
            Ok(x) => x,
            Err(e) => {
                stats.record_failure(format!("query task panicked: {e}"));
                tracing::error!("query task panicked: {e}");
                return;
            }
        };
        task = t;
        needs_rewind = r.is_err();
        match r {
            Ok(StepOutcome::Progress) => stats.record_success(),
            Ok(StepOutcome::Idle) => {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(5)) => {},
                    _ = cancel.changed() => {},
                }
            }
            Ok(StepOutcome::Finished) => break,
            Err(e) => {
                tracing::warn!(query = %task.name(), "query task failed, retrying in 1s: {e}");
                stats.record_failure(e.to_string());
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {},
                    _ = cancel.changed() => {},
                }
            }
        }
    }
    if *cancel.borrow() && !needs_rewind {
        let stopped = tokio::task::spawn_blocking(move || {
            let r = task.on_stop();
            (task.name().to_string(), r)
        })
        .await;
        if let Ok((name, Err(e))) = stopped {
            tracing::warn!(query = %name, "query task's stop work failed: {e}");
        }
    }
}
