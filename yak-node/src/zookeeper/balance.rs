//! The replica balance planner (`cluster rebalance`, `cluster
//! remove-broker`): a pure function from the topics' placement and the
//! brokers that should hold them to the fewest partition moves after which
//! every broker holds an equal share (±1) of the replicas and of the
//! preferred leaders (first replicas). Plans only; the moves are made by
//! reassignment (`reassign.rs`).
//!
//! 1. Replicas on a broker outside the set move to the broker of the set
//!    with the fewest replicas that does not hold that partition yet.
//! 2. While the fullest broker holds two more than the emptiest, one of its
//!    replicas moves there (a partition the emptiest does not hold).
//! 3. While a broker is the preferred leader of two more partitions than
//!    another, a partition it leads that the other holds swaps their places
//!    in its replica list (no data moves).
//!
//! Each replica that moves is one copy of a partition, and steps 1 and 2
//! move only what is over the even share, so the copies are the fewest.

use crate::protocol::TopicMetadata;
use std::collections::BTreeMap;

/// One partition whose replica list changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedMove {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// Replicas now.
    pub from: Vec<u32>,
    /// Replicas after the move, preferred leader first.
    pub to: Vec<u32>,
}

impl PlannedMove {
    /// Brokers that get a copy of the partition.
    pub fn added(&self) -> Vec<u32> {
        self.to
            .iter()
            .copied()
            .filter(|b| !self.from.contains(b))
            .collect()
    }
}

/// Why no plan can be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BalanceError {
    /// No broker would be left.
    #[error("no broker would be left to hold the replicas")]
    NoBrokers,
    /// A partition has more replicas than there would be brokers.
    #[error("{topic}-{partition} has {replication_factor} replicas but only {brokers} brokers would be left: its replication factor cannot be held")]
    ReplicationFactorTooHigh {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// Its replica count.
        replication_factor: usize,
        /// Brokers in the set.
        brokers: usize,
    },
}

struct Slot {
    topic: String,
    partition: u32,
    from: Vec<u32>,
    to: Vec<u32>,
}

fn counts(slots: &[Slot], brokers: &[u32], leaders_only: bool) -> BTreeMap<u32, usize> {
    let mut c: BTreeMap<u32, usize> = brokers.iter().map(|b| (*b, 0)).collect();
    for s in slots {
        let held = if leaders_only { &s.to[..1] } else { &s.to[..] };
        for b in held {
            if let Some(n) = c.get_mut(b) {
                *n += 1;
            }
        }
    }
    c
}

/// The broker with the fewest (ties: lowest id), among those `ok` allows.
fn emptiest(c: &BTreeMap<u32, usize>, ok: impl Fn(u32) -> bool) -> Option<u32> {
    c.iter()
        .filter(|(b, _)| ok(**b))
        .min_by_key(|(b, n)| (**n, **b))
        .map(|(b, _)| *b)
}

/// Plans moves so `brokers` (sorted, distinct) hold every partition of
/// `topics` evenly (see the module doc). Partitions being reassigned are
/// taken at their target and never moved again.
pub fn plan_balance(
    topics: &[TopicMetadata],
    brokers: &[u32],
) -> Result<Vec<PlannedMove>, BalanceError> {
    if brokers.is_empty() {
        return Err(BalanceError::NoBrokers);
    }
    let mut slots: Vec<Slot> = Vec::new();
    let mut fixed: Vec<Slot> = Vec::new();
    for t in topics {
        for p in &t.partitions {
            let (current, moving) = match &p.reassignment {
                Some(r) => (r.target.clone(), true),
                None => (p.replicas.clone(), false),
            };
            if current.is_empty() {
                continue;
            }
            if current.len() > brokers.len() {
                return Err(BalanceError::ReplicationFactorTooHigh {
                    topic: t.name.clone(),
                    partition: p.partition,
                    replication_factor: current.len(),
                    brokers: brokers.len(),
                });
            }
            let slot = Slot {
                topic: t.name.clone(),
                partition: p.partition,
                from: current.clone(),
                to: current,
            };
            if moving {
                fixed.push(slot);
            } else {
                slots.push(slot);
            }
        }
    }
    let all_counts = |slots: &[Slot], leaders: bool| {
        let mut c = counts(slots, brokers, leaders);
        for (b, n) in counts(&fixed, brokers, leaders) {
            *c.entry(b).or_default() += n;
        }
        c
    };
    // Step 1: off brokers outside the set.
    let mut c = all_counts(&slots, false);
    for s in &mut slots {
        for i in 0..s.to.len() {
            if brokers.contains(&s.to[i]) {
                continue;
            }
            let holding = s.to.clone();
            let dst = emptiest(&c, |b| !holding.contains(&b))
                .expect("invariant: fewer replicas than brokers, so one is free");
            s.to[i] = dst;
            *c.entry(dst).or_default() += 1;
        }
    }
    // Step 2: from the fullest to the emptiest.
    let limit = slots.iter().map(|s| s.to.len()).sum::<usize>() + 1;
    for _ in 0..limit {
        let Some((&src, &most)) = c.iter().max_by_key(|(b, n)| (**n, std::cmp::Reverse(**b)))
        else {
            break;
        };
        let mut moved = false;
        // Emptiest first, then the next emptiest, while any is 2 below.
        let mut targets: Vec<(u32, usize)> = c.iter().map(|(b, n)| (*b, *n)).collect();
        targets.sort_by_key(|(b, n)| (*n, *b));
        'dst: for (dst, least) in targets {
            if most < least + 2 {
                break;
            }
            for s in slots.iter_mut() {
                if s.to.contains(&dst) {
                    continue;
                }
                if let Some(i) = s.to.iter().position(|b| *b == src) {
                    s.to[i] = dst;
                    *c.entry(src).or_default() -= 1;
                    *c.entry(dst).or_default() += 1;
                    moved = true;
                    break 'dst;
                }
            }
        }
        if !moved {
            break;
        }
    }
    // Step 3: preferred leaders, by reordering.
    let mut l = all_counts(&slots, true);
    let limit = slots.len() + 1;
    for _ in 0..limit {
        let Some((&src, &most)) = l.iter().max_by_key(|(b, n)| (**n, std::cmp::Reverse(**b)))
        else {
            break;
        };
        let mut targets: Vec<(u32, usize)> = l.iter().map(|(b, n)| (*b, *n)).collect();
        targets.sort_by_key(|(b, n)| (*n, *b));
        let mut moved = false;
        'dst: for (dst, least) in targets {
            if most < least + 2 {
                break;
            }
            for s in slots.iter_mut().filter(|s| s.to[0] == src) {
                if let Some(i) = s.to.iter().position(|b| *b == dst) {
                    s.to.swap(0, i);
                    *l.entry(src).or_default() -= 1;
                    *l.entry(dst).or_default() += 1;
                    moved = true;
                    break 'dst;
                }
            }
        }
        if !moved {
            break;
        }
    }
    Ok(slots
        .into_iter()
        .filter(|s| s.to != s.from)
        .map(|s| PlannedMove {
            topic: s.topic,
            partition: s.partition,
            from: s.from,
            to: s.to,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{PartitionMetadata, TopicConfig};
    use crate::zookeeper::state::{MetadataState, TopicDefaults};

    fn topic(partitions: u32, rf: u32, brokers: &[u32]) -> TopicMetadata {
        let s = MetadataState::default();
        let defaults = TopicDefaults {
            partitions,
            replication_factor: rf,
        };
        match s
            .plan_create("t", None, None, TopicConfig::default(), defaults, brokers)
            .expect("create")
        {
            crate::protocol::metalog::MetaRecord::TopicCreated(t) => t,
            other => panic!("{other:?}"),
        }
    }

    fn apply(t: &TopicMetadata, moves: &[PlannedMove]) -> TopicMetadata {
        let mut t = t.clone();
        for m in moves {
            t.partitions[m.partition as usize].replicas = m.to.clone();
        }
        t
    }

    fn spread(t: &TopicMetadata, brokers: &[u32], leaders: bool) -> Vec<usize> {
        let mut c: BTreeMap<u32, usize> = brokers.iter().map(|b| (*b, 0)).collect();
        for p in &t.partitions {
            let held = if leaders {
                &p.replicas[..1]
            } else {
                &p.replicas[..]
            };
            for b in held {
                *c.get_mut(b).expect("a broker of the set") += 1;
            }
        }
        c.into_values().collect()
    }

    fn distinct(t: &TopicMetadata) -> bool {
        t.partitions.iter().all(|p: &PartitionMetadata| {
            let mut r = p.replicas.clone();
            r.sort_unstable();
            r.dedup();
            r.len() == p.replicas.len()
        })
    }

    #[test]
    fn given_new_broker_when_balancing_27_replicas_should_move_six_and_spread_six_or_seven() {
        let t = topic(9, 3, &[1, 2, 3]);
        let brokers = [1, 2, 3, 4];
        let moves = plan_balance(std::slice::from_ref(&t), &brokers).expect("plan");
        let copies: usize = moves.iter().map(|m| m.added().len()).sum();
        assert_eq!(copies, 6, "only broker 4's share is copied: {moves:?}");
        let after = apply(&t, &moves);
        assert!(distinct(&after));
        let mut r = spread(&after, &brokers, false);
        r.sort_unstable();
        assert_eq!(r, vec![6, 7, 7, 7]);
        let l = spread(&after, &brokers, true);
        assert!(l.iter().all(|n| (2..=3).contains(n)), "leaders {l:?}");
        assert!(
            plan_balance(&[after], &brokers).expect("plan").is_empty(),
            "a balanced cluster needs no move"
        );
    }

    #[test]
    fn given_broker_removed_when_balancing_should_move_all_its_replicas_and_stay_even() {
        let t = topic(8, 2, &[1, 2, 3, 4]);
        let brokers = [1, 2, 4];
        let moves = plan_balance(std::slice::from_ref(&t), &brokers).expect("plan");
        let after = apply(&t, &moves);
        assert!(distinct(&after));
        assert!(after.partitions.iter().all(|p| !p.replicas.contains(&3)));
        let r = spread(&after, &brokers, false);
        assert!(r.iter().all(|n| (5..=6).contains(n)), "replicas {r:?}");
        let l = spread(&after, &brokers, true);
        assert!(l.iter().all(|n| (2..=3).contains(n)), "leaders {l:?}");
        let copies: usize = moves.iter().map(|m| m.added().len()).sum();
        assert_eq!(copies, 4, "exactly broker 3's replicas are copied");
    }

    #[test]
    fn given_too_few_brokers_when_balancing_should_refuse() {
        let t = topic(3, 3, &[1, 2, 3]);
        let err = plan_balance(std::slice::from_ref(&t), &[1, 2]).expect_err("cannot hold RF 3");
        assert!(matches!(
            err,
            BalanceError::ReplicationFactorTooHigh {
                replication_factor: 3,
                brokers: 2,
                ..
            }
        ));
        assert_eq!(plan_balance(&[t], &[]), Err(BalanceError::NoBrokers));
    }

    #[test]
    fn given_skewed_leaders_when_balancing_should_reorder_without_copying() {
        let mut t = topic(6, 2, &[1, 2]);
        for p in &mut t.partitions {
            p.replicas = vec![1, 2];
        }
        let moves = plan_balance(std::slice::from_ref(&t), &[1, 2]).expect("plan");
        assert_eq!(moves.len(), 3);
        assert!(moves.iter().all(|m| m.added().is_empty()));
        assert_eq!(spread(&apply(&t, &moves), &[1, 2], true), vec![3, 3]);
    }
}
