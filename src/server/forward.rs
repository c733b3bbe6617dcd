//! Any server of a service on a Kafka cluster answers any request. Statements go to the
//! server that runs them (the first of the service's roster, whose advertised URL the
//! service's group hands every member): this one forwards them there and streams the
//! answer back; a forwarded request carries a header that keeps it from being forwarded
//! again. Queries and feature lookups are answered here: push queries read the cluster's
//! topics, and pull queries read this server's state, whose partitions run by other
//! servers are copies kept from their changelogs — how old those may be is in the
//! `x-eddy-standby-staleness-ms` header of every pull answer of a server that does not
//! run every partition.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};
use crate::exec::Share;

/// Set on forwarded requests.
const FORWARDED: &str = "x-eddy-forwarded";

/// How old the copies of other servers' state an answer read may be (ms).
const STALENESS: &str = "x-eddy-standby-staleness-ms";

/// Whether a request to `path` reads query state (a pull query or a lookup may).
fn reads_state(path: &str) -> bool {
    path == "/query" || path == "/query-stream" || path.starts_with("/features/")
}

/// Forwards statements to the server that runs them when this one does not; says how
/// stale the copies a read may have used are.
pub async fn to_active(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let target = state.active_url().filter(|_| path == "/ksql" && !request.headers().contains_key(FORWARDED));
    let Some(url) = target else { return answer_here(&state, &path, request, next).await };
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, state.guard.max_body_bytes()).await {
        Ok(b) => b,
        Err(e) => return ApiError::bad_request(format!("cannot read the request: {e}")).into_response(),
    };
    // Only catalog changes go to the statement server: SHOW, DESCRIBE and the like say
    // what this server knows and runs.
    let sql = serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|v| v["ksql"].as_str().map(String::from));
    if !sql.is_some_and(|sql| state.engine.changes_catalog(&sql)) {
        return answer_here(&state, &path, Request::from_parts(parts, Body::from(body)), next).await;
    }
    forward(&state, &url, &parts, body).await.unwrap_or_else(|e| e.into_response())
}

/// Answers a request on this server; a read of query state says how old its copies of
/// other servers' partitions may be.
async fn answer_here(state: &AppState, path: &str, request: Request, next: Next) -> Response {
    let partial = state.role.is_some() && state.engine.share() != Share::All;
    let mut answer = next.run(request).await;
    if partial && reads_state(path) {
        let ms = state.engine.standby_staleness_ms().unwrap_or(-1);
        answer.headers_mut().insert(STALENESS, HeaderValue::from(ms));
    }
    answer
}

async fn forward(state: &AppState, base: &str, parts: &Parts, body: Bytes) -> Result<Response, ApiError> {
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut out = state.http.request(parts.method.clone(), format!("{base}{path}")).header(FORWARDED, "1").body(body);
    for name in ["content-type", "accept", "authorization"] {
        if let Some(v) = parts.headers.get(name) {
            out = out.header(name, v);
        }
    }
    let answer = out.send().await.map_err(|e| {
        ApiError::generic(
            StatusCode::SERVICE_UNAVAILABLE,
            50300,
            format!(
                "the server that runs this service's statements, at {base}, did not answer ({e}); retry shortly (when it is gone, another takes its place)"
            ),
        )
    })?;
    let mut response = Response::builder().status(answer.status().as_u16());
    if let Some(v) = answer.headers().get("content-type") {
        response = response.header(HeaderName::from_static("content-type"), v.as_bytes());
    }
    let answered = answer.bytes().await.map_err(|e| ApiError::internal(format!("the statement server's answer was cut short: {e}")))?;
    // What the client ran is here before it is told: its next request to this server sees it.
    if let Some(seq) = last_command(&answered) {
        super::routes::await_command_seq(state, seq).await?;
    }
    response.body(Body::from(answered)).map_err(|e| ApiError::internal(format!("cannot pass the statement server's answer on: {e}")))
}

/// The last command sequence number an answer of /ksql names.
fn last_command(answer: &[u8]) -> Option<i64> {
    let entities: Vec<serde_json::Value> = serde_json::from_slice(answer).ok()?;
    entities.iter().filter_map(|e| e["commandSequenceNumber"].as_i64()).filter(|s| *s >= 0).max()
}
