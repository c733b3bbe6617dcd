//! Statements that control queries and check the environment rather than define data:
//! PAUSE, RESUME, ASSERT TOPIC / SCHEMA, and the connector statements (recognised so that
//! their answer explains that Eddy runs no connectors).

use super::*;

impl Parser<'_> {
    /// PAUSE, RESUME or ASSERT when the next word starts one; `None` otherwise.
    pub(super) fn control_statement(&mut self) -> PResult<Option<Statement>> {
        if self.eat_kw("PAUSE") {
            return Ok(Some(Statement::Pause { query_id: self.query_id_or_all()? }));
        }
        if self.eat_kw("RESUME") {
            return Ok(Some(Statement::Resume { query_id: self.query_id_or_all()? }));
        }
        if self.eat_kw("ASSERT") {
            return self.assert().map(Some);
        }
        Ok(None)
    }

    fn query_id_or_all(&mut self) -> PResult<Option<Ident>> {
        if self.eat_kw("ALL") {
            return Ok(None);
        }
        self.query_id().map(Some)
    }

    fn timeout(&mut self) -> PResult<Option<Duration>> {
        if self.eat_kw("TIMEOUT") {
            return self.duration().map(Some);
        }
        Ok(None)
    }

    fn assert(&mut self) -> PResult<Statement> {
        let exists = !self.eat_kws(&["NOT", "EXISTS"]);
        if self.eat_kw("TOPIC") {
            let topic = self.topic_name("ASSERT TOPIC 'orders' WITH (PARTITIONS=3) TIMEOUT 10 SECONDS")?;
            let props = self.with_props()?;
            let timeout = self.timeout()?;
            return Ok(Statement::AssertTopic { topic, exists, props, timeout });
        }
        if self.eat_kw("SCHEMA") {
            let subject = if self.eat_kw("SUBJECT") { Some(self.string_literal().or_else(|_| self.raw_word())?) } else { None };
            let id = if self.eat_kw("ID") { Some(self.unsigned_integer()?) } else { None };
            if subject.is_none() && id.is_none() {
                return Err(self.error_here("ASSERT SCHEMA needs a SUBJECT or an ID", Some("ASSERT SCHEMA SUBJECT 'orders-value' ID 3 TIMEOUT 5 SECONDS")));
            }
            let timeout = self.timeout()?;
            return Ok(Statement::AssertSchema { subject, id, exists, timeout });
        }
        Err(self.error_here("expected TOPIC or SCHEMA", Some("ASSERT [NOT EXISTS] TOPIC name, or ASSERT [NOT EXISTS] SCHEMA SUBJECT 'name'")))
    }

    /// A connector statement: the rest of it up to `;` is not read, since it is refused.
    pub(super) fn connector(&mut self, action: &'static str) -> Statement {
        while !matches!(self.peek(), Token::SemiColon | Token::EOF) {
            self.i += 1;
        }
        Statement::Connector { action }
    }
}
