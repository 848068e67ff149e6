//! Kafka's classic group protocol as a pure state machine: members with
//! their protocol type and offered protocols, the generation, the leader,
//! and the leader's assignment handed out through SyncGroup. Soft state
//! like [`super::groups`] (lost on a ZooKeeper restart; members rejoin).
//! No I/O and no clock of its own: callers pass `now`. Never computes an
//! assignment (the leader member does) and never holds committed offsets
//! (the metadata state does).
//!
//! States, as Kafka's: `Empty` (no members; the group is then forgotten),
//! `PreparingRebalance` (waiting for every member to join again, or for the
//! rebalance timeout, after which the laggards are removed),
//! `CompletingRebalance` (generation raised, waiting for the leader's
//! SyncGroup, at most the rebalance timeout, after which the members that
//! never sent one are removed) and `Stable`. A join never waits here: it answers `Pending`
//! and the caller asks again (`poll`), so no connection is held.

use crate::limits::{
    CLASSIC_GROUP_BLOB_BYTES_MAX, CLASSIC_GROUP_INITIAL_REBALANCE_DELAY_MS,
    CLASSIC_GROUP_MEMBERS_MAX, CLASSIC_GROUP_NAME_BYTES_MAX, CLASSIC_GROUP_PROTOCOLS_MAX,
    GROUPS_MAX, GROUP_SESSION_TIMEOUT_MS_MAX, GROUP_SESSION_TIMEOUT_MS_MIN,
};
use crate::protocol::classic::{
    JoinAnswer, JoinRequest, JoinedMember, ProtocolOffer, SyncAnswer, SyncRequest,
};
use crate::protocol::{ErrorBody, ErrorCode};
use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

#[path = "classic_groups_view.rs"]
mod view;

#[derive(Debug, Clone)]
struct Member {
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    protocols: Vec<ProtocolOffer>,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    last_seen: Instant,
    /// Joined in the rebalance under way, or in the current generation.
    joined: bool,
    /// Sent a SyncGroup since the generation was raised.
    synced: bool,
    assignment: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Preparing {
        since: Instant,
        /// Started from an empty group: wait the initial delay for more members.
        from_empty: bool,
    },
    /// Waiting for the leader's assignment; members that have not asked
    /// for theirs a rebalance timeout after `since` are removed (Kafka's
    /// pending-sync expiry), so a leader that never syncs cannot hold its
    /// followers' SyncGroups.
    Completing {
        since: Instant,
    },
    Stable,
}

#[derive(Debug, Clone)]
struct Group {
    phase: Phase,
    generation: i32,
    protocol_type: String,
    protocol: String,
    leader: String,
    members: BTreeMap<String, Member>,
    /// Ids handed out with `MemberIdRequired`, not yet joined: id → deadline.
    pending_ids: BTreeMap<String, Instant>,
}

/// Something worth a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClassicEvent {
    /// A member joined.
    Joined {
        /// Group.
        group: String,
        /// Member.
        member: String,
    },
    /// A member left, expired, or missed a rebalance.
    Removed {
        /// Group.
        group: String,
        /// Member.
        member: String,
        /// `left`, `expired`, `missed rebalance` or `missed sync`.
        why: &'static str,
    },
    /// A rebalance completed.
    Rebalanced {
        /// Group.
        group: String,
        /// New generation.
        generation: i32,
        /// Leader.
        leader: String,
        /// Members.
        members: usize,
    },
}

/// Every classic group with members.
#[derive(Debug)]
pub struct ClassicGroups {
    groups: BTreeMap<String, Group>,
    /// Session timeouts a member may ask for, in ms: the cluster's range,
    /// the same one the native coordinator applies.
    session_ms: RangeInclusive<u64>,
}

impl Default for ClassicGroups {
    fn default() -> Self {
        ClassicGroups::with_session_timeouts(
            Duration::from_millis(GROUP_SESSION_TIMEOUT_MS_MIN),
            Duration::from_millis(GROUP_SESSION_TIMEOUT_MS_MAX),
        )
    }
}

fn err(code: ErrorCode, message: impl Into<String>) -> ErrorBody {
    ErrorBody::new(code, message)
}

fn unknown_member(group: &str, member: &str) -> ErrorBody {
    err(
        ErrorCode::UnknownMember,
        format!("group '{group}' has no member '{member}'; rejoin"),
    )
}

/// Refuses a join whose sizes or timeouts are out of bounds.
fn check_join(j: &JoinRequest, session_ms: &RangeInclusive<u64>) -> Result<(), ErrorBody> {
    let session = j.session_timeout_ms;
    if !session_ms.contains(&session) {
        return Err(err(
            ErrorCode::InvalidSessionTimeout,
            format!(
                "session timeout {session} ms is outside the cluster's allowed {} to {} ms",
                session_ms.start(),
                session_ms.end()
            ),
        ));
    }
    if j.protocol_type.is_empty() || j.protocols.is_empty() {
        return Err(err(
            ErrorCode::InconsistentGroupProtocol,
            "a join needs a protocol type and at least one protocol",
        ));
    }
    let long_name = |s: &str| s.len() > CLASSIC_GROUP_NAME_BYTES_MAX;
    if j.protocols.len() > CLASSIC_GROUP_PROTOCOLS_MAX
        || long_name(&j.protocol_type)
        || j.instance_id.as_deref().is_some_and(long_name)
        || j.protocols
            .iter()
            .any(|p| long_name(&p.name) || p.metadata.len() > CLASSIC_GROUP_BLOB_BYTES_MAX)
    {
        return Err(err(
            ErrorCode::InvalidRequest,
            format!("a join offers at most {CLASSIC_GROUP_PROTOCOLS_MAX} protocols, names of at most {CLASSIC_GROUP_NAME_BYTES_MAX} bytes and metadata of at most {CLASSIC_GROUP_BLOB_BYTES_MAX} bytes"),
        ));
    }
    Ok(())
}

impl Member {
    fn offers(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|p| p.name == protocol)
    }

    fn same_protocols(&self, j: &JoinRequest) -> bool {
        self.protocols == j.protocols
    }
}

impl Group {
    fn new(protocol_type: &str) -> Group {
        Group {
            phase: Phase::Stable,
            generation: 0,
            protocol_type: protocol_type.to_string(),
            protocol: String::new(),
            leader: String::new(),
            members: BTreeMap::new(),
            pending_ids: BTreeMap::new(),
        }
    }

    fn state_name(&self) -> &'static str {
        match self.phase {
            _ if self.members.is_empty() => "Empty",
            Phase::Preparing { .. } => "PreparingRebalance",
            Phase::Completing { .. } => "CompletingRebalance",
            Phase::Stable => "Stable",
        }
    }

    fn start_rebalance(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Preparing { .. }) {
            let from_empty = self.members.is_empty();
            self.phase = Phase::Preparing {
                since: now,
                from_empty,
            };
            for m in self.members.values_mut() {
                m.joined = false;
                m.assignment.clear();
            }
        }
    }

    /// Whether every member's offers share a protocol with `offers`.
    fn has_common_protocol(&self, offers: &[ProtocolOffer], except: &str) -> bool {
        offers.iter().any(|p| {
            self.members
                .iter()
                .filter(|(id, _)| id.as_str() != except)
                .all(|(_, m)| m.offers(&p.name))
        })
    }

    /// The protocol most members prefer among those all of them offer.
    fn choose_protocol(&self) -> String {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(p) = m
                .protocols
                .iter()
                .find(|p| self.members.values().all(|other| other.offers(&p.name)))
            {
                *votes.entry(p.name.as_str()).or_default() += 1;
            }
        }
        votes
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map(|(name, _)| name.to_string())
            .unwrap_or_default()
    }

    /// Completes the rebalance under way when every member has joined
    /// (after the initial delay for a group that was empty).
    fn try_complete(&mut self, name: &str, now: Instant) -> Option<ClassicEvent> {
        let Phase::Preparing { since, from_empty } = self.phase else {
            return None;
        };
        let delay = Duration::from_millis(CLASSIC_GROUP_INITIAL_REBALANCE_DELAY_MS);
        if !self.members.values().all(|m| m.joined)
            || (from_empty && now.saturating_duration_since(since) < delay)
        {
            return None;
        }
        self.generation += 1;
        self.protocol = self.choose_protocol();
        if !self.members.contains_key(&self.leader) {
            self.leader = self.members.keys().next().cloned().unwrap_or_default();
        }
        self.phase = Phase::Completing { since: now };
        for m in self.members.values_mut() {
            m.synced = false;
        }
        Some(ClassicEvent::Rebalanced {
            group: name.to_string(),
            generation: self.generation,
            leader: self.leader.clone(),
            members: self.members.len(),
        })
    }

    fn join_done(&self, member_id: &str) -> JoinAnswer {
        let members = if member_id == self.leader {
            self.members
                .iter()
                .map(|(id, m)| JoinedMember {
                    member_id: id.clone(),
                    instance_id: m.instance_id.clone(),
                    metadata: m
                        .protocols
                        .iter()
                        .find(|p| p.name == self.protocol)
                        .map(|p| p.metadata.clone())
                        .unwrap_or_default(),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinAnswer::Done {
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone(),
            member_id: member_id.to_string(),
            members,
            skip_assignment: false,
        }
    }

    /// The answer to a member that has joined: pending or done.
    fn join_answer(&self, member_id: &str) -> JoinAnswer {
        match self.phase {
            Phase::Preparing { .. } => JoinAnswer::Pending {
                member_id: member_id.to_string(),
            },
            Phase::Completing { .. } | Phase::Stable => self.join_done(member_id),
        }
    }

    fn remove(&mut self, name: &str, id: &str, why: &'static str, now: Instant) -> ClassicEvent {
        self.members.remove(id);
        self.start_rebalance(now);
        ClassicEvent::Removed {
            group: name.to_string(),
            member: id.to_string(),
            why,
        }
    }

    fn member(&self, name: &str, id: &str) -> Result<&Member, ErrorBody> {
        self.members.get(id).ok_or_else(|| unknown_member(name, id))
    }

    fn check_generation(&self, name: &str, generation: i32) -> Result<(), ErrorBody> {
        if generation != self.generation {
            return Err(err(
                ErrorCode::IllegalGeneration,
                format!(
                    "group '{name}' is at generation {}, not {generation}",
                    self.generation
                ),
            ));
        }
        Ok(())
    }
}

impl ClassicGroups {
    /// No groups; members may ask for session timeouts in `min..=max`.
    pub fn with_session_timeouts(min: Duration, max: Duration) -> ClassicGroups {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        ClassicGroups {
            groups: BTreeMap::new(),
            session_ms: ms(min)..=ms(max),
        }
    }

    /// A join, a rejoin, or a poll of a join (`j.poll`). `fresh_id` is the
    /// id a new member gets. Never waits: a rebalance not yet complete is
    /// answered `Pending`.
    pub fn join(
        &mut self,
        j: &JoinRequest,
        fresh_id: &str,
        now: Instant,
    ) -> Result<(JoinAnswer, Vec<ClassicEvent>), ErrorBody> {
        check_join(j, &self.session_ms)?;
        if !self.groups.contains_key(&j.group) && self.groups.len() >= GROUPS_MAX {
            return Err(err(
                ErrorCode::InvalidRequest,
                format!("ZooKeeper keeps at most {GROUPS_MAX} groups"),
            ));
        }
        let name = j.group.as_str();
        let g = self
            .groups
            .entry(j.group.clone())
            .or_insert_with(|| Group::new(&j.protocol_type));
        if g.members.is_empty() {
            g.protocol_type = j.protocol_type.clone();
        }
        if g.protocol_type != j.protocol_type || !g.has_common_protocol(&j.protocols, &j.member_id)
        {
            return Err(err(
                ErrorCode::InconsistentGroupProtocol,
                format!(
                    "group '{name}' is a '{}' group whose members offer none of this member's protocols",
                    g.protocol_type
                ),
            ));
        }
        let mut events = Vec::new();
        let static_owner = j.instance_id.as_ref().and_then(|inst| {
            g.members
                .iter()
                .find(|(_, m)| m.instance_id.as_ref() == Some(inst))
                .map(|(id, _)| id.clone())
        });
        let known = g.members.contains_key(&j.member_id);
        let id = if known {
            j.member_id.clone()
        } else if j.poll {
            return Err(unknown_member(name, &j.member_id));
        } else if let (Some(old), true) = (static_owner, j.member_id.is_empty()) {
            // Static membership: the instance comes back under a new id and
            // keeps its place (and assignment) without a rebalance, unless
            // it led the group or changed what it offers.
            let mut m = g
                .members
                .remove(&old)
                .ok_or_else(|| unknown_member(name, &old))?;
            let same = m.same_protocols(j);
            m.last_seen = now;
            m.client_id = j.client_id.clone();
            m.protocols = j.protocols.clone();
            g.members.insert(fresh_id.to_string(), m);
            let led = g.leader == old;
            if led {
                g.leader = fresh_id.to_string();
            }
            if same && led && j.can_skip_assignment && g.phase == Phase::Stable {
                // KIP-814: the leader learns the members again but keeps
                // the group's assignment; no rebalance.
                if let JoinAnswer::Done {
                    generation,
                    protocol_type,
                    protocol_name,
                    leader,
                    member_id,
                    members,
                    ..
                } = g.join_done(fresh_id)
                {
                    let done = JoinAnswer::Done {
                        generation,
                        protocol_type,
                        protocol_name,
                        leader,
                        member_id,
                        members,
                        skip_assignment: true,
                    };
                    return Ok((done, events));
                }
            }
            if led || !same || matches!(g.phase, Phase::Preparing { .. }) {
                g.start_rebalance(now);
            }
            fresh_id.to_string()
        } else {
            if j.member_id.is_empty() && j.require_member_id {
                if g.members.len() + g.pending_ids.len() >= CLASSIC_GROUP_MEMBERS_MAX {
                    return Err(group_full(name));
                }
                let deadline = now + Duration::from_millis(j.session_timeout_ms);
                g.pending_ids.insert(fresh_id.to_string(), deadline);
                return Ok((
                    JoinAnswer::MemberIdRequired {
                        member_id: fresh_id.to_string(),
                    },
                    events,
                ));
            }
            let id = if j.member_id.is_empty() {
                fresh_id.to_string()
            } else if g.pending_ids.remove(&j.member_id).is_some() {
                j.member_id.clone()
            } else {
                return Err(unknown_member(name, &j.member_id));
            };
            if g.members.len() >= CLASSIC_GROUP_MEMBERS_MAX {
                return Err(group_full(name));
            }
            g.start_rebalance(now);
            g.members.insert(id.clone(), new_member(j, now));
            events.push(ClassicEvent::Joined {
                group: name.to_string(),
                member: id.clone(),
            });
            id
        };
        let m = g
            .members
            .get_mut(&id)
            .ok_or_else(|| unknown_member(name, &id))?;
        m.last_seen = now;
        m.session_timeout = Duration::from_millis(j.session_timeout_ms);
        m.rebalance_timeout = Duration::from_millis(j.rebalance_timeout_ms);
        let same = m.same_protocols(j);
        m.protocols = j.protocols.clone();
        let settled = matches!(g.phase, Phase::Completing { .. } | Phase::Stable);
        let is_leader = g.leader == id;
        // Kafka: a settled group answers a member's repeated join with the
        // current generation; the leader's join (or new protocols) rebalances.
        if known && settled && !j.poll && (!same || (is_leader && g.phase == Phase::Stable)) {
            g.start_rebalance(now);
        }
        if let Some(m) = g.members.get_mut(&id) {
            m.joined |= matches!(g.phase, Phase::Preparing { .. }) || !known;
        }
        events.extend(g.try_complete(name, now));
        Ok((g.join_answer(&id), events))
    }

    /// SyncGroup: the leader's assignment is stored (the group is then
    /// stable); every member gets its own, or `Pending` until the leader's.
    pub fn sync(&mut self, s: &SyncRequest, now: Instant) -> Result<SyncAnswer, ErrorBody> {
        let name = s.group.as_str();
        let g = self
            .groups
            .get_mut(name)
            .ok_or_else(|| unknown_member(name, &s.member_id))?;
        g.member(name, &s.member_id)?;
        g.check_generation(name, s.generation)?;
        let mismatch =
            |want: &Option<String>, have: &str| want.as_deref().is_some_and(|w| w != have);
        if mismatch(&s.protocol_type, &g.protocol_type) || mismatch(&s.protocol_name, &g.protocol) {
            return Err(err(
                ErrorCode::InconsistentGroupProtocol,
                format!("group '{name}' uses {}/{}", g.protocol_type, g.protocol),
            ));
        }
        if let Some(m) = g.members.get_mut(&s.member_id) {
            m.last_seen = now;
            m.synced = true;
        }
        match g.phase {
            Phase::Preparing { .. } => Err(err(
                ErrorCode::RebalanceInProgress,
                format!("group '{name}' is rebalancing; rejoin"),
            )),
            Phase::Completing { .. } if s.member_id == g.leader => {
                if let Some(a) = s
                    .assignments
                    .iter()
                    .find(|a| a.assignment.len() > CLASSIC_GROUP_BLOB_BYTES_MAX)
                {
                    return Err(err(
                        ErrorCode::InvalidRequest,
                        format!(
                            "the assignment of '{}' has {} bytes, more than {CLASSIC_GROUP_BLOB_BYTES_MAX}",
                            a.member_id,
                            a.assignment.len()
                        ),
                    ));
                }
                for a in &s.assignments {
                    if let Some(m) = g.members.get_mut(&a.member_id) {
                        m.assignment = a.assignment.clone();
                    }
                }
                g.phase = Phase::Stable;
                Ok(sync_done(g, &s.member_id))
            }
            Phase::Completing { .. } => Ok(SyncAnswer::Pending),
            Phase::Stable => Ok(sync_done(g, &s.member_id)),
        }
    }

    /// A member is alive; `RebalanceInProgress` tells it to rejoin.
    pub fn heartbeat(
        &mut self,
        group: &str,
        member_id: &str,
        generation: i32,
        now: Instant,
    ) -> Result<(), ErrorBody> {
        let g = self
            .groups
            .get_mut(group)
            .ok_or_else(|| unknown_member(group, member_id))?;
        g.member(group, member_id)?;
        g.check_generation(group, generation)?;
        if let Some(m) = g.members.get_mut(member_id) {
            m.last_seen = now;
        }
        match g.phase {
            Phase::Preparing { .. } => Err(err(
                ErrorCode::RebalanceInProgress,
                format!("group '{group}' is rebalancing; rejoin"),
            )),
            Phase::Completing { .. } | Phase::Stable => Ok(()),
        }
    }

    /// Members leave; per member, `None` or why not.
    pub fn leave(
        &mut self,
        group: &str,
        member_ids: &[String],
        now: Instant,
    ) -> (Vec<Option<ErrorCode>>, Vec<ClassicEvent>) {
        let mut events = Vec::new();
        let Some(g) = self.groups.get_mut(group) else {
            return (
                vec![Some(ErrorCode::UnknownMember); member_ids.len()],
                events,
            );
        };
        let results = member_ids
            .iter()
            .map(|id| {
                if g.members.contains_key(id) {
                    events.push(g.remove(group, id, "left", now));
                    None
                } else {
                    Some(ErrorCode::UnknownMember)
                }
            })
            .collect();
        events.extend(g.try_complete(group, now));
        self.forget_empty();
        (results, events)
    }

    /// Expires silent members, removes those that missed a rebalance past
    /// its timeout, forgets unused member ids, and completes rebalances.
    pub fn tick(&mut self, now: Instant) -> Vec<ClassicEvent> {
        let mut events = Vec::new();
        for (name, g) in &mut self.groups {
            g.pending_ids.retain(|_, deadline| *deadline > now);
            let silent: Vec<String> = g
                .members
                .iter()
                .filter(|(_, m)| now.saturating_duration_since(m.last_seen) > m.session_timeout)
                .map(|(id, _)| id.clone())
                .collect();
            for id in silent {
                events.push(g.remove(name, &id, "expired", now));
            }
            let timeout = g
                .members
                .values()
                .map(|m| m.rebalance_timeout)
                .max()
                .unwrap_or_default();
            // Who is late: in a join, those that did not rejoin; waiting
            // for the assignment, those that never asked for theirs.
            let (since, why, late): (_, _, fn(&Member) -> bool) = match g.phase {
                Phase::Preparing { since, .. } => (since, "missed rebalance", |m| !m.joined),
                Phase::Completing { since } => (since, "missed sync", |m| !m.synced),
                Phase::Stable => (now, "", |_| false),
            };
            if now.saturating_duration_since(since) > timeout {
                let late: Vec<String> = g
                    .members
                    .iter()
                    .filter(|(_, m)| late(m))
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in late {
                    events.push(g.remove(name, &id, why, now));
                }
            }
            events.extend(g.try_complete(name, now));
        }
        self.forget_empty();
        events
    }

    fn forget_empty(&mut self) {
        self.groups
            .retain(|_, g| !g.members.is_empty() || !g.pending_ids.is_empty());
    }
}

fn group_full(group: &str) -> ErrorBody {
    err(
        ErrorCode::GroupMaxSizeReached,
        format!("group '{group}' has the most members allowed ({CLASSIC_GROUP_MEMBERS_MAX})"),
    )
}

fn new_member(j: &JoinRequest, now: Instant) -> Member {
    Member {
        instance_id: j.instance_id.clone(),
        client_id: j.client_id.clone(),
        client_host: j.client_host.clone(),
        protocols: j.protocols.clone(),
        session_timeout: Duration::from_millis(j.session_timeout_ms),
        rebalance_timeout: Duration::from_millis(j.rebalance_timeout_ms),
        last_seen: now,
        joined: true,
        synced: false,
        assignment: Vec::new(),
    }
}

fn sync_done(g: &Group, member_id: &str) -> SyncAnswer {
    SyncAnswer::Done {
        protocol_type: g.protocol_type.clone(),
        protocol_name: g.protocol.clone(),
        assignment: g
            .members
            .get(member_id)
            .map(|m| m.assignment.clone())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::classic::MemberAssignment;

    const SESSION_MS: u64 = 3000;
    const REBALANCE_MS: u64 = 5000;
    const DELAY: Duration = Duration::from_millis(CLASSIC_GROUP_INITIAL_REBALANCE_DELAY_MS + 1);

    fn offer(name: &str) -> ProtocolOffer {
        ProtocolOffer {
            name: name.into(),
            metadata: format!("sub-{name}").into_bytes(),
        }
    }

    fn req(member_id: &str) -> JoinRequest {
        JoinRequest {
            group: "g".into(),
            member_id: member_id.into(),
            instance_id: None,
            client_id: "c".into(),
            client_host: "127.0.0.1".into(),
            protocol_type: "consumer".into(),
            protocols: vec![offer("range"), offer("roundrobin")],
            session_timeout_ms: SESSION_MS,
            rebalance_timeout_ms: REBALANCE_MS,
            require_member_id: false,
            poll: false,
            can_skip_assignment: false,
        }
    }

    fn poll(member_id: &str) -> JoinRequest {
        JoinRequest {
            poll: true,
            ..req(member_id)
        }
    }

    fn join(gs: &mut ClassicGroups, r: &JoinRequest, fresh: &str, now: Instant) -> JoinAnswer {
        gs.join(r, fresh, now).expect("join").0
    }

    fn sync(member: &str, generation: i32, assignments: Vec<MemberAssignment>) -> SyncRequest {
        SyncRequest {
            group: "g".into(),
            generation,
            member_id: member.into(),
            protocol_type: None,
            protocol_name: None,
            assignments,
        }
    }

    fn assign(member: &str, blob: &str) -> MemberAssignment {
        MemberAssignment {
            member_id: member.into(),
            assignment: blob.as_bytes().to_vec(),
        }
    }

    fn code<T: std::fmt::Debug>(r: Result<T, ErrorBody>) -> ErrorCode {
        r.expect_err("refused").code
    }

    /// a and b join an empty group together and settle at generation 1.
    fn settled_pair(gs: &mut ClassicGroups, t0: Instant) -> Instant {
        assert!(matches!(
            join(gs, &req(""), "a", t0),
            JoinAnswer::Pending { .. }
        ));
        assert!(matches!(
            join(gs, &req(""), "b", t0),
            JoinAnswer::Pending { .. }
        ));
        let t1 = t0 + DELAY;
        let JoinAnswer::Done {
            generation,
            leader,
            members,
            ..
        } = join(gs, &poll("a"), "x", t1)
        else {
            panic!("complete after the initial delay")
        };
        assert_eq!((generation, leader.as_str(), members.len()), (1, "a", 2));
        let lead = gs
            .sync(&sync("a", 1, vec![assign("a", "A"), assign("b", "B")]), t1)
            .expect("leader sync");
        assert!(matches!(lead, SyncAnswer::Done { assignment, .. } if assignment == b"A"));
        t1
    }

    #[test]
    fn given_two_members_when_leader_syncs_should_hand_each_its_assignment() {
        let t0 = Instant::now();
        let mut gs = ClassicGroups::default();
        assert!(matches!(
            join(&mut gs, &req(""), "a", t0),
            JoinAnswer::Pending { .. }
        ));
        assert!(matches!(
            join(&mut gs, &req(""), "b", t0),
            JoinAnswer::Pending { .. }
        ));
        assert!(
            matches!(
                join(&mut gs, &poll("a"), "x", t0),
                JoinAnswer::Pending { .. }
            ),
            "an empty group waits the initial delay for more members"
        );
        let t1 = t0 + DELAY;
        let JoinAnswer::Done {
            generation,
            protocol_name,
            leader,
            members,
            ..
        } = join(&mut gs, &poll("b"), "x", t1)
        else {
            panic!("done")
        };
        assert_eq!(
            (generation, protocol_name.as_str(), leader.as_str()),
            (1, "range", "a")
        );
        assert!(members.is_empty(), "only the leader gets the subscriptions");
        assert_eq!(
            gs.sync(&sync("b", 1, vec![]), t1).expect("follower"),
            SyncAnswer::Pending
        );
        assert_eq!(
            gs.heartbeat("g", "b", 1, t1),
            Ok(()),
            "completing is not preparing"
        );
        gs.sync(&sync("a", 1, vec![assign("a", "A"), assign("b", "B")]), t1)
            .expect("leader");
        let b = gs.sync(&sync("b", 1, vec![]), t1).expect("follower");
        assert!(matches!(b, SyncAnswer::Done { assignment, .. } if assignment == b"B"));
        let d = gs.describe("g").expect("described");
        assert_eq!((d.state.as_str(), d.members.len()), ("Stable", 2));
        assert_eq!(d.members[1].metadata, b"sub-range");
    }

    #[test]
    fn given_stable_group_when_member_joins_should_tell_others_to_rejoin_and_raise_generation() {
        let t0 = Instant::now();
        let mut gs = ClassicGroups::default();
        let t1 = settled_pair(&mut gs, t0);
        assert!(matches!(
            join(&mut gs, &req(""), "c", t1),
            JoinAnswer::Pending { .. }
        ));
        assert_eq!(
            code(gs.heartbeat("g", "a", 1, t1)),
            ErrorCode::RebalanceInProgress
        );
        assert_eq!(
            code(gs.sync(&sync("b", 1, vec![]), t1)),
            ErrorCode::RebalanceInProgress
        );
        assert!(matches!(
            join(&mut gs, &req("a"), "x", t1),
            JoinAnswer::Pending { .. }
        ));
        let JoinAnswer::Done {
            generation,
            members,
            ..
        } = join(&mut gs, &req("b"), "x", t1)
        else {
            panic!("every member rejoined: no initial delay for a group with members")
        };
        assert_eq!((generation, members.len()), (2, 0));
        let JoinAnswer::Done { members, .. } = join(&mut gs, &poll("a"), "x", t1) else {
            panic!("leader")
        };
        assert_eq!(members.len(), 3);
        assert_eq!(
            code(gs.heartbeat("g", "a", 1, t1)),
            ErrorCode::IllegalGeneration
        );
        assert_eq!(
            code(gs.check_commit("g", "a", 1)),
            ErrorCode::IllegalGeneration
        );
    }

    #[test]
    fn given_member_that_never_rejoins_when_rebalance_times_out_should_remove_it() {
        let t0 = Instant::now();
        let mut gs = ClassicGroups::default();
        let t1 = settled_pair(&mut gs, t0);
        gs.leave("g", &["b".to_string()], t1);
        assert_eq!(
            code(gs.heartbeat("g", "b", 1, t1)),
            ErrorCode::UnknownMember
        );
        let JoinAnswer::Done { generation, .. } = join(&mut gs, &req("a"), "x", t1) else {
            panic!("alone")
        };
        assert_eq!(generation, 2);
        join(&mut gs, &req(""), "c", t1);
        // a keeps heartbeating but never rejoins.
        let late = t1 + Duration::from_millis(REBALANCE_MS + 1);
        let _ = gs.heartbeat("g", "a", 2, late - Duration::from_millis(10));
        join(&mut gs, &poll("c"), "x", late - Duration::from_millis(10));
        let events = gs.tick(late);
        assert!(
            events.contains(&ClassicEvent::Removed {
                group: "g".into(),
                member: "a".into(),
                why: "missed rebalance"
            }),
            "{events:?}"
        );
        let JoinAnswer::Done {
            leader, generation, ..
        } = join(&mut gs, &poll("c"), "x", late)
        else {
            panic!("c alone")
        };
        assert_eq!((leader.as_str(), generation), ("c", 3));
    }

    #[test]
    fn given_cluster_session_timeout_range_when_a_member_asks_outside_it_should_refuse_the_join() {
        let mut gs = ClassicGroups::with_session_timeouts(
            Duration::from_millis(SESSION_MS + 1),
            Duration::from_millis(SESSION_MS * 2),
        );
        let t0 = Instant::now();
        assert_eq!(
            code(gs.join(&req(""), "a", t0)),
            ErrorCode::InvalidSessionTimeout,
            "within the built-in limits, below the cluster's minimum"
        );
        let mut ok = req("");
        ok.session_timeout_ms = SESSION_MS * 2;
        assert!(gs.join(&ok, "a", t0).is_ok());
    }

    #[test]
    fn given_silent_member_when_session_times_out_should_expire_it_and_forget_the_empty_group() {
        let t0 = Instant::now();
        let mut gs = ClassicGroups::default();
        let t1 = settled_pair(&mut gs, t0);
        let t2 = t1 + Duration::from_millis(SESSION_MS / 2);
        gs.heartbeat("g", "a", 1, t2).expect("a alive");
        let t3 = t1 + Duration::from_millis(SESSION_MS + 1);
        let events = gs.tick(t3);
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(gs.has_members("g"));
        let t4 = t2 + Duration::from_millis(SESSION_MS + 1);
        gs.tick(t4);
        assert!(!gs.has_members("g") && gs.describe("g").is_none() && gs.list().is_empty());
    }

    #[test]
    fn given_v4_first_join_when_joining_should_require_the_member_id_then_accept_it() {
        let t0 = Instant::now();
        let mut gs = ClassicGroups::default();
        let first = JoinRequest {
            require_member_id: true,
            ..req("")
        };
        assert_eq!(
            join(&mut gs, &first, "m1", t0),
            JoinAnswer::MemberIdRequired {
                member_id: "m1".into()
            }
        );
        assert_eq!(
            code(gs.join(&req("forged"), "x", t0)),
            ErrorCode::UnknownMember
        );
        assert!(matches!(
            join(&mut gs, &req("m1"), "x", t0),
            JoinAnswer::Pending { .. }
        ));
    }

    #[test]
    fn given_bad_joins_when_joining_should_answer_kafkas_codes_and_change_nothing() {
        let t0 = Instant::now();
        let mut gs = ClassicGroups::default();
        let short = JoinRequest {
            session_timeout_ms: GROUP_SESSION_TIMEOUT_MS_MIN - 1,
            ..req("")
        };
        assert_eq!(
            code(gs.join(&short, "a", t0)),
            ErrorCode::InvalidSessionTimeout
        );
        let huge = JoinRequest {
            protocols: vec![ProtocolOffer {
                name: "range".into(),
                metadata: vec![0; CLASSIC_GROUP_BLOB_BYTES_MAX + 1],
            }],
            ..req("")
        };
        assert_eq!(code(gs.join(&huge, "a", t0)), ErrorCode::InvalidRequest);
        assert!(gs.list().is_empty());
        join(&mut gs, &req(""), "a", t0);
        let other_type = JoinRequest {
            protocol_type: "connect".into(),
            ..req("")
        };
        assert_eq!(
            code(gs.join(&other_type, "b", t0)),
            ErrorCode::InconsistentGroupProtocol
        );
        let other_assignor = JoinRequest {
            protocols: vec![offer("cooperative-sticky")],
            ..req("")
        };
        assert_eq!(
            code(gs.join(&other_assignor, "b", t0)),
            ErrorCode::InconsistentGroupProtocol
        );
        assert_eq!(gs.describe("g").expect("g").members.len(), 1);
    }

    #[test]
    fn given_oversized_assignment_when_leader_syncs_should_refuse_and_stay_completing() {
        let t0 = Instant::now();
        let mut gs = ClassicGroups::default();
        join(&mut gs, &req(""), "a", t0);
        let t1 = t0 + DELAY;
        join(&mut gs, &poll("a"), "x", t1);
        let big = MemberAssignment {
            member_id: "a".into(),
            assignment: vec![0; CLASSIC_GROUP_BLOB_BYTES_MAX + 1],
        };
        assert_eq!(
            code(gs.sync(&sync("a", 1, vec![big]), t1)),
            ErrorCode::InvalidRequest
        );
        assert_eq!(gs.describe("g").expect("g").state, "CompletingRebalance");
        assert_eq!(
            code(gs.sync(&sync("a", 7, vec![]), t1)),
            ErrorCode::IllegalGeneration
        );
        assert_eq!(
            code(gs.sync(&sync("zz", 1, vec![]), t1)),
            ErrorCode::UnknownMember
        );
    }

    #[test]
    fn given_commits_when_checking_should_fence_like_kafka() {
        let t0 = Instant::now();
        let mut gs = ClassicGroups::default();
        gs.check_commit("g", "", -1)
            .expect("simple consumer, no members");
        let t1 = settled_pair(&mut gs, t0);
        assert_eq!(code(gs.check_commit("g", "", -1)), ErrorCode::UnknownMember);
        gs.check_commit("g", "a", 1)
            .expect("current member and generation");
        assert_eq!(
            code(gs.check_commit("g", "a", 0)),
            ErrorCode::IllegalGeneration
        );
        join(&mut gs, &req(""), "c", t1);
        gs.check_commit("g", "a", 1)
            .expect("a member commits what it read before rejoining");
    }

    #[test]
    fn given_group_at_max_size_when_joining_should_answer_group_max_size_reached() {
        let t0 = Instant::now();
        let mut gs = ClassicGroups::default();
        for i in 0..CLASSIC_GROUP_MEMBERS_MAX {
            gs.join(&req(""), &format!("m{i}"), t0).expect("room");
        }
        assert_eq!(
            code(gs.join(&req(""), "late", t0)),
            ErrorCode::GroupMaxSizeReached
        );
    }

    #[test]
    fn given_static_member_when_it_returns_under_a_new_id_should_keep_its_assignment_without_rebalance(
    ) {
        let t0 = Instant::now();
        let mut gs = ClassicGroups::default();
        let with_instance = |id: &str, inst: &str| JoinRequest {
            instance_id: Some(inst.into()),
            ..req(id)
        };
        join(&mut gs, &with_instance("", "i-a"), "a", t0);
        join(&mut gs, &with_instance("", "i-b"), "b", t0);
        let t1 = t0 + DELAY;
        join(&mut gs, &poll("a"), "x", t1);
        gs.sync(&sync("a", 1, vec![assign("a", "A"), assign("b", "B")]), t1)
            .expect("leader");
        let JoinAnswer::Done {
            generation,
            member_id,
            ..
        } = join(&mut gs, &with_instance("", "i-b"), "b2", t1)
        else {
            panic!("no rebalance for a returning static member")
        };
        assert_eq!((generation, member_id.as_str()), (1, "b2"));
        let b2 = gs
            .sync(&sync("b2", 1, vec![]), t1)
            .expect("its old assignment");
        assert!(matches!(b2, SyncAnswer::Done { assignment, .. } if assignment == b"B"));
        assert_eq!(
            code(gs.heartbeat("g", "b", 1, t1)),
            ErrorCode::UnknownMember
        );
        gs.heartbeat("g", "a", 1, t1).expect("a undisturbed");
    }

    #[test]
    fn given_leader_that_never_syncs_when_rebalance_timeout_passes_should_remove_it_and_end_the_followers_wait(
    ) {
        let t0 = Instant::now();
        let mut gs = ClassicGroups::default();
        join(&mut gs, &req(""), "a", t0);
        join(&mut gs, &req(""), "b", t0);
        let t1 = t0 + DELAY;
        let JoinAnswer::Done { leader, .. } = join(&mut gs, &poll("b"), "x", t1) else {
            panic!("complete")
        };
        assert_eq!(leader, "a");
        assert_eq!(
            gs.sync(&sync("b", 1, vec![]), t1).expect("follower"),
            SyncAnswer::Pending
        );
        // The leader heartbeats (a completing group accepts that) but never syncs.
        let almost = t1 + Duration::from_millis(REBALANCE_MS);
        gs.heartbeat("g", "a", 1, almost).expect("a alive");
        gs.heartbeat("g", "b", 1, almost).expect("b alive");
        assert!(gs.tick(almost).is_empty(), "within the rebalance timeout");
        assert_eq!(
            gs.sync(&sync("b", 1, vec![]), almost).expect("still"),
            SyncAnswer::Pending
        );
        let late = almost + Duration::from_millis(2);
        let events = gs.tick(late);
        assert!(
            events.contains(&ClassicEvent::Removed {
                group: "g".into(),
                member: "a".into(),
                why: "missed sync"
            }) && events.len() == 1,
            "only the member that never synced goes: {events:?}"
        );
        assert_eq!(
            code(gs.sync(&sync("b", 1, vec![]), late)),
            ErrorCode::RebalanceInProgress,
            "the follower's pending SyncGroup ends and it rejoins"
        );
        assert_eq!(
            code(gs.sync(&sync("a", 1, vec![]), late)),
            ErrorCode::UnknownMember
        );
        let JoinAnswer::Done {
            generation, leader, ..
        } = join(&mut gs, &req("b"), "x", late)
        else {
            panic!("b alone")
        };
        assert_eq!((generation, leader.as_str()), (2, "b"));
    }

    #[test]
    fn given_follower_waiting_for_its_assignment_when_it_leaves_or_a_new_generation_starts_should_answer_at_once(
    ) {
        let t0 = Instant::now();
        let mut gs = ClassicGroups::default();
        for id in ["a", "b", "c"] {
            join(&mut gs, &req(""), id, t0);
        }
        let t1 = t0 + DELAY;
        join(&mut gs, &poll("a"), "x", t1);
        assert_eq!(
            gs.sync(&sync("b", 1, vec![]), t1).expect("b waits"),
            SyncAnswer::Pending
        );
        gs.leave("g", &["b".to_string()], t1);
        assert_eq!(
            code(gs.sync(&sync("b", 1, vec![]), t1)),
            ErrorCode::UnknownMember,
            "a member that left"
        );
        assert_eq!(
            code(gs.sync(&sync("c", 1, vec![]), t1)),
            ErrorCode::RebalanceInProgress,
            "a rebalance under way"
        );
        join(&mut gs, &req("a"), "x", t1);
        join(&mut gs, &req("c"), "x", t1);
        assert_eq!(
            code(gs.sync(&sync("c", 1, vec![]), t1)),
            ErrorCode::IllegalGeneration,
            "superseded by generation 2, as Kafka answers"
        );
    }

    #[test]
    fn given_static_leader_returning_to_a_stable_group_when_it_can_skip_assignment_should_keep_the_generation(
    ) {
        let t0 = Instant::now();
        let mut gs = ClassicGroups::default();
        let with_instance = |id: &str, inst: &str, skip: bool| JoinRequest {
            instance_id: Some(inst.into()),
            can_skip_assignment: skip,
            ..req(id)
        };
        join(&mut gs, &with_instance("", "i-a", false), "a", t0);
        join(&mut gs, &with_instance("", "i-b", false), "b", t0);
        let t1 = t0 + DELAY;
        join(&mut gs, &poll("a"), "x", t1);
        gs.sync(&sync("a", 1, vec![assign("a", "A"), assign("b", "B")]), t1)
            .expect("leader");
        let JoinAnswer::Done {
            generation,
            leader,
            members,
            skip_assignment,
            ..
        } = join(&mut gs, &with_instance("", "i-a", true), "a2", t1)
        else {
            panic!("a v9 static leader returns without a rebalance")
        };
        assert_eq!(
            (generation, leader.as_str(), members.len(), skip_assignment),
            (1, "a2", 2, true)
        );
        let a2 = gs
            .sync(&sync("a2", 1, vec![]), t1)
            .expect("its old assignment");
        assert!(matches!(a2, SyncAnswer::Done { assignment, .. } if assignment == b"A"));
        gs.heartbeat("g", "b", 1, t1).expect("b undisturbed");
        assert!(
            matches!(
                join(&mut gs, &with_instance("", "i-a", false), "a3", t1),
                JoinAnswer::Pending { .. }
            ),
            "before v9 a returning static leader rebalances the group, as Kafka's"
        );
    }
}
