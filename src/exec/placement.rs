//! Which server of a service runs each partition of every query, and which keep warm
//! copies of it (standbys). Partition `p` is slot `p mod SLOTS`; every stage of a query is
//! split by the same partition number, so a partition's stages run on one server.
//!
//! Slots are dealt in rounds of as many slots as there are servers, each server getting at
//! most one slot per round: any prefix of slots is split evenly (a 6-partition query on
//! 3 servers gives each 2), as `p mod servers` would. Within a round a slot stays with the
//! server that ran it before when it can, else goes to its first standby, so a server that
//! dies leaves its slots to the servers holding their copies, and the others keep theirs
//! (the standby of a slot is chosen as the server the slot would go to if its owner died).

/// Partitions `p` and `p + SLOTS` run on the same server.
pub const SLOTS: usize = 1024;

/// A set of slots (a peer's request for its copies of a silent server's partitions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotSet(Vec<bool>);

impl SlotSet {
    /// The slots named (numbers past the last slot wrap, as partitions do).
    pub fn of(slots: &[u32]) -> SlotSet {
        let mut set = vec![false; SLOTS];
        for s in slots {
            set[*s as usize % SLOTS] = true;
        }
        SlotSet(set)
    }

    /// Whether `partition` is in one of the slots.
    pub fn holds(&self, partition: i32) -> bool {
        Placement::slot(partition).is_some_and(|s| self.0[s])
    }
}

/// Owners and standbys of every slot, by server place (rank) in the service's roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    owners: Vec<u16>,
    /// Each slot's standbys, best first.
    standbys: Vec<Vec<u16>>,
}

impl Placement {
    /// `p mod servers`, no standbys (what a service with no placement of its own runs).
    pub fn modulo(servers: usize) -> Placement {
        let n = servers.max(1);
        Placement { owners: (0..SLOTS).map(|s| (s % n) as u16).collect(), standbys: vec![Vec::new(); SLOTS] }
    }

    fn slot(partition: i32) -> Option<usize> {
        usize::try_from(partition).ok().map(|p| p % SLOTS)
    }

    /// The place of the server that runs `partition`.
    pub fn owner(&self, partition: i32) -> Option<u32> {
        Self::slot(partition).and_then(|s| self.owners.get(s)).map(|o| u32::from(*o))
    }

    /// Whether the server at `rank` keeps a copy of `partition`.
    pub fn is_standby(&self, partition: i32, rank: u32) -> bool {
        Self::slot(partition).and_then(|s| self.standbys.get(s)).is_some_and(|s| s.iter().any(|r| u32::from(*r) == rank))
    }

    /// The places of the servers that keep copies of `partition`, best first.
    pub fn standbys_of(&self, partition: i32) -> Vec<u32> {
        Self::slot(partition).and_then(|s| self.standbys.get(s)).map(|s| s.iter().map(|r| u32::from(*r)).collect()).unwrap_or_default()
    }

    /// The placement for `members` (stable names, in roster order) keeping `standbys`
    /// copies of each slot, as close to `previous` (the last placement and the names its
    /// places stood for) as an even split allows.
    pub fn place(members: &[String], previous: Option<(&[String], &Placement)>, standbys: usize) -> Placement {
        let n = members.len();
        if n == 0 {
            return Placement { owners: vec![0; SLOTS], standbys: vec![Vec::new(); SLOTS] };
        }
        // The previous owner and standbys of each slot, as places in `members`.
        let now =
            |old: u16| -> Option<usize> { previous.and_then(|(names, _)| names.get(usize::from(old))).and_then(|name| members.iter().position(|m| m == name)) };
        let keep: Vec<Option<usize>> = (0..SLOTS).map(|s| previous.and_then(|(_, p)| now(p.owners[s]))).collect();
        let fallbacks: Vec<Vec<usize>> =
            (0..SLOTS).map(|s| previous.map(|(_, p)| p.standbys[s].iter().copied().filter_map(now).collect()).unwrap_or_default()).collect();
        let owners = deal(n, &keep, &fallbacks);
        // (A slot's standbys are counted in a byte.)
        let standbys = standbys.min(n - 1).min(usize::from(u8::MAX));
        // A slot's first standby is where it would go if its owner died.
        let mut first = vec![None; SLOTS];
        if standbys > 0 {
            for dead in 0..n {
                let survivors: Vec<usize> = (0..n).filter(|m| *m != dead).collect();
                let keep: Vec<Option<usize>> = owners.iter().map(|o| survivors.iter().position(|m| m == o)).collect();
                for (s, owner) in deal(n - 1, &keep, &vec![Vec::new(); SLOTS]).into_iter().enumerate() {
                    if owners[s] == dead {
                        first[s] = Some(survivors[owner]);
                    }
                }
            }
        }
        let standbys = (0..SLOTS)
            .map(|s| {
                let mut chosen: Vec<u16> = Vec::with_capacity(standbys);
                let candidates = first[s].into_iter().chain((1..n).map(|k| (owners[s] + k) % n));
                for c in candidates {
                    if chosen.len() == standbys {
                        break;
                    }
                    if c != owners[s] && !chosen.contains(&(c as u16)) {
                        chosen.push(c as u16);
                    }
                }
                chosen
            })
            .collect();
        Placement { owners: owners.into_iter().map(|o| o as u16).collect(), standbys }
    }

    /// The placement as bytes (for the service's roster).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SLOTS * 4);
        for (owner, standbys) in self.owners.iter().zip(&self.standbys) {
            out.extend_from_slice(&owner.to_be_bytes());
            out.push(standbys.len() as u8);
            for s in standbys {
                out.extend_from_slice(&s.to_be_bytes());
            }
        }
        out
    }

    /// None when the bytes are not a placement for `servers` servers.
    pub fn decode(bytes: &[u8], servers: usize) -> Option<Placement> {
        let mut at = 0;
        let mut take = |n: usize| {
            let b = bytes.get(at..at + n)?;
            at += n;
            Some(b)
        };
        let mut owners = Vec::with_capacity(SLOTS);
        let mut standbys = Vec::with_capacity(SLOTS);
        for _ in 0..SLOTS {
            let owner = u16::from_be_bytes(take(2)?.try_into().ok()?);
            let count = usize::from(take(1)?[0]);
            let copies: Vec<u16> = (0..count).map(|_| take(2).and_then(|b| b.try_into().ok()).map(u16::from_be_bytes)).collect::<Option<_>>()?;
            if usize::from(owner) >= servers || copies.iter().any(|c| usize::from(*c) >= servers) {
                return None;
            }
            owners.push(owner);
            standbys.push(copies);
        }
        (at == bytes.len()).then_some(Placement { owners, standbys })
    }
}

/// Deals the slots to `n` servers in rounds of `n` slots, each server at most one slot a
/// round: a slot stays with the server in `keep` when it is still free in the round; the
/// others go to the first of their `fallbacks` still free, else to the first free server.
fn deal(n: usize, keep: &[Option<usize>], fallbacks: &[Vec<usize>]) -> Vec<usize> {
    let mut owners = vec![0; keep.len()];
    for round in (0..keep.len()).step_by(n) {
        let slots: Vec<usize> = (round..(round + n).min(keep.len())).collect();
        let mut free = vec![true; n];
        let mut open = Vec::new();
        // Every slot that stays before any slot that moves.
        for s in &slots {
            match keep[*s] {
                Some(w) if w < n && free[w] => {
                    free[w] = false;
                    owners[*s] = w;
                }
                _ => open.push(*s),
            }
        }
        let mut left = Vec::new();
        for s in open {
            match fallbacks[s].iter().find(|&&w| w < n && free[w]) {
                Some(&w) => {
                    free[w] = false;
                    owners[s] = w;
                }
                None => left.push(s),
            }
        }
        for s in left {
            let w = free.iter().position(|f| *f).unwrap_or(0);
            free[w] = false;
            owners[s] = w;
        }
    }
    owners
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    fn owned(p: &Placement, rank: u32, partitions: i32) -> Vec<i32> {
        (0..partitions).filter(|q| p.owner(*q) == Some(rank)).collect()
    }

    #[test]
    fn every_prefix_of_partitions_splits_evenly() {
        let p = Placement::place(&names(&["a", "b", "c"]), None, 1);
        for partitions in [3, 6, 12] {
            for r in 0..3 {
                assert_eq!(owned(&p, r, partitions).len(), partitions as usize / 3, "{partitions}");
            }
        }
        assert_eq!(owned(&p, 0, 4).len() + owned(&p, 1, 4).len() + owned(&p, 2, 4).len(), 4);
        assert!((0..6).all(|q| !p.is_standby(q, p.owner(q).unwrap()) && p.standbys_of(q).len() == 1));
    }

    #[test]
    fn a_dead_servers_partitions_go_to_their_standbys_and_the_others_stay() {
        let before = names(&["a", "b", "c"]);
        let p = Placement::place(&before, None, 1);
        let after = names(&["b", "c"]);
        let q = Placement::place(&after, Some((&before, &p)), 1);
        for part in 0..12 {
            let old = before[p.owner(part).unwrap() as usize].clone();
            let new = after[q.owner(part).unwrap() as usize].clone();
            if old == "a" {
                let standby = before[p.standbys_of(part)[0] as usize].clone();
                assert_eq!(new, standby, "partition {part} goes to its copy");
            } else {
                assert_eq!(new, old, "partition {part} stays");
            }
        }
        for r in 0..2 {
            assert_eq!(owned(&q, r, 6).len(), 3);
        }
    }

    #[test]
    fn a_joining_server_takes_an_even_share_and_the_rest_stays() {
        let before = names(&["a", "b"]);
        let p = Placement::place(&before, None, 1);
        let after = names(&["a", "b", "c"]);
        let q = Placement::place(&after, Some((&before, &p)), 1);
        let mut moved = 0;
        for part in 0..6 {
            let new = after[q.owner(part).unwrap() as usize].clone();
            if new != before[p.owner(part).unwrap() as usize] {
                assert_eq!(new, "c", "only the new server takes partitions");
                moved += 1;
            }
        }
        assert_eq!(moved, 2);
        assert_eq!(Placement::decode(&q.encode(), 3), Some(q.clone()));
        assert_eq!(Placement::decode(&q.encode(), 2), None, "a placement for more servers");
        assert_eq!(Placement::decode(b"junk", 3), None);
    }

    #[test]
    fn no_standbys_or_one_server_keeps_no_copies() {
        let p = Placement::place(&names(&["a", "b"]), None, 0);
        assert!((0..8).all(|q| p.standbys_of(q).is_empty()));
        let alone = Placement::place(&names(&["a"]), None, 3);
        assert!((0..8).all(|q| alone.owner(q) == Some(0) && alone.standbys_of(q).is_empty()));
        assert_eq!(Placement::modulo(3).owner(7), Some(1));
    }

    #[test]
    fn a_slot_set_holds_the_partitions_of_its_slots_whatever_numbers_it_is_sent() {
        let set = SlotSet::of(&[1, 5, u32::MAX]);
        assert!(set.holds(1) && set.holds(5) && set.holds(1 + SLOTS as i32));
        assert!(set.holds((u32::MAX as usize % SLOTS) as i32));
        assert!(!set.holds(2) && !set.holds(-1));
    }
}
