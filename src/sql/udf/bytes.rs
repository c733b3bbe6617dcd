//! Numbers read from BYTES: INT_FROM_BYTES (4 bytes), BIGINT_FROM_BYTES and
//! DOUBLE_FROM_BYTES (8 bytes), big-endian unless told 'LITTLE_ENDIAN'; null for a wrong
//! length or an unknown byte order, as ksqlDB documents. And the BYTES forms of the string
//! functions LEN, SUBSTRING, LPAD, RPAD and SPLIT, which a call takes when its first argument
//! is BYTES.

use arrow::datatypes::DataType;
use datafusion::common::ScalarValue;

use super::RowFunction;
use super::value::text;
use crate::catalog::types::SqlType;
use crate::sql::functions::between;

/// The bytes of a BYTES value.
pub fn bytes_of(v: &ScalarValue) -> Option<&[u8]> {
    match v {
        ScalarValue::Binary(Some(b)) | ScalarValue::LargeBinary(Some(b)) | ScalarValue::BinaryView(Some(b)) => Some(b),
        ScalarValue::FixedSizeBinary(_, Some(b)) => Some(b),
        _ => None,
    }
}

/// The value's `N` bytes in big-endian order (reversed when the call says LITTLE_ENDIAN).
fn ordered<const N: usize>(a: &[ScalarValue]) -> Option<[u8; N]> {
    let mut b: [u8; N] = bytes_of(&a[0])?.try_into().ok()?;
    match a.get(1) {
        None => {}
        Some(order) => match text(order)?.to_ascii_uppercase().as_str() {
            "BIG_ENDIAN" => {}
            "LITTLE_ENDIAN" => b.reverse(),
            _ => return None,
        },
    }
    Some(b)
}

fn takes_bytes(t: &[SqlType], ret: SqlType) -> Result<SqlType, String> {
    if t[0] != SqlType::Bytes {
        return Err(format!("takes BYTES, not {}", t[0]));
    }
    if t.get(1).is_some_and(|o| *o != SqlType::String) {
        return Err("the byte order is a STRING: 'BIG_ENDIAN' or 'LITTLE_ENDIAN'".into());
    }
    Ok(ret)
}

fn int_from(a: &[ScalarValue], _: &DataType) -> Option<ScalarValue> {
    Some(ScalarValue::Int32(Some(i32::from_be_bytes(ordered(a)?))))
}
fn bigint_from(a: &[ScalarValue], _: &DataType) -> Option<ScalarValue> {
    Some(ScalarValue::Int64(Some(i64::from_be_bytes(ordered(a)?))))
}
fn double_from(a: &[ScalarValue], _: &DataType) -> Option<ScalarValue> {
    Some(ScalarValue::Float64(Some(f64::from_be_bytes(ordered(a)?))))
}

fn binary(b: Vec<u8>) -> Option<ScalarValue> {
    Some(ScalarValue::Binary(Some(b)))
}

/// SUBSTRING(bytes, pos[, len]): 1-based, a negative position counts from the end.
fn substring(a: &[ScalarValue], _: &DataType) -> Option<ScalarValue> {
    let b = bytes_of(&a[0])?;
    let len = b.len() as i64;
    let pos = super::value::int(&a[1])?;
    let start = match pos {
        p if p < 0 => (len + p).max(0),
        0 => 0,
        p => p - 1,
    }
    .min(len);
    let end = match a.get(2) {
        Some(l) => (start + super::value::int(l)?.max(0)).min(len),
        None => len,
    };
    binary(b[start as usize..end.max(start) as usize].to_vec())
}

/// LPAD / RPAD on BYTES: padded with the pattern repeated, or cut to the length; null for
/// an empty pattern or a negative length.
fn pad(a: &[ScalarValue], left: bool) -> Option<ScalarValue> {
    let (b, n, p) = (bytes_of(&a[0])?, super::value::int(&a[1])?, bytes_of(&a[2])?);
    if n < 0 || p.is_empty() {
        return None;
    }
    let n = usize::try_from(n).ok()?.min(super::collections::MAX_GENERATED_LENGTH as usize);
    if b.len() >= n {
        return binary(b[..n].to_vec());
    }
    let fill: Vec<u8> = p.iter().copied().cycle().take(n - b.len()).collect();
    binary(if left { [fill.as_slice(), b].concat() } else { [b, fill.as_slice()].concat() })
}

/// SPLIT(bytes, delimiter): the parts between delimiters (every byte for an empty one).
fn split(a: &[ScalarValue], _: &DataType) -> Option<ScalarValue> {
    let (b, d) = (bytes_of(&a[0])?, bytes_of(&a[1])?);
    let parts: Vec<Vec<u8>> = if d.is_empty() {
        b.iter().map(|x| vec![*x]).collect()
    } else {
        let mut out = Vec::new();
        let mut rest = b;
        while let Some(i) = rest.windows(d.len()).position(|w| w == d) {
            out.push(rest[..i].to_vec());
            rest = &rest[i + d.len()..];
        }
        out.push(rest.to_vec());
        out
    };
    super::value::list(parts.into_iter().map(|p| ScalarValue::Binary(Some(p))).collect(), &DataType::Binary)
}

fn bytes_first(t: &[SqlType], rest: &[SqlType], ret: SqlType) -> Result<SqlType, String> {
    if t[0] != SqlType::Bytes || t.len() - 1 > rest.len() || t[1..].iter().zip(rest).any(|(a, b)| a != b) {
        return Err("expected BYTES and the other arguments of the STRING form".into());
    }
    Ok(ret)
}

/// The BYTES forms of string functions, by the function's name.
pub fn bytes_overloads() -> Vec<RowFunction> {
    vec![
        RowFunction {
            name: "SUBSTRING",
            arity: between(2, 3),
            description: "SUBSTRING(bytes, pos[, len]): 1-based; a negative pos counts from the end.",
            returns: |t| bytes_first(t, &[SqlType::Int, SqlType::Int], SqlType::Bytes),
            eval: substring,
        },
        RowFunction {
            name: "LPAD",
            arity: between(3, 3),
            description: "LPAD(bytes, length, padding): padded on the left, or cut to the length.",
            returns: |t| bytes_first(t, &[SqlType::Int, SqlType::Bytes], SqlType::Bytes),
            eval: |a, _| pad(a, true),
        },
        RowFunction {
            name: "RPAD",
            arity: between(3, 3),
            description: "RPAD(bytes, length, padding): padded on the right, or cut to the length.",
            returns: |t| bytes_first(t, &[SqlType::Int, SqlType::Bytes], SqlType::Bytes),
            eval: |a, _| pad(a, false),
        },
        RowFunction {
            name: "LEN",
            arity: between(1, 1),
            description: "LEN(bytes): the number of bytes.",
            returns: |t| bytes_first(t, &[], SqlType::Int),
            eval: |a, _| Some(ScalarValue::Int32(Some(i32::try_from(bytes_of(&a[0])?.len()).ok()?))),
        },
        RowFunction {
            name: "SPLIT",
            arity: between(2, 2),
            description: "SPLIT(bytes, delimiter): the parts between delimiters.",
            returns: |t| bytes_first(t, &[SqlType::Bytes], SqlType::Array(Box::new(SqlType::Bytes))),
            eval: split,
        },
    ]
}

pub fn functions() -> Vec<RowFunction> {
    vec![
        RowFunction {
            name: "INT_FROM_BYTES",
            arity: between(1, 2),
            description: "INT_FROM_BYTES(bytes[, 'BIG_ENDIAN'|'LITTLE_ENDIAN']): an INT from 4 bytes; null for another length.",
            returns: |t| takes_bytes(t, SqlType::Int),
            eval: int_from,
        },
        RowFunction {
            name: "BIGINT_FROM_BYTES",
            arity: between(1, 2),
            description: "BIGINT_FROM_BYTES(bytes[, 'BIG_ENDIAN'|'LITTLE_ENDIAN']): a BIGINT from 8 bytes; null for another length.",
            returns: |t| takes_bytes(t, SqlType::Bigint),
            eval: bigint_from,
        },
        RowFunction {
            name: "DOUBLE_FROM_BYTES",
            arity: between(1, 2),
            description: "DOUBLE_FROM_BYTES(bytes[, 'BIG_ENDIAN'|'LITTLE_ENDIAN']): a DOUBLE from 8 bytes; null for another length.",
            returns: |t| takes_bytes(t, SqlType::Double),
            eval: double_from,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn b64(s: &str) -> ScalarValue {
        ScalarValue::Binary(Some(base64::engine::general_purpose::STANDARD.decode(s).expect("base64")))
    }

    #[test]
    fn reads_the_documented_examples() {
        assert_eq!(bigint_from(&[b64("AAAAASoF8gA=")], &DataType::Int64), Some(ScalarValue::Int64(Some(5_000_000_000))));
        assert_eq!(int_from(&[b64("AAAH5Q==")], &DataType::Int32), Some(ScalarValue::Int32(Some(2021))));
        let Some(ScalarValue::Float64(Some(d))) = double_from(&[b64("QICm/ZvJ9YI=")], &DataType::Float64) else { panic!("double") };
        assert!((d - 532.8738323).abs() < 1e-9);
    }

    fn b(x: &[u8]) -> ScalarValue {
        ScalarValue::Binary(Some(x.to_vec()))
    }

    #[test]
    fn bytes_forms_of_string_functions() {
        let i = |x: i32| ScalarValue::Int32(Some(x));
        assert_eq!(substring(&[b(b"stream"), i(2), i(3)], &DataType::Binary), Some(b(b"tre")));
        assert_eq!(substring(&[b(b"stream"), i(-3)], &DataType::Binary), Some(b(b"eam")));
        assert_eq!(pad(&[b(b"ab"), i(5), b(b"xy")], true), Some(b(b"xyxab")));
        assert_eq!(pad(&[b(b"abcdef"), i(2), b(b"x")], false), Some(b(b"ab")));
        assert_eq!(pad(&[b(b"ab"), i(5), b(b"")], false), None);
        let parts = split(&[b(b",a,,b"), b(b",")], &DataType::Binary).and_then(|v| super::super::value::items(&v)).expect("parts");
        assert_eq!(parts, vec![b(b""), b(b"a"), b(b""), b(b"b")]);
    }

    #[test]
    fn little_endian_reverses_and_bad_input_is_null() {
        let le = ScalarValue::Utf8(Some("little_endian".into()));
        assert_eq!(int_from(&[ScalarValue::Binary(Some(vec![0xE5, 0x07, 0, 0])), le], &DataType::Int32), Some(ScalarValue::Int32(Some(2021))));
        assert_eq!(int_from(&[ScalarValue::Binary(Some(vec![1, 2, 3]))], &DataType::Int32), None);
        let odd = ScalarValue::Utf8(Some("MIDDLE_ENDIAN".into()));
        assert_eq!(int_from(&[ScalarValue::Binary(Some(vec![0, 0, 0, 1])), odd], &DataType::Int32), None);
    }
}
