//! Records of ZooKeeper's metadata log and its snapshot.

use super::events::ClusterEvent;
use super::groups::GroupTopicOffsets;
use super::metadata::{PartitionMetadata, Reassignment, TopicConfig, TopicMetadata};
use serde::{Deserialize, Serialize};

/// One change to the cluster metadata, appended (fsynced) before it is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaRecord {
    /// A topic was created with this placement.
    TopicCreated(TopicMetadata),
    /// A topic was deleted.
    TopicDeleted {
        /// Topic name.
        name: String,
    },
    /// A partition's leader, ISR or epoch changed.
    PartitionChanged {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// New leader.
        leader: Option<u32>,
        /// New in-sync replicas.
        isr: Vec<u32>,
        /// New leader epoch.
        leader_epoch: u32,
    },
    /// Producer ids below `next` are handed out.
    ProducerIdsAllocated {
        /// Next free producer id.
        next: i64,
    },
    /// A group committed (or an admin reset) offsets of a topic.
    OffsetsCommitted(GroupTopicOffsets),
    /// A group without members was deleted (Kafka's DeleteGroups): its
    /// committed offsets go.
    GroupDeleted {
        /// Group name.
        group: String,
    },
    /// The cluster got its id (once, when ZooKeeper first starts).
    ClusterIdCreated {
        /// 32 hex digits.
        cluster_id: String,
    },
    /// Cluster events were recorded (written in the same append as the
    /// change they describe, when there is one). Not metadata: applying it
    /// does not raise the metadata version.
    Events(Vec<ClusterEvent>),
    /// A topic grew: these partitions follow its last one.
    PartitionsAdded {
        /// Topic name.
        topic: String,
        /// The new partitions, in index order.
        partitions: Vec<PartitionMetadata>,
    },
    /// A topic's settings were replaced by these.
    TopicConfigChanged {
        /// Topic name.
        topic: String,
        /// The whole new config.
        config: TopicConfig,
    },
    /// A reassignment started: the partition's replicas are now `replicas`
    /// (target then removing), with `reassignment` in progress.
    ReassignmentStarted {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// Replicas while it runs.
        replicas: Vec<u32>,
        /// What runs.
        reassignment: Reassignment,
    },
    /// A reassignment ended: the replicas are the target's, leader and ISR
    /// as given (the removed replicas left).
    ReassignmentCompleted {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// The final replicas.
        replicas: Vec<u32>,
        /// Leader.
        leader: Option<u32>,
        /// In-sync replicas (within `replicas`).
        isr: Vec<u32>,
        /// Leader epoch.
        leader_epoch: u32,
    },
    /// A reassignment was cancelled: the replicas are the ones from before
    /// it started, leader and ISR as given (within them; a leader that was
    /// a new replica is replaced by an original ISR member, epoch + 1).
    ReassignmentCancelled {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// The replicas from before it started.
        replicas: Vec<u32>,
        /// Leader.
        leader: Option<u32>,
        /// In-sync replicas (within `replicas`).
        isr: Vec<u32>,
        /// Leader epoch.
        leader_epoch: u32,
    },
}

/// The whole metadata state at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaSnapshot {
    /// Metadata version.
    pub version: u64,
    /// Next topic id.
    pub next_topic_id: u64,
    /// Next free producer id.
    pub next_producer_id: i64,
    /// Every topic.
    pub topics: Vec<TopicMetadata>,
    /// Committed offsets of every group, per topic.
    #[serde(default)]
    pub group_offsets: Vec<GroupTopicOffsets>,
    /// The cluster's id (None before it is created).
    #[serde(default)]
    pub cluster_id: Option<String>,
    /// Ids of the most recently deleted topics, oldest first.
    #[serde(default)]
    pub deleted_topic_ids: Vec<u64>,
    /// The newest cluster events, oldest first.
    #[serde(default)]
    pub events: Vec<ClusterEvent>,
    /// The number the next event gets.
    #[serde(default)]
    pub next_event_seq: u64,
}
