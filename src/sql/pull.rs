//! Plans pull queries on tables: finds key equality / IN (a key lookup), a range on a
//! single key column (a range scan) or neither (a table scan), window bounds on
//! WINDOWSTART/WINDOWEND, and compiles the WHERE, SELECT list and ORDER BY over the
//! materialized row.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::SqlError;
use super::aggregate_plan::{WINDOWEND, WINDOWSTART};
use super::ast::{BinaryOp, Emit, Expr, ExprKind, Literal, Pos, Query, SelectItem};
use super::binder::{Binder, Scope, natural_name};
use super::compile::{CompiledExpr, compile};
use super::planner::{OutputColumn, single_source};
use crate::catalog::types::{ColumnKind, ROWTIME, SqlType};
use crate::catalog::{Catalog, DataSource, SourceKind};
use crate::state::keys::KeyValueOwned;

/// How rows are found.
#[derive(Debug, Clone, PartialEq)]
pub enum PullAccess {
    /// These keys (each a value per key column).
    KeyLookup(Vec<Vec<KeyValueOwned>>),
    /// A range of the single key column: (value, inclusive) bounds.
    Range {
        from: Option<(KeyValueOwned, bool)>,
        to: Option<(KeyValueOwned, bool)>,
    },
    Scan,
}

impl PullAccess {
    pub fn name(&self) -> &'static str {
        match self {
            PullAccess::KeyLookup(_) => "KEY_LOOKUP",
            PullAccess::Range { .. } => "RANGE_SCAN",
            PullAccess::Scan => "TABLE_SCAN",
        }
    }
}

/// Inclusive bounds on WINDOWSTART and WINDOWEND.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowBounds {
    pub start_min: i64,
    pub start_max: i64,
    pub end_min: i64,
    pub end_max: i64,
}

impl Default for WindowBounds {
    fn default() -> Self {
        WindowBounds { start_min: i64::MIN, start_max: i64::MAX, end_min: i64::MIN, end_max: i64::MAX }
    }
}

impl WindowBounds {
    pub fn contains(&self, start: i64, end: i64) -> bool {
        (self.start_min..=self.start_max).contains(&start) && (self.end_min..=self.end_max).contains(&end)
    }
}

#[derive(Debug, Clone)]
pub struct PullPlan {
    pub table: Arc<DataSource>,
    /// Columns of a materialized row: keys, window bounds (windowed), values, ROWTIME.
    pub row_schema: SchemaRef,
    pub access: PullAccess,
    pub window: WindowBounds,
    /// The WHERE conditions not already satisfied by the key access.
    pub filter: Option<CompiledExpr>,
    pub columns: Vec<OutputColumn>,
    pub order_by: Vec<(CompiledExpr, bool)>,
    pub limit: Option<u64>,
    /// `SELECT *` with nothing to evaluate: rows are returned as stored.
    pub passthrough: bool,
    /// For a key lookup: per key column, where in the statement each looked-up value was
    /// written (so a cached plan can be reused with other key literals).
    pub key_literals: Vec<Vec<Pos>>,
    /// ksqlDB's `schema` header of the result: `` `COL` TYPE KEY, ...``.
    pub header_schema: String,
    pub column_names: Vec<String>,
    pub column_types: Vec<String>,
}

fn header_schema(columns: &[OutputColumn]) -> String {
    columns
        .iter()
        .map(|c| {
            let key = if c.kind == ColumnKind::Key { " KEY" } else { "" };
            format!("{} {}{}", crate::catalog::types::quote_ident(&c.name), c.expr.ty, key)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl PullPlan {
    /// Number of stored row columns (ROWTIME excluded).
    pub fn stored_columns(&self) -> usize {
        self.row_schema.fields().len() - 1
    }
}

/// The row schema of a table: keys, WINDOWSTART/WINDOWEND when windowed, values, ROWTIME.
pub fn row_schema(table: &DataSource) -> SchemaRef {
    let mut fields: Vec<Field> = Vec::new();
    for c in table.schema.key_columns() {
        fields.push(Field::new(&c.name, c.ty.to_arrow(), true));
    }
    if table.window.is_some() {
        fields.push(Field::new(WINDOWSTART, DataType::Int64, true));
        fields.push(Field::new(WINDOWEND, DataType::Int64, true));
    }
    for c in table.schema.columns().iter().filter(|c| c.kind != ColumnKind::Key) {
        fields.push(Field::new(&c.name, c.ty.to_arrow(), true));
    }
    fields.push(Field::new(ROWTIME, DataType::Int64, true));
    Arc::new(Schema::new(fields))
}

/// The AND-ed parts of a condition.
pub(super) fn conjuncts(e: &Expr, out: &mut Vec<Expr>) {
    match &e.kind {
        ExprKind::Binary { op: BinaryOp::And, left, right } => {
            conjuncts(left, out);
            conjuncts(right, out);
        }
        _ => out.push(e.clone()),
    }
}

pub(super) fn column_name(e: &Expr) -> Option<&str> {
    match &e.kind {
        ExprKind::Column { name, .. } => Some(name),
        _ => None,
    }
}

fn literal(e: &Expr) -> Option<&Literal> {
    match &e.kind {
        ExprKind::Literal(l) => Some(l),
        _ => None,
    }
}

/// A literal as a value of a key column of type `ty`.
pub fn key_value(l: &Literal, ty: &SqlType, col: &str, pos: super::ast::Pos) -> Result<KeyValueOwned, SqlError> {
    let mismatch = || SqlError::at(pos, format!("key column {col} is {ty}; compare it with a {ty} literal"), None);
    Ok(match (ty, l) {
        (_, Literal::Null) => KeyValueOwned::Null,
        (SqlType::String, Literal::String(s)) => KeyValueOwned::Bytes(s.clone().into_bytes()),
        (SqlType::Int | SqlType::Bigint, Literal::Integer(i)) => KeyValueOwned::Int(*i),
        (SqlType::Timestamp, Literal::Integer(i)) => KeyValueOwned::Int(*i),
        (SqlType::Timestamp, Literal::String(s)) => KeyValueOwned::Int(crate::format::timestamps::parse_iso_millis(s).ok_or_else(mismatch)?),
        (SqlType::Double, Literal::Integer(i)) => KeyValueOwned::Double(*i as f64),
        (SqlType::Double, Literal::Double(d)) => KeyValueOwned::Double(*d),
        (SqlType::Double, Literal::Decimal(s)) => KeyValueOwned::Double(s.parse().map_err(|_| mismatch())?),
        (SqlType::Decimal { scale, .. }, Literal::Integer(_) | Literal::Decimal(_)) => {
            let text = match l {
                Literal::Integer(i) => i.to_string(),
                Literal::Decimal(s) => s.clone(),
                _ => unreachable!(),
            };
            let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
            let mut frac = frac.to_string();
            while frac.len() < *scale as usize {
                frac.push('0');
            }
            if frac.len() > *scale as usize {
                return Err(mismatch());
            }
            KeyValueOwned::Decimal(format!("{int}{frac}").parse().map_err(|_| mismatch())?)
        }
        (SqlType::Boolean, Literal::Boolean(b)) => KeyValueOwned::Bool(*b),
        _ => return Err(mismatch()),
    })
}

/// Replaces timestamp strings compared with WINDOWSTART/WINDOWEND by epoch millis.
fn rewrite_window_literals(e: &Expr) -> Result<Expr, SqlError> {
    let conv = super::binder::time_literal;
    let is_window = |x: &Expr| matches!(column_name(x), Some(n) if n == WINDOWSTART || n == WINDOWEND);
    match &e.kind {
        ExprKind::Binary { op, left, right } if is_window(left) || is_window(right) => {
            Ok(Expr::new(ExprKind::Binary { op: *op, left: Box::new(conv(left)?), right: Box::new(conv(right)?) }, e.pos))
        }
        ExprKind::Between { expr, low, high, negated } if is_window(expr) => {
            Ok(Expr::new(ExprKind::Between { expr: expr.clone(), low: Box::new(conv(low)?), high: Box::new(conv(high)?), negated: *negated }, e.pos))
        }
        _ => e.map_children(&mut rewrite_window_literals),
    }
}

fn flip(op: BinaryOp) -> BinaryOp {
    match op {
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::LtEq => BinaryOp::GtEq,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::GtEq => BinaryOp::LtEq,
        other => other,
    }
}

/// `column op literal`, normalised so the column is on the left, with where the literal
/// was written.
fn comparison(e: &Expr) -> Option<(&str, BinaryOp, &Literal, Pos)> {
    let ExprKind::Binary { op, left, right } = &e.kind else { return None };
    if !matches!(op, BinaryOp::Eq | BinaryOp::Lt | BinaryOp::LtEq | BinaryOp::Gt | BinaryOp::GtEq) {
        return None;
    }
    if let (Some(c), Some(l)) = (column_name(left), literal(right)) {
        return Some((c, *op, l, right.pos));
    }
    if let (Some(l), Some(c)) = (literal(left), column_name(right)) {
        return Some((c, flip(*op), l, left.pos));
    }
    None
}

/// Every combination of one value per key column: the keys a lookup reads.
pub fn key_product(per_column: &[Vec<KeyValueOwned>]) -> Vec<Vec<KeyValueOwned>> {
    let mut keys: Vec<Vec<KeyValueOwned>> = vec![Vec::new()];
    for vals in per_column {
        keys = keys
            .into_iter()
            .flat_map(|k| {
                vals.iter().map(move |v| {
                    let mut k2 = k.clone();
                    k2.push(v.clone());
                    k2
                })
            })
            .collect();
    }
    keys
}

pub fn plan_pull(q: &Query, catalog: &Catalog) -> Result<PullPlan, SqlError> {
    let (table, qualifiers) = single_source(q, catalog)?;
    if table.kind != SourceKind::Table {
        return Err(SqlError::PlanInvariant("plan_pull is for tables"));
    }
    if q.emit == Some(Emit::Final) || q.window.is_some() || !q.group_by.is_empty() || q.having.is_some() || !q.partition_by.is_empty() {
        return Err(SqlError::at(
            q.pos,
            "pull queries support SELECT, WHERE, ORDER BY and LIMIT",
            Some("GROUP BY, WINDOW, HAVING and PARTITION BY belong in CREATE TABLE ... AS SELECT; add EMIT CHANGES for a push query".into()),
        ));
    }
    let windowed = table.window.is_some();
    let schema = row_schema(&table);
    let scope = Scope::single(&qualifiers, schema.clone())?;
    let binder = Binder { scope: &scope };
    let key_cols: Vec<(String, SqlType)> = table.schema.key_columns().map(|c| (c.name.clone(), c.ty.clone())).collect();

    let mut access = PullAccess::Scan;
    let mut key_literals = Vec::new();
    let mut window = WindowBounds::default();
    let mut residual: Vec<Expr> = Vec::new();
    if let Some(w) = &q.where_ {
        let w = rewrite_window_literals(w)?;
        let mut parts = Vec::new();
        conjuncts(&w, &mut parts);
        let mut eq: Vec<Option<Vec<KeyValueOwned>>> = vec![None; key_cols.len()];
        let mut eq_pos: Vec<Vec<Pos>> = vec![Vec::new(); key_cols.len()];
        let mut range_from: Option<(KeyValueOwned, bool)> = None;
        let mut range_to: Option<(KeyValueOwned, bool)> = None;
        for p in parts {
            if let Some((col, op, lit, lit_pos)) = comparison(&p) {
                if let Some(i) = key_cols.iter().position(|(n, _)| n == col) {
                    let ty = &key_cols[i].1;
                    if *lit == Literal::Null {
                        return Err(SqlError::at(
                            p.pos,
                            format!(
                                "Error in WHERE expression: Comparison with NULL not supported: {ty} {} NULL\nUse 'IS NULL' or 'IS NOT NULL' \
                                    instead.\nStatement: {p}",
                                op.symbol()
                            ),
                            None,
                        ));
                    }
                    let v = key_value(lit, ty, col, p.pos).map_err(|_| {
                        let lit_ty = super::in_predicate::literal_type(lit);
                        SqlError::at(
                            p.pos,
                            format!(
                                "Error in WHERE expression: Cannot compare {col} ({ty}) to {} ({lit_ty}) with {}.\nStatement: {p}",
                                Expr::new(ExprKind::Literal(lit.clone()), lit_pos),
                                op.ksql_name()
                            ),
                            None,
                        )
                    })?;
                    match op {
                        BinaryOp::Eq => {
                            eq[i] = Some(vec![v]);
                            eq_pos[i] = vec![lit_pos];
                        }
                        BinaryOp::Gt | BinaryOp::GtEq if key_cols.len() == 1 => range_from = Some((v, op == BinaryOp::GtEq)),
                        BinaryOp::Lt | BinaryOp::LtEq if key_cols.len() == 1 => range_to = Some((v, op == BinaryOp::LtEq)),
                        _ => residual.push(p.clone()),
                    }
                    continue;
                }
                if col == WINDOWSTART || col == WINDOWEND {
                    if !windowed {
                        return Err(SqlError::at(
                            p.pos,
                            format!("WHERE column '{col}' cannot be resolved: {col} is only valid for windowed tables; {} is not windowed", table.name),
                            None,
                        ));
                    }
                    let Literal::Integer(t) = lit else {
                        return Err(SqlError::at(p.pos, format!("compare {col} with a timestamp"), None));
                    };
                    let (min, max) =
                        if col == WINDOWSTART { (&mut window.start_min, &mut window.start_max) } else { (&mut window.end_min, &mut window.end_max) };
                    match op {
                        BinaryOp::Eq => {
                            *min = (*min).max(*t);
                            *max = (*max).min(*t);
                        }
                        BinaryOp::Gt => *min = (*min).max(t.saturating_add(1)),
                        BinaryOp::GtEq => *min = (*min).max(*t),
                        BinaryOp::Lt => *max = (*max).min(t.saturating_sub(1)),
                        BinaryOp::LtEq => *max = (*max).min(*t),
                        _ => {}
                    }
                    continue;
                }
            }
            if let ExprKind::InList { expr, list, negated: false } = &p.kind
                && let Some(i) = column_name(expr).and_then(|c| key_cols.iter().position(|(n, _)| n == c))
                && list.iter().all(|l| literal(l).is_some())
            {
                let (name, ty) = (&key_cols[i].0, &key_cols[i].1);
                let vals = list
                    .iter()
                    .map(|l| match literal(l).expect("checked") {
                        Literal::Null => Err(SqlError::at(l.pos, format!("Primary key columns can not be NULL: ({name} = null)"), None)),
                        lit => key_value(lit, ty, name, l.pos)
                            .map_err(|_| SqlError::at(l.pos, format!("{l} can not be converted to the type of the key column: {name} {ty} KEY"), None)),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                eq[i] = Some(vals);
                eq_pos[i] = list.iter().map(|l| l.pos).collect();
                continue;
            }
            if let ExprKind::Between { expr, low, high, negated: false } = &p.kind
                && let (Some(c), Some(lo), Some(hi)) = (column_name(expr), literal(low), literal(high))
            {
                if key_cols.len() == 1 && key_cols[0].0 == c {
                    range_from = Some((key_value(lo, &key_cols[0].1, c, low.pos)?, true));
                    range_to = Some((key_value(hi, &key_cols[0].1, c, high.pos)?, true));
                    continue;
                }
                if (c == WINDOWSTART || c == WINDOWEND)
                    && let (Literal::Integer(a), Literal::Integer(b)) = (lo, hi)
                {
                    let (min, max) = if c == WINDOWSTART { (&mut window.start_min, &mut window.start_max) } else { (&mut window.end_min, &mut window.end_max) };
                    *min = (*min).max(*a);
                    *max = (*max).min(*b);
                    continue;
                }
            }
            residual.push(p);
        }
        if eq.iter().all(|e| e.is_some()) && !key_cols.is_empty() {
            let per_column: Vec<Vec<KeyValueOwned>> = eq.into_iter().flatten().collect();
            access = PullAccess::KeyLookup(key_product(&per_column));
            key_literals = eq_pos;
            if range_from.is_some() || range_to.is_some() {
                // Both an equality and a range on the key: keep the range as a filter.
                residual.extend(w_range_exprs(&w));
            }
        } else {
            for (i, e) in eq.iter().enumerate() {
                if e.is_some() {
                    // A partial key: equality checked per row.
                    residual.extend(key_condition_exprs(&w, &key_cols[i].0));
                }
            }
            if range_from.is_some() || range_to.is_some() {
                access = PullAccess::Range { from: range_from, to: range_to };
            }
        }
    }
    let filter = if residual.is_empty() {
        None
    } else {
        let combined = residual
            .into_iter()
            .reduce(|a, b| {
                let pos = a.pos;
                Expr::new(ExprKind::Binary { op: BinaryOp::And, left: Box::new(a), right: Box::new(b) }, pos)
            })
            .expect("not empty");
        let c = compile(binder.bind(&combined)?, &scope)?.written_as(&combined);
        if c.ty != SqlType::Boolean {
            return Err(SqlError::at(combined.pos, format!("WHERE needs a BOOLEAN condition, found {}", c.ty), None));
        }
        Some(c)
    };

    // SELECT list over the row. Key columns, and a windowed table's window bounds, are
    // marked KEY in the header as ksqlDB marks them.
    let is_key = |name: &str| key_cols.iter().any(|(n, _)| n == name) || (windowed && (name == "WINDOWSTART" || name == "WINDOWEND"));
    let mut columns = Vec::new();
    let mut passthrough = true;
    let mut generated = 0;
    let mut select = Vec::with_capacity(q.select.len());
    for item in &q.select {
        match item {
            SelectItem::StructFields { expr, pos } => {
                for (e, name) in super::binder::struct_field_items(&binder, expr, *pos)? {
                    select.push(SelectItem::Expr { expr: e, alias: name.map(|value| super::ast::Ident { value, pos: *pos }) });
                }
            }
            other => select.push(other.clone()),
        }
    }
    for item in &select {
        match item {
            SelectItem::StructFields { .. } => {}
            SelectItem::Wildcard { .. } => {
                for f in schema.fields().iter().take(schema.fields().len() - 1) {
                    let e = Expr::new(ExprKind::Column { qualifier: None, name: f.name().clone() }, Default::default());
                    let kind = if is_key(f.name()) { ColumnKind::Key } else { ColumnKind::Value };
                    columns.push(OutputColumn { name: f.name().clone(), expr: compile(binder.bind(&e)?, &scope)?.written_as(&e), kind });
                }
            }
            SelectItem::Expr { expr, alias } => {
                passthrough = false;
                let name = alias.as_ref().map(|a| a.value.clone()).or_else(|| natural_name(expr)).unwrap_or_else(|| {
                    let n = format!("KSQL_COL_{generated}");
                    generated += 1;
                    n
                });
                let kind = match (&expr.kind, alias) {
                    (ExprKind::Column { name: c, .. }, None) if is_key(c) => ColumnKind::Key,
                    _ => ColumnKind::Value,
                };
                columns.push(OutputColumn { name, expr: compile(binder.bind(expr)?, &scope)?.written_as(expr), kind });
            }
        }
    }
    if select.len() != 1 {
        passthrough = false;
    }
    for (i, c) in columns.iter().enumerate() {
        if columns[..i].iter().any(|d| d.name == c.name) {
            let what = if c.kind == ColumnKind::Key { "key" } else { "value" };
            return Err(SqlError::at(
                q.pos,
                format!("Duplicate {what} columns found in schema: `{}` {}", c.name, c.expr.ty),
                Some("give one of them another name with AS".into()),
            ));
        }
    }
    let mut order_by = Vec::new();
    for (e, asc) in &q.order_by {
        order_by.push((compile(binder.bind(e)?, &scope)?.written_as(e), *asc));
    }
    let passthrough = passthrough && filter.is_none() && order_by.is_empty();
    Ok(PullPlan {
        header_schema: header_schema(&columns),
        column_names: columns.iter().map(|c| c.name.clone()).collect(),
        column_types: columns.iter().map(|c| c.expr.ty.to_string()).collect(),
        table,
        row_schema: schema,
        access,
        window,
        filter,
        columns,
        order_by,
        limit: q.limit,
        passthrough,
        key_literals,
    })
}

/// The conjuncts of `w` that compare the key column `col` (kept as a row filter when the
/// key access cannot use them).
fn key_condition_exprs(w: &Expr, col: &str) -> Vec<Expr> {
    let mut parts = Vec::new();
    conjuncts(w, &mut parts);
    parts
        .into_iter()
        .filter(|p| match &p.kind {
            ExprKind::Binary { left, right, .. } => column_name(left) == Some(col) || column_name(right) == Some(col),
            ExprKind::InList { expr, .. } => column_name(expr) == Some(col),
            _ => false,
        })
        .collect()
}

/// Range comparisons in `w` (kept as filters next to a key lookup).
fn w_range_exprs(w: &Expr) -> Vec<Expr> {
    let mut parts = Vec::new();
    conjuncts(w, &mut parts);
    parts
        .into_iter()
        .filter(|p| {
            matches!(comparison(p), Some((c, op, _, _)) if op != BinaryOp::Eq && c != WINDOWSTART && c != WINDOWEND)
                || matches!(&p.kind, ExprKind::Between { expr, .. } if column_name(expr).is_some_and(|c| c != WINDOWSTART && c != WINDOWEND))
        })
        .collect()
}
