//! `eddy compat`: runs ksqlDB's own functional tests (QTT files) against Eddy and reports
//! how many pass. Each case gets a fresh engine in a temporary directory: its statements
//! run, its input records are appended, the runner waits until every query has consumed
//! its input, and the sink topics are compared record by record with the expected
//! outputs, as ksqlDB's runner does. Cases that need a schema registry are counted as
//! unsupported, apart from failures.

mod avro_json;
mod cases;
mod codec;
mod exact;
mod judge;
mod protobuf_json;
mod rest;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::engine::Rejection;
use crate::engine::{Engine, EngineConfig, EngineError, Session};
use crate::exec::OffsetReset;
use crate::log::{BatchBuilder, FlushPolicy, Log, TopicConfig};
use crate::sql::SqlError;
pub use cases::{Case, load};

pub struct CompatArgs {
    pub paths: Vec<PathBuf>,
    pub json: Option<PathBuf>,
    /// Fail (exit non-zero) when fewer than this fraction of supported cases pass.
    pub min_pass: Option<f64>,
    /// Fail when fewer cases than this pass.
    pub min_passed: Option<u64>,
    /// Longest wait for a case's queries to finish, ms.
    pub timeout_ms: u64,
    /// Only cases whose name contains this.
    pub filter: Option<String>,
    /// Print every case, not only failures.
    pub verbose: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Passed,
    Failed(String),
    Unsupported(String),
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    total: u64,
    passed: u64,
    failed: u64,
    unsupported: u64,
}

impl Counts {
    fn add(&mut self, o: &Outcome) {
        self.total += 1;
        match o {
            Outcome::Passed => self.passed += 1,
            Outcome::Failed(_) => self.failed += 1,
            Outcome::Unsupported(_) => self.unsupported += 1,
        }
    }

    fn json(&self) -> Value {
        json!({"total": self.total, "passed": self.passed, "failed": self.failed, "unsupported": self.unsupported})
    }

    /// Passed over supported cases.
    fn rate(&self) -> f64 {
        let supported = self.total - self.unsupported;
        if supported == 0 { 1.0 } else { self.passed as f64 / supported as f64 }
    }
}

/// Runs every case under `args.paths`; returns whether the pass floor (if any) was met.
pub fn run(args: CompatArgs) -> Result<bool, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(crate::sql::ast::STATEMENT_THREAD_STACK_BYTES)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut per_file: BTreeMap<String, Counts> = BTreeMap::new();
    let mut total = Counts::default();
    let mut unreadable = Vec::new();
    let started = Instant::now();
    for path in &args.paths {
        if !path.exists() {
            return Err(format!("{} does not exist", path.display()));
        }
        for file in cases::files(path) {
            let cases = match load(&file) {
                Ok(c) => c,
                Err(e) => {
                    println!("SKIP {e}");
                    unreadable.push(e);
                    continue;
                }
            };
            for case in cases.iter().filter(|c| args.filter.as_ref().is_none_or(|f| c.name.contains(f.as_str()))) {
                let outcome = run_case(case, rt.handle(), Duration::from_millis(args.timeout_ms));
                match &outcome {
                    Outcome::Failed(why) => println!("FAIL {}: {why}", case.name),
                    Outcome::Passed if args.verbose => println!("PASS {}", case.name),
                    Outcome::Unsupported(why) if args.verbose => println!("UNSUPPORTED {}: {why}", case.name),
                    _ => {}
                }
                per_file.entry(case.file.clone()).or_default().add(&outcome);
                total.add(&outcome);
            }
        }
    }
    println!();
    for (file, c) in &per_file {
        println!("{file}: {}/{} passed ({} failed, {} unsupported)", c.passed, c.total - c.unsupported, c.failed, c.unsupported);
    }
    println!(
        "\ntotal: {} cases, {} passed, {} failed, {} unsupported (formats Eddy lacks); {:.1}% of supported cases pass; {} unreadable files; {:.0}s",
        total.total,
        total.passed,
        total.failed,
        total.unsupported,
        total.rate() * 100.0,
        unreadable.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = &args.json {
        let files: serde_json::Map<String, Value> = per_file.iter().map(|(f, c)| (f.clone(), c.json())).collect();
        let mut summary = total.json();
        summary["files"] = Value::Object(files);
        summary["unreadable"] = json!(unreadable);
        std::fs::write(path, serde_json::to_string_pretty(&summary).unwrap_or_default()).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let mut ok = true;
    if let Some(rate) = args.min_pass
        && total.rate() < rate
    {
        println!("below the floor: {:.1}% < {:.1}%", total.rate() * 100.0, rate * 100.0);
        ok = false;
    }
    if let Some(n) = args.min_passed
        && total.passed < n
    {
        println!("below the floor: {} cases passed, at least {n} expected", total.passed);
        ok = false;
    }
    rt.shutdown_timeout(Duration::from_secs(5));
    Ok(ok)
}

/// The topic named in a "Topic 'x' does not exist" error.
fn missing_topic(message: &str) -> Option<String> {
    let rest = message.split("Topic '").nth(1)?;
    let (name, tail) = rest.split_once('\'')?;
    tail.trim_start().starts_with("does not exist").then(|| name.to_string())
}

fn session_for(case: &Case) -> Session {
    let mut s = Session::default();
    for (k, v) in &case.properties {
        s.properties.insert(k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
    }
    s.properties.insert("auto.offset.reset".into(), "earliest".into());
    s
}

/// Runs one case on a fresh engine.
pub fn run_case(case: &Case, handle: &tokio::runtime::Handle, timeout: Duration) -> Outcome {
    if let Some(why) = &case.unsupported {
        return Outcome::Unsupported(why.clone());
    }
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return Outcome::Failed(format!("cannot create a temporary directory: {e}")),
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_in(case, dir.path(), handle, timeout)));
    match result {
        Ok(o) => o,
        Err(_) => Outcome::Failed("the runner panicked on this case".into()),
    }
}

fn run_in(case: &Case, dir: &std::path::Path, handle: &tokio::runtime::Handle, timeout: Duration) -> Outcome {
    let config = TopicConfig { flush: FlushPolicy::Never, ..TopicConfig::default() };
    let log = match Log::open(dir, config.clone()) {
        Ok(l) => Arc::new(l),
        Err(e) => return Outcome::Failed(format!("cannot open a log: {e}")),
    };
    let state = match crate::state::StateDb::open(&dir.join("state")) {
        Ok(s) => Arc::new(s),
        Err(e) => return Outcome::Failed(format!("cannot open state: {e}")),
    };
    let engine = match Engine::open(log.clone(), state, handle.clone(), EngineConfig { default_offset_reset: OffsetReset::Earliest, ..EngineConfig::default() })
    {
        Ok(e) => e,
        Err(e) => return Outcome::Failed(format!("cannot open an engine: {e}")),
    };
    let engine = Arc::new(engine);
    let outcome = if case.responses.is_some() {
        match rest::execute(case, engine.clone(), &log, &config, handle, timeout) {
            Ok(()) => Outcome::Passed,
            Err(why) => Outcome::Failed(why),
        }
    } else {
        execute(case, &engine, &log, &config, timeout)
    };
    engine.shutdown();
    outcome
}

fn execute(case: &Case, engine: &Engine, log: &Log, config: &TopicConfig, timeout: Duration) -> Outcome {
    // Topics the case declares.
    for t in &case.topics {
        if let Some(name) = t.get("name").and_then(Value::as_str) {
            let partitions = t.get("partitions").and_then(Value::as_i64).unwrap_or(1) as i32;
            // A topic declared only for its schemas, which a statement creates with its
            // own PARTITIONS, is left to that statement.
            let quoted = format!("'{}'", name.to_lowercase());
            let created_by_statement =
                t.get("partitions").is_none() && case.statements.iter().any(|s| s.to_lowercase().contains(&quoted) && s.to_uppercase().contains("PARTITIONS"));
            if log.get_topic(name).is_none() && !created_by_statement {
                let _ = log.create_topic(name, partitions.max(1), config.clone());
            }
        }
    }
    if let Err(e) = register_topic_schemas(case, engine) {
        return Outcome::Failed(e);
    }
    let mut session = session_for(case);
    let expected_error = case.expected_error.as_ref().map(|e| e.get("message").and_then(Value::as_str).unwrap_or_default().to_string());
    let expected_kind = case.expected_error.as_ref().and_then(|e| e.get("type")).and_then(Value::as_str);
    // ksqlDB's runner parses the statements as one script, one per line, so positions in
    // its messages count lines from the first statement: blank lines before each keep that.
    let mut lines_before = 0;
    for (i, stmt) in case.statements.iter().enumerate() {
        let own_lines = 1 + stmt.matches('\n').count();
        let stmt = &format!("{}{stmt}", "\n".repeat(lines_before));
        lines_before += own_lines;
        let mut attempt = engine.execute(stmt, &mut session);
        // Source topics are created on demand, as ksqlDB's runner does.
        if let Err(e) = &attempt
            && let Some(topic) = missing_topic(&e.to_string())
            && log.create_topic(&topic, 1, config.clone()).is_ok()
        {
            attempt = engine.execute(stmt, &mut session);
        }
        if let Err(e) = attempt {
            let message = e.to_string();
            return match &expected_error {
                Some(want) if message.contains(want.as_str()) => match expected_kind {
                    Some(kind) if !error_kinds(&e).contains(&kind) => {
                        Outcome::Failed(format!("statement {} failed as a {} ({message}), expected a {kind}", i + 1, error_kinds(&e)[0]))
                    }
                    _ => Outcome::Passed,
                },
                Some(want) => Outcome::Failed(format!("statement {} failed with a different error: {message} (expected one containing {want:?})", i + 1)),
                None => Outcome::Failed(format!("statement {} failed: {message}", i + 1)),
            };
        }
    }
    if let Some(want) = &expected_error
        && case.inputs.is_empty()
    {
        return Outcome::Failed(format!("every statement succeeded; expected an error containing {want:?}"));
    }
    // ksqlDB's runner pipes inputs one at a time through Kafka Streams' test driver, each
    // processed before the next. Eddy's queries read all available records in time
    // order, which is the same unless a record is no later than one written before it to
    // another topic; then the inputs are written one at a time.
    if one_at_a_time(&case.inputs) {
        for input in &case.inputs {
            if let Err(e) = produce_inputs(std::slice::from_ref(input), engine, log, config) {
                return Outcome::Failed(format!("cannot write the inputs: {e}"));
            }
            wait_until_idle(log, timeout);
        }
    } else {
        if let Err(e) = produce_inputs(&case.inputs, engine, log, config) {
            return Outcome::Failed(format!("cannot write the inputs: {e}"));
        }
        wait_until_idle(log, timeout);
    }
    if let Some(want) = &expected_error {
        return Outcome::Failed(format!("expected an error containing {want:?}; the statements ran"));
    }
    match judge::judge(case, engine, log) {
        Ok(()) => Outcome::Passed,
        Err(why) => Outcome::Failed(why),
    }
}

/// The exception classes of ksqlDB's that an error of Eddy's stands for, the most specific
/// first, then each class it extends: ksqlDB's runner checks the expected class with
/// `instanceOf`. A statement that does not parse, or whose `WITH` clause ksqlDB rejects
/// while building it, is a `ParseFailedException`; any other
/// rejected statement a `KsqlStatementException`; both extend `KsqlException`, as does
/// the server's own failure (`KsqlServerException`).
fn error_kinds(e: &EngineError) -> &'static [&'static str] {
    const PARSE: &str = "io.confluent.ksql.parser.exception.ParseFailedException";
    const STATEMENT: &str = "io.confluent.ksql.util.KsqlStatementException";
    const SERVER: &str = "io.confluent.ksql.util.KsqlServerException";
    const KSQL: &str = "io.confluent.ksql.util.KsqlException";
    match e {
        EngineError::Parse { .. } => &[PARSE, STATEMENT, KSQL],
        EngineError::Statement { reason, .. } if matches!(**reason, Rejection::Sql(SqlError::Properties { .. })) => &[PARSE, STATEMENT, KSQL],
        EngineError::Statement { .. } | EngineError::WrongEndpoint { .. } | EngineError::BadRequest(_) | EngineError::NotFound(_) => &[STATEMENT, KSQL],
        EngineError::Internal(_) | EngineError::Standby(_) | EngineError::CommandNotApplied { .. } | EngineError::PeerUnavailable { .. } => &[SERVER, KSQL],
    }
}

/// Registers the schemas a case's topics declare (`keySchema`, `valueSchema`) under
/// `<topic>-key` and `<topic>-value`, as ksqlDB's runner does before the statements run.
pub(super) fn register_topic_schemas(case: &Case, engine: &Engine) -> Result<(), String> {
    use crate::registry::store::{Compatibility, Schema, SchemaReference, SchemaType};
    // ksqlDB's runner uses Confluent's mock registry, which registers without checking
    // compatibility: its cases overwrite sink subjects freely.
    if let Some(registry) = engine.registry() {
        registry.set_compatibility(None, Some(Compatibility::None)).map_err(|e| e.to_string())?;
    }
    for t in &case.topics {
        let Some(name) = t.get("name").and_then(Value::as_str) else { continue };
        let format_of = |k: &str| t.get(k).or_else(|| t.get("format")).and_then(Value::as_str).map(str::to_uppercase);
        for (schema_key, format_key, role) in [("keySchema", "keyFormat", "key"), ("valueSchema", "valueFormat", "value")] {
            let id = t.get(format!("{role}SchemaId")).and_then(Value::as_i64).map(|i| i as i32);
            let Some(schema) = t.get(schema_key).filter(|s| !s.is_null()) else { continue };
            let schema_type = match format_of(format_key).as_deref() {
                Some("AVRO") => SchemaType::Avro,
                Some("PROTOBUF") => SchemaType::Protobuf,
                Some("JSON_SR") => SchemaType::Json,
                _ => continue,
            };
            let text = match schema {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let registry = engine.registry().ok_or("the schema registry is off")?;
            // Referenced schemas go under their own names, with ids out of the way of the
            // ids the case's statements name.
            let mut references = Vec::new();
            for r in t.get(format!("{role}SchemaReferences")).and_then(Value::as_array).into_iter().flatten() {
                let (Some(ref_name), Some(ref_text)) = (r.get("name").and_then(Value::as_str), r.get("schema").and_then(Value::as_str)) else { continue };
                let referenced = Schema { schema_type, schema: ref_text.to_string(), references: Vec::new() };
                let ref_id = registry.read(|s| s.free_id(100_000));
                registry.register_as(ref_name, &referenced, Some(ref_id)).map_err(|e| format!("cannot register the schema {ref_name} of topic {name}: {e}"))?;
                let version = registry.read(|s| s.version(ref_name, "latest", false).map(|(v, _)| v.version)).map_err(|e| e.to_string())?;
                references.push(SchemaReference { name: ref_name.to_string(), subject: ref_name.to_string(), version });
            }
            // The schema itself takes the first free id, as if registered first.
            let id = id.or_else(|| (!references.is_empty()).then(|| registry.read(|s| s.free_id(1))));
            registry
                .register_as(&format!("{name}-{role}"), &Schema { schema_type, schema: text, references }, id)
                .map_err(|e| format!("cannot register the {role} schema of topic {name}: {e}"))?;
        }
    }
    Ok(())
}

/// Whether processing all inputs in time order could differ from processing them in the
/// order written: some record is no later than one written before it to another topic.
fn one_at_a_time(inputs: &[Value]) -> bool {
    let topic = |v: &Value| v.get("topic").and_then(Value::as_str).map(str::to_string);
    let time = |v: &Value| v.get("timestamp").and_then(Value::as_i64).unwrap_or(0);
    inputs.iter().enumerate().any(|(j, later)| inputs[..j].iter().any(|earlier| topic(earlier) != topic(later) && time(later) <= time(earlier)))
}

fn produce_inputs(inputs: &[Value], engine: &Engine, log: &Log, config: &TopicConfig) -> Result<(), String> {
    let sources = engine.catalog().sources();
    for input in inputs {
        let topic = input.get("topic").and_then(Value::as_str).ok_or("an input has no topic")?;
        let source = sources.iter().find(|s| s.topic == topic).map(|s| s.as_ref());
        let t = match log.get_topic(topic) {
            Some(t) => t,
            None => log.create_topic(topic, 1, config.clone()).map_err(|e| e.to_string())?,
        };
        let mut key = codec::encode_key(source, input.get("key").unwrap_or(&Value::Null))?;
        // A windowed record's key ends with its window: (sessions) the end, then the start.
        if let (Some(w), Some(k)) = (input.get("window"), key.as_mut()) {
            let bound = |n: &str| w.get(n).and_then(Value::as_i64).unwrap_or(0);
            if w.get("type").and_then(Value::as_str) == Some("session") {
                k.extend_from_slice(&bound("end").to_be_bytes());
            }
            k.extend_from_slice(&bound("start").to_be_bytes());
        }
        let value = codec::encode_value(source, input.get("value").unwrap_or(&Value::Null))?;
        let ts = input.get("timestamp").and_then(Value::as_i64).unwrap_or(0);
        let headers = codec::encode_headers(input.get("headers"))?;
        let headers: Vec<(&[u8], Option<&[u8]>)> = headers.iter().map(|(k, v)| (k.as_bytes(), v.as_deref())).collect();
        let mut b = BatchBuilder::default();
        b.push(ts, key.as_deref(), value.as_deref(), &headers);
        t.partition(0).map_err(|e| e.to_string())?.append(b.finish()).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Waits until every consumer group (query stage) has committed every partition it reads
/// to its end and nothing moved for a moment, or `timeout` passes.
fn wait_until_idle(log: &Log, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut last = None;
    let mut quiet = 0;
    while Instant::now() < deadline {
        let mut caught_up = true;
        let mut fingerprint: i64 = 0;
        for g in log.offsets().groups() {
            for (topic, partition, committed) in log.offsets().group_offsets(&g) {
                fingerprint = fingerprint.wrapping_add(committed.offset);
                let Some(t) = log.get_topic(&topic) else { continue };
                let Ok(p) = t.partition(partition) else { continue };
                if committed.offset < p.last_stable_offset() {
                    caught_up = false;
                }
            }
        }
        for t in log.topics() {
            for p in t.partitions() {
                fingerprint = fingerprint.wrapping_add(p.end_offset().wrapping_mul(31));
            }
        }
        if caught_up && last == Some(fingerprint) {
            quiet += 1;
            if quiet >= 3 {
                return;
            }
        } else {
            quiet = 0;
        }
        last = Some(fingerprint);
        std::thread::sleep(Duration::from_millis(10));
    }
}
