//! String and bytes functions: CHR, ELT, FIELD, TO_BYTES, FROM_BYTES, REGEXP_EXTRACT,
//! REGEXP_EXTRACT_ALL, REGEXP_SPLIT_TO_ARRAY.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use arrow::datatypes::DataType;
use base64::Engine;
use datafusion::common::ScalarValue;
use regex::Regex;

use super::RowFunction;
use super::value::{int, list, text};
use crate::catalog::types::SqlType;
use crate::sql::functions::{at_least, between, exactly};

fn string(_t: &[SqlType]) -> Result<SqlType, String> {
    Ok(SqlType::String)
}

fn s(v: String) -> Option<ScalarValue> {
    Some(ScalarValue::Utf8(Some(v)))
}

/// A compiled pattern, cached: patterns are nearly always literals, compiled once.
fn pattern(p: &str) -> Option<Arc<Regex>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut c = cache.lock().ok()?;
    if let Some(r) = c.get(p) {
        return Some(r.clone());
    }
    let r = Arc::new(Regex::new(p).ok()?);
    if c.len() < 1024 {
        c.insert(p.to_string(), r.clone());
    }
    Some(r)
}

fn chr(a: &[ScalarValue], _: &DataType) -> Option<ScalarValue> {
    let code = match text(&a[0]) {
        Some(t) => {
            let hex = t.strip_prefix("\\u").or_else(|| t.strip_prefix("\\U"))?;
            u32::from_str_radix(hex, 16).ok()?
        }
        None => u32::try_from(int(&a[0])?).ok()?,
    };
    s(char::from_u32(code)?.to_string())
}

fn elt(a: &[ScalarValue], _: &DataType) -> Option<ScalarValue> {
    let n = int(&a[0])?;
    if n < 1 || n as usize >= a.len() {
        return None;
    }
    text(&a[n as usize]).map(|t| t.to_string()).and_then(s)
}

fn field(a: &[ScalarValue], _: &DataType) -> Option<ScalarValue> {
    let Some(target) = text(&a[0]) else { return Some(ScalarValue::Int32(Some(0))) };
    let pos = a[1..].iter().position(|v| text(v) == Some(target)).map(|p| p as i32 + 1).unwrap_or(0);
    Some(ScalarValue::Int32(Some(pos)))
}

fn encoding(v: &ScalarValue) -> Option<String> {
    Some(text(v)?.to_ascii_lowercase().replace('-', ""))
}

fn to_bytes(a: &[ScalarValue], _: &DataType) -> Option<ScalarValue> {
    let t = text(&a[0])?;
    let bytes = match encoding(&a[1])?.as_str() {
        "hex" => {
            if t.len() % 2 != 0 {
                return None;
            }
            (0..t.len()).step_by(2).map(|i| u8::from_str_radix(t.get(i..i + 2)?, 16).ok()).collect::<Option<Vec<u8>>>()?
        }
        "utf8" => t.as_bytes().to_vec(),
        "ascii" => t.chars().map(|c| if c.is_ascii() { c as u8 } else { b'?' }).collect(),
        "base64" => base64::engine::general_purpose::STANDARD.decode(t).ok()?,
        _ => return None,
    };
    Some(ScalarValue::Binary(Some(bytes)))
}

fn from_bytes(a: &[ScalarValue], _: &DataType) -> Option<ScalarValue> {
    let b = match &a[0] {
        ScalarValue::Binary(Some(b)) | ScalarValue::LargeBinary(Some(b)) | ScalarValue::BinaryView(Some(b)) => b,
        _ => return None,
    };
    s(match encoding(&a[1])?.as_str() {
        "hex" => b.iter().map(|x| format!("{x:02X}")).collect(),
        "utf8" | "ascii" => String::from_utf8_lossy(b).into_owned(),
        "base64" => base64::engine::general_purpose::STANDARD.encode(b),
        _ => return None,
    })
}

fn group_of(a: &[ScalarValue]) -> Option<usize> {
    match a.get(2) {
        None => Some(0),
        Some(g) => usize::try_from(int(g)?).ok(),
    }
}

fn regexp_extract(a: &[ScalarValue], _: &DataType) -> Option<ScalarValue> {
    let re = pattern(text(&a[0])?)?;
    let caps = re.captures(text(&a[1])?)?;
    s(caps.get(group_of(a)?)?.as_str().to_string())
}

fn regexp_extract_all(a: &[ScalarValue], _: &DataType) -> Option<ScalarValue> {
    let re = pattern(text(&a[0])?)?;
    let g = group_of(a)?;
    let found = re.captures_iter(text(&a[1])?).map(|c| ScalarValue::Utf8(c.get(g).map(|m| m.as_str().to_string()))).collect();
    list(found, &DataType::Utf8)
}

fn regexp_split(a: &[ScalarValue], _: &DataType) -> Option<ScalarValue> {
    let t = text(&a[0])?;
    let re = pattern(text(&a[1])?)?;
    list(re.split(t).map(|p| ScalarValue::Utf8(Some(p.to_string()))).collect(), &DataType::Utf8)
}

fn strings_only(t: &[SqlType]) -> Result<SqlType, String> {
    if t.iter().all(|x| *x == SqlType::String) { Ok(SqlType::String) } else { Err("all arguments must be STRING".into()) }
}

pub fn functions() -> Vec<RowFunction> {
    vec![
        RowFunction { name: "CHR", arity: exactly(1), description: "The character of a Unicode code point (INT or '\\uXXXX').", returns: string, eval: chr },
        RowFunction {
            name: "ELT",
            arity: at_least(1),
            description: "ELT(n, s1, s2, ...): the n-th string (1-based), null when out of range.",
            returns: |t| if t[1..].iter().all(|x| *x == SqlType::String) { Ok(SqlType::String) } else { Err("ELT takes an index and STRING values".into()) },
            eval: elt,
        },
        RowFunction {
            name: "FIELD",
            arity: at_least(1),
            description: "FIELD(s, s1, s2, ...): the 1-based position of s among the others, 0 when absent.",
            returns: |t| strings_only(t).map(|_| SqlType::Int),
            eval: field,
        },
        RowFunction {
            name: "TO_BYTES",
            arity: exactly(2),
            description: "TO_BYTES(string, encoding): 'hex', 'utf8', 'ascii' or 'base64'.",
            returns: |t| strings_only(t).map(|_| SqlType::Bytes),
            eval: to_bytes,
        },
        RowFunction {
            name: "FROM_BYTES",
            arity: exactly(2),
            description: "FROM_BYTES(bytes, encoding): 'hex', 'utf8', 'ascii' or 'base64'.",
            returns: |t| if t[0] == SqlType::Bytes { Ok(SqlType::String) } else { Err("FROM_BYTES takes BYTES".into()) },
            eval: from_bytes,
        },
        RowFunction {
            name: "REGEXP_EXTRACT",
            arity: between(2, 3),
            description: "REGEXP_EXTRACT(pattern, string[, group]): the first match, or a capture group of it.",
            returns: string,
            eval: regexp_extract,
        },
        RowFunction {
            name: "REGEXP_EXTRACT_ALL",
            arity: between(2, 3),
            description: "REGEXP_EXTRACT_ALL(pattern, string[, group]): every match, or a capture group of each.",
            returns: |_| Ok(SqlType::Array(Box::new(SqlType::String))),
            eval: regexp_extract_all,
        },
        RowFunction {
            name: "REGEXP_SPLIT_TO_ARRAY",
            arity: exactly(2),
            description: "REGEXP_SPLIT_TO_ARRAY(string, pattern): the parts between matches.",
            returns: |_| Ok(SqlType::Array(Box::new(SqlType::String))),
            eval: regexp_split,
        },
    ]
}
