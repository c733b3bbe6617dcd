//! The functions ksqlDB's reference documents, reached over REST as a user writes them:
//! every documented name is listed by SHOW FUNCTIONS and described by DESCRIBE FUNCTION,
//! and the functions added for that list (trigonometry, LOG, TRUNC, GEO_DISTANCE, the
//! MASK family, ENCODE, REGEXP_REPLACE, SPLIT_TO_MAP, INSTR's position and occurrence,
//! UUID, the *_FROM_BYTES readers, ENTRIES, GENERATE_SERIES, JSON_ARRAY_CONTAINS and
//! CONVERT_TZ) give the documented results, nulls and errors.

mod common;

use common::TestServer;
use serde_json::{Value, json};

/// Every function name in ksqlDB's scalar, aggregate and table function reference.
const DOCUMENTED: &[&str] = &[
    "ABS",
    "ACOS",
    "ASIN",
    "AS_VALUE",
    "ATAN",
    "ATAN2",
    "CBRT",
    "CEIL",
    "COS",
    "COSH",
    "COT",
    "DEGREES",
    "ENTRIES",
    "EXP",
    "FLOOR",
    "GENERATE_SERIES",
    "GEO_DISTANCE",
    "GREATEST",
    "LEAST",
    "LN",
    "LOG",
    "PI",
    "POWER",
    "RADIANS",
    "RANDOM",
    "ROUND",
    "SIGN",
    "SIN",
    "SINH",
    "SQRT",
    "TAN",
    "TANH",
    "TRUNC",
    "ARRAY_CONCAT",
    "ARRAY_CONTAINS",
    "ARRAY_DISTINCT",
    "ARRAY_EXCEPT",
    "ARRAY_INTERSECT",
    "ARRAY_JOIN",
    "ARRAY_LENGTH",
    "ARRAY_MAX",
    "ARRAY_MIN",
    "ARRAY_REMOVE",
    "ARRAY_SORT",
    "ARRAY_UNION",
    "AS_MAP",
    "ELT",
    "FIELD",
    "JSON_ARRAY_CONTAINS",
    "MAP_KEYS",
    "MAP_VALUES",
    "MAP_UNION",
    "SLICE",
    "FILTER",
    "REDUCE",
    "TRANSFORM",
    "CHR",
    "CONCAT",
    "CONCAT_WS",
    "ENCODE",
    "EXTRACTJSONFIELD",
    "FROM_BYTES",
    "IS_JSON_STRING",
    "JSON_ARRAY_LENGTH",
    "JSON_CONCAT",
    "JSON_KEYS",
    "JSON_RECORDS",
    "JSON_ITEMS",
    "TO_JSON_STRING",
    "INITCAP",
    "INSTR",
    "LCASE",
    "LEN",
    "LPAD",
    "MASK",
    "MASK_KEEP_LEFT",
    "MASK_KEEP_RIGHT",
    "MASK_LEFT",
    "MASK_RIGHT",
    "MD5",
    "REPLACE",
    "REGEXP_EXTRACT",
    "REGEXP_EXTRACT_ALL",
    "REGEXP_REPLACE",
    "REGEXP_SPLIT_TO_ARRAY",
    "RPAD",
    "SPLIT",
    "SPLIT_TO_MAP",
    "SUBSTRING",
    "TO_BYTES",
    "TRIM",
    "UCASE",
    "UUID",
    "BIGINT_FROM_BYTES",
    "DOUBLE_FROM_BYTES",
    "INT_FROM_BYTES",
    "COALESCE",
    "IFNULL",
    "NULLIF",
    "CONVERT_TZ",
    "DATEADD",
    "DATESUB",
    "FORMAT_DATE",
    "FORMAT_TIME",
    "FORMAT_TIMESTAMP",
    "FROM_DAYS",
    "FROM_UNIXTIME",
    "PARSE_DATE",
    "PARSE_TIME",
    "PARSE_TIMESTAMP",
    "TIMEADD",
    "TIMESUB",
    "TIMESTAMPADD",
    "TIMESTAMPSUB",
    "UNIX_DATE",
    "UNIX_TIMESTAMP",
    "URL_DECODE_PARAM",
    "URL_ENCODE_PARAM",
    "URL_EXTRACT_FRAGMENT",
    "URL_EXTRACT_HOST",
    "URL_EXTRACT_PARAMETER",
    "URL_EXTRACT_PATH",
    "URL_EXTRACT_PORT",
    "URL_EXTRACT_PROTOCOL",
    "URL_EXTRACT_QUERY",
    "DATETOSTRING",
    "STRINGTODATE",
    "STRINGTOTIMESTAMP",
    "TIMESTAMPTOSTRING",
    "AVG",
    "COLLECT_LIST",
    "COLLECT_SET",
    "CORRELATION",
    "COUNT",
    "COUNT_DISTINCT",
    "EARLIEST_BY_OFFSET",
    "HISTOGRAM",
    "LATEST_BY_OFFSET",
    "MAX",
    "MIN",
    "STDDEV_SAMP",
    "STDDEV_SAMPLE",
    "SUM",
    "TOPK",
    "TOPKDISTINCT",
    "CUBE_EXPLODE",
    "EXPLODE",
];

async fn one_row(s: &TestServer, select: &str) -> Vec<Value> {
    let rows = s.wait_rows(&format!("{select} FROM input WHERE id = 1 EMIT CHANGES LIMIT 1;"), 1).await;
    rows.into_iter().next().expect("one row")
}

async fn input(s: &TestServer) {
    s.ksql_ok(
        "CREATE STREAM input (id INT KEY, x DOUBLE, name STRING, m MAP<STRING, INT>, b BYTES, ts TIMESTAMP, dec DECIMAL(5, 3)) \
         WITH (kafka_topic='input', format='JSON', partitions=1);",
    )
    .await;
    s.ksql_ok(
        "INSERT INTO input (id, x, name, m, b, ts, dec) VALUES (1, -2.75, 'My Test $123', MAP('b' := 2, 'a' := 1), \
         TO_BYTES('AAAH5Q==', 'base64'), PARSE_TIMESTAMP('2021-01-01 12:00', 'yyyy-MM-dd HH:mm'), 12.345);",
    )
    .await;
}

fn close(v: &Value, expected: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - expected).abs() < 1e-9)
}

#[tokio::test]
async fn show_functions_lists_and_describe_function_describes_every_documented_function() {
    let s = TestServer::start();
    let listed = s.ksql_ok("SHOW FUNCTIONS;").await;
    let functions = listed[0]["functions"].as_array().expect("functions").clone();
    let missing: Vec<&str> = DOCUMENTED.iter().copied().filter(|name| !functions.iter().any(|f| f["name"] == *name)).collect();
    assert!(missing.is_empty(), "SHOW FUNCTIONS lacks documented functions: {missing:?}");
    let category = |name: &str| functions.iter().find(|f| f["name"] == name).map(|f| f["category"].clone()).unwrap_or_default();
    for (name, expected) in
        [("SIN", "MATHEMATICAL"), ("MASK", "STRING"), ("SUM", "AGGREGATE"), ("EXPLODE", "TABLE"), ("URL_EXTRACT_HOST", "URL"), ("FORMAT_DATE", "DATE / TIME")]
    {
        assert_eq!(category(name), json!(expected), "{name}");
    }
    // A row function's variations are the signatures its type rule accepts, with argument
    // names from its synopsis and type variables where any type does.
    let variations = |described: &Value| -> Vec<(String, String)> {
        described[0]["functions"]
            .as_array()
            .expect("functions")
            .iter()
            .map(|v| (v["synopsis"].as_str().unwrap_or_default().to_string(), v["returnType"].as_str().unwrap_or_default().to_string()))
            .collect()
    };
    let instr = variations(&s.ksql_ok("DESCRIBE FUNCTION INSTR;").await);
    for expected in ["INSTR(s STRING, sub STRING)", "INSTR(s STRING, sub STRING, position INTEGER, occurrence INTEGER)"] {
        assert!(instr.contains(&(expected.to_string(), "INTEGER".to_string())), "{expected} in {instr:?}");
    }
    assert_eq!(variations(&s.ksql_ok("DESCRIBE FUNCTION ARRAY_CONTAINS;").await), vec![("ARRAY_CONTAINS(arg1 ARRAY<T>, arg2 T)".into(), "BOOLEAN".into())]);
    // Functions lowered onto DataFusion are probed through the binder, BYTES forms too.
    let substring = variations(&s.ksql_ok("DESCRIBE FUNCTION SUBSTRING;").await);
    for (expected, returns) in [("SUBSTRING(str STRING, pos INTEGER, len INTEGER)", "STRING"), ("SUBSTRING(str BYTES, pos INTEGER)", "BYTES")] {
        assert!(substring.contains(&(expected.to_string(), returns.to_string())), "{expected} in {substring:?}");
    }
    // Aggregates: the column types their result rule accepts, then their literal parameters.
    assert_eq!(variations(&s.ksql_ok("DESCRIBE FUNCTION SUM;").await), vec![("SUM(col N)".into(), "N".into())]);
    let latest = variations(&s.ksql_ok("DESCRIBE FUNCTION LATEST_BY_OFFSET;").await);
    assert!(latest.contains(&("LATEST_BY_OFFSET(col T, n INTEGER)".into(), "ARRAY<T>".into())), "{latest:?}");
    let topk = s.ksql_ok("DESCRIBE FUNCTION TOPK;").await;
    let variation = &topk[0]["functions"][0];
    assert_eq!(variation["synopsis"], "TOPK(col T, k INTEGER)", "{topk}");
    let args: Vec<(String, String)> = variation["arguments"]
        .as_array()
        .expect("arguments")
        .iter()
        .map(|a| (a["name"].as_str().unwrap_or_default().to_string(), a["description"].as_str().unwrap_or_default().to_string()))
        .collect();
    assert_eq!(args, vec![("col".into(), "".into()), ("k".into(), "".into())]);
    // Table functions and functions taking lambdas are described with type variables.
    assert_eq!(variations(&s.ksql_ok("DESCRIBE FUNCTION EXPLODE;").await), vec![("EXPLODE(array ARRAY<T>)".into(), "T".into())]);
    let transform = variations(&s.ksql_ok("DESCRIBE FUNCTION TRANSFORM;").await);
    assert!(transform.contains(&("TRANSFORM(array ARRAY<T>, function LAMBDA (T) => O)".into(), "ARRAY<O>".into())), "{transform:?}");
    let reduce = variations(&s.ksql_ok("DESCRIBE FUNCTION REDUCE;").await);
    assert!(reduce.contains(&("REDUCE(map MAP<K, V>, initial S, function LAMBDA (S, K, V) => S)".into(), "S".into())), "{reduce:?}");
    // Every variation of every function has its argument types.
    for name in DOCUMENTED {
        let described = s.ksql_ok(&format!("DESCRIBE FUNCTION {name};")).await;
        for v in described[0]["functions"].as_array().expect("functions") {
            let args = v["arguments"].as_array().expect("arguments");
            assert!(args.iter().all(|a| !a["type"].as_str().unwrap_or_default().is_empty()), "{name}: {v}");
        }
    }
    for name in DOCUMENTED {
        let described = s.ksql_ok(&format!("DESCRIBE FUNCTION {name};")).await;
        assert_eq!(described[0]["name"], *name, "{described}");
        assert!(!described[0]["description"].as_str().unwrap_or_default().is_empty(), "{name} has no description");
    }
}

#[tokio::test]
async fn numeric_functions_follow_the_reference() {
    let s = TestServer::start();
    input(&s).await;
    let row = one_row(
        &s,
        "SELECT ACOS(1), ASIN(1), ATAN(1), ATAN2(1, 1), CBRT(27), COS(0), COSH(0), COT(1), DEGREES(PI()), LOG(100), LOG(2, 8), \
         RADIANS(180), SIN(0), SINH(0), TAN(0), TANH(0), TRUNC(x), TRUNC(x, 1), TRUNC(dec), TRUNC(dec, 1), TRUNC(1234, -2), \
         GEO_DISTANCE(51.5074, -0.1278, 48.8566, 2.3522), GEO_DISTANCE(51.5074, -0.1278, 48.8566, 2.3522, 'miles'), \
         GEO_DISTANCE(91, 0, 0, 0), ACOS(CAST(NULL AS DOUBLE))",
    )
    .await;
    let pi = std::f64::consts::PI;
    for (i, expected) in [0.0, pi / 2.0, pi / 4.0, pi / 4.0, 3.0, 1.0, 1.0, 1.0 / 1f64.tan(), 180.0, 2.0, 3.0, pi, 0.0, 0.0, 0.0, 0.0].iter().enumerate() {
        assert!(close(&row[i], *expected), "column {i}: {} is not {expected}", row[i]);
    }
    assert_eq!(row[16], json!(-2), "TRUNC of a DOUBLE is a BIGINT toward zero");
    assert!(close(&row[17], -2.7));
    assert_eq!(row[18], json!(12));
    assert_eq!(row[19], json!(12.3));
    assert_eq!(row[20], json!(1200));
    assert!((row[21].as_f64().expect("km") - 343.556).abs() < 0.01, "{}", row[21]);
    assert!((row[22].as_f64().expect("miles") - 213.48).abs() < 0.01, "{}", row[22]);
    assert_eq!(row[23], Value::Null, "a latitude past 90 is not a place");
    assert_eq!(row[24], Value::Null);
    // A bare NULL fits ACOS(INT), ACOS(BIGINT) and ACOS(DOUBLE) alike: ksqlDB refuses the call.
    let (status, body) = s.post("/query", json!({"ksql": "SELECT ACOS(NULL) FROM input EMIT CHANGES;"})).await;
    assert_eq!(status, 400, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("Function 'acos' cannot be resolved due to ambiguous method parameters (null)."), "{message}");
}

#[tokio::test]
async fn string_masking_encoding_and_bytes_functions_follow_the_reference() {
    let s = TestServer::start();
    input(&s).await;
    let row = one_row(
        &s,
        "SELECT MASK(name), MASK(name, '*', NULL, '1', NULL), MASK_LEFT(name, 4), MASK_RIGHT(name, 4), MASK_KEEP_LEFT(name, 4), \
         MASK_KEEP_RIGHT(name, 4), ENCODE('4578616d706C6521', 'hex', 'utf8'), ENCODE('Example!', 'utf8', 'base64'), \
         ENCODE('x', 'utf8', 'klingon'), REGEXP_REPLACE(name, '([a-z]+)', '<$1>'), SPLIT_TO_MAP('apple:=green/cherry:=red/x', '/', ':='), \
         INSTR('CORPORATE FLOOR', 'OR', 3), INSTR('CORPORATE FLOOR', 'OR', 3, 2), INSTR('CORPORATE FLOOR', 'OR', -3), \
         INSTR('CORPORATE FLOOR', 'OR', -3, 2), INSTR('CORPORATE FLOOR', 'MISSING'), UUID(), INT_FROM_BYTES(b), \
         BIGINT_FROM_BYTES(TO_BYTES('AAAAASoF8gA=', 'base64')), DOUBLE_FROM_BYTES(TO_BYTES('QICm/ZvJ9YI=', 'base64'), 'BIG_ENDIAN'), \
         INT_FROM_BYTES(TO_BYTES('AAE=', 'base64'))",
    )
    .await;
    assert_eq!(
        row[..16],
        [
            json!("Xx-Xxxx--nnn"),
            json!("*y *est $111"),
            json!("Xx-Xest $123"),
            json!("My Test -nnn"),
            json!("My Txxx--nnn"),
            json!("Xx-Xxxx-$123"),
            json!("Example!"),
            json!("RXhhbXBsZSE="),
            Value::Null,
            json!("M<y> T<est> $123"),
            json!({"apple": "green", "cherry": "red"}),
            json!(5),
            json!(14),
            json!(5),
            json!(2),
            json!(0),
        ]
    );
    let uuid = row[16].as_str().expect("uuid text");
    let groups: Vec<usize> = uuid.split('-').map(str::len).collect();
    assert_eq!(groups, vec![8, 4, 4, 4, 12], "{uuid}");
    assert_eq!(uuid.as_bytes()[14], b'4', "version 4: {uuid}");
    assert_eq!(row[17], json!(2021));
    assert_eq!(row[18], json!(5_000_000_000i64));
    assert!(close(&row[19], 532.8738323));
    assert_eq!(row[20], Value::Null, "two bytes are not an INT");
}

#[tokio::test]
async fn collection_json_and_time_zone_functions_follow_the_reference() {
    let s = TestServer::start();
    input(&s).await;
    let row = one_row(
        &s,
        "SELECT ENTRIES(m, true), GENERATE_SERIES(1, 5, 2), GENERATE_SERIES(5, 1), GENERATE_SERIES(CAST(1 AS BIGINT), 3), \
         GENERATE_SERIES(1, 5, 0), JSON_ARRAY_CONTAINS('[1, 2, 3]', 3), JSON_ARRAY_CONTAINS('[1.5]', 1.5), JSON_ARRAY_CONTAINS('{}', 1), \
         JSON_ARRAY_CONTAINS('[\"a\", null]', 'a'), JSON_ARRAY_CONTAINS('[3.0]', 3), CONVERT_TZ(ts, 'UTC', 'America/Los_Angeles')",
    )
    .await;
    assert_eq!(
        row,
        vec![
            json!([{"K": "a", "V": 1}, {"K": "b", "V": 2}]),
            json!([1, 3, 5]),
            json!([5, 4, 3, 2, 1]),
            json!([1, 2, 3]),
            Value::Null,
            json!(true),
            json!(true),
            json!(false),
            json!(true),
            json!(false),
            json!(1_609_473_600_000i64),
        ]
    );
    for (sql, expected) in [
        ("SELECT GENERATE_SERIES('a', 5) FROM input EMIT CHANGES;", "Function 'generate_series' does not accept parameters (STRING, INTEGER)."),
        ("SELECT ENTRIES(m, 1) FROM input EMIT CHANGES;", "Function 'entries' does not accept parameters (MAP<STRING, INTEGER>, INTEGER)."),
        ("SELECT MASK_LEFT(name, 'x') FROM input EMIT CHANGES;", "Function 'mask_left' does not accept parameters (STRING, STRING)."),
    ] {
        let (status, body) = s.post("/query", json!({"ksql": sql})).await;
        assert_eq!(status, 400, "{sql}: {body}");
        assert!(body["message"].as_str().unwrap_or_default().contains(expected), "{sql}: {body}");
    }
}

#[tokio::test]
async fn string_functions_take_bytes_and_give_bytes() {
    let s = TestServer::start();
    input(&s).await;
    let row = one_row(
        &s,
        "SELECT FROM_BYTES(SUBSTRING(TO_BYTES('stream', 'utf8'), 2, 3), 'utf8'), FROM_BYTES(LPAD(b, 6, TO_BYTES('00', 'hex')), 'hex'), \
         FROM_BYTES(RPAD(b, 2, TO_BYTES('ff', 'hex')), 'hex'), TRANSFORM(SPLIT(TO_BYTES('a,b', 'utf8'), TO_BYTES(',', 'utf8')), x => FROM_BYTES(x, 'utf8')), \
         LEN(b), CONCAT(b, b) = TO_BYTES('AAAH5QAAB+U=', 'base64')",
    )
    .await;
    assert_eq!(row, vec![json!("tre"), json!("0000000007E5"), json!("0000"), json!(["a", "b"]), json!(4), json!(true)]);
    let (status, body) = s.post("/query", json!({"ksql": "SELECT LPAD(b, 3, 'x') FROM input EMIT CHANGES;"})).await;
    assert_eq!(status, 400, "padding BYTES with a STRING is refused: {body}");
}

#[tokio::test]
async fn pads_and_series_past_a_million_are_null_instead_of_exhausting_memory() {
    let s = TestServer::start();
    input(&s).await;
    let row = one_row(
        &s,
        "SELECT LPAD('Foo', 7, 'Bar'), RPAD('Foo', 7, 'Bar'), LPAD('Foo', 2, 'Bar'), LPAD('', 2, 'Bar'), LPAD('Foo', 5, ''), \
         LPAD(name, 2000000000, 'x'), RPAD(name, 2147483647, 'xy'), GENERATE_SERIES(1, 2000000000), ARRAY_LENGTH(GENERATE_SERIES(1, 1000000))",
    )
    .await;
    assert_eq!(row, vec![json!("BarBFoo"), json!("FooBarB"), json!("Fo"), json!("Ba"), Value::Null, Value::Null, Value::Null, Value::Null, json!(1_000_000)]);
    s.ksql_ok("SHOW STREAMS;").await;
}

#[tokio::test]
async fn time_zones_are_named_as_java_names_them() {
    let s = TestServer::start();
    input(&s).await;
    // Regions, Java's three-letter IDs, and offsets (whole hours or not); an unknown ID
    // gives null.
    let row = one_row(
        &s,
        "SELECT FORMAT_TIMESTAMP(FROM_UNIXTIME(0), 'yyyy-MM-dd HH:mm', 'PST'), FORMAT_TIMESTAMP(FROM_UNIXTIME(0), 'HH:mm', 'IST'), \
         FORMAT_TIMESTAMP(FROM_UNIXTIME(0), 'HH:mm', '+05:30'), FORMAT_TIMESTAMP(FROM_UNIXTIME(0), 'HH:mm', 'GMT-08:00'), \
         FORMAT_TIMESTAMP(FROM_UNIXTIME(0), 'HH:mm', 'Europe/Paris'), UNIX_TIMESTAMP(CONVERT_TZ(FROM_UNIXTIME(0), 'UTC', 'JST')), \
         PARSE_TIMESTAMP('1970-01-01 05:30', 'yyyy-MM-dd HH:mm', '+0530'), FORMAT_TIMESTAMP(FROM_UNIXTIME(0), 'HH:mm', 'Mars/Olympus')",
    )
    .await;
    assert_eq!(
        row,
        vec![json!("1969-12-31 16:00"), json!("05:30"), json!("05:30"), json!("16:00"), json!("01:00"), json!(9 * 3_600_000), json!(0), Value::Null]
    );
}

#[tokio::test]
async fn initcap_chr_and_unix_timestamp_follow_the_reference() {
    let s = TestServer::start();
    input(&s).await;
    let before = chrono::Utc::now().timestamp_millis();
    let row = one_row(
        &s,
        "SELECT INITCAP('some_string hELLO-wORLD  two'), INITCAP(CAST(NULL AS STRING)), CHR(75), CHR('\\u004b'), \
         CHR('\\ud820\\udeb8'), CHR('004b'), CHR('bogus'), CHR(''), UNIX_TIMESTAMP(), UNIX_TIMESTAMP(ts)",
    )
    .await;
    // Words are separated by whitespace only; the whitespace is kept.
    assert_eq!(row[..2], [json!("Some_string Hello-world  Two"), json!(null)]);
    // A code point past U+FFFF is written as its UTF-16 surrogate pair, as in Java.
    assert_eq!(row[2..8], [json!("K"), json!("K"), json!("\u{182b8}"), json!(null), json!(null), json!(null)]);
    let now = row[8].as_i64().expect("UNIX_TIMESTAMP() is a BIGINT");
    assert!(now >= before, "UNIX_TIMESTAMP() {now} is the time of the row, after {before}");
    assert_eq!(row[9], json!(1_609_502_400_000i64), "UNIX_TIMESTAMP(ts) is the timestamp's epoch milliseconds");
}

#[tokio::test]
async fn date_time_patterns_parse_as_javas_formatter_does() {
    let s = TestServer::start();
    input(&s).await;
    let row = one_row(
        &s,
        "SELECT PARSE_TIMESTAMP('2020-05-11t21:58:33z', 'yyyy-MM-dd''T''HH:mm:ssX'), \
         PARSE_TIMESTAMP('2018-05-11T21:58:33 PST', 'yyyy-MM-dd''T''HH:mm:ss zzz'), \
         STRINGTOTIMESTAMP('2019-08-27T13:31:09.2+0000', 'yyyy-MM-dd''T''HH:mm:ss.SX'), \
         PARSE_DATE('01-JAN-2022', 'dd-MMM-yyyy'), PARSE_DATE('JAN-2022', 'MMM-yyyy'), PARSE_DATE('20220101', 'yyyyMMdd'), \
         PARSE_TIME('07:05 pm', 'hh:mm a'), PARSE_TIMESTAMP('2019-08-27 13:31:09.12', 'yyyy-MM-dd HH:mm:ss.SSS'), \
         PARSE_TIMESTAMP('2018-01-11 21:58', 'yyyy-MM-dd HH:mm', 'Europe/Paris')",
    )
    .await;
    assert_eq!(row[0], json!(1_589_234_313_000i64), "Z and T match in any case");
    assert_eq!(row[1], json!(1_526_101_113_000i64), "PST names Los Angeles, on summer time in May");
    assert_eq!(row[2], json!(1_566_912_669_200i64), "one S reads one digit, tenths");
    assert_eq!(row[3..6], [json!(18_993), json!(18_993), json!(18_993)], "days since the epoch");
    assert_eq!(row[6], json!(68_700_000), "milliseconds since midnight");
    assert_eq!(row[7], json!(null), "SSS wants three digits");
    assert_eq!(row[8], json!(1_515_704_280_000i64), "a text without a zone is in the zone argument");
}
