//! Serialization formats: bytes in the log <-> Arrow columns.
//!
//! Decoders turn many record keys or values into Arrow arrays at once; a record that does
//! not decode is reported by index with a reason and left out, never fatal. Encoders turn
//! Arrow columns into one byte string per row.

pub mod avro;
pub mod avro_schema;
pub mod avro_text;
pub mod avro_writer;
pub mod delimited;
pub mod java_number;
pub mod java_time;
pub mod json;
pub mod json_sr;
pub mod json_values;
pub mod kafka;
pub mod protobuf;
pub mod protobuf_arrow;
pub mod protobuf_schema;
pub mod protobuf_text;
pub mod protobuf_wire;
pub mod protobuf_write;
pub mod timestamps;

use arrow::array::ArrayRef;
use arrow::datatypes::{Field, Fields};

use crate::catalog::types::{Column, SqlType};

#[derive(Debug, Clone, thiserror::Error)]
pub enum FormatError {
    #[error("Unknown format: {0}. Use JSON, JSON_SR, AVRO, PROTOBUF, PROTOBUF_NOSR, DELIMITED, KAFKA or NONE")]
    Unknown(String),
    #[error("the {format} format is not supported yet; use JSON, JSON_SR, AVRO, PROTOBUF, DELIMITED, KAFKA or NONE")]
    Unsupported { format: String },
    #[error("{reason}\nHint: {hint}")]
    Schema { reason: String, hint: &'static str },
    #[error("cannot encode: {0}")]
    Encode(#[source] std::sync::Arc<arrow::error::ArrowError>),
    #[error("cannot encode: the KAFKA format cannot write {0}")]
    KafkaCannotWrite(arrow::datatypes::DataType),
    #[error("cannot encode as AVRO: {0}")]
    Avro(String),
    #[error("cannot encode: {0}")]
    Registry(String),
}

/// Where registry formats find the schemas record frames name by id.
pub trait SchemaLookup: Send + Sync {
    /// The schema registered under `id`: its type (`AVRO`, `PROTOBUF`, `JSON`) and text.
    fn schema_text(&self, id: i32) -> Result<(String, String), String>;
}

/// A shared [`SchemaLookup`]; formats compare equal whatever registry they read from.
#[derive(Clone)]
pub struct RegistryHandle(pub std::sync::Arc<dyn SchemaLookup>);

impl std::fmt::Debug for RegistryHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RegistryHandle")
    }
}

impl PartialEq for RegistryHandle {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for RegistryHandle {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatKind {
    Json,
    Avro,
    JsonSr,
    Protobuf,
    ProtobufNosr,
    Delimited,
    Kafka,
    None,
}

impl FormatKind {
    pub fn parse(s: &str) -> Result<FormatKind, FormatError> {
        match s.trim().to_ascii_uppercase().as_str() {
            "JSON" => Ok(FormatKind::Json),
            "AVRO" => Ok(FormatKind::Avro),
            "JSON_SR" => Ok(FormatKind::JsonSr),
            "PROTOBUF" => Ok(FormatKind::Protobuf),
            "PROTOBUF_NOSR" => Ok(FormatKind::ProtobufNosr),
            "DELIMITED" => Ok(FormatKind::Delimited),
            "KAFKA" => Ok(FormatKind::Kafka),
            "NONE" => Ok(FormatKind::None),
            other => Err(FormatError::Unknown(other.to_string())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FormatKind::Json => "JSON",
            FormatKind::Avro => "AVRO",
            FormatKind::JsonSr => "JSON_SR",
            FormatKind::Protobuf => "PROTOBUF",
            FormatKind::ProtobufNosr => "PROTOBUF_NOSR",
            FormatKind::Delimited => "DELIMITED",
            FormatKind::Kafka => "KAFKA",
            FormatKind::None => "NONE",
        }
    }
}

/// A format with its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatSpec {
    pub kind: FormatKind,
    /// DELIMITED's field separator.
    pub delimiter: char,
    /// Whether a value with a single column is wrapped in an object (JSON's default).
    pub wrap_single_value: bool,
    /// Registry formats: the id of the schema records are written with.
    pub schema_id: Option<i32>,
    /// Registry formats: the schema records are written with (AVRO: its JSON).
    pub schema: Option<String>,
    /// Registry formats: the full name given to the schema (`*_SCHEMA_FULL_NAME`).
    pub full_name: Option<String>,
    /// Registry formats: where record frames' schema ids are looked up.
    pub registry: Option<RegistryHandle>,
    /// PROTOBUF formats: how the schemas ksqlDB writes let scalars be null.
    pub protobuf_nullable: ProtobufNullable,
}

/// How a PROTOBUF schema made for columns lets a scalar be null
/// (`*_PROTOBUF_NULLABLE_REPRESENTATION`): not at all (proto3 defaults, ksqlDB's default),
/// as an `optional` field, or as a `google.protobuf.*Value` wrapper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProtobufNullable {
    #[default]
    Defaults,
    Optional,
    Wrapper,
}

/// Whether a format serializes a record's key or its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Key,
    Value,
}

impl FormatSpec {
    pub fn new(kind: FormatKind) -> Self {
        FormatSpec {
            kind,
            delimiter: ',',
            wrap_single_value: true,
            schema_id: None,
            schema: None,
            full_name: None,
            registry: None,
            protobuf_nullable: ProtobufNullable::Defaults,
        }
    }

    /// Whether records carry a schema registry id.
    pub fn uses_registry(&self) -> bool {
        matches!(self.kind, FormatKind::Avro | FormatKind::JsonSr | FormatKind::Protobuf)
    }

    /// Checks that the format can hold these columns (as key when `is_key`); the error
    /// gives ksqlDB's reason.
    pub fn check_columns(&self, columns: &[&Column], is_key: bool) -> Result<(), FormatError> {
        let listed = || format!("[{}]", column_list(columns, is_key));
        match self.kind {
            FormatKind::None if !columns.is_empty() => Err(FormatError::Schema {
                reason: format!("The 'NONE' format can only be used when no columns are defined. Got: {}", listed()),
                hint: "declare no columns of this kind, or choose another format",
            }),
            FormatKind::Kafka if columns.len() > 1 => Err(FormatError::Schema {
                reason: format!("The 'KAFKA' format only supports a single field. Got: {}", listed()),
                hint: "use JSON or DELIMITED for more than one column",
            }),
            FormatKind::Kafka => {
                for c in columns {
                    if !matches!(c.ty, SqlType::Int | SqlType::Bigint | SqlType::Double | SqlType::String | SqlType::Bytes) {
                        return Err(FormatError::Schema {
                            reason: format!("The 'KAFKA' format does not support type '{}'", c.ty.base_name()),
                            hint: "the KAFKA format supports INT, BIGINT, DOUBLE, STRING and BYTES; use JSON or DELIMITED for others",
                        });
                    }
                }
                Ok(())
            }
            FormatKind::Delimited => {
                for c in columns {
                    if matches!(c.ty, SqlType::Array(_) | SqlType::Map(..) | SqlType::Struct(_)) {
                        return Err(FormatError::Schema {
                            reason: format!(
                                "The 'DELIMITED' format does not support type '{}', column: {}",
                                c.ty.base_name(),
                                crate::catalog::types::quote_ident(&c.name)
                            ),
                            hint: "DELIMITED holds only primitive types; use JSON for ARRAY, MAP and STRUCT",
                        });
                    }
                }
                Ok(())
            }
            FormatKind::Protobuf | FormatKind::ProtobufNosr => match columns.iter().find_map(|c| protobuf::unsupported(&c.ty)) {
                Some(reason) => Err(FormatError::Schema { reason, hint: "use AVRO or JSON_SR for these types" }),
                None => Ok(()),
            },
            FormatKind::Avro => {
                let non_string_key = |t: &SqlType| matches!(t, SqlType::Map(k, _) if **k != SqlType::String);
                match columns.iter().find(|c| c.ty.any_nested(&non_string_key)) {
                    Some(_) => Err(FormatError::Schema { reason: "Avro only supports MAPs with STRING keys".into(), hint: "declare MAP<STRING, ...>" }),
                    None => Ok(()),
                }
            }
            FormatKind::Json | FormatKind::JsonSr => {
                let non_string_key = |t: &SqlType| matches!(t, SqlType::Map(k, _) if **k != SqlType::String);
                match columns.iter().find(|c| c.ty.any_nested(&non_string_key)) {
                    Some(_) => Err(FormatError::Schema { reason: "JSON only supports MAP types with STRING keys".into(), hint: "declare MAP<STRING, ...>" }),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// The format name and the columns, as ksqlDB describes a schema in its errors.
    pub fn describe_schema(&self, columns: &[&Column], is_key: bool) -> String {
        format!("format: {}\nschema: Persistence{{columns=[{}], features=[]}}", self.kind.name(), column_list(columns, is_key))
    }

    /// Whether a single column is written bare (not inside an object or record): always
    /// for keys, and for values when `WRAP_SINGLE_VALUE=false`.
    pub fn unwrapped(&self, columns: &[&Column], role: Role) -> bool {
        columns.len() == 1 && (role == Role::Key || !self.wrap_single_value)
    }

    /// A decoder producing arrays for `columns` (in order).
    pub fn decoder(&self, columns: &[&Column], role: Role) -> Box<dyn RowDecoder> {
        let fields = fields_of(columns);
        if role == Role::Key && columns.is_empty() {
            // A source without key columns ignores whatever key its records carry.
            return Box::new(NoneDecoder);
        }
        match self.kind {
            FormatKind::Json => Box::new(json::JsonDecoder::new(fields, self.unwrapped(columns, role))),
            FormatKind::Avro => Box::new(avro::AvroDecoder::new(fields, self.unwrapped(columns, role), self.registry.clone())),
            FormatKind::JsonSr => Box::new(json_sr::JsonSrDecoder::new(json::JsonDecoder::new(fields, self.unwrapped(columns, role)))),
            FormatKind::Protobuf | FormatKind::ProtobufNosr => Box::new(protobuf::ProtobufDecoder::new(
                fields,
                &named_types(columns),
                self.unwrapped(columns, role),
                self.registry.clone(),
                (self.kind == FormatKind::ProtobufNosr).then_some(self.protobuf_nullable),
            )),
            FormatKind::Delimited => Box::new(delimited::DelimitedDecoder::new(fields, self.delimiter)),
            FormatKind::Kafka => Box::new(kafka::KafkaDecoder::new(fields)),
            FormatKind::None => Box::new(NoneDecoder),
        }
    }

    /// An encoder writing `columns` (in order).
    pub fn encoder(&self, columns: &[&Column], role: Role) -> Box<dyn RowEncoder> {
        let fields = fields_of(columns);
        if role == Role::Key && columns.is_empty() {
            // No key columns: records are written without a key.
            return Box::new(NoneEncoder);
        }
        match self.kind {
            FormatKind::Json => Box::new(json::JsonEncoder::new(fields, self.unwrapped(columns, role))),
            FormatKind::JsonSr => Box::new(json_sr::JsonSrEncoder::new(json::JsonEncoder::new(fields, self.unwrapped(columns, role)), self.schema_id)),
            FormatKind::Protobuf | FormatKind::ProtobufNosr => {
                let frame = (self.kind == FormatKind::Protobuf).then_some(self.schema_id);
                let unwrapped = self.unwrapped(columns, role);
                // A full name picks a message of a registered schema, and names ksqlDB's.
                let schema = match &self.schema {
                    Some(text) => text.clone(),
                    None => protobuf::schema_for(&named_types(columns), unwrapped, self.full_name.as_deref(), self.protobuf_nullable),
                };
                let message = self.full_name.as_deref();
                let encoder = protobuf::ProtobufEncoder::new(fields, unwrapped, (&schema, message), frame);
                Box::new(if role == Role::Key { encoder.null_when_all_null() } else { encoder })
            }
            FormatKind::Avro => {
                let unwrapped = self.unwrapped(columns, role);
                let schema = match &self.schema {
                    Some(text) => serde_json::from_str(text).unwrap_or(serde_json::Value::Null),
                    None => avro_schema::schema_for(&named_types(columns), unwrapped, self.full_name.as_deref()),
                };
                Box::new(avro::AvroEncoder::new(fields, unwrapped, self.schema_id, &schema))
            }
            FormatKind::Delimited => Box::new(delimited::DelimitedEncoder::new(self.delimiter)),
            FormatKind::Kafka => Box::new(kafka::KafkaEncoder),
            FormatKind::None => Box::new(NoneEncoder),
        }
    }
}

/// `` `A` INTEGER KEY, `B` STRING `` as ksqlDB lists columns in its errors.
fn column_list(columns: &[&Column], is_key: bool) -> String {
    let cols: Vec<String> =
        columns.iter().map(|c| format!("{} {}{}", crate::catalog::types::quote_ident(&c.name), c.ty, if is_key { " KEY" } else { "" })).collect();
    cols.join(", ")
}

/// Columns as (name, type) pairs.
pub fn named_types<'a>(columns: &[&'a Column]) -> Vec<(&'a str, &'a SqlType)> {
    columns.iter().map(|c| (c.name.as_str(), &c.ty)).collect()
}

fn fields_of(columns: &[&Column]) -> Fields {
    columns.iter().map(|c| Field::new(&c.name, c.ty.to_arrow(), true)).collect::<Vec<_>>().into()
}

/// What a decoder made of a slice of inputs.
#[derive(Debug, Default)]
pub struct DecodedRows {
    /// One array per column, with one row per index in `kept`.
    pub columns: Vec<ArrayRef>,
    /// Input indices that decoded, in order.
    pub kept: Vec<u32>,
    /// Input indices that did not decode, with the reason.
    pub errors: Vec<(u32, String)>,
}

pub trait RowDecoder: Send {
    /// Decodes inputs; `None` inputs (null keys or values) decode to all-null rows.
    fn decode(&mut self, inputs: &[Option<&[u8]>]) -> DecodedRows;
}

/// Encoded rows sharing one buffer.
#[derive(Debug, Default, Clone)]
pub struct EncodedRows {
    buf: Vec<u8>,
    ends: Vec<usize>,
    nulls: Vec<bool>,
}

impl EncodedRows {
    pub fn with_capacity(rows: usize) -> Self {
        EncodedRows { buf: Vec::with_capacity(rows * 32), ends: Vec::with_capacity(rows), nulls: Vec::with_capacity(rows) }
    }

    /// The buffer to write the next row into; finish it with `end_row`.
    pub fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    pub fn end_row(&mut self) {
        self.ends.push(self.buf.len());
        self.nulls.push(false);
    }

    pub fn push_null(&mut self) {
        self.ends.push(self.buf.len());
        self.nulls.push(true);
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&[u8]> {
        if self.nulls[i] {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.buf[start..self.ends[i]])
    }
}

pub trait RowEncoder: Send + Sync {
    /// Encodes each row of `columns` (all the same length).
    fn encode(&self, columns: &[ArrayRef], rows: usize) -> Result<EncodedRows, FormatError>;
}

/// The NONE format: no columns, nothing stored.
struct NoneDecoder;

impl RowDecoder for NoneDecoder {
    fn decode(&mut self, inputs: &[Option<&[u8]>]) -> DecodedRows {
        DecodedRows { columns: Vec::new(), kept: (0..inputs.len() as u32).collect(), errors: Vec::new() }
    }
}

struct NoneEncoder;

impl RowEncoder for NoneEncoder {
    fn encode(&self, _columns: &[ArrayRef], rows: usize) -> Result<EncodedRows, FormatError> {
        let mut out = EncodedRows::with_capacity(rows);
        for _ in 0..rows {
            out.push_null();
        }
        Ok(out)
    }
}

/// Casts text columns to typed columns row by row; a row whose text does not parse is
/// reported. Shared by the text formats (DELIMITED, KAFKA strings).
pub(crate) fn cast_text_column(text: &arrow::array::StringArray, target: &arrow::datatypes::DataType) -> (ArrayRef, Vec<(usize, String)>) {
    use arrow::array::Array;
    use arrow::compute::{CastOptions, cast_with_options};
    let opts = CastOptions { safe: true, ..Default::default() };
    let casted = match target {
        arrow::datatypes::DataType::Utf8 => std::sync::Arc::new(text.clone()) as ArrayRef,
        arrow::datatypes::DataType::Boolean => {
            let vals: arrow::array::BooleanArray = text
                .iter()
                .map(|v| {
                    v.and_then(|s| match s.trim().to_ascii_lowercase().as_str() {
                        "true" => Some(true),
                        "false" => Some(false),
                        _ => None,
                    })
                })
                .collect();
            std::sync::Arc::new(vals)
        }
        // Temporal values are written as numbers: days (DATE), milliseconds (TIME,
        // TIMESTAMP); ISO text is accepted as well.
        arrow::datatypes::DataType::Date32 | arrow::datatypes::DataType::Time32(_) | arrow::datatypes::DataType::Timestamp(_, _) => {
            let int_type = match target {
                arrow::datatypes::DataType::Timestamp(_, _) => arrow::datatypes::DataType::Int64,
                _ => arrow::datatypes::DataType::Int32,
            };
            let numbers = cast_with_options(text, &int_type, &opts).and_then(|n| cast_with_options(&n, target, &opts));
            let iso = cast_with_options(text, target, &opts);
            match (numbers, iso) {
                (Ok(n), Ok(i)) => arrow::compute::kernels::zip::zip(
                    &arrow::compute::is_not_null(&n).unwrap_or_else(|_| arrow::array::BooleanArray::from(vec![false; n.len()])),
                    &n,
                    &i,
                )
                .unwrap_or(n),
                (Ok(n), Err(_)) => n,
                (Err(_), Ok(i)) => i,
                (Err(e), Err(_)) => {
                    let errs = (0..text.len()).map(|i| (i, e.to_string())).collect();
                    return (arrow::array::new_null_array(target, text.len()), errs);
                }
            }
        }
        _ => match cast_with_options(text, target, &opts) {
            Ok(a) => a,
            Err(e) => {
                let errs = (0..text.len()).map(|i| (i, e.to_string())).collect();
                return (arrow::array::new_null_array(target, text.len()), errs);
            }
        },
    };
    let mut errors = Vec::new();
    for i in 0..text.len() {
        if text.is_valid(i) && casted.is_null(i) {
            errors.push((
                i,
                format!(
                    "'{}' is not a valid {}",
                    text.value(i),
                    crate::catalog::types::SqlType::from_arrow(target).map(|t| t.to_string()).unwrap_or_else(|| target.to_string())
                ),
            ));
        }
    }
    (casted, errors)
}

/// Decodes inputs that `prepare` first turns into `inner`'s bytes (a registry frame
/// stripped, a message written as JSON): inputs `prepare` refuses are reported with its
/// reason, the rest decode with `inner`, and every index refers to `inputs`.
pub(crate) fn decode_prepared<'a>(
    inner: &mut dyn RowDecoder,
    inputs: &[Option<&'a [u8]>],
    mut prepare: impl FnMut(&'a [u8]) -> Result<std::borrow::Cow<'a, [u8]>, String>,
) -> DecodedRows {
    let mut prepared = Vec::with_capacity(inputs.len());
    let mut positions = Vec::with_capacity(inputs.len());
    let mut refused = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        match input.map(&mut prepare).transpose() {
            Ok(p) => {
                prepared.push(p);
                positions.push(i as u32);
            }
            Err(e) => refused.push((i as u32, e)),
        }
    }
    let refs: Vec<Option<&[u8]>> = prepared.iter().map(|p| p.as_deref()).collect();
    let mut out = inner.decode(&refs);
    out.kept = out.kept.iter().map(|k| positions[*k as usize]).collect();
    for e in out.errors.iter_mut() {
        e.0 = positions[e.0 as usize];
    }
    out.errors.extend(refused);
    out.errors.sort_by_key(|e| e.0);
    out
}

/// Removes rows (positions in `out.kept`) that failed a later step, reporting them.
pub(crate) fn drop_bad_rows(columns: &mut [ArrayRef], out: &mut DecodedRows, bad: std::collections::BTreeMap<usize, String>) {
    if bad.is_empty() {
        return;
    }
    let keep: arrow::array::BooleanArray = (0..out.kept.len()).map(|r| Some(!bad.contains_key(&r))).collect();
    for col in columns.iter_mut() {
        if let Ok(f) = arrow::compute::filter(col, &keep) {
            *col = f;
        }
    }
    let mut kept = Vec::new();
    for (r, idx) in out.kept.iter().enumerate() {
        match bad.get(&r) {
            Some(e) => out.errors.push((*idx, e.clone())),
            None => kept.push(*idx),
        }
    }
    out.kept = kept;
    out.errors.sort_by_key(|e| e.0);
}
