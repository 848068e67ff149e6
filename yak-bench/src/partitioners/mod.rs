//! The partitioner evaluation behind `yak-node bench partitioners`: the
//! same workloads through each plugin, side by side, against a live cluster.
//!
//! # Layout
//! - `scenarios`: what each scenario models and the messages it sends;
//! - `runner`: one run (one plugin, one scenario, one round) on a fresh
//!   topic, and what it measured;
//! - `slow_broker`: the duty-cycle pauser of the slow-broker scenario;
//! - `rounds`: the warm-up and the repeated, interleaved rounds (plugin order
//!   rotated every round);
//! - `stats`: per (scenario, plugin), each figure's median, min and max;
//! - `verdict`: per scenario and figure, the best plugin, or "within noise";
//! - `report` (JSON) and `chart` (SVG small multiples).
//!
//! The entry point is [`run`]: a [`PartitionerBenchSpec`] in (built by the
//! CLI from its flags), a [`PartitionerBenchReport`] out, the chart and the
//! JSON file written on the way.
//!
//! Owns the evaluation and its files; never parses flags or prints to the
//! terminal (the CLI does both, tables included), and never installs signal
//! handlers: the caller passes an interrupt flag.

pub mod chart;
pub mod report;
pub mod rounds;
pub mod runner;
pub mod scenarios;
pub mod slow_broker;
pub mod stats;
pub mod verdict;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use yak_client::plugin::PluginError;
use yak_client::{ClientError, ProducerConfig};

pub use rounds::{Evaluation, Step};
pub use scenarios::{Knobs, Scenario};

/// What to evaluate and how, as `yak-node bench partitioners`' flags say:
/// the one input of [`run`].
#[derive(Debug, Clone)]
pub struct PartitionerBenchSpec {
    /// The cluster's run dir.
    pub cluster: PathBuf,
    /// Plugin files, in report order.
    pub plugins: Vec<PathBuf>,
    /// Scenarios, in report order.
    pub scenarios: Vec<Scenario>,
    /// Rounds per (scenario, plugin).
    pub rounds: u32,
    /// Messages of each plugin's untimed warm-up run (0: none).
    pub warmup_messages: u64,
    /// Workload knobs shared by the scenarios.
    pub knobs: Knobs,
    /// Producer and topic settings of every run.
    pub settings: Settings,
    /// Set by the caller (a signal) to stop early; a paused broker is resumed.
    pub interrupted: Arc<AtomicBool>,
    /// Write an SVG chart of the evaluation here.
    pub chart: Option<PathBuf>,
    /// Also write the JSON report to this file.
    pub json_file: Option<PathBuf>,
}

/// What [`run`] returns: the figures, and the same as the JSON report
/// (stable field names; written to `json_file` when one was asked for).
#[derive(Debug, Clone)]
pub struct PartitionerBenchReport {
    /// Everything measured, for tables.
    pub evaluation: Evaluation,
    /// The report as JSON.
    pub json: serde_json::Value,
}

/// Runs the evaluation `spec` asks for, draws its chart and writes its
/// JSON report where asked; `progress` hears of every run before it starts.
pub fn run(
    spec: &PartitionerBenchSpec,
    progress: &mut dyn FnMut(&Step),
) -> Result<PartitionerBenchReport, BenchError> {
    let evaluation = rounds::run(spec, progress)?;
    if let Some(path) = &spec.chart {
        chart::draw(path, &evaluation).map_err(|e| BenchError::Chart {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    }
    let json = report::report_json(&evaluation, &spec.settings);
    if let Some(path) = &spec.json_file {
        let write = serde_json::to_string_pretty(&json)
            .map_err(|e| e.to_string())
            .and_then(|text| std::fs::write(path, format!("{text}\n")).map_err(|e| e.to_string()));
        write.map_err(|reason| BenchError::Report {
            path: path.clone(),
            reason,
        })?;
    }
    Ok(PartitionerBenchReport { evaluation, json })
}

/// Producer and topic settings shared by every run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Bytes per message value.
    pub message_bytes: usize,
    /// Producer settings (acks, linger, batch size, ...); each run turns on
    /// latency recording and turns off topic creation itself.
    pub producer: ProducerConfig,
    /// Keep each run's topic instead of deleting it.
    pub keep_topics: bool,
}

/// Why an evaluation stopped.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A plugin could not be loaded.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// A cluster call failed.
    #[error("{context}: {source}")]
    Client {
        /// The run or step.
        context: String,
        /// The failure.
        source: ClientError,
    },
    /// The cluster did not reach a state in time.
    #[error("{context}: {what} after {waited:?}")]
    Settle {
        /// The run or step.
        context: String,
        /// What did not happen.
        what: String,
        /// How long it was waited for.
        waited: Duration,
    },
    /// The slow broker could not be paused or found.
    #[error("{context}: {what}")]
    SlowBroker {
        /// The run.
        context: String,
        /// What went wrong.
        what: String,
    },
    /// The thread's CPU time could not be read.
    #[error("getrusage: {0}")]
    CpuTime(nix::Error),
    /// The configuration cannot be run.
    #[error("{0}")]
    Invalid(String),
    /// The interrupt flag was set.
    #[error("interrupted")]
    Interrupted,
    /// The JSON report could not be written.
    #[error("cannot write {path}: {reason}")]
    Report {
        /// The JSON file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The chart could not be written.
    #[error("cannot write chart {path}: {reason}")]
    Chart {
        /// The SVG file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}
