//! INSERT INTO ... VALUES: evaluates the values, checks them against the column types,
//! encodes key and value with the stream's formats and appends one record to the
//! partition its key hashes to.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, new_null_array};
use arrow::datatypes::Schema;

use super::{Engine, EngineError, Rejection};
use crate::catalog::DataSource;
use crate::catalog::types::{ColumnKind, ROWOFFSET, ROWPARTITION, ROWTIME, SqlType};
use crate::exec::expr::evaluate_constants;
use crate::format::Role;
use crate::log::BatchBuilder;
use crate::log::murmur2::partition_for_key;
use crate::sql::ast::{Expr, Ident};
use crate::sql::binder::{Binder, Scope};
use crate::sql::compile::compile;

/// Whether a value of type `from` may be stored in a column of type `to`.
fn assignable(from: &SqlType, to: &SqlType) -> bool {
    use SqlType::*;
    if from == to {
        return true;
    }
    match (from, to) {
        (Int, Bigint | Double | Decimal { .. }) | (Bigint, Double | Decimal { .. }) | (Decimal { .. }, Double | Decimal { .. }) => true,
        (String, Timestamp | Date | Time) => true,
        (Array(a), Array(b)) => assignable(a, b),
        (Map(ka, va), Map(kb, vb)) => assignable(ka, kb) && assignable(va, vb),
        (Struct(a), Struct(b)) => a.iter().all(|(n, t)| b.iter().any(|(m, u)| m.eq_ignore_ascii_case(n) && assignable(t, u))),
        _ => false,
    }
}

impl Engine {
    /// The stream or table a statement inserts into: it must exist and be writable.
    pub(super) fn insert_target(&self, target: &Ident) -> Result<Arc<crate::catalog::DataSource>, EngineError> {
        let source = self.catalog.source(&target.value).ok_or_else(|| {
            // A source whose name differs only in case: the name was (not) quoted.
            let similar = self.catalog.sources().into_iter().find(|s| s.name.eq_ignore_ascii_case(&target.value));
            let suggestion = match similar {
                Some(s) if s.name.chars().any(|c| c.is_lowercase()) => {
                    format!("\nDid you mean \"{}\"? Hint: wrap the source name in double quotes to make it case-sensitive.", s.name)
                }
                Some(s) => format!("\nDid you mean {}? Hint: try removing double quotes from the source name.", s.name),
                None => String::new(),
            };
            EngineError::rule(format!("{}: Cannot insert values into an unknown stream/table: `{}`{suggestion}", target.pos, target.value))
        })?;
        if source.read_only || self.log.is_internal_topic(&source.topic) {
            return Err(EngineError::rule(format!("Cannot insert values into read-only {}: {}", source.kind.title().to_lowercase(), source.name)));
        }
        Ok(source)
    }

    /// Blocking: appends (and by default fsyncs) one record.
    pub(super) fn insert_values(&self, target: &Ident, columns: Option<&[Ident]>, values: &[Expr]) -> Result<(), EngineError> {
        let source = self.insert_target(target)?;
        let names: Vec<String> = match columns {
            Some(cols) => cols.iter().map(|c| c.value.clone()).collect(),
            None => source.schema.columns().iter().filter(|c| c.kind != ColumnKind::Header).map(|c| c.name.clone()).collect(),
        };
        if columns.is_some() && names.len() != values.len() {
            return Err(EngineError::rule(format!(
                "Failed to prepare statement: Expected number columns and values to match: {}, {}",
                names.len(),
                values.len()
            )));
        }
        if names.len() != values.len() {
            return Err(EngineError::rule(format!(
                "Failed to prepare statement: Expected a value for each column. Expected Columns: [{}]. Got {} value(s)",
                names.join(", "),
                values.len()
            )));
        }
        for (i, n) in names.iter().enumerate() {
            if names[..i].contains(n) {
                return Err(EngineError::rule(format!("Duplicate column name in INSERT: {n}")));
            }
            if source.schema.find(n).is_some_and(|c| c.kind == ColumnKind::Header) {
                return Err(EngineError::rule(format!("Cannot insert into HEADER columns: {n}; headers are read-only in SQL")));
            }
            if n == ROWPARTITION || n == ROWOFFSET {
                return Err(EngineError::rule(format!("Inserting into column `{n}` is not allowed.")));
            }
            if n != ROWTIME && source.schema.find(n).is_none() {
                return Err(EngineError::rule(format!(
                    "Column name {n} does not exist in {}; its columns are {}",
                    source.name,
                    source.schema.columns().iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
                )));
            }
        }
        let scope = Scope::single(&[], Arc::new(Schema::empty()))?;
        let binder = Binder { scope: &scope };
        let mut compiled = Vec::new();
        for (name, e) in names.iter().zip(values) {
            let c = compile(binder.bind(e)?, &scope)?;
            let target_ty = if name == ROWTIME { SqlType::Bigint } else { source.schema.find(name).map(|c| c.ty.clone()).unwrap_or(SqlType::String) };
            let is_null = matches!(e.kind, crate::sql::ast::ExprKind::Literal(crate::sql::ast::Literal::Null));
            if !is_null && !assignable(&c.ty, &target_ty) {
                return Err(EngineError::rule(format!("{}: Expected type {target_ty} for field {name} but got {} ({})", e.pos, c.ty, c.text)));
            }
            compiled.push((name.clone(), c, target_ty));
        }
        let refs: Vec<_> = compiled.iter().map(|(_, c, _)| c).collect();
        let arrays = evaluate_constants(&refs).map_err(|e| EngineError::rule_caused(format!("Failed to insert values into '{}': {e}", source.name), e))?;
        let value_of = |name: &str, ty: &SqlType| -> Result<ArrayRef, EngineError> {
            match compiled.iter().position(|(n, _, _)| n == name) {
                Some(i) => {
                    let arr = &arrays[i];
                    let target = ty.to_arrow();
                    if arr.data_type() == &target {
                        return Ok(arr.clone());
                    }
                    let opts = arrow::compute::CastOptions { safe: false, ..Default::default() };
                    arrow::compute::cast_with_options(arr, &target, &opts)
                        .map_err(|e| EngineError::rule_caused(format!("Failed to insert values into '{}': column {name}: {e}", source.name), e))
                }
                None => Ok(new_null_array(&ty.to_arrow(), 1)),
            }
        };
        let mut key_cols = Vec::new();
        let mut value_cols = Vec::new();
        for c in source.schema.columns() {
            let a = value_of(&c.name, &c.ty)?;
            match c.kind {
                ColumnKind::Key => key_cols.push(a),
                ColumnKind::Value => value_cols.push(a),
                ColumnKind::Header => {}
            }
        }
        let timestamp = match compiled.iter().position(|(n, _, _)| n == ROWTIME) {
            Some(_) => {
                let a = value_of(ROWTIME, &SqlType::Bigint)?;
                let a = a.as_primitive::<arrow::datatypes::Int64Type>();
                if a.is_null(0) { chrono::Utc::now().timestamp_millis() } else { a.value(0) }
            }
            None => chrono::Utc::now().timestamp_millis(),
        };
        self.append_rows(&source, &key_cols, &value_cols, &[timestamp])
    }

    /// Encodes rows (the source's key and value columns, in order) with its formats and
    /// appends them, one batch per partition: a keyed row to its key's partition, keyless
    /// rows spread across partitions. Blocking (the append may fsync).
    pub(super) fn append_rows(&self, source: &DataSource, key_cols: &[ArrayRef], value_cols: &[ArrayRef], timestamps: &[i64]) -> Result<(), EngineError> {
        let rows = timestamps.len();
        let keys: Vec<_> = source.schema.key_columns().collect();
        let vals: Vec<_> = source.schema.value_columns().collect();
        let key_bytes = source.key_format.encoder(&keys, Role::Key).encode(key_cols, rows).map_err(|e| EngineError::from(Rejection::Format(e)))?;
        let value_bytes = source.value_format.encoder(&vals, Role::Value).encode(value_cols, rows).map_err(|e| EngineError::from(Rejection::Format(e)))?;
        let topic = self.log.topic(&source.topic)?;
        let n = topic.partition_count();
        let base = topic.record_count();
        let mut batches: BTreeMap<i32, BatchBuilder> = BTreeMap::new();
        for (r, &timestamp) in timestamps.iter().enumerate() {
            let key = if keys.is_empty() { None } else { key_bytes.get(r) };
            let partition = match key {
                Some(k) => partition_for_key(k, n),
                None => ((base + r as i64) % i64::from(n)) as i32,
            };
            batches.entry(partition).or_default().push(timestamp, key, value_bytes.get(r), &[]);
        }
        for (partition, b) in batches {
            let batch = b.finish_compressed(topic.config().codec()).map_err(crate::log::LogError::from)?;
            topic.partition(partition)?.append(batch)?;
        }
        Ok(())
    }
}
