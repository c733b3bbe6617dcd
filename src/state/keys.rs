//! Order-preserving encoding of SQL keys, so RocksDB's byte order is the key's order:
//! range scans on the key and window bounds become byte ranges.
//!
//! Per column: `0x00` for null, else `0x01` and the value: integers and temporals as
//! big-endian i64 with the sign bit flipped, DOUBLE by the usual IEEE-754 order
//! transform, DECIMAL as i128, strings and bytes escaped (`0x00` -> `0x00 0xFF`) and
//! terminated by `0x00 0x00`. Windowed keys append the window start (and end).

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, TimeUnit};

/// One key value.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyValue<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Decimal(i128),
    Bytes(&'a [u8]),
}

pub fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&((v as u64) ^ (1 << 63)).to_be_bytes());
}

pub fn get_i64(b: &[u8]) -> Option<i64> {
    let a: [u8; 8] = b.get(..8)?.try_into().ok()?;
    Some((u64::from_be_bytes(a) ^ (1 << 63)) as i64)
}

fn put_escaped(out: &mut Vec<u8>, b: &[u8]) {
    for &x in b {
        out.push(x);
        if x == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

pub fn encode_value(out: &mut Vec<u8>, v: &KeyValue<'_>) {
    match v {
        KeyValue::Null => out.push(0),
        KeyValue::Bool(b) => out.extend_from_slice(&[1, *b as u8]),
        KeyValue::Int(i) => {
            out.push(1);
            put_i64(out, *i);
        }
        KeyValue::Double(f) => {
            out.push(1);
            let bits = f.to_bits();
            let ordered = if bits >> 63 == 1 { !bits } else { bits ^ (1 << 63) };
            out.extend_from_slice(&ordered.to_be_bytes());
        }
        KeyValue::Decimal(d) => {
            out.push(1);
            out.extend_from_slice(&((*d as u128) ^ (1 << 127)).to_be_bytes());
        }
        KeyValue::Bytes(b) => {
            out.push(1);
            put_escaped(out, b);
        }
    }
}

/// The key value of `col` at `row`. Nested types use their JSON text (equality only).
pub fn value_at(col: &ArrayRef, row: usize, scratch: &mut Vec<u8>) -> KeyValueOwned {
    if col.is_null(row) {
        return KeyValueOwned::Null;
    }
    match col.data_type() {
        DataType::Boolean => KeyValueOwned::Bool(col.as_boolean().value(row)),
        DataType::Int32 => KeyValueOwned::Int(i64::from(col.as_primitive::<arrow::datatypes::Int32Type>().value(row))),
        DataType::Int64 => KeyValueOwned::Int(col.as_primitive::<arrow::datatypes::Int64Type>().value(row)),
        DataType::Date32 => KeyValueOwned::Int(i64::from(col.as_primitive::<arrow::datatypes::Date32Type>().value(row))),
        DataType::Time32(TimeUnit::Millisecond) => KeyValueOwned::Int(i64::from(col.as_primitive::<arrow::datatypes::Time32MillisecondType>().value(row))),
        DataType::Timestamp(TimeUnit::Millisecond, _) => KeyValueOwned::Int(col.as_primitive::<arrow::datatypes::TimestampMillisecondType>().value(row)),
        DataType::Float64 => KeyValueOwned::Double(col.as_primitive::<arrow::datatypes::Float64Type>().value(row)),
        DataType::Decimal128(_, _) => KeyValueOwned::Decimal(col.as_primitive::<arrow::datatypes::Decimal128Type>().value(row)),
        DataType::Utf8 => KeyValueOwned::Bytes(col.as_string::<i32>().value(row).as_bytes().to_vec()),
        DataType::Binary => KeyValueOwned::Bytes(col.as_binary::<i32>().value(row).to_vec()),
        _ => {
            scratch.clear();
            let slice = col.slice(row, 1);
            let text = crate::format::json::encode_json_arrays(&[slice], 1).ok().and_then(|mut v| v.pop()).unwrap_or_default();
            KeyValueOwned::Bytes(text.into_bytes())
        }
    }
}

/// An owned key value.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyValueOwned {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Decimal(i128),
    Bytes(Vec<u8>),
}

impl KeyValueOwned {
    pub fn as_ref(&self) -> KeyValue<'_> {
        match self {
            KeyValueOwned::Null => KeyValue::Null,
            KeyValueOwned::Bool(b) => KeyValue::Bool(*b),
            KeyValueOwned::Int(i) => KeyValue::Int(*i),
            KeyValueOwned::Double(d) => KeyValue::Double(*d),
            KeyValueOwned::Decimal(d) => KeyValue::Decimal(*d),
            KeyValueOwned::Bytes(b) => KeyValue::Bytes(b),
        }
    }
}

/// Encodes the key of `row` from `columns` into `out` (appending).
pub fn encode_row(columns: &[ArrayRef], row: usize, out: &mut Vec<u8>) {
    let mut scratch = Vec::new();
    for c in columns {
        let v = value_at(c, row, &mut scratch);
        encode_value(out, &v.as_ref());
    }
}

/// Appends window bounds to a key.
pub fn push_window(out: &mut Vec<u8>, start: i64, end: i64) {
    put_i64(out, start);
    put_i64(out, end);
}

/// Splits a windowed key into the plain key and its (start, end).
pub fn split_window(key: &[u8]) -> Option<(&[u8], i64, i64)> {
    if key.len() < 16 {
        return None;
    }
    let (k, w) = key.split_at(key.len() - 16);
    Some((k, get_i64(&w[..8])?, get_i64(&w[8..])?))
}

/// The smallest byte string greater than every string with this prefix.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut p = prefix.to_vec();
    while let Some(last) = p.pop() {
        if last < 0xFF {
            p.push(last + 1);
            return Some(p);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn enc(v: KeyValue<'_>) -> Vec<u8> {
        let mut o = Vec::new();
        encode_value(&mut o, &v);
        o
    }

    #[test]
    fn encoding_preserves_order() {
        let ints = [-5i64, -1, 0, 1, 7, i64::MAX];
        for w in ints.windows(2) {
            assert!(enc(KeyValue::Int(w[0])) < enc(KeyValue::Int(w[1])));
        }
        let doubles = [-10.5f64, -0.1, 0.0, 0.2, 3.0, 1e9];
        for w in doubles.windows(2) {
            assert!(enc(KeyValue::Double(w[0])) < enc(KeyValue::Double(w[1])));
        }
        let strs: [&[u8]; 5] = [b"", b"a", b"a\0b", b"ab", b"b"];
        for w in strs.windows(2) {
            assert!(enc(KeyValue::Bytes(w[0])) < enc(KeyValue::Bytes(w[1])), "{:?}", w);
        }
        assert!(enc(KeyValue::Null) < enc(KeyValue::Int(i64::MIN)));
    }

    #[test]
    fn multi_column_keys_and_windows() {
        let a: ArrayRef = Arc::new(arrow::array::StringArray::from(vec!["x", "x"]));
        let b: ArrayRef = Arc::new(arrow::array::Int32Array::from(vec![1, 2]));
        let mut k0 = Vec::new();
        encode_row(&[a.clone(), b.clone()], 0, &mut k0);
        let mut k1 = Vec::new();
        encode_row(&[a, b], 1, &mut k1);
        assert!(k0 < k1);
        let mut w = k0.clone();
        push_window(&mut w, 1000, 2000);
        assert_eq!(split_window(&w), Some((&k0[..], 1000, 2000)));
        assert_eq!(prefix_end(b"ab\xff"), Some(b"ac".to_vec()));
    }
}
