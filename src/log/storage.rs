//! The file layer under segments: how segment files are created, opened, written, synced
//! and truncated, behind a trait so tests can inject faults (a failed fsync, a failed or
//! short write, a full disk) without sleeping or filling a real disk. [`OsStorage`] is the
//! real one; [`FaultyStorage`] wraps it for fault-injection tests.
//!
//! [`OpenFiles`] keeps a bounded number of segment files open and opens the others on
//! demand, so a server with thousands of partitions stays within its file-descriptor
//! limit (each partition used to hold every one of its segment files open).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};

use parking_lot::Mutex;

/// One segment file, accessed by position.
pub trait SegmentFile: Send + Sync {
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()>;
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()>;
    /// Forces written data to disk (fdatasync).
    fn sync_data(&self) -> io::Result<()>;
    fn set_len(&self, len: u64) -> io::Result<()>;
    fn len(&self) -> io::Result<u64>;
    fn is_empty(&self) -> io::Result<bool> {
        self.len().map(|n| n == 0)
    }
}

/// Creates and opens segment files, and makes directory entries durable.
pub trait Storage: Send + Sync {
    /// Creates an empty file (truncating one left at `path`).
    fn create(&self, path: &Path) -> io::Result<Arc<dyn SegmentFile>>;
    /// Opens an existing file for reading and writing.
    fn open(&self, path: &Path) -> io::Result<Arc<dyn SegmentFile>>;
    /// fsyncs a directory, so files created or renamed in it survive a power loss.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The operating system's files.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsStorage;

struct OsFile(File);

impl SegmentFile for OsFile {
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        self.0.write_all_at(buf, pos)
    }
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, pos)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.0.metadata().map(|m| m.len())
    }
}

impl Storage for OsStorage {
    fn create(&self, path: &Path) -> io::Result<Arc<dyn SegmentFile>> {
        let f = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)?;
        Ok(Arc::new(OsFile(f)))
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn SegmentFile>> {
        let f = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Arc::new(OsFile(f)))
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// Faults to inject, shared by every file a [`FaultyStorage`] hands out. Counters say how
/// many of the next calls fail; a negative write budget means no limit.
#[derive(Debug)]
pub struct Faults {
    /// The next N `sync_data` calls fail with EIO.
    pub fail_syncs: AtomicU32,
    /// The next N writes fail with EIO after writing half their bytes (a short write).
    pub fail_writes: AtomicU32,
    /// Bytes that may still be written before writes fail with ENOSPC (a full disk); the
    /// write that crosses the budget writes what fits, then fails. Negative: no limit.
    pub space_left: AtomicI64,
    /// The next N directory fsyncs fail with EIO.
    pub fail_dir_syncs: AtomicU32,
    /// The next N file creations fail with ENOSPC.
    pub fail_creates: AtomicU32,
    /// File creations that may still succeed before every further one fails with
    /// EMFILE (too many open files). Negative: no limit.
    pub creates_left: AtomicI64,
    /// When a sync fails, the data written since the file's last good sync is lost, as
    /// when the kernel drops dirty pages after a writeback error.
    pub lose_unsynced_on_failed_sync: AtomicBool,
    /// How many faults fired.
    pub fired: AtomicU64,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            fail_syncs: AtomicU32::new(0),
            fail_writes: AtomicU32::new(0),
            space_left: AtomicI64::new(-1),
            fail_dir_syncs: AtomicU32::new(0),
            fail_creates: AtomicU32::new(0),
            creates_left: AtomicI64::new(-1),
            lose_unsynced_on_failed_sync: AtomicBool::new(false),
            fired: AtomicU64::new(0),
        }
    }
}

fn take_one(counter: &AtomicU32) -> bool {
    counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1)).is_ok()
}

impl Faults {
    fn fire(&self) {
        self.fired.fetch_add(1, Ordering::AcqRel);
    }
}

/// A test double over the real file system that fails calls as [`Faults`] says.
#[derive(Debug, Default, Clone)]
pub struct FaultyStorage {
    pub faults: Arc<Faults>,
}

struct FaultyFile {
    inner: Arc<dyn SegmentFile>,
    faults: Arc<Faults>,
    /// Length at the last successful sync.
    synced_len: AtomicU64,
}

fn enospc() -> io::Error {
    io::Error::from_raw_os_error(28)
}

fn eio() -> io::Error {
    io::Error::from_raw_os_error(5)
}

impl SegmentFile for FaultyFile {
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        if take_one(&self.faults.fail_writes) {
            self.faults.fire();
            self.inner.write_all_at(&buf[..buf.len() / 2], pos)?;
            return Err(eio());
        }
        let left = self.faults.space_left.load(Ordering::Acquire);
        if left >= 0 {
            let fits = (left as u64).min(buf.len() as u64) as usize;
            self.faults.space_left.fetch_sub(fits as i64, Ordering::AcqRel);
            if fits < buf.len() {
                self.faults.fire();
                self.inner.write_all_at(&buf[..fits], pos)?;
                return Err(enospc());
            }
        }
        self.inner.write_all_at(buf, pos)
    }
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, pos)
    }
    fn sync_data(&self) -> io::Result<()> {
        if take_one(&self.faults.fail_syncs) {
            self.faults.fire();
            if self.faults.lose_unsynced_on_failed_sync.load(Ordering::Acquire) {
                let keep = self.synced_len.load(Ordering::Acquire).min(self.inner.len()?);
                self.inner.set_len(keep)?;
            }
            return Err(eio());
        }
        self.inner.sync_data()?;
        self.synced_len.store(self.inner.len()?, Ordering::Release);
        Ok(())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)?;
        self.synced_len.fetch_min(len, Ordering::AcqRel);
        Ok(())
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}

impl FaultyStorage {
    fn wrap(&self, inner: Arc<dyn SegmentFile>) -> io::Result<Arc<dyn SegmentFile>> {
        let synced_len = AtomicU64::new(inner.len()?);
        Ok(Arc::new(FaultyFile { inner, faults: self.faults.clone(), synced_len }))
    }
}

impl Storage for FaultyStorage {
    fn create(&self, path: &Path) -> io::Result<Arc<dyn SegmentFile>> {
        if take_one(&self.faults.fail_creates) {
            self.faults.fire();
            return Err(enospc());
        }
        if self.faults.creates_left.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| if n > 0 { Some(n - 1) } else { None }).is_err()
            && self.faults.creates_left.load(Ordering::Acquire) == 0
        {
            self.faults.fire();
            return Err(io::Error::from_raw_os_error(24));
        }
        self.wrap(OsStorage.create(path)?)
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn SegmentFile>> {
        self.wrap(OsStorage.open(path)?)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if take_one(&self.faults.fail_dir_syncs) {
            self.faults.fire();
            return Err(eio());
        }
        OsStorage.sync_dir(dir)
    }
}

/// Files open at once by default when the limit is not derived from the process's
/// file-descriptor limit.
pub const DEFAULT_OPEN_FILES: usize = 256;

struct OpenEntry {
    file: Arc<dyn SegmentFile>,
    last_used: u64,
}

#[derive(Default)]
struct OpenState {
    tick: u64,
    files: HashMap<u64, OpenEntry>,
}

/// A bounded set of open segment files, shared by every partition of a log. A segment
/// asks for its file by id on each access; a file not open is opened again, closing the
/// least recently used one when the set is full. A handle in use stays valid after it is
/// evicted (it closes when its last user drops it).
pub struct OpenFiles {
    storage: Arc<dyn Storage>,
    capacity: usize,
    next_id: AtomicU64,
    state: Mutex<OpenState>,
}

impl std::fmt::Debug for OpenFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenFiles").field("capacity", &self.capacity).field("open", &self.state.lock().files.len()).finish()
    }
}

impl OpenFiles {
    pub fn new(storage: Arc<dyn Storage>, capacity: usize) -> Arc<OpenFiles> {
        Arc::new(OpenFiles { storage, capacity: capacity.max(2), next_id: AtomicU64::new(1), state: Mutex::new(OpenState::default()) })
    }

    /// Real files, at most [`DEFAULT_OPEN_FILES`] open.
    pub fn os() -> Arc<OpenFiles> {
        OpenFiles::new(Arc::new(OsStorage), DEFAULT_OPEN_FILES)
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many files are open now.
    pub fn open_count(&self) -> usize {
        self.state.lock().files.len()
    }

    /// A new id for a segment file.
    pub fn new_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Creates the file for `id` (truncating one left at `path`) and keeps it open.
    pub fn create(&self, id: u64, path: &Path) -> io::Result<Arc<dyn SegmentFile>> {
        let file = self.storage.create(path)?;
        self.keep(id, file.clone());
        Ok(file)
    }

    /// The open file for `id`, opening `path` when it is not open.
    pub fn get(&self, id: u64, path: &Path) -> io::Result<Arc<dyn SegmentFile>> {
        {
            let mut st = self.state.lock();
            st.tick += 1;
            let tick = st.tick;
            if let Some(e) = st.files.get_mut(&id) {
                e.last_used = tick;
                return Ok(e.file.clone());
            }
        }
        let file = self.storage.open(path)?;
        self.keep(id, file.clone());
        Ok(file)
    }

    fn keep(&self, id: u64, file: Arc<dyn SegmentFile>) {
        let mut st = self.state.lock();
        st.tick += 1;
        let tick = st.tick;
        while st.files.len() >= self.capacity && !st.files.contains_key(&id) {
            let Some(oldest) = st.files.iter().min_by_key(|(_, e)| e.last_used).map(|(k, _)| *k) else {
                break;
            };
            st.files.remove(&oldest);
        }
        st.files.insert(id, OpenEntry { file, last_used: tick });
    }

    /// Closes the file for `id` (its segment was deleted or replaced).
    pub fn forget(&self, id: u64) {
        self.state.lock().files.remove(&id);
    }

    pub fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.storage.sync_dir(dir)
    }
}

/// Raises the soft limit on open files to the hard limit (as Kafka's packaging
/// recommends) and returns the soft limit in effect.
pub fn raise_open_file_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit struct.
    unsafe {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
        lim.rlim_cur
    }
}

/// A path's directory, for fsyncing after creating or renaming a file in it.
pub fn parent_dir(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_files_stay_within_capacity_and_reopen_on_demand() {
        let dir = tempfile::tempdir().unwrap();
        let files = OpenFiles::new(Arc::new(OsStorage), 3);
        let ids: Vec<u64> = (0..6).map(|_| files.new_id()).collect();
        for (i, id) in ids.iter().enumerate() {
            let f = files.create(*id, &dir.path().join(format!("{i}.log"))).unwrap();
            f.write_all_at(format!("file {i}").as_bytes(), 0).unwrap();
            assert!(files.open_count() <= 3);
        }
        for (i, id) in ids.iter().enumerate() {
            let f = files.get(*id, &dir.path().join(format!("{i}.log"))).unwrap();
            let mut buf = vec![0u8; 6];
            f.read_exact_at(&mut buf, 0).unwrap();
            assert_eq!(buf, format!("file {i}").as_bytes());
            assert!(files.open_count() <= 3);
        }
        files.forget(ids[5]);
        assert!(files.open_count() <= 2);
    }

    #[test]
    fn faulty_storage_fails_as_told() {
        let dir = tempfile::tempdir().unwrap();
        let s = FaultyStorage::default();
        let f = s.create(&dir.path().join("a")).unwrap();
        f.write_all_at(b"hello", 0).unwrap();
        f.sync_data().unwrap();
        s.faults.fail_syncs.store(1, Ordering::Release);
        s.faults.lose_unsynced_on_failed_sync.store(true, Ordering::Release);
        f.write_all_at(b" world", 5).unwrap();
        assert_eq!(f.sync_data().unwrap_err().raw_os_error(), Some(5));
        assert_eq!(f.len().unwrap(), 5, "unsynced bytes were dropped");
        f.sync_data().unwrap();
        s.faults.space_left.store(3, Ordering::Release);
        let e = f.write_all_at(b"abcdef", 5).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert_eq!(f.len().unwrap(), 8);
        assert_eq!(s.faults.fired.load(Ordering::Acquire), 2);
    }
}
