//! SQL types: BOOLEAN ... DECIMAL(p, s), ARRAY<T>, MAP<K, V>, STRUCT<...> and custom types.

use super::*;

impl Parser<'_> {
    pub(super) fn expect_gt(&mut self) -> PResult<()> {
        match self.peek() {
            Token::Gt => {
                self.i += 1;
                Ok(())
            }
            Token::ShiftRight => {
                // `>>` closing two nested types: consume one half.
                if let Some(t) = self.tokens.get_mut(self.i) {
                    t.token = Token::Gt;
                }
                Ok(())
            }
            _ => Err(self.error_here("expected '>'", None)),
        }
    }

    /// The custom type named by the word at token `i` (unquoted names are upper-cased).
    pub(super) fn custom_type(&self, i: usize) -> Option<SqlType> {
        match &self.tokens.get(i)?.token {
            Token::Word(w) if w.quote_style.is_some() => self.types.get(&w.value).cloned(),
            Token::Word(w) => self.types.get(&w.value.to_uppercase()).cloned(),
            _ => None,
        }
    }

    /// A type, nested at most [`MAX_EXPRESSION_DEPTH`] levels (custom types included).
    pub(super) fn data_type(&mut self) -> PResult<SqlType> {
        let pos = self.pos();
        self.descend()?;
        let ty = self.data_type_inner();
        self.ascend();
        let ty = ty?;
        if ty.depth() > MAX_EXPRESSION_DEPTH as usize {
            return Err(self.too_deep(pos));
        }
        Ok(ty)
    }

    fn data_type_inner(&mut self) -> PResult<SqlType> {
        let name = match self.peek().clone() {
            Token::Word(w) => w.value.to_uppercase(),
            _ => return Err(self.error_here("expected a type", Some(TYPE_HINT))),
        };
        self.i += 1;
        let ty = match name.as_str() {
            "BOOLEAN" => SqlType::Boolean,
            "INT" | "INTEGER" => SqlType::Int,
            "BIGINT" => SqlType::Bigint,
            "DOUBLE" => SqlType::Double,
            "VARCHAR" | "STRING" => SqlType::String,
            "BYTES" => SqlType::Bytes,
            "DATE" => SqlType::Date,
            "TIME" => SqlType::Time,
            "TIMESTAMP" => SqlType::Timestamp,
            "DECIMAL" if self.peek() == &Token::LParen => {
                self.expect(&Token::LParen)?;
                let p = self.unsigned_integer()?;
                let s = if self.eat(&Token::Comma) { self.unsigned_integer()? } else { 0 };
                self.expect(&Token::RParen)?;
                if !(1..=38).contains(&p) || s > p {
                    return Err(ParseError {
                        syntax: true,
                        message: format!("DECIMAL({p}, {s}) is out of range"),
                        pos: self.pos(),
                        hint: Some("precision must be 1..38 and scale at most the precision".into()),
                        statement: None,
                    });
                }
                SqlType::Decimal { precision: p as u8, scale: s as i8 }
            }
            "ARRAY" => {
                self.expect(&Token::Lt)?;
                let t = self.data_type()?;
                self.expect_gt()?;
                SqlType::Array(Box::new(t))
            }
            "MAP" => {
                self.expect(&Token::Lt)?;
                let k = self.data_type()?;
                self.expect(&Token::Comma)?;
                let v = self.data_type()?;
                self.expect_gt()?;
                SqlType::Map(Box::new(k), Box::new(v))
            }
            "STRUCT" => {
                self.expect(&Token::Lt)?;
                let mut fields = Vec::new();
                if !matches!(self.peek(), Token::Gt | Token::ShiftRight) {
                    loop {
                        let n = self.ident()?;
                        let t = self.data_type()?;
                        fields.push((n.value, t));
                        if !self.eat(&Token::Comma) {
                            break;
                        }
                    }
                }
                self.expect_gt()?;
                SqlType::Struct(fields)
            }
            "DECIMAL" => {
                return Err(self.error_here("expected '(' after DECIMAL", Some("write DECIMAL(precision, scale)")));
            }
            _ => {
                if let Some(ty) = self.custom_type(self.i - 1) {
                    return Ok(ty);
                }
                self.i -= 1;
                return Err(self.error_here("unknown type", Some(TYPE_HINT)));
            }
        };
        // ksqlDB's grammar lets any type name take parameters (`VARCHAR(STRING)`); only
        // DECIMAL's mean something.
        if !matches!(ty, SqlType::Decimal { .. } | SqlType::Array(_) | SqlType::Map(..) | SqlType::Struct(_)) && self.eat(&Token::LParen) {
            loop {
                match self.peek() {
                    Token::Number(..) => self.i += 1,
                    Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("STRING") => self.i += 1,
                    _ => {
                        return Err(ParseError {
                            syntax: true,
                            message: "Expecting {'STRING', INTEGER_VALUE}".into(),
                            pos: self.pos(),
                            hint: Some(TYPE_HINT.into()),
                            statement: None,
                        });
                    }
                }
                if !self.eat(&Token::Comma) {
                    break;
                }
            }
            self.expect(&Token::RParen)?;
        }
        Ok(ty)
    }
}
