//! A Confluent-framed Avro record as JSON text, read with the writer schema its id names:
//! for PRINT (which shows JSON_SR frames' text too, and PROTOBUF's through `protobuf_text`), and for tools that compare records as
//! JSON. Decimals are written as numbers
//! with their scale (`1.50`), bytes as base64, enums as their symbol, timestamps, dates and
//! times as numbers (ms, days, ms).

use apache_avro::types::Value as Avro;
use base64::Engine as _;
use serde_json::Value;

use super::SchemaLookup;
use super::avro_schema::inline_names;

/// The format of a registry frame whose id the registry holds (`AVRO`, `PROTOBUF`, or
/// `JSON_SR` for a JSON schema), None for other bytes.
pub fn frame_format(bytes: &[u8], registry: &dyn SchemaLookup) -> Option<&'static str> {
    let (id, _) = super::avro::split_frame(bytes).ok()?;
    match registry.schema_text(id).ok()?.0.as_str() {
        "AVRO" => Some("AVRO"),
        "PROTOBUF" => Some("PROTOBUF"),
        "JSON" => Some("JSON_SR"),
        _ => None,
    }
}

/// A registry frame's record as JSON text (AVRO and PROTOBUF decoded, JSON_SR as written).
pub fn frame_text(bytes: &[u8], registry: &dyn SchemaLookup) -> Option<String> {
    match frame_format(bytes, registry)? {
        "AVRO" => frame_to_json(bytes, registry).ok(),
        "PROTOBUF" => super::protobuf_text::frame_to_json(bytes, registry).ok(),
        _ => super::avro::split_frame(bytes).ok().map(|(_, body)| String::from_utf8_lossy(body).into_owned()),
    }
}

/// The record as JSON text.
pub fn frame_to_json(bytes: &[u8], registry: &dyn SchemaLookup) -> Result<String, String> {
    let (id, mut body) = super::avro::split_frame(bytes)?;
    let (_, text) = registry.schema_text(id)?;
    let parsed = apache_avro::Schema::parse_str(&text).map_err(|e| e.to_string())?;
    let json: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    if super::avro_schema::is_recursive(&json) {
        return Err(format!("schema id {id} is recursive; its records are not read"));
    }
    let value = apache_avro::from_avro_datum(&parsed, &mut body, None).map_err(|e| format!("the Avro body does not decode with schema id {id}: {e}"))?;
    let mut out = String::new();
    write(&value, &inline_names(&json), &mut out);
    Ok(out)
}

fn string(s: &str, out: &mut String) {
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

fn write(v: &Avro, t: &Value, out: &mut String) {
    match v {
        Avro::Null => out.push_str("null"),
        Avro::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Avro::Int(n) | Avro::Date(n) | Avro::TimeMillis(n) => out.push_str(&n.to_string()),
        Avro::Long(n) | Avro::TimestampMillis(n) | Avro::TimeMicros(n) | Avro::TimestampMicros(n) => out.push_str(&n.to_string()),
        Avro::LocalTimestampMillis(n) | Avro::LocalTimestampMicros(n) | Avro::TimestampNanos(n) | Avro::LocalTimestampNanos(n) => out.push_str(&n.to_string()),
        Avro::Float(f) => out.push_str(&serde_json::Number::from_f64(f64::from(*f)).map(|n| n.to_string()).unwrap_or_else(|| format!("\"{f}\""))),
        Avro::Double(f) => out.push_str(&serde_json::Number::from_f64(*f).map(|n| n.to_string()).unwrap_or_else(|| format!("\"{f}\""))),
        Avro::Bytes(b) | Avro::Fixed(_, b) => string(&base64::engine::general_purpose::STANDARD.encode(b), out),
        Avro::String(s) | Avro::Enum(_, s) => string(s, out),
        Avro::Uuid(u) => string(&u.to_string(), out),
        Avro::Union(i, x) => write(x, t.as_array().and_then(|b| b.get(*i as usize)).unwrap_or(t), out),
        Avro::Array(items) => {
            out.push('[');
            for (n, x) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                write(x, t.get("items").unwrap_or(&Value::Null), out);
            }
            out.push(']');
        }
        Avro::Map(m) => {
            let mut entries: Vec<_> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (n, (k, x)) in entries.into_iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                string(k, out);
                out.push(':');
                write(x, t.get("values").unwrap_or(&Value::Null), out);
            }
            out.push('}');
        }
        Avro::Record(fields) => {
            let types = t.get("fields").and_then(Value::as_array).cloned().unwrap_or_default();
            out.push('{');
            for (n, (name, x)) in fields.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                string(name, out);
                out.push(':');
                let ft = types.iter().find(|f| f.get("name").and_then(Value::as_str) == Some(name)).and_then(|f| f.get("type")).unwrap_or(&Value::Null);
                write(x, ft, out);
            }
            out.push('}');
        }
        Avro::Decimal(d) => {
            let scale = t.get("scale").and_then(Value::as_u64).unwrap_or(0) as usize;
            let bytes: Vec<u8> = Vec::try_from(d).unwrap_or_default();
            let mut buf = [if bytes.first().is_some_and(|b| b & 0x80 != 0) { 0xff } else { 0 }; 16];
            let n = bytes.len().min(16);
            buf[16 - n..].copy_from_slice(&bytes[bytes.len() - n..]);
            out.push_str(&scaled_text(i128::from_be_bytes(buf), scale));
        }
        other => string(&format!("{other:?}"), out),
    }
}

fn scaled_text(n: i128, scale: usize) -> String {
    let digits = n.unsigned_abs().to_string();
    let sign = if n < 0 { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_their_scale() {
        assert_eq!(scaled_text(-150, 2), "-1.50");
        assert_eq!(scaled_text(5, 3), "0.005");
        assert_eq!(scaled_text(42, 0), "42");
    }
}
