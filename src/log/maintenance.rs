//! Background threads of the log: the flusher (fsyncs `flush='interval'` partitions on
//! time) and the cleaner (retention and compaction). They hold a weak reference and stop
//! when the log is dropped or `stop` is called.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::cleaner;
use super::{FlushPolicy, Log};

/// Handles to the background threads; stops them when dropped.
pub struct Maintenance {
    stop: Arc<StopSignal>,
    threads: Vec<JoinHandle<()>>,
}

impl Maintenance {
    pub fn stop(&mut self) {
        self.stop.raise();
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

/// Tells the threads to stop, waking them from their sleep at once. The threads sleep
/// for their whole period rather than polling a flag: on a busy machine every wake-up
/// can preempt a thread serving requests.
#[derive(Default)]
struct StopSignal {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl StopSignal {
    fn raise(&self) {
        *self.stopped.lock() = true;
        self.wake.notify_all();
    }

    /// Sleeps for `d`; false when stopping (at once if already stopped).
    fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let mut stopped = self.stopped.lock();
        while !*stopped {
            if self.wake.wait_until(&mut stopped, deadline).timed_out() {
                break;
            }
        }
        !*stopped
    }
}

/// How often the flusher looks for partitions due a sync: a tenth of the shortest
/// `flush.ms` of the topics that flush on an interval (so a sync is at most that late),
/// between 5 and 100 ms.
fn flusher_period(log: &Log) -> Duration {
    let shortest = log
        .topics()
        .iter()
        .filter_map(|t| match t.config().flush {
            FlushPolicy::Interval(ms) => Some(ms),
            _ => None,
        })
        .min();
    Duration::from_millis(shortest.map_or(100, |ms| (ms / 10).clamp(5, 100)))
}

/// (topic, partition) -> (sealed segment count, last compaction time).
pub type Compacted = HashMap<(String, i32), (usize, Instant)>;

/// One pass of the cleaner over every partition: retention, purging of what every reader
/// committed (for `purge_committed` topics), and compaction when due.
pub fn clean(log: &Log, now: i64, compacted: &mut Compacted) {
    for t in log.topics() {
        for p in t.local_partitions() {
            if let Err(e) = p.apply_retention(now) {
                tracing::error!(topic = t.name(), partition = p.id(), "retention failed: {e}");
            }
            if t.config().purge_committed
                && let Some(committed) = log.offsets().min_committed(t.name(), p.id())
                && let Err(e) = p.purge_below(committed)
            {
                tracing::error!(topic = t.name(), partition = p.id(), "purging committed records failed: {e}");
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
                    // The count seen before compacting: a segment sealed while this pass ran
                    // makes the next pass due.
                    compacted.insert(key, (sealed, Instant::now()));
                }
                Err(e) => tracing::error!(topic = t.name(), partition = p.id(), "compaction failed: {e}"),
            }
        }
    }
}

/// Starts the flusher and the cleaner; the cleaner runs every `cleaner_interval`.
pub fn start(log: &Arc<Log>, cleaner_interval: Duration) -> Maintenance {
    let stop = Arc::new(StopSignal::default());
    let mut threads = Vec::new();
    if log.cluster().is_some() {
        // The cluster's brokers flush, retain and compact its topics.
        return Maintenance { stop, threads };
    }
    let weak: Weak<Log> = Arc::downgrade(log);
    let s = stop.clone();
    threads.push(
        std::thread::Builder::new()
            .name("eddy-flusher".into())
            .spawn(move || {
                let mut period = Duration::from_millis(5);
                while s.sleep(period) {
                    let Some(log) = weak.upgrade() else { return };
                    period = flusher_period(&log);
                    for t in log.topics() {
                        if !matches!(t.config().flush, FlushPolicy::Interval(_)) {
                            continue;
                        }
                        for p in t.local_partitions() {
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
                let mut compacted = Compacted::new();
                while s.sleep(cleaner_interval) {
                    let Some(log) = weak.upgrade() else { return };
                    clean(&log, chrono::Utc::now().timestamp_millis(), &mut compacted);
                }
            })
            .expect("spawn cleaner thread"),
    );
    Maintenance { stop, threads }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::TopicConfig;

    #[test]
    fn stopping_wakes_a_sleeping_thread_at_once() {
        let stop = Arc::new(StopSignal::default());
        let s = stop.clone();
        let sleeper = std::thread::spawn(move || {
            let started = Instant::now();
            let kept_going = s.sleep(Duration::from_secs(600));
            (kept_going, started.elapsed())
        });
        std::thread::sleep(Duration::from_millis(50));
        stop.raise();
        let (kept_going, slept) = sleeper.join().unwrap();
        assert!(!kept_going);
        assert!(slept < Duration::from_secs(60), "slept {slept:?} after being told to stop");
        assert!(!stop.sleep(Duration::from_secs(600)), "a stopped signal still sleeps");
        assert!(StopSignal::default().sleep(Duration::from_millis(1)), "an unraised signal stops");
    }

    #[test]
    fn the_flusher_looks_ten_times_per_shortest_flush_interval() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), TopicConfig::default()).unwrap();
        assert_eq!(flusher_period(&log), Duration::from_millis(100), "no interval topics");
        let every = |ms| TopicConfig { flush: FlushPolicy::Interval(ms), ..TopicConfig::default() };
        log.create_topic("slow", 1, every(5000)).unwrap();
        assert_eq!(flusher_period(&log), Duration::from_millis(100));
        log.create_topic("fast", 1, every(200)).unwrap();
        assert_eq!(flusher_period(&log), Duration::from_millis(20));
        log.create_topic("fastest", 1, every(1)).unwrap();
        assert_eq!(flusher_period(&log), Duration::from_millis(5));
    }

    #[test]
    fn the_cleaner_purges_what_every_reader_committed_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), TopicConfig::default()).unwrap();
        let cfg = TopicConfig { segment_bytes: 2048, purge_committed: true, retention_ms: None, flush: FlushPolicy::Never, ..TopicConfig::default() };
        let t = log.create_topic("_eddy_q_repartition", 1, cfg).unwrap();
        let p = t.local_partition(0).unwrap();
        for i in 0..60 {
            let mut b = crate::log::BatchBuilder::default();
            b.push(i, Some(b"k"), Some(&[b'x'; 100]), &[]);
            p.append(b.finish()).unwrap();
        }
        let segments = p.segment_count();
        let mut compacted = Compacted::new();
        clean(&log, chrono::Utc::now().timestamp_millis(), &mut compacted);
        assert_eq!(p.segment_count(), segments, "nothing is purged before any reader committed");
        log.offsets().commit("reader", &[("_eddy_q_repartition", 0, 40, "")]).unwrap();
        log.offsets().commit("slow-reader", &[("_eddy_q_repartition", 0, 25, "")]).unwrap();
        clean(&log, chrono::Utc::now().timestamp_millis(), &mut compacted);
        let start = p.start_offset();
        assert!(start > 0 && start <= 25, "purged up to the slowest reader: {start}");
        log.offsets().commit("slow-reader", &[("_eddy_q_repartition", 0, 60, "")]).unwrap();
        clean(&log, chrono::Utc::now().timestamp_millis(), &mut compacted);
        assert!(p.start_offset() > start && p.start_offset() <= 40, "{}", p.start_offset());
    }
}
