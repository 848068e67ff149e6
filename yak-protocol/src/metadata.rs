//! The cluster's metadata as ZooKeeper serves it: brokers, topics, their
//! partitions' placement, leadership and ISR, per-topic settings and
//! reassignments in progress.

use serde::{Deserialize, Serialize};

/// A broker as ZooKeeper knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerInfo {
    /// Broker id.
    pub id: u32,
    /// Process id of its last registration.
    pub pid: u32,
    /// Its socket path.
    pub socket: String,
    /// Session alive now.
    pub alive: bool,
    /// Times it registered again with a new pid since ZooKeeper started.
    #[serde(default)]
    pub restarts: u32,
    /// Where it serves the Kafka protocol (`127.0.0.1:PORT`); `None` if it does not.
    #[serde(default)]
    pub kafka_address: Option<String>,
}

/// One partition's placement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMetadata {
    /// Partition index.
    pub partition: u32,
    /// Broker that leads it, if any is alive.
    pub leader: Option<u32>,
    /// Every broker that holds a replica, preferred leader first.
    pub replicas: Vec<u32>,
    /// In-sync replicas.
    pub isr: Vec<u32>,
    /// Raised on every leader change.
    pub leader_epoch: u32,
    /// Raised on every change of leader or ISR (Kafka's partition epoch):
    /// the version an ISR change names to be applied.
    #[serde(default)]
    pub partition_epoch: u64,
    /// The reassignment in progress, if any.
    #[serde(default)]
    pub reassignment: Option<Reassignment>,
}

/// Per-topic overrides of cluster defaults; `None` takes the broker's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicConfig {
    /// Kafka's `retention.bytes`: old segments are deleted while a partition
    /// exceeds this by at least a whole segment.
    #[serde(default)]
    pub retention_bytes: Option<u64>,
    /// Kafka's `retention.ms`: a segment is deleted once its newest record
    /// is older than this.
    #[serde(default)]
    pub retention_ms: Option<u64>,
    /// Kafka's `min.insync.replicas`: acks=all needs this many in-sync
    /// replicas (capped at the replica count).
    #[serde(default)]
    pub min_insync_replicas: Option<u32>,
    /// Kafka's `segment.bytes`: a new segment starts past this size.
    #[serde(default)]
    pub segment_bytes: Option<u64>,
    /// Kafka's `message.timestamp.type`: `None` is `CreateTime`.
    #[serde(default)]
    pub message_timestamp_type: Option<TimestampType>,
}

/// Kafka's `message.timestamp.type`: which time a topic's records carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimestampType {
    /// The producer's own timestamps, as sent (Kafka's default).
    CreateTime,
    /// The leader's clock when it appends the batch: every record of the
    /// batch reads as that time (the batch's max timestamp, with the
    /// LogAppendTime attribute bit set).
    LogAppendTime,
}

impl TimestampType {
    /// Kafka's name for it.
    pub fn name(self) -> &'static str {
        match self {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        }
    }

    /// Parses Kafka's name.
    pub fn parse(s: &str) -> Option<TimestampType> {
        match s {
            "CreateTime" => Some(TimestampType::CreateTime),
            "LogAppendTime" => Some(TimestampType::LogAppendTime),
            _ => None,
        }
    }
}

/// A partition reassignment in progress (Kafka's KIP-455): while it runs,
/// the partition's `replicas` are `target` followed by the replicas being
/// removed, so the new ones follow the leader and catch up first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reassignment {
    /// The replica list the partition ends with, preferred leader first.
    pub target: Vec<u32>,
    /// Replicas in `target` that were not replicas before.
    pub adding: Vec<u32>,
    /// Replicas that were, and are not in `target`.
    pub removing: Vec<u32>,
    /// Followers in `adding` fetch at most this many bytes per second.
    #[serde(default)]
    pub throttle_bytes_per_sec: Option<u64>,
    /// The replica list before it started, preferred leader first: what a
    /// cancel goes back to. Empty in records written before cancels
    /// existed ([`Reassignment::original_replicas`] derives it then).
    #[serde(default)]
    pub original: Vec<u32>,
}

impl Reassignment {
    /// The replicas before the reassignment started, given the partition's
    /// replicas now (`target` then `removing`).
    pub fn original_replicas(&self, replicas: &[u32]) -> Vec<u32> {
        if !self.original.is_empty() {
            return self.original.clone();
        }
        replicas
            .iter()
            .copied()
            .filter(|b| !self.adding.contains(b))
            .collect()
    }
}

/// One partition, named (`Call::CancelReassignments`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRef {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
}

/// One partition to move (`Call::ReassignPartitions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMove {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// The replica list wanted, preferred leader first.
    pub replicas: Vec<u32>,
}

/// One topic's placement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMetadata {
    /// Topic name.
    pub name: String,
    /// Unique per creation, so a re-created topic is told apart.
    pub topic_id: u64,
    /// Partitions in index order.
    pub partitions: Vec<PartitionMetadata>,
    /// Per-topic settings given at creation.
    #[serde(default)]
    pub config: TopicConfig,
}

/// What `Metadata` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMetadata {
    /// Raised on every change.
    pub version: u64,
    /// Registered brokers.
    pub brokers: Vec<BrokerInfo>,
    /// Topics asked for.
    pub topics: Vec<TopicMetadata>,
    /// The cluster's id, created once by ZooKeeper; a broker refuses a
    /// ZooKeeper whose id differs from the one in its data dir.
    #[serde(default)]
    pub cluster_id: String,
    /// Ids of recently deleted topics (a bounded record, oldest first), in
    /// answers naming every topic: a broker deletes a replica's files only
    /// when its topic id is here.
    #[serde(default)]
    pub deleted_topic_ids: Vec<u64>,
    /// More topics follow this page: ask again with `after_topic` set to
    /// the last topic here.
    #[serde(default)]
    pub more: bool,
}

/// A partition whose leadership moved to its preferred replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderMove {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// The leader before.
    pub old_leader: Option<u32>,
    /// The preferred replica, leading now.
    pub new_leader: u32,
    /// The new leader epoch.
    pub leader_epoch: u32,
}
