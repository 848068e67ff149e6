//! The metadata state machine: topics, placements, leaders, producer ids.
//! No I/O: the server appends each [`MetaRecord`] to the metadata log, then
//! applies it here. Replaying the log rebuilds the same state.

use crate::limits::PARTITIONS_MAX;
use crate::protocol::metalog::{MetaRecord, MetaSnapshot};
use crate::protocol::names::validate_topic;
use crate::protocol::{ErrorBody, ErrorCode, PartitionMetadata, TopicMetadata};
use std::collections::BTreeMap;

/// Cluster defaults for topics created without explicit counts.
#[derive(Debug, Clone, Copy)]
pub struct TopicDefaults {
    /// Partitions per topic.
    pub partitions: u32,
    /// Replicas per partition.
    pub replication_factor: u32,
    /// Most replicas per partition this build can keep in sync.
    pub max_replication_factor: u32,
}

/// Everything ZooKeeper remembers across restarts.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MetadataState {
    /// Raised by every applied record.
    pub version: u64,
    next_topic_id: u64,
    next_producer_id: i64,
    topics: BTreeMap<String, TopicMetadata>,
}

impl MetadataState {
    /// State from a snapshot.
    pub fn from_snapshot(s: MetaSnapshot) -> Self {
        MetadataState {
            version: s.version,
            next_topic_id: s.next_topic_id,
            next_producer_id: s.next_producer_id,
            topics: s.topics.into_iter().map(|t| (t.name.clone(), t)).collect(),
        }
    }

    /// The whole state as a snapshot.
    pub fn snapshot(&self) -> MetaSnapshot {
        MetaSnapshot {
            version: self.version,
            next_topic_id: self.next_topic_id,
            next_producer_id: self.next_producer_id,
            topics: self.topics.values().cloned().collect(),
        }
    }

    /// A topic by name.
    pub fn topic(&self, name: &str) -> Option<&TopicMetadata> {
        self.topics.get(name)
    }

    /// Every topic, by name.
    pub fn topics(&self) -> impl Iterator<Item = &TopicMetadata> {
        self.topics.values()
    }

    /// Plans the creation of a topic over the alive brokers (sorted ids).
    /// Replicas are spread round-robin, each partition starting one broker
    /// further, so leaders are spread evenly.
    pub fn plan_create(
        &self,
        name: &str,
        partitions: Option<u32>,
        replication_factor: Option<u32>,
        defaults: TopicDefaults,
        alive_brokers: &[u32],
    ) -> Result<MetaRecord, ErrorBody> {
        validate_topic(name).map_err(|m| ErrorBody::new(ErrorCode::InvalidTopicName, m))?;
        if self.topics.contains_key(name) {
            return Err(ErrorBody::new(ErrorCode::TopicAlreadyExists, format!("topic '{name}' already exists")));
        }
        let partitions = partitions.unwrap_or(defaults.partitions);
        if partitions == 0 || partitions > PARTITIONS_MAX {
            return Err(ErrorBody::new(
                ErrorCode::InvalidPartitions,
                format!("partition count must be between 1 and {PARTITIONS_MAX}, got {partitions}"),
            ));
        }
        if alive_brokers.is_empty() {
            return Err(ErrorBody::new(ErrorCode::NoBrokersAvailable, "no broker is alive to hold the topic"));
        }
        let explicit_rf = replication_factor.is_some();
        let mut rf = replication_factor.unwrap_or(defaults.replication_factor);
        if rf == 0 {
            return Err(ErrorBody::new(ErrorCode::InvalidPartitions, "replication factor must be at least 1"));
        }
        if rf > defaults.max_replication_factor {
            return Err(ErrorBody::new(
                ErrorCode::InvalidPartitions,
                format!(
                    "replication factor {rf} is above the maximum of {}: brokers do not replicate between each other yet",
                    defaults.max_replication_factor
                ),
            ));
        }
        if rf as usize > alive_brokers.len() {
            if explicit_rf {
                return Err(ErrorBody::new(
                    ErrorCode::InvalidPartitions,
                    format!("replication factor {rf} is larger than the {} alive brokers", alive_brokers.len()),
                ));
            }
            rf = alive_brokers.len() as u32;
        }
        let n = alive_brokers.len();
        let start = (self.next_topic_id as usize) % n;
        let partitions = (0..partitions)
            .map(|p| {
                let replicas: Vec<u32> =
                    (0..rf as usize).map(|r| alive_brokers[(start + p as usize + r) % n]).collect();
                PartitionMetadata {
                    partition: p,
                    leader: replicas.first().copied(),
                    isr: replicas.clone(),
                    replicas,
                    leader_epoch: 0,
                }
            })
            .collect();
        Ok(MetaRecord::TopicCreated(TopicMetadata {
            name: name.to_string(),
            topic_id: self.next_topic_id + 1,
            partitions,
        }))
    }

    /// Plans the deletion of a topic.
    pub fn plan_delete(&self, name: &str) -> Result<MetaRecord, ErrorBody> {
        if !self.topics.contains_key(name) {
            return Err(ErrorBody::new(ErrorCode::UnknownTopic, format!("topic '{name}' does not exist")));
        }
        Ok(MetaRecord::TopicDeleted { name: name.to_string() })
    }

    /// Applies one record. Records come from the log, so they are trusted;
    /// a record about an unknown topic changes nothing but the version.
    pub fn apply(&mut self, record: &MetaRecord) {
        self.version += 1;
        match record {
            MetaRecord::TopicCreated(t) => {
                self.next_topic_id = self.next_topic_id.max(t.topic_id);
                self.topics.insert(t.name.clone(), t.clone());
            }
            MetaRecord::TopicDeleted { name } => {
                self.topics.remove(name);
            }
            MetaRecord::PartitionChanged { topic, partition, leader, isr, leader_epoch } => {
                let p = self
                    .topics
                    .get_mut(topic)
                    .and_then(|t| t.partitions.get_mut(*partition as usize));
                if let Some(p) = p {
                    p.leader = *leader;
                    p.isr = isr.clone();
                    p.leader_epoch = *leader_epoch;
                }
            }
            MetaRecord::ProducerIdsAllocated { next } => {
                self.next_producer_id = self.next_producer_id.max(*next);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: TopicDefaults = TopicDefaults { partitions: 3, replication_factor: 1, max_replication_factor: 3 };

    fn create(state: &mut MetadataState, name: &str, p: Option<u32>, rf: Option<u32>) -> TopicMetadata {
        let rec = state.plan_create(name, p, rf, DEFAULTS, &[1, 2, 3]).expect("plan");
        state.apply(&rec);
        state.topic(name).expect("created").clone()
    }

    #[test]
    fn given_three_brokers_when_creating_six_partitions_should_spread_leaders_evenly() {
        let mut s = MetadataState::default();
        let t = create(&mut s, "t", Some(6), Some(1));
        let mut per_broker = BTreeMap::new();
        for p in &t.partitions {
            *per_broker.entry(p.leader.expect("leader")).or_insert(0) += 1;
        }
        assert_eq!(per_broker.values().copied().collect::<Vec<_>>(), vec![2, 2, 2]);
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
            let err = s.plan_create(name, *p, *rf, DEFAULTS, &[1, 2, 3]).expect_err("refused");
            assert_eq!(&err.code, code, "{name:?} {p:?} {rf:?}");
        }
        let none = s.plan_create("x", None, None, DEFAULTS, &[]).expect_err("no brokers");
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

    #[test]
    fn given_snapshot_when_restored_should_equal_original() {
        let mut s = MetadataState::default();
        create(&mut s, "a", Some(2), None);
        create(&mut s, "b", Some(5), Some(2));
        s.apply(&MetaRecord::ProducerIdsAllocated { next: 1000 });
        assert_eq!(MetadataState::from_snapshot(s.snapshot()), s);
    }
}
