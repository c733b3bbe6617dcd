//! The schema registry built into the server (issue 25): Confluent Schema Registry's
//! subjects, versions and global schema ids, kept durably in the internal topic `_schemas`
//! (every change, in order, kept forever) and rebuilt from it at start. This module owns the
//! registry's state and its persistence, compatibility rules (`compat`, `compat_json`,
//! `compat_protobuf`), and the client of an external registry (`external`); the REST face
//! Confluent's clients speak lives in `server`, the formats that read records by id in
//! `format`. Schemas with references are made self-contained (AVRO types inlined, PROTOBUF
//! imports compiled into one descriptor set) before they are checked or read.

pub mod compat;
pub mod compat_json;
pub mod compat_protobuf;
pub mod external;
pub mod source;
pub mod store;

use std::sync::Arc;

use parking_lot::Mutex;

use crate::log::{BatchBuilder, Log, LogError, PartitionStore, TopicConfig};
use store::{Change, Registration, Schema, Store};

pub use crate::catalog::internal_topics::SCHEMAS_TOPIC;

/// What the registry refuses, with Confluent's error codes (`error_code` in its bodies).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    #[error("Version {version} not found for subject '{subject}'.")]
    VersionNotFound { subject: String, version: i32 },
    #[error("Schema {0} not found")]
    SchemaNotFound(i32),
    #[error("Schema not found under subject '{0}'")]
    SchemaNotFoundInSubject(String),
    #[error("Subject '{0}' was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted(String),
    #[error("Subject '{subject}' Version {version} was not deleted first before being permanently deleted")]
    VersionNotSoftDeleted { subject: String, version: i32 },
    #[error("Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]", reasons.join("; "))]
    Incompatible { subject: String, reasons: Vec<String> },
    #[error("Invalid schema: {0}")]
    InvalidSchema(String),
    #[error("The specified version '{0}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"")]
    InvalidVersion(String),
    #[error("Invalid compatibility level: {0}. Valid values are NONE, BACKWARD, FORWARD, FULL, BACKWARD_TRANSITIVE, FORWARD_TRANSITIVE, FULL_TRANSITIVE")]
    InvalidCompatibility(String),
    #[error("Invalid mode: {0}. Valid values are READWRITE, READONLY, READONLY_OVERRIDE, IMPORT")]
    InvalidMode(String),
    #[error("{0}")]
    NotPermitted(String),
    #[error("the registry's topic could not be written or read: {0}")]
    Storage(String),
}

impl RegistryError {
    /// Confluent's `error_code`.
    pub fn code(&self) -> u32 {
        match self {
            RegistryError::SubjectNotFound(_) => 40401,
            RegistryError::VersionNotFound { .. } => 40402,
            RegistryError::SchemaNotFound(_) | RegistryError::SchemaNotFoundInSubject(_) => 40403,
            RegistryError::SubjectNotSoftDeleted(_) => 40405,
            RegistryError::VersionNotSoftDeleted { .. } => 40407,
            RegistryError::Incompatible { .. } => 409,
            RegistryError::InvalidSchema(_) => 42201,
            RegistryError::InvalidVersion(_) => 42202,
            RegistryError::InvalidCompatibility(_) => 42203,
            RegistryError::InvalidMode(_) => 42204,
            RegistryError::NotPermitted(_) => 42205,
            RegistryError::Storage(_) => 50001,
        }
    }

    /// The HTTP status Confluent answers with: the first three digits of the code.
    pub fn status(&self) -> u16 {
        let code = self.code();
        if code < 1000 { code as u16 } else { (code / 100) as u16 }
    }
}

impl From<LogError> for RegistryError {
    fn from(e: LogError) -> Self {
        RegistryError::Storage(e.to_string())
    }
}

/// The registry: its state, and the partition that keeps it.
pub struct SchemaRegistry {
    store: Mutex<Store>,
    partition: Arc<dyn PartitionStore>,
}

impl SchemaRegistry {
    /// Opens the registry on `log`, creating its topic when missing and replaying it.
    /// Records that cannot be read are skipped with a loud log line. Blocking.
    pub fn open(log: &Log) -> Result<SchemaRegistry, RegistryError> {
        let name = crate::catalog::internal_topics::schemas_topic(log.internal_prefix());
        let mut config = TopicConfig::default();
        crate::catalog::internal_topics::enforce(log.internal_prefix(), &name, &mut config);
        let topic = log.topic_or_create(&name, 1, config)?;
        let partition = topic.partition(0)?.clone();
        let mut store = Store::default();
        crate::log::replay::replay(partition.as_ref(), partition.start_offset(), |seen| match seen {
            Ok(r) => match r.value.map(serde_json::from_slice::<Change>) {
                Some(Ok(change)) => store.apply(&change),
                Some(Err(e)) => tracing::error!(topic = name, offset = r.offset, "skipping a registry record that cannot be read: {e}"),
                None => {}
            },
            Err((offset, why)) => tracing::error!(topic = name, offset, "skipping registry records that cannot be read: {why}"),
        })?;
        Ok(SchemaRegistry { store: Mutex::new(store), partition })
    }

    /// Makes a change durable, then applies it. Blocking (an fsync).
    fn commit(&self, store: &mut Store, change: Change) -> Result<(), RegistryError> {
        let value = serde_json::to_vec(&change).map_err(|e| RegistryError::Storage(e.to_string()))?;
        let mut b = BatchBuilder::default();
        b.push(chrono::Utc::now().timestamp_millis(), None, Some(&value), &[]);
        self.partition.append(b.finish())?;
        store.apply(&change);
        Ok(())
    }

    /// Registers `schema` under `subject`; returns its global id (the existing one when
    /// the subject already holds the schema). Blocking.
    pub fn register(&self, subject: &str, schema: &Schema) -> Result<i32, RegistryError> {
        self.register_as(subject, schema, None)
    }

    /// Registers `schema` under `subject` with a given id, as Confluent's IMPORT mode does
    /// (for tools that copy a registry, and test runners that name ids). Blocking.
    pub fn register_as(&self, subject: &str, schema: &Schema, id: Option<i32>) -> Result<i32, RegistryError> {
        let mut store = self.store.lock();
        match store.register_as(subject, schema, id)? {
            Registration::Existing { id, .. } => Ok(id),
            Registration::New(change) => {
                let Change::Register { id, .. } = change else { return Err(RegistryError::Storage("a registration made another change".into())) };
                self.commit(&mut store, change)?;
                Ok(id)
            }
        }
    }

    /// Deletes a subject or one version (soft, or `permanent`); returns the versions
    /// deleted. Blocking.
    pub fn delete(&self, subject: &str, version: Option<&str>, permanent: bool) -> Result<Vec<i32>, RegistryError> {
        let mut store = self.store.lock();
        store.check_writable(subject)?;
        let (change, versions) = store.delete(subject, version, permanent)?;
        self.commit(&mut store, change)?;
        Ok(versions)
    }

    /// Sets (or with None clears) the compatibility level of the server or a subject.
    /// Blocking.
    pub fn set_compatibility(&self, subject: Option<&str>, level: Option<store::Compatibility>) -> Result<(), RegistryError> {
        let mut store = self.store.lock();
        self.commit(&mut store, Change::Config { subject: subject.map(str::to_string), level })
    }

    /// Sets (or with None clears) the mode of the server or a subject. Blocking.
    pub fn set_mode(&self, subject: Option<&str>, mode: Option<store::Mode>) -> Result<(), RegistryError> {
        let mut store = self.store.lock();
        self.commit(&mut store, Change::Mode { subject: subject.map(str::to_string), mode })
    }

    /// Reads the state.
    pub fn read<T>(&self, f: impl FnOnce(&Store) -> T) -> T {
        f(&self.store.lock())
    }
}

/// The files a PROTOBUF schema imports, by the names it imports them with, and those they
/// import, each once; `fetch` reads the schema a reference names.
pub fn protobuf_imports(
    schema: &store::Schema,
    depth: usize,
    fetch: &dyn Fn(&store::SchemaReference) -> Result<store::Schema, RegistryError>,
) -> Result<Vec<(String, String)>, RegistryError> {
    if depth > 32 {
        return Err(RegistryError::InvalidSchema("schema references nest more than 32 deep".into()));
    }
    let mut out: Vec<(String, String)> = Vec::new();
    for r in &schema.references {
        let referenced = fetch(r)?;
        for file in protobuf_imports(&referenced, depth + 1, fetch)?.into_iter().chain([(r.name.clone(), referenced.schema)]) {
            if !out.iter().any(|(n, _)| *n == file.0) {
                out.push(file);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::store::{Compatibility, SchemaType};
    use super::*;

    fn avro(text: &str) -> Schema {
        Schema { schema_type: SchemaType::Avro, schema: text.to_string(), references: Vec::new() }
    }

    #[test]
    fn subjects_versions_and_ids_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let log = Log::open(dir.path(), TopicConfig::default()).expect("log");
            let r = SchemaRegistry::open(&log).expect("registry");
            r.set_compatibility(Some("t-value"), Some(Compatibility::None)).expect("config");
            assert_eq!(r.register("t-value", &avro(r#""string""#)), Ok(1));
            assert_eq!(r.register("t-value", &avro(r#""long""#)), Ok(2));
            assert_eq!(r.register("gone-value", &avro(r#""int""#)), Ok(3));
            assert_eq!(r.delete("gone-value", None, false), Ok(vec![1]));
            r.set_compatibility(Some("t-value"), Some(Compatibility::Full)).expect("config");
        }
        let log = Log::open(dir.path(), TopicConfig::default()).expect("log");
        let r = SchemaRegistry::open(&log).expect("registry");
        r.read(|s| {
            assert_eq!(s.subjects(false), vec!["t-value".to_string()]);
            assert_eq!(s.subjects(true), vec!["gone-value".to_string(), "t-value".to_string()]);
            assert_eq!(s.versions("t-value", false), Ok(vec![1, 2]));
            assert_eq!(s.subject_compatibility("t-value"), Some(Compatibility::Full));
            assert_eq!(s.global_compatibility(), Compatibility::Backward);
        });
        assert_eq!(r.register("u-value", &avro(r#""double""#)), Ok(4), "ids are never reused");
    }
}
