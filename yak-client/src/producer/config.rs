//! What a producer is told (its configuration) and what it tells back:
//! its report, each acknowledged batch, its latency histogram.

use hdrhistogram::Histogram;
use std::time::Duration;
use yak_protocol::batch::Compression;
use yak_protocol::limits::{
    BATCH_BYTES_DEFAULT, DELIVERY_TIMEOUT_MS_DEFAULT, LINGER_MS_DEFAULT, MESSAGE_BYTES_MAX_DEFAULT,
};
use yak_protocol::Acks;

/// How a producer behaves.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// 0: fire and forget; 1: leader wrote it; -1: every in-sync replica
    /// has it (the wire's i8; [`Acks`] converts with `.into()`). Any other
    /// value is refused by [`Producer::connect`].
    pub acks: i8,
    /// How long a partial batch waits for more messages.
    pub linger: Duration,
    /// A batch is sent once it reaches this size.
    pub batch_bytes: usize,
    /// Largest single message (key + value + overhead).
    pub max_message_bytes: usize,
    /// How long a message may take to be acknowledged, retries included.
    pub delivery_timeout: Duration,
    /// Create a missing topic with the cluster defaults.
    pub create_topics: bool,
    /// Number batches so a resent one is never written twice.
    pub idempotent: bool,
    /// Record each message's ack latency (from its batch's first message to the ack).
    pub record_latency: bool,
    /// Codec for each batch's records (stored compressed as sent).
    pub compression: Compression,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All.into(),
            linger: Duration::from_millis(LINGER_MS_DEFAULT),
            batch_bytes: BATCH_BYTES_DEFAULT,
            max_message_bytes: MESSAGE_BYTES_MAX_DEFAULT,
            delivery_timeout: Duration::from_millis(DELIVERY_TIMEOUT_MS_DEFAULT),
            create_topics: true,
            idempotent: true,
            record_latency: false,
            compression: Compression::None,
        }
    }
}

/// Counts of what happened to the messages sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerReport {
    /// Messages acknowledged.
    pub acked: u64,
    /// Messages given up on.
    pub failed: u64,
    /// Batches sent (first attempts).
    pub batches: u64,
    /// Produce requests written to a broker: one per batch, plus one per retry.
    pub requests: u64,
    /// The first error that failed a message.
    pub first_error: Option<String>,
    /// Messages the partitioner failed to place (an error, a panic, a
    /// partition out of range), placed by the built-in default instead.
    pub partitioner_fallbacks: u64,
    /// The first partitioner failure.
    pub partitioner_error: Option<String>,
}

/// One acknowledged batch, as seen by an ack observer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchAck {
    /// Partition the batch was written to.
    pub partition: u32,
    /// Records in the batch.
    pub records: u64,
    /// From the batch's first send to its acknowledgement, retries included.
    pub latency: Duration,
}

/// Called once per acknowledged batch (acks 1 or all).
pub type AckObserver = Box<dyn FnMut(&str, BatchAck) + Send>;

/// A microsecond latency histogram: 1 µs to 10 min, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("invariant: constant bounds are valid")
}
