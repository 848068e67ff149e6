//! Replica reassignment, Kafka's way (KIP-455), as pure state transitions:
//! which records start a reassignment and which move it on. ZooKeeper
//! appends each record (fsynced) before applying it, and its session tick
//! asks for the next step every time, so a kill -9 of any process in the
//! middle resumes from what the metadata log holds.
//!
//! Steps of one partition moving from replicas `A` to `T`:
//! 1. `ReassignmentStarted`: replicas become `T` followed by `A - T`; the
//!    new replicas (`T - A`, "adding") are created by their brokers and
//!    fetch from the leader (throttled, if asked).
//! 2. The leader adds each new replica to the ISR once it caught up
//!    (the ordinary `AlterIsr` expansion).
//! 3. Once every replica of `T` is in the ISR: if the leader is not in `T`,
//!    the first replica of `T` alive and in the ISR leads (epoch + 1).
//! 4. With every replica of `T` in the ISR and the leader in `T`:
//!    `ReassignmentCompleted`: replicas become `T`, the ISR keeps only
//!    members of `T`; the brokers of `A - T` then delete their replica
//!    (`broker/replicas.rs`, the "moved away" rule).
//!
//! A cancel (`plan_cancel`, Kafka's AlterPartitionReassignments with null
//! replicas) is one `ReassignmentCancelled`: replicas back to the original
//! list, the ISR keeps only original members, and a leader that is a new
//! replica is replaced by the first original replica alive and in the ISR
//! (epoch + 1); with none such the cancel is refused, since only ISR
//! members hold everything acknowledged. The new replicas' brokers then
//! delete their copy (the same "moved away" rule).
//!
//! Never does anything else: it does not elect outside the ISR, and a
//! target replica that is down just makes the partition wait.

use super::state::MetadataState;
use crate::limits::REASSIGN_MOVES_MAX;
use crate::protocol::metalog::MetaRecord;
use crate::protocol::{ErrorBody, ErrorCode, PartitionMove, PartitionRef, Reassignment};
use std::collections::BTreeSet;

fn bad(m: String) -> ErrorBody {
    ErrorBody::new(ErrorCode::InvalidReplicaAssignment, m)
}

/// Plans starting `moves` (all or none): refuses an unknown topic or
/// partition, an empty list, a duplicate id, a broker that is not alive
/// (`alive`: sorted ids), a partition named twice, and a partition being
/// reassigned to another target. A move to the current replicas, or to the
/// target already in progress, is skipped.
pub fn plan_reassign(
    state: &MetadataState,
    moves: &[PartitionMove],
    throttle_bytes_per_sec: Option<u64>,
    alive: &[u32],
) -> Result<Vec<MetaRecord>, ErrorBody> {
    if moves.len() > REASSIGN_MOVES_MAX {
        return Err(bad(format!(
            "at most {REASSIGN_MOVES_MAX} partitions move in one call"
        )));
    }
    if throttle_bytes_per_sec == Some(0) {
        return Err(bad("a throttle must be at least 1 byte per second".into()));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for m in moves {
        let name = format!("{}-{}", m.topic, m.partition);
        if !seen.insert((m.topic.as_str(), m.partition)) {
            return Err(bad(format!("{name} is named twice")));
        }
        let t = state.topic(&m.topic).ok_or_else(|| {
            ErrorBody::new(
                ErrorCode::UnknownTopic,
                format!("topic '{}' does not exist", m.topic),
            )
        })?;
        let p = t.partitions.get(m.partition as usize).ok_or_else(|| {
            ErrorBody::new(
                ErrorCode::UnknownPartition,
                format!(
                    "topic '{}' has {} partitions; there is no partition {}",
                    m.topic,
                    t.partitions.len(),
                    m.partition
                ),
            )
        })?;
        if m.replicas.is_empty() {
            return Err(bad(format!("{name}: the replica list is empty")));
        }
        let distinct: BTreeSet<u32> = m.replicas.iter().copied().collect();
        if distinct.len() != m.replicas.len() {
            return Err(bad(format!(
                "{name}: broker ids must be distinct, got {:?}",
                m.replicas
            )));
        }
        if let Some(b) = m.replicas.iter().find(|b| !alive.contains(b)) {
            return Err(bad(format!(
                "{name}: broker {b} is not a registered, alive broker (alive: {alive:?})"
            )));
        }
        if let Some(r) = &p.reassignment {
            if r.target == m.replicas {
                continue;
            }
            return Err(ErrorBody::new(
                ErrorCode::ReassignmentInProgress,
                format!(
                    "{name} is being moved to {:?} already; wait for it to finish",
                    r.target
                ),
            ));
        }
        if p.replicas == m.replicas {
            continue;
        }
        let adding: Vec<u32> = m
            .replicas
            .iter()
            .copied()
            .filter(|b| !p.replicas.contains(b))
            .collect();
        let removing: Vec<u32> = p
            .replicas
            .iter()
            .copied()
            .filter(|b| !m.replicas.contains(b))
            .collect();
        out.push(MetaRecord::ReassignmentStarted {
            topic: m.topic.clone(),
            partition: m.partition,
            replicas: m.replicas.iter().chain(&removing).copied().collect(),
            reassignment: Reassignment {
                target: m.replicas.clone(),
                adding,
                removing,
                throttle_bytes_per_sec,
                original: p.replicas.clone(),
            },
        });
    }
    Ok(out)
}

/// The next step of every reassignment in progress, given the alive
/// brokers (sorted ids): a leader move onto the target (step 3) or the
/// completion (step 4); nothing for a partition still waiting for its new
/// replicas to join the ISR.
pub fn plan_reassignment_steps(state: &MetadataState, alive: &[u32]) -> Vec<MetaRecord> {
    let mut out = Vec::new();
    for t in state.topics() {
        for p in &t.partitions {
            let Some(r) = &p.reassignment else {
                continue;
            };
            if !r.target.iter().all(|b| p.isr.contains(b)) {
                continue;
            }
            let leader_in_target = p.leader.is_some_and(|l| r.target.contains(&l));
            if leader_in_target {
                out.push(MetaRecord::ReassignmentCompleted {
                    topic: t.name.clone(),
                    partition: p.partition,
                    replicas: r.target.clone(),
                    leader: p.leader,
                    isr: p
                        .isr
                        .iter()
                        .copied()
                        .filter(|b| r.target.contains(b))
                        .collect(),
                    leader_epoch: p.leader_epoch,
                });
            } else if let Some(next) = r.target.iter().copied().find(|b| alive.contains(b)) {
                // Every target replica is in the ISR, so `next` is too.
                out.push(MetaRecord::PartitionChanged {
                    topic: t.name.clone(),
                    partition: p.partition,
                    leader: Some(next),
                    isr: p.isr.clone(),
                    leader_epoch: p.leader_epoch + 1,
                });
            }
        }
    }
    out
}

/// Plans cancelling the reassignments of `partitions` (all or none):
/// refuses an unknown topic or partition, one named twice, one not being
/// reassigned (`NoReassignmentInProgress`), and one whose original
/// replicas have no alive ISR member to lead (`alive`: sorted ids).
pub fn plan_cancel(
    state: &MetadataState,
    partitions: &[PartitionRef],
    alive: &[u32],
) -> Result<Vec<MetaRecord>, ErrorBody> {
    if partitions.len() > REASSIGN_MOVES_MAX {
        return Err(bad(format!(
            "at most {REASSIGN_MOVES_MAX} partitions are cancelled in one call"
        )));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for r in partitions {
        let name = format!("{}-{}", r.topic, r.partition);
        if !seen.insert((r.topic.as_str(), r.partition)) {
            return Err(bad(format!("{name} is named twice")));
        }
        let p = state
            .topic(&r.topic)
            .ok_or_else(|| {
                ErrorBody::new(
                    ErrorCode::UnknownTopic,
                    format!("topic '{}' does not exist", r.topic),
                )
            })?
            .partitions
            .get(r.partition as usize)
            .ok_or_else(|| {
                ErrorBody::new(
                    ErrorCode::UnknownPartition,
                    format!("topic '{}' has no partition {}", r.topic, r.partition),
                )
            })?;
        let Some(reassignment) = &p.reassignment else {
            return Err(ErrorBody::new(
                ErrorCode::NoReassignmentInProgress,
                format!("{name} is not being reassigned; nothing to cancel"),
            ));
        };
        let original = reassignment.original_replicas(&p.replicas);
        let isr: Vec<u32> = p
            .isr
            .iter()
            .copied()
            .filter(|b| original.contains(b))
            .collect();
        let (leader, leader_epoch) = match p.leader {
            Some(l) if original.contains(&l) => (Some(l), p.leader_epoch),
            _ => {
                let next = original
                    .iter()
                    .copied()
                    .find(|b| isr.contains(b) && alive.contains(b))
                    .ok_or_else(|| {
                        ErrorBody::new(
                            ErrorCode::ReassignmentInProgress,
                            format!(
                                "{name} cannot go back to {original:?}: none of them is alive and in the ISR {:?}",
                                p.isr
                            ),
                        )
                    })?;
                (Some(next), p.leader_epoch + 1)
            }
        };
        out.push(MetaRecord::ReassignmentCancelled {
            topic: r.topic.clone(),
            partition: r.partition,
            replicas: original,
            leader,
            isr,
            leader_epoch,
        });
    }
    Ok(out)
}

/// Reassignments in progress: (topic, partition, reassignment).
pub fn in_progress(state: &MetadataState) -> Vec<(String, u32, Reassignment)> {
    state
        .topics()
        .flat_map(|t| {
            t.partitions.iter().filter_map(|p| {
                p.reassignment
                    .clone()
                    .map(|r| (t.name.clone(), p.partition, r))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::TopicConfig;
    use crate::zookeeper::state::TopicDefaults;

    const DEFAULTS: TopicDefaults = TopicDefaults {
        partitions: 1,
        replication_factor: 3,
    };

    /// One topic "t", one partition on replicas 1,2,3 led by 1.
    fn state() -> MetadataState {
        let mut s = MetadataState::default();
        let rec = s
            .plan_create(
                "t",
                Some(1),
                Some(3),
                TopicConfig::default(),
                DEFAULTS,
                &[1, 2, 3],
            )
            .expect("create");
        s.apply(&rec);
        s
    }

    fn mv(replicas: &[u32]) -> PartitionMove {
        PartitionMove {
            topic: "t".into(),
            partition: 0,
            replicas: replicas.to_vec(),
        }
    }

    fn isr_of(s: &MetadataState) -> Vec<u32> {
        s.topic("t").expect("t").partitions[0].isr.clone()
    }

    fn set_isr(s: &mut MetadataState, isr: &[u32]) {
        let p = &s.topic("t").expect("t").partitions[0];
        let rec = MetaRecord::PartitionChanged {
            topic: "t".into(),
            partition: 0,
            leader: p.leader,
            isr: isr.to_vec(),
            leader_epoch: p.leader_epoch,
        };
        s.apply(&rec);
    }

    fn step(s: &mut MetadataState, alive: &[u32]) -> usize {
        let steps = plan_reassignment_steps(s, alive);
        for r in &steps {
            s.apply(r);
        }
        steps.len()
    }

    #[test]
    fn given_move_off_the_leader_when_stepping_should_add_catch_up_move_leader_then_drop() {
        let alive = [1, 2, 3, 4, 5];
        let mut s = state();
        let recs = plan_reassign(&s, &[mv(&[4, 5, 2])], Some(1000), &alive).expect("valid");
        assert_eq!(recs.len(), 1);
        s.apply(&recs[0]);
        let p = s.topic("t").expect("t").partitions[0].clone();
        assert_eq!(
            p.replicas,
            vec![4, 5, 2, 1, 3],
            "target first, then the leaving ones"
        );
        let r = p.reassignment.expect("in progress");
        assert_eq!((r.adding, r.removing), (vec![4, 5], vec![1, 3]));
        assert_eq!(r.throttle_bytes_per_sec, Some(1000));
        assert_eq!(step(&mut s, &alive), 0, "new replicas not in the ISR yet");
        set_isr(&mut s, &[1, 2, 3, 4]);
        assert_eq!(step(&mut s, &alive), 0, "replica 5 still catching up");
        set_isr(&mut s, &[1, 2, 3, 4, 5]);
        assert_eq!(step(&mut s, &alive), 1, "leader moves first");
        let p = s.topic("t").expect("t").partitions[0].clone();
        assert_eq!((p.leader, p.leader_epoch), (Some(4), 1));
        assert!(
            p.reassignment.is_some(),
            "not complete before the leader moved"
        );
        assert_eq!(step(&mut s, &alive), 1, "then completes");
        let p = s.topic("t").expect("t").partitions[0].clone();
        assert_eq!(p.replicas, vec![4, 5, 2]);
        assert_eq!(p.isr, vec![2, 4, 5]);
        assert_eq!((p.leader, p.leader_epoch), (Some(4), 1));
        assert!(p.reassignment.is_none());
        assert_eq!(step(&mut s, &alive), 0, "nothing left to do");
    }

    #[test]
    fn given_leader_stays_when_stepping_should_complete_without_leader_change() {
        let alive = [1, 2, 3, 4];
        let mut s = state();
        for r in plan_reassign(&s, &[mv(&[1, 2, 4])], None, &alive).expect("valid") {
            s.apply(&r);
        }
        set_isr(&mut s, &[1, 2, 3, 4]);
        assert_eq!(step(&mut s, &alive), 1);
        let p = s.topic("t").expect("t").partitions[0].clone();
        assert_eq!(
            (p.replicas, p.leader, p.leader_epoch),
            (vec![1, 2, 4], Some(1), 0)
        );
        assert_eq!(isr_of(&s), vec![1, 2, 4]);
    }

    #[test]
    fn given_replication_factor_change_when_reassigning_should_grow_and_shrink_the_list() {
        let alive = [1, 2, 3, 4];
        let mut s = state();
        for r in plan_reassign(&s, &[mv(&[1, 2, 3, 4])], None, &alive).expect("valid") {
            s.apply(&r);
        }
        set_isr(&mut s, &[1, 2, 3, 4]);
        step(&mut s, &alive);
        assert_eq!(
            s.topic("t").expect("t").partitions[0].replicas,
            vec![1, 2, 3, 4]
        );
        for r in plan_reassign(&s, &[mv(&[2])], None, &alive).expect("valid") {
            s.apply(&r);
        }
        step(&mut s, &alive);
        step(&mut s, &alive);
        let p = s.topic("t").expect("t").partitions[0].clone();
        assert_eq!((p.replicas, p.isr, p.leader), (vec![2], vec![2], Some(2)));
    }

    #[test]
    fn given_records_replayed_after_a_crash_when_stepping_should_resume_where_the_log_ends() {
        let alive = [1, 2, 3, 4];
        let mut s = state();
        let mut log = plan_reassign(&s, &[mv(&[4, 2, 3])], None, &alive).expect("valid");
        s.apply(&log[0]);
        set_isr(&mut s, &[1, 2, 3, 4]);
        let p = &s.topic("t").expect("t").partitions[0];
        log.push(MetaRecord::PartitionChanged {
            topic: "t".into(),
            partition: 0,
            leader: p.leader,
            isr: vec![1, 2, 3, 4],
            leader_epoch: p.leader_epoch,
        });
        log.extend(plan_reassignment_steps(&s, &alive));
        // A ZooKeeper killed after each durable record replays up to it and steps on.
        for cut in 0..=log.len() {
            let mut replayed = state();
            for r in &log[..cut] {
                replayed.apply(r);
            }
            for _ in 0..3 {
                step(&mut replayed, &alive);
            }
            if cut >= 2 {
                let p = &replayed.topic("t").expect("t").partitions[0];
                assert_eq!(p.replicas, vec![4, 2, 3], "cut {cut}");
                assert_eq!(p.leader, Some(4), "cut {cut}");
                assert!(p.reassignment.is_none(), "cut {cut}");
            } else if cut == 1 {
                let p = &replayed.topic("t").expect("t").partitions[0];
                assert!(p.reassignment.is_some(), "waits for replica 4: cut {cut}");
            }
        }
    }

    #[test]
    fn given_target_replica_down_when_stepping_should_wait_and_never_elect_outside_the_isr() {
        let mut s = state();
        for r in plan_reassign(&s, &[mv(&[4, 2, 3])], None, &[1, 2, 3, 4]).expect("valid") {
            s.apply(&r);
        }
        assert_eq!(step(&mut s, &[1, 2, 3]), 0);
        assert_eq!(s.topic("t").expect("t").partitions[0].leader, Some(1));
    }

    fn cancel(s: &MetadataState, alive: &[u32]) -> Result<Vec<MetaRecord>, ErrorBody> {
        let r = PartitionRef {
            topic: "t".into(),
            partition: 0,
        };
        plan_cancel(s, &[r], alive)
    }

    #[test]
    fn given_move_half_done_when_cancelling_should_restore_the_original_replicas_and_leader() {
        let alive = [1, 2, 3, 4, 5];
        let mut s = state();
        for r in plan_reassign(&s, &[mv(&[4, 5, 2])], None, &alive).expect("valid") {
            s.apply(&r);
        }
        set_isr(&mut s, &[1, 2, 3, 4]);
        for r in cancel(&s, &alive).expect("cancel") {
            s.apply(&r);
        }
        let p = s.topic("t").expect("t").partitions[0].clone();
        assert_eq!(p.replicas, vec![1, 2, 3], "back to the original order");
        assert_eq!((p.leader, p.leader_epoch), (Some(1), 0), "leader kept");
        assert_eq!(p.isr, vec![1, 2, 3], "the new replica left the ISR");
        assert!(p.reassignment.is_none());
        assert_eq!(
            step(&mut s, &alive),
            0,
            "nothing resumes the cancelled move"
        );
        let err = cancel(&s, &alive).expect_err("none left");
        assert_eq!(err.code, ErrorCode::NoReassignmentInProgress);
    }

    #[test]
    fn given_leader_already_moved_when_cancelling_should_elect_an_original_isr_member() {
        let alive = [1, 2, 3, 4];
        let mut s = state();
        for r in plan_reassign(&s, &[mv(&[4, 2, 3])], None, &alive).expect("valid") {
            s.apply(&r);
        }
        set_isr(&mut s, &[1, 2, 3, 4]);
        assert_eq!(step(&mut s, &alive), 1, "leader moves onto 4");
        set_isr(&mut s, &[3, 4]);
        for r in cancel(&s, &[2, 3, 4]).expect("cancel") {
            s.apply(&r);
        }
        let p = s.topic("t").expect("t").partitions[0].clone();
        assert_eq!(p.replicas, vec![1, 2, 3]);
        assert_eq!(
            (p.leader, p.leader_epoch),
            (Some(3), 2),
            "the only original ISR member leads, epoch + 1"
        );
        assert_eq!(p.isr, vec![3]);
    }

    #[test]
    fn given_no_original_replica_in_the_isr_when_cancelling_should_refuse() {
        let alive = [1, 2, 3, 4];
        let mut s = state();
        for r in plan_reassign(&s, &[mv(&[4, 2, 3])], None, &alive).expect("valid") {
            s.apply(&r);
        }
        set_isr(&mut s, &[1, 2, 3, 4]);
        step(&mut s, &alive);
        set_isr(&mut s, &[4]);
        let err = cancel(&s, &alive).expect_err("no original member holds the data");
        assert_eq!(err.code, ErrorCode::ReassignmentInProgress);
        assert!(s.topic("t").expect("t").partitions[0]
            .reassignment
            .is_some());
    }

    #[test]
    fn given_bad_moves_when_planning_should_refuse_with_typed_errors() {
        let alive = [1, 2, 3, 4];
        let mut s = state();
        let other = |topic: &str, partition: u32, replicas: &[u32]| PartitionMove {
            topic: topic.into(),
            partition,
            replicas: replicas.to_vec(),
        };
        let cases: Vec<(Vec<PartitionMove>, Option<u64>, ErrorCode)> = vec![
            (vec![other("nope", 0, &[1])], None, ErrorCode::UnknownTopic),
            (vec![other("t", 1, &[1])], None, ErrorCode::UnknownPartition),
            (vec![mv(&[])], None, ErrorCode::InvalidReplicaAssignment),
            (
                vec![mv(&[1, 1, 2])],
                None,
                ErrorCode::InvalidReplicaAssignment,
            ),
            (
                vec![mv(&[1, 2, 9])],
                None,
                ErrorCode::InvalidReplicaAssignment,
            ),
            (
                vec![mv(&[1, 2, 4]), mv(&[1, 2, 3])],
                None,
                ErrorCode::InvalidReplicaAssignment,
            ),
            (
                vec![mv(&[1, 2, 4])],
                Some(0),
                ErrorCode::InvalidReplicaAssignment,
            ),
        ];
        for (moves, throttle, code) in cases {
            let err = plan_reassign(&s, &moves, throttle, &alive).expect_err("refused");
            assert_eq!(err.code, code, "{moves:?}");
        }
        assert!(
            plan_reassign(&s, &[mv(&[1, 2, 3])], None, &alive)
                .expect("valid")
                .is_empty(),
            "a move to the current replicas is none"
        );
        for r in plan_reassign(&s, &[mv(&[1, 2, 4])], None, &alive).expect("valid") {
            s.apply(&r);
        }
        assert!(plan_reassign(&s, &[mv(&[1, 2, 4])], None, &alive)
            .expect("the same target again")
            .is_empty());
        let err = plan_reassign(&s, &[mv(&[4, 3, 2])], None, &alive).expect_err("busy");
        assert_eq!(err.code, ErrorCode::ReassignmentInProgress);
        assert_eq!(in_progress(&s).len(), 1);
    }
}
