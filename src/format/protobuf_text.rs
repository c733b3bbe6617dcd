//! A Confluent-framed PROTOBUF record as JSON text, read with the writer message its
//! schema id and message indexes name: for PRINT and for tools that compare records as
//! JSON. Every field is written, proto3 defaults included; unset messages and `optional`
//! fields as null; enums by name; decimals, dates and times of day as ksqlDB writes them
//! in JSON (a number, days since the epoch, milliseconds of the day).

use prost_reflect::{DynamicMessage, Kind, MessageDescriptor, ReflectMessage, SerializeOptions};

use super::SchemaLookup;
use super::protobuf::split_frame;
use super::protobuf_schema::{compile, message_at};

/// The record as JSON text.
pub fn frame_to_json(bytes: &[u8], registry: &dyn SchemaLookup) -> Result<String, String> {
    let (id, indexes, body) = split_frame(bytes)?;
    let (kind, text) = registry.schema_text(id)?;
    if kind != "PROTOBUF" {
        return Err(format!("schema id {id} is a {kind} schema, not a PROTOBUF one"));
    }
    let m = DynamicMessage::decode(message_at(&compile(&text)?, &indexes)?, body).map_err(|e| format!("the PROTOBUF message does not decode: {e}"))?;
    Ok(String::from_utf8_lossy(&message_json(&m)?).into_owned())
}

/// JSON text for a message, ksqlDB's way: every field written, defaults included;
/// decimals, dates and times of day as ksqlDB writes them in JSON (a number, days since
/// the epoch, milliseconds of the day).
pub fn message_json(m: &DynamicMessage) -> Result<Vec<u8>, String> {
    let options = SerializeOptions::new().stringify_64_bit_integers(false).use_proto_field_name(true).skip_default_fields(false);
    let mut value = m.serialize_with_options(serde_json::value::Serializer, &options).map_err(|e| e.to_string())?;
    null_unset_messages(&m.descriptor(), &mut value, 0);
    serde_json::to_vec(&value).map_err(|e| e.to_string())
}

/// The ksqlDB JSON value of a decimal, date or time-of-day message's JSON mapping.
fn logical_json(name: &str, v: &serde_json::Value) -> Option<serde_json::Value> {
    let int = |k: &str| v.get(k).and_then(serde_json::Value::as_i64).unwrap_or(0);
    match name {
        "confluent.type.Decimal" => {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD.decode(v.get("value")?.as_str()?).ok()?;
            let unscaled = super::protobuf_write::from_twos_complement(&bytes)?;
            let scale = int("scale").clamp(0, 38) as usize;
            let digits = format!("{:0>width$}", unscaled.unsigned_abs(), width = scale + 1);
            let (whole, frac) = digits.split_at(digits.len() - scale);
            let sign = if unscaled < 0 { "-" } else { "" };
            let text = if scale == 0 { format!("{sign}{whole}") } else { format!("{sign}{whole}.{frac}") };
            serde_json::from_str(&text).ok()
        }
        "google.type.Date" => {
            let day = chrono::NaiveDate::from_ymd_opt(int("year") as i32, int("month") as u32, int("day") as u32)?;
            Some(serde_json::json!((day - chrono::NaiveDate::default()).num_days()))
        }
        "google.type.TimeOfDay" => Some(serde_json::json!(((int("hours") * 60 + int("minutes")) * 60 + int("seconds")) * 1000 + int("nanos") / 1_000_000)),
        _ => None,
    }
}

/// Fields with presence (messages, `optional` scalars) that are not set are written as null
/// (the JSON mapping leaves them out).
fn null_unset_messages(desc: &MessageDescriptor, v: &mut serde_json::Value, depth: usize) {
    let Some(o) = v.as_object_mut() else { return };
    if depth > 32 {
        return;
    }
    for f in desc.fields() {
        let singular = !f.is_list() && !f.is_map();
        match (o.get_mut(f.name()), f.kind()) {
            (None, _) if singular && f.supports_presence() => {
                o.insert(f.name().to_string(), serde_json::Value::Null);
            }
            (Some(x), Kind::Message(inner)) if singular => match logical_json(inner.full_name(), x) {
                Some(value) => *x = value,
                None => null_unset_messages(&inner, x, depth + 1),
            },
            (Some(serde_json::Value::Array(items)), Kind::Message(inner)) if f.is_list() => {
                for x in items {
                    match logical_json(inner.full_name(), x) {
                        Some(value) => *x = value,
                        None => null_unset_messages(&inner, x, depth + 1),
                    }
                }
            }
            _ => {}
        }
    }
}
