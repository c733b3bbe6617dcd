//! A standby of a service on a Kafka cluster forwards what only the active server can
//! answer — statements, pull and push queries, feature lookups — to the active server
//! (its advertised URL, which the service's group hands every member) and streams the
//! answer back, so a client may send anything to any server of the service. A forwarded
//! request carries a header that keeps it from being forwarded again.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};

/// Set on forwarded requests.
const FORWARDED: &str = "x-eddy-forwarded";

/// Whether only the active server answers requests to `path`.
fn answered_by_the_active_server(path: &str) -> bool {
    matches!(path, "/ksql" | "/query" | "/query-stream" | "/close-query") || path.starts_with("/features/")
}

/// Forwards the request to the active server when this server stands by.
pub async fn to_active(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let target = state.active_url().filter(|_| answered_by_the_active_server(request.uri().path()) && !request.headers().contains_key(FORWARDED));
    match target {
        Some(url) => forward(&state, &url, request).await.unwrap_or_else(|e| e.into_response()),
        None => next.run(request).await,
    }
}

async fn forward(state: &AppState, base: &str, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, state.guard.max_body_bytes()).await.map_err(|e| ApiError::bad_request(format!("cannot read the request: {e}")))?;
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
