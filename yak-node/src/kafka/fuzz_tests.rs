//! The request decoder under attack: valid requests of every served API
//! and version (encoded by the codec's own client side) must pass the
//! guard and decode; thousands of mutations of them (flipped bytes, cut
//! tails, forged lengths) and random frames must never panic or abort.

use super::frame::{self, parse_header, KafkaFrameError};
use super::guard;
use super::versions::SERVED;
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.into()))
}

/// A valid body of `api` at `version`, with a little of everything.
fn valid(api: ApiKey, version: i16) -> BytesMut {
    let mut buf = BytesMut::new();
    let r = match api {
        // v10+: a topic named by id too (a null name from v12).
        ApiKey::Metadata => MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(name("a"))),
                MetadataRequestTopic::default()
                    .with_name((version < 12).then(|| name("bb")))
                    .with_topic_id(if version >= 10 {
                        uuid::Uuid::from_u64_pair(1, 2)
                    } else {
                        uuid::Uuid::nil()
                    }),
            ]))
            .encode(&mut buf, version),
        ApiKey::CreateTopics => CreateTopicsRequest::default()
            .with_topics(vec![CreatableTopic::default()
                .with_name(name("t"))
                .with_num_partitions(3)
                .with_configs(vec![CreatableTopicConfig::default()
                    .with_name(StrBytes::from_static_str("retention.ms"))
                    .with_value(Some(StrBytes::from_static_str("1000")))])])
            .encode(&mut buf, version),
        ApiKey::DeleteTopics => {
            let mut r = DeleteTopicsRequest::default();
            if version >= 6 {
                r.topics = vec![DeleteTopicState::default().with_name(Some(name("t")))];
            } else {
                r.topic_names = vec![name("t"), name("u")];
            }
            r.encode(&mut buf, version)
        }
        ApiKey::InitProducerId => InitProducerIdRequest::default().encode(&mut buf, version),
        ApiKey::Produce => ProduceRequest::default()
            .with_acks(-1)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(name("t"))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(1)
                    .with_records(Some(Bytes::from_static(&[1; 70])))])])
            .encode(&mut buf, version),
        ApiKey::Fetch => FetchRequest::default()
            .with_topics(vec![FetchTopic::default()
                .with_topic(name("t"))
                .with_partitions(vec![
                    FetchPartition::default().with_fetch_offset(5)
                ])])
            .encode(&mut buf, version),
        ApiKey::ListOffsets => ListOffsetsRequest::default()
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(name("t"))
                .with_partitions(vec![
                    ListOffsetsPartition::default().with_timestamp(-2)
                ])])
            .encode(&mut buf, version),
        ApiKey::OffsetForLeaderEpoch => OffsetForLeaderEpochRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![OffsetForLeaderTopic::default()
                .with_topic(name("t"))
                .with_partitions(vec![
                    OffsetForLeaderPartition::default()
                        .with_partition(2)
                        .with_current_leader_epoch(4)
                        .with_leader_epoch(3),
                    OffsetForLeaderPartition::default().with_leader_epoch(1),
                ])])
            .encode(&mut buf, version),
        ApiKey::ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("g")))
            .with_subscribed_topic_names(Some(vec![name("t"), name("u")]))
            .with_server_assignor(Some(StrBytes::from_static_str("range")))
            .with_subscribed_topic_regex((version >= 1).then(|| StrBytes::from_static_str("t.*")))
            .with_topic_partitions(Some(vec![
                consumer_group_heartbeat_request::TopicPartitions::default()
                    .with_partitions(vec![0, 3]),
            ]))
            .encode(&mut buf, version),
        ApiKey::CreatePartitions => CreatePartitionsRequest::default()
            .with_topics(vec![
                create_partitions_request::CreatePartitionsTopic::default()
                    .with_name(name("t"))
                    .with_count(4)
                    .with_assignments(Some(vec![
                        create_partitions_request::CreatePartitionsAssignment::default()
                            .with_broker_ids(vec![BrokerId(1), BrokerId(2)]),
                    ])),
            ])
            .encode(&mut buf, version),
        ApiKey::DescribeConfigs => DescribeConfigsRequest::default()
            .with_resources(vec![
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(StrBytes::from_static_str("t"))
                    .with_configuration_keys(Some(vec![StrBytes::from_static_str("retention.ms")])),
            ])
            .encode(&mut buf, version),
        ApiKey::IncrementalAlterConfigs => IncrementalAlterConfigsRequest::default()
            .with_resources(vec![
                incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(StrBytes::from_static_str("t"))
                    .with_configs(vec![
                        incremental_alter_configs_request::AlterableConfig::default()
                            .with_name(StrBytes::from_static_str("retention.ms"))
                            .with_value(Some(StrBytes::from_static_str("1000"))),
                    ]),
            ])
            .encode(&mut buf, version),
        ApiKey::AlterConfigs => AlterConfigsRequest::default()
            .with_resources(vec![alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("t"))
                .with_configs(vec![alter_configs_request::AlterableConfig::default()
                    .with_name(StrBytes::from_static_str("retention.ms"))
                    .with_value(None)])])
            .encode(&mut buf, version),
        ApiKey::AlterPartitionReassignments => AlterPartitionReassignmentsRequest::default()
            .with_topics(vec![
                alter_partition_reassignments_request::ReassignableTopic::default()
                    .with_name(name("t"))
                    .with_partitions(vec![
                        alter_partition_reassignments_request::ReassignablePartition::default()
                            .with_replicas(Some(vec![BrokerId(4), BrokerId(2)])),
                        alter_partition_reassignments_request::ReassignablePartition::default()
                            .with_partition_index(1),
                    ]),
            ])
            .encode(&mut buf, version),
        ApiKey::ListPartitionReassignments => ListPartitionReassignmentsRequest::default()
            .with_topics(Some(vec![
                list_partition_reassignments_request::ListPartitionReassignmentsTopics::default()
                    .with_name(name("t"))
                    .with_partition_indexes(vec![0, 2]),
            ]))
            .encode(&mut buf, version),
        _ => return valid_group(api, version),
    };
    r.expect("test: valid requests encode");
    buf
}

/// A valid body of a group API at `version`.
fn valid_group(api: ApiKey, version: i16) -> BytesMut {
    let mut buf = BytesMut::new();
    let s = |v: &'static str| StrBytes::from_static_str(v);
    let group = GroupId(s("g"));
    let instance = (version >= 3).then(|| s("i"));
    let r = match api {
        ApiKey::FindCoordinator if version >= 4 => FindCoordinatorRequest::default()
            .with_coordinator_keys(vec![s("g"), s("h")])
            .encode(&mut buf, version),
        ApiKey::FindCoordinator => FindCoordinatorRequest::default()
            .with_key(s("g"))
            .encode(&mut buf, version),
        ApiKey::JoinGroup => JoinGroupRequest::default()
            .with_group_id(group)
            .with_session_timeout_ms(3000)
            .with_rebalance_timeout_ms(5000)
            .with_member_id(s("m"))
            .with_group_instance_id((version >= 5).then(|| s("i")))
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(Bytes::from_static(&[0, 1, 2]))])
            .with_reason((version >= 8).then(|| s("why")))
            .encode(&mut buf, version),
        ApiKey::SyncGroup => SyncGroupRequest::default()
            .with_group_id(group)
            .with_member_id(s("m"))
            .with_group_instance_id(instance)
            .with_protocol_type((version >= 5).then(|| s("consumer")))
            .with_protocol_name((version >= 5).then(|| s("range")))
            .with_assignments(vec![SyncGroupRequestAssignment::default()
                .with_member_id(s("m"))
                .with_assignment(Bytes::from_static(&[3, 4]))])
            .encode(&mut buf, version),
        ApiKey::Heartbeat => HeartbeatRequest::default()
            .with_group_id(group)
            .with_member_id(s("m"))
            .with_group_instance_id(instance)
            .encode(&mut buf, version),
        ApiKey::LeaveGroup if version >= 3 => LeaveGroupRequest::default()
            .with_group_id(group)
            .with_members(vec![MemberIdentity::default()
                .with_member_id(s("m"))
                .with_group_instance_id((version >= 4).then(|| s("i")))
                .with_reason((version >= 5).then(|| s("why")))])
            .encode(&mut buf, version),
        ApiKey::LeaveGroup => LeaveGroupRequest::default()
            .with_group_id(group)
            .with_member_id(s("m"))
            .encode(&mut buf, version),
        ApiKey::OffsetCommit => OffsetCommitRequest::default()
            .with_group_id(group)
            .with_member_id(s("m"))
            .with_group_instance_id((version >= 7).then(|| s("i")))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(name("t"))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_committed_offset(5)
                    .with_committed_metadata(Some(s("meta")))])])
            .encode(&mut buf, version),
        ApiKey::OffsetFetch if version >= 8 => OffsetFetchRequest::default()
            .with_groups(vec![
                OffsetFetchRequestGroup::default()
                    .with_group_id(group)
                    .with_member_id((version >= 9).then(|| s("m")))
                    .with_member_epoch(if version >= 9 { 3 } else { -1 })
                    .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                        .with_name(name("t"))
                        .with_partition_indexes(vec![0, 1])])),
                OffsetFetchRequestGroup::default().with_group_id(GroupId(s("h"))),
            ])
            .with_require_stable(true)
            .encode(&mut buf, version),
        ApiKey::OffsetFetch => OffsetFetchRequest::default()
            .with_group_id(group)
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(name("t"))
                .with_partition_indexes(vec![0, 1])]))
            .encode(&mut buf, version),
        ApiKey::ListGroups => ListGroupsRequest::default()
            .with_states_filter(if version >= 4 {
                vec![s("Stable")]
            } else {
                vec![]
            })
            .with_types_filter(if version >= 5 {
                vec![s("classic")]
            } else {
                vec![]
            })
            .encode(&mut buf, version),
        ApiKey::DescribeGroups => DescribeGroupsRequest::default()
            .with_groups(vec![group, GroupId(s("h"))])
            .encode(&mut buf, version),
        ApiKey::DeleteGroups => DeleteGroupsRequest::default()
            .with_groups_names(vec![group])
            .encode(&mut buf, version),
        _ => return buf,
    };
    r.expect("test: valid requests encode");
    buf
}

/// What dispatch does before a handler runs: the guard, then the decoder.
fn decode(api: ApiKey, version: i16, body: Bytes) -> Result<(), KafkaFrameError> {
    guard::check(api, version, &body)?;
    match api {
        ApiKey::Metadata => frame::decode::<MetadataRequest>(body, version, "m").map(drop),
        ApiKey::CreateTopics => frame::decode::<CreateTopicsRequest>(body, version, "c").map(drop),
        ApiKey::DeleteTopics => frame::decode::<DeleteTopicsRequest>(body, version, "d").map(drop),
        ApiKey::InitProducerId => {
            frame::decode::<InitProducerIdRequest>(body, version, "i").map(drop)
        }
        ApiKey::Produce => frame::decode::<ProduceRequest>(body, version, "p").map(drop),
        ApiKey::Fetch => frame::decode::<FetchRequest>(body, version, "f").map(drop),
        ApiKey::ListOffsets => frame::decode::<ListOffsetsRequest>(body, version, "l").map(drop),
        ApiKey::OffsetForLeaderEpoch => {
            frame::decode::<OffsetForLeaderEpochRequest>(body, version, "o").map(drop)
        }
        ApiKey::ConsumerGroupHeartbeat => {
            frame::decode::<ConsumerGroupHeartbeatRequest>(body, version, "h").map(drop)
        }
        ApiKey::CreatePartitions => {
            frame::decode::<CreatePartitionsRequest>(body, version, "cp").map(drop)
        }
        ApiKey::DescribeConfigs => {
            frame::decode::<DescribeConfigsRequest>(body, version, "dc").map(drop)
        }
        ApiKey::IncrementalAlterConfigs => {
            frame::decode::<IncrementalAlterConfigsRequest>(body, version, "iac").map(drop)
        }
        ApiKey::AlterConfigs => frame::decode::<AlterConfigsRequest>(body, version, "ac").map(drop),
        ApiKey::AlterPartitionReassignments => {
            frame::decode::<AlterPartitionReassignmentsRequest>(body, version, "apr").map(drop)
        }
        ApiKey::ListPartitionReassignments => {
            frame::decode::<ListPartitionReassignmentsRequest>(body, version, "lpr").map(drop)
        }
        _ => decode_group(api, version, body),
    }
}

fn decode_group(api: ApiKey, version: i16, body: Bytes) -> Result<(), KafkaFrameError> {
    match api {
        ApiKey::FindCoordinator => {
            frame::decode::<FindCoordinatorRequest>(body, version, "fc").map(drop)
        }
        ApiKey::JoinGroup => frame::decode::<JoinGroupRequest>(body, version, "j").map(drop),
        ApiKey::SyncGroup => frame::decode::<SyncGroupRequest>(body, version, "s").map(drop),
        ApiKey::Heartbeat => frame::decode::<HeartbeatRequest>(body, version, "h").map(drop),
        ApiKey::LeaveGroup => frame::decode::<LeaveGroupRequest>(body, version, "lg").map(drop),
        ApiKey::OffsetCommit => frame::decode::<OffsetCommitRequest>(body, version, "oc").map(drop),
        ApiKey::OffsetFetch => frame::decode::<OffsetFetchRequest>(body, version, "of").map(drop),
        ApiKey::ListGroups => frame::decode::<ListGroupsRequest>(body, version, "lsg").map(drop),
        ApiKey::DescribeGroups => {
            frame::decode::<DescribeGroupsRequest>(body, version, "dg").map(drop)
        }
        ApiKey::DeleteGroups => frame::decode::<DeleteGroupsRequest>(body, version, "xg").map(drop),
        _ => Ok(()),
    }
}

/// Served (API, version) pairs whose bodies are decoded.
fn served() -> Vec<(ApiKey, i16)> {
    SERVED
        .iter()
        .filter(|s| s.key != ApiKey::ApiVersions)
        .flat_map(|s| (s.served_min..=s.max).map(move |v| (s.key, v)))
        .collect()
}

/// xorshift64*: deterministic, so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn given_valid_requests_of_every_served_version_when_guarded_and_decoded_should_pass() {
    for (api, version) in served() {
        let body = valid(api, version).freeze();
        let covered = guard::covered(api, version, &body);
        assert_eq!(
            covered,
            Ok(body.len()),
            "{api:?} v{version}: the guard's schema"
        );
        decode(api, version, body).unwrap_or_else(|e| panic!("{api:?} v{version}: {e}"));
    }
}

#[test]
fn given_forged_array_length_when_decoding_should_refuse_before_allocating() {
    // Produce v7: transactional id (null), acks, timeout, then the topic count.
    let mut body = vec![0xff, 0xff, 0, 1, 0, 0, 0x75, 0x30];
    body.extend_from_slice(&i32::MAX.to_be_bytes());
    let err = decode(ApiKey::Produce, 7, Bytes::from(body)).expect_err("refused");
    assert!(err.to_string().contains("elements declared"), "{err}");
}

#[test]
fn given_thousands_of_mutated_requests_when_decoding_should_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let pairs = served();
    let mut refused = 0;
    let cases = 20_000;
    for case in 0..cases {
        let (api, version) = pairs[case % pairs.len()];
        let mut body = valid(api, version).to_vec();
        for _ in 0..1 + rng.below(4) {
            match rng.below(5) {
                0 if !body.is_empty() => {
                    let i = rng.below(body.len());
                    body[i] ^= 1 << rng.below(8);
                }
                1 => body.truncate(rng.below(body.len() + 1)),
                2 if body.len() >= 4 => {
                    // A forged length: 0x7f.. or 0xff.. at a random place.
                    let i = rng.below(body.len() - 3);
                    let forged = if rng.below(2) == 0 { 0x7f } else { 0xff };
                    body[i..i + 4].copy_from_slice(&[forged, 0xff, 0xff, 0xff]);
                }
                3 => body.push(rng.next() as u8),
                _ => {
                    let i = rng.below(body.len() + 1);
                    body.insert(i, 0x80 | rng.next() as u8);
                }
            }
        }
        if decode(api, version, Bytes::from(body)).is_err() {
            refused += 1;
        }
    }
    assert!(
        refused > cases / 10,
        "mutations are mostly refused: {refused}"
    );
}

#[test]
fn given_random_frames_when_parsing_headers_should_never_panic() {
    let mut rng = Rng(42);
    for _ in 0..20_000 {
        let len = rng.below(40);
        let mut frame: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if frame.len() >= 4 && rng.below(2) == 0 {
            // A real API key and version, so the header decoders run.
            let (api, version) = served()[rng.below(served().len())];
            frame[..2].copy_from_slice(&(api as i16).to_be_bytes());
            frame[2..4].copy_from_slice(&version.to_be_bytes());
        }
        if let Ok(parsed) = parse_header(frame) {
            if let Some(api) = parsed.api {
                let _ = decode(api, parsed.header.request_api_version, parsed.body);
            }
        }
    }
}
