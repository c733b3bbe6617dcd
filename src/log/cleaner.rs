//! Log compaction: keeps the latest record per key in sealed segments, drops tombstones
//! older than `delete.retention.ms`, and leaves offsets unchanged (a compacted batch keeps
//! its base offset and offset deltas, with gaps where records were removed). Runs on the
//! background cleaner thread; appends and readers carry on meanwhile (readers holding an
//! old segment keep reading its unlinked file).

use std::collections::HashMap;
use std::sync::Arc;

use super::LogError;
use super::batch::{self, BatchBuilder, BatchHeader, HEADER_LEN, LOG_OVERHEAD, Record, RecordIter};
use super::partition::PartitionLog;
use super::segment::{Segment, log_file_name};
use super::varint::{put_varint, put_varlong};

/// Reads every batch of a segment, in order, calling `f` with its bytes.
fn for_each_batch(seg: &Segment, mut f: impl FnMut(&[u8]) -> Result<(), LogError>) -> Result<(), LogError> {
    let mut offset = seg.base_offset();
    loop {
        let data = seg.read(offset, 1 << 20)?;
        if data.is_empty() {
            return Ok(());
        }
        for b in batch::split_batches(&data) {
            let h = BatchHeader::parse(b)?;
            f(b)?;
            offset = h.last_offset() + 1;
        }
    }
}

/// Re-encodes a batch keeping only `kept` records, with their original offset and
/// timestamp deltas, the original header fields and codec.
fn rebuild_batch(h: &BatchHeader, kept: &[Record<'_>]) -> Result<Vec<u8>, LogError> {
    let mut records = Vec::new();
    for r in kept {
        let mut body = Vec::new();
        body.push(0u8);
        put_varlong(&mut body, r.timestamp - h.base_timestamp);
        put_varint(&mut body, (r.offset - h.base_offset) as i32);
        let put = |out: &mut Vec<u8>, b: Option<&[u8]>| match b {
            None => put_varint(out, -1),
            Some(b) => {
                put_varint(out, b.len() as i32);
                out.extend_from_slice(b);
            }
        };
        put(&mut body, r.key);
        put(&mut body, r.value);
        put_varint(&mut body, r.headers.len() as i32);
        for hd in &r.headers {
            put(&mut body, Some(hd.key));
            put(&mut body, hd.value);
        }
        put_varint(&mut records, body.len() as i32);
        records.extend_from_slice(&body);
    }
    let codec = h.compression()?;
    let records = super::compression::compress(codec, &records)?;
    // Start from a valid empty header and overwrite the fields we keep.
    let mut out = BatchBuilder::default().finish();
    out.truncate(HEADER_LEN);
    out.extend_from_slice(&records);
    out[0..8].copy_from_slice(&h.base_offset.to_be_bytes());
    let batch_length = (out.len() - LOG_OVERHEAD) as i32;
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    out[12..16].copy_from_slice(&h.partition_leader_epoch.to_be_bytes());
    out[21..23].copy_from_slice(&h.attributes.to_be_bytes());
    out[23..27].copy_from_slice(&h.last_offset_delta.to_be_bytes());
    out[27..35].copy_from_slice(&h.base_timestamp.to_be_bytes());
    out[35..43].copy_from_slice(&h.max_timestamp.to_be_bytes());
    out[43..51].copy_from_slice(&h.producer_id.to_be_bytes());
    out[51..53].copy_from_slice(&h.producer_epoch.to_be_bytes());
    out[53..57].copy_from_slice(&h.base_sequence.to_be_bytes());
    out[57..61].copy_from_slice(&(kept.len() as i32).to_be_bytes());
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// What one compaction pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CompactionStats {
    pub segments: usize,
    pub records_removed: u64,
}

/// Compacts the sealed segments of `p`. The latest offset of each key is taken from the
/// whole partition (the active segment included), so older copies in sealed segments go
/// as soon as a newer one exists anywhere. Blocking.
pub fn compact(p: &PartitionLog, now_ms: i64) -> Result<CompactionStats, LogError> {
    let sealed = p.sealed_segments();
    if sealed.is_empty() {
        return Ok(CompactionStats::default());
    }
    // key -> latest offset, across the partition.
    let mut latest: HashMap<Vec<u8>, i64> = HashMap::new();
    let end = p.end_offset();
    let mut offset = p.start_offset();
    while offset < end {
        let data = p.read(offset, 1 << 20)?;
        if data.is_empty() {
            break;
        }
        for b in batch::split_batches(&data) {
            let (h, payload) = batch::payload(b)?;
            if !h.is_control() {
                for r in RecordIter::over(h, &payload) {
                    let r = r?;
                    if let Some(k) = r.key {
                        latest.insert(k.to_vec(), r.offset);
                    }
                }
            }
            offset = h.last_offset() + 1;
        }
    }
    let tombstone_horizon = now_ms - p.config().delete_retention_ms;
    let mut stats = CompactionStats::default();
    for seg in sealed {
        let mut out = Vec::new();
        let mut removed = 0u64;
        for_each_batch(&seg, |b| {
            let (h, payload) = batch::payload(b)?;
            if h.is_control() {
                out.extend_from_slice(b);
                return Ok(());
            }
            let mut kept = Vec::new();
            let mut total = 0;
            for r in RecordIter::over(h, &payload) {
                let r = r?;
                total += 1;
                let keep = match r.key {
                    None => true,
                    Some(k) => latest.get(k) == Some(&r.offset) && !(r.value.is_none() && r.timestamp < tombstone_horizon),
                };
                if keep {
                    kept.push(r);
                }
            }
            removed += (total - kept.len()) as u64;
            if kept.len() == total {
                out.extend_from_slice(b);
            } else if !kept.is_empty() {
                out.extend(rebuild_batch(&h, &kept)?);
            }
            Ok(())
        })?;
        if removed == 0 {
            continue;
        }
        let dir = p.dir();
        let tmp = dir.join(format!("{}.cleaned", log_file_name(seg.base_offset())));
        std::fs::write(&tmp, &out)
            .and_then(|_| std::fs::File::open(&tmp).and_then(|f| f.sync_all()))
            .map_err(|e| LogError::io(format!("writing {}", tmp.display()), e))?;
        // Readers holding the old segment keep reading the old file.
        seg.pin_file()?;
        std::fs::rename(&tmp, seg.path()).map_err(|e| LogError::io(format!("replacing {}", seg.path().display()), e))?;
        p.files().sync_dir(dir).map_err(|e| LogError::io(format!("syncing directory {}", dir.display()), e))?;
        let cleaned = Segment::open(p.files(), dir, seg.base_offset(), p.config().index_interval_bytes, true, &mut |_| {})?;
        cleaned.seal(dir)?;
        p.replace_segment(Arc::new(cleaned));
        stats.segments += 1;
        stats.records_removed += removed;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::Compression;
    use crate::log::{CleanupPolicy, FlushPolicy, TopicConfig};

    fn records(p: &PartitionLog) -> Vec<(i64, String, Option<String>)> {
        let mut out = Vec::new();
        let mut at = p.start_offset();
        while at < p.end_offset() {
            let data = p.read(at, 1 << 16).unwrap();
            assert!(!data.is_empty(), "empty read at {at} of {}", p.end_offset());
            for b in batch::split_batches(&data) {
                let (h, payload) = batch::payload(b).unwrap();
                for r in RecordIter::over(h, &payload) {
                    let r = r.unwrap();
                    if r.offset >= at {
                        out.push((r.offset, String::from_utf8_lossy(r.key.unwrap()).into_owned(), r.value.map(|v| String::from_utf8_lossy(v).into_owned())));
                    }
                }
                at = h.last_offset() + 1;
            }
        }
        out
    }

    #[test]
    fn compaction_keeps_latest_per_key_with_original_offsets_and_expires_old_tombstones() {
        for codec in [Compression::None, Compression::Lz4] {
            let dir = tempfile::tempdir().unwrap();
            let cfg = TopicConfig {
                segment_bytes: 2048,
                index_interval_bytes: 256,
                flush: FlushPolicy::Never,
                cleanup: CleanupPolicy { delete: false, compact: true },
                delete_retention_ms: 60_000,
                ..TopicConfig::default()
            };
            let p = PartitionLog::open("t", 0, dir.path(), cfg.clone()).unwrap();
            let now = chrono::Utc::now().timestamp_millis();
            let mut latest = std::collections::BTreeMap::new();
            let mut offset = 0i64;
            for round in 0..20 {
                let mut b = BatchBuilder::new(None);
                for k in 0..5 {
                    let value = format!("v{round}-{k}");
                    b.push(now, Some(format!("k{k}").as_bytes()), Some(value.as_bytes()), &[]);
                    latest.insert(format!("k{k}"), (offset, Some(value)));
                    offset += 1;
                }
                p.append(b.finish_compressed(codec).unwrap()).unwrap();
            }
            // An old tombstone (expired) for k3 and a fresh one for k4.
            let mut b = BatchBuilder::new(None);
            b.push(now - 3_600_000, Some(b"k3"), None, &[]);
            b.push(now, Some(b"k4"), None, &[]);
            p.append(b.finish()).unwrap();
            latest.remove("k3");
            latest.insert("k4".into(), (offset + 1, None));
            // Roll so that the tombstones are in a sealed segment.
            for _ in 0..20 {
                let mut b = BatchBuilder::new(None);
                b.push(now, Some(b"other"), Some(&[b'x'; 200]), &[]);
                p.append(b.finish()).unwrap();
            }
            let end = p.end_offset();
            let before = records(&p).len();
            let stats = compact(&p, now).unwrap();
            assert!(stats.records_removed > 90, "{stats:?}");
            let after = records(&p);
            assert!(after.len() < before);
            assert_eq!(p.end_offset(), end);
            for (k, (off, v)) in &latest {
                let found: Vec<_> = after.iter().filter(|r| &r.1 == k).collect();
                assert_eq!(found.len(), 1, "{k}: {found:?}");
                assert_eq!(found[0].0, *off);
                assert_eq!(&found[0].2, v);
            }
            assert!(after.iter().all(|r| r.1 != "k3"), "expired tombstone kept");
            // Offsets stay increasing and the log reopens.
            assert!(after.windows(2).all(|w| w[0].0 < w[1].0));
            drop(p);
            let p = PartitionLog::open("t", 0, dir.path(), cfg).unwrap();
            assert_eq!(records(&p), after);
        }
    }
}
