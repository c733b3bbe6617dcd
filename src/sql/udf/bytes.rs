//! Numbers read from BYTES: INT_FROM_BYTES (4 bytes), BIGINT_FROM_BYTES and
//! DOUBLE_FROM_BYTES (8 bytes), big-endian unless told 'LITTLE_ENDIAN'; null for a wrong
//! length or an unknown byte order, as ksqlDB documents.

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

    #[test]
    fn little_endian_reverses_and_bad_input_is_null() {
        let le = ScalarValue::Utf8(Some("little_endian".into()));
        assert_eq!(int_from(&[ScalarValue::Binary(Some(vec![0xE5, 0x07, 0, 0])), le], &DataType::Int32), Some(ScalarValue::Int32(Some(2021))));
        assert_eq!(int_from(&[ScalarValue::Binary(Some(vec![1, 2, 3]))], &DataType::Int32), None);
        let odd = ScalarValue::Utf8(Some("MIDDLE_ENDIAN".into()));
        assert_eq!(int_from(&[ScalarValue::Binary(Some(vec![0, 0, 0, 1])), odd], &DataType::Int32), None);
    }
}
