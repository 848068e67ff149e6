//! Cluster events: the durable history ZooKeeper keeps of what happened
//! (leader elections, ISR changes, partitions offline and back, broker
//! sessions, process restarts, topics, group rebalances).
//!
//! Owns the event types and their names. Never decides when an event
//! happens (`zookeeper::events` does) and never formats one for people
//! (the CLI does).
//!
//! **Stable names.** An event is a flat map: `seq`, `time_ms`, `kind` (one
//! of the snake_case kind names below) and that kind's fields. These names
//! are what `yak-node cluster events --json` prints, one object per line;
//! they may be added to, never renamed. Kinds:
//!
//! | kind | fields |
//! |---|---|
//! | `leader_elected` | topic, partition, old_leader (null if none), new_leader, leader_epoch, reason |
//! | `partition_offline` | topic, partition, old_leader, leader_epoch, isr (members waited for), reason |
//! | `partition_online` | topic, partition, leader, leader_epoch |
//! | `isr_shrunk` / `isr_expanded` | topic, partition, leader, before, after, reason |
//! | `broker_registered` | broker, pid, old_pid (null the first time) |
//! | `broker_session_expired` | broker, reason |
//! | `process_restarted` | child, broker (null if not a broker), old_pid, new_pid, exit_code, signal, restart_delay_ms, exited_at_ms |
//! | `zookeeper_started` | pid, restart (false only the first time the data dir is used) |
//! | `topic_created` | topic, topic_id, partitions, replication_factor |
//! | `topic_deleted` | topic, topic_id |
//! | `group_rebalanced` | group, generation, members |
//! | `reassignment_started` | topic, partition, replicas (before), target, adding, removing |
//! | `reassignment_replica_caught_up` | topic, partition, broker (a new replica joined the ISR) |
//! | `reassignment_completed` | topic, partition, replicas (the target, now) |
//! | `reassignment_cancelled` | topic, partition, replicas (back to the ones before), target (given up) |
//!
//! A `reason` is one of [`Reason`]'s snake_case names.

use serde::{Deserialize, Serialize};

/// One thing that happened in the cluster, numbered by ZooKeeper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterEvent {
    /// Raised by one per event, never reused (across ZooKeeper restarts too).
    pub seq: u64,
    /// When ZooKeeper recorded it, in Unix milliseconds.
    pub time_ms: i64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Why a leader, an ISR or a broker's session changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A broker sent no heartbeat for the session timeout.
    SessionExpired,
    /// The supervisor reported the broker's process gone.
    ReportedDown,
    /// A broker whose session had already ended (earlier, or before a
    /// ZooKeeper restart) was still named; failed over now.
    NotAlive,
    /// An ISR member of an offline partition came back and leads it.
    IsrMemberReturned,
    /// The leader asked to drop followers that stopped catching up.
    FollowerLagging,
    /// The leader asked to add a follower that caught up.
    FollowerCaughtUp,
    /// Leadership moved back to the preferred replica (the first in the
    /// replica list), alive and in the ISR again.
    PreferredLeader,
}

/// A child process the supervisor restarted (reported by the supervisor
/// with [`crate::Call::ProcessRestarted`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRestart {
    /// The child's name: `zookeeper`, `broker-2`, `producer-1`, ...
    pub child: String,
    /// The broker id, if the child is a broker.
    #[serde(default)]
    pub broker: Option<u32>,
    /// Pid of the process that exited.
    pub old_pid: u32,
    /// Pid of the process started in its place.
    pub new_pid: u32,
    /// Its exit status, if it exited.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// The signal that killed it (`SIGKILL`), if one did.
    #[serde(default)]
    pub signal: Option<String>,
    /// The backoff the supervisor waited before starting it again.
    pub restart_delay_ms: u64,
    /// When the supervisor saw it exit, in Unix milliseconds.
    pub exited_at_ms: i64,
}

/// What happened, with the kind's own fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// A partition got a new leader.
    LeaderElected {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// The leader before (none if the partition was offline).
        old_leader: Option<u32>,
        /// The leader now.
        new_leader: u32,
        /// The new leader epoch.
        leader_epoch: u32,
        /// Why.
        reason: Reason,
    },
    /// A partition lost its leader and no ISR member is alive to lead it.
    PartitionOffline {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// The leader it lost.
        old_leader: Option<u32>,
        /// The leader epoch (raised).
        leader_epoch: u32,
        /// The ISR members it waits for.
        isr: Vec<u32>,
        /// Why the leader went.
        reason: Reason,
    },
    /// An offline partition has a leader again.
    PartitionOnline {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// The leader now.
        leader: u32,
        /// The leader epoch.
        leader_epoch: u32,
    },
    /// Members left a partition's ISR.
    IsrShrunk {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// The leader after the change (none if offline).
        leader: Option<u32>,
        /// ISR before.
        before: Vec<u32>,
        /// ISR after.
        after: Vec<u32>,
        /// Why.
        reason: Reason,
    },
    /// Members joined a partition's ISR.
    IsrExpanded {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// The leader after the change.
        leader: Option<u32>,
        /// ISR before.
        before: Vec<u32>,
        /// ISR after.
        after: Vec<u32>,
        /// Why.
        reason: Reason,
    },
    /// A broker registered (at its start, or again after a ZooKeeper restart).
    BrokerRegistered {
        /// Broker id.
        broker: u32,
        /// Its process id.
        pid: u32,
        /// The pid it registered with before, if ZooKeeper knew one.
        old_pid: Option<u32>,
    },
    /// A broker's session ended.
    BrokerSessionExpired {
        /// Broker id.
        broker: u32,
        /// `session_expired`, `reported_down`.
        reason: Reason,
    },
    /// The supervisor restarted a child process.
    ProcessRestarted(ProcessRestart),
    /// ZooKeeper opened its metadata and started serving.
    ZookeeperStarted {
        /// Its process id.
        pid: u32,
        /// False only the first time the data dir is used.
        restart: bool,
    },
    /// A topic was created.
    TopicCreated {
        /// Topic name.
        topic: String,
        /// Its id.
        topic_id: u64,
        /// Partition count.
        partitions: u32,
        /// Replicas per partition.
        replication_factor: u32,
    },
    /// A topic was deleted.
    TopicDeleted {
        /// Topic name.
        topic: String,
        /// Its id.
        topic_id: u64,
    },
    /// A consumer group completed a rebalance.
    GroupRebalanced {
        /// Group name.
        group: String,
        /// The new generation.
        generation: u32,
        /// Member ids, sorted.
        members: Vec<String>,
    },
    /// A partition started moving to new replicas (KIP-455).
    ReassignmentStarted {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// Its replicas before.
        replicas: Vec<u32>,
        /// The replicas it moves to, preferred leader first.
        target: Vec<u32>,
        /// Brokers that get a copy.
        adding: Vec<u32>,
        /// Brokers whose copy goes once the move completes.
        removing: Vec<u32>,
    },
    /// A new replica of a moving partition caught up and joined the ISR.
    ReassignmentReplicaCaughtUp {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// The new replica's broker.
        broker: u32,
    },
    /// A move completed: the partition's replicas are the target's.
    ReassignmentCompleted {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// Its replicas now.
        replicas: Vec<u32>,
    },
    /// A move was cancelled: the partition went back to its replicas.
    ReassignmentCancelled {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// Its replicas now (the ones from before the move).
        replicas: Vec<u32>,
        /// The target given up.
        target: Vec<u32>,
    },
}

impl EventKind {
    /// The stable snake_case name of this kind (the `kind` field).
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::LeaderElected { .. } => "leader_elected",
            EventKind::PartitionOffline { .. } => "partition_offline",
            EventKind::PartitionOnline { .. } => "partition_online",
            EventKind::IsrShrunk { .. } => "isr_shrunk",
            EventKind::IsrExpanded { .. } => "isr_expanded",
            EventKind::BrokerRegistered { .. } => "broker_registered",
            EventKind::BrokerSessionExpired { .. } => "broker_session_expired",
            EventKind::ProcessRestarted(_) => "process_restarted",
            EventKind::ZookeeperStarted { .. } => "zookeeper_started",
            EventKind::TopicCreated { .. } => "topic_created",
            EventKind::TopicDeleted { .. } => "topic_deleted",
            EventKind::GroupRebalanced { .. } => "group_rebalanced",
            EventKind::ReassignmentStarted { .. } => "reassignment_started",
            EventKind::ReassignmentReplicaCaughtUp { .. } => "reassignment_replica_caught_up",
            EventKind::ReassignmentCompleted { .. } => "reassignment_completed",
            EventKind::ReassignmentCancelled { .. } => "reassignment_cancelled",
        }
    }
}

impl Reason {
    /// The stable snake_case name (as in `--json`).
    pub fn name(self) -> &'static str {
        match self {
            Reason::SessionExpired => "session_expired",
            Reason::ReportedDown => "reported_down",
            Reason::NotAlive => "not_alive",
            Reason::IsrMemberReturned => "isr_member_returned",
            Reason::FollowerLagging => "follower_lagging",
            Reason::FollowerCaughtUp => "follower_caught_up",
            Reason::PreferredLeader => "preferred_leader",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<ClusterEvent> {
        let kinds = vec![
            EventKind::LeaderElected {
                topic: "orders".into(),
                partition: 0,
                old_leader: Some(2),
                new_leader: 3,
                leader_epoch: 5,
                reason: Reason::ReportedDown,
            },
            EventKind::PartitionOffline {
                topic: "t".into(),
                partition: 1,
                old_leader: None,
                leader_epoch: 2,
                isr: vec![1],
                reason: Reason::SessionExpired,
            },
            EventKind::IsrShrunk {
                topic: "t".into(),
                partition: 1,
                leader: Some(1),
                before: vec![1, 2],
                after: vec![1],
                reason: Reason::FollowerLagging,
            },
            EventKind::BrokerRegistered {
                broker: 2,
                pid: 77,
                old_pid: None,
            },
            EventKind::ProcessRestarted(ProcessRestart {
                child: "broker-2".into(),
                broker: Some(2),
                old_pid: 10,
                new_pid: 11,
                exit_code: None,
                signal: Some("SIGKILL".into()),
                restart_delay_ms: 100,
                exited_at_ms: 1_700_000_000_000,
            }),
            EventKind::ZookeeperStarted {
                pid: 5,
                restart: true,
            },
            EventKind::GroupRebalanced {
                group: "g".into(),
                generation: 3,
                members: vec!["a".into()],
            },
            EventKind::ReassignmentStarted {
                topic: "t".into(),
                partition: 0,
                replicas: vec![1, 2, 3],
                target: vec![4, 2, 3],
                adding: vec![4],
                removing: vec![1],
            },
            EventKind::ReassignmentReplicaCaughtUp {
                topic: "t".into(),
                partition: 0,
                broker: 4,
            },
            EventKind::ReassignmentCompleted {
                topic: "t".into(),
                partition: 0,
                replicas: vec![4, 2, 3],
            },
            EventKind::ReassignmentCancelled {
                topic: "t".into(),
                partition: 0,
                replicas: vec![1, 2, 3],
                target: vec![4, 2, 3],
            },
        ];
        kinds
            .into_iter()
            .enumerate()
            .map(|(i, kind)| ClusterEvent {
                seq: i as u64,
                time_ms: -1 + i as i64,
                kind,
            })
            .collect()
    }

    #[test]
    fn given_every_kind_when_round_tripped_through_messagepack_should_be_equal() {
        for e in samples() {
            let bytes = rmp_serde::to_vec_named(&e).expect("encode");
            let back: ClusterEvent = rmp_serde::from_slice(&bytes).expect("decode");
            assert_eq!(back, e);
        }
    }

    #[test]
    fn given_event_when_serialized_to_json_should_be_one_flat_object_with_stable_names() {
        let e = &samples()[0];
        let v = serde_json::to_value(e).expect("json");
        assert_eq!(
            v,
            serde_json::json!({
                "seq": 0, "time_ms": -1, "kind": "leader_elected", "topic": "orders", "partition": 0,
                "old_leader": 2, "new_leader": 3, "leader_epoch": 5, "reason": "reported_down",
            })
        );
        let restart = serde_json::to_value(&samples()[4]).expect("json");
        assert_eq!(restart["kind"], "process_restarted");
        assert_eq!(restart["signal"], "SIGKILL");
        assert_eq!(restart["old_pid"], 10);
        for e in samples() {
            let v = serde_json::to_value(&e).expect("json");
            assert_eq!(v["kind"], e.kind.name(), "name() matches the serde name");
            let back: ClusterEvent = serde_json::from_value(v).expect("parse back");
            assert_eq!(back, e);
        }
        assert_eq!(
            serde_json::to_value(Reason::IsrMemberReturned).expect("json"),
            Reason::IsrMemberReturned.name()
        );
    }
}
