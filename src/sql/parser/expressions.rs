//! Expressions, by precedence: OR, AND, NOT, predicates, ||, + -, * / %, unary, postfix
//! (subscripts, fields), primaries (literals, columns, calls, CASE, CAST, lambdas).

use super::*;

impl Parser<'_> {
    pub(super) fn expr(&mut self) -> PResult<Expr> {
        self.descend()?;
        let e = self.or();
        self.ascend();
        e
    }

    /// Parses with one more level of nesting (a NOT or a sign before an operand).
    fn nested(&mut self, parse: fn(&mut Self) -> PResult<Expr>) -> PResult<Expr> {
        self.descend()?;
        let e = parse(self);
        self.ascend();
        e
    }

    pub(super) fn or(&mut self) -> PResult<Expr> {
        let mut e = self.and()?;
        while self.is_kw("OR") {
            let pos = self.pos();
            self.i += 1;
            let r = self.and()?;
            e = self.node(ExprKind::Binary { op: BinaryOp::Or, left: Box::new(e), right: Box::new(r) }, pos)?;
        }
        Ok(e)
    }

    pub(super) fn and(&mut self) -> PResult<Expr> {
        let mut e = self.not()?;
        while self.is_kw("AND") {
            let pos = self.pos();
            self.i += 1;
            let r = self.not()?;
            e = self.node(ExprKind::Binary { op: BinaryOp::And, left: Box::new(e), right: Box::new(r) }, pos)?;
        }
        Ok(e)
    }

    pub(super) fn not(&mut self) -> PResult<Expr> {
        if self.is_kw("NOT") {
            let pos = self.pos();
            self.i += 1;
            let e = self.nested(Self::not)?;
            return self.node(ExprKind::Unary { op: UnaryOp::Not, expr: Box::new(e) }, pos);
        }
        self.predicate()
    }

    pub(super) fn predicate(&mut self) -> PResult<Expr> {
        let mut e = self.concat()?;
        loop {
            let pos = self.pos();
            let op = match self.peek() {
                Token::Eq | Token::DoubleEq => Some(BinaryOp::Eq),
                Token::Neq => Some(BinaryOp::NotEq),
                Token::Lt => Some(BinaryOp::Lt),
                Token::LtEq => Some(BinaryOp::LtEq),
                Token::Gt => Some(BinaryOp::Gt),
                Token::GtEq => Some(BinaryOp::GtEq),
                _ => None,
            };
            if let Some(op) = op {
                self.i += 1;
                let r = self.concat()?;
                e = self.node(ExprKind::Binary { op, left: Box::new(e), right: Box::new(r) }, pos)?;
                continue;
            }
            if self.is_kw("IS") {
                self.i += 1;
                let negated = self.eat_kw("NOT");
                if self.eat_kw("NULL") {
                    e = self.node(ExprKind::IsNull { expr: Box::new(e), negated }, pos)?;
                    continue;
                }
                if self.eat_kws(&["DISTINCT", "FROM"]) {
                    let r = self.concat()?;
                    e = self.node(ExprKind::IsDistinctFrom { left: Box::new(e), right: Box::new(r), negated }, pos)?;
                    continue;
                }
                return Err(self.error_here("expected NULL or DISTINCT FROM after IS", None));
            }
            let negated = self.is_kw("NOT") && (self.is_kw_at(1, "LIKE") || self.is_kw_at(1, "BETWEEN") || self.is_kw_at(1, "IN"));
            if negated {
                self.i += 1;
            }
            if self.eat_kw("LIKE") {
                let pattern = self.concat()?;
                let escape = if self.eat_kw("ESCAPE") {
                    let s = self.string_literal()?;
                    let mut chars = s.chars();
                    match (chars.next(), chars.next()) {
                        (Some(c), None) => Some(c),
                        _ => {
                            return Err(ParseError {
                                syntax: true,
                                message: "ESCAPE must be a single character".into(),
                                pos: self.pos(),
                                hint: None,
                                statement: None,
                            });
                        }
                    }
                } else {
                    None
                };
                e = self.node(ExprKind::Like { expr: Box::new(e), pattern: Box::new(pattern), escape, negated }, pos)?;
                continue;
            }
            if self.eat_kw("BETWEEN") {
                let low = self.concat()?;
                self.expect_kw("AND")?;
                let high = self.concat()?;
                e = self.node(ExprKind::Between { expr: Box::new(e), low: Box::new(low), high: Box::new(high), negated }, pos)?;
                continue;
            }
            if self.eat_kw("IN") {
                self.expect(&Token::LParen)?;
                if self.peek() == &Token::RParen {
                    return Err(self.error_here("expected a value in IN ( )", Some("list at least one value: x IN (1, 2)")));
                }
                let list = self.expr_list()?;
                self.expect(&Token::RParen)?;
                e = self.node(ExprKind::InList { expr: Box::new(e), list, negated }, pos)?;
                continue;
            }
            return Ok(e);
        }
    }

    pub(super) fn concat(&mut self) -> PResult<Expr> {
        let mut e = self.additive()?;
        while self.peek() == &Token::StringConcat {
            let pos = self.pos();
            self.i += 1;
            let r = self.additive()?;
            e = self.node(ExprKind::Binary { op: BinaryOp::Concat, left: Box::new(e), right: Box::new(r) }, pos)?;
        }
        Ok(e)
    }

    pub(super) fn additive(&mut self) -> PResult<Expr> {
        let mut e = self.multiplicative()?;
        loop {
            let op = match self.peek() {
                Token::Plus => BinaryOp::Plus,
                Token::Minus => BinaryOp::Minus,
                _ => return Ok(e),
            };
            let pos = self.pos();
            self.i += 1;
            let r = self.multiplicative()?;
            e = self.node(ExprKind::Binary { op, left: Box::new(e), right: Box::new(r) }, pos)?;
        }
    }

    pub(super) fn multiplicative(&mut self) -> PResult<Expr> {
        let mut e = self.unary()?;
        loop {
            let op = match self.peek() {
                Token::Mul => BinaryOp::Multiply,
                Token::Div => BinaryOp::Divide,
                Token::Mod => BinaryOp::Modulo,
                _ => return Ok(e),
            };
            let pos = self.pos();
            self.i += 1;
            let r = self.unary()?;
            e = self.node(ExprKind::Binary { op, left: Box::new(e), right: Box::new(r) }, pos)?;
        }
    }

    pub(super) fn unary(&mut self) -> PResult<Expr> {
        let pos = self.pos();
        match self.peek() {
            Token::Minus => {
                // A negative number is one literal, so -9223372036854775808 is a BIGINT.
                if let Token::Number(n, _) = self.peek_at(1).clone() {
                    self.i += 2;
                    let lit = number_literal(&format!("-{n}"), pos)?;
                    return self.node(ExprKind::Literal(lit), pos);
                }
                self.i += 1;
                let e = self.nested(Self::unary)?;
                // Fold negative numeric literals so -2147483648 stays an INT.
                if let ExprKind::Literal(l) = &e.kind {
                    match l {
                        Literal::Integer(v) => {
                            return self.node(ExprKind::Literal(Literal::Integer(-v)), pos);
                        }
                        Literal::Decimal(s) => {
                            return self.node(ExprKind::Literal(Literal::Decimal(format!("-{s}"))), pos);
                        }
                        Literal::Double(v) => {
                            return self.node(ExprKind::Literal(Literal::Double(-v)), pos);
                        }
                        _ => {}
                    }
                }
                self.node(ExprKind::Unary { op: UnaryOp::Minus, expr: Box::new(e) }, pos)
            }
            Token::Plus => {
                self.i += 1;
                let e = self.nested(Self::unary)?;
                self.node(ExprKind::Unary { op: UnaryOp::Plus, expr: Box::new(e) }, pos)
            }
            _ => self.postfix(),
        }
    }

    pub(super) fn postfix(&mut self) -> PResult<Expr> {
        let mut e = self.primary()?;
        loop {
            let pos = self.pos();
            if self.eat(&Token::LBracket) {
                let index = self.expr()?;
                self.expect(&Token::RBracket)?;
                e = self.node(ExprKind::Subscript { expr: Box::new(e), index: Box::new(index) }, pos)?;
            } else if self.peek() == &Token::Arrow && self.peek_at(1) != &Token::Mul {
                self.i += 1;
                let field = self.ident()?;
                e = self.node(ExprKind::Dereference { expr: Box::new(e), field: field.value }, pos)?;
            } else {
                return Ok(e);
            }
        }
    }

    /// `(a, b) =>` or `a =>` ahead?
    pub(super) fn lambda_ahead(&self) -> bool {
        if matches!(self.peek(), Token::Word(_)) && self.peek_at(1) == &Token::RArrow {
            return true;
        }
        if self.peek() != &Token::LParen {
            return false;
        }
        let mut n = 1;
        loop {
            if !matches!(self.peek_at(n), Token::Word(_)) {
                return false;
            }
            n += 1;
            match self.peek_at(n) {
                Token::Comma => n += 1,
                Token::RParen => return self.peek_at(n + 1) == &Token::RArrow,
                _ => return false,
            }
        }
    }

    pub(super) fn lambda(&mut self) -> PResult<Expr> {
        let pos = self.pos();
        let mut params = Vec::new();
        if self.eat(&Token::LParen) {
            loop {
                params.push(self.ident()?.value);
                if !self.eat(&Token::Comma) {
                    break;
                }
            }
            self.expect(&Token::RParen)?;
        } else {
            params.push(self.ident()?.value);
        }
        self.expect(&Token::RArrow)?;
        let body = self.expr()?;
        self.node(ExprKind::Lambda { params, body: Box::new(body) }, pos)
    }

    pub(super) fn primary(&mut self) -> PResult<Expr> {
        let pos = self.pos();
        if self.lambda_ahead() {
            return self.lambda();
        }
        match self.peek().clone() {
            Token::Number(n, _) => {
                self.i += 1;
                let lit = number_literal(&n, pos)?;
                self.node(ExprKind::Literal(lit), pos)
            }
            Token::SingleQuotedString(s) => {
                self.i += 1;
                self.node(ExprKind::Literal(Literal::String(s)), pos)
            }
            Token::LParen => {
                self.i += 1;
                let e = self.expr()?;
                self.expect(&Token::RParen)?;
                Ok(e)
            }
            Token::Word(w) => {
                if w.quote_style.is_none() {
                    let upper = w.value.to_uppercase();
                    match upper.as_str() {
                        "NULL" => {
                            self.i += 1;
                            return self.node(ExprKind::Literal(Literal::Null), pos);
                        }
                        "TRUE" | "FALSE" => {
                            self.i += 1;
                            return self.node(ExprKind::Literal(Literal::Boolean(upper == "TRUE")), pos);
                        }
                        "CASE" => {
                            self.i += 1;
                            return self.case(pos);
                        }
                        "CAST" if self.peek_at(1) == &Token::LParen => {
                            self.i += 2;
                            let e = self.expr()?;
                            self.expect_kw("AS")?;
                            let ty = self.data_type()?;
                            self.expect(&Token::RParen)?;
                            return self.node(ExprKind::Cast { expr: Box::new(e), ty }, pos);
                        }
                        "ARRAY" if self.peek_at(1) == &Token::LBracket => {
                            self.i += 2;
                            let items = if self.peek() == &Token::RBracket { Vec::new() } else { self.expr_list()? };
                            self.expect(&Token::RBracket)?;
                            return self.node(ExprKind::Array(items), pos);
                        }
                        "MAP" if self.peek_at(1) == &Token::LParen => {
                            self.i += 2;
                            let mut entries = Vec::new();
                            if self.peek() != &Token::RParen {
                                loop {
                                    let k = self.expr()?;
                                    self.expect_assign()?;
                                    let v = self.expr()?;
                                    entries.push((k, v));
                                    if !self.eat(&Token::Comma) {
                                        break;
                                    }
                                }
                            }
                            self.expect(&Token::RParen)?;
                            return self.node(ExprKind::Map(entries), pos);
                        }
                        "STRUCT" if self.peek_at(1) == &Token::LParen => {
                            self.i += 2;
                            let mut fields = Vec::new();
                            if self.peek() != &Token::RParen {
                                loop {
                                    let n = self.ident()?;
                                    self.expect_assign()?;
                                    let v = self.expr()?;
                                    fields.push((n.value, v));
                                    if !self.eat(&Token::Comma) {
                                        break;
                                    }
                                }
                            }
                            self.expect(&Token::RParen)?;
                            return self.node(ExprKind::Struct(fields), pos);
                        }
                        _ => {}
                    }
                }
                if self.is_reserved_word() && self.peek_at(1) != &Token::LParen {
                    return Err(self.error_here("expected an expression", Some("quote column names that are keywords with back-quotes, e.g. `FROM`")));
                }
                let name = self.ident()?;
                if self.peek() == &Token::LParen {
                    self.i += 1;
                    return self.function_call(name, pos);
                }
                if self.peek() == &Token::Period && matches!(self.peek_at(1), Token::Word(_)) {
                    self.i += 1;
                    let col = self.ident()?;
                    return self.node(ExprKind::Column { qualifier: Some(name.value), name: col.value }, pos);
                }
                self.node(ExprKind::Column { qualifier: None, name: name.value }, pos)
            }
            _ => Err(self.error_here("expected an expression", None)),
        }
    }

    pub(super) fn expect_assign(&mut self) -> PResult<()> {
        match self.peek() {
            Token::Assignment => {
                self.i += 1;
                Ok(())
            }
            Token::Colon if self.peek_at(1) == &Token::Eq => {
                self.i += 2;
                Ok(())
            }
            _ => Err(self.error_here("expected ':='", Some("write entries as MAP('k' := v) and fields as STRUCT(F := v)"))),
        }
    }

    pub(super) fn function_call(&mut self, name: Ident, pos: Pos) -> PResult<Expr> {
        let mut args = Vec::new();
        let mut star = false;
        let distinct = self.eat_kw("DISTINCT");
        if self.eat(&Token::Mul) {
            star = true;
        } else if self.peek() != &Token::RParen {
            args = self.expr_list()?;
        }
        self.expect(&Token::RParen)?;
        self.node(ExprKind::Function { name: name.value.to_uppercase(), args, distinct, star }, pos)
    }

    pub(super) fn case(&mut self, pos: Pos) -> PResult<Expr> {
        let operand = if self.is_kw("WHEN") { None } else { Some(Box::new(self.expr()?)) };
        let mut whens = Vec::new();
        while self.eat_kw("WHEN") {
            let c = self.expr()?;
            self.expect_kw("THEN")?;
            let r = self.expr()?;
            whens.push((c, r));
        }
        if whens.is_empty() {
            return Err(self.error_here("expected WHEN", Some("CASE WHEN condition THEN result [ELSE result] END")));
        }
        let else_ = if self.eat_kw("ELSE") { Some(Box::new(self.expr()?)) } else { None };
        self.expect_kw("END")?;
        self.node(ExprKind::Case { operand, whens, else_ }, pos)
    }
}

/// A numeric literal as ksqlDB types it: with an exponent a DOUBLE, with a point a
/// DECIMAL, else an INT or BIGINT; one out of range is an error naming it.
fn number_literal(n: &str, pos: Pos) -> PResult<Literal> {
    let out_of_range = |message: String, hint: &str| ParseError { syntax: false, message, pos, hint: Some(hint.to_string()), statement: None };
    let double_range = "a DOUBLE holds magnitudes up to 1.7976931348623157E308";
    let bigint_range = "a BIGINT holds -9223372036854775808 to 9223372036854775807; write a larger number with a decimal point (a DECIMAL)";
    if n.contains(['e', 'E']) {
        let v: f64 = n.parse().map_err(|_| out_of_range(format!("Invalid numeric literal: {n}"), double_range))?;
        return if v.is_finite() { Ok(Literal::Double(v)) } else { Err(out_of_range(format!("Number overflows DOUBLE: {n}"), double_range)) };
    }
    if n.contains('.') {
        return Ok(Literal::Decimal(n.to_string()));
    }
    n.parse::<i64>().map(Literal::Integer).map_err(|_| out_of_range(format!("Invalid numeric literal: {n}"), bigint_range))
}
