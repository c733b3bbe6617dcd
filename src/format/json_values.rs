//! The values of a JSON object as a JSON array, spliced from the text without decoding:
//! `{"A":1,"B":{"x":[2]}}` becomes `[1,{"x":[2]}]`. Pull queries return stored rows this
//! way when they select every column. Also: strings written as JSON without a copy.

/// Appends `v` as a JSON string literal, escaped as serde_json escapes it; with nothing to
/// escape (most names, ids and keys) without an intermediate string.
pub fn push_json_str(out: &mut String, v: &str) {
    if v.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(&serde_json::Value::String(v.to_string()).to_string());
    } else {
        out.reserve(v.len() + 2);
        out.push('"');
        out.push_str(v);
        out.push('"');
    }
}

/// Skips a JSON string starting at `bytes[i] == b'"'`; returns the index after it.
fn skip_string(bytes: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Skips one JSON value starting at `i` (no leading whitespace); returns the index after it.
fn skip_value(bytes: &[u8], i: usize) -> Option<usize> {
    match *bytes.get(i)? {
        b'"' => skip_string(bytes, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < bytes.len() {
                match bytes[j] {
                    b'"' => {
                        j = skip_string(bytes, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < bytes.len() && !matches!(bytes[j], b',' | b'}' | b']') && !bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

/// The object's values in order as a JSON array; `None` if `json` is not an object.
pub fn object_values_array(json: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(json.len());
    out.push(b'[');
    let mut i = skip_ws(json, 0);
    if json.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(json, i + 1);
    if json.get(i) == Some(&b'}') {
        out.push(b']');
        return String::from_utf8(out).ok();
    }
    loop {
        if json.get(i) != Some(&b'"') {
            return None;
        }
        i = skip_ws(json, skip_string(json, i)?);
        if json.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(json, i + 1);
        let end = skip_value(json, i)?;
        if out.len() > 1 {
            out.push(b',');
        }
        out.extend_from_slice(&json[i..end]);
        i = skip_ws(json, end);
        match json.get(i) {
            Some(b',') => i = skip_ws(json, i + 1),
            Some(b'}') => break,
            _ => return None,
        }
    }
    if skip_ws(json, i + 1) != json.len() {
        return None;
    }
    out.push(b']');
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped_as_serde_json_escapes_them() {
        for v in ["transient_T_1", "", "a \"quoted\" name", "back\\slash", "new\nline", "tab\t", "\u{1}", "émoji 🦀", "ü"] {
            let mut s = String::from("x");
            push_json_str(&mut s, v);
            assert_eq!(s, format!("x{}", serde_json::to_string(v).unwrap()), "{v:?}");
        }
    }

    #[test]
    fn values_are_spliced_in_order() {
        let row = br#"{"ID":"k\"1}","N":-1.5e3,"M":{"a":[1,{"b":"]"}]},"L":[],"Z":null,"T":true}"#;
        assert_eq!(object_values_array(row).unwrap(), r#"["k\"1}",-1.5e3,{"a":[1,{"b":"]"}]},[],null,true]"#);
        assert_eq!(object_values_array(b" { } ").unwrap(), "[]");
        assert_eq!(object_values_array(b"{ \"a\" : 1 , \"b\" : \"x\" }").unwrap(), r#"[1,"x"]"#);
    }

    #[test]
    fn values_match_serde_for_random_rows() {
        for n in 0..200u64 {
            let mut obj = serde_json::Map::new();
            for c in 0..(n % 7) {
                let v = match (n + c) % 5 {
                    0 => serde_json::json!(format!("s{n}\"\\{c}")),
                    1 => serde_json::json!(n as f64 / 3.0),
                    2 => serde_json::json!([n, {"k": [c]}]),
                    3 => serde_json::Value::Null,
                    _ => serde_json::json!({"nested": {"x": n}}),
                };
                obj.insert(format!("C{c}"), v);
            }
            let text = serde_json::Value::Object(obj.clone()).to_string();
            let expected = serde_json::Value::Array(obj.into_iter().map(|(_, v)| v).collect()).to_string();
            assert_eq!(object_values_array(text.as_bytes()).unwrap(), expected);
        }
    }

    #[test]
    fn non_objects_and_broken_text_are_refused() {
        for bad in [&b"[1]"[..], b"{\"a\":1", b"{\"a\" 1}", b"{\"a\":}", b"{\"a\":1}x", b"{a:1}"] {
            assert_eq!(object_values_array(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
