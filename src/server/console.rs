//! The web console at `/console/`: the files `build.rs` embedded from `web/dist` (gzipped
//! once, on first request, for browsers that take it), or, when the binary was built
//! without them, a page saying how to build the console. A browser asking for `/` is sent
//! to the console; API clients still get ksqlDB's redirect to `/info`.

use std::io::Write;
use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

include!(concat!(env!("OUT_DIR"), "/console_files.rs"));

/// Where the console is served.
pub const CONSOLE: &str = "/console/";

/// What the browser is told about the console's pages: only this origin's scripts, styles
/// (CodeMirror adds its own style elements), and requests.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'";

const NOT_BUILT: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Eddy console: not built</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:44em;margin:3em auto;padding:0 1em}code,pre{background:#f0f2f5;padding:2px 4px}</style>
</head><body>
<h1>The Eddy console is not in this build</h1>
<p>This server was built with <code>cargo build</code> alone, which leaves out the web console's files
(<code>web/dist</code>, built from TypeScript with Node.js and npm).</p>
<p>To build it into the binary, run from the repository:</p>
<pre>make server</pre>
<p>(it installs Node.js and npm when missing, runs <code>scripts/build-web.sh</code>, then builds and starts the server),
or <code>scripts/build-web.sh</code> followed by <code>cargo build</code>.</p>
<p>Everything the console shows is on the REST API too: <code>POST /ksql</code>, <code>POST /query-stream</code>,
<code>GET /topics</code>, <code>GET /metrics</code>, and <code>eddy shell</code> is the interactive SQL shell.</p>
</body></html>
"#;

/// Whether the binary carries the console (built with `web/dist` present).
pub fn is_built() -> bool {
    !CONSOLE_FILES.is_empty()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// An embedded file, its gzip and its entity tag (made once).
struct Prepared {
    gzip: Option<Vec<u8>>,
    etag: HeaderValue,
}

fn prepared(index: usize) -> &'static Prepared {
    static PREPARED: OnceLock<Vec<OnceLock<Prepared>>> = OnceLock::new();
    let all = PREPARED.get_or_init(|| CONSOLE_FILES.iter().map(|_| OnceLock::new()).collect());
    all[index].get_or_init(|| {
        let body = CONSOLE_FILES[index].1;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let gzip = encoder.write_all(body).and_then(|_| encoder.finish()).ok().filter(|g| g.len() < body.len());
        let hash = crc32c::crc32c(body);
        let etag = HeaderValue::from_str(&format!("\"{hash:08x}-{:x}\"", body.len())).unwrap_or(HeaderValue::from_static("\"0\""));
        Prepared { gzip, etag }
    })
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).any(|v| v.split(',').any(|e| e.trim().starts_with("gzip")))
}

fn page_headers(response: &mut Response, content_type: &'static str) {
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    if !is_built() {
        let mut response = (StatusCode::OK, NOT_BUILT).into_response();
        page_headers(&mut response, "text/html; charset=utf-8");
        response.headers_mut().insert("x-eddy-console", HeaderValue::from_static("not-built"));
        return response;
    }
    let path = if path.is_empty() { "index.html" } else { path };
    let Some(index) = CONSOLE_FILES.iter().position(|(p, _)| *p == path) else {
        return (StatusCode::NOT_FOUND, format!("the console has no file {path}; open {CONSOLE}")).into_response();
    };
    let body = CONSOLE_FILES[index].1;
    let prepared = prepared(index);
    if headers.get(header::IF_NONE_MATCH).is_some_and(|tag| tag == prepared.etag) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        response.headers_mut().insert(header::ETAG, prepared.etag.clone());
        return response;
    }
    let mut response = match &prepared.gzip {
        Some(gzip) if accepts_gzip(headers) => {
            let mut r = gzip.clone().into_response();
            r.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            r
        }
        _ => body.into_response(),
    };
    page_headers(&mut response, content_type(path));
    let h = response.headers_mut();
    h.insert(header::ETAG, prepared.etag.clone());
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    response
}

/// GET /console/
pub async fn index(headers: HeaderMap) -> Response {
    serve("", &headers)
}

/// GET /console/{*path}
pub async fn file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

/// GET /console: the console's folder.
pub async fn to_console() -> Response {
    (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, CONSOLE)]).into_response()
}

/// Whether a request for `/` comes from a browser (which asks for HTML first).
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|a| a.to_str().ok()).is_some_and(|a| a.split(',').any(|t| t.trim().starts_with("text/html")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_are_told_apart_from_api_clients_by_accept() {
        let mut h = HeaderMap::new();
        assert!(!wants_html(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8"));
        assert!(wants_html(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!wants_html(&h));
    }

    #[test]
    fn gzip_is_sent_only_to_clients_that_accept_it() {
        let mut h = HeaderMap::new();
        assert!(!accepts_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("br, gzip;q=0.9"));
        assert!(accepts_gzip(&h));
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("x.unknown"), "application/octet-stream");
    }
}
