//! The JSON_SR format: JSON values framed as Confluent's JSON Schema serializer writes them
//! (magic byte 0, the schema's 4-byte registry id, the JSON text). The JSON itself is read
//! and written by the JSON format's decoder and encoder; this module strips and adds the
//! frame, and maps JSON Schemas to SQL columns both ways with ksqlDB's conventions
//! (optional fields as `oneOf` null, Connect's `connect.type` and `connect.index`).

use serde_json::{Map, Value, json};

use super::avro_schema::Unreadable;
use super::json::{JsonDecoder, JsonEncoder};
use super::{DecodedRows, EncodedRows, FormatError, RowDecoder, RowEncoder};
use crate::catalog::types::SqlType;

/// The JSON Schema ksqlDB writes for `columns`: an object of optional properties, or for a
/// single unwrapped column, that column's optional type.
pub fn schema_for(columns: &[(&str, &SqlType)], unwrapped: bool) -> Value {
    if unwrapped && let [(_, ty)] = columns {
        return optional(json_type(ty));
    }
    object(columns.iter().map(|(n, t)| (n.to_string(), (*t).clone())))
}

fn object(fields: impl Iterator<Item = (String, SqlType)>) -> Value {
    let mut props = Map::new();
    for (i, (name, ty)) in fields.enumerate() {
        let mut p = optional(json_type(&ty));
        p["connect.index"] = json!(i);
        props.insert(name, p);
    }
    json!({"type": "object", "properties": props})
}

fn optional(t: Value) -> Value {
    json!({"oneOf": [{"type": "null"}, t]})
}

fn json_type(ty: &SqlType) -> Value {
    match ty {
        SqlType::Boolean => json!({"type": "boolean"}),
        SqlType::Int => json!({"type": "integer", "connect.type": "int32"}),
        SqlType::Bigint => json!({"type": "integer", "connect.type": "int64"}),
        SqlType::Double => json!({"type": "number", "connect.type": "float64"}),
        SqlType::String => json!({"type": "string"}),
        SqlType::Bytes => json!({"type": "string", "connect.type": "bytes"}),
        SqlType::Decimal { precision, scale } => json!({"type": "number", "title": "org.apache.kafka.connect.data.Decimal", "connect.type": "bytes",
            "connect.parameters": {"scale": scale.to_string(), "connect.decimal.precision": precision.to_string()}}),
        SqlType::Date => json!({"type": "integer", "title": "org.apache.kafka.connect.data.Date", "connect.type": "int32"}),
        SqlType::Time => json!({"type": "integer", "title": "org.apache.kafka.connect.data.Time", "connect.type": "int32"}),
        SqlType::Timestamp => json!({"type": "integer", "title": "org.apache.kafka.connect.data.Timestamp", "connect.type": "int64"}),
        SqlType::Array(item) => json!({"type": "array", "items": optional(json_type(item))}),
        SqlType::Map(_, v) => json!({"type": "object", "additionalProperties": optional(json_type(v)), "connect.type": "map"}),
        SqlType::Struct(fields) => object(fields.iter().cloned()),
    }
}

/// Resolves local `$ref`s (`#/definitions/X`, `#/$defs/X`) against `root`.
fn resolve<'a>(t: &'a Value, root: &'a Value, depth: usize) -> Result<&'a Value, Unreadable> {
    match t.get("$ref").and_then(Value::as_str) {
        None => Ok(t),
        Some(_) if depth > 32 => Err(Unreadable("JSON Schema $refs nest too deep".into())),
        Some(r) => {
            let pointer = r.strip_prefix('#').ok_or_else(|| Unreadable(format!("only local $refs (#/...) are read, not {r}")))?;
            let target = root.pointer(pointer).ok_or_else(|| Unreadable(format!("the $ref {r} names nothing in the schema")))?;
            resolve(target, root, depth + 1)
        }
    }
}

/// The non-null alternative of `oneOf`/`anyOf` [null, T] or a `type` list, else the type.
fn non_null<'a>(t: &'a Value, root: &'a Value) -> Result<&'a Value, Unreadable> {
    let t = resolve(t, root, 0)?;
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = t.get(key).and_then(Value::as_array) {
            let others: Vec<&Value> = alts.iter().filter(|a| a.get("type").and_then(Value::as_str) != Some("null")).collect();
            return match others.as_slice() {
                [one] => non_null(one, root),
                _ => Err(Unreadable(format!("a JSON Schema {key} other than [null, T] has no SQL type: {t}"))),
            };
        }
    }
    Ok(t)
}

/// The SQL type of a JSON Schema type, as ksqlDB reads it.
pub fn sql_type(t: &Value, root: &Value, depth: usize) -> Result<SqlType, Unreadable> {
    if depth > 64 {
        return Err(Unreadable("the JSON Schema nests too deep".into()));
    }
    let t = non_null(t, root)?;
    let kind = match t.get("type") {
        Some(Value::String(s)) => s.as_str(),
        Some(Value::Array(kinds)) => {
            let mut others = kinds.iter().filter_map(Value::as_str).filter(|k| *k != "null");
            match (others.next(), others.next()) {
                (Some(one), None) => one,
                _ => return Err(Unreadable(format!("a JSON Schema type list has no SQL type: {t}"))),
            }
        }
        _ if t.get("properties").is_some() => "object",
        _ => return Err(Unreadable(format!("a JSON Schema without a type has no SQL type: {t}"))),
    };
    let connect = t.get("connect.type").and_then(Value::as_str);
    let title = t.get("title").and_then(Value::as_str);
    Ok(match (kind, connect, title) {
        ("boolean", _, _) => SqlType::Boolean,
        ("integer", _, Some("org.apache.kafka.connect.data.Date")) => SqlType::Date,
        ("integer", _, Some("org.apache.kafka.connect.data.Time")) => SqlType::Time,
        ("integer", _, Some("org.apache.kafka.connect.data.Timestamp")) => SqlType::Timestamp,
        ("integer", Some("int8" | "int16" | "int32"), _) => SqlType::Int,
        ("integer", _, _) => SqlType::Bigint,
        ("number", _, Some("org.apache.kafka.connect.data.Decimal")) => {
            let params = t.get("connect.parameters");
            let p = params.and_then(|p| p.get("connect.decimal.precision")).and_then(Value::as_str).and_then(|s| s.parse().ok()).unwrap_or(38);
            let s = params.and_then(|p| p.get("scale")).and_then(Value::as_str).and_then(|s| s.parse().ok()).unwrap_or(0);
            SqlType::Decimal { precision: p, scale: s }
        }
        ("number", _, _) => SqlType::Double,
        ("string", Some("bytes"), _) => SqlType::Bytes,
        ("string", _, _) => SqlType::String,
        ("array", _, _) => SqlType::Array(Box::new(sql_type(t.get("items").unwrap_or(&Value::Null), root, depth + 1)?)),
        ("object", _, _) => match (t.get("properties").and_then(Value::as_object), t.get("additionalProperties")) {
            (Some(props), _) if !props.is_empty() || t.get("additionalProperties").is_none_or(|a| !a.is_object()) => {
                SqlType::Struct(properties(props, root, depth)?)
            }
            (_, Some(v)) if v.is_object() => SqlType::Map(Box::new(SqlType::String), Box::new(sql_type(v, root, depth + 1)?)),
            _ => SqlType::Struct(Vec::new()),
        },
        (other, _, _) => return Err(Unreadable(format!("the JSON Schema type {other} has no SQL type"))),
    })
}

/// An object's properties in `connect.index` order (else as written).
fn properties(props: &Map<String, Value>, root: &Value, depth: usize) -> Result<Vec<(String, SqlType)>, Unreadable> {
    let mut fields: Vec<(i64, usize, String, SqlType)> = Vec::new();
    for (n, (name, t)) in props.iter().enumerate() {
        let index = t.get("connect.index").and_then(Value::as_i64).unwrap_or(i64::MAX);
        fields.push((index, n, name.clone(), sql_type(t, root, depth + 1)?));
    }
    fields.sort_by_key(|f| (f.0, f.1));
    Ok(fields.into_iter().map(|(_, _, n, t)| (n, t)).collect())
}

/// The columns a registered JSON Schema holds, as ksqlDB infers them: an object's
/// properties (names upper-cased), else one column `single_name` (keys, other values).
pub fn columns_of(schema: &Value, single_name: &str, is_key: bool) -> Result<Vec<(String, SqlType)>, Unreadable> {
    let t = non_null(schema, schema)?;
    if !is_key && let SqlType::Struct(fields) = sql_type(t, schema, 0)? {
        return Ok(fields.into_iter().map(|(n, ty)| (n.to_uppercase(), ty)).collect());
    }
    Ok(vec![(single_name.to_string(), sql_type(t, schema, 0)?)])
}

/// Reads JSON_SR frames with the JSON decoder.
pub struct JsonSrDecoder {
    inner: JsonDecoder,
}

impl JsonSrDecoder {
    pub fn new(inner: JsonDecoder) -> JsonSrDecoder {
        JsonSrDecoder { inner }
    }
}

impl RowDecoder for JsonSrDecoder {
    fn decode(&mut self, inputs: &[Option<&[u8]>]) -> DecodedRows {
        super::decode_prepared(&mut self.inner, inputs, |b| super::avro::split_frame(b).map(|(_, body)| body.into()))
    }
}

/// Writes JSON values framed with the schema id.
pub struct JsonSrEncoder {
    inner: JsonEncoder,
    id: Option<i32>,
}

impl JsonSrEncoder {
    pub fn new(inner: JsonEncoder, id: Option<i32>) -> JsonSrEncoder {
        JsonSrEncoder { inner, id }
    }
}

impl RowEncoder for JsonSrEncoder {
    fn encode(&self, columns: &[arrow::array::ArrayRef], rows: usize) -> Result<EncodedRows, FormatError> {
        let id = self.id.ok_or_else(|| FormatError::Registry("the JSON_SR format writes no records until its schema is registered".into()))?;
        let json = self.inner.encode(columns, rows)?;
        let mut out = EncodedRows::with_capacity(rows);
        for i in 0..json.len() {
            match json.get(i) {
                None => out.push_null(),
                Some(text) => {
                    out.buf().push(0);
                    out.buf().extend_from_slice(&id.to_be_bytes());
                    out.buf().extend_from_slice(text);
                    out.end_row();
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, ArrayRef, AsArray, Int32Array};
    use arrow::datatypes::{DataType, Field, Fields};
    use std::sync::Arc;

    #[test]
    fn schemas_map_to_columns_both_ways() {
        let st = SqlType::Struct(vec![("X".into(), SqlType::Int)]);
        let s = schema_for(&[("ID", &SqlType::Bigint), ("S", &st), ("M", &SqlType::Map(Box::new(SqlType::String), Box::new(SqlType::Double)))], false);
        assert_eq!(s["properties"]["ID"]["connect.index"], 0);
        let cols = columns_of(&s, "ROWVAL", false).unwrap();
        assert_eq!(cols[0], ("ID".into(), SqlType::Bigint));
        assert_eq!(cols[1], ("S".into(), st));
        assert_eq!(cols[2].1, SqlType::Map(Box::new(SqlType::String), Box::new(SqlType::Double)));
        let refs =
            json!({"type": "object", "properties": {"a": {"$ref": "#/definitions/A"}}, "definitions": {"A": {"type": "array", "items": {"type": "string"}}}});
        assert_eq!(columns_of(&refs, "ROWVAL", false).unwrap(), vec![("A".into(), SqlType::Array(Box::new(SqlType::String)))]);
        let key = json!({"oneOf": [{"type": "null"}, {"type": "integer", "connect.type": "int32"}]});
        assert_eq!(columns_of(&key, "ROWKEY", true).unwrap(), vec![("ROWKEY".into(), SqlType::Int)]);
    }

    #[test]
    fn frames_are_stripped_and_added() {
        let fields: Fields = vec![Field::new("A", DataType::Int32, true)].into();
        let enc = JsonSrEncoder::new(JsonEncoder::new(fields.clone(), false), Some(3));
        let data: Vec<ArrayRef> = vec![Arc::new(Int32Array::from(vec![Some(5)]))];
        let rows = enc.encode(&data, 1).unwrap();
        assert_eq!(rows.get(0).unwrap(), b"\x00\x00\x00\x00\x03{\"A\":5}");
        let mut dec = JsonSrDecoder::new(JsonDecoder::new(fields, false));
        let r = dec.decode(&[Some(b"{\"A\":1}"), rows.get(0), None]);
        assert_eq!(r.kept, vec![1, 2]);
        assert_eq!(r.errors[0].0, 0);
        let a = r.columns[0].as_primitive::<arrow::datatypes::Int32Type>();
        assert_eq!(a.value(0), 5);
        assert!(a.is_null(1));
    }
}
