//! ksqlDB's scalar functions by name, mapped onto DataFusion's function library, with
//! adapters where ksqlDB's semantics differ (1-based SUBSTRING with negative positions,
//! ROUND returning BIGINT, ...).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use datafusion::common::ScalarValue;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{Expr, ScalarUDF, lit};

use crate::catalog::types::SqlType;

/// DataFusion's scalar functions by their DataFusion name.
fn library() -> &'static HashMap<String, Arc<ScalarUDF>> {
    static LIB: OnceLock<HashMap<String, Arc<ScalarUDF>>> = OnceLock::new();
    LIB.get_or_init(|| {
        let mut m = HashMap::new();
        for f in datafusion::functions::all_default_functions().into_iter().chain(datafusion::functions_nested::all_default_nested_functions()) {
            for alias in f.aliases() {
                m.insert(alias.clone(), f.clone());
            }
            m.insert(f.name().to_string(), f);
        }
        m
    })
}

/// Calls a DataFusion function by name. Panics only if the name is not in DataFusion's
/// library, which the unit test below rules out for every name used here.
pub fn call(name: &str, args: Vec<Expr>) -> Expr {
    let f = library().get(name).unwrap_or_else(|| panic!("DataFusion has no function {name}")).clone();
    Expr::ScalarFunction(ScalarFunction::new_udf(f, args))
}

/// How many arguments a function takes.
#[derive(Debug, Clone, Copy)]
pub struct Arity {
    pub min: usize,
    pub max: Option<usize>,
}

pub const fn exactly(n: usize) -> Arity {
    Arity { min: n, max: Some(n) }
}
pub const fn between(a: usize, b: usize) -> Arity {
    Arity { min: a, max: Some(b) }
}
pub const fn at_least(n: usize) -> Arity {
    Arity { min: n, max: None }
}

/// A ksqlDB function: its arity, a description, and how it lowers to DataFusion given
/// the bound arguments and their types.
pub struct KsqlFunction {
    pub name: &'static str,
    pub arity: Arity,
    pub params: Params,
    pub description: &'static str,
    pub lower: fn(Vec<Expr>, &[SqlType]) -> Expr,
}

/// The argument types a function takes, as ksqlDB's overloads declare them; numbers
/// widen INT -> BIGINT -> DECIMAL -> DOUBLE to fit, and a NULL literal fits any type.
#[derive(Debug, Clone, Copy)]
pub enum Params {
    /// Whatever types the function's own rule (or DataFusion's coercion) accepts.
    Any,
    /// Every argument a STRING.
    Strings,
    /// Every argument a STRING, or every one BYTES.
    StringsOrBytes,
    /// Every argument a number.
    Numbers,
    /// One kind per argument (the last repeats).
    Each(&'static [Kind]),
}

/// A kind of argument a parameter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    /// Any number.
    Number,
    /// INT only (BIGINT does not narrow).
    Int,
    Array,
    Timestamp,
}

impl Kind {
    fn fits(self, t: &SqlType) -> bool {
        match self {
            Kind::String => *t == SqlType::String,
            Kind::Number => t.is_numeric(),
            Kind::Int => *t == SqlType::Int,
            Kind::Array => matches!(t, SqlType::Array(_)),
            Kind::Timestamp => *t == SqlType::Timestamp,
        }
    }
}

impl Params {
    /// Whether arguments of `types` fit (`nulls[i]`: argument i is a NULL literal).
    pub fn accept(self, types: &[SqlType], nulls: &[bool]) -> bool {
        let typed = || types.iter().zip(nulls).filter(|(_, n)| !**n).map(|(t, _)| t);
        match self {
            Params::Any => true,
            Params::Strings => typed().all(|t| *t == SqlType::String),
            Params::StringsOrBytes => typed().all(|t| *t == SqlType::String) || typed().all(|t| *t == SqlType::Bytes),
            Params::Numbers => typed().all(SqlType::is_numeric),
            Params::Each(kinds) => types.iter().zip(nulls).enumerate().all(|(i, (t, null))| *null || kinds.get(i).or(kinds.last()).is_some_and(|k| k.fits(t))),
        }
    }
}

fn direct(name: &'static str) -> impl Fn(Vec<Expr>) -> Expr {
    move |args| call(name, args)
}

macro_rules! f {
    ($name:expr, $arity:expr, $params:expr, $desc:expr, $df:expr) => {
        KsqlFunction { name: $name, arity: $arity, params: $params, description: $desc, lower: |a, _| direct($df)(a) }
    };
    ($name:expr, $arity:expr, $params:expr, $desc:expr, fn $lower:expr) => {
        KsqlFunction { name: $name, arity: $arity, params: $params, description: $desc, lower: $lower }
    };
}

/// Java's `String.trim`: strips every character up to U+0020 from both ends.
fn trim(mut a: Vec<Expr>, _t: &[SqlType]) -> Expr {
    let blanks: String = ('\u{0}'..=' ').collect();
    a.push(datafusion::logical_expr::lit(blanks));
    call("btrim", a)
}

fn substring(mut a: Vec<Expr>, _t: &[SqlType]) -> Expr {
    // ksqlDB: 1-based (0 acts as 1); a negative position counts from the end.
    let s = a.remove(0);
    let pos = a.remove(0);
    let len = a.pop();
    let start = Expr::Case(datafusion::logical_expr::Case {
        expr: None,
        when_then_expr: vec![
            (Box::new(pos.clone().lt(lit(0i64))), Box::new(call("character_length", vec![s.clone()]) + pos.clone() + lit(1i64))),
            // Position 0 reads from the start, like 1.
            (Box::new(pos.clone().eq(lit(0i64))), Box::new(lit(1i64))),
        ],
        else_expr: Some(Box::new(pos)),
    });
    let mut args = vec![s, start];
    args.extend(len);
    call("substr", args)
}

fn round(mut a: Vec<Expr>, t: &[SqlType]) -> Expr {
    // ksqlDB: ROUND(DOUBLE) is a BIGINT; with a scale it keeps the argument's type.
    if a.len() == 1 && matches!(t[0], SqlType::Double) {
        let r = call("round", vec![a.remove(0)]);
        return Expr::Cast(datafusion::logical_expr::Cast::new(Box::new(r), arrow::datatypes::DataType::Int64));
    }
    if a.len() == 2 {
        let scale = a.pop().expect("two args");
        let v = a.remove(0);
        return call("round", vec![v, Expr::Cast(datafusion::logical_expr::Cast::new(Box::new(scale), arrow::datatypes::DataType::Int64))]);
    }
    call("round", a)
}

fn as_value(mut a: Vec<Expr>, _t: &[SqlType]) -> Expr {
    a.remove(0)
}

/// COALESCE as a CASE: DataFusion's `coalesce` only runs after its optimizer rewrote it.
fn coalesce(mut a: Vec<Expr>, _t: &[SqlType]) -> Expr {
    let last = a.pop().unwrap_or_else(|| lit(ScalarValue::Null));
    if a.is_empty() {
        return last;
    }
    Expr::Case(datafusion::logical_expr::Case {
        expr: None,
        when_then_expr: a.into_iter().map(|x| (Box::new(Expr::IsNotNull(Box::new(x.clone()))), Box::new(x))).collect(),
        else_expr: Some(Box::new(last)),
    })
}

/// LEN of a string; LEN of BYTES is the row function in `udf::bytes`.
fn len(a: Vec<Expr>, _t: &[SqlType]) -> Expr {
    call("character_length", a)
}

fn int_result(name: &'static str) -> fn(Vec<Expr>, &[SqlType]) -> Expr {
    match name {
        "array_length" => |a, _| Expr::Cast(datafusion::logical_expr::Cast::new(Box::new(call("array_length", a)), arrow::datatypes::DataType::Int32)),
        _ => |a, _| call("character_length", a),
    }
}

/// The ksqlDB functions this build knows.
pub fn ksql_functions() -> &'static HashMap<&'static str, KsqlFunction> {
    static FNS: OnceLock<HashMap<&'static str, KsqlFunction>> = OnceLock::new();
    FNS.get_or_init(|| {
        use Params::{Any, Each, Numbers, Strings, StringsOrBytes};
        let list = vec![
            f!("UCASE", exactly(1), Strings, "Converts a string to upper case.", "upper"),
            f!("LCASE", exactly(1), Strings, "Converts a string to lower case.", "lower"),
            f!("UPPER", exactly(1), Strings, "Converts a string to upper case.", "upper"),
            f!("LOWER", exactly(1), Strings, "Converts a string to lower case.", "lower"),
            f!("LEN", exactly(1), Strings, "The length of a string (characters) or of BYTES (bytes).", fn len),
            f!("CONCAT", at_least(1), StringsOrBytes, "Concatenates strings; null arguments are skipped.", "concat"),
            f!("CONCAT_WS", at_least(2), StringsOrBytes, "Concatenates strings with a separator.", "concat_ws"),
            f!("TRIM", exactly(1), Strings, "Removes leading and trailing whitespace and control characters (Java's String.trim).", fn trim),
            f!("LTRIM", exactly(1), Strings, "Removes leading spaces.", "ltrim"),
            f!("RTRIM", exactly(1), Strings, "Removes trailing spaces.", "rtrim"),
            f!(
                "SUBSTRING",
                between(2, 3),
                Each(&[Kind::String, Kind::Int, Kind::Int]),
                "SUBSTRING(str, pos[, len]): 1-based; a negative pos counts from the end.",
                fn substring
            ),
            f!("REPLACE", exactly(3), Strings, "Replaces every occurrence of a substring.", "replace"),
            f!("REVERSE", exactly(1), Strings, "Reverses a string.", "reverse"),
            f!("SPLIT", exactly(2), Strings, "Splits a string into an array by a delimiter.", "string_to_array"),
            f!("ABS", exactly(1), Numbers, "Absolute value.", "abs"),
            f!("CEIL", exactly(1), Numbers, "Smallest integer value not less than the argument.", "ceil"),
            f!("FLOOR", exactly(1), Numbers, "Largest integer value not greater than the argument.", "floor"),
            f!("ROUND", between(1, 2), Each(&[Kind::Number, Kind::Int]), "Rounds to the nearest integer (BIGINT) or to a number of decimal places.", fn round),
            f!("SQRT", exactly(1), Numbers, "Square root.", "sqrt"),
            f!("EXP", exactly(1), Numbers, "e raised to the power of the argument.", "exp"),
            f!("LN", exactly(1), Numbers, "Natural logarithm.", "ln"),
            f!("SIGN", exactly(1), Numbers, "The sign of a number: -1, 0 or 1.", "signum"),
            f!("POWER", exactly(2), Numbers, "A number raised to a power.", "power"),
            f!("RANDOM", exactly(0), Any, "A random DOUBLE between 0.0 and 1.0.", "random"),
            f!("COALESCE", at_least(1), Any, "The first non-null argument.", fn coalesce),
            f!("IFNULL", exactly(2), Any, "The first argument, or the second when the first is null.", fn coalesce),
            f!("NULLIF", exactly(2), Any, "Null when the arguments are equal, else the first.", "nullif"),
            f!("ARRAY_LENGTH", exactly(1), Each(&[Kind::Array]), "Number of elements of an array.", fn int_result("array_length")),
            f!("GREATEST", at_least(1), Any, "The largest argument; nulls are ignored.", "greatest"),
            f!("LEAST", at_least(1), Any, "The smallest argument; nulls are ignored.", "least"),
            f!("UUID", exactly(0), Any, "A random (version 4) UUID as text.", "uuid"),
            f!("MD5", exactly(1), Strings, "The MD5 digest of a string as hex.", "md5"),
            f!("AS_VALUE", exactly(1), Any, "A copy of a key column as a value column.", fn as_value),
        ];
        list.into_iter().map(|f| (f.name, f)).collect()
    })
}

/// A typed null literal.
pub fn typed_null(ty: &SqlType) -> Expr {
    match ScalarValue::try_from(&ty.to_arrow()) {
        Ok(v) => Expr::Literal(v, None),
        Err(_) => lit(ScalarValue::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mapped_datafusion_function_exists() {
        for f in ksql_functions().values() {
            let n = f.arity.min;
            let args = vec![lit(1i64); n];
            let types = vec![SqlType::Double; n];
            // Lowering panics if a DataFusion name is missing.
            let _ = (f.lower)(args, &types);
        }
        for name in [
            "get_field",
            "array_element",
            "make_array",
            "named_struct",
            "map",
            "map_extract",
            "character_length",
            "substr",
            "round",
            "now",
            "octet_length",
            "array_length",
        ] {
            assert!(library().contains_key(name), "{name}");
        }
    }
}
