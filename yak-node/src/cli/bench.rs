//! `yak-node bench produce|consume|e2e|table`.

use super::produce::ProducerFlags;
use super::ClusterArg;
use crate::bench::{
    self, e2e::E2eSpec, group_consume::GroupConsumeSpec, produce::ProduceSpec, BenchResult,
    Progress,
};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;

/// `bench e2e`'s producer linger, ms: low, as the latency it measures
/// includes it.
const E2E_LINGER_MS_DEFAULT: &str = "1";

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Produce throughput and ack latency.
    Produce(ProduceBenchArgs),
    /// Read throughput from the beginning of a topic (with `--group`: of a
    /// consumer group's members).
    Consume(ConsumeBenchArgs),
    /// Produce-to-consume latency at a fixed rate.
    E2e(E2eBenchArgs),
    /// Prints `--json` results (one per line, from files or `-` for stdin) as one table.
    Table {
        /// Files of JSON lines.
        files: Vec<PathBuf>,
        /// One row per benchmark name: the median of each figure over its runs.
        #[arg(long)]
        median: bool,
    },
    /// Kills a broker with SIGKILL and times until its restarted process serves again.
    Restart(RestartBenchArgs),
    /// Partitioner plugins side by side: scenarios, repeated rounds, spread and a verdict.
    Partitioners(super::bench_partitioners::BenchPartitionersArgs),
}

/// Topic placement for a benchmark's topic.
#[derive(Debug, Args)]
pub struct TopicArgs {
    /// Topic (created if missing).
    #[arg(long)]
    pub topic: String,
    /// Partitions of a new topic.
    #[arg(long)]
    pub partitions: Option<u32>,
    /// Replicas of a new topic.
    #[arg(long)]
    pub replication_factor: Option<u32>,
}

/// Flags of `bench produce`.
#[derive(Debug, Args)]
pub struct ProduceBenchArgs {
    /// Name of the result row (default: what was run).
    #[arg(long)]
    pub label: Option<String>,
    /// Topic.
    #[command(flatten)]
    pub topic: TopicArgs,
    /// Messages in all.
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: u64,
    /// Bytes per message.
    #[arg(long, default_value_t = 100)]
    pub message_bytes: usize,
    /// Producer threads.
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    /// Total messages per second (default: as fast as possible).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Producer settings of every thread.
    #[command(flatten)]
    pub producer: ProducerFlags,
    /// Messages sent to every partition before timing starts (not counted).
    #[arg(long, default_value_t = 1000)]
    pub warmup_messages: u64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Cluster.
    #[command(flatten)]
    pub cluster: ClusterArg,
}

/// Flags of `bench consume`.
#[derive(Debug, Args)]
pub struct ConsumeBenchArgs {
    /// Name of the result row (default: what was run).
    #[arg(long)]
    pub label: Option<String>,
    /// Topic to read.
    #[arg(long)]
    pub topic: String,
    /// Read from the first offset (the only mode; accepted for symmetry with `consume`).
    #[arg(long)]
    pub from_beginning: bool,
    /// Stop after this many messages (default: everything in the topic now);
    /// with `--group`, this many between all members.
    #[arg(long)]
    pub messages: Option<u64>,
    /// Read as members of this consumer group (the group consumer of
    /// `consume --group`), from the group's committed offsets; a new group
    /// reads from the beginning.
    #[arg(long)]
    pub group: Option<String>,
    /// Group members reading at once, one thread each.
    #[arg(long, requires = "group", default_value_t = 1)]
    pub members: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Cluster.
    #[command(flatten)]
    pub cluster: ClusterArg,
}

/// Flags of `bench e2e`: the producer lingers 1 ms by default here, not 5.
#[derive(Debug, Args)]
#[command(mut_arg("linger_ms", |a| a.default_value(E2E_LINGER_MS_DEFAULT)))]
pub struct E2eBenchArgs {
    /// Name of the result row (default: what was run).
    #[arg(long)]
    pub label: Option<String>,
    /// Topic.
    #[command(flatten)]
    pub topic: TopicArgs,
    /// Messages per second.
    #[arg(long, default_value_t = 10_000.0)]
    pub rate: f64,
    /// Messages in all.
    #[arg(long, default_value_t = 100_000)]
    pub messages: u64,
    /// Bytes per message (at least 8).
    #[arg(long, default_value_t = 100)]
    pub message_bytes: usize,
    /// Messages sent to every partition before timing starts (not counted).
    #[arg(long, default_value_t = 1000)]
    pub warmup_messages: u64,
    /// Producer settings.
    #[command(flatten)]
    pub producer: ProducerFlags,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Cluster.
    #[command(flatten)]
    pub cluster: ClusterArg,
}

/// Flags of `bench restart`.
#[derive(Debug, Args)]
pub struct RestartBenchArgs {
    /// Name of the result row.
    #[arg(long)]
    pub label: Option<String>,
    /// Broker to kill (its supervisor restarts it).
    #[arg(long, required_unless_present = "leader_of")]
    pub broker: Option<u32>,
    /// Kill the leader of partition 0 of this topic instead.
    #[arg(long, conflicts_with = "broker")]
    pub leader_of: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Cluster.
    #[command(flatten)]
    pub cluster: ClusterArg,
}

/// A progress bar on stderr, hidden when stderr is not a terminal.
fn progress_bar(what: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let style =
        ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar
}

/// Runs `bench` with a progress bar labelled `what`, cleared at the end.
fn with_bar<T>(what: &str, bench: impl FnOnce(&mut dyn FnMut(Progress)) -> T) -> T {
    let bar = progress_bar(what);
    let result = bench(&mut |p: Progress| {
        bar.set_length(p.total);
        bar.set_position(p.done);
    });
    bar.finish_and_clear();
    result
}

fn show(mut result: BenchResult, label: Option<String>, json: bool) {
    if let Some(l) = label {
        result.name = l;
    }
    let result = &result;
    if json {
        println!("{}", result.to_json());
    } else {
        print_table(std::slice::from_ref(result));
    }
}

/// Prints results as one table.
fn print_table(results: &[BenchResult]) {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_header(vec![
            "benchmark",
            "messages",
            "bytes",
            "seconds",
            "msg/s",
            "MB/s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "failed",
            "broker RSS MiB",
        ]);
    let f = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"));
    for r in results {
        let lat = |i: usize| f(r.latency_ms.map(|l| l[i]));
        t.add_row(vec![
            r.name.clone(),
            r.messages.to_string(),
            r.message_bytes.to_string(),
            format!("{:.3}", r.seconds),
            format!("{:.0}", r.msgs_per_sec),
            format!("{:.1}", r.mb_per_sec),
            lat(0),
            lat(1),
            lat(2),
            lat(3),
            r.failed.to_string(),
            f(r.broker_rss_max_mib),
        ]);
    }
    println!("{t}");
}

/// Runs a `bench` subcommand.
pub fn run(command: BenchCommand) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        BenchCommand::Produce(a) => {
            let spec = ProduceSpec {
                topic: a.topic.topic,
                partitions: a.topic.partitions,
                replication_factor: a.topic.replication_factor,
                messages: a.messages,
                message_bytes: a.message_bytes,
                producers: a.producers,
                rate: a.rate,
                producer: a.producer.config(),
                warmup_messages: a.warmup_messages,
            };
            let result = with_bar("produce", |p| {
                bench::produce::run(&a.cluster.cluster, &spec, p)
            })?;
            show(result, a.label, a.json);
        }
        BenchCommand::Consume(a) => {
            let result = match a.group {
                Some(group) => {
                    let spec = GroupConsumeSpec {
                        topic: a.topic,
                        group,
                        members: a.members,
                        messages: a.messages,
                    };
                    with_bar("group", |p| {
                        bench::group_consume::run(&a.cluster.cluster, &spec, p)
                    })?
                }
                None => with_bar("consume", |p| {
                    bench::consume::run(&a.cluster.cluster, &a.topic, a.messages, p)
                })?,
            };
            show(result, a.label, a.json);
        }
        BenchCommand::E2e(a) => {
            let spec = E2eSpec {
                topic: a.topic.topic,
                partitions: a.topic.partitions,
                replication_factor: a.topic.replication_factor,
                rate: a.rate,
                messages: a.messages,
                message_bytes: a.message_bytes,
                producer: a.producer.config(),
                warmup_messages: a.warmup_messages,
            };
            let result = with_bar("e2e", |p| bench::e2e::run(&a.cluster.cluster, &spec, p))?;
            show(result, a.label, a.json);
        }
        BenchCommand::Partitioners(a) => super::bench_partitioners::run(a)?,
        BenchCommand::Restart(a) => {
            let broker = match (a.broker, a.leader_of) {
                (Some(b), _) => b,
                (None, Some(topic)) => bench::restart::leader_of(&a.cluster.cluster, &topic)?,
                (None, None) => return Err("give --broker or --leader-of".into()),
            };
            show(
                bench::restart::run(&a.cluster.cluster, broker)?,
                a.label,
                a.json,
            );
        }
        BenchCommand::Table { files, median } => {
            let mut results = Vec::new();
            for f in &files {
                let text = if f.as_os_str() == "-" {
                    std::io::read_to_string(std::io::stdin())?
                } else {
                    std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?
                };
                for line in text.lines().filter(|l| l.trim_start().starts_with('{')) {
                    let v: serde_json::Value =
                        serde_json::from_str(line).map_err(|e| format!("{}: {e}", f.display()))?;
                    results.push(BenchResult::from_json(&v));
                }
            }
            if median {
                results = bench::medians(&results);
            }
            print_table(&results);
        }
    }
    Ok(())
}
