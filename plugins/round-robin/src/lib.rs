//! Round-robin partitioner plugin: message `i` of a topic goes to partition
//! `i % partitions`, keyed or not. Perfectly even and deterministic; a key
//! does not stay on one partition.

use yak_partitioner_api::{declare_partitioner, Config, Message, Partitioner};

/// The next partition is one past the last.
pub struct RoundRobin {
    next: u64,
}

impl Partitioner for RoundRobin {
    fn new(_config: &Config) -> Self {
        RoundRobin { next: 0 }
    }

    fn partition(&mut self, msg: &Message<'_>) -> u32 {
        let p = (self.next % u64::from(msg.partitions())) as u32;
        self.next = self.next.wrapping_add(1);
        p
    }
}

declare_partitioner!(RoundRobin, "round-robin");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_n_partitions_when_partitioning_should_cycle_in_order() {
        let mut rr = RoundRobin::new(&Config {
            batch_bytes: 1,
            seed: 9,
        });
        let in_flight = [0u64; 4];
        let got: Vec<u32> = (0..8)
            .map(|i| {
                let key = if i % 2 == 0 {
                    Some(b"k".as_slice())
                } else {
                    None
                };
                rr.partition(&Message {
                    key,
                    value_len: 1,
                    in_flight: &in_flight,
                })
            })
            .collect();
        assert_eq!(got, [0, 1, 2, 3, 0, 1, 2, 3]);
    }

    #[test]
    fn given_many_messages_when_partitioning_should_spread_exactly_evenly() {
        for n in [1usize, 3, 7] {
            let mut rr = RoundRobin::new(&Config {
                batch_bytes: 1,
                seed: 0,
            });
            let in_flight = vec![0u64; n];
            let mut counts = vec![0u32; n];
            for _ in 0..(100 * n) {
                counts[rr.partition(&Message {
                    key: None,
                    value_len: 1,
                    in_flight: &in_flight,
                }) as usize] += 1;
            }
            assert!(
                counts.iter().all(|c| *c == 100),
                "{n} partitions: {counts:?}"
            );
        }
    }
}
