//! Arrow rows straight into PROTOBUF messages. A plan made once per encoder says which
//! message field each column fills (matched by name, exactly or ignoring case) and how its
//! values convert; each row becomes a `prost-reflect` message that `prost` encodes. Nulls
//! leave fields unset (proto3 reads them as defaults; `optional` fields and wrappers keep
//! them null). TIMESTAMP is `google.protobuf.Timestamp`, DECIMAL `confluent.type.Decimal`,
//! DATE `google.type.Date`, TIME `google.type.TimeOfDay`, enums are written by name.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Fields, Float64Type, Int32Type, Int64Type, Time32MillisecondType, TimeUnit, TimestampMillisecondType,
};
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value};

/// How deeply structs may nest in a plan.
const MAX_DEPTH: usize = 32;

/// Which field each column (or struct field) fills.
pub struct RowPlan(Vec<Option<(FieldDescriptor, Put)>>);

/// How a column's values become a field's.
enum Put {
    Scalar(Kind),
    Timestamp(MessageDescriptor),
    Decimal(MessageDescriptor, u32),
    Date(MessageDescriptor),
    Time(MessageDescriptor),
    Wrapper(MessageDescriptor, FieldDescriptor, Box<Put>),
    Struct(MessageDescriptor, RowPlan),
    List(Box<Put>),
    Map(Box<Put>),
}

impl RowPlan {
    /// The plan for writing `fields` as `message`; `first_field`: a single column written
    /// as the message's first field (an unwrapped key or value).
    pub fn new(message: &MessageDescriptor, fields: &Fields, first_field: bool) -> Result<RowPlan, String> {
        if first_field && let ([f], Some(field)) = (fields.as_ref(), message.fields().next()) {
            let put = put_for(&field, f.data_type(), 0).map_err(|e| format!("column {}: {e}", f.name()))?;
            return Ok(RowPlan(vec![Some((field, put))]));
        }
        plan(message, fields, 0)
    }

    /// Row `row` of `columns` as a message.
    pub fn message(&self, desc: &MessageDescriptor, columns: &[&dyn Array], row: usize) -> DynamicMessage {
        let mut m = DynamicMessage::new(desc.clone());
        for (column, slot) in columns.iter().zip(&self.0) {
            if let Some((field, put)) = slot
                && let Some(v) = value(*column, row, put)
            {
                m.set_field(field, v);
            }
        }
        m
    }
}

fn plan(message: &MessageDescriptor, fields: &Fields, depth: usize) -> Result<RowPlan, String> {
    if depth > MAX_DEPTH {
        return Err(format!("message {} nests more than {MAX_DEPTH} levels deep", message.full_name()));
    }
    let slots = fields.iter().map(|f| {
        let found = message.get_field_by_name(f.name()).or_else(|| message.fields().find(|x| x.name().eq_ignore_ascii_case(f.name())));
        match found {
            // A column the message has no field for is not written (as ksqlDB drops it).
            None => Ok(None),
            Some(field) => put_for(&field, f.data_type(), depth).map(|p| Some((field, p))).map_err(|e| format!("column {}: {e}", f.name())),
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
        (Kind::Message(m), DataType::Timestamp(..)) if m.full_name() == "google.protobuf.Timestamp" => Put::Timestamp(m.clone()),
        (Kind::Message(m), DataType::Decimal128(..)) if m.full_name() == "confluent.type.Decimal" => {
            let precision = match super::protobuf_schema::decimal_of(field) {
                crate::catalog::types::SqlType::Decimal { precision, .. } => u32::from(precision),
                _ => 0,
            };
            Put::Decimal(m.clone(), precision)
        }
        (Kind::Message(m), DataType::Date32) if m.full_name() == "google.type.Date" => Put::Date(m.clone()),
        (Kind::Message(m), DataType::Time32(_)) if m.full_name() == "google.type.TimeOfDay" => Put::Time(m.clone()),
        (Kind::Message(m), DataType::Struct(fields)) => Put::Struct(m.clone(), plan(m, fields, depth + 1)?),
        (Kind::Message(m), other) if m.full_name().starts_with("google.protobuf.") && m.full_name().ends_with("Value") => {
            let inner = m.get_field(1).ok_or_else(|| format!("{} has no value field", m.full_name()))?;
            let put = kind_put(&inner, &inner.kind(), other, depth + 1)?;
            Put::Wrapper(m.clone(), inner, Box::new(put))
        }
        (Kind::Message(m), other) => return Err(format!("a {other} column cannot be written as message {}", m.full_name())),
        (_, DataType::Struct(_) | DataType::List(_) | DataType::Map(..)) => return Err(format!("a {source} column cannot be written as a {kind:?} field")),
        (scalar, _) => Put::Scalar(scalar.clone()),
    })
}

/// A column's value at a row, as the field's value (None: null, the field stays unset).
fn value(a: &dyn Array, i: usize, put: &Put) -> Option<Value> {
    if a.is_null(i) {
        return None;
    }
    Some(match put {
        Put::Scalar(kind) => scalar(a, i, kind)?,
        Put::Timestamp(m) => {
            let ms = a.as_primitive_opt::<TimestampMillisecondType>().map(|t| t.value(i)).or_else(|| integer(a, i))?;
            let mut ts = DynamicMessage::new(m.clone());
            ts.set_field_by_number(1, Value::I64(ms.div_euclid(1000)));
            ts.set_field_by_number(2, Value::I32((ms.rem_euclid(1000) * 1_000_000) as i32));
            Value::Message(ts)
        }
        Put::Decimal(m, precision) => {
            let d = a.as_primitive_opt::<Decimal128Type>()?;
            let scale = match a.data_type() {
                DataType::Decimal128(_, s) => i32::from(*s),
                _ => 0,
            };
            let mut msg = DynamicMessage::new(m.clone());
            msg.set_field_by_number(1, Value::Bytes(twos_complement(d.value(i)).into()));
            msg.set_field_by_number(2, Value::U32(*precision));
            msg.set_field_by_number(3, Value::I32(scale));
            Value::Message(msg)
        }
        Put::Date(m) => {
            let days = a.as_primitive_opt::<Date32Type>()?.value(i);
            let day = chrono::NaiveDate::default().checked_add_signed(chrono::TimeDelta::try_days(i64::from(days))?)?;
            use chrono::Datelike;
            let mut msg = DynamicMessage::new(m.clone());
            msg.set_field_by_number(1, Value::I32(day.year()));
            msg.set_field_by_number(2, Value::I32(day.month() as i32));
            msg.set_field_by_number(3, Value::I32(day.day() as i32));
            Value::Message(msg)
        }
        Put::Time(m) => {
            let ms = a.as_primitive_opt::<Time32MillisecondType>()?.value(i);
            let mut msg = DynamicMessage::new(m.clone());
            for (n, part) in [(1, ms / 3_600_000), (2, ms / 60_000 % 60), (3, ms / 1000 % 60), (4, ms % 1000 * 1_000_000)] {
                msg.set_field_by_number(n, Value::I32(part));
            }
            Value::Message(msg)
        }
        Put::Wrapper(m, inner, put) => {
            let mut msg = DynamicMessage::new(m.clone());
            msg.set_field(inner, value(a, i, put)?);
            Value::Message(msg)
        }
        Put::Struct(m, plan) => {
            let s = a.as_struct_opt()?;
            let children: Vec<&dyn Array> = s.columns().iter().map(|c| c.as_ref()).collect();
            Value::Message(plan.message(m, &children, i))
        }
        Put::List(item) => {
            let list = a.as_list_opt::<i32>()?.value(i);
            // Repeated fields hold no nulls: null elements are left out.
            Value::List((0..list.len()).filter_map(|j| value(list.as_ref(), j, item)).collect())
        }
        Put::Map(value_put) => {
            let map = a.as_map_opt()?;
            let (start, end) = (map.value_offsets()[i] as usize, map.value_offsets()[i + 1] as usize);
            let (keys, values) = (map.keys(), map.values());
            let keys = keys.as_string_opt::<i32>()?;
            let entries = (start..end).filter_map(|j| Some((MapKey::String(keys.value(j).to_string()), value(values.as_ref(), j, value_put)?)));
            Value::Map(entries.collect())
        }
    })
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

fn scalar(a: &dyn Array, i: usize, kind: &Kind) -> Option<Value> {
    Some(match kind {
        Kind::Bool => Value::Bool(match a.data_type() {
            DataType::Boolean => a.as_boolean().value(i),
            _ => integer(a, i)? != 0,
        }),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(integer(a, i).or_else(|| float(a, i).map(|f| f as i64))? as i32),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(integer(a, i).or_else(|| float(a, i).map(|f| f as i64))?),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(integer(a, i).or_else(|| float(a, i).map(|f| f as i64))? as u32),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(integer(a, i).or_else(|| float(a, i).map(|f| f as i64))? as u64),
        Kind::Float => Value::F32(float(a, i)? as f32),
        Kind::Double => Value::F64(float(a, i)?),
        Kind::String => Value::String(text(a, i)?),
        Kind::Bytes => match a.data_type() {
            DataType::Binary => Value::Bytes(a.as_binary::<i32>().value(i).to_vec().into()),
            _ => Value::Bytes(text(a, i)?.into_bytes().into()),
        },
        Kind::Enum(e) => match a.data_type() {
            DataType::Utf8 => Value::EnumNumber(e.get_value_by_name(a.as_string::<i32>().value(i))?.number()),
            _ => Value::EnumNumber(integer(a, i)? as i32),
        },
        Kind::Message(_) => return None,
    })
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
