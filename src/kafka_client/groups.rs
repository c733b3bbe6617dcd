//! Consumer-group membership through the group coordinator, as Kafka's consumers do it:
//! FindCoordinator, then JoinGroup (with the member-id handshake of version 4 on) and
//! SyncGroup, the member elected leader computing the assignment with the range assignor
//! in Kafka's `consumer` protocol encoding (so Kafka's tools show the group's members and
//! partitions); Heartbeat says when a rebalance asks members to join again; OffsetCommit and
//! OffsetFetch keep the group's positions; LeaveGroup hands partitions back at once.
//! This is how several Eddy servers will split a query's partitions.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::consumer_protocol_assignment::{ConsumerProtocolAssignment, TopicPartition as AssignedPartitions};
use kafka_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
use kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::heartbeat_request::HeartbeatRequest;
use kafka_protocol::messages::join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol};
use kafka_protocol::messages::leave_group_request::{LeaveGroupRequest, MemberIdentity};
use kafka_protocol::messages::list_groups_request::ListGroupsRequest;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequest, OffsetFetchRequestTopic};
use kafka_protocol::messages::sync_group_request::{SyncGroupRequest, SyncGroupRequestAssignment};
use kafka_protocol::messages::{GroupId, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::{BrokerConnection, ClientError, KafkaClient, topic_name};

/// The version of the `consumer` protocol's subscription and assignment written.
const CONSUMER_PROTOCOL_VERSION: i16 = 0;

/// Partitions of topics, by topic.
pub type Assignment = BTreeMap<String, Vec<i32>>;

/// What a heartbeat learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    /// The member keeps its partitions.
    Steady,
    /// The group is rebalancing: join again ([`GroupMember::rejoin`]).
    Rebalance,
}

/// A member of a consumer group.
pub struct GroupMember {
    client: Arc<KafkaClient>,
    group: String,
    topics: Vec<String>,
    coordinator: Arc<BrokerConnection>,
    member_id: String,
    generation: i32,
    session_timeout: Duration,
    assignment: Assignment,
    /// How many members the group had at the last join, when this member leads it (only
    /// the leader learns the members).
    led_members: Option<usize>,
    /// What this member tells the group (the subscription's user data); the leader hands
    /// every member the group's [`Roster`] in their assignments.
    user_data: Option<Bytes>,
    /// The group's members and this member's place among them, from the last assignment.
    roster: Option<Roster>,
    /// What the leader adds to the roster for every member (see [`Planner`]).
    planner: Option<Planner>,
}

/// Computes a plan the leader hands every member with the roster (which member does
/// what), from the members' user data in roster order and the last roster's members and
/// plan (None: this member got no roster yet).
pub type Planner = Arc<dyn Fn(&[Bytes], Option<(&[Bytes], &[u8])>) -> Bytes + Send + Sync>;

/// Every member of a group in one order — the leader first, the others by member id —
/// each with what it told the group, and where this member stands: the leader computes it
/// and hands it to every member in their assignments, so all agree on it for a generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roster {
    /// This member's place in `members`.
    pub rank: usize,
    /// What each member told the group (its subscription's user data), in order.
    pub members: Vec<Bytes>,
    /// The leader's plan for the members (empty without a [`Planner`]).
    pub plan: Bytes,
}

impl Roster {
    fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        out.put_u32(self.rank as u32);
        out.put_u32(self.members.len() as u32);
        for m in &self.members {
            out.put_u32(m.len() as u32);
            out.put_slice(m);
        }
        out.put_u32(self.plan.len() as u32);
        out.put_slice(&self.plan);
        out.freeze()
    }

    /// None when the bytes are not a roster (a member of another kind leads the group).
    fn decode(mut bytes: Bytes) -> Option<Roster> {
        let take_u32 = |b: &mut Bytes| (b.remaining() >= 4).then(|| b.get_u32() as usize);
        let rank = take_u32(&mut bytes)?;
        let count = take_u32(&mut bytes)?;
        let mut members = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            let len = take_u32(&mut bytes)?;
            if bytes.remaining() < len {
                return None;
            }
            members.push(bytes.split_to(len));
        }
        // A roster without a plan (from an earlier version) has none.
        let plan = match take_u32(&mut bytes) {
            Some(len) if bytes.remaining() >= len => bytes.split_to(len),
            Some(_) => return None,
            None => Bytes::new(),
        };
        (rank < members.len() && !bytes.has_remaining()).then_some(Roster { rank, members, plan })
    }
}

/// OffsetFetch of a group's positions of a topic's partitions at its coordinator.
async fn offset_fetch(coordinator: &BrokerConnection, group: &str, topic: &str, partitions: &[i32]) -> Result<Vec<(i32, Option<i64>)>, ClientError> {
    let wanted = OffsetFetchRequestTopic::default().with_name(TopicName(StrBytes::from_string(topic.to_string()))).with_partition_indexes(partitions.to_vec());
    let answer = coordinator.send(&OffsetFetchRequest::default().with_group_id(group_id(group)).with_topics(Some(vec![wanted]))).await?;
    if answer.error_code != 0 {
        return Err(ClientError::broker("OffsetFetch", answer.error_code, coordinator.addr()));
    }
    Ok(answer.topics.iter().flat_map(|t| t.partitions.iter()).map(|p| (p.partition_index, Some(p.committed_offset).filter(|o| *o >= 0))).collect())
}

fn group_id(g: &str) -> GroupId {
    GroupId(StrBytes::from_string(g.to_string()))
}

fn encoded(what: &str, e: impl std::fmt::Display) -> ClientError {
    ClientError::protocol("JoinGroup", format!("cannot encode the {what}: {e}"))
}

impl GroupMember {
    /// Joins `group` subscribed to `topics` and waits for its partitions.
    pub async fn join(client: Arc<KafkaClient>, group: &str, topics: &[&str], session_timeout: Duration) -> Result<GroupMember, ClientError> {
        GroupMember::join_telling(client, group, topics, session_timeout, None).await
    }

    /// [`GroupMember::join`] telling the group `user_data` (the leader passes its own on to
    /// every member: [`GroupMember::leader_data`]).
    pub async fn join_telling(
        client: Arc<KafkaClient>,
        group: &str,
        topics: &[&str],
        session_timeout: Duration,
        user_data: Option<Bytes>,
    ) -> Result<GroupMember, ClientError> {
        GroupMember::join_planned(client, group, topics, session_timeout, user_data, None).await
    }

    /// [`GroupMember::join_telling`] with the plan a leader adds to the roster.
    pub async fn join_planned(
        client: Arc<KafkaClient>,
        group: &str,
        topics: &[&str],
        session_timeout: Duration,
        user_data: Option<Bytes>,
        planner: Option<Planner>,
    ) -> Result<GroupMember, ClientError> {
        let coordinator = client.coordinator(group).await?;
        let mut member = GroupMember {
            client,
            group: group.to_string(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            coordinator,
            member_id: String::new(),
            generation: -1,
            session_timeout,
            assignment: Assignment::new(),
            led_members: None,
            user_data,
            roster: None,
            planner,
        };
        member.rejoin().await?;
        Ok(member)
    }

    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    pub fn generation(&self) -> i32 {
        self.generation
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    /// The member's connection to its group coordinator.
    pub fn coordinator_connection(&self) -> &Arc<BrokerConnection> {
        &self.coordinator
    }

    /// When this member leads the group: how many members it had at the last join.
    pub fn led_members(&self) -> Option<usize> {
        self.led_members
    }

    /// The group's members and this member's place among them, as the last assignment
    /// carried them (None when the leader handed out no roster).
    pub fn roster(&self) -> Option<&Roster> {
        self.roster.as_ref()
    }

    /// The partitions this member holds.
    pub fn assignment(&self) -> &Assignment {
        &self.assignment
    }

    /// Finds the group's coordinator again (after its connection failed: the broker
    /// restarted, or the coordinator moved) and joins again.
    pub async fn reconnect(&mut self) -> Result<&Assignment, ClientError> {
        self.coordinator = self.client.coordinator(&self.group).await?;
        self.rejoin().await
    }

    /// Joins the group again (after a rebalance began) and waits for the new assignment.
    pub async fn rejoin(&mut self) -> Result<&Assignment, ClientError> {
        let subscription = ConsumerProtocolSubscription::default()
            .with_topics(self.topics.iter().map(|t| StrBytes::from_string(t.clone())).collect())
            .with_user_data(self.user_data.clone());
        let mut metadata = BytesMut::new();
        metadata.put_i16(CONSUMER_PROTOCOL_VERSION);
        subscription.encode(&mut metadata, CONSUMER_PROTOCOL_VERSION).map_err(|e| encoded("subscription", e))?;
        let metadata = metadata.freeze();
        let session_ms = self.session_timeout.as_millis().min(i32::MAX as u128) as i32;
        let joined = loop {
            let request = JoinGroupRequest::default()
                .with_group_id(group_id(&self.group))
                .with_session_timeout_ms(session_ms)
                .with_rebalance_timeout_ms(session_ms)
                .with_member_id(StrBytes::from_string(self.member_id.clone()))
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default().with_name(StrBytes::from_static_str("range")).with_metadata(metadata.clone())]);
            let answer = self.coordinator.send(&request).await?;
            match ResponseError::try_from_code(answer.error_code) {
                None => break answer,
                // Version 4 on: the first join only learns the member id to join with.
                Some(ResponseError::MemberIdRequired) => self.member_id = answer.member_id.to_string(),
                Some(ResponseError::UnknownMemberId) => self.member_id.clear(),
                Some(_) => return Err(ClientError::broker("JoinGroup", answer.error_code, self.coordinator.addr())),
            }
        };
        self.member_id = joined.member_id.to_string();
        self.generation = joined.generation_id;
        self.led_members = (joined.leader == joined.member_id).then_some(joined.members.len());
        let assignments = if joined.leader == joined.member_id {
            let mut subscribed = Vec::new();
            for m in &joined.members {
                let mut bytes = m.metadata.clone();
                if bytes.remaining() < 2 {
                    return Err(ClientError::protocol("JoinGroup", "a member's subscription is empty".into()));
                }
                let version = bytes.get_i16().clamp(0, 3);
                let sub = ConsumerProtocolSubscription::decode(&mut bytes, version)
                    .map_err(|e| ClientError::protocol("JoinGroup", format!("a member's subscription: {e}")))?;
                subscribed.push((m.member_id.to_string(), sub.topics.iter().map(|t| t.to_string()).collect::<Vec<_>>(), sub.user_data.unwrap_or_default()));
            }
            self.assign(&subscribed).await?
        } else {
            Vec::new()
        };
        let request = SyncGroupRequest::default()
            .with_group_id(group_id(&self.group))
            .with_generation_id(self.generation)
            .with_member_id(StrBytes::from_string(self.member_id.clone()))
            .with_assignments(assignments);
        let synced = self.coordinator.send(&request).await?;
        if synced.error_code != 0 {
            return Err(ClientError::broker("SyncGroup", synced.error_code, self.coordinator.addr()));
        }
        let (assignment, roster) = decode_assignment(synced.assignment)?;
        self.assignment = assignment;
        self.roster = roster.and_then(Roster::decode);
        Ok(&self.assignment)
    }

    /// The range assignor: each topic's partitions in order, in contiguous runs, to the
    /// members subscribed to it ordered by member id (the first ones one more when the
    /// partitions do not divide evenly); every member gets the group's [`Roster`] too.
    async fn assign(&self, members: &[(String, Vec<String>, Bytes)]) -> Result<Vec<SyncGroupRequestAssignment>, ClientError> {
        let mut plan: BTreeMap<&str, Assignment> = members.iter().map(|(m, _, _)| (m.as_str(), Assignment::new())).collect();
        let mut order: Vec<&(String, Vec<String>, Bytes)> = members.iter().collect();
        order.sort_by_key(|(m, _, _)| (*m != self.member_id, m.clone()));
        let told: Vec<Bytes> = order.iter().map(|(_, _, data)| data.clone()).collect();
        let roles = match &self.planner {
            Some(planner) => planner(&told, self.roster.as_ref().map(|r| (&r.members[..], &r.plan[..]))),
            None => Bytes::new(),
        };
        let roster_of = |member: &str| {
            let rank = order.iter().position(|(m, _, _)| m == member).unwrap_or(0);
            Roster { rank, members: told.clone(), plan: roles.clone() }.encode()
        };
        let mut topics: Vec<&String> = members.iter().flat_map(|(_, ts, _)| ts.iter()).collect();
        topics.sort();
        topics.dedup();
        for topic in topics {
            let count = match self.client.partitions(topic).await {
                Ok(n) => n,
                // A topic that does not exist yet has nothing to assign.
                Err(ClientError::UnknownTopic(_)) => continue,
                Err(e) => return Err(e),
            };
            let mut takers: Vec<&str> = members.iter().filter(|(_, ts, _)| ts.contains(topic)).map(|(m, _, _)| m.as_str()).collect();
            takers.sort();
            let (each, extra) = (count as usize / takers.len().max(1), count as usize % takers.len().max(1));
            let mut next = 0i32;
            for (i, m) in takers.iter().enumerate() {
                let n = (each + usize::from(i < extra)) as i32;
                if n > 0 {
                    plan.entry(m).or_default().insert(topic.clone(), (next..next + n).collect());
                }
                next += n;
            }
        }
        plan.into_iter()
            .map(|(member, parts)| {
                let assigned = parts.into_iter().map(|(t, ps)| AssignedPartitions::default().with_topic(topic_name(&t)).with_partitions(ps)).collect();
                let mut bytes = BytesMut::new();
                bytes.put_i16(CONSUMER_PROTOCOL_VERSION);
                ConsumerProtocolAssignment::default()
                    .with_assigned_partitions(assigned)
                    .with_user_data(Some(roster_of(member)))
                    .encode(&mut bytes, CONSUMER_PROTOCOL_VERSION)
                    .map_err(|e| encoded("assignment", e))?;
                Ok(SyncGroupRequestAssignment::default().with_member_id(StrBytes::from_string(member.to_string())).with_assignment(bytes.freeze()))
            })
            .collect()
    }

    /// Tells the coordinator this member is alive; whether the group is rebalancing.
    pub async fn heartbeat(&self) -> Result<Heartbeat, ClientError> {
        let request = HeartbeatRequest::default()
            .with_group_id(group_id(&self.group))
            .with_generation_id(self.generation)
            .with_member_id(StrBytes::from_string(self.member_id.clone()));
        let answer = self.coordinator.send(&request).await?;
        match ResponseError::try_from_code(answer.error_code) {
            None => Ok(Heartbeat::Steady),
            Some(ResponseError::RebalanceInProgress | ResponseError::IllegalGeneration) => Ok(Heartbeat::Rebalance),
            Some(_) => Err(ClientError::broker("Heartbeat", answer.error_code, self.coordinator.addr())),
        }
    }

    /// Commits positions (topic, partition, next offset to read) for this generation.
    pub async fn commit(&self, offsets: &[(&str, i32, i64)]) -> Result<(), ClientError> {
        let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for (t, p, o) in offsets {
            by_topic.entry(t).or_default().push(OffsetCommitRequestPartition::default().with_partition_index(*p).with_committed_offset(*o));
        }
        let topics = by_topic.into_iter().map(|(t, ps)| OffsetCommitRequestTopic::default().with_name(topic_name(t)).with_partitions(ps)).collect();
        let request = OffsetCommitRequest::default()
            .with_group_id(group_id(&self.group))
            .with_generation_id_or_member_epoch(self.generation)
            .with_member_id(StrBytes::from_string(self.member_id.clone()))
            .with_topics(topics);
        let answer = self.coordinator.send(&request).await?;
        for p in answer.topics.iter().flat_map(|t| t.partitions.iter()) {
            if p.error_code != 0 {
                return Err(ClientError::broker("OffsetCommit", p.error_code, self.coordinator.addr()));
            }
        }
        Ok(())
    }

    /// The group's committed positions of a topic's partitions (None: none committed).
    pub async fn committed(&self, topic: &str, partitions: &[i32]) -> Result<Vec<(i32, Option<i64>)>, ClientError> {
        offset_fetch(&self.coordinator, &self.group, topic, partitions).await
    }

    /// Leaves the group: its partitions go to the others at once.
    pub async fn leave(self) -> Result<(), ClientError> {
        let me = MemberIdentity::default().with_member_id(StrBytes::from_string(self.member_id.clone()));
        let answer = self.coordinator.send(&LeaveGroupRequest::default().with_group_id(group_id(&self.group)).with_members(vec![me])).await?;
        if answer.error_code != 0 {
            return Err(ClientError::broker("LeaveGroup", answer.error_code, self.coordinator.addr()));
        }
        Ok(())
    }
}

/// A member's assignment: its partitions, and the user data the leader added.
fn decode_assignment(mut bytes: Bytes) -> Result<(Assignment, Option<Bytes>), ClientError> {
    if bytes.is_empty() {
        return Ok((Assignment::new(), None));
    }
    if bytes.remaining() < 2 {
        return Err(ClientError::protocol("SyncGroup", "the assignment is cut short".into()));
    }
    let version = bytes.get_i16();
    let assignment = ConsumerProtocolAssignment::decode(&mut bytes, version.clamp(0, 3))
        .map_err(|e| ClientError::protocol("SyncGroup", format!("the assignment does not decode: {e}")))?;
    let partitions = assignment.assigned_partitions.into_iter().map(|t| (t.topic.0.to_string(), t.partitions)).collect();
    Ok((partitions, assignment.user_data))
}

impl KafkaClient {
    /// A connection of its own to the coordinator of `group`: a JoinGroup waits there for
    /// the whole rebalance, which must not hold up other requests to that broker.
    pub async fn coordinator(&self, group: &str) -> Result<Arc<BrokerConnection>, ClientError> {
        let conn = self.any_broker().await?;
        let answer = conn.send(&FindCoordinatorRequest::default().with_key(StrBytes::from_string(group.to_string())).with_key_type(0)).await?;
        if answer.error_code != 0 {
            return Err(ClientError::broker("FindCoordinator", answer.error_code, conn.addr()));
        }
        let addr = format!("{}:{}", answer.host, answer.port);
        Ok(Arc::new(BrokerConnection::connect_securely(&addr, &self.client_id, self.timeout, &self.security).await?))
    }

    /// A group's committed positions of a topic's partitions, whether or not it has
    /// members (None: none committed).
    pub async fn group_offsets(&self, group: &str, topic: &str, partitions: &[i32]) -> Result<Vec<(i32, Option<i64>)>, ClientError> {
        let conn = self.coordinator(group).await?;
        offset_fetch(&conn, group, topic, partitions).await
    }

    /// Every consumer group of the cluster (each broker lists those it coordinates).
    pub async fn list_groups(&self) -> Result<Vec<String>, ClientError> {
        let mut groups = Vec::new();
        let brokers = self.brokers();
        for (_, addr) in brokers {
            let conn = self.connection(&addr).await?;
            let answer = conn.send(&ListGroupsRequest::default()).await?;
            if answer.error_code != 0 {
                return Err(ClientError::broker("ListGroups", answer.error_code, conn.addr()));
            }
            groups.extend(answer.groups.into_iter().map(|g| g.group_id.0.to_string()));
        }
        Ok(groups)
    }

    /// Deletes consumer groups (none may have members); a group already gone is no error.
    pub async fn delete_groups(&self, groups: &[String]) -> Result<(), ClientError> {
        for group in groups {
            let conn = self.coordinator(group).await?;
            let answer = conn.send(&DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)])).await?;
            let gone = ResponseError::GroupIdNotFound.code();
            if let Some(code) = answer.results.iter().map(|r| r.error_code).find(|c| *c != 0 && *c != gone) {
                return Err(ClientError::broker("DeleteGroups", code, conn.addr()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_roster_reads_back_as_written_and_garbage_is_no_roster() {
        let members = vec![Bytes::from_static(b"http://a:1"), Bytes::from_static(b"http://b:2"), Bytes::new()];
        let roster = Roster { rank: 1, members: members.clone(), plan: Bytes::from_static(b"plan") };
        assert_eq!(Roster::decode(roster.encode()), Some(roster.clone()));
        let bytes = roster.encode();
        assert_eq!(Roster::decode(bytes.slice(..bytes.len() - 1)), None, "cut short");
        assert_eq!(Roster::decode(Bytes::from_static(b"http://a:1")), None, "a URL, as a server of an earlier version hands out");
        // A roster of the version before plans: no plan.
        let unplanned = Roster { rank: 1, members, plan: Bytes::new() };
        let encoded = unplanned.encode();
        assert_eq!(Roster::decode(encoded.slice(..encoded.len() - 4)), Some(unplanned));
        let out_of_place = Roster { rank: 3, members: roster.members.clone(), plan: Bytes::new() };
        assert_eq!(Roster::decode(out_of_place.encode()), None);
        assert_eq!(Roster::decode(Bytes::from_static(&[0, 0, 0, 0, 255, 255, 255, 255])), None, "a huge count of nothing");
    }
}
