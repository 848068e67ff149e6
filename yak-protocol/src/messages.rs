//! Requests and responses. Every message is a named MessagePack map;
//! fields added later carry `#[serde(default)]` so old peers still parse.
//!
//! A request is `{correlation_id, call: {api, body}}`; the response echoes
//! the correlation id, so a client may pipeline many requests.

#[cfg(doc)]
use super::acks::Acks;
use super::classic::{ClassicCall, ClassicReply};
use super::errors::ErrorBody;
use super::events::{ClusterEvent, ProcessRestart};
use super::groups::{
    Assignor, GroupDescription, GroupSummary, MemberStatus, PartitionOffset, TopicAssignment,
};
use super::metadata::{
    ClusterMetadata, LeaderMove, PartitionMove, PartitionRef, TopicConfig, TopicMetadata,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One request frame.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// Echoed in the response.
    pub correlation_id: u64,
    /// What is asked.
    pub call: Call,
}

/// One response frame.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    /// The id of the request this answers.
    pub correlation_id: u64,
    /// The answer.
    pub reply: Reply,
}

/// Which offset `ListOffsets` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OffsetSpec {
    /// The first offset still in the log.
    Earliest,
    /// The offset the next message will get (for consumers: the high watermark).
    Latest,
    /// The first record whose timestamp is at least `timestamp_ms` (Kafka's
    /// ListOffsets by timestamp), below the high watermark; answered with
    /// [`Reply::TimestampOffset`].
    Timestamp {
        /// Milliseconds since the Unix epoch.
        timestamp_ms: i64,
    },
    /// The first record with the largest timestamp (Kafka's `-3`), below the
    /// high watermark; answered with [`Reply::TimestampOffset`].
    MaxTimestamp,
}

/// A record found by timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimestampOffset {
    /// Its offset.
    pub offset: u64,
    /// Its timestamp (ms since the Unix epoch).
    pub timestamp_ms: i64,
    /// The leader epoch of its batch.
    pub leader_epoch: u32,
}

/// One partition in a fetch request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FetchPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// First offset wanted.
    pub offset: u64,
    /// Most bytes wanted from this partition.
    pub max_bytes: u32,
    /// The leader epoch the fetcher believes current; a mismatch is refused.
    #[serde(default)]
    pub leader_epoch: Option<u32>,
    /// Followers: epoch of the last batch they hold, for divergence checks.
    #[serde(default)]
    pub last_fetched_epoch: Option<u32>,
}

/// Every request YaK understands, tagged by `api`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "api", content = "body")]
pub enum Call {
    /// Broker → ZooKeeper: I am alive at this socket.
    RegisterBroker {
        /// Broker id.
        broker_id: u32,
        /// Process id.
        pid: u32,
        /// Path of the broker's socket.
        socket: String,
        /// Where the broker serves the Kafka protocol (`127.0.0.1:PORT`), if it does.
        #[serde(default)]
        kafka_address: Option<String>,
    },
    /// Broker → ZooKeeper: still alive.
    Heartbeat {
        /// Broker id.
        broker_id: u32,
    },
    /// Create a topic; missing counts take the cluster defaults.
    CreateTopic {
        /// Topic name.
        name: String,
        /// Partition count.
        #[serde(default)]
        partitions: Option<u32>,
        /// Replicas per partition.
        #[serde(default)]
        replication_factor: Option<u32>,
        /// Per-topic settings (retention); missing ones take the cluster defaults.
        #[serde(default)]
        config: TopicConfig,
    },
    /// Delete a topic and, on the brokers, its files.
    DeleteTopic {
        /// Topic name.
        name: String,
    },
    /// Cluster metadata; `None` means every topic. Answered in pages of
    /// whole topics in name order (see [`ClusterMetadata::more`]).
    Metadata {
        /// Topics of interest.
        #[serde(default)]
        topics: Option<Vec<String>>,
        /// Only topics named after this one (the last of the previous page).
        #[serde(default)]
        after_topic: Option<String>,
    },
    /// Client → broker: append one record batch to a partition.
    Produce {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// How many replicas must have it before the answer: 0, 1 or -1
        /// (all), Kafka's wire values. The receiver turns it into an
        /// [`Acks`] with [`Acks::from_wire`] before anything else and
        /// refuses any other value.
        acks: i8,
        /// The batch in its on-disk form.
        #[serde(with = "serde_bytes")]
        records: Vec<u8>,
    },
    /// Read record batches from one or more partitions of this broker.
    Fetch {
        /// Set by a follower replicating; consumers leave it out.
        #[serde(default)]
        replica_id: Option<u32>,
        /// Wait up to this long for `min_bytes` of records.
        max_wait_ms: u64,
        /// Answer once this many bytes of records are there (or on any
        /// error); 0 answers at once. Left out: 1, any data answers.
        #[serde(default = "fetch_min_bytes_default")]
        min_bytes: u32,
        /// Partitions and offsets.
        partitions: Vec<FetchPartition>,
    },
    /// The earliest or latest offset of a partition.
    ListOffsets {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// Which offset.
        spec: OffsetSpec,
    },
    /// Client → partition leader: where a leader epoch ends in the log
    /// (Kafka's OffsetForLeaderEpoch, KIP-320: a consumer checks its
    /// position after a leader change). Answered with `EpochEndOffset`.
    EpochEndOffset {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// The epoch asked about (that of the last record consumed).
        leader_epoch: u32,
        /// The leader epoch the asker believes current: an older one is
        /// refused with `FencedLeaderEpoch`, a newer one with
        /// `UnknownLeaderEpoch`; `None` skips the check.
        #[serde(default)]
        current_leader_epoch: Option<u32>,
    },
    /// Broker: the state of every partition replica it holds.
    LocalPartitions,
    /// Broker: its request, byte and latency counters (for metrics).
    BrokerStats,
    /// Leader → ZooKeeper: change a partition's ISR, naming my epoch.
    AlterIsr {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// The leader asking.
        leader: u32,
        /// Its leader epoch; a stale one is refused.
        leader_epoch: u32,
        /// The new in-sync replicas.
        isr: Vec<u32>,
        /// The partition epoch the change is based on: ZooKeeper applies it
        /// only if the partition has not changed since (compare-and-set).
        #[serde(default)]
        partition_epoch: u64,
        /// The topic id the leader's replica belongs to: a change meant for
        /// a deleted topic never applies to one re-created under its name.
        #[serde(default)]
        topic_id: u64,
    },
    /// Supervisor → ZooKeeper: this broker's process is gone; expire it now.
    /// Only a session registered by that very process is expired, never a
    /// restarted successor's.
    BrokerDown {
        /// Broker id.
        broker_id: u32,
        /// Pid of the process that exited.
        pid: u32,
    },
    /// Admin → ZooKeeper: move leadership back to preferred replicas now
    /// (what ZooKeeper also does every `--leader-rebalance-interval-ms`).
    RebalanceLeaders {
        /// Only this topic; every topic when absent.
        #[serde(default)]
        topic: Option<String>,
    },
    /// Producer → ZooKeeper: a fresh producer id for idempotent produce.
    InitProducerId,
    /// Producer → ZooKeeper: the next epoch of a producer id it holds
    /// (Kafka's InitProducerId naming an id and epoch, KIP-360). Answered
    /// with `ProducerEpoch`: the same id with `epoch + 1` (a retry of the
    /// last bump gets the same answer), or a fresh id with epoch 0 when the
    /// epoch is exhausted; an epoch older than the id's current one is
    /// refused with `InvalidProducerEpoch`.
    BumpProducerEpoch {
        /// The id held.
        producer_id: i64,
        /// The epoch it writes with now.
        epoch: i16,
    },
    /// Supervisor → ZooKeeper: a child process was restarted (recorded as a
    /// `process_restarted` event).
    ProcessRestarted(ProcessRestart),
    /// The cluster's event history, oldest first, from memory: events with
    /// `seq > after_seq` and `time_ms >= since_ms` (each filter optional), at
    /// most `max` (and never more than ZooKeeper's page size).
    Events {
        /// Only events numbered above this.
        #[serde(default)]
        after_seq: Option<u64>,
        /// Only events recorded at or after this Unix millisecond.
        #[serde(default)]
        since_ms: Option<i64>,
        /// At most this many.
        #[serde(default)]
        max: Option<u32>,
    },
    /// Consumer → ZooKeeper: join a group (empty `member_id` the first
    /// time), or rejoin during a rebalance. Answered with `GroupMember`.
    JoinGroup {
        /// Group name.
        group: String,
        /// Empty on the first join; the id given before on a rejoin.
        #[serde(default)]
        member_id: String,
        /// The client's own name, shown by `group describe`.
        #[serde(default)]
        client: String,
        /// The topic this member reads (the first of `topics`).
        topic: String,
        /// Every topic this member subscribes to; empty means `topic` alone.
        #[serde(default)]
        topics: Vec<String>,
        /// Assignor this member wants; must match the group's.
        #[serde(default)]
        assignor: Assignor,
        /// Session timeout; ZooKeeper's default when absent.
        #[serde(default)]
        session_timeout_ms: Option<u64>,
    },
    /// Consumer → ZooKeeper: still alive in this generation.
    GroupHeartbeat {
        /// Group name.
        group: String,
        /// Member id.
        member_id: String,
        /// The generation the member works in.
        generation: u32,
    },
    /// Kafka front door → ZooKeeper: one KIP-848 ConsumerGroupHeartbeat
    /// (epoch 0 joins). The coordinator computes the member's target and
    /// reconciles it: a partition another member still owns is given only
    /// once that member no longer reports it. Answered with the member's
    /// epoch (`generation`) and what it should own now (`assigned`).
    ConsumerGroupHeartbeat {
        /// Group name.
        group: String,
        /// Empty or the client's own id on a join; the member's id after.
        member_id: String,
        /// The client's own name, shown by `group describe`.
        client: String,
        /// The member epoch the client sent (0 joins).
        member_epoch: u32,
        /// The subscription, on a join and whenever it changed; `None`: unchanged.
        topics: Option<Vec<String>>,
        /// Assignor this member wants; must match the group's.
        assignor: Assignor,
        /// The partitions the member owns now, when it says; `None`: unchanged.
        owned: Option<Vec<TopicAssignment>>,
        /// How long it may take to revoke partitions; `None`: its session timeout.
        #[serde(default)]
        rebalance_timeout_ms: Option<u64>,
    },
    /// Consumer → ZooKeeper: leaving the group now (triggers a rebalance).
    LeaveGroup {
        /// Group name.
        group: String,
        /// Member id.
        member_id: String,
    },
    /// Consumer → ZooKeeper: commit processed offsets; refused from a stale
    /// generation, a non-member, or for a partition not assigned to it.
    CommitOffsets {
        /// Group name.
        group: String,
        /// Member id.
        member_id: String,
        /// The generation the offsets were read in.
        generation: u32,
        /// Topic name.
        topic: String,
        /// Next offset to read per partition.
        offsets: Vec<PartitionOffset>,
        /// Kafka commit metadata strings per partition (KIP-848 members).
        #[serde(default)]
        metadata: BTreeMap<u32, String>,
    },
    /// Committed offsets of a group for a topic.
    FetchOffsets {
        /// Group name.
        group: String,
        /// Topic name.
        topic: String,
    },
    /// Every group ZooKeeper knows (with members or committed offsets).
    ListGroups,
    /// One group's members, assignment and committed offsets.
    DescribeGroup {
        /// Group name.
        group: String,
    },
    /// Admin → ZooKeeper: grow a topic to `count` partitions (never shrinks).
    CreatePartitions {
        /// Topic name.
        topic: String,
        /// The new partition count.
        count: u32,
    },
    /// Admin → ZooKeeper: change a topic's settings: each `Some` in `set`
    /// overrides, each key in `delete` (`retention.ms`, `retention.bytes`,
    /// `min.insync.replicas`, `segment.bytes`) goes back to the default.
    AlterTopicConfig {
        /// Topic name.
        topic: String,
        /// Settings to override.
        #[serde(default)]
        set: TopicConfig,
        /// Settings to remove.
        #[serde(default)]
        delete: Vec<String>,
    },
    /// Admin → ZooKeeper: move partitions to new replica lists (KIP-455:
    /// add, catch up, move the leader, drop). All or none are started.
    ReassignPartitions {
        /// The partitions and their wanted replicas.
        moves: Vec<PartitionMove>,
        /// Catch-up fetch rate cap for the new replicas.
        #[serde(default)]
        throttle_bytes_per_sec: Option<u64>,
    },
    /// Admin → ZooKeeper: cancel reassignments in progress (Kafka's
    /// AlterPartitionReassignments with null replicas): each partition goes
    /// back to its replicas from before the move. All or none.
    CancelReassignments {
        /// The partitions.
        partitions: Vec<PartitionRef>,
    },
    /// Supervisor → ZooKeeper: a removed broker is gone for good; forget
    /// its session (refused while a partition still lists it).
    ForgetBroker {
        /// Broker id.
        broker_id: u32,
    },
    /// Admin → supervisor (`supervisor.sock`): start one more broker, with
    /// the next free id; it joins the supervisor's durable broker set.
    AddBroker,
    /// Admin → supervisor: stop this broker for good and drop it from the
    /// broker set (drain it first: `cluster remove-broker` does).
    RemoveBroker {
        /// Broker id.
        broker_id: u32,
    },
    /// Admin → ZooKeeper: overwrite committed offsets of a group without
    /// members (the client resolves earliest/latest to offsets first).
    ResetOffsets {
        /// Group name.
        group: String,
        /// Topic name.
        topic: String,
        /// New committed offset per partition.
        offsets: Vec<PartitionOffset>,
    },
    /// Kafka front door → ZooKeeper: a Kafka classic-group call.
    ClassicGroup(ClassicCall),
}

/// One partition's data in a fetch response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FetchedPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// Set when this partition could not be read.
    #[serde(default)]
    pub error: Option<ErrorBody>,
    /// Consumers may read below this offset.
    pub high_watermark: u64,
    /// First offset in the log.
    pub log_start_offset: u64,
    /// Whole record batches as stored.
    #[serde(with = "serde_bytes")]
    pub records: Vec<u8>,
    /// Followers: the log diverged; truncate to `(epoch, end offset)` first.
    #[serde(default)]
    pub diverging_epoch: Option<(u32, u64)>,
}

/// A replica held by a broker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LocalPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// Topic id the files belong to.
    pub topic_id: u64,
    /// First offset in the log.
    pub log_start_offset: u64,
    /// Offset the next record will get.
    pub log_end_offset: u64,
    /// Consumers may read below this.
    pub high_watermark: u64,
    /// Leader epoch this broker knows.
    pub leader_epoch: u32,
    /// This broker leads the partition.
    pub is_leader: bool,
    /// In-sync replicas as this broker knows them.
    #[serde(default)]
    pub isr: Vec<u32>,
    /// Bytes of its segments on disk (reassignment progress in bytes).
    #[serde(default)]
    pub size_bytes: u64,
}

/// A latency histogram as a broker reports it: observations per fixed bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistogramReport {
    /// Upper bounds of the buckets in microseconds, ascending; a last bucket
    /// without a bound (+Inf) follows them.
    pub bounds_us: Vec<u64>,
    /// Observations per bucket, not cumulative: `bounds_us.len() + 1` entries.
    pub counts: Vec<u64>,
    /// Sum of every observation, in microseconds.
    pub sum_us: u64,
}

/// A broker's counters since it started (`Call::BrokerStats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerStatsReport {
    /// Produce requests received (answered or not, failed or not).
    pub produce_requests: u64,
    /// Produce requests answered with an error.
    pub produce_errors: u64,
    /// Record batch bytes received in produce requests.
    pub produce_bytes: u64,
    /// Fetch requests from consumers.
    pub fetch_requests_consumer: u64,
    /// Fetch requests from follower replicas.
    pub fetch_requests_follower: u64,
    /// Record bytes returned to consumers.
    pub fetch_bytes_consumer: u64,
    /// Record bytes returned to follower replicas.
    pub fetch_bytes_follower: u64,
    /// Client connections open now (this one included).
    pub connections: u64,
    /// From a produce request's arrival to its answer (acks 1 and all).
    pub produce_latency: HistogramReport,
    /// One fsync of a partition's log (leader group commit or follower append).
    pub fsync_latency: HistogramReport,
}

/// Every response, tagged by `api`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "api", content = "body")]
pub enum Reply {
    /// The request failed.
    Error(ErrorBody),
    /// Registration accepted.
    Registered {
        /// Current metadata version.
        metadata_version: u64,
        /// The cluster's id (see [`ClusterMetadata::cluster_id`]).
        #[serde(default)]
        cluster_id: String,
    },
    /// Heartbeat accepted.
    HeartbeatOk {
        /// Current metadata version; a broker refreshes when it changed.
        metadata_version: u64,
    },
    /// The topic was created.
    TopicCreated(TopicMetadata),
    /// The topic was deleted.
    TopicDeleted,
    /// Cluster metadata.
    Metadata(ClusterMetadata),
    /// The batch was appended (or had been: a resent duplicate).
    Produced {
        /// Offset of its first record.
        base_offset: u64,
        /// True when this batch was already in the log and nothing was written.
        #[serde(default)]
        duplicate: bool,
        /// The leader's append time given to every record, when the topic's
        /// `message.timestamp.type` is LogAppendTime (a new append only).
        #[serde(default)]
        log_append_time_ms: Option<i64>,
    },
    /// ZooKeeper accepted an ISR change: the ISR it holds now (members not
    /// alive are left out) and the partition epoch that goes with it.
    IsrAltered {
        /// The in-sync replicas after the change.
        isr: Vec<u32>,
        /// The partition epoch after the change.
        partition_epoch: u64,
    },
    /// ZooKeeper noted a broker down.
    BrokerDownNoted,
    /// Leadership moved back to preferred replicas (empty: nothing to move).
    LeadersRebalanced {
        /// Each partition whose leader changed.
        moved: Vec<LeaderMove>,
    },
    /// ZooKeeper noted a process restart.
    ProcessRestartNoted,
    /// Events asked for, oldest first.
    Events {
        /// The events.
        events: Vec<ClusterEvent>,
        /// More events match than one answer carries: ask again after the last.
        #[serde(default)]
        more: bool,
    },
    /// A fresh producer id.
    ProducerId {
        /// The id.
        producer_id: i64,
    },
    /// A producer id and the epoch to write with (to `BumpProducerEpoch`).
    ProducerEpoch {
        /// The id (a fresh one when the epoch was exhausted).
        producer_id: i64,
        /// The epoch.
        epoch: i16,
    },
    /// Fetch results per partition.
    Fetched {
        /// Per partition, in request order.
        partitions: Vec<FetchedPartition>,
    },
    /// An offset.
    Offset {
        /// The offset asked for.
        offset: u64,
    },
    /// Where a leader epoch ends (to `EpochEndOffset`): the largest epoch
    /// in the log at most the one asked, and the start offset of the next
    /// higher epoch (the log end offset for the latest). `None` when the
    /// log knows no epoch that answers (empty, or the epoch asked is newer
    /// than the leader's).
    EpochEndOffset {
        /// `(epoch, end offset)`.
        #[serde(default)]
        epoch_end: Option<(u32, u64)>,
    },
    /// The answer to a `ListOffsets` by timestamp.
    TimestampOffset {
        /// The record; `None` when no record below the high watermark is
        /// that new.
        found: Option<TimestampOffset>,
    },
    /// Replicas held by a broker.
    LocalPartitions {
        /// One per replica.
        partitions: Vec<LocalPartition>,
    },
    /// A broker's counters since it started (to `BrokerStats`).
    BrokerStats(BrokerStatsReport),
    /// A member's view of its group (to `JoinGroup` and `GroupHeartbeat`).
    GroupMember(MemberStatus),
    /// The member left, or the offsets were committed or reset.
    GroupOk,
    /// Committed offsets (to `FetchOffsets`).
    GroupOffsets {
        /// Per partition that has one, ascending.
        offsets: Vec<PartitionOffset>,
    },
    /// Every group (to `ListGroups`).
    Groups {
        /// By name.
        groups: Vec<GroupSummary>,
    },
    /// One group (to `DescribeGroup`).
    Group(GroupDescription),
    /// The topic after a change of partitions or settings.
    TopicAltered(TopicMetadata),
    /// ZooKeeper forgot a removed broker (to `ForgetBroker`).
    BrokerForgotten,
    /// The supervisor started a broker (to `AddBroker`).
    BrokerAdded {
        /// Its id.
        broker_id: u32,
        /// Its process id.
        pid: u32,
    },
    /// The supervisor stopped a broker and dropped it from its set.
    BrokerRemoved {
        /// Its id.
        broker_id: u32,
    },
    /// The reassignments were started (or were already in progress).
    ReassignmentsStarted {
        /// How many partitions move (a move to the current list is none).
        started: u32,
    },
    /// To `ClassicGroup`.
    ClassicGroup(ClassicReply),
    /// The reassignments were cancelled (to `CancelReassignments`).
    ReassignmentsCancelled {
        /// How many partitions went back.
        cancelled: u32,
    },
}

/// A fetch that does not say how many bytes it waits for waits for any.
fn fetch_min_bytes_default() -> u32 {
    crate::limits::FETCH_MIN_BYTES_DEFAULT
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::PartitionMetadata;

    /// `TopicMetadata` as written before topics had a config.
    #[derive(Serialize)]
    struct TopicMetadataV1 {
        name: String,
        topic_id: u64,
        partitions: Vec<PartitionMetadata>,
    }

    #[test]
    fn given_topic_without_config_when_decoding_should_take_defaults() {
        let old = TopicMetadataV1 {
            name: "t".into(),
            topic_id: 3,
            partitions: Vec::new(),
        };
        let bytes = rmp_serde::to_vec_named(&old).expect("encode");
        let t: TopicMetadata = rmp_serde::from_slice(&bytes).expect("decode");
        assert_eq!(
            (t.name.as_str(), t.topic_id, t.config),
            ("t", 3, TopicConfig::default())
        );
        let new = TopicMetadata {
            config: TopicConfig {
                retention_bytes: Some(1),
                retention_ms: Some(2),
                ..TopicConfig::default()
            },
            ..t
        };
        let round: TopicMetadata =
            rmp_serde::from_slice(&rmp_serde::to_vec_named(&new).expect("encode")).expect("decode");
        assert_eq!(round, new);
    }
}
