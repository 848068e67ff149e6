//! Typed error codes that cross the wire. A client acts on the code; the
//! message is for people.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What went wrong, as a client can act on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// No such topic.
    UnknownTopic,
    /// No such partition in the topic.
    UnknownPartition,
    /// This broker does not lead the partition; ask `leader`.
    NotLeader {
        /// Current leader if known.
        leader: Option<u32>,
        /// Its epoch.
        epoch: u32,
    },
    /// Fewer in-sync replicas than `min.insync.replicas`.
    NotEnoughReplicas,
    /// The batch is in the leader's log, but the ISR shrank below
    /// `min.insync.replicas` before it was replicated: not acknowledged.
    /// Retrying is safe (an idempotent retry is recognised as a duplicate).
    NotEnoughReplicasAfterAppend,
    /// A message or batch over the size limit.
    MessageTooLarge,
    /// Topic name breaks the naming rules.
    InvalidTopicName,
    /// Partition count or replication factor out of range.
    InvalidPartitions,
    /// Create of a topic that exists.
    TopicAlreadyExists,
    /// Sequence gap from an idempotent producer.
    OutOfOrderSequence,
    /// A resent batch that was already written.
    DuplicateSequence,
    /// A request from an older leader epoch.
    FencedLeaderEpoch,
    /// Batch failed its CRC or does not parse.
    CorruptBatch,
    /// Offset outside the log.
    OffsetOutOfRange {
        /// First offset in the log.
        log_start_offset: u64,
        /// Offset after the last record.
        log_end_offset: u64,
    },
    /// Did not complete in time.
    Timeout,
    /// No broker is alive to place a partition on.
    NoBrokersAvailable,
    /// The request is not valid for this server.
    InvalidRequest,
    /// The broker could not read or write its disk.
    StorageError,
    /// No such consumer group.
    UnknownGroup,
    /// The group does not know this member (expired or never joined): rejoin.
    UnknownMember,
    /// A commit or heartbeat from a generation that is not the group's current one.
    IllegalGeneration,
    /// The operation needs a group without members.
    GroupNotEmpty,
    /// A member asked for another assignor than the group's.
    InconsistentGroupProtocol,
    /// A group member's session timeout outside the cluster's allowed
    /// range (ZooKeeper's `--group-min-session-timeout-ms` and
    /// `--group-max-session-timeout-ms`, Kafka's `group.min/max.session.timeout.ms`).
    InvalidSessionTimeout,
    /// An ISR change based on a partition state that has changed since
    /// (its partition epoch is stale): reload metadata and decide again.
    InvalidUpdateVersion,
    /// A batch whose max timestamp is too far ahead of the broker's clock
    /// (more than `TIMESTAMP_AHEAD_MS_MAX`): fix the producer's clock.
    InvalidTimestamp,
    /// A call only a cluster process may make (a replica fetch, a broker's
    /// registration or ISR change, the supervisor's reports), from a process
    /// that is not the one registered for that role (checked with
    /// `SO_PEERCRED` on the Unix socket).
    NotAuthorized,
    /// A replica list that cannot be placed: empty, a duplicate id, or a
    /// broker that is not registered and alive.
    InvalidReplicaAssignment,
    /// The partition is being reassigned already (to another target).
    ReassignmentInProgress,
    /// A reassignment was to be cancelled, and none is in progress.
    NoReassignmentInProgress,
    /// A topic setting out of range, or an unknown setting name.
    InvalidConfig,
    /// A batch from an older epoch of a producer id than the partition has
    /// seen (the producer was fenced by a newer epoch of itself), or an
    /// epoch bump naming an epoch older than the id's current one.
    /// Not retriable: the producer needs a new id or epoch.
    InvalidProducerEpoch,
    /// A request naming a leader epoch newer than the one this broker
    /// knows (its metadata is behind the asker's): retry shortly.
    UnknownLeaderEpoch,
    /// The group is rebalancing: rejoin (Kafka classic groups).
    RebalanceInProgress,
    /// The group has the most members allowed.
    GroupMaxSizeReached,
    /// An offset commit's metadata string is too long.
    OffsetMetadataTooLarge,
    /// A static member (`group.instance.id`) replaced by a newer one with the same id.
    FencedInstanceId,
}

impl ErrorCode {
    /// Worth retrying after a metadata refresh.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            ErrorCode::NotLeader { .. }
                | ErrorCode::FencedLeaderEpoch
                | ErrorCode::UnknownLeaderEpoch
                | ErrorCode::OutOfOrderSequence
                | ErrorCode::NotEnoughReplicas
                | ErrorCode::NotEnoughReplicasAfterAppend
                | ErrorCode::Timeout
                | ErrorCode::UnknownPartition
                | ErrorCode::NoBrokersAvailable
        )
    }
}

/// An error on the wire: a code and a human sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// What happened, for people.
    pub message: String,
}

impl ErrorBody {
    /// An error with a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ErrorBody {}
