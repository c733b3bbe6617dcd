//! Per-query counters shown by SHOW QUERIES and DESCRIBE EXTENDED: records processed,
//! records that failed (with the last failure), and each source partition's progress.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::Mutex;

use super::source::RecordError;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// What a write to a sink appended: records, and the bytes of their keys, values and
/// headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Appended {
    pub records: u64,
    pub bytes: u64,
}

impl std::ops::AddAssign for Appended {
    fn add_assign(&mut self, other: Appended) {
        self.records += other.records;
        self.bytes += other.bytes;
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastError {
    pub time_ms: i64,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryState {
    Running,
    /// A task failed and is retrying.
    Error,
    Terminated,
}

impl QueryState {
    pub fn name(self) -> &'static str {
        match self {
            QueryState::Running => "RUNNING",
            QueryState::Error => "ERROR",
            QueryState::Terminated => "TERMINATED",
        }
    }
}

/// Progress of one source partition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionProgress {
    /// Next offset the task will read (committed for persistent queries).
    pub position: i64,
    pub end_offset: i64,
    /// Records read from the partition since the query started here.
    pub records_in: u64,
    /// Records the partition's task wrote to the query's sink since it started here.
    pub records_out: u64,
}

#[derive(Debug)]
pub struct QueryStats {
    pub started_ms: i64,
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    /// Bytes of record batches read from the query's sources.
    pub bytes_in: AtomicU64,
    /// Bytes of keys, values and headers written to the query's sink.
    pub bytes_out: AtomicU64,
    pub errors: AtomicU64,
    /// Records that arrived after their window closed (windowed aggregations).
    pub late: AtomicU64,
    pub last_message_ms: AtomicI64,
    last_error: Mutex<Option<LastError>>,
    progress: Mutex<BTreeMap<i32, PartitionProgress>>,
    state: Mutex<QueryState>,
    /// Where skipped records are also written (the processing log), when the server has one.
    processing_log: Option<std::sync::Arc<super::processing_log::ProcessingLog>>,
}

impl Default for QueryStats {
    fn default() -> Self {
        QueryStats {
            started_ms: now_ms(),
            records_in: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            late: AtomicU64::new(0),
            last_message_ms: AtomicI64::new(0),
            last_error: Mutex::new(None),
            progress: Mutex::new(BTreeMap::new()),
            state: Mutex::new(QueryState::Running),
            processing_log: None,
        }
    }
}

impl QueryStats {
    /// Stats whose skipped records also go to the processing log.
    pub fn logging_to(processing_log: Option<std::sync::Arc<super::processing_log::ProcessingLog>>) -> QueryStats {
        QueryStats { processing_log, ..QueryStats::default() }
    }

    pub fn record_input(&self, n: usize) {
        if n > 0 {
            self.records_in.fetch_add(n as u64, Ordering::Relaxed);
            self.last_message_ms.store(now_ms(), Ordering::Relaxed);
        }
    }

    pub fn record_late(&self, n: u64) {
        self.late.fetch_add(n, Ordering::Relaxed);
    }

    pub fn record_output(&self, n: u64) {
        self.records_out.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts and logs records that could not be processed; the query goes on.
    pub fn record_errors(&self, query_id: &str, source_topic: &str, errors: &[RecordError]) {
        if errors.is_empty() {
            return;
        }
        self.errors.fetch_add(errors.len() as u64, Ordering::Relaxed);
        for e in errors.iter().take(3) {
            tracing::warn!(query = query_id, topic = source_topic, partition = e.partition, offset = e.offset, "skipped a record: {}", shortened(&e.message));
        }
        if errors.len() > 3 {
            tracing::warn!(query = query_id, topic = source_topic, "skipped {} more records in the same batch", errors.len() - 3);
        }
        if let Some(log) = &self.processing_log {
            log.write(query_id, source_topic, errors);
        }
        let last = errors.last().expect("not empty");
        *self.last_error.lock() =
            Some(LastError { time_ms: now_ms(), message: format!("partition {} offset {}: {}", last.partition, last.offset, shortened(&last.message)) });
    }

    /// A task-level failure (it will retry).
    pub fn record_failure(&self, message: String) {
        let message = shortened(&message).into_owned();
        *self.last_error.lock() = Some(LastError { time_ms: now_ms(), message });
        *self.state.lock() = QueryState::Error;
    }

    pub fn record_success(&self) {
        let mut s = self.state.lock();
        if *s == QueryState::Error {
            *s = QueryState::Running;
        }
    }

    pub fn set_state(&self, state: QueryState) {
        *self.state.lock() = state;
    }

    pub fn state(&self) -> QueryState {
        *self.state.lock()
    }

    pub fn last_error(&self) -> Option<LastError> {
        self.last_error.lock().clone()
    }

    pub fn set_progress(&self, partition: i32, position: i64, end_offset: i64) {
        let mut all = self.progress.lock();
        let p = all.entry(partition).or_default();
        p.position = position;
        p.end_offset = end_offset;
    }

    /// [`QueryStats::record_input`] of records read from source partition `partition`, in
    /// `bytes` of record batches.
    pub fn record_input_at(&self, partition: i32, n: usize, bytes: usize) {
        self.record_input(n);
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
        if n > 0 {
            self.progress.lock().entry(partition).or_default().records_in += n as u64;
        }
    }

    /// Records (and their bytes) the task of source partition `partition` wrote to the sink.
    pub fn record_output_at(&self, partition: i32, written: Appended) {
        self.record_output(written.records);
        self.bytes_out.fetch_add(written.bytes, Ordering::Relaxed);
        if written.records > 0 {
            self.progress.lock().entry(partition).or_default().records_out += written.records;
        }
    }

    pub fn progress(&self) -> BTreeMap<i32, PartitionProgress> {
        self.progress.lock().clone()
    }

    pub fn error_count(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// ksqlDB's statistics line for DESCRIBE EXTENDED.
    pub fn describe(&self) -> String {
        let total = self.records_in.load(Ordering::Relaxed);
        let secs = ((now_ms() - self.started_ms) as f64 / 1000.0).max(1.0);
        let last = self.last_message_ms.load(Ordering::Relaxed);
        let mut s = format!("messages-per-sec: {:.2} total-messages: {total}", total as f64 / secs);
        if last > 0 {
            s.push_str(&format!(" last-message: {}", format_ms(last)));
        }
        s
    }

    /// ksqlDB's error statistics line for DESCRIBE EXTENDED.
    pub fn describe_errors(&self) -> String {
        let n = self.error_count();
        let mut s = format!("failed-messages: {n} late-records: {}", self.late.load(Ordering::Relaxed));
        if let Some(e) = self.last_error() {
            s.push_str(&format!(" last-failed: {} last-error: {}", format_ms(e.time_ms), e.message));
        }
        s
    }
}

pub fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()).unwrap_or_else(|| ms.to_string())
}
/// Longest error message kept or logged: a message can quote a whole record.
const MAX_MESSAGE_CHARS: usize = 500;

/// The message, cut to [`MAX_MESSAGE_CHARS`] characters (saying how much was cut).
pub fn shortened(message: &str) -> std::borrow::Cow<'_, str> {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        None => std::borrow::Cow::Borrowed(message),
        Some((at, _)) => std::borrow::Cow::Owned(format!("{}... ({} more bytes)", &message[..at], message.len() - at)),
    }
}
