//! The sink operator: encodes output rows (key and value by the sink's formats), picks
//! each row's partition (murmur2 of the key bytes, as Kafka's Java client does) and
//! appends per-partition batches through the idempotent-producer path.
//!
//! On the embedded log every task has a stable producer id; the k-th record it sends to a
//! partition carries sequence number k. The checkpoint stores the next k per partition
//! next to the source offset, so after a crash the task replays from the checkpoint and
//! skips the records the log already holds (its producer state says how far it got): no
//! loss, no duplicate. On a Kafka cluster a task writes in its transaction instead
//! (`exec::transaction`): what a step wrote is visible when its checkpoint commits, or
//! never, so there is nothing to skip.

use crate::format::java_time::JavaPattern;
use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::ArrayRef;
use serde::{Deserialize, Serialize};

use super::ExecError;
use super::stats::Appended;
use crate::catalog::DataSource;
use crate::format::{Role, RowEncoder};
use crate::log::Topic;
use crate::log::batch::{BatchBuilder, ProducerStamp};
use crate::log::murmur2::partition_for_key;

const SEQ_MODULUS: u64 = i32::MAX as u64 + 1;
const MAX_BATCH_BYTES: usize = 1 << 20;

/// What a sink must remember to resume exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkCheckpoint {
    #[serde(default)]
    pub epoch: i16,
    /// Next record counter per sink partition.
    #[serde(default)]
    pub next_seq: BTreeMap<i32, u64>,
}

/// A stable producer id for (task name, source partition), in a range Kafka clients never
/// get.
pub fn task_producer_id(query_id: &str, partition: i32) -> i64 {
    // FNV-1a: stable across builds and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in query_id.bytes().chain(partition.to_be_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    ((h >> 2) | (1 << 61)) as i64
}

/// How a task's writer writes.
#[derive(Clone)]
pub enum TaskProducer {
    /// As an idempotent producer with this stable id (the embedded log).
    Idempotent(i64),
    /// In the task's transaction (a Kafka cluster).
    Transactional(Arc<dyn crate::log::TransactionalWriter>),
}

/// Appends records to a topic as one idempotent producer: the k-th record sent to a
/// partition carries sequence k, and records the partition already holds (after a replay)
/// are skipped. In a transaction, records go into the task's open transaction.
pub struct IdempotentWriter {
    topic: Arc<Topic>,
    producer: TaskProducer,
    /// The epoch of the checkpoint the writer started from.
    checkpoint_epoch: i16,
    epoch: i16,
    next_seq: Vec<u64>,
    /// Records with a counter below this are already in the partition (asked of the
    /// partition before the first write to it).
    written_until: Vec<Option<u64>>,
}

/// One record to write.
pub struct OutRecord<'a> {
    pub partition: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Vec<(&'a [u8], Option<&'a [u8]>)>,
    pub timestamp: i64,
}

impl OutRecord<'_> {
    /// The bytes of its key, value and headers.
    fn bytes(&self) -> u64 {
        let headers: usize = self.headers.iter().map(|(k, v)| k.len() + v.map_or(0, <[u8]>::len)).sum();
        (self.key.map_or(0, <[u8]>::len) + self.value.map_or(0, <[u8]>::len) + headers) as u64
    }
}

impl IdempotentWriter {
    /// A writer resuming from `checkpoint`; what each partition already holds is asked of
    /// it before the first write there.
    pub fn new(topic: Arc<Topic>, producer: TaskProducer, checkpoint: &SinkCheckpoint) -> IdempotentWriter {
        let n = topic.partition_count();
        let next_seq: Vec<u64> = (0..n).map(|p| checkpoint.next_seq.get(&p).copied().unwrap_or(0)).collect();
        let written_until = vec![None; next_seq.len()];
        IdempotentWriter { topic, producer, checkpoint_epoch: checkpoint.epoch, epoch: checkpoint.epoch, next_seq, written_until }
    }

    /// The counter below which partition `p` already holds the records (its producer state
    /// says how far the last run got past the checkpoint). Blocking.
    fn written_until(&mut self, p: usize) -> Result<u64, ExecError> {
        if let Some(w) = self.written_until[p] {
            return Ok(w);
        }
        let mut until = self.next_seq[p];
        let TaskProducer::Idempotent(producer_id) = self.producer else { return Ok(until) };
        let state = self.topic.partition(p as i32)?.producer_sequence(producer_id)?;
        if let Some(state) = state.filter(|s| s.epoch == self.checkpoint_epoch) {
            let expected = self.next_seq[p] % SEQ_MODULUS;
            let ahead = (u64::from(state.last_sequence as u32) + 1 + SEQ_MODULUS - expected) % SEQ_MODULUS;
            if ahead > SEQ_MODULUS / 2 {
                // The partition holds less than the checkpoint says: data was lost (e.g.
                // flush='never' and a power failure). Continue under a new epoch.
                if self.epoch == self.checkpoint_epoch {
                    tracing::warn!(topic = self.topic.name(), "sink topic lost records after the last checkpoint; continuing with a new producer epoch");
                    self.epoch = self.epoch.wrapping_add(1);
                }
            } else {
                until += ahead;
            }
        }
        self.written_until[p] = Some(until);
        Ok(until)
    }

    pub fn topic(&self) -> &Arc<Topic> {
        &self.topic
    }

    /// Starts over from a checkpoint (after a failed step): records the partitions already
    /// hold are skipped again when the step is retried. Blocking.
    pub fn reset(&mut self, checkpoint: &SinkCheckpoint) {
        *self = IdempotentWriter::new(self.topic.clone(), self.producer.clone(), checkpoint);
    }

    pub fn checkpoint(&self) -> SinkCheckpoint {
        SinkCheckpoint { epoch: self.epoch, next_seq: self.next_seq.iter().enumerate().map(|(p, s)| (p as i32, *s)).collect() }
    }

    /// Appends records (in order per partition); returns how many were new. Blocking.
    pub fn write(&mut self, records: &[OutRecord<'_>]) -> Result<Appended, ExecError> {
        let mut per_partition: BTreeMap<i32, Vec<&OutRecord<'_>>> = BTreeMap::new();
        for r in records {
            per_partition.entry(r.partition).or_default().push(r);
        }
        let codec = self.topic.config().codec();
        if let TaskProducer::Transactional(txn) = &self.producer {
            let mut appended = Appended::default();
            let topic = self.topic.name();
            for (p, recs) in per_partition {
                self.next_seq[p as usize] += recs.len() as u64;
                let mut b = BatchBuilder::new(None);
                for r in &recs {
                    b.push(r.timestamp, r.key, r.value, &r.headers);
                    if b.size_bytes() >= MAX_BATCH_BYTES {
                        append_in(txn.as_ref(), topic, p, std::mem::take(&mut b), codec)?;
                    }
                }
                if !b.is_empty() {
                    append_in(txn.as_ref(), topic, p, b, codec)?;
                }
                appended += Appended { records: recs.len() as u64, bytes: recs.iter().map(|r| r.bytes()).sum() };
            }
            return Ok(appended);
        }
        let mut appended = Appended::default();
        for (p, recs) in per_partition {
            let pi = p as usize;
            let partition = self.topic.partition(p)?.clone();
            let written_until = self.written_until(pi)?;
            let producer_id = match self.producer {
                TaskProducer::Idempotent(id) => id,
                TaskProducer::Transactional(_) => return Err(ExecError::Invariant("a transactional writer writes in its transaction")),
            };
            let mut builder: Option<BatchBuilder> = None;
            for r in recs {
                let counter = self.next_seq[pi];
                self.next_seq[pi] += 1;
                if counter < written_until {
                    continue;
                }
                let b = builder.get_or_insert_with(|| {
                    BatchBuilder::new(Some(ProducerStamp { producer_id, producer_epoch: self.epoch, base_sequence: (counter % SEQ_MODULUS) as i32 }))
                });
                b.push(r.timestamp, r.key, r.value, &r.headers);
                appended += Appended { records: 1, bytes: r.bytes() };
                if b.size_bytes() >= MAX_BATCH_BYTES {
                    let full = builder.take().expect("just used");
                    partition.append(full.finish_compressed(codec)?)?;
                }
            }
            if let Some(b) = builder {
                partition.append(b.finish_compressed(codec)?)?;
            }
        }
        Ok(appended)
    }
}

/// Appends a batch in a transaction. Blocking.
fn append_in(
    txn: &dyn crate::log::TransactionalWriter,
    topic: &str,
    partition: i32,
    batch: BatchBuilder,
    codec: crate::log::batch::Compression,
) -> Result<(), ExecError> {
    let stamp = txn.stamp(topic, partition, batch.len() as i32)?;
    txn.append(topic, partition, batch.stamped(stamp).transactional().finish_compressed(codec)?)?;
    Ok(())
}

/// Window bounds to serialize into output keys (windowed tables).
pub struct WindowKeys<'a> {
    pub starts: &'a [i64],
    pub ends: &'a [i64],
    pub session: bool,
}

/// Encodes output rows with the sink's formats and writes them through an
/// `IdempotentWriter`.
pub struct TopicSink {
    key_encoder: Box<dyn RowEncoder>,
    value_encoder: Box<dyn RowEncoder>,
    key_idx: Vec<usize>,
    value_idx: Vec<usize>,
    /// The output column (and chrono format) records take their time from, when the
    /// sink was created WITH (TIMESTAMP=...).
    timestamp: Option<(usize, Option<JavaPattern>)>,
    writer: IdempotentWriter,
}

impl TopicSink {
    /// A sink writing `key_idx`/`value_idx` of the output columns into `sink`'s topic.
    /// Blocking: reads the partitions' producer state.
    pub fn new(
        topic: Arc<Topic>,
        sink: &DataSource,
        key_idx: Vec<usize>,
        value_idx: Vec<usize>,
        producer: TaskProducer,
        checkpoint: &SinkCheckpoint,
    ) -> TopicSink {
        let keys: Vec<_> = sink.schema.key_columns().collect();
        let values: Vec<_> = sink.schema.value_columns().collect();
        let timestamp = sink.timestamp.as_ref().and_then(|t| {
            let at = keys
                .iter()
                .position(|c| c.name == t.column)
                .map(|i| key_idx[i])
                .or_else(|| values.iter().position(|c| c.name == t.column).map(|i| value_idx[i]))?;
            Some((at, t.format.as_deref().map(JavaPattern::compile)))
        });
        TopicSink {
            timestamp,
            key_encoder: sink.key_format.encoder(&keys, Role::Key),
            value_encoder: sink.value_format.encoder(&values, Role::Value),
            key_idx,
            value_idx,
            writer: IdempotentWriter::new(topic, producer, checkpoint),
        }
    }

    pub fn checkpoint(&self) -> SinkCheckpoint {
        self.writer.checkpoint()
    }

    /// Starts over from a checkpoint (after a failed step). Blocking.
    pub fn reset(&mut self, checkpoint: &SinkCheckpoint) {
        self.writer.reset(checkpoint);
    }

    /// Encodes and appends rows; returns how many records were appended. Blocking.
    pub fn write(&mut self, columns: &[ArrayRef], rows: usize, timestamps: &[i64], fallback_partition: i32) -> Result<Appended, ExecError> {
        self.write_rows(columns, rows, timestamps, fallback_partition, None, None)
    }

    /// Like `write`, for tables: optional window bounds appended to each key (as ksqlDB's
    /// windowed serdes do; partitioning uses the key alone) and optional tombstones
    /// (rows written with a null value).
    pub fn write_rows(
        &mut self,
        columns: &[ArrayRef],
        rows: usize,
        timestamps: &[i64],
        fallback_partition: i32,
        windows: Option<WindowKeys<'_>>,
        tombstones: Option<&[bool]>,
    ) -> Result<Appended, ExecError> {
        if rows == 0 {
            return Ok(Appended::default());
        }
        let key_cols: Vec<ArrayRef> = self.key_idx.iter().map(|&i| columns[i].clone()).collect();
        let value_cols: Vec<ArrayRef> = self.value_idx.iter().map(|&i| columns[i].clone()).collect();
        let keys = self.key_encoder.encode(&key_cols, rows)?;
        let values = self.value_encoder.encode(&value_cols, rows)?;
        let partitions = self.writer.topic().partition_count();
        let mut windowed_keys: Vec<Vec<u8>> = Vec::new();
        if let Some(w) = &windows {
            for row in 0..rows {
                let mut k = keys.get(row).unwrap_or_default().to_vec();
                if w.session {
                    k.extend_from_slice(&w.ends[row].to_be_bytes());
                }
                k.extend_from_slice(&w.starts[row].to_be_bytes());
                windowed_keys.push(k);
            }
        }
        // WITH (TIMESTAMP=...): each record's time is the column's; a record whose column is
        // null, negative or unparseable is skipped (tombstones keep their time).
        let event_times = self.timestamp.as_ref().map(|(i, fmt)| super::source::event_times(&columns[*i], fmt.as_ref()));
        let mut skipped = 0;
        let mut out = Vec::with_capacity(rows);
        for row in 0..rows {
            let tombstone = tombstones.is_some_and(|t| t[row]);
            let mut timestamp = timestamps[row];
            if let (Some(times), false) = (&event_times, tombstone) {
                match times.as_ref().filter(|a| arrow::array::Array::is_valid(*a, row)).map(|a| a.value(row)) {
                    Some(t) if t >= 0 => timestamp = t,
                    _ => {
                        skipped += 1;
                        continue;
                    }
                }
            }
            let key = if self.key_idx.is_empty() { None } else { keys.get(row) };
            let partition = match key {
                Some(k) => partition_for_key(k, partitions),
                None => fallback_partition.rem_euclid(partitions),
            };
            let key = if windows.is_some() { Some(windowed_keys[row].as_slice()) } else { key };
            let value = if tombstone { None } else { values.get(row) };
            out.push(OutRecord { partition, key, value, headers: Vec::new(), timestamp });
        }
        if skipped > 0 {
            tracing::warn!(skipped, "records skipped: their TIMESTAMP column is null, negative or not a timestamp");
        }
        self.writer.write(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::SourceKind;
    use crate::catalog::types::{Column, ColumnKind, LogicalSchema, SqlType};
    use crate::format::{FormatKind, FormatSpec};
    use crate::log::{Log, TopicConfig};
    use arrow::array::{Int64Array, StringArray};

    fn sink_source() -> DataSource {
        DataSource {
            name: "OUT".into(),
            kind: SourceKind::Stream,
            schema: LogicalSchema::new(vec![Column::new("K", SqlType::String, ColumnKind::Key), Column::new("V", SqlType::Bigint, ColumnKind::Value)]),
            topic: "out".into(),
            key_format: FormatSpec::new(FormatKind::Kafka),
            value_format: FormatSpec::new(FormatKind::Json),
            timestamp: None,
            sql: String::new(),
            read_only: false,
            window: None,
            window_size_ms: None,
        }
    }

    fn rows(from: i64, to: i64) -> (Vec<ArrayRef>, usize, Vec<i64>) {
        let keys: StringArray = (from..to).map(|i| Some(format!("k{i}"))).collect();
        let vals = Int64Array::from((from..to).collect::<Vec<_>>());
        ((vec![Arc::new(keys) as ArrayRef, Arc::new(vals)]), (to - from) as usize, vec![0; (to - from) as usize])
    }

    #[test]
    fn replay_after_crash_between_append_and_commit_writes_nothing_twice() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), TopicConfig::default()).unwrap();
        let topic = log.create_topic("out", 3, TopicConfig::default()).unwrap();
        let src = sink_source();
        let pid = TaskProducer::Idempotent(task_producer_id("Q1", 0));
        // First run: writes rows 0..10, checkpoints, writes 10..25, then "crashes" before
        // committing the second checkpoint.
        let mut a = TopicSink::new(topic.clone(), &src, vec![0], vec![1], pid.clone(), &SinkCheckpoint::default());
        let (c, n, ts) = rows(0, 10);
        a.write(&c, n, &ts, 0).unwrap();
        let checkpoint = a.checkpoint();
        let (c, n, ts) = rows(10, 25);
        a.write(&c, n, &ts, 0).unwrap();
        drop(a);
        let total = |t: &crate::log::Topic| t.partitions().iter().map(|p| p.end_offset()).sum::<i64>();
        assert_eq!(total(&topic), 25);
        // Restart from the older checkpoint and replay rows 10..30.
        let mut b = TopicSink::new(topic.clone(), &src, vec![0], vec![1], pid, &checkpoint);
        let (c, n, ts) = rows(10, 30);
        let appended = b.write(&c, n, &ts, 0).unwrap();
        assert_eq!(appended.records, 5, "only rows 25..30 are new");
        assert_eq!(total(&topic), 30);
    }
}
