//! The catalog: streams, tables and persistent queries, and the command topic that makes
//! them durable. Every statement that changes the catalog is appended to the command
//! topic before it takes effect; on start the engine replays it.

pub mod command_log;
pub mod internal_topics;
pub mod types;

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::format::FormatSpec;
use types::LogicalSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Stream,
    Table,
}

impl SourceKind {
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Stream => "STREAM",
            SourceKind::Table => "TABLE",
        }
    }

    /// "Stream" / "Table" for messages.
    pub fn title(self) -> &'static str {
        match self {
            SourceKind::Stream => "Stream",
            SourceKind::Table => "Table",
        }
    }
}

/// The kind of window of a windowed table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WindowType {
    Tumbling,
    Hopping,
    Session,
}

impl WindowType {
    pub fn name(self) -> &'static str {
        match self {
            WindowType::Tumbling => "TUMBLING",
            WindowType::Hopping => "HOPPING",
            WindowType::Session => "SESSION",
        }
    }
}

/// Where a source's event time comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampSpec {
    pub column: String,
    pub format: Option<String>,
}

/// A stream or table.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSource {
    pub name: String,
    pub kind: SourceKind,
    pub schema: LogicalSchema,
    pub topic: String,
    pub key_format: FormatSpec,
    pub value_format: FormatSpec,
    pub timestamp: Option<TimestampSpec>,
    /// The statement that created it.
    pub sql: String,
    /// Created with CREATE SOURCE: no INSERTs.
    pub read_only: bool,
    /// For windowed tables: the window kind (rows are per key and window).
    pub window: Option<WindowType>,
    /// For TUMBLING and HOPPING windows: the window size, ms (a record's window ends
    /// this long after it starts).
    pub window_size_ms: Option<i64>,
}

impl DataSource {
    /// The columns a query over this source sees: its columns, WINDOWSTART and WINDOWEND
    /// when windowed, then ROWTIME, ROWPARTITION and ROWOFFSET.
    pub fn query_schema(&self) -> arrow::datatypes::SchemaRef {
        let base = self.schema.query_arrow_schema();
        if self.window.is_none() {
            return base;
        }
        let n = self.schema.columns().len();
        let mut fields: Vec<arrow::datatypes::Field> = base.fields().iter().take(n).map(|f| f.as_ref().clone()).collect();
        fields.push(arrow::datatypes::Field::new("WINDOWSTART", arrow::datatypes::DataType::Int64, true));
        fields.push(arrow::datatypes::Field::new("WINDOWEND", arrow::datatypes::DataType::Int64, true));
        fields.extend(base.fields().iter().skip(n).map(|f| f.as_ref().clone()));
        std::sync::Arc::new(arrow::datatypes::Schema::new(fields))
    }
}

impl DataSource {
    /// The RocksDB column family holding this table's rows.
    pub fn state_family(&self) -> String {
        format!("t/{}", self.name)
    }
}

/// A persistent query: a CREATE ... AS SELECT or INSERT INTO ... SELECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryMeta {
    pub id: String,
    pub sql: String,
    pub sink: String,
    pub sink_topic: String,
    pub sources: Vec<String>,
    /// Session properties at creation (e.g. auto.offset.reset for the first start).
    pub properties: BTreeMap<String, String>,
    /// The custom types when it was created, which its SQL may use (a later DROP TYPE
    /// does not change a running query).
    pub types: BTreeMap<String, types::SqlType>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{kind} {name} does not exist")]
    UnknownSource { kind: &'static str, name: String },
    #[error("Cannot add {kind} '{name}': A {existing} with the same name already exists")]
    SourceExists { kind: &'static str, existing: &'static str, name: String },
    #[error(
        "Cannot drop {name}.\nThe following queries read from this source: [{readers}].\nThe following queries write into this source: \
            [{writers}].\nYou need to terminate them before dropping {name}."
    )]
    SourceInUse { name: String, readers: String, writers: String },
    #[error("Unknown queryId: {0}")]
    UnknownQuery(String),
    #[error(transparent)]
    Log(#[from] crate::log::LogError),
    #[error(transparent)]
    Batch(#[from] crate::log::BatchError),
    #[error("a catalog command cannot be encoded: {0}")]
    BadCommand(#[source] serde_json::Error),
    #[error(
        "the command topic {topic} starts at offset {start}, so the first {start} catalog commands are missing (deleted by retention in an earlier \
            version, or by hand); the catalog cannot be rebuilt from it. Restore the data directory from a backup, or move it away to start with an \
                empty catalog"
    )]
    CommandTopicTruncated { topic: String, start: i64 },
}

#[derive(Default)]
struct Inner {
    sources: BTreeMap<String, Arc<DataSource>>,
    queries: BTreeMap<String, Arc<QueryMeta>>,
    /// Custom types (CREATE TYPE), by name.
    types: BTreeMap<String, types::SqlType>,
    /// Persistent queries stopped by PAUSE until a RESUME.
    paused: std::collections::BTreeSet<String>,
    /// Server-wide property defaults set by ALTER SYSTEM.
    system: BTreeMap<String, String>,
}

/// The in-memory catalog; the engine keeps it in step with the command topic.
#[derive(Default)]
pub struct Catalog {
    inner: RwLock<Inner>,
}

impl Catalog {
    pub fn source(&self, name: &str) -> Option<Arc<DataSource>> {
        self.inner.read().sources.get(name).cloned()
    }

    /// Looks a source up, with an error that names it.
    pub fn require_source(&self, name: &str) -> Result<Arc<DataSource>, CatalogError> {
        self.source(name).ok_or_else(|| CatalogError::UnknownSource { kind: "Stream or table", name: name.to_string() })
    }

    pub fn sources(&self) -> Vec<Arc<DataSource>> {
        self.inner.read().sources.values().cloned().collect()
    }

    /// Adds or (with `replace`) replaces a source.
    pub fn add_source(&self, source: DataSource, replace: bool) -> Result<(), CatalogError> {
        let mut inner = self.inner.write();
        if let Some(existing) = inner.sources.get(&source.name)
            && !replace
        {
            return Err(CatalogError::SourceExists { kind: source.kind.title(), existing: existing.kind.title(), name: source.name.clone() });
        }
        inner.sources.insert(source.name.clone(), Arc::new(source));
        Ok(())
    }

    /// Removes a source; refuses while queries read or write it.
    pub fn drop_source(&self, name: &str) -> Result<Arc<DataSource>, CatalogError> {
        let mut inner = self.inner.write();
        if !inner.sources.contains_key(name) {
            return Err(CatalogError::UnknownSource { kind: "Source", name: name.to_string() });
        }
        let readers: Vec<_> = inner.queries.values().filter(|q| q.sources.iter().any(|s| s == name)).map(|q| q.id.clone()).collect();
        let writers: Vec<_> = inner.queries.values().filter(|q| q.sink == name).map(|q| q.id.clone()).collect();
        if !readers.is_empty() || !writers.is_empty() {
            return Err(CatalogError::SourceInUse { name: name.to_string(), readers: readers.join(", "), writers: writers.join(", ") });
        }
        Ok(inner.sources.remove(name).expect("checked above"))
    }

    pub fn add_query(&self, q: QueryMeta) {
        self.inner.write().queries.insert(q.id.clone(), Arc::new(q));
    }

    pub fn remove_query(&self, id: &str) -> Result<Arc<QueryMeta>, CatalogError> {
        let mut inner = self.inner.write();
        inner.paused.remove(id);
        inner.queries.remove(id).ok_or_else(|| CatalogError::UnknownQuery(id.to_string()))
    }

    /// Marks a query paused (PAUSE) or not (RESUME).
    pub fn set_paused(&self, id: &str, paused: bool) {
        let mut inner = self.inner.write();
        if paused {
            inner.paused.insert(id.to_string());
        } else {
            inner.paused.remove(id);
        }
    }

    pub fn is_paused(&self, id: &str) -> bool {
        self.inner.read().paused.contains(id)
    }

    /// Sets a server-wide property default (ALTER SYSTEM).
    pub fn set_system_property(&self, name: &str, value: &str) {
        self.inner.write().system.insert(name.to_string(), value.to_string());
    }

    /// The properties set by ALTER SYSTEM.
    pub fn system_properties(&self) -> BTreeMap<String, String> {
        self.inner.read().system.clone()
    }

    pub fn query(&self, id: &str) -> Option<Arc<QueryMeta>> {
        self.inner.read().queries.get(id).cloned()
    }

    /// The custom types statements may use.
    pub fn types(&self) -> BTreeMap<String, types::SqlType> {
        self.inner.read().types.clone()
    }

    /// Registers a custom type; false when the name is taken.
    pub fn add_type(&self, name: &str, ty: types::SqlType) -> bool {
        let mut inner = self.inner.write();
        if inner.types.contains_key(name) {
            return false;
        }
        inner.types.insert(name.to_string(), ty);
        true
    }

    /// Forgets a custom type; false when there was none by that name.
    pub fn drop_type(&self, name: &str) -> bool {
        self.inner.write().types.remove(name).is_some()
    }

    pub fn queries(&self) -> Vec<Arc<QueryMeta>> {
        self.inner.read().queries.values().cloned().collect()
    }

    /// Ids of queries reading from / writing into a source.
    pub fn readers_and_writers(&self, name: &str) -> (Vec<String>, Vec<String>) {
        let inner = self.inner.read();
        let readers = inner.queries.values().filter(|q| q.sources.iter().any(|s| s == name)).map(|q| q.id.clone()).collect();
        let writers = inner.queries.values().filter(|q| q.sink == name).map(|q| q.id.clone()).collect();
        (readers, writers)
    }
}
