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
//! Shutdown: stop accepting, ask every open connection to finish its in-flight requests
//! and close (HTTP/1.1 graceful close, HTTP/2 GOAWAY), wait for them, then join the threads.

use std::net::SocketAddr;
use std::thread::JoinHandle;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::AppState;
use super::lookup_connection::{self, Outcome, until_stopped};
use super::rewound_stream::RewoundStream;

/// How long open connections get to finish their requests at shutdown.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// The threads serving HTTP connections.
pub struct HttpWorkers {
    senders: Vec<mpsc::UnboundedSender<std::net::TcpStream>>,
    threads: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl HttpWorkers {
    /// Starts `count` (at least one) worker threads, each serving lookups against `state`
    /// and everything else with `router`.
    pub fn start(count: usize, state: AppState, router: Router) -> std::io::Result<HttpWorkers> {
        let (stop, stopped) = watch::channel(false);
        let mut senders = Vec::new();
        let mut threads = Vec::new();
        for i in 0..count.max(1) {
            // The runtime runs on the thread below; its own threads are only the blocking pool.
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().thread_name(format!("eddy-http-{i}-blocking")).build()?;
            let (tx, rx) = mpsc::unbounded_channel();
            let (state, router, stopped) = (state.clone(), router.clone(), stopped.clone());
            let thread =
                std::thread::Builder::new().name(format!("eddy-http-{i}")).spawn(move || rt.block_on(serve_connections(rx, state, router, stopped)))?;
            senders.push(tx);
            threads.push(thread);
        }
        Ok(HttpWorkers { senders, threads, stop })
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
                        if self.senders[next % self.senders.len()].send(stream).is_err() {
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

/// Out of file descriptors and the like: log, pause briefly, keep accepting.
async fn accept_failed(e: std::io::Error) {
    tracing::warn!("accepting an HTTP connection failed: {e}");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
}

/// One worker: serves each connection it is handed until told to stop, then finishes the
/// open ones gracefully.
async fn serve_connections(mut incoming: mpsc::UnboundedReceiver<std::net::TcpStream>, state: AppState, router: Router, mut stopped: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            stream = incoming.recv() => match stream {
                Some(stream) => {
                    let stream = match TcpStream::from_std(stream) {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::warn!("cannot serve an HTTP connection: {e}");
                            continue;
                        }
                    };
                    let peer = stream.peer_addr().ok();
                    connections.spawn(serve_connection(stream, peer, state.clone(), router.clone(), stopped.clone()));
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
/// not answer, hyper.
async fn serve_connection(mut stream: TcpStream, peer: Option<SocketAddr>, state: AppState, router: Router, mut stopped: watch::Receiver<bool>) {
    let received = match lookup_connection::serve(&mut stream, &state, &mut stopped).await {
        Ok(Outcome::HandOff(received)) => received,
        Ok(Outcome::Closed) => return,
        Err(e) => {
            tracing::debug!("HTTP connection from {peer:?} ended: {e}");
            return;
        }
    };
    let service = TowerToHyperService::new(router);
    let io = TokioIo::new(RewoundStream::new(received, stream));
    // HTTP/1.1, or HTTP/2 when the client opens with its preface (cleartext, prior
    // knowledge: how ksqlDB's Java client streams /query-stream).
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = until_stopped(&mut stopped) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!("HTTP connection from {peer:?} ended: {e}");
    }
}
