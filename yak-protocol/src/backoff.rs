//! Retry backoff for clients and a broker's follower fetcher: exponential with full jitter between a
//! minimum and a maximum (as Kafka's `retry.backoff.ms` /
//! `retry.backoff.max.ms`), so many clients retrying after one fault do not
//! come back in step. No I/O; the jitter source is a small xorshift seeded
//! from the clock and the pid, never a global.

use crate::limits::{CLIENT_RETRY_BACKOFF_MS_MAX, CLIENT_RETRY_BACKOFF_MS_MIN};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Exponential backoff with jitter.
#[derive(Debug, Clone)]
pub struct Backoff {
    min_ms: u64,
    max_ms: u64,
    state: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(CLIENT_RETRY_BACKOFF_MS_MIN, CLIENT_RETRY_BACKOFF_MS_MAX)
    }
}

impl Backoff {
    /// Backoff from `min_ms` doubling up to `max_ms`.
    pub fn new(min_ms: u64, max_ms: u64) -> Backoff {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let seed = nanos ^ (u64::from(std::process::id()) << 32) ^ 0x9E37_79B9_7F4A_7C15;
        Backoff {
            min_ms: min_ms.max(1),
            max_ms: max_ms.max(min_ms.max(1)),
            state: seed | 1,
        }
    }

    /// The wait before retry number `attempt` (0 for the first retry):
    /// uniform in [ceiling / 2, ceiling] where the ceiling is
    /// `min · 2^attempt`, capped at the maximum.
    pub fn delay(&mut self, attempt: u32) -> Duration {
        let ceiling = self
            .min_ms
            .saturating_mul(1u64 << attempt.min(20))
            .min(self.max_ms);
        let floor = ceiling / 2;
        let span = ceiling - floor + 1;
        Duration::from_millis(floor + self.next() % span)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_attempts_when_backing_off_should_double_within_jitter_and_cap() {
        let mut b = Backoff::new(20, 1000);
        for _ in 0..100 {
            let d0 = b.delay(0).as_millis() as u64;
            assert!((10..=20).contains(&d0), "first retry in [10, 20] ms: {d0}");
            let d3 = b.delay(3).as_millis() as u64;
            assert!(
                (80..=160).contains(&d3),
                "fourth retry in [80, 160] ms: {d3}"
            );
            let d30 = b.delay(30).as_millis() as u64;
            assert!((500..=1000).contains(&d30), "capped at the max: {d30}");
        }
    }

    #[test]
    fn given_many_draws_when_jittering_should_spread_the_delays() {
        let mut b = Backoff::new(20, 1000);
        let distinct: std::collections::BTreeSet<u128> =
            (0..200).map(|_| b.delay(5).as_millis()).collect();
        assert!(distinct.len() > 20, "jitter spreads retries: {distinct:?}");
    }
}
