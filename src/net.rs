//! Limits the network listeners (HTTP and Kafka) share: how many connections one listener
//! holds open, and the bytes of requests buffered in memory at once. A client that would
//! go past a limit gets a clear refusal (or waits), so no number of slow, idle or greedy
//! clients can exhaust the server's file descriptors or memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Connections open on one listener, up to a maximum.
#[derive(Debug)]
pub struct ConnectionLimit {
    listener: &'static str,
    max: usize,
    open: AtomicUsize,
    refused: AtomicU64,
}

/// One open connection; the slot is given back when it is dropped.
#[derive(Debug)]
pub struct ConnectionSlot(Arc<ConnectionLimit>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The process's listeners' limits, for `/metrics` (each registers itself).
static LISTENERS: parking_lot::Mutex<Vec<std::sync::Weak<ConnectionLimit>>> = parking_lot::Mutex::new(Vec::new());

impl ConnectionLimit {
    pub fn new(listener: &'static str, max: usize) -> Arc<ConnectionLimit> {
        let limit = Arc::new(ConnectionLimit { listener, max: max.max(1), open: AtomicUsize::new(0), refused: AtomicU64::new(0) });
        let mut all = LISTENERS.lock();
        all.retain(|l| l.strong_count() > 0);
        all.push(Arc::downgrade(&limit));
        limit
    }

    /// The listeners of this process that are still open.
    pub fn all() -> Vec<Arc<ConnectionLimit>> {
        LISTENERS.lock().iter().filter_map(std::sync::Weak::upgrade).collect()
    }

    /// The listener's name (`http`, `kafka`).
    pub fn listener(&self) -> &'static str {
        self.listener
    }

    /// A slot for a new connection, or `None` when the listener is full (the refusal is
    /// counted and logged, at most once per thousand).
    pub fn try_acquire(self: &Arc<Self>) -> Option<ConnectionSlot> {
        let taken = self.open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.max).then_some(n + 1)).is_ok();
        if taken {
            return Some(ConnectionSlot(self.clone()));
        }
        let refused = self.refused.fetch_add(1, Ordering::Relaxed);
        if refused.is_multiple_of(1000) {
            tracing::warn!(
                listener = self.listener,
                max = self.max,
                refused = refused + 1,
                "refusing connections: the listener holds its maximum number of open connections"
            );
        }
        None
    }

    pub fn max(&self) -> usize {
        self.max
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Connections refused so far for being over the limit.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// Timeouts of one listener's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionTimeouts {
    /// A connection with no request in flight and nothing received for this long is closed.
    pub idle: Duration,
    /// Once the first byte of a request arrived, the whole request head (HTTP) or frame
    /// (Kafka) must arrive within this.
    pub request: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_refused_at_the_limit_and_given_back_on_drop() {
        let limit = ConnectionLimit::new("test", 2);
        let a = limit.try_acquire().unwrap();
        let _b = limit.try_acquire().unwrap();
        assert!(limit.try_acquire().is_none());
        assert_eq!(limit.refused(), 1);
        drop(a);
        assert_eq!(limit.open(), 1);
        assert!(limit.try_acquire().is_some());
    }
}
