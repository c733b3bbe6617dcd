//! JSON functions: TO_JSON_STRING, EXTRACTJSONFIELD, JSON_CONCAT, JSON_ITEMS,
//! JSON_RECORDS, JSON_KEYS, JSON_ARRAY_LENGTH, JSON_ARRAY_CONTAINS, IS_JSON_STRING.

use arrow::datatypes::DataType;
use chrono::{DateTime, NaiveDate, NaiveTime};
use datafusion::common::ScalarValue;
use serde_json::Value as Json;

use super::RowFunction;
use super::value::{list, map, text};
use crate::catalog::types::SqlType;
use crate::format::json::encode_json_arrays;
use crate::sql::functions::{at_least, exactly};

fn utf8(s: String) -> Option<ScalarValue> {
    Some(ScalarValue::Utf8(Some(s)))
}

fn parse(v: &ScalarValue) -> Option<Json> {
    serde_json::from_str(text(v)?).ok()
}

/// A value as ksqlDB's TO_JSON_STRING writes it: temporal values as ISO text.
fn to_json_string(a: &[ScalarValue], _: &DataType) -> Option<ScalarValue> {
    let v = &a[0];
    if v.is_null() {
        return utf8("null".into());
    }
    let quoted = |s: String| utf8(Json::String(s).to_string());
    match v {
        ScalarValue::TimestampMillisecond(Some(ms), _) => {
            return quoted(DateTime::from_timestamp_millis(*ms)?.naive_utc().format("%Y-%m-%dT%H:%M:%S%.3f").to_string());
        }
        ScalarValue::Date32(Some(d)) => {
            let day = NaiveDate::from_ymd_opt(1970, 1, 1)?.checked_add_signed(chrono::Duration::days(*d as i64))?;
            return quoted(day.format("%Y-%m-%d").to_string());
        }
        ScalarValue::Time32Millisecond(Some(ms)) => {
            let t = NaiveTime::from_num_seconds_from_midnight_opt((*ms / 1000) as u32, ((*ms % 1000) * 1_000_000) as u32)?;
            return quoted(t.format("%H:%M:%S").to_string());
        }
        _ => {}
    }
    let arr = v.to_array().ok()?;
    let row = encode_json_arrays(&[arr], 1).ok()?.into_iter().next()?;
    let inner = row.strip_prefix('[')?.strip_suffix(']')?;
    utf8(inner.to_string())
}

/// Follows a JSONPath like `$.a.b[0]` or `$['a']`.
fn at_path<'a>(mut v: &'a Json, path: &str) -> Option<&'a Json> {
    let mut rest = path.trim().strip_prefix('$')?;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            v = v.get(&r[..end])?;
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = r[..end].trim();
            v = if let Some(name) =
                inner.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')).or_else(|| inner.strip_prefix('"').and_then(|x| x.strip_suffix('"')))
            {
                v.get(name)?
            } else {
                v.get(inner.parse::<usize>().ok()?)?
            };
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    Some(v)
}

fn extract_json_field(a: &[ScalarValue], _: &DataType) -> Option<ScalarValue> {
    let doc = parse(&a[0])?;
    match at_path(&doc, text(&a[1])?)? {
        Json::Null => None,
        Json::String(s) => utf8(s.clone()),
        other => utf8(other.to_string()),
    }
}

fn json_concat(a: &[ScalarValue], _: &DataType) -> Option<ScalarValue> {
    let docs = a.iter().map(parse).collect::<Option<Vec<_>>>()?;
    let out = if docs.iter().all(Json::is_object) {
        let mut m = serde_json::Map::new();
        for d in docs {
            if let Json::Object(o) = d {
                m.extend(o);
            }
        }
        Json::Object(m)
    } else {
        let mut items = Vec::new();
        for d in docs {
            match d {
                Json::Array(x) => items.extend(x),
                other => items.push(other),
            }
        }
        Json::Array(items)
    };
    utf8(out.to_string())
}

fn json_items(a: &[ScalarValue], _: &DataType) -> Option<ScalarValue> {
    let Json::Array(items) = parse(&a[0])? else { return None };
    list(items.into_iter().map(|i| ScalarValue::Utf8(Some(i.to_string()))).collect(), &DataType::Utf8)
}

fn json_records(a: &[ScalarValue], ret: &DataType) -> Option<ScalarValue> {
    let Json::Object(o) = parse(&a[0])? else { return None };
    let entries = o
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                Json::String(s) => s,
                other => other.to_string(),
            };
            (ScalarValue::Utf8(Some(k)), ScalarValue::Utf8(Some(text)))
        })
        .collect();
    map(entries, ret)
}

fn json_keys(a: &[ScalarValue], _: &DataType) -> Option<ScalarValue> {
    let Json::Object(o) = parse(&a[0])? else { return None };
    list(o.keys().map(|k| ScalarValue::Utf8(Some(k.clone()))).collect(), &DataType::Utf8)
}

/// JSON_ARRAY_CONTAINS(json, value): whether a top-level element of the JSON array is the
/// value, compared as ksqlDB does by kind (an INT or BIGINT matches integral numbers only,
/// a DOUBLE non-integral ones; NULL matches `null`); false for anything but an array.
fn json_array_contains(a: &[ScalarValue], _: &DataType) -> Option<ScalarValue> {
    let found = match parse(&a[0]) {
        Some(Json::Array(items)) => items.iter().any(|e| match (&a[1], e) {
            (v, Json::Null) => v.is_null(),
            (ScalarValue::Boolean(Some(b)), Json::Bool(x)) => b == x,
            (ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)), Json::String(x)) => s == x,
            (ScalarValue::Float64(Some(d)), Json::Number(n)) => !(n.is_i64() || n.is_u64()) && n.as_f64() == Some(*d),
            (v, Json::Number(n)) => super::value::int(v).is_some_and(|i| n.as_i64() == Some(i)),
            _ => false,
        }),
        _ => false,
    };
    Some(ScalarValue::Boolean(Some(found)))
}

fn string_arg(t: &[SqlType], out: SqlType) -> Result<SqlType, String> {
    if t.iter().all(|x| *x == SqlType::String) { Ok(out) } else { Err("expected STRING arguments".into()) }
}

pub fn functions() -> Vec<RowFunction> {
    vec![
        RowFunction {
            name: "TO_JSON_STRING",
            arity: exactly(1),
            description: "The value as JSON text.",
            returns: |_| Ok(SqlType::String),
            eval: to_json_string,
        },
        RowFunction {
            name: "JSON_ARRAY_CONTAINS",
            arity: exactly(2),
            description: "JSON_ARRAY_CONTAINS(json, value): whether the JSON array holds the value (BOOLEAN, INT, BIGINT, DOUBLE or STRING); \
                false when not an array.",
            returns: |t| {
                if t[0] != SqlType::String {
                    return Err("the first argument is a STRING of JSON".into());
                }
                match t[1] {
                    SqlType::Boolean | SqlType::Int | SqlType::Bigint | SqlType::Double | SqlType::String => Ok(SqlType::Boolean),
                    ref other => Err(format!("the value is BOOLEAN, INT, BIGINT, DOUBLE or STRING, not {other}")),
                }
            },
            eval: json_array_contains,
        },
        RowFunction {
            name: "EXTRACTJSONFIELD",
            arity: exactly(2),
            description: "EXTRACTJSONFIELD(json, '$.path'): the field as text, null when missing.",
            returns: |t| string_arg(t, SqlType::String),
            eval: extract_json_field,
        },
        RowFunction {
            name: "JSON_CONCAT",
            arity: at_least(1),
            description: "Merges JSON objects, or concatenates JSON arrays.",
            returns: |t| string_arg(t, SqlType::String),
            eval: json_concat,
        },
        RowFunction {
            name: "JSON_ITEMS",
            arity: exactly(1),
            description: "The elements of a JSON array, each as JSON text.",
            returns: |t| string_arg(t, SqlType::Array(Box::new(SqlType::String))),
            eval: json_items,
        },
        RowFunction {
            name: "JSON_RECORDS",
            arity: exactly(1),
            description: "The fields of a JSON object as a map of name to JSON text.",
            returns: |t| string_arg(t, SqlType::Map(Box::new(SqlType::String), Box::new(SqlType::String))),
            eval: json_records,
        },
        RowFunction {
            name: "JSON_KEYS",
            arity: exactly(1),
            description: "The field names of a JSON object.",
            returns: |t| string_arg(t, SqlType::Array(Box::new(SqlType::String))),
            eval: json_keys,
        },
        RowFunction {
            name: "JSON_ARRAY_LENGTH",
            arity: exactly(1),
            description: "The length of a JSON array.",
            returns: |t| string_arg(t, SqlType::Int),
            eval: |a, _| match parse(&a[0])? {
                Json::Array(x) => Some(ScalarValue::Int32(Some(x.len() as i32))),
                _ => None,
            },
        },
        RowFunction {
            name: "IS_JSON_STRING",
            arity: exactly(1),
            description: "Whether the text is valid JSON.",
            returns: |t| string_arg(t, SqlType::Boolean),
            eval: |a, _| Some(ScalarValue::Boolean(Some(parse(&a[0]).is_some()))),
        },
    ]
}
