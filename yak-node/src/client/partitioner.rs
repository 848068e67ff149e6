//! Built-in partitioning: Kafka's default. A keyed message goes to
//! `murmur2(key) & 0x7fffffff % partitions`, the partition Kafka's Java
//! client would pick; an unkeyed one sticks to one partition until its batch
//! is full, then moves on (uniform sticky, KIP-794).

/// Kafka's murmur2 hash of `data`.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default partitioner picks for `key`.
pub fn key_partition(key: &[u8], partitions: u32) -> u32 {
    ((murmur2(key) & 0x7fff_ffff) as u32) % partitions
}

/// Kafka's default strategy: key hash for keyed messages, sticky otherwise.
#[derive(Debug)]
pub struct DefaultPartitioner {
    sticky: Option<u32>,
    rng: u64,
}

impl Default for DefaultPartitioner {
    fn default() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x2545_f491, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
        DefaultPartitioner { sticky: None, rng: seed | 1 }
    }
}

impl DefaultPartitioner {
    fn next_random(&mut self) -> u64 {
        // xorshift64: cheap, good enough to spread sticky choices.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Picks a partition for a message.
    pub fn partition(&mut self, key: Option<&[u8]>, partitions: u32) -> u32 {
        match key {
            Some(k) => key_partition(k, partitions),
            None => match self.sticky {
                Some(p) if p < partitions => p,
                _ => {
                    let p = (self.next_random() % u64::from(partitions)) as u32;
                    self.sticky = Some(p);
                    p
                }
            },
        }
    }

    /// The sticky partition's batch was sent: pick another for the next one.
    pub fn on_batch_full(&mut self, partition: u32, partitions: u32) {
        if self.sticky == Some(partition) && partitions > 1 {
            let step = 1 + (self.next_random() % u64::from(partitions - 1)) as u32;
            self.sticky = Some((partition + step) % partitions);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_kafka_reference_keys_when_hashing_should_match_kafka_murmur2() {
        // Pairs from Kafka's own murmur2 unit test.
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            (b"abc", 479_470_107),
        ];
        for (key, want) in cases {
            assert_eq!(murmur2(key), *want, "{}", String::from_utf8_lossy(key));
        }
    }

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
