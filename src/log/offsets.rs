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

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl OffsetStore {
    pub fn open(dir: &Path) -> Result<OffsetStore, LogError> {
        std::fs::create_dir_all(dir).map_err(|e| LogError::io(format!("creating {}", dir.display()), e))?;
        let path = dir.join("offsets.log");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(LogError::io(format!("reading {}", path.display()), e)),
        };
        let mut groups = HashMap::new();
        let mut pos = 0usize;
        while bytes.len() - pos >= 8 {
            let len = u32::from_be_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]]) as usize;
            let crc = u32::from_be_bytes([bytes[pos + 4], bytes[pos + 5], bytes[pos + 6], bytes[pos + 7]]);
            let Some(payload) = bytes.get(pos + 8..pos + 8 + len) else { break };
            if crc32c::crc32c(payload) != crc {
                break;
            }
            let Ok(entry) = serde_json::from_slice::<Entry>(payload) else { break };
            apply(&mut groups, entry);
            pos += 8 + len;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(|e| LogError::io(format!("opening {}", path.display()), e))?;
        if (pos as u64) < bytes.len() as u64 {
            tracing::warn!(file = %path.display(), valid = pos, "truncating torn tail of the committed-offsets file");
            file.set_len(pos as u64).map_err(|e| LogError::io(format!("truncating {}", path.display()), e))?;
        }
        Ok(OffsetStore { path, inner: Mutex::new(Inner { file, groups, file_bytes: pos as u64 }) })
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

    fn write_entry(&self, entry: Entry, sync: bool) -> Result<(), LogError> {
        let payload = serde_json::to_vec(&entry).map_err(|e| LogError::io("encoding offsets", e.into()))?;
        let framed = frame(&payload);
        let mut inner = self.inner.lock();
        inner
            .file
            .write_all(&framed)
            .and_then(|_| if sync { inner.file.sync_data() } else { Ok(()) })
            .map_err(|e| LogError::io(format!("writing {}", self.path.display()), e))?;
        inner.file_bytes += framed.len() as u64;
        apply(&mut inner.groups, entry);
        if inner.file_bytes > 4 << 20 {
            self.rewrite(&mut inner)?;
        }
        Ok(())
    }

    /// Replaces the file with one entry per group.
    fn rewrite(&self, inner: &mut Inner) -> Result<(), LogError> {
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
        if live * 2 > inner.file_bytes {
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
}
