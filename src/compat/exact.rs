//! JSON read without losing a number's text. `serde_json` turns `1.10` into the double 1.1,
//! but the judge compares decimals with their scale (as Java's `BigDecimal.equals`) and
//! long integers digit by digit, so expected and written values are read with this.

use serde_json::Value;

/// A JSON value whose numbers keep the text they were written with.
#[derive(Debug, Clone, PartialEq)]
pub enum Exact {
    Null,
    Bool(bool),
    /// The number as written (`-1.50e3`).
    Number(String),
    String(String),
    Array(Vec<Exact>),
    /// Fields in the order written.
    Object(Vec<(String, Exact)>),
}

impl Exact {
    /// The field `name` of an object, matched exactly.
    pub fn get(&self, name: &str) -> Option<&Exact> {
        match self {
            Exact::Object(fields) => fields.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Exact::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Exact::Number(n) => n.parse().ok(),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Exact::Null)
    }

    /// A `serde_json` value's numbers as `serde_json` prints them.
    pub fn from_value(v: &Value) -> Exact {
        match v {
            Value::Null => Exact::Null,
            Value::Bool(b) => Exact::Bool(*b),
            Value::Number(n) => Exact::Number(n.to_string()),
            Value::String(s) => Exact::String(s.clone()),
            Value::Array(a) => Exact::Array(a.iter().map(Exact::from_value).collect()),
            Value::Object(o) => Exact::Object(o.iter().map(|(k, v)| (k.clone(), Exact::from_value(v))).collect()),
        }
    }

    /// Reads one JSON document (whitespace around it allowed). Strings and structure are
    /// checked by `serde_json`; numbers are kept as written.
    pub fn parse(text: &str) -> Option<Exact> {
        let mut r = Reader { b: text.as_bytes(), i: 0, depth: 0 };
        let v = r.value()?;
        r.skip_ws();
        (r.i == r.b.len()).then_some(v)
    }
}

impl std::fmt::Display for Exact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exact::Null => f.write_str("null"),
            Exact::Bool(b) => write!(f, "{b}"),
            Exact::Number(n) => f.write_str(n),
            Exact::String(s) => write!(f, "{}", Value::from(s.as_str())),
            Exact::Array(a) => {
                f.write_str("[")?;
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{x}")?;
                }
                f.write_str("]")
            }
            Exact::Object(o) => {
                f.write_str("{")?;
                for (i, (k, v)) in o.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}:{v}", Value::from(k.as_str()))?;
                }
                f.write_str("}")
            }
        }
    }
}

/// Deeper documents are not read (the case files and records nest a few levels).
const MAX_DEPTH: usize = 512;

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
    depth: usize,
}

impl Reader<'_> {
    fn skip_ws(&mut self) {
        while self.b.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn eat(&mut self, word: &str) -> Option<()> {
        self.b[self.i..].starts_with(word.as_bytes()).then(|| self.i += word.len())
    }

    fn value(&mut self) -> Option<Exact> {
        self.skip_ws();
        match *self.b.get(self.i)? {
            b'n' => self.eat("null").map(|_| Exact::Null),
            b't' => self.eat("true").map(|_| Exact::Bool(true)),
            b'f' => self.eat("false").map(|_| Exact::Bool(false)),
            b'"' => self.string().map(Exact::String),
            b'[' | b'{' if self.depth >= MAX_DEPTH => None,
            b'[' => {
                let mut items = Vec::new();
                self.items(b']', |r| {
                    items.push(r.value()?);
                    Some(())
                })?;
                Some(Exact::Array(items))
            }
            b'{' => {
                let mut fields: Vec<(String, Exact)> = Vec::new();
                self.items(b'}', |r| {
                    r.skip_ws();
                    let k = r.string()?;
                    r.skip_ws();
                    r.eat(":")?;
                    let v = r.value()?;
                    // A repeated name keeps the last value, as serde_json does.
                    fields.retain(|(name, _)| *name != k);
                    fields.push((k, v));
                    Some(())
                })?;
                Some(Exact::Object(fields))
            }
            _ => self.number(),
        }
    }

    /// The comma-separated items of an array or object, from its opening bracket to
    /// `close`, one level deeper; `item` reads one.
    fn items(&mut self, close: u8, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.i += 1;
        self.depth += 1;
        self.skip_ws();
        if self.b.get(self.i) == Some(&close) {
            self.i += 1;
        } else {
            loop {
                item(self)?;
                self.skip_ws();
                match self.b.get(self.i) {
                    Some(b',') => self.i += 1,
                    Some(c) if *c == close => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        Some(())
    }

    fn string(&mut self) -> Option<String> {
        let start = self.i;
        if self.b.get(self.i) != Some(&b'"') {
            return None;
        }
        self.i += 1;
        loop {
            match *self.b.get(self.i)? {
                b'\\' => self.i += 2,
                b'"' => break,
                _ => self.i += 1,
            }
        }
        self.i += 1;
        // The quoted text, escapes and all, is decoded by serde_json.
        serde_json::from_slice(self.b.get(start..self.i)?).ok()
    }

    fn number(&mut self) -> Option<Exact> {
        let start = self.i;
        while self.b.get(self.i).is_some_and(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E')) {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.b[start..self.i]).ok()?;
        // Checked as a JSON number by serde_json; the text is what is kept.
        serde_json::from_str::<serde_json::Number>(text).ok()?;
        Some(Exact::Number(text.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_text_and_the_rest_reads_as_json() {
        let v = Exact::parse(r#" {"D": 1.10, "L": 9007199254740993, "S": "a\"é", "A": [null, true, -2e3], "E": {}} "#).unwrap();
        assert_eq!(v.get("D"), Some(&Exact::Number("1.10".into())));
        assert_eq!(v.get("L").and_then(Exact::as_i64), Some(9_007_199_254_740_993));
        assert_eq!(v.get("S").and_then(Exact::as_str), Some("a\"é"));
        assert_eq!(v.get("A"), Some(&Exact::Array(vec![Exact::Null, Exact::Bool(true), Exact::Number("-2e3".into())])));
        assert_eq!(v.get("E"), Some(&Exact::Object(vec![])));
        assert_eq!(v.to_string(), r#"{"D":1.10,"L":9007199254740993,"S":"a\"é","A":[null,true,-2e3],"E":{}}"#);
    }

    #[test]
    fn malformed_or_too_deep_documents_are_not_read() {
        for bad in ["", "{", "[1,]", "01x", "{\"a\" 1}", "1 2", "\"open", "nul"] {
            assert_eq!(Exact::parse(bad), None, "{bad}");
        }
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(Exact::parse(&deep), None);
        let fine = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(Exact::parse(&fine).is_some());
    }
}
