//! `PartitionLog`: one ordered, append-only partition made of segments.
//!
//! One writer at a time (a mutex) assigns offsets and appends; any number of readers read
//! concurrently with positional reads. The end offset is published on a `watch` channel
//! so readers (query tasks, push queries, fetches) wait for new data without polling.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use super::batch::{self, BatchHeader};
use super::producer::{ProducerEntry, ProducerStates, SeqCheck};
use super::segment::Segment;
use super::topic::{FlushPolicy, TopicConfig};
use super::LogError;

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
    last_sync: Instant,
}

pub struct PartitionLog {
    topic: String,
    id: i32,
    dir: PathBuf,
    config: TopicConfig,
    segments: RwLock<BTreeMap<i64, Arc<Segment>>>,
    writer: Mutex<Writer>,
    start_offset: AtomicI64,
    end_offset: watch::Sender<i64>,
    deleted: AtomicBool,
}

fn producer_snapshot_name(base_offset: i64) -> String {
    format!("{base_offset:020}.producers")
}

impl PartitionLog {
    /// Opens (or creates) the partition in `dir`, recovering the active segment.
    pub fn open(topic: &str, id: i32, dir: &Path, config: TopicConfig) -> Result<PartitionLog, LogError> {
        std::fs::create_dir_all(dir).map_err(|e| LogError::io(format!("creating {}", dir.display()), e))?;
        let mut bases: Vec<i64> = std::fs::read_dir(dir)
            .map_err(|e| LogError::io(format!("listing {}", dir.display()), e))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".log")?.parse::<i64>().ok()
            })
            .collect();
        bases.sort_unstable();
        let interval = config.index_interval_bytes;
        let mut segments = BTreeMap::new();
        let mut producers = ProducerStates::default();
        let active_base = bases.last().copied();
        // The producer snapshot written when the active segment was created covers all
        // earlier segments; without one, earlier segments' headers are replayed.
        let snapshot = active_base.and_then(|b| load_producer_snapshot(dir, b));
        let have_snapshot = snapshot.is_some();
        if let Some(s) = snapshot {
            producers = s;
        }
        for &base in &bases {
            let is_active = Some(base) == active_base;
            let seg = Segment::open(dir, base, interval, is_active, &mut |b| {
                if is_active || !have_snapshot {
                    producers.record(&b.header);
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
                        producers.record(&h);
                        offset = h.last_offset() + 1;
                    }
                }
            }
            segments.insert(base, Arc::new(seg));
        }
        let active = match segments.values().next_back() {
            Some(s) => s.clone(),
            None => {
                let s = Arc::new(Segment::create(dir, 0, interval)?);
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
            segments: RwLock::new(segments),
            writer: Mutex::new(Writer { active, next_offset, producers, last_sync: Instant::now() }),
            start_offset: AtomicI64::new(start),
            end_offset: end_tx,
            deleted: AtomicBool::new(false),
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

    /// The epoch and last sequence this partition holds for an idempotent producer.
    pub fn producer_state(&self, producer_id: i64) -> Option<ProducerEntry> {
        self.writer.lock().producers.get(producer_id).cloned()
    }

    /// Appends one encoded v2 batch, assigning its offsets. Blocking (it may fsync): call
    /// it from a blocking thread, never from an async task directly.
    pub fn append(&self, mut data: Vec<u8>) -> Result<AppendOutcome, LogError> {
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
        let mut w = self.writer.lock();
        if let SeqCheck::Duplicate { base_offset, last_offset } = w.producers.check(&header, &self.topic, self.id)? {
            return Ok(AppendOutcome { base_offset, last_offset, duplicate: true });
        }
        let base = w.next_offset;
        batch::set_base_offset(&mut data, base);
        if w.active.size() > 0 && w.active.size() + data.len() as u64 > self.config.segment_bytes {
            self.roll(&mut w)?;
        }
        w.active.append(&data)?;
        let stamped = BatchHeader { base_offset: base, ..header };
        w.producers.record(&stamped);
        w.next_offset = stamped.last_offset() + 1;
        match self.config.flush {
            FlushPolicy::Always => w.active.sync()?,
            FlushPolicy::Interval(ms) => {
                if w.last_sync.elapsed().as_millis() as u64 >= ms {
                    w.active.sync()?;
                    w.last_sync = Instant::now();
                }
            }
            FlushPolicy::Never => {}
        }
        let next = w.next_offset;
        drop(w);
        self.end_offset.send_replace(next);
        Ok(AppendOutcome { base_offset: base, last_offset: next - 1, duplicate: false })
    }

    /// Seals the active segment and starts a new one at the next offset.
    fn roll(&self, w: &mut Writer) -> Result<(), LogError> {
        w.active.seal(&self.dir)?;
        write_producer_snapshot(&self.dir, w.next_offset, &w.producers)?;
        let seg = Arc::new(Segment::create(&self.dir, w.next_offset, self.config.index_interval_bytes)?);
        self.segments.write().insert(w.next_offset, seg.clone());
        w.active = seg;
        Ok(())
    }

    /// Forces buffered appends to disk.
    pub fn sync(&self) -> Result<(), LogError> {
        let mut w = self.writer.lock();
        w.active.sync()?;
        w.last_sync = Instant::now();
        Ok(())
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
            return Err(LogError::OffsetOutOfRange {
                topic: self.topic.clone(),
                partition: self.id,
                offset,
                start,
                end,
            });
        }
        let segment = {
            let segs = self.segments.read();
            segs.range(..=offset).next_back().map(|(_, s)| s.clone())
        };
        let Some(segment) = segment else { return Ok(Vec::new()) };
        let data = segment.read(offset, max_bytes)?;
        if data.is_empty() && segment.next_offset() <= offset {
            // The offset lies in the next segment (this one ended below it).
            let next = self.segments.read().range(offset + 1..).next().map(|(_, s)| s.clone());
            if let Some(next) = next {
                return next.read(offset, max_bytes);
            }
        }
        Ok(data)
    }

    /// Total bytes stored across segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.read().values().map(|s| s.size()).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.segments.read().len()
    }
}

fn load_producer_snapshot(dir: &Path, base: i64) -> Option<ProducerStates> {
    let bytes = std::fs::read(dir.join(producer_snapshot_name(base))).ok()?;
    serde_json::from_slice(&bytes).ok()
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
    fn subscribers_see_end_offset_advance() {
        let dir = tempfile::tempdir().unwrap();
        let p = PartitionLog::open("t", 0, dir.path(), small_config()).unwrap();
        let mut rx = p.subscribe();
        assert_eq!(*rx.borrow_and_update(), 0);
        p.append(batch(5, None)).unwrap();
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), 5);
    }
}
