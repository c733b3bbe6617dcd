//! The PROTOBUF and PROTOBUF_NOSR formats. PROTOBUF records are framed as Confluent's
//! serializer writes them (magic byte 0, the schema's 4-byte registry id, the message
//! indexes, the message); PROTOBUF_NOSR records are the bare message of a schema made from
//! the source's columns. Schemas are compiled by `protobuf_schema`; records are decoded by
//! `prost-reflect` straight into Arrow columns (`protobuf_arrow`) and written through their
//! JSON mapping (fields matched ignoring case). As in ksqlDB, proto3 has no nulls for
//! scalars, lists and maps: they read as their defaults (0, "", [], {}).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray};
use arrow::datatypes::{DataType, Fields};
use prost_reflect::{DynamicMessage, MessageDescriptor};

pub use super::protobuf_schema::{compile, message_at, message_named, schema_for, unsupported};

use super::protobuf_arrow::{Columns, MessagePlan};
use super::protobuf_wire::Raw;
use super::protobuf_write::RowPlan;
use super::{DecodedRows, EncodedRows, FormatError, ProtobufNullable, RegistryHandle, RowDecoder, RowEncoder};
use crate::catalog::types::SqlType;

fn read_varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn zigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Splits a Confluent PROTOBUF frame: schema id, message indexes, message bytes.
pub fn split_frame(bytes: &[u8]) -> Result<(i32, Vec<i32>, &[u8]), String> {
    let (id, rest) = super::avro::split_frame(bytes)?;
    let mut at = 0;
    let bad = || "the record's message indexes are cut short".to_string();
    let count = zigzag(read_varint(rest, &mut at).ok_or_else(bad)?);
    if !(0..=64).contains(&count) {
        return Err(format!("the record's message index count {count} is not valid"));
    }
    let mut indexes = Vec::new();
    for _ in 0..count {
        indexes.push(zigzag(read_varint(rest, &mut at).ok_or_else(bad)?) as i32);
    }
    if indexes.is_empty() {
        indexes.push(0);
    }
    Ok((id, indexes, &rest[at..]))
}

/// Message indexes as a frame holds them: a zigzag varint count, then each index; the
/// first message's `[0]` as one 0, as Confluent writes it.
pub fn frame_indexes(path: &[i32]) -> Vec<u8> {
    if path == [0] {
        return vec![0];
    }
    let mut out = Vec::new();
    for v in std::iter::once(path.len() as i64).chain(path.iter().map(|i| i64::from(*i))) {
        prost_reflect::prost::encoding::encode_varint(((v << 1) ^ (v >> 63)) as u64, &mut out);
    }
    out
}

/// A writer message and the plan that reads it, or why it cannot be read.
type Planned = Result<(MessageDescriptor, Arc<MessagePlan>), String>;

/// Reads PROTOBUF (framed) or PROTOBUF_NOSR (bare) records straight into Arrow columns.
pub struct ProtobufDecoder {
    fields: Fields,
    unwrapped: bool,
    /// A single unwrapped STRUCT column: the message is the struct.
    whole_message: bool,
    registry: Option<RegistryHandle>,
    /// PROTOBUF_NOSR: the message the columns make, and its plan.
    bare: Option<Planned>,
    /// PROTOBUF: writer messages by schema id and message indexes, with their plans.
    by_id: HashMap<(i32, Vec<i32>), Planned>,
}

impl ProtobufDecoder {
    /// `bare`: PROTOBUF_NOSR, whose messages are those of the schema the columns make
    /// (scalars nullable as given); otherwise records are framed.
    pub fn new(
        fields: Fields,
        columns: &[(&str, &SqlType)],
        unwrapped: bool,
        registry: Option<RegistryHandle>,
        bare: Option<ProtobufNullable>,
    ) -> ProtobufDecoder {
        let whole_message = unwrapped && matches!(columns, [(_, SqlType::Struct(_))]);
        let mut decoder = ProtobufDecoder { fields, unwrapped, whole_message, registry, bare: None, by_id: HashMap::new() };
        if let Some(nullable) = bare {
            let bare = compile(&schema_for(columns, unwrapped, None, nullable)).and_then(|p| message_at(&p, &[0]));
            decoder.bare = Some(bare.and_then(|m| decoder.plan(m)));
        }
        decoder
    }

    fn plan(&self, m: MessageDescriptor) -> Planned {
        let plan = MessagePlan::new(&m, &self.fields, self.unwrapped, self.whole_message)
            .map_err(|e| format!("records of message {} cannot be read as this source's columns: {e}", m.full_name()))?;
        Ok((m, Arc::new(plan)))
    }

    /// The writer message a framed record names, and its plan. Lookups that fail are not
    /// kept (the registry may answer later); plans that fail are.
    fn writer(&mut self, id: i32, indexes: Vec<i32>) -> Planned {
        if let Some(found) = self.by_id.get(&(id, indexes.clone())) {
            return found.clone();
        }
        let registry = self.registry.as_ref().ok_or("no schema registry is configured to look up the record's schema id")?;
        let (kind, text) = registry.0.schema_text(id)?;
        if kind != "PROTOBUF" {
            return Err(format!("schema id {id} is a {kind} schema, not a PROTOBUF one"));
        }
        let planned = message_at(&compile(&text)?, &indexes).and_then(|m| self.plan(m));
        self.by_id.insert((id, indexes), planned.clone());
        planned
    }

    /// Reads one record into `columns` (nothing is appended when it does not decode).
    fn read<'a>(&mut self, bytes: &'a [u8], columns: &mut Columns, staged: &mut Vec<Option<Raw<'a>>>) -> Result<(), String> {
        let ((desc, plan), body) = match &self.bare {
            Some(bare) => (bare.clone()?, bytes),
            None => {
                let (id, indexes, body) = split_frame(bytes)?;
                (self.writer(id, indexes)?, body)
            }
        };
        if let Some(flat) = plan.flat() {
            flat.read(body, staged)?;
            columns.append_flat(flat, staged);
            return Ok(());
        }
        let m = DynamicMessage::decode(desc, body).map_err(|e| format!("the PROTOBUF message does not decode: {e}"))?;
        columns.append(&plan, &m);
        Ok(())
    }
}

impl RowDecoder for ProtobufDecoder {
    fn decode(&mut self, inputs: &[Option<&[u8]>]) -> DecodedRows {
        let mut columns = Columns::new(&self.fields);
        let mut out = DecodedRows::default();
        let mut staged = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            let read = match input {
                None => {
                    columns.append_nulls();
                    Ok(())
                }
                Some(b) => self.read(b, &mut columns, &mut staged),
            };
            match read {
                Ok(()) => {}
                Err(e) => {
                    out.errors.push((i as u32, e));
                    continue;
                }
            }
            out.kept.push(i as u32);
        }
        match columns.finish() {
            Ok(c) => out.columns = c,
            Err(e) => {
                out.errors.extend(out.kept.drain(..).map(|i| (i, format!("the PROTOBUF records do not make this source's columns: {e}"))));
                out.errors.sort_by_key(|e| e.0);
                out.columns = Columns::new(&self.fields).finish().unwrap_or_default();
            }
        }
        out
    }
}

/// Writes PROTOBUF (framed with `id`) or PROTOBUF_NOSR records straight from Arrow rows.
pub struct ProtobufEncoder {
    /// The message rows are written as, and the plan that fills it.
    writer: Result<(MessageDescriptor, RowPlan), String>,
    /// A single unwrapped STRUCT column: the struct is the message.
    whole_message: bool,
    /// A single unwrapped column: written as the message's first field.
    unwrapped: bool,
    /// The message indexes that name the message in its schema, as a frame writes them.
    indexes: Vec<u8>,
    /// PROTOBUF: the schema id (None: not registered); PROTOBUF_NOSR: no frame.
    frame: Option<Option<i32>>,
    /// Keys: a row whose columns are all null is a null record (proto3 cannot tell a
    /// message of unset fields from one of defaults).
    null_when_all_null: bool,
}

impl ProtobufEncoder {
    /// Records are written with the message `schema.1` names (the first without a name) of
    /// the `.proto` text `schema.0`.
    pub fn new(fields: Fields, unwrapped: bool, schema: (&str, Option<&str>), frame: Option<Option<i32>>) -> ProtobufEncoder {
        let named = compile(schema.0).and_then(|p| message_named(&p, schema.1));
        let indexes = named.as_ref().map(|(_, path)| frame_indexes(path)).unwrap_or_else(|_| vec![0]);
        let whole_message = unwrapped && fields.len() == 1 && matches!(fields[0].data_type(), DataType::Struct(_));
        let writer = named.and_then(|(desc, _)| {
            let plan = match fields.first().map(|f| f.data_type()) {
                Some(DataType::Struct(inner)) if whole_message => RowPlan::new(&desc, inner, false),
                _ => RowPlan::new(&desc, &fields, unwrapped),
            };
            plan.map(|p| (desc, p)).map_err(|e| format!("the columns cannot be written as PROTOBUF: {e}"))
        });
        ProtobufEncoder { writer, whole_message, unwrapped: unwrapped && !whole_message, indexes, frame, null_when_all_null: false }
    }

    /// Writes rows of only nulls as null records (for keys).
    pub fn null_when_all_null(mut self) -> Self {
        self.null_when_all_null = true;
        self
    }
}

impl RowEncoder for ProtobufEncoder {
    fn encode(&self, columns: &[ArrayRef], rows: usize) -> Result<EncodedRows, FormatError> {
        let (_, plan) = self.writer.as_ref().map_err(|e| FormatError::Registry(e.clone()))?;
        let whole: Vec<&dyn arrow::array::Array>;
        let arrays: Vec<&dyn arrow::array::Array> = match columns.first().and_then(|c| c.as_struct_opt()) {
            Some(s) if self.whole_message => {
                whole = s.columns().iter().map(|c| c.as_ref()).collect();
                whole.clone()
            }
            _ => columns.iter().map(|c| c.as_ref()).collect(),
        };
        let mut out = EncodedRows::with_capacity(rows);
        for i in 0..rows {
            let null_row = if self.whole_message || self.unwrapped {
                columns.first().is_some_and(|c| c.is_null(i))
            } else {
                self.null_when_all_null && !columns.is_empty() && columns.iter().all(|c| c.is_null(i))
            };
            if null_row {
                out.push_null();
                continue;
            }
            if let Some(frame) = self.frame {
                let id = frame.ok_or_else(|| FormatError::Registry("the PROTOBUF format writes no records until its schema is registered".into()))?;
                out.buf().push(0);
                out.buf().extend_from_slice(&id.to_be_bytes());
                out.buf().extend_from_slice(&self.indexes);
            }
            plan.write(&arrays, i, out.buf());
            out.end_row();
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray, Int64Array, StringArray};
    use arrow::datatypes::Field;
    use std::sync::Arc;

    #[test]
    fn rows_round_trip_and_nulls_read_as_defaults() {
        let fields: Fields = vec![Field::new("ID", DataType::Int64, true), Field::new("NAME", DataType::Utf8, true)].into();
        let cols = [("ID", &SqlType::Bigint), ("NAME", &SqlType::String)];
        let enc = ProtobufEncoder::new(fields.clone(), false, (&schema_for(&cols, false, None, Default::default()), None), None);
        let data: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(vec![Some(7), None])), Arc::new(StringArray::from(vec![Some("a"), None]))];
        let rows = enc.encode(&data, 2).unwrap();
        let mut dec = ProtobufDecoder::new(fields, &cols, false, None, Some(Default::default()));
        let r = dec.decode(&[rows.get(0), rows.get(1), Some(b"\xff\xff")]);
        assert_eq!(r.kept, vec![0, 1]);
        assert_eq!(r.errors.len(), 1);
        let ids = r.columns[0].as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!((ids.value(0), ids.value(1)), (7, 0));
        assert_eq!(r.columns[1].as_string::<i32>().value(1), "");
        assert!(!r.columns[1].is_null(1));
    }

    #[test]
    fn a_full_name_picks_the_message_and_its_indexes_go_in_the_frame() {
        let schema = "syntax = \"proto3\"; package p; message A { string s = 1; } message B { int64 id = 1; message C { int64 id = 1; } }";
        let fields: Fields = vec![Field::new("ID", DataType::Int64, true)].into();
        let data: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(vec![5]))];
        let framed = |name| ProtobufEncoder::new(fields.clone(), false, (schema, Some(name)), Some(Some(9))).encode(&data, 1).expect("encodes");
        let rows = framed("p.B");
        assert_eq!(split_frame(rows.get(0).expect("a row")).expect("a frame"), (9, vec![1], &[8u8, 5][..]));
        let rows = framed("p.B.C");
        assert_eq!(split_frame(rows.get(0).expect("a row")).expect("a frame").1, vec![1, 0]);
        let missing = ProtobufEncoder::new(fields.clone(), false, (schema, Some("p.Z")), Some(Some(9))).encode(&data, 1);
        assert!(missing.is_err_and(|e| e.to_string().contains("no message named p.Z")));
    }

    #[test]
    fn decimals_dates_and_times_round_trip_as_confluent_and_google_types() {
        use arrow::array::{Date32Array, Decimal128Array, Time32MillisecondArray};
        let dec = SqlType::Decimal { precision: 6, scale: 2 };
        let cols = [("D", &dec), ("DAY", &SqlType::Date), ("T", &SqlType::Time)];
        let text = schema_for(&cols, false, None, Default::default());
        assert!(text.contains("confluent.type.Decimal D = 1") && text.contains("google.type.Date DAY") && text.contains("google.type.TimeOfDay T"), "{text}");
        // The schema infers its columns back, precision and scale from the field's meta.
        let inferred = super::super::protobuf_schema::columns_of(&text, None, "ROWVAL", true).expect("infers");
        assert_eq!(inferred, cols.iter().map(|(n, t)| (n.to_string(), (*t).clone())).collect::<Vec<_>>());
        let fields: Fields = cols.iter().map(|(n, t)| Field::new(*n, t.to_arrow(), true)).collect::<Vec<_>>().into();
        let data: Vec<ArrayRef> = vec![
            Arc::new(Decimal128Array::from(vec![Some(-1001), Some(99_999), None]).with_precision_and_scale(6, 2).expect("decimal")),
            Arc::new(Date32Array::from(vec![Some(19_000), Some(-1), None])),
            Arc::new(Time32MillisecondArray::from(vec![Some(3_723_004), Some(0), None])),
        ];
        let rows = ProtobufEncoder::new(fields.clone(), false, (&text, None), None).encode(&data, 3).expect("encodes");
        let mut dec_rows = ProtobufDecoder::new(fields, &cols, false, None, Some(Default::default()));
        let r = dec_rows.decode(&[rows.get(0), rows.get(1), rows.get(2)]);
        assert_eq!((r.kept.len(), r.errors.len()), (3, 0), "{:?}", r.errors);
        let d = r.columns[0].as_primitive::<arrow::datatypes::Decimal128Type>();
        assert_eq!((d.value(0), d.value(1), d.is_null(2)), (-1001, 99_999, true));
        let day = r.columns[1].as_primitive::<arrow::datatypes::Date32Type>();
        assert_eq!((day.value(0), day.value(1)), (19_000, -1));
        let t = r.columns[2].as_primitive::<arrow::datatypes::Time32MillisecondType>();
        assert_eq!(t.value(0), 3_723_004);
    }

    proptest::proptest! {
        /// Any bytes, as a flat or a nested message, decode or are refused: never a panic,
        /// and every input is either a kept row or a counted error.
        #[test]
        fn arbitrary_bytes_never_panic_the_decoders(
            inputs in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), 1..8)
        ) {
            let flat = [("ID", &SqlType::Bigint), ("NAME", &SqlType::String)];
            let st = SqlType::Struct(vec![("N".into(), SqlType::Int)]);
            let nested = [("S", &st), ("L", &SqlType::Array(Box::new(SqlType::Double)))];
            for cols in [&flat[..], &nested[..]] {
                let fields: Fields = cols.iter().map(|(n, t)| Field::new(*n, t.to_arrow(), true)).collect::<Vec<_>>().into();
                let mut dec = ProtobufDecoder::new(fields, cols, false, None, Some(Default::default()));
                let refs: Vec<Option<&[u8]>> = inputs.iter().map(|b| Some(b.as_slice())).collect();
                let r = dec.decode(&refs);
                proptest::prop_assert_eq!(r.kept.len() + r.errors.len(), inputs.len());
                proptest::prop_assert!(r.columns.iter().all(|c| c.len() == r.kept.len()));
            }
        }
    }

    #[test]
    fn a_oneof_is_one_struct_column_of_its_members_as_ksqldb_reads_it() {
        use arrow::array::{BooleanArray, Int32Array, StructArray};
        let schema = "syntax = \"proto3\"; message M { oneof some_val { string one_id = 1; int32 other_id = 2; } bool is_active = 3; }";
        let cols = super::super::protobuf_schema::columns_of(schema, None, "ROWVAL", true).expect("infers");
        let union = SqlType::Struct(vec![("ONE_ID".into(), SqlType::String), ("OTHER_ID".into(), SqlType::Int)]);
        assert_eq!(cols, vec![("SOME_VAL_0".to_string(), union.clone()), ("IS_ACTIVE".to_string(), SqlType::Boolean)]);
        let named: Vec<(&str, &SqlType)> = cols.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let fields: Fields = named.iter().map(|(n, t)| Field::new(*n, t.to_arrow(), true)).collect::<Vec<_>>().into();
        let DataType::Struct(members) = fields[0].data_type().clone() else { panic!("a struct") };
        let one: ArrayRef = Arc::new(StringArray::from(vec![Some("x"), None, None]));
        let other: ArrayRef = Arc::new(Int32Array::from(vec![None, Some(0), None]));
        let nulls = arrow::buffer::NullBuffer::from(vec![true, true, false]);
        let data: Vec<ArrayRef> =
            vec![Arc::new(StructArray::new(members, vec![one, other], Some(nulls))), Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)]))];
        let rows = ProtobufEncoder::new(fields.clone(), false, (schema, None), None).encode(&data, 3).expect("encodes");
        // Read back with the registered schema (framed would need a registry: read bare).
        let mut dec = ProtobufDecoder::new(fields, &named, false, None, Some(Default::default()));
        dec.bare = Some(compile(schema).and_then(|p| message_at(&p, &[0])).and_then(|m| dec.plan(m)));
        let r = dec.decode(&[rows.get(0), rows.get(1), rows.get(2)]);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let union = r.columns[0].as_struct();
        assert_eq!(union.column(0).as_string::<i32>().value(0), "x");
        assert!(union.column(1).is_null(0), "the member not set is null");
        assert_eq!(union.column(1).as_primitive::<arrow::datatypes::Int32Type>().value(1), 0, "a member set to its default is set");
        assert!(union.is_null(2), "no member set: a null struct");
        assert!(!r.columns[1].as_boolean().value(1), "a plain proto3 field reads its default");
    }

    #[test]
    fn frames_carry_message_indexes() {
        assert_eq!(split_frame(&[0, 0, 0, 0, 3, 0, 8, 1]).unwrap(), (3, vec![0], &[8u8, 1][..]));
        assert_eq!(split_frame(&[0, 0, 0, 0, 3, 4, 2, 0, 9]).unwrap(), (3, vec![1, 0], &[9u8][..]));
        assert!(split_frame(&[0, 0, 0, 0, 3]).is_err());
    }
}
