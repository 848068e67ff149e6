//! Topic and cluster administration: create, delete, list, describe,
//! status, and the cluster's event history.

use super::metadata::MetadataCache;
use super::ClientError;
use std::collections::BTreeMap;
use std::path::Path;
use yak_protocol::names::validate_topic;
use yak_protocol::{
    Call, ClusterEvent, ClusterMetadata, ErrorBody, ErrorCode, GroupDescription, GroupSummary,
    LeaderMove, LocalPartition, PartitionMove, PartitionOffset, PartitionRef, Reply, TopicConfig,
    TopicMetadata,
};

/// One replica's offsets as its broker reports them.
pub type ReplicaOffsets = BTreeMap<(String, u32, u32), LocalPartition>;

/// Admin client.
pub struct Admin {
    cache: MetadataCache,
}

impl Admin {
    /// Connects to the cluster at `dir`.
    pub fn connect(dir: &Path) -> Result<Admin, ClientError> {
        Ok(Admin {
            cache: MetadataCache::connect(dir)?,
        })
    }

    /// Creates a topic with the cluster's default settings.
    pub fn create_topic(
        &mut self,
        name: &str,
        partitions: Option<u32>,
        replication_factor: Option<u32>,
    ) -> Result<TopicMetadata, ClientError> {
        self.create_topic_with_config(name, partitions, replication_factor, TopicConfig::default())
    }

    /// Creates a topic with per-topic settings (retention) over the cluster defaults.
    pub fn create_topic_with_config(
        &mut self,
        name: &str,
        partitions: Option<u32>,
        replication_factor: Option<u32>,
        config: TopicConfig,
    ) -> Result<TopicMetadata, ClientError> {
        validate_topic(name)
            .map_err(|m| ClientError::Server(ErrorBody::new(ErrorCode::InvalidTopicName, m)))?;
        let call = Call::CreateTopic {
            name: name.to_string(),
            partitions,
            replication_factor,
            config,
        };
        match self.cache.zookeeper_call(&call)? {
            Reply::TopicCreated(t) => Ok(t),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Deletes a topic.
    pub fn delete_topic(&mut self, name: &str) -> Result<(), ClientError> {
        match self.cache.zookeeper_call(&Call::DeleteTopic {
            name: name.to_string(),
        })? {
            Reply::TopicDeleted => Ok(()),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Grows a topic to `count` partitions (a shrink is refused).
    pub fn create_partitions(
        &mut self,
        topic: &str,
        count: u32,
    ) -> Result<TopicMetadata, ClientError> {
        match self.cache.zookeeper_call(&Call::CreatePartitions {
            topic: topic.to_string(),
            count,
        })? {
            Reply::TopicAltered(t) => Ok(t),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Overrides the settings `set` holds and removes those named in
    /// `delete` (Kafka's names: `retention.ms`, ...).
    pub fn alter_topic_config(
        &mut self,
        topic: &str,
        set: TopicConfig,
        delete: &[String],
    ) -> Result<TopicMetadata, ClientError> {
        match self.cache.zookeeper_call(&Call::AlterTopicConfig {
            topic: topic.to_string(),
            set,
            delete: delete.to_vec(),
        })? {
            Reply::TopicAltered(t) => Ok(t),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Starts moving partitions to new replica lists; returns how many move.
    pub fn reassign(
        &mut self,
        moves: Vec<PartitionMove>,
        throttle_bytes_per_sec: Option<u64>,
    ) -> Result<u32, ClientError> {
        match self.cache.zookeeper_call(&Call::ReassignPartitions {
            moves,
            throttle_bytes_per_sec,
        })? {
            Reply::ReassignmentsStarted { started } => Ok(started),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Cancels the reassignments of `partitions` (all or none): each goes
    /// back to its replicas from before; returns how many did.
    pub fn cancel_reassignments(
        &mut self,
        partitions: Vec<PartitionRef>,
    ) -> Result<u32, ClientError> {
        match self
            .cache
            .zookeeper_call(&Call::CancelReassignments { partitions })?
        {
            Reply::ReassignmentsCancelled { cancelled } => Ok(cancelled),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Moves leadership back to preferred replicas that are alive and in the
    /// ISR (of `topic`, or every topic) now; returns what moved.
    pub fn rebalance_leaders(
        &mut self,
        topic: Option<&str>,
    ) -> Result<Vec<LeaderMove>, ClientError> {
        match self.cache.zookeeper_call(&Call::RebalanceLeaders {
            topic: topic.map(str::to_string),
        })? {
            Reply::LeadersRebalanced { moved } => Ok(moved),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Brokers and every topic.
    pub fn metadata(&mut self) -> Result<ClusterMetadata, ClientError> {
        self.cache.refresh().cloned()
    }

    /// One topic.
    pub fn describe_topic(&mut self, name: &str) -> Result<TopicMetadata, ClientError> {
        self.cache.refresh()?;
        self.cache.topic(name)
    }

    /// Every replica each alive broker holds, keyed by (topic, partition, broker).
    /// A broker that cannot be reached is skipped.
    pub fn replica_offsets(&mut self) -> Result<ReplicaOffsets, ClientError> {
        let brokers: Vec<u32> = self
            .cache
            .metadata()
            .brokers
            .iter()
            .filter(|b| b.alive)
            .map(|b| b.id)
            .collect();
        let mut out = BTreeMap::new();
        for id in brokers {
            let reply = self
                .cache
                .broker(id)
                .and_then(|c| c.call(&Call::LocalPartitions));
            match reply {
                Ok(Reply::LocalPartitions { partitions }) => {
                    for p in partitions {
                        out.insert((p.topic.clone(), p.partition, id), p);
                    }
                }
                Ok(_) | Err(_) => self.cache.forget_broker(id),
            }
        }
        Ok(out)
    }

    /// Every consumer group (with members or committed offsets).
    pub fn list_groups(&mut self) -> Result<Vec<GroupSummary>, ClientError> {
        match self.cache.zookeeper_call(&Call::ListGroups)? {
            Reply::Groups { groups } => Ok(groups),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// One group's members, assignment and committed offsets.
    pub fn describe_group(&mut self, group: &str) -> Result<GroupDescription, ClientError> {
        match self.cache.zookeeper_call(&Call::DescribeGroup {
            group: group.to_string(),
        })? {
            Reply::Group(g) => Ok(g),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Each partition of `topic` as its leader reports it (log start, high
    /// watermark, log end offset); `None` where the leader is unreachable.
    pub fn leader_offsets(
        &mut self,
        topic: &str,
    ) -> Result<Vec<(u32, Option<LocalPartition>)>, ClientError> {
        self.cache.refresh()?;
        let t = self.cache.topic(topic)?;
        let replicas = self.replica_offsets()?;
        Ok(t.partitions
            .iter()
            .map(|p| {
                let view = p
                    .leader
                    .and_then(|l| replicas.get(&(topic.to_string(), p.partition, l)).cloned());
                (p.partition, view)
            })
            .collect())
    }

    /// Overwrites a group's committed offsets for `topic`; refused while
    /// the group has members.
    pub fn reset_offsets(
        &mut self,
        group: &str,
        topic: &str,
        offsets: Vec<PartitionOffset>,
    ) -> Result<(), ClientError> {
        let call = Call::ResetOffsets {
            group: group.to_string(),
            topic: topic.to_string(),
            offsets,
        };
        match self.cache.zookeeper_call(&call)? {
            Reply::GroupOk => Ok(()),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// The cluster's events, oldest first: those recorded at or after
    /// `since_ms` (Unix ms) and numbered above `after_seq`, each filter
    /// optional. Asks as many times as it takes to get every match (one
    /// answer holds a bounded page); to follow, call again with the last
    /// event's `seq` as `after_seq`.
    pub fn events(
        &mut self,
        since_ms: Option<i64>,
        after_seq: Option<u64>,
    ) -> Result<Vec<ClusterEvent>, ClientError> {
        let mut out: Vec<ClusterEvent> = Vec::new();
        let mut after = after_seq;
        loop {
            match self.cache.zookeeper_call(&Call::Events {
                after_seq: after,
                since_ms,
                max: None,
            })? {
                Reply::Events { events, more } => {
                    let last = events.last().map(|e| e.seq);
                    out.extend(events);
                    match last {
                        Some(seq) if more => after = Some(seq),
                        _ => return Ok(out),
                    }
                }
                other => return Err(ClientError::Unexpected(format!("{other:?}"))),
            }
        }
    }
}
