//! Array and map functions: ARRAY_SORT, ARRAY_MIN/MAX, ARRAY_REMOVE, ARRAY_DISTINCT,
//! ARRAY_UNION/INTERSECT/EXCEPT, ARRAY_CONTAINS, ARRAY_CONCAT, ARRAY_JOIN, SLICE,
//! MAP_KEYS, MAP_VALUES, MAP_UNION, AS_MAP.

use arrow::datatypes::DataType;
use datafusion::common::ScalarValue;

use super::RowFunction;
use super::value::{compare, conform, element_type, entries, items, list, map, text};
use crate::catalog::types::SqlType;
use crate::sql::functions::{between, exactly};

fn array_arg(t: &SqlType) -> Result<&SqlType, String> {
    match t {
        SqlType::Array(e) => Ok(e),
        other => Err(format!("expected an ARRAY, found {other}")),
    }
}

fn same_array(t: &[SqlType]) -> Result<SqlType, String> {
    array_arg(&t[0])?;
    Ok(t[0].clone())
}

fn element(t: &[SqlType]) -> Result<SqlType, String> {
    Ok(array_arg(&t[0])?.clone())
}

fn two_arrays(t: &[SqlType]) -> Result<SqlType, String> {
    let a = array_arg(&t[0])?;
    let b = array_arg(&t[1])?;
    if a != b && !(a.is_numeric() && b.is_numeric()) {
        return Err(format!("both arrays must hold the same type, found {} and {}", t[0], t[1]));
    }
    Ok(t[0].clone())
}

fn boolean(t: &[SqlType]) -> Result<SqlType, String> {
    array_arg(&t[0])?;
    Ok(SqlType::Boolean)
}

fn string(_t: &[SqlType]) -> Result<SqlType, String> {
    Ok(SqlType::String)
}

/// A value converted to an array's element type (so `ARRAY_REMOVE(bigints, 1)` matches).
fn as_element(v: &ScalarValue, ret: &DataType) -> Option<ScalarValue> {
    conform(Some(v.clone()), &element_type(ret)).ok()
}

fn distinct(values: impl IntoIterator<Item = ScalarValue>) -> Vec<ScalarValue> {
    let mut out: Vec<ScalarValue> = Vec::new();
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

fn array_sort(a: &[ScalarValue], ret: &DataType) -> Option<ScalarValue> {
    let mut v = items(&a[0])?;
    let desc = match a.get(1) {
        None => false,
        Some(d) => match text(d)?.to_ascii_uppercase().as_str() {
            "ASC" => false,
            "DESC" => true,
            _ => return None,
        },
    };
    v.sort_by(|x, y| match (x.is_null(), y.is_null(), desc) {
        (false, false, true) => compare(y, x),
        _ => compare(x, y),
    });
    list(v, &element_type(ret))
}

fn array_extreme(a: &[ScalarValue], max: bool) -> Option<ScalarValue> {
    let v = items(&a[0])?;
    let it = v.into_iter().filter(|x| !x.is_null());
    if max { it.max_by(compare) } else { it.min_by(compare) }
}

fn array_remove(a: &[ScalarValue], ret: &DataType) -> Option<ScalarValue> {
    let v = items(&a[0])?;
    let target = as_element(&a[1], ret)?;
    list(v.into_iter().filter(|x| *x != target).collect(), &element_type(ret))
}

fn array_distinct(a: &[ScalarValue], ret: &DataType) -> Option<ScalarValue> {
    list(distinct(items(&a[0])?), &element_type(ret))
}

fn conformed_items(v: &ScalarValue, ret: &DataType) -> Option<Vec<ScalarValue>> {
    items(v)?.into_iter().map(|x| conform(Some(x), &element_type(ret)).ok()).collect()
}

fn array_union(a: &[ScalarValue], ret: &DataType) -> Option<ScalarValue> {
    let mut v = conformed_items(&a[0], ret)?;
    v.extend(conformed_items(&a[1], ret)?);
    list(distinct(v), &element_type(ret))
}

fn array_intersect(a: &[ScalarValue], ret: &DataType) -> Option<ScalarValue> {
    let (x, y) = (conformed_items(&a[0], ret)?, conformed_items(&a[1], ret)?);
    list(distinct(x.into_iter().filter(|v| y.contains(v))), &element_type(ret))
}

fn array_except(a: &[ScalarValue], ret: &DataType) -> Option<ScalarValue> {
    let (x, y) = (conformed_items(&a[0], ret)?, conformed_items(&a[1], ret)?);
    list(distinct(x.into_iter().filter(|v| !y.contains(v))), &element_type(ret))
}

fn array_contains(a: &[ScalarValue], _ret: &DataType) -> Option<ScalarValue> {
    let Some(v) = items(&a[0]) else { return Some(ScalarValue::Boolean(Some(false))) };
    let target = match v.first() {
        Some(first) => conform(Some(a[1].clone()), &first.data_type()).ok()?,
        None => a[1].clone(),
    };
    Some(ScalarValue::Boolean(Some(v.contains(&target))))
}

fn array_concat(a: &[ScalarValue], ret: &DataType) -> Option<ScalarValue> {
    let (x, y) = (conformed_items(&a[0], ret), conformed_items(&a[1], ret));
    if x.is_none() && y.is_none() {
        return None;
    }
    let mut v = x.unwrap_or_default();
    v.extend(y.unwrap_or_default());
    list(v, &element_type(ret))
}

/// How ksqlDB writes an element inside ARRAY_JOIN's result.
fn display(v: &ScalarValue) -> String {
    if v.is_null() {
        return "null".into();
    }
    match v {
        ScalarValue::Float64(Some(f)) if f.fract() == 0.0 && f.abs() < 1e16 => format!("{f:.1}"),
        ScalarValue::Utf8(Some(s)) => s.clone(),
        other => other.to_string(),
    }
}

fn array_join(a: &[ScalarValue], _ret: &DataType) -> Option<ScalarValue> {
    let v = items(&a[0])?;
    let sep = match a.get(1) {
        None => ",".to_string(),
        Some(d) => text(d).unwrap_or("").to_string(),
    };
    Some(ScalarValue::Utf8(Some(v.iter().map(display).collect::<Vec<_>>().join(&sep))))
}

fn slice(a: &[ScalarValue], ret: &DataType) -> Option<ScalarValue> {
    let v = items(&a[0])?;
    let from = super::value::int(&a[1])?;
    let to = super::value::int(&a[2])?;
    let len = v.len() as i64;
    let start = from.max(1) - 1;
    let end = to.min(len);
    if start >= end {
        return list(Vec::new(), &element_type(ret));
    }
    list(v[start as usize..end as usize].to_vec(), &element_type(ret))
}

fn map_arg(t: &SqlType) -> Result<(&SqlType, &SqlType), String> {
    match t {
        SqlType::Map(k, v) => Ok((k, v)),
        other => Err(format!("expected a MAP, found {other}")),
    }
}

fn map_keys(a: &[ScalarValue], ret: &DataType) -> Option<ScalarValue> {
    list(entries(&a[0])?.into_iter().map(|(k, _)| k).collect(), &element_type(ret))
}

fn map_values(a: &[ScalarValue], ret: &DataType) -> Option<ScalarValue> {
    list(entries(&a[0])?.into_iter().map(|(_, v)| v).collect(), &element_type(ret))
}

fn map_union(a: &[ScalarValue], ret: &DataType) -> Option<ScalarValue> {
    let (x, y) = (entries(&a[0]), entries(&a[1]));
    if x.is_none() && y.is_none() {
        return None;
    }
    let mut all = x.unwrap_or_default();
    all.extend(y.unwrap_or_default());
    map(all, ret)
}

fn as_map(a: &[ScalarValue], ret: &DataType) -> Option<ScalarValue> {
    let (k, v) = (items(&a[0])?, items(&a[1])?);
    // As ksqlDB: keys without a value map to null; extra values are ignored.
    let v = v.into_iter().map(Some).chain(std::iter::repeat(None));
    let entries = k.into_iter().zip(v).map(|(k, v)| (k, v.unwrap_or(ScalarValue::Null))).collect();
    map(entries, ret)
}

pub fn functions() -> Vec<RowFunction> {
    vec![
        RowFunction {
            name: "ARRAY_SORT",
            arity: between(1, 2),
            description: "Sorts an array ('ASC' or 'DESC'); nulls last.",
            returns: same_array,
            eval: array_sort,
        },
        RowFunction {
            name: "ARRAY_MAX",
            arity: exactly(1),
            description: "The largest non-null element.",
            returns: element,
            eval: |a, _| array_extreme(a, true),
        },
        RowFunction {
            name: "ARRAY_MIN",
            arity: exactly(1),
            description: "The smallest non-null element.",
            returns: element,
            eval: |a, _| array_extreme(a, false),
        },
        RowFunction {
            name: "ARRAY_REMOVE",
            arity: exactly(2),
            description: "The array without the elements equal to the value.",
            returns: same_array,
            eval: array_remove,
        },
        RowFunction {
            name: "ARRAY_DISTINCT",
            arity: exactly(1),
            description: "The array's distinct elements in order of first appearance.",
            returns: same_array,
            eval: array_distinct,
        },
        RowFunction { name: "ARRAY_UNION", arity: exactly(2), description: "Distinct elements of both arrays.", returns: two_arrays, eval: array_union },
        RowFunction {
            name: "ARRAY_INTERSECT",
            arity: exactly(2),
            description: "Distinct elements present in both arrays.",
            returns: two_arrays,
            eval: array_intersect,
        },
        RowFunction {
            name: "ARRAY_EXCEPT",
            arity: exactly(2),
            description: "Distinct elements of the first array not in the second.",
            returns: two_arrays,
            eval: array_except,
        },
        RowFunction { name: "ARRAY_CONTAINS", arity: exactly(2), description: "Whether the array holds the value.", returns: boolean, eval: array_contains },
        RowFunction { name: "ARRAY_CONCAT", arity: exactly(2), description: "The elements of both arrays.", returns: two_arrays, eval: array_concat },
        RowFunction {
            name: "ARRAY_JOIN",
            arity: between(1, 2),
            description: "The elements as one string with a delimiter (default ',').",
            returns: |t| {
                let e = array_arg(&t[0])?;
                if matches!(e, SqlType::Array(_) | SqlType::Map(..) | SqlType::Struct(_)) {
                    return Err("ARRAY_JOIN only joins arrays of primitive types".into());
                }
                string(t)
            },
            eval: array_join,
        },
        RowFunction {
            name: "SLICE",
            arity: exactly(3),
            description: "SLICE(array, from, to): elements from..to, 1-based and inclusive.",
            returns: same_array,
            eval: slice,
        },
        RowFunction {
            name: "MAP_KEYS",
            arity: exactly(1),
            description: "The keys of a map.",
            returns: |t| Ok(SqlType::Array(Box::new(map_arg(&t[0])?.0.clone()))),
            eval: map_keys,
        },
        RowFunction {
            name: "MAP_VALUES",
            arity: exactly(1),
            description: "The values of a map.",
            returns: |t| Ok(SqlType::Array(Box::new(map_arg(&t[0])?.1.clone()))),
            eval: map_values,
        },
        RowFunction {
            name: "MAP_UNION",
            arity: exactly(2),
            description: "The entries of both maps; the second wins for a shared key.",
            returns: |t| {
                map_arg(&t[0])?;
                map_arg(&t[1])?;
                Ok(t[0].clone())
            },
            eval: map_union,
        },
        RowFunction {
            name: "AS_MAP",
            arity: exactly(2),
            description: "AS_MAP(keys, values): a map from an array of keys and an array of values.",
            returns: |t| Ok(SqlType::Map(Box::new(array_arg(&t[0])?.clone()), Box::new(array_arg(&t[1])?.clone()))),
            eval: as_map,
        },
    ]
}
