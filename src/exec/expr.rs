//! The one adapter between the runtime and DataFusion: evaluates compiled expressions on
//! Arrow batches. A batch whose evaluation fails is retried row by row, so one bad row
//! (say, an integer division by zero) is reported and dropped instead of failing the
//! whole batch.

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, UInt32Array};
use arrow::compute::{filter_record_batch, take};
use arrow::datatypes::DataType;

use crate::sql::compile::CompiledExpr;

/// Evaluates `e` over every row of `batch`.
pub fn evaluate(e: &CompiledExpr, batch: &RecordBatch) -> Result<ArrayRef, String> {
    e.physical()
        .evaluate(batch)
        .and_then(|v| v.into_array(batch.num_rows()))
        .map_err(|err| clean_error(&err.to_string()))
}

/// DataFusion error text without its internal prefixes.
fn clean_error(s: &str) -> String {
    s.trim_start_matches("Arrow error: ")
        .trim_start_matches("Execution error: ")
        .trim_start_matches("Compute error: ")
        .to_string()
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
pub fn filter_project(
    batch: &RecordBatch,
    filter: Option<&CompiledExpr>,
    projection: &[&CompiledExpr],
) -> (Projected, Vec<(usize, String)>) {
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
    Projected {
        columns: projection.iter().map(|p| arrow::array::new_empty_array(&p.ty.to_arrow())).collect(),
        rows: UInt32Array::from(Vec::<u32>::new()),
    }
}

fn take_batch(batch: &RecordBatch, idx: &UInt32Array) -> Result<RecordBatch, String> {
    let cols = batch.columns().iter().map(|c| take(c, idx, None)).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
    RecordBatch::try_new(batch.schema(), cols).map_err(|e| e.to_string())
}

fn try_filter_project(batch: &RecordBatch, filter: Option<&CompiledExpr>, projection: &[&CompiledExpr]) -> Result<Projected, String> {
    let (filtered, rows) = match filter {
        Some(f) => {
            let mask = evaluate(f, batch)?;
            if mask.data_type() != &DataType::Boolean {
                return Err(format!("filter produced {} instead of BOOLEAN", mask.data_type()));
            }
            let mask: &BooleanArray = mask.as_boolean();
            // Null counts as false.
            let mask = if mask.null_count() > 0 { arrow::compute::prep_null_mask_filter(mask) } else { mask.clone() };
            let filtered = filter_record_batch(batch, &mask).map_err(|e| e.to_string())?;
            let rows: UInt32Array = mask.iter().enumerate().filter(|(_, v)| v == &Some(true)).map(|(i, _)| i as u32).collect::<Vec<_>>().into();
            (filtered, rows)
        }
        None => (batch.clone(), UInt32Array::from_iter_values(0..batch.num_rows() as u32)),
    };
    let columns = projection.iter().map(|p| evaluate(p, &filtered)).collect::<Result<Vec<_>, _>>()?;
    Ok(Projected { columns, rows })
}

/// Evaluates constant expressions (INSERT ... VALUES) into single values.
pub fn evaluate_constants(exprs: &[&CompiledExpr]) -> Result<Vec<ArrayRef>, String> {
    let schema = std::sync::Arc::new(arrow::datatypes::Schema::empty());
    let batch = RecordBatch::try_new_with_options(schema, vec![], &arrow::array::RecordBatchOptions::new().with_row_count(Some(1)))
        .map_err(|e| e.to_string())?;
    exprs.iter().map(|e| evaluate(e, &batch)).collect()
}
