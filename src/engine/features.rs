//! Feature lookups: many keys of one table read in one [`crate::state::StateDb::lookup`]
//! (hot rows in memory, then a RocksDB multi-get) and answered in request order with each
//! row, its event time and when it last changed.
//! The stored row JSON is spliced into the response without being re-encoded.

use serde_json::Value;

use super::{Engine, EngineError};
use crate::catalog::SourceKind;
use crate::catalog::types::{ColumnKind, SqlType};
use crate::state::ReadMode;
use crate::sql::ast::{Literal, Pos};
use crate::sql::pull::key_value;
use crate::state::keys::{KeyValue, encode_value};
use crate::state::rows;

/// Keys accepted in one request.
pub const MAX_FEATURE_KEYS: usize = 1000;

fn bad(message: String) -> EngineError {
    EngineError::BadRequest(message)
}

/// A JSON value as the SQL literal it stands for.
fn literal_of(v: &Value) -> Option<Literal> {
    Some(match v {
        Value::Null => Literal::Null,
        Value::Bool(b) => Literal::Boolean(*b),
        Value::String(s) => Literal::String(s.clone()),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Literal::Integer(i),
            None => Literal::Decimal(n.to_string()),
        },
        Value::Array(_) | Value::Object(_) => return None,
    })
}

/// Appends `v` as JSON; a string with nothing to escape (most keys) without a copy.
fn push_json(out: &mut String, v: &Value) {
    match v {
        Value::String(s) if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) => {
            out.push('"');
            out.push_str(s);
            out.push('"');
        }
        other => out.push_str(&other.to_string()),
    }
}

impl Engine {
    /// Looks up `keys` in `table`; returns the response body
    /// `{"table": ..., "results": [{"key", "row", "rowtime", "updatedAt"} | {"key", "missing": true}]}`.
    /// A table with one key column takes scalar keys; a table with several takes objects
    /// `{"COL": value}` or arrays in key-column order. Blocks unless `mode` is memory-only,
    /// in which case `None` means some row is not in memory (ask again with
    /// [`ReadMode::Any`] on a blocking thread).
    pub fn feature_lookup(&self, table: &str, keys: &[Value], mode: ReadMode) -> Result<Option<String>, EngineError> {
        // Like an unquoted SQL name, the path is case-insensitive unless it matches exactly.
        let source = self
            .catalog
            .source(table)
            .or_else(|| self.catalog.source(&table.to_uppercase()))
            .ok_or_else(|| EngineError::NotFound(format!("table {table} does not exist; SHOW TABLES lists the tables you can look up")))?;
        if source.kind != SourceKind::Table {
            return Err(bad(format!("{} is a stream; feature lookups read tables (CREATE TABLE ... AS SELECT ... GROUP BY materializes one)", source.name)));
        }
        if source.window.is_some() {
            return Err(bad(format!(
                "{} is a windowed table; look up its windows with a pull query, e.g. SELECT * FROM {} WHERE <key> = ... AND WINDOWSTART >= ...",
                source.name, source.name
            )));
        }
        if keys.len() > MAX_FEATURE_KEYS {
            return Err(bad(format!("{} keys requested; send at most {MAX_FEATURE_KEYS} per request", keys.len())));
        }
        let key_cols: Vec<_> = source.schema.columns().iter().filter(|c| c.kind == ColumnKind::Key).collect();
        let mut encoded = Vec::with_capacity(keys.len());
        for (i, k) in keys.iter().enumerate() {
            // One key column (the common case) needs no list of parts.
            let one;
            let owned: Vec<&Value>;
            let parts: &[&Value] = match (key_cols.len(), k) {
                (1, v) => {
                    one = [v];
                    &one
                }
                (n, Value::Array(a)) if a.len() == n => {
                    owned = a.iter().collect();
                    &owned
                }
                (_, Value::Object(m)) => {
                    let mut named = Vec::with_capacity(key_cols.len());
                    for c in &key_cols {
                        let v = m.iter().find(|(name, _)| name.eq_ignore_ascii_case(&c.name)).map(|(_, v)| v).ok_or_else(|| {
                            bad(format!("key {i} has no value for key column {}; send an object with every key column", c.name))
                        })?;
                        named.push(v);
                    }
                    owned = named;
                    &owned
                }
                (n, _) => {
                    let names: Vec<&str> = key_cols.iter().map(|c| c.name.as_str()).collect();
                    return Err(bad(format!("key {i} must name all {n} key columns of {}: an object like {{\"{}\": ...}} or an array in that order", source.name, names.join("\": ..., \""))));
                }
            };
            let mut key = Vec::new();
            for (c, &v) in key_cols.iter().zip(parts) {
                // The common case, a string key, without the literal's copies.
                if let (SqlType::String, Value::String(text)) = (&c.ty, v) {
                    encode_value(&mut key, &KeyValue::Bytes(text.as_bytes()));
                    continue;
                }
                let lit = literal_of(v).ok_or_else(|| bad(format!("key {i}: {v} is not a {} value for key column {}", c.ty, c.name)))?;
                let kv = key_value(&lit, &c.ty, &c.name, Pos::default()).map_err(|_| bad(format!("key {i}: {v} is not a {} value for key column {}", c.ty, c.name)))?;
                encode_value(&mut key, &kv.as_ref());
            }
            encoded.push(key);
        }
        let family = source.state_family();
        let state = self.runtime.state();
        let found = if state.has_family(&family) {
            let Some(found) = state.lookup(&family, &encoded, mode)? else { return Ok(None) };
            Some(found)
        } else {
            None
        };
        let found: Vec<Option<&[u8]>> = match &found {
            Some(f) => f.iter().collect(),
            None => vec![None; encoded.len()],
        };
        let mut out = String::with_capacity(64 + found.iter().map(|f| f.map_or(32, |v| v.len() + 64)).sum::<usize>());
        out.push_str("{\"table\":");
        out.push_str(&Value::String(source.name.clone()).to_string());
        out.push_str(",\"results\":[");
        for (i, (k, row)) in keys.iter().zip(found).enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"key\":");
            push_json(&mut out, k);
            match row.map(rows::decode).transpose()? {
                Some(r) => {
                    out.push_str(",\"row\":");
                    out.push_str(std::str::from_utf8(r.json).map_err(|e| EngineError::Internal(format!("stored row is not UTF-8: {e}")))?);
                    let mut digits = itoa::Buffer::new();
                    out.push_str(",\"rowtime\":");
                    out.push_str(digits.format(r.rowtime));
                    out.push_str(",\"updatedAt\":");
                    out.push_str(digits.format(r.updated_ms));
                    out.push('}');
                }
                None => out.push_str(",\"missing\":true}"),
            }
        }
        out.push_str("]}");
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keys_become_literals_of_their_type() {
        assert_eq!(literal_of(&serde_json::json!("u1")), Some(Literal::String("u1".into())));
        assert_eq!(literal_of(&serde_json::json!(42)), Some(Literal::Integer(42)));
        assert_eq!(literal_of(&serde_json::json!(1.5)), Some(Literal::Decimal("1.5".into())));
        assert_eq!(literal_of(&serde_json::json!(null)), Some(Literal::Null));
        assert_eq!(literal_of(&serde_json::json!([1])), None);
    }

    #[test]
    fn keys_are_written_back_as_the_json_they_came_as() {
        for v in [serde_json::json!("u1"), serde_json::json!("a \"b\"\n"), serde_json::json!(7), serde_json::json!(null), serde_json::json!({"A": "x"})] {
            let mut out = String::new();
            push_json(&mut out, &v);
            assert_eq!(out, v.to_string());
        }
    }
}
