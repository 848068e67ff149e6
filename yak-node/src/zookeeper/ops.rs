//! ZooKeeper's handlers for operating a live cluster: growing a topic,
//! changing its settings, starting reassignments, and the session tick's
//! step that moves reassignments on. The plans are `alter.rs` and
//! `reassign.rs` (pure); this file only appends and applies them, each
//! record durable before it is applied. Never touches partition data.

use super::{alter, reassign, Inner, ZooKeeper};
use crate::protocol::metalog::MetaRecord;
use crate::protocol::{
    ErrorBody, ErrorCode, EventKind, PartitionMove, PartitionRef, Reason, Reply, TopicConfig,
    TopicMetadata,
};
use std::time::Instant;

impl ZooKeeper {
    fn topic_reply(inner: &Inner, topic: &str) -> Result<TopicMetadata, ErrorBody> {
        inner.state.topic(topic).cloned().ok_or_else(|| {
            ErrorBody::new(
                ErrorCode::UnknownTopic,
                format!("topic '{topic}' does not exist"),
            )
        })
    }

    /// `CreatePartitions`: grows a topic. Groups reading it rebalance on
    /// their next tick (their partition count changed).
    pub(super) fn add_partitions(&self, topic: &str, count: u32) -> Result<Reply, ErrorBody> {
        let mut inner = self.lock();
        let alive = inner.sessions.alive(Instant::now());
        let record = alter::plan_add_partitions(&inner.state, topic, count, &alive)?;
        let before = inner.state.topic(topic).map_or(0, |t| t.partitions.len());
        Self::commit(&mut inner, record)?;
        tracing::info!(topic, before, after = count, "partitions added");
        Ok(Reply::TopicAltered(Self::topic_reply(&inner, topic)?))
    }

    /// `AlterTopicConfig`: brokers apply the new settings when they reload
    /// metadata (the version moves).
    pub(super) fn alter_topic_config(
        &self,
        topic: &str,
        set: TopicConfig,
        delete: &[String],
    ) -> Result<Reply, ErrorBody> {
        let mut inner = self.lock();
        if let Some(record) = alter::plan_alter_config(&inner.state, topic, set, delete)? {
            if let MetaRecord::TopicConfigChanged { config, .. } = &record {
                tracing::info!(topic, config = ?config, "topic config changed");
            }
            Self::commit(&mut inner, record)?;
        }
        Ok(Reply::TopicAltered(Self::topic_reply(&inner, topic)?))
    }

    /// `ReassignPartitions`: all moves are checked first, then each start
    /// is appended; the tick moves them on.
    pub(super) fn reassign(
        &self,
        moves: &[PartitionMove],
        throttle_bytes_per_sec: Option<u64>,
    ) -> Result<Reply, ErrorBody> {
        let mut inner = self.lock();
        let alive = inner.sessions.alive(Instant::now());
        let records = reassign::plan_reassign(&inner.state, moves, throttle_bytes_per_sec, &alive)?;
        let started = records.len() as u32;
        for record in records {
            let mut kinds = Vec::new();
            if let MetaRecord::ReassignmentStarted {
                topic,
                partition,
                reassignment,
                ..
            } = &record
            {
                tracing::info!(topic = %topic, partition, target = ?reassignment.target,
                    adding = ?reassignment.adding, removing = ?reassignment.removing,
                    throttle_bytes_per_sec = ?reassignment.throttle_bytes_per_sec, "reassignment started");
                kinds.push(EventKind::ReassignmentStarted {
                    topic: topic.clone(),
                    partition: *partition,
                    replicas: reassignment.original.clone(),
                    target: reassignment.target.clone(),
                    adding: reassignment.adding.clone(),
                    removing: reassignment.removing.clone(),
                });
            }
            Self::commit_with(&mut inner, record, kinds)?;
        }
        Ok(Reply::ReassignmentsStarted { started })
    }

    /// `CancelReassignments`: all are checked first, then each partition
    /// goes back to its original replicas in one record (with its event).
    pub(super) fn cancel_reassignments(
        &self,
        partitions: &[PartitionRef],
    ) -> Result<Reply, ErrorBody> {
        let mut inner = self.lock();
        let alive = inner.sessions.alive(Instant::now());
        let records = reassign::plan_cancel(&inner.state, partitions, &alive)?;
        let cancelled = records.len() as u32;
        for record in records {
            let mut kinds = Vec::new();
            if let MetaRecord::ReassignmentCancelled {
                topic,
                partition,
                replicas,
                leader,
                isr,
                leader_epoch,
            } = &record
            {
                let old = inner
                    .state
                    .topic(topic)
                    .and_then(|t| t.partitions.get(*partition as usize))
                    .cloned();
                tracing::info!(topic = %topic, partition, replicas = ?replicas, leader = ?leader, "reassignment cancelled");
                if let Some(old) = old {
                    let target = old
                        .reassignment
                        .as_ref()
                        .map(|r| r.target.clone())
                        .unwrap_or_default();
                    kinds = super::events::partition_changed(
                        topic,
                        &old,
                        *leader,
                        isr,
                        *leader_epoch,
                        &|_| Reason::PreferredLeader,
                    );
                    kinds.push(EventKind::ReassignmentCancelled {
                        topic: topic.clone(),
                        partition: *partition,
                        replicas: replicas.clone(),
                        target,
                    });
                }
            }
            Self::commit_with(&mut inner, record, kinds)?;
        }
        Ok(Reply::ReassignmentsCancelled { cancelled })
    }

    /// `ForgetBroker`: the supervisor removed this broker; its session goes
    /// (it is no longer listed), unless a partition still names it or it
    /// is alive.
    pub(super) fn forget_broker(&self, broker_id: u32) -> Result<Reply, ErrorBody> {
        let inner = self.lock();
        let holding = inner.state.topics().find_map(|t| {
            t.partitions
                .iter()
                .find(|p| p.replicas.contains(&broker_id))
                .map(|p| format!("{}-{}", t.name, p.partition))
        });
        if let Some(tp) = holding {
            return Err(ErrorBody::new(
                ErrorCode::InvalidRequest,
                format!("broker {broker_id} still holds a replica of {tp}"),
            ));
        }
        if inner.sessions.forget(broker_id, Instant::now()) {
            tracing::info!(broker = broker_id, "removed broker forgotten");
        }
        Ok(Reply::BrokerForgotten)
    }

    /// Moves every reassignment on by one step where it can (a leader onto
    /// the target, or the completion); called on every session tick.
    pub(super) fn step_reassignments(inner: &mut Inner) {
        let alive = inner.sessions.alive(Instant::now());
        for record in reassign::plan_reassignment_steps(&inner.state, &alive) {
            let kinds = match &record {
                MetaRecord::PartitionChanged {
                    topic,
                    partition,
                    leader,
                    isr,
                    leader_epoch,
                } => {
                    let old = inner
                        .state
                        .topic(topic)
                        .and_then(|t| t.partitions.get(*partition as usize))
                        .cloned();
                    tracing::info!(topic = %topic, partition, new_leader = ?leader, leader_epoch, "reassignment: leader moves onto the target replicas");
                    old.map(|old| {
                        super::events::partition_changed(
                            topic,
                            &old,
                            *leader,
                            isr,
                            *leader_epoch,
                            &|_| Reason::PreferredLeader,
                        )
                    })
                    .unwrap_or_default()
                }
                MetaRecord::ReassignmentCompleted {
                    topic,
                    partition,
                    replicas,
                    ..
                } => {
                    tracing::info!(topic = %topic, partition, replicas = ?replicas, "reassignment completed");
                    vec![EventKind::ReassignmentCompleted {
                        topic: topic.clone(),
                        partition: *partition,
                        replicas: replicas.clone(),
                    }]
                }
                _ => Vec::new(),
            };
            if let Err(e) = Self::commit_with(inner, record, kinds) {
                tracing::error!(error = %e, "cannot record a reassignment step");
                return;
            }
        }
    }
}
