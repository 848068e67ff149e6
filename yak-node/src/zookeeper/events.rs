//! The cluster's event history as ZooKeeper keeps it: the newest
//! `events_max` events in memory (rebuilt from the snapshot and the
//! metadata log at start-up), and the pure functions that say which events
//! a metadata change is.
//!
//! Owns numbering (one `seq` per event, rising, never reused), the bound,
//! and answering reads. Never does I/O and never reads the clock: the
//! caller passes the time, appends the `MetaRecord::Events` record (in the
//! same append as the change it describes) and only then applies it here.

use super::groups::GroupEvent;
use crate::protocol::metalog::MetaSnapshot;
use crate::protocol::{ClusterEvent, EventKind, PartitionMetadata, Reason};
use std::collections::VecDeque;

/// The newest events, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLog {
    max: usize,
    events: VecDeque<ClusterEvent>,
    next_seq: u64,
}

impl EventLog {
    /// An empty history keeping at most `max` (at least one) events.
    pub fn new(max: usize) -> EventLog {
        EventLog {
            max: max.max(1),
            events: VecDeque::new(),
            next_seq: 0,
        }
    }

    /// The history a snapshot holds (trimmed to this log's bound).
    pub fn restore(&mut self, snapshot: &MetaSnapshot) {
        self.events.clear();
        self.next_seq = 0;
        self.apply(&snapshot.events);
        self.next_seq = self.next_seq.max(snapshot.next_event_seq);
    }

    /// The history into a snapshot.
    pub fn snapshot_into(&self, snapshot: &mut MetaSnapshot) {
        snapshot.events = self.events.iter().cloned().collect();
        snapshot.next_event_seq = self.next_seq;
    }

    /// Numbers `kinds` as the next events, recorded at `time_ms`; changes
    /// nothing until [`EventLog::apply`] (after the record is durable).
    pub fn stamp(&self, kinds: Vec<EventKind>, time_ms: i64) -> Vec<ClusterEvent> {
        kinds
            .into_iter()
            .zip(self.next_seq..)
            .map(|(kind, seq)| ClusterEvent { seq, time_ms, kind })
            .collect()
    }

    /// Adds durable events; drops the oldest beyond the bound. An event
    /// numbered below one already applied is ignored, so the history stays
    /// in `seq` order.
    pub fn apply(&mut self, events: &[ClusterEvent]) {
        for e in events {
            if e.seq < self.next_seq {
                continue;
            }
            self.next_seq = e.seq + 1;
            self.events.push_back(e.clone());
        }
        while self.events.len() > self.max {
            self.events.pop_front();
        }
    }

    /// Events numbered above `after_seq` and recorded at or after
    /// `since_ms`, oldest first, at most `max`; and whether more match.
    pub fn read(
        &self,
        after_seq: Option<u64>,
        since_ms: Option<i64>,
        max: usize,
    ) -> (Vec<ClusterEvent>, bool) {
        let start = after_seq.map_or(0, |s| self.events.partition_point(|e| e.seq <= s));
        let mut matching = self
            .events
            .range(start..)
            .filter(|e| since_ms.is_none_or(|t| e.time_ms >= t));
        let out: Vec<ClusterEvent> = matching.by_ref().take(max).cloned().collect();
        let more = matching.next().is_some();
        (out, more)
    }

    /// Events held.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// No event held.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// Brokers alive `before` but not `now`, each with why: the one the
/// supervisor `reported` down, else an expired session.
pub fn lost_brokers(before: &[u32], now: &[u32], reported: Option<u32>) -> Vec<(u32, Reason)> {
    before
        .iter()
        .filter(|b| !now.contains(b))
        .map(|&b| {
            (
                b,
                if reported == Some(b) {
                    Reason::ReportedDown
                } else {
                    Reason::SessionExpired
                },
            )
        })
        .collect()
}

/// The events of a partition going from `old` to (`leader`, `isr`,
/// `leader_epoch`): a new leader, offline or back online, members leaving
/// or joining the ISR. `why_gone(broker)` says why a broker lost its
/// leadership or ISR place; an expansion is always a follower catching up.
pub fn partition_changed(
    topic: &str,
    old: &PartitionMetadata,
    leader: Option<u32>,
    isr: &[u32],
    leader_epoch: u32,
    why_gone: &dyn Fn(u32) -> Reason,
) -> Vec<EventKind> {
    let mut out = Vec::new();
    let partition = old.partition;
    let topic = topic.to_string();
    if old.leader != leader {
        let reason = old.leader.map_or(Reason::NotAlive, why_gone);
        match leader {
            Some(new_leader) => {
                let reason = if old.leader.is_none() {
                    Reason::IsrMemberReturned
                } else {
                    reason
                };
                out.push(EventKind::LeaderElected {
                    topic: topic.clone(),
                    partition,
                    old_leader: old.leader,
                    new_leader,
                    leader_epoch,
                    reason,
                });
                if old.leader.is_none() {
                    out.push(EventKind::PartitionOnline {
                        topic: topic.clone(),
                        partition,
                        leader: new_leader,
                        leader_epoch,
                    });
                }
            }
            None => out.push(EventKind::PartitionOffline {
                topic: topic.clone(),
                partition,
                old_leader: old.leader,
                leader_epoch,
                isr: isr.to_vec(),
                reason,
            }),
        }
    }
    let removed: Vec<u32> = old
        .isr
        .iter()
        .copied()
        .filter(|b| !isr.contains(b))
        .collect();
    if let Some(&first) = removed.first() {
        out.push(EventKind::IsrShrunk {
            topic: topic.clone(),
            partition,
            leader,
            before: old.isr.clone(),
            after: isr.to_vec(),
            reason: why_gone(first),
        });
    }
    if isr.iter().any(|b| !old.isr.contains(b)) {
        out.push(EventKind::IsrExpanded {
            topic: topic.clone(),
            partition,
            leader,
            before: old.isr.clone(),
            after: isr.to_vec(),
            reason: Reason::FollowerCaughtUp,
        });
    }
    if let Some(r) = &old.reassignment {
        for &broker in r
            .adding
            .iter()
            .filter(|b| isr.contains(b) && !old.isr.contains(b))
        {
            out.push(EventKind::ReassignmentReplicaCaughtUp {
                topic: topic.clone(),
                partition,
                broker,
            });
        }
    }
    out
}

/// The completed rebalances among a group's membership events.
pub fn group_rebalances(events: &[GroupEvent]) -> Vec<EventKind> {
    events
        .iter()
        .filter_map(|e| match e {
            GroupEvent::Rebalanced {
                group,
                generation,
                assignment,
            } => Some(EventKind::GroupRebalanced {
                group: group.clone(),
                generation: *generation,
                members: assignment.keys().cloned().collect(),
            }),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(n: u32) -> Vec<EventKind> {
        (0..n)
            .map(|pid| EventKind::ZookeeperStarted {
                pid,
                restart: pid > 0,
            })
            .collect()
    }

    fn pids(log: &EventLog) -> Vec<u32> {
        log.read(None, None, usize::MAX)
            .0
            .iter()
            .map(|e| match e.kind {
                EventKind::ZookeeperStarted { pid, .. } => pid,
                _ => u32::MAX,
            })
            .collect()
    }

    fn partition(leader: Option<u32>, isr: &[u32]) -> PartitionMetadata {
        PartitionMetadata {
            partition: 0,
            leader,
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
            leader_epoch: 4,
            partition_epoch: 9,
            reassignment: None,
        }
    }

    #[test]
    fn given_more_events_than_the_bound_when_applied_should_keep_the_newest_in_order() {
        let mut log = EventLog::new(3);
        let first = log.stamp(kinds(2), 10);
        log.apply(&first);
        let next = log.stamp(
            kinds(3)
                .into_iter()
                .map(|k| match k {
                    EventKind::ZookeeperStarted { pid, restart } => EventKind::ZookeeperStarted {
                        pid: pid + 2,
                        restart,
                    },
                    k => k,
                })
                .collect(),
            20,
        );
        assert_eq!(
            next.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![2, 3, 4],
            "numbered after the applied ones"
        );
        log.apply(&next);
        assert_eq!(log.len(), 3);
        assert_eq!(pids(&log), vec![2, 3, 4], "the oldest left first");
        let (after, more) = log.read(Some(2), None, 10);
        assert_eq!(
            (after.iter().map(|e| e.seq).collect::<Vec<_>>(), more),
            (vec![3, 4], false)
        );
        let (page, more) = log.read(None, None, 2);
        assert_eq!(
            (page.iter().map(|e| e.seq).collect::<Vec<_>>(), more),
            (vec![2, 3], true)
        );
        let (recent, _) = log.read(None, Some(20), 10);
        assert_eq!(recent.len(), 3);
        assert!(log.read(None, Some(21), 10).0.is_empty());
    }

    #[test]
    fn given_stamped_events_not_applied_when_stamping_again_should_reuse_no_applied_number() {
        let mut log = EventLog::new(10);
        let lost = log.stamp(kinds(2), 1); // an append that failed: never applied
        let kept = log.stamp(kinds(1), 2);
        assert_eq!(lost[0].seq, kept[0].seq, "numbers count only once durable");
        log.apply(&kept);
        log.apply(&kept);
        assert_eq!(
            log.len(),
            1,
            "an event applied twice (or out of order) is ignored"
        );
    }

    #[test]
    fn given_history_when_snapshotted_and_restored_should_equal_the_original_and_keep_numbering() {
        let mut log = EventLog::new(5);
        for t in 0..4 {
            let e = log.stamp(kinds(2), t);
            log.apply(&e);
        }
        let mut snap = MetaSnapshot::default();
        log.snapshot_into(&mut snap);
        let bytes = rmp_serde::to_vec_named(&snap).expect("encode");
        let snap: MetaSnapshot = rmp_serde::from_slice(&bytes).expect("decode");
        let mut back = EventLog::new(5);
        back.restore(&snap);
        assert_eq!(back, log);
        assert_eq!(back.stamp(kinds(1), 9)[0].seq, 8);
        let mut smaller = EventLog::new(2);
        smaller.restore(&snap);
        assert_eq!(
            smaller
                .read(None, None, 10)
                .0
                .iter()
                .map(|e| e.seq)
                .collect::<Vec<_>>(),
            vec![6, 7]
        );
        assert_eq!(
            smaller.stamp(kinds(1), 9)[0].seq,
            8,
            "a smaller bound keeps the numbering"
        );
    }

    #[test]
    fn given_broker_reported_down_when_listing_lost_brokers_should_tell_report_from_expiry() {
        assert_eq!(
            lost_brokers(&[1, 2, 3], &[1], Some(2)),
            vec![(2, Reason::ReportedDown), (3, Reason::SessionExpired)]
        );
        assert!(lost_brokers(&[1], &[1, 2], None).is_empty());
    }

    #[test]
    fn given_leader_lost_when_describing_change_should_name_old_and_new_leader_epoch_and_shrink() {
        let why = |b: u32| {
            if b == 1 {
                Reason::ReportedDown
            } else {
                Reason::NotAlive
            }
        };
        let e = partition_changed(
            "orders",
            &partition(Some(1), &[1, 2, 3]),
            Some(2),
            &[2, 3],
            5,
            &why,
        );
        assert_eq!(
            e,
            vec![
                EventKind::LeaderElected {
                    topic: "orders".into(),
                    partition: 0,
                    old_leader: Some(1),
                    new_leader: 2,
                    leader_epoch: 5,
                    reason: Reason::ReportedDown,
                },
                EventKind::IsrShrunk {
                    topic: "orders".into(),
                    partition: 0,
                    leader: Some(2),
                    before: vec![1, 2, 3],
                    after: vec![2, 3],
                    reason: Reason::ReportedDown,
                },
            ]
        );
    }

    #[test]
    fn given_offline_and_back_when_describing_changes_should_say_offline_then_online() {
        let why = |_: u32| Reason::SessionExpired;
        let off = partition_changed("t", &partition(Some(1), &[1]), None, &[1], 5, &why);
        assert!(
            matches!(&off[..], [EventKind::PartitionOffline { old_leader: Some(1), isr, reason: Reason::SessionExpired, .. }] if isr == &[1])
        );
        let on = partition_changed("t", &partition(None, &[1]), Some(1), &[1], 6, &why);
        assert!(matches!(
            &on[..],
            [
                EventKind::LeaderElected {
                    old_leader: None,
                    new_leader: 1,
                    leader_epoch: 6,
                    reason: Reason::IsrMemberReturned,
                    ..
                },
                EventKind::PartitionOnline {
                    leader: 1,
                    leader_epoch: 6,
                    ..
                }
            ]
        ));
    }

    #[test]
    fn given_group_events_when_listing_rebalances_should_keep_only_completed_ones_with_sorted_members(
    ) {
        let share = |p: u32| [("t".to_string(), vec![p])].into_iter().collect();
        let assignment = [("b".to_string(), share(1)), ("a".to_string(), share(0))]
            .into_iter()
            .collect();
        let events = vec![
            GroupEvent::Joined {
                group: "g".into(),
                member: "b".into(),
            },
            GroupEvent::Rebalanced {
                group: "g".into(),
                generation: 2,
                assignment,
            },
        ];
        assert_eq!(
            group_rebalances(&events),
            vec![EventKind::GroupRebalanced {
                group: "g".into(),
                generation: 2,
                members: vec!["a".into(), "b".into()]
            }]
        );
    }

    #[test]
    fn given_follower_joins_when_describing_change_should_say_isr_expanded_only() {
        let why = |_: u32| Reason::FollowerLagging;
        let e = partition_changed("t", &partition(Some(1), &[1]), Some(1), &[1, 2], 4, &why);
        assert!(
            matches!(&e[..], [EventKind::IsrExpanded { before, after, reason: Reason::FollowerCaughtUp, .. }] if before == &[1] && after == &[1, 2])
        );
        assert!(
            partition_changed("t", &partition(Some(1), &[1, 2]), Some(1), &[1, 2], 4, &why)
                .is_empty()
        );
    }

    #[test]
    fn given_new_replica_of_a_move_joins_when_describing_change_should_say_it_caught_up() {
        let why = |_: u32| Reason::FollowerLagging;
        let mut old = partition(Some(1), &[1, 2, 3]);
        old.replicas = vec![4, 2, 3, 1];
        old.reassignment = Some(crate::protocol::Reassignment {
            target: vec![4, 2, 3],
            adding: vec![4],
            removing: vec![1],
            throttle_bytes_per_sec: None,
            original: vec![1, 2, 3],
        });
        let e = partition_changed("t", &old, Some(1), &[1, 2, 3, 4], 4, &why);
        assert!(
            matches!(
                &e[..],
                [
                    EventKind::IsrExpanded { .. },
                    EventKind::ReassignmentReplicaCaughtUp { broker: 4, .. }
                ]
            ),
            "{e:?}"
        );
        old.isr = vec![1, 2];
        let e = partition_changed("t", &old, Some(1), &[1, 2, 3], 4, &why);
        assert_eq!(
            e.len(),
            1,
            "an old replica rejoining is no move news: {e:?}"
        );
    }
}
