//! Random partitioner plugin: every message goes to a uniformly random
//! partition (xorshift64 seeded by the host), keyed or not. Even on average;
//! repeatable only for the same seed.

use yak_partitioner_api::{declare_partitioner, Config, Message, Partitioner, XorShift64};

/// A fresh random partition per message.
pub struct Random {
    rng: XorShift64,
}

impl Partitioner for Random {
    fn new(config: &Config) -> Self {
        Random {
            rng: XorShift64::new(config.seed),
        }
    }

    fn partition(&mut self, msg: &Message<'_>) -> u32 {
        self.rng.below(u64::from(msg.partitions())) as u32
    }
}

declare_partitioner!(Random, "random");

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seed: u64, n: usize, count: usize) -> Vec<u32> {
        let mut r = Random::new(&Config {
            batch_bytes: 1,
            seed,
        });
        let in_flight = vec![0u64; n];
        (0..count)
            .map(|_| {
                r.partition(&Message {
                    key: Some(b"k"),
                    value_len: 1,
                    in_flight: &in_flight,
                })
            })
            .collect()
    }

    #[test]
    fn given_many_messages_when_partitioning_should_cover_range_roughly_evenly() {
        let mut counts = [0u32; 5];
        for p in run(77, 5, 50_000) {
            counts[p as usize] += 1;
        }
        assert!(
            counts.iter().all(|c| (9_000..11_000).contains(c)),
            "{counts:?}"
        );
        assert!(run(1, 1, 100).iter().all(|p| *p == 0));
    }

    #[test]
    fn given_same_seed_when_partitioning_should_repeat_and_differ_for_other_seeds() {
        assert_eq!(run(5, 8, 100), run(5, 8, 100));
        assert_ne!(run(5, 8, 100), run(6, 8, 100));
    }
}
