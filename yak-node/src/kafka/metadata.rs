//! Metadata: brokers (each once, at the Kafka address it registered, always
//! `127.0.0.1`), topics, partition leaders, epochs, replicas and ISRs from
//! ZooKeeper; a topic a client names that does not exist is created with
//! the cluster defaults when the request allows it and the broker's
//! `--kafka-no-auto-create-topics` is not given. From v10 every topic
//! carries its Kafka topic id (`topic_ids.rs`) and a request may name
//! topics by id (an id no topic has gets `UNKNOWN_TOPIC_ID`). Never reads
//! a log.

use super::errors;
use super::frame::{self, KafkaFrameError};
use super::request::Shared;
use super::request::{topic_name, Outcome};
use super::topic_ids;
use crate::protocol::{BrokerInfo, Call, ClusterMetadata, ErrorCode, Reply, TopicMetadata};
use bytes::Bytes;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use kafka_protocol::protocol::StrBytes;
use std::net::SocketAddr;
use uuid::Uuid;

/// Answers a Metadata request.
pub fn answer(
    shared: &Shared,
    correlation_id: i32,
    version: i16,
    body: Bytes,
) -> Result<Outcome, KafkaFrameError> {
    let req: MetadataRequest = frame::decode(body, version, "Metadata")?;
    // Before v4 a Metadata request always allowed auto-creation.
    let may_create =
        shared.config.auto_create_topics && (version < 4 || req.allow_auto_topic_creation);
    let response = match wanted(shared, &req, version)
        .and_then(|w| Ok((load(shared, w.names.clone(), may_create)?, w)))
    {
        Ok((m, w)) => {
            let mut r = build(shared, &m, w.names.as_deref());
            r.topics.extend(w.unknown_ids.into_iter().map(|id| {
                MetadataResponseTopic::default()
                    .with_topic_id(id)
                    // The name is nullable from v12; empty before.
                    .with_name((version < 12).then(|| topic_name("")))
                    .with_error_code(errors::UNKNOWN_TOPIC_ID)
            }));
            r
        }
        Err(message) => {
            tracing::warn!(%message, "kafka metadata: zookeeper unavailable");
            // No brokers and every named topic unavailable: the client retries.
            let mut r = MetadataResponse::default()
                .with_controller_id(BrokerId(-1))
                .with_brokers(Vec::new());
            r.topics = named(&req)
                .into_iter()
                .map(|n| {
                    MetadataResponseTopic::default()
                        .with_name(Some(topic_name(&n)))
                        .with_error_code(errors::LEADER_NOT_AVAILABLE)
                })
                .collect();
            r
        }
    };
    Ok(Outcome::Ready(frame::response(
        correlation_id,
        version,
        &response,
        "Metadata",
    )?))
}

/// A request topic named by its id (v10+): an id, and no name (null, or
/// empty where the version has no null).
fn by_id(t: &MetadataRequestTopic) -> bool {
    !t.topic_id.is_nil() && t.name.as_ref().is_none_or(|n| n.0.is_empty())
}

/// The topics a request names, by name (ids aside).
fn named(req: &MetadataRequest) -> Vec<String> {
    req.topics
        .iter()
        .flatten()
        .filter(|t| !by_id(t))
        .filter_map(|t| t.name.as_ref().map(|n| n.0.as_str().to_string()))
        .collect()
}

/// What a request asks for: topic names (`None`: every topic), with the
/// topics it names by id (v10+) resolved, and the ids no topic has.
struct Wanted {
    names: Option<Vec<String>>,
    unknown_ids: Vec<Uuid>,
}

fn wanted(shared: &Shared, req: &MetadataRequest, version: i16) -> Result<Wanted, String> {
    let topics = match &req.topics {
        None => None,
        // v0: an empty list means every topic; v1+: null does.
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(t),
    };
    let Some(topics) = topics else {
        return Ok(Wanted {
            names: None,
            unknown_ids: Vec::new(),
        });
    };
    let mut names = named(req);
    let ids: Vec<Uuid> = topics
        .iter()
        .filter(|t| by_id(t))
        .map(|t| t.topic_id)
        .collect();
    let mut unknown_ids = Vec::new();
    if !ids.is_empty() {
        let all = shared.zk.metadata(None).map_err(|e| e.to_string())?;
        for id in ids {
            match topic_ids::name_of(&all, id) {
                Some(name) if !names.iter().any(|n| n == name) => names.push(name.to_string()),
                Some(_) => {}
                None => unknown_ids.push(id),
            }
        }
    }
    Ok(Wanted {
        names: Some(names),
        unknown_ids,
    })
}

/// Reads metadata, creating named topics that are missing when allowed.
fn load(
    shared: &Shared,
    names: Option<Vec<String>>,
    may_create: bool,
) -> Result<ClusterMetadata, String> {
    let m = shared
        .zk
        .metadata(names.clone())
        .map_err(|e| e.to_string())?;
    let Some(names) = names.filter(|_| may_create) else {
        return Ok(m);
    };
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !m.topics.iter().any(|t| &t.name == *n))
        .collect();
    if missing.is_empty() {
        return Ok(m);
    }
    for name in missing {
        let call = Call::CreateTopic {
            name: name.clone(),
            partitions: None,
            replication_factor: None,
            config: Default::default(),
        };
        match shared.zk.call(&call) {
            Ok(Reply::TopicCreated(t)) => {
                tracing::info!(topic = %t.name, partitions = t.partitions.len(), "kafka metadata: topic auto-created")
            }
            Ok(Reply::Error(e)) if e.code == ErrorCode::TopicAlreadyExists => {}
            Ok(Reply::Error(e)) => {
                tracing::info!(topic = %name, error = %e, "kafka metadata: auto-create refused")
            }
            Ok(other) => tracing::warn!(reply = ?other, "unexpected answer to CreateTopic"),
            Err(e) => return Err(e.to_string()),
        }
    }
    shared.zk.metadata(Some(names)).map_err(|e| e.to_string())
}

/// The response: alive brokers with a Kafka address, then the topics (a
/// named topic that does not exist gets `UNKNOWN_TOPIC_OR_PARTITION`).
fn build(shared: &Shared, m: &ClusterMetadata, names: Option<&[String]>) -> MetadataResponse {
    let alive: Vec<&BrokerInfo> = m.brokers.iter().filter(|b| b.alive).collect();
    let brokers = alive
        .iter()
        .filter_map(|b| {
            let addr: SocketAddr = b.kafka_address.as_deref()?.parse().ok()?;
            Some(
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(b.id as i32))
                    .with_host(StrBytes::from_string(addr.ip().to_string()))
                    .with_port(i32::from(addr.port())),
            )
        })
        .collect();
    let is_alive = |id: u32| alive.iter().any(|b| b.id == id);
    let mut topics: Vec<MetadataResponseTopic> = m
        .topics
        .iter()
        .map(|t| {
            topic(t, &is_alive).with_topic_id(topic_ids::topic_uuid(&m.cluster_id, t.topic_id))
        })
        .collect();
    for name in names.unwrap_or_default() {
        if !m.topics.iter().any(|t| &t.name == name) {
            topics.push(
                MetadataResponseTopic::default()
                    .with_name(Some(topic_name(name)))
                    .with_error_code(errors::UNKNOWN_TOPIC_OR_PARTITION),
            );
        }
    }
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(StrBytes::from_string(m.cluster_id.clone())))
        .with_controller_id(BrokerId(shared.config.broker_id as i32))
        .with_topics(topics)
}

fn topic(t: &TopicMetadata, is_alive: &dyn Fn(u32) -> bool) -> MetadataResponseTopic {
    let ids = |v: &[u32]| v.iter().map(|id| BrokerId(*id as i32)).collect::<Vec<_>>();
    let partitions = t
        .partitions
        .iter()
        .map(|p| {
            let leader = p.leader.filter(|l| is_alive(*l));
            let offline: Vec<u32> = p
                .replicas
                .iter()
                .copied()
                .filter(|r| !is_alive(*r))
                .collect();
            MetadataResponsePartition::default()
                .with_error_code(if leader.is_some() {
                    errors::NONE
                } else {
                    errors::LEADER_NOT_AVAILABLE
                })
                .with_partition_index(p.partition as i32)
                .with_leader_id(BrokerId(leader.map_or(-1, |l| l as i32)))
                .with_leader_epoch(p.leader_epoch as i32)
                .with_replica_nodes(ids(&p.replicas))
                .with_isr_nodes(ids(&p.isr))
                .with_offline_replicas(ids(&offline))
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(&t.name)))
        .with_partitions(partitions)
}
