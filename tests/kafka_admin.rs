//! Kafka's admin APIs through the front door, each visible in `yak-node
//! topic describe`: confluent-kafka's AdminClient grows a topic, reads and
//! changes its settings; raw AlterPartitionReassignments and
//! ListPartitionReassignments requests (no librdkafka binding sends them)
//! move a partition, list a move in progress and cancel one. Needs the
//! confluent-kafka virtualenv that `make kafka-deps` installs.

#![allow(clippy::unwrap_used)]

#[path = "kafka_support/mod.rs"]
mod kafka_support;

use bytes::BytesMut;
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ApiKey, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, RequestHeader,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use kafka_support::{kafka_cluster, python, wait_bounded};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use yak_tests::{wait_until, TestCluster};

fn describe(c: &TestCluster, topic: &str) -> Value {
    serde_json::from_str(&c.yak_ok(&["topic", "describe", topic, "--json"])).unwrap()
}

/// (value, source) of `key` in `topic describe --json`.
fn config(c: &TestCluster, topic: &str, key: &str) -> (String, String) {
    let d = describe(c, topic);
    let e = d["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == key)
        .unwrap()
        .clone();
    (
        e["value"].as_str().unwrap().to_string(),
        e["source"].as_str().unwrap().to_string(),
    )
}

#[test]
fn given_admin_client_when_growing_a_topic_and_changing_its_configs_should_show_them_in_topic_describe(
) {
    let k = kafka_cluster(3);
    let c = &k.cluster;
    c.yak_ok(&[
        "topic",
        "create",
        "grown",
        "--partitions",
        "2",
        "--replication-factor",
        "2",
    ]);
    let script = r#"
import json, sys
from confluent_kafka import KafkaException
from confluent_kafka.admin import (AdminClient, NewPartitions, NewTopic, ConfigResource, ConfigEntry,
    AlterConfigOpType, ResourceType)
a = AdminClient({"bootstrap.servers": sys.argv[1]})
def code(f):
    try:
        f.result(15)
        return 0
    except KafkaException as e:
        return e.args[0].code()
def configs(kind, name):
    r = ConfigResource(kind, name)
    return {k: [v.value, int(v.source)] for k, v in a.describe_configs([r])[r].result(15).items()}
def alter(entries):
    r = ConfigResource(ResourceType.TOPIC, "grown", incremental_configs=entries)
    return code(a.incremental_alter_configs([r])[r])
SET, DELETE = AlterConfigOpType.SET, AlterConfigOpType.DELETE
out = {}
if len(sys.argv) > 2:
    r = ConfigResource(ResourceType.TOPIC, "grown", set_config={"retention.bytes": "5000000"})
    out["whole_set"] = code(a.alter_configs([r])[r])
    out["replaced"] = configs(ResourceType.TOPIC, "grown")
else:
    out["exists"] = code(a.create_topics([NewTopic("grown", 1, 1)])["grown"])
    out["grow"] = code(a.create_partitions([NewPartitions("grown", 4)])["grown"])
    out["shrink"] = code(a.create_partitions([NewPartitions("grown", 3)])["grown"])
    out["before"] = configs(ResourceType.TOPIC, "grown")
    out["set"] = alter([
        ConfigEntry("retention.ms", "60000", incremental_operation=SET),
        ConfigEntry("min.insync.replicas", "1", incremental_operation=SET),
        ConfigEntry("segment.bytes", "1048576", incremental_operation=SET),
    ])
    out["delete"] = alter([ConfigEntry("segment.bytes", None, incremental_operation=DELETE)])
    out["unknown"] = alter([ConfigEntry("compression.type", "lz4", incremental_operation=SET)])
    out["out_of_range"] = alter([ConfigEntry("min.insync.replicas", "5", incremental_operation=SET)])
    out["after"] = configs(ResourceType.TOPIC, "grown")
    out["broker"] = configs(ResourceType.BROKER, "1")
print(json.dumps(out))
"#;
    let run = |args: &[&str]| -> Value {
        let child = python(script, args);
        let out = wait_bounded(child, Duration::from_secs(60), "admin client");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let v = run(&[&k.bootstrap()]);
    assert_eq!(v["exists"], 36, "ZooKeeper's refusal keeps its code: {v}");
    assert_eq!(v["grow"], 0, "{v}");
    assert_eq!(v["shrink"], 37, "a shrink is INVALID_PARTITIONS: {v}");
    assert_eq!(
        describe(c, "grown")["partitions"].as_array().unwrap().len(),
        4,
        "topic describe shows the new partitions"
    );
    // Sources: 1 = the topic's own, 5 = default.
    assert_eq!(v["before"]["retention.ms"], serde_json::json!(["-1", 5]));
    assert_eq!(v["before"]["min.insync.replicas"][1], 5);
    assert_eq!(
        (v["set"].clone(), v["delete"].clone()),
        (0.into(), 0.into())
    );
    assert_eq!(v["unknown"], 40, "an unknown key is INVALID_CONFIG: {v}");
    assert_eq!(v["out_of_range"], 40, "min.insync.replicas > RF: {v}");
    assert_eq!(v["after"]["retention.ms"], serde_json::json!(["60000", 1]));
    assert_eq!(
        v["after"]["min.insync.replicas"],
        serde_json::json!(["1", 1])
    );
    assert_eq!(v["after"]["segment.bytes"][1], 5, "deleted: default again");
    assert_eq!(v["broker"]["broker.id"][0], "1");
    assert!(v["broker"]["log.segment.bytes"].is_array(), "{v}");
    assert_eq!(
        config(c, "grown", "retention.ms"),
        ("60000".into(), "topic".into())
    );
    assert_eq!(
        config(c, "grown", "min.insync.replicas"),
        ("1".into(), "topic".into())
    );
    // AlterConfigs replaces the whole set: what it does not name is default again.
    let v = run(&[&k.bootstrap(), "whole-set"]);
    assert_eq!(v["whole_set"], 0, "{v}");
    assert_eq!(
        v["replaced"]["retention.bytes"],
        serde_json::json!(["5000000", 1])
    );
    assert_eq!(v["replaced"]["retention.ms"][1], 5, "{v}");
    // topic describe shows the same, with the source.
    assert_eq!(
        config(c, "grown", "retention.bytes"),
        ("5000000".into(), "topic".into())
    );
    assert_eq!(config(c, "grown", "retention.ms").1, "cluster default");
    assert_eq!(
        config(c, "grown", "min.insync.replicas").1,
        "cluster default"
    );
    assert_eq!(config(c, "grown", "segment.bytes").1, "cluster default");
}

/// Sends one request (header v2: these APIs are flexible) and decodes the
/// response.
fn call<Req: Encodable + HeaderVersion, Resp: Decodable + HeaderVersion>(
    s: &mut TcpStream,
    api: ApiKey,
    correlation_id: i32,
    req: &Req,
) -> Resp {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(0)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("t")));
    let mut buf = BytesMut::new();
    header.encode(&mut buf, Req::header_version(0)).unwrap();
    req.encode(&mut buf, 0).unwrap();
    let mut frame = (buf.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&buf);
    s.write_all(&frame).unwrap();
    let mut size = [0u8; 4];
    s.read_exact(&mut size).unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut body).unwrap();
    let mut bytes = bytes::Bytes::from(body);
    let h = kafka_protocol::messages::ResponseHeader::decode(&mut bytes, Resp::header_version(0))
        .unwrap();
    assert_eq!(h.correlation_id, correlation_id);
    Resp::decode(&mut bytes, 0).unwrap()
}

/// AlterPartitionReassignments of partition 0 of `topic`: `replicas`, or
/// `None` to cancel; the partition's error code.
fn alter(s: &mut TcpStream, topic: &str, replicas: Option<&[i32]>) -> i16 {
    let req = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![ReassignableTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_partitions(vec![ReassignablePartition::default()
                .with_partition_index(0)
                .with_replicas(
                    replicas.map(|r| r.iter().map(|b| BrokerId(*b)).collect()),
                )])]);
    let resp: AlterPartitionReassignmentsResponse =
        call(s, ApiKey::AlterPartitionReassignments, 1, &req);
    assert_eq!(resp.error_code, 0);
    resp.responses[0].partitions[0].error_code
}

/// One listed move: (topic, partition, replicas, adding, removing).
type Listed = (String, i32, Vec<i32>, Vec<i32>, Vec<i32>);

/// ListPartitionReassignments of every topic.
fn list(s: &mut TcpStream) -> Vec<Listed> {
    let resp: ListPartitionReassignmentsResponse = call(
        s,
        ApiKey::ListPartitionReassignments,
        2,
        &ListPartitionReassignmentsRequest::default().with_timeout_ms(10_000),
    );
    assert_eq!(resp.error_code, 0);
    let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<i32>>();
    resp.topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.0.to_string(),
                    p.partition_index,
                    ids(&p.replicas),
                    ids(&p.adding_replicas),
                    ids(&p.removing_replicas),
                )
            })
        })
        .collect()
}

fn replicas_of(c: &TestCluster, topic: &str) -> (Vec<u64>, Value) {
    let p = describe(c, topic)["partitions"][0].clone();
    let replicas = p["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_u64().unwrap())
        .collect();
    (replicas, p["reassignment"].clone())
}

/// Event kinds of `topic`'s partition 0 in `cluster events --json`.
fn reassignment_events(c: &TestCluster, topic: &str) -> Vec<String> {
    c.yak_ok(&["cluster", "events", "--json"])
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["topic"] == topic && e["kind"].as_str().unwrap().starts_with("reassign"))
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn given_raw_reassignment_requests_when_moving_listing_and_cancelling_should_show_in_topic_describe_and_events(
) {
    let k = kafka_cluster(3);
    let c = &k.cluster;
    for topic in ["moved", "held"] {
        c.yak_ok(&[
            "topic",
            "create",
            topic,
            "--partitions",
            "1",
            "--replication-factor",
            "2",
        ]);
        let lines: String = (0..300).map(|i| format!("{topic}-{i:0>200}\n")).collect();
        c.yak_stdin_ok(&["produce", "--topic", topic], &lines);
    }
    let mut s = TcpStream::connect(k.bootstrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();

    // A move through Kafka completes, with its events.
    let (before, _) = replicas_of(c, "moved");
    let spare = (1..=3u64).find(|b| !before.contains(b)).unwrap();
    let target = [spare as i32, before[1] as i32];
    assert_eq!(alter(&mut s, "moved", Some(&target)), 0);
    wait_until("the move to complete", Duration::from_secs(20), || {
        let (r, moving) = replicas_of(c, "moved");
        (moving.is_null() && r == [spare, before[1]]).then_some(())
    });
    assert!(list(&mut s).iter().all(|l| l.0 != "moved"));
    assert_eq!(
        reassignment_events(c, "moved"),
        [
            "reassignment_started",
            "reassignment_replica_caught_up",
            "reassignment_completed"
        ]
    );
    assert_eq!(
        alter(&mut s, "moved", Some(&[1, 1])),
        39,
        "duplicate ids: INVALID_REPLICA_ASSIGNMENT"
    );
    assert_eq!(
        alter(&mut s, "moved", None),
        85,
        "nothing to cancel: NO_REASSIGNMENT_IN_PROGRESS"
    );

    // A throttled move stays in progress: listed, then cancelled through Kafka.
    let (held, _) = replicas_of(c, "held");
    let spare = (1..=3u64).find(|b| !held.contains(b)).unwrap();
    let target = format!("{spare},{}", held[1]);
    c.yak_ok(&[
        "topic",
        "reassign",
        "held",
        "--partition",
        "0",
        "--replicas",
        &target,
        "--throttle-bytes-per-sec",
        "1000",
        "--no-wait",
    ]);
    let listed = list(&mut s);
    let replicas_now = vec![spare as i32, held[1] as i32, held[0] as i32];
    assert_eq!(
        listed,
        [(
            "held".to_string(),
            0,
            replicas_now,
            vec![spare as i32],
            vec![held[0] as i32]
        )]
    );
    let (_, moving) = replicas_of(c, "held");
    assert!(
        moving["bytes_total"].as_u64().unwrap() > 60_000,
        "progress in bytes: {moving}"
    );
    assert_eq!(alter(&mut s, "held", None), 0, "cancelled");
    let (r, moving) = replicas_of(c, "held");
    assert_eq!(
        (r, moving),
        (held.clone(), Value::Null),
        "back to the original"
    );
    assert!(list(&mut s).is_empty());
    assert_eq!(
        reassignment_events(c, "held"),
        ["reassignment_started", "reassignment_cancelled"]
    );
    // The new replica's broker drops its copy.
    let copy = c.dir().join(format!("data/broker-{spare}/held-0"));
    wait_until("the cancelled copy to go", Duration::from_secs(10), || {
        (!copy.exists()).then_some(())
    });
    let out = c.yak_ok(&[
        "consume",
        "--topic",
        "held",
        "--from-beginning",
        "--timeout-ms",
        "2000",
    ]);
    assert_eq!(out.lines().count(), 300, "nothing lost");
}
