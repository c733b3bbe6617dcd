//! Eddy: a streaming SQL database in one binary.
//!
//! Layers, bottom up (a module uses only the ones before it in this list):
//! `log` (partitioned log) → `format` (bytes <-> Arrow) → `catalog` (streams, tables,
//! queries) → `sql` (parser, binder, planner; DataFusion lives here) → `exec` (continuous
//! operators) → `engine` (executes statements) → `server` (REST, console) / `shell`.
//! `kafka` (the Kafka wire protocol) sits on `log` alone; `server` starts it. `net` (limits
//! on connections and buffered request bytes) is shared by `kafka` and `server` and uses
//! nothing else.

pub mod bench;
pub mod catalog;
pub mod compat;
pub mod datagen;
pub mod engine;
pub mod exec;
pub mod format;
pub mod kafka;
pub mod kafka_client;
pub mod log;
pub mod net;
pub mod registry;
pub mod server;
pub mod shell;
pub mod sql;
pub mod state;

/// An error and its causes for a log line: each cause whose text the message does not
/// already contain is appended (`...: caused by: ...`).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": caused by: ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("the lookup failed")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn error_chain_appends_causes_not_in_the_message() {
        let e = Outer(std::io::Error::other("disk on fire"));
        assert_eq!(super::error_chain(&e), "the lookup failed: caused by: disk on fire");
        let plain = std::io::Error::other("alone");
        assert_eq!(super::error_chain(&plain), "alone");
    }
}
