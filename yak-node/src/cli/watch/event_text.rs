//! One short line per cluster event for the events pane of `cluster watch`
//! ("orders-0 leader 2 → 3, epoch 5 (reported_down)"). Pure formatting;
//! never fetches events and never decides which are shown.

use crate::protocol::events::EventKind;

fn ids(v: &[u32]) -> String {
    if v.is_empty() {
        return "none".into();
    }
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

fn broker(v: Option<u32>) -> String {
    v.map_or_else(|| "none".into(), |b| b.to_string())
}

/// The event as one line of text.
pub fn describe(kind: &EventKind) -> String {
    match kind {
        EventKind::LeaderElected {
            topic,
            partition,
            old_leader,
            new_leader,
            leader_epoch,
            reason,
        } => format!(
            "{topic}-{partition} leader {} → {new_leader}, epoch {leader_epoch} ({})",
            broker(*old_leader),
            reason.name()
        ),
        EventKind::PartitionOffline {
            topic,
            partition,
            old_leader,
            isr,
            reason,
            ..
        } => format!(
            "{topic}-{partition} OFFLINE: leader {} gone, waits for {} ({})",
            broker(*old_leader),
            ids(isr),
            reason.name()
        ),
        EventKind::PartitionOnline {
            topic,
            partition,
            leader,
            leader_epoch,
        } => {
            format!("{topic}-{partition} online, leader {leader}, epoch {leader_epoch}")
        }
        EventKind::IsrShrunk {
            topic,
            partition,
            before,
            after,
            reason,
            ..
        } => {
            format!(
                "{topic}-{partition} ISR shrunk {} → {} ({})",
                ids(before),
                ids(after),
                reason.name()
            )
        }
        EventKind::IsrExpanded {
            topic,
            partition,
            before,
            after,
            reason,
            ..
        } => {
            format!(
                "{topic}-{partition} ISR expanded {} → {} ({})",
                ids(before),
                ids(after),
                reason.name()
            )
        }
        EventKind::BrokerRegistered {
            broker: b,
            pid,
            old_pid,
        } => match old_pid {
            Some(old) if old != pid => format!("broker {b} registered, pid {pid} (was {old})"),
            _ => format!("broker {b} registered, pid {pid}"),
        },
        EventKind::BrokerSessionExpired { broker: b, reason } => {
            format!("broker {b} session ended ({})", reason.name())
        }
        EventKind::ProcessRestarted(r) => {
            let how = match (&r.signal, r.exit_code) {
                (Some(s), _) => format!("killed by {s}"),
                (None, Some(c)) => format!("exit {c}"),
                (None, None) => "exited".into(),
            };
            format!(
                "{} restarted: pid {} → {} ({how}, {} ms delay)",
                r.child, r.old_pid, r.new_pid, r.restart_delay_ms
            )
        }
        EventKind::ZookeeperStarted { pid, restart } => {
            format!(
                "zookeeper {}, pid {pid}",
                if *restart {
                    "restarted"
                } else {
                    "started (new data dir)"
                }
            )
        }
        EventKind::TopicCreated {
            topic,
            partitions,
            replication_factor,
            ..
        } => {
            format!(
                "topic {topic} created: {partitions} partitions × {replication_factor} replicas"
            )
        }
        EventKind::TopicDeleted { topic, .. } => format!("topic {topic} deleted"),
        EventKind::GroupRebalanced {
            group,
            generation,
            members,
        } => {
            let n = members.len();
            format!(
                "group {group} rebalanced: generation {generation}, {n} member{}",
                if n == 1 { "" } else { "s" }
            )
        }
        EventKind::ReassignmentStarted { .. }
        | EventKind::ReassignmentReplicaCaughtUp { .. }
        | EventKind::ReassignmentCompleted { .. }
        | EventKind::ReassignmentCancelled { .. } => crate::cli::events::reassignment_text(kind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::events::{ProcessRestart, Reason};

    #[test]
    fn given_events_when_described_should_name_partition_brokers_and_cause() {
        let cases = [
            (
                EventKind::LeaderElected {
                    topic: "orders".into(),
                    partition: 0,
                    old_leader: Some(2),
                    new_leader: 3,
                    leader_epoch: 5,
                    reason: Reason::ReportedDown,
                },
                "orders-0 leader 2 → 3, epoch 5 (reported_down)",
            ),
            (
                EventKind::IsrShrunk {
                    topic: "t".into(),
                    partition: 1,
                    leader: Some(1),
                    before: vec![1, 2],
                    after: vec![1],
                    reason: Reason::FollowerLagging,
                },
                "t-1 ISR shrunk 1,2 → 1 (follower_lagging)",
            ),
            (
                EventKind::PartitionOffline {
                    topic: "t".into(),
                    partition: 0,
                    old_leader: Some(1),
                    leader_epoch: 2,
                    isr: vec![1],
                    reason: Reason::SessionExpired,
                },
                "t-0 OFFLINE: leader 1 gone, waits for 1 (session_expired)",
            ),
            (
                EventKind::ProcessRestarted(ProcessRestart {
                    child: "broker-2".into(),
                    broker: Some(2),
                    old_pid: 10,
                    new_pid: 11,
                    exit_code: None,
                    signal: Some("SIGKILL".into()),
                    restart_delay_ms: 100,
                    exited_at_ms: 0,
                }),
                "broker-2 restarted: pid 10 → 11 (killed by SIGKILL, 100 ms delay)",
            ),
            (
                EventKind::BrokerRegistered {
                    broker: 2,
                    pid: 11,
                    old_pid: Some(10),
                },
                "broker 2 registered, pid 11 (was 10)",
            ),
        ];
        for (kind, want) in cases {
            assert_eq!(describe(&kind), want);
        }
    }
}
