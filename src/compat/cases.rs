//! Loads ksqlDB's functional test files (QTT): comment-tolerant JSON, each test expanded
//! over its `format` and `config` lists into named cases.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::exact::Exact;

/// One expanded case.
#[derive(Debug, Clone)]
pub struct Case {
    /// `<suite directory>/<file name>`: what per-file counts are grouped by.
    pub file: String,
    /// `<file> - <name>[ - <FORMAT>][ - <property>=<value>]`.
    pub name: String,
    pub statements: Vec<String>,
    pub properties: Map<String, Value>,
    pub inputs: Vec<Value>,
    /// Read with numbers as written: decimals are compared with their scale.
    pub outputs: Vec<Exact>,
    pub topics: Vec<Value>,
    pub expected_error: Option<Value>,
    pub post: Option<Value>,
    /// RQTT: the REST responses expected, one per statement (`admin` or `query`).
    pub responses: Option<Vec<Value>>,
    /// RQTT: query rows must come in the expected order (`outputConditions.verifyOrder`);
    /// otherwise they are compared as a multiset.
    pub verify_order: bool,
    /// Why the case cannot run here (schema-registry formats), if so.
    pub unsupported: Option<String>,
}

/// Removes `//` and `/* */` comments outside strings. Text is copied in runs between
/// comments, so non-ASCII characters stay as they were (every marker looked for is ASCII,
/// and no byte of a multi-byte UTF-8 character is ASCII).
pub fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let (mut i, mut run, mut in_str) = (0, 0, false);
    while i < b.len() {
        let c = b[i];
        if in_str {
            match c {
                b'\\' => i += 2,
                b'"' => {
                    in_str = false;
                    i += 1;
                }
                _ => i += 1,
            }
            continue;
        }
        match (c, b.get(i + 1)) {
            (b'"', _) => {
                in_str = true;
                i += 1;
            }
            (b'/', Some(b'/')) => {
                out.push_str(&text[run..i]);
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                run = i;
            }
            (b'/', Some(b'*')) => {
                out.push_str(&text[run..i]);
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i = (i + 2).min(b.len());
                run = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&text[run.min(b.len())..]);
    out
}

/// Formats of ksqlDB's that Eddy does not have: a case using one is unsupported. (Every
/// format is built now; the check stays for the next one ksqlDB adds.)
const MISSING_FORMATS: [&str; 0] = [];

/// The formats a statement's `WITH` clause names (`FORMAT`, `KEY_FORMAT`, `VALUE_FORMAT`),
/// upper-cased, in order.
fn formats_named_in(statement: &str) -> Vec<String> {
    let upper = statement.to_uppercase();
    let b = upper.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = upper[from..].find("FORMAT").map(|i| i + from) {
        from = at + "FORMAT".len();
        // A property name: `FORMAT`, `KEY_FORMAT` or `VALUE_FORMAT`, not part of a longer word.
        let name_start = ["KEY_", "VALUE_"].iter().find(|p| upper[..at].ends_with(*p)).map_or(at, |p| at - p.len());
        let word_char = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        if name_start > 0 && word_char(b[name_start - 1]) || b.get(from).is_some_and(|&c| word_char(c)) {
            continue;
        }
        let rest = upper[from..].trim_start();
        let Some(rest) = rest.strip_prefix('=') else { continue };
        let rest = rest.trim_start();
        let Some(quote) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') else { continue };
        if let Some(end) = rest[1..].find(quote) {
            out.push(rest[1..1 + end].trim().to_string());
        }
    }
    out
}

/// Why a case needs a schema registry: a source, sink or input topic of it uses a format
/// that does (named in a statement's `WITH` clause, or as a topic's format in the case).
fn registry_format_in(statements: &[String], topics: &[Value]) -> Option<String> {
    missing_format_in(statements, topics, &MISSING_FORMATS)
}

/// The first of `missing` that a statement or topic of the case uses.
fn missing_format_in(statements: &[String], topics: &[Value], missing: &[&str]) -> Option<String> {
    let in_statements = statements.iter().flat_map(|s| formats_named_in(s));
    let in_topics =
        topics.iter().flat_map(|t| ["format", "keyFormat", "valueFormat"].map(|k| t.get(k).and_then(Value::as_str).map(str::to_uppercase))).flatten();
    in_statements.chain(in_topics).find(|f| missing.contains(&f.as_str())).map(|f| format!("needs the {f} format, which Eddy does not have"))
}

/// Every `.json` file under `path` (or `path` itself).
pub fn files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(path) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files(&p));
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The cases of one file, or why the file cannot be read.
pub fn load(path: &Path) -> Result<Vec<Case>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = strip_comments(&text);
    let doc: Value = serde_json::from_str(&text).map_err(|e| format!("{} is not valid JSON (after removing comments): {e}", path.display()))?;
    let exact = Exact::parse(&text).ok_or_else(|| format!("{} cannot be read with its numbers as written", path.display()))?;
    let exact_tests = match exact.get("tests") {
        Some(Exact::Array(tests)) => tests.as_slice(),
        _ => &[],
    };
    let file = path.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default();
    // Counted per suite and file: QTT and RQTT both have an insert-values.json.
    let grouped = match path.parent().and_then(|d| d.file_name()) {
        Some(dir) => format!("{}/{file}", dir.to_string_lossy()),
        None => file.clone(),
    };
    let tests = doc.get("tests").and_then(Value::as_array).ok_or_else(|| format!("{} has no \"tests\" array", path.display()))?;
    let mut cases = Vec::new();
    for (n, t) in tests.iter().enumerate() {
        let outputs = match exact_tests.get(n).and_then(|t| t.get("outputs")) {
            Some(Exact::Array(o)) => o.clone(),
            _ => Vec::new(),
        };
        let name = t.get("name").and_then(Value::as_str).unwrap_or("(unnamed)");
        let statements: Vec<String> =
            t.get("statements").and_then(Value::as_array).map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect()).unwrap_or_default();
        let formats: Vec<Option<String>> = match t.get("format").and_then(Value::as_array) {
            Some(f) if !f.is_empty() => f.iter().map(|x| x.as_str().map(str::to_string)).collect(),
            _ => vec![None],
        };
        let properties = t.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
        let config_key = properties.iter().find(|(_, v)| v.as_str() == Some("{CONFIG}")).map(|(k, _)| k.clone());
        let configs: Vec<Option<Value>> = match (&config_key, t.get("config").and_then(Value::as_array)) {
            (Some(_), Some(c)) if !c.is_empty() => c.iter().cloned().map(Some).collect(),
            _ => vec![None],
        };
        let list = |k: &str| t.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
        for format in &formats {
            for config in &configs {
                let mut full = format!("{file} - {name}");
                let stmts: Vec<String> = match format {
                    Some(f) => {
                        full.push_str(&format!(" - {f}"));
                        statements.iter().map(|s| s.replace("{FORMAT}", f)).collect()
                    }
                    None => statements.clone(),
                };
                let mut props = properties.clone();
                if let (Some(k), Some(v)) = (&config_key, config) {
                    let text = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
                    full.push_str(&format!(" - {k}={text}"));
                    props.insert(k.clone(), v.clone());
                }
                let unsupported = match format {
                    Some(f) if MISSING_FORMATS.contains(&f.to_uppercase().as_str()) => Some(format!("needs the {f} format, which Eddy does not have")),
                    _ => registry_format_in(&stmts, &list("topics")),
                };
                cases.push(Case {
                    file: grouped.clone(),
                    name: full,
                    statements: stmts,
                    properties: props,
                    inputs: list("inputs"),
                    outputs: outputs.clone(),
                    topics: list("topics"),
                    expected_error: t.get("expectedException").or_else(|| t.get("expectedError")).cloned(),
                    // RQTT cases list responses or name their error `expectedError`.
                    responses: t.get("responses").and_then(Value::as_array).cloned().or_else(|| t.get("expectedError").map(|_| Vec::new())),
                    post: t.get("post").cloned(),
                    verify_order: t.pointer("/outputConditions/verifyOrder").and_then(Value::as_bool).unwrap_or(false),
                    unsupported,
                });
            }
        }
    }
    Ok(cases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_outside_strings_are_removed() {
        let t = "{\"a\": \"x // not a comment\", // a comment\n \"b\": /* block */ 1}";
        let v: Value = serde_json::from_str(&strip_comments(t)).unwrap();
        assert_eq!(v, serde_json::json!({"a": "x // not a comment", "b": 1}));
    }

    #[test]
    fn non_ascii_text_is_read_as_utf8() {
        let t = "{\"a\": \"caf\u{e9} \u{1F600} \\\" \u{4e2d}\", /* \u{e9} */ \"b\": \"\u{e9}\"} // \u{e9}";
        let v: Value = serde_json::from_str(&strip_comments(t)).unwrap();
        assert_eq!(v, serde_json::json!({"a": "caf\u{e9} \u{1F600} \" \u{4e2d}", "b": "\u{e9}"}));
    }

    #[test]
    fn only_a_format_a_source_sink_or_topic_uses_makes_a_case_unsupported() {
        let missing = ["PROTOBUF", "PROTOBUF_NOSR"];
        let needs = |s: &str| missing_format_in(&[s.to_string()], &[], &missing);
        assert!(needs("CREATE STREAM s (a INT) WITH (kafka_topic='t', value_format = 'protobuf_nosr');").is_some());
        assert!(needs("CREATE STREAM s (a INT) WITH (kafka_topic='t', value_format = 'json_sr');").is_none());
        assert!(needs("CREATE STREAM s (a INT) WITH (kafka_topic='t', value_format = 'avro');").is_none());
        assert!(needs("CREATE STREAM s WITH (KEY_FORMAT=\"PROTOBUF\") AS SELECT * FROM t;").is_some());
        assert!(needs("CREATE STREAM s (a INT) WITH (FORMAT='PROTOBUF');").is_some());
        assert!(needs("INSERT INTO s (a) VALUES ('AVRO');").is_none());
        assert!(needs("CREATE STREAM s (a INT) WITH (value_format='JSON', kafka_topic='AVRO');").is_none());
        assert!(needs("CREATE STREAM s (my_format STRING) WITH (value_format='DELIMITED');").is_none());
        let topic = serde_json::json!({"name": "t", "valueFormat": "PROTOBUF"});
        assert!(missing_format_in(&[], std::slice::from_ref(&topic), &missing).is_some());
        assert!(registry_format_in(&[], &[topic]).is_none(), "every format is built");
    }

    #[test]
    fn formats_and_configs_expand_into_named_cases() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        std::fs::write(
            &p,
            r#"{"tests": [{"name": "t", "format": ["JSON", "PROTOBUF"], "properties": {"p": "{CONFIG}"}, "config": [true, false],
                "statements": ["CREATE STREAM s (a INT) WITH (value_format='{FORMAT}');"]}]}"#,
        )
        .unwrap();
        let cases = load(&p).unwrap();
        let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            vec!["x.json - t - JSON - p=true", "x.json - t - JSON - p=false", "x.json - t - PROTOBUF - p=true", "x.json - t - PROTOBUF - p=false"]
        );
        assert!(cases[0].statements[0].contains("'JSON'"));
        assert!(cases[0].unsupported.is_none());
        assert!(cases[2].unsupported.is_none(), "PROTOBUF is built");
        assert_eq!(cases[1].properties["p"], serde_json::json!(false));
    }
}
