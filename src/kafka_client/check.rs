//! `eddy kafka-check BOOTSTRAP`: whether a Kafka cluster does what Eddy needs of it, step by
//! step, on a topic of its own that it deletes at the end: reaching the brokers, creating a
//! topic, appending and reading record batches, offsets by time, an idempotent producer's
//! sequence as the broker remembers it (how a restarted Eddy query knows what it already
//! wrote), consumer-group membership with committed offsets, and transactions (a committed and an aborted one, read
//! committed). Run it against any broker (Apache Kafka, Redpanda, tansu, another Eddy)
//! before pointing Eddy servers at it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::groups::GroupMember;
use super::transactions::TransactionalProducer;
use super::{ClientError, Isolation, KafkaClient};

/// How many steps a full check has.
pub const STEPS: usize = 8;

/// One step's outcome: what was checked, and what was seen or why it failed.
#[derive(Debug)]
pub struct Step {
    pub name: &'static str,
    pub outcome: Result<String, String>,
}

fn batch(values: &[&str]) -> Bytes {
    let mut b = crate::log::BatchBuilder::new(None);
    for v in values {
        b.push(0, None, Some(v.as_bytes()), &[]);
    }
    Bytes::from(b.finish())
}

fn values(batches: &[&[u8]]) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        for r in crate::log::RecordIter::new(b).into_iter().flatten().flatten() {
            out.push(String::from_utf8_lossy(r.value.unwrap_or_default()).into_owned());
        }
    }
    out
}

fn expect(what: &str, seen: Vec<String>, wanted: &[&str]) -> Result<String, ClientError> {
    if seen == wanted { Ok(format!("{what}: {seen:?}")) } else { Err(ClientError::protocol("check", format!("{what}: expected {wanted:?}, read {seen:?}"))) }
}

/// Runs every step in order (a step that needs an earlier one's work is skipped when that
/// failed).
pub async fn run(bootstrap: &str, timeout: Duration, security: super::security::ClientSecurity) -> Vec<Step> {
    let mut steps = Vec::new();
    let client = match KafkaClient::connect_securely(bootstrap, "eddy-kafka-check", timeout, security).await {
        Ok(c) => Arc::new(c),
        Err(e) => {
            steps.push(Step { name: "reach the cluster", outcome: Err(e.to_string()) });
            return steps;
        }
    };
    let brokers: Vec<String> = client.brokers().into_iter().map(|(id, a)| format!("{id}@{a}")).collect();
    steps.push(Step { name: "reach the cluster", outcome: Ok(format!("brokers {}", brokers.join(", "))) });
    let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let topic = format!("eddy-kafka-check-{millis}");
    let created = client.create_topic(&topic, 2, -1, &[]).await;
    let ok = created.is_ok();
    steps.push(Step { name: "create a topic", outcome: created.map(|()| format!("{topic}, 2 partitions")).map_err(|e| e.to_string()) });
    if !ok {
        return steps;
    }
    let t = topic.as_str();
    let step = async {
        let first = client.produce(t, 0, batch(&["a", "b"]), -1).await?;
        let second = client.produce(t, 0, batch(&["c"]), -1).await?;
        let fetched = client.fetch(t, 0, 0, 1 << 20, Isolation::ReadCommitted).await?;
        expect(&format!("batches at offsets {first} and {second}"), values(&fetched.visible_batches()), &["a", "b", "c"])
    };
    steps.push(Step { name: "append and read record batches", outcome: step.await.map_err(|e| e.to_string()) });
    let step = async {
        let (start, end) = (client.list_offset(t, 0, -2).await?, client.list_offset(t, 0, -1).await?);
        if (start, end) == (Some(0), Some(3)) {
            Ok(format!("start {start:?}, end {end:?}"))
        } else {
            Err(ClientError::protocol("check", format!("expected offsets 0..3, the broker says {start:?}..{end:?}")))
        }
    };
    steps.push(Step { name: "look up offsets", outcome: step.await.map_err(|e| e.to_string()) });
    let step = async {
        // A producer id of the range Eddy's queries use, with sequences 0 and 1.
        let producer_id = (1i64 << 61) | (millis as i64 & 0xffff_ffff);
        let mut b = crate::log::BatchBuilder::new(Some(crate::log::batch::ProducerStamp { producer_id, producer_epoch: 0, base_sequence: 0 }));
        b.push(0, None, Some(b"x"), &[]);
        b.push(0, None, Some(b"y"), &[]);
        client.produce(t, 0, Bytes::from(b.finish()), -1).await?;
        match client.producer_sequence(t, 0, producer_id).await? {
            Some((0, 1)) => Ok("epoch 0, last sequence 1".to_string()),
            other => Err(ClientError::protocol("check", format!("expected epoch 0 and last sequence 1, the broker says {other:?}"))),
        }
    };
    steps.push(Step { name: "describe an idempotent producer", outcome: step.await.map_err(|e| e.to_string()) });
    let group = format!("{topic}-group");
    let step = async {
        let member = GroupMember::join(client.clone(), &group, &[t], timeout).await?;
        let held = member.assignment().get(t).cloned().unwrap_or_default();
        member.commit(&[(t, 0, 2)]).await?;
        let committed = member.committed(t, &[0, 1]).await?;
        member.leave().await?;
        if held == [0, 1] && committed == [(0, Some(2)), (1, None)] {
            Ok(format!("member held {held:?}, committed {committed:?}"))
        } else {
            Err(ClientError::protocol("check", format!("member held {held:?} (expected [0, 1]), committed {committed:?}")))
        }
    };
    steps.push(Step { name: "join a consumer group", outcome: step.await.map_err(|e| e.to_string()) });
    let step = async {
        let mut producer = TransactionalProducer::init(client.clone(), &format!("{topic}-txn"), 60_000).await?;
        producer.send(t, 1, &[(None, Some(b"committed"), 0)]).await?;
        producer.commit().await?;
        producer.send(t, 1, &[(None, Some(b"aborted"), 0)]).await?;
        producer.abort().await?;
        let fetched = client.fetch(t, 1, 0, 1 << 20, Isolation::ReadCommitted).await?;
        expect("read committed", values(&fetched.visible_batches()), &["committed"])
    };
    steps.push(Step { name: "run transactions", outcome: step.await.map_err(|e| e.to_string()) });
    steps.push(Step { name: "delete the topic", outcome: client.delete_topic(t).await.map(|()| topic.clone()).map_err(|e| e.to_string()) });
    steps
}
