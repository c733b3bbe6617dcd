//! The README runs as written: every `sql`, `sh` and `bash` block, in order, on one fresh
//! server, as a new user would run them — SQL typed into one `eddy shell` session, shell
//! blocks (curl, kcat) run with bash — and each block's output is the one the README shows.
//!
//! How the README states what to expect:
//! - a ```` ```text ```` block after a `sql` block (prose between, no other block) lists lines the shell prints for it
//!   (in order; other lines may come between);
//! - in a shell block, lines starting with `# ` right after a command are its output: JSON
//!   is compared as JSON (any number stands for `rowtime` and `updatedAt`, the times of the
//!   run), other text line by line in order. Continuous queries answer asynchronously, so a
//!   command with shown output is retried for up to 30 s until it matches;
//! - `<!-- readme-test: skip ... -->` on the line before a block leaves it out, with the
//!   reason (blocks that build or start the server, or run for minutes).
//!
//! Every SQL statement must succeed (the shell prints nothing on stderr), every command must
//! exit 0, and a curl answer without shown output must not be an error body.

mod common;

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{TestServer, eddy_bin};
use serde_json::Value;

#[derive(Debug)]
struct Block {
    lang: String,
    body: String,
    /// 1-based line of the opening fence in README.md.
    line: usize,
    skip: bool,
    /// The ```text block that follows, if any.
    expected: Option<String>,
}

fn readme_blocks(text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks: Vec<Block> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(lang) = lines[i].strip_prefix("```") else {
            i += 1;
            continue;
        };
        let start = i;
        let mut end = i + 1;
        while end < lines.len() && !lines[end].starts_with("```") {
            end += 1;
        }
        let body = lines[start + 1..end.min(lines.len())].join("\n") + "\n";
        let skip = start > 0 && lines[start - 1].trim_start().starts_with("<!-- readme-test: skip");
        let lang = lang.trim().to_string();
        // A ```text block after a sql block (prose between, no other block) is its output.
        let follows_sql = blocks.last().is_some_and(|b| b.lang == "sql" && b.expected.is_none());
        if lang == "text" && follows_sql {
            if let Some(b) = blocks.last_mut() {
                b.expected = Some(body);
            }
        } else {
            blocks.push(Block { lang, body, line: start + 1, skip, expected: None });
        }
        i = end + 1;
    }
    blocks
}

/// Splits SQL into statements at `;` outside quotes, dropping `--` comments.
fn sql_statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in sql.lines() {
        let mut quoted = false;
        let chars: Vec<char> = line.chars().collect();
        let mut k = 0;
        while k < chars.len() {
            let c = chars[k];
            if c == '\'' {
                quoted = !quoted;
            } else if !quoted && c == '-' && chars.get(k + 1) == Some(&'-') {
                break;
            } else if !quoted && c == ';' {
                cur.push(';');
                out.push(cur.trim().to_string());
                cur.clear();
                k += 1;
                continue;
            }
            cur.push(c);
            k += 1;
        }
        cur.push('\n');
    }
    assert!(cur.trim().is_empty(), "SQL without a closing ';': {cur}");
    out
}

/// A statement the shell keeps streaming until Ctrl-C.
fn runs_until_ctrl_c(stmt: &str) -> bool {
    let upper = stmt.to_uppercase();
    let streams = upper.starts_with("PRINT") || (upper.starts_with("SELECT") && upper.contains("EMIT CHANGES"));
    streams && !upper.contains(" LIMIT ")
}

/// One `eddy shell` session over pipes, with everything it prints collected.
struct ShellSession {
    child: Child,
    stdin: ChildStdin,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    _home: tempfile::TempDir,
}

fn collect(mut from: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    text
}

impl ShellSession {
    fn start(server: &TestServer) -> ShellSession {
        let home = tempfile::tempdir().unwrap();
        let mut child = Command::new(eddy_bin())
            .args(["shell", "--server", &server.url])
            .env("HOME", home.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start eddy shell");
        let stdin = child.stdin.take().unwrap();
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        ShellSession { child, stdin, stdout, stderr, _home: home }
    }

    fn printed(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    fn errors(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn type_line(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Waits until the shell has handled everything typed so far: `version` prints a line
    /// once the statements before it are done.
    fn settle(&mut self) {
        let before = self.printed().matches("eddy shell ").count();
        self.type_line("version");
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.printed().matches("eddy shell ").count() == before {
            assert!(Instant::now() < deadline, "the shell did not finish within 120 s; it printed:\n{}", self.printed());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn ctrl_c(&self) {
        Command::new("kill").arg("-INT").arg(self.child.id().to_string()).status().unwrap();
    }
}

/// Whether `expected`'s non-blank lines appear in `output`, in order, as whole lines
/// (surrounding spaces ignored).
fn shows_lines(output: &str, expected: &str) -> bool {
    let mut lines = output.lines().map(str::trim);
    expected.lines().map(str::trim).filter(|l| !l.is_empty()).all(|want| lines.any(|got| got == want))
}

fn run_sql_block(shell: &mut ShellSession, block: &Block) {
    let out_start = shell.printed().len();
    let err_start = shell.errors().len();
    let stmts = sql_statements(&block.body);
    for (n, stmt) in stmts.iter().enumerate() {
        shell.type_line(stmt);
        if runs_until_ctrl_c(stmt) {
            let expected = block.expected.as_deref().filter(|_| n + 1 == stmts.len());
            let expected = expected.unwrap_or_else(|| {
                panic!("README.md:{}: `{stmt}` runs until Ctrl-C: end the block with it and show its output in a ```text block", block.line)
            });
            let deadline = Instant::now() + Duration::from_secs(60);
            while !shows_lines(&shell.printed()[out_start..], expected) {
                assert!(
                    Instant::now() < deadline,
                    "README.md:{}: `{stmt}` did not show\n{expected}\nwithin 60 s; the shell printed:\n{}",
                    block.line,
                    &shell.printed()[out_start..]
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            shell.ctrl_c();
        }
        shell.settle();
        let errors = shell.errors();
        assert!(errors.len() == err_start, "README.md:{}: `{stmt}` failed:\n{}", block.line, &errors[err_start..]);
    }
    if let Some(expected) = &block.expected {
        let printed = shell.printed();
        assert!(
            shows_lines(&printed[out_start..], expected),
            "README.md:{}: the shell did not print\n{expected}\nit printed:\n{}",
            block.line,
            &printed[out_start..]
        );
    }
}

/// One command of a shell block (continuation lines joined) and the output shown after it.
struct ShellCommand {
    text: String,
    expected: Vec<String>,
}

fn shell_commands(body: &str) -> Vec<ShellCommand> {
    let mut cmds: Vec<ShellCommand> = Vec::new();
    let mut pending = String::new();
    for line in body.lines() {
        if pending.is_empty() && (line.starts_with("# ") || line == "#") {
            if let Some(c) = cmds.last_mut() {
                c.expected.push(line.trim_start_matches('#').trim_start().to_string());
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        pending.push_str(line);
        if pending.ends_with('\\') {
            pending.pop();
            continue;
        }
        cmds.push(ShellCommand { text: std::mem::take(&mut pending), expected: Vec::new() });
    }
    cmds
}

/// Replaces the README's addresses and binary path with the test server's.
fn localize(cmd: &str, server: &TestServer) -> String {
    let http = server.url.trim_start_matches("http://").trim_end_matches('/');
    cmd.replace("127.0.0.1:8088", http).replace("localhost:8088", http).replace("127.0.0.1:9092", &server.kafka).replace("bin/eddy", eddy_bin())
}

fn run_bash(script: &str) -> (bool, String, String) {
    let out = Command::new("timeout").args(["60", "bash", "-o", "pipefail", "-c", script]).output().expect("run bash");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// JSON equality where any number matches the run's times (`rowtime`, `updatedAt`).
fn same_json(expected: &Value, got: &Value, key: &str) -> bool {
    match (expected, got) {
        (Value::Number(_), Value::Number(_)) if key == "rowtime" || key == "updatedAt" => true,
        (Value::Object(a), Value::Object(b)) => a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| same_json(v, w, k))),
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_json(x, y, key)),
        _ => expected == got,
    }
}

fn output_matches(expected: &[String], got: &str) -> bool {
    let want = expected.join("\n");
    match serde_json::from_str::<Value>(&want) {
        Ok(json) => serde_json::from_str::<Value>(got.trim()).is_ok_and(|g| same_json(&json, &g, "")),
        Err(_) => shows_lines(got, &want),
    }
}

fn run_shell_block(server: &TestServer, block: &Block) {
    let mut assignments = String::new();
    for cmd in shell_commands(&block.body) {
        let text = localize(&cmd.text, server);
        let is_assignment = text.split_once('=').is_some_and(|(name, _)| !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        if is_assignment {
            assignments.push_str(&text);
            assignments.push('\n');
            continue;
        }
        let script = format!("{assignments}{text}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (ok, out, err) = run_bash(&script);
            assert!(ok, "README.md:{}: `{}` failed:\n{out}\n{err}", block.line, cmd.text);
            if cmd.expected.is_empty() {
                assert!(!out.contains("\"error_code\""), "README.md:{}: `{}` answered an error:\n{out}", block.line, cmd.text);
                break;
            }
            if output_matches(&cmd.expected, &out) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "README.md:{}: `{}` printed\n{out}\nnot what the README shows:\n{}",
                block.line,
                cmd.text,
                cmd.expected.join("\n")
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

fn require_clients() {
    for tool in ["kcat", "curl"] {
        let ok = Command::new(tool).arg(if tool == "kcat" { "-V" } else { "--version" }).output().is_ok_and(|o| o.status.success());
        assert!(ok, "{tool} is not installed: `make test` installs it (scripts/ensure-test-tools.sh)");
    }
}

#[test]
fn readme_blocks_run_in_order_with_the_output_shown() {
    require_clients();
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    let blocks = readme_blocks(&text);
    assert!(blocks.iter().filter(|b| b.lang == "sql" && !b.skip).count() >= 5, "README.md lost its SQL blocks?");
    let server = TestServer::start();
    let mut shell = ShellSession::start(&server);
    for block in &blocks {
        if block.skip {
            continue;
        }
        match block.lang.as_str() {
            "sql" => run_sql_block(&mut shell, block),
            "sh" | "bash" => run_shell_block(&server, block),
            _ => {}
        }
    }
    shell.type_line("exit");
    assert!(shell.child.wait().unwrap().success());
}

#[test]
fn readme_parser_reads_blocks_statements_and_shown_output() {
    let md = "x\n```sql\nSELECT 1; -- one\nSELECT ';'\n  FROM t;\n```\n\n```text\n|1 |\n```\n<!-- readme-test: skip (starts it) -->\n```sh\nmake\n```\n\
        ```sh\nJ=1\ncurl a \\\n  b\n# {\"rowtime\": 5}\n```\n";
    let blocks = readme_blocks(md);
    assert_eq!(blocks.len(), 3, "{blocks:?}");
    assert_eq!(blocks[0].expected.as_deref(), Some("|1 |\n"));
    assert_eq!(sql_statements(&blocks[0].body), vec!["SELECT 1;", "SELECT ';'\n  FROM t;"]);
    assert!(blocks[1].skip && !blocks[2].skip);
    let cmds = shell_commands(&blocks[2].body);
    assert_eq!(cmds.len(), 2);
    assert_eq!(cmds[1].text, "curl a   b");
    assert!(output_matches(&cmds[1].expected, "{\"rowtime\": 17}"));
    assert!(!output_matches(&cmds[1].expected, "{\"rowtime\": 17, \"x\": 1}"));
    assert!(runs_until_ctrl_c("SELECT * FROM s EMIT CHANGES;") && !runs_until_ctrl_c("SELECT * FROM s EMIT CHANGES LIMIT 2;"));
}
