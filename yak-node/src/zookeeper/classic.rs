//! The coordinator's handling of Kafka classic-group calls, which the
//! Kafka front door forwards: membership in [`super::classic_groups`]
//! (soft state), committed offsets in the metadata state (durable, the
//! same offsets native groups commit). One group name is one protocol: a
//! Kafka member joining a group with YaK-native members is refused with
//! `InconsistentGroupProtocol` (and the reverse, in `coordinator.rs`).
//! Never waits: a join or sync not yet complete is answered `Pending`.

use super::classic_groups::ClassicEvent;
use super::coordinator::{check_client, check_group_name, new_member_id};
use super::{Inner, ZooKeeper};
use crate::limits::OFFSET_METADATA_BYTES_MAX;
use crate::protocol::classic::consumer_assignment;
use crate::protocol::classic::{
    ClassicCall, ClassicReply, CommitTopic, DescribedGroup, FetchedOffset, FetchedTopic,
    ItemResult, ListedGroup,
};
use crate::protocol::metalog::MetaRecord;
use crate::protocol::{
    ErrorBody, ErrorCode, MemberDescription, PartitionOffset, Reply, TopicAssignment,
};
use std::collections::BTreeMap;
use std::time::Instant;

/// A Kafka group as `yak-node group list|describe` shows it.
pub(super) struct ClassicView {
    /// `stable` or `rebalancing`.
    pub state: &'static str,
    pub generation: i32,
    pub protocol: String,
    /// One entry per member and topic assigned (a member with nothing
    /// assigned, or an assignment that does not parse, shows with no topic).
    pub members: Vec<MemberDescription>,
}

/// Every Kafka group with members, its assignments decoded from the
/// consumer protocol's blobs.
pub(super) fn views(inner: &Inner) -> BTreeMap<String, ClassicView> {
    inner
        .classic
        .list()
        .into_iter()
        .filter_map(|(name, _, _)| inner.classic.describe(&name).map(|d| (name, d)))
        .map(|(name, d)| {
            let members = d
                .members
                .iter()
                .flat_map(|m| {
                    let assigned = consumer_assignment(&m.assignment)
                        .filter(|a| !a.is_empty())
                        .unwrap_or_else(|| vec![(String::new(), Vec::new())]);
                    assigned
                        .into_iter()
                        .map(move |(topic, partitions)| MemberDescription {
                            member_id: m.member_id.clone(),
                            client: m.client_id.clone(),
                            topics: vec![topic.clone()],
                            assigned: vec![TopicAssignment {
                                topic: topic.clone(),
                                partitions: partitions.clone(),
                            }],
                            topic,
                            partitions,
                        })
                })
                .collect();
            let state = if d.state == "Stable" {
                "stable"
            } else {
                "rebalancing"
            };
            let view = ClassicView {
                state,
                generation: d.generation,
                protocol: d.protocol,
                members,
            };
            (name, view)
        })
        .collect()
}

fn log_events(events: &[ClassicEvent]) {
    for e in events {
        match e {
            ClassicEvent::Joined { group, member } => {
                tracing::info!(group = %group, member = %member, "kafka group member joined")
            }
            ClassicEvent::Removed { group, member, why } => {
                tracing::info!(group = %group, member = %member, why, "kafka group member removed")
            }
            ClassicEvent::Rebalanced {
                group,
                generation,
                leader,
                members,
            } => {
                tracing::info!(group = %group, generation, leader = %leader, members, "kafka group rebalanced")
            }
        }
    }
}

impl ZooKeeper {
    /// Expires silent classic members and completes rebalances; every tick.
    pub(super) fn tick_classic(inner: &mut Inner) {
        log_events(&inner.classic.tick(Instant::now()));
    }

    /// Handles one classic-group call.
    pub(super) fn classic_call(&self, call: ClassicCall) -> Result<Reply, ErrorBody> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let now = Instant::now();
        let reply = match call {
            ClassicCall::Join(j) => {
                check_group_name(&j.group)?;
                check_client(&j.client_id)?;
                if inner.groups.has_members(&j.group) {
                    return Err(ErrorBody::new(
                        ErrorCode::InconsistentGroupProtocol,
                        format!(
                            "group '{}' has YaK-native members; a Kafka consumer cannot join it",
                            j.group
                        ),
                    ));
                }
                let (answer, events) = inner.classic.join(&j, &new_member_id(&j.client_id), now)?;
                log_events(&events);
                ClassicReply::Join(answer)
            }
            ClassicCall::Sync(s) => ClassicReply::Sync(inner.classic.sync(&s, now)?),
            ClassicCall::Heartbeat {
                group,
                member_id,
                generation,
            } => {
                inner
                    .classic
                    .heartbeat(&group, &member_id, generation, now)?;
                ClassicReply::Ok
            }
            ClassicCall::Leave { group, member_ids } => {
                let (results, events) = inner.classic.leave(&group, &member_ids, now);
                log_events(&events);
                ClassicReply::Results(
                    member_ids
                        .into_iter()
                        .zip(results)
                        .map(|(name, error)| ItemResult {
                            name,
                            partition: 0,
                            error,
                        })
                        .collect(),
                )
            }
            ClassicCall::Commit {
                group,
                member_id,
                generation,
                topics,
            } => {
                check_group_name(&group)?;
                if inner.groups.has_members(&group) {
                    return Err(ErrorBody::new(
                        ErrorCode::UnknownMember,
                        format!("group '{group}' has YaK-native members; '{member_id}' is not one"),
                    ));
                }
                inner.classic.check_commit(&group, &member_id, generation)?;
                ClassicReply::Results(Self::commit_topics(inner, &group, &topics)?)
            }
            ClassicCall::FetchOffsets { group, topics } => {
                ClassicReply::Offsets(Self::fetch_offsets(inner, &group, topics))
            }
            ClassicCall::List => ClassicReply::Groups(Self::list_all(inner)),
            ClassicCall::Describe { groups } => ClassicReply::Described(
                groups
                    .iter()
                    .map(|g| Self::describe_one(inner, g))
                    .collect(),
            ),
            ClassicCall::Delete { groups } => {
                let mut results = Vec::with_capacity(groups.len());
                for group in groups {
                    let error = Self::delete_group(inner, &group).err().map(|e| e.code);
                    results.push(ItemResult {
                        name: group,
                        partition: 0,
                        error,
                    });
                }
                ClassicReply::Results(results)
            }
        };
        Ok(Reply::ClassicGroup(reply))
    }

    /// Commits each topic's offsets (one metadata-log record per topic);
    /// per partition, `None` or why not.
    fn commit_topics(
        inner: &mut Inner,
        group: &str,
        topics: &[CommitTopic],
    ) -> Result<Vec<ItemResult>, ErrorBody> {
        let mut results = Vec::new();
        for t in topics {
            let (long, ok): (Vec<_>, Vec<_>) = t.partitions.iter().partition(|p| {
                p.metadata
                    .as_ref()
                    .is_some_and(|m| m.len() > OFFSET_METADATA_BYTES_MAX)
            });
            let offsets: Vec<PartitionOffset> = ok
                .iter()
                .map(|p| PartitionOffset {
                    partition: p.partition,
                    offset: p.offset,
                })
                .collect();
            let metadata: BTreeMap<u32, String> = ok
                .iter()
                .filter_map(|p| {
                    p.metadata
                        .clone()
                        .filter(|m| !m.is_empty())
                        .map(|m| (p.partition, m))
                })
                .collect();
            let error = match inner
                .state
                .plan_commit_offsets_with(group, &t.topic, &offsets, &metadata)
            {
                Ok(Some(record)) => Self::commit(inner, record).err().map(|e| e.code),
                Ok(None) => None,
                Err(e) => Some(e.code),
            };
            let item = |partition: u32, error: Option<ErrorCode>| ItemResult {
                name: t.topic.clone(),
                partition,
                error,
            };
            results.extend(ok.iter().map(|p| item(p.partition, error.clone())));
            results.extend(
                long.iter()
                    .map(|p| item(p.partition, Some(ErrorCode::OffsetMetadataTooLarge))),
            );
        }
        Ok(results)
    }

    fn fetch_offsets(
        inner: &Inner,
        group: &str,
        topics: Option<Vec<(String, Vec<u32>)>>,
    ) -> Vec<FetchedTopic> {
        let state = &inner.state;
        let topics = topics.unwrap_or_else(|| {
            state
                .groups_with_offsets()
                .remove(group)
                .unwrap_or_default()
                .into_iter()
                .map(|t| (t, Vec::new()))
                .collect()
        });
        topics
            .into_iter()
            .map(|(topic, partitions)| {
                let committed: BTreeMap<u32, u64> = state
                    .committed_offsets(group, &topic)
                    .into_iter()
                    .map(|o| (o.partition, o.offset))
                    .collect();
                let metadata = state.offset_metadata(group, &topic);
                let wanted: Vec<u32> = if partitions.is_empty() {
                    committed.keys().copied().collect()
                } else {
                    partitions
                };
                FetchedTopic {
                    partitions: wanted
                        .into_iter()
                        .map(|p| FetchedOffset {
                            partition: p,
                            offset: committed.get(&p).copied(),
                            metadata: metadata.get(&p).cloned(),
                        })
                        .collect(),
                    topic,
                }
            })
            .collect()
    }

    /// Every group: Kafka ones with members, native ones, and groups with
    /// only committed offsets (`Empty`).
    fn list_all(inner: &Inner) -> Vec<ListedGroup> {
        let mut out: BTreeMap<String, ListedGroup> = BTreeMap::new();
        for group in inner.state.groups_with_offsets().into_keys() {
            out.insert(
                group.clone(),
                ListedGroup {
                    group,
                    protocol_type: String::new(),
                    state: "Empty".into(),
                },
            );
        }
        for group in inner.groups.names().into_keys() {
            out.insert(
                group.clone(),
                ListedGroup {
                    group,
                    protocol_type: "yak".into(),
                    state: "Stable".into(),
                },
            );
        }
        for (group, protocol_type, state) in inner.classic.list() {
            out.insert(
                group.clone(),
                ListedGroup {
                    group,
                    protocol_type,
                    state: state.into(),
                },
            );
        }
        out.into_values().collect()
    }

    fn describe_one(inner: &Inner, group: &str) -> DescribedGroup {
        if let Some(d) = inner.classic.describe(group) {
            return d;
        }
        let (state, protocol_type) = if inner.groups.has_members(group) {
            ("Stable", "yak")
        } else if inner.state.groups_with_offsets().contains_key(group) {
            ("Empty", "")
        } else {
            ("Dead", "")
        };
        DescribedGroup {
            group: group.to_string(),
            state: state.into(),
            protocol_type: protocol_type.into(),
            protocol: String::new(),
            generation: 0,
            members: Vec::new(),
        }
    }

    /// Deletes a group without members: its committed offsets go.
    fn delete_group(inner: &mut Inner, group: &str) -> Result<(), ErrorBody> {
        if inner.groups.has_members(group) || inner.classic.has_members(group) {
            return Err(ErrorBody::new(
                ErrorCode::GroupNotEmpty,
                format!("group '{group}' has members"),
            ));
        }
        if !inner.state.groups_with_offsets().contains_key(group) {
            return Err(ErrorBody::new(
                ErrorCode::UnknownGroup,
                format!("group '{group}' does not exist"),
            ));
        }
        Self::commit(
            inner,
            MetaRecord::GroupDeleted {
                group: group.to_string(),
            },
        )?;
        tracing::info!(group = %group, "group deleted");
        Ok(())
    }
}
