//! Key-hash partitioner plugin: a keyed message goes to
//! `(murmur2(key) & 0x7fffffff) % partitions`, the partition Kafka's Java
//! client picks, so a key always lands on the same partition. An unkeyed
//! message falls back to round-robin (deterministic, even).

use yak_partitioner_api::{declare_partitioner, key_partition, Config, Message, Partitioner};

/// Kafka's key hash; round-robin for unkeyed messages.
pub struct KeyHash {
    next_unkeyed: u64,
}

impl Partitioner for KeyHash {
    fn new(_config: &Config) -> Self {
        KeyHash { next_unkeyed: 0 }
    }

    fn partition(&mut self, msg: &Message<'_>) -> u32 {
        match msg.key {
            Some(key) => key_partition(key, msg.partitions()),
            None => {
                let p = (self.next_unkeyed % u64::from(msg.partitions())) as u32;
                self.next_unkeyed = self.next_unkeyed.wrapping_add(1);
                p
            }
        }
    }
}

declare_partitioner!(KeyHash, "key-hash");

#[cfg(test)]
mod tests {
    use super::*;

    fn place(kh: &mut KeyHash, key: Option<&[u8]>, partitions: usize) -> u32 {
        let in_flight = vec![0u64; partitions];
        kh.partition(&Message {
            key,
            value_len: 10,
            in_flight: &in_flight,
        })
    }

    #[test]
    fn given_kafka_reference_keys_when_partitioning_should_pick_kafkas_partition() {
        // (murmur2(key) & 0x7fffffff) % n, with murmur2 values from Kafka's
        // UtilsTest.testMurmur2: the partitions Kafka's default partitioner picks.
        let cases: &[(&[u8], u32, u32)] = &[
            (b"21", 3, 0),
            (b"21", 100, 40),
            (b"foobar", 10, 6),
            (b"foobar", 100, 66),
            (b"a-little-bit-long-string", 3, 2),
            (b"a-little-bit-longer-string", 6, 5),
            (b"a-little-bit-longer-string", 10, 9),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", 100, 77),
            (b"abc", 6, 3),
            (b"abc", 10, 7),
        ];
        let mut kh = KeyHash::new(&Config {
            batch_bytes: 1,
            seed: 1,
        });
        for (key, n, want) in cases {
            assert_eq!(
                place(&mut kh, Some(key), *n as usize),
                *want,
                "{} over {n}",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn given_same_key_when_partitioning_twice_should_be_deterministic_across_instances() {
        let mut a = KeyHash::new(&Config {
            batch_bytes: 1,
            seed: 1,
        });
        let mut b = KeyHash::new(&Config {
            batch_bytes: 99,
            seed: 2,
        });
        for i in 0..1000 {
            let key = format!("user-{i}");
            let p = place(&mut a, Some(key.as_bytes()), 7);
            assert!(p < 7);
            assert_eq!(p, place(&mut a, Some(key.as_bytes()), 7));
            assert_eq!(p, place(&mut b, Some(key.as_bytes()), 7));
        }
    }

    #[test]
    fn given_many_keys_when_partitioning_should_spread_roughly_evenly() {
        let mut kh = KeyHash::new(&Config {
            batch_bytes: 1,
            seed: 1,
        });
        let mut counts = [0u32; 4];
        for i in 0..4000 {
            counts[place(&mut kh, Some(format!("key-{i}").as_bytes()), 4) as usize] += 1;
        }
        assert!(counts.iter().all(|c| (800..1200).contains(c)), "{counts:?}");
    }

    #[test]
    fn given_unkeyed_messages_when_partitioning_should_round_robin() {
        let mut kh = KeyHash::new(&Config {
            batch_bytes: 1,
            seed: 1,
        });
        let got: Vec<u32> = (0..6).map(|_| place(&mut kh, None, 3)).collect();
        assert_eq!(got, [0, 1, 2, 0, 1, 2]);
    }
}
