//! Planning of push queries that aggregate: the aggregation becomes a private table query
//! (every GROUP BY expression kept as a key, window bounds left to the table), and the
//! client's columns are selected from that table by name, in the order written.

use super::ServerFault;
use std::sync::Arc;

use super::{Engine, EngineError, Session};
use crate::catalog::{Catalog, DataSource, SourceKind, WindowType};
use crate::exec::push::PushQuery;
use crate::format::{FormatKind, FormatSpec};
use crate::sql::aggregate_plan::{WINDOWEND, WINDOWSTART, plan_aggregate};
use crate::sql::ast::{Emit, Expr, ExprKind, Ident, Literal, Query, Relation, SelectItem};
use crate::sql::binder::natural_name;
use crate::sql::planner::{Purpose, plan_select};

fn is_window_bound(e: &Expr) -> bool {
    matches!(&e.kind, ExprKind::Column { name, .. } if name == WINDOWSTART || name == WINDOWEND)
}

fn column(name: &str, at: &Expr) -> Expr {
    Expr::new(ExprKind::Column { qualifier: None, name: name.to_string() }, at.pos)
}

/// The private table query and the client's query over its result (named `table`).
fn split(q: &Query, table: &str) -> (Query, Query) {
    let mut inner = q.clone();
    inner.limit = None;
    inner.emit = Some(Emit::Changes);
    inner.select = Vec::new();
    let mut outer = Vec::new();
    let mut generated = 0;
    for item in &q.select {
        match item {
            SelectItem::Expr { expr, alias } if is_window_bound(expr) => outer.push(SelectItem::Expr { expr: expr.clone(), alias: alias.clone() }),
            SelectItem::Expr { expr, alias } => {
                let name = alias.as_ref().map(|a| a.value.clone()).or_else(|| natural_name(expr)).unwrap_or_else(|| {
                    generated += 1;
                    format!("KSQL_COL_{}", generated - 1)
                });
                inner.select.push(SelectItem::Expr { expr: expr.clone(), alias: Some(Ident { value: name.clone(), pos: expr.pos }) });
                outer.push(SelectItem::Expr { expr: column(&name, expr), alias: None });
            }
            SelectItem::Wildcard { .. } => {
                inner.select.push(item.clone());
                outer.push(item.clone());
            }
            // Refused before the query is split (see `push_aggregate`).
            SelectItem::StructFields { .. } => {}
        }
    }
    // Every group is a key of the table, selected by the client or not; without GROUP BY
    // all rows form one group.
    if inner.group_by.is_empty() {
        inner.group_by = vec![Expr::new(ExprKind::Literal(Literal::Integer(1)), q.pos)];
    }
    for (i, g) in inner.group_by.clone().iter().enumerate() {
        let selected = inner.select.iter().any(|s| matches!(s, SelectItem::Expr { expr, .. } if expr.same_as(g)));
        if !selected {
            inner.select.push(SelectItem::Expr { expr: g.clone(), alias: Some(Ident { value: format!("KSQL_GROUP_KEY_{i}"), pos: g.pos }) });
        }
    }
    // A table row needs a value (a row without one deletes its key).
    let only_keys = inner.select.iter().all(|s| matches!(s, SelectItem::Expr { expr, .. } if inner.group_by.iter().any(|g| g.same_as(expr))));
    if only_keys {
        let count = Expr::new(ExprKind::Function { name: "COUNT".into(), args: Vec::new(), distinct: false, star: true }, q.pos);
        inner.select.push(SelectItem::Expr { expr: count, alias: Some(Ident { value: "KSQL_ROW_COUNT".into(), pos: q.pos }) });
    }
    let mut outer = Query::new(outer, Relation::Source { name: Ident { value: table.to_string(), pos: q.pos }, alias: None }, q.pos);
    outer.emit = Some(Emit::Changes);
    outer.limit = q.limit;
    (inner, outer)
}

impl Engine {
    /// Starts a push query with GROUP BY, WINDOW, HAVING or aggregate functions. Blocking.
    pub(super) fn push_aggregate(&self, q: &Query, session: &Session) -> Result<PushQuery, EngineError> {
        if let Some(SelectItem::StructFields { pos, .. }) = q.select.iter().find(|i| matches!(i, SelectItem::StructFields { .. })) {
            return Err(EngineError::from(crate::sql::SqlError::at(
                *pos,
                "->* is not supported in an aggregating push query yet",
                Some("list the fields instead (s->a, s->b), or run the aggregation as CREATE TABLE ... AS SELECT".into()),
            )));
        }
        let source_name = match &q.from {
            Relation::Source { name, .. } => name.value.clone(),
            Relation::Join { .. } => {
                return Err(EngineError::from(crate::sql::SqlError::at(
                    q.pos,
                    "an aggregating push query over a join is not supported yet",
                    Some("create the aggregation with CREATE TABLE ... AS SELECT (which materializes the join), then query the table".into()),
                )));
            }
        };
        let name = crate::exec::transient_id(&format!("AGG_{source_name}")).to_uppercase();
        let (inner, outer) = split(q, &name);
        let plan = plan_aggregate(&inner, &self.catalog, None)?;
        let window = plan.window.as_ref().map(|w| (w.kind, (w.kind != WindowType::Session).then_some(w.size_ms)));
        let table = DataSource {
            name: name.clone(),
            kind: SourceKind::Table,
            schema: plan.output.clone(),
            topic: format!("_eddy_{}", name.to_lowercase()),
            key_format: FormatSpec::new(FormatKind::Json),
            value_format: FormatSpec::new(FormatKind::Json),
            timestamp: None,
            sql: String::new(),
            read_only: true,
            window: window.map(|w| w.0),
            window_size_ms: window.and_then(|w| w.1),
        };
        let scope = Catalog::default();
        scope.add_source(table.clone(), false).map_err(|e| EngineError::fault(ServerFault::Catalog(e)))?;
        let push = plan_select(&outer, &scope, Purpose::Push, None)?;
        Ok(self.runtime.start_push_aggregate(Arc::new(plan), &table, Arc::new(push), self.offset_reset(session))?)
    }
}
