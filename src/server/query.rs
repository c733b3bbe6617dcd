//! /query and /query-stream: push, pull and PRINT results streamed as they arrive, in
//! ksqlDB's framings; /close-query stops a push query.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde_json::json;

use super::routes::{parse_body, session_from, string_field};
use super::{ApiError, AppState};
use crate::engine::QueryOutput;
use crate::exec::pull::PullRows;
use crate::exec::push::{Final, PushQuery, split_tombstone};
use crate::format::json_values::push_json_str as push_json_string;

/// Response framings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// /query: one JSON array of `{"header"}`, `{"row"}`, `{"finalMessage"}` objects.
    QueryJson,
    /// /query-stream default: metadata line, then one JSON array per row per line.
    Delimited,
    /// /query-stream with Accept: application/json: `[metadata, [row], ...]`.
    StreamJson,
    /// PRINT: plain text lines.
    Text,
}

fn accepts(headers: &HeaderMap, what: &str) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains(what))
}

fn chunk(s: String) -> Result<Bytes, Infallible> {
    Ok(Bytes::from(s))
}

/// The opening of a response: the header / metadata.
fn header_text(framing: Framing, id: &str, header_schema: &str, names: &[String], types: &[String]) -> String {
    match framing {
        // Written directly (it opens every pull-query response); the same text as
        // `json!({"header": {"queryId": id, "schema": header_schema}})`.
        Framing::QueryJson => {
            let mut s = String::with_capacity(48 + id.len() + header_schema.len());
            s.push_str("[{\"header\":{\"queryId\":");
            push_json_string(&mut s, id);
            s.push_str(",\"schema\":");
            push_json_string(&mut s, header_schema);
            s.push_str("}}");
            s
        }
        Framing::Delimited => format!("{}\n", json!({"queryId": id, "columnNames": names, "columnTypes": types})),
        Framing::StreamJson => format!("[{}", json!({"queryId": id, "columnNames": names, "columnTypes": types})),
        Framing::Text => String::new(),
    }
}

/// Appends rows (each a JSON array, or a text line for PRINT) in a framing.
fn push_rows(s: &mut String, framing: Framing, rows: &[String]) {
    for r in rows {
        let (r, tombstone) = split_tombstone(r);
        match framing {
            Framing::QueryJson => {
                s.push_str(",\n{\"row\":{\"columns\":");
                s.push_str(r);
                s.push_str(if tombstone { ",\"tombstone\":true}}" } else { "}}" });
            }
            Framing::Delimited | Framing::Text => {
                s.push_str(r);
                s.push('\n');
            }
            Framing::StreamJson => {
                s.push_str(",\n");
                s.push_str(r);
            }
        }
    }
}

/// The end of a response, given how the query ended.
fn end_text(framing: Framing, fin: Option<Final>) -> String {
    end_text_cow(framing, fin).into_owned()
}

/// [`end_text`], borrowed when it is fixed text.
fn end_text_cow(framing: Framing, fin: Option<Final>) -> std::borrow::Cow<'static, str> {
    let fixed = match (framing, &fin) {
        (Framing::QueryJson | Framing::StreamJson, None) => "]\n",
        (Framing::Delimited | Framing::Text, None) => "",
        _ => return end_text_owned(framing, fin).into(),
    };
    fixed.into()
}

fn end_text_owned(framing: Framing, fin: Option<Final>) -> String {
    match (framing, fin) {
        (Framing::QueryJson, Some(Final::Completed(m))) => format!(",\n{}]\n", json!({"finalMessage": m})),
        (Framing::QueryJson, Some(Final::Error(m))) => {
            format!(",\n{}]\n", json!({"errorMessage": {"@type": "generic_error", "error_code": 50000, "message": m}}))
        }
        (Framing::QueryJson, _) => "]\n".to_string(),
        (Framing::StreamJson, Some(Final::Error(m))) => format!(",\n{}]\n", json!({"@type": "generic_error", "error_code": 50000, "message": m})),
        (Framing::StreamJson, _) => "]\n".to_string(),
        (Framing::Delimited | Framing::Text, Some(Final::Error(m))) => {
            format!("{}\n", json!({"@type": "generic_error", "error_code": 50000, "message": m}))
        }
        (Framing::Delimited | Framing::Text, _) => String::new(),
    }
}

pub(super) fn content_type(framing: Framing) -> &'static str {
    match framing {
        Framing::QueryJson | Framing::StreamJson => "application/json",
        Framing::Delimited => "application/vnd.ksqlapi.delimited.v1",
        Framing::Text => "text/plain; charset=utf-8",
    }
}

/// Streams a transient query's output in a framing until it ends or the client leaves.
/// The chunks rows are written in. With delimited framing (`/query-stream`'s, which
/// ksqlDB's Node and Java clients read) each row is its own chunk, so each is its own HTTP/2
/// DATA frame as ksqlDB writes them: a client that parses one row per frame can read it.
/// Other framings put the rows that arrived together into one chunk.
fn row_chunks(framing: Framing, rows: &[String], out: &mut std::collections::VecDeque<Bytes>) {
    if framing == Framing::Delimited {
        for r in rows {
            let mut s = String::with_capacity(r.len() + 1);
            push_rows(&mut s, framing, std::slice::from_ref(r));
            out.push_back(Bytes::from(s));
        }
    } else {
        let mut s = String::new();
        push_rows(&mut s, framing, rows);
        out.push_back(Bytes::from(s));
    }
}

/// A continuation token as ksqlDB writes one among a push query's rows: in /query's
/// framing as a `StreamedRow`, in /query-stream's as the token object itself.
fn token_text(framing: Framing, token: &str) -> String {
    let object = json!({"continuationToken": token});
    match framing {
        Framing::QueryJson => format!(",\n{}", json!({"continuationToken": object})),
        Framing::Delimited => format!("{object}\n"),
        Framing::StreamJson => format!(",\n{object}"),
        Framing::Text => String::new(),
    }
}

fn body_stream(pq: PushQuery, framing: Framing) -> impl Stream<Item = Result<Bytes, Infallible>> {
    enum Phase {
        Start,
        Rows,
        Done,
    }
    let queued = std::collections::VecDeque::new();
    futures::stream::unfold((pq, Phase::Start, queued), move |(mut pq, phase, mut queued)| async move {
        if let Some(c) = queued.pop_front() {
            return Some((Ok(c), (pq, phase, queued)));
        }
        match phase {
            Phase::Start => {
                let s = header_text(framing, &pq.id, &pq.header_schema, &pq.column_names, &pq.column_types);
                // A client following the query gets its starting point first: one that
                // leaves before any row arrives can still continue from there.
                if let Some(token) = &pq.continuation {
                    queued.push_back(Bytes::from(token_text(framing, &token.to_text())));
                }
                Some((chunk(s), (pq, Phase::Rows, queued)))
            }
            Phase::Rows => loop {
                match pq.rx.recv().await {
                    Some(message) => {
                        row_chunks(framing, &message.rows, &mut queued);
                        // After the rows of a read, the token that continues after them.
                        if let (Some(token), Some((partition, next))) = (pq.continuation.as_mut(), message.read_to) {
                            token.advance(partition, next);
                            queued.push_back(Bytes::from(token_text(framing, &token.to_text())));
                        }
                        if let Some(first) = queued.pop_front() {
                            break Some((Ok(first), (pq, Phase::Rows, queued)));
                        }
                    }
                    None => {
                        let end = end_text(framing, pq.shared.final_state());
                        break Some((chunk(end), (pq, Phase::Done, queued)));
                    }
                }
            },
            Phase::Done => None,
        }
    })
}

fn streaming_response(pq: PushQuery, framing: Framing) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type(framing))], Body::from_stream(body_stream(pq, framing))).into_response()
}

/// A pull query's complete result as one body.
pub(super) fn pull_body(r: &PullRows, framing: Framing) -> String {
    let mut s = header_text(framing, &r.id, &r.plan.header_schema, &r.plan.column_names, &r.plan.column_types);
    s.reserve(r.rows.iter().map(|row| row.len() + 32).sum::<usize>() + 2);
    push_rows(&mut s, framing, &r.rows);
    s.push_str(&end_text_cow(framing, None));
    s
}

/// Set on a scan's answer gathered from the servers that run its partitions: their URLs.
pub const GATHERED_FROM: &str = "x-eddy-gathered-from";

/// Marks an answer read from the servers that run its partitions, none from copies.
#[derive(Debug, Clone, Copy)]
pub struct LiveAnswer;

fn pull_response(r: PullRows, framing: Framing) -> Response {
    let gathered = r.gathered.clone();
    let mut response = pull_response_body(r, framing);
    if let Some(g) = gathered {
        if !g.from.is_empty()
            && let Ok(v) = axum::http::HeaderValue::from_str(&g.from.join(","))
        {
            response.headers_mut().insert(GATHERED_FROM, v);
        }
        if g.copied.is_empty() {
            response.extensions_mut().insert(LiveAnswer);
        }
    }
    response
}

fn pull_response_body(r: PullRows, framing: Framing) -> Response {
    if framing == Framing::Delimited {
        // One chunk (one HTTP/2 frame) for the metadata and one per row, as for push queries.
        let mut chunks = std::collections::VecDeque::new();
        chunks.push_back(Bytes::from(header_text(framing, &r.id, &r.plan.header_schema, &r.plan.column_names, &r.plan.column_types)));
        row_chunks(framing, &r.rows, &mut chunks);
        let end = end_text_cow(framing, None);
        if !end.is_empty() {
            chunks.push_back(Bytes::from(end.into_owned()));
        }
        let body = Body::from_stream(futures::stream::iter(chunks.into_iter().map(Ok::<_, Infallible>)));
        return (StatusCode::OK, [(header::CONTENT_TYPE, content_type(framing))], body).into_response();
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type(framing))], pull_body(&r, framing)).into_response()
}

/// How /query frames a pull query's rows, given the request's Accept header.
pub(super) fn query_pull_framing(accept: Option<&[u8]>) -> Framing {
    let delimited = b"application/vnd.ksqlapi.delimited.v1";
    match accept {
        Some(a) if a.windows(delimited.len()).any(|w| w == delimited) => Framing::Delimited,
        _ => Framing::QueryJson,
    }
}

/// Runs the query a request body names (`sql_key`, `props_key`): from memory on this
/// thread when a cached pull-query plan applies, otherwise on a blocking thread.
async fn run(state: &AppState, body: &Bytes, sql_key: &str, props_key: &str) -> Result<QueryOutput, ApiError> {
    let started = std::time::Instant::now();
    let out = run_query(state, body, sql_key, props_key).await;
    if let Ok(QueryOutput::Pull(_)) = &out {
        state.metrics.observe_pull_query(started.elapsed());
    }
    out
}

async fn run_query(state: &AppState, body: &Bytes, sql_key: &str, props_key: &str) -> Result<QueryOutput, ApiError> {
    let body = parse_body(body)?;
    let sql = string_field(&body, sql_key)?;
    super::routes::await_command(state, &body).await?;
    let has_properties = body.get(props_key).and_then(|p| p.as_object()).is_some_and(|p| !p.is_empty());
    if !has_properties && let Some(r) = state.engine.try_pull_in_memory(&sql) {
        return Ok(QueryOutput::Pull(r?));
    }
    let session = session_from(&body, props_key)?;
    let engine = state.engine.clone();
    Ok(tokio::task::spawn_blocking(move || engine.query(&sql, &session)).await.map_err(|e| ApiError::internal(e.to_string()))??)
}

fn respond(out: QueryOutput, push_framing: impl Fn(bool) -> Framing) -> Response {
    match out {
        QueryOutput::Pull(rows) => pull_response(rows, push_framing(false)),
        QueryOutput::Push(pq) => {
            let framing = push_framing(pq.is_print);
            streaming_response(pq, framing)
        }
    }
}

pub async fn query(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let out = run(&state, &body, "ksql", "streamsProperties").await?;
    Ok(respond(out, |is_print| match () {
        _ if is_print => Framing::Text,
        _ => query_pull_framing(headers.get(header::ACCEPT).map(|v| v.as_bytes())),
    }))
}

pub async fn query_stream(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let out = run(&state, &body, "sql", "properties").await?;
    Ok(respond(out, |is_print| match () {
        _ if is_print => Framing::Text,
        _ if accepts(&headers, "application/json") => Framing::StreamJson,
        _ => Framing::Delimited,
    }))
}

pub async fn close_query(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let body = parse_body(&body)?;
    let id = string_field(&body, "queryId")?;
    if state.engine.close_query(&id) { Ok(StatusCode::OK.into_response()) } else { Err(ApiError::bad_request(format!("No query with id {id}"))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_endings_match_the_formatted_ones() {
        for framing in [Framing::QueryJson, Framing::Delimited, Framing::StreamJson, Framing::Text] {
            assert_eq!(end_text_cow(framing, None), end_text_owned(framing, None), "{framing:?}");
        }
    }

    #[test]
    fn query_header_is_the_json_ksqldb_writes() {
        let schema = "`ID` STRING KEY, `N` \"BIGINT\"";
        let written = header_text(Framing::QueryJson, "transient_T_1", schema, &[], &[]);
        assert_eq!(written, format!("[{}", json!({"header": {"queryId": "transient_T_1", "schema": schema}})));
    }
}
