//! The lambda functions TRANSFORM, FILTER and REDUCE over arrays and maps. A lambda body
//! is compiled once; TRANSFORM and FILTER evaluate it on every element of a batch in one
//! pass (the elements of all rows form one batch), REDUCE folds element by element.
//! Columns of the enclosing query a body refers to are passed as extra arguments and
//! repeated for each element of their row.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, MapArray, RecordBatch, StructArray, UInt32Array};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::compute::{cast, take};
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};
use datafusion::common::{DataFusionError, Result as DfResult, ScalarValue};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{ColumnarValue, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use datafusion::physical_expr::PhysicalExpr;

pub const NAMES: &[&str] = &["TRANSFORM", "FILTER", "REDUCE"];

/// Which lambda function, and over what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LambdaKind {
    TransformArray,
    TransformMap,
    FilterArray,
    FilterMap,
    ReduceArray,
    ReduceMap,
}

/// A compiled lambda body and the schema of the batches it runs on: its parameters
/// first, then the outer columns it refers to.
#[derive(Debug, Clone)]
pub struct LambdaBody {
    pub expr: Arc<dyn PhysicalExpr>,
    pub schema: SchemaRef,
    pub params: usize,
    /// The body as text (identity for plan comparison).
    pub text: String,
}

#[derive(Debug)]
struct LambdaUdf {
    name: String,
    kind: LambdaKind,
    bodies: Vec<LambdaBody>,
    ret: DataType,
    signature: Signature,
}

impl PartialEq for LambdaUdf {
    fn eq(&self, o: &Self) -> bool {
        self.kind == o.kind && self.ret == o.ret && self.bodies.iter().map(|b| &b.text).eq(o.bodies.iter().map(|b| &b.text))
    }
}
impl Eq for LambdaUdf {}
impl Hash for LambdaUdf {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.kind.hash(h);
        self.ret.hash(h);
        for b in &self.bodies {
            b.text.hash(h);
        }
    }
}

/// A call of a lambda function: `args` are the collection, then REDUCE's initial state,
/// then the outer columns the bodies refer to (the same for every body).
pub fn lambda_call(name: &str, kind: LambdaKind, args: Vec<Expr>, bodies: Vec<LambdaBody>, ret: DataType) -> Expr {
    let udf = LambdaUdf { name: name.to_ascii_lowercase(), kind, bodies, ret, signature: Signature::user_defined(Volatility::Immutable) };
    Expr::ScalarFunction(ScalarFunction::new_udf(Arc::new(ScalarUDF::new_from_impl(udf)), args))
}

fn exec_err(e: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Execution(e.to_string())
}

impl LambdaBody {
    /// Evaluates the body with `params` as its parameter columns and the outer columns
    /// repeated per element (`rows[i]` is the outer row of element `i`).
    fn eval(&self, params: Vec<ArrayRef>, outer: &[ArrayRef], rows: &UInt32Array) -> DfResult<ArrayRef> {
        let n = rows.len();
        let mut cols = Vec::with_capacity(self.schema.fields().len());
        for (p, f) in params.into_iter().zip(self.schema.fields()) {
            cols.push(if p.data_type() == f.data_type() { p } else { cast(&p, f.data_type()).map_err(exec_err)? });
        }
        for o in outer {
            cols.push(take(o.as_ref(), rows, None).map_err(exec_err)?);
        }
        let batch =
            RecordBatch::try_new_with_options(self.schema.clone(), cols, &arrow::array::RecordBatchOptions::new().with_row_count(Some(n))).map_err(exec_err)?;
        self.expr.evaluate(&batch)?.into_array(n)
    }
}

/// For each element position of a list/map child array, the outer row it belongs to.
fn element_rows(offsets: &OffsetBuffer<i32>, child_len: usize) -> UInt32Array {
    let mut rows = vec![0u32; child_len];
    for (row, w) in offsets.windows(2).enumerate() {
        for slot in rows.iter_mut().take(w[1] as usize).skip(w[0] as usize) {
            *slot = row as u32;
        }
    }
    UInt32Array::from(rows)
}

/// Keeps the elements where `keep` is true, returning new offsets and taken indices.
fn filter_offsets(offsets: &OffsetBuffer<i32>, keep: &BooleanArray) -> (OffsetBuffer<i32>, UInt32Array) {
    let mut lens = Vec::with_capacity(offsets.len() - 1);
    let mut idx = Vec::new();
    for w in offsets.windows(2) {
        let before = idx.len();
        for i in w[0] as usize..w[1] as usize {
            if keep.is_valid(i) && keep.value(i) {
                idx.push(i as u32);
            }
        }
        lens.push(idx.len() - before);
    }
    (OffsetBuffer::from_lengths(lens), UInt32Array::from(idx))
}

fn cast_to(a: ArrayRef, dt: &DataType) -> DfResult<ArrayRef> {
    if a.data_type() == dt { Ok(a) } else { cast(&a, dt).map_err(exec_err) }
}

fn map_parts(dt: &DataType) -> DfResult<(FieldRef, Fields)> {
    match dt {
        DataType::Map(f, _) => match f.data_type() {
            DataType::Struct(kv) => Ok((f.clone(), kv.clone())),
            _ => Err(exec_err("malformed map type")),
        },
        _ => Err(exec_err("a map was expected")),
    }
}

impl LambdaUdf {
    fn transform_array(&self, coll: &ArrayRef, outer: &[ArrayRef]) -> DfResult<ArrayRef> {
        let list = coll.as_list::<i32>();
        let values = list.values().clone();
        let rows = element_rows(list.offsets(), values.len());
        let out = self.bodies[0].eval(vec![values], outer, &rows)?;
        let DataType::List(item) = &self.ret else { return Err(exec_err("TRANSFORM of an array returns an array")) };
        let out = cast_to(out, item.data_type())?;
        Ok(Arc::new(arrow::array::ListArray::try_new(item.clone(), list.offsets().clone(), out, list.nulls().cloned()).map_err(exec_err)?))
    }

    fn filter_array(&self, coll: &ArrayRef, outer: &[ArrayRef]) -> DfResult<ArrayRef> {
        let list = coll.as_list::<i32>();
        let values = list.values().clone();
        let rows = element_rows(list.offsets(), values.len());
        let keep = self.bodies[0].eval(vec![values.clone()], outer, &rows)?;
        let keep = keep.as_boolean_opt().ok_or_else(|| exec_err("FILTER's lambda must return a BOOLEAN"))?;
        let (offsets, idx) = filter_offsets(list.offsets(), keep);
        let taken = take(values.as_ref(), &idx, None).map_err(exec_err)?;
        let DataType::List(item) = &self.ret else { return Err(exec_err("FILTER of an array returns an array")) };
        Ok(Arc::new(arrow::array::ListArray::try_new(item.clone(), offsets, cast_to(taken, item.data_type())?, list.nulls().cloned()).map_err(exec_err)?))
    }

    fn map_result(&self, offsets: OffsetBuffer<i32>, keys: ArrayRef, vals: ArrayRef, nulls: Option<NullBuffer>) -> DfResult<ArrayRef> {
        let (entries, kv) = map_parts(&self.ret)?;
        let keys = cast_to(keys, kv[0].data_type())?;
        let vals = cast_to(vals, kv[1].data_type())?;
        let s = StructArray::try_new(kv, vec![keys, vals], None).map_err(exec_err)?;
        Ok(Arc::new(MapArray::try_new(entries, offsets, s, nulls, false).map_err(exec_err)?))
    }

    fn transform_map(&self, coll: &ArrayRef, outer: &[ArrayRef]) -> DfResult<ArrayRef> {
        let m = coll.as_map();
        let (k, v) = (m.keys().clone(), m.values().clone());
        let rows = element_rows(m.offsets(), k.len());
        let keys = self.bodies[0].eval(vec![k.clone(), v.clone()], outer, &rows)?;
        let vals = self.bodies[1].eval(vec![k, v], outer, &rows)?;
        if keys.null_count() > 0 {
            // A null key cannot be stored: such rows become null maps.
            let mut valid: Vec<bool> = (0..m.len()).map(|r| m.is_valid(r)).collect();
            for i in 0..keys.len() {
                if keys.is_null(i) {
                    valid[rows.value(i) as usize] = false;
                }
            }
            let keep = BooleanArray::from((0..keys.len()).map(|i| valid[rows.value(i) as usize]).collect::<Vec<_>>());
            let (offsets, idx) = filter_offsets(m.offsets(), &keep);
            let keys = take(keys.as_ref(), &idx, None).map_err(exec_err)?;
            let vals = take(vals.as_ref(), &idx, None).map_err(exec_err)?;
            return self.map_result(offsets, keys, vals, Some(NullBuffer::from(valid)));
        }
        self.map_result(m.offsets().clone(), keys, vals, m.nulls().cloned())
    }

    fn filter_map(&self, coll: &ArrayRef, outer: &[ArrayRef]) -> DfResult<ArrayRef> {
        let m = coll.as_map();
        let (k, v) = (m.keys().clone(), m.values().clone());
        let rows = element_rows(m.offsets(), k.len());
        let keep = self.bodies[0].eval(vec![k.clone(), v.clone()], outer, &rows)?;
        let keep = keep.as_boolean_opt().ok_or_else(|| exec_err("FILTER's lambda must return a BOOLEAN"))?;
        let (offsets, idx) = filter_offsets(m.offsets(), keep);
        let keys = take(k.as_ref(), &idx, None).map_err(exec_err)?;
        let vals = take(v.as_ref(), &idx, None).map_err(exec_err)?;
        self.map_result(offsets, keys, vals, m.nulls().cloned())
    }

    /// Folds each row's elements into the state, one element at a time.
    fn reduce(&self, coll: &ArrayRef, init: &ArrayRef, outer: &[ArrayRef]) -> DfResult<ArrayRef> {
        let body = &self.bodies[0];
        let state_type = body.schema.field(0).data_type().clone();
        let init = cast_to(init.clone(), &state_type)?;
        let (offsets, children): (OffsetBuffer<i32>, Vec<ArrayRef>) = match self.kind {
            LambdaKind::ReduceArray => {
                let l = coll.as_list::<i32>();
                (l.offsets().clone(), vec![l.values().clone()])
            }
            _ => {
                let m = coll.as_map();
                (m.offsets().clone(), vec![m.keys().clone(), m.values().clone()])
            }
        };
        let mut out = Vec::with_capacity(coll.len());
        for row in 0..coll.len() {
            // A null collection reduces to the initial state.
            let mut state: ArrayRef = init.slice(row, 1);
            if coll.is_null(row) {
                out.push(ScalarValue::try_from_array(&state, 0)?);
                continue;
            }
            let row_idx = UInt32Array::from(vec![row as u32]);
            for i in offsets[row] as usize..offsets[row + 1] as usize {
                let mut params = vec![state.clone()];
                params.extend(children.iter().map(|c| c.slice(i, 1)));
                state = cast_to(body.eval(params, outer, &row_idx)?, &state_type)?;
            }
            out.push(ScalarValue::try_from_array(&state, 0)?);
        }
        let a = super::value::to_array(out, &state_type, coll.len())?;
        cast_to(a, &self.ret)
    }
}

impl ScalarUDFImpl for LambdaUdf {
    fn name(&self) -> &str {
        &self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        Ok(arg_types.to_vec())
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(self.ret.clone())
    }
    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> DfResult<FieldRef> {
        Ok(Arc::new(Field::new(self.name.clone(), self.ret.clone(), true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let arrays = args.args.iter().map(|a| a.to_array(args.number_rows)).collect::<DfResult<Vec<_>>>()?;
        let coll = &arrays[0];
        let out = match self.kind {
            LambdaKind::TransformArray => self.transform_array(coll, &arrays[1..])?,
            LambdaKind::FilterArray => self.filter_array(coll, &arrays[1..])?,
            LambdaKind::TransformMap => self.transform_map(coll, &arrays[1..])?,
            LambdaKind::FilterMap => self.filter_map(coll, &arrays[1..])?,
            LambdaKind::ReduceArray | LambdaKind::ReduceMap => self.reduce(coll, &arrays[1], &arrays[2..])?,
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// The schema of a lambda body's batches.
pub fn body_schema(params: &[(String, DataType)], outer: &[Field]) -> SchemaRef {
    let mut fields: Vec<Field> = params.iter().map(|(n, t)| Field::new(n, t.clone(), true)).collect();
    fields.extend(outer.iter().cloned());
    Arc::new(Schema::new(fields))
}
