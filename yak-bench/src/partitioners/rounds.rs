//! The schedule of an evaluation: every plugin loaded first (a bad file
//! fails before anything runs), one untimed warm-up run per plugin, then
//! `rounds` rounds; each round runs every scenario with every plugin once,
//! the plugin order rotated by one each round, so that drift on a shared
//! machine hits every plugin alike. Never aggregates figures or prints.

use super::runner::{RoundFigures, Run};
use super::scenarios::{Scenario, Workload};
use super::stats::Summary;
use super::verdict::{verdicts, Verdict};
use super::{BenchError, PartitionerBenchSpec};
use std::sync::atomic::Ordering;
use yak_client::partitioner::Partitioner as _;
use yak_client::plugin::PluginPartitioner;
use yak_protocol::limits::BENCH_ROUNDS_MAX;

/// One step of the evaluation, for a progress display.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Runs finished so far (warm-up included).
    pub done: usize,
    /// Runs in all.
    pub total: usize,
    /// The run starting now: `round 2/5 skewed-keys key-hash`.
    pub label: String,
}

/// Everything an evaluation measured.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The workloads, in scenario order.
    pub workloads: Vec<Workload>,
    /// Rounds per (scenario, plugin).
    pub rounds: u32,
    /// One per (scenario, plugin): scenario order, then plugin order.
    pub summaries: Vec<Summary>,
}

impl Evaluation {
    /// The summaries of one scenario, in plugin order.
    pub fn of(&self, scenario: Scenario) -> Vec<&Summary> {
        self.summaries
            .iter()
            .filter(|s| s.scenario == scenario)
            .collect()
    }

    /// The verdicts of one scenario.
    pub fn verdicts(&self, scenario: Scenario) -> Vec<Verdict> {
        verdicts(&self.of(scenario))
    }
}

fn check(config: &PartitionerBenchSpec) -> Result<(), BenchError> {
    let bad = |m: &str| Err(BenchError::Invalid(m.to_string()));
    if config.plugins.is_empty() {
        return bad("at least one --plugin is needed");
    }
    if config.scenarios.is_empty() {
        return bad("at least one --scenario is needed");
    }
    if !(1..=BENCH_ROUNDS_MAX).contains(&config.rounds) {
        return Err(BenchError::Invalid(format!(
            "--rounds must be 1 to {BENCH_ROUNDS_MAX}"
        )));
    }
    if config.knobs.messages == Some(0) || config.knobs.partitions == 0 {
        return bad("--messages and --partitions must be at least 1");
    }
    Ok(())
}

/// Runs the evaluation; `progress` hears of every run before it starts.
pub fn run(
    config: &PartitionerBenchSpec,
    progress: &mut dyn FnMut(&Step),
) -> Result<Evaluation, BenchError> {
    check(config)?;
    let mut names = Vec::new();
    for path in &config.plugins {
        names.push(
            PluginPartitioner::load(path, config.settings.producer.batch_bytes)?
                .name()
                .to_string(),
        );
    }
    let workloads: Vec<Workload> = config
        .scenarios
        .iter()
        .map(|s| s.workload(&config.knobs))
        .collect();
    let plugins = config.plugins.len();
    let warmups = if config.warmup_messages > 0 {
        plugins
    } else {
        0
    };
    let total = warmups + workloads.len() * plugins * config.rounds as usize;
    let mut done = 0;
    let mut n = 0;
    let mut step = |label: String, done: usize| progress(&Step { done, total, label });
    let go = |workload: &Workload,
              plugin: usize,
              round: u32,
              n: usize|
     -> Result<RoundFigures, BenchError> {
        if config.interrupted.load(Ordering::SeqCst) {
            return Err(BenchError::Interrupted);
        }
        Run {
            dir: &config.cluster,
            plugin: &config.plugins[plugin],
            workload,
            round,
            n,
            settings: &config.settings,
            interrupted: &config.interrupted,
        }
        .go()
    };

    if warmups > 0 {
        let warmup = Workload {
            messages: config.warmup_messages,
            ..Scenario::Uniform.workload(&config.knobs)
        };
        for (p, name) in names.iter().enumerate() {
            step(format!("warm-up {name}"), done);
            go(&warmup, p, 0, n)?;
            (done, n) = (done + 1, n + 1);
        }
    }
    let mut rounds: Vec<Vec<Vec<RoundFigures>>> = vec![vec![Vec::new(); plugins]; workloads.len()];
    for round in 1..=config.rounds {
        for (s, workload) in workloads.iter().enumerate() {
            for k in 0..plugins {
                let p = (k + round as usize - 1) % plugins;
                step(
                    format!(
                        "round {round}/{} {} {}",
                        config.rounds,
                        workload.scenario.name(),
                        names[p]
                    ),
                    done,
                );
                rounds[s][p].push(go(workload, p, round, n)?);
                (done, n) = (done + 1, n + 1);
            }
        }
    }
    let mut summaries = Vec::new();
    for (workload, per_plugin) in workloads.iter().zip(rounds) {
        for (p, figures) in per_plugin.into_iter().enumerate() {
            summaries.push(Summary {
                scenario: workload.scenario,
                plugin: names[p].clone(),
                path: config.plugins[p].clone(),
                rounds: figures,
            });
        }
    }
    Ok(Evaluation {
        workloads,
        rounds: config.rounds,
        summaries,
    })
}
