//! Plans joins of two sources: checks the join is one ksqlDB can run (equality on one
//! expression of each side, WITHIN for stream-stream joins, stream-table joins INNER or
//! LEFT, table-table joins on primary keys), decides which sides must be repartitioned by
//! the join key, names the joined columns (`ALIAS_COLUMN`) and compiles the WHERE and the
//! SELECT list over the joined row.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::logical_expr::Expr as DfExpr;

use super::SqlError;
use super::ast::{BinaryOp, Emit, Expr, ExprKind, JoinKind, Query, Relation, SelectItem};
use super::binder::{Binder, Scope, ScopeColumn, natural_name};
use super::compile::{CompiledExpr, compile};
use super::planner::{OutputColumn, Purpose};
use crate::catalog::types::{Column, ColumnKind, LogicalSchema, ROWTIME, SqlType};
use crate::catalog::{Catalog, DataSource, SourceKind};

/// The joined row's synthetic column holding the join key (either side's).
pub const JOIN_KEY_FIELD: &str = "__JOIN_KEY";
/// Grace of a stream-stream join without GRACE PERIOD (how long rows are buffered).
const DEFAULT_JOIN_GRACE_MS: i64 = 24 * 3600 * 1000;

/// What the two sides are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinShape {
    StreamStream,
    StreamTable,
    TableTable,
}

/// The time bounds of a stream-stream join: a left row at `t` matches right rows in
/// `[t - before, t + after]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinWindow {
    pub before_ms: i64,
    pub after_ms: i64,
    pub grace_ms: i64,
    /// GRACE PERIOD was given: unmatched rows of outer joins wait for the window to close
    /// (without it, ksqlDB's older eager semantics: emitted at once, padded with nulls).
    pub explicit_grace: bool,
}

impl JoinWindow {
    /// How long a buffered row is kept after its own time.
    pub fn retention_ms(&self) -> i64 {
        self.before_ms.max(self.after_ms).saturating_add(self.grace_ms)
    }
}

/// One input of a join.
#[derive(Debug, Clone)]
pub struct JoinSide {
    pub source: Arc<DataSource>,
    /// The alias (or source name) that prefixes its columns in the joined row.
    pub alias: String,
    /// The join expression, over the source's batches.
    pub key: CompiledExpr,
    /// The join expression is the source's key column: no repartition needed by itself.
    pub keyed_by_join_key: bool,
    /// Rows go through an internal topic keyed by the join key.
    pub repartition: bool,
    /// (joined-row field name, type) of the side's columns, in source schema order.
    pub fields: Vec<(String, DataType)>,
}

impl JoinSide {
    pub fn is_table(&self) -> bool {
        self.source.kind == SourceKind::Table
    }

    /// Fields of the side's stored rows: its columns and the join key.
    pub fn stored_fields(&self, key_type: &SqlType) -> Vec<(String, DataType)> {
        let mut f = self.fields.clone();
        f.push((JOIN_KEY_FIELD.to_string(), key_type.to_arrow()));
        f
    }
}

#[derive(Debug, Clone)]
pub struct JoinPlan {
    pub left: JoinSide,
    pub right: JoinSide,
    pub kind: JoinKind,
    pub shape: JoinShape,
    pub window: Option<JoinWindow>,
    pub key_type: SqlType,
    /// Partitions of the join stage (and of repartition topics).
    pub partitions: i32,
    /// The joined row: left fields, right fields, the join key, ROWTIME.
    pub joined_schema: SchemaRef,
    pub filter: Option<CompiledExpr>,
    pub columns: Vec<OutputColumn>,
    pub output: LogicalSchema,
    pub emit: Option<Emit>,
    pub limit: Option<u64>,
}

impl JoinPlan {
    /// The result is a TABLE (table-table joins) or a STREAM.
    pub fn result_kind(&self) -> SourceKind {
        if self.shape == JoinShape::TableTable { SourceKind::Table } else { SourceKind::Stream }
    }

    pub fn key_indices(&self) -> Vec<usize> {
        self.columns.iter().enumerate().filter(|(_, c)| c.kind == ColumnKind::Key).map(|(i, _)| i).collect()
    }

    pub fn value_indices(&self) -> Vec<usize> {
        self.columns.iter().enumerate().filter(|(_, c)| c.kind == ColumnKind::Value).map(|(i, _)| i).collect()
    }

    pub fn source_names(&self) -> Vec<String> {
        vec![self.left.source.name.clone(), self.right.source.name.clone()]
    }
}

pub fn is_join_query(q: &Query) -> bool {
    matches!(q.from, Relation::Join { .. })
}

fn source_of(rel: &Relation, catalog: &Catalog, pos: super::ast::Pos) -> Result<(Arc<DataSource>, String), SqlError> {
    match rel {
        Relation::Source { name, alias } => {
            let source = catalog.source(&name.value).ok_or_else(|| {
                SqlError::at(name.pos, format!("{} does not exist", name.value), Some("SHOW STREAMS and SHOW TABLES list what exists; names are case-insensitive unless quoted".into()))
            })?;
            let alias = alias.as_ref().map(|a| a.value.clone()).unwrap_or_else(|| name.value.clone());
            Ok((source, alias))
        }
        Relation::Join { .. } => Err(SqlError::at(
            pos,
            "joins of more than two sources are not supported yet",
            Some("join two sources per query: create the first join with CREATE STREAM/TABLE ... AS SELECT, then join its result".into()),
        )),
    }
}

/// Scope of one side alone (its columns, qualifiable by alias and source name).
fn side_scope(source: &DataSource, alias: &str) -> Result<Scope, SqlError> {
    let mut q = vec![alias.to_string()];
    if source.name != alias {
        q.push(source.name.clone());
    }
    Scope::single(&q, source.schema.query_arrow_schema())
}

fn side_fields(source: &DataSource, alias: &str) -> Vec<(String, DataType)> {
    source.schema.columns().iter().map(|c| (format!("{alias}_{}", c.name), c.ty.to_arrow())).collect()
}

/// The scope of the joined row.
fn joined_scope(left: &JoinSide, right: &JoinSide, key_type: &SqlType) -> Result<Scope, SqlError> {
    let mut fields: Vec<Field> = Vec::new();
    let mut columns = Vec::new();
    for side in [left, right] {
        for (c, (field, dt)) in side.source.schema.columns().iter().zip(&side.fields) {
            fields.push(Field::new(field, dt.clone(), true));
            let mut qualifiers = vec![side.alias.clone()];
            if side.source.name != side.alias {
                qualifiers.push(side.source.name.clone());
            }
            for q in qualifiers {
                columns.push(ScopeColumn { qualifier: Some(q), name: c.name.clone(), field: field.clone(), ty: c.ty.clone() });
            }
        }
    }
    // Unqualified names resolve when only one side has them.
    for side in [left, right] {
        let other = if std::ptr::eq(side, left) { right } else { left };
        for (c, (field, _)) in side.source.schema.columns().iter().zip(&side.fields) {
            if other.source.schema.find(&c.name).is_none() {
                columns.push(ScopeColumn { qualifier: None, name: c.name.clone(), field: field.clone(), ty: c.ty.clone() });
            }
        }
    }
    fields.push(Field::new(JOIN_KEY_FIELD, key_type.to_arrow(), true));
    fields.push(Field::new(ROWTIME, DataType::Int64, false));
    columns.push(ScopeColumn { qualifier: None, name: ROWTIME.into(), field: ROWTIME.into(), ty: SqlType::Bigint });
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let mut scope = Scope::single(&[], schema)?;
    scope.columns = columns;
    Ok(scope)
}

/// Splits `ON a = b` into (left expression, right expression).
fn split_condition<'a>(on: &'a Expr, left: &Scope, right: &Scope, names: (&str, &str)) -> Result<(&'a Expr, &'a Expr), SqlError> {
    let ExprKind::Binary { op: BinaryOp::Eq, left: a, right: b } = &on.kind else {
        return Err(SqlError::at(
            on.pos,
            format!("Unsupported join expression: {on}. Only equality conditions between one expression of each side are supported"),
            Some(format!("write the condition as {}.column = {}.column", names.0, names.1)),
        ));
    };
    let side = |e: &Expr| -> Result<u8, SqlError> {
        let on_left = Binder { scope: left }.bind(e).is_ok();
        let on_right = Binder { scope: right }.bind(e).is_ok();
        match (on_left, on_right) {
            (true, false) => Ok(0),
            (false, true) => Ok(1),
            (true, true) => Err(SqlError::at(
                e.pos,
                format!("Invalid join condition: {e} does not name one side only (a literal, or a column both sides have)"),
                Some(format!("qualify columns with their source, e.g. {}.column = {}.column", names.0, names.1)),
            )),
            (false, false) => Err(SqlError::at(
                e.pos,
                format!("Invalid join condition: {e} must use columns of exactly one of {} and {}", names.0, names.1),
                Some("each side of '=' must be an expression over one source's columns".into()),
            )),
        }
    };
    match (side(a)?, side(b)?) {
        (0, 1) => Ok((a, b)),
        (1, 0) => Ok((b, a)),
        _ => Err(SqlError::at(
            on.pos,
            format!("Invalid join condition: {on} compares two expressions of the same side"),
            Some(format!("compare an expression of {} with one of {}", names.0, names.1)),
        )),
    }
}

fn join_kind_sql(k: JoinKind) -> &'static str {
    match k {
        JoinKind::Inner => "[INNER]",
        JoinKind::Left => "LEFT [OUTER]",
        JoinKind::Right => "RIGHT [OUTER]",
        JoinKind::Full => "FULL [OUTER]",
    }
}

fn is_source_key(e: &DfExpr, source: &DataSource) -> bool {
    let keys: Vec<&Column> = source.schema.key_columns().collect();
    matches!(e, DfExpr::Column(c) if keys.len() == 1 && c.name == keys[0].name)
}

/// Plans `SELECT ... FROM a JOIN b ...`.
/// `partitions_of` gives a topic's partition count.
pub fn plan_join(q: &Query, catalog: &Catalog, purpose: Purpose, sink_name: Option<&str>, partitions_of: &dyn Fn(&str) -> Option<i32>) -> Result<JoinPlan, SqlError> {
    let Relation::Join { left, right, kind, on, within } = &q.from else {
        return Err(SqlError::internal("plan_join called without a join"));
    };
    let (lsrc, lalias) = source_of(left, catalog, q.pos)?;
    let (rsrc, ralias) = source_of(right, catalog, q.pos)?;
    if lalias == ralias {
        return Err(SqlError::at(q.pos, format!("Can not join '{lalias}' to '{ralias}': self joins need different aliases"), Some("give each side its own alias, e.g. FROM s a JOIN s b ...".into())));
    }
    if q.window.is_some() || !q.group_by.is_empty() || q.having.is_some() {
        return Err(SqlError::at(q.pos, "aggregations over joins are not supported yet", Some("create the join with CREATE STREAM/TABLE ... AS SELECT, then aggregate its result".into())));
    }
    if q.partition_by.iter().len() > 0 {
        return Err(SqlError::at(q.pos, "PARTITION BY on a join is not supported yet", Some("the result is keyed by the join key; repartition it in a second query".into())));
    }
    let shape = match (lsrc.kind, rsrc.kind) {
        (SourceKind::Stream, SourceKind::Stream) => JoinShape::StreamStream,
        (SourceKind::Stream, SourceKind::Table) => JoinShape::StreamTable,
        (SourceKind::Table, SourceKind::Table) => JoinShape::TableTable,
        (SourceKind::Table, SourceKind::Stream) => {
            return Err(SqlError::at(
                q.pos,
                format!("Invalid join order: table-stream joins are not supported; only stream-table joins. Got {lalias} {} JOIN {ralias}.", join_kind_sql(*kind)),
                Some(format!("put the stream first: FROM {ralias} ... JOIN {lalias}")),
            ));
        }
    };
    let kind = *kind;
    let window = match (shape, within) {
        (JoinShape::StreamStream, None) => {
            return Err(SqlError::at(
                q.pos,
                "Stream-Stream joins must have a WITHIN clause specified. None was provided",
                Some("add WITHIN after the joined stream, e.g. JOIN b WITHIN 1 HOUR ON ... or WITHIN (10 SECONDS, 1 MINUTE)".into()),
            ));
        }
        (JoinShape::StreamStream, Some(w)) => Some(JoinWindow {
            before_ms: w.before.millis,
            after_ms: w.after.millis,
            grace_ms: w.grace.map(|g| g.millis).unwrap_or(DEFAULT_JOIN_GRACE_MS),
            explicit_grace: w.grace.is_some(),
        }),
        (_, Some(_)) => {
            return Err(SqlError::at(
                q.pos,
                format!("A window definition was provided for a {} join. These joins are not windowed", if shape == JoinShape::StreamTable { "Stream-Table" } else { "Table-Table" }),
                Some("remove WITHIN: only stream-stream joins take a window".into()),
            ));
        }
        (_, None) => None,
    };
    if shape == JoinShape::StreamTable && matches!(kind, JoinKind::Right | JoinKind::Full) {
        return Err(SqlError::at(
            q.pos,
            format!("Invalid join type: {} joins of a stream to a table are not supported", if kind == JoinKind::Right { "RIGHT" } else { "FULL OUTER" }),
            Some("stream-table joins are INNER or LEFT; the table side is looked up for each stream row".into()),
        ));
    }

    let lscope = side_scope(&lsrc, &lalias)?;
    let rscope = side_scope(&rsrc, &ralias)?;
    let (lexpr, rexpr) = split_condition(on, &lscope, &rscope, (&lalias, &ralias))?;
    let lbound = Binder { scope: &lscope }.bind(lexpr)?;
    let rbound = Binder { scope: &rscope }.bind(rexpr)?;
    let lkey = compile(lbound.clone(), &lscope)?;
    let rkey = compile(rbound.clone(), &rscope)?;
    if lkey.ty != rkey.ty {
        return Err(SqlError::at(
            on.pos,
            format!("Invalid join condition: types don't match. Got {lexpr}{{{}}} = {rexpr}{{{}}}", lkey.ty, rkey.ty),
            Some("CAST one side to the other's type in the ON clause".into()),
        ));
    }
    let lkeyed = is_source_key(&lbound, &lsrc);
    let rkeyed = is_source_key(&rbound, &rsrc);
    if shape != JoinShape::StreamStream && !rkeyed {
        return Err(SqlError::at(
            rexpr.pos,
            format!("Invalid join condition: {ralias} is a table and must be joined on its PRIMARY KEY, not {rexpr}"),
            Some(format!("join on {ralias}.{}", rsrc.schema.key_columns().map(|c| c.name.clone()).collect::<Vec<_>>().join(", "))),
        ));
    }
    if shape == JoinShape::TableTable && !lkeyed {
        return Err(SqlError::at(
            lexpr.pos,
            format!("foreign-key joins (a column of {lalias} to the key of {ralias}) are not supported yet"),
            Some(format!("join the tables on their primary keys, {lalias}.{} = {ralias}.{}", lsrc.schema.key_columns().map(|c| c.name.clone()).collect::<Vec<_>>().join(", "), rsrc.schema.key_columns().map(|c| c.name.clone()).collect::<Vec<_>>().join(", "))),
        ));
    }
    let lparts = topic_partitions(partitions_of, &lsrc)?;
    let rparts = topic_partitions(partitions_of, &rsrc)?;
    // Co-partitioning: sides keyed by the join key are read directly when their topics
    // have the same partition count and key format; other sides go through a topic.
    let same_format = lsrc.key_format.kind == rsrc.key_format.kind;
    let (lrep, rrep, partitions) = match (lkeyed, rkeyed) {
        (true, true) if lparts == rparts && same_format => (false, false, lparts),
        (true, true) if shape == JoinShape::StreamStream => (false, true, lparts),
        (true, true) => {
            return Err(SqlError::at(
                q.pos,
                if lparts != rparts {
                    format!("Can't join `{lalias}` with `{ralias}` since the number of partitions don't match. `{lalias}` partitions = {lparts}; `{ralias}` partitions = {rparts}. Please repartition either one so that the number of partitions match.")
                } else {
                    format!("Can't join `{lalias}` with `{ralias}`: their keys are serialized with different formats ({} and {})", lsrc.key_format.kind.name(), rsrc.key_format.kind.name())
                },
                Some("create a copy of one side with the other's partition count and KEY_FORMAT (CREATE STREAM/TABLE ... WITH (PARTITIONS=n, KEY_FORMAT='...') AS SELECT ...)".into()),
            ));
        }
        (true, false) => (false, true, lparts),
        (false, true) => (true, false, rparts),
        (false, false) => (true, true, lparts),
    };
    let key_type = lkey.ty.clone();
    let lside = JoinSide { fields: side_fields(&lsrc, &lalias), source: lsrc, alias: lalias, key: lkey, keyed_by_join_key: lkeyed, repartition: lrep };
    let rside = JoinSide { fields: side_fields(&rsrc, &ralias), source: rsrc, alias: ralias, key: rkey, keyed_by_join_key: rkeyed, repartition: rrep };
    let scope = joined_scope(&lside, &rside, &key_type)?;
    let binder = Binder { scope: &scope };

    let filter = match &q.where_ {
        Some(w) => {
            let c = compile(binder.bind(w)?, &scope)?;
            if c.ty != SqlType::Boolean {
                return Err(SqlError::at(w.pos, format!("WHERE needs a BOOLEAN condition, found {}", c.ty), None));
            }
            Some(c)
        }
        None => None,
    };
    // The join expressions as they bind in the joined scope (to find them in SELECT).
    let join_exprs = [binder.bind(lexpr)?, binder.bind(rexpr)?];
    let mut items: Vec<(Expr, Option<String>)> = Vec::new();
    for item in &q.select {
        match item {
            SelectItem::Wildcard { qualifier, pos } => {
                let sides: Vec<&JoinSide> = match qualifier {
                    None => vec![&lside, &rside],
                    Some(qual) => {
                        let s = [&lside, &rside].into_iter().find(|s| &s.alias == qual || &s.source.name == qual);
                        vec![s.ok_or_else(|| SqlError::at(*pos, format!("unknown source '{qual}' in {qual}.*"), None))?]
                    }
                };
                for s in sides {
                    for c in s.source.schema.columns() {
                        let e = Expr::new(ExprKind::Column { qualifier: Some(s.alias.clone()), name: c.name.clone() }, *pos);
                        items.push((e, Some(format!("{}_{}", s.alias, c.name))));
                    }
                }
            }
            SelectItem::Expr { expr, alias } => {
                let name = alias.as_ref().map(|a| a.value.clone()).or_else(|| match &expr.kind {
                    // A qualified column is named ALIAS_COLUMN, as ksqlDB does in joins.
                    ExprKind::Column { qualifier: Some(_), .. } => match binder.bind(expr) {
                        Ok(DfExpr::Column(c)) => Some(c.name.clone()),
                        _ => natural_name(expr),
                    },
                    _ => natural_name(expr),
                });
                items.push((expr.clone(), name));
            }
        }
    }
    let mut generated = 0;
    let mut columns: Vec<OutputColumn> = Vec::new();
    let mut key_found = false;
    for (e, name) in items {
        let name = match name {
            Some(n) => n,
            None => loop {
                let candidate = format!("KSQL_COL_{generated}");
                generated += 1;
                if !columns.iter().any(|c| c.name == candidate) {
                    break candidate;
                }
            },
        };
        if columns.iter().any(|c| c.name == name) {
            return Err(SqlError::at(e.pos, format!("duplicate column name '{name}' in the SELECT list"), Some("give one of them an alias with AS".into())));
        }
        let bound = binder.bind(&e)?;
        let is_join_key = join_exprs.contains(&bound);
        // The first projection of a join expression becomes the key, holding the join key
        // (set on both matched and unmatched rows).
        let (expr, kind) = if is_join_key && !key_found {
            key_found = true;
            (compile(DfExpr::Column(datafusion::common::Column::new_unqualified(JOIN_KEY_FIELD)), &scope)?, ColumnKind::Key)
        } else {
            (compile(bound, &scope)?, ColumnKind::Value)
        };
        columns.push(OutputColumn { name, expr, kind });
    }
    if purpose == Purpose::Persistent && !key_found {
        let sink = sink_name.unwrap_or("the result");
        return Err(SqlError::at(
            q.pos,
            format!("The query used to build `{sink}` must include the join expressions {lexpr} or {rexpr} in its projection (eg, SELECT {lexpr}...)."),
            Some("the join key becomes the result's key column".into()),
        ));
    }
    if purpose == Purpose::Persistent {
        if q.limit.is_some() {
            return Err(SqlError::at(q.pos, "LIMIT is not allowed in persistent queries", Some("remove LIMIT; it applies to SELECT ... EMIT CHANGES only".into())));
        }
        if q.emit == Some(Emit::Final) {
            return Err(SqlError::at(q.pos, "EMIT FINAL is only valid for windowed aggregations", Some("use EMIT CHANGES".into())));
        }
    }
    let output = LogicalSchema::new(columns.iter().map(|c| Column::new(c.name.clone(), c.expr.ty.clone(), c.kind)).collect());
    Ok(JoinPlan { left: lside, right: rside, kind, shape, window, key_type, partitions, joined_schema: scope.arrow_schema.clone(), filter, columns, output, emit: q.emit, limit: q.limit })
}

fn topic_partitions(partitions_of: &dyn Fn(&str) -> Option<i32>, source: &DataSource) -> Result<i32, SqlError> {
    partitions_of(&source.topic).ok_or_else(|| SqlError::invalid(format!("the topic '{}' of {} does not exist", source.topic, source.name), Some("recreate the topic or drop the source".into())))
}
