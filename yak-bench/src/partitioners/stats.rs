//! Figures over rounds: for each (scenario, plugin), each figure's median,
//! min and max over the rounds. Pure arithmetic; never runs or prints.

use super::runner::RoundFigures;
use super::scenarios::Scenario;
use std::path::PathBuf;

/// Median, min and max of one figure over the rounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// Median (the mean of the middle two for an even count).
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Spread {
    /// The spread of `values` (all zero when empty).
    pub fn of(values: &[f64]) -> Spread {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Spread {
                median: 0.0,
                min: 0.0,
                max: 0.0,
            };
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Spread {
            median,
            min: v[0],
            max: v[n - 1],
        }
    }

    /// Whether the two ranges overlap.
    pub fn overlaps(&self, other: &Spread) -> bool {
        self.min <= other.max && other.min <= self.max
    }
}

/// A figure a verdict is given for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figure {
    /// Throughput.
    MsgsPerSec,
    /// Median ack latency.
    AckP50Ms,
    /// 99th percentile ack latency.
    AckP99Ms,
    /// Records per batch.
    MeanBatchRecords,
    /// Produce requests.
    Requests,
    /// Partition skew.
    Skew,
    /// Producer CPU per million messages.
    CpuMsPerMillion,
    /// Share of messages on the slowed broker's partitions.
    SlowedBrokerShare,
}

impl Figure {
    /// Every figure, in report order.
    pub const ALL: [Figure; 8] = [
        Figure::MsgsPerSec,
        Figure::AckP50Ms,
        Figure::AckP99Ms,
        Figure::MeanBatchRecords,
        Figure::Requests,
        Figure::Skew,
        Figure::CpuMsPerMillion,
        Figure::SlowedBrokerShare,
    ];

    /// The JSON field name of the figure's median.
    pub fn key(self) -> &'static str {
        match self {
            Figure::MsgsPerSec => "msgs_per_sec",
            Figure::AckP50Ms => "ack_p50_ms",
            Figure::AckP99Ms => "ack_p99_ms",
            Figure::MeanBatchRecords => "mean_batch_records",
            Figure::Requests => "requests",
            Figure::Skew => "skew",
            Figure::CpuMsPerMillion => "cpu_ms_per_million",
            Figure::SlowedBrokerShare => "slowed_broker_share",
        }
    }

    /// A short label for tables and charts.
    pub fn label(self) -> &'static str {
        match self {
            Figure::MsgsPerSec => "msg/s",
            Figure::AckP50Ms => "ack p50 ms",
            Figure::AckP99Ms => "ack p99 ms",
            Figure::MeanBatchRecords => "mean batch",
            Figure::Requests => "requests",
            Figure::Skew => "skew max/mean",
            Figure::CpuMsPerMillion => "CPU ms/M msgs",
            Figure::SlowedBrokerShare => "share on slowed broker",
        }
    }

    /// Whether more is better.
    pub fn higher_is_better(self) -> bool {
        matches!(self, Figure::MsgsPerSec | Figure::MeanBatchRecords)
    }

    /// The figure of one round (`None` where it does not apply).
    pub fn of(self, r: &RoundFigures) -> Option<f64> {
        Some(match self {
            Figure::MsgsPerSec => r.msgs_per_sec,
            Figure::AckP50Ms => r.ack_p50_ms,
            Figure::AckP99Ms => r.ack_p99_ms,
            Figure::MeanBatchRecords => r.mean_batch_records,
            Figure::Requests => r.requests as f64,
            Figure::Skew => r.skew,
            Figure::CpuMsPerMillion => r.cpu_ms_per_million,
            Figure::SlowedBrokerShare => return r.slowed_broker_share,
        })
    }
}

/// Every round of one (scenario, plugin) and the spread of each figure.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The scenario.
    pub scenario: Scenario,
    /// Strategy name from the plugin.
    pub plugin: String,
    /// The plugin file.
    pub path: PathBuf,
    /// Per round, in round order.
    pub rounds: Vec<RoundFigures>,
}

impl Summary {
    /// The spread of `figure` over the rounds (`None` where it does not apply).
    pub fn spread(&self, figure: Figure) -> Option<Spread> {
        let values: Vec<f64> = self.rounds.iter().filter_map(|r| figure.of(r)).collect();
        (!values.is_empty()).then(|| Spread::of(&values))
    }

    /// Whether every key stayed on one partition in every round (`None` when unkeyed).
    pub fn keys_stable(&self) -> Option<bool> {
        self.rounds
            .iter()
            .map(|r| r.keys_stable)
            .try_fold(true, |all, k| k.map(|k| all && k))
    }

    /// Messages per partition: the median over rounds, partition by partition.
    pub fn partition_messages(&self) -> Vec<f64> {
        let n = self
            .rounds
            .iter()
            .map(|r| r.partition_messages.len())
            .max()
            .unwrap_or(0);
        (0..n)
            .map(|p| {
                let v: Vec<f64> = self
                    .rounds
                    .iter()
                    .map(|r| r.partition_messages.get(p).copied().unwrap_or(0) as f64)
                    .collect();
                Spread::of(&v).median
            })
            .collect()
    }

    /// Messages not acknowledged, over every round.
    pub fn failed(&self) -> u64 {
        self.rounds.iter().map(|r| r.failed).sum()
    }

    /// Messages placed by the built-in default, over every round.
    pub fn partitioner_fallbacks(&self) -> u64 {
        self.rounds.iter().map(|r| r.partitioner_fallbacks).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_values_when_spreading_should_give_median_min_and_max() {
        assert_eq!(
            Spread::of(&[3.0, 1.0, 2.0]),
            Spread {
                median: 2.0,
                min: 1.0,
                max: 3.0
            }
        );
        assert_eq!(
            Spread::of(&[4.0, 1.0, 2.0, 3.0]),
            Spread {
                median: 2.5,
                min: 1.0,
                max: 4.0
            }
        );
        assert_eq!(
            Spread::of(&[]),
            Spread {
                median: 0.0,
                min: 0.0,
                max: 0.0
            }
        );
        assert_eq!(Spread::of(&[f64::NAN, 5.0]).median, 5.0);
    }

    #[test]
    fn given_ranges_when_comparing_should_tell_overlap() {
        let a = Spread {
            median: 2.0,
            min: 1.0,
            max: 3.0,
        };
        assert!(
            a.overlaps(&Spread {
                median: 3.5,
                min: 3.0,
                max: 4.0
            }),
            "touching ranges overlap"
        );
        assert!(!a.overlaps(&Spread {
            median: 4.5,
            min: 4.0,
            max: 5.0
        }));
        assert!(a.overlaps(&a));
    }

    fn round(keys_stable: Option<bool>, counts: Vec<u64>) -> RoundFigures {
        RoundFigures {
            round: 1,
            topic: String::new(),
            acked: 0,
            failed: 0,
            elapsed_s: 0.0,
            msgs_per_sec: 0.0,
            ack_p50_ms: 0.0,
            ack_p99_ms: 0.0,
            batches: 0,
            requests: 0,
            mean_batch_records: 0.0,
            partition_messages: counts,
            skew: 0.0,
            keys_stable,
            consumed: None,
            cpu_ms_per_million: 0.0,
            slowed_broker_share: None,
            broker_pauses: None,
            partitioner_fallbacks: 0,
        }
    }

    #[test]
    fn given_rounds_when_summarising_keys_and_partitions_should_combine_them() {
        let s = |rounds| Summary {
            scenario: Scenario::Uniform,
            plugin: "p".into(),
            path: PathBuf::new(),
            rounds,
        };
        assert_eq!(
            s(vec![round(Some(true), vec![1]), round(Some(true), vec![3])]).keys_stable(),
            Some(true)
        );
        assert_eq!(
            s(vec![
                round(Some(true), vec![1]),
                round(Some(false), vec![3])
            ])
            .keys_stable(),
            Some(false)
        );
        assert_eq!(s(vec![round(None, vec![1])]).keys_stable(), None);
        let three = s(vec![
            round(None, vec![1, 10]),
            round(None, vec![5, 20]),
            round(None, vec![3, 30]),
        ]);
        assert_eq!(three.partition_messages(), vec![3.0, 20.0]);
        assert_eq!(
            three.spread(Figure::SlowedBrokerShare),
            None,
            "not a slow-broker run"
        );
        assert!(three.spread(Figure::Skew).is_some());
    }
}
