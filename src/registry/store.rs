//! The registry's model, as Confluent Schema Registry defines it: subjects holding numbered
//! versions of schemas, schemas with global ids that are never reused (the same schema
//! under two subjects keeps one id), soft and hard deletes, and compatibility levels for
//! the server and per subject. Pure state: `SchemaRegistry` (in `mod.rs`) persists each
//! change as a `Change` record and replays them at start.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::RegistryError;

/// The schema languages the registry keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SchemaType {
    Avro,
    Protobuf,
    Json,
}

impl SchemaType {
    pub fn name(self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Protobuf => "PROTOBUF",
            SchemaType::Json => "JSON",
        }
    }

    /// A `schemaType` as clients send it (absent means AVRO).
    pub fn parse(text: Option<&str>) -> Result<SchemaType, RegistryError> {
        match text.map(str::to_ascii_uppercase).as_deref() {
            None | Some("AVRO") => Ok(SchemaType::Avro),
            Some("PROTOBUF") => Ok(SchemaType::Protobuf),
            Some("JSON") => Ok(SchemaType::Json),
            Some(other) => Err(RegistryError::InvalidSchema(format!("unknown schema type {other}; the types are AVRO, PROTOBUF and JSON"))),
        }
    }
}

/// A schema another one imports, by the name it imports it with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaReference {
    pub name: String,
    pub subject: String,
    pub version: i32,
}

/// A schema as registered: its language, its text and what it imports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    #[serde(rename = "schemaType")]
    pub schema_type: SchemaType,
    pub schema: String,
    #[serde(default)]
    pub references: Vec<SchemaReference>,
}

impl Schema {
    /// The text two registrations of "the same schema" share: AVRO and JSON schemas are
    /// JSON, compared without their layout; PROTOBUF text without surrounding blanks.
    fn canonical(&self) -> String {
        match self.schema_type {
            SchemaType::Avro | SchemaType::Json => {
                serde_json::from_str::<serde_json::Value>(&self.schema).map(|v| v.to_string()).unwrap_or_else(|_| self.schema.trim().to_string())
            }
            SchemaType::Protobuf => self.schema.trim().to_string(),
        }
    }

    /// Checks the schema's text: an AVRO schema parses; a JSON schema is JSON; a PROTOBUF
    /// one is not empty (its parser comes with the PROTOBUF format).
    pub fn validate(&self) -> Result<(), RegistryError> {
        match self.schema_type {
            SchemaType::Avro => super::compat::parse_avro(self).map(|_| ()),
            SchemaType::Json => match serde_json::from_str::<serde_json::Value>(&self.schema) {
                Ok(_) => Ok(()),
                Err(e) => Err(RegistryError::InvalidSchema(format!("the {} schema is not JSON: {e}", self.schema_type.name()))),
            },
            SchemaType::Protobuf if self.references.is_empty() => {
                crate::format::protobuf_schema::compile(&self.schema).map(|_| ()).map_err(RegistryError::InvalidSchema)
            }
            SchemaType::Protobuf if self.schema.trim().is_empty() => Err(RegistryError::InvalidSchema("the PROTOBUF schema is empty".into())),
            // Checked with its imports when registered.
            SchemaType::Protobuf => Ok(()),
        }
    }
}

/// A compatibility level (`BACKWARD` by default, as Confluent's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Compatibility {
    None,
    #[default]
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl Compatibility {
    pub fn parse(text: &str) -> Result<Compatibility, RegistryError> {
        serde_json::from_value(serde_json::Value::String(text.to_ascii_uppercase())).map_err(|_| RegistryError::InvalidCompatibility(text.to_string()))
    }

    pub fn name(self) -> &'static str {
        match self {
            Compatibility::None => "NONE",
            Compatibility::Backward => "BACKWARD",
            Compatibility::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Compatibility::Forward => "FORWARD",
            Compatibility::ForwardTransitive => "FORWARD_TRANSITIVE",
            Compatibility::Full => "FULL",
            Compatibility::FullTransitive => "FULL_TRANSITIVE",
        }
    }
}

/// One version of a subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    pub version: i32,
    pub id: i32,
    pub deleted: bool,
}

/// What the registry (or a subject) accepts, as Confluent's `/mode` sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Mode {
    /// Registrations and deletes, checked by compatibility.
    #[default]
    Readwrite,
    /// Reads only.
    Readonly,
    /// Registrations with given ids and versions, not checked (copying a registry).
    Import,
}

impl Mode {
    pub fn parse(text: &str) -> Result<Mode, RegistryError> {
        match text.trim().to_ascii_uppercase().as_str() {
            "READWRITE" => Ok(Mode::Readwrite),
            "READONLY" | "READONLY_OVERRIDE" => Ok(Mode::Readonly),
            "IMPORT" => Ok(Mode::Import),
            other => Err(RegistryError::InvalidMode(other.to_string())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Readwrite => "READWRITE",
            Mode::Readonly => "READONLY",
            Mode::Import => "IMPORT",
        }
    }
}

/// One durable change; replaying them in order rebuilds the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// A version registered under a subject (with its schema, which has `id`).
    Register { subject: String, version: i32, id: i32, schema: Schema },
    /// Versions marked deleted (soft delete).
    SoftDelete { subject: String, versions: Vec<i32> },
    /// Versions gone for good (hard delete, after a soft one).
    HardDelete { subject: String, versions: Vec<i32> },
    /// A compatibility level for the server (`subject` None) or a subject; None clears it.
    Config { subject: Option<String>, level: Option<Compatibility> },
    /// A mode for the server (`subject` None) or a subject; None clears it.
    Mode { subject: Option<String>, mode: Option<Mode> },
}

/// The registry's state.
#[derive(Debug, Default)]
pub struct Store {
    schemas: BTreeMap<i32, Schema>,
    subjects: BTreeMap<String, Vec<Version>>,
    global: Compatibility,
    per_subject: BTreeMap<String, Compatibility>,
    mode: Mode,
    subject_modes: BTreeMap<String, Mode>,
}

/// What a registration found: a new version to record, or the version that already holds
/// the schema.
#[derive(Debug, PartialEq)]
pub enum Registration {
    Existing { id: i32, version: i32 },
    New(Change),
}

impl Store {
    /// Applies a change (from a new request or a replay).
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::Register { subject, version, id, schema } => {
                self.schemas.entry(*id).or_insert_with(|| schema.clone());
                let versions = self.subjects.entry(subject.clone()).or_default();
                versions.retain(|v| v.version != *version);
                versions.push(Version { version: *version, id: *id, deleted: false });
                versions.sort_by_key(|v| v.version);
            }
            Change::SoftDelete { subject, versions } => {
                if let Some(vs) = self.subjects.get_mut(subject) {
                    vs.iter_mut().filter(|v| versions.contains(&v.version)).for_each(|v| v.deleted = true);
                }
            }
            Change::HardDelete { subject, versions } => {
                if let Some(vs) = self.subjects.get_mut(subject) {
                    vs.retain(|v| !versions.contains(&v.version));
                    if vs.is_empty() {
                        self.subjects.remove(subject);
                    }
                }
            }
            Change::Config { subject: None, level } => self.global = level.unwrap_or_default(),
            Change::Config { subject: Some(s), level: Some(l) } => {
                self.per_subject.insert(s.clone(), *l);
            }
            Change::Config { subject: Some(s), level: None } => {
                self.per_subject.remove(s);
            }
            Change::Mode { subject: None, mode } => self.mode = mode.unwrap_or_default(),
            Change::Mode { subject: Some(s), mode: Some(m) } => {
                self.subject_modes.insert(s.clone(), *m);
            }
            Change::Mode { subject: Some(s), mode: None } => {
                self.subject_modes.remove(s);
            }
        }
    }

    /// What registering `schema` under `subject` means: the version holding it already, or
    /// a new version (with the id the same schema has elsewhere, or a new one).
    pub fn register(&self, subject: &str, schema: &Schema) -> Result<Registration, RegistryError> {
        self.register_as(subject, schema, None)
    }

    /// [`Store::register`], with the id given as in Confluent's IMPORT mode: compatibility is
    /// not checked, and the id must be free or hold the same schema.
    pub fn register_as(&self, subject: &str, schema: &Schema, given_id: Option<i32>) -> Result<Registration, RegistryError> {
        self.check_writable(subject)?;
        if schema.references.is_empty() || schema.schema_type != SchemaType::Avro {
            schema.validate()?;
        }
        for r in &schema.references {
            self.version(&r.subject, &r.version.to_string(), false)?;
        }
        if schema.schema_type == SchemaType::Avro && !schema.references.is_empty() {
            let texts = self.referenced_texts(schema, 0)?;
            apache_avro::Schema::parse_str_with_list(&schema.schema, &texts)
                .map_err(|e| RegistryError::InvalidSchema(format!("not an Avro schema with its references: {e}")))?;
        }
        if schema.schema_type == SchemaType::Protobuf && !schema.references.is_empty() {
            crate::format::protobuf_schema::compile_with(&schema.schema, &self.imports(schema)?).map_err(RegistryError::InvalidSchema)?;
        }
        let canonical = schema.canonical();
        let live = self.subjects.get(subject).map(|vs| vs.iter().filter(|v| !v.deleted).collect::<Vec<_>>()).unwrap_or_default();
        if let Some(v) = live.iter().find(|v| {
            given_id.is_none_or(|g| g == v.id) && self.schemas.get(&v.id).is_some_and(|s| s.schema_type == schema.schema_type && s.canonical() == canonical)
        }) {
            return Ok(Registration::Existing { id: v.id, version: v.version });
        }
        if let Some(id) = given_id {
            if self.schemas.get(&id).is_some_and(|s| s.schema_type != schema.schema_type || s.canonical() != canonical) {
                return Err(RegistryError::InvalidSchema(format!("schema id {id} is taken by another schema; import the schema with a free id")));
            }
            let version = self.subjects.get(subject).and_then(|vs| vs.iter().map(|v| v.version).max()).unwrap_or(0) + 1;
            return Ok(Registration::New(Change::Register { subject: subject.to_string(), version, id, schema: schema.clone() }));
        }
        let level = self.per_subject.get(subject).copied().unwrap_or(self.global);
        if let Err(reasons) = self.check(level, schema, self.live_schemas(subject))? {
            return Err(RegistryError::Incompatible { subject: subject.to_string(), reasons });
        }
        let id = self
            .schemas
            .iter()
            .find(|(_, s)| s.schema_type == schema.schema_type && s.references == schema.references && s.canonical() == canonical)
            .map(|(id, _)| *id)
            .unwrap_or_else(|| self.schemas.keys().next_back().map_or(1, |m| m + 1));
        // Versions keep counting past soft-deleted ones, as Confluent's do.
        let version = self.subjects.get(subject).and_then(|vs| vs.iter().map(|v| v.version).max()).unwrap_or(0) + 1;
        Ok(Registration::New(Change::Register { subject: subject.to_string(), version, id, schema: schema.clone() }))
    }

    /// Why `schema` would be incompatible with `subject` at its level (empty: compatible):
    /// against the given version, or for `latest` against what a registration checks.
    pub fn incompatibilities(&self, subject: &str, version: &str, schema: &Schema) -> Result<Vec<String>, RegistryError> {
        schema.validate()?;
        let level = self.per_subject.get(subject).copied().unwrap_or(self.global);
        let earlier: Vec<&Schema> = match version {
            "latest" | "-1" => {
                self.versions(subject, false)?;
                self.live_schemas(subject)
            }
            v => vec![self.version(subject, v, false)?.1],
        };
        Ok(self.check(level, schema, earlier)?.err().unwrap_or_default())
    }

    /// [`super::compat::check`] on the schemas with their references made part of them.
    fn check(&self, level: Compatibility, schema: &Schema, earlier: Vec<&Schema>) -> Result<Result<(), Vec<String>>, RegistryError> {
        if level == Compatibility::None {
            return Ok(Ok(()));
        }
        let earlier = earlier.into_iter().map(|s| self.self_contained(s)).collect::<Result<Vec<_>, _>>()?;
        Ok(super::compat::check(level, &self.self_contained(schema)?, &earlier.iter().collect::<Vec<_>>()))
    }

    /// The schemas of a subject's live versions, oldest first.
    fn live_schemas(&self, subject: &str) -> Vec<&Schema> {
        self.subjects.get(subject).into_iter().flatten().filter(|v| !v.deleted).filter_map(|v| self.schemas.get(&v.id)).collect()
    }

    /// The subjects, sorted (soft-deleted ones too when asked).
    pub fn subjects(&self, deleted: bool) -> Vec<String> {
        self.subjects.iter().filter(|(_, vs)| vs.iter().any(|v| deleted || !v.deleted)).map(|(s, _)| s.clone()).collect()
    }

    /// A subject's version numbers.
    pub fn versions(&self, subject: &str, deleted: bool) -> Result<Vec<i32>, RegistryError> {
        let vs: Vec<i32> = self.subjects.get(subject).into_iter().flatten().filter(|v| deleted || !v.deleted).map(|v| v.version).collect();
        if vs.is_empty() { Err(RegistryError::SubjectNotFound(subject.to_string())) } else { Ok(vs) }
    }

    /// A version by number, `latest` or `-1`.
    pub fn version(&self, subject: &str, which: &str, deleted: bool) -> Result<(Version, &Schema), RegistryError> {
        let versions = self.versions(subject, deleted)?;
        let number = match which {
            "latest" | "-1" => *versions.last().ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()))?,
            n => n.parse::<i32>().ok().filter(|n| *n >= 1).ok_or_else(|| RegistryError::InvalidVersion(which.to_string()))?,
        };
        let v = self
            .subjects
            .get(subject)
            .and_then(|vs| vs.iter().find(|v| v.version == number && (deleted || !v.deleted)))
            .ok_or_else(|| RegistryError::VersionNotFound { subject: subject.to_string(), version: number })?;
        let schema = self.schemas.get(&v.id).ok_or(RegistryError::SchemaNotFound(v.id))?;
        Ok((v.clone(), schema))
    }

    /// The texts of the schemas `schema` references, and of those they reference, each once.
    fn referenced_texts(&self, schema: &Schema, depth: usize) -> Result<Vec<String>, RegistryError> {
        if depth > 32 {
            return Err(RegistryError::InvalidSchema("schema references nest more than 32 deep".into()));
        }
        let mut out: Vec<String> = Vec::new();
        for r in &schema.references {
            let (_, referenced) = self.version(&r.subject, &r.version.to_string(), false)?;
            for t in self.referenced_texts(referenced, depth + 1)?.into_iter().chain([referenced.schema.clone()]) {
                if !out.contains(&t) {
                    out.push(t);
                }
            }
        }
        Ok(out)
    }

    /// The files a PROTOBUF schema imports (see [`super::protobuf_imports`]).
    fn imports(&self, schema: &Schema) -> Result<Vec<(String, String)>, RegistryError> {
        super::protobuf_imports(schema, 0, &|r| self.version(&r.subject, &r.version.to_string(), false).map(|(_, s)| s.clone()))
    }

    /// A schema with its references made part of it (AVRO: each referenced type defined at
    /// its first use; PROTOBUF: one descriptor set of the file and its imports), for readers
    /// that take one self-contained schema.
    pub fn resolved(&self, id: i32) -> Result<Schema, RegistryError> {
        self.self_contained(self.schema(id)?)
    }

    /// [`Store::resolved`] for a schema that may not be registered yet.
    fn self_contained(&self, schema: &Schema) -> Result<Schema, RegistryError> {
        if schema.references.is_empty() {
            return Ok(schema.clone());
        }
        if schema.schema_type == SchemaType::Protobuf {
            let set = crate::format::protobuf_schema::resolved_set(&schema.schema, &self.imports(schema)?).map_err(RegistryError::InvalidSchema)?;
            return Ok(Schema { schema: set, references: Vec::new(), ..schema.clone() });
        }
        if schema.schema_type != SchemaType::Avro {
            return Ok(schema.clone());
        }
        let parse = |t: &str| serde_json::from_str::<serde_json::Value>(t).map_err(|e| RegistryError::InvalidSchema(e.to_string()));
        let referenced = self.referenced_texts(schema, 0)?.iter().map(|t| parse(t)).collect::<Result<Vec<_>, _>>()?;
        let main = parse(&schema.schema)?;
        let text = crate::format::avro_schema::resolve_references(&main, &referenced).to_string();
        Ok(Schema { schema: text, references: Vec::new(), ..schema.clone() })
    }

    /// A schema as a reader asks for it with Confluent's `format` parameter: PROTOBUF
    /// `serialized` is the base64 `FileDescriptorProto` (what Confluent's clients parse);
    /// otherwise the text as registered.
    pub fn formatted(&self, schema: &Schema, format: Option<&str>) -> Result<Schema, RegistryError> {
        if schema.schema_type != SchemaType::Protobuf || format != Some("serialized") {
            return Ok(schema.clone());
        }
        let text = crate::format::protobuf_schema::serialized(&schema.schema, &self.imports(schema)?).map_err(RegistryError::InvalidSchema)?;
        Ok(Schema { schema: text, ..schema.clone() })
    }

    /// The lowest id from `from` on that no schema has.
    pub fn free_id(&self, from: i32) -> i32 {
        (from..).find(|id| !self.schemas.contains_key(id)).unwrap_or(from)
    }

    /// A schema by its global id.
    pub fn schema(&self, id: i32) -> Result<&Schema, RegistryError> {
        self.schemas.get(&id).ok_or(RegistryError::SchemaNotFound(id))
    }

    /// The (subject, version) pairs that hold schema `id`.
    pub fn uses_of(&self, id: i32) -> Result<Vec<(String, i32)>, RegistryError> {
        self.schema(id)?;
        Ok(self.subjects.iter().flat_map(|(s, vs)| vs.iter().filter(|v| v.id == id && !v.deleted).map(move |v| (s.clone(), v.version))).collect())
    }

    /// The version of `subject` that holds `schema` (lookup without registering).
    pub fn lookup(&self, subject: &str, schema: &Schema) -> Result<(Version, &Schema), RegistryError> {
        self.versions(subject, false)?;
        let canonical = schema.canonical();
        let vs = self.subjects.get(subject).into_iter().flatten().filter(|v| !v.deleted);
        for v in vs {
            if let Some(s) = self.schemas.get(&v.id)
                && s.schema_type == schema.schema_type
                && s.canonical() == canonical
            {
                return Ok((v.clone(), s));
            }
        }
        Err(RegistryError::SchemaNotFoundInSubject(subject.to_string()))
    }

    /// The change that deletes a subject, or one of its versions: soft first, hard
    /// (`permanent`) only for what is already soft-deleted.
    pub fn delete(&self, subject: &str, version: Option<&str>, permanent: bool) -> Result<(Change, Vec<i32>), RegistryError> {
        let all = self.subjects.get(subject).ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()))?;
        let chosen: Vec<&Version> = match version {
            None => all.iter().filter(|v| permanent || !v.deleted).collect(),
            Some(which) => vec![
                self.version(subject, which, permanent)
                    .map(|(v, _)| all.iter().find(|x| x.version == v.version))?
                    .ok_or_else(|| RegistryError::VersionNotFound { subject: subject.to_string(), version: which.parse().unwrap_or(0) })?,
            ],
        };
        if chosen.is_empty() {
            return Err(RegistryError::SubjectNotFound(subject.to_string()));
        }
        if permanent && let Some(v) = chosen.iter().find(|v| !v.deleted) {
            return Err(match version {
                None => RegistryError::SubjectNotSoftDeleted(subject.to_string()),
                Some(_) => RegistryError::VersionNotSoftDeleted { subject: subject.to_string(), version: v.version },
            });
        }
        let versions: Vec<i32> = chosen.iter().map(|v| v.version).collect();
        let change = if permanent {
            Change::HardDelete { subject: subject.to_string(), versions: versions.clone() }
        } else {
            Change::SoftDelete { subject: subject.to_string(), versions: versions.clone() }
        };
        Ok((change, versions))
    }

    /// The server's compatibility level.
    /// The mode of a subject (its own, else the server's).
    pub fn mode(&self, subject: Option<&str>) -> Mode {
        subject.and_then(|s| self.subject_modes.get(s).copied()).unwrap_or(self.mode)
    }

    /// A subject's own mode, if it has one.
    pub fn subject_mode(&self, subject: &str) -> Option<Mode> {
        self.subject_modes.get(subject).copied()
    }

    /// Refuses changes to a subject in READONLY mode.
    pub fn check_writable(&self, subject: &str) -> Result<(), RegistryError> {
        match self.mode(Some(subject)) {
            Mode::Readonly => Err(RegistryError::NotPermitted(format!("Subject {subject} is in read-only mode"))),
            _ => Ok(()),
        }
    }

    pub fn global_compatibility(&self) -> Compatibility {
        self.global
    }

    /// A subject's own level, if it has one.
    pub fn subject_compatibility(&self, subject: &str) -> Option<Compatibility> {
        self.per_subject.get(subject).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avro(text: &str) -> Schema {
        Schema { schema_type: SchemaType::Avro, schema: text.to_string(), references: Vec::new() }
    }

    fn register(store: &mut Store, subject: &str, schema: &Schema) -> (i32, i32) {
        match store.register(subject, schema).expect("registers") {
            Registration::Existing { id, version } => (id, version),
            Registration::New(change) => {
                store.apply(&change);
                let Change::Register { id, version, .. } = change else { unreachable!("a registration") };
                (id, version)
            }
        }
    }

    #[test]
    fn ids_are_global_and_versions_count_per_subject() {
        let mut s = Store::default();
        // Unrelated schemas under one subject: no compatibility level to hold them to.
        s.apply(&Change::Config { subject: Some("t-value".into()), level: Some(Compatibility::None) });
        let a = avro(r#"{"type": "string"}"#);
        let b = avro(r#"{"type":"long"}"#);
        assert_eq!(register(&mut s, "t-value", &a), (1, 1));
        assert_eq!(register(&mut s, "t-value", &avro(r#"{ "type" : "string" }"#)), (1, 1), "the same schema, laid out otherwise");
        assert_eq!(register(&mut s, "t-value", &b), (2, 2));
        assert!(
            matches!(
                s.register("u-value", &a).and_then(|_| {
                    let mut strict = Store::default();
                    strict.apply(&Change::Register { subject: "u-value".into(), version: 1, id: 1, schema: a.clone() });
                    strict.register("u-value", &b)
                }),
                Err(RegistryError::Incompatible { .. })
            ),
            "BACKWARD, the default, refuses a long where a string was"
        );
        assert_eq!(register(&mut s, "u-value", &a), (1, 1), "the same schema keeps its id under another subject");
        assert_eq!(s.subjects(false), vec!["t-value".to_string(), "u-value".to_string()]);
        assert_eq!(s.version("t-value", "latest", false).map(|(v, _)| v.id), Ok(2));
        assert_eq!(s.uses_of(1), Ok(vec![("t-value".to_string(), 1), ("u-value".to_string(), 1)]));
    }

    #[test]
    fn deletes_are_soft_first_and_ids_are_never_reused() {
        let mut s = Store::default();
        register(&mut s, "t-value", &avro(r#""string""#));
        assert_eq!(s.delete("t-value", None, true).map(|(_, v)| v), Err(RegistryError::SubjectNotSoftDeleted("t-value".into())));
        let (soft, versions) = s.delete("t-value", None, false).expect("soft delete");
        assert_eq!(versions, vec![1]);
        s.apply(&soft);
        assert_eq!(s.versions("t-value", false), Err(RegistryError::SubjectNotFound("t-value".into())));
        assert_eq!(s.subjects(true), vec!["t-value".to_string()]);
        let (hard, _) = s.delete("t-value", None, true).expect("hard delete");
        s.apply(&hard);
        assert!(s.subjects(true).is_empty());
        assert!(s.schema(1).is_ok(), "a schema stays readable by id");
        assert_eq!(register(&mut s, "t-value", &avro(r#""int""#)), (2, 1), "a new schema gets a new id");
    }

    #[test]
    fn bad_schemas_and_versions_are_refused() {
        let s = Store::default();
        assert!(matches!(s.register("t", &avro("{not json")), Err(RegistryError::InvalidSchema(_))));
        assert_eq!(s.version("t", "0", false).map(|(v, _)| v.version), Err(RegistryError::SubjectNotFound("t".into())));
        assert_eq!(Compatibility::parse("full_transitive"), Ok(Compatibility::FullTransitive));
        assert!(Compatibility::parse("sideways").is_err());
        assert_eq!(SchemaType::parse(None), Ok(SchemaType::Avro));
    }
}
