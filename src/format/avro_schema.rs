//! Avro schemas for SQL columns, both ways: the schema ksqlDB writes for a source's columns
//! (every field optional, `["null", T]` with a null default; DECIMAL as `bytes` with the
//! `decimal` logical type; DATE, TIME and TIMESTAMP as `date`, `time-millis` and
//! `timestamp-millis`; structs as records named after their path), the columns a
//! registered Avro schema stands for (inference), and the reader schema that reads a
//! writer's records into given columns.

use serde_json::{Map, Value, json};

use crate::catalog::types::SqlType;

/// The record name ksqlDB gives a source's value (and key) schema.
pub const DEFAULT_RECORD_NAME: &str = "io.confluent.ksql.avro_schemas.KsqlDataSourceSchema";

/// The Avro schema (JSON) ksqlDB writes for `columns`: a record of optional fields, or for a
/// single unwrapped column, that column's optional type.
pub fn schema_for(columns: &[(&str, &SqlType)], unwrapped: bool, full_name: Option<&str>) -> Value {
    let name = full_name.unwrap_or(DEFAULT_RECORD_NAME);
    if unwrapped && let [(_, ty)] = columns {
        return optional(avro_type(ty, name));
    }
    record(name, columns.iter().map(|(n, t)| (n.to_string(), (*t).clone())))
}

fn record(name: &str, fields: impl Iterator<Item = (String, SqlType)>) -> Value {
    let fields: Vec<Value> = fields.map(|(n, t)| json!({"name": n, "type": optional(avro_type(&t, &format!("{name}_{n}"))), "default": null})).collect();
    json!({"type": "record", "name": name, "fields": fields})
}

fn optional(t: Value) -> Value {
    json!(["null", t])
}

/// The (non-null) Avro type of a SQL type; `name` names records it defines.
fn avro_type(ty: &SqlType, name: &str) -> Value {
    match ty {
        SqlType::Boolean => json!("boolean"),
        SqlType::Int => json!("int"),
        SqlType::Bigint => json!("long"),
        SqlType::Double => json!("double"),
        SqlType::String => json!("string"),
        SqlType::Bytes => json!("bytes"),
        SqlType::Decimal { precision, scale } => json!({"type": "bytes", "logicalType": "decimal", "precision": precision, "scale": scale}),
        SqlType::Date => json!({"type": "int", "logicalType": "date"}),
        SqlType::Time => json!({"type": "int", "logicalType": "time-millis"}),
        SqlType::Timestamp => json!({"type": "long", "logicalType": "timestamp-millis"}),
        SqlType::Array(item) => json!({"type": "array", "items": optional(avro_type(item, name))}),
        SqlType::Map(_, v) => json!({"type": "map", "values": optional(avro_type(v, &format!("{name}_MapValue")))}),
        SqlType::Struct(fields) => record(name, fields.iter().cloned()),
    }
}

/// Why an Avro schema cannot be read as SQL columns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unreadable(pub String);

/// Named types a schema defines, for references to them by name.
#[derive(Default)]
struct Names(std::collections::HashMap<String, Value>);

impl Names {
    fn collect(&mut self, v: &Value, namespace: Option<&str>) {
        match v {
            Value::Array(branches) => branches.iter().for_each(|b| self.collect(b, namespace)),
            Value::Object(o) => {
                let ns = o.get("namespace").and_then(Value::as_str).or(namespace);
                if let (Some(kind), Some(name)) = (o.get("type").and_then(Value::as_str), o.get("name").and_then(Value::as_str))
                    && matches!(kind, "record" | "enum" | "fixed")
                {
                    let full = if name.contains('.') { name.to_string() } else { ns.map(|ns| format!("{ns}.{name}")).unwrap_or_else(|| name.to_string()) };
                    let short = full.rsplit('.').next().unwrap_or(&full).to_string();
                    self.0.insert(full, v.clone());
                    self.0.entry(short).or_insert_with(|| v.clone());
                }
                for key in ["fields", "items", "values"] {
                    match o.get(key) {
                        Some(Value::Array(fields)) => fields.iter().for_each(|f| self.collect(f.get("type").unwrap_or(&Value::Null), ns)),
                        Some(t) => self.collect(t, ns),
                        None => {}
                    }
                }
                if let Some(t) = o.get("type").filter(|t| !t.is_string()) {
                    self.collect(t, ns);
                }
            }
            _ => {}
        }
    }
}

const PRIMITIVES: [&str; 8] = ["null", "boolean", "int", "long", "float", "double", "bytes", "string"];

/// Replaces references to named types by their definitions, so every part of the schema
/// can be read on its own (a definition appears at most once in Avro, then by name). A
/// recursive type (a record that holds itself) stays a reference inside itself, so the
/// result is never larger than the schema times its number of names.
pub fn inline_names(schema: &Value) -> Value {
    let mut names = Names::default();
    names.collect(schema, None);
    fn walk(v: &Value, names: &Names, expanding: &mut Vec<String>) -> Value {
        match v {
            Value::String(s) if !PRIMITIVES.contains(&s.as_str()) => match names.0.get(s) {
                Some(def) if !expanding.contains(s) && expanding.len() < 64 => {
                    expanding.push(s.clone());
                    let out = walk(def, names, expanding);
                    expanding.pop();
                    out
                }
                _ => v.clone(),
            },
            Value::Array(a) => Value::Array(a.iter().map(|b| walk(b, names, expanding)).collect()),
            Value::Object(o) => {
                // A definition met in place is being expanded too (its own fields may name it).
                let own = match (o.get("type").and_then(Value::as_str), o.get("name").and_then(Value::as_str)) {
                    (Some("record" | "enum" | "fixed"), Some(n)) => Some(n.rsplit('.').next().unwrap_or(n).to_string()),
                    _ => None,
                };
                let before = expanding.len();
                if let Some(n) = &own {
                    expanding.push(n.clone());
                    for full in names.0.keys().filter(|k| k.rsplit('.').next() == Some(n.as_str()) && k.as_str() != n.as_str()) {
                        expanding.push(full.clone());
                    }
                }
                let mut out = Map::new();
                for (k, x) in o {
                    let x = match k.as_str() {
                        "type" | "items" | "values" => walk(x, names, expanding),
                        "fields" => match x {
                            Value::Array(fs) => Value::Array(
                                fs.iter()
                                    .map(|f| match f {
                                        Value::Object(fo) => {
                                            let mut fo = fo.clone();
                                            if let Some(t) = fo.get("type").cloned() {
                                                fo.insert("type".into(), walk(&t, names, expanding));
                                            }
                                            Value::Object(fo)
                                        }
                                        other => other.clone(),
                                    })
                                    .collect(),
                            ),
                            other => other.clone(),
                        },
                        _ => x.clone(),
                    };
                    out.insert(k.clone(), x);
                }
                expanding.truncate(before);
                Value::Object(out)
            }
            other => other.clone(),
        }
    }
    walk(schema, &names, &mut Vec::new())
}

/// A schema that names types defined in other schemas (its registry references) made
/// self-contained: each referenced type's definition replaces its first use, later uses stay
/// names, as an Avro document defines a type once.
pub fn resolve_references(main: &Value, referenced: &[Value]) -> Value {
    let mut names = Names::default();
    for r in referenced {
        names.collect(r, None);
    }
    let mut own = Names::default();
    own.collect(main, None);
    fn walk(v: &Value, names: &Names, defined: &mut Vec<String>, depth: usize) -> Value {
        if depth > 64 {
            return v.clone();
        }
        match v {
            Value::String(s) if !PRIMITIVES.contains(&s.as_str()) && !defined.contains(s) => match names.0.get(s) {
                Some(def) => {
                    defined.push(s.clone());
                    if let Some(full) = def.get("name").and_then(Value::as_str) {
                        defined.push(full.to_string());
                    }
                    walk(def, names, defined, depth + 1)
                }
                None => v.clone(),
            },
            Value::Array(a) => Value::Array(a.iter().map(|b| walk(b, names, defined, depth + 1)).collect()),
            Value::Object(o) => {
                let mut out = Map::new();
                for (k, x) in o {
                    let x = match k.as_str() {
                        "type" | "items" | "values" => walk(x, names, defined, depth + 1),
                        "fields" => Value::Array(
                            x.as_array()
                                .into_iter()
                                .flatten()
                                .map(|f| {
                                    let mut f = f.clone();
                                    if let Some(t) = f.get("type").cloned() {
                                        f["type"] = walk(&t, names, defined, depth + 1);
                                    }
                                    f
                                })
                                .collect(),
                        ),
                        _ => x.clone(),
                    };
                    out.insert(k.clone(), x);
                }
                Value::Object(out)
            }
            other => other.clone(),
        }
    }
    // Names the main schema defines itself are not replaced.
    let mut defined: Vec<String> = own.0.keys().cloned().collect();
    walk(main, &names, &mut defined, 0)
}

/// Whether a named type holds itself (directly or through others): such schemas describe
/// data of any depth, which Eddy does not read.
pub fn is_recursive(schema: &Value) -> bool {
    let mut names = Names::default();
    names.collect(schema, None);
    fn refers(v: &Value, names: &Names) -> bool {
        match v {
            Value::String(s) => !PRIMITIVES.contains(&s.as_str()) && names.0.contains_key(s),
            Value::Array(a) => a.iter().any(|b| refers(b, names)),
            Value::Object(o) => o.iter().any(|(k, x)| match k.as_str() {
                "type" | "items" | "values" => refers(x, names),
                "fields" => x.as_array().is_some_and(|fs| fs.iter().any(|f| f.get("type").is_some_and(|t| refers(t, names)))),
                _ => false,
            }),
            _ => false,
        }
    }
    refers(&inline_names(schema), &names)
}

/// The non-null branch of an optional union (`["null", T]` or `[T, "null"]`), else the type.
fn non_null(t: &Value) -> (&Value, bool) {
    if let Value::Array(branches) = t {
        let others: Vec<&Value> = branches.iter().filter(|b| b.as_str() != Some("null")).collect();
        if others.len() == 1 && branches.len() == 2 {
            return (others[0], true);
        }
    }
    (t, false)
}

/// The SQL type of an (inlined) Avro type, as ksqlDB reads it.
pub fn sql_type(t: &Value) -> Result<SqlType, Unreadable> {
    let (t, _) = non_null(t);
    let logical = t.get("logicalType").and_then(Value::as_str);
    let kind = match t {
        Value::String(s) => s.as_str(),
        Value::Object(o) => o.get("type").and_then(Value::as_str).ok_or_else(|| Unreadable(format!("an Avro type without a name: {t}")))?,
        Value::Array(_) => return Err(Unreadable(format!("Avro unions other than [\"null\", T] have no SQL type: {t}"))),
        other => return Err(Unreadable(format!("not an Avro type: {other}"))),
    };
    Ok(match (kind, logical) {
        ("int", Some("date")) => SqlType::Date,
        ("int", Some("time-millis")) | ("long", Some("time-micros")) => SqlType::Time,
        ("long", Some("timestamp-millis" | "timestamp-micros" | "local-timestamp-millis" | "local-timestamp-micros")) => SqlType::Timestamp,
        ("bytes" | "fixed", Some("decimal")) => {
            let p = t.get("precision").and_then(Value::as_u64).unwrap_or(38).min(38) as u8;
            let s = t.get("scale").and_then(Value::as_i64).unwrap_or(0) as i8;
            SqlType::Decimal { precision: p, scale: s }
        }
        ("boolean", _) => SqlType::Boolean,
        ("int", _) => SqlType::Int,
        ("long", _) => SqlType::Bigint,
        ("float" | "double", _) => SqlType::Double,
        ("string" | "enum", _) => SqlType::String,
        ("bytes" | "fixed", _) => SqlType::Bytes,
        ("array", _) => SqlType::Array(Box::new(sql_type(t.get("items").unwrap_or(&Value::Null))?)),
        ("map", _) => SqlType::Map(Box::new(SqlType::String), Box::new(sql_type(t.get("values").unwrap_or(&Value::Null))?)),
        ("record", _) => SqlType::Struct(record_fields(t)?),
        ("null", _) => return Err(Unreadable("a field of Avro type null has no SQL type".into())),
        (other, _) => return Err(Unreadable(format!("the Avro type {other} has no SQL type"))),
    })
}

fn record_fields(t: &Value) -> Result<Vec<(String, SqlType)>, Unreadable> {
    let fields = t.get("fields").and_then(Value::as_array).ok_or_else(|| Unreadable("an Avro record without fields".into()))?;
    fields
        .iter()
        .map(|f| {
            let name = f.get("name").and_then(Value::as_str).ok_or_else(|| Unreadable("an Avro field without a name".into()))?;
            Ok((name.to_string(), sql_type(f.get("type").unwrap_or(&Value::Null))?))
        })
        .collect()
}

/// The columns a registered schema holds, as ksqlDB infers them: a value record's fields
/// (names upper-cased), else one column named `single_name` holding the whole value (every
/// key, whose schema is one unwrapped value, and values of other types).
pub fn columns_of(schema: &Value, single_name: &str, is_key: bool) -> Result<Vec<(String, SqlType)>, Unreadable> {
    let schema = inline_names(schema);
    let (t, _) = non_null(&schema);
    if !is_key && t.get("type").and_then(Value::as_str) == Some("record") {
        return Ok(record_fields(t)?.into_iter().map(|(n, ty)| (n.to_uppercase(), ty)).collect());
    }
    Ok(vec![(single_name.to_string(), sql_type(t)?)])
}

/// A reader schema that reads records written with `writer` (inlined) into `ty`: the writer's
/// own type wherever it already means `ty` (so enums, fixed and micro-second types decode),
/// record fields matched by name exactly or else ignoring case, and `ty`'s Avro type
/// elsewhere, for Avro's resolution rules to promote or refuse. `names` numbers records it
/// makes up.
pub fn reader_type(writer: &Value, ty: &SqlType, names: &mut usize) -> Value {
    let (w, nullable) = non_null(writer);
    let inner = reader_inner(w, ty, names);
    if nullable || writer.is_array() { optional(inner) } else { inner }
}

fn reader_inner(w: &Value, ty: &SqlType, names: &mut usize) -> Value {
    let kind = w.get("type").and_then(Value::as_str).or(w.as_str());
    match (ty, kind) {
        (SqlType::Struct(fields), Some("record")) => {
            let wfields = w.get("fields").and_then(Value::as_array).cloned().unwrap_or_default();
            let mut out = Vec::new();
            for (name, fty) in fields {
                let found = wfields
                    .iter()
                    .find(|f| f.get("name").and_then(Value::as_str) == Some(name))
                    .or_else(|| wfields.iter().find(|f| f.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(name))));
                out.push(match found {
                    Some(f) => {
                        let wname = f.get("name").cloned().unwrap_or(Value::Null);
                        json!({"name": wname, "type": reader_type(f.get("type").unwrap_or(&Value::Null), fty, names), "default": null})
                    }
                    None => {
                        *names += 1;
                        json!({"name": name, "type": optional(avro_type(fty, &format!("eddy.missing.R{names}"))), "default": null})
                    }
                });
            }
            // Defaults must be the first branch's type: fields read as optional unions.
            let out: Vec<Value> = out
                .into_iter()
                .map(|mut f| {
                    let t = f.get("type").cloned().unwrap_or(Value::Null);
                    if !t.is_array() {
                        f["type"] = optional(t);
                    }
                    f
                })
                .collect();
            let mut rec = Map::new();
            rec.insert("type".into(), json!("record"));
            rec.insert("name".into(), w.get("name").cloned().unwrap_or(json!("eddy.Record")));
            if let Some(ns) = w.get("namespace") {
                rec.insert("namespace".into(), ns.clone());
            }
            rec.insert("fields".into(), Value::Array(out));
            Value::Object(rec)
        }
        (SqlType::Array(item), Some("array")) => json!({"type": "array", "items": reader_type(w.get("items").unwrap_or(&Value::Null), item, names)}),
        (SqlType::Map(_, v), Some("map")) => json!({"type": "map", "values": reader_type(w.get("values").unwrap_or(&Value::Null), v, names)}),
        _ if sql_type(w).as_ref() == Ok(ty) => w.clone(),
        _ => {
            *names += 1;
            avro_type(ty, &format!("eddy.reader.R{names}"))
        }
    }
}

/// Wraps a type as the only field of a record: Avro encodes a record as its fields one
/// after another, so the bytes of a value of `t` are the bytes of this record.
pub fn wrap_as_record(t: Value, field: &str) -> Value {
    json!({"type": "record", "name": "eddy.Unwrapped", "fields": [{"name": field, "type": t}]})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ksqldb_schema_has_optional_fields_and_logical_types() {
        let dec = SqlType::Decimal { precision: 4, scale: 2 };
        let st = SqlType::Struct(vec![("X".into(), SqlType::Int)]);
        let s = schema_for(&[("ID", &SqlType::Bigint), ("D", &dec), ("S", &st)], false, None);
        assert_eq!(s["name"], DEFAULT_RECORD_NAME);
        assert_eq!(s["fields"][0]["type"], json!(["null", "long"]));
        assert_eq!(s["fields"][1]["type"][1]["logicalType"], "decimal");
        assert_eq!(s["fields"][2]["type"][1]["name"], format!("{DEFAULT_RECORD_NAME}_S"));
        apache_avro::Schema::parse(&s).unwrap();
        assert_eq!(schema_for(&[("K", &SqlType::Int)], true, None), json!(["null", "int"]));
    }

    #[test]
    fn columns_are_inferred_from_records_enums_and_named_references() {
        let s = json!({"type": "record", "name": "T", "fields": [
            {"name": "a", "type": {"type": "enum", "name": "E", "symbols": ["X", "Y"]}},
            {"name": "b", "type": ["null", {"type": "array", "items": "E"}]},
            {"name": "c", "type": {"type": "long", "logicalType": "timestamp-micros"}},
            {"name": "d", "type": {"type": "map", "values": "double"}}
        ]});
        let cols = columns_of(&s, "ROWVAL", false).unwrap();
        assert_eq!(
            cols,
            vec![
                ("A".into(), SqlType::String),
                ("B".into(), SqlType::Array(Box::new(SqlType::String))),
                ("C".into(), SqlType::Timestamp),
                ("D".into(), SqlType::Map(Box::new(SqlType::String), Box::new(SqlType::Double))),
            ]
        );
        assert_eq!(columns_of(&json!("string"), "ROWKEY", true).unwrap(), vec![("ROWKEY".into(), SqlType::String)]);
        let key = json!({"type": "record", "name": "K", "fields": [{"name": "K", "type": "string"}]});
        assert_eq!(columns_of(&key, "ROWKEY", true).unwrap(), vec![("ROWKEY".into(), SqlType::Struct(vec![("K".into(), SqlType::String)]))]);
        assert!(columns_of(&json!(["int", "string"]), "V", false).is_err());
    }

    #[test]
    fn recursive_types_stay_references_inside_themselves() {
        let tree = json!({"type": "record", "name": "T", "namespace": "x", "fields": [
            {"name": "v", "type": "int"},
            {"name": "left", "type": ["null", "T"]},
            {"name": "right", "type": ["null", "x.T"]}
        ]});
        let inlined = inline_names(&tree);
        assert_eq!(inlined["fields"][1]["type"], json!(["null", "T"]));
        assert_eq!(inlined["fields"][2]["type"], json!(["null", "x.T"]));
        assert!(columns_of(&tree, "ROWVAL", false).is_err(), "a recursive record has no SQL type");
        assert!(is_recursive(&tree));
        assert!(!is_recursive(&json!({"type": "record", "name": "R", "fields": [{"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A"]}},
            {"name": "f", "type": "E"}]})));
    }

    #[test]
    fn references_are_defined_at_their_first_use() {
        let address = json!({"type": "record", "name": "Address", "namespace": "acme", "fields": [{"name": "city", "type": "string"}]});
        let order = json!({"type": "record", "name": "Order", "fields": [{"name": "home", "type": "acme.Address"}, {"name": "work", "type": "acme.Address"}]});
        let resolved = resolve_references(&order, &[address]);
        assert_eq!(resolved["fields"][0]["type"]["name"], "Address");
        assert_eq!(resolved["fields"][1]["type"], "acme.Address");
        apache_avro::Schema::parse(&resolved).unwrap();
        let cols = columns_of(&resolved, "ROWVAL", false).unwrap();
        assert_eq!(cols[1], ("WORK".into(), SqlType::Struct(vec![("city".into(), SqlType::String)])));
    }

    #[test]
    fn reader_matches_writer_fields_ignoring_case() {
        let w = json!({"type": "record", "name": "W", "fields": [{"name": "foo", "type": "int"}]});
        let ty = SqlType::Struct(vec![("FOO".into(), SqlType::Bigint), ("BAR".into(), SqlType::String)]);
        let r = reader_type(&w, &ty, &mut 0);
        assert_eq!(r["fields"][0]["name"], "foo");
        assert_eq!(r["fields"][0]["type"], json!(["null", "long"]));
        assert_eq!(r["fields"][1]["name"], "BAR");
        apache_avro::Schema::parse(&r).unwrap();
    }
}
