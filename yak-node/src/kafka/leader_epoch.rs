//! OffsetForLeaderEpoch (v0+; librdkafka's consumer sends v2 to validate
//! its position after a leader change, KIP-320): one YaK `EpochEndOffset`
//! call per partition to this broker, which answers from the partition's
//! leader-epoch cache and checks `current_leader_epoch` (v2+): an older one
//! gets `FENCED_LEADER_EPOCH`, a newer one `UNKNOWN_LEADER_EPOCH`, a
//! follower `NOT_LEADER_OR_FOLLOWER`. Never reads a log.

use super::errors;
use super::frame::{self, KafkaFrameError};
use super::native::BrokerLink;
use super::request::topic_name;
use super::request::{Finish, Outcome};
use crate::limits::KAFKA_REQUEST_PARTITIONS_MAX;
use crate::protocol::{Call, Reply};
use bytes::Bytes;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

/// Kafka's "no epoch" / "no offset".
const UNDEFINED: i32 = -1;

/// What was asked of one partition.
enum Ask {
    Sent,
    Refused(i16),
}

/// Handles an OffsetForLeaderEpoch request.
pub fn handle(
    link: &mut BrokerLink,
    correlation_id: i32,
    version: i16,
    body: Bytes,
) -> Result<Outcome, KafkaFrameError> {
    let req: OffsetForLeaderEpochRequest = frame::decode(body, version, "OffsetForLeaderEpoch")?;
    let count: usize = req.topics.iter().map(|t| t.partitions.len()).sum();
    let mut ids = Vec::new();
    let mut plan: Vec<(String, Vec<(i32, Ask)>)> = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let topic = t.topic.0.to_string();
        let mut asks = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let ask = match (u32::try_from(p.partition), u32::try_from(p.leader_epoch)) {
                _ if count > KAFKA_REQUEST_PARTITIONS_MAX => Ask::Refused(errors::INVALID_REQUEST),
                (Ok(partition), Ok(leader_epoch)) => {
                    let call = Call::EpochEndOffset {
                        topic: topic.clone(),
                        partition,
                        leader_epoch,
                        // -1 (and every version before 2): no check.
                        current_leader_epoch: u32::try_from(p.current_leader_epoch).ok(),
                    };
                    let id = link
                        .send(call)
                        .map_err(|e| KafkaFrameError::Broker(e.to_string()))?;
                    ids.push(id);
                    Ask::Sent
                }
                (Err(_), _) => Ask::Refused(errors::UNKNOWN_TOPIC_OR_PARTITION),
                (_, Err(_)) => Ask::Refused(errors::INVALID_REQUEST),
            };
            asks.push((p.partition, ask));
        }
        plan.push((topic, asks));
    }
    let finish: Finish = Box::new(move |replies| respond(correlation_id, version, plan, replies));
    Ok(Outcome::Broker { ids, finish })
}

fn respond(
    correlation_id: i32,
    version: i16,
    plan: Vec<(String, Vec<(i32, Ask)>)>,
    replies: Vec<Reply>,
) -> Result<Vec<u8>, KafkaFrameError> {
    let mut replies = replies.into_iter();
    let topics = plan
        .into_iter()
        .map(|(topic, asks)| {
            let partitions = asks
                .into_iter()
                .map(|(index, ask)| {
                    let r = EpochEndOffset::default()
                        .with_partition(index)
                        .with_leader_epoch(UNDEFINED)
                        .with_end_offset(i64::from(UNDEFINED));
                    match ask {
                        Ask::Refused(code) => r.with_error_code(code),
                        Ask::Sent => match replies.next() {
                            Some(Reply::EpochEndOffset {
                                epoch_end: Some((epoch, end)),
                            }) => r
                                .with_leader_epoch(i32::try_from(epoch).unwrap_or(i32::MAX))
                                .with_end_offset(i64::try_from(end).unwrap_or(i64::MAX)),
                            Some(Reply::EpochEndOffset { epoch_end: None }) => r,
                            Some(Reply::Error(e)) => r.with_error_code(errors::of(&e)),
                            _ => r.with_error_code(errors::UNKNOWN_SERVER_ERROR),
                        },
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic_name(&topic))
                .with_partitions(partitions)
        })
        .collect();
    frame::response(
        correlation_id,
        version,
        &OffsetForLeaderEpochResponse::default().with_topics(topics),
        "OffsetForLeaderEpoch",
    )
}
