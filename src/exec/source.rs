//! The source operator: turns record batches read from a partition into Arrow batches with
//! the source's key and value columns and the pseudo-columns ROWTIME, ROWPARTITION and
//! ROWOFFSET. Records that do not decode are reported with their offset and skipped.

use crate::format::java_time::JavaPattern;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int32Array, Int64Array, RecordBatch, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::{DataType, SchemaRef};

use crate::catalog::DataSource;
use crate::catalog::types::ColumnKind;
use crate::format::{Role, RowDecoder};
use crate::log::batch::Header;
use crate::log::batch::{self, BatchHeader, RecordIter};

/// Why a record could not be used, as ksqlDB's processing log tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordErrorKind {
    /// Its key or value did not decode in the source's format.
    Deserialization,
    /// Evaluating the query on it failed (an expression, a null key, ...).
    Processing,
}

/// A record that could not be used, by offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub kind: RecordErrorKind,
    pub partition: i32,
    pub offset: i64,
    pub message: String,
}

/// What one call to `SourceDecoder::decode` produced.
pub struct Decoded {
    /// Rows in offset order; `None` when no record survived.
    pub batch: Option<RecordBatch>,
    /// The offset after the last record looked at.
    pub next_offset: i64,
    /// Records looked at (including bad ones).
    pub records: usize,
    pub errors: Vec<RecordError>,
    /// Per row of `batch`: whether the record was a tombstone (null value). Only tables
    /// keep tombstones; their value columns are null.
    pub tombstones: Vec<bool>,
}

/// Where each schema column of a source comes from.
#[derive(Debug, Clone)]
enum ColumnSource {
    Key(usize),
    Value(usize),
    /// All headers (None) or the last value of one header.
    Header(Option<String>),
}

pub struct SourceDecoder {
    schema: SchemaRef,
    layout: Vec<ColumnSource>,
    key_decoder: Box<dyn RowDecoder>,
    value_decoder: Box<dyn RowDecoder>,
    key_count: usize,
    /// Column (index in `schema`) that holds event time, when not the record timestamp.
    timestamp_column: Option<usize>,
    /// chrono pattern for a STRING timestamp column.
    timestamp_format: Option<JavaPattern>,
    /// Keep records with a null value (tables: they delete the key).
    keep_tombstones: bool,
    /// A windowed source's keys end with the window: (session, size of time windows).
    window: Option<(bool, i64)>,
    partition: i32,
}

impl SourceDecoder {
    /// Also yields a stream's records without a value (as rows of null values flagged in
    /// `tombstones`), for a projection that passes them on as records without a value,
    /// as ksqlDB does.
    pub fn keeping_null_values(mut self) -> SourceDecoder {
        self.keep_tombstones = true;
        self
    }

    pub fn new(source: &DataSource, partition: i32) -> SourceDecoder {
        let keys: Vec<_> = source.schema.key_columns().collect();
        let values: Vec<_> = source.schema.value_columns().collect();
        let schema = source.query_schema();
        let timestamp_column = source.timestamp.as_ref().and_then(|t| schema.index_of(&t.column).ok());
        let (mut k, mut v) = (0, 0);
        let layout = source
            .schema
            .columns()
            .iter()
            .map(|c| match c.kind {
                ColumnKind::Key => {
                    k += 1;
                    ColumnSource::Key(k - 1)
                }
                ColumnKind::Value => {
                    v += 1;
                    ColumnSource::Value(v - 1)
                }
                ColumnKind::Header => ColumnSource::Header(c.header_key.clone()),
            })
            .collect();
        SourceDecoder {
            timestamp_format: source.timestamp.as_ref().and_then(|t| t.format.as_deref()).map(JavaPattern::compile),
            keep_tombstones: source.kind == crate::catalog::SourceKind::Table,
            layout,
            key_decoder: source.key_format.decoder(&keys, Role::Key),
            value_decoder: source.value_format.decoder(&values, Role::Value),
            key_count: keys.len(),
            schema,
            timestamp_column,
            window: source.window.map(|w| (w == crate::catalog::WindowType::Session, source.window_size_ms.unwrap_or(0))),
            partition,
        }
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Decodes the records with offset >= `from` in `data` (whole record batches).
    pub fn decode(&mut self, data: &[u8], from: i64) -> Decoded {
        let mut keys: Vec<Option<&[u8]>> = Vec::new();
        let mut values: Vec<Option<&[u8]>> = Vec::new();
        let mut timestamps: Vec<i64> = Vec::new();
        let mut offsets: Vec<i64> = Vec::new();
        let mut headers: Vec<Vec<crate::log::batch::Header<'_>>> = Vec::new();
        let mut errors = Vec::new();
        let mut next_offset = from;
        let mut records = 0usize;
        // Decompress first, so every record can borrow from `payloads` for the whole call.
        let mut payloads = Vec::new();
        for b in batch::split_batches(data) {
            let header = match BatchHeader::parse(b) {
                Ok(h) => h,
                Err(e) => {
                    errors.push(RecordError { kind: RecordErrorKind::Deserialization, partition: self.partition, offset: next_offset, message: e.to_string() });
                    break;
                }
            };
            next_offset = next_offset.max(header.last_offset() + 1);
            if header.is_control() {
                continue;
            }
            match batch::payload(b) {
                Ok((h, p)) => payloads.push((h, p)),
                Err(e) => errors.push(RecordError {
                    kind: RecordErrorKind::Deserialization,
                    partition: self.partition,
                    offset: header.base_offset,
                    message: e.to_string(),
                }),
            }
        }
        for (header, payload) in &payloads {
            for r in RecordIter::over(*header, payload) {
                match r {
                    Ok(r) if r.offset < from => {}
                    Ok(r) => {
                        records += 1;
                        if r.value.is_none() && !self.keep_tombstones {
                            // A stream has no tombstones: a record without a value carries no row.
                            continue;
                        }
                        keys.push(r.key);
                        values.push(r.value);
                        timestamps.push(r.timestamp);
                        offsets.push(r.offset);
                        headers.push(r.headers);
                    }
                    Err(e) => {
                        errors.push(RecordError {
                            kind: RecordErrorKind::Deserialization,
                            partition: self.partition,
                            offset: header.base_offset,
                            message: e.to_string(),
                        });
                        break;
                    }
                }
            }
        }
        // A windowed key: the key's bytes, then (sessions) the end, then the start.
        let mut window_bounds: Vec<(i64, i64)> = Vec::new();
        if let Some((session, size)) = self.window {
            let suffix = if session { 16 } else { 8 };
            let mut i = 0;
            while i < keys.len() {
                match keys[i] {
                    Some(k) if k.len() >= suffix => {
                        let at = |o: usize| i64::from_be_bytes(k[o..o + 8].try_into().expect("8 bytes"));
                        let start = at(k.len() - 8);
                        let end = if session { at(k.len() - 16) } else { start.saturating_add(size) };
                        keys[i] = Some(&k[..k.len() - suffix]);
                        window_bounds.push((start, end));
                        i += 1;
                    }
                    _ => {
                        errors.push(RecordError {
                            kind: RecordErrorKind::Deserialization,
                            partition: self.partition,
                            offset: offsets[i],
                            message: "key: not a windowed key (too short for its window bounds)".into(),
                        });
                        for list in [&mut keys, &mut values] {
                            list.remove(i);
                        }
                        timestamps.remove(i);
                        offsets.remove(i);
                        headers.remove(i);
                    }
                }
            }
        }
        if values.is_empty() {
            return Decoded { batch: None, next_offset, records, errors, tombstones: Vec::new() };
        }
        let v = self.value_decoder.decode(&values);
        for (i, msg) in &v.errors {
            errors.push(RecordError {
                kind: RecordErrorKind::Deserialization,
                partition: self.partition,
                offset: offsets[*i as usize],
                message: format!("value: {msg}"),
            });
        }
        let kept_keys: Vec<Option<&[u8]>> = v.kept.iter().map(|&i| keys[i as usize]).collect();
        let k = if self.key_count > 0 { Some(self.key_decoder.decode(&kept_keys)) } else { None };
        // Rows (positions in v.kept) whose key also decoded.
        let (rows, key_columns): (Vec<u32>, Vec<ArrayRef>) = match &k {
            Some(k) => {
                for (i, msg) in &k.errors {
                    let orig = v.kept[*i as usize] as usize;
                    errors.push(RecordError {
                        kind: RecordErrorKind::Deserialization,
                        partition: self.partition,
                        offset: offsets[orig],
                        message: format!("key: {msg}"),
                    });
                }
                (k.kept.clone(), k.columns.clone())
            }
            None => ((0..v.kept.len() as u32).collect(), Vec::new()),
        };
        if rows.is_empty() {
            errors.sort_by_key(|e| e.offset);
            return Decoded { batch: None, next_offset, records, errors, tombstones: Vec::new() };
        }
        let take_idx = UInt32Array::from(rows.clone());
        let all_rows = rows.len() == v.kept.len();
        let value_columns: Vec<ArrayRef> =
            if all_rows { v.columns.clone() } else { v.columns.iter().map(|c| take(c, &take_idx, None).expect("indices in range")).collect() };
        let source_rows: Vec<usize> = rows.iter().map(|&r| v.kept[r as usize] as usize).collect();
        let n = source_rows.len();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.layout.len() + 3);
        for src in &self.layout {
            columns.push(match src {
                ColumnSource::Key(i) => key_columns[*i].clone(),
                ColumnSource::Value(i) => value_columns[*i].clone(),
                ColumnSource::Header(key) => header_column(key.as_deref(), &source_rows, &headers),
            });
        }
        if self.window.is_some() {
            columns.push(Arc::new(Int64Array::from(source_rows.iter().map(|&i| window_bounds[i].0).collect::<Vec<_>>())));
            columns.push(Arc::new(Int64Array::from(source_rows.iter().map(|&i| window_bounds[i].1).collect::<Vec<_>>())));
        }
        let mut rowtime: Vec<i64> = source_rows.iter().map(|&i| timestamps[i]).collect();
        let mut tombstones: Vec<bool> = source_rows.iter().map(|&i| values[i].is_none()).collect();
        let mut keep_mask: Option<Vec<bool>> = None;
        if let Some(tc) = self.timestamp_column {
            let ms = event_times(&columns[tc], self.timestamp_format.as_ref());
            let mut mask = vec![true; n];
            for (row, ts) in rowtime.iter_mut().enumerate() {
                if tombstones[row] {
                    continue;
                }
                match ms.as_ref().filter(|a| a.is_valid(row)) {
                    Some(a) if a.value(row) >= 0 => *ts = a.value(row),
                    _ => {
                        mask[row] = false;
                        errors.push(RecordError {
                            kind: RecordErrorKind::Deserialization,
                            partition: self.partition,
                            offset: offsets[source_rows[row]],
                            message: "the timestamp column is null or not a valid timestamp; the record was skipped".into(),
                        });
                    }
                }
            }
            if mask.iter().any(|m| !m) {
                keep_mask = Some(mask);
            }
        }
        columns.push(Arc::new(Int64Array::from(rowtime)));
        columns.push(Arc::new(Int32Array::from(vec![self.partition; n])));
        columns.push(Arc::new(Int64Array::from(source_rows.iter().map(|&i| offsets[i]).collect::<Vec<_>>())));
        let mut batch = match RecordBatch::try_new(self.schema.clone(), columns) {
            Ok(b) => b,
            Err(e) => {
                errors.push(RecordError {
                    kind: RecordErrorKind::Deserialization,
                    partition: self.partition,
                    offset: from,
                    message: format!("internal decode error: {e}"),
                });
                return Decoded { batch: None, next_offset, records, errors, tombstones: Vec::new() };
            }
        };
        if let Some(mask) = keep_mask {
            tombstones = tombstones.iter().zip(&mask).filter(|(_, m)| **m).map(|(t, _)| *t).collect();
            let mask = arrow::array::BooleanArray::from(mask);
            batch = arrow::compute::filter_record_batch(&batch, &mask).expect("mask matches the batch");
        }
        errors.sort_by_key(|e| e.offset);
        Decoded { batch: (batch.num_rows() > 0).then_some(batch), next_offset, records, errors, tombstones }
    }
}

/// Event times (epoch ms) from a BIGINT or TIMESTAMP column, or a STRING column read with a
/// Java `format` pattern; `None` for other types. Unparseable strings are nulls.
pub fn event_times(col: &ArrayRef, format: Option<&JavaPattern>) -> Option<Int64Array> {
    match (col.data_type(), format) {
        (DataType::Int64, _) => Some(col.as_primitive::<arrow::datatypes::Int64Type>().clone()),
        (DataType::Timestamp(_, _), _) => arrow::compute::cast(col, &DataType::Int64).ok().map(|a| a.as_primitive::<arrow::datatypes::Int64Type>().clone()),
        (DataType::Utf8, Some(fmt)) => Some(col.as_string::<i32>().iter().map(|v| v.and_then(|s| fmt.parse_millis(s, None))).collect()),
        _ => None,
    }
}

/// A HEADERS column (all headers as ARRAY<STRUCT<KEY, VALUE>>) or a HEADER('k') column
/// (the last value of header `k`, as BYTES) for the given rows.
fn header_column(key: Option<&str>, rows: &[usize], headers: &[Vec<Header<'_>>]) -> ArrayRef {
    use arrow::array::{BinaryBuilder, ListBuilder, StringBuilder, StructBuilder};
    match key {
        Some(k) => {
            let mut b = BinaryBuilder::new();
            for &r in rows {
                match headers[r].iter().rev().find(|h| h.key == k.as_bytes()) {
                    Some(h) => b.append_option(h.value),
                    None => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        None => {
            let DataType::List(item) = crate::catalog::types::headers_type().to_arrow() else { unreachable!("headers type is a list") };
            let DataType::Struct(fields) = item.data_type().clone() else { unreachable!("headers items are structs") };
            let mut b = ListBuilder::new(StructBuilder::from_fields(fields, rows.len())).with_field(item.clone());
            for &r in rows {
                let sb = b.values();
                for h in &headers[r] {
                    sb.field_builder::<StringBuilder>(0).expect("KEY").append_value(String::from_utf8_lossy(h.key));
                    sb.field_builder::<BinaryBuilder>(1).expect("VALUE").append_option(h.value);
                    sb.append(true);
                }
                b.append(true);
            }
            Arc::new(b.finish())
        }
    }
}
