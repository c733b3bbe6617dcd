//! The DELIMITED format: one CSV-style line per record (fields separated by a delimiter,
//! optionally double-quoted with `""` for a quote; an empty field is null).

use arrow::array::{Array, ArrayRef, StringArray, StringBuilder};
use arrow::datatypes::{DataType, Fields};
use arrow::util::display::{ArrayFormatter, FormatOptions};

use super::{DecodedRows, EncodedRows, FormatError, RowDecoder, RowEncoder, cast_text_column, drop_bad_rows};

/// Splits one line into fields; `None` for an empty unquoted field.
pub fn split_line(line: &str, delimiter: char) -> Result<Vec<Option<String>>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        let mut quoted = false;
        if chars.peek() == Some(&'"') {
            quoted = true;
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("unterminated quoted field".into()),
                }
            }
            match chars.peek() {
                None => {}
                Some(&c) if c == delimiter => {}
                Some(_) => return Err("unexpected character after a quoted field".into()),
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == delimiter {
                    break;
                }
                field.push(c);
                chars.next();
            }
        }
        fields.push(if field.is_empty() && !quoted { None } else { Some(field) });
        match chars.next() {
            Some(_) => continue,
            None => return Ok(fields),
        }
    }
}

pub struct DelimitedDecoder {
    fields: Fields,
    delimiter: char,
}

impl DelimitedDecoder {
    pub fn new(fields: Fields, delimiter: char) -> Self {
        DelimitedDecoder { fields, delimiter }
    }
}

impl RowDecoder for DelimitedDecoder {
    fn decode(&mut self, inputs: &[Option<&[u8]>]) -> DecodedRows {
        let n = self.fields.len();
        let mut out = DecodedRows::default();
        let mut builders: Vec<StringBuilder> = (0..n).map(|_| StringBuilder::new()).collect();
        for (i, input) in inputs.iter().enumerate() {
            let Some(bytes) = input else {
                for b in builders.iter_mut() {
                    b.append_null();
                }
                out.kept.push(i as u32);
                continue;
            };
            let parsed = std::str::from_utf8(bytes).map_err(|_| "value is not UTF-8 text".to_string()).and_then(|line| split_line(line, self.delimiter));
            match parsed {
                // A source with key columns only: its values are empty lines.
                Ok(_) if n == 0 && bytes.is_empty() => out.kept.push(i as u32),
                Ok(parts) if parts.len() == n => {
                    for (b, p) in builders.iter_mut().zip(parts) {
                        b.append_option(p);
                    }
                    out.kept.push(i as u32);
                }
                Ok(parts) => out.errors.push((i as u32, format!("unexpected field count: expected {n} fields, found {}", parts.len()))),
                Err(e) => out.errors.push((i as u32, e)),
            }
        }
        let texts: Vec<StringArray> = builders.into_iter().map(|mut b| b.finish()).collect();
        let mut bad = std::collections::BTreeMap::new();
        let mut columns = Vec::with_capacity(n);
        for (text, field) in texts.iter().zip(self.fields.iter()) {
            let (col, errs) = cast_text_column(text, field.data_type());
            for (row, e) in errs {
                bad.entry(row).or_insert(format!("column {}: {e}", field.name()));
            }
            columns.push(col);
        }
        drop_bad_rows(&mut columns, &mut out, bad);
        out.columns = columns;
        out
    }
}

pub struct DelimitedEncoder {
    delimiter: char,
}

impl DelimitedEncoder {
    pub fn new(delimiter: char) -> Self {
        DelimitedEncoder { delimiter }
    }
}

/// Writes one field, quoted where ksqlDB's CSV printer (Commons CSV's minimal quoting)
/// quotes it: when it holds the delimiter, a quote or a line break; when it starts with a
/// character up to `#` or ends with one up to a space; and, as the record's first field,
/// when it is empty or does not start with an ASCII letter or digit.
pub fn write_field(out: &mut Vec<u8>, s: &str, delimiter: char, first_in_record: bool) {
    let quote = match (s.chars().next(), s.chars().last()) {
        (None, _) => first_in_record,
        (Some(c), Some(last)) => {
            (first_in_record && !c.is_ascii_alphanumeric())
                || c <= '#'
                || s.chars().any(|c| c == delimiter || c == '"' || c == '\n' || c == '\r')
                || last <= ' '
        }
        (Some(_), None) => false,
    };
    if quote {
        out.push(b'"');
        out.extend_from_slice(s.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

impl RowEncoder for DelimitedEncoder {
    fn encode(&self, columns: &[ArrayRef], rows: usize) -> Result<EncodedRows, FormatError> {
        let opts = FormatOptions::default();
        let texts: Vec<ArrayRef> = columns.iter().map(|c| text_for_delimited(c)).collect::<Result<_, _>>()?;
        let formatters = texts
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| FormatError::Encode(std::sync::Arc::new(e)))?;
        let mut out = EncodedRows::with_capacity(rows);
        let mut d = [0u8; 4];
        let delim = self.delimiter.encode_utf8(&mut d).as_bytes().to_vec();
        for row in 0..rows {
            // A single null column is a null record (as ksqlDB writes a null key).
            if texts.len() == 1 && texts[0].is_null(row) {
                out.push_null();
                continue;
            }
            let buf = out.buf();
            for (i, (c, f)) in texts.iter().zip(&formatters).enumerate() {
                if i > 0 {
                    buf.extend_from_slice(&delim);
                }
                if c.is_valid(row) {
                    write_field(buf, &f.value(row).to_string(), self.delimiter, i == 0);
                }
            }
            out.end_row();
        }
        Ok(out)
    }
}

/// DELIMITED writes temporal types as numbers like ksqlDB (epoch millis, days), and
/// doubles as Java's `Double.toString` does.
fn text_for_delimited(c: &ArrayRef) -> Result<ArrayRef, FormatError> {
    let target = match c.data_type() {
        DataType::Float64 => {
            let doubles = arrow::array::AsArray::as_primitive::<arrow::datatypes::Float64Type>(c.as_ref());
            let texts: arrow::array::StringArray = doubles.iter().map(|v| v.map(super::java_number::java_double)).collect();
            return Ok(std::sync::Arc::new(texts));
        }
        DataType::Timestamp(_, _) => DataType::Int64,
        DataType::Date32 => DataType::Int32,
        DataType::Time32(_) => DataType::Int32,
        _ => return Ok(c.clone()),
    };
    arrow::compute::cast(c, &target).map_err(|e| FormatError::Encode(std::sync::Arc::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;
    use arrow::datatypes::{Field, Int64Type};

    #[test]
    fn fields_are_quoted_as_commons_csv_minimal_quoting() {
        let field = |s: &str, first: bool| {
            let mut out = Vec::new();
            write_field(&mut out, s, ',', first);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(field("-10", true), "\"-10\"");
        assert_eq!(field("-10", false), "-10");
        assert_eq!(field("abc", true), "abc");
        assert_eq!(field(" x", false), "\" x\"");
        assert_eq!(field("x\t", false), "\"x\t\"");
        assert_eq!(field("a,b", false), "\"a,b\"");
        assert_eq!(field("say \"hi\"", false), "\"say \"\"hi\"\"\"");
        assert_eq!(field("", true), "\"\"");
        assert_eq!(field("", false), "");
    }

    #[test]
    fn quoted_fields_and_empty_nulls() {
        assert_eq!(split_line(r#"a,"b,c",,"say ""hi""""#, ',').unwrap(), vec![Some("a".into()), Some("b,c".into()), None, Some("say \"hi\"".into())]);
    }

    #[test]
    fn decode_reports_wrong_field_count_and_bad_numbers() {
        let fields: Fields = vec![Field::new("ID", DataType::Int64, true), Field::new("NAME", DataType::Utf8, true)].into();
        let mut d = DelimitedDecoder::new(fields.clone(), ',');
        let r = d.decode(&[Some(b"1,a"), Some(b"2"), Some(b"x,b"), Some(b"4,")]);
        assert_eq!(r.kept, vec![0, 3]);
        assert_eq!(r.errors.len(), 2);
        assert_eq!(r.columns[0].as_primitive::<Int64Type>().values().to_vec(), vec![1, 4]);
        let rows = DelimitedEncoder::new(',').encode(&r.columns, 2).unwrap();
        assert_eq!(rows.get(0), Some(&b"1,a"[..]));
        assert_eq!(rows.get(1), Some(&b"4,"[..]));
    }
}
