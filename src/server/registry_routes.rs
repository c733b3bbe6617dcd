//! Confluent Schema Registry's REST API over the built-in registry, on the server's HTTP
//! port: a Confluent client pointed at `http://<host>:<port>` (the same URL as the ksqlDB
//! API) registers and reads schemas unchanged. Bodies are read whatever their content type
//! (clients send `application/vnd.schemaregistry.v1+json`) and answered in that type;
//! errors carry Confluent's `error_code` and message.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use crate::registry::store::{Compatibility, Mode, Schema, SchemaReference, SchemaType};
use crate::registry::{RegistryError, SchemaRegistry};

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

fn answer(status: StatusCode, body: Value) -> Response {
    (status, [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)], body.to_string()).into_response()
}

fn ok(body: Value) -> Response {
    answer(StatusCode::OK, body)
}

fn refused(e: &RegistryError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    answer(status, json!({"error_code": e.code(), "message": e.to_string()}))
}

fn bad_body(why: String) -> Response {
    answer(StatusCode::UNPROCESSABLE_ENTITY, json!({"error_code": 42201, "message": format!("Invalid request body: {why}")}))
}

/// Why a request is answered before it reaches the registry.
pub enum Refusal {
    Registry(RegistryError),
    BadBody(String),
    Off,
    /// The server uses an external registry (`--schema-registry-url`).
    External(String),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Registry(e) => refused(&e),
            Refusal::BadBody(why) => bad_body(why),
            Refusal::Off => answer(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error_code": 50003, "message": "the schema registry is off: its topic could not be opened at start-up (see the server log)"}),
            ),
            Refusal::External(url) => answer(
                StatusCode::NOT_FOUND,
                json!({
                    "error_code": 40400,
                    "message": format!("this server uses the external schema registry at {url} (--schema-registry-url); send registry requests there")
                }),
            ),
        }
    }
}

impl From<RegistryError> for Refusal {
    fn from(e: RegistryError) -> Self {
        Refusal::Registry(e)
    }
}

/// A handler's answer: a response, or why the request is refused.
type Reply = Result<Response, Refusal>;

/// The registry, or the answer that it is off.
fn registry(state: &AppState) -> Result<Arc<SchemaRegistry>, Refusal> {
    if let Some(url) = &state.engine.config().schema_registry_url {
        return Err(Refusal::External(url.clone()));
    }
    state.engine.registry().cloned().ok_or(Refusal::Off)
}

/// Runs a registry change (which fsyncs) off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, RegistryError> + Send + 'static) -> Result<T, RegistryError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| RegistryError::Storage(format!("the registry task failed: {e}")))?
}

fn flag(q: &HashMap<String, String>, name: &str) -> bool {
    q.get(name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

#[derive(Deserialize)]
struct SchemaBody {
    schema: String,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<SchemaReference>,
}

fn schema_of(body: &Bytes) -> Result<Schema, Refusal> {
    let b: SchemaBody = serde_json::from_slice(body).map_err(|e| Refusal::BadBody(format!("expected {{\"schema\": \"...\"}} ({e})")))?;
    let schema_type = SchemaType::parse(b.schema_type.as_deref()).map_err(Refusal::Registry)?;
    Ok(Schema { schema_type, schema: b.schema, references: b.references })
}

/// A schema's fields in an answer: `schemaType` only when not AVRO, as Confluent's.
fn schema_fields(out: &mut Value, schema: &Schema) {
    out["schema"] = json!(schema.schema);
    if schema.schema_type != SchemaType::Avro {
        out["schemaType"] = json!(schema.schema_type.name());
    }
    if !schema.references.is_empty() {
        out["references"] = json!(schema.references);
    }
}

type Flags = Query<HashMap<String, String>>;

/// A version as Confluent answers it.
fn version_answer(subject: &str, id: i32, version: i32, schema: &Schema) -> Response {
    let mut out = json!({"subject": subject, "id": id, "version": version});
    schema_fields(&mut out, schema);
    ok(out)
}

pub async fn list_subjects(State(state): State<AppState>, Query(q): Flags) -> Reply {
    Ok(ok(json!(registry(&state)?.read(|s| s.subjects(flag(&q, "deleted"))))))
}

pub async fn list_versions(State(state): State<AppState>, Path(subject): Path<String>, Query(q): Flags) -> Reply {
    Ok(ok(json!(registry(&state)?.read(|s| s.versions(&subject, flag(&q, "deleted")))?)))
}

pub async fn register(State(state): State<AppState>, Path(subject): Path<String>, body: Bytes) -> Reply {
    let (r, schema) = (registry(&state)?, schema_of(&body)?);
    // An id is given only when copying a registry, in IMPORT mode.
    let given = serde_json::from_slice::<Value>(&body).ok().and_then(|b| b.get("id").and_then(Value::as_i64)).map(|i| i as i32);
    if given.is_some() && r.read(|s| s.mode(Some(&subject))) != Mode::Import {
        return Err(RegistryError::NotPermitted(format!("Subject {subject} is not in import mode; a schema's id can be given only in IMPORT mode")).into());
    }
    let id = blocking(move || r.register_as(&subject, &schema, given)).await?;
    Ok(ok(json!({"id": id})))
}

pub async fn lookup(State(state): State<AppState>, Path(subject): Path<String>, body: Bytes) -> Reply {
    let (r, schema) = (registry(&state)?, schema_of(&body)?);
    Ok(r.read(|s| s.lookup(&subject, &schema).map(|(v, found)| version_answer(&subject, v.id, v.version, found)))?)
}

pub async fn get_version(State(state): State<AppState>, Path((subject, version)): Path<(String, String)>, Query(q): Flags) -> Reply {
    let (r, deleted) = (registry(&state)?, flag(&q, "deleted"));
    let format = q.get("format").cloned();
    // Formatting may compile a PROTOBUF schema: off the async threads.
    let name = subject.clone();
    let (v, schema) = blocking(move || {
        r.read(|s| {
            let (v, schema) = s.version(&name, &version, deleted)?;
            Ok((v.clone(), s.formatted(schema, format.as_deref())?))
        })
    })
    .await?;
    Ok(version_answer(&subject, v.id, v.version, &schema))
}

pub async fn get_version_schema(State(state): State<AppState>, Path((subject, version)): Path<(String, String)>) -> Reply {
    let text = registry(&state)?.read(|s| s.version(&subject, &version, false).map(|(_, schema)| schema.schema.clone()))?;
    Ok((StatusCode::OK, [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response())
}

pub async fn delete_subject(State(state): State<AppState>, Path(subject): Path<String>, Query(q): Flags) -> Reply {
    let (r, permanent) = (registry(&state)?, flag(&q, "permanent"));
    Ok(ok(json!(blocking(move || r.delete(&subject, None, permanent)).await?)))
}

pub async fn delete_version(State(state): State<AppState>, Path((subject, version)): Path<(String, String)>, Query(q): Flags) -> Reply {
    let (r, permanent) = (registry(&state)?, flag(&q, "permanent"));
    let deleted = blocking(move || r.delete(&subject, Some(&version), permanent)).await?;
    Ok(ok(json!(deleted.first())))
}

fn schema_id(text: &str) -> Result<i32, Refusal> {
    text.parse().map_err(|_| Refusal::Registry(RegistryError::SchemaNotFound(-1)))
}

pub async fn get_schema(State(state): State<AppState>, Path(id): Path<String>, Query(q): Flags) -> Reply {
    let (r, id, format) = (registry(&state)?, schema_id(&id)?, q.get("format").cloned());
    let schema = blocking(move || r.read(|s| s.schema(id).and_then(|schema| s.formatted(schema, format.as_deref())))).await?;
    let mut out = json!({});
    schema_fields(&mut out, &schema);
    Ok(ok(out))
}

pub async fn schema_versions(State(state): State<AppState>, Path(id): Path<String>) -> Reply {
    let (r, id) = (registry(&state)?, schema_id(&id)?);
    let uses = r.read(|s| s.uses_of(id))?;
    Ok(ok(json!(uses.into_iter().map(|(subject, version)| json!({"subject": subject, "version": version})).collect::<Vec<_>>())))
}

pub async fn schema_types() -> Response {
    ok(json!(["JSON", "PROTOBUF", "AVRO"]))
}

#[derive(Deserialize)]
struct ConfigBody {
    compatibility: String,
}

fn no_subject_level(subject: &str) -> Response {
    answer(StatusCode::NOT_FOUND, json!({"error_code": 40408, "message": format!("Subject '{subject}' does not have subject-level compatibility configured")}))
}

pub async fn get_config(State(state): State<AppState>) -> Reply {
    Ok(ok(json!({"compatibilityLevel": registry(&state)?.read(|s| s.global_compatibility()).name()})))
}

pub async fn get_subject_config(State(state): State<AppState>, Path(subject): Path<String>, Query(q): Flags) -> Reply {
    let level = registry(&state)?.read(|s| s.subject_compatibility(&subject).or_else(|| flag(&q, "defaultToGlobal").then(|| s.global_compatibility())));
    Ok(match level {
        Some(l) => ok(json!({"compatibilityLevel": l.name()})),
        None => no_subject_level(&subject),
    })
}

async fn put_level(state: AppState, subject: Option<String>, body: Bytes) -> Reply {
    let r = registry(&state)?;
    let b: ConfigBody = serde_json::from_slice(&body).map_err(|e| Refusal::BadBody(format!("expected {{\"compatibility\": \"BACKWARD\"}} ({e})")))?;
    let level = Compatibility::parse(&b.compatibility)?;
    blocking(move || r.set_compatibility(subject.as_deref(), Some(level))).await?;
    Ok(ok(json!({"compatibility": level.name()})))
}

pub async fn put_config(State(state): State<AppState>, body: Bytes) -> Reply {
    put_level(state, None, body).await
}

pub async fn put_subject_config(State(state): State<AppState>, Path(subject): Path<String>, body: Bytes) -> Reply {
    put_level(state, Some(subject), body).await
}

pub async fn delete_subject_config(State(state): State<AppState>, Path(subject): Path<String>) -> Reply {
    let r = registry(&state)?;
    let Some(previous) = r.read(|s| s.subject_compatibility(&subject)) else { return Ok(no_subject_level(&subject)) };
    blocking(move || r.set_compatibility(Some(&subject), None)).await?;
    Ok(ok(json!({"compatibilityLevel": previous.name()})))
}

pub async fn check_compatibility(State(state): State<AppState>, Path((subject, version)): Path<(String, String)>, Query(q): Flags, body: Bytes) -> Reply {
    let (r, schema) = (registry(&state)?, schema_of(&body)?);
    // Checking compiles and compares schemas: off the async threads.
    let reasons = blocking(move || r.read(|s| s.incompatibilities(&subject, &version, &schema))).await?;
    let mut out = json!({"is_compatible": reasons.is_empty()});
    if flag(&q, "verbose") {
        out["messages"] = json!(reasons);
    }
    Ok(ok(out))
}

pub async fn get_mode(State(state): State<AppState>) -> Reply {
    Ok(ok(json!({"mode": registry(&state)?.read(|s| s.mode(None)).name()})))
}

pub async fn get_subject_mode(State(state): State<AppState>, Path(subject): Path<String>, Query(q): Flags) -> Reply {
    let r = registry(&state)?;
    let mode = r.read(|s| if flag(&q, "defaultToGlobal") { Some(s.mode(Some(&subject))) } else { s.subject_mode(&subject) });
    match mode {
        Some(m) => Ok(ok(json!({"mode": m.name()}))),
        None => Ok(answer(
            StatusCode::NOT_FOUND,
            json!({"error_code": 40409, "message": format!("Subject '{subject}' does not have subject-level mode configured")}),
        )),
    }
}

#[derive(serde::Deserialize)]
struct ModeBody {
    mode: String,
}

async fn put_mode_of(state: AppState, subject: Option<String>, body: Bytes) -> Reply {
    let r = registry(&state)?;
    let b: ModeBody = serde_json::from_slice(&body).map_err(|e| Refusal::BadBody(format!("expected {{\"mode\": \"READWRITE\"}} ({e})")))?;
    let mode = Mode::parse(&b.mode)?;
    blocking(move || r.set_mode(subject.as_deref(), Some(mode))).await?;
    Ok(ok(json!({"mode": mode.name()})))
}

pub async fn put_mode(State(state): State<AppState>, body: Bytes) -> Reply {
    put_mode_of(state, None, body).await
}

pub async fn put_subject_mode(State(state): State<AppState>, Path(subject): Path<String>, body: Bytes) -> Reply {
    put_mode_of(state, Some(subject), body).await
}

pub async fn delete_subject_mode(State(state): State<AppState>, Path(subject): Path<String>) -> Reply {
    let r = registry(&state)?;
    let previous = r.read(|s| s.subject_mode(&subject)).unwrap_or_default();
    blocking(move || r.set_mode(Some(&subject), None)).await?;
    Ok(ok(json!({"mode": previous.name()})))
}
