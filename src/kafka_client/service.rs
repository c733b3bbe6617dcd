//! One running server per service on a cluster, until the servers of a service split its
//! queries' work (issue 26): each server holds a membership in the service's group
//! (`<internal prefix>servers`) for as long as it runs. A server that finds another member
//! there — one that leads the group — is refused, so two servers never run the same
//! queries and write the same sinks. A server killed without leaving holds the group until
//! its session times out, so its restart waits for that (at most the session timeout).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::groups::{GroupMember, Heartbeat};
use super::{ClientError, KafkaClient};

/// How long a server that stops answering keeps its place in the group.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(
        "another Eddy server of this service already runs on the cluster (group '{group}' has {members} members); \
            several servers of one service are not supported yet: stop the other server, or give this one another --service-id"
    )]
    Taken { group: String, members: usize },
    #[error("cannot join the service's group '{group}' on the cluster: {source}")]
    Join {
        group: String,
        #[source]
        source: ClientError,
    },
}

/// The membership a running server holds; released when the server stops.
pub struct ServiceLease {
    stop: watch::Sender<bool>,
    task: JoinHandle<Option<GroupMember>>,
}

impl ServiceLease {
    /// Joins the service's group; refused when another server is in it. Waits while the
    /// group rebalances (a killed server's membership expires meanwhile).
    pub async fn acquire(client: Arc<KafkaClient>, group: &str) -> Result<ServiceLease, ServiceError> {
        let member = GroupMember::join(client, group, &[], SESSION_TIMEOUT).await.map_err(|source| ServiceError::Join { group: group.to_string(), source })?;
        match member.led_members() {
            Some(1) => {}
            other => {
                let members = other.unwrap_or(2);
                if let Err(e) = member.leave().await {
                    tracing::warn!(group, "could not leave the service's group: {e}");
                }
                return Err(ServiceError::Taken { group: group.to_string(), members });
            }
        }
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(keep(member, stopped));
        Ok(ServiceLease { stop, task })
    }

    /// Leaves the group, so the next server of the service starts at once.
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
/// trying to start, which then leaves).
async fn keep(mut member: GroupMember, mut stopped: watch::Receiver<bool>) -> Option<GroupMember> {
    loop {
        tokio::select! {
            _ = stopped.changed() => return Some(member),
            _ = tokio::time::sleep(SESSION_TIMEOUT / 4) => {}
        }
        match member.heartbeat().await {
            Ok(Heartbeat::Steady) => {}
            Ok(Heartbeat::Rebalance) => {
                if let Err(e) = member.rejoin().await {
                    tracing::warn!(group = member.group(), "could not rejoin the service's group (retrying): {e}");
                } else if member.led_members().is_none() {
                    tracing::error!(group = member.group(), "another server now leads this service's group; two servers may be running one service's queries");
                }
            }
            Err(e) => {
                tracing::warn!(group = member.group(), "the service's group heartbeat failed (joining again): {e}");
                if let Err(e) = member.reconnect().await {
                    tracing::warn!(group = member.group(), "could not rejoin the service's group (retrying): {e}");
                } else if member.led_members().is_none() {
                    tracing::error!(group = member.group(), "another server now leads this service's group; two servers may be running one service's queries");
                }
            }
        }
    }
}
