//! Arrow rows straight into PROTOBUF messages' wire format. A plan made once per encoder
//! says which message field each column fills (matched by name, exactly or ignoring case)
//! and how its values convert; rows are then written field by field with `prost`'s wire
//! primitives, in field order, proto3's way: defaults and nulls are left out (`optional`
//! fields and wrappers write what is set, so their nulls stay null), numeric repeated
//! fields packed. TIMESTAMP is `google.protobuf.Timestamp`, DECIMAL
//! `confluent.type.Decimal`, DATE `google.type.Date`, TIME `google.type.TimeOfDay`, enums
//! are written by name.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Fields, Float64Type, Int32Type, Int64Type, Time32MillisecondType, TimeUnit, TimestampMillisecondType,
};
use prost_reflect::prost::encoding::{WireType, encode_key, encode_varint};
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};

/// How deeply structs may nest in a plan.
const MAX_DEPTH: usize = 32;

/// Which field each column (or struct field) fills.
pub struct RowPlan(Vec<Slot>);

/// What one column fills.
enum Slot {
    /// Nothing: the message has no field for the column (as ksqlDB drops it).
    Skip,
    Field(FieldDescriptor, Put),
    /// A STRUCT column of a oneof's members: its set member is written as the message's
    /// own field.
    Oneof(RowPlan),
}

/// How a column's values become a field's.
enum Put {
    Scalar(Kind),
    Timestamp,
    /// With the precision the field declares.
    Decimal(u32),
    Date,
    Time,
    /// A `google.protobuf.*Value`: its value field.
    Wrapper(FieldDescriptor, Box<Put>),
    Struct(RowPlan),
    List(Box<Put>),
    Map(Box<Put>),
}

impl RowPlan {
    /// The plan for writing `fields` as `message`; `first_field`: a single column written
    /// as the message's first field (an unwrapped key or value).
    pub fn new(message: &MessageDescriptor, fields: &Fields, first_field: bool) -> Result<RowPlan, String> {
        if first_field && let ([f], Some(field)) = (fields.as_ref(), message.fields().next()) {
            let put = put_for(&field, f.data_type(), 0).map_err(|e| format!("column {}: {e}", f.name()))?;
            return Ok(RowPlan(vec![Slot::Field(field, put)]));
        }
        plan(message, fields, 0)
    }

    /// Writes row `row` of `columns` as a message's fields.
    pub fn write(&self, columns: &[&dyn Array], row: usize, buf: &mut Vec<u8>) {
        for (column, slot) in columns.iter().zip(&self.0) {
            match slot {
                Slot::Skip => {}
                Slot::Field(field, put) => write_field(buf, field.number(), field.supports_presence(), *column, row, put),
                Slot::Oneof(members) => {
                    if let Some(s) = column.as_struct_opt().filter(|s| !s.is_null(row)) {
                        let children: Vec<&dyn Array> = s.columns().iter().map(|c| c.as_ref()).collect();
                        members.write(&children, row, buf);
                    }
                }
            }
        }
    }
}

fn plan(message: &MessageDescriptor, fields: &Fields, depth: usize) -> Result<RowPlan, String> {
    if depth > MAX_DEPTH {
        return Err(format!("message {} nests more than {MAX_DEPTH} levels deep", message.full_name()));
    }
    let slots = fields.iter().map(|f| {
        let found = message.get_field_by_name(f.name()).or_else(|| message.fields().find(|x| x.name().eq_ignore_ascii_case(f.name())));
        let oneof = || {
            let named = |o: &prost_reflect::OneofDescriptor| super::protobuf_schema::oneof_column(message, o).eq_ignore_ascii_case(f.name());
            message.oneofs().filter(|o| !o.is_synthetic()).find(named)
        };
        match (found, oneof(), f.data_type()) {
            (Some(field), _, _) => put_for(&field, f.data_type(), depth).map(|p| Slot::Field(field, p)).map_err(|e| format!("column {}: {e}", f.name())),
            (None, Some(_), DataType::Struct(members)) => Ok(Slot::Oneof(plan(message, members, depth + 1)?)),
            (None, _, _) => Ok(Slot::Skip),
        }
    });
    Ok(RowPlan(slots.collect::<Result<_, String>>()?))
}

fn put_for(field: &FieldDescriptor, source: &DataType, depth: usize) -> Result<Put, String> {
    if field.is_map() {
        let (DataType::Map(entries, _), Kind::Message(entry)) = (source, field.kind()) else {
            return Err(format!("field {} is a map; the column is {source}", field.name()));
        };
        let DataType::Struct(kv) = entries.data_type() else { return Err("a MAP column without entries".into()) };
        return Ok(Put::Map(Box::new(kind_put(&entry.map_entry_value_field(), &entry.map_entry_value_field().kind(), kv[1].data_type(), depth + 1)?)));
    }
    if field.is_list() {
        let DataType::List(item) = source else { return Err(format!("field {} is repeated; the column is {source}", field.name())) };
        return Ok(Put::List(Box::new(kind_put(field, &field.kind(), item.data_type(), depth + 1)?)));
    }
    kind_put(field, &field.kind(), source, depth)
}

fn kind_put(field: &FieldDescriptor, kind: &Kind, source: &DataType, depth: usize) -> Result<Put, String> {
    Ok(match (kind, source) {
        (Kind::Message(m), DataType::Timestamp(..)) if m.full_name() == "google.protobuf.Timestamp" => Put::Timestamp,
        (Kind::Message(m), DataType::Decimal128(..)) if m.full_name() == "confluent.type.Decimal" => {
            let precision = match super::protobuf_schema::decimal_of(field) {
                crate::catalog::types::SqlType::Decimal { precision, .. } => u32::from(precision),
                _ => 0,
            };
            Put::Decimal(precision)
        }
        (Kind::Message(m), DataType::Date32) if m.full_name() == "google.type.Date" => Put::Date,
        (Kind::Message(m), DataType::Time32(_)) if m.full_name() == "google.type.TimeOfDay" => Put::Time,
        (Kind::Message(m), DataType::Struct(fields)) => Put::Struct(plan(m, fields, depth + 1)?),
        (Kind::Message(m), other) if m.full_name().starts_with("google.protobuf.") && m.full_name().ends_with("Value") => {
            let inner = m.get_field(1).ok_or_else(|| format!("{} has no value field", m.full_name()))?;
            let put = kind_put(&inner, &inner.kind(), other, depth + 1)?;
            Put::Wrapper(inner, Box::new(put))
        }
        (Kind::Message(m), other) => return Err(format!("a {other} column cannot be written as message {}", m.full_name())),
        (_, DataType::Struct(_) | DataType::List(_) | DataType::Map(..)) => return Err(format!("a {source} column cannot be written as a {kind:?} field")),
        (scalar, _) => Put::Scalar(scalar.clone()),
    })
}

/// Writes a field's key and length-delimited body (written by `body`).
fn nested(buf: &mut Vec<u8>, number: u32, body: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    body(&mut inner);
    encode_key(number, WireType::LengthDelimited, buf);
    encode_varint(inner.len() as u64, buf);
    buf.extend_from_slice(&inner);
}

/// Writes an integer field unless it is 0.
fn varint_field(buf: &mut Vec<u8>, number: u32, v: i64) {
    if v != 0 {
        encode_key(number, WireType::Varint, buf);
        encode_varint(v as u64, buf);
    }
}

/// Writes a column's value at a row as field `number` (nothing for a null).
fn write_field(buf: &mut Vec<u8>, number: u32, presence: bool, a: &dyn Array, i: usize, put: &Put) {
    if a.is_null(i) {
        return;
    }
    match put {
        Put::Scalar(kind) => {
            if let Some(v) = scalar(a, i, kind)
                && (presence || !v.is_default())
            {
                v.write(number, buf);
            }
        }
        Put::Timestamp => {
            let Some(ms) = a.as_primitive_opt::<TimestampMillisecondType>().map(|t| t.value(i)).or_else(|| integer(a, i)) else { return };
            nested(buf, number, |b| {
                varint_field(b, 1, ms.div_euclid(1000));
                varint_field(b, 2, ms.rem_euclid(1000) * 1_000_000);
            });
        }
        Put::Decimal(precision) => {
            let Some(d) = a.as_primitive_opt::<Decimal128Type>() else { return };
            let scale = match a.data_type() {
                DataType::Decimal128(_, s) => i64::from(*s),
                _ => 0,
            };
            let digits = twos_complement(d.value(i));
            nested(buf, number, |b| {
                encode_key(1, WireType::LengthDelimited, b);
                encode_varint(digits.len() as u64, b);
                b.extend_from_slice(&digits);
                varint_field(b, 2, i64::from(*precision));
                varint_field(b, 3, scale);
            });
        }
        Put::Date => {
            use chrono::Datelike;
            let Some(days) = a.as_primitive_opt::<Date32Type>().map(|d| d.value(i)) else { return };
            let Some(day) = chrono::TimeDelta::try_days(i64::from(days)).and_then(|d| chrono::NaiveDate::default().checked_add_signed(d)) else { return };
            nested(buf, number, |b| {
                varint_field(b, 1, i64::from(day.year()));
                varint_field(b, 2, i64::from(day.month()));
                varint_field(b, 3, i64::from(day.day()));
            });
        }
        Put::Time => {
            let Some(ms) = a.as_primitive_opt::<Time32MillisecondType>().map(|t| i64::from(t.value(i))) else { return };
            nested(buf, number, |b| {
                for (n, part) in [(1, ms / 3_600_000), (2, ms / 60_000 % 60), (3, ms / 1000 % 60), (4, ms % 1000 * 1_000_000)] {
                    varint_field(b, n, part);
                }
            });
        }
        // The wrapper is present (the value is not null); its value is written proto3's way.
        Put::Wrapper(inner, put) => nested(buf, number, |b| write_field(b, inner.number(), false, a, i, put)),
        Put::Struct(plan) => {
            let Some(s) = a.as_struct_opt() else { return };
            let children: Vec<&dyn Array> = s.columns().iter().map(|c| c.as_ref()).collect();
            nested(buf, number, |b| plan.write(&children, i, b));
        }
        Put::List(item) => {
            let Some(list) = a.as_list_opt::<i32>() else { return };
            let values = list.value(i);
            match item.as_ref() {
                // Numbers are packed: one length-delimited run of values.
                Put::Scalar(kind) if kind_packs(kind) => {
                    if values.is_empty() {
                        return;
                    }
                    nested(buf, number, |b| {
                        for j in 0..values.len() {
                            if let Some(v) = (!values.is_null(j)).then(|| scalar(values.as_ref(), j, kind)).flatten() {
                                v.write_bare(b);
                            }
                        }
                    });
                }
                // Repeated fields hold no nulls: null elements are left out.
                other => (0..values.len()).for_each(|j| write_element(buf, number, values.as_ref(), j, other)),
            }
        }
        Put::Map(value_put) => {
            let Some(map) = a.as_map_opt() else { return };
            let (start, end) = (map.value_offsets()[i] as usize, map.value_offsets()[i + 1] as usize);
            let Some(keys) = map.keys().as_string_opt::<i32>() else { return };
            let values = map.values();
            for j in start..end {
                if values.is_null(j) {
                    continue;
                }
                nested(buf, number, |b| {
                    let key = keys.value(j);
                    encode_key(1, WireType::LengthDelimited, b);
                    encode_varint(key.len() as u64, b);
                    b.extend_from_slice(key.as_bytes());
                    write_element(b, 2, values.as_ref(), j, value_put);
                });
            }
        }
    }
}

/// An element of a repeated field or a map value: written even when it is a default.
fn write_element(buf: &mut Vec<u8>, number: u32, a: &dyn Array, i: usize, put: &Put) {
    write_field(buf, number, true, a, i, put);
}

/// Whether repeated fields of a kind are packed (proto3 packs numbers, booleans, enums).
fn kind_packs(kind: &Kind) -> bool {
    !matches!(kind, Kind::String | Kind::Bytes | Kind::Message(_))
}

/// A scalar field's value.
enum Scalar {
    Varint(u64),
    Fixed32(u32),
    Fixed64(u64),
    Bytes(Vec<u8>),
}

impl Scalar {
    fn is_default(&self) -> bool {
        match self {
            Scalar::Varint(v) | Scalar::Fixed64(v) => *v == 0,
            Scalar::Fixed32(v) => *v == 0,
            Scalar::Bytes(b) => b.is_empty(),
        }
    }

    fn write(&self, number: u32, buf: &mut Vec<u8>) {
        let wire = match self {
            Scalar::Varint(_) => WireType::Varint,
            Scalar::Fixed32(_) => WireType::ThirtyTwoBit,
            Scalar::Fixed64(_) => WireType::SixtyFourBit,
            Scalar::Bytes(b) => {
                encode_key(number, WireType::LengthDelimited, buf);
                encode_varint(b.len() as u64, buf);
                buf.extend_from_slice(b);
                return;
            }
        };
        encode_key(number, wire, buf);
        self.write_bare(buf);
    }

    /// The value without its key (in a packed run).
    fn write_bare(&self, buf: &mut Vec<u8>) {
        match self {
            Scalar::Varint(v) => encode_varint(*v, buf),
            Scalar::Fixed32(v) => buf.extend_from_slice(&v.to_le_bytes()),
            Scalar::Fixed64(v) => buf.extend_from_slice(&v.to_le_bytes()),
            Scalar::Bytes(b) => buf.extend_from_slice(b),
        }
    }
}

fn integer(a: &dyn Array, i: usize) -> Option<i64> {
    match a.data_type() {
        DataType::Int32 => Some(i64::from(a.as_primitive::<Int32Type>().value(i))),
        DataType::Int64 => Some(a.as_primitive::<Int64Type>().value(i)),
        DataType::Timestamp(TimeUnit::Millisecond, _) => Some(a.as_primitive::<TimestampMillisecondType>().value(i)),
        DataType::Date32 => Some(i64::from(a.as_primitive::<Date32Type>().value(i))),
        DataType::Time32(TimeUnit::Millisecond) => Some(i64::from(a.as_primitive::<Time32MillisecondType>().value(i))),
        DataType::Boolean => Some(i64::from(a.as_boolean().value(i))),
        _ => None,
    }
}

fn float(a: &dyn Array, i: usize) -> Option<f64> {
    match a.data_type() {
        DataType::Float64 => Some(a.as_primitive::<Float64Type>().value(i)),
        _ => integer(a, i).map(|v| v as f64),
    }
}

/// The text of a scalar column's value (for string fields).
fn text(a: &dyn Array, i: usize) -> Option<String> {
    match a.data_type() {
        DataType::Utf8 => Some(a.as_string::<i32>().value(i).to_string()),
        DataType::Float64 => Some(a.as_primitive::<Float64Type>().value(i).to_string()),
        DataType::Boolean => Some(a.as_boolean().value(i).to_string()),
        DataType::Decimal128(..) => Some(arrow::util::display::array_value_to_string(a, i).ok()?),
        _ => integer(a, i).map(|v| v.to_string()),
    }
}

fn scalar(a: &dyn Array, i: usize, kind: &Kind) -> Option<Scalar> {
    let whole = || integer(a, i).or_else(|| float(a, i).map(|f| f as i64));
    let zigzag = |v: i64| ((v << 1) ^ (v >> 63)) as u64;
    Some(match kind {
        Kind::Bool => Scalar::Varint(u64::from(match a.data_type() {
            DataType::Boolean => a.as_boolean().value(i),
            _ => integer(a, i)? != 0,
        })),
        // int32 is sign-extended to 64 bits on the wire, as protobuf writes negatives.
        Kind::Int32 => Scalar::Varint(i64::from(whole()? as i32) as u64),
        Kind::Int64 => Scalar::Varint(whole()? as u64),
        Kind::Uint32 => Scalar::Varint(u64::from(whole()? as u32)),
        Kind::Uint64 => Scalar::Varint(whole()? as u64),
        Kind::Sint32 => Scalar::Varint(zigzag(i64::from(whole()? as i32))),
        Kind::Sint64 => Scalar::Varint(zigzag(whole()?)),
        Kind::Fixed32 => Scalar::Fixed32(whole()? as u32),
        Kind::Sfixed32 => Scalar::Fixed32(whole()? as i32 as u32),
        Kind::Fixed64 | Kind::Sfixed64 => Scalar::Fixed64(whole()? as u64),
        Kind::Float => Scalar::Fixed32((float(a, i)? as f32).to_bits()),
        Kind::Double => Scalar::Fixed64(float(a, i)?.to_bits()),
        Kind::String => Scalar::Bytes(match a.data_type() {
            DataType::Utf8 => a.as_string::<i32>().value(i).as_bytes().to_vec(),
            _ => text(a, i)?.into_bytes(),
        }),
        Kind::Bytes => Scalar::Bytes(match a.data_type() {
            DataType::Binary => a.as_binary::<i32>().value(i).to_vec(),
            _ => text(a, i)?.into_bytes(),
        }),
        Kind::Enum(e) => Scalar::Varint(match a.data_type() {
            DataType::Utf8 => i64::from(e.get_value_by_name(a.as_string::<i32>().value(i))?.number()) as u64,
            _ => i64::from(integer(a, i)? as i32) as u64,
        }),
        Kind::Message(_) => return None,
    })
}

/// Big-endian two's complement bytes as an unscaled decimal (None: more than 16 bytes).
pub fn from_twos_complement(bytes: &[u8]) -> Option<i128> {
    if bytes.len() > 16 {
        return None;
    }
    let mut v: i128 = if bytes.first().is_some_and(|b| b & 0x80 != 0) { -1 } else { 0 };
    for b in bytes {
        v = (v << 8) | i128::from(*b);
    }
    Some(v)
}

/// An unscaled decimal as the shortest big-endian two's complement.
pub fn twos_complement(v: i128) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 15 && ((bytes[start] == 0 && bytes[start + 1] & 0x80 == 0) || (bytes[start] == 0xff && bytes[start + 1] & 0x80 != 0)) {
        start += 1;
    }
    bytes[start..].to_vec()
}
