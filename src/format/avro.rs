//! The AVRO format: records framed as Confluent's wire format (magic byte 0, the writer
//! schema's 4-byte registry id, the Avro body), decoded straight into Arrow columns and
//! encoded from them by `arrow-avro`.
//!
//! Decoding reads each record with the writer schema its id names, resolved against a
//! reader schema made for the source's columns (`avro_schema::reader_type`): fields are
//! matched by name, exactly or else ignoring case, missing ones read as null, and Avro's
//! promotions apply. One decoder is kept per writer id. Records whose id is unknown, whose
//! frame is wrong or whose body does not decode are reported and left out. A single key
//! or unwrapped value is a bare Avro value; it is read and written as the only field of a
//! record, which Avro encodes with the same bytes.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, ListArray, MapArray, RecordBatch, StructArray, new_null_array};
use arrow::datatypes::{DataType, Fields, TimeUnit};
use arrow_avro::reader::ReaderBuilder;
use arrow_avro::schema::{AvroSchema, Fingerprint, FingerprintAlgorithm, SchemaStore};
use serde_json::Value;

use super::avro_schema::{inline_names, reader_type, wrap_as_record};
pub use super::avro_writer::AvroEncoder;
use super::{DecodedRows, RegistryHandle, RowDecoder};
use crate::catalog::types::SqlType;

/// The field an unwrapped value is read and written as.
pub(crate) const SINGLE: &str = "v";

/// Rows a decoder returns at most per batch.
const DECODE_BATCH: usize = 4096;

/// Splits a Confluent frame into its schema id and body.
pub fn split_frame(bytes: &[u8]) -> Result<(i32, &[u8]), String> {
    match bytes {
        [0, a, b, c, d, body @ ..] => Ok((i32::from_be_bytes([*a, *b, *c, *d]), body)),
        [0, ..] => Err(format!("the record is {} bytes, too short for the schema registry's frame (a magic byte and a 4-byte schema id)", bytes.len())),
        _ => Err(format!(
            "unknown magic byte {}: the record was not written by a schema-registry serializer (it must start with byte 0 and a 4-byte schema id)",
            bytes.first().copied().unwrap_or_default()
        )),
    }
}

/// How records written with one schema id are read.
struct WriterPlan {
    writer: String,
    reader: String,
    decoder: arrow_avro::reader::Decoder,
}

impl WriterPlan {
    fn new(id: i32, writer: String, reader: String) -> Result<WriterPlan, String> {
        let decoder = build_decoder(id, &writer, &reader)?;
        Ok(WriterPlan { writer, reader, decoder })
    }

    /// Decodes whole frames; None unless all the bytes made exactly `rows` rows. After None
    /// the decoder is rebuilt, as it may have stopped inside a record.
    fn decode(&mut self, id: i32, frames: &[u8], rows: usize) -> Option<Vec<RecordBatch>> {
        let decoded = self.try_decode(frames, rows);
        if decoded.is_none() {
            self.decoder = build_decoder(id, &self.writer, &self.reader).ok()?;
        }
        decoded
    }

    fn try_decode(&mut self, frames: &[u8], rows: usize) -> Option<Vec<RecordBatch>> {
        let (mut pos, mut got, mut batches) = (0, 0, Vec::new());
        while pos < frames.len() {
            let n = self.decoder.decode(&frames[pos..]).ok()?;
            pos += n;
            match self.decoder.flush().ok()? {
                Some(b) => {
                    got += b.num_rows();
                    batches.push(b);
                }
                None if n == 0 || pos == frames.len() => return None,
                None => {}
            }
        }
        (got == rows).then_some(batches)
    }
}

fn build_decoder(id: i32, writer: &str, reader: &str) -> Result<arrow_avro::reader::Decoder, String> {
    let mut store = SchemaStore::new_with_type(FingerprintAlgorithm::Id);
    store.set(Fingerprint::Id(id as u32), AvroSchema::new(writer.to_string())).map_err(|e| e.to_string())?;
    ReaderBuilder::new()
        .with_batch_size(DECODE_BATCH)
        .with_writer_schema_store(store)
        .with_reader_schema(AvroSchema::new(reader.to_string()))
        .build_decoder()
        .map_err(|e| format!("records written with schema id {id} cannot be read as this source's columns: {e}"))
}

pub struct AvroDecoder {
    fields: Fields,
    types: Vec<SqlType>,
    unwrapped: bool,
    registry: Option<RegistryHandle>,
    plans: HashMap<i32, Result<WriterPlan, String>>,
}

impl AvroDecoder {
    pub fn new(fields: Fields, unwrapped: bool, registry: Option<RegistryHandle>) -> AvroDecoder {
        let types = fields.iter().map(|f| SqlType::from_arrow(f.data_type()).unwrap_or(SqlType::String)).collect();
        AvroDecoder { fields, types, unwrapped, registry, plans: HashMap::new() }
    }

    /// The writer and reader schemas (both records) for records written with `id`.
    fn schemas_for(&self, id: i32) -> Result<(String, String), String> {
        let registry = self.registry.as_ref().ok_or("no schema registry is configured to look up the record's schema id")?;
        let (kind, text) = registry.0.schema_text(id)?;
        if kind != "AVRO" {
            return Err(format!("schema id {id} is a {kind} schema, not an AVRO one"));
        }
        let writer: Value = serde_json::from_str(&text).map_err(|e| format!("schema id {id} is not JSON: {e}"))?;
        if super::avro_schema::is_recursive(&writer) {
            return Err(format!("schema id {id} is recursive (a type holds itself); Eddy does not read such records"));
        }
        let writer = inline_names(&writer);
        let mut names = 0;
        let is_record = writer.get("type").and_then(Value::as_str) == Some("record");
        let (writer, reader) = if self.unwrapped || !is_record {
            // A bare value: one column read from the whole value.
            let ty = self.types.first().cloned().unwrap_or(SqlType::String);
            let reader = reader_type(&writer, &ty, &mut names);
            (wrap_as_record(writer, SINGLE), wrap_as_record(reader, SINGLE))
        } else {
            let ty = SqlType::Struct(self.fields.iter().zip(&self.types).map(|(f, t)| (f.name().clone(), t.clone())).collect());
            let reader = reader_type(&writer, &ty, &mut names);
            // The top-level record is never null.
            let reader = match reader {
                Value::Array(mut branches) if branches.len() == 2 => branches.remove(1),
                other => other,
            };
            (writer, reader)
        };
        Ok((writer.to_string(), reader.to_string()))
    }

    fn plan(&mut self, id: i32) -> Result<&mut WriterPlan, String> {
        if !self.plans.contains_key(&id) {
            // A failed lookup is not kept: the id may be registered later, or the registry
            // answer again. A schema that cannot be read as the columns is kept.
            let (writer, reader) = self.schemas_for(id)?;
            self.plans.insert(id, WriterPlan::new(id, writer, reader));
        }
        match self.plans.get_mut(&id) {
            Some(Ok(p)) => Ok(p),
            Some(Err(e)) => Err(e.clone()),
            None => Err(format!("schema id {id} is unknown")),
        }
    }

    /// Decodes a run of records written with one id, in order; the columns of the good ones.
    fn decode_run(&mut self, id: i32, run: &[(u32, &[u8])], out: &mut DecodedRows, pieces: &mut Vec<Vec<ArrayRef>>) {
        let fields = self.fields.clone();
        let plan = match self.plan(id) {
            Ok(p) => p,
            Err(e) => {
                out.errors.extend(run.iter().map(|(i, _)| (*i, e.clone())));
                return;
            }
        };
        let mut frames = Vec::with_capacity(run.iter().map(|(_, f)| f.len()).sum());
        for (_, f) in run {
            frames.extend_from_slice(f);
        }
        if let Some(batches) = plan.decode(id, &frames, run.len()) {
            match batches.iter().map(|b| conform_batch(b, &fields)).collect::<Result<Vec<_>, _>>() {
                Ok(cols) => {
                    pieces.extend(cols);
                    out.kept.extend(run.iter().map(|(i, _)| *i));
                }
                // A value the reader schema admits but the column cannot hold: the run's
                // records are bad alike.
                Err(e) => out.errors.extend(run.iter().map(|(i, _)| (*i, e.clone()))),
            }
            return;
        }
        // Some record is bad: read them one by one.
        for (i, frame) in run {
            match plan.decode(id, frame, 1).map(|b| b.iter().map(|b| conform_batch(b, &fields)).collect::<Result<Vec<_>, _>>()) {
                Some(Ok(cols)) => {
                    out.kept.push(*i);
                    pieces.extend(cols);
                }
                Some(Err(e)) => out.errors.push((*i, e)),
                None => out.errors.push((*i, format!("the record's Avro body does not decode with schema id {id} (truncated or written with another schema)"))),
            }
        }
    }
}

impl RowDecoder for AvroDecoder {
    fn decode(&mut self, inputs: &[Option<&[u8]>]) -> DecodedRows {
        let mut out = DecodedRows::default();
        let mut pieces: Vec<Vec<ArrayRef>> = Vec::new();
        let mut i = 0;
        while i < inputs.len() {
            match inputs[i] {
                None => {
                    let start = i;
                    while i < inputs.len() && inputs[i].is_none() {
                        i += 1;
                    }
                    pieces.push(self.fields.iter().map(|f| new_null_array(f.data_type(), i - start)).collect());
                    out.kept.extend(start as u32..i as u32);
                }
                Some(bytes) => match split_frame(bytes) {
                    Err(e) => {
                        out.errors.push((i as u32, e));
                        i += 1;
                    }
                    Ok((id, _)) => {
                        let mut run = Vec::new();
                        while i < inputs.len()
                            && let Some(b) = inputs[i]
                            && matches!(split_frame(b), Ok((other, _)) if other == id)
                        {
                            run.push((i as u32, b));
                            i += 1;
                        }
                        self.decode_run(id, &run, &mut out, &mut pieces);
                    }
                },
            }
        }
        out.columns = concat_pieces(&self.fields, pieces);
        // Runs were decoded in input order; kept and errors interleave by index.
        out.errors.sort_by_key(|e| e.0);
        out
    }
}

fn concat_pieces(fields: &Fields, pieces: Vec<Vec<ArrayRef>>) -> Vec<ArrayRef> {
    (0..fields.len())
        .map(|c| {
            let parts: Vec<&dyn Array> = pieces.iter().map(|p| p[c].as_ref()).collect();
            if parts.is_empty() {
                return new_null_array(fields[c].data_type(), 0);
            }
            arrow::compute::concat(&parts).unwrap_or_else(|_| new_null_array(fields[c].data_type(), 0))
        })
        .collect()
}

/// The decoded columns with this source's Arrow types.
fn conform_batch(batch: &RecordBatch, fields: &Fields) -> Result<Vec<ArrayRef>, String> {
    if batch.num_columns() != fields.len() {
        return Err(format!("decoded {} fields for {} columns", batch.num_columns(), fields.len()));
    }
    batch.columns().iter().zip(fields.iter()).map(|(a, f)| conform(a, f.data_type())).collect()
}

/// `a` as an array of `target`: nested arrays rebuilt with the target's field names, leaves
/// cast (dictionaries of enum symbols to strings, micro-second times to milliseconds).
pub(crate) fn conform(a: &ArrayRef, target: &DataType) -> Result<ArrayRef, String> {
    if a.data_type() == target {
        return Ok(a.clone());
    }
    let err = |e: arrow::error::ArrowError| e.to_string();
    match target {
        DataType::Struct(tf) => {
            let s = a.as_any().downcast_ref::<StructArray>().ok_or_else(|| format!("expected a record, read {}", a.data_type()))?;
            if s.num_columns() != tf.len() {
                return Err(format!("a record with {} fields read for a struct of {}", s.num_columns(), tf.len()));
            }
            let cols = s.columns().iter().zip(tf.iter()).map(|(c, f)| conform(c, f.data_type())).collect::<Result<Vec<_>, _>>()?;
            Ok(Arc::new(StructArray::try_new(tf.clone(), cols, s.nulls().cloned()).map_err(err)?))
        }
        DataType::List(tf) => {
            let l = a.as_any().downcast_ref::<ListArray>().ok_or_else(|| format!("expected an array, read {}", a.data_type()))?;
            let values = conform(l.values(), tf.data_type())?;
            Ok(Arc::new(ListArray::try_new(tf.clone(), l.offsets().clone(), values, l.nulls().cloned()).map_err(err)?))
        }
        DataType::Map(tf, sorted) => {
            let m = a.as_any().downcast_ref::<MapArray>().ok_or_else(|| format!("expected a map, read {}", a.data_type()))?;
            let entries: ArrayRef = Arc::new(m.entries().clone());
            let entries = conform(&entries, tf.data_type())?;
            let entries = entries.as_any().downcast_ref::<StructArray>().ok_or("map entries are not records")?.clone();
            // Map keys are never null.
            let entries = StructArray::try_new(
                match tf.data_type() {
                    DataType::Struct(f) => f.clone(),
                    _ => entries.fields().clone(),
                },
                entries.columns().to_vec(),
                None,
            )
            .map_err(err)?;
            Ok(Arc::new(MapArray::try_new(tf.clone(), m.offsets().clone(), entries, m.nulls().cloned(), *sorted).map_err(err)?))
        }
        DataType::Time32(TimeUnit::Millisecond) if matches!(a.data_type(), DataType::Time64(TimeUnit::Microsecond)) => {
            let micros = arrow::compute::cast(a, &DataType::Int64).map_err(err)?;
            let millis = arrow::compute::kernels::numeric::div(&micros, &arrow::array::Int64Array::new_scalar(1000)).map_err(err)?;
            let millis = arrow::compute::cast(&millis, &DataType::Int32).map_err(err)?;
            arrow::compute::cast(&millis, target).map_err(err)
        }
        // A uuid (arrow-avro reads it as 16 bytes): its canonical text.
        DataType::Utf8 if *a.data_type() == DataType::FixedSizeBinary(16) => {
            let bytes = a.as_any().downcast_ref::<arrow::array::FixedSizeBinaryArray>().ok_or("expected a uuid")?;
            let text: arrow::array::StringArray = bytes
                .iter()
                .map(|b| {
                    b.map(|b| {
                        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
                        format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
                    })
                })
                .collect();
            Ok(Arc::new(text))
        }
        _ => arrow::compute::cast(a, target).map_err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{RowEncoder, SchemaLookup};
    use arrow::array::{AsArray, Int32Array, Int64Array, StringArray};
    use arrow::datatypes::Field;
    use serde_json::json;

    #[derive(Debug, Default)]
    struct Schemas(parking_lot::Mutex<HashMap<i32, String>>);

    impl SchemaLookup for Schemas {
        fn schema_text(&self, id: i32) -> Result<(String, String), String> {
            self.0.lock().get(&id).map(|s| ("AVRO".to_string(), s.clone())).ok_or_else(|| format!("schema id {id} is not registered"))
        }
    }

    fn registry(schemas: &[(i32, Value)]) -> RegistryHandle {
        let s = Schemas::default();
        for (id, v) in schemas {
            s.0.lock().insert(*id, v.to_string());
        }
        RegistryHandle(Arc::new(s))
    }

    fn fields() -> Fields {
        vec![Field::new("ID", DataType::Int64, true), Field::new("NAME", DataType::Utf8, true)].into()
    }

    #[test]
    fn rows_round_trip_through_confluent_frames() {
        let cols: Vec<(&str, &SqlType)> = vec![("ID", &SqlType::Bigint), ("NAME", &SqlType::String)];
        let schema = super::super::avro_schema::schema_for(&cols, false, None);
        let enc = AvroEncoder::new(fields(), false, Some(7), &schema);
        let data: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(vec![Some(1), None])), Arc::new(StringArray::from(vec![Some("a"), Some("b")]))];
        let rows = enc.encode(&data, 2).unwrap();
        assert_eq!(&rows.get(0).unwrap()[..5], &[0, 0, 0, 0, 7]);
        let mut dec = AvroDecoder::new(fields(), false, Some(registry(&[(7, schema)])));
        let r = dec.decode(&[rows.get(0), Some(b"\x01junk"), None, rows.get(1)]);
        assert_eq!(r.kept, vec![0, 2, 3]);
        assert_eq!(r.errors.len(), 1);
        assert!(r.errors[0].1.contains("magic byte"), "{}", r.errors[0].1);
        let ids = r.columns[0].as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!((ids.value(0), ids.is_null(1), ids.is_null(2)), (1, true, true));
        assert_eq!(r.columns[1].as_string::<i32>().value(2), "b");
    }

    #[test]
    fn writer_fields_are_matched_ignoring_case_and_promoted() {
        let writer = json!({"type": "record", "name": "W", "fields": [{"name": "id", "type": "int"}, {"name": "extra", "type": "string"}]});
        let wf: Fields = vec![Field::new("id", DataType::Int32, false), Field::new("extra", DataType::Utf8, false)].into();
        let enc = AvroEncoder::new(wf, false, Some(3), &writer);
        let data: Vec<ArrayRef> = vec![Arc::new(Int32Array::from(vec![5])), Arc::new(StringArray::from(vec!["x"]))];
        let rows = enc.encode(&data, 1).unwrap();
        let mut dec = AvroDecoder::new(fields(), false, Some(registry(&[(3, writer)])));
        let r = dec.decode(&[rows.get(0)]);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.columns[0].as_primitive::<arrow::datatypes::Int64Type>().value(0), 5);
        assert!(r.columns[1].is_null(0));
    }

    #[test]
    fn uuid_strings_read_as_strings() {
        // A writer's uuid logical type is a string on the wire: [id, "uuid" as bytes].
        let writer = json!({"type": "record", "name": "W", "fields": [
            {"name": "ID", "type": "long"}, {"name": "NAME", "type": {"type": "string", "logicalType": "uuid"}}]});
        let uuid = "123e4567-e89b-12d3-a456-426614174000";
        let mut frame = vec![0, 0, 0, 0, 4, 2, (uuid.len() * 2) as u8];
        frame.extend_from_slice(uuid.as_bytes());
        let mut dec = AvroDecoder::new(fields(), false, Some(registry(&[(4, writer.clone())])));
        let r = dec.decode(&[Some(&frame)]);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.columns[1].as_string::<i32>().value(0), uuid);
        // Written back with the same schema, the string is the uuid's text again.
        let rows = AvroEncoder::new(fields(), false, Some(4), &writer).encode(&r.columns, 1).expect("encodes");
        let mut again = AvroDecoder::new(fields(), false, Some(registry(&[(4, writer)])));
        let r2 = again.decode(&[rows.get(0)]);
        assert!(r2.errors.is_empty(), "{:?}", r2.errors);
        assert_eq!(r2.columns[1].as_string::<i32>().value(0), uuid);
    }

    #[test]
    fn unknown_ids_and_truncated_bodies_are_bad_records() {
        let cols: Vec<(&str, &SqlType)> = vec![("ID", &SqlType::Bigint), ("NAME", &SqlType::String)];
        let schema = super::super::avro_schema::schema_for(&cols, false, None);
        let enc = AvroEncoder::new(fields(), false, Some(1), &schema);
        let data: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(vec![Some(1)])), Arc::new(StringArray::from(vec![Some("abcdef")]))];
        let good = enc.encode(&data, 1).unwrap().get(0).unwrap().to_vec();
        let truncated = &good[..good.len() - 3];
        let mut unknown = good.clone();
        unknown[4] = 9;
        let mut dec = AvroDecoder::new(fields(), false, Some(registry(&[(1, schema)])));
        let r = dec.decode(&[Some(truncated), Some(&unknown), Some(&good)]);
        assert_eq!(r.kept, vec![2]);
        assert!(r.errors[0].1.contains("does not decode"), "{}", r.errors[0].1);
        assert!(r.errors[1].1.contains("not registered"), "{}", r.errors[1].1);
    }

    #[test]
    fn unwrapped_keys_are_bare_values() {
        let f: Fields = vec![Field::new("K", DataType::Utf8, true)].into();
        let schema = json!(["null", "string"]);
        let enc = AvroEncoder::new(f.clone(), true, Some(2), &schema);
        let data: Vec<ArrayRef> = vec![Arc::new(StringArray::from(vec![Some("k1"), None]))];
        let rows = enc.encode(&data, 2).unwrap();
        // union branch 1, then the string "k1" (length 2 zig-zagged = 4).
        assert_eq!(rows.get(0).unwrap(), &[0, 0, 0, 0, 2, 2, 4, b'k', b'1']);
        assert_eq!(rows.get(1), None);
        let mut dec = AvroDecoder::new(f, true, Some(registry(&[(2, json!("string"))])));
        let r = dec.decode(&[Some(&[0, 0, 0, 0, 2, 4, b'k', b'2'])]);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.columns[0].as_string::<i32>().value(0), "k2");
    }
}

#[cfg(test)]
mod named_type_tests {
    use super::*;
    use crate::format::SchemaLookup;
    use arrow::array::AsArray;
    use arrow::datatypes::Field;
    use serde_json::json;

    struct One(String);

    impl SchemaLookup for One {
        fn schema_text(&self, _id: i32) -> Result<(String, String), String> {
            Ok(("AVRO".into(), self.0.clone()))
        }
    }

    #[test]
    fn a_named_type_used_twice_is_read_in_both_places() {
        let schema = json!({"type": "record", "name": "Order", "fields": [
            {"name": "home", "type": {"type": "record", "name": "Address", "fields": [{"name": "city", "type": "string"}]}},
            {"name": "work", "type": "Address"}
        ]});
        let parsed = apache_avro::Schema::parse(&schema).unwrap();
        use apache_avro::types::Value as A;
        let city = |c: &str| A::Record(vec![("city".into(), A::String(c.into()))]);
        let body = apache_avro::to_avro_datum(&parsed, A::Record(vec![("home".into(), city("Oslo")), ("work".into(), city("Bergen"))])).unwrap();
        let mut frame = vec![0, 0, 0, 0, 1];
        frame.extend_from_slice(&body);
        let address = DataType::Struct(vec![Field::new("CITY", DataType::Utf8, true)].into());
        let fields: Fields = vec![Field::new("HOME", address.clone(), true), Field::new("WORK", address, true)].into();
        let mut dec = AvroDecoder::new(fields, false, Some(RegistryHandle(Arc::new(One(schema.to_string())))));
        let r = dec.decode(&[Some(&frame)]);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let work = r.columns[1].as_struct();
        assert_eq!(work.column(0).as_string::<i32>().value(0), "Bergen");
    }
}
