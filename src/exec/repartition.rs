//! The repartition stage of an aggregation whose grouping key is not the source key:
//! evaluates WHERE, the grouping expressions and the aggregate arguments, and writes each
//! row to an internal topic keyed (and partitioned, murmur2) by the encoded grouping key,
//! so every group's state lives in exactly one aggregation task. For a table source it
//! also remembers each row's previous contribution and first sends a retraction of it.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::take;

use super::aggregate::{RETRACT_HEADER, SAME_GROUP_UPDATE, payload_fields};

/// Whether a repartitioned row retracts an earlier contribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retraction {
    None,
    Alone,
    /// The source row's new contribution, to the same group, follows directly.
    SameGroupUpdate,
}
use super::ExecError;
use super::checkpoint::{self, TaskCheckpoint};
use super::expr::{evaluate, filter_project};
use super::sink::{IdempotentWriter, OutRecord};
use super::source::{RecordError, SourceDecoder};
use super::stats::QueryStats;
use super::task::{PartitionTask, StepOutcome, read_input};
use crate::catalog::SourceKind;
use crate::catalog::types::ColumnKind;
use crate::format::RowEncoder;
use crate::format::json::JsonEncoder;
use crate::log::murmur2::partition_for_key;
use crate::log::{Log, PartitionStore};
use crate::sql::aggregate_plan::AggregatePlan;
use crate::state::{StateBatch, StateDb, keys};

fn prior_key(source_key: &[u8]) -> Vec<u8> {
    let mut k = vec![b'p'];
    k.extend_from_slice(source_key);
    k
}

fn encode_prior(group_key: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut v = (group_key.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(group_key);
    v.extend_from_slice(payload);
    v
}

fn decode_prior(v: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = u32::from_be_bytes(v.get(..4)?.try_into().ok()?) as usize;
    Some((v.get(4..4 + n)?, v.get(4 + n..)?))
}

pub struct RepartitionTask {
    pub name: String,
    pub partition: Arc<dyn PartitionStore>,
    pub position: i64,
    decoder: SourceDecoder,
    plan: Arc<AggregatePlan>,
    writer: IdempotentWriter,
    state: Arc<StateDb>,
    qfamily: String,
    stats: Arc<QueryStats>,
    log: Arc<Log>,
    encoder: JsonEncoder,
    source_key_cols: Vec<usize>,
    /// The checkpoint the task started from (until it commits one).
    resume_from: TaskCheckpoint,
}

impl RepartitionTask {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: String,
        partition: Arc<dyn PartitionStore>,
        position: i64,
        plan: Arc<AggregatePlan>,
        writer: IdempotentWriter,
        state: Arc<StateDb>,
        qfamily: String,
        stats: Arc<QueryStats>,
        log: Arc<Log>,
    ) -> Self {
        let fields = payload_fields(&plan);
        let source_key_cols = plan.source.schema.columns().iter().enumerate().filter(|(_, c)| c.kind == ColumnKind::Key).map(|(i, _)| i).collect();
        let resume_from = TaskCheckpoint { offset: position, sink: writer.checkpoint(), stream_time: i64::MIN };
        RepartitionTask {
            resume_from,
            name,
            decoder: SourceDecoder::new(&plan.source, partition.id()),
            partition,
            position,
            encoder: crate::exec::table_source::row_encoder(&fields),
            plan,
            writer,
            state,
            qfamily,
            stats,
            log,
            source_key_cols,
        }
    }
}

impl PartitionTask for RepartitionTask {
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

    fn rewind(&mut self) -> Result<(), ExecError> {
        let cp = checkpoint::committed(&self.state, &self.name, self.partition.topic(), self.partition.id(), &self.resume_from)?;
        self.position = cp.offset;
        self.writer.reset(&cp.sink);
        Ok(())
    }

    fn step(&mut self) -> Result<StepOutcome, ExecError> {
        let Some(data) = read_input(self.partition.as_ref(), &mut self.position)? else {
            return Ok(StepOutcome::Progress);
        };
        let pid = self.partition.id();
        let decoded = self.decoder.decode(&data, self.position);
        self.stats.record_input_at(pid, decoded.records, data.len());
        let mut errors = decoded.errors.clone();
        let mut batch = StateBatch::default();
        let n_parts = self.writer.topic().partition_count();
        // Owned record parts; OutRecord borrows them.
        type Owned = (i32, Vec<u8>, Vec<u8>, Retraction, i64);
        let mut out: Vec<Owned> = Vec::new();
        if let Some(b) = &decoded.batch {
            let is_table = self.plan.source.kind == SourceKind::Table;
            let exprs: Vec<_> = self.plan.group_by.iter().chain(self.plan.aggregates.iter().flat_map(|a| a.args.iter())).collect();
            let filter = if is_table { None } else { self.plan.filter.as_ref() };
            let (projected, row_errors) = filter_project(b, filter, &exprs);
            let offsets = b.column(b.num_columns() - 1).as_primitive::<arrow::datatypes::Int64Type>().clone();
            for (row, message) in row_errors {
                errors.push(RecordError {
                    kind: super::source::RecordErrorKind::Processing,
                    partition: pid,
                    offset: offsets.value(row),
                    message: message.to_string(),
                });
            }
            let rowtime = take(b.column(b.num_columns() - 3), &projected.rows, None)?;
            let rowtime = rowtime.as_primitive::<arrow::datatypes::Int64Type>();
            let payloads = self.encoder.encode(&projected.columns, projected.num_rows())?;
            let ng = self.plan.group_by.len();
            let groups: Vec<ArrayRef> = projected.columns[..ng].to_vec();
            let keep = match (&self.plan.filter, is_table) {
                (Some(f), true) => Some(evaluate(f, b)?),
                _ => None,
            };
            let source_keys: Vec<ArrayRef> = self.source_key_cols.iter().map(|&i| b.column(i).clone()).collect();
            let mut overlay: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::new();
            for (i, &r) in projected.rows.values().iter().enumerate() {
                let r = r as usize;
                let group_key = if groups.iter().any(|g| g.is_null(i)) {
                    None
                } else {
                    let mut k = Vec::new();
                    keys::encode_row(&groups, i, &mut k);
                    Some(k)
                };
                let payload = payloads.get(i).unwrap_or_default().to_vec();
                if !is_table {
                    match group_key {
                        Some(k) => out.push((partition_for_key(&k, n_parts), k, payload, Retraction::None, rowtime.value(i))),
                        None => errors.push(RecordError {
                            kind: super::source::RecordErrorKind::Processing,
                            partition: pid,
                            offset: offsets.value(r),
                            message: "a GROUP BY value is null; the record was skipped".into(),
                        }),
                    }
                    continue;
                }
                // Table: retract what this key contributed before, then add the new row.
                let mut sk = Vec::new();
                keys::encode_row(&source_keys, r, &mut sk);
                let pk = prior_key(&sk);
                let prior = match overlay.get(&pk) {
                    Some(p) => p.clone(),
                    None => self.state.get(&self.qfamily, &pk)?,
                };
                let mut retraction: Option<(usize, Vec<u8>)> = None;
                if let Some(prior) = &prior
                    && let Some((gk, pl)) = decode_prior(prior)
                {
                    retraction = Some((out.len(), gk.to_vec()));
                    out.push((partition_for_key(gk, n_parts), gk.to_vec(), pl.to_vec(), Retraction::Alone, rowtime.value(i)));
                }
                let passes = keep.as_ref().is_none_or(|k| {
                    let k = k.as_boolean();
                    k.is_valid(r) && k.value(r)
                });
                let deleted = decoded.tombstones.get(r).copied().unwrap_or(false);
                let new = match group_key {
                    Some(k) if passes && !deleted => {
                        if let Some((at, gk)) = &retraction
                            && *gk == k
                        {
                            out[*at].3 = Retraction::SameGroupUpdate;
                        }
                        out.push((partition_for_key(&k, n_parts), k.clone(), payload.clone(), Retraction::None, rowtime.value(i)));
                        Some(encode_prior(&k, &payload))
                    }
                    None if passes && !deleted => {
                        errors.push(RecordError {
                            kind: super::source::RecordErrorKind::Processing,
                            partition: pid,
                            offset: offsets.value(r),
                            message: "a GROUP BY value is null; the row was left out".into(),
                        });
                        None
                    }
                    _ => None,
                };
                match &new {
                    Some(v) => batch.put(&self.qfamily, pk.clone(), v.clone()),
                    None => batch.delete(&self.qfamily, pk.clone()),
                }
                overlay.insert(pk, new);
            }
        }
        let retract_header: &[u8] = RETRACT_HEADER.as_bytes();
        let records: Vec<OutRecord<'_>> = out
            .iter()
            .map(|(p, k, v, retract, ts)| OutRecord {
                partition: *p,
                key: Some(k),
                value: Some(v),
                headers: match retract {
                    Retraction::None => Vec::new(),
                    Retraction::Alone => vec![(retract_header, None)],
                    Retraction::SameGroupUpdate => vec![(retract_header, Some(SAME_GROUP_UPDATE))],
                },
                timestamp: *ts,
            })
            .collect();
        self.writer.write(&records)?;
        errors.sort_by_key(|e| e.offset);
        self.stats.record_errors(&self.name, self.partition.topic(), &errors);
        self.position = decoded.next_offset;
        let cp = TaskCheckpoint { offset: self.position, sink: self.writer.checkpoint(), stream_time: i64::MIN };
        checkpoint::put(&mut batch, &self.name, self.partition.topic(), self.partition.id(), &cp)?;
        self.state.write(batch, true)?;
        self.log.offsets().commit_unsynced(&self.name, &[(self.partition.topic(), self.partition.id(), self.position, "")])?;
        self.stats.set_progress(self.partition.id(), self.position, self.partition.end_offset());
        Ok(StepOutcome::Progress)
    }
}
