//! `eddy bench cluster` and `eddy bench failover`: Eddy servers on a Kafka-protocol broker
//! (another Eddy process in embedded mode, reached through its Kafka listener), each a
//! process of this binary, driven through their REST APIs as a user would.
//!
//! - `cluster`: a CTAS aggregation and a stream-table join over records already on the
//!   broker, run by 1, 2, 3... servers in turn, and by one server on its embedded log;
//!   timed from the statements until every record is counted and joined.
//! - `failover`: an aggregation holding one row per key on two servers; one is killed
//!   (kill -9): the time until the survivor runs every partition, and until pull queries
//!   on the moved keys answer with a record sent after the kill. Then a server on an empty
//!   data directory takes over alone: the time to restore the whole state.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::log::murmur2::partition_for_key;

/// How long a server may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long one measured phase may take before the bench gives up.
const PHASE_TIMEOUT: Duration = Duration::from_secs(1800);
/// Records per REST produce request.
const PRODUCE_CHUNK: usize = 10_000;

pub struct ClusterArgs {
    pub records: u64,
    pub users: u64,
    pub partitions: i32,
    /// Server counts to run in turn.
    pub servers: Vec<usize>,
    pub dir: Option<PathBuf>,
}

pub struct FailoverArgs {
    pub keys: u64,
    pub partitions: i32,
    pub session_timeout_ms: u64,
    /// The servers' `--standby-replicas`.
    pub standby_replicas: usize,
    pub dir: Option<PathBuf>,
}

/// One Eddy server process.
struct Server {
    child: Child,
    url: String,
    kafka: String,
}

impl Server {
    fn start(dir: &Path, args: &[&str]) -> Result<Server, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
        let log = std::fs::File::create(dir.with_extension("log")).map_err(|e| format!("cannot create a log file: {e}"))?;
        let mut child = Command::new(exe)
            .args(["server", "--http-listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(args)
            .env("EDDY_LOG", std::env::var("EDDY_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start a server: {e}"))?;
        let stdout = child.stdout.take().ok_or("the server has no stdout")?;
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
        match rx.recv_timeout(START_TIMEOUT) {
            Ok((url, kafka)) => Ok(Server { child, url, kafka }),
            Err(_) => {
                let _ = child.kill();
                Err(format!("a server did not start (it stopped, or was not ready within {START_TIMEOUT:?}); see {}", dir.with_extension("log").display()))
            }
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A REST client of the servers.
struct Rest {
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

impl Rest {
    fn new() -> Result<Rest, String> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| format!("cannot start a runtime: {e}"))?;
        // Servers close idle connections: a request after a long wait gets a fresh one.
        let http = reqwest::Client::builder().pool_idle_timeout(Duration::from_secs(5)).build().map_err(|e| format!("cannot make an HTTP client: {e}"))?;
        Ok(Rest { http, rt })
    }

    fn call(&self, method: reqwest::Method, url: String, body: Option<Value>) -> Result<(u16, Value), String> {
        self.rt.block_on(async {
            let mut req = self.http.request(method, &url);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let answer = req.send().await.map_err(|e| format!("{url}: {e}"))?;
            let status = answer.status().as_u16();
            let text = answer.text().await.map_err(|e| format!("{url}: {e}"))?;
            Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
        })
    }

    fn get(&self, s: &Server, path: &str) -> Result<Value, String> {
        match self.call(reqwest::Method::GET, format!("{}{path}", s.url), None)? {
            (200, v) => Ok(v),
            (status, v) => Err(format!("GET {path}: {status} {v}")),
        }
    }

    fn post(&self, s: &Server, path: &str, body: Value) -> Result<(u16, Value), String> {
        self.call(reqwest::Method::POST, format!("{}{path}", s.url), Some(body))
    }

    fn statement(&self, s: &Server, sql: &str) -> Result<(), String> {
        let props = json!({"ksql.streams.auto.offset.reset": "earliest"});
        match self.post(s, "/ksql", json!({"ksql": sql, "streamsProperties": props}))? {
            (200, _) => Ok(()),
            (status, v) => Err(format!("{sql}: {status} {v}")),
        }
    }

    fn produce(&self, s: &Server, topic: &str, records: impl Iterator<Item = Value>) -> Result<(), String> {
        let mut chunk = Vec::with_capacity(PRODUCE_CHUNK);
        let send = |chunk: &mut Vec<Value>| -> Result<(), String> {
            match self.post(s, &format!("/topics/{topic}/records"), json!({"records": std::mem::take(chunk)}))? {
                (200, _) => Ok(()),
                (status, v) => Err(format!("producing to {topic}: {status} {v}")),
            }
        };
        for r in records {
            chunk.push(r);
            if chunk.len() == PRODUCE_CHUNK {
                send(&mut chunk)?;
            }
        }
        if !chunk.is_empty() {
            send(&mut chunk)?;
        }
        Ok(())
    }

    /// The records a topic holds (end minus start offsets).
    fn topic_records(&self, s: &Server, topic: &str) -> Result<i64, String> {
        let t = self.get(s, &format!("/topics/{topic}"))?;
        Ok(t["partitions"].as_array().into_iter().flatten().map(|p| p["logEndOffset"].as_i64().unwrap_or(0) - p["logStartOffset"].as_i64().unwrap_or(0)).sum())
    }

    /// Per partition of `topic`, the furthest offset any server committed for the groups
    /// whose names start with `group_prefix` (a query's tasks).
    fn committed(&self, servers: &[&Server], group_prefix: &str, topic: &str) -> Result<i64, String> {
        let mut furthest: std::collections::BTreeMap<i64, i64> = std::collections::BTreeMap::new();
        for s in servers {
            let groups = self.get(s, "/groups")?;
            for g in groups["groups"].as_array().into_iter().flatten().filter_map(|g| g["group"].as_str()).filter(|g| g.starts_with(group_prefix)) {
                let offsets = self.get(s, &format!("/groups/{g}"))?;
                for o in offsets["offsets"].as_array().into_iter().flatten().filter(|o| o["topic"] == json!(topic)) {
                    let (p, at) = (o["partition"].as_i64().unwrap_or(-1), o["committedOffset"].as_i64().unwrap_or(0));
                    let e = furthest.entry(p).or_default();
                    *e = (*e).max(at);
                }
            }
        }
        Ok(furthest.values().sum())
    }

    /// Waits until every server says the service's queries are split `count` ways.
    fn wait_split(&self, servers: &[&Server], count: usize) -> Result<(), String> {
        wait("the servers to split the queries", || {
            for s in servers {
                let h = self.get(s, "/healthcheck")?;
                if h["queryPartitions"]["servers"].as_u64() != Some(count as u64) {
                    return Ok(false);
                }
            }
            Ok(true)
        })
    }
}

/// Polls `done` every 50 ms until it holds; the time it took.
fn wait(what: &str, mut done: impl FnMut() -> Result<bool, String>) -> Result<(), String> {
    let start = Instant::now();
    while !done()? {
        if start.elapsed() > PHASE_TIMEOUT {
            return Err(format!("timed out waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn click(i: u64, users: u64) -> Value {
    json!({"key": format!("u{}", i % users), "value": {"page": format!("/p{i}"), "ms": (i * 37) % 250}})
}

fn user(i: u64) -> Value {
    json!({"key": format!("u{i}"), "value": {"region": format!("r{}", i % 3)}})
}

fn pipeline(partitions: i32) -> Vec<String> {
    vec![
        format!("CREATE TABLE users (id VARCHAR PRIMARY KEY, region VARCHAR) WITH (kafka_topic='users', partitions={partitions}, value_format='JSON');"),
        format!("CREATE STREAM clicks (user VARCHAR KEY, page VARCHAR, ms INT) WITH (kafka_topic='clicks', partitions={partitions}, value_format='JSON');"),
        "CREATE TABLE per_user AS SELECT user, COUNT(*) AS n, SUM(ms) AS total FROM clicks GROUP BY user EMIT CHANGES;".into(),
        "CREATE STREAM enriched AS SELECT c.user AS user, c.page AS page, u.region AS region FROM clicks c JOIN users u ON c.user = u.id EMIT CHANGES;".into(),
    ]
}

/// Creates the source topics on `broker` (a stream over each) and loads the records.
fn load(rest: &Rest, broker: &Server, a: &ClusterArgs) -> Result<(), String> {
    for t in ["users", "clicks"] {
        rest.statement(broker, &format!("CREATE STREAM seed_{t} (v INT) WITH (kafka_topic='{t}', partitions={}, value_format='JSON');", a.partitions))?;
    }
    rest.produce(broker, "users", (0..a.users).map(user))?;
    rest.produce(broker, "clicks", (0..a.records).map(|i| click(i, a.users)))
}

/// Runs the pipeline on `servers` (statements through the first) and times it until every
/// click is counted and joined; `data` holds the topics. Records per second.
fn run_pipeline(rest: &Rest, servers: &[&Server], data: &Server, a: &ClusterArgs) -> Result<f64, String> {
    let start = Instant::now();
    for sql in pipeline(a.partitions) {
        rest.statement(servers[0], &sql)?;
    }
    let records = a.records as i64;
    wait("every click to be counted and joined", || {
        Ok(rest.topic_records(data, "ENRICHED")? >= records && rest.committed(servers, "CTAS_PER_USER", "clicks")? >= records)
    })?;
    let secs = start.elapsed().as_secs_f64();
    // The counts add up: every click once (the other servers' partitions are copies here,
    // a second behind at most).
    let mut counted = 0;
    let checked = Instant::now();
    while counted != records {
        let (status, rows) = rest.post(servers[0], "/query", json!({"ksql": "SELECT user, n FROM per_user;"}))?;
        counted = rows.as_array().into_iter().flatten().filter_map(|r| r["row"]["columns"][1].as_i64()).sum();
        if status != 200 || (counted != records && checked.elapsed() > Duration::from_secs(30)) {
            return Err(format!("the table counts {counted} clicks, not {records}: {status}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(a.records as f64 / secs)
}

pub fn cluster(a: ClusterArgs) -> Result<(), String> {
    let (dir, _guard) = super::bench_dir(&a.dir)?;
    let rest = Rest::new()?;
    println!(
        "pipeline: CTAS COUNT/SUM per user + stream-table join, {} clicks over {} users, {} partitions (server logs in {})",
        a.records,
        a.users,
        a.partitions,
        dir.display()
    );
    {
        let embedded = Server::start(&dir.join("embedded"), &["--kafka-listen", "127.0.0.1:0"])?;
        load(&rest, &embedded, &a)?;
        let rate = run_pipeline(&rest, &[&embedded], &embedded, &a)?;
        println!("embedded log, one server:      {rate:>10.0} clicks/s");
    }
    for &n in &a.servers {
        let run = dir.join(format!("servers-{n}"));
        let broker = Server::start(&run.join("broker"), &["--kafka-listen", "127.0.0.1:0"])?;
        load(&rest, &broker, &a)?;
        let mut servers = Vec::new();
        for i in 0..n {
            servers.push(Server::start(&run.join(format!("server-{i}")), &["--kafka-bootstrap", &broker.kafka])?);
        }
        let refs: Vec<&Server> = servers.iter().collect();
        rest.wait_split(&refs, n)?;
        let rate = run_pipeline(&rest, &refs, &broker, &a)?;
        println!("{n} server(s) on a broker:       {rate:>10.0} clicks/s");
    }
    Ok(())
}

/// A key whose partition (of `partitions`) is `wanted`, as the KAFKA key format writes it.
fn keys_in(partition_of: impl Fn(&str) -> i32, wanted: &[i32], keys: u64, n: usize) -> Vec<String> {
    (0..keys).map(|i| format!("k{i}")).filter(|k| wanted.contains(&partition_of(k))).take(n).collect()
}

/// Waits until a pull query on each key answers `n`; how long that took from `since`.
fn wait_counts(rest: &Rest, s: &Server, keys: &[String], n: i64) -> Result<(), String> {
    wait("pull queries to answer the record sent after the kill", || {
        for k in keys {
            let (status, rows) = rest.post(s, "/query", json!({"ksql": format!("SELECT n FROM per_key WHERE k = '{k}';")}))?;
            let seen = rows.as_array().into_iter().flatten().find_map(|r| r["row"]["columns"][0].as_i64());
            if status != 200 || seen != Some(n) {
                return Ok(false);
            }
        }
        Ok(true)
    })
}

pub fn failover(a: FailoverArgs) -> Result<(), String> {
    let (dir, _guard) = super::bench_dir(&a.dir)?;
    let rest = Rest::new()?;
    let session = a.session_timeout_ms.to_string();
    let broker = Server::start(&dir.join("broker"), &["--kafka-listen", "127.0.0.1:0"])?;
    rest.statement(&broker, &format!("CREATE STREAM seed (v INT) WITH (kafka_topic='events', partitions={}, value_format='JSON');", a.partitions))?;
    rest.produce(&broker, "events", (0..a.keys).map(|i| json!({"key": format!("k{i}"), "value": {"v": 1}})))?;
    let standbys = a.standby_replicas.to_string();
    let member = |i: usize| {
        let args = ["--kafka-bootstrap", &broker.kafka, "--kafka-session-timeout-ms", &session, "--standby-replicas", &standbys];
        Server::start(&dir.join(format!("server-{i}")), &args)
    };
    let first = member(0)?;
    let mut second = member(1)?;
    rest.wait_split(&[&first, &second], 2)?;
    println!("state: one row per key, {} keys over {} partitions; two servers, session timeout {} ms", a.keys, a.partitions, a.session_timeout_ms);
    let start = Instant::now();
    rest.statement(&first, "CREATE STREAM events (k VARCHAR KEY, v INT) WITH (kafka_topic='events', value_format='JSON');")?;
    rest.statement(&first, "CREATE TABLE per_key AS SELECT k, COUNT(*) AS n FROM events GROUP BY k EMIT CHANGES;")?;
    let keys = a.keys as i64;
    wait("every key to be counted", || rest.committed(&[&first, &second], "CTAS_PER_KEY", "events").map(|c| c >= keys))?;
    println!("built the state in {:.1} s", start.elapsed().as_secs_f64());
    // Let the copies catch up, so the kill measures a warm standby.
    std::thread::sleep(Duration::from_secs(3));

    // The second server's partitions move to the first.
    let count = a.partitions;
    let partition_of = |k: &str| partition_for_key(k.as_bytes(), count);
    let moved: Vec<i32> = (0..a.partitions).filter(|p| p % 2 == 1).collect();
    let sample = keys_in(partition_of, &moved, a.keys, 20);
    second.kill();
    let killed = Instant::now();
    rest.produce(&broker, "events", sample.iter().map(|k| json!({"key": k, "value": {"v": 1}})))?;
    rest.wait_split(&[&first], 1)?;
    let running = killed.elapsed();
    wait_counts(&rest, &first, &sample, 2)?;
    let answering = killed.elapsed();
    if a.standby_replicas > 0 {
        println!("kill -9 of one of two servers, warm copy on the survivor:");
    } else {
        println!("kill -9 of one of two servers, no copy on the survivor (--standby-replicas 0: the dead server's changelogs read whole):");
    }
    println!("  every task running again after    {:>6.1} s", running.as_secs_f64());
    println!("  moved keys answer the new record  {:>6.1} s", answering.as_secs_f64());

    // No standby: a server on an empty data directory restores every partition's state.
    let mut first = first;
    first.kill();
    std::thread::sleep(Duration::from_millis(a.session_timeout_ms + 500));
    let started = Instant::now();
    let fresh = member(2)?;
    rest.produce(&broker, "events", sample.iter().map(|k| json!({"key": k, "value": {"v": 1}})))?;
    rest.wait_split(&[&fresh], 1)?;
    let running = started.elapsed();
    wait_counts(&rest, &fresh, &sample, 3)?;
    println!("a new server on an empty data directory, no copy (whole changelogs restored):");
    println!("  every task running after          {:>6.1} s", running.as_secs_f64());
    println!("  keys answer the new record        {:>6.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
