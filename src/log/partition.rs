//! `PartitionLog`: one ordered, append-only partition made of segments.
//!
//! One writer at a time (a mutex) assigns offsets and appends; any number of readers read
//! concurrently with positional reads. The end offset is published on a `watch` channel
//! so readers (query tasks, push queries, fetches) wait for new data without polling.
//!
//! Durability: under `flush='always'` an append returns only once an fsync covering it has
//! completed, and concurrent appenders share writes and fsyncs (group commit: appenders
//! queue their batches; whoever finds no leader writes the whole queue with one write and
//! one fsync, then hands out the results). Readers then see only durable records. Under `interval` the background flusher syncs; under
//! `never` the operating system does.
//!
//! Failures publish nothing and use up nothing. A group never spans a segment roll, so a
//! failed write or a failed fsync is undone by truncating the active segment back to where
//! the group began and restoring the next offset and the producers' sequence state: the
//! records of the failed group do not exist, neither now nor after a restart, and a
//! client's retry gets the same offsets and sequence numbers. (After a failed fsync the
//! kernel may have dropped the written pages, so nothing written since the last good fsync
//! is trusted, as PostgreSQL and Kafka treat an fsync error.) If even the truncation fails,
//! the partition goes offline for writes — appends are refused with a clear error, reads go
//! on — until a restart recovers it from what is on disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Instant;

use parking_lot::{Condvar, Mutex, RwLock};
use tokio::sync::watch;

use super::LogError;
use super::batch::{self, BatchHeader};
use super::producer::{AbortedTxn, ProducerEntry, ProducerStates, SeqCheck};
use super::segment::{Segment, SegmentMark};
use super::storage::OpenFiles;
use super::topic::{FlushPolicy, TopicConfig};

/// Result of an append: the offsets the batch occupies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    pub base_offset: i64,
    pub last_offset: i64,
    /// True when the batch was a retry of one already stored (idempotent producer).
    pub duplicate: bool,
}

struct Writer {
    active: Arc<Segment>,
    next_offset: i64,
    producers: ProducerStates,
}

/// Where the writer stood before a group was written, to undo the group.
struct GroupMark {
    segment: SegmentMark,
    next_offset: i64,
    /// The producers' state before the group, when the group changes it.
    producers: Option<ProducerStates>,
}

/// A batch queued by `PartitionLog::enqueue`, to be collected with `complete`.
#[derive(Debug)]
#[must_use = "a queued batch's result must be collected with complete()"]
pub struct AppendTicket(u64);

type Queued = (u64, BatchHeader, Vec<u8>);

/// Appends waiting for the group leader, and results not yet collected.
#[derive(Default)]
struct AppendQueue {
    next_ticket: u64,
    leader_active: bool,
    pending: std::collections::VecDeque<Queued>,
    done: std::collections::HashMap<u64, Result<AppendOutcome, LogError>>,
}

/// Sync state: how far the partition is known durable.
struct SyncState {
    /// Offsets below this are fsynced.
    durable: i64,
    in_progress: bool,
    last_sync: Instant,
}

pub struct PartitionLog {
    topic: String,
    id: i32,
    dir: PathBuf,
    config: TopicConfig,
    files: Arc<OpenFiles>,
    segments: RwLock<BTreeMap<i64, Arc<Segment>>>,
    writer: Mutex<Writer>,
    queue: Mutex<AppendQueue>,
    queue_cv: Condvar,
    sync_state: Mutex<SyncState>,
    synced: Condvar,
    start_offset: AtomicI64,
    end_offset: watch::Sender<i64>,
    deleted: AtomicBool,
    /// Why the partition refuses writes, after a failure it could not undo.
    offline: Mutex<Option<String>>,
    /// Bytes of batches appended and read since the partition was opened (for `/metrics`).
    appended_bytes: std::sync::atomic::AtomicU64,
    read_bytes: std::sync::atomic::AtomicU64,
}

fn producer_snapshot_name(base_offset: i64) -> String {
    format!("{base_offset:020}.producers")
}

impl PartitionLog {
    /// Opens (or creates) the partition in `dir` on real files, recovering the active
    /// segment.
    pub fn open(topic: &str, id: i32, dir: &Path, config: TopicConfig) -> Result<PartitionLog, LogError> {
        PartitionLog::open_with(&OpenFiles::os(), topic, id, dir, config)
    }

    /// Opens (or creates) the partition in `dir`, its files reached through `files`,
    /// recovering the active segment.
    pub fn open_with(files: &Arc<OpenFiles>, topic: &str, id: i32, dir: &Path, config: TopicConfig) -> Result<PartitionLog, LogError> {
        std::fs::create_dir_all(dir).map_err(|e| LogError::io(format!("creating {}", dir.display()), e))?;
        let mut bases = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| LogError::io(format!("listing {}", dir.display()), e))? {
            let entry = entry.map_err(|e| LogError::io(format!("listing {}", dir.display()), e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if let Some(base) = name.strip_suffix(".log").and_then(|b| b.parse::<i64>().ok()) {
                bases.push(base);
            }
        }
        bases.sort_unstable();
        let interval = config.index_interval_bytes;
        let mut segments = BTreeMap::new();
        let mut producers = ProducerStates::default();
        let active_base = bases.last().copied();
        // The producer snapshot written when the active segment was created covers all
        // earlier segments; without one, earlier segments' headers are replayed.
        let snapshot = match active_base {
            Some(b) => load_producer_snapshot(dir, b)?,
            None => None,
        };
        let have_snapshot = snapshot.is_some();
        if let Some(s) = snapshot {
            producers = s;
        }
        for &base in &bases {
            let is_active = Some(base) == active_base;
            let seg = Segment::open(files, dir, base, interval, is_active, &mut |b| {
                if is_active || !have_snapshot {
                    producers.record(&b.header, b.control);
                }
            })?;
            if !is_active && !have_snapshot {
                // A sealed segment opened from its index does not report batches; replay
                // its headers for producer state.
                let mut offset = seg.base_offset();
                while offset < seg.next_offset() {
                    let data = seg.read(offset, 1 << 20)?;
                    if data.is_empty() {
                        break;
                    }
                    for b in batch::split_batches(&data) {
                        let h = BatchHeader::parse(b)?;
                        producers.record(&h, batch::control_kind(b));
                        offset = h.last_offset() + 1;
                    }
                }
            }
            segments.insert(base, Arc::new(seg));
        }
        let active = match segments.values().next_back() {
            Some(s) => s.clone(),
            None => {
                let s = Arc::new(Segment::create(files, dir, 0, interval)?);
                segments.insert(0, s.clone());
                s
            }
        };
        let next_offset = active.next_offset();
        let start = segments.values().next().map(|s| s.base_offset()).unwrap_or(0);
        let (end_tx, _) = watch::channel(next_offset);
        Ok(PartitionLog {
            topic: topic.to_string(),
            id,
            dir: dir.to_path_buf(),
            config,
            files: files.clone(),
            segments: RwLock::new(segments),
            writer: Mutex::new(Writer { active, next_offset, producers }),
            queue: Mutex::new(AppendQueue::default()),
            queue_cv: Condvar::new(),
            sync_state: Mutex::new(SyncState { durable: next_offset, in_progress: false, last_sync: Instant::now() }),
            synced: Condvar::new(),
            start_offset: AtomicI64::new(start),
            end_offset: end_tx,
            deleted: AtomicBool::new(false),
            offline: Mutex::new(None),
            appended_bytes: std::sync::atomic::AtomicU64::new(0),
            read_bytes: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn id(&self) -> i32 {
        self.id
    }

    /// The offset the next appended record will get (the high watermark).
    pub fn end_offset(&self) -> i64 {
        *self.end_offset.borrow()
    }

    /// The first offset still stored.
    pub fn start_offset(&self) -> i64 {
        self.start_offset.load(Ordering::Acquire)
    }

    /// A receiver that changes whenever the end offset advances or the topic is deleted.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.end_offset.subscribe()
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    pub(crate) fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Release);
        self.end_offset.send_modify(|_| {});
    }

    /// Why the partition refuses writes, if it does (a failure it could not undo).
    pub fn offline_reason(&self) -> Option<String> {
        self.offline.lock().clone()
    }

    /// The epoch and last sequence this partition holds for an idempotent producer.
    pub fn producer_state(&self, producer_id: i64) -> Option<ProducerEntry> {
        self.writer.lock().producers.get(producer_id).cloned()
    }

    /// Every idempotent producer the partition remembers (DescribeProducers).
    pub fn producers(&self) -> Vec<(i64, ProducerEntry, Option<i64>)> {
        self.writer.lock().producers.active()
    }

    /// Appends one encoded v2 batch, assigning its offsets. Blocking (it may fsync): call
    /// it from a blocking thread, never from an async task directly.
    pub fn append(&self, data: Vec<u8>) -> Result<AppendOutcome, LogError> {
        let ticket = self.enqueue(data)?;
        self.complete(ticket)
    }

    /// Checks a batch and queues it for appending, without waiting: batches are appended in
    /// the order they are queued. Cheap (no I/O), so callers that must keep an order (a
    /// Kafka connection's pipelined produce requests) queue in that order and wait for the
    /// results elsewhere with `complete`.
    pub fn enqueue(&self, data: Vec<u8>) -> Result<AppendTicket, LogError> {
        let header = BatchHeader::parse(&data)?;
        if header.total_len() != data.len() {
            return Err(LogError::Batch(batch::BatchError::BadLength(header.batch_length)));
        }
        batch::verify_crc(&data)?;
        if header.records_count == 0 {
            return Err(LogError::EmptyBatch);
        }
        if self.is_deleted() {
            return Err(LogError::UnknownTopic(self.topic.clone()));
        }
        self.check_online()?;
        self.appended_bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        let mut q = self.queue.lock();
        let ticket = q.next_ticket;
        q.next_ticket += 1;
        q.pending.push_back((ticket, header, data));
        Ok(AppendTicket(ticket))
    }

    /// Bytes of batches appended (queued) and read since the partition was opened.
    pub fn traffic(&self) -> (u64, u64) {
        (self.appended_bytes.load(Ordering::Relaxed), self.read_bytes.load(Ordering::Relaxed))
    }

    fn check_online(&self) -> Result<(), LogError> {
        match self.offline.lock().as_ref() {
            Some(reason) => Err(LogError::PartitionOffline { topic: self.topic.clone(), partition: self.id, reason: reason.clone() }),
            None => Ok(()),
        }
    }

    /// Waits until a queued batch is written (and, under flush='always', fsynced) and
    /// returns its offsets. Blocking.
    pub fn complete(&self, ticket: AppendTicket) -> Result<AppendOutcome, LogError> {
        let ticket = ticket.0;
        // Group append: the first waiter to find no leader writes the queued batches (up to
        // a segment roll) with one write (and, under flush='always', one fsync) and hands
        // each waiter its result.
        let mut q = self.queue.lock();
        loop {
            if let Some(r) = q.done.remove(&ticket) {
                return r;
            }
            if !q.leader_active {
                q.leader_active = true;
                let group = std::mem::take(&mut q.pending);
                drop(q);
                let (results, rest) = self.append_group(group);
                // The next group formed while this one was written and fsynced; batches
                // after a roll go first.
                q = self.queue.lock();
                if !rest.is_empty() {
                    let later = std::mem::take(&mut q.pending);
                    q.pending = rest;
                    q.pending.extend(later);
                }
                q.done.extend(results);
                q.leader_active = false;
                self.queue_cv.notify_all();
                continue;
            }
            self.queue_cv.wait(&mut q);
        }
    }

    /// Writes (and under flush='always' fsyncs and publishes) a group, up to the first
    /// batch that needs a new segment; returns the results and the batches not taken.
    #[allow(clippy::type_complexity)]
    fn append_group(&self, group: std::collections::VecDeque<Queued>) -> (Vec<(u64, Result<AppendOutcome, LogError>)>, std::collections::VecDeque<Queued>) {
        if let Err(e) = self.check_online() {
            return (group.into_iter().map(|(t, _, _)| (t, Err(e.shared()))).collect(), Default::default());
        }
        let (mut results, written, rest, mark) = self.write_group(group);
        if written.is_empty() {
            return (results, rest);
        }
        let synced = match self.config.flush {
            FlushPolicy::Always => self.sync(),
            FlushPolicy::Interval(_) | FlushPolicy::Never => {
                let next = written.iter().map(|(_, o)| o.last_offset + 1).max().unwrap_or(0);
                self.publish(next);
                Ok(())
            }
        };
        match synced {
            Ok(()) => results.extend(written.into_iter().map(|(t, o)| (t, Ok(o)))),
            Err(e) => {
                let group_end = written.iter().map(|(_, o)| o.last_offset + 1).max().unwrap_or(0);
                // No other fsync may run (and publish the group) while it is taken back.
                let published = self.exclusive_of_syncs(|| {
                    if self.end_offset() >= group_end {
                        return true;
                    }
                    tracing::error!(topic = %self.topic, partition = self.id, "fsync failed; the appends of this group are undone: {e}");
                    self.undo_group(mark);
                    false
                });
                if published {
                    // Another caller's fsync covered this group and published it: it is
                    // durable, whatever this fsync said.
                    results.extend(written.into_iter().map(|(t, o)| (t, Ok(o))));
                } else {
                    // Nothing of this group is published and it is taken back, so it
                    // neither becomes visible with a later fsync nor comes back after a
                    // restart.
                    results.extend(written.into_iter().map(|(t, _)| (t, Err(e.shared()))));
                }
            }
        }
        (results, rest)
    }

    /// Writes a group of batches in order (no fsync), stopping before the first batch that
    /// needs a new segment unless it comes first (then the segment rolls before it).
    /// Returns the results decided now (duplicates, refusals, failures), the batches
    /// written, the batches not taken, and the mark to undo the write.
    #[allow(clippy::type_complexity)]
    fn write_group(
        &self,
        mut group: std::collections::VecDeque<Queued>,
    ) -> (Vec<(u64, Result<AppendOutcome, LogError>)>, Vec<(u64, AppendOutcome)>, std::collections::VecDeque<Queued>, Option<GroupMark>) {
        let mut results = Vec::with_capacity(group.len());
        let mut written: Vec<(u64, AppendOutcome)> = Vec::new();
        let mut w = self.writer.lock();
        let mut buf: Vec<u8> = Vec::new();
        let mut mark: Option<GroupMark> = None;
        while let Some((ticket, header, mut data)) = group.pop_front() {
            match w.producers.check(&header, &self.topic, self.id) {
                Err(e) => {
                    results.push((ticket, Err(e)));
                    continue;
                }
                Ok(SeqCheck::Duplicate { base_offset, last_offset }) => {
                    results.push((ticket, Ok(AppendOutcome { base_offset, last_offset, duplicate: true })));
                    continue;
                }
                Ok(SeqCheck::Append) => {}
            }
            let pending = w.active.size() + buf.len() as u64;
            let active_age = chrono::Utc::now().timestamp_millis() - w.active.created_ms();
            if pending > 0 && (pending + data.len() as u64 > self.config.segment_bytes || active_age >= self.config.segment_ms as i64) {
                if !buf.is_empty() {
                    // This group ends here; the rest goes in the next one, after the roll.
                    group.push_front((ticket, header, data));
                    break;
                }
                if let Err(e) = self.roll(&mut w) {
                    tracing::error!(topic = %self.topic, partition = self.id, "rolling a new segment failed: {e}");
                    results.push((ticket, Err(e.shared())));
                    results.extend(group.drain(..).map(|(t, _, _)| (t, Err(e.shared()))));
                    break;
                }
            }
            let m = mark.get_or_insert_with(|| GroupMark { segment: w.active.mark(), next_offset: w.next_offset, producers: None });
            if m.producers.is_none() && (header.has_producer() || header.is_control() || header.is_transactional()) {
                m.producers = Some(w.producers.clone());
            }
            let base = w.next_offset;
            batch::set_base_offset(&mut data, base);
            buf.extend_from_slice(&data);
            let stamped = BatchHeader { base_offset: base, ..header };
            let control = if header.is_control() { batch::control_kind(&data) } else { None };
            w.producers.record(&stamped, control);
            w.next_offset = stamped.last_offset() + 1;
            written.push((ticket, AppendOutcome { base_offset: base, last_offset: w.next_offset - 1, duplicate: false }));
        }
        if !buf.is_empty()
            && let Err(e) = w.active.append(&buf)
        {
            // The segment truncated itself back; the offsets and sequence numbers are
            // given back too.
            if let Some(m) = mark.take() {
                w.next_offset = m.next_offset;
                if let Some(p) = m.producers {
                    w.producers = p;
                }
            }
            results.extend(written.drain(..).map(|(t, _)| (t, Err(e.shared()))));
        }
        drop(w);
        (results, written, group, mark)
    }

    /// Takes back a written group whose fsync failed.
    fn undo_group(&self, mark: Option<GroupMark>) {
        let Some(mark) = mark else { return };
        let mut w = self.writer.lock();
        match w.active.rollback(&mark.segment) {
            Ok(()) => {
                w.next_offset = mark.next_offset;
                if let Some(p) = mark.producers {
                    w.producers = p;
                }
            }
            Err(e) => {
                tracing::error!(topic = %self.topic, partition = self.id, "cannot undo appends after a failed fsync; the partition refuses writes \
                    until the server restarts: {e}");
                *self.offline.lock() = Some(format!("an fsync failed and the appends it covered could not be undone ({e})"));
            }
        }
    }

    /// Makes offsets below `next` visible to readers.
    fn publish(&self, next: i64) {
        self.end_offset.send_if_modified(|e| {
            let grew = *e < next;
            *e = (*e).max(next);
            grew
        });
    }

    /// fsyncs everything written so far and publishes it. Called with `in_progress` set
    /// (or from the flusher, which takes the same flag).
    fn sync_now(&self) -> Result<(), LogError> {
        let (active, upto) = {
            let w = self.writer.lock();
            (w.active.clone(), w.next_offset)
        };
        active.sync()?;
        let mut st = self.sync_state.lock();
        st.last_sync = Instant::now();
        if upto > st.durable {
            st.durable = upto;
        }
        let durable = st.durable;
        drop(st);
        self.publish(durable);
        Ok(())
    }

    /// Seals the active segment and starts a new one at the next offset. Called with
    /// nothing written since the last group was published, so a failure leaves the
    /// active segment as it was.
    fn roll(&self, w: &mut Writer) -> Result<(), LogError> {
        w.active.seal(&self.dir)?;
        write_producer_snapshot(&self.dir, w.next_offset, &w.producers)?;
        let seg = Arc::new(Segment::create(&self.files, &self.dir, w.next_offset, self.config.index_interval_bytes)?);
        self.segments.write().insert(w.next_offset, seg.clone());
        w.active = seg;
        Ok(())
    }

    /// Forces appended data to disk.
    pub fn sync(&self) -> Result<(), LogError> {
        self.exclusive_of_syncs(|| self.sync_now())
    }

    /// Runs `f` while no fsync of this partition runs.
    fn exclusive_of_syncs<T>(&self, f: impl FnOnce() -> T) -> T {
        let mut st = self.sync_state.lock();
        while st.in_progress {
            self.synced.wait(&mut st);
        }
        st.in_progress = true;
        drop(st);
        let r = f();
        let mut st = self.sync_state.lock();
        st.in_progress = false;
        self.synced.notify_all();
        r
    }

    /// For `flush='interval'`: syncs when the interval has passed and there is unsynced
    /// data. Called by the background flusher.
    pub fn flush_if_due(&self) -> Result<(), LogError> {
        let FlushPolicy::Interval(ms) = self.config.flush else {
            return Ok(());
        };
        let next = self.writer.lock().next_offset;
        {
            let st = self.sync_state.lock();
            if st.in_progress || st.durable >= next || (st.last_sync.elapsed().as_millis() as u64) < ms {
                return Ok(());
            }
        }
        self.sync()
    }

    pub fn config(&self) -> &TopicConfig {
        &self.config
    }

    /// The offset of the first record with a timestamp >= `ts`, or None when every record
    /// is older. Blocking.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<i64>, LogError> {
        let segments: Vec<Arc<Segment>> = self.segments.read().values().cloned().collect();
        let end = self.end_offset();
        for seg in segments {
            if let Some(o) = seg.offset_for_timestamp(ts)? {
                return Ok(Some(o).filter(|o| *o < end));
            }
        }
        Ok(None)
    }

    /// Sealed segments (all but the active one), oldest first.
    pub(crate) fn sealed_segments(&self) -> Vec<Arc<Segment>> {
        let segs = self.segments.read();
        let n = segs.len();
        segs.values().take(n.saturating_sub(1)).cloned().collect()
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn files(&self) -> &Arc<OpenFiles> {
        &self.files
    }

    /// Deletes the oldest sealed segments that `retention.ms` / `retention.bytes` allow,
    /// advancing the log start offset. Returns how many were deleted. Blocking.
    pub fn apply_retention(&self, now_ms: i64) -> Result<usize, LogError> {
        if !self.config.cleanup.delete {
            return Ok(0);
        }
        let mut total: u64 = self.size_bytes();
        self.delete_oldest_segments("retention", |seg| {
            let by_time = self.config.retention_ms.is_some_and(|r| seg.max_timestamp() < now_ms - r);
            let by_size = self.config.retention_bytes.is_some_and(|r| total - seg.size() >= r);
            if by_time || by_size {
                total -= seg.size();
            }
            by_time || by_size
        })
    }

    /// Deletes the oldest sealed segments whose records all lie below `offset` (for topics
    /// whose readers have committed past them: `purge_committed`). Blocking.
    pub fn purge_below(&self, offset: i64) -> Result<usize, LogError> {
        self.delete_oldest_segments("purge", |seg| seg.next_offset() <= offset)
    }

    /// Deletes sealed segments from the oldest on while `doomed` says so, advancing the
    /// log start offset. Files are deleted oldest first and deletion stops at the first
    /// failure, so what a restart finds is still one contiguous log.
    fn delete_oldest_segments(&self, why: &str, mut is_doomed: impl FnMut(&Segment) -> bool) -> Result<usize, LogError> {
        let sealed = self.sealed_segments();
        let doomed: Vec<Arc<Segment>> = sealed.into_iter().take_while(|seg| is_doomed(seg)).collect();
        if doomed.is_empty() {
            return Ok(0);
        }
        {
            let mut segs = self.segments.write();
            for seg in &doomed {
                segs.remove(&seg.base_offset());
            }
            let start = segs.values().next().map(|s| s.base_offset()).unwrap_or(0);
            self.start_offset.store(start, Ordering::Release);
        }
        // After the segments lock: appenders take the writer lock before the segments lock.
        self.writer.lock().producers.trim_aborted(self.start_offset());
        for seg in &doomed {
            // A file left behind only means the segment is found again at the next start.
            if let Err(e) = seg.delete_files(&self.dir) {
                tracing::warn!(topic = %self.topic, partition = self.id, "deleting a segment ({why}) failed; it stays until the next start: {e}");
                break;
            }
            match std::fs::remove_file(self.dir.join(producer_snapshot_name(seg.base_offset()))) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(topic = %self.topic, partition = self.id, "deleting a producer snapshot failed: {e}")
                }
            }
        }
        tracing::debug!(topic = %self.topic, partition = self.id, deleted = doomed.len(), start = self.start_offset(), "{why} deleted segments");
        Ok(doomed.len())
    }

    /// Replaces a sealed segment by its compacted copy (same base offset).
    pub(crate) fn replace_segment(&self, seg: Arc<Segment>) {
        self.segments.write().insert(seg.base_offset(), seg);
    }

    /// Reads whole batches starting with the one that contains `offset`, about
    /// `max_bytes` (at least one batch). Empty when `offset` is the end offset. Blocking.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<Vec<u8>, LogError> {
        let end = self.end_offset();
        let start = self.start_offset();
        if offset == end {
            return Ok(Vec::new());
        }
        if offset < start || offset > end {
            return Err(LogError::OffsetOutOfRange { topic: self.topic.clone(), partition: self.id, offset, start, end });
        }
        let segment = {
            let segs = self.segments.read();
            segs.range(..=offset).next_back().map(|(_, s)| s.clone())
        };
        let Some(segment) = segment else {
            return Ok(Vec::new());
        };
        let segment: Arc<Segment> = segment;
        let mut data = segment.read(offset, max_bytes)?;
        if data.is_empty() {
            // The offset lies after this segment's last record (its tail was compacted or it
            // ended below the offset): read on in the following segments.
            let following: Vec<Arc<Segment>> = self.segments.read().range(segment.base_offset() + 1..).map(|(_, s)| s.clone()).collect();
            for next in following {
                data = next.read(offset, max_bytes)?;
                if !data.is_empty() {
                    break;
                }
            }
        }
        // Only what is published (durable, under flush='always') is visible.
        let visible: usize = batch::split_batches(&data).take_while(|b| BatchHeader::parse(b).is_ok_and(|h| h.base_offset < end)).map(|b| b.len()).sum();
        data.truncate(visible);
        self.read_bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(data)
    }

    /// The last stable offset: below it every transaction has ended (committed or
    /// aborted). The end offset when no transaction is open.
    pub fn last_stable_offset(&self) -> i64 {
        let end = self.end_offset();
        let first_open = self.writer.lock().producers.first_unstable_offset();
        first_open.map_or(end, |f| f.min(end))
    }

    /// Aborted transactions with batches in `[from, to)`.
    pub fn aborted_transactions(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        self.writer.lock().producers.aborted_between(from, to)
    }

    /// Like `read`, for readers of committed data only (persistent queries, like ksqlDB's
    /// exactly-once processing): stops at the last stable offset and leaves out the batches
    /// of aborted transactions (their markers stay, so a reader's position moves past them).
    /// Blocking.
    pub fn read_committed(&self, offset: i64, max_bytes: usize) -> Result<Vec<u8>, LogError> {
        let lso = self.last_stable_offset();
        if offset >= lso {
            // Errors for offsets outside the log, nothing for unstable ones.
            return self.read(offset, max_bytes).map(|_| Vec::new());
        }
        let aborted = self.aborted_transactions(offset, lso);
        let mut at = offset;
        loop {
            let raw = self.read(at, max_bytes)?;
            let mut out = Vec::with_capacity(raw.len());
            let mut next = at;
            for b in batch::split_batches(&raw) {
                let h = BatchHeader::parse(b)?;
                if h.base_offset >= lso {
                    break;
                }
                next = h.last_offset() + 1;
                let is_aborted = h.is_transactional()
                    && !h.is_control()
                    && aborted.iter().any(|a| a.producer_id == h.producer_id && a.first_offset <= h.base_offset && h.base_offset <= a.last_offset);
                if !is_aborted {
                    out.extend_from_slice(b);
                }
            }
            // A chunk of aborted batches only: read on (their marker lies below the LSO).
            if !out.is_empty() || next >= lso || next == at {
                return Ok(out);
            }
            at = next;
        }
    }

    /// Total bytes stored across segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.read().values().map(|s| s.size()).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.segments.read().len()
    }
}

/// The producer state saved when segment `base` was created. A missing or unreadable
/// snapshot is not fatal: the caller rebuilds the state from the segments' batch headers.
fn load_producer_snapshot(dir: &Path, base: i64) -> Result<Option<ProducerStates>, LogError> {
    let path = dir.join(producer_snapshot_name(base));
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            tracing::warn!(file = %path.display(), "cannot read the producer snapshot, rebuilding producer state from the log: {e}");
            return Ok(None);
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(s) => Ok(Some(s)),
        Err(e) => {
            tracing::warn!(file = %path.display(), "the producer snapshot is corrupt, rebuilding producer state from the log: {e}");
            Ok(None)
        }
    }
}

fn write_producer_snapshot(dir: &Path, base: i64, states: &ProducerStates) -> Result<(), LogError> {
    let path = dir.join(producer_snapshot_name(base));
    let bytes = serde_json::to_vec(states).map_err(|e| LogError::io("encoding producer snapshot", e.into()))?;
    super::write_file_durably(&path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::{BatchBuilder, ProducerStamp, RecordIter};

    fn batch(n: usize, producer: Option<ProducerStamp>) -> Vec<u8> {
        let mut b = BatchBuilder::new(producer);
        for i in 0..n {
            b.push(i as i64, Some(format!("k{i}").as_bytes()), Some(&[b'x'; 100]), &[]);
        }
        b.finish()
    }

    fn small_config() -> TopicConfig {
        TopicConfig { segment_bytes: 2048, index_interval_bytes: 256, flush: FlushPolicy::Never, ..TopicConfig::default() }
    }

    fn read_all(p: &PartitionLog, from: i64) -> Vec<i64> {
        let mut offsets = Vec::new();
        let mut at = from;
        loop {
            let data = p.read(at, 4096).unwrap();
            if data.is_empty() {
                break;
            }
            for b in batch::split_batches(&data) {
                for r in RecordIter::new(b).unwrap() {
                    let r = r.unwrap();
                    if r.offset >= at {
                        offsets.push(r.offset);
                    }
                }
                at = BatchHeader::parse(b).unwrap().last_offset() + 1;
            }
        }
        offsets
    }

    #[test]
    fn appends_roll_segments_and_reads_span_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = PartitionLog::open("t", 0, dir.path(), small_config()).unwrap();
        for _ in 0..40 {
            p.append(batch(3, None)).unwrap();
        }
        assert!(p.segment_count() > 3);
        assert_eq!(p.end_offset(), 120);
        assert_eq!(read_all(&p, 0), (0..120).collect::<Vec<_>>());
        assert_eq!(read_all(&p, 77), (77..120).collect::<Vec<_>>());
        assert!(matches!(p.read(121, 10), Err(LogError::OffsetOutOfRange { .. })));
    }

    #[test]
    fn reopen_restores_offsets_and_producer_state() {
        let dir = tempfile::tempdir().unwrap();
        let stamp = |seq| Some(ProducerStamp { producer_id: 9, producer_epoch: 0, base_sequence: seq });
        {
            let p = PartitionLog::open("t", 0, dir.path(), small_config()).unwrap();
            for i in 0..30 {
                p.append(batch(2, stamp(i * 2))).unwrap();
            }
        }
        let p = PartitionLog::open("t", 0, dir.path(), small_config()).unwrap();
        assert_eq!(p.end_offset(), 60);
        assert_eq!(p.producer_state(9).unwrap().last_seq(), Some(59));
        let dup = p.append(batch(2, stamp(58))).unwrap();
        assert!(dup.duplicate);
        assert_eq!(dup.base_offset, 58);
        assert!(!p.append(batch(2, stamp(60))).unwrap().duplicate);
        assert_eq!(read_all(&p, 0).len(), 62);
    }

    #[test]
    fn concurrent_always_appends_share_fsyncs_and_get_unique_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = TopicConfig { flush: FlushPolicy::Always, segment_bytes: 64 * 1024, ..TopicConfig::default() };
        let p = Arc::new(PartitionLog::open("t", 0, dir.path(), cfg).unwrap());
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let p = p.clone();
                std::thread::spawn(move || (0..100).map(|_| p.append(batch(1, None)).unwrap().base_offset).collect::<Vec<_>>())
            })
            .collect();
        let mut offsets: Vec<i64> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        offsets.sort();
        assert_eq!(offsets, (0..1600).collect::<Vec<_>>());
        assert_eq!(p.end_offset(), 1600);
        assert_eq!(read_all(&p, 0).len(), 1600);
    }

    fn batch_at_time(n: usize, ts: i64) -> Vec<u8> {
        let mut b = BatchBuilder::new(None);
        for i in 0..n {
            b.push(ts + i as i64, Some(format!("k{i}").as_bytes()), Some(&[b'x'; 100]), &[]);
        }
        b.finish()
    }

    #[test]
    fn retention_by_bytes_deletes_oldest_segments_and_advances_start() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = TopicConfig { retention_bytes: Some(4096), retention_ms: None, ..small_config() };
        let p = PartitionLog::open("t", 0, dir.path(), cfg).unwrap();
        for _ in 0..40 {
            p.append(batch(3, None)).unwrap();
        }
        let before = p.segment_count();
        let deleted = p.apply_retention(chrono::Utc::now().timestamp_millis()).unwrap();
        assert!(deleted > 0 && p.segment_count() == before - deleted);
        assert!(p.size_bytes() < 4096 + 2048 + 1024, "{}", p.size_bytes());
        let start = p.start_offset();
        assert!(start > 0);
        assert!(matches!(p.read(0, 100), Err(LogError::OffsetOutOfRange { .. })));
        assert_eq!(read_all(&p, start), (start..120).collect::<Vec<_>>());
        drop(p);
        let p = PartitionLog::open("t", 0, dir.path(), small_config()).unwrap();
        assert_eq!(p.start_offset(), start);
    }

    #[test]
    fn retention_by_time_uses_record_timestamps() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = TopicConfig { retention_ms: Some(3_600_000), ..small_config() };
        let p = PartitionLog::open("t", 0, dir.path(), cfg).unwrap();
        let now = chrono::Utc::now().timestamp_millis();
        for _ in 0..20 {
            p.append(batch_at_time(3, 1000)).unwrap();
        }
        for _ in 0..20 {
            p.append(batch_at_time(3, now)).unwrap();
        }
        p.apply_retention(now).unwrap();
        let start = p.start_offset();
        assert!(start > 0 && start <= 60, "{start}");
        let recs = read_all(&p, start);
        assert!(recs.contains(&60) && recs.contains(&119));
    }

    #[test]
    fn offset_for_timestamp_finds_first_record_at_or_after() {
        let dir = tempfile::tempdir().unwrap();
        let p = PartitionLog::open("t", 0, dir.path(), small_config()).unwrap();
        for i in 0..50 {
            p.append(batch_at_time(2, i * 10)).unwrap();
        }
        // Records: offset 2i has ts 10i, offset 2i+1 has ts 10i+1.
        assert_eq!(p.offset_for_timestamp(0).unwrap(), Some(0));
        assert_eq!(p.offset_for_timestamp(1).unwrap(), Some(1));
        assert_eq!(p.offset_for_timestamp(2).unwrap(), Some(2));
        assert_eq!(p.offset_for_timestamp(255).unwrap(), Some(52));
        assert_eq!(p.offset_for_timestamp(491).unwrap(), Some(99));
        assert_eq!(p.offset_for_timestamp(492).unwrap(), None);
        drop(p);
        let p = PartitionLog::open("t", 0, dir.path(), small_config()).unwrap();
        assert_eq!(p.offset_for_timestamp(255).unwrap(), Some(52));
    }

    #[test]
    fn segments_roll_by_age() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = TopicConfig { segment_ms: 1, ..small_config() };
        let p = PartitionLog::open("t", 0, dir.path(), cfg).unwrap();
        for _ in 0..3 {
            p.append(batch(1, None)).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(3));
        }
        assert_eq!(p.segment_count(), 3);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn records_strategy() -> impl Strategy<Value = Vec<Vec<Option<Vec<u8>>>>> {
            prop::collection::vec(prop::collection::vec(prop::option::of(prop::collection::vec(any::<u8>(), 0..300)), 1..8), 1..40)
        }

        fn encode(batch_values: &[Option<Vec<u8>>]) -> Vec<u8> {
            let mut b = BatchBuilder::new(None);
            for (i, v) in batch_values.iter().enumerate() {
                b.push(i as i64, Some(b"k"), v.as_deref(), &[]);
            }
            b.finish()
        }

        fn all_values(p: &PartitionLog) -> Vec<(i64, Option<Vec<u8>>)> {
            let mut out = Vec::new();
            let mut at = p.start_offset();
            loop {
                let data = p.read(at, 777).unwrap();
                if data.is_empty() {
                    return out;
                }
                for b in batch::split_batches(&data) {
                    for r in RecordIter::new(b).unwrap() {
                        let r = r.unwrap();
                        if r.offset >= at {
                            out.push((r.offset, r.value.map(|v| v.to_vec())));
                        }
                    }
                    at = BatchHeader::parse(b).unwrap().last_offset() + 1;
                }
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(48))]

            #[test]
            fn append_read_round_trip_with_monotonic_offsets(batches in records_strategy(), seg in 1024u64..8192, idx in 64u64..2048) {
                let dir = tempfile::tempdir().unwrap();
                let cfg = TopicConfig { segment_bytes: seg, index_interval_bytes: idx, flush: FlushPolicy::Never, ..TopicConfig::default() };
                let p = PartitionLog::open("t", 0, dir.path(), cfg.clone()).unwrap();
                let mut expected = Vec::new();
                let mut next = 0i64;
                for values in &batches {
                    let out = p.append(encode(values)).unwrap();
                    prop_assert_eq!(out.base_offset, next);
                    for v in values {
                        expected.push((next, v.clone()));
                        next += 1;
                    }
                    prop_assert_eq!(out.last_offset, next - 1);
                }
                prop_assert_eq!(all_values(&p), expected.clone());
                drop(p);
                let p = PartitionLog::open("t", 0, dir.path(), cfg).unwrap();
                prop_assert_eq!(all_values(&p), expected);
            }

            #[test]
            fn recovery_truncates_a_tail_cut_at_any_byte(batches in records_strategy(), cut_fraction in 0.0f64..1.0) {
                let dir = tempfile::tempdir().unwrap();
                let cfg = TopicConfig { segment_bytes: 1 << 30, flush: FlushPolicy::Never, ..TopicConfig::default() };
                let p = PartitionLog::open("t", 0, dir.path(), cfg.clone()).unwrap();
                let mut ends = Vec::new(); // (file position after batch, offset after batch)
                let mut pos = 0u64;
                for values in &batches {
                    let encoded = encode(values);
                    pos += encoded.len() as u64;
                    let out = p.append(encoded).unwrap();
                    ends.push((pos, out.last_offset + 1));
                }
                drop(p);
                let file = dir.path().join(crate::log::segment::log_file_name(0));
                let cut = (pos as f64 * cut_fraction) as u64;
                std::fs::OpenOptions::new().write(true).open(&file).unwrap().set_len(cut).unwrap();
                let p = PartitionLog::open("t", 0, dir.path(), cfg).unwrap();
                let expected_end = ends.iter().take_while(|(e, _)| *e <= cut).last().map(|(_, o)| *o).unwrap_or(0);
                prop_assert_eq!(p.end_offset(), expected_end);
                prop_assert_eq!(all_values(&p).len() as i64, expected_end);
                let out = p.append(encode(&[Some(b"after".to_vec())])).unwrap();
                prop_assert_eq!(out.base_offset, expected_end);
            }
        }
    }

    #[test]
    fn subscribers_see_end_offset_advance() {
        let dir = tempfile::tempdir().unwrap();
        let p = PartitionLog::open("t", 0, dir.path(), small_config()).unwrap();
        let mut rx = p.subscribe();
        assert_eq!(*rx.borrow_and_update(), 0);
        p.append(batch(5, None)).unwrap();
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), 5);
    }

    fn txn_batch(pid: i64, seq: i32, n: usize) -> Vec<u8> {
        let mut b = batch(n, Some(ProducerStamp { producer_id: pid, producer_epoch: 0, base_sequence: seq }));
        let attrs = i16::from_be_bytes([b[21], b[22]]) | 0x10;
        b[21..23].copy_from_slice(&attrs.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    /// Offsets a read-committed reader gets from the start.
    fn committed_offsets(p: &PartitionLog) -> Vec<i64> {
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            let data = p.read_committed(at, 4096).unwrap();
            if data.is_empty() {
                return out;
            }
            for b in batch::split_batches(&data) {
                let h = BatchHeader::parse(b).unwrap();
                at = h.last_offset() + 1;
                if !h.is_control() {
                    out.extend(RecordIter::new(b).unwrap().map(|r| r.unwrap().offset));
                }
            }
        }
    }

    #[test]
    fn transactions_bound_the_stable_offset_and_aborted_batches_are_hidden_from_committed_readers() {
        let dir = tempfile::tempdir().unwrap();
        let p = PartitionLog::open("t", 0, dir.path(), small_config()).unwrap();
        p.append(batch(2, None)).unwrap(); // 0-1
        p.append(txn_batch(7, 0, 2)).unwrap(); // 2-3, txn of producer 7 opens
        p.append(txn_batch(8, 0, 1)).unwrap(); // 4, txn of producer 8 opens
        assert_eq!(p.last_stable_offset(), 2, "the oldest open transaction bounds the LSO");
        assert_eq!(committed_offsets(&p), vec![0, 1]);
        p.append(batch::control_batch(7, 0, batch::ControlKind::Abort, 0, 0)).unwrap(); // 5
        assert_eq!(p.last_stable_offset(), 4);
        p.append(txn_batch(8, 1, 1)).unwrap(); // 6
        p.append(batch::control_batch(8, 0, batch::ControlKind::Commit, 0, 0)).unwrap(); // 7
        p.append(batch(1, None)).unwrap(); // 8
        assert_eq!(p.last_stable_offset(), 9);
        assert_eq!(p.aborted_transactions(0, 9), vec![AbortedTxn { producer_id: 7, first_offset: 2, last_offset: 5 }]);
        assert_eq!(committed_offsets(&p), vec![0, 1, 4, 6, 8]);
        // Recovery rebuilds open and aborted transactions from the log.
        p.append(txn_batch(9, 0, 1)).unwrap(); // 9, open
        drop(p);
        let p = PartitionLog::open("t", 0, dir.path(), small_config()).unwrap();
        assert_eq!(p.last_stable_offset(), 9);
        assert_eq!(p.aborted_transactions(0, 10).len(), 1);
        assert_eq!(committed_offsets(&p), vec![0, 1, 4, 6, 8]);
    }

    mod faults {
        use super::*;
        use crate::log::storage::{FaultyStorage, OpenFiles};
        use std::sync::atomic::Ordering as O;

        fn faulty(cfg: TopicConfig) -> (tempfile::TempDir, FaultyStorage, PartitionLog) {
            let dir = tempfile::tempdir().unwrap();
            let storage = FaultyStorage::default();
            let files = OpenFiles::new(Arc::new(storage.clone()), 8);
            let p = PartitionLog::open_with(&files, "t", 0, dir.path(), cfg).unwrap();
            (dir, storage, p)
        }

        fn always() -> TopicConfig {
            TopicConfig { flush: FlushPolicy::Always, segment_bytes: 1 << 20, ..TopicConfig::default() }
        }

        fn reopen(dir: &tempfile::TempDir, cfg: TopicConfig) -> PartitionLog {
            PartitionLog::open("t", 0, dir.path(), cfg).unwrap()
        }

        #[test]
        fn a_failed_fsync_publishes_nothing_and_the_retry_gets_the_same_offsets() {
            let (dir, storage, p) = faulty(always());
            p.append(batch(2, None)).unwrap();
            storage.faults.fail_syncs.store(1, O::Release);
            storage.faults.lose_unsynced_on_failed_sync.store(true, O::Release);
            let err = p.append(batch(3, None)).unwrap_err();
            assert!(err.is_storage(), "{err}");
            assert_eq!(p.end_offset(), 2, "nothing of the failed group is visible");
            assert_eq!(read_all(&p, 0), vec![0, 1]);
            // The next append takes the offsets the failed one did not keep, and the next
            // fsync does not publish the failed records.
            let out = p.append(batch(1, None)).unwrap();
            assert_eq!((out.base_offset, out.last_offset), (2, 2));
            assert_eq!(read_all(&p, 0), vec![0, 1, 2]);
            drop(p);
            assert_eq!(read_all(&reopen(&dir, always()), 0), vec![0, 1, 2], "the failed records do not come back after a restart");
        }

        #[test]
        fn a_failed_fsync_leaves_an_idempotent_producer_free_to_retry() {
            let (dir, storage, p) = faulty(always());
            let stamp = |seq| Some(ProducerStamp { producer_id: 5, producer_epoch: 0, base_sequence: seq });
            p.append(batch(2, stamp(0))).unwrap();
            storage.faults.fail_syncs.store(1, O::Release);
            assert!(p.append(batch(2, stamp(2))).is_err());
            assert_eq!(p.producer_state(5).unwrap().last_seq(), Some(1), "the failed batch's sequence numbers are given back");
            let retry = p.append(batch(2, stamp(2))).unwrap();
            assert!(!retry.duplicate, "the retry is written, not taken for a duplicate of what was undone");
            assert_eq!(retry.base_offset, 2);
            drop(p);
            let p = reopen(&dir, always());
            assert_eq!(read_all(&p, 0), vec![0, 1, 2, 3]);
            assert_eq!(p.producer_state(5).unwrap().last_seq(), Some(3));
        }

        #[test]
        fn a_full_disk_fails_the_append_cleanly_without_using_offsets() {
            for flush in [FlushPolicy::Always, FlushPolicy::Never] {
                let cfg = TopicConfig { flush, ..always() };
                let (dir, storage, p) = faulty(cfg.clone());
                p.append(batch(2, None)).unwrap();
                storage.faults.space_left.store(50, O::Release);
                let err = p.append(batch(3, None)).unwrap_err();
                assert!(matches!(err, LogError::DiskFull { .. }), "{err}");
                assert!(err.to_string().contains("insufficient space"), "{err}");
                assert_eq!(p.end_offset(), 2);
                storage.faults.space_left.store(-1, O::Release);
                assert_eq!(p.append(batch(1, None)).unwrap().base_offset, 2, "no offset was used up by the failed append");
                drop(p);
                assert_eq!(read_all(&reopen(&dir, cfg), 0), vec![0, 1, 2], "{flush:?}: no torn bytes were left in the segment");
            }
        }

        #[test]
        fn a_short_write_is_truncated_away() {
            let (dir, storage, p) = faulty(always());
            p.append(batch(1, None)).unwrap();
            storage.faults.fail_writes.store(1, O::Release);
            assert!(p.append(batch(4, None)).is_err());
            let size = std::fs::metadata(dir.path().join(crate::log::segment::log_file_name(0))).unwrap().len();
            assert_eq!(size, p.size_bytes(), "the half-written batch was cut off the file");
            assert_eq!(p.append(batch(1, None)).unwrap().base_offset, 1);
        }

        #[test]
        fn a_segment_that_cannot_be_created_fails_the_append_and_the_log_goes_on() {
            let cfg = TopicConfig { segment_bytes: 2048, ..always() };
            let (dir, storage, p) = faulty(cfg.clone());
            while p.segment_count() == 1 {
                p.append(batch(3, None)).unwrap();
            }
            let end = p.end_offset();
            let segments = p.segment_count();
            // Fill the new active segment, then make its successor impossible to create.
            while p.segment_count() == segments {
                p.append(batch(3, None)).unwrap();
            }
            let end2 = p.end_offset();
            storage.faults.fail_creates.store(1, O::Release);
            let mut failed = false;
            for _ in 0..40 {
                match p.append(batch(3, None)) {
                    Ok(_) => {}
                    Err(e) => {
                        assert!(e.is_storage(), "{e}");
                        failed = true;
                        break;
                    }
                }
            }
            assert!(failed, "a roll happened and failed");
            let before = p.end_offset();
            assert!(before >= end2 && end2 > end);
            let out = p.append(batch(3, None)).unwrap();
            assert_eq!(out.base_offset, before, "the failed roll used no offsets");
            drop(p);
            assert_eq!(read_all(&reopen(&dir, cfg), 0), (0..before + 3).collect::<Vec<_>>());
        }

        #[test]
        fn a_new_segment_is_not_used_when_its_directory_entry_cannot_be_made_durable() {
            let cfg = TopicConfig { segment_bytes: 2048, ..always() };
            let (dir, storage, p) = faulty(cfg.clone());
            p.append(batch(3, None)).unwrap();
            storage.faults.fail_dir_syncs.store(100, O::Release);
            let mut refused = 0;
            for _ in 0..40 {
                if p.append(batch(3, None)).is_err() {
                    refused += 1;
                }
            }
            assert!(refused > 0, "every roll needs a directory fsync");
            assert_eq!(p.segment_count(), 1, "no segment joined the log without a durable directory entry");
            storage.faults.fail_dir_syncs.store(0, O::Release);
            let end = p.end_offset();
            drop(p);
            assert_eq!(reopen(&dir, cfg).end_offset(), end);
        }

        #[test]
        fn many_segments_are_read_through_a_few_open_files() {
            let dir = tempfile::tempdir().unwrap();
            let files = OpenFiles::new(Arc::new(crate::log::storage::OsStorage), 2);
            let p = PartitionLog::open_with(&files, "t", 0, dir.path(), small_config()).unwrap();
            for _ in 0..60 {
                p.append(batch(3, None)).unwrap();
            }
            assert!(p.segment_count() > 10);
            assert!(files.open_count() <= 2);
            assert_eq!(read_all(&p, 0), (0..180).collect::<Vec<_>>());
            assert!(files.open_count() <= 2);
        }

        #[test]
        fn purge_deletes_only_segments_below_the_committed_offset() {
            let dir = tempfile::tempdir().unwrap();
            let p = PartitionLog::open("t", 0, dir.path(), small_config()).unwrap();
            for _ in 0..40 {
                p.append(batch(3, None)).unwrap();
            }
            let n = p.segment_count();
            assert_eq!(p.purge_below(0).unwrap(), 0);
            let deleted = p.purge_below(60).unwrap();
            assert!(deleted > 0 && p.segment_count() == n - deleted);
            assert!(p.start_offset() <= 60 && p.start_offset() > 0, "{}", p.start_offset());
            assert_eq!(read_all(&p, p.start_offset()).last(), Some(&119));
            p.purge_below(i64::MAX).unwrap();
            assert_eq!(p.segment_count(), 1, "the active segment stays");
        }
    }
}
