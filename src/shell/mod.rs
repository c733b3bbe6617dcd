//! `eddy shell`: an interactive SQL shell over the REST API (rustyline), in the style of
//! the ksql CLI. Statements end with `;` and may span lines; SELECT and PRINT stream
//! until their LIMIT or Ctrl-C, which stops the query and not the shell.

mod client;
mod complete;
pub mod render;
pub mod split;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use rustyline::error::ReadlineError;
use serde_json::Value;

use client::{Client, QueryEvent, Reply};
use split::{first_word, split_statements};

const HELP: &str = "
Statements end with ';' and may span several lines. SELECT and PRINT stream results
until their LIMIT is reached or you press Ctrl-C.

Shell commands (no ';' needed):
  help                     show this help
  clear                    clear the screen
  version                  show the shell and server versions
  history                  show the statements entered so far
  output JSON|TABULAR      print results as raw JSON or as tables
  server [url]             show or change the server
  spool <file>|OFF         also write output to a file
  run script <file>        run the statements in a file
  exit, quit               leave the shell (or Ctrl-D)

Try: SHOW STREAMS;  SHOW TOPICS;  SHOW QUERIES;  DESCRIBE <name>;  PRINT '<topic>' FROM BEGINNING LIMIT 5;
";

struct Shell {
    client: Client,
    properties: BTreeMap<String, String>,
    variables: BTreeMap<String, String>,
    json_output: bool,
    spool: Option<std::fs::File>,
    history: Vec<String>,
    /// Set by `exit`: leave the REPL (saving history).
    quit: bool,
    /// Scripts (`-e`, `-f`, RUN SCRIPT) go on after a failed statement.
    keep_going: bool,
    /// Names Tab completes (streams, tables, queries, functions), refreshed from the server.
    names: complete::Names,
}

impl Shell {
    /// Reloads the names Tab completes from the server (best effort).
    async fn refresh_names(&self) {
        let Ok(Reply::Entities(es)) = self.client.ksql("SHOW STREAMS; SHOW TABLES; SHOW QUERIES; SHOW FUNCTIONS;", &BTreeMap::new(), &BTreeMap::new()).await
        else {
            return;
        };
        let mut names = Vec::new();
        for (e, list, key) in [(0, "streams", "name"), (1, "tables", "name"), (2, "queries", "id"), (3, "functions", "name")] {
            if let Some(items) = es.get(e).and_then(|x| x.get(list)).and_then(Value::as_array) {
                names.extend(items.iter().filter_map(|i| i.get(key).and_then(Value::as_str)).map(str::to_string));
            }
        }
        *self.names.0.lock() = names;
    }

    fn out(&mut self, text: &str) {
        print!("{text}");
        if !text.ends_with('\n') {
            println!();
        }
        let _ = std::io::stdout().flush();
        if let Some(f) = &mut self.spool {
            let _ = writeln!(f, "{text}");
        }
    }

    fn err(&mut self, text: &str) {
        eprintln!("{text}");
        if let Some(f) = &mut self.spool {
            let _ = writeln!(f, "{text}");
        }
    }

    /// Runs the complete statements in `text` in order; returns false if any failed. The
    /// first failure stops the run (the statements after it are listed as not run) unless
    /// the shell was started with `--keep-going`.
    async fn run_text(&mut self, text: &str) -> bool {
        let (stmts, rest) = split_statements(text);
        let mut ok = true;
        let mut all = stmts;
        if !rest.trim().is_empty() && !rest.trim().starts_with("--") {
            all.push(rest.trim().to_string());
        }
        let total = all.len();
        for (i, s) in all.into_iter().enumerate() {
            ok &= self.run_statement(&s).await;
            if !ok && !self.keep_going {
                let left = total - i - 1;
                if left > 0 {
                    self.err(&format!("Stopped at the failed statement; {left} statement(s) after it were not run (--keep-going runs them anyway)."));
                }
                break;
            }
        }
        ok
    }

    async fn run_statement(&mut self, stmt: &str) -> bool {
        self.history.push(stmt.to_string());
        match first_word(stmt).as_str() {
            "SELECT" | "PRINT" => self.stream_query(stmt).await,
            "SET" | "UNSET" | "DEFINE" | "UNDEFINE" => self.local_setting(stmt),
            "RUN" => {
                let path = stmt.trim().trim_end_matches(';').trim();
                let path = path.split_whitespace().skip(2).collect::<Vec<_>>().join(" ");
                let path = path.trim_matches('\'').to_string();
                self.run_script(&path).await
            }
            _ => self.ksql(stmt).await,
        }
    }

    async fn run_script(&mut self, path: &str) -> bool {
        match std::fs::read_to_string(path) {
            Ok(text) => Box::pin(self.run_text(&text)).await,
            Err(e) => {
                self.err(&format!("cannot read script {path}: {e}"));
                false
            }
        }
    }

    fn local_setting(&mut self, stmt: &str) -> bool {
        let parsed = crate::sql::parser::parse(stmt);
        let p = match parsed {
            Ok(mut v) if v.len() == 1 => v.remove(0),
            Ok(_) => return false,
            Err(e) => {
                self.err(&e.to_string());
                return false;
            }
        };
        use crate::sql::ast::Statement;
        let msg = match p.statement {
            Statement::Set { name, value } => {
                let msg = format!("Successfully changed local property '{name}' to '{value}'.");
                self.properties.insert(name, value);
                msg
            }
            Statement::Unset { name } => {
                let had = self.properties.remove(&name);
                match had {
                    Some(v) => format!("Successfully unset local property '{name}' (value was '{v}')."),
                    None => format!("Local property '{name}' was not set."),
                }
            }
            Statement::Define { name, value } => {
                self.variables.insert(name, value);
                String::new()
            }
            Statement::Undefine { name } => {
                self.variables.remove(&name);
                String::new()
            }
            _ => return false,
        };
        if !msg.is_empty() {
            self.out(&msg);
        }
        true
    }

    async fn ksql(&mut self, stmt: &str) -> bool {
        match self.client.ksql(stmt, &self.properties, &self.variables).await {
            Ok(Reply::Entities(es)) => {
                for e in &es {
                    let text = if self.json_output { serde_json::to_string_pretty(e).unwrap_or_default() } else { render::entity(e) };
                    self.out(&format!("\n{text}"));
                }
                true
            }
            Ok(Reply::Error(e)) => {
                let text = if self.json_output { serde_json::to_string_pretty(&e).unwrap_or_default() } else { render::error(&e) };
                self.err(&text);
                false
            }
            Err(e) => {
                self.err(&e.to_string());
                false
            }
        }
    }

    async fn stream_query(&mut self, stmt: &str) -> bool {
        let mut qs = match self.client.query(stmt, &self.properties, &self.variables).await {
            Ok(Ok(qs)) => qs,
            Ok(Err(e)) => {
                let text = render::error(&e);
                self.err(&text);
                return false;
            }
            Err(e) => {
                self.err(&e.to_string());
                return false;
            }
        };
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        let mut widths: Vec<usize> = Vec::new();
        let mut ok = true;
        let push = first_word(stmt) == "SELECT" && stmt.to_uppercase().contains("EMIT CHANGES");
        let mut finished = false;
        loop {
            let ev = tokio::select! {
                ev = qs.next() => ev,
                _ = &mut ctrl_c => {
                    self.out("Query terminated");
                    break;
                }
            };
            match ev {
                None => {
                    // A pull query ends without a final message: close its table.
                    if !widths.is_empty() && !self.json_output {
                        self.out(&render::boxed_rule(&widths));
                    }
                    if push && !finished {
                        // A push query runs until LIMIT or Ctrl-C: an end without its final
                        // message means the server went away.
                        self.err(&format!(
                            "The server {} closed the query's connection before it finished (it stopped or restarted?). Run \
                            the query again when the server is back.",
                            self.client.server
                        ));
                        ok = false;
                    }
                    break;
                }
                Some(QueryEvent::Header { schema, .. }) => {
                    let names = render::schema_names(&schema);
                    widths = render::fit_widths(render::stream_widths(&names), render::terminal_columns());
                    if !self.json_output {
                        let rule = render::boxed_rule(&widths);
                        let header = render::boxed_row(&names, &widths);
                        self.out(&format!("{rule}\n{header}\n{rule}"));
                    }
                }
                Some(QueryEvent::Row(cols)) => {
                    if self.json_output {
                        self.out(&Value::Array(cols).to_string());
                    } else {
                        let cells: Vec<String> = cols.iter().map(render::cell).collect();
                        let line = render::boxed_row(&cells, &widths);
                        self.out(&line);
                    }
                }
                Some(QueryEvent::Final(m)) => {
                    finished = true;
                    if !widths.is_empty() && !self.json_output {
                        let rule = render::boxed_rule(&widths);
                        self.out(&rule);
                    }
                    self.out(&m);
                    // The table is closed; nothing more follows.
                    widths.clear();
                }
                Some(QueryEvent::Error(m)) => {
                    self.err(&m);
                    ok = false;
                    finished = true;
                }
                Some(QueryEvent::Line(l)) => self.out(&l),
            }
        }
        ok
    }

    /// Handles a shell command; None when `line` is not one.
    async fn command(&mut self, line: &str) -> Option<bool> {
        let t = line.trim().trim_end_matches(';').trim();
        let mut words = t.split_whitespace();
        let first = words.next()?.to_lowercase();
        match first.as_str() {
            "help" => self.out(HELP),
            "clear" => print!("\x1b[2J\x1b[H"),
            "exit" | "quit" => self.quit = true,
            "version" => {
                let server = self.client.info().await.ok().and_then(|v| v.pointer("/KsqlServerInfo/version").and_then(|x| x.as_str()).map(str::to_string));
                self.out(&format!("eddy shell {}; server {}", env!("CARGO_PKG_VERSION"), server.unwrap_or_else(|| "unreachable".into())));
            }
            "history" => {
                let h: Vec<String> = self.history.iter().enumerate().map(|(i, s)| format!("{:>4}  {s}", i + 1)).collect();
                self.out(&h.join("\n"));
            }
            "output" => match words.next().map(|w| w.to_uppercase()) {
                Some(w) if w == "JSON" => self.json_output = true,
                Some(w) if w == "TABULAR" => self.json_output = false,
                _ => self.out(&format!("Output format: {}", if self.json_output { "JSON" } else { "TABULAR" })),
            },
            "server" => match words.next() {
                Some(url) => {
                    self.client = Client::new(url);
                    match self.client.info().await {
                        Ok(_) => self.out(&format!("Server now: {url}")),
                        Err(e) => self.err(&e.to_string()),
                    }
                }
                None => {
                    let s = self.client.server.clone();
                    self.out(&s);
                }
            },
            "spool" => match words.next() {
                Some(f) if f.eq_ignore_ascii_case("off") => self.spool = None,
                Some(f) => match std::fs::OpenOptions::new().create(true).append(true).open(f) {
                    Ok(file) => self.spool = Some(file),
                    Err(e) => self.err(&format!("cannot open {f}: {e}")),
                },
                None => self.out("spool <file> | spool OFF"),
            },
            "run" if words.next().is_some_and(|w| w.eq_ignore_ascii_case("script")) => {
                let path: String = words.collect::<Vec<_>>().join(" ");
                return Some(self.run_script(path.trim_matches('\'')).await);
            }
            _ => return None,
        }
        Some(true)
    }
}

fn history_path() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".eddy_history"))
}

/// Entry point of `eddy shell`.
pub fn run(server: &str, execute: Option<String>, file: Option<PathBuf>, keep_going: bool) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut shell = Shell {
        client: Client::new(server),
        properties: BTreeMap::new(),
        variables: BTreeMap::new(),
        json_output: false,
        spool: None,
        history: Vec::new(),
        quit: false,
        keep_going,
        names: complete::Names::default(),
    };
    if execute.is_some() || file.is_some() {
        let mut ok = true;
        if let Some(f) = file {
            match std::fs::read_to_string(&f) {
                Ok(text) => ok &= rt.block_on(shell.run_text(&text)),
                Err(e) => {
                    eprintln!("error: cannot read {}: {e}", f.display());
                    return ExitCode::FAILURE;
                }
            }
        }
        if let Some(sql) = execute
            && (ok || keep_going)
        {
            ok &= rt.block_on(shell.run_text(&sql));
        }
        return if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }
    interactive(&rt, &mut shell)
}

fn interactive(rt: &tokio::runtime::Runtime, shell: &mut Shell) -> ExitCode {
    let mut editor = match rustyline::Editor::<complete::SqlHelper, rustyline::history::DefaultHistory>::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot start the line editor: {e}");
            return ExitCode::FAILURE;
        }
    };
    editor.set_helper(Some(complete::SqlHelper { names: shell.names.clone() }));
    rt.block_on(shell.refresh_names());
    let hist = history_path();
    if let Some(h) = &hist {
        let _ = editor.load_history(h);
    }
    match rt.block_on(shell.client.info()) {
        Ok(info) => {
            let v = info.pointer("/KsqlServerInfo/version").and_then(|x| x.as_str()).unwrap_or("?");
            println!("Eddy shell {} connected to {} (server {v}).", env!("CARGO_PKG_VERSION"), shell.client.server);
        }
        Err(e) => println!("warning: {e}"),
    }
    println!("Type 'help' for help; statements end with ';'.\n");
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.trim().is_empty() { "ksql> " } else { ">     " };
        match editor.readline(prompt) {
            Ok(line) => {
                if buffer.trim().is_empty()
                    && let Some(_ok) = rt.block_on(shell.command(&line))
                {
                    let _ = editor.add_history_entry(line.as_str());
                    if shell.quit {
                        break;
                    }
                    continue;
                }
                buffer.push_str(&line);
                buffer.push('\n');
                let (stmts, rest) = split_statements(&buffer);
                if !stmts.is_empty() {
                    let entered = buffer.trim().to_string();
                    let _ = editor.add_history_entry(entered.as_str());
                    let changes_names = stmts.iter().any(|s| matches!(first_word(s).as_str(), "CREATE" | "DROP" | "TERMINATE" | "RUN"));
                    for s in stmts {
                        rt.block_on(shell.run_statement(&s));
                    }
                    if changes_names {
                        rt.block_on(shell.refresh_names());
                    }
                    // A comment after the last `;` is not the start of another statement.
                    buffer = if first_word(&rest).is_empty() { String::new() } else { rest };
                }
            }
            Err(ReadlineError::Interrupted) => buffer.clear(),
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("error: {e}");
                break;
            }
        }
    }
    if let Some(h) = &hist {
        let _ = editor.save_history(h);
    }
    ExitCode::SUCCESS
}
