//! ksqlDB's function library as users reach it over REST: array, map, string, date-time,
//! JSON and URL functions, the lambda functions, IN lists typed like ksqlDB, and the
//! errors for arguments a function does not accept.

mod common;

use common::TestServer;
use serde_json::{Value, json};

/// Runs `select` over one inserted row of `input` and returns its columns.
async fn one_row(s: &TestServer, select: &str) -> Vec<Value> {
    let rows = s.wait_rows(&format!("{select} FROM input WHERE id = 1 EMIT CHANGES LIMIT 1;"), 1).await;
    rows.into_iter().next().expect("one row")
}

async fn input(s: &TestServer) {
    s.ksql_ok(
        "CREATE STREAM input (id INT KEY, nums ARRAY<INT>, m MAP<STRING, INT>, s STRING, doc STRING, url STRING, d DATE, ts TIMESTAMP) \
         WITH (kafka_topic='input', format='JSON', partitions=1);",
    )
    .await;
    s.produce(
        "input",
        vec![json!({"key": 1, "value": {
            "NUMS": [3, null, 1, 3], "M": {"a": 1, "bb": 2}, "S": "steven zhang", "DOC": "{\"a\": {\"b\": [10, 20]}}",
            "URL": "http://test@confluent.io:8080/nested/path?one=a&two=b#frag", "D": 10, "TS": 1_526_075_913_000i64
        }})],
    )
    .await;
}

#[tokio::test]
async fn array_and_map_functions_follow_ksqldb_null_handling() {
    let s = TestServer::start();
    input(&s).await;
    let row = one_row(
        &s,
        "SELECT ARRAY_SORT(nums), ARRAY_SORT(nums, 'DESC'), ARRAY_MAX(nums), ARRAY_DISTINCT(nums), ARRAY_REMOVE(nums, 3), \
         ARRAY_UNION(nums, ARRAY[7]), ARRAY_INTERSECT(nums, ARRAY[1, 3]), ARRAY_EXCEPT(nums, ARRAY[3]), ARRAY_CONTAINS(nums, 1), \
         ARRAY_JOIN(nums, '|'), SLICE(nums, 2, 3), ARRAY_SORT(MAP_KEYS(m)), MAP_UNION(m, MAP('c' := 3))['c'], AS_MAP(ARRAY['k'], ARRAY[5])['k']",
    )
    .await;
    assert_eq!(
        row,
        vec![
            json!([1, 3, 3, null]),
            json!([3, 3, 1, null]),
            json!(3),
            json!([3, null, 1]),
            json!([null, 1]),
            json!([3, null, 1, 7]),
            json!([3, 1]),
            json!([null, 1]),
            json!(true),
            json!("3|null|1|3"),
            json!([null, 1]),
            json!(["a", "bb"]),
            json!(3),
            json!(5),
        ]
    );
}

#[tokio::test]
async fn lambdas_transform_filter_and_reduce_arrays_and_maps() {
    let s = TestServer::start();
    input(&s).await;
    let row = one_row(
        &s,
        "SELECT TRANSFORM(nums, x => x * 10), FILTER(nums, x => x > 1), REDUCE(nums, 0, (acc, x) => acc + COALESCE(x, 100)), \
         TRANSFORM(m, (k, v) => UCASE(k), (k, v) => v + id), FILTER(m, (k, v) => LEN(k) > 1), REDUCE(m, '', (acc, k, v) => CONCAT(acc, k))",
    )
    .await;
    assert_eq!(row[0], json!([30, null, 10, 30]));
    assert_eq!(row[1], json!([3, 3]));
    assert_eq!(row[2], json!(107));
    assert_eq!(row[3], json!({"A": 2, "BB": 3}), "the body may use the row's columns (id)");
    assert_eq!(row[4], json!({"bb": 2}));
    assert_eq!(row[5], json!("abb"));
    let (status, body) = s.ksql("CREATE STREAM bad AS SELECT FILTER(nums, x => x + 1) FROM input;").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("FILTER's lambda must return a BOOLEAN"), "{body}");
}

#[tokio::test]
async fn string_json_url_and_time_functions() {
    let s = TestServer::start();
    input(&s).await;
    let row = one_row(
        &s,
        "SELECT REGEXP_EXTRACT('(.*) (.*)', s, 2), REGEXP_EXTRACT_ALL('[a-z]+', s), CHR(75), ELT(2, 'a', 'b'), FIELD('b', 'a', 'b'), \
         EXTRACTJSONFIELD(doc, '$.a.b[1]'), JSON_ARRAY_LENGTH(EXTRACTJSONFIELD(doc, '$.a.b')), TO_JSON_STRING(nums), \
         URL_EXTRACT_HOST(url), URL_EXTRACT_PORT(url), URL_EXTRACT_PATH(url), URL_EXTRACT_PARAMETER(url, 'two'), URL_ENCODE_PARAM('a b&c'), \
         FORMAT_TIMESTAMP(ts, 'yyyy-MM-dd HH:mm:ss'), FORMAT_TIMESTAMP(ts, 'HH:mm zzz', 'America/Los_Angeles'), \
         UNIX_DATE(DATEADD(DAYS, 5, d)), TIMESTAMPADD(SECONDS, 2, ts), PARSE_TIMESTAMP('2018-05-11T21:58:33Z', 'yyyy-MM-dd''T''HH:mm:ssX')",
    )
    .await;
    assert_eq!(
        row,
        vec![
            json!("zhang"),
            json!(["steven", "zhang"]),
            json!("K"),
            json!("b"),
            json!(2),
            json!("20"),
            json!(2),
            json!("[3,null,1,3]"),
            json!("confluent.io"),
            json!(8080),
            json!("/nested/path"),
            json!("b"),
            json!("a+b%26c"),
            json!("2018-05-11 21:58:33"),
            json!("14:58 PDT"),
            json!(15),
            json!(1_526_075_915_000i64),
            json!(1_526_075_913_000i64),
        ]
    );
}

#[tokio::test]
async fn in_lists_read_literals_as_the_left_type_and_refuse_incomparable_values() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM nums (v INT, b BOOLEAN) WITH (kafka_topic='nums', value_format='JSON', partitions=1);").await;
    s.ksql_ok("CREATE STREAM picked AS SELECT v, v IN (1, '4.000', 5.10) AS listed, b IN ('y') AS yes FROM nums WHERE v IN (1, 2.0, '4');").await;
    for (v, b) in [(1, true), (2, false), (3, true), (4, false), (5, true)] {
        s.ksql_ok(&format!("INSERT INTO nums (v, b) VALUES ({v}, {b});")).await;
    }
    let rows = s.wait_rows("SELECT * FROM picked EMIT CHANGES LIMIT 3;", 3).await;
    assert_eq!(rows, vec![vec![json!(1), json!(true), json!(true)], vec![json!(2), json!(false), json!(false)], vec![json!(4), json!(true), json!(false)]]);
    let (status, body) = s.ksql("CREATE STREAM bad AS SELECT * FROM nums WHERE v IN (10, '10 - not a number');").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("invalid input syntax for type INTEGER: \"10 - not a number\""), "{body}");
    let (status, body) = s.ksql("CREATE STREAM bad AS SELECT * FROM nums WHERE v IN (10, b);").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("operator does not exist: INTEGER = BOOLEAN (B)"), "{body}");
}

#[tokio::test]
async fn functions_refuse_arguments_they_do_not_accept_with_ksqldb_wording() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM t (id INT KEY, d DATE, s STRING, b BOOLEAN, big BIGINT) WITH (kafka_topic='t', value_format='JSON', partitions=1);").await;
    for (sql, expected) in [
        ("SELECT DATEADD(d, 5, d) FROM t EMIT CHANGES;", "Function 'dateadd' does not accept parameters (DATE, INTEGER, DATE)."),
        ("SELECT ARRAY_MAX(id) FROM t EMIT CHANGES;", "Function 'array_max' does not accept parameters (INTEGER)."),
        // A number is not a string, nor a string a number: no implicit cast between them.
        ("SELECT LEN(id) FROM t EMIT CHANGES;", "Function 'len' does not accept parameters (INTEGER)."),
        ("SELECT UCASE(b) FROM t EMIT CHANGES;", "Function 'ucase' does not accept parameters (BOOLEAN)."),
        ("SELECT CONCAT(s, id) FROM t EMIT CHANGES;", "Function 'concat' does not accept parameters (STRING, INTEGER)."),
        ("SELECT REVERSE(d) FROM t EMIT CHANGES;", "Function 'reverse' does not accept parameters (DATE)."),
        ("SELECT ABS(s) FROM t EMIT CHANGES;", "Function 'abs' does not accept parameters (STRING)."),
        ("SELECT SUBSTRING(s, big) FROM t EMIT CHANGES;", "Function 'substring' does not accept parameters (STRING, BIGINT)."),
        ("SELECT UNIX_TIMESTAMP(s) FROM t EMIT CHANGES;", "Function 'unix_timestamp' does not accept parameters (STRING)."),
        ("SELECT CHR(b) FROM t EMIT CHANGES;", "Function 'chr' does not accept parameters (BOOLEAN)."),
        ("SELECT ELT(s, s) FROM t EMIT CHANGES;", "Function 'elt' does not accept parameters (STRING, STRING)."),
        ("SELECT REGEXP_EXTRACT(id, s) FROM t EMIT CHANGES;", "Function 'regexp_extract' does not accept parameters (INTEGER, STRING)."),
        ("SELECT REGEXP_SPLIT_TO_ARRAY(s, id) FROM t EMIT CHANGES;", "Function 'regexp_split_to_array' does not accept parameters (STRING, INTEGER)."),
        // A bare NULL that fits two signatures alike is ambiguous, as in ksqlDB.
        ("SELECT LEN(NULL) FROM t EMIT CHANGES;", "Function 'len' cannot be resolved due to ambiguous method parameters (null)."),
        ("SELECT SUBSTRING(NULL, 1) FROM t EMIT CHANGES;", "Function 'substring' cannot be resolved due to ambiguous method parameters (null, INTEGER)."),
        ("SELECT ABS(NULL) FROM t EMIT CHANGES;", "Function 'abs' cannot be resolved due to ambiguous method parameters (null)."),
        ("SELECT CHR(NULL) FROM t EMIT CHANGES;", "Function 'chr' cannot be resolved due to ambiguous method parameters (null)."),
        ("SELECT CONCAT(NULL, NULL) FROM t EMIT CHANGES;", "Function 'concat' cannot be resolved due to ambiguous method parameters (null, null)."),
        ("SELECT NO_SUCH_FUNCTION(id) FROM t EMIT CHANGES;", "Can't find any functions with the name 'NO_SUCH_FUNCTION'"),
    ] {
        let (status, body) = s.post("/query", json!({"ksql": sql})).await;
        assert_eq!(status, 400, "{sql}: {body}");
        assert!(body["message"].as_str().unwrap_or_default().contains(expected), "{sql}: {body}");
    }
    // Numbers widen (INT -> BIGINT -> DECIMAL -> DOUBLE) and a NULL fits any parameter.
    for sql in [
        "SELECT id, ABS(id), POWER(id, 2.5), ROUND(big, 1), LEN(CAST(NULL AS STRING)), CONCAT(s, NULL), SUBSTRING(s, 1, id), CHR(id), CHR(s) \
         FROM t EMIT CHANGES;",
        "SELECT id, ELT(id, s, 'x'), REGEXP_EXTRACT('a+', s, 0), UCASE(NULL) FROM t EMIT CHANGES;",
        // ... and one that only one signature takes is read as that signature's type.
        "SELECT id, POWER(NULL, 2), LPAD(NULL, 5, 'x'), SPLIT(NULL, ','), CONCAT(NULL, s), ARRAY_CONTAINS(ARRAY[1], NULL) FROM t EMIT CHANGES;",
    ] {
        let (status, body) = s.ksql(&format!("CREATE STREAM ok_{} AS {sql}", sql.len())).await;
        assert_eq!(status, 200, "{sql}: {body}");
    }
    let listed = s.ksql_ok("SHOW FUNCTIONS;").await;
    let functions = listed[0]["functions"].as_array().expect("functions").clone();
    for (name, kind) in [("TRANSFORM", "SCALAR"), ("ARRAY_SORT", "SCALAR"), ("UCASE", "SCALAR"), ("EXPLODE", "TABLE"), ("ATTR", "AGGREGATE")] {
        assert!(functions.iter().any(|f| f["name"] == name && f["type"] == kind), "SHOW FUNCTIONS lacks {name} ({kind})");
    }
}

#[tokio::test]
async fn explode_and_cube_explode_turn_one_row_into_many_and_attr_keeps_a_shared_value() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM lists (id INT KEY, xs ARRAY<INT>, g STRING) WITH (kafka_topic='lists', format='JSON', partitions=1);").await;
    s.ksql_ok("CREATE STREAM exploded AS SELECT id, EXPLODE(xs) AS x, CUBE_EXPLODE(ARRAY[g, 'b']) AS c FROM lists;").await;
    s.ksql_ok("CREATE TABLE shared AS SELECT id, ATTR(g) AS g FROM lists GROUP BY id;").await;
    s.produce(
        "lists",
        vec![
            json!({"key": 1, "value": {"XS": [10, 20, 30], "G": "a"}}),
            json!({"key": 2, "value": {"XS": [], "G": "a"}}),
            json!({"key": 1, "value": {"XS": null, "G": "z"}}),
        ],
    )
    .await;
    let rows = s.wait_rows("SELECT * FROM exploded EMIT CHANGES LIMIT 4;", 4).await;
    assert_eq!(
        rows,
        vec![
            vec![json!(1), json!(10), json!([null, null])],
            vec![json!(1), json!(20), json!([null, "b"])],
            vec![json!(1), json!(30), json!(["a", null])],
            vec![json!(1), json!(null), json!(["a", "b"])],
        ],
        "the longer result sets the row count; an empty or null array gives no rows"
    );
    let shared = s.wait_rows("SELECT * FROM shared WHERE id = 2;", 1).await;
    assert_eq!(shared, vec![vec![json!(2), json!("a")]]);
    s.wait_until("ATTR to turn null when the values differ", async |s| s.rows("SELECT * FROM shared WHERE id = 1;").await == vec![vec![json!(1), json!(null)]])
        .await;
    let (status, body) = s.ksql("CREATE TABLE bad AS SELECT id, EXPLODE(xs), COUNT(*) FROM lists GROUP BY id;").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("Table functions cannot be used with aggregations."), "{body}");
}
