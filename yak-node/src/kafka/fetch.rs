//! Fetch (v4+): one YaK fetch call for every partition asked, run by the
//! broker's own fetch handling (in-process, as a native fetch): it answers
//! once `min_bytes` of records are there (at once for 0) or `max_wait_ms`
//! passes, parked meanwhile without holding this connection's reader.
//! Stored batches are returned as they lie. Each partition reports the high
//! watermark, `last_stable_offset` = high watermark (no transactions), the
//! log start offset and preferred read replica -1; `NOT_LEADER_OR_FOLLOWER`,
//! `FENCED_LEADER_EPOCH` and `OFFSET_OUT_OF_RANGE` as Kafka clients expect.
//! Each partition gets at most `partition_max_bytes` and the response at
//! most `max_bytes`, in whole batches, but the first batch of the first
//! partition with data always goes whole, however large (Kafka's progress
//! rule). Fetch sessions are not kept: every fetch is a full one (session
//! id 0). Never reads a log.

use super::errors;
use super::frame::{self, KafkaFrameError};
use super::native::BrokerLink;
use super::request::topic_name;
use super::request::{Finish, Outcome};
use crate::limits::{KAFKA_FETCH_WAIT_MS_MAX, KAFKA_REQUEST_PARTITIONS_MAX};
use crate::protocol::batch;
use crate::protocol::{Call, FetchPartition, FetchedPartition, Reply};
use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};

/// Handles a Fetch request.
pub fn handle(
    link: &mut BrokerLink,
    correlation_id: i32,
    version: i16,
    body: Bytes,
) -> Result<Outcome, KafkaFrameError> {
    let req: FetchRequest = frame::decode(body, version, "Fetch")?;
    let asked: Vec<(String, Vec<i32>)> = req
        .topics
        .iter()
        .map(|t| {
            (
                t.topic.0.to_string(),
                t.partitions.iter().map(|p| p.partition).collect(),
            )
        })
        .collect();
    let count: usize = asked.iter().map(|(_, p)| p.len()).sum();
    if count > KAFKA_REQUEST_PARTITIONS_MAX || req.replica_id.0 >= 0 {
        let response = FetchResponse::default().with_error_code(errors::INVALID_REQUEST);
        return Ok(Outcome::Ready(frame::response(
            correlation_id,
            version,
            &response,
            "Fetch",
        )?));
    }
    let mut partitions = Vec::with_capacity(count);
    for t in &req.topics {
        for p in &t.partitions {
            partitions.push(FetchPartition {
                topic: t.topic.0.to_string(),
                partition: u32::try_from(p.partition).unwrap_or(u32::MAX),
                // A negative offset is out of range, as the broker will say.
                offset: u64::try_from(p.fetch_offset).unwrap_or(u64::MAX),
                max_bytes: u32::try_from(p.partition_max_bytes).unwrap_or(0),
                leader_epoch: u32::try_from(p.current_leader_epoch).ok(),
                last_fetched_epoch: None,
            });
        }
    }
    let max_wait_ms = u64::try_from(req.max_wait_ms)
        .unwrap_or(0)
        .min(KAFKA_FETCH_WAIT_MS_MAX);
    let max_bytes = usize::try_from(req.max_bytes).unwrap_or(0);
    let call = Call::Fetch {
        replica_id: None,
        max_wait_ms,
        min_bytes: u32::try_from(req.min_bytes).unwrap_or(0),
        partitions,
    };
    let id = link
        .send(call)
        .map_err(|e| KafkaFrameError::Broker(e.to_string()))?;
    let finish: Finish = Box::new(move |mut replies| {
        let reply = replies.pop();
        respond(correlation_id, version, asked, max_bytes, reply)
    });
    Ok(Outcome::Broker {
        ids: vec![id],
        finish,
    })
}

fn respond(
    correlation_id: i32,
    version: i16,
    asked: Vec<(String, Vec<i32>)>,
    max_bytes: usize,
    reply: Option<Reply>,
) -> Result<Vec<u8>, KafkaFrameError> {
    let (mut fetched, whole_error) = match reply {
        Some(Reply::Fetched { partitions }) => (partitions, None),
        Some(Reply::Error(e)) => (Vec::new(), Some(errors::of(&e))),
        _ => (Vec::new(), Some(errors::UNKNOWN_SERVER_ERROR)),
    };
    fetched.reverse();
    let mut budget = max_bytes;
    let mut any_records = false;
    let responses = asked
        .into_iter()
        .map(|(topic, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|index| {
                    let f = fetched.pop();
                    partition_data(index, f, whole_error, &mut budget, &mut any_records)
                })
                .collect();
            FetchableTopicResponse::default()
                .with_topic(topic_name(&topic))
                .with_partitions(partitions)
        })
        .collect();
    frame::response(
        correlation_id,
        version,
        &FetchResponse::default().with_responses(responses),
        "Fetch",
    )
}

/// One partition's answer, charging its records to `budget`.
fn partition_data(
    index: i32,
    fetched: Option<FetchedPartition>,
    whole_error: Option<i16>,
    budget: &mut usize,
    any_records: &mut bool,
) -> PartitionData {
    let base = PartitionData::default()
        .with_partition_index(index)
        .with_preferred_read_replica(BrokerId(-1))
        .with_aborted_transactions(Some(Vec::new()));
    let failed = |code| {
        base.clone()
            .with_error_code(code)
            .with_high_watermark(-1)
            .with_last_stable_offset(-1)
            .with_log_start_offset(-1)
            .with_records(Some(Bytes::new()))
    };
    let Some(f) = fetched else {
        return failed(whole_error.unwrap_or(errors::UNKNOWN_SERVER_ERROR));
    };
    if let Some(e) = &f.error {
        let code = errors::of(e);
        if code == errors::OFFSET_OUT_OF_RANGE {
            // Clients reset from the log start, so tell it.
            return failed(code)
                .with_log_start_offset(i64::try_from(f.log_start_offset).unwrap_or(-1));
        }
        return failed(code);
    }
    let hw = i64::try_from(f.high_watermark).unwrap_or(i64::MAX);
    let mut records = f.records;
    if records.len() > *budget {
        records.truncate(whole_batches_within(&records, *budget, !*any_records));
    }
    *budget = budget.saturating_sub(records.len());
    *any_records |= !records.is_empty();
    base.with_error_code(errors::NONE)
        .with_high_watermark(hw)
        .with_last_stable_offset(hw)
        .with_log_start_offset(i64::try_from(f.log_start_offset).unwrap_or(-1))
        .with_records(Some(Bytes::from(records)))
}

/// How many leading bytes of `records` are whole batches within `budget`;
/// at least the first batch when `first` (nothing returned yet). Stored
/// batches were checked on append: only their length fields are read.
fn whole_batches_within(records: &[u8], budget: usize, first: bool) -> usize {
    let mut kept = 0;
    while let Some(Ok(header)) = records.get(kept..).map(batch::parse_header) {
        let end = kept + header.total_bytes();
        if end > records.len() || (end > budget && !(first && kept == 0)) {
            break;
        }
        kept = end;
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch::{BatchBuilder, NewRecord};

    /// Batches of `sizes` records of 100 bytes each, and where each ends.
    fn batches(sizes: &[usize]) -> (Vec<u8>, Vec<usize>) {
        let mut out = Vec::new();
        let mut ends = Vec::new();
        for n in sizes {
            let mut b = BatchBuilder::new(-1, 0, 0, 128);
            for _ in 0..*n {
                b.push(NewRecord {
                    key: None,
                    value: &[7u8; 100],
                    timestamp_ms: 1000,
                });
            }
            out.extend(b.finish());
            ends.push(out.len());
        }
        (out, ends)
    }

    #[test]
    fn given_batches_over_the_budget_when_trimming_should_keep_whole_batches_and_the_first_one_always(
    ) {
        let (records, ends) = batches(&[10, 1, 1]);
        assert_eq!(
            whole_batches_within(&records, records.len(), false),
            ends[2]
        );
        assert_eq!(whole_batches_within(&records, ends[1], false), ends[1]);
        assert_eq!(whole_batches_within(&records, ends[1] - 1, false), ends[0]);
        assert_eq!(whole_batches_within(&records, 10, false), 0, "nothing fits");
        assert_eq!(
            whole_batches_within(&records, 10, true),
            ends[0],
            "the first batch of a response goes whole, however large"
        );
        assert_eq!(
            whole_batches_within(&records[..ends[0] + 5], usize::MAX, false),
            ends[0],
            "a cut batch is never sent"
        );
    }
}
