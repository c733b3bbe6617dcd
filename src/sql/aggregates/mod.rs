//! Aggregate functions: which ksqlDB aggregates exist, their argument and result types,
//! and `AggState`, the opaque per-group state the runtime updates, evaluates, saves and
//! loads (DataFusion accumulators underneath, kept behind this module).

mod accumulators;
pub mod codec;

use arrow::array::{ArrayRef, new_null_array};
use arrow::datatypes::{DataType, Field};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::Accumulator;

use super::compile::CompiledExpr;
use crate::catalog::types::SqlType;
use accumulators as acc;

/// Arguments an aggregate does not take (the binder names the function and position).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AggArgumentError {
    #[error("needs a numeric argument, got {0}")]
    NotNumeric(SqlType),
    #[error("cannot compare values of type {0}")]
    NotComparable(SqlType),
    #[error("cannot rank values of type {0}")]
    NotRankable(SqlType),
    #[error("needs a STRING argument, got {0}")]
    NotString(SqlType),
}

/// Why a group's state could not be updated, evaluated, saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum AggregateError {
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
    #[error(transparent)]
    Codec(#[from] codec::StateCodecError),
}

/// ksqlDB's default `ksql.functions.collect_list.limit` and `collect_set.limit`.
pub const COLLECT_LIMIT: usize = 1000;

#[derive(Debug, Clone, PartialEq)]
pub enum AggKind {
    CountStar,
    Count,
    Sum,
    Avg,
    Min,
    Max,
    LatestByOffset {
        ignore_nulls: bool,
    },
    EarliestByOffset {
        ignore_nulls: bool,
    },
    /// `LATEST_BY_OFFSET(col, n[, ignore_nulls])`: the latest `n` values, oldest first.
    LatestN {
        n: usize,
        ignore_nulls: bool,
    },
    /// `EARLIEST_BY_OFFSET(col, n[, ignore_nulls])`: the earliest `n` values.
    EarliestN {
        n: usize,
        ignore_nulls: bool,
    },
    /// The value when every row has the same one (null counts as a value), else null.
    Attr,
    /// At most this many values (`ksql.functions.collect_list.limit`).
    CollectList(usize),
    /// At most this many values (`ksql.functions.collect_set.limit`).
    CollectSet(usize),
    CountDistinct,
    TopK(usize),
    TopKDistinct(usize),
    Histogram,
    StddevSamp,
    Correlation,
}

/// A bound aggregate call.
#[derive(Debug, Clone)]
pub struct AggCall {
    pub kind: AggKind,
    /// Column arguments (literal parameters such as TOPK's k are in `kind`).
    pub args: Vec<CompiledExpr>,
    /// Types of `args` (COUNT(*) has none).
    pub arg_types: Vec<SqlType>,
    pub output: SqlType,
    /// How it prints (for EXPLAIN and errors).
    pub text: String,
}

/// Aggregate names this build knows, with a one-line description.
pub const AGGREGATES: &[(&str, &str)] = &[
    ("COUNT", "COUNT(*) counts rows; COUNT(col) counts non-null values"),
    ("SUM", "sum of a numeric column"),
    ("AVG", "average of a numeric column (DOUBLE)"),
    ("MIN", "smallest non-null value"),
    ("MAX", "largest non-null value"),
    ("LATEST_BY_OFFSET", "the latest value by offset (nulls ignored unless the second argument is false)"),
    ("EARLIEST_BY_OFFSET", "the earliest value by offset (nulls ignored unless the second argument is false)"),
    ("ATTR", "the value when all rows share it (null counts as a value), else null"),
    ("COLLECT_LIST", "the values as an ARRAY (at most 1000)"),
    ("COLLECT_SET", "the distinct values as an ARRAY (at most 1000)"),
    ("COUNT_DISTINCT", "number of distinct non-null values"),
    ("TOPK", "TOPK(col, k): the k largest values, descending"),
    ("TOPKDISTINCT", "TOPKDISTINCT(col, k): the k largest distinct values, descending"),
    ("HISTOGRAM", "counts per distinct STRING value, as MAP<STRING, BIGINT>"),
    ("STDDEV_SAMP", "sample standard deviation (DOUBLE)"),
    ("STDDEV_SAMPLE", "sample standard deviation (DOUBLE)"),
    ("CORRELATION", "CORRELATION(x, y): Pearson correlation (DOUBLE)"),
];

/// One form of an aggregate call, for DESCRIBE FUNCTION: the aggregate (its literal
/// parameters at a sample value), how many column arguments it takes, and the literal
/// parameters that follow them (name, type).
pub struct AggForm {
    pub kind: AggKind,
    pub columns: usize,
    pub literals: Vec<(&'static str, &'static str)>,
}

/// The forms an aggregate is called in (empty for an unknown name). COUNT(*) is listed by
/// its synopsis.
pub fn agg_forms(name: &str) -> Vec<AggForm> {
    let form = |kind: AggKind, columns: usize, literals: Vec<(&'static str, &'static str)>| AggForm { kind, columns, literals };
    let one = |kind: AggKind| vec![form(kind, 1, Vec::new())];
    match name {
        "COUNT" => one(AggKind::Count),
        "SUM" => one(AggKind::Sum),
        "AVG" => one(AggKind::Avg),
        "MIN" => one(AggKind::Min),
        "MAX" => one(AggKind::Max),
        "ATTR" => one(AggKind::Attr),
        "COLLECT_LIST" => one(AggKind::CollectList(COLLECT_LIMIT)),
        "COLLECT_SET" => one(AggKind::CollectSet(COLLECT_LIMIT)),
        "COUNT_DISTINCT" => one(AggKind::CountDistinct),
        "HISTOGRAM" => one(AggKind::Histogram),
        "STDDEV_SAMP" | "STDDEV_SAMPLE" => one(AggKind::StddevSamp),
        "CORRELATION" => vec![form(AggKind::Correlation, 2, Vec::new())],
        "TOPK" => vec![form(AggKind::TopK(1), 1, vec![("k", "INTEGER")])],
        "TOPKDISTINCT" => vec![form(AggKind::TopKDistinct(1), 1, vec![("k", "INTEGER")])],
        "LATEST_BY_OFFSET" | "EARLIEST_BY_OFFSET" => {
            let latest = name == "LATEST_BY_OFFSET";
            let single = || if latest { AggKind::LatestByOffset { ignore_nulls: true } } else { AggKind::EarliestByOffset { ignore_nulls: true } };
            let counted = || if latest { AggKind::LatestN { n: 1, ignore_nulls: true } } else { AggKind::EarliestN { n: 1, ignore_nulls: true } };
            vec![
                form(single(), 1, Vec::new()),
                form(single(), 1, vec![("ignore_nulls", "BOOLEAN")]),
                form(counted(), 1, vec![("n", "INTEGER")]),
                form(counted(), 1, vec![("n", "INTEGER"), ("ignore_nulls", "BOOLEAN")]),
            ]
        }
        _ => Vec::new(),
    }
}

impl AggKind {
    /// Whether values can be taken back out (aggregating a table needs it).
    pub fn retractable(&self) -> bool {
        !matches!(
            self,
            AggKind::Min
                | AggKind::Max
                | AggKind::LatestByOffset { .. }
                | AggKind::EarliestByOffset { .. }
                | AggKind::LatestN { .. }
                | AggKind::EarliestN { .. }
                | AggKind::TopK(_)
                | AggKind::TopKDistinct(_)
        )
    }

    /// The result type for argument types, or why the arguments do not fit.
    pub fn output_type(&self, args: &[SqlType]) -> Result<SqlType, AggArgumentError> {
        let numeric = |t: &SqlType| if t.is_numeric() { Ok(()) } else { Err(AggArgumentError::NotNumeric(t.clone())) };
        Ok(match self {
            AggKind::CountStar | AggKind::Count | AggKind::CountDistinct => SqlType::Bigint,
            AggKind::Sum => {
                numeric(&args[0])?;
                args[0].clone()
            }
            AggKind::Avg | AggKind::StddevSamp => {
                numeric(&args[0])?;
                SqlType::Double
            }
            AggKind::Correlation => {
                numeric(&args[0])?;
                numeric(&args[1])?;
                SqlType::Double
            }
            AggKind::Min | AggKind::Max => {
                if matches!(args[0], SqlType::Array(_) | SqlType::Map(..) | SqlType::Struct(_) | SqlType::Boolean) {
                    return Err(AggArgumentError::NotComparable(args[0].clone()));
                }
                args[0].clone()
            }
            AggKind::LatestByOffset { .. } | AggKind::EarliestByOffset { .. } | AggKind::Attr => args[0].clone(),
            AggKind::CollectList(_)
            | AggKind::CollectSet(_)
            | AggKind::TopK(_)
            | AggKind::TopKDistinct(_)
            | AggKind::LatestN { .. }
            | AggKind::EarliestN { .. } => {
                if matches!(self, AggKind::TopK(_) | AggKind::TopKDistinct(_)) && matches!(args[0], SqlType::Array(_) | SqlType::Map(..) | SqlType::Struct(_)) {
                    return Err(AggArgumentError::NotRankable(args[0].clone()));
                }
                SqlType::Array(Box::new(args[0].clone()))
            }
            AggKind::Histogram => {
                if args[0] != SqlType::String {
                    return Err(AggArgumentError::NotString(args[0].clone()));
                }
                SqlType::Map(Box::new(SqlType::String), Box::new(SqlType::Bigint))
            }
        })
    }
}

fn list_of(dt: &DataType) -> DataType {
    DataType::List(std::sync::Arc::new(Field::new_list_field(dt.clone(), true)))
}

impl AggCall {
    fn arg_type(&self, i: usize) -> DataType {
        self.arg_types.get(i).map(|t| t.to_arrow()).unwrap_or(DataType::Int64)
    }

    fn accumulator(&self) -> Box<dyn Accumulator> {
        let out = self.output.to_arrow();
        match &self.kind {
            AggKind::CountStar => Box::new(acc::Count { star: true, n: 0 }),
            AggKind::Count => Box::new(acc::Count { star: false, n: 0 }),
            AggKind::Sum => Box::new(acc::Sum::new(out)),
            AggKind::Avg => Box::new(acc::Avg::default()),
            AggKind::Min => Box::new(acc::MinMax { max: false, out, value: None }),
            AggKind::Max => Box::new(acc::MinMax { max: true, out, value: None }),
            AggKind::LatestByOffset { ignore_nulls } => Box::new(acc::ByOffset { latest: true, ignore_nulls: *ignore_nulls, out, value: None }),
            AggKind::EarliestByOffset { ignore_nulls } => Box::new(acc::ByOffset { latest: false, ignore_nulls: *ignore_nulls, out, value: None }),
            AggKind::LatestN { n, ignore_nulls } => {
                Box::new(acc::ByOffsetN { latest: true, ignore_nulls: *ignore_nulls, n: *n, elem: self.arg_type(0), items: Vec::new() })
            }
            AggKind::EarliestN { n, ignore_nulls } => {
                Box::new(acc::ByOffsetN { latest: false, ignore_nulls: *ignore_nulls, n: *n, elem: self.arg_type(0), items: Vec::new() })
            }
            AggKind::Attr => Box::new(acc::Attr { elem: self.arg_type(0), counts: Vec::new() }),
            AggKind::CollectList(limit) => Box::new(acc::Collect { distinct: false, elem: self.arg_type(0), limit: *limit, items: Vec::new() }),
            AggKind::CollectSet(limit) => Box::new(acc::Collect { distinct: true, elem: self.arg_type(0), limit: *limit, items: Vec::new() }),
            AggKind::CountDistinct => Box::new(acc::CountDistinct { elem: self.arg_type(0), counts: Default::default() }),
            AggKind::TopK(k) => Box::new(acc::TopK { k: *k, distinct: false, elem: self.arg_type(0), items: Vec::new() }),
            AggKind::TopKDistinct(k) => Box::new(acc::TopK { k: *k, distinct: true, elem: self.arg_type(0), items: Vec::new() }),
            AggKind::Histogram => Box::new(acc::Histogram::default()),
            AggKind::StddevSamp => Box::new(acc::Stddev::default()),
            AggKind::Correlation => Box::new(acc::Correlation::default()),
        }
    }

    /// Arrow types of `state()`, in order (to load saved state).
    fn state_types(&self) -> Vec<DataType> {
        let out = self.output.to_arrow();
        match &self.kind {
            AggKind::CountStar | AggKind::Count => vec![DataType::Int64],
            AggKind::Sum | AggKind::Min | AggKind::Max => vec![out],
            AggKind::Avg => vec![DataType::Float64, DataType::Int64],
            AggKind::LatestByOffset { .. } | AggKind::EarliestByOffset { .. } => vec![out, DataType::Boolean],
            AggKind::CollectList(_)
            | AggKind::CollectSet(_)
            | AggKind::TopK(_)
            | AggKind::TopKDistinct(_)
            | AggKind::LatestN { .. }
            | AggKind::EarliestN { .. } => {
                vec![list_of(&self.arg_type(0))]
            }
            AggKind::CountDistinct | AggKind::Attr => vec![list_of(&self.arg_type(0)), list_of(&DataType::Int64)],
            AggKind::Histogram => vec![list_of(&DataType::Utf8), list_of(&DataType::Int64)],
            AggKind::StddevSamp => vec![DataType::Int64, DataType::Float64, DataType::Float64],
            AggKind::Correlation => vec![DataType::Float64; 6],
        }
    }

    /// A fresh, empty state.
    pub fn create(&self) -> AggState {
        AggState { acc: self.accumulator(), out: self.output.to_arrow(), star: self.kind == AggKind::CountStar }
    }

    /// A state restored from `save`d bytes (consumed from the front of `b`).
    pub fn load(&self, b: &mut &[u8]) -> Result<AggState, AggregateError> {
        let mut st = self.create();
        let mut arrays = Vec::new();
        for dt in self.state_types() {
            let v = codec::decode(&dt, b)?;
            arrays.push(v.to_array()?);
        }
        st.acc.merge_batch(&arrays)?;
        Ok(st)
    }
}

/// One group's state for one aggregate.
pub struct AggState {
    acc: Box<dyn Accumulator>,
    out: DataType,
    star: bool,
}

impl std::fmt::Debug for AggState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AggState({:?})", self.acc)
    }
}

impl AggState {
    fn inputs(&self, args: &[ArrayRef], rows: usize) -> Vec<ArrayRef> {
        if !(self.star || args.is_empty()) {
            return args.to_vec();
        }
        // COUNT(*) counts rows of a placeholder column; one-row updates share one.
        thread_local! {
            static ONE_NULL: ArrayRef = new_null_array(&DataType::Int64, 1);
        }
        if rows == 1 { vec![ONE_NULL.with(|a| a.clone())] } else { vec![new_null_array(&DataType::Int64, rows)] }
    }

    /// Adds `rows` rows (the argument arrays hold exactly those rows).
    pub fn update(&mut self, args: &[ArrayRef], rows: usize) -> Result<(), AggregateError> {
        let inputs = self.inputs(args, rows);
        Ok(self.acc.update_batch(&inputs)?)
    }

    /// Takes rows back out (a table row that changed or was deleted).
    pub fn retract(&mut self, args: &[ArrayRef], rows: usize) -> Result<(), AggregateError> {
        let inputs = self.inputs(args, rows);
        Ok(self.acc.retract_batch(&inputs)?)
    }

    /// Folds another group's state into this one (session windows merging).
    pub fn merge(&mut self, other: &mut AggState) -> Result<(), AggregateError> {
        let arrays: Vec<ArrayRef> = other.acc.state()?.into_iter().map(|v| v.to_array()).collect::<Result<_, _>>()?;
        Ok(self.acc.merge_batch(&arrays)?)
    }

    /// The current result as a one-row array of the aggregate's output type.
    pub fn evaluate(&mut self) -> Result<ArrayRef, AggregateError> {
        let v = self.acc.evaluate()?;
        let a = v.to_array()?;
        if a.data_type() == &self.out {
            return Ok(a);
        }
        Ok(arrow::compute::cast(&a, &self.out)?)
    }

    /// Appends the state's bytes to `out`.
    pub fn save(&mut self, out: &mut Vec<u8>) -> Result<(), AggregateError> {
        for v in self.acc.state()? {
            codec::encode(&v, out)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray, Int64Array, StringArray};
    use std::sync::Arc;

    fn call(kind: AggKind, arg: SqlType) -> AggCall {
        let output = kind.output_type(&[arg.clone(), arg.clone()]).unwrap();
        AggCall { kind, args: Vec::new(), arg_types: vec![arg], output, text: String::new() }
    }

    fn ints(v: &[i64]) -> Vec<ArrayRef> {
        vec![Arc::new(Int64Array::from(v.to_vec()))]
    }

    #[test]
    fn states_save_load_and_retract() {
        let c = call(AggKind::Sum, SqlType::Bigint);
        let mut s = c.create();
        s.update(&ints(&[1, 2, 3]), 3).unwrap();
        let mut bytes = Vec::new();
        s.save(&mut bytes).unwrap();
        let mut loaded = c.load(&mut &bytes[..]).unwrap();
        loaded.retract(&ints(&[2]), 1).unwrap();
        assert_eq!(loaded.evaluate().unwrap().as_primitive::<arrow::datatypes::Int64Type>().value(0), 4);

        let c = call(AggKind::CountStar, SqlType::Bigint);
        let mut s = c.create();
        s.update(&[], 5).unwrap();
        assert_eq!(s.evaluate().unwrap().as_primitive::<arrow::datatypes::Int64Type>().value(0), 5);
    }

    #[test]
    fn collect_histogram_and_topk_round_trip() {
        let strs: Vec<ArrayRef> = vec![Arc::new(StringArray::from(vec!["a", "b", "a"]))];
        for kind in [AggKind::CollectList(3), AggKind::CollectSet(3), AggKind::Histogram, AggKind::CountDistinct, AggKind::TopK(2)] {
            let c = call(kind.clone(), SqlType::String);
            let mut s = c.create();
            s.update(&strs, 3).unwrap();
            let before = s.evaluate().unwrap();
            let mut bytes = Vec::new();
            s.save(&mut bytes).unwrap();
            let mut loaded = c.load(&mut &bytes[..]).unwrap();
            let after = loaded.evaluate().unwrap();
            assert_eq!(before.to_data(), after.to_data(), "{kind:?}");
            assert_eq!(after.data_type(), &c.output.to_arrow(), "{kind:?}");
        }
    }

    #[test]
    fn merge_combines_states() {
        let c = call(AggKind::Avg, SqlType::Bigint);
        let mut a = c.create();
        a.update(&ints(&[1, 3]), 2).unwrap();
        let mut b = c.create();
        b.update(&ints(&[5]), 1).unwrap();
        a.merge(&mut b).unwrap();
        assert_eq!(a.evaluate().unwrap().as_primitive::<arrow::datatypes::Float64Type>().value(0), 3.0);
    }
}
