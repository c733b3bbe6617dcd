//! Reads one side of a join: from its source (decode, evaluate the join expression, encode
//! the side's row) or from the internal topic its repartition stage wrote (records keyed by
//! the encoded join key, valued by the side's row). Either way the join sees `SideRow`s in
//! offset order.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::Int64Type;

use super::ExecError;
use super::expr::evaluate;
use super::source::{RecordError, SourceDecoder};
use super::table_source::row_encoder;
use crate::catalog::DataSource;
use crate::format::RowEncoder;
use crate::format::json::JsonEncoder;
use crate::log::batch::{self, BatchHeader, RecordIter};
use crate::sql::compile::CompiledExpr;
use crate::sql::join_plan::{JoinPlan, JoinSide};
use crate::state::keys;

/// One row of a join input.
#[derive(Debug, Clone)]
pub struct SideRow {
    /// The encoded join key.
    pub key: Vec<u8>,
    /// The side's row as a JSON object of its joined fields and the join key; `None` for
    /// a table tombstone.
    pub payload: Option<Vec<u8>>,
    pub ts: i64,
    pub offset: i64,
    /// Row of the decoded batch it came from (direct input only).
    pub batch_row: usize,
    /// Foreign-key joins (left side): `key` is the row's primary key and this the encoded
    /// foreign key (None when null).
    pub fk: Option<Vec<u8>>,
}

/// Header carrying a repartitioned row's encoded foreign key.
pub const FK_HEADER: &str = "eddy.fk";

/// What one read of a side produced.
pub struct SideRead {
    pub rows: Vec<SideRow>,
    pub next_offset: i64,
    /// Records looked at.
    pub records: usize,
    /// Bytes of record batches read.
    pub bytes: usize,
    pub errors: Vec<RecordError>,
    /// The join key per decoded batch row (direct input).
    pub key_values: Option<ArrayRef>,
}

#[allow(clippy::large_enum_variant)]
pub enum SideInput {
    Direct {
        decoder: Box<SourceDecoder>,
        key: CompiledExpr,
        /// Foreign-key joins: the row's key columns (then `key` is the foreign key).
        row_key: Option<Vec<CompiledExpr>>,
        encoder: JsonEncoder,
        columns: usize,
        table: bool,
        /// A windowed source: rows match only rows of the same window (ksqlDB joins
        /// windowed keys on their exact bytes, window bounds included).
        windowed: bool,
        /// How many of the source's columns are key columns.
        key_columns: usize,
    },
    /// An internal topic of `SideRow`s.
    Repartitioned,
}

impl SideInput {
    /// Reads a side from a partition of its catalog source.
    pub fn direct(side: &JoinSide, source: &DataSource, plan: &JoinPlan, partition: i32) -> SideInput {
        let is_left = std::ptr::eq(side, &plan.left);
        SideInput::Direct {
            decoder: Box::new(SourceDecoder::new(source, partition)),
            key: side.key.clone(),
            row_key: if is_left { plan.left_row_key.clone() } else { None },
            encoder: row_encoder(&side.stored_fields(&plan.key_type)),
            columns: source.schema.columns().len(),
            table: side.is_table(),
            windowed: source.window.is_some(),
            key_columns: source.schema.key_count(),
        }
    }

    /// Decodes records read from offset `from` (bytes as read from the log).
    pub fn read(&mut self, data: &[u8], from: i64, partition: i32) -> Result<SideRead, ExecError> {
        match self {
            SideInput::Direct { decoder, key, row_key, encoder, columns, table, windowed, key_columns } => {
                let decoded = decoder.decode(data, from);
                let mut errors = decoded.errors;
                let mut rows = Vec::new();
                let mut key_values = None;
                if let Some(b) = &decoded.batch {
                    let n = b.num_rows();
                    let offsets = b.column(b.num_columns() - 1).as_primitive::<Int64Type>().clone();
                    let rowtime = b.column(b.num_columns() - 3).as_primitive::<Int64Type>().clone();
                    // A row whose join expression fails is reported once and skipped.
                    let mut failed = vec![false; n];
                    let keys_arr = match evaluate(key, b) {
                        Ok(k) => k,
                        Err(_) => {
                            let mut parts: Vec<ArrayRef> = Vec::with_capacity(n);
                            for (r, failed) in failed.iter_mut().enumerate() {
                                match evaluate(key, &b.slice(r, 1)) {
                                    Ok(k) => parts.push(k),
                                    Err(m) => {
                                        errors.push(RecordError {
                                            kind: super::source::RecordErrorKind::Processing,
                                            partition,
                                            offset: offsets.value(r),
                                            message: format!("the join expression failed: {m}"),
                                        });
                                        *failed = true;
                                        parts.push(arrow::array::new_null_array(&key.ty.to_arrow(), 1));
                                    }
                                }
                            }
                            let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
                            arrow::compute::concat(&refs)?
                        }
                    };
                    let mut cols: Vec<ArrayRef> = b.columns()[..*columns].to_vec();
                    if *windowed {
                        // A windowed source's window bounds follow its key columns (see
                        // `join_plan::draft`); the decoded batch has them after its columns.
                        let at = *key_columns;
                        cols.splice(at..at, [b.column(*columns).clone(), b.column(*columns + 1).clone()]);
                    }
                    // ROWTIME, ROWPARTITION and ROWOFFSET end every decoded batch.
                    cols.extend_from_slice(&b.columns()[b.num_columns() - crate::sql::join_plan::SIDE_PSEUDO_COLUMNS.len()..]);
                    cols.push(keys_arr.clone());
                    let payloads = encoder.encode(&cols, n)?;
                    // The row identity: the join key, or for a foreign-key join the row's key.
                    let key_cols: Vec<ArrayRef> = match row_key {
                        Some(rk) => rk.iter().map(|k| evaluate(k, b)).collect::<Result<_, _>>()?,
                        None => vec![keys_arr.clone()],
                    };
                    let fk_cols = [keys_arr.clone()];
                    // A windowed source's decoded batch has its window bounds after its columns.
                    let bounds =
                        windowed.then(|| (b.column(*columns).as_primitive::<Int64Type>().clone(), b.column(*columns + 1).as_primitive::<Int64Type>().clone()));
                    for r in (0..n).filter(|&r| !failed[r]) {
                        if key_cols.iter().any(|k| k.is_null(r)) {
                            errors.push(RecordError {
                                kind: super::source::RecordErrorKind::Processing,
                                partition,
                                offset: offsets.value(r),
                                message: "the join key is null; the record was skipped".into(),
                            });
                            continue;
                        }
                        let mut k = Vec::new();
                        keys::encode_row(&key_cols, r, &mut k);
                        if let Some((start, end)) = &bounds {
                            keys::push_window(&mut k, start.value(r), end.value(r));
                        }
                        let fk = (row_key.is_some() && keys_arr.is_valid(r)).then(|| {
                            let mut f = Vec::new();
                            keys::encode_row(&fk_cols, r, &mut f);
                            f
                        });
                        let tombstone = *table && decoded.tombstones.get(r).copied().unwrap_or(false);
                        let payload = if tombstone { None } else { payloads.get(r).map(<[u8]>::to_vec) };
                        rows.push(SideRow { key: k, payload, ts: rowtime.value(r), offset: offsets.value(r), batch_row: r, fk });
                    }
                    // What a re-keying writer partitions by: the join key. (A foreign-key
                    // join's sides go to one partition.)
                    key_values = Some(keys_arr);
                }
                errors.sort_by_key(|e| e.offset);
                Ok(SideRead { rows, next_offset: decoded.next_offset, records: decoded.records, bytes: data.len(), errors, key_values })
            }
            SideInput::Repartitioned => {
                let mut next = from;
                let mut rows = Vec::new();
                for b in batch::split_batches(data) {
                    let h = BatchHeader::parse(b)?;
                    next = next.max(h.last_offset() + 1);
                    if h.is_control() {
                        continue;
                    }
                    let (h, p) = batch::payload(b)?;
                    for r in RecordIter::over(h, &p) {
                        let r = r?;
                        if r.offset < from {
                            continue;
                        }
                        let Some(k) = r.key else { continue };
                        let fk = r.headers.iter().find(|h| h.key == FK_HEADER.as_bytes()).and_then(|h| h.value).map(<[u8]>::to_vec);
                        rows.push(SideRow { key: k.to_vec(), payload: r.value.map(<[u8]>::to_vec), ts: r.timestamp, offset: r.offset, batch_row: 0, fk });
                    }
                }
                let records = rows.len();
                Ok(SideRead { rows, next_offset: next, records, bytes: data.len(), errors: Vec::new(), key_values: None })
            }
        }
    }
}

/// Rows to process now, and where each input resumes (the first row left for later).
pub struct Merged {
    pub rows: Vec<(Side, SideRow)>,
    pub left_resume: Option<i64>,
    pub right_resume: Option<i64>,
}

/// Both sides' rows in processing order: by timestamp, each side in offset order (the head
/// with the smaller timestamp goes first; on a tie `first_on_tie`). When one side's rows
/// run out while its input has more to read, the merge stops there: what that input holds
/// next may come before the other side's remaining rows, which wait for the next step.
pub fn merge_by_time(left: Vec<SideRow>, right: Vec<SideRow>, first_on_tie: Side, left_more: bool, right_more: bool) -> Merged {
    let mut rows = Vec::with_capacity(left.len() + right.len());
    let mut l = left.into_iter().peekable();
    let mut r = right.into_iter().peekable();
    loop {
        let take_left = match (l.peek(), r.peek()) {
            (Some(a), Some(b)) => a.ts < b.ts || (a.ts == b.ts && first_on_tie == Side::Left),
            (Some(_), None) if right_more => break,
            (Some(_), None) => true,
            (None, Some(_)) if left_more => break,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        if take_left {
            rows.extend(l.next().map(|x| (Side::Left, x)));
        } else {
            rows.extend(r.next().map(|x| (Side::Right, x)));
        }
    }
    Merged { rows, left_resume: l.peek().map(|x| x.offset), right_resume: r.peek().map(|x| x.offset) }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
}

impl Side {
    pub fn tag(self) -> u8 {
        match self {
            Side::Left => b'L',
            Side::Right => b'R',
        }
    }

    pub fn other(self) -> Side {
        match self {
            Side::Left => Side::Right,
            Side::Right => Side::Left,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ts: i64, offset: i64) -> SideRow {
        SideRow { key: vec![1], payload: Some(b"{}".to_vec()), ts, offset, batch_row: 0, fk: None }
    }

    #[test]
    fn merge_keeps_each_sides_offset_order_and_interleaves_by_head_timestamp() {
        let left = vec![row(10, 0), row(5, 1), row(30, 2)];
        let right = vec![row(10, 0), row(20, 1)];
        let merged: Vec<(Side, i64)> =
            merge_by_time(left.clone(), right.clone(), Side::Right, false, false).rows.into_iter().map(|(s, r)| (s, r.offset)).collect();
        assert_eq!(merged, vec![(Side::Right, 0), (Side::Left, 0), (Side::Left, 1), (Side::Right, 1), (Side::Left, 2)]);
        // The right input has more to read: the left row after its last one waits.
        let m = merge_by_time(left, right, Side::Right, false, true);
        assert_eq!(m.rows.len(), 4);
        assert_eq!((m.left_resume, m.right_resume), (Some(2), None));
    }
}
