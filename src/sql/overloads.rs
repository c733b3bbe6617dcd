//! Which of a function's signatures a call takes, where ksqlDB's overload resolution
//! decides more than a type rule: calls a bare NULL makes fit two signatures alike, and
//! GREATEST / LEAST over mixed numeric types, are ambiguous and refused.

use super::SqlError;
use super::ast::Pos;
use super::functions::{Kind, Params};
use crate::catalog::types::SqlType;

/// ksqlDB's refusal of a call that two signatures fit equally well (a bare NULL fits any
/// parameter, so `LEN(NULL)` fits both `LEN(STRING)` and `LEN(BYTES)`).
pub(super) fn ambiguous_call(name: &str, types: &[SqlType], nulls: &[bool], pos: Pos) -> SqlError {
    let shown: Vec<String> = types.iter().zip(nulls).map(|(t, n)| if *n { "null".to_string() } else { t.to_string() }).collect();
    SqlError::at(
        pos,
        format!("Function '{}' cannot be resolved due to ambiguous method parameters ({}).", name.to_ascii_lowercase(), shown.join(", ")),
        Some("CAST the NULL (or the arguments) to the type you mean, e.g. CAST(NULL AS STRING)".into()),
    )
}

/// Whether bare NULLs (`nulls`) make a call of a function lowered onto DataFusion fit two
/// of ksqlDB's signatures alike: its numeric overloads (INT, BIGINT, DOUBLE, DECIMAL) when
/// a NULL stands for the number, its STRING and BYTES forms when the NULL could be either.
pub(super) fn null_call_is_ambiguous(name: &str, params: Params, types: &[SqlType], nulls: &[bool]) -> bool {
    let bytes_form_fits = nulls.first() == Some(&true)
        && super::udf::bytes_overload(name).is_some_and(|b| {
            let mut t = types.to_vec();
            t[0] = SqlType::Bytes;
            (b.returns)(&t).is_ok()
        });
    let all_null = nulls.iter().all(|n| *n);
    bytes_form_fits
        || match params {
            Params::Numbers | Params::StringsOrBytes => all_null,
            Params::Each(kinds) => nulls.iter().enumerate().any(|(i, n)| *n && kinds.get(i).or(kinds.last()) == Some(&Kind::Number)),
            Params::Strings | Params::Any => false,
        }
}

/// The common type GREATEST and LEAST compare their arguments in, resolved as ksqlDB
/// resolves its overloads (one per type, variadic): arguments of one type keep it
/// (decimals widened to hold each); a mix of numeric types needs exactly one type all of
/// them widen to (INT and BIGINT widen to BIGINT, DECIMAL and DOUBLE alike: ambiguous).
/// `None` when the arguments need no casting.
pub(super) fn extremum_type(name: &str, types: &[SqlType], nulls: &[bool], pos: Pos) -> Result<Option<SqlType>, SqlError> {
    let ambiguous = || ambiguous_call(name, types, nulls, pos);
    let present: Vec<&SqlType> = types.iter().zip(nulls).filter(|(_, n)| !**n).map(|(t, _)| t).collect();
    let Some(first) = present.first() else { return Err(ambiguous()) };
    if let SqlType::Decimal { .. } = first
        && present.iter().all(|t| matches!(t, SqlType::Decimal { .. }))
    {
        let (mut int_digits, mut scale) = (0i16, 0i16);
        for t in &present {
            if let SqlType::Decimal { precision, scale: s } = t {
                int_digits = int_digits.max(*precision as i16 - *s as i16);
                scale = scale.max(*s as i16);
            }
        }
        return Ok(Some(SqlType::Decimal { precision: (int_digits + scale).clamp(1, 38) as u8, scale: scale as i8 }));
    }
    if present.iter().all(|t| t == first) {
        return Ok(Some((*first).clone()));
    }
    if present.iter().all(|t| t.is_numeric()) {
        let all_in = |allowed: &dyn Fn(&SqlType) -> bool| present.iter().all(|t| allowed(t));
        let candidates: Vec<SqlType> = [
            (all_in(&|t| matches!(t, SqlType::Int | SqlType::Bigint)), SqlType::Bigint),
            (all_in(&|t| matches!(t, SqlType::Int | SqlType::Bigint | SqlType::Decimal { .. })), SqlType::Decimal { precision: 38, scale: 18 }),
            (true, SqlType::Double),
        ]
        .into_iter()
        .filter(|(ok, _)| *ok)
        .map(|(_, t)| t)
        .collect();
        return match candidates.as_slice() {
            [only] => Ok(Some(only.clone())),
            _ => Err(ambiguous()),
        };
    }
    if present.iter().any(|t| t.is_numeric()) && present.iter().any(|t| **t == SqlType::String) {
        return Err(SqlError::at(pos, super::udf::not_accepted(name, types), Some("compare arguments of one type".into())));
    }
    Ok(None)
}
