//! Turns a case's JSON keys and values into record bytes in a source's formats, and output
//! records back into JSON to compare with the expected ones.

use base64::Engine as _;
use serde_json::Value;

use super::exact::Exact;
use crate::catalog::types::SqlType;
use crate::catalog::{DataSource, WindowType};
use crate::format::{FormatKind, FormatSpec, Role};

/// The single column's type when a format holds one bare value.
fn single_type<'a>(mut cols: impl Iterator<Item = &'a SqlType>) -> Option<&'a SqlType> {
    let first = cols.next()?;
    cols.next().is_none().then_some(first)
}

fn kafka_bytes(v: &Value, ty: Option<&SqlType>) -> Result<Vec<u8>, String> {
    Ok(match (ty, v) {
        (Some(SqlType::Int), Value::Number(n)) => (n.as_i64().ok_or("not an INT")? as i32).to_be_bytes().to_vec(),
        (Some(SqlType::Bigint), Value::Number(n)) => n.as_i64().ok_or("not a BIGINT")?.to_be_bytes().to_vec(),
        (Some(SqlType::Double), Value::Number(n)) => n.as_f64().ok_or("not a DOUBLE")?.to_be_bytes().to_vec(),
        (Some(SqlType::Bytes), Value::String(s)) => base64::engine::general_purpose::STANDARD.decode(s).map_err(|e| e.to_string())?,
        (_, Value::String(s)) => s.as_bytes().to_vec(),
        (_, other) => other.to_string().into_bytes(),
    })
}

fn kafka_value(b: &[u8], ty: Option<&SqlType>) -> Value {
    match (ty, b.len()) {
        (Some(SqlType::Int), 4) => Value::from(i32::from_be_bytes(b.try_into().unwrap_or_default())),
        (Some(SqlType::Bigint), 8) => Value::from(i64::from_be_bytes(b.try_into().unwrap_or_default())),
        (Some(SqlType::Double), 8) => Value::from(f64::from_be_bytes(b.try_into().unwrap_or_default())),
        (Some(SqlType::Bytes), _) => Value::from(base64::engine::general_purpose::STANDARD.encode(b)),
        _ => Value::from(String::from_utf8_lossy(b).to_string()),
    }
}

fn encode(v: &Value, format: Option<&FormatSpec>, ty: Option<&SqlType>) -> Result<Option<Vec<u8>>, String> {
    if v.is_null() {
        return Ok(None);
    }
    if let Some(spec) = format.filter(|f| f.uses_registry()) {
        let (Some(id), Some(schema)) = (spec.schema_id, spec.schema.as_deref()) else {
            return Err(format!("the {} source has no registered schema to write with", spec.kind.name()));
        };
        if spec.kind == FormatKind::JsonSr {
            let mut out = vec![0];
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&serde_json::to_vec(v).map_err(|e| e.to_string())?);
            return Ok(Some(out));
        }
        return super::avro_json::encode(v, id, schema).map(Some);
    }
    Ok(Some(match format.map(|f| f.kind) {
        Some(FormatKind::Kafka) => kafka_bytes(v, ty)?,
        Some(FormatKind::Delimited) | None if v.is_string() => v.as_str().unwrap_or_default().as_bytes().to_vec(),
        Some(FormatKind::None) => return Ok(None),
        _ => serde_json::to_vec(v).map_err(|e| e.to_string())?,
    }))
}

/// Record bytes as JSON with numbers as written (see `exact`).
fn decode(b: &[u8], format: Option<&FormatSpec>, ty: Option<&SqlType>) -> Exact {
    if format.is_some_and(|f| f.kind == FormatKind::JsonSr) {
        return match crate::format::avro::split_frame(b) {
            Ok((_, body)) => Exact::parse(&String::from_utf8_lossy(body)).unwrap_or_else(|| Exact::String(String::from_utf8_lossy(body).into_owned())),
            Err(e) => Exact::String(e),
        };
    }
    if let Some(spec) = format.filter(|f| f.uses_registry())
        && let Some(registry) = &spec.registry
    {
        return super::avro_json::decode(b, registry.0.as_ref()).unwrap_or_else(Exact::String);
    }
    if format.is_some_and(|f| f.kind == FormatKind::Kafka) {
        return Exact::from_value(&kafka_value(b, ty));
    }
    let text = String::from_utf8_lossy(b);
    match format.map(|f| f.kind) {
        Some(FormatKind::Delimited) => Exact::String(text.into_owned()),
        _ => Exact::parse(&text).unwrap_or_else(|| Exact::String(text.into_owned())),
    }
}

/// Key bytes for a record of `source` (a topic without a source takes JSON, strings raw).
/// The source when its `role` is written in PROTOBUF or PROTOBUF_NOSR.
fn protobuf(source: Option<&DataSource>, role: Role) -> Option<&DataSource> {
    let s = source?;
    let spec = if role == Role::Key { &s.key_format } else { &s.value_format };
    matches!(spec.kind, FormatKind::Protobuf | FormatKind::ProtobufNosr).then_some(s)
}

pub fn encode_key(source: Option<&DataSource>, key: &Value) -> Result<Option<Vec<u8>>, String> {
    if let Some(s) = protobuf(source, Role::Key).filter(|_| !key.is_null()) {
        return super::protobuf_json::encode(key, s, Role::Key).map(Some);
    }
    let ty = source.and_then(|s| single_type(s.schema.key_columns().map(|c| &c.ty)));
    encode(key, source.map(|s| &s.key_format), ty)
}

pub fn encode_value(source: Option<&DataSource>, value: &Value) -> Result<Option<Vec<u8>>, String> {
    if let Some(s) = protobuf(source, Role::Value).filter(|_| !value.is_null()) {
        return super::protobuf_json::encode(value, s, Role::Value).map(Some);
    }
    let ty = source.and_then(|s| single_type(s.schema.value_columns().map(|c| &c.ty)));
    encode(value, source.map(|s| &s.value_format), ty)
}

/// A record key as JSON, and its window bounds (start, and end for sessions) for
/// windowed sources.
pub fn decode_key(source: Option<&DataSource>, bytes: Option<&[u8]>) -> (Exact, Option<(i64, Option<i64>)>) {
    let Some(mut b) = bytes else { return (Exact::Null, None) };
    let mut window = None;
    let i64_at = |s: &[u8]| i64::from_be_bytes(s.try_into().unwrap_or_default());
    match source.and_then(|s| s.window) {
        Some(WindowType::Session) if b.len() >= 16 => {
            let n = b.len();
            window = Some((i64_at(&b[n - 8..]), Some(i64_at(&b[n - 16..n - 8]))));
            b = &b[..n - 16];
        }
        Some(_) if b.len() >= 8 => {
            let n = b.len();
            window = Some((i64_at(&b[n - 8..]), None));
            b = &b[..n - 8];
        }
        _ => {}
    }
    if let Some(s) = protobuf(source, Role::Key) {
        return (super::protobuf_json::decode(b, s, Role::Key).unwrap_or_else(Exact::String), window);
    }
    let ty = source.and_then(|s| single_type(s.schema.key_columns().map(|c| &c.ty)));
    (decode(b, source.map(|s| &s.key_format), ty), window)
}

pub fn decode_value(source: Option<&DataSource>, bytes: Option<&[u8]>) -> Exact {
    let Some(b) = bytes else { return Exact::Null };
    if let Some(s) = protobuf(source, Role::Value) {
        return super::protobuf_json::decode(b, s, Role::Value).unwrap_or_else(Exact::String);
    }
    let ty = source.and_then(|s| single_type(s.schema.value_columns().map(|c| &c.ty)));
    decode(b, source.map(|s| &s.value_format), ty)
}

/// A record's headers: each key and its value (none for a null value).
pub type RecordHeaders = Vec<(String, Option<Vec<u8>>)>;

/// An input's headers, `[{KEY, VALUE(base64)}]`, as record headers.
pub fn encode_headers(headers: Option<&Value>) -> Result<RecordHeaders, String> {
    let Some(list) = headers else { return Ok(Vec::new()) };
    let list = list.as_array().ok_or("an input's headers are not a list")?;
    list.iter()
        .map(|h| {
            let key = h.get("KEY").or_else(|| h.get("key")).and_then(Value::as_str).ok_or("an input header has no KEY")?;
            let value = match h.get("VALUE").or_else(|| h.get("value")) {
                None | Some(Value::Null) => None,
                Some(Value::String(b64)) => {
                    Some(base64::engine::general_purpose::STANDARD.decode(b64).map_err(|e| format!("an input header's VALUE is not base64: {e}"))?)
                }
                Some(other) => return Err(format!("an input header's VALUE is not base64 text: {other}")),
            };
            Ok((key.to_string(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kafka_primitives_round_trip() {
        for (v, ty) in [(json!(7), SqlType::Int), (json!(-9_000_000_000i64), SqlType::Bigint), (json!(1.5), SqlType::Double), (json!("k"), SqlType::String)] {
            let b = kafka_bytes(&v, Some(&ty)).unwrap();
            assert_eq!(kafka_value(&b, Some(&ty)), v);
        }
    }
}
