//! `GET /metrics`: the server's numbers in Prometheus' text format (written by the
//! `prometheus-client` crate): per persistent query its records in and out, processing
//! errors and late records, and per source partition its position and lag; per topic
//! partition (on the embedded log) its start and end offsets and size; RocksDB's table
//! files and memtables; pull-query and
//! feature-lookup latency histograms; open and refused connections per listener; the
//! bytes of table rows held in memory. Query and
//! topic numbers are read from the running queries and the log when scraped; the
//! histograms live as long as the server.

use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use super::AppState;

/// The content type of the text exposition (OpenMetrics, which Prometheus reads).
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Numbers the server keeps while it runs.
#[derive(Clone)]
pub struct ServerMetrics {
    /// Pull queries on tables, from request to answer.
    pull_queries: Histogram,
    /// Feature lookups, from request to answer.
    feature_lookups: Histogram,
}

impl Default for ServerMetrics {
    fn default() -> Self {
        // 50 µs to about 6.5 s.
        let buckets = || exponential_buckets(0.000_05, 2.0, 18);
        ServerMetrics { pull_queries: Histogram::new(buckets()), feature_lookups: Histogram::new(buckets()) }
    }
}

impl ServerMetrics {
    pub fn observe_pull_query(&self, took: Duration) {
        self.pull_queries.observe(took.as_secs_f64());
    }

    pub fn observe_feature_lookup(&self, took: Duration) {
        self.feature_lookups.observe(took.as_secs_f64());
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueryLabels {
    query: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueryPartitionLabels {
    query: String,
    partition: i64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabels {
    listener: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicPartitionLabels {
    topic: String,
    partition: i64,
}

/// The registry of one scrape.
fn registry(state: &AppState) -> Registry {
    let mut registry = Registry::with_prefix("eddy");
    let engine = &state.engine;
    let records_in = Family::<QueryLabels, Counter>::default();
    let records_out = Family::<QueryLabels, Counter>::default();
    let errors = Family::<QueryLabels, Counter>::default();
    let late = Family::<QueryLabels, Counter>::default();
    let position = Family::<QueryPartitionLabels, Gauge>::default();
    let lag = Family::<QueryPartitionLabels, Gauge>::default();
    let partition_in = Family::<QueryPartitionLabels, Counter>::default();
    let partition_out = Family::<QueryPartitionLabels, Counter>::default();
    let bytes_in = Family::<QueryLabels, Counter>::default();
    let bytes_out = Family::<QueryLabels, Counter>::default();
    for q in engine.catalog().queries() {
        let Some(stats) = engine.runtime().stats(&q.id) else { continue };
        let labels = QueryLabels { query: q.id.clone() };
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        records_in.get_or_create(&labels).inc_by(load(&stats.records_in));
        records_out.get_or_create(&labels).inc_by(load(&stats.records_out));
        errors.get_or_create(&labels).inc_by(load(&stats.errors));
        late.get_or_create(&labels).inc_by(load(&stats.late));
        bytes_in.get_or_create(&labels).inc_by(load(&stats.bytes_in));
        bytes_out.get_or_create(&labels).inc_by(load(&stats.bytes_out));
        for (p, progress) in stats.progress() {
            let labels = QueryPartitionLabels { query: q.id.clone(), partition: i64::from(p) };
            position.get_or_create(&labels).set(progress.position);
            lag.get_or_create(&labels).set((progress.end_offset - progress.position).max(0));
            partition_in.get_or_create(&labels).inc_by(progress.records_in);
            partition_out.get_or_create(&labels).inc_by(progress.records_out);
        }
    }
    registry.register("query_records_in", "Records a persistent query read", records_in);
    registry.register("query_records_out", "Records a persistent query wrote", records_out);
    registry.register("query_processing_errors", "Records a persistent query skipped (also in the processing log)", errors);
    registry.register("query_late_records", "Records that came after their window closed", late);
    registry.register("query_partition_position", "The next offset a query's task reads in its source partition", position);
    registry.register("query_partition_lag", "Records of a source partition a query has not read yet", lag);
    registry.register("query_partition_records_in", "Records a persistent query read from a source partition", partition_in);
    registry.register("query_partition_records_out", "Records a persistent query's task of a source partition wrote to its sink", partition_out);
    registry.register_with_unit("query_read", "Bytes of record batches a persistent query read from its sources", Unit::Bytes, bytes_in);
    registry.register_with_unit("query_written", "Bytes of keys, values and headers a persistent query wrote to its sink", Unit::Bytes, bytes_out);
    // A cluster's topics are the cluster's to report (and asking for every partition's
    // ends would follow them all).
    if engine.log().cluster().is_none() {
        let start = Family::<TopicPartitionLabels, Gauge>::default();
        let end = Family::<TopicPartitionLabels, Gauge>::default();
        let size = Family::<TopicPartitionLabels, Gauge>::default();
        let (written, read) = (Family::<TopicPartitionLabels, Counter>::default(), Family::<TopicPartitionLabels, Counter>::default());
        for topic in engine.log().topics() {
            for p in topic.partitions() {
                let labels = TopicPartitionLabels { topic: topic.name().to_string(), partition: i64::from(p.id()) };
                start.get_or_create(&labels).set(p.start_offset());
                end.get_or_create(&labels).set(p.end_offset());
                if let Ok(local) = topic.local_partition(p.id()) {
                    size.get_or_create(&labels).set(i64::try_from(local.size_bytes()).unwrap_or(i64::MAX));
                    let (appended, fetched) = local.traffic();
                    written.get_or_create(&labels).inc_by(appended);
                    read.get_or_create(&labels).inc_by(fetched);
                }
            }
        }
        registry.register("topic_partition_start_offset", "The first offset a topic partition holds", start);
        registry.register("topic_partition_end_offset", "The offset a topic partition's next record gets", end);
        registry.register_with_unit("topic_partition_size", "The bytes of a topic partition's segments", Unit::Bytes, size);
        registry.register_with_unit("topic_partition_appended", "Bytes of record batches produced to a topic partition (since start)", Unit::Bytes, written);
        registry.register_with_unit("topic_partition_read", "Bytes of record batches read from a topic partition (since start)", Unit::Bytes, read);
    }
    let open = Family::<ListenerLabels, Gauge>::default();
    let refused = Family::<ListenerLabels, Counter>::default();
    for l in crate::net::ConnectionLimit::all() {
        let labels = ListenerLabels { listener: l.listener().to_string() };
        open.get_or_create(&labels).set(i64::try_from(l.open()).unwrap_or(i64::MAX));
        refused.get_or_create(&labels).inc_by(l.refused());
    }
    registry.register("connections_open", "Connections open on a listener (http, kafka)", open);
    registry.register("connections_refused", "Connections a listener refused for being at its maximum", refused);
    if let Ok((files, memtables)) = engine.runtime().state().stored_bytes() {
        let (f, m) = (Gauge::<i64>::default(), Gauge::<i64>::default());
        f.set(i64::try_from(files).unwrap_or(i64::MAX));
        m.set(i64::try_from(memtables).unwrap_or(i64::MAX));
        registry.register_with_unit("state_table_files", "RocksDB's table files (query state and tables)", Unit::Bytes, f);
        registry.register_with_unit("state_memtables", "RocksDB's memtables (query state and tables)", Unit::Bytes, m);
    }
    let hot = Gauge::<i64>::default();
    hot.set(i64::try_from(engine.runtime().state().hot_rows_bytes()).unwrap_or(i64::MAX));
    registry.register_with_unit("state_rows_in_memory", "Table rows held in memory for lookups", Unit::Bytes, hot);
    registry.register_with_unit("pull_query", "Pull queries on tables, from request to answer", Unit::Seconds, state.metrics.pull_queries.clone());
    registry.register_with_unit("feature_lookup", "Feature lookups, from request to answer", Unit::Seconds, state.metrics.feature_lookups.clone());
    registry
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let built = tokio::task::spawn_blocking(move || {
        let mut out = String::new();
        encode(&mut out, &registry(&state)).map(|()| out)
    })
    .await;
    match built {
        Ok(Ok(text)) => (StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Ok(Err(e)) => super::ApiError::internal(format!("cannot write the metrics: {e}")).into_response(),
        Err(e) => super::ApiError::internal(format!("cannot gather the metrics: {e}")).into_response(),
    }
}
