//! Rows inserted as JSON objects (`/inserts-stream`): each object names columns (exactly,
//! or upper-cased as unquoted SQL names are), is decoded to the source's column types,
//! and is appended with the source's key and value formats. One bad row is refused on its
//! own; the rows around it are written.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{Engine, EngineError};
use crate::catalog::DataSource;
use crate::catalog::types::{Column, ColumnKind};
use crate::format::{FormatKind, FormatSpec, Role};
use crate::sql::ast::{Ident, Pos};

/// A target of `/inserts-stream`, checked once for the whole stream.
pub struct InsertTarget {
    source: Arc<DataSource>,
}

impl InsertTarget {
    pub fn name(&self) -> &str {
        &self.source.name
    }
}

impl Engine {
    /// Resolves the stream an `/inserts-stream` request names (its name as SQL writes it:
    /// upper-cased unless it is quoted with back-quotes).
    pub fn insert_stream_target(&self, target: &str) -> Result<InsertTarget, EngineError> {
        let name = match target.strip_prefix('`').and_then(|t| t.strip_suffix('`')) {
            Some(quoted) => quoted.to_string(),
            None if self.catalog.source(target).is_some() => target.to_string(),
            None => target.to_ascii_uppercase(),
        };
        if self.catalog.source(&name).is_none() {
            return Err(EngineError::rule(format!(
                "Cannot insert into an unknown stream: `{name}`. SHOW STREAMS lists the streams; quote a mixed-case name with back-quotes, e.g. \"`myStream`\""
            )));
        }
        let source = self.insert_target(&Ident { value: name, pos: Pos::default() })?;
        if source.kind == crate::catalog::SourceKind::Table {
            return Err(EngineError::rule(format!(
                "Cannot insert into {}: /inserts-stream inserts into streams; use INSERT INTO ... VALUES for a table",
                source.name
            )));
        }
        Ok(InsertTarget { source })
    }

    /// Appends rows, each a JSON object of column values; one result per row, in order.
    /// Blocking (the append may fsync).
    pub fn insert_json_rows(&self, target: &InsertTarget, rows: &[Value]) -> Vec<Result<(), EngineError>> {
        let source = &target.source;
        let columns: Vec<&Column> = source.schema.columns().iter().filter(|c| c.kind != ColumnKind::Header).collect();
        let mut results: Vec<Result<(), EngineError>> = Vec::with_capacity(rows.len());
        let mut texts: Vec<Vec<u8>> = Vec::with_capacity(rows.len());
        let mut slots = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            match canonical_row(row, &columns, &source.name) {
                Ok(text) => {
                    texts.push(text);
                    slots.push(i);
                    results.push(Ok(()));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        if texts.is_empty() {
            return results;
        }
        let mut decoder = FormatSpec::new(FormatKind::Json).decoder(&columns, Role::Value);
        let inputs: Vec<Option<&[u8]>> = texts.iter().map(|t| Some(t.as_slice())).collect();
        let decoded = decoder.decode(&inputs);
        for (i, why) in &decoded.errors {
            results[slots[*i as usize]] = Err(EngineError::rule(format!("Failed to insert values into '{}': {why}", source.name)));
        }
        let kept: Vec<usize> = decoded.kept.iter().map(|k| slots[*k as usize]).collect();
        if kept.is_empty() {
            return results;
        }
        if let Err(e) = self.append_decoded(source, &columns, &decoded.columns, kept.len()) {
            let message = e.to_string();
            for i in kept {
                results[i] = Err(EngineError::rule(message.clone()));
            }
        }
        results
    }

    /// Appends decoded rows (arrays in the order of `columns`), stamped now. Blocking.
    fn append_decoded(&self, source: &DataSource, columns: &[&Column], arrays: &[arrow::array::ArrayRef], rows: usize) -> Result<(), EngineError> {
        let of_kind =
            |kind: ColumnKind| -> Vec<arrow::array::ArrayRef> { columns.iter().zip(arrays).filter(|(c, _)| c.kind == kind).map(|(_, a)| a.clone()).collect() };
        let now = chrono::Utc::now().timestamp_millis();
        self.append_rows(source, &of_kind(ColumnKind::Key), &of_kind(ColumnKind::Value), &vec![now; rows])
    }
}

/// A row object as JSON text with the source's column names; unknown names are refused.
fn canonical_row(row: &Value, columns: &[&Column], source: &str) -> Result<Vec<u8>, EngineError> {
    let Value::Object(fields) = row else {
        return Err(EngineError::rule(format!("Each row must be a JSON object of column values, e.g. {{\"ID\": 1}}; got: {}", truncated(row))));
    };
    let mut out = Map::with_capacity(fields.len());
    for (name, v) in fields {
        let column = columns.iter().find(|c| c.name == *name).or_else(|| columns.iter().find(|c| c.name == name.to_ascii_uppercase()));
        match column {
            Some(c) => {
                out.insert(c.name.clone(), v.clone());
            }
            None => {
                let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
                return Err(EngineError::rule(format!("Column name {name} does not exist in {source}; its columns are {}", names.join(", "))));
            }
        }
    }
    serde_json::to_vec(&Value::Object(out)).map_err(|e| EngineError::rule_caused("a row could not be written as JSON", e))
}

fn truncated(v: &Value) -> String {
    let mut t = v.to_string();
    if t.len() > 100 {
        let mut end = 100;
        while !t.is_char_boundary(end) {
            end -= 1;
        }
        t.truncate(end);
        t.push('…');
    }
    t
}
