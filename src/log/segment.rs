//! One segment of a partition: a file of record batches starting at `base_offset`, plus a
//! sparse offset and time index (relative offset -> file position, with the largest
//! timestamp before that position) kept in memory and written to `<base>.index` when the
//! segment is sealed.
//!
//! The file is reached through [`OpenFiles`] on each access, so it need not stay open.
//! A failed append leaves the file as it was (it is truncated back), and an appended
//! range can be taken back with [`Segment::mark`] and [`Segment::rollback`] when the
//! partition decides its records must not exist (a failed fsync).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

use super::LogError;
use super::batch::{self, BatchHeader, HEADER_LEN};
use super::storage::{OpenFiles, SegmentFile};

/// Index entry: the batch starting at file position `position` has base offset
/// `base_offset + relative_offset`, and no record before that position has a timestamp
/// above `max_timestamp_before`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub relative_offset: u32,
    pub position: u32,
    pub max_timestamp_before: i64,
}

const INDEX_ENTRY_BYTES: usize = 16;

pub fn log_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.log")
}

pub(crate) fn index_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.index")
}

/// A batch header seen while scanning a segment, with its position.
#[derive(Debug, Clone, Copy)]
pub struct ScannedBatch {
    pub position: u64,
    pub header: BatchHeader,
    /// The transaction marker, for control batches.
    pub control: Option<batch::ControlKind>,
}

/// What an append changed, so it can be taken back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentMark {
    size: u64,
    next_offset: i64,
    max_timestamp: i64,
    index_len: usize,
    bytes_since_index: u64,
}

pub struct Segment {
    base_offset: i64,
    path: PathBuf,
    files: Arc<OpenFiles>,
    file_id: u64,
    /// The open file of a segment whose path was unlinked or replaced (retention,
    /// compaction): readers still holding the segment keep reading what it was.
    pinned: Mutex<Option<Arc<dyn SegmentFile>>>,
    size: AtomicU64,
    /// Offset after the last record in this segment (base_offset when empty).
    next_offset: AtomicI64,
    max_timestamp: AtomicI64,
    index: RwLock<Vec<IndexEntry>>,
    index_interval: u64,
    bytes_since_index: AtomicU64,
    /// Wall-clock time the segment was created or opened (for `segment.ms`).
    created_ms: i64,
}

impl Drop for Segment {
    fn drop(&mut self) {
        self.files.forget(self.file_id);
    }
}

/// Reads a file sequentially through a buffer, by position (recovery scans).
struct ChunkReader<'a> {
    file: &'a dyn SegmentFile,
    len: u64,
    buf: Vec<u8>,
    /// File position of `buf[0]`.
    buf_start: u64,
}

const SCAN_CHUNK: usize = 1 << 20;

impl<'a> ChunkReader<'a> {
    fn new(file: &'a dyn SegmentFile, len: u64) -> Self {
        ChunkReader { file, len, buf: Vec::new(), buf_start: 0 }
    }

    /// `n` bytes at `pos`, or `None` past the end of the file.
    fn read(&mut self, pos: u64, n: usize) -> std::io::Result<Option<&[u8]>> {
        if pos + n as u64 > self.len {
            return Ok(None);
        }
        let have = pos >= self.buf_start && pos + n as u64 <= self.buf_start + self.buf.len() as u64;
        if !have {
            let want = (n.max(SCAN_CHUNK) as u64).min(self.len - pos) as usize;
            self.buf.resize(want, 0);
            self.file.read_exact_at(&mut self.buf, pos)?;
            self.buf_start = pos;
        }
        let at = (pos - self.buf_start) as usize;
        Ok(Some(&self.buf[at..at + n]))
    }
}

impl Segment {
    /// Creates a new empty segment file and makes its directory entry durable.
    pub fn create(files: &Arc<OpenFiles>, dir: &Path, base_offset: i64, index_interval: u64) -> Result<Segment, LogError> {
        let path = dir.join(log_file_name(base_offset));
        let file_id = files.new_id();
        files.create(file_id, &path).map_err(|e| LogError::io(format!("creating segment {}", path.display()), e))?;
        let seg = Segment::empty(files, file_id, base_offset, path, index_interval);
        if let Err(e) = files.sync_dir(dir) {
            // Leave no file behind that a later start could take for a segment.
            let _ = std::fs::remove_file(&seg.path);
            return Err(LogError::io(format!("syncing directory {}", dir.display()), e));
        }
        Ok(seg)
    }

    fn empty(files: &Arc<OpenFiles>, file_id: u64, base_offset: i64, path: PathBuf, index_interval: u64) -> Segment {
        Segment {
            base_offset,
            path,
            files: files.clone(),
            file_id,
            pinned: Mutex::new(None),
            size: AtomicU64::new(0),
            next_offset: AtomicI64::new(base_offset),
            max_timestamp: AtomicI64::new(-1),
            index: RwLock::new(Vec::new()),
            index_interval,
            bytes_since_index: AtomicU64::new(0),
            created_ms: chrono::Utc::now().timestamp_millis(),
        }
    }

    fn file(&self) -> Result<Arc<dyn SegmentFile>, LogError> {
        if let Some(f) = self.pinned.lock().as_ref() {
            return Ok(f.clone());
        }
        self.files.get(self.file_id, &self.path).map_err(|e| LogError::io(format!("opening segment {}", self.path.display()), e))
    }

    pub fn created_ms(&self) -> i64 {
        self.created_ms
    }

    /// Opens an existing segment. With `recover`, every batch is checked (length, CRC,
    /// offset order) and the file is truncated after the last valid batch; `on_batch` sees
    /// each valid batch header. Without `recover` the segment is trusted (it was sealed),
    /// and its index is read from disk when present.
    pub fn open(
        files: &Arc<OpenFiles>,
        dir: &Path,
        base_offset: i64,
        index_interval: u64,
        recover: bool,
        on_batch: &mut dyn FnMut(&ScannedBatch),
    ) -> Result<Segment, LogError> {
        let path = dir.join(log_file_name(base_offset));
        let seg = Segment::empty(files, files.new_id(), base_offset, path, index_interval);
        let file = seg.file()?;
        if !recover && seg.load_index_file(dir)? {
            let len = seg.file_len(file.as_ref())?;
            seg.size.store(len, Ordering::Release);
            // The next offset of a sealed segment comes from its last batch.
            let last_pos = seg.index.read().last().map(|e| u64::from(e.position)).unwrap_or(0);
            seg.scan(file.as_ref(), last_pos, false, &mut |b| {
                seg.next_offset.store(b.header.last_offset() + 1, Ordering::Release);
                seg.max_timestamp.fetch_max(b.header.max_timestamp, Ordering::AcqRel);
            })?;
            return Ok(seg);
        }
        let valid = seg.scan(file.as_ref(), 0, recover, &mut |b| {
            seg.note_batch(b.position, b.header.total_len() as u64, &b.header);
            on_batch(b);
        })?;
        let len = seg.file_len(file.as_ref())?;
        if valid < len {
            tracing::warn!(
                segment = %seg.path.display(),
                valid_bytes = valid,
                file_bytes = len,
                "truncating torn or corrupt tail of segment after an unclean shutdown"
            );
            file.set_len(valid).map_err(|e| LogError::io(format!("truncating {}", seg.path.display()), e))?;
            file.sync_data().map_err(|e| LogError::io(format!("syncing {}", seg.path.display()), e))?;
        }
        seg.size.store(valid, Ordering::Release);
        Ok(seg)
    }

    fn file_len(&self, file: &dyn SegmentFile) -> Result<u64, LogError> {
        file.len().map_err(|e| LogError::io(format!("reading size of {}", self.path.display()), e))
    }

    fn load_index_file(&self, dir: &Path) -> Result<bool, LogError> {
        let path = dir.join(index_file_name(self.base_offset));
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(LogError::io(format!("reading index {}", path.display()), e)),
        };
        if bytes.len() % INDEX_ENTRY_BYTES != 0 {
            return Ok(false);
        }
        let entries = bytes
            .chunks_exact(INDEX_ENTRY_BYTES)
            .map(|c| IndexEntry {
                relative_offset: u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                position: u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
                max_timestamp_before: i64::from_be_bytes([c[8], c[9], c[10], c[11], c[12], c[13], c[14], c[15]]),
            })
            .collect();
        *self.index.write() = entries;
        Ok(true)
    }

    /// Scans batches sequentially from `from`; returns the end of the last valid batch.
    /// With `check`, CRCs and offset order are verified and scanning stops at the first bad
    /// batch; without it, scanning stops at the first unreadable header.
    fn scan(&self, file: &dyn SegmentFile, from: u64, check: bool, on_batch: &mut dyn FnMut(&ScannedBatch)) -> Result<u64, LogError> {
        let len = self.file_len(file)?;
        let mut reader = ChunkReader::new(file, len);
        let io = |e| LogError::io(format!("reading {}", self.path.display()), e);
        let mut pos = from;
        let mut expected_next: Option<i64> = None;
        while let Some(head) = reader.read(pos, HEADER_LEN).map_err(io)? {
            let Ok(header) = BatchHeader::parse(head) else {
                break;
            };
            let total = header.total_len() as u64;
            if total < HEADER_LEN as u64 || pos + total > len {
                break;
            }
            let mut control = None;
            if check || header.is_control() {
                if check && (header.base_offset < self.base_offset || expected_next.is_some_and(|n| header.base_offset < n)) {
                    break;
                }
                let Some(whole) = reader.read(pos, total as usize).map_err(io)? else {
                    break;
                };
                if check && batch::verify_crc(whole).is_err() {
                    break;
                }
                if header.is_control() {
                    control = batch::control_kind(whole);
                }
            }
            on_batch(&ScannedBatch { position: pos, header, control });
            expected_next = Some(header.last_offset() + 1);
            pos += total;
        }
        Ok(pos)
    }

    /// Records a batch appended (or found) at `position` in the in-memory index.
    fn note_batch(&self, position: u64, len: u64, header: &BatchHeader) {
        let since = self.bytes_since_index.load(Ordering::Relaxed);
        if position == 0 || since >= self.index_interval {
            self.index.write().push(IndexEntry {
                relative_offset: (header.base_offset - self.base_offset) as u32,
                position: position as u32,
                max_timestamp_before: self.max_timestamp.load(Ordering::Acquire),
            });
            self.bytes_since_index.store(len, Ordering::Relaxed);
        } else {
            self.bytes_since_index.store(since + len, Ordering::Relaxed);
        }
        self.next_offset.store(header.last_offset() + 1, Ordering::Release);
        self.max_timestamp.fetch_max(header.max_timestamp, Ordering::AcqRel);
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    pub fn next_offset(&self) -> i64 {
        self.next_offset.load(Ordering::Acquire)
    }

    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp.load(Ordering::Acquire)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends whole batches (already stamped with their offsets). Only the partition's
    /// writer calls this, one at a time. On failure the file is truncated back to where
    /// it was, so a failed append leaves nothing behind (a full disk, a short write).
    pub fn append(&self, data: &[u8]) -> Result<(), LogError> {
        let pos = self.size();
        let file = self.file()?;
        if let Err(e) = file.write_all_at(data, pos) {
            if let Err(t) = file.set_len(pos) {
                tracing::error!(segment = %self.path.display(), "cannot truncate a failed append back to {pos} bytes: {t}");
            }
            return Err(LogError::io(format!("appending to {}", self.path.display()), e));
        }
        let mut at = 0usize;
        for b in batch::split_batches(data) {
            if let Ok(h) = BatchHeader::parse(b) {
                self.note_batch(pos + at as u64, b.len() as u64, &h);
            }
            at += b.len();
        }
        self.size.store(pos + data.len() as u64, Ordering::Release);
        Ok(())
    }

    /// Where the segment ends now; [`Segment::rollback`] returns it to this point.
    pub fn mark(&self) -> SegmentMark {
        SegmentMark {
            size: self.size(),
            next_offset: self.next_offset(),
            max_timestamp: self.max_timestamp(),
            index_len: self.index.read().len(),
            bytes_since_index: self.bytes_since_index.load(Ordering::Relaxed),
        }
    }

    /// Takes back everything appended since `mark`: the file is truncated and the index
    /// forgets the batches. Only the partition's writer calls this.
    pub fn rollback(&self, mark: &SegmentMark) -> Result<(), LogError> {
        let file = self.file()?;
        file.set_len(mark.size).map_err(|e| LogError::io(format!("truncating {}", self.path.display()), e))?;
        self.index.write().truncate(mark.index_len);
        self.bytes_since_index.store(mark.bytes_since_index, Ordering::Relaxed);
        self.next_offset.store(mark.next_offset, Ordering::Release);
        self.max_timestamp.store(mark.max_timestamp, Ordering::Release);
        self.size.store(mark.size, Ordering::Release);
        Ok(())
    }

    pub fn sync(&self) -> Result<(), LogError> {
        self.file()?.sync_data().map_err(|e| LogError::io(format!("syncing {}", self.path.display()), e))
    }

    /// Writes the index file and syncs both files and the directory; called when the
    /// segment stops being the active one.
    pub fn seal(&self, dir: &Path) -> Result<(), LogError> {
        self.sync()?;
        let path = dir.join(index_file_name(self.base_offset));
        let mut bytes = Vec::new();
        for e in self.index.read().iter() {
            bytes.extend_from_slice(&e.relative_offset.to_be_bytes());
            bytes.extend_from_slice(&e.position.to_be_bytes());
            bytes.extend_from_slice(&e.max_timestamp_before.to_be_bytes());
        }
        let mut f = std::fs::File::create(&path).map_err(|e| LogError::io(format!("creating {}", path.display()), e))?;
        f.write_all(&bytes).and_then(|_| f.sync_all()).map_err(|e| LogError::io(format!("writing {}", path.display()), e))?;
        self.files.sync_dir(dir).map_err(|e| LogError::io(format!("syncing directory {}", dir.display()), e))
    }

    /// Keeps the segment's file open for as long as the segment lives, before its path is
    /// unlinked or replaced.
    pub fn pin_file(&self) -> Result<(), LogError> {
        let f = self.file()?;
        *self.pinned.lock() = Some(f);
        self.files.forget(self.file_id);
        Ok(())
    }

    /// Removes the segment's files (readers still holding the segment go on reading it).
    /// A file already gone is not an error.
    pub fn delete_files(&self, dir: &Path) -> Result<(), LogError> {
        if let Err(e) = self.pin_file() {
            tracing::debug!("segment {} could not be kept open for its readers: {e}", self.path.display());
        }
        for path in [self.path.clone(), dir.join(index_file_name(self.base_offset))] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io(format!("deleting {}", path.display()), e)),
            }
        }
        Ok(())
    }

    fn read_at(&self, buf: &mut [u8], pos: u64) -> Result<(), LogError> {
        self.file()?.read_exact_at(buf, pos).map_err(|e| LogError::io(format!("reading {}", self.path.display()), e))
    }

    /// The header of the batch at file position `pos`.
    fn header_at(&self, pos: u64) -> Result<BatchHeader, LogError> {
        let mut head = [0u8; HEADER_LEN];
        self.read_at(&mut head, pos)?;
        Ok(BatchHeader::parse(&head)?)
    }

    /// File position of the batch that contains `offset`, or `None` if the offset is past
    /// this segment's end.
    fn position_of(&self, offset: i64) -> Result<Option<u64>, LogError> {
        let size = self.size();
        let rel = (offset - self.base_offset).max(0);
        let start = {
            let idx = self.index.read();
            let i = idx.partition_point(|e| i64::from(e.relative_offset) <= rel);
            if i == 0 { 0 } else { u64::from(idx[i - 1].position) }
        };
        let mut pos = start;
        while pos + HEADER_LEN as u64 <= size {
            let h = self.header_at(pos)?;
            if h.last_offset() >= offset {
                return Ok(Some(pos));
            }
            pos += h.total_len() as u64;
        }
        Ok(None)
    }

    /// The offset of the first record with a timestamp >= `ts`, if this segment has one.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<i64>, LogError> {
        if self.max_timestamp() < ts {
            return Ok(None);
        }
        let start = {
            let idx = self.index.read();
            let j = idx.partition_point(|e| e.max_timestamp_before < ts);
            if j == 0 { 0 } else { u64::from(idx[j - 1].position) }
        };
        let size = self.size();
        let mut pos = start;
        while pos + HEADER_LEN as u64 <= size {
            let h = self.header_at(pos)?;
            if h.max_timestamp >= ts && !h.is_control() {
                let mut buf = vec![0u8; h.total_len()];
                self.read_at(&mut buf, pos)?;
                let (h, payload) = batch::payload(&buf)?;
                for r in batch::RecordIter::over(h, &payload) {
                    let r = r?;
                    if r.timestamp >= ts {
                        return Ok(Some(r.offset));
                    }
                }
            }
            pos += h.total_len() as u64;
        }
        Ok(None)
    }

    /// Reads whole batches starting with the one containing `offset`, up to `max_bytes`
    /// (but always at least one whole batch). Empty when `offset` is past the end.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<Vec<u8>, LogError> {
        let Some(pos) = self.position_of(offset)? else {
            return Ok(Vec::new());
        };
        let size = self.size();
        let first_len = self.header_at(pos)?.total_len() as u64;
        let want = (max_bytes as u64).max(first_len).min(size - pos);
        let mut buf = vec![0u8; want as usize];
        self.read_at(&mut buf, pos)?;
        // Keep whole batches only.
        let whole: usize = batch::split_batches(&buf).map(|b| b.len()).sum();
        buf.truncate(whole);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::{BatchBuilder, set_base_offset};
    use crate::log::storage::OpenFiles;

    fn batch_at(base: i64, n: usize) -> Vec<u8> {
        let mut b = BatchBuilder::new(None);
        for i in 0..n {
            b.push(i as i64, None, Some(format!("value-{i}").as_bytes()), &[]);
        }
        let mut v = b.finish();
        set_base_offset(&mut v, base);
        v
    }

    #[test]
    fn read_finds_batch_containing_offset_via_sparse_index() {
        let dir = tempfile::tempdir().unwrap();
        let seg = Segment::create(&OpenFiles::os(), dir.path(), 100, 64).unwrap();
        let mut base = 100;
        for _ in 0..50 {
            seg.append(&batch_at(base, 3)).unwrap();
            base += 3;
        }
        assert!(seg.index.read().len() > 5);
        assert_eq!(seg.next_offset(), 250);
        let data = seg.read(131, 1).unwrap();
        let h = BatchHeader::parse(&data).unwrap();
        assert_eq!(h.base_offset, 130);
        assert_eq!(data.len(), h.total_len());
        assert!(seg.read(250, 1000).unwrap().is_empty());
    }

    #[test]
    fn recovery_truncates_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let seg = Segment::create(&OpenFiles::os(), dir.path(), 0, 4096).unwrap();
        seg.append(&batch_at(0, 2)).unwrap();
        seg.append(&batch_at(2, 2)).unwrap();
        let good = seg.size();
        let torn = batch_at(4, 2);
        seg.append(&torn[..torn.len() - 5]).unwrap();
        drop(seg);
        let mut seen = 0;
        let seg = Segment::open(&OpenFiles::os(), dir.path(), 0, 4096, true, &mut |_| seen += 1).unwrap();
        assert_eq!(seen, 2);
        assert_eq!(seg.size(), good);
        assert_eq!(seg.next_offset(), 4);
        assert_eq!(std::fs::metadata(seg.path()).unwrap().len(), good);
    }

    #[test]
    fn sealed_segment_reopens_from_index_file() {
        let dir = tempfile::tempdir().unwrap();
        let seg = Segment::create(&OpenFiles::os(), dir.path(), 0, 32).unwrap();
        for i in 0..20 {
            seg.append(&batch_at(i * 2, 2)).unwrap();
        }
        seg.seal(dir.path()).unwrap();
        let entries = seg.index.read().clone();
        drop(seg);
        let seg = Segment::open(&OpenFiles::os(), dir.path(), 0, 32, false, &mut |_| {}).unwrap();
        assert_eq!(*seg.index.read(), entries);
        assert_eq!(seg.next_offset(), 40);
        let h = BatchHeader::parse(&seg.read(33, 1).unwrap()).unwrap();
        assert_eq!(h.base_offset, 32);
    }
}
