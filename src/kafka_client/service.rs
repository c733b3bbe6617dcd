//! The servers of one service on a cluster: one active server runs the service's queries,
//! the others stand by, until the servers of a service split its queries' work (issue
//! 26). Every server holds a membership in the service's group (`<internal prefix>servers`)
//! for as long as it runs; the group's leader is the active server. A standby becomes
//! active when the active server leaves (SIGTERM: at once) or dies (its session expires,
//! [`DEFAULT_SESSION_TIMEOUT`] unless configured), and restores the queries' state from
//! their changelog topics.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

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
    /// Whether this server is the active one.
    pub active: bool,
    /// Where the active server serves (its advertised URL), when known.
    pub active_url: Option<String>,
}

impl Role {
    fn of(member: &GroupMember) -> Role {
        let active_url = member.leader_data().and_then(|b| String::from_utf8(b.to_vec()).ok()).filter(|u| !u.is_empty());
        Role { active: member.led_members().is_some(), active_url }
    }
}

/// A server's membership in its service; released when the server stops.
pub struct ServiceMembership {
    stop: watch::Sender<bool>,
    role: watch::Receiver<Role>,
    task: JoinHandle<Option<GroupMember>>,
}

impl ServiceMembership {
    /// Joins the service's group, telling it where this server serves (`url`), and waits
    /// while the group rebalances (a killed server's membership expires meanwhile).
    pub async fn join(client: Arc<KafkaClient>, group: &str, session: Duration, url: &str) -> Result<ServiceMembership, ServiceError> {
        let told = Some(bytes::Bytes::from(url.as_bytes().to_vec()));
        let member = GroupMember::join_telling(client, group, &[], session, told).await.map_err(|source| ServiceError::new(group, source))?;
        let (role_tx, role) = watch::channel(Role::of(&member));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(keep(member, stopped, role_tx, session / 3));
        Ok(ServiceMembership { stop, role, task })
    }

    /// This server's role in the service, and its changes.
    pub fn role(&self) -> watch::Receiver<Role> {
        self.role.clone()
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
/// joined or left); says whether this member leads the group.
async fn keep(mut member: GroupMember, mut stopped: watch::Receiver<bool>, role: watch::Sender<Role>, every: Duration) -> Option<GroupMember> {
    loop {
        tokio::select! {
            _ = stopped.changed() => return Some(member),
            _ = tokio::time::sleep(every) => {}
        }
        let rejoined = match member.heartbeat().await {
            Ok(Heartbeat::Steady) => continue,
            Ok(Heartbeat::Rebalance) => member.rejoin().await.map(|_| ()),
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
