//! The `eddy` command: server, shell and benchmarks.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod server_args;

use eddy::log::FlushPolicy;
use eddy::server::serve;

#[derive(Parser)]
#[command(name = "eddy", version, about = "Eddy: a streaming SQL database (Kafka-compatible log + ksqlDB-compatible SQL) in one binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process; the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the server (REST API on --http-listen, data in --data-dir).
    Server(server_args::ServerArgs),
    /// Throughput benchmarks (see BENCHMARKS.md).
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
    /// Run ksqlDB's functional tests (QTT JSON files or directories) and report pass counts.
    Compat {
        /// Test files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Write a JSON summary (total, passed, failed, unsupported, per file) here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Exit non-zero when fewer than this fraction (0..1) of supported cases pass.
        #[arg(long)]
        min_pass: Option<f64>,
        /// Exit non-zero when fewer than this many cases pass.
        #[arg(long)]
        min_passed: Option<u64>,
        /// Longest wait for one case's queries, in milliseconds.
        #[arg(long, default_value_t = 5000)]
        timeout_ms: u64,
        /// Only cases whose name contains this text.
        #[arg(long)]
        filter: Option<String>,
        /// Print every case, not only failures.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Check that a Kafka cluster does what Eddy needs (topics, record batches, offsets,
    /// consumer groups, transactions) on a topic of its own, deleted at the end.
    KafkaCheck {
        /// Bootstrap brokers, host:port[,host:port...].
        bootstrap: String,
        /// Longest wait for one request, in milliseconds.
        #[arg(long, default_value_t = 30_000)]
        timeout_ms: u64,
        #[command(flatten)]
        client: server_args::KafkaClientArgs,
    },
    /// Generate records (pageviews, users, orders, nexmark) into a topic or a file.
    Datagen(eddy::datagen::DatagenArgs),
    /// Interactive SQL shell against a server.
    Shell {
        #[arg(long, default_value = "http://127.0.0.1:8088")]
        server: String,
        /// Run these statements and exit.
        #[arg(short = 'e', long = "execute")]
        execute: Option<String>,
        /// Run the statements in this file and exit.
        #[arg(short = 'f', long = "file")]
        file: Option<PathBuf>,
        /// With -e or -f: run every statement even after one fails (by default the first
        /// failure stops the run, as ksqlDB's CLI does).
        #[arg(long = "keep-going")]
        keep_going: bool,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Batched appends into one partition.
    Append {
        #[arg(long, default_value_t = 2_000_000)]
        records: u64,
        #[arg(long, default_value_t = 100)]
        record_bytes: usize,
        #[arg(long, default_value_t = 1000)]
        batch_records: usize,
        /// always, interval or never
        #[arg(long, default_value = "interval")]
        flush: String,
        #[arg(long, default_value_t = 1000)]
        flush_interval_ms: u64,
        /// Directory to write in (default: a temporary directory under the current one).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Concurrent writers (threads) appending to the partition.
        #[arg(long, default_value_t = 1)]
        writers: usize,
        /// Afterwards, read every record back and report the read rate.
        #[arg(long)]
        read: bool,
    },
    /// A COUNT/SUM GROUP BY aggregation over JSON records.
    Agg {
        #[arg(long, default_value_t = 10_000_000)]
        records: u64,
        #[arg(long, default_value_t = 3)]
        partitions: i32,
        /// Distinct users (keys of GROUP BY user_id).
        #[arg(long, default_value_t = 100_000)]
        keys: u64,
        /// key (GROUP BY the source key), page (through a repartition topic) or window
        /// (GROUP BY user_id in 1-minute tumbling windows).
        #[arg(long, default_value = "key")]
        shape: String,
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Keep the data directory afterwards (to time a restart against it).
        #[arg(long)]
        keep: bool,
        /// Value formats to run in turn: json, peer (JSON: the Flink peer's records, as `eddy
        /// datagen pageviews` writes them), avro, protobuf, or a list (json,avro,protobuf).
        #[arg(long, default_value = "json")]
        format: String,
    },
    /// A join over JSON records: stream-table enrichment or a stream-stream join.
    Join {
        /// Stream records (split over both streams for stream-stream).
        #[arg(long, default_value_t = 10_000_000)]
        records: u64,
        /// Table rows (stream-table) or distinct join keys (stream-stream).
        #[arg(long, default_value_t = 1_000_000)]
        keys: u64,
        #[arg(long, default_value_t = 3)]
        partitions: i32,
        /// stream-table or stream-stream (within 10 seconds).
        #[arg(long, default_value = "stream-table")]
        shape: String,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The CPU of key lookups without HTTP: pull queries by key and feature lookups on
    /// one thread against a table held in memory.
    Lookups {
        /// Rows in the table.
        #[arg(long, default_value_t = 100_000)]
        keys: u64,
        /// Lookups per timed round.
        #[arg(long, default_value_t = 200_000)]
        lookups: u64,
        /// Keys per feature lookup.
        #[arg(long, default_value_t = 100)]
        batch: usize,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Nexmark's queries in ksqlDB's dialect (sql/nexmark/) over generated events.
    Nexmark {
        /// A query (q1), a list (q0,q1,q2) or all.
        #[arg(long, default_value = "all")]
        query: String,
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Many concurrent push queries (continuation tokens on) reading one stream from the start.
    Push {
        #[arg(long, default_value_t = 1_000_000)]
        records: u64,
        #[arg(long, default_value_t = 3)]
        partitions: i32,
        #[arg(long, default_value_t = 50)]
        clients: usize,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// A CTAS aggregation and a stream-table join run by 1, 2, 3... servers on a
    /// Kafka-protocol broker (an Eddy process), and by one server on its embedded log.
    Cluster {
        #[arg(long, default_value_t = 1_000_000)]
        records: u64,
        #[arg(long, default_value_t = 10_000)]
        users: u64,
        #[arg(long, default_value_t = 6)]
        partitions: i32,
        /// Server counts to run in turn, e.g. 1,2,3.
        #[arg(long, default_value = "1,2,3")]
        servers: String,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Failover of an aggregation's state: kill -9 one of two servers, then restore on an
    /// empty data directory.
    Failover {
        #[arg(long, default_value_t = 1_000_000)]
        keys: u64,
        #[arg(long, default_value_t = 6)]
        partitions: i32,
        #[arg(long, default_value_t = 6000)]
        session_timeout_ms: u64,
        /// The servers' --standby-replicas (0: the survivor keeps no copy).
        #[arg(long, default_value_t = 1)]
        standby_replicas: usize,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// A filter/projection CREATE STREAM AS SELECT over JSON or AVRO records.
    Csas {
        #[arg(long, default_value_t = 1_000_000)]
        records: u64,
        #[arg(long, default_value_t = 3)]
        partitions: i32,
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Value formats to run in turn: json, peer (JSON: the Flink peer's records, as `eddy
        /// datagen pageviews` writes them), avro, protobuf, or a list (json,avro,protobuf).
        #[arg(long, default_value = "json")]
        format: String,
    },
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EDDY_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Server(args) => {
            init_tracing();
            let config = match args.into_config() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let rt = match tokio::runtime::Builder::new_multi_thread().thread_stack_size(eddy::sql::ast::STATEMENT_THREAD_STACK_BYTES).enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(serve(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Shell { server, execute, file, keep_going } => eddy::shell::run(&server, execute, file, keep_going),
        Command::Datagen(args) => match eddy::datagen::run(args) {
            Ok(summary) => {
                eprintln!("{}", summary.text);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::KafkaCheck { bootstrap, timeout_ms, client } => {
            let security = match client.security() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let steps = rt.block_on(eddy::kafka_client::check::run(&bootstrap, std::time::Duration::from_millis(timeout_ms), security));
            let mut failed = 0;
            for s in &steps {
                match &s.outcome {
                    Ok(seen) => println!("ok      {}: {seen}", s.name),
                    Err(why) => {
                        failed += 1;
                        println!("FAILED  {}: {why}", s.name);
                    }
                }
            }
            if failed == 0 && steps.len() == eddy::kafka_client::check::STEPS {
                println!("{bootstrap}: every check passed");
                ExitCode::SUCCESS
            } else {
                println!(
                    "{bootstrap}: {failed} of {} checks failed{}",
                    steps.len(),
                    if steps.len() < eddy::kafka_client::check::STEPS { " (the rest could not run)" } else { "" }
                );
                ExitCode::FAILURE
            }
        }
        Command::Compat { paths, json, min_pass, min_passed, timeout_ms, filter, verbose } => {
            match eddy::compat::run(eddy::compat::CompatArgs { paths, json, min_pass, min_passed, timeout_ms, filter, verbose }) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Bench { which } => {
            init_tracing();
            let r = match which {
                BenchCommand::Append { records, record_bytes, batch_records, flush, flush_interval_ms, dir, writers, read } => {
                    match FlushPolicy::parse(&flush, Some(flush_interval_ms)) {
                        Ok(flush) => eddy::bench::append(eddy::bench::AppendArgs { writers, records, record_bytes, batch_records, flush, dir, read }),
                        Err(e) => Err(e),
                    }
                }
                BenchCommand::Agg { records, partitions, keys, shape, dir, keep, format } => {
                    eddy::bench::agg(eddy::bench::AggArgs { records, partitions, keys, shape, dir, keep, format })
                }
                BenchCommand::Join { records, keys, partitions, shape, dir } => {
                    eddy::bench::join(eddy::bench::JoinArgs { records, keys, partitions, shape, dir })
                }
                BenchCommand::Lookups { keys, lookups, batch, dir } => eddy::bench::lookups(eddy::bench::LookupArgs { keys, lookups, batch, dir }),
                BenchCommand::Csas { records, partitions, dir, format } => eddy::bench::csas(eddy::bench::CsasArgs { records, partitions, dir, format }),
                BenchCommand::Nexmark { query, events, partitions, dir } => eddy::bench::nexmark(eddy::bench::NexmarkArgs { query, events, partitions, dir }),
                BenchCommand::Push { records, partitions, clients, dir } => eddy::bench::push(eddy::bench::PushArgs { records, partitions, clients, dir }),
                BenchCommand::Cluster { records, users, partitions, servers, dir } => {
                    match servers.split(',').map(|n| n.trim().parse::<usize>().ok().filter(|n| *n > 0)).collect::<Option<Vec<_>>>() {
                        Some(servers) => eddy::bench::cluster(eddy::bench::ClusterArgs { records, users, partitions, servers, dir }),
                        None => Err(format!("--servers takes server counts like 1,2,3, got '{servers}'")),
                    }
                }
                BenchCommand::Failover { keys, partitions, session_timeout_ms, standby_replicas, dir } => {
                    eddy::bench::failover(eddy::bench::FailoverArgs { keys, partitions, session_timeout_ms, standby_replicas, dir })
                }
            };
            match r {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
