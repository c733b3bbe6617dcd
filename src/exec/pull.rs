//! Runs pull queries on tables against their materialized rows in RocksDB: key lookups
//! (multi-get), range scans and table scans, then WHERE, ORDER BY, LIMIT and the SELECT
//! list on Arrow batches. `SELECT *` with nothing to evaluate returns the stored rows
//! directly.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, UInt32Array};
use arrow::compute::{SortColumn, SortOptions, lexsort_to_indices, take};
use arrow::datatypes::{Field, Fields};

use super::ExecError;
use super::expr::{evaluate, filter_project};
use crate::format::RowDecoder;
use crate::format::json::JsonDecoder;
use crate::format::json_values::object_values_array;
use crate::sql::pull::{PullAccess, PullPlan};
use crate::state::keys::{self, KeyValueOwned, encode_value};
use crate::state::{ReadMode, StateDb, rows};

/// The complete result of a pull query on a table.
#[derive(Debug)]
pub struct PullRows {
    pub id: String,
    /// The plan that produced the rows (its header describes them).
    pub plan: Arc<PullPlan>,
    /// Each row as a JSON array.
    pub rows: Vec<String>,
    /// Where a scan gathered from other servers took its rows (None: all from here).
    pub gathered: Option<Gathered>,
}

/// Where a gathered scan's rows came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gathered {
    /// The servers that sent the rows of their partitions.
    pub from: Vec<String>,
    /// Servers that did not answer, whose partitions were read from this server's copy.
    pub copied: Vec<String>,
}

/// Each looked-up key (its column values) as the state stores it.
fn stored_keys(key_values: &[Vec<KeyValueOwned>]) -> Vec<Vec<u8>> {
    key_values
        .iter()
        .map(|vals| {
            let mut k = Vec::new();
            for v in vals {
                encode_value(&mut k, &v.as_ref());
            }
            k
        })
        .collect()
}

/// Rows (as stored) that the access path finds, within the window bounds; `None` when
/// `mode` is [`ReadMode::MemoryOnly`] and the rows are not all in memory (only key lookups
/// on unwindowed tables are tried from memory).
/// Rows read from a table's state: each row's stored value (a JSON object) and its time.
pub type StoredRows = Vec<(Vec<u8>, i64)>;

/// Which partitions' rows a read takes, by the partition of the task that wrote them
/// (None: all; rows that do not say are always taken).
pub type Held<'a> = Option<&'a dyn Fn(i32) -> bool>;

fn fetch(
    state: &StateDb,
    plan: &PullPlan,
    access: &PullAccess,
    mode: ReadMode,
    stop_after: Option<usize>,
    held: Held<'_>,
) -> Result<Option<StoredRows>, ExecError> {
    let family = plan.table.state_family();
    if !state.has_family(&family) {
        return Ok(Some(Vec::new()));
    }
    let windowed = plan.table.window.is_some();
    if mode == ReadMode::MemoryOnly && (windowed || !matches!(access, PullAccess::KeyLookup(_))) {
        return Ok(None);
    }
    let mut out: Vec<(Vec<u8>, i64)> = Vec::new();
    let full = |out: &Vec<(Vec<u8>, i64)>| stop_after.is_some_and(|n| out.len() >= n);
    let accept = |k: &[u8], v: &[u8], out: &mut Vec<(Vec<u8>, i64)>| -> bool {
        if windowed {
            match keys::split_window(k) {
                Some((_, s, e)) if plan.window.contains(s, e) => {}
                _ => return true,
            }
        }
        if let Ok(r) = rows::decode(v)
            && is_held(held, r.partition)
        {
            out.push((r.json.to_vec(), r.rowtime));
        }
        !full(out)
    };
    match access {
        PullAccess::KeyLookup(key_values) => {
            let encoded = stored_keys(key_values);
            if windowed {
                for k in encoded {
                    let to = keys::prefix_end(&k);
                    state.scan(&family, Some(&k), to.as_deref(), |kk, v| kk.len() == k.len() + 16 && accept(kk, v, &mut out) || kk.len() != k.len() + 16)?;
                }
            } else {
                let Some(found) = state.lookup(&family, &encoded, mode)? else { return Ok(None) };
                for v in found.iter().flatten() {
                    if let Ok(r) = rows::decode(v)
                        && is_held(held, r.partition)
                    {
                        out.push((r.json.to_vec(), r.rowtime));
                    }
                }
            }
        }
        PullAccess::Range { from, to } => {
            let lower = from.as_ref().map(|(v, incl)| {
                let mut k = Vec::new();
                encode_value(&mut k, &v.as_ref());
                if *incl { k } else { keys::prefix_end(&k).unwrap_or(k) }
            });
            let upper = to.as_ref().and_then(|(v, incl)| {
                let mut k = Vec::new();
                encode_value(&mut k, &v.as_ref());
                if *incl { keys::prefix_end(&k) } else { Some(k) }
            });
            state.scan(&family, lower.as_deref(), upper.as_deref(), |k, v| accept(k, v, &mut out))?;
        }
        PullAccess::Scan => state.scan(&family, None, None, |k, v| accept(k, v, &mut out))?,
    }
    Ok(Some(out))
}

fn is_held(held: Held<'_>, partition: Option<i32>) -> bool {
    match (held, partition) {
        (Some(held), Some(p)) => held(p),
        _ => true,
    }
}

/// The rows a pull query's access path finds among the partitions `held` picks (what a
/// server of a service sends the server that gathers a scan: WHERE, the SELECT list and
/// LIMIT are applied there, over every server's rows). Blocking.
pub fn fetch_rows(state: &StateDb, plan: &PullPlan, access: &PullAccess, held: &dyn Fn(i32) -> bool) -> Result<StoredRows, ExecError> {
    let early = if plan.filter.is_none() && plan.order_by.is_empty() { plan.limit.map(|l| l as usize) } else { None };
    Ok(fetch(state, plan, access, ReadMode::Any, early, Some(held))?.unwrap_or_default())
}

/// Whether a key lookup finds a row of every key here, each written by a partition
/// `held` picks (then this server answers it alone). Windowed tables and other access
/// paths: false. Blocking.
pub fn found_here(state: &StateDb, plan: &PullPlan, access: &PullAccess, held: &dyn Fn(i32) -> bool) -> Result<bool, ExecError> {
    let PullAccess::KeyLookup(key_values) = access else { return Ok(false) };
    let family = plan.table.state_family();
    if plan.table.window.is_some() || !state.has_family(&family) {
        return Ok(false);
    }
    let Some(found) = state.lookup(&family, &stored_keys(key_values), ReadMode::Any)? else { return Ok(false) };
    Ok(found.iter().all(|v| v.as_ref().and_then(|v| rows::decode(v).ok()).is_some_and(|r| r.partition.is_none_or(held))))
}

/// The partitions of the tasks that wrote the rows a key lookup finds (the servers of a
/// service that run them answer for those keys); None when `access` is not a key lookup
/// or a row does not say (it was written before rows carried their partition). Blocking.
pub fn key_partitions(state: &StateDb, plan: &PullPlan, access: &PullAccess) -> Result<Option<Vec<i32>>, ExecError> {
    let PullAccess::KeyLookup(key_values) = access else { return Ok(None) };
    let family = plan.table.state_family();
    if !state.has_family(&family) {
        return Ok(Some(Vec::new()));
    }
    let encoded = stored_keys(key_values);
    let mut partitions = Vec::new();
    let mut unknown = false;
    let mut note = |v: &[u8]| match rows::decode(v).ok().and_then(|r| r.partition) {
        Some(p) => partitions.push(p),
        None => unknown = true,
    };
    if plan.table.window.is_some() {
        for k in encoded {
            let to = keys::prefix_end(&k);
            state.scan(&family, Some(&k), to.as_deref(), |kk, v| {
                if kk.len() == k.len() + 16 {
                    note(v);
                }
                true
            })?;
        }
    } else if let Some(found) = state.lookup(&family, &encoded, ReadMode::Any)? {
        found.iter().flatten().for_each(&mut note);
    }
    partitions.sort_unstable();
    partitions.dedup();
    Ok((!unknown).then_some(partitions))
}

/// Runs a pull query reading rows by `access` (the plan's own, or a cached plan's bound
/// to other keys); returns each row as a JSON array, or `None` when `mode` is
/// [`ReadMode::MemoryOnly`] and a disk read would be needed. Blocks unless MemoryOnly.
pub fn execute(state: &StateDb, plan: &PullPlan, access: &PullAccess, mode: ReadMode) -> Result<Option<Vec<String>>, ExecError> {
    let limit = plan.limit.map(|l| l as usize);
    if limit == Some(0) {
        return Ok(Some(Vec::new()));
    }
    let early = if plan.passthrough || (plan.filter.is_none() && plan.order_by.is_empty()) { limit } else { None };
    let Some(found) = fetch(state, plan, access, mode, early, None)? else { return Ok(None) };
    finish(plan, found).map(Some)
}

/// [`execute`] over the rows of the partitions `held` picks here and `gathered` (other
/// servers' rows of theirs). Blocking.
pub fn execute_gathered(
    state: &StateDb,
    plan: &PullPlan,
    access: &PullAccess,
    held: &dyn Fn(i32) -> bool,
    gathered: StoredRows,
) -> Result<Vec<String>, ExecError> {
    if plan.limit == Some(0) {
        return Ok(Vec::new());
    }
    let mut found = fetch_rows(state, plan, access, held)?;
    found.extend(gathered);
    finish(plan, found)
}

/// WHERE, ORDER BY, LIMIT and the SELECT list over the rows found: each row as a JSON
/// array.
fn finish(plan: &PullPlan, mut found: StoredRows) -> Result<Vec<String>, ExecError> {
    let limit = plan.limit.map(|l| l as usize);
    if plan.passthrough {
        if let Some(l) = limit {
            found.truncate(l);
        }
        let mut out = Vec::with_capacity(found.len());
        for (json, _) in found {
            let row = object_values_array(&json).ok_or_else(|| ExecError::StoredRowNotObject { json: String::from_utf8_lossy(&json).into_owned() })?;
            out.push(row);
        }
        return Ok(out);
    }
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let stored = plan.stored_columns();
    let fields: Fields =
        plan.row_schema.fields().iter().take(stored).map(|f| Arc::new(Field::new(f.name(), f.data_type().clone(), true))).collect::<Vec<_>>().into();
    let mut decoder = JsonDecoder::new(fields, false);
    let inputs: Vec<Option<&[u8]>> = found.iter().map(|(j, _)| Some(j.as_slice())).collect();
    let decoded = decoder.decode(&inputs);
    let mut columns = decoded.columns;
    let rowtimes: Vec<i64> = decoded.kept.iter().map(|&i| found[i as usize].1).collect();
    columns.push(Arc::new(Int64Array::from(rowtimes)));
    let batch = RecordBatch::try_new(plan.row_schema.clone(), columns)?;
    let projection: Vec<_> = plan.columns.iter().map(|c| &c.expr).collect();
    let (projected, errors) = filter_project(&batch, plan.filter.as_ref(), &projection);
    if let Some((_, e)) = errors.first() {
        return Err(ExecError::PullEvaluation(e.clone()));
    }
    let mut out_cols = projected.columns;
    let mut n = projected.rows.len();
    if !plan.order_by.is_empty() && n > 0 {
        let input = arrow::compute::take_record_batch(&batch, &projected.rows)?;
        let mut sort_cols = Vec::new();
        for (e, asc) in &plan.order_by {
            let values: ArrayRef = evaluate(e, &input)?;
            sort_cols.push(SortColumn { values, options: Some(SortOptions { descending: !asc, nulls_first: *asc }) });
        }
        let idx: UInt32Array = lexsort_to_indices(&sort_cols, limit)?;
        out_cols = out_cols.iter().map(|c| take(c, &idx, None)).collect::<Result<_, _>>()?;
        n = idx.len();
    }
    if let Some(l) = limit
        && n > l
    {
        out_cols = out_cols.iter().map(|c| c.slice(0, l)).collect();
        n = l;
    }
    Ok(crate::format::json::encode_json_arrays(&out_cols, n)?)
}
