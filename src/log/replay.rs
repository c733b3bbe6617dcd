//! Reading a whole partition back in order, as the internal topics that hold Eddy's own
//! state (the command topic, the schema registry's) are read at start-up.

use super::batch::{self, BatchHeader, Record, RecordIter};
use super::{LogError, PartitionStore};

/// What a replay met at one place: a record, or an offset that cannot be read and why (a
/// batch that does not decode, a malformed record; replay goes on past it).
pub type Replayed<'a, 'b> = Result<&'a Record<'b>, (i64, String)>;

/// Calls `seen` with every record of `partition` from `from` to its end, in order, and
/// with what cannot be read. Blocking.
pub fn replay(partition: &dyn PartitionStore, from: i64, seen: impl FnMut(Replayed<'_, '_>)) -> Result<(), LogError> {
    let end = partition.current_end_offset()?;
    replay_until(partition, from, Some(end), |p, at| p.read(at, 1 << 20), seen)
}

/// [`replay`] for a reader of committed data only: the records of committed transactions
/// (and of producers outside transactions) up to the last stable offset, as a
/// read-committed Kafka consumer sees them. Blocking.
pub fn replay_committed(partition: &dyn PartitionStore, from: i64, seen: impl FnMut(Replayed<'_, '_>)) -> Result<(), LogError> {
    replay_until(partition, from, None, |p, at| p.read_committed(at, 1 << 20), seen)
}

/// Reads chunks with `read` from `from` until `end` (or until a read returns nothing).
fn replay_until(
    partition: &dyn PartitionStore,
    from: i64,
    end: Option<i64>,
    read: impl Fn(&dyn PartitionStore, i64) -> Result<Vec<u8>, LogError>,
    mut seen: impl FnMut(Replayed<'_, '_>),
) -> Result<(), LogError> {
    let mut offset = from;
    while end.is_none_or(|end| offset < end) {
        let data = read(partition, offset)?;
        if data.is_empty() {
            break;
        }
        for b in batch::split_batches(&data) {
            let h = BatchHeader::parse(b)?;
            let next = h.last_offset() + 1;
            if h.is_control() {
                offset = next;
                continue;
            }
            match batch::payload(b) {
                Ok((_, payload)) => {
                    for r in RecordIter::over(h, &payload) {
                        match r {
                            Ok(r) if r.offset >= offset => seen(Ok(&r)),
                            Ok(_) => {}
                            Err(e) => {
                                seen(Err((h.base_offset, format!("its batch holds a malformed record: {e}"))));
                                break;
                            }
                        }
                    }
                }
                Err(e) => seen(Err((h.base_offset, format!("its batch cannot be decoded: {e}")))),
            }
            offset = next;
        }
    }
    Ok(())
}
