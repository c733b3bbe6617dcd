//! URL functions: URL_ENCODE_PARAM, URL_DECODE_PARAM and URL_EXTRACT_* (protocol, host,
//! port, path, query, fragment, parameter), splitting URLs the way Java's `URI` does.

use arrow::datatypes::DataType;
use datafusion::common::ScalarValue;

use super::RowFunction;
use super::value::text;
use crate::catalog::types::SqlType;
use crate::sql::functions::exactly;

/// The parts of `scheme://[user@]host[:port][path][?query][#fragment]`.
#[derive(Debug, Default, PartialEq)]
struct UrlParts<'a> {
    scheme: Option<&'a str>,
    host: Option<&'a str>,
    port: Option<u16>,
    path: &'a str,
    query: Option<&'a str>,
    fragment: Option<&'a str>,
}

fn split(url: &str) -> Option<UrlParts<'_>> {
    let mut p = UrlParts::default();
    let (rest, fragment) = match url.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (url, None),
    };
    p.fragment = fragment;
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    p.query = query;
    let rest = match rest.split_once("://") {
        Some((scheme, r)) => {
            if scheme.is_empty() || !scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
                return None;
            }
            p.scheme = Some(scheme);
            let (authority, path) = match r.find('/') {
                Some(i) => (&r[..i], &r[i..]),
                None => (r, ""),
            };
            p.path = path;
            let hostport = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
            match hostport.rsplit_once(':') {
                Some((h, port)) if !h.ends_with(']') || hostport.starts_with('[') => {
                    p.host = Some(h);
                    p.port = Some(port.parse().ok()?);
                }
                _ => p.host = Some(hostport),
            }
            return Some(p);
        }
        None => rest,
    };
    p.path = rest;
    Some(p)
}

fn utf8(s: Option<&str>) -> Option<ScalarValue> {
    s.map(|x| ScalarValue::Utf8(Some(x.to_string())))
}

/// `application/x-www-form-urlencoded`, as Java's `URLEncoder` writes it.
fn encode_param(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => out.push(b as char),
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

fn decode_param(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn parameter(a: &[ScalarValue], _: &DataType) -> Option<ScalarValue> {
    let parts = split(text(&a[0])?)?;
    let name = text(&a[1])?;
    for pair in parts.query?.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == name {
            return utf8(Some(v));
        }
    }
    None
}

fn strings(t: &[SqlType]) -> Result<SqlType, String> {
    if t.iter().all(|x| *x == SqlType::String) { Ok(SqlType::String) } else { Err("expected STRING arguments".into()) }
}

pub fn functions() -> Vec<RowFunction> {
    vec![
        RowFunction {
            name: "URL_ENCODE_PARAM",
            arity: exactly(1),
            description: "Encodes text for a URL query parameter.",
            returns: strings,
            eval: |a, _| utf8(Some(&encode_param(text(&a[0])?))),
        },
        RowFunction {
            name: "URL_DECODE_PARAM",
            arity: exactly(1),
            description: "Decodes a URL query parameter.",
            returns: strings,
            eval: |a, _| utf8(Some(&decode_param(text(&a[0])?)?)),
        },
        RowFunction {
            name: "URL_EXTRACT_PROTOCOL",
            arity: exactly(1),
            description: "The scheme of a URL.",
            returns: strings,
            eval: |a, _| utf8(split(text(&a[0])?)?.scheme),
        },
        RowFunction {
            name: "URL_EXTRACT_HOST",
            arity: exactly(1),
            description: "The host of a URL.",
            returns: strings,
            eval: |a, _| utf8(split(text(&a[0])?)?.host),
        },
        RowFunction {
            name: "URL_EXTRACT_PORT",
            arity: exactly(1),
            description: "The port of a URL, null when it has none.",
            returns: |t| strings(t).map(|_| SqlType::Int),
            eval: |a, _| split(text(&a[0])?)?.port.map(|p| ScalarValue::Int32(Some(p as i32))),
        },
        RowFunction {
            name: "URL_EXTRACT_PATH",
            arity: exactly(1),
            description: "The path of a URL.",
            returns: strings,
            eval: |a, _| utf8(Some(split(text(&a[0])?)?.path)),
        },
        RowFunction {
            name: "URL_EXTRACT_QUERY",
            arity: exactly(1),
            description: "The query string of a URL.",
            returns: strings,
            eval: |a, _| utf8(split(text(&a[0])?)?.query),
        },
        RowFunction {
            name: "URL_EXTRACT_FRAGMENT",
            arity: exactly(1),
            description: "The fragment of a URL.",
            returns: strings,
            eval: |a, _| utf8(split(text(&a[0])?)?.fragment),
        },
        RowFunction {
            name: "URL_EXTRACT_PARAMETER",
            arity: exactly(2),
            description: "URL_EXTRACT_PARAMETER(url, name): a query parameter's (encoded) value.",
            returns: strings,
            eval: parameter,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_like_java_uri() {
        let p = split("http://test@confluent.io:8080/nested/path?query&jobs#frag").expect("url");
        assert_eq!(
            (p.scheme, p.host, p.port, p.path, p.query, p.fragment),
            (Some("http"), Some("confluent.io"), Some(8080), "/nested/path", Some("query&jobs"), Some("frag"))
        );
        let p = split("http://www.test.com?query").expect("url");
        assert_eq!((p.path, p.port), ("", None));
        assert_eq!(encode_param("?foo $bar"), "%3Ffoo+%24bar");
        assert_eq!(decode_param("%3Ffoo+%24bar").as_deref(), Some("?foo $bar"));
    }
}
