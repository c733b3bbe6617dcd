//! The join operator: one task per partition of a co-partitioned pair of inputs. Each step
//! reads what is new on both sides, processes the rows in timestamp order, and commits the
//! join state, the materialized result rows (table-table joins) and both inputs' offsets
//! with the sink's sequence numbers in one RocksDB write batch; output goes through the
//! idempotent sink, so a replay after a crash emits nothing twice.
//!
//! Layout of `q/<query>`:
//! - `t` + side + join key -> row time + row: the current row of a table side;
//! - `b` + side + key length + key + time + offset -> matched flag + row: a buffered
//!   stream row of a stream-stream join;
//! - `c` + close time + buffer key: an outer-join row to emit padded with nulls if still
//!   unmatched when its window closes (with GRACE PERIOD);
//! - `x` + expiry time + buffer key: when a buffered row leaves the window;
//! - `fL` + left key -> row time + foreign key + row, and `i` + foreign key length +
//!   foreign key + left key: a foreign-key join's left rows and their index by foreign
//!   key (the right rows are `t` entries).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch};
use arrow::compute::{is_not_null, kernels::zip::zip};
use arrow::datatypes::{DataType, Field, Fields, Int64Type};

use super::ExecError;
use super::checkpoint::{self, TaskCheckpoint};
use super::expr::{evaluate, filter_project};
use super::join_input::{Side, SideInput, SideRead, SideRow, merge_by_time};
use super::sink::{IdempotentWriter, OutRecord, TopicSink};
use super::source::RecordError;
use super::stats::QueryStats;
use super::task::{ClientOutput, ClientSend, PartitionTask, StepOutcome, read_input};
use crate::format::json::{JsonDecoder, JsonEncoder};
use crate::format::{RowDecoder, RowEncoder};
use crate::log::{Log, PartitionStore};
use crate::sql::ast::JoinKind;
use crate::sql::compile::CompiledExpr;
use crate::sql::join_plan::{JoinPlan, JoinShape, WINDOW_END, WINDOW_START};
use crate::state::{StateBatch, StateDb, keys, rows};

/// Key-value entries read from state.
type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Reads and writes of one step: later rows of the step see earlier rows' changes, and
/// everything commits together.
struct StepState {
    db: Arc<StateDb>,
    family: String,
    pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl StepState {
    fn get(&self, k: &[u8]) -> Result<Option<Vec<u8>>, ExecError> {
        match self.pending.get(k) {
            Some(v) => Ok(v.clone()),
            None => Ok(self.db.get(&self.family, k)?),
        }
    }

    fn put(&mut self, k: Vec<u8>, v: Vec<u8>) {
        self.pending.insert(k, Some(v));
    }

    fn delete(&mut self, k: Vec<u8>) {
        self.pending.insert(k, None);
    }

    /// Entries with keys in `[from, to)`, stored and pending.
    fn scan(&self, from: &[u8], to: &[u8]) -> Result<Entries, ExecError> {
        let mut found: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        self.db.scan(&self.family, Some(from), Some(to), |k, v| {
            found.insert(k.to_vec(), v.to_vec());
            true
        })?;
        for (k, v) in self.pending.range(from.to_vec()..to.to_vec()) {
            match v {
                Some(v) => found.insert(k.clone(), v.clone()),
                None => found.remove(k),
            };
        }
        Ok(found.into_iter().collect())
    }

    fn into_batch(self, batch: &mut StateBatch) {
        for (k, v) in self.pending {
            match v {
                Some(v) => batch.put(&self.family, k, v),
                None => batch.delete(&self.family, k),
            }
        }
    }
}

fn table_key(side: Side, key: &[u8]) -> Vec<u8> {
    let mut k = vec![b't', side.tag()];
    k.extend_from_slice(key);
    k
}

fn buffer_prefix(side: Side, key: &[u8]) -> Vec<u8> {
    let mut k = vec![b'b', side.tag()];
    k.extend_from_slice(&(key.len() as u32).to_be_bytes());
    k.extend_from_slice(key);
    k
}

fn time_index(tag: u8, time: i64, buffer_key: &[u8]) -> Vec<u8> {
    let mut k = vec![tag];
    keys::put_i64(&mut k, time);
    k.extend_from_slice(buffer_key);
    k
}

/// Foreign-key joins: the left row by its key.
/// Where a join of windowed sources finds its rows' windows in the joined row: the left
/// source's window bounds (start field, end field, whether they are sessions).
fn result_window(plan: &JoinPlan) -> Option<(usize, usize, bool)> {
    let window = plan.left.source()?.window?;
    let field = |name: &str| plan.joined_schema.index_of(&format!("{}_{name}", plan.left.alias)).ok();
    Some((field(WINDOW_START)?, field(WINDOW_END)?, window == crate::catalog::WindowType::Session))
}

fn fk_row_key(pk: &[u8]) -> Vec<u8> {
    let mut k = vec![b'f', b'L'];
    k.extend_from_slice(pk);
    k
}

/// Foreign-key joins: the index of left rows by foreign key.
fn fk_index_prefix(fk: &[u8]) -> Vec<u8> {
    let mut k = vec![b'i'];
    k.extend_from_slice(&(fk.len() as u32).to_be_bytes());
    k.extend_from_slice(fk);
    k
}

/// A left row of a foreign-key join: time, foreign key (if not null), row.
fn encode_fk_row(ts: i64, fk: Option<&[u8]>, payload: &[u8]) -> Vec<u8> {
    let mut v = ts.to_be_bytes().to_vec();
    match fk {
        Some(f) => {
            v.extend_from_slice(&(f.len() as u32).to_be_bytes());
            v.extend_from_slice(f);
        }
        None => v.extend_from_slice(&u32::MAX.to_be_bytes()),
    }
    v.extend_from_slice(payload);
    v
}

fn decode_fk_row(v: &[u8]) -> Option<(Option<Vec<u8>>, Vec<u8>)> {
    let n = u32::from_be_bytes(v.get(8..12)?.try_into().ok()?);
    if n == u32::MAX {
        return Some((None, v.get(12..)?.to_vec()));
    }
    let end = 12 + n as usize;
    Some((Some(v.get(12..end)?.to_vec()), v.get(end..)?.to_vec()))
}

/// Time of a buffered row, from its buffer key.
fn buffer_time(buffer_key: &[u8]) -> i64 {
    keys::get_i64(&buffer_key[buffer_key.len().saturating_sub(16)..]).unwrap_or(0)
}

/// The index of buffered rows by expiry time: one per side, as each side expires rows by
/// the time it has seen.
fn expiry_tag(side: Side) -> u8 {
    match side {
        Side::Left => b'x',
        Side::Right => b'y',
    }
}

fn side_of(buffer_key: &[u8]) -> Side {
    if buffer_key.get(1) == Some(&b'L') { Side::Left } else { Side::Right }
}

fn with_time(ts: i64, payload: &[u8]) -> Vec<u8> {
    let mut v = ts.to_be_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

fn split_time(v: &[u8]) -> (i64, &[u8]) {
    let ts = v.get(..8).and_then(|b| b.try_into().ok()).map(i64::from_be_bytes).unwrap_or(0);
    (ts, v.get(8..).unwrap_or_default())
}

/// One result row: each side's stored row (absent sides are nulls).
struct JoinedRow {
    left: Option<Vec<u8>>,
    right: Option<Vec<u8>>,
    ts: i64,
    /// Table results: the key no longer has a row.
    tombstone: bool,
}

impl JoinedRow {
    fn of(side: Side, own: Option<Vec<u8>>, other: Option<Vec<u8>>, ts: i64) -> JoinedRow {
        let (left, right) = match side {
            Side::Left => (own, other),
            Side::Right => (other, own),
        };
        JoinedRow { left, right, ts, tombstone: false }
    }
}

fn fields(names_types: &[(String, DataType)]) -> Fields {
    names_types.iter().map(|(n, t)| Field::new(n, t.clone(), true)).collect::<Vec<_>>().into()
}

/// An input with fewer unread records than this counts as caught up with its upstream.
const CAUGHT_UP_RECORDS: i64 = 1000;
/// The longest a join waits for a repartition stage before processing what it has (like
/// Kafka Streams' max.task.idle.ms).
const MAX_IDLE: std::time::Duration = std::time::Duration::from_millis(500);

/// One join input of a task: a partition, the read position and how rows are read.
pub struct JoinInput {
    pub name: String,
    pub partition: Arc<dyn PartitionStore>,
    pub position: i64,
    pub reader: SideInput,
    /// For a repartitioned input: the stage that feeds it.
    pub upstream: Option<Upstream>,
}

/// The stage that feeds a repartitioned join input: its task group, and the partitions of
/// the topic it reads that this server runs (another server's share is not waited for).
#[derive(Clone)]
pub struct Upstream {
    pub group: String,
    pub partitions: Vec<Arc<dyn PartitionStore>>,
}

impl JoinInput {
    /// Little to read here now, while the repartition stage feeding it has not read its
    /// source to the end: rows that precede what the other input holds may be on their way.
    fn waiting_for_upstream(&self, log: &Log) -> bool {
        if self.partition.last_stable_offset() - self.position >= CAUGHT_UP_RECORDS {
            return false;
        }
        let Some(upstream) = &self.upstream else {
            return false;
        };
        upstream.partitions.iter().any(|p| log.offsets().fetch(&upstream.group, p.topic(), p.id()).map_or(0, |c| c.offset) < p.last_stable_offset())
    }
}

/// An earlier stage of an N-way join writes its joined rows, keyed by the next join's
/// key, to the internal topic the next stage reads.
pub struct NextStage {
    pub writer: IdempotentWriter,
    /// The next join's key, over this stage's joined rows.
    pub key: CompiledExpr,
    /// Encodes this stage's joined columns and the next key (the next stage's stored row).
    pub encoder: JsonEncoder,
    /// Serializes the key the way the next stage's co-partitioned input does.
    pub partition_key: Box<dyn RowEncoder>,
    /// When the next stage is a foreign-key join: what identifies a row of this stage's
    /// result (its records are keyed by it, and `key` is the foreign key they carry).
    pub row_key: Option<Vec<CompiledExpr>>,
}

/// Where a join stage's results go.
pub enum JoinOutput {
    /// The query's sink (and, for table results, its materialized rows).
    Result {
        sink: TopicSink,
        tfamily: Option<String>,
    },
    Next(NextStage),
    /// A push query's client.
    Client(ClientOutput),
}

impl JoinOutput {
    fn checkpoint(&self) -> super::sink::SinkCheckpoint {
        match self {
            JoinOutput::Result { sink, .. } => sink.checkpoint(),
            JoinOutput::Next(n) => n.writer.checkpoint(),
            JoinOutput::Client(_) => Default::default(),
        }
    }
}

pub struct JoinTask {
    left: JoinInput,
    right: JoinInput,
    plan: Arc<JoinPlan>,
    state: Arc<StateDb>,
    qfamily: String,
    output: JoinOutput,
    stats: Arc<QueryStats>,
    log: Arc<Log>,
    stream_time: i64,
    /// The latest time each side (left, right) has seen: a stream-stream join's buffers
    /// expire by it.
    side_time: [i64; 2],
    /// When the task started waiting for a repartition stage.
    idle_since: Option<std::time::Instant>,
    /// A push query's client is gone or its LIMIT reached.
    finished: bool,
    left_decoder: JsonDecoder,
    right_decoder: JsonDecoder,
    row_encoder: JsonEncoder,
    /// For each result-schema column (keys, then values), its index in the SELECT list.
    output_order: Vec<usize>,
    /// The checkpoints of the inputs the task started from (until it commits).
    resume_from: [TaskCheckpoint; 2],
}

impl JoinTask {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        left: JoinInput,
        right: JoinInput,
        side_time: [i64; 2],
        plan: Arc<JoinPlan>,
        state: Arc<StateDb>,
        qfamily: String,
        output: JoinOutput,
        stats: Arc<QueryStats>,
        log: Arc<Log>,
    ) -> JoinTask {
        let output_order: Vec<usize> = plan
            .output
            .columns()
            .iter()
            .map(|c| plan.columns.iter().position(|p| p.name == c.name).expect("result columns come from the SELECT list"))
            .collect();
        let row_fields: Vec<(String, DataType)> = output_order.iter().map(|&i| (plan.columns[i].name.clone(), plan.columns[i].expr.ty.to_arrow())).collect();
        let resume_from = [
            TaskCheckpoint { offset: left.position, sink: output.checkpoint(), stream_time: side_time[0] },
            TaskCheckpoint { offset: right.position, sink: Default::default(), stream_time: side_time[1] },
        ];
        JoinTask {
            resume_from,
            left_decoder: JsonDecoder::new(fields(&plan.left.stored_fields(&plan.key_type)), false),
            right_decoder: JsonDecoder::new(fields(&plan.right.stored_fields(&plan.key_type)), false),
            row_encoder: JsonEncoder::new(fields(&row_fields), false),
            output_order,
            left,
            right,
            stream_time: side_time[0].max(side_time[1]),
            side_time,
            idle_since: None,
            finished: false,
            plan,
            state,
            qfamily,
            output,
            stats,
            log,
        }
    }

    fn step_state(&self) -> StepState {
        StepState { db: self.state.clone(), family: self.qfamily.clone(), pending: BTreeMap::new() }
    }

    fn is_outer(&self, side: Side) -> bool {
        matches!((self.plan.kind, side), (JoinKind::Full, _) | (JoinKind::Left, Side::Left) | (JoinKind::Right, Side::Right))
    }

    /// Stream-table: table rows update the table side; stream rows look it up.
    fn stream_table(&self, st: &mut StepState, side: Side, row: &SideRow, out: &mut Vec<JoinedRow>) -> Result<(), ExecError> {
        if side == Side::Right {
            match &row.payload {
                Some(p) => st.put(table_key(Side::Right, &row.key), with_time(row.ts, p)),
                None => st.delete(table_key(Side::Right, &row.key)),
            }
            return Ok(());
        }
        let table_row = st.get(&table_key(Side::Right, &row.key))?;
        match table_row {
            Some(v) => out.push(JoinedRow::of(Side::Left, row.payload.clone(), Some(split_time(&v).1.to_vec()), row.ts)),
            None if self.plan.kind == JoinKind::Left => out.push(JoinedRow::of(Side::Left, row.payload.clone(), None, row.ts)),
            None => {}
        }
        Ok(())
    }

    /// Table-table: an update to one side re-evaluates the key's result.
    fn table_table(&self, st: &mut StepState, side: Side, row: &SideRow, out: &mut Vec<JoinedRow>) -> Result<(), ExecError> {
        let own_key = table_key(side, &row.key);
        let old = st.get(&own_key)?;
        let other = st.get(&table_key(side.other(), &row.key))?;
        match &row.payload {
            Some(p) => st.put(own_key, with_time(row.ts, p)),
            None => st.delete(own_key),
        }
        let has = |own: bool, other: bool| {
            let (l, r) = if side == Side::Left { (own, other) } else { (other, own) };
            match self.plan.kind {
                JoinKind::Inner => l && r,
                JoinKind::Left => l,
                JoinKind::Right => r,
                JoinKind::Full => l || r,
            }
        };
        let before = has(old.is_some(), other.is_some());
        let after = has(row.payload.is_some(), other.is_some());
        let other_row = other.as_ref().map(|v| split_time(v));
        if after {
            let ts = other_row.map_or(row.ts, |(t, _)| t.max(row.ts));
            out.push(JoinedRow::of(side, row.payload.clone(), other_row.map(|(_, p)| p.to_vec()), ts));
        } else if before {
            let own_old = old.as_ref().map(|v| split_time(v).1.to_vec());
            let mut r = JoinedRow::of(side, own_old, other_row.map(|(_, p)| p.to_vec()), row.ts);
            r.tombstone = true;
            out.push(r);
        }
        Ok(())
    }

    /// Foreign-key table-table join (one task sees both tables whole): a left row looks up
    /// the right row of its foreign key and is indexed under it; a right row re-evaluates
    /// every left row indexed under its key. Results are keyed by the left row's key.
    fn fk_join(&self, st: &mut StepState, side: Side, row: &SideRow, out: &mut Vec<JoinedRow>) -> Result<(), ExecError> {
        let right_of = |st: &StepState, fk: Option<&[u8]>| -> Result<Option<Vec<u8>>, ExecError> {
            match fk {
                Some(f) => Ok(st.get(&table_key(Side::Right, f))?.map(|v| split_time(&v).1.to_vec())),
                None => Ok(None),
            }
        };
        let tombstone = |left: Vec<u8>, ts: i64| JoinedRow { left: Some(left), right: None, ts, tombstone: true };
        if side == Side::Right {
            match &row.payload {
                Some(p) => st.put(table_key(Side::Right, &row.key), with_time(row.ts, p)),
                None => st.delete(table_key(Side::Right, &row.key)),
            }
            let prefix = fk_index_prefix(&row.key);
            let end = keys::prefix_end(&prefix).unwrap_or_else(|| vec![0xff; prefix.len() + 1]);
            for (idx, _) in st.scan(&prefix, &end)? {
                let pk = &idx[prefix.len()..];
                let Some((_, left)) = st.get(&fk_row_key(pk))?.as_deref().and_then(decode_fk_row) else {
                    continue;
                };
                match (&row.payload, self.plan.kind) {
                    (Some(r), _) => out.push(JoinedRow { left: Some(left), right: Some(r.clone()), ts: row.ts, tombstone: false }),
                    (None, JoinKind::Left) => out.push(JoinedRow { left: Some(left), right: None, ts: row.ts, tombstone: false }),
                    (None, _) => out.push(tombstone(left, row.ts)),
                }
            }
            return Ok(());
        }
        let own = fk_row_key(&row.key);
        let old = st.get(&own)?.as_deref().and_then(decode_fk_row);
        if let Some((Some(old_fk), _)) = &old {
            let mut idx = fk_index_prefix(old_fk);
            idx.extend_from_slice(&row.key);
            st.delete(idx);
        }
        let Some(payload) = &row.payload else {
            st.delete(own);
            if let Some((_, left)) = old {
                out.push(tombstone(left, row.ts));
            }
            return Ok(());
        };
        st.put(own, encode_fk_row(row.ts, row.fk.as_deref(), payload));
        if let Some(fk) = &row.fk {
            let mut idx = fk_index_prefix(fk);
            idx.extend_from_slice(&row.key);
            st.put(idx, Vec::new());
        }
        match (right_of(st, row.fk.as_deref())?, self.plan.kind) {
            (Some(r), _) => out.push(JoinedRow { left: Some(payload.clone()), right: Some(r), ts: row.ts, tombstone: false }),
            (None, JoinKind::Left) => out.push(JoinedRow { left: Some(payload.clone()), right: None, ts: row.ts, tombstone: false }),
            (None, _) => {
                // INNER: the key had a result before only if its old foreign key matched.
                if let Some((old_fk, _)) = &old
                    && right_of(st, old_fk.as_deref())?.is_some()
                {
                    out.push(tombstone(payload.clone(), row.ts));
                }
            }
        }
        Ok(())
    }

    /// Stream-stream: a row joins the other side's buffered rows within the window, then
    /// is buffered itself until the window and grace have passed.
    fn stream_stream(&mut self, st: &mut StepState, side: Side, row: &SideRow, out: &mut Vec<JoinedRow>) -> Result<(), ExecError> {
        let w = self.plan.window.ok_or_else(|| ExecError::Invariant("stream-stream join without a window"))?;
        let Some(payload) = &row.payload else {
            return Ok(());
        };
        let (own_window, lo, hi) = match side {
            Side::Left => (w.after_ms, row.ts.saturating_sub(w.before_ms), row.ts.saturating_add(w.after_ms)),
            Side::Right => (w.before_ms, row.ts.saturating_sub(w.after_ms), row.ts.saturating_add(w.before_ms)),
        };
        // As Kafka Streams: each side's buffer keeps rows within its retention of the
        // latest time that side has seen; an older row is not buffered (it is late) but
        // still joins what the other side's buffer holds.
        let retention = w.buffer_retention_ms();
        if row.ts > self.stream_time {
            self.stream_time = row.ts;
            self.emit_closed_outer_rows(st, out)?;
        }
        let own_time = self.side_time_mut(side);
        *own_time = (*own_time).max(row.ts);
        let buffered = row.ts > own_time.saturating_sub(retention);
        let other_time = *self.side_time_mut(side.other());
        let lo = if other_time == i64::MIN { lo } else { lo.max(other_time.saturating_sub(retention).saturating_add(1)) };
        let prefix = buffer_prefix(side.other(), &row.key);
        let (mut from, mut to) = (prefix.clone(), prefix);
        keys::put_i64(&mut from, lo);
        keys::put_i64(&mut to, hi.saturating_add(1));
        let matches = if lo <= hi { st.scan(&from, &to)? } else { Vec::new() };
        let other_outer = self.is_outer(side.other());
        for (k, v) in &matches {
            let other_ts = buffer_time(k);
            let other_payload = v.get(1..).unwrap_or_default().to_vec();
            out.push(JoinedRow::of(side, Some(payload.clone()), Some(other_payload), row.ts.max(other_ts)));
            if other_outer && v.first() == Some(&0) {
                let mut marked = v.clone();
                marked[0] = 1;
                st.put(k.clone(), marked);
            }
        }
        let matched = !matches.is_empty();
        let outer = self.is_outer(side);
        // An unmatched row of an outer side is emitted padded with nulls at once without
        // GRACE PERIOD (the older eager semantics) or when its window has already closed;
        // otherwise when its window closes still unmatched.
        let emit_now = !matched && outer && (!w.explicit_grace || row.ts.saturating_add(own_window) < self.stream_time);
        if emit_now {
            out.push(JoinedRow::of(side, Some(payload.clone()), None, row.ts));
        }
        if !buffered {
            self.stats.record_late(1);
            return Ok(());
        }
        let mut bk = buffer_prefix(side, &row.key);
        keys::put_i64(&mut bk, row.ts);
        keys::put_i64(&mut bk, row.offset);
        let mut v = vec![u8::from(matched || !outer || emit_now)];
        v.extend_from_slice(payload);
        st.put(bk.clone(), v);
        st.put(time_index(expiry_tag(side), row.ts.saturating_add(retention), &bk), Vec::new());
        if !matched && outer && !emit_now {
            st.put(time_index(b'c', row.ts.saturating_add(own_window).saturating_add(w.grace_ms), &bk), Vec::new());
        }
        Ok(())
    }

    /// The latest time a side of a stream-stream join has seen.
    fn side_time_mut(&mut self, side: Side) -> &mut i64 {
        match side {
            Side::Left => &mut self.side_time[0],
            Side::Right => &mut self.side_time[1],
        }
    }

    /// Emits the outer rows whose window has closed unmatched (Kafka Streams does so when
    /// a record advances stream time, before processing it).
    fn emit_closed_outer_rows(&self, st: &mut StepState, out: &mut Vec<JoinedRow>) -> Result<(), ExecError> {
        let mut to = vec![b'c'];
        keys::put_i64(&mut to, self.stream_time);
        for (idx, _) in st.scan(b"c", &to)? {
            let bk = idx[9..].to_vec();
            if let Some(v) = st.get(&bk)?
                && v.first() == Some(&0)
            {
                out.push(JoinedRow::of(side_of(&bk), Some(v[1..].to_vec()), None, buffer_time(&bk)));
            }
            st.delete(idx);
        }
        Ok(())
    }

    /// Emits outer rows whose window closed unmatched and drops rows past retention.
    fn close_windows(&self, st: &mut StepState, out: &mut Vec<JoinedRow>) -> Result<(), ExecError> {
        if self.plan.window.is_none() || self.stream_time == i64::MIN {
            return Ok(());
        }
        self.emit_closed_outer_rows(st, out)?;
        for (side, time) in [(Side::Left, self.side_time[0]), (Side::Right, self.side_time[1])] {
            let tag = expiry_tag(side);
            let mut to = vec![tag];
            keys::put_i64(&mut to, time);
            for (idx, _) in st.scan(&[tag], &to)? {
                st.delete(idx[9..].to_vec());
                st.delete(idx);
            }
        }
        Ok(())
    }

    /// Builds the joined rows, applies WHERE and the SELECT list, writes the sink and, for
    /// table results, the materialized rows.
    fn emit(&mut self, joined: Vec<JoinedRow>, batch: &mut StateBatch) -> Result<(), ExecError> {
        if joined.is_empty() {
            return Ok(());
        }

        let decode = |d: &mut JsonDecoder, rows: Vec<Option<&[u8]>>| -> Result<Vec<ArrayRef>, ExecError> {
            let out = d.decode(&rows);
            if out.kept.len() != rows.len() {
                return Err(ExecError::Invariant("stored join rows are unreadable"));
            }
            Ok(out.columns)
        };
        let mut left = decode(&mut self.left_decoder, joined.iter().map(|r| r.left.as_deref()).collect())?;
        let mut right = decode(&mut self.right_decoder, joined.iter().map(|r| r.right.as_deref()).collect())?;
        let lkey = left.pop().ok_or_else(|| ExecError::Invariant("no join key column"))?;
        let rkey = right.pop().ok_or_else(|| ExecError::Invariant("no join key column"))?;
        let key = zip(&is_not_null(&lkey)?, &lkey, &rkey)?;
        let times: Vec<i64> = joined.iter().map(|r| r.ts).collect();
        let mut columns = left;
        columns.extend(right);
        columns.push(key);
        columns.push(Arc::new(Int64Array::from(times)));
        let rb = RecordBatch::try_new(self.plan.joined_schema.clone(), columns)?;
        if let JoinOutput::Next(next) = &mut self.output {
            return Self::emit_next(
                next,
                &rb,
                &joined,
                self.left.partition.id(),
                self.left.position,
                &self.left.name,
                self.left.partition.topic(),
                &self.stats,
            );
        }
        let table = self.plan.shape == JoinShape::TableTable;
        let projection: Vec<_> = self.plan.columns.iter().map(|c| &c.expr).collect();
        let (projected, errors) = filter_project(&rb, if table { None } else { self.plan.filter.as_ref() }, &projection);
        if !errors.is_empty() {
            let pid = self.left.partition.id();
            let errs: Vec<RecordError> = errors
                .into_iter()
                .map(|(_, m)| RecordError {
                    kind: super::source::RecordErrorKind::Processing,
                    partition: pid,
                    offset: self.left.position,
                    message: m.to_string(),
                })
                .collect();
            self.stats.record_errors(&self.left.name, self.left.partition.topic(), &errs);
        }
        let rows: Vec<usize> = projected.rows.values().iter().map(|&r| r as usize).collect();
        let mut tombstones: Vec<bool> = rows.iter().map(|&r| joined[r].tombstone).collect();
        if let (true, Some(f)) = (table, &self.plan.filter) {
            // A table row the WHERE clause rejects is not in the result.
            let mask = evaluate(f, &rb)?;
            let mask = mask.as_boolean();
            for (i, &r) in rows.iter().enumerate() {
                if !(mask.is_valid(r) && mask.value(r)) {
                    tombstones[i] = true;
                }
            }
        }
        let m = rows.len();
        if let JoinOutput::Client(out) = &self.output {
            // Rows leaving a table result are not sent (as in ksqlDB's push queries).
            let keep = arrow::array::UInt32Array::from((0..m as u32).filter(|&i| !tombstones[i as usize]).collect::<Vec<_>>());
            let cols = projected.columns.iter().map(|c| arrow::compute::take(c, &keep, None)).collect::<Result<Vec<_>, _>>()?;
            let encoded = crate::format::json::encode_json_arrays(&cols, keep.len()).map_err(ExecError::Format)?;
            if !matches!(out.send(encoded, None, &self.stats), ClientSend::Sent) {
                self.finished = true;
            }
            return Ok(());
        }
        let JoinOutput::Result { sink, tfamily } = &mut self.output else {
            return Ok(());
        };
        let timestamps: Vec<i64> = rows.iter().map(|&r| joined[r].ts).collect();
        // A join of windowed sources gives a windowed result: each row keeps the window its
        // left row had (both sides' windows are the same: rows match only within one).
        let bounds = result_window(&self.plan).map(|(s, e, session)| {
            let pick = |i: usize| rb.column(i).as_primitive::<Int64Type>().clone();
            let (s, e) = (pick(s), pick(e));
            (rows.iter().map(|&r| s.value(r)).collect::<Vec<_>>(), rows.iter().map(|&r| e.value(r)).collect::<Vec<_>>(), session)
        });
        let windows = bounds.as_ref().map(|(starts, ends, session)| super::sink::WindowKeys { starts, ends, session: *session });
        let appended = sink.write_rows(&projected.columns, m, &timestamps, self.left.partition.id(), windows, table.then_some(tombstones.as_slice()))?;
        self.stats.record_output_at(self.left.partition.id(), appended);
        if let Some(tfamily) = tfamily {
            let nkeys = self.plan.output.key_count();
            let ordered: Vec<ArrayRef> = self.output_order.iter().map(|&i| projected.columns[i].clone()).collect();
            let json = self.row_encoder.encode(&ordered, m)?;
            let now = chrono::Utc::now().timestamp_millis();
            for i in 0..m {
                let mut k = Vec::new();
                keys::encode_row(&ordered[..nkeys], i, &mut k);
                if tombstones[i] {
                    batch.delete(tfamily, k);
                } else if let Some(j) = json.get(i) {
                    batch.put(tfamily, k, rows::encode(timestamps[i], now, self.left.partition.id(), j));
                }
            }
        }
        Ok(())
    }

    /// Writes joined rows to the next stage's input, keyed by its join key. Before a
    /// foreign-key join, rows are keyed by what identifies them instead, carry the foreign
    /// key (the next join key) in a header (none when null), and go to the one partition a
    /// foreign-key join reads.
    #[allow(clippy::too_many_arguments)]
    fn emit_next(
        next: &mut NextStage,
        rb: &RecordBatch,
        joined: &[JoinedRow],
        pid: i32,
        position: i64,
        name: &str,
        topic: &str,
        stats: &QueryStats,
    ) -> Result<(), ExecError> {
        let n = rb.num_rows();
        let keys = evaluate(&next.key, rb)?;
        // The joined columns (all but the join key and ROWTIME) and the next key.
        let mut cols: Vec<ArrayRef> = rb.columns()[..rb.num_columns() - 2].to_vec();
        cols.push(keys.clone());
        let payloads = next.encoder.encode(&cols, n)?;
        let key_cols = [keys.clone()];
        let identity: Option<Vec<ArrayRef>> = next.row_key.as_ref().map(|rk| rk.iter().map(|k| evaluate(k, rb)).collect()).transpose()?;
        let serialized = match identity {
            Some(_) => None,
            None => Some(next.partition_key.encode(std::slice::from_ref(&keys), n)?),
        };
        let partitions = next.writer.topic().partition_count();
        // Partition, key, value, foreign key and time of each result record.
        type Encoded<'v> = (i32, Vec<u8>, Option<&'v [u8]>, Option<Vec<u8>>, i64);
        let mut encoded: Vec<Encoded> = Vec::with_capacity(n);
        let mut errors = Vec::new();
        for (i, row) in joined.iter().enumerate() {
            let null_key = match &identity {
                Some(id) => id.iter().any(|k| k.is_null(i)),
                None => keys.is_null(i),
            };
            if null_key {
                errors.push(RecordError {
                    kind: super::source::RecordErrorKind::Processing,
                    partition: pid,
                    offset: position,
                    message: "the next join's key is null; the joined row was dropped".into(),
                });
                continue;
            }
            let mut k = Vec::new();
            keys::encode_row(identity.as_deref().unwrap_or(&key_cols), i, &mut k);
            let (p, fk) = match &serialized {
                Some(s) => (crate::log::murmur2::partition_for_key(s.get(i).unwrap_or_default(), partitions), None),
                None => (
                    0,
                    keys.is_valid(i).then(|| {
                        let mut f = Vec::new();
                        keys::encode_row(&key_cols, i, &mut f);
                        f
                    }),
                ),
            };
            encoded.push((p, k, if row.tombstone { None } else { payloads.get(i) }, fk, row.ts));
        }
        stats.record_errors(name, topic, &errors);
        let records: Vec<OutRecord<'_>> = encoded
            .iter()
            .map(|(p, k, v, fk, ts)| OutRecord {
                partition: *p,
                key: Some(k),
                value: *v,
                headers: fk.as_deref().map(|f| vec![(super::join_input::FK_HEADER.as_bytes(), Some(f))]).unwrap_or_default(),
                timestamp: *ts,
            })
            .collect();
        next.writer.write(&records)?;
        Ok(())
    }

    fn commit(&mut self, mut batch: StateBatch) -> Result<(), ExecError> {
        let cp = TaskCheckpoint { offset: self.left.position, sink: self.output.checkpoint(), stream_time: self.side_time[0] };
        checkpoint::put(&mut batch, &self.left.name, self.left.partition.topic(), self.left.partition.id(), &cp)?;
        let rcp = TaskCheckpoint { offset: self.right.position, sink: Default::default(), stream_time: self.side_time[1] };
        checkpoint::put(&mut batch, &self.right.name, self.right.partition.topic(), self.right.partition.id(), &rcp)?;
        self.state.write(batch, true)?;
        for input in [&self.left, &self.right] {
            self.log.offsets().commit_unsynced(&input.name, &[(input.partition.topic(), input.partition.id(), input.position, "")])?;
        }
        // Progress over both inputs: what is left to read is the sum of both lags.
        let (l, r) = (&self.left, &self.right);
        self.stats.set_progress(l.partition.id(), l.position + r.position, l.partition.end_offset() + r.partition.end_offset());
        Ok(())
    }

    /// Reads what is new on one input (its position moves past it).
    fn read_side(input: &mut JoinInput) -> Result<Option<SideRead>, ExecError> {
        let Some(data) = read_input(input.partition.as_ref(), &mut input.position)? else {
            return Ok(None);
        };
        let read = input.reader.read(&data, input.position, input.partition.id())?;
        input.position = read.next_offset;
        Ok(Some(read))
    }

    /// Counts what an input's read contributed, up to `resume` (rows from there on are
    /// read again in the next step) and moves its position there.
    fn account(input: &mut JoinInput, from: i64, read: Option<SideRead>, resume: Option<i64>, stats: &QueryStats) {
        let Some(read) = read else { return };
        let errors: Vec<RecordError> = read.errors.into_iter().filter(|e| resume.is_none_or(|r| e.offset < r)).collect();
        stats.record_errors(&input.name, input.partition.topic(), &errors);
        if let Some(r) = resume {
            input.position = r;
        }
        if matches!(input.reader, SideInput::Direct { .. }) {
            // Offsets consumed (a repartition stage counts its own input).
            stats.record_input_at(input.partition.id(), (input.position - from).max(0) as usize, read.bytes);
        }
    }
}

impl PartitionTask for JoinTask {
    fn name(&self) -> &str {
        &self.left.name
    }
    fn partition(&self) -> &Arc<dyn PartitionStore> {
        &self.left.partition
    }
    fn position(&self) -> i64 {
        self.left.position
    }
    fn second_input(&self) -> Option<(&Arc<dyn PartitionStore>, i64)> {
        Some((&self.right.partition, self.right.position))
    }
    fn client(&self) -> Option<&ClientOutput> {
        match &self.output {
            JoinOutput::Client(c) => Some(c),
            _ => None,
        }
    }
    fn stats(&self) -> &Arc<QueryStats> {
        &self.stats
    }

    fn on_start(&mut self) -> Result<(), ExecError> {
        let mut st = self.step_state();
        let mut out = Vec::new();
        self.close_windows(&mut st, &mut out)?;
        if st.pending.is_empty() {
            return Ok(());
        }
        let mut batch = StateBatch::default();
        self.emit(out, &mut batch)?;
        st.into_batch(&mut batch);
        self.commit(batch)
    }

    fn rewind(&mut self) -> Result<(), ExecError> {
        if matches!(self.output, JoinOutput::Client(_)) {
            return Ok(());
        }
        let left = checkpoint::committed(&self.state, &self.left.name, self.left.partition.topic(), self.left.partition.id(), &self.resume_from[0])?;
        let right = checkpoint::committed(&self.state, &self.right.name, self.right.partition.topic(), self.right.partition.id(), &self.resume_from[1])?;
        self.left.position = left.offset;
        self.right.position = right.offset;
        self.side_time = [left.stream_time, right.stream_time];
        self.stream_time = left.stream_time.max(right.stream_time);
        match &mut self.output {
            JoinOutput::Result { sink, .. } => sink.reset(&left.sink),
            JoinOutput::Next(next) => next.writer.reset(&left.sink),
            JoinOutput::Client(_) => {}
        }
        Ok(())
    }

    fn step(&mut self) -> Result<StepOutcome, ExecError> {
        // Rows are processed in time order across the inputs: while one input is empty
        // but its repartition stage still has records to pass on, the other waits (a
        // table update must not overtake the stream rows that precede it).
        if self.left.waiting_for_upstream(&self.log) || self.right.waiting_for_upstream(&self.log) {
            let since = *self.idle_since.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() < MAX_IDLE {
                return Ok(StepOutcome::Idle);
            }
        }
        self.idle_since = None;
        let (left_from, right_from) = (self.left.position, self.right.position);
        let mut left = Self::read_side(&mut self.left)?;
        let mut right = Self::read_side(&mut self.right)?;
        // On equal times a table update is applied before the stream row that reads it.
        let first = if self.plan.shape == JoinShape::StreamTable { Side::Right } else { Side::Left };
        let more = |i: &JoinInput| i.partition.last_stable_offset() > i.position;
        let (left_more, right_more) = (more(&self.left), more(&self.right));
        let take = |r: &mut Option<SideRead>| r.as_mut().map(|r| std::mem::take(&mut r.rows)).unwrap_or_default();
        let merged = merge_by_time(take(&mut left), take(&mut right), first, left_more, right_more);
        Self::account(&mut self.left, left_from, left, merged.left_resume, &self.stats);
        Self::account(&mut self.right, right_from, right, merged.right_resume, &self.stats);
        let mut st = self.step_state();
        let mut out = Vec::new();
        for (side, row) in merged.rows {
            match self.plan.shape {
                JoinShape::StreamTable => self.stream_table(&mut st, side, &row, &mut out)?,
                JoinShape::TableTable if self.plan.left_row_key.is_some() => self.fk_join(&mut st, side, &row, &mut out)?,
                JoinShape::TableTable => self.table_table(&mut st, side, &row, &mut out)?,
                JoinShape::StreamStream => self.stream_stream(&mut st, side, &row, &mut out)?,
            }
        }
        self.close_windows(&mut st, &mut out)?;
        let mut batch = StateBatch::default();
        self.emit(out, &mut batch)?;
        st.into_batch(&mut batch);
        self.commit(batch)?;
        Ok(if self.finished { StepOutcome::Finished } else { StepOutcome::Progress })
    }
}
