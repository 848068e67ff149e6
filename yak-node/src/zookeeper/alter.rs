//! Plans changes to an existing topic: more partitions (`topic alter
//! --partitions`, Kafka's CreatePartitions) and its settings (`topic alter
//! --retention-ms ...`, `--delete-config`, Kafka's IncrementalAlterConfigs).
//! Pure functions over the metadata state: they return the record to append
//! or a typed error, and never apply anything.

use super::state::MetadataState;
use crate::limits::{PARTITIONS_MAX, SEGMENT_BYTES_MIN, TOPIC_REPLICAS_MAX};
use crate::protocol::metalog::MetaRecord;
use crate::protocol::{ErrorBody, ErrorCode, TopicConfig, TopicMetadata};

/// The setting names `--delete-config` takes (Kafka's), in the order shown.
pub const CONFIG_KEYS: [&str; 5] = [
    "retention.ms",
    "retention.bytes",
    "min.insync.replicas",
    "segment.bytes",
    "message.timestamp.type",
];

fn unknown_topic(name: &str) -> ErrorBody {
    ErrorBody::new(
        ErrorCode::UnknownTopic,
        format!("topic '{name}' does not exist"),
    )
}

/// The topic's replication factor: its first partition's replica count
/// (the target's, if that partition is being reassigned).
pub fn replication_factor(t: &TopicMetadata) -> usize {
    t.partitions.first().map_or(0, |p| {
        p.reassignment
            .as_ref()
            .map_or(p.replicas.len(), |r| r.target.len())
    })
}

/// Plans growing `topic` to `count` partitions over the alive brokers
/// (sorted ids): the new partitions continue the topic's round-robin
/// placement (partition `p` starts one broker after partition `p - 1`), so
/// leaders stay spread as a new topic's are. A shrink is refused (Kafka
/// cannot shrink either: keys would lose their partition's data).
pub fn plan_add_partitions(
    state: &MetadataState,
    topic: &str,
    count: u32,
    alive_brokers: &[u32],
) -> Result<MetaRecord, ErrorBody> {
    let t = state.topic(topic).ok_or_else(|| unknown_topic(topic))?;
    let current = t.partitions.len() as u32;
    if count <= current {
        return Err(ErrorBody::new(
            ErrorCode::InvalidPartitions,
            format!(
                "topic '{topic}' has {current} partitions; a topic can only grow (asked for {count}: partitions are never removed)"
            ),
        ));
    }
    if count > PARTITIONS_MAX {
        return Err(ErrorBody::new(
            ErrorCode::InvalidPartitions,
            format!("partition count must be at most {PARTITIONS_MAX}, got {count}"),
        ));
    }
    let rf = replication_factor(t).max(1);
    if u64::from(count) * rf as u64 > TOPIC_REPLICAS_MAX {
        return Err(ErrorBody::new(
            ErrorCode::InvalidPartitions,
            format!("partitions × replication factor must be at most {TOPIC_REPLICAS_MAX}"),
        ));
    }
    let n = alive_brokers.len();
    if rf > n {
        return Err(ErrorBody::new(
            ErrorCode::InvalidPartitions,
            format!("topic '{topic}' has replication factor {rf} but only {n} brokers are alive"),
        ));
    }
    // Where partition 0's preferred leader sits among the alive brokers.
    let start = t
        .partitions
        .first()
        .and_then(|p| p.replicas.first())
        .and_then(|b| alive_brokers.iter().position(|a| a == b))
        .unwrap_or(0);
    let partitions = super::state::place_partitions(alive_brokers, start, current..count, rf);
    Ok(MetaRecord::PartitionsAdded {
        topic: topic.to_string(),
        partitions,
    })
}

/// Refuses settings out of range for a topic of replication factor `rf`
/// (a new topic's or an existing one's).
pub fn check_config(c: &TopicConfig, rf: u32) -> Result<(), ErrorBody> {
    let invalid = |m: String| ErrorBody::new(ErrorCode::InvalidConfig, m);
    if let Some(n) = c.min_insync_replicas {
        if n == 0 || n > rf {
            return Err(invalid(format!(
                "min.insync.replicas must be between 1 and the replication factor ({rf}), got {n}"
            )));
        }
    }
    if let Some(b) = c.segment_bytes {
        if !(SEGMENT_BYTES_MIN..=u64::from(u32::MAX)).contains(&b) {
            return Err(invalid(format!(
                "segment.bytes must be between {SEGMENT_BYTES_MIN} and {}, got {b}",
                u32::MAX
            )));
        }
    }
    Ok(())
}

/// Plans a change of `topic`'s settings: each `Some` in `set` overrides,
/// each key in `delete` goes back to the cluster default. Refuses unknown
/// keys, a key both set and deleted, and values out of range. `None` when
/// nothing would change.
pub fn plan_alter_config(
    state: &MetadataState,
    topic: &str,
    set: TopicConfig,
    delete: &[String],
) -> Result<Option<MetaRecord>, ErrorBody> {
    let t = state.topic(topic).ok_or_else(|| unknown_topic(topic))?;
    let invalid = |m: String| ErrorBody::new(ErrorCode::InvalidConfig, m);
    let mut config = t.config;
    for key in delete {
        let set_too = match key.as_str() {
            "retention.ms" => set.retention_ms.is_some(),
            "retention.bytes" => set.retention_bytes.is_some(),
            "min.insync.replicas" => set.min_insync_replicas.is_some(),
            "segment.bytes" => set.segment_bytes.is_some(),
            "message.timestamp.type" => set.message_timestamp_type.is_some(),
            other => {
                return Err(invalid(format!(
                    "unknown setting '{other}'; --delete-config takes one of: {}",
                    CONFIG_KEYS.join(", ")
                )))
            }
        };
        if set_too {
            return Err(invalid(format!("'{key}' is both set and deleted")));
        }
        match key.as_str() {
            "retention.ms" => config.retention_ms = None,
            "retention.bytes" => config.retention_bytes = None,
            "min.insync.replicas" => config.min_insync_replicas = None,
            "message.timestamp.type" => config.message_timestamp_type = None,
            _ => config.segment_bytes = None,
        }
    }
    check_config(&set, replication_factor(t) as u32)?;
    if let Some(n) = set.min_insync_replicas {
        config.min_insync_replicas = Some(n);
    }
    if let Some(b) = set.segment_bytes {
        config.segment_bytes = Some(b);
    }
    if let Some(ms) = set.retention_ms {
        config.retention_ms = Some(ms);
    }
    if let Some(b) = set.retention_bytes {
        config.retention_bytes = Some(b);
    }
    if let Some(t) = set.message_timestamp_type {
        config.message_timestamp_type = Some(t);
    }
    if config == t.config {
        return Ok(None);
    }
    Ok(Some(MetaRecord::TopicConfigChanged {
        topic: topic.to_string(),
        config,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zookeeper::state::TopicDefaults;

    const DEFAULTS: TopicDefaults = TopicDefaults {
        partitions: 3,
        replication_factor: 1,
    };

    fn state_with(partitions: u32, rf: u32, brokers: &[u32]) -> MetadataState {
        let mut s = MetadataState::default();
        let rec = s
            .plan_create(
                "t",
                Some(partitions),
                Some(rf),
                TopicConfig::default(),
                DEFAULTS,
                brokers,
            )
            .expect("create");
        s.apply(&rec);
        s
    }

    #[test]
    fn given_six_partitions_when_growing_to_nine_should_spread_replicas_and_leaders_evenly() {
        let mut s = state_with(6, 3, &[1, 2, 3]);
        let rec = plan_add_partitions(&s, "t", 9, &[1, 2, 3]).expect("grow");
        s.apply(&rec);
        let t = s.topic("t").expect("topic");
        assert_eq!(t.partitions.len(), 9);
        let mut leaders = std::collections::BTreeMap::new();
        for (i, p) in t.partitions.iter().enumerate() {
            assert_eq!(p.partition, i as u32);
            let mut r = p.replicas.clone();
            r.sort_unstable();
            r.dedup();
            assert_eq!(r.len(), 3, "distinct replicas");
            assert_eq!(p.isr, p.replicas);
            *leaders.entry(p.leader.expect("leader")).or_insert(0) += 1;
        }
        assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![3, 3, 3]);
    }

    #[test]
    fn given_bad_growth_when_planning_should_refuse_with_typed_errors() {
        let s = state_with(6, 3, &[1, 2, 3]);
        let cases: &[(&str, u32, &[u32], ErrorCode)] = &[
            ("t", 6, &[1, 2, 3], ErrorCode::InvalidPartitions),
            ("t", 3, &[1, 2, 3], ErrorCode::InvalidPartitions),
            ("t", 9, &[1, 2], ErrorCode::InvalidPartitions),
            (
                "t",
                PARTITIONS_MAX + 1,
                &[1, 2, 3],
                ErrorCode::InvalidPartitions,
            ),
            ("nope", 9, &[1, 2, 3], ErrorCode::UnknownTopic),
        ];
        for (topic, count, alive, code) in cases {
            let err = plan_add_partitions(&s, topic, *count, alive).expect_err("refused");
            assert_eq!(&err.code, code, "{topic} {count} {alive:?}");
        }
    }

    #[test]
    fn given_config_changes_when_planning_should_set_delete_and_refuse_bad_values() {
        let mut s = state_with(1, 3, &[1, 2, 3]);
        let set = TopicConfig {
            retention_ms: Some(1000),
            min_insync_replicas: Some(3),
            ..TopicConfig::default()
        };
        let rec = plan_alter_config(&s, "t", set, &[])
            .expect("valid")
            .expect("a change");
        s.apply(&rec);
        assert_eq!(s.topic("t").expect("t").config, set);
        assert!(
            plan_alter_config(&s, "t", set, &[])
                .expect("valid")
                .is_none(),
            "setting the same values changes nothing"
        );
        let rec = plan_alter_config(&s, "t", TopicConfig::default(), &["retention.ms".into()])
            .expect("valid")
            .expect("a change");
        s.apply(&rec);
        let c = s.topic("t").expect("t").config;
        assert_eq!((c.retention_ms, c.min_insync_replicas), (None, Some(3)));
        let bad: &[(TopicConfig, &[&str])] = &[
            (
                TopicConfig {
                    min_insync_replicas: Some(4),
                    ..TopicConfig::default()
                },
                &[],
            ),
            (
                TopicConfig {
                    min_insync_replicas: Some(0),
                    ..TopicConfig::default()
                },
                &[],
            ),
            (
                TopicConfig {
                    segment_bytes: Some(1),
                    ..TopicConfig::default()
                },
                &[],
            ),
            (TopicConfig::default(), &["cleanup.policy"]),
            (
                TopicConfig {
                    retention_ms: Some(5),
                    ..TopicConfig::default()
                },
                &["retention.ms"],
            ),
        ];
        for (set, delete) in bad {
            let delete: Vec<String> = delete.iter().map(|k| k.to_string()).collect();
            let err = plan_alter_config(&s, "t", *set, &delete).expect_err("refused");
            assert_eq!(err.code, ErrorCode::InvalidConfig, "{set:?} {delete:?}");
        }
        let err = plan_alter_config(&s, "nope", set, &[]).expect_err("unknown topic");
        assert_eq!(err.code, ErrorCode::UnknownTopic);
    }

    #[test]
    fn given_settings_out_of_range_when_creating_should_refuse_as_a_change_would() {
        let s = MetadataState::default();
        let create = |config| s.plan_create("n", Some(1), Some(2), config, DEFAULTS, &[1, 2, 3]);
        let too_many = TopicConfig {
            min_insync_replicas: Some(3),
            ..TopicConfig::default()
        };
        assert_eq!(
            create(too_many).expect_err("3 > rf 2").code,
            ErrorCode::InvalidConfig
        );
        let ok = TopicConfig {
            min_insync_replicas: Some(2),
            message_timestamp_type: Some(crate::protocol::TimestampType::LogAppendTime),
            ..TopicConfig::default()
        };
        assert!(create(ok).is_ok());
    }

    #[test]
    fn given_timestamp_type_when_set_then_deleted_should_go_back_to_the_default() {
        let mut s = state_with(1, 1, &[1]);
        let set = TopicConfig {
            message_timestamp_type: Some(crate::protocol::TimestampType::LogAppendTime),
            ..TopicConfig::default()
        };
        let rec = plan_alter_config(&s, "t", set, &[])
            .expect("set")
            .expect("a change");
        s.apply(&rec);
        let t = s.topic("t").expect("topic").config.message_timestamp_type;
        assert_eq!(t, Some(crate::protocol::TimestampType::LogAppendTime));
        let rec = plan_alter_config(
            &s,
            "t",
            TopicConfig::default(),
            &["message.timestamp.type".into()],
        )
        .expect("delete")
        .expect("a change");
        s.apply(&rec);
        assert_eq!(
            s.topic("t").expect("topic").config.message_timestamp_type,
            None
        );
    }
}
