//! The engine's errors: a statement that does not parse, one the engine rejects (and why,
//! with the layer's own error kept as the cause), a malformed request, and the server's own
//! failures. The REST edge (`server::errors`) turns them into ksqlDB's bodies.

use serde_json::Value;

use crate::catalog::CatalogError;
use crate::exec::ExecError;
use crate::log::LogError;
use crate::sql::{SqlError, parser};
use crate::state::StateError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A statement could not be parsed (HTTP 400, error code 40001).
    #[error("{error}")]
    Parse {
        #[source]
        error: Box<parser::ParseError>,
        statement: String,
        entities: Vec<Value>,
    },
    /// A statement was rejected (HTTP 400, error code 40001).
    #[error("{reason}")]
    Statement {
        #[source]
        reason: Box<Rejection>,
        statement: String,
        entities: Vec<Value>,
    },
    /// SELECT or PRINT sent to /ksql (40002).
    #[error("The following statement types should be issued to the websocket endpoint '/query':\n\t* PRINT\n\t* SELECT")]
    WrongEndpoint { statement: String, entities: Vec<Value> },
    /// A malformed request (40000).
    #[error("{0}")]
    BadRequest(String),
    /// A named thing does not exist (HTTP 404, 40400).
    #[error("{0}")]
    NotFound(String),
    /// The server failed (50000).
    #[error(transparent)]
    Internal(Box<ServerFault>),
    /// Another server of this server's service runs the service's statements, and it could
    /// not be reached (HTTP 503, 50300).
    #[error(
        "another server of service '{0}' runs its statements and this one could not pass the statement on; retry shortly (the service's servers \
            are choosing which one runs them)"
    )]
    Standby(String),
    /// A request asked to run after a command (`commandSequenceNumber`) that this server
    /// has not applied in time (HTTP 503, 50300).
    #[error(
        "timed out waiting for command {seq} of the command topic to be applied on this server (it has applied those before {applied}); retry, \
            or send the request to the server that ran the command"
    )]
    CommandNotApplied { seq: i64, applied: i64 },
    /// A scan needs the rows of partitions another server runs, and that server did not
    /// send them (HTTP 503, 50300).
    #[error(
        "the server that runs part of this table's partitions, at {url}, did not send its rows ({detail}); retry shortly (its partitions move to \
            another server within the session timeout), or set ksql.query.pull.enable.standby.reads to true to read this server's copy"
    )]
    PeerUnavailable { url: String, detail: String },
}

/// Why the engine rejected a statement.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// The SQL layer refused it (binding, planning, a `WITH` clause).
    #[error(transparent)]
    Sql(SqlError),
    /// The catalog refused it (a name taken, a source in use).
    #[error(transparent)]
    Catalog(CatalogError),
    /// The log refused it (a topic name, a partition count).
    #[error(transparent)]
    Log(LogError),
    /// A value the statement gives does not encode in the source's format.
    #[error(transparent)]
    Format(crate::format::FormatError),
    /// A rule of the statement's kind, worded as ksqlDB words it (a source that does not
    /// exist, a type that does not fit).
    #[error("{0}")]
    Rule(String),
    /// An ASSERT statement's assertion did not hold within its timeout (HTTP 417, 41700).
    #[error("{0}")]
    AssertionFailed(String),
    /// A rule that failed on another layer's error, which is kept.
    #[error("{message}")]
    Caused {
        message: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The server's own failure while running a statement: not the statement's fault.
#[derive(Debug, thiserror::Error)]
pub enum ServerFault {
    #[error(transparent)]
    Catalog(CatalogError),
    #[error(transparent)]
    Log(LogError),
    #[error(transparent)]
    Exec(ExecError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Sql(SqlError),
    #[error(transparent)]
    StoredQuery(parser::ParseError),
    #[error("stored query {id} does not parse: {source}")]
    StoredQueryUnparsable { id: String, source: parser::ParseError },
    #[error("{what} failed: {source}")]
    Task { what: &'static str, source: tokio::task::JoinError },
    #[error("stored row is not UTF-8: {0}")]
    StoredRowNotUtf8(#[source] std::str::Utf8Error),
    /// The catalog or a plan is not in the shape the engine relies on.
    #[error("{0}")]
    Inconsistent(String),
}

impl EngineError {
    /// A statement rejected by a rule of its kind.
    pub(crate) fn rule(message: impl Into<String>) -> EngineError {
        Rejection::Rule(message.into()).into()
    }

    /// A statement rejected by a rule that failed on another layer's error.
    pub(crate) fn rule_caused(message: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> EngineError {
        Rejection::Caused { message: message.into(), source: Box::new(source) }.into()
    }

    pub(crate) fn fault(f: impl Into<ServerFault>) -> EngineError {
        EngineError::Internal(Box::new(f.into()))
    }

    /// The catalog or a plan is not what the engine relies on.
    pub(crate) fn inconsistent(message: impl Into<String>) -> EngineError {
        EngineError::fault(ServerFault::Inconsistent(message.into()))
    }

    /// Attaches the statement text (and the entities of statements that ran before it).
    pub(crate) fn for_statement(self, text: &str, done: &[Value]) -> EngineError {
        match self {
            EngineError::Statement { reason, .. } => EngineError::Statement { reason, statement: text.to_string(), entities: done.to_vec() },
            EngineError::Parse { error, .. } => EngineError::Parse { error, statement: text.to_string(), entities: done.to_vec() },
            EngineError::WrongEndpoint { .. } => EngineError::WrongEndpoint { statement: text.to_string(), entities: done.to_vec() },
            other => other,
        }
    }
}

impl From<Rejection> for EngineError {
    fn from(reason: Rejection) -> Self {
        EngineError::Statement { reason: Box::new(reason), statement: String::new(), entities: Vec::new() }
    }
}

impl From<SqlError> for EngineError {
    fn from(e: SqlError) -> Self {
        match e {
            SqlError::Parse(error) => EngineError::Parse { error: Box::new(error), statement: String::new(), entities: Vec::new() },
            other => Rejection::Sql(other).into(),
        }
    }
}

impl From<CatalogError> for EngineError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::Log(ref l) if l.is_storage() => EngineError::fault(ServerFault::Catalog(e)),
            CatalogError::BadCommand(_) | CatalogError::CommandTopicTruncated { .. } => EngineError::fault(ServerFault::Catalog(e)),
            other => Rejection::Catalog(other).into(),
        }
    }
}

impl From<LogError> for EngineError {
    fn from(e: LogError) -> Self {
        if e.is_storage() { EngineError::fault(ServerFault::Log(e)) } else { Rejection::Log(e).into() }
    }
}

impl From<ExecError> for EngineError {
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::Log(l) => l.into(),
            other => EngineError::fault(ServerFault::Exec(other)),
        }
    }
}

impl From<StateError> for EngineError {
    fn from(e: StateError) -> Self {
        EngineError::fault(e)
    }
}
