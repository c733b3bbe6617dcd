//! ksqlDB's cluster routes, answered for the one Eddy server: `/status/{type}/{entity}/{action}`
//! (one command's status), `/clusterStatus`, `/is_valid_property/{name}`, `/lag` (lag
//! reports other servers would send; a single server has none to share) and
//! `/ksql/terminate` (terminate every query and drop every source).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::errors::ApiError;
use super::routes::parse_body;
use crate::exec::Share;

fn json_ok(body: &Value) -> Response {
    (StatusCode::OK, [(axum::http::header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

pub async fn command_status(State(state): State<AppState>, Path((kind, entity, action)): Path<(String, String, String)>) -> Result<Response, ApiError> {
    let engine = state.engine.clone();
    let ids = tokio::task::spawn_blocking(move || engine.command_statuses()).await.map_err(|e| ApiError::internal(e.to_string()))??;
    let wanted = format!("{kind}/{entity}/{action}");
    match ids.into_iter().find(|(id, _)| *id == wanted) {
        Some((_, status)) => Ok(json_ok(&json!({"status": status, "message": format!("{kind} {entity}: {action} {}", status.to_lowercase())}))),
        None => Err(ApiError::not_found(format!("Command not found: {wanted}. GET /status lists the commands"))),
    }
}

/// Every server of the service and, per query, the source partitions it runs (active) and
/// those it keeps copies of (standby): alone, this server runs them all; on a cluster the
/// service's roster says which server runs which partitions (every server applies the
/// placement), and the servers it names keep copies (`--standby-replicas`).
pub async fn cluster_status(State(state): State<AppState>) -> Response {
    let now = chrono::Utc::now().timestamp_millis();
    let engine = &state.engine;
    let role = state.role.as_ref().map(|r| r.borrow().clone());
    let hosts: Vec<(String, Share)> = match role {
        Some(r) if r.rank.is_some() => {
            // Every server's share by the service's placement (this one's as it runs it).
            let count = r.members.len();
            let placement = match super::service_role::share_of(&r) {
                Share::Of { placement, .. } => Some(placement),
                _ => None,
            };
            r.members
                .iter()
                .enumerate()
                .map(|(i, url)| {
                    let share = match (&placement, i == r.rank.unwrap_or(0)) {
                        (_, true) => engine.share(),
                        (Some(p), false) => Share::placed(i, count, p.clone()),
                        (None, false) => Share::of(i, count),
                    };
                    (host_of(url), share)
                })
                .collect()
        }
        _ => vec![(state.guard.local_addr().to_string(), engine.share())],
    };
    let queries = engine.catalog().queries();
    let topics: Vec<Vec<(String, i32)>> = queries
        .iter()
        .map(|q| {
            q.sources
                .iter()
                .filter_map(|s| engine.catalog().source(s))
                .flat_map(|s| {
                    let count = engine.log().get_topic(&s.topic).map(|t| t.partition_count()).unwrap_or(0);
                    (0..count).map(move |p| (s.topic.clone(), p))
                })
                .collect()
        })
        .collect();
    let paused = |id: &str| engine.catalog().is_paused(id);
    let statuses: serde_json::Map<String, Value> = hosts
        .into_iter()
        .map(|(host, share)| {
            let per_query: serde_json::Map<String, Value> = queries
                .iter()
                .zip(&topics)
                .map(|(q, parts)| {
                    let pick = |held: &dyn Fn(i32) -> bool| -> Vec<Value> {
                        parts.iter().filter(|(_, p)| !paused(&q.id) && held(*p)).map(|(t, p)| json!({"topic": t, "partition": p})).collect()
                    };
                    let active = pick(&|p| share.owns(p));
                    let standby = pick(&|p| share.copies(p));
                    (q.id.clone(), json!({"activeStores": [], "activePartitions": active, "standByStores": [], "standByPartitions": standby}))
                })
                .collect();
            let lags = json!({"stateStoreLags": {}, "updateTimeMs": now});
            (host, json!({"hostAlive": true, "lastStatusUpdateMs": now, "activeStandbyPerQuery": per_query, "hostStoreLags": lags}))
        })
        .collect();
    json_ok(&json!({"clusterStatus": statuses}))
}

/// `host:port` of an advertised URL.
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.trim_end_matches('/').to_string()
}

pub async fn is_valid_property(Path(name): Path<String>) -> Result<Response, ApiError> {
    match crate::engine::check_client_property(&name) {
        Ok(()) => Ok(json_ok(&json!(true))),
        Err(why) => Err(ApiError::bad_request(why)),
    }
}

/// Lag reports from other servers: one Eddy server takes part in no cluster, so a report
/// is read (it must be JSON) and has nothing to update.
pub async fn lag(body: Bytes) -> Result<Response, ApiError> {
    parse_body(&body)?;
    Ok(StatusCode::OK.into_response())
}

pub async fn terminate(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let body = if body.is_empty() { serde_json::Map::new() } else { parse_body(&body)? };
    let topics: Vec<String> = match body.get("deleteTopicList") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(|| ApiError::bad_request("deleteTopicList holds topic names or patterns as strings")))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ApiError::bad_request("deleteTopicList must be a list of topic names or patterns")),
    };
    let engine = state.engine.clone();
    let entities = tokio::task::spawn_blocking(move || engine.terminate_cluster(&topics)).await.map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(json_ok(&Value::Array(entities)))
}
