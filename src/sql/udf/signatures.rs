//! The signatures DESCRIBE FUNCTION lists for a row function, found by asking the
//! function's own type rule (`RowFunction::returns`) which argument types it takes, so what
//! is listed is what a call accepts. Type variables stand for argument types the rule takes
//! whatever they are: `T` (any type), `ARRAY<T>`, `MAP<STRING, T>` and `N` (any numeric
//! type); a signature with a variable holds for every instance tried.

use super::RowFunction;
use crate::catalog::types::SqlType;

/// One argument's place in a signature: a concrete type or a type variable's pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum Slot {
    Concrete(SqlType),
    /// `T`: any type.
    Any,
    /// `N`: any numeric type.
    Numeric,
    /// `ARRAY<T>`.
    ArrayOf,
    /// `MAP<STRING, T>`.
    MapOf,
}

/// How many instances each variable is tried with (`T` and `N` take the i-th together).
const INSTANCES: usize = 4;

fn any_instance(i: usize) -> SqlType {
    [SqlType::String, SqlType::Bigint, SqlType::Boolean, SqlType::Date][i].clone()
}

fn numeric_instance(i: usize) -> SqlType {
    [SqlType::Int, SqlType::Bigint, SqlType::Double, SqlType::Decimal { precision: 10, scale: 2 }][i].clone()
}

impl Slot {
    fn instance(&self, i: usize) -> SqlType {
        match self {
            Slot::Concrete(t) => t.clone(),
            Slot::Any => any_instance(i),
            Slot::Numeric => numeric_instance(i),
            Slot::ArrayOf => SqlType::Array(Box::new(any_instance(i))),
            Slot::MapOf => SqlType::Map(Box::new(SqlType::String), Box::new(any_instance(i))),
        }
    }

    fn is_variable(&self) -> bool {
        !matches!(self, Slot::Concrete(_))
    }

    /// Whether a signature with `self` here already lists a call with `other` here.
    fn covers(&self, other: &Slot) -> bool {
        match (self, other) {
            (a, b) if a == b => true,
            (Slot::Any, _) => true,
            (Slot::Numeric, Slot::Concrete(t)) => t.is_numeric(),
            (Slot::ArrayOf, Slot::Concrete(SqlType::Array(_))) => true,
            (Slot::MapOf, Slot::Concrete(SqlType::Map(k, _))) => **k == SqlType::String,
            _ => false,
        }
    }

    fn text(&self) -> String {
        match self {
            Slot::Concrete(SqlType::Decimal { .. }) => "DECIMAL".into(),
            Slot::Concrete(t) => t.to_string(),
            Slot::Any => "T".into(),
            Slot::Numeric => "N".into(),
            Slot::ArrayOf => "ARRAY<T>".into(),
            Slot::MapOf => "MAP<STRING, T>".into(),
        }
    }
}

/// The candidates for each argument, variables first (so that a signature with a
/// variable is found before the concrete ones it covers).
pub fn candidates() -> Vec<Slot> {
    let mut c = vec![Slot::Any, Slot::ArrayOf, Slot::MapOf, Slot::Numeric];
    for t in [
        SqlType::Boolean,
        SqlType::Int,
        SqlType::Bigint,
        SqlType::Double,
        SqlType::Decimal { precision: 10, scale: 2 },
        SqlType::String,
        SqlType::Bytes,
        SqlType::Date,
        SqlType::Time,
        SqlType::Timestamp,
        SqlType::Array(Box::new(SqlType::String)),
        SqlType::Map(Box::new(SqlType::String), Box::new(SqlType::String)),
    ] {
        c.push(Slot::Concrete(t));
    }
    c
}

/// Longest argument list probed: every combination of candidates is tried.
pub const MAX_PROBED_ARGUMENTS: usize = 4;

/// A signature: argument types and the result type, as DESCRIBE FUNCTION writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub arguments: Vec<String>,
    pub returns: String,
}

/// The result type of `slots`, written with the variables it follows; `None` when the
/// function refuses an instance, or its result follows the arguments in a way the
/// variables cannot write (then the concrete signatures are listed instead).
fn result_of(rule: &dyn Fn(&[SqlType]) -> Option<SqlType>, slots: &[Slot]) -> Option<String> {
    let generic = slots.iter().any(Slot::is_variable);
    let rounds = if generic { INSTANCES } else { 1 };
    let mut results = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let args: Vec<SqlType> = slots.iter().map(|s| s.instance(i)).collect();
        results.push(rule(&args)?);
    }
    if results.iter().all(|r| *r == results[0]) {
        return Some(Slot::Concrete(results[0].clone()).text());
    }
    // The result is one of the patterns of a variable the arguments have.
    let has_t = slots.iter().any(|s| matches!(s, Slot::Any | Slot::ArrayOf | Slot::MapOf));
    let has_n = slots.contains(&Slot::Numeric);
    [(Slot::Any, has_t), (Slot::ArrayOf, has_t), (Slot::MapOf, has_t), (Slot::Numeric, has_n)]
        .into_iter()
        .filter(|(_, usable)| *usable)
        .map(|(v, _)| v)
        .find(|v| results.iter().enumerate().all(|(i, r)| *r == v.instance(i)))
        .map(|v| v.text())
}

/// The signatures of the row function `f` with `arity` arguments.
pub fn signatures(f: &RowFunction, arity: usize) -> Vec<Signature> {
    if arity < f.arity.min || f.arity.max.is_some_and(|m| arity > m) {
        return Vec::new();
    }
    signatures_of(&|types: &[SqlType]| (f.returns)(types).ok(), arity, &candidates())
}

/// The signatures with `arity` arguments that `rule` (argument types to the result type,
/// `None` when refused) accepts, trying `candidates` in each place.
pub fn signatures_of(rule: &dyn Fn(&[SqlType]) -> Option<SqlType>, arity: usize, candidates: &[Slot]) -> Vec<Signature> {
    if arity > MAX_PROBED_ARGUMENTS {
        return Vec::new();
    }
    let mut found: Vec<(Vec<Slot>, String)> = Vec::new();
    let mut index = vec![0usize; arity];
    loop {
        let slots: Vec<Slot> = index.iter().map(|&i| candidates[i].clone()).collect();
        let covered = found.iter().any(|(s, _)| s.iter().zip(&slots).all(|(a, b)| a.covers(b)));
        if !covered && let Some(returns) = result_of(rule, &slots) {
            found.push((slots, returns));
        }
        // The next combination, the last argument fastest.
        let mut pos = arity;
        loop {
            if pos == 0 {
                return found.into_iter().map(|(s, returns)| Signature { arguments: s.iter().map(Slot::text).collect(), returns }).collect();
            }
            pos -= 1;
            index[pos] += 1;
            if index[pos] < candidates.len() {
                break;
            }
            index[pos] = 0;
        }
    }
}

/// A declared signature: its arguments (name, type) and its result type.
pub type DeclaredSignature = (Vec<(&'static str, &'static str)>, &'static str);

/// The signatures of functions no type rule can be probed for: those taking lambdas
/// (whose types follow the lambda's body) and table functions. Arguments are (name, type).
pub fn declared(name: &str) -> Option<Vec<DeclaredSignature>> {
    Some(match name {
        "EXPLODE" => vec![(vec![("array", "ARRAY<T>")], "T")],
        "CUBE_EXPLODE" => vec![(vec![("array", "ARRAY<T>")], "ARRAY<T>")],
        "TRANSFORM" => vec![
            (vec![("array", "ARRAY<T>"), ("function", "LAMBDA (T) => O")], "ARRAY<O>"),
            (vec![("map", "MAP<K, V>"), ("key_function", "LAMBDA (K, V) => K1"), ("value_function", "LAMBDA (K, V) => V1")], "MAP<K1, V1>"),
        ],
        "FILTER" => vec![
            (vec![("array", "ARRAY<T>"), ("predicate", "LAMBDA (T) => BOOLEAN")], "ARRAY<T>"),
            (vec![("map", "MAP<K, V>"), ("predicate", "LAMBDA (K, V) => BOOLEAN")], "MAP<K, V>"),
        ],
        "REDUCE" => vec![
            (vec![("array", "ARRAY<T>"), ("initial", "S"), ("function", "LAMBDA (S, T) => S")], "S"),
            (vec![("map", "MAP<K, V>"), ("initial", "S"), ("function", "LAMBDA (S, K, V) => S")], "S"),
        ],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sigs(name: &str, arity: usize) -> Vec<(String, String)> {
        let f = &super::super::row_functions()[name];
        signatures(f, arity).into_iter().map(|s| (s.arguments.join(", "), s.returns)).collect()
    }

    #[test]
    fn signatures_are_what_the_type_rules_accept() {
        let sig = |args: &str, returns: &str| (args.to_string(), returns.to_string());
        assert_eq!(sigs("SIN", 1), vec![sig("N", "DOUBLE")]);
        assert_eq!(sigs("INT_FROM_BYTES", 2), vec![sig("BYTES, STRING", "INTEGER")]);
        assert_eq!(sigs("ARRAY_MAX", 1), vec![sig("ARRAY<T>", "T")]);
        assert_eq!(sigs("ARRAY_CONTAINS", 2), vec![sig("ARRAY<T>, T", "BOOLEAN")]);
        assert_eq!(sigs("MAP_VALUES", 1), vec![sig("MAP<STRING, T>", "ARRAY<T>")]);
        assert_eq!(sigs("FROM_DAYS", 1), vec![sig("INTEGER", "DATE"), sig("BIGINT", "DATE")]);
        assert!(sigs("SIN", 2).is_empty());
    }
}
