//! PRINT: shows a topic's raw records (timestamp, key, value, partition) with the formats
//! guessed from the bytes, the way ksqlDB's PRINT does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use super::ExecError;
use super::stats::QueryStats;
use super::task::{ClientOutput, PartitionTask, StepOutcome};
use crate::format::RegistryHandle;
use crate::format::avro_text::{frame_format, frame_text};
use crate::log::PartitionStore;
use crate::log::batch::{self, BatchHeader, RecordIter};

pub struct PrintTask {
    pub name: String,
    pub partition: Arc<dyn PartitionStore>,
    pub position: i64,
    /// Print every n-th record.
    pub interval: u64,
    pub seen: u64,
    pub out: ClientOutput,
    pub stats: Arc<QueryStats>,
    /// Whether the format header lines were printed (shared by the topic's tasks).
    pub header_done: Arc<AtomicBool>,
    /// Where records framed with a schema id are decoded from (AVRO).
    pub registry: Option<RegistryHandle>,
}

/// Guesses a key or value format from bytes, as PRINT reports it.
fn guess_format(b: Option<&[u8]>, registry: Option<&RegistryHandle>) -> &'static str {
    match b {
        None => "¯\\_(ツ)_/¯ - no data processed",
        Some(b) if let Some(f) = registry.and_then(|r| frame_format(b, r.0.as_ref())) => f,
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) if serde_json::from_str::<serde_json::Value>(s).is_ok_and(|v| v.is_object() || v.is_array()) => "JSON or KAFKA_STRING",
            Ok(s) if !s.chars().any(|c| c.is_control()) => "KAFKA_STRING",
            _ if b.len() == 4 => "KAFKA_INT or SESSION(KAFKA_INT)",
            _ if b.len() == 8 => "KAFKA_BIGINT or KAFKA_DOUBLE",
            _ => "HEX",
        },
    }
}

fn show(b: Option<&[u8]>, registry: Option<&RegistryHandle>) -> String {
    if let (Some(b), Some(r)) = (b, registry)
        && let Some(text) = frame_text(b, r.0.as_ref())
    {
        return text;
    }
    match b {
        None => "<null>".to_string(),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) if !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => s.to_string(),
            _ if b.len() == 4 => i32::from_be_bytes([b[0], b[1], b[2], b[3]]).to_string(),
            _ if b.len() == 8 => i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]).to_string(),
            _ => b.iter().map(|x| format!("{x:02x}")).collect(),
        },
    }
}

pub fn format_rowtime(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|d| d.format("%Y/%m/%d %H:%M:%S%.3f Z").to_string()).unwrap_or_else(|| ms.to_string())
}

impl PartitionTask for PrintTask {
    fn name(&self) -> &str {
        &self.name
    }
    fn partition(&self) -> &Arc<dyn PartitionStore> {
        &self.partition
    }
    fn position(&self) -> i64 {
        self.position
    }
    fn stop_at(&self) -> Option<i64> {
        None
    }
    fn client(&self) -> Option<&ClientOutput> {
        Some(&self.out)
    }
    fn stats(&self) -> &Arc<QueryStats> {
        &self.stats
    }

    fn step(&mut self) -> Result<StepOutcome, ExecError> {
        let data = self.partition.read(self.position, 256 * 1024)?;
        let mut lines = Vec::new();
        let mut finished = false;
        'outer: for b in batch::split_batches(&data) {
            let h = BatchHeader::parse(b)?;
            if h.is_control() {
                self.position = h.last_offset() + 1;
                continue;
            }
            let (h2, payload) = batch::payload(b)?;
            for r in RecordIter::over(h2, &payload) {
                let r = r?;
                if r.offset < self.position {
                    continue;
                }
                self.position = r.offset + 1;
                self.seen += 1;
                if !(self.seen - 1).is_multiple_of(self.interval.max(1)) {
                    continue;
                }
                if let Some(rem) = &self.out.remaining
                    && rem.fetch_sub(1, Ordering::SeqCst) <= 0
                {
                    finished = true;
                    self.out.shared.limit_reached();
                    break 'outer;
                }
                if !self.header_done.swap(true, Ordering::SeqCst) {
                    lines.push(format!("Key format: {}", guess_format(r.key, self.registry.as_ref())));
                    lines.push(format!("Value format: {}", guess_format(r.value, self.registry.as_ref())));
                }
                lines.push(format!(
                    "rowtime: {}, key: {}, value: {}, partition: {}",
                    format_rowtime(r.timestamp),
                    show(r.key, self.registry.as_ref()),
                    show(r.value, self.registry.as_ref()),
                    self.partition.id()
                ));
                if self.out.remaining.as_ref().is_some_and(|rem: &Arc<AtomicI64>| rem.load(Ordering::SeqCst) <= 0) {
                    finished = true;
                    self.out.shared.limit_reached();
                    break 'outer;
                }
            }
            self.position = self.position.max(h.last_offset() + 1);
        }
        self.stats.record_output(lines.len() as u64);
        if !lines.is_empty() {
            match self.out.tx.try_send(super::push::ClientRows { rows: lines, read_to: None }) {
                Ok(()) => {}
                Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {
                    self.out.shared.overflow();
                    return Ok(StepOutcome::Finished);
                }
                Err(_) => return Ok(StepOutcome::Finished),
            }
        }
        Ok(if finished { StepOutcome::Finished } else { StepOutcome::Progress })
    }
}
