//! The Kafka listener at the wire level: malformed input closes only the offending
//! connection, fetches long-poll and return stored batches byte for byte.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use common::TestServer;
use common::kafka_wire::{call, connect, fetch_request, produce_request, receive, send, send_frame};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// True when the server closed the connection (read returns 0 bytes or an error).
fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(s.read(&mut b), Ok(0) | Err(_))
}

fn api_versions_ok(addr: &str) {
    let mut s = connect(addr);
    let r: ApiVersionsResponse = call(&mut s, ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(r.error_code, 0);
    assert!(r.api_keys.iter().any(|k| k.api_key == ApiKey::Fetch as i16 && k.max_version == 11));
}

#[test]
fn malformed_frames_close_only_their_connection_and_others_keep_being_served() {
    let server = TestServer::start();
    let addr = server.kafka.clone();
    // A connection kept open throughout, used between the bad ones.
    let mut good = connect(&addr);

    let mut bad = connect(&addr);
    bad.write_all(&(-5i32).to_be_bytes()).expect("send");
    assert!(closed(&mut bad), "negative frame size");

    let mut bad = connect(&addr);
    bad.write_all(&(200 * 1024 * 1024i32).to_be_bytes()).expect("send");
    assert!(closed(&mut bad), "oversized frame");

    let mut bad = connect(&addr);
    send_frame(&mut bad, &[0, 18]);
    assert!(closed(&mut bad), "frame shorter than a header");

    let mut bad = connect(&addr);
    let mut f = BytesMut::new();
    f.put_i16(999);
    f.put_i16(0);
    f.put_i32(1);
    send_frame(&mut bad, &f);
    assert!(closed(&mut bad), "unknown API key");

    let mut bad = connect(&addr);
    let mut f = BytesMut::new();
    f.put_i16(ApiKey::Metadata as i16);
    f.put_i16(1);
    f.put_i32(1);
    f.put_i16(-1); // null client id
    f.put_i32(1_000_000); // claims a million topics, sends none
    send_frame(&mut bad, &f);
    assert!(closed(&mut bad), "truncated body");

    // Found by the kafka_request fuzz target: Metadata v0 whose topic array claims 201
    // million entries. The decoder reserves the array's capacity up front (14.5 GB);
    // the server's allocator reserves address space without committing memory, and the
    // decode then fails on the missing bytes.
    for frame in [
        &[0x00u8, 0x03, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00][..],
        &[0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff][..],
    ] {
        let mut bad = connect(&addr);
        send_frame(&mut bad, frame);
        assert!(closed(&mut bad), "huge array count");
    }

    let mut bad = connect(&addr);
    bad.write_all(&100i32.to_be_bytes()).expect("send");
    bad.write_all(&[1, 2, 3]).expect("send");
    drop(bad); // closes mid-frame

    // Random bytes on fresh connections.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..50 {
        let mut bad = connect(&addr);
        let len = (seed % 64) as usize + 1;
        let body: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        send_frame(&mut bad, &body);
    }

    // ApiVersions in a version above the highest served: an answer in v0 with the list.
    let mut s = connect(&addr);
    let header = RequestHeader::default().with_request_api_key(ApiKey::ApiVersions as i16).with_request_api_version(9).with_correlation_id(5);
    let mut buf = BytesMut::new();
    header.encode(&mut buf, 1).expect("header");
    send_frame(&mut s, &buf);
    let mut size = [0u8; 4];
    s.read_exact(&mut size).expect("answered");
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut body).expect("body");
    let mut body = Bytes::from(body);
    assert_eq!(body.get_i32(), 5);
    let r = ApiVersionsResponse::decode(&mut body, 0).expect("v0 response");
    assert_eq!(r.error_code, 35, "UNSUPPORTED_VERSION");
    assert!(!r.api_keys.is_empty());

    // Everyone else is still served, on old and new connections.
    let r: ApiVersionsResponse = call(&mut good, ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(r.error_code, 0);
    api_versions_ok(&addr);
}

#[test]
fn fetch_long_polls_until_data_arrives_and_returns_the_batch_byte_for_byte() {
    let server = TestServer::start();
    let addr = server.kafka.clone();
    let mut admin = connect(&addr);
    let t = create_topics_request::CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_static_str("wire")))
        .with_num_partitions(1)
        .with_replication_factor(1);
    let r: CreateTopicsResponse = call(&mut admin, ApiKey::CreateTopics, 4, &CreateTopicsRequest::default().with_topics(vec![t.clone()]).with_timeout_ms(5000));
    assert_eq!(r.topics[0].error_code, 0);
    let again: CreateTopicsResponse = call(&mut admin, ApiKey::CreateTopics, 4, &CreateTopicsRequest::default().with_topics(vec![t]).with_timeout_ms(5000));
    assert_eq!(again.topics[0].error_code, 36, "TOPIC_ALREADY_EXISTS");

    let mut b = eddy::log::BatchBuilder::new(None);
    b.push(1_700_000_000_000, Some(b"k"), Some(b"hello"), &[(b"h", Some(b"v"))]);
    b.push(1_700_000_000_001, None, Some(b"world"), &[]);
    let batch = Bytes::from(b.finish());

    // A consumer waits at the end of the partition with a 10 s max wait.
    let fetcher = std::thread::spawn(move || {
        let mut s = connect(&addr);
        let started = Instant::now();
        let r: FetchResponse = call(&mut s, ApiKey::Fetch, 11, &fetch_request("wire", 0, 10_000, 1));
        (r, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    let p: ProduceResponse = call(&mut admin, ApiKey::Produce, 8, &produce_request("wire", batch.clone()));
    let pr = &p.responses[0].partition_responses[0];
    assert_eq!((pr.error_code, pr.base_offset), (0, 0));
    let (r, waited) = fetcher.join().expect("fetcher");
    let pd = &r.responses[0].partitions[0];
    assert_eq!((pd.error_code, pd.high_watermark), (0, 2));
    assert!(waited < Duration::from_secs(9), "the fetch should answer when data arrives, not at max_wait ({waited:?})");
    // Stored and served exactly as produced (the base offset, 0 here, is the only field the broker sets).
    assert_eq!(pd.records.as_ref().expect("records"), &batch);

    // Out of range offsets get OFFSET_OUT_OF_RANGE; an empty wait ends at max_wait.
    let mut s = connect(&server.kafka);
    let r: FetchResponse = call(&mut s, ApiKey::Fetch, 11, &fetch_request("wire", 99, 0, 1));
    assert_eq!(r.responses[0].partitions[0].error_code, 1);
    let started = Instant::now();
    let r: FetchResponse = call(&mut s, ApiKey::Fetch, 4, &fetch_request("wire", 2, 300, 1));
    assert!(r.responses[0].partitions[0].records.as_ref().is_some_and(|b| b.is_empty()));
    assert!(started.elapsed() >= Duration::from_millis(250));

    // ListOffsets: earliest, latest, and by timestamp (the record's own timestamp comes back).
    let parts = [-2i64, -1, 1_700_000_000_001]
        .iter()
        .map(|ts| list_offsets_request::ListOffsetsPartition::default().with_partition_index(0).with_timestamp(*ts))
        .collect();
    let t = list_offsets_request::ListOffsetsTopic::default().with_name(TopicName(StrBytes::from_static_str("wire"))).with_partitions(parts);
    let r: ListOffsetsResponse = call(&mut s, ApiKey::ListOffsets, 5, &ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![t]));
    let got: Vec<(i64, i64)> = r.topics[0].partitions.iter().map(|p| (p.offset, p.timestamp)).collect();
    assert_eq!(got, vec![(0, -1), (2, -1), (1, 1_700_000_000_001)]);

    // Eddy's own topics can be read but not written by Kafka clients.
    let p: ProduceResponse = call(&mut admin, ApiKey::Produce, 8, &produce_request("_eddy_command_topic", batch.clone()));
    assert_eq!(p.responses[0].partition_responses[0].error_code, 17, "INVALID_TOPIC_EXCEPTION");

    // A corrupt batch (CRC mismatch) is refused with CORRUPT_MESSAGE and nothing is stored.
    let mut bad = batch.to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let p: ProduceResponse = call(&mut admin, ApiKey::Produce, 8, &produce_request("wire", Bytes::from(bad)));
    let pr = &p.responses[0].partition_responses[0];
    assert_eq!(pr.error_code, 2, "CORRUPT_MESSAGE");
    assert!(pr.error_message.as_ref().is_some_and(|m| m.contains("CRC")), "{:?}", pr.error_message);
    let r: FetchResponse = call(&mut s, ApiKey::Fetch, 11, &fetch_request("wire", 0, 0, 1));
    assert_eq!(r.responses[0].partitions[0].high_watermark, 2);
}

#[test]
fn pipelined_produce_requests_are_appended_and_answered_in_request_order() {
    let server = TestServer::start();
    let mut s = connect(&server.kafka);
    // Sixty requests (two topics, acks=1 and acks=-1 mixed, a fetch in between)
    // written back to back before reading any response.
    let n = 60;
    for i in 0..n {
        let mut b = eddy::log::BatchBuilder::new(None);
        b.push(1_000 + i64::from(i), None, Some(format!("v{i}").as_bytes()), &[]);
        let topic = if i % 2 == 0 { "pipe" } else { "pipe2" };
        let mut req = produce_request(topic, Bytes::from(b.finish()));
        req.acks = if i % 3 == 0 { 1 } else { -1 };
        send(&mut s, ApiKey::Produce, 8, 100 + i, &req);
        if i == 30 {
            send(&mut s, ApiKey::Fetch, 11, 100 + i + 1000, &fetch_request("pipe", 1_000, 300, 1));
        }
    }
    let mut offsets: std::collections::HashMap<&str, Vec<i64>> = Default::default();
    for i in 0..n {
        let (cid, r): (i32, ProduceResponse) = receive(&mut s, 8);
        assert_eq!(cid, 100 + i, "responses come back in request order");
        let p = &r.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 0);
        offsets.entry(if i % 2 == 0 { "pipe" } else { "pipe2" }).or_default().push(p.base_offset);
        if i == 30 {
            let (cid, f): (i32, FetchResponse) = receive(&mut s, 11);
            assert_eq!(cid, 1130);
            assert_eq!(f.responses[0].partitions[0].error_code, 1, "offset 1000 is out of range");
        }
    }
    for (topic, got) in offsets {
        assert_eq!(got, (0..30).collect::<Vec<i64>>(), "{topic}: batches appended in request order");
    }
    // The stored order matches too.
    let r: FetchResponse = call(&mut s, ApiKey::Fetch, 11, &fetch_request("pipe", 0, 0, 1));
    let records = r.responses[0].partitions[0].records.clone().expect("records");
    let values: Vec<String> = eddy::log::batch::split_batches(&records)
        .flat_map(|b| {
            eddy::log::RecordIter::new(b)
                .expect("batch")
                .map(|r| String::from_utf8_lossy(r.expect("record").value.expect("value")).to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(values, (0..n).step_by(2).map(|i| format!("v{i}")).collect::<Vec<_>>());
}

/// A batch marked transactional for producer 7, epoch 0, with its CRC recomputed.
fn transactional_batch() -> Bytes {
    let mut b = eddy::log::BatchBuilder::new(None);
    b.push(1_000, None, Some(b"in a transaction"), &[]);
    let mut batch = b.finish();
    batch[43..51].copy_from_slice(&7i64.to_be_bytes());
    batch[51..53].copy_from_slice(&0i16.to_be_bytes());
    let attrs = i16::from_be_bytes([batch[21], batch[22]]) | 0x10;
    batch[21..23].copy_from_slice(&attrs.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(batch)
}

#[test]
fn transactional_batches_outside_an_open_transaction_are_refused_and_not_stored() {
    let server = TestServer::start();
    let mut s = connect(&server.kafka);
    // Without a transactional id: INVALID_TXN_STATE, with a message saying what is missing.
    let p: ProduceResponse = call(&mut s, ApiKey::Produce, 8, &produce_request("txn_wire", transactional_batch()));
    let pr = &p.responses[0].partition_responses[0];
    assert_eq!(pr.error_code, 48, "INVALID_TXN_STATE: {:?}", pr.error_message);
    assert!(pr.error_message.as_ref().is_some_and(|m| m.contains("transactional.id")), "{:?}", pr.error_message);
    // With a transactional id the coordinator never saw: INVALID_PRODUCER_ID_MAPPING.
    let req = produce_request("txn_wire", transactional_batch()).with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("ghost"))));
    let p: ProduceResponse = call(&mut s, ApiKey::Produce, 8, &req);
    assert_eq!(p.responses[0].partition_responses[0].error_code, 49, "INVALID_PRODUCER_ID_MAPPING");
    // Nothing was stored, so the partition's last stable offset is not held back.
    let r: FetchResponse = call(&mut s, ApiKey::Fetch, 11, &fetch_request("txn_wire", 0, 0, 1).with_isolation_level(1));
    let pd = &r.responses[0].partitions[0];
    assert_eq!((pd.error_code, pd.high_watermark, pd.last_stable_offset), (0, 0, 0));
}

#[test]
fn create_topics_beyond_the_partition_limit_is_refused_and_leaves_no_directories() {
    let server = TestServer::start();
    let mut admin = connect(&server.kafka);
    let huge = create_topics_request::CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_static_str("huge")))
        .with_num_partitions(100_000)
        .with_replication_factor(1);
    let r: CreateTopicsResponse = call(&mut admin, ApiKey::CreateTopics, 4, &CreateTopicsRequest::default().with_topics(vec![huge]).with_timeout_ms(5000));
    assert_eq!(r.topics[0].error_code, 37, "INVALID_PARTITIONS");
    let message = r.topics[0].error_message.as_ref().map(|m| m.to_string()).unwrap_or_default();
    assert!(message.contains("at most 1000"), "{message}");
    assert!(!server.data_dir.join("topics").join("huge").exists(), "nothing was created");
    // The broker goes on serving.
    let ok = create_topics_request::CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_static_str("fine")))
        .with_num_partitions(3)
        .with_replication_factor(1);
    let r: CreateTopicsResponse = call(&mut admin, ApiKey::CreateTopics, 4, &CreateTopicsRequest::default().with_topics(vec![ok]).with_timeout_ms(5000));
    assert_eq!(r.topics[0].error_code, 0);
}
