//! The workloads of `bench partitioners`: what each scenario models, what a
//! strategy should do in it, and the messages it sends (keys, rate, topic
//! shape). Pure: never touches the cluster.

use yak_partitioner_api::XorShift64;
use yak_protocol::limits::{
    BENCH_LOW_RATE_MSGS_PER_SEC, BENCH_MANY_PARTITIONS, BENCH_SLOW_BROKER_MSGS_PER_SEC,
};

/// Distinct keys of the skewed-keys scenario.
pub const ZIPF_KEYS: u64 = 10_000;
/// Exponent of the skewed-keys scenario's Zipf law (rank r has weight r^-s).
pub const ZIPF_EXPONENT: f64 = 1.1;
/// Seed of the skewed-keys key sequence; xored with the round, so every
/// plugin of a round sees the same keys.
const ZIPF_SEED: u64 = 0x5eed_21bf_0000_0001;

/// A scenario where the strategies' designs matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    /// Uniform keys at full speed.
    Uniform,
    /// Zipf-distributed keys at full speed.
    SkewedKeys,
    /// Unkeyed, at a fixed modest rate with the default linger.
    LowRate,
    /// Unkeyed, at a steady rate, while one broker is paused on a duty cycle.
    SlowBroker,
    /// Unkeyed at full speed over many partitions.
    ManyPartitions,
}

/// How a scenario's messages are keyed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Keys {
    /// No keys.
    None,
    /// Message `i` has key `key-{i % n}`.
    Cyclic(u64),
    /// Keys `key-{rank}` drawn from a Zipf law over `n` ranks.
    Zipf(u64),
}

/// One scenario's workload after flags are applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Which scenario.
    pub scenario: Scenario,
    /// Messages per run.
    pub messages: u64,
    /// Partitions of each run's topic.
    pub partitions: u32,
    /// Replicas per partition (`None`: the cluster default).
    pub replication_factor: Option<u32>,
    /// How messages are keyed.
    pub keys: Keys,
    /// Messages per second (`None`: as fast as the producer takes them).
    pub rate_per_sec: Option<u64>,
    /// One broker is paused on a duty cycle during the run.
    pub slow_broker: bool,
}

/// The knobs a user sets for every scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Knobs {
    /// Messages per run in every scenario (`None`: each scenario's default).
    pub messages: Option<u64>,
    /// Keys of the uniform scenario.
    pub uniform_keys: u64,
    /// Partitions, in every scenario but many-partitions.
    pub partitions: u32,
    /// Replicas per partition, in every scenario but slow-broker and many-partitions.
    pub replication_factor: Option<u32>,
}

impl Scenario {
    /// Every scenario, in report order.
    pub const ALL: [Scenario; 5] = [
        Scenario::Uniform,
        Scenario::SkewedKeys,
        Scenario::LowRate,
        Scenario::SlowBroker,
        Scenario::ManyPartitions,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Uniform => "uniform",
            Scenario::SkewedKeys => "skewed-keys",
            Scenario::LowRate => "low-rate",
            Scenario::SlowBroker => "slow-broker",
            Scenario::ManyPartitions => "many-partitions",
        }
    }

    /// Parses a name; `None` for an unknown one.
    pub fn parse(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The scenarios a list of names asks for (`all` is every one), each
    /// once, in report order; an unknown name is an error naming the known.
    pub fn parse_list(names: &[String]) -> Result<Vec<Scenario>, String> {
        let mut out = Vec::new();
        for name in names {
            let chosen: Vec<Scenario> = match name.as_str() {
                "all" => Scenario::ALL.to_vec(),
                other => vec![Scenario::parse(other).ok_or_else(|| {
                    let known: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
                    format!(
                        "unknown scenario '{other}' (known: {}, all)",
                        known.join(", ")
                    )
                })?],
            };
            for s in chosen {
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// What the scenario models and what a strategy should do in it.
    pub fn description(self) -> &'static str {
        match self {
            Scenario::Uniform => {
                "Keys spread evenly (message i has key key-{i % keys}), sent as fast as the producer takes \
                 them: the baseline. Every strategy spreads load evenly here; key-hash also keeps each key on \
                 one partition, the others do not."
            }
            Scenario::SkewedKeys => {
                "Keys drawn from a Zipf law (s = 1.1 over 10,000 keys), as real customer or device ids are: \
                 the most frequent key alone carries about 15% of the messages. Key-hash must put every \
                 message of a key on one partition, so the partition holding the hot keys is overloaded; \
                 key-blind strategies stay even but give up per-key order."
            }
            Scenario::LowRate => {
                "Unkeyed messages at a fixed, modest rate (2,000 msg/s) with the default 5 ms linger: the \
                 case uniform sticky (KIP-794) was designed for. Spreading single records over every \
                 partition makes many tiny batches; sticking to one partition until a batch is full makes \
                 fewer, bigger ones, so fewer requests and less CPU per message."
            }
            Scenario::SlowBroker => {
                "Unkeyed, at a steady 20,000 msg/s (below what the cluster takes, as most producers run), \
                 while one broker of three is paused (SIGSTOP) 200 ms out of every 400 ms, as a GC-pausing \
                 or noisy-neighbour broker would be. Each partition has one replica here, so the pause slows \
                 only the partitions that broker leads. A load-aware strategy should see their records pile \
                 up unacknowledged, send fewer records to them and so keep ack latency low."
            }
            Scenario::ManyPartitions => {
                "Unkeyed, at full speed, over 120 partitions with one replica each (so the figures measure \
                 the producer's batching, not 360 replicas replicating on one host): records spread thin. \
                 Strategies that place each record on another partition fill 120 batches at once and send \
                 small ones; sticky fills one batch at a time."
            }
        }
    }

    /// The default messages per run.
    pub fn default_messages(self) -> u64 {
        match self {
            Scenario::LowRate => 2 * BENCH_LOW_RATE_MSGS_PER_SEC,
            Scenario::SlowBroker => 2 * BENCH_SLOW_BROKER_MSGS_PER_SEC,
            _ => 100_000,
        }
    }

    /// The workload with the user's knobs applied.
    pub fn workload(self, k: &Knobs) -> Workload {
        let unkeyed_full_speed = Workload {
            scenario: self,
            messages: k.messages.unwrap_or_else(|| self.default_messages()),
            partitions: k.partitions,
            replication_factor: k.replication_factor,
            keys: Keys::None,
            rate_per_sec: None,
            slow_broker: false,
        };
        match self {
            Scenario::Uniform => Workload {
                keys: if k.uniform_keys == 0 {
                    Keys::None
                } else {
                    Keys::Cyclic(k.uniform_keys)
                },
                ..unkeyed_full_speed
            },
            Scenario::SkewedKeys => Workload {
                keys: Keys::Zipf(ZIPF_KEYS),
                ..unkeyed_full_speed
            },
            Scenario::LowRate => Workload {
                rate_per_sec: Some(BENCH_LOW_RATE_MSGS_PER_SEC),
                ..unkeyed_full_speed
            },
            Scenario::SlowBroker => {
                let rate_per_sec = Some(BENCH_SLOW_BROKER_MSGS_PER_SEC);
                Workload {
                    replication_factor: Some(1),
                    slow_broker: true,
                    rate_per_sec,
                    ..unkeyed_full_speed
                }
            }
            Scenario::ManyPartitions => Workload {
                partitions: BENCH_MANY_PARTITIONS,
                replication_factor: Some(1),
                ..unkeyed_full_speed
            },
        }
    }
}

/// Makes the keys of one run; the same for every plugin of a round.
#[derive(Debug)]
pub struct KeyGen {
    keys: Keys,
    /// Cumulative Zipf weights, normalised to 1 (empty unless Zipf).
    cdf: Vec<f64>,
    rng: XorShift64,
}

impl KeyGen {
    /// Keys for run `round` of a workload.
    pub fn new(keys: Keys, round: u32) -> KeyGen {
        let cdf = match keys {
            Keys::Zipf(n) => zipf_cdf(n, ZIPF_EXPONENT),
            _ => Vec::new(),
        };
        KeyGen {
            keys,
            cdf,
            rng: XorShift64::new(
                ZIPF_SEED ^ (u64::from(round) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            ),
        }
    }

    /// Whether messages carry keys.
    pub fn keyed(&self) -> bool {
        self.keys != Keys::None
    }

    /// The key of message `i`.
    pub fn key(&mut self, i: u64) -> Option<Vec<u8>> {
        match self.keys {
            Keys::None => None,
            Keys::Cyclic(n) => Some(format!("key-{}", i % n.max(1)).into_bytes()),
            Keys::Zipf(_) => {
                let u = self.rng.below(1 << 53) as f64 / (1u64 << 53) as f64;
                let rank = self
                    .cdf
                    .partition_point(|c| *c <= u)
                    .min(self.cdf.len().saturating_sub(1));
                Some(format!("key-{rank}").into_bytes())
            }
        }
    }
}

/// Cumulative probabilities of ranks 1..=n under weight r^-s.
fn zipf_cdf(n: u64, s: f64) -> Vec<f64> {
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = (1..=n.max(1))
        .map(|r| {
            acc += (r as f64).powf(-s);
            acc
        })
        .collect();
    for c in &mut cdf {
        *c /= acc;
    }
    cdf
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn knobs() -> Knobs {
        Knobs {
            messages: None,
            uniform_keys: 1000,
            partitions: 6,
            replication_factor: None,
        }
    }

    #[test]
    fn given_scenario_flags_when_parsing_should_expand_all_and_drop_repeats() {
        let names =
            |v: &[&str]| Scenario::parse_list(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(names(&["all"]).unwrap(), Scenario::ALL.to_vec());
        assert_eq!(
            names(&["low-rate", "uniform", "low-rate"]).unwrap(),
            vec![Scenario::Uniform, Scenario::LowRate]
        );
        let err = names(&["zipf"]).unwrap_err();
        assert!(
            err.contains("unknown scenario 'zipf'") && err.contains("skewed-keys"),
            "{err}"
        );
    }

    #[test]
    fn given_every_scenario_when_parsing_its_name_should_round_trip() {
        for s in Scenario::ALL {
            assert_eq!(Scenario::parse(s.name()), Some(s));
            assert!(!s.description().is_empty());
        }
        assert_eq!(Scenario::parse("all"), None);
    }

    #[test]
    fn given_knobs_when_building_workloads_should_apply_each_scenarios_shape() {
        let k = Knobs {
            messages: Some(77),
            replication_factor: Some(3),
            ..knobs()
        };
        let w = |s: Scenario| s.workload(&k);
        assert_eq!(w(Scenario::Uniform).keys, Keys::Cyclic(1000));
        assert_eq!(w(Scenario::SkewedKeys).keys, Keys::Zipf(ZIPF_KEYS));
        assert_eq!(
            w(Scenario::LowRate).rate_per_sec,
            Some(BENCH_LOW_RATE_MSGS_PER_SEC)
        );
        assert_eq!(w(Scenario::LowRate).keys, Keys::None);
        assert!(w(Scenario::SlowBroker).slow_broker);
        assert_eq!(
            w(Scenario::SlowBroker).rate_per_sec,
            Some(BENCH_SLOW_BROKER_MSGS_PER_SEC)
        );
        assert_eq!(
            w(Scenario::SlowBroker).replication_factor,
            Some(1),
            "one replica: only the leader is slowed"
        );
        assert_eq!(w(Scenario::Uniform).replication_factor, Some(3));
        assert_eq!(
            w(Scenario::ManyPartitions).partitions,
            BENCH_MANY_PARTITIONS
        );
        assert_eq!(w(Scenario::ManyPartitions).replication_factor, Some(1));
        assert_eq!(w(Scenario::Uniform).partitions, 6);
        assert!(Scenario::ALL.iter().all(|s| w(*s).messages == 77));
        assert_eq!(
            Scenario::LowRate.workload(&knobs()).messages,
            2 * BENCH_LOW_RATE_MSGS_PER_SEC
        );
    }

    #[test]
    fn given_zipf_keys_when_drawing_should_favour_low_ranks_like_the_law() {
        let mut g = KeyGen::new(Keys::Zipf(ZIPF_KEYS), 0);
        let mut counts: HashMap<Vec<u8>, u64> = HashMap::new();
        let n = 200_000;
        for i in 0..n {
            *counts.entry(g.key(i).unwrap()).or_default() += 1;
        }
        let top = counts[b"key-0".as_slice()] as f64 / n as f64;
        let cdf = zipf_cdf(ZIPF_KEYS, ZIPF_EXPONENT);
        assert!(
            (top - cdf[0]).abs() < 0.01,
            "top key share {top}, law {}",
            cdf[0]
        );
        assert!(
            (0.12..0.2).contains(&cdf[0]),
            "s = 1.1 over 10,000 keys puts ~15% on the top key: {}",
            cdf[0]
        );
        assert!(counts[b"key-0".as_slice()] > counts[b"key-1".as_slice()]);
        assert!(
            counts.len() > 1000,
            "the tail is drawn too: {}",
            counts.len()
        );
        assert!(counts.keys().all(|k| k.starts_with(b"key-")));
    }

    #[test]
    fn given_same_round_when_drawing_keys_should_repeat_for_every_plugin() {
        let draw = |round| {
            let mut g = KeyGen::new(Keys::Zipf(100), round);
            (0..50).map(|i| g.key(i)).collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
    }

    #[test]
    fn given_cyclic_or_no_keys_when_drawing_should_cycle_or_be_absent() {
        let mut g = KeyGen::new(Keys::Cyclic(5), 0);
        assert_eq!(g.key(7), Some(b"key-2".to_vec()));
        let mut none = KeyGen::new(Keys::None, 0);
        assert!(!none.keyed());
        assert_eq!(none.key(7), None);
    }
}
