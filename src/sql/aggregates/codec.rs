//! A compact binary encoding of accumulator state (`ScalarValue`s), decoded with the
//! expected Arrow type. Used to save aggregation state to RocksDB after every step.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::error::DataFusionError;

/// Why a saved aggregation state could not be written or read back.
#[derive(Debug, thiserror::Error)]
pub enum StateCodecError {
    #[error("aggregation state is truncated")]
    Truncated,
    #[error("aggregation state holds a string that is not UTF-8")]
    NotUtf8(#[source] std::string::FromUtf8Error),
    #[error("cannot save aggregation state of type {0}")]
    CannotSave(DataType),
    #[error("cannot load aggregation state of type {0}")]
    CannotLoad(DataType),
    #[error("aggregation state value {found} is not the {expected} its type says")]
    Mismatch { expected: &'static str, found: DataType },
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], StateCodecError> {
    if b.len() < n {
        return Err(StateCodecError::Truncated);
    }
    let (h, t) = b.split_at(n);
    *b = t;
    Ok(h)
}

/// The next `N` bytes.
fn take_array<const N: usize>(b: &mut &[u8]) -> Result<[u8; N], StateCodecError> {
    let mut out = [0u8; N];
    out.copy_from_slice(take(b, N)?);
    Ok(out)
}

fn take_len(b: &mut &[u8]) -> Result<usize, StateCodecError> {
    Ok(u32::from_le_bytes(take_array(b)?) as usize)
}

/// Encodes one value. Nulls are a single 0 byte; values start with 1.
pub fn encode(v: &ScalarValue, out: &mut Vec<u8>) -> Result<(), StateCodecError> {
    if v.is_null() {
        out.push(0);
        return Ok(());
    }
    out.push(1);
    match v {
        ScalarValue::Boolean(Some(b)) => out.push(*b as u8),
        ScalarValue::Int32(Some(i)) | ScalarValue::Date32(Some(i)) | ScalarValue::Time32Millisecond(Some(i)) => out.extend_from_slice(&i.to_le_bytes()),
        ScalarValue::Int64(Some(i)) | ScalarValue::TimestampMillisecond(Some(i), _) => out.extend_from_slice(&i.to_le_bytes()),
        ScalarValue::Float64(Some(f)) => out.extend_from_slice(&f.to_le_bytes()),
        ScalarValue::Decimal128(Some(d), _, _) => out.extend_from_slice(&d.to_le_bytes()),
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => {
            put_len(out, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        ScalarValue::Binary(Some(b)) | ScalarValue::LargeBinary(Some(b)) | ScalarValue::BinaryView(Some(b)) => {
            put_len(out, b.len());
            out.extend_from_slice(b);
        }
        other => {
            // Nested values (lists, maps, structs): their elements, recursively.
            let arr = other.to_array()?;
            encode_nested(&arr, 0, out)?;
        }
    }
    Ok(())
}

fn encode_nested(arr: &ArrayRef, row: usize, out: &mut Vec<u8>) -> Result<(), StateCodecError> {
    match arr.data_type() {
        DataType::List(_) => {
            let list =
                arr.as_any().downcast_ref::<arrow::array::ListArray>().ok_or(StateCodecError::Mismatch { expected: "list", found: arr.data_type().clone() })?;
            let values = list.value(row);
            put_len(out, values.len());
            for i in 0..values.len() {
                encode(&ScalarValue::try_from_array(&values, i)?, out)?;
            }
            Ok(())
        }
        DataType::Struct(_) => {
            let s = arr
                .as_any()
                .downcast_ref::<arrow::array::StructArray>()
                .ok_or(StateCodecError::Mismatch { expected: "struct", found: arr.data_type().clone() })?;
            for c in s.columns() {
                encode(&ScalarValue::try_from_array(c, row)?, out)?;
            }
            Ok(())
        }
        DataType::Map(_, _) => {
            let m =
                arr.as_any().downcast_ref::<arrow::array::MapArray>().ok_or(StateCodecError::Mismatch { expected: "map", found: arr.data_type().clone() })?;
            let entries = m.value(row);
            put_len(out, entries.len());
            for i in 0..entries.len() {
                encode(&ScalarValue::try_from_array(entries.column(0), i)?, out)?;
                encode(&ScalarValue::try_from_array(entries.column(1), i)?, out)?;
            }
            Ok(())
        }
        other => Err(StateCodecError::CannotSave(other.clone())),
    }
}

/// Decodes one value of type `dt`.
pub fn decode(dt: &DataType, b: &mut &[u8]) -> Result<ScalarValue, StateCodecError> {
    if take(b, 1)?[0] == 0 {
        return Ok(ScalarValue::try_from(dt)?);
    }
    let i32v = |b: &mut &[u8]| -> Result<i32, StateCodecError> { Ok(i32::from_le_bytes(take_array(b)?)) };
    let i64v = |b: &mut &[u8]| -> Result<i64, StateCodecError> { Ok(i64::from_le_bytes(take_array(b)?)) };
    Ok(match dt {
        DataType::Boolean => ScalarValue::Boolean(Some(take(b, 1)?[0] != 0)),
        DataType::Int32 => ScalarValue::Int32(Some(i32v(b)?)),
        DataType::Date32 => ScalarValue::Date32(Some(i32v(b)?)),
        DataType::Time32(TimeUnit::Millisecond) => ScalarValue::Time32Millisecond(Some(i32v(b)?)),
        DataType::Int64 => ScalarValue::Int64(Some(i64v(b)?)),
        DataType::Timestamp(TimeUnit::Millisecond, tz) => ScalarValue::TimestampMillisecond(Some(i64v(b)?), tz.clone()),
        DataType::Float64 => ScalarValue::Float64(Some(f64::from_le_bytes(take_array(b)?))),
        DataType::Decimal128(p, s) => ScalarValue::Decimal128(Some(i128::from_le_bytes(take_array(b)?)), *p, *s),
        DataType::Utf8 => {
            let n = take_len(b)?;
            ScalarValue::Utf8(Some(String::from_utf8(take(b, n)?.to_vec()).map_err(StateCodecError::NotUtf8)?))
        }
        DataType::Binary => {
            let n = take_len(b)?;
            ScalarValue::Binary(Some(take(b, n)?.to_vec()))
        }
        DataType::List(f) => {
            let n = take_len(b)?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(decode(f.data_type(), b)?);
            }
            ScalarValue::List(ScalarValue::new_list(&items, f.data_type(), true))
        }
        DataType::Struct(fields) => {
            let mut arrays: Vec<ArrayRef> = Vec::new();
            for f in fields {
                arrays.push(decode(f.data_type(), b)?.to_array()?);
            }
            let s = arrow::array::StructArray::try_new(fields.clone(), arrays, None)?;
            ScalarValue::Struct(Arc::new(s))
        }
        DataType::Map(entries, _) => {
            let DataType::Struct(kv) = entries.data_type() else { return Err(StateCodecError::CannotLoad(dt.clone())) };
            let n = take_len(b)?;
            let (mut ks, mut vs) = (Vec::new(), Vec::new());
            for _ in 0..n {
                ks.push(decode(kv[0].data_type(), b)?);
                vs.push(decode(kv[1].data_type(), b)?);
            }
            let keys = if ks.is_empty() { arrow::array::new_empty_array(kv[0].data_type()) } else { ScalarValue::iter_to_array(ks)? };
            let vals = if vs.is_empty() { arrow::array::new_empty_array(kv[1].data_type()) } else { ScalarValue::iter_to_array(vs)? };
            let entries_arr = arrow::array::StructArray::try_new(kv.clone(), vec![keys, vals], None)?;
            let offsets = arrow::buffer::OffsetBuffer::new(vec![0i32, n as i32].into());
            let map = arrow::array::MapArray::try_new(entries.clone(), offsets, entries_arr, None, false)?;
            ScalarValue::Map(Arc::new(map))
        }
        other => return Err(StateCodecError::CannotLoad(other.clone())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_by_type() {
        let values = vec![
            ScalarValue::Int64(Some(-5)),
            ScalarValue::Int64(None),
            ScalarValue::Float64(Some(2.5)),
            ScalarValue::Decimal128(Some(12345), 10, 2),
            ScalarValue::Utf8(Some("héllo".into())),
            ScalarValue::Boolean(Some(true)),
            ScalarValue::List(ScalarValue::new_list(&[ScalarValue::Utf8(Some("a".into())), ScalarValue::Utf8(None)], &DataType::Utf8, true)),
        ];
        let mut out = Vec::new();
        for v in &values {
            encode(v, &mut out).unwrap();
        }
        let mut b = &out[..];
        for v in &values {
            assert_eq!(&decode(&v.data_type(), &mut b).unwrap(), v);
        }
        assert!(b.is_empty());
    }
}
