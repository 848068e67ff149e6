//! KIP-848, Kafka's next-generation consumer protocol, served by YaK's one
//! coordinator: confluent-kafka consumers with `group.protocol=consumer`
//! (ConsumerGroupHeartbeat, Metadata with topic ids, OffsetCommit and
//! OffsetFetch v9), unchanged. The coordinator assigns; members joining
//! and leaving rebalance by revoking first, so a partition is never owned
//! by two members at once. Needs what `make kafka-deps` installs.

#![allow(clippy::unwrap_used)]

#[path = "kafka_support/mod.rs"]
mod kafka_support;

use bytes::BytesMut;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use kafka_support::members::{
    create_topic, describe, produce, settle, split, values, Member, OwnedOf,
};
use kafka_support::{kafka_cluster, KafkaCluster};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A KIP-848 group consumer: prints `owned T P,P` (T: CLOCK_MONOTONIC
/// seconds, shared by every process) whenever its partitions change,
/// `msg P VALUE TOPIC` per message (it subscribes to the comma-separated
/// topics or `^regex`es given), commits what it read before partitions are
/// revoked, and on `close` (stdin) commits, closes and prints `closed`.
/// `YAK_RDKAFKA_DEBUG` passes librdkafka debug contexts (to stderr).
const CONSUMER: &str = r#"
import os, sys, threading, time
from confluent_kafka import Consumer, KafkaException
bs, group, topics = sys.argv[1:4]
conf = {"bootstrap.servers": bs, "group.id": group, "group.protocol": "consumer",
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
        "client.id": "kip848", "topic.metadata.refresh.interval.ms": 1000}
if os.environ.get("YAK_RDKAFKA_DEBUG"):
    conf["debug"] = os.environ["YAK_RDKAFKA_DEBUG"]
c = Consumer(conf)
owned = set()
def show():
    print("owned %.6f %s" % (time.monotonic(), ",".join(str(p) for p in sorted(owned))), flush=True)
def on_assign(c, ps):
    owned.update(p.partition for p in ps); show()
def on_revoke(c, ps):
    try:
        c.commit(asynchronous=False)
    except KafkaException as e:
        print("commit", e, flush=True)
    owned.difference_update(p.partition for p in ps); show()
def on_lost(c, ps):
    owned.difference_update(p.partition for p in ps); show()
c.subscribe(topics.split(","), on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
stop = threading.Event()
def watch():
    for line in sys.stdin:
        if line.strip() == "close":
            break
    stop.set()
threading.Thread(target=watch, daemon=True).start()
while not stop.is_set():
    m = c.poll(0.1)
    if m is None:
        continue
    if m.error():
        print("error", m.error(), flush=True)
        continue
    print("msg", m.partition(), m.value().decode(), m.topic(), flush=True)
try:
    c.commit(asynchronous=False)
except KafkaException as e:
    print("commit", e, flush=True)
c.close()
print("closed", flush=True)
"#;

/// `(time, partitions)` of every `owned` line a member printed, in order.
fn history(lines: &[String]) -> Vec<(f64, BTreeSet<u32>)> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("owned "))
        .map(|l| {
            let (t, ps) = l.split_once(' ').unwrap_or((l, ""));
            let ps = ps
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|p| p.parse().unwrap())
                .collect();
            (t.parse().unwrap(), ps)
        })
        .collect()
}

/// A `group.protocol=consumer` member running [`CONSUMER`]; its ownership
/// is its last `owned` line.
fn start(k: &KafkaCluster, group: &str, topic: &str) -> Member {
    let owned_of: OwnedOf = |seen| history(seen).pop().map(|(_, ps)| ps);
    Member::start(CONSUMER, &[&k.bootstrap(), group, topic], owned_of)
}

/// What a member read.
trait Reads {
    /// Values of every message read.
    fn values(&self) -> Vec<String>;
}

impl Reads for Member {
    fn values(&self) -> Vec<String> {
        self.seen
            .iter()
            .filter_map(|l| l.strip_prefix("msg "))
            .map(|l| l.split(' ').nth(1).unwrap().to_string())
            .collect()
    }
}

/// No partition was owned by two members at once: each member's `owned`
/// lines give intervals per partition; intervals of one partition in
/// different members never overlap.
fn assert_never_owned_twice(histories: &[Vec<(f64, BTreeSet<u32>)>]) {
    let mut intervals: BTreeMap<u32, Vec<(f64, f64, usize)>> = BTreeMap::new();
    for (member, h) in histories.iter().enumerate() {
        let mut since: BTreeMap<u32, f64> = BTreeMap::new();
        for (t, ps) in h {
            for p in ps {
                since.entry(*p).or_insert(*t);
            }
            let gone: Vec<u32> = since.keys().filter(|p| !ps.contains(p)).copied().collect();
            for p in gone {
                let from = since.remove(&p).unwrap();
                intervals.entry(p).or_default().push((from, *t, member));
            }
        }
        for (p, from) in since {
            intervals
                .entry(p)
                .or_default()
                .push((from, f64::MAX, member));
        }
    }
    for (p, mut iv) in intervals {
        iv.sort_by(|a, b| a.0.total_cmp(&b.0));
        for w in iv.windows(2) {
            assert!(
                w[0].2 == w[1].2 || w[0].1 <= w[1].0,
                "partition {p} owned by members {} and {} at once: {w:?}",
                w[0].2,
                w[1].2
            );
        }
    }
}

#[test]
fn given_three_consumer_protocol_members_when_reading_6000_messages_should_split_2_2_2_read_each_once_rebalance_and_resume(
) {
    let k = kafka_cluster(1);
    create_topic(&k, "kt", 6);
    let mut a = start(&k, "k1", "kt");
    let mut b = start(&k, "k1", "kt");
    let mut c = start(&k, "k1", "kt");
    settle(&mut [&mut a, &mut b, &mut c], 20, "a 2/2/2 split", |m| {
        split(m, &[2, 2, 2], 6)
    });
    let d = describe(&k, "k1");
    assert_eq!(d["members"].as_array().unwrap().len(), 3, "{d}");
    assert_eq!(d["assignor"], "consumer:uniform", "a KIP-848 group: {d}");
    assert!(
        d["members"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["partitions"].as_array().unwrap().len() == 2),
        "describe shows the split: {d}"
    );
    produce(&k, "kt", 0, 6000);
    settle(
        &mut [&mut a, &mut b, &mut c],
        30,
        "6000 messages read",
        |m| m.iter().map(|m| m.values().len()).sum::<usize>() >= 6000,
    );
    // One leaves: the other two take its partitions.
    let c_lines = c.close();
    settle(
        &mut [&mut a, &mut b],
        20,
        "a 3/3 split after a leave",
        |m| split(m, &[3, 3], 6),
    );
    produce(&k, "kt", 6000, 6600);
    settle(&mut [&mut a, &mut b], 30, "600 more read", |m| {
        m.iter().map(|m| m.values().len()).sum::<usize>()
            >= 6600 - c_lines.iter().filter(|l| l.starts_with("msg ")).count()
    });
    std::thread::sleep(Duration::from_millis(300));
    let (a_lines, b_lines) = (a.close(), b.close());
    let all: Vec<&str> = [&a_lines, &b_lines, &c_lines]
        .iter()
        .flat_map(|ls| ls.iter().filter_map(|l| l.strip_prefix("msg ")))
        .map(|l| l.split(' ').nth(1).unwrap())
        .collect();
    assert_eq!(all.len(), 6600, "no message read twice");
    assert_eq!(
        all.iter().map(|v| v.to_string()).collect::<BTreeSet<_>>(),
        values(0..6600)
    );
    assert_never_owned_twice(&[history(&a_lines), history(&b_lines), history(&c_lines)]);
    let d = describe(&k, "k1");
    let committed: u64 = d["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["committed_offset"].as_u64().unwrap())
        .sum();
    assert_eq!((committed, d["total_lag"].as_u64()), (6600, Some(0)), "{d}");
    // A restarted member reads only what was produced after the commits.
    produce(&k, "kt", 6600, 7000);
    let mut again = start(&k, "k1", "kt");
    settle(&mut [&mut again], 20, "400 new messages read", |m| {
        m[0].values().len() >= 400
    });
    std::thread::sleep(Duration::from_millis(300));
    again.drain();
    let got = again.values();
    assert_eq!(got.len(), 400);
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), values(6600..7000));
    again.close();
}

#[test]
fn given_a_member_killed_when_its_session_expires_should_give_its_partitions_to_the_others() {
    let k = kafka_cluster(1);
    create_topic(&k, "kk", 6);
    let mut a = start(&k, "k2", "kk");
    let mut b = start(&k, "k2", "kk");
    let mut c = start(&k, "k2", "kk");
    settle(&mut [&mut a, &mut b, &mut c], 20, "a 2/2/2 split", |m| {
        split(m, &[2, 2, 2], 6)
    });
    produce(&k, "kk", 0, 3000);
    settle(&mut [&mut a, &mut b, &mut c], 30, "3000 read", |m| {
        m.iter().map(|m| m.values().len()).sum::<usize>() >= 3000
    });
    c.child.kill().unwrap();
    c.child.wait().unwrap();
    c.drain();
    let killed = c.values();
    produce(&k, "kk", 3000, 4000);
    // Its session (ZooKeeper's default, 3 s) expires; the others split 3/3.
    settle(
        &mut [&mut a, &mut b],
        20,
        "a 3/3 split after kill -9",
        |m| split(m, &[3, 3], 6),
    );
    settle(&mut [&mut a, &mut b], 30, "every message read", |m| {
        let read: BTreeSet<String> = m
            .iter()
            .flat_map(|m| m.values())
            .chain(killed.iter().cloned())
            .collect();
        read == values(0..4000)
    });
    let d = describe(&k, "k2");
    assert_eq!(d["members"].as_array().unwrap().len(), 2, "{d}");
    a.close();
    b.close();
}

/// Sends `req` at `version` on `s` and decodes the answer.
fn call<Req: Encodable + HeaderVersion, Resp: Decodable + HeaderVersion>(
    s: &mut TcpStream,
    api: ApiKey,
    version: i16,
    req: &Req,
) -> Resp {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("t")));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, Req::header_version(version))
        .unwrap();
    req.encode(&mut buf, version).unwrap();
    let mut frame = (buf.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&buf);
    s.write_all(&frame).unwrap();
    let mut size = [0u8; 4];
    s.read_exact(&mut size).unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut body).unwrap();
    let mut bytes = bytes::Bytes::from(body);
    let h = ResponseHeader::decode(&mut bytes, Resp::header_version(version)).unwrap();
    assert_eq!(h.correlation_id, 7);
    Resp::decode(&mut bytes, version).unwrap()
}

/// Metadata v12 for `topics`.
fn metadata(k: &KafkaCluster, topics: Vec<MetadataRequestTopic>) -> MetadataResponse {
    let mut s = TcpStream::connect(k.bootstrap()).unwrap();
    let req = MetadataRequest::default().with_topics(Some(topics));
    call(&mut s, ApiKey::Metadata, 12, &req)
}

/// A Metadata request topic named by name.
fn named(name: &str) -> MetadataRequestTopic {
    MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(name.into()))))
}

#[test]
fn given_topic_ids_and_a_regex_subscription_when_consuming_should_resolve_ids_and_read_matching_topics_only(
) {
    let k = kafka_cluster(1);
    for t in ["ra", "rb", "other"] {
        create_topic(&k, t, 2);
    }
    let by_name = metadata(&k, vec![named("ra")]);
    let ra = by_name.topics[0].topic_id;
    assert!(!ra.is_nil(), "Metadata v12 carries topic ids");
    let by_id = metadata(&k, vec![MetadataRequestTopic::default().with_topic_id(ra)]);
    assert_eq!(
        (
            by_id.topics[0].error_code,
            by_id.topics[0].name.as_ref().map(|n| n.0.as_str())
        ),
        (0, Some("ra")),
        "a topic named by id"
    );
    assert_eq!(by_id.topics[0].partitions.len(), 2);
    k.cluster.yak_ok(&["topic", "delete", "ra"]);
    create_topic(&k, "ra", 2);
    let again = metadata(
        &k,
        vec![
            named("ra"),
            MetadataRequestTopic::default().with_topic_id(ra),
        ],
    );
    let fresh = again.topics.iter().find(|t| t.name.is_some()).unwrap();
    assert_ne!(fresh.topic_id, ra, "a re-created topic has a new id");
    let gone = again.topics.iter().find(|t| t.name.is_none()).unwrap();
    assert_eq!(
        (gone.topic_id, gone.error_code),
        (ra, 100),
        "UNKNOWN_TOPIC_ID"
    );

    for t in ["ra", "rb", "other"] {
        let input: String = (0..50).map(|i| format!("{t}-{i}\n")).collect();
        k.cluster.yak_stdin_ok(&["produce", "--topic", t], &input);
    }
    let mut m = start(&k, "k3", "^r.*");
    settle(&mut [&mut m], 20, "100 messages of ra and rb", |m| {
        m[0].values().len() >= 100
    });
    std::thread::sleep(Duration::from_millis(500));
    m.drain();
    let topics: BTreeSet<String> = m
        .seen
        .iter()
        .filter_map(|l| l.strip_prefix("msg "))
        .map(|l| l.split(' ').nth(2).unwrap().to_string())
        .collect();
    assert_eq!(topics, ["ra".to_string(), "rb".to_string()].into());
    assert_eq!(m.values().len(), 100, "nothing of 'other'");
    let d = describe(&k, "k3");
    assert_eq!(
        d["members"][0]["topics"],
        serde_json::json!(["ra", "rb"]),
        "the regex resolved on the coordinator: {d}"
    );
    m.close();
}
