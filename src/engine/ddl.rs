//! Statements that change the catalog: CREATE STREAM/TABLE, CREATE ... AS SELECT,
//! INSERT INTO ... SELECT, DROP and TERMINATE. Each is first prepared (fully validated,
//! no side effects), then appended to the command topic, then committed.

use super::{Rejection, ServerFault};
use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::props::SourceProps;
use super::schemas;
use super::{Engine, EngineError, Session};
use crate::catalog::types::{Column, ColumnKind, LogicalSchema, SqlType, headers_type, quote_ident};
use crate::catalog::{DataSource, QueryMeta, SourceKind, TimestampSpec};
use crate::exec::OffsetReset;
use crate::format::{FormatKind, FormatSpec, Role};
use crate::log::TopicConfig;
use crate::sql::ast::{ColumnConstraint, ColumnDef, Ident, ParsedStatement, Props, Query, Statement};
use crate::sql::join_plan::{JoinPlan, is_join_query, plan_join};
use crate::sql::parser;
use crate::sql::planner::{Purpose, plan_select};

/// A validated catalog change, ready to commit.
pub(super) enum Change {
    /// Nothing to do (IF [NOT] EXISTS); the entity says why.
    Noop(Value),
    /// A table also gets the query that materializes it.
    CreateSource {
        source: DataSource,
        replace: bool,
        create_topic: Option<(i32, TopicConfig)>,
        query: Option<QueryMeta>,
    },
    CreateAsSelect {
        sink: DataSource,
        create_topic: Option<(i32, TopicConfig)>,
        query: QueryMeta,
        /// CREATE OR REPLACE: the running query (same id) that the new definition replaces.
        replaces: Option<String>,
    },
    InsertSelect {
        query: QueryMeta,
    },
    Drop {
        source: Arc<DataSource>,
        delete_topic: bool,
        terminate: Vec<String>,
    },
    Terminate {
        ids: Vec<String>,
    },
    CreateType {
        name: String,
        ty: SqlType,
    },
    DropType {
        name: String,
    },
    /// ALTER ... ADD COLUMN: the source with its new schema; a table's materialization
    /// restarts as `query`.
    Alter {
        source: DataSource,
        query: Option<QueryMeta>,
    },
    /// DROP or TERMINATE of what could not be restored on start: its failure goes.
    ForgetFailure(Value),
    /// PAUSE, RESUME or ALTER SYSTEM.
    Control(super::control::ControlChange),
}

impl Change {
    /// The source or sink the change creates.
    pub(super) fn created_source(&self) -> Option<&DataSource> {
        match self {
            Change::CreateSource { source, .. } => Some(source),
            Change::CreateAsSelect { sink, .. } => Some(sink),
            _ => None,
        }
    }

    pub(super) fn query_id(&self) -> Option<String> {
        match self {
            Change::CreateAsSelect { query, .. } | Change::InsertSelect { query } => Some(query.id.clone()),
            Change::CreateSource { query: Some(q), .. } | Change::Alter { query: Some(q), .. } => Some(q.id.clone()),
            _ => None,
        }
    }
}

/// Internal topics belong to the server: users may read an existing one through a
/// read-only source (`CREATE SOURCE STREAM/TABLE`), never write to one, create one or
/// declare a writable source over one.
/// The key format of a source or result whose statement names none: the session's
/// `ksql.persistence.default.format.key`, or KAFKA (as ksqlDB).
fn default_key_format(session: &Session) -> Result<FormatSpec, EngineError> {
    const PROPERTY: &str = "ksql.persistence.default.format.key";
    match session.properties.get(PROPERTY) {
        None => Ok(FormatSpec::new(FormatKind::Kafka)),
        Some(name) => FormatKind::parse(name).map(FormatSpec::new).map_err(|e| EngineError::rule_caused(format!("{PROPERTY} is invalid: {e}"), e)),
    }
}

fn refuse_internal_topic(log: &crate::log::Log, topic: &str, read_only: bool, exists: bool) -> Result<(), EngineError> {
    if !log.is_internal_topic(topic) {
        return Ok(());
    }
    let prefix = log.internal_prefix();
    if !exists {
        return Err(EngineError::rule(format!(
            "Topic '{topic}' cannot be created: topic names starting with '{prefix}' are reserved for Eddy's internal topics; choose another KAFKA_TOPIC"
        )));
    }
    if !read_only {
        return Err(EngineError::rule(format!(
            "Topic '{topic}' is internal to Eddy (names starting with '{prefix}'): it cannot be written to or deleted from SQL. To read it, declare a \
                read-only source: CREATE SOURCE STREAM ... WITH (KAFKA_TOPIC='{topic}', ...)"
        )));
    }
    Ok(())
}

fn current_status(text: &str, command_id: String, message: String, query_id: Option<&str>, seq: i64) -> Value {
    json!({
        "@type": "currentStatus",
        "statementText": text,
        "commandId": command_id,
        "commandStatus": {"status": "SUCCESS", "message": message, "queryId": query_id},
        "commandSequenceNumber": seq,
        "warnings": []
    })
}

/// IF NOT EXISTS on an existing source: nothing to do.
fn already_exists(text: &str, name: &str, existing: &DataSource, seq: i64) -> Change {
    let message = format!("Cannot add stream {}: A {} with the same name already exists.", quote_ident(name), existing.kind.title().to_lowercase());
    Change::Noop(current_status(text, format!("stream/{}/create", quote_ident(name)), message, None, seq))
}

/// Whether a query id names a table's materialization (`CST_`), not a query's.
pub(super) fn is_table_materialization(query_id: &str) -> bool {
    query_id.starts_with("CST_")
}

/// The `type/`NAME`/action` id ksqlDB gives a catalog command.
pub(super) fn command_id_of(statement: &str, types: &BTreeMap<String, SqlType>) -> Option<String> {
    let p = parser::parse_with_types(statement, types).ok()?.into_iter().next()?;
    Some(match p.statement {
        Statement::CreateSource { kind, name, .. } | Statement::CreateAsSelect { kind, name, .. } => {
            format!("{}/{}/create", kind.name().to_lowercase(), quote_ident(&name.value))
        }
        Statement::InsertSelect { target, .. } => {
            format!("stream/{}/create", quote_ident(&target.value))
        }
        Statement::Drop { kind, name, .. } => format!("{}/{}/drop", kind.name().to_lowercase(), quote_ident(&name.value)),
        Statement::Alter { kind, name, .. } => format!("{}/{}/alter", kind.name().to_lowercase(), quote_ident(&name.value)),
        Statement::CreateType { name, .. } => format!("type/{}/create", quote_ident(&name.value)),
        Statement::DropType { name, .. } => format!("type/{}/drop", quote_ident(&name.value)),
        Statement::Terminate { query_id } => {
            format!("terminate/{}/execute", query_id.map(|q| q.value).unwrap_or_else(|| "ALL".into()))
        }
        Statement::Pause { query_id } => format!("pause/{}/execute", query_id.map(|q| q.value).unwrap_or_else(|| "ALL".into())),
        Statement::Resume { query_id } => format!("resume/{}/execute", query_id.map(|q| q.value).unwrap_or_else(|| "ALL".into())),
        Statement::AlterSystem { name, .. } => format!("alter-system/{}/execute", name.to_ascii_lowercase()),
        _ => return None,
    })
}

fn check_unique_columns(columns: &[ColumnDef]) -> Result<(), EngineError> {
    for (i, c) in columns.iter().enumerate() {
        if columns[..i].iter().any(|o| o.name.value == c.name.value) {
            return Err(EngineError::rule(format!("{}: Duplicate column names: {}", c.name.pos, c.name.value)));
        }
        if crate::catalog::types::ROWTIME == c.name.value || c.name.value == "ROWPARTITION" || c.name.value == "ROWOFFSET" {
            return Err(EngineError::rule(format!("{}: '{}' is a reserved column name; choose another name", c.name.pos, c.name.value)));
        }
    }
    Ok(())
}

fn timestamp_spec(props: &SourceProps, schema: &LogicalSchema) -> Result<Option<TimestampSpec>, EngineError> {
    let Some(col) = &props.timestamp else {
        return Ok(None);
    };
    let Some(c) = schema.find(col) else {
        return Err(EngineError::rule(format!(
            "The TIMESTAMP column set in the WITH clause does not exist in the schema: '{col}'; it must be one of {}",
            schema.columns().iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
        )));
    };
    match c.ty {
        SqlType::Bigint | SqlType::Timestamp => {}
        SqlType::String if props.timestamp_format.is_some() => {}
        SqlType::String => {
            return Err(EngineError::rule(format!(
                "TIMESTAMP column {col} is a STRING, so TIMESTAMP_FORMAT is required, e.g. TIMESTAMP_FORMAT='yyyy-MM-dd''T''HH:mm:ss'"
            )));
        }
        ref other => {
            return Err(EngineError::rule(format!(
                "Timestamp column, `{col}`, should be LONG(INT64), TIMESTAMP, or a String with a timestamp_format specified. It is {other}."
            )));
        }
    }
    Ok(Some(TimestampSpec { column: col.clone(), format: props.timestamp_format.clone() }))
}

/// Topic settings in WITH only apply when Eddy creates the topic.
fn refuse_settings_for_existing(props: &SourceProps, topic: &str, replay: bool) -> Result<(), EngineError> {
    if props.topic_settings.is_empty() || replay {
        return Ok(());
    }
    let names: Vec<&str> = props.topic_settings.iter().map(|(k, _)| k.as_str()).collect();
    Err(EngineError::rule(format!(
        "topic '{topic}' already exists, so its settings ({}) cannot be set here; they apply only when the statement creates the topic",
        names.join(", ")
    )))
}

fn check_formats(schema: &LogicalSchema, key: &FormatSpec, value: &FormatSpec) -> Result<(), EngineError> {
    let keys: Vec<&Column> = schema.key_columns().collect();
    let values: Vec<&Column> = schema.value_columns().collect();
    let schema_error = |role: &str, spec: &FormatSpec, cols: &[&Column], is_key: bool, e: crate::format::FormatError| {
        let message = format!("{role} format does not support schema.\n{}\nreason: {e}", spec.describe_schema(cols, is_key));
        EngineError::rule_caused(message, e)
    };
    for k in &keys {
        if k.ty.any_nested(&|t| matches!(t, SqlType::Map(..))) {
            return Err(EngineError::rule(format!(
                "Map keys, including types that contain maps, are not supported as they may lead to unexpected behavior due to inconsistent \
                    serialization. Key column name: {}. Column type: {}. See https://github.com/confluentinc/ksql/issues/6621 for more.",
                quote_ident(&k.name),
                k.ty
            )));
        }
    }
    key.check_columns(&keys, true).map_err(|e| schema_error("Key", key, &keys, true, e))?;
    value.check_columns(&values, false).map_err(|e| schema_error("Value", value, &values, false, e))?;
    Ok(())
}

impl Engine {
    fn query_for<'a>(&self, p: &'a ParsedStatement) -> Option<&'a Query> {
        match &p.statement {
            Statement::CreateAsSelect { query, .. } | Statement::InsertSelect { query, .. } => Some(query),
            _ => None,
        }
    }

    /// Validates a catalog-changing statement without side effects.
    pub(super) fn prepare(&self, p: &ParsedStatement, session: &Session, seq: i64, query_id: Option<&str>, replay: bool) -> Result<Change, EngineError> {
        match &p.statement {
            Statement::CreateSource { kind, name, or_replace, if_not_exists, read_only, columns, props } => {
                self.prepare_create_source(p, *kind, &name.value, *or_replace, *if_not_exists, *read_only, columns, props, session, seq, replay)
            }
            Statement::CreateAsSelect { kind, name, or_replace, if_not_exists, props, query } => {
                self.prepare_csas(p, *kind, &name.value, *or_replace, *if_not_exists, props, query, session, seq, query_id, replay)
            }
            Statement::InsertSelect { target, query, .. } => self.prepare_insert_select(p, target, query, session, seq, query_id),
            Statement::CreateType { name, ty, if_not_exists } => {
                if let Some(existing) = self.catalog.types().get(&name.value) {
                    let message = format!("Cannot register custom type '{}' since it is already registered with type: {existing}", name.value);
                    if *if_not_exists {
                        return Ok(Change::Noop(current_status(&p.text, format!("type/{}/create", quote_ident(&name.value)), message, None, seq)));
                    }
                    return Err(EngineError::rule(format!("{message}. Drop it first with DROP TYPE {}", name.value)));
                }
                Ok(Change::CreateType { name: name.value.clone(), ty: ty.clone() })
            }
            Statement::DropType { name, if_exists } => {
                if !self.catalog.types().contains_key(&name.value) {
                    let message = format!("Type '{}' does not exist.", name.value);
                    if *if_exists {
                        return Ok(Change::Noop(current_status(&p.text, format!("type/{}/drop", quote_ident(&name.value)), message, None, seq)));
                    }
                    return Err(EngineError::rule(format!("{message} SHOW TYPES lists the custom types")));
                }
                Ok(Change::DropType { name: name.value.clone() })
            }
            Statement::Alter { kind, name, add_columns } => self.prepare_alter(*kind, name, add_columns, seq),
            Statement::Drop { kind, name, if_exists, delete_topic } => {
                let Some(source) = self.catalog.source(&name.value) else {
                    if let Some(f) = self.restore.of_source(&name.value) {
                        let message = format!("Source `{}` could not be restored when the server started ({}); it is dropped.", name.value, f.reason);
                        return Ok(Change::ForgetFailure(current_status(
                            &p.text,
                            format!("{}/{}/drop", kind.name().to_lowercase(), quote_ident(&name.value)),
                            message,
                            None,
                            seq,
                        )));
                    }
                    if *if_exists {
                        return Ok(Change::Noop(current_status(
                            &p.text,
                            format!("{}/{}/drop", kind.name().to_lowercase(), quote_ident(&name.value)),
                            format!("Source `{}` does not exist.", name.value),
                            None,
                            seq,
                        )));
                    }
                    return Err(EngineError::rule(format!("{}: Source {} does not exist.", name.pos, name.value)));
                };
                if source.kind != *kind {
                    return Err(EngineError::rule(format!("Incompatible data source type is {}, but statement was DROP {}", source.kind.name(), kind.name())));
                }
                if *delete_topic && source.read_only {
                    return Err(EngineError::rule(format!("Cannot delete topic for read-only source: {}", source.name)));
                }
                if *delete_topic && self.log.is_internal_topic(&source.topic) {
                    return Err(EngineError::rule(format!(
                        "Cannot delete topic '{}' of {}: topics whose names start with '{}' are internal to Eddy and cannot be deleted. Drop the \
                            source without DELETE TOPIC.",
                        source.topic,
                        source.name,
                        self.log.internal_prefix()
                    )));
                }
                let (readers, writers) = self.catalog.readers_and_writers(&source.name);
                if !readers.is_empty() {
                    return Err(EngineError::rule(format!(
                        "Cannot drop {}.\nThe following queries read from this source: [{}].\nThe following queries write into this source: [{}].\nYou \
                            need to terminate them before dropping {}.",
                        source.name,
                        readers.join(", "),
                        writers.join(", "),
                        source.name
                    )));
                }
                Ok(Change::Drop { source, delete_topic: *delete_topic, terminate: writers })
            }
            Statement::Terminate { query_id } => {
                let ids = match query_id {
                    Some(id) => {
                        if self.catalog.query(&id.value).is_none() {
                            if self.restore.of_query(&id.value).is_some() {
                                return Ok(Change::ForgetFailure(current_status(
                                    &p.text,
                                    format!("terminate/{}/execute", id.value),
                                    "Query terminated.".into(),
                                    None,
                                    seq,
                                )));
                            }
                            return Err(EngineError::rule(format!("Unknown queryId: {}", id.value)));
                        }
                        vec![id.value.clone()]
                    }
                    None => self.catalog.queries().iter().map(|q| q.id.clone()).collect(),
                };
                Ok(Change::Terminate { ids })
            }
            Statement::Pause { .. } | Statement::Resume { .. } | Statement::AlterSystem { .. } => self.prepare_control(&p.statement, replay),
            _ => Err(EngineError::inconsistent(format!("not a catalog change: {}", p.text))),
        }
    }

    #[allow(clippy::too_many_arguments)]
    /// ALTER STREAM/TABLE ... ADD COLUMN: only sources declared with CREATE STREAM/TABLE
    /// (not read-only ones, not query results) take new value columns.
    fn prepare_alter(&self, kind: SourceKind, name: &Ident, add_columns: &[(Ident, SqlType)], seq: i64) -> Result<Change, EngineError> {
        let source = self.catalog.source(&name.value).ok_or_else(|| EngineError::rule(format!("{}: Source {} does not exist.", name.pos, name.value)))?;
        let k = kind.title().to_lowercase();
        if source.kind != kind {
            return Err(EngineError::rule(format!("Incompatible data source type is {}, but statement was ALTER {}", source.kind.name(), kind.name())));
        }
        if source.read_only {
            return Err(EngineError::rule(format!("Cannot alter {k} '{}': ALTER operations are not supported on source {k}s.", source.name)));
        }
        let (_, writers) = self.catalog.readers_and_writers(&source.name);
        if writers.iter().any(|w| w.starts_with("CSAS_") || w.starts_with("CTAS_")) {
            return Err(EngineError::rule("ALTER command is not supported for CREATE ... AS statements."));
        }
        let mut columns = source.schema.columns().to_vec();
        for (column, ty) in add_columns {
            if columns.iter().any(|c| c.name == column.value) {
                return Err(EngineError::rule(format!(
                    "{}: Cannot add column {} to schema. A column with the same name already exists.",
                    column.pos,
                    quote_ident(&column.value)
                )));
            }
            columns.push(Column::new(column.value.clone(), ty.clone(), ColumnKind::Value));
        }
        let schema = LogicalSchema::new(columns);
        check_formats(&schema, &source.key_format, &source.value_format)?;
        let mut altered = DataSource { schema, ..(*source).clone() };
        // A registry format writes the new columns with a new version of the subject.
        if altered.value_format.uses_registry() {
            altered.value_format.schema_id = None;
            altered.value_format.schema = None;
            self.bind_schemas(&mut altered, &std::collections::BTreeMap::new(), true)?;
        }
        let query = (kind == SourceKind::Table).then(|| QueryMeta {
            id: format!("CST_{}_{}", source.name.to_uppercase(), seq),
            sql: source.sql.clone(),
            sink: source.name.clone(),
            sink_topic: source.topic.clone(),
            sources: Vec::new(),
            properties: std::collections::BTreeMap::new(),
            types: self.catalog.types(),
        });
        Ok(Change::Alter { source: altered, query })
    }

    #[allow(clippy::too_many_arguments)]
    fn prepare_create_source(
        &self,
        p: &ParsedStatement,
        kind: SourceKind,
        name: &str,
        or_replace: bool,
        if_not_exists: bool,
        read_only: bool,
        columns: &[ColumnDef],
        props: &Props,
        session: &Session,
        seq: i64,
        replay: bool,
    ) -> Result<Change, EngineError> {
        if let Some(existing) = self.catalog.source(name) {
            if if_not_exists {
                return Ok(already_exists(&p.text, name, &existing, seq));
            }
            if !or_replace {
                return Err(EngineError::rule(format!(
                    "Cannot add stream '{name}': A {} with the same name already exists",
                    existing.kind.title().to_lowercase()
                )));
            }
            let k = kind.title().to_lowercase();
            if existing.kind != kind {
                return Err(EngineError::rule(format!(
                    "Cannot replace {} '{name}' with a {}",
                    existing.kind.title().to_lowercase(),
                    kind.title().to_lowercase()
                )));
            }
            // A read-only source cannot be replaced, as in ksqlDB; a declared one can, keeping
            // its columns and adding value columns (a registry schema's new version).
            if existing.read_only || read_only {
                return Err(EngineError::rule(format!("Cannot add {k} '{name}': CREATE OR REPLACE is not supported on source {k}s.")));
            }
            let (_, writers) = self.catalog.readers_and_writers(name);
            if writers.iter().any(|w| w.starts_with("CSAS_") || w.starts_with("CTAS_")) {
                return Err(EngineError::rule(format!(
                    "Cannot add {k} '{name}': it is the result of a query; replace it with CREATE OR REPLACE {} {name} AS SELECT ...",
                    kind.title().to_uppercase()
                )));
            }
        }
        if or_replace && read_only {
            let k = kind.title().to_lowercase();
            return Err(EngineError::rule(format!("Cannot add {k} '{name}': CREATE OR REPLACE is not supported on source {k}s.")));
        }
        // A mistake in the WITH clause is reported first, as ksqlDB does.
        let sp = SourceProps::parse(props)?;
        let mut key_format = sp.key_spec(&default_key_format(session)?);
        let mut value_format = sp.value_spec(&FormatSpec::new(FormatKind::Json));
        sp.check_registry_props(&key_format, &value_format)?;
        let topic = sp.kafka_topic.clone().unwrap_or_else(|| name.to_string());
        let declares = |key: bool| {
            columns.iter().any(|c| match c.constraint {
                ColumnConstraint::Key | ColumnConstraint::PrimaryKey => key,
                ColumnConstraint::None => !key,
                _ => false,
            })
        };
        let mut inferred = Vec::new();
        for (role, spec) in [(Role::Key, &mut key_format), (Role::Value, &mut value_format)] {
            if !schemas::infers(declares(role == Role::Key), spec) {
                continue;
            }
            if spec.schema_id.is_none() {
                spec.schema_id = schemas::pinned_id(&session.properties, role);
            }
            // Keys are taken from the registry when it has them (their latest id, read once);
            // a stream may have none.
            if role == Role::Key && spec.schema_id.is_none() {
                match self.schema_source().map(|r| r.latest(&format!("{topic}-key"))) {
                    Some(Ok((id, _))) => spec.schema_id = Some(id),
                    _ => continue,
                }
            }
            // ksqlDB keeps a PROTOBUF schema's names as written when its id is given.
            let given_id = if role == Role::Key { sp.key_schema_id } else { sp.value_schema_id };
            inferred.extend(self.infer_columns(&topic, role, spec, given_id.is_some())?);
        }
        let inferred_columns: Vec<ColumnDef> = inferred
            .iter()
            .map(|c| ColumnDef {
                name: Ident { value: c.name.clone(), pos: Default::default() },
                ty: c.ty.clone(),
                constraint: match (c.kind, kind) {
                    (ColumnKind::Key, SourceKind::Table) => ColumnConstraint::PrimaryKey,
                    (ColumnKind::Key, _) => ColumnConstraint::Key,
                    _ => ColumnConstraint::None,
                },
                header_key: None,
            })
            .collect();
        let all_columns: Vec<ColumnDef> = inferred_columns
            .iter()
            .filter(|c| c.constraint != ColumnConstraint::None)
            .chain(columns)
            .chain(inferred_columns.iter().filter(|c| c.constraint == ColumnConstraint::None))
            .cloned()
            .collect();
        let columns = &all_columns[..];
        if columns.is_empty() {
            return Err(EngineError::rule(format!(
                "The statement does not define any columns: {}. Declare columns, e.g. CREATE STREAM s (id INT KEY, v STRING) WITH (...)",
                p.text
            )));
        }
        check_unique_columns(columns)?;
        let mut cols = Vec::new();
        for c in columns {
            let table = kind == SourceKind::Table;
            let kind = match c.constraint {
                ColumnConstraint::None => ColumnKind::Value,
                ColumnConstraint::Key if table => {
                    return Err(EngineError::rule(format!(
                        "{}: Column {} is a 'KEY' column: please use 'PRIMARY KEY' for tables.\nTables have PRIMARY KEYs, which are unique and NON \
                            NULL.\nStreams have KEYs, which have no uniqueness or NON NULL constraints.",
                        c.name.pos,
                        quote_ident(&c.name.value)
                    )));
                }
                ColumnConstraint::Key => ColumnKind::Key,
                ColumnConstraint::PrimaryKey if table => ColumnKind::Key,
                ColumnConstraint::PrimaryKey => {
                    return Err(EngineError::rule(format!(
                        "{}: Column {} is a 'PRIMARY KEY' column: please use 'KEY' for streams.\nTables have PRIMARY KEYs, which are unique and NON \
                            NULL.\nStreams have KEYs, which have no uniqueness or NON NULL constraints.",
                        c.name.pos,
                        quote_ident(&c.name.value)
                    )));
                }
                ColumnConstraint::Headers => {
                    if c.ty != headers_type() {
                        return Err(EngineError::rule(format!(
                            "{}: Invalid type for HEADERS column {}: expected ARRAY<STRUCT<`KEY` STRING, `VALUE` BYTES>>, got {}",
                            c.name.pos,
                            quote_ident(&c.name.value),
                            c.ty
                        )));
                    }
                    if columns.iter().filter(|o| o.constraint == ColumnConstraint::Headers).count() > 1 {
                        return Err(EngineError::rule("a stream can have only one HEADERS column".to_string()));
                    }
                    ColumnKind::Header
                }
                ColumnConstraint::Header => {
                    if c.ty != SqlType::Bytes {
                        return Err(EngineError::rule(format!(
                            "{}: Invalid type for HEADER('{}') column {}: expected BYTES, got {}",
                            c.name.pos,
                            c.header_key.clone().unwrap_or_default(),
                            quote_ident(&c.name.value),
                            c.ty
                        )));
                    }
                    ColumnKind::Header
                }
            };
            let mut col = Column::new(c.name.value.clone(), c.ty.clone(), kind);
            col.header_key = c.header_key.clone();
            cols.push(col);
        }
        let schema = LogicalSchema::new(cols);
        if kind == SourceKind::Table && schema.key_count() == 0 {
            return Err(EngineError::rule(format!(
                "Tables require a PRIMARY KEY. Please define the PRIMARY KEY, e.g. CREATE TABLE {name} (id VARCHAR PRIMARY KEY, ...)"
            )));
        }
        check_formats(&schema, &key_format, &value_format)?;
        let timestamp = timestamp_spec(&sp, &schema)?;
        crate::log::validate_topic_name(&topic).map_err(|e| EngineError::from(Rejection::Log(e)))?;
        refuse_internal_topic(&self.log, &topic, read_only, self.log.get_topic(&topic).is_some())?;
        let create_topic = match self.log.get_topic(&topic) {
            Some(t) => {
                refuse_settings_for_existing(&sp, &topic, replay)?;
                if let Some(n) = sp.partitions
                    && n != t.partition_count()
                    && !replay
                {
                    return Err(EngineError::rule(format!(
                        "A Kafka topic with the name '{topic}' already exists, with different partition/replica configuration than required. KSQL \
                                expects {n} partitions (topic has {}).",
                        t.partition_count()
                    )));
                }
                None
            }
            None => match sp.partitions {
                Some(n) => {
                    self.log.check_partitions(&topic, i64::from(n)).map_err(|e| EngineError::from(Rejection::Log(e)))?;
                    Some((n, sp.topic_config(self.log.defaults())))
                }
                None if read_only => {
                    return Err(EngineError::rule(format!("Topic '{topic}' does not exist; a source stream reads an existing topic")));
                }
                None => {
                    return Err(EngineError::rule(format!(
                        "Topic '{topic}' does not exist. If you want to create a new topic for the stream/table please re-run the statement providing \
                            the required 'PARTITIONS' configuration in the WITH clause (and optionally 'REPLICAS'). For example: CREATE STREAM {name} \
                                (...) WITH (KAFKA_TOPIC='{topic}', VALUE_FORMAT='JSON', PARTITIONS=1);"
                    )));
                }
            },
        };
        let source_window = sp.source_window()?;
        let mut source = DataSource {
            name: name.to_string(),
            kind,
            schema,
            topic,
            key_format,
            value_format,
            timestamp,
            sql: p.text.clone(),
            read_only,
            window: source_window.map(|w| w.0),
            window_size_ms: source_window.and_then(|w| w.1),
        };
        let replacing = or_replace && self.catalog.source(name).is_some();
        if replacing {
            self.check_replacement(name, "CREATE OR REPLACE", &source)?;
        }
        // A replacement registers its columns' schema as the subject's next version.
        self.bind_schemas(&mut source, &session.properties, replacing)?;
        let query = (kind == SourceKind::Table).then(|| QueryMeta {
            id: format!("CST_{}_{}", name.to_uppercase(), seq),
            sql: p.text.clone(),
            sink: name.to_string(),
            sink_topic: source.topic.clone(),
            sources: Vec::new(),
            properties: std::collections::BTreeMap::new(),
            types: self.catalog.types(),
        });
        Ok(Change::CreateSource { source, replace: or_replace, create_topic, query })
    }

    #[allow(clippy::too_many_arguments)]
    fn prepare_csas(
        &self,
        p: &ParsedStatement,
        kind: SourceKind,
        name: &str,
        or_replace: bool,
        if_not_exists: bool,
        props: &Props,
        query: &Query,
        session: &Session,
        seq: i64,
        query_id: Option<&str>,
        replay: bool,
    ) -> Result<Change, EngineError> {
        let effective = self.effective_query(query, name)?;
        let query: &Query = &effective;
        let aggregate = crate::sql::aggregate_plan::is_aggregate_query(query);
        let join = if is_join_query(query) { Some(self.plan_join(query, Purpose::Persistent, Some(name))?) } else { None };
        if let Some(j) = &join {
            let produces = j.result_kind();
            if produces != kind {
                let (what, stmt) = if produces == SourceKind::Table { ("TABLE", "CREATE TABLE") } else { ("STREAM", "CREATE STREAM") };
                return Err(EngineError::rule(format!(
                    "Invalid result type. Your SELECT query produces a {what}. Please use {stmt} AS SELECT statement instead."
                )));
            }
        }
        if kind == SourceKind::Stream && aggregate {
            return Err(EngineError::rule("Invalid result type. Your SELECT query produces a TABLE. Please use CREATE TABLE AS SELECT statement instead."));
        }
        if !aggregate && join.is_none() {
            // A filter/projection keeps its source's kind: tables give tables.
            let from_table = crate::sql::planner::single_source(query, &self.catalog).is_ok_and(|(s, _)| s.kind == SourceKind::Table);
            if kind == SourceKind::Table && !from_table {
                return Err(EngineError::rule(
                    "Invalid result type. Your SELECT query produces a STREAM. Please use CREATE STREAM AS SELECT statement instead.",
                ));
            }
            if kind == SourceKind::Stream && from_table {
                return Err(EngineError::rule("Invalid result type. Your SELECT query produces a TABLE. Please use CREATE TABLE AS SELECT statement instead."));
            }
        }
        let mut replaces = None;
        if let Some(existing) = self.catalog.source(name) {
            if if_not_exists {
                return Ok(already_exists(&p.text, name, &existing, seq));
            }
            if !or_replace {
                return Err(EngineError::rule(format!(
                    "Cannot add stream '{name}': A {} with the same name already exists",
                    existing.kind.title().to_lowercase()
                )));
            }
            replaces = Some(self.replaceable_query(name, &existing, kind, aggregate || join.is_some())?);
        }
        let (source, output, window) = if let Some(j) = &join {
            let first = j.sources()[0].clone();
            let window = first.window.map(|w| (w, first.window_size_ms));
            (first, j.output.clone(), window)
        } else if aggregate {
            let plan = crate::sql::aggregate_plan::plan_aggregate(query, &self.catalog, Some(name))?;
            let window = plan.window.as_ref().map(|w| (w.kind, (w.kind != crate::catalog::WindowType::Session).then_some(w.size_ms)));
            (plan.source.clone(), plan.output.clone(), window)
        } else {
            let plan = plan_select(query, &self.catalog, Purpose::Persistent, Some(name))?;
            if kind == SourceKind::Table && plan.output.key_count() == 0 {
                let keys: Vec<String> = plan.source.schema.key_columns().map(|c| c.name.clone()).collect();
                return Err(EngineError::rule(format!(
                    "The query used to build `{name}` must include the key columns {} in its projection (eg, SELECT {}...).",
                    keys.join(" and "),
                    keys.first().cloned().unwrap_or_default()
                )));
            }
            let window = plan.source.window.map(|w| (w, plan.source.window_size_ms));
            (plan.source.clone(), plan.output.clone(), window)
        };
        if source.kind == SourceKind::Table && source.window.is_some() {
            return Err(EngineError::rule("KSQL does not support persistent queries on windowed tables."));
        }
        let sp = SourceProps::parse(props)?;
        // The result's records take their time from this column (checked against the result).
        let sink_timestamp = timestamp_spec(&sp, &output)?;
        let source = &source;
        // The result takes the source's key format; a NONE key format cannot hold the
        // key a PARTITION BY, GROUP BY or join gives the result, which then gets the
        // default key format.
        // A result without key columns (PARTITION BY NULL) has no key to format: NONE.
        let key_default = if output.key_count() == 0 {
            FormatSpec::new(FormatKind::None)
        } else if source.key_format.kind == FormatKind::None {
            default_key_format(session)?
        } else {
            source.key_format.clone()
        };
        if sp.key_format.is_some_and(|f| f != FormatKind::None) && output.key_count() == 0 && kind == SourceKind::Stream {
            return Err(EngineError::rule("Key format specified for stream without key columns."));
        }
        let key_format = sp.key_spec(&key_default);
        // The result takes the source's value format, but not its WRAP_SINGLE_VALUE.
        let inherited = FormatSpec { wrap_single_value: FormatSpec::new(source.value_format.kind).wrap_single_value, ..source.value_format.clone() };
        let value_format = sp.value_spec(&inherited);
        sp.check_registry_props(&key_format, &value_format)?;
        check_formats(&output, &key_format, &value_format)?;
        let topic = sp.kafka_topic.clone().unwrap_or_else(|| name.to_string());
        crate::log::validate_topic_name(&topic).map_err(|e| EngineError::from(Rejection::Log(e)))?;
        refuse_internal_topic(&self.log, &topic, false, self.log.get_topic(&topic).is_some())?;
        let source_partitions = match &join {
            Some(j) => j.partitions,
            None => self.log.topic(&source.topic)?.partition_count(),
        };
        let create_topic = match self.log.get_topic(&topic) {
            Some(t) => {
                refuse_settings_for_existing(&sp, &topic, replay)?;
                if sp.partitions.is_some_and(|n| n != t.partition_count()) && !replay {
                    return Err(EngineError::rule(format!(
                        "A Kafka topic with the name '{topic}' already exists, with different partition/replica configuration than required."
                    )));
                }
                None
            }
            None => {
                let n = sp.partitions.unwrap_or(source_partitions);
                self.log.check_partitions(&topic, i64::from(n)).map_err(|e| EngineError::from(Rejection::Log(e)))?;
                Some((n, sp.topic_config(self.log.defaults())))
            }
        };
        let mut sink = DataSource {
            name: name.to_string(),
            kind,
            schema: output,
            topic: topic.clone(),
            key_format,
            value_format,
            timestamp: sink_timestamp,
            sql: p.text.clone(),
            read_only: false,
            window: window.map(|w| w.0),
            window_size_ms: window.and_then(|w| w.1),
        };
        if let Some(old) = &replaces {
            self.check_replacement(name, old, &sink)?;
        }
        self.bind_schemas(&mut sink, &session.properties, true)?;
        let prefix = if kind == SourceKind::Table { "CTAS" } else { "CSAS" };
        let id = query_id.map(str::to_string).or_else(|| replaces.clone()).unwrap_or_else(|| format!("{prefix}_{}_{}", name.to_uppercase(), seq));
        let query = QueryMeta {
            id,
            sql: p.text.clone(),
            sink: name.to_string(),
            sink_topic: topic,
            sources: join.as_ref().map(|j| j.source_names()).unwrap_or_else(|| vec![source.name.clone()]),
            properties: session.properties.clone(),
            types: self.catalog.types(),
        };
        Ok(Change::CreateAsSelect { sink, create_topic, query, replaces })
    }

    fn prepare_insert_select(
        &self,
        p: &ParsedStatement,
        target: &Ident,
        query: &Query,
        session: &Session,
        seq: i64,
        query_id: Option<&str>,
    ) -> Result<Change, EngineError> {
        let sink = self.catalog.source(&target.value).ok_or_else(|| {
            EngineError::rule(format!(
                "{}: Source `{}` does not exist. Create it with CREATE STREAM first; SHOW STREAMS lists what exists.",
                target.pos, target.value
            ))
        })?;
        let target = target.value.as_str();
        if sink.kind != SourceKind::Stream {
            return Err(EngineError::rule(format!("INSERT INTO can only be used to insert into a stream. {target} is a table.")));
        }
        if sink.read_only || self.log.is_internal_topic(&sink.topic) {
            return Err(EngineError::rule(format!("Cannot insert into read-only stream: {target}")));
        }
        // The result's schema and the sources it reads, from a join or a single source.
        let (output, sources) = if is_join_query(query) {
            let plan = self.plan_join(query, Purpose::Persistent, Some(target))?;
            if plan.result_kind() != SourceKind::Stream {
                return Err(EngineError::rule(format!("INSERT INTO {target} needs a query that produces a stream; a table-table join produces a table")));
            }
            (plan.output.clone(), plan.source_names())
        } else {
            let plan = plan_select(query, &self.catalog, Purpose::Persistent, Some(target))?;
            if plan.source.kind == SourceKind::Table {
                return Err(EngineError::rule(format!("INSERT INTO {target} needs a query over a stream; {} is a table", plan.source.name)));
            }
            (plan.output.clone(), vec![plan.source.name.clone()])
        };
        if sources.contains(&sink.name) {
            return Err(EngineError::rule(format!("Cannot insert into {target} from itself: the query would read its own output")));
        }
        if output != sink.schema {
            return Err(EngineError::rule(format!(
                "Incompatible schema between results and sink.\nResult schema is {}\nSink schema is {}",
                output.describe(true),
                sink.schema.describe(true)
            )));
        }
        let id = query_id.map(str::to_string).unwrap_or_else(|| format!("INSERTQUERY_{seq}"));
        Ok(Change::InsertSelect {
            query: QueryMeta {
                id,
                sql: p.text.clone(),
                sink: sink.name.clone(),
                sink_topic: sink.topic.clone(),
                sources,
                properties: session.properties.clone(),
                types: self.catalog.types(),
            },
        })
    }

    /// Applies a prepared change. Blocking.
    pub(super) fn commit_change(&self, change: Change, p: &ParsedStatement, seq: i64) -> Result<Value, EngineError> {
        // A query's state is not dropped while copies of it are being brought up to date
        // (they would come back).
        let _share = matches!(change, Change::Terminate { .. } | Change::Drop { .. }).then(|| self.share_change.lock());
        match change {
            Change::Noop(v) => Ok(v),
            Change::Control(c) => self.commit_control(c, p, seq),
            Change::ForgetFailure(v) => {
                self.forgets_failure(&p.statement);
                Ok(v)
            }
            Change::CreateSource { source, replace, create_topic, query } => {
                if let Some((n, cfg)) = create_topic
                    && self.log.get_topic(&source.topic).is_none()
                {
                    self.log.create_topic(&source.topic, n, cfg)?;
                }
                let cmd = format!("{}/{}/create", source.kind.name().to_lowercase(), quote_ident(&source.name));
                let msg = format!("{} created", source.kind.title());
                if replace {
                    // A replaced table's materialization restarts with the new definition.
                    for id in self.catalog.readers_and_writers(&source.name).1 {
                        if is_table_materialization(&id) {
                            self.terminate(&id)?;
                        }
                    }
                }
                self.catalog.add_source(source, replace)?;
                if let Some(q) = query {
                    // Materialize from the start: the table is the whole topic.
                    let mut q = q;
                    q.properties.insert("auto.offset.reset".into(), "earliest".into());
                    self.catalog.add_query(q);
                }
                Ok(current_status(&p.text, cmd, msg, None, seq))
            }
            Change::CreateAsSelect { sink, create_topic, query, replaces } => {
                if let Some((n, cfg)) = create_topic
                    && self.log.get_topic(&sink.topic).is_none()
                {
                    self.log.create_topic(&sink.topic, n, cfg)?;
                }
                let cmd = format!("{}/{}/create", sink.kind.name().to_lowercase(), quote_ident(&sink.name));
                // The replaced query stops; its offsets and state stay for the new definition,
                // which runs under the same id and resumes where the old one left off.
                if let Some(old) = &replaces {
                    self.runtime.stop_persistent(old);
                }
                self.catalog.add_source(sink, replaces.is_some())?;
                let id = query.id.clone();
                self.catalog.add_query(query);
                Ok(current_status(&p.text, cmd, format!("Created query with ID {id}"), Some(&id), seq))
            }
            Change::InsertSelect { query } => {
                let cmd = format!("stream/{}/create", quote_ident(&query.sink));
                let id = query.id.clone();
                self.catalog.add_query(query);
                Ok(current_status(&p.text, cmd, format!("Created query with ID {id}"), Some(&id), seq))
            }
            Change::Drop { source, delete_topic, terminate } => {
                for id in &terminate {
                    self.terminate(id)?;
                }
                self.catalog.drop_source(&source.name)?;
                if source.kind == SourceKind::Table {
                    self.runtime.state().drop_family(&source.state_family())?;
                }
                // On a cluster the server that runs the statement deletes the topic.
                if delete_topic && self.is_active() {
                    let shared = self.catalog.sources().iter().any(|s| s.topic == source.topic);
                    if !shared && self.log.get_topic(&source.topic).is_some() {
                        self.log.delete_topic(&source.topic)?;
                    }
                }
                let cmd = format!("{}/{}/drop", source.kind.name().to_lowercase(), quote_ident(&source.name));
                Ok(current_status(&p.text, cmd, format!("Source `{}` (topic: {}) was dropped.", source.name, source.topic), None, seq))
            }
            Change::CreateType { name, ty } => {
                let message = format!("Registered custom type with name '{name}' and SQL type {ty}");
                self.catalog.add_type(&name, ty);
                Ok(current_status(&p.text, format!("type/{}/create", quote_ident(&name)), message, None, seq))
            }
            Change::DropType { name } => {
                self.catalog.drop_type(&name);
                Ok(current_status(&p.text, format!("type/{}/drop", quote_ident(&name)), format!("Dropped type '{name}'"), None, seq))
            }
            Change::Alter { source, query } => {
                let cmd = format!("{}/{}/alter", source.kind.name().to_lowercase(), quote_ident(&source.name));
                let message = format!("{} altered", source.kind.title());
                // A table's materialization restarts with the new columns.
                for id in self.catalog.readers_and_writers(&source.name).1 {
                    if is_table_materialization(&id) {
                        self.terminate(&id)?;
                    }
                }
                self.catalog.add_source(source, true)?;
                if let Some(mut q) = query {
                    q.properties.insert("auto.offset.reset".into(), "earliest".into());
                    self.catalog.add_query(q);
                }
                Ok(current_status(&p.text, cmd, message, None, seq))
            }
            Change::Terminate { ids } => {
                for id in &ids {
                    self.terminate(id)?;
                }
                let target = if ids.len() == 1 { ids[0].clone() } else { "ALL".into() };
                Ok(current_status(&p.text, format!("terminate/{target}/execute"), "Query terminated.".into(), None, seq))
            }
        }
    }

    fn terminate(&self, id: &str) -> Result<(), EngineError> {
        self.runtime.stop_persistent(id);
        let _ = self.catalog.remove_query(id);
        // On a cluster the server that runs the statement removes the query's topics; the
        // others, replaying it, remove what they kept.
        self.runtime.cleanup(id, self.is_active())?;
        Ok(())
    }

    /// Prepares and commits a catalog change (command topic replay or live).
    pub(super) fn apply(&self, p: &ParsedStatement, session: &Session, seq: i64, query_id: Option<&str>, replay: bool) -> Result<Value, EngineError> {
        let change = self.prepare(p, session, seq, query_id, replay)?;
        self.commit_change(change, p, seq)
    }

    /// Plans a join; partition counts come from the log.
    pub(super) fn plan_join(&self, query: &Query, purpose: Purpose, sink: Option<&str>) -> Result<JoinPlan, EngineError> {
        let log = self.log.clone();
        let partitions = move |topic: &str| log.get_topic(topic).map(|t| t.partition_count());
        Ok(plan_join(query, &self.catalog, purpose, sink, &partitions)?)
    }

    /// Plans a persistent query from its SQL and starts it. Blocking.
    pub(super) fn start_query(&self, q: &QueryMeta) -> Result<(), EngineError> {
        let sink = self.catalog.source(&q.sink).ok_or_else(|| EngineError::inconsistent(format!("sink {} of query {} is missing", q.sink, q.id)))?;
        let session = Session { properties: q.properties.clone(), ..Session::default() };
        let reset: OffsetReset = self.offset_reset(&session);
        // A table's materialization reads its topic with the table's (current) schema.
        if is_table_materialization(&q.id) {
            self.runtime.start_table_source(&q.id, &sink, reset)?;
            return Ok(());
        }
        let parsed =
            parser::parse_with_types(&q.sql, &q.types).map_err(|e| EngineError::fault(ServerFault::StoredQueryUnparsable { id: q.id.clone(), source: e }))?;
        let Some(p) = parsed.first() else {
            return Err(EngineError::inconsistent(format!("stored query {} is empty", q.id)));
        };
        let query = self.query_for(p).ok_or_else(|| EngineError::inconsistent(format!("stored query {} is not a query", q.id)))?;
        let effective = self.effective_query(query, &q.sink)?;
        let query: &Query = &effective;
        let sink_topic = self.log.topic(&sink.topic)?;
        if is_join_query(query) {
            let plan = self.plan_join(query, Purpose::Persistent, Some(&q.sink))?;
            self.runtime.start_join(&q.id, Arc::new(plan), &sink, sink_topic, reset)?;
            return Ok(());
        }
        if crate::sql::aggregate_plan::is_aggregate_query(query) {
            let mut plan = crate::sql::aggregate_plan::plan_aggregate(query, &self.catalog, Some(&q.sink))?;
            self.apply_query_settings(&session, &mut plan);
            self.runtime.start_aggregate(&q.id, Arc::new(plan), &sink, sink_topic, reset)?;
            return Ok(());
        }
        let plan = plan_select(query, &self.catalog, Purpose::Persistent, Some(&q.sink))?;
        self.runtime.start_persistent(&q.id, Arc::new(plan), &sink, sink_topic, reset)?;
        Ok(())
    }
}

impl Engine {
    /// CREATE OR REPLACE ... AS SELECT over an existing result: the id of the query that
    /// writes it, when it can be replaced in place (a filter or projection replaced by
    /// another; aggregations and joins keep state the new definition could not read).
    fn replaceable_query(&self, name: &str, existing: &DataSource, kind: SourceKind, stateful: bool) -> Result<String, EngineError> {
        let k = kind.title().to_lowercase();
        if existing.kind != kind {
            return Err(EngineError::rule(format!("Cannot replace {} '{name}' with a {k}", existing.kind.title().to_lowercase())));
        }
        let writers: Vec<String> =
            self.catalog.readers_and_writers(name).1.into_iter().filter(|id| id.starts_with("CSAS_") || id.starts_with("CTAS_")).collect();
        let [old] = writers.as_slice() else {
            return Err(EngineError::rule(format!(
                "Cannot add {k} '{name}': CREATE OR REPLACE ... AS SELECT replaces the query of a {k} created with CREATE {} ... AS SELECT",
                kind.name()
            )));
        };
        let old_stateful = self.catalog.query(old).is_some_and(|q| {
            parser::parse_with_types(&q.sql, &q.types).ok().and_then(|v| v.into_iter().next()).is_some_and(|p| match &p.statement {
                Statement::CreateAsSelect { query, .. } => is_join_query(query) || crate::sql::aggregate_plan::is_aggregate_query(query),
                _ => true,
            })
        });
        if stateful || old_stateful {
            return Err(EngineError::rule(format!(
                "Cannot replace {k} '{name}': upgrading an aggregation or a join in place is not supported yet; DROP it first (with its \
                    query) and create it again"
            )));
        }
        Ok(old.clone())
    }

    /// The new definition keeps the result's topic and every existing column (same name,
    /// type and role, in order); it may add value columns at the end.
    fn check_replacement(&self, name: &str, old: &str, sink: &DataSource) -> Result<(), EngineError> {
        let existing = self.catalog.source(name).ok_or_else(|| EngineError::inconsistent(format!("{name} vanished while {old} was replaced")))?;
        if existing.topic != sink.topic {
            return Err(EngineError::rule(format!("Cannot replace '{name}': its topic {} cannot change (got {})", existing.topic, sink.topic)));
        }
        let before = existing.schema.columns();
        let after = sink.schema.columns();
        let kept = before.len() <= after.len() && before.iter().zip(after).all(|(a, b)| a.name == b.name && a.ty == b.ty && a.kind == b.kind);
        if !kept || after[before.len()..].iter().any(|c| c.kind != crate::catalog::types::ColumnKind::Value) {
            return Err(EngineError::rule(format!(
                "Cannot upgrade data source: {name}'s columns would change from [{}] to [{}]; a replacement keeps every column and may only \
                    add value columns at the end",
                existing.schema.describe(true),
                sink.schema.describe(true)
            )));
        }
        Ok(())
    }
}
