//! Where a push query starts, and whether its client follows it with continuation tokens
//! (ksqlDB's scalable push queries: `ksql.query.push.v2.enabled`,
//! `ksql.query.push.v2.continuation.tokens.enabled`, and the token a client sends back in
//! its request properties as `request.ksql.query.push.continuation.token`).
//!
//! Every Eddy push query is a private reader of the log with no consumer group or
//! state of its own, so each one already scales as ksqlDB's v2 push queries do; the
//! setting is accepted and tokens are given to the queries ksqlDB gives them to: those that
//! filter and project one stream or table.

use super::{Engine, EngineError, Session};
use crate::exec::PushStart;
use crate::exec::continuation::ContinuationToken;
use crate::sql::planner::SelectPlan;

/// The client property that asks for continuation tokens.
pub const TOKENS_ENABLED: &str = "ksql.query.push.v2.continuation.tokens.enabled";
/// The request property that carries a token to continue from.
pub const CONTINUATION_TOKEN: &str = "request.ksql.query.push.continuation.token";

impl Session {
    /// The continuation token the client sent, if any.
    pub fn continuation_token(&self) -> Option<&str> {
        self.request_properties.iter().find(|(k, _)| k.eq_ignore_ascii_case(CONTINUATION_TOKEN)).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }
}

impl Engine {
    /// Whether the client asked for continuation tokens (or ALTER SYSTEM did for all).
    pub(super) fn wants_continuation_tokens(&self, session: &Session) -> bool {
        let properties = self.query_properties(session);
        properties.iter().find(|(k, _)| k.eq_ignore_ascii_case(TOKENS_ENABLED)).is_some_and(|(_, v)| v.trim().eq_ignore_ascii_case("true"))
    }

    /// Where a push query that filters and projects one source starts: after the client's
    /// continuation token, or at the offset reset's end of each partition.
    pub(super) fn push_start(&self, plan: &SelectPlan, session: &Session) -> Result<PushStart, EngineError> {
        let Some(text) = session.continuation_token() else {
            return Ok(PushStart::Reset(self.offset_reset(session)));
        };
        let token = ContinuationToken::parse(text).map_err(|e| EngineError::rule_caused(e.to_string(), e))?;
        let topic = self.log.topic(&plan.source.topic).map_err(|e| EngineError::rule_caused(e.to_string(), e))?;
        let offsets = token.start_offsets(&topic).map_err(|e| EngineError::rule_caused(e.to_string(), e))?;
        Ok(PushStart::At(offsets))
    }

    /// Refuses a continuation token for a query that cannot continue from one.
    pub(super) fn refuse_continuation_token(&self, session: &Session, what: &str) -> Result<(), EngineError> {
        if session.continuation_token().is_some() {
            return Err(EngineError::rule(format!(
                "A continuation token continues a push query that reads one stream or table with WHERE and SELECT; this query {what}. Run it \
                 without '{CONTINUATION_TOKEN}'."
            )));
        }
        Ok(())
    }
}
