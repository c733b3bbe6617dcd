//! Aggregations over joins (`CREATE TABLE t AS SELECT ... FROM a JOIN b ... GROUP BY ...`):
//! the join is materialized first as its own stream (or table, for a table-table join)
//! named `<T>__JOIN`, declared by a CREATE ... AS SELECT * that goes through the command
//! topic like any statement, and the aggregation reads it. The aggregation's statement is
//! kept as the user wrote it; each time it is planned (now, and when the command topic
//! replays) its columns are mapped onto the join's (`a.x` is the joined row's `A_X`).

use std::borrow::Cow;

use serde_json::Value;

use super::{Engine, EngineError, Session};
use crate::sql::ast::{Expr, ExprKind, Ident, ParsedStatement, Query, Relation, SelectItem, Statement};
use crate::sql::join_plan::{SideColumn, is_join_query, joined_columns};

/// The stream or table an aggregation over a join reads.
pub fn join_source_name(sink: &str) -> String {
    format!("{sink}__JOIN")
}

/// Whether a query aggregates (or windows) the rows of a join.
pub fn aggregates_a_join(q: &Query) -> bool {
    is_join_query(q) && (q.window.is_some() || crate::sql::aggregate_plan::is_aggregate_query(q))
}

impl Engine {
    /// The query to plan for `sink`: an aggregation over a join becomes the same
    /// aggregation over the join's materialized result; any other query is itself.
    pub(super) fn effective_query<'a>(&self, q: &'a Query, sink: &str) -> Result<Cow<'a, Query>, EngineError> {
        if !aggregates_a_join(q) {
            return Ok(Cow::Borrowed(q));
        }
        let helper = join_source_name(sink);
        if self.catalog.source(&helper).is_none() {
            return Err(EngineError::rule(format!("the join this aggregation reads, {helper}, does not exist; create the table again")));
        }
        self.over_join_result(q, &helper).map(Cow::Owned)
    }

    /// `q`, which reads a join, reading instead the join's result `helper` (the rows of
    /// `SELECT * FROM <the join>`): `a.x` becomes the joined row's `A_X`.
    pub(super) fn over_join_result(&self, q: &Query, helper: &str) -> Result<Query, EngineError> {
        let log = self.log.clone();
        let partitions = move |topic: &str| log.get_topic(topic).map(|t| t.partition_count());
        let columns = joined_columns(&q.from, &self.catalog, &partitions)?;
        let map = |e: &Expr| onto_join(e, &columns);
        let mut out = q.clone();
        out.from = Relation::Source { name: Ident { value: helper.to_string(), pos: q.pos }, alias: None };
        out.select = q
            .select
            .iter()
            .map(|item| {
                Ok(match item {
                    SelectItem::Expr { expr, alias } => SelectItem::Expr { expr: map(expr)?, alias: alias.clone().or_else(|| natural_alias(expr)) },
                    SelectItem::StructFields { expr, pos } => SelectItem::StructFields { expr: map(expr)?, pos: *pos },
                    SelectItem::Wildcard { .. } => item.clone(),
                })
            })
            .collect::<Result<_, EngineError>>()?;
        out.where_ = q.where_.as_ref().map(map).transpose()?;
        out.group_by = q.group_by.iter().map(map).collect::<Result<_, _>>()?;
        out.having = q.having.as_ref().map(map).transpose()?;
        out.partition_by = q.partition_by.iter().map(map).collect::<Result<_, _>>()?;
        Ok(out)
    }

    /// The join `q` reads, as `SELECT * FROM <the join>`: what an aggregation over it reads.
    pub(super) fn join_rows_query(q: &Query) -> Query {
        Query {
            select: vec![SelectItem::Wildcard { qualifier: None, pos: q.pos }],
            window: None,
            where_: None,
            group_by: Vec::new(),
            having: None,
            partition_by: Vec::new(),
            emit: Some(crate::sql::ast::Emit::Changes),
            limit: None,
            ..q.clone()
        }
    }

    /// CREATE TABLE ... AS SELECT that aggregates a join: declares the join's result, then
    /// the aggregation over it; if the aggregation is refused, the join goes again.
    pub(super) fn create_join_aggregate(&self, p: &ParsedStatement, session: &mut Session) -> Result<Option<Value>, EngineError> {
        let Statement::CreateAsSelect { name, query, if_not_exists, .. } = &p.statement else {
            return Err(EngineError::inconsistent("not a CREATE ... AS SELECT"));
        };
        if *if_not_exists && self.catalog.source(&name.value).is_some() {
            return self.change_catalog(p, session).map(Some);
        }
        let helper = join_source_name(&name.value);
        let mut created_query = None;
        if self.catalog.source(&helper).is_none() {
            // A table-table join gives a table; any other join a stream.
            let log = self.log.clone();
            let partitions = move |topic: &str| log.get_topic(topic).map(|t| t.partition_count());
            let plan =
                crate::sql::join_plan::plan_join(&Self::join_rows_query(query), &self.catalog, crate::sql::planner::Purpose::Persistent, None, &partitions)?;
            let helper_kind = plan.result_kind().name();
            let statement = format!("CREATE {helper_kind} {} AS SELECT * FROM {};", crate::catalog::types::quote_ident(&helper), query.from.to_sql());
            let entities = self
                .execute(&statement, session)
                .map_err(|e| EngineError::rule(format!("the join of this aggregation cannot be materialized as {helper}: {e}")))?;
            created_query = entities.first().and_then(|e| e.pointer("/commandStatus/queryId")).and_then(Value::as_str).map(str::to_string);
        }
        match self.change_catalog(p, session) {
            Ok(mut entity) => {
                if let (Some(id), Some(w)) = (&created_query, entity.get_mut("warnings").and_then(Value::as_array_mut)) {
                    w.push(serde_json::json!({"message": format!("The join is materialized as {helper} by query {id}; the aggregation reads it.")}));
                }
                Ok(Some(entity))
            }
            Err(e) => {
                // Leave nothing behind for a refused aggregation.
                if let Some(id) = created_query {
                    let kind = self.catalog.source(&helper).map(|s| s.kind.name()).unwrap_or("STREAM");
                    let undo = format!("TERMINATE {id}; DROP {kind} {} DELETE TOPIC;", crate::catalog::types::quote_ident(&helper));
                    if let Err(u) = self.execute(&undo, &mut Session::default()) {
                        tracing::warn!("could not remove {helper} after a refused aggregation: {u}");
                    }
                }
                Err(e)
            }
        }
    }
}

/// The name a selected column keeps when an aggregation over a join is rewritten: `a.x`
/// is still called `X`.
fn natural_alias(e: &Expr) -> Option<Ident> {
    match &e.kind {
        ExprKind::Column { name, .. } => Some(Ident { value: name.clone(), pos: e.pos }),
        _ => None,
    }
}

/// `e` with its column references mapped onto the joined row's columns.
fn onto_join(e: &Expr, columns: &[SideColumn]) -> Result<Expr, EngineError> {
    match &e.kind {
        ExprKind::Column { qualifier, name } => {
            let found: Vec<&SideColumn> = match qualifier {
                Some(q) => columns.iter().filter(|c| c.qualifiers.contains(q) && c.name == *name).collect(),
                None => columns.iter().filter(|c| c.name == *name).collect(),
            };
            match found.as_slice() {
                [c] => Ok(Expr::new(ExprKind::Column { qualifier: None, name: c.field.clone() }, e.pos)),
                // The joined row's own pseudo columns and window bounds.
                [] if qualifier.is_none() => Ok(e.clone()),
                [] if matches!(name.as_str(), "ROWTIME" | "ROWPARTITION" | "ROWOFFSET" | "WINDOWSTART" | "WINDOWEND") => {
                    Err(EngineError::rule(format!("{}: {e} is not available in an aggregation over a join: use the joined row's {name}, unqualified", e.pos)))
                }
                [] => {
                    let known: Vec<String> = columns.iter().map(|c| format!("{}.{}", c.qualifiers[0], c.name)).collect();
                    Err(EngineError::rule(format!("{}: column {e} cannot be resolved; the joined sources have {}", e.pos, known.join(", "))))
                }
                _ => Err(EngineError::rule(format!("{}: column {name} is ambiguous: qualify it with its source, e.g. a.{name}", e.pos))),
            }
        }
        _ => e.map_children(&mut |c| onto_join(c, columns)),
    }
}
