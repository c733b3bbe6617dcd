//! `eddy compat` as a user runs it: on a directory of QTT files it expands formats, runs
//! each case on a fresh engine (AVRO and PROTOBUF ones with the built-in registry), judges
//! outputs and expected errors, reports a malformed file by name and skips it, writes the JSON
//! summary, and exits non-zero only below a requested floor.

mod common;

use std::process::Command;

use serde_json::Value;

const CASES: &str = r#"{
  // Comments are allowed, as in ksqlDB's files.
  "tests": [
    {
      "name": "filter",
      "format": ["JSON", "AVRO", "PROTOBUF"],
      "statements": [
        "CREATE STREAM INPUT (ID BIGINT KEY, NAME VARCHAR, N INT) WITH (kafka_topic='input', value_format='{FORMAT}');",
        "CREATE STREAM OUTPUT AS SELECT ID, NAME FROM INPUT WHERE N > 1;"
      ],
      "inputs": [
        {"topic": "input", "key": 1, "value": {"NAME": "a", "N": 1}, "timestamp": 10},
        {"topic": "input", "key": 2, "value": {"NAME": "b", "N": 2}, "timestamp": 20}
      ],
      "outputs": [{"topic": "OUTPUT", "key": 2, "value": {"NAME": "b"}, "timestamp": 20}],
      "post": {"sources": [{"name": "OUTPUT", "type": "stream", "schema": "ID BIGINT KEY, NAME STRING"}]}
    },
    {
      "name": "wrong expectation",
      "statements": [
        "CREATE STREAM INPUT (ID BIGINT KEY, N INT) WITH (kafka_topic='input', value_format='JSON');",
        "CREATE STREAM OUTPUT AS SELECT ID, N * 2 AS M FROM INPUT;"
      ],
      "inputs": [{"topic": "input", "key": 1, "value": {"N": 3}}],
      "outputs": [{"topic": "OUTPUT", "key": 1, "value": {"M": 7}}]
    },
    {
      "name": "expected error",
      "statements": ["CREATE STREAM OUTPUT AS SELECT * FROM NOPE;"],
      "expectedException": {"type": "io.confluent.ksql.util.KsqlStatementException", "message": "NOPE does not exist"}
    }
  ]
}"#;

/// RQTT: statements to /ksql, inputs produced, each SELECT to /query, responses matched.
const REST_CASES: &str = r#"{
  "tests": [
    {
      "name": "pull and push",
      "statements": [
        "CREATE STREAM INPUT (K STRING KEY, V INT) WITH (kafka_topic='input', value_format='JSON');",
        "CREATE TABLE COUNTS AS SELECT K, COUNT(*) AS N FROM INPUT GROUP BY K;",
        "SELECT * FROM COUNTS WHERE K = 'a';",
        "SELECT K, V FROM INPUT EMIT CHANGES LIMIT 2;"
      ],
      "inputs": [{"topic": "input", "key": "a", "value": {"V": 1}}, {"topic": "input", "key": "b", "value": {"V": 2}}],
      "responses": [
        {"admin": {"@type": "currentStatus"}},
        {"admin": {"@type": "currentStatus"}},
        {"query": [{"header": {"schema": "`K` STRING KEY, `N` BIGINT"}}, {"row": {"columns": ["a", 1]}}]},
        {"query": [{"header": {"schema": "`K` STRING, `V` INTEGER"}},
          {"row": {"columns": ["b", 2]}}, {"row": {"columns": ["a", 1]}}, {"finalMessage": "Limit Reached"}]}
      ]
    },
    {
      "name": "wrong row",
      "statements": ["CREATE TABLE T (K STRING PRIMARY KEY, V INT) WITH (kafka_topic='t', value_format='JSON');", "SELECT * FROM T;"],
      "inputs": [{"topic": "t", "key": "a", "value": {"V": 1}}],
      "responses": [{"admin": {"@type": "currentStatus"}}, {"query": [{"header": {"schema": "`K` STRING KEY, `V` INTEGER"}}, {"row": {"columns": ["a", 2]}}]}]
    },
    {
      "name": "expected error",
      "statements": ["CREATE STREAM S (K STRING KEY, V INT) WITH (kafka_topic='s', value_format='JSON');", "SELECT * FROM S GROUP BY K;"],
      "expectedError": {"type": "io.confluent.ksql.rest.entity.KsqlStatementErrorMessage",
        "message": "Pull queries don't support GROUP BY clauses.", "status": 400}
    }
  ]
}"#;

fn run(dir: &std::path::Path, extra: &[&str]) -> (i32, String, Value) {
    let summary = dir.join("summary.json");
    let out = Command::new(common::eddy_bin()).arg("compat").arg(dir.join("qtt")).arg("--json").arg(&summary).args(extra).output().expect("run eddy compat");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap_or_default()).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), stdout, json)
}

#[test]
fn compat_runner_judges_cases_reports_failures_and_honours_the_floor() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("qtt")).unwrap();
    std::fs::write(dir.path().join("qtt/cases.json"), CASES).unwrap();
    std::fs::write(dir.path().join("qtt/broken.json"), "{\"tests\": [").unwrap();

    let (code, stdout, summary) = run(dir.path(), &[]);
    assert_eq!(code, 0, "without a floor the runner succeeds whatever the pass rate:\n{stdout}");
    assert_eq!(
        (summary["total"].as_u64(), summary["passed"].as_u64(), summary["failed"].as_u64(), summary["unsupported"].as_u64()),
        (Some(5), Some(4), Some(1), Some(0)),
        "{summary}\n{stdout}"
    );
    assert_eq!(summary["files"]["qtt/cases.json"]["passed"], 4, "{summary}");
    assert!(stdout.contains("FAIL cases.json - wrong expectation: topic OUTPUT record 0 (key 1): value {\"M\":7} expected, {\"M\":6} written"), "{stdout}");
    assert!(stdout.contains("SKIP") && stdout.contains("broken.json"), "a malformed file is named: {stdout}");
    assert_eq!(summary["unreadable"].as_array().map(Vec::len), Some(1));

    let (code, stdout, _) = run(dir.path(), &["--min-pass", "0.9"]);
    assert_ne!(code, 0, "4 of 5 cases is below a 90% floor:\n{stdout}");
    let (code, _, _) = run(dir.path(), &["--min-passed", "2"]);
    assert_eq!(code, 0);
}

#[test]
fn compat_runner_drives_rest_cases_through_the_rest_api() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("qtt")).unwrap();
    std::fs::write(dir.path().join("qtt/rest.json"), REST_CASES).unwrap();
    let (code, stdout, summary) = run(dir.path(), &[]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!((summary["passed"].as_u64(), summary["failed"].as_u64()), (Some(2), Some(1)), "{summary}\n{stdout}");
    assert!(
        stdout.contains("FAIL rest.json - wrong row: responses[1]->query[1]: no row matches {\"row\":{\"columns\":[\"a\",2]}}"),
        "the failing response is named: {stdout}"
    );
}
