//! Binds parsed expressions to a scope of columns and lowers them to DataFusion logical
//! expressions, with ksqlDB's literal typing and function names.

use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::{Column, DFSchema, DFSchemaRef, ScalarValue};
use datafusion::logical_expr::{self as dfx, Expr as DfExpr, ExprSchemable, Operator, lit};
use datafusion::optimizer::analyzer::type_coercion::TypeCoercionRewriter;
use datafusion::common::tree_node::TreeNode;

use super::SqlError;
use super::ast::{BinaryOp, Expr, ExprKind, Literal, Pos, UnaryOp};
use super::functions::{Arity, call, ksql_functions, typed_null};
use super::udf::times::INTERVAL_UNITS;
use super::udf::{RowFunction, lambda_function_names, not_accepted, row_call, row_functions};
use crate::catalog::types::SqlType;

/// A column visible to expressions.
#[derive(Debug, Clone)]
pub struct ScopeColumn {
    /// The source alias (or name) the column can be qualified with.
    pub qualifier: Option<String>,
    pub name: String,
    /// The field name in the input batch schema.
    pub field: String,
    pub ty: SqlType,
}

/// The columns an expression can reference, and the schema of the batches it runs on.
#[derive(Debug, Clone)]
pub struct Scope {
    pub columns: Vec<ScopeColumn>,
    pub df_schema: DFSchemaRef,
    pub arrow_schema: SchemaRef,
}

impl Scope {
    /// A scope over one source's batches, qualifiable by `qualifiers` (name and alias).
    pub fn single(qualifiers: &[String], schema: SchemaRef) -> Result<Scope, SqlError> {
        let df_schema = Arc::new(DFSchema::try_from(schema.as_ref().clone()).map_err(SqlError::internal)?);
        let mut columns = Vec::new();
        for f in schema.fields() {
            let ty = SqlType::from_arrow(f.data_type())
                .ok_or_else(|| SqlError::internal(format!("column {} has unsupported type {}", f.name(), f.data_type())))?;
            for q in qualifiers.iter().map(Some).chain(std::iter::once(None)) {
                columns.push(ScopeColumn { qualifier: q.cloned(), name: f.name().clone(), field: f.name().clone(), ty: ty.clone() });
            }
        }
        Ok(Scope { columns, df_schema, arrow_schema: schema })
    }

    /// Whether columns can be qualified with `q` here.
    pub fn knows_qualifier(&self, q: &str) -> bool {
        self.columns.iter().any(|c| c.qualifier.as_deref() == Some(q))
    }

    pub fn resolve(&self, qualifier: Option<&str>, name: &str, pos: Pos) -> Result<&ScopeColumn, SqlError> {
        let found = self.columns.iter().find(|c| c.qualifier.as_deref() == qualifier && c.name == name);
        found.ok_or_else(|| {
            if let Some(q) = qualifier {
                let qualified_scope = self.columns.is_empty() || self.columns.iter().any(|c| c.qualifier.is_some());
                if qualified_scope && !self.knows_qualifier(q) {
                    return SqlError::at(pos, format!("Failed to prepare statement: '{q}' is not a valid stream/table name or alias."), Some("qualify columns with a source named in FROM or its alias".into()));
                }
            }
            let mut names: Vec<&str> = self.columns.iter().filter(|c| c.qualifier.is_none()).map(|c| c.name.as_str()).collect();
            names.dedup();
            let full = match qualifier {
                Some(q) => format!("{q}.{name}"),
                None => name.to_string(),
            };
            SqlError::at(
                pos,
                format!("column '{full}' cannot be resolved"),
                Some(format!(
                    "available columns are {}; quote names with back-quotes to keep their case, e.g. `myCol`",
                    names.join(", ")
                )),
            )
        })
    }
}

pub struct Binder<'a> {
    pub scope: &'a Scope,
}

fn decimal_literal(text: &str, pos: Pos) -> Result<DfExpr, SqlError> {
    let negative = text.starts_with('-');
    let digits = text.trim_start_matches('-');
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    let all: String = format!("{int_part}{frac_part}");
    let trimmed = all.trim_start_matches('0');
    let precision = trimmed.len().max(frac_part.len()).max(1);
    if precision > 38 {
        return Err(SqlError::at(pos, format!("decimal literal {text} has more than 38 digits"), None));
    }
    let mut unscaled: i128 = all.parse().map_err(|_| SqlError::at(pos, format!("invalid decimal literal {text}"), None))?;
    if negative {
        unscaled = -unscaled;
    }
    Ok(DfExpr::Literal(ScalarValue::Decimal128(Some(unscaled), precision as u8, frac_part.len() as i8), None))
}

fn binary(l: DfExpr, op: Operator, r: DfExpr) -> DfExpr {
    DfExpr::BinaryExpr(dfx::BinaryExpr::new(Box::new(l), op, Box::new(r)))
}

impl Binder<'_> {
    /// The SQL type of a bound expression (after DataFusion's type coercion).
    pub fn type_of(&self, e: &DfExpr) -> Result<SqlType, SqlError> {
        let coerced = coerce(e.clone(), &self.scope.df_schema)?;
        let dt = coerced.get_type(&self.scope.df_schema).map_err(SqlError::internal)?;
        SqlType::from_arrow(&dt).ok_or_else(|| SqlError::internal(format!("expression has unsupported type {dt}")))
    }

    pub fn bind(&self, e: &Expr) -> Result<DfExpr, SqlError> {
        let pos = e.pos;
        Ok(match &e.kind {
            ExprKind::Column { qualifier, name } => {
                let c = self.scope.resolve(qualifier.as_deref(), name, pos)?;
                DfExpr::Column(Column::new_unqualified(c.field.clone()))
            }
            ExprKind::Literal(l) => match l {
                Literal::Null => lit(ScalarValue::Null),
                Literal::Boolean(b) => lit(*b),
                Literal::Integer(v) => match i32::try_from(*v) {
                    Ok(i) => lit(i),
                    Err(_) => lit(*v),
                },
                Literal::Decimal(s) => decimal_literal(s, pos)?,
                Literal::Double(d) => lit(*d),
                Literal::String(s) => lit(s.clone()),
            },
            ExprKind::Unary { op, expr } => {
                let inner = self.bind(expr)?;
                match op {
                    UnaryOp::Minus => DfExpr::Negative(Box::new(inner)),
                    UnaryOp::Plus => inner,
                    UnaryOp::Not => DfExpr::Not(Box::new(inner)),
                }
            }
            ExprKind::Binary { op, left, right } if op.is_comparison() && (is_time_column(left) || is_time_column(right)) && (is_string(left) || is_string(right)) => {
                let (left, right) = (time_literal(left)?, time_literal(right)?);
                self.bind(&Expr::new(ExprKind::Binary { op: *op, left: Box::new(left), right: Box::new(right) }, pos))?
            }
            ExprKind::Binary { op, left, right } => {
                let l = self.bind(left)?;
                let r = self.bind(right)?;
                let is_null = |x: &Expr| matches!(x.kind, ExprKind::Literal(Literal::Null));
                if op.is_arithmetic() && (is_null(left) || is_null(right)) {
                    let name = |x: &Expr, b: &DfExpr| if is_null(x) { "null".to_string() } else { self.type_of(b).map(|t| t.to_string()).unwrap_or_else(|_| "null".into()) };
                    return Err(SqlError::at(
                        pos,
                        format!("Error processing expression: {e}. Arithmetic on types {} and {} are not supported.", name(left, &l), name(right, &r)),
                        Some("CAST the NULL to the type it stands for, e.g. CAST(NULL AS INTEGER)".into()),
                    ));
                }
                let dop = match op {
                    // ksqlDB: + on two strings concatenates them.
                    BinaryOp::Plus if self.type_of(&l).ok() == Some(SqlType::String) && self.type_of(&r).ok() == Some(SqlType::String) => Operator::StringConcat,
                    BinaryOp::Plus => Operator::Plus,
                    BinaryOp::Minus => Operator::Minus,
                    BinaryOp::Multiply => Operator::Multiply,
                    BinaryOp::Divide => Operator::Divide,
                    BinaryOp::Modulo => Operator::Modulo,
                    BinaryOp::Concat => Operator::StringConcat,
                    BinaryOp::Eq => Operator::Eq,
                    BinaryOp::NotEq => Operator::NotEq,
                    BinaryOp::Lt => Operator::Lt,
                    BinaryOp::LtEq => Operator::LtEq,
                    BinaryOp::Gt => Operator::Gt,
                    BinaryOp::GtEq => Operator::GtEq,
                    BinaryOp::And => Operator::And,
                    BinaryOp::Or => Operator::Or,
                };
                if op.is_comparison() {
                    if let (Ok(lt), Ok(rt)) = (self.type_of(&l), self.type_of(&r)) {
                        if !comparable(&lt, *op, &rt) {
                            return Err(SqlError::at(
                                pos,
                                format!("Invalid expression: Cannot compare {left} ({lt}) to {right} ({rt}) with {}.", op.ksql_name()),
                                Some("CAST one side to the other's type".into()),
                            ));
                        }
                    }
                }
                let out = binary(l, dop, r);
                // Check the operand types now, so the error points at the operator.
                if let Err(err) = self.type_of(&out) {
                    let (lt, rt) = (self.bind(left).and_then(|x| self.type_of(&x)), self.bind(right).and_then(|x| self.type_of(&x)));
                    let msg = match (lt, rt) {
                        (Ok(lt), Ok(rt)) => format!("operator {} cannot be applied to {lt} and {rt}", op.symbol()),
                        _ => err.to_string(),
                    };
                    return Err(SqlError::at(pos, msg, Some("CAST one side to the other's type".into())));
                }
                out
            }
            ExprKind::Function { name, args, distinct, star } => self.function(name, args, *distinct, *star, pos)?,
            ExprKind::Cast { expr, ty } => {
                let inner = self.bind(expr)?;
                let null = matches!(&inner, DfExpr::Literal(v, _) if v.is_null());
                match self.type_of(&inner) {
                    Ok(from) if !null && !super::udf::cast::castable(&from, ty) => {
                        return Err(SqlError::at(pos, format!("Cast of {from} to {ty} is not supported"), Some("CAST converts between scalar types, to STRING, and between collections of castable types".into())));
                    }
                    Ok(SqlType::Array(_) | SqlType::Map(..) | SqlType::Struct(_)) if *ty == SqlType::String => super::udf::cast::collection_to_string(inner),
                    _ => DfExpr::Cast(dfx::Cast::new(Box::new(inner), ty.to_arrow())),
                }
            }
            ExprKind::Case { operand, whens, else_ } => {
                let operand = operand.as_ref().map(|o| self.bind(o)).transpose()?;
                let mut when_then = Vec::new();
                for (w, t) in whens {
                    when_then.push((Box::new(self.bind(w)?), Box::new(self.bind(t)?)));
                }
                let else_expr = else_.as_ref().map(|x| self.bind(x)).transpose()?.map(Box::new);
                DfExpr::Case(dfx::Case { expr: operand.map(Box::new), when_then_expr: when_then, else_expr })
            }
            ExprKind::Like { expr, pattern, escape, negated } => DfExpr::Like(dfx::Like::new(
                *negated,
                {
                    let bound = self.bind(expr)?;
                    match self.type_of(&bound) {
                        Ok(SqlType::String) | Err(_) => {}
                        Ok(other) => {
                            return Err(SqlError::at(pos, format!("The column type for Like condition must be VARCHAR. The column type is {other}"), Some("CAST the value to STRING".into())));
                        }
                    }
                    Box::new(bound)
                },
                Box::new(self.bind(pattern)?),
                *escape,
                false,
            )),
            ExprKind::Between { expr, low, high, negated } if is_time_column(expr) && (is_string(low) || is_string(high)) => {
                let (low, high) = (Box::new(time_literal(low)?), Box::new(time_literal(high)?));
                self.bind(&Expr::new(ExprKind::Between { expr: expr.clone(), low, high, negated: *negated }, pos))?
            }
            ExprKind::Between { expr, low, high, negated } => DfExpr::Between(dfx::Between::new({
                // ksqlDB checks BETWEEN as `expr >= low` and `expr <= high`.
                for (bound, op) in [(low, BinaryOp::GtEq), (high, BinaryOp::LtEq)] {
                    self.bind(&Expr::new(ExprKind::Binary { op, left: expr.clone(), right: bound.clone() }, pos))?;
                }
                Box::new(self.bind(expr)?)
            },
                *negated,
                Box::new(self.bind(low)?),
                Box::new(self.bind(high)?),
            )),
            ExprKind::InList { expr, list, negated } => self.in_list(expr, list, *negated).map_err(|e| e.with_pos(pos))?,
            ExprKind::IsNull { expr, negated } => {
                let inner = Box::new(self.bind(expr)?);
                if *negated { DfExpr::IsNotNull(inner) } else { DfExpr::IsNull(inner) }
            }
            ExprKind::IsDistinctFrom { left, right, negated } => binary(
                self.bind(left)?,
                if *negated { Operator::IsNotDistinctFrom } else { Operator::IsDistinctFrom },
                self.bind(right)?,
            ),
            ExprKind::Subscript { expr, index } => {
                let base = self.bind(expr)?;
                let idx = self.bind(index)?;
                match self.type_of(&base)? {
                    SqlType::Array(_) => call("array_element", vec![base, DfExpr::Cast(dfx::Cast::new(Box::new(idx), DataType::Int64))]),
                    SqlType::Map(k, _) => {
                        let key = DfExpr::Cast(dfx::Cast::new(Box::new(idx), k.to_arrow()));
                        call("array_element", vec![call("map_extract", vec![base, key]), lit(1i64)])
                    }
                    other => {
                        return Err(SqlError::at(pos, format!("cannot subscript a value of type {other}"), Some("[...] applies to ARRAY and MAP values".into())));
                    }
                }
            }
            ExprKind::Dereference { expr, field } => {
                let base = self.bind(expr)?;
                match self.type_of(&base)? {
                    SqlType::Struct(fields) => {
                        let name = fields
                            .iter()
                            .find(|(n, _)| n == field)
                            .or_else(|| fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(field)))
                            .map(|(n, _)| n.clone())
                            .ok_or_else(|| {
                                SqlError::at(
                                    pos,
                                    format!("struct has no field '{field}'"),
                                    Some(format!("its fields are {}", fields.iter().map(|f| f.0.as_str()).collect::<Vec<_>>().join(", "))),
                                )
                            })?;
                        call("get_field", vec![base, lit(name)])
                    }
                    other => return Err(SqlError::at(pos, format!("'->' needs a STRUCT, found {other}"), None)),
                }
            }
            ExprKind::Array(items) => {
                if items.is_empty() {
                    return Err(SqlError::at(pos, "an empty ARRAY[] has no element type", Some("CAST(ARRAY[] AS ARRAY<INT>) is not supported yet; add an element".into())));
                }
                call("make_array", items.iter().map(|x| self.bind(x)).collect::<Result<_, _>>()?)
            }
            ExprKind::Map(entries) => {
                if entries.is_empty() {
                    return Err(SqlError::at(pos, "an empty MAP() has no key or value type", None));
                }
                let keys = entries.iter().map(|(k, _)| self.bind(k)).collect::<Result<Vec<_>, _>>()?;
                let vals = entries.iter().map(|(_, v)| self.bind(v)).collect::<Result<Vec<_>, _>>()?;
                call("map", vec![call("make_array", keys), call("make_array", vals)])
            }
            ExprKind::Struct(fields) => {
                let mut args = Vec::new();
                for (n, v) in fields {
                    args.push(lit(n.clone()));
                    let bound = self.bind(v)?;
                    // A bare NULL field needs a type; ksqlDB makes it a STRING.
                    let bound = if matches!(bound, DfExpr::Literal(ScalarValue::Null, _)) { typed_null(&SqlType::String) } else { bound };
                    args.push(bound);
                }
                if args.is_empty() {
                    return Err(SqlError::at(pos, "STRUCT() needs at least one field", None));
                }
                call("named_struct", args)
            }
            ExprKind::Lambda { .. } => {
                return Err(SqlError::at(pos, "a lambda expression is only allowed as an argument of TRANSFORM, FILTER or REDUCE", None));
            }
        })
    }

    fn function(&self, name: &str, args: &[Expr], distinct: bool, star: bool, pos: Pos) -> Result<DfExpr, SqlError> {
        if is_aggregate(name) {
            return Err(SqlError::at(
                pos,
                format!("aggregate function {name} is not allowed here"),
                Some("aggregates need a GROUP BY and are only valid in the SELECT list or HAVING of CREATE TABLE ... AS SELECT".into()),
            ));
        }
        if lambda_function_names().contains(&name) {
            if distinct || star {
                return Err(SqlError::at(pos, format!("{name} does not take DISTINCT or *"), None));
            }
            return self.lambda_function(name, args, pos);
        }
        if let Some(f) = row_functions().get(name) {
            return self.row_function(f, args, distinct || star, pos);
        }
        let Some(f) = ksql_functions().get(name) else {
            return Err(SqlError::at(pos, format!("Can't find any functions with the name '{name}'"), Some("SHOW FUNCTIONS lists the functions this server knows".into())));
        };
        let bound = args.iter().map(|a| self.bind(a)).collect::<Result<Vec<_>, _>>()?;
        let types = bound.iter().map(|a| self.type_of(a)).collect::<Result<Vec<_>, _>>()?;
        check_call(name, f.arity, f.description, distinct || star, &types, pos)?;
        let out = (f.lower)(bound, &types);
        if let Err(e) = self.type_of(&out) {
            return Err(SqlError::at(pos, not_accepted(name, &types), Some(format!("{}; underlying error: {}", f.description, e.message()))));
        }
        Ok(out)
    }
}

impl Binder<'_> {
    /// A call of a function evaluated row by row; its result type comes from its
    /// argument types.
    fn row_function(&self, f: &RowFunction, args: &[Expr], distinct_or_star: bool, pos: Pos) -> Result<DfExpr, SqlError> {
        let args: Vec<Expr> = args
            .iter()
            .enumerate()
            .map(|(i, a)| match &a.kind {
                // TIMESTAMPADD(SECONDS, ...): the unit is a keyword, not a column.
                ExprKind::Column { qualifier: None, name } if i == 0 && takes_interval_unit(f.name) && is_interval_unit(name) => {
                    Expr::new(ExprKind::Literal(Literal::String(name.clone())), a.pos)
                }
                _ => a.clone(),
            })
            .collect();
        let bound = args.iter().map(|a| self.bind(a)).collect::<Result<Vec<_>, _>>()?;
        let types = bound.iter().map(|a| self.type_of(a)).collect::<Result<Vec<_>, _>>()?;
        check_call(f.name, f.arity, f.description, distinct_or_star, &types, pos)?;
        let ret = (f.returns)(&types).map_err(|why| SqlError::at(pos, not_accepted(f.name, &types), Some(format!("{}; {why}", f.description))))?;
        Ok(row_call(f, bound, &ret))
    }
}

fn takes_interval_unit(name: &str) -> bool {
    matches!(name, "TIMESTAMPADD" | "TIMESTAMPSUB" | "DATEADD" | "DATESUB" | "TIMEADD" | "TIMESUB")
}

fn is_interval_unit(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    INTERVAL_UNITS.iter().any(|u| *u == n || u.trim_end_matches('S') == n)
}

/// Checks the number of arguments (and that there is no DISTINCT or `*`), with
/// ksqlDB's message naming the argument types.
fn check_call(name: &str, arity: Arity, description: &str, distinct_or_star: bool, types: &[SqlType], pos: Pos) -> Result<(), SqlError> {
    let got = types.len();
    if distinct_or_star || got < arity.min || arity.max.is_some_and(|m| got > m) {
        let expected = match arity.max {
            Some(m) if m == arity.min => format!("{m}"),
            Some(m) => format!("{} to {m}", arity.min),
            None => format!("at least {}", arity.min),
        };
        return Err(SqlError::at(pos, not_accepted(name, types), Some(format!("{name} takes {expected} argument(s): {description}"))));
    }
    Ok(())
}

/// Aggregate function names (handled by the aggregation planner, not as scalars).
pub fn is_aggregate(name: &str) -> bool {
    matches!(
        name,
        "COUNT" | "ATTR" | "SUM" | "AVG" | "MIN" | "MAX" | "LATEST_BY_OFFSET" | "EARLIEST_BY_OFFSET" | "COLLECT_LIST" | "COLLECT_SET"
            | "COUNT_DISTINCT" | "TOPK" | "TOPKDISTINCT" | "HISTOGRAM" | "STDDEV_SAMP" | "STDDEV_SAMPLE" | "CORRELATION"
    )
}

/// Applies DataFusion's type coercion to an expression.
pub fn coerce(e: DfExpr, schema: &DFSchema) -> Result<DfExpr, SqlError> {
    let mut rewriter = TypeCoercionRewriter::new(schema);
    e.rewrite(&mut rewriter).map(|t| t.data).map_err(SqlError::internal)
}

/// The name ksqlDB gives an unaliased select expression, or `None` for a generated one.
pub fn natural_name(e: &Expr) -> Option<String> {
    match &e.kind {
        ExprKind::Column { name, .. } => Some(name.clone()),
        ExprKind::Dereference { field, .. } => Some(field.clone()),
        _ => None,
    }
}

/// Whether ksqlDB lets `left op right` compare: numbers with numbers, strings with strings,
/// booleans with booleans, bytes with bytes, dates and times with each other or strings,
/// and arrays, maps and structs only for (in)equality with their own kind.
fn comparable(left: &SqlType, op: BinaryOp, right: &SqlType) -> bool {
    let temporal = |t: &SqlType| matches!(t, SqlType::Date | SqlType::Time | SqlType::Timestamp);
    match left {
        l if l.is_numeric() => right.is_numeric(),
        SqlType::String => matches!(right, SqlType::String) || temporal(right),
        SqlType::Boolean => matches!(right, SqlType::Boolean),
        SqlType::Bytes => matches!(right, SqlType::Bytes),
        l if temporal(l) => temporal(right) || matches!(right, SqlType::String),
        SqlType::Array(_) => matches!(op, BinaryOp::Eq | BinaryOp::NotEq) && matches!(right, SqlType::Array(_)),
        SqlType::Map(..) => matches!(op, BinaryOp::Eq | BinaryOp::NotEq) && matches!(right, SqlType::Map(..)),
        SqlType::Struct(_) => matches!(op, BinaryOp::Eq | BinaryOp::NotEq) && matches!(right, SqlType::Struct(_)),
        _ => true,
    }
}

/// ROWTIME, WINDOWSTART and WINDOWEND: BIGINT columns that ksqlDB compares with timestamp
/// strings.
fn is_time_column(e: &Expr) -> bool {
    matches!(&e.kind, ExprKind::Column { name, .. } if name == crate::catalog::types::ROWTIME || name == "WINDOWSTART" || name == "WINDOWEND")
}

fn is_string(e: &Expr) -> bool {
    matches!(e.kind, ExprKind::Literal(Literal::String(_)))
}

/// A string literal compared with a time column, as epoch milliseconds.
pub fn time_literal(e: &Expr) -> Result<Expr, SqlError> {
    match &e.kind {
        ExprKind::Literal(Literal::String(s)) => {
            let ms = crate::format::timestamps::parse_partial_timestamp(s).ok_or_else(|| {
                SqlError::at(e.pos, format!("'{s}' is not a timestamp"), Some("write times as epoch milliseconds or 'yyyy-MM-ddTHH:mm:ss.SSS' (any tail may be left out; a zone such as +0100 may follow)".into()))
            })?;
            Ok(Expr::new(ExprKind::Literal(Literal::Integer(ms)), e.pos))
        }
        _ => Ok(e.clone()),
    }
}

/// ksqlDB reports a CAST it cannot do in the SELECT list as an invalid select.
pub fn in_select(e: SqlError) -> SqlError {
    match e {
        SqlError::Invalid { message, pos, hint } if message.starts_with("Cast of ") => SqlError::Invalid { message: format!("Invalid Select: {message}"), pos, hint },
        other => other,
    }
}
