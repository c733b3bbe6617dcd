//! What a pull query may contain, in ksqlDB's words: clauses only push queries and
//! persistent queries have (JOIN, WINDOW, GROUP BY ...), pseudo columns a pull query cannot
//! read, LIMIT when disabled, and — when `ksql.query.pull.table.scan.enabled` is false —
//! WHERE clauses that a key lookup (or, if enabled, a key range) cannot answer.

use std::collections::BTreeMap;

use super::SqlError;
use super::ast::{BinaryOp, Expr, ExprKind, Query, Relation, SelectItem};
use super::pull::{column_name as column, conjuncts};
use crate::catalog::DataSource;
use crate::catalog::types::{ROWOFFSET, ROWPARTITION, SqlType};

pub const TABLE_SCAN_ENABLED: &str = "ksql.query.pull.table.scan.enabled";
pub const RANGE_SCAN_ENABLED: &str = "ksql.query.pull.range.scan.enabled";
pub const LIMIT_ENABLED: &str = "ksql.query.pull.limit.clause.enabled";

const MORE_INFO: &str = " See https://cnfl.io/queries for more info.\nAdd EMIT CHANGES if you intended to issue a push query.";

/// A boolean property, `default` when unset.
pub fn flag(properties: &BTreeMap<String, String>, name: &str, default: bool) -> bool {
    properties.get(name).map(|v| v.trim().eq_ignore_ascii_case("true")).unwrap_or(default)
}

/// Clauses and columns no pull query may have, on tables and streams alike.
pub fn check_clauses(q: &Query, properties: &BTreeMap<String, String>) -> Result<(), SqlError> {
    let refuse = |what: &str| Err(SqlError::at(q.pos, format!("Pull queries don't support {what} clauses.{MORE_INFO}"), None));
    if matches!(q.from, Relation::Join { .. }) {
        return refuse("JOIN");
    }
    if q.window.is_some() {
        return refuse("WINDOW");
    }
    if !q.group_by.is_empty() {
        return refuse("GROUP BY");
    }
    if !q.partition_by.is_empty() {
        return refuse("PARTITION BY");
    }
    if q.having.is_some() {
        return refuse("HAVING");
    }
    if q.limit.is_some() && !flag(properties, LIMIT_ENABLED, true) {
        return Err(SqlError::at(
            q.pos,
            format!("LIMIT clause in pull queries is currently disabled. You can enable them by setting {LIMIT_ENABLED}=true.{MORE_INFO}"),
            None,
        ));
    }
    let select: Vec<&Expr> = q.select.iter().filter_map(|s| if let SelectItem::Expr { expr, .. } = s { Some(expr) } else { None }).collect();
    pseudo_columns("SELECT", &select)?;
    pseudo_columns("WHERE", &q.where_.iter().collect::<Vec<_>>())
}

fn pseudo_columns(clause: &str, exprs: &[&Expr]) -> Result<(), SqlError> {
    let mut found: Vec<&str> = Vec::new();
    for e in exprs {
        let _ = e.find_map(&mut |x| {
            if let ExprKind::Column { name, .. } = &x.kind {
                for p in [ROWPARTITION, ROWOFFSET] {
                    if name == p && !found.contains(&p) {
                        found.push(p);
                    }
                }
            }
            None::<()>
        });
    }
    if found.is_empty() {
        return Ok(());
    }
    let list = found.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ");
    Err(SqlError::invalid(format!("Pull queries don't support the following columns in {clause} clauses: {list}"), None))
}

fn has_column(e: &Expr) -> bool {
    e.find_map(&mut |x| matches!(x.kind, ExprKind::Column { .. }).then_some(())).is_some()
}

fn disjuncts(e: &Expr, out: &mut Vec<Expr>) {
    match &e.kind {
        ExprKind::Binary { op: BinaryOp::Or, left, right } => {
            disjuncts(left, out);
            disjuncts(right, out);
        }
        _ => out.push(e.clone()),
    }
}

/// How one disjunct constrains one key column.
#[derive(Default, Clone, Copy)]
struct KeyUse {
    equal: u32,
    range: u32,
}

const RESOLVABLE: &str = "A comparison must be between a key column and a resolvable expression.";

/// With table scans disabled, a table's pull query must look keys up (or scan a range of a
/// single STRING key, when range scans are enabled); otherwise ksqlDB's refusal.
pub fn check_without_scan(q: &Query, table: &DataSource, properties: &BTreeMap<String, String>) -> Result<(), SqlError> {
    if flag(properties, TABLE_SCAN_ENABLED, true) {
        return Ok(());
    }
    let requires_scan = || SqlError::invalid("Query requires table scan to be enabled", None);
    let keys: Vec<(&str, &SqlType)> = table.schema.key_columns().map(|c| (c.name.as_str(), &c.ty)).collect();
    let key_index = |e: &Expr| column(e).and_then(|c| keys.iter().position(|(n, _)| *n == c));
    let Some(w) = &q.where_ else {
        return Err(requires_scan());
    };
    let mut parts = Vec::new();
    disjuncts(w, &mut parts);
    let several = parts.len() > 1;
    for disjunct in &parts {
        let mut uses = vec![KeyUse::default(); keys.len()];
        let mut conds = Vec::new();
        conjuncts(disjunct, &mut conds);
        for c in &conds {
            match &c.kind {
                ExprKind::Binary { op, left, right } if op.is_comparison() => {
                    let (key, other) = match (key_index(left), key_index(right)) {
                        (Some(i), _) => (Some(i), right),
                        (None, Some(i)) => (Some(i), left),
                        _ => (None, left),
                    };
                    let Some(i) = key else {
                        let plain = column(left).is_some() || column(right).is_some();
                        if !plain && (has_column(left) || has_column(right)) {
                            return Err(SqlError::invalid("A comparison must directly reference a key column.", None));
                        }
                        continue;
                    };
                    if has_column(other) {
                        return Err(SqlError::invalid(RESOLVABLE, None));
                    }
                    match op {
                        BinaryOp::Eq => uses[i].equal += 1,
                        BinaryOp::NotEq => {
                            return Err(SqlError::invalid(format!("Bound on key columns '[`{}` {} KEY]' must currently be '='. ", keys[i].0, keys[i].1), None));
                        }
                        _ => uses[i].range += 1,
                    }
                }
                ExprKind::InList { expr, list, negated: false } if key_index(expr).is_some() => {
                    if list.iter().any(has_column) {
                        return Err(SqlError::invalid(RESOLVABLE, None));
                    }
                    uses[key_index(expr).expect("checked")].equal += 1;
                }
                ExprKind::Between { expr, low, high, negated: false } if key_index(expr).is_some() => {
                    if has_column(low) || has_column(high) {
                        return Err(SqlError::invalid(RESOLVABLE, None));
                    }
                    uses[key_index(expr).expect("checked")].range += 2;
                }
                _ => {}
            }
        }
        if uses.iter().any(|u| u.equal + u.range > 1) {
            return Err(SqlError::invalid("A comparison condition on the key column cannot be combined with other comparisons such as an IN predicate", None));
        }
        if uses.iter().all(|u| u.equal + u.range == 0) {
            if keys.len() > 1 {
                return Err(SqlError::invalid("Multi-column sources must specify every key in the WHERE clause.", None));
            }
            return Err(SqlError::invalid(format!("WHERE clause missing key column for disjunct: {disjunct}"), None));
        }
        if uses.iter().any(|u| u.equal + u.range == 0) {
            return Err(SqlError::invalid("Multi-column sources must specify every key in the WHERE clause.", None));
        }
        if uses.iter().any(|u| u.range > 0) {
            let string_key = keys.len() == 1 && *keys[0].1 == SqlType::String;
            if several || !string_key || table.window.is_some() || !flag(properties, RANGE_SCAN_ENABLED, true) {
                return Err(requires_scan());
            }
        }
    }
    Ok(())
}
