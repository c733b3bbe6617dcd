//! The group coordinator for Kafka's classic consumer-group protocol.
//!
//! A group moves Empty → PreparingRebalance (members join; a new group waits
//! `group.initial.rebalance.delay.ms` for more) → CompletingRebalance (the leader got every
//! member's subscription and computes assignments) → Stable (every member got its
//! assignment from SyncGroup). A member joining, leaving or missing heartbeats for its
//! session timeout sends the group back to PreparingRebalance; members learn of it from
//! REBALANCE_IN_PROGRESS on their heartbeats and rejoin. Members that do not rejoin within
//! the rebalance timeout are dropped. Assignments are opaque bytes computed by the leader.
//!
//! Membership lives in memory (as in Kafka, a restart makes clients rejoin); committed
//! offsets are durable in the log's `OffsetStore`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::join_group_response::{JoinGroupResponse, JoinGroupResponseMember};
use kafka_protocol::messages::sync_group_response::SyncGroupResponse;
use kafka_protocol::protocol::StrBytes;
use parking_lot::Mutex;
use tokio::sync::{oneshot, watch};

use super::Broker;

/// Kafka's `group.min.session.timeout.ms` and `group.max.session.timeout.ms`.
pub const MIN_SESSION_TIMEOUT: Duration = Duration::from_millis(6_000);
pub const MAX_SESSION_TIMEOUT: Duration = Duration::from_millis(1_800_000);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

struct Member {
    /// Join order: the earliest member still present leads.
    seq: u64,
    group_instance_id: Option<StrBytes>,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocols: Vec<(StrBytes, Bytes)>,
    assignment: Bytes,
    last_seen: Instant,
    join_waiter: Option<oneshot::Sender<JoinGroupResponse>>,
    sync_waiter: Option<oneshot::Sender<SyncGroupResponse>>,
}

struct Group {
    state: GroupState,
    generation: i32,
    protocol_type: Option<StrBytes>,
    protocol: Option<StrBytes>,
    leader: Option<StrBytes>,
    members: BTreeMap<StrBytes, Member>,
    /// PreparingRebalance: the join phase may complete (once everyone joined) from here.
    join_ready_at: Instant,
    /// PreparingRebalance: the join phase completes here, without members that did not rejoin.
    rebalance_deadline: Instant,
}

impl Group {
    fn new(now: Instant) -> Group {
        Group {
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            join_ready_at: now,
            rebalance_deadline: now,
        }
    }
}

/// What a JoinGroup or SyncGroup caller gets: an answer now, or one to wait for.
pub enum Reply<T> {
    Now(T),
    Later(oneshot::Receiver<T>),
}

/// One member's join request.
pub struct JoinRequest {
    pub group_id: String,
    pub member_id: StrBytes,
    pub group_instance_id: Option<StrBytes>,
    pub client_id: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: StrBytes,
    pub protocols: Vec<(StrBytes, Bytes)>,
}

pub struct GroupCoordinator {
    groups: Mutex<HashMap<String, Group>>,
    initial_delay: Duration,
    next_seq: AtomicU64,
}

fn join_error(e: ResponseError, member_id: StrBytes) -> JoinGroupResponse {
    JoinGroupResponse::default().with_error_code(e.code()).with_generation_id(-1).with_member_id(member_id)
}

fn sync_error(e: ResponseError) -> SyncGroupResponse {
    SyncGroupResponse::default().with_error_code(e.code())
}

impl GroupCoordinator {
    pub fn new(initial_delay: Duration) -> GroupCoordinator {
        GroupCoordinator { groups: Mutex::new(HashMap::new()), initial_delay, next_seq: AtomicU64::new(1) }
    }

    pub fn join(&self, req: JoinRequest, now: Instant) -> Reply<JoinGroupResponse> {
        if req.group_id.is_empty() {
            return Reply::Now(join_error(ResponseError::InvalidGroupId, req.member_id));
        }
        if req.session_timeout < MIN_SESSION_TIMEOUT || req.session_timeout > MAX_SESSION_TIMEOUT {
            return Reply::Now(join_error(ResponseError::InvalidSessionTimeout, req.member_id));
        }
        let mut groups = self.groups.lock();
        let group = groups.entry(req.group_id.clone()).or_insert_with(|| Group::new(now));
        if !group.members.is_empty() {
            let same_type = group.protocol_type.as_ref().is_none_or(|t| *t == req.protocol_type);
            let common = req.protocols.iter().any(|(name, _)| group.members.values().all(|m| m.protocols.iter().any(|(n, _)| n == name)));
            if !same_type || !common {
                return Reply::Now(join_error(ResponseError::InconsistentGroupProtocol, req.member_id));
            }
        }
        let member_id = if req.member_id.is_empty() {
            let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
            StrBytes::from_string(format!("{}-{nanos:x}-{seq}", if req.client_id.is_empty() { "member" } else { &req.client_id }))
        } else if !group.members.contains_key(&req.member_id) {
            return Reply::Now(join_error(ResponseError::UnknownMemberId, req.member_id));
        } else {
            req.member_id.clone()
        };
        let (tx, rx) = oneshot::channel();
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let member = group.members.entry(member_id.clone()).or_insert_with(|| Member {
            seq,
            group_instance_id: None,
            session_timeout: req.session_timeout,
            rebalance_timeout: req.rebalance_timeout,
            protocols: Vec::new(),
            assignment: Bytes::new(),
            last_seen: now,
            join_waiter: None,
            sync_waiter: None,
        });
        member.group_instance_id = req.group_instance_id;
        member.session_timeout = req.session_timeout;
        member.rebalance_timeout = req.rebalance_timeout;
        member.protocols = req.protocols;
        member.last_seen = now;
        if let Some(old) = member.join_waiter.replace(tx) {
            let _ = old.send(join_error(ResponseError::RebalanceInProgress, member_id.clone()));
        }
        group.protocol_type = Some(req.protocol_type);
        match group.state {
            GroupState::Empty => {
                group.state = GroupState::PreparingRebalance;
                group.join_ready_at = now + self.initial_delay;
                group.rebalance_deadline = now + self.initial_delay.max(Duration::from_millis(1));
            }
            GroupState::Stable | GroupState::CompletingRebalance => start_rebalance(group, now),
            GroupState::PreparingRebalance => {}
        }
        try_complete_join(group, now, false);
        Reply::Later(rx)
    }

    pub fn sync(&self, group_id: &str, generation: i32, member_id: &StrBytes, assignments: Vec<(StrBytes, Bytes)>, now: Instant) -> Reply<SyncGroupResponse> {
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return Reply::Now(sync_error(ResponseError::UnknownMemberId));
        };
        let Some(member) = group.members.get_mut(member_id) else {
            return Reply::Now(sync_error(ResponseError::UnknownMemberId));
        };
        member.last_seen = now;
        if generation != group.generation {
            return Reply::Now(sync_error(ResponseError::IllegalGeneration));
        }
        match group.state {
            GroupState::Empty | GroupState::PreparingRebalance => Reply::Now(sync_error(ResponseError::RebalanceInProgress)),
            GroupState::Stable => Reply::Now(sync_ok(group, member_id)),
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                member.sync_waiter = Some(tx);
                if group.leader.as_ref() == Some(member_id) {
                    let mut given: HashMap<StrBytes, Bytes> = assignments.into_iter().collect();
                    for (id, m) in group.members.iter_mut() {
                        m.assignment = given.remove(id).unwrap_or_default();
                    }
                    group.state = GroupState::Stable;
                    let ids: Vec<StrBytes> = group.members.keys().cloned().collect();
                    for id in ids {
                        let resp = sync_ok(group, &id);
                        if let Some(w) = group.members.get_mut(&id).and_then(|m| m.sync_waiter.take()) {
                            let _ = w.send(resp);
                        }
                    }
                }
                Reply::Later(rx)
            }
        }
    }

    /// The heartbeat's error, if any.
    pub fn heartbeat(&self, group_id: &str, generation: i32, member_id: &StrBytes, now: Instant) -> Option<ResponseError> {
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(group_id) else { return Some(ResponseError::UnknownMemberId) };
        let Some(member) = group.members.get_mut(member_id) else { return Some(ResponseError::UnknownMemberId) };
        member.last_seen = now;
        if generation != group.generation {
            return Some(ResponseError::IllegalGeneration);
        }
        match group.state {
            GroupState::PreparingRebalance => Some(ResponseError::RebalanceInProgress),
            _ => None,
        }
    }

    /// Removes members; per member, the error (UNKNOWN_MEMBER_ID) or none.
    pub fn leave(&self, group_id: &str, member_ids: &[StrBytes], now: Instant) -> Vec<Option<ResponseError>> {
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return member_ids.iter().map(|_| Some(ResponseError::UnknownMemberId)).collect();
        };
        let mut out = Vec::with_capacity(member_ids.len());
        let mut removed = false;
        for id in member_ids {
            match group.members.remove(id) {
                Some(_) => {
                    removed = true;
                    out.push(None);
                }
                None => out.push(Some(ResponseError::UnknownMemberId)),
            }
        }
        if removed {
            member_left(group, now);
        }
        out
    }

    /// Whether an offset commit from this member and generation is accepted.
    pub fn check_commit(&self, group_id: &str, generation: i32, member_id: &StrBytes) -> Result<(), ResponseError> {
        let groups = self.groups.lock();
        let Some(group) = groups.get(group_id) else {
            // A group this coordinator never saw: a standalone consumer committing.
            return if generation < 0 { Ok(()) } else { Err(ResponseError::IllegalGeneration) };
        };
        if generation < 0 && member_id.is_empty() {
            return if group.members.is_empty() { Ok(()) } else { Err(ResponseError::UnknownMemberId) };
        }
        if !group.members.contains_key(member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        if generation != group.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        if group.state == GroupState::CompletingRebalance {
            return Err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    }

    /// Completes join phases whose time has come and expires members that stopped
    /// heartbeating. Called periodically.
    pub fn tick(&self, now: Instant) {
        let mut groups = self.groups.lock();
        for (name, group) in groups.iter_mut() {
            let expired: Vec<StrBytes> = group
                .members
                .iter()
                .filter(|(_, m)| m.join_waiter.is_none() && now.duration_since(m.last_seen) > m.session_timeout)
                .map(|(id, _)| id.clone())
                .collect();
            for id in &expired {
                tracing::info!(group = %name, member = %id.as_str(), "consumer group member's session expired; rebalancing");
                group.members.remove(id);
            }
            if !expired.is_empty() {
                member_left(group, now);
            }
            if group.state == GroupState::PreparingRebalance {
                try_complete_join(group, now, now >= group.rebalance_deadline);
            }
        }
    }

    /// The state, generation and member count of a group.
    #[cfg(test)]
    pub fn describe(&self, group_id: &str) -> Option<(GroupState, i32, usize)> {
        self.groups.lock().get(group_id).map(|g| (g.state, g.generation, g.members.len()))
    }
}

fn sync_ok(group: &Group, member_id: &StrBytes) -> SyncGroupResponse {
    SyncGroupResponse::default()
        .with_protocol_type(group.protocol_type.clone())
        .with_protocol_name(group.protocol.clone())
        .with_assignment(group.members.get(member_id).map(|m| m.assignment.clone()).unwrap_or_default())
}

/// Sends a Stable or CompletingRebalance group back to PreparingRebalance.
fn start_rebalance(group: &mut Group, now: Instant) {
    for m in group.members.values_mut() {
        if let Some(w) = m.sync_waiter.take() {
            let _ = w.send(sync_error(ResponseError::RebalanceInProgress));
        }
    }
    let timeout = group.members.values().map(|m| m.rebalance_timeout).max().unwrap_or(Duration::ZERO);
    group.state = GroupState::PreparingRebalance;
    group.join_ready_at = now;
    group.rebalance_deadline = now + timeout;
}

fn member_left(group: &mut Group, now: Instant) {
    match group.state {
        GroupState::Stable | GroupState::CompletingRebalance => start_rebalance(group, now),
        GroupState::PreparingRebalance | GroupState::Empty => {}
    }
    if group.members.is_empty() {
        group.state = GroupState::PreparingRebalance;
        try_complete_join(group, now, true);
    } else if group.state == GroupState::PreparingRebalance {
        try_complete_join(group, now, false);
    }
}

/// Ends the join phase when every member has (re)joined and any initial delay is over, or
/// when `forced` (the rebalance deadline passed: members that did not rejoin are dropped).
fn try_complete_join(group: &mut Group, now: Instant, forced: bool) {
    if group.state != GroupState::PreparingRebalance {
        return;
    }
    let all_joined = group.members.values().all(|m| m.join_waiter.is_some());
    let ready = all_joined && now >= group.join_ready_at;
    if !forced && !ready {
        return;
    }
    group.members.retain(|_, m| m.join_waiter.is_some());
    group.generation += 1;
    if group.members.is_empty() {
        group.state = GroupState::Empty;
        group.protocol = None;
        group.leader = None;
        return;
    }
    // Each member votes for its most preferred protocol that every member supports.
    let supported_by_all = |name: &StrBytes| group.members.values().all(|m| m.protocols.iter().any(|(n, _)| n == name));
    let mut votes: Vec<(StrBytes, usize)> = Vec::new();
    for m in group.members.values() {
        if let Some((name, _)) = m.protocols.iter().find(|(n, _)| supported_by_all(n)) {
            match votes.iter_mut().find(|(n, _)| n == name) {
                Some(v) => v.1 += 1,
                None => votes.push((name.clone(), 1)),
            }
        }
    }
    let protocol = votes.iter().max_by_key(|(_, n)| *n).map(|(p, _)| p.clone());
    let leader = match &group.leader {
        Some(l) if group.members.contains_key(l) => l.clone(),
        _ => group.members.iter().min_by_key(|(_, m)| m.seq).map(|(id, _)| id.clone()).unwrap_or_default(),
    };
    group.protocol = protocol.clone();
    group.leader = Some(leader.clone());
    group.state = GroupState::CompletingRebalance;
    let metadata_of = |m: &Member| protocol.as_ref().and_then(|p| m.protocols.iter().find(|(n, _)| n == p)).map(|(_, md)| md.clone()).unwrap_or_default();
    let all: Vec<JoinGroupResponseMember> = group
        .members
        .iter()
        .map(|(id, m)| {
            JoinGroupResponseMember::default().with_member_id(id.clone()).with_group_instance_id(m.group_instance_id.clone()).with_metadata(metadata_of(m))
        })
        .collect();
    let (generation, protocol_type) = (group.generation, group.protocol_type.clone());
    for (id, m) in group.members.iter_mut() {
        m.last_seen = now;
        let Some(w) = m.join_waiter.take() else { continue };
        let resp = JoinGroupResponse::default()
            .with_generation_id(generation)
            .with_protocol_type(protocol_type.clone())
            .with_protocol_name(protocol.clone())
            .with_leader(leader.clone())
            .with_member_id(id.clone())
            .with_members(if *id == leader { all.clone() } else { Vec::new() });
        let _ = w.send(resp);
    }
}

/// Drives the group coordinator's timers, and the transaction timeouts, until shutdown.
pub async fn run_timers(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(Duration::from_millis(100));
    let mut ticks: u64 = 0;
    loop {
        tokio::select! {
            _ = every.tick() => {
                broker.groups.tick(Instant::now());
                ticks += 1;
                // Once a second: transactions past their timeout (writes markers: blocking).
                if ticks.is_multiple_of(10) {
                    let b = broker.clone();
                    let _ = tokio::task::spawn_blocking(move || b.txns.abort_expired(&b.log)).await;
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(member: &str) -> JoinRequest {
        JoinRequest {
            group_id: "g".into(),
            member_id: StrBytes::from_string(member.to_string()),
            group_instance_id: None,
            client_id: "c".into(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(10),
            protocol_type: StrBytes::from_static_str("consumer"),
            protocols: vec![(StrBytes::from_static_str("range"), Bytes::from_static(b"meta"))],
        }
    }

    /// The answer, which must be available now (the join or sync phase completed).
    fn answered<T>(r: Reply<T>) -> T {
        match r {
            Reply::Now(x) => x,
            Reply::Later(mut rx) => rx.try_recv().expect("answered"),
        }
    }

    fn waiting<T>(r: Reply<T>) -> oneshot::Receiver<T> {
        match r {
            Reply::Now(_) => panic!("answered before the phase completed"),
            Reply::Later(rx) => rx,
        }
    }

    #[test]
    fn two_members_join_sync_and_rebalance_when_one_leaves() {
        let c = GroupCoordinator::new(Duration::ZERO);
        let t0 = Instant::now();
        let a = answered(c.join(req(""), t0));
        assert_eq!((a.error_code, a.generation_id), (0, 1));
        assert_eq!(a.leader, a.member_id, "the only member leads");
        // A second member joins: the group rebalances; the first learns it from its heartbeat.
        let mut b_join = waiting(c.join(req(""), t0));
        assert_eq!(c.heartbeat("g", 1, &a.member_id, t0), Some(ResponseError::RebalanceInProgress));
        let a2 = answered(c.join(req(a.member_id.as_str()), t0));
        let b = b_join.try_recv().expect("second member answered");
        assert_eq!((a2.generation_id, b.generation_id), (2, 2));
        assert_eq!(a2.members.len(), 2, "the leader sees every member");
        assert!(b.members.is_empty());
        // Followers wait for the leader's assignments.
        let mut b_sync = waiting(c.sync("g", 2, &b.member_id, vec![], t0));
        assert!(b_sync.try_recv().is_err());
        let assignments = vec![(a2.member_id.clone(), Bytes::from_static(b"A")), (b.member_id.clone(), Bytes::from_static(b"B"))];
        let a_sync = answered(c.sync("g", 2, &a2.member_id, assignments, t0));
        assert_eq!(a_sync.assignment, Bytes::from_static(b"A"));
        assert_eq!(b_sync.try_recv().expect("sync").assignment, Bytes::from_static(b"B"));
        assert_eq!(c.describe("g"), Some((GroupState::Stable, 2, 2)));
        assert!(c.check_commit("g", 2, &b.member_id).is_ok());
        assert_eq!(c.check_commit("g", 1, &b.member_id), Err(ResponseError::IllegalGeneration));
        // The leader leaves: the follower rejoins alone and becomes leader.
        assert_eq!(c.leave("g", std::slice::from_ref(&a2.member_id), t0), vec![None]);
        assert_eq!(c.heartbeat("g", 2, &b.member_id, t0), Some(ResponseError::RebalanceInProgress));
        let b3 = answered(c.join(req(b.member_id.as_str()), t0));
        assert_eq!((b3.generation_id, b3.leader.clone()), (3, b.member_id.clone()));
    }

    #[test]
    fn a_member_that_stops_heartbeating_is_dropped_after_its_session_timeout() {
        let c = GroupCoordinator::new(Duration::ZERO);
        let t0 = Instant::now();
        let a = answered(c.join(req(""), t0));
        let synced = answered(c.sync("g", 1, &a.member_id, vec![(a.member_id.clone(), Bytes::from_static(b"A"))], t0));
        assert_eq!(synced.assignment, Bytes::from_static(b"A"));
        assert_eq!(c.describe("g"), Some((GroupState::Stable, 1, 1)));
        let t9 = t0 + Duration::from_secs(9);
        c.tick(t9);
        assert_eq!(c.heartbeat("g", 1, &a.member_id, t9), None, "a heartbeat within the session keeps the member");
        c.tick(t9 + Duration::from_secs(11));
        assert_eq!(c.describe("g"), Some((GroupState::Empty, 2, 0)));
        assert_eq!(c.heartbeat("g", 1, &a.member_id, t9), Some(ResponseError::UnknownMemberId));
    }

    #[test]
    fn a_new_group_waits_the_initial_delay_for_more_members() {
        let c = GroupCoordinator::new(Duration::from_secs(3));
        let t0 = Instant::now();
        let mut a = waiting(c.join(req(""), t0));
        let mut b = waiting(c.join(req(""), t0));
        c.tick(t0 + Duration::from_secs(1));
        assert_eq!(c.describe("g").map(|d| d.0), Some(GroupState::PreparingRebalance));
        c.tick(t0 + Duration::from_secs(3));
        let (a, b) = (a.try_recv().expect("a"), b.try_recv().expect("b"));
        assert_eq!((a.generation_id, b.generation_id), (1, 1));
        assert_eq!(a.members.len() + b.members.len(), 2, "one leader saw both members");
    }

    #[test]
    fn members_that_do_not_rejoin_are_dropped_at_the_rebalance_deadline() {
        let c = GroupCoordinator::new(Duration::ZERO);
        let t0 = Instant::now();
        let a = answered(c.join(req(""), t0));
        let _b = waiting(c.join(req(""), t0));
        // a never rejoins; after the rebalance timeout (10 s) b gets a generation alone.
        c.tick(t0 + Duration::from_secs(5));
        assert_eq!(c.describe("g").map(|d| d.0), Some(GroupState::PreparingRebalance));
        c.tick(t0 + Duration::from_secs(10));
        assert_eq!(c.describe("g"), Some((GroupState::CompletingRebalance, 2, 1)));
        assert_eq!(c.heartbeat("g", 1, &a.member_id, t0), Some(ResponseError::UnknownMemberId));
    }

    #[test]
    fn bad_joins_are_refused_with_the_error_clients_act_on() {
        let c = GroupCoordinator::new(Duration::ZERO);
        let mut r = req("");
        r.session_timeout = Duration::from_millis(100);
        assert_eq!(answered(c.join(r, Instant::now())).error_code, ResponseError::InvalidSessionTimeout.code());
        assert_eq!(answered(c.join(req("nobody"), Instant::now())).error_code, ResponseError::UnknownMemberId.code());
    }
}
