//! Kafka's classic group membership APIs: FindCoordinator (this broker:
//! every broker forwards group calls to ZooKeeper's one coordinator; v4+
//! answers a batch of keys), JoinGroup, SyncGroup, Heartbeat and
//! LeaveGroup, up to Kafka 4's flexible versions. A JoinGroup or SyncGroup
//! whose rebalance is not complete is asked again every
//! [`KAFKA_GROUP_POLL_MS`] by this connection's reader (ZooKeeper never
//! holds a call). Each ask ends the wait as Kafka would: the member left
//! or expired (`UNKNOWN_MEMBER_ID`), a newer generation (`ILLEGAL_GENERATION`)
//! or a new rebalance (`REBALANCE_IN_PROGRESS`). A join waits at most the
//! member's session timeout, after which the client is told
//! `REBALANCE_IN_PROGRESS` and rejoins, so a client that vanished mid-join
//! stops refreshing its membership; a sync waits for the leader's
//! assignment, which ZooKeeper bounds by the group's rebalance timeout
//! (members that never synced are then removed), with
//! [`KAFKA_GROUP_WAIT_MS_MAX`] as a last resort. Never decides anything
//! about a group.

use super::errors;
use super::frame::{self, KafkaFrameError};
use super::request::{Outcome, Shared};
use crate::limits::{KAFKA_GROUP_POLL_MS, KAFKA_GROUP_WAIT_MS_MAX};
use crate::protocol::classic::{
    ClassicCall, ClassicReply, JoinAnswer, JoinRequest, MemberAssignment, ProtocolOffer,
    SyncAnswer, SyncRequest,
};
use crate::protocol::{Call, ClientError, Reply};
use bytes::Bytes;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, HeartbeatRequest, HeartbeatResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, SyncGroupRequest,
    SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use std::time::{Duration, Instant};

/// FindCoordinator's key type for a consumer group.
const KEY_TYPE_GROUP: i8 = 0;
/// The host Kafka clients connect from: the listener binds 127.0.0.1 only.
const CLIENT_HOST: &str = "/127.0.0.1";

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// Sends one classic call to ZooKeeper; a Kafka error code if it failed.
pub(super) fn call(shared: &Shared, c: ClassicCall) -> Result<ClassicReply, i16> {
    match shared.zk.call(&Call::ClassicGroup(c)) {
        Ok(Reply::ClassicGroup(r)) => Ok(r),
        Ok(Reply::Error(e)) | Err(ClientError::Server(e)) => Err(errors::of(&e)),
        Ok(_) => Err(errors::UNKNOWN_SERVER_ERROR),
        Err(_) => Err(errors::COORDINATOR_NOT_AVAILABLE),
    }
}

/// Answers FindCoordinator: for groups, this broker.
pub fn find_coordinator(
    shared: &Shared,
    correlation_id: i32,
    version: i16,
    body: Bytes,
) -> Result<Outcome, KafkaFrameError> {
    let req: FindCoordinatorRequest = frame::decode(body, version, "FindCoordinator")?;
    let error = if req.key_type == KEY_TYPE_GROUP {
        errors::NONE
    } else {
        errors::COORDINATOR_NOT_AVAILABLE
    };
    let node = BrokerId(shared.config.broker_id as i32);
    let host = s(&shared.address.ip().to_string());
    let port = i32::from(shared.address.port());
    let r = if version >= 4 {
        // v4+: a batch of keys, one coordinator each (the same one here).
        FindCoordinatorResponse::default().with_coordinators(
            req.coordinator_keys
                .iter()
                .map(|key| {
                    Coordinator::default()
                        .with_key(key.clone())
                        .with_node_id(node)
                        .with_host(host.clone())
                        .with_port(port)
                        .with_error_code(error)
                })
                .collect(),
        )
    } else {
        FindCoordinatorResponse::default()
            .with_error_code(error)
            .with_node_id(node)
            .with_host(host)
            .with_port(port)
    };
    ready(correlation_id, version, &r, "FindCoordinator")
}

fn ready<R>(c: i32, v: i16, r: &R, what: &'static str) -> Result<Outcome, KafkaFrameError>
where
    R: kafka_protocol::protocol::Encodable + kafka_protocol::protocol::HeaderVersion,
{
    Ok(Outcome::Ready(frame::response(c, v, r, what)?))
}

/// How long a join or sync of a member may be waited for.
fn wait_limit(session_timeout_ms: i32) -> Duration {
    Duration::from_millis(
        u64::try_from(session_timeout_ms)
            .unwrap_or(0)
            .min(KAFKA_GROUP_WAIT_MS_MAX),
    )
}

/// Answers JoinGroup, asking ZooKeeper again until the rebalance completes.
pub fn join(
    shared: &Shared,
    client_id: &str,
    correlation_id: i32,
    version: i16,
    body: Bytes,
) -> Result<Outcome, KafkaFrameError> {
    let req: JoinGroupRequest = frame::decode(body, version, "JoinGroup")?;
    let mut j = JoinRequest {
        group: req.group_id.0.to_string(),
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|i| i.to_string()),
        client_id: client_id.to_string(),
        client_host: CLIENT_HOST.to_string(),
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .iter()
            .map(|p| ProtocolOffer {
                name: p.name.to_string(),
                metadata: p.metadata.to_vec(),
            })
            .collect(),
        session_timeout_ms: u64::try_from(req.session_timeout_ms).unwrap_or(0),
        rebalance_timeout_ms: u64::try_from(req.rebalance_timeout_ms).unwrap_or(0),
        require_member_id: version >= 4,
        poll: false,
        can_skip_assignment: version >= 9,
    };
    if let Some(reason) = &req.reason {
        tracing::debug!(group = %j.group, member = %j.member_id, reason = %reason, "kafka join");
    }
    let deadline = Instant::now() + wait_limit(req.session_timeout_ms);
    let mut r = JoinGroupResponse::default()
        .with_generation_id(-1)
        .with_member_id(req.member_id.clone());
    loop {
        match call(shared, ClassicCall::Join(j.clone())) {
            Ok(ClassicReply::Join(JoinAnswer::Pending { member_id })) => {
                if Instant::now() >= deadline {
                    r.error_code = errors::REBALANCE_IN_PROGRESS;
                    r.member_id = s(&member_id);
                    break;
                }
                j.member_id = member_id;
                j.poll = true;
                std::thread::sleep(Duration::from_millis(KAFKA_GROUP_POLL_MS));
            }
            Ok(ClassicReply::Join(JoinAnswer::MemberIdRequired { member_id })) => {
                r.error_code = errors::MEMBER_ID_REQUIRED;
                r.member_id = s(&member_id);
                break;
            }
            Ok(ClassicReply::Join(JoinAnswer::Done {
                generation,
                protocol_type,
                protocol_name,
                leader,
                member_id,
                members,
                skip_assignment,
            })) => {
                r.generation_id = generation;
                r.skip_assignment = skip_assignment && version >= 9;
                r.protocol_type = Some(s(&protocol_type));
                r.protocol_name = Some(s(&protocol_name));
                r.leader = s(&leader);
                r.member_id = s(&member_id);
                r.members = members
                    .into_iter()
                    .map(|m| {
                        JoinGroupResponseMember::default()
                            .with_member_id(s(&m.member_id))
                            .with_group_instance_id(m.instance_id.as_deref().map(s))
                            .with_metadata(Bytes::from(m.metadata))
                    })
                    .collect();
                break;
            }
            Ok(_) => {
                r.error_code = errors::UNKNOWN_SERVER_ERROR;
                break;
            }
            Err(code) => {
                r.error_code = code;
                break;
            }
        }
    }
    ready(correlation_id, version, &r, "JoinGroup")
}

/// Answers SyncGroup, asking again until the leader's assignment is in.
pub fn sync(
    shared: &Shared,
    correlation_id: i32,
    version: i16,
    body: Bytes,
) -> Result<Outcome, KafkaFrameError> {
    let req: SyncGroupRequest = frame::decode(body, version, "SyncGroup")?;
    let mut sreq = SyncRequest {
        group: req.group_id.0.to_string(),
        generation: req.generation_id,
        member_id: req.member_id.to_string(),
        protocol_type: req.protocol_type.as_ref().map(|p| p.to_string()),
        protocol_name: req.protocol_name.as_ref().map(|p| p.to_string()),
        assignments: req
            .assignments
            .iter()
            .map(|a| MemberAssignment {
                member_id: a.member_id.to_string(),
                assignment: a.assignment.to_vec(),
            })
            .collect(),
    };
    // SyncGroup carries no timeout: ZooKeeper ends a completing rebalance
    // after the group's rebalance timeout; this is only a last resort.
    let deadline = Instant::now() + wait_limit(i32::MAX);
    let mut r = SyncGroupResponse::default();
    loop {
        match call(shared, ClassicCall::Sync(sreq.clone())) {
            Ok(ClassicReply::Sync(SyncAnswer::Pending)) if Instant::now() < deadline => {
                sreq.assignments.clear();
                std::thread::sleep(Duration::from_millis(KAFKA_GROUP_POLL_MS));
            }
            Ok(ClassicReply::Sync(SyncAnswer::Done {
                protocol_type,
                protocol_name,
                assignment,
            })) => {
                r.protocol_type = Some(s(&protocol_type));
                r.protocol_name = Some(s(&protocol_name));
                r.assignment = Bytes::from(assignment);
                break;
            }
            Ok(ClassicReply::Sync(SyncAnswer::Pending)) => {
                r.error_code = errors::REBALANCE_IN_PROGRESS;
                break;
            }
            Ok(_) => {
                r.error_code = errors::UNKNOWN_SERVER_ERROR;
                break;
            }
            Err(code) => {
                r.error_code = code;
                break;
            }
        }
    }
    ready(correlation_id, version, &r, "SyncGroup")
}

/// Answers Heartbeat.
pub fn heartbeat(
    shared: &Shared,
    correlation_id: i32,
    version: i16,
    body: Bytes,
) -> Result<Outcome, KafkaFrameError> {
    let req: HeartbeatRequest = frame::decode(body, version, "Heartbeat")?;
    let c = ClassicCall::Heartbeat {
        group: req.group_id.0.to_string(),
        member_id: req.member_id.to_string(),
        generation: req.generation_id,
    };
    let error = call(shared, c).err().unwrap_or(errors::NONE);
    ready(
        correlation_id,
        version,
        &HeartbeatResponse::default().with_error_code(error),
        "Heartbeat",
    )
}

/// Answers LeaveGroup (one member before v3, a batch from v3).
pub fn leave(
    shared: &Shared,
    correlation_id: i32,
    version: i16,
    body: Bytes,
) -> Result<Outcome, KafkaFrameError> {
    let req: LeaveGroupRequest = frame::decode(body, version, "LeaveGroup")?;
    let member_ids: Vec<String> = if version >= 3 {
        req.members
            .iter()
            .map(|m| m.member_id.to_string())
            .collect()
    } else {
        vec![req.member_id.to_string()]
    };
    let c = ClassicCall::Leave {
        group: req.group_id.0.to_string(),
        member_ids,
    };
    let mut r = LeaveGroupResponse::default();
    match call(shared, c) {
        Ok(ClassicReply::Results(results)) => {
            let code = |e: &Option<crate::protocol::ErrorCode>| {
                e.as_ref().map_or(errors::NONE, errors::code)
            };
            if version < 3 {
                r.error_code = results.first().map_or(errors::NONE, |x| code(&x.error));
            }
            r.members = results
                .iter()
                .zip(req.members.iter())
                .map(|(x, m)| {
                    MemberResponse::default()
                        .with_member_id(s(&x.name))
                        .with_group_instance_id(m.group_instance_id.clone())
                        .with_error_code(code(&x.error))
                })
                .collect();
        }
        Ok(_) => r.error_code = errors::UNKNOWN_SERVER_ERROR,
        Err(code) => r.error_code = code,
    }
    ready(correlation_id, version, &r, "LeaveGroup")
}
