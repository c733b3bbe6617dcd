//! Plans SELECT statements over one source: resolves `*`, names output columns the way
//! ksqlDB does, decides which output columns form the key, and compiles the filter and
//! projection once.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::logical_expr::Expr as DfExpr;

use super::ast::{Emit, Expr, ExprKind, Literal, Query, Relation, SelectItem};
use super::binder::{Binder, Scope, natural_name};
use super::compile::{CompiledExpr, compile};
use super::table_functions::{TableFunction, contains_table_function, exploded_schema};
use super::{SqlError, listing};
use crate::catalog::types::{Column, ColumnKind, LogicalSchema, ROWOFFSET, ROWPARTITION, ROWTIME};
use crate::catalog::{Catalog, DataSource, SourceKind};

/// What the query is for; it changes what is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// CREATE ... AS SELECT / INSERT INTO ... SELECT.
    Persistent,
    /// SELECT ... EMIT CHANGES.
    Push,
    /// SELECT without EMIT: read what is there now and finish.
    Pull,
}

#[derive(Debug, Clone)]
pub struct OutputColumn {
    pub name: String,
    pub expr: CompiledExpr,
    pub kind: ColumnKind,
}

/// A filter/projection over one source.
#[derive(Debug, Clone)]
pub struct SelectPlan {
    pub source: Arc<DataSource>,
    /// Schema of the batches the source produces (columns, then pseudo-columns).
    pub input_schema: SchemaRef,
    pub filter: Option<CompiledExpr>,
    /// Output columns in SELECT order.
    pub columns: Vec<OutputColumn>,
    /// Output schema: key columns first.
    pub output: LogicalSchema,
    pub limit: Option<u64>,
    pub emit: Option<Emit>,
    /// Whether PARTITION BY chose a new key.
    pub repartitioned: bool,
    /// Key columns in PARTITION BY order, when it differs from SELECT order.
    pub key_order: Option<Vec<usize>>,
    /// EXPLODE / CUBE_EXPLODE calls: the batch is exploded before filter and projection.
    pub table_functions: Vec<TableFunction>,
}

impl SelectPlan {
    /// The key columns, in key order (PARTITION BY order when re-keyed).
    pub fn key_indices(&self) -> Vec<usize> {
        match &self.key_order {
            Some(order) => order.clone(),
            None => self.columns.iter().enumerate().filter(|(_, c)| c.kind == ColumnKind::Key).map(|(i, _)| i).collect(),
        }
    }

    pub fn value_indices(&self) -> Vec<usize> {
        self.columns.iter().enumerate().filter(|(_, c)| c.kind == ColumnKind::Value).map(|(i, _)| i).collect()
    }

    /// `` `A` STRING, `B` BIGINT `` in SELECT order, as push-query headers print it.
    pub fn header_schema(&self, mark_keys: bool) -> String {
        self.columns
            .iter()
            .map(|c| {
                let key = if mark_keys && c.kind == ColumnKind::Key { " KEY" } else { "" };
                format!("{} {}{}", crate::catalog::types::quote_ident(&c.name), c.expr.ty, key)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// LIMIT in a persistent query, refused in ksqlDB's words.
pub fn limit_refused(result: SourceKind, pos: super::ast::Pos) -> SqlError {
    let kind = if result == SourceKind::Table { "TABLE" } else { "STREAM" };
    SqlError::at(
        pos,
        format!("CREATE {kind} AS SELECT statements don't support LIMIT clause."),
        Some("remove LIMIT; it applies to SELECT ... EMIT CHANGES only".into()),
    )
}

const RESERVED_OUTPUT_NAMES: &[&str] = &[ROWTIME, ROWPARTITION, ROWOFFSET, "WINDOWSTART", "WINDOWEND"];

/// The source named in a query's FROM (joins are planned elsewhere).
pub fn single_source(q: &Query, catalog: &Catalog) -> Result<(Arc<DataSource>, Vec<String>), SqlError> {
    match &q.from {
        Relation::Source { name, alias } => {
            let source = catalog.source(&name.value).ok_or_else(|| {
                SqlError::at(
                    name.pos,
                    format!("{} does not exist", name.value),
                    Some("SHOW STREAMS and SHOW TABLES list what exists; names are case-insensitive unless quoted".into()),
                )
            })?;
            let mut qualifiers = vec![name.value.clone()];
            if let Some(a) = alias {
                qualifiers.push(a.value.clone());
            }
            Ok((source, qualifiers))
        }
        Relation::Join { .. } => Err(SqlError::at(q.pos, "joins are not supported yet", None)),
    }
}

/// `e` with its unqualified column names qualified by `source`, as ksqlDB prints them.
fn qualified(e: &Expr, source: &str) -> Expr {
    match &e.kind {
        ExprKind::Column { qualifier: None, name } => Expr::new(ExprKind::Column { qualifier: Some(source.to_string()), name: name.clone() }, e.pos),
        _ => e.map_children::<()>(&mut |c| Ok(qualified(c, source))).unwrap_or_else(|_| e.clone()),
    }
}

/// Plans a filter/projection; `sink` names the result in errors.
pub fn plan_select(q: &Query, catalog: &Catalog, purpose: Purpose, sink: Option<&str>) -> Result<SelectPlan, SqlError> {
    if q.window.is_some() && q.group_by.is_empty() {
        return Err(SqlError::at(
            q.pos,
            "WINDOW clause requires a GROUP BY clause.",
            Some("aggregate with GROUP BY, e.g. SELECT k, COUNT(*) FROM s WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY k".into()),
        ));
    }
    if q.window.is_some() || !q.group_by.is_empty() || q.having.is_some() {
        return Err(SqlError::at(q.pos, "windows, GROUP BY and HAVING are not supported yet", Some("this build runs filters and projections".into())));
    }
    let (source, qualifiers) = single_source(q, catalog)?;
    if source.window.is_some() && !q.partition_by.is_empty() {
        return Err(SqlError::at(
            q.pos,
            "Implicit repartitioning of windowed sources is not supported. See https://github.com/confluentinc/ksql/issues/4385.",
            None,
        ));
    }
    if source.kind == SourceKind::Table && purpose == Purpose::Persistent && !q.partition_by.is_empty() {
        return Err(SqlError::at(q.pos, "PARTITION BY on a table is not supported", Some("a table keeps its PRIMARY KEY; use GROUP BY to re-key it".into())));
    }
    if purpose == Purpose::Persistent && q.limit.is_some() {
        return Err(limit_refused(source.kind, q.pos));
    }
    if purpose == Purpose::Persistent && q.emit == Some(Emit::Final) {
        return Err(SqlError::at(q.pos, "EMIT FINAL is only valid for windowed aggregations", Some("use EMIT CHANGES".into())));
    }
    let input_schema = source.query_schema();
    let scope = Scope::single(&qualifiers, input_schema.clone())?;
    let binder = Binder { scope: &scope };

    // Expand the SELECT list into (ast expr, optional explicit name).
    let mut items: Vec<(Expr, Option<String>)> = Vec::new();
    for item in &q.select {
        match item {
            SelectItem::Wildcard { qualifier, pos } => {
                if let Some(qual) = qualifier
                    && !qualifiers.contains(qual)
                {
                    return Err(SqlError::at(*pos, format!("unknown source '{qual}' in {qual}.*"), None));
                }
                // Re-keyed by PARTITION BY, `*` lists the value columns before the old key.
                let rekeyed = purpose == Purpose::Persistent && !q.partition_by.is_empty();
                let mut cols: Vec<&Column> = source.schema.columns().iter().filter(|c| c.kind != ColumnKind::Header).collect();
                if rekeyed {
                    cols.sort_by_key(|c| c.kind == ColumnKind::Key);
                }
                cols.extend(source.schema.columns().iter().filter(|c| c.kind == ColumnKind::Header));
                // A push query over a windowed source lists the window bounds after the key.
                let bounds_at = (purpose == Purpose::Push && source.window.is_some()).then(|| cols.iter().take_while(|c| c.kind == ColumnKind::Key).count());
                let column = |name: &str| (Expr::new(ExprKind::Column { qualifier: None, name: name.to_string() }, *pos), None);
                for (i, c) in cols.iter().enumerate() {
                    if bounds_at == Some(i) {
                        items.extend([column("WINDOWSTART"), column("WINDOWEND")]);
                    }
                    items.push(column(&c.name));
                }
                if bounds_at == Some(cols.len()) {
                    items.extend([column("WINDOWSTART"), column("WINDOWEND")]);
                }
            }
            SelectItem::Expr { expr, alias } => items.push((expr.clone(), alias.as_ref().map(|a| a.value.clone()))),
            SelectItem::StructFields { expr, pos } => items.extend(super::binder::struct_field_items(&binder, expr, *pos)?),
        }
    }

    // Name the columns: alias, else the column or field name, else KSQL_COL_n.
    let mut names: Vec<Option<String>> = items.iter().map(|(e, a)| a.clone().or_else(|| natural_name(e))).collect();
    let mut generated = 0;
    for i in 0..names.len() {
        if names[i].is_none() {
            loop {
                let candidate = format!("KSQL_COL_{generated}");
                generated += 1;
                if !names.iter().any(|n| n.as_deref() == Some(&candidate)) {
                    names[i] = Some(candidate);
                    break;
                }
            }
        }
    }
    let names: Vec<String> = names.into_iter().map(|n| n.unwrap_or_default()).collect();

    // Table functions become columns of an exploded batch that the filter and the
    // projection run on.
    let mut table_functions = Vec::new();
    if items.iter().any(|(e, _)| contains_table_function(e)) {
        for (e, _) in items.iter_mut() {
            *e = super::table_functions::rewrite(e, &binder, &scope, &mut table_functions)?;
        }
    }
    let scope = if table_functions.is_empty() { scope } else { Scope::single(&qualifiers, exploded_schema(&input_schema, &table_functions))? };
    let binder = Binder { scope: &scope };
    let filter = match &q.where_ {
        Some(w) => {
            let c = compile(binder.bind(w).map_err(super::binder::in_clause("WHERE"))?, &scope)?.written_as(w);
            if c.ty != crate::catalog::types::SqlType::Boolean {
                return Err(SqlError::at(w.pos, format!("WHERE needs a BOOLEAN condition, found {}", c.ty), None));
            }
            Some(c)
        }
        None => None,
    };

    let key_names: Vec<&str> = source.schema.key_columns().map(|c| c.name.as_str()).collect();
    let mut bound: Vec<DfExpr> = Vec::new();
    let mut columns = Vec::new();
    for ((e, alias), name) in items.iter().zip(&names) {
        if alias.is_some() && (name == "WINDOWSTART" || name == "WINDOWEND" || (purpose == Purpose::Persistent && name == "ROWTIME")) {
            return Err(SqlError::at(e.pos, format!("`{name}` is a reserved column name. You cannot use it as an alias for a column."), None));
        }
        if purpose == Purpose::Persistent && RESERVED_OUTPUT_NAMES.contains(&name.as_str()) {
            return Err(SqlError::at(e.pos, format!("Reserved column name in select: {name}. Please remove or alias the column."), None));
        }
        if columns.iter().any(|c: &OutputColumn| &c.name == name) {
            return Err(SqlError::at(e.pos, format!("duplicate column name '{name}' in the SELECT list"), Some("give one of them an alias with AS".into())));
        }
        let b = binder.bind(e).map_err(super::binder::in_clause("SELECT")).and_then(super::binder::null_comparisons_false)?;
        if purpose == Purpose::Persistent && matches!(&b, DfExpr::Literal(datafusion::common::ScalarValue::Null, _)) {
            return Err(SqlError::at(e.pos, "Can't infer a type of null. Please explicitly cast it to a required type, e.g. CAST(null AS VARCHAR).", None));
        }
        let compiled = compile(b.clone(), &scope)?.written_as(e);
        bound.push(b);
        columns.push(OutputColumn { name: name.clone(), expr: compiled, kind: ColumnKind::Value });
    }

    let mut repartitioned = false;
    let mut key_order: Option<Vec<usize>> = None;
    if purpose == Purpose::Persistent {
        let partition_null = q.partition_by.len() == 1 && matches!(q.partition_by[0].kind, ExprKind::Literal(Literal::Null));
        if q.partition_by.len() > 1 && q.partition_by.iter().any(|p| matches!(p.kind, ExprKind::Literal(Literal::Null))) {
            return Err(SqlError::at(q.pos, "Cannot PARTITION BY multiple columns including NULL", Some("PARTITION BY NULL alone removes the key".into())));
        }
        if !q.partition_by.is_empty() && !partition_null {
            repartitioned = true;
            let mut order = Vec::new();
            let mut missing = Vec::new();
            let has_wildcard = q.select.iter().any(|i| matches!(i, SelectItem::Wildcard { .. }));
            for pb in &q.partition_by {
                let b = binder.bind(pb).map_err(super::binder::in_clause("PARTITION BY"))?;
                match bound.iter().position(|x| *x == b) {
                    Some(i) => {
                        columns[i].kind = ColumnKind::Key;
                        order.push(i);
                    }
                    None if has_wildcard => {
                        // `SELECT *` takes the partitioning expression as a new key column.
                        let mut name = natural_name(pb).unwrap_or_else(|| format!("KSQL_COL_{generated}"));
                        if columns.iter().any(|c| c.name == name) {
                            name = format!("{name}_KEY");
                        }
                        let compiled = compile(b.clone(), &scope)?.written_as(pb);
                        bound.push(b);
                        order.push(columns.len());
                        columns.push(OutputColumn { name, expr: compiled, kind: ColumnKind::Key });
                    }
                    None => missing.push(qualified(pb, &source.name).to_string()),
                }
            }
            if !missing.is_empty() {
                // ksqlDB names every partitioning expression when one is missing.
                let missing: Vec<String> = q.partition_by.iter().map(|pb| qualified(pb, &source.name).to_string()).collect();
                let target = sink.map(|s| format!("`{s}`")).unwrap_or_else(|| "the result".into());
                let what = if missing.len() == 1 { "expression" } else { "expressions" };
                return Err(SqlError::at(
                    q.pos,
                    format!(
                        "The query used to build {target} must include the partitioning {what} {} in its projection (eg, SELECT {}...).",
                        listing(&missing, "and"),
                        missing.join(", ")
                    ),
                    None,
                ));
            }
            key_order = Some(order);
        } else if partition_null {
            repartitioned = true;
        } else {
            // The source key stays the key where it is projected as a plain column.
            let mut aliases: Vec<(String, Vec<String>)> = Vec::new();
            for (i, b) in bound.iter().enumerate() {
                // A plain column reference (AS_VALUE(k) copies the key into a value).
                let plain = matches!(items[i].0.kind, ExprKind::Column { .. });
                if let DfExpr::Column(c) = b
                    && plain
                    && key_names.contains(&c.name.as_str())
                {
                    match aliases.iter_mut().find(|(k, _)| *k == c.name) {
                        Some((_, names)) => names.push(columns[i].name.clone()),
                        None => {
                            aliases.push((c.name.clone(), vec![columns[i].name.clone()]));
                            columns[i].kind = ColumnKind::Key;
                        }
                    }
                }
            }
            // As ksqlDB: every source key column is projected, once, next to some value.
            if let Some((key, names)) = aliases.iter().find(|(_, n)| n.len() > 1) {
                let mut names = names.clone();
                names.sort();
                return Err(SqlError::at(
                    q.pos,
                    format!(
                        "The projection contains a key column ({}) more than once, aliased as: {}.",
                        crate::catalog::types::quote_ident(key),
                        listing(&names, "and")
                    ),
                    None,
                ));
            }
            let missing: Vec<String> = key_names.iter().filter(|k| !aliases.iter().any(|(a, _)| a == *k)).map(|k| k.to_string()).collect();
            if !missing.is_empty() && !q.select.iter().any(|i| matches!(i, SelectItem::Wildcard { .. })) {
                let target = sink.map(|s| format!("`{s}`")).unwrap_or_else(|| "the result".into());
                // ksqlDB names every key column once any is missing.
                let keys: Vec<String> = key_names.iter().map(|k| k.to_string()).collect();
                let what = if keys.len() == 1 { "column" } else { "columns" };
                return Err(SqlError::at(
                    q.pos,
                    format!(
                        "The query used to build {target} must include the key {what} {} in its projection (eg, SELECT {}...).",
                        listing(&keys, "and"),
                        keys.join(", ")
                    ),
                    Some("a query keeps its source's key; PARTITION BY changes it".into()),
                ));
            }
            if !key_names.is_empty() && columns.iter().all(|c| c.kind == ColumnKind::Key) {
                return Err(SqlError::at(q.pos, "The projection contains no value columns.", Some("select at least one value column".into())));
            }
        }
    }

    // Keys in key order, then values in SELECT order.
    let key_idx: Vec<usize> = match &key_order {
        Some(o) => o.clone(),
        None => columns.iter().enumerate().filter(|(_, c)| c.kind == ColumnKind::Key).map(|(i, _)| i).collect(),
    };
    let mut ordered: Vec<Column> = key_idx.iter().map(|&i| Column::new(columns[i].name.clone(), columns[i].expr.ty.clone(), ColumnKind::Key)).collect();
    ordered.extend(columns.iter().filter(|c| c.kind != ColumnKind::Key).map(|c| Column::new(c.name.clone(), c.expr.ty.clone(), c.kind)));
    let output = LogicalSchema::new(ordered);
    Ok(SelectPlan { source, input_schema, filter, columns, output, limit: q.limit, emit: q.emit, repartitioned, key_order, table_functions })
}
