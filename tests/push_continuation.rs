//! Scalable push queries as ksqlDB's clients use them: with
//! `ksql.query.push.v2.continuation.tokens.enabled` a push query's rows are followed by
//! continuation tokens, and a client that reconnects with the last one it got
//! (`request.ksql.query.push.continuation.token`) gets every row after it, none twice.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use common::TestServer;

const TOKENS: &str = "ksql.query.push.v2.continuation.tokens.enabled";
const TOKEN: &str = "request.ksql.query.push.continuation.token";

/// A /query-stream response read line by line (delimited framing).
struct Lines {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: String,
}

impl Lines {
    async fn open(s: &TestServer, request: Value) -> Lines {
        let resp = reqwest::Client::new().post(format!("{}/query-stream", s.url)).json(&request).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
        Lines { body: resp.bytes_stream().boxed(), buf: String::new() }
    }

    async fn next(&mut self) -> Value {
        loop {
            if let Some(nl) = self.buf.find('\n') {
                let line: String = self.buf.drain(..=nl).collect();
                return serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.body.next()).await.expect("a line in time").expect("the response goes on");
            self.buf.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
    }
}

fn token_of(line: &Value) -> Option<String> {
    line.get("continuationToken").and_then(|t| t.as_str()).map(str::to_string)
}

/// The row's first column (the key, an INT).
fn key_of(line: &Value) -> Option<i64> {
    line.as_array().and_then(|r| r[0].as_i64())
}

async fn insert_keys(s: &TestServer, keys: std::ops::Range<i64>) {
    for k in keys {
        s.ksql_ok(&format!("INSERT INTO clicks (id, page) VALUES ({k}, 'p{k}');")).await;
    }
}

fn push_request(reset: &str, token: Option<&str>) -> Value {
    let mut request = json!({"sql": "SELECT id, page FROM clicks EMIT CHANGES;", "properties": {"auto.offset.reset": reset, TOKENS: true,
        "ksql.query.push.v2.enabled": true}});
    if let Some(t) = token {
        request["requestProperties"] = json!({ TOKEN: t });
    }
    request
}

#[tokio::test]
async fn a_push_query_continues_after_its_last_token_with_no_row_lost_or_repeated() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM clicks (id INT KEY, page STRING) WITH (kafka_topic='clicks', partitions=3);").await;
    insert_keys(&s, 0..30).await;

    // Read some rows and the token after them, then go away.
    let mut first = Lines::open(&s, push_request("earliest", None)).await;
    assert!(first.next().await.get("queryId").is_some(), "the metadata comes first");
    let mut seen = Vec::new();
    let token = loop {
        let line = first.next().await;
        match (key_of(&line), token_of(&line)) {
            (Some(k), _) => seen.push(k),
            (None, Some(t)) if seen.len() >= 5 => break t,
            (None, Some(_)) => {}
            (None, None) => panic!("neither a row nor a token: {line}"),
        }
    };
    drop(first);
    assert!(seen.len() < 30, "the test needs a token before the last row; got all {} rows first", seen.len());

    // Rows arrive while the client is away; it comes back with its token (and a reset that
    // the token overrides).
    insert_keys(&s, 30..50).await;
    let mut again = Lines::open(&s, push_request("latest", Some(&token))).await;
    assert!(again.next().await.get("queryId").is_some());
    let mut rest = Vec::new();
    while seen.len() + rest.len() < 50 {
        let line = again.next().await;
        if let Some(k) = key_of(&line) {
            rest.push(k);
        }
    }
    let all: BTreeSet<i64> = seen.iter().chain(&rest).copied().collect();
    assert_eq!(all, (0..50).collect::<BTreeSet<_>>(), "first {seen:?}, then {rest:?}");
}

#[tokio::test]
async fn a_client_that_leaves_before_any_row_continues_from_where_it_started() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM clicks (id INT KEY, page STRING) WITH (kafka_topic='clicks', partitions=2);").await;
    insert_keys(&s, 0..3).await;
    // `latest`: the starting token is the end of each partition.
    let mut first = Lines::open(&s, push_request("latest", None)).await;
    first.next().await;
    let token = token_of(&first.next().await).expect("the starting point follows the metadata");
    drop(first);
    insert_keys(&s, 3..6).await;
    let mut again = Lines::open(&s, push_request("latest", Some(&token))).await;
    again.next().await;
    let mut keys = BTreeSet::new();
    while keys.len() < 3 {
        if let Some(k) = key_of(&again.next().await) {
            assert!(keys.insert(k), "key {k} twice");
        }
    }
    assert_eq!(keys, (3..6).collect::<BTreeSet<_>>(), "only the rows written while the client was away");
}

#[tokio::test]
async fn a_token_moves_past_records_the_filter_drops() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM clicks (id INT KEY, page STRING) WITH (kafka_topic='clicks', partitions=1);").await;
    let request = json!({"sql": "SELECT id FROM clicks WHERE page = 'never' EMIT CHANGES;", "properties": {TOKENS: "true"}});
    let mut lines = Lines::open(&s, request).await;
    lines.next().await;
    assert_eq!(token_of(&lines.next().await).as_deref(), Some(r#"{"v":1,"topic":"clicks","offsets":[0]}"#));
    insert_keys(&s, 0..4).await;
    // No row passes, but the reading moves on: a client continuing from the newest token
    // does not read those records again.
    loop {
        let line = lines.next().await;
        assert!(key_of(&line).is_none(), "the filter passes nothing: {line}");
        if token_of(&line).as_deref() == Some(r#"{"v":1,"topic":"clicks","offsets":[4]}"#) {
            break;
        }
    }
}

#[tokio::test]
async fn tokens_come_in_each_framing_and_only_when_asked_for() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM clicks (id INT KEY, page STRING) WITH (kafka_topic='clicks', partitions=1);").await;
    insert_keys(&s, 0..2).await;
    let client = reqwest::Client::new();
    let read = |path: &'static str, accept: &'static str, body: Value| {
        let client = client.clone();
        let url = format!("{}{path}", s.url);
        async move {
            let resp = client.post(url).header("Accept", accept).json(&body).send().await.unwrap();
            // LIMIT 2 over the two rows there: the response ends.
            let text = tokio::time::timeout(Duration::from_secs(20), resp.text()).await.expect("the response ends");
            text.unwrap()
        }
    };
    let props = json!({"auto.offset.reset": "earliest", TOKENS: true});
    // /query: each token is a StreamedRow, as ksqlDB's Java client reads it.
    let old = read("/query", "application/json", json!({"ksql": "SELECT * FROM clicks EMIT CHANGES LIMIT 2;", "streamsProperties": props})).await;
    assert!(old.contains(r#"{"continuationToken":{"continuationToken":"{\"v\":1,\"topic\":\"clicks\",\"offsets\":[0]}"}}"#), "{old}");
    // /query-stream as a JSON array: the token object is an element.
    let array = read("/query-stream", "application/json", json!({"sql": "SELECT * FROM clicks EMIT CHANGES LIMIT 2;", "properties": props})).await;
    assert!(
        array.contains(
            r#",
{"continuationToken":"{\"v\":1,\"topic\":\"clicks\",\"offsets\":[0]}"}"#
        ),
        "{array}"
    );
    // Without the setting, no tokens.
    let plain = read(
        "/query-stream",
        "application/vnd.ksqlapi.delimited.v1",
        json!({"sql": "SELECT * FROM clicks EMIT CHANGES LIMIT 2;", "properties": {"auto.offset.reset": "earliest"}}),
    )
    .await;
    assert!(plain.contains("[1,\"p1\"]") && !plain.contains("continuationToken"), "{plain}");
}

#[tokio::test]
async fn continuation_tokens_that_cannot_apply_are_refused_with_the_reason() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM clicks (id INT KEY, page STRING) WITH (kafka_topic='clicks', partitions=2);").await;
    let refused = |sql: &str, token: &str| {
        let body = json!({"sql": sql, "properties": {TOKENS: true}, "requestProperties": {TOKEN: token}});
        let s = &s;
        async move {
            let (status, body) = s.post("/query-stream", body).await;
            assert_eq!(status, 400, "{body}");
            body["message"].as_str().unwrap().to_string()
        }
    };
    let push = "SELECT * FROM clicks EMIT CHANGES;";
    assert!(refused(push, "garbage").await.contains("not one this server wrote"));
    let other = refused(push, r#"{"v":1,"topic":"orders","offsets":[0,0]}"#).await;
    assert!(other.contains("is for topic 'orders' but the query reads topic 'clicks'"), "{other}");
    let partitions = refused(push, r#"{"v":1,"topic":"clicks","offsets":[0]}"#).await;
    assert!(partitions.contains("offsets for 1 partitions but topic 'clicks' has 2"), "{partitions}");
    let future = refused(push, r#"{"v":1,"topic":"clicks","offsets":[0,7]}"#).await;
    assert!(future.contains("past the partition's end"), "{future}");
    let token = r#"{"v":1,"topic":"clicks","offsets":[0,0]}"#;
    let aggregate = refused("SELECT id, COUNT(*) FROM clicks GROUP BY id EMIT CHANGES;", token).await;
    assert!(aggregate.contains("this query aggregates"), "{aggregate}");
    let pull = refused("SELECT * FROM clicks;", token).await;
    assert!(pull.contains("this query is a pull query"), "{pull}");
}
