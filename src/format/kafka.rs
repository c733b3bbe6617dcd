//! The KAFKA format: a single primitive column in Kafka's own serializer encodings
//! (INT: 4-byte big-endian, BIGINT: 8-byte big-endian, DOUBLE: IEEE-754 big-endian,
//! STRING: UTF-8, BYTES: raw).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BinaryArray, Float64Array, Int32Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Fields};

use super::{DecodedRows, EncodedRows, FormatError, RowDecoder, RowEncoder};

pub struct KafkaDecoder {
    fields: Fields,
}

impl KafkaDecoder {
    pub fn new(fields: Fields) -> Self {
        KafkaDecoder { fields }
    }
}

fn fixed<const N: usize>(b: &[u8]) -> Result<[u8; N], String> {
    b.try_into().map_err(|_| format!("expected {N} bytes, found {}", b.len()))
}

impl RowDecoder for KafkaDecoder {
    fn decode<'a>(&mut self, inputs: &[Option<&'a [u8]>]) -> DecodedRows {
        let mut out = DecodedRows::default();
        let Some(field) = self.fields.first() else {
            out.kept = (0..inputs.len() as u32).collect();
            return out;
        };
        macro_rules! decode_with {
            ($arr:ty, $conv:expr) => {{
                let mut vals = Vec::with_capacity(inputs.len());
                for (i, input) in inputs.iter().enumerate() {
                    match input {
                        None => {
                            vals.push(None);
                            out.kept.push(i as u32);
                        }
                        Some(b) => match $conv(*b) {
                            Ok(v) => {
                                vals.push(Some(v));
                                out.kept.push(i as u32);
                            }
                            Err(e) => out.errors.push((i as u32, format!("KAFKA {}: {e}", field.name()))),
                        },
                    }
                }
                Arc::new(<$arr>::from(vals)) as ArrayRef
            }};
        }
        let col = match field.data_type() {
            DataType::Int32 => decode_with!(Int32Array, |b: &[u8]| fixed::<4>(b).map(i32::from_be_bytes)),
            DataType::Int64 => decode_with!(Int64Array, |b: &[u8]| fixed::<8>(b).map(i64::from_be_bytes)),
            DataType::Float64 => decode_with!(Float64Array, |b: &[u8]| fixed::<8>(b).map(f64::from_be_bytes)),
            DataType::Binary => decode_with!(BinaryArray, |b: &'a [u8]| Ok::<_, String>(b)),
            _ => decode_with!(StringArray, |b: &'a [u8]| std::str::from_utf8(b).map_err(|_| "value is not UTF-8".to_string())),
        };
        out.columns = vec![col];
        out
    }
}

/// Writes the single column's value in Kafka's serializer layout.
pub struct KafkaEncoder;

impl RowEncoder for KafkaEncoder {
    fn encode(&self, columns: &[ArrayRef], rows: usize) -> Result<EncodedRows, FormatError> {
        let mut out = EncodedRows::with_capacity(rows);
        let Some(col) = columns.first() else {
            for _ in 0..rows {
                out.push_null();
            }
            return Ok(out);
        };
        for i in 0..rows {
            if col.is_null(i) {
                out.push_null();
                continue;
            }
            let buf = out.buf();
            match col.data_type() {
                DataType::Int32 => buf.extend_from_slice(&col.as_primitive::<arrow::datatypes::Int32Type>().value(i).to_be_bytes()),
                DataType::Int64 => buf.extend_from_slice(&col.as_primitive::<arrow::datatypes::Int64Type>().value(i).to_be_bytes()),
                DataType::Float64 => buf.extend_from_slice(&col.as_primitive::<arrow::datatypes::Float64Type>().value(i).to_be_bytes()),
                DataType::Utf8 => buf.extend_from_slice(col.as_string::<i32>().value(i).as_bytes()),
                DataType::Binary => buf.extend_from_slice(col.as_binary::<i32>().value(i)),
                other => return Err(FormatError::KafkaCannotWrite(other.clone())),
            }
            out.end_row();
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Field;

    #[test]
    fn integers_round_trip_big_endian() {
        let f: Fields = vec![Field::new("K", DataType::Int32, true)].into();
        let mut d = KafkaDecoder::new(f);
        let r = d.decode(&[Some(&[0, 0, 1, 0]), Some(&[1, 2]), None]);
        assert_eq!(r.kept, vec![0, 2]);
        assert_eq!(r.errors.len(), 1);
        let rows = KafkaEncoder.encode(&r.columns, 2).unwrap();
        assert_eq!(rows.get(0), Some(&[0u8, 0, 1, 0][..]));
        assert_eq!(rows.get(1), None);
    }
}
