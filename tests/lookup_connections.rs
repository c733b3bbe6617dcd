//! Key lookups over raw HTTP/1.1 connections: pipelined requests, requests split across
//! writes, and connections that move from the lookup path to the full router mid-way.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::TestServer;
use serde_json::{Value, json};

/// One parsed HTTP response.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("response body is not JSON ({e}): {}", self.body))
    }
}

/// A raw client connection that reads responses with a Content-Length.
struct Conn {
    stream: TcpStream,
    pending: Vec<u8>,
}

impl Conn {
    fn open(s: &TestServer) -> Conn {
        let addr = s.url.trim_start_matches("http://").trim_end_matches('/').to_string();
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        // Small writes leave one at a time.
        stream.set_nodelay(true).expect("nodelay");
        Conn { stream, pending: Vec::new() }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).expect("read");
        self.pending.extend_from_slice(&chunk[..n]);
        n > 0
    }

    fn response(&mut self) -> Response {
        let head_end = loop {
            if let Some(i) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            assert!(self.fill(), "connection closed before a response head; got {:?}", String::from_utf8_lossy(&self.pending));
        };
        let head = String::from_utf8(self.pending[..head_end].to_vec()).expect("head is text");
        let mut lines = head.split("\r\n");
        let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|c| c.parse().ok()).expect("status line");
        let headers: Vec<(String, String)> = lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_string(), v.trim().to_string())).collect();
        let len: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().expect("content-length"))
            .unwrap_or_else(|| panic!("response without content-length: {head}"));
        while self.pending.len() < head_end + len {
            assert!(self.fill(), "connection closed inside a response body");
        }
        let body = String::from_utf8(self.pending[head_end..head_end + len].to_vec()).expect("body is text");
        self.pending.drain(..head_end + len);
        Response { status, headers, body }
    }

    /// Whether the server closed the connection (after any pending response was read).
    fn closed(&mut self) -> bool {
        self.pending.is_empty() && !self.fill()
    }
}

fn post(path: &str, headers: &str, body: &Value) -> Vec<u8> {
    let body = body.to_string();
    format!("POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{headers}\r\n{body}", body.len()).into_bytes()
}

fn pull(sql: &str) -> Vec<u8> {
    post("/query", "", &json!({"ksql": sql}))
}

/// The same body sent chunked, which only the full router reads.
fn post_chunked(path: &str, body: &Value) -> Vec<u8> {
    let body = body.to_string();
    format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    )
    .into_bytes()
}

async fn users_table() -> TestServer {
    let s = TestServer::start();
    s.ksql_ok("CREATE TABLE users (id VARCHAR PRIMARY KEY, n BIGINT, city VARCHAR) WITH (kafka_topic='users', value_format='JSON', partitions=2);").await;
    s.produce("users", (0..10).map(|i| json!({"key": format!("u{i}"), "value": {"n": i, "city": format!("c{}", i % 3)}})).collect()).await;
    s.wait_rows("SELECT * FROM users;", 10).await;
    s
}

/// A /query response's rows, without the header (whose query id differs per request).
fn query_rows(r: &Response) -> Vec<Value> {
    r.json().as_array().expect("array")[1..].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_lookups_are_answered_in_order_and_the_connection_then_serves_any_endpoint() {
    let s = users_table().await;
    let mut c = Conn::open(&s);
    // Five requests in one write: three lookups, one statement for the full router, and a
    // lookup after it.
    let mut batch = pull("SELECT * FROM users WHERE id = 'u1';");
    batch.extend(post("/features/users", "", &json!({"keys": ["u2", "nope"]})));
    batch.extend(post("/query", "accept: application/vnd.ksqlapi.delimited.v1\r\n", &json!({"ksql": "SELECT n FROM users WHERE id = 'u3';"})));
    batch.extend(post("/ksql", "", &json!({"ksql": "SHOW TABLES;"})));
    batch.extend(pull("SELECT * FROM users WHERE id = 'u4';"));
    c.send(&batch);

    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.header("date").is_some_and(|d| d.ends_with("GMT")), "{:?}", r.headers);
    assert_eq!(query_rows(&r), vec![json!({"row": {"columns": ["u1", 1, "c1"]}})]);

    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["results"][0]["key"], json!("u2"));
    assert_eq!(v["results"][0]["row"]["N"], json!(2));
    assert_eq!(v["results"][1], json!({"key": "nope", "missing": true}));

    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/vnd.ksqlapi.delimited.v1"));
    let lines: Vec<&str> = r.body.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.body);
    assert_eq!(serde_json::from_str::<Value>(lines[1]).expect("row line"), json!([3]));

    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()[0]["tables"][0]["name"], json!("USERS"), "{}", r.body);

    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(query_rows(&r), vec![json!({"row": {"columns": ["u4", 4, "c1"]}})]);

    // Still open and still answering after the move to the full router.
    c.send(&post("/features/users", "", &json!({"keys": ["u5"]})));
    assert_eq!(c.response().json()["results"][0]["row"]["N"], json!(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_sent_a_few_bytes_at_a_time_is_answered_once_complete() {
    let s = users_table().await;
    let mut c = Conn::open(&s);
    for _ in 0..2 {
        for piece in pull("SELECT * FROM users WHERE id = 'u7';").chunks(7) {
            c.send(piece);
            std::thread::sleep(Duration::from_millis(2));
        }
        let r = c.response();
        assert_eq!(query_rows(&r), vec![json!({"row": {"columns": ["u7", 7, "c1"]}})], "{}", r.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_and_the_full_router_give_the_same_answers_and_errors() {
    let s = users_table().await;
    let requests = [
        ("/query", json!({"ksql": "SELECT * FROM users WHERE id = 'u8';"})),
        ("/query", json!({"ksql": "SELECT * FROM users WHERE id IN ('u9', 'u0', 'zz');"})),
        ("/query", json!({"ksql": "SELECT id, n * 2 AS twice FROM users WHERE city = 'c2';"})),
        ("/query", json!({"ksql": "SELECT * FROM users WHERE id = '${who}';", "sessionVariables": {"who": "u2"}})),
        ("/query", json!({"ksql": "SELECT * FROM nosuch WHERE id = 'u8';"})),
        ("/query", json!({"ksql": "SELECT * FROM users WHERE id = 'u8'"})),
        ("/query", json!({"ksql": "SELEC * FROM users;"})),
        ("/query", json!({"nosql": "SELECT 1;"})),
        ("/features/users", json!({"keys": ["u8", "u9"]})),
        ("/features/users", json!({"keys": ["u\"q", "u8", "ü", "", "tab\there"]})),
        ("/features/users", json!({"keys": [null, "u1"]})),
        ("/features/users", json!({"keys": ["u1", 17]})),
        ("/features/users", json!({"keys": [1.5]})),
        ("/features/users", json!({"keys": [["u8"]]})),
        ("/features/users", json!({"keys": [{"ID": "u8"}]})),
        ("/features/nosuch", json!({"keys": ["u8"]})),
        ("/features/users", json!({"keys": "u8"})),
        ("/features/users", json!({"keys": (0..1001).map(|i| format!("u{i}")).collect::<Vec<_>>()})),
    ];
    for (path, body) in requests {
        // Each on a fresh connection: plain (the lookup path), then chunked (the router).
        let mut fast = Conn::open(&s);
        fast.send(&post(path, "", &body));
        let fast = fast.response();
        let mut full = Conn::open(&s);
        full.send(&post_chunked(path, &body));
        let full = full.response();
        assert_eq!(fast.status, full.status, "{path} {body}: {} vs {}", fast.body, full.body);
        assert_eq!(fast.header("content-type"), full.header("content-type"), "{path} {body}");
        if path == "/query" && fast.status == 200 {
            assert_eq!(query_rows(&fast), query_rows(&full), "{path} {body}");
            assert_eq!(fast.json()[0]["header"]["schema"], full.json()[0]["header"]["schema"]);
        } else {
            assert_eq!(fast.json(), full.json(), "{path} {body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_query_and_connection_close_are_served_by_the_full_router() {
    let s = users_table().await;
    // Connection: close: answered, then closed.
    let mut c = Conn::open(&s);
    c.send(&post("/query", "connection: close\r\n", &json!({"ksql": "SELECT * FROM users WHERE id = 'u1';"})));
    assert_eq!(query_rows(&c.response()), vec![json!({"row": {"columns": ["u1", 1, "c1"]}})]);
    assert!(c.closed(), "the server keeps a Connection: close connection open");
    // A push query after a lookup on the same connection streams its rows.
    let mut c = Conn::open(&s);
    c.send(&pull("SELECT * FROM users WHERE id = 'u1';"));
    assert_eq!(c.response().status, 200);
    c.send(&post("/query", "", &json!({"ksql": "SELECT * FROM users EMIT CHANGES LIMIT 2;", "streamsProperties": {"auto.offset.reset": "earliest"}})));
    let mut text = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !text.contains("\r\n0\r\n\r\n") {
        assert!(std::time::Instant::now() < deadline, "the push query did not finish: {text}");
        assert!(c.fill(), "connection closed during the push query: {text}");
        text = String::from_utf8_lossy(&c.pending).to_string();
    }
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(text.contains("transfer-encoding: chunked"), "{text}");
    assert_eq!(text.matches("\"row\"").count(), 2, "{text}");
}
