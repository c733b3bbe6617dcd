//! Parsing event times from strings with ksqlDB's (Java `DateTimeFormatter`) patterns.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// Converts a Java date-time pattern (`yyyy-MM-dd'T'HH:mm:ss.SSSX`) to chrono's syntax.
pub fn java_to_chrono(pattern: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // Quoted literal.
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '%' {
                    out.push_str("%%");
                } else {
                    out.push(chars[i]);
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        let piece = match (c, n) {
            ('y', 2) => "%y".to_string(),
            ('y', _) | ('u', _) => "%Y".to_string(),
            ('M', 1) | ('M', 2) => "%m".to_string(),
            ('M', 3) => "%b".to_string(),
            ('M', _) => "%B".to_string(),
            ('d', _) => "%d".to_string(),
            ('H', _) => "%H".to_string(),
            ('h', _) => "%I".to_string(),
            ('m', _) => "%M".to_string(),
            ('s', _) => "%S".to_string(),
            ('S', k) => format!("%{}f", k.min(9)),
            ('a', _) => "%p".to_string(),
            ('X', _) | ('x', _) | ('Z', _) => "%z".to_string(),
            ('z', k) if k < 4 => "%Z".to_string(),
            ('E', k) if k < 4 => "%a".to_string(),
            ('E', _) => "%A".to_string(),
            ('D', _) => "%j".to_string(),
            ('%', _) => "%%".repeat(n),
            (other, k) => other.to_string().repeat(k),
        };
        out.push_str(&piece);
        i += n;
    }
    // chrono's %3f wants the dot in the pattern; Java writes `.SSS` -> `.%3f` already.
    out
}

/// Epoch milliseconds of `text` under a chrono pattern; a pattern without a zone is UTC,
/// one without a time is midnight.
pub fn parse_millis(text: &str, chrono_pattern: &str) -> Option<i64> {
    // Java's `X` accepts `Z` for UTC; chrono's `%z` wants digits.
    if chrono_pattern.ends_with("%z") && text.ends_with('Z') {
        return parse_millis(&format!("{}+0000", &text[..text.len() - 1]), chrono_pattern);
    }
    if let Ok(dt) = DateTime::parse_from_str(text, chrono_pattern) {
        return Some(dt.timestamp_millis());
    }
    if let Ok(ndt) = NaiveDateTime::parse_from_str(text, chrono_pattern) {
        return Some(Utc.from_utc_datetime(&ndt).timestamp_millis());
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, chrono_pattern) {
        return Some(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0)?).timestamp_millis());
    }
    None
}

/// Parses ISO-8601 timestamps as ksqlDB accepts them in pull-query bounds
/// (`2026-11-22T00:00:00`, with optional millis and zone).
pub fn parse_iso_millis(text: &str) -> Option<i64> {
    for p in [
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%:z",
        "%Y-%m-%dT%H:%M:%S%.fZ",
        "%Y-%m-%dT%H:%M:%SZ",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d",
    ] {
        if let Some(ms) = parse_millis(text, p) {
            return Some(ms);
        }
    }
    None
}

/// ksqlDB's reading of a (possibly partial) timestamp string compared with ROWTIME or a
/// window bound: `yyyy-MM-dd'T'HH:mm:ss.SSS` where any tail may be left out (`'2018'` is
/// the start of 2018) and an optional zone (`Z`, `+HHmm`, `+HH:mm`) follows the time; UTC
/// otherwise. Hour 24 is midnight of the next day.
pub fn parse_partial_timestamp(text: &str) -> Option<i64> {
    const REST: &str = "0000-01-01T00:00:00.000";
    let text = text.trim();
    let (body, offset_ms) = match text.find('T') {
        Some(t) => match text[t..].find(['Z', '+', '-']).map(|i| t + i) {
            Some(z) => (&text[..z], zone_offset_ms(&text[z..])?),
            None => (text, 0),
        },
        None => (text, 0),
    };
    if body.len() < 4 || body.len() > REST.len() || !body.is_char_boundary(body.len()) {
        return None;
    }
    let mut full = format!("{body}{}", &REST[body.len()..]);
    let midnight_next = full.get(11..13) == Some("24");
    if midnight_next {
        full.replace_range(11..13, "00");
    }
    let t = chrono::NaiveDateTime::parse_from_str(&full, "%Y-%m-%dT%H:%M:%S%.3f").ok()?;
    let ms = t.and_utc().timestamp_millis() + if midnight_next { 86_400_000 } else { 0 };
    Some(ms - offset_ms)
}

fn zone_offset_ms(zone: &str) -> Option<i64> {
    if zone == "Z" {
        return Some(0);
    }
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (h, m): (i64, i64) = (digits[..2].parse().ok()?, digits[2..].parse().ok()?);
    Some(sign * (h * 3_600_000 + m * 60_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_timestamps_complete_as_ksqldb_does() {
        assert_eq!(parse_partial_timestamp("2018"), Some(1_514_764_800_000));
        assert_eq!(parse_partial_timestamp("2018-01-01T00:00:00.001"), Some(1_514_764_800_001));
        assert_eq!(parse_partial_timestamp("2019-01-01T00:00:00+0445"), Some(1_546_300_800_000 - 17_100_000));
        assert_eq!(parse_partial_timestamp("2020-02-24T24"), parse_partial_timestamp("2020-02-25"));
        assert_eq!(parse_partial_timestamp("nope"), None);
    }

    #[test]
    fn java_patterns_parse() {
        let p = java_to_chrono("yyyy-MM-dd'T'HH:mm:ss.SSS");
        assert_eq!(p, "%Y-%m-%dT%H:%M:%S.%3f");
        assert_eq!(parse_millis("1970-01-01T00:00:01.500", &p), Some(1500));
        let p = java_to_chrono("yyyy-MM-dd HH:mm:ssX");
        assert_eq!(parse_millis("1970-01-01 01:00:00+0100", &p), Some(0));
        assert_eq!(parse_iso_millis("2026-11-22T00:00:00"), Some(1_795_305_600_000));
        assert_eq!(parse_iso_millis("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_iso_millis("nope"), None);
    }
}
