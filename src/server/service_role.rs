//! The server's part in its service on a Kafka cluster, as its group membership says it:
//! which partitions of the queries it runs, and whether it runs the statements. Between
//! changes it follows the command topic and the other servers' changelogs every second.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::engine::Engine;
use crate::exec::Share;
use crate::exec::placement::Placement;
use crate::kafka_client::service::{Planner, Role, RoleWatch};

/// How often a server reads what was appended to the command topic and to the changelogs
/// of the partitions other servers run.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);

/// The partitions a role gives this server: as its service's placement says (the
/// leader's plan), or `p mod servers` when the leader made none.
pub fn share_of(role: &Role) -> Share {
    let Some((rank, count)) = role.share() else { return Share::Nothing };
    match Placement::decode(&role.plan, count) {
        Some(placement) => Share::placed(rank, count, Arc::new(placement)),
        None => Share::of(rank, count),
    }
}

/// The leader's plan: which server runs each partition and which keep `standbys` copies,
/// from the servers' URLs in roster order, as close to the last plan as an even split
/// allows.
pub fn planner(standbys: usize) -> Planner {
    Arc::new(move |now: &[Bytes], last: Option<(&[Bytes], &[u8])>| {
        let names = |told: &[Bytes]| -> Vec<String> { told.iter().map(|t| String::from_utf8_lossy(t).into_owned()).collect() };
        let members = names(now);
        let previous = last.and_then(|(told, plan)| Some((names(told), Placement::decode(plan, told.len())?)));
        let placement = Placement::place(&members, previous.as_ref().map(|(n, p)| (&n[..], p)), standbys);
        Bytes::from(placement.encode())
    })
}

/// Follows the membership's role until the process ends; `applied` is the role the
/// engine was opened with.
pub async fn follow(engine: Arc<Engine>, watch: RoleWatch, mut applied: Role) {
    let mut role = watch.role.clone();
    loop {
        let now = role.borrow_and_update().clone();
        let e = engine.clone();
        let changed = now != applied;
        let wanted = now.clone();
        let done = tokio::task::spawn_blocking(move || {
            if !changed {
                e.follow_commands().map(|_| ())
            } else if wanted.settled {
                e.take_share(wanted.runs_statements(), share_of(&wanted)).map(|_| ())
            } else {
                e.release_share();
                Ok(())
            }
        })
        .await;
        match done {
            Ok(Ok(())) => {
                if changed && !now.settled {
                    watch.released.send_replace(now.generation);
                }
                applied = now;
            }
            Ok(Err(e)) => tracing::warn!("could not follow the service's command topic (retrying): {e}"),
            Err(e) => tracing::error!("the service role task failed: {e}"),
        }
        tokio::select! {
            changed = role.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(FOLLOW_INTERVAL) => {}
        }
    }
}
