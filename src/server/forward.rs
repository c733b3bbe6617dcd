//! A standby of a service on a Kafka cluster forwards what only the active server can
//! answer — statements, pull and push queries, feature lookups — to the active server
//! (its advertised URL, which the service's group hands every member) and streams the
//! answer back, so a client may send anything to any server of the service. A forwarded
//! request carries a header that keeps it from being forwarded again.
//!
//! When the active server does not answer (it died and no standby took over yet), a pull
//! query that sets ksqlDB's `ksql.query.pull.enable.standby.reads` is answered from this
//! standby's warm copy of the state, with how old that copy may be in the
//! `x-eddy-standby-staleness-ms` header.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};

/// Set on forwarded requests.
const FORWARDED: &str = "x-eddy-forwarded";

/// How old the state a standby answered from may be (ms).
const STALENESS: &str = "x-eddy-standby-staleness-ms";

/// Whether only the active server answers requests to `path`.
fn answered_by_the_active_server(path: &str) -> bool {
    matches!(path, "/ksql" | "/query" | "/query-stream" | "/close-query") || path.starts_with("/features/")
}

/// Forwards the request to the active server when this server stands by.
pub async fn to_active(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let target = state.active_url().filter(|_| answered_by_the_active_server(request.uri().path()) && !request.headers().contains_key(FORWARDED));
    let Some(url) = target else { return next.run(request).await };
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, state.guard.max_body_bytes()).await {
        Ok(b) => b,
        Err(e) => return ApiError::bad_request(format!("cannot read the request: {e}")).into_response(),
    };
    match forward(&state, &url, &parts, body.clone()).await {
        Ok(r) => r,
        Err(unreachable) if parts.uri.path() == "/query" && allows_standby_reads(&body) => {
            let mut answer = next.run(Request::from_parts(parts, Body::from(body))).await;
            if let Some(ms) = state.engine.standby_staleness_ms() {
                answer.headers_mut().insert(STALENESS, HeaderValue::from(ms));
            }
            tracing::debug!("answered a pull query from this standby's copy: {unreachable:?}");
            answer
        }
        Err(e) => e.into_response(),
    }
}

/// Whether a /query body sets `ksql.query.pull.enable.standby.reads` to true.
fn allows_standby_reads(body: &Bytes) -> bool {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else { return false };
    ["streamsProperties", "properties"].iter().any(|field| {
        v[field].as_object().is_some_and(|props| {
            props.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case(crate::engine::STANDBY_READS)
                    && (v == &serde_json::Value::Bool(true) || v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("true")))
            })
        })
    })
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
            format!("this server stands by and the service's active server at {base} did not answer ({e}); retry shortly"),
        )
    })?;
    let mut response = Response::builder().status(answer.status().as_u16());
    for name in ["content-type", "transfer-encoding"] {
        if let Some(v) = answer.headers().get(name) {
            response = response.header(HeaderName::from_static(name), v.as_bytes());
        }
    }
    response.body(Body::from_stream(answer.bytes_stream())).map_err(|e| ApiError::internal(format!("cannot pass the active server's answer on: {e}")))
}
