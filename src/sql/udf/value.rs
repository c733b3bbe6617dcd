//! Reading and building `ScalarValue`s for row functions: strings, numbers, arrays and
//! maps, and turning a column of results into an Arrow array of the declared type.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, MapArray, StructArray, new_null_array};
use arrow::buffer::OffsetBuffer;
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, Result as DfResult, ScalarValue};

/// The text of a string value.
pub fn text(v: &ScalarValue) -> Option<&str> {
    match v {
        ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s) => s.as_deref(),
        _ => None,
    }
}

/// An integer value.
pub fn int(v: &ScalarValue) -> Option<i64> {
    Some(match v {
        ScalarValue::Int8(Some(x)) => *x as i64,
        ScalarValue::Int16(Some(x)) => *x as i64,
        ScalarValue::Int32(Some(x)) => *x as i64,
        ScalarValue::Int64(Some(x)) => *x,
        ScalarValue::UInt8(Some(x)) => *x as i64,
        ScalarValue::UInt16(Some(x)) => *x as i64,
        ScalarValue::UInt32(Some(x)) => *x as i64,
        ScalarValue::UInt64(Some(x)) => i64::try_from(*x).ok()?,
        _ => return None,
    })
}

/// A numeric value as a double.
pub fn float(v: &ScalarValue) -> Option<f64> {
    match v {
        ScalarValue::Float64(Some(x)) => Some(*x),
        ScalarValue::Float32(Some(x)) => Some(*x as f64),
        ScalarValue::Decimal128(Some(x), _, s) => Some(*x as f64 / 10f64.powi(*s as i32)),
        other => int(other).map(|i| i as f64),
    }
}

/// The elements of an array value; `None` when the value is null or not an array.
pub fn items(v: &ScalarValue) -> Option<Vec<ScalarValue>> {
    let arr: ArrayRef = match v {
        ScalarValue::List(a) if !a.is_null(0) => a.value(0),
        ScalarValue::LargeList(a) if !a.is_null(0) => a.value(0),
        ScalarValue::FixedSizeList(a) if !a.is_null(0) => a.value(0),
        _ => return None,
    };
    (0..arr.len()).map(|i| ScalarValue::try_from_array(&arr, i).ok()).collect()
}

/// The element type of an array type.
pub fn element_type(dt: &DataType) -> DataType {
    match dt {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => f.data_type().clone(),
        other => other.clone(),
    }
}

/// A null of a type.
pub fn null_of(dt: &DataType) -> ScalarValue {
    ScalarValue::try_from(dt).unwrap_or(ScalarValue::Null)
}

/// An array value of `items` with element type `elem` (nulls and narrower values are
/// converted to it).
pub fn list(items: Vec<ScalarValue>, elem: &DataType) -> Option<ScalarValue> {
    let items = items.into_iter().map(|v| conform(Some(v), elem)).collect::<DfResult<Vec<_>>>().ok()?;
    Some(ScalarValue::List(ScalarValue::new_list_nullable(&items, elem)))
}

/// The entries of a map value; `None` when the value is null or not a map.
pub fn entries(v: &ScalarValue) -> Option<Vec<(ScalarValue, ScalarValue)>> {
    let ScalarValue::Map(m) = v else { return None };
    if m.is_null(0) {
        return None;
    }
    let e = m.value(0);
    let (k, val) = (e.column(0), e.column(1));
    (0..e.len()).map(|i| Some((ScalarValue::try_from_array(k, i).ok()?, ScalarValue::try_from_array(val, i).ok()?))).collect()
}

/// A map value of type `map_type` from entries (later duplicates of a key win).
pub fn map(entries: Vec<(ScalarValue, ScalarValue)>, map_type: &DataType) -> Option<ScalarValue> {
    let DataType::Map(field, sorted) = map_type else { return None };
    let DataType::Struct(kv) = field.data_type() else { return None };
    let mut dedup: Vec<(ScalarValue, ScalarValue)> = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        if k.is_null() {
            continue;
        }
        match dedup.iter_mut().find(|(x, _)| *x == k) {
            Some(slot) => slot.1 = v,
            None => dedup.push((k, v)),
        }
    }
    let n = dedup.len();
    let keys = to_array(dedup.iter().map(|(k, _)| conform(Some(k.clone()), kv[0].data_type())).collect::<DfResult<_>>().ok()?, kv[0].data_type(), n).ok()?;
    let vals = to_array(dedup.into_iter().map(|(_, v)| conform(Some(v), kv[1].data_type())).collect::<DfResult<_>>().ok()?, kv[1].data_type(), n).ok()?;
    let s = StructArray::try_new(kv.clone(), vec![keys, vals], None).ok()?;
    let m = MapArray::try_new(field.clone(), OffsetBuffer::from_lengths([n]), s, None, *sorted).ok()?;
    Some(ScalarValue::Map(Arc::new(m)))
}

/// A result value converted to the declared type (null when `None`).
pub fn conform(v: Option<ScalarValue>, dt: &DataType) -> DfResult<ScalarValue> {
    match v {
        None => Ok(null_of(dt)),
        Some(v) if v.is_null() => Ok(null_of(dt)),
        Some(v) if &v.data_type() == dt => Ok(v),
        Some(v) => {
            let a = v.to_array()?;
            let c = cast(&a, dt).map_err(|e| DataFusionError::Execution(format!("cannot convert a function result to {dt}: {e}")))?;
            ScalarValue::try_from_array(&c, 0)
        }
    }
}

/// A column of `rows` values of type `dt`.
pub fn to_array(values: Vec<ScalarValue>, dt: &DataType, rows: usize) -> DfResult<ArrayRef> {
    if values.is_empty() {
        return Ok(new_null_array(dt, rows));
    }
    let a = ScalarValue::iter_to_array(values)?;
    if a.data_type() == dt { Ok(a) } else { cast(&a, dt).map_err(|e| DataFusionError::Execution(e.to_string())) }
}

/// Orders two values of one type; nulls last.
pub fn compare(a: &ScalarValue, b: &ScalarValue) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a.is_null(), b.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(b).unwrap_or(Ordering::Equal),
    }
}
