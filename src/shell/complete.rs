//! Tab completion for the shell: SQL keywords, shell commands, function names and the
//! catalog's streams, tables and queries (refreshed from the server after statements that
//! change them).

use std::sync::Arc;

use parking_lot::Mutex;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

/// Keywords of ksqlDB's statements, completed in upper case.
const KEYWORDS: &[&str] = &[
    "ADVANCE",
    "ALL",
    "ALTER",
    "AND",
    "ARRAY",
    "AS",
    "ASSERT",
    "BEGINNING",
    "BETWEEN",
    "BIGINT",
    "BOOLEAN",
    "BY",
    "BYTES",
    "CASE",
    "CAST",
    "CHANGES",
    "COLUMN",
    "CREATE",
    "DATE",
    "DECIMAL",
    "DEFINE",
    "DELETE",
    "DESCRIBE",
    "DOUBLE",
    "DROP",
    "ELSE",
    "EMIT",
    "END",
    "EXISTS",
    "EXPLAIN",
    "EXTENDED",
    "FINAL",
    "FROM",
    "FULL",
    "FUNCTION",
    "FUNCTIONS",
    "GRACE",
    "GROUP",
    "HAVING",
    "HEADER",
    "HEADERS",
    "HOPPING",
    "IF",
    "IN",
    "INNER",
    "INSERT",
    "INT",
    "INTEGER",
    "INTERVAL",
    "INTO",
    "IS",
    "JOIN",
    "KEY",
    "LEFT",
    "LIKE",
    "LIMIT",
    "LIST",
    "MAP",
    "NOT",
    "NULL",
    "ON",
    "OR",
    "OUTER",
    "PARTITION",
    "PAUSE",
    "PERIOD",
    "PRIMARY",
    "PRINT",
    "PROPERTIES",
    "QUERIES",
    "REPLACE",
    "RESUME",
    "RIGHT",
    "SCHEMA",
    "SELECT",
    "SESSION",
    "SET",
    "SHOW",
    "SIZE",
    "SOURCE",
    "STREAM",
    "STREAMS",
    "STRING",
    "STRUCT",
    "SYSTEM",
    "TABLE",
    "TABLES",
    "TERMINATE",
    "THEN",
    "TIME",
    "TIMEOUT",
    "TIMESTAMP",
    "TOPIC",
    "TOPICS",
    "TUMBLING",
    "TYPE",
    "TYPES",
    "UNDEFINE",
    "UNSET",
    "VALUES",
    "VARCHAR",
    "VARIABLES",
    "WHEN",
    "WHERE",
    "WINDOW",
    "WITH",
    "WITHIN",
];

/// Shell commands, completed at the start of a line.
const COMMANDS: &[&str] = &["clear", "exit", "help", "history", "output", "quit", "run script", "server", "spool", "version"];

/// Names the server knows, shared with the shell that refreshes them.
#[derive(Clone, Default)]
pub struct Names(pub Arc<Mutex<Vec<String>>>);

pub struct SqlHelper {
    pub names: Names,
}

impl SqlHelper {
    /// Candidates for the word before `pos`: (where the word starts, candidates).
    pub fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let before = &line[..pos];
        let start = before.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map(|i| i + before[i..].chars().next().map_or(1, char::len_utf8)).unwrap_or(0);
        let word = &before[start..];
        if word.is_empty() {
            return (start, Vec::new());
        }
        let upper = word.to_uppercase();
        let mut out: Vec<String> = Vec::new();
        if before[..start].trim().is_empty() {
            out.extend(COMMANDS.iter().filter(|c| c.starts_with(&word.to_lowercase())).map(|c| c.to_string()));
        }
        out.extend(KEYWORDS.iter().filter(|k| k.starts_with(&upper)).map(|k| k.to_string()));
        out.extend(self.names.0.lock().iter().filter(|n| n.to_uppercase().starts_with(&upper)).cloned());
        out.sort();
        out.dedup();
        (start, out)
    }
}

impl Completer for SqlHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, words) = self.candidates(line, pos);
        // A word completed to its only candidate is finished: a space follows, so the next
        // word can be typed (and completed) straight away, as in bash or ksqlDB's CLI.
        let finished = words.len() == 1;
        let pairs = words
            .into_iter()
            .map(|w| {
                let replacement = if finished { format!("{w} ") } else { w.clone() };
                Pair { display: w, replacement }
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for SqlHelper {
    type Hint = String;
}
impl Highlighter for SqlHelper {}
impl Validator for SqlHelper {}
impl Helper for SqlHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_keywords_commands_functions_and_catalog_names() {
        let names = Names::default();
        names.0.lock().extend(["PAGEVIEWS".to_string(), "PAGE_COUNTS".to_string(), "UCASE".to_string()]);
        let h = SqlHelper { names };
        assert_eq!(h.candidates("SELECT * FROM pagev", 19), (14, vec!["PAGEVIEWS".to_string()]));
        assert_eq!(h.candidates("sel", 3), (0, vec!["SELECT".to_string()]));
        assert_eq!(h.candidates("SELECT uca", 10).1, vec!["UCASE".to_string()]);
        assert_eq!(h.candidates("spo", 3).1, vec!["spool".to_string()]);
        assert_eq!(h.candidates("SHOW STR", 8).1, vec!["STREAM".to_string(), "STREAMS".to_string(), "STRING".to_string(), "STRUCT".to_string()]);
        assert!(h.candidates("SELECT ", 7).1.is_empty());
    }
}
