//! The repartition stage of a join side whose join expression is not its key (or whose
//! topic is not co-partitioned with the other side): writes each row to an internal topic
//! keyed by the encoded join key, in the partition the other side keeps that key in
//! (murmur2 over the key serialized in the other side's key format). Rows, offsets and
//! sink sequences commit together, so a crash replays without duplicates.

use std::sync::Arc;

use arrow::array::UInt32Array;
use arrow::compute::take;

use super::ExecError;
use super::checkpoint::{self, TaskCheckpoint};
use super::join_input::{FK_HEADER, SideInput};
use super::sink::{IdempotentWriter, OutRecord};
use super::stats::QueryStats;
use super::task::{PartitionTask, StepOutcome, read_input};
use crate::format::RowEncoder;
use crate::log::murmur2::partition_for_key;
use crate::log::{Log, PartitionStore};
use crate::state::{StateBatch, StateDb};

pub struct JoinRekeyTask {
    name: String,
    partition: Arc<dyn PartitionStore>,
    position: i64,
    input: SideInput,
    /// Serializes the join key the way the co-partitioned side's topic does.
    partition_key: Box<dyn RowEncoder>,
    writer: IdempotentWriter,
    state: Arc<StateDb>,
    stats: Arc<QueryStats>,
    log: Arc<Log>,
    /// The checkpoint the task started from (until it commits one).
    resume_from: TaskCheckpoint,
}

impl JoinRekeyTask {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: String,
        partition: Arc<dyn PartitionStore>,
        position: i64,
        input: SideInput,
        partition_key: Box<dyn RowEncoder>,
        writer: IdempotentWriter,
        state: Arc<StateDb>,
        stats: Arc<QueryStats>,
        log: Arc<Log>,
    ) -> Self {
        let resume_from = TaskCheckpoint { offset: position, sink: writer.checkpoint(), stream_time: i64::MIN };
        JoinRekeyTask { name, partition, position, input, partition_key, writer, state, stats, log, resume_from }
    }
}

impl PartitionTask for JoinRekeyTask {
    fn name(&self) -> &str {
        &self.name
    }
    fn partition(&self) -> &Arc<dyn PartitionStore> {
        &self.partition
    }
    fn position(&self) -> i64 {
        self.position
    }
    fn stats(&self) -> &Arc<QueryStats> {
        &self.stats
    }

    fn rewind(&mut self) -> Result<(), ExecError> {
        let cp = checkpoint::committed(&self.state, &self.name, self.partition.topic(), self.partition.id(), &self.resume_from)?;
        self.position = cp.offset;
        self.writer.reset(&cp.sink);
        Ok(())
    }

    fn step(&mut self) -> Result<StepOutcome, ExecError> {
        let Some(data) = read_input(self.partition.as_ref(), &mut self.position)? else {
            return Ok(StepOutcome::Progress);
        };
        let read = self.input.read(&data, self.position, self.partition.id())?;
        self.stats.record_input_at(self.partition.id(), read.records, data.len());
        self.stats.record_errors(&self.name, self.partition.topic(), &read.errors);
        let n_parts = self.writer.topic().partition_count();
        let mut partitions = Vec::with_capacity(read.rows.len());
        if n_parts == 1 {
            partitions = vec![0; read.rows.len()];
        } else if let Some(key_values) = &read.key_values {
            let idx = UInt32Array::from(read.rows.iter().map(|r| r.batch_row as u32).collect::<Vec<_>>());
            let keys = take(key_values, &idx, None)?;
            let serialized = self.partition_key.encode(&[keys], read.rows.len())?;
            for i in 0..read.rows.len() {
                partitions.push(partition_for_key(serialized.get(i).unwrap_or_default(), n_parts));
            }
        }
        let records: Vec<OutRecord<'_>> = read
            .rows
            .iter()
            .zip(&partitions)
            .map(|(r, &p)| OutRecord {
                partition: p,
                key: Some(&r.key),
                value: r.payload.as_deref(),
                headers: r.fk.as_deref().map(|f| vec![(FK_HEADER.as_bytes(), Some(f))]).unwrap_or_default(),
                timestamp: r.ts,
            })
            .collect();
        self.writer.write(&records)?;
        self.position = read.next_offset;
        let mut batch = StateBatch::default();
        let cp = TaskCheckpoint { offset: self.position, sink: self.writer.checkpoint(), stream_time: i64::MIN };
        checkpoint::put(&mut batch, &self.name, self.partition.topic(), self.partition.id(), &cp)?;
        self.state.write(batch, true)?;
        self.log.offsets().commit_unsynced(&self.name, &[(self.partition.topic(), self.partition.id(), self.position, "")])?;
        self.stats.set_progress(self.partition.id(), self.position, self.partition.end_offset());
        Ok(StepOutcome::Progress)
    }
}
