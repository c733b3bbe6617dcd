//! The one adapter between the runtime and DataFusion: evaluates compiled expressions on
//! Arrow batches. A batch whose evaluation fails is retried row by row, so one bad row
//! (say, an integer division by zero) is reported and dropped instead of failing the
//! whole batch.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, UInt32Array};
use arrow::compute::{filter_record_batch, take};
use arrow::datatypes::DataType;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use datafusion::common::ScalarValue;
use datafusion::error::DataFusionError;

use crate::sql::compile::CompiledExpr;
use crate::sql::table_functions::{TableFunction, TableFunctionKind};

/// Why evaluating expressions on a batch failed. Cheap to clone: one failure is reported
/// for every row of the batch it failed on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExprError {
    /// An expression failed (e.g. an integer division by zero, a function's own error).
    #[error("{}", without_prefixes(.0))]
    Evaluate(#[source] Arc<DataFusionError>),
    /// Taking, filtering or assembling the batch's columns failed.
    #[error("{0}")]
    Arrow(#[source] Arc<ArrowError>),
    /// A filter whose result is not a BOOLEAN.
    #[error("filter produced {0} instead of BOOLEAN")]
    NotBoolean(DataType),
}

impl From<DataFusionError> for ExprError {
    fn from(e: DataFusionError) -> Self {
        ExprError::Evaluate(Arc::new(e))
    }
}

impl From<ArrowError> for ExprError {
    fn from(e: ArrowError) -> Self {
        ExprError::Arrow(Arc::new(e))
    }
}

/// A DataFusion error as users read it: without the prefixes naming DataFusion's layers.
fn without_prefixes(e: &DataFusionError) -> String {
    let text = e.to_string();
    text.trim_start_matches("Arrow error: ").trim_start_matches("Execution error: ").trim_start_matches("Compute error: ").to_string()
}

/// Evaluates `e` over every row of `batch`.
pub fn evaluate(e: &CompiledExpr, batch: &RecordBatch) -> Result<ArrayRef, ExprError> {
    Ok(e.physical().evaluate(batch).and_then(|v| v.into_array(batch.num_rows()))?)
}

/// The rows of a batch that passed a filter and their projected columns.
pub struct Projected {
    pub columns: Vec<ArrayRef>,
    /// Indices of the input rows each output row came from.
    pub rows: UInt32Array,
}

impl Projected {
    pub fn num_rows(&self) -> usize {
        self.rows.len()
    }
}

/// Applies an optional filter and a projection. Rows whose evaluation fails are left out
/// and returned with the error.
pub fn filter_project(batch: &RecordBatch, filter: Option<&CompiledExpr>, projection: &[&CompiledExpr]) -> (Projected, Vec<(usize, ExprError)>) {
    match try_filter_project(batch, filter, projection) {
        Ok(p) => (p, Vec::new()),
        Err(_) if batch.num_rows() > 1 => {
            // Row by row, to isolate the failing rows.
            let mut errors = Vec::new();
            let mut keep = Vec::with_capacity(batch.num_rows());
            for r in 0..batch.num_rows() {
                match try_filter_project(&batch.slice(r, 1), filter, projection) {
                    Ok(_) => keep.push(r as u32),
                    Err(e) => errors.push((r, e)),
                }
            }
            let idx = UInt32Array::from(keep);
            let sub = match take_batch(batch, &idx) {
                Ok(b) => b,
                Err(e) => return (empty(projection), (0..batch.num_rows()).map(|r| (r, e.clone())).collect()),
            };
            match try_filter_project(&sub, filter, projection) {
                Ok(p) => {
                    let rows: UInt32Array = p.rows.values().iter().map(|&i| idx.value(i as usize)).collect::<Vec<_>>().into();
                    (Projected { columns: p.columns, rows }, errors)
                }
                Err(e) => (empty(projection), (0..batch.num_rows()).map(|r| (r, e.clone())).collect()),
            }
        }
        Err(e) => (empty(projection), (0..batch.num_rows()).map(|r| (r, e.clone())).collect()),
    }
}

fn empty(projection: &[&CompiledExpr]) -> Projected {
    Projected { columns: projection.iter().map(|p| arrow::array::new_empty_array(&p.ty.to_arrow())).collect(), rows: UInt32Array::from(Vec::<u32>::new()) }
}

fn take_batch(batch: &RecordBatch, idx: &UInt32Array) -> Result<RecordBatch, ExprError> {
    let cols = batch.columns().iter().map(|c| take(c, idx, None)).collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(batch.schema(), cols)?)
}

fn try_filter_project(batch: &RecordBatch, filter: Option<&CompiledExpr>, projection: &[&CompiledExpr]) -> Result<Projected, ExprError> {
    let (filtered, rows) = match filter {
        Some(f) => {
            let mask = evaluate(f, batch)?;
            if mask.data_type() != &DataType::Boolean {
                return Err(ExprError::NotBoolean(mask.data_type().clone()));
            }
            let mask: &BooleanArray = mask.as_boolean();
            // Null counts as false.
            let mask = if mask.null_count() > 0 { arrow::compute::prep_null_mask_filter(mask) } else { mask.clone() };
            let filtered = filter_record_batch(batch, &mask)?;
            let rows: UInt32Array = mask.iter().enumerate().filter(|(_, v)| v == &Some(true)).map(|(i, _)| i as u32).collect::<Vec<_>>().into();
            (filtered, rows)
        }
        None => (batch.clone(), UInt32Array::from_iter_values(0..batch.num_rows() as u32)),
    };
    let columns = projection.iter().map(|p| evaluate(p, &filtered)).collect::<Result<Vec<_>, _>>()?;
    Ok(Projected { columns, rows })
}

/// Evaluates constant expressions (INSERT ... VALUES) into single values.
pub fn evaluate_constants(exprs: &[&CompiledExpr]) -> Result<Vec<ArrayRef>, ExprError> {
    let schema = std::sync::Arc::new(arrow::datatypes::Schema::empty());
    let batch = RecordBatch::try_new_with_options(schema, vec![], &arrow::array::RecordBatchOptions::new().with_row_count(Some(1)))?;
    exprs.iter().map(|e| evaluate(e, &batch)).collect()
}

/// Explodes a batch for the table functions of a SELECT list: each input row becomes as
/// many rows as its longest table function result (none for a null or empty array);
/// shorter results are null in the extra rows. The function columns are inserted before
/// the three pseudo columns. Returns the batch and, per output row, its input row.
pub fn explode(batch: &RecordBatch, tfs: &[TableFunction], schema: SchemaRef) -> Result<(RecordBatch, UInt32Array), ExprError> {
    let n = batch.num_rows();
    let mut per_fn: Vec<Vec<Vec<ScalarValue>>> = Vec::with_capacity(tfs.len());
    for tf in tfs {
        let arg = evaluate(&tf.arg, batch)?;
        let mut rows = Vec::with_capacity(n);
        for r in 0..n {
            let items = match ScalarValue::try_from_array(&arg, r)? {
                ScalarValue::List(l) if !l.is_null(0) => {
                    let v = l.value(0);
                    (0..v.len()).map(|i| ScalarValue::try_from_array(&v, i)).collect::<Result<Vec<_>, _>>()?
                }
                _ => Vec::new(),
            };
            rows.push(match tf.kind {
                TableFunctionKind::Explode => items,
                TableFunctionKind::CubeExplode => cube(&items, &tf.ty.to_arrow()),
            });
        }
        per_fn.push(rows);
    }
    let mut source_rows = Vec::new();
    let mut columns: Vec<Vec<ScalarValue>> = vec![Vec::new(); tfs.len()];
    for r in 0..n {
        let len = per_fn.iter().map(|f| f[r].len()).max().unwrap_or(0);
        for i in 0..len {
            source_rows.push(r as u32);
            for (j, f) in per_fn.iter().enumerate() {
                let v = f[r].get(i).cloned().unwrap_or_else(|| ScalarValue::try_from(&tfs[j].ty.to_arrow()).unwrap_or(ScalarValue::Null));
                columns[j].push(v);
            }
        }
    }
    let idx = UInt32Array::from(source_rows);
    let taken = batch.columns().iter().map(|c| take(c, &idx, None)).collect::<Result<Vec<_>, _>>()?;
    let split = taken.len().saturating_sub(3);
    let mut out: Vec<ArrayRef> = taken[..split].to_vec();
    for (j, col) in columns.into_iter().enumerate() {
        let dt = tfs[j].ty.to_arrow();
        out.push(if col.is_empty() { arrow::array::new_empty_array(&dt) } else { ScalarValue::iter_to_array(col)? });
    }
    out.extend(taken[split..].iter().cloned());
    let b = RecordBatch::try_new_with_options(schema, out, &arrow::array::RecordBatchOptions::new().with_row_count(Some(idx.len())))?;
    Ok((b, idx))
}

/// CUBE_EXPLODE: every combination of keeping or nulling each element, distinct, in
/// ksqlDB's order (all nulls first, the last element varying fastest).
fn cube(items: &[ScalarValue], list_type: &DataType) -> Vec<ScalarValue> {
    let elem = match list_type {
        DataType::List(f) => f.data_type().clone(),
        other => other.clone(),
    };
    let null = ScalarValue::try_from(&elem).unwrap_or(ScalarValue::Null);
    let k = items.len().min(16);
    let mut seen: Vec<Vec<ScalarValue>> = Vec::new();
    for mask in 0u32..(1 << k) {
        let combo: Vec<ScalarValue> = (0..k).map(|i| if mask & (1 << (k - 1 - i)) != 0 { items[i].clone() } else { null.clone() }).collect();
        if !seen.contains(&combo) {
            seen.push(combo);
        }
    }
    seen.into_iter().map(|c| ScalarValue::List(ScalarValue::new_list_nullable(&c, &elem))).collect()
}
