//! Transient queries (push, pull over streams, PRINT): a client's private set of tasks
//! feeding one bounded channel. A client that cannot keep up is cut off with an error
//! instead of slowing the pipeline or growing memory.

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};

/// Rows (or PRINT lines) per message; each message is one task step's output.
pub const CHANNEL_MESSAGES: usize = 256;

/// Marks a row (a JSON array) sent to a client as a table's tombstone: the row of a key
/// that was deleted. JSON text never holds a raw NUL, so a trailing one is unambiguous.
pub fn mark_tombstone(row: &mut String) {
    row.push('\0');
}

/// A client row's JSON array and whether it is a tombstone.
pub fn split_tombstone(row: &str) -> (&str, bool) {
    match row.strip_suffix('\0') {
        Some(json) => (json, true),
        None => (row, false),
    }
}

/// How a transient query ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Final {
    /// A normal end with ksqlDB's final message ("Limit Reached", "Query Completed").
    Completed(&'static str),
    /// A normal end without a final message (pull queries on tables).
    Done,
    Error(String),
    /// Closed by /close-query or server shutdown.
    Closed,
}

/// State shared by a transient query's tasks, supervisor and client.
pub struct PushShared {
    finished: AtomicBool,
    final_state: Mutex<Option<Final>>,
    cancel: watch::Sender<bool>,
}

impl PushShared {
    pub fn new() -> (PushShared, watch::Receiver<bool>) {
        let (cancel, rx) = watch::channel(false);
        (PushShared { finished: AtomicBool::new(false), final_state: Mutex::new(None), cancel }, rx)
    }

    fn finish(&self, f: Final) {
        let mut s = self.final_state.lock();
        if s.is_none() {
            *s = Some(f);
        }
        self.finished.store(true, Ordering::Release);
        self.cancel.send_replace(true);
    }

    pub fn limit_reached(&self) {
        self.finish(Final::Completed("Limit Reached"));
    }

    pub fn completed(&self) {
        self.finish(Final::Completed("Query Completed"));
    }

    pub fn overflow(&self) {
        self.finish(Final::Error(
            "the client did not read results fast enough and was disconnected; read faster or add a LIMIT/WHERE to reduce the rows".into(),
        ));
    }

    pub fn done(&self) {
        self.finish(Final::Done);
    }

    pub fn close(&self) {
        self.finish(Final::Closed);
    }

    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// How the query ended (once the row channel is exhausted).
    pub fn final_state(&self) -> Option<Final> {
        self.final_state.lock().clone()
    }

    pub fn cancel_receiver(&self) -> watch::Receiver<bool> {
        self.cancel.subscribe()
    }
}

/// Rows for a client from one step of one task.
pub struct ClientRows {
    /// JSON arrays (text lines for PRINT).
    pub rows: Vec<String>,
    /// The partition these rows were read from and the offset after the records they came
    /// from, when the rows are all of that read's rows (no LIMIT cut them): how far a
    /// continuation token may move once the client has them.
    pub read_to: Option<(i32, i64)>,
}

/// A running transient query as its client sees it.
pub struct PushQuery {
    pub id: String,
    /// `` `A` STRING, `B` BIGINT `` for ksqlDB's header.
    pub header_schema: String,
    pub column_names: Vec<String>,
    pub column_types: Vec<String>,
    pub rx: mpsc::Receiver<ClientRows>,
    pub shared: std::sync::Arc<PushShared>,
    /// Whether this is a PRINT (rows are text lines).
    pub is_print: bool,
    /// Where the client's rows stand, when it asked for continuation tokens: moved on as
    /// rows are written to it.
    pub continuation: Option<super::continuation::ContinuationToken>,
}
