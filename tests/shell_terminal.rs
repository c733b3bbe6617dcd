//! `eddy shell` in a real pseudo-terminal, the way a user at a terminal meets it: pasted
//! text (with and without the terminal's bracketed paste), Tab completion, values cut to
//! the terminal's width, and Ctrl-C typed at the keyboard during a push query.

mod common;

use std::process::Command;

use common::terminal::Terminal;
use common::{TestServer, eddy_bin};

/// The shell in a terminal of `columns` columns, with `home` as HOME (its history file).
fn shell_in_terminal(server: &TestServer, home: &std::path::Path, columns: u16) -> Terminal {
    let mut cmd = Command::new(eddy_bin());
    cmd.arg("shell").arg("--server").arg(&server.url).env("HOME", home).env("TERM", "xterm").env_remove("COLUMNS");
    let mut term = Terminal::spawn(cmd, columns, 40);
    term.wait_for("ksql> ");
    term
}

fn exit_cleanly(mut term: Terminal) {
    term.type_keys("exit\r");
    let status = term.wait();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn pasted_statements_all_run_without_bracketed_paste() {
    let s = TestServer::start();
    let home = tempfile::tempdir().unwrap();
    let mut term = shell_in_terminal(&s, home.path(), 120);
    // A terminal without bracketed paste delivers a paste as typed keys, Enter as `\r`,
    // all at once: every line must run, not only the first.
    term.type_keys(
        "CREATE STREAM pasted_one (id INT KEY, v STRING) WITH (kafka_topic='pasted_one', partitions=1);\r\
         CREATE STREAM pasted_two (id INT KEY, v STRING)\r  WITH (kafka_topic='pasted_two', partitions=1);\r\
         SHOW STREAMS;\r",
    );
    term.wait_for("Stream created");
    term.wait_for("Stream created");
    let listing = term.wait_for("PASTED_TWO");
    assert!(listing.contains("PASTED_ONE"), "{listing}");
    let shown = s.ksql_ok("SHOW STREAMS;").await;
    assert_eq!(common::user_streams(&shown), vec!["PASTED_ONE", "PASTED_TWO"]);
    exit_cleanly(term);
}

#[tokio::test]
async fn a_bracketed_paste_of_several_lines_runs_whole_on_enter() {
    let s = TestServer::start();
    let home = tempfile::tempdir().unwrap();
    let mut term = shell_in_terminal(&s, home.path(), 120);
    // The shell turns bracketed paste on; a terminal then wraps the paste in ESC[200~ … ESC[201~.
    assert!(term.raw().contains("\x1b[?2004h"), "bracketed paste was not turned on");
    term.type_keys(
        "\x1b[200~CREATE STREAM bracketed_one (id INT KEY) WITH (kafka_topic='bracketed_one', partitions=1);\n\
         CREATE STREAM bracketed_two (id INT KEY)\n  WITH (kafka_topic='bracketed_two', partitions=1);\x1b[201~\r",
    );
    term.wait_for("Stream created");
    term.wait_for("Stream created");
    let shown = s.ksql_ok("SHOW STREAMS;").await;
    assert_eq!(common::user_streams(&shown), vec!["BRACKETED_ONE", "BRACKETED_TWO"]);
    exit_cleanly(term);
}

#[tokio::test]
async fn tab_completes_keywords_and_catalog_names() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM clicks_by_page (id INT KEY, page STRING) WITH (kafka_topic='clicks_by_page', partitions=1);").await;
    let home = tempfile::tempdir().unwrap();
    let mut term = shell_in_terminal(&s, home.path(), 120);
    // A keyword, then a stream name, each completed by Tab.
    term.type_keys("DESCR\t");
    term.wait_for("DESCRIBE");
    term.type_keys("CLICKS_B\t");
    term.wait_for("CLICKS_BY_PAGE");
    term.type_keys(";\r");
    let described = term.wait_for("PAGE");
    assert!(described.contains("Name                 : CLICKS_BY_PAGE"), "{described}");
    exit_cleanly(term);
}

#[tokio::test]
async fn long_values_are_cut_to_the_terminal_width() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM wide (id INT KEY, note STRING) WITH (kafka_topic='wide', partitions=1);").await;
    let long_note = "n".repeat(300);
    s.ksql_ok(&format!("INSERT INTO wide (id, note) VALUES (1, '{long_note}');")).await;
    let home = tempfile::tempdir().unwrap();
    let mut term = shell_in_terminal(&s, home.path(), 60);
    term.type_keys("SET 'auto.offset.reset'='earliest';\rSELECT id, note FROM wide EMIT CHANGES LIMIT 1;\r");
    let drawn = term.wait_for("Limit Reached");
    let table: Vec<&str> = drawn.lines().filter(|l| l.starts_with('|') || l.starts_with('+')).collect();
    assert!(table.len() >= 4, "header and one row expected: {drawn}");
    for line in &table {
        assert!(line.chars().count() <= 60, "a {}-character line in a 60-column terminal: {line}", line.chars().count());
    }
    assert!(table.iter().any(|l| l.contains("nnnn…|")), "the long value is cut with an ellipsis: {drawn}");
    exit_cleanly(term);
}

#[tokio::test]
async fn ctrl_c_typed_during_a_push_query_stops_it_and_keeps_the_shell() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM pv (id VARCHAR KEY, page VARCHAR) WITH (kafka_topic='pv', partitions=1);").await;
    s.ksql_ok("INSERT INTO pv (id, page) VALUES ('a', 'first');").await;
    let home = tempfile::tempdir().unwrap();
    let mut term = shell_in_terminal(&s, home.path(), 120);
    term.type_keys("SET 'auto.offset.reset'='earliest';\rSELECT page FROM pv EMIT CHANGES;\r");
    term.wait_for("|first");
    // Ctrl-C at the keyboard: the terminal sends SIGINT to the shell's process group.
    term.type_keys("\x03");
    term.wait_for("Query terminated");
    term.wait_for("ksql> ");
    term.type_keys("SHOW STREAMS;\r");
    term.wait_for(" PV ");
    exit_cleanly(term);
}
