//! Compares what a case's queries wrote with what ksqlDB's runner expects: per output
//! topic the same number of records, in order, with equal keys (and window bounds),
//! structurally equal values and, where given, equal timestamps; then the `post`
//! conditions on the catalog.

use serde_json::Value;

use super::Case;
use super::codec::{decode_key, decode_value};
use crate::catalog::DataSource;
use crate::engine::Engine;
use crate::log::Log;
use crate::log::batch::{self, RecordIter};

/// One record read back from a topic.
struct Actual {
    key: Value,
    window: Option<(i64, Option<i64>)>,
    value: Value,
    timestamp: i64,
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
                    out.push(Actual { key, window, value: decode_value(source, r.value), timestamp: r.timestamp });
                }
            }
            if offset == before {
                break;
            }
        }
    }
    Ok(out)
}

/// Structural equality as ksqlDB's runner judges it: object fields by name (falling back
/// to upper case), numbers within 1e-6, the same field counts.
pub fn same(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            e.len() == a.len()
                && e.iter().all(|(k, v)| {
                    match a.get(k).or_else(|| a.get(&k.to_uppercase())).or_else(|| a.iter().find(|(ak, _)| ak.eq_ignore_ascii_case(k)).map(|(_, v)| v)) {
                        Some(av) => same(v, av),
                        None => false,
                    }
                })
        }
        (Value::Array(e), Value::Array(a)) => e.len() == a.len() && e.iter().zip(a).all(|(x, y)| same(x, y)),
        (Value::Number(e), Value::Number(a)) => match (e.as_f64(), a.as_f64()) {
            (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-6 * x.abs().max(1.0),
            _ => e == a,
        },
        // Decimals and numbers written as text.
        (Value::Number(e), Value::String(a)) | (Value::String(a), Value::Number(e)) => {
            a.parse::<f64>().ok().zip(e.as_f64()).is_some_and(|(x, y)| (x - y).abs() <= 1e-6 * y.abs().max(1.0))
        }
        _ => expected == actual,
    }
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
    let mut topics: Vec<(String, Vec<&Value>)> = Vec::new();
    for o in &case.outputs {
        let topic = o.get("topic").and_then(Value::as_str).unwrap_or_default().to_string();
        match topics.iter_mut().find(|(t, _)| *t == topic) {
            Some((_, list)) => list.push(o),
            None => topics.push((topic, vec![o])),
        }
    }
    for (topic, expected) in &topics {
        let source = sources.iter().find(|s| &s.topic == topic).map(|s| s.as_ref());
        let actual = read_topic(log, topic, source)?;
        if actual.len() != expected.len() {
            let got: Vec<String> = actual.iter().take(6).map(|a| format!("{}: {}", a.key, a.value)).collect();
            return Err(format!("topic {topic}: {} records written, {} expected (first written: {})", actual.len(), expected.len(), got.join("; ")));
        }
        for (i, (e, a)) in expected.iter().zip(&actual).enumerate() {
            let want_key = e.get("key").unwrap_or(&Value::Null);
            if !same(want_key, &a.key) {
                return Err(format!("topic {topic} record {i}: key {} expected, {} written", want_key, a.key));
            }
            let want_value = e.get("value").unwrap_or(&Value::Null);
            if !same(want_value, &a.value) {
                return Err(format!("topic {topic} record {i} (key {}): value {} expected, {} written", a.key, want_value, a.value));
            }
            if let Some(ts) = e.get("timestamp").and_then(Value::as_i64) {
                if ts != a.timestamp {
                    return Err(format!("topic {topic} record {i} (key {}): timestamp {ts} expected, {} written", a.key, a.timestamp));
                }
            }
            if let Some(w) = e.get("window") {
                let start = w.get("start").and_then(Value::as_i64);
                let got = a.window.map(|w| w.0);
                if start != got {
                    return Err(format!("topic {topic} record {i} (key {}): window start {start:?} expected, {got:?} written", a.key));
                }
            }
        }
    }
    if let Some(post) = &case.post {
        for s in post.get("sources").and_then(Value::as_array).cloned().unwrap_or_default() {
            let name = s.get("name").and_then(Value::as_str).unwrap_or_default();
            let Some(src) = engine.catalog().source(name).or_else(|| engine.catalog().source(&name.to_uppercase())) else {
                return Err(format!("post: source {name} does not exist"));
            };
            if let Some(kind) = s.get("type").and_then(Value::as_str) {
                if !kind.eq_ignore_ascii_case(src.kind.name()) {
                    return Err(format!("post: {name} is a {}, expected a {kind}", src.kind.name()));
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
    use serde_json::json;

    #[test]
    fn values_compare_by_field_name_with_upper_case_fallback_and_numeric_tolerance() {
        assert!(same(&json!({"a": 1, "B": 2.0000001}), &json!({"A": 1, "B": 2.0})));
        assert!(!same(&json!({"A": 1}), &json!({"A": 1, "B": 2})));
        assert!(!same(&json!({"A": "x"}), &json!({"A": "y"})));
        assert!(same(&json!([1, 2]), &json!([1, 2])));
    }

    #[test]
    fn schemas_compare_without_quotes_and_type_aliases() {
        assert_eq!(normalize_schema("`T_ID` BIGINT KEY, `NAME` VARCHAR"), normalize_schema("T_ID BIGINT KEY, NAME STRING"));
        assert_eq!(normalize_schema("L0 ARRAY<INTEGER> KEY, S STRUCT<A VARCHAR>"), normalize_schema("L0 ARRAY<INT> KEY, S STRUCT<A STRING>"));
    }
}
