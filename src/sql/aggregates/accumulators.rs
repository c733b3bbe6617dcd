//! ksqlDB's aggregate functions as DataFusion `Accumulator`s. Each keeps a small state
//! that `state()` exposes and `merge_batch` restores, and most can retract values (needed
//! when a table row changes).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, Int64Builder, MapBuilder, StringBuilder};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::Accumulator;

fn as_f64(a: &ArrayRef) -> Result<Float64Array> {
    Ok(cast(a, &DataType::Float64)?.as_primitive::<arrow::datatypes::Float64Type>().clone())
}

fn as_i64(a: &ArrayRef) -> Result<Int64Array> {
    Ok(cast(a, &DataType::Int64)?.as_primitive::<arrow::datatypes::Int64Type>().clone())
}

/// The saved state of a per-value count: the values, and their counts, as two lists.
fn counted_state<'a>(entries: impl Iterator<Item = (&'a ScalarValue, i64)>, elem: &DataType) -> Vec<ScalarValue> {
    let (vals, counts): (Vec<ScalarValue>, Vec<ScalarValue>) = entries.map(|(v, c)| (v.clone(), ScalarValue::Int64(Some(c)))).unzip();
    vec![ScalarValue::List(ScalarValue::new_list(&vals, elem, true)), ScalarValue::List(ScalarValue::new_list(&counts, &DataType::Int64, true))]
}

fn scalars(a: &ArrayRef) -> Result<Vec<ScalarValue>> {
    (0..a.len()).map(|i| ScalarValue::try_from_array(a, i)).collect()
}

fn state_i64(states: &[ArrayRef], i: usize) -> Result<Vec<i64>> {
    Ok(as_i64(&states[i])?.iter().map(|v| v.unwrap_or(0)).collect())
}

fn state_f64(states: &[ArrayRef], i: usize) -> Result<Vec<f64>> {
    Ok(as_f64(&states[i])?.iter().map(|v| v.unwrap_or(0.0)).collect())
}

/// COUNT(*) (counts rows) and COUNT(col) (counts non-null values).
#[derive(Debug)]
pub struct Count {
    pub star: bool,
    pub n: i64,
}

impl Count {
    fn counted(&self, values: &[ArrayRef]) -> i64 {
        let a = &values[0];
        if self.star { a.len() as i64 } else { (a.len() - a.null_count()) as i64 }
    }
}

impl Accumulator for Count {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.n += self.counted(values);
        Ok(())
    }
    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.n -= self.counted(values);
        Ok(())
    }
    fn supports_retract_batch(&self) -> bool {
        true
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(self.n)))
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Int64(Some(self.n))])
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.n += state_i64(states, 0)?.iter().sum::<i64>();
        Ok(())
    }
}

/// SUM: INT -> INT, BIGINT -> BIGINT, DOUBLE -> DOUBLE, DECIMAL -> DECIMAL. Starts at 0.
#[derive(Debug)]
pub struct Sum {
    pub out: DataType,
    pub i: i64,
    pub f: f64,
    pub d: i128,
}

impl Sum {
    pub fn new(out: DataType) -> Sum {
        Sum { out, i: 0, f: 0.0, d: 0 }
    }

    fn add(&mut self, a: &ArrayRef, sign: i64) -> Result<()> {
        match &self.out {
            DataType::Float64 => self.f += sign as f64 * as_f64(a)?.iter().flatten().sum::<f64>(),
            DataType::Decimal128(p, s) => {
                let c = cast(a, &DataType::Decimal128(*p, *s))?;
                let d = c.as_primitive::<arrow::datatypes::Decimal128Type>();
                let total: i128 = d.iter().flatten().fold(0i128, |acc, v| acc.wrapping_add(v));
                self.d = self.d.wrapping_add(total * sign as i128);
            }
            _ => self.i = self.i.wrapping_add(sign.wrapping_mul(as_i64(a)?.iter().flatten().fold(0i64, |acc, v| acc.wrapping_add(v)))),
        }
        Ok(())
    }
}

impl Accumulator for Sum {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0], 1)
    }
    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0], -1)
    }
    fn supports_retract_batch(&self) -> bool {
        true
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(match &self.out {
            DataType::Float64 => ScalarValue::Float64(Some(self.f)),
            DataType::Decimal128(p, s) => ScalarValue::Decimal128(Some(self.d), *p, *s),
            DataType::Int32 => ScalarValue::Int32(Some(self.i as i32)),
            _ => ScalarValue::Int64(Some(self.i)),
        })
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.add(&states[0], 1)
    }
}

/// AVG as a DOUBLE (sum / count of non-null values; 0 when there are none, as in ksqlDB).
#[derive(Debug, Default)]
pub struct Avg {
    pub sum: f64,
    pub n: i64,
}

impl Accumulator for Avg {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let a = as_f64(&values[0])?;
        for v in a.iter().flatten() {
            self.sum += v;
            self.n += 1;
        }
        Ok(())
    }
    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let a = as_f64(&values[0])?;
        for v in a.iter().flatten() {
            self.sum -= v;
            self.n -= 1;
        }
        Ok(())
    }
    fn supports_retract_batch(&self) -> bool {
        true
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(Some(if self.n == 0 { 0.0 } else { self.sum / self.n as f64 })))
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Float64(Some(self.sum)), ScalarValue::Int64(Some(self.n))])
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.sum += state_f64(states, 0)?.iter().sum::<f64>();
        self.n += state_i64(states, 1)?.iter().sum::<i64>();
        Ok(())
    }
}

/// MIN / MAX of non-null values.
#[derive(Debug)]
pub struct MinMax {
    pub max: bool,
    pub out: DataType,
    pub value: Option<ScalarValue>,
}

impl Accumulator for MinMax {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for v in scalars(&values[0])? {
            if v.is_null() {
                continue;
            }
            let better = match &self.value {
                None => true,
                Some(cur) => match v.partial_cmp(cur) {
                    Some(std::cmp::Ordering::Greater) => self.max,
                    Some(std::cmp::Ordering::Less) => !self.max,
                    _ => false,
                },
            };
            if better {
                self.value = Some(v);
            }
        }
        Ok(())
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        match &self.value {
            Some(v) => Ok(v.clone()),
            None => ScalarValue::try_from(&self.out),
        }
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.update_batch(states)
    }
}

/// LATEST_BY_OFFSET / EARLIEST_BY_OFFSET: the last (first) value seen, nulls ignored by
/// default. Records arrive in offset order, so "seen" order is offset order.
#[derive(Debug)]
pub struct ByOffset {
    pub latest: bool,
    pub ignore_nulls: bool,
    pub out: DataType,
    pub value: Option<ScalarValue>,
}

impl Accumulator for ByOffset {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for v in scalars(&values[0])? {
            if self.ignore_nulls && v.is_null() {
                continue;
            }
            if self.latest || self.value.is_none() {
                self.value = Some(v);
            }
        }
        Ok(())
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        match &self.value {
            Some(v) => Ok(v.clone()),
            None => ScalarValue::try_from(&self.out),
        }
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?, ScalarValue::Boolean(Some(self.value.is_some()))])
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let seen = states[1].as_boolean();
        for i in 0..states[0].len() {
            if seen.value(i) {
                let v = ScalarValue::try_from_array(&states[0], i)?;
                if self.latest || self.value.is_none() {
                    self.value = Some(v);
                }
            }
        }
        Ok(())
    }
}

/// LATEST_BY_OFFSET / EARLIEST_BY_OFFSET with a count: the last (or first) `n` values.
#[derive(Debug)]
pub struct ByOffsetN {
    pub latest: bool,
    pub ignore_nulls: bool,
    pub n: usize,
    pub elem: DataType,
    pub items: Vec<ScalarValue>,
}

impl ByOffsetN {
    fn add(&mut self, v: ScalarValue) {
        if self.latest {
            self.items.push(v);
            if self.items.len() > self.n {
                self.items.remove(0);
            }
        } else if self.items.len() < self.n {
            self.items.push(v);
        }
    }
}

impl Accumulator for ByOffsetN {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for v in scalars(&values[0])? {
            if self.ignore_nulls && v.is_null() {
                continue;
            }
            self.add(v);
        }
        Ok(())
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::List(ScalarValue::new_list_nullable(&self.items, &self.elem)))
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.items.iter().map(|v| v.size()).sum::<usize>()
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = states[0].as_list::<i32>();
        for i in 0..lists.len() {
            if lists.is_null(i) {
                continue;
            }
            let vals = lists.value(i);
            for j in 0..vals.len() {
                self.add(ScalarValue::try_from_array(&vals, j)?);
            }
        }
        Ok(())
    }
}

/// ATTR: counts per distinct value (null included); the value when there is one.
#[derive(Debug)]
pub struct Attr {
    pub elem: DataType,
    pub counts: Vec<(ScalarValue, i64)>,
}

impl Attr {
    fn add(&mut self, v: ScalarValue, n: i64) {
        match self.counts.iter_mut().find(|(x, _)| *x == v) {
            Some(slot) => slot.1 += n,
            None => self.counts.push((v, n)),
        }
        self.counts.retain(|(_, c)| *c > 0);
    }
}

impl Accumulator for Attr {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for v in scalars(&values[0])? {
            self.add(v, 1);
        }
        Ok(())
    }
    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for v in scalars(&values[0])? {
            self.add(v, -1);
        }
        Ok(())
    }
    fn supports_retract_batch(&self) -> bool {
        true
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        match self.counts.as_slice() {
            [(v, _)] => Ok(v.clone()),
            _ => ScalarValue::try_from(&self.elem),
        }
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.counts.len() * 48
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(counted_state(self.counts.iter().map(|(v, c)| (v, *c)), &self.elem))
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let vals = states[0].as_list::<i32>();
        let counts = states[1].as_list::<i32>();
        for i in 0..vals.len() {
            if vals.is_null(i) {
                continue;
            }
            let v = vals.value(i);
            let c = as_i64(&counts.value(i))?;
            for j in 0..v.len() {
                self.add(ScalarValue::try_from_array(&v, j)?, if j < c.len() { c.value(j) } else { 0 });
            }
        }
        Ok(())
    }
}

/// COLLECT_LIST / COLLECT_SET (at most `limit` elements).
#[derive(Debug)]
pub struct Collect {
    pub distinct: bool,
    pub elem: DataType,
    pub limit: usize,
    pub items: Vec<ScalarValue>,
}

/// Equality as Java's collections see it: a MAP equals another with the same entries in
/// any order (inside lists too); other values are equal when their Arrow values are.
fn same_value(a: &ScalarValue, b: &ScalarValue) -> bool {
    use crate::sql::udf::value::{entries, items};
    match (a, b) {
        (ScalarValue::Map(_), ScalarValue::Map(_)) => match (entries(a), entries(b)) {
            (Some(x), Some(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.iter().any(|(k2, v2)| same_value(k, k2) && same_value(v, v2))),
            (x, y) => x.is_none() && y.is_none(),
        },
        (ScalarValue::List(_), ScalarValue::List(_)) => match (items(a), items(b)) {
            (Some(x), Some(y)) => x.len() == y.len() && x.iter().zip(&y).all(|(p, q)| same_value(p, q)),
            (x, y) => x.is_none() && y.is_none(),
        },
        _ => a == b,
    }
}

impl Accumulator for Collect {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for v in scalars(&values[0])? {
            if self.items.len() >= self.limit || (self.distinct && self.items.iter().any(|x| same_value(x, &v))) {
                continue;
            }
            self.items.push(v);
        }
        Ok(())
    }
    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for v in scalars(&values[0])? {
            if let Some(i) = self.items.iter().position(|x| same_value(x, &v)) {
                self.items.remove(i);
            }
        }
        Ok(())
    }
    fn supports_retract_batch(&self) -> bool {
        true
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::List(ScalarValue::new_list(&self.items, &self.elem, true)))
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.items.len() * 32
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = states[0].as_list::<i32>();
        for i in 0..lists.len() {
            self.update_batch(&[lists.value(i)])?;
        }
        Ok(())
    }
}

/// COUNT_DISTINCT (exact, with retraction).
#[derive(Debug)]
pub struct CountDistinct {
    pub elem: DataType,
    pub counts: HashMap<ScalarValue, i64>,
}

impl Accumulator for CountDistinct {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for v in scalars(&values[0])? {
            if !v.is_null() {
                *self.counts.entry(v).or_default() += 1;
            }
        }
        Ok(())
    }
    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for v in scalars(&values[0])? {
            if let Some(c) = self.counts.get_mut(&v) {
                *c -= 1;
                if *c <= 0 {
                    self.counts.remove(&v);
                }
            }
        }
        Ok(())
    }
    fn supports_retract_batch(&self) -> bool {
        true
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(self.counts.len() as i64)))
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.counts.len() * 48
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let mut entries: Vec<_> = self.counts.iter().collect();
        entries.sort_by(|a, b| a.0.partial_cmp(b.0).unwrap_or(std::cmp::Ordering::Equal));
        Ok(counted_state(entries.into_iter().map(|(v, c)| (v, *c)), &self.elem))
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let vals = states[0].as_list::<i32>();
        let counts = states[1].as_list::<i32>();
        for i in 0..vals.len() {
            let v = vals.value(i);
            let c = as_i64(&counts.value(i))?;
            for j in 0..v.len() {
                *self.counts.entry(ScalarValue::try_from_array(&v, j)?).or_default() += c.value(j);
            }
        }
        Ok(())
    }
}

/// TOPK / TOPKDISTINCT: the k largest values, descending.
#[derive(Debug)]
pub struct TopK {
    pub k: usize,
    pub distinct: bool,
    pub elem: DataType,
    pub items: Vec<ScalarValue>,
}

impl Accumulator for TopK {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for v in scalars(&values[0])? {
            if v.is_null() || (self.distinct && self.items.contains(&v)) {
                continue;
            }
            self.items.push(v);
        }
        self.items.sort_by(|a, b| b.partial_cmp(a).unwrap_or(std::cmp::Ordering::Equal));
        self.items.truncate(self.k);
        Ok(())
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::List(ScalarValue::new_list(&self.items, &self.elem, true)))
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.items.len() * 32
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = states[0].as_list::<i32>();
        for i in 0..lists.len() {
            self.update_batch(&[lists.value(i)])?;
        }
        Ok(())
    }
}

/// HISTOGRAM: counts per distinct string value, as MAP<STRING, BIGINT>.
#[derive(Debug, Default)]
pub struct Histogram {
    pub counts: BTreeMap<String, i64>,
}

impl Histogram {
    fn apply(&mut self, a: &ArrayRef, sign: i64) -> Result<()> {
        let s = cast(a, &DataType::Utf8)?;
        for v in s.as_string::<i32>().iter().flatten() {
            let c = self.counts.entry(v.to_string()).or_default();
            *c += sign;
            if *c <= 0 {
                self.counts.remove(v);
            }
        }
        Ok(())
    }
}

impl Accumulator for Histogram {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.apply(&values[0], 1)
    }
    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.apply(&values[0], -1)
    }
    fn supports_retract_batch(&self) -> bool {
        true
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mut b = MapBuilder::new(None, StringBuilder::new(), Int64Builder::new());
        for (k, v) in &self.counts {
            b.keys().append_value(k);
            b.values().append_value(*v);
        }
        b.append(true)?;
        let m = b.finish();
        // Match the SQL type's field names (entries / key / value).
        let target =
            crate::catalog::types::SqlType::Map(Box::new(crate::catalog::types::SqlType::String), Box::new(crate::catalog::types::SqlType::Bigint)).to_arrow();
        let m = cast(&(Arc::new(m) as ArrayRef), &target)?;
        Ok(ScalarValue::Map(Arc::new(m.as_map().clone())))
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.counts.len() * 48
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let keys: Vec<ScalarValue> = self.counts.keys().map(|k| ScalarValue::Utf8(Some(k.clone()))).collect();
        let counts: Vec<ScalarValue> = self.counts.values().map(|c| ScalarValue::Int64(Some(*c))).collect();
        Ok(vec![
            ScalarValue::List(ScalarValue::new_list(&keys, &DataType::Utf8, true)),
            ScalarValue::List(ScalarValue::new_list(&counts, &DataType::Int64, true)),
        ])
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let keys = states[0].as_list::<i32>();
        let counts = states[1].as_list::<i32>();
        for i in 0..keys.len() {
            let k = keys.value(i);
            let k = k.as_string::<i32>();
            let c = as_i64(&counts.value(i))?;
            for j in 0..k.len() {
                *self.counts.entry(k.value(j).to_string()).or_default() += c.value(j);
            }
        }
        Ok(())
    }
}

/// STDDEV_SAMP (Welford), with retraction.
#[derive(Debug, Default)]
pub struct Stddev {
    pub n: i64,
    pub mean: f64,
    pub m2: f64,
}

impl Stddev {
    fn push(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }
    fn pop(&mut self, x: f64) {
        if self.n <= 1 {
            *self = Stddev::default();
            return;
        }
        let mean_prev = (self.mean * self.n as f64 - x) / (self.n - 1) as f64;
        self.m2 -= (x - mean_prev) * (x - self.mean);
        self.mean = mean_prev;
        self.n -= 1;
    }
}

impl Accumulator for Stddev {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for v in as_f64(&values[0])?.iter().flatten() {
            self.push(v);
        }
        Ok(())
    }
    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for v in as_f64(&values[0])?.iter().flatten() {
            self.pop(v);
        }
        Ok(())
    }
    fn supports_retract_batch(&self) -> bool {
        true
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(Some(if self.n < 2 { 0.0 } else { (self.m2 / (self.n - 1) as f64).sqrt() })))
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Int64(Some(self.n)), ScalarValue::Float64(Some(self.mean)), ScalarValue::Float64(Some(self.m2))])
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (n, mean, m2) = (state_i64(states, 0)?, state_f64(states, 1)?, state_f64(states, 2)?);
        for i in 0..n.len() {
            if n[i] == 0 {
                continue;
            }
            let total = self.n + n[i];
            let delta = mean[i] - self.mean;
            self.mean += delta * n[i] as f64 / total as f64;
            self.m2 += m2[i] + delta * delta * (self.n as f64) * (n[i] as f64) / total as f64;
            self.n = total;
        }
        Ok(())
    }
}

/// CORRELATION(x, y): Pearson's r over pairs where both are non-null; NaN when undefined.
#[derive(Debug, Default)]
pub struct Correlation {
    pub n: f64,
    pub sx: f64,
    pub sy: f64,
    pub sxx: f64,
    pub syy: f64,
    pub sxy: f64,
}

impl Correlation {
    fn apply(&mut self, values: &[ArrayRef], sign: f64) -> Result<()> {
        let (x, y) = (as_f64(&values[0])?, as_f64(&values[1])?);
        for i in 0..x.len() {
            if x.is_null(i) || y.is_null(i) {
                continue;
            }
            let (a, b) = (x.value(i), y.value(i));
            self.n += sign;
            self.sx += sign * a;
            self.sy += sign * b;
            self.sxx += sign * a * a;
            self.syy += sign * b * b;
            self.sxy += sign * a * b;
        }
        Ok(())
    }
}

impl Accumulator for Correlation {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.apply(values, 1.0)
    }
    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.apply(values, -1.0)
    }
    fn supports_retract_batch(&self) -> bool {
        true
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        let n = self.n;
        let cov = self.sxy - self.sx * self.sy / n;
        let vx = self.sxx - self.sx * self.sx / n;
        let vy = self.syy - self.sy * self.sy / n;
        Ok(ScalarValue::Float64(Some(cov / (vx * vy).sqrt())))
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok([self.n, self.sx, self.sy, self.sxx, self.syy, self.sxy].iter().map(|v| ScalarValue::Float64(Some(*v))).collect())
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let cols: Vec<Vec<f64>> = (0..6).map(|i| state_f64(states, i)).collect::<Result<_>>()?;
        let [n, sx, sy, sxx, syy, sxy] = cols.as_slice() else { return Ok(()) };
        for (total, column) in [(&mut self.n, n), (&mut self.sx, sx), (&mut self.sy, sy), (&mut self.sxx, sxx), (&mut self.syy, syy), (&mut self.sxy, sxy)] {
            for v in column {
                *total += v;
            }
        }
        Ok(())
    }
}
