//! Numbers written as Java writes them (`Double.toString`), where ksqlDB's output is
//! Java's text: DELIMITED values and CASTs to STRING.

/// `Double.toString`: plain notation for magnitudes in [10^-3, 10^7) with at least one
/// fraction digit (`100.0`), else `d.dddE±n`; the fewest digits that read back as the same
/// double, but never fewer than two (`1.0E7`, and `4.9E-324` for the smallest double).
pub fn java_double(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    let magnitude = v.abs();
    if magnitude == 0.0 || (1e-3..1e7).contains(&magnitude) {
        let plain = format!("{v}");
        return if plain.contains('.') { plain } else { format!("{plain}.0") };
    }
    let shortest = format!("{v:e}");
    let text = if shortest.split('e').next().is_some_and(|m| m.contains('.')) { shortest } else { format!("{v:.1e}") };
    text.replace('e', "E")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_read_as_javas_double_to_string() {
        assert_eq!(java_double(100.0), "100.0");
        assert_eq!(java_double(-0.0), "-0.0");
        assert_eq!(java_double(0.001), "0.001");
        assert_eq!(java_double(1234567.5), "1234567.5");
        assert_eq!(java_double(1e7), "1.0E7");
        assert_eq!(java_double(1.0e10), "1.0E10");
        assert_eq!(java_double(0.5), "0.5");
        assert_eq!(java_double(1.5e-5), "1.5E-5");
        assert_eq!(java_double(f64::MAX), "1.7976931348623157E308");
        assert_eq!(java_double(f64::MIN_POSITIVE), "2.2250738585072014E-308");
        assert_eq!(java_double(-5e-324), "-4.9E-324");
        assert_eq!(java_double(f64::NAN), "NaN");
        assert_eq!(java_double(f64::NEG_INFINITY), "-Infinity");
    }
}
