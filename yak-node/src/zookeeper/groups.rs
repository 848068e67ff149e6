//! Consumer-group membership: who is in each group, the generation, the
//! rebalance protocol and the assignment. Soft state like broker sessions
//! (lost on a ZooKeeper restart; members then rejoin). Committed offsets are
//! not here: they are durable, in the metadata state. No I/O and no clock of
//! its own: callers pass `now` and the partition counts.
//!
//! Protocol (Kafka's eager rebalance, with the assignment computed here):
//! 1. A join, leave or expiry starts a rebalance; the generation stays.
//! 2. Members learn of it from their heartbeat answer: they stop reading,
//!    commit what they processed (still accepted: the generation is
//!    current), drop their partitions and rejoin.
//! 3. Once every member has rejoined, or a member's session timeout has
//!    passed since the rebalance began (laggards are removed), the group
//!    computes a new assignment and raises the generation.
//! 4. Commits name the generation; an older one is refused, so a member
//!    that missed a rebalance cannot overwrite its successor's offsets.
//!
//! KIP-848 members (Kafka's `group.protocol=consumer`, through the Kafka
//! front door) never rejoin: a membership change computes the new target
//! at once (a new generation), and each heartbeat reconciles the member
//! towards it ([`super::reconcile`]): revoke first, and a partition goes to
//! its new owner only once its old owner no longer holds it. Each has its
//! own epoch (the generation it has converged to); its commits name that.
//! A group's members are all native or all KIP-848.

use super::assign::{assign, Assignment, Subscription};
use crate::limits::{GROUPS_MAX, GROUP_MEMBERS_MAX};
use crate::protocol::{
    Assignor, ErrorBody, ErrorCode, MemberDescription, MemberStatus, PartitionOffset,
    TopicAssignment,
};
pub use kip848::ConsumerBeat;
use kip848::{assigned_of, check_kip848_commit, Kip848};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[path = "groups_kip848.rs"]
mod kip848;

#[derive(Debug, Clone)]
struct Member {
    client: String,
    /// Subscribed topics, the first as the member named it, no duplicates.
    topics: Vec<String>,
    session_timeout: Duration,
    last_seen: Instant,
    /// Has rejoined in the rebalance under way (or joined during it).
    rejoined: bool,
    /// A KIP-848 member's reconciliation; `None` for a native member.
    kip848: Option<Kip848>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Stable,
    Rebalancing { since: Instant },
}

#[derive(Debug, Clone)]
struct Group {
    generation: u32,
    phase: Phase,
    assignor: Assignor,
    members: BTreeMap<String, Member>,
    /// Member → topic → partitions in `generation`.
    assignment: Assignment,
    /// Topic → partition count the assignment was computed with.
    counts: BTreeMap<String, u32>,
}

/// A join request, as the handler passes it on.
#[derive(Debug, Clone)]
pub struct Join<'a> {
    /// Group name.
    pub group: &'a str,
    /// Empty on a first join.
    pub member_id: &'a str,
    /// The client's name.
    pub client: &'a str,
    /// Topics subscribed to (at least one; the first is the member's main one).
    pub topics: &'a [String],
    /// Assignor wanted.
    pub assignor: Assignor,
    /// Session timeout (already clamped).
    pub session_timeout: Duration,
    /// A KIP-848 member (reconciled by the coordinator, never rejoins).
    pub kip848: bool,
}

/// Something worth a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupEvent {
    /// A member joined.
    Joined {
        /// Group.
        group: String,
        /// Member.
        member: String,
    },
    /// A member left on its own.
    Left {
        /// Group.
        group: String,
        /// Member.
        member: String,
    },
    /// A member's session expired, or it did not rejoin a rebalance (or,
    /// a KIP-848 member, revoke partitions) in time.
    Expired {
        /// Group.
        group: String,
        /// Member.
        member: String,
    },
    /// A rebalance completed.
    Rebalanced {
        /// Group.
        group: String,
        /// New generation.
        generation: u32,
        /// Member → topic → partitions.
        assignment: Assignment,
    },
}

/// A group as `describe` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView {
    /// `stable`, `rebalancing` or `empty`.
    pub state: &'static str,
    /// Generation.
    pub generation: u32,
    /// Assignor.
    pub assignor: Assignor,
    /// Members with their partitions.
    pub members: Vec<MemberDescription>,
    /// Its members are KIP-848 ones (Kafka's consumer protocol).
    pub kip848: bool,
}

/// Every group with members.
#[derive(Debug, Default)]
pub struct Groups {
    groups: BTreeMap<String, Group>,
}

/// The topics as a member named them, duplicates dropped, order kept.
fn subscription(topics: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(topics.len());
    for t in topics {
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    out
}

/// The partitions of a member's first topic (the wire's single-topic field).
fn first_topic_share(member: Option<&Member>, assigned: &[TopicAssignment]) -> Vec<u32> {
    let Some(first) = member.and_then(|m| m.topics.first()) else {
        return Vec::new();
    };
    assigned
        .iter()
        .find(|a| &a.topic == first)
        .map(|a| a.partitions.clone())
        .unwrap_or_default()
}

fn unknown_member(group: &str, member: &str) -> ErrorBody {
    ErrorBody::new(
        ErrorCode::UnknownMember,
        format!("group '{group}' has no member '{member}'; rejoin"),
    )
}

impl Group {
    fn new(assignor: Assignor) -> Group {
        Group {
            generation: 0,
            phase: Phase::Stable,
            assignor,
            members: BTreeMap::new(),
            assignment: Assignment::new(),
            counts: BTreeMap::new(),
        }
    }

    fn start_rebalance(&mut self, now: Instant) {
        if self.phase == Phase::Stable {
            self.phase = Phase::Rebalancing { since: now };
            for m in self.members.values_mut() {
                // KIP-848 members do not rejoin: the coordinator reconciles them.
                m.rejoined = m.kip848.is_some();
            }
        }
    }

    /// Whether the group's members are KIP-848 ones (`None`: no members).
    fn is_kip848(&self) -> Option<bool> {
        self.members.values().next().map(|m| m.kip848.is_some())
    }

    fn status(&self, member_id: &str) -> MemberStatus {
        let rebalancing = matches!(self.phase, Phase::Rebalancing { .. });
        let member = self.members.get(member_id);
        if let Some((m, k)) = member.and_then(|m| Some((m, m.kip848.as_ref()?))) {
            let assigned = assigned_of(&k.delivered);
            return MemberStatus {
                member_id: member_id.to_string(),
                generation: k.epoch,
                rebalancing: false,
                partitions: first_topic_share(Some(m), &assigned),
                heartbeat_interval_ms: (m.session_timeout / 5).as_millis() as u64,
                assigned,
            };
        }
        let session = member.map_or(Duration::ZERO, |m| m.session_timeout);
        let assigned = if rebalancing {
            Vec::new()
        } else {
            self.assigned(member_id)
        };
        MemberStatus {
            member_id: member_id.to_string(),
            generation: self.generation,
            rebalancing,
            partitions: first_topic_share(member, &assigned),
            heartbeat_interval_ms: (session / 5).as_millis() as u64,
            assigned,
        }
    }

    /// A member's partitions per subscribed topic, in topic order.
    fn assigned(&self, member_id: &str) -> Vec<TopicAssignment> {
        self.assignment
            .get(member_id)
            .map(|ts| {
                ts.iter()
                    .map(|(topic, partitions)| TopicAssignment {
                        topic: topic.clone(),
                        partitions: partitions.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every topic some member subscribes to.
    fn topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self
            .members
            .values()
            .flat_map(|m| m.topics.iter().cloned())
            .collect();
        topics.sort_unstable();
        topics.dedup();
        topics
    }

    /// Completes a rebalance when every member has rejoined.
    fn try_complete(
        &mut self,
        name: &str,
        partitions_of: &dyn Fn(&str) -> Option<u32>,
    ) -> Option<GroupEvent> {
        if self.phase == Phase::Stable || !self.members.values().all(|m| m.rejoined) {
            return None;
        }
        let subs: Vec<Subscription> = self
            .members
            .iter()
            .map(|(id, m)| (id.clone(), m.topics.clone()))
            .collect();
        let count = |t: &str| partitions_of(t).unwrap_or(0);
        self.assignment = assign(self.assignor, &subs, count, &self.assignment);
        self.counts = self
            .topics()
            .into_iter()
            .map(|t| {
                let n = count(&t);
                (t, n)
            })
            .collect();
        self.generation += 1;
        self.phase = Phase::Stable;
        Some(GroupEvent::Rebalanced {
            group: name.to_string(),
            generation: self.generation,
            assignment: self.assignment.clone(),
        })
    }
}

impl Groups {
    /// A member joins (empty `member_id`, which then becomes `new_member_id`)
    /// or rejoins. Returns its status and what happened.
    pub fn join(
        &mut self,
        j: &Join<'_>,
        new_member_id: &str,
        now: Instant,
        partitions_of: &dyn Fn(&str) -> Option<u32>,
    ) -> Result<(MemberStatus, Vec<GroupEvent>), ErrorBody> {
        if !self.groups.contains_key(j.group) && self.groups.len() >= GROUPS_MAX {
            return Err(ErrorBody::new(
                ErrorCode::InvalidRequest,
                format!(
                    "ZooKeeper keeps at most {GROUPS_MAX} groups; '{}' is one too many",
                    j.group
                ),
            ));
        }
        let group = self
            .groups
            .entry(j.group.to_string())
            .or_insert_with(|| Group::new(j.assignor));
        if let Some(kip848) = group.is_kip848().filter(|k| *k != j.kip848) {
            let (is, asks) = if kip848 {
                (
                    "a Kafka consumer group (KIP-848 consumer protocol)",
                    "a YaK consumer",
                )
            } else {
                (
                    "a YaK consumer group",
                    "a Kafka consumer (KIP-848 consumer protocol)",
                )
            };
            return Err(ErrorBody::new(
                ErrorCode::InconsistentGroupProtocol,
                format!("group '{}' is {is}; {asks} cannot join it", j.group),
            ));
        }
        if group.members.is_empty() {
            group.assignor = j.assignor;
        } else if group.assignor != j.assignor {
            return Err(ErrorBody::new(
                ErrorCode::InconsistentGroupProtocol,
                format!(
                    "group '{}' uses the {} assignor; this member asked for {}",
                    j.group,
                    group.assignor.name(),
                    j.assignor.name()
                ),
            ));
        }
        let mut events = Vec::new();
        let id = if j.member_id.is_empty() {
            if group.members.len() >= GROUP_MEMBERS_MAX {
                return Err(ErrorBody::new(
                    ErrorCode::InvalidRequest,
                    format!(
                        "group '{}' has the most members allowed ({GROUP_MEMBERS_MAX})",
                        j.group
                    ),
                ));
            }
            group.start_rebalance(now);
            let member = Member {
                client: j.client.to_string(),
                topics: subscription(j.topics),
                session_timeout: j.session_timeout,
                last_seen: now,
                rejoined: true,
                kip848: j.kip848.then(Kip848::default),
            };
            group.members.insert(new_member_id.to_string(), member);
            events.push(GroupEvent::Joined {
                group: j.group.to_string(),
                member: new_member_id.to_string(),
            });
            new_member_id.to_string()
        } else {
            let topic_changed = {
                let m = group
                    .members
                    .get_mut(j.member_id)
                    .ok_or_else(|| unknown_member(j.group, j.member_id))?;
                m.last_seen = now;
                m.session_timeout = j.session_timeout;
                let topics = subscription(j.topics);
                let changed = m.topics != topics;
                m.topics = topics;
                changed
            };
            if topic_changed {
                group.start_rebalance(now);
            }
            if let Some(m) = group.members.get_mut(j.member_id) {
                if matches!(group.phase, Phase::Rebalancing { .. }) {
                    m.rejoined = true;
                }
            }
            j.member_id.to_string()
        };
        events.extend(group.try_complete(j.group, partitions_of));
        Ok((group.status(&id), events))
    }

    /// A member is alive; returns its status (a rebalance, a new generation).
    pub fn heartbeat(
        &mut self,
        group: &str,
        member_id: &str,
        now: Instant,
    ) -> Result<MemberStatus, ErrorBody> {
        let g = self
            .groups
            .get_mut(group)
            .ok_or_else(|| unknown_member(group, member_id))?;
        let m = g
            .members
            .get_mut(member_id)
            .ok_or_else(|| unknown_member(group, member_id))?;
        m.last_seen = now;
        Ok(g.status(member_id))
    }

    /// A member leaves; the others rebalance.
    pub fn leave(
        &mut self,
        group: &str,
        member_id: &str,
        now: Instant,
        partitions_of: &dyn Fn(&str) -> Option<u32>,
    ) -> Result<Vec<GroupEvent>, ErrorBody> {
        let g = self
            .groups
            .get_mut(group)
            .ok_or_else(|| unknown_member(group, member_id))?;
        if g.members.remove(member_id).is_none() {
            return Err(unknown_member(group, member_id));
        }
        g.start_rebalance(now);
        let mut events = vec![GroupEvent::Left {
            group: group.to_string(),
            member: member_id.to_string(),
        }];
        events.extend(g.try_complete(group, partitions_of));
        self.forget_empty();
        Ok(events)
    }

    /// Expires silent members, removes members that did not rejoin a
    /// rebalance within their session timeout, starts a rebalance when a
    /// topic's partition count changed, and completes rebalances.
    pub fn tick(
        &mut self,
        now: Instant,
        partitions_of: &dyn Fn(&str) -> Option<u32>,
    ) -> Vec<GroupEvent> {
        let mut events = Vec::new();
        for (name, g) in &mut self.groups {
            let since = match g.phase {
                Phase::Rebalancing { since } => Some(since),
                Phase::Stable => None,
            };
            let gone: Vec<String> = g
                .members
                .iter()
                .filter(|(_, m)| {
                    let silent = now.saturating_duration_since(m.last_seen) > m.session_timeout;
                    let laggard = !m.rejoined
                        && since
                            .is_some_and(|s| now.saturating_duration_since(s) > m.session_timeout);
                    // A KIP-848 member too slow to revoke.
                    let stuck = m.kip848.as_ref().is_some_and(|k| {
                        k.revoking_since
                            .is_some_and(|s| now.saturating_duration_since(s) > k.rebalance_timeout)
                    });
                    silent || laggard || stuck
                })
                .map(|(id, _)| id.clone())
                .collect();
            for id in gone {
                g.members.remove(&id);
                g.start_rebalance(now);
                events.push(GroupEvent::Expired {
                    group: name.clone(),
                    member: id,
                });
            }
            if g.phase == Phase::Stable
                && g.counts
                    .iter()
                    .any(|(t, n)| partitions_of(t).unwrap_or(0) != *n)
            {
                g.start_rebalance(now);
            }
            events.extend(g.try_complete(name, partitions_of));
        }
        self.forget_empty();
        events
    }

    fn forget_empty(&mut self) {
        self.groups.retain(|_, g| !g.members.is_empty());
    }

    /// Refuses a commit from a non-member, another generation, or for a
    /// partition (or topic) the member was not assigned in that generation.
    pub fn check_commit(
        &self,
        group: &str,
        member_id: &str,
        generation: u32,
        topic: &str,
        offsets: &[PartitionOffset],
    ) -> Result<(), ErrorBody> {
        let g = self
            .groups
            .get(group)
            .ok_or_else(|| unknown_member(group, member_id))?;
        let m = g
            .members
            .get(member_id)
            .ok_or_else(|| unknown_member(group, member_id))?;
        if let Some(k) = &m.kip848 {
            return check_kip848_commit(k, group, member_id, generation, topic, offsets);
        }
        if generation != g.generation {
            return Err(ErrorBody::new(
                ErrorCode::IllegalGeneration,
                format!(
                    "group '{group}' is at generation {}, not {generation}: commit refused",
                    g.generation
                ),
            ));
        }
        let owned: std::collections::HashSet<u32> = g
            .assignment
            .get(member_id)
            .and_then(|ts| ts.get(topic))
            .map(|v| v.iter().copied().collect())
            .unwrap_or_default();
        let subscribed = m.topics.iter().any(|t| t == topic);
        if let Some(o) = offsets
            .iter()
            .find(|o| !subscribed || !owned.contains(&o.partition))
        {
            return Err(ErrorBody::new(
                ErrorCode::IllegalGeneration,
                format!(
                    "{topic}-{} is not assigned to member '{member_id}' in generation {generation}",
                    o.partition
                ),
            ));
        }
        if offsets.len() > owned.len() {
            return Err(ErrorBody::new(
                ErrorCode::InvalidRequest,
                format!(
                    "{} offsets committed for {} assigned partitions",
                    offsets.len(),
                    owned.len()
                ),
            ));
        }
        Ok(())
    }

    /// Whether the group has members now.
    pub fn has_members(&self, group: &str) -> bool {
        self.groups
            .get(group)
            .is_some_and(|g| !g.members.is_empty())
    }

    /// The group's members and assignment, if it has members.
    pub fn view(&self, group: &str) -> Option<GroupView> {
        let g = self.groups.get(group)?;
        let rebalancing = matches!(g.phase, Phase::Rebalancing { .. });
        Some(GroupView {
            state: if rebalancing { "rebalancing" } else { "stable" },
            generation: g.generation,
            assignor: g.assignor,
            kip848: g.is_kip848() == Some(true),
            members: g
                .members
                .iter()
                .map(|(id, m)| {
                    let assigned = match &m.kip848 {
                        Some(k) => assigned_of(&k.delivered),
                        None if rebalancing => Vec::new(),
                        None => g.assigned(id),
                    };
                    MemberDescription {
                        member_id: id.clone(),
                        client: m.client.clone(),
                        topic: m.topics.first().cloned().unwrap_or_default(),
                        partitions: first_topic_share(Some(m), &assigned),
                        topics: m.topics.clone(),
                        assigned,
                    }
                })
                .collect(),
        })
    }

    /// Names of groups with members, with the topics they read.
    pub fn names(&self) -> BTreeMap<String, Vec<String>> {
        self.groups
            .iter()
            .map(|(name, g)| (name.clone(), g.topics()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const SESSION: Duration = Duration::from_millis(3000);

    pub(super) fn six(_: &str) -> Option<u32> {
        Some(6)
    }

    /// A subscription for the length of the test.
    pub(super) fn topics(names: &[&str]) -> &'static [String] {
        Box::leak(names.iter().map(|t| t.to_string()).collect())
    }

    pub(super) fn join<'a>(member_id: &'a str, assignor: Assignor) -> Join<'a> {
        Join {
            group: "g",
            member_id,
            client: "c",
            topics: topics(&["t"]),
            assignor,
            session_timeout: SESSION,
            kip848: false,
        }
    }

    /// Joins a new member and returns its id.
    pub(super) fn new_member(gs: &mut Groups, id: &str, now: Instant) -> MemberStatus {
        gs.join(&join("", Assignor::Range), id, now, &six)
            .expect("join")
            .0
    }

    /// Every member rejoins (as clients do on seeing `rebalancing`).
    fn rejoin_all(gs: &mut Groups, ids: &[&str], now: Instant) -> Vec<MemberStatus> {
        ids.iter()
            .map(|id| {
                gs.join(&join(id, Assignor::Range), "unused", now, &six)
                    .expect("rejoin")
                    .0
            })
            .collect()
    }

    #[test]
    fn given_most_groups_allowed_when_a_new_group_joins_should_refuse_it_but_not_a_known_one() {
        let t0 = Instant::now();
        let mut gs = Groups::default();
        let names: Vec<String> = (0..GROUPS_MAX).map(|i| format!("g{i}")).collect();
        for (i, name) in names.iter().enumerate() {
            let j = Join {
                group: name,
                ..join("", Assignor::Range)
            };
            gs.join(&j, &format!("m{i}"), t0, &six)
                .expect("room for it");
        }
        let extra = Join {
            group: "one-too-many",
            ..join("", Assignor::Range)
        };
        let err = gs
            .join(&extra, "x", t0, &six)
            .expect_err("one group too many");
        assert!(err.message.contains("at most"), "{}", err.message);
        let known = Join {
            group: "g0",
            ..join("", Assignor::Range)
        };
        gs.join(&known, "y", t0, &six)
            .expect("a known group still takes members");
    }

    #[test]
    fn given_first_member_when_joining_should_get_every_partition_at_generation_1() {
        let t0 = Instant::now();
        let mut gs = Groups::default();
        let s = new_member(&mut gs, "a", t0);
        assert_eq!(
            (s.generation, s.rebalancing, s.partitions),
            (1, false, (0..6).collect())
        );
        assert_eq!(s.heartbeat_interval_ms, 600);
    }

    #[test]
    fn given_three_members_when_all_rejoin_should_split_2_2_2_and_raise_generation() {
        let t0 = Instant::now();
        let mut gs = Groups::default();
        new_member(&mut gs, "a", t0);
        let b = new_member(&mut gs, "b", t0);
        assert!(b.rebalancing, "a must rejoin first");
        assert!(gs.heartbeat("g", "a", t0).expect("hb").rebalancing);
        let c = new_member(&mut gs, "c", t0);
        assert!(c.rebalancing);
        let st = rejoin_all(&mut gs, &["a"], t0);
        assert_eq!(st[0].generation, 2);
        let parts: Vec<Vec<u32>> = ["a", "b", "c"]
            .iter()
            .map(|m| gs.heartbeat("g", m, t0).expect("hb").partitions)
            .collect();
        assert_eq!(parts, vec![vec![0, 1], vec![2, 3], vec![4, 5]]);
    }

    #[test]
    fn given_silent_member_when_session_times_out_should_expire_and_reassign_its_partitions() {
        let t0 = Instant::now();
        let mut gs = Groups::default();
        new_member(&mut gs, "a", t0);
        new_member(&mut gs, "b", t0);
        rejoin_all(&mut gs, &["a"], t0);
        let t1 = t0 + Duration::from_millis(2000);
        gs.heartbeat("g", "a", t1).expect("a alive");
        assert!(
            gs.tick(t1, &six).is_empty(),
            "b is still within its session"
        );
        let t2 = t0 + SESSION + Duration::from_millis(1);
        let events = gs.tick(t2, &six);
        assert_eq!(
            events,
            vec![GroupEvent::Expired {
                group: "g".into(),
                member: "b".into()
            }]
        );
        assert!(
            gs.heartbeat("g", "b", t2).is_err(),
            "an expired member must rejoin"
        );
        let a = rejoin_all(&mut gs, &["a"], t2);
        assert_eq!(
            (a[0].generation, a[0].partitions.clone()),
            (3, (0..6).collect())
        );
    }

    #[test]
    fn given_member_that_never_rejoins_when_rebalance_times_out_should_remove_it() {
        let t0 = Instant::now();
        let mut gs = Groups::default();
        new_member(&mut gs, "a", t0);
        new_member(&mut gs, "b", t0 + Duration::from_millis(10));
        // a keeps heartbeating but never rejoins.
        let late = t0 + SESSION + Duration::from_millis(100);
        gs.heartbeat("g", "a", late).expect("hb");
        gs.heartbeat("g", "b", late).expect("hb");
        let events = gs.tick(late, &six);
        assert!(
            events.contains(&GroupEvent::Expired {
                group: "g".into(),
                member: "a".into()
            }),
            "{events:?}"
        );
        let b = gs.heartbeat("g", "b", late).expect("b");
        assert_eq!(b.partitions, (0..6).collect::<Vec<_>>());
    }

    #[test]
    fn given_rebalance_when_committing_should_accept_current_generation_and_fence_stale_ones() {
        let t0 = Instant::now();
        let mut gs = Groups::default();
        new_member(&mut gs, "a", t0);
        let po = |partition| {
            [PartitionOffset {
                partition,
                offset: 10,
            }]
        };
        gs.check_commit("g", "a", 1, "t", &po(5))
            .expect("owner at generation 1");
        new_member(&mut gs, "b", t0);
        // The rebalance is under way: a may still commit generation 1 offsets.
        gs.check_commit("g", "a", 1, "t", &po(5))
            .expect("commit before rejoin");
        assert_eq!(
            gs.check_commit("g", "b", 1, "t", &po(5))
                .expect_err("b owns nothing")
                .code,
            ErrorCode::IllegalGeneration
        );
        rejoin_all(&mut gs, &["a"], t0);
        assert_eq!(
            gs.check_commit("g", "a", 1, "t", &po(0))
                .expect_err("stale")
                .code,
            ErrorCode::IllegalGeneration
        );
        gs.check_commit("g", "a", 2, "t", &po(0))
            .expect("a owns 0 in generation 2");
        assert_eq!(
            gs.check_commit("g", "a", 2, "t", &po(5))
                .expect_err("b owns 5")
                .code,
            ErrorCode::IllegalGeneration
        );
        assert_eq!(
            gs.check_commit("g", "a", 2, "u", &po(0))
                .expect_err("other topic")
                .code,
            ErrorCode::IllegalGeneration
        );
        assert_eq!(
            gs.check_commit("g", "zz", 2, "t", &po(0))
                .expect_err("stranger")
                .code,
            ErrorCode::UnknownMember
        );
    }

    #[test]
    fn given_member_leaves_when_others_rejoin_should_take_its_partitions_and_empty_group_is_forgotten(
    ) {
        let t0 = Instant::now();
        let mut gs = Groups::default();
        new_member(&mut gs, "a", t0);
        new_member(&mut gs, "b", t0);
        rejoin_all(&mut gs, &["a"], t0);
        gs.leave("g", "b", t0, &six).expect("leave");
        assert!(gs.has_members("g"));
        let a = rejoin_all(&mut gs, &["a"], t0);
        assert_eq!(a[0].partitions, (0..6).collect::<Vec<_>>());
        gs.leave("g", "a", t0, &six).expect("leave");
        assert!(!gs.has_members("g") && gs.view("g").is_none());
        assert_eq!(
            gs.leave("g", "a", t0, &six).expect_err("gone").code,
            ErrorCode::UnknownMember
        );
    }

    #[test]
    fn given_other_assignor_when_joining_nonempty_group_should_refuse() {
        let t0 = Instant::now();
        let mut gs = Groups::default();
        new_member(&mut gs, "a", t0);
        let err = gs
            .join(&join("", Assignor::RoundRobin), "b", t0, &six)
            .expect_err("mismatch");
        assert_eq!(err.code, ErrorCode::InconsistentGroupProtocol);
        gs.leave("g", "a", t0, &six).expect("leave");
        let s = gs
            .join(&join("", Assignor::RoundRobin), "b", t0, &six)
            .expect("empty group adopts")
            .0;
        assert_eq!(gs.view("g").expect("view").assignor, Assignor::RoundRobin);
        assert_eq!(s.partitions.len(), 6);
    }

    #[test]
    fn given_partitions_added_when_ticking_should_rebalance() {
        let t0 = Instant::now();
        let mut gs = Groups::default();
        new_member(&mut gs, "a", t0);
        let eight = |_: &str| Some(8);
        gs.tick(t0, &eight);
        assert!(gs.heartbeat("g", "a", t0).expect("hb").rebalancing);
        let a = gs
            .join(&join("a", Assignor::Range), "x", t0, &eight)
            .expect("rejoin")
            .0;
        assert_eq!(a.partitions.len(), 8);
    }
    #[test]
    fn given_members_on_two_topics_when_rebalanced_should_give_each_topic_to_its_subscribers_only()
    {
        let t0 = Instant::now();
        let mut gs = Groups::default();
        let counts = |t: &str| Some(if t == "x" { 4 } else { 2 });
        let both = Join {
            topics: topics(&["x", "y"]),
            ..join("", Assignor::Range)
        };
        let only_y = Join {
            topics: topics(&["y"]),
            ..join("", Assignor::Range)
        };
        let a = gs.join(&both, "a", t0, &counts).expect("a").0;
        assert_eq!(a.partitions, vec![0, 1, 2, 3], "the first topic's share");
        assert_eq!(
            a.assigned,
            vec![
                TopicAssignment {
                    topic: "x".into(),
                    partitions: vec![0, 1, 2, 3]
                },
                TopicAssignment {
                    topic: "y".into(),
                    partitions: vec![0, 1]
                },
            ]
        );
        gs.join(&only_y, "b", t0, &counts).expect("b");
        let a = gs
            .join(
                &Join {
                    member_id: "a",
                    ..both.clone()
                },
                "unused",
                t0,
                &counts,
            )
            .expect("a rejoins")
            .0;
        let b = gs.heartbeat("g", "b", t0).expect("b");
        assert_eq!((a.generation, b.generation), (2, 2));
        let share = |s: &MemberStatus, t: &str| {
            s.assigned
                .iter()
                .find(|a| a.topic == t)
                .map(|a| a.partitions.clone())
        };
        assert_eq!(share(&a, "x"), Some(vec![0, 1, 2, 3]), "b does not read x");
        assert_eq!(
            (share(&a, "y"), share(&b, "y")),
            (Some(vec![0]), Some(vec![1]))
        );
        assert_eq!(share(&b, "x"), None);
        assert_eq!(b.partitions, vec![1]);
        gs.check_commit(
            "g",
            "a",
            2,
            "x",
            &[PartitionOffset {
                partition: 3,
                offset: 1,
            }],
        )
        .expect("a owns x-3");
        assert_eq!(
            gs.check_commit(
                "g",
                "b",
                2,
                "x",
                &[PartitionOffset {
                    partition: 0,
                    offset: 1
                }]
            )
            .expect_err("b does not subscribe to x")
            .code,
            ErrorCode::IllegalGeneration
        );
        let view = gs.view("g").expect("view");
        assert_eq!(
            view.members[0].topics,
            vec!["x".to_string(), "y".to_string()]
        );
        assert_eq!(gs.names()["g"], vec!["x".to_string(), "y".to_string()]);
    }

    #[test]
    fn given_member_changes_its_topics_when_rejoining_should_rebalance_the_group() {
        let t0 = Instant::now();
        let mut gs = Groups::default();
        new_member(&mut gs, "a", t0);
        let more = Join {
            topics: topics(&["t", "u", "t"]),
            ..join("a", Assignor::Range)
        };
        let a = gs.join(&more, "unused", t0, &six).expect("rejoin").0;
        assert_eq!(a.generation, 2, "a new subscription is a new generation");
        assert_eq!(a.assigned.len(), 2, "duplicates dropped: {:?}", a.assigned);
        let again = gs.join(&more, "unused", t0, &six).expect("same again").0;
        assert_eq!(again.generation, 2, "the same subscription changes nothing");
    }

    #[test]
    fn given_sticky_group_when_a_member_joins_should_keep_the_others_partitions() {
        let t0 = Instant::now();
        let mut gs = Groups::default();
        let sticky = |id| join(id, Assignor::Sticky);
        gs.join(&sticky(""), "a", t0, &six).expect("a");
        gs.join(&sticky(""), "b", t0, &six).expect("b");
        gs.join(&sticky("a"), "x", t0, &six).expect("a rejoins");
        let before = gs.heartbeat("g", "a", t0).expect("a").partitions;
        assert_eq!(before.len(), 3);
        gs.join(&sticky(""), "c", t0, &six).expect("c");
        gs.join(&sticky("a"), "x", t0, &six).expect("a rejoins");
        gs.join(&sticky("b"), "x", t0, &six).expect("b rejoins");
        let after = gs.heartbeat("g", "a", t0).expect("a").partitions;
        assert_eq!(after.len(), 2);
        assert!(
            after.iter().all(|p| before.contains(p)),
            "{before:?} → {after:?}"
        );
    }
}
