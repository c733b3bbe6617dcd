//! The servers of one service on a cluster. Every server holds a membership in the
//! service's group (`<internal prefix>servers`) for as long as it runs; the group's leader
//! hands every member the roster of live servers (their advertised URLs) and its place in
//! it. The servers split the work of every query by partition along the roster; the first
//! server (the leader) also runs the statements. When a server joins, leaves (SIGTERM: at
//! once) or dies (its session expires, [`DEFAULT_SESSION_TIMEOUT`] unless configured), the
//! group rebalances: every server first stops its tasks and says so, then joins again and
//! starts the tasks of its new share, restoring their state from changelog topics.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use super::groups::Planner;
use super::groups::{GroupMember, Heartbeat};
use super::{ClientError, KafkaClient};

/// How long a server that stops answering keeps its place in the group, by default (the
/// least Kafka brokers accept by default: `group.min.session.timeout.ms`).
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(6);

#[derive(Debug, thiserror::Error)]
#[error("cannot join the service's group '{group}' on the cluster: {source}{hint}")]
pub struct ServiceError {
    group: String,
    #[source]
    source: ClientError,
    hint: &'static str,
}

impl ServiceError {
    fn new(group: &str, source: ClientError) -> ServiceError {
        let hint = if source.response_error() == Some(kafka_protocol::ResponseError::InvalidSessionTimeout) {
            "; choose a --kafka-session-timeout-ms within the brokers' group.min.session.timeout.ms and group.max.session.timeout.ms"
        } else {
            ""
        };
        ServiceError { group: group.to_string(), source, hint }
    }
}

/// A server's place in its service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// The group's generation this role is of.
    pub generation: i32,
    /// This server's place in `members` (None: the group's leader handed out no roster).
    pub rank: Option<usize>,
    /// Where every live server of the service serves (advertised URLs), in the group's
    /// order: the first one runs the statements.
    pub members: Vec<String>,
    /// False while the group rebalances: the server stops its tasks and says so
    /// ([`RoleWatch::released`]) before it joins again.
    pub settled: bool,
    /// The leader's plan of which server runs what (see [`Planner`]).
    pub plan: bytes::Bytes,
}

impl Role {
    fn of(member: &GroupMember) -> Role {
        let (rank, members, plan) = match member.roster() {
            Some(r) => (Some(r.rank), r.members.iter().map(|m| String::from_utf8_lossy(m).into_owned()).collect(), r.plan.clone()),
            None => (None, Vec::new(), bytes::Bytes::new()),
        };
        Role { generation: member.generation(), rank, members, settled: true, plan }
    }

    /// Whether this server runs the service's statements (it leads the group).
    pub fn runs_statements(&self) -> bool {
        self.rank == Some(0)
    }

    /// Where the server that runs the statements serves.
    pub fn statements_url(&self) -> Option<&str> {
        self.members.first().map(String::as_str).filter(|u| !u.is_empty())
    }

    /// This server's share of every query's partitions: (its place, how many servers);
    /// None when it has none (no roster, or the group is rebalancing).
    pub fn share(&self) -> Option<(usize, usize)> {
        self.rank.filter(|_| self.settled).map(|r| (r, self.members.len()))
    }
}

/// A server's role and its changes, and where it says it stopped its tasks for a
/// rebalance.
#[derive(Clone)]
pub struct RoleWatch {
    pub role: watch::Receiver<Role>,
    /// The generation whose tasks the server stopped (set after a role that is not
    /// settled was applied).
    pub released: Arc<watch::Sender<i32>>,
}

/// A server's membership in its service; released when the server stops.
pub struct ServiceMembership {
    stop: watch::Sender<bool>,
    watch: RoleWatch,
    task: JoinHandle<Option<GroupMember>>,
}

impl ServiceMembership {
    /// Joins the service's group, telling it where this server serves (`url`), and waits
    /// while the group rebalances (a killed server's membership expires meanwhile).
    /// The leader plans which server runs what with `planner`, given the servers' URLs.
    pub async fn join(client: Arc<KafkaClient>, group: &str, session: Duration, url: &str, planner: Planner) -> Result<ServiceMembership, ServiceError> {
        let told = Some(bytes::Bytes::from(url.as_bytes().to_vec()));
        let member = GroupMember::join_planned(client, group, &[], session, told, Some(planner)).await.map_err(|source| ServiceError::new(group, source))?;
        let (role_tx, role) = watch::channel(Role::of(&member));
        let released = Arc::new(watch::channel(-1).0);
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(keep(member, stopped, role_tx, released.subscribe(), session));
        Ok(ServiceMembership { stop, watch: RoleWatch { role, released }, task })
    }

    /// This server's role in the service, and its changes.
    pub fn role(&self) -> watch::Receiver<Role> {
        self.watch.role.clone()
    }

    /// The role, and where to say the server's tasks stopped for a rebalance.
    pub fn watch(&self) -> RoleWatch {
        self.watch.clone()
    }

    /// Leaves the group, so a standby takes over at once.
    pub async fn release(self) {
        let _ = self.stop.send(true);
        if let Ok(Some(member)) = self.task.await
            && let Err(e) = member.leave().await
        {
            tracing::warn!("could not leave the service's group (it expires): {e}");
        }
    }
}

/// Heartbeats until told to stop, joining again when the group rebalances (a server
/// joined or left) once this server stopped its tasks (or half a session passed); says
/// the new role.
async fn keep(
    mut member: GroupMember,
    mut stopped: watch::Receiver<bool>,
    role: watch::Sender<Role>,
    mut released: watch::Receiver<i32>,
    session: Duration,
) -> Option<GroupMember> {
    let every = session / 3;
    loop {
        tokio::select! {
            _ = stopped.changed() => return Some(member),
            _ = tokio::time::sleep(every) => {}
        }
        let beat = member.heartbeat().await;
        if matches!(beat, Ok(Heartbeat::Steady)) {
            continue;
        }
        // The share this server had may go to another: its tasks stop first (eager
        // rebalancing, as Kafka Streams does), so two servers never run one task.
        let generation = member.generation();
        if role.borrow().settled {
            role.send_modify(|r| r.settled = false);
            let stopped_tasks = released.wait_for(|g| *g >= generation);
            if tokio::time::timeout(session / 2, stopped_tasks).await.is_err() {
                tracing::warn!(group = member.group(), "this server's tasks did not stop in time for the rebalance; joining again anyway");
            }
        }
        let rejoined = match beat {
            Ok(_) => member.rejoin().await.map(|_| ()),
            Err(e) => {
                tracing::warn!(group = member.group(), "the service's group heartbeat failed (joining again): {e}");
                member.reconnect().await.map(|_| ())
            }
        };
        match rejoined {
            Ok(()) => {
                let now = Role::of(&member);
                role.send_if_modified(|r| std::mem::replace(r, now.clone()) != now);
            }
            Err(e) => tracing::warn!(group = member.group(), "could not rejoin the service's group (retrying): {e}"),
        }
    }
}
