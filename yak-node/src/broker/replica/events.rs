//! What goes into the replica core and what comes out: leadership as
//! ZooKeeper states it, ISR proposals, events, actions, outcomes. Plain
//! data; the decisions are in `machine.rs`.

use std::time::{Duration, Instant};

/// A produce request's id, given by the shell; the core answers it once.
pub type RequestId = u64;

/// Who leads a partition, as this broker knows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Leadership {
    /// The leader's id.
    pub leader: Option<u32>,
    /// The leader epoch.
    pub epoch: u32,
    /// Every replica.
    pub replicas: Vec<u32>,
    /// In-sync replicas.
    pub isr: Vec<u32>,
    /// ZooKeeper's version of this leader and ISR; ISR changes name it.
    pub partition_epoch: u64,
}

/// An ISR change for the leader to ask ZooKeeper for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrProposal {
    /// The leader epoch it is made in.
    pub leader_epoch: u32,
    /// The partition epoch it is based on (compare-and-set).
    pub partition_epoch: u64,
    /// The ISR asked for.
    pub isr: Vec<u32>,
}

/// Where a follower fetches from, as of the moment the fetch was sent. An
/// answer is applied only if all of it still holds when it comes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPosition {
    /// The leader fetched from.
    pub leader: Option<u32>,
    /// Its leader epoch.
    pub leader_epoch: u32,
    /// The offset fetched from: this log's end.
    pub offset: u64,
    /// The epoch of the last batch in this log.
    pub last_fetched_epoch: Option<u32>,
}

/// Something that happened to the replica; the shell reports it after
/// doing any I/O it implies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// ZooKeeper's leadership (metadata, or a reconcile).
    Leadership {
        /// The new leadership.
        leadership: Leadership,
        /// When it is applied.
        now: Instant,
    },
    /// Leader: a batch was appended; the log now ends at `log_end_offset`.
    Appended {
        /// The log end offset after the append.
        log_end_offset: u64,
    },
    /// Leader: produce request `request` has its batch in the log (appended
    /// or found a duplicate) ending at `last_offset`.
    Produced {
        /// The shell's id for the request.
        request: RequestId,
        /// Its batch's last offset.
        last_offset: u64,
        /// acks=all (wait for the ISR) rather than acks=1.
        acks_all: bool,
        /// When an acks=all wait times out.
        deadline: Instant,
    },
    /// Leader: follower `follower` fetched from `offset`, the epoch of its
    /// last batch being `last_fetched_epoch`; `leader_end_for_epoch` is this
    /// log's answer for that epoch (largest epoch at or below it, and where
    /// it ends).
    FollowerFetched {
        /// The follower's broker id.
        follower: u32,
        /// Its fetch offset (its log end).
        offset: u64,
        /// The epoch of its last batch.
        last_fetched_epoch: Option<u32>,
        /// This log's end for that epoch.
        leader_end_for_epoch: Option<(u32, u64)>,
        /// When.
        now: Instant,
    },
    /// The log is fsynced below `end`; `truncations` is what
    /// [`super::ReplicaCore::truncations`] said when the fsync began.
    Synced {
        /// Everything below is on disk.
        end: u64,
        /// The truncation count as the fsync began.
        truncations: u64,
    },
    /// Time passed: expire waiting requests, propose shrinking the ISR.
    Tick {
        /// The time now.
        now: Instant,
        /// A follower not caught up for this long leaves the ISR.
        lag_max: Duration,
    },
    /// ZooKeeper answered `proposal`: the partition is at `isr`, `partition_epoch`.
    IsrAccepted {
        /// The proposal answered.
        proposal: IsrProposal,
        /// The partition epoch ZooKeeper holds now.
        partition_epoch: u64,
        /// The ISR ZooKeeper holds now.
        isr: Vec<u32>,
    },
    /// ZooKeeper definitely refused `proposal`.
    IsrRefused {
        /// The proposal refused.
        proposal: IsrProposal,
    },
    /// Follower: appended the leader's batches; the log ends at
    /// `log_end_offset`, fsynced if `durable`.
    Replicated {
        /// The log end offset after the append.
        log_end_offset: u64,
        /// The append was fsynced.
        durable: bool,
        /// The leader's high watermark in its answer.
        leader_high_watermark: u64,
    },
    /// Follower: the leader says the logs diverged at `(epoch, leader_end)`.
    Diverged {
        /// The diverging epoch the leader sent.
        epoch: u32,
        /// Where that epoch ends in the leader's log.
        leader_end: u64,
        /// This log's end for the largest epoch at or below `epoch`.
        own_end_for_epoch: Option<u64>,
        /// This log's start offset.
        log_start_offset: u64,
    },
    /// Follower: the leader's log starts at `offset`, past this log's end
    /// (retention deleted what this replica would fetch).
    LeaderLogStart {
        /// The leader's log start offset.
        offset: u64,
    },
    /// The log was cut back to end at `log_end_offset`.
    Truncated {
        /// The log end offset after the cut.
        log_end_offset: u64,
    },
    /// The log was emptied and restarts at `offset` (the leader's log start).
    Restarted {
        /// The new log start (and end) offset.
        offset: u64,
    },
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Answer produce request `request`.
    Reply {
        /// The request.
        request: RequestId,
        /// Its batch's last offset.
        last_offset: u64,
        /// What to answer.
        outcome: Outcome,
    },
    /// Ask ZooKeeper for this ISR change.
    ProposeIsr(IsrProposal),
    /// The high watermark rose to this: consumers may have new data.
    HighWatermarkAdvanced(u64),
    /// Answer the follower's fetch: its log diverged at `(epoch, end)`.
    Diverging {
        /// The epoch to send.
        epoch: u32,
        /// Where it ends in this log.
        end: u64,
    },
    /// Follower: cut the log back to end at `to`, then report `Truncated`.
    Truncate {
        /// The new log end offset.
        to: u64,
    },
    /// Follower: empty the log and restart it at `offset`, then report
    /// `Truncated` (below the log start) or `Restarted` (the leader's start).
    Restart {
        /// The new log start offset.
        offset: u64,
    },
}

/// How a produce request ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledged.
    Acknowledged,
    /// This broker no longer leads.
    NotLeader {
        /// The leader, as known.
        leader: Option<u32>,
        /// Its epoch.
        epoch: u32,
    },
    /// The ISR shrank below `min_insync` before the batch was replicated.
    NotEnoughReplicasAfterAppend {
        /// The ISR now.
        isr: Vec<u32>,
        /// `min.insync.replicas`.
        min_insync: usize,
    },
    /// The ISR did not confirm before the deadline.
    Timeout,
}

/// Why the core turns a request away before it touches the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// This broker does not lead.
    NotLeader {
        /// The leader, as known.
        leader: Option<u32>,
        /// Its epoch.
        epoch: u32,
    },
    /// acks=all with too few in-sync replicas.
    NotEnoughReplicas {
        /// ISR size now.
        isr: usize,
        /// `min.insync.replicas`.
        min_insync: usize,
    },
    /// The request names an older leader epoch.
    FencedLeaderEpoch {
        /// The epoch asked for.
        asked: u32,
        /// This leader's epoch.
        current: u32,
    },
}
