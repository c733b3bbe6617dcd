//! Background threads of the log: the flusher (fsyncs `flush='interval'` partitions on
//! time) and the cleaner (retention and compaction). They hold a weak reference and stop
//! when the log is dropped or `stop` is called.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::cleaner;
use super::{FlushPolicy, Log};

/// Handles to the background threads; stops them when dropped.
pub struct Maintenance {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Maintenance {
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Maintenance {
    fn drop(&mut self) {
        self.stop();
    }
}

fn sleep_unless_stopped(stop: &AtomicBool, d: Duration) -> bool {
    let deadline = Instant::now() + d;
    while Instant::now() < deadline {
        if stop.load(Ordering::Acquire) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5).min(d));
    }
    !stop.load(Ordering::Acquire)
}

/// Starts the flusher and the cleaner; the cleaner runs every `cleaner_interval`.
pub fn start(log: &Arc<Log>, cleaner_interval: Duration) -> Maintenance {
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    let weak: Weak<Log> = Arc::downgrade(log);
    let s = stop.clone();
    threads.push(
        std::thread::Builder::new()
            .name("eddy-flusher".into())
            .spawn(move || {
                while sleep_unless_stopped(&s, Duration::from_millis(5)) {
                    let Some(log) = weak.upgrade() else { return };
                    for t in log.topics() {
                        if !matches!(t.config().flush, FlushPolicy::Interval(_)) {
                            continue;
                        }
                        for p in t.partitions() {
                            if let Err(e) = p.flush_if_due() {
                                tracing::error!(topic = t.name(), partition = p.id(), "background flush failed: {e}");
                            }
                        }
                    }
                }
            })
            .expect("spawn flusher thread"),
    );
    let weak: Weak<Log> = Arc::downgrade(log);
    let s = stop.clone();
    threads.push(
        std::thread::Builder::new()
            .name("eddy-cleaner".into())
            .spawn(move || {
                // (topic, partition) -> (sealed segment count, last compaction time).
                let mut compacted: HashMap<(String, i32), (usize, Instant)> = HashMap::new();
                while sleep_unless_stopped(&s, cleaner_interval) {
                    let Some(log) = weak.upgrade() else { return };
                    let now = chrono::Utc::now().timestamp_millis();
                    for t in log.topics() {
                        for p in t.partitions() {
                            if let Err(e) = p.apply_retention(now) {
                                tracing::error!(topic = t.name(), partition = p.id(), "retention failed: {e}");
                            }
                            if !t.config().cleanup.compact {
                                continue;
                            }
                            let key = (t.name().to_string(), p.id());
                            let sealed = p.segment_count().saturating_sub(1);
                            let due = match compacted.get(&key) {
                                None => true,
                                Some((n, at)) => *n != sealed || at.elapsed() > Duration::from_secs(60),
                            };
                            if !due || sealed == 0 {
                                continue;
                            }
                            match cleaner::compact(p, now) {
                                Ok(stats) => {
                                    if stats.records_removed > 0 {
                                        tracing::debug!(topic = t.name(), partition = p.id(), removed = stats.records_removed, "compacted");
                                    }
                                    // The count seen before compacting: a segment sealed while
                                    // this pass ran makes the next pass due.
                                    compacted.insert(key, (sealed, Instant::now()));
                                }
                                Err(e) => tracing::error!(topic = t.name(), partition = p.id(), "compaction failed: {e}"),
                            }
                        }
                    }
                }
            })
            .expect("spawn cleaner thread"),
    );
    Maintenance { stop, threads }
}
