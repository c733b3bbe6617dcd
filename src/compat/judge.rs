//! Compares what a case's queries wrote with what ksqlDB's runner expects
//! (`ExpectedRecordComparator`): per output topic the same number of records, in order,
//! with equal keys (and window start and end), values equal as `same` judges them,
//! equal headers where the case lists them and equal timestamps where it gives them;
//! then the `post` conditions on the catalog.

use base64::Engine as _;
use serde_json::Value;

use super::Case;
use super::codec::{RecordHeaders, decode_key, decode_value};
use super::exact::Exact;
use crate::catalog::DataSource;
use crate::catalog::types::{Column, SqlType};
use crate::engine::Engine;
use crate::log::Log;
use crate::log::batch::{self, RecordIter};

/// One record read back from a topic.
struct Actual {
    key: Exact,
    window: Option<(i64, Option<i64>)>,
    value: Exact,
    timestamp: i64,
    headers: RecordHeaders,
}

fn read_topic(log: &Log, topic: &str, source: Option<&DataSource>) -> Result<Vec<Actual>, String> {
    let Some(t) = log.get_topic(topic) else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for p in t.partitions() {
        let mut offset = p.start_offset();
        loop {
            let data = p.read_committed(offset, 1 << 20).map_err(|e| e.to_string())?;
            if data.is_empty() {
                break;
            }
            let before = offset;
            for b in batch::split_batches(&data) {
                let (h, payload) = batch::payload(b).map_err(|e| e.to_string())?;
                offset = offset.max(h.last_offset() + 1);
                if h.is_control() {
                    continue;
                }
                for r in RecordIter::over(h, &payload) {
                    let r = r.map_err(|e| e.to_string())?;
                    if r.offset < before {
                        continue;
                    }
                    let (key, window) = decode_key(source, r.key);
                    let headers = r.headers.iter().map(|h| (String::from_utf8_lossy(h.key).to_string(), h.value.map(<[u8]>::to_vec))).collect();
                    out.push(Actual { key, window, value: decode_value(source, r.value), timestamp: r.timestamp, headers });
                }
            }
            if offset == before {
                break;
            }
        }
    }
    Ok(out)
}

/// How numbers compare: ksqlDB's runner compares decimals with their scale
/// (`BigDecimal.equals`) unless a case turns that off.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub exact_decimals: bool,
}

impl Rules {
    fn of(case: &Case) -> Rules {
        let off = case.properties.iter().any(|(k, v)| {
            k.ends_with("use.exact.numeric.comparison") && (v.as_bool() == Some(false) || v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("false")))
        });
        Rules { exact_decimals: !off }
    }
}

/// An object's field by name: the exact name, then the name upper-cased, and nothing else.
fn field<'a>(fields: &'a [(String, Exact)], name: &str) -> Option<(&'a str, &'a Exact)> {
    let upper = name.to_uppercase();
    fields.iter().find(|(k, _)| k == name).or_else(|| fields.iter().find(|(k, _)| *k == upper)).map(|(k, v)| (k.as_str(), v))
}

/// The type of a struct field or map value written under `name`.
fn member_type<'a>(ty: Option<&'a SqlType>, name: &str) -> Option<&'a SqlType> {
    match ty? {
        SqlType::Struct(fields) => fields.iter().find(|(n, _)| n == name).map(|(_, t)| t),
        SqlType::Map(_, value) => Some(value),
        _ => None,
    }
}

/// Structural equality as ksqlDB's runner judges it, directed by the written value's SQL
/// type where it is known: object fields by name (see `field`) with the same field counts;
/// integers exactly; doubles within 1e-6; decimals (also when written as text) equal
/// with their scale, the written value taking its column's scale.
pub fn same(expected: &Exact, actual: &Exact, ty: Option<&SqlType>, rules: Rules) -> bool {
    match (expected, actual) {
        (Exact::Object(e), Exact::Object(a)) => {
            e.len() == a.len()
                && e.iter().all(|(k, v)| match field(a, k) {
                    Some((name, av)) => same(v, av, member_type(ty, name), rules),
                    None => false,
                })
        }
        (Exact::Array(e), Exact::Array(a)) => {
            let item = match ty {
                Some(SqlType::Array(t)) => Some(&**t),
                _ => None,
            };
            e.len() == a.len() && e.iter().zip(a).all(|(x, y)| same(x, y, item, rules))
        }
        (Exact::Number(e) | Exact::String(e), Exact::Number(a) | Exact::String(a)) if matches!(ty, Some(SqlType::Decimal { .. })) => {
            let scale = match ty {
                Some(SqlType::Decimal { scale, .. }) => i64::from(*scale),
                _ => 0,
            };
            match (Decimal::parse(e), Decimal::parse(a)) {
                (Some(e), Some(a)) if rules.exact_decimals => e == a.with_scale(scale),
                (Some(e), Some(a)) => e.normalized() == a.normalized(),
                _ => false,
            }
        }
        (Exact::Number(e), Exact::Number(a)) => same_number(e, a, ty),
        // ksqlDB's JSON reader takes a number written for a STRING column as its text.
        (Exact::String(e), Exact::Number(a)) if matches!(ty, Some(SqlType::String)) => e == a,
        _ => expected == actual,
    }
}

fn is_integer_text(n: &str) -> bool {
    !n.contains(['.', 'e', 'E'])
}

/// Numbers other than decimals: integers digit for digit (a long past 2^53 too), doubles
/// within 1e-6.
fn same_number(e: &str, a: &str, ty: Option<&SqlType>) -> bool {
    let as_double = matches!(ty, Some(SqlType::Double)) || !(is_integer_text(e) && is_integer_text(a));
    if !as_double {
        return matches!((e.parse::<i128>(), a.parse::<i128>()), (Ok(x), Ok(y)) if x == y);
    }
    match (e.parse::<f64>(), a.parse::<f64>()) {
        (Ok(x), Ok(y)) => x == y || (x - y).abs() <= 1e-6,
        _ => false,
    }
}

/// A decimal as Java's `BigDecimal` holds it: sign, digits (no leading zeros; none for
/// zero) and scale.
#[derive(Debug, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    digits: String,
    scale: i64,
}

impl Decimal {
    fn parse(text: &str) -> Option<Decimal> {
        let text = text.trim();
        let (negative, rest) = match text.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (mantissa, exponent) = match rest.split_once(['e', 'E']) {
            Some((m, e)) => (m, e.parse::<i64>().ok()?),
            None => (rest, 0),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if whole.is_empty() && fraction.is_empty() || !whole.chars().chain(fraction.chars()).all(|c| c.is_ascii_digit()) {
            return None;
        }
        let digits = format!("{whole}{fraction}").trim_start_matches('0').to_string();
        let scale = fraction.len() as i64 - exponent;
        Some(Decimal { negative: negative && !digits.is_empty(), digits, scale })
    }

    /// The same value at `scale` when that loses no digits (a DECIMAL column's values
    /// carry its scale), or else unchanged.
    fn with_scale(self, scale: i64) -> Decimal {
        if scale >= self.scale {
            let zeros = (scale - self.scale) as usize;
            let digits = if self.digits.is_empty() { String::new() } else { format!("{}{}", self.digits, "0".repeat(zeros)) };
            return Decimal { digits, scale, ..self };
        }
        let drop = (self.scale - scale) as usize;
        if self.digits.len() >= drop && self.digits[self.digits.len() - drop..].bytes().all(|c| c == b'0') {
            let digits = self.digits[..self.digits.len() - drop].to_string();
            return Decimal { digits, scale, ..self };
        }
        self
    }

    /// The value with trailing zeros dropped (`compareTo` rather than `equals`).
    fn normalized(self) -> Decimal {
        if self.digits.is_empty() {
            return Decimal { negative: false, digits: String::new(), scale: 0 };
        }
        let trimmed = self.digits.trim_end_matches('0');
        let scale = self.scale - (self.digits.len() - trimmed.len()) as i64;
        Decimal { digits: trimmed.to_string(), scale, ..self }
    }
}

/// The SQL types a record's key or value can be read as: all columns as a struct, and,
/// when there is one column, that column's type alone (an unwrapped single value).
fn shapes<'a>(columns: impl Iterator<Item = &'a Column>) -> Vec<SqlType> {
    let columns: Vec<&Column> = columns.collect();
    let mut out = Vec::new();
    if !columns.is_empty() {
        out.push(SqlType::Struct(columns.iter().map(|c| (c.name.clone(), c.ty.clone())).collect()));
    }
    if let [one] = columns.as_slice() {
        out.push(one.ty.clone());
    }
    out
}

/// `same` under any of `shapes` (or untyped when the topic has no source).
fn same_shaped(expected: &Exact, actual: &Exact, shapes: &[SqlType], rules: Rules) -> bool {
    if shapes.is_empty() {
        return same(expected, actual, None, rules);
    }
    shapes.iter().any(|t| same(expected, actual, Some(t), rules))
}

/// Expected headers (`[{KEY, VALUE(base64)}]`) against the written ones, in order.
fn same_headers(expected: &Exact, actual: &[(String, Option<Vec<u8>>)]) -> bool {
    let Exact::Array(list) = expected else { return false };
    list.len() == actual.len()
        && list.iter().zip(actual).all(|(e, (key, value))| {
            let want_value = match e.get("VALUE").or_else(|| e.get("value")) {
                None | Some(Exact::Null) => None,
                Some(Exact::String(b64)) => match base64::engine::general_purpose::STANDARD.decode(b64) {
                    Ok(bytes) => Some(bytes),
                    Err(_) => return false,
                },
                Some(_) => return false,
            };
            e.get("KEY").or_else(|| e.get("key")).and_then(Exact::as_str) == Some(key.as_str()) && want_value == *value
        })
}

fn normalize_schema(s: &str) -> String {
    // A table's key is its PRIMARY KEY; the kind is checked separately.
    s.replace('`', "")
        .replace("PRIMARY KEY", "KEY")
        .split(',')
        .map(|c| {
            // Type names are compared by meaning, nested ones too (`ARRAY<INTEGER>`).
            let mut out = String::new();
            let mut word = String::new();
            let flush = |word: &mut String, out: &mut String| {
                out.push_str(match word.to_uppercase().as_str() {
                    "INTEGER" => "INT",
                    "VARCHAR" => "STRING",
                    _ => word.as_str(),
                });
                word.clear();
            };
            for ch in c.chars() {
                if ch.is_alphanumeric() || ch == '_' {
                    word.push(ch);
                } else {
                    flush(&mut word, &mut out);
                    out.push(ch);
                }
            }
            flush(&mut word, &mut out);
            out.split_whitespace().collect::<Vec<_>>().join(" ")
        })
        .collect::<Vec<_>>()
        .join(", ")
        .replace("( ", "(")
        .replace(" )", ")")
        .replace("< ", "<")
        .replace(" >", ">")
}

pub fn judge(case: &Case, engine: &Engine, log: &Log) -> Result<(), String> {
    let sources = engine.catalog().sources();
    // Expected records per topic, in file order.
    let mut topics: Vec<(String, Vec<&Exact>)> = Vec::new();
    for o in &case.outputs {
        let topic = o.get("topic").and_then(Exact::as_str).unwrap_or_default().to_string();
        match topics.iter_mut().find(|(t, _)| *t == topic) {
            Some((_, list)) => list.push(o),
            None => topics.push((topic, vec![o])),
        }
    }
    let rules = Rules::of(case);
    for (topic, expected) in &topics {
        let source = sources.iter().find(|s| &s.topic == topic).map(|s| s.as_ref());
        let actual = read_topic(log, topic, source)?;
        if actual.len() != expected.len() {
            let got: Vec<String> = actual.iter().take(6).map(|a| format!("{}: {}", a.key, a.value)).collect();
            return Err(format!("topic {topic}: {} records written, {} expected (first written: {})", actual.len(), expected.len(), got.join("; ")));
        }
        let key_shapes = source.map(|s| shapes(s.schema.key_columns())).unwrap_or_default();
        let value_shapes = source.map(|s| shapes(s.schema.value_columns())).unwrap_or_default();
        for (i, (e, a)) in expected.iter().zip(&actual).enumerate() {
            let want_key = e.get("key").unwrap_or(&Exact::Null);
            if !same_shaped(want_key, &a.key, &key_shapes, rules) {
                return Err(format!("topic {topic} record {i}: key {want_key} expected, {} written", a.key));
            }
            let want_value = e.get("value").unwrap_or(&Exact::Null);
            if !same_shaped(want_value, &a.value, &value_shapes, rules) {
                return Err(format!("topic {topic} record {i} (key {}): value {want_value} expected, {} written", a.key, a.value));
            }
            if let Some(ts) = e.get("timestamp").and_then(Exact::as_i64)
                && ts != a.timestamp
            {
                return Err(format!("topic {topic} record {i} (key {}): timestamp {ts} expected, {} written", a.key, a.timestamp));
            }
            if let Some(w) = e.get("window") {
                let start = w.get("start").and_then(Exact::as_i64);
                let got_start = a.window.map(|w| w.0);
                // A time window's end is its start plus the size; a session's is written.
                let got_end = a.window.and_then(|(s, end)| end.or_else(|| source.and_then(|src| src.window_size_ms).map(|size| s + size)));
                let end = w.get("end").and_then(Exact::as_i64);
                if start != got_start || (end.is_some() && end != got_end) {
                    return Err(format!("topic {topic} record {i} (key {}): window {start:?}..{end:?} expected, {got_start:?}..{got_end:?} written", a.key));
                }
            }
            if let Some(headers) = e.get("headers")
                && !same_headers(headers, &a.headers)
            {
                let got: Vec<String> = a.headers.iter().map(|(k, v)| format!("{k}={:?}", v.as_deref().map(String::from_utf8_lossy))).collect();
                return Err(format!("topic {topic} record {i} (key {}): headers {headers} expected, [{}] written", a.key, got.join(", ")));
            }
        }
    }
    if let Some(post) = &case.post {
        for s in post.get("sources").and_then(Value::as_array).cloned().unwrap_or_default() {
            let name = s.get("name").and_then(Value::as_str).unwrap_or_default();
            let Some(src) = engine.catalog().source(name).or_else(|| engine.catalog().source(&name.to_uppercase())) else {
                return Err(format!("post: source {name} does not exist"));
            };
            if let Some(kind) = s.get("type").and_then(Value::as_str)
                && !kind.eq_ignore_ascii_case(src.kind.name())
            {
                return Err(format!("post: {name} is a {}, expected a {kind}", src.kind.name()));
            }
            for (side, spec) in [("keyFormat", &src.key_format), ("valueFormat", &src.value_format)] {
                if let Some(want) = s.get(side).and_then(|f| f.get("format")).and_then(Value::as_str)
                    && !want.eq_ignore_ascii_case(spec.kind.name())
                {
                    return Err(format!("post: {name} has {side} {}, expected {want}", spec.kind.name()));
                }
            }
            if let Some(schema) = s.get("schema").and_then(Value::as_str) {
                let (want, got) = (normalize_schema(schema), normalize_schema(&src.schema.describe(true)));
                if want != got {
                    return Err(format!("post: schema of {name} is {got}, expected {want}"));
                }
            }
        }
        for t in post.get("topics").and_then(|t| t.get("topics")).and_then(Value::as_array).cloned().unwrap_or_default() {
            if let Some(name) = t.get("name").and_then(Value::as_str) {
                // ksqlDB's own internal topics (repartition, changelog) are named differently here.
                if name.starts_with("_confluent-ksql-") {
                    continue;
                }
                if log.get_topic(name).is_none() {
                    return Err(format!("post: topic {name} does not exist"));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(text: &str) -> Exact {
        Exact::parse(text).unwrap()
    }

    const EXACT: Rules = Rules { exact_decimals: true };

    #[test]
    fn field_names_match_exactly_or_upper_cased_and_nothing_else() {
        assert!(same(&ex(r#"{"a": 1, "B": 2}"#), &ex(r#"{"A": 1, "B": 2}"#), None, EXACT));
        assert!(!same(&ex(r#"{"A": 1}"#), &ex(r#"{"a": 1}"#), None, EXACT));
        assert!(!same(&ex(r#"{"aB": 1}"#), &ex(r#"{"Ab": 1}"#), None, EXACT));
        assert!(!same(&ex(r#"{"A": 1}"#), &ex(r#"{"A": 1, "B": 2}"#), None, EXACT));
        assert!(!same(&ex(r#"{"A": "x"}"#), &ex(r#"{"A": "y"}"#), None, EXACT));
    }

    #[test]
    fn integers_compare_exactly_and_doubles_within_an_absolute_band() {
        assert!(!same(&ex("9007199254740993"), &ex("9007199254740992"), Some(&SqlType::Bigint), EXACT));
        assert!(!same(&ex("9007199254740993"), &ex("9007199254740992"), None, EXACT));
        assert!(same(&ex("9007199254740993"), &ex("9007199254740993"), None, EXACT));
        assert!(same(&ex("2.0000001"), &ex("2.0"), Some(&SqlType::Double), EXACT));
        assert!(same(&ex("1"), &ex("1.0"), Some(&SqlType::Double), EXACT));
        // The band is absolute: large doubles get no wider one.
        assert!(!same(&ex("1.0e12"), &ex("1.0000001e12"), Some(&SqlType::Double), EXACT));
        assert!(!same(&ex("1.5"), &ex("1.6"), None, EXACT));
        // A number written for a STRING column reads as its text, as ksqlDB's reader does.
        assert!(same(&ex(r#""10""#), &ex("10"), Some(&SqlType::String), EXACT));
        assert!(!same(&ex(r#""10""#), &ex("10"), Some(&SqlType::Int), EXACT));
    }

    #[test]
    fn decimals_are_equal_with_their_scale_written_as_numbers_or_text() {
        let dec = SqlType::Decimal { precision: 4, scale: 2 };
        assert!(same(&ex("1.10"), &ex("1.10"), Some(&dec), EXACT));
        // The written value takes its column's scale, as ksqlDB's deserializer gives it.
        assert!(same(&ex("1.10"), &ex("1.1"), Some(&dec), EXACT));
        assert!(!same(&ex("1.1"), &ex("1.10"), Some(&dec), EXACT));
        assert!(!same(&ex("1.100"), &ex("1.10"), Some(&dec), EXACT));
        assert!(same(&ex(r#""1.10""#), &ex("1.10"), Some(&dec), EXACT));
        assert!(!same(&ex(r#""1.1""#), &ex("1.10"), Some(&dec), EXACT));
        assert!(!same(&ex("1.11"), &ex("1.1100001"), Some(&dec), EXACT));
        assert!(same(&ex("-0.00"), &ex("0"), Some(&dec), EXACT));
        // By value only when a case asks for it.
        assert!(same(&ex("1.1"), &ex("1.10"), Some(&dec), Rules { exact_decimals: false }));
        let nested = SqlType::Struct(vec![("D".into(), dec.clone())]);
        assert!(!same(&ex(r#"{"D": 1.1}"#), &ex(r#"{"D": 1.10}"#), Some(&nested), EXACT));
        let listed = SqlType::Array(Box::new(dec));
        assert!(same(&ex(r#"[1.10, "2.00"]"#), &ex("[1.1, 2]"), Some(&listed), EXACT));
    }

    #[test]
    fn headers_compare_by_key_and_base64_value_in_order() {
        let written = vec![("h".to_string(), Some(b"abc".to_vec())), ("n".to_string(), None)];
        assert!(same_headers(&ex(r#"[{"KEY": "h", "VALUE": "YWJj"}, {"KEY": "n", "VALUE": null}]"#), &written));
        assert!(!same_headers(&ex(r#"[{"KEY": "h", "VALUE": "YWJk"}, {"KEY": "n", "VALUE": null}]"#), &written));
        assert!(!same_headers(&ex(r#"[{"KEY": "h", "VALUE": "YWJj"}]"#), &written));
    }

    #[test]
    fn schemas_compare_without_quotes_and_type_aliases() {
        assert_eq!(normalize_schema("`T_ID` BIGINT KEY, `NAME` VARCHAR"), normalize_schema("T_ID BIGINT KEY, NAME STRING"));
        assert_eq!(normalize_schema("L0 ARRAY<INTEGER> KEY, S STRUCT<A VARCHAR>"), normalize_schema("L0 ARRAY<INT> KEY, S STRUCT<A STRING>"));
    }
}
