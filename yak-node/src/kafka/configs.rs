//! DescribeConfigs, IncrementalAlterConfigs and AlterConfigs: Kafka's
//! admin clients reading and changing topic settings (`retention.ms`,
//! `retention.bytes`, `min.insync.replicas`, `segment.bytes`,
//! `message.timestamp.type`) and reading this broker's; CreateTopics reads
//! a new topic's settings through [`new_topic_config`]. A change is forwarded to ZooKeeper's `AlterTopicConfig`,
//! the call `topic alter` makes, which checks it; broker settings are flags
//! given at start-up, so they are read-only here. Never applies a setting.

use super::errors;
use super::frame::{self, KafkaFrameError};
use super::request::{Outcome, Shared};
use super::topic_admin::{zk_call, zk_unreachable, Failure};
use crate::limits::{MIN_INSYNC_REPLICAS_DEFAULT, SEGMENT_BYTES_DEFAULT};
use crate::protocol::{Call, TimestampType, TopicConfig, TopicMetadata};
use crate::zookeeper::alter::{replication_factor, CONFIG_KEYS};
use bytes::Bytes;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

/// Kafka's resource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

/// Kafka's config sources (DescribeConfigs v1+).
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

/// Kafka's config types (DescribeConfigs v3+).
const TYPE_BOOLEAN: i8 = 1;
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;

/// Kafka's `message.timestamp.type`.
const TIMESTAMP_TYPE: &str = "message.timestamp.type";

/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

/// One setting as DescribeConfigs shows it.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    name: &'static str,
    value: String,
    source: i8,
    config_type: i8,
    read_only: bool,
}

fn entry(name: &'static str, value: String, source: i8, config_type: i8) -> Entry {
    Entry {
        name,
        value,
        source,
        config_type,
        read_only: false,
    }
}

/// A topic's settings: its own override (`DYNAMIC_TOPIC_CONFIG`), else
/// this broker's flag (`STATIC_BROKER_CONFIG`), else the built-in default.
fn topic_entries(shared: &Shared, t: &TopicMetadata) -> Vec<Entry> {
    let c = t.config;
    let k = &shared.config;
    let pick = |own: Option<u64>, flag: Option<u64>, default: i64| match (own, flag) {
        (Some(v), _) => (v.to_string(), SOURCE_TOPIC),
        (None, Some(v)) => (v.to_string(), SOURCE_STATIC_BROKER),
        (None, None) => (default.to_string(), SOURCE_DEFAULT),
    };
    let (ms, ms_source) = pick(c.retention_ms, k.retention.ms, -1);
    let (bytes, bytes_source) = pick(c.retention_bytes, k.retention.bytes, -1);
    let segment_flag = (k.segment_bytes != SEGMENT_BYTES_DEFAULT).then_some(k.segment_bytes);
    let (segment, segment_source) =
        pick(c.segment_bytes, segment_flag, SEGMENT_BYTES_DEFAULT as i64);
    let min_isr_default = MIN_INSYNC_REPLICAS_DEFAULT
        .min(replication_factor(t))
        .max(1) as i64;
    let (min_isr, min_isr_source) =
        pick(c.min_insync_replicas.map(u64::from), None, min_isr_default);
    vec![
        entry("retention.ms", ms, ms_source, TYPE_LONG),
        entry("retention.bytes", bytes, bytes_source, TYPE_LONG),
        entry("min.insync.replicas", min_isr, min_isr_source, TYPE_INT),
        entry("segment.bytes", segment, segment_source, TYPE_INT),
        match c.message_timestamp_type {
            Some(t) => entry(TIMESTAMP_TYPE, t.name().into(), SOURCE_TOPIC, TYPE_STRING),
            None => entry(
                TIMESTAMP_TYPE,
                TimestampType::CreateTime.name().into(),
                SOURCE_DEFAULT,
                TYPE_STRING,
            ),
        },
        Entry {
            read_only: true,
            ..entry(
                "cleanup.policy",
                "delete".into(),
                SOURCE_DEFAULT,
                TYPE_STRING,
            )
        },
    ]
}

/// This broker's settings, all read-only (flags given at start-up).
fn broker_entries(shared: &Shared) -> Vec<Entry> {
    let k = &shared.config;
    let flag = |v: Option<u64>| {
        v.map_or(("-1".to_string(), SOURCE_DEFAULT), |v| {
            (v.to_string(), SOURCE_STATIC_BROKER)
        })
    };
    let (ms, ms_source) = flag(k.retention.ms);
    let (bytes, bytes_source) = flag(k.retention.bytes);
    let segment_source = if k.segment_bytes == SEGMENT_BYTES_DEFAULT {
        SOURCE_DEFAULT
    } else {
        SOURCE_STATIC_BROKER
    };
    let read_only = |e: Entry| Entry {
        read_only: true,
        ..e
    };
    vec![
        read_only(entry(
            "broker.id",
            k.broker_id.to_string(),
            SOURCE_STATIC_BROKER,
            TYPE_INT,
        )),
        read_only(entry("log.retention.ms", ms, ms_source, TYPE_LONG)),
        read_only(entry("log.retention.bytes", bytes, bytes_source, TYPE_LONG)),
        read_only(entry(
            "log.segment.bytes",
            k.segment_bytes.to_string(),
            segment_source,
            TYPE_INT,
        )),
        read_only(entry(
            "min.insync.replicas",
            MIN_INSYNC_REPLICAS_DEFAULT.to_string(),
            SOURCE_DEFAULT,
            TYPE_INT,
        )),
        read_only(entry(
            "auto.create.topics.enable",
            k.auto_create_topics.to_string(),
            SOURCE_STATIC_BROKER,
            TYPE_BOOLEAN,
        )),
    ]
}

/// The entries of one resource, or why not.
fn describe_one(shared: &Shared, resource_type: i8, name: &str) -> Result<Vec<Entry>, Failure> {
    match resource_type {
        RESOURCE_TOPIC => {
            let m = shared
                .zk
                .metadata(Some(vec![name.to_string()]))
                .map_err(|e| zk_unreachable(&e))?;
            m.topics
                .iter()
                .find(|t| t.name == name)
                .map(|t| topic_entries(shared, t))
                .ok_or_else(|| {
                    (
                        errors::UNKNOWN_TOPIC_OR_PARTITION,
                        format!("topic '{name}' does not exist"),
                    )
                })
        }
        RESOURCE_BROKER if name.is_empty() || name == shared.config.broker_id.to_string() => {
            Ok(broker_entries(shared))
        }
        RESOURCE_BROKER => Err((
            errors::INVALID_REQUEST,
            format!(
                "this is broker {}; ask broker {name} for its settings",
                shared.config.broker_id
            ),
        )),
        other => Err((
            errors::INVALID_REQUEST,
            format!("resource type {other} is not served (topics and brokers are)"),
        )),
    }
}

/// Answers DescribeConfigs for topics and this broker.
pub fn describe(
    shared: &Shared,
    correlation_id: i32,
    version: i16,
    body: Bytes,
) -> Result<Outcome, KafkaFrameError> {
    let req: DescribeConfigsRequest = frame::decode(body, version, "DescribeConfigs")?;
    let results = req
        .resources
        .iter()
        .map(|r| {
            let mut out = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            match describe_one(shared, r.resource_type, r.resource_name.as_str()) {
                Ok(entries) => {
                    out.configs = entries
                        .into_iter()
                        .filter(|e| {
                            r.configuration_keys
                                .as_ref()
                                .is_none_or(|keys| keys.iter().any(|k| k.as_str() == e.name))
                        })
                        .map(|e| {
                            // Each field exists from its version on only.
                            let mut c = DescribeConfigsResourceResult::default()
                                .with_name(StrBytes::from_static_str(e.name))
                                .with_value(Some(StrBytes::from_string(e.value)))
                                .with_read_only(e.read_only);
                            c.config_source = e.source;
                            if version >= 3 {
                                c.config_type = e.config_type;
                            }
                            c
                        })
                        .collect();
                }
                Err((code, m)) => {
                    out.error_code = code;
                    out.error_message = Some(StrBytes::from_string(m));
                }
            }
            out
        })
        .collect();
    let response = DescribeConfigsResponse::default().with_results(results);
    Ok(Outcome::Ready(frame::response(
        correlation_id,
        version,
        &response,
        "DescribeConfigs",
    )?))
}

/// A change of one topic's settings: what to set, what goes back to the
/// default.
#[derive(Debug, Default, PartialEq, Eq)]
struct Change {
    set: TopicConfig,
    delete: Vec<String>,
}

fn invalid(m: String) -> Failure {
    (errors::INVALID_CONFIG, m)
}

impl Change {
    /// Sets `key` to `value`; an unknown key or a value that is not a
    /// number is `INVALID_CONFIG`. `cleanup.policy=delete` is accepted
    /// and changes nothing (it is the only policy).
    fn set(&mut self, key: &str, value: Option<&str>) -> Result<(), Failure> {
        let value = value.ok_or_else(|| invalid(format!("{key}: a value is needed")))?;
        if key == "cleanup.policy" && value == "delete" {
            return Ok(());
        }
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| invalid(format!("{key} must be a number, not '{value}'")))
        };
        match key {
            "retention.ms" => self.set.retention_ms = Some(number()?),
            "retention.bytes" => self.set.retention_bytes = Some(number()?),
            "segment.bytes" => self.set.segment_bytes = Some(number()?),
            "min.insync.replicas" => {
                let n = number()?;
                let n = u32::try_from(n).map_err(|_| invalid(format!("{key} {n}")))?;
                self.set.min_insync_replicas = Some(n);
            }
            TIMESTAMP_TYPE => {
                let t = TimestampType::parse(value).ok_or_else(|| {
                    invalid(format!(
                        "{key} is CreateTime or LogAppendTime, not '{value}'"
                    ))
                })?;
                self.set.message_timestamp_type = Some(t);
            }
            _ => return Err(unknown(key)),
        }
        Ok(())
    }

    fn delete(&mut self, key: &str) -> Result<(), Failure> {
        if !CONFIG_KEYS.contains(&key) {
            return Err(unknown(key));
        }
        self.delete.push(key.to_string());
        Ok(())
    }
}

/// A new topic's settings from CreateTopics' `(name, value)` pairs, by the
/// same rules as a change (ZooKeeper checks the values against the topic).
pub(super) fn new_topic_config<'a>(
    pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<TopicConfig, Failure> {
    let mut change = Change::default();
    for (key, value) in pairs {
        change.set(key, value)?;
    }
    Ok(change.set)
}

fn unknown(key: &str) -> Failure {
    invalid(format!(
        "topic config '{key}' is not supported (these are: {})",
        CONFIG_KEYS.join(", ")
    ))
}

/// Sends `change` of topic `name` to ZooKeeper (or, `validate_only`, only
/// checks the topic exists). Broker resources are refused.
fn apply(
    shared: &Shared,
    resource_type: i8,
    name: &str,
    change: Result<Change, Failure>,
    validate_only: bool,
) -> Result<(), Failure> {
    match resource_type {
        RESOURCE_TOPIC => {}
        RESOURCE_BROKER => {
            return Err((
                errors::INVALID_REQUEST,
                "broker settings are flags given at start-up; change a topic's instead".into(),
            ))
        }
        other => {
            return Err((
                errors::INVALID_REQUEST,
                format!("resource type {other} is not served"),
            ))
        }
    }
    let change = change?;
    if validate_only {
        return describe_one(shared, RESOURCE_TOPIC, name).map(drop);
    }
    let call = Call::AlterTopicConfig {
        topic: name.to_string(),
        set: change.set,
        delete: change.delete,
    };
    zk_call(shared, &call).map(drop)
}

/// Answers IncrementalAlterConfigs: SET and DELETE of topic settings
/// (APPEND and SUBTRACT are for list settings; none of these is one).
pub fn incremental_alter(
    shared: &Shared,
    correlation_id: i32,
    version: i16,
    body: Bytes,
) -> Result<Outcome, KafkaFrameError> {
    let req: IncrementalAlterConfigsRequest =
        frame::decode(body, version, "IncrementalAlterConfigs")?;
    let responses = req
        .resources
        .iter()
        .map(|r| {
            let change = r.configs.iter().try_fold(Change::default(), |mut c, e| {
                let key = e.name.as_str();
                match e.config_operation {
                    OP_SET => c.set(key, e.value.as_ref().map(|v| v.as_str()))?,
                    OP_DELETE => c.delete(key)?,
                    op => {
                        return Err(invalid(format!(
                            "{key}: operation {op} is for list settings"
                        )))
                    }
                }
                Ok(c)
            });
            let mut out =
                incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name.clone());
            if let Err((code, m)) = apply(
                shared,
                r.resource_type,
                r.resource_name.as_str(),
                change,
                req.validate_only,
            ) {
                out.error_code = code;
                out.error_message = Some(StrBytes::from_string(m));
            }
            out
        })
        .collect();
    let response = IncrementalAlterConfigsResponse::default().with_responses(responses);
    Ok(Outcome::Ready(frame::response(
        correlation_id,
        version,
        &response,
        "IncrementalAlterConfigs",
    )?))
}

/// Answers AlterConfigs (the older, whole-set form): the settings named
/// are set, every other one goes back to its default, as Kafka does.
pub fn alter(
    shared: &Shared,
    correlation_id: i32,
    version: i16,
    body: Bytes,
) -> Result<Outcome, KafkaFrameError> {
    let req: AlterConfigsRequest = frame::decode(body, version, "AlterConfigs")?;
    let responses = req
        .resources
        .iter()
        .map(|r| {
            let change = r
                .configs
                .iter()
                .try_fold(Change::default(), |mut c, e| {
                    c.set(e.name.as_str(), e.value.as_ref().map(|v| v.as_str()))?;
                    Ok(c)
                })
                .map(|mut c| {
                    c.delete = CONFIG_KEYS
                        .iter()
                        .filter(|k| !r.configs.iter().any(|e| e.name.as_str() == **k))
                        .map(|k| k.to_string())
                        .collect();
                    c
                });
            let mut out = alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            if let Err((code, m)) = apply(
                shared,
                r.resource_type,
                r.resource_name.as_str(),
                change,
                req.validate_only,
            ) {
                out.error_code = code;
                out.error_message = Some(StrBytes::from_string(m));
            }
            out
        })
        .collect();
    let response = AlterConfigsResponse::default().with_responses(responses);
    Ok(Outcome::Ready(frame::response(
        correlation_id,
        version,
        &response,
        "AlterConfigs",
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_set_and_delete_ops_when_building_a_change_should_take_known_keys_only() {
        let mut c = Change::default();
        c.set("retention.ms", Some("60000")).expect("known");
        c.set("min.insync.replicas", Some("2")).expect("known");
        c.set("cleanup.policy", Some("delete"))
            .expect("the only policy");
        c.delete("segment.bytes").expect("known");
        assert_eq!(c.set.retention_ms, Some(60_000));
        assert_eq!(c.set.min_insync_replicas, Some(2));
        assert_eq!(c.delete, vec!["segment.bytes".to_string()]);
        for (key, value) in [
            ("compression.type", Some("lz4")),
            ("retention.ms", Some("soon")),
            ("retention.ms", None),
            ("cleanup.policy", Some("compact")),
        ] {
            let (code, _) = Change::default().set(key, value).expect_err("refused");
            assert_eq!(code, errors::INVALID_CONFIG, "{key}={value:?}");
        }
        let (code, _) = Change::default().delete("flush.ms").expect_err("unknown");
        assert_eq!(code, errors::INVALID_CONFIG);
    }
}
