//! The metadata state machine: topics, placements, leaders, producer ids.
//! No I/O: the server appends each [`MetaRecord`] to the metadata log, then
//! applies it here. Replaying the log rebuilds the same state.

use crate::limits::{DELETED_TOPIC_IDS_MAX, PARTITIONS_MAX, TOPIC_REPLICAS_MAX};
use crate::protocol::metalog::{MetaRecord, MetaSnapshot};
use crate::protocol::names::validate_topic;
use crate::protocol::{
    ErrorBody, ErrorCode, GroupTopicOffsets, PartitionMetadata, PartitionOffset, TopicConfig,
    TopicMetadata,
};
use std::collections::{BTreeMap, VecDeque};

/// Cluster defaults for topics created without explicit counts.
#[derive(Debug, Clone, Copy)]
pub struct TopicDefaults {
    /// Partitions per topic.
    pub partitions: u32,
    /// Replicas per partition.
    pub replication_factor: u32,
}

/// Everything ZooKeeper remembers across restarts.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MetadataState {
    /// Raised by every applied record.
    pub version: u64,
    next_topic_id: u64,
    next_producer_id: i64,
    topics: BTreeMap<String, TopicMetadata>,
    /// Committed offsets: (group, topic) → partition → next offset to read.
    offsets: BTreeMap<(String, String), BTreeMap<u32, u64>>,
    /// Kafka commit metadata strings of committed offsets that have one.
    offset_metadata: BTreeMap<(String, String), BTreeMap<u32, String>>,
    /// Created once, by the first record ZooKeeper ever writes.
    cluster_id: Option<String>,
    /// The last [`DELETED_TOPIC_IDS_MAX`] deleted topic ids, oldest first.
    deleted_topic_ids: VecDeque<u64>,
}

impl MetadataState {
    /// State from a snapshot.
    pub fn from_snapshot(s: MetaSnapshot) -> Self {
        MetadataState {
            version: s.version,
            next_topic_id: s.next_topic_id,
            next_producer_id: s.next_producer_id,
            topics: s.topics.into_iter().map(|t| (t.name.clone(), t)).collect(),
            offset_metadata: s
                .group_offsets
                .iter()
                .filter(|g| !g.metadata.is_empty())
                .map(|g| ((g.group.clone(), g.topic.clone()), g.metadata.clone()))
                .collect(),
            offsets: s
                .group_offsets
                .into_iter()
                .map(|g| {
                    (
                        (g.group, g.topic),
                        g.offsets.iter().map(|o| (o.partition, o.offset)).collect(),
                    )
                })
                .collect(),
            cluster_id: s.cluster_id,
            deleted_topic_ids: s.deleted_topic_ids.into(),
        }
    }

    /// The whole state as a snapshot.
    pub fn snapshot(&self) -> MetaSnapshot {
        MetaSnapshot {
            version: self.version,
            next_topic_id: self.next_topic_id,
            next_producer_id: self.next_producer_id,
            topics: self.topics.values().cloned().collect(),
            group_offsets: self
                .offsets
                .iter()
                .map(|(key, offsets)| GroupTopicOffsets {
                    group: key.0.clone(),
                    topic: key.1.clone(),
                    offsets: to_partition_offsets(offsets),
                    metadata: self.offset_metadata.get(key).cloned().unwrap_or_default(),
                })
                .collect(),
            cluster_id: self.cluster_id.clone(),
            deleted_topic_ids: self.deleted_topic_ids.iter().copied().collect(),
            ..MetaSnapshot::default()
        }
    }

    /// The cluster's id, once created.
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    /// The most recently deleted topic ids, oldest first (bounded).
    pub fn deleted_topic_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.deleted_topic_ids.iter().copied()
    }

    /// A group's committed offsets for a topic (empty if none).
    pub fn committed_offsets(&self, group: &str, topic: &str) -> Vec<PartitionOffset> {
        self.offsets
            .get(&(group.to_string(), topic.to_string()))
            .map(to_partition_offsets)
            .unwrap_or_default()
    }

    /// A group's commit metadata strings for a topic, per partition that has one.
    pub fn offset_metadata(&self, group: &str, topic: &str) -> BTreeMap<u32, String> {
        self.offset_metadata
            .get(&(group.to_string(), topic.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// Every group with committed offsets, and the topics they are for.
    pub fn groups_with_offsets(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (group, topic) in self.offsets.keys() {
            out.entry(group.clone()).or_default().push(topic.clone());
        }
        out
    }

    /// Checks offsets to commit for a group (the caller has checked the
    /// member and generation); `None` when nothing would change.
    pub fn plan_commit_offsets(
        &self,
        group: &str,
        topic: &str,
        offsets: &[PartitionOffset],
    ) -> Result<Option<MetaRecord>, ErrorBody> {
        self.plan_commit_offsets_with(group, topic, offsets, &BTreeMap::new())
    }

    /// [`Self::plan_commit_offsets`] with Kafka commit metadata strings
    /// (a partition without one loses the one it had).
    pub fn plan_commit_offsets_with(
        &self,
        group: &str,
        topic: &str,
        offsets: &[PartitionOffset],
        metadata: &BTreeMap<u32, String>,
    ) -> Result<Option<MetaRecord>, ErrorBody> {
        if group.is_empty() || group.len() > crate::limits::GROUP_NAME_CHARS_MAX {
            return Err(ErrorBody::new(
                ErrorCode::InvalidRequest,
                format!(
                    "a group name must have 1 to {} characters",
                    crate::limits::GROUP_NAME_CHARS_MAX
                ),
            ));
        }
        let t = self.topics.get(topic).ok_or_else(|| {
            ErrorBody::new(
                ErrorCode::UnknownTopic,
                format!("topic '{topic}' does not exist"),
            )
        })?;
        if let Some(bad) = offsets
            .iter()
            .find(|o| o.partition as usize >= t.partitions.len())
        {
            return Err(ErrorBody::new(
                ErrorCode::UnknownPartition,
                format!(
                    "topic '{topic}' has {} partitions; there is no partition {}",
                    t.partitions.len(),
                    bad.partition
                ),
            ));
        }
        let key = (group.to_string(), topic.to_string());
        let current = self.offsets.get(&key);
        let current_meta = self.offset_metadata.get(&key);
        let changed: Vec<PartitionOffset> = offsets
            .iter()
            .copied()
            .filter(|o| {
                current.and_then(|c| c.get(&o.partition)) != Some(&o.offset)
                    || current_meta.and_then(|m| m.get(&o.partition)) != metadata.get(&o.partition)
            })
            .collect();
        if changed.is_empty() {
            return Ok(None);
        }
        let metadata = changed
            .iter()
            .filter_map(|o| metadata.get(&o.partition).map(|m| (o.partition, m.clone())))
            .collect();
        Ok(Some(MetaRecord::OffsetsCommitted(GroupTopicOffsets {
            group: group.to_string(),
            topic: topic.to_string(),
            offsets: changed,
            metadata,
        })))
    }

    /// A topic by name.
    pub fn topic(&self, name: &str) -> Option<&TopicMetadata> {
        self.topics.get(name)
    }

    /// Every topic, by name.
    pub fn topics(&self) -> impl Iterator<Item = &TopicMetadata> {
        self.topics.values()
    }

    /// One page of a metadata answer: whole topics in name order, named
    /// after `after` (all when `None`), of those in `names` (every topic
    /// when `None`), up to about `budget_bytes` encoded (at least one
    /// topic). Returns the page and whether topics are left.
    pub fn metadata_page(
        &self,
        names: Option<&[String]>,
        after: Option<&str>,
        budget_bytes: usize,
    ) -> (Vec<TopicMetadata>, bool) {
        let after = |n: &str| after.is_none_or(|a| n > a);
        let mut selected: Box<dyn Iterator<Item = &TopicMetadata>> = match names {
            None => Box::new(self.topics.values().filter(|t| after(&t.name))),
            Some(names) => {
                // Each name once: a request repeating one name must not clone its topic over and over.
                let names: std::collections::BTreeSet<&String> =
                    names.iter().filter(|n| after(n)).collect();
                Box::new(names.into_iter().filter_map(|n| self.topics.get(n)))
            }
        };
        let (mut page, mut used) = (Vec::new(), 0);
        for t in &mut selected {
            let size = encoded_bytes_max(t);
            if !page.is_empty() && used + size > budget_bytes {
                return (page, true);
            }
            used += size;
            page.push(t.clone());
        }
        (page, false)
    }

    /// Plans the creation of a topic over the alive brokers (sorted ids).
    /// Replicas are spread round-robin, each partition starting one broker
    /// further, so leaders are spread evenly. `config` is stored with the
    /// topic as given (brokers apply their defaults where it is silent).
    pub fn plan_create(
        &self,
        name: &str,
        partitions: Option<u32>,
        replication_factor: Option<u32>,
        config: TopicConfig,
        defaults: TopicDefaults,
        alive_brokers: &[u32],
    ) -> Result<MetaRecord, ErrorBody> {
        validate_topic(name).map_err(|m| ErrorBody::new(ErrorCode::InvalidTopicName, m))?;
        if self.topics.contains_key(name) {
            return Err(ErrorBody::new(
                ErrorCode::TopicAlreadyExists,
                format!("topic '{name}' already exists"),
            ));
        }
        let partitions = partitions.unwrap_or(defaults.partitions);
        if partitions == 0 || partitions > PARTITIONS_MAX {
            return Err(ErrorBody::new(
                ErrorCode::InvalidPartitions,
                format!("partition count must be between 1 and {PARTITIONS_MAX}, got {partitions}"),
            ));
        }
        if alive_brokers.is_empty() {
            return Err(ErrorBody::new(
                ErrorCode::NoBrokersAvailable,
                "no broker is alive to hold the topic",
            ));
        }
        let explicit_rf = replication_factor.is_some();
        if u64::from(partitions)
            * u64::from(replication_factor.unwrap_or(defaults.replication_factor))
            > TOPIC_REPLICAS_MAX
        {
            return Err(ErrorBody::new(
                ErrorCode::InvalidPartitions,
                format!("partitions × replication factor must be at most {TOPIC_REPLICAS_MAX}"),
            ));
        }
        let mut rf = replication_factor.unwrap_or(defaults.replication_factor);
        if rf == 0 {
            return Err(ErrorBody::new(
                ErrorCode::InvalidPartitions,
                "replication factor must be at least 1",
            ));
        }
        if rf as usize > alive_brokers.len() {
            if explicit_rf {
                return Err(ErrorBody::new(
                    ErrorCode::InvalidPartitions,
                    format!(
                        "replication factor {rf} is larger than the {} alive brokers",
                        alive_brokers.len()
                    ),
                ));
            }
            rf = alive_brokers.len() as u32;
        }
        super::alter::check_config(&config, rf)?;
        let n = alive_brokers.len();
        let start = (self.next_topic_id as usize) % n;
        let partitions = place_partitions(alive_brokers, start, 0..partitions, rf as usize);
        Ok(MetaRecord::TopicCreated(TopicMetadata {
            name: name.to_string(),
            topic_id: self.next_topic_id + 1,
            partitions,
            config,
        }))
    }

    /// Plans the deletion of a topic.
    pub fn plan_delete(&self, name: &str) -> Result<MetaRecord, ErrorBody> {
        if !self.topics.contains_key(name) {
            return Err(ErrorBody::new(
                ErrorCode::UnknownTopic,
                format!("topic '{name}' does not exist"),
            ));
        }
        Ok(MetaRecord::TopicDeleted {
            name: name.to_string(),
        })
    }

    /// Leader and ISR changes that follow from the set of alive brokers
    /// (sorted ids). For each partition: dead members leave the ISR (which
    /// never becomes empty, so its last member can return and lead); a dead
    /// or missing leader is replaced by the first replica, in preferred
    /// order, that is alive and in the ISR, with the epoch raised by one;
    /// with none, the partition goes offline (no leader, epoch raised) and
    /// waits for an ISR member. Never elects outside the ISR.
    pub fn plan_failover(&self, alive: &[u32]) -> Vec<MetaRecord> {
        let mut out = Vec::new();
        for t in self.topics.values() {
            for p in &t.partitions {
                let alive_isr: Vec<u32> = p
                    .isr
                    .iter()
                    .copied()
                    .filter(|b| alive.contains(b))
                    .collect();
                let leader_alive = p.leader.is_some_and(|l| alive.contains(&l));
                let change = if leader_alive {
                    if alive_isr != p.isr {
                        Some((p.leader, alive_isr, p.leader_epoch))
                    } else {
                        None
                    }
                } else if !alive_isr.is_empty() {
                    let leader = p.replicas.iter().copied().find(|r| alive_isr.contains(r));
                    Some((leader, alive_isr, p.leader_epoch + 1))
                } else if p.leader.is_some() {
                    Some((None, p.isr.clone(), p.leader_epoch + 1))
                } else {
                    None
                };
                if let Some((leader, isr, leader_epoch)) = change {
                    out.push(MetaRecord::PartitionChanged {
                        topic: t.name.clone(),
                        partition: p.partition,
                        leader,
                        isr,
                        leader_epoch,
                    });
                }
            }
        }
        out
    }

    /// Leadership back on preferred replicas (Kafka's preferred leader
    /// election): for each partition of `topic` (every topic if `None`) led
    /// by a broker other than its preferred replica (the first in its
    /// replica list) while that replica is alive and in the ISR, the
    /// preferred replica leads with the epoch raised by one; the ISR stays.
    /// A partition without a leader is [`MetadataState::plan_failover`]'s,
    /// and a preferred replica outside the ISR is never elected.
    pub fn plan_preferred_leaders(&self, alive: &[u32], topic: Option<&str>) -> Vec<MetaRecord> {
        let mut out = Vec::new();
        for t in self
            .topics
            .values()
            .filter(|t| topic.is_none_or(|name| t.name == name))
        {
            for p in &t.partitions {
                let Some(preferred) = p.replicas.first().copied() else {
                    continue;
                };
                let movable = p.leader.is_some_and(|l| l != preferred)
                    && p.isr.contains(&preferred)
                    && alive.contains(&preferred);
                if movable {
                    out.push(MetaRecord::PartitionChanged {
                        topic: t.name.clone(),
                        partition: p.partition,
                        leader: Some(preferred),
                        isr: p.isr.clone(),
                        leader_epoch: p.leader_epoch + 1,
                    });
                }
            }
        }
        out
    }

    /// Checks a leader's request to change an ISR; refuses a stale leader
    /// epoch, and a change based on a partition state that has changed since
    /// (`partition_epoch`, compare-and-set: a late proposal must not restore
    /// a member a failover just removed).
    #[allow(clippy::too_many_arguments)]
    pub fn plan_alter_isr(
        &self,
        topic: &str,
        partition: u32,
        leader: u32,
        leader_epoch: u32,
        partition_epoch: u64,
        isr: &[u32],
        alive: &[u32],
    ) -> Result<Option<MetaRecord>, ErrorBody> {
        let p = self
            .topics
            .get(topic)
            .ok_or_else(|| {
                ErrorBody::new(
                    ErrorCode::UnknownTopic,
                    format!("topic '{topic}' does not exist"),
                )
            })?
            .partitions
            .get(partition as usize)
            .ok_or_else(|| {
                ErrorBody::new(
                    ErrorCode::UnknownPartition,
                    format!("{topic} has no partition {partition}"),
                )
            })?;
        if p.leader != Some(leader) || p.leader_epoch != leader_epoch {
            return Err(ErrorBody::new(
                ErrorCode::FencedLeaderEpoch,
                format!(
                    "{topic}-{partition}: broker {leader} at epoch {leader_epoch} is not the leader (leader {:?}, epoch {})",
                    p.leader, p.leader_epoch
                ),
            ));
        }
        if p.partition_epoch != partition_epoch {
            return Err(ErrorBody::new(
                ErrorCode::InvalidUpdateVersion,
                format!(
                    "{topic}-{partition}: ISR change based on partition epoch {partition_epoch}, but it is at {} (ISR {:?})",
                    p.partition_epoch, p.isr
                ),
            ));
        }
        let mut new_isr: Vec<u32> = isr
            .iter()
            .copied()
            .filter(|b| p.replicas.contains(b) && alive.contains(b))
            .collect();
        new_isr.sort_unstable();
        new_isr.dedup();
        if !new_isr.contains(&leader) {
            return Err(ErrorBody::new(
                ErrorCode::InvalidRequest,
                "an ISR must contain its leader",
            ));
        }
        let mut current = p.isr.clone();
        current.sort_unstable();
        if current == new_isr {
            return Ok(None);
        }
        Ok(Some(MetaRecord::PartitionChanged {
            topic: topic.to_string(),
            partition,
            leader: Some(leader),
            isr: new_isr,
            leader_epoch,
        }))
    }

    /// The next producer id to hand out.
    pub fn next_producer_id(&self) -> i64 {
        self.next_producer_id
    }

    /// Applies one record. Records come from the log, so they are trusted;
    /// a record about an unknown topic changes nothing but the version.
    /// Events are not metadata: they change nothing here, not even the
    /// version (brokers reload metadata when it changes).
    pub fn apply(&mut self, record: &MetaRecord) {
        if matches!(record, MetaRecord::Events(_)) {
            return;
        }
        self.version += 1;
        match record {
            MetaRecord::TopicCreated(t) => {
                self.next_topic_id = self.next_topic_id.max(t.topic_id);
                self.topics.insert(t.name.clone(), t.clone());
            }
            MetaRecord::TopicDeleted { name } => {
                if let Some(t) = self.topics.remove(name) {
                    // Brokers delete a replica's files only for an id listed here.
                    self.deleted_topic_ids.push_back(t.topic_id);
                    while self.deleted_topic_ids.len() > DELETED_TOPIC_IDS_MAX {
                        self.deleted_topic_ids.pop_front();
                    }
                }
                // A re-created topic starts empty: old committed offsets go.
                self.offsets.retain(|(_, topic), _| topic != name);
                self.offset_metadata.retain(|(_, topic), _| topic != name);
            }
            MetaRecord::PartitionChanged {
                topic,
                partition,
                leader,
                isr,
                leader_epoch,
            } => {
                let p = self
                    .topics
                    .get_mut(topic)
                    .and_then(|t| t.partitions.get_mut(*partition as usize));
                if let Some(p) = p {
                    p.leader = *leader;
                    p.isr = isr.clone();
                    p.leader_epoch = *leader_epoch;
                    p.partition_epoch += 1;
                }
            }
            MetaRecord::PartitionsAdded { topic, partitions } => {
                if let Some(t) = self.topics.get_mut(topic) {
                    // Trusted, but only ever appended in index order.
                    for p in partitions {
                        if p.partition as usize == t.partitions.len() {
                            t.partitions.push(p.clone());
                        }
                    }
                }
            }
            MetaRecord::TopicConfigChanged { topic, config } => {
                if let Some(t) = self.topics.get_mut(topic) {
                    t.config = *config;
                }
            }
            MetaRecord::ReassignmentStarted {
                topic,
                partition,
                replicas,
                reassignment,
            } => {
                if let Some(p) = self.partition_mut(topic, *partition) {
                    p.replicas = replicas.clone();
                    p.reassignment = Some(reassignment.clone());
                    p.partition_epoch += 1;
                }
            }
            MetaRecord::ReassignmentCompleted {
                topic,
                partition,
                replicas,
                leader,
                isr,
                leader_epoch,
            }
            | MetaRecord::ReassignmentCancelled {
                topic,
                partition,
                replicas,
                leader,
                isr,
                leader_epoch,
            } => {
                if let Some(p) = self.partition_mut(topic, *partition) {
                    p.replicas = replicas.clone();
                    p.leader = *leader;
                    p.isr = isr.clone();
                    p.leader_epoch = *leader_epoch;
                    p.reassignment = None;
                    p.partition_epoch += 1;
                }
            }
            MetaRecord::ProducerIdsAllocated { next } => {
                self.next_producer_id = self.next_producer_id.max(*next);
            }
            MetaRecord::ClusterIdCreated { cluster_id } => {
                // Created once: a second record (never written) changes nothing.
                if self.cluster_id.is_none() {
                    self.cluster_id = Some(cluster_id.clone());
                }
            }
            MetaRecord::Events(_) => {}
            MetaRecord::OffsetsCommitted(c) => {
                if self.topics.contains_key(&c.topic) {
                    let entry = self
                        .offsets
                        .entry((c.group.clone(), c.topic.clone()))
                        .or_default();
                    for o in &c.offsets {
                        entry.insert(o.partition, o.offset);
                    }
                    let key = (c.group.clone(), c.topic.clone());
                    let meta = self.offset_metadata.entry(key.clone()).or_default();
                    for o in &c.offsets {
                        match c.metadata.get(&o.partition) {
                            Some(m) => meta.insert(o.partition, m.clone()),
                            None => meta.remove(&o.partition),
                        };
                    }
                    if meta.is_empty() {
                        self.offset_metadata.remove(&key);
                    }
                }
            }
            MetaRecord::GroupDeleted { group } => {
                self.offsets.retain(|(g, _), _| g != group);
                self.offset_metadata.retain(|(g, _), _| g != group);
            }
        }
    }
}

impl MetadataState {
    fn partition_mut(&mut self, topic: &str, partition: u32) -> Option<&mut PartitionMetadata> {
        self.topics
            .get_mut(topic)
            .and_then(|t| t.partitions.get_mut(partition as usize))
    }
}

fn to_partition_offsets(offsets: &BTreeMap<u32, u64>) -> Vec<PartitionOffset> {
    offsets
        .iter()
        .map(|(&partition, &offset)| PartitionOffset { partition, offset })
        .collect()
}

/// An upper bound of a topic's encoded size in a metadata answer (named
/// MessagePack: field names, integers of at most 9 bytes).
pub fn encoded_bytes_max(t: &TopicMetadata) -> usize {
    let partitions: usize = t
        .partitions
        .iter()
        .map(|p| {
            let moving = p.reassignment.as_ref().map_or(0, |r| {
                128 + 9 * (r.target.len() + r.adding.len() + r.removing.len())
            });
            128 + 9 * (p.replicas.len() + p.isr.len()) + moving
        })
        .sum();
    256 + t.name.len() + partitions
}

/// New partitions `range` placed over `alive_brokers` round-robin, as a new
/// topic's are: partition p's replicas start at alive broker `start + p`,
/// the first one leads, and all are in sync (the log is empty).
pub fn place_partitions(
    alive_brokers: &[u32],
    start: usize,
    range: std::ops::Range<u32>,
    rf: usize,
) -> Vec<PartitionMetadata> {
    let n = alive_brokers.len();
    range
        .map(|p| {
            let replicas: Vec<u32> = (0..rf)
                .map(|r| alive_brokers[(start + p as usize + r) % n])
                .collect();
            PartitionMetadata {
                partition: p,
                leader: replicas.first().copied(),
                isr: replicas.clone(),
                replicas,
                leader_epoch: 0,
                partition_epoch: 0,
                reassignment: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: TopicDefaults = TopicDefaults {
        partitions: 3,
        replication_factor: 1,
    };

    fn create(
        state: &mut MetadataState,
        name: &str,
        p: Option<u32>,
        rf: Option<u32>,
    ) -> TopicMetadata {
        let rec = state
            .plan_create(name, p, rf, TopicConfig::default(), DEFAULTS, &[1, 2, 3])
            .expect("plan");
        state.apply(&rec);
        state.topic(name).expect("created").clone()
    }

    #[test]
    fn given_topics_larger_than_a_page_when_paging_should_return_each_once_within_budget() {
        let mut state = MetadataState::default();
        let brokers: Vec<u32> = (1..=10).map(|b| b * 100_000).collect();
        let big = state
            .plan_create(
                "big",
                Some(PARTITIONS_MAX),
                Some(10),
                TopicConfig::default(),
                DEFAULTS,
                &brokers,
            )
            .expect("the largest topic allowed");
        state.apply(&big);
        let big = state.topic("big").expect("created").clone();
        let encoded = rmp_serde::to_vec_named(&big).expect("encode").len();
        assert!(
            encoded_bytes_max(&big) >= encoded,
            "the estimate bounds the encoding: {encoded}"
        );
        assert!(
            encoded_bytes_max(&big) <= 4 * 1024 * 1024,
            "one topic fits a page"
        );
        for i in 0..30 {
            create(&mut state, &format!("t{i:02}"), Some(1000), Some(1));
        }
        let budget = 300_000;
        let (mut seen, mut after, mut pages) = (Vec::new(), None::<String>, 0);
        loop {
            let (page, more) = state.metadata_page(None, after.as_deref(), budget);
            pages += 1;
            let size: usize = page.iter().map(encoded_bytes_max).sum();
            assert!(
                page.len() == 1 || size <= budget,
                "page {pages}: {size} bytes"
            );
            after = page.last().map(|t| t.name.clone());
            seen.extend(page.into_iter().map(|t| t.name));
            if !more {
                break;
            }
        }
        let all: Vec<String> = state.topics().map(|t| t.name.clone()).collect();
        assert_eq!(seen, all, "every topic once, in name order");
        assert!(pages > 3, "{pages} pages");
        let names = vec!["t05".to_string(), "t01".into(), "t05".into(), "none".into()];
        let (page, more) = state.metadata_page(Some(&names), None, budget);
        assert_eq!(
            (
                page.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
                more
            ),
            (vec!["t01", "t05"], false)
        );
        let err = state
            .plan_create(
                "huge",
                Some(PARTITIONS_MAX),
                Some(11),
                TopicConfig::default(),
                DEFAULTS,
                &brokers.iter().chain(&[7]).copied().collect::<Vec<_>>(),
            )
            .expect_err("partitions × replication factor over the cap");
        assert_eq!(err.code, ErrorCode::InvalidPartitions);
    }

    #[test]
    fn given_three_brokers_when_creating_six_partitions_should_spread_leaders_evenly() {
        let mut s = MetadataState::default();
        let t = create(&mut s, "t", Some(6), Some(1));
        let mut per_broker = BTreeMap::new();
        for p in &t.partitions {
            *per_broker.entry(p.leader.expect("leader")).or_insert(0) += 1;
        }
        assert_eq!(
            per_broker.values().copied().collect::<Vec<_>>(),
            vec![2, 2, 2]
        );
    }

    #[test]
    fn given_replication_factor_three_when_creating_should_place_distinct_replicas() {
        let mut s = MetadataState::default();
        let t = create(&mut s, "t", Some(4), Some(3));
        for p in &t.partitions {
            let mut r = p.replicas.clone();
            r.sort_unstable();
            r.dedup();
            assert_eq!(r.len(), 3);
            assert_eq!(p.isr, p.replicas);
            assert_eq!(p.leader, Some(p.replicas[0]));
        }
    }

    #[test]
    fn given_bad_requests_when_planning_should_refuse_with_typed_errors() {
        let mut s = MetadataState::default();
        create(&mut s, "exists", None, None);
        let cases: &[(&str, Option<u32>, Option<u32>, ErrorCode)] = &[
            ("", None, None, ErrorCode::InvalidTopicName),
            ("bad name", None, None, ErrorCode::InvalidTopicName),
            ("ok", Some(0), None, ErrorCode::InvalidPartitions),
            ("ok", None, Some(4), ErrorCode::InvalidPartitions),
            ("ok", None, Some(0), ErrorCode::InvalidPartitions),
            ("ok", None, Some(5), ErrorCode::InvalidPartitions),
            ("exists", None, None, ErrorCode::TopicAlreadyExists),
        ];
        for (name, p, rf, code) in cases {
            let err = s
                .plan_create(name, *p, *rf, TopicConfig::default(), DEFAULTS, &[1, 2, 3])
                .expect_err("refused");
            assert_eq!(&err.code, code, "{name:?} {p:?} {rf:?}");
        }
        let none = s
            .plan_create("x", None, None, TopicConfig::default(), DEFAULTS, &[])
            .expect_err("no brokers");
        assert_eq!(none.code, ErrorCode::NoBrokersAvailable);
    }

    #[test]
    fn given_deleted_topic_when_recreated_should_get_new_topic_id() {
        let mut s = MetadataState::default();
        let first = create(&mut s, "t", None, None);
        let del = s.plan_delete("t").expect("delete");
        s.apply(&del);
        assert!(s.topic("t").is_none());
        let second = create(&mut s, "t", None, None);
        assert!(second.topic_id > first.topic_id);
    }

    fn partition(s: &MetadataState, name: &str, p: usize) -> PartitionMetadata {
        s.topic(name).expect("topic").partitions[p].clone()
    }

    fn apply_all(s: &mut MetadataState, records: Vec<MetaRecord>) {
        for r in &records {
            s.apply(r);
        }
    }

    #[test]
    fn given_leader_dies_when_failing_over_should_elect_next_isr_member_with_higher_epoch() {
        let mut s = MetadataState::default();
        create(&mut s, "t", Some(1), Some(3));
        let before = partition(&s, "t", 0);
        let dead = before.leader.expect("leader");
        let alive: Vec<u32> = [1, 2, 3].into_iter().filter(|b| *b != dead).collect();
        let records = s.plan_failover(&alive);
        apply_all(&mut s, records);
        let after = partition(&s, "t", 0);
        assert_eq!(after.leader_epoch, before.leader_epoch + 1);
        let new_leader = after.leader.expect("new leader");
        assert_ne!(new_leader, dead);
        assert_eq!(
            Some(new_leader),
            before.replicas.iter().copied().find(|r| *r != dead)
        );
        assert!(!after.isr.contains(&dead));
        assert!(s.plan_failover(&alive).is_empty(), "failover is idempotent");
    }

    #[test]
    fn given_follower_dies_when_failing_over_should_shrink_isr_and_keep_epoch() {
        let mut s = MetadataState::default();
        create(&mut s, "t", Some(1), Some(3));
        let before = partition(&s, "t", 0);
        let leader = before.leader.expect("leader");
        let follower = before.replicas[1];
        let alive: Vec<u32> = [1, 2, 3].into_iter().filter(|b| *b != follower).collect();
        let records = s.plan_failover(&alive);
        apply_all(&mut s, records);
        let after = partition(&s, "t", 0);
        assert_eq!(after.leader, Some(leader));
        assert_eq!(after.leader_epoch, before.leader_epoch);
        assert_eq!(after.isr.len(), 2);
    }

    #[test]
    fn given_no_isr_member_alive_when_failing_over_should_go_offline_then_return_with_isr_member() {
        let mut s = MetadataState::default();
        create(&mut s, "t", Some(1), Some(2));
        let p = partition(&s, "t", 0);
        let (a, b) = (p.replicas[0], p.replicas[1]);
        // b dies first: leaves the ISR. Then a dies: no ISR member alive.
        let others: Vec<u32> = [1, 2, 3].into_iter().filter(|x| *x != b).collect();
        let r = s.plan_failover(&others);
        apply_all(&mut s, r);
        let third: Vec<u32> = [1, 2, 3]
            .into_iter()
            .filter(|x| *x != a && *x != b)
            .collect();
        let r = s.plan_failover(&third);
        apply_all(&mut s, r);
        let offline = partition(&s, "t", 0);
        assert_eq!(offline.leader, None);
        assert_eq!(offline.isr, vec![a], "last ISR member is remembered");
        // b (out of sync) returns: still offline, no unclean election.
        let r = s.plan_failover(&[b]);
        assert!(r.is_empty());
        // a returns: it leads again with a higher epoch.
        let r = s.plan_failover(&[a, b]);
        apply_all(&mut s, r);
        let back = partition(&s, "t", 0);
        assert_eq!(back.leader, Some(a));
        assert!(back.leader_epoch > offline.leader_epoch);
    }

    /// `t` with one partition on replicas 1,2,3 led by 2 (1 failed over
    /// and came back into the ISR).
    fn led_by_second_replica(s: &mut MetadataState) -> PartitionMetadata {
        create(s, "t", Some(1), Some(3));
        let first = partition(s, "t", 0).replicas[0];
        let others: Vec<u32> = [1, 2, 3].into_iter().filter(|b| *b != first).collect();
        let r = s.plan_failover(&others);
        apply_all(s, r);
        let p = partition(s, "t", 0);
        let back = s.plan_alter_isr(
            "t",
            0,
            p.leader.expect("leader"),
            p.leader_epoch,
            p.partition_epoch,
            &p.replicas,
            &[1, 2, 3],
        );
        apply_all(s, back.expect("valid").into_iter().collect());
        partition(s, "t", 0)
    }

    #[test]
    fn given_preferred_replica_back_in_isr_when_planning_should_move_leadership_to_it_with_next_epoch(
    ) {
        let mut s = MetadataState::default();
        let before = led_by_second_replica(&mut s);
        let preferred = before.replicas[0];
        assert_ne!(before.leader, Some(preferred));
        let records = s.plan_preferred_leaders(&[1, 2, 3], None);
        assert_eq!(records.len(), 1);
        apply_all(&mut s, records);
        let after = partition(&s, "t", 0);
        assert_eq!(after.leader, Some(preferred));
        assert_eq!(after.leader_epoch, before.leader_epoch + 1);
        assert_eq!(after.isr, before.isr, "the ISR stays");
        assert!(
            s.plan_preferred_leaders(&[1, 2, 3], None).is_empty(),
            "balanced: nothing more to move"
        );
    }

    #[test]
    fn given_preferred_replica_dead_or_out_of_isr_or_other_topic_when_planning_should_move_nothing()
    {
        let mut s = MetadataState::default();
        let p = led_by_second_replica(&mut s);
        let preferred = p.replicas[0];
        let others: Vec<u32> = [1, 2, 3].into_iter().filter(|b| *b != preferred).collect();
        assert!(
            s.plan_preferred_leaders(&others, None).is_empty(),
            "a dead preferred replica is not elected"
        );
        assert!(
            s.plan_preferred_leaders(&[1, 2, 3], Some("other"))
                .is_empty(),
            "only the topic asked for"
        );
        assert_eq!(s.plan_preferred_leaders(&[1, 2, 3], Some("t")).len(), 1);
        let leader = p.leader.expect("leader");
        let shrink = s.plan_alter_isr(
            "t",
            0,
            leader,
            p.leader_epoch,
            p.partition_epoch,
            &others,
            &[1, 2, 3],
        );
        apply_all(&mut s, shrink.expect("valid").into_iter().collect());
        assert!(
            s.plan_preferred_leaders(&[1, 2, 3], None).is_empty(),
            "never elected outside the ISR"
        );
    }

    #[test]
    fn given_offline_partition_when_planning_preferred_leaders_should_leave_it_to_failover() {
        let mut s = MetadataState::default();
        create(&mut s, "t", Some(1), Some(1));
        let only = partition(&s, "t", 0).replicas[0];
        let r = s.plan_failover(&[]);
        apply_all(&mut s, r);
        assert_eq!(partition(&s, "t", 0).leader, None);
        assert!(s.plan_preferred_leaders(&[only], None).is_empty());
    }

    #[test]
    fn given_stale_epoch_when_altering_isr_should_be_fenced() {
        let mut s = MetadataState::default();
        create(&mut s, "t", Some(1), Some(3));
        let p = partition(&s, "t", 0);
        let leader = p.leader.expect("leader");
        let shrink = vec![leader];
        let err = s
            .plan_alter_isr(
                "t",
                0,
                leader,
                p.leader_epoch + 7,
                p.partition_epoch,
                &shrink,
                &[1, 2, 3],
            )
            .expect_err("stale epoch");
        assert_eq!(err.code, ErrorCode::FencedLeaderEpoch);
        let ok = s
            .plan_alter_isr(
                "t",
                0,
                leader,
                p.leader_epoch,
                p.partition_epoch,
                &shrink,
                &[1, 2, 3],
            )
            .expect("valid");
        apply_all(&mut s, ok.into_iter().collect());
        assert_eq!(partition(&s, "t", 0).isr, vec![leader]);
    }

    #[test]
    fn given_isr_changed_since_a_proposal_when_altering_isr_should_refuse_the_stale_version() {
        let mut s = MetadataState::default();
        create(&mut s, "t", Some(1), Some(3));
        let p = partition(&s, "t", 0);
        let leader = p.leader.expect("leader");
        let follower = p.replicas[1];
        // The leader proposes to keep everyone (based on version v) while a
        // failover removes `follower` (its session expired): version v + 1.
        let alive: Vec<u32> = p
            .replicas
            .iter()
            .copied()
            .filter(|b| *b != follower)
            .collect();
        let r = s.plan_failover(&alive);
        apply_all(&mut s, r);
        let after = partition(&s, "t", 0);
        assert!(!after.isr.contains(&follower));
        assert_eq!(
            after.partition_epoch,
            p.partition_epoch + 1,
            "every ISR change raises the partition epoch"
        );
        // The follower is back, and the late proposal arrives naming version v.
        let err = s
            .plan_alter_isr(
                "t",
                0,
                leader,
                p.leader_epoch,
                p.partition_epoch,
                &p.replicas,
                &p.replicas,
            )
            .expect_err("stale partition epoch");
        assert_eq!(err.code, ErrorCode::InvalidUpdateVersion);
        assert!(
            !partition(&s, "t", 0).isr.contains(&follower),
            "a stale proposal does not restore a removed member"
        );
        // Named with the current version, the same change is accepted.
        let ok = s
            .plan_alter_isr(
                "t",
                0,
                leader,
                p.leader_epoch,
                after.partition_epoch,
                &p.replicas,
                &p.replicas,
            )
            .expect("current version");
        apply_all(&mut s, ok.into_iter().collect());
        assert!(partition(&s, "t", 0).isr.contains(&follower));
    }

    #[test]
    fn given_snapshot_when_restored_should_equal_original() {
        let mut s = MetadataState::default();
        create(&mut s, "a", Some(2), None);
        create(&mut s, "b", Some(5), Some(2));
        s.apply(&MetaRecord::ProducerIdsAllocated { next: 1000 });
        let commit = s
            .plan_commit_offsets(
                "g",
                "b",
                &[PartitionOffset {
                    partition: 4,
                    offset: 7,
                }],
            )
            .expect("valid");
        apply_all(&mut s, commit.into_iter().collect());
        assert_eq!(MetadataState::from_snapshot(s.snapshot()), s);
        assert_eq!(
            MetadataState::from_snapshot(s.snapshot())
                .committed_offsets("g", "b")
                .len(),
            1
        );
    }

    #[test]
    fn given_commit_metadata_when_snapshotted_and_group_deleted_should_round_trip_then_go() {
        let mut s = MetadataState::default();
        create(&mut s, "t", Some(3), None);
        let po = |partition, offset| PartitionOffset { partition, offset };
        let meta: BTreeMap<u32, String> = [(1, "m1".to_string())].into();
        let r = s
            .plan_commit_offsets_with("g", "t", &[po(0, 5), po(1, 9)], &meta)
            .expect("valid")
            .expect("changes");
        s.apply(&r);
        assert!(
            s.plan_commit_offsets_with("g", "t", &[po(1, 9)], &meta)
                .expect("valid")
                .is_none(),
            "same offset and metadata: nothing to write"
        );
        let restored = MetadataState::from_snapshot(s.snapshot());
        assert_eq!(restored.offset_metadata("g", "t"), meta);
        // A record written before metadata was kept decodes without it.
        let old = rmp_serde::to_vec_named(&serde_json::json!({
            "group": "g", "topic": "t", "offsets": [{"partition": 0, "offset": 1}]
        }))
        .expect("encode");
        let decoded: GroupTopicOffsets = rmp_serde::from_slice(&old).expect("old form");
        assert!(decoded.metadata.is_empty());
        // A commit without metadata clears what the partition had.
        let r = s
            .plan_commit_offsets("g", "t", &[po(1, 9)])
            .expect("valid")
            .expect("metadata changed");
        s.apply(&r);
        assert!(s.offset_metadata("g", "t").is_empty());
        s.apply(&MetaRecord::GroupDeleted { group: "g".into() });
        assert!(s.committed_offsets("g", "t").is_empty() && s.groups_with_offsets().is_empty());
    }

    #[test]
    fn given_commits_when_applied_should_keep_latest_per_partition_and_skip_unchanged() {
        let mut s = MetadataState::default();
        create(&mut s, "t", Some(3), None);
        let po = |partition, offset| PartitionOffset { partition, offset };
        let r = s
            .plan_commit_offsets("g", "t", &[po(0, 5), po(2, 9)])
            .expect("valid")
            .expect("changes");
        s.apply(&r);
        let r = s
            .plan_commit_offsets("g", "t", &[po(0, 6)])
            .expect("valid")
            .expect("changes");
        s.apply(&r);
        assert_eq!(s.committed_offsets("g", "t"), vec![po(0, 6), po(2, 9)]);
        assert!(
            s.plan_commit_offsets("g", "t", &[po(0, 6), po(2, 9)])
                .expect("valid")
                .is_none(),
            "no-op commit"
        );
        assert!(s.committed_offsets("other", "t").is_empty());
        let bad = s
            .plan_commit_offsets("g", "t", &[po(3, 1)])
            .expect_err("no partition 3");
        assert_eq!(bad.code, ErrorCode::UnknownPartition);
        let bad = s
            .plan_commit_offsets("g", "nope", &[po(0, 1)])
            .expect_err("no topic");
        assert_eq!(bad.code, ErrorCode::UnknownTopic);
        let del = s.plan_delete("t").expect("delete");
        s.apply(&del);
        assert!(
            s.committed_offsets("g", "t").is_empty(),
            "offsets go with their topic"
        );
        assert!(s.groups_with_offsets().is_empty());
    }

    #[test]
    fn given_topic_config_when_creating_should_keep_it_through_snapshot() {
        let mut s = MetadataState::default();
        let config = TopicConfig {
            retention_bytes: Some(4096),
            retention_ms: None,
            ..TopicConfig::default()
        };
        let rec = s
            .plan_create("r", Some(1), None, config, DEFAULTS, &[1])
            .expect("plan");
        s.apply(&rec);
        assert_eq!(s.topic("r").expect("created").config, config);
        let restored = MetadataState::from_snapshot(s.snapshot());
        assert_eq!(restored.topic("r").expect("restored").config, config);
    }

    #[test]
    fn given_deleted_topics_when_replaying_and_snapshotting_should_remember_the_last_ids_in_order()
    {
        let mut s = MetadataState::default();
        let mut ids = Vec::new();
        for i in 0..DELETED_TOPIC_IDS_MAX + 2 {
            let t = create(&mut s, "t", Some(1), None);
            ids.push(t.topic_id);
            if i + 1 < DELETED_TOPIC_IDS_MAX + 2 {
                s.apply(&s.plan_delete("t").expect("delete"));
            }
        }
        let live = ids.pop().expect("live topic id");
        let remembered: Vec<u64> = s.deleted_topic_ids().collect();
        assert_eq!(
            remembered,
            ids[ids.len() - DELETED_TOPIC_IDS_MAX..],
            "bounded, oldest dropped first"
        );
        assert!(
            !remembered.contains(&live),
            "a live topic's id is not deleted"
        );
        let restored = MetadataState::from_snapshot(s.snapshot());
        assert_eq!(restored.deleted_topic_ids().collect::<Vec<_>>(), remembered);
        assert_eq!(restored, s);
    }

    #[test]
    fn given_cluster_id_when_created_twice_should_keep_the_first_through_snapshot() {
        let mut s = MetadataState::default();
        assert_eq!(s.cluster_id(), None);
        s.apply(&MetaRecord::ClusterIdCreated {
            cluster_id: "a".repeat(32),
        });
        s.apply(&MetaRecord::ClusterIdCreated {
            cluster_id: "b".repeat(32),
        });
        assert_eq!(s.cluster_id(), Some("a".repeat(32).as_str()));
        let restored = MetadataState::from_snapshot(s.snapshot());
        assert_eq!(restored.cluster_id(), s.cluster_id());
    }
}
