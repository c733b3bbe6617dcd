//! `eddy shell` as a user runs it: -e, -f, and the REPL (multi-line statements, push
//! queries stopped by Ctrl-C without leaving the shell, persistent history).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestServer, eddy_bin};

/// The interactive shell, with its input, output and errors piped and `home` as HOME.
fn repl(server: &TestServer, home: &std::path::Path) -> std::process::Child {
    Command::new(eddy_bin())
        .arg("shell")
        .arg("--server")
        .arg(&server.url)
        .env("HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the shell")
}

fn shell(server: &TestServer, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(eddy_bin()).arg("shell").arg("--server").arg(&server.url).args(args).output().expect("run shell");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test]
async fn execute_flag_runs_statements_and_prints_ksql_tables() {
    let s = TestServer::start();
    let (ok, out, err) = shell(
        &s,
        &[
            "-e",
            "CREATE STREAM pv (id VARCHAR KEY, page VARCHAR) WITH (kafka_topic='pv', partitions=2); INSERT INTO pv (id, page) VALUES ('a', 'home'); \
                SHOW STREAMS; SET 'auto.offset.reset'='earliest'; SELECT * FROM pv EMIT CHANGES LIMIT 1;",
        ],
    );
    assert!(ok, "{out}\n{err}");
    assert!(out.contains(" Message        \n----------------\n Stream created \n"), "{out}");
    let header = out.lines().find(|l| l.trim_start().starts_with("Stream Name")).expect("a streams table");
    let cells = |l: &str| l.split('|').map(|c| c.trim().to_string()).collect::<Vec<_>>();
    assert_eq!(cells(header), vec!["Stream Name", "Kafka Topic", "Key Format", "Value Format", "Windowed"], "{out}");
    let row = out.lines().find(|l| l.starts_with(" PV ")).expect("the PV row");
    assert_eq!(cells(row), vec!["PV", "pv", "KAFKA", "JSON", "false"], "{out}");
    assert_eq!(row.len(), header.len(), "cells are padded to the column widths: {out}");
    assert!(out.contains("|ID          |PAGE        |"), "{out}");
    assert!(out.contains("|a           |home        |"), "{out}");
    assert!(out.contains("Limit Reached"), "{out}");
}

#[tokio::test]
async fn errors_are_printed_and_set_a_failing_exit_code() {
    let s = TestServer::start();
    let (ok, _out, err) = shell(&s, &["-e", "DESCRIBE nothing_here;"]);
    assert!(!ok);
    assert!(err.contains("NOTHING_HERE"), "{err}");
}

#[tokio::test]
async fn file_flag_runs_a_multi_line_script() {
    let s = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("setup.sql");
    std::fs::write(
        &path,
        "-- a script\nCREATE STREAM pv (id VARCHAR KEY,\n  page VARCHAR)\n  WITH (kafka_topic='pv', partitions=1);\n\nINSERT INTO pv (id, page)\n  \
            VALUES ('a', 'x;y');\n",
    )
    .unwrap();
    let (ok, out, err) = shell(&s, &["-f", path.to_str().unwrap()]);
    assert!(ok, "{out}\n{err}");
    let rows = s.rows("SELECT page FROM pv;").await;
    assert_eq!(rows, vec![vec![serde_json::json!("x;y")]]);
}

#[tokio::test]
async fn repl_ctrl_c_stops_the_push_query_but_not_the_shell() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM pv (id VARCHAR KEY, page VARCHAR) WITH (kafka_topic='pv', partitions=1);").await;
    s.ksql_ok("INSERT INTO pv (id, page) VALUES ('a', 'first');").await;
    let home = tempfile::tempdir().unwrap();
    let mut child = repl(&s, home.path());
    let mut stdin = child.stdin.take().unwrap();
    // A statement split over two lines.
    writeln!(stdin, "SET 'auto.offset.reset'='earliest';\nSELECT page\n  FROM pv EMIT CHANGES;").unwrap();
    stdin.flush().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let wait_for = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
                let hit = l.contains(needle);
                seen.push(l);
                if hit {
                    return seen;
                }
            }
        }
        panic!("'{needle}' not printed; got {seen:?}");
    };
    wait_for("|first");
    // Ctrl-C: SIGINT to the shell.
    Command::new("kill").arg("-INT").arg(child.id().to_string()).status().unwrap();
    wait_for("Query terminated");
    writeln!(stdin, "SHOW STREAMS;").unwrap();
    stdin.flush().unwrap();
    wait_for(" PV ");
    writeln!(stdin, "exit").unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success());
    // History persists across sessions.
    let history = std::fs::read_to_string(home.path().join(".eddy_history")).expect("history file written");
    assert!(history.contains("SHOW STREAMS;"), "{history}");
}

#[tokio::test]
async fn a_script_stops_at_its_first_failure_unless_told_to_keep_going() {
    let s = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.sql");
    std::fs::write(
        &path,
        "CREATE STREAM first_s (id INT KEY) WITH (kafka_topic='first_s', partitions=1);\nDESCRIBE not_there;\n\
         CREATE STREAM after_s (id INT KEY) WITH (kafka_topic='after_s', partitions=1);\n",
    )
    .unwrap();
    let (ok, _out, err) = shell(&s, &["-f", path.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("1 statement(s) after it were not run"), "{err}");
    let shown = s.ksql_ok("SHOW STREAMS;").await;
    assert_eq!(common::user_streams(&shown), vec!["FIRST_S"]);

    let (ok, _out, _err) = shell(&s, &["--keep-going", "-f", path.to_str().unwrap()]);
    assert!(!ok, "a failure still fails the run");
    let shown = s.ksql_ok("SHOW STREAMS;").await;
    assert_eq!(common::user_streams(&shown), vec!["AFTER_S", "FIRST_S"]);
}

#[tokio::test]
async fn spool_copies_output_to_a_file_and_run_script_runs_a_file() {
    let s = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("setup.sql");
    std::fs::write(&script, "CREATE STREAM scripted (id INT KEY, v STRING) WITH (kafka_topic='scripted', partitions=1);\n").unwrap();
    let spool = dir.path().join("out.txt");
    // Shell commands are typed at the prompt.
    let mut child = repl(&s, dir.path());
    let mut stdin = child.stdin.take().unwrap();
    write!(stdin, "spool {}\nRUN SCRIPT '{}';\nSHOW STREAMS;\nspool off\nSHOW TOPICS;\nexit\n", spool.display(), script.display()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let spooled = std::fs::read_to_string(&spool).unwrap();
    assert!(spooled.contains("Stream created") && spooled.contains("SCRIPTED"), "{spooled}");
    assert!(!spooled.contains("Kafka Topic | Partitions"), "output after spool off stays out of the file: {spooled}");
}

#[tokio::test]
async fn a_push_query_says_so_when_the_server_goes_away() {
    let mut s = TestServer::start();
    s.ksql_ok("CREATE STREAM pv (id VARCHAR KEY, page VARCHAR) WITH (kafka_topic='pv', partitions=1);").await;
    s.ksql_ok("INSERT INTO pv (id, page) VALUES ('a', 'first');").await;
    let mut child = Command::new(eddy_bin())
        .arg("shell")
        .arg("--server")
        .arg(&s.url)
        .arg("-e")
        .arg("SET 'auto.offset.reset'='earliest'; SELECT page FROM pv EMIT CHANGES;")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "the push query printed no row");
        if rx.recv_timeout(Duration::from_millis(200)).is_ok_and(|l| l.contains("first")) {
            break;
        }
    }
    s.kill9();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("closed the query's connection before it finished") || err.contains("connection lost"), "{err}");
}
