//! Least-loaded partitioner plugin: every message goes to the partition with
//! the fewest unacknowledged records, as counted by the producer. Ties are
//! broken round-robin, so an idle producer still spreads evenly. Keys are
//! ignored.

use yak_partitioner_api::{declare_partitioner, Config, Message, Partitioner};

/// Fewest in-flight records wins.
pub struct LeastLoaded {
    start: u64,
}

impl Partitioner for LeastLoaded {
    fn new(_config: &Config) -> Self {
        LeastLoaded { start: 0 }
    }

    fn partition(&mut self, msg: &Message<'_>) -> u32 {
        let n = msg.partitions();
        let first = (self.start % u64::from(n)) as u32;
        self.start = self.start.wrapping_add(1);
        (0..n)
            .map(|i| (first + i) % n)
            .min_by_key(|p| msg.in_flight[*p as usize])
            .unwrap_or(first)
    }
}

declare_partitioner!(LeastLoaded, "least-loaded");

#[cfg(test)]
mod tests {
    use super::*;

    fn place(l: &mut LeastLoaded, in_flight: &[u64]) -> u32 {
        l.partition(&Message {
            key: None,
            value_len: 1,
            in_flight,
        })
    }

    #[test]
    fn given_loads_when_partitioning_should_pick_the_least_loaded() {
        let mut l = LeastLoaded::new(&Config {
            batch_bytes: 1,
            seed: 0,
        });
        for _ in 0..10 {
            assert_eq!(place(&mut l, &[5, 9, 1, 3]), 2);
        }
    }

    #[test]
    fn given_equal_loads_when_partitioning_should_rotate() {
        let mut l = LeastLoaded::new(&Config {
            batch_bytes: 1,
            seed: 0,
        });
        let got: Vec<u32> = (0..6).map(|_| place(&mut l, &[0, 0, 0])).collect();
        assert_eq!(got, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn given_producer_counting_in_flight_when_partitioning_should_keep_loads_level() {
        let mut l = LeastLoaded::new(&Config {
            batch_bytes: 1,
            seed: 0,
        });
        let mut loads = [0u64, 40, 7, 0];
        for _ in 0..1000 {
            let p = place(&mut l, &loads) as usize;
            loads[p] += 1;
        }
        let (min, max) = (
            loads.iter().min().unwrap_or(&0),
            loads.iter().max().unwrap_or(&0),
        );
        assert!(max - min <= 1, "{loads:?}");
    }
}
