//! KIP-848 reconciliation: what a member of a Kafka consumer group
//! (`group.protocol=consumer`) is told to own at each heartbeat, so that a
//! partition is never owned by two members at once. The coordinator keeps
//! a target assignment (computed at once when membership changes); a
//! member that owns partitions outside its target is first told only to
//! drop them (keeping its epoch), and a partition of its target that
//! another member still reports owning is withheld until that member's
//! heartbeat no longer lists it (or that member leaves or expires).
//! Pure functions; no clock, no I/O, no membership of its own.

use std::collections::{BTreeMap, BTreeSet};

/// Topic → partitions.
pub type Owned = BTreeMap<String, BTreeSet<u32>>;

/// What one heartbeat tells a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The partitions it should own now.
    pub assignment: Owned,
    /// It owns nothing outside its target: its epoch may reach the group's.
    pub converged: bool,
}

/// Whether `owned` lists `partition` of `topic`.
fn has(owned: &Owned, topic: &str, partition: u32) -> bool {
    owned.get(topic).is_some_and(|ps| ps.contains(&partition))
}

/// Keeps the partitions of `from` that `keep` says yes to; no empty topics.
fn filter(from: &Owned, keep: impl Fn(&str, u32) -> bool) -> Owned {
    from.iter()
        .map(|(t, ps)| {
            let kept: BTreeSet<u32> = ps.iter().copied().filter(|p| keep(t, *p)).collect();
            (t.clone(), kept)
        })
        .filter(|(_, ps)| !ps.is_empty())
        .collect()
}

/// The next step for a member with `target` that holds `owned` (what it
/// last reported owning and what it was last told to own: it may be taking
/// those), while the other members hold `others` (the same, united, plus
/// what they were told the time before: a member may still be taking what
/// an answer it has not yet reported on gave it).
pub fn step(target: &Owned, owned: &Owned, others: &Owned) -> Step {
    let revoking = owned
        .iter()
        .any(|(t, ps)| ps.iter().any(|p| !has(target, t, *p)));
    if revoking {
        // Drop first: keep only what stays, take nothing new yet.
        return Step {
            assignment: filter(owned, |t, p| has(target, t, p)),
            converged: false,
        };
    }
    Step {
        assignment: filter(target, |t, p| !has(others, t, p)),
        converged: true,
    }
}

/// The union of several members' partitions.
pub fn union<'a>(all: impl Iterator<Item = &'a Owned>) -> Owned {
    let mut out = Owned::new();
    for o in all {
        for (t, ps) in o {
            out.entry(t.clone()).or_default().extend(ps.iter().copied());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(items: &[(&str, &[u32])]) -> Owned {
        items
            .iter()
            .map(|(t, ps)| (t.to_string(), ps.iter().copied().collect()))
            .collect()
    }

    #[test]
    fn given_member_owning_partitions_outside_its_target_when_stepping_should_only_revoke() {
        let target = owned(&[("t", &[0, 1])]);
        let mine = owned(&[("t", &[0, 1, 2, 3])]);
        let s = step(&target, &mine, &Owned::new());
        assert_eq!(s.assignment, owned(&[("t", &[0, 1])]));
        assert!(!s.converged, "its epoch stays until it has dropped 2 and 3");
        let s = step(&owned(&[("t", &[4])]), &mine, &Owned::new());
        assert_eq!(s.assignment, Owned::new(), "nothing new while revoking");
    }

    #[test]
    fn given_partition_another_member_still_owns_when_stepping_should_withhold_it_until_released() {
        let target = owned(&[("t", &[2, 3]), ("u", &[0])]);
        let other = owned(&[("t", &[3])]);
        let s = step(&target, &Owned::new(), &other);
        assert_eq!(s.assignment, owned(&[("t", &[2]), ("u", &[0])]));
        assert!(s.converged);
        let s = step(&target, &s.assignment, &Owned::new());
        assert_eq!(s.assignment, target, "released: now it is given");
    }

    #[test]
    fn given_any_sequence_of_steps_when_members_report_what_they_were_told_should_never_double_own()
    {
        // Two members swap targets; each heartbeat reports what it was
        // last told. At no point do the two owned sets intersect.
        let t_a = owned(&[("t", &[0, 1, 2])]);
        let t_b = owned(&[("t", &[3, 4, 5])]);
        let mut a = owned(&[("t", &[3, 4])]);
        let mut b = owned(&[("t", &[0, 1, 2, 5])]);
        for round in 0..6 {
            if round % 2 == 0 {
                a = step(&t_a, &a, &b).assignment;
            } else {
                b = step(&t_b, &b, &a).assignment;
            }
            let of = |o: &Owned| o.get("t").cloned().unwrap_or_default();
            let overlap: Vec<u32> = of(&a).intersection(&of(&b)).copied().collect();
            assert!(overlap.is_empty(), "round {round}: {overlap:?} owned twice");
        }
        assert_eq!((a, b), (t_a, t_b), "both converge");
    }

    #[test]
    fn given_reports_when_uniting_should_merge_topics() {
        let a = owned(&[("t", &[0]), ("u", &[1])]);
        let b = owned(&[("t", &[2])]);
        assert_eq!(
            union([&a, &b].into_iter()),
            owned(&[("t", &[0, 2]), ("u", &[1])])
        );
    }
}
