//! Planning of push queries that aggregate: the aggregation becomes a private table query
//! (every GROUP BY expression kept as a key, window bounds left to the table), and the
//! client's columns are selected from that table by name, in the order written. An
//! aggregation over a join reads the join's rows, written by a private join stage.

use super::ServerFault;
use std::borrow::Cow;
use std::sync::Arc;

use super::{Engine, EngineError, Session};
use crate::catalog::{Catalog, DataSource, SourceKind, WindowType};
use crate::exec::PrivateJoin;
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
        // Over a join, the join runs first as a private stage writing its rows to an
        // internal topic, and the aggregation reads them, as CREATE TABLE ... AS SELECT does.
        let name = crate::exec::transient_id(&format!("AGG_{}", first_source(&q.from))).to_uppercase();
        let scope = Catalog::default();
        let (join, q) = match &q.from {
            Relation::Source { .. } => (None, Cow::Borrowed(q)),
            Relation::Join { .. } => {
                let helper = format!("{name}_JOIN");
                let join = self.private_join(q, &helper)?;
                scope.add_source(join.result.clone(), false).map_err(|e| EngineError::fault(ServerFault::Catalog(e)))?;
                (Some(join), Cow::Owned(self.over_join_result(q, &helper)?))
            }
        };
        let (inner, outer) = split(&q, &name);
        let mut plan = plan_aggregate(&inner, if join.is_some() { &scope } else { &self.catalog }, None)?;
        self.apply_query_settings(session, &mut plan);
        let window = plan.window.as_ref().map(|w| (w.kind, (w.kind != WindowType::Session).then_some(w.size_ms)));
        let table = private_source(self.log.internal_prefix(), &name, SourceKind::Table, plan.output.clone(), window);
        let result_scope = Catalog::default();
        result_scope.add_source(table.clone(), false).map_err(|e| EngineError::fault(ServerFault::Catalog(e)))?;
        let push = plan_select(&outer, &result_scope, Purpose::Push, None)?;
        Ok(self.runtime.start_push_aggregate(Arc::new(plan), &table, Arc::new(push), self.offset_reset(session), join)?)
    }

    /// The join a push query aggregates, as a private stage named `helper` writing the
    /// joined rows (`SELECT * FROM <the join>`) to an internal topic.
    fn private_join(&self, q: &Query, helper: &str) -> Result<PrivateJoin, EngineError> {
        let plan = self.plan_join(&Self::join_rows_query(q), Purpose::Persistent, Some(helper))?;
        let first = plan.sources()[0].clone();
        let window = first.window.map(|w| (w, first.window_size_ms));
        let result = private_source(self.log.internal_prefix(), helper, plan.result_kind(), plan.output.clone(), window);
        Ok(PrivateJoin { plan: Arc::new(plan), result })
    }
}

/// The name of the left-most source a FROM clause reads.
fn first_source(r: &Relation) -> &str {
    match r {
        Relation::Source { name, .. } => &name.value,
        Relation::Join { left, .. } => first_source(left),
    }
}

/// A stream or table of a push query's own, outside the catalog, over an internal topic.
fn private_source(
    prefix: &str,
    name: &str,
    kind: SourceKind,
    schema: crate::catalog::types::LogicalSchema,
    window: Option<(WindowType, Option<i64>)>,
) -> DataSource {
    DataSource {
        name: name.to_string(),
        kind,
        schema,
        topic: format!("{prefix}{}", name.to_lowercase()),
        key_format: FormatSpec::new(FormatKind::Json),
        value_format: FormatSpec::new(FormatKind::Json),
        timestamp: None,
        sql: String::new(),
        read_only: true,
        window: window.map(|w| w.0),
        window_size_ms: window.and_then(|w| w.1),
    }
}
