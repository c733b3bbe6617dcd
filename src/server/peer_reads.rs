//! The other servers of this server's service, as scans read them
//! (`engine::gather::PeerReads`): `POST /_eddy/pull-rows` at each, which answers with the
//! stored rows of the partitions that server runs.

use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use tokio::runtime::Handle;
use tokio::sync::watch;

use super::{ApiError, AppState};
use crate::engine::Session;
use crate::engine::gather::PeerReads;
use crate::exec::Share;
use crate::exec::pull::StoredRows;
use crate::kafka_client::service::Role;

/// The routes.
pub const PULL_ROWS: &str = "/_eddy/pull-rows";
pub const FEATURE_ROWS: &str = "/_eddy/feature-rows";

/// How long a peer may take to connect, and between two reads of its answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads other servers' rows over their REST APIs.
pub struct HttpPeerReads {
    role: watch::Receiver<Role>,
    client: reqwest::Client,
    runtime: Handle,
}

impl HttpPeerReads {
    pub fn new(role: watch::Receiver<Role>, runtime: Handle) -> Result<HttpPeerReads, reqwest::Error> {
        let client = reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT).read_timeout(READ_TIMEOUT).build()?;
        Ok(HttpPeerReads { role, client, runtime })
    }
}

impl HttpPeerReads {
    /// POSTs `body` to `path` at the server at `url` and returns its JSON answer. Blocking.
    fn post(&self, url: &str, path: &str, body: Value) -> Result<Value, String> {
        let request = self.client.post(format!("{url}{path}")).json(&body);
        crate::kafka_client::blocking::wait(&self.runtime, async move {
            let answer = request.send().await.map_err(|e| e.to_string())?;
            let status = answer.status();
            let body: Value = answer.json().await.map_err(|e| e.to_string())?;
            if !status.is_success() {
                return Err(format!("HTTP {status}: {}", body["message"].as_str().unwrap_or_default()));
            }
            Ok(body)
        })
    }
}

impl PeerReads for HttpPeerReads {
    fn peers(&self, share: &Share) -> Option<Vec<(u32, String)>> {
        let role = self.role.borrow().clone();
        // The roster the engine runs by: the same places and the same placement.
        let current = role.settled && super::service_role::share_of(&role) == *share;
        current.then(|| role.members.into_iter().enumerate().filter_map(|(r, url)| Some((u32::try_from(r).ok()?, url))).collect())
    }

    fn rows(&self, url: &str, sql: &str, session: &Session, slots: Option<&[u32]>) -> Result<StoredRows, String> {
        let answer = self.post(url, PULL_ROWS, json!({"sql": sql, "properties": session.properties, "slots": slots}))?;
        let rows = answer["rows"].as_array().ok_or("the answer holds no rows")?;
        rows.iter()
            .map(|r| match (r[0].as_str(), r[1].as_i64()) {
                (Some(json), Some(rowtime)) => Ok((json.as_bytes().to_vec(), rowtime)),
                _ => Err(format!("a row of the answer is not [json, rowtime]: {r}")),
            })
            .collect()
    }

    fn feature_rows(&self, url: &str, table: &str, keys: &[Value], slots: Option<&[u32]>) -> Result<Vec<Option<Vec<u8>>>, String> {
        let answer = self.post(url, FEATURE_ROWS, json!({"table": table, "keys": keys, "slots": slots}))?;
        let rows = answer["rows"].as_array().ok_or("the answer holds no rows")?;
        rows.iter()
            .map(|r| match r {
                Value::Null => Ok(None),
                Value::String(b) => B64.decode(b).map(Some).map_err(|e| format!("a row of the answer is not base64: {e}")),
                other => Err(format!("a row of the answer is neither null nor base64: {other}")),
            })
            .collect()
    }
}

/// `POST /_eddy/feature-rows {"table": ..., "keys": [...], "slots": [...]}`: the stored rows
/// (base64 of `state::rows`' encoding, null when absent) of feature keys in the
/// partitions this server runs, or with `slots` of its copies of those slots.
pub async fn feature_rows(State(state): State<AppState>, body: axum::body::Bytes) -> Response {
    let parsed = match super::routes::parse_body(&body) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let (Some(table), Some(keys)) = (parsed.get("table").and_then(Value::as_str).map(String::from), parsed.get("keys").and_then(Value::as_array).cloned())
    else {
        return ApiError::bad_request("'table' and 'keys' must name the lookup").into_response();
    };
    let keys: Vec<crate::engine::FeatureKey<'static>> = keys.into_iter().map(crate::engine::FeatureKey::from).collect();
    let slots = slots_of(&parsed);
    let engine = state.engine.clone();
    match tokio::task::spawn_blocking(move || engine.feature_rows_here(&table, &keys, slots.as_deref())).await {
        Ok(Ok(rows)) => {
            let rows: Vec<Value> = rows.into_iter().map(|r| r.map_or(Value::Null, |b| Value::String(B64.encode(b)))).collect();
            axum::Json(json!({"rows": rows})).into_response()
        }
        Ok(Err(e)) => ApiError::from(e).into_response(),
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}

/// The `slots` of a peer request.
fn slots_of(parsed: &serde_json::Map<String, Value>) -> Option<Vec<u32>> {
    parsed.get("slots").and_then(Value::as_array).map(|a| a.iter().filter_map(|s| s.as_u64().and_then(|s| u32::try_from(s).ok())).collect())
}

/// `POST /_eddy/pull-rows {"sql": ..., "properties": {...}, "slots": [...]}`: the stored
/// rows a pull query on a table reads of the partitions this server runs (or, with
/// `slots`, of its copies of the partitions in those slots), as `[json, rowtime]` pairs.
pub async fn pull_rows(State(state): State<AppState>, body: axum::body::Bytes) -> Response {
    let parsed = match super::routes::parse_body(&body) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let Some(sql) = parsed.get("sql").and_then(Value::as_str).map(String::from) else {
        return ApiError::bad_request("'sql' must name the pull query").into_response();
    };
    let session = match super::routes::session_from(&parsed, "properties") {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let slots = slots_of(&parsed);
    let engine = state.engine.clone();
    match tokio::task::spawn_blocking(move || engine.pull_rows_here(&sql, &session, slots.as_deref())).await {
        Ok(Ok(rows)) => {
            let rows: Vec<Value> = rows.into_iter().map(|(json, rowtime)| json!([String::from_utf8_lossy(&json), rowtime])).collect();
            axum::Json(json!({"rows": rows})).into_response()
        }
        Ok(Err(e)) => ApiError::from(e).into_response(),
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}
