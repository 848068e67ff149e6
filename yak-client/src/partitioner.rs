//! Built-in partitioning: Kafka's default. A keyed message goes to
//! `murmur2(key) & 0x7fffffff % partitions`, the partition Kafka's Java
//! client would pick; an unkeyed one sticks to one partition until its batch
//! is full, then moves on (uniform sticky, KIP-794). Also the
//! [`Partitioner`] trait that makes the producer's strategy pluggable.

use yak_partitioner_api::XorShift64;
pub use yak_partitioner_api::{key_partition, murmur2, Message};

use super::plugin_error::PluginError;

/// How a producer picks a partition: the built-in [`DefaultPartitioner`] or
/// a strategy loaded from a plugin (`plugin::PluginPartitioner`).
/// The producer checks the answer is below `msg.partitions()` and falls back
/// to the built-in default when it is not or when this returns an error.
pub trait Partitioner: Send {
    /// The strategy's name, for reports.
    fn name(&self) -> &str;
    /// Picks a partition of `topic` for `msg`.
    fn partition(&mut self, topic: &str, msg: &Message<'_>) -> Result<u32, PluginError>;
    /// The producer closed a full batch for `partition` of `topic`.
    fn on_batch_full(&mut self, _topic: &str, _partition: u32, _partitions: u32) {}
}

/// Kafka's default strategy: key hash for keyed messages, sticky otherwise.
#[derive(Debug)]
pub struct DefaultPartitioner {
    sticky: Option<u32>,
    rng: XorShift64,
}

impl Default for DefaultPartitioner {
    fn default() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x2545_f491, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
        DefaultPartitioner {
            sticky: None,
            rng: XorShift64::new(seed),
        }
    }
}

impl DefaultPartitioner {
    /// Picks a partition for a message.
    pub fn partition(&mut self, key: Option<&[u8]>, partitions: u32) -> u32 {
        match key {
            Some(k) => key_partition(k, partitions),
            None => match self.sticky {
                Some(p) if p < partitions => p,
                _ => {
                    let p = (self.rng.next_u64() % u64::from(partitions)) as u32;
                    self.sticky = Some(p);
                    p
                }
            },
        }
    }

    /// The sticky partition's batch was sent: pick another for the next one.
    pub fn on_batch_full(&mut self, partition: u32, partitions: u32) {
        if self.sticky == Some(partition) && partitions > 1 {
            let step = 1 + (self.rng.next_u64() % u64::from(partitions - 1)) as u32;
            self.sticky = Some((partition + step) % partitions);
        }
    }
}

impl Partitioner for DefaultPartitioner {
    fn name(&self) -> &str {
        "default (key-hash, sticky)"
    }

    fn partition(&mut self, _topic: &str, msg: &Message<'_>) -> Result<u32, PluginError> {
        Ok(DefaultPartitioner::partition(
            self,
            msg.key,
            msg.partitions(),
        ))
    }

    fn on_batch_full(&mut self, _topic: &str, partition: u32, partitions: u32) {
        DefaultPartitioner::on_batch_full(self, partition, partitions);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_unkeyed_messages_when_batch_fills_should_switch_partition() {
        let mut p = DefaultPartitioner::default();
        let first = p.partition(None, 3);
        assert_eq!(p.partition(None, 3), first);
        p.on_batch_full(first, 3);
        let second = p.partition(None, 3);
        assert_ne!(second, first);
        assert!(second < 3);
    }

    #[test]
    fn given_same_key_when_partitioning_should_always_pick_same_partition() {
        let mut p = DefaultPartitioner::default();
        for i in 0..100u32 {
            let key = format!("key-{i}");
            let a = p.partition(Some(key.as_bytes()), 7);
            assert_eq!(a, p.partition(Some(key.as_bytes()), 7));
            assert!(a < 7);
        }
    }
}
