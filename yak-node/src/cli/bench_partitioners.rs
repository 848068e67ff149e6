//! `yak-node bench partitioners`: flags, the interrupt flag (SIGINT, SIGTERM,
//! SIGHUP: a paused broker is resumed before the bench stops), a progress bar,
//! and printing: one table per scenario with its verdicts, or the JSON
//! report. The evaluation, its chart and its JSON file are
//! `crate::bench::partitioners` (`PartitionerBenchSpec` in, report out).

use super::produce::ProducerFlags;
use super::ClusterArg;
use crate::bench::partitioners::stats::{Figure, Spread, Summary};
use crate::bench::partitioners::{
    self as engine, chart, Evaluation, Knobs, PartitionerBenchSpec, Scenario, Settings, Step,
};
use crate::limits::{BENCH_ROUNDS_DEFAULT, BENCH_WARMUP_MESSAGES_DEFAULT};
use clap::Args;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Flags of `bench partitioners`.
#[derive(Debug, Args)]
pub struct BenchPartitionersArgs {
    /// A partitioner plugin to run (repeat for each).
    #[arg(long = "plugin", value_name = "FILE.so", required = true)]
    pub plugins: Vec<PathBuf>,
    /// A scenario: uniform, skewed-keys, low-rate, slow-broker, many-partitions, or all (repeat for several).
    #[arg(long = "scenario", value_name = "NAME", default_value = "all")]
    pub scenarios: Vec<String>,
    /// Rounds per (scenario, plugin); the plugin order rotates every round.
    #[arg(long, default_value_t = BENCH_ROUNDS_DEFAULT)]
    pub rounds: u32,
    /// Messages per run, in every scenario (default: 100,000; 2 s worth for low-rate and slow-broker).
    #[arg(long)]
    pub messages: Option<u64>,
    /// Messages of each plugin's untimed warm-up run before the first round (0: none).
    #[arg(long, default_value_t = BENCH_WARMUP_MESSAGES_DEFAULT)]
    pub warmup_messages: u64,
    /// Bytes per message value.
    #[arg(long, default_value_t = 100)]
    pub message_bytes: usize,
    /// Distinct keys of the uniform scenario (message i has key `key-{i % K}`); 0 sends it unkeyed.
    #[arg(long, default_value_t = 1000)]
    pub keys: u64,
    /// Partitions of each benchmark topic (all scenarios but many-partitions).
    #[arg(long, default_value_t = 6)]
    pub partitions: u32,
    /// Replicas per partition (all scenarios but slow-broker and many-partitions, which use 1; cluster default if absent).
    #[arg(long)]
    pub replication_factor: Option<u32>,
    /// Producer settings of every run.
    #[command(flatten)]
    pub producer: ProducerFlags,
    /// Print the report as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to this file.
    #[arg(long, value_name = "FILE.json")]
    pub json_file: Option<PathBuf>,
    /// Write an SVG chart here.
    #[arg(long, value_name = "FILE.svg")]
    pub chart: Option<PathBuf>,
    /// Keep the benchmark topics (deleted by default).
    #[arg(long)]
    pub keep_topics: bool,
    /// Cluster.
    #[command(flatten)]
    pub cluster: ClusterArg,
}

/// Sets the returned flag on SIGINT, SIGTERM or SIGHUP; a second SIGINT exits at once.
fn interrupt_flag() -> Result<Arc<AtomicBool>, std::io::Error> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let flag = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register_conditional_shutdown(SIGINT, 130, Arc::clone(&flag))?;
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        signal_hook::flag::register(sig, Arc::clone(&flag))?;
    }
    Ok(flag)
}

fn progress_bar() -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(0), target);
    let style = ProgressStyle::with_template("[{bar:30}] {pos}/{len} runs {msg} ({elapsed})")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

fn cell(s: Option<Spread>) -> String {
    match s {
        Some(s) if s.min == s.max => chart::human(s.median),
        Some(s) => format!(
            "{} ({}–{})",
            chart::human(s.median),
            chart::human(s.min),
            chart::human(s.max)
        ),
        None => "-".into(),
    }
}

/// One scenario's table: a row per plugin, each figure as median (min–max).
pub fn table(summaries: &[&Summary]) -> Table {
    let slow = summaries
        .iter()
        .any(|s| s.spread(Figure::SlowedBrokerShare).is_some());
    let figures: Vec<Figure> = Figure::ALL
        .into_iter()
        .filter(|f| *f != Figure::SlowedBrokerShare || slow)
        .collect();
    let mut header = vec!["plugin".to_string()];
    header.extend(figures.iter().map(|f| f.label().to_string()));
    header.push("keys stable".into());
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(header);
    for s in summaries {
        let mut row = vec![s.plugin.clone()];
        row.extend(figures.iter().map(|f| match (f, s.spread(*f)) {
            (Figure::Skew | Figure::SlowedBrokerShare, Some(sp)) if sp.min == sp.max => {
                format!("{:.2}", sp.median)
            }
            (Figure::Skew | Figure::SlowedBrokerShare, Some(sp)) => {
                format!("{:.2} ({:.2}–{:.2})", sp.median, sp.min, sp.max)
            }
            (_, sp) => cell(sp),
        }));
        row.push(
            match s.keys_stable() {
                Some(true) => "yes",
                Some(false) => "no",
                None => "n/a (unkeyed)",
            }
            .into(),
        );
        t.add_row(row);
    }
    t
}

fn print_tables(e: &Evaluation, a: &BenchPartitionersArgs) {
    println!(
        "{} round(s) per scenario and plugin, {} B values, acks={}; median (min–max) over rounds",
        e.rounds, a.message_bytes, a.producer.acks
    );
    for w in &e.workloads {
        let rate = w
            .rate_per_sec
            .map_or("full speed".to_string(), |r| format!("{r} msg/s"));
        println!(
            "\n== {}: {} messages, {} partitions, {rate}",
            w.scenario.name(),
            w.messages,
            w.partitions
        );
        println!("{}", table(&e.of(w.scenario)));
        for v in e.verdicts(w.scenario) {
            println!("  best {}", v.line());
        }
    }
    for s in &e.summaries {
        if s.failed() > 0 {
            eprintln!(
                "warning: {} / {}: {} messages were not acknowledged",
                s.scenario.name(),
                s.plugin,
                s.failed()
            );
        }
        if s.partitioner_fallbacks() > 0 {
            eprintln!(
                "warning: {} / {}: failed to place {} messages (built-in default used)",
                s.scenario.name(),
                s.plugin,
                s.partitioner_fallbacks()
            );
        }
    }
    for (what, path) in [("chart", &a.chart), ("report", &a.json_file)] {
        if let Some(path) = path {
            println!("{what}: {}", path.display());
        }
    }
}

/// Runs `bench partitioners`.
pub fn run(a: BenchPartitionersArgs) -> Result<(), Box<dyn std::error::Error>> {
    let spec = PartitionerBenchSpec {
        cluster: a.cluster.cluster.clone(),
        plugins: a.plugins.clone(),
        scenarios: Scenario::parse_list(&a.scenarios)?,
        rounds: a.rounds,
        warmup_messages: a.warmup_messages,
        knobs: Knobs {
            messages: a.messages,
            uniform_keys: a.keys,
            partitions: a.partitions,
            replication_factor: a.replication_factor,
        },
        settings: Settings {
            message_bytes: a.message_bytes,
            producer: a.producer.config(),
            keep_topics: a.keep_topics,
        },
        interrupted: interrupt_flag()?,
        chart: a.chart.clone(),
        json_file: a.json_file.clone(),
    };
    let bar = progress_bar();
    let report = engine::run(&spec, &mut |s: &Step| {
        bar.set_length(s.total as u64);
        bar.set_position(s.done as u64);
        bar.set_message(s.label.clone());
    })?;
    bar.finish_and_clear();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report.json)?);
    } else {
        print_tables(&report.evaluation, &a);
    }
    Ok(())
}
