//! The result of a join: the WHERE clause and the SELECT list compiled over the joined row,
//! and the result's key (the left row's identity for a foreign-key join, a column equal to
//! the join key, PARTITION BY's expression, or a synthetic key), with ksqlDB's rules for
//! which key columns a persistent query must select.

use datafusion::logical_expr::Expr as DfExpr;

use super::SqlError;
use super::ast::{Emit, Expr, ExprKind, JoinKind, Query, Relation, SelectItem};
use super::binder::{Binder, ScopeColumn, natural_name};
use super::compile::compile;
use super::join_plan::{JOIN_KEY_FIELD, JoinPlan, JoinSide, SideColumn, SideInputKind, joined_scope, plan_joins};
use super::planner::{OutputColumn, Purpose};
use crate::catalog::types::{Column, ColumnKind, LogicalSchema, ROWTIME, SqlType};
use crate::catalog::{Catalog, SourceKind};

/// The columns of the joined row a FROM clause of joins produces (the sources' columns,
/// each with the `ALIAS_NAME` field `SELECT *` names it by), without pseudo columns.
pub fn joined_columns(from: &Relation, catalog: &Catalog, partitions_of: &dyn Fn(&str) -> Option<i32>) -> Result<Vec<SideColumn>, SqlError> {
    let plan = plan_joins(from, catalog, partitions_of)?;
    Ok(plan.left.columns.iter().chain(&plan.right.columns).filter(|c| !c.pseudo).cloned().collect())
}

/// Plans `SELECT ... FROM a JOIN b ... [JOIN c ...]`; `partitions_of` gives a topic's
/// partition count.
pub fn plan_join(
    q: &Query,
    catalog: &Catalog,
    purpose: Purpose,
    sink_name: Option<&str>,
    partitions_of: &dyn Fn(&str) -> Option<i32>,
) -> Result<JoinPlan, SqlError> {
    if q.window.is_some() || !q.group_by.is_empty() || q.having.is_some() {
        return Err(SqlError::at(
            q.pos,
            "an aggregation over a join runs only as CREATE TABLE ... AS SELECT (which materializes the join first)",
            Some("create the aggregation with CREATE TABLE ... AS SELECT, then query the table".into()),
        ));
    }
    if q.partition_by.len() > 1 {
        return Err(SqlError::at(q.pos, "PARTITION BY on a join takes one expression", Some("the result is keyed by that expression".into())));
    }
    let mut plan = plan_joins(&q.from, catalog, partitions_of)?;
    if !q.partition_by.is_empty() && plan.result_kind() == SourceKind::Table {
        return Err(SqlError::at(
            q.pos,
            "PARTITION BY is not supported on a table-table join: its result is a table keyed by the join",
            Some("a table keeps its PRIMARY KEY; re-key the result with GROUP BY in another query".into()),
        ));
    }
    let kafka_valued: Vec<String> =
        plan.sources().iter().filter(|src| src.value_format.kind == crate::format::FormatKind::Kafka).map(|src| src.name.clone()).collect();
    if !kafka_valued.is_empty() {
        return Err(SqlError::at(
            q.pos,
            format!("Source(s) {} are using the 'KAFKA' value format. This format does not yet support JOIN.", kafka_valued.join(", ")),
            Some("create a copy of the source with VALUE_FORMAT='JSON' (CREATE STREAM ... WITH (VALUE_FORMAT='JSON') AS SELECT ...) and join that".into()),
        ));
    }
    let scope = joined_scope(&plan.left, &plan.right, &plan.key_type)?;
    let binder = Binder { scope: &scope };
    let filter = match &q.where_ {
        Some(w) => {
            let c = compile(binder.bind(w).map_err(super::binder::in_clause("WHERE"))?, &scope)?.written_as(w);
            if c.ty != SqlType::Boolean {
                return Err(SqlError::at(w.pos, format!("WHERE needs a BOOLEAN condition, found {}", c.ty), None));
            }
            Some(c)
        }
        None => None,
    };
    let all_columns: Vec<SideColumn> = plan.left.columns.iter().chain(&plan.right.columns).cloned().collect();
    // The result's key: for a foreign-key join the left table's key column; otherwise the
    // first of ksqlDB's viable key columns (source columns equal to the join key on every
    // row) that the SELECT list has, or a synthetic ROWKEY when there is none (FULL OUTER
    // joins, joins on expressions).
    // A foreign-key join's result is keyed by what identifies its left rows.
    let left_pk_columns: Vec<String> = plan.left_identity.iter().map(|(_, name)| name.clone()).collect();
    let fk_key_fields: Vec<DfExpr> =
        plan.left_identity.iter().map(|(field, _)| DfExpr::Column(datafusion::common::Column::new_unqualified(field.clone()))).collect();
    let viable = if fk_key_fields.is_empty() { viable_key_columns(&plan, &binder) } else { fk_key_fields.clone() };
    let synthetic_key = if viable.is_empty() { Some(synthetic_key_name(&all_columns)) } else { None };
    let mut scope = scope;
    if let Some(name) = &synthetic_key {
        scope.columns.push(ScopeColumn { qualifier: None, name: name.clone(), field: JOIN_KEY_FIELD.into(), ty: plan.key_type.clone() });
    }
    let binder = Binder { scope: &scope };
    let join_key_column = DfExpr::Column(datafusion::common::Column::new_unqualified(JOIN_KEY_FIELD));
    let mut items: Vec<(Expr, Option<String>)> = Vec::new();
    for item in &q.select {
        match item {
            SelectItem::Wildcard { qualifier, pos } => {
                if let (None, Some(key)) = (qualifier, &synthetic_key) {
                    items.push((Expr::new(ExprKind::Column { qualifier: None, name: key.clone() }, *pos), Some(key.clone())));
                }
                let cols: Vec<&SideColumn> = match qualifier {
                    None => all_columns.iter().filter(|c| !c.pseudo).collect(),
                    Some(qual) => {
                        let c: Vec<&SideColumn> = all_columns.iter().filter(|c| !c.pseudo && c.qualifiers.contains(qual)).collect();
                        if c.is_empty() {
                            return Err(SqlError::at(*pos, format!("unknown source '{qual}' in {qual}.*"), None));
                        }
                        c
                    }
                };
                for c in cols {
                    let e = Expr::new(ExprKind::Column { qualifier: Some(c.qualifiers[0].clone()), name: c.name.clone() }, *pos);
                    items.push((e, Some(c.field.clone())));
                }
            }
            SelectItem::Expr { expr, alias } => {
                let name = alias.as_ref().map(|a| a.value.clone()).or_else(|| match &expr.kind {
                    // A column only one source has keeps its name; one that several sources
                    // have is named ALIAS_COLUMN, as ksqlDB does in joins.
                    ExprKind::Column { qualifier: Some(_), name } if all_columns.iter().filter(|c| &c.name == name).count() == 1 => Some(name.clone()),
                    ExprKind::Column { qualifier: Some(_), .. } => match binder.bind(expr) {
                        Ok(DfExpr::Column(c)) => Some(c.name.clone()),
                        _ => natural_name(expr),
                    },
                    _ => natural_name(expr),
                });
                items.push((expr.clone(), name));
            }
            SelectItem::StructFields { expr, pos } => items.extend(super::binder::struct_field_items(&binder, expr, *pos)?),
        }
    }
    // PARTITION BY re-keys the result by its expression, which must be selected; the join
    // expressions are then ordinary values.
    let partition_key = q.partition_by.first().map(|p| binder.bind(p)).transpose().map_err(super::binder::in_clause("PARTITION BY"))?;
    let mut generated = 0;
    let mut named: Vec<(Expr, String, DfExpr)> = Vec::new();
    for (e, name) in items {
        let name = match name {
            Some(n) => n,
            None => loop {
                let candidate = format!("KSQL_COL_{generated}");
                generated += 1;
                if !named.iter().any(|(_, n, _)| *n == candidate) {
                    break candidate;
                }
            },
        };
        if named.iter().any(|(_, n, _)| *n == name) {
            return Err(SqlError::at(e.pos, format!("duplicate column name '{name}' in the SELECT list"), Some("give one of them an alias with AS".into())));
        }
        let bound = binder.bind(&e).map_err(super::binder::in_clause("SELECT")).and_then(super::binder::null_comparisons_false)?;
        named.push((e, name, bound));
    }
    // The expression whose projection becomes the key (the synthetic key, or the first
    // viable key column selected); PARTITION BY's expression instead when given.
    let key_exprs: Vec<DfExpr> = match (&partition_key, &synthetic_key) {
        (Some(p), _) => vec![p.clone()],
        (None, Some(_)) => vec![join_key_column.clone()],
        (None, None) if !fk_key_fields.is_empty() => fk_key_fields.clone(),
        (None, None) => viable.iter().find(|v| named.iter().any(|(_, _, b)| b == *v)).cloned().into_iter().collect(),
    };
    for k in &key_exprs {
        let mut aliases: Vec<&str> = named.iter().filter(|(_, _, b)| b == k).map(|(_, n, _)| n.as_str()).collect();
        if aliases.len() > 1 && partition_key.is_none() {
            aliases.sort_unstable();
            let last = aliases.pop().unwrap_or_default();
            return Err(SqlError::at(
                q.pos,
                format!(
                    "The projection contains a key column (`{}`) more than once, aliased as: {} and {last}.",
                    key_display(k, &all_columns, synthetic_key.as_deref(), true),
                    aliases.join(", ")
                ),
                Some("select the key column once; it is the result's key".into()),
            ));
        }
    }
    let mut columns: Vec<OutputColumn> = Vec::new();
    let mut found_keys: Vec<DfExpr> = Vec::new();
    for (written, name, bound) in named {
        let is_key = key_exprs.contains(&bound) && !found_keys.contains(&bound);
        if is_key {
            found_keys.push(bound.clone());
        }
        // A join key column holds the join key, set on matched and unmatched rows alike.
        let (expr, kind) = match (is_key, partition_key.is_none() && fk_key_fields.is_empty()) {
            (true, true) => (compile(join_key_column.clone(), &scope)?.written_as(&written), ColumnKind::Key),
            (true, false) => (compile(bound, &scope)?.written_as(&written), ColumnKind::Key),
            (false, _) => (compile(bound, &scope)?.written_as(&written), ColumnKind::Value),
        };
        columns.push(OutputColumn { name, expr, kind });
    }
    let key_found = !found_keys.is_empty();
    if purpose == Purpose::Persistent {
        let missing: Vec<String> =
            fk_key_fields.iter().zip(&left_pk_columns).filter(|(f, _)| !found_keys.contains(f)).map(|(_, name)| format!("`{name}`")).collect();
        if !missing.is_empty() {
            let what = if missing.len() == 1 { "column" } else { "columns" };
            return Err(SqlError::at(
                q.pos,
                format!(
                    "Primary key {what} missing in projection. For foreign-key table-table joins, the projection must include all primary key columns \
                        from the left input table (`{}`). Missing {what}: {}.",
                    plan.left.alias,
                    missing.join(", ")
                ),
                Some(format!("add {} to the SELECT list: the left table's primary key is the result's key", missing.join(", "))),
            ));
        }
        if let (false, Some(p)) = (key_found, q.partition_by.first()) {
            let sink = sink_name.unwrap_or("the result");
            return Err(SqlError::at(
                p.pos,
                format!("The query used to build `{sink}` must include the partitioning expression {p} in its projection (eg, SELECT {p}...)."),
                Some("the partitioning expression becomes the result's key column".into()),
            ));
        }
        if !key_found {
            let sink = sink_name.unwrap_or("the result");
            let message = match &synthetic_key {
                Some(key) => format!(
                    "Key missing from projection (ie, SELECT). See https://cnfl.io/2LV7ouS.\nThe query used to build `{sink}` must include the join \
                        expression {key} in its projection (eg, SELECT {key}...).\n{key} was added as a synthetic key column because the join criteria \
                            did not match any source column. This expression must be included in the projection and may be aliased."
                ),
                None => {
                    let mut names: Vec<String> = viable.iter().map(|v| key_display(v, &all_columns, None, false)).collect();
                    let first = names.first().cloned().unwrap_or_default();
                    let list = match names.pop() {
                        Some(last) if !names.is_empty() => format!("expressions {} or {last}", names.join(", ")),
                        Some(last) => format!("expression {last}"),
                        None => "expression".into(),
                    };
                    format!(
                        "Key missing from projection (ie, SELECT). See https://cnfl.io/2LV7ouS.\nThe query used to build `{sink}` must include the \
                            join {list} in its projection (eg, SELECT {first}...)."
                    )
                }
            };
            return Err(SqlError::at(q.pos, message, Some("the join key becomes the result's key column".into())));
        }
        if q.limit.is_some() {
            return Err(super::planner::limit_refused(plan.result_kind(), q.pos));
        }
        if q.emit == Some(Emit::Final) {
            return Err(SqlError::at(q.pos, "EMIT FINAL is only valid for windowed aggregations", Some("use EMIT CHANGES".into())));
        }
    }
    plan.output = LogicalSchema::new(columns.iter().map(|c| Column::new(c.name.clone(), c.expr.ty.clone(), c.kind)).collect());
    plan.filter = filter;
    plan.columns = columns;
    plan.emit = q.emit;
    plan.limit = q.limit;
    Ok(plan)
}

/// ksqlDB's join equivalence set: the expressions equal to the join key on every joined
/// row (none for FULL OUTER joins, where either side may be missing), bound in `binder`.
fn equivalence_set(plan: &JoinPlan, binder: &Binder) -> Vec<DfExpr> {
    if plan.kind == JoinKind::Full {
        return Vec::new();
    }
    let keys: Vec<DfExpr> = plan.key_exprs.iter().filter_map(|e| binder.bind(e).ok()).collect();
    let mut out = keys.clone();
    for side in [&plan.left, &plan.right] {
        if let SideInputKind::Stage(inner) = &side.input {
            let child = equivalence_set(inner, binder);
            if child.iter().any(|e| keys.contains(e)) {
                for e in child {
                    if !out.contains(&e) {
                        out.push(e);
                    }
                }
            }
        }
    }
    out
}

/// The source columns a query may select as the join result's key, in ksqlDB's order
/// (earlier stages first, left before right): join expressions that are plain columns and
/// belong to the equivalence set.
fn viable_key_columns(plan: &JoinPlan, binder: &Binder) -> Vec<DfExpr> {
    if plan.kind == JoinKind::Full {
        return Vec::new();
    }
    let equivalent = equivalence_set(plan, binder);
    let stage = |side: &JoinSide| match &side.input {
        SideInputKind::Stage(inner) => viable_key_columns(inner, binder),
        SideInputKind::Source(_) => Vec::new(),
    };
    let mut candidates = stage(&plan.left);
    candidates.extend(binder.bind(&plan.key_exprs[0]).ok());
    candidates.extend(stage(&plan.right));
    candidates.extend(binder.bind(&plan.key_exprs[1]).ok());
    let mut out: Vec<DfExpr> = Vec::new();
    for c in candidates {
        let is_column = matches!(&c, DfExpr::Column(col) if col.name != JOIN_KEY_FIELD && col.name != ROWTIME);
        if is_column && equivalent.contains(&c) && !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// The synthetic key column's name: ROWKEY, or ROWKEY_n past every ROWKEY_n a source has.
fn synthetic_key_name(columns: &[SideColumn]) -> String {
    let suffix = |name: &str| -> Option<u64> {
        if name == "ROWKEY" {
            return Some(0);
        }
        name.strip_prefix("ROWKEY_").and_then(|n| n.parse().ok())
    };
    match columns.iter().filter_map(|c| suffix(&c.name)).max() {
        None => "ROWKEY".into(),
        Some(n) => format!("ROWKEY_{}", n + 1),
    }
}

/// A key expression as ksqlDB names it: `ALIAS.COLUMN` in messages about the ON clause
/// (`ALIAS_COLUMN` when `joined`), the synthetic key by its name.
fn key_display(e: &DfExpr, columns: &[SideColumn], synthetic: Option<&str>, joined: bool) -> String {
    let DfExpr::Column(col) = e else { return e.to_string() };
    if col.name == JOIN_KEY_FIELD {
        return synthetic.unwrap_or("ROWKEY").to_string();
    }
    match columns.iter().find(|c| c.field == col.name) {
        Some(c) if joined => c.field.clone(),
        Some(c) => format!("{}.{}", c.qualifiers.first().cloned().unwrap_or_default(), c.name),
        None => col.name.clone(),
    }
}
