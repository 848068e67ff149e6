//! `yak-node bench produce|consume|e2e|table`.

use super::produce::ProducerFlags;
use super::ClusterArg;
use crate::bench::{self, e2e::E2eSpec, produce::ProduceSpec, BenchResult};
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// `bench e2e`'s producer linger, ms: low, as the latency it measures
/// includes it.
const E2E_LINGER_MS_DEFAULT: &str = "1";

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Produce throughput and ack latency.
    Produce(ProduceBenchArgs),
    /// Read throughput from the beginning of a topic.
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
    /// Stop after this many messages (default: everything in the topic now).
    #[arg(long)]
    pub messages: Option<u64>,
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

fn show(mut result: BenchResult, label: Option<String>, json: bool) {
    if let Some(l) = label {
        result.name = l;
    }
    let result = &result;
    if json {
        println!("{}", result.to_json());
    } else {
        bench::print_table(std::slice::from_ref(result));
    }
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
            show(
                bench::produce::run(&a.cluster.cluster, &spec)?,
                a.label,
                a.json,
            );
        }
        BenchCommand::Consume(a) => show(
            bench::consume::run(&a.cluster.cluster, &a.topic, a.messages)?,
            a.label,
            a.json,
        ),
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
            show(bench::e2e::run(&a.cluster.cluster, &spec)?, a.label, a.json);
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
            bench::print_table(&results);
        }
    }
    Ok(())
}
