//! MASK, MASK_LEFT, MASK_RIGHT, MASK_KEEP_LEFT and MASK_KEEP_RIGHT: characters replaced
//! by class (upper case, lower case, digit, other) with 'X', 'x', 'n' and '-' unless the
//! call names others; a NULL mask character leaves its class as it is.

use arrow::datatypes::DataType;
use datafusion::common::ScalarValue;

use super::RowFunction;
use super::value::{int, text};
use crate::catalog::types::SqlType;
use crate::sql::functions::between;

const DEFAULTS: [char; 4] = ['X', 'x', 'n', '-'];

/// The replacement per character class; `None` keeps the class unmasked.
struct Masker([Option<char>; 4]);

impl Masker {
    /// From the mask arguments (those after the string and, for the ranged forms, the count).
    fn from_args(args: &[ScalarValue]) -> Masker {
        let mut m = DEFAULTS.map(Some);
        for (slot, v) in m.iter_mut().zip(args) {
            // A NULL argument keeps the class; an empty string too (nothing to mask with).
            *slot = text(v).and_then(|t| t.chars().next());
        }
        Masker(m)
    }

    fn mask(&self, c: char) -> char {
        let class = if c.is_uppercase() {
            0
        } else if c.is_lowercase() {
            1
        } else if c.is_ascii_digit() {
            2
        } else {
            3
        };
        self.0[class].unwrap_or(c)
    }
}

/// Which characters of `len` get masked.
#[derive(Clone, Copy)]
enum Range {
    All,
    Left,
    Right,
    KeepLeft,
    KeepRight,
}

fn masked(a: &[ScalarValue], range: Range) -> Option<ScalarValue> {
    let s = text(&a[0])?;
    let (count, masks) = match range {
        Range::All => (0, &a[1..]),
        _ => (usize::try_from(int(a.get(1)?)?).ok()?, &a[2..]),
    };
    let m = Masker::from_args(masks);
    let len = s.chars().count();
    let out = s
        .chars()
        .enumerate()
        .map(|(i, c)| {
            let apply = match range {
                Range::All => true,
                Range::Left => i < count,
                Range::Right => i + count >= len,
                Range::KeepLeft => i >= count,
                Range::KeepRight => i + count < len,
            };
            if apply { m.mask(c) } else { c }
        })
        .collect();
    Some(ScalarValue::Utf8(Some(out)))
}

fn all_strings(t: &[SqlType]) -> Result<SqlType, String> {
    match t.iter().find(|x| **x != SqlType::String) {
        Some(bad) => Err(format!("the string and mask characters are STRINGs, not {bad}")),
        None => Ok(SqlType::String),
    }
}

fn ranged(t: &[SqlType]) -> Result<SqlType, String> {
    if !matches!(t.get(1), Some(SqlType::Int | SqlType::Bigint)) {
        return Err("the number of characters is an INT".into());
    }
    let mut rest = vec![t[0].clone()];
    rest.extend_from_slice(&t[2..]);
    all_strings(&rest)
}

fn eval_for(range: Range) -> fn(&[ScalarValue], &DataType) -> Option<ScalarValue> {
    match range {
        Range::All => |a, _| masked(a, Range::All),
        Range::Left => |a, _| masked(a, Range::Left),
        Range::Right => |a, _| masked(a, Range::Right),
        Range::KeepLeft => |a, _| masked(a, Range::KeepLeft),
        Range::KeepRight => |a, _| masked(a, Range::KeepRight),
    }
}

pub fn functions() -> Vec<RowFunction> {
    let ranged_fn = |name, description, range| RowFunction { name, arity: between(2, 6), description, returns: ranged, eval: eval_for(range) };
    vec![
        RowFunction {
            name: "MASK",
            arity: between(1, 5),
            description: "MASK(s[, upper, lower, digit, other]): masks every character by class ('X', 'x', 'n', '-' by default; NULL keeps a class).",
            returns: all_strings,
            eval: eval_for(Range::All),
        },
        ranged_fn("MASK_LEFT", "MASK_LEFT(s, n[, upper, lower, digit, other]): masks the first n characters.", Range::Left),
        ranged_fn("MASK_RIGHT", "MASK_RIGHT(s, n[, upper, lower, digit, other]): masks the last n characters.", Range::Right),
        ranged_fn("MASK_KEEP_LEFT", "MASK_KEEP_LEFT(s, n[, upper, lower, digit, other]): masks all but the first n characters.", Range::KeepLeft),
        ranged_fn("MASK_KEEP_RIGHT", "MASK_KEEP_RIGHT(s, n[, upper, lower, digit, other]): masks all but the last n characters.", Range::KeepRight),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> ScalarValue {
        ScalarValue::Utf8(Some(v.into()))
    }
    fn run(range: Range, args: &[ScalarValue]) -> Option<String> {
        match masked(args, range)? {
            ScalarValue::Utf8(v) => v,
            _ => None,
        }
    }

    #[test]
    fn masks_as_ksqldb_documents() {
        let input = s("My Test $123");
        let four = ScalarValue::Int32(Some(4));
        assert_eq!(run(Range::All, std::slice::from_ref(&input)).as_deref(), Some("Xx-Xxxx--nnn"));
        let nulls = [input.clone(), s("*"), ScalarValue::Utf8(None), s("1"), ScalarValue::Utf8(None)];
        assert_eq!(run(Range::All, &nulls).as_deref(), Some("*y *est $111"));
        assert_eq!(run(Range::KeepLeft, &[input.clone(), four.clone()]).as_deref(), Some("My Txxx--nnn"));
        assert_eq!(run(Range::KeepRight, &[input.clone(), four.clone()]).as_deref(), Some("Xx-Xxxx-$123"));
        assert_eq!(run(Range::Left, &[input.clone(), four.clone()]).as_deref(), Some("Xx-Xest $123"));
        assert_eq!(run(Range::Right, &[input, four]).as_deref(), Some("My Test -nnn"));
    }

    #[test]
    fn a_negative_count_or_null_string_is_null() {
        assert_eq!(run(Range::Left, &[s("abc"), ScalarValue::Int32(Some(-1))]), None);
        assert_eq!(run(Range::All, &[ScalarValue::Utf8(None)]), None);
        // A count past the end masks (or keeps) everything.
        assert_eq!(run(Range::Left, &[s("ab1"), ScalarValue::Int32(Some(10))]).as_deref(), Some("xxn"));
        assert_eq!(run(Range::KeepLeft, &[s("ab1"), ScalarValue::Int32(Some(10))]).as_deref(), Some("ab1"));
    }
}
