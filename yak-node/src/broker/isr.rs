//! The leader's view of its followers: their log end offsets, when each was
//! last caught up, the high watermark, and which ISR changes to ask for.
//! No I/O and no clock: callers pass `now`.
//!
//! Kafka's rules: the high watermark is the lowest log end offset in the
//! ISR and never goes back; a follower is caught up when it fetches from the
//! leader's log end offset as of its previous fetch; one not caught up for
//! `lag_max` leaves the ISR; one that reaches the high watermark rejoins.

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
    isr: Vec<u32>,
    followers: BTreeMap<u32, Follower>,
    high_watermark: u64,
}

impl IsrTracker {
    /// A new leadership: followers start as caught up now, at offset 0 until
    /// they fetch; `high_watermark` is what this broker knew as a follower.
    pub fn new(leader: u32, replicas: &[u32], isr: &[u32], high_watermark: u64, now: Instant) -> Self {
        let followers = replicas
            .iter()
            .filter(|r| **r != leader)
            .map(|r| {
                (*r, Follower { log_end_offset: 0, last_caught_up: now, last_fetch: now, leader_leo_at_last_fetch: 0 })
            })
            .collect();
        IsrTracker { leader, isr: isr.to_vec(), followers, high_watermark }
    }

    /// The ISR as this leader knows it.
    pub fn isr(&self) -> &[u32] {
        &self.isr
    }

    /// ZooKeeper changed the ISR.
    pub fn set_isr(&mut self, isr: &[u32]) {
        self.isr = isr.to_vec();
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
    /// the follower should rejoin it.
    pub fn on_fetch(&mut self, follower: u32, fetch_offset: u64, leader_leo: u64, now: Instant) -> Option<Vec<u32>> {
        let f = self.followers.get_mut(&follower)?;
        if fetch_offset >= leader_leo {
            f.last_caught_up = now;
        } else if fetch_offset >= f.leader_leo_at_last_fetch {
            f.last_caught_up = f.last_caught_up.max(f.last_fetch);
        }
        f.log_end_offset = fetch_offset;
        f.last_fetch = now;
        f.leader_leo_at_last_fetch = leader_leo;
        if !self.isr.contains(&follower) && fetch_offset >= self.high_watermark {
            let mut isr = self.isr.clone();
            isr.push(follower);
            isr.sort_unstable();
            return Some(isr);
        }
        None
    }

    /// Recomputes the high watermark; returns it. It never goes back.
    pub fn update_high_watermark(&mut self, leader_leo: u64) -> u64 {
        let min_isr = self
            .isr
            .iter()
            .map(|id| if *id == self.leader { leader_leo } else { self.follower_leo(*id).unwrap_or(0) })
            .min()
            .unwrap_or(leader_leo);
        self.high_watermark = self.high_watermark.max(min_isr.min(leader_leo));
        debug_assert!(self.high_watermark <= leader_leo, "high watermark above log end offset");
        self.high_watermark
    }

    /// The ISR without followers that have not caught up for `lag_max`, if
    /// that differs from the current one.
    pub fn shrink(&self, now: Instant, lag_max: Duration) -> Option<Vec<u32>> {
        let isr: Vec<u32> = self
            .isr
            .iter()
            .copied()
            .filter(|id| {
                *id == self.leader
                    || self.followers.get(id).is_some_and(|f| now.saturating_duration_since(f.last_caught_up) <= lag_max)
            })
            .collect();
        (isr.len() != self.isr.len()).then_some(isr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAG: Duration = Duration::from_millis(1000);

    #[test]
    fn given_followers_fetching_when_computing_high_watermark_should_take_isr_minimum() {
        let t0 = Instant::now();
        let mut t = IsrTracker::new(1, &[1, 2, 3], &[1, 2, 3], 0, t0);
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
        let mut t = IsrTracker::new(1, &[1, 2], &[1, 2], 5, t0);
        assert_eq!(t.update_high_watermark(8), 5);
        t.set_isr(&[1]);
        assert_eq!(t.update_high_watermark(8), 8);
        t.set_isr(&[1, 2]);
        assert_eq!(t.update_high_watermark(8), 8, "never goes back");
    }

    #[test]
    fn given_silent_follower_when_lag_passes_should_propose_shrink() {
        let t0 = Instant::now();
        let mut t = IsrTracker::new(1, &[1, 2, 3], &[1, 2, 3], 0, t0);
        let t1 = t0 + Duration::from_millis(1500);
        t.on_fetch(2, 10, 10, t1);
        assert_eq!(t.shrink(t1, LAG), Some(vec![1, 2]));
        assert_eq!(t.shrink(t0 + Duration::from_millis(500), LAG), None);
    }

    #[test]
    fn given_follower_trailing_under_steady_load_when_fetching_should_stay_caught_up() {
        let t0 = Instant::now();
        let mut t = IsrTracker::new(1, &[1, 2], &[1, 2], 0, t0);
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
        let mut t = IsrTracker::new(1, &[1, 2, 3], &[1, 2], 0, t0);
        t.on_fetch(2, 20, 20, t0);
        assert_eq!(t.update_high_watermark(20), 20);
        assert_eq!(t.on_fetch(3, 5, 20, t0), None);
        assert_eq!(t.on_fetch(3, 20, 20, t0), Some(vec![1, 2, 3]));
    }
}
