//! Committed offsets per (group, topic, partition), persisted in an append-only file of
//! checksummed entries that is rewritten when it grows much larger than its live content.
//!
//! Used by Kafka consumer groups and by persistent queries (whose group is the query id
//! and whose metadata string carries the sink's producer sequence numbers).

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::LogError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedOffset {
    pub offset: i64,
    #[serde(default)]
    pub metadata: String,
    #[serde(default)]
    pub commit_time_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    group: String,
    #[serde(default)]
    delete: bool,
    #[serde(default)]
    offsets: Vec<EntryOffset>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct EntryOffset {
    topic: String,
    partition: i32,
    #[serde(flatten)]
    committed: CommittedOffset,
}

type GroupOffsets = BTreeMap<(String, i32), CommittedOffset>;

struct Inner {
    file: File,
    groups: HashMap<String, GroupOffsets>,
    file_bytes: u64,
}

pub struct OffsetStore {
    path: PathBuf,
    inner: Mutex<Inner>,
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn apply(groups: &mut HashMap<String, GroupOffsets>, e: Entry) {
    if e.delete {
        groups.remove(&e.group);
        return;
    }
    let g = groups.entry(e.group).or_default();
    for o in e.offsets {
        g.insert((o.topic, o.partition), o.committed);
    }
}

/// Reads frames from the start: the groups they hold, the end of the last valid frame, and
/// how many damaged bytes were skipped to reach later valid frames. A damaged frame (torn
/// write, bad checksum) is skipped by looking for the next position where a whole frame
/// with a good checksum and a readable entry starts.
fn read_frames(bytes: &[u8]) -> (HashMap<String, GroupOffsets>, usize, usize) {
    let mut groups = HashMap::new();
    let mut pos = 0usize;
    let mut valid_end = 0usize;
    let mut skipped = 0usize;
    let mut scanning_from: Option<usize> = None;
    while bytes.len() - pos >= 8 {
        match frame_at(bytes, pos) {
            Some((entry, len)) => {
                if let Some(from) = scanning_from.take() {
                    skipped += pos - from;
                }
                apply(&mut groups, entry);
                pos += len;
                valid_end = pos;
            }
            None => {
                scanning_from.get_or_insert(pos);
                pos += 1;
            }
        }
    }
    (groups, valid_end, skipped)
}

/// The entry of a whole, intact frame at `pos`, and the frame's length.
fn frame_at(bytes: &[u8], pos: usize) -> Option<(Entry, usize)> {
    let head = bytes.get(pos..pos + 8)?;
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let crc = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    let payload = bytes.get(pos + 8..(pos + 8).checked_add(len)?)?;
    if payload.first() != Some(&b'{') || crc32c::crc32c(payload) != crc {
        return None;
    }
    let entry = serde_json::from_slice::<Entry>(payload).ok()?;
    Some((entry, 8 + len))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl OffsetStore {
    pub fn open(dir: &Path) -> Result<OffsetStore, LogError> {
        std::fs::create_dir_all(dir).map_err(|e| LogError::io(format!("creating {}", dir.display()), e))?;
        let path = dir.join("offsets.log");
        let (bytes, existed) = match std::fs::read(&path) {
            Ok(b) => (b, true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Vec::new(), false),
            Err(e) => return Err(LogError::io(format!("reading {}", path.display()), e)),
        };
        let (groups, valid_end, skipped) = read_frames(&bytes);
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(|e| LogError::io(format!("opening {}", path.display()), e))?;
        if !existed {
            super::sync_dir(dir)?;
        }
        let store = OffsetStore { path: path.clone(), inner: Mutex::new(Inner { file, groups, file_bytes: valid_end as u64 }) };
        if skipped > 0 {
            // Frames after a torn one were kept; write the file again without the damage.
            tracing::warn!(file = %path.display(), skipped_bytes = skipped, "the committed-offsets file had a damaged frame; later commits were \
                recovered and the file is rewritten");
            let mut inner = store.inner.lock();
            store.rewrite_all(&mut inner)?;
        } else if valid_end < bytes.len() {
            tracing::warn!(file = %path.display(), valid = valid_end, "truncating torn tail of the committed-offsets file");
            store.inner.lock().file.set_len(valid_end as u64).map_err(|e| LogError::io(format!("truncating {}", path.display()), e))?;
        }
        Ok(store)
    }

    /// Durably commits offsets for a group; all of them or none. Blocking (fsync).
    pub fn commit(&self, group: &str, offsets: &[(&str, i32, i64, &str)]) -> Result<(), LogError> {
        self.commit_with(group, offsets, true)
    }

    /// Records offsets without fsync: for progress that is made durable elsewhere (stateful
    /// queries keep their authoritative checkpoint in the state store) and is kept here so
    /// lag is visible.
    pub fn commit_unsynced(&self, group: &str, offsets: &[(&str, i32, i64, &str)]) -> Result<(), LogError> {
        self.commit_with(group, offsets, false)
    }

    fn commit_with(&self, group: &str, offsets: &[(&str, i32, i64, &str)], sync: bool) -> Result<(), LogError> {
        let t = now_ms();
        let entry = Entry {
            group: group.to_string(),
            delete: false,
            offsets: offsets
                .iter()
                .map(|(topic, partition, offset, metadata)| EntryOffset {
                    topic: topic.to_string(),
                    partition: *partition,
                    committed: CommittedOffset { offset: *offset, metadata: metadata.to_string(), commit_time_ms: t },
                })
                .collect(),
        };
        self.write_entry(entry, sync)
    }

    /// Forgets a group's offsets.
    pub fn delete_group(&self, group: &str) -> Result<(), LogError> {
        self.write_entry(Entry { group: group.to_string(), delete: true, offsets: Vec::new() }, true)
    }

    /// Appends one frame. A failed write or fsync leaves the file as it was (truncated back
    /// to the last whole frame), so later commits are never stranded behind a torn frame.
    fn write_entry(&self, entry: Entry, sync: bool) -> Result<(), LogError> {
        let payload = serde_json::to_vec(&entry).map_err(|e| LogError::io("encoding offsets", e.into()))?;
        let framed = frame(&payload);
        let mut inner = self.inner.lock();
        let written = inner.file.write_all(&framed).and_then(|_| if sync { inner.file.sync_data() } else { Ok(()) });
        if let Err(e) = written {
            let end = inner.file_bytes;
            if let Err(t) = inner.file.set_len(end) {
                // Reopening skips a damaged frame and recovers the frames after it.
                tracing::error!(file = %self.path.display(), "cannot truncate a failed commit back to {end} bytes: {t}");
            }
            return Err(LogError::io(format!("writing {}", self.path.display()), e));
        }
        inner.file_bytes += framed.len() as u64;
        apply(&mut inner.groups, entry);
        if inner.file_bytes > 4 << 20 {
            self.rewrite(&mut inner)?;
        }
        Ok(())
    }

    /// Replaces the file with one entry per group when that halves it at least.
    fn rewrite(&self, inner: &mut Inner) -> Result<(), LogError> {
        self.rewrite_if(inner, |live, file_bytes| live * 2 <= file_bytes)
    }

    /// Replaces the file with one entry per group.
    fn rewrite_all(&self, inner: &mut Inner) -> Result<(), LogError> {
        self.rewrite_if(inner, |_, _| true)
    }

    fn rewrite_if(&self, inner: &mut Inner, worth_it: impl Fn(u64, u64) -> bool) -> Result<(), LogError> {
        let mut out = Vec::new();
        for (group, offsets) in &inner.groups {
            let entry = Entry {
                group: group.clone(),
                delete: false,
                offsets: offsets
                    .iter()
                    .map(|((topic, partition), c)| EntryOffset { topic: topic.clone(), partition: *partition, committed: c.clone() })
                    .collect(),
            };
            let payload = serde_json::to_vec(&entry).map_err(|e| LogError::io("encoding offsets", e.into()))?;
            out.extend_from_slice(&frame(&payload));
        }
        let live = out.len() as u64;
        if !worth_it(live, inner.file_bytes) {
            return Ok(());
        }
        super::write_file_durably(&self.path, &out)?;
        inner.file = OpenOptions::new().append(true).open(&self.path).map_err(|e| LogError::io(format!("opening {}", self.path.display()), e))?;
        inner.file_bytes = live;
        Ok(())
    }

    pub fn fetch(&self, group: &str, topic: &str, partition: i32) -> Option<CommittedOffset> {
        self.inner.lock().groups.get(group)?.get(&(topic.to_string(), partition)).cloned()
    }

    /// All committed offsets of a group, by (topic, partition).
    pub fn group_offsets(&self, group: &str) -> Vec<(String, i32, CommittedOffset)> {
        self.inner.lock().groups.get(group).map(|g| g.iter().map(|((t, p), c)| (t.clone(), *p, c.clone())).collect()).unwrap_or_default()
    }

    /// The lowest offset any group committed on a partition (None when no group did).
    pub fn min_committed(&self, topic: &str, partition: i32) -> Option<i64> {
        let key = (topic.to_string(), partition);
        self.inner.lock().groups.values().filter_map(|g| g.get(&key).map(|c| c.offset)).min()
    }

    pub fn groups(&self) -> Vec<String> {
        let mut g: Vec<_> = self.inner.lock().groups.keys().cloned().collect();
        g.sort();
        g
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_survive_reopen_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = OffsetStore::open(dir.path()).unwrap();
            s.commit("g", &[("t", 0, 5, ""), ("t", 1, 7, "m")]).unwrap();
            s.commit("g", &[("t", 0, 9, "")]).unwrap();
            s.commit("h", &[("u", 0, 1, "")]).unwrap();
            s.delete_group("h").unwrap();
        }
        // Simulate a torn write at the end.
        let path = dir.path().join("offsets.log");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[0, 0, 0, 40, 1, 2]).unwrap();
        drop(f);
        let s = OffsetStore::open(dir.path()).unwrap();
        assert_eq!(s.fetch("g", "t", 0).unwrap().offset, 9);
        assert_eq!(s.fetch("g", "t", 1).unwrap().metadata, "m");
        assert_eq!(s.fetch("h", "u", 0), None);
        s.commit("g", &[("t", 0, 10, "")]).unwrap();
        drop(s);
        let s = OffsetStore::open(dir.path()).unwrap();
        assert_eq!(s.fetch("g", "t", 0).unwrap().offset, 10);
    }

    #[test]
    fn rewrite_keeps_latest_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let s = OffsetStore::open(dir.path()).unwrap();
        let meta = "x".repeat(4000);
        for i in 0..1200 {
            s.commit("g", &[("t", 0, i, &meta)]).unwrap();
        }
        let size = std::fs::metadata(dir.path().join("offsets.log")).unwrap().len();
        assert!(size < 5 << 20, "file was not rewritten: {size}");
        drop(s);
        let s = OffsetStore::open(dir.path()).unwrap();
        assert_eq!(s.fetch("g", "t", 0).unwrap().offset, 1199);
    }

    #[test]
    fn commits_after_a_torn_frame_in_the_middle_are_recovered() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = OffsetStore::open(dir.path()).unwrap();
            s.commit("g", &[("t", 0, 5, "")]).unwrap();
        }
        // A frame torn by a failed write in an earlier version, then later commits after it.
        let path = dir.path().join("offsets.log");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[0, 0, 0, 90, 7, 7, 7, 7, b'{', b'"']).unwrap();
        let later = Entry {
            group: "g".into(),
            delete: false,
            offsets: vec![EntryOffset {
                topic: "t".into(),
                partition: 0,
                committed: CommittedOffset { offset: 9, metadata: String::new(), commit_time_ms: 1 },
            }],
        };
        f.write_all(&frame(&serde_json::to_vec(&later).unwrap())).unwrap();
        drop(f);
        let s = OffsetStore::open(dir.path()).unwrap();
        assert_eq!(s.fetch("g", "t", 0).unwrap().offset, 9, "the commit after the torn frame survives");
        s.commit("g", &[("t", 0, 11, "")]).unwrap();
        drop(s);
        let s = OffsetStore::open(dir.path()).unwrap();
        assert_eq!(s.fetch("g", "t", 0).unwrap().offset, 11);
    }
}
