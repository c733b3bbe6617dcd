//! What every HTTP request must satisfy before a route sees it, so a web page a user
//! happens to visit cannot drive the API behind the user's back:
//!
//! - a body sent with POST is JSON (`application/json`, `application/*+json` such as
//!   ksqlDB's `application/vnd.ksql.v1+json`) or ksqlDB's delimited format; a browser can
//!   send `text/plain` or form bodies to any address without asking (a "simple" request),
//!   never JSON;
//! - a request from another origin (its `Origin` header names another site) is refused
//!   unless `--http-allow-origin` lists it (CORS, as ksqlDB's
//!   `access.control.allow.origin`); listed origins get the CORS headers and preflights;
//! - when the server listens on a loopback address, the `Host` is a loopback name or
//!   address (or listed in `--http-allowed-hosts`): a page on `attacker.example` whose name
//!   was re-pointed at 127.0.0.1 (DNS rebinding) is refused.
//!
//! Bodies over the size limit get ksqlDB's JSON error (413). The lookup fast path answers a
//! request only when [`HttpGuard::is_plain`] says none of this applies to it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// Settings of the guard.
#[derive(Debug, Clone, Default)]
pub struct GuardConfig {
    /// Origins allowed to call the API from a browser (`*`: any).
    pub allow_origins: Vec<String>,
    /// Host names accepted besides loopback ones when listening on loopback.
    pub allowed_hosts: Vec<String>,
    /// The largest request body, in bytes.
    pub max_body_bytes: usize,
}

#[derive(Debug)]
pub struct HttpGuard {
    config: GuardConfig,
    /// Check `Host` (the server listens on a loopback address).
    check_host: bool,
    /// The address the REST API listens on.
    listen: SocketAddr,
}

/// Content types a POST body may have.
fn is_accepted_body_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || essence == "application/vnd.ksqlapi.delimited.v1" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The host part of a `Host` header or an origin's authority, without the port.
fn host_name(authority: &str) -> &str {
    let a = authority.trim();
    if let Some(rest) = a.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    match a.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => a,
    }
}

fn is_loopback_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost" || h.ends_with(".localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Why a request is refused.
#[derive(Debug)]
pub enum Refusal {
    Origin(String),
    Host(String),
    ContentType(Option<String>),
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> ApiError {
        match r {
            Refusal::Origin(o) => ApiError::forbidden(format!(
                "cross-origin request from '{o}' refused: a web page on another site may not call this server. To allow it, start the server with \
                    --http-allow-origin {o}"
            )),
            Refusal::Host(h) => ApiError::forbidden(format!(
                "Host '{h}' refused: this server listens on a loopback address and answers requests addressed to localhost or a loopback IP only (a \
                    protection against DNS rebinding). To allow this name, start the server with --http-allowed-hosts {}",
                host_name(&h)
            )),
            Refusal::ContentType(t) => ApiError::generic(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                41500,
                format!(
                    "request body of type '{}' refused: send it as JSON with Content-Type: application/json (or application/vnd.ksql.v1+json, or \
                        application/vnd.ksqlapi.delimited.v1)",
                    t.as_deref().unwrap_or("(none)")
                ),
            ),
        }
    }
}

/// What the guard decided about a request's origin.
#[derive(Debug, PartialEq, Eq)]
enum OriginCheck {
    /// No origin, or the server's own.
    SameOrigin,
    /// Another origin the allow-list permits: answer with CORS headers.
    Allowed,
}

impl HttpGuard {
    pub fn new(config: GuardConfig, listen: SocketAddr) -> Arc<HttpGuard> {
        Arc::new(HttpGuard { check_host: listen.ip().is_loopback(), config, listen })
    }

    /// The address the REST API listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listen
    }

    pub fn max_body_bytes(&self) -> usize {
        self.config.max_body_bytes
    }

    fn check_host(&self, host: Option<&str>) -> Result<(), Refusal> {
        let Some(host) = host else { return Ok(()) };
        if !self.check_host {
            return Ok(());
        }
        let name = host_name(host);
        if is_loopback_name(name) || self.config.allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            Ok(())
        } else {
            Err(Refusal::Host(host.to_string()))
        }
    }

    fn check_origin(&self, origin: Option<&str>, host: Option<&str>) -> Result<OriginCheck, Refusal> {
        let Some(origin) = origin else { return Ok(OriginCheck::SameOrigin) };
        let own = host.is_some_and(|h| {
            origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")).is_some_and(|authority| authority.eq_ignore_ascii_case(h))
        });
        if own {
            return Ok(OriginCheck::SameOrigin);
        }
        if self.config.allow_origins.iter().any(|o| o == "*" || o.eq_ignore_ascii_case(origin)) {
            return Ok(OriginCheck::Allowed);
        }
        Err(Refusal::Origin(origin.to_string()))
    }

    fn check_body_type(&self, method: &Method, content_type: Option<&str>) -> Result<(), Refusal> {
        if *method != Method::POST {
            return Ok(());
        }
        match content_type {
            Some(t) if is_accepted_body_type(t) => Ok(()),
            other => Err(Refusal::ContentType(other.map(str::to_string))),
        }
    }

    /// Whether a request needs nothing from the guard: no `Origin`, an accepted `Host`, and
    /// a POST body type it accepts. The lookup fast path answers only such requests.
    pub fn is_plain(&self, method: &Method, host: Option<&[u8]>, origin: Option<&[u8]>, content_type: Option<&[u8]>) -> bool {
        let (Ok(host), Ok(content_type)) = (host.map(std::str::from_utf8).transpose(), content_type.map(std::str::from_utf8).transpose()) else { return false };
        origin.is_none() && self.check_host(host).is_ok() && self.check_body_type(method, content_type).is_ok()
    }

    fn cors_headers(&self, origin: &str, headers: &mut HeaderMap) {
        if let Ok(v) = HeaderValue::from_str(origin) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
            headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The middleware: refuses what the guard refuses, answers CORS preflights, adds CORS
/// headers for allowed origins, and turns a body-too-large rejection into ksqlDB's error.
pub async fn guard(State(guard): State<Arc<HttpGuard>>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host = header_str(headers, header::HOST).map(str::to_string).or_else(|| req.uri().authority().map(|a| a.to_string()));
    let origin = header_str(headers, header::ORIGIN).map(str::to_string);
    if let Err(r) = guard.check_host(host.as_deref()) {
        return ApiError::from(r).into_response();
    }
    let cors = match guard.check_origin(origin.as_deref(), host.as_deref()) {
        Ok(c) => c,
        Err(r) => return ApiError::from(r).into_response(),
    };
    if req.method() == Method::OPTIONS && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        let h = resp.headers_mut();
        if let Some(o) = &origin {
            guard.cors_headers(o, h);
        }
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, OPTIONS"));
        let asked = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned().unwrap_or(HeaderValue::from_static("content-type, accept"));
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked);
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        return resp;
    }
    if let Err(r) = guard.check_body_type(req.method(), header_str(headers, header::CONTENT_TYPE)) {
        return ApiError::from(r).into_response();
    }
    let mut resp = next.run(req).await;
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE
        && !resp.headers().get(header::CONTENT_TYPE).is_some_and(|t| t.as_bytes().starts_with(b"application/json"))
    {
        resp = ApiError::generic(
            StatusCode::PAYLOAD_TOO_LARGE,
            41300,
            format!("the request body is larger than the {}-byte limit; send less per request (for records, several smaller requests)", guard.max_body_bytes()),
        )
        .into_response();
    }
    if cors == OriginCheck::Allowed
        && let Some(o) = &origin
    {
        guard.cors_headers(o, resp.headers_mut());
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(origins: &[&str]) -> Arc<HttpGuard> {
        let config =
            GuardConfig { allow_origins: origins.iter().map(|s| s.to_string()).collect(), allowed_hosts: vec!["eddy.internal".into()], max_body_bytes: 1 };
        HttpGuard::new(config, "127.0.0.1:8088".parse().unwrap())
    }

    #[test]
    fn json_and_delimited_bodies_pass_and_browser_simple_types_do_not() {
        let g = guard(&[]);
        for ok in
            ["application/json", "application/json; charset=utf-8", "application/vnd.ksql.v1+json", "application/vnd.ksqlapi.delimited.v1", "Application/JSON"]
        {
            assert!(g.check_body_type(&Method::POST, Some(ok)).is_ok(), "{ok}");
        }
        for bad in [None, Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("multipart/form-data; boundary=x"), Some("application/jsonp")] {
            assert!(g.check_body_type(&Method::POST, bad).is_err(), "{bad:?}");
        }
        assert!(g.check_body_type(&Method::GET, None).is_ok());
    }

    #[test]
    fn only_loopback_hosts_reach_a_loopback_listener() {
        let g = guard(&[]);
        for ok in ["127.0.0.1:8088", "localhost:8088", "LOCALHOST", "[::1]:8088", "127.0.0.2", "api.localhost:1", "eddy.internal:8088"] {
            assert!(g.check_host(Some(ok)).is_ok(), "{ok}");
        }
        for bad in ["attacker.example:8088", "attacker.example", "10.0.0.1:8088", "localhost.attacker.example"] {
            assert!(g.check_host(Some(bad)).is_err(), "{bad}");
        }
        let open = HttpGuard::new(GuardConfig::default(), "0.0.0.0:8088".parse().unwrap());
        assert!(open.check_host(Some("attacker.example")).is_ok(), "no Host check when listening on all interfaces");
    }

    #[test]
    fn other_origins_need_the_allow_list_and_the_own_origin_does_not() {
        let g = guard(&["https://console.example"]);
        assert_eq!(g.check_origin(None, Some("127.0.0.1:8088")).unwrap(), OriginCheck::SameOrigin);
        assert_eq!(g.check_origin(Some("http://127.0.0.1:8088"), Some("127.0.0.1:8088")).unwrap(), OriginCheck::SameOrigin);
        assert_eq!(g.check_origin(Some("https://console.example"), Some("127.0.0.1:8088")).unwrap(), OriginCheck::Allowed);
        assert!(g.check_origin(Some("http://attacker.example"), Some("127.0.0.1:8088")).is_err());
        assert!(g.check_origin(Some("null"), Some("127.0.0.1:8088")).is_err());
        assert_eq!(guard(&["*"]).check_origin(Some("http://x.example"), None).unwrap(), OriginCheck::Allowed);
    }

    #[test]
    fn the_fast_path_takes_only_plain_requests() {
        let g = guard(&[]);
        assert!(g.is_plain(&Method::POST, Some(b"127.0.0.1:1"), None, Some(b"application/json")));
        assert!(!g.is_plain(&Method::POST, Some(b"127.0.0.1:1"), Some(b"http://127.0.0.1:1"), Some(b"application/json")));
        assert!(!g.is_plain(&Method::POST, Some(b"attacker.example"), None, Some(b"application/json")));
        assert!(!g.is_plain(&Method::POST, Some(b"127.0.0.1:1"), None, Some(b"text/plain")));
        assert!(!g.is_plain(&Method::POST, Some(b"127.0.0.1:1"), None, None));
    }
}
