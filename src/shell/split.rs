//! Shell input as statements: the splitter is the SQL layer's (`sql::split`); this file
//! adds what the shell needs on top, such as a statement's first word.

pub use crate::sql::split::split_statements;

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
