//! Numeric functions DataFusion's library does not give ksqlDB's way: trigonometry
//! (radians in, radians out; `NaN` outside a function's domain, as Java's `Math`), LOG
//! with ksqlDB's base 10 default, CBRT, DEGREES, RADIANS, PI, TRUNC and GEO_DISTANCE.

use arrow::datatypes::DataType;
use datafusion::common::ScalarValue;

use super::RowFunction;
use super::value::{float, int, text};
use crate::catalog::types::SqlType;
use crate::sql::functions::{between, exactly};

/// Earth's mean radius, as ksqlDB's GEO_DISTANCE uses it.
const EARTH_RADIUS_KM: f64 = 6371.0;
const EARTH_RADIUS_MILES: f64 = 3959.0;

/// Functions of numbers whose result is a DOUBLE (every argument any numeric type; ksqlDB
/// widens INT, BIGINT and DECIMAL to DOUBLE for them).
fn doubles(t: &[SqlType]) -> Result<SqlType, String> {
    match t.iter().find(|x| !x.is_numeric()) {
        Some(bad) => Err(format!("takes numbers, not {bad}")),
        None => Ok(SqlType::Double),
    }
}

fn double(v: f64) -> Option<ScalarValue> {
    Some(ScalarValue::Float64(Some(v)))
}

fn unary(a: &[ScalarValue], f: fn(f64) -> f64) -> Option<ScalarValue> {
    double(f(float(&a[0])?))
}

fn log(a: &[ScalarValue], _: &DataType) -> Option<ScalarValue> {
    match a {
        [v] => double(float(v)?.log10()),
        [base, v] => {
            let (b, x) = (float(base)?, float(v)?);
            // As ksqlDB documents: NaN for a negative value or a base of 0, 1 or below 0;
            // -Infinity for 0 in any other base.
            if x < 0.0 || b <= 0.0 || b == 1.0 {
                double(f64::NAN)
            } else if x == 0.0 {
                double(f64::NEG_INFINITY)
            } else {
                double(x.ln() / b.ln())
            }
        }
        _ => None,
    }
}

fn atan2(a: &[ScalarValue], _: &DataType) -> Option<ScalarValue> {
    double(float(&a[0])?.atan2(float(&a[1])?))
}

/// TRUNC's result type: integers stay as they are; a DOUBLE without a scale is a BIGINT
/// (as ROUND's); with a scale, the argument's type.
fn trunc_type(t: &[SqlType]) -> Result<SqlType, String> {
    if let Some(scale) = t.get(1)
        && !matches!(scale, SqlType::Int | SqlType::Bigint)
    {
        return Err(format!("the scale must be an INT, not {scale}"));
    }
    match &t[0] {
        SqlType::Int | SqlType::Bigint => Ok(t[0].clone()),
        SqlType::Double if t.len() == 1 => Ok(SqlType::Bigint),
        SqlType::Double => Ok(SqlType::Double),
        SqlType::Decimal { precision, scale } if t.len() == 1 => Ok(SqlType::Decimal { precision: (*precision as i16 - *scale as i16).max(1) as u8, scale: 0 }),
        SqlType::Decimal { .. } => Ok(t[0].clone()),
        other => Err(format!("takes a number, not {other}")),
    }
}

fn trunc(a: &[ScalarValue], ret: &DataType) -> Option<ScalarValue> {
    let places = match a.get(1) {
        None => 0,
        Some(s) => int(s)?,
    };
    match &a[0] {
        ScalarValue::Decimal128(Some(v), _, s) => {
            let drop = (*s as i64 - places).clamp(0, 38) as u32;
            let unit = 10i128.checked_pow(drop)?;
            let truncated = v / unit * unit;
            // Rescale to the result's scale.
            let DataType::Decimal128(p, rs) = ret else { return None };
            let shift = *s as i32 - *rs as i32;
            let value = if shift >= 0 { truncated / 10i128.checked_pow(shift as u32)? } else { truncated.checked_mul(10i128.checked_pow((-shift) as u32)?)? };
            Some(ScalarValue::Decimal128(Some(value), *p, *rs))
        }
        v @ (ScalarValue::Float64(_) | ScalarValue::Float32(_)) => {
            let x = float(v)?;
            if matches!(ret, DataType::Int64) {
                // Java's (long) cast: toward zero, saturating.
                return Some(ScalarValue::Int64(Some(x.trunc() as i64)));
            }
            let f = 10f64.powi(places.clamp(-308, 308) as i32);
            double((x * f).trunc() / f)
        }
        v => {
            let x = int(v)?;
            if places >= 0 {
                return Some(v.clone());
            }
            let unit = 10i64.checked_pow(u32::try_from(-places).ok()?).unwrap_or(i64::MAX);
            let t = x / unit * unit;
            match ret {
                DataType::Int32 => Some(ScalarValue::Int32(Some(i32::try_from(t).ok()?))),
                _ => Some(ScalarValue::Int64(Some(t))),
            }
        }
    }
}

fn geo_distance(a: &[ScalarValue], _: &DataType) -> Option<ScalarValue> {
    let (lat1, lon1, lat2, lon2) = (float(&a[0])?, float(&a[1])?, float(&a[2])?, float(&a[3])?);
    let radius = match a.get(4) {
        None => EARTH_RADIUS_KM,
        Some(u) => match text(u)?.to_ascii_lowercase().as_str() {
            "km" | "kilometer" | "kilometers" | "kilometre" | "kilometres" => EARTH_RADIUS_KM,
            "mi" | "mile" | "miles" => EARTH_RADIUS_MILES,
            _ => return None,
        },
    };
    let valid_lat = |x: f64| (-90.0..=90.0).contains(&x);
    let valid_lon = |x: f64| (-180.0..=180.0).contains(&x);
    if !(valid_lat(lat1) && valid_lat(lat2) && valid_lon(lon1) && valid_lon(lon2)) {
        return None;
    }
    // Haversine formula.
    let (dlat, dlon) = ((lat2 - lat1).to_radians(), (lon2 - lon1).to_radians());
    let h = (dlat / 2.0).sin().powi(2) + (dlon / 2.0).sin().powi(2) * lat1.to_radians().cos() * lat2.to_radians().cos();
    double(2.0 * h.sqrt().asin() * radius)
}

macro_rules! unary_fn {
    ($name:expr, $desc:expr, $f:expr) => {
        RowFunction { name: $name, arity: exactly(1), description: $desc, returns: doubles, eval: |a, _| unary(a, $f) }
    };
}

pub fn functions() -> Vec<RowFunction> {
    vec![
        unary_fn!("ACOS", "The arc cosine in radians; NaN outside [-1, 1].", f64::acos),
        unary_fn!("ASIN", "The arc sine in radians; NaN outside [-1, 1].", f64::asin),
        unary_fn!("ATAN", "The arc tangent in radians.", f64::atan),
        unary_fn!("COS", "The cosine of an angle in radians.", f64::cos),
        unary_fn!("COSH", "The hyperbolic cosine.", f64::cosh),
        unary_fn!("COT", "The cotangent of an angle in radians; Infinity at 0 with the sign of the input.", |x| 1.0 / x.tan()),
        unary_fn!("SIN", "The sine of an angle in radians.", f64::sin),
        unary_fn!("SINH", "The hyperbolic sine.", f64::sinh),
        unary_fn!("TAN", "The tangent of an angle in radians.", f64::tan),
        unary_fn!("TANH", "The hyperbolic tangent.", f64::tanh),
        unary_fn!("CBRT", "The cube root.", f64::cbrt),
        unary_fn!("DEGREES", "Converts radians to degrees.", f64::to_degrees),
        unary_fn!("RADIANS", "Converts degrees to radians.", f64::to_radians),
        RowFunction { name: "ATAN2", arity: exactly(2), description: "ATAN2(y, x): the angle of the point (x, y) in radians.", returns: doubles, eval: atan2 },
        RowFunction {
            name: "LOG",
            arity: between(1, 2),
            description: "LOG(value): base-10 logarithm; LOG(base, value): logarithm in a base. -Infinity at 0; NaN for negative values and bases 0 and 1.",
            returns: doubles,
            eval: log,
        },
        RowFunction {
            name: "PI",
            arity: exactly(0),
            description: "An approximate value of pi.",
            returns: |_| Ok(SqlType::Double),
            eval: |_, _| double(std::f64::consts::PI),
        },
        RowFunction {
            name: "TRUNC",
            arity: between(1, 2),
            description: "TRUNC(x[, scale]): rounds toward zero, to a number of decimal places (default 0; negative to the left of the point).",
            returns: trunc_type,
            eval: trunc,
        },
        RowFunction {
            name: "GEO_DISTANCE",
            arity: between(4, 5),
            description: "GEO_DISTANCE(lat1, lon1, lat2, lon2[, unit]): great-circle distance in 'KM' (default) or 'MILES'; null for invalid \
                coordinates or units.",
            returns: |t| {
                if let Some(u) = t.get(4)
                    && *u != SqlType::String
                {
                    return Err("the unit must be a STRING ('KM' or 'MILES')".into());
                }
                doubles(&t[..4.min(t.len())])
            },
            eval: geo_distance,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(x: f64) -> ScalarValue {
        ScalarValue::Float64(Some(x))
    }

    #[test]
    fn log_defaults_to_base_ten_and_follows_java_at_the_edges() {
        assert_eq!(log(&[d(1000.0)], &DataType::Float64), Some(d(3.0)));
        let Some(ScalarValue::Float64(Some(l))) = log(&[d(2.0), d(8.0)], &DataType::Float64) else { panic!("log") };
        assert!((l - 3.0).abs() < 1e-12);
        assert_eq!(log(&[d(0.0)], &DataType::Float64), Some(d(f64::NEG_INFINITY)));
        let nan = |r: Option<ScalarValue>| matches!(r, Some(ScalarValue::Float64(Some(x))) if x.is_nan());
        assert!(nan(log(&[d(-1.0)], &DataType::Float64)));
        assert!(nan(log(&[d(1.0), d(5.0)], &DataType::Float64)));
    }

    #[test]
    fn trunc_rounds_toward_zero_for_every_numeric_type() {
        assert_eq!(trunc(&[d(-2.7)], &DataType::Int64), Some(ScalarValue::Int64(Some(-2))));
        assert_eq!(trunc(&[d(2.789), ScalarValue::Int32(Some(2))], &DataType::Float64), Some(d(2.78)));
        assert_eq!(trunc(&[ScalarValue::Int32(Some(1234)), ScalarValue::Int32(Some(-2))], &DataType::Int32), Some(ScalarValue::Int32(Some(1200))));
        // 12.345 as DECIMAL(5,3) to one place is 12.300, and without a scale 12.
        let dec = ScalarValue::Decimal128(Some(12345), 5, 3);
        assert_eq!(trunc(&[dec.clone(), ScalarValue::Int32(Some(1))], &DataType::Decimal128(5, 3)), Some(ScalarValue::Decimal128(Some(12300), 5, 3)));
        assert_eq!(trunc(&[dec], &DataType::Decimal128(2, 0)), Some(ScalarValue::Decimal128(Some(12), 2, 0)));
        assert_eq!(trunc_type(&[SqlType::Decimal { precision: 5, scale: 3 }]), Ok(SqlType::Decimal { precision: 2, scale: 0 }));
    }

    #[test]
    fn geo_distance_in_km_and_miles_and_null_for_bad_input() {
        // London to Paris, about 343.5 km.
        let args = [d(51.5074), d(-0.1278), d(48.8566), d(2.3522)];
        let Some(ScalarValue::Float64(Some(km))) = geo_distance(&args, &DataType::Float64) else { panic!("distance") };
        assert!((km - 343.5).abs() < 1.0, "{km}");
        let mut miles = args.to_vec();
        miles.push(ScalarValue::Utf8(Some("miles".into())));
        let Some(ScalarValue::Float64(Some(mi))) = geo_distance(&miles, &DataType::Float64) else { panic!("distance") };
        assert!((mi - km * EARTH_RADIUS_MILES / EARTH_RADIUS_KM).abs() < 1e-9);
        assert_eq!(geo_distance(&[d(91.0), d(0.0), d(0.0), d(0.0)], &DataType::Float64), None);
        let mut bad_unit = args.to_vec();
        bad_unit.push(ScalarValue::Utf8(Some("parsecs".into())));
        assert_eq!(geo_distance(&bad_unit, &DataType::Float64), None);
    }

    #[test]
    fn trigonometry_takes_any_number_and_refuses_strings() {
        assert_eq!(doubles(&[SqlType::Int]), Ok(SqlType::Double));
        assert!(doubles(&[SqlType::String]).is_err());
        assert_eq!(unary(&[ScalarValue::Int32(Some(0))], f64::cos), Some(d(1.0)));
        assert_eq!(unary(&[d(0.0)], |x| 1.0 / x.tan()), Some(d(f64::INFINITY)));
        assert_eq!(unary(&[d(-0.0)], |x| 1.0 / x.tan()), Some(d(f64::NEG_INFINITY)));
    }
}
