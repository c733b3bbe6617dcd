//! Scans of tables on a server of a service that splits its work: the rows of each
//! server's partitions come from that server (its live state), the rows of this server's
//! own partitions from here, and WHERE, the SELECT list and LIMIT apply here over all of
//! them. When a server does not answer, its partitions are read from this server's copy
//! if the query allows standby reads (`ksql.query.pull.enable.standby.reads`), else the
//! query fails until its partitions move. Key lookups go to the server that runs the
//! key's partition (`server::forward`, which learns the partition from this server's
//! copy); one whose rows are not all here in this server's partitions (a key too new for
//! the copy, keys of several servers) is gathered like a scan.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use super::{Engine, EngineError, Session};
use crate::exec::Share;
use crate::exec::placement::{SLOTS, SlotSet};
use crate::exec::pull::{Gathered, PullRows, StoredRows};
use crate::sql::pull::{PullAccess, PullPlan};

/// The other servers of the service, as the engine reads their rows.
pub trait PeerReads: Send + Sync {
    /// Every server of the service with its place, when the service's current roster is
    /// the one that gave this server `share` (None while it changes, or before this
    /// server applied it).
    fn peers(&self, share: &Share) -> Option<Vec<(u32, String)>>;
    /// The stored rows a pull query reads at the server at `url`: of the partitions it
    /// runs, or with `slots`, of the partitions in those slots (its copies of a server
    /// that does not answer). Blocking.
    fn rows(&self, url: &str, sql: &str, session: &Session, slots: Option<&[u32]>) -> Result<StoredRows, String>;
    /// The stored rows (as `state::rows` encodes them) of feature keys of `table` at the
    /// server at `url`, one per key (None: not there), of the partitions it runs or with
    /// `slots` of the partitions in those slots. Blocking.
    fn feature_rows(&self, url: &str, table: &str, keys: &[serde_json::Value], slots: Option<&[u32]>) -> Result<Vec<Option<Vec<u8>>>, String>;
}

/// The partitions a peer's request reads here: those this server runs, or with `slots`
/// those in the slots (its copies of a server that did not answer).
pub(super) fn requested<'a>(share: &'a Share, slots: Option<&[u32]>) -> impl Fn(i32) -> bool + 'a {
    let wanted = slots.map(SlotSet::of);
    move |p| match &wanted {
        Some(w) => w.holds(p),
        None => share.owns(p),
    }
}

/// Whether a session allows reading standby copies.
pub(super) fn allows_standby_reads(session: &Session) -> bool {
    session.properties.iter().any(|(k, v)| k.eq_ignore_ascii_case("ksql.query.pull.enable.standby.reads") && v.eq_ignore_ascii_case("true"))
}

impl Engine {
    /// Lets scans gather the other servers' rows.
    pub fn set_peer_reads(&self, peers: Arc<dyn PeerReads>) {
        let _ = self.peer_reads.set(peers);
    }

    /// The rows a pull query reads of the partitions this server runs, or with `slots`
    /// of the partitions in those slots (for the server that gathers a scan). Blocking.
    pub fn pull_rows_here(&self, sql: &str, session: &Session, slots: Option<&[u32]>) -> Result<StoredRows, EngineError> {
        let share = self.share();
        let sql = super::substitute(sql, &session.variables)?;
        let (plan, access) = self.table_pull_plan(&sql).ok_or_else(|| EngineError::BadRequest("only pull queries on tables send their rows".into()))?;
        Ok(crate::exec::pull::fetch_rows(self.runtime.state(), &plan, &access, &requested(&share, slots))?)
    }

    /// A scan (or a key lookup not all found here) on a server that runs part of the
    /// service's partitions, gathered from the servers that run the others; None when
    /// this server answers alone (it runs every partition, it holds every looked-up row,
    /// or the service is between rosters: then this server's copies answer). Blocking.
    pub(super) fn gather(&self, plan: &Arc<PullPlan>, access: &PullAccess, sql: &str, session: &Session) -> Result<Option<PullRows>, EngineError> {
        let share = self.share();
        // A key lookup whose rows are all here, in this server's partitions, is answered
        // here (the server that runs a key's partition gets its lookups passed on).
        if matches!(access, PullAccess::KeyLookup(_)) && crate::exec::pull::found_here(self.runtime.state(), plan, access, &|p| share.owns(p))? {
            return Ok(None);
        }
        let ask = |peers: &dyn PeerReads, url: &str, slots: Option<&[u32]>| peers.rows(url, sql, session, slots);
        let Some(scattered) = self.scatter(&share, allows_standby_reads(session), &ask)? else { return Ok(None) };
        let rows: StoredRows = scattered.answers.into_iter().flatten().collect();
        let held = |p: i32| share.owns(p) || usize::try_from(p).is_ok_and(|p| scattered.here.contains(&(p % SLOTS)));
        let rows = crate::exec::pull::execute_gathered(self.runtime.state(), plan, access, &held, rows)?;
        Ok(Some(PullRows { id: crate::exec::transient_id(&plan.table.name), plan: plan.clone(), rows, gathered: Some(scattered.gathered) }))
    }

    /// Asks every other server of the service for its part (`ask` with no slots: of the
    /// partitions it runs). A server that does not answer is, with `copies`, replaced by
    /// the servers keeping copies of its partitions (asked with those slots; the slots
    /// whose copies are here are returned), else the request fails. None when this server
    /// runs every partition, or the service is between rosters. Blocking.
    pub(super) fn scatter<T>(&self, share: &Share, copies: bool, ask: &PeerAsk<'_, T>) -> Result<Option<Scattered<T>>, EngineError> {
        let (Share::Of { rank, count, placement }, Some(peers)) = (share, self.peer_reads.get()) else { return Ok(None) };
        let (rank, count) = (*rank, *count);
        let Some(roster) = peers.peers(share) else { return Ok(None) };
        let url_of = |r: u32| roster.iter().find(|(q, _)| *q == r).map(|(_, u)| u.clone()).unwrap_or_default();
        let mut out = Scattered { answers: Vec::new(), gathered: Gathered::default(), here: HashSet::new() };
        let mut unanswered: Vec<u32> = Vec::new();
        for (peer, url) in roster.iter().filter(|(r, _)| *r != rank && *r < count) {
            match ask(peers.as_ref(), url, None) {
                Ok(theirs) => {
                    out.answers.push(theirs);
                    out.gathered.from.push(url.clone());
                }
                Err(why) if copies => {
                    tracing::debug!("the server at {url} did not answer ({why}); reading copies of its partitions");
                    unanswered.push(*peer);
                    out.gathered.copied.push(url.clone());
                }
                Err(why) => return Err(EngineError::PeerUnavailable { url: url.clone(), detail: why }),
            }
        }
        // The partitions of servers that did not answer, from the first of their standbys
        // that does (this one's own copies read here).
        let mut elsewhere: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for slot in 0..SLOTS {
            let partition = slot as i32;
            let Some(owner) = placement.owner(partition).filter(|o| unanswered.contains(o)) else { continue };
            match placement.standbys_of(partition).into_iter().find(|s| !unanswered.contains(s)) {
                Some(s) if s == rank => {
                    out.here.insert(slot);
                }
                Some(s) => elsewhere.entry(s).or_default().push(slot as u32),
                None => {
                    let detail = "it did not answer, and no server that answers keeps a copy of its partitions (--standby-replicas)".to_string();
                    return Err(EngineError::PeerUnavailable { url: url_of(owner), detail });
                }
            }
        }
        for (standby, slots) in elsewhere {
            let url = url_of(standby);
            out.answers.push(ask(peers.as_ref(), &url, Some(&slots)).map_err(|detail| EngineError::PeerUnavailable { url: url.clone(), detail })?);
        }
        Ok(Some(out))
    }
}

/// How a scattered request asks one server: the server's URL, and the slots of its copies
/// to read (None: its own partitions).
pub(super) type PeerAsk<'a, T> = dyn Fn(&dyn PeerReads, &str, Option<&[u32]>) -> Result<T, String> + 'a;

/// What the other servers answered a scattered request.
pub(super) struct Scattered<T> {
    /// Each answer.
    pub answers: Vec<T>,
    pub gathered: Gathered,
    /// Slots of servers that did not answer whose copies are here.
    pub here: HashSet<usize>,
}
