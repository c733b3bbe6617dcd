//! Plans GROUP BY queries: collects the aggregate calls, checks that every other selected
//! expression is part of the GROUP BY, and compiles three expression sets:
//! over the source (WHERE, the grouping expressions, the aggregates' arguments) and over
//! the aggregated row (HAVING and the SELECT list). Decides the window and whether the
//! input must be repartitioned by the grouping key.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::SqlError;
use super::aggregates::{AggCall, AggKind};
use super::ast::{Emit, Expr, ExprKind, Literal, Query, SelectItem, WindowSpec};
use super::binder::{Binder, Scope, is_aggregate, natural_name};
use super::compile::{CompiledExpr, compile};
use super::planner::{OutputColumn, single_source};
use crate::catalog::types::{Column, ColumnKind, LogicalSchema, SqlType};
use crate::catalog::{Catalog, DataSource, SourceKind, WindowType};

pub const WINDOWSTART: &str = "WINDOWSTART";
pub const WINDOWEND: &str = "WINDOWEND";
const DEFAULT_GRACE_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowPlan {
    pub kind: WindowType,
    /// Window size (tumbling, hopping) or inactivity gap (session), ms.
    pub size_ms: i64,
    /// Hop (hopping); equals size for tumbling.
    pub advance_ms: i64,
    /// Records for a window are accepted until stream time passes its end + grace.
    pub grace_ms: i64,
    /// Window state and rows are kept until stream time passes its end + retention.
    pub retention_ms: i64,
}

impl WindowPlan {
    /// The [start, end) windows of a time window that contain `t` (not sessions).
    pub fn windows_for(&self, t: i64) -> Vec<(i64, i64)> {
        match self.kind {
            WindowType::Session => vec![(t, t)],
            _ => {
                let last = t.div_euclid(self.advance_ms) * self.advance_ms;
                let mut out = Vec::new();
                let mut s = last;
                // Like Kafka Streams, windows start at 0 or later.
                while s > t - self.size_ms && (s >= 0 || t < 0) {
                    out.push((s, s + self.size_ms));
                    s -= self.advance_ms;
                }
                out.reverse();
                out
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct AggregatePlan {
    pub source: Arc<DataSource>,
    pub input_schema: SchemaRef,
    /// WHERE, over the source.
    pub filter: Option<CompiledExpr>,
    /// Grouping expressions, over the source.
    pub group_by: Vec<CompiledExpr>,
    pub aggregates: Vec<AggCall>,
    pub window: Option<WindowPlan>,
    /// The aggregated row: KSQL_GROUP_i, KSQL_AGG_j, then WINDOWSTART/WINDOWEND if windowed.
    pub agg_schema: SchemaRef,
    /// HAVING, over the aggregated row.
    pub having: Option<CompiledExpr>,
    /// The SELECT list, over the aggregated row.
    pub columns: Vec<OutputColumn>,
    /// Output schema: the grouping columns as keys, then values.
    pub output: LogicalSchema,
    pub emit_final: bool,
    /// The input goes through an internal topic keyed by the grouping key.
    pub repartition: bool,
    /// ksqlDB's record cache (`cache.max.bytes.buffering`), in bytes: a group's updates
    /// within one commit interval go out as one row, its last, as long as the cache holds
    /// them. Set by the engine from the query's properties; 0 emits every update.
    pub record_cache_bytes: u64,
    /// How often the record cache lets its rows out (`commit.interval.ms`).
    pub commit_interval_ms: u64,
}

impl AggregatePlan {
    pub fn key_indices(&self) -> Vec<usize> {
        self.columns.iter().enumerate().filter(|(_, c)| c.kind == ColumnKind::Key).map(|(i, _)| i).collect()
    }

    pub fn value_indices(&self) -> Vec<usize> {
        self.columns.iter().enumerate().filter(|(_, c)| c.kind == ColumnKind::Value).map(|(i, _)| i).collect()
    }
}

fn group_name(i: usize) -> String {
    format!("KSQL_GROUP_{i}")
}

fn agg_name(i: usize) -> String {
    format!("KSQL_AGG_{i}")
}

/// Replaces GROUP BY expressions and aggregate calls by columns of the aggregated row.
struct Rewriter<'a> {
    groups: &'a [Expr],
    aggs: Vec<Expr>,
    windowed: bool,
}

impl Rewriter<'_> {
    fn rewrite(&mut self, e: &Expr) -> Result<Expr, SqlError> {
        if let Some(i) = self.groups.iter().position(|g| g.same_as(e)) {
            return Ok(Expr::new(ExprKind::Column { qualifier: None, name: group_name(i) }, e.pos));
        }
        match &e.kind {
            ExprKind::Function { name, args, .. } if is_aggregate(name) => {
                for a in args {
                    if contains_aggregate(a) {
                        return Err(SqlError::at(a.pos, format!("Aggregate functions can not be nested: {e}"), None));
                    }
                }
                let i = match self.aggs.iter().position(|x| x.same_as(e)) {
                    Some(i) => i,
                    None => {
                        self.aggs.push(e.clone());
                        self.aggs.len() - 1
                    }
                };
                Ok(Expr::new(ExprKind::Column { qualifier: None, name: agg_name(i) }, e.pos))
            }
            ExprKind::Column { name, .. } if self.windowed && (name == WINDOWSTART || name == WINDOWEND) => Ok(e.clone()),
            ExprKind::Column { qualifier, name } => {
                let full = match qualifier {
                    Some(q) => format!("{q}.{name}"),
                    None => name.clone(),
                };
                Err(SqlError::NotAggregated {
                    expressions: full,
                    in_having: false,
                    listing: false,
                    pos: Some(e.pos),
                    hint: Some("either add it to the GROUP BY or wrap it in an aggregate such as LATEST_BY_OFFSET(...)".into()),
                })
            }
            _ => e.map_children(&mut |c| self.rewrite(c)),
        }
    }
}

/// The name of the first aggregate call in `e`.
fn first_aggregate(e: &Expr) -> Option<String> {
    e.find_map(&mut |x| match &x.kind {
        ExprKind::Function { name, .. } if is_aggregate(name) => Some(name.clone()),
        _ => None,
    })
}

/// The first call of a function no library knows, as ksqlDB reports before anything else.
pub fn unknown_function(e: &Expr) -> Option<SqlError> {
    e.find_map(&mut |x| match &x.kind {
        ExprKind::Function { name, .. }
            if !is_aggregate(name)
                && !super::functions::ksql_functions().contains_key(name.as_str())
                && !super::udf::row_functions().contains_key(name.as_str())
                && !super::udf::lambda_function_names().contains(&name.as_str())
                && super::table_functions::kind_of(name).is_none() =>
        {
            Some(SqlError::at(
                x.pos,
                format!("Can't find any functions with the name '{name}'"),
                Some("SHOW FUNCTIONS lists the functions this server knows".into()),
            ))
        }
        _ => None,
    })
}

fn contains_aggregate(e: &Expr) -> bool {
    let mut found = false;
    let _ = e.map_children::<()>(&mut |c| {
        if contains_aggregate(c) {
            found = true;
        }
        Ok(c.clone())
    });
    found || matches!(&e.kind, ExprKind::Function { name, .. } if is_aggregate(name))
}

/// Whether a query aggregates (GROUP BY, or an aggregate in SELECT/HAVING).
pub fn is_aggregate_query(q: &Query) -> bool {
    !q.group_by.is_empty() || q.having.is_some() || q.select.iter().any(|s| matches!(s, SelectItem::Expr { expr, .. } if contains_aggregate(expr)))
}

/// ksqlDB's error for a column or expression where a function takes a literal.
fn not_literal(e: &Expr, function: &str, parameter: usize) -> Option<SqlError> {
    (!matches!(e.kind, ExprKind::Literal(_) | ExprKind::Unary { .. })).then(|| {
        SqlError::at(e.pos, format!("Parameter {parameter} passed to function {function} must be a literal constant, but was expression: '{e}'"), None)
    })
}

fn literal_int(e: &Expr, what: &str) -> Result<usize, SqlError> {
    match &e.kind {
        ExprKind::Literal(Literal::Integer(v)) if *v > 0 => Ok(*v as usize),
        _ => Err(SqlError::at(e.pos, format!("{what} must be a positive whole number literal"), None)),
    }
}

fn literal_bool(e: &Expr, what: &str) -> Result<bool, SqlError> {
    match &e.kind {
        ExprKind::Literal(Literal::Boolean(b)) => Ok(*b),
        _ => Err(SqlError::at(e.pos, format!("{what} must be TRUE or FALSE"), None)),
    }
}

fn bind_aggregate(call: &Expr, binder: &Binder<'_>, scope: &Scope) -> Result<AggCall, SqlError> {
    let ExprKind::Function { name, args, distinct, star } = &call.kind else { unreachable!("only aggregate calls are collected") };
    let arity = |n: std::ops::RangeInclusive<usize>| -> Result<(), SqlError> {
        if n.contains(&args.len()) {
            Ok(())
        } else {
            Err(SqlError::at(
                call.pos,
                format!(
                    "{name} takes {} argument(s), got {}",
                    if n.start() == n.end() { n.start().to_string() } else { format!("{} to {}", n.start(), n.end()) },
                    args.len()
                ),
                None,
            ))
        }
    };
    let (kind, columns): (AggKind, &[Expr]) = match name.as_str() {
        // COUNT() counts rows, like COUNT(*) (as in ksqlDB).
        "COUNT" if *star || (args.is_empty() && !*distinct) => (AggKind::CountStar, &[]),
        "COUNT" if *distinct => {
            arity(1..=1)?;
            (AggKind::CountDistinct, &args[..1])
        }
        "COUNT" => {
            arity(1..=1)?;
            (AggKind::Count, &args[..1])
        }
        "ATTR" => {
            arity(1..=1)?;
            (AggKind::Attr, &args[..1])
        }
        "SUM" | "AVG" | "MIN" | "MAX" | "COLLECT_LIST" | "COLLECT_SET" | "COUNT_DISTINCT" | "HISTOGRAM" | "STDDEV_SAMP" | "STDDEV_SAMPLE" => {
            arity(1..=1)?;
            let k = match name.as_str() {
                "SUM" => AggKind::Sum,
                "AVG" => AggKind::Avg,
                "MIN" => AggKind::Min,
                "MAX" => AggKind::Max,
                "COLLECT_LIST" => AggKind::CollectList(super::aggregates::COLLECT_LIMIT),
                "COLLECT_SET" => AggKind::CollectSet(super::aggregates::COLLECT_LIMIT),
                "COUNT_DISTINCT" => AggKind::CountDistinct,
                "HISTOGRAM" => AggKind::Histogram,
                _ => AggKind::StddevSamp,
            };
            (k, &args[..1])
        }
        "LATEST_BY_OFFSET" | "EARLIEST_BY_OFFSET" => {
            arity(1..=3)?;
            if let Some(e) = args.iter().enumerate().skip(1).find_map(|(i, a)| not_literal(a, name, i + 1)) {
                return Err(e);
            }
            let latest = name == "LATEST_BY_OFFSET";
            // (col[, ignore_nulls]) or (col, n[, ignore_nulls]).
            let counted = args.len() == 3 || args.get(1).is_some_and(|a| matches!(a.kind, ExprKind::Literal(Literal::Integer(_))));
            let k = if counted {
                let n = literal_int(&args[1], &format!("the second argument of {name} (how many values)"))?;
                let ignore_nulls = match args.get(2) {
                    Some(e) => literal_bool(e, &format!("the third argument of {name} (ignore nulls)"))?,
                    None => true,
                };
                if latest { AggKind::LatestN { n, ignore_nulls } } else { AggKind::EarliestN { n, ignore_nulls } }
            } else {
                let ignore_nulls = match args.get(1) {
                    Some(e) => literal_bool(e, &format!("the second argument of {name} (ignore nulls)"))?,
                    None => true,
                };
                if latest { AggKind::LatestByOffset { ignore_nulls } } else { AggKind::EarliestByOffset { ignore_nulls } }
            };
            (k, &args[..1])
        }
        "TOPK" | "TOPKDISTINCT" => {
            arity(2..=2)?;
            if let Some(e) = not_literal(&args[1], name, 2) {
                return Err(e);
            }
            let k = literal_int(&args[1], &format!("the second argument of {name}"))?;
            (if name == "TOPK" { AggKind::TopK(k) } else { AggKind::TopKDistinct(k) }, &args[..1])
        }
        "CORRELATION" => {
            arity(2..=2)?;
            (AggKind::Correlation, &args[..2])
        }
        other => return Err(SqlError::at(call.pos, format!("unknown aggregate function {other}"), None)),
    };
    if *star && name != "COUNT" {
        return Err(SqlError::at(call.pos, format!("{name}(*) is not valid; only COUNT(*)"), None));
    }
    let mut compiled = Vec::new();
    for a in columns {
        compiled.push(compile(binder.bind(a)?, scope)?.written_as(a));
    }
    let arg_types: Vec<SqlType> = compiled.iter().map(|c| c.ty.clone()).collect();
    let output = kind.output_type(&arg_types).map_err(|error| SqlError::AggregateArguments { function: name.to_string(), error, pos: call.pos })?;
    let shown: Vec<&str> = compiled.iter().map(|c| c.text.as_str()).collect();
    let text = if *star { format!("{name}(*)") } else { format!("{name}({})", shown.join(", ")) };
    Ok(AggCall { kind, args: compiled, arg_types, output, text })
}

fn window_plan(spec: &WindowSpec) -> Result<WindowPlan, SqlError> {
    let (kind, size, advance, retention, grace) = match spec {
        WindowSpec::Tumbling { size, retention, grace } => (WindowType::Tumbling, size.millis, size.millis, retention, grace),
        WindowSpec::Hopping { size, advance, retention, grace } => (WindowType::Hopping, size.millis, advance.millis, retention, grace),
        WindowSpec::Session { gap, retention, grace } => (WindowType::Session, gap.millis, gap.millis, retention, grace),
    };
    if size <= 0 || advance <= 0 {
        return Err(SqlError::invalid("window size and advance must be positive", None));
    }
    if advance > size {
        return Err(SqlError::invalid(format!("a HOPPING window's ADVANCE BY ({advance} ms) cannot be larger than its SIZE ({size} ms)"), None));
    }
    let grace_ms = grace.map(|g| g.millis).unwrap_or(DEFAULT_GRACE_MS);
    let retention_ms = retention.map(|r| r.millis).unwrap_or(0).max(size + grace_ms);
    Ok(WindowPlan { kind, size_ms: size, advance_ms: advance, grace_ms, retention_ms })
}

/// Plans a CREATE TABLE ... AS SELECT ... GROUP BY.
pub fn plan_aggregate(q: &Query, catalog: &Catalog, sink: Option<&str>) -> Result<AggregatePlan, SqlError> {
    let (source, qualifiers) = single_source(q, catalog)?;
    let selected = q.select.iter().filter_map(|s| match s {
        SelectItem::Expr { expr, .. } | SelectItem::StructFields { expr, .. } => Some(expr),
        SelectItem::Wildcard { .. } => None,
    });
    if let Some(e) = selected.chain(&q.group_by).chain(&q.having).chain(&q.where_).find_map(unknown_function) {
        return Err(e);
    }
    if q.select.iter().any(|s| matches!(s, SelectItem::Expr { expr, .. } if super::table_functions::contains_table_function(expr))) {
        return Err(SqlError::at(q.pos, "Table functions cannot be used with aggregations.", None));
    }
    if source.window.is_none() {
        let bound = q.where_.as_ref().and_then(|w| {
            w.find_map(&mut |x| match &x.kind {
                ExprKind::Column { name, .. } if name == WINDOWSTART || name == WINDOWEND => Some(name.clone()),
                _ => None,
            })
        });
        if let Some(name) = bound {
            return Err(SqlError::at(
                q.pos,
                format!("Error in WHERE expression: Unknown column {name}."),
                Some("window bounds exist only after aggregation; filter on them in HAVING or in a query over the result".into()),
            ));
        }
    }
    // Window bounds exist only once a row is aggregated into a window.
    let misplaced = [WINDOWSTART, WINDOWEND].into_iter().find_map(|bound| {
        let window_bound = |e: &Expr| e.find_map(&mut |x| matches!(&x.kind, ExprKind::Column { name, .. } if name == bound).then(|| (bound, x.pos)));
        let in_aggregate = |e: &Expr| {
            e.find_map(&mut |x| match &x.kind {
                ExprKind::Function { name, args, .. } if super::binder::is_aggregate(name) => args.iter().find_map(window_bound),
                _ => None,
            })
        };
        q.group_by.iter().find_map(window_bound).or_else(|| {
            q.select.iter().filter_map(|s| if let SelectItem::Expr { expr, .. } = s { Some(expr) } else { None }).chain(&q.having).find_map(in_aggregate)
        })
    });
    if let Some((name, pos)) = misplaced {
        return Err(SqlError::at(
            pos,
            format!("Window bounds column {name} can only be used in the SELECT clause of windowed aggregations and can not be passed to aggregate functions."),
            None,
        ));
    }
    if source.value_format.kind == crate::format::FormatKind::Kafka {
        return Err(SqlError::at(
            q.pos,
            format!("Source(s) {} are using the 'KAFKA' value format. This format does not yet support GROUP BY.", source.name),
            Some("create a copy of the source with VALUE_FORMAT='JSON' (CREATE STREAM ... WITH (VALUE_FORMAT='JSON') AS SELECT ...) and aggregate that".into()),
        ));
    }
    if q.group_by.is_empty() && sink.is_none() {
        return Err(SqlError::at(
            q.pos,
            "aggregate queries need a GROUP BY",
            Some("add GROUP BY with the columns that identify each row of the result".into()),
        ));
    }
    if !q.partition_by.is_empty() {
        return Err(SqlError::at(q.pos, "PARTITION BY cannot be combined with GROUP BY", Some("the GROUP BY columns are the key of the result".into())));
    }
    if q.limit.is_some() {
        return Err(super::planner::limit_refused(SourceKind::Table, q.pos));
    }
    if q.emit == Some(Emit::Final) && q.window.is_none() {
        return Err(SqlError::at(
            q.pos,
            "EMIT FINAL is only supported for windowed aggregations",
            Some("add a WINDOW TUMBLING/HOPPING/SESSION clause, or use EMIT CHANGES".into()),
        ));
    }
    let window = q.window.as_ref().map(window_plan).transpose()?;
    if window.is_some() && source.kind == SourceKind::Table {
        return Err(SqlError::at(q.pos, "windowed aggregations need a stream; tables cannot be windowed", None));
    }
    let input_schema = source.query_schema();
    let scope = Scope::single(&qualifiers, input_schema.clone())?;
    let binder = Binder { scope: &scope };

    let filter = match &q.where_ {
        Some(w) => {
            if contains_aggregate(w) {
                return Err(SqlError::at(w.pos, "aggregate functions are not allowed in WHERE", Some("use HAVING to filter on aggregates".into())));
            }
            let c = compile(binder.bind(w)?, &scope)?.written_as(w);
            if c.ty != SqlType::Boolean {
                return Err(SqlError::at(w.pos, format!("WHERE needs a BOOLEAN condition, found {}", c.ty), None));
            }
            Some(c)
        }
        None => None,
    };
    let mut group_by = Vec::new();
    for g in &q.group_by {
        if contains_aggregate(g) {
            let name = first_aggregate(g).unwrap_or_default();
            return Err(SqlError::at(g.pos, format!("GROUP BY does not support aggregate functions: {name} is an aggregate function."), None));
        }
        let c = compile(binder.bind(g)?, &scope)?.written_as(g);
        if group_by.iter().any(|x: &CompiledExpr| x.text == c.text) {
            return Err(SqlError::at(g.pos, format!("Duplicate GROUP BY expression: {g}"), None));
        }
        group_by.push(c);
    }

    // SELECT list and HAVING, rewritten onto the aggregated row.
    let mut rw = Rewriter { groups: &q.group_by, aggs: Vec::new(), windowed: window.is_some() };
    let mut items: Vec<(Expr, Option<String>, Expr)> = Vec::new();
    // Every selected expression that is neither grouped nor aggregated, as ksqlDB lists them.
    let mut loose: Vec<(String, SqlError)> = Vec::new();
    for item in &q.select {
        match item {
            SelectItem::Wildcard { pos, qualifier } => {
                // `*` selects every key and value column of the source.
                for c in source.schema.columns().iter().filter(|c| c.kind != ColumnKind::Header) {
                    let expr = Expr::new(ExprKind::Column { qualifier: qualifier.clone(), name: c.name.clone() }, *pos);
                    match rw.rewrite(&expr) {
                        Ok(r) => items.push((expr, None, r)),
                        Err(e @ SqlError::NotAggregated { .. }) => loose.push((c.name.clone(), e)),
                        Err(e) => return Err(e),
                    }
                }
            }
            SelectItem::Expr { expr, alias } => match rw.rewrite(expr) {
                Ok(r) => items.push((expr.clone(), alias.as_ref().map(|a| a.value.clone()), r)),
                Err(e @ SqlError::NotAggregated { .. }) => loose.push((expr.to_string(), e)),
                Err(e) => return Err(e),
            },
            SelectItem::StructFields { expr, pos } => {
                for (field, name) in super::binder::struct_field_items(&binder, expr, *pos)? {
                    match rw.rewrite(&field) {
                        Ok(r) => items.push((field, name, r)),
                        Err(e @ SqlError::NotAggregated { .. }) => loose.push((field.to_string(), e)),
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
    // ksqlDB's checks, in its order: aggregates at all, loose columns, a GROUP BY.
    let selects_aggregate = q.select.iter().any(|s| matches!(s, SelectItem::Expr { expr, .. } if contains_aggregate(expr)));
    if !selects_aggregate && !q.having.as_ref().is_some_and(contains_aggregate) {
        return Err(SqlError::at(q.pos, "GROUP BY requires aggregate functions in either the SELECT or HAVING clause.", None));
    }
    if let Some((_, first)) = loose.first() {
        let listed = loose.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>().join(", ");
        return Err(SqlError::NotAggregated { expressions: listed, in_having: false, listing: true, pos: first.pos(), hint: None });
    }
    let having_ast = match &q.having {
        Some(h) => Some(rw.rewrite(h).map_err(|e| match e {
            SqlError::NotAggregated { expressions, listing, pos, hint, .. } => SqlError::NotAggregated { expressions, in_having: true, listing, pos, hint },
            other => other,
        })?),
        None => None,
    };
    if rw.aggs.is_empty() {
        return Err(SqlError::at(q.pos, "GROUP BY requires aggregate functions in either the SELECT or HAVING clause.", None));
    }
    if q.group_by.is_empty() {
        let listed = rw.aggs.iter().map(|a| a.to_string().replace("(*)", "(ROWTIME)")).collect::<Vec<_>>().join(", ");
        return Err(SqlError::at(
            q.pos,
            format!("CREATE TABLE AS SELECT statement does not support aggregate function [{listed}] without a GROUP BY clause."),
            Some("add GROUP BY with the columns that identify each row of the result".into()),
        ));
    }
    let aggregates = rw.aggs.iter().map(|a| bind_aggregate(a, &binder, &scope)).collect::<Result<Vec<_>, _>>()?;
    if source.kind == SourceKind::Table {
        let mut refused: Vec<&str> = Vec::new();
        for a in aggregates.iter().filter(|a| !a.kind.retractable()) {
            let name = a.text.split('(').next().unwrap_or_default();
            if !refused.contains(&name) {
                refused.push(name);
            }
        }
        if let Some(last) = refused.pop() {
            let listed = if refused.is_empty() { format!("function {last}") } else { format!("functions {} and {last}", refused.join(", ")) };
            return Err(SqlError::at(
                q.pos,
                format!("The aggregation {listed} cannot be applied to a table source, only to a stream source."),
                Some(
                    "when a table row changes its old value must be taken back out, which these functions cannot do: aggregate a stream, or use \
                    COUNT, SUM, AVG, COLLECT_LIST, COLLECT_SET, COUNT_DISTINCT, HISTOGRAM, STDDEV_SAMP or CORRELATION"
                        .into(),
                ),
            ));
        }
    }

    let mut fields: Vec<Field> = group_by.iter().enumerate().map(|(i, g)| Field::new(group_name(i), g.ty.to_arrow(), true)).collect();
    fields.extend(aggregates.iter().enumerate().map(|(i, a)| Field::new(agg_name(i), a.output.to_arrow(), true)));
    if window.is_some() {
        fields.push(Field::new(WINDOWSTART, DataType::Int64, false));
        fields.push(Field::new(WINDOWEND, DataType::Int64, false));
    }
    let agg_schema: SchemaRef = Arc::new(Schema::new(fields));
    let agg_scope = Scope::single(&[], agg_schema.clone())?;
    let agg_binder = Binder { scope: &agg_scope };

    let having = match &having_ast {
        Some(h) => {
            let c = compile(agg_binder.bind(h)?, &agg_scope)?.written_as(h);
            if c.ty != SqlType::Boolean {
                return Err(SqlError::at(h.pos, format!("HAVING needs a BOOLEAN condition, found {}", c.ty), None));
            }
            Some(c)
        }
        None => None,
    };

    // Output names: alias, natural name, else KSQL_COL_n.
    let mut names: Vec<Option<String>> = items.iter().map(|(orig, alias, _)| alias.clone().or_else(|| natural_name(orig))).collect();
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
    let mut columns: Vec<OutputColumn> = Vec::new();
    let mut key_of_group: Vec<Option<usize>> = vec![None; group_by.len()];
    for ((orig, _, rewritten), name) in items.iter().zip(names) {
        let name = name.unwrap_or_default();
        if columns.iter().any(|c| c.name == name) {
            let ty = agg_binder.bind(rewritten).and_then(|b| agg_binder.type_of(&b)).map(|t| format!(" {t}")).unwrap_or_default();
            return Err(SqlError::at(
                orig.pos,
                format!("Duplicate value columns found in schema: `{name}`{ty}"),
                Some("give one of them an alias with AS".into()),
            ));
        }
        if [WINDOWSTART, WINDOWEND, "ROWTIME", "ROWPARTITION", "ROWOFFSET"].contains(&name.as_str()) {
            return Err(SqlError::at(orig.pos, format!("Reserved column name in select: {name}. Please remove or alias the column."), None));
        }
        let expr = compile(agg_binder.bind(rewritten)?, &agg_scope)?.written_as(rewritten);
        let mut kind = ColumnKind::Value;
        if let ExprKind::Column { name: col, .. } = &rewritten.kind
            && let Some(i) = (0..group_by.len()).find(|i| *col == group_name(*i))
        {
            match key_of_group[i] {
                None => {
                    key_of_group[i] = Some(columns.len());
                    kind = ColumnKind::Key;
                }
                Some(first) => {
                    return Err(SqlError::at(
                        orig.pos,
                        format!("The projection contains a key column more than once: `{}` and `{name}`.", columns[first].name),
                        Some("select each GROUP BY expression once: it is the result's key".into()),
                    ));
                }
            }
        }
        columns.push(OutputColumn { name, expr, kind });
    }
    let missing: Vec<String> = key_of_group.iter().zip(&q.group_by).filter(|(k, _)| k.is_none()).map(|(_, g)| g.to_string()).collect();
    if let Some(last) = missing.last() {
        let target = sink.map(|s| format!("`{s}`")).unwrap_or_else(|| "the table".into());
        let listed = match missing.len() {
            1 => format!("expression {last}"),
            n => format!("expressions {} and {last}", missing[..n - 1].join(", ")),
        };
        return Err(SqlError::at(
            q.group_by[key_of_group.iter().position(Option::is_none).unwrap_or(0)].pos,
            format!(
                "Key missing from projection (ie, SELECT). See https://cnfl.io/2LV7ouS.\nThe query used to build {target} must include the grouping \
                    {listed} in its projection (eg, SELECT {}...).",
                missing.join(", ")
            ),
            None,
        ));
    }
    // Keys in GROUP BY order, then values in SELECT order.
    let mut ordered: Vec<Column> = key_of_group
        .iter()
        .map(|k| {
            let c = &columns[k.expect("checked")];
            Column::new(c.name.clone(), c.expr.ty.clone(), ColumnKind::Key)
        })
        .collect();
    ordered.extend(columns.iter().filter(|c| c.kind == ColumnKind::Value).map(|c| Column::new(c.name.clone(), c.expr.ty.clone(), ColumnKind::Value)));
    for k in key_of_group.iter().flatten() {
        let c = &columns[*k];
        if c.expr.ty.any_nested(&|t| matches!(t, SqlType::Map(..))) {
            return Err(SqlError::at(
                q.pos,
                format!(
                    "Map keys, including types that contain maps, are not supported as they may lead to unexpected behavior due to inconsistent \
                        serialization. Key column name: `{}`. Column type: {}. See https://github.com/confluentinc/ksql/issues/6621 for more.",
                    c.name, c.expr.ty
                ),
                None,
            ));
        }
    }
    if !columns.iter().any(|c| c.kind == ColumnKind::Value) {
        return Err(SqlError::at(
            q.pos,
            "The projection contains no value columns.",
            Some("select at least one aggregate or other value besides the GROUP BY columns".into()),
        ));
    }
    let output = LogicalSchema::new(ordered);

    let key_names: Vec<&str> = source.schema.key_columns().map(|c| c.name.as_str()).collect();
    let groups_are_source_key =
        q.group_by.len() == key_names.len() && q.group_by.iter().zip(&key_names).all(|(g, k)| matches!(&g.kind, ExprKind::Column { name, .. } if name == k));
    let repartition = source.kind == SourceKind::Table || !groups_are_source_key;
    Ok(AggregatePlan {
        source,
        input_schema,
        filter,
        group_by,
        aggregates,
        window,
        agg_schema,
        having,
        columns,
        output,
        emit_final: q.emit == Some(Emit::Final),
        repartition,
        record_cache_bytes: 0,
        commit_interval_ms: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hopping_windows_cover_the_time() {
        let w = WindowPlan { kind: WindowType::Hopping, size_ms: 10, advance_ms: 5, grace_ms: 0, retention_ms: 10 };
        assert_eq!(w.windows_for(12), vec![(5, 15), (10, 20)]);
        assert_eq!(w.windows_for(10), vec![(5, 15), (10, 20)]);
        assert_eq!(w.windows_for(3), vec![(0, 10)], "no window starts before 0");
        let t = WindowPlan { kind: WindowType::Tumbling, size_ms: 60, advance_ms: 60, grace_ms: 0, retention_ms: 60 };
        assert_eq!(t.windows_for(59), vec![(0, 60)]);
        assert_eq!(t.windows_for(-1), vec![(-60, 0)]);
    }
}
