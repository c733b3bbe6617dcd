//! A generated record: its stream's schema, its field values, and how they are written as
//! JSON or DELIMITED values and as KAFKA or JSON keys.

use std::fmt::Write;

/// One field's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Int(i64),
    Double(f64),
    Str(String),
}

/// A stream a preset writes: its name (the topic's suffix for several), fields, key field.
#[derive(Debug)]
pub struct Schema {
    pub name: &'static str,
    pub fields: &'static [&'static str],
    /// The field written as the record's key.
    pub key: usize,
}

/// A record being generated: which of the preset's streams, its values, its event time.
#[derive(Debug, Clone)]
pub struct Row {
    pub stream: usize,
    pub values: Vec<Val>,
    pub timestamp: i64,
}

impl Row {
    pub fn with_fields(n: usize) -> Row {
        Row { stream: 0, values: vec![Val::Int(0); n], timestamp: 0 }
    }

    /// Resizes for a stream of `n` fields (keeping string buffers where they are).
    pub fn reset(&mut self, stream: usize, n: usize) {
        self.stream = stream;
        self.values.resize(n, Val::Int(0));
    }

    pub fn int(&mut self, i: usize, v: i64) {
        self.values[i] = Val::Int(v);
    }

    pub fn double(&mut self, i: usize, v: f64) {
        self.values[i] = Val::Double(v);
    }

    /// The string buffer of field `i`, emptied (reused between records).
    pub fn text(&mut self, i: usize) -> &mut String {
        if !matches!(self.values[i], Val::Str(_)) {
            self.values[i] = Val::Str(String::new());
        }
        match &mut self.values[i] {
            Val::Str(s) => {
                s.clear();
                s
            }
            _ => unreachable!("just made a string"),
        }
    }
}

/// How values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ValueFormat {
    Json,
    Delimited,
}

/// How keys are written: KAFKA (strings as UTF-8, integers as 8 big-endian bytes, as
/// ksqlDB's KAFKA format reads BIGINT) or JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyFormat {
    Kafka,
    Json,
}

fn json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            c if (c as u32) < 0x20 => {
                let mut esc = String::new();
                let _ = write!(esc, "\\u{:04x}", c as u32);
                out.extend_from_slice(esc.as_bytes());
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

fn number(out: &mut Vec<u8>, v: &Val) {
    match v {
        Val::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
        // Always with a decimal point, so that JSON readers see a double.
        Val::Double(d) if d.is_finite() && d.fract() == 0.0 && d.abs() < 1e15 => {
            let _ = write!(Sink(out), "{d:.1}");
        }
        Val::Double(d) if d.is_finite() => {
            let _ = write!(Sink(out), "{d}");
        }
        Val::Double(_) => out.extend_from_slice(b"null"),
        Val::Str(_) => {}
    }
}

/// `write!` into a byte vector.
struct Sink<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Sink<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Writes `row`'s value in `format` (fields in schema order) into `out`.
pub fn encode_value(schema: &Schema, row: &Row, format: ValueFormat, out: &mut Vec<u8>) {
    match format {
        ValueFormat::Json => {
            out.push(b'{');
            for (i, (name, v)) in schema.fields.iter().zip(&row.values).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json_string(out, name);
                out.push(b':');
                match v {
                    Val::Str(s) => json_string(out, s),
                    other => number(out, other),
                }
            }
            out.push(b'}');
        }
        ValueFormat::Delimited => {
            for (i, v) in row.values.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                match v {
                    Val::Str(s) if s.contains([',', '"', '\n', '\r']) => {
                        out.push(b'"');
                        out.extend_from_slice(s.replace('"', "\"\"").as_bytes());
                        out.push(b'"');
                    }
                    Val::Str(s) => out.extend_from_slice(s.as_bytes()),
                    other => number(out, other),
                }
            }
        }
    }
}

/// Writes `row`'s key field in `format` into `out`.
pub fn encode_key(schema: &Schema, row: &Row, format: KeyFormat, out: &mut Vec<u8>) {
    let v = &row.values[schema.key];
    match (format, v) {
        (KeyFormat::Kafka, Val::Str(s)) => out.extend_from_slice(s.as_bytes()),
        (KeyFormat::Kafka, Val::Int(i)) => out.extend_from_slice(&i.to_be_bytes()),
        (KeyFormat::Kafka, Val::Double(d)) => out.extend_from_slice(&d.to_be_bytes()),
        (KeyFormat::Json, Val::Str(s)) => json_string(out, s),
        (KeyFormat::Json, other) => number(out, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: Schema = Schema { name: "t", fields: &["ID", "NAME", "SCORE"], key: 0 };

    fn row() -> Row {
        let mut r = Row::with_fields(3);
        r.int(0, 7);
        r.text(1).push_str("a \"b\", c");
        r.double(2, 2.0);
        r
    }

    #[test]
    fn json_values_escape_strings_and_keep_doubles_double() {
        let mut out = Vec::new();
        encode_value(&SCHEMA, &row(), ValueFormat::Json, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), r#"{"ID":7,"NAME":"a \"b\", c","SCORE":2.0}"#);
    }

    #[test]
    fn delimited_values_quote_what_needs_quoting() {
        let mut out = Vec::new();
        encode_value(&SCHEMA, &row(), ValueFormat::Delimited, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), r#"7,"a ""b"", c",2.0"#);
    }

    #[test]
    fn kafka_keys_write_integers_as_eight_big_endian_bytes() {
        let mut out = Vec::new();
        encode_key(&SCHEMA, &row(), KeyFormat::Kafka, &mut out);
        assert_eq!(out, 7i64.to_be_bytes());
    }
}
