//! Consumer-group views over committed offsets: lag per partition, and resetting a
//! group's offsets to the earliest, latest, a timestamp or an explicit offset.

use serde::Serialize;

use super::{Log, LogError};

/// One (topic, partition) of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    pub committed_offset: i64,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    /// End offset minus committed offset (records not yet consumed).
    pub lag: i64,
    pub commit_time_ms: i64,
}

/// Where to move a group's offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    Earliest,
    Latest,
    /// The first offset with a timestamp >= this (or the end when none).
    Timestamp(i64),
    /// An explicit offset, clamped to the stored range.
    Offset(i64),
}

impl Log {
    /// Lag of every partition a group has committed offsets for. Topics that no longer
    /// exist are skipped.
    pub fn group_lag(&self, group: &str) -> Vec<PartitionLag> {
        self.offsets()
            .group_offsets(group)
            .into_iter()
            .filter_map(|(topic, partition, c)| {
                let t = self.get_topic(&topic)?;
                let p = t.partition(partition).ok()?;
                let end = p.end_offset();
                let start = p.start_offset();
                Some(PartitionLag {
                    topic,
                    partition,
                    committed_offset: c.offset,
                    log_start_offset: start,
                    log_end_offset: end,
                    lag: (end - c.offset.max(start)).max(0),
                    commit_time_ms: c.commit_time_ms,
                })
            })
            .collect()
    }

    /// Moves a group's committed offsets on `topic` (all partitions, or `partitions`).
    /// Blocking. Returns the new offsets.
    pub fn reset_group(&self, group: &str, topic: &str, partitions: Option<&[i32]>, to: ResetTo) -> Result<Vec<(i32, i64)>, LogError> {
        let t = self.topic(topic)?;
        let ids: Vec<i32> = match partitions {
            Some(ps) => ps.to_vec(),
            None => (0..t.partition_count()).collect(),
        };
        let mut new = Vec::new();
        for id in ids {
            let p = t.partition(id)?;
            let offset = match to {
                ResetTo::Earliest => p.start_offset(),
                ResetTo::Latest => p.end_offset(),
                ResetTo::Timestamp(ts) => p.offset_for_timestamp(ts)?.unwrap_or_else(|| p.end_offset()),
                ResetTo::Offset(o) => o.clamp(p.start_offset(), p.end_offset()),
            };
            new.push((id, offset));
        }
        let meta: Vec<String> = new.iter().map(|(id, _)| self.offsets().fetch(group, topic, *id).map(|c| c.metadata).unwrap_or_default()).collect();
        let entries: Vec<(&str, i32, i64, &str)> = new.iter().zip(&meta).map(|((id, o), m)| (topic, *id, *o, m.as_str())).collect();
        self.offsets().commit(group, &entries)?;
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{BatchBuilder, TopicConfig};

    #[test]
    fn lag_and_resets_follow_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), TopicConfig::default()).unwrap();
        let t = log.create_topic("t", 2, TopicConfig::default()).unwrap();
        for ts in [10, 20, 30] {
            let mut b = BatchBuilder::default();
            b.push(ts, None, Some(b"x"), &[]);
            t.partition(0).unwrap().append(b.finish()).unwrap();
        }
        log.offsets().commit("g", &[("t", 0, 1, "")]).unwrap();
        let lag = log.group_lag("g");
        assert_eq!(lag.len(), 1);
        assert_eq!((lag[0].committed_offset, lag[0].log_end_offset, lag[0].lag), (1, 3, 2));
        assert_eq!(log.reset_group("g", "t", Some(&[0]), ResetTo::Timestamp(20)).unwrap(), vec![(0, 1)]);
        assert_eq!(log.reset_group("g", "t", Some(&[0]), ResetTo::Timestamp(25)).unwrap(), vec![(0, 2)]);
        assert_eq!(log.reset_group("g", "t", None, ResetTo::Latest).unwrap(), vec![(0, 3), (1, 0)]);
        assert_eq!(log.reset_group("g", "t", Some(&[0]), ResetTo::Offset(99)).unwrap(), vec![(0, 3)]);
        assert_eq!(log.reset_group("g", "t", Some(&[0]), ResetTo::Earliest).unwrap(), vec![(0, 0)]);
        assert_eq!(log.group_lag("g")[0].lag, 3);
    }
}
