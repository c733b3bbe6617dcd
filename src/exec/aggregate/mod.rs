//! The aggregation operator: groups input rows by key (and window), updates each group's
//! accumulators, and emits one output row per update (EMIT CHANGES) or one per window when
//! it closes (EMIT FINAL). Group state lives in RocksDB (column family `q/<query>`) behind
//! an in-memory cache; every step commits the touched state, the materialized table rows,
//! the window indexes and the checkpoint (source offset, sink sequences, stream time) in
//! one write batch. Output goes through the idempotent sink, so a replay after a crash
//! produces no duplicates.
//!
//! Layout of `q/<query>`: `a` + state key -> group state; `c` + close time + state key ->
//! window to emit when stream time reaches its close (EMIT FINAL); `x` + expiry time +
//! state key -> window to delete after retention; `p` + table key -> a result row waiting
//! in the record cache (`record_cache.rs`). The state key is the encoded group key,
//! plus window start and end for time windows, plus window start for sessions (whose end
//! is in the state).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::take;
use arrow::datatypes::{DataType, Field, Fields};

mod emit;
mod pending;

use super::ExecError;
use super::checkpoint::{self, TaskCheckpoint};
use super::expr::filter_project;
use super::record_cache::RecordCache;
use super::sink::TopicSink;
use super::source::{RecordError, SourceDecoder};
use super::stats::QueryStats;
use super::task::{PartitionTask, StepOutcome, read_input};
use crate::catalog::WindowType;
use crate::format::json::{JsonDecoder, JsonEncoder};
use crate::format::{RowDecoder, RowEncoder};
use crate::log::batch::{self, BatchHeader, RecordIter};
use crate::log::{Log, PartitionStore};
use crate::sql::aggregate_plan::AggregatePlan;
use crate::sql::aggregates::AggState;
use crate::state::{StateBatch, StateDb, keys};
use emit::{Emission, coalesced};

/// Header marking a repartitioned record that takes a value back out (table updates).
pub const RETRACT_HEADER: &str = "eddy.retract";
/// The retraction header's value when the same source row's new contribution to the
/// same group directly follows: the group then emits once, after both.
pub const SAME_GROUP_UPDATE: &[u8] = b"same-group";
/// Cached groups kept in memory between steps (state is always also in RocksDB).
const CACHE_LIMIT: usize = 200_000;

/// Names and types of a repartition record's value: the grouping values `G<i>` and the
/// aggregate arguments `A<j>_<k>`.
pub fn payload_fields(plan: &AggregatePlan) -> Vec<(String, DataType)> {
    let mut f: Vec<(String, DataType)> = plan.group_by.iter().enumerate().map(|(i, g)| (format!("G{i}"), g.ty.to_arrow())).collect();
    for (j, a) in plan.aggregates.iter().enumerate() {
        for (k, arg) in a.args.iter().enumerate() {
            f.push((format!("A{j}_{k}"), arg.ty.to_arrow()));
        }
    }
    f
}

fn fields_of(names_types: &[(String, DataType)]) -> Fields {
    names_types.iter().map(|(n, t)| Field::new(n, t.clone(), true)).collect::<Vec<_>>().into()
}

/// Where the aggregation reads from.
pub enum AggInput {
    /// The source itself (already keyed by the grouping key).
    Direct(SourceDecoder),
    /// The internal repartition topic written by the repartition stage.
    Repartitioned(JsonDecoder),
}

/// Input rows ready for grouping.
struct PreAgg {
    keys: Vec<Option<Vec<u8>>>,
    groups: Vec<ArrayRef>,
    /// Per aggregate, its argument arrays.
    args: Vec<Vec<ArrayRef>>,
    rowtime: Vec<i64>,
    retract: Vec<bool>,
    /// Per retraction: the same source row's new contribution to this group follows.
    followed: Vec<bool>,
    offsets: Vec<i64>,
}

#[derive(Debug)]
struct GroupEntry {
    states: Vec<AggState>,
    rowtime: i64,
    /// Window end (sessions grow it).
    end: i64,
    /// Grouping values as a JSON object (`G<i>`), to emit closed windows.
    group_json: Vec<u8>,
}

pub struct AggregateTask {
    pub name: String,
    pub partition: Arc<dyn PartitionStore>,
    pub position: i64,
    input: AggInput,
    plan: Arc<AggregatePlan>,
    state: Arc<StateDb>,
    qfamily: String,
    tfamily: String,
    sink: TopicSink,
    stats: Arc<QueryStats>,
    log: Arc<Log>,
    stream_time: i64,
    cache: HashMap<Vec<u8>, GroupEntry>,
    sessions: HashMap<Vec<u8>, BTreeMap<i64, i64>>,
    group_encoder: JsonEncoder,
    group_decoder: JsonDecoder,
    row_encoder: JsonEncoder,
    /// For each output-schema column (keys, then values), its index in the SELECT list.
    output_order: Vec<usize>,
    /// The checkpoint the task started from (until it commits one).
    resume_from: TaskCheckpoint,
    /// Result rows waiting for the commit interval (None: every update goes out at once).
    record_cache: Option<RecordCache>,
    /// Reads the record cache's rows (stored as the table stores them) back.
    row_decoder: JsonDecoder,
    /// Work done but not committed yet (see `pending.rs`).
    pending: pending::Pending,
    /// The earliest close (`c`) and expiry (`x`) time an index entry can have that the
    /// last scan has not seen (None: scan from the beginning). Without it every step would
    /// walk the deletions of every window already closed.
    close_from: std::cell::Cell<Option<i64>>,
    expire_from: std::cell::Cell<Option<i64>>,
    /// For each SELECT column, its place among a stored row's columns.
    select_pos: Vec<usize>,
}

fn entry_value(e: &mut GroupEntry) -> Result<Vec<u8>, ExecError> {
    let mut v = Vec::with_capacity(64);
    v.extend_from_slice(&e.rowtime.to_be_bytes());
    v.extend_from_slice(&e.end.to_be_bytes());
    v.extend_from_slice(&(e.group_json.len() as u32).to_be_bytes());
    v.extend_from_slice(&e.group_json);
    for s in &mut e.states {
        s.save(&mut v)?;
    }
    Ok(v)
}

fn prefixed(tag: u8, time: Option<i64>, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 9);
    k.push(tag);
    if let Some(t) = time {
        keys::put_i64(&mut k, t);
    }
    k.extend_from_slice(key);
    k
}

impl AggregateTask {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: String,
        partition: Arc<dyn PartitionStore>,
        checkpoint: &TaskCheckpoint,
        input: AggInput,
        plan: Arc<AggregatePlan>,
        state: Arc<StateDb>,
        sink: TopicSink,
        stats: Arc<QueryStats>,
        log: Arc<Log>,
        table_family: String,
        query_family: String,
    ) -> AggregateTask {
        let group_fields: Vec<(String, DataType)> = plan.group_by.iter().enumerate().map(|(i, g)| (format!("G{i}"), g.ty.to_arrow())).collect();
        let output_order: Vec<usize> = plan
            .output
            .columns()
            .iter()
            .map(|c| plan.columns.iter().position(|p| p.name == c.name).expect("output columns come from the SELECT list"))
            .collect();
        let mut row_fields: Vec<(String, DataType)> = Vec::new();
        let mut select_pos = vec![0; plan.columns.len()];
        let nkeys = plan.output.key_count();
        for (i, &idx) in output_order.iter().enumerate() {
            if i == nkeys && plan.window.is_some() {
                row_fields.push(("WINDOWSTART".into(), DataType::Int64));
                row_fields.push(("WINDOWEND".into(), DataType::Int64));
            }
            select_pos[idx] = row_fields.len();
            row_fields.push((plan.columns[idx].name.clone(), plan.columns[idx].expr.ty.to_arrow()));
        }
        if nkeys == output_order.len() && plan.window.is_some() {
            row_fields.push(("WINDOWSTART".into(), DataType::Int64));
            row_fields.push(("WINDOWEND".into(), DataType::Int64));
        }
        AggregateTask {
            name,
            position: checkpoint.offset,
            stream_time: checkpoint.stream_time,
            partition,
            input,
            state,
            tfamily: table_family,
            sink,
            stats,
            log,
            cache: HashMap::new(),
            sessions: HashMap::new(),
            group_encoder: JsonEncoder::new(fields_of(&group_fields), false),
            group_decoder: JsonDecoder::new(fields_of(&group_fields), false),
            row_encoder: JsonEncoder::new(fields_of(&row_fields), false),
            row_decoder: JsonDecoder::new(fields_of(&row_fields), false),
            select_pos,
            output_order,
            pending: pending::Pending::default(),
            close_from: std::cell::Cell::new(None),
            expire_from: std::cell::Cell::new(None),
            record_cache: (plan.record_cache_bytes > 0 && !plan.emit_final)
                .then(|| RecordCache::new(plan.record_cache_bytes, plan.commit_interval_ms, query_family.clone())),
            qfamily: query_family,
            plan,
            resume_from: checkpoint.clone(),
        }
    }

    fn read_input(&mut self, data: &[u8]) -> Result<(Option<PreAgg>, i64, usize, Vec<RecordError>), ExecError> {
        let pid = self.partition.id();
        match &mut self.input {
            AggInput::Direct(decoder) => {
                let decoded = decoder.decode(data, self.position);
                let mut errors = decoded.errors;
                let Some(batch) = decoded.batch else {
                    return Ok((None, decoded.next_offset, decoded.records, errors));
                };
                let exprs: Vec<_> = self.plan.group_by.iter().chain(self.plan.aggregates.iter().flat_map(|a| a.args.iter())).collect();
                let (projected, row_errors) = filter_project(&batch, self.plan.filter.as_ref(), &exprs);
                let offsets_col = batch.column(batch.num_columns() - 1).as_primitive::<arrow::datatypes::Int64Type>().clone();
                for (row, message) in row_errors {
                    errors.push(RecordError {
                        kind: super::source::RecordErrorKind::Processing,
                        partition: pid,
                        offset: offsets_col.value(row),
                        message: message.to_string(),
                    });
                }
                let n = projected.num_rows();
                let rowtime = take(batch.column(batch.num_columns() - 3), &projected.rows, None)?;
                let offsets = take(&(Arc::new(offsets_col) as ArrayRef), &projected.rows, None)?;
                let ng = self.plan.group_by.len();
                let groups = projected.columns[..ng].to_vec();
                let mut args = Vec::new();
                let mut at = ng;
                for a in &self.plan.aggregates {
                    args.push(projected.columns[at..at + a.args.len()].to_vec());
                    at += a.args.len();
                }
                let keys = (0..n)
                    .map(|r| {
                        if groups.iter().any(|g| g.is_null(r)) {
                            None
                        } else {
                            let mut k = Vec::new();
                            keys::encode_row(&groups, r, &mut k);
                            Some(k)
                        }
                    })
                    .collect();
                let pre = PreAgg {
                    keys,
                    groups,
                    args,
                    rowtime: rowtime.as_primitive::<arrow::datatypes::Int64Type>().values().to_vec(),
                    retract: vec![false; n],
                    followed: vec![false; n],
                    offsets: offsets.as_primitive::<arrow::datatypes::Int64Type>().values().to_vec(),
                };
                Ok((Some(pre), decoded.next_offset, decoded.records, errors))
            }
            AggInput::Repartitioned(decoder) => {
                let mut next = self.position;
                let mut records = 0;
                let mut errors = Vec::new();
                let mut payloads = Vec::new();
                for b in batch::split_batches(data) {
                    let h = BatchHeader::parse(b)?;
                    next = next.max(h.last_offset() + 1);
                    payloads.push(batch::payload(b)?);
                }
                let (mut keys, mut values, mut rowtime, mut retract, mut offsets) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
                let mut followed = Vec::new();
                for (h, p) in &payloads {
                    for r in RecordIter::over(*h, p) {
                        let r = r?;
                        if r.offset < self.position {
                            continue;
                        }
                        records += 1;
                        keys.push(r.key.map(|k| k.to_vec()));
                        values.push(r.value);
                        rowtime.push(r.timestamp);
                        let h = r.headers.iter().find(|h| h.key == RETRACT_HEADER.as_bytes());
                        retract.push(h.is_some());
                        followed.push(h.is_some_and(|h| h.value == Some(SAME_GROUP_UPDATE)));
                        offsets.push(r.offset);
                    }
                }
                if values.is_empty() {
                    return Ok((None, next, records, errors));
                }
                let d = decoder.decode(&values);
                for (i, m) in &d.errors {
                    errors.push(RecordError {
                        kind: super::source::RecordErrorKind::Processing,
                        partition: pid,
                        offset: offsets[*i as usize],
                        message: m.clone(),
                    });
                }
                let kept: Vec<usize> = d.kept.iter().map(|&i| i as usize).collect();
                let ng = self.plan.group_by.len();
                let groups = d.columns[..ng].to_vec();
                let mut args = Vec::new();
                let mut at = ng;
                for a in &self.plan.aggregates {
                    args.push(d.columns[at..at + a.args.len()].to_vec());
                    at += a.args.len();
                }
                let pre = PreAgg {
                    keys: kept.iter().map(|&i| keys[i].clone()).collect(),
                    groups,
                    args,
                    rowtime: kept.iter().map(|&i| rowtime[i]).collect(),
                    retract: kept.iter().map(|&i| retract[i]).collect(),
                    followed: kept.iter().map(|&i| followed[i]).collect(),
                    offsets: kept.iter().map(|&i| offsets[i]).collect(),
                };
                Ok((Some(pre), next, records, errors))
            }
        }
    }

    /// The group state for a state key, from the cache or RocksDB, or a new one.
    fn entry(&mut self, state_key: &[u8], end: i64, group_json: impl FnOnce() -> Vec<u8>) -> Result<(&mut GroupEntry, bool), ExecError> {
        if !self.cache.contains_key(state_key) {
            let stored = self.state.get(&self.qfamily, &prefixed(b'a', None, state_key))?;
            let (entry, created) = match stored {
                Some(v) => (self.decode_entry(&v)?, false),
                None => {
                    (GroupEntry { states: self.plan.aggregates.iter().map(|a| a.create()).collect(), rowtime: i64::MIN, end, group_json: group_json() }, true)
                }
            };
            self.cache.insert(state_key.to_vec(), entry);
            let e = self.cache.get_mut(state_key).expect("just inserted");
            return Ok((e, created));
        }
        Ok((self.cache.get_mut(state_key).expect("checked"), false))
    }

    fn decode_entry(&self, v: &[u8]) -> Result<GroupEntry, ExecError> {
        let bad = || ExecError::State(crate::state::StateError::Corrupt("aggregation state".into()));
        if v.len() < 20 {
            return Err(bad());
        }
        let rowtime = i64::from_be_bytes(v[0..8].try_into().map_err(|_| bad())?);
        let end = i64::from_be_bytes(v[8..16].try_into().map_err(|_| bad())?);
        let gl = u32::from_be_bytes(v[16..20].try_into().map_err(|_| bad())?) as usize;
        let group_json = v.get(20..20 + gl).ok_or_else(bad)?.to_vec();
        let mut rest = &v[20 + gl..];
        let mut states = Vec::new();
        for a in &self.plan.aggregates {
            states.push(a.load(&mut rest)?);
        }
        Ok(GroupEntry { states, rowtime, end, group_json })
    }

    fn time_state_key(key: &[u8], start: i64, end: i64) -> Vec<u8> {
        let mut k = key.to_vec();
        keys::push_window(&mut k, start, end);
        k
    }

    fn session_state_key(key: &[u8], start: i64) -> Vec<u8> {
        let mut k = key.to_vec();
        keys::put_i64(&mut k, start);
        k
    }

    fn sessions_of(&mut self, key: &[u8]) -> Result<&mut BTreeMap<i64, i64>, ExecError> {
        if !self.sessions.contains_key(key) {
            let mut map = BTreeMap::new();
            let from = prefixed(b'a', None, key);
            let to = keys::prefix_end(&from);
            let mut found = Vec::new();
            self.state.scan(&self.qfamily, Some(&from), to.as_deref(), |k, v| {
                if k.len() == from.len() + 8 && v.len() >= 16 {
                    let start = keys::get_i64(&k[from.len()..]).unwrap_or(0);
                    let end = i64::from_be_bytes(v[8..16].try_into().unwrap_or_default());
                    found.push((start, end));
                }
                true
            })?;
            // Sessions created in this step and not committed yet are in the cache.
            for (s, e) in found {
                let sk = Self::session_state_key(key, s);
                let end = self.cache.get(&sk).map(|c| c.end).unwrap_or(e);
                map.insert(s, end);
            }
            self.sessions.insert(key.to_vec(), map);
        }
        Ok(self.sessions.get_mut(key).expect("loaded"))
    }

    fn add_window_index(&self, batch: &mut StateBatch, state_key: &[u8], end: i64) {
        let Some(w) = &self.plan.window else { return };
        let lower = |from: &std::cell::Cell<Option<i64>>, t: i64| from.set(from.get().map(|f| f.min(t)));
        let expire = end.saturating_add(w.retention_ms);
        batch.put(&self.qfamily, prefixed(b'x', Some(expire), state_key), Vec::new());
        lower(&self.expire_from, expire);
        if self.plan.emit_final {
            let close = end.saturating_add(w.grace_ms);
            batch.put(&self.qfamily, prefixed(b'c', Some(close), state_key), Vec::new());
            lower(&self.close_from, close);
        }
    }

    fn remove_window_index(&self, batch: &mut StateBatch, state_key: &[u8], end: i64) {
        let Some(w) = &self.plan.window else { return };
        batch.delete(&self.qfamily, prefixed(b'x', Some(end.saturating_add(w.retention_ms)), state_key));
        if self.plan.emit_final {
            batch.delete(&self.qfamily, prefixed(b'c', Some(end.saturating_add(w.grace_ms)), state_key));
        }
    }

    fn tbl_key(key: &[u8], window: Option<(i64, i64)>) -> Vec<u8> {
        match window {
            Some((s, e)) => Self::time_state_key(key, s, e),
            None => key.to_vec(),
        }
    }

    /// Applies one input row to one group; returns the emission for EMIT CHANGES.
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        pre: &PreAgg,
        row: usize,
        state_key: &[u8],
        key: &[u8],
        window: (i64, i64),
        batch: &mut StateBatch,
        dirty: &mut Vec<Vec<u8>>,
    ) -> Result<Option<Emission>, ExecError> {
        let need_json = self.plan.emit_final;
        let group_json = |enc: &JsonEncoder| -> Vec<u8> {
            if !need_json {
                return Vec::new();
            }
            let cols: Vec<ArrayRef> = pre.groups.iter().map(|g| g.slice(row, 1)).collect();
            enc.encode(&cols, 1).ok().and_then(|r| r.get(0).map(<[u8]>::to_vec)).unwrap_or_default()
        };
        let gj = group_json(&self.group_encoder);
        let emit_final = self.plan.emit_final;
        let (entry, created) = self.entry(state_key, window.1, || gj)?;
        for (j, s) in entry.states.iter_mut().enumerate() {
            let args: Vec<ArrayRef> = pre.args[j].iter().map(|a| a.slice(row, 1)).collect();
            let r = if pre.retract[row] { s.retract(&args, 1) } else { s.update(&args, 1) };
            r?;
        }
        // As Kafka Streams' aggregations: a result's time is the latest time of its inputs.
        entry.rowtime = entry.rowtime.max(pre.rowtime[row]);
        let rowtime = entry.rowtime;
        let aggs = if emit_final { None } else { Some(entry.states.iter_mut().map(|s| s.evaluate()).collect::<Result<Vec<_>, _>>()?) };
        let end = entry.end;
        if created {
            self.add_window_index(batch, state_key, end);
        }
        dirty.push(state_key.to_vec());
        Ok(aggs.map(|aggs| Emission { row: Some(row), group_json: Vec::new(), key: key.to_vec(), start: window.0, end: window.1, aggs: Some(aggs), rowtime }))
    }

    /// Session windows: merges the sessions `t` touches into one and applies the row.
    fn apply_session(
        &mut self,
        pre: &PreAgg,
        row: usize,
        key: &[u8],
        batch: &mut StateBatch,
        dirty: &mut Vec<Vec<u8>>,
        emissions: &mut Vec<Emission>,
    ) -> Result<(), ExecError> {
        let w = self.plan.window.clone().expect("session plan");
        let t = pre.rowtime[row];
        let gap = w.size_ms;
        // Sessions that closed (stream time passed their end by the gap and the grace period)
        // take no more records: a record near one starts a session of its own.
        let closes_before = self.stream_time.saturating_sub(gap).saturating_sub(w.grace_ms);
        let sessions = self.sessions_of(key)?;
        let touching: Vec<(i64, i64)> =
            sessions.iter().filter(|(s, e)| **e >= closes_before && **s - gap <= t && t <= **e + gap).map(|(s, e)| (*s, *e)).collect();
        let new_start = touching.iter().map(|(s, _)| *s).min().unwrap_or(t).min(t);
        let new_end = touching.iter().map(|(_, e)| *e).max().unwrap_or(t).max(t);
        // As Kafka Streams: a session closes once stream time passes its end by the gap and
        // the grace period; a record whose (merged) session is closed is late.
        if new_end < closes_before {
            self.stats.record_late(1);
            return Ok(());
        }
        // Fold every touched session into one state; the old ones disappear.
        let mut merged: Option<GroupEntry> = None;
        for (s, e) in &touching {
            let sk = Self::session_state_key(key, *s);
            let (_, _) = self.entry(&sk, *e, Vec::new)?;
            let mut entry = self.cache.remove(&sk).expect("loaded");
            batch.delete(&self.qfamily, prefixed(b'a', None, &sk));
            self.remove_window_index(batch, &sk, *e);
            batch.delete(&self.tfamily, Self::tbl_key(key, Some((*s, *e))));
            if !self.plan.emit_final {
                // A replaced session's tombstone carries that session's time (its end).
                emissions.push(Emission { row: Some(row), group_json: Vec::new(), key: key.to_vec(), start: *s, end: *e, aggs: None, rowtime: *e });
            }
            match &mut merged {
                None => merged = Some(entry),
                Some(m) => {
                    for (a, b) in m.states.iter_mut().zip(entry.states.iter_mut()) {
                        a.merge(b)?;
                    }
                }
            }
        }
        let sessions = self.sessions.get_mut(key).expect("loaded");
        for (s, _) in &touching {
            sessions.remove(s);
        }
        sessions.insert(new_start, new_end);
        let sk = Self::session_state_key(key, new_start);
        if let Some(mut m) = merged {
            m.end = new_end;
            if self.plan.emit_final && m.group_json.is_empty() {
                let cols: Vec<ArrayRef> = pre.groups.iter().map(|g| g.slice(row, 1)).collect();
                m.group_json = self.group_encoder.encode(&cols, 1)?.get(0).map(<[u8]>::to_vec).unwrap_or_default();
            }
            self.cache.insert(sk.clone(), m);
            self.add_window_index(batch, &sk, new_end);
        }
        if let Some(mut e) = self.apply(pre, row, &sk, key, (new_start, new_end), batch, dirty)? {
            // A session's result carries the session's latest time, its end.
            e.rowtime = new_end;
            emissions.push(e);
        }
        if let Some(entry) = self.cache.get_mut(&sk) {
            entry.end = new_end;
        }
        Ok(())
    }

    /// Whether commits wait for `commit.interval.ms` under a backlog: non-windowed
    /// aggregations without a record cache (windows close and expire by what is committed;
    /// the record cache has its own interval).
    fn defers_commits(&self) -> bool {
        self.plan.window.is_none() && self.record_cache.is_none()
    }

    /// Commits the pending work, if any, and the source offset with it.
    fn commit_pending(&mut self) -> Result<(), ExecError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let (batch, dirty) = self.pending.take(&self.tfamily);
        self.commit(batch, &dirty)?;
        self.log.offsets().commit_unsynced(&self.name, &[(self.partition.topic(), self.partition.id(), self.position, "")])?;
        Ok(())
    }

    fn commit(&mut self, mut batch: StateBatch, dirty: &[Vec<u8>]) -> Result<(), ExecError> {
        for k in dirty {
            if let Some(e) = self.cache.get_mut(k) {
                let v = entry_value(e)?;
                batch.put(&self.qfamily, prefixed(b'a', None, k), v);
            }
        }
        let cp = TaskCheckpoint { offset: self.position, sink: self.sink.checkpoint(), stream_time: self.stream_time };
        checkpoint::put(&mut batch, &self.name, self.partition.topic(), self.partition.id(), &cp)?;
        self.state.write(batch, true)?;
        if self.cache.len() > CACHE_LIMIT {
            self.cache.clear();
            self.sessions.clear();
        }
        Ok(())
    }

    /// EMIT FINAL: emits windows whose close time passed; and deletes windows past
    /// retention. Commits on its own.
    fn close_and_expire(&mut self) -> Result<(), ExecError> {
        if self.plan.window.is_none() || self.stream_time == i64::MIN {
            return Ok(());
        }
        let mut batch = StateBatch::default();
        let mut emissions = Vec::new();
        if self.plan.emit_final {
            let from = prefixed(b'c', self.close_from.get(), b"");
            self.close_from.set(Some(self.stream_time.saturating_add(1)));
            let mut to = vec![b'c'];
            keys::put_i64(&mut to, self.stream_time.saturating_add(1));
            let mut due = Vec::new();
            self.state.scan(&self.qfamily, Some(&from), Some(&to), |k, _| {
                due.push(k.to_vec());
                true
            })?;
            for idx_key in due {
                let state_key = idx_key[9..].to_vec();
                batch.delete(&self.qfamily, idx_key);
                let Some(v) = self.state.get(&self.qfamily, &prefixed(b'a', None, &state_key))? else {
                    continue;
                };
                let mut entry = match self.cache.remove(&state_key) {
                    Some(e) => e,
                    None => self.decode_entry(&v)?,
                };
                let (key, start, end) = self.split_state_key(&state_key, entry.end);
                let aggs = entry.states.iter_mut().map(|s| s.evaluate()).collect::<Result<Vec<_>, _>>()?;
                emissions.push(Emission { row: None, group_json: entry.group_json.clone(), key, start, end, aggs: Some(aggs), rowtime: entry.rowtime });
                self.cache.insert(state_key, entry);
            }
        }
        // Expired windows: state and materialized rows go.
        let mut to = vec![b'x'];
        keys::put_i64(&mut to, self.stream_time.saturating_add(1));
        let mut expired = Vec::new();
        let from = prefixed(b'x', self.expire_from.get(), b"");
        self.expire_from.set(Some(self.stream_time.saturating_add(1)));
        self.state.scan(&self.qfamily, Some(&from), Some(&to), |k, _| {
            expired.push(k.to_vec());
            true
        })?;
        for idx_key in expired {
            let state_key = idx_key[9..].to_vec();
            batch.delete(&self.qfamily, idx_key);
            let end = match self.cache.remove(&state_key) {
                Some(e) => e.end,
                None => match self.state.get(&self.qfamily, &prefixed(b'a', None, &state_key))? {
                    Some(v) if v.len() >= 16 => i64::from_be_bytes(v[8..16].try_into().unwrap_or_default()),
                    _ => continue,
                },
            };
            let (key, start, end) = self.split_state_key(&state_key, end);
            batch.delete(&self.qfamily, prefixed(b'a', None, &state_key));
            batch.delete(&self.tfamily, Self::tbl_key(&key, Some((start, end))));
            if let Some(s) = self.sessions.get_mut(&key) {
                s.remove(&start);
            }
        }
        if batch.is_empty() && emissions.is_empty() {
            return Ok(());
        }
        self.emit(None, emissions, &mut batch, false)?;
        self.commit(batch, &[])
    }

    /// (group key, window start, window end) of a windowed state key.
    fn split_state_key(&self, state_key: &[u8], end: i64) -> (Vec<u8>, i64, i64) {
        match self.plan.window.as_ref().map(|w| w.kind) {
            Some(WindowType::Session) => {
                let (k, s) = state_key.split_at(state_key.len() - 8);
                (k.to_vec(), keys::get_i64(s).unwrap_or(0), end)
            }
            _ => match keys::split_window(state_key) {
                Some((k, s, e)) => (k.to_vec(), s, e),
                None => (state_key.to_vec(), 0, end),
            },
        }
    }
}

impl PartitionTask for AggregateTask {
    fn name(&self) -> &str {
        &self.name
    }
    fn partition(&self) -> &Arc<dyn PartitionStore> {
        &self.partition
    }
    fn position(&self) -> i64 {
        self.position
    }
    fn stats(&self) -> &Arc<QueryStats> {
        &self.stats
    }

    fn on_start(&mut self) -> Result<(), ExecError> {
        if let Some(cache) = &mut self.record_cache {
            cache.load(&self.state)?;
        }
        self.close_and_expire()
    }

    fn on_stop(&mut self) -> Result<(), ExecError> {
        self.commit_pending()?;
        let mut batch = StateBatch::default();
        match self.record_cache.as_mut().map(|c| c.drain(&mut batch)) {
            Some(rows) if !rows.is_empty() => {
                self.write_cached(rows)?;
                self.commit(batch, &[])
            }
            _ => Ok(()),
        }
    }

    fn wake_at(&self) -> Option<std::time::Instant> {
        self.record_cache.as_ref().and_then(RecordCache::deadline)
    }

    fn rewind(&mut self) -> Result<(), ExecError> {
        let cp = checkpoint::committed(&self.state, &self.name, self.partition.topic(), self.partition.id(), &self.resume_from)?;
        // Group states changed since the last commit are only in the cache: drop it.
        self.cache.clear();
        self.pending.clear();
        self.close_from.set(None);
        self.expire_from.set(None);
        self.sessions.clear();
        self.position = cp.offset;
        self.stream_time = cp.stream_time;
        self.sink.reset(&cp.sink);
        if let Some(cache) = &mut self.record_cache {
            cache.load(&self.state)?;
        }
        Ok(())
    }

    fn step(&mut self) -> Result<StepOutcome, ExecError> {
        let Some(data) = read_input(self.partition.as_ref(), &mut self.position)? else {
            // Caught up: what is pending goes out now.
            self.commit_pending()?;
            let mut batch = StateBatch::default();
            if self.flush_if_due(&mut batch)? {
                self.commit(batch, &[])?;
            }
            return Ok(StepOutcome::Progress);
        };
        let (pre, next, records, mut errors) = self.read_input(&data)?;
        if matches!(self.input, AggInput::Direct(_)) {
            // With a repartition stage, that stage counts the input.
            self.stats.record_input_at(self.partition.id(), records, data.len());
        }
        let mut batch = StateBatch::default();
        let mut dirty = Vec::new();
        let mut emissions = Vec::new();
        if let Some(pre) = &pre {
            for row in 0..pre.rowtime.len() {
                let Some(key) = pre.keys[row].clone() else {
                    errors.push(RecordError {
                        kind: super::source::RecordErrorKind::Processing,
                        partition: self.partition.id(),
                        offset: pre.offsets[row],
                        message: "a GROUP BY value is null; the record was skipped".into(),
                    });
                    continue;
                };
                let t = pre.rowtime[row];
                if !pre.retract[row] {
                    self.stream_time = self.stream_time.max(t);
                }
                match self.plan.window.clone() {
                    None => {
                        // A source row's update whose old and new rows fall in the same group
                        // arrives as a retraction directly followed by the new row: the
                        // group emits once, after both.
                        let same_group_update = pre.followed[row];
                        if let Some(e) = self.apply(pre, row, &key, &key, (0, 0), &mut batch, &mut dirty)?
                            && !same_group_update
                        {
                            emissions.push(e);
                        }
                    }
                    Some(w) if w.kind == WindowType::Session => self.apply_session(pre, row, &key, &mut batch, &mut dirty, &mut emissions)?,
                    Some(w) => {
                        for (s, e) in w.windows_for(t) {
                            if e.saturating_add(w.grace_ms) <= self.stream_time {
                                self.stats.record_late(1);
                                continue;
                            }
                            let sk = Self::time_state_key(&key, s, e);
                            if let Some(em) = self.apply(pre, row, &sk, &key, (s, e), &mut batch, &mut dirty)? {
                                emissions.push(em);
                            }
                        }
                    }
                }
            }
        }
        errors.sort_by_key(|e| e.offset);
        self.stats.record_errors(&self.name, self.partition.topic(), &errors);
        let emissions = if self.plan.record_cache_bytes > 0 { coalesced(emissions, self.plan.record_cache_bytes) } else { emissions };
        self.emit(pre.as_ref(), emissions, &mut batch, self.record_cache.is_some())?;
        self.flush_if_due(&mut batch)?;
        self.position = next;
        if self.defers_commits() {
            self.pending.batch.append(batch);
            self.pending.dirty.extend(dirty);
            // Due, or caught up (the runtime steps again only when more input comes).
            let due = self.pending.add_step(data.len(), self.plan.commit_interval_ms);
            if due || self.position >= self.partition.end_offset() {
                self.commit_pending()?;
            }
            self.stats.set_progress(self.partition.id(), self.position, self.partition.end_offset());
            return Ok(StepOutcome::Progress);
        }
        dirty.sort();
        dirty.dedup();
        self.commit(batch, &dirty)?;
        self.close_and_expire()?;
        self.log.offsets().commit_unsynced(&self.name, &[(self.partition.topic(), self.partition.id(), self.position, "")])?;
        self.stats.set_progress(self.partition.id(), self.position, self.partition.end_offset());
        Ok(StepOutcome::Progress)
    }
}
