//! One client connection: size-prefixed request frames in, responses out in request order.
//!
//! Requests on a connection are pipelined (see `serve_connection`); responses go out in
//! request order and produce batches are appended in request order. A frame that cannot
//! be decoded, names an unknown
//! API or an unsupported version closes the connection (what Kafka does); ApiVersions with
//! a too-new version is answered in version 0 with UNSUPPORTED_VERSION so the client can
//! retry with a version it finds in the list.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};

use super::errors::KafkaError;
use super::frame::{Incoming, decode_request, encode_response};
use super::{Broker, admin, fetch, groups, metadata, produce, producer_ids, transactions, versions};

/// Largest request accepted (Kafka's `socket.request.max.bytes`).
pub const MAX_FRAME_BYTES: usize = 100 * 1024 * 1024;

/// Requests of one connection being processed at once (reading stops while this many
/// wait for their responses).
const MAX_IN_FLIGHT: usize = 16;

type PendingResponse = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Option<Bytes>, KafkaError>> + Send>>;

/// A decoded request and the share of the request-memory budget its frame holds until it
/// is answered.
type Received = (Incoming, OwnedSemaphorePermit);

/// Reads and decodes frames until the client closes the connection or sends one that cannot
/// be served (sent on as the last item). A connection that sends nothing for the idle
/// timeout is closed, and so is one whose frame does not arrive whole within the request
/// timeout; a frame waits for its bytes in the shared request-memory budget before it is
/// read, so slow or greedy clients cannot grow the server's memory without bound.
async fn read_frames(rd: tokio::net::tcp::OwnedReadHalf, peer: SocketAddr, broker: Arc<Broker>, tx: mpsc::Sender<Result<Received, KafkaError>>) {
    let mut rd = BufReader::with_capacity(64 * 1024, rd);
    let timeouts = broker.config.timeouts;
    loop {
        let size = match tokio::time::timeout(timeouts.idle, rd.read_i32()).await {
            Err(_) => {
                tracing::debug!(%peer, "closing idle Kafka connection");
                return;
            }
            Ok(Ok(n)) => n,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return,
            Ok(Err(e)) => {
                let _ = tx.send(Err(e.into())).await;
                return;
            }
        };
        if size < 0 || size as usize > MAX_FRAME_BYTES {
            tracing::warn!(%peer, size, "closing Kafka connection: request frame size out of range");
            let _ = tx.send(Err(KafkaError::FrameTooLarge { size: size as i64, max: MAX_FRAME_BYTES })).await;
            return;
        }
        let Ok(permit) = broker.request_bytes.clone().acquire_many_owned((size as u32).max(1)).await else { return };
        // The budget holds the whole frame: reserve it once (pages take memory only as bytes
        // arrive), so reading never copies the frame to grow it.
        let mut frame = Vec::with_capacity(size as usize);
        match tokio::time::timeout(timeouts.request, (&mut rd).take(size as u64).read_to_end(&mut frame)).await {
            Err(_) => {
                tracing::warn!(%peer, size, got = frame.len(), "closing Kafka connection: the request frame did not arrive whole within {} \
                    ms", timeouts.request.as_millis());
                let _ = tx.send(Err(KafkaError::Timeout { got: frame.len(), size: size as usize })).await;
                return;
            }
            Ok(Err(e)) => {
                let _ = tx.send(Err(e.into())).await;
                return;
            }
            Ok(Ok(_)) => {}
        }
        if frame.len() != size as usize {
            let _ = tx.send(Err(KafkaError::Truncated { got: frame.len(), size: size as usize })).await;
            return;
        }
        let decoded = decode_request(Bytes::from(frame)).map_err(KafkaError::from).map(|incoming| (incoming, permit));
        if let Err(e) = &decoded {
            tracing::warn!(%peer, "closing Kafka connection: {e}");
        }
        let stop = decoded.is_err();
        if tx.send(decoded).await.is_err() || stop {
            return;
        }
    }
}

/// Serves one connection until the client closes it, sends something that cannot be
/// served, or the server shuts down.
///
/// Requests are pipelined: a request is started as soon as it is read (Produce queues its
/// batches right then, so batches keep their order), up to `MAX_IN_FLIGHT` run at once,
/// and responses are written in request order. Pipelined produce requests thus share
/// group commits instead of each waiting for its own fsync.
pub async fn serve_connection(stream: TcpStream, peer: SocketAddr, broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) -> Result<(), KafkaError> {
    let (rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel(4);
    let reader = tokio::spawn(read_frames(rd, peer, broker.clone(), tx));
    let mut in_flight: FuturesOrdered<PendingResponse> = FuturesOrdered::new();
    let result = loop {
        tokio::select! {
            biased;
            Some(done) = in_flight.next(), if !in_flight.is_empty() => match done {
                Ok(Some(bytes)) => {
                    if let Err(e) = wr.write_all(&bytes).await {
                        break Err(e.into());
                    }
                }
                Ok(None) => {}
                Err(e) => break Err(e),
            },
            next = rx.recv(), if in_flight.len() < MAX_IN_FLIGHT => match next {
                Some(Ok((incoming, permit))) => {
                    let pending = start(&broker, incoming, peer).await;
                    // The frame's share of the memory budget is held until it is answered.
                    in_flight.push_back(Box::pin(async move {
                        let r = pending.await;
                        drop(permit);
                        r
                    }));
                }
                Some(Err(e)) => break Err(e),
                // The client closed its side: answer what it already sent.
                None => {
                    while let Some(done) = in_flight.next().await {
                        if let Some(bytes) = done? {
                            wr.write_all(&bytes).await?;
                        }
                    }
                    break Ok(());
                }
            },
            _ = shutdown.changed() => break Ok(()),
        }
    };
    reader.abort();
    result
}

/// Starts one request. Produce queues its batches before returning; everything else runs
/// when the returned future is polled.
async fn start(broker: &Arc<Broker>, incoming: Incoming, peer: SocketAddr) -> PendingResponse {
    match incoming {
        Incoming::ApiVersionsTooNew { correlation_id } => {
            let body = ResponseKind::ApiVersions(versions::api_versions(Some(ResponseError::UnsupportedVersion)));
            let r = encode_response(ApiKey::ApiVersions, 0, correlation_id, &body).map(Some).map_err(KafkaError::from);
            Box::pin(std::future::ready(r))
        }
        Incoming::Request { header, api, version, body: RequestKind::Produce(req) } => {
            let pending = produce::start(broker, req, version).await;
            Box::pin(async move {
                match pending.await {
                    Some(resp) => Ok(Some(encode_logged(api, version, header.correlation_id, &ResponseKind::Produce(resp), peer)?)),
                    None => Ok(None),
                }
            })
        }
        Incoming::Request { header, api, version, body } => {
            let broker = broker.clone();
            Box::pin(async move {
                match handle(&broker, &header, peer, version, body).await? {
                    Some(resp) => Ok(Some(encode_logged(api, version, header.correlation_id, &resp, peer)?)),
                    None => Ok(None),
                }
            })
        }
    }
}

fn encode_logged(api: ApiKey, version: i16, correlation_id: i32, resp: &ResponseKind, peer: SocketAddr) -> Result<Bytes, KafkaError> {
    encode_response(api, version, correlation_id, resp).map_err(|e| {
        tracing::error!(%peer, "closing Kafka connection: {e}");
        KafkaError::from(e)
    })
}

/// Runs one request; `None` means no response is sent (Produce with acks=0).
async fn handle(broker: &Arc<Broker>, header: &RequestHeader, peer: SocketAddr, version: i16, body: RequestKind) -> Result<Option<ResponseKind>, KafkaError> {
    let client_id = header.client_id.as_ref().map(|s| s.to_string()).unwrap_or_default();
    Ok(Some(match body {
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(versions::api_versions(None)),
        RequestKind::Metadata(r) => ResponseKind::Metadata(metadata::metadata(broker, r, version).await),
        RequestKind::Produce(r) => return Ok(produce::produce(broker, r, version).await.map(ResponseKind::Produce)),
        RequestKind::Fetch(r) => ResponseKind::Fetch(fetch::fetch(broker, r, version).await),
        RequestKind::ListOffsets(r) => ResponseKind::ListOffsets(fetch::list_offsets(broker, r).await),
        RequestKind::FindCoordinator(r) => ResponseKind::FindCoordinator(groups::find_coordinator(broker, r, version)),
        RequestKind::JoinGroup(r) => ResponseKind::JoinGroup(groups::join_group(broker, r, &client_id, peer, version).await),
        RequestKind::SyncGroup(r) => ResponseKind::SyncGroup(groups::sync_group(broker, r, version).await),
        RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(groups::heartbeat(broker, r)),
        RequestKind::LeaveGroup(r) => ResponseKind::LeaveGroup(groups::leave_group(broker, r)),
        RequestKind::OffsetCommit(r) => ResponseKind::OffsetCommit(groups::offset_commit(broker, r).await),
        RequestKind::OffsetFetch(r) => ResponseKind::OffsetFetch(groups::offset_fetch(broker, r, version)),
        RequestKind::InitProducerId(r) => ResponseKind::InitProducerId(producer_ids::init_producer_id(broker, r).await),
        RequestKind::CreateTopics(r) => ResponseKind::CreateTopics(admin::create_topics(broker, r, version).await),
        RequestKind::DeleteTopics(r) => ResponseKind::DeleteTopics(admin::delete_topics(broker, r, version).await),
        RequestKind::DescribeConfigs(r) => ResponseKind::DescribeConfigs(admin::describe_configs(broker, r)),
        RequestKind::DescribeProducers(r) => ResponseKind::DescribeProducers(admin::describe_producers(broker, r)),
        RequestKind::AddPartitionsToTxn(r) => ResponseKind::AddPartitionsToTxn(transactions::add_partitions(broker, r).await),
        RequestKind::AddOffsetsToTxn(r) => ResponseKind::AddOffsetsToTxn(transactions::add_offsets(broker, r).await),
        RequestKind::TxnOffsetCommit(r) => ResponseKind::TxnOffsetCommit(transactions::txn_offset_commit(broker, r).await),
        RequestKind::EndTxn(r) => ResponseKind::EndTxn(transactions::end_txn(broker, r).await),
        other => {
            return Err(KafkaError::NoHandler(format!("{other:?}").chars().take(60).collect()));
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every advertised version of every API, with requests that reach success and error
    /// paths, produces a response the message crate can encode (a field set that a version
    /// lacks would make encoding fail and close the client's connection).
    #[tokio::test]
    async fn every_advertised_version_answers_with_an_encodable_response() {
        use kafka_protocol::messages::*;
        use kafka_protocol::protocol::StrBytes;
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Arc::new(crate::log::Log::open(dir.path(), crate::log::TopicConfig::default()).expect("log"));
        let topic = log.create_topic("t", 2, crate::log::TopicConfig::default()).expect("topic");
        let mut b = crate::log::BatchBuilder::new(None);
        b.push(1_000, Some(b"k"), Some(b"v"), &[]);
        let batch = Bytes::from(b.finish());
        topic.partition(0).expect("p0").append(batch.to_vec()).expect("append");
        let config = super::super::KafkaConfig { group_initial_delay: std::time::Duration::ZERO, ..Default::default() };
        let broker = Broker::open(log, dir.path(), config).expect("broker");
        let header = RequestHeader::default().with_client_id(Some(StrBytes::from_static_str("test")));
        let peer: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let name = |n: &str| TopicName(StrBytes::from_string(n.to_string()));
        for (api, lo, hi) in versions::SUPPORTED_APIS {
            let lo = if *api == ApiKey::Produce { versions::PRODUCE_MIN_SERVED } else { *lo };
            for v in lo..=*hi {
                let group = GroupId(StrBytes::from_string(format!("g-{}-{v}", *api as i16)));
                let mut requests: Vec<RequestKind> = Vec::new();
                match api {
                    ApiKey::ApiVersions => requests.push(RequestKind::ApiVersions(Default::default())),
                    ApiKey::Metadata => {
                        requests.push(RequestKind::Metadata(MetadataRequest::default().with_topics(None)));
                        let t = metadata_request::MetadataRequestTopic::default().with_name(Some(name("t")));
                        let bad = metadata_request::MetadataRequestTopic::default().with_name(Some(name("bad name!")));
                        requests.push(RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![t, bad]))));
                    }
                    ApiKey::Produce => {
                        let parts = vec![
                            produce_request::PartitionProduceData::default().with_index(0).with_records(Some(batch.clone())),
                            produce_request::PartitionProduceData::default().with_index(7).with_records(Some(batch.clone())),
                            produce_request::PartitionProduceData::default().with_index(1).with_records(Some(Bytes::from_static(b"garbage"))),
                        ];
                        let td = produce_request::TopicProduceData::default().with_name(name("t")).with_partition_data(parts);
                        requests.push(RequestKind::Produce(ProduceRequest::default().with_acks(1).with_topic_data(vec![td])));
                    }
                    ApiKey::Fetch => {
                        let parts = vec![
                            fetch_request::FetchPartition::default().with_partition(0).with_fetch_offset(0).with_partition_max_bytes(1 << 20),
                            fetch_request::FetchPartition::default().with_partition(1).with_fetch_offset(99),
                        ];
                        let t = fetch_request::FetchTopic::default().with_topic(name("t")).with_partitions(parts);
                        let missing = fetch_request::FetchTopic::default().with_topic(name("missing")).with_partitions(vec![Default::default()]);
                        requests.push(RequestKind::Fetch(FetchRequest::default().with_max_wait_ms(0).with_topics(vec![t, missing])));
                    }
                    ApiKey::ListOffsets => {
                        let parts = [-1, -2, 0, -7].iter().map(|ts| list_offsets_request::ListOffsetsPartition::default().with_timestamp(*ts)).collect();
                        let t = list_offsets_request::ListOffsetsTopic::default().with_name(name("t")).with_partitions(parts);
                        requests.push(RequestKind::ListOffsets(ListOffsetsRequest::default().with_topics(vec![t])));
                    }
                    ApiKey::FindCoordinator => {
                        requests.push(RequestKind::FindCoordinator(FindCoordinatorRequest::default().with_key(group.0.clone())));
                        requests.push(RequestKind::FindCoordinator(FindCoordinatorRequest::default().with_key_type(1)));
                    }
                    ApiKey::JoinGroup | ApiKey::SyncGroup | ApiKey::Heartbeat | ApiKey::LeaveGroup | ApiKey::OffsetCommit => {
                        // A whole membership: join, sync, heartbeat, commit, leave.
                        let proto = join_group_request::JoinGroupRequestProtocol::default()
                            .with_name(StrBytes::from_static_str("range"))
                            .with_metadata(Bytes::from_static(b"m"));
                        let join = JoinGroupRequest::default()
                            .with_group_id(group.clone())
                            .with_session_timeout_ms(10_000)
                            .with_rebalance_timeout_ms(10_000)
                            .with_protocol_type(StrBytes::from_static_str("consumer"))
                            .with_protocols(vec![proto]);
                        let Some(ResponseKind::JoinGroup(j)) =
                            handle(&broker, &header, peer, if *api == ApiKey::JoinGroup { v } else { 5 }, RequestKind::JoinGroup(join)).await.expect("join")
                        else {
                            panic!("join answered")
                        };
                        assert_eq!(j.error_code, 0, "join {v}");
                        let (member, generation) = (j.member_id.clone(), j.generation_id);
                        if *api == ApiKey::JoinGroup {
                            encode_response(*api, v, 1, &ResponseKind::JoinGroup(j)).expect("join encodes");
                            continue;
                        }
                        let assignment =
                            sync_group_request::SyncGroupRequestAssignment::default().with_member_id(member.clone()).with_assignment(Bytes::from_static(b"a"));
                        let sync = SyncGroupRequest::default()
                            .with_group_id(group.clone())
                            .with_generation_id(generation)
                            .with_member_id(member.clone())
                            .with_assignments(vec![assignment]);
                        requests.push(RequestKind::SyncGroup(sync));
                        requests.push(RequestKind::Heartbeat(
                            HeartbeatRequest::default().with_group_id(group.clone()).with_generation_id(generation).with_member_id(member.clone()),
                        ));
                        let p = offset_commit_request::OffsetCommitRequestPartition::default().with_committed_offset(1);
                        let t = offset_commit_request::OffsetCommitRequestTopic::default().with_name(name("t")).with_partitions(vec![p]);
                        requests.push(RequestKind::OffsetCommit(
                            OffsetCommitRequest::default()
                                .with_group_id(group.clone())
                                .with_generation_id_or_member_epoch(generation)
                                .with_member_id(member.clone())
                                .with_topics(vec![t]),
                        ));
                        let mut leave = LeaveGroupRequest::default().with_group_id(group.clone());
                        if v >= 3 && *api == ApiKey::LeaveGroup {
                            leave.members = vec![leave_group_request::MemberIdentity::default().with_member_id(member.clone())];
                        } else {
                            leave.member_id = member.clone();
                        }
                        requests.push(RequestKind::LeaveGroup(leave));
                        requests.push(RequestKind::Heartbeat(HeartbeatRequest::default().with_group_id(group.clone()).with_member_id(member)));
                    }
                    ApiKey::OffsetFetch => {
                        let t = offset_fetch_request::OffsetFetchRequestTopic::default().with_name(name("t")).with_partition_indexes(vec![0, 1]);
                        requests.push(RequestKind::OffsetFetch(OffsetFetchRequest::default().with_group_id(group.clone()).with_topics(Some(vec![t]))));
                        requests.push(RequestKind::OffsetFetch(
                            OffsetFetchRequest::default().with_group_id(GroupId(StrBytes::from_static_str("g-5-1"))).with_topics(None),
                        ));
                    }
                    ApiKey::InitProducerId => requests.push(RequestKind::InitProducerId(InitProducerIdRequest::default().with_producer_id(ProducerId(-1)))),
                    ApiKey::CreateTopics => {
                        let ok = create_topics_request::CreatableTopic::default().with_name(name(&format!("new-{v}"))).with_num_partitions(-1);
                        let bad = create_topics_request::CreatableTopic::default().with_name(name("t")).with_num_partitions(0);
                        requests.push(RequestKind::CreateTopics(CreateTopicsRequest::default().with_topics(vec![ok, bad])));
                    }
                    ApiKey::DeleteTopics => requests.push(RequestKind::DeleteTopics(DeleteTopicsRequest::default().with_topic_names(vec![name("missing")]))),
                    ApiKey::DescribeConfigs => {
                        let t = describe_configs_request::DescribeConfigsResource::default()
                            .with_resource_type(2)
                            .with_resource_name(StrBytes::from_static_str("t"));
                        let b = describe_configs_request::DescribeConfigsResource::default()
                            .with_resource_type(4)
                            .with_resource_name(StrBytes::from_static_str("0"));
                        requests.push(RequestKind::DescribeConfigs(DescribeConfigsRequest::default().with_resources(vec![t, b])));
                    }
                    ApiKey::DescribeProducers => {
                        let t = describe_producers_request::TopicRequest::default().with_name(name("t")).with_partition_indexes(vec![0, 5]);
                        let missing = describe_producers_request::TopicRequest::default().with_name(name("missing")).with_partition_indexes(vec![0]);
                        requests.push(RequestKind::DescribeProducers(DescribeProducersRequest::default().with_topics(vec![t, missing])));
                    }
                    ApiKey::AddPartitionsToTxn | ApiKey::AddOffsetsToTxn | ApiKey::TxnOffsetCommit | ApiKey::EndTxn => {
                        // A whole transaction: init, add a partition and a group, hold an offset, commit.
                        let id = TransactionalId(StrBytes::from_string(format!("tx-{}-{v}", *api as i16)));
                        let init = InitProducerIdRequest::default().with_transactional_id(Some(id.clone())).with_transaction_timeout_ms(60_000);
                        let Some(ResponseKind::InitProducerId(init)) =
                            handle(&broker, &header, peer, 4, RequestKind::InitProducerId(init)).await.expect("init")
                        else {
                            panic!("init answered")
                        };
                        assert_eq!(init.error_code, 0);
                        let (pid, epoch) = (init.producer_id, init.producer_epoch);
                        let topic = add_partitions_to_txn_request::AddPartitionsToTxnTopic::default().with_name(name("t")).with_partitions(vec![0, 9]);
                        let mut add = AddPartitionsToTxnRequest::default();
                        add.v3_and_below_transactional_id = id.clone();
                        add.v3_and_below_producer_id = pid;
                        add.v3_and_below_producer_epoch = epoch;
                        add.v3_and_below_topics = vec![topic];
                        requests.push(RequestKind::AddPartitionsToTxn(add));
                        requests.push(RequestKind::AddOffsetsToTxn(
                            AddOffsetsToTxnRequest::default()
                                .with_transactional_id(id.clone())
                                .with_producer_id(pid)
                                .with_producer_epoch(epoch)
                                .with_group_id(group.clone()),
                        ));
                        let p = txn_offset_commit_request::TxnOffsetCommitRequestPartition::default().with_committed_offset(1);
                        let t = txn_offset_commit_request::TxnOffsetCommitRequestTopic::default().with_name(name("t")).with_partitions(vec![p]);
                        requests.push(RequestKind::TxnOffsetCommit(
                            TxnOffsetCommitRequest::default()
                                .with_transactional_id(id.clone())
                                .with_group_id(group.clone())
                                .with_producer_id(pid)
                                .with_producer_epoch(epoch)
                                .with_topics(vec![t]),
                        ));
                        requests.push(RequestKind::EndTxn(
                            EndTxnRequest::default().with_transactional_id(id.clone()).with_producer_id(pid).with_producer_epoch(epoch).with_committed(true),
                        ));
                        // A stale epoch is fenced.
                        requests
                            .push(RequestKind::EndTxn(EndTxnRequest::default().with_transactional_id(id).with_producer_id(pid).with_producer_epoch(epoch - 1)));
                    }
                    other => panic!("no sample request for {other:?}"),
                }
                // Requests of other APIs (the rest of a membership) go in their highest version.
                for req in requests {
                    let req_api = request_api(&req);
                    let rv = if req_api == *api { v } else { versions::served_range(req_api).map(|r| r.1).unwrap_or(0) };
                    let resp = handle(&broker, &header, peer, rv, req).await.expect("handled").expect("a response");
                    if let Err(e) = encode_response(req_api, rv, 1, &resp) {
                        panic!("{req_api:?} v{rv}: {e}");
                    }
                }
            }
        }
    }

    fn request_api(r: &RequestKind) -> ApiKey {
        match r {
            RequestKind::ApiVersions(_) => ApiKey::ApiVersions,
            RequestKind::Metadata(_) => ApiKey::Metadata,
            RequestKind::Produce(_) => ApiKey::Produce,
            RequestKind::Fetch(_) => ApiKey::Fetch,
            RequestKind::ListOffsets(_) => ApiKey::ListOffsets,
            RequestKind::FindCoordinator(_) => ApiKey::FindCoordinator,
            RequestKind::JoinGroup(_) => ApiKey::JoinGroup,
            RequestKind::SyncGroup(_) => ApiKey::SyncGroup,
            RequestKind::Heartbeat(_) => ApiKey::Heartbeat,
            RequestKind::LeaveGroup(_) => ApiKey::LeaveGroup,
            RequestKind::OffsetCommit(_) => ApiKey::OffsetCommit,
            RequestKind::OffsetFetch(_) => ApiKey::OffsetFetch,
            RequestKind::InitProducerId(_) => ApiKey::InitProducerId,
            RequestKind::CreateTopics(_) => ApiKey::CreateTopics,
            RequestKind::DeleteTopics(_) => ApiKey::DeleteTopics,
            RequestKind::DescribeConfigs(_) => ApiKey::DescribeConfigs,
            RequestKind::DescribeProducers(_) => ApiKey::DescribeProducers,
            RequestKind::AddPartitionsToTxn(_) => ApiKey::AddPartitionsToTxn,
            RequestKind::AddOffsetsToTxn(_) => ApiKey::AddOffsetsToTxn,
            RequestKind::TxnOffsetCommit(_) => ApiKey::TxnOffsetCommit,
            RequestKind::EndTxn(_) => ApiKey::EndTxn,
            other => panic!("unexpected {other:?}"),
        }
    }
}
