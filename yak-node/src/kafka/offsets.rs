//! ListOffsets (v1+): `-2` (earliest) is the log start offset, `-1`
//! (latest) the high watermark (what a consumer can read up to), one YaK
//! call per partition. A lookup by timestamp is refused with
//! `UNSUPPORTED_FOR_MESSAGE_FORMAT`: YaK's logs keep no time index yet.
//! Never reads a log.

use super::errors;
use super::frame::{self, KafkaFrameError};
use super::native::BrokerLink;
use super::request::topic_name;
use super::request::{Finish, Outcome};
use crate::limits::KAFKA_REQUEST_PARTITIONS_MAX;
use crate::protocol::{Call, OffsetSpec, Reply};
use bytes::Bytes;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

/// Kafka's timestamp asking for the latest offset.
const LATEST_TIMESTAMP: i64 = -1;
/// Kafka's timestamp asking for the earliest offset.
const EARLIEST_TIMESTAMP: i64 = -2;

/// What was asked of one partition.
enum Ask {
    Sent,
    Refused(i16),
}

/// Handles a ListOffsets request.
pub fn handle(
    link: &mut BrokerLink,
    correlation_id: i32,
    version: i16,
    body: Bytes,
) -> Result<Outcome, KafkaFrameError> {
    let req: ListOffsetsRequest = frame::decode(body, version, "ListOffsets")?;
    let count: usize = req.topics.iter().map(|t| t.partitions.len()).sum();
    let mut ids = Vec::new();
    let mut plan: Vec<(String, Vec<(i32, Ask)>)> = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let topic = t.name.0.to_string();
        let mut asks = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let spec = match p.timestamp {
                LATEST_TIMESTAMP => Some(OffsetSpec::Latest),
                EARLIEST_TIMESTAMP => Some(OffsetSpec::Earliest),
                _ => None,
            };
            let ask = match (spec, u32::try_from(p.partition_index)) {
                _ if count > KAFKA_REQUEST_PARTITIONS_MAX => Ask::Refused(errors::INVALID_REQUEST),
                (Some(spec), Ok(partition)) => {
                    let call = Call::ListOffsets {
                        topic: topic.clone(),
                        partition,
                        spec,
                    };
                    let id = link
                        .send(call)
                        .map_err(|e| KafkaFrameError::Broker(e.to_string()))?;
                    ids.push(id);
                    Ask::Sent
                }
                (None, _) => Ask::Refused(errors::UNSUPPORTED_FOR_MESSAGE_FORMAT),
                (_, Err(_)) => Ask::Refused(errors::UNKNOWN_TOPIC_OR_PARTITION),
            };
            asks.push((p.partition_index, ask));
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
                    let r = ListOffsetsPartitionResponse::default()
                        .with_partition_index(index)
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(-1);
                    match ask {
                        Ask::Refused(code) => r.with_error_code(code),
                        Ask::Sent => match replies.next() {
                            Some(Reply::Offset { offset }) => {
                                r.with_offset(i64::try_from(offset).unwrap_or(i64::MAX))
                            }
                            Some(Reply::Error(e)) => r.with_error_code(errors::of(&e)),
                            _ => r.with_error_code(errors::UNKNOWN_SERVER_ERROR),
                        },
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic_name(&topic))
                .with_partitions(partitions)
        })
        .collect();
    frame::response(
        correlation_id,
        version,
        &ListOffsetsResponse::default().with_topics(topics),
        "ListOffsets",
    )
}
