//! Kafka topic ids (the UUIDs of Metadata v10+, ConsumerGroupHeartbeat
//! assignments and the like) for YaK topics. A YaK topic has a `u64` id
//! in ZooKeeper's state, never reused (a topic deleted and re-created
//! with the same name gets a new one); its Kafka id is that number in the
//! low 64 bits, with a hash of the cluster id in the high 64 bits, so two
//! YaK clusters do not hand out the same ids and no id is one Kafka
//! reserves (the zero UUID, the metadata topic's `0…01`). Stable for the
//! life of the topic, across restarts of every process. Never stores
//! anything: ids are computed from metadata.

use crate::protocol::ClusterMetadata;
use uuid::Uuid;

/// FNV-1a offset basis and prime (64-bit).
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The high half of every topic id of the cluster `cluster_id`; never 0.
fn cluster_half(cluster_id: &str) -> u64 {
    let h = cluster_id.bytes().fold(FNV_OFFSET, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    });
    h | 1 << 63
}

/// The Kafka topic id of YaK topic id `topic_id` in cluster `cluster_id`.
pub fn topic_uuid(cluster_id: &str, topic_id: u64) -> Uuid {
    Uuid::from_u64_pair(cluster_half(cluster_id), topic_id)
}

/// The name of the topic whose Kafka id is `id`, if it exists.
pub fn name_of(m: &ClusterMetadata, id: Uuid) -> Option<&str> {
    let (high, low) = id.as_u64_pair();
    if high != cluster_half(&m.cluster_id) {
        return None;
    }
    m.topics
        .iter()
        .find(|t| t.topic_id == low)
        .map(|t| t.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::TopicMetadata;

    fn topic(name: &str, topic_id: u64) -> TopicMetadata {
        TopicMetadata {
            name: name.into(),
            topic_id,
            partitions: Vec::new(),
            config: Default::default(),
        }
    }

    #[test]
    fn given_topic_ids_when_mapping_should_be_stable_distinct_and_never_reserved() {
        let a = topic_uuid("cluster-a", 7);
        assert_eq!(a, topic_uuid("cluster-a", 7), "stable");
        assert_ne!(
            a,
            topic_uuid("cluster-a", 8),
            "a re-created topic has a new id"
        );
        assert_ne!(
            a,
            topic_uuid("cluster-b", 7),
            "another cluster's ids differ"
        );
        for id in [0, 1] {
            assert_ne!(topic_uuid("", id), Uuid::from_u64_pair(0, id), "reserved");
        }
    }

    #[test]
    fn given_metadata_when_looking_up_an_id_should_find_its_topic_or_nothing() {
        let m = ClusterMetadata {
            cluster_id: "c".into(),
            topics: vec![topic("a", 3), topic("b", 4)],
            ..Default::default()
        };
        assert_eq!(name_of(&m, topic_uuid("c", 4)), Some("b"));
        assert_eq!(
            name_of(&m, topic_uuid("c", 5)),
            None,
            "deleted or never made"
        );
        assert_eq!(
            name_of(&m, topic_uuid("other", 4)),
            None,
            "another cluster's"
        );
    }
}
