//! Plans joins of two sources: checks the join is one ksqlDB can run (equality on one
//! expression of each side, WITHIN for stream-stream joins, stream-table joins INNER or
//! LEFT, table-table joins on primary keys or foreign keys), decides which sides must be
//! repartitioned by the join key and names the joined columns (`ALIAS_COLUMN`);
//! `join_output` compiles the WHERE and the SELECT list over the joined row.

use crate::catalog::WindowType;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::logical_expr::Expr as DfExpr;

use super::SqlError;
use super::ast::{BinaryOp, Emit, Expr, ExprKind, JoinKind, Query, Relation};
use super::binder::{Binder, Scope, ScopeColumn};
use super::compile::{CompiledExpr, compile};
use super::planner::OutputColumn;
use crate::catalog::types::{ColumnKind, LogicalSchema, ROWTIME, SqlType};
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
    /// How long a buffered row is kept after the latest time its side has seen (Kafka
    /// Streams' join store retention: the window's size plus grace).
    pub fn buffer_retention_ms(&self) -> i64 {
        self.before_ms.saturating_add(self.after_ms).saturating_add(self.grace_ms)
    }
}

/// Where a join side's rows come from.
#[derive(Debug, Clone)]
pub enum SideInputKind {
    /// A stream or table of the catalog.
    Source(Arc<DataSource>),
    /// The result of the joins before it in an N-way join, written by that stage to an
    /// internal topic keyed by this join's key.
    Stage(Box<JoinPlan>),
}

/// A column a join side contributes to the joined row.
#[derive(Debug, Clone)]
pub struct SideColumn {
    /// Aliases and source names that qualify it.
    pub qualifiers: Vec<String>,
    pub name: String,
    /// Its field in the joined row (`ALIAS_NAME`).
    pub field: String,
    pub ty: SqlType,
    /// A pseudo column of a source (ROWTIME, ROWPARTITION, ROWOFFSET): only reachable
    /// qualified (`o.ROWTIME`), and not part of `*`.
    pub pseudo: bool,
}

/// The pseudo columns each source side of a join carries, in the order its decoded
/// batches end with them.
/// The window bounds of a windowed source's rows, as its join side's columns.
pub const WINDOW_START: &str = "WINDOWSTART";
pub const WINDOW_END: &str = "WINDOWEND";

pub const SIDE_PSEUDO_COLUMNS: [(&str, SqlType); 3] =
    [(ROWTIME, SqlType::Bigint), (crate::catalog::types::ROWPARTITION, SqlType::Int), (crate::catalog::types::ROWOFFSET, SqlType::Bigint)];

/// One input of a join.
#[derive(Debug, Clone)]
pub struct JoinSide {
    pub input: SideInputKind,
    pub kind: SourceKind,
    /// The alias (or source name), or the joins a stage stands for, for messages.
    pub alias: String,
    pub columns: Vec<SideColumn>,
    /// The join expression, over the side's batches (a source's rows, or the previous
    /// stage's joined rows).
    pub key: CompiledExpr,
    /// The join expression is the side's key: no repartition needed by itself.
    pub keyed_by_join_key: bool,
    /// Rows go through an internal topic keyed by the join key.
    pub repartition: bool,
    /// (joined-row field name, type) of the side's columns.
    pub fields: Vec<(String, DataType)>,
}

impl JoinSide {
    pub fn is_table(&self) -> bool {
        self.kind == SourceKind::Table
    }

    /// The catalog source, for a side that reads one.
    pub fn source(&self) -> Option<&Arc<DataSource>> {
        match &self.input {
            SideInputKind::Source(s) => Some(s),
            SideInputKind::Stage(_) => None,
        }
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
    /// The ON clause's two expressions as written (left side's, right side's).
    pub key_exprs: [Expr; 2],
    /// A foreign-key join (a column of the left table to the right table's key): what
    /// identifies a left row — a source's primary key columns over its records, or, when
    /// the left side is another join, that join's result key over its joined rows (then
    /// the earlier stage evaluates it). The result is keyed by it.
    pub left_row_key: Option<Vec<CompiledExpr>>,
    /// A foreign-key join's result key: the joined row's fields holding the left row's
    /// identity, with their column names.
    pub left_identity: Vec<(String, String)>,
    /// The final stage's WHERE, SELECT list and result (empty for earlier stages).
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

    /// The catalog sources read, left to right.
    pub fn sources(&self) -> Vec<Arc<DataSource>> {
        let mut out = Vec::new();
        for side in [&self.left, &self.right] {
            match &side.input {
                SideInputKind::Source(s) => out.push(s.clone()),
                SideInputKind::Stage(p) => out.extend(p.sources()),
            }
        }
        out
    }

    pub fn source_names(&self) -> Vec<String> {
        self.sources().iter().map(|s| s.name.clone()).collect()
    }

    /// The joined row's fields that are columns (not the join key or ROWTIME).
    pub fn joined_fields(&self) -> Vec<(String, DataType)> {
        self.left.fields.iter().chain(&self.right.fields).cloned().collect()
    }
}

pub fn is_join_query(q: &Query) -> bool {
    matches!(q.from, Relation::Join { .. })
}

fn topic_partitions(partitions_of: &dyn Fn(&str) -> Option<i32>, source: &DataSource) -> Result<i32, SqlError> {
    partitions_of(&source.topic).ok_or_else(|| {
        SqlError::invalid(format!("the topic '{}' of {} does not exist", source.topic, source.name), Some("recreate the topic or drop the source".into()))
    })
}

/// A join input before its key is known.
struct SideDraft {
    input: SideInputKind,
    kind: SourceKind,
    alias: String,
    columns: Vec<SideColumn>,
    /// Scope over the side's batches.
    scope: Scope,
    /// Partitions and key format of a source (a stage is always repartitioned).
    source_layout: Option<(i32, crate::format::FormatKind)>,
    /// Expressions (bound in `scope`) that are the side's key: a source's key column, or a
    /// stage's join expressions.
    keys: Vec<DfExpr>,
    /// A source's PRIMARY KEY / KEY columns, all of them (bound in `scope`).
    primary_key: Vec<DfExpr>,
}

/// A scope over `schema` whose columns are `columns` (qualified, and unqualified where the
/// name is unique), plus ROWTIME when the schema has it.
fn scope_of(columns: &[SideColumn], schema: SchemaRef) -> Result<Scope, SqlError> {
    let mut scope = Scope::single(&[], schema.clone())?;
    let mut out = Vec::new();
    for c in columns {
        for q in &c.qualifiers {
            out.push(ScopeColumn { qualifier: Some(q.clone()), name: c.name.clone(), field: c.field.clone(), ty: c.ty.clone() });
        }
        if !c.pseudo && columns.iter().filter(|o| o.name == c.name).count() == 1 {
            out.push(ScopeColumn { qualifier: None, name: c.name.clone(), field: c.field.clone(), ty: c.ty.clone() });
        }
    }
    if schema.index_of(ROWTIME).is_ok() {
        out.push(ScopeColumn { qualifier: None, name: ROWTIME.into(), field: ROWTIME.into(), ty: SqlType::Bigint });
    }
    scope.columns = out;
    Ok(scope)
}

fn draft(rel: &Relation, catalog: &Catalog, partitions_of: &dyn Fn(&str) -> Option<i32>) -> Result<SideDraft, SqlError> {
    match rel {
        Relation::Source { name, alias } => {
            let source = catalog.source(&name.value).ok_or_else(|| {
                SqlError::at(
                    name.pos,
                    format!("{} does not exist", name.value),
                    Some("SHOW STREAMS and SHOW TABLES list what exists; names are case-insensitive unless quoted".into()),
                )
            })?;
            let alias = alias.as_ref().map(|a| a.value.clone()).unwrap_or_else(|| name.value.clone());
            let mut qualifiers = vec![alias.clone()];
            if source.name != alias {
                qualifiers.push(source.name.clone());
            }
            let mut columns: Vec<SideColumn> = source
                .schema
                .columns()
                .iter()
                .map(|c| SideColumn {
                    qualifiers: qualifiers.clone(),
                    name: c.name.clone(),
                    field: format!("{alias}_{}", c.name),
                    ty: c.ty.clone(),
                    pseudo: false,
                })
                .collect();
            // A windowed source's rows carry their window, after the key columns, as
            // `s.WINDOWSTART` and `s.WINDOWEND` (ksqlDB's `S_WINDOWSTART` in `SELECT *`).
            if source.window.is_some() {
                let at = source.schema.key_count();
                for (i, name) in [WINDOW_START, WINDOW_END].into_iter().enumerate() {
                    let column = SideColumn {
                        qualifiers: qualifiers.clone(),
                        name: name.to_string(),
                        field: format!("{alias}_{name}"),
                        ty: SqlType::Bigint,
                        pseudo: false,
                    };
                    columns.insert(at + i, column);
                }
            }
            // Each source's pseudo columns travel with its rows, so `o.ROWTIME` is that
            // source's record time (the joined row's ROWTIME is the join's).
            for (name, ty) in SIDE_PSEUDO_COLUMNS {
                columns.push(SideColumn { qualifiers: qualifiers.clone(), name: name.to_string(), field: format!("{alias}_{name}"), ty, pseudo: true });
            }
            let scope = Scope::single(&qualifiers, source.query_schema())?;
            let primary_key: Vec<DfExpr> =
                source.schema.key_columns().map(|c| DfExpr::Column(datafusion::common::Column::new_unqualified(c.name.clone()))).collect();
            let keys = if primary_key.len() == 1 { primary_key.clone() } else { Vec::new() };
            let source_layout = Some((topic_partitions(partitions_of, &source)?, source.key_format.kind));
            Ok(SideDraft { kind: source.kind, input: SideInputKind::Source(source), alias, columns, scope, source_layout, keys, primary_key })
        }
        Relation::Join { .. } => {
            let inner = plan_joins(rel, catalog, partitions_of)?;
            let columns: Vec<SideColumn> = inner.left.columns.iter().chain(&inner.right.columns).cloned().collect();
            let scope = scope_of(&columns, inner.joined_schema.clone())?;
            let binder = Binder { scope: &scope };
            let keys = inner.key_exprs.iter().filter_map(|e| binder.bind(e).ok()).collect();
            let alias = format!("({} JOIN {})", inner.left.alias, inner.right.alias);
            Ok(SideDraft {
                kind: inner.result_kind(),
                alias,
                columns,
                scope,
                source_layout: None,
                keys,
                primary_key: Vec::new(),
                input: SideInputKind::Stage(Box::new(inner)),
            })
        }
    }
}

/// Plans the joins of a FROM clause, left-deep: `a JOIN b ... JOIN c ...` joins the result
/// of `a JOIN b` with `c`. The returned plan has no SELECT list yet.
pub(super) fn plan_joins(from: &Relation, catalog: &Catalog, partitions_of: &dyn Fn(&str) -> Option<i32>) -> Result<JoinPlan, SqlError> {
    let Relation::Join { left, right, kind, on, within } = from else {
        return Err(SqlError::PlanInvariant("plan_joins called without a join"));
    };
    if matches!(right.as_ref(), Relation::Join { .. }) {
        return Err(SqlError::at(
            on.pos,
            "a join on the right of JOIN is not supported",
            Some("write N-way joins left to right: FROM a JOIN b ON ... JOIN c ON ...".into()),
        ));
    }
    let l = draft(left, catalog, partitions_of)?;
    let r = draft(right, catalog, partitions_of)?;
    let (lalias, ralias) = (l.alias.clone(), r.alias.clone());
    if let SideInputKind::Source(rs) = &r.input {
        let left_sources = match &l.input {
            SideInputKind::Source(ls) => vec![ls.name.clone()],
            SideInputKind::Stage(plan) => plan.source_names(),
        };
        if left_sources.contains(&rs.name) {
            let message = match &l.input {
                SideInputKind::Source(_) => format!("Can not join '{0}' to '{0}': self joins are not yet supported.", rs.name),
                SideInputKind::Stage(_) => format!("N-way joins do not support multiple occurrences of the same source. Source: '{}'", rs.name),
            };
            return Err(SqlError::at(on.pos, message, Some("join a copy of the source, made with CREATE STREAM/TABLE ... AS SELECT".into())));
        }
    }
    let rquals = &r.columns.first().map(|c| c.qualifiers.clone()).unwrap_or_default();
    if l.columns.iter().any(|c| c.qualifiers.iter().any(|q| rquals.contains(q))) {
        return Err(SqlError::at(
            on.pos,
            format!("Can not join '{lalias}' to '{ralias}': each source in a join needs its own alias"),
            Some("give each side its own alias, e.g. FROM s a JOIN s b ...".into()),
        ));
    }
    let pos = on.pos;
    let (lexpr, rexpr) = split_condition(on, &l.scope, &r.scope, (&lalias, &ralias))?;
    let shape = match (l.kind, r.kind) {
        (SourceKind::Stream, SourceKind::Stream) => JoinShape::StreamStream,
        (SourceKind::Stream, SourceKind::Table) => JoinShape::StreamTable,
        (SourceKind::Table, SourceKind::Table) => JoinShape::TableTable,
        (SourceKind::Table, SourceKind::Stream) => {
            return Err(SqlError::at(
                pos,
                {
                    // ksqlDB names an N-way join's left side by its first source.
                    let lname = match &l.input {
                        SideInputKind::Stage(plan) => plan.source_names().into_iter().next().unwrap_or_else(|| lalias.clone()),
                        SideInputKind::Source(_) => lalias.clone(),
                    };
                    format!(
                        "Invalid join order: table-stream joins are not supported; only stream-table joins. Got {lname} {} JOIN {ralias}.",
                        join_kind_sql(*kind)
                    )
                },
                Some(format!("put the stream first: FROM {ralias} ... JOIN {lalias}")),
            ));
        }
    };
    let kind = *kind;
    let window = match (shape, within) {
        (JoinShape::StreamStream, None) => {
            return Err(SqlError::at(
                pos,
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
                pos,
                format!(
                    "A window definition was provided for a {} join. These joins are not windowed",
                    if shape == JoinShape::StreamTable { "Stream-Table" } else { "Table-Table" }
                ),
                Some("remove WITHIN: only stream-stream joins take a window".into()),
            ));
        }
        (_, None) => None,
    };
    if shape == JoinShape::StreamTable && matches!(kind, JoinKind::Right | JoinKind::Full) {
        return Err(SqlError::at(
            pos,
            format!(
                "Invalid join type: {} join not supported for stream-table join. Got {lalias} {} JOIN {ralias}.",
                if kind == JoinKind::Right { "right" } else { "full-outer" },
                join_kind_sql(kind)
            ),
            Some("stream-table joins are INNER or LEFT; the table side is looked up for each stream row".into()),
        ));
    }
    let lbound = Binder { scope: &l.scope }.bind(lexpr)?;
    let rbound = Binder { scope: &r.scope }.bind(rexpr)?;
    let lkey = compile(lbound.clone(), &l.scope)?;
    let rkey = compile(rbound.clone(), &r.scope)?;
    if lkey.ty != rkey.ty {
        return Err(SqlError::at(
            on.pos,
            format!("Invalid join condition: types don't match. Got {}{{{}}} = {}{{{}}}.", qualified(lexpr, &l), lkey.ty, qualified(rexpr, &r), rkey.ty),
            Some("CAST one side to the other's type in the ON clause".into()),
        ));
    }
    let lkeyed = l.keys.contains(&lbound);
    let rkeyed = r.keys.contains(&rbound);
    check_windows(&l, &r, lkeyed && rkeyed, pos)?;
    let key_names = |d: &SideDraft| d.keys.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(" or ");
    if shape != JoinShape::StreamStream && !rkeyed {
        // The condition as written (either operand order).
        let (lq, rq) = (qualified(lexpr, &l), qualified(rexpr, &r));
        let written = if matches!(&on.kind, ExprKind::Binary { left, .. } if std::ptr::eq(left.as_ref(), lexpr)) {
            format!("{lq} = {rq}")
        } else {
            format!("{rq} = {lq}")
        };
        let message = if shape == JoinShape::TableTable {
            format!("Invalid join condition: table-table joins require to join on the primary key of the right input table. Got {written}.")
        } else {
            format!("Invalid join condition: stream-table joins require to join on the table's primary key. Got {written}.")
        };
        return Err(SqlError::at(rexpr.pos, message, Some(format!("join on {ralias}.{}", key_names(&r)))));
    }
    // A table-table join not on the left key is a foreign-key join: INNER or LEFT, with a
    // table of the catalog on the left.
    let foreign_key = shape == JoinShape::TableTable && !lkeyed;
    let mut left_row_key = None;
    let mut left_identity = Vec::new();
    if foreign_key {
        if matches!(kind, JoinKind::Right | JoinKind::Full) {
            return Err(SqlError::at(
                pos,
                format!("{} OUTER JOIN on a foreign key is not supported", if kind == JoinKind::Right { "RIGHT" } else { "FULL" }),
                Some("foreign-key joins are INNER or LEFT".into()),
            ));
        }
        let field_of = |e: &DfExpr| match e {
            DfExpr::Column(c) => l.columns.iter().find(|s| s.field == c.name || (s.name == c.name && !s.pseudo)).map(|s| (s.field.clone(), s.name.clone())),
            _ => None,
        };
        // What identifies a left row, and where the joined row holds it.
        let (identity, fields): (Vec<DfExpr>, Vec<Option<(String, String)>>) = match &l.input {
            SideInputKind::Source(_) => (l.primary_key.clone(), l.primary_key.iter().map(field_of).collect()),
            // Another table-table join: its rows are keyed by its join key (which its left
            // key column holds), or, for a foreign-key join, by its left table's key.
            SideInputKind::Stage(inner) if inner.left_row_key.is_none() => {
                (vec![DfExpr::Column(datafusion::common::Column::new_unqualified(JOIN_KEY_FIELD))], l.keys.first().map(field_of).into_iter().collect())
            }
            SideInputKind::Stage(inner) => {
                let fields: Vec<Option<(String, String)>> = inner.left_identity.iter().map(|(f, n)| Some((f.clone(), n.clone()))).collect();
                (fields.iter().flatten().map(|(f, _)| DfExpr::Column(datafusion::common::Column::new_unqualified(f.clone()))).collect(), fields)
            }
        };
        let fields: Option<Vec<(String, String)>> = fields.into_iter().collect();
        let Some(fields) = fields.filter(|f| !f.is_empty() && f.len() == identity.len()) else {
            return Err(SqlError::at(
                lexpr.pos,
                format!("foreign-key joins need a table on the left whose rows have a key; {lalias} has none"),
                Some(format!("join {ralias} to a table of the catalog, or to a table-table join, on the foreign key")),
            ));
        };
        left_row_key = Some(identity.iter().map(|k| compile(k.clone(), &l.scope)).collect::<Result<Vec<_>, _>>()?);
        left_identity = fields;
    }
    // Co-partitioning: sources keyed by the join key are read directly when their topics
    // have the same partition count and key format; other sides go through a topic (a
    // stage always writes one).
    let (lrep, rrep, partitions) = match (l.source_layout.filter(|_| lkeyed), r.source_layout.filter(|_| rkeyed)) {
        // One task sees every left row and every right row (see exec::join).
        _ if foreign_key => (true, true, 1),
        (Some((lp, lf)), Some((rp, rf))) if lp == rp && lf == rf => (false, false, lp),
        (Some((lp, _)), Some(_)) if shape == JoinShape::StreamStream => (false, true, lp),
        // Keys in different formats: the right side is re-keyed through a topic, as ksqlDB
        // does; the result keeps the left side's key format.
        (Some((lp, _)), Some((rp, _))) if lp == rp => (false, true, lp),
        (Some((lp, _)), Some((rp, _))) => {
            return Err(SqlError::at(
                pos,
                format!(
                    "Can't join `{lalias}` with `{ralias}` since the number of partitions don't match. `{lalias}` partitions = {lp}; \
                    `{ralias}` partitions = {rp}. Please repartition either one so that the number of partitions match."
                ),
                Some(
                    "create a copy of one side with the other's partition count and KEY_FORMAT (CREATE STREAM/TABLE ... WITH (PARTITIONS=n, \
                    KEY_FORMAT='...') AS SELECT ...)"
                        .into(),
                ),
            ));
        }
        (Some((lp, _)), None) => (false, true, lp),
        (None, Some((rp, _))) => (true, false, rp),
        (None, None) => {
            let p = match (&l.input, &r.input, l.source_layout, r.source_layout) {
                (SideInputKind::Stage(inner), _, _, _) => inner.partitions,
                (_, _, Some((lp, _)), _) => lp,
                (_, _, _, Some((rp, _))) => rp,
                _ => 1,
            };
            (true, true, p)
        }
    };
    let key_type = lkey.ty.clone();
    let side = |d: SideDraft, key: CompiledExpr, keyed: bool, repartition: bool| JoinSide {
        fields: d.columns.iter().map(|c| (c.field.clone(), c.ty.to_arrow())).collect(),
        input: d.input,
        kind: d.kind,
        alias: d.alias,
        columns: d.columns,
        key,
        keyed_by_join_key: keyed,
        repartition,
    };
    let lside = side(l, lkey, lkeyed, lrep);
    let rside = side(r, rkey, rkeyed, rrep);
    let scope = joined_scope(&lside, &rside, &key_type)?;
    Ok(JoinPlan {
        left: lside,
        right: rside,
        kind,
        shape,
        window,
        key_type,
        partitions,
        joined_schema: scope.arrow_schema.clone(),
        key_exprs: [lexpr.clone(), rexpr.clone()],
        left_row_key,
        left_identity,
        filter: None,
        columns: Vec::new(),
        output: LogicalSchema::new(Vec::new()),
        emit: None,
        limit: None,
    })
}

/// The scope of the joined row: left fields, right fields, the join key, ROWTIME.
pub(super) fn joined_scope(left: &JoinSide, right: &JoinSide, key_type: &SqlType) -> Result<Scope, SqlError> {
    let mut fields: Vec<Field> = left.fields.iter().chain(&right.fields).map(|(n, t)| Field::new(n, t.clone(), true)).collect();
    fields.push(Field::new(JOIN_KEY_FIELD, key_type.to_arrow(), true));
    fields.push(Field::new(ROWTIME, DataType::Int64, false));
    let columns: Vec<SideColumn> = left.columns.iter().chain(&right.columns).cloned().collect();
    scope_of(&columns, Arc::new(Schema::new(fields)))
}

/// Splits `ON a = b` into (left expression, right expression).
fn split_condition<'a>(on: &'a Expr, left: &Scope, right: &Scope, names: (&str, &str)) -> Result<(&'a Expr, &'a Expr), SqlError> {
    // A column nothing in FROM can qualify is the first mistake ksqlDB reports.
    if let Some(e) = unknown_qualifier(on, left, right) {
        return Err(e);
    }
    if let ExprKind::Binary { op: BinaryOp::And, .. } = &on.kind {
        return Err(SqlError::at(
            on.pos,
            format!("Invalid join condition: joins on multiple conditions are not yet supported. Got {on}."),
            Some("join on one equality and filter the rest in WHERE".into()),
        ));
    }
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
            (false, false) if let Some(err) = unresolved(e, left, right) => Err(err),
            (true, true) if matches!(&e.kind, ExprKind::Column { qualifier: None, .. }) => Err(SqlError::at(
                e.pos,
                format!("Column '{e}' is ambiguous. Could be {}.{e} or {}.{e}.", names.0, names.1),
                Some("qualify the column with its source's name or alias".into()),
            )),
            // ksqlDB's wording (including its spelling of "comparision").
            _ => Err(SqlError::at(
                e.pos,
                format!(
                    "Invalid comparison expression '{e}' in join '{on}'. Each side of the join comparision must contain references from exactly one source."
                ),
                Some(format!("compare an expression over {}'s columns with one over {}'s; qualify a column both have", names.0, names.1)),
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

/// ksqlDB's rules for joining windowed sources: both sides windowed alike (sessions with
/// sessions, time windows of one size with each other), joined on their keys.
fn check_windows(l: &SideDraft, r: &SideDraft, on_keys: bool, pos: super::ast::Pos) -> Result<(), SqlError> {
    let window = |d: &SideDraft| match &d.input {
        SideInputKind::Source(s) => s.window.map(|w| (w, s.window_size_ms, s.name.clone())),
        SideInputKind::Stage(_) => None,
    };
    let (lw, rw) = (window(l), window(r));
    let describe = |w: &Option<(WindowType, Option<i64>, String)>, d: &SideDraft| match w {
        Some((t, _, name)) => format!("`{name}` is {} windowed", t.name()),
        None => format!("`{}` is not windowed", d.alias),
    };
    match (&lw, &rw) {
        (None, None) => Ok(()),
        (Some(_), None) | (None, Some(_)) => {
            Err(SqlError::at(pos, format!("Can not join windowed source to non-windowed source.\n{}\n{}", describe(&lw, l), describe(&rw, r)), None))
        }
        (Some((lt, lsize, _)), Some((rt, rsize, _))) => {
            let session = |t: &WindowType| *t == WindowType::Session;
            if session(lt) != session(rt) {
                return Err(SqlError::at(
                    pos,
                    format!(
                        "Incompatible windowed sources.\nLeft source: {}\nRight source: {}\nSession windowed sources can only be joined to other \
                            session windowed sources, and may still not result in expected behaviour as session bounds must be an exact match for the \
                                join to work\nHopping and tumbling windowed sources can only be joined to other hopping and tumbling windowed sources",
                        lt.name(),
                        rt.name()
                    ),
                    None,
                ));
            }
            if !on_keys && l.kind == SourceKind::Table && r.kind == SourceKind::Table {
                return Err(SqlError::at(pos, "Foreign-key table-table joins are not supported on windowed tables.", None));
            }
            if !on_keys || lsize != rsize {
                return Err(SqlError::at(
                    pos,
                    "Implicit repartitioning of windowed sources is not supported. See https://github.com/confluentinc/ksql/issues/4385.",
                    None,
                ));
            }
            Ok(())
        }
    }
}

/// The first column of an ON operand that neither side has, in ksqlDB's words.
fn unresolved(e: &Expr, left: &Scope, right: &Scope) -> Option<SqlError> {
    e.find_map(&mut |x| {
        let ExprKind::Column { qualifier, name } = &x.kind else { return None };
        let q = qualifier.as_deref();
        if left.resolve(q, name, x.pos).is_ok() || right.resolve(q, name, x.pos).is_ok() {
            return None;
        }
        Some(match q {
            Some(q) => {
                unknown_qualifier(x, left, right).unwrap_or_else(|| SqlError::at(x.pos, format!("JOIN ON column '{q}.{name}' cannot be resolved."), None))
            }
            None => SqlError::at(x.pos, format!("JOIN ON column '{name}' cannot be resolved."), None),
        })
    })
}

/// The first column qualified by a name that is neither side's source or alias.
fn unknown_qualifier(e: &Expr, left: &Scope, right: &Scope) -> Option<SqlError> {
    e.find_map(&mut |x| match &x.kind {
        ExprKind::Column { qualifier: Some(q), .. } if !left.knows_qualifier(q) && !right.knows_qualifier(q) => {
            Some(SqlError::at(x.pos, format!("Failed to prepare statement: '{q}' is not a valid stream/table name or alias."), None))
        }
        _ => None,
    })
}

/// An ON operand as ksqlDB prints it: its bare columns qualified by their source.
fn qualified(e: &Expr, side: &SideDraft) -> String {
    fn qualify(e: &Expr, side: &SideDraft) -> Result<Expr, std::convert::Infallible> {
        match &e.kind {
            ExprKind::Column { qualifier: None, name } => {
                let q = side.columns.iter().find(|c| &c.name == name).and_then(|c| c.qualifiers.last().cloned()).unwrap_or_else(|| side.alias.clone());
                Ok(Expr::new(ExprKind::Column { qualifier: Some(q), name: name.clone() }, e.pos))
            }
            _ => e.map_children(&mut |c| qualify(c, side)),
        }
    }
    match qualify(e, side) {
        Ok(q) => q.to_string(),
        Err(never) => match never {},
    }
}

fn join_kind_sql(k: JoinKind) -> &'static str {
    match k {
        JoinKind::Inner => "[INNER]",
        JoinKind::Left => "LEFT [OUTER]",
        JoinKind::Right => "RIGHT [OUTER]",
        JoinKind::Full => "[FULL] OUTER",
    }
}

pub use super::join_output::{joined_columns, plan_join};
