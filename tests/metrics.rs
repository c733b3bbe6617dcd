//! `GET /metrics`, read back as Prometheus reads it (the `prometheus-parse` crate).

mod common;

use common::TestServer;
use serde_json::json;

/// Every sample of a scrape: (name, labels, value); a histogram gives its `_count`.
async fn scrape(s: &TestServer) -> Vec<(String, std::collections::BTreeMap<String, String>, f64)> {
    let answer = reqwest::get(format!("{}/metrics", s.url)).await.expect("scraped");
    assert_eq!(answer.status(), 200);
    let kind = answer.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    let text = answer.text().await.expect("text");
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let parsed = prometheus_parse::Scrape::parse(lines).expect("Prometheus reads it");
    parsed
        .samples
        .into_iter()
        .map(|s| {
            let value = match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                prometheus_parse::Value::Histogram(buckets) => buckets.last().map(|b| b.count).unwrap_or(0.0),
                prometheus_parse::Value::Summary(_) => f64::NAN,
            };
            let labels = s.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            (s.metric, labels, value)
        })
        .collect()
}

fn value_of(samples: &[(String, std::collections::BTreeMap<String, String>, f64)], name: &str, label: (&str, &str)) -> Vec<f64> {
    samples.iter().filter(|(n, l, _)| n == name && l.get(label.0).map(String::as_str) == Some(label.1)).map(|(_, _, v)| *v).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_report_query_throughput_lag_topic_offsets_and_lookup_latency_in_prometheus_format() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM clicks (user VARCHAR KEY, page VARCHAR) WITH (kafka_topic='clicks', partitions=2, value_format='JSON');").await;
    let (status, body) = s
        .ksql_with(
            "CREATE TABLE per_user AS SELECT user, COUNT(*) AS n FROM clicks GROUP BY user EMIT CHANGES;",
            json!({"ksql.streams.auto.offset.reset": "earliest"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let query = body[0]["commandStatus"]["queryId"].as_str().expect("a query id").to_string();
    for (user, page) in [("u1", "/a"), ("u2", "/b"), ("u1", "/c"), ("u3", "/d"), ("u2", "/e")] {
        s.ksql_ok(&format!("INSERT INTO clicks (user, page) VALUES ('{user}', '{page}');")).await;
    }
    s.wait_until("the query read every click", async |s| {
        let samples = scrape(s).await;
        value_of(&samples, "eddy_query_records_in_total", ("query", &query)) == vec![5.0]
    })
    .await;
    let (status, _) = s.post("/query", json!({"ksql": "SELECT * FROM per_user WHERE user = 'u1';"})).await;
    assert_eq!(status, 200);
    let (status, _) = s.post("/features/per_user", json!({"keys": ["u1", "u2"]})).await;
    assert_eq!(status, 200);
    let samples = scrape(&s).await;
    assert_eq!(value_of(&samples, "eddy_query_processing_errors_total", ("query", &query)), vec![0.0]);
    let lags = value_of(&samples, "eddy_query_partition_lag", ("query", &query));
    assert_eq!(lags, vec![0.0, 0.0], "one lag per source partition, none behind: {samples:?}");
    let per_partition: f64 = value_of(&samples, "eddy_query_partition_records_in_total", ("query", &query)).iter().sum();
    assert_eq!(per_partition, 5.0, "the partitions' records add up to the query's");
    s.wait_until("the query wrote its counts", async |s| !value_of(&scrape(s).await, "eddy_query_records_out_total", ("query", &query)).contains(&0.0)).await;
    let samples = scrape(&s).await;
    let out = value_of(&samples, "eddy_query_records_out_total", ("query", &query));
    let out_per_partition: f64 = value_of(&samples, "eddy_query_partition_records_out_total", ("query", &query)).iter().sum();
    assert_eq!(vec![out_per_partition], out, "the partitions' output adds up to the query's");
    let bytes_in = value_of(&samples, "eddy_query_read_bytes_total", ("query", &query));
    let bytes_out = value_of(&samples, "eddy_query_written_bytes_total", ("query", &query));
    assert!(bytes_in.len() == 1 && bytes_in[0] > 0.0 && bytes_out.len() == 1 && bytes_out[0] > 0.0, "bytes read and written: {bytes_in:?} {bytes_out:?}");
    let ends: f64 = value_of(&samples, "eddy_topic_partition_end_offset", ("topic", "clicks")).iter().sum();
    assert_eq!(ends, 5.0);
    let count = |name: &str| samples.iter().filter(|(n, _, _)| n == name || n == &format!("{name}_count")).map(|(_, _, v)| *v).sum::<f64>();
    assert!(count("eddy_pull_query_seconds") >= 1.0, "the pull query is counted: {samples:?}");
    assert!(count("eddy_feature_lookup_seconds") >= 1.0, "the lookup is counted: {samples:?}");
    let sizes: f64 = value_of(&samples, "eddy_topic_partition_size_bytes", ("topic", "clicks")).iter().sum();
    assert!(sizes > 0.0, "the clicks take room: {samples:?}");
    let appended: f64 = value_of(&samples, "eddy_topic_partition_appended_bytes_total", ("topic", "clicks")).iter().sum();
    let read: f64 = value_of(&samples, "eddy_topic_partition_read_bytes_total", ("topic", "clicks")).iter().sum();
    assert!(appended >= sizes && read >= appended, "what was produced, and what the query read: {appended} {read} of {sizes}");
    assert!(samples.iter().any(|(n, _, v)| n == "eddy_state_memtables_bytes" && *v > 0.0), "the counts are in RocksDB: {samples:?}");
    let open = value_of(&samples, "eddy_connections_open", ("listener", "http"));
    assert!(open.len() == 1 && open[0] >= 1.0, "the scrape's own connection is open: {open:?}");
    assert_eq!(value_of(&samples, "eddy_connections_refused_total", ("listener", "kafka")), vec![0.0]);
    // The Grafana dashboard in examples/ reads only metrics the server reports.
    let dashboard = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/grafana-eddy.json")).expect("the dashboard");
    let reported: std::collections::BTreeSet<&str> = samples.iter().map(|(n, _, _)| n.as_str()).collect();
    for word in dashboard.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("eddy_")) {
        let base = word.strip_suffix("_bucket").unwrap_or(word);
        assert!(reported.iter().any(|r| r.starts_with(base)), "the dashboard reads {word}, which /metrics does not report");
    }
}
