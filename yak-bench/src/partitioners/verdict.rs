//! The verdict of a scenario: for each figure, the plugin with the best
//! median, and whether that is "within noise" (its min–max range overlaps
//! the runner-up's, so the rounds do not tell them apart). Pure; never runs
//! or prints.

use super::stats::{Figure, Spread, Summary};

/// The best plugin for one figure of one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The figure.
    pub figure: Figure,
    /// The plugin with the best median.
    pub best: String,
    /// The plugin with the second-best median.
    pub runner_up: String,
    /// The best's range overlaps the runner-up's.
    pub within_noise: bool,
}

impl Verdict {
    /// One line: `msg/s: sticky` or `msg/s: sticky (within noise of random)`.
    pub fn line(&self) -> String {
        if self.within_noise {
            format!(
                "{}: {} (within noise of {})",
                self.figure.label(),
                self.best,
                self.runner_up
            )
        } else {
            format!(
                "{}: {} (ahead of {})",
                self.figure.label(),
                self.best,
                self.runner_up
            )
        }
    }
}

/// The verdicts of one scenario from its summaries (one per plugin): a
/// verdict for every figure that at least two plugins have.
pub fn verdicts(summaries: &[&Summary]) -> Vec<Verdict> {
    Figure::ALL
        .into_iter()
        .filter_map(|f| verdict(f, summaries))
        .collect()
}

fn verdict(figure: Figure, summaries: &[&Summary]) -> Option<Verdict> {
    let mut ranked: Vec<(&str, Spread)> = summaries
        .iter()
        .filter_map(|s| s.spread(figure).map(|sp| (s.plugin.as_str(), sp)))
        .collect();
    if ranked.len() < 2 {
        return None;
    }
    ranked.sort_by(|a, b| {
        let order = a.1.median.total_cmp(&b.1.median);
        if figure.higher_is_better() {
            order.reverse()
        } else {
            order
        }
    });
    let (best, runner_up) = (&ranked[0], &ranked[1]);
    Some(Verdict {
        figure,
        best: best.0.to_string(),
        runner_up: runner_up.0.to_string(),
        within_noise: best.1.overlaps(&runner_up.1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partitioners::runner::RoundFigures;
    use crate::partitioners::scenarios::Scenario;
    use std::path::PathBuf;

    fn summary(plugin: &str, rates: &[f64], skew: f64) -> Summary {
        let rounds = rates
            .iter()
            .enumerate()
            .map(|(i, r)| RoundFigures {
                round: i as u32 + 1,
                topic: String::new(),
                acked: 1,
                failed: 0,
                elapsed_s: 1.0,
                msgs_per_sec: *r,
                ack_p50_ms: 1.0,
                ack_p99_ms: 2.0,
                batches: 1,
                requests: 1,
                mean_batch_records: 1.0,
                partition_messages: vec![1],
                skew,
                keys_stable: None,
                consumed: None,
                cpu_ms_per_million: 1.0,
                slowed_broker_share: None,
                broker_pauses: None,
                partitioner_fallbacks: 0,
            })
            .collect();
        Summary {
            scenario: Scenario::Uniform,
            plugin: plugin.into(),
            path: PathBuf::new(),
            rounds,
        }
    }

    fn find(v: &[Verdict], f: Figure) -> &Verdict {
        v.iter()
            .find(|x| x.figure == f)
            .expect("a verdict for the figure")
    }

    #[test]
    fn given_separated_ranges_when_judging_should_name_the_best_without_noise() {
        let (a, b, c) = (
            summary("a", &[10.0, 11.0, 12.0], 2.0),
            summary("b", &[20.0, 21.0, 22.0], 1.0),
            summary("c", &[1.0, 2.0, 3.0], 3.0),
        );
        let v = verdicts(&[&a, &b, &c]);
        let rate = find(&v, Figure::MsgsPerSec);
        assert_eq!(
            (
                rate.best.as_str(),
                rate.runner_up.as_str(),
                rate.within_noise
            ),
            ("b", "a", false)
        );
        let skew = find(&v, Figure::Skew);
        assert_eq!(
            (skew.best.as_str(), skew.runner_up.as_str()),
            ("b", "a"),
            "lower skew is better"
        );
        assert!(!skew.within_noise);
        assert!(rate.line().contains("ahead of a"), "{}", rate.line());
    }

    #[test]
    fn given_overlapping_ranges_when_judging_should_say_within_noise() {
        let (a, b) = (
            summary("a", &[10.0, 15.0, 30.0], 1.0),
            summary("b", &[20.0, 21.0, 22.0], 1.0),
        );
        let v = verdicts(&[&a, &b]);
        let rate = find(&v, Figure::MsgsPerSec);
        assert_eq!(rate.best, "b");
        assert!(rate.within_noise);
        assert!(rate.line().contains("within noise of a"));
        assert!(find(&v, Figure::Skew).within_noise, "a tie is noise");
        assert!(
            v.iter().all(|x| x.figure != Figure::SlowedBrokerShare),
            "no share outside slow-broker"
        );
    }

    #[test]
    fn given_one_plugin_when_judging_should_give_no_verdict() {
        assert!(verdicts(&[&summary("a", &[1.0], 1.0)]).is_empty());
    }
}
