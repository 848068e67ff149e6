//! Benchmarks a user runs against a live cluster: produce throughput and
//! ack latency, consume throughput (one consumer, or a consumer group's
//! members), produce-to-consume latency. Each
//! returns a [`BenchResult`] the CLI prints as a table or JSON, and tells
//! how far it is through a [`Progress`] callback the CLI draws. While a run
//! lasts, the brokers' resident memory is sampled. Never prints. The partitioner
//! evaluation ([`partitioners`]) runs plugins side by side over scenarios.

#![deny(missing_docs)]

pub mod consume;
pub mod e2e;
pub mod group_consume;
pub mod partitioners;
pub mod produce;
pub mod restart;
pub mod rss;

use hdrhistogram::Histogram;

/// One benchmark's figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BenchResult {
    /// Which benchmark.
    pub name: String,
    /// Messages moved.
    pub messages: u64,
    /// Bytes per message value.
    pub message_bytes: usize,
    /// Wall time.
    pub seconds: f64,
    /// Messages per second.
    pub msgs_per_sec: f64,
    /// Megabytes (10^6) of values per second.
    pub mb_per_sec: f64,
    /// Latency percentiles in ms: p50, p99, p99.9, max (absent for consume).
    pub latency_ms: Option<[f64; 4]>,
    /// Messages not acknowledged.
    pub failed: u64,
    /// Largest resident memory of any broker during the run, MiB.
    pub broker_rss_max_mib: Option<f64>,
    /// Consumer group members reading at once (group consume rows only).
    pub members: Option<usize>,
}

impl BenchResult {
    /// Fills rates from counts and time.
    pub fn with_rates(mut self) -> Self {
        if self.seconds > 0.0 {
            self.msgs_per_sec = self.messages as f64 / self.seconds;
            self.mb_per_sec = self.messages as f64 * self.message_bytes as f64 / self.seconds / 1e6;
        }
        self
    }

    /// As JSON (stable field names; `members` only on group consume rows).
    pub fn to_json(&self) -> serde_json::Value {
        let lat = |i: usize| self.latency_ms.map(|l| l[i]);
        let mut v = serde_json::json!({
            "name": self.name,
            "messages": self.messages,
            "message_bytes": self.message_bytes,
            "seconds": self.seconds,
            "msgs_per_sec": self.msgs_per_sec,
            "mb_per_sec": self.mb_per_sec,
            "latency_p50_ms": lat(0),
            "latency_p99_ms": lat(1),
            "latency_p999_ms": lat(2),
            "latency_max_ms": lat(3),
            "failed": self.failed,
            "broker_rss_max_mib": self.broker_rss_max_mib,
        });
        if let Some(m) = self.members {
            v["members"] = m.into();
        }
        v
    }

    /// Reads back one [`BenchResult::to_json`] line; a missing figure is 0
    /// (or absent, for the optional ones).
    pub fn from_json(v: &serde_json::Value) -> BenchResult {
        let f = |k: &str| v[k].as_f64();
        let latency = match (
            f("latency_p50_ms"),
            f("latency_p99_ms"),
            f("latency_p999_ms"),
            f("latency_max_ms"),
        ) {
            (Some(a), Some(b), Some(c), Some(d)) => Some([a, b, c, d]),
            _ => None,
        };
        BenchResult {
            name: v["name"].as_str().unwrap_or("?").to_string(),
            messages: v["messages"].as_u64().unwrap_or(0),
            message_bytes: v["message_bytes"].as_u64().unwrap_or(0) as usize,
            seconds: f("seconds").unwrap_or(0.0),
            msgs_per_sec: f("msgs_per_sec").unwrap_or(0.0),
            mb_per_sec: f("mb_per_sec").unwrap_or(0.0),
            latency_ms: latency,
            failed: v["failed"].as_u64().unwrap_or(0),
            broker_rss_max_mib: f("broker_rss_max_mib"),
            members: v["members"].as_u64().map(|m| m as usize),
        }
    }
}

/// p50, p99, p99.9 and max of a microsecond histogram, in ms.
pub fn percentiles_ms(h: &Histogram<u64>) -> [f64; 4] {
    let ms = |us: u64| us as f64 / 1000.0;
    [
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max()),
    ]
}

/// A new microsecond histogram: 1 µs to 10 min, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    yak_client::producer::latency_histogram()
}

/// How far a run is, for a progress display the caller draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Messages done so far.
    pub done: u64,
    /// Messages in all.
    pub total: u64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// One result per name, each figure the median of that name's runs, in
/// first-seen order. The name gets the run count, e.g. `(median of 3)`.
pub fn medians(results: &[BenchResult]) -> Vec<BenchResult> {
    let mut names: Vec<&str> = Vec::new();
    for r in results {
        if !names.contains(&r.name.as_str()) {
            names.push(&r.name);
        }
    }
    names
        .into_iter()
        .map(|name| {
            let runs: Vec<&BenchResult> = results.iter().filter(|r| r.name == name).collect();
            let m = |f: &dyn Fn(&BenchResult) -> f64| median(runs.iter().map(|r| f(r)).collect());
            let lat = |i: usize| -> Option<f64> {
                let v: Vec<f64> = runs
                    .iter()
                    .filter_map(|r| r.latency_ms.map(|l| l[i]))
                    .collect();
                (!v.is_empty()).then(|| median(v))
            };
            let latency_ms = match (lat(0), lat(1), lat(2), lat(3)) {
                (Some(a), Some(b), Some(c), Some(d)) => Some([a, b, c, d]),
                _ => None,
            };
            let rss: Vec<f64> = runs.iter().filter_map(|r| r.broker_rss_max_mib).collect();
            BenchResult {
                name: format!("{name} (median of {})", runs.len()),
                messages: m(&|r| r.messages as f64) as u64,
                message_bytes: runs[0].message_bytes,
                seconds: m(&|r| r.seconds),
                msgs_per_sec: m(&|r| r.msgs_per_sec),
                mb_per_sec: m(&|r| r.mb_per_sec),
                latency_ms,
                failed: runs.iter().map(|r| r.failed).max().unwrap_or(0),
                broker_rss_max_mib: rss.into_iter().reduce(f64::max),
                members: runs[0].members,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_result_when_written_as_json_and_read_back_should_be_the_same() {
        let r = BenchResult {
            name: "produce acks=all".into(),
            messages: 1000,
            message_bytes: 100,
            seconds: 0.5,
            latency_ms: Some([0.1, 0.2, 0.3, 0.4]),
            failed: 2,
            broker_rss_max_mib: Some(42.0),
            ..BenchResult::default()
        }
        .with_rates();
        assert_eq!(BenchResult::from_json(&r.to_json()), r);
        let consume = BenchResult {
            latency_ms: None,
            broker_rss_max_mib: None,
            ..r
        };
        assert_eq!(BenchResult::from_json(&consume.to_json()), consume);
        assert!(consume.to_json().get("members").is_none());
        let group = BenchResult {
            members: Some(3),
            ..consume
        };
        assert_eq!(group.to_json()["members"], 3);
        assert_eq!(BenchResult::from_json(&group.to_json()), group);
    }

    #[test]
    fn given_three_runs_when_taking_medians_should_pick_middle_values_per_name() {
        let run = |name: &str, rate: f64, p99: f64| BenchResult {
            name: name.into(),
            msgs_per_sec: rate,
            latency_ms: Some([0.1, p99, 1.0, 2.0]),
            ..BenchResult::default()
        };
        let rows = [
            run("a", 10.0, 3.0),
            run("b", 1.0, 1.0),
            run("a", 30.0, 1.0),
            run("a", 20.0, 2.0),
        ];
        let m = medians(&rows);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].name, "a (median of 3)");
        assert_eq!(m[0].msgs_per_sec, 20.0);
        assert_eq!(m[0].latency_ms.map(|l| l[1]), Some(2.0));
        assert_eq!(m[1].msgs_per_sec, 1.0);
    }
}
