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
//! Owns the evaluation; never parses flags or prints (the CLI does both), and
//! never installs signal handlers: the caller passes an interrupt flag.

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
use yak_client::ClientError;

pub use rounds::{run, Evaluation};
pub use scenarios::{Knobs, Scenario};

/// What to evaluate and how.
#[derive(Debug, Clone)]
pub struct BenchConfig {
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
}

/// Producer and topic settings shared by every run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Bytes per message value.
    pub message_bytes: usize,
    /// 0, 1 or -1 (all).
    pub acks: yak_client::Acks,
    /// Producer linger.
    pub linger: Duration,
    /// Producer batch size.
    pub batch_bytes: usize,
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
    /// The chart could not be written.
    #[error("cannot write chart {path}: {reason}")]
    Chart {
        /// The SVG file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}
