//! Key lookups answered straight off the socket.
//!
//! Every HTTP connection starts here. Requests that are pull queries on `POST /query` or
//! feature lookups on `POST /features/{table}` are parsed with httparse and answered
//! without hyper's and axum's per-request machinery (request and header maps, routing,
//! body streams, response builders), which cost about as much CPU as the lookup itself.
//! Requests that arrive together (HTTP/1.1 pipelining) are answered with one write.
//!
//! The first request this module does not answer — another endpoint or method, a push
//! query, a chunked or oversized body, `Expect`, `Connection: close`, `Upgrade`, HTTP/1.0,
//! a body that is not the JSON a lookup takes — hands the connection, with every byte read
//! so far, to hyper and the axum router for the rest of its life, so that request gets the
//! full server's behaviour and error messages. Responses already due are written first,
//! so answers stay in request order.

use std::cell::RefCell;
use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use bytes::{Buf, BytesMut};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use super::features::read_features;
use super::guard::HttpGuard;
use super::query::{content_type, pull_body, query_pull_framing};
use super::routes::string_map;
use super::{ApiError, AppState};
use crate::engine::{FeatureKey, Session};
use crate::net::ConnectionTimeouts;

/// Header lines a request answered here may have; more go to hyper (which takes 100).
const MAX_HEADERS: usize = 32;
/// The longest request head answered here.
const MAX_HEAD: usize = 16 * 1024;
/// The longest body answered here (a thousand-key feature lookup fits many times over).
const MAX_BODY: usize = 1024 * 1024;

/// How serving a connection here ended.
pub(super) enum Outcome {
    /// The client closed the connection, or the server is stopping.
    Closed,
    /// A request this module does not answer: serve the connection with hyper, reading
    /// these bytes (the rest of what was received) first.
    HandOff(BytesMut),
}

/// What the request at the front of a buffer is.
#[derive(Debug, PartialEq)]
enum Request<'b> {
    /// Not all of it has arrived.
    Incomplete,
    /// A lookup: `len` bytes of head and body.
    Lookup { len: usize, route: Route<'b>, body: &'b [u8] },
    /// Anything else: hyper serves it.
    Other,
}

#[derive(Debug, PartialEq)]
enum Route<'b> {
    /// `POST /query`, with the request's Accept header.
    Query { accept: Option<&'b [u8]> },
    /// `POST /features/{table}`.
    Features { table: &'b str },
}

/// Reads the request at the front of `buf`. A request the guard has a say on (an `Origin`,
/// a `Host` it checks, a body type it refuses) is left to the router, which applies it.
fn parse_request<'b>(buf: &'b [u8], guard: &HttpGuard) -> Request<'b> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => return Request::Incomplete,
        Ok(httparse::Status::Partial) | Err(_) => return Request::Other,
    };
    if req.method != Some("POST") || req.version != Some(1) {
        return Request::Other;
    }
    let mut route = match req.path {
        Some("/query") => Route::Query { accept: None },
        // A table name as one plain path segment; anything percent-encoded or with a query
        // string is left to the router's decoding.
        Some(p) => match p.strip_prefix("/features/") {
            Some(t) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.') => Route::Features { table: t },
            _ => return Request::Other,
        },
        None => return Request::Other,
    };
    let mut content_length = None;
    let (mut host, mut origin, mut content_type) = (None, None, None);
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("host") {
            host = Some(h.value);
        } else if name.eq_ignore_ascii_case("origin") {
            origin = Some(h.value);
        } else if name.eq_ignore_ascii_case("content-type") {
            content_type = Some(h.value);
        } else if name.eq_ignore_ascii_case("content-length") {
            // Digits only, as hyper reads it (no sign, no spaces inside).
            let v = h.value.trim_ascii();
            let n = if !v.is_empty() && v.len() <= 12 && v.iter().all(u8::is_ascii_digit) {
                std::str::from_utf8(v).ok().and_then(|v| v.parse::<usize>().ok())
            } else {
                None
            };
            match (content_length, n) {
                (None, Some(n)) => content_length = Some(n),
                _ => return Request::Other,
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") || name.eq_ignore_ascii_case("expect") || name.eq_ignore_ascii_case("upgrade") {
            return Request::Other;
        } else if name.eq_ignore_ascii_case("connection") {
            if !h.value.eq_ignore_ascii_case(b"keep-alive") {
                return Request::Other;
            }
        } else if name.eq_ignore_ascii_case("accept")
            && let Route::Query { accept } = &mut route
        {
            *accept = Some(h.value);
        }
    }
    if !guard.is_plain(&axum::http::Method::POST, host, origin, content_type) {
        return Request::Other;
    }
    let Some(body_len) = content_length.filter(|n| *n <= MAX_BODY) else { return Request::Other };
    let len = head_len + body_len;
    if buf.len() < len {
        return Request::Incomplete;
    }
    Request::Lookup { len, route, body: &buf[head_len..len] }
}

/// A complete response.
struct Reply {
    status: StatusCode,
    content_type: &'static str,
    body: String,
}

impl Reply {
    fn ok(content_type: &'static str, body: String) -> Reply {
        Reply { status: StatusCode::OK, content_type, body }
    }

    fn error(e: ApiError) -> Reply {
        Reply { status: e.status, content_type: "application/json", body: e.body.to_string() }
    }

    /// Appends the response as HTTP/1.1 bytes, with the headers hyper would send.
    fn write_to(&self, out: &mut Vec<u8>) {
        let reason = self.status.canonical_reason().unwrap_or("");
        out.reserve(120 + reason.len() + self.content_type.len() + self.body.len());
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(self.status.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(reason.as_bytes());
        out.extend_from_slice(b"\r\ncontent-type: ");
        out.extend_from_slice(self.content_type.as_bytes());
        out.extend_from_slice(b"\r\ncontent-length: ");
        out.extend_from_slice(itoa::Buffer::new().format(self.body.len()).as_bytes());
        out.extend_from_slice(b"\r\ndate: ");
        with_http_date(|d| out.extend_from_slice(d.as_bytes()));
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(self.body.as_bytes());
    }
}

/// Calls `f` with the current time as an HTTP date, formatted at most once a second.
fn with_http_date(f: impl FnOnce(&str)) {
    thread_local! {
        static DATE: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
    }
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    DATE.with_borrow_mut(|(at, text)| {
        if *at != secs || text.is_empty() {
            *at = secs;
            *text = httpdate::fmt_http_date(now);
        }
        f(text)
    })
}

/// The body of a /query request, as far as a lookup needs it.
#[derive(Deserialize)]
struct QueryBody<'b> {
    /// Borrowed from the request when it has no escapes.
    #[serde(borrow)]
    ksql: std::borrow::Cow<'b, str>,
    #[serde(rename = "streamsProperties", default)]
    properties: Option<Map<String, Value>>,
    #[serde(rename = "sessionVariables", default)]
    variables: Option<Map<String, Value>>,
}

/// The body of a feature lookup; string keys borrowed from the request.
#[derive(Deserialize)]
struct FeaturesBody<'b> {
    #[serde(borrow)]
    keys: Vec<FeatureKey<'b>>,
}

/// Answers a lookup, or `None` when hyper should serve the request; the time it took goes
/// to `/metrics`.
async fn answer(state: &AppState, route: Route<'_>, body: &[u8]) -> Option<Reply> {
    let (started, is_query) = (std::time::Instant::now(), matches!(route, Route::Query { .. }));
    let reply = answer_lookup(state, route, body).await?;
    match is_query {
        true => state.metrics.observe_pull_query(started.elapsed()),
        false => state.metrics.observe_feature_lookup(started.elapsed()),
    }
    Some(reply)
}

async fn answer_lookup(state: &AppState, route: Route<'_>, body: &[u8]) -> Option<Reply> {
    // A server that runs a share of its service's partitions sends lookups of other
    // servers' keys there (`forward`), through hyper.
    if state.role.is_some() && state.engine.share() != crate::exec::Share::All {
        return None;
    }
    match route {
        Route::Query { accept } => {
            let framing = query_pull_framing(accept);
            let req: QueryBody = serde_json::from_slice(body).ok()?;
            if req.properties.as_ref().is_none_or(Map::is_empty)
                && let Some(r) = state.engine.try_pull_in_memory(&req.ksql)
            {
                return Some(match r {
                    Ok(rows) => Reply::ok(content_type(framing), pull_body(&rows, framing)),
                    Err(e) => Reply::error(e.into()),
                });
            }
            // Not planned before, or rows on disk: parse, plan and read on a blocking thread.
            // A statement that is not a pull query on a table starts nothing here.
            let session = Session {
                properties: req.properties.as_ref().map(string_map).unwrap_or_default(),
                variables: req.variables.as_ref().map(string_map).unwrap_or_default(),
                ..Session::default()
            };
            let engine = state.engine.clone();
            let sql = req.ksql.into_owned();
            match tokio::task::spawn_blocking(move || engine.query_table_pull(&sql, &session)).await {
                Ok(Ok(Some(rows))) => Some(Reply::ok(content_type(framing), pull_body(&rows, framing))),
                Ok(Ok(None)) => None,
                Ok(Err(e)) => Some(Reply::error(e.into())),
                Err(e) => Some(Reply::error(ApiError::internal(format!("the pull query failed: {e}")))),
            }
        }
        Route::Features { table } => {
            let req: FeaturesBody = serde_json::from_slice(body).ok()?;
            let looked_up = read_features(state, table.to_string(), req.keys).await;
            Some(match looked_up {
                Ok(out) => Reply::ok("application/json", out),
                Err(e) => Reply::error(e.into()),
            })
        }
    }
}

/// Serves lookups on `stream` until the client closes it, the server stops, or a request
/// needs hyper. A connection idle for `timeouts.idle` is closed, and so is one whose request
/// has not arrived whole `timeouts.request` after its first byte (with a 408).
pub(super) async fn serve(stream: &mut TcpStream, state: &AppState, stopped: &mut watch::Receiver<bool>, timeouts: ConnectionTimeouts) -> io::Result<Outcome> {
    let mut buf = BytesMut::with_capacity(4096);
    let mut out = Vec::with_capacity(4096);
    // One wait for the stop flag for the connection's life, not one per read.
    let stop = until_stopped(stopped);
    tokio::pin!(stop);
    // When the first byte of the request at the front of `buf` arrived.
    let mut request_began: Option<Instant> = None;
    loop {
        // Answer every complete request received.
        loop {
            let answered = match parse_request(&buf, &state.guard) {
                Request::Incomplete => break,
                Request::Other => None,
                Request::Lookup { len, route, body } => answer(state, route, body).await.map(|reply| (len, reply)),
            };
            match answered {
                Some((len, reply)) => {
                    reply.write_to(&mut out);
                    buf.advance(len);
                    // A pipelined request behind it began when it was received.
                    request_began = (!buf.is_empty()).then(Instant::now);
                }
                None => {
                    stream.write_all(&out).await?;
                    return Ok(Outcome::HandOff(buf));
                }
            }
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(4096);
        }
        let deadline = match request_began {
            Some(t) => t + timeouts.request,
            None => Instant::now() + timeouts.idle,
        };
        tokio::select! {
            biased;
            read = stream.read_buf(&mut buf) => {
                if read? == 0 {
                    return Ok(Outcome::Closed);
                }
                request_began.get_or_insert_with(Instant::now);
            }
            _ = tokio::time::sleep_until(deadline) => {
                if request_began.is_some() {
                    let e = ApiError::generic(StatusCode::REQUEST_TIMEOUT, 40800, format!("the request did not arrive whole within {} ms of its first \
                        byte; the connection is closed", timeouts.request.as_millis()));
                    Reply::error(e).write_to(&mut out);
                    let _ = stream.write_all(&out).await;
                }
                return Ok(Outcome::Closed);
            }
            // Stopping: close an idle connection; one with part of a request received goes
            // to hyper, which finishes that request and closes.
            _ = &mut stop => {
                return Ok(if buf.is_empty() { Outcome::Closed } else { Outcome::HandOff(buf) });
            }
        }
    }
}

/// Completes once the stop flag is set (or its sender is gone).
pub(super) async fn until_stopped(stopped: &mut watch::Receiver<bool>) {
    loop {
        let stop = *stopped.borrow_and_update();
        if stop || stopped.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_request_plain(buf: &[u8]) -> Request<'_> {
        static GUARD: std::sync::OnceLock<std::sync::Arc<HttpGuard>> = std::sync::OnceLock::new();
        let guard = GUARD.get_or_init(|| HttpGuard::new(Default::default(), "127.0.0.1:8088".parse().expect("address")));
        parse_request(buf, guard)
    }

    fn post(path: &str, headers: &str, body: &str) -> Vec<u8> {
        format!("POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{headers}\r\n{body}", body.len())
            .into_bytes()
    }

    #[test]
    fn a_pull_query_request_is_a_lookup_once_its_whole_body_arrived() {
        let req = post("/query", "accept: application/vnd.ksqlapi.delimited.v1\r\n", r#"{"ksql":"SELECT 1;"}"#);
        for cut in [0, 10, req.len() - 5, req.len() - 1] {
            assert_eq!(parse_request_plain(&req[..cut]), Request::Incomplete, "cut at {cut}");
        }
        let mut two = req.clone();
        two.extend_from_slice(&req);
        match parse_request_plain(&two) {
            Request::Lookup { len, route, body } => {
                assert_eq!(len, req.len());
                assert_eq!(route, Route::Query { accept: Some(&b"application/vnd.ksqlapi.delimited.v1"[..]) });
                assert_eq!(body, br#"{"ksql":"SELECT 1;"}"#);
            }
            other => panic!("not a lookup: {other:?}"),
        }
    }

    #[test]
    fn a_feature_lookup_names_its_table_in_the_path() {
        match parse_request_plain(&post("/features/user_stats", "", r#"{"keys":["u1"]}"#)) {
            Request::Lookup { route, .. } => assert_eq!(route, Route::Features { table: "user_stats" }),
            other => panic!("not a lookup: {other:?}"),
        }
    }

    #[test]
    fn requests_that_need_the_full_server_are_left_to_hyper() {
        let body = r#"{"ksql":"SELECT 1;"}"#;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("another endpoint", post("/ksql", "", body)),
            ("a query string", post("/query?x=1", "", body)),
            ("an encoded table name", post("/features/a%20b", "", body)),
            ("a nested path", post("/features/a/b", "", body)),
            ("a GET", format!("GET /query HTTP/1.1\r\ncontent-length: {}\r\n\r\n{body}", body.len()).into_bytes()),
            ("HTTP/1.0", format!("POST /query HTTP/1.0\r\ncontent-length: {}\r\n\r\n{body}", body.len()).into_bytes()),
            ("no content-length", b"POST /query HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\r\n".to_vec()),
            ("chunked", b"POST /query HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec()),
            ("expect", post("/query", "expect: 100-continue\r\n", body)),
            ("connection close", post("/query", "connection: close\r\n", body)),
            ("two lengths", post("/query", &format!("content-length: {}\r\n", body.len()), body)),
            ("a signed length", format!("POST /query HTTP/1.1\r\ncontent-length: +{}\r\n\r\n{body}", body.len()).into_bytes()),
            ("a body too large", format!("POST /query HTTP/1.1\r\ncontent-length: {}\r\n\r\n", MAX_BODY + 1).into_bytes()),
            ("not HTTP", b"\x16\x03\x01 hello\r\n\r\n".to_vec()),
        ];
        for (what, req) in cases {
            assert_eq!(parse_request_plain(&req), Request::Other, "{what}");
        }
        assert!(!parse_request_plain(&post("/query", "connection: keep-alive\r\n", body)).eq(&Request::Other));
    }

    #[test]
    fn a_head_that_never_ends_is_left_to_hyper() {
        let mut req = b"POST /query HTTP/1.1\r\nx: ".to_vec();
        req.resize(MAX_HEAD + 1, b'a');
        assert_eq!(parse_request_plain(&req), Request::Other);
    }

    #[test]
    fn responses_carry_the_headers_hyper_sends() {
        let mut out = Vec::new();
        Reply::ok("application/json", "[1]".into()).write_to(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 3\r\ndate: "), "{text}");
        assert!(text.ends_with(" GMT\r\n\r\n[1]"), "{text}");
        let mut out = Vec::new();
        Reply::error(ApiError::bad_request("no")).write_to(&mut out);
        assert!(String::from_utf8(out).unwrap().starts_with("HTTP/1.1 400 Bad Request\r\n"));
    }
}
