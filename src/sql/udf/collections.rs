//! Collections built from other values: ENTRIES (a map as an array of `K`/`V` structs)
//! and GENERATE_SERIES (an array of integers from start to end).

use std::sync::Arc;

use arrow::array::{ListArray, StructArray};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::DataType;
use datafusion::common::ScalarValue;

use super::RowFunction;
use super::value::{compare, conform, entries, int, list, to_array};
use crate::catalog::types::SqlType;
use crate::sql::functions::{between, exactly};

/// The most elements GENERATE_SERIES builds, and the longest LPAD / RPAD result: longer is
/// null (as a record error) rather than memory exhaustion from one statement.
pub const MAX_GENERATED_LENGTH: i64 = 1_000_000;

fn entries_type(t: &[SqlType]) -> Result<SqlType, String> {
    let SqlType::Map(k, v) = &t[0] else { return Err(format!("ENTRIES takes a MAP, not {}", t[0])) };
    if **k != SqlType::String {
        return Err("ENTRIES takes a map with STRING keys".into());
    }
    if t[1] != SqlType::Boolean {
        return Err("the second argument (sorted) is a BOOLEAN".into());
    }
    Ok(SqlType::Array(Box::new(SqlType::Struct(vec![("K".into(), SqlType::String), ("V".into(), (**v).clone())]))))
}

fn entries_fn(a: &[ScalarValue], ret: &DataType) -> Option<ScalarValue> {
    let mut e = entries(&a[0])?;
    if matches!(a[1], ScalarValue::Boolean(Some(true))) {
        e.sort_by(|x, y| compare(&x.0, &y.0));
    }
    let DataType::List(item) = ret else { return None };
    let DataType::Struct(fields) = item.data_type() else { return None };
    let n = e.len();
    let column = |values: Vec<ScalarValue>, dt: &DataType| {
        let conformed = values.into_iter().map(|v| conform(Some(v), dt)).collect::<Result<Vec<_>, _>>().ok()?;
        to_array(conformed, dt, n).ok()
    };
    let (keys, values): (Vec<_>, Vec<_>) = e.into_iter().unzip();
    let k = column(keys, fields[0].data_type())?;
    let v = column(values, fields[1].data_type())?;
    let structs = StructArray::try_new(fields.clone(), vec![k, v], None).ok()?;
    let l = ListArray::try_new(item.clone(), OffsetBuffer::from_lengths([n]), Arc::new(structs), None).ok()?;
    Some(ScalarValue::List(Arc::new(l)))
}

fn series_type(t: &[SqlType]) -> Result<SqlType, String> {
    let integer = |x: &SqlType| matches!(x, SqlType::Int | SqlType::Bigint);
    if !t.iter().all(integer) {
        return Err("GENERATE_SERIES takes INT or BIGINT start and end and an INT step".into());
    }
    let elem = if t[..2].contains(&SqlType::Bigint) { SqlType::Bigint } else { SqlType::Int };
    Ok(SqlType::Array(Box::new(elem)))
}

/// Start to end inclusive; the step defaults to 1, or -1 when end is below start. A zero
/// step, a step away from the end, or more than [`MAX_GENERATED_LENGTH`] elements is null.
fn generate_series(a: &[ScalarValue], ret: &DataType) -> Option<ScalarValue> {
    let (start, end) = (int(&a[0])?, int(&a[1])?);
    let step = match a.get(2) {
        Some(s) => int(s)?,
        None if end >= start => 1,
        None => -1,
    };
    if step == 0 || (end > start && step < 0) || (end < start && step > 0) {
        return None;
    }
    let count = (end as i128 - start as i128) / step as i128 + 1;
    if count > MAX_GENERATED_LENGTH as i128 {
        return None;
    }
    let elem = super::value::element_type(ret);
    let values = (0..count as i64)
        .map(|i| {
            let v = start + i * step;
            match elem {
                DataType::Int32 => ScalarValue::Int32(i32::try_from(v).ok()),
                _ => ScalarValue::Int64(Some(v)),
            }
        })
        .collect();
    list(values, &elem)
}

pub fn functions() -> Vec<RowFunction> {
    vec![
        RowFunction {
            name: "ENTRIES",
            arity: exactly(2),
            description: "ENTRIES(map, sorted): the map's entries as an array of STRUCT<K, V>, sorted by key when sorted is true.",
            returns: entries_type,
            eval: entries_fn,
        },
        RowFunction {
            name: "GENERATE_SERIES",
            arity: between(2, 3),
            description: "GENERATE_SERIES(start, end[, step]): the integers from start to end inclusive (at most a million).",
            returns: series_type,
            eval: generate_series,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::udf::value::items;

    fn ints(v: Option<ScalarValue>) -> Option<Vec<i64>> {
        Some(items(&v?)?.iter().filter_map(int).collect())
    }

    #[test]
    fn series_counts_both_ways_and_refuses_bad_steps() {
        let int_array = DataType::List(Arc::new(arrow::datatypes::Field::new("item", DataType::Int32, true)));
        let i = |x: i32| ScalarValue::Int32(Some(x));
        assert_eq!(ints(generate_series(&[i(1), i(4)], &int_array)), Some(vec![1, 2, 3, 4]));
        assert_eq!(ints(generate_series(&[i(4), i(1)], &int_array)), Some(vec![4, 3, 2, 1]));
        assert_eq!(ints(generate_series(&[i(0), i(9), i(4)], &int_array)), Some(vec![0, 4, 8]));
        assert_eq!(ints(generate_series(&[i(3), i(3)], &int_array)), Some(vec![3]));
        assert_eq!(generate_series(&[i(1), i(4), i(0)], &int_array), None);
        assert_eq!(generate_series(&[i(1), i(4), i(-1)], &int_array), None);
        assert_eq!(generate_series(&[i(0), i(i32::MAX)], &int_array), None);
    }

    #[test]
    fn entries_needs_string_keys_and_a_boolean() {
        let m = SqlType::Map(Box::new(SqlType::String), Box::new(SqlType::Int));
        let ok = entries_type(&[m, SqlType::Boolean]).expect("accepted");
        assert_eq!(ok.to_string(), "ARRAY<STRUCT<`K` STRING, `V` INTEGER>>");
        assert!(entries_type(&[SqlType::Map(Box::new(SqlType::Int), Box::new(SqlType::Int)), SqlType::Boolean]).is_err());
    }
}
