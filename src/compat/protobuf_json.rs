//! A case's JSON keys and values as PROTOBUF / PROTOBUF_NOSR records and back, as ksqlDB's
//! runner writes and reads them: with the source's registered schema (PROTOBUF, framed with
//! its id and the indexes of the message its full name picks, else the first) or the schema its columns make (PROTOBUF_NOSR); top-level
//! fields matched ignoring case. Keys are messages too: the case gives and expects them as
//! objects of the message's fields.

use chrono::Datelike;
use prost_reflect::prost::Message;
use prost_reflect::{DynamicMessage, Kind, MessageDescriptor};
use serde_json::Value;

use super::exact::Exact;
use crate::catalog::DataSource;
use crate::catalog::types::{Column, SqlType};
use crate::format::protobuf::{compile, frame_indexes, message_at, message_named, schema_for, split_frame};
use crate::format::protobuf_text::message_json;
use crate::format::{FormatKind, FormatSpec, Role, named_types};

/// A message from its JSON mapping (fields unknown to the message are ignored).
fn message_from_json(desc: &MessageDescriptor, json: &[u8]) -> Result<DynamicMessage, String> {
    let options = prost_reflect::DeserializeOptions::new().deny_unknown_fields(false);
    let mut de = serde_json::Deserializer::from_slice(json);
    DynamicMessage::deserialize_with_options(desc.clone(), &mut de, &options).map_err(|e| e.to_string())
}

/// Renames a row's JSON keys (column names) to the message's field names they match
/// ignoring case, in nested messages too: a registered schema's `id` takes column `ID`.
fn field_names_of(desc: &MessageDescriptor, v: &mut serde_json::Value, depth: usize) {
    let Some(o) = v.as_object_mut() else { return };
    if depth > 32 {
        return;
    }
    for f in desc.fields() {
        let key = if o.contains_key(f.name()) { Some(f.name().to_string()) } else { o.keys().find(|k| k.eq_ignore_ascii_case(f.name())).cloned() };
        let Some(mut value) = key.and_then(|k| o.remove(&k)) else { continue };
        if let Kind::Message(inner) = f.kind() {
            match &mut value {
                serde_json::Value::Array(items) if f.is_list() => items.iter_mut().for_each(|x| message_value(&inner, &f, x, depth + 1)),
                serde_json::Value::Object(entries) if f.is_map() => {
                    let value_field = inner.map_entry_value_field();
                    if let Kind::Message(m) = value_field.kind() {
                        entries.values_mut().for_each(|x| message_value(&m, &value_field, x, depth + 1));
                    }
                }
                x if !f.is_list() && !f.is_map() => message_value(&inner, &f, x, depth + 1),
                _ => {}
            }
        }
        o.insert(f.name().to_string(), value);
    }
}

/// A row's JSON for a message-typed field: DECIMAL text, DATE days and TIME milliseconds
/// become the messages that hold them; structs get the message's field names.
fn message_value(desc: &MessageDescriptor, field: &prost_reflect::FieldDescriptor, v: &mut serde_json::Value, depth: usize) {
    use serde_json::json;
    let converted = match (desc.full_name(), &*v) {
        ("confluent.type.Decimal", serde_json::Value::String(text)) => decimal_message(text, field),
        ("confluent.type.Decimal", serde_json::Value::Number(n)) => decimal_message(&n.to_string(), field),
        ("google.type.Date", serde_json::Value::Number(n)) => n.as_i64().and_then(|days| {
            let d = chrono::NaiveDate::default().checked_add_signed(chrono::TimeDelta::try_days(days)?)?;
            Some(json!({"year": d.year(), "month": d.month(), "day": d.day()}))
        }),
        ("google.type.TimeOfDay", serde_json::Value::Number(n)) => {
            n.as_i64().map(|ms| json!({"hours": ms / 3_600_000, "minutes": ms / 60_000 % 60, "seconds": ms / 1000 % 60, "nanos": ms % 1000 * 1_000_000}))
        }
        _ => None,
    };
    match converted {
        Some(c) => *v = c,
        None => field_names_of(desc, v, depth),
    }
}

/// `confluent.type.Decimal`'s JSON mapping for decimal text: the unscaled value as base64
/// big-endian two's complement, the field's declared precision, the text's scale.
fn decimal_message(text: &str, field: &prost_reflect::FieldDescriptor) -> Option<serde_json::Value> {
    use base64::Engine;
    let (int, frac) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    let unscaled: i128 = format!("{int}{frac}").parse().ok()?;
    let bytes = crate::format::protobuf_write::twos_complement(unscaled);
    let precision = match crate::format::protobuf_schema::decimal_of(field) {
        SqlType::Decimal { precision, .. } => u32::from(precision),
        _ => 0,
    };
    let value = base64::engine::general_purpose::STANDARD.encode(&bytes);
    Some(serde_json::json!({"value": value, "precision": precision, "scale": frac.len()}))
}

fn parts(source: &DataSource, role: Role) -> (&FormatSpec, Vec<&Column>) {
    match role {
        Role::Key => (&source.key_format, source.schema.key_columns().collect()),
        Role::Value => (&source.value_format, source.schema.value_columns().collect()),
    }
}

/// `v` as a record of `source`'s key or value.
pub fn encode(v: &Value, source: &DataSource, role: Role) -> Result<Vec<u8>, String> {
    let (spec, columns) = parts(source, role);
    let full_name = spec.full_name.as_deref();
    let text = spec.schema.clone().unwrap_or_else(|| schema_for(&named_types(&columns), spec.unwrapped(&columns, role), full_name, spec.protobuf_nullable));
    let (desc, indexes) = message_named(&compile(&text)?, full_name)?;
    let mut object = match v {
        Value::Object(_) => v.clone(),
        // A bare value stands for the message's only field.
        other => serde_json::json!({ desc.fields().next().map(|f| f.name().to_string()).unwrap_or_default(): other }),
    };
    // Fields matched ignoring case; decimals, dates and times made messages.
    field_names_of(&desc, &mut object, 0);
    let m = message_from_json(&desc, &serde_json::to_vec(&object).map_err(|e| e.to_string())?)?;
    let mut out = Vec::new();
    if spec.kind == FormatKind::Protobuf {
        let id = spec.schema_id.ok_or("the PROTOBUF source has no registered schema")?;
        out.push(0);
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&frame_indexes(&indexes));
    }
    m.encode(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// A record of `source`'s key or value as JSON.
pub fn decode(b: &[u8], source: &DataSource, role: Role) -> Result<Exact, String> {
    let (spec, columns) = parts(source, role);
    let (desc, body) = if spec.kind == FormatKind::Protobuf {
        let (id, indexes, body) = split_frame(b)?;
        let registry = spec.registry.as_ref().ok_or("no registry")?;
        let (_, text) = registry.0.schema_text(id)?;
        (message_at(&compile(&text)?, &indexes)?, body)
    } else {
        (message_at(&compile(&schema_for(&named_types(&columns), spec.unwrapped(&columns, role), None, spec.protobuf_nullable))?, &[0])?, b)
    };
    let m = prost_reflect::DynamicMessage::decode(desc, body).map_err(|e| e.to_string())?;
    let json = message_json(&m)?;
    let text = String::from_utf8_lossy(&json).into_owned();
    Exact::parse(&text).ok_or_else(|| format!("the message's JSON does not parse: {text}"))
}
