//! Test harness: starts the real `eddy` binary on an ephemeral port with a temporary data
//! directory and talks to it over HTTP.
#![allow(dead_code)]

pub mod kafka_wire;
pub mod terminal;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub struct TestServer {
    child: Option<Child>,
    pub url: String,
    /// host:port of the Kafka protocol listener.
    pub kafka: String,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    extra_args: Vec<String>,
    limits: ProcessLimits,
}

/// Starts a server on the Kafka cluster at `bootstrap` that is expected not to start; its
/// stderr.
pub fn refused_cluster_start<S: AsRef<std::ffi::OsStr>>(bootstrap: &str, extra: &[S]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(eddy_bin())
        .args(["server", "--http-listen", "127.0.0.1:0", "--kafka-bootstrap", bootstrap, "--data-dir"])
        .arg(dir.path())
        .args(extra)
        .output()
        .expect("runs");
    assert!(!out.status.success(), "the server started: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn eddy_bin() -> &'static str {
    env!("CARGO_BIN_EXE_eddy")
}

/// Limits for the server process (`ulimit -n`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessLimits {
    pub open_files: Option<u64>,
}

fn spawn(data_dir: &Path, args: &[String]) -> (Child, String, String) {
    spawn_limited(data_dir, args, ProcessLimits::default())
}

fn spawn_limited(data_dir: &Path, args: &[String], limits: ProcessLimits) -> (Child, String, String) {
    // An ephemeral Kafka port too, and a short first-rebalance delay for consumer groups,
    // unless the test chose its own.
    let mut defaults: Vec<&str> = Vec::new();
    if !args.iter().any(|a| a == "--http-listen") {
        defaults.extend(["--http-listen", "127.0.0.1:0"]);
    }
    if !args.iter().any(|a| a == "--kafka-listen") {
        defaults.extend(["--kafka-listen", "127.0.0.1:0"]);
    }
    if !args.iter().any(|a| a == "--kafka-group-initial-delay-ms") {
        defaults.extend(["--kafka-group-initial-delay-ms", "300"]);
    }
    let mut command = Command::new(eddy_bin());
    if let Some(n) = limits.open_files {
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(move || {
                let lim = libc::rlimit { rlim_cur: n, rlim_max: n };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = command
        .arg("server")
        .arg("--data-dir")
        .arg(data_dir)
        .args(defaults)
        .args(args)
        .env("EDDY_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start eddy server");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(i) = line.find("http://") {
                let url = line[i..].split_whitespace().next().unwrap_or("").to_string();
                let kafka = line.split("Kafka protocol on ").nth(1).and_then(|r| r.split(';').next()).unwrap_or("").to_string();
                let _ = tx.send((url, kafka));
            }
            line.clear();
        }
    });
    let (url, kafka) = rx.recv_timeout(Duration::from_secs(60)).expect("server did not report ready within 60s");
    (child, url, kafka)
}

impl TestServer {
    /// A server on a fresh temporary data directory.
    pub fn start() -> TestServer {
        Self::start_with(&[])
    }

    pub fn start_with(args: &[&str]) -> TestServer {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (child, url, kafka) = spawn(&dir, &args);
        TestServer { child: Some(child), url, kafka, data_dir: dir, _tmp: Some(tmp), extra_args: args, limits: ProcessLimits::default() }
    }

    /// A server on `dir` (which the caller owns), with process limits.
    pub fn start_in(dir: &Path, args: &[&str], limits: ProcessLimits) -> TestServer {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (child, url, kafka) = spawn_limited(dir, &args, limits);
        TestServer { child: Some(child), url, kafka, data_dir: dir.to_path_buf(), _tmp: None, extra_args: args, limits }
    }

    /// The server process's id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Kills the server with SIGKILL (no chance to clean up).
    /// Freezes the server (SIGSTOP), as a machine that stalls: it answers nothing until
    /// [`TestServer::thaw`].
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen server run again (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, which: &str) {
        let pid = self.pid().expect("a running server");
        let sent = std::process::Command::new("kill").args([which, &pid.to_string()]).status().expect("kill runs");
        assert!(sent.success(), "kill {which} {pid}");
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the server with SIGTERM and waits for it to exit; returns whether it exited cleanly.
    pub fn stop(&mut self) -> bool {
        let Some(mut c) = self.child.take() else { return true };
        let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the server again on the same data directory (new port).
    /// Starts the stopped server again on the HTTP address it had (clients reconnect to
    /// the same URL).
    pub fn restart_at_same_address(&mut self) {
        assert!(self.child.is_none(), "stop or kill the server first");
        let addr = self.url.trim_start_matches("http://").trim_end_matches('/').to_string();
        let mut args = self.extra_args.clone();
        args.extend(["--http-listen".to_string(), addr]);
        let (child, url, kafka) = spawn_limited(&self.data_dir, &args, self.limits);
        self.child = Some(child);
        self.url = url;
        self.kafka = kafka;
    }

    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop or kill the server first");
        let (child, url, kafka) = spawn_limited(&self.data_dir, &self.extra_args, self.limits);
        self.child = Some(child);
        self.url = url;
        self.kafka = kafka;
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = reqwest::Client::new().post(format!("{}{path}", self.url)).json(&body).send().await.expect("request");
        let status = r.status().as_u16();
        let text = r.text().await.expect("body");
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    /// POST /ksql; returns status and body.
    pub async fn ksql(&self, sql: &str) -> (u16, Value) {
        self.post("/ksql", json!({"ksql": sql, "streamsProperties": {}})).await
    }

    pub async fn ksql_with(&self, sql: &str, props: Value) -> (u16, Value) {
        self.post("/ksql", json!({"ksql": sql, "streamsProperties": props})).await
    }

    /// POST /ksql that must succeed. Queries read from the start and, as in ksqlDB's own
    /// test runner, emit every update (`cache.max.bytes.buffering` 0), so tests can expect
    /// exact sequences; the record cache has its own tests.
    pub async fn ksql_ok(&self, sql: &str) -> Value {
        let (status, body) = self.ksql_with(sql, json!({"auto.offset.reset": "earliest", "cache.max.bytes.buffering": "0"})).await;
        assert_eq!(status, 200, "{sql} failed: {body}");
        body
    }

    /// A /query that completes (pull query or LIMIT): the parsed JSON array. Like
    /// `ksql_ok`, aggregations emit every update (`cache.max.bytes.buffering` 0).
    pub async fn query(&self, sql: &str) -> Vec<Value> {
        let (status, body) =
            self.post("/query", json!({"ksql": sql, "streamsProperties": {"auto.offset.reset": "earliest", "cache.max.bytes.buffering": "0"}})).await;
        assert_eq!(status, 200, "{sql} failed: {body}");
        body.as_array().cloned().unwrap_or_else(|| panic!("not an array: {body}"))
    }

    /// The row columns of a completed /query.
    pub async fn rows(&self, sql: &str) -> Vec<Vec<Value>> {
        self.query(sql).await.iter().filter_map(|e| e.get("row").and_then(|r| r.get("columns")).and_then(|c| c.as_array()).cloned()).collect()
    }

    /// Polls a pull query until it returns `n` rows (or panics after the timeout).
    pub async fn wait_rows(&self, sql: &str, n: usize) -> Vec<Vec<Value>> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let rows = self.rows(sql).await;
            if rows.len() >= n || Instant::now() > deadline {
                assert_eq!(rows.len(), n, "{sql}: expected {n} rows");
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl TestServer {
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = reqwest::get(format!("{}{path}", self.url)).await.expect("request");
        let status = r.status().as_u16();
        let text = r.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Produces `records` (`{"key", "value", ...}`) to a topic through the REST API.
    pub async fn produce(&self, topic: &str, records: Vec<Value>) {
        for chunk in records.chunks(5000) {
            let (status, body) = self.post(&format!("/topics/{topic}/records"), json!({"records": chunk})).await;
            assert_eq!(status, 200, "produce to {topic} failed: {body}");
        }
    }

    /// Every committed record of a topic (as a read-committed Kafka consumer reads them),
    /// partition by partition, as `(partition, record)`; values that are JSON text are
    /// parsed.
    pub async fn read_topic(&self, topic: &str) -> Vec<(i64, Value)> {
        let (status, t) = self.get(&format!("/topics/{topic}")).await;
        assert_eq!(status, 200, "{t}");
        let partitions = t["partitions"].as_array().expect("partitions").len() as i64;
        let mut out = Vec::new();
        for p in 0..partitions {
            let mut offset = 0;
            loop {
                let (status, body) = self.get(&format!("/topics/{topic}/partitions/{p}/records?offset={offset}&limit=10000&isolation=read_committed")).await;
                assert_eq!(status, 200, "{body}");
                let records = body["records"].as_array().expect("records").clone();
                if records.is_empty() {
                    break;
                }
                offset = body["nextOffset"].as_i64().expect("nextOffset");
                for mut r in records {
                    if let Some(v) = r["value"].as_str().and_then(|s| serde_json::from_str::<Value>(s).ok()) {
                        r["value"] = v;
                    }
                    out.push((p, r));
                }
            }
        }
        out
    }

    /// Polls `f` until it returns true (panics after 60 s).
    pub async fn wait_until(&self, what: &str, mut f: impl AsyncFnMut(&TestServer) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !f(self).await {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The stream the server declares itself (ksqlDB's processing log), and its topic.
pub const BUILT_IN_STREAM: &str = "KSQL_PROCESSING_LOG";
pub const BUILT_IN_TOPIC: &str = "default_ksql_processing_log";

/// The names a SHOW STREAMS answer lists, without the server's built-in stream.
pub fn user_streams(shown: &Value) -> Vec<String> {
    shown[0]["streams"].as_array().expect("streams").iter().filter_map(|x| x["name"].as_str()).filter(|n| *n != BUILT_IN_STREAM).map(str::to_string).collect()
}
