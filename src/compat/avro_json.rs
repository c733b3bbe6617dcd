//! A case's JSON keys and values as Confluent-framed Avro, and back, as ksqlDB's test
//! runner writes and reads them with a registered schema: record fields matched by name
//! (ignoring case), unions by the first branch that holds the value, decimals by scale.
//! Records are read back with `format::avro_text`.

use apache_avro::types::Value as Avro;
use base64::Engine as _;
use serde_json::Value;

use super::exact::Exact;
use crate::format::SchemaLookup;
use crate::format::avro_schema::inline_names;

/// `v` written with `schema` (Avro JSON) and framed with `id`.
pub fn encode(v: &Value, id: i32, schema: &str) -> Result<Vec<u8>, String> {
    let parsed = apache_avro::Schema::parse_str(schema).map_err(|e| format!("schema id {id} is not an Avro schema: {e}"))?;
    let json: Value = serde_json::from_str(schema).map_err(|e| e.to_string())?;
    let avro = to_avro(v, &inline_names(&json))?;
    let body = apache_avro::to_avro_datum(&parsed, avro).map_err(|e| format!("{v} does not fit schema id {id}: {e}"))?;
    let mut out = vec![0];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

fn kind(t: &Value) -> &str {
    t.as_str().or_else(|| t.get("type").and_then(Value::as_str)).unwrap_or("")
}

fn to_avro(v: &Value, t: &Value) -> Result<Avro, String> {
    if let Value::Array(branches) = t {
        for (i, b) in branches.iter().enumerate() {
            let fits = if v.is_null() { kind(b) == "null" } else { kind(b) != "null" };
            if fits && let Ok(x) = to_avro(v, b) {
                return Ok(Avro::Union(i as u32, Box::new(x)));
            }
        }
        return Err(format!("{v} fits no branch of the union {t}"));
    }
    let logical = t.get("logicalType").and_then(Value::as_str);
    // ksqlDB's runner coerces text to the schema's numbers.
    let number = || v.as_f64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok())).ok_or_else(|| format!("{v} is not a number"));
    let integer = || v.as_i64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok())).ok_or_else(|| format!("{v} is not a whole number"));
    Ok(match (kind(t), logical, v) {
        ("null", _, Value::Null) => Avro::Null,
        (_, _, Value::Null) => return Err(format!("null for the non-null type {t}")),
        ("boolean", _, Value::Bool(b)) => Avro::Boolean(*b),
        ("int", Some("date"), _) => Avro::Date(integer()? as i32),
        ("int", Some("time-millis"), _) => Avro::TimeMillis(integer()? as i32),
        ("long", Some("timestamp-millis"), _) => Avro::TimestampMillis(integer()?),
        ("int", _, _) => Avro::Int(integer()? as i32),
        ("long", _, _) => Avro::Long(integer()?),
        ("float", _, _) => Avro::Float(number()? as f32),
        ("double", _, _) => Avro::Double(number()?),
        ("bytes", Some("decimal"), _) => {
            let scale = t.get("scale").and_then(Value::as_u64).unwrap_or(0) as usize;
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Avro::Decimal(apache_avro::Decimal::from(unscaled(&text, scale)?.to_be_bytes().to_vec()))
        }
        ("bytes", _, Value::String(s)) => Avro::Bytes(base64::engine::general_purpose::STANDARD.decode(s).map_err(|e| e.to_string())?),
        ("string", _, Value::String(s)) => Avro::String(s.clone()),
        ("enum", _, Value::String(s)) => {
            let symbols = t.get("symbols").and_then(Value::as_array).cloned().unwrap_or_default();
            let i = symbols.iter().position(|x| x.as_str() == Some(s)).ok_or_else(|| format!("{s} is not a symbol of {t}"))?;
            Avro::Enum(i as u32, s.clone())
        }
        ("array", _, Value::Array(items)) => {
            let it = t.get("items").unwrap_or(&Value::Null);
            Avro::Array(items.iter().map(|x| to_avro(x, it)).collect::<Result<_, _>>()?)
        }
        ("map", _, Value::Object(o)) => {
            let vt = t.get("values").unwrap_or(&Value::Null);
            Avro::Map(o.iter().map(|(k, x)| Ok((k.clone(), to_avro(x, vt)?))).collect::<Result<_, String>>()?)
        }
        ("record", _, Value::Object(o)) => {
            let fields = t.get("fields").and_then(Value::as_array).cloned().unwrap_or_default();
            let mut out = Vec::new();
            for f in &fields {
                let name = f.get("name").and_then(Value::as_str).unwrap_or_default();
                let given = o.get(name).or_else(|| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, x)| x));
                let ft = f.get("type").unwrap_or(&Value::Null);
                let x = match given {
                    Some(x) => to_avro(x, ft)?,
                    None => to_avro(f.get("default").unwrap_or(&Value::Null), ft)?,
                };
                out.push((name.to_string(), x));
            }
            Avro::Record(out)
        }
        _ => return Err(format!("{v} does not fit the Avro type {t}")),
    })
}

/// A decimal's text (`-12.3`) as its unscaled value at `scale` (`-1230` at 2), rounded half up.
fn unscaled(text: &str, scale: usize) -> Result<i128, String> {
    let text = text.trim();
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let mut frac: String = frac.chars().collect();
    let round_up = frac.len() > scale && frac.as_bytes()[scale] >= b'5';
    frac.truncate(scale);
    while frac.len() < scale {
        frac.push('0');
    }
    let joined = format!("{int}{frac}");
    let mut n: i128 = if joined.is_empty() { 0 } else { joined.parse().map_err(|_| format!("{text} is not a decimal"))? };
    if round_up {
        n += 1;
    }
    Ok(if neg { -n } else { n })
}

/// A Confluent-framed Avro record as JSON, read with the schema its id names.
pub fn decode(bytes: &[u8], registry: &dyn SchemaLookup) -> Result<Exact, String> {
    let text = crate::format::avro_text::frame_to_json(bytes, registry)?;
    Exact::parse(&text).ok_or_else(|| format!("the record's JSON does not parse: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct One(String);

    impl SchemaLookup for One {
        fn schema_text(&self, _id: i32) -> Result<(String, String), String> {
            Ok(("AVRO".into(), self.0.clone()))
        }
    }

    #[test]
    fn values_round_trip_with_decimals_and_case_insensitive_fields() {
        let schema = json!({"type": "record", "name": "R", "fields": [
            {"name": "ID", "type": ["null", "long"], "default": null},
            {"name": "DEC", "type": ["null", {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 2}], "default": null},
            {"name": "TAGS", "type": ["null", {"type": "map", "values": ["null", "int"]}], "default": null}
        ]})
        .to_string();
        let bytes = encode(&json!({"id": 7, "dec": -1.5, "TAGS": {"a": 1}}), 4, &schema).unwrap();
        assert_eq!(&bytes[..5], &[0, 0, 0, 0, 4]);
        let back = decode(&bytes, &One(schema)).unwrap();
        assert_eq!(back.get("ID"), Some(&Exact::Number("7".into())));
        assert_eq!(back.get("DEC"), Some(&Exact::Number("-1.50".into())));
        assert_eq!(back.get("TAGS"), Some(&Exact::Object(vec![("a".into(), Exact::Number("1".into()))])));
    }
}
