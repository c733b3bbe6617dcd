//! Reading date-times as ksqlDB does: Java `DateTimeFormatter` patterns
//! (`yyyy-MM-dd'T'HH:mm:ss.SSSX`), parsed case-insensitively, with fields the pattern
//! leaves out defaulting to 1970-01-01T00:00:00, and Java's time zone IDs and names.
//!
//! A pattern compiles once into tokens; parsing walks the text token by token with Java's
//! widths (`MM` is two digits, `M` one or two, `S...` exactly as many fraction digits as
//! letters; a variable-width number leaves the digits of the fixed-width numbers right
//! after it to them, so `yyyyMMdd` reads `20240131`).

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A time zone: a region with its rules, or a fixed offset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    Region(Tz),
    Fixed(chrono::FixedOffset),
}

impl Zone {
    /// Epoch millis of a local date-time in this zone: the earlier one when a clock change
    /// makes it ambiguous, shifted by the gap when it falls in one (as Java does).
    pub fn local_millis(self, local: &NaiveDateTime) -> Option<i64> {
        let at = |l: &NaiveDateTime| match self {
            Zone::Region(tz) => tz.from_local_datetime(l).earliest().map(|d| d.timestamp_millis()),
            Zone::Fixed(o) => o.from_local_datetime(l).earliest().map(|d| d.timestamp_millis()),
        };
        at(local).or_else(|| at(&(*local + chrono::Duration::hours(1))))
    }

    pub fn format(self, utc: DateTime<Utc>, pattern: &str) -> String {
        match self {
            Zone::Region(tz) => utc.with_timezone(&tz).format(pattern).to_string(),
            Zone::Fixed(o) => utc.with_timezone(&o).format(pattern).to_string(),
        }
    }

    /// The zone's offset from UTC at an instant, in millis.
    pub fn offset_millis(self, utc: DateTime<Utc>) -> i64 {
        use chrono::Offset;
        let seconds = match self {
            Zone::Region(tz) => utc.with_timezone(&tz).offset().fix().local_minus_utc(),
            Zone::Fixed(o) => o.local_minus_utc(),
        };
        seconds as i64 * 1000
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

/// Zone names as a `z` pattern letter reads them (English names), to the region whose
/// rules apply: `PST` in summer is seven hours behind UTC, as in Java.
const ZONE_NAMES: &[(&str, &str)] = &[
    ("Pacific Standard Time", "America/Los_Angeles"),
    ("Pacific Daylight Time", "America/Los_Angeles"),
    ("Mountain Standard Time", "America/Denver"),
    ("Mountain Daylight Time", "America/Denver"),
    ("Central Standard Time", "America/Chicago"),
    ("Central Daylight Time", "America/Chicago"),
    ("Eastern Standard Time", "America/New_York"),
    ("Eastern Daylight Time", "America/New_York"),
    ("Greenwich Mean Time", "UTC"),
    ("Coordinated Universal Time", "UTC"),
    ("PST", "America/Los_Angeles"),
    ("PDT", "America/Los_Angeles"),
    ("MST", "America/Denver"),
    ("MDT", "America/Denver"),
    ("CST", "America/Chicago"),
    ("CDT", "America/Chicago"),
    ("EST", "America/New_York"),
    ("EDT", "America/New_York"),
    ("AKST", "America/Anchorage"),
    ("AKDT", "America/Anchorage"),
    ("HST", "Pacific/Honolulu"),
    ("BST", "Europe/London"),
    ("CEST", "Europe/Paris"),
    ("EEST", "Europe/Athens"),
    ("WEST", "Europe/Lisbon"),
];

const MONTHS: [&str; 12] = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const DAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Field {
    Year,
    Month,
    Day,
    DayOfYear,
    /// `H`: 0-23.
    Hour,
    /// `h`: 1-12 with AM/PM.
    ClockHour,
    /// `k`: 1-24.
    ClockHourOfDay,
    /// `K`: 0-11 with AM/PM.
    HourOfAmPm,
    Minute,
    Second,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(String),
    Number {
        field: Field,
        min: usize,
        max: usize,
    },
    /// `yy`: two digits, 2000-2099.
    TwoDigitYear,
    /// Exactly this many fraction-of-second digits.
    Fraction(usize),
    MonthName,
    DayName,
    AmPm,
    /// `X`, `x`, `Z`, `O`: an offset (`Z`, `+HH`, `+HHmm`, `+HH:mm`, optionally after GMT).
    Offset,
    /// `z`: a zone name (`PST`, `Pacific Standard Time`) or ID.
    ZoneName,
    /// `VV`: a zone ID (`America/Los_Angeles`).
    ZoneId,
    /// `G`: AD or BC.
    Era,
}

impl Token {
    /// Digits the token always takes when it comes right after a variable-width number.
    fn fixed_digits(&self) -> Option<usize> {
        match self {
            Token::Number { min, max, .. } if min == max => Some(*min),
            Token::TwoDigitYear => Some(2),
            Token::Fraction(n) => Some(*n),
            _ => None,
        }
    }
}

/// A compiled Java date-time pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct JavaPattern {
    tokens: Vec<Token>,
}

/// What a text gave for each field.
#[derive(Debug, Default)]
struct Parsed {
    year: Option<i64>,
    month: Option<u32>,
    day: Option<u32>,
    day_of_year: Option<u32>,
    hour: Option<u32>,
    clock_hour: Option<u32>,
    pm: Option<bool>,
    minute: Option<u32>,
    second: Option<u32>,
    nanos: Option<u32>,
    zone: Option<Zone>,
    bc: bool,
}

impl JavaPattern {
    /// Compiles a pattern. Letters Java gives no meaning here are matched as themselves.
    pub fn compile(pattern: &str) -> JavaPattern {
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens: Vec<Token> = Vec::new();
        let mut literal = String::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                // `''` is a quote; `'...'` is literal text (with `''` inside for a quote).
                if chars.get(i + 1) == Some(&'\'') {
                    literal.push('\'');
                    i += 2;
                    continue;
                }
                i += 1;
                while i < chars.len() {
                    if chars[i] == '\'' {
                        if chars.get(i + 1) == Some(&'\'') {
                            literal.push('\'');
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    literal.push(chars[i]);
                    i += 1;
                }
                i += 1;
                continue;
            }
            if !c.is_ascii_alphabetic() {
                literal.push(c);
                i += 1;
                continue;
            }
            let mut n = 1;
            while chars.get(i + n) == Some(&c) {
                n += 1;
            }
            i += n;
            let number = |field, n: usize, widest| match n {
                1 => Token::Number { field, min: 1, max: widest },
                _ => Token::Number { field, min: n, max: n },
            };
            let token = match c {
                'y' | 'u' if n == 2 => Token::TwoDigitYear,
                'y' | 'u' => Token::Number { field: Field::Year, min: n, max: 9.max(n) },
                'M' | 'L' if n >= 3 => Token::MonthName,
                'M' | 'L' => number(Field::Month, n, 2),
                'd' => number(Field::Day, n, 2),
                'D' => Token::Number { field: Field::DayOfYear, min: n, max: 3 },
                'H' => number(Field::Hour, n, 2),
                'h' => number(Field::ClockHour, n, 2),
                'k' => number(Field::ClockHourOfDay, n, 2),
                'K' => number(Field::HourOfAmPm, n, 2),
                'm' => number(Field::Minute, n, 2),
                's' => number(Field::Second, n, 2),
                'S' => Token::Fraction(n.min(9)),
                'a' => Token::AmPm,
                'E' => Token::DayName,
                'X' | 'x' | 'Z' | 'O' => Token::Offset,
                'z' => Token::ZoneName,
                'V' => Token::ZoneId,
                'G' => Token::Era,
                other => {
                    literal.extend(std::iter::repeat_n(other, n));
                    continue;
                }
            };
            if !literal.is_empty() {
                tokens.push(Token::Literal(std::mem::take(&mut literal)));
            }
            tokens.push(token);
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        JavaPattern { tokens }
    }

    /// The fields `text` gives, all of it (or a head of it, with `allow_trailing`).
    fn parse_fields(&self, text: &str, allow_trailing: bool) -> Option<Parsed> {
        let mut p = Parsed::default();
        let mut rest = text;
        for (i, token) in self.tokens.iter().enumerate() {
            match token {
                Token::Literal(l) => rest = strip_prefix_ignore_case(rest, l)?,
                Token::Number { field, min, max } => {
                    let available = rest.bytes().take_while(u8::is_ascii_digit).count();
                    // Digits the fixed-width numbers right after this one need.
                    let reserved: usize = if min == max { 0 } else { self.tokens[i + 1..].iter().map_while(Token::fixed_digits).sum() };
                    let take = available.saturating_sub(reserved).min(*max);
                    if take < *min {
                        return None;
                    }
                    let v: i64 = rest[..take].parse().ok()?;
                    rest = &rest[take..];
                    let small = u32::try_from(v).ok();
                    match field {
                        Field::Year => p.year = Some(v),
                        Field::Month => p.month = small,
                        Field::Day => p.day = small,
                        Field::DayOfYear => p.day_of_year = small,
                        Field::Hour => p.hour = small,
                        Field::ClockHour => p.clock_hour = small.filter(|h| (1..=12).contains(h)).map(|h| h % 12),
                        Field::ClockHourOfDay => p.hour = small.filter(|h| (1..=24).contains(h)).map(|h| h % 24),
                        Field::HourOfAmPm => p.clock_hour = small.filter(|h| *h < 12),
                        Field::Minute => p.minute = small,
                        Field::Second => p.second = small,
                    }
                }
                Token::TwoDigitYear => {
                    let digits = rest.get(..2).filter(|d| d.bytes().all(|b| b.is_ascii_digit()))?;
                    p.year = Some(2000 + digits.parse::<i64>().ok()?);
                    rest = &rest[2..];
                }
                Token::Fraction(n) => {
                    let digits = rest.get(..*n).filter(|d| d.bytes().all(|b| b.is_ascii_digit()))?;
                    p.nanos = Some(digits.parse::<u32>().ok()? * 10u32.pow(9 - *n as u32));
                    rest = &rest[*n..];
                }
                Token::MonthName => {
                    let (m, after) = match_name(rest, &MONTHS)?;
                    p.month = Some(m as u32 + 1);
                    rest = after;
                }
                Token::DayName => rest = match_name(rest, &DAYS)?.1,
                Token::AmPm => {
                    let (which, after) = match_word(rest, &["AM", "PM"])?;
                    p.pm = Some(which == 1);
                    rest = after;
                }
                Token::Era => {
                    let (which, after) = match_word(rest, &["AD", "BC"])?;
                    p.bc = which == 1;
                    rest = after;
                }
                Token::Offset => {
                    let (zone, after) = offset(rest)?;
                    p.zone = Some(zone);
                    rest = after;
                }
                Token::ZoneName => {
                    let (zone, after) = zone_name(rest)?;
                    p.zone = Some(zone);
                    rest = after;
                }
                Token::ZoneId => {
                    let len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || "/_+-:".contains(c))).unwrap_or(rest.len());
                    p.zone = Some(java_zone(&rest[..len])?);
                    rest = &rest[len..];
                }
            }
        }
        (allow_trailing || rest.is_empty()).then_some(p)
    }

    /// Epoch milliseconds of `text`; a text without a zone is in `zone` (UTC when None).
    pub fn parse_millis(&self, text: &str, zone: Option<Zone>) -> Option<i64> {
        let p = self.parse_fields(text, false)?;
        let local = NaiveDateTime::new(p.date()?, p.time()?);
        p.zone.or(zone).unwrap_or(Zone::Fixed(chrono::FixedOffset::east_opt(0)?)).local_millis(&local)
    }

    /// Days since the epoch of the date in `text` (text after the pattern is ignored, as
    /// ksqlDB's PARSE_DATE does).
    pub fn parse_days(&self, text: &str) -> Option<i64> {
        let date = self.parse_fields(text, true)?.date()?;
        Some(date.signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1)?).num_days())
    }

    /// Milliseconds since midnight of the time of day in `text`.
    pub fn parse_time_of_day(&self, text: &str) -> Option<i64> {
        use chrono::Timelike;
        let t = self.parse_fields(text, false)?.time()?;
        Some(t.num_seconds_from_midnight() as i64 * 1000 + (t.nanosecond() / 1_000_000) as i64)
    }
}

impl Parsed {
    fn date(&self) -> Option<NaiveDate> {
        let year = self.year.unwrap_or(1970);
        let year = i32::try_from(if self.bc { 1 - year } else { year }).ok()?;
        match (self.day_of_year, self.month, self.day) {
            (Some(doy), None, None) => NaiveDate::from_yo_opt(year, doy),
            _ => NaiveDate::from_ymd_opt(year, self.month.unwrap_or(1), self.day.unwrap_or(1)),
        }
    }

    fn time(&self) -> Option<NaiveTime> {
        let hour = match (self.hour, self.clock_hour) {
            (Some(h), _) => h,
            (None, Some(h)) => h + if self.pm == Some(true) { 12 } else { 0 },
            (None, None) => {
                if self.pm == Some(true) {
                    12
                } else {
                    0
                }
            }
        };
        NaiveTime::from_hms_nano_opt(hour, self.minute.unwrap_or(0), self.second.unwrap_or(0), self.nanos.unwrap_or(0))
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

/// A full or three-letter name among `names`, case-insensitively: (index, rest).
fn match_name<'a>(text: &'a str, names: &[&str]) -> Option<(usize, &'a str)> {
    names
        .iter()
        .enumerate()
        .find_map(|(i, n)| strip_prefix_ignore_case(text, n).map(|r| (i, r)))
        .or_else(|| names.iter().enumerate().find_map(|(i, n)| strip_prefix_ignore_case(text, &n[..3]).map(|r| (i, r))))
}

fn match_word<'a>(text: &'a str, words: &[&str]) -> Option<(usize, &'a str)> {
    words.iter().enumerate().find_map(|(i, w)| strip_prefix_ignore_case(text, w).map(|r| (i, r)))
}

/// An offset: `Z`, or `[GMT|UTC]` then `+HH`, `+HHmm`, `+HH:mm` (and seconds).
fn offset(text: &str) -> Option<(Zone, &str)> {
    let utc = Zone::Fixed(chrono::FixedOffset::east_opt(0)?);
    let body = strip_prefix_ignore_case(text, "GMT").or_else(|| strip_prefix_ignore_case(text, "UTC")).unwrap_or(text);
    let sign = match body.as_bytes().first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ if body.len() != text.len() => return Some((utc, body)),
        _ => return strip_prefix_ignore_case(text, "Z").map(|r| (utc, r)),
    };
    let digits = |s: &str, at: usize| -> Option<i32> { s.get(at..at + 2).filter(|d| d.bytes().all(|b| b.is_ascii_digit()))?.parse().ok() };
    let s = &body[1..];
    let hours = digits(s, 0).or_else(|| s.get(..1).filter(|d| d.as_bytes()[0].is_ascii_digit())?.parse().ok())?;
    let mut at = if digits(s, 0).is_some() { 2 } else { 1 };
    let mut seconds = hours * 3600;
    for unit in [60, 1] {
        let colon = usize::from(s[at..].starts_with(':'));
        match digits(s, at + colon) {
            Some(v) if v < 60 => {
                seconds += v * unit;
                at += colon + 2;
            }
            _ => break,
        }
    }
    if hours > 18 {
        return None;
    }
    Some((Zone::Fixed(chrono::FixedOffset::east_opt(sign * seconds)?), &s[at..]))
}

/// A zone name (`PST`, `Pacific Standard Time`), an offset, or a zone ID.
fn zone_name(text: &str) -> Option<(Zone, &str)> {
    for (name, region) in ZONE_NAMES {
        if let Some(rest) = strip_prefix_ignore_case(text, name)
            && !rest.starts_with(|c: char| c.is_ascii_alphabetic())
        {
            return Some((Zone::Region(Tz::from_str(region).ok()?), rest));
        }
    }
    if text.starts_with(['+', '-']) || strip_prefix_ignore_case(text, "GMT").or_else(|| strip_prefix_ignore_case(text, "UTC")).is_some() {
        return offset(text);
    }
    let len = text.find(|c: char| !(c.is_ascii_alphanumeric() || "/_".contains(c))).unwrap_or(text.len());
    Some((java_zone(&text[..len])?, &text[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(text: &str, pattern: &str) -> Option<i64> {
        JavaPattern::compile(pattern).parse_millis(text, None)
    }

    #[test]
    fn iso_patterns_with_offsets_parse_case_insensitively() {
        let p = "yyyy-MM-dd'T'HH:mm:ssX";
        assert_eq!(millis("2020-05-11T21:58:33Z", p), Some(1_589_234_313_000));
        assert_eq!(millis("2020-05-11t21:58:33z", p), Some(1_589_234_313_000));
        assert_eq!(millis("2020-05-11T21:58:33+0100", p), Some(1_589_234_313_000 - 3_600_000));
        assert_eq!(millis("2020-05-11T21:58:33-01:30", p), Some(1_589_234_313_000 + 5_400_000));
        assert_eq!(millis("2019-08-27T13:31:09.2+0000", "yyyy-MM-dd'T'HH:mm:ss.SX"), Some(1_566_912_669_200));
        assert_eq!(millis("2019-08-27T13:31:09.2", "yyyy-MM-dd'T'HH:mm:ss.SSS"), None, "S letters fix the digits");
    }

    #[test]
    fn zone_names_follow_their_regions_rules() {
        let p = "yyyy-MM-dd'T'HH:mm:ss zzz";
        // Summer: PST names Los Angeles, seven hours behind UTC then.
        assert_eq!(millis("2018-05-11T21:58:33 PST", p), Some(1_526_101_113_000));
        assert_eq!(millis("2018-01-11T21:58:33 PST", p), Some(1_515_736_713_000));
        assert_eq!(millis("2018-01-11T21:58:33 Europe/Paris", "yyyy-MM-dd'T'HH:mm:ss VV"), Some(1_515_704_313_000));
        assert_eq!(millis("2018-01-11T21:58:33 Nowhere", p), None);
    }

    #[test]
    fn missing_fields_default_and_names_match_in_any_case() {
        let days = |t: &str, p: &str| JavaPattern::compile(p).parse_days(t);
        assert_eq!(days("01-JAN-2022", "dd-MMM-yyyy"), Some(18_993));
        assert_eq!(days("JAN-2022", "MMM-yyyy"), Some(18_993));
        assert_eq!(days("2018-05-11Lit", "yyyy-MM-dd'Lit'"), Some(17_662));
        assert_eq!(days("11/05/2019", "dd/MM/yyyy"), Some(18_027));
        assert_eq!(days("20220101", "yyyyMMdd"), Some(18_993), "adjacent numbers share the digits");
        assert_eq!(days("2022-02-30", "yyyy-MM-dd"), None);
        assert_eq!(millis("12:30 PM", "hh:mm a"), Some(45_000_000));
        assert_eq!(millis("12:30 am", "hh:mm a"), Some(1_800_000));
        assert_eq!(millis("it''s 1970", "'it''''s' yyyy"), Some(0));
        assert_eq!(millis("it's 1970", "'it''s' yyyy"), Some(0));
    }

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
