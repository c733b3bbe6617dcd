//! An external Confluent-compatible schema registry over its REST API
//! (`--schema-registry-url`). Schemas by id never change, so they are cached; subjects are
//! asked each time. Requests run on a helper thread with their own runtime, so callers may
//! be anywhere (a query task, a statement), and time out after 10 s.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value, json};

use super::RegistryError;
use super::source::SchemaSource;
use super::store::{Schema, SchemaReference, SchemaType};

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";
const TIMEOUT: Duration = Duration::from_secs(10);

pub struct ExternalRegistry {
    base: String,
    client: reqwest::Client,
    by_id: Mutex<HashMap<i32, Schema>>,
}

impl ExternalRegistry {
    /// A client for the registry at `url` (`http://host:8081`); nothing is asked yet.
    pub fn new(url: &str) -> Result<ExternalRegistry, RegistryError> {
        let base = url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(RegistryError::Storage(format!("the schema registry URL '{url}' must start with http:// or https://")));
        }
        let client = reqwest::Client::builder().timeout(TIMEOUT).build().map_err(|e| RegistryError::Storage(e.to_string()))?;
        Ok(ExternalRegistry { base, client, by_id: Mutex::new(HashMap::new()) })
    }

    /// One request: its status and JSON body. Runs on a helper thread.
    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<(u16, Value), RegistryError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.client.request(method, &url).header("Accept", CONTENT_TYPE);
        if let Some(b) = body {
            req = req.header("Content-Type", CONTENT_TYPE).body(b.to_string());
        }
        let unreachable = |e: String| RegistryError::Storage(format!("the schema registry at {} did not answer: {e}", self.base));
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| unreachable(e.to_string()))?;
                    rt.block_on(async {
                        let resp = req.send().await.map_err(|e| unreachable(e.to_string()))?;
                        let status = resp.status().as_u16();
                        let text = resp.text().await.map_err(|e| unreachable(e.to_string()))?;
                        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
                    })
                })
                .join()
                .map_err(|_| unreachable("the request thread failed".into()))?
        })
    }

    /// The registry's error for a non-2xx answer, by Confluent's error code.
    fn error(status: u16, body: &Value, fallback: RegistryError) -> RegistryError {
        let message = body.get("message").and_then(Value::as_str).unwrap_or_default().to_string();
        match body.get("error_code").and_then(Value::as_u64) {
            Some(40401..=40403) => fallback,
            Some(409) | None if status == 409 => RegistryError::Incompatible { subject: String::new(), reasons: vec![message] },
            Some(42201) => RegistryError::InvalidSchema(message),
            _ => RegistryError::Storage(format!("the schema registry answered {status}: {body}")),
        }
    }
}

impl ExternalRegistry {
    /// A schema with the schemas it references (fetched by subject and version) made part
    /// of it: AVRO types inlined, PROTOBUF imports compiled into one descriptor set.
    fn resolve(&self, schema: Schema, depth: usize) -> Result<Schema, RegistryError> {
        if schema.references.is_empty() || schema.schema_type == SchemaType::Json {
            return Ok(schema);
        }
        if depth > 32 {
            return Err(RegistryError::InvalidSchema("schema references nest more than 32 deep".into()));
        }
        if schema.schema_type == SchemaType::Protobuf {
            let set = crate::format::protobuf_schema::resolved_set(&schema.schema, &super::protobuf_imports(&schema, depth, &|r| self.referenced(r))?)
                .map_err(RegistryError::InvalidSchema)?;
            return Ok(Schema { schema: set, references: Vec::new(), ..schema });
        }
        let parse = |t: &str| serde_json::from_str::<Value>(t).map_err(|e| RegistryError::InvalidSchema(e.to_string()));
        let mut referenced = Vec::new();
        for r in &schema.references {
            referenced.push(parse(&self.resolve(self.referenced(r)?, depth + 1)?.schema)?);
        }
        let text = crate::format::avro_schema::resolve_references(&parse(&schema.schema)?, &referenced).to_string();
        Ok(Schema { schema: text, references: Vec::new(), ..schema })
    }

    /// The schema a reference names.
    fn referenced(&self, r: &SchemaReference) -> Result<Schema, RegistryError> {
        let (status, body) = self.call(reqwest::Method::GET, &format!("/subjects/{}/versions/{}", encode(&r.subject), r.version), None)?;
        if status != 200 {
            return Err(Self::error(status, &body, RegistryError::VersionNotFound { subject: r.subject.clone(), version: r.version }));
        }
        Ok(schema_from(&body))
    }
}

fn schema_from(body: &Value) -> Schema {
    let schema_type = SchemaType::parse(body.get("schemaType").and_then(Value::as_str)).unwrap_or(SchemaType::Avro);
    let references = body.get("references").and_then(|r| serde_json::from_value::<Vec<SchemaReference>>(r.clone()).ok()).unwrap_or_default();
    Schema { schema_type, schema: body.get("schema").and_then(Value::as_str).unwrap_or_default().to_string(), references }
}

fn encode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

impl SchemaSource for ExternalRegistry {
    fn schema(&self, id: i32) -> Result<Schema, RegistryError> {
        if let Some(s) = self.by_id.lock().get(&id) {
            return Ok(s.clone());
        }
        let (status, body) = self.call(reqwest::Method::GET, &format!("/schemas/ids/{id}"), None)?;
        if status != 200 {
            return Err(Self::error(status, &body, RegistryError::SchemaNotFound(id)));
        }
        let schema = self.resolve(schema_from(&body), 0)?;
        self.by_id.lock().insert(id, schema.clone());
        Ok(schema)
    }

    fn latest(&self, subject: &str) -> Result<(i32, Schema), RegistryError> {
        let (status, body) = self.call(reqwest::Method::GET, &format!("/subjects/{}/versions/latest", encode(subject)), None)?;
        if status != 200 {
            return Err(Self::error(status, &body, RegistryError::SubjectNotFound(subject.to_string())));
        }
        let id = body.get("id").and_then(Value::as_i64).ok_or_else(|| RegistryError::Storage(format!("the registry's answer has no id: {body}")))? as i32;
        let schema = self.resolve(schema_from(&body), 0)?;
        self.by_id.lock().insert(id, schema.clone());
        Ok((id, schema))
    }

    fn register(&self, subject: &str, schema: &Schema) -> Result<i32, RegistryError> {
        let body = json!({"schema": schema.schema, "schemaType": schema.schema_type.name(), "references": schema.references});
        let (status, answer) = self.call(reqwest::Method::POST, &format!("/subjects/{}/versions", encode(subject)), Some(body))?;
        if status != 200 {
            return Err(match Self::error(status, &answer, RegistryError::SubjectNotFound(subject.to_string())) {
                RegistryError::Incompatible { reasons, .. } => RegistryError::Incompatible { subject: subject.to_string(), reasons },
                other => other,
            });
        }
        let id = answer.get("id").and_then(Value::as_i64).ok_or_else(|| RegistryError::Storage(format!("the registry's answer has no id: {answer}")))? as i32;
        self.by_id.lock().insert(id, schema.clone());
        Ok(id)
    }

    fn subject_has(&self, subject: &str, id: i32) -> Result<bool, RegistryError> {
        let (status, body) = self.call(reqwest::Method::GET, &format!("/schemas/ids/{id}/versions"), None)?;
        if status == 404 {
            return Ok(false);
        }
        if status != 200 {
            return Err(Self::error(status, &body, RegistryError::SchemaNotFound(id)));
        }
        Ok(body.as_array().is_some_and(|uses| uses.iter().any(|u| u.get("subject").and_then(Value::as_str) == Some(subject))))
    }

    fn describe(&self) -> String {
        format!("the schema registry at {}", self.base)
    }
}
