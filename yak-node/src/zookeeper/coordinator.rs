//! The group coordinator's request handling: join, heartbeat, leave,
//! commit, fetch, list, describe and reset. Membership lives in
//! [`super::groups`] (soft state); committed offsets go through the
//! metadata log like every other durable change.

use super::groups::{ConsumerBeat, GroupEvent, Join};
use super::{Inner, ZooKeeper};
use crate::limits::{
    CLIENT_ID_CHARS_MAX, GROUP_MEMBER_TOPICS_MAX, GROUP_NAME_CHARS_MAX,
    KIP848_REBALANCE_TIMEOUT_MS_MAX, OFFSET_METADATA_BYTES_MAX,
};
use crate::protocol::{
    Assignor, Call, ErrorBody, ErrorCode, GroupDescription, GroupSummary, GroupTopicOffsets, Reply,
};
use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

static MEMBER_SEQ: AtomicU64 = AtomicU64::new(0);

/// A member id unique across ZooKeeper restarts: client name, start time, sequence.
pub(super) fn new_member_id(client: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let seq = MEMBER_SEQ.fetch_add(1, Ordering::Relaxed);
    let name: String = client
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .take(64)
        .collect();
    let name = if name.is_empty() {
        "member".to_string()
    } else {
        name
    };
    format!("{name}-{nanos:x}-{seq}")
}

pub(super) fn check_group_name(group: &str) -> Result<(), ErrorBody> {
    if group.is_empty()
        || group.chars().count() > GROUP_NAME_CHARS_MAX
        || group.chars().any(char::is_control)
    {
        return Err(ErrorBody::new(
            ErrorCode::InvalidRequest,
            format!("a group name must have 1 to {GROUP_NAME_CHARS_MAX} printable characters"),
        ));
    }
    Ok(())
}

pub(super) fn check_client(client: &str) -> Result<(), ErrorBody> {
    if client.chars().count() > CLIENT_ID_CHARS_MAX || client.chars().any(char::is_control) {
        return Err(ErrorBody::new(
            ErrorCode::InvalidRequest,
            format!("a client name must have at most {CLIENT_ID_CHARS_MAX} printable characters"),
        ));
    }
    Ok(())
}

/// A member's topics: `topic` first, then the rest of `topics`; at most
/// `GROUP_MEMBER_TOPICS_MAX`.
fn subscription(topic: String, topics: Vec<String>) -> Result<Vec<String>, ErrorBody> {
    let mut all = vec![topic];
    for t in topics {
        if !all.contains(&t) {
            all.push(t);
        }
        if all.len() > GROUP_MEMBER_TOPICS_MAX {
            break;
        }
    }
    if all.len() > GROUP_MEMBER_TOPICS_MAX {
        return Err(ErrorBody::new(
            ErrorCode::InvalidRequest,
            format!("a member may subscribe to at most {GROUP_MEMBER_TOPICS_MAX} topics"),
        ));
    }
    Ok(all)
}

/// The session timeout a member asked for (`default` when it did not),
/// refused with `InvalidSessionTimeout` outside `allowed`, as Kafka does.
fn session_timeout(
    requested_ms: Option<u64>,
    default: Duration,
    allowed: RangeInclusive<Duration>,
) -> Result<Duration, ErrorBody> {
    let Some(ms) = requested_ms else {
        return Ok(default);
    };
    let wanted = Duration::from_millis(ms);
    if !allowed.contains(&wanted) {
        return Err(ErrorBody::new(
            ErrorCode::InvalidSessionTimeout,
            format!(
                "a session timeout of {ms} ms is outside the cluster's allowed {} to {} ms \
                 (ZooKeeper's --group-min-session-timeout-ms and --group-max-session-timeout-ms)",
                allowed.start().as_millis(),
                allowed.end().as_millis()
            ),
        ));
    }
    Ok(wanted)
}

/// Logs what the membership state machine did.
pub(super) fn log_events(events: &[GroupEvent]) {
    for e in events {
        match e {
            GroupEvent::Joined { group, member } => {
                tracing::info!(group = %group, member = %member, "member joined")
            }
            GroupEvent::Left { group, member } => {
                tracing::info!(group = %group, member = %member, "member left")
            }
            GroupEvent::Expired { group, member } => {
                tracing::info!(group = %group, member = %member, "member expired")
            }
            GroupEvent::Rebalanced {
                group,
                generation,
                assignment,
            } => {
                tracing::info!(group = %group, generation, assignment = ?assignment, "group rebalanced")
            }
        }
    }
}

impl ZooKeeper {
    /// Expires silent members and completes rebalances; called every tick.
    pub(super) fn tick_groups(inner: &mut Inner) {
        let Inner { state, groups, .. } = inner;
        let counts = |t: &str| state.topic(t).map(|t| t.partitions.len() as u32);
        let events = groups.tick(Instant::now(), &counts);
        log_events(&events);
        Self::record_events(inner, super::events::group_rebalances(&events));
    }

    /// Handles one group call.
    pub(super) fn group_call(&self, call: Call) -> Result<Reply, ErrorBody> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let now = Instant::now();
        match call {
            Call::JoinGroup {
                group,
                member_id,
                client,
                topic,
                topics,
                assignor,
                session_timeout_ms,
            } => {
                check_group_name(&group)?;
                check_client(&client)?;
                if inner.classic.has_members(&group) {
                    return Err(ErrorBody::new(
                        ErrorCode::InconsistentGroupProtocol,
                        format!("group '{group}' is a Kafka consumer group (classic protocol); a YaK consumer cannot join it"),
                    ));
                }
                let topics = subscription(topic, topics)?;
                if let Some(t) = topics.iter().find(|t| inner.state.topic(t).is_none()) {
                    return Err(ErrorBody::new(
                        ErrorCode::UnknownTopic,
                        format!("topic '{t}' does not exist"),
                    ));
                }
                let session_timeout = session_timeout(
                    session_timeout_ms,
                    self.group_session_timeout,
                    self.group_session_timeout_min..=self.group_session_timeout_max,
                )?;
                let join = Join {
                    group: &group,
                    member_id: &member_id,
                    client: &client,
                    topics: &topics,
                    assignor,
                    session_timeout,
                    kip848: false,
                };
                let fresh = new_member_id(&client);
                let Inner { state, groups, .. } = inner;
                let counts = |t: &str| state.topic(t).map(|t| t.partitions.len() as u32);
                let (status, events) = groups.join(&join, &fresh, now, &counts)?;
                log_events(&events);
                Self::record_events(inner, super::events::group_rebalances(&events));
                Ok(Reply::GroupMember(status))
            }
            Call::ConsumerGroupHeartbeat {
                group,
                member_id,
                client,
                member_epoch,
                topics,
                assignor,
                owned,
                rebalance_timeout_ms,
            } => {
                check_group_name(&group)?;
                check_client(&client)?;
                if inner.classic.has_members(&group) {
                    return Err(ErrorBody::new(
                        ErrorCode::InconsistentGroupProtocol,
                        format!("group '{group}' is a Kafka consumer group (classic protocol); a consumer-protocol member cannot join it"),
                    ));
                }
                // A topic that does not exist yet is kept: it is assigned once created.
                let topics = match topics {
                    Some(ts) => match ts.split_first() {
                        Some((first, rest)) => Some(subscription(first.clone(), rest.to_vec())?),
                        None => Some(Vec::new()),
                    },
                    None => None,
                };
                let beat = ConsumerBeat {
                    group: &group,
                    member_id: &member_id,
                    client: &client,
                    epoch: member_epoch,
                    topics: topics.as_deref(),
                    assignor,
                    owned: owned.as_deref(),
                    session_timeout: self.group_session_timeout,
                    rebalance_timeout: Duration::from_millis(
                        rebalance_timeout_ms
                            .unwrap_or(0)
                            .min(KIP848_REBALANCE_TIMEOUT_MS_MAX),
                    )
                    .max(self.group_session_timeout),
                };
                let fresh = new_member_id(&client);
                let Inner { state, groups, .. } = inner;
                let counts = |t: &str| state.topic(t).map(|t| t.partitions.len() as u32);
                let (status, events) = groups.consumer_heartbeat(&beat, &fresh, now, &counts)?;
                log_events(&events);
                Self::record_events(inner, super::events::group_rebalances(&events));
                Ok(Reply::GroupMember(status))
            }
            Call::GroupHeartbeat {
                group,
                member_id,
                generation: _,
            } => Ok(Reply::GroupMember(
                inner.groups.heartbeat(&group, &member_id, now)?,
            )),
            Call::LeaveGroup { group, member_id } => {
                let Inner { state, groups, .. } = inner;
                let counts = |t: &str| state.topic(t).map(|t| t.partitions.len() as u32);
                let events = groups.leave(&group, &member_id, now, &counts)?;
                log_events(&events);
                Self::record_events(inner, super::events::group_rebalances(&events));
                Ok(Reply::GroupOk)
            }
            Call::CommitOffsets {
                group,
                member_id,
                generation,
                topic,
                offsets,
                metadata,
            } => {
                inner
                    .groups
                    .check_commit(&group, &member_id, generation, &topic, &offsets)?;
                if metadata
                    .values()
                    .any(|m| m.len() > OFFSET_METADATA_BYTES_MAX)
                {
                    return Err(ErrorBody::new(
                        ErrorCode::OffsetMetadataTooLarge,
                        format!("commit metadata is limited to {OFFSET_METADATA_BYTES_MAX} bytes"),
                    ));
                }
                if let Some(record) = inner
                    .state
                    .plan_commit_offsets_with(&group, &topic, &offsets, &metadata)?
                {
                    Self::commit(inner, record)?;
                }
                Ok(Reply::GroupOk)
            }
            Call::FetchOffsets { group, topic } => Ok(Reply::GroupOffsets {
                offsets: inner.state.committed_offsets(&group, &topic),
            }),
            Call::ListGroups => Ok(Reply::Groups {
                groups: Self::summaries(inner),
            }),
            Call::DescribeGroup { group } => Self::describe(inner, &group).map(Reply::Group),
            Call::ResetOffsets {
                group,
                topic,
                offsets,
            } => {
                check_group_name(&group)?;
                if inner.groups.has_members(&group) || inner.classic.has_members(&group) {
                    return Err(ErrorBody::new(
                        ErrorCode::GroupNotEmpty,
                        format!("group '{group}' has active members; stop them before resetting its offsets"),
                    ));
                }
                if let Some(record) = inner.state.plan_commit_offsets(&group, &topic, &offsets)? {
                    Self::commit(inner, record)?;
                }
                tracing::info!(group = %group, topic = %topic, offsets = ?offsets, "offsets reset");
                Ok(Reply::GroupOk)
            }
            other => Err(ErrorBody::new(
                ErrorCode::InvalidRequest,
                format!("not a group request: {other:?}"),
            )),
        }
    }

    fn summaries(inner: &Inner) -> Vec<GroupSummary> {
        let mut topics: BTreeMap<String, Vec<String>> = inner.state.groups_with_offsets();
        for (name, ts) in inner.groups.names() {
            topics.entry(name).or_default().extend(ts);
        }
        let classic = super::classic::views(inner);
        for (name, v) in &classic {
            let ts = v
                .members
                .iter()
                .filter(|m| !m.topic.is_empty())
                .map(|m| m.topic.clone());
            topics.entry(name.clone()).or_default().extend(ts);
        }
        topics
            .into_iter()
            .map(|(group, mut ts)| {
                ts.sort_unstable();
                ts.dedup();
                let view = inner.groups.view(&group);
                if let Some(v) = classic.get(&group) {
                    let mut members: Vec<&str> =
                        v.members.iter().map(|m| m.member_id.as_str()).collect();
                    members.dedup();
                    return GroupSummary {
                        state: v.state.to_string(),
                        members: members.len() as u32,
                        group,
                        topics: ts,
                    };
                }
                GroupSummary {
                    state: view.as_ref().map_or("empty", |v| v.state).to_string(),
                    members: view.map_or(0, |v| v.members.len() as u32),
                    group,
                    topics: ts,
                }
            })
            .collect()
    }

    fn describe(inner: &Inner, group: &str) -> Result<GroupDescription, ErrorBody> {
        let with_offsets = inner.state.groups_with_offsets();
        let view = inner.groups.view(group);
        let classic = super::classic::views(inner).remove(group);
        if view.is_none() && classic.is_none() && !with_offsets.contains_key(group) {
            return Err(ErrorBody::new(
                ErrorCode::UnknownGroup,
                format!("group '{group}' does not exist"),
            ));
        }
        let offsets = with_offsets
            .get(group)
            .map(|topics| {
                topics
                    .iter()
                    .map(|t| GroupTopicOffsets {
                        group: group.to_string(),
                        topic: t.clone(),
                        offsets: inner.state.committed_offsets(group, t),
                        metadata: inner.state.offset_metadata(group, t),
                    })
                    .collect()
            })
            .unwrap_or_default();
        if let Some(v) = classic {
            return Ok(GroupDescription {
                group: group.to_string(),
                state: v.state.to_string(),
                generation: u32::try_from(v.generation).unwrap_or(0),
                assignor: Default::default(),
                members: v.members,
                offsets,
                protocol: Some(v.protocol),
            });
        }
        Ok(match view {
            Some(v) => GroupDescription {
                group: group.to_string(),
                state: v.state.to_string(),
                generation: v.generation,
                assignor: v.assignor,
                members: v.members,
                offsets,
                // KIP-848 groups show Kafka's name of their server assignor.
                protocol: v.kip848.then(|| {
                    let name = match v.assignor {
                        Assignor::Range => "range",
                        _ => "uniform",
                    };
                    format!("consumer:{name}")
                }),
            },
            None => GroupDescription {
                group: group.to_string(),
                state: "empty".into(),
                generation: 0,
                assignor: Default::default(),
                members: Vec::new(),
                offsets,
                protocol: None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_session_timeouts_when_joining_should_take_those_within_range_and_refuse_the_rest() {
        let ms = Duration::from_millis;
        let allowed = ms(100)..=ms(5000);
        let pick = |requested| session_timeout(requested, ms(3000), allowed.clone());
        assert_eq!(pick(None).expect("default"), ms(3000));
        assert_eq!(pick(Some(100)).expect("the minimum"), ms(100));
        assert_eq!(pick(Some(5000)).expect("the maximum"), ms(5000));
        for bad in [0, 99, 5001, u64::MAX] {
            let err = pick(Some(bad)).expect_err("out of range");
            assert_eq!(err.code, ErrorCode::InvalidSessionTimeout, "{bad}");
            assert!(err.message.contains("100 to 5000 ms"), "{}", err.message);
        }
    }
}
