//! ListOffsets (v1–8): `-2` (earliest, and `-4`, earliest local: all of
//! YaK's log is local) is the log start offset, `-1`
//! (latest) the high watermark (what a consumer can read up to), `-3` the
//! first record with the largest timestamp, any other timestamp the first
//! record at or after it (found through the partition's time index; offset
//! and timestamp `-1` when none below the high watermark is that new). One
//! YaK call per partition. Never reads a log.

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
/// Kafka's timestamp asking for the record with the largest timestamp (v7).
const MAX_TIMESTAMP: i64 = -3;
/// Kafka's timestamp asking for the earliest offset on local storage (v8;
/// all of YaK's log is local).
const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;

/// The first ListOffsets version whose answer carries a leader epoch.
const LEADER_EPOCH_VERSION_MIN: i16 = 4;

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
                LATEST_TIMESTAMP => OffsetSpec::Latest,
                EARLIEST_TIMESTAMP | EARLIEST_LOCAL_TIMESTAMP => OffsetSpec::Earliest,
                MAX_TIMESTAMP => OffsetSpec::MaxTimestamp,
                timestamp_ms => OffsetSpec::Timestamp { timestamp_ms },
            };
            let ask = match u32::try_from(p.partition_index) {
                _ if count > KAFKA_REQUEST_PARTITIONS_MAX => Ask::Refused(errors::INVALID_REQUEST),
                Ok(partition) => {
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
                Err(_) => Ask::Refused(errors::UNKNOWN_TOPIC_OR_PARTITION),
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
                            Some(Reply::Offset { offset }) => r.with_offset(wire_offset(offset)),
                            Some(Reply::TimestampOffset { found: None }) => r,
                            Some(Reply::TimestampOffset { found: Some(f) }) => {
                                let r = r
                                    .with_offset(wire_offset(f.offset))
                                    .with_timestamp(f.timestamp_ms);
                                match version >= LEADER_EPOCH_VERSION_MIN {
                                    true => r.with_leader_epoch(
                                        i32::try_from(f.leader_epoch).unwrap_or(-1),
                                    ),
                                    false => r,
                                }
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

/// An offset as Kafka's i64.
fn wire_offset(offset: u64) -> i64 {
    i64::try_from(offset).unwrap_or(i64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::protocol::TimestampOffset;
    use bytes::Buf;
    use kafka_protocol::protocol::Decodable;

    /// The one partition answer of an encoded response.
    fn decoded(bytes: Vec<u8>, version: i16) -> ListOffsetsPartitionResponse {
        let mut b = Bytes::from(bytes);
        // Size, correlation id; from v6 (flexible) the header's empty tags.
        b.advance(if version >= 6 { 9 } else { 8 });
        let r = ListOffsetsResponse::decode(&mut b, version).unwrap();
        r.topics[0].partitions[0].clone()
    }

    #[test]
    fn given_found_and_missing_records_when_answering_every_version_should_encode_offset_timestamp_and_epoch_where_it_exists(
    ) {
        let found = TimestampOffset {
            offset: 42,
            timestamp_ms: 1_000,
            leader_epoch: 7,
        };
        for version in 1..=8 {
            for (reply, offset, timestamp) in [
                (Reply::TimestampOffset { found: Some(found) }, 42, 1_000),
                (Reply::TimestampOffset { found: None }, -1, -1),
            ] {
                let plan = vec![("t".to_string(), vec![(0, Ask::Sent)])];
                let bytes = respond(1, version, plan, vec![reply]).unwrap();
                let p = decoded(bytes, version);
                assert_eq!((p.error_code, p.offset), (0, offset), "v{version}");
                assert_eq!(p.timestamp, timestamp, "v{version}");
                let epoch = if version >= 4 && offset >= 0 { 7 } else { -1 };
                assert_eq!(p.leader_epoch, epoch, "v{version}");
            }
        }
    }
}
