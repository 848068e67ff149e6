//! CreateTopics, DeleteTopics and InitProducerId, forwarded to ZooKeeper as
//! YaK's own admin calls. Producer ids come from ZooKeeper like the native
//! producer's: an InitProducerId without an id gets a fresh id with epoch
//! 0; one naming its id and epoch (KIP-360: librdkafka's epoch bump after
//! an error) gets the same id with the next epoch (a fresh id once the
//! epoch is exhausted), after which the partitions fence the old epoch.
//! Transactions are not served. Never touches a broker's partitions.

use super::errors;
use super::frame::{self, KafkaFrameError};
use super::request::topic_name;
use super::request::Outcome;
use super::request::Shared;
use crate::protocol::{Call, ClientError, Reply, TopicConfig};
use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    InitProducerIdRequest, InitProducerIdResponse, ProducerId,
};
use kafka_protocol::protocol::StrBytes;

/// An error code and message for a topic.
type TopicError = (i16, String);

fn from_reply(r: Result<Reply, ClientError>) -> Result<Reply, TopicError> {
    match r {
        Ok(Reply::Error(e)) => Err((errors::of(&e), e.message.clone())),
        Ok(reply) => Ok(reply),
        Err(ClientError::Server(e)) => Err((errors::of(&e), e.message)),
        Err(e) => Err((errors::REQUEST_TIMED_OUT, format!("zookeeper: {e}"))),
    }
}

/// Answers CreateTopics: one ZooKeeper CreateTopic per topic.
pub fn create_topics(
    shared: &Shared,
    correlation_id: i32,
    version: i16,
    body: Bytes,
) -> Result<Outcome, KafkaFrameError> {
    let req: CreateTopicsRequest = frame::decode(body, version, "CreateTopics")?;
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let name = t.name.0.as_str();
            let mut result = CreatableTopicResult::default()
                .with_name(topic_name(name))
                .with_num_partitions(t.num_partitions)
                .with_replication_factor(t.replication_factor);
            match create_one(shared, t, req.validate_only) {
                Ok((partitions, rf)) => {
                    result.num_partitions = partitions;
                    result.replication_factor = rf;
                }
                Err((code, message)) => {
                    result.error_code = code;
                    result.error_message = Some(StrBytes::from_string(message));
                }
            }
            result
        })
        .collect();
    let response = CreateTopicsResponse::default().with_topics(topics);
    Ok(Outcome::Ready(frame::response(
        correlation_id,
        version,
        &response,
        "CreateTopics",
    )?))
}

/// Creates one topic; returns its partition count and replication factor.
fn create_one(
    shared: &Shared,
    t: &CreatableTopic,
    validate_only: bool,
) -> Result<(i32, i16), TopicError> {
    let name = t.name.0.as_str();
    crate::protocol::names::validate_topic(name)
        .map_err(|e| (errors::INVALID_TOPIC_EXCEPTION, e))?;
    if !t.assignments.is_empty() {
        return Err((
            errors::INVALID_REQUEST,
            "manual replica assignments are not supported; YaK places replicas".into(),
        ));
    }
    let count = |n: i64, what: &str| -> Result<Option<u32>, TopicError> {
        match n {
            -1 => Ok(None),
            n if n >= 1 => Ok(u32::try_from(n).ok()),
            n => Err((errors::INVALID_PARTITIONS, format!("{what} {n}"))),
        }
    };
    let partitions = count(i64::from(t.num_partitions), "partition count")?;
    let replication_factor = count(i64::from(t.replication_factor), "replication factor")?;
    let config = topic_config(t)?;
    if validate_only {
        return Ok((t.num_partitions, t.replication_factor));
    }
    let call = Call::CreateTopic {
        name: name.to_string(),
        partitions,
        replication_factor,
        config,
    };
    match from_reply(shared.zk.call(&call))? {
        Reply::TopicCreated(m) => {
            let rf = m.partitions.first().map_or(0, |p| p.replicas.len());
            Ok((
                i32::try_from(m.partitions.len()).unwrap_or(i32::MAX),
                i16::try_from(rf).unwrap_or(i16::MAX),
            ))
        }
        other => Err((errors::UNKNOWN_SERVER_ERROR, format!("{other:?}"))),
    }
}

/// A new topic's Kafka configs as YaK's topic settings (the keys topic
/// alter takes); others are refused by name with `INVALID_CONFIG`.
fn topic_config(t: &CreatableTopic) -> Result<TopicConfig, TopicError> {
    super::configs::new_topic_config(
        // A null value asks for the default: nothing to set.
        t.configs.iter().filter_map(|c| {
            c.value
                .as_ref()
                .map(|v| (c.name.as_str(), Some(v.as_str())))
        }),
    )
}

/// Answers DeleteTopics: one ZooKeeper DeleteTopic per topic name.
pub fn delete_topics(
    shared: &Shared,
    correlation_id: i32,
    version: i16,
    body: Bytes,
) -> Result<Outcome, KafkaFrameError> {
    let req: DeleteTopicsRequest = frame::decode(body, version, "DeleteTopics")?;
    let mut names: Vec<String> = req.topic_names.iter().map(|n| n.0.to_string()).collect();
    names.extend(
        req.topics
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string())),
    );
    let responses = names
        .iter()
        .map(|name| {
            let mut r = DeletableTopicResult::default().with_name(Some(topic_name(name)));
            let call = Call::DeleteTopic { name: name.clone() };
            if let Err((code, message)) = from_reply(shared.zk.call(&call)) {
                r.error_code = code;
                if version >= 5 {
                    r.error_message = Some(StrBytes::from_string(message));
                }
            }
            r
        })
        .collect();
    let response = DeleteTopicsResponse::default().with_responses(responses);
    Ok(Outcome::Ready(frame::response(
        correlation_id,
        version,
        &response,
        "DeleteTopics",
    )?))
}

/// Answers InitProducerId: a fresh producer id and epoch 0, or the named
/// id's next epoch.
pub fn init_producer_id(
    shared: &Shared,
    correlation_id: i32,
    version: i16,
    body: Bytes,
) -> Result<Outcome, KafkaFrameError> {
    let req: InitProducerIdRequest = frame::decode(body, version, "InitProducerId")?;
    let mut response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if req.transactional_id.is_some() {
        response.error_code = errors::TRANSACTIONAL_ID_NOT_FOUND;
        tracing::info!("kafka InitProducerId: transactions are not supported");
    } else {
        let call = match (req.producer_id.0, req.producer_epoch) {
            (producer_id, epoch) if producer_id >= 0 && epoch >= 0 => {
                Call::BumpProducerEpoch { producer_id, epoch }
            }
            _ => Call::InitProducerId,
        };
        match from_reply(shared.zk.call(&call)) {
            Ok(Reply::ProducerId { producer_id }) => {
                response.producer_id = ProducerId(producer_id);
                response.producer_epoch = 0;
            }
            Ok(Reply::ProducerEpoch { producer_id, epoch }) => {
                tracing::info!(
                    producer_id,
                    epoch,
                    "kafka InitProducerId: producer epoch bumped"
                );
                response.producer_id = ProducerId(producer_id);
                response.producer_epoch = epoch;
            }
            Ok(other) => {
                tracing::warn!(reply = ?other, "unexpected answer to InitProducerId");
                response.error_code = errors::UNKNOWN_SERVER_ERROR;
            }
            Err((code, message)) => {
                tracing::warn!(%message, "kafka InitProducerId failed");
                response.error_code = code;
            }
        }
    }
    Ok(Outcome::Ready(frame::response(
        correlation_id,
        version,
        &response,
        "InitProducerId",
    )?))
}
