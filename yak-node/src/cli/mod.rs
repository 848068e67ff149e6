//! The command line: argument definitions and one function per command.
//! Parses, calls the client library (or starts a server), prints.

pub mod admin;
pub mod bench;
pub mod bench_partitioners;
pub mod consume;
pub mod events;
pub mod group;
pub mod ops;
pub mod produce;
pub mod servers;
pub mod watch;
pub mod worker;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// YaK node: mini-ZooKeeper, broker, and client commands.
#[derive(Debug, Parser)]
#[command(name = "yak-node", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Where the cluster is.
#[derive(Debug, Args, Clone)]
pub struct ClusterArg {
    /// Run dir of the cluster (holds zookeeper.sock).
    #[arg(long, env = "YAK_CLUSTER", default_value = "yak-run", global = true)]
    pub cluster: PathBuf,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the mini-ZooKeeper (started by yak-supervisor).
    Zookeeper(servers::ZookeeperArgs),
    /// Run a broker (started by yak-supervisor).
    Broker(servers::BrokerArgs),
    /// Create, delete, list and describe topics.
    Topic {
        /// Topic command.
        #[command(subcommand)]
        command: TopicCommand,
        /// Cluster.
        #[command(flatten)]
        cluster: ClusterArg,
    },
    /// Cluster state.
    Cluster {
        /// Cluster command.
        #[command(subcommand)]
        command: ClusterCommand,
        /// Cluster.
        #[command(flatten)]
        cluster: ClusterArg,
    },
    /// Send messages to a topic.
    Produce(produce::ProduceArgs),
    /// Read messages from a topic.
    Consume(consume::ConsumeArgs),
    /// Benchmarks against a running cluster.
    Bench {
        /// Benchmark.
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
    /// Consumer groups: list, describe (members, offsets, lag), reset offsets.
    Group {
        /// Group command.
        #[command(subcommand)]
        command: GroupCommand,
        /// Cluster.
        #[command(flatten)]
        cluster: ClusterArg,
    },
    /// Long-running producer or consumer workers (started by yak-supervisor).
    Worker(worker::WorkerArgs),
}

/// `group ...`
#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List consumer groups.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Members, assigned partitions, committed offsets, log end offsets and lag.
    Describe {
        /// Group name.
        group: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Move a group's committed offsets (only while it has no members).
    #[command(group(clap::ArgGroup::new("to").required(true).args(["to_earliest", "to_latest", "to_offset"])))]
    ResetOffsets {
        /// Group name.
        group: String,
        /// Topic whose offsets move.
        #[arg(long)]
        topic: String,
        /// To the first offset of each partition.
        #[arg(long)]
        to_earliest: bool,
        /// To the end (high watermark) of each partition.
        #[arg(long)]
        to_latest: bool,
        /// To this offset in every partition.
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        to_offset: Option<i64>,
    },
}

/// `topic ...`
#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        /// Topic name: 1-249 characters of a-z A-Z 0-9 . _ -
        name: String,
        /// Partition count (cluster default if absent).
        #[arg(long)]
        partitions: Option<u32>,
        /// Replicas per partition (cluster default if absent).
        #[arg(long)]
        replication_factor: Option<u32>,
        /// Delete old segments while a partition exceeds this many bytes by a
        /// whole segment (the brokers' --retention-bytes if absent).
        #[arg(long)]
        retention_bytes: Option<u64>,
        /// Delete a segment once its newest message is this old (the
        /// brokers' --retention-ms if absent).
        #[arg(long)]
        retention_ms: Option<u64>,
        /// Kafka's message.timestamp.type: CreateTime (default, the
        /// producer's time) or LogAppendTime (the leader's time at append).
        #[arg(long, value_parser = ops::parse_timestamp_type, value_name = "TYPE")]
        message_timestamp_type: Option<crate::protocol::TimestampType>,
    },
    /// Change a topic: grow its partitions, override or reset its settings.
    Alter(ops::AlterArgs),
    /// Move one partition to new replicas (Kafka's KIP-455: the new ones
    /// catch up and join the ISR, the leader moves if needed, the old ones
    /// are dropped); a different count changes its replication factor.
    Reassign {
        /// Topic name.
        name: String,
        /// Partition index.
        #[arg(long)]
        partition: u32,
        /// The new replicas, preferred leader first: 1,2,4.
        #[arg(long, value_parser = ops::parse_ids, required_unless_present = "cancel", conflicts_with = "cancel")]
        replicas: Option<std::vec::Vec<u32>>,
        /// Cancel the partition's reassignment in progress: it goes back to
        /// its replicas from before (the new ones drop their copy).
        #[arg(long)]
        cancel: bool,
        /// Cap the new replicas' catch-up at this many bytes per second.
        #[arg(long, value_name = "B")]
        throttle_bytes_per_sec: Option<u64>,
        /// Return once started instead of waiting for the move to finish.
        #[arg(long)]
        no_wait: bool,
    },
    /// Delete a topic and its data.
    Delete {
        /// Topic name.
        name: String,
    },
    /// List topics.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a topic's partitions.
    Describe {
        /// Topic name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `cluster ...`
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Brokers and partitions.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Full-screen live view: brokers, partitions (a changed leader or shrunk
    /// ISR highlighted), throughput, group lag, events; `q` quits. Without a
    /// terminal, prints one plain-text frame and exits.
    Watch {
        /// Time between two polls of the cluster.
        #[arg(long, value_name = "MS", default_value_t = crate::limits::WATCH_POLL_INTERVAL_MS_DEFAULT,
              value_parser = clap::value_parser!(u64).range(
                  crate::limits::WATCH_POLL_INTERVAL_MS_MIN..=crate::limits::WATCH_POLL_INTERVAL_MS_MAX))]
        interval_ms: u64,
    },
    /// What happened, oldest first: leader elections, ISR changes, broker
    /// sessions and restarts, topics, group rebalances (times in UTC).
    Events {
        /// One JSON object per line (stable field names).
        #[arg(long)]
        json: bool,
        /// Keep printing new events as they happen, until interrupted.
        #[arg(long)]
        follow: bool,
        /// Only events of the last DURATION: 500ms, 30s, 5m, 2h, 1d.
        #[arg(long, value_name = "DURATION", value_parser = events::parse_duration)]
        since: Option<std::time::Duration>,
    },
    /// Start one more broker (the supervisor runs it); prints its id.
    AddBroker,
    /// Move every replica off a broker (refused if the others cannot hold
    /// every replication factor), then stop it and drop it from the cluster.
    RemoveBroker {
        /// Broker id.
        id: u32,
        /// Cap catch-up traffic at this many bytes per second.
        #[arg(long, value_name = "B")]
        throttle_bytes_per_sec: Option<u64>,
    },
    /// Move replicas so every alive broker holds an equal share (±1) of
    /// replicas and of preferred leaders, with the fewest copies.
    Rebalance {
        /// Print the plan only.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Cap catch-up traffic at this many bytes per second.
        #[arg(long, value_name = "B")]
        throttle_bytes_per_sec: Option<u64>,
    },
    /// Move leadership back to each partition's preferred replica (the first
    /// in its replica list) where it is alive and in the ISR; prints what
    /// moved. ZooKeeper also does this on its own every few seconds.
    RebalanceLeaders {
        /// Only this topic.
        #[arg(long)]
        topic: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Output format of `consume`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    /// One value per line.
    Text,
    /// One JSON object per line.
    Json,
}

/// Runs a parsed command.
pub fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.command {
        Command::Zookeeper(a) => servers::zookeeper(a),
        Command::Broker(a) => servers::broker(a),
        Command::Topic { command, cluster } => admin::topic(command, &cluster.cluster),
        Command::Cluster {
            command: ClusterCommand::AddBroker,
            cluster,
        } => ops::add_broker(&cluster.cluster),
        Command::Cluster {
            command:
                ClusterCommand::RemoveBroker {
                    id,
                    throttle_bytes_per_sec,
                },
            cluster,
        } => ops::remove_broker(&cluster.cluster, id, throttle_bytes_per_sec),
        Command::Cluster {
            command:
                ClusterCommand::Rebalance {
                    dry_run,
                    json,
                    throttle_bytes_per_sec,
                },
            cluster,
        } => ops::rebalance(&cluster.cluster, dry_run, json, throttle_bytes_per_sec),
        Command::Cluster {
            command: ClusterCommand::Status { json },
            cluster,
        } => admin::status(&cluster.cluster, json),
        Command::Cluster {
            command: ClusterCommand::Watch { interval_ms },
            cluster,
        } => watch::run(&cluster.cluster, interval_ms),
        Command::Cluster {
            command:
                ClusterCommand::Events {
                    json,
                    follow,
                    since,
                },
            cluster,
        } => events::run(&cluster.cluster, json, follow, since),
        Command::Cluster {
            command: ClusterCommand::RebalanceLeaders { topic, json },
            cluster,
        } => admin::rebalance_leaders(&cluster.cluster, topic.as_deref(), json),
        Command::Produce(a) => produce::run(a),
        Command::Consume(a) => consume::run(a),
        Command::Bench { command } => bench::run(command),
        Command::Group { command, cluster } => group::run(command, &cluster.cluster),
        Command::Worker(a) => worker::run(a),
    }
}
