//! A case's JSON keys and values as PROTOBUF / PROTOBUF_NOSR records and back, as ksqlDB's
//! runner writes and reads them: with the source's registered schema (PROTOBUF, framed with
//! its id and the indexes of the message its full name picks, else the first) or the schema its columns make (PROTOBUF_NOSR); top-level
//! fields matched ignoring case. Keys are messages too: the case gives and expects them as
//! objects of the message's fields.

use prost_reflect::prost::Message;
use serde_json::Value;

use super::exact::Exact;
use crate::catalog::DataSource;
use crate::catalog::types::Column;
use crate::format::protobuf::{compile, field_names_of, frame_indexes, message_at, message_from_json, message_json, message_named, schema_for, split_frame};
use crate::format::{FormatKind, FormatSpec, Role, named_types};

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
