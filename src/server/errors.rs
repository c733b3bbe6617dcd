//! ksqlDB's error bodies: `statement_error` and `generic_error` with error codes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::engine::EngineError;

/// An error response in ksqlDB's format.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: Value,
}

impl ApiError {
    pub fn generic(status: StatusCode, code: u32, message: impl Into<String>) -> ApiError {
        ApiError { status, body: json!({"@type": "generic_error", "error_code": code, "message": message.into()}) }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::generic(StatusCode::BAD_REQUEST, 40000, message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::generic(StatusCode::FORBIDDEN, 40300, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::generic(StatusCode::NOT_FOUND, 40400, message)
    }

    /// A rejected statement (40001), with the statement and what ran before it.
    fn statement(message: String, statement: String, entities: Vec<serde_json::Value>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            body: json!({"@type": "statement_error", "error_code": 40001, "message": message, "statementText": statement, "entities": entities}),
        }
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::generic(StatusCode::INTERNAL_SERVER_ERROR, 50000, message)
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        match e {
            EngineError::Statement { reason, statement, entities } if matches!(*reason, crate::engine::Rejection::AssertionFailed(_)) => ApiError {
                status: StatusCode::EXPECTATION_FAILED,
                body: json!({"@type": "statement_error", "error_code": 41700, "message": reason.to_string(), "statementText": statement, "entities": entities}),
            },
            EngineError::Statement { reason, statement, entities } => ApiError::statement(reason.to_string(), statement, entities),
            EngineError::Parse { error, statement, entities } => ApiError::statement(error.to_string(), statement, entities),
            EngineError::WrongEndpoint { statement, entities } => {
                let message = EngineError::WrongEndpoint { statement: String::new(), entities: vec![] }.to_string();
                ApiError {
                    status: StatusCode::BAD_REQUEST,
                    body: json!({"@type": "statement_error", "error_code": 40002, "message": message, "statementText": statement, "entities": entities}),
                }
            }
            EngineError::BadRequest(m) => ApiError::bad_request(m),
            EngineError::NotFound(m) => ApiError::not_found(m),
            e @ (EngineError::Standby(_) | EngineError::CommandNotApplied { .. } | EngineError::PeerUnavailable { .. }) => {
                ApiError::generic(StatusCode::SERVICE_UNAVAILABLE, 50300, e.to_string())
            }
            EngineError::Internal(fault) => {
                let message = fault.to_string();
                tracing::error!("internal error: {}", crate::error_chain(&*fault));
                ApiError::internal(message)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, [(axum::http::header::CONTENT_TYPE, "application/json")], self.body.to_string()).into_response()
    }
}
