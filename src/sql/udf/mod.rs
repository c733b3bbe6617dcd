//! ksqlDB functions DataFusion has no equivalent for, evaluated row by row on
//! `ScalarValue`s: array, map, string, date-time, JSON and URL functions. Each function
//! decides its result type from its argument types when the statement is bound (a
//! mismatch is the statement's error, with ksqlDB's wording), and returns null for
//! inputs it cannot handle, as ksqlDB's functions do.

mod arrays;
mod bytes;
pub mod cast;
mod collections;
mod json;
pub mod lambda;
pub mod like;
mod masks;
mod math;
pub mod signatures;
mod strings;
pub mod times;
mod url;
pub mod value;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{ColumnarValue, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

use super::functions::Arity;
use crate::catalog::types::SqlType;

pub use lambda::{LambdaBody, LambdaKind, body_schema, lambda_call};

/// Evaluates one row: the argument values and the result's Arrow type; `None` is null.
pub type RowEval = fn(&[ScalarValue], &DataType) -> Option<ScalarValue>;

/// A ksqlDB function evaluated per row.
pub struct RowFunction {
    pub name: &'static str,
    pub arity: Arity,
    pub description: &'static str,
    /// The result type for these argument types, or why they are not accepted.
    pub returns: fn(&[SqlType]) -> Result<SqlType, String>,
    pub eval: RowEval,
}

/// The row functions by upper-case name.
pub fn row_functions() -> &'static HashMap<&'static str, RowFunction> {
    static FNS: OnceLock<HashMap<&'static str, RowFunction>> = OnceLock::new();
    FNS.get_or_init(|| {
        let mut all = Vec::new();
        all.extend(arrays::functions());
        all.extend(bytes::functions());
        all.extend(collections::functions());
        all.extend(masks::functions());
        all.extend(math::functions());
        all.extend(strings::functions());
        all.extend(times::functions());
        all.extend(json::functions());
        all.extend(url::functions());
        all.into_iter().map(|f| (f.name, f)).collect()
    })
}

/// The BYTES form of a string function (SUBSTRING, LPAD, RPAD, SPLIT), by name.
pub fn bytes_overload(name: &str) -> Option<&'static RowFunction> {
    static FNS: OnceLock<HashMap<&'static str, RowFunction>> = OnceLock::new();
    FNS.get_or_init(|| bytes::bytes_overloads().into_iter().map(|f| (f.name, f)).collect()).get(name)
}

/// Every function this build knows, for SHOW FUNCTIONS and DESCRIBE FUNCTION:
/// `(name, type, description)` with type SCALAR, TABLE or AGGREGATE, sorted by name.
pub fn function_catalog() -> Vec<(&'static str, &'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str, &'static str)> = Vec::new();
    out.extend(super::functions::ksql_functions().values().map(|f| (f.name, "SCALAR", f.description)));
    out.extend(row_functions().values().map(|f| (f.name, "SCALAR", f.description)));
    out.push(("TRANSFORM", "SCALAR", "TRANSFORM(array, x => ...) or TRANSFORM(map, (k, v) => key, (k, v) => value)."));
    out.push(("FILTER", "SCALAR", "FILTER(array, x => condition) or FILTER(map, (k, v) => condition)."));
    out.push(("REDUCE", "SCALAR", "REDUCE(array, initial, (state, x) => ...) or REDUCE(map, initial, (state, k, v) => ...)."));
    out.push(("EXPLODE", "TABLE", "One row per element of an array."));
    out.push(("CUBE_EXPLODE", "TABLE", "One row per distinct combination of an array's elements and nulls."));
    out.extend(super::aggregates::AGGREGATES.iter().map(|(n, d)| (*n, "AGGREGATE", *d)));
    out.sort_by_key(|f| f.0);
    out.dedup_by_key(|f| f.0);
    out
}

/// A function's category as ksqlDB's SHOW FUNCTIONS groups them.
pub fn category(name: &str, kind: &str) -> &'static str {
    match kind {
        "AGGREGATE" => return "AGGREGATE",
        "TABLE" => return "TABLE",
        _ => {}
    }
    let n = name;
    if matches!(n, "TRANSFORM" | "FILTER" | "REDUCE") {
        "LAMBDA"
    } else if n.starts_with("URL_") {
        "URL"
    } else if n.starts_with("JSON_") || matches!(n, "EXTRACTJSONFIELD" | "IS_JSON_STRING" | "TO_JSON_STRING") {
        "JSON"
    } else if n.starts_with("REGEXP_") {
        "REGULAR EXPRESSION"
    } else if n.starts_with("ARRAY") || matches!(n, "SLICE" | "ENTRIES" | "GENERATE_SERIES") {
        "ARRAY"
    } else if n.starts_with("MAP") || n == "AS_MAP" || n == "SPLIT_TO_MAP" {
        "MAP"
    } else if matches!(n, "COALESCE" | "IFNULL" | "NULLIF") {
        "CONDITIONAL"
    } else if n.ends_with("_FROM_BYTES") || matches!(n, "TO_BYTES" | "FROM_BYTES" | "AS_VALUE") {
        "CONVERSIONS"
    } else if n.contains("DATE") || n.contains("TIME") || n.contains("UNIX") || matches!(n, "CONVERT_TZ" | "FROM_DAYS") {
        "DATE / TIME"
    } else if matches!(
        n,
        "ABS"
            | "ACOS"
            | "ASIN"
            | "ATAN"
            | "ATAN2"
            | "CBRT"
            | "CEIL"
            | "COS"
            | "COSH"
            | "COT"
            | "DEGREES"
            | "EXP"
            | "FLOOR"
            | "GEO_DISTANCE"
            | "GREATEST"
            | "LEAST"
            | "LN"
            | "LOG"
            | "PI"
            | "POWER"
            | "RADIANS"
            | "RANDOM"
            | "ROUND"
            | "SIGN"
            | "SIN"
            | "SINH"
            | "SQRT"
            | "TAN"
            | "TANH"
            | "TRUNC"
    ) {
        "MATHEMATICAL"
    } else {
        "STRING"
    }
}

/// Names of the lambda functions (`TRANSFORM`, `FILTER`, `REDUCE`).
pub fn lambda_function_names() -> &'static [&'static str] {
    lambda::NAMES
}

/// A DataFusion call of a row function whose result type is already decided.
pub fn row_call(f: &RowFunction, args: Vec<Expr>, ret: &SqlType) -> Expr {
    let udf = RowUdf { name: f.name.to_ascii_lowercase(), ret: ret.to_arrow(), eval: f.eval, signature: Signature::user_defined(Volatility::Immutable) };
    Expr::ScalarFunction(ScalarFunction::new_udf(Arc::new(ScalarUDF::new_from_impl(udf)), args))
}

/// The DataFusion face of a [`RowFunction`] bound to one result type. Two are equal
/// when they are the same function (by name) with the same result type.
#[derive(Debug)]
struct RowUdf {
    name: String,
    ret: DataType,
    eval: RowEval,
    signature: Signature,
}

impl PartialEq for RowUdf {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.ret == o.ret
    }
}
impl Eq for RowUdf {}
impl std::hash::Hash for RowUdf {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.name.hash(h);
        self.ret.hash(h);
    }
}

impl ScalarUDFImpl for RowUdf {
    fn name(&self) -> &str {
        &self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        Ok(arg_types.to_vec())
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(self.ret.clone())
    }
    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> DfResult<FieldRef> {
        Ok(Arc::new(Field::new(self.name.clone(), self.ret.clone(), true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = args.args.iter().map(|a| a.to_array(args.number_rows)).collect::<DfResult<Vec<_>>>()?;
        let mut out = Vec::with_capacity(rows);
        let mut row = Vec::with_capacity(arrays.len());
        for i in 0..rows {
            row.clear();
            for a in &arrays {
                row.push(ScalarValue::try_from_array(a, i)?);
            }
            out.push(value::conform((self.eval)(&row, &self.ret), &self.ret)?);
        }
        value::to_array(out, &self.ret, rows).map(ColumnarValue::Array)
    }
}

/// ksqlDB's message for arguments a function does not accept.
pub fn not_accepted(name: &str, types: &[SqlType]) -> String {
    // ksqlDB names functions in these messages as they are declared: lower case, but
    // COALESCE, which its parser knows, upper case.
    let sig = types.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ");
    let name = if name == "COALESCE" { name.to_string() } else { name.to_ascii_lowercase() };
    format!("Function '{name}' does not accept parameters ({sig}).")
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, ArrayRef, ListArray};
    use arrow::datatypes::Int32Type;
    use datafusion::config::ConfigOptions;

    fn invoke(name: &str, args: Vec<ArrayRef>, types: &[SqlType]) -> ArrayRef {
        let f = row_functions().get(name).expect("function");
        let ret = (f.returns)(types).expect("accepted");
        let udf = RowUdf { name: name.into(), ret: ret.to_arrow(), eval: f.eval, signature: Signature::user_defined(Volatility::Immutable) };
        let rows = args[0].len();
        let arg_fields = args.iter().map(|a| Arc::new(Field::new("a", a.data_type().clone(), true))).collect();
        let out = udf
            .invoke_with_args(ScalarFunctionArgs {
                args: args.into_iter().map(ColumnarValue::Array).collect(),
                arg_fields,
                number_rows: rows,
                return_field: Arc::new(Field::new("r", ret.to_arrow(), true)),
                config_options: Arc::new(ConfigOptions::default()),
            })
            .expect("invoke");
        match out {
            ColumnarValue::Array(a) => a,
            ColumnarValue::Scalar(_) => panic!("array expected"),
        }
    }

    #[test]
    fn array_sort_puts_nulls_last_and_keeps_null_arrays_null() {
        let input: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![Some(3), None, Some(1)]), None]));
        let out = invoke("ARRAY_SORT", vec![input], &[SqlType::Array(Box::new(SqlType::Int))]);
        let expected: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![Some(1), Some(3), None]), None]));
        assert_eq!(out.as_ref(), expected.as_ref());
    }

    #[test]
    fn mismatched_arguments_are_refused_with_ksqldb_wording() {
        let f = row_functions().get("ARRAY_MAX").expect("function");
        assert!((f.returns)(&[SqlType::String]).is_err());
        assert_eq!(not_accepted("ARRAY_MAX", &[SqlType::String]), "Function 'array_max' does not accept parameters (STRING).");
    }
}
