//! `x [NOT] IN (a, b, ...)` with ksqlDB's typing: literals in the list (also inside
//! ARRAY, MAP and STRUCT constructors) are read as the type of `x` (`'4.000'` for an
//! INTEGER, `'yes'` for a BOOLEAN), other expressions must be comparable with `x`
//! (numbers with numbers, collections element-wise). The result is true or false, never
//! null: a null never matches.

use datafusion::logical_expr::{self as dfx, Expr as DfExpr, Operator, lit};

use super::SqlError;
use super::ast::{Expr, ExprKind, Literal};
use super::binder::Binder;
use crate::catalog::types::SqlType;

fn invalid_syntax(ty: &SqlType, text: &str) -> SqlError {
    let base = match ty {
        SqlType::Decimal { .. } => "DECIMAL".to_string(),
        other => other.to_string(),
    };
    SqlError::invalid(format!("Invalid Predicate: invalid input syntax for type {base}: \"{text}\"."), None)
}

fn no_operator(left: &SqlType, right: &SqlType, e: &Expr) -> SqlError {
    SqlError::invalid(format!("Invalid Predicate: operator does not exist: {left} = {right} ({e})\nHint: You might need to add explicit type casts."), None)
}

/// ksqlDB's reading of a string as a BOOLEAN: any prefix of true/yes or false/no.
fn parse_boolean(s: &str) -> Option<bool> {
    let l = s.trim().to_ascii_lowercase();
    if l.is_empty() {
        return None;
    }
    if "true".starts_with(&l) || "yes".starts_with(&l) {
        Some(true)
    } else if "false".starts_with(&l) || "no".starts_with(&l) {
        Some(false)
    } else {
        None
    }
}

pub(super) fn literal_type(l: &Literal) -> SqlType {
    match l {
        Literal::Null | Literal::String(_) => SqlType::String,
        Literal::Boolean(_) => SqlType::Boolean,
        Literal::Integer(i) if i32::try_from(*i).is_ok() => SqlType::Int,
        Literal::Integer(_) => SqlType::Bigint,
        Literal::Decimal(_) => SqlType::Decimal { precision: 38, scale: 0 },
        Literal::Double(_) => SqlType::Double,
    }
}

/// Rewrites literals in `e` as values of `ty`; other expressions are left as they are.
fn coerce_literals(e: &Expr, ty: &SqlType) -> Result<Expr, SqlError> {
    let with = |kind| Ok(Expr::new(kind, e.pos));
    match (&e.kind, ty) {
        (ExprKind::Literal(Literal::Null), _) => Ok(e.clone()),
        (ExprKind::Literal(Literal::String(s)), t) if t.is_numeric() => {
            let text = s.trim();
            if text.parse::<f64>().is_err() || text.contains(['e', 'E', 'n', 'N', 'i', 'I']) {
                return Err(invalid_syntax(t, s));
            }
            match t {
                SqlType::Double => with(ExprKind::Literal(Literal::Double(text.parse().map_err(|_| invalid_syntax(t, s))?))),
                _ if text.contains('.') => with(ExprKind::Literal(Literal::Decimal(text.to_string()))),
                _ => with(ExprKind::Literal(Literal::Integer(text.parse().map_err(|_| invalid_syntax(t, s))?))),
            }
        }
        (ExprKind::Literal(Literal::String(s)), SqlType::Boolean) => match parse_boolean(s) {
            Some(b) => with(ExprKind::Literal(Literal::Boolean(b))),
            None => Err(invalid_syntax(ty, s)),
        },
        (ExprKind::Literal(l), SqlType::String) => {
            let text = match l {
                Literal::Boolean(b) => b.to_string(),
                Literal::Integer(i) => i.to_string(),
                Literal::Decimal(d) => d.clone(),
                Literal::Double(d) => d.to_string(),
                Literal::String(s) => s.clone(),
                Literal::Null => return Ok(e.clone()),
            };
            with(ExprKind::Literal(Literal::String(text)))
        }
        (ExprKind::Literal(l @ Literal::Boolean(_)), t) if t.is_numeric() => Err(no_operator(t, &literal_type(l), e)),
        (ExprKind::Literal(l), SqlType::Boolean) if !matches!(l, Literal::Boolean(_)) => Err(no_operator(ty, &literal_type(l), e)),
        (ExprKind::Array(items), SqlType::Array(elem)) => with(ExprKind::Array(items.iter().map(|i| coerce_literals(i, elem)).collect::<Result<_, _>>()?)),
        (ExprKind::Map(entries), SqlType::Map(k, v)) => {
            with(ExprKind::Map(entries.iter().map(|(a, b)| Ok((coerce_literals(a, k)?, coerce_literals(b, v)?))).collect::<Result<_, SqlError>>()?))
        }
        (ExprKind::Struct(fields), SqlType::Struct(types)) => with(ExprKind::Struct(
            fields
                .iter()
                .map(|(n, v)| match types.iter().find(|(tn, _)| tn == n) {
                    Some((_, t)) => Ok((n.clone(), coerce_literals(v, t)?)),
                    None => Ok((n.clone(), v.clone())),
                })
                .collect::<Result<_, SqlError>>()?,
        )),
        _ => Ok(e.clone()),
    }
}

/// The type both sides of a comparison are read as: the wider numeric type, element-wise
/// for collections; otherwise `a`.
fn wider(a: &SqlType, b: &SqlType) -> SqlType {
    fn rank(t: &SqlType) -> u8 {
        match t {
            SqlType::Int => 1,
            SqlType::Bigint => 2,
            SqlType::Decimal { .. } => 3,
            SqlType::Double => 4,
            _ => 0,
        }
    }
    match (a, b) {
        (x, y) if x.is_numeric() && y.is_numeric() => {
            if rank(y) > rank(x) {
                y.clone()
            } else {
                x.clone()
            }
        }
        (SqlType::Array(x), SqlType::Array(y)) => SqlType::Array(Box::new(wider(x, y))),
        (SqlType::Map(k1, v1), SqlType::Map(k2, v2)) => SqlType::Map(Box::new(wider(k1, k2)), Box::new(wider(v1, v2))),
        _ => a.clone(),
    }
}

/// Whether values of `b` can be compared with values of `a`.
fn comparable(a: &SqlType, b: &SqlType) -> bool {
    match (a, b) {
        _ if a == b => true,
        (x, y) if x.is_numeric() && y.is_numeric() => true,
        (SqlType::Array(x), SqlType::Array(y)) => comparable(x, y),
        (SqlType::Map(k1, v1), SqlType::Map(k2, v2)) => comparable(k1, k2) && comparable(v1, v2),
        (SqlType::Struct(f1), SqlType::Struct(f2)) => f2.iter().all(|(n, t)| f1.iter().find(|(m, _)| m == n).is_none_or(|(_, u)| comparable(u, t))),
        _ => false,
    }
}

/// The disjunction of `items` as a balanced tree: a list of any length nests only
/// log2(length) deep, so every pass over the expression stays within the stack.
fn balanced_or(mut items: Vec<DfExpr>) -> Option<DfExpr> {
    while items.len() > 1 {
        let mut pairs = items.into_iter();
        let mut next = Vec::with_capacity(pairs.len().div_ceil(2));
        while let Some(a) = pairs.next() {
            next.push(match pairs.next() {
                Some(b) => a.or(b),
                None => a,
            });
        }
        items = next;
    }
    items.pop()
}

impl Binder<'_> {
    /// `expr [NOT] IN (list)`.
    pub(super) fn in_list(&self, expr: &Expr, list: &[Expr], negated: bool) -> Result<DfExpr, SqlError> {
        let left = self.bind(expr)?;
        let left_ty = self.type_of(&left)?;
        let mut matches: Vec<DfExpr> = Vec::with_capacity(list.len());
        for item in list {
            let item = coerce_literals(item, &left_ty)?;
            let right = self.bind(&item)?;
            if matches!(item.kind, ExprKind::Literal(Literal::Null)) {
                continue;
            }
            let right_ty = self.type_of(&right)?;
            if !comparable(&left_ty, &right_ty) {
                return Err(no_operator(&left_ty, &right_ty, &item));
            }
            // Collections of another width are compared as values of the wider type.
            let (l, right) = match (&left_ty, &right_ty) {
                (l, r) if l == r || (l.is_numeric() && r.is_numeric()) => (left.clone(), right),
                (l, r) => {
                    let w = wider(l, r);
                    let cast = |e: DfExpr, from: &SqlType| if *from == w { e } else { DfExpr::Cast(dfx::Cast::new(Box::new(e), w.to_arrow())) };
                    (cast(left.clone(), l), cast(right, r))
                }
            };
            let eq = DfExpr::BinaryExpr(dfx::BinaryExpr::new(Box::new(l), Operator::IsNotDistinctFrom, Box::new(right)));
            matches.push(eq.and(DfExpr::IsNotNull(Box::new(left.clone()))));
        }
        let matched = balanced_or(matches).unwrap_or_else(|| lit(false));
        Ok(if negated { DfExpr::Not(Box::new(matched)) } else { matched })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_read_as_booleans_like_ksqldb() {
        assert_eq!(parse_boolean("TrUe"), Some(true));
        assert_eq!(parse_boolean("y"), Some(true));
        assert_eq!(parse_boolean("tr"), Some(true));
        assert_eq!(parse_boolean("n"), Some(false));
        assert_eq!(parse_boolean("Not a boolean"), None);
    }

    #[test]
    fn list_literals_take_the_left_type() {
        let pos = crate::sql::ast::Pos { line: 1, column: 1 };
        let s = |v: &str| Expr::new(ExprKind::Literal(Literal::String(v.into())), pos);
        let e = coerce_literals(&s("4.000"), &SqlType::Int).expect("numeric text");
        assert!(matches!(e.kind, ExprKind::Literal(Literal::Decimal(ref d)) if d == "4.000"));
        let err = coerce_literals(&s("10 - not a number"), &SqlType::Int).expect_err("not a number");
        assert!(err.to_string().contains("invalid input syntax for type INTEGER: \"10 - not a number\""), "{err}");
    }

    #[test]
    fn a_long_in_list_nests_logarithmically() {
        fn depth(e: &DfExpr) -> usize {
            match e {
                DfExpr::BinaryExpr(b) => 1 + depth(&b.left).max(depth(&b.right)),
                _ => 1,
            }
        }
        let items: Vec<DfExpr> = (0..10_000).map(|i| datafusion::logical_expr::col("X").eq(lit(i))).collect();
        let e = balanced_or(items).unwrap();
        assert!(depth(&e) <= 16, "{}", depth(&e));
    }
}
