//! ConsumerGroupHeartbeat (API 68, KIP-848's next-generation consumer
//! protocol), mapped onto YaK's own group coordinator in ZooKeeper: the
//! coordinator computes the assignment (as it does for native members),
//! the member epoch is the group's generation, and every heartbeat answer
//! carries the member's target assignment.
//!
//! Mapping, per heartbeat:
//! - epoch 0: a native `JoinGroup` with the subscribed topics (the server
//!   assignor `range` is YaK's range, anything else its sticky assignor,
//!   as Kafka's default `uniform` is);
//! - epoch -1 or -2: `LeaveGroup`;
//! - otherwise `GroupHeartbeat`; when that says a rebalance is under way,
//!   the member rejoins in the same request and is answered with what the
//!   rebalance gives it (nothing until it completes, so the client revokes
//!   its partitions first: YaK's rebalances are eager).
//!
//! Topic ids in assignments are YaK's topic ids as Kafka UUIDs
//! ([`topic_uuid`]); a Metadata version with topic ids must use the same.
//! Never keeps state of its own: members live in the coordinator.

use super::errors;
use super::frame::{self, KafkaFrameError};
use super::request::{Outcome, Shared};
use crate::protocol::{Assignor, Call, ClientError, ErrorBody, ErrorCode, MemberStatus, Reply};
use bytes::Bytes;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use uuid::Uuid;

/// The member epoch a client sends to join.
const JOIN_EPOCH: i32 = 0;
/// The member epoch a client sends to leave.
const LEAVE_EPOCH: i32 = -1;
/// The member epoch a static member sends when it leaves for a restart.
const STATIC_LEAVE_EPOCH: i32 = -2;

/// A YaK topic id as the UUID Kafka clients see.
pub fn topic_uuid(topic_id: u64) -> Uuid {
    Uuid::from_u64_pair(0, topic_id)
}

/// Answers one ConsumerGroupHeartbeat.
pub fn heartbeat(
    shared: &Shared,
    correlation_id: i32,
    version: i16,
    client: &str,
    body: Bytes,
) -> Result<Outcome, KafkaFrameError> {
    let req: ConsumerGroupHeartbeatRequest =
        frame::decode(body, version, "ConsumerGroupHeartbeat")?;
    let res = match answer(shared, &req, client) {
        Ok(res) => res,
        Err(e) => refused(&e),
    };
    Ok(Outcome::Ready(frame::response(
        correlation_id,
        version,
        &res,
        "ConsumerGroupHeartbeat",
    )?))
}

/// An error answer; the client rejoins on UNKNOWN_MEMBER_ID.
fn refused(e: &ErrorBody) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(errors::of(e))
        .with_error_message(Some(StrBytes::from_string(e.message.clone())))
}

/// The native call one heartbeat turns into.
fn call_for(req: &ConsumerGroupHeartbeatRequest, client: &str) -> Result<Call, ErrorBody> {
    let group = req.group_id.0.to_string();
    let member_id = req.member_id.to_string();
    match req.member_epoch {
        JOIN_EPOCH => {
            let topics: Vec<String> = req
                .subscribed_topic_names
                .iter()
                .flatten()
                .map(|t| t.0.to_string())
                .collect();
            let Some(first) = topics.first().cloned() else {
                return Err(ErrorBody::new(
                    ErrorCode::InvalidRequest,
                    "a joining member must name the topics it subscribes to",
                ));
            };
            let assignor = match req.server_assignor.as_deref() {
                Some("range") => Assignor::Range,
                _ => Assignor::Sticky,
            };
            Ok(Call::JoinGroup {
                group,
                member_id: String::new(),
                client: client.to_string(),
                topic: first,
                topics,
                assignor,
                session_timeout_ms: None,
            })
        }
        LEAVE_EPOCH | STATIC_LEAVE_EPOCH => Ok(Call::LeaveGroup { group, member_id }),
        epoch => Ok(Call::GroupHeartbeat {
            group,
            member_id,
            generation: u32::try_from(epoch).map_err(|_| {
                ErrorBody::new(ErrorCode::InvalidRequest, format!("member epoch {epoch}"))
            })?,
        }),
    }
}

fn zk_call(shared: &Shared, call: &Call) -> Result<Reply, ErrorBody> {
    match shared.zk.call(call) {
        Ok(Reply::Error(e)) => Err(e),
        Ok(reply) => Ok(reply),
        Err(ClientError::Server(e)) => Err(e),
        Err(e) => Err(ErrorBody::new(
            ErrorCode::Timeout,
            format!("group coordinator unreachable: {e}"),
        )),
    }
}

fn member_status(reply: Reply) -> Result<MemberStatus, ErrorBody> {
    match reply {
        Reply::GroupMember(s) => Ok(s),
        other => Err(ErrorBody::new(
            ErrorCode::InvalidRequest,
            format!("unexpected coordinator answer {other:?}"),
        )),
    }
}

fn answer(
    shared: &Shared,
    req: &ConsumerGroupHeartbeatRequest,
    client: &str,
) -> Result<ConsumerGroupHeartbeatResponse, ErrorBody> {
    let call = call_for(req, client)?;
    let reply = zk_call(shared, &call)?;
    if matches!(call, Call::LeaveGroup { .. }) {
        return Ok(ConsumerGroupHeartbeatResponse::default()
            .with_member_id(Some(req.member_id.clone()))
            .with_member_epoch(req.member_epoch));
    }
    let mut status = member_status(reply)?;
    if status.rebalancing {
        if let Call::GroupHeartbeat { group, .. } = call {
            let rejoin = rejoin_call(shared, &group, &status.member_id, client)?;
            status = member_status(zk_call(shared, &rejoin)?)?;
        }
    }
    let ids = topic_ids(shared, &status)?;
    Ok(response(&status, &ids))
}

/// A rejoin with the subscription and assignor the coordinator holds for
/// the member (a rejoin must name the group's assignor).
fn rejoin_call(
    shared: &Shared,
    group: &str,
    member: &str,
    client: &str,
) -> Result<Call, ErrorBody> {
    let call = Call::DescribeGroup {
        group: group.to_string(),
    };
    let g = match zk_call(shared, &call)? {
        Reply::Group(g) => g,
        other => {
            return Err(ErrorBody::new(
                ErrorCode::InvalidRequest,
                format!("unexpected coordinator answer {other:?}"),
            ))
        }
    };
    let m = g
        .members
        .into_iter()
        .find(|m| m.member_id == member)
        .ok_or_else(|| {
            ErrorBody::new(
                ErrorCode::UnknownMember,
                format!("group '{group}' has no member '{member}'; rejoin"),
            )
        })?;
    let topics = if m.topics.is_empty() {
        vec![m.topic.clone()]
    } else {
        m.topics
    };
    Ok(Call::JoinGroup {
        group: group.to_string(),
        member_id: member.to_string(),
        client: client.to_string(),
        topic: m.topic,
        topics,
        assignor: g.assignor,
        session_timeout_ms: None,
    })
}

/// Topic name → YaK topic id, for the topics in the member's assignment.
fn topic_ids(shared: &Shared, status: &MemberStatus) -> Result<BTreeMap<String, u64>, ErrorBody> {
    let names: Vec<String> = status.assigned.iter().map(|a| a.topic.clone()).collect();
    if names.is_empty() {
        return Ok(BTreeMap::new());
    }
    let meta = shared
        .zk
        .metadata(Some(names))
        .map_err(|e| ErrorBody::new(ErrorCode::Timeout, format!("metadata unavailable: {e}")))?;
    Ok(meta
        .topics
        .into_iter()
        .map(|t| (t.name, t.topic_id))
        .collect())
}

/// The answer for a member: its epoch (the generation) and, outside a
/// rebalance, its partitions of every topic by topic id.
fn response(status: &MemberStatus, ids: &BTreeMap<String, u64>) -> ConsumerGroupHeartbeatResponse {
    let topic_partitions = status
        .assigned
        .iter()
        .filter_map(|a| {
            let id = ids.get(&a.topic)?;
            Some(
                TopicPartitions::default()
                    .with_topic_id(topic_uuid(*id))
                    .with_partitions(a.partitions.iter().map(|p| *p as i32).collect()),
            )
        })
        .collect();
    ConsumerGroupHeartbeatResponse::default()
        .with_member_id(Some(StrBytes::from_string(status.member_id.clone())))
        .with_member_epoch(status.generation as i32)
        .with_heartbeat_interval_ms(status.heartbeat_interval_ms.min(i32::MAX as u64) as i32)
        .with_assignment(Some(
            Assignment::default().with_topic_partitions(topic_partitions),
        ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::TopicAssignment;
    use kafka_protocol::messages::{GroupId, TopicName};

    fn request(epoch: i32, topics: Option<&[&str]>) -> ConsumerGroupHeartbeatRequest {
        ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("g")))
            .with_member_id(StrBytes::from_static_str("m-1"))
            .with_member_epoch(epoch)
            .with_subscribed_topic_names(topics.map(|ts| {
                ts.iter()
                    .map(|t| TopicName(StrBytes::from_string(t.to_string())))
                    .collect()
            }))
    }

    #[test]
    fn given_member_epochs_when_mapping_should_join_leave_or_heartbeat_the_native_group() {
        match call_for(&request(0, Some(&["a", "b"])), "c").expect("join") {
            Call::JoinGroup {
                member_id,
                topic,
                topics,
                assignor,
                client,
                ..
            } => {
                assert!(member_id.is_empty(), "a first join");
                assert_eq!((topic.as_str(), topics.len()), ("a", 2));
                assert_eq!((assignor, client.as_str()), (Assignor::Sticky, "c"));
            }
            other => panic!("{other:?}"),
        }
        let range =
            request(0, Some(&["a"])).with_server_assignor(Some(StrBytes::from_static_str("range")));
        assert!(matches!(
            call_for(&range, "c"),
            Ok(Call::JoinGroup {
                assignor: Assignor::Range,
                ..
            })
        ));
        assert_eq!(
            call_for(&request(0, None), "c")
                .expect_err("no topics")
                .code,
            ErrorCode::InvalidRequest
        );
        for leave in [-1, -2] {
            assert!(matches!(
                call_for(&request(leave, None), "c"),
                Ok(Call::LeaveGroup { .. })
            ));
        }
        assert!(matches!(
            call_for(&request(7, None), "c"),
            Ok(Call::GroupHeartbeat { generation: 7, .. })
        ));
        assert_eq!(
            call_for(&request(-3, None), "c")
                .expect_err("bad epoch")
                .code,
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn given_member_status_when_answering_should_give_epoch_and_partitions_by_topic_id() {
        let status = MemberStatus {
            member_id: "m-1".into(),
            generation: 4,
            rebalancing: false,
            partitions: vec![0, 2],
            heartbeat_interval_ms: 600,
            assigned: vec![
                TopicAssignment {
                    topic: "a".into(),
                    partitions: vec![0, 2],
                },
                TopicAssignment {
                    topic: "gone".into(),
                    partitions: vec![1],
                },
            ],
        };
        let ids = [("a".to_string(), 9u64)].into_iter().collect();
        let res = response(&status, &ids);
        assert_eq!((res.member_epoch, res.heartbeat_interval_ms), (4, 600));
        assert_eq!(res.member_id.as_deref(), Some("m-1"));
        let tps = res.assignment.expect("an assignment").topic_partitions;
        assert_eq!(tps.len(), 1, "a topic without an id is left out");
        assert_eq!(tps[0].topic_id, topic_uuid(9));
        assert_eq!(tps[0].partitions, vec![0, 2]);
        assert_ne!(topic_uuid(9), topic_uuid(10));
        let err = refused(&ErrorBody::new(ErrorCode::UnknownMember, "rejoin"));
        assert_eq!(err.error_code, errors::UNKNOWN_MEMBER_ID);
    }
}
