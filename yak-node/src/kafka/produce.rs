//! Produce (v3+): each partition's record set is split into its batches
//! (by their length fields; everything else is checked by the broker) and
//! each batch becomes one YaK produce call, so the broker validates and
//! stores it as sent. `acks=0` sends the calls and answers nothing.
//! Never decodes records.

use super::errors;
use super::frame::{self, KafkaFrameError};
use super::native::BrokerLink;
use super::request::topic_name;
use super::request::{Finish, Outcome};
use crate::limits::KAFKA_REQUEST_PARTITIONS_MAX;
use crate::protocol::{Call, Reply};
use bytes::Bytes;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;

/// Bytes of a batch header before its `batchLength` field ends.
const BATCH_LENGTH_END_BYTES: usize = 12;
/// Smallest `batchLength` of a v2 batch (its header after that field).
const BATCH_LENGTH_MIN_BYTES: usize = 49;

/// What one partition of the request became.
enum Sent {
    /// Refused here, before the broker saw it.
    Refused(i16, String),
    /// Calls sent for its batches, in order.
    Calls(Vec<u64>),
}

/// Handles a Produce request.
pub fn handle(
    link: &mut BrokerLink,
    correlation_id: i32,
    version: i16,
    body: Bytes,
) -> Result<Outcome, KafkaFrameError> {
    let req: ProduceRequest = frame::decode(body, version, "Produce")?;
    let acks = req.acks;
    let partitions: usize = req.topic_data.iter().map(|t| t.partition_data.len()).sum();
    let mut plan: Vec<(String, Vec<(i32, Sent)>)> = Vec::with_capacity(req.topic_data.len());
    for t in req.topic_data {
        let topic = t.name.0.to_string();
        let mut sent = Vec::with_capacity(t.partition_data.len());
        for p in t.partition_data {
            let outcome = if req.transactional_id.is_some() {
                Sent::Refused(
                    errors::INVALID_REQUEST,
                    "transactions are not supported".into(),
                )
            } else if partitions > KAFKA_REQUEST_PARTITIONS_MAX {
                Sent::Refused(
                    errors::INVALID_REQUEST,
                    format!("{partitions} partitions in one produce; the limit is {KAFKA_REQUEST_PARTITIONS_MAX}"),
                )
            } else if !matches!(acks, -1..=1) {
                Sent::Refused(errors::INVALID_REQUEST, format!("acks {acks}"))
            } else {
                match (
                    u32::try_from(p.index),
                    split_batches(p.records.as_deref().unwrap_or(&[])),
                ) {
                    (Ok(partition), Ok(batches)) => {
                        let mut ids = Vec::with_capacity(batches.len());
                        for b in batches {
                            let call = Call::Produce {
                                topic: topic.clone(),
                                partition,
                                acks: acks as i8,
                                records: b.to_vec(),
                            };
                            ids.push(
                                link.send(call)
                                    .map_err(|e| KafkaFrameError::Broker(e.to_string()))?,
                            );
                        }
                        Sent::Calls(ids)
                    }
                    (Err(_), _) => Sent::Refused(
                        errors::UNKNOWN_TOPIC_OR_PARTITION,
                        format!("partition {}", p.index),
                    ),
                    (_, Err(reason)) => Sent::Refused(errors::CORRUPT_MESSAGE, reason),
                }
            };
            sent.push((p.index, outcome));
        }
        plan.push((topic, sent));
    }
    if acks == 0 {
        return Ok(Outcome::Nothing);
    }
    let ids: Vec<u64> = plan
        .iter()
        .flat_map(|(_, ps)| ps.iter())
        .flat_map(|(_, s)| match s {
            Sent::Calls(ids) => ids.clone(),
            Sent::Refused(..) => Vec::new(),
        })
        .collect();
    let finish: Finish = Box::new(move |replies| respond(correlation_id, version, plan, replies));
    Ok(Outcome::Broker { ids, finish })
}

/// Builds the response from the broker's answers (in the order of the calls).
fn respond(
    correlation_id: i32,
    version: i16,
    plan: Vec<(String, Vec<(i32, Sent)>)>,
    replies: Vec<Reply>,
) -> Result<Vec<u8>, KafkaFrameError> {
    let mut replies = replies.into_iter();
    let responses = plan
        .into_iter()
        .map(|(topic, partitions)| {
            let partition_responses = partitions
                .into_iter()
                .map(|(index, sent)| {
                    let r = PartitionProduceResponse::default()
                        .with_index(index)
                        .with_base_offset(-1)
                        .with_log_append_time_ms(-1)
                        .with_log_start_offset(-1);
                    let (code, base, append_time, message) = match sent {
                        Sent::Refused(code, message) => (code, -1, None, Some(message)),
                        Sent::Calls(ids) => {
                            let mut first_base = None;
                            let mut append_time = None;
                            let mut error = None;
                            for _ in ids {
                                match replies.next() {
                                    Some(Reply::Produced {
                                        base_offset,
                                        log_append_time_ms,
                                        ..
                                    }) => {
                                        first_base.get_or_insert(base_offset as i64);
                                        append_time = append_time.or(log_append_time_ms);
                                    }
                                    Some(Reply::Error(e)) => {
                                        error.get_or_insert((errors::of(&e), e.message));
                                    }
                                    other => {
                                        error.get_or_insert((
                                            errors::UNKNOWN_SERVER_ERROR,
                                            format!("unexpected answer {other:?}"),
                                        ));
                                    }
                                }
                            }
                            match error {
                                Some((code, message)) => (code, -1, None, Some(message)),
                                None => {
                                    (errors::NONE, first_base.unwrap_or(-1), append_time, None)
                                }
                            }
                        }
                    };
                    // -1 unless the topic is LogAppendTime (Kafka's rule).
                    let mut r = r
                        .with_error_code(code)
                        .with_base_offset(base)
                        .with_log_append_time_ms(append_time.unwrap_or(-1));
                    if version >= 8 {
                        r.error_message = message.map(StrBytes::from_string);
                    } else if let Some(m) = message {
                        tracing::debug!(topic = %topic, partition = index, code, message = %m, "kafka produce refused");
                    }
                    r
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(topic_name(&topic))
                .with_partition_responses(partition_responses)
        })
        .collect();
    frame::response(
        correlation_id,
        version,
        &ProduceResponse::default().with_responses(responses),
        "Produce",
    )
}

/// Splits a record set into its v2 batches by their length fields.
pub fn split_batches(records: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    let mut rest = records;
    while !rest.is_empty() {
        if rest.len() < BATCH_LENGTH_END_BYTES {
            return Err(format!("{} stray bytes after the last batch", rest.len()));
        }
        let length = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
        let length = usize::try_from(length)
            .ok()
            .filter(|l| *l >= BATCH_LENGTH_MIN_BYTES)
            .ok_or_else(|| format!("batch length {length}"))?;
        let total = BATCH_LENGTH_END_BYTES + length;
        if total > rest.len() {
            return Err(format!(
                "a batch of {total} bytes where {} are left",
                rest.len()
            ));
        }
        let (batch, tail) = rest.split_at(total);
        out.push(batch);
        rest = tail;
    }
    if out.is_empty() {
        return Err("no record batch".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(len: usize) -> Vec<u8> {
        let mut b = vec![0u8; BATCH_LENGTH_END_BYTES + len];
        b[8..12].copy_from_slice(&(len as i32).to_be_bytes());
        b
    }

    #[test]
    fn given_record_sets_when_splitting_should_find_each_batch_or_refuse_the_set() {
        let mut two = batch(60);
        two.extend(batch(70));
        let split = split_batches(&two).expect("two batches");
        assert_eq!(split.iter().map(|b| b.len()).collect::<Vec<_>>(), [72, 82]);
        assert!(split_batches(&[]).is_err(), "no batch");
        assert!(split_batches(&two[..100]).is_err(), "cut short");
        assert!(split_batches(&batch(10)).is_err(), "length below a header");
        let mut negative = batch(60);
        negative[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(split_batches(&negative).is_err(), "negative length");
    }
}
