//! KIP-848 members of consumer groups (Kafka's `group.protocol=consumer`):
//! where each stands in its reconciliation, its heartbeat, its commit
//! fence. Part of [`super`] (its private state), kept apart to keep each
//! file small; the rule itself is [`super::super::reconcile`].

use super::{subscription, unknown_member, Group, GroupEvent, Groups, Join};
use crate::protocol::{
    Assignor, ErrorBody, ErrorCode, MemberStatus, PartitionOffset, TopicAssignment,
};
use crate::zookeeper::reconcile::{self, Owned};
use std::time::{Duration, Instant};

/// Where a KIP-848 member stands.
#[derive(Debug, Clone, Default)]
pub(super) struct Kip848 {
    /// The generation it has converged to (it held nothing outside it).
    pub(super) epoch: u32,
    /// Its epoch before, still accepted (an answer may have been lost).
    pub(super) previous_epoch: u32,
    /// What its last heartbeat said it owns.
    pub(super) owned: Owned,
    /// What the last answer told it to own.
    pub(super) delivered: Owned,
    /// What the answer before told it to own.
    pub(super) previous_delivered: Owned,
    /// Since when it has been told to revoke partitions it still holds.
    pub(super) revoking_since: Option<Instant>,
    /// How long it may take to revoke; past it, it is removed.
    pub(super) rebalance_timeout: Duration,
}

impl Kip848 {
    /// What it may be reading now: owned, or told to own by its last answer.
    fn held(&self) -> Owned {
        reconcile::union([&self.owned, &self.delivered].into_iter())
    }

    /// What another member must not be given yet.
    fn claimed(&self) -> Owned {
        reconcile::union([&self.owned, &self.delivered, &self.previous_delivered].into_iter())
    }
}

/// Topic assignments as sets.
pub(super) fn owned_of(assigned: &[TopicAssignment]) -> Owned {
    assigned
        .iter()
        .map(|a| (a.topic.clone(), a.partitions.iter().copied().collect()))
        .collect()
}

/// Sets as topic assignments, in topic order.
pub(super) fn assigned_of(owned: &Owned) -> Vec<TopicAssignment> {
    owned
        .iter()
        .map(|(topic, ps)| TopicAssignment {
            topic: topic.clone(),
            partitions: ps.iter().copied().collect(),
        })
        .collect()
}

/// One KIP-848 heartbeat, as the handler passes it on.
#[derive(Debug, Clone)]
pub struct ConsumerBeat<'a> {
    /// Group name.
    pub group: &'a str,
    /// Empty or the client's own id on a join; the member's id after.
    pub member_id: &'a str,
    /// The client's name.
    pub client: &'a str,
    /// The epoch the member sent (0 joins).
    pub epoch: u32,
    /// The subscription when it changed (required on a join).
    pub topics: Option<&'a [String]>,
    /// Assignor wanted.
    pub assignor: Assignor,
    /// What the member owns now, when it says.
    pub owned: Option<&'a [TopicAssignment]>,
    /// Session timeout (already clamped).
    pub session_timeout: Duration,
    /// How long it may take to revoke partitions (already clamped).
    pub rebalance_timeout: Duration,
}

/// A KIP-848 member's commit: at its epoch (or the one before), for
/// partitions it holds or was told to hold.
pub(super) fn check_kip848_commit(
    k: &Kip848,
    group: &str,
    member_id: &str,
    epoch: u32,
    topic: &str,
    offsets: &[PartitionOffset],
) -> Result<(), ErrorBody> {
    if epoch != k.epoch && epoch != k.previous_epoch {
        return Err(ErrorBody::new(
            ErrorCode::IllegalGeneration,
            format!(
                "member '{member_id}' of group '{group}' is at epoch {}, not {epoch}: commit refused",
                k.epoch
            ),
        ));
    }
    let held = k.claimed();
    if let Some(o) = offsets
        .iter()
        .find(|o| !held.get(topic).is_some_and(|ps| ps.contains(&o.partition)))
    {
        return Err(ErrorBody::new(
            ErrorCode::IllegalGeneration,
            format!(
                "{topic}-{} is not held by member '{member_id}' at epoch {epoch}",
                o.partition
            ),
        ));
    }
    Ok(())
}

impl Group {
    /// Moves a KIP-848 member one step towards its target and says where it stands.
    fn reconcile(&mut self, member_id: &str, now: Instant) -> MemberStatus {
        let target = owned_of(&self.assigned(member_id));
        let others = reconcile::union(
            self.members
                .iter()
                .filter(|(id, _)| id.as_str() != member_id)
                .filter_map(|(_, m)| m.kip848.as_ref().map(Kip848::claimed))
                .collect::<Vec<_>>()
                .iter(),
        );
        let generation = self.generation;
        if let Some(k) = self
            .members
            .get_mut(member_id)
            .and_then(|m| m.kip848.as_mut())
        {
            let step = reconcile::step(&target, &k.held(), &others);
            if step.converged && k.epoch != generation {
                k.previous_epoch = k.epoch;
                k.epoch = generation;
            }
            k.revoking_since = match (step.converged, k.revoking_since) {
                (true, _) => None,
                (false, since) => since.or(Some(now)),
            };
            k.previous_delivered = std::mem::replace(&mut k.delivered, step.assignment);
        }
        self.status(member_id)
    }
}

impl Groups {
    /// One KIP-848 heartbeat: joins (epoch 0; the member is named
    /// `new_member_id` when the client gave no id), takes the member's new
    /// subscription and what it owns, and moves it one step towards its
    /// target. An epoch that is neither the member's nor its previous one
    /// is fenced (`IllegalGeneration`): the member must rejoin.
    pub fn consumer_heartbeat(
        &mut self,
        b: &ConsumerBeat<'_>,
        new_member_id: &str,
        now: Instant,
        partitions_of: &dyn Fn(&str) -> Option<u32>,
    ) -> Result<(MemberStatus, Vec<GroupEvent>), ErrorBody> {
        let known = self
            .groups
            .get(b.group)
            .is_some_and(|g| g.members.contains_key(b.member_id));
        let mut events = Vec::new();
        let id = if b.epoch == 0 && !known {
            let topics = b.topics.filter(|t| !t.is_empty()).ok_or_else(|| {
                ErrorBody::new(
                    ErrorCode::InvalidRequest,
                    "a joining member must name the topics it subscribes to",
                )
            })?;
            let id = if b.member_id.is_empty() {
                new_member_id
            } else {
                b.member_id
            };
            let j = Join {
                group: b.group,
                member_id: "",
                client: b.client,
                topics,
                assignor: b.assignor,
                session_timeout: b.session_timeout,
                kip848: true,
            };
            events = self.join(&j, id, now, partitions_of)?.1;
            id.to_string()
        } else {
            b.member_id.to_string()
        };
        let g = self
            .groups
            .get_mut(b.group)
            .ok_or_else(|| unknown_member(b.group, &id))?;
        let m = g
            .members
            .get_mut(&id)
            .ok_or_else(|| unknown_member(b.group, &id))?;
        let Some(k) = m.kip848.as_mut() else {
            return Err(ErrorBody::new(
                ErrorCode::InconsistentGroupProtocol,
                format!("member '{id}' of group '{}' is a YaK consumer", b.group),
            ));
        };
        if b.epoch == 0 {
            // A known member starting over: it holds only what it says.
            *k = Kip848::default();
        } else if b.epoch != k.epoch && b.epoch != k.previous_epoch {
            return Err(ErrorBody::new(
                ErrorCode::IllegalGeneration,
                format!(
                    "member '{id}' of group '{}' is at epoch {}, not {}: fenced; rejoin",
                    b.group, k.epoch, b.epoch
                ),
            ));
        }
        if let Some(owned) = b.owned {
            k.owned = owned_of(owned);
        }
        k.rebalance_timeout = b.rebalance_timeout;
        m.last_seen = now;
        m.session_timeout = b.session_timeout;
        let topics = b.topics.map(subscription).filter(|t| *t != m.topics);
        if let Some(topics) = topics {
            m.topics = topics;
            g.start_rebalance(now);
            events.extend(g.try_complete(b.group, partitions_of));
        }
        Ok((g.reconcile(&id, now), events))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{join, new_member, six, topics, SESSION};
    use super::*;

    /// A KIP-848 heartbeat of `id` at `epoch` reporting `owned` partitions of `t`.
    fn beat(
        gs: &mut Groups,
        id: &str,
        epoch: u32,
        owned: Option<&[u32]>,
        now: Instant,
    ) -> Result<MemberStatus, ErrorBody> {
        let owned = owned.map(|ps| {
            vec![TopicAssignment {
                topic: "t".into(),
                partitions: ps.to_vec(),
            }]
        });
        let b = ConsumerBeat {
            group: "g",
            member_id: id,
            client: "c",
            epoch,
            topics: (epoch == 0).then(|| topics(&["t"])),
            assignor: Assignor::Sticky,
            owned: owned.as_deref(),
            session_timeout: SESSION,
            rebalance_timeout: SESSION * 2,
        };
        gs.consumer_heartbeat(&b, "unused", now, &six).map(|r| r.0)
    }

    #[test]
    fn given_kip848_member_joining_when_another_owns_everything_should_revoke_first_then_hand_over()
    {
        let t0 = Instant::now();
        let mut gs = Groups::default();
        let a = beat(&mut gs, "a", 0, Some(&[]), t0).expect("a joins");
        assert_eq!((a.generation, a.partitions.clone()), (1, (0..6).collect()));
        beat(&mut gs, "a", 1, Some(&[0, 1, 2, 3, 4, 5]), t0).expect("a owns all");
        let b = beat(&mut gs, "b", 0, Some(&[]), t0).expect("b joins");
        assert!(b.partitions.is_empty(), "a still owns them: {b:?}");
        assert_eq!(b.generation, 2, "b owns nothing outside its target");
        let a = beat(&mut gs, "a", 1, None, t0).expect("a beats");
        assert_eq!(a.partitions.len(), 3, "a is told its smaller target");
        assert_eq!(a.generation, 1, "a keeps its epoch until it has revoked");
        let b = beat(&mut gs, "b", 2, None, t0).expect("b beats");
        assert!(
            b.partitions.is_empty(),
            "a has not reported the revocation yet"
        );
        let a = beat(&mut gs, "a", 1, Some(&a.partitions), t0).expect("a revoked");
        assert_eq!((a.generation, a.partitions.len()), (2, 3));
        let b = beat(&mut gs, "b", 2, Some(&[]), t0).expect("b beats");
        assert_eq!(b.partitions.len(), 3, "released: b gets them");
        assert!(b.partitions.iter().all(|p| !a.partitions.contains(p)));
        let view = gs.view("g").expect("view");
        assert!(view.kip848 && view.members.iter().all(|m| m.partitions.len() == 3));
    }

    #[test]
    fn given_kip848_member_leaving_or_expiring_when_others_beat_should_take_its_partitions() {
        let t0 = Instant::now();
        let mut gs = Groups::default();
        beat(&mut gs, "a", 0, Some(&[]), t0).expect("a");
        beat(&mut gs, "a", 1, Some(&[0, 1, 2, 3, 4, 5]), t0).expect("a owns all");
        beat(&mut gs, "b", 0, Some(&[]), t0).expect("b");
        let a = beat(&mut gs, "a", 1, None, t0).expect("a told to revoke");
        let a = beat(&mut gs, "a", 1, Some(&a.partitions), t0).expect("a revoked");
        let b = beat(&mut gs, "b", 2, Some(&[]), t0).expect("b");
        beat(&mut gs, "b", 2, Some(&b.partitions), t0).expect("b owns 3");
        gs.leave("g", "b", t0, &six).expect("b leaves");
        let a = beat(&mut gs, "a", a.generation, Some(&a.partitions), t0).expect("a");
        assert_eq!(
            (a.generation, a.partitions.len()),
            (3, 6),
            "a leave frees at once"
        );
        // c joins, then a goes silent: c gets everything once a expires.
        beat(&mut gs, "c", 0, Some(&[]), t0).expect("c");
        let t1 = t0 + SESSION + Duration::from_millis(1);
        beat(&mut gs, "c", 4, Some(&[]), t1).expect("c alive");
        gs.tick(t1, &six);
        let c = beat(&mut gs, "c", 4, Some(&[]), t1).expect("c");
        assert_eq!((c.generation, c.partitions.len()), (5, 6));
    }

    #[test]
    fn given_kip848_epochs_when_beating_or_committing_should_fence_unknown_epochs() {
        let t0 = Instant::now();
        let mut gs = Groups::default();
        beat(&mut gs, "a", 0, Some(&[]), t0).expect("a");
        beat(&mut gs, "a", 1, Some(&[0, 1, 2, 3, 4, 5]), t0).expect("a");
        assert_eq!(
            beat(&mut gs, "a", 7, None, t0)
                .expect_err("future epoch")
                .code,
            ErrorCode::IllegalGeneration
        );
        let po = |partition| {
            [PartitionOffset {
                partition,
                offset: 3,
            }]
        };
        gs.check_commit("g", "a", 1, "t", &po(5))
            .expect("a holds 5");
        beat(&mut gs, "b", 0, Some(&[]), t0).expect("b");
        let a = beat(&mut gs, "a", 1, None, t0).expect("told to revoke");
        let gone = (0..6)
            .find(|p| !a.partitions.contains(p))
            .expect("one revoked");
        gs.check_commit("g", "a", 1, "t", &po(gone))
            .expect("a revoking partition may still be committed");
        beat(&mut gs, "a", 1, Some(&a.partitions), t0).expect("revoked");
        beat(&mut gs, "a", 2, Some(&a.partitions), t0).expect("a at 2");
        assert_eq!(
            gs.check_commit("g", "a", 2, "t", &po(gone))
                .expect_err("not a's any more")
                .code,
            ErrorCode::IllegalGeneration
        );
        assert_eq!(
            gs.check_commit("g", "a", 0, "t", &po(a.partitions[0]))
                .expect_err("stale epoch")
                .code,
            ErrorCode::IllegalGeneration
        );
        // A native member cannot join a KIP-848 group, nor the reverse.
        let err = gs
            .join(&join("", Assignor::Sticky), "n", t0, &six)
            .expect_err("mixed");
        assert_eq!(err.code, ErrorCode::InconsistentGroupProtocol);
        let mut native = Groups::default();
        new_member(&mut native, "n", t0);
        let err = beat(&mut native, "k", 0, Some(&[]), t0).expect_err("mixed");
        assert_eq!(err.code, ErrorCode::InconsistentGroupProtocol);
    }

    #[test]
    fn given_kip848_member_that_never_revokes_when_its_rebalance_timeout_passes_should_remove_it() {
        let t0 = Instant::now();
        let mut gs = Groups::default();
        beat(&mut gs, "a", 0, Some(&[]), t0).expect("a");
        beat(&mut gs, "a", 1, Some(&[0, 1, 2, 3, 4, 5]), t0).expect("a owns all");
        beat(&mut gs, "b", 0, Some(&[]), t0).expect("b");
        // a keeps beating, still owning everything.
        let mut t = t0;
        while t < t0 + SESSION * 2 {
            t += Duration::from_millis(500);
            beat(&mut gs, "a", 1, Some(&[0, 1, 2, 3, 4, 5]), t).expect("a alive");
            beat(&mut gs, "b", 2, Some(&[]), t).expect("b alive");
            assert!(gs.tick(t, &six).is_empty(), "within its rebalance timeout");
        }
        let late = t0 + SESSION * 2 + Duration::from_millis(600);
        beat(&mut gs, "b", 2, Some(&[]), late).expect("b alive");
        let events = gs.tick(late, &six);
        assert!(
            events.contains(&GroupEvent::Expired {
                group: "g".into(),
                member: "a".into()
            }),
            "{events:?}"
        );
        let b = beat(&mut gs, "b", 2, Some(&[]), late).expect("b");
        assert_eq!(b.partitions.len(), 6);
    }
}
