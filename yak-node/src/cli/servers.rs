//! `yak-node zookeeper` and `yak-node broker`: flags to configs, then run.

use crate::broker::{self, BrokerConfig};
use crate::limits::{
    CONNECTIONS_MAX, CONNECTIONS_RESERVED, EVENTS_MAX_DEFAULT, EVENTS_MAX_LIMIT,
    GROUP_SESSION_TIMEOUT_MS_DEFAULT, GROUP_SESSION_TIMEOUT_MS_MAX, GROUP_SESSION_TIMEOUT_MS_MIN,
    INDEX_INTERVAL_BYTES, LEADER_REBALANCE_INTERVAL_MS_DEFAULT, SEGMENT_BYTES_DEFAULT,
    SESSION_TIMEOUT_MS_DEFAULT,
};
use crate::storage::{FsyncPolicy, LogConfig, RetentionPolicy};
use crate::zookeeper::{self, state::TopicDefaults, ZkConfig};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// Flags of `yak-node zookeeper`.
#[derive(Debug, Args)]
pub struct ZookeeperArgs {
    /// Where zookeeper.sock goes.
    #[arg(long, default_value = "yak-run")]
    pub run_dir: PathBuf,
    /// Where the metadata log goes (in zookeeper/).
    #[arg(long, default_value = "yak-data")]
    pub data_dir: PathBuf,
    /// A broker silent this long is dead.
    #[arg(long, default_value_t = SESSION_TIMEOUT_MS_DEFAULT)]
    pub session_timeout_ms: u64,
    /// Partitions of a topic created without --partitions.
    #[arg(long, default_value_t = 3)]
    pub default_partitions: u32,
    /// Replicas of a topic created without --replication-factor.
    #[arg(long, default_value_t = 1)]
    pub default_replication_factor: u32,
    /// A consumer-group member silent this long is removed and its
    /// partitions reassigned (a member may ask for its own when joining).
    #[arg(long, default_value_t = GROUP_SESSION_TIMEOUT_MS_DEFAULT)]
    pub group_session_timeout_ms: u64,
    /// The shortest session timeout a group member may ask for; a join
    /// asking for less is refused (Kafka's group.min.session.timeout.ms).
    #[arg(long, default_value_t = GROUP_SESSION_TIMEOUT_MS_MIN)]
    pub group_min_session_timeout_ms: u64,
    /// The longest session timeout a group member may ask for; a join
    /// asking for more is refused (Kafka's group.max.session.timeout.ms).
    #[arg(long, default_value_t = GROUP_SESSION_TIMEOUT_MS_MAX)]
    pub group_max_session_timeout_ms: u64,
    /// Cluster events kept in the metadata (the newest; `cluster events`
    /// shows them).
    #[arg(long, default_value_t = EVENTS_MAX_DEFAULT)]
    pub events_max: usize,
    /// Every this many ms, move leadership back to preferred replicas that
    /// are alive and in the ISR (Kafka's auto leader rebalance); 0: only on
    /// `cluster rebalance-leaders`.
    #[arg(long, default_value_t = LEADER_REBALANCE_INTERVAL_MS_DEFAULT)]
    pub leader_rebalance_interval_ms: u64,
    /// Most client and cluster connections served at once (the last
    /// few are kept for the cluster's own processes).
    #[arg(long, default_value_t = CONNECTIONS_MAX)]
    pub connections_max: usize,
}

/// When appends reach the disk.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FsyncArg {
    /// fsync before acks=all is answered (group commit per request).
    Always,
    /// Leave it to the OS: faster, loses recent writes on power loss.
    Never,
}

/// Flags of `yak-node broker`.
#[derive(Debug, Args)]
pub struct BrokerArgs {
    /// Broker id.
    #[arg(long)]
    pub id: u32,
    /// Where the sockets live.
    #[arg(long, default_value = "yak-run")]
    pub run_dir: PathBuf,
    /// Where broker-<id>/ goes.
    #[arg(long, default_value = "yak-data")]
    pub data_dir: PathBuf,
    /// Roll a new segment at this size.
    #[arg(long, default_value_t = SEGMENT_BYTES_DEFAULT)]
    pub segment_bytes: u64,
    /// Write a sparse index entry every this many bytes.
    #[arg(long, default_value_t = INDEX_INTERVAL_BYTES)]
    pub index_interval_bytes: u64,
    /// fsync policy.
    #[arg(long, value_enum, default_value = "always")]
    pub fsync: FsyncArg,
    /// Cluster default retention.bytes per partition: delete the oldest
    /// segments while a log exceeds it by a whole segment (absent: unlimited).
    #[arg(long)]
    pub retention_bytes: Option<u64>,
    /// Cluster default retention.ms: delete a segment once its newest record
    /// is this old (absent: unlimited).
    #[arg(long)]
    pub retention_ms: Option<u64>,
    /// Most client and cluster connections served at once (the last
    /// few are kept for the cluster's own processes).
    #[arg(long, default_value_t = CONNECTIONS_MAX)]
    pub connections_max: usize,
    /// Also serve the Kafka protocol on TCP 127.0.0.1:PORT (absent or 0: off).
    #[arg(long, value_name = "PORT")]
    pub kafka_port: Option<u16>,
    /// A Kafka client's Metadata request naming a topic that does not exist
    /// does not create it (by default it is created with the cluster
    /// defaults, like YaK's own produce; Kafka's `auto.create.topics.enable`).
    /// In cluster.toml: `[broker] kafka_no_auto_create_topics = true`.
    #[arg(long)]
    pub kafka_no_auto_create_topics: bool,
}

/// Runs ZooKeeper.
pub fn zookeeper(a: ZookeeperArgs) -> Result<(), Box<dyn std::error::Error>> {
    if a.default_partitions == 0 || a.default_replication_factor == 0 {
        return Err(
            "--default-partitions and --default-replication-factor must be at least 1".into(),
        );
    }
    if !(a.group_min_session_timeout_ms..=a.group_max_session_timeout_ms)
        .contains(&a.group_session_timeout_ms)
        || a.group_min_session_timeout_ms == 0
    {
        return Err(format!(
            "--group-session-timeout-ms {} must lie within --group-min-session-timeout-ms {} \
             and --group-max-session-timeout-ms {} (the minimum at least 1)",
            a.group_session_timeout_ms,
            a.group_min_session_timeout_ms,
            a.group_max_session_timeout_ms
        )
        .into());
    }
    if !(1..=EVENTS_MAX_LIMIT).contains(&a.events_max) {
        return Err(format!(
            "--events-max must be 1 to {EVENTS_MAX_LIMIT}, not {}",
            a.events_max
        )
        .into());
    }
    zookeeper::run(ZkConfig {
        run_dir: a.run_dir,
        data_dir: a.data_dir,
        session_timeout: Duration::from_millis(a.session_timeout_ms),
        defaults: TopicDefaults {
            partitions: a.default_partitions,
            replication_factor: a.default_replication_factor,
        },
        group_session_timeout: Duration::from_millis(a.group_session_timeout_ms),
        group_session_timeout_min: Duration::from_millis(a.group_min_session_timeout_ms),
        group_session_timeout_max: Duration::from_millis(a.group_max_session_timeout_ms),
        events_max: a.events_max,
        leader_rebalance_interval: (a.leader_rebalance_interval_ms > 0)
            .then(|| Duration::from_millis(a.leader_rebalance_interval_ms)),
        // Whoever started ZooKeeper (yak-supervisor) vouches for brokers.
        supervisor_pid: Some(std::os::unix::process::parent_id()),
        connections_max: check_connections_max(a.connections_max)?,
    })
}

/// Runs a broker.
pub fn broker(a: BrokerArgs) -> Result<(), Box<dyn std::error::Error>> {
    if a.segment_bytes < 1024 || a.index_interval_bytes == 0 {
        return Err(
            "--segment-bytes must be at least 1024 and --index-interval-bytes at least 1".into(),
        );
    }
    broker::run(BrokerConfig {
        id: a.id,
        run_dir: a.run_dir,
        data_dir: a.data_dir,
        log: LogConfig {
            segment_bytes: a.segment_bytes,
            index_interval_bytes: a.index_interval_bytes,
        },
        fsync: match a.fsync {
            FsyncArg::Always => FsyncPolicy::Always,
            FsyncArg::Never => FsyncPolicy::Never,
        },
        retention: RetentionPolicy {
            bytes: a.retention_bytes,
            ms: a.retention_ms,
        },
        connections_max: check_connections_max(a.connections_max)?,
        kafka: a
            .kafka_port
            .filter(|p| *p != 0)
            .map(|port| crate::kafka::KafkaSettings {
                port,
                auto_create_topics: !a.kafka_no_auto_create_topics,
            }),
    })
}

/// Refuses a connection cap that leaves clients no slot.
fn check_connections_max(n: usize) -> Result<usize, String> {
    if n <= CONNECTIONS_RESERVED {
        return Err(format!("--connections-max must be more than the {CONNECTIONS_RESERVED} reserved for the cluster, not {n}"));
    }
    Ok(n)
}
