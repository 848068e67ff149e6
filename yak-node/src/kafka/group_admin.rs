//! ListGroups, DescribeGroups and DeleteGroups, forwarded to ZooKeeper's
//! coordinator. Kafka groups, YaK-native groups (protocol type `yak`) and
//! groups with only committed offsets (`Empty`) are listed alike; only a
//! group without members can be deleted. Never decides anything.

use super::errors;
use super::frame::{self, KafkaFrameError};
use super::groups::call;
use super::request::{Outcome, Shared};
use crate::protocol::classic::{ClassicCall, ClassicReply};
use bytes::Bytes;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    GroupId, ListGroupsRequest, ListGroupsResponse,
};
use kafka_protocol::protocol::StrBytes;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// A group's type as ListGroups v5 names it: YaK's native groups, whose
/// coordinator assigns (as KIP-848's), are `consumer`; Kafka groups and
/// groups with only committed offsets are `classic`.
fn group_type(g: &crate::protocol::classic::ListedGroup) -> &'static str {
    if g.protocol_type == "yak" {
        "consumer"
    } else {
        "classic"
    }
}

/// Answers ListGroups.
pub fn list(
    shared: &Shared,
    correlation_id: i32,
    version: i16,
    body: Bytes,
) -> Result<Outcome, KafkaFrameError> {
    let req: ListGroupsRequest = frame::decode(body, version, "ListGroups")?;
    // v4+ filters by state, v5+ by type; an empty filter keeps every group
    // and names match without regard to case, as Kafka's.
    let wanted = |filter: &[StrBytes], value: &str| {
        filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(value))
    };
    let mut r = ListGroupsResponse::default();
    match call(shared, ClassicCall::List) {
        Ok(ClassicReply::Groups(groups)) => {
            r.groups = groups
                .into_iter()
                .map(|g| (group_type(&g), g))
                .filter(|(kind, g)| {
                    wanted(&req.states_filter, &g.state) && wanted(&req.types_filter, kind)
                })
                .map(|(kind, g)| {
                    ListedGroup::default()
                        .with_group_id(GroupId(s(&g.group)))
                        .with_protocol_type(s(&g.protocol_type))
                        .with_group_state(s(&g.state))
                        .with_group_type(s(if version >= 5 { kind } else { "" }))
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
        "ListGroups",
    )?))
}

/// Answers DescribeGroups (an unknown group is `Dead`, as Kafka's).
pub fn describe(
    shared: &Shared,
    correlation_id: i32,
    version: i16,
    body: Bytes,
) -> Result<Outcome, KafkaFrameError> {
    let req: DescribeGroupsRequest = frame::decode(body, version, "DescribeGroups")?;
    let names: Vec<String> = req.groups.iter().map(|g| g.0.to_string()).collect();
    let c = ClassicCall::Describe {
        groups: names.clone(),
    };
    let groups = match call(shared, c) {
        Ok(ClassicReply::Described(groups)) => groups
            .into_iter()
            .map(|g| {
                DescribedGroup::default()
                    .with_group_id(GroupId(s(&g.group)))
                    .with_group_state(s(&g.state))
                    .with_protocol_type(s(&g.protocol_type))
                    .with_protocol_data(s(&g.protocol))
                    .with_members(
                        g.members
                            .into_iter()
                            .map(|m| {
                                DescribedGroupMember::default()
                                    .with_member_id(s(&m.member_id))
                                    .with_group_instance_id(m.instance_id.as_deref().map(s))
                                    .with_client_id(s(&m.client_id))
                                    .with_client_host(s(&m.client_host))
                                    .with_member_metadata(Bytes::from(m.metadata))
                                    .with_member_assignment(Bytes::from(m.assignment))
                            })
                            .collect(),
                    )
            })
            .collect(),
        other => {
            let code = other.err().unwrap_or(errors::UNKNOWN_SERVER_ERROR);
            names
                .iter()
                .map(|n| {
                    DescribedGroup::default()
                        .with_group_id(GroupId(s(n)))
                        .with_error_code(code)
                })
                .collect()
        }
    };
    Ok(Outcome::Ready(frame::response(
        correlation_id,
        version,
        &DescribeGroupsResponse::default().with_groups(groups),
        "DescribeGroups",
    )?))
}

/// Answers DeleteGroups.
pub fn delete(
    shared: &Shared,
    correlation_id: i32,
    version: i16,
    body: Bytes,
) -> Result<Outcome, KafkaFrameError> {
    let req: DeleteGroupsRequest = frame::decode(body, version, "DeleteGroups")?;
    let names: Vec<String> = req.groups_names.iter().map(|g| g.0.to_string()).collect();
    let c = ClassicCall::Delete {
        groups: names.clone(),
    };
    let results = match call(shared, c) {
        Ok(ClassicReply::Results(results)) => results
            .into_iter()
            .map(|x| {
                DeletableGroupResult::default()
                    .with_group_id(GroupId(s(&x.name)))
                    .with_error_code(x.error.as_ref().map_or(errors::NONE, errors::code))
            })
            .collect(),
        other => {
            let code = other.err().unwrap_or(errors::UNKNOWN_SERVER_ERROR);
            names
                .iter()
                .map(|n| {
                    DeletableGroupResult::default()
                        .with_group_id(GroupId(s(n)))
                        .with_error_code(code)
                })
                .collect()
        }
    };
    Ok(Outcome::Ready(frame::response(
        correlation_id,
        version,
        &DeleteGroupsResponse::default().with_results(results),
        "DeleteGroups",
    )?))
}
