//! Consumer-group types that cross the wire: assignors, a member's view of
//! its group, committed offsets, and what `group list|describe` show.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How a group's partitions are spread over its members (computed by the
/// coordinator in ZooKeeper).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Assignor {
    /// Contiguous ranges of partitions per member, as Kafka's RangeAssignor.
    #[default]
    Range,
    /// Partitions dealt to members in turn, as Kafka's RoundRobinAssignor.
    RoundRobin,
    /// Balanced like round-robin, but a member keeps the partitions it had
    /// in the previous generation where it can, as Kafka's StickyAssignor.
    Sticky,
}

impl Assignor {
    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Assignor::Range => "range",
            Assignor::RoundRobin => "round-robin",
            Assignor::Sticky => "sticky",
        }
    }
}

/// A member's view of its group, answered to `JoinGroup` and `GroupHeartbeat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    /// The member id to use from now on.
    pub member_id: String,
    /// The group's generation; raised by every completed rebalance.
    pub generation: u32,
    /// A rebalance is under way: stop reading, commit, and rejoin.
    pub rebalancing: bool,
    /// This member's partitions in `generation` (empty while rebalancing).
    pub partitions: Vec<u32>,
    /// Send a heartbeat at least this often.
    #[serde(default)]
    pub heartbeat_interval_ms: u64,
    /// This member's partitions in `generation` for every topic it
    /// subscribes to, in topic order (empty while rebalancing); `partitions`
    /// is the first subscribed topic's share alone.
    #[serde(default)]
    pub assigned: Vec<TopicAssignment>,
}

/// One topic's partitions given to a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicAssignment {
    /// Topic name.
    pub topic: String,
    /// Partition indexes, ascending.
    pub partitions: Vec<u32>,
}

/// One partition's committed offset: the next offset the group will read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionOffset {
    /// Partition index.
    pub partition: u32,
    /// Committed offset.
    pub offset: u64,
}

/// One group's committed offsets for one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupTopicOffsets {
    /// Group name.
    pub group: String,
    /// Topic name.
    pub topic: String,
    /// Per partition, ascending.
    pub offsets: Vec<PartitionOffset>,
    /// Kafka commit metadata strings, per partition that has one (absent in
    /// records and snapshots written before they were kept).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<u32, String>,
}

/// A member as `group describe` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// The client's own name (worker name or `consume-<pid>`).
    pub client: String,
    /// The first topic it subscribes to.
    pub topic: String,
    /// Its partitions of `topic` in the current generation.
    pub partitions: Vec<u32>,
    /// Every topic it subscribes to (`topic` first).
    #[serde(default)]
    pub topics: Vec<String>,
    /// Its partitions of every subscribed topic in the current generation.
    #[serde(default)]
    pub assigned: Vec<TopicAssignment>,
}

/// A group as `group describe` shows it (the broker-side offsets are added
/// by the client).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupDescription {
    /// Group name.
    pub group: String,
    /// `stable`, `rebalancing` or `empty`.
    pub state: String,
    /// Current generation.
    pub generation: u32,
    /// The group's assignor.
    pub assignor: Assignor,
    /// Current members.
    pub members: Vec<MemberDescription>,
    /// Committed offsets, per topic.
    pub offsets: Vec<GroupTopicOffsets>,
    /// A Kafka consumer group's protocol (assignor) chosen by its members
    /// (`range`, `roundrobin`, `cooperative-sticky`, ...); `None` for YaK's own groups.
    #[serde(default)]
    pub protocol: Option<String>,
}

/// A group as `group list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSummary {
    /// Group name.
    pub group: String,
    /// `stable`, `rebalancing` or `empty`.
    pub state: String,
    /// Number of members.
    pub members: u32,
    /// Topics it reads or has offsets for.
    pub topics: Vec<String>,
}
