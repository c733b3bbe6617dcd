//! The RQTT half of `eddy compat`: ksqlDB's REST query-validation tests. A case runs
//! against Eddy's real REST API on an ephemeral port, as ksqlDB's runner drives its own
//! server: the statements before the first `SELECT` go to `/ksql` in one request, the input
//! records are produced, the runner waits until the persistent queries have consumed them,
//! and each `SELECT` goes to `/query` with `Accept: application/json`. The responses are
//! compared with the expected ones partially (only the keys a case lists, `|startsWith`
//! keys by prefix, `{STATEMENT}` replaced by the statement's text); a query's rows in order,
//! or else as a multiset. Output topics and expected errors are judged as for QTT.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::{Case, judge};
use crate::engine::Engine;
use crate::log::{Log, TopicConfig};

/// A REST response: its HTTP status and JSON body (`Value::Null` when the body is not JSON).
struct Reply {
    status: u16,
    body: Value,
}

/// An error response judged against `expectedError`: the message must contain the
/// expected one and, when given, the status must match.
fn error_matches(expected: &Value, reply: &Reply) -> Result<(), String> {
    let message = reply.body.get("message").and_then(Value::as_str).unwrap_or_default();
    if let Some(want) = expected.get("message").and_then(Value::as_str)
        && !message.contains(want)
    {
        return Err(format!("error {:?} (HTTP {}), expected one containing {want:?}", message, reply.status));
    }
    if let Some(want) = expected.get("type").and_then(Value::as_str) {
        // ksqlDB's runner checks the entity's class with `instanceOf`: a statement error
        // is also a generic error message.
        let kinds: &[&str] = match reply.body.get("@type").and_then(Value::as_str) {
            Some("statement_error") => &["io.confluent.ksql.rest.entity.KsqlStatementErrorMessage", "io.confluent.ksql.rest.entity.KsqlErrorMessage"],
            _ => &["io.confluent.ksql.rest.entity.KsqlErrorMessage"],
        };
        if !kinds.contains(&want) {
            return Err(format!("error {message:?} (HTTP {}) is a {}, expected a {want}", reply.status, kinds[0]));
        }
    }
    if let Some(want) = expected.get("status").and_then(Value::as_u64)
        && u64::from(reply.status) != want
    {
        return Err(format!("error HTTP {} ({message:?}), expected HTTP {want}", reply.status));
    }
    Ok(())
}

/// Topics the statements read that the case's producer would have created: the
/// `KAFKA_TOPIC` of each `CREATE STREAM/TABLE` that neither selects nor sets `PARTITIONS`.
fn source_topics(statements: &[String]) -> Vec<String> {
    let Ok(re) = regex::Regex::new(r"(?i)kafka_topic\s*=\s*'([^']+)'") else { return Vec::new() };
    let mut out = Vec::new();
    for s in statements {
        let upper = s.to_uppercase();
        if !upper.trim_start().starts_with("CREATE") || upper.contains(" AS SELECT") || upper.contains("PARTITIONS") {
            continue;
        }
        if let Some(c) = re.captures(s) {
            out.push(c[1].to_string());
        }
    }
    out
}

/// Runs one RQTT case against `engine` served over HTTP.
pub fn execute(case: &Case, engine: Arc<Engine>, log: &Log, config: &TopicConfig, handle: &tokio::runtime::Handle, timeout: Duration) -> Result<(), String> {
    for name in source_topics(&case.statements) {
        if log.get_topic(&name).is_none() {
            let _ = log.create_topic(&name, 1, config.clone());
        }
    }
    let listener = handle.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).map_err(|e| format!("cannot listen on an ephemeral port: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let guard = crate::server::guard::HttpGuard::new(crate::server::HttpConfig::default().guard, addr);
    let app = crate::server::router(crate::server::AppState::new(engine.clone(), guard));
    let server = handle.spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });
    let client = Client { http: reqwest::Client::new(), base: format!("http://{addr}"), properties: properties(case), timeout };
    let result = run(case, &engine, log, config, handle, &client, timeout);
    let _ = stop.send(());
    // Push queries still streaming would hold the server open; it is dropped with the runtime task.
    server.abort();
    result
}

fn properties(case: &Case) -> Map<String, Value> {
    let mut p = case.properties.clone();
    p.entry("auto.offset.reset").or_insert(json!("earliest"));
    p
}

struct Client {
    http: reqwest::Client,
    base: String,
    properties: Map<String, Value>,
    timeout: Duration,
}

impl Client {
    async fn post(&self, path: &str, sql: &str) -> Result<Reply, String> {
        let body = json!({"ksql": sql, "streamsProperties": self.properties});
        let send = async {
            let resp = self
                .http
                .post(format!("{}{path}", self.base))
                .header("Accept", "application/json")
                .json(&body)
                .send()
                .await
                .map_err(|e| format!("{path} request failed: {e}"))?;
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.map_err(|e| format!("{path} response could not be read: {e}"))?;
            Ok::<_, String>(Reply { status, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) })
        };
        tokio::time::timeout(self.timeout, send).await.map_err(|_| format!("{path} did not answer within {:?}: {sql}", self.timeout))?
    }
}

fn run(
    case: &Case,
    engine: &Engine,
    log: &Log,
    config: &TopicConfig,
    handle: &tokio::runtime::Handle,
    client: &Client,
    timeout: Duration,
) -> Result<(), String> {
    let expected_error = case.expected_error.as_ref();
    let empty = Vec::new();
    let expected_responses = case.responses.as_ref().unwrap_or(&empty);
    let first_query = case.statements.iter().position(|s| s.starts_with("SELECT ")).unwrap_or(case.statements.len());
    if case.statements[first_query..].iter().any(|s| !s.starts_with("SELECT ")) {
        return Err("invalid case: a statement follows the queries".into());
    }
    let (admin, queries) = case.statements.split_at(first_query);

    super::register_topic_schemas(case, engine)?;
    let mut actual: Vec<Value> = Vec::new();
    if !admin.is_empty() {
        let reply = handle.block_on(client.post("/ksql", &admin.join("\n")))?;
        if reply.status != 200 {
            return match expected_error {
                Some(e) => error_matches(e, &reply),
                None => Err(format!("the statements failed: HTTP {} {}", reply.status, reply.body)),
            };
        }
        actual.extend(reply.body.as_array().cloned().unwrap_or_default());
    }
    super::produce_inputs(&case.inputs, engine, log, config).map_err(|e| format!("cannot write the inputs: {e}"))?;
    if (expected_error.is_none() && expected_responses.len() > admin.len()) || !case.outputs.is_empty() {
        super::wait_until_idle(log, timeout);
    }
    let mut answered = 0;
    for sql in queries {
        let reply = handle.block_on(client.post("/query", sql))?;
        if reply.status != 200 {
            match expected_error {
                Some(e) => error_matches(e, &reply)?,
                None => return Err(format!("query failed: HTTP {} {}: {sql}", reply.status, reply.body)),
            }
            continue;
        }
        answered += 1;
        actual.push(json!({"query": reply.body}));
    }
    if let Some(e) = expected_error
        && (answered > 0 || queries.is_empty())
    {
        return Err(format!("expected an error like {e}; every statement succeeded"));
    }
    judge::judge(case, engine, log)?;
    verify_responses(&actual, expected_responses, &case.statements, admin.len(), case.verify_order)
}

fn verify_responses(actual: &[Value], expected: &[Value], statements: &[String], admin: usize, ordered: bool) -> Result<(), String> {
    if actual.len() < expected.len() {
        return Err(format!("{} responses, at least {} expected", actual.len(), expected.len()));
    }
    for (idx, want) in expected.iter().enumerate() {
        let Some((kind, payload)) = want.as_object().and_then(|o| o.iter().next()) else {
            return Err(format!("invalid case: response {idx} is not an object of one entry"));
        };
        let statement = statements.get(idx).map(String::as_str).unwrap_or_default();
        let path = format!("responses[{idx}]->{kind}");
        match kind.as_str() {
            "admin" => {
                if idx >= admin && actual[idx].get("query").is_some() {
                    return Err(format!("{path}: a query response where an admin response was expected"));
                }
                match_fields(&actual[idx], payload, statement, &path)?;
            }
            "query" => {
                let rows = actual[idx]
                    .get("query")
                    .and_then(Value::as_array)
                    .ok_or_else(|| format!("{path}: an admin response where a query response was expected: {}", actual[idx]))?;
                let want_rows = payload.as_array().ok_or_else(|| format!("invalid case: {path} is not an array"))?;
                match_rows(rows, want_rows, statement, &path, ordered)?;
            }
            other => return Err(format!("invalid case: unknown response kind {other:?}")),
        }
    }
    Ok(())
}

/// A query's rows: the same count, each expected object matching its row in order when
/// the case sets `outputConditions.verifyOrder`, or else a distinct row (a multiset), as
/// ksqlDB's runner checks them.
fn match_rows(rows: &[Value], want: &[Value], statement: &str, path: &str, ordered: bool) -> Result<(), String> {
    if rows.len() != want.len() {
        let show = |v: &[Value]| v.iter().map(Value::to_string).collect::<Vec<_>>().join("\n\t");
        return Err(format!("{path}: {} rows, {} expected\nexpected:\n\t{}\ngot:\n\t{}", rows.len(), want.len(), show(want), show(rows)));
    }
    if ordered {
        return want.iter().zip(rows).enumerate().try_for_each(|(i, (w, r))| match_fields(r, w, statement, &format!("{path}[{i}]")));
    }
    let mut used = vec![false; rows.len()];
    for (i, w) in want.iter().enumerate() {
        let hit = rows.iter().enumerate().position(|(j, r)| !used[j] && match_fields(r, w, statement, path).is_ok());
        match hit {
            Some(j) => used[j] = true,
            None => {
                return Err(format!(
                    "{path}[{i}]: no row matches {w} (rows, in any order: {})",
                    rows.iter().map(Value::to_string).collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// Every key of `want` is in `actual` with an equal value (objects recursively).
fn match_fields(actual: &Value, want: &Value, statement: &str, path: &str) -> Result<(), String> {
    let Some(want) = want.as_object() else {
        return if same_value(actual, want, statement) { Ok(()) } else { Err(format!("{path}: {actual} where {want} was expected")) };
    };
    for (key, expected) in want {
        let (name, starts_with) = match key.split_once('|') {
            Some((n, op)) => (n, op.eq_ignore_ascii_case("startsWith")),
            None => (key.as_str(), false),
        };
        let here = format!("{path}->{name}");
        let got = actual.get(name).ok_or_else(|| format!("{here} missing in {actual}"))?;
        if expected.is_object() {
            match_fields(got, expected, statement, &here)?;
        } else if starts_with {
            let (Some(g), Some(e)) = (got.as_str(), expected.as_str()) else { return Err(format!("{here}: {got} does not start with {expected}")) };
            if !g.starts_with(&e.replace("{STATEMENT}", statement)) {
                return Err(format!("{here}: {g:?} does not start with {e:?}"));
            }
        } else if !same_value(got, expected, statement) {
            return Err(format!("{here}: {got} where {expected} was expected"));
        }
    }
    Ok(())
}

/// Equal JSON values; numbers by value, `{STATEMENT}` in an expected string replaced.
fn same_value(actual: &Value, expected: &Value, statement: &str) -> bool {
    match (actual, expected) {
        (Value::Number(a), Value::Number(e)) => match (a.as_i64(), e.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => a.as_f64() == e.as_f64(),
        },
        (Value::String(a), Value::String(e)) => *a == e.replace("{STATEMENT}", statement),
        (Value::Array(a), Value::Array(e)) => a.len() == e.len() && a.iter().zip(e).all(|(x, y)| same_value(x, y, statement)),
        (Value::Object(a), Value::Object(e)) => a.len() == e.len() && e.iter().all(|(k, v)| a.get(k).is_some_and(|x| same_value(x, v, statement))),
        _ => actual == expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_match_on_the_listed_keys_only() {
        let actual = json!({"@type": "currentStatus", "statementText": "CREATE STREAM S;", "commandId": "x"});
        assert!(match_fields(&actual, &json!({"@type": "currentStatus"}), "", "r").is_ok());
        assert!(match_fields(&actual, &json!({"statementText": "{STATEMENT}"}), "CREATE STREAM S;", "r").is_ok());
        assert!(match_fields(&actual, &json!({"statementText|startsWith": "CREATE"}), "", "r").is_ok());
        assert!(match_fields(&actual, &json!({"@type": "sourceDescription"}), "", "r").is_err());
        assert!(match_fields(&actual, &json!({"missing": 1}), "", "r").is_err());
    }

    #[test]
    fn query_rows_match_in_any_order_unless_the_case_verifies_order() {
        let rows = vec![json!({"header": {"schema": "`A` INTEGER"}}), json!({"row": {"columns": [2]}}), json!({"row": {"columns": [1]}})];
        let want = vec![json!({"header": {"schema": "`A` INTEGER"}}), json!({"row": {"columns": [1]}}), json!({"row": {"columns": [2]}})];
        assert!(match_rows(&rows, &want, "", "q", false).is_ok());
        assert!(match_rows(&rows, &want, "", "q", true).is_err());
        assert!(match_rows(&rows, &rows, "", "q", true).is_ok());
        assert!(match_rows(&rows[..2], &want[..2], "", "q", false).is_err());
        assert!(match_rows(&rows, &want[..2], "", "q", false).is_err());
        assert!(match_rows(&rows, &[want[0].clone(), want[1].clone(), want[1].clone()], "", "q", false).is_err());
    }

    #[test]
    fn source_topics_are_those_of_plain_create_statements() {
        let s = vec![
            "CREATE STREAM A (K INT KEY) WITH (kafka_topic='a', value_format='JSON');".to_string(),
            "CREATE STREAM B WITH (kafka_topic='b') AS SELECT * FROM A;".to_string(),
            "CREATE TABLE C (K INT PRIMARY KEY) WITH (kafka_topic='c', partitions=3, value_format='JSON');".to_string(),
        ];
        assert_eq!(source_topics(&s), vec!["a".to_string()]);
    }
}
