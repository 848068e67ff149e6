//! Kafka's error codes (the ones this front door answers with) and YaK's
//! error codes translated to them. Never decides when an error happens.

use crate::protocol::{ErrorBody, ErrorCode};

pub const NONE: i16 = 0;
pub const UNKNOWN_SERVER_ERROR: i16 = -1;
pub const OFFSET_OUT_OF_RANGE: i16 = 1;
pub const CORRUPT_MESSAGE: i16 = 2;
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub const LEADER_NOT_AVAILABLE: i16 = 5;
pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
pub const REQUEST_TIMED_OUT: i16 = 7;
pub const BROKER_NOT_AVAILABLE: i16 = 8;
pub const MESSAGE_TOO_LARGE: i16 = 10;
pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
pub const NOT_ENOUGH_REPLICAS: i16 = 19;
pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: i16 = 20;
pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;
pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
pub const ILLEGAL_GENERATION: i16 = 22;
pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
pub const UNKNOWN_MEMBER_ID: i16 = 25;
pub const INVALID_SESSION_TIMEOUT: i16 = 26;
pub const REBALANCE_IN_PROGRESS: i16 = 27;
pub const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
pub const INVALID_TIMESTAMP: i16 = 32;
pub const UNSUPPORTED_VERSION: i16 = 35;
pub const TOPIC_ALREADY_EXISTS: i16 = 36;
pub const INVALID_PARTITIONS: i16 = 37;
pub const INVALID_REQUEST: i16 = 42;
pub const INVALID_COMMIT_OFFSET_SIZE: i16 = 28;
pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
pub const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;
pub const INVALID_PRODUCER_EPOCH: i16 = 47;
pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
pub const INVALID_CONFIG: i16 = 40;
pub const KAFKA_STORAGE_ERROR: i16 = 56;
pub const REASSIGNMENT_IN_PROGRESS: i16 = 60;
pub const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;
pub const GROUP_NOT_EMPTY: i16 = 68;
pub const GROUP_ID_NOT_FOUND: i16 = 69;
pub const FENCED_LEADER_EPOCH: i16 = 74;
pub const UNKNOWN_LEADER_EPOCH: i16 = 76;
pub const MEMBER_ID_REQUIRED: i16 = 79;
pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
pub const FENCED_INSTANCE_ID: i16 = 82;
pub const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;
pub const UNKNOWN_TOPIC_ID: i16 = 100;
pub const FENCED_MEMBER_EPOCH: i16 = 110;
pub const STALE_MEMBER_EPOCH: i16 = 113;
pub const INVALID_REGULAR_EXPRESSION: i16 = 128;

/// The Kafka error code a client acts on for a YaK error.
pub fn code(e: &ErrorCode) -> i16 {
    match e {
        ErrorCode::UnknownTopic | ErrorCode::UnknownPartition => UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode::NotLeader { .. } => NOT_LEADER_OR_FOLLOWER,
        ErrorCode::NotEnoughReplicas => NOT_ENOUGH_REPLICAS,
        ErrorCode::NotEnoughReplicasAfterAppend => NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        ErrorCode::MessageTooLarge => MESSAGE_TOO_LARGE,
        ErrorCode::InvalidTopicName => INVALID_TOPIC_EXCEPTION,
        ErrorCode::InvalidPartitions => INVALID_PARTITIONS,
        ErrorCode::TopicAlreadyExists => TOPIC_ALREADY_EXISTS,
        ErrorCode::OutOfOrderSequence => OUT_OF_ORDER_SEQUENCE_NUMBER,
        ErrorCode::DuplicateSequence => DUPLICATE_SEQUENCE_NUMBER,
        ErrorCode::FencedLeaderEpoch => FENCED_LEADER_EPOCH,
        ErrorCode::CorruptBatch => CORRUPT_MESSAGE,
        ErrorCode::OffsetOutOfRange { .. } => OFFSET_OUT_OF_RANGE,
        ErrorCode::Timeout => REQUEST_TIMED_OUT,
        ErrorCode::NoBrokersAvailable => BROKER_NOT_AVAILABLE,
        ErrorCode::InvalidRequest => INVALID_REQUEST,
        ErrorCode::StorageError => KAFKA_STORAGE_ERROR,
        ErrorCode::UnknownGroup => GROUP_ID_NOT_FOUND,
        ErrorCode::UnknownMember => UNKNOWN_MEMBER_ID,
        ErrorCode::IllegalGeneration => ILLEGAL_GENERATION,
        ErrorCode::GroupNotEmpty => GROUP_NOT_EMPTY,
        ErrorCode::InconsistentGroupProtocol => INCONSISTENT_GROUP_PROTOCOL,
        ErrorCode::InvalidSessionTimeout => INVALID_SESSION_TIMEOUT,
        ErrorCode::InvalidUpdateVersion => UNKNOWN_SERVER_ERROR,
        ErrorCode::InvalidTimestamp => INVALID_TIMESTAMP,
        ErrorCode::NotAuthorized => CLUSTER_AUTHORIZATION_FAILED,
        ErrorCode::InvalidReplicaAssignment => INVALID_REPLICA_ASSIGNMENT,
        ErrorCode::ReassignmentInProgress => REASSIGNMENT_IN_PROGRESS,
        ErrorCode::NoReassignmentInProgress => NO_REASSIGNMENT_IN_PROGRESS,
        ErrorCode::InvalidConfig => INVALID_CONFIG,
        ErrorCode::InvalidProducerEpoch => INVALID_PRODUCER_EPOCH,
        ErrorCode::UnknownLeaderEpoch => UNKNOWN_LEADER_EPOCH,
        ErrorCode::RebalanceInProgress => REBALANCE_IN_PROGRESS,
        ErrorCode::GroupMaxSizeReached => GROUP_MAX_SIZE_REACHED,
        ErrorCode::OffsetMetadataTooLarge => OFFSET_METADATA_TOO_LARGE,
        ErrorCode::FencedInstanceId => FENCED_INSTANCE_ID,
    }
}

/// [`code`] of an error body.
pub fn of(e: &ErrorBody) -> i16 {
    code(&e.code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_errors_clients_act_on_when_translating_should_give_kafkas_codes() {
        let cases = [
            (
                ErrorCode::NotLeader {
                    leader: Some(2),
                    epoch: 3,
                },
                6,
            ),
            (ErrorCode::FencedLeaderEpoch, 74),
            (
                ErrorCode::OffsetOutOfRange {
                    log_start_offset: 0,
                    log_end_offset: 1,
                },
                1,
            ),
            (ErrorCode::UnknownTopic, 3),
            (ErrorCode::OutOfOrderSequence, 45),
            (ErrorCode::NotEnoughReplicas, 19),
            (ErrorCode::InvalidProducerEpoch, 47),
            (ErrorCode::UnknownLeaderEpoch, 76),
        ];
        for (yak, kafka) in cases {
            assert_eq!(code(&yak), kafka, "{yak:?}");
        }
    }
}
