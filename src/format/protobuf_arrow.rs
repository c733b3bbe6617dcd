//! PROTOBUF messages straight into Arrow columns. A message is decoded by `prost-reflect`;
//! a plan made once per writer message (schema id and message indexes) says which field
//! fills each column (matched by name, exactly or ignoring case) and how its values
//! convert; rows are then appended to Arrow builders with no text in between. As ksqlDB
//! reads proto3: scalars, lists and maps that are not set read as their defaults (0, "",
//! [], {}); unset messages, wrappers and `optional` scalars read as null; enums read as
//! their names; `google.protobuf.Timestamp` as a TIMESTAMP; wrapper types as their value.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int32Builder, Int64Builder, MapArray, StringBuilder,
    StructArray, Time32MillisecondBuilder, TimestampMillisecondBuilder,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, FieldRef, Fields};
use base64::Engine;
use prost_reflect::{DynamicMessage, EnumDescriptor, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value};

use super::protobuf_wire::{FlatPlan, Raw};

/// How deeply messages may nest inside one another in a plan.
const MAX_DEPTH: usize = 32;

/// How one column (or struct field) is read from a message.
enum Column {
    /// The message has no field for it: null.
    Missing,
    /// A field of the message.
    Field(FieldDescriptor, Conv),
    /// The message itself, as a struct (a single unwrapped STRUCT column).
    Whole(Vec<Column>),
    /// A oneof, as a struct of its members (null when none is set).
    Oneof(prost_reflect::OneofDescriptor, Vec<Column>),
}

/// How a field's values convert to the column's type.
enum Conv {
    /// Numbers, booleans, strings and bytes, converted to the column's scalar type.
    Scalar,
    /// An enum: its value's name for STRING columns, its number for numeric ones.
    Enum(EnumDescriptor),
    /// `google.protobuf.Timestamp`, or int64 milliseconds.
    Timestamp,
    /// `confluent.type.Decimal`: big-endian two's complement digits at the message's scale.
    Decimal,
    /// `google.type.Date`.
    Date,
    /// `google.type.TimeOfDay`.
    Time,
    /// A `google.protobuf.*Value` wrapper: its `value` field.
    Wrapper(FieldDescriptor, Box<Conv>),
    Struct(Vec<Column>),
    List(Box<Conv>),
    Map(Box<Conv>),
}

/// Which fields of a message fill a source's columns.
pub struct MessagePlan {
    columns: Vec<Column>,
    /// Flat proto3 messages of scalars: read from the wire directly.
    flat: Option<FlatPlan>,
}

impl MessagePlan {
    /// The plan for reading `message` as `fields`. `unwrapped`: one column, read from the
    /// message's first field, or when `whole` (a single STRUCT column) from the message.
    pub fn new(message: &MessageDescriptor, fields: &Fields, unwrapped: bool, whole: bool) -> Result<MessagePlan, String> {
        let columns = if whole && let [f] = fields.as_ref() {
            let DataType::Struct(inner) = f.data_type() else { return Err("the single column is not a STRUCT".into()) };
            vec![Column::Whole(columns(message, inner, 0)?)]
        } else if unwrapped && let [f] = fields.as_ref() {
            match message.fields().next() {
                Some(field) => vec![Column::Field(field.clone(), field_conv(&field, f.data_type(), 0)?)],
                None => vec![Column::Missing],
            }
        } else {
            columns(message, fields, 0)?
        };
        let scalars: Option<Vec<Option<FieldDescriptor>>> = columns
            .iter()
            .map(|c| match c {
                Column::Missing => Some(None),
                Column::Field(f, Conv::Scalar | Conv::Enum(_)) => Some(Some(f.clone())),
                _ => None,
            })
            .collect();
        let flat = scalars.and_then(|fields| FlatPlan::new(message, &fields));
        Ok(MessagePlan { columns, flat })
    }

    /// The wire-level plan, when the message is flat.
    pub fn flat(&self) -> Option<&FlatPlan> {
        self.flat.as_ref()
    }
}

fn columns(message: &MessageDescriptor, fields: &Fields, depth: usize) -> Result<Vec<Column>, String> {
    if depth > MAX_DEPTH {
        return Err(format!("message {} nests more than {MAX_DEPTH} levels deep", message.full_name()));
    }
    fields
        .iter()
        .map(|f| {
            let found = message.get_field_by_name(f.name()).or_else(|| message.fields().find(|x| x.name().eq_ignore_ascii_case(f.name())));
            let oneof = || {
                let named = |o: &prost_reflect::OneofDescriptor| super::protobuf_schema::oneof_column(message, o).eq_ignore_ascii_case(f.name());
                message.oneofs().filter(|o| !o.is_synthetic()).find(named)
            };
            Ok(match found {
                None => match (oneof(), f.data_type()) {
                    (Some(o), DataType::Struct(inner)) => Column::Oneof(o, columns(message, inner, depth + 1)?),
                    _ => Column::Missing,
                },
                Some(field) => {
                    let conv = field_conv(&field, f.data_type(), depth).map_err(|e| format!("column {}: {e}", f.name()))?;
                    Column::Field(field, conv)
                }
            })
        })
        .collect()
}

fn field_conv(field: &FieldDescriptor, target: &DataType, depth: usize) -> Result<Conv, String> {
    if field.is_map() {
        let (DataType::Map(entries, _), Kind::Message(entry)) = (target, field.kind()) else {
            return Err(format!("field {} is a map; the column is {target}", field.name()));
        };
        let DataType::Struct(kv) = entries.data_type() else { return Err("a MAP column without entries".into()) };
        let value = entry.map_entry_value_field();
        return Ok(Conv::Map(Box::new(kind_conv(&value.kind(), kv[1].data_type(), depth + 1)?)));
    }
    if field.is_list() {
        let DataType::List(item) = target else { return Err(format!("field {} is repeated; the column is {target}", field.name())) };
        return Ok(Conv::List(Box::new(kind_conv(&field.kind(), item.data_type(), depth + 1)?)));
    }
    kind_conv(&field.kind(), target, depth)
}

fn kind_conv(kind: &Kind, target: &DataType, depth: usize) -> Result<Conv, String> {
    let numeric = |t: &DataType| matches!(t, DataType::Int32 | DataType::Int64 | DataType::Float64);
    Ok(match kind {
        Kind::Message(m) if m.full_name() == "google.protobuf.Timestamp" && matches!(target, DataType::Timestamp(..)) => Conv::Timestamp,
        Kind::Message(m) if m.full_name() == "confluent.type.Decimal" && matches!(target, DataType::Decimal128(..)) => Conv::Decimal,
        Kind::Message(m) if m.full_name() == "google.type.Date" && *target == DataType::Date32 => Conv::Date,
        Kind::Message(m) if m.full_name() == "google.type.TimeOfDay" && matches!(target, DataType::Time32(_)) => Conv::Time,
        Kind::Message(m) if m.full_name().starts_with("google.protobuf.") && m.full_name().ends_with("Value") && !matches!(target, DataType::Struct(_)) => {
            let value = m.get_field(1).ok_or_else(|| format!("{} has no value field", m.full_name()))?;
            Conv::Wrapper(value.clone(), Box::new(kind_conv(&value.kind(), target, depth + 1)?))
        }
        Kind::Message(m) => match target {
            DataType::Struct(fields) => Conv::Struct(columns(m, fields, depth + 1)?),
            other => return Err(format!("message {} cannot be read as {other}", m.full_name())),
        },
        Kind::Enum(e) if *target == DataType::Utf8 || numeric(target) => Conv::Enum(e.clone()),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 if matches!(target, DataType::Timestamp(..)) => Conv::Timestamp,
        Kind::Bool if *target == DataType::Boolean || *target == DataType::Utf8 => Conv::Scalar,
        Kind::String | Kind::Bytes if matches!(target, DataType::Utf8 | DataType::Binary) => Conv::Scalar,
        Kind::Bool | Kind::String | Kind::Bytes => return Err(format!("a {kind:?} field cannot be read as {target}").to_lowercase()),
        _ if numeric(target) || *target == DataType::Utf8 => Conv::Scalar,
        _ => return Err(format!("a {kind:?} field cannot be read as {target}").to_lowercase()),
    })
}

/// Arrow builders for a source's columns.
pub struct Columns(Vec<Builder>);

enum Builder {
    Bool(BooleanBuilder),
    Int(Int32Builder),
    Bigint(Int64Builder),
    Double(Float64Builder),
    Text(StringBuilder),
    Bytes(BinaryBuilder),
    Timestamp(TimestampMillisecondBuilder, Option<Arc<str>>),
    Decimal(Decimal128Builder, u8, i8),
    Date(Date32Builder),
    Time(Time32MillisecondBuilder),
    Struct { fields: Fields, children: Vec<Builder>, valid: Vec<bool> },
    List { item: FieldRef, child: Box<Builder>, offsets: Vec<i32>, valid: Vec<bool> },
    Map { entries: FieldRef, kv: Fields, keys: StringBuilder, values: Box<Builder>, offsets: Vec<i32>, valid: Vec<bool> },
}

impl Columns {
    /// Builders for `fields`; types a PROTOBUF source cannot have build null columns.
    pub fn new(fields: &Fields) -> Columns {
        Columns(fields.iter().map(|f| Builder::new(f.data_type())).collect())
    }

    /// Appends a row of nulls (a record without a value).
    pub fn append_nulls(&mut self) {
        self.0.iter_mut().for_each(Builder::append_null);
    }

    /// Appends one message as a row, by its plan.
    pub fn append(&mut self, plan: &MessagePlan, message: &DynamicMessage) {
        for (b, column) in self.0.iter_mut().zip(&plan.columns) {
            b.append_column(column, message);
        }
    }

    /// Appends one flat message's fields (as [`FlatPlan::read`] staged them) as a row.
    pub fn append_flat(&mut self, plan: &FlatPlan, staged: &[Option<Raw>]) {
        for ((b, field), raw) in self.0.iter_mut().zip(&plan.fields).zip(staged) {
            match (field, raw) {
                (None, _) => b.append_null(),
                (Some(f), None) if f.presence => b.append_null(),
                (Some(f), None) => b.append_raw(&f.kind, default_raw(&f.kind)),
                (Some(f), Some(raw)) => b.append_raw(&f.kind, *raw),
            }
        }
    }

    /// The columns, or why the rows do not make them (a column's declared nullability).
    pub fn finish(self) -> Result<Vec<ArrayRef>, String> {
        self.0.into_iter().map(Builder::finish).collect()
    }
}

impl Builder {
    fn new(dt: &DataType) -> Builder {
        match dt {
            DataType::Boolean => Builder::Bool(BooleanBuilder::new()),
            DataType::Int32 => Builder::Int(Int32Builder::new()),
            DataType::Int64 => Builder::Bigint(Int64Builder::new()),
            DataType::Float64 => Builder::Double(Float64Builder::new()),
            DataType::Binary => Builder::Bytes(BinaryBuilder::new()),
            DataType::Timestamp(_, tz) => Builder::Timestamp(TimestampMillisecondBuilder::new(), tz.clone()),
            DataType::Decimal128(p, s) => Builder::Decimal(Decimal128Builder::new(), *p, *s),
            DataType::Date32 => Builder::Date(Date32Builder::new()),
            DataType::Time32(_) => Builder::Time(Time32MillisecondBuilder::new()),
            DataType::Struct(fields) => {
                Builder::Struct { fields: fields.clone(), children: fields.iter().map(|f| Builder::new(f.data_type())).collect(), valid: Vec::new() }
            }
            DataType::List(item) => Builder::List { item: item.clone(), child: Box::new(Builder::new(item.data_type())), offsets: vec![0], valid: Vec::new() },
            DataType::Map(entries, _) if matches!(entries.data_type(), DataType::Struct(kv) if kv.len() == 2) => {
                let DataType::Struct(kv) = entries.data_type() else { return Builder::Text(StringBuilder::new()) };
                let values = Box::new(Builder::new(kv[1].data_type()));
                Builder::Map { entries: entries.clone(), kv: kv.clone(), keys: StringBuilder::new(), values, offsets: vec![0], valid: Vec::new() }
            }
            // Strings, and types the PROTOBUF formats refuse before a decoder is made.
            _ => Builder::Text(StringBuilder::new()),
        }
    }

    fn append_null(&mut self) {
        match self {
            Builder::Bool(b) => b.append_null(),
            Builder::Int(b) => b.append_null(),
            Builder::Bigint(b) => b.append_null(),
            Builder::Double(b) => b.append_null(),
            Builder::Text(b) => b.append_null(),
            Builder::Bytes(b) => b.append_null(),
            Builder::Timestamp(b, _) => b.append_null(),
            Builder::Decimal(b, ..) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::Time(b) => b.append_null(),
            Builder::Struct { children, valid, .. } => {
                children.iter_mut().for_each(Builder::append_null);
                valid.push(false);
            }
            Builder::List { offsets, valid, .. } | Builder::Map { offsets, valid, .. } => {
                offsets.push(offsets.last().copied().unwrap_or(0));
                valid.push(false);
            }
        }
    }

    /// Appends a scalar or enum field's wire value.
    fn append_raw(&mut self, kind: &Kind, raw: Raw) {
        let zigzag = |v: u64| ((v >> 1) as i64) ^ -((v & 1) as i64);
        let value = match (kind, raw) {
            (Kind::String, Raw::Bytes(b)) => match self {
                Builder::Text(t) => return t.append_value(std::str::from_utf8(b).unwrap_or_default()),
                Builder::Bytes(t) => return t.append_value(b),
                _ => Value::String(String::from_utf8_lossy(b).into_owned()),
            },
            (Kind::Bytes, Raw::Bytes(b)) => match self {
                Builder::Bytes(t) => return t.append_value(b),
                _ => Value::Bytes(b.to_vec().into()),
            },
            (Kind::Enum(e), Raw::Varint(v)) => match self {
                Builder::Text(t) => match e.get_value(v as i32) {
                    Some(value) => return t.append_value(value.name()),
                    None => return t.append_value((v as i32).to_string()),
                },
                other => return other.append_number(f64::from(v as i32), i64::from(v as i32)),
            },
            (Kind::Int32, Raw::Varint(v)) => Value::I32(v as i32),
            (Kind::Int64, Raw::Varint(v)) => Value::I64(v as i64),
            (Kind::Uint32, Raw::Varint(v)) => Value::U32(v as u32),
            (Kind::Uint64, Raw::Varint(v)) => Value::U64(v),
            (Kind::Sint32, Raw::Varint(v)) => Value::I32(zigzag(v) as i32),
            (Kind::Sint64, Raw::Varint(v)) => Value::I64(zigzag(v)),
            (Kind::Bool, Raw::Varint(v)) => Value::Bool(v != 0),
            (Kind::Fixed32, Raw::Fixed32(v)) => Value::U32(v),
            (Kind::Sfixed32, Raw::Fixed32(v)) => Value::I32(v as i32),
            (Kind::Float, Raw::Fixed32(v)) => Value::F32(f32::from_bits(v)),
            (Kind::Fixed64, Raw::Fixed64(v)) => Value::U64(v),
            (Kind::Sfixed64, Raw::Fixed64(v)) => Value::I64(v as i64),
            (Kind::Double, Raw::Fixed64(v)) => Value::F64(f64::from_bits(v)),
            _ => return self.append_null(),
        };
        self.append_scalar(&value);
    }

    fn append_column(&mut self, column: &Column, message: &DynamicMessage) {
        match column {
            Column::Missing => self.append_null(),
            Column::Whole(columns) => self.append_struct(columns, message),
            Column::Oneof(oneof, columns) => {
                if oneof.fields().any(|f| message.has_field(&f)) {
                    self.append_struct(columns, message);
                } else {
                    self.append_null();
                }
            }
            Column::Field(field, conv) => {
                if field.supports_presence() && !message.has_field(field) {
                    self.append_null();
                } else {
                    self.append_value(conv, &message.get_field(field));
                }
            }
        }
    }

    fn append_struct(&mut self, columns: &[Column], message: &DynamicMessage) {
        match self {
            Builder::Struct { children, valid, .. } => {
                for (child, column) in children.iter_mut().zip(columns) {
                    child.append_column(column, message);
                }
                valid.push(true);
            }
            other => other.append_null(),
        }
    }

    fn append_value(&mut self, conv: &Conv, v: &Value) {
        match (conv, v) {
            (Conv::Struct(columns), Value::Message(m)) => self.append_struct(columns, m),
            (Conv::Wrapper(field, inner), Value::Message(m)) => self.append_value(inner, &m.get_field(field)),
            (Conv::Timestamp, Value::Message(m)) => {
                let seconds = m.get_field_by_number(1).and_then(|v| v.as_i64()).unwrap_or(0);
                let nanos = m.get_field_by_number(2).and_then(|v| v.as_i32()).unwrap_or(0);
                self.append_i64(seconds.saturating_mul(1000).saturating_add(i64::from(nanos) / 1_000_000));
            }
            (Conv::Decimal, Value::Message(m)) => {
                let digits = m.get_field_by_number(1);
                let digits = digits.as_ref().and_then(|v| v.as_bytes()).map(|b| b.to_vec()).unwrap_or_default();
                let scale = m.get_field_by_number(3).and_then(|v| v.as_i32()).unwrap_or(0);
                match self {
                    Builder::Decimal(b, precision, target) => match rescaled(&digits, scale, *target).filter(|v| fits(*v, *precision)) {
                        Some(v) => b.append_value(v),
                        None => b.append_null(),
                    },
                    other => other.append_null(),
                }
            }
            (Conv::Date, Value::Message(m)) => {
                let part = |n: u32| m.get_field_by_number(n).and_then(|v| v.as_i32()).unwrap_or(0);
                let day = chrono::NaiveDate::from_ymd_opt(part(1), part(2).max(0) as u32, part(3).max(0) as u32);
                match (self, day) {
                    (Builder::Date(b), Some(d)) => b.append_value((d - chrono::NaiveDate::default()).num_days() as i32),
                    (other, _) => other.append_null(),
                }
            }
            (Conv::Time, Value::Message(m)) => {
                let part = |n: u32| i64::from(m.get_field_by_number(n).and_then(|v| v.as_i32()).unwrap_or(0));
                let ms = ((part(1) * 60 + part(2)) * 60 + part(3)) * 1000 + part(4) / 1_000_000;
                match self {
                    Builder::Time(b) => b.append_value(ms as i32),
                    other => other.append_null(),
                }
            }
            (Conv::Enum(e), Value::EnumNumber(n)) => match self {
                Builder::Text(b) => match e.get_value(*n) {
                    Some(value) => b.append_value(value.name()),
                    None => b.append_value(n.to_string()),
                },
                other => other.append_number(f64::from(*n), i64::from(*n)),
            },
            (Conv::List(item), Value::List(values)) => match self {
                Builder::List { child, offsets, valid, .. } => {
                    for value in values {
                        child.append_value(item, value);
                    }
                    offsets.push(offsets.last().copied().unwrap_or(0) + values.len() as i32);
                    valid.push(true);
                }
                other => other.append_null(),
            },
            (Conv::Map(value_conv), Value::Map(entries)) => match self {
                Builder::Map { keys, values, offsets, valid, .. } => {
                    // Keys in order: a map's wire order is not kept by its decoder.
                    let mut sorted: Vec<(String, &Value)> = entries.iter().map(|(k, v)| (map_key(k), v)).collect();
                    sorted.sort_by(|a, b| a.0.cmp(&b.0));
                    for (k, v) in &sorted {
                        keys.append_value(k);
                        values.append_value(value_conv, v);
                    }
                    offsets.push(offsets.last().copied().unwrap_or(0) + sorted.len() as i32);
                    valid.push(true);
                }
                other => other.append_null(),
            },
            (_, value) => self.append_scalar(value),
        }
    }

    fn append_i64(&mut self, v: i64) {
        match self {
            Builder::Timestamp(b, _) => b.append_value(v),
            other => other.append_number(v as f64, v),
        }
    }

    fn append_number(&mut self, f: f64, i: i64) {
        match self {
            Builder::Int(b) => b.append_value(i as i32),
            Builder::Bigint(b) => b.append_value(i),
            Builder::Double(b) => b.append_value(f),
            Builder::Timestamp(b, _) => b.append_value(i),
            Builder::Text(b) if f.fract() == 0.0 && f.abs() < 1e15 => b.append_value(i.to_string()),
            Builder::Text(b) => b.append_value(f.to_string()),
            other => other.append_null(),
        }
    }

    fn append_scalar(&mut self, v: &Value) {
        match (self, v) {
            (Builder::Bool(b), Value::Bool(x)) => b.append_value(*x),
            (Builder::Text(b), Value::Bool(x)) => b.append_value(if *x { "true" } else { "false" }),
            (Builder::Text(b), Value::String(s)) => b.append_value(s),
            (Builder::Text(b), Value::Bytes(x)) => b.append_value(base64::engine::general_purpose::STANDARD.encode(x)),
            (Builder::Bytes(b), Value::Bytes(x)) => b.append_value(x),
            (Builder::Bytes(b), Value::String(s)) => b.append_value(s.as_bytes()),
            (this, Value::I32(x)) => this.append_number(f64::from(*x), i64::from(*x)),
            (this, Value::U32(x)) => this.append_number(f64::from(*x), i64::from(*x)),
            (this, Value::I64(x)) => this.append_number(*x as f64, *x),
            (this, Value::U64(x)) => this.append_number(*x as f64, *x as i64),
            (this, Value::F32(x)) => this.append_number(f64::from(*x), *x as i64),
            (this, Value::F64(x)) => this.append_number(*x, *x as i64),
            (this, _) => this.append_null(),
        }
    }

    fn finish(self) -> Result<ArrayRef, String> {
        let done = |e: arrow::error::ArrowError| e.to_string();
        Ok(match self {
            Builder::Bool(mut b) => Arc::new(b.finish()),
            Builder::Int(mut b) => Arc::new(b.finish()),
            Builder::Bigint(mut b) => Arc::new(b.finish()),
            Builder::Double(mut b) => Arc::new(b.finish()),
            Builder::Text(mut b) => Arc::new(b.finish()),
            Builder::Bytes(mut b) => Arc::new(b.finish()),
            Builder::Timestamp(mut b, tz) => Arc::new(b.finish().with_timezone_opt(tz)),
            Builder::Decimal(mut b, p, s) => Arc::new(b.finish().with_precision_and_scale(p, s).map_err(done)?),
            Builder::Date(mut b) => Arc::new(b.finish()),
            Builder::Time(mut b) => Arc::new(b.finish()),
            Builder::Struct { fields, children, valid } => {
                let children = children.into_iter().map(Builder::finish).collect::<Result<Vec<_>, _>>()?;
                let nulls = Some(NullBuffer::from(valid.clone()));
                if fields.is_empty() {
                    return Ok(Arc::new(StructArray::new_empty_fields(valid.len(), nulls)));
                }
                Arc::new(StructArray::try_new(fields, children, nulls).map_err(done)?)
            }
            Builder::List { item, child, offsets, valid } => {
                let nulls = Some(NullBuffer::from(valid));
                Arc::new(arrow::array::ListArray::try_new(item, OffsetBuffer::new(offsets.into()), child.finish()?, nulls).map_err(done)?)
            }
            Builder::Map { entries, kv, mut keys, values, offsets, valid } => {
                let entry_columns = StructArray::try_new(kv, vec![Arc::new(keys.finish()) as ArrayRef, values.finish()?], None).map_err(done)?;
                let nulls = Some(NullBuffer::from(valid));
                Arc::new(MapArray::try_new(entries, OffsetBuffer::new(offsets.into()), entry_columns, nulls, false).map_err(done)?)
            }
        })
    }
}

/// Big-endian two's complement digits at `scale`, as an i128 at `target` scale (None when
/// too long or when rescaling overflows).
fn rescaled(digits: &[u8], scale: i32, target: i8) -> Option<i128> {
    let v = super::protobuf_write::from_twos_complement(digits)?;
    let shift = i32::from(target) - scale;
    if shift >= 0 {
        10i128.checked_pow(shift as u32).and_then(|m| v.checked_mul(m))
    } else {
        // Fewer decimal places than written: rounded half up, as ksqlDB rounds.
        let d = 10i128.checked_pow((-shift) as u32)?;
        let (q, r) = (v / d, v % d);
        Some(if r.abs() * 2 >= d { q + v.signum() } else { q })
    }
}

/// Whether an unscaled value has at most `precision` digits.
fn fits(v: i128, precision: u8) -> bool {
    10i128.checked_pow(u32::from(precision)).is_none_or(|limit| v.abs() < limit)
}

/// The wire value an absent proto3 field stands for.
fn default_raw(kind: &Kind) -> Raw<'static> {
    match kind {
        Kind::Fixed32 | Kind::Sfixed32 | Kind::Float => Raw::Fixed32(0),
        Kind::Fixed64 | Kind::Sfixed64 | Kind::Double => Raw::Fixed64(0),
        Kind::String | Kind::Bytes => Raw::Bytes(&[]),
        _ => Raw::Varint(0),
    }
}

fn map_key(k: &MapKey) -> String {
    match k {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(v) => v.to_string(),
        MapKey::I64(v) => v.to_string(),
        MapKey::U32(v) => v.to_string(),
        MapKey::U64(v) => v.to_string(),
        MapKey::String(s) => s.clone(),
    }
}
