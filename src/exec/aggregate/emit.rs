//! The aggregation's output side: result rows for the groups a step updated (an
//! `Emission` each), materialized in the table, and sent to the output topic at once or
//! through ksqlDB's record cache (`super::super::record_cache`).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, UInt32Array, new_null_array};
use arrow::compute::{concat, take};

use super::{AggregateTask, PreAgg};
use crate::catalog::WindowType;
use crate::exec::ExecError;
use crate::exec::expr::{evaluate, filter_project};
use crate::exec::record_cache::CachedRow;
use crate::exec::sink::WindowKeys;
use crate::exec::source::{RecordError, RecordErrorKind};
use crate::format::{RowDecoder, RowEncoder};
use crate::state::{StateBatch, rows};

/// One output row to produce.
pub(super) struct Emission {
    /// Row of the step's input the group values come from (None: use `group_json`).
    pub(super) row: Option<usize>,
    pub(super) group_json: Vec<u8>,
    pub(super) key: Vec<u8>,
    pub(super) start: i64,
    pub(super) end: i64,
    /// Aggregate results (one-row arrays); None for a tombstone.
    pub(super) aggs: Option<Vec<ArrayRef>>,
    pub(super) rowtime: i64,
}

impl Emission {
    /// What the record cache counts for this update: its key and value, and a map entry.
    fn cached_bytes(&self) -> u64 {
        let aggs: usize = self.aggs.iter().flatten().map(|a| a.get_array_memory_size()).sum();
        (self.key.len() + self.group_json.len() + aggs + 64) as u64
    }
}

/// The record cache: of a step's updates to one group (key and window), only the last
/// goes out, in the place of that last update, as a cache of `capacity` bytes keeps them:
/// when a group not in it would overflow it, the groups in it go out first. A step is
/// one commit.
pub(super) fn coalesced(emissions: Vec<Emission>, capacity: u64) -> Vec<Emission> {
    let mut keep = vec![false; emissions.len()];
    {
        let mut cached: std::collections::HashMap<(&[u8], i64, i64), usize> = std::collections::HashMap::new();
        let mut used = 0u64;
        for (i, e) in emissions.iter().enumerate() {
            let group = (e.key.as_slice(), e.start, e.end);
            if let Some(at) = cached.get_mut(&group) {
                *at = i;
                continue;
            }
            let size = e.cached_bytes();
            if used + size > capacity && !cached.is_empty() {
                cached.drain().for_each(|(_, at)| keep[at] = true);
                used = 0;
            }
            cached.insert(group, i);
            used += size;
        }
        cached.into_values().for_each(|at| keep[at] = true);
    }
    emissions.into_iter().zip(keep).filter_map(|(e, k)| k.then_some(e)).collect()
}

impl AggregateTask {
    /// Materializes the emissions' result rows in the table, and sends them to the output
    /// topic: at once, or through the record cache when `cached`.
    pub(super) fn emit(&mut self, pre: Option<&PreAgg>, emissions: Vec<Emission>, batch: &mut StateBatch, cached: bool) -> Result<(), ExecError> {
        if emissions.is_empty() {
            return Ok(());
        }
        let n = emissions.len();
        // Group values: from the input rows, or from the stored JSON of closed windows.
        let mut group_cols: Vec<ArrayRef> = Vec::new();
        if emissions.iter().all(|e| e.row.is_some()) {
            let pre = pre.expect("rows come from an input");
            let idx = UInt32Array::from(emissions.iter().map(|e| e.row.expect("checked") as u32).collect::<Vec<_>>());
            for g in &pre.groups {
                group_cols.push(take(g, &idx, None)?);
            }
        } else {
            let inputs: Vec<Option<&[u8]>> = emissions.iter().map(|e| Some(e.group_json.as_slice())).collect();
            let d = self.group_decoder.decode(&inputs);
            if d.kept.len() != n {
                return Err(ExecError::Invariant("stored grouping values are unreadable"));
            }
            group_cols = d.columns;
        }
        let tomb: Vec<bool> = emissions.iter().map(|e| e.aggs.is_none()).collect();
        let mut columns = group_cols;
        for (j, a) in self.plan.aggregates.iter().enumerate() {
            let parts: Vec<ArrayRef> = emissions
                .iter()
                .map(|e| match &e.aggs {
                    Some(v) => v[j].clone(),
                    None => new_null_array(&a.output.to_arrow(), 1),
                })
                .collect();
            let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
            columns.push(concat(&refs)?);
        }
        let starts = Int64Array::from(emissions.iter().map(|e| e.start).collect::<Vec<_>>());
        let ends = Int64Array::from(emissions.iter().map(|e| e.end).collect::<Vec<_>>());
        if self.plan.window.is_some() {
            columns.push(Arc::new(starts.clone()));
            columns.push(Arc::new(ends.clone()));
        }
        let aggregated = RecordBatch::try_new(self.plan.agg_schema.clone(), columns)?;
        let projection: Vec<_> = self.plan.columns.iter().map(|c| &c.expr).collect();
        let (projected, errors) = filter_project(&aggregated, None, &projection);
        if !errors.is_empty() {
            let errs: Vec<RecordError> = errors
                .into_iter()
                .map(|(_, m)| RecordError { kind: RecordErrorKind::Processing, partition: self.partition.id(), offset: self.position, message: m.to_string() })
                .collect();
            self.stats.record_errors(&self.name, self.partition.topic(), &errs);
        }
        let rows: Vec<usize> = projected.rows.values().iter().map(|&r| r as usize).collect();
        let mut tombstones: Vec<bool> = rows.iter().map(|&r| tomb[r]).collect();
        let m = rows.len();
        // Rows of the output topic: a row HAVING rejects is a tombstone only when the
        // key's previous result passed HAVING (as a filtered KTable forwards it).
        let mut to_topic = vec![true; m];
        if let Some(h) = &self.plan.having {
            let mask = evaluate(h, &aggregated)?;
            let mask = mask.as_boolean();
            let mut present: HashMap<Vec<u8>, bool> = HashMap::new();
            for (i, &r) in rows.iter().enumerate() {
                let e = &emissions[r];
                let k = Self::tbl_key(&e.key, self.plan.window.as_ref().map(|_| (e.start, e.end)));
                let was = match present.get(&k) {
                    Some(p) => *p,
                    None => match self.pending.rows.get(&k) {
                        Some(row) => row.is_some(),
                        None => self.state.get(&self.tfamily, &k)?.is_some(),
                    },
                };
                let kept = mask.is_valid(r) && mask.value(r);
                if !kept && !tombstones[i] {
                    tombstones[i] = true;
                    to_topic[i] = was;
                }
                present.insert(k, !tombstones[i]);
            }
        }
        let timestamps: Vec<i64> = rows.iter().map(|&r| emissions[r].rowtime).collect();
        let (w_starts, w_ends): (Vec<i64>, Vec<i64>) = rows.iter().map(|&r| (emissions[r].start, emissions[r].end)).unzip();
        // Materialized rows: keys, window bounds, values.
        let nkeys = self.plan.output.key_count();
        let mut row_cols: Vec<ArrayRef> = Vec::new();
        for (i, &idx) in self.output_order.iter().enumerate() {
            if i == nkeys && self.plan.window.is_some() {
                row_cols.push(Arc::new(Int64Array::from(w_starts.clone())));
                row_cols.push(Arc::new(Int64Array::from(w_ends.clone())));
            }
            row_cols.push(projected.columns[idx].clone());
        }
        if nkeys == self.output_order.len() && self.plan.window.is_some() {
            row_cols.push(Arc::new(Int64Array::from(w_starts.clone())));
            row_cols.push(Arc::new(Int64Array::from(w_ends.clone())));
        }
        let json = self.row_encoder.encode(&row_cols, m)?;
        let mut cache_out = Vec::new();
        let now = chrono::Utc::now().timestamp_millis();
        let defers = self.defers_commits();
        for (i, &r) in rows.iter().enumerate() {
            let e = &emissions[r];
            let window = self.plan.window.as_ref().map(|_| (e.start, e.end));
            let k = Self::tbl_key(&e.key, window);
            let row = if tombstones[i] { Some(None) } else { json.get(i).map(|j| Some(rows::encode(e.rowtime, now, self.partition.id(), j))) };
            match row {
                // Deferred: only a key's last row is written.
                Some(row) if defers => {
                    self.pending.rows.insert(k.clone(), row);
                }
                Some(Some(v)) => batch.put(&self.tfamily, k.clone(), v),
                Some(None) => batch.delete(&self.tfamily, k.clone()),
                None => {}
            }
            if cached && to_topic[i] {
                let row = CachedRow::new(e.rowtime, (e.start, e.end), tombstones[i], json.get(i).map(<[u8]>::to_vec).unwrap_or_default());
                if let Some(cache) = &mut self.record_cache {
                    cache.put(k, row, batch, &mut cache_out);
                }
            }
        }
        if cached {
            return self.write_cached(cache_out);
        }
        let appended = if to_topic.iter().all(|t| *t) {
            let windows = self.plan.window.as_ref().map(|w| WindowKeys { starts: &w_starts, ends: &w_ends, session: w.kind == WindowType::Session });
            self.sink.write_rows(&projected.columns, m, &timestamps, self.partition.id(), windows, Some(&tombstones))?
        } else {
            let pick = |v: &[i64]| v.iter().zip(&to_topic).filter(|(_, t)| **t).map(|(x, _)| *x).collect::<Vec<_>>();
            let idx = UInt32Array::from((0..m as u32).filter(|&i| to_topic[i as usize]).collect::<Vec<_>>());
            let cols = projected.columns.iter().map(|c| take(c, &idx, None)).collect::<Result<Vec<_>, _>>()?;
            let (ts, ws, we) = (pick(&timestamps), pick(&w_starts), pick(&w_ends));
            let tb: Vec<bool> = tombstones.iter().zip(&to_topic).filter(|(_, t)| **t).map(|(x, _)| *x).collect();
            let windows = self.plan.window.as_ref().map(|w| WindowKeys { starts: &ws, ends: &we, session: w.kind == WindowType::Session });
            self.sink.write_rows(&cols, idx.len(), &ts, self.partition.id(), windows, Some(&tb))?
        };
        self.stats.record_output_at(self.partition.id(), appended);
        Ok(())
    }

    /// Sends rows the record cache let out to the output topic.
    pub(super) fn write_cached(&mut self, cached: Vec<CachedRow>) -> Result<(), ExecError> {
        if cached.is_empty() {
            return Ok(());
        }
        let n = cached.len();
        let inputs: Vec<Option<&[u8]>> = cached.iter().map(|r| Some(r.json.as_slice())).collect();
        let decoded = self.row_decoder.decode(&inputs);
        if decoded.kept.len() != n {
            return Err(ExecError::Invariant("a row waiting in the record cache is unreadable"));
        }
        let columns: Vec<ArrayRef> = self.select_pos.iter().map(|&p| decoded.columns[p].clone()).collect();
        let timestamps: Vec<i64> = cached.iter().map(|r| r.rowtime).collect();
        let (starts, ends): (Vec<i64>, Vec<i64>) = cached.iter().map(|r| (r.start, r.end)).unzip();
        let tombstones: Vec<bool> = cached.iter().map(|r| r.tombstone).collect();
        let windows = self.plan.window.as_ref().map(|w| WindowKeys { starts: &starts, ends: &ends, session: w.kind == WindowType::Session });
        let appended = self.sink.write_rows(&columns, n, &timestamps, self.partition.id(), windows, Some(&tombstones))?;
        self.stats.record_output_at(self.partition.id(), appended);
        Ok(())
    }

    /// Lets the record cache's rows out when the commit interval has passed.
    pub(super) fn flush_if_due(&mut self, batch: &mut StateBatch) -> Result<bool, ExecError> {
        match self.record_cache.as_mut().filter(|c| c.due()).map(|c| c.drain(batch)) {
            Some(rows) => self.write_cached(rows).map(|()| true),
            None => Ok(false),
        }
    }
}
