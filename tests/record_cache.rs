//! ksqlDB's record cache for aggregations (`cache.max.bytes.buffering`,
//! `commit.interval.ms`) as users see it over REST: a group's updates coalesce into one
//! output row per commit interval, pull queries still see every update at once, a full
//! cache lets rows out early, `0` turns it off, and rows waiting in it survive a crash.

mod common;

use common::TestServer;
use serde_json::{Value, json};

/// The `field` of the last record in `topic`'s value.
async fn last_value(s: &TestServer, topic: &str, field: &str) -> Option<Value> {
    s.read_topic(topic).await.last().map(|(_, r)| r["value"][field].clone())
}

async fn produce_pages(s: &TestServer, topic: &str, batches: usize, per_batch: usize) {
    // One produce request per batch: each is read in its own step.
    for b in 0..batches {
        let records: Vec<Value> = (0..per_batch).map(|i| json!({"key": b * per_batch + i, "value": {"PAGE": "home"}})).collect();
        s.produce(topic, records).await;
    }
}

#[tokio::test]
async fn the_record_cache_coalesces_a_groups_updates_unless_set_to_zero() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM clicks_c (id INT KEY, page STRING) WITH (kafka_topic='clicks_c', format='JSON', partitions=1);").await;
    // The server's default, as in ksqlDB: the cache is on.
    let (status, body) =
        s.ksql_with("CREATE TABLE cached AS SELECT page, COUNT(*) AS n FROM clicks_c GROUP BY page;", json!({"auto.offset.reset": "earliest"})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s
        .ksql_with(
            "CREATE TABLE every_update AS SELECT page, COUNT(*) AS n FROM clicks_c GROUP BY page;",
            json!({"auto.offset.reset": "earliest", "ksql.streams.cache.max.bytes.buffering": "0"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // One produce request: one batch, read in one step (one commit).
    let records: Vec<Value> = (0..100).map(|i| json!({"key": i, "value": {"PAGE": "home"}})).collect();
    s.produce("clicks_c", records).await;
    s.wait_until("every update of the uncached table", async |s| s.read_topic("EVERY_UPDATE").await.len() == 100).await;
    s.wait_until("the cached table's count", async |s| s.rows("SELECT n FROM cached WHERE page = 'home';").await == vec![vec![json!(100)]]).await;
    // The cached rows go out when the commit interval (ksqlDB's 2 s) has passed.
    s.wait_until("the cached table's last row", async |s| last_value(s, "CACHED", "N").await == Some(json!(100))).await;
    let cached = s.read_topic("CACHED").await;
    assert!(cached.len() < 100, "the cache coalesced updates: {} rows", cached.len());
    assert_eq!(cached.last().map(|(_, r)| r["value"]["N"].clone()), Some(json!(100)), "the last row is the latest count");

    // A push query's aggregation is cached the same way: its first row already counts the
    // whole batch, unless the cache is off.
    let first_count = |cache: Option<&'static str>| {
        let s = &s;
        async move {
            let mut props = json!({"auto.offset.reset": "earliest"});
            if let Some(c) = cache {
                props["cache.max.bytes.buffering"] = json!(c);
            }
            let sql = "SELECT page, COUNT(*) AS n FROM clicks_c GROUP BY page EMIT CHANGES LIMIT 1;";
            let (status, body) = s.post("/query", json!({"ksql": sql, "streamsProperties": props})).await;
            assert_eq!(status, 200, "{body}");
            body[1]["row"]["columns"][1].clone()
        }
    };
    assert_eq!(first_count(None).await, json!(100));
    assert_eq!(first_count(Some("0")).await, json!(1));
}

#[tokio::test]
async fn a_full_record_cache_lets_its_groups_out_early() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM clicks_f (id INT KEY, page STRING) WITH (kafka_topic='clicks_f', format='JSON', partitions=1);").await;
    for (table, cache) in [("roomy", "10485760"), ("tiny", "1")] {
        let sql = format!("CREATE TABLE {table} AS SELECT page, COUNT(*) AS n FROM clicks_f GROUP BY page;");
        let (status, body) = s.ksql_with(&sql, json!({"auto.offset.reset": "earliest", "cache.max.bytes.buffering": cache})).await;
        assert_eq!(status, 200, "{body}");
    }
    // Two groups, alternating, in one batch (one step, one commit).
    let records: Vec<Value> = (0..100).map(|i| json!({"key": i, "value": {"PAGE": if i % 2 == 0 { "a" } else { "b" }}})).collect();
    s.produce("clicks_f", records).await;
    // A cache with room for both groups sends each group's last update only; one too small
    // for a second group lets the first out each time the other comes: every update.
    s.wait_until("every update of the tiny cache", async |s| s.read_topic("TINY").await.len() == 100).await;
    s.wait_until("both counts of the roomy cache", async |s| s.rows("SELECT n FROM roomy;").await.len() == 2).await;
    let roomy = s.read_topic("ROOMY").await;
    assert!(roomy.len() < 100, "the roomy cache coalesced updates: {} rows", roomy.len());
}

#[tokio::test]
async fn a_groups_updates_wait_for_the_commit_interval_while_pull_queries_see_them_at_once() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM clicks_i (id INT KEY, page STRING) WITH (kafka_topic='clicks_i', format='JSON', partitions=1);").await;
    for (table, interval) in [("hourly", "3600000"), ("brisk", "500")] {
        let sql = format!("CREATE TABLE {table} AS SELECT page, COUNT(*) AS n FROM clicks_i GROUP BY page;");
        let (status, body) = s.ksql_with(&sql, json!({"auto.offset.reset": "earliest", "commit.interval.ms": interval})).await;
        assert_eq!(status, 200, "{body}");
    }
    produce_pages(&s, "clicks_i", 5, 10).await;
    // The table's state (what pull queries read) has every update as soon as it is made.
    s.wait_until("the hourly table's count", async |s| s.rows("SELECT n FROM hourly WHERE page = 'home';").await == vec![vec![json!(50)]]).await;
    // With no new input, the brisk table's row still goes out once its interval passes.
    s.wait_until("the brisk table's last row", async |s| last_value(s, "BRISK", "N").await == Some(json!(50))).await;
    let brisk = s.read_topic("BRISK").await;
    assert!(brisk.len() < 50, "updates coalesced: {} rows", brisk.len());
    // Five steps later, the hourly table's topic has nothing yet: its row waits for the hour.
    assert_eq!(s.read_topic("HOURLY").await, vec![], "no row before the commit interval");
}

#[tokio::test]
async fn rows_waiting_in_the_record_cache_go_out_after_a_crash() {
    let mut s = TestServer::start();
    s.ksql_ok("CREATE STREAM clicks_k (id INT KEY, page STRING) WITH (kafka_topic='clicks_k', format='JSON', partitions=1);").await;
    let sql = "CREATE TABLE waiting AS SELECT page, COUNT(*) AS n FROM clicks_k GROUP BY page;";
    let (status, body) = s.ksql_with(sql, json!({"auto.offset.reset": "earliest", "commit.interval.ms": "20000"})).await;
    assert_eq!(status, 200, "{body}");
    produce_pages(&s, "clicks_k", 3, 10).await;
    s.wait_until("the count", async |s| s.rows("SELECT n FROM waiting WHERE page = 'home';").await == vec![vec![json!(30)]]).await;
    assert_eq!(s.read_topic("WAITING").await, vec![], "the row waits for the commit interval");
    s.kill9();
    s.restart();
    // The input is not read again (its offsets were committed with the waiting row), and
    // the row that waited goes out after the restart: exactly once.
    s.wait_until("the waiting row", async |s| !s.read_topic("WAITING").await.is_empty()).await;
    let out = s.read_topic("WAITING").await;
    assert_eq!(out.iter().map(|(_, r)| r["value"]["N"].clone()).collect::<Vec<_>>(), vec![json!(30)], "one row, the latest count");
}

#[tokio::test]
async fn terminating_a_query_lets_the_rows_waiting_in_its_cache_out() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM clicks_t (id INT KEY, page STRING) WITH (kafka_topic='clicks_t', format='JSON', partitions=1);").await;
    let sql = "CREATE TABLE stopping AS SELECT page, COUNT(*) AS n FROM clicks_t GROUP BY page;";
    let (status, body) = s.ksql_with(sql, json!({"auto.offset.reset": "earliest", "commit.interval.ms": "3600000"})).await;
    assert_eq!(status, 200, "{body}");
    produce_pages(&s, "clicks_t", 2, 10).await;
    s.wait_until("the count", async |s| s.rows("SELECT n FROM stopping WHERE page = 'home';").await == vec![vec![json!(20)]]).await;
    assert_eq!(s.read_topic("STOPPING").await, vec![], "the row waits for the commit interval");
    let described = s.ksql_ok("DESCRIBE stopping;").await;
    let query = described[0]["sourceDescription"]["writeQueries"][0]["id"].as_str().unwrap_or_default().to_string();
    s.ksql_ok(&format!("TERMINATE {query};")).await;
    let out = s.read_topic("STOPPING").await;
    assert_eq!(out.iter().map(|(_, r)| r["value"]["N"].clone()).collect::<Vec<_>>(), vec![json!(20)], "the waiting row went out as the query stopped");
}
