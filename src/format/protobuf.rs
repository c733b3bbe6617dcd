//! The PROTOBUF and PROTOBUF_NOSR formats. PROTOBUF records are framed as Confluent's
//! serializer writes them (magic byte 0, the schema's 4-byte registry id, the message
//! indexes, the message); PROTOBUF_NOSR records are the bare message of a schema made from
//! the source's columns. Schemas are `.proto` text compiled by `protox`; messages are read
//! and written by `prost-reflect` and cross to Arrow through their JSON mapping, with the
//! JSON format's decoder and encoder (fields matched ignoring case). As in ksqlDB, proto3
//! has no nulls for scalars, lists and maps: they read as their defaults (0, "", [], {}).

use std::collections::HashMap;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use prost_reflect::prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MessageDescriptor, ReflectMessage, SerializeOptions};

use super::avro_schema::Unreadable;
use super::json::{JsonDecoder, JsonEncoder};
use super::{DecodedRows, EncodedRows, FormatError, RegistryHandle, RowDecoder, RowEncoder};
use crate::catalog::types::SqlType;

/// The name of the message ksqlDB's schemas hold.
const ROOT: &str = "ConnectDefault1";

/// Why columns cannot be written as PROTOBUF.
pub fn unsupported(ty: &SqlType) -> Option<String> {
    match ty {
        SqlType::Decimal { .. } | SqlType::Date | SqlType::Time => Some(format!("PROTOBUF columns of type {} are not supported yet", ty.base_name())),
        SqlType::Array(item) if matches!(**item, SqlType::Array(_) | SqlType::Map(..)) => {
            Some("PROTOBUF cannot hold an ARRAY of ARRAYs or MAPs (repeated fields cannot repeat)".into())
        }
        SqlType::Map(k, _) if **k != SqlType::String => Some("PROTOBUF only supports MAPs with STRING keys".into()),
        SqlType::Map(_, v) if matches!(**v, SqlType::Array(_) | SqlType::Map(..)) => Some("PROTOBUF map values cannot be ARRAYs or MAPs".into()),
        SqlType::Array(item) | SqlType::Map(_, item) => unsupported(item),
        SqlType::Struct(fields) => fields.iter().find_map(|(_, t)| unsupported(t)),
        _ => None,
    }
}

/// The `.proto` text ksqlDB registers for `columns`: one message with a field per column
/// (structs as nested messages). A single unwrapped column (a key) is a message of one
/// field, or when it is a STRUCT, the struct's own message.
pub fn schema_for(columns: &[(&str, &SqlType)], unwrapped: bool) -> String {
    let mut body = String::new();
    let mut counter = 1;
    let timestamps = columns.iter().any(|(_, t)| t.any_nested(&|t| *t == SqlType::Timestamp));
    let fields = match columns {
        [(_, SqlType::Struct(inner))] if unwrapped => inner.clone(),
        _ => columns.iter().map(|(n, t)| (n.to_string(), (*t).clone())).collect(),
    };
    message(ROOT, fields, &mut counter, 0, &mut body);
    let import = if timestamps { "import \"google/protobuf/timestamp.proto\";\n\n" } else { "" };
    format!("syntax = \"proto3\";\n\n{import}{body}")
}

fn message(name: &str, fields: Vec<(String, SqlType)>, counter: &mut usize, indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent);
    out.push_str(&format!("{pad}message {name} {{\n"));
    for (i, (field, ty)) in fields.iter().enumerate() {
        let mut nested = |t: &SqlType| -> String {
            match t {
                SqlType::Struct(inner) => {
                    *counter += 1;
                    let n = format!("ConnectDefault{counter}");
                    message(&n, inner.clone(), counter, indent + 1, out);
                    n
                }
                other => scalar(other).to_string(),
            }
        };
        let decl = match ty {
            SqlType::Array(item) => format!("repeated {}", nested(item)),
            SqlType::Map(_, v) => format!("map<string, {}>", nested(v)),
            other => nested(other),
        };
        out.push_str(&format!("{pad}  {decl} {field} = {};\n", i + 1));
    }
    out.push_str(&format!("{pad}}}\n"));
}

fn scalar(ty: &SqlType) -> &'static str {
    match ty {
        SqlType::Boolean => "bool",
        SqlType::Int => "int32",
        SqlType::Bigint => "int64",
        SqlType::Double => "double",
        SqlType::Bytes => "bytes",
        SqlType::Timestamp => "google.protobuf.Timestamp",
        _ => "string",
    }
}

/// How deeply a `.proto` text may nest blocks (messages, options, maps). The parser
/// recurses per level, so without a bound one schema posted to the registry could exhaust
/// the stack of the thread compiling it.
pub const MAX_SCHEMA_NESTING: usize = 64;

/// The deepest nesting of `{`, `[`, `(` and `<` in `.proto` text, outside strings and
/// comments.
fn nesting(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' => {
                let quote = b[i];
                i += 1;
                while i < b.len() && b[i] != quote {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b'{' | b'[' | b'(' | b'<' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' | b')' | b'>' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    max
}

/// Compiles `.proto` text (google's well-known types available to import).
pub fn compile(text: &str) -> Result<DescriptorPool, String> {
    if nesting(text) > MAX_SCHEMA_NESTING {
        return Err(format!("not a PROTOBUF schema Eddy reads: it nests more than {MAX_SCHEMA_NESTING} levels deep"));
    }
    struct OneFile(String);
    impl protox::file::FileResolver for OneFile {
        fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
            if name == "schema.proto" { protox::file::File::from_source(name, &self.0) } else { Err(protox::Error::file_not_found(name)) }
        }
    }
    let mut resolver = protox::file::ChainFileResolver::new();
    resolver.add(OneFile(text.to_string()));
    resolver.add(protox::file::GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true);
    compiler.open_file("schema.proto").map_err(|e| format!("not a PROTOBUF schema: {e}"))?;
    Ok(compiler.descriptor_pool())
}

/// The message Confluent's message indexes name: the first index picks a top-level
/// message of the schema's file, each further one a nested message.
pub fn message_at(pool: &DescriptorPool, indexes: &[i32]) -> Result<MessageDescriptor, String> {
    let file = pool.get_file_by_name("schema.proto").ok_or("the schema has no file")?;
    let first = indexes.first().copied().unwrap_or(0);
    let mut m = file.messages().nth(first.max(0) as usize).ok_or_else(|| format!("the schema has no message at index {first}"))?;
    for i in indexes.iter().skip(1) {
        let next = m.child_messages().nth((*i).max(0) as usize);
        m = next.ok_or_else(|| format!("message {} has no nested message at index {i}", m.full_name()))?;
    }
    Ok(m)
}

/// The SQL type of a field's kind, as ksqlDB reads it.
fn kind_type(kind: &Kind, depth: usize) -> Result<SqlType, Unreadable> {
    if depth > 32 {
        return Err(Unreadable("the PROTOBUF schema nests too deep".into()));
    }
    Ok(match kind {
        Kind::Bool => SqlType::Boolean,
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => SqlType::Int,
        Kind::Uint32 | Kind::Fixed32 | Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64 => SqlType::Bigint,
        Kind::Float | Kind::Double => SqlType::Double,
        Kind::String | Kind::Enum(_) => SqlType::String,
        Kind::Bytes => SqlType::Bytes,
        Kind::Message(m) => match m.full_name() {
            "google.protobuf.Timestamp" => SqlType::Timestamp,
            "google.protobuf.StringValue" => SqlType::String,
            "google.protobuf.BoolValue" => SqlType::Boolean,
            "google.protobuf.Int32Value" | "google.protobuf.UInt32Value" => SqlType::Int,
            "google.protobuf.Int64Value" | "google.protobuf.UInt64Value" => SqlType::Bigint,
            "google.protobuf.DoubleValue" | "google.protobuf.FloatValue" => SqlType::Double,
            "google.protobuf.BytesValue" => SqlType::Bytes,
            _ => SqlType::Struct(message_fields(m, depth + 1)?),
        },
    })
}

fn message_fields(m: &MessageDescriptor, depth: usize) -> Result<Vec<(String, SqlType)>, Unreadable> {
    m.fields()
        .map(|f| {
            let ty = if f.is_map() {
                let Kind::Message(entry) = f.kind() else { return Err(Unreadable("a map without entries".into())) };
                SqlType::Map(Box::new(SqlType::String), Box::new(kind_type(&entry.map_entry_value_field().kind(), depth + 1)?))
            } else if f.is_list() {
                SqlType::Array(Box::new(kind_type(&f.kind(), depth + 1)?))
            } else {
                kind_type(&f.kind(), depth + 1)?
            };
            Ok((f.name().to_string(), ty))
        })
        .collect()
}

/// The columns a registered `.proto` schema holds, as ksqlDB infers them: its first
/// message's fields, names upper-cased (for keys too: a PROTOBUF key is a message).
pub fn columns_of(text: &str, single_name: &str, _is_key: bool) -> Result<Vec<(String, SqlType)>, Unreadable> {
    let pool = compile(text).map_err(Unreadable)?;
    let m = message_at(&pool, &[0]).map_err(Unreadable)?;
    let fields = message_fields(&m, 0)?;
    let fields: Vec<(String, SqlType)> = fields.into_iter().map(|(n, t)| (n.to_uppercase(), upper_names(t))).collect();
    if fields.is_empty() {
        return Ok(vec![(single_name.to_string(), SqlType::Struct(Vec::new()))]);
    }
    Ok(fields)
}

/// Struct field names upper-cased, as ksqlDB infers them from PROTOBUF schemas.
fn upper_names(t: SqlType) -> SqlType {
    match t {
        SqlType::Struct(fields) => SqlType::Struct(fields.into_iter().map(|(n, t)| (n.to_uppercase(), upper_names(t))).collect()),
        SqlType::Array(item) => SqlType::Array(Box::new(upper_names(*item))),
        SqlType::Map(k, v) => SqlType::Map(k, Box::new(upper_names(*v))),
        other => other,
    }
}

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

/// JSON text for a message, ksqlDB's way: every field written, defaults included.
pub fn message_json(m: &DynamicMessage) -> Result<Vec<u8>, String> {
    let options = SerializeOptions::new().stringify_64_bit_integers(false).use_proto_field_name(true).skip_default_fields(false);
    let mut value = m.serialize_with_options(serde_json::value::Serializer, &options).map_err(|e| e.to_string())?;
    null_unset_messages(&m.descriptor(), &mut value, 0);
    serde_json::to_vec(&value).map_err(|e| e.to_string())
}

/// Message fields that are not set are written as null (the JSON mapping leaves them out).
fn null_unset_messages(desc: &MessageDescriptor, v: &mut serde_json::Value, depth: usize) {
    let Some(o) = v.as_object_mut() else { return };
    if depth > 32 {
        return;
    }
    for f in desc.fields() {
        if let Kind::Message(inner) = f.kind()
            && !f.is_list()
            && !f.is_map()
        {
            match o.get_mut(f.name()) {
                None => {
                    o.insert(f.name().to_string(), serde_json::Value::Null);
                }
                Some(x) => null_unset_messages(&inner, x, depth + 1),
            }
        }
    }
}

/// A message from its JSON mapping (fields unknown to the message are ignored).
pub fn message_from_json(desc: &MessageDescriptor, json: &[u8]) -> Result<DynamicMessage, String> {
    let options = prost_reflect::DeserializeOptions::new().deny_unknown_fields(false);
    let mut de = serde_json::Deserializer::from_slice(json);
    DynamicMessage::deserialize_with_options(desc.clone(), &mut de, &options).map_err(|e| e.to_string())
}

/// Reads PROTOBUF (framed) or PROTOBUF_NOSR (bare) records.
pub struct ProtobufDecoder {
    json: JsonDecoder,
    messages: MessageReader,
}

/// Turns PROTOBUF records into their JSON mapping.
struct MessageReader {
    unwrapped: bool,
    registry: Option<RegistryHandle>,
    /// PROTOBUF_NOSR: the message the columns make.
    bare: Option<Result<MessageDescriptor, String>>,
    /// A single unwrapped STRUCT column: the message is the struct.
    whole_message: bool,
    by_id: HashMap<(i32, Vec<i32>), MessageDescriptor>,
}

impl ProtobufDecoder {
    pub fn new(fields: Fields, columns: &[(&str, &SqlType)], unwrapped: bool, registry: Option<RegistryHandle>, framed: bool) -> ProtobufDecoder {
        let bare = (!framed).then(|| compile(&schema_for(columns, unwrapped)).and_then(|p| message_at(&p, &[0])));
        let whole_message = unwrapped && matches!(columns, [(_, SqlType::Struct(_))]);
        let messages = MessageReader { unwrapped, registry, bare, whole_message, by_id: HashMap::new() };
        ProtobufDecoder { json: JsonDecoder::new(fields, unwrapped), messages }
    }
}

impl MessageReader {
    fn descriptor(&mut self, id: i32, indexes: Vec<i32>) -> Result<MessageDescriptor, String> {
        if let Some(d) = self.by_id.get(&(id, indexes.clone())) {
            return Ok(d.clone());
        }
        let registry = self.registry.as_ref().ok_or("no schema registry is configured to look up the record's schema id")?;
        let (kind, text) = registry.0.schema_text(id)?;
        if kind != "PROTOBUF" {
            return Err(format!("schema id {id} is a {kind} schema, not a PROTOBUF one"));
        }
        let d = message_at(&compile(&text)?, &indexes)?;
        self.by_id.insert((id, indexes), d.clone());
        Ok(d)
    }

    /// One record as JSON for the JSON decoder.
    fn record_json(&mut self, bytes: &[u8]) -> Result<Vec<u8>, String> {
        let (desc, body) = match &self.bare {
            Some(bare) => (bare.clone()?, bytes),
            None => {
                let (id, indexes, body) = split_frame(bytes)?;
                (self.descriptor(id, indexes)?, body)
            }
        };
        let m = DynamicMessage::decode(desc, body).map_err(|e| format!("the PROTOBUF message does not decode: {e}"))?;
        let json = message_json(&m)?;
        if !self.unwrapped || self.whole_message {
            return Ok(json);
        }
        // A single key or unwrapped value is the message's only field.
        let v: serde_json::Value = serde_json::from_slice(&json).map_err(|e| e.to_string())?;
        let first = v.as_object().and_then(|o| o.values().next().cloned()).unwrap_or(serde_json::Value::Null);
        serde_json::to_vec(&first).map_err(|e| e.to_string())
    }
}

impl RowDecoder for ProtobufDecoder {
    fn decode(&mut self, inputs: &[Option<&[u8]>]) -> DecodedRows {
        let messages = &mut self.messages;
        super::decode_prepared(&mut self.json, inputs, |b| messages.record_json(b).map(Into::into))
    }
}

/// Writes PROTOBUF (framed with `id`) or PROTOBUF_NOSR records.
pub struct ProtobufEncoder {
    json: JsonEncoder,
    desc: Result<MessageDescriptor, String>,
    /// PROTOBUF: the schema id (None: not registered); PROTOBUF_NOSR: no frame.
    frame: Option<Option<i32>>,
    unwrapped_name: Option<String>,
}

impl ProtobufEncoder {
    /// `schema` is the `.proto` text records are written with.
    pub fn new(fields: Fields, unwrapped: bool, schema: &str, frame: Option<Option<i32>>) -> ProtobufEncoder {
        let desc = compile(schema).and_then(|p| message_at(&p, &[0]));
        // A single key or unwrapped value is written as the message's only field; a STRUCT
        // as the message itself.
        let whole_message = unwrapped && fields.len() == 1 && matches!(fields[0].data_type(), DataType::Struct(_));
        let unwrapped_name = if unwrapped && !whole_message { desc.as_ref().ok().and_then(|d| d.fields().next().map(|f| f.name().to_string())) } else { None };
        let fields: Fields = fields
            .iter()
            .map(|f| {
                let dt = match f.data_type() {
                    DataType::Timestamp(unit, None) => DataType::Timestamp(*unit, Some("+00:00".into())),
                    other => other.clone(),
                };
                f.as_ref().clone().with_data_type(dt)
            })
            .collect::<Vec<Field>>()
            .into();
        ProtobufEncoder { json: JsonEncoder::new(fields, whole_message), desc, frame, unwrapped_name }
    }
}

impl RowEncoder for ProtobufEncoder {
    fn encode(&self, columns: &[ArrayRef], rows: usize) -> Result<EncodedRows, FormatError> {
        let desc = self.desc.as_ref().map_err(|e| FormatError::Registry(e.clone()))?;
        let columns: Vec<ArrayRef> = columns
            .iter()
            .map(|c| match c.data_type() {
                DataType::Timestamp(TimeUnit::Millisecond, None) => {
                    arrow::compute::cast(c, &DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into()))).unwrap_or_else(|_| c.clone())
                }
                _ => c.clone(),
            })
            .collect();
        let json = self.json.encode(&columns, rows)?;
        let mut out = EncodedRows::with_capacity(rows);
        for i in 0..json.len() {
            let Some(text) = json.get(i) else {
                out.push_null();
                continue;
            };
            if self.unwrapped_name.is_some() && columns.first().is_some_and(|c| c.is_null(i)) {
                out.push_null();
                continue;
            }
            let text: std::borrow::Cow<[u8]> = match &self.unwrapped_name {
                Some(name) => {
                    let v: serde_json::Value = serde_json::from_slice(text).map_err(|e| FormatError::Registry(e.to_string()))?;
                    let first = v.as_object().and_then(|o| o.values().next().cloned()).unwrap_or(serde_json::Value::Null);
                    serde_json::to_vec(&serde_json::json!({ name: first })).map_err(|e| FormatError::Registry(e.to_string()))?.into()
                }
                None => text.into(),
            };
            let m = message_from_json(desc, &text).map_err(|e| FormatError::Registry(format!("cannot write the row as PROTOBUF: {e}")))?;
            if let Some(frame) = self.frame {
                let id = frame.ok_or_else(|| FormatError::Registry("the PROTOBUF format writes no records until its schema is registered".into()))?;
                out.buf().push(0);
                out.buf().extend_from_slice(&id.to_be_bytes());
                out.buf().push(0);
            }
            m.encode(out.buf()).map_err(|e| FormatError::Registry(e.to_string()))?;
            out.end_row();
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray, Int64Array, StringArray};
    use std::sync::Arc;

    #[test]
    fn columns_make_a_schema_that_infers_them_back() {
        let st = SqlType::Struct(vec![("F0".into(), SqlType::Int)]);
        let arr = SqlType::Array(Box::new(SqlType::Bigint));
        let map = SqlType::Map(Box::new(SqlType::String), Box::new(SqlType::Double));
        let text = schema_for(&[("ID", &SqlType::Bigint), ("S", &st), ("A", &arr), ("M", &map), ("T", &SqlType::Timestamp)], false);
        let cols = columns_of(&text, "ROWVAL", false).unwrap();
        assert_eq!(
            cols,
            vec![("ID".into(), SqlType::Bigint), ("S".into(), st), ("A".into(), arr), ("M".into(), map), ("T".into(), SqlType::Timestamp)],
            "{text}"
        );
    }

    #[test]
    fn rows_round_trip_and_nulls_read_as_defaults() {
        let fields: Fields = vec![Field::new("ID", DataType::Int64, true), Field::new("NAME", DataType::Utf8, true)].into();
        let cols = [("ID", &SqlType::Bigint), ("NAME", &SqlType::String)];
        let enc = ProtobufEncoder::new(fields.clone(), false, &schema_for(&cols, false), None);
        let data: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(vec![Some(7), None])), Arc::new(StringArray::from(vec![Some("a"), None]))];
        let rows = enc.encode(&data, 2).unwrap();
        let mut dec = ProtobufDecoder::new(fields, &cols, false, None, false);
        let r = dec.decode(&[rows.get(0), rows.get(1), Some(b"\xff\xff")]);
        assert_eq!(r.kept, vec![0, 1]);
        assert_eq!(r.errors.len(), 1);
        let ids = r.columns[0].as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!((ids.value(0), ids.value(1)), (7, 0));
        assert_eq!(r.columns[1].as_string::<i32>().value(1), "");
        assert!(!r.columns[1].is_null(1));
    }

    #[test]
    fn deeply_nested_schemas_are_refused_before_the_parser_recurses() {
        let deep = format!("syntax = \"proto3\"; {} int32 x = 1; {}", "message M { ".repeat(5000), "} ".repeat(5000));
        let err = compile(&deep).err().unwrap_or_default();
        assert!(err.contains("nests more than 64 levels"), "{err}");
        // Braces in strings and comments do not count.
        let quoted = format!("syntax = \"proto3\"; // {}\nmessage M {{ string s = 1 [json_name = \"{}\"]; }}", "{".repeat(100), "{".repeat(100));
        assert!(compile(&quoted).is_ok());
    }

    #[test]
    fn frames_carry_message_indexes() {
        assert_eq!(split_frame(&[0, 0, 0, 0, 3, 0, 8, 1]).unwrap(), (3, vec![0], &[8u8, 1][..]));
        assert_eq!(split_frame(&[0, 0, 0, 0, 3, 4, 2, 0, 9]).unwrap(), (3, vec![1, 0], &[9u8][..]));
        assert!(split_frame(&[0, 0, 0, 0, 3]).is_err());
    }
}
