//! The server's role in its service on a Kafka cluster, as its group membership says it:
//! the active server runs the queries; a standby follows the command topic every second
//! and takes over (restoring state from changelogs) when it is made active.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::engine::Engine;
use crate::kafka_client::service::Role;

/// How often a standby reads what the active server appended to the command topic.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);

/// Follows the membership's role until the process ends.
pub async fn follow(engine: Arc<Engine>, mut role: watch::Receiver<Role>) {
    loop {
        let wanted = role.borrow_and_update().active;
        let e = engine.clone();
        let done = tokio::task::spawn_blocking(move || match (wanted, e.is_active()) {
            (true, false) => e.activate().map(|_| ()),
            (false, true) => {
                e.deactivate();
                Ok(())
            }
            (false, false) => e.follow_commands().map(|_| ()),
            (true, true) => Ok(()),
        })
        .await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("could not follow the service's command topic (retrying): {e}"),
            Err(e) => tracing::error!("the service role task failed: {e}"),
        }
        tokio::select! {
            changed = role.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(FOLLOW_INTERVAL) => {}
        }
    }
}
