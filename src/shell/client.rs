//! The shell's REST client: /ksql for statements, /query for streamed results.

use std::collections::BTreeMap;

use futures::StreamExt;
use serde_json::{Value, json};

/// A server's answer to a statement.
pub enum Reply {
    Entities(Vec<Value>),
    Error(Value),
}

pub struct Client {
    pub server: String,
    http: reqwest::Client,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the server at {server}: {source}. Is `eddy server` running? Use --server URL to point elsewhere")]
    Connect { server: String, source: reqwest::Error },
    #[error("the server sent a response that is not JSON: {0}")]
    BadResponse(String),
}

impl Client {
    pub fn new(server: &str) -> Client {
        Client { server: server.trim_end_matches('/').to_string(), http: reqwest::Client::new() }
    }

    fn connect_err(&self, e: reqwest::Error) -> ClientError {
        ClientError::Connect { server: self.server.clone(), source: e }
    }

    pub async fn info(&self) -> Result<Value, ClientError> {
        let r = self.http.get(format!("{}/info", self.server)).send().await.map_err(|e| self.connect_err(e))?;
        r.json().await.map_err(|e| ClientError::BadResponse(e.to_string()))
    }

    pub async fn ksql(&self, sql: &str, props: &BTreeMap<String, String>, vars: &BTreeMap<String, String>) -> Result<Reply, ClientError> {
        let body = json!({"ksql": sql, "streamsProperties": props, "sessionVariables": vars});
        let r = self.http.post(format!("{}/ksql", self.server)).json(&body).send().await.map_err(|e| self.connect_err(e))?;
        let ok = r.status().is_success();
        let text = r.text().await.map_err(|e| self.connect_err(e))?;
        let v: Value = serde_json::from_str(&text).map_err(|_| ClientError::BadResponse(text.clone()))?;
        Ok(if ok { Reply::Entities(v.as_array().cloned().unwrap_or_default()) } else { Reply::Error(v) })
    }

    /// Starts a /query request; the caller reads its body as it streams.
    pub async fn query(&self, sql: &str, props: &BTreeMap<String, String>, vars: &BTreeMap<String, String>) -> Result<Result<QueryStream, Value>, ClientError> {
        let body = json!({"ksql": sql, "streamsProperties": props, "sessionVariables": vars});
        let r = self
            .http
            .post(format!("{}/query", self.server))
            .header("Accept", "application/vnd.ksql.v1+json")
            .json(&body)
            .send()
            .await
            .map_err(|e| self.connect_err(e))?;
        if !r.status().is_success() {
            let text = r.text().await.map_err(|e| self.connect_err(e))?;
            let v: Value = serde_json::from_str(&text).map_err(|_| ClientError::BadResponse(text.clone()))?;
            return Ok(Err(v));
        }
        let text_mode = r.headers().get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/plain"));
        Ok(Ok(QueryStream { body: Box::pin(r.bytes_stream()), buf: String::new(), text_mode }))
    }
}

/// One element of a streamed /query response.
pub enum QueryEvent {
    Header {
        schema: String,
    },
    Row(Vec<Value>),
    Final(String),
    Error(String),
    /// A PRINT line.
    Line(String),
}

pub struct QueryStream {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: String,
    text_mode: bool,
}

impl QueryStream {
    /// The next event, or None at the end of the response.
    pub async fn next(&mut self) -> Option<QueryEvent> {
        loop {
            if let Some(ev) = self.take_event() {
                return Some(ev);
            }
            match self.body.next().await {
                Some(Ok(b)) => self.buf.push_str(&String::from_utf8_lossy(&b)),
                Some(Err(e)) => return Some(QueryEvent::Error(format!("connection lost: {e}"))),
                None => {
                    let rest = std::mem::take(&mut self.buf);
                    let rest = rest.trim().trim_start_matches(['[', ',']).trim_end_matches(']').trim();
                    if rest.is_empty() {
                        return None;
                    }
                    return parse_element(rest).or(Some(QueryEvent::Line(rest.to_string())));
                }
            }
        }
    }

    fn take_event(&mut self) -> Option<QueryEvent> {
        if self.text_mode {
            let nl = self.buf.find('\n')?;
            let line: String = self.buf.drain(..=nl).collect();
            return Some(QueryEvent::Line(line.trim_end_matches('\n').to_string()));
        }
        loop {
            // Elements of the streamed JSON array: skip separators, parse one value.
            let start = self.buf.find(|c: char| !(c.is_whitespace() || c == '[' || c == ',' || c == ']'))?;
            let mut it = serde_json::Deserializer::from_str(&self.buf[start..]).into_iter::<Value>();
            match it.next() {
                Some(Ok(v)) => {
                    let end = start + it.byte_offset();
                    self.buf.drain(..end);
                    if let Some(ev) = element(&v) {
                        return Some(ev);
                    }
                }
                Some(Err(e)) if e.is_eof() => return None,
                Some(Err(_)) => {
                    // Not JSON: show the rest as text.
                    let rest = std::mem::take(&mut self.buf);
                    return Some(QueryEvent::Line(rest));
                }
                None => return None,
            }
        }
    }
}

fn parse_element(s: &str) -> Option<QueryEvent> {
    element(&serde_json::from_str(s).ok()?)
}

fn element(v: &Value) -> Option<QueryEvent> {
    if let Some(h) = v.get("header") {
        return Some(QueryEvent::Header { schema: h.get("schema").and_then(|x| x.as_str()).unwrap_or("").to_string() });
    }
    if let Some(r) = v.get("row") {
        return Some(QueryEvent::Row(r.get("columns").and_then(|c| c.as_array()).cloned().unwrap_or_default()));
    }
    if let Some(m) = v.get("finalMessage") {
        return Some(QueryEvent::Final(m.as_str().unwrap_or("").to_string()));
    }
    if let Some(e) = v.get("errorMessage") {
        return Some(QueryEvent::Error(e.get("message").and_then(|m| m.as_str()).unwrap_or("query failed").to_string()));
    }
    None
}
