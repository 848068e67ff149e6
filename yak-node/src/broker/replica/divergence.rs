//! Where a follower's log stops agreeing with its leader's (KIP-101/KIP-320),
//! as pure functions over epoch boundaries, so the rule is testable without
//! logs or sockets.
//!
//! The follower sends its fetch offset and the epoch of its last batch. The
//! leader looks up where that epoch ends in its own log; if the epoch is not
//! the same or ends before the fetch offset, the logs diverged and the
//! follower must truncate before it appends anything.

/// Leader side: `leader_end` is the leader's answer for the follower's last
/// epoch, `(largest epoch <= it, where that epoch ends)`, or `None` if the
/// leader has no epochs. Returns the diverging `(epoch, end offset)` to send.
pub fn leader_check(
    fetch_offset: u64,
    last_fetched_epoch: Option<u32>,
    leader_end: Option<(u32, u64)>,
    leader_epoch: u32,
    leader_leo: u64,
) -> Option<(u32, u64)> {
    let by_epoch = match (last_fetched_epoch, leader_end) {
        (Some(lfe), Some((e, end))) if fetch_offset > 0 && (e != lfe || end < fetch_offset) => {
            Some((e, end.min(leader_leo)))
        }
        (Some(lfe), None) if fetch_offset > 0 => Some((lfe, leader_leo.min(fetch_offset))),
        _ => None,
    };
    by_epoch.or_else(|| (fetch_offset > leader_leo).then_some((leader_epoch, leader_leo)))
}

/// Follower side: where to truncate given the leader's diverging
/// `(epoch, end)`, the follower's own end offset for the largest epoch it
/// has at or below that epoch, and its log end offset. Repeated rounds walk
/// back epoch by epoch to the common prefix.
pub fn truncation_point(
    diverging: (u32, u64),
    own_end_for_epoch: Option<u64>,
    own_leo: u64,
) -> u64 {
    let (_, leader_end) = diverging;
    leader_end
        .min(own_end_for_epoch.unwrap_or(leader_end))
        .min(own_leo)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log as its epoch boundaries: (epoch, start offset), plus its end.
    struct SimLog {
        epochs: Vec<(u32, u64)>,
        leo: u64,
    }

    impl SimLog {
        fn end_for_epoch(&self, epoch: u32) -> Option<(u32, u64)> {
            let i = self.epochs.iter().rposition(|(e, _)| *e <= epoch)?;
            let end = self.epochs.get(i + 1).map_or(self.leo, |(_, start)| *start);
            Some((self.epochs[i].0, end))
        }

        fn last_epoch(&self) -> Option<u32> {
            self.epochs.last().map(|(e, _)| *e)
        }

        fn truncate(&mut self, to: u64) {
            self.leo = to;
            self.epochs.retain(|(_, start)| *start < to);
        }
    }

    /// Runs fetch rounds until the follower stops being told to truncate.
    fn reconcile(leader: &SimLog, follower: &mut SimLog) {
        for _ in 0..10 {
            let leader_epoch = leader.last_epoch().unwrap_or(0);
            let end = follower.last_epoch().and_then(|e| leader.end_for_epoch(e));
            match leader_check(
                follower.leo,
                follower.last_epoch(),
                end,
                leader_epoch,
                leader.leo,
            ) {
                None => return,
                Some(d) => {
                    let own = follower.end_for_epoch(d.0).map(|(_, o)| o);
                    let to = truncation_point(d, own, follower.leo);
                    follower.truncate(to);
                }
            }
        }
        panic!("did not converge");
    }

    #[test]
    fn given_old_leader_with_unreplicated_tail_when_rejoining_should_truncate_to_epoch_end() {
        // A led epoch 0 and wrote 0..10; B copied 0..8, then led epoch 1 from 8 to 12.
        let leader = SimLog {
            epochs: vec![(0, 0), (1, 8)],
            leo: 12,
        };
        let mut old = SimLog {
            epochs: vec![(0, 0)],
            leo: 10,
        };
        reconcile(&leader, &mut old);
        assert_eq!(old.leo, 8);
    }

    #[test]
    fn given_follower_in_same_epoch_and_behind_when_fetching_should_not_truncate() {
        let leader = SimLog {
            epochs: vec![(0, 0), (2, 50)],
            leo: 80,
        };
        let mut f = SimLog {
            epochs: vec![(0, 0), (2, 50)],
            leo: 60,
        };
        reconcile(&leader, &mut f);
        assert_eq!(f.leo, 60);
    }

    #[test]
    fn given_two_diverged_epochs_when_reconciling_should_reach_common_prefix() {
        // The follower led epochs 1 and 3 that the leader never saw; they agree up to 20.
        let leader = SimLog {
            epochs: vec![(0, 0), (2, 20), (4, 30)],
            leo: 40,
        };
        let mut f = SimLog {
            epochs: vec![(0, 0), (1, 20), (3, 25)],
            leo: 28,
        };
        reconcile(&leader, &mut f);
        assert_eq!(f.leo, 20);
    }

    #[test]
    fn given_follower_ahead_of_empty_leader_when_fetching_should_truncate_to_zero() {
        let leader = SimLog {
            epochs: vec![],
            leo: 0,
        };
        let mut f = SimLog {
            epochs: vec![(0, 0)],
            leo: 5,
        };
        reconcile(&leader, &mut f);
        assert_eq!(f.leo, 0);
    }
}
