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
pub mod engine;
pub mod exec;
pub mod format;
pub mod kafka;
pub mod log;
pub mod net;
pub mod server;
pub mod shell;
pub mod sql;
pub mod state;
