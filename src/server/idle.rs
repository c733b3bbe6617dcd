//! When an HTTP connection is idle: nothing received or sent for a while and no request in
//! flight (a push query whose response is still open counts as in flight, however quiet).
//! Idle connections are closed, so idle clients cannot hold file descriptors for ever.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};

/// What one connection is doing.
#[derive(Debug)]
pub struct Activity {
    since: Instant,
    /// Milliseconds after `since` of the last byte received or sent.
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity { since: Instant::now(), last_ms: AtomicU64::new(0), in_flight: AtomicUsize::new(0) })
    }

    /// Bytes were received or sent now.
    pub fn touch(&self) {
        self.last_ms.store(self.since.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.since.elapsed().saturating_sub(last)
    }

    /// A request has begun; it ends when the guard (held by its response body) is dropped.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// Completes once the connection has been idle for `limit`.
    pub async fn idle(&self, limit: Duration) {
        loop {
            let idle = self.idle_for();
            if self.in_flight.load(Ordering::Acquire) == 0 && idle >= limit {
                return;
            }
            let wait = if idle >= limit { limit } else { limit - idle };
            tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
        }
    }
}

/// One request in flight.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request in flight until it is sent or dropped.
pub struct TrackedBody {
    inner: Body,
    _in_flight: InFlight,
}

impl TrackedBody {
    pub fn new(inner: Body, in_flight: InFlight) -> TrackedBody {
        TrackedBody { inner, _in_flight: in_flight }
    }
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_idle_only_with_no_request_in_flight() {
        let a = Activity::new();
        let req = a.begin();
        let idle = tokio::spawn({
            let a = a.clone();
            async move { a.idle(Duration::from_secs(5)).await }
        });
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!idle.is_finished(), "a request in flight keeps the connection open");
        drop(req);
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(idle.is_finished());
    }
}
