//! Materializes a source table: reads its topic and upserts each record into the table's
//! RocksDB column family (a tombstone deletes the key), committing rows and the source
//! offset in one write batch. This is the hidden query that makes every source table
//! queryable.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{Field, Fields};

use super::ExecError;
use super::checkpoint::{self, TaskCheckpoint};
use super::source::{RecordError, SourceDecoder};
use super::stats::QueryStats;
use super::task::{PartitionTask, StepOutcome, read_input};
use crate::catalog::DataSource;
use crate::format::RowEncoder;
use crate::format::json::JsonEncoder;
use crate::log::{Log, PartitionStore};
use crate::state::{StateBatch, StateDb, keys, rows};

/// Encodes rows as JSON objects of the given columns (for materialized rows).
pub fn row_encoder(names_types: &[(String, arrow::datatypes::DataType)]) -> JsonEncoder {
    let fields: Fields = names_types.iter().map(|(n, t)| Field::new(n, t.clone(), true)).collect::<Vec<_>>().into();
    JsonEncoder::new(fields, false)
}

pub struct TableSourceTask {
    pub name: String,
    pub partition: Arc<dyn PartitionStore>,
    pub position: i64,
    pub decoder: SourceDecoder,
    pub state: Arc<StateDb>,
    pub family: String,
    pub stats: Arc<QueryStats>,
    pub log: Arc<Log>,
    key_cols: Vec<usize>,
    n_cols: usize,
    encoder: JsonEncoder,
    /// Where the task started (until it commits a checkpoint).
    start_position: i64,
}

impl TableSourceTask {
    pub fn new(
        name: String,
        partition: Arc<dyn PartitionStore>,
        position: i64,
        table: &DataSource,
        state: Arc<StateDb>,
        stats: Arc<QueryStats>,
        log: Arc<Log>,
    ) -> Self {
        let cols = table.schema.columns();
        let key_cols = cols.iter().enumerate().filter(|(_, c)| c.kind == crate::catalog::types::ColumnKind::Key).map(|(i, _)| i).collect();
        let encoder = row_encoder(&cols.iter().map(|c| (c.name.clone(), c.ty.to_arrow())).collect::<Vec<_>>());
        TableSourceTask {
            name,
            decoder: SourceDecoder::new(table, partition.id()),
            partition,
            position,
            state,
            family: table.state_family(),
            stats,
            log,
            key_cols,
            n_cols: cols.len(),
            encoder,
            start_position: position,
        }
    }
}

impl PartitionTask for TableSourceTask {
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
        let initial = TaskCheckpoint { offset: self.start_position, sink: Default::default(), stream_time: i64::MIN };
        self.position = checkpoint::committed(&self.state, &self.name, self.partition.topic(), self.partition.id(), &initial)?.offset;
        Ok(())
    }

    fn step(&mut self) -> Result<StepOutcome, ExecError> {
        let Some(data) = read_input(self.partition.as_ref(), &mut self.position)? else {
            return Ok(StepOutcome::Progress);
        };
        let decoded = self.decoder.decode(&data, self.position);
        self.stats.record_input_at(self.partition.id(), decoded.records, data.len());
        self.stats.record_errors(&self.name, self.partition.topic(), &decoded.errors);
        let mut batch = StateBatch::default();
        if let Some(b) = &decoded.batch {
            let columns: Vec<ArrayRef> = b.columns()[..self.n_cols].to_vec();
            let json = self.encoder.encode(&columns, b.num_rows())?;
            let rowtime = b.column(self.n_cols).as_primitive::<arrow::datatypes::Int64Type>().clone();
            let offsets = b.column(self.n_cols + 2).as_primitive::<arrow::datatypes::Int64Type>().clone();
            let key_arrays: Vec<ArrayRef> = self.key_cols.iter().map(|&i| columns[i].clone()).collect();
            let now = chrono::Utc::now().timestamp_millis();
            let mut errors = Vec::new();
            for row in 0..b.num_rows() {
                if key_arrays.iter().any(|k| k.is_null(row)) {
                    errors.push(RecordError {
                        kind: super::source::RecordErrorKind::Deserialization,
                        partition: self.partition.id(),
                        offset: offsets.value(row),
                        message: "the record has a null key; a table row needs its PRIMARY KEY".into(),
                    });
                    continue;
                }
                let mut key = Vec::new();
                keys::encode_row(&key_arrays, row, &mut key);
                if decoded.tombstones.get(row).copied().unwrap_or(false) {
                    batch.delete(&self.family, key);
                } else if let Some(j) = json.get(row) {
                    batch.put(&self.family, key, rows::encode(rowtime.value(row), now, self.partition.id(), j));
                }
            }
            self.stats.record_errors(&self.name, self.partition.topic(), &errors);
            self.stats.record_output((b.num_rows() - errors.len()) as u64);
        }
        self.position = decoded.next_offset;
        let cp = TaskCheckpoint { offset: self.position, sink: Default::default(), stream_time: i64::MIN };
        checkpoint::put(&mut batch, &self.name, self.partition.topic(), self.partition.id(), &cp)?;
        self.state.write(batch, true)?;
        self.log.offsets().commit_unsynced(&self.name, &[(self.partition.topic(), self.partition.id(), self.position, "")])?;
        self.stats.set_progress(self.partition.id(), self.position, self.partition.end_offset());
        Ok(StepOutcome::Progress)
    }
}
