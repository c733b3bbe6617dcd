//! Generated records into topics over the Kafka protocol: the topic is created when missing,
//! records go to the partition Kafka's Java client would pick for their key (murmur2), in
//! record batches of up to 256 KiB, with up to 8 produce requests in flight.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::task::JoinSet;

use super::progress::{Pace, Progress};
use super::row::{Row, encode_key, encode_value};
use super::{DatagenArgs, DatagenError, Summary, generator, interrupted, topic_for};
use crate::kafka_client::{ClientError, KafkaClient};
use crate::log::batch::{BatchBuilder, Compression};
use crate::log::murmur2::partition_for_key;

const BATCH_BYTES: usize = 256 * 1024;
const IN_FLIGHT: usize = 8;
/// With a rate, batches wait at most this long before they are sent.
const LINGER: Duration = Duration::from_millis(50);

struct Destination {
    topic: String,
    builders: Vec<BatchBuilder>,
    records: u64,
}

pub(super) async fn run(a: &DatagenArgs, topic: &str) -> Result<Summary, DatagenError> {
    let kafka = |source: ClientError| DatagenError::Kafka { bootstrap: a.bootstrap.clone(), source };
    let client = Arc::new(KafkaClient::connect(&a.bootstrap, "eddy-datagen", Duration::from_secs(30)).await.map_err(kafka)?);
    let mut g = generator(a);
    let schemas = g.schemas();
    let mut destinations = Vec::new();
    for s in 0..schemas.len() {
        let name = topic_for(topic, schemas, s);
        let partitions = match client.partitions(&name).await {
            Ok(n) => n,
            Err(ClientError::UnknownTopic(_)) => {
                client.create_topic(&name, a.partitions.max(1), -1, &[]).await.map_err(kafka)?;
                client.partitions(&name).await.map_err(kafka)?
            }
            Err(e) => return Err(kafka(e)),
        };
        destinations.push(Destination { topic: name, builders: (0..partitions).map(|_| BatchBuilder::new(None)).collect(), records: 0 });
    }
    super::ctrlc_watch();
    let mut progress = Progress::new(a.count, a.quiet);
    let pace = a.rate.map(|r| Pace::new(Instant::now(), r));
    let mut in_flight: JoinSet<Result<(), ClientError>> = JoinSet::new();
    let mut row = Row::with_fields(1);
    let (mut key, mut value) = (Vec::with_capacity(64), Vec::with_capacity(1024));
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut last_send = Instant::now();
    while a.count.is_none_or(|c| records < c) && !interrupted().load(std::sync::atomic::Ordering::Relaxed) {
        if let Some(p) = &pace
            && records.is_multiple_of(p.check_every())
        {
            if last_send.elapsed() >= LINGER {
                send_all(&client, &mut destinations, &mut in_flight).await.map_err(kafka)?;
                last_send = Instant::now();
            }
            if let Some(wait) = p.wait_before(records, Instant::now()) {
                tokio::time::sleep(wait.min(LINGER)).await;
                continue;
            }
        }
        g.next(&mut row);
        key.clear();
        value.clear();
        let schema = &schemas[row.stream];
        encode_key(schema, &row, a.key_format, &mut key);
        encode_value(schema, &row, a.value_format, &mut value);
        let d = &mut destinations[row.stream];
        let p = partition_for_key(&key, d.builders.len() as i32) as usize;
        d.builders[p].push(row.timestamp, Some(&key), Some(&value), &[]);
        d.records += 1;
        records += 1;
        bytes += (key.len() + value.len()) as u64;
        if d.builders[p].size_bytes() >= BATCH_BYTES {
            let batch = std::mem::replace(&mut d.builders[p], BatchBuilder::new(None));
            send(&client, &d.topic, p as i32, batch, &mut in_flight).await.map_err(kafka)?;
        }
        if records.is_multiple_of(4096) {
            progress.update(records, bytes);
        }
    }
    send_all(&client, &mut destinations, &mut in_flight).await.map_err(kafka)?;
    while let Some(done) = in_flight.join_next().await {
        done.map_err(|e| DatagenError::Runtime(std::io::Error::other(e)))?.map_err(kafka)?;
    }
    let names: Vec<(String, u64)> = destinations.iter().map(|d| (d.topic.clone(), d.records)).collect();
    let to = match names.len() {
        1 => format!("topic {} at {}", names[0].0, a.bootstrap),
        n => format!("{n} topics at {}", a.bootstrap),
    };
    let text = progress.finish(records, bytes, &to, &names);
    Ok(Summary { records, bytes, per_stream: names, text })
}

/// Sends every partition's waiting batch.
async fn send_all(client: &Arc<KafkaClient>, destinations: &mut [Destination], in_flight: &mut JoinSet<Result<(), ClientError>>) -> Result<(), ClientError> {
    for d in destinations {
        for p in 0..d.builders.len() {
            if !d.builders[p].is_empty() {
                let batch = std::mem::replace(&mut d.builders[p], BatchBuilder::new(None));
                send(client, &d.topic, p as i32, batch, in_flight).await?;
            }
        }
    }
    Ok(())
}

/// Starts a produce request, first waiting for one to finish when enough are in flight.
async fn send(
    client: &Arc<KafkaClient>,
    topic: &str,
    partition: i32,
    batch: BatchBuilder,
    in_flight: &mut JoinSet<Result<(), ClientError>>,
) -> Result<(), ClientError> {
    while in_flight.len() >= IN_FLIGHT {
        if let Some(done) = in_flight.join_next().await {
            done.map_err(|e| ClientError::Protocol { api: "Produce".into(), detail: e.to_string() })??;
        }
    }
    let bytes = Bytes::from(batch.finish_compressed(Compression::Lz4).map_err(|e| ClientError::Protocol { api: "Produce".into(), detail: e.to_string() })?);
    let client = client.clone();
    let topic = topic.to_string();
    in_flight.spawn(async move { client.produce(&topic, partition, bytes, 1).await.map(|_| ()) });
    Ok(())
}
