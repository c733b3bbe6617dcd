//! Kafka requests at the wire level, for tests that talk to the listener directly.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};

pub fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect to the Kafka listener");
    s.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    s
}

pub fn send_frame(s: &mut TcpStream, body: &[u8]) {
    let mut b = Vec::with_capacity(body.len() + 4);
    b.extend_from_slice(&(body.len() as i32).to_be_bytes());
    b.extend_from_slice(body);
    s.write_all(&b).expect("send");
}

/// Sends a request without waiting for its response.
pub fn send<Req: Encodable + HeaderVersion>(s: &mut TcpStream, api: ApiKey, version: i16, correlation_id: i32, req: &Req) {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("wire-test")));
    let mut buf = BytesMut::new();
    header.encode(&mut buf, Req::header_version(version)).expect("header");
    req.encode(&mut buf, version).expect("body");
    send_frame(s, &buf);
}

/// Reads the next response: its correlation id and body.
pub fn receive<Resp: Decodable + HeaderVersion>(s: &mut TcpStream, version: i16) -> (i32, Resp) {
    let mut size = [0u8; 4];
    s.read_exact(&mut size).expect("response size");
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut body).expect("response body");
    let mut body = Bytes::from(body);
    let h = ResponseHeader::decode(&mut body, Resp::header_version(version)).expect("response header");
    (h.correlation_id, Resp::decode(&mut body, version).expect("response body decodes"))
}

/// Sends a request and returns the decoded response.
pub fn call<Req, Resp>(s: &mut TcpStream, api: ApiKey, version: i16, req: &Req) -> Resp
where
    Req: Encodable + HeaderVersion,
    Resp: Decodable + HeaderVersion,
{
    send(s, api, version, 11, req);
    let (correlation_id, resp) = receive(s, version);
    assert_eq!(correlation_id, 11);
    resp
}

pub fn fetch_request(topic: &str, offset: i64, max_wait_ms: i32, min_bytes: i32) -> FetchRequest {
    let p = fetch_request::FetchPartition::default().with_partition(0).with_fetch_offset(offset).with_partition_max_bytes(1 << 20);
    let t = fetch_request::FetchTopic::default().with_topic(TopicName(StrBytes::from_string(topic.to_string()))).with_partitions(vec![p]);
    FetchRequest::default().with_max_wait_ms(max_wait_ms).with_min_bytes(min_bytes).with_max_bytes(1 << 24).with_topics(vec![t])
}

pub fn produce_request(topic: &str, batch: Bytes) -> ProduceRequest {
    let p = produce_request::PartitionProduceData::default().with_index(0).with_records(Some(batch));
    let t = produce_request::TopicProduceData::default().with_name(TopicName(StrBytes::from_string(topic.to_string()))).with_partition_data(vec![p]);
    ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![t])
}
