//! OffsetCommit and OffsetFetch: a group's committed offsets, the same
//! ones YaK's own group consumers commit, kept durable by ZooKeeper with
//! the commit metadata string. Commits are fenced by member id and
//! generation there (generation -1: a consumer assigning partitions by
//! hand, accepted while the group has no members). A commit from a member
//! the classic coordinator does not know goes to the native coordinator,
//! which knows KIP-848 members and fences them by member epoch (v9's
//! `generation_id_or_member_epoch`). Never decides anything.

use super::errors;
use super::frame::{self, KafkaFrameError};
use super::groups::call;
use super::request::{topic_name, Outcome, Shared};
use crate::protocol::classic::{
    ClassicCall, ClassicReply, CommitPartition, CommitTopic, FetchedOffset, FetchedTopic,
};
use crate::protocol::{Call, ClientError, ErrorCode, PartitionOffset, Reply};
use bytes::Bytes;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
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
        topics: topics.clone(),
    };
    let kip848_epoch = u32::try_from(req.generation_id_or_member_epoch)
        .ok()
        .filter(|_| !req.member_id.is_empty());
    let (mut per_partition, all) = match call(shared, c) {
        // Not a classic member: perhaps a KIP-848 one, which the native
        // coordinator knows (it fences by member epoch).
        Err(errors::UNKNOWN_MEMBER_ID) if kip848_epoch.is_some() => (
            native_commit(shared, &req, kip848_epoch.unwrap_or(0), &topics, version),
            errors::NONE,
        ),
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

/// Commits a KIP-848 member's offsets through the native coordinator, one
/// call per topic. A stale epoch is `STALE_MEMBER_EPOCH` from v9 (where the
/// field is a member epoch), `ILLEGAL_GENERATION` before.
fn native_commit(
    shared: &Shared,
    req: &OffsetCommitRequest,
    epoch: u32,
    topics: &[CommitTopic],
    version: i16,
) -> HashMap<(String, i32), i16> {
    let mut results = HashMap::new();
    for t in topics {
        let call = Call::CommitOffsets {
            group: req.group_id.0.to_string(),
            member_id: req.member_id.to_string(),
            generation: epoch,
            topic: t.topic.clone(),
            offsets: t
                .partitions
                .iter()
                .map(|p| PartitionOffset {
                    partition: p.partition,
                    offset: p.offset,
                })
                .collect(),
            metadata: t
                .partitions
                .iter()
                .filter_map(|p| Some((p.partition, p.metadata.clone().filter(|m| !m.is_empty())?)))
                .collect(),
        };
        let code = match shared.zk.call(&call) {
            Ok(Reply::GroupOk) => errors::NONE,
            Ok(Reply::Error(e)) | Err(ClientError::Server(e)) => match e.code {
                ErrorCode::IllegalGeneration if version >= 9 => errors::STALE_MEMBER_EPOCH,
                _ => errors::of(&e),
            },
            Ok(_) => errors::UNKNOWN_SERVER_ERROR,
            Err(_) => errors::COORDINATOR_NOT_AVAILABLE,
        };
        results.extend(
            t.partitions
                .iter()
                .map(|p| ((t.topic.clone(), p.partition as i32), code)),
        );
    }
    results
}

/// Answers OffsetFetch (v8+: several groups; v9 names the KIP-848 member,
/// whose epoch is not checked: reading offsets changes nothing). A null
/// topic list means every topic the group has offsets for; a partition
/// without a committed offset gets offset -1.
pub fn fetch(
    shared: &Shared,
    correlation_id: i32,
    version: i16,
    body: Bytes,
) -> Result<Outcome, KafkaFrameError> {
    let req: OffsetFetchRequest = frame::decode(body, version, "OffsetFetch")?;
    let wanted = |names: &mut dyn Iterator<Item = (String, &Vec<i32>)>| -> Vec<(String, Vec<u32>)> {
        names
            .map(|(name, ps)| {
                let ps = ps.iter().filter_map(|p| u32::try_from(*p).ok()).collect();
                (name, ps)
            })
            .collect()
    };
    let mut r = OffsetFetchResponse::default();
    if version >= 8 {
        r.groups = req
            .groups
            .iter()
            .map(|g| {
                let topics = g.topics.as_ref().map(|ts| {
                    wanted(
                        &mut ts
                            .iter()
                            .map(|t| (t.name.0.to_string(), &t.partition_indexes)),
                    )
                });
                let group = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
                match fetch_group(shared, &g.group_id.0, topics) {
                    Ok(fetched) => group.with_topics(
                        fetched
                            .into_iter()
                            .map(|t| {
                                OffsetFetchResponseTopics::default()
                                    .with_name(topic_name(&t.topic))
                                    .with_partitions(
                                        t.partitions
                                            .into_iter()
                                            .map(|p| {
                                                let index = p.partition as i32;
                                                let (offset, metadata) = committed(p);
                                                OffsetFetchResponsePartitions::default()
                                                    .with_partition_index(index)
                                                    .with_committed_offset(offset)
                                                    .with_committed_leader_epoch(-1)
                                                    .with_metadata(Some(metadata))
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    ),
                    Err(code) => group.with_error_code(code),
                }
            })
            .collect();
    } else {
        let topics = req.topics.as_ref().map(|ts| {
            wanted(
                &mut ts
                    .iter()
                    .map(|t| (t.name.0.to_string(), &t.partition_indexes)),
            )
        });
        match fetch_group(shared, &req.group_id.0, topics) {
            Ok(fetched) => {
                r.topics = fetched
                    .into_iter()
                    .map(|t| {
                        OffsetFetchResponseTopic::default()
                            .with_name(topic_name(&t.topic))
                            .with_partitions(
                                t.partitions
                                    .into_iter()
                                    .map(|p| {
                                        let index = p.partition as i32;
                                        let (offset, metadata) = committed(p);
                                        OffsetFetchResponsePartition::default()
                                            .with_partition_index(index)
                                            .with_committed_offset(offset)
                                            .with_committed_leader_epoch(-1)
                                            .with_metadata(Some(metadata))
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
            }
            Err(code) => r.error_code = code,
        }
    }
    Ok(Outcome::Ready(frame::response(
        correlation_id,
        version,
        &r,
        "OffsetFetch",
    )?))
}

/// One group's committed offsets of `topics` (`None`: every topic it has).
fn fetch_group(
    shared: &Shared,
    group: &str,
    topics: Option<Vec<(String, Vec<u32>)>>,
) -> Result<Vec<FetchedTopic>, i16> {
    let c = ClassicCall::FetchOffsets {
        group: group.to_string(),
        topics,
    };
    match call(shared, c)? {
        ClassicReply::Offsets(fetched) => Ok(fetched),
        _ => Err(errors::UNKNOWN_SERVER_ERROR),
    }
}

/// A partition's committed offset (-1: none) and metadata string.
fn committed(p: FetchedOffset) -> (i64, StrBytes) {
    (
        p.offset.and_then(|o| i64::try_from(o).ok()).unwrap_or(-1),
        StrBytes::from_string(p.metadata.unwrap_or_default()),
    )
}
