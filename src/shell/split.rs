//! Splits shell input into statements at `;`, ignoring `;` inside strings, quoted
//! identifiers and comments, and tells whether input is complete.

/// Statements found in `input`, each with its `;`, and the unterminated rest.
pub fn split_statements(input: &str) -> (Vec<String>, String) {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'`' | b'"' => {
                let q = bytes[i];
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == q {
                        if i + 1 < bytes.len() && bytes[i + 1] == q {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b';' => {
                let s = input[start..=i].trim();
                if s != ";" && !s.is_empty() {
                    out.push(s.to_string());
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    let rest = if start < input.len() { input[start..].to_string() } else { String::new() };
    (out, rest)
}

/// The first word of a statement, upper-cased (after comments).
pub fn first_word(stmt: &str) -> String {
    let mut s = stmt.trim_start();
    loop {
        if let Some(r) = s.strip_prefix("--") {
            s = r.split_once('\n').map(|(_, b)| b).unwrap_or("").trim_start();
        } else if let Some(r) = s.strip_prefix("/*") {
            s = r.split_once("*/").map(|(_, b)| b).unwrap_or("").trim_start();
        } else {
            break;
        }
    }
    s.split(|c: char| c.is_whitespace() || c == ';' || c == '(').next().unwrap_or("").to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_outside_quotes_and_comments() {
        let (stmts, rest) = split_statements("SELECT 'a;b' FROM x; -- c;\nSHOW `q;` ;\n/* ; */ PRINT 't'");
        assert_eq!(stmts, vec!["SELECT 'a;b' FROM x;", "-- c;\nSHOW `q;` ;"]);
        assert_eq!(rest.trim(), "/* ; */ PRINT 't'");
        assert_eq!(first_word("-- x\n  select 1;"), "SELECT");
        assert_eq!(first_word("/* a */PRINT 't';"), "PRINT");
    }
}
