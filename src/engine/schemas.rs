//! Registry formats in statements, as ksqlDB has them: a CREATE without value (or key)
//! columns takes them from the latest schema of the topic's `<topic>-value` (`-key`)
//! subject or from `VALUE_SCHEMA_ID`; a CREATE with columns and every CREATE ... AS SELECT
//! registers the schema its records are written with under those subjects. The ids used
//! are kept with the statement in the command topic, so a restart reads the same schemas
//! whatever was registered since.

use std::sync::Arc;

use serde_json::Value;

use super::{Engine, EngineError};
use crate::catalog::DataSource;
use crate::catalog::types::{Column, ColumnKind};
use crate::format::{FormatKind, FormatSpec, RegistryHandle, Role, SchemaLookup, avro_schema, json_sr, named_types, protobuf, protobuf_schema};
use crate::registry::source::SchemaSource;
use crate::registry::store::{Schema, SchemaType};

/// Session properties that keep, with a statement in the command topic, the schema ids its
/// source's records are written with.
pub(super) const PINNED_KEY_SCHEMA_ID: &str = "eddy.internal.key.schema.id";
pub(super) const PINNED_VALUE_SCHEMA_ID: &str = "eddy.internal.value.schema.id";

/// The registry (built-in or external) as formats see it.
struct SourceLookup(Arc<dyn SchemaSource>);

impl SchemaLookup for SourceLookup {
    fn schema_text(&self, id: i32) -> Result<(String, String), String> {
        self.0.schema(id).map(|s| (s.schema_type.name().to_string(), s.schema)).map_err(|e| e.to_string())
    }
}

/// The registry's schema type for a registry format.
fn schema_type_of(spec: &FormatSpec) -> SchemaType {
    match spec.kind {
        FormatKind::JsonSr => SchemaType::Json,
        FormatKind::Protobuf => SchemaType::Protobuf,
        _ => SchemaType::Avro,
    }
}

/// The schema ksqlDB registers for `columns` in a registry format.
fn schema_for(spec: &FormatSpec, columns: &[&Column], role: Role) -> String {
    let unwrapped = spec.unwrapped(columns, role);
    match spec.kind {
        FormatKind::JsonSr => json_sr::schema_for(&named_types(columns), unwrapped).to_string(),
        FormatKind::Protobuf => protobuf::schema_for(&named_types(columns), unwrapped, spec.full_name.as_deref(), spec.protobuf_nullable),
        _ => avro_schema::schema_for(&named_types(columns), unwrapped, spec.full_name.as_deref()).to_string(),
    }
}

fn subject(topic: &str, role: Role) -> String {
    format!("{topic}-{}", if role == Role::Key { "key" } else { "value" })
}

fn role_name(role: Role) -> &'static str {
    if role == Role::Key { "keys" } else { "values" }
}

fn pinned_property(role: Role) -> &'static str {
    if role == Role::Key { PINNED_KEY_SCHEMA_ID } else { PINNED_VALUE_SCHEMA_ID }
}

/// The schema ids a statement pinned when it first ran.
pub(super) fn pinned_id(properties: &std::collections::BTreeMap<String, String>, role: Role) -> Option<i32> {
    properties.get(pinned_property(role)).and_then(|v| v.parse().ok())
}

/// The properties that pin a source's schema ids (for its command).
pub(super) fn pins(source: &DataSource) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (spec, role) in [(&source.key_format, Role::Key), (&source.value_format, Role::Value)] {
        if spec.uses_registry()
            && let Some(id) = spec.schema_id
        {
            out.push((pinned_property(role).to_string(), id.to_string()));
        }
    }
    out
}

impl Engine {
    /// The registry as formats and PRINT read schemas from it.
    pub(super) fn registry_handle(&self) -> Option<RegistryHandle> {
        self.schema_source().map(|r| RegistryHandle(Arc::new(SourceLookup(r.clone()))))
    }

    fn registry_or_refuse(&self, format: &FormatSpec) -> Result<&Arc<dyn SchemaSource>, EngineError> {
        self.schema_source().ok_or_else(|| {
            EngineError::rule(format!(
                "The {} format needs the schema registry, which is off on this server (its internal topic could not be opened; see the server log)",
                format.kind.name()
            ))
        })
    }

    /// The columns a registered schema gives a CREATE without key or value columns: the
    /// schema with `spec`'s id, else the latest version of the topic's subject. Sets the
    /// spec's id and schema to it. `exact_names`: PROTOBUF names are kept as written, not
    /// upper-cased.
    pub(super) fn infer_columns(&self, topic: &str, role: Role, spec: &mut FormatSpec, exact_names: bool) -> Result<Vec<Column>, EngineError> {
        let registry = self.registry_or_refuse(spec)?.clone();
        let subject = subject(topic, role);
        let (id, schema) = match spec.schema_id {
            Some(id) => {
                let schema = registry.schema(id).map_err(|e| {
                    EngineError::rule_caused(
                        format!("Cannot read the schema with id {id} from the schema registry: {e}. Check {}_SCHEMA_ID", role_word(role)),
                        e,
                    )
                })?;
                (id, schema)
            }
            None => registry.latest(&subject).map_err(|_| {
                EngineError::rule(format!(
                    "Schema for message {} on topic '{topic}' does not exist in the Schema Registry.\nSubject: {subject}\n\nPossible causes include:\n- The \
                     topic itself does not exist\n\t-> Use SHOW TOPICS; to check\n- Messages on the topic are not serialized using a format Schema Registry \
                     supports\n\t-> Use PRINT '{topic}' FROM BEGINNING; to verify\n- Messages on the topic have not been serialized using a Confluent Schema \
                     Registry supported serializer\n\t-> Register the schema under {subject} (POST /subjects/{subject}/versions), or declare the columns",
                    role_name(role)
                ))
            })?,
        };
        let wanted = schema_type_of(spec);
        if schema.schema_type != wanted {
            return Err(EngineError::rule(format!(
                "The schema with id {id} is a {} schema; the {} format reads {} schemas",
                schema.schema_type.name(),
                spec.kind.name(),
                wanted.name()
            )));
        }
        let single = if role == Role::Key { "ROWKEY" } else { "ROWVAL" };
        let columns = match spec.kind {
            FormatKind::Protobuf => protobuf_schema::columns_of(&schema.schema, spec.full_name.as_deref(), single, !exact_names),
            _ => {
                let json: Value =
                    serde_json::from_str(&schema.schema).map_err(|e| EngineError::rule_caused(format!("The schema with id {id} is not JSON: {e}"), e))?;
                match spec.kind {
                    FormatKind::JsonSr => json_sr::columns_of(&json, single, role == Role::Key),
                    _ => avro_schema::columns_of(&json, single, role == Role::Key),
                }
            }
        }
        .map_err(|e| EngineError::rule_caused(format!("The schema with id {id} (subject {subject}) has no SQL columns: {e}"), e))?;
        if role == Role::Value && columns.len() == 1 && columns[0].0 == single {
            spec.wrap_single_value = false;
        }
        spec.schema_id = Some(id);
        spec.schema = Some(schema.schema);
        let kind = if role == Role::Key { ColumnKind::Key } else { ColumnKind::Value };
        Ok(columns.into_iter().map(|(name, ty)| Column::new(name, ty, kind)).collect())
    }

    /// Binds a source's registry formats: where its records' schema ids are read from, and
    /// the id its records are written with, registering the schema for its columns under
    /// `<topic>-key` / `<topic>-value` unless an id is already set (given, inferred, or
    /// pinned when the statement first ran). Blocking (a registration is appended and
    /// synced).
    ///
    /// A CREATE with columns (`register_over_existing` false) registers only when the
    /// subject has no schema yet, else writes with the subject's latest, as ksqlDB does; a
    /// CREATE ... AS SELECT always registers its result's schema.
    pub(super) fn bind_schemas(
        &self,
        source: &mut DataSource,
        properties: &std::collections::BTreeMap<String, String>,
        register_over_existing: bool,
    ) -> Result<(), EngineError> {
        for role in [Role::Key, Role::Value] {
            let spec = if role == Role::Key { &source.key_format } else { &source.value_format };
            if !spec.uses_registry() {
                continue;
            }
            let columns: Vec<&Column> = match role {
                Role::Key => source.schema.key_columns().collect(),
                Role::Value => source.schema.value_columns().collect(),
            };
            if role == Role::Key && columns.is_empty() {
                continue;
            }
            let registry = self.registry_or_refuse(spec)?.clone();
            let mut spec = spec.clone();
            spec.registry = self.registry_handle();
            if spec.schema_id.is_none() {
                spec.schema_id = pinned_id(properties, role);
            }
            match spec.schema_id {
                Some(id) if spec.schema.is_none() => {
                    let schema = registry.schema(id).map_err(|e| {
                        EngineError::rule_caused(
                            format!("Cannot read the schema with id {id} from the schema registry: {e}. Check {}_SCHEMA_ID", role_word(role)),
                            e,
                        )
                    })?;
                    spec.schema = Some(schema.schema);
                }
                Some(_) => {}
                None if !register_over_existing
                    && let Ok((id, text)) = registry.latest(&subject(&source.topic, role)).map(|(id, schema)| (id, schema.schema)) =>
                {
                    spec.schema_id = Some(id);
                    spec.schema = Some(text);
                }
                None => {
                    let text = schema_for(&spec, &columns, role);
                    let subject = subject(&source.topic, role);
                    let schema = Schema { schema_type: schema_type_of(&spec), schema: text.clone(), references: Vec::new() };
                    let id = registry
                        .register(&subject, &schema)
                        .map_err(|e| EngineError::rule_caused(format!("Could not register schema for topic: {e}. Subject: {subject}, schema: {text}"), e))?;
                    spec.schema_id = Some(id);
                    spec.schema = Some(text);
                }
            }
            if role == Role::Key {
                source.key_format = spec;
            } else {
                source.value_format = spec;
            }
        }
        Ok(())
    }
}

fn role_word(role: Role) -> &'static str {
    if role == Role::Key { "KEY" } else { "VALUE" }
}

/// Whether a CREATE's columns leave the keys (or values) to the registry.
pub(super) fn infers(columns_declared: bool, spec: &FormatSpec) -> bool {
    !columns_declared && spec.uses_registry()
}
