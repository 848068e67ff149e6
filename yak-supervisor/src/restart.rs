//! Restart policy for one child: exponential backoff and a restart budget.
//!
//! Owns: when a dead child may start again, and when to give it up.
//! Never: does I/O or reads the clock; the caller passes every `Instant`, so
//! tests drive it with simulated time.

use std::collections::VecDeque;
use std::time::{Duration, Instant};
use yak_protocol::limits::{
    SUPERVISOR_HEALTHY_AFTER_MS, SUPERVISOR_RESTARTS_MAX, SUPERVISOR_RESTART_BACKOFF_MS_MAX,
    SUPERVISOR_RESTART_BACKOFF_MS_MIN, SUPERVISOR_RESTART_WINDOW_MS,
    SUPERVISOR_ZOOKEEPER_RESTART_BACKOFF_MS_MAX,
};

/// First restart delay; doubles after each restart.
pub const BACKOFF_INITIAL: Duration = Duration::from_millis(SUPERVISOR_RESTART_BACKOFF_MS_MIN);
/// The delay never grows past this.
pub const BACKOFF_MAX: Duration = Duration::from_millis(SUPERVISOR_RESTART_BACKOFF_MS_MAX);
/// ZooKeeper's delay never grows past this: nothing works without it, so it
/// comes back fast every time and only the restart budget stops a crash loop.
pub const ZOOKEEPER_BACKOFF_MAX: Duration =
    Duration::from_millis(SUPERVISOR_ZOOKEEPER_RESTART_BACKOFF_MS_MAX);
/// A child up this long counts as healthy: its delay goes back to the start.
pub const HEALTHY_AFTER: Duration = Duration::from_millis(SUPERVISOR_HEALTHY_AFTER_MS);
/// More than `RESTARTS_MAX` restarts within `RESTART_WINDOW` gives the child up.
pub const RESTARTS_MAX: usize = SUPERVISOR_RESTARTS_MAX;
/// See [`RESTARTS_MAX`].
pub const RESTART_WINDOW: Duration = Duration::from_millis(SUPERVISOR_RESTART_WINDOW_MS);

/// What to do about a child that just exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start it again at this instant.
    RestartAt(Instant),
    /// Too many restarts in the window: leave it dead.
    GiveUp,
}

/// Backoff state of one child.
#[derive(Debug, Clone)]
pub struct RestartPolicy {
    delay_next: Duration,
    delay_max: Duration,
    started_at: Option<Instant>,
    /// Instants of recent restarts, oldest first, none older than the window.
    restarts: VecDeque<Instant>,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy::new()
    }
}

impl RestartPolicy {
    pub fn new() -> RestartPolicy {
        RestartPolicy::with_backoff_max(BACKOFF_MAX)
    }

    /// A policy whose delay never grows past `delay_max` (at least
    /// [`BACKOFF_INITIAL`]).
    pub fn with_backoff_max(delay_max: Duration) -> RestartPolicy {
        RestartPolicy {
            delay_next: BACKOFF_INITIAL,
            delay_max: delay_max.max(BACKOFF_INITIAL),
            started_at: None,
            restarts: VecDeque::with_capacity(RESTARTS_MAX + 1),
        }
    }

    /// The child was (re)started at `now`.
    pub fn started(&mut self, now: Instant) {
        self.started_at = Some(now);
    }

    /// The child exited at `now`: restart it after the current delay, or give up.
    pub fn exited(&mut self, now: Instant) -> Decision {
        let started_at = self.started_at.take();
        if started_at.is_some_and(|s| now.saturating_duration_since(s) >= HEALTHY_AFTER) {
            self.delay_next = BACKOFF_INITIAL;
        }
        while self
            .restarts
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= RESTART_WINDOW)
        {
            self.restarts.pop_front();
        }
        self.restarts.push_back(now);
        if self.restarts.len() > RESTARTS_MAX {
            return Decision::GiveUp;
        }
        debug_assert!(self.restarts.len() <= RESTARTS_MAX);
        let delay = self.delay_next;
        self.delay_next = (delay * 2).min(self.delay_max);
        debug_assert!(delay >= BACKOFF_INITIAL && delay <= self.delay_max);
        Decision::RestartAt(now + delay)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Runs the child for `up` then lets it die; returns the delay chosen.
    fn crash_after(
        policy: &mut RestartPolicy,
        now: &mut Instant,
        up: Duration,
    ) -> Option<Duration> {
        policy.started(*now);
        *now += up;
        match policy.exited(*now) {
            Decision::RestartAt(at) => {
                let delay = at - *now;
                *now = at;
                Some(delay)
            }
            Decision::GiveUp => None,
        }
    }

    #[test]
    fn given_repeated_crashes_when_restarting_should_double_delay_up_to_cap() {
        let mut policy = RestartPolicy::new();
        let mut now = Instant::now();
        let delays: Vec<u64> = (0..8)
            .map(|_| {
                crash_after(&mut policy, &mut now, ms(1000))
                    .unwrap()
                    .as_millis() as u64
            })
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    }

    #[test]
    fn given_zookeeper_policy_when_crashing_repeatedly_should_cap_delay_at_200ms_then_give_up_past_the_budget(
    ) {
        let mut policy = RestartPolicy::with_backoff_max(ZOOKEEPER_BACKOFF_MAX);
        let mut now = Instant::now();
        let delays: Vec<u64> = (0..RESTARTS_MAX)
            .map(|_| {
                crash_after(&mut policy, &mut now, ms(50))
                    .unwrap()
                    .as_millis() as u64
            })
            .collect();
        assert_eq!(delays, [100, 200, 200, 200, 200, 200, 200, 200, 200, 200]);
        assert_eq!(
            crash_after(&mut policy, &mut now, ms(50)),
            None,
            "past the budget: given up, for the caller to act on"
        );
    }

    #[test]
    fn given_child_up_30s_when_it_crashes_should_reset_delay() {
        let mut policy = RestartPolicy::new();
        let mut now = Instant::now();
        for _ in 0..4 {
            crash_after(&mut policy, &mut now, ms(10)).unwrap();
        }
        assert_eq!(
            crash_after(&mut policy, &mut now, ms(29_999)),
            Some(ms(1600))
        );
        assert_eq!(
            crash_after(&mut policy, &mut now, HEALTHY_AFTER),
            Some(ms(100))
        );
        assert_eq!(crash_after(&mut policy, &mut now, ms(10)), Some(ms(200)));
    }

    #[test]
    fn given_more_than_10_restarts_in_60s_when_crashing_should_give_up() {
        let mut policy = RestartPolicy::new();
        let mut now = Instant::now();
        for i in 0..RESTARTS_MAX {
            assert!(
                crash_after(&mut policy, &mut now, ms(0)).is_some(),
                "restart {i}"
            );
        }
        // 10 restarts took 0.1+0.2+...+5+5+5 = 31.3 s < 60 s: the 11th is refused.
        assert_eq!(crash_after(&mut policy, &mut now, ms(0)), None);
    }

    #[test]
    fn given_restarts_spread_over_more_than_60s_when_crashing_should_keep_restarting() {
        let mut policy = RestartPolicy::new();
        let mut now = Instant::now();
        // Up 7 s each time: never healthy, but at most ~6 restarts fit in 60 s.
        for i in 0..50 {
            assert!(
                crash_after(&mut policy, &mut now, ms(7_000)).is_some(),
                "restart {i}"
            );
        }
    }
}
