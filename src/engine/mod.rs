//! The statement engine: executes parsed statements against the catalog, the log and the
//! query runtime, persisting catalog changes to the command topic first, and replays that
//! topic on start. Results are ksqlDB's REST entities (JSON values).

mod control;
mod ddl;
mod describe;
mod errors;
mod features;
pub mod gather;
mod insert;
mod insert_rows;
mod join_aggregate;
pub mod props;
mod push_aggregate;
mod push_start;
mod restore;
mod schemas;
mod service;

pub use control::check_client_property;
pub use errors::{EngineError, Rejection, ServerFault};
pub use features::{FeatureKey, MAX_FEATURE_KEYS};
pub use insert_rows::InsertTarget;

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;
use tokio::runtime::Handle;

use crate::catalog::Catalog;
use crate::catalog::command_log::{Command, CommandLog};
use crate::exec::pull::PullRows;
use crate::exec::push::PushQuery;
use crate::exec::{OffsetReset, Runtime, Share};
use crate::log::Log;
use crate::sql::ast::{ParsedStatement, Statement};
use crate::sql::parser;
use crate::sql::planner::{Purpose, plan_select};
use crate::sql::pull::{PullAccess, PullPlan, plan_pull};
use crate::sql::pull_rules;
use crate::sql::pull_template::{PullPlanCache, PullTemplate, SqlShape};
use crate::state::ReadMode;

/// Engine settings (server defaults).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where new queries start when `auto.offset.reset` is not set (ksqlDB: latest).
    pub default_offset_reset: OffsetReset,
    pub service_id: String,
    /// Keep ksqlDB's processing log: skipped records are written to
    /// `<service id>ksql_processing_log`, read by the `KSQL_PROCESSING_LOG` stream.
    pub processing_log: bool,
    /// ksqlDB's record cache for aggregations when a query does not set
    /// `cache.max.bytes.buffering`: on in ksqlDB (10 MB), off for ksqlDB's test runner.
    pub record_cache: bool,
    /// An external Confluent-compatible schema registry that registry formats use instead
    /// of the built-in one (`--schema-registry-url`).
    pub schema_registry_url: Option<String>,
    /// Whether this server runs its service's statements (alone, or the first of the
    /// service's servers on a cluster); the others pass statements on to it.
    pub active: bool,
    /// The partitions of persistent queries this server starts with.
    pub share: Share,
}

/// ksqlDB's default `cache.max.bytes.buffering`: 10 MB.
const DEFAULT_RECORD_CACHE_BYTES: u64 = 10 * 1024 * 1024;
/// The properties that limit COLLECT_LIST's and COLLECT_SET's lists.
pub const COLLECT_LIST_LIMIT: &str = "ksql.functions.collect_list.limit";
pub const COLLECT_SET_LIMIT: &str = "ksql.functions.collect_set.limit";

/// ksqlDB's default `commit.interval.ms` (Kafka Streams' own is 30 s; ksqlDB sets 2 s).
const DEFAULT_COMMIT_INTERVAL_MS: u64 = 2000;

impl EngineConfig {
    fn record_cache_bytes(&self) -> u64 {
        if self.record_cache { DEFAULT_RECORD_CACHE_BYTES } else { 0 }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            default_offset_reset: OffsetReset::Latest,
            service_id: "default_".into(),
            processing_log: false,
            record_cache: false,
            schema_registry_url: None,
            active: true,
            share: Share::All,
        }
    }
}

/// Per-request settings: `streamsProperties`, `sessionVariables` and `requestProperties`.
#[derive(Debug, Clone, Default)]
pub struct Session {
    pub properties: BTreeMap<String, String>,
    pub variables: BTreeMap<String, String>,
    /// Settings of this request only (a push query's continuation token).
    pub request_properties: BTreeMap<String, String>,
}

pub struct Engine {
    log: Arc<Log>,
    catalog: Catalog,
    runtime: Runtime,
    commands: CommandLog,
    config: EngineConfig,
    /// Serializes catalog changes so the command topic order is the apply order.
    ddl: Mutex<()>,
    /// Held while this server's share changes, while it follows other servers'
    /// changelogs, and while a TERMINATE or DROP commits (taken after `ddl` when both are):
    /// catch-ups of copies hold up no other statement, and a dropped query's state does
    /// not come back from a copy being followed.
    share_change: Mutex<()>,
    /// Whether this server runs its service's statements (false: another server of its
    /// service does, and this one follows the command topic).
    active: std::sync::atomic::AtomicBool,
    /// The next command topic offset this server has not applied.
    applied: std::sync::atomic::AtomicI64,
    /// Compiled pull-query plans by statement shape; emptied whenever the catalog changes.
    pull_plans: PullPlanCache,
    /// The other servers of the service, for scans gathered from them.
    peer_reads: std::sync::OnceLock<Arc<dyn gather::PeerReads>>,
    /// Catalog commands that could not be restored on start.
    restore: restore::RestoreFailures,
    /// The built-in schema registry (None when its topic could not be opened).
    registry: Option<Arc<crate::registry::SchemaRegistry>>,
    /// Where registry formats read and register schemas: the external registry when one is
    /// configured, else the built-in one.
    schemas: Option<Arc<dyn crate::registry::source::SchemaSource>>,
}

/// What a SELECT or PRINT returns.
pub enum QueryOutput {
    /// A pull query on a table: every row, already read.
    Pull(PullRows),
    /// A query whose rows arrive over time (push queries, pull queries on streams, PRINT).
    Push(PushQuery),
}

/// A /query statement after parsing: a table pull query's rows, or a statement to start.
enum PreparedQuery {
    TablePull(PullRows),
    Other(Box<ParsedStatement>),
}

/// Replaces `${name}` with session variables.
fn substitute(text: &str, vars: &BTreeMap<String, String>) -> Result<String, EngineError> {
    if !text.contains("${") {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[i..]);
            rest = "";
            break;
        };
        let name = &after[..end];
        let value = vars
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .ok_or_else(|| EngineError::rule(format!("Variable '{name}' is not defined; define it first with DEFINE {name} = 'value';")))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

impl Engine {
    /// Opens the engine over `log`, replaying the command topic: the catalog is rebuilt
    /// and persistent queries restart from their committed offsets. Blocking.
    pub fn open(log: Arc<Log>, state: Arc<crate::state::StateDb>, handle: Handle, config: EngineConfig) -> Result<Engine, EngineError> {
        let commands = CommandLog::open(&log)?;
        // The processing log is a help, not a requirement: without it the server still starts.
        let processing_log = if config.processing_log {
            match crate::exec::processing_log::ProcessingLog::open(&log, &config.service_id) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::warn!("the processing log is off: its topic could not be opened: {e}");
                    None
                }
            }
        } else {
            None
        };
        // As the processing log, the registry is a help: without it the server still starts.
        let registry = match crate::registry::SchemaRegistry::open(&log) {
            Ok(r) => Some(Arc::new(r)),
            Err(e) => {
                tracing::warn!("the schema registry is off: its topic could not be opened: {e}");
                None
            }
        };
        let schemas: Option<Arc<dyn crate::registry::source::SchemaSource>> = match &config.schema_registry_url {
            Some(url) => Some(Arc::new(crate::registry::external::ExternalRegistry::new(url).map_err(|e| EngineError::BadRequest(e.to_string()))?)),
            None => registry.clone().map(|r| r as Arc<dyn crate::registry::source::SchemaSource>),
        };
        let active = config.active;
        let runtime = Runtime::new(log.clone(), state, handle, processing_log);
        runtime.set_share(config.share.clone());
        let engine = Engine {
            registry,
            schemas,
            runtime,
            catalog: Catalog::default(),
            commands,
            config,
            log,
            ddl: Mutex::new(()),
            share_change: Mutex::new(()),
            active: std::sync::atomic::AtomicBool::new(active),
            applied: std::sync::atomic::AtomicI64::new(0),
            pull_plans: PullPlanCache::default(),
            peer_reads: std::sync::OnceLock::new(),
            restore: restore::RestoreFailures::default(),
        };
        engine.declare_processing_log_stream();
        engine.replay()?;
        Ok(engine)
    }

    /// Declares the built-in `KSQL_PROCESSING_LOG` stream over the processing log topic,
    /// before the command topic replays: it is not a command of its own (query ids and
    /// sequence numbers stay the user's), and a DROP of it that the user ran replays after
    /// it, so a dropped or replaced log stream stays as the user left it.
    fn declare_processing_log_stream(&self) {
        use crate::exec::processing_log::{PROCESSING_LOG_STREAM, STREAM_COLUMNS};
        let Some(log) = self.runtime.processing_log() else { return };
        let statement = format!("CREATE SOURCE STREAM {PROCESSING_LOG_STREAM} ({STREAM_COLUMNS}) WITH (KAFKA_TOPIC='{}', VALUE_FORMAT='JSON');", log.topic());
        let declared = self
            .parse(&statement)
            .map_err(|e| EngineError::Parse { error: Box::new(e), statement: statement.clone(), entities: vec![] })
            .and_then(|mut p| self.apply(&p.remove(0), &Session::default(), -1, None, true));
        if let Err(e) = declared {
            tracing::warn!("could not declare the {PROCESSING_LOG_STREAM} stream: {e}");
        }
    }

    /// Parses statements, which may use the catalog's custom types.
    pub fn parse(&self, sql: &str) -> Result<Vec<ParsedStatement>, parser::ParseError> {
        parser::parse_with_types(sql, &self.catalog.types())
    }

    pub fn log(&self) -> &Arc<Log> {
        &self.log
    }

    /// The built-in schema registry, when its topic could be opened.
    pub fn registry(&self) -> Option<&Arc<crate::registry::SchemaRegistry>> {
        self.registry.as_ref()
    }

    /// Where registry formats read and register schemas (the external registry when
    /// configured, else the built-in one).
    pub fn schema_source(&self) -> Option<&Arc<dyn crate::registry::source::SchemaSource>> {
        self.schemas.as_ref()
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Command statuses for /status: `type/`name`/action`, SUCCESS or (a command that could
    /// not be restored on start) ERROR.
    pub fn command_statuses(&self) -> Result<Vec<(String, &'static str)>, EngineError> {
        let types = self.catalog.types();
        let failed: std::collections::BTreeSet<i64> = self.restore.all().iter().map(|f| f.seq).collect();
        Ok(self
            .commands
            .read_all()?
            .commands
            .into_iter()
            .filter_map(|(seq, c)| ddl::command_id_of(&c.statement, &types).map(|id| (id, if failed.contains(&seq) { "ERROR" } else { "SUCCESS" })))
            .collect())
    }

    /// A query's aggregation settings: ksqlDB's record cache, its size in bytes (0: off),
    /// `cache.max.bytes.buffering`, and how often it lets its rows out, `commit.interval.ms`
    /// (each also with the `ksql.streams.` prefix): from the session, else ALTER SYSTEM's,
    /// else the server's default; and the COLLECT_LIST / COLLECT_SET limits.
    fn apply_query_settings(&self, session: &Session, plan: &mut crate::sql::aggregate_plan::AggregatePlan) {
        // A property's value under any of `names`: the session's, else ALTER SYSTEM's (each
        // only when it reads as a value).
        let system = self.catalog.system_properties();
        let sources = [&session.properties, &system];
        let property = |names: &[&str], parse: &dyn Fn(&str) -> Option<u64>| {
            sources.iter().find_map(|props| props.iter().find(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n))).and_then(|(_, v)| parse(v.trim())))
        };
        let setting = |name: &str| property(&[name, &format!("ksql.streams.{name}")], &|v| v.parse::<i64>().ok().map(|n| n.max(0) as u64));
        plan.record_cache_bytes = setting("cache.max.bytes.buffering").unwrap_or_else(|| self.config.record_cache_bytes());
        plan.commit_interval_ms = setting("commit.interval.ms").unwrap_or(DEFAULT_COMMIT_INTERVAL_MS);
        // ksqlDB's limits on COLLECT_LIST and COLLECT_SET (the prefix is ksqlDB's own).
        let limit = |name: &str| property(&[name], &|v| v.parse::<u64>().ok()).and_then(|n| usize::try_from(n).ok());
        use crate::sql::aggregates::AggKind;
        for call in &mut plan.aggregates {
            match &mut call.kind {
                AggKind::CollectList(n) => *n = limit(COLLECT_LIST_LIMIT).unwrap_or(*n),
                AggKind::CollectSet(n) => *n = limit(COLLECT_SET_LIMIT).unwrap_or(*n),
                _ => {}
            }
        }
    }

    /// A request's properties over the server-wide ones ALTER SYSTEM set.
    fn query_properties(&self, session: &Session) -> BTreeMap<String, String> {
        let mut merged = self.catalog.system_properties();
        merged.extend(session.properties.iter().map(|(k, v)| (k.clone(), v.clone())));
        merged
    }

    /// Where a query starts: the session's `auto.offset.reset`, else ALTER SYSTEM's, else
    /// the server's default.
    fn offset_reset(&self, session: &Session) -> OffsetReset {
        let find = |props: &BTreeMap<String, String>| {
            props
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("auto.offset.reset") || k.eq_ignore_ascii_case("ksql.streams.auto.offset.reset"))
                .and_then(|(_, v)| OffsetReset::parse(v))
        };
        find(&session.properties).or_else(|| find(&self.catalog.system_properties())).unwrap_or(self.config.default_offset_reset)
    }

    /// Executes the statements of a /ksql request in order; stops at the first failure,
    /// whose error carries the entities of the statements before it. Blocking.
    pub fn execute(&self, sql: &str, session: &mut Session) -> Result<Vec<Value>, EngineError> {
        if sql.contains("${") {
            return self.execute_with_variables(sql, session);
        }
        let parsed = self.parse(sql).map_err(|error| EngineError::Parse { error: Box::new(error), statement: sql.to_string(), entities: vec![] })?;
        let mut entities = Vec::new();
        for p in parsed {
            match self.execute_one(&p, session) {
                Ok(Some(v)) => entities.push(v),
                Ok(None) => {}
                Err(e) => return Err(e.for_statement(&p.text, &entities)),
            }
        }
        Ok(entities)
    }

    /// Statements that use `${variables}`: split without parsing, then each substituted
    /// with the variables defined so far (a DEFINE earlier in the request counts) and run,
    /// so a variable may stand anywhere, also where a bare `${name}` would not parse.
    fn execute_with_variables(&self, sql: &str, session: &mut Session) -> Result<Vec<Value>, EngineError> {
        let (mut pieces, rest) = crate::sql::split::split_statements(sql);
        if !rest.trim().is_empty() {
            pieces.push(rest.trim().to_string());
        }
        let mut entities = Vec::new();
        for piece in pieces {
            let is_define = piece.trim_start().get(..6).is_some_and(|w| w.eq_ignore_ascii_case("DEFINE"));
            let text = if is_define { piece.clone() } else { substitute(&piece, &session.variables).map_err(|e| e.for_statement(&piece, &entities))? };
            let mut parsed =
                self.parse(&text).map_err(|error| EngineError::Parse { error: Box::new(error), statement: text.clone(), entities: entities.clone() })?;
            if parsed.len() != 1 {
                return Err(EngineError::rule("a variable expanded into more than one statement").for_statement(&text, &entities));
            }
            let p = parsed.remove(0);
            match self.execute_one(&p, session) {
                Ok(Some(v)) => entities.push(v),
                Ok(None) => {}
                Err(e) => return Err(e.for_statement(&p.text, &entities)),
            }
        }
        Ok(entities)
    }

    fn execute_one(&self, p: &ParsedStatement, session: &mut Session) -> Result<Option<Value>, EngineError> {
        match &p.statement {
            Statement::Select(_) | Statement::Print { .. } => Err(EngineError::WrongEndpoint { statement: p.text.clone(), entities: vec![] }),
            Statement::Terminate { query_id: Some(id) } if id.value.starts_with("transient_") => {
                if !self.runtime.close_transient(&id.value) {
                    return Err(EngineError::rule(format!("Unknown queryId: {}", id.value)));
                }
                Ok(Some(serde_json::json!({
                    "@type": "currentStatus",
                    "statementText": p.text,
                    "commandId": format!("terminate/{}/execute", id.value),
                    "commandStatus": {"status": "SUCCESS", "message": "Query terminated.", "queryId": null},
                    "commandSequenceNumber": -1,
                    "warnings": []
                })))
            }
            Statement::CreateAsSelect { query, .. } if join_aggregate::aggregates_a_join(query) => self.create_join_aggregate(p, session),
            Statement::CreateSource { .. }
            | Statement::CreateAsSelect { .. }
            | Statement::InsertSelect { .. }
            | Statement::Drop { .. }
            | Statement::Terminate { .. }
            | Statement::CreateType { .. }
            | Statement::DropType { .. }
            | Statement::Alter { .. }
            | Statement::Pause { .. }
            | Statement::Resume { .. }
            | Statement::AlterSystem { .. } => self.change_catalog(p, session).map(Some),
            Statement::AssertTopic { topic, exists, props, timeout } => {
                let timeout = timeout.as_ref().map(|d| std::time::Duration::from_millis(d.millis.max(0) as u64));
                self.assert_topic(topic, *exists, props, timeout, &p.text).map(Some)
            }
            Statement::AssertSchema { subject, id, exists, timeout } => {
                let timeout = timeout.as_ref().map(|d| std::time::Duration::from_millis(d.millis.max(0) as u64));
                self.assert_schema(subject, *id, *exists, timeout, &p.text).map(Some)
            }
            Statement::Connector { action } => Err(self.connectors_unsupported(action)),
            Statement::InsertValues { target, columns, values } => {
                self.insert_values(target, columns.as_deref(), values)?;
                Ok(None)
            }
            Statement::Set { name, value } => {
                session.properties.insert(name.clone(), value.clone());
                Ok(None)
            }
            Statement::Unset { name } => {
                session.properties.remove(name);
                Ok(None)
            }
            Statement::Define { name, value } => {
                session.variables.insert(name.clone(), value.clone());
                Ok(None)
            }
            Statement::Undefine { name } => {
                session.variables.remove(name);
                Ok(None)
            }
            Statement::Show { kind, extended } => self.show(kind, *extended, &p.text, session).map(Some),
            Statement::Describe { name, extended } => self.describe_source(&name.value, *extended, &p.text).map(Some),
            Statement::DescribeAll { kind, extended } => self.describe_all(*kind, *extended, &p.text).map(Some),
            Statement::DescribeFunction { name } => self.describe_function(&name.value, &p.text).map(Some),
            Statement::ExplainQueryId(id) => self.explain_query(&id.value, &p.text).map(Some),
            Statement::ExplainStatement(inner) => self.explain_statement(inner, &p.text).map(Some),
        }
    }

    /// Validates a catalog change, appends it to the command topic, then applies it.
    fn change_catalog(&self, p: &ParsedStatement, session: &Session) -> Result<Value, EngineError> {
        self.ensure_active()?;
        let _guard = self.ddl.lock();
        let seq = self.commands.end_offset();
        let change = self.prepare(p, session, seq, None, false)?;
        if matches!(change, ddl::Change::Noop(_)) {
            return self.commit_change(change, p, seq);
        }
        let query_id = change.query_id();
        let mut properties = session.properties.clone();
        if let Some(source) = change.created_source() {
            properties.extend(schemas::pins(source));
        }
        let appended = self.commands.append(&Command { statement: p.text.clone(), properties, query_id: query_id.clone() })?;
        self.applied.store(appended + 1, std::sync::atomic::Ordering::Release);
        let entity = self.commit_change(change, p, seq);
        self.pull_plans.clear();
        let entity = entity?;
        if let Some(id) = &query_id
            && let Some(q) = self.catalog.query(id)
        {
            self.start_query(&q)?;
        }
        Ok(entity)
    }

    /// Runs one SELECT or PRINT for /query. Blocking (RocksDB reads).
    pub fn query(&self, sql: &str, session: &Session) -> Result<QueryOutput, EngineError> {
        match self.prepare_query(sql, session)? {
            PreparedQuery::TablePull(rows) => Ok(QueryOutput::Pull(rows)),
            PreparedQuery::Other(p) => self.start_transient(*p, session),
        }
    }

    /// Runs `sql` if it is a pull query on a table and returns its rows; `Ok(None)` when it
    /// is any other query (nothing is started: run it with [`Engine::query`]). Blocking.
    pub fn query_table_pull(&self, sql: &str, session: &Session) -> Result<Option<PullRows>, EngineError> {
        match self.prepare_query(sql, session)? {
            PreparedQuery::TablePull(rows) => Ok(Some(rows)),
            PreparedQuery::Other(_) => Ok(None),
        }
    }

    /// Parses one /query statement and, when it is a pull query on a table, runs it.
    fn prepare_query(&self, sql: &str, session: &Session) -> Result<PreparedQuery, EngineError> {
        let sql = substitute(sql, &session.variables)?;
        // A pull query like one planned before (other key literals) skips parsing and planning.
        // Plans cached for one session's pull-query settings do not apply to another's.
        let shape = if session.properties.keys().any(|k| k.starts_with("ksql.query.pull.")) { None } else { SqlShape::scan(&sql) };
        if let Some((plan, access)) = shape.as_ref().and_then(|s| self.pull_plans.lookup(s)) {
            return self.pull_table_here_or_gathered(&plan, &access, &sql, session).map(PreparedQuery::TablePull);
        }
        let properties = self.query_properties(session);
        let generation = self.pull_plans.generation();
        let mut parsed = self.parse(&sql).map_err(|error| EngineError::Parse { error: Box::new(error), statement: sql.clone(), entities: vec![] })?;
        if parsed.len() != 1 {
            return Err(EngineError::BadRequest(format!("/query takes exactly one statement, got {}", parsed.len())));
        }
        let p = parsed.remove(0);
        if let Statement::Select(q) = &p.statement {
            let pull = q.emit.is_none();
            if pull {
                pull_rules::check_clauses(q, &properties).map_err(|e| EngineError::from(e).for_statement(&p.text, &[]))?;
            }
            if pull && self.is_table_query(q) {
                if let Ok((table, _)) = crate::sql::planner::single_source(q, &self.catalog) {
                    pull_rules::check_without_scan(q, &table, &properties).map_err(|e| EngineError::from(e).for_statement(&p.text, &[]))?;
                }
                let plan = Arc::new(plan_pull(q, &self.catalog).map_err(|e| EngineError::from(e).for_statement(&p.text, &[]))?);
                if let Some(shape) = &shape {
                    self.pull_plans.insert(shape, PullTemplate::new(plan.clone(), shape), generation);
                }
                return self.pull_table_here_or_gathered(&plan, &plan.access, &sql, session).map(PreparedQuery::TablePull);
            }
        }
        Ok(PreparedQuery::Other(Box::new(p)))
    }

    /// Starts a push query, a pull query on a stream, or PRINT.
    fn start_transient(&self, p: ParsedStatement, session: &Session) -> Result<QueryOutput, EngineError> {
        let r = match &p.statement {
            Statement::Select(q) => {
                let pull = q.emit.is_none();
                // A push query that aggregates a join is an aggregation over the join's rows.
                let push_aggregate = !pull && crate::sql::aggregate_plan::is_aggregate_query(q);
                if crate::sql::join_plan::is_join_query(q) && !push_aggregate {
                    self.refuse_continuation_token(session, "joins").map_err(|e| e.for_statement(&p.text, &[]))?;
                    let plan = self.plan_join(q, Purpose::Push, None).map_err(|e| e.for_statement(&p.text, &[]))?;
                    return self
                        .runtime
                        .start_push_join(Arc::new(plan), self.offset_reset(session))
                        .map(QueryOutput::Push)
                        .map_err(|e| EngineError::from(e).for_statement(&p.text, &[]));
                }
                if push_aggregate {
                    self.refuse_continuation_token(session, "aggregates").map_err(|e| e.for_statement(&p.text, &[]))?;
                    return self.push_aggregate(q, session).map(QueryOutput::Push).map_err(|e| e.for_statement(&p.text, &[]));
                }
                let purpose = if pull { Purpose::Pull } else { Purpose::Push };
                let plan = plan_select(q, &self.catalog, purpose, None).map_err(|e| EngineError::from(e).for_statement(&p.text, &[]))?;
                if pull {
                    self.refuse_continuation_token(session, "is a pull query").map_err(|e| e.for_statement(&p.text, &[]))?;
                }
                let start = self.push_start(&plan, session).map_err(|e| e.for_statement(&p.text, &[]))?;
                let tokens = !pull && self.wants_continuation_tokens(session);
                self.runtime.start_push(Arc::new(plan), start, pull, tokens).map(QueryOutput::Push).map_err(EngineError::from)
            }
            Statement::Print { topic, from_beginning, interval, limit } => {
                let t = self.log.get_topic(&topic.value).ok_or_else(|| {
                    EngineError::rule(format!(
                        "Could not find topic '{}', or the KSQL user does not have permissions to list the topic. Topic names are case-sensitive.",
                        topic.value
                    ))
                })?;
                Ok(QueryOutput::Push(self.runtime.start_print(t, *from_beginning, interval.unwrap_or(1), *limit, self.registry_handle())))
            }
            _ => Err(EngineError::BadRequest("/query accepts only SELECT and PRINT statements; send other statements to /ksql".into())),
        };
        r.map_err(|e| e.for_statement(&p.text, &[]))
    }

    /// Answers a pull query without blocking when a cached plan applies and every row it
    /// reads is in memory; `None` otherwise (then run [`Engine::query`] on a blocking thread).
    pub fn try_pull_in_memory(&self, sql: &str) -> Option<Result<PullRows, EngineError>> {
        // A server that runs part of its service's partitions may need other servers' rows.
        if sql.contains("${") || matches!(self.share(), crate::exec::Share::Of { .. }) {
            return None;
        }
        let shape = SqlShape::scan(sql)?;
        let (plan, access) = self.pull_plans.lookup(&shape)?;
        self.pull_table(&plan, &access, ReadMode::MemoryOnly).transpose()
    }

    /// Whether a SELECT reads a table (one FROM source that is a table).
    fn is_table_query(&self, q: &crate::sql::ast::Query) -> bool {
        match &q.from {
            crate::sql::ast::Relation::Source { name, .. } => self.catalog.source(&name.value).is_some_and(|s| s.kind == crate::catalog::SourceKind::Table),
            crate::sql::ast::Relation::Join { .. } => false,
        }
    }

    /// Runs a pull query on a table to completion; `None` when `mode` is memory-only and a
    /// disk read would be needed. Blocks unless memory-only.
    fn pull_table(&self, plan: &Arc<PullPlan>, access: &PullAccess, mode: ReadMode) -> Result<Option<PullRows>, EngineError> {
        let Some(rows) = crate::exec::pull::execute(self.runtime.state(), plan, access, mode)? else {
            return Ok(None);
        };
        Ok(Some(PullRows { id: crate::exec::transient_id(&plan.table.name), plan: plan.clone(), rows, gathered: None }))
    }

    /// Runs a pull query on a table, gathering the rows of partitions other servers run
    /// when it is a scan on a server that runs part of them. Blocking.
    fn pull_table_here_or_gathered(&self, plan: &Arc<PullPlan>, access: &PullAccess, sql: &str, session: &Session) -> Result<PullRows, EngineError> {
        match self.gather(plan, access, sql, session)? {
            Some(rows) => Ok(rows),
            None => self.pull_table_blocking(plan, access),
        }
    }

    /// Runs a pull query on a table to completion, reading the disk if needed. Blocking.
    fn pull_table_blocking(&self, plan: &Arc<PullPlan>, access: &PullAccess) -> Result<PullRows, EngineError> {
        self.pull_table(plan, access, ReadMode::Any)?.ok_or_else(|| EngineError::inconsistent("a pull query that may read the disk returned no rows"))
    }

    /// Stops a transient query by id.
    pub fn close_query(&self, id: &str) -> bool {
        self.runtime.close_transient(id)
    }

    /// Stops all queries (server shutdown) and flushes state, so the next start opens
    /// without replaying RocksDB's write-ahead log. Blocking.
    pub fn shutdown(&self) {
        self.runtime.shutdown();
        if let Err(e) = self.runtime.state().flush() {
            tracing::error!("flushing state on shutdown failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_substituted() {
        let mut vars = BTreeMap::new();
        vars.insert("topic".to_string(), "pv".to_string());
        assert_eq!(substitute("PRINT '${topic}';", &vars).unwrap(), "PRINT 'pv';");
        assert!(substitute("PRINT '${nope}';", &vars).is_err());
    }
}
