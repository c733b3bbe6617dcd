//! Loads ksqlDB's functional test files (QTT): comment-tolerant JSON, each test expanded
//! over its `format` and `config` lists into named cases.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

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
    pub outputs: Vec<Value>,
    pub topics: Vec<Value>,
    pub expected_error: Option<Value>,
    pub post: Option<Value>,
    /// RQTT: the REST responses expected, one per statement (`admin` or `query`).
    pub responses: Option<Vec<Value>>,
    /// Why the case cannot run here (schema-registry formats), if so.
    pub unsupported: Option<String>,
}

/// Removes `//` and `/* */` comments outside strings.
pub fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let (mut i, mut in_str) = (0, false);
    while i < b.len() {
        let c = b[i];
        if in_str {
            out.push(c as char);
            if c == b'\\' && i + 1 < b.len() {
                out.push(b[i + 1] as char);
                i += 2;
                continue;
            }
            if c == b'"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        match (c, b.get(i + 1)) {
            (b'"', _) => {
                in_str = true;
                out.push('"');
                i += 1;
            }
            (b'/', Some(b'/')) => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            (b'/', Some(b'*')) => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            _ => {
                // Multi-byte UTF-8 is copied byte by byte below.
                let len = utf8_len(c);
                out.push_str(std::str::from_utf8(&b[i..(i + len).min(b.len())]).unwrap_or(""));
                i += len;
            }
        }
    }
    out
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// Formats that need a schema registry.
const REGISTRY_FORMATS: [&str; 4] = ["AVRO", "PROTOBUF", "PROTOBUF_NOSR", "JSON_SR"];

fn registry_format_in(statements: &[String]) -> Option<String> {
    for s in statements {
        let upper = s.to_uppercase();
        for f in REGISTRY_FORMATS {
            for quoted in [format!("'{f}'"), format!("\"{f}\"")] {
                if upper.contains(&quoted) {
                    return Some(format!("needs the {f} format and a schema registry"));
                }
            }
        }
    }
    None
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
    let doc: Value =
        serde_json::from_str(&strip_comments(&text)).map_err(|e| format!("{} is not valid JSON (after removing comments): {e}", path.display()))?;
    let file = path.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default();
    // Counted per suite and file: QTT and RQTT both have an insert-values.json.
    let grouped = match path.parent().and_then(|d| d.file_name()) {
        Some(dir) => format!("{}/{file}", dir.to_string_lossy()),
        None => file.clone(),
    };
    let tests = doc.get("tests").and_then(Value::as_array).ok_or_else(|| format!("{} has no \"tests\" array", path.display()))?;
    let mut cases = Vec::new();
    for t in tests {
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
                    Some(f) if REGISTRY_FORMATS.contains(&f.to_uppercase().as_str()) => Some(format!("needs the {f} format and a schema registry")),
                    _ => registry_format_in(&stmts),
                };
                let list = |k: &str| t.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
                cases.push(Case {
                    file: grouped.clone(),
                    name: full,
                    statements: stmts,
                    properties: props,
                    inputs: list("inputs"),
                    outputs: list("outputs"),
                    topics: list("topics"),
                    expected_error: t.get("expectedException").or_else(|| t.get("expectedError")).cloned(),
                    // RQTT cases list responses or name their error `expectedError`.
                    responses: t.get("responses").and_then(Value::as_array).cloned().or_else(|| t.get("expectedError").map(|_| Vec::new())),
                    post: t.get("post").cloned(),
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
    fn formats_and_configs_expand_into_named_cases() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        std::fs::write(
            &p,
            r#"{"tests": [{"name": "t", "format": ["JSON", "AVRO"], "properties": {"p": "{CONFIG}"}, "config": [true, false],
                "statements": ["CREATE STREAM s (a INT) WITH (value_format='{FORMAT}');"]}]}"#,
        )
        .unwrap();
        let cases = load(&p).unwrap();
        let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["x.json - t - JSON - p=true", "x.json - t - JSON - p=false", "x.json - t - AVRO - p=true", "x.json - t - AVRO - p=false"]);
        assert!(cases[0].statements[0].contains("'JSON'"));
        assert!(cases[0].unsupported.is_none());
        assert!(cases[2].unsupported.is_some());
        assert_eq!(cases[1].properties["p"], serde_json::json!(false));
    }
}
