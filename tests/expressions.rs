//! Expressions as ksqlDB's reference documents them, reached over REST: `STRUCT->*` in
//! SELECT lists (persistent, push and pull queries), and implicit widening of numbers and
//! bare NULLs when a function call is resolved.

mod common;

use common::TestServer;
use serde_json::{Value, json};

#[tokio::test]
async fn struct_star_lists_every_field_of_a_struct_as_its_own_column() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM people (id INT KEY, addr STRUCT<street STRING, zip INT>, n INT) WITH (kafka_topic='people', value_format='JSON', partitions=1);")
        .await;
    s.ksql_ok("CREATE STREAM flat AS SELECT id, addr->* FROM people;").await;
    s.ksql_ok("CREATE TABLE last_addr AS SELECT id, LATEST_BY_OFFSET(addr) AS a FROM people GROUP BY id;").await;
    s.ksql_ok("INSERT INTO people (id, addr, n) VALUES (1, STRUCT(street := 'Main', zip := 123), 5);").await;
    let rows = s.wait_rows("SELECT * FROM flat EMIT CHANGES LIMIT 1;", 1).await;
    assert_eq!(rows, vec![vec![json!(1), json!("Main"), json!(123)]]);
    let described = s.ksql_ok("DESCRIBE flat;").await;
    let names: Vec<&str> = described[0]["sourceDescription"]["fields"].as_array().expect("fields").iter().filter_map(|f| f["name"].as_str()).collect();
    assert_eq!(names, vec!["ID", "STREET", "ZIP"]);
    let pushed = s.wait_rows("SELECT addr->*, n FROM people EMIT CHANGES LIMIT 1;", 1).await;
    assert_eq!(pushed, vec![vec![json!("Main"), json!(123), json!(5)]]);
    let pulled = s.wait_rows("SELECT a->* FROM last_addr WHERE id = 1;", 1).await;
    assert_eq!(pulled, vec![vec![json!("Main"), json!(123)]]);
    let (status, body) = s.post("/query", json!({"ksql": "SELECT n->* FROM people EMIT CHANGES;"})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("N->* needs a STRUCT, but N is INTEGER"), "{body}");
}

#[tokio::test]
async fn calls_widen_numbers_and_type_bare_nulls_to_fit_a_function() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM nums (id INT KEY, i INT, d DECIMAL(4, 2)) WITH (kafka_topic='nums', value_format='JSON', partitions=1);").await;
    s.ksql_ok("INSERT INTO nums (id, i, d) VALUES (1, 4, 2.50);").await;
    let rows = s
        .wait_rows(
            "SELECT JSON_ARRAY_CONTAINS('[2.5]', d), SIN(i), MASK('Ab1', NULL, NULL, NULL, '#'), MASK_LEFT('Ab1', 3, '*', NULL) FROM nums \
                EMIT CHANGES LIMIT 1;",
            1,
        )
        .await;
    assert_eq!(rows[0][0], json!(true), "a DECIMAL widens to the DOUBLE JSON_ARRAY_CONTAINS takes");
    assert!((rows[0][1].as_f64().expect("sin") - 4f64.sin()).abs() < 1e-12);
    assert_eq!(rows[0][2], json!("Ab1"), "NULL mask characters keep every class");
    assert_eq!(rows[0][3], json!("*bn"));
    assert_ne!(rows[0][3], Value::Null);
}

#[tokio::test]
async fn explain_shows_expressions_as_the_statement_wrote_them() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM src (id INT KEY, x INT, name STRING) WITH (kafka_topic='src', value_format='JSON', partitions=1);").await;
    let created = s.ksql_ok("CREATE STREAM derived AS SELECT id, x + CAST(10 AS BIGINT) AS y, UCASE(name) AS n FROM src WHERE x > 1;").await;
    let id = created[0]["commandStatus"]["queryId"].as_str().expect("query id").to_string();
    let explained = s.ksql_ok(&format!("EXPLAIN {id};")).await;
    let plan = explained[0]["queryDescription"]["executionPlan"].as_str().expect("plan").to_string();
    assert!(plan.contains("(X + CAST(10 AS BIGINT)) AS Y") && plan.contains("UCASE(NAME) AS N") && plan.contains("Condition: (X > 1)"), "{plan}");
    assert!(!plan.contains("Int32(") && !plan.contains("upper("), "no DataFusion terms: {plan}");
}

#[tokio::test]
async fn like_treats_a_backslash_as_a_character_and_escapes_only_with_its_escape_character() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM texts (id INT KEY, val STRING, pattern STRING) WITH (kafka_topic='texts', value_format='JSON', partitions=1);").await;
    s.ksql_ok("INSERT INTO texts (id, val, pattern) VALUES (1, '50% off\\now', '50!%%');").await;
    let rows = s
        .wait_rows(
            "SELECT val LIKE '%\\now', val LIKE '50!% off%' ESCAPE '!', val LIKE '50!%x%' ESCAPE '!', val LIKE pattern ESCAPE '!', \
                val LIKE pattern, val LIKE '5_%' FROM texts EMIT CHANGES LIMIT 1;",
            1,
        )
        .await;
    assert_eq!(
        rows[0],
        vec![json!(true), json!(true), json!(false), json!(true), json!(false), json!(true)],
        "a backslash is itself; !% is a percent sign, from a literal or a column; without ESCAPE ! is itself"
    );
}

#[tokio::test]
async fn number_literals_out_of_range_are_refused_and_doubles_read_as_java_writes_them() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM nums_d (id INT KEY, x DOUBLE) WITH (kafka_topic='nums_d', value_format='DELIMITED', partitions=1);").await;
    for (literal, expected) in [
        ("9223372036854775808", "Invalid numeric literal: 9223372036854775808"),
        ("-9223372036854775809", "Invalid numeric literal: -9223372036854775809"),
        ("1.7976931348623159E308", "Number overflows DOUBLE: 1.7976931348623159E308"),
        ("-1.7976931348623160E308", "Number overflows DOUBLE: -1.7976931348623160E308"),
    ] {
        let (status, body) = s.ksql(&format!("CREATE STREAM bad AS SELECT id, {literal} AS n FROM nums_d;")).await;
        assert_eq!(status, 400, "{literal}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected) && message.contains("Failed to prepare statement: line 1:"), "{literal}: {message}");
    }
    // The smallest BIGINT is one literal, not the negation of an overflowing one.
    s.ksql_ok("CREATE STREAM doubles AS SELECT id, -9223372036854775808 AS least, x, CAST(x AS STRING) AS text FROM nums_d;").await;
    s.ksql_ok("INSERT INTO nums_d (id, x) VALUES (1, 1e10);").await;
    let out = s.wait_rows("SELECT * FROM doubles EMIT CHANGES LIMIT 1;", 1).await;
    assert_eq!(out[0][1], json!(i64::MIN));
    assert_eq!(out[0][3], json!("1.0E10"), "CAST of a DOUBLE to STRING is Java's Double.toString");
    s.wait_until("the DELIMITED row", async |s| !s.read_topic("DOUBLES").await.is_empty()).await;
    let written = s.read_topic("DOUBLES").await;
    // (A first field starting with a minus is quoted, as commons-csv does.)
    assert_eq!(written[0].1["value"], json!("\"-9223372036854775808\",1.0E10,1.0E10"), "DELIMITED writes doubles as Java does");
}

#[tokio::test]
async fn an_empty_in_list_and_a_case_of_only_nulls_are_refused() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM vals_c (id INT KEY, v DOUBLE) WITH (kafka_topic='vals_c', value_format='JSON', partitions=1);").await;
    for (sql, expected) in [
        ("CREATE STREAM bad AS SELECT * FROM vals_c WHERE id IN ( );", "Syntax Error"),
        (
            "CREATE STREAM bad AS SELECT id, CASE WHEN v < 2.0 THEN NULL ELSE NULL END AS c FROM vals_c;",
            "Invalid Case expression. All case branches have NULL type",
        ),
    ] {
        let (status, body) = s.ksql(sql).await;
        assert_eq!(status, 400, "{sql}: {body}");
        assert!(body["message"].as_str().unwrap_or_default().contains(expected), "{sql}: {body}");
    }
    // A typed NULL in one branch gives the CASE its type.
    s.ksql_ok("CREATE STREAM good AS SELECT id, CASE WHEN v < 2.0 THEN CAST(NULL AS STRING) ELSE NULL END AS c FROM vals_c;").await;
}
