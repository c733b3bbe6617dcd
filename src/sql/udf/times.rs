//! Date and time functions: PARSE_/FORMAT_ TIMESTAMP, DATE and TIME with Java patterns
//! (and the older STRINGTOTIMESTAMP, TIMESTAMPTOSTRING, STRINGTODATE, DATETOSTRING on
//! epoch numbers), UNIX_DATE, FROM_UNIXTIME, FROM_DAYS, and interval arithmetic
//! TIMESTAMPADD/SUB, DATEADD/SUB, TIMEADD/SUB (`TIMESTAMPADD(SECONDS, 5, ts)`), CONVERT_TZ.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use datafusion::common::ScalarValue;

use super::RowFunction;
use super::value::{int, text};
use crate::catalog::types::SqlType;
use crate::format::timestamps::{java_to_chrono, parse_millis};
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

/// A time zone as a function argument names it: a region with its rules, or a fixed offset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    Region(Tz),
    Fixed(chrono::FixedOffset),
}

impl Zone {
    /// Epoch millis of a local date-time in this zone (the earlier one when a clock change
    /// makes it ambiguous).
    fn local_millis(self, local: &chrono::NaiveDateTime) -> Option<i64> {
        match self {
            Zone::Region(tz) => Some(tz.from_local_datetime(local).earliest()?.timestamp_millis()),
            Zone::Fixed(o) => Some(o.from_local_datetime(local).earliest()?.timestamp_millis()),
        }
    }

    fn format(self, utc: DateTime<Utc>, pattern: &str) -> String {
        match self {
            Zone::Region(tz) => utc.with_timezone(&tz).format(pattern).to_string(),
            Zone::Fixed(o) => utc.with_timezone(&o).format(pattern).to_string(),
        }
    }

    /// The zone's offset from UTC at an instant, in millis.
    fn offset_millis(self, utc: DateTime<Utc>) -> i64 {
        use chrono::Offset;
        let seconds = match self {
            Zone::Region(tz) => utc.with_timezone(&tz).offset().fix().local_minus_utc(),
            Zone::Fixed(o) => o.local_minus_utc(),
        };
        seconds as i64 * 1000
    }
}

fn zone(a: &[ScalarValue], i: usize) -> Option<Option<Zone>> {
    match a.get(i) {
        None => Some(None),
        Some(z) => Some(Some(java_zone(text(z)?)?)),
    }
}

/// Java's three-letter zone IDs (`ZoneId.SHORT_IDS`, as `java.util.TimeZone` also takes
/// them) and the regions they stand for; EST, MST and HST are zones of their own.
const SHORT_IDS: &[(&str, &str)] = &[
    ("ACT", "Australia/Darwin"),
    ("AET", "Australia/Sydney"),
    ("AGT", "America/Argentina/Buenos_Aires"),
    ("ART", "Africa/Cairo"),
    ("AST", "America/Anchorage"),
    ("BET", "America/Sao_Paulo"),
    ("BST", "Asia/Dhaka"),
    ("CAT", "Africa/Harare"),
    ("CNT", "America/St_Johns"),
    ("CST", "America/Chicago"),
    ("CTT", "Asia/Shanghai"),
    ("EAT", "Africa/Addis_Ababa"),
    ("ECT", "Europe/Paris"),
    ("IET", "America/Indiana/Indianapolis"),
    ("IST", "Asia/Kolkata"),
    ("JST", "Asia/Tokyo"),
    ("MIT", "Pacific/Apia"),
    ("NET", "Asia/Yerevan"),
    ("NST", "Pacific/Auckland"),
    ("PLT", "Asia/Karachi"),
    ("PNT", "America/Phoenix"),
    ("PRT", "America/Puerto_Rico"),
    ("PST", "America/Los_Angeles"),
    ("SST", "Pacific/Guadalcanal"),
    ("VST", "Asia/Ho_Chi_Minh"),
];

/// A zone ID as Java reads one: a region (`Europe/London`), a three-letter ID (`PST`),
/// `Z` / `UTC` / `GMT`, or an offset (`+02`, `-08:00`, `+0530`, `UTC+1`, `GMT-08:00`).
/// `None` for an ID Java would refuse.
pub fn java_zone(id: &str) -> Option<Zone> {
    let id = id.trim();
    if let Ok(tz) = Tz::from_str(id) {
        return Some(Zone::Region(tz));
    }
    if let Some((_, region)) = SHORT_IDS.iter().find(|(short, _)| *short == id) {
        return Tz::from_str(region).ok().map(Zone::Region);
    }
    let offset = id.strip_prefix("UTC").or_else(|| id.strip_prefix("GMT")).or_else(|| id.strip_prefix("UT")).unwrap_or(id);
    if offset.is_empty() || offset == "Z" {
        return Some(Zone::Region(Tz::UTC));
    }
    let (sign, rest) = match offset.as_bytes().first()? {
        b'+' => (1, &offset[1..]),
        b'-' => (-1, &offset[1..]),
        _ => return None,
    };
    let (hours, minutes) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "0"),
    };
    let (hours, minutes): (i32, i32) = (hours.parse().ok()?, minutes.parse().ok()?);
    // Java's range: up to 18 hours either way.
    if !(0..60).contains(&minutes) || hours > 18 {
        return None;
    }
    chrono::FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60)).map(Zone::Fixed)
}

/// Epoch millis of a string under a Java pattern, in a zone when given.
fn parse_ts(a: &[ScalarValue]) -> Option<i64> {
    let pattern = java_to_chrono(text(&a[1])?);
    let t = text(&a[0])?;
    match zone(a, 2)? {
        None => parse_millis(t, &pattern),
        Some(tz) => {
            // The text is local time in `tz` unless the pattern carries an offset.
            if let Ok(dt) = DateTime::parse_from_str(t, &pattern) {
                return Some(dt.timestamp_millis());
            }
            let naive = parse_millis(t, &pattern)?;
            let local = DateTime::from_timestamp_millis(naive)?.naive_utc();
            tz.local_millis(&local)
        }
    }
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
    let pattern = java_to_chrono(text(&a[1])?);
    let input = text(&a[0])?;
    if let Some(ms) = parse_millis(input, &pattern) {
        return Some(ms.div_euclid(DAY_MS));
    }
    // As ksqlDB (Java's SimpleDateFormat): text after the date is ignored.
    let (date, _) = chrono::NaiveDate::parse_and_remainder(input, &pattern).ok()?;
    Some(date.signed_duration_since(chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?).num_days())
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
    let pattern = java_to_chrono(text(&a[1])?);
    let t = NaiveTime::parse_from_str(text(&a[0])?, &pattern).ok()?;
    let ms = t.num_seconds_from_midnight() as i64 * 1000 + (t.nanosecond() / 1_000_000) as i64;
    Some(ScalarValue::Time32Millisecond(Some(ms as i32)))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_ids_are_read_as_java_reads_them() {
        let region = |tz| Some(Zone::Region(tz));
        let fixed = |seconds| chrono::FixedOffset::east_opt(seconds).map(Zone::Fixed);
        assert_eq!(java_zone("Europe/London"), region(Tz::Europe__London));
        assert_eq!(java_zone("PST"), region(Tz::America__Los_Angeles));
        assert_eq!(java_zone("IST"), region(Tz::Asia__Kolkata));
        assert_eq!(java_zone("EST"), region(Tz::EST));
        assert_eq!(java_zone("UTC"), region(Tz::UTC));
        assert_eq!(java_zone("Z"), region(Tz::UTC));
        assert_eq!(java_zone("+02:00"), fixed(7200));
        assert_eq!(java_zone("GMT-08:00"), fixed(-8 * 3600));
        assert_eq!(java_zone("UTC+1"), fixed(3600));
        assert_eq!(java_zone("+0530"), fixed(5 * 3600 + 1800));
        // Out of range, or not an ID.
        assert_eq!(java_zone("+19"), None);
        assert_eq!(java_zone("+05:75"), None);
        assert_eq!(java_zone("PDT"), None);
        assert_eq!(java_zone("Mars/Olympus"), None);
    }
}
