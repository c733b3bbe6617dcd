//! LIKE patterns as ksqlDB reads them: `%` and `_` are the wildcards, a backslash is an
//! ordinary character, and only the ESCAPE character (when given) escapes. DataFusion's
//! LIKE escapes with a backslash, so patterns are rewritten into its syntax: at planning
//! for a literal pattern, per row for a pattern taken from a column.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, lit};

use super::value::text;
use super::{RowFunction, row_call};
use crate::catalog::types::SqlType;
use crate::sql::functions::exactly;

/// `pattern` in DataFusion's LIKE syntax: the escape character's next character and every
/// backslash become literal. An escape character at the end stands for itself.
pub fn datafusion_pattern(pattern: &str, escape: Option<char>) -> String {
    let mut out = String::with_capacity(pattern.len() + 2);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        let literal = match c {
            c if Some(c) == escape => chars.next().unwrap_or(c),
            '\\' => '\\',
            other => {
                out.push(other);
                continue;
            }
        };
        if matches!(literal, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(literal);
    }
    out
}

/// The pattern operand of a LIKE: a literal rewritten now, any other expression per row.
pub fn like_pattern(pattern: Expr, escape: Option<char>) -> Expr {
    if let Expr::Literal(ScalarValue::Utf8(Some(p)), _) = &pattern {
        return lit(datafusion_pattern(p, escape));
    }
    static PATTERN: RowFunction = RowFunction {
        name: "LIKE_PATTERN",
        arity: exactly(2),
        description: "a LIKE pattern in DataFusion's syntax",
        returns: |_| Ok(SqlType::String),
        eval: |a, _| {
            let escape = text(&a[1]).and_then(|e| e.chars().next());
            Some(ScalarValue::Utf8(Some(datafusion_pattern(text(&a[0])?, escape))))
        },
    };
    let escape = escape.map(String::from).unwrap_or_default();
    row_call(&PATTERN, vec![pattern, lit(escape)], &SqlType::String)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backslashes_are_ordinary_and_only_the_escape_character_escapes() {
        assert_eq!(datafusion_pattern("a\\b%", None), "a\\\\b%");
        assert_eq!(datafusion_pattern("!%x_", Some('!')), "\\%x_");
        assert_eq!(datafusion_pattern("!!", Some('!')), "!");
        assert_eq!(datafusion_pattern("50!", Some('!')), "50!");
    }
}
