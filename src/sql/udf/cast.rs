//! CASTs DataFusion has no equivalent for: collections to STRING, written as ksqlDB writes
//! them (Java's `toString` of its values: `[1, 2]`, `{a=1}`, `Struct{F0=1,F1=x}`), and
//! which casts ksqlDB allows at all.

use std::sync::Arc;

use arrow::array::Array;
use arrow::datatypes::DataType;
use datafusion::common::ScalarValue;

use super::value::{entries, items};
use super::{RowFunction, row_call};
use crate::catalog::types::SqlType;
use crate::format::java_number::java_double;
use crate::sql::functions::exactly;

/// Whether ksqlDB can CAST a value of type `from` to `to`: between scalar types (strings
/// parse), anything to STRING, and collections to collections whose parts can be cast.
pub fn castable(from: &SqlType, to: &SqlType) -> bool {
    let collection = |t: &SqlType| matches!(t, SqlType::Array(_) | SqlType::Map(..) | SqlType::Struct(_));
    match (from, to) {
        _ if from == to => true,
        (_, SqlType::String) => true,
        (SqlType::Array(a), SqlType::Array(b)) => castable(a, b),
        (SqlType::Map(ka, va), SqlType::Map(kb, vb)) => castable(ka, kb) && castable(va, vb),
        (SqlType::Struct(a), SqlType::Struct(b)) => b.iter().all(|(name, tb)| a.iter().find(|(n, _)| n == name).is_none_or(|(_, ta)| castable(ta, tb))),
        _ => !collection(from) && !collection(to),
    }
}

/// `CAST(value AS STRING)` of a DOUBLE: Java's `Double.toString` (`1.0E10`).
pub fn double_to_string(arg: datafusion::logical_expr::Expr) -> datafusion::logical_expr::Expr {
    static TO_STRING: RowFunction = RowFunction {
        name: "DOUBLE_TO_STRING",
        arity: exactly(1),
        description: "CAST(double AS STRING)",
        returns: |_| Ok(SqlType::String),
        eval: |a, _| match &a[0] {
            ScalarValue::Float64(Some(x)) => Some(ScalarValue::Utf8(Some(java_double(*x)))),
            _ => None,
        },
    };
    row_call(&TO_STRING, vec![arg], &SqlType::String)
}

/// `CAST(value AS STRING)` of an ARRAY, MAP or STRUCT.
pub fn collection_to_string(arg: datafusion::logical_expr::Expr) -> datafusion::logical_expr::Expr {
    static TO_STRING: RowFunction = RowFunction {
        name: "CAST_TO_STRING",
        arity: exactly(1),
        description: "CAST(collection AS STRING)",
        returns: |_| Ok(SqlType::String),
        eval: |a, _| java_text(&a[0]).map(|s| ScalarValue::Utf8(Some(s))),
    };
    row_call(&TO_STRING, vec![arg], &SqlType::String)
}

/// A value as Java's `toString` writes it; `None` for null.
pub fn java_text(v: &ScalarValue) -> Option<String> {
    if v.is_null() {
        return None;
    }
    let inner = |v: &ScalarValue| java_text(v).unwrap_or_else(|| "null".into());
    Some(match v {
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => s.clone(),
        ScalarValue::Float64(Some(x)) => java_double(*x),
        ScalarValue::Float32(Some(x)) => java_double(f64::from(*x)),
        ScalarValue::List(_) | ScalarValue::LargeList(_) | ScalarValue::FixedSizeList(_) => {
            format!("[{}]", items(v)?.iter().map(inner).collect::<Vec<_>>().join(", "))
        }
        ScalarValue::Map(_) => format!("{{{}}}", entries(v)?.iter().map(|(k, x)| format!("{}={}", inner(k), inner(x))).collect::<Vec<_>>().join(", ")),
        ScalarValue::Struct(s) => {
            let DataType::Struct(fields) = s.data_type() else { return None };
            let mut parts = Vec::new();
            for (f, col) in fields.iter().zip(s.columns()) {
                let x = ScalarValue::try_from_array(&Arc::clone(col), 0).ok()?;
                // Kafka Connect's Struct leaves out null fields.
                if let Some(t) = java_text(&x) {
                    parts.push(format!("{}={t}", f.name()));
                }
            }
            format!("Struct{{{}}}", parts.join(","))
        }
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts_into_collections_need_collections() {
        let arr = |t: SqlType| SqlType::Array(Box::new(t));
        assert!(castable(&arr(SqlType::Bigint), &arr(SqlType::Int)));
        assert!(!castable(&SqlType::String, &arr(SqlType::Int)));
        assert!(castable(&arr(SqlType::Int), &SqlType::String));
        assert!(!castable(&arr(SqlType::Int), &SqlType::Int));
        assert!(castable(&SqlType::String, &SqlType::Int));
    }
}
