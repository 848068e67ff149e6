//! What the replica core's refusals and outcomes, and storage errors, look
//! like to a client: error codes with a message naming the partition.
//! Formatting only; the decisions are the core's.

use crate::broker::replica::{Outcome, Refusal};
use crate::protocol::{ErrorBody, ErrorCode, Reply};
use crate::storage::StorageError;

/// The answer to a request the core turned away on `name` (`<topic>-<partition>`) of broker `broker`.
pub fn refusal(name: &str, broker: u32, r: Refusal) -> ErrorBody {
    match r {
        Refusal::NotLeader { leader, epoch } => not_leader(name, broker, leader, epoch),
        Refusal::NotEnoughReplicas { isr, min_insync } => ErrorBody::new(
            ErrorCode::NotEnoughReplicas,
            format!("{name}: {isr} in-sync replicas, acks=all needs {min_insync}"),
        ),
        Refusal::FencedLeaderEpoch { asked, current } => ErrorBody::new(
            ErrorCode::FencedLeaderEpoch,
            format!("{name}: epoch {asked} is older than the leader's {current}"),
        ),
    }
}

/// `NotLeader`, naming the leader as this broker knows it.
pub fn not_leader(name: &str, broker: u32, leader: Option<u32>, epoch: u32) -> ErrorBody {
    ErrorBody::new(
        ErrorCode::NotLeader { leader, epoch },
        format!("broker {broker} does not lead {name} (leader {leader:?}, epoch {epoch})"),
    )
}

/// The reply for a produce request whose batch ends at `last_offset`:
/// `acknowledged` if the core says so, else an error.
pub fn outcome(
    name: &str,
    broker: u32,
    last_offset: u64,
    outcome: Outcome,
    acknowledged: Reply,
) -> Reply {
    let err = match outcome {
        Outcome::Acknowledged => return acknowledged,
        Outcome::NotLeader { leader, epoch } => not_leader(name, broker, leader, epoch),
        Outcome::NotEnoughReplicasAfterAppend { isr, min_insync } => ErrorBody::new(
            ErrorCode::NotEnoughReplicasAfterAppend,
            format!(
                "{name}: not enough replicas after append: the batch ending at offset {last_offset} is in the leader's log, but the in-sync replicas shrank to {isr:?} ({}, acks=all needs {min_insync}) before it was replicated; not acknowledged",
                isr.len()
            ),
        ),
        Outcome::Timeout => ErrorBody::new(
            ErrorCode::Timeout,
            format!("{name}: the in-sync replicas did not confirm in time"),
        ),
    };
    Reply::Error(err)
}

/// A storage error as the client sees it. A fatal one (a failed fsync, on
/// any path: leader flush, follower flush, retention, truncation) does not
/// return: the broker fail-stops, since no answer after it can be trusted.
pub fn storage_error(e: StorageError) -> ErrorBody {
    if e.is_fatal() {
        crate::broker::fail_stop(&e);
    }
    match e {
        StorageError::OffsetOutOfRange {
            log_start_offset,
            log_end_offset,
            offset,
        } => {
            let why = if offset < log_start_offset {
                format!("offset {offset} is below the earliest offset {log_start_offset} (older records were deleted by retention)")
            } else {
                format!("offset {offset} is past the log end offset {log_end_offset}")
            };
            ErrorBody::new(
                ErrorCode::OffsetOutOfRange {
                    log_start_offset,
                    log_end_offset,
                },
                why,
            )
        }
        StorageError::StaleEpoch { epoch, latest } => ErrorBody::new(
            ErrorCode::FencedLeaderEpoch,
            format!("epoch {epoch} is older than the log's latest epoch {latest}"),
        ),
        other => {
            tracing::error!(error = %other, "storage failure");
            ErrorBody::new(ErrorCode::StorageError, other.to_string())
        }
    }
}
