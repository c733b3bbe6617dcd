//! Where the SQL layer reads and registers schemas: the built-in registry, or an external
//! Confluent-compatible one (`--schema-registry-url`). Both answer by Confluent's model, with
//! its error codes.

use super::store::Schema;
use super::{RegistryError, SchemaRegistry};

/// The registry operations statements and formats need. Blocking.
pub trait SchemaSource: Send + Sync {
    /// The schema with a global id, its references made part of it.
    fn schema(&self, id: i32) -> Result<Schema, RegistryError>;
    /// The latest live version of a subject: its schema's id and the schema.
    fn latest(&self, subject: &str) -> Result<(i32, Schema), RegistryError>;
    /// Registers a schema under a subject (checked by the subject's compatibility level);
    /// its id.
    fn register(&self, subject: &str, schema: &Schema) -> Result<i32, RegistryError>;
    /// Whether a live version of `subject` has the schema `id`.
    fn subject_has(&self, subject: &str, id: i32) -> Result<bool, RegistryError>;
    /// Where the schemas are, for messages: `the built-in registry` or the URL.
    fn describe(&self) -> String;
}

impl SchemaSource for SchemaRegistry {
    fn schema(&self, id: i32) -> Result<Schema, RegistryError> {
        self.read(|s| s.resolved(id))
    }

    fn latest(&self, subject: &str) -> Result<(i32, Schema), RegistryError> {
        self.read(|s| s.version(subject, "latest", false).map(|(v, _)| v.id).and_then(|id| Ok((id, s.resolved(id)?))))
    }

    fn register(&self, subject: &str, schema: &Schema) -> Result<i32, RegistryError> {
        SchemaRegistry::register(self, subject, schema)
    }

    fn subject_has(&self, subject: &str, id: i32) -> Result<bool, RegistryError> {
        self.read(|s| match s.uses_of(id) {
            Ok(uses) => Ok(uses.iter().any(|(s, _)| s == subject)),
            Err(RegistryError::SchemaNotFound(_)) => Ok(false),
            Err(e) => Err(e),
        })
    }

    fn describe(&self) -> String {
        "the built-in schema registry".into()
    }
}
