//! `eddy datagen`, run as a user runs it: into a real server's topics over the Kafka
//! protocol (read back with SQL), and into files (the Flink peer's exact lines).

mod common;

use std::process::Command;

use common::{TestServer, eddy_bin};

/// Runs `eddy datagen ARGS`; (success, stderr).
fn datagen(args: &[&str]) -> (bool, String) {
    let out = Command::new(eddy_bin()).arg("datagen").args(args).output().expect("run eddy datagen");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test]
async fn pageviews_produced_over_kafka_are_read_back_by_a_stream_key_for_key() {
    let s = TestServer::start();
    let (ok, said) = datagen(&["pageviews", "--count", "5000", "--topic", "pageviews", "--partitions", "2", "--bootstrap", &s.kafka, "--keys", "50"]);
    assert!(ok, "{said}");
    assert!(said.contains("5,000 records") && said.contains("to topic pageviews"), "the summary says what went where: {said}");
    s.ksql_ok(
        "CREATE STREAM pageviews (user_key VARCHAR KEY, user_id VARCHAR, page VARCHAR, dwell_ms INT, ts BIGINT) \
         WITH (kafka_topic='pageviews', value_format='JSON', timestamp='ts');",
    )
    .await;
    let rows = s.wait_rows("SELECT user_key, user_id, page, dwell_ms, ts, ROWTIME FROM pageviews;", 5000).await;
    for r in &rows {
        assert_eq!(r[0], r[1], "the key is the user id: {r:?}");
        let dwell = r[3].as_i64().expect("dwell");
        assert!((0..=5000).contains(&dwell), "{r:?}");
        assert_eq!(r[4], r[5], "the record time is the event time: {r:?}");
    }
    let users: std::collections::BTreeSet<_> = rows.iter().map(|r| r[0].as_str().unwrap_or("").to_string()).collect();
    assert!(users.len() <= 50 && users.len() > 40, "--keys 50 users: {}", users.len());
    let (_, topic) = s.get("/topics/pageviews").await;
    let per_partition: Vec<i64> = topic["partitions"].as_array().expect("partitions").iter().map(|p| p["logEndOffset"].as_i64().unwrap_or(0)).collect();
    assert!(per_partition.len() == 2 && per_partition.iter().all(|n| *n > 1000), "keys spread over both partitions: {per_partition:?}");
}

#[tokio::test]
async fn nexmark_writes_person_auction_and_bid_topics_that_sql_reads() {
    let s = TestServer::start();
    let (ok, said) = datagen(&["nexmark", "--count", "5000", "--topic", "nexmark", "--bootstrap", &s.kafka]);
    assert!(ok, "{said}");
    for (topic, n) in [("nexmark_person", 100), ("nexmark_auction", 300), ("nexmark_bid", 4600)] {
        let (_, t) = s.get(&format!("/topics/{topic}")).await;
        assert_eq!(t["partitions"][0]["logEndOffset"], n, "{topic}: {t}");
    }
    s.ksql_ok(
        "CREATE STREAM bid (auction BIGINT KEY, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR, date_time BIGINT, extra VARCHAR) \
         WITH (kafka_topic='nexmark_bid', value_format='JSON', timestamp='date_time');",
    )
    .await;
    s.ksql_ok(
        "CREATE TABLE person (id BIGINT PRIMARY KEY, name VARCHAR, email_address VARCHAR, credit_card VARCHAR, city VARCHAR, state VARCHAR, \
         date_time BIGINT, extra VARCHAR) WITH (kafka_topic='nexmark_person', value_format='JSON');",
    )
    .await;
    let rows = s.wait_rows("SELECT auction, bidder, price, channel, url FROM bid;", 4600).await;
    for r in &rows {
        let (auction, bidder, price) = (r[0].as_i64().unwrap_or(0), r[1].as_i64().unwrap_or(0), r[2].as_i64().unwrap_or(0));
        assert!(auction >= 1000 && bidder >= 1000 && (100..=100_000_000).contains(&price), "{r:?}");
        assert!(r[4].as_str().is_some_and(|u| u.starts_with("https://www.nexmark.com/")), "{r:?}");
    }
    let hot = rows.iter().filter(|r| ["Google", "Facebook", "Baidu", "Apple"].contains(&r[3].as_str().unwrap_or(""))).count();
    assert!((1900..2700).contains(&hot), "about half the bids come through a hot channel: {hot}");
    let people = s.wait_rows("SELECT id, state FROM person;", 100).await;
    assert!(people.iter().all(|p| ["AZ", "CA", "ID", "OR", "WA", "WY"].contains(&p[1].as_str().unwrap_or(""))), "{people:?}");
}

#[test]
fn pageviews_to_a_file_are_the_flink_peers_input_line_for_line() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("pageviews.jsonl");
    let (ok, said) = datagen(&["pageviews", "--count", "3", "-o", path.to_str().expect("path")]);
    assert!(ok, "{said}");
    // What `gen_pageviews.py 3 OUT` (../shared/peers/flink) writes.
    let expected = "{\"USER_ID\":\"u8925\",\"PAGE\":\"product\",\"DWELL_MS\":429,\"TS\":1700000000000}\n\
                    {\"USER_ID\":\"u77395\",\"PAGE\":\"product\",\"DWELL_MS\":3487,\"TS\":1700000000001}\n\
                    {\"USER_ID\":\"u65457\",\"PAGE\":\"checkout\",\"DWELL_MS\":1007,\"TS\":1700000000002}\n";
    assert_eq!(std::fs::read_to_string(&path).expect("written"), expected);
    // Nexmark to files: one a stream.
    let nexmark = dir.path().join("events.jsonl");
    let (ok, said) = datagen(&["nexmark", "--count", "100", "-o", nexmark.to_str().expect("path"), "--value-format", "delimited"]);
    assert!(ok, "{said}");
    let lines = |name: &str| std::fs::read_to_string(dir.path().join(name)).map(|t| t.lines().count()).unwrap_or(0);
    assert_eq!([lines("events.person.jsonl"), lines("events.auction.jsonl"), lines("events.bid.jsonl")], [2, 6, 92]);
}

#[test]
fn datagen_says_what_is_missing_or_unreachable() {
    let (ok, said) = datagen(&["orders", "--count", "1"]);
    assert!(!ok && said.contains("--topic NAME") && said.contains("--output PATH"), "{said}");
    let (ok, said) = datagen(&["orders", "--count", "1", "--topic", "orders", "--bootstrap", "127.0.0.1:1"]);
    assert!(!ok && said.contains("cannot produce to 127.0.0.1:1"), "{said}");
    let (ok, said) = datagen(&["tweets", "--count", "1", "-o", "-"]);
    assert!(!ok && said.contains("pageviews") && said.contains("nexmark"), "the presets are listed: {said}");
}
