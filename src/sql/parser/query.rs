//! SELECT: the select list, FROM (sources and joins), WHERE, windows, GROUP BY, HAVING,
//! EMIT, LIMIT.

use super::*;

/// Joins in one query: each is a stage with its own tasks and state.
const MAX_JOINS: usize = 64;

impl Parser<'_> {
    pub(super) fn query(&mut self) -> PResult<Query> {
        let pos = self.pos();
        self.expect_kw("SELECT")?;
        let mut select = Vec::new();
        loop {
            select.push(self.select_item()?);
            if !self.eat(&Token::Comma) {
                break;
            }
        }
        if !self.eat_kw("FROM") {
            return Err(self.error_here("expected FROM", Some("a query reads from a stream or table: SELECT ... FROM name")));
        }
        let from = self.relation()?;
        let mut q = Query::new(select, from, pos);
        if self.eat_kw("WINDOW") {
            q.window = Some(self.window()?);
        }
        if self.eat_kw("WHERE") {
            q.where_ = Some(self.expr()?);
        }
        loop {
            if self.eat_kws(&["GROUP", "BY"]) {
                q.group_by = self.expr_list()?;
            } else if self.eat_kws(&["PARTITION", "BY"]) {
                if matches!(self.peek(), Token::RParen | Token::SemiColon | Token::EOF) {
                    return Err(self.error_here("PARTITION BY requires at least one expression", Some("e.g. PARTITION BY user_id")));
                }
                q.partition_by = self.expr_list()?;
            } else if self.eat_kw("HAVING") {
                q.having = Some(self.expr()?);
            } else if self.eat_kws(&["ORDER", "BY"]) {
                loop {
                    let e = self.expr()?;
                    let asc = if self.eat_kw("DESC") {
                        false
                    } else {
                        self.eat_kw("ASC");
                        true
                    };
                    q.order_by.push((e, asc));
                    if !self.eat(&Token::Comma) {
                        break;
                    }
                }
            } else {
                break;
            }
        }
        if self.eat_kw("EMIT") {
            q.emit = Some(if self.eat_kw("CHANGES") {
                Emit::Changes
            } else if self.eat_kw("FINAL") {
                Emit::Final
            } else {
                return Err(self.error_here("expected CHANGES or FINAL after EMIT", None));
            });
        }
        if self.eat_kw("LIMIT") {
            if self.peek() == &Token::Minus && q.emit.is_none() {
                return Err(
                    self.error_here("Pull queries don't support negative integers in the LIMIT clause. See https://cnfl.io/queries for more info.", None)
                );
            }
            q.limit = Some(self.unsigned_integer()?);
        }
        Ok(q)
    }

    pub(super) fn expr_list(&mut self) -> PResult<Vec<Expr>> {
        let mut out = Vec::new();
        loop {
            out.push(self.expr()?);
            if !self.eat(&Token::Comma) {
                return Ok(out);
            }
        }
    }

    pub(super) fn select_item(&mut self) -> PResult<SelectItem> {
        let pos = self.pos();
        if self.eat(&Token::Mul) {
            return Ok(SelectItem::Wildcard { qualifier: None, pos });
        }
        if matches!(self.peek(), Token::Word(_)) && self.peek_at(1) == &Token::Period && self.peek_at(2) == &Token::Mul {
            let q = self.ident()?;
            self.i += 2;
            return Ok(SelectItem::Wildcard { qualifier: Some(q.value), pos });
        }
        let expr = self.expr()?;
        if self.peek() == &Token::Arrow && self.peek_at(1) == &Token::Mul {
            self.i += 2;
            return Ok(SelectItem::StructFields { expr, pos });
        }
        let alias = self.optional_alias()?;
        Ok(SelectItem::Expr { expr, alias })
    }

    /// `AS name`, or a bare name that is not a reserved word; `None` when neither follows.
    fn optional_alias(&mut self) -> PResult<Option<Ident>> {
        if self.eat_kw("AS") || (matches!(self.peek(), Token::Word(_)) && !self.is_reserved_word()) {
            return self.ident().map(Some);
        }
        Ok(None)
    }

    pub(super) fn aliased_source(&mut self) -> PResult<Relation> {
        let name = self.ident()?;
        let alias = self.optional_alias()?;
        Ok(Relation::Source { name, alias })
    }

    pub(super) fn relation(&mut self) -> PResult<Relation> {
        let mut rel = self.aliased_source()?;
        let mut joins = 0usize;
        loop {
            let at = self.pos();
            let kind = if self.eat_kw("JOIN") || self.eat_kws(&["INNER", "JOIN"]) {
                JoinKind::Inner
            } else if self.eat_kws(&["LEFT", "OUTER", "JOIN"]) || self.eat_kws(&["LEFT", "JOIN"]) {
                JoinKind::Left
            } else if self.eat_kws(&["RIGHT", "OUTER", "JOIN"]) || self.eat_kws(&["RIGHT", "JOIN"]) {
                JoinKind::Right
            } else if self.eat_kws(&["FULL", "OUTER", "JOIN"]) || self.eat_kws(&["FULL", "JOIN"]) {
                JoinKind::Full
            } else {
                return Ok(rel);
            };
            joins += 1;
            if joins > MAX_JOINS {
                return Err(ParseError {
                    syntax: true,
                    message: format!("a query may join at most {MAX_JOINS} times"),
                    pos: at,
                    hint: Some("materialize part of the joins with CREATE TABLE/STREAM ... AS SELECT and join that".into()),
                    statement: None,
                });
            }
            let right = self.aliased_source()?;
            let mut within = None;
            if self.eat_kw("WITHIN") {
                let (before, after) = if self.eat(&Token::LParen) {
                    let b = self.duration()?;
                    self.expect(&Token::Comma)?;
                    let a = self.duration()?;
                    self.expect(&Token::RParen)?;
                    (b, a)
                } else {
                    let d = self.duration()?;
                    (d, d)
                };
                let grace = if self.eat_kws(&["GRACE", "PERIOD"]) { Some(self.duration()?) } else { None };
                within = Some(JoinWithin { before, after, grace });
            }
            self.expect_kw("ON")?;
            let on = self.expr()?;
            rel = Relation::Join { left: Box::new(rel), right: Box::new(right), kind, on, within };
        }
    }

    pub(super) fn duration(&mut self) -> PResult<Duration> {
        let n = self.unsigned_integer()? as i64;
        let unit = match self.peek().clone() {
            Token::Word(w) => w.value.to_uppercase(),
            _ => {
                return Err(self.error_here("expected a time unit", Some("use MILLISECONDS, SECONDS, MINUTES, HOURS or DAYS")));
            }
        };
        let ms = match unit.trim_end_matches('S') {
            "MILLISECOND" => 1,
            "SECOND" => 1000,
            "MINUTE" => 60_000,
            "HOUR" => 3_600_000,
            "DAY" => 86_400_000,
            _ => {
                return Err(self.error_here("expected a time unit", Some("use MILLISECONDS, SECONDS, MINUTES, HOURS or DAYS")));
            }
        };
        self.i += 1;
        Ok(Duration { millis: n.saturating_mul(ms) })
    }

    pub(super) fn window(&mut self) -> PResult<WindowSpec> {
        let kind = match self.peek().clone() {
            Token::Word(w) => w.value.to_uppercase(),
            _ => String::new(),
        };
        if !matches!(kind.as_str(), "TUMBLING" | "HOPPING" | "SESSION") {
            return Err(self.error_here("expected TUMBLING, HOPPING or SESSION", None));
        }
        self.i += 1;
        self.expect(&Token::LParen)?;
        let mut size = None;
        let mut advance = None;
        let mut retention = None;
        let mut grace = None;
        if kind == "SESSION" {
            size = Some(self.duration()?);
        }
        loop {
            if kind == "SESSION" && size.is_some() && !self.eat(&Token::Comma) {
                break;
            }
            if self.eat_kw("SIZE") {
                size = Some(self.duration()?);
            } else if self.eat_kws(&["ADVANCE", "BY"]) {
                advance = Some(self.duration()?);
            } else if self.eat_kw("RETENTION") {
                retention = Some(self.duration()?);
            } else if self.eat_kws(&["GRACE", "PERIOD"]) {
                grace = Some(self.duration()?);
            } else {
                return Err(self.error_here("expected SIZE, ADVANCE BY, RETENTION or GRACE PERIOD", None));
            }
            if kind != "SESSION" && !self.eat(&Token::Comma) {
                break;
            }
        }
        self.expect(&Token::RParen)?;
        let need_size = |s: Option<Duration>, p: &Self| s.ok_or_else(|| p.error_here("the window needs a SIZE", None));
        Ok(match kind.as_str() {
            "TUMBLING" => WindowSpec::Tumbling { size: need_size(size, self)?, retention, grace },
            "HOPPING" => WindowSpec::Hopping {
                size: need_size(size, self)?,
                advance: advance.ok_or_else(|| self.error_here("a HOPPING window needs ADVANCE BY", None))?,
                retention,
                grace,
            },
            _ => WindowSpec::Session { gap: need_size(size, self)?, retention, grace },
        })
    }
}
