//! Idempotent-producer state of one partition: per producer id, its epoch and the sequence
//! ranges (and offsets) of its last few batches, so a retried batch is acknowledged with
//! its original offsets instead of being written twice.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::LogError;
use super::batch::{BatchHeader, ControlKind};

/// How many recent batches per producer are remembered for duplicate detection.
pub const RETAINED_BATCHES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqRange {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<SeqRange>,
}

impl ProducerEntry {
    pub fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }
}

/// What to do with an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqCheck {
    Append,
    Duplicate { base_offset: i64, last_offset: i64 },
}

/// A transaction that ended in an abort: its batches, from `first_offset` to the marker at
/// `last_offset`, are skipped by read-committed readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
    /// Open transactions: producer id -> offset of its first batch in this partition.
    #[serde(default)]
    ongoing: BTreeMap<i64, i64>,
    /// Aborted transactions still within the log, oldest first.
    #[serde(default)]
    aborted: Vec<AbortedTxn>,
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX { 0 } else { seq + 1 }
}

impl ProducerStates {
    pub fn check(&self, h: &BatchHeader, topic: &str, partition: i32) -> Result<SeqCheck, LogError> {
        if !h.has_producer() || h.base_sequence < 0 {
            return Ok(SeqCheck::Append);
        }
        let Some(entry) = self.producers.get(&h.producer_id) else {
            return Ok(SeqCheck::Append);
        };
        if h.producer_epoch < entry.epoch {
            return Err(LogError::ProducerFenced { producer_id: h.producer_id, epoch: h.producer_epoch, current_epoch: entry.epoch });
        }
        if h.producer_epoch > entry.epoch {
            return Ok(SeqCheck::Append);
        }
        let (first, last) = (h.base_sequence, h.last_sequence());
        if let Some(b) = entry.batches.iter().find(|b| b.first_seq == first && b.last_seq == last) {
            return Ok(SeqCheck::Duplicate { base_offset: b.base_offset, last_offset: b.last_offset });
        }
        match entry.last_seq() {
            Some(prev) if first != next_seq(prev) => {
                Err(LogError::OutOfOrderSequence { topic: topic.to_string(), partition, producer_id: h.producer_id, expected: next_seq(prev), received: first })
            }
            _ => Ok(SeqCheck::Append),
        }
    }

    /// The first offset of the oldest open transaction: readers of committed data stop
    /// there (the last stable offset).
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.values().min().copied()
    }

    /// Aborted transactions with batches in `[from, to)`.
    pub fn aborted_between(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        self.aborted.iter().filter(|a| a.last_offset >= from && a.first_offset < to).copied().collect()
    }

    /// Forgets aborted transactions that lie wholly before the log start.
    pub fn trim_aborted(&mut self, log_start: i64) {
        self.aborted.retain(|a| a.last_offset >= log_start);
    }

    /// Remembers an appended batch (its header carries the assigned base offset); `control`
    /// is the marker when the batch is a control batch.
    pub fn record(&mut self, h: &BatchHeader, control: Option<ControlKind>) {
        if h.is_transactional() {
            if h.is_control() {
                if let Some(first_offset) = self.ongoing.remove(&h.producer_id)
                    && control == Some(ControlKind::Abort)
                {
                    self.aborted.push(AbortedTxn { producer_id: h.producer_id, first_offset, last_offset: h.base_offset });
                }
                return;
            }
            self.ongoing.entry(h.producer_id).or_insert(h.base_offset);
        }
        if !h.has_producer() || h.base_sequence < 0 {
            return;
        }
        let entry = self.producers.entry(h.producer_id).or_insert_with(|| ProducerEntry { epoch: h.producer_epoch, batches: VecDeque::new() });
        if h.producer_epoch != entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        entry.batches.push_back(SeqRange { first_seq: h.base_sequence, last_seq: h.last_sequence(), base_offset: h.base_offset, last_offset: h.last_offset() });
        while entry.batches.len() > RETAINED_BATCHES {
            entry.batches.pop_front();
        }
    }

    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Every producer remembered, with the first offset of its open transaction here.
    pub fn active(&self) -> Vec<(i64, ProducerEntry, Option<i64>)> {
        let mut out: Vec<_> = self.producers.iter().map(|(pid, e)| (*pid, e.clone(), self.ongoing.get(pid).copied())).collect();
        out.sort_by_key(|(pid, _, _)| *pid);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::{BatchBuilder, ProducerStamp, set_base_offset};

    fn header(pid: i64, epoch: i16, seq: i32, n: usize, base: i64) -> BatchHeader {
        let mut b = BatchBuilder::new(Some(ProducerStamp { producer_id: pid, producer_epoch: epoch, base_sequence: seq }));
        for _ in 0..n {
            b.push(0, None, Some(b"x"), &[]);
        }
        let mut v = b.finish();
        set_base_offset(&mut v, base);
        BatchHeader::parse(&v).unwrap()
    }

    #[test]
    fn retried_batch_is_a_duplicate_with_original_offsets() {
        let mut s = ProducerStates::default();
        let h = header(1, 0, 0, 3, 10);
        assert_eq!(s.check(&h, "t", 0).unwrap(), SeqCheck::Append);
        s.record(&h, None);
        let again = header(1, 0, 0, 3, 99);
        assert_eq!(s.check(&again, "t", 0).unwrap(), SeqCheck::Duplicate { base_offset: 10, last_offset: 12 });
        assert_eq!(s.check(&header(1, 0, 3, 1, 99), "t", 0).unwrap(), SeqCheck::Append);
    }

    #[test]
    fn gap_and_old_epoch_are_errors() {
        let mut s = ProducerStates::default();
        s.record(&header(1, 2, 0, 3, 0), None);
        assert!(matches!(s.check(&header(1, 2, 5, 1, 0), "t", 0), Err(LogError::OutOfOrderSequence { .. })));
        assert!(matches!(s.check(&header(1, 1, 3, 1, 0), "t", 0), Err(LogError::ProducerFenced { .. })));
    }

    #[test]
    fn only_last_five_batches_are_retained() {
        let mut s = ProducerStates::default();
        for i in 0..8 {
            s.record(&header(1, 0, i, 1, i64::from(i)), None);
        }
        assert_eq!(s.get(1).unwrap().batches.len(), RETAINED_BATCHES);
        assert_eq!(s.get(1).unwrap().last_seq(), Some(7));
    }
}
