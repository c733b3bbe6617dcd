//! Eddy's own Kafka client (the base of running on an existing Kafka cluster) against a
//! real Kafka-protocol broker: another Eddy's Kafka listener on loopback.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::TestServer;
use eddy::kafka_client::{ClientError, Isolation, KafkaClient};

fn batch(values: &[&str]) -> Bytes {
    let mut b = eddy::log::BatchBuilder::new(None);
    for v in values {
        b.push(1_000, Some(b"k"), Some(v.as_bytes()), &[]);
    }
    Bytes::from(b.finish())
}

/// The values of the records a fetch lets a reader see.
fn values(fetched: &eddy::kafka_client::FetchedPartition) -> Vec<String> {
    let mut out = Vec::new();
    for batch in fetched.visible_batches() {
        for r in eddy::log::RecordIter::new(batch).expect("a batch") {
            out.push(String::from_utf8_lossy(r.expect("a record").value.unwrap_or_default()).into_owned());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn topics_are_created_written_and_read_through_the_wire_protocol() {
    let s = TestServer::start();
    let client = KafkaClient::connect(&s.kafka, "eddy-test", Duration::from_secs(10)).await.expect("connects");
    assert_eq!(client.brokers().len(), 1, "one broker: {:?}", client.brokers());
    client.create_topic("orders", 3, -1, &[("cleanup.policy", "compact")]).await.expect("creates");
    assert_eq!(client.partitions("orders").await.expect("known"), 3);
    // The topic is the broker's: SQL on that server sees it.
    let (_, topics) = s.ksql("SHOW TOPICS;").await;
    assert!(topics.to_string().contains("\"orders\""), "{topics}");

    assert_eq!(client.produce("orders", 1, batch(&["a", "b"]), -1).await.expect("appends"), 0);
    assert_eq!(client.produce("orders", 1, batch(&["c"]), -1).await.expect("appends"), 2);
    let fetched = client.fetch("orders", 1, 0, 1 << 20, Isolation::ReadCommitted).await.expect("fetches");
    assert_eq!(values(&fetched), vec!["a", "b", "c"]);
    assert_eq!((fetched.high_watermark, fetched.log_start_offset), (3, 0));
    let from_two = client.fetch("orders", 1, 2, 1 << 20, Isolation::ReadUncommitted).await.expect("fetches");
    assert_eq!(values(&from_two), vec!["c"]);
    assert_eq!(client.list_offset("orders", 1, -1).await.expect("end"), Some(3));
    assert_eq!(client.list_offset("orders", 1, -2).await.expect("start"), Some(0));
    assert_eq!(client.list_offset("orders", 0, -1).await.expect("empty partition"), Some(0));

    client.delete_topic("orders").await.expect("deletes");
    assert!(matches!(client.partitions("orders").await, Err(ClientError::UnknownTopic(_))));
}

#[tokio::test(flavor = "multi_thread")]
async fn mistakes_and_unreachable_brokers_are_named_errors() {
    let s = TestServer::start();
    let client = KafkaClient::connect(&s.kafka, "eddy-test", Duration::from_secs(10)).await.expect("connects");
    client.create_topic("t", 1, -1, &[]).await.expect("creates");
    let err = client.create_topic("t", 1, -1, &[]).await.expect_err("exists");
    assert_eq!(err.response_error(), Some(kafka_protocol::ResponseError::TopicAlreadyExists), "{err}");
    assert!(err.to_string().contains("TopicAlreadyExists"), "{err}");
    let err = client.produce("t", 5, batch(&["x"]), 1).await.expect_err("no partition 5");
    assert!(matches!(err, ClientError::NoPartition { partition: 5, count: 1, .. }), "{err}");
    let err = client.produce("t", 0, Bytes::from_static(b"not a record batch"), 1).await.expect_err("garbage");
    assert!(matches!(err, ClientError::Broker { .. }), "{err}");
    // The connection is still good after the refusal.
    assert_eq!(client.produce("t", 0, batch(&["y"]), 1).await.expect("appends"), 0);
    let err = client.fetch("missing", 0, 0, 1024, Isolation::ReadUncommitted).await.expect_err("no topic");
    assert!(matches!(err, ClientError::UnknownTopic(ref t) if t == "missing"), "{err}");

    // A port nobody listens on: the error names the bootstrap list.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let err = KafkaClient::connect(&closed.to_string(), "eddy-test", Duration::from_secs(2)).await.err().expect("nobody listens");
    assert!(matches!(err, ClientError::NoBroker { .. }), "{err}");
    assert!(err.to_string().contains(&closed.to_string()), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn group_members_split_partitions_rebalance_and_keep_committed_offsets() {
    use eddy::kafka_client::groups::{GroupMember, Heartbeat};
    use std::sync::Arc;
    let s = TestServer::start();
    let client = Arc::new(KafkaClient::connect(&s.kafka, "eddy-test", Duration::from_secs(30)).await.expect("connects"));
    client.create_topic("events", 4, -1, &[]).await.expect("creates");
    let session = Duration::from_secs(10);
    let mut first = GroupMember::join(client.clone(), "eddy-app", &["events"], session).await.expect("joins");
    assert_eq!(first.assignment().get("events"), Some(&vec![0, 1, 2, 3]), "alone, it holds every partition");
    first.commit(&[("events", 0, 42), ("events", 3, 7)]).await.expect("commits");

    // A second member joins: the first learns of the rebalance by its heartbeat and rejoins.
    // (One client serves both: each member talks to the coordinator on its own connection.)
    let joining = tokio::spawn(GroupMember::join(client.clone(), "eddy-app", &["events"], session));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while first.heartbeat().await.expect("heartbeat") == Heartbeat::Steady {
        assert!(std::time::Instant::now() < deadline, "no rebalance began");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.rejoin().await.expect("rejoins");
    let second = joining.await.expect("task").expect("joins");
    assert_eq!(first.generation(), second.generation());
    let mut held: Vec<i32> = [&first, &second].iter().flat_map(|m| m.assignment().get("events").cloned().unwrap_or_default()).collect();
    held.sort();
    assert_eq!(held, vec![0, 1, 2, 3], "every partition held once");
    assert_eq!(first.assignment().get("events").map(Vec::len), Some(2));

    // Committed offsets belong to the group: the new member sees them.
    let committed = second.committed("events", &[0, 1, 3]).await.expect("fetches");
    assert_eq!(committed, vec![(0, Some(42)), (1, None), (3, Some(7))]);

    // The second leaves: the first takes everything back at its next rejoin.
    second.leave().await.expect("leaves");
    assert_eq!(first.heartbeat().await.expect("heartbeat"), Heartbeat::Rebalance);
    first.rejoin().await.expect("rejoins");
    assert_eq!(first.assignment().get("events"), Some(&vec![0, 1, 2, 3]));
    first.leave().await.expect("leaves");
}

#[tokio::test(flavor = "multi_thread")]
async fn transactions_commit_or_abort_records_with_offsets_and_fence_an_older_producer() {
    use eddy::kafka_client::groups::GroupMember;
    use eddy::kafka_client::transactions::TransactionalProducer;
    use std::sync::Arc;
    let s = TestServer::start();
    let client = Arc::new(KafkaClient::connect(&s.kafka, "eddy-test", Duration::from_secs(30)).await.expect("connects"));
    client.create_topic("in", 1, -1, &[]).await.expect("creates");
    client.create_topic("out", 1, -1, &[]).await.expect("creates");
    let member = GroupMember::join(client.clone(), "eddy-eos", &["in"], Duration::from_secs(10)).await.expect("joins");

    let mut producer = TransactionalProducer::init(client.clone(), "eddy-eos-0", 60_000).await.expect("inits");
    producer.send("out", 0, &[(Some(b"k"), Some(b"kept"), 1)]).await.expect("sends");
    producer.send_offsets(&member, &[("in", 0, 5)]).await.expect("offsets");
    producer.commit().await.expect("commits");
    producer.send("out", 0, &[(Some(b"k"), Some(b"dropped"), 2)]).await.expect("sends");
    producer.abort().await.expect("aborts");

    let committed = client.fetch("out", 0, 0, 1 << 20, Isolation::ReadCommitted).await.expect("fetches");
    assert_eq!(values(&committed), vec!["kept"], "read_committed skips the aborted record");
    let everything = client.fetch("out", 0, 0, 1 << 20, Isolation::ReadUncommitted).await.expect("fetches");
    assert_eq!(values(&everything), vec!["kept", "dropped"], "read_uncommitted sees both (markers are control batches)");
    assert_eq!(member.committed("in", &[0]).await.expect("offsets"), vec![(0, Some(5))], "the offset committed with the transaction");

    // A second producer with the same id fences the first: it cannot write again.
    producer.send("out", 0, &[(None, Some(b"open"), 3)]).await.expect("sends");
    let mut successor = TransactionalProducer::init(client.clone(), "eddy-eos-0", 60_000).await.expect("inits");
    assert!(successor.identity().1 > producer.identity().1, "a new epoch");
    let err = producer.commit().await.expect_err("fenced");
    assert!(err.response_error().is_some(), "{err}");
    successor.send("out", 0, &[(None, Some(b"next"), 4)]).await.expect("sends");
    successor.commit().await.expect("commits");
    let committed = client.fetch("out", 0, 0, 1 << 20, Isolation::ReadCommitted).await.expect("fetches");
    assert_eq!(values(&committed), vec!["kept", "next"], "the fenced producer's open transaction was aborted");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_partition_reads_appends_and_wakes_readers_as_a_local_one_does() {
    use eddy::kafka_client::partition::RemotePartition;
    use eddy::log::PartitionStore;
    use std::sync::Arc;
    let s = TestServer::start();
    let client = Arc::new(KafkaClient::connect(&s.kafka, "eddy-test", Duration::from_secs(10)).await.expect("connects"));
    client.create_topic("clicks", 2, -1, &[]).await.expect("creates");
    let partition = RemotePartition::open(client.clone(), "clicks", 1, tokio::runtime::Handle::current());
    let mut end = partition.subscribe();
    // Appends block their (blocking-pool) thread, as the query runtime's do.
    let p = partition.clone();
    let appended = tokio::task::spawn_blocking(move || p.append(batch(&["a", "b"]).to_vec())).await.expect("task").expect("appends");
    assert_eq!((appended.base_offset, appended.last_offset), (0, 1));
    // The long poll sees the new end and wakes the reader.
    tokio::time::timeout(Duration::from_secs(10), end.wait_for(|e| *e == 2)).await.expect("woken in time").expect("watch");
    assert_eq!(partition.ends().high_watermark, 2);
    let p = partition.clone();
    let read = tokio::task::spawn_blocking(move || p.read_committed(1, 1 << 20)).await.expect("task").expect("reads");
    let records: Vec<i64> = eddy::log::RecordIter::new(&read).expect("a batch").map(|r| r.expect("a record").offset).collect();
    assert_eq!(records, vec![0, 1], "the whole batch holding offset 1, as a local partition reads");
    // Another writer's records wake it too.
    let other = KafkaClient::connect(&s.kafka, "another-writer", Duration::from_secs(10)).await.expect("connects");
    other.produce("clicks", 1, batch(&["c"]), 1).await.expect("appends");
    tokio::time::timeout(Duration::from_secs(10), end.wait_for(|e| *e == 3)).await.expect("woken in time").expect("watch");
    assert_eq!((partition.start_offset(), partition.end_offset(), partition.last_stable_offset()), (0, 3, 3));
    // Reading below the start is the log's out-of-range error, as readers expect.
    let p = partition.clone();
    let err = tokio::task::spawn_blocking(move || p.read_committed(99, 1024)).await.expect("task").expect_err("past the end");
    assert!(matches!(err, eddy::log::LogError::OffsetOutOfRange { start: 0, end: 3, .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_check_passes_on_a_working_broker_and_names_an_unreachable_one() {
    let s = TestServer::start();
    let out = tokio::process::Command::new(common::eddy_bin()).args(["kafka-check", &s.kafka]).output().await.expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(text.lines().filter(|l| l.starts_with("ok ")).count(), eddy::kafka_client::check::STEPS, "{text}");
    assert!(text.contains("every check passed"), "{text}");
    // Its topic is gone afterwards.
    let (_, topics) = s.ksql("SHOW TOPICS;").await;
    assert!(!topics.to_string().contains("eddy-kafka-check"), "{topics}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").to_string();
    let out = tokio::process::Command::new(common::eddy_bin()).args(["kafka-check", &closed, "--timeout-ms", "2000"]).output().await.expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("FAILED  reach the cluster") && text.contains(&closed), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_servers_command_logs_over_one_remote_partition_see_one_order() {
    use eddy::catalog::command_log::{Command, CommandLog};
    use eddy::kafka_client::partition::RemotePartition;
    use std::sync::Arc;
    let s = TestServer::start();
    let client = Arc::new(KafkaClient::connect(&s.kafka, "eddy-test", Duration::from_secs(10)).await.expect("connects"));
    client.create_topic("shared-commands", 1, -1, &[]).await.expect("creates");
    let handle = tokio::runtime::Handle::current();
    // Two "servers", each with its own client and view of the one partition.
    let mut logs = Vec::new();
    for name in ["server-a", "server-b"] {
        let c = Arc::new(KafkaClient::connect(&s.kafka, name, Duration::from_secs(10)).await.expect("connects"));
        logs.push(Arc::new(CommandLog::over(RemotePartition::open(c, "shared-commands", 0, handle.clone()))));
    }
    // Both write at once.
    let writers: Vec<_> = logs
        .iter()
        .enumerate()
        .map(|(i, log)| {
            let log = log.clone();
            tokio::task::spawn_blocking(move || {
                for n in 0..20 {
                    let statement = format!("CREATE STREAM s{i}_{n} (a INT) WITH (kafka_topic='t', value_format='JSON');");
                    let cmd = Command { statement, properties: Default::default(), query_id: None };
                    log.append(&cmd).expect("appends");
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer");
    }
    let read = |log: Arc<CommandLog>| tokio::task::spawn_blocking(move || log.read_all().expect("reads"));
    let (a, b) = (read(logs[0].clone()).await.expect("task"), read(logs[1].clone()).await.expect("task"));
    assert_eq!(a.commands.len(), 40);
    assert_eq!(a.commands, b.commands, "one order of statements for every server");
    let offsets: Vec<i64> = a.commands.iter().map(|(o, _)| *o).collect();
    assert_eq!(offsets, (0..40).collect::<Vec<i64>>());
    // A server starting now replays them all at once (the end is asked of the broker, not
    // left to its first poll).
    let late = Arc::new(CommandLog::over(RemotePartition::open(client.clone(), "shared-commands", 0, handle)));
    assert_eq!(read(late).await.expect("task").commands, a.commands);
}
