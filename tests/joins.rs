//! Joins as users reach them over REST: stream-table enrichment (through a repartition
//! topic), stream-stream joins within a window with outer rows emitted when the window
//! closes, table-table joins whose results update, delete and answer pull queries, N-way
//! joins, and the 400s for joins that cannot run.

mod common;

use common::TestServer;
use serde_json::{Value, json};

/// Output records' values, sorted by the given field.
async fn values_by(s: &TestServer, topic: &str, field: &str) -> Vec<Value> {
    let mut v: Vec<Value> = s.read_topic(topic).await.into_iter().map(|(_, r)| r["value"].clone()).collect();
    v.sort_by_key(|x| x[field].to_string());
    v
}

async fn wait_records(s: &TestServer, topic: &str, n: usize) {
    s.wait_until(&format!("{n} records in {topic}"), async |s| s.read_topic(topic).await.len() >= n).await;
}

#[tokio::test]
async fn stream_table_left_join_enriches_each_order_with_the_user_row_current_at_its_time() {
    let s = TestServer::start();
    s.ksql_ok("CREATE TABLE users (user_id VARCHAR PRIMARY KEY, tier VARCHAR, country VARCHAR) WITH (kafka_topic='users', value_format='JSON', partitions=2);")
        .await;
    // Orders are keyed by order id: joining on user_id repartitions them.
    s.ksql_ok("CREATE STREAM orders (order_id VARCHAR KEY, user_id VARCHAR, amount BIGINT) WITH (kafka_topic='orders', value_format='JSON', partitions=2);")
        .await;
    let body = s
        .ksql_ok(
            "CREATE STREAM enriched AS SELECT o.user_id, o.order_id, o.amount, u.tier, u.country FROM orders o LEFT JOIN users u ON o.user_id = \
            u.user_id EMIT CHANGES;",
        )
        .await;
    assert_eq!(body[0]["commandStatus"]["status"], "SUCCESS", "{body}");
    let inner = s
        .ksql_ok(
            "CREATE STREAM enriched_inner AS SELECT o.user_id AS uid, o.order_id AS order_id, u.tier AS tier FROM orders o JOIN users u \
        ON o.user_id = u.user_id;",
        )
        .await;
    assert_eq!(inner[0]["commandStatus"]["status"], "SUCCESS", "{inner}");

    s.produce(
        "users",
        vec![
            json!({"key": "u1", "value": {"tier": "gold", "country": "NL"}, "timestamp": 1000}),
            json!({"key": "u2", "value": {"tier": "silver", "country": "DE"}, "timestamp": 1000}),
        ],
    )
    .await;
    s.produce(
        "orders",
        vec![
            json!({"key": "o1", "value": {"user_id": "u1", "amount": 10}, "timestamp": 2000}),
            json!({"key": "o2", "value": {"user_id": "u3", "amount": 20}, "timestamp": 2000}),
            json!({"key": "o3", "value": {"user_id": "u2", "amount": 30}, "timestamp": 3000}),
            json!({"key": "o9", "value": {"user_id": null, "amount": 90}, "timestamp": 3000}),
        ],
    )
    .await;
    // u1 is upgraded and u2 deleted before the next orders. (Across topics, order is by
    // timestamp only among records that are there to read: wait for the first results.)
    wait_records(&s, "ENRICHED", 3).await;
    wait_records(&s, "ENRICHED_INNER", 2).await;
    s.produce(
        "users",
        vec![json!({"key": "u1", "value": {"tier": "platinum", "country": "NL"}, "timestamp": 4000}), json!({"key": "u2", "value": null, "timestamp": 4000})],
    )
    .await;
    s.produce(
        "orders",
        vec![
            json!({"key": "o4", "value": {"user_id": "u1", "amount": 40}, "timestamp": 5000}),
            json!({"key": "o5", "value": {"user_id": "u2", "amount": 50}, "timestamp": 5000}),
        ],
    )
    .await;

    wait_records(&s, "ENRICHED", 5).await;
    let got = values_by(&s, "ENRICHED", "ORDER_ID").await;
    assert_eq!(
        got,
        vec![
            json!({"ORDER_ID": "o1", "AMOUNT": 10, "TIER": "gold", "COUNTRY": "NL"}),
            json!({"ORDER_ID": "o2", "AMOUNT": 20, "TIER": null, "COUNTRY": null}),
            json!({"ORDER_ID": "o3", "AMOUNT": 30, "TIER": "silver", "COUNTRY": "DE"}),
            json!({"ORDER_ID": "o4", "AMOUNT": 40, "TIER": "platinum", "COUNTRY": "NL"}),
            json!({"ORDER_ID": "o5", "AMOUNT": 50, "TIER": null, "COUNTRY": null}),
        ]
    );
    // The result is keyed by the join key, with the stream row's time.
    let keys: Vec<(String, i64)> = {
        let mut k: Vec<(String, i64)> = s
            .read_topic("ENRICHED")
            .await
            .into_iter()
            .map(|(_, r)| (r["key"].as_str().unwrap_or_default().to_string(), r["timestamp"].as_i64().unwrap_or(0)))
            .collect();
        k.sort();
        k
    };
    assert_eq!(keys, vec![("u1".into(), 2000), ("u1".into(), 5000), ("u2".into(), 3000), ("u2".into(), 5000), ("u3".into(), 2000)]);
    wait_records(&s, "ENRICHED_INNER", 3).await;
    let inner = values_by(&s, "ENRICHED_INNER", "ORDER_ID").await;
    assert_eq!(
        inner,
        vec![json!({"ORDER_ID": "o1", "TIER": "gold"}), json!({"ORDER_ID": "o3", "TIER": "silver"}), json!({"ORDER_ID": "o4", "TIER": "platinum"})]
    );

    let d = s.ksql_ok("DESCRIBE enriched EXTENDED;").await;
    let src = &d[0]["sourceDescription"];
    assert_eq!(src["keyFormat"], "KAFKA", "{src}");
    assert!(src["errorStats"].as_str().unwrap_or_default().contains("failed-messages: 1"), "the null join key is counted: {}", src["errorStats"]);
    let fields: Vec<&str> = src["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(fields, vec!["O_USER_ID", "ORDER_ID", "AMOUNT", "TIER", "COUNTRY"]);
    let q = src["writeQueries"][0]["id"].as_str().unwrap().to_string();
    let plan = s.ksql_ok(&format!("EXPLAIN {q};")).await[0]["queryDescription"]["executionPlan"].as_str().unwrap_or_default().to_string();
    assert!(plan.contains("LEFT STREAM-TABLE") && plan.contains("REPARTITION BY"), "{plan}");
}

#[tokio::test]
async fn stream_stream_joins_match_within_the_window_and_emit_unmatched_rows_when_it_closes() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM impressions (ad_id VARCHAR KEY, imp_id VARCHAR) WITH (kafka_topic='impressions', value_format='JSON', partitions=1);").await;
    s.ksql_ok("CREATE STREAM clicks (ad_id VARCHAR KEY, click_id VARCHAR) WITH (kafka_topic='clicks', value_format='JSON', partitions=1);").await;
    for sql in [
        "CREATE STREAM matched AS SELECT i.ad_id, i.imp_id, c.click_id FROM impressions i JOIN clicks c WITHIN 10 SECONDS ON i.ad_id = c.ad_id;",
        "CREATE STREAM outcomes AS SELECT i.ad_id, i.imp_id, c.click_id FROM impressions i LEFT JOIN clicks c WITHIN 10 SECONDS GRACE PERIOD 0 SECONDS \
            ON i.ad_id = c.ad_id;",
        // A FULL OUTER join's key is the synthetic ROWKEY (either side's key may be null).
        "CREATE STREAM everything AS SELECT ROWKEY AS ad_id, i.imp_id, c.click_id FROM impressions i FULL OUTER JOIN clicks c WITHIN 10 SECONDS GRACE \
            PERIOD 0 SECONDS ON i.ad_id = c.ad_id;",
        "CREATE STREAM eager AS SELECT i.ad_id, i.imp_id, c.click_id FROM impressions i LEFT JOIN clicks c WITHIN (0 SECONDS, 10 SECONDS) ON i.ad_id = \
            c.ad_id;",
    ] {
        let body = s.ksql_ok(sql).await;
        assert_eq!(body[0]["commandStatus"]["status"], "SUCCESS", "{sql}: {body}");
    }
    s.produce(
        "impressions",
        vec![json!({"key": "a1", "value": {"imp_id": "i1"}, "timestamp": 0}), json!({"key": "a2", "value": {"imp_id": "i2"}, "timestamp": 1000})],
    )
    .await;
    s.produce(
        "clicks",
        vec![
            json!({"key": "a1", "value": {"click_id": "c1"}, "timestamp": 5000}),
            json!({"key": "a9", "value": {"click_id": "c9"}, "timestamp": 30000}),
            // Out of order: within the default grace, but older than the buffers keep with
            // a grace of 0 (late: counted and not buffered there, yet it still joins the
            // impression buffered before it, as in Kafka Streams).
            json!({"key": "a2", "value": {"click_id": "late"}, "timestamp": 2000}),
        ],
    )
    .await;
    // Moves stream time past c9's window, so the full outer join emits it unmatched.
    s.produce("impressions", vec![json!({"key": "a5", "value": {"imp_id": "i5"}, "timestamp": 50000})]).await;

    wait_records(&s, "EVERYTHING", 4).await;
    wait_records(&s, "OUTCOMES", 3).await;
    wait_records(&s, "MATCHED", 2).await;
    let matched = values_by(&s, "MATCHED", "IMP_ID").await;
    assert_eq!(
        matched,
        vec![json!({"IMP_ID": "i1", "CLICK_ID": "c1"}), json!({"IMP_ID": "i2", "CLICK_ID": "late"})],
        "without GRACE PERIOD, 24 hours of grace"
    );
    let outcomes = values_by(&s, "OUTCOMES", "IMP_ID").await;
    assert_eq!(
        outcomes,
        vec![json!({"IMP_ID": "i1", "CLICK_ID": "c1"}), json!({"IMP_ID": "i2", "CLICK_ID": null}), json!({"IMP_ID": "i2", "CLICK_ID": "late"})],
        "i2's window closed unmatched when c9 arrived; i5's window is still open"
    );
    let mut everything: Vec<(String, Value)> =
        s.read_topic("EVERYTHING").await.into_iter().map(|(_, r)| (r["key"].as_str().unwrap_or_default().to_string(), r["value"].clone())).collect();
    everything.sort_by_key(|(k, _)| k.clone());
    assert_eq!(
        everything,
        vec![
            ("a1".into(), json!({"IMP_ID": "i1", "CLICK_ID": "c1"})),
            ("a2".into(), json!({"IMP_ID": "i2", "CLICK_ID": null})),
            ("a2".into(), json!({"IMP_ID": "i2", "CLICK_ID": "late"})),
            ("a9".into(), json!({"IMP_ID": null, "CLICK_ID": "c9"})),
        ],
        "an unmatched click keeps its key in a full outer join"
    );
    // Without GRACE PERIOD an unmatched row is emitted at once, and again when it matches.
    wait_records(&s, "EAGER", 5).await;
    let eager = values_by(&s, "EAGER", "IMP_ID").await;
    assert_eq!(
        eager,
        vec![
            json!({"IMP_ID": "i1", "CLICK_ID": null}),
            json!({"IMP_ID": "i1", "CLICK_ID": "c1"}),
            json!({"IMP_ID": "i2", "CLICK_ID": null}),
            json!({"IMP_ID": "i2", "CLICK_ID": "late"}),
            json!({"IMP_ID": "i5", "CLICK_ID": null}),
        ]
    );
    let d = s.ksql_ok("DESCRIBE outcomes EXTENDED;").await;
    let stats = d[0]["sourceDescription"]["errorStats"].as_str().unwrap_or_default().to_string();
    assert!(stats.contains("late-records: 1"), "{stats}");
}

#[tokio::test]
async fn table_table_joins_update_and_delete_result_rows_that_pull_queries_and_feature_lookups_read() {
    let s = TestServer::start();
    s.ksql_ok("CREATE TABLE users (user_id VARCHAR PRIMARY KEY, name VARCHAR) WITH (kafka_topic='users', value_format='JSON', partitions=2);").await;
    s.ksql_ok("CREATE TABLE scores (user_id VARCHAR PRIMARY KEY, score BIGINT) WITH (kafka_topic='scores', value_format='JSON', partitions=2);").await;
    let body = s
        .ksql_ok(
            "CREATE TABLE user_scores AS SELECT u.user_id AS user_id, u.name AS name, s.score AS score FROM users u LEFT JOIN scores s ON \
        u.user_id = s.user_id;",
        )
        .await;
    assert_eq!(body[0]["commandStatus"]["status"], "SUCCESS", "{body}");
    s.ksql_ok(
        "CREATE TABLE everyone AS SELECT ROWKEY AS user_id, u.name AS name, s.score AS score FROM users u FULL OUTER JOIN scores s ON u.user_id = s.user_id;",
    )
    .await;
    s.ksql_ok(
        "CREATE TABLE scored AS SELECT s.user_id AS user_id, u.name AS name, s.score AS score FROM users u RIGHT JOIN scores s ON u.user_id = s.user_id;",
    )
    .await;
    s.ksql_ok(
        "CREATE TABLE both_known AS SELECT u.user_id AS user_id, u.name AS name, s.score AS score FROM users u JOIN scores s ON u.user_id = \
        s.user_id WHERE s.score > 1;",
    )
    .await;
    let (status, body) = s.ksql("CREATE STREAM not_a_stream AS SELECT u.user_id, s.score FROM users u JOIN scores s ON u.user_id = s.user_id;").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("CREATE TABLE"), "{body}");

    s.produce("users", vec![json!({"key": "u1", "value": {"name": "Ann"}, "timestamp": 1}), json!({"key": "u2", "value": {"name": "Bob"}, "timestamp": 1})])
        .await;
    s.produce("scores", vec![json!({"key": "u1", "value": {"score": 10}, "timestamp": 2}), json!({"key": "u3", "value": {"score": 7}, "timestamp": 2})]).await;
    s.wait_until("u1 has a score", async |s| s.rows("SELECT score FROM user_scores WHERE user_id = 'u1';").await == vec![vec![json!(10)]]).await;
    let mut rows = s.rows("SELECT * FROM user_scores;").await;
    rows.sort_by_key(|r| r[0].to_string());
    assert_eq!(rows, vec![vec![json!("u1"), json!("Ann"), json!(10)], vec![json!("u2"), json!("Bob"), Value::Null]], "u3 has no user: no row in a LEFT join");
    s.wait_rows("SELECT * FROM both_known;", 1).await;
    let mut everyone = s.wait_rows("SELECT user_id, name, score FROM everyone;", 3).await;
    everyone.sort_by_key(|r| r[0].to_string());
    assert_eq!(everyone[2], vec![json!("u3"), Value::Null, json!(7)], "a score without a user keeps its key in a FULL OUTER join");
    let mut scored = s.wait_rows("SELECT user_id, name, score FROM scored;", 2).await;
    scored.sort_by_key(|r| r[0].to_string());
    assert_eq!(scored, vec![vec![json!("u1"), json!("Ann"), json!(10)], vec![json!("u3"), Value::Null, json!(7)]], "RIGHT join: every score");

    // Ann leaves; Bob's score arrives but is filtered out of both_known, then raised.
    s.produce("users", vec![json!({"key": "u1", "value": null, "timestamp": 3})]).await;
    s.produce("scores", vec![json!({"key": "u2", "value": {"score": 1}, "timestamp": 4})]).await;
    s.wait_until("u1 is gone and u2 scored", async |s| s.rows("SELECT user_id, score FROM user_scores;").await == vec![vec![json!("u2"), json!(1)]]).await;
    s.wait_until("both_known is empty", async |s| s.rows("SELECT * FROM both_known;").await.is_empty()).await;
    s.produce("scores", vec![json!({"key": "u2", "value": {"score": 5}, "timestamp": 5})]).await;
    s.wait_until("u2 passes the filter", async |s| {
        s.rows("SELECT user_id, name, score FROM both_known;").await == vec![vec![json!("u2"), json!("Bob"), json!(5)]]
    })
    .await;

    s.wait_until("u2's new score is in user_scores", async |s| s.rows("SELECT score FROM user_scores WHERE user_id = 'u2';").await == vec![vec![json!(5)]])
        .await;
    let (status, body) = s.post("/features/user_scores", json!({"keys": ["u2", "u1"]})).await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(results.len(), 2, "{body}");
    assert_eq!(results[0]["row"]["SCORE"], json!(5), "{body}");
    assert_eq!(results[1]["missing"], json!(true), "{body}");

    // The result topic carries the changelog: the deletion of u1 is a tombstone.
    let changelog: Vec<(String, Value)> =
        s.read_topic("USER_SCORES").await.into_iter().map(|(_, r)| (r["key"].as_str().unwrap_or_default().to_string(), r["value"].clone())).collect();
    assert!(changelog.contains(&("u1".to_string(), Value::Null)), "{changelog:?}");
}

#[tokio::test]
async fn joins_that_cannot_run_are_400s_that_say_what_is_allowed() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM a (id VARCHAR KEY, n INT, t VARCHAR) WITH (kafka_topic='a', value_format='JSON', partitions=1);").await;
    s.ksql_ok("CREATE STREAM b (id VARCHAR KEY, n INT) WITH (kafka_topic='b', value_format='JSON', partitions=1);").await;
    s.ksql_ok("CREATE TABLE t (id VARCHAR PRIMARY KEY, v INT, other VARCHAR) WITH (kafka_topic='t', value_format='JSON', partitions=1);").await;
    s.ksql_ok("CREATE TABLE t3 (id VARCHAR PRIMARY KEY, v INT) WITH (kafka_topic='t3', value_format='JSON', partitions=3);").await;
    s.ksql_ok("CREATE TABLE u (id VARCHAR PRIMARY KEY, w INT) WITH (kafka_topic='u', value_format='JSON', partitions=1);").await;
    for (sql, needle) in [
        ("CREATE STREAM j1 AS SELECT a.id, b.n FROM a JOIN b WITHIN 1 MINUTE ON a.n > b.n;", "equality"),
        ("CREATE STREAM j2 AS SELECT a.id, b.n FROM a JOIN b ON a.id = b.id;", "WITHIN"),
        ("CREATE STREAM j3 AS SELECT a.id, b.n FROM a JOIN b WITHIN 1 MINUTE ON a.t = b.n;", "types don't match. Got A.T{STRING} = B.N{INTEGER}."),
        ("CREATE STREAM j3b AS SELECT a.id, b.n FROM a JOIN b WITHIN 1 MINUTE ON CAST(t AS INT) = b.id;", "Got CAST(A.T AS INTEGER){INTEGER} = B.ID{STRING}."),
        ("CREATE STREAM j4 AS SELECT a.id, t.v FROM a RIGHT JOIN t ON a.id = t.id;", "INNER or LEFT"),
        ("CREATE STREAM j5 AS SELECT t.id, a.n FROM t JOIN a ON t.id = a.id;", "stream-table"),
        ("CREATE STREAM j6 AS SELECT a.n, b.n AS bn FROM a JOIN b WITHIN 1 MINUTE ON a.id = b.id;", "must include the join expressions"),
        ("CREATE STREAM j7 AS SELECT a.id, t.v FROM a JOIN t WITHIN 1 MINUTE ON a.id = t.id;", "not windowed"),
        ("CREATE STREAM j8 AS SELECT a.id, t.v FROM a JOIN t ON a.id = t.other;", "join on the table's primary key"),
        ("CREATE TABLE j9 AS SELECT t.id, u.w FROM t FULL OUTER JOIN u ON t.other = u.id;", "on a foreign key is not supported"),
        ("CREATE STREAM j10 AS SELECT a.id, t3.v FROM a JOIN t3 ON a.id = t3.id;", "number of partitions"),
        ("CREATE STREAM j12 AS SELECT a.id FROM a JOIN b WITHIN 1 MINUTE ON a.id = a.id;", "same side"),
        ("CREATE STREAM j13 AS SELECT a.n, b.n AS bn FROM a FULL OUTER JOIN b WITHIN 1 MINUTE ON a.id = b.id;", "must include the join expression ROWKEY"),
        ("CREATE STREAM j14 AS SELECT a.id, a.id AS id2, b.n FROM a JOIN b WITHIN 1 MINUTE ON a.id = b.id;", "key column (`A_ID`) more than once"),
    ] {
        let (status, body) = s.ksql(sql).await;
        assert_eq!(status, 400, "{sql}: {body}");
        let m = body["message"].as_str().unwrap_or_default();
        assert!(m.contains(needle), "{sql}: message {m:?} should mention {needle:?}");
    }
    let (status, body) = s.post("/query", json!({"ksql": "SELECT a.id, b.n FROM a JOIN b WITHIN 1 MINUTE ON a.id = b.id;"})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("Pull queries don't support JOIN clauses"), "{body}");
}

#[tokio::test]
async fn push_query_joins_stream_results_and_clean_up_when_done() {
    let s = TestServer::start();
    s.ksql_ok("CREATE TABLE users (user_id VARCHAR PRIMARY KEY, tier VARCHAR) WITH (kafka_topic='users', value_format='JSON', partitions=1);").await;
    s.ksql_ok("CREATE STREAM orders (order_id VARCHAR KEY, user_id VARCHAR) WITH (kafka_topic='orders', value_format='JSON', partitions=1);").await;
    s.produce("users", vec![json!({"key": "u1", "value": {"tier": "gold"}, "timestamp": 1})]).await;
    s.produce(
        "orders",
        vec![
            json!({"key": "o1", "value": {"user_id": "u1"}, "timestamp": 2}),
            json!({"key": "o2", "value": {"user_id": "u2"}, "timestamp": 3}),
            json!({"key": "o3", "value": {"user_id": "u1"}, "timestamp": 4}),
        ],
    )
    .await;
    let out = s.query("SELECT o.order_id, u.tier FROM orders o LEFT JOIN users u ON o.user_id = u.user_id EMIT CHANGES LIMIT 3;").await;
    assert_eq!(out[0]["header"]["schema"], "`ORDER_ID` STRING, `TIER` STRING", "{out:?}");
    let rows: Vec<&Value> = out.iter().filter_map(|e| e.get("row")).map(|r| &r["columns"]).collect();
    assert_eq!(rows, vec![&json!(["o1", "gold"]), &json!(["o2", null]), &json!(["o3", "gold"])]);
    assert_eq!(out.last(), Some(&json!({"finalMessage": "Limit Reached"})));
    // INSERT INTO an existing stream from a join.
    s.ksql_ok("CREATE STREAM ins (uid VARCHAR KEY, tier VARCHAR) WITH (kafka_topic='ins', value_format='JSON', partitions=1);").await;
    let body = s.ksql_ok("INSERT INTO ins SELECT o.user_id AS uid, u.tier AS tier FROM orders o LEFT JOIN users u ON o.user_id = u.user_id;").await;
    assert_eq!(body[0]["commandStatus"]["status"], "SUCCESS", "{body}");
    wait_records(&s, "ins", 3).await;
    let mut ins: Vec<(String, Value)> =
        s.read_topic("ins").await.into_iter().map(|(_, r)| (r["key"].as_str().unwrap_or_default().to_string(), r["value"]["TIER"].clone())).collect();
    ins.sort_by_key(|(k, v)| (k.clone(), v.to_string()));
    assert_eq!(ins, vec![("u1".into(), json!("gold")), ("u1".into(), json!("gold")), ("u2".into(), Value::Null)]);
    // The push query's repartition topic and state go with it.
    s.wait_until("the push join's internal topic is removed", async |s| {
        let (_, topics) = s.get("/topics").await;
        !topics["topics"].as_array().cloned().unwrap_or_default().iter().any(|t| t["name"].as_str().is_some_and(|n| n.contains("transient_JOIN")))
    })
    .await;
}

#[tokio::test]
async fn three_way_join_enriches_orders_with_user_and_product_rows_through_two_stages() {
    let s = TestServer::start();
    s.ksql_ok("CREATE TABLE users (user_id VARCHAR PRIMARY KEY, tier VARCHAR) WITH (kafka_topic='users', value_format='JSON', partitions=2);").await;
    s.ksql_ok("CREATE TABLE products (product_id VARCHAR PRIMARY KEY, title VARCHAR) WITH (kafka_topic='products', value_format='JSON', partitions=3);").await;
    s.ksql_ok(
        "CREATE STREAM orders (order_id VARCHAR KEY, user_id VARCHAR, product_id VARCHAR) WITH (kafka_topic='orders', value_format='JSON', partitions=2);",
    )
    .await;
    // Orders are repartitioned by user for the first join, then by product for the second.
    let body = s
        .ksql_ok(
            "CREATE STREAM full_orders AS SELECT o.product_id, o.order_id, u.tier, p.title FROM orders o JOIN users u ON o.user_id = u.user_id \
            LEFT JOIN products p ON o.product_id = p.product_id;",
        )
        .await;
    assert_eq!(body[0]["commandStatus"]["status"], "SUCCESS", "{body}");
    s.produce(
        "users",
        vec![json!({"key": "u1", "value": {"tier": "gold"}, "timestamp": 1}), json!({"key": "u2", "value": {"tier": "silver"}, "timestamp": 1})],
    )
    .await;
    s.produce("products", vec![json!({"key": "p1", "value": {"title": "Kettle"}, "timestamp": 1})]).await;
    s.produce(
        "orders",
        vec![
            json!({"key": "o1", "value": {"user_id": "u1", "product_id": "p1"}, "timestamp": 10}),
            json!({"key": "o2", "value": {"user_id": "u2", "product_id": "p9"}, "timestamp": 11}),
            json!({"key": "o3", "value": {"user_id": "u9", "product_id": "p1"}, "timestamp": 12}),
        ],
    )
    .await;
    wait_records(&s, "FULL_ORDERS", 2).await;
    let mut got: Vec<(String, Value)> =
        s.read_topic("FULL_ORDERS").await.into_iter().map(|(_, r)| (r["key"].as_str().unwrap_or_default().to_string(), r["value"].clone())).collect();
    got.sort_by_key(|(_, v)| v["ORDER_ID"].to_string());
    assert_eq!(
        got,
        vec![
            ("p1".to_string(), json!({"ORDER_ID": "o1", "TIER": "gold", "TITLE": "Kettle"})),
            ("p9".to_string(), json!({"ORDER_ID": "o2", "TIER": "silver", "TITLE": null})),
        ],
        "o3's user is unknown: the inner first join drops it"
    );
    let d = s.ksql_ok("DESCRIBE full_orders EXTENDED;").await;
    let q = d[0]["sourceDescription"]["writeQueries"][0]["id"].as_str().unwrap_or_default().to_string();
    let plan = s.ksql_ok(&format!("EXPLAIN {q};")).await[0]["queryDescription"]["executionPlan"].as_str().unwrap_or_default().to_string();
    assert!(plan.contains("[ STAGE ]") && plan.contains("LEFT STREAM-TABLE") && plan.contains("INNER STREAM-TABLE"), "{plan}");
    // Dropping the query removes every stage's internal topics and consumer groups.
    let internal = async |s: &TestServer| -> Vec<String> {
        let (_, topics) = s.get("/topics").await;
        topics["topics"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|t| t["name"].as_str().map(str::to_string))
            .filter(|n| n.starts_with(&format!("_eddy_{q}")))
            .collect()
    };
    let groups = async |s: &TestServer| -> Vec<String> {
        let (_, groups) = s.get("/groups").await;
        groups["groups"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|g| g["group"].as_str().map(str::to_string))
            .filter(|g| g.starts_with(&q))
            .collect()
    };
    let before = internal(&s).await;
    assert_eq!(before.len(), 2, "the first stage's repartition of orders and the second stage's input: {before:?}");
    assert!(groups(&s).await.len() >= 4, "{:?}", groups(&s).await);
    s.ksql_ok(&format!("TERMINATE {q};")).await;
    s.ksql_ok("DROP STREAM full_orders;").await;
    assert_eq!(internal(&s).await, Vec::<String>::new());
    assert_eq!(groups(&s).await, Vec::<String>::new());
}

#[tokio::test]
async fn foreign_key_joins_follow_updates_and_deletes_on_both_tables() {
    let s = TestServer::start();
    s.ksql_ok(
        "CREATE TABLE orders_t (order_id VARCHAR PRIMARY KEY, customer_id VARCHAR, amount BIGINT) WITH (kafka_topic='orders_t', \
        value_format='JSON', partitions=3);",
    )
    .await;
    s.ksql_ok("CREATE TABLE customers (id VARCHAR PRIMARY KEY, name VARCHAR) WITH (kafka_topic='customers', value_format='JSON', partitions=2);").await;
    let body =
        s.ksql_ok("CREATE TABLE order_with_customer AS SELECT o.order_id, o.amount, c.name FROM orders_t o JOIN customers c ON o.customer_id = c.id;").await;
    assert_eq!(body[0]["commandStatus"]["status"], "SUCCESS", "{body}");
    s.ksql_ok("CREATE TABLE order_maybe_customer AS SELECT o.order_id, o.amount, c.name FROM orders_t o LEFT JOIN customers c ON o.customer_id = c.id;").await;
    let (status, body) = s.ksql("CREATE TABLE no_key AS SELECT o.amount, c.name FROM orders_t o JOIN customers c ON o.customer_id = c.id;").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("Primary key column missing"), "{body}");
    let (status, body) = s.ksql("CREATE TABLE rj AS SELECT o.order_id, c.name FROM orders_t o RIGHT JOIN customers c ON o.customer_id = c.id;").await;
    assert_eq!(status, 400, "{body}");

    let both = async |s: &TestServer| -> (Vec<Vec<Value>>, Vec<Vec<Value>>) {
        let mut a = s.rows("SELECT order_id, amount, name FROM order_with_customer;").await;
        let mut b = s.rows("SELECT order_id, amount, name FROM order_maybe_customer;").await;
        a.sort_by_key(|r| r[0].to_string());
        b.sort_by_key(|r| r[0].to_string());
        (a, b)
    };
    s.produce("customers", vec![json!({"key": "c1", "value": {"name": "Ann"}, "timestamp": 1})]).await;
    s.produce(
        "orders_t",
        vec![
            json!({"key": "o1", "value": {"customer_id": "c1", "amount": 10}, "timestamp": 2}),
            json!({"key": "o2", "value": {"customer_id": "c2", "amount": 20}, "timestamp": 2}),
        ],
    )
    .await;
    s.wait_until("o1 joined, o2 waits for c2", async |s| {
        both(s).await
            == (vec![vec![json!("o1"), json!(10), json!("Ann")]], vec![vec![json!("o1"), json!(10), json!("Ann")], vec![json!("o2"), json!(20), Value::Null]])
    })
    .await;
    // A new customer joins every order that refers to it; a renamed one updates them.
    s.produce(
        "customers",
        vec![json!({"key": "c2", "value": {"name": "Bob"}, "timestamp": 3}), json!({"key": "c1", "value": {"name": "Ann B."}, "timestamp": 3})],
    )
    .await;
    s.wait_until("both orders joined", async |s| {
        let want = vec![vec![json!("o1"), json!(10), json!("Ann B.")], vec![json!("o2"), json!(20), json!("Bob")]];
        both(s).await == (want.clone(), want)
    })
    .await;
    // o1 moves to c2; c2 is deleted; o2 is deleted.
    s.produce("orders_t", vec![json!({"key": "o1", "value": {"customer_id": "c2", "amount": 11}, "timestamp": 4})]).await;
    s.wait_until("o1 moved to Bob", async |s| both(s).await.0.first().is_some_and(|r| r[2] == json!("Bob"))).await;
    s.produce("customers", vec![json!({"key": "c2", "value": null, "timestamp": 5})]).await;
    s.wait_until("c2's orders lose their customer", async |s| {
        both(s).await == (vec![], vec![vec![json!("o1"), json!(11), Value::Null], vec![json!("o2"), json!(20), Value::Null]])
    })
    .await;
    s.produce("orders_t", vec![json!({"key": "o2", "value": null, "timestamp": 6})]).await;
    s.wait_until("o2 is gone", async |s| both(s).await.1 == vec![vec![json!("o1"), json!(11), Value::Null]]).await;
    // The inner join's changelog: results, then tombstones, keyed by order id.
    let changelog: Vec<(String, Value)> = s
        .read_topic("ORDER_WITH_CUSTOMER")
        .await
        .into_iter()
        .map(|(_, r)| (r["key"].as_str().unwrap_or_default().to_string(), r["value"]["NAME"].clone()))
        .collect();
    let o1: Vec<Value> = changelog.iter().filter(|(k, _)| k == "o1").map(|(_, v)| v.clone()).collect();
    assert_eq!(o1, vec![json!("Ann"), json!("Ann B."), json!("Bob"), Value::Null], "{changelog:?}");
}

#[tokio::test]
async fn stream_stream_join_partitioned_by_a_selected_expression_is_keyed_by_it() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM clicks (click_id VARCHAR KEY, ad VARCHAR, region VARCHAR) WITH (kafka_topic='clicks', value_format='JSON', partitions=2);").await;
    s.ksql_ok("CREATE STREAM views (view_id VARCHAR KEY, ad VARCHAR) WITH (kafka_topic='views', value_format='JSON', partitions=2);").await;
    let body = s
        .ksql_ok(
            "CREATE STREAM by_region AS SELECT c.region, c.click_id, v.view_id FROM clicks c JOIN views v WITHIN 1 MINUTE ON c.ad = v.ad \
        PARTITION BY c.region;",
        )
        .await;
    assert_eq!(body[0]["commandStatus"]["status"], "SUCCESS", "{body}");
    let desc = s.ksql_ok("DESCRIBE by_region;").await;
    let fields = &desc[0]["sourceDescription"]["fields"];
    assert_eq!((fields[0]["name"].as_str(), fields[0]["type"].as_str()), (Some("REGION"), Some("KEY")));
    s.produce("views", vec![json!({"key": "v1", "value": {"ad": "a1"}, "timestamp": 1000})]).await;
    s.produce("clicks", vec![json!({"key": "k1", "value": {"ad": "a1", "region": "eu"}, "timestamp": 2000})]).await;
    wait_records(&s, "BY_REGION", 1).await;
    let records = s.read_topic("BY_REGION").await;
    assert_eq!(records[0].1["key"], "eu");
    assert_eq!(records[0].1["value"], json!({"CLICK_ID": "k1", "VIEW_ID": "v1"}));
    // The partitioning expression must be selected.
    let (status, body) =
        s.ksql("CREATE STREAM bad AS SELECT c.click_id, v.view_id FROM clicks c JOIN views v WITHIN 1 MINUTE ON c.ad = v.ad PARTITION BY c.region;").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("must include the partitioning expression C.REGION"), "{body}");
}

#[tokio::test]
async fn qualified_pseudo_columns_give_each_source_its_own_time_partition_and_offset() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM orders_p (id INT KEY, cid INT, amt INT) WITH (kafka_topic='orders_p', value_format='JSON', partitions=1);").await;
    s.ksql_ok("CREATE TABLE customers_p (id INT PRIMARY KEY, name STRING) WITH (kafka_topic='customers_p', value_format='JSON', partitions=1);").await;
    s.ksql_ok("CREATE STREAM shipments_p (id INT KEY, oid INT) WITH (kafka_topic='shipments_p', value_format='JSON', partitions=1);").await;
    s.ksql_ok(
        "CREATE STREAM enriched_p AS SELECT o.cid, o.amt, c.name, o.ROWTIME AS order_ts, c.ROWTIME AS customer_ts, o.ROWPARTITION AS p, \
         o.ROWOFFSET AS off FROM orders_p o JOIN customers_p c ON o.cid = c.id;",
    )
    .await;
    s.ksql_ok(
        "CREATE STREAM shipped_p AS SELECT o.id, o.ROWTIME AS ordered, sh.ROWTIME AS shipped, sh.ROWTIME - o.ROWTIME AS took \
         FROM orders_p o JOIN shipments_p sh WITHIN 1 HOUR ON o.id = sh.oid;",
    )
    .await;
    s.ksql_ok("INSERT INTO customers_p (ROWTIME, id, name) VALUES (1000, 7, 'ann');").await;
    s.ksql_ok("INSERT INTO orders_p (ROWTIME, id, cid, amt) VALUES (4000, 1, 99, 10);").await;
    s.ksql_ok("INSERT INTO orders_p (ROWTIME, id, cid, amt) VALUES (5000, 2, 7, 30);").await;
    s.ksql_ok("INSERT INTO shipments_p (ROWTIME, id, oid) VALUES (9000, 50, 2);").await;
    let enriched = s.wait_rows("SELECT * FROM enriched_p EMIT CHANGES LIMIT 1;", 1).await;
    assert_eq!(enriched, vec![vec![json!(7), json!(30), json!("ann"), json!(5000), json!(1000), json!(0), json!(1)]]);
    let shipped = s.wait_rows("SELECT * FROM shipped_p EMIT CHANGES LIMIT 1;", 1).await;
    assert_eq!(shipped, vec![vec![json!(2), json!(5000), json!(9000), json!(4000)]]);
    // SELECT * leaves pseudo columns out, as for a single source.
    s.ksql_ok("CREATE STREAM everything_p AS SELECT * FROM orders_p o JOIN customers_p c ON o.cid = c.id;").await;
    let described = s.ksql_ok("DESCRIBE everything_p;").await;
    let names: Vec<String> =
        described[0]["sourceDescription"]["fields"].as_array().expect("fields").iter().map(|f| f["name"].as_str().unwrap_or_default().to_string()).collect();
    assert_eq!(names, vec!["O_CID", "O_ID", "O_AMT", "C_ID", "C_NAME"]);
}

#[tokio::test]
async fn aggregations_over_joins_read_the_materialized_join_and_survive_a_restart() {
    let mut s = TestServer::start();
    s.ksql_ok("CREATE STREAM orders_a (id INT KEY, cid INT, amt INT) WITH (kafka_topic='orders_a', value_format='JSON', partitions=1);").await;
    s.ksql_ok("CREATE TABLE customers_a (id INT PRIMARY KEY, name STRING) WITH (kafka_topic='customers_a', value_format='JSON', partitions=1);").await;
    let created = s
        .ksql_ok(
            "CREATE TABLE spend AS SELECT c.name, COUNT(*) AS orders, SUM(o.amt) AS total FROM orders_a o JOIN customers_a c ON o.cid = c.id GROUP BY c.name;",
        )
        .await;
    let warning = created[0]["warnings"][0]["message"].as_str().unwrap_or_default().to_string();
    assert!(warning.contains("SPEND__JOIN"), "{created}");
    s.ksql_ok("INSERT INTO customers_a (id, name) VALUES (7, 'ann'); INSERT INTO customers_a (id, name) VALUES (8, 'bob');").await;
    s.ksql_ok(
        "INSERT INTO orders_a (id, cid, amt) VALUES (1, 7, 10); INSERT INTO orders_a (id, cid, amt) VALUES (2, 7, 5); INSERT INTO \
        orders_a (id, cid, amt) VALUES (3, 8, 1);",
    )
    .await;
    s.wait_until("both customers' totals", async |s| s.rows("SELECT * FROM spend;").await.len() == 2).await;
    s.wait_until("ann's two orders", async |s| s.rows("SELECT * FROM spend WHERE name = 'ann';").await == vec![vec![json!("ann"), json!(2), json!(15)]]).await;
    let described = s.ksql_ok("DESCRIBE spend;").await;
    let names: Vec<&str> = described[0]["sourceDescription"]["fields"].as_array().expect("fields").iter().filter_map(|f| f["name"].as_str()).collect();
    assert_eq!(names, vec!["NAME", "ORDERS", "TOTAL"], "columns keep the names they have in the join's sources");

    s.stop();
    s.restart();
    s.ksql_ok("INSERT INTO orders_a (id, cid, amt) VALUES (4, 8, 4);").await;
    s.wait_until("bob's second order after the restart", async |s| {
        s.rows("SELECT * FROM spend WHERE name = 'bob';").await == vec![vec![json!("bob"), json!(2), json!(5)]]
    })
    .await;

    // The materialized join cannot be dropped while the aggregation reads it.
    let (status, body) = s.ksql("DROP STREAM SPEND__JOIN;").await;
    assert_eq!(status, 400, "{body}");
    // A refused aggregation leaves no materialized join behind.
    let (status, body) = s.ksql("CREATE TABLE broken AS SELECT c.nope, COUNT(*) FROM orders_a o JOIN customers_a c ON o.cid = c.id GROUP BY c.nope;").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("C.NOPE cannot be resolved"), "{body}");
    let streams = s.ksql_ok("SHOW STREAMS;").await;
    assert!(!common::user_streams(&streams).iter().any(|n| n == "BROKEN__JOIN"), "{streams}");
}

#[tokio::test]
async fn header_columns_travel_through_joins_and_table_lookups() {
    let s = TestServer::start();
    s.ksql_ok(
        "CREATE STREAM hs_s (id INT KEY, x INT, hs ARRAY<STRUCT<key STRING, value BYTES>> HEADERS, h BYTES HEADER('k')) \
         WITH (kafka_topic='hs_s', partitions=1, format='JSON');",
    )
    .await;
    s.ksql_ok("CREATE TABLE hs_t (id INT PRIMARY KEY, y INT, th BYTES HEADER('k')) WITH (kafka_topic='hs_t', partitions=1, format='JSON');").await;
    s.post("/topics/hs_t/records", json!({"records": [{"key": 1, "value": {"Y": 7}, "headers": [{"key": "k", "value": "th"}]}]})).await;
    s.wait_rows("SELECT * FROM hs_t WHERE id = 1;", 1).await;
    s.post("/topics/hs_s/records", json!({"records": [{"key": 1, "value": {"X": 5}, "headers": [{"key": "k", "value": "hi"}]}]})).await;
    let joined = s.wait_rows("SELECT s.id, s.h, s.hs, t.th, t.y FROM hs_s s JOIN hs_t t ON s.id = t.id EMIT CHANGES LIMIT 1;", 1).await;
    // BYTES are base64 in JSON: "hi" is aGk=, "th" is dGg=.
    assert_eq!(joined, vec![vec![json!(1), json!("aGk="), json!([{"KEY": "k", "VALUE": "aGk="}]), json!("dGg="), json!(7)]]);
    let pulled = s.wait_rows("SELECT th FROM hs_t WHERE id = 1;", 1).await;
    assert_eq!(pulled, vec![vec![json!("dGg=")]]);
}

#[tokio::test]
async fn push_queries_aggregate_joins_windowed_or_not_and_leave_nothing_behind() {
    let s = TestServer::start();
    s.ksql_ok("CREATE STREAM orders_p (id INT KEY, cid INT, amt INT) WITH (kafka_topic='orders_p', value_format='JSON', partitions=2);").await;
    s.ksql_ok("CREATE TABLE customers_p (id INT PRIMARY KEY, region STRING) WITH (kafka_topic='customers_p', value_format='JSON', partitions=2);").await;
    s.ksql_ok(
        "INSERT INTO customers_p (ROWTIME, id, region) VALUES (0, 7, 'eu'); INSERT INTO customers_p (ROWTIME, id, region) VALUES (0, 8, 'us'); \
         INSERT INTO orders_p (ROWTIME, id, cid, amt) VALUES (1000, 1, 7, 10); INSERT INTO orders_p (ROWTIME, id, cid, amt) VALUES (2000, 2, 8, 1); \
         INSERT INTO orders_p (ROWTIME, id, cid, amt) VALUES (3700000, 3, 7, 5);",
    )
    .await;
    let rows = |out: &[Value]| -> Vec<Value> { out.iter().filter_map(|e| e.get("row")).map(|r| r["columns"].clone()).collect() };

    // Grouped by a column of the table side, with the stream side's values summed.
    let out = s
        .query("SELECT c.region, COUNT(*) AS n, SUM(o.amt) AS total FROM orders_p o JOIN customers_p c ON o.cid = c.id GROUP BY c.region EMIT CHANGES LIMIT 3;")
        .await;
    assert_eq!(out[0]["header"]["schema"], "`REGION` STRING, `N` BIGINT, `TOTAL` INTEGER", "{out:?}");
    let mut got = rows(&out);
    got.sort_by_key(|r| r.to_string());
    // The two eu orders are in different partitions: either may be counted first.
    assert!(got[0] == json!(["eu", 1, 10]) || got[0] == json!(["eu", 1, 5]), "{got:?}");
    assert_eq!(got[1..], [json!(["eu", 2, 15]), json!(["us", 1, 1])]);
    assert_eq!(out.last(), Some(&json!({"finalMessage": "Limit Reached"})));

    // Windowed: one-hour tumbling windows of the joined rows.
    let out = s
        .query(
            "SELECT o.cid, WINDOWSTART AS ws, COUNT(*) AS n FROM orders_p o JOIN customers_p c ON o.cid = c.id WINDOW TUMBLING (SIZE 1 HOUR) \
             GROUP BY o.cid EMIT CHANGES LIMIT 3;",
        )
        .await;
    let mut got = rows(&out);
    got.sort_by_key(|r| r.to_string());
    assert_eq!(got, vec![json!([7, 0, 1]), json!([7, 3_600_000, 1]), json!([8, 0, 1])], "{out:?}");

    // The private join and aggregation go when the queries end.
    s.wait_until("the push queries' internal topics are removed", async |s| {
        let (_, topics) = s.get("/topics").await;
        !topics["topics"].as_array().cloned().unwrap_or_default().iter().any(|t| t["name"].as_str().is_some_and(|n| n.to_lowercase().contains("transient_agg")))
    })
    .await;
}

#[tokio::test]
async fn sides_with_different_key_formats_join_through_a_rekeyed_right_side() {
    let s = TestServer::start();
    s.ksql_ok("CREATE TABLE kt (id INT PRIMARY KEY, val STRING) WITH (kafka_topic='kt', key_format='KAFKA', value_format='JSON', partitions=1);").await;
    s.ksql_ok("CREATE STREAM ks (id INT KEY, foo INT) WITH (kafka_topic='ks', key_format='DELIMITED', value_format='JSON', partitions=1);").await;
    s.ksql_ok("CREATE TABLE kt2 (id INT PRIMARY KEY, foo INT) WITH (kafka_topic='kt2', key_format='DELIMITED', value_format='JSON', partitions=1);").await;
    s.ksql_ok("CREATE STREAM enriched AS SELECT ks.id, val FROM ks JOIN kt ON ks.id = kt.id;").await;
    s.ksql_ok("CREATE TABLE both_t AS SELECT * FROM kt JOIN kt2 ON kt.id = kt2.id;").await;
    s.ksql_ok(
        "INSERT INTO kt (ROWTIME, id, val) VALUES (0, 10, 'hello'); INSERT INTO kt2 (ROWTIME, id, foo) VALUES (1, 10, 1); \
         INSERT INTO ks (ROWTIME, id, foo) VALUES (1000, 10, 1);",
    )
    .await;
    // The result keeps the left side's key format: DELIMITED text for the stream, KAFKA
    // (a 4-byte INT) for the table.
    wait_records(&s, "ENRICHED", 1).await;
    let enriched = s.read_topic("ENRICHED").await;
    assert_eq!((enriched[0].1["key"].clone(), enriched[0].1["value"].clone()), (json!("10"), json!({"VAL": "hello"})), "{enriched:?}");
    s.wait_until("the table-table join's row", async |s| s.rows("SELECT * FROM both_t;").await == vec![vec![json!(10), json!("hello"), json!(10), json!(1)]])
        .await;
    let described = s.ksql_ok("DESCRIBE both_t;").await;
    assert_eq!(described[0]["sourceDescription"]["keyFormat"], "KAFKA", "{described}");
}

#[tokio::test]
async fn foreign_key_joins_from_a_table_with_a_composite_primary_key_are_keyed_by_all_of_it() {
    let s = TestServer::start();
    s.ksql_ok(
        "CREATE TABLE lines (order_id INT PRIMARY KEY, line INT PRIMARY KEY, product INT, qty INT) WITH (kafka_topic='lines', format='JSON', \
         partitions=1);",
    )
    .await;
    s.ksql_ok("CREATE TABLE products (id INT PRIMARY KEY, name STRING) WITH (kafka_topic='products', format='JSON', partitions=1);").await;
    // The result's key is the left table's whole primary key: each column must be selected.
    let (status, body) = s.ksql("CREATE TABLE partial AS SELECT order_id, name FROM lines JOIN products ON product = id;").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap_or_default().contains("Primary key column missing in projection")
            && body["message"].as_str().unwrap_or_default().contains("Missing column: `LINE`."),
        "{body}"
    );
    let (status, body) = s.ksql("CREATE TABLE none_t AS SELECT name FROM lines LEFT JOIN products ON product = id;").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("Missing columns: `ORDER_ID`, `LINE`."), "{body}");

    s.ksql_ok("CREATE TABLE named_lines AS SELECT order_id, line, name, qty FROM lines JOIN products ON product = id;").await;
    s.ksql_ok(
        "INSERT INTO products (id, name) VALUES (7, 'pen'); INSERT INTO lines (order_id, line, product, qty) VALUES (1, 1, 7, 2); \
         INSERT INTO lines (order_id, line, product, qty) VALUES (1, 2, 7, 5);",
    )
    .await;
    s.wait_until("both lines joined", async |s| s.rows("SELECT * FROM named_lines;").await.len() == 2).await;
    let mut rows = s.rows("SELECT * FROM named_lines;").await;
    rows.sort_by_key(|r| r[1].as_i64());
    assert_eq!(rows, vec![vec![json!(1), json!(1), json!("pen"), json!(2)], vec![json!(1), json!(2), json!("pen"), json!(5)]]);
    // A change on the right reaches every left row that points at it.
    s.ksql_ok("INSERT INTO products (id, name) VALUES (7, 'quill');").await;
    s.wait_until("both lines renamed", async |s| s.rows("SELECT name FROM named_lines;").await == vec![vec![json!("quill")], vec![json!("quill")]]).await;
    let described = s.ksql_ok("DESCRIBE named_lines;").await;
    let keys: Vec<&str> =
        described[0]["sourceDescription"]["fields"].as_array().unwrap().iter().filter(|f| f["type"] == "KEY").filter_map(|f| f["name"].as_str()).collect();
    assert_eq!(keys, vec!["ORDER_ID", "LINE"], "{described}");
}

#[tokio::test]
async fn windowed_sources_join_row_for_row_within_one_window_and_the_result_keeps_it() {
    let s = TestServer::start();
    for side in ["a", "b"] {
        s.ksql_ok(&format!("CREATE STREAM {side}_clicks (page VARCHAR KEY, n INT) WITH (kafka_topic='{side}_clicks', value_format='JSON', partitions=1);"))
            .await;
        s.ksql_ok(&format!("CREATE TABLE {side}_per_second AS SELECT page, COUNT(*) AS c FROM {side}_clicks WINDOW TUMBLING (SIZE 1 SECOND) GROUP BY page;"))
            .await;
        // The aggregate's topic read back as a windowed stream.
        s.ksql_ok(&format!(
            "CREATE STREAM {side}_counts (page VARCHAR KEY, c BIGINT) WITH (kafka_topic='{}_PER_SECOND', value_format='JSON', \
             window_type='Tumbling', window_size='1 second');",
            side.to_uppercase()
        ))
        .await;
    }
    s.ksql_ok("CREATE STREAM both_counts AS SELECT * FROM a_counts JOIN b_counts WITHIN 1 MINUTE ON a_counts.page = b_counts.page;").await;
    // `home` has a click in each of the windows [1000, 2000), [2000, 3000) and [5000, 6000)
    // on both sides.
    for (side, times) in [("a_clicks", [1500, 2500, 5500]), ("b_clicks", [1600, 2600, 5600])] {
        s.produce(side, times.iter().map(|t| json!({"key": "home", "value": {"n": 1}, "timestamp": t})).collect()).await;
    }
    let out = s.query("SELECT * FROM both_counts EMIT CHANGES LIMIT 1;").await;
    assert_eq!(
        out[0]["header"]["schema"],
        "`A_COUNTS_PAGE` STRING, `WINDOWSTART` BIGINT, `WINDOWEND` BIGINT, `A_COUNTS_WINDOWSTART` BIGINT, `A_COUNTS_WINDOWEND` BIGINT, \
         `A_COUNTS_C` BIGINT, `B_COUNTS_PAGE` STRING, `B_COUNTS_WINDOWSTART` BIGINT, `B_COUNTS_WINDOWEND` BIGINT, `B_COUNTS_C` BIGINT",
        "{out:?}"
    );
    assert_eq!(out[1]["row"]["columns"], json!(["home", 1000, 2000, 1000, 2000, 1, "home", 1000, 2000, 1]), "{out:?}");
    // Only rows of the same window join, though every row is within a minute of every
    // other: once the last window's row is out, there is one row per window.
    s.query("SELECT * FROM both_counts WHERE WINDOWSTART = 5000 EMIT CHANGES LIMIT 1;").await;
    let written = s.read_topic("BOTH_COUNTS").await;
    let windows: Vec<Value> = written.iter().map(|(_, r)| r["value"]["A_COUNTS_WINDOWSTART"].clone()).collect();
    assert_eq!(windows, vec![json!(1000), json!(2000), json!(5000)], "{written:?}");
}

#[tokio::test]
async fn foreign_key_joins_chain_after_another_join_and_follow_every_table() {
    let s = TestServer::start();
    s.ksql_ok("CREATE TABLE accounts (id STRING PRIMARY KEY, plan STRING) WITH (kafka_topic='accounts', value_format='JSON', partitions=1);").await;
    s.ksql_ok("CREATE TABLE usage_t (id STRING PRIMARY KEY, calls INT) WITH (kafka_topic='usage_t', value_format='JSON', partitions=1);").await;
    s.ksql_ok("CREATE TABLE plans (id STRING PRIMARY KEY, price INT) WITH (kafka_topic='plans', value_format='JSON', partitions=1);").await;
    // accounts JOIN usage on the key, then the plan each account points at.
    s.ksql_ok("CREATE TABLE bills AS SELECT a.id, u.calls, p.price FROM accounts a JOIN usage_t u ON a.id = u.id JOIN plans p ON a.plan = p.id;").await;
    s.ksql_ok(
        "INSERT INTO plans (id, price) VALUES ('basic', 10); INSERT INTO usage_t (id, calls) VALUES ('x', 1); \
         INSERT INTO usage_t (id, calls) VALUES ('y', 2); INSERT INTO accounts (id, plan) VALUES ('x', 'basic'); \
         INSERT INTO accounts (id, plan) VALUES ('y', 'basic');",
    )
    .await;
    let bills = async |s: &TestServer| {
        let mut r = s.rows("SELECT * FROM bills;").await;
        r.sort_by_key(|row| row[0].to_string());
        r
    };
    s.wait_until("both bills", async |s| bills(s).await == vec![vec![json!("x"), json!(1), json!(10)], vec![json!("y"), json!(2), json!(10)]]).await;
    // A change of the plan reaches every account on it; moving an account to a plan that
    // does not exist yet removes its bill until the plan appears; a usage row deleted
    // removes its bill.
    s.ksql_ok("INSERT INTO plans (id, price) VALUES ('basic', 12);").await;
    s.wait_until("the new price on both bills", async |s| bills(s).await == vec![vec![json!("x"), json!(1), json!(12)], vec![json!("y"), json!(2), json!(12)]])
        .await;
    s.ksql_ok("INSERT INTO accounts (id, plan) VALUES ('x', 'pro');").await;
    s.wait_until("x without a plan", async |s| bills(s).await == vec![vec![json!("y"), json!(2), json!(12)]]).await;
    s.ksql_ok("INSERT INTO plans (id, price) VALUES ('pro', 50);").await;
    s.wait_until("x on pro", async |s| bills(s).await == vec![vec![json!("x"), json!(1), json!(50)], vec![json!("y"), json!(2), json!(12)]]).await;
    s.produce("usage_t", vec![json!({"key": "y", "value": null})]).await;
    s.wait_until("y's bill gone", async |s| bills(s).await == vec![vec![json!("x"), json!(1), json!(50)]]).await;
    let described = s.ksql_ok("DESCRIBE bills;").await;
    assert_eq!(described[0]["sourceDescription"]["fields"][0]["name"], "A_ID", "the result is keyed by the inner join's key: {described}");
}
