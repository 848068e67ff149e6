//! OffsetCommit and OffsetFetch: a group's committed offsets, the same
//! ones YaK's own group consumers commit, kept durable by ZooKeeper with
//! the commit metadata string. Commits are fenced by member id and
//! generation there (generation -1: a consumer assigning partitions by
//! hand, accepted while the group has no members). Never decides anything.

use super::errors;
use super::frame::{self, KafkaFrameError};
use super::groups::call;
use super::request::{topic_name, Outcome, Shared};
use crate::protocol::classic::{ClassicCall, ClassicReply, CommitPartition, CommitTopic};
use bytes::Bytes;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
};
use kafka_protocol::protocol::StrBytes;
use std::collections::HashMap;

/// Answers OffsetCommit.
pub fn commit(
    shared: &Shared,
    correlation_id: i32,
    version: i16,
    body: Bytes,
) -> Result<Outcome, KafkaFrameError> {
    let req: OffsetCommitRequest = frame::decode(body, version, "OffsetCommit")?;
    // Partitions no YaK partition can be (negative index or offset) are
    // refused here; the rest go to ZooKeeper.
    let mut refused: HashMap<(String, i32), i16> = HashMap::new();
    let topics: Vec<CommitTopic> = req
        .topics
        .iter()
        .map(|t| CommitTopic {
            topic: t.name.0.to_string(),
            partitions: t
                .partitions
                .iter()
                .filter_map(|p| {
                    match (
                        u32::try_from(p.partition_index),
                        u64::try_from(p.committed_offset),
                    ) {
                        (Ok(partition), Ok(offset)) => Some(CommitPartition {
                            partition,
                            offset,
                            metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                        }),
                        (Err(_), _) => {
                            refused.insert(
                                (t.name.0.to_string(), p.partition_index),
                                errors::UNKNOWN_TOPIC_OR_PARTITION,
                            );
                            None
                        }
                        (_, Err(_)) => {
                            refused.insert(
                                (t.name.0.to_string(), p.partition_index),
                                errors::INVALID_COMMIT_OFFSET_SIZE,
                            );
                            None
                        }
                    }
                })
                .collect(),
        })
        .collect();
    let c = ClassicCall::Commit {
        group: req.group_id.0.to_string(),
        member_id: req.member_id.to_string(),
        generation: req.generation_id_or_member_epoch,
        topics,
    };
    let (mut per_partition, all) = match call(shared, c) {
        Ok(ClassicReply::Results(results)) => (
            results
                .into_iter()
                .map(|r| {
                    let code = r.error.as_ref().map_or(errors::NONE, errors::code);
                    ((r.name, r.partition as i32), code)
                })
                .collect::<HashMap<_, _>>(),
            errors::NONE,
        ),
        Ok(_) => (HashMap::new(), errors::UNKNOWN_SERVER_ERROR),
        Err(code) => (HashMap::new(), code),
    };
    per_partition.extend(refused);
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let name = t.name.0.to_string();
            OffsetCommitResponseTopic::default()
                .with_name(topic_name(&name))
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            let code = per_partition
                                .get(&(name.clone(), p.partition_index))
                                .copied()
                                .unwrap_or(all);
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    Ok(Outcome::Ready(frame::response(
        correlation_id,
        version,
        &OffsetCommitResponse::default().with_topics(topics),
        "OffsetCommit",
    )?))
}

/// Answers OffsetFetch (one group; a null topic list means every topic
/// the group has offsets for). A partition without a committed offset
/// gets offset -1.
pub fn fetch(
    shared: &Shared,
    correlation_id: i32,
    version: i16,
    body: Bytes,
) -> Result<Outcome, KafkaFrameError> {
    let req: OffsetFetchRequest = frame::decode(body, version, "OffsetFetch")?;
    let topics = req.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| {
                (
                    t.name.0.to_string(),
                    t.partition_indexes
                        .iter()
                        .filter_map(|p| u32::try_from(*p).ok())
                        .collect(),
                )
            })
            .collect()
    });
    let c = ClassicCall::FetchOffsets {
        group: req.group_id.0.to_string(),
        topics,
    };
    let mut r = OffsetFetchResponse::default();
    match call(shared, c) {
        Ok(ClassicReply::Offsets(fetched)) => {
            r.topics = fetched
                .into_iter()
                .map(|t| {
                    OffsetFetchResponseTopic::default()
                        .with_name(topic_name(&t.topic))
                        .with_partitions(
                            t.partitions
                                .into_iter()
                                .map(|p| {
                                    OffsetFetchResponsePartition::default()
                                        .with_partition_index(p.partition as i32)
                                        .with_committed_offset(
                                            p.offset
                                                .and_then(|o| i64::try_from(o).ok())
                                                .unwrap_or(-1),
                                        )
                                        .with_committed_leader_epoch(-1)
                                        .with_metadata(Some(StrBytes::from_string(
                                            p.metadata.unwrap_or_default(),
                                        )))
                                })
                                .collect(),
                        )
                })
                .collect();
        }
        Ok(_) => r.error_code = errors::UNKNOWN_SERVER_ERROR,
        Err(code) => r.error_code = code,
    }
    Ok(Outcome::Ready(frame::response(
        correlation_id,
        version,
        &r,
        "OffsetFetch",
    )?))
}
