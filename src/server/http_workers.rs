//! HTTP connections served on a few threads, each running its own single-threaded runtime.
//!
//! The accept loop runs on the main runtime and hands each accepted connection to a worker
//! thread in turn; the worker runs the connection's HTTP/1.1 requests to completion on its
//! own `current_thread` runtime. A keep-alive connection's requests therefore never move
//! between threads, and no worker wakes another: on the shared multi-threaded runtime a
//! key lookup spent about a third of its CPU in parking, waking and stealing between
//! workers (futex, condvar and eventfd calls), more than in RocksDB.
//!
//! Each connection is first served by `lookup_connection`, which answers key lookups
//! itself, and moves to hyper and the axum router at the first request it does not answer
//! (an HTTP/2 connection moves at once).
//!
//! Limits: at most `max_connections` connections are open at once (one more is answered
//! with a 503 and closed); a request head must arrive whole within the request timeout of
//! its first byte (slow clients cannot hold a connection by trickling bytes); a connection
//! with no request in flight and no bytes moving for the idle timeout is closed.
//!
//! Shutdown: stop accepting, ask every open connection to finish its in-flight requests
//! and close (HTTP/1.1 graceful close, HTTP/2 GOAWAY), wait for them, then join the threads.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

use super::AppState;
use super::idle::{Activity, TrackedBody};
use super::lookup_connection::{self, Outcome, until_stopped};
use super::rewound_stream::RewoundStream;
use crate::net::{ConnectionLimit, ConnectionSlot, ConnectionTimeouts};

/// How long open connections get to finish their requests at shutdown.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// An accepted connection and its slot under the connection limit.
type Accepted = (std::net::TcpStream, ConnectionSlot);

/// The threads serving HTTP connections.
pub struct HttpWorkers {
    senders: Vec<mpsc::UnboundedSender<Accepted>>,
    threads: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    limit: Arc<ConnectionLimit>,
}

impl HttpWorkers {
    /// Starts `count` (at least one) worker threads, each serving lookups against `state`
    /// and everything else with `router`.
    pub fn start(count: usize, state: AppState, router: Router, limit: Arc<ConnectionLimit>, timeouts: ConnectionTimeouts) -> std::io::Result<HttpWorkers> {
        let (stop, stopped) = watch::channel(false);
        let mut senders = Vec::new();
        let mut threads = Vec::new();
        for i in 0..count.max(1) {
            // The runtime runs on the thread below; its own threads are only the blocking pool.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_name(format!("eddy-http-{i}-blocking"))
                .thread_stack_size(crate::sql::ast::STATEMENT_THREAD_STACK_BYTES)
                .build()?;
            let (tx, rx) = mpsc::unbounded_channel();
            let (state, router, stopped) = (state.clone(), router.clone(), stopped.clone());
            let thread = std::thread::Builder::new()
                .name(format!("eddy-http-{i}"))
                .stack_size(crate::sql::ast::STATEMENT_THREAD_STACK_BYTES)
                .spawn(move || rt.block_on(serve_connections(rx, state, router, stopped, timeouts)))?;
            senders.push(tx);
            threads.push(thread);
        }
        Ok(HttpWorkers { senders, threads, stop, limit })
    }

    /// Accepts connections until `shutdown` completes, handing them to the workers in turn;
    /// then closes every connection gracefully and waits for the workers to end.
    pub async fn run(self, listener: TcpListener, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut next = 0usize;
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let Some(slot) = self.limit.try_acquire() else {
                            tokio::spawn(refuse(stream, self.limit.max()));
                            continue;
                        };
                        // Small responses go out at once rather than waiting for an ACK.
                        let _ = stream.set_nodelay(true);
                        // Registered again with the worker's own reactor, so readiness
                        // events never pass through this runtime's threads.
                        let stream = match stream.into_std() {
                            Ok(s) => s,
                            Err(e) => {
                                tracing::warn!("cannot hand an HTTP connection to a worker: {e}");
                                continue;
                            }
                        };
                        if self.senders[next % self.senders.len()].send((stream, slot)).is_err() {
                            tracing::error!("an HTTP worker thread has stopped; closing the connection");
                        }
                        next = next.wrapping_add(1);
                    }
                    Err(e) => accept_failed(e).await,
                },
            }
        }
        drop(listener);
        let _ = self.stop.send(true);
        drop(self.senders);
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

/// Answers a connection over the limit with ksqlDB's JSON error (503) and closes it.
async fn refuse(mut stream: TcpStream, max: usize) {
    let body = serde_json::json!({
        "@type": "generic_error",
        "error_code": 50300,
        "message": format!("the server holds its maximum of {max} HTTP connections; retry later, reuse connections (keep-alive), or raise \
            --http-max-connections"),
    })
    .to_string();
    let response =
        format!("HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}", body.len());
    let send = async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
        // Read what the client sent, so closing does not reset the connection before it
        // reads the answer.
        let mut sink = [0u8; 4096];
        while matches!(tokio::io::AsyncReadExt::read(&mut stream, &mut sink).await, Ok(n) if n > 0) {}
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), send).await;
}

/// Out of file descriptors and the like: log, pause briefly, keep accepting.
async fn accept_failed(e: std::io::Error) {
    tracing::warn!("accepting an HTTP connection failed: {e}");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
}

/// One worker: serves each connection it is handed until told to stop, then finishes the
/// open ones gracefully.
async fn serve_connections(
    mut incoming: mpsc::UnboundedReceiver<Accepted>,
    state: AppState,
    router: Router,
    mut stopped: watch::Receiver<bool>,
    timeouts: ConnectionTimeouts,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = incoming.recv() => match accepted {
                Some((stream, slot)) => {
                    let stream = match TcpStream::from_std(stream) {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::warn!("cannot serve an HTTP connection: {e}");
                            continue;
                        }
                    };
                    let peer = stream.peer_addr().ok();
                    connections.spawn(serve_connection(stream, peer, state.clone(), router.clone(), stopped.clone(), timeouts, slot));
                }
                None => break,
            },
            _ = stopped.changed() => break,
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    // A connection still busy after the grace period (a response that never ends) is
    // cut when the runtime drops.
    let finish = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, finish).await.is_err() {
        tracing::warn!("HTTP connections still open {SHUTDOWN_GRACE:?} after shutdown began; closing them");
    }
}

/// Serves one connection: lookups on the fast path, then, from the first request it does
/// not answer, hyper. The connection's slot is given back when it ends.
async fn serve_connection(
    mut stream: TcpStream,
    peer: Option<SocketAddr>,
    state: AppState,
    router: Router,
    mut stopped: watch::Receiver<bool>,
    timeouts: ConnectionTimeouts,
    _slot: ConnectionSlot,
) {
    let received = match lookup_connection::serve(&mut stream, &state, &mut stopped, timeouts).await {
        Ok(Outcome::HandOff(received)) => received,
        Ok(Outcome::Closed) => return,
        Err(e) => {
            tracing::debug!("HTTP connection from {peer:?} ended: {e}");
            return;
        }
    };
    let activity = Activity::new();
    let tracked = activity.clone();
    // Every request counts as in flight until its response body is sent or dropped.
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let in_flight = tracked.begin();
        let router = router.clone();
        async move {
            let resp = router.oneshot(req.map(axum::body::Body::new)).await?;
            Ok::<_, std::convert::Infallible>(resp.map(|b| axum::body::Body::new(TrackedBody::new(b, in_flight))))
        }
    });
    let io = TokioIo::new(RewoundStream::new(received, stream).tracked(activity.clone()));
    // HTTP/1.1, or HTTP/2 when the client opens with its preface (cleartext, prior
    // knowledge: how ksqlDB's Java client streams /query-stream).
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // A request head must arrive within the request timeout (from the connection's start
    // or the previous response).
    builder.http1().timer(TokioTimer::new()).header_read_timeout(timeouts.request);
    builder.http2().timer(TokioTimer::new()).keep_alive_interval(Some(timeouts.idle / 2)).keep_alive_timeout(timeouts.request);
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = until_stopped(&mut stopped) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
        _ = activity.idle(timeouts.idle) => {
            tracing::debug!("closing idle HTTP connection from {peer:?}");
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!("HTTP connection from {peer:?} ended: {e}");
    }
}
