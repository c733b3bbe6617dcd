//! Feature lookups: many keys of one table read in one [`crate::state::StateDb::lookup`]
//! (hot rows in memory, then a RocksDB multi-get) and answered in request order with each
//! row, its event time and when it last changed.
//! The stored row JSON is spliced into the response without being re-encoded.

use super::ServerFault;
use std::borrow::Cow;
use std::fmt;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use smallvec::SmallVec;

use super::{Engine, EngineError};
use crate::catalog::SourceKind;
use crate::catalog::types::{ColumnKind, SqlType};
use crate::format::json_values::push_json_str;
use crate::sql::ast::{Literal, Pos};
use crate::sql::pull::key_value;
use crate::state::ReadMode;
use crate::state::keys::{KeyValue, encode_value};
use crate::state::rows;

/// Keys accepted in one request.
pub const MAX_FEATURE_KEYS: usize = 1000;

fn bad(message: String) -> EngineError {
    EngineError::BadRequest(message)
}

/// One key of a feature lookup as the request wrote it: a string (borrowed from the request
/// body when it has no escapes, so a hundred keys cost no allocation each), or any other
/// JSON value (a number, or an object or array naming several key columns).
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureKey<'a> {
    Str(Cow<'a, str>),
    Json(Value),
}

impl FeatureKey<'_> {
    pub fn into_owned(self) -> FeatureKey<'static> {
        match self {
            FeatureKey::Str(s) => FeatureKey::Str(Cow::Owned(s.into_owned())),
            FeatureKey::Json(v) => FeatureKey::Json(v),
        }
    }

    /// The key as a JSON value.
    pub fn to_value(&self) -> Cow<'_, Value> {
        match self {
            FeatureKey::Str(s) => Cow::Owned(Value::String(s.to_string())),
            FeatureKey::Json(v) => Cow::Borrowed(v),
        }
    }
}

impl From<Value> for FeatureKey<'static> {
    fn from(v: Value) -> Self {
        match v {
            Value::String(s) => FeatureKey::Str(Cow::Owned(s)),
            other => FeatureKey::Json(other),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for FeatureKey<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FeatureKeyVisitor(std::marker::PhantomData))
    }
}

struct FeatureKeyVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for FeatureKeyVisitor<'a> {
    type Value = FeatureKey<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key: a string, a number, or an object or array of key column values")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(FeatureKey::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(FeatureKey::Str(Cow::Owned(v.to_string())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(FeatureKey::Str(Cow::Owned(v)))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(FeatureKey::Json(Value::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(FeatureKey::Json(Value::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(FeatureKey::Json(Value::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(FeatureKey::Json(Value::from(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(FeatureKey::Json(Value::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(FeatureKey::Json(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Value::deserialize(SeqAccessDeserializer::new(seq)).map(FeatureKey::Json)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Value::deserialize(MapAccessDeserializer::new(map)).map(FeatureKey::Json)
    }
}

/// A key column's value in a request: a string straight from the request, or JSON.
#[derive(Clone, Copy)]
enum KeyPart<'k> {
    Str(&'k str),
    Json(&'k Value),
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

impl Engine {
    /// Looks up `keys` in `table`; returns the response body
    /// `{"table": ..., "results": [{"key", "row", "rowtime", "updatedAt"} | {"key", "missing": true}]}`.
    /// A table with one key column takes scalar keys; a table with several takes objects
    /// `{"COL": value}` or arrays in key-column order. Blocks unless `mode` is memory-only,
    /// in which case `None` means some row is not in memory (ask again with
    /// [`ReadMode::Any`] on a blocking thread).
    pub fn feature_lookup(&self, table: &str, keys: &[FeatureKey<'_>], mode: ReadMode) -> Result<Option<String>, EngineError> {
        let (source, encoded) = self.feature_keys(table, keys)?;
        let share = self.share();
        if matches!(share, crate::exec::Share::Of { .. }) {
            return self.feature_rows_gathered(&source, keys, &encoded, mode, &share);
        }
        self.feature_rows(&source, keys, &encoded, mode)
    }

    /// [`Engine::feature_lookup`] on a server that runs part of its service's partitions:
    /// keys with no row here (not in a partition it runs or copies, or too new for its
    /// copy) are looked up on the others, each answering from the partitions it runs (a
    /// server that does not answer, from the copies of its partitions). Blocking unless
    /// `mode` is memory-only (then None when a key needs the disk or another server).
    fn feature_rows_gathered(
        &self,
        source: &crate::catalog::DataSource,
        keys: &[FeatureKey<'_>],
        encoded: &[Vec<u8>],
        mode: ReadMode,
        share: &crate::exec::Share,
    ) -> Result<Option<String>, EngineError> {
        let family = source.state_family();
        let state = self.runtime.state();
        let mut found: Vec<Option<Vec<u8>>> = if state.has_family(&family) {
            let Some(here) = state.lookup(&family, encoded, mode)? else { return Ok(None) };
            here.iter().map(|r| r.map(<[u8]>::to_vec)).collect()
        } else {
            vec![None; encoded.len()]
        };
        let missing: Vec<usize> = (0..found.len()).filter(|i| found[*i].is_none()).collect();
        if !missing.is_empty() {
            if mode == ReadMode::MemoryOnly {
                return Ok(None);
            }
            let wanted: Vec<Value> = missing.iter().map(|i| keys[*i].to_value().into_owned()).collect();
            let ask = |peers: &dyn super::gather::PeerReads, url: &str, slots: Option<&[u32]>| peers.feature_rows(url, &source.name, &wanted, slots);
            if let Some(scattered) = self.scatter(share, true, &ask)? {
                for answer in scattered.answers {
                    for (at, row) in missing.iter().zip(answer) {
                        if found[*at].is_none() {
                            found[*at] = row;
                        }
                    }
                }
            }
        }
        let found: Vec<Option<&[u8]>> = found.iter().map(|r| r.as_deref()).collect();
        self.render_features(source, keys, &found).map(Some)
    }

    /// The stored rows of feature keys of `table` in the partitions this server runs, or
    /// with `slots` in the partitions of those slots (for a server gathering a lookup).
    /// Blocking.
    pub fn feature_rows_here(&self, table: &str, keys: &[FeatureKey<'_>], slots: Option<&[u32]>) -> Result<Vec<Option<Vec<u8>>>, EngineError> {
        let (source, encoded) = self.feature_keys(table, keys)?;
        let share = self.share();
        let state = self.runtime.state();
        let family = source.state_family();
        if !state.has_family(&family) {
            return Ok(vec![None; encoded.len()]);
        }
        let held = super::gather::requested(&share, slots);
        let Some(found) = state.lookup(&family, &encoded, ReadMode::Any)? else { return Ok(vec![None; encoded.len()]) };
        Ok(found.iter().map(|r| r.filter(|v| rows::decode(v).ok().is_some_and(|row| row.partition.is_none_or(&held))).map(<[u8]>::to_vec)).collect())
    }

    /// The partitions of the tasks that wrote the rows a feature lookup finds (None when a
    /// row does not say). Blocking.
    pub(super) fn feature_partitions(&self, table: &str, keys: &[FeatureKey<'_>]) -> Result<Option<Vec<i32>>, EngineError> {
        let (source, encoded) = self.feature_keys(table, keys)?;
        let state = self.runtime.state();
        let family = source.state_family();
        if !state.has_family(&family) {
            return Ok(Some(Vec::new()));
        }
        let mut partitions = Vec::new();
        let Some(found) = state.lookup(&family, &encoded, ReadMode::Any)? else { return Ok(None) };
        for v in found.iter().flatten() {
            match rows::decode(v).ok().and_then(|r| r.partition) {
                Some(p) => partitions.push(p),
                None => return Ok(None),
            }
        }
        partitions.sort_unstable();
        partitions.dedup();
        Ok(Some(partitions))
    }

    /// The table a feature lookup reads, and its keys as stored.
    fn feature_keys(&self, table: &str, keys: &[FeatureKey<'_>]) -> Result<(std::sync::Arc<crate::catalog::DataSource>, Vec<Vec<u8>>), EngineError> {
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
            let parts: SmallVec<[KeyPart; 4]> = match (key_cols.len(), k) {
                (1, FeatureKey::Str(text)) => smallvec::smallvec![KeyPart::Str(text)],
                (1, FeatureKey::Json(v)) => smallvec::smallvec![KeyPart::Json(v)],
                (n, FeatureKey::Json(Value::Array(a))) if a.len() == n => a.iter().map(KeyPart::Json).collect(),
                (_, FeatureKey::Json(Value::Object(m))) => {
                    let mut named = SmallVec::new();
                    for c in &key_cols {
                        let v = m
                            .iter()
                            .find(|(name, _)| name.eq_ignore_ascii_case(&c.name))
                            .map(|(_, v)| v)
                            .ok_or_else(|| bad(format!("key {i} has no value for key column {}; send an object with every key column", c.name)))?;
                        named.push(KeyPart::Json(v));
                    }
                    named
                }
                (n, _) => {
                    let names: Vec<&str> = key_cols.iter().map(|c| c.name.as_str()).collect();
                    return Err(bad(format!(
                        "key {i} must name all {n} key columns of {}: an object like {{\"{}\": ...}} or an array in that order",
                        source.name,
                        names.join("\": ..., \"")
                    )));
                }
            };
            let mut key = Vec::new();
            for (c, part) in key_cols.iter().zip(parts) {
                // The common case, a string key, without the literal's copies.
                if matches!(c.ty, SqlType::String) {
                    let text = match part {
                        KeyPart::Str(text) => Some(text),
                        KeyPart::Json(Value::String(text)) => Some(text.as_str()),
                        KeyPart::Json(_) => None,
                    };
                    if let Some(text) = text {
                        encode_value(&mut key, &KeyValue::Bytes(text.as_bytes()));
                        continue;
                    }
                }
                let v = match part {
                    KeyPart::Str(text) => Cow::Owned(Value::String(text.to_string())),
                    KeyPart::Json(v) => Cow::Borrowed(v),
                };
                let lit = literal_of(&v).ok_or_else(|| bad(format!("key {i}: {v} is not a {} value for key column {}", c.ty, c.name)))?;
                let kv = key_value(&lit, &c.ty, &c.name, Pos::default())
                    .map_err(|_| bad(format!("key {i}: {v} is not a {} value for key column {}", c.ty, c.name)))?;
                encode_value(&mut key, &kv.as_ref());
            }
            encoded.push(key);
        }
        Ok((source, encoded))
    }

    /// The response body of a feature lookup of `encoded` keys (`keys` as requested).
    fn feature_rows(
        &self,
        source: &crate::catalog::DataSource,
        keys: &[FeatureKey<'_>],
        encoded: &[Vec<u8>],
        mode: ReadMode,
    ) -> Result<Option<String>, EngineError> {
        let family = source.state_family();
        let state = self.runtime.state();
        let found = if state.has_family(&family) {
            let Some(found) = state.lookup(&family, encoded, mode)? else { return Ok(None) };
            Some(found)
        } else {
            None
        };
        let found: Vec<Option<&[u8]>> = match &found {
            Some(f) => f.iter().collect(),
            None => vec![None; encoded.len()],
        };
        self.render_features(source, keys, &found).map(Some)
    }

    /// The response body of a feature lookup: each key with its stored row, or missing.
    fn render_features(&self, source: &crate::catalog::DataSource, keys: &[FeatureKey<'_>], found: &[Option<&[u8]>]) -> Result<String, EngineError> {
        let mut out = String::with_capacity(64 + found.iter().map(|f| f.map_or(32, |v| v.len() + 64)).sum::<usize>());
        out.push_str("{\"table\":");
        out.push_str(&Value::String(source.name.clone()).to_string());
        out.push_str(",\"results\":[");
        for (i, (k, row)) in keys.iter().zip(found.iter().copied()).enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"key\":");
            match k {
                FeatureKey::Str(text) => push_json_str(&mut out, text),
                FeatureKey::Json(v) => out.push_str(&v.to_string()),
            }
            match row.map(rows::decode).transpose()? {
                Some(r) => {
                    out.push_str(",\"row\":");
                    out.push_str(std::str::from_utf8(r.json).map_err(|e| EngineError::fault(ServerFault::StoredRowNotUtf8(e)))?);
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
        Ok(out)
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
    fn request_keys_borrow_plain_strings_and_keep_other_json() {
        #[derive(serde::Deserialize)]
        struct Body<'b> {
            #[serde(borrow)]
            keys: Vec<FeatureKey<'b>>,
        }
        let text = r#"{"keys": ["u1", "a\"b", 7, -2, 1.5, true, null, {"ID": "x", "N": 1}, ["x", 1]]}"#;
        let body: Body = serde_json::from_str(text).unwrap();
        assert!(matches!(&body.keys[0], FeatureKey::Str(Cow::Borrowed("u1"))));
        assert_eq!(body.keys[1], FeatureKey::Str(Cow::Owned("a\"b".into())));
        let rest: Vec<Value> = body.keys[2..].iter().map(|k| k.to_value().into_owned()).collect();
        assert_eq!(rest, serde_json::from_str::<Vec<Value>>(r#"[7, -2, 1.5, true, null, {"ID": "x", "N": 1}, ["x", 1]]"#).unwrap());
        // The same keys as a parsed JSON value would give them.
        let from_values: Vec<FeatureKey> = serde_json::from_str::<Vec<Value>>(r#"["u1", "a\"b", 7]"#).unwrap().into_iter().map(FeatureKey::from).collect();
        assert_eq!(from_values[..], body.keys[..3]);
    }
}
