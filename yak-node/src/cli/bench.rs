//! `yak-node bench produce|consume|e2e|table`.

use super::ClusterArg;
use crate::bench::{self, e2e::E2eSpec, produce::ProduceSpec, BenchResult};
use crate::limits::BATCH_BYTES_DEFAULT;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

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
    /// 0, 1 or all.
    #[arg(long, default_value = "all", value_parser = super::produce::parse_acks)]
    pub acks: crate::client::Acks,
    /// Total messages per second (default: as fast as possible).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Producer linger.
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    /// Producer batch size.
    #[arg(long, default_value_t = BATCH_BYTES_DEFAULT)]
    pub batch_bytes: usize,
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

/// Flags of `bench e2e`.
#[derive(Debug, Args)]
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
    /// Producer linger.
    #[arg(long, default_value_t = 1)]
    pub linger_ms: u64,
    /// Messages sent to every partition before timing starts (not counted).
    #[arg(long, default_value_t = 1000)]
    pub warmup_messages: u64,
    /// 0, 1 or all.
    #[arg(long, default_value = "all", value_parser = super::produce::parse_acks)]
    pub acks: crate::client::Acks,
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

fn from_json(v: &serde_json::Value) -> BenchResult {
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
                acks: a.acks,
                rate: a.rate,
                linger: Duration::from_millis(a.linger_ms),
                batch_bytes: a.batch_bytes,
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
                acks: a.acks,
                linger: Duration::from_millis(a.linger_ms),
                warmup_messages: a.warmup_messages,
            };
            show(bench::e2e::run(&a.cluster.cluster, &spec)?, a.label, a.json);
        }
        BenchCommand::Partitioners(a) => super::bench_partitioners::run(a)?,
        BenchCommand::Restart(a) => {
            let broker = match (a.broker, a.leader_of) {
                (Some(b), _) => b,
                (None, Some(topic)) => crate::client::Admin::connect(&a.cluster.cluster)?
                    .describe_topic(&topic)?
                    .partitions
                    .first()
                    .and_then(|p| p.leader)
                    .ok_or_else(|| format!("topic {topic} has no leader for partition 0"))?,
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
                    results.push(from_json(&v));
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
