//! SHOW, DESCRIBE and EXPLAIN: the catalog, queries and topics as ksqlDB's REST entities.

use super::ServerFault;
use serde_json::{Value, json};

use super::{Engine, EngineError, Session};
use crate::catalog::types::{ColumnKind, LogicalSchema, SqlType};
use crate::catalog::{DataSource, QueryMeta, SourceKind};
use crate::exec::stats::QueryState;
use crate::sql::aggregate_plan::{AggregatePlan, is_aggregate_query, plan_aggregate};
use crate::sql::ast::JoinKind;
use crate::sql::ast::{Query, Relation, ShowKind, Statement};
use crate::sql::functions::Arity;
use crate::sql::join_plan::{JoinPlan, JoinShape, SideInputKind, is_join_query};
use crate::sql::planner::{Purpose, SelectPlan, plan_select};
use crate::sql::pull::{PullAccess, PullPlan, plan_pull};

fn fields_json(schema: &LogicalSchema) -> Vec<Value> {
    schema
        .columns()
        .iter()
        .map(|c| {
            let mut f = json!({"name": c.name, "schema": c.ty.to_schema_json()});
            match c.kind {
                ColumnKind::Key => f["type"] = json!("KEY"),
                ColumnKind::Header => {
                    f["type"] = json!("HEADER");
                    if let Some(k) = &c.header_key {
                        f["headerKey"] = json!(k);
                    }
                }
                ColumnKind::Value => {}
            }
            f
        })
        .collect()
}

/// The synopsis a function's description starts with (`INSTR(s, sub[, position[,
/// occurrence]]): ...`) and its arguments by name, each marked when optional.
fn synopsis_arguments<'a>(name: &str, description: &'a str) -> (Option<&'a str>, Vec<(String, bool)>) {
    let synopsis = description.strip_prefix(name).filter(|r| r.starts_with('(')).and_then(|r| {
        let mut depth = 0;
        for (i, c) in r.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(&r[1..i]);
                    }
                }
                _ => {}
            }
        }
        None
    });
    // Arguments in brackets are optional: `sub[, position]` makes `position` optional.
    let mut arguments = Vec::new();
    let (mut depth, mut current, mut optional) = (0usize, String::new(), false);
    let mut flush = |current: &mut String, optional: bool| {
        let n = current.trim();
        if !n.is_empty() {
            arguments.push((n.to_string(), optional));
        }
        current.clear();
    };
    for c in synopsis.unwrap_or_default().chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ',' => flush(&mut current, optional),
            c => {
                if current.trim().is_empty() {
                    optional = depth > 0;
                }
                current.push(c);
            }
        }
    }
    flush(&mut current, optional);
    (synopsis, arguments)
}

/// DESCRIBE FUNCTION's variation from the synopsis alone: arguments by name, optional ones
/// marked, without types (functions whose argument types are not probed).
fn variation(name: &str, description: &str) -> Value {
    let (synopsis, arguments) = synopsis_arguments(name, description);
    let arguments: Vec<Value> =
        arguments.iter().map(|(n, optional)| json!({"name": n, "type": "", "description": if *optional { "optional" } else { "" }})).collect();
    json!({
        "arguments": arguments,
        "returnType": "",
        "description": description,
        "argumentTypes": [],
        "synopsis": synopsis.map(|s| format!("{name}({s})")).unwrap_or_else(|| name.to_string()),
    })
}

/// One typed variation of DESCRIBE FUNCTION: arguments as (name, type), the result type.
fn typed_variation<N: AsRef<str>, T: AsRef<str>>(name: &str, args: &[(N, T)], returns: &str, description: &str) -> Value {
    let shown: Vec<String> = args.iter().map(|(n, t)| format!("{} {}", n.as_ref(), t.as_ref())).collect();
    json!({
        "arguments": args.iter().map(|(n, t)| json!({"name": n.as_ref(), "type": t.as_ref(), "description": ""})).collect::<Vec<_>>(),
        "returnType": returns,
        "description": description,
        "argumentTypes": args.iter().map(|(_, t)| t.as_ref()).collect::<Vec<_>>(),
        "synopsis": format!("{name}({})", shown.join(", ")),
    })
}

/// DESCRIBE FUNCTION's variations of a scalar function: one per signature its type rule
/// accepts (see `udf::signatures`), arguments named from the synopsis.
fn typed_variations(name: &str, arity: Arity, rule: &dyn Fn(&[SqlType]) -> Option<SqlType>, description: &str) -> Vec<Value> {
    use crate::sql::udf::signatures::{MAX_PROBED_ARGUMENTS, candidates, signatures_of};
    let (_, names) = synopsis_arguments(name, description);
    let last = arity.max.unwrap_or(arity.min + 1).min(MAX_PROBED_ARGUMENTS);
    let candidates = candidates();
    let mut out = Vec::new();
    for n in arity.min..=last {
        for s in signatures_of(rule, n, &candidates) {
            let named: Vec<(String, &String)> = s
                .arguments
                .iter()
                .enumerate()
                .map(|(i, t)| (names.get(i).or(names.last()).map(|(n, _)| n.clone()).unwrap_or_else(|| format!("arg{}", i + 1)), t))
                .collect();
            out.push(typed_variation(name, &named, &s.returns, description));
        }
    }
    out
}

/// DESCRIBE FUNCTION's variations of an aggregate: per form it is called in, the column
/// types its result rule accepts (probed as for scalar functions), then its literal
/// parameters.
fn aggregate_variations(name: &str, description: &str) -> Vec<Value> {
    use crate::sql::udf::signatures::{candidates, signatures_of};
    let candidates = candidates();
    let mut out = Vec::new();
    for form in crate::sql::aggregates::agg_forms(name) {
        let rule = |t: &[SqlType]| form.kind.output_type(t).ok();
        for s in signatures_of(&rule, form.columns, &candidates) {
            let mut args: Vec<(String, String)> =
                s.arguments.iter().enumerate().map(|(i, t)| (if form.columns == 1 { "col".to_string() } else { format!("col{}", i + 1) }, t.clone())).collect();
            args.extend(form.literals.iter().map(|(n, t)| (n.to_string(), t.to_string())));
            out.push(typed_variation(name, &args, &s.returns, description));
        }
    }
    out
}

/// Internal topics are hidden from SHOW TOPICS.
pub(super) fn is_internal_topic(name: &str) -> bool {
    name.starts_with('_')
}

fn format_name(f: &crate::format::FormatSpec) -> &'static str {
    f.kind.name()
}

/// A text rendering of a plan, like ksqlDB's execution plan.
fn plan_text(plan: &SelectPlan, sink: Option<(&str, &str)>) -> String {
    let mut lines = Vec::new();
    if let Some((name, topic)) = sink {
        lines.push(format!(" > [ SINK ] | Schema: {} | Name: {name} | Topic: {topic}", plan.output.describe(true)));
    }
    let exprs: Vec<String> = plan.columns.iter().map(|c| format!("{} AS {}", c.expr.text, c.name)).collect();
    lines.push(format!(" > [ PROJECT ] | Schema: {} | Expressions: {}", plan.header_schema(true), exprs.join(", ")));
    if let Some(f) = &plan.filter {
        lines.push(format!(" > [ FILTER ] | Condition: {}", f.text));
    }
    lines.push(format!(" > [ SOURCE ] | Schema: {} | Name: {} | Topic: {}", plan.source.schema.describe(true), plan.source.name, plan.source.topic));
    indent_lines(lines)
}

fn join_plan_text(plan: &JoinPlan, sink: Option<(&str, &str)>) -> String {
    let mut lines = Vec::new();
    if let Some((name, topic)) = sink {
        lines.push(format!(" > [ SINK ] | Schema: {} | Name: {name} | Topic: {topic}", plan.output.describe(true)));
    }
    let exprs: Vec<String> = plan.columns.iter().map(|c| format!("{} AS {}", c.expr.text, c.name)).collect();
    lines.push(format!(" > [ PROJECT ] | Expressions: {}", exprs.join(", ")));
    if let Some(f) = &plan.filter {
        lines.push(format!(" > [ FILTER ] | Condition: {}", f.text));
    }
    join_lines(plan, &mut lines);
    indent_lines(lines)
}

/// A join stage and its inputs (earlier stages of an N-way join nest under it).
fn join_lines(plan: &JoinPlan, lines: &mut Vec<String>) {
    let kind = match plan.kind {
        JoinKind::Inner => "INNER",
        JoinKind::Left => "LEFT",
        JoinKind::Right => "RIGHT",
        JoinKind::Full => "FULL OUTER",
    };
    let shape = match plan.shape {
        JoinShape::StreamStream => "STREAM-STREAM",
        JoinShape::StreamTable => "STREAM-TABLE",
        JoinShape::TableTable => "TABLE-TABLE",
    };
    let window = plan.window.map(|w| format!(" | Within: before {} ms, after {} ms, grace {} ms", w.before_ms, w.after_ms, w.grace_ms)).unwrap_or_default();
    lines.push(format!(" > [ JOIN ] | {kind} {shape} | Partitions: {}{window}", plan.partitions));
    for side in [&plan.left, &plan.right] {
        let how = if side.repartition { format!("REPARTITION BY {} | ", side.key.text) } else { String::new() };
        match &side.input {
            SideInputKind::Source(src) => lines.push(format!(" > [ SOURCE ] | {how}Name: {} AS {} | Topic: {}", src.name, side.alias, src.topic)),
            SideInputKind::Stage(inner) => {
                lines.push(format!(" > [ STAGE ] | {how}{}", side.alias));
                join_lines(inner, lines);
            }
        }
    }
}

impl Engine {
    /// On a cluster: the source offsets a query's tasks committed there (in their
    /// transactions, whichever server ran them), by partition; None elsewhere, or when the
    /// cluster does not say. Blocking.
    fn service_offsets(&self, query_id: &str, topic: &str, partitions: &[i32]) -> Option<Vec<(i32, Option<i64>)>> {
        let cluster = self.log.cluster()?;
        let mut last = None;
        for task in [query_id.to_string(), format!("{query_id}/repartition")] {
            let group = crate::exec::transaction::offsets_group(&self.log, &task);
            match cluster.committed_offsets(&group, topic, partitions) {
                Ok(found) if found.iter().any(|(_, o)| o.is_some()) => return Some(found),
                Ok(found) => last = Some(found),
                Err(e) => tracing::debug!(group, "cannot read the group's offsets: {e}"),
            }
        }
        last
    }

    /// On a server that runs part of its service's partitions: its share (which server
    /// runs each partition), and the servers' URLs in order.
    fn partition_hosts(&self) -> Option<(crate::exec::Share, Vec<String>)> {
        let share = self.share();
        let crate::exec::Share::Of { .. } = share else { return None };
        let peers = self.peer_reads.get()?.peers(&share)?;
        Some((share, peers.into_iter().map(|(_, url)| url).collect()))
    }

    fn query_json(&self, q: &QueryMeta) -> Value {
        let stats = self.runtime.stats(&q.id);
        let state = match &stats {
            _ if self.catalog.is_paused(&q.id) => "PAUSED",
            Some(s) => s.state().name(),
            // A standby runs nothing: the service's active server runs the query.
            None if !self.is_active() => QueryState::Running.name(),
            None => QueryState::Error.name(),
        };
        let errors = stats.as_ref().map(|s| s.error_count()).unwrap_or(0);
        // Every server of a service runs every query (each its share of the partitions).
        let servers = match self.share() {
            crate::exec::Share::Of { count, .. } => count,
            _ => 1,
        };
        let mut v = json!({
            "queryString": q.sql,
            "sinks": [q.sink],
            "sinkKafkaTopics": [q.sink_topic],
            "id": q.id,
            "statusCount": {state: servers},
            "queryType": "PERSISTENT",
            "state": state,
            "processingErrors": errors,
        });
        if stats.is_none()
            && let Some(f) = self.restore.of_query(&q.id)
        {
            v["errorMessage"] = Value::String(f.reason);
        }
        v
    }

    /// SHOW QUERIES entries of queries that could not be restored on start and are not in
    /// the catalog (their statement no longer applies).
    fn failed_queries_json(&self) -> Vec<Value> {
        self.restore
            .all()
            .into_iter()
            .filter_map(|f| {
                let id = f.query_id?;
                if self.catalog.query(&id).is_some() {
                    return None;
                }
                Some(json!({
                    "queryString": f.statement,
                    "sinks": f.source.iter().collect::<Vec<_>>(),
                    "sinkKafkaTopics": [],
                    "id": id,
                    "statusCount": {"ERROR": 1},
                    "queryType": "PERSISTENT",
                    "state": "ERROR",
                    "processingErrors": 0,
                    "errorMessage": format!("not restored when the server started: {}", f.reason),
                }))
            })
            .collect()
    }

    fn source_description(&self, source: &DataSource, extended: bool) -> Value {
        let (readers, writers) = self.catalog.readers_and_writers(&source.name);
        let queries: Vec<_> = self.catalog.queries();
        let q_json = |ids: &[String]| -> Vec<Value> { ids.iter().filter_map(|id| queries.iter().find(|q| &q.id == id)).map(|q| self.query_json(q)).collect() };
        let topic = self.log.get_topic(&source.topic);
        let mut statistics = String::new();
        let mut error_stats = String::new();
        let mut offsets = Vec::new();
        if extended {
            // Statistics of the queries that write this source, else of those that read it.
            let ids = if writers.is_empty() { &readers } else { &writers };
            let mut parts = Vec::new();
            let mut err_parts = Vec::new();
            for id in ids {
                if let Some(s) = self.runtime.stats(id) {
                    parts.push(format!("{id}: {}", s.describe()));
                    err_parts.push(format!("{id}: {}", s.describe_errors()));
                }
            }
            if let Some(l) = self.runtime.state().lookup_stats(&source.state_family()) {
                let pct = if l.keys_looked_up == 0 { 0.0 } else { 100.0 * l.from_memory as f64 / l.keys_looked_up as f64 };
                parts.push(format!("key-lookups: {} from-memory: {pct:.1}% rows-in-memory: {}", l.keys_looked_up, l.rows_held));
            }
            statistics = parts.join("\n");
            error_stats = err_parts.join("\n");
            for id in &readers {
                let mut partitions = Vec::new();
                if let Some(t) = &topic {
                    let ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
                    let service = self.service_offsets(id, t.name(), &ids);
                    let hosts = self.partition_hosts();
                    for p in t.partitions() {
                        let committed = match &service {
                            Some(found) => found.iter().find(|(q, _)| *q == p.id()).and_then(|(_, o)| *o).unwrap_or(-1),
                            None => self.log.offsets().fetch(id, t.name(), p.id()).map(|c| c.offset).unwrap_or(-1),
                        };
                        let mut entry = json!({
                            "partition": p.id(),
                            "logStartOffset": p.start_offset(),
                            "logEndOffset": p.end_offset(),
                            "consumerOffset": committed,
                            "lag": if committed >= 0 { p.end_offset() - committed } else { p.end_offset() - p.start_offset() },
                        });
                        if let Some((share, urls)) = &hosts
                            && let Some(url) = share.owner(p.id()).and_then(|r| urls.get(r as usize))
                        {
                            entry["host"] = json!(url);
                        }
                        partitions.push(entry);
                    }
                }
                offsets.push(json!({"groupId": id, "topicSummaries": [{"kafkaTopic": source.topic, "offsets": partitions}]}));
            }
        }
        let mut description = json!({
            "name": source.name,
            "windowType": source.window.map(|w| w.name()),
            "readQueries": q_json(&readers),
            "writeQueries": q_json(&writers),
            "fields": fields_json(&source.schema),
            "type": source.kind.name(),
            "timestamp": source.timestamp.as_ref().map(|t| t.column.clone()).unwrap_or_default(),
            "statistics": statistics,
            "errorStats": error_stats,
            "extended": extended,
            "keyFormat": format_name(&source.key_format),
            "valueFormat": format_name(&source.value_format),
            "topic": source.topic,
            "partitions": topic.as_ref().map(|t| t.partition_count()).unwrap_or(0),
            "replication": 1,
            "statement": source.sql,
            "queryOffsetSummaries": offsets,
            "sourceConstraints": [],
            "clusterStatistics": [],
            "clusterErrorStats": [],
        });
        // Registry formats: the ids of the schemas records are written with.
        for (field, spec) in [("keySchemaId", &source.key_format), ("valueSchemaId", &source.value_format)] {
            if let Some(id) = spec.schema_id.filter(|_| spec.uses_registry()) {
                description[field] = json!(id);
            }
        }
        description
    }

    pub(super) fn show(&self, kind: &ShowKind, extended: bool, text: &str, session: &Session) -> Result<Value, EngineError> {
        Ok(match kind {
            ShowKind::Streams | ShowKind::Tables => {
                let want = if *kind == ShowKind::Streams { SourceKind::Stream } else { SourceKind::Table };
                let sources: Vec<_> = self.catalog.sources().into_iter().filter(|s| s.kind == want).collect();
                if extended {
                    json!({
                        "@type": "source_descriptions",
                        "statementText": text,
                        "sourceDescriptions": sources.iter().map(|s| self.source_description(s, true)).collect::<Vec<_>>(),
                        "warnings": []
                    })
                } else {
                    let list: Vec<Value> = sources
                        .iter()
                        .map(|s| {
                            json!({
                                "type": s.kind.name(),
                                "name": s.name,
                                "topic": s.topic,
                                "keyFormat": format_name(&s.key_format),
                                "valueFormat": format_name(&s.value_format),
                                "isWindowed": s.window.is_some(),
                            })
                        })
                        .collect();
                    let key = if want == SourceKind::Stream { "streams" } else { "tables" };
                    json!({"@type": key, "statementText": text, key: list, "warnings": []})
                }
            }
            ShowKind::Queries if extended => {
                // EXPLAIN of every query.
                let descriptions: Vec<Value> =
                    self.catalog.queries().iter().filter_map(|q| self.explain_query(&q.id, text).ok().map(|mut d| d["queryDescription"].take())).collect();
                json!({"@type": "query_descriptions", "statementText": text, "queryDescriptions": descriptions, "warnings": []})
            }
            ShowKind::Queries => {
                let mut list: Vec<Value> = self.catalog.queries().iter().map(|q| self.query_json(q)).collect();
                list.extend(self.failed_queries_json());
                json!({"@type": "queries", "statementText": text, "queries": list, "warnings": []})
            }
            ShowKind::Topics => {
                let topics: Vec<_> = self.log.topics().into_iter().filter(|t| !is_internal_topic(t.name())).collect();
                if extended {
                    let lags: Vec<(String, Vec<crate::log::groups::PartitionLag>)> = self
                        .log
                        .offsets()
                        .groups()
                        .into_iter()
                        .map(|g| {
                            let l = self.log.group_lag(&g);
                            (g, l)
                        })
                        .collect();
                    let list: Vec<Value> = topics
                        .iter()
                        .map(|t| {
                            let groups: Vec<Value> = lags
                                .iter()
                                .filter_map(|(g, l)| {
                                    let mine: Vec<_> = l.iter().filter(|x| x.topic == t.name()).collect();
                                    (!mine.is_empty()).then(|| {
                                        json!({
                                            "group": g,
                                            "lag": mine.iter().map(|x| x.lag).sum::<i64>(),
                                            "partitions": mine
                                                .iter()
                                                .map(|x| json!({
                                                    "partition": x.partition,
                                                    "committedOffset": x.committed_offset,
                                                    "logEndOffset": x.log_end_offset,
                                                    "lag": x.lag,
                                                }))
                                                .collect::<Vec<_>>(),
                                        })
                                    })
                                })
                                .collect();
                            json!({
                                "name": t.name(),
                                "replicaInfo": vec![1; t.partition_count() as usize],
                                "consumerCount": groups.len(),
                                "consumerGroupCount": groups.len(),
                                "consumerGroups": groups,
                            })
                        })
                        .collect();
                    json!({"@type": "kafka_topics_extended", "statementText": text, "topics": list, "warnings": []})
                } else {
                    let list: Vec<Value> = topics.iter().map(|t| json!({"name": t.name(), "replicaInfo": vec![1; t.partition_count() as usize]})).collect();
                    json!({"@type": "kafka_topics", "statementText": text, "topics": list, "warnings": []})
                }
            }
            ShowKind::Properties => {
                let system = self.catalog.system_properties();
                let offset_reset = match self.config.default_offset_reset {
                    crate::exec::OffsetReset::Earliest => "earliest",
                    crate::exec::OffsetReset::Latest => "latest",
                };
                let offset_reset =
                    system.get("ksql.streams.auto.offset.reset").or_else(|| system.get("auto.offset.reset")).map(String::as_str).unwrap_or(offset_reset);
                let mut props = vec![
                    json!({"name": "ksql.streams.auto.offset.reset", "scope": "KSQL", "value": offset_reset}),
                    json!({"name": "ksql.service.id", "scope": "KSQL", "value": self.config.service_id}),
                    json!({"name": "eddy.log.flush", "scope": "EDDY", "value": self.log.defaults().flush.name()}),
                ];
                for (k, v) in system.iter().filter(|(k, _)| !k.ends_with("auto.offset.reset")) {
                    props.push(json!({"name": k, "scope": "KSQL", "level": "SERVER", "value": v}));
                }
                let overwritten: Vec<String> = session.properties.keys().cloned().collect();
                for (k, v) in &session.properties {
                    props.push(json!({"name": k, "scope": "SESSION", "value": v}));
                }
                json!({
                    "@type": "properties",
                    "statementText": text,
                    "properties": props,
                    "overwrittenProperties": overwritten,
                    "defaultProperties": [],
                    "warnings": [],
                })
            }
            ShowKind::Functions => {
                let list: Vec<Value> = crate::sql::udf::function_catalog()
                    .iter()
                    .map(|(n, t, _)| json!({"name": n, "type": t, "category": crate::sql::udf::category(n, t)}))
                    .collect();
                json!({"@type": "function_names", "statementText": text, "functions": list, "warnings": []})
            }
            ShowKind::Types => {
                let types: serde_json::Map<String, Value> = self.catalog.types().iter().map(|(n, t)| (n.clone(), t.to_schema_json())).collect();
                json!({"@type": "type_list", "statementText": text, "types": types, "warnings": []})
            }
            ShowKind::Variables => {
                let list: Vec<Value> = session.variables.iter().map(|(k, v)| json!({"name": k, "value": v})).collect();
                json!({"@type": "variables", "statementText": text, "variables": list, "warnings": []})
            }
        })
    }

    pub(super) fn describe_source(&self, name: &str, extended: bool, text: &str) -> Result<Value, EngineError> {
        let Some(source) = self.catalog.source(name) else {
            if let Some(f) = self.restore.of_source(name) {
                let query = f.query_id.map(|q| format!(" Its query {q} is not running.")).unwrap_or_default();
                return Err(EngineError::rule(format!(
                    "STREAM/TABLE '{name}' could not be restored when the server started: {}.{query} Drop it (DROP STREAM/TABLE {name}) and create it again.",
                    f.reason
                )));
            }
            return Err(EngineError::rule(format!("Could not find STREAM/TABLE '{name}' in the Metastore; SHOW STREAMS lists what exists")));
        };
        Ok(json!({"@type": "sourceDescription", "statementText": text, "sourceDescription": self.source_description(&source, extended), "warnings": []}))
    }

    pub(super) fn describe_all(&self, kind: SourceKind, extended: bool, text: &str) -> Result<Value, EngineError> {
        let list: Vec<Value> = self.catalog.sources().iter().filter(|s| s.kind == kind).map(|s| self.source_description(s, extended)).collect();
        Ok(json!({"@type": "source_descriptions", "statementText": text, "sourceDescriptions": list, "warnings": []}))
    }

    /// A function's variations: typed ones for row functions (when their argument types
    /// could be probed), else the synopsis.
    fn function_variations(&self, name: &str, description: &str) -> Vec<Value> {
        // Probing takes up to half a second for a function of three arguments; the answer
        // never changes, so each function is probed once.
        static PROBED: std::sync::OnceLock<parking_lot::Mutex<std::collections::HashMap<String, Vec<Value>>>> = std::sync::OnceLock::new();
        let probed = PROBED.get_or_init(Default::default);
        if let Some(v) = probed.lock().get(name) {
            return v.clone();
        }
        let variations = Self::probe_variations(name, description);
        probed.lock().insert(name.to_string(), variations.clone());
        variations
    }

    fn probe_variations(name: &str, description: &str) -> Vec<Value> {
        use crate::sql::udf::{bytes_overload, row_functions};
        // A function lowered onto DataFusion's library is probed through the binder (which
        // also dispatches its BYTES forms); a row function through its own type rule.
        let typed = if let Some(declared) = crate::sql::udf::signatures::declared(name) {
            declared.into_iter().map(|(args, returns)| typed_variation(name, &args, returns, description)).collect()
        } else if let Some(f) = crate::sql::functions::ksql_functions().get(name) {
            match crate::sql::binder::lowered_function_rule(name) {
                Some(rule) => typed_variations(name, f.arity, &rule, description),
                None => Vec::new(),
            }
        } else if let Some(f) = row_functions().get(name) {
            let mut v = typed_variations(name, f.arity, &|t: &[SqlType]| (f.returns)(t).ok(), description);
            if let Some(b) = bytes_overload(name) {
                v.extend(typed_variations(name, b.arity, &|t: &[SqlType]| (b.returns)(t).ok(), description));
            }
            v
        } else {
            aggregate_variations(name, description)
        };
        if typed.is_empty() { vec![variation(name, description)] } else { typed }
    }

    pub(super) fn describe_function(&self, name: &str, text: &str) -> Result<Value, EngineError> {
        let upper = name.to_uppercase();
        let (fname, ftype, description) = crate::sql::udf::function_catalog()
            .into_iter()
            .find(|(n, _, _)| *n == upper)
            .ok_or_else(|| EngineError::rule(format!("Can't find any functions with the name '{name}'")))?;
        Ok(json!({
            "@type": "describe_function",
            "statementText": text,
            "name": fname,
            "description": description,
            "author": "Eddy",
            "version": env!("CARGO_PKG_VERSION"),
            "path": "internal",
            "functions": self.function_variations(fname, description),
            "type": ftype,
            "category": crate::sql::udf::category(fname, ftype),
            "warnings": []
        }))
    }

    /// ksqlDB's queryDescription for a plan described by `desc`.
    fn query_description(&self, id: &str, sql: &str, desc: &PlanDescription, state: &str) -> Value {
        json!({
            "id": id,
            "statementText": sql,
            "windowType": desc.window,
            "fields": fields_json(&desc.fields),
            "sources": [desc.source],
            "sinks": desc.sink.iter().collect::<Vec<_>>(),
            "topology": "",
            "executionPlan": desc.plan,
            "overriddenProperties": {},
            "ksqlHostQueryStatus": {},
            "queryType": desc.query_type,
            "queryErrors": [],
            "tasksMetadata": [],
            "state": state,
        })
    }

    /// Plans a query for EXPLAIN: persistent queries (aggregations or not), push queries,
    /// and pull queries on tables (which say how rows are found).
    fn describe_plan(&self, query: &Query, sink: Option<(&str, &str)>) -> Result<PlanDescription, EngineError> {
        // An aggregation over a join reads the join's materialized result.
        let effective = match sink {
            Some((name, _))
                if super::join_aggregate::aggregates_a_join(query) && self.catalog.source(&super::join_aggregate::join_source_name(name)).is_some() =>
            {
                self.effective_query(query, name)?
            }
            _ => std::borrow::Cow::Borrowed(query),
        };
        let query: &Query = &effective;
        if is_aggregate_query(query) && !is_join_query(query) {
            let plan = plan_aggregate(query, &self.catalog, sink.map(|s| s.0))?;
            return Ok(PlanDescription {
                window: plan.window.as_ref().map(|w| w.kind.name()),
                fields: plan.output.clone(),
                source: plan.source.name.clone(),
                sink: sink.map(|s| s.0.to_string()),
                plan: aggregate_plan_text(&plan, sink),
                query_type: if sink.is_some() { "PERSISTENT" } else { "PUSH" },
            });
        }
        if is_join_query(query) {
            let plan = self.plan_join(query, if sink.is_some() { Purpose::Persistent } else { Purpose::Push }, sink.map(|s| s.0))?;
            return Ok(PlanDescription {
                window: None,
                fields: plan.output.clone(),
                source: plan.source_names().join(", "),
                sink: sink.map(|s| s.0.to_string()),
                plan: join_plan_text(&plan, sink),
                query_type: if sink.is_some() { "PERSISTENT" } else { "PUSH" },
            });
        }
        let pull = query.emit.is_none() && sink.is_none();
        if pull
            && let Relation::Source { name, .. } = &query.from
            && self.catalog.source(&name.value).is_some_and(|s| s.kind == SourceKind::Table)
        {
            let plan = plan_pull(query, &self.catalog)?;
            return Ok(PlanDescription {
                window: plan.table.window.map(|w| w.name()),
                fields: plan.table.schema.clone(),
                source: plan.table.name.clone(),
                sink: None,
                plan: pull_plan_text(&plan),
                query_type: "PULL",
            });
        }
        let purpose = if sink.is_some() {
            Purpose::Persistent
        } else if pull {
            Purpose::Pull
        } else {
            Purpose::Push
        };
        let plan = plan_select(query, &self.catalog, purpose, sink.map(|s| s.0))?;
        Ok(PlanDescription {
            window: None,
            fields: plan.output.clone(),
            source: plan.source.name.clone(),
            sink: sink.map(|s| s.0.to_string()),
            plan: plan_text(&plan, sink),
            query_type: match purpose {
                Purpose::Persistent => "PERSISTENT",
                Purpose::Pull => "PULL",
                Purpose::Push => "PUSH",
            },
        })
    }

    pub(super) fn explain_query(&self, id: &str, text: &str) -> Result<Value, EngineError> {
        let q = self
            .catalog
            .query(id)
            .ok_or_else(|| EngineError::rule(format!("Query with id:{id} does not exist, use SHOW QUERIES to view the full set of running queries.")))?;
        let parsed = crate::sql::parser::parse_with_types(&q.sql, &q.types).map_err(|e| EngineError::fault(ServerFault::StoredQuery(e)))?;
        let state = self.runtime.stats(id).map(|s| s.state().name()).unwrap_or("UNKNOWN");
        let desc = match parsed.first().map(|p| &p.statement) {
            Some(Statement::CreateAsSelect { query, .. }) | Some(Statement::InsertSelect { query, .. }) => {
                self.describe_plan(query, Some((&q.sink, &q.sink_topic)))?
            }
            Some(Statement::CreateSource { .. }) => {
                // A source table's materialization: the topic upserted into the state store.
                let table =
                    self.catalog.source(&q.sink).ok_or_else(|| EngineError::inconsistent(format!("query {id} materializes a table that no longer exists")))?;
                PlanDescription {
                    window: None,
                    fields: table.schema.clone(),
                    source: table.name.clone(),
                    sink: Some(table.name.clone()),
                    plan: format!(
                        " > [ MATERIALIZE ] | Schema: {} | Name: {} | State: {}\n\t\t > [ SOURCE ] | Topic: {}",
                        table.schema.describe(true),
                        table.name,
                        table.state_family(),
                        table.topic
                    ),
                    query_type: "PERSISTENT",
                }
            }
            _ => return Err(EngineError::inconsistent(format!("query {id} has no SELECT"))),
        };
        let mut description = self.query_description(id, &q.sql, &desc, state);
        if let Some((hosts, tasks)) = self.cluster_tasks(&q, state) {
            description["ksqlHostQueryStatus"] = hosts;
            description["tasksMetadata"] = tasks;
        }
        Ok(json!({"@type": "queryDescription", "statementText": text, "queryDescription": description, "warnings": []}))
    }

    /// On a server of a service: every server's state of the query (each runs its share)
    /// and, per source partition, the task that reads it: the server that runs it and
    /// those that keep its copies.
    fn cluster_tasks(&self, q: &QueryMeta, state: &str) -> Option<(Value, Value)> {
        let (share, urls) = self.partition_hosts()?;
        let host = |url: &str| url.split_once("://").map_or(url, |(_, r)| r).trim_end_matches('/').to_string();
        let hosts: serde_json::Map<String, Value> = urls.iter().map(|u| (host(u), json!(state))).collect();
        let crate::exec::Share::Of { placement, .. } = &share else { return None };
        let mut tasks = Vec::new();
        for topic in q.sources.iter().filter_map(|s| self.catalog.source(s)).filter_map(|s| self.log.get_topic(&s.topic)) {
            for p in 0..topic.partition_count() {
                let at = |r: u32| urls.get(r as usize).map(|u| host(u));
                tasks.push(json!({
                    "taskId": format!("{}-{p}", topic.name()),
                    "topicPartitions": [{"topic": topic.name(), "partition": p}],
                    "host": placement.owner(p).and_then(at),
                    "standbyHosts": placement.standbys_of(p).into_iter().filter_map(at).collect::<Vec<_>>(),
                }));
            }
        }
        Some((Value::Object(hosts), Value::Array(tasks)))
    }

    pub(super) fn explain_statement(&self, inner: &Statement, text: &str) -> Result<Value, EngineError> {
        let (query, sink) = match inner {
            Statement::Select(q) => (q, None),
            Statement::CreateAsSelect { query, name, .. } => (query, Some(name.value.clone())),
            Statement::InsertSelect { query, target, .. } => (query, Some(target.value.clone())),
            _ => {
                return Err(EngineError::rule("EXPLAIN takes a query id, a SELECT, or a CREATE/INSERT ... AS SELECT"));
            }
        };
        let sink_pair = sink.as_ref().map(|s| (s.as_str(), s.as_str()));
        let desc = self.describe_plan(query, sink_pair)?;
        let inner_text = text.trim_start().get(7..).unwrap_or(text).trim();
        let description = self.query_description("", inner_text, &desc, "NOT_RUNNING");
        Ok(json!({"@type": "queryDescription", "statementText": text, "queryDescription": description, "warnings": []}))
    }
}

/// What EXPLAIN shows about a plan.
struct PlanDescription {
    window: Option<&'static str>,
    fields: LogicalSchema,
    source: String,
    sink: Option<String>,
    plan: String,
    query_type: &'static str,
}

fn indent_lines(lines: Vec<String>) -> String {
    lines.iter().enumerate().map(|(i, l)| format!("{}{}", "\t\t".repeat(i), l)).collect::<Vec<_>>().join("\n")
}

/// The execution plan of an aggregation.
fn aggregate_plan_text(plan: &AggregatePlan, sink: Option<(&str, &str)>) -> String {
    let mut lines = Vec::new();
    if let Some((name, topic)) = sink {
        lines.push(format!(" > [ SINK ] | Schema: {} | Name: {name} | Topic: {topic}", plan.output.describe(true)));
    }
    let exprs: Vec<String> = plan.columns.iter().map(|c| format!("{} AS {}", c.expr.text, c.name)).collect();
    lines.push(format!(" > [ PROJECT ] | Expressions: {}", exprs.join(", ")));
    if let Some(h) = &plan.having {
        lines.push(format!(" > [ HAVING ] | Condition: {}", h.text));
    }
    let aggs: Vec<&str> = plan.aggregates.iter().map(|a| a.text.as_str()).collect();
    let window = match &plan.window {
        Some(w) => {
            format!(" | Window: {} size {} ms, advance {} ms, grace {} ms, retention {} ms", w.kind.name(), w.size_ms, w.advance_ms, w.grace_ms, w.retention_ms)
        }
        None => String::new(),
    };
    let emit = if plan.emit_final { "FINAL" } else { "CHANGES" };
    lines.push(format!(" > [ AGGREGATE ] | Aggregates: {} | Emit: {emit}{window}", aggs.join(", ")));
    let groups: Vec<&str> = plan.group_by.iter().map(|g| g.text.as_str()).collect();
    let repartition = if plan.repartition { " | Repartition: through an internal topic" } else { "" };
    lines.push(format!(" > [ GROUP BY ] | Keys: {}{repartition}", groups.join(", ")));
    if let Some(f) = &plan.filter {
        lines.push(format!(" > [ FILTER ] | Condition: {}", f.text));
    }
    lines.push(format!(" > [ SOURCE ] | Schema: {} | Name: {} | Topic: {}", plan.source.schema.describe(true), plan.source.name, plan.source.topic));
    indent_lines(lines)
}

/// The execution plan of a pull query: how rows are found, then what is done to them.
fn pull_plan_text(plan: &PullPlan) -> String {
    let mut lines = Vec::new();
    if let Some(l) = plan.limit {
        lines.push(format!(" > [ LIMIT ] | {l}"));
    }
    if !plan.order_by.is_empty() {
        let keys: Vec<String> = plan.order_by.iter().map(|(e, asc)| format!("{} {}", e.text, if *asc { "ASC" } else { "DESC" })).collect();
        lines.push(format!(" > [ ORDER BY ] | {}", keys.join(", ")));
    }
    let exprs: Vec<String> = plan.columns.iter().map(|c| format!("{} AS {}", c.expr.text, c.name)).collect();
    lines.push(format!(" > [ PROJECT ] | Expressions: {}", exprs.join(", ")));
    if let Some(f) = &plan.filter {
        lines.push(format!(" > [ FILTER ] | Condition: {}", f.text));
    }
    let access = match &plan.access {
        PullAccess::KeyLookup(keys) => format!("{} | Keys: {}", plan.access.name(), keys.len()),
        other => other.name().to_string(),
    };
    lines.push(format!(" > [ {access} ] | Table: {} | State: {}", plan.table.name, plan.table.state_family()));
    indent_lines(lines)
}

#[cfg(test)]
mod function_tests {
    use super::*;

    #[test]
    fn synopses_name_arguments_and_mark_optional_ones() {
        let (synopsis, args) = synopsis_arguments("INSTR", "INSTR(s, sub[, position[, occurrence]]): where sub starts in s.");
        assert_eq!(synopsis, Some("s, sub[, position[, occurrence]]"));
        assert_eq!(args, vec![("s".into(), false), ("sub".into(), false), ("position".into(), true), ("occurrence".into(), true)]);
        assert_eq!(synopsis_arguments("ABS", "Absolute value."), (None, Vec::new()));
    }
}
