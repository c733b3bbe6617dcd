//! Date and time functions: PARSE_/FORMAT_ TIMESTAMP, DATE and TIME with Java patterns
//! (and the older STRINGTOTIMESTAMP, TIMESTAMPTOSTRING, STRINGTODATE, DATETOSTRING on
//! epoch numbers), UNIX_DATE, FROM_UNIXTIME, FROM_DAYS, and interval arithmetic
//! TIMESTAMPADD/SUB, DATEADD/SUB, TIMEADD/SUB (`TIMESTAMPADD(SECONDS, 5, ts)`), CONVERT_TZ.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{NaiveDate, NaiveTime, TimeZone, Utc};
use datafusion::common::ScalarValue;

use super::RowFunction;
use super::value::{int, text};
use crate::catalog::types::SqlType;
use crate::format::java_time::JavaPattern;
use crate::format::java_time::{Zone, java_zone};
use crate::format::timestamps::java_to_chrono;
use crate::sql::functions::{between, exactly};

const DAY_MS: i64 = 86_400_000;

/// The units the interval functions take as their first argument.
pub const INTERVAL_UNITS: &[&str] = &["MILLISECONDS", "SECONDS", "MINUTES", "HOURS", "DAYS", "WEEKS", "MONTHS", "YEARS"];

fn unit_millis(unit: &str) -> Option<i64> {
    let u = unit.to_ascii_uppercase();
    Some(match u.trim_end_matches('S') {
        "MILLISECOND" => 1,
        "SECOND" => 1_000,
        "MINUTE" => 60_000,
        "HOUR" => 3_600_000,
        "DAY" => DAY_MS,
        "WEEK" => 7 * DAY_MS,
        _ => return None,
    })
}

fn ts_millis(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::TimestampMillisecond(Some(x), _) => Some(*x),
        ScalarValue::TimestampSecond(Some(x), _) => Some(x * 1000),
        ScalarValue::TimestampMicrosecond(Some(x), _) => Some(x / 1000),
        ScalarValue::TimestampNanosecond(Some(x), _) => Some(x / 1_000_000),
        other => int(other),
    }
}

fn date_days(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::Date32(Some(d)) => Some(*d as i64),
        ScalarValue::Date64(Some(ms)) => Some(ms.div_euclid(DAY_MS)),
        other => int(other),
    }
}

fn time_millis(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::Time32Millisecond(Some(x)) => Some(*x as i64),
        ScalarValue::Time32Second(Some(x)) => Some(*x as i64 * 1000),
        ScalarValue::Time64Microsecond(Some(x)) => Some(x / 1000),
        ScalarValue::Time64Nanosecond(Some(x)) => Some(x / 1_000_000),
        other => int(other),
    }
}

fn timestamp(ms: i64) -> Option<ScalarValue> {
    Some(ScalarValue::TimestampMillisecond(Some(ms), None))
}

fn zone(a: &[ScalarValue], i: usize) -> Option<Option<Zone>> {
    match a.get(i) {
        None => Some(None),
        Some(z) => Some(Some(java_zone(text(z)?)?)),
    }
}

/// A compiled Java pattern, cached: patterns are nearly always literals, compiled once.
fn java_pattern(p: &str) -> Option<Arc<JavaPattern>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<JavaPattern>>>> = OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().ok()?;
    if let Some(c) = cache.get(p) {
        return Some(c.clone());
    }
    let compiled = Arc::new(JavaPattern::compile(p));
    // Patterns taken from a column could be endless: keep the cache bounded.
    if cache.len() >= 1024 {
        cache.clear();
    }
    cache.insert(p.to_string(), compiled.clone());
    Some(compiled)
}

/// Epoch millis of a string under a Java pattern; a text without a zone is in the zone
/// argument when given, else UTC.
fn parse_ts(a: &[ScalarValue]) -> Option<i64> {
    let pattern = java_pattern(text(&a[1])?)?;
    pattern.parse_millis(text(&a[0])?, zone(a, 2)?)
}

fn format_ts(ms: i64, a: &[ScalarValue]) -> Option<ScalarValue> {
    let pattern = java_to_chrono(text(&a[1])?);
    let utc = Utc.timestamp_millis_opt(ms).single()?;
    let out = match zone(a, 2)? {
        None => utc.format(&pattern).to_string(),
        Some(tz) => tz.format(utc, &pattern),
    };
    Some(ScalarValue::Utf8(Some(out)))
}

/// CONVERT_TZ(ts, from, to): the timestamp shifted by the difference of the zones' UTC
/// offsets at that instant, as ksqlDB computes it.
fn convert_tz(a: &[ScalarValue]) -> Option<ScalarValue> {
    let ms = ts_millis(&a[0])?;
    let utc = Utc.timestamp_millis_opt(ms).single()?;
    let offset = |z: &ScalarValue| -> Option<i64> { Some(java_zone(text(z)?)?.offset_millis(utc)) };
    timestamp(ms + offset(&a[2])? - offset(&a[1])?)
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

fn parse_date_days(a: &[ScalarValue]) -> Option<i64> {
    java_pattern(text(&a[1])?)?.parse_days(text(&a[0])?)
}

fn format_date(days: i64, a: &[ScalarValue]) -> Option<ScalarValue> {
    let d = epoch().checked_add_signed(chrono::Duration::days(days))?;
    Some(ScalarValue::Utf8(Some(d.format(&java_to_chrono(text(&a[1])?)).to_string())))
}

fn format_time(ms: i64, a: &[ScalarValue]) -> Option<ScalarValue> {
    let t = NaiveTime::from_num_seconds_from_midnight_opt((ms / 1000) as u32, ((ms % 1000) * 1_000_000) as u32)?;
    Some(ScalarValue::Utf8(Some(t.format(&java_to_chrono(text(&a[1])?)).to_string())))
}

fn parse_time(a: &[ScalarValue]) -> Option<ScalarValue> {
    let ms = java_pattern(text(&a[1])?)?.parse_time_of_day(text(&a[0])?)?;
    Some(ScalarValue::Time32Millisecond(Some(i32::try_from(ms).ok()?)))
}

/// `(unit, amount)` of an interval function, in milliseconds.
fn interval(a: &[ScalarValue]) -> Option<i64> {
    unit_millis(text(&a[0])?)?.checked_mul(int(&a[1])?)
}

fn interval_args(t: &[SqlType], target: SqlType) -> Result<SqlType, String> {
    if t[0] == SqlType::String && matches!(t[1], SqlType::Int | SqlType::Bigint) && t[2] == target {
        Ok(target)
    } else {
        Err(format!("expected (unit, INTEGER, {target})"))
    }
}

fn string_args(t: &[SqlType]) -> bool {
    t.iter().all(|x| *x == SqlType::String)
}

fn f(
    name: &'static str,
    arity: crate::sql::functions::Arity,
    description: &'static str,
    returns: fn(&[SqlType]) -> Result<SqlType, String>,
    eval: super::RowEval,
) -> RowFunction {
    RowFunction { name, arity, description, returns, eval }
}

pub fn functions() -> Vec<RowFunction> {
    vec![
        f(
            "PARSE_TIMESTAMP",
            between(2, 3),
            "PARSE_TIMESTAMP(string, pattern[, zone]): a TIMESTAMP from text.",
            |t| if string_args(t) { Ok(SqlType::Timestamp) } else { Err("all arguments must be STRING".into()) },
            |a, _| timestamp(parse_ts(a)?),
        ),
        f(
            "STRINGTOTIMESTAMP",
            between(2, 3),
            "STRINGTOTIMESTAMP(string, pattern[, zone]): epoch milliseconds (BIGINT) from text.",
            |t| if string_args(t) { Ok(SqlType::Bigint) } else { Err("all arguments must be STRING".into()) },
            |a, _| Some(ScalarValue::Int64(Some(parse_ts(a)?))),
        ),
        f(
            "FORMAT_TIMESTAMP",
            between(2, 3),
            "FORMAT_TIMESTAMP(timestamp, pattern[, zone]): text.",
            |t| if t[0] == SqlType::Timestamp && string_args(&t[1..]) { Ok(SqlType::String) } else { Err("expected (TIMESTAMP, STRING[, STRING])".into()) },
            |a, _| format_ts(ts_millis(&a[0])?, a),
        ),
        f(
            "TIMESTAMPTOSTRING",
            between(2, 3),
            "TIMESTAMPTOSTRING(epoch_millis, pattern[, zone]): text.",
            |t| {
                if matches!(t[0], SqlType::Bigint | SqlType::Int) && string_args(&t[1..]) {
                    Ok(SqlType::String)
                } else {
                    Err("expected (BIGINT, STRING[, STRING])".into())
                }
            },
            |a, _| format_ts(ts_millis(&a[0])?, a),
        ),
        f(
            "CONVERT_TZ",
            exactly(3),
            "CONVERT_TZ(timestamp, from_zone, to_zone): the timestamp moved from one time zone to another (zone IDs like 'America/Los_Angeles').",
            |t| {
                if t[0] == SqlType::Timestamp && string_args(&t[1..]) { Ok(SqlType::Timestamp) } else { Err("expected (TIMESTAMP, STRING, STRING)".into()) }
            },
            |a, _| convert_tz(a),
        ),
        f(
            "PARSE_DATE",
            exactly(2),
            "PARSE_DATE(string, pattern): a DATE from text.",
            |t| if string_args(t) { Ok(SqlType::Date) } else { Err("all arguments must be STRING".into()) },
            |a, _| Some(ScalarValue::Date32(Some(i32::try_from(parse_date_days(a)?).ok()?))),
        ),
        f(
            "STRINGTODATE",
            exactly(2),
            "STRINGTODATE(string, pattern): days since the epoch (INTEGER) from text.",
            |t| if string_args(t) { Ok(SqlType::Int) } else { Err("all arguments must be STRING".into()) },
            |a, _| Some(ScalarValue::Int32(Some(i32::try_from(parse_date_days(a)?).ok()?))),
        ),
        f(
            "FORMAT_DATE",
            exactly(2),
            "FORMAT_DATE(date, pattern): text.",
            |t| if t[0] == SqlType::Date && t[1] == SqlType::String { Ok(SqlType::String) } else { Err("expected (DATE, STRING)".into()) },
            |a, _| format_date(date_days(&a[0])?, a),
        ),
        f(
            "DATETOSTRING",
            exactly(2),
            "DATETOSTRING(days, pattern): text of a day number.",
            |t| {
                if matches!(t[0], SqlType::Int | SqlType::Bigint) && t[1] == SqlType::String {
                    Ok(SqlType::String)
                } else {
                    Err("expected (INTEGER, STRING)".into())
                }
            },
            |a, _| format_date(date_days(&a[0])?, a),
        ),
        f(
            "FORMAT_TIME",
            exactly(2),
            "FORMAT_TIME(time, pattern): text.",
            |t| if t[0] == SqlType::Time && t[1] == SqlType::String { Ok(SqlType::String) } else { Err("expected (TIME, STRING)".into()) },
            |a, _| format_time(time_millis(&a[0])?, a),
        ),
        f(
            "PARSE_TIME",
            exactly(2),
            "PARSE_TIME(string, pattern): a TIME from text.",
            |t| if string_args(t) { Ok(SqlType::Time) } else { Err("all arguments must be STRING".into()) },
            |a, _| parse_time(a),
        ),
        f(
            "UNIX_TIMESTAMP",
            between(0, 1),
            "Milliseconds since the epoch, now or of a TIMESTAMP.",
            |t| if t.is_empty() || t[0] == SqlType::Timestamp { Ok(SqlType::Bigint) } else { Err("expected a TIMESTAMP".into()) },
            |a, _| {
                let ms = match a.first() {
                    Some(ts) => ts_millis(ts)?,
                    None => Utc::now().timestamp_millis(),
                };
                Some(ScalarValue::Int64(Some(ms)))
            },
        ),
        f(
            "UNIX_DATE",
            between(0, 1),
            "Days since the epoch, today or of a DATE.",
            |t| if t.is_empty() || t[0] == SqlType::Date { Ok(SqlType::Int) } else { Err("expected a DATE".into()) },
            |a, _| {
                let days = match a.first() {
                    Some(d) => date_days(d)?,
                    None => Utc::now().timestamp_millis().div_euclid(DAY_MS),
                };
                Some(ScalarValue::Int32(Some(i32::try_from(days).ok()?)))
            },
        ),
        f(
            "FROM_UNIXTIME",
            exactly(1),
            "A TIMESTAMP from epoch milliseconds.",
            |t| if matches!(t[0], SqlType::Int | SqlType::Bigint) { Ok(SqlType::Timestamp) } else { Err("expected BIGINT".into()) },
            |a, _| timestamp(int(&a[0])?),
        ),
        f(
            "FROM_DAYS",
            exactly(1),
            "A DATE from days since the epoch.",
            |t| if matches!(t[0], SqlType::Int | SqlType::Bigint) { Ok(SqlType::Date) } else { Err("expected INTEGER".into()) },
            |a, _| Some(ScalarValue::Date32(Some(i32::try_from(int(&a[0])?).ok()?))),
        ),
        f(
            "TIMESTAMPADD",
            exactly(3),
            "TIMESTAMPADD(unit, n, timestamp).",
            |t| interval_args(t, SqlType::Timestamp),
            |a, _| timestamp(ts_millis(&a[2])?.checked_add(interval(a)?)?),
        ),
        f(
            "TIMESTAMPSUB",
            exactly(3),
            "TIMESTAMPSUB(unit, n, timestamp).",
            |t| interval_args(t, SqlType::Timestamp),
            |a, _| timestamp(ts_millis(&a[2])?.checked_sub(interval(a)?)?),
        ),
        f("DATEADD", exactly(3), "DATEADD(unit, n, date); units of a day or more.", |t| interval_args(t, SqlType::Date), |a, _| date_shift(a, 1)),
        f("DATESUB", exactly(3), "DATESUB(unit, n, date); units of a day or more.", |t| interval_args(t, SqlType::Date), |a, _| date_shift(a, -1)),
        f("TIMEADD", exactly(3), "TIMEADD(unit, n, time); wraps around midnight.", |t| interval_args(t, SqlType::Time), |a, _| time_shift(a, 1)),
        f("TIMESUB", exactly(3), "TIMESUB(unit, n, time); wraps around midnight.", |t| interval_args(t, SqlType::Time), |a, _| time_shift(a, -1)),
    ]
}

fn date_shift(a: &[ScalarValue], sign: i64) -> Option<ScalarValue> {
    let days = date_days(&a[2])?;
    let shift = interval(a)? / DAY_MS;
    Some(ScalarValue::Date32(Some(i32::try_from(days + sign * shift).ok()?)))
}

fn time_shift(a: &[ScalarValue], sign: i64) -> Option<ScalarValue> {
    let t = time_millis(&a[2])?;
    let ms = (t + sign * interval(a)?).rem_euclid(DAY_MS);
    Some(ScalarValue::Time32Millisecond(Some(ms as i32)))
}
