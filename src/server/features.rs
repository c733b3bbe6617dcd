//! `POST /features/{table}`: online feature lookups by key, and `GET /openapi.json`, the
//! OpenAPI document of Eddy's own endpoints.

use crate::engine::ServerFault;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{ApiError, AppState};
use crate::engine::{EngineError, FeatureKey, MAX_FEATURE_KEYS};
use crate::state::ReadMode;

const OPENAPI: &str = include_str!("openapi.json");

pub async fn lookup(State(state): State<AppState>, Path(table): Path<String>, body: Bytes) -> Result<Response, ApiError> {
    let mut body: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON ({e}); send {{\"keys\": [\"k1\", \"k2\"]}}")))?;
    let keys = match body.get_mut("keys").map(Value::take) {
        Some(Value::Array(keys)) => keys,
        Some(_) => return Err(ApiError::bad_request("'keys' must be an array of keys, e.g. {\"keys\": [\"u1\", \"u2\"]}")),
        None => return Err(ApiError::bad_request("the request has no 'keys' field; send {\"keys\": [\"u1\", \"u2\"]}")),
    };
    if keys.len() > MAX_FEATURE_KEYS {
        return Err(ApiError::bad_request(format!("{} keys requested; send at most {MAX_FEATURE_KEYS} per request", keys.len())));
    }
    let keys: Vec<FeatureKey> = keys.into_iter().map(FeatureKey::from).collect();
    let started = std::time::Instant::now();
    let out = read_features(&state, table, keys).await?;
    state.metrics.observe_feature_lookup(started.elapsed());
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], out).into_response())
}

/// Looks `keys` up in `table`: rows in memory on this thread, otherwise on a blocking one.
/// Returns the response body.
pub(super) async fn read_features(state: &AppState, table: String, keys: Vec<FeatureKey<'_>>) -> Result<String, EngineError> {
    if let Some(out) = state.engine.feature_lookup(&table, &keys, ReadMode::MemoryOnly)? {
        return Ok(out);
    }
    let keys: Vec<FeatureKey<'static>> = keys.into_iter().map(FeatureKey::into_owned).collect();
    let engine = state.engine.clone();
    tokio::task::spawn_blocking(move || engine.feature_lookup(&table, &keys, ReadMode::Any))
        .await
        .map_err(|e| EngineError::fault(ServerFault::Task { what: "the feature lookup", source: e }))??
        .ok_or_else(|| EngineError::inconsistent("a feature lookup that may read the disk returned no answer"))
}

pub async fn openapi() -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}
