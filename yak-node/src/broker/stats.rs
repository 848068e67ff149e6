//! The broker's counters for metrics: requests and bytes per kind, open
//! connections, and fixed-bucket latency histograms (produce, fsync).
//!
//! Owns: lock-free atomics the request and flush paths bump, and their
//! snapshot as a protocol [`BrokerStatsReport`].
//! Never: takes a lock, allocates or does I/O on the hot path; formats
//! metrics (the supervisor does).

use crate::limits::LATENCY_BUCKETS_US;
use crate::protocol::{BrokerStatsReport, HistogramReport};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const BUCKETS: usize = LATENCY_BUCKETS_US.len() + 1;

/// A latency histogram over [`LATENCY_BUCKETS_US`] (+Inf last): one atomic
/// per bucket and one for the sum, so observing is a few relaxed adds.
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS],
    sum_us: AtomicU64,
}

impl Histogram {
    /// Counts one observation.
    pub fn observe(&self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BUCKETS_US
            .iter()
            .position(|&bound| us <= bound)
            .unwrap_or(BUCKETS - 1);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The counts so far (per bucket, not cumulative).
    pub fn report(&self) -> HistogramReport {
        HistogramReport {
            bounds_us: LATENCY_BUCKETS_US.to_vec(),
            counts: self
                .counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            sum_us: self.sum_us.load(Ordering::Relaxed),
        }
    }
}

/// Every counter of one broker, shared by its threads.
#[derive(Debug, Default)]
pub struct BrokerStats {
    produce_requests: AtomicU64,
    produce_errors: AtomicU64,
    produce_bytes: AtomicU64,
    fetch_requests_consumer: AtomicU64,
    fetch_requests_follower: AtomicU64,
    fetch_bytes_consumer: AtomicU64,
    fetch_bytes_follower: AtomicU64,
    /// Open client connections; the server's accept loop keeps it.
    pub connections: Arc<AtomicUsize>,
    /// From a produce request's arrival to its answer.
    pub produce_latency: Histogram,
    /// One fsync of a partition's log.
    pub fsync_latency: Histogram,
}

impl BrokerStats {
    /// A produce request of `bytes` batch bytes arrived.
    pub fn produce_received(&self, bytes: usize) {
        self.produce_requests.fetch_add(1, Ordering::Relaxed);
        self.produce_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// A produce request was answered after `elapsed`, with an error or not.
    pub fn produce_answered(&self, elapsed: Duration, failed: bool) {
        if failed {
            self.produce_errors.fetch_add(1, Ordering::Relaxed);
        }
        self.produce_latency.observe(elapsed);
    }

    /// A fetch was answered with `bytes` record bytes, to a follower or a consumer.
    pub fn fetch_answered(&self, follower: bool, bytes: u64) {
        let (requests, total) = if follower {
            (&self.fetch_requests_follower, &self.fetch_bytes_follower)
        } else {
            (&self.fetch_requests_consumer, &self.fetch_bytes_consumer)
        };
        requests.fetch_add(1, Ordering::Relaxed);
        total.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Everything so far.
    pub fn report(&self) -> BrokerStatsReport {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        BrokerStatsReport {
            produce_requests: load(&self.produce_requests),
            produce_errors: load(&self.produce_errors),
            produce_bytes: load(&self.produce_bytes),
            fetch_requests_consumer: load(&self.fetch_requests_consumer),
            fetch_requests_follower: load(&self.fetch_requests_follower),
            fetch_bytes_consumer: load(&self.fetch_bytes_consumer),
            fetch_bytes_follower: load(&self.fetch_bytes_follower),
            connections: self.connections.load(Ordering::Relaxed) as u64,
            produce_latency: self.produce_latency.report(),
            fsync_latency: self.fsync_latency.report(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_latencies_when_observed_should_land_in_the_first_bucket_at_or_above_them() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(100)); // exactly on the first bound
        h.observe(Duration::from_micros(101));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60)); // past every bound: +Inf
        let r = h.report();
        assert_eq!(r.counts.len(), r.bounds_us.len() + 1);
        assert_eq!(r.counts[0], 1);
        assert_eq!(r.counts[1], 1);
        let at_5ms = r
            .bounds_us
            .iter()
            .position(|&b| b == 5_000)
            .expect("a 5 ms bound");
        assert_eq!(r.counts[at_5ms], 1);
        assert_eq!(r.counts[BUCKETS - 1], 1);
        assert_eq!(r.counts.iter().sum::<u64>(), 4);
        assert_eq!(r.sum_us, 100 + 101 + 3_000 + 60_000_000);
    }

    #[test]
    fn given_requests_when_counted_should_report_them_by_kind() {
        let s = BrokerStats::default();
        s.produce_received(100);
        s.produce_received(50);
        s.produce_answered(Duration::from_millis(2), false);
        s.produce_answered(Duration::from_millis(2), true);
        s.fetch_answered(true, 70);
        s.fetch_answered(false, 30);
        s.fetch_answered(false, 0);
        s.connections.fetch_add(2, Ordering::Relaxed);
        let r = s.report();
        assert_eq!(
            (r.produce_requests, r.produce_bytes, r.produce_errors),
            (2, 150, 1)
        );
        assert_eq!((r.fetch_requests_follower, r.fetch_bytes_follower), (1, 70));
        assert_eq!((r.fetch_requests_consumer, r.fetch_bytes_consumer), (2, 30));
        assert_eq!(r.connections, 2);
        assert_eq!(r.produce_latency.counts.iter().sum::<u64>(), 2);
        assert_eq!(r.fsync_latency.counts.iter().sum::<u64>(), 0);
    }
}
