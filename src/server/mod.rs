//! The HTTP server: ksqlDB-compatible REST routes over the engine, and server start-up
//! and shutdown.

mod cluster;
pub mod console;
mod errors;
mod features;
mod forward;
pub mod guard;
mod http_workers;
mod idle;
mod inserts;
mod lookup_connection;
pub mod metrics;
mod peer_reads;
mod query;
mod registry_routes;
mod rewound_stream;
mod routes;
mod service_role;
mod topics;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use kafka_protocol::messages::ApiKey;

use crate::engine::{Engine, EngineConfig};
use crate::log::{Log, TopicConfig};

pub use errors::ApiError;

/// Server settings from the command line.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub http_listen: String,
    /// Threads serving HTTP connections; 0 means half the cores (at least one).
    pub http_threads: usize,
    /// Memory for hot rows of served tables (`crate::state::hot_rows`); 0 turns them off.
    pub lookup_cache_bytes: usize,
    /// Kafka protocol listener address; empty turns the listener off.
    pub kafka_listen: String,
    /// The Kafka cluster keeping the topics; None keeps them in the data directory.
    pub cluster: Option<ClusterConfig>,
    /// A listener serving only the schema registry's API (as Confluent's on 8081); empty
    /// serves it on the HTTP port only.
    pub schema_registry_listen: String,
    pub kafka: crate::kafka::KafkaConfig,
    pub topic_defaults: TopicConfig,
    pub engine: EngineConfig,
    /// How often retention and compaction run.
    pub cleaner_interval: std::time::Duration,
    /// How many partitions topics may have.
    pub partition_limits: crate::log::PartitionLimits,
    pub http: HttpConfig,
}

/// Where the topics are when a Kafka cluster keeps them.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// host:port[,host:port...]
    pub bootstrap: String,
    /// Replicas per partition of created topics; -1: the broker's default.
    pub replication_factor: i16,
    /// Servers of one service share its internal topics (the command topic first).
    pub service_id: String,
    /// How long a server that stops answering stays the service's active server.
    pub session_timeout: std::time::Duration,
    /// Where the other servers of the service reach this one's REST API (None: the bound
    /// address).
    pub advertised_url: Option<String>,
    /// TLS and SASL to the brokers.
    pub security: crate::kafka_client::security::ClientSecurity,
    /// Warm copies of each partition's state other servers keep.
    pub standby_replicas: usize,
}

/// Where this server's REST API is reached by the other servers of its service.
fn advertised_url(c: &ClusterConfig, bound: SocketAddr) -> String {
    match &c.advertised_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => format!("http://{bound}"),
    }
}

/// How long the server waits for the cluster's brokers at start and per request.
const CLUSTER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Limits and checks of the HTTP listener.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub guard: guard::GuardConfig,
    /// Connections held open at once; 0: a share of the open-file limit.
    pub max_connections: usize,
    pub timeouts: crate::net::ConnectionTimeouts,
}

/// The largest request body by default (records produced over REST, statements).
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            guard: guard::GuardConfig { max_body_bytes: DEFAULT_MAX_BODY_BYTES, ..Default::default() },
            max_connections: 0,
            timeouts: crate::net::ConnectionTimeouts { idle: std::time::Duration::from_secs(60), request: std::time::Duration::from_secs(30) },
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub guard: Arc<guard::HttpGuard>,
    /// On a Kafka cluster: this server's role in its service.
    pub role: Option<tokio::sync::watch::Receiver<crate::kafka_client::service::Role>>,
    /// Forwards requests to the service's active server (a standby does).
    pub http: reqwest::Client,
    /// Latencies and counts `GET /metrics` reports.
    pub metrics: metrics::ServerMetrics,
}

impl AppState {
    pub fn new(engine: Arc<Engine>, guard: Arc<guard::HttpGuard>) -> AppState {
        AppState { engine, guard, role: None, http: reqwest::Client::new(), metrics: metrics::ServerMetrics::default() }
    }

    /// Where to forward what only the active server answers: its URL while this server
    /// stands by.
    pub fn active_url(&self) -> Option<String> {
        let role = self.role.as_ref()?.borrow().clone();
        if self.engine.is_active() { None } else { role.statements_url().map(String::from) }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot open the data directory {dir}: {source}")]
    Open { dir: String, source: crate::log::LogError },
    #[error("cannot reach the Kafka cluster at {bootstrap} (--kafka-bootstrap): {source}")]
    Cluster {
        bootstrap: String,
        #[source]
        source: crate::kafka_client::ClientError,
    },
    #[error("cannot start: {0}")]
    Service(#[source] crate::kafka_client::service::ServiceError),
    #[error("cannot start the engine: {0}")]
    Engine(#[source] crate::engine::EngineError),
    #[error("cannot start the Kafka listener: {0}")]
    Broker(#[source] crate::kafka::KafkaError),
    /// A start-up or shutdown task panicked or was cancelled.
    #[error("a server task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("cannot listen on {addr}: {source}; is another server using the port? choose another with --http-listen")]
    Bind { addr: String, source: std::io::Error },
    #[error(
        "cannot listen for Kafka clients on {addr}: {source}; is a Kafka broker or another server using the port? choose another with --kafka-listen, \
            or turn the listener off with --kafka-listen ''"
    )]
    KafkaBind { addr: String, source: std::io::Error },
    #[error(
        "cannot listen for the schema registry on {addr}: {source}. Is another server (a schema registry on 8081?) using it? Choose another with \
            --schema-registry-listen"
    )]
    RegistryBind { addr: String, source: std::io::Error },
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Confluent Schema Registry's API (the built-in registry), on the HTTP port and on
/// `--schema-registry-listen`.
fn registry_router() -> Router<AppState> {
    Router::new()
        .route("/subjects", get(registry_routes::list_subjects))
        .route("/subjects/{subject}", post(registry_routes::lookup).delete(registry_routes::delete_subject))
        .route("/subjects/{subject}/versions", get(registry_routes::list_versions).post(registry_routes::register))
        .route("/subjects/{subject}/versions/{version}", get(registry_routes::get_version).delete(registry_routes::delete_version))
        .route("/subjects/{subject}/versions/{version}/schema", get(registry_routes::get_version_schema))
        .route("/schemas/ids/{id}", get(registry_routes::get_schema))
        .route("/schemas/ids/{id}/versions", get(registry_routes::schema_versions))
        .route("/schemas/types", get(registry_routes::schema_types))
        .route("/config", get(registry_routes::get_config).put(registry_routes::put_config))
        .route(
            "/config/{subject}",
            get(registry_routes::get_subject_config).put(registry_routes::put_subject_config).delete(registry_routes::delete_subject_config),
        )
        .route("/mode", get(registry_routes::get_mode).put(registry_routes::put_mode))
        .route("/mode/{subject}", get(registry_routes::get_subject_mode).put(registry_routes::put_subject_mode).delete(registry_routes::delete_subject_mode))
        .route("/compatibility/subjects/{subject}/versions/{version}", post(registry_routes::check_compatibility))
}

/// The routes of `--schema-registry-listen`: the registry's API alone.
pub fn registry_only_router(state: AppState) -> Router {
    let http_guard = state.guard.clone();
    registry_router()
        .fallback(routes::not_found)
        .layer(axum::extract::DefaultBodyLimit::max(http_guard.max_body_bytes()))
        .layer(axum::middleware::from_fn_with_state(http_guard, guard::guard))
        .with_state(state)
}

pub fn router(state: AppState) -> Router {
    let http_guard = state.guard.clone();
    Router::new()
        .route("/", get(routes::root))
        .route("/console", get(console::to_console))
        .route("/console/", get(console::index))
        .route("/console/{*path}", get(console::file))
        .route("/ksql", post(routes::ksql))
        .route("/query", post(query::query))
        .route("/query-stream", post(query::query_stream))
        .route("/metrics", get(metrics::metrics))
        .route(peer_reads::PULL_ROWS, post(peer_reads::pull_rows))
        .route(peer_reads::FEATURE_ROWS, post(peer_reads::feature_rows))
        .route("/close-query", post(query::close_query))
        .route("/inserts-stream", post(inserts::inserts_stream))
        .route("/info", get(routes::info))
        .route("/healthcheck", get(routes::healthcheck))
        .route("/status", get(routes::status))
        .route("/status/{kind}/{entity}/{action}", get(cluster::command_status))
        .route("/clusterStatus", get(cluster::cluster_status))
        .route("/is_valid_property/{name}", get(cluster::is_valid_property))
        .route("/lag", post(cluster::lag))
        .route("/ksql/terminate", post(cluster::terminate))
        .route("/topics", get(topics::list_topics))
        .route("/topics/{name}", get(topics::get_topic))
        .route("/topics/{name}/records", post(topics::produce))
        .route("/topics/{name}/offsets", get(topics::offsets_for_time))
        .route("/topics/{name}/partitions/{partition}/records", get(topics::read_records))
        .route("/groups", get(topics::list_groups))
        .route("/groups/{group}", get(topics::get_group))
        .route("/groups/{group}/reset", post(topics::reset_group))
        .route("/features/{table}", post(features::lookup))
        .route("/openapi.json", get(features::openapi))
        .merge(registry_router())
        .fallback(routes::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), forward::to_active))
        .layer(axum::extract::DefaultBodyLimit::max(http_guard.max_body_bytes()))
        .layer(axum::middleware::from_fn_with_state(http_guard, guard::guard))
        .with_state(state)
}

/// Opens the data directory, replays the catalog, serves until SIGTERM/SIGINT, then stops
/// queries and syncs the log.
pub async fn serve(config: ServerConfig) -> Result<(), ServerError> {
    let dir = config.data_dir.clone();
    let defaults = config.topic_defaults.clone();
    let budget = FileBudget::from_limit(crate::log::storage::raise_open_file_limit());
    let internal_prefix = match &config.cluster {
        Some(c) => crate::log::service_prefix(&c.service_id),
        None => crate::log::INTERNAL_TOPIC_PREFIX.to_string(),
    };
    let options = crate::log::LogOptions {
        files: crate::log::storage::OpenFiles::new(Arc::new(crate::log::storage::OsStorage), budget.segments),
        limits: config.partition_limits,
        policy: Some(crate::catalog::internal_topics::policy(&internal_prefix)),
        internal_prefix: internal_prefix.clone(),
    };
    // Bound first: a server of a service on a cluster tells the others where it serves.
    let listener = tokio::net::TcpListener::bind(&config.http_listen).await.map_err(|source| ServerError::Bind { addr: config.http_listen.clone(), source })?;
    let addr: SocketAddr = listener.local_addr()?;
    let (cluster, membership) = match &config.cluster {
        Some(c) => {
            let client = crate::kafka_client::KafkaClient::connect_securely(&c.bootstrap, "eddy", CLUSTER_TIMEOUT, c.security.clone())
                .await
                .map_err(|source| ServerError::Cluster { bootstrap: c.bootstrap.clone(), source })?;
            if let Err(e) = client.serves(&[ApiKey::InitProducerId, ApiKey::AddPartitionsToTxn, ApiKey::AddOffsetsToTxn, ApiKey::EndTxn]).await {
                tracing::warn!(
                    "the Kafka cluster does not serve transactions, which persistent queries (CREATE ... AS SELECT) write in for exactly-once \
                     processing: they will fail to start; streams, tables, INSERT, pull and push queries work ({e})"
                );
            }
            let client = Arc::new(client);
            let group = format!("{internal_prefix}servers");
            let planner = service_role::planner(c.standby_replicas);
            let membership =
                crate::kafka_client::service::ServiceMembership::join(client.clone(), &group, c.session_timeout, &advertised_url(c, addr), planner)
                    .await
                    .map_err(ServerError::Service)?;
            let handle = tokio::runtime::Handle::current();
            (Some(Arc::new(crate::kafka_client::cluster::KafkaCluster::new(client, handle, &c.bootstrap, c.replication_factor))), Some(membership))
        }
        None => (None, None),
    };
    let log = tokio::task::spawn_blocking(move || match cluster {
        Some(cluster) => Log::on_cluster(&dir, defaults, options, cluster),
        None => Log::open_with(&dir, defaults, options),
    })
    .await?
    .map_err(|source| ServerError::Open { dir: config.data_dir.display().to_string(), source })?;
    let log = Arc::new(log);
    let mut maintenance = crate::log::maintenance::start(&log, config.cleaner_interval);
    let handle = tokio::runtime::Handle::current();
    let mut engine_config = config.engine.clone();
    let joined_as = membership.as_ref().map(|m| m.role().borrow().clone());
    if let Some(role) = &joined_as {
        engine_config.active = role.runs_statements();
        engine_config.share = service_role::share_of(role);
    }
    let log2 = log.clone();
    let state_dir = config.data_dir.join("state");
    let hot_rows_bytes = config.lookup_cache_bytes;
    let engine = tokio::task::spawn_blocking(move || {
        let state = crate::state::StateDb::open_with(&state_dir, hot_rows_bytes, budget.state_files).map_err(crate::engine::EngineError::fault)?;
        Engine::open(log2, Arc::new(state), handle, engine_config)
    })
    .await?
    .map_err(ServerError::Engine)?;
    let engine = Arc::new(engine);
    if let (Some(m), Some(role)) = (&membership, joined_as) {
        tokio::spawn(service_role::follow(engine.clone(), m.watch(), role));
    }
    let http_guard = guard::HttpGuard::new(config.http.guard.clone(), addr);
    let mut app_state = AppState::new(engine.clone(), http_guard);
    app_state.role = membership.as_ref().map(|m| m.role());
    if let Some(role) = &app_state.role {
        let peers = peer_reads::HttpPeerReads::new(role.clone(), tokio::runtime::Handle::current()).map_err(|e| ServerError::Io(std::io::Error::other(e)))?;
        engine.set_peer_reads(Arc::new(peers));
    }
    let app = router(app_state.clone());
    let (stop_kafka, kafka_stopped) = tokio::sync::watch::channel(false);
    let kafka_addr = match (start_kafka(&config, &log, kafka_stopped, budget).await?, &config.cluster) {
        (_, Some(c)) => {
            let role = if engine.is_active() { "active" } else { "standing by" };
            format!("topics on the Kafka cluster at {}; {role} for service {}", c.bootstrap, c.service_id)
        }
        (Some(a), None) => format!("Kafka protocol on {a}"),
        (None, None) => "Kafka protocol off".to_string(),
    };
    let registry_addr = match config.schema_registry_listen.as_str() {
        "" => String::new(),
        listen => {
            let listener = tokio::net::TcpListener::bind(listen).await.map_err(|source| ServerError::RegistryBind { addr: listen.to_string(), source })?;
            let bound = listener.local_addr()?;
            let registry_app = registry_only_router(app_state.clone());
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, registry_app).await {
                    tracing::error!("the schema registry listener stopped: {e}");
                }
            });
            format!("; schema registry API on http://{bound}")
        }
    };
    println!("Eddy {} ready: REST API on http://{addr} ({kafka_addr}{registry_addr}; data directory {})", env!("CARGO_PKG_VERSION"), config.data_dir.display());
    let shutdown_engine = engine.clone();
    let max_connections = if config.http.max_connections > 0 { config.http.max_connections } else { budget.connections / 2 };
    let limit = crate::net::ConnectionLimit::new("http", max_connections);
    let workers = http_workers::HttpWorkers::start(http_threads(config.http_threads), app_state, app, limit, config.http.timeouts)?;
    workers
        .run(listener, async move {
            shutdown_signal().await;
            let _ = stop_kafka.send(true);
            tracing::info!("shutting down: closing push queries");
            for id in shutdown_engine.runtime().transient_ids() {
                shutdown_engine.runtime().close_transient(&id);
            }
        })
        .await;
    let e = engine.clone();
    tokio::task::spawn_blocking(move || {
        e.shutdown();
        for t in e.log().topics() {
            for p in t.local_partitions() {
                if let Err(err) = p.sync() {
                    tracing::error!("sync on shutdown failed: {err}");
                }
            }
        }
    })
    .await?;
    tokio::task::spawn_blocking(move || maintenance.stop()).await?;
    if let Some(m) = membership {
        m.release().await;
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// How the process's file descriptors are shared: segment files and RocksDB's table files
/// get a quarter each; connections and everything else the rest.
#[derive(Debug, Clone, Copy)]
pub struct FileBudget {
    pub segments: usize,
    pub state_files: i32,
    /// Connections the HTTP and Kafka listeners accept together.
    pub connections: usize,
}

impl FileBudget {
    pub fn from_limit(open_files: u64) -> FileBudget {
        let quarter = usize::try_from(open_files / 4).unwrap_or(usize::MAX);
        FileBudget { segments: quarter.clamp(32, 4096), state_files: quarter.clamp(64, 4096) as i32, connections: quarter.clamp(16, 65_536) }
    }
}

/// How many threads serve HTTP connections: as configured, else half the cores (at least
/// one), leaving the rest to queries, RocksDB and the Kafka listener. On the 2-core
/// benchmark machine one thread served key lookups at 17.6 µs of CPU each against 26 µs
/// for two (fewer wake-ups, more requests per epoll wait) with a lower tail (BENCHMARKS.md).
fn http_threads(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    std::thread::available_parallelism().map(|n| (n.get() / 2).max(1)).unwrap_or(1)
}

/// Binds the Kafka listener and serves it in the background; returns the bound address,
/// or None when the listener is off.
async fn start_kafka(
    config: &ServerConfig,
    log: &Arc<Log>,
    stopped: tokio::sync::watch::Receiver<bool>,
    budget: FileBudget,
) -> Result<Option<SocketAddr>, ServerError> {
    if config.kafka_listen.is_empty() {
        return Ok(None);
    }
    let listener =
        tokio::net::TcpListener::bind(&config.kafka_listen).await.map_err(|source| ServerError::KafkaBind { addr: config.kafka_listen.clone(), source })?;
    let addr = listener.local_addr()?;
    let mut kafka = config.kafka.clone();
    if kafka.max_connections == 0 {
        kafka.max_connections = budget.connections / 2;
    }
    if kafka.advertised_port == 0 {
        kafka.advertised_port = i32::from(addr.port());
    }
    if !addr.ip().is_unspecified() {
        kafka.advertised_host = addr.ip().to_string();
    }
    let (log, dir) = (log.clone(), config.data_dir.clone());
    let broker = tokio::task::spawn_blocking(move || crate::kafka::Broker::open(log, &dir, kafka)).await?.map_err(ServerError::Broker)?;
    tokio::spawn(crate::kafka::serve(listener, broker, stopped));
    Ok(Some(addr))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
