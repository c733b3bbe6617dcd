//! /ksql, /info, /healthcheck, /status and fallbacks.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::engine::Session;

fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// Parses a request body as a JSON object, with a 400 that says what is wrong.
pub(super) fn parse_body(body: &Bytes) -> Result<serde_json::Map<String, Value>, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON ({e}); send an object like {{\"ksql\": \"SHOW STREAMS;\"}}")))?;
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::bad_request("the request body must be a JSON object, e.g. {\"ksql\": \"SHOW STREAMS;\"}")),
    }
}

/// How long a request that names a `commandSequenceNumber` waits for this server to apply
/// that command (ksqlDB's default `ksql.server.command.response.timeout.ms`).
const COMMAND_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Waits, when the body names a `commandSequenceNumber`, until this server applied it.
pub(super) async fn await_command(state: &AppState, body: &serde_json::Map<String, Value>) -> Result<(), ApiError> {
    let Some(seq) = body.get("commandSequenceNumber").and_then(Value::as_i64).filter(|s| *s >= 0) else { return Ok(()) };
    await_command_seq(state, seq).await
}

/// Waits until this server applied the command at `seq`.
pub(super) async fn await_command_seq(state: &AppState, seq: i64) -> Result<(), ApiError> {
    let engine = state.engine.clone();
    tokio::task::spawn_blocking(move || engine.await_command(seq, COMMAND_WAIT)).await.map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(())
}

/// Reads `streamsProperties`/`properties` and `sessionVariables` into a session.
pub(super) fn session_from(body: &serde_json::Map<String, Value>, props_key: &str) -> Result<Session, ApiError> {
    let to_map = |key: &str| -> Result<BTreeMap<String, String>, ApiError> {
        match body.get(key) {
            None | Some(Value::Null) => Ok(BTreeMap::new()),
            Some(Value::Object(m)) => Ok(string_map(m)),
            Some(_) => Err(ApiError::bad_request(format!("'{key}' must be a JSON object of names to values"))),
        }
    };
    Ok(Session { properties: to_map(props_key)?, variables: to_map("sessionVariables")?, request_properties: to_map("requestProperties")? })
}

/// A JSON object of settings as names to text (strings as they are, other values as JSON).
pub(super) fn string_map(m: &serde_json::Map<String, Value>) -> BTreeMap<String, String> {
    m.iter()
        .map(|(k, v)| {
            (
                k.clone(),
                match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
            )
        })
        .collect()
}

pub(super) fn string_field(body: &serde_json::Map<String, Value>, key: &str) -> Result<String, ApiError> {
    match body.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ApiError::bad_request(format!("'{key}' must be a string of SQL"))),
        None => Err(ApiError::bad_request(format!("the request has no '{key}' field; send {{\"{key}\": \"...\"}}"))),
    }
}

pub async fn ksql(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let body = parse_body(&body)?;
    let sql = string_field(&body, "ksql")?;
    let mut session = session_from(&body, "streamsProperties")?;
    await_command(&state, &body).await?;
    let engine = state.engine.clone();
    let entities = tokio::task::spawn_blocking(move || engine.execute(&sql, &mut session))
        .await
        .map_err(|e| ApiError::internal(format!("statement execution failed: {e}")))??;
    Ok(json_response(StatusCode::OK, &Value::Array(entities)))
}

/// `/` sends API clients to `/info` (as ksqlDB does) and browsers to the console.
pub async fn root(headers: axum::http::HeaderMap) -> Response {
    let to = if super::console::wants_html(&headers) { super::console::CONSOLE } else { "/info" };
    (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, to)]).into_response()
}

pub async fn info(State(state): State<AppState>) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"KsqlServerInfo": {
            "version": env!("CARGO_PKG_VERSION"),
            "kafkaClusterId": "eddy",
            "ksqlServiceId": state.engine.config().service_id,
            "serverStatus": "RUNNING"
        }}),
    )
}

/// The server serves; `commandRunner` says whether its catalog was restored whole: records
/// of the command topic that could not be read, and commands that could not be applied
/// (see `/status` and `SHOW QUERIES` for which).
pub async fn healthcheck(State(state): State<AppState>) -> Response {
    let restore = state.engine.restore_failures();
    let unreadable = restore.unreadable_commands();
    let failed = restore.all().len();
    json_response(
        StatusCode::OK,
        &json!({
            "isHealthy": true,
            "details": {
                "metastore": {"isHealthy": true},
                "kafka": {"isHealthy": true},
                "commandRunner": {"isHealthy": unreadable == 0 && failed == 0, "unreadableCommands": unreadable, "failedCommands": failed}
            },
            "serverState": "READY",
            // On a Kafka cluster: whether this server runs its service's statements, and
            // which partitions of the queries it runs.
            "serviceRole": if state.engine.is_active() { "active" } else { "member" },
            "queryPartitions": match state.engine.share() {
                crate::exec::Share::All => json!("all"),
                crate::exec::Share::Of { rank, count, .. } => json!({"rank": rank, "servers": count}),
                crate::exec::Share::Nothing => json!("none"),
            }
        }),
    )
}

pub async fn status(State(state): State<AppState>) -> Result<Response, ApiError> {
    let engine = state.engine.clone();
    let ids = tokio::task::spawn_blocking(move || engine.command_statuses()).await.map_err(|e| ApiError::internal(e.to_string()))??;
    let statuses: serde_json::Map<String, Value> = ids.into_iter().map(|(id, status)| (id, json!(status))).collect();
    Ok(json_response(StatusCode::OK, &json!({"commandStatuses": statuses})))
}

pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no endpoint {}; the API serves /ksql, /query, /query-stream, /close-query, /info, /healthcheck and /status", uri.path()))
}
