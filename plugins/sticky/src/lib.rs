//! Uniform sticky partitioner plugin (KIP-794): every message goes to the
//! current sticky partition until `batch_bytes` of keys and values have gone
//! there, then a new partition is chosen, favouring partitions with fewer
//! unacknowledged records (KIP-794's adaptive switching: weight
//! `max_in_flight - in_flight[p] + 1`). Keys are ignored, as with Kafka's
//! `partitioner.ignore.keys=true`; the producer's built-in default combines
//! this with key-hash for keyed messages.

use yak_partitioner_api::{declare_partitioner, Config, Message, Partitioner, XorShift64};

/// Sticks to one partition per batch.
pub struct Sticky {
    batch_bytes: u64,
    current: Option<u32>,
    produced_bytes: u64,
    rng: XorShift64,
}

impl Sticky {
    fn choose(&mut self, in_flight: &[u64]) -> u32 {
        let max = in_flight.iter().copied().max().unwrap_or(0);
        let weights = in_flight.iter().map(|n| max - n + 1);
        let total: u64 = weights.clone().sum();
        let mut pick = self.rng.below(total);
        for (p, w) in weights.enumerate() {
            if pick < w {
                return p as u32;
            }
            pick -= w;
        }
        0
    }
}

impl Partitioner for Sticky {
    fn new(config: &Config) -> Self {
        Sticky {
            batch_bytes: config.batch_bytes.max(1),
            current: None,
            produced_bytes: 0,
            rng: XorShift64::new(config.seed),
        }
    }

    fn partition(&mut self, msg: &Message<'_>) -> u32 {
        let full = self.produced_bytes >= self.batch_bytes;
        let partition = match self.current {
            Some(p) if p < msg.partitions() && !full => p,
            _ => {
                let p = self.choose(msg.in_flight);
                self.current = Some(p);
                self.produced_bytes = 0;
                p
            }
        };
        self.produced_bytes += (msg.value_len + msg.key.map_or(0, <[u8]>::len)) as u64;
        partition
    }
}

declare_partitioner!(Sticky, "sticky");

#[cfg(test)]
mod tests {
    use super::*;

    fn place(s: &mut Sticky, value_len: usize, in_flight: &[u64]) -> u32 {
        s.partition(&Message {
            key: None,
            value_len,
            in_flight,
        })
    }

    #[test]
    fn given_batch_bytes_when_partitioning_should_stick_for_one_batch_then_switch() {
        let mut s = Sticky::new(&Config {
            batch_bytes: 1000,
            seed: 5,
        });
        let idle = [0u64; 4];
        let first = place(&mut s, 100, &idle);
        // 10 messages of 100 bytes fill the batch: all on one partition.
        assert!((0..9).all(|_| place(&mut s, 100, &idle) == first));
        let mut partitions = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let p = place(&mut s, 100, &idle);
            assert!(p < 4);
            partitions.insert(p);
        }
        assert_eq!(partitions.len(), 4, "moves over every partition in time");
    }

    #[test]
    fn given_many_batches_when_partitioning_should_be_roughly_uniform() {
        let mut s = Sticky::new(&Config {
            batch_bytes: 100,
            seed: 11,
        });
        let idle = [0u64; 4];
        let mut counts = [0u32; 4];
        for _ in 0..40_000 {
            counts[place(&mut s, 10, &idle) as usize] += 1;
        }
        assert!(
            counts.iter().all(|c| (8_000..12_000).contains(c)),
            "{counts:?}"
        );
    }

    #[test]
    fn given_one_loaded_partition_when_switching_should_rarely_pick_it() {
        let mut s = Sticky::new(&Config {
            batch_bytes: 1,
            seed: 3,
        });
        let loads = [1000u64, 0, 0];
        let on_loaded = (0..3000).filter(|_| place(&mut s, 10, &loads) == 0).count();
        assert!(
            on_loaded < 30,
            "picked the loaded partition {on_loaded} times"
        );
    }

    #[test]
    fn given_same_seed_when_partitioning_should_repeat_choices() {
        let idle = [0u64; 5];
        let run = |seed| {
            let mut s = Sticky::new(&Config {
                batch_bytes: 50,
                seed,
            });
            (0..100)
                .map(|_| place(&mut s, 20, &idle))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(8), run(8));
    }
}
