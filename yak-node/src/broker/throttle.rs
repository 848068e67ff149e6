//! The catch-up throttle of a reassignment (`--throttle-bytes-per-sec`):
//! a token bucket the follower fetchers share, charged with the bytes
//! fetched for replicas that are being added and are not in the ISR yet
//! (as Kafka's follower throttle, an in-sync replica is never throttled).
//! No I/O and no clock of its own: callers pass `now`.

use crate::limits::THROTTLE_WINDOW_MS;
use std::time::{Duration, Instant};

/// A byte budget refilled at `rate` bytes per second, holding at most one
/// second's worth. It may go below zero: a fetch answer is charged whole
/// (a batch is never split), and the debt is paid before the next fetch.
#[derive(Debug, Clone)]
pub struct Throttle {
    rate_bytes_per_sec: u64,
    available_bytes: f64,
    refilled_at: Instant,
}

impl Throttle {
    /// A full bucket at `rate_bytes_per_sec` (at least 1).
    pub fn new(rate_bytes_per_sec: u64, now: Instant) -> Self {
        let rate = rate_bytes_per_sec.max(1);
        Throttle {
            rate_bytes_per_sec: rate,
            available_bytes: rate as f64 * THROTTLE_WINDOW_MS as f64 / 1000.0,
            refilled_at: now,
        }
    }

    /// The rate.
    pub fn rate_bytes_per_sec(&self) -> u64 {
        self.rate_bytes_per_sec
    }

    /// Changes the rate, keeping what is available (capped to the new rate).
    pub fn set_rate(&mut self, rate_bytes_per_sec: u64, now: Instant) {
        self.refill(now);
        self.rate_bytes_per_sec = rate_bytes_per_sec.max(1);
        self.available_bytes = self.available_bytes.min(self.rate_bytes_per_sec as f64);
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled_at);
        self.refilled_at = now;
        self.available_bytes = (self.available_bytes
            + elapsed.as_secs_f64() * self.rate_bytes_per_sec as f64)
            .min(self.rate_bytes_per_sec as f64);
    }

    /// How many bytes a throttled fetch may ask for now (0: wait).
    pub fn allowance_bytes(&mut self, now: Instant) -> u32 {
        self.refill(now);
        if self.available_bytes <= 0.0 {
            return 0;
        }
        let window = self.rate_bytes_per_sec as f64 * THROTTLE_WINDOW_MS as f64 / 1000.0;
        self.available_bytes
            .min(window)
            .max(1.0)
            .min(u32::MAX as f64) as u32
    }

    /// How long until something is available again.
    pub fn wait(&mut self, now: Instant) -> Duration {
        self.refill(now);
        if self.available_bytes > 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64((1.0 - self.available_bytes) / self.rate_bytes_per_sec as f64)
    }

    /// Bytes fetched for throttled replicas.
    pub fn charge(&mut self, bytes: u64, now: Instant) {
        self.refill(now);
        self.available_bytes -= bytes as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_steady_fetching_when_throttled_should_average_the_rate() {
        let start = Instant::now();
        let mut t = Throttle::new(10_000, start);
        let (mut now, mut fetched) = (start, 0u64);
        while now < start + Duration::from_secs(10) {
            let allowed = t.allowance_bytes(now);
            if allowed == 0 {
                now += t.wait(now).max(Duration::from_millis(1));
                continue;
            }
            // Answers come in whole batches of 4 KiB, over what was allowed.
            let got = u64::from(allowed).div_ceil(4096) * 4096;
            t.charge(got, now);
            fetched += got;
            now += Duration::from_millis(5);
        }
        let rate = fetched as f64 / 10.0;
        assert!((9_000.0..=11_500.0).contains(&rate), "{rate} bytes/s");
    }

    #[test]
    fn given_debt_when_asking_should_wait_until_paid() {
        let now = Instant::now();
        let mut t = Throttle::new(1000, now);
        t.charge(3000, now);
        assert_eq!(t.allowance_bytes(now), 0);
        let wait = t.wait(now);
        assert!(
            wait > Duration::from_millis(2000) && wait < Duration::from_millis(3000),
            "{wait:?}"
        );
        assert!(t.allowance_bytes(now + wait + Duration::from_millis(10)) > 0);
        t.set_rate(5, now);
        assert_eq!(t.rate_bytes_per_sec(), 5);
    }
}
