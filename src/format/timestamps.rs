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
    for p in ["%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M:%S%:z", "%Y-%m-%dT%H:%M:%S%.fZ", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"] {
        if let Some(ms) = parse_millis(text, p) {
            return Some(ms);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

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
