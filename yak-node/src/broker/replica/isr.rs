//! The leader's view of its followers: their log end offsets, when each was
//! last caught up, the high watermark, and which ISR changes to ask for.
//! No I/O and no clock: callers pass `now`.
//!
//! Kafka's rules: the high watermark is the lowest log end offset in the
//! ISR and never goes back; a follower is caught up when it fetches from the
//! leader's log end offset as of its previous fetch; one not caught up for
//! `lag_max` leaves the ISR; one that reaches both the high watermark and
//! the start offset of the leader's current epoch rejoins (KAFKA-7128: a
//! new leader's high watermark may lag, so the high watermark alone does
//! not prove a follower holds everything that was acknowledged).
//!
//! One ISR change is in flight at a time. While an expansion waits for
//! ZooKeeper, the member it adds already counts toward the high watermark
//! (Kafka's "maximal ISR", KIP-497): ZooKeeper may elect it as soon as it
//! commits the change, before this leader hears back, so nothing may be
//! acknowledged that it does not hold. A shrink takes effect only once
//! committed, so the member it removes counts until then.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
struct Follower {
    log_end_offset: u64,
    last_caught_up: Instant,
    last_fetch: Instant,
    leader_leo_at_last_fetch: u64,
}

/// Leader-side replication bookkeeping for one partition.
#[derive(Debug, Clone)]
pub struct IsrTracker {
    leader: u32,
    /// The ISR as ZooKeeper committed it.
    isr: Vec<u32>,
    /// An ISR change asked of ZooKeeper and not answered yet.
    pending: Option<Vec<u32>>,
    followers: BTreeMap<u32, Follower>,
    high_watermark: u64,
    /// The first offset of this leader's epoch: its log end when it became leader.
    epoch_start_offset: u64,
}

impl IsrTracker {
    /// A new leadership: followers start as caught up now, at offset 0 until
    /// they fetch; `high_watermark` is what this broker knew as a follower;
    /// `epoch_start_offset` is its log end offset as it becomes leader.
    pub fn new(
        leader: u32,
        replicas: &[u32],
        isr: &[u32],
        high_watermark: u64,
        epoch_start_offset: u64,
        now: Instant,
    ) -> Self {
        let followers = replicas
            .iter()
            .filter(|r| **r != leader)
            .map(|r| {
                (
                    *r,
                    Follower {
                        log_end_offset: 0,
                        last_caught_up: now,
                        last_fetch: now,
                        leader_leo_at_last_fetch: 0,
                    },
                )
            })
            .collect();
        IsrTracker {
            leader,
            isr: isr.to_vec(),
            pending: None,
            followers,
            high_watermark,
            epoch_start_offset,
        }
    }

    /// The ISR as ZooKeeper last committed it: what `min.insync.replicas` counts.
    pub fn isr(&self) -> &[u32] {
        &self.isr
    }

    /// The committed ISR plus members a pending expansion adds: what the
    /// high watermark waits for.
    pub fn maximal_isr(&self) -> Vec<u32> {
        let mut all = self.isr.clone();
        if let Some(p) = &self.pending {
            all.extend(p.iter().copied().filter(|id| !self.isr.contains(id)));
        }
        all
    }

    /// An ISR change is waiting for ZooKeeper.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// The ISR change waiting for ZooKeeper, if any.
    pub fn pending(&self) -> Option<&[u32]> {
        self.pending.as_deref()
    }

    /// ZooKeeper's ISR (from metadata or an accepted change); any pending
    /// change is settled by it.
    pub fn set_isr(&mut self, isr: &[u32]) {
        self.isr = isr.to_vec();
        self.pending = None;
    }

    /// ZooKeeper refused the pending change (or it was lost): forget it, so
    /// the next fetch or tick may propose again from fresh state.
    pub fn proposal_failed(&mut self) {
        self.pending = None;
    }

    /// The current high watermark.
    pub fn high_watermark(&self) -> u64 {
        self.high_watermark
    }

    /// A follower's last known log end offset.
    pub fn follower_leo(&self, id: u32) -> Option<u64> {
        self.followers.get(&id).map(|f| f.log_end_offset)
    }

    /// A follower fetched from `fetch_offset`. Returns the ISR to ask for if
    /// the follower should rejoin it (and marks that change pending).
    pub fn on_fetch(
        &mut self,
        follower: u32,
        fetch_offset: u64,
        leader_leo: u64,
        now: Instant,
    ) -> Option<Vec<u32>> {
        let f = self.followers.get_mut(&follower)?;
        if fetch_offset >= leader_leo {
            f.last_caught_up = now;
        } else if fetch_offset >= f.leader_leo_at_last_fetch {
            f.last_caught_up = f.last_caught_up.max(f.last_fetch);
        }
        f.log_end_offset = fetch_offset;
        f.last_fetch = now;
        f.leader_leo_at_last_fetch = leader_leo;
        let caught_up =
            fetch_offset >= self.high_watermark && fetch_offset >= self.epoch_start_offset;
        if self.pending.is_none() && !self.isr.contains(&follower) && caught_up {
            let mut isr = self.isr.clone();
            isr.push(follower);
            isr.sort_unstable();
            self.pending = Some(isr.clone());
            return Some(isr);
        }
        None
    }

    /// Recomputes the high watermark over the maximal ISR; returns it. It
    /// never goes back, so if the leader's log end fell below it (a bug),
    /// it stays above: the replica core refuses that (`HW <= LEO`).
    pub fn update_high_watermark(&mut self, leader_leo: u64) -> u64 {
        let min_isr = self
            .maximal_isr()
            .iter()
            .map(|id| {
                if *id == self.leader {
                    leader_leo
                } else {
                    self.follower_leo(*id).unwrap_or(0)
                }
            })
            .min()
            .unwrap_or(leader_leo);
        self.high_watermark = self.high_watermark.max(min_isr.min(leader_leo));
        self.high_watermark
    }

    /// The ISR without followers that have not caught up for `lag_max`, if
    /// that differs from the current one and no other change is pending
    /// (the returned change is then pending).
    pub fn shrink(&mut self, now: Instant, lag_max: Duration) -> Option<Vec<u32>> {
        if self.pending.is_some() {
            return None;
        }
        let isr: Vec<u32> =
            self.isr
                .iter()
                .copied()
                .filter(|id| {
                    *id == self.leader
                        || self.followers.get(id).is_some_and(|f| {
                            now.saturating_duration_since(f.last_caught_up) <= lag_max
                        })
                })
                .collect();
        if isr.len() == self.isr.len() {
            return None;
        }
        self.pending = Some(isr.clone());
        Some(isr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAG: Duration = Duration::from_millis(1000);

    #[test]
    fn given_followers_fetching_when_computing_high_watermark_should_take_isr_minimum() {
        let t0 = Instant::now();
        let mut t = IsrTracker::new(1, &[1, 2, 3], &[1, 2, 3], 0, 0, t0);
        assert_eq!(t.update_high_watermark(10), 0);
        t.on_fetch(2, 10, 10, t0);
        assert_eq!(t.update_high_watermark(10), 0, "follower 3 has not fetched");
        t.on_fetch(3, 7, 10, t0);
        assert_eq!(t.update_high_watermark(10), 7);
        t.on_fetch(3, 10, 10, t0);
        assert_eq!(t.update_high_watermark(10), 10);
    }

    #[test]
    fn given_high_watermark_when_isr_shrinks_and_follower_lags_should_never_go_back() {
        let t0 = Instant::now();
        let mut t = IsrTracker::new(1, &[1, 2], &[1, 2], 5, 0, t0);
        assert_eq!(t.update_high_watermark(8), 5);
        t.set_isr(&[1]);
        assert_eq!(t.update_high_watermark(8), 8);
        t.set_isr(&[1, 2]);
        assert_eq!(t.update_high_watermark(8), 8, "never goes back");
    }

    #[test]
    fn given_silent_follower_when_lag_passes_should_propose_shrink() {
        let t0 = Instant::now();
        let mut t = IsrTracker::new(1, &[1, 2, 3], &[1, 2, 3], 0, 0, t0);
        let t1 = t0 + Duration::from_millis(1500);
        t.on_fetch(2, 10, 10, t1);
        assert_eq!(t.shrink(t0 + Duration::from_millis(500), LAG), None);
        assert_eq!(t.shrink(t1, LAG), Some(vec![1, 2]));
    }

    #[test]
    fn given_follower_trailing_under_steady_load_when_fetching_should_stay_caught_up() {
        let t0 = Instant::now();
        let mut t = IsrTracker::new(1, &[1, 2], &[1, 2], 0, 0, t0);
        // Each fetch reaches the leader's end as of the previous fetch, never the current end.
        for i in 1..50u64 {
            let now = t0 + Duration::from_millis(i * 100);
            t.on_fetch(2, i * 10, i * 10 + 5, now);
        }
        let later = t0 + Duration::from_millis(5000);
        assert_eq!(t.shrink(later, LAG), None);
    }

    #[test]
    fn given_out_of_sync_follower_when_reaching_high_watermark_should_propose_rejoin() {
        let t0 = Instant::now();
        let mut t = IsrTracker::new(1, &[1, 2, 3], &[1, 2], 0, 0, t0);
        t.on_fetch(2, 20, 20, t0);
        assert_eq!(t.update_high_watermark(20), 20);
        assert_eq!(t.on_fetch(3, 5, 20, t0), None);
        assert_eq!(t.on_fetch(3, 20, 20, t0), Some(vec![1, 2, 3]));
    }

    #[test]
    fn given_new_leader_with_lagging_high_watermark_when_follower_reaches_it_should_wait_for_epoch_start(
    ) {
        // KAFKA-7128: the new leader's high watermark (5) lags what the old
        // leader acknowledged; its own epoch starts at its log end (20).
        let t0 = Instant::now();
        let mut t = IsrTracker::new(1, &[1, 2, 3], &[1, 2], 5, 20, t0);
        assert_eq!(
            t.on_fetch(3, 5, 20, t0),
            None,
            "at the high watermark but short of the epoch start"
        );
        assert_eq!(t.on_fetch(3, 19, 20, t0), None);
        assert_eq!(t.on_fetch(3, 20, 20, t0), Some(vec![1, 2, 3]));
    }

    #[test]
    fn given_pending_expansion_when_computing_high_watermark_should_count_the_joining_member() {
        let t0 = Instant::now();
        let mut t = IsrTracker::new(1, &[1, 2, 3], &[1, 2], 10, 0, t0);
        t.on_fetch(2, 30, 30, t0);
        assert_eq!(
            t.on_fetch(3, 10, 30, t0),
            Some(vec![1, 2, 3]),
            "3 reached the high watermark"
        );
        assert!(t.has_pending());
        // ZooKeeper may already have committed 3: the high watermark must not
        // pass what 3 holds.
        assert_eq!(t.update_high_watermark(30), 10);
        assert_eq!(t.isr(), &[1, 2], "min.insync counts only the committed ISR");
        t.on_fetch(3, 25, 30, t0);
        assert_eq!(t.update_high_watermark(30), 25);
    }

    #[test]
    fn given_pending_change_when_more_changes_come_should_propose_one_at_a_time() {
        let t0 = Instant::now();
        let mut t = IsrTracker::new(1, &[1, 2, 3], &[1, 2], 0, 0, t0);
        assert_eq!(t.on_fetch(3, 0, 0, t0), Some(vec![1, 2, 3]));
        let late = t0 + Duration::from_millis(5000);
        assert_eq!(t.shrink(late, LAG), None, "an expansion is in flight");
        t.proposal_failed();
        assert_eq!(t.shrink(late, LAG), Some(vec![1]));
        assert_eq!(t.on_fetch(3, 0, 0, late), None, "a shrink is in flight");
        t.set_isr(&[1]);
        assert!(!t.has_pending(), "the committed ISR settles it");
    }
}
