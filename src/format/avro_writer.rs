//! Writing rows as Confluent-framed Avro with a registered schema, by `arrow-avro`: the
//! schema ksqlDB's conventions give the columns, or any schema registered for the subject
//! (a source whose columns came from the registry writes with its schema). Columns are
//! matched to the schema's fields by name ignoring case and converted to the Arrow types
//! `arrow-avro` writes each Avro type from (enum symbols, timestamps in UTC, floats).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, DictionaryArray, Int32Array, ListArray, MapArray, RecordBatch, StringArray, StructArray, new_null_array};
use arrow::datatypes::{DataType, Field, Fields, Int32Type, Schema, SchemaRef, TimeUnit};
use arrow_avro::schema::{FingerprintStrategy, SCHEMA_METADATA_KEY};
use arrow_avro::writer::WriterBuilder;
use arrow_avro::writer::format::AvroSoeFormat;
use parking_lot::Mutex;
use serde_json::Value;

use super::avro::SINGLE;
use super::avro_schema::{inline_names, wrap_as_record};
use super::{EncodedRows, FormatError, RowEncoder};

/// Encodes rows as Confluent-framed Avro with the schema registered under `id`.
pub struct AvroEncoder {
    encoder: Result<Mutex<arrow_avro::writer::Encoder>, String>,
    /// The record written: its Arrow schema, each field's Avro type and the column it
    /// takes (None: written as null).
    schema: SchemaRef,
    fields: Vec<(Value, Option<usize>)>,
    unwrapped: bool,
}

impl AvroEncoder {
    /// `schema` is the registered writer schema (a record, or a bare type when unwrapped).
    pub fn new(columns: Fields, unwrapped: bool, id: Option<i32>, schema: &Value) -> AvroEncoder {
        let (columns, avro) = if unwrapped {
            let f = columns.first().map(|f| f.as_ref().clone().with_name(SINGLE)).unwrap_or_else(|| Field::new(SINGLE, DataType::Null, true));
            (Fields::from(vec![f]), wrap_as_record(schema.clone(), SINGLE))
        } else {
            (columns, schema.clone())
        };
        let inlined = inline_names(&avro);
        let writer_fields = inlined.get("fields").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut fields = Vec::new();
        let mut arrow_fields = Vec::new();
        for f in &writer_fields {
            let name = f.get("name").and_then(Value::as_str).unwrap_or_default();
            let t = f.get("type").cloned().unwrap_or(Value::Null);
            let column = columns.iter().position(|c| c.name() == name).or_else(|| columns.iter().position(|c| c.name().eq_ignore_ascii_case(name)));
            let ours = column.map(|c| columns[c].data_type().clone()).unwrap_or(DataType::Null);
            arrow_fields.push(writer_field(name, &t, &ours));
            fields.push((t, column));
        }
        let mut md = HashMap::new();
        md.insert(SCHEMA_METADATA_KEY.to_string(), avro.to_string());
        let arrow_schema = Schema::new_with_metadata(arrow_fields, md);
        let encoder = match id {
            None => Err("the AVRO format writes no records until its schema is registered".to_string()),
            Some(id) => WriterBuilder::new(arrow_schema.clone())
                .with_fingerprint_strategy(FingerprintStrategy::Id(id as u32))
                .build_encoder::<AvroSoeFormat>()
                .map(Mutex::new)
                .map_err(|e| format!("cannot write these columns with the AVRO schema {avro}: {e}")),
        };
        AvroEncoder { encoder, schema: Arc::new(arrow_schema), fields, unwrapped }
    }
}

/// The non-null branch of an optional union, and whether it was optional.
fn optional(t: &Value) -> (&Value, bool) {
    if let Value::Array(branches) = t
        && branches.len() == 2
        && let Some(other) = branches.iter().find(|b| b.as_str() != Some("null"))
        && branches.iter().any(|b| b.as_str() == Some("null"))
    {
        return (other, true);
    }
    (t, false)
}

fn kind(t: &Value) -> &str {
    t.as_str().or_else(|| t.get("type").and_then(Value::as_str)).unwrap_or("")
}

/// The Arrow field `arrow-avro` writes Avro type `t` from, for a column of type `ours`.
fn writer_field(name: &str, t: &Value, ours: &DataType) -> Field {
    let (inner, nullable) = optional(t);
    Field::new(name, writer_type(inner, ours), nullable)
}

fn writer_type(t: &Value, ours: &DataType) -> DataType {
    let logical = t.get("logicalType").and_then(Value::as_str);
    match (kind(t), logical) {
        ("record", _) => {
            let ours_fields = match ours {
                DataType::Struct(fs) => fs.clone(),
                _ => Fields::empty(),
            };
            let fields: Vec<Field> = t
                .get("fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|f| {
                    let name = f.get("name").and_then(Value::as_str).unwrap_or_default();
                    let child = find(&ours_fields, name).map(|i| ours_fields[i].data_type().clone()).unwrap_or(DataType::Null);
                    writer_field(name, f.get("type").unwrap_or(&Value::Null), &child)
                })
                .collect();
            DataType::Struct(fields.into())
        }
        ("array", _) => {
            let item = match ours {
                DataType::List(f) => f.data_type().clone(),
                _ => DataType::Null,
            };
            DataType::List(Arc::new(writer_field("item", t.get("items").unwrap_or(&Value::Null), &item)))
        }
        ("map", _) => {
            let value = match ours {
                DataType::Map(f, _) => match f.data_type() {
                    DataType::Struct(kv) if kv.len() == 2 => kv[1].data_type().clone(),
                    _ => DataType::Null,
                },
                _ => DataType::Null,
            };
            let entries = DataType::Struct(Fields::from(vec![
                Field::new("key", DataType::Utf8, false),
                writer_field("value", t.get("values").unwrap_or(&Value::Null), &value),
            ]));
            DataType::Map(Arc::new(Field::new("entries", entries, false)), false)
        }
        ("enum", _) => DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
        ("int", Some("date")) => DataType::Date32,
        ("int", Some("time-millis")) => DataType::Time32(TimeUnit::Millisecond),
        ("long", Some("time-micros")) => DataType::Time64(TimeUnit::Microsecond),
        ("long", Some("timestamp-millis")) => DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into())),
        ("long", Some("timestamp-micros")) => DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
        ("long", Some("local-timestamp-millis")) => DataType::Timestamp(TimeUnit::Millisecond, None),
        ("long", Some("local-timestamp-micros")) => DataType::Timestamp(TimeUnit::Microsecond, None),
        ("bytes" | "fixed", Some("decimal")) => {
            let p = t.get("precision").and_then(Value::as_u64).unwrap_or(38).min(38) as u8;
            let s = t.get("scale").and_then(Value::as_i64).unwrap_or(0) as i8;
            DataType::Decimal128(p, s)
        }
        ("string", Some("uuid")) | ("string", _) => DataType::Utf8,
        ("fixed", _) => DataType::FixedSizeBinary(t.get("size").and_then(Value::as_i64).unwrap_or(0) as i32),
        ("bytes", _) => DataType::Binary,
        ("boolean", _) => DataType::Boolean,
        ("int", _) => DataType::Int32,
        ("long", _) => DataType::Int64,
        ("float", _) => DataType::Float32,
        ("double", _) => DataType::Float64,
        _ => ours.clone(),
    }
}

fn find(fields: &Fields, name: &str) -> Option<usize> {
    fields.iter().position(|f| f.name() == name).or_else(|| fields.iter().position(|f| f.name().eq_ignore_ascii_case(name)))
}

/// Column `a` as the Arrow array `target` (from [`writer_type`] of Avro type `t`).
fn to_writer(a: &ArrayRef, t: &Value, target: &DataType) -> Result<ArrayRef, String> {
    let (t, _) = optional(t);
    if a.data_type() == target {
        return Ok(a.clone());
    }
    let err = |e: arrow::error::ArrowError| e.to_string();
    match target {
        DataType::Struct(tf) => {
            let Some(s) = a.as_any().downcast_ref::<StructArray>() else { return Ok(new_null_array(target, a.len())) };
            let wfields = t.get("fields").and_then(Value::as_array).cloned().unwrap_or_default();
            let cols = tf
                .iter()
                .zip(&wfields)
                .map(|(f, wf)| match s.column_names().iter().position(|n| *n == f.name()).or_else(|| find(s.fields(), f.name())) {
                    Some(i) => to_writer(s.column(i), wf.get("type").unwrap_or(&Value::Null), f.data_type()),
                    None => Ok(new_null_array(f.data_type(), a.len())),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Arc::new(StructArray::try_new(tf.clone(), cols, s.nulls().cloned()).map_err(err)?))
        }
        DataType::List(tf) => {
            let Some(l) = a.as_any().downcast_ref::<ListArray>() else { return Ok(new_null_array(target, a.len())) };
            let values = to_writer(l.values(), t.get("items").unwrap_or(&Value::Null), tf.data_type())?;
            Ok(Arc::new(ListArray::try_new(tf.clone(), l.offsets().clone(), values, l.nulls().cloned()).map_err(err)?))
        }
        DataType::Map(tf, sorted) => {
            let Some(m) = a.as_any().downcast_ref::<MapArray>() else { return Ok(new_null_array(target, a.len())) };
            let DataType::Struct(kv) = tf.data_type() else { return Err("a map's entries are not key/value records".into()) };
            let keys = arrow::compute::cast(m.keys(), &DataType::Utf8).map_err(err)?;
            let values = to_writer(m.values(), t.get("values").unwrap_or(&Value::Null), kv[1].data_type())?;
            let entries = StructArray::try_new(kv.clone(), vec![keys, values], None).map_err(err)?;
            Ok(Arc::new(MapArray::try_new(tf.clone(), m.offsets().clone(), entries, m.nulls().cloned(), *sorted).map_err(err)?))
        }
        DataType::Dictionary(_, _) => {
            let symbols: Vec<String> =
                t.get("symbols").and_then(Value::as_array).into_iter().flatten().filter_map(|s| s.as_str().map(str::to_string)).collect();
            let text = arrow::compute::cast(a, &DataType::Utf8).map_err(err)?;
            let text = text.as_string::<i32>();
            let keys: Int32Array = text
                .iter()
                .map(|v| match v {
                    None => Ok(None),
                    Some(s) => symbols.iter().position(|x| x == s).map(|i| Some(i as i32)).ok_or_else(|| {
                        format!("'{s}' is not a symbol of the enum {} (symbols: {})", t.get("name").and_then(Value::as_str).unwrap_or("?"), symbols.join(", "))
                    }),
                })
                .collect::<Result<_, String>>()?;
            let dict = DictionaryArray::<Int32Type>::try_new(keys, Arc::new(StringArray::from(symbols.clone()))).map_err(err)?;
            Ok(Arc::new(dict))
        }
        DataType::Null => Ok(new_null_array(target, a.len())),
        _ => arrow::compute::cast(a, target).map_err(err),
    }
}

impl RowEncoder for AvroEncoder {
    fn encode(&self, columns: &[ArrayRef], rows: usize) -> Result<EncodedRows, FormatError> {
        let encoder = self.encoder.as_ref().map_err(|e| FormatError::Avro(e.clone()))?;
        let cols = self
            .fields
            .iter()
            .zip(self.schema.fields())
            .map(|((t, column), f)| match column.and_then(|c| columns.get(c)) {
                Some(c) => to_writer(c, t, f.data_type()).map_err(|e| format!("field {}: {e}", f.name())),
                None => Ok(new_null_array(f.data_type(), rows)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(FormatError::Avro)?;
        let batch = RecordBatch::try_new(self.schema.clone(), cols).map_err(|e| FormatError::Avro(format!("{e}; the schema's field may not be null")))?;
        let mut enc = encoder.lock();
        enc.encode(&batch).map_err(|e| FormatError::Avro(e.to_string()))?;
        let encoded = enc.flush();
        let mut out = EncodedRows::with_capacity(rows);
        for (i, row) in encoded.iter().enumerate() {
            if self.unwrapped && columns.first().is_some_and(|c| c.is_null(i)) {
                out.push_null();
            } else {
                out.buf().extend_from_slice(&row);
                out.end_row();
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use serde_json::json;

    #[test]
    fn columns_are_written_with_a_registered_schema_by_name_with_enum_symbols() {
        let schema = json!({"type": "record", "name": "Account", "fields": [
            {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["GOLD", "BASIC"]}},
            {"name": "id", "type": "long"}
        ]});
        let columns: Fields = vec![Field::new("ID", DataType::Int64, true), Field::new("KIND", DataType::Utf8, true)].into();
        let enc = AvroEncoder::new(columns, false, Some(5), &schema);
        let data: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(vec![7])), Arc::new(StringArray::from(vec!["BASIC"]))];
        let rows = enc.encode(&data, 1).unwrap();
        let frame = rows.get(0).unwrap();
        assert_eq!(&frame[..5], &[0, 0, 0, 0, 5]);
        let parsed = apache_avro::Schema::parse(&schema).unwrap();
        let value = apache_avro::from_avro_datum(&parsed, &mut &frame[5..], None).unwrap();
        use apache_avro::types::Value as A;
        assert_eq!(value, A::Record(vec![("kind".into(), A::Enum(1, "BASIC".into())), ("id".into(), A::Long(7))]));
        let bad: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(vec![7])), Arc::new(StringArray::from(vec!["PLATINUM"]))];
        let err = enc.encode(&bad, 1).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("'PLATINUM' is not a symbol of the enum Kind"), "{err}");
        let nulls: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(vec![None])), Arc::new(StringArray::from(vec!["GOLD"]))];
        let err = enc.encode(&nulls, 1).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("may not be null"), "{err}");
    }
}
