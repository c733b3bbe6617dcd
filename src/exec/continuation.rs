//! Continuation tokens of push queries (ksqlDB's scalable push queries with
//! `ksql.query.push.v2.continuation.tokens.enabled`): where a push query's reading of its
//! source stands, per partition, after the rows its client has received. A client that
//! loses its connection runs the same query again with the last token it got
//! (`request.ksql.query.push.continuation.token`) and receives the rows after it: none
//! lost, none twice.

use serde::{Deserialize, Serialize};

use crate::log::Topic;

/// The token format this server writes.
const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContinuationToken {
    #[serde(rename = "v")]
    version: u32,
    topic: String,
    /// The next offset to read, per partition.
    offsets: Vec<i64>,
}

/// Why a continuation token cannot resume a query.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("The continuation token is not one this server wrote ({0}); run the query without it")]
    Malformed(#[source] serde_json::Error),
    #[error("The continuation token has version {0}, this server reads version {VERSION}; run the query without it")]
    Version(u32),
    #[error("The continuation token is for topic '{token}' but the query reads topic '{query}'; use the token with the query that returned it")]
    OtherTopic { token: String, query: String },
    #[error(
        "The continuation token has offsets for {token} partitions but topic '{topic}' has {partitions}; the topic changed since the token was \
         written, so run the query without it"
    )]
    Partitions { token: usize, topic: String, partitions: usize },
    #[error(
        "The continuation token's offset {offset} for partition {partition} of topic '{topic}' is past the partition's end ({end}); the topic \
         was probably dropped and created again, so run the query without it"
    )]
    PastEnd { topic: String, partition: usize, offset: i64, end: i64 },
}

impl ContinuationToken {
    /// A token for reading `topic` from `offsets` (one per partition).
    pub fn new(topic: &str, offsets: Vec<i64>) -> ContinuationToken {
        ContinuationToken { version: VERSION, topic: topic.to_string(), offsets }
    }

    pub fn parse(text: &str) -> Result<ContinuationToken, TokenError> {
        let token: ContinuationToken = serde_json::from_str(text).map_err(TokenError::Malformed)?;
        if token.version != VERSION {
            return Err(TokenError::Version(token.version));
        }
        Ok(token)
    }

    /// Where to start reading `topic`'s partitions to continue after this token.
    pub fn start_offsets(&self, topic: &Topic) -> Result<Vec<i64>, TokenError> {
        if self.topic != topic.name() {
            return Err(TokenError::OtherTopic { token: self.topic.clone(), query: topic.name().to_string() });
        }
        let partitions = topic.partitions();
        if partitions.len() != self.offsets.len() {
            return Err(TokenError::Partitions { token: self.offsets.len(), topic: self.topic.clone(), partitions: partitions.len() });
        }
        for (partition, (p, &offset)) in partitions.iter().zip(&self.offsets).enumerate() {
            let end = p.end_offset();
            if offset > end {
                return Err(TokenError::PastEnd { topic: self.topic.clone(), partition, offset, end });
            }
        }
        // Records before a partition's start were deleted (retention); its reader goes on
        // from the start, as a consumer does.
        Ok(self.offsets.clone())
    }

    /// Notes that the client has every row of `partition` before `next`.
    pub fn advance(&mut self, partition: i32, next: i64) {
        if let Some(o) = usize::try_from(partition).ok().and_then(|p| self.offsets.get_mut(p)) {
            *o = (*o).max(next);
        }
    }

    /// The token as the text a client gets and sends back.
    pub fn to_text(&self) -> String {
        serde_json::json!({"v": self.version, "topic": self.topic, "offsets": self.offsets}).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_and_only_moves_forward() {
        let mut t = ContinuationToken::new("pageviews", vec![0, 5]);
        t.advance(1, 9);
        t.advance(1, 7);
        t.advance(0, 3);
        t.advance(7, 100);
        let again = ContinuationToken::parse(&t.to_text()).unwrap();
        assert_eq!(again, ContinuationToken::new("pageviews", vec![3, 9]));
    }

    #[test]
    fn foreign_tokens_are_refused_with_the_reason() {
        assert!(matches!(ContinuationToken::parse("not a token"), Err(TokenError::Malformed(_))));
        assert!(matches!(ContinuationToken::parse(r#"{"v":9,"topic":"t","offsets":[]}"#), Err(TokenError::Version(9))));
    }
}
