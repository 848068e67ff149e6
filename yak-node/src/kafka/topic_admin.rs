//! CreatePartitions, AlterPartitionReassignments and
//! ListPartitionReassignments: Kafka's admin clients growing a topic and
//! moving its replicas. Each is forwarded to the very ZooKeeper call the
//! CLI makes (`CreatePartitions`, `ReassignPartitions`,
//! `CancelReassignments`, `Metadata`), one partition per call so each gets
//! its own error code, as Kafka answers. Never plans or applies a change
//! itself (ZooKeeper does) and never touches partition data.

use super::errors;
use super::frame::{self, KafkaFrameError};
use super::request::{topic_name, Outcome, Shared};
use crate::protocol::{Call, ClientError, PartitionMove, PartitionRef, Reply};
use bytes::Bytes;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    CreatePartitionsRequest, CreatePartitionsResponse, ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse,
};
use kafka_protocol::protocol::StrBytes;

/// An error code and message.
pub(super) type Failure = (i16, String);

/// ZooKeeper's answer, its error as Kafka's code.
pub(super) fn zk_call(shared: &Shared, call: &Call) -> Result<Reply, Failure> {
    match shared.zk.call(call) {
        Ok(Reply::Error(e)) => Err((errors::of(&e), e.message.clone())),
        Ok(reply) => Ok(reply),
        Err(e) => Err(zk_unreachable(&e)),
    }
}

/// ZooKeeper refused (its error as Kafka's code) or did not answer.
pub(super) fn zk_unreachable(e: &ClientError) -> Failure {
    match e {
        ClientError::Server(body) => (errors::of(body), body.message.clone()),
        other => (errors::REQUEST_TIMED_OUT, format!("zookeeper: {other}")),
    }
}

fn message(m: String) -> Option<StrBytes> {
    Some(StrBytes::from_string(m))
}

/// Answers CreatePartitions: grow only (INVALID_PARTITIONS otherwise);
/// YaK places the new replicas, so manual assignments are refused.
pub fn create_partitions(
    shared: &Shared,
    correlation_id: i32,
    version: i16,
    body: Bytes,
) -> Result<Outcome, KafkaFrameError> {
    let req: CreatePartitionsRequest = frame::decode(body, version, "CreatePartitions")?;
    let results = req
        .topics
        .iter()
        .map(|t| {
            let mut r = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            if let Err((code, m)) = grow(shared, t, req.validate_only) {
                r.error_code = code;
                r.error_message = message(m);
            }
            r
        })
        .collect();
    let response = CreatePartitionsResponse::default().with_results(results);
    Ok(Outcome::Ready(frame::response(
        correlation_id,
        version,
        &response,
        "CreatePartitions",
    )?))
}

fn grow(shared: &Shared, t: &CreatePartitionsTopic, validate_only: bool) -> Result<(), Failure> {
    let name = t.name.0.as_str();
    if t.assignments.is_some() {
        return Err((
            errors::INVALID_REPLICA_ASSIGNMENT,
            "manual replica assignments are not supported; YaK places the new replicas".into(),
        ));
    }
    let count = u32::try_from(t.count).map_err(|_| {
        (
            errors::INVALID_PARTITIONS,
            format!("partition count {}", t.count),
        )
    })?;
    if validate_only {
        let m = shared
            .zk
            .metadata(Some(vec![name.to_string()]))
            .map_err(|e| zk_unreachable(&e))?;
        let current = m
            .topics
            .iter()
            .find(|x| x.name == name)
            .map(|x| x.partitions.len() as u32)
            .ok_or_else(|| {
                (
                    errors::UNKNOWN_TOPIC_OR_PARTITION,
                    format!("topic '{name}' does not exist"),
                )
            })?;
        if count <= current {
            return Err((
                errors::INVALID_PARTITIONS,
                format!("topic '{name}' has {current} partitions; a topic can only grow"),
            ));
        }
        return Ok(());
    }
    let call = Call::CreatePartitions {
        topic: name.to_string(),
        count,
    };
    zk_call(shared, &call).map(drop)
}

/// Answers AlterPartitionReassignments: a replica list starts (or keeps)
/// a move, a null one cancels the move in progress.
pub fn alter_reassignments(
    shared: &Shared,
    correlation_id: i32,
    version: i16,
    body: Bytes,
) -> Result<Outcome, KafkaFrameError> {
    let req: AlterPartitionReassignmentsRequest =
        frame::decode(body, version, "AlterPartitionReassignments")?;
    let responses = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut r = ReassignablePartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    let ids = p
                        .replicas
                        .as_ref()
                        .map(|ids| ids.iter().map(|b| b.0).collect::<Vec<i32>>());
                    if let Err((code, m)) = alter_one(shared, &t.name.0, p.partition_index, ids) {
                        r.error_code = code;
                        r.error_message = message(m);
                    }
                    r
                })
                .collect();
            ReassignableTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    let response = AlterPartitionReassignmentsResponse::default().with_responses(responses);
    Ok(Outcome::Ready(frame::response(
        correlation_id,
        version,
        &response,
        "AlterPartitionReassignments",
    )?))
}

fn alter_one(
    shared: &Shared,
    topic: &str,
    partition: i32,
    replicas: Option<Vec<i32>>,
) -> Result<(), Failure> {
    let partition = u32::try_from(partition).map_err(|_| {
        (
            errors::UNKNOWN_TOPIC_OR_PARTITION,
            format!("no partition {partition}"),
        )
    })?;
    let call = match replicas {
        None => Call::CancelReassignments {
            partitions: vec![PartitionRef {
                topic: topic.to_string(),
                partition,
            }],
        },
        Some(ids) => {
            let replicas = ids
                .iter()
                .map(|b| u32::try_from(*b))
                .collect::<Result<Vec<u32>, _>>()
                .map_err(|_| {
                    (
                        errors::INVALID_REPLICA_ASSIGNMENT,
                        format!("broker ids must be positive, got {ids:?}"),
                    )
                })?;
            Call::ReassignPartitions {
                moves: vec![PartitionMove {
                    topic: topic.to_string(),
                    partition,
                    replicas,
                }],
                throttle_bytes_per_sec: None,
            }
        }
    };
    zk_call(shared, &call).map(drop)
}

/// Answers ListPartitionReassignments from ZooKeeper's metadata: every
/// partition moving (of the topics and partitions named, if any), with
/// its replicas now and the ones being added and removed.
pub fn list_reassignments(
    shared: &Shared,
    correlation_id: i32,
    version: i16,
    body: Bytes,
) -> Result<Outcome, KafkaFrameError> {
    let req: ListPartitionReassignmentsRequest =
        frame::decode(body, version, "ListPartitionReassignments")?;
    let wanted: Option<Vec<(String, Vec<i32>)>> = req.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    let names = wanted
        .as_ref()
        .map(|w| w.iter().map(|(n, _)| n.clone()).collect());
    let mut response = ListPartitionReassignmentsResponse::default();
    match shared.zk.metadata(names) {
        Err(e) => {
            let (code, m) = zk_unreachable(&e);
            response.error_code = code;
            response.error_message = message(m);
        }
        Ok(m) => {
            for t in &m.topics {
                let named = |p: u32| match &wanted {
                    None => true,
                    Some(w) => w
                        .iter()
                        .any(|(n, ps)| *n == t.name && ps.contains(&(p as i32))),
                };
                let ids = |v: &[u32]| v.iter().map(|b| BrokerId(*b as i32)).collect();
                let partitions: Vec<OngoingPartitionReassignment> = t
                    .partitions
                    .iter()
                    .filter(|p| named(p.partition))
                    .filter_map(|p| {
                        p.reassignment.as_ref().map(|r| {
                            OngoingPartitionReassignment::default()
                                .with_partition_index(p.partition as i32)
                                .with_replicas(ids(&p.replicas))
                                .with_adding_replicas(ids(&r.adding))
                                .with_removing_replicas(ids(&r.removing))
                        })
                    })
                    .collect();
                if !partitions.is_empty() {
                    response.topics.push(
                        OngoingTopicReassignment::default()
                            .with_name(topic_name(&t.name))
                            .with_partitions(partitions),
                    );
                }
            }
        }
    }
    Ok(Outcome::Ready(frame::response(
        correlation_id,
        version,
        &response,
        "ListPartitionReassignments",
    )?))
}
