//! String and bytes functions: CHR, ELT, FIELD, INSTR, TO_BYTES, FROM_BYTES, ENCODE,
//! REGEXP_EXTRACT, REGEXP_EXTRACT_ALL, REGEXP_REPLACE, REGEXP_SPLIT_TO_ARRAY, SPLIT_TO_MAP.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use arrow::datatypes::DataType;
use base64::Engine;
use datafusion::common::ScalarValue;
use regex::Regex;

use super::RowFunction;
use super::value::{int, list, map, text};
use crate::catalog::types::SqlType;
use crate::sql::functions::{at_least, between, exactly};

/// CHR(INT) or CHR(STRING).
fn chr_type(t: &[SqlType]) -> Result<SqlType, String> {
    match t[0] {
        SqlType::Int | SqlType::String => Ok(SqlType::String),
        _ => Err("CHR takes an INT code point or a STRING '\\uXXXX'".into()),
    }
}

/// The REGEXP_EXTRACT forms: (pattern STRING, string STRING[, group INT]) to `out`.
fn regexp_type(t: &[SqlType], out: SqlType) -> Result<SqlType, String> {
    if t.len() >= 2 && t[..2].iter().all(|x| *x == SqlType::String) && t[2..].iter().all(|x| *x == SqlType::Int) {
        Ok(out)
    } else {
        Err("the pattern and the string are STRINGs, the group an INT".into())
    }
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

/// CHR(INT code point), or CHR('\\uXXXX') with Java's escapes of UTF-16 units (a
/// character past U+FFFF is a surrogate pair, `'\\ud820\\udeb8'`).
fn chr(a: &[ScalarValue], _: &DataType) -> Option<ScalarValue> {
    let Some(t) = text(&a[0]) else {
        return s(char::from_u32(u32::try_from(int(&a[0])?).ok()?)?.to_string());
    };
    let mut units = Vec::new();
    let mut rest = t;
    while !rest.is_empty() {
        let hex = rest.strip_prefix("\\u").or_else(|| rest.strip_prefix("\\U"))?;
        let digits = hex.get(..4)?;
        if !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        units.push(u16::from_str_radix(digits, 16).ok()?);
        rest = &hex[4..];
    }
    if units.is_empty() {
        return None;
    }
    s(char::decode_utf16(units).collect::<Result<String, _>>().ok()?)
}

/// INITCAP as ksqlDB's: words are runs of non-whitespace; each starts upper case and goes
/// on lower case (an underscore or a hyphen does not start a word).
fn initcap(a: &[ScalarValue], _: &DataType) -> Option<ScalarValue> {
    let t = text(&a[0])?;
    let mut out = String::with_capacity(t.len());
    let mut word_start = true;
    for c in t.chars() {
        if c.is_whitespace() {
            out.push(c);
            word_start = true;
        } else if word_start {
            out.extend(c.to_uppercase());
            word_start = false;
        } else {
            out.extend(c.to_lowercase());
        }
    }
    s(out)
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

/// The bytes a string stands for in an encoding ('hex', 'utf8', 'ascii', 'base64').
fn decode(t: &str, encoding: &str) -> Option<Vec<u8>> {
    Some(match encoding {
        "hex" => {
            if !t.len().is_multiple_of(2) {
                return None;
            }
            (0..t.len()).step_by(2).map(|i| u8::from_str_radix(t.get(i..i + 2)?, 16).ok()).collect::<Option<Vec<u8>>>()?
        }
        "utf8" => t.as_bytes().to_vec(),
        "ascii" => t.chars().map(|c| if c.is_ascii() { c as u8 } else { b'?' }).collect(),
        "base64" => base64::engine::general_purpose::STANDARD.decode(t).ok()?,
        _ => return None,
    })
}

/// Bytes written as text in an encoding; `hex_upper` picks the case of hex digits.
fn encode(b: &[u8], encoding: &str, hex_upper: bool) -> Option<String> {
    Some(match encoding {
        "hex" if hex_upper => b.iter().map(|x| format!("{x:02X}")).collect(),
        "hex" => b.iter().map(|x| format!("{x:02x}")).collect(),
        "utf8" => String::from_utf8_lossy(b).into_owned(),
        // Java decodes bytes past 127 as U+FFFD in US-ASCII.
        "ascii" => b.iter().map(|&x| if x.is_ascii() { x as char } else { '\u{FFFD}' }).collect(),
        "base64" => base64::engine::general_purpose::STANDARD.encode(b),
        _ => return None,
    })
}

fn to_bytes(a: &[ScalarValue], _: &DataType) -> Option<ScalarValue> {
    Some(ScalarValue::Binary(Some(decode(text(&a[0])?, &encoding(&a[1])?)?)))
}

fn from_bytes(a: &[ScalarValue], _: &DataType) -> Option<ScalarValue> {
    let b = super::bytes::bytes_of(&a[0])?;
    let enc = encoding(&a[1])?;
    // ksqlDB reads non-ASCII bytes as ASCII leniently here, as UTF-8.
    let enc = if enc == "ascii" { "utf8".to_string() } else { enc };
    s(encode(b, &enc, true)?)
}

/// ENCODE(s, from, to): `0x…` and `X'…'` hex is accepted as ksqlDB does.
fn encode_fn(a: &[ScalarValue], _: &DataType) -> Option<ScalarValue> {
    let (t, from, to) = (text(&a[0])?, encoding(&a[1])?, encoding(&a[2])?);
    if from == to || encode(&[], &to, false).is_none() {
        return None;
    }
    let input = if from == "hex" { strip_hex(t) } else { t.to_string() };
    s(encode(&decode(&input, &from)?, &to, false)?)
}

fn strip_hex(t: &str) -> String {
    if let Some(rest) = t.strip_prefix("0x") {
        return if !rest.len().is_multiple_of(2) { format!("0{rest}") } else { rest.to_string() };
    }
    match t.strip_prefix("x'").or_else(|| t.strip_prefix("X'")).and_then(|r| r.strip_suffix('\'')) {
        Some(inner) => inner.to_string(),
        None => t.to_string(),
    }
}

/// INSTR(s, sub[, position[, occurrence]]): 1-based; a negative position searches from the
/// end; 0 when not found or when an argument is null.
fn instr(a: &[ScalarValue], _: &DataType) -> Option<ScalarValue> {
    let zero = Some(ScalarValue::Int32(Some(0)));
    let (Some(hay), Some(needle)) = (text(&a[0]), text(&a[1])) else { return zero };
    let position = match a.get(2) {
        Some(p) => int(p)?,
        None => 1,
    };
    let occurrence = match a.get(3) {
        Some(o) => int(o)?,
        None => 1,
    };
    let hay: Vec<char> = hay.chars().collect();
    let mut needle: Vec<char> = needle.chars().collect();
    let len = hay.len() as i64;
    if position == 0 || position.abs() > len || occurrence < 1 {
        return zero;
    }
    let (chars, start) = if position < 0 {
        needle.reverse();
        (hay.iter().rev().copied().collect::<Vec<_>>(), (-position - 1) as usize)
    } else {
        (hay, (position - 1) as usize)
    };
    let found = (start..=chars.len().saturating_sub(needle.len())).filter(|&i| chars[i..].starts_with(&needle)).nth(occurrence as usize - 1);
    let pos = match found {
        None => 0,
        // Counted back from the end, the match's first character is its last one reversed.
        Some(i) if position < 0 => len - i as i64 - needle.len() as i64 + 1,
        Some(i) => i as i64 + 1,
    };
    Some(ScalarValue::Int32(Some(i32::try_from(pos).ok()?)))
}

/// A Java replacement string (`$1`, `${name}`, `\$`) in the regex crate's syntax.
fn java_replacement(r: &str) -> String {
    let mut out = String::with_capacity(r.len());
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(x) => out.push(x),
                None => {}
            },
            '$' if chars.peek().is_some_and(|d| d.is_ascii_digit()) => {
                out.push_str("${");
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    out.push(d);
                    chars.next();
                }
                out.push('}');
            }
            '$' => out.push('$'),
            c => out.push(c),
        }
    }
    out
}

fn regexp_replace(a: &[ScalarValue], _: &DataType) -> Option<ScalarValue> {
    let re = pattern(text(&a[1])?)?;
    s(re.replace_all(text(&a[0])?, java_replacement(text(&a[2])?).as_str()).into_owned())
}

/// SPLIT_TO_MAP(s, entryDelimiter, kvDelimiter): entries without the key-value delimiter
/// are skipped; a later key wins.
fn split_to_map(a: &[ScalarValue], ret: &DataType) -> Option<ScalarValue> {
    let (input, entry_delim, kv_delim) = (text(&a[0])?, text(&a[1])?, text(&a[2])?);
    if entry_delim.is_empty() || kv_delim.is_empty() {
        return None;
    }
    let entries = input
        .split(entry_delim)
        .filter(|e| !e.is_empty() && e.contains(kv_delim))
        .map(|e| {
            let mut parts = e.split(kv_delim);
            let k = parts.next().unwrap_or_default().to_string();
            let v = parts.next().unwrap_or_default().to_string();
            (ScalarValue::Utf8(Some(k)), ScalarValue::Utf8(Some(v)))
        })
        .collect();
    map(entries, ret)
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

/// LPAD / RPAD of a string: padded with the padding repeated, or cut to the length; null
/// for an empty padding, a negative length, or a length past a million characters.
fn pad(a: &[ScalarValue], left: bool) -> Option<ScalarValue> {
    let (input, n, padding) = (text(&a[0])?, int(&a[1])?, text(&a[2])?);
    if !(0..=super::collections::MAX_GENERATED_LENGTH).contains(&n) || padding.is_empty() {
        return None;
    }
    let n = n as usize;
    let have = input.chars().count();
    if have >= n {
        return s(input.chars().take(n).collect());
    }
    let fill: String = padding.chars().cycle().take(n - have).collect();
    s(if left { fill + input } else { format!("{input}{fill}") })
}

fn pad_type(t: &[SqlType]) -> Result<SqlType, String> {
    if t[0] == SqlType::String && matches!(t[1], SqlType::Int | SqlType::Bigint) && t[2] == SqlType::String {
        Ok(SqlType::String)
    } else {
        Err("expected (STRING, INT, STRING) or (BYTES, INT, BYTES)".into())
    }
}

fn strings_only(t: &[SqlType]) -> Result<SqlType, String> {
    if t.iter().all(|x| *x == SqlType::String) { Ok(SqlType::String) } else { Err("all arguments must be STRING".into()) }
}

pub fn functions() -> Vec<RowFunction> {
    vec![
        RowFunction {
            name: "INITCAP",
            arity: exactly(1),
            description: "Capitalizes the first letter of each word (words are separated by whitespace), the rest lower case.",
            returns: strings_only,
            eval: initcap,
        },
        RowFunction { name: "CHR", arity: exactly(1), description: "The character of a Unicode code point (INT or '\\uXXXX').", returns: chr_type, eval: chr },
        RowFunction {
            name: "ELT",
            arity: at_least(1),
            description: "ELT(n, s1, s2, ...): the n-th string (1-based), null when out of range.",
            returns: |t| {
                if t[0] == SqlType::Int && t[1..].iter().all(|x| *x == SqlType::String) {
                    Ok(SqlType::String)
                } else {
                    Err("ELT takes an INT index and STRING values".into())
                }
            },
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
            name: "ENCODE",
            arity: exactly(3),
            description: "ENCODE(s, input_encoding, output_encoding): re-encodes a string between 'hex', 'utf8', 'ascii' and 'base64'; null for others.",
            returns: strings_only,
            eval: encode_fn,
        },
        RowFunction {
            name: "INSTR",
            arity: between(2, 4),
            description: "INSTR(s, sub[, position[, occurrence]]): 1-based position of the n-th occurrence (a negative position searches \
                backwards from the end); 0 when absent.",
            returns: |t| {
                if t.len() < 2 || t[..2].iter().any(|x| *x != SqlType::String) || t[2..].iter().any(|x| !matches!(x, SqlType::Int | SqlType::Bigint)) {
                    return Err("INSTR takes two STRINGs and optional INT position and occurrence".into());
                }
                Ok(SqlType::Int)
            },
            eval: instr,
        },
        RowFunction {
            name: "LPAD",
            arity: exactly(3),
            description: "LPAD(input, length, padding): pads on the left to the length, or cuts to it (STRING or BYTES).",
            returns: pad_type,
            eval: |a, _| pad(a, true),
        },
        RowFunction {
            name: "RPAD",
            arity: exactly(3),
            description: "RPAD(input, length, padding): pads on the right to the length, or cuts to it (STRING or BYTES).",
            returns: pad_type,
            eval: |a, _| pad(a, false),
        },
        RowFunction {
            name: "REGEXP_REPLACE",
            arity: exactly(3),
            description: "REGEXP_REPLACE(s, pattern, replacement): replaces every match ($1 refers to a group).",
            returns: strings_only,
            eval: regexp_replace,
        },
        RowFunction {
            name: "SPLIT_TO_MAP",
            arity: exactly(3),
            description: "SPLIT_TO_MAP(s, entryDelimiter, kvDelimiter): a MAP<STRING, STRING> of the key-value pairs; a later key wins.",
            returns: |t| strings_only(t).map(|_| SqlType::Map(Box::new(SqlType::String), Box::new(SqlType::String))),
            eval: split_to_map,
        },
        RowFunction {
            name: "REGEXP_EXTRACT",
            arity: between(2, 3),
            description: "REGEXP_EXTRACT(pattern, string[, group]): the first match, or a capture group of it.",
            returns: |t| regexp_type(t, SqlType::String),
            eval: regexp_extract,
        },
        RowFunction {
            name: "REGEXP_EXTRACT_ALL",
            arity: between(2, 3),
            description: "REGEXP_EXTRACT_ALL(pattern, string[, group]): every match, or a capture group of each.",
            returns: |t| regexp_type(t, SqlType::Array(Box::new(SqlType::String))),
            eval: regexp_extract_all,
        },
        RowFunction {
            name: "REGEXP_SPLIT_TO_ARRAY",
            arity: exactly(2),
            description: "REGEXP_SPLIT_TO_ARRAY(string, pattern): the parts between matches.",
            returns: |t| strings_only(t).map(|_| SqlType::Array(Box::new(SqlType::String))),
            eval: regexp_split,
        },
    ]
}
