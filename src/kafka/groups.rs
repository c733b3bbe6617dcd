//! Group request handlers: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! OffsetCommit and OffsetFetch. Membership is the coordinator's; committed offsets are the
//! log's `OffsetStore`, shared with persistent queries, so `/groups` and
//! `SHOW TOPICS EXTENDED` show Kafka consumers' lag too.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::find_coordinator_response::FindCoordinatorResponse;
use kafka_protocol::messages::heartbeat_request::HeartbeatRequest;
use kafka_protocol::messages::heartbeat_response::HeartbeatResponse;
use kafka_protocol::messages::join_group_request::JoinGroupRequest;
use kafka_protocol::messages::join_group_response::JoinGroupResponse;
use kafka_protocol::messages::leave_group_request::LeaveGroupRequest;
use kafka_protocol::messages::leave_group_response::{LeaveGroupResponse, MemberResponse};
use kafka_protocol::messages::offset_commit_request::OffsetCommitRequest;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponse, OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequest;
use kafka_protocol::messages::offset_fetch_response::{OffsetFetchResponse, OffsetFetchResponsePartition, OffsetFetchResponseTopic};
use kafka_protocol::messages::sync_group_request::SyncGroupRequest;
use kafka_protocol::messages::sync_group_response::SyncGroupResponse;
use kafka_protocol::messages::{BrokerId, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::coordinator::{JoinRequest, Reply};
use super::{Broker, NODE_ID};

pub fn find_coordinator(broker: &Arc<Broker>, req: FindCoordinatorRequest, version: i16) -> FindCoordinatorResponse {
    // This node coordinates every group (key type 0) and every transactional id (1).
    let resp = FindCoordinatorResponse::default();
    if req.key_type > 1 {
        let resp = resp.with_error_code(ResponseError::InvalidRequest.code()).with_node_id(BrokerId(-1)).with_port(-1);
        return if version >= 1 { resp.with_error_message(Some(StrBytes::from_static_str("key type must be 0 (group) or 1 (transaction)"))) } else { resp };
    }
    resp.with_node_id(BrokerId(NODE_ID)).with_host(StrBytes::from_string(broker.config.advertised_host.clone())).with_port(broker.config.advertised_port)
}

pub async fn join_group(broker: &Arc<Broker>, req: JoinGroupRequest, client_id: &str, peer: SocketAddr, version: i16) -> JoinGroupResponse {
    let session_timeout = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
    // v0 has no rebalance timeout: the session timeout serves for both.
    let rebalance_timeout = if req.rebalance_timeout_ms > 0 { Duration::from_millis(req.rebalance_timeout_ms as u64) } else { session_timeout };
    let member_id = req.member_id.clone();
    let reply = broker.groups.join(
        JoinRequest {
            group_id: req.group_id.0.to_string(),
            member_id: req.member_id,
            group_instance_id: req.group_instance_id,
            client_id: client_id.to_string(),
            session_timeout,
            rebalance_timeout,
            protocol_type: req.protocol_type,
            protocols: req.protocols.into_iter().map(|p| (p.name, p.metadata)).collect(),
        },
        Instant::now(),
    );
    tracing::debug!(%peer, group = %req.group_id.0.as_str(), "JoinGroup");
    let mut resp = match reply {
        Reply::Now(r) => r,
        Reply::Later(rx) => rx.await.unwrap_or_else(|_| {
            JoinGroupResponse::default().with_error_code(ResponseError::RebalanceInProgress.code()).with_generation_id(-1).with_member_id(member_id)
        }),
    };
    // Fields a version lacks must keep their defaults.
    if version < 7 {
        resp.protocol_type = None;
        resp.protocol_name = resp.protocol_name.or(Some(StrBytes::default()));
    }
    if version < 5 {
        for m in &mut resp.members {
            m.group_instance_id = None;
        }
    }
    resp
}

pub async fn sync_group(broker: &Arc<Broker>, req: SyncGroupRequest, version: i16) -> SyncGroupResponse {
    let assignments = req.assignments.into_iter().map(|a| (a.member_id, a.assignment)).collect();
    let mut resp = match broker.groups.sync(req.group_id.0.as_str(), req.generation_id, &req.member_id, assignments, Instant::now()) {
        Reply::Now(r) => r,
        Reply::Later(rx) => rx.await.unwrap_or_else(|_| SyncGroupResponse::default().with_error_code(ResponseError::RebalanceInProgress.code())),
    };
    if version < 5 {
        resp.protocol_type = None;
        resp.protocol_name = None;
    }
    resp
}

pub fn heartbeat(broker: &Arc<Broker>, req: HeartbeatRequest) -> HeartbeatResponse {
    let e = broker.groups.heartbeat(req.group_id.0.as_str(), req.generation_id, &req.member_id, Instant::now());
    HeartbeatResponse::default().with_error_code(e.map(|e| e.code()).unwrap_or(0))
}

pub fn leave_group(broker: &Arc<Broker>, req: LeaveGroupRequest) -> LeaveGroupResponse {
    // v0-2 name one member; v3+ a list.
    let (ids, batch): (Vec<StrBytes>, bool) =
        if req.members.is_empty() { (vec![req.member_id.clone()], false) } else { (req.members.iter().map(|m| m.member_id.clone()).collect(), true) };
    let errors = broker.groups.leave(req.group_id.0.as_str(), &ids, Instant::now());
    if !batch {
        return LeaveGroupResponse::default().with_error_code(errors.first().copied().flatten().map(|e| e.code()).unwrap_or(0));
    }
    let members = req
        .members
        .into_iter()
        .zip(errors)
        .map(|(m, e)| {
            MemberResponse::default().with_member_id(m.member_id).with_group_instance_id(m.group_instance_id).with_error_code(e.map(|e| e.code()).unwrap_or(0))
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}

pub async fn offset_commit(broker: &Arc<Broker>, req: OffsetCommitRequest) -> OffsetCommitResponse {
    let group = req.group_id.0.to_string();
    let verdict = broker.groups.check_commit(&group, req.generation_id_or_member_epoch, &req.member_id);
    let mut entries: Vec<(String, i32, i64, String)> = Vec::new();
    let mut topics: Vec<OffsetCommitResponseTopic> = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let name = t.name.0.to_string();
        let partitions = t
            .partitions
            .into_iter()
            .map(|p| {
                let code = match verdict {
                    Err(e) => e.code(),
                    Ok(()) => {
                        entries.push((name.clone(), p.partition_index, p.committed_offset, p.committed_metadata.map(|m| m.to_string()).unwrap_or_default()));
                        0
                    }
                };
                OffsetCommitResponsePartition::default().with_partition_index(p.partition_index).with_error_code(code)
            })
            .collect();
        topics.push(OffsetCommitResponseTopic::default().with_name(t.name).with_partitions(partitions));
    }
    if !entries.is_empty() {
        let b = broker.clone();
        let stored = tokio::task::spawn_blocking(move || {
            let refs: Vec<(&str, i32, i64, &str)> = entries.iter().map(|(t, p, o, m)| (t.as_str(), *p, *o, m.as_str())).collect();
            b.log.offsets().commit(&group, &refs)
        })
        .await;
        let failed = match stored {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(e.to_string()),
        };
        if let Some(e) = failed {
            tracing::error!("offset commit failed: {e}");
            for t in &mut topics {
                for p in &mut t.partitions {
                    p.error_code = ResponseError::KafkaStorageError.code();
                }
            }
        }
    }
    OffsetCommitResponse::default().with_topics(topics)
}

pub fn offset_fetch(broker: &Arc<Broker>, req: OffsetFetchRequest, _version: i16) -> OffsetFetchResponse {
    let group = req.group_id.0.as_str();
    let store = broker.log.offsets();
    let partition = |topic: &str, p: i32| {
        let r = OffsetFetchResponsePartition::default().with_partition_index(p);
        match store.fetch(group, topic, p) {
            Some(c) => r.with_committed_offset(c.offset).with_metadata(Some(StrBytes::from_string(c.metadata))),
            None => r.with_committed_offset(-1).with_metadata(Some(StrBytes::from_static_str(""))),
        }
    };
    let topics: Vec<OffsetFetchResponseTopic> = match req.topics {
        Some(ts) => ts
            .into_iter()
            .map(|t| {
                let parts = t.partition_indexes.iter().map(|p| partition(t.name.0.as_str(), *p)).collect();
                OffsetFetchResponseTopic::default().with_name(t.name).with_partitions(parts)
            })
            .collect(),
        // Null topics (v2+): every partition the group has committed.
        None => {
            let mut by_topic: std::collections::BTreeMap<String, Vec<OffsetFetchResponsePartition>> = Default::default();
            for (topic, p, _) in store.group_offsets(group) {
                let entry = partition(&topic, p);
                by_topic.entry(topic).or_default().push(entry);
            }
            by_topic
                .into_iter()
                .map(|(t, parts)| OffsetFetchResponseTopic::default().with_name(TopicName(StrBytes::from_string(t))).with_partitions(parts))
                .collect()
        }
    };
    OffsetFetchResponse::default().with_topics(topics)
}
