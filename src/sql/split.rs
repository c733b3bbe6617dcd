//! Splits SQL text into statements at `;`, ignoring `;` inside strings, quoted
//! identifiers and comments, without parsing them (statements may still hold `${variables}`
//! to substitute, or be incomplete shell input).

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
