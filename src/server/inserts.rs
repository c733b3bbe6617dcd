//! `POST /inserts-stream`: ksqlDB's streaming insert. The request body is a first line
//! `{"target": "STREAM", "properties": {}}` and then one JSON object per line, sent for as
//! long as the client likes (HTTP/1.1 chunked or HTTP/2). Each row is acknowledged as it
//! is written: `{"status":"ok","seq":N}` or `{"status":"error","seq":N,...}` for a row that
//! cannot be inserted, after which the stream goes on. With `Accept: application/json`
//! the acknowledgements form one JSON array.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::AppState;
use super::errors::ApiError;
use crate::engine::{Engine, InsertTarget};

/// The longest line (the target line or one row) read; a longer one ends the stream with
/// an error rather than growing memory without bound.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Reads the body's lines as they arrive.
struct Lines {
    body: axum::body::BodyDataStream,
    buf: Vec<u8>,
    done: bool,
}

enum Line {
    Text(Vec<u8>),
    TooLong,
    Failed(String),
}

impl Lines {
    /// The complete lines available after the next chunk (at least one unless the body
    /// ended); `None` at the end of the body.
    async fn next_lines(&mut self) -> Option<Vec<Line>> {
        loop {
            let mut out = Vec::new();
            let mut start = 0;
            while let Some(i) = self.buf[start..].iter().position(|b| *b == b'\n') {
                out.push(Line::Text(self.buf[start..start + i].to_vec()));
                start += i + 1;
            }
            self.buf.drain(..start);
            if self.buf.len() > MAX_LINE_BYTES {
                self.done = true;
                out.push(Line::TooLong);
                return Some(out);
            }
            if !out.is_empty() {
                return Some(out);
            }
            if self.done {
                return None;
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    self.done = true;
                    return Some(vec![Line::Failed(e.to_string())]);
                }
                None => {
                    self.done = true;
                    if self.buf.is_empty() {
                        return None;
                    }
                    return Some(vec![Line::Text(std::mem::take(&mut self.buf))]);
                }
            }
        }
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

pub async fn inserts_stream(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let mut lines = Lines { body: body.into_data_stream(), buf: Vec::new(), done: false };
    let mut pending: Vec<Line> = Vec::new();
    // The first non-blank line names the target.
    let first = loop {
        if pending.is_empty() {
            match lines.next_lines().await {
                Some(more) => pending = more,
                None => {
                    return Err(ApiError::bad_request(
                        "The request body is empty: send {\"target\": \"STREAM_NAME\"} on its first line, then one JSON object per row",
                    ));
                }
            }
        }
        match pending.remove(0) {
            Line::Text(t) if is_blank(&t) => continue,
            Line::Text(t) => break t,
            Line::TooLong => return Err(ApiError::bad_request(format!("The first line is longer than {MAX_LINE_BYTES} bytes"))),
            Line::Failed(e) => return Err(ApiError::bad_request(format!("The request body could not be read: {e}"))),
        }
    };
    let args: Value = serde_json::from_slice(&first)
        .map_err(|e| ApiError::bad_request(format!("The first line must be a JSON object like {{\"target\": \"STREAM_NAME\"}}: {e}")))?;
    let target =
        args.get("target").and_then(Value::as_str).ok_or_else(|| ApiError::bad_request("The first line has no \"target\": name the stream to insert into"))?;
    let engine = state.engine.clone();
    let name = target.to_string();
    let target = tokio::task::spawn_blocking(move || engine.insert_stream_target(&name))
        .await
        .map_err(|e| ApiError::internal(format!("resolving the insert target failed: {e}")))??;
    let json_array = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("application/json"));
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(16);
    tokio::spawn(acknowledge(state.engine.clone(), target, lines, pending, tx, json_array));
    let content_type = if json_array { "application/json" } else { "application/vnd.ksqlapi.delimited.v1" };
    let stream = receiver_stream(rx);
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, content_type)], Body::from_stream(stream)).into_response())
}

fn receiver_stream(mut rx: mpsc::Receiver<Result<Bytes, Infallible>>) -> impl futures::Stream<Item = Result<Bytes, Infallible>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Inserts the rows line by line as they arrive and writes their acknowledgements.
async fn acknowledge(
    engine: std::sync::Arc<Engine>,
    target: InsertTarget,
    mut lines: Lines,
    mut pending: Vec<Line>,
    tx: mpsc::Sender<Result<Bytes, Infallible>>,
    json_array: bool,
) {
    let target = std::sync::Arc::new(target);
    let mut seq: i64 = 0;
    let mut first_ack = true;
    let mut send = async |ack: Value, tx: &mpsc::Sender<Result<Bytes, Infallible>>| {
        let text = match (json_array, first_ack) {
            (true, true) => format!("[{ack}"),
            (true, false) => format!(",{ack}"),
            (false, _) => format!("{ack}\n"),
        };
        first_ack = false;
        tx.send(Ok(Bytes::from(text))).await.is_ok()
    };
    'stream: loop {
        if pending.is_empty() {
            match lines.next_lines().await {
                Some(more) => pending = more,
                None => break,
            }
        }
        let mut rows = Vec::new();
        let mut acks: Vec<Option<Value>> = Vec::new();
        let mut stop = None;
        for line in pending.drain(..) {
            match line {
                Line::Text(t) if is_blank(&t) => {}
                Line::Text(t) => match serde_json::from_slice::<Value>(&t) {
                    Ok(row) => {
                        rows.push(row);
                        acks.push(None);
                    }
                    Err(e) => acks.push(Some(error_ack(0, &format!("The row is not valid JSON: {e}")))),
                },
                Line::TooLong => stop = Some(format!("A row is longer than {MAX_LINE_BYTES} bytes; the stream ends here")),
                Line::Failed(e) => stop = Some(format!("The request body could not be read: {e}")),
            }
        }
        let engine = engine.clone();
        let t = target.clone();
        let results = match tokio::task::spawn_blocking(move || engine.insert_json_rows(&t, &rows)).await {
            Ok(r) => r,
            Err(e) => {
                let _ = send(error_ack(seq, &format!("the insert failed: {e}")), &tx).await;
                break;
            }
        };
        let mut results = results.into_iter();
        for ack in acks {
            let ack = match ack {
                Some(mut bad) => {
                    bad["seq"] = json!(seq);
                    bad
                }
                None => match results.next() {
                    Some(Ok(())) => json!({"status": "ok", "seq": seq}),
                    Some(Err(e)) => error_ack(seq, &e.to_string()),
                    None => error_ack(seq, "the row was not written"),
                },
            };
            seq += 1;
            if !send(ack, &tx).await {
                break 'stream;
            }
        }
        if let Some(why) = stop {
            let _ = send(error_ack(seq, &why), &tx).await;
            break;
        }
    }
    if json_array {
        let _ = tx.send(Ok(Bytes::from(if first_ack { "[]" } else { "]" }))).await;
    }
}

fn error_ack(seq: i64, message: &str) -> Value {
    json!({"status": "error", "seq": seq, "error_code": 40000, "message": message})
}
