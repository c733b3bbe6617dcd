//! Binds parsed expressions to a scope of columns and lowers them to DataFusion logical
//! expressions, with ksqlDB's literal typing and function names.

use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::tree_node::TreeNode;
use datafusion::common::{Column, DFSchema, DFSchemaRef, ScalarValue};
use datafusion::logical_expr::{self as dfx, Expr as DfExpr, Operator, lit};
use datafusion::optimizer::analyzer::type_coercion::TypeCoercionRewriter;

use super::SqlError;
use super::ast::{BinaryOp, Expr, ExprKind, Literal, Pos, UnaryOp};
use super::functions::{Arity, call, ksql_functions, typed_null};
use super::overloads::{ambiguous_call, extremum_type, null_call_is_ambiguous};
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
                .ok_or_else(|| SqlError::UnsupportedArrowType { what: format!("column {}", f.name()), ty: f.data_type().clone() })?;
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
                    return SqlError::at(
                        pos,
                        format!("Failed to prepare statement: '{q}' is not a valid stream/table name or alias."),
                        Some("qualify columns with a source named in FROM or its alias".into()),
                    );
                }
            }
            if qualifier.is_none() {
                // A name two joined sources share must be qualified.
                let mut candidates: Vec<(&str, &str)> = Vec::new();
                for c in self.columns.iter().filter(|c| c.name == name) {
                    if let Some(q) = &c.qualifier
                        && !candidates.iter().any(|(_, f)| *f == c.field)
                    {
                        candidates.push((q, &c.field));
                    }
                }
                if candidates.len() > 1 {
                    let shown: Vec<String> = candidates.iter().map(|(q, _)| format!("{q}.{name}")).collect();
                    return SqlError::at(
                        pos,
                        format!("Column '{name}' is ambiguous. Could be {}.", super::listing(&shown, "or")),
                        Some("qualify the column with its source's name or alias".into()),
                    );
                }
            }
            let mut names: Vec<&str> = self.columns.iter().filter(|c| c.qualifier.is_none()).map(|c| c.name.as_str()).collect();
            names.dedup();
            let full = match qualifier {
                Some(q) => format!("{q}.{name}"),
                None => name.to_string(),
            };
            SqlError::UnknownColumn {
                name: full,
                clause: None,
                pos,
                hint: Some(format!("available columns are {}; quote names with back-quotes to keep their case, e.g. `myCol`", names.join(", "))),
            }
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
        let dt = super::expr_types::arrow_type_of(e, &self.scope.df_schema)?;
        SqlType::from_arrow(&dt).ok_or_else(|| SqlError::UnsupportedArrowType { what: "expression".into(), ty: dt.clone() })
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
            ExprKind::Binary { op, left, right }
                if op.is_comparison() && (is_time_column(left) || is_time_column(right)) && (is_string(left) || is_string(right)) =>
            {
                let (left, right) = (time_literal(left)?, time_literal(right)?);
                self.bind(&Expr::new(ExprKind::Binary { op: *op, left: Box::new(left), right: Box::new(right) }, pos))?
            }
            ExprKind::Binary { op, left, right } => {
                let l = self.bind(left)?;
                let r = self.bind(right)?;
                let is_null = |x: &Expr| matches!(x.kind, ExprKind::Literal(Literal::Null));
                if op.is_arithmetic() && (is_null(left) || is_null(right)) {
                    let name = |x: &Expr, b: &DfExpr| {
                        if is_null(x) { "null".to_string() } else { self.type_of(b).map(|t| t.to_string()).unwrap_or_else(|_| "null".into()) }
                    };
                    return Err(SqlError::at(
                        pos,
                        format!("Error processing expression: {e}. Arithmetic on types {} and {} are not supported.", name(left, &l), name(right, &r)),
                        Some("CAST the NULL to the type it stands for, e.g. CAST(NULL AS INTEGER)".into()),
                    ));
                }
                let dop = match op {
                    // ksqlDB: + on two strings concatenates them.
                    BinaryOp::Plus if self.type_of(&l).ok() == Some(SqlType::String) && self.type_of(&r).ok() == Some(SqlType::String) => {
                        Operator::StringConcat
                    }
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
                if op.is_comparison() && (is_null_literal(&l) || is_null_literal(&r)) {
                    return Err(SqlError::at(
                        pos,
                        {
                            let shown = |e: &Expr| if matches!(e.kind, ExprKind::Literal(Literal::Null)) { "NULL".to_string() } else { e.to_string() };
                            format!("Comparison with NULL not supported: {} {} {}", shown(left), op.symbol(), shown(right))
                        },
                        Some("use IS NULL or IS NOT NULL".into()),
                    ));
                }
                if op.is_comparison()
                    && let (Ok(lt), Ok(rt)) = (self.type_of(&l), self.type_of(&r))
                    && !comparable(&lt, *op, &rt)
                {
                    return Err(SqlError::at(
                        pos,
                        format!("Invalid expression: Cannot compare {left} ({lt}) to {right} ({rt}) with {}.", op.ksql_name()),
                        Some("CAST one side to the other's type".into()),
                    ));
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
                        return Err(SqlError::UnsupportedCast {
                            from: from.to_string(),
                            to: ty.to_string(),
                            in_select: false,
                            pos,
                            hint: Some("CAST converts between scalar types, to STRING, and between collections of castable types".into()),
                        });
                    }
                    Ok(SqlType::Array(_) | SqlType::Map(..) | SqlType::Struct(_)) if *ty == SqlType::String => super::udf::cast::collection_to_string(inner),
                    Ok(SqlType::Double) if *ty == SqlType::String && !null => super::udf::cast::double_to_string(inner),
                    _ => DfExpr::Cast(dfx::Cast::new(Box::new(inner), ty.to_arrow())),
                }
            }
            ExprKind::Case { operand, whens, else_ } => {
                let null = |e: &Expr| matches!(e.kind, ExprKind::Literal(Literal::Null));
                if whens.iter().all(|(_, t)| null(t)) && else_.as_deref().is_none_or(null) {
                    return Err(SqlError::at(
                        pos,
                        "Invalid Case expression. All case branches have NULL type",
                        Some("give one branch a value of the type the CASE returns, e.g. CAST(NULL AS STRING)".into()),
                    ));
                }
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
                            return Err(SqlError::at(
                                pos,
                                format!("The column type for Like condition must be VARCHAR. The column type is {other}"),
                                Some("CAST the value to STRING".into()),
                            ));
                        }
                    }
                    Box::new(bound)
                },
                Box::new(super::udf::like::like_pattern(self.bind(pattern)?, *escape)),
                None,
                false,
            )),
            ExprKind::Between { expr, low, high, negated } if is_time_column(expr) && (is_string(low) || is_string(high)) => {
                let (low, high) = (Box::new(time_literal(low)?), Box::new(time_literal(high)?));
                self.bind(&Expr::new(ExprKind::Between { expr: expr.clone(), low, high, negated: *negated }, pos))?
            }
            ExprKind::Between { expr, low, high, negated } => DfExpr::Between(dfx::Between::new(
                {
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
            ExprKind::IsDistinctFrom { left, right, negated } => {
                binary(self.bind(left)?, if *negated { Operator::IsNotDistinctFrom } else { Operator::IsDistinctFrom }, self.bind(right)?)
            }
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
                        return Err(SqlError::at(
                            pos,
                            format!("cannot subscript a value of type {other}"),
                            Some("[...] applies to ARRAY and MAP values".into()),
                        ));
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
                    return Err(SqlError::at(
                        pos,
                        "Array constructor cannot be empty. Please supply at least one element (see https://github.com/confluentinc/ksql/issues/4239).",
                        Some("an empty ARRAY[] has no element type; add an element".into()),
                    ));
                }
                let bound = self.coerce_elements(items)?;
                if bound.iter().all(is_null_literal) {
                    return Err(SqlError::at(
                        pos,
                        "Cannot construct an array with all NULL elements (see https://github.com/confluentinc/ksql/issues/4239). As a workaround, you \
                            may cast a NULL value to the desired type.",
                        None,
                    ));
                }
                call("make_array", bound)
            }
            ExprKind::Map(entries) => {
                if entries.is_empty() {
                    return Err(SqlError::at(
                        pos,
                        "Map constructor cannot be empty. Please supply at least one key value pair (see https://github.com/confluentinc/ksql/issues/4239).",
                        Some("an empty MAP() has no key or value type; add an entry".into()),
                    ));
                }
                let keys = self.coerce_elements(&entries.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>())?;
                let vals = self.coerce_elements(&entries.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>())?;
                if keys.iter().all(is_null_literal) {
                    return Err(SqlError::at(pos, "Cannot construct a map with all NULL keys", Some("CAST a NULL key to the key type".into())));
                }
                if vals.iter().all(is_null_literal) {
                    return Err(SqlError::at(pos, "Cannot construct a map with all NULL values", Some("CAST a NULL value to the value type".into())));
                }
                call("map", vec![call("make_array", keys), call("make_array", vals)])
            }
            ExprKind::Struct(fields) => {
                if fields.is_empty() {
                    let empty = arrow::array::StructArray::new_empty_fields(1, None);
                    return Ok(DfExpr::Literal(ScalarValue::Struct(std::sync::Arc::new(empty)), None));
                }
                let mut args = Vec::new();
                for (i, (n, _)) in fields.iter().enumerate() {
                    if fields[..i].iter().any(|(m, _)| m == n) {
                        return Err(SqlError::at(
                            pos,
                            "Duplicate field names found in STRUCT",
                            Some(format!("name each field once; `{n}` appears more than once")),
                        ));
                    }
                }
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
        // LEN, SUBSTRING, LPAD, RPAD and SPLIT of BYTES are their BYTES forms.
        if let Some(f) = super::udf::bytes_overload(name)
            && let Some(first) = args.first()
            && self.bind(first).and_then(|b| self.type_of(&b)).is_ok_and(|t| t == SqlType::Bytes)
        {
            return self.row_function(f, args, distinct || star, pos);
        }
        if let Some(f) = row_functions().get(name) {
            return self.row_function(f, args, distinct || star, pos);
        }
        let Some(f) = ksql_functions().get(name) else {
            return Err(SqlError::at(
                pos,
                format!("Can't find any functions with the name '{name}'"),
                Some("SHOW FUNCTIONS lists the functions this server knows".into()),
            ));
        };
        let mut bound = args.iter().map(|a| self.bind(a)).collect::<Result<Vec<_>, _>>()?;
        let types = bound.iter().map(|a| self.type_of(a)).collect::<Result<Vec<_>, _>>()?;
        if matches!(name, "GREATEST" | "LEAST") && !bound.is_empty() {
            let nulls: Vec<bool> = bound.iter().map(|b| matches!(b, DfExpr::Literal(v, _) if v.is_null())).collect();
            if let Some(ty) = extremum_type(name, &types, &nulls, pos)? {
                bound = bound.into_iter().map(|b| DfExpr::Cast(dfx::Cast::new(Box::new(b), ty.to_arrow()))).collect();
            }
        }
        check_call(name, f.arity, f.description, distinct || star, &types, pos)?;
        let nulls: Vec<bool> = bound.iter().map(is_null_literal).collect();
        if nulls.contains(&true) && null_call_is_ambiguous(name, f.params, &types, &nulls) {
            return Err(ambiguous_call(name, &types, &nulls, pos));
        }
        if !f.params.accept(&types, &nulls) {
            return Err(SqlError::at(pos, not_accepted(name, &types), Some(f.description.to_string())));
        }
        let out = (f.lower)(bound, &types);
        if let Err(e) = self.type_of(&out) {
            return Err(SqlError::at(pos, not_accepted(name, &types), Some(format!("{}; underlying error: {}", f.description, e.message()))));
        }
        Ok(out)
    }
}

impl Binder<'_> {
    /// The elements of an ARRAY or MAP constructor, converted to their common type as
    /// ksqlDB does: numbers widen to the widest; a string literal among typed elements is
    /// parsed as their type (`'2e1'` as BIGINT is 20; a bad one is the statement's error);
    /// a number literal among strings becomes a string.
    fn coerce_elements(&self, items: &[Expr]) -> Result<Vec<DfExpr>, SqlError> {
        let bound = items.iter().map(|x| self.bind(x)).collect::<Result<Vec<_>, _>>()?;
        let string_literal = |e: &Expr| matches!(&e.kind, ExprKind::Literal(Literal::String(_)));
        let number_literal = |e: &Expr| matches!(&e.kind, ExprKind::Literal(Literal::Integer(_) | Literal::Decimal(_) | Literal::Double(_)));
        let mut typed: Vec<SqlType> = Vec::new();
        for (e, b) in items.iter().zip(&bound) {
            if !is_null_literal(b) && !string_literal(e) {
                typed.push(self.type_of(b)?);
            }
        }
        let Some(first) = typed.first().cloned() else { return Ok(bound) };
        let non_literal_strings = items
            .iter()
            .zip(&bound)
            .any(|(e, b)| !is_null_literal(b) && !string_literal(e) && !number_literal(e) && self.type_of(b).is_ok_and(|t| t == SqlType::String));
        let target = if non_literal_strings {
            SqlType::String
        } else if typed.iter().all(SqlType::is_numeric) {
            // A number written as a string counts as the DECIMAL it reads as.
            let written = items.iter().filter_map(|e| match &e.kind {
                ExprKind::Literal(Literal::String(s)) => Some(decimal_of_text(s)),
                _ => None,
            });
            typed.iter().cloned().chain(written).skip(1).fold(first, |a, b| numeric_wider(&a, &b))
        } else if typed.iter().all(|t| *t == first) {
            first
        } else {
            return Ok(bound);
        };
        let mut out = Vec::with_capacity(bound.len());
        for (e, b) in items.iter().zip(bound) {
            out.push(match &e.kind {
                _ if is_null_literal(&b) => typed_null(&target),
                ExprKind::Literal(Literal::String(s)) if target != SqlType::String => parse_literal(s, &target, e.pos)?,
                ExprKind::Literal(Literal::Integer(_) | Literal::Decimal(_) | Literal::Double(_)) if target == SqlType::String => lit(e.to_string()),
                _ if self.type_of(&b).is_ok_and(|t| t == target) => b,
                _ => DfExpr::Cast(dfx::Cast::new(Box::new(b), target.to_arrow())),
            });
        }
        Ok(out)
    }

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
        let mut bound = args.iter().map(|a| self.bind(a)).collect::<Result<Vec<_>, _>>()?;
        let nulls: Vec<usize> = (0..bound.len()).filter(|&i| is_null_literal(&bound[i])).collect();
        let mut types = bound.iter().map(|a| if is_null_literal(a) { Ok(SqlType::String) } else { self.type_of(a) }).collect::<Result<Vec<_>, _>>()?;
        check_call(f.name, f.arity, f.description, distinct_or_star, &types, pos)?;
        // A bare NULL argument takes the first type the function accepts in its place, as
        // ksqlDB's NULL matches any parameter type.
        if !nulls.is_empty() {
            let fits: Vec<Vec<SqlType>> = NULL_ARGUMENT_TYPES
                .iter()
                .filter_map(|t| {
                    let mut tried = types.clone();
                    nulls.iter().for_each(|&i| tried[i] = t.clone());
                    (f.returns)(&tried).is_ok().then_some(tried)
                })
                .collect();
            // A parameter that takes any type is one generic signature; one that takes some
            // types but not others stands for several signatures the NULL fits alike.
            if fits.len() > 1 && fits.len() < NULL_ARGUMENT_TYPES.len() {
                let flags: Vec<bool> = (0..types.len()).map(|i| nulls.contains(&i)).collect();
                return Err(ambiguous_call(f.name, &types, &flags, pos));
            }
            let accepted = fits.into_iter().next();
            if let Some(t) = accepted {
                types = t;
            }
            for &i in &nulls {
                bound[i] = typed_null(&types[i]);
            }
        }
        let ret = match (f.returns)(&types) {
            Ok(ret) => ret,
            Err(why) => {
                // ksqlDB widens numbers (INT -> BIGINT -> DECIMAL -> DOUBLE) to find a
                // signature the call fits.
                let Some((widened, ret)) = widenings(&types).into_iter().find_map(|t| (f.returns)(&t).ok().map(|r| (t, r))) else {
                    return Err(SqlError::at(pos, not_accepted(f.name, &types), Some(format!("{}; {why}", f.description))));
                };
                for (i, (from, to)) in types.iter().zip(&widened).enumerate() {
                    if from != to {
                        bound[i] = DfExpr::Cast(dfx::Cast::new(Box::new(bound[i].clone()), to.to_arrow()));
                    }
                }
                ret
            }
        };
        Ok(row_call(f, bound, &ret))
    }
}

/// The argument types a call may be widened to, tried in order: DECIMAL as DOUBLE, INT as
/// BIGINT, both, then every number as DOUBLE.
fn widenings(types: &[SqlType]) -> Vec<Vec<SqlType>> {
    let map = |f: &dyn Fn(&SqlType) -> Option<SqlType>| types.iter().map(|t| f(t).unwrap_or_else(|| t.clone())).collect::<Vec<_>>();
    let decimal_double = |t: &SqlType| matches!(t, SqlType::Decimal { .. }).then_some(SqlType::Double);
    let int_bigint = |t: &SqlType| matches!(t, SqlType::Int).then_some(SqlType::Bigint);
    let all_double = |t: &SqlType| t.is_numeric().then_some(SqlType::Double);
    let mut out: Vec<Vec<SqlType>> = Vec::new();
    for w in [map(&decimal_double), map(&int_bigint), map(&|t| int_bigint(t).or_else(|| decimal_double(t))), map(&all_double)] {
        if w.as_slice() != types && !out.contains(&w) {
            out.push(w);
        }
    }
    out
}

/// The type rule of a function lowered onto DataFusion's library, as binding a call applies
/// it: the result type of a call with arguments of these types, `None` when the call is
/// refused. (DESCRIBE FUNCTION lists the signatures it accepts.)
pub fn lowered_function_rule(name: &str) -> Option<impl Fn(&[SqlType]) -> Option<SqlType>> {
    ksql_functions().get(name)?;
    let name = name.to_string();
    Some(move |types: &[SqlType]| {
        let fields: Vec<arrow::datatypes::Field> =
            types.iter().enumerate().map(|(i, t)| arrow::datatypes::Field::new(format!("A{i}"), t.to_arrow(), true)).collect();
        let scope = Scope::single(&[], Arc::new(arrow::datatypes::Schema::new(fields))).ok()?;
        let binder = Binder { scope: &scope };
        let at = Pos::default();
        let args = (0..types.len()).map(|i| Expr::new(ExprKind::Column { qualifier: None, name: format!("A{i}") }, at)).collect();
        let call = Expr::new(ExprKind::Function { name: name.clone(), args, distinct: false, star: false }, at);
        binder.bind(&call).and_then(|b| binder.type_of(&b)).ok()
    })
}

/// `expr->*` in a SELECT list: one `expr->field` item per field of the STRUCT, named by
/// the field.
pub fn struct_field_items(binder: &Binder, expr: &Expr, pos: Pos) -> Result<Vec<(Expr, Option<String>)>, SqlError> {
    let ty = binder.type_of(&binder.bind(expr)?)?;
    let SqlType::Struct(fields) = ty else {
        return Err(SqlError::at(pos, format!("{expr}->* needs a STRUCT, but {expr} is {ty}"), Some("->* lists the fields of a STRUCT column".into())));
    };
    Ok(fields.into_iter().map(|(name, _)| (Expr::new(ExprKind::Dereference { expr: Box::new(expr.clone()), field: name.clone() }, pos), Some(name))).collect())
}

/// The types a bare NULL argument of a row function is tried as, in order.
const NULL_ARGUMENT_TYPES: &[SqlType] =
    &[SqlType::String, SqlType::Int, SqlType::Bigint, SqlType::Double, SqlType::Boolean, SqlType::Bytes, SqlType::Timestamp];

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
        "COUNT"
            | "ATTR"
            | "SUM"
            | "AVG"
            | "MIN"
            | "MAX"
            | "LATEST_BY_OFFSET"
            | "EARLIEST_BY_OFFSET"
            | "COLLECT_LIST"
            | "COLLECT_SET"
            | "COUNT_DISTINCT"
            | "TOPK"
            | "TOPKDISTINCT"
            | "HISTOGRAM"
            | "STDDEV_SAMP"
            | "STDDEV_SAMPLE"
            | "CORRELATION"
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
                SqlError::at(
                    e.pos,
                    format!("'{s}' is not a timestamp"),
                    Some("write times as epoch milliseconds or 'yyyy-MM-ddTHH:mm:ss.SSS' (any tail may be left out; a zone such as +0100 may follow)".into()),
                )
            })?;
            Ok(Expr::new(ExprKind::Literal(Literal::Integer(ms)), e.pos))
        }
        _ => Ok(e.clone()),
    }
}

/// In a projection ksqlDB gives `false`, not null, for a comparison with a null operand
/// (`SELECT a = b` where b is null). Filters need no rewrite: null rejects a row as false does.
pub fn null_comparisons_false(e: DfExpr) -> Result<DfExpr, SqlError> {
    use datafusion::common::tree_node::Transformed;
    e.transform_up(|e| {
        Ok(match &e {
            DfExpr::BinaryExpr(b) if matches!(b.op, Operator::Eq | Operator::NotEq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq) => {
                Transformed::yes(DfExpr::IsTrue(Box::new(e.clone())))
            }
            _ => Transformed::no(e),
        })
    })
    .map(|t| t.data)
    .map_err(SqlError::internal)
}

/// ksqlDB names the clause an unknown column is in (`SELECT column 'X' cannot be
/// resolved.`), and reports a CAST it cannot do in the SELECT list as an invalid select.
pub fn in_clause(clause: &'static str) -> impl Fn(SqlError) -> SqlError {
    move |e| match e {
        SqlError::UnknownColumn { name, clause: None, pos, hint } => SqlError::UnknownColumn { name, clause: Some(clause), pos, hint },
        SqlError::UnsupportedCast { from, to, pos, hint, .. } if clause == "SELECT" => SqlError::UnsupportedCast { from, to, in_select: true, pos, hint },
        other => other,
    }
}

fn is_null_literal(e: &DfExpr) -> bool {
    matches!(e, DfExpr::Literal(v, _) if v.is_null())
}

/// The wider of two numeric types (INT < BIGINT < DECIMAL < DOUBLE).
fn numeric_wider(a: &SqlType, b: &SqlType) -> SqlType {
    let rank = |t: &SqlType| match t {
        SqlType::Int => 0,
        SqlType::Bigint => 1,
        SqlType::Decimal { .. } => 2,
        _ => 3,
    };
    let as_decimal = |t: &SqlType| match t {
        SqlType::Int => SqlType::Decimal { precision: 10, scale: 0 },
        SqlType::Bigint => SqlType::Decimal { precision: 19, scale: 0 },
        other => other.clone(),
    };
    match (a, b) {
        (SqlType::Decimal { .. }, SqlType::Int | SqlType::Bigint) | (SqlType::Int | SqlType::Bigint, SqlType::Decimal { .. }) => {
            numeric_wider(&as_decimal(a), &as_decimal(b))
        }
        (SqlType::Decimal { precision: p1, scale: s1 }, SqlType::Decimal { precision: p2, scale: s2 }) => {
            let scale = (*s1).max(*s2);
            let int_digits = (*p1 as i16 - *s1 as i16).max(*p2 as i16 - *s2 as i16);
            SqlType::Decimal { precision: (int_digits + scale as i16).clamp(1, 38) as u8, scale }
        }
        _ if rank(a) >= rank(b) => a.clone(),
        _ => b.clone(),
    }
}

/// A string literal read as a value of `ty` when the statement is bound, with
/// ksqlDB's message when it is not one.
fn parse_literal(s: &str, ty: &SqlType, pos: Pos) -> Result<DfExpr, SqlError> {
    let bad = || {
        SqlError::at(pos, format!("invalid input syntax for type {ty}: \"{s}\"."), Some(format!("write a {ty} value, or CAST the other elements to STRING")))
    };
    let t = s.trim();
    let number = || t.parse::<f64>().ok().filter(|x| x.is_finite());
    Ok(match ty {
        SqlType::Int => {
            lit(t.parse::<i32>().ok().or_else(|| number().filter(|x| x.fract() == 0.0 && x.abs() <= i32::MAX as f64).map(|x| x as i32)).ok_or_else(bad)?)
        }
        SqlType::Bigint => {
            lit(t.parse::<i64>().ok().or_else(|| number().filter(|x| x.fract() == 0.0 && x.abs() < 9.2e18).map(|x| x as i64)).ok_or_else(bad)?)
        }
        SqlType::Double => lit(number().ok_or_else(bad)?),
        SqlType::Boolean => lit(match t.to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" => true,
            "false" | "f" | "no" | "n" => false,
            _ => return Err(bad()),
        }),
        SqlType::Decimal { precision, scale } => {
            let x = number().ok_or_else(bad)?;
            let unscaled = (x * 10f64.powi(i32::from(*scale))).round();
            DfExpr::Literal(ScalarValue::Decimal128(Some(unscaled as i128), *precision, *scale), None)
        }
        _ => DfExpr::Cast(dfx::Cast::new(Box::new(lit(t.to_string())), ty.to_arrow())),
    })
}

/// The DECIMAL type a number written as text reads as (`'2e1'` is DECIMAL(2, 0)); not a
/// number: INT, so that parsing it reports the bad text.
fn decimal_of_text(s: &str) -> SqlType {
    let t = s.trim();
    let Some(x) = t.parse::<f64>().ok().filter(|x| x.is_finite()) else { return SqlType::Int };
    let scale = if x.fract() == 0.0 { 0 } else { t.split_once('.').map(|(_, f)| f.trim_end_matches(|c: char| !c.is_ascii_digit()).len()).unwrap_or(0) };
    let int_digits = (x.abs().trunc() as u128).to_string().len();
    SqlType::Decimal { precision: (int_digits + scale).clamp(1, 38) as u8, scale: scale as i8 }
}
