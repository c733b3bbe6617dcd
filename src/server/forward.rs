//! Any server of a service on a Kafka cluster answers any request. Statements go to the
//! server that runs them (the first of the service's roster, whose advertised URL the
//! service's group hands every member): this one forwards them there and passes the
//! answer back once it applied the command itself. A pull query or feature lookup whose
//! keys live in partitions another server runs goes to that server, which answers from
//! its live state; when it does not answer (it died, and its partitions have not moved
//! yet), a feature lookup, or a pull query that sets ksqlDB's
//! `ksql.query.pull.enable.standby.reads`, is answered here from this server's copy.
//! Other reads (scans, push queries, PRINT) are answered here: push queries read the
//! cluster's topics, scans gather the other servers' rows of their partitions
//! (`engine::gather`). An answer read from copies (kept from the other servers'
//! changelogs) says how old they may be in the `x-eddy-standby-staleness-ms` header; one
//! another server answered names it in `x-eddy-answered-by`. A forwarded request carries a header that keeps it from being
//! forwarded again.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{ApiError, AppState};
use crate::exec::Share;

/// Set on forwarded requests.
const FORWARDED: &str = "x-eddy-forwarded";

/// How old the copies of other servers' state an answer read may be (ms).
const STALENESS: &str = "x-eddy-standby-staleness-ms";

/// Set on a read another server answered: its URL.
const ANSWERED_BY: &str = "x-eddy-answered-by";

/// Whether a request to `path` reads query state (a pull query or a lookup may; a peer's
/// request for its rows is answered where it is sent).
fn reads_state(path: &str) -> bool {
    path == "/query" || path == "/query-stream" || path.starts_with("/features/")
}

/// Sends each request where it is best answered (see the module's documentation).
pub async fn to_active(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let partial = matches!(state.engine.share(), Share::Of { .. });
    let routed = state.role.is_some() && !request.headers().contains_key(FORWARDED) && (path == "/ksql" || (partial && reads_state(&path)));
    if !routed {
        return answer_here(&state, &path, request, next).await;
    }
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, state.guard.max_body_bytes()).await {
        Ok(b) => b,
        Err(e) => return ApiError::bad_request(format!("cannot read the request: {e}")).into_response(),
    };
    let request = |body: Bytes| Request::from_parts(parts.clone(), Body::from(body));
    if path == "/ksql" {
        // Only catalog changes go to the statement server: SHOW, DESCRIBE and the like say
        // what this server knows and runs.
        let sql = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v["ksql"].as_str().map(String::from));
        let Some(url) = state.active_url().filter(|_| sql.is_some_and(|sql| state.engine.changes_catalog(&sql))) else {
            return answer_here(&state, &path, request(body), next).await;
        };
        return match forward(&state, &url, &parts, body).await {
            Ok(answer) => answer,
            Err(e) => ApiError::generic(
                StatusCode::SERVICE_UNAVAILABLE,
                50300,
                format!(
                    "the server that runs this service's statements, at {url}, did not answer ({e}); retry shortly (when it is gone, another takes its place)"
                ),
            )
            .into_response(),
        };
    }
    let Some(url) = key_owner(&state, &path, &body).await else {
        return answer_here(&state, &path, request(body), next).await;
    };
    match forward(&state, &url, &parts, body.clone()).await {
        Ok(mut answer) => {
            if let Ok(v) = HeaderValue::from_str(&url) {
                answer.headers_mut().insert(ANSWERED_BY, v);
            }
            answer
        }
        Err(e) if path.starts_with("/features/") || allows_standby_reads(&body) => {
            tracing::debug!("the server at {url} did not answer a read ({e}); answering from this server's copy");
            answer_here(&state, &path, request(body), next).await
        }
        Err(e) => ApiError::generic(
            StatusCode::SERVICE_UNAVAILABLE,
            50300,
            format!(
                "the server that runs the partition of these keys, at {url}, did not answer ({e}); retry shortly (its partitions move to another \
                server within the session timeout), or set ksql.query.pull.enable.standby.reads to true to read this server's copy"
            ),
        )
        .into_response(),
    }
}

/// The URL of the one other server that runs the partitions a pull query's or feature
/// lookup's keys live in (None: this server answers).
async fn key_owner(state: &AppState, path: &str, body: &Bytes) -> Option<String> {
    let parsed: serde_json::Map<String, Value> = super::routes::parse_body(body).ok()?;
    let engine = state.engine.clone();
    let owner = if let Some(table) = path.strip_prefix("/features/") {
        let table = table.to_string();
        let keys: Vec<crate::engine::FeatureKey<'static>> = parsed.get("keys")?.as_array()?.iter().cloned().map(crate::engine::FeatureKey::from).collect();
        tokio::task::spawn_blocking(move || engine.feature_owner(&table, &keys)).await
    } else {
        let (sql_key, props_key) = if path == "/query" { ("ksql", "streamsProperties") } else { ("sql", "properties") };
        let sql = parsed.get(sql_key)?.as_str()?.to_string();
        let session = super::routes::session_from(&parsed, props_key).ok()?;
        tokio::task::spawn_blocking(move || engine.pull_owner(&sql, &session)).await
    };
    let rank = owner.ok()?.ok()??;
    let role = state.role.as_ref()?.borrow().clone();
    role.members.get(rank).cloned().filter(|u| !u.is_empty())
}

/// Answers a request on this server; a read of query state says how old its copies of
/// other servers' partitions may be.
async fn answer_here(state: &AppState, path: &str, request: Request, next: Next) -> Response {
    let partial = state.role.is_some() && state.engine.share() != Share::All;
    let mut answer = next.run(request).await;
    let live = answer.extensions().get::<super::query::LiveAnswer>().is_some();
    if partial && reads_state(path) && !live {
        let ms = state.engine.standby_staleness_ms().unwrap_or(-1);
        answer.headers_mut().insert(STALENESS, HeaderValue::from(ms));
    }
    answer
}

/// Whether a /query or /query-stream body sets `ksql.query.pull.enable.standby.reads`.
fn allows_standby_reads(body: &Bytes) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(body) else { return false };
    ["streamsProperties", "properties"].iter().any(|field| {
        v[field].as_object().is_some_and(|props| {
            props.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case("ksql.query.pull.enable.standby.reads")
                    && (v == &Value::Bool(true) || v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("true")))
            })
        })
    })
}

/// Why a forwarded request got no answer.
#[derive(Debug, thiserror::Error)]
enum Unanswered {
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    #[error("{0}")]
    Here(String),
}

/// Sends the request to the server at `base` and passes its answer on; after a statement,
/// waits until this server applied the commands the answer names.
async fn forward(state: &AppState, base: &str, parts: &Parts, body: Bytes) -> Result<Response, Unanswered> {
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut out = state.http.request(parts.method.clone(), format!("{base}{path}")).header(FORWARDED, "1").body(body);
    for name in ["content-type", "accept", "authorization"] {
        if let Some(v) = parts.headers.get(name) {
            out = out.header(name, v);
        }
    }
    let answer = out.send().await?;
    let mut response = Response::builder().status(answer.status().as_u16());
    for name in ["content-type", STALENESS] {
        if let Some(v) = answer.headers().get(name) {
            response = response.header(HeaderName::from_static(name), v.as_bytes());
        }
    }
    let answered = answer.bytes().await?;
    // What the client ran is here before it is told: its next request to this server sees it.
    if parts.uri.path() == "/ksql"
        && let Some(seq) = last_command(&answered)
        && let Err(e) = super::routes::await_command_seq(state, seq).await
    {
        tracing::warn!("the statement ran, but this server has not applied it yet: {:?}", e.into_response().status());
    }
    response.body(Body::from(answered)).map_err(|e| Unanswered::Here(e.to_string()))
}

/// The last command sequence number an answer of /ksql names.
fn last_command(answer: &[u8]) -> Option<i64> {
    let entities: Vec<Value> = serde_json::from_slice(answer).ok()?;
    entities.iter().filter_map(|e| e["commandSequenceNumber"].as_i64()).filter(|s| *s >= 0).max()
}
