//! Producer epochs and leader epochs through the Kafka front door: raw
//! InitProducerId bumps and produces with old and new epochs, and a
//! confluent-kafka idempotent producer that bumps its own epoch after a
//! message fails for good. Needs the confluent-kafka virtualenv that
//! `make kafka-deps` installs.

#![allow(clippy::unwrap_used)]

#[path = "kafka_support/mod.rs"]
mod kafka_support;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, InitProducerIdRequest, InitProducerIdResponse,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, ProduceRequest, ProduceResponse,
    ProducerId, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use kafka_support::{kafka_cluster, kafka_cluster_with, python, wait_bounded};
use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use yak::protocol::batch::{BatchBuilder, NewRecord};

const INVALID_PRODUCER_EPOCH: i16 = 47;
const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const FENCED_LEADER_EPOCH: i16 = 74;
const UNKNOWN_LEADER_EPOCH: i16 = 76;

/// One Kafka connection speaking whole requests through `kafka-protocol`.
struct Raw {
    stream: TcpStream,
    next_id: i32,
}

impl Raw {
    fn connect(address: &str) -> Raw {
        let stream = TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        Raw { stream, next_id: 1 }
    }

    fn call<Req, Resp>(&mut self, api: ApiKey, version: i16, req: &Req) -> Resp
    where
        Req: Encodable + HeaderVersion,
        Resp: Decodable + HeaderVersion,
    {
        let id = self.next_id;
        self.next_id += 1;
        let mut buf = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(id)
            .with_client_id(Some(StrBytes::from_static_str("epochs")))
            .encode(&mut buf, Req::header_version(version))
            .unwrap();
        req.encode(&mut buf, version).unwrap();
        let mut frame = (buf.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&buf);
        self.stream.write_all(&frame).unwrap();
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).unwrap();
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut body).unwrap();
        let mut body = Bytes::from(body);
        let header = ResponseHeader::decode(&mut body, Resp::header_version(version)).unwrap();
        assert_eq!(header.correlation_id, id, "responses in request order");
        Resp::decode(&mut body, version).unwrap()
    }

    /// InitProducerId v4: `(id, epoch)` asked for, `(error, id, epoch)` answered.
    fn init_producer_id(&mut self, producer_id: i64, epoch: i16) -> (i16, i64, i16) {
        let req = InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(-1)
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch);
        let r: InitProducerIdResponse = self.call(ApiKey::InitProducerId, 4, &req);
        (r.error_code, r.producer_id.0, r.producer_epoch)
    }

    /// Produce v7 (acks=all) of one record; the partition's error code.
    fn produce(&mut self, topic: &str, producer: (i64, i16), base_sequence: i32) -> i16 {
        let mut b = BatchBuilder::new(producer.0, producer.1, base_sequence, 64);
        b.push(NewRecord {
            key: None,
            value: format!("e{}s{base_sequence}", producer.1).as_bytes(),
            timestamp_ms: 0,
        });
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.into())))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(Bytes::from(b.finish())))])]);
        let r: ProduceResponse = self.call(ApiKey::Produce, 7, &req);
        r.responses[0].partition_responses[0].error_code
    }

    /// Fetch v11 of partition 0 from `offset`: the stored batches.
    fn fetch(&mut self, topic: &str, offset: i64) -> Bytes {
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(100)
            .with_max_bytes(8 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.into())))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_current_leader_epoch(-1)
                    .with_fetch_offset(offset)
                    .with_log_start_offset(-1)
                    .with_partition_max_bytes(8 << 20)])]);
        let r: FetchResponse = self.call(ApiKey::Fetch, 11, &req);
        let p = &r.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "fetch of {topic}");
        p.records.clone().unwrap_or_default()
    }
}

impl Raw {
    /// OffsetForLeaderEpoch v2 of partition 0: `(error, epoch, end offset)`.
    fn epoch_end(&mut self, topic: &str, current: i32, epoch: i32) -> (i16, i32, i64) {
        let req = OffsetForLeaderEpochRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![OffsetForLeaderTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.into())))
                .with_partitions(vec![OffsetForLeaderPartition::default()
                    .with_partition(0)
                    .with_current_leader_epoch(current)
                    .with_leader_epoch(epoch)])]);
        let r: OffsetForLeaderEpochResponse = self.call(ApiKey::OffsetForLeaderEpoch, 2, &req);
        let p = &r.topics[0].partitions[0];
        (p.error_code, p.leader_epoch, p.end_offset)
    }
}

/// Each stored batch's (producer id, producer epoch, base sequence, records).
fn batch_producers(mut bytes: &[u8]) -> Vec<(i64, i16, i32, u32)> {
    let mut out = Vec::new();
    while bytes.len() >= 61 {
        let len = i32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize + 12;
        if len > bytes.len() {
            break;
        }
        out.push((
            i64::from_be_bytes(bytes[43..51].try_into().unwrap()),
            i16::from_be_bytes(bytes[51..53].try_into().unwrap()),
            i32::from_be_bytes(bytes[53..57].try_into().unwrap()),
            u32::from_be_bytes(bytes[57..61].try_into().unwrap()),
        ));
        bytes = &bytes[len..];
    }
    out
}

#[test]
fn given_a_bumped_producer_epoch_when_producing_should_restart_sequences_and_fence_the_old_epoch() {
    let k = kafka_cluster(1);
    k.cluster.yak_ok(&[
        "topic",
        "create",
        "ep",
        "--partitions",
        "1",
        "--replication-factor",
        "1",
    ]);
    let mut raw = Raw::connect(&k.bootstrap());
    let (err, pid, epoch) = raw.init_producer_id(-1, -1);
    assert_eq!((err, epoch), (0, 0), "a fresh id starts at epoch 0");
    assert!(pid >= 0);
    assert_eq!(raw.produce("ep", (pid, 0), 0), 0);
    assert_eq!(raw.produce("ep", (pid, 0), 1), 0);

    assert_eq!(
        raw.init_producer_id(pid, 0),
        (0, pid, 1),
        "KIP-360: the same id, the next epoch"
    );
    assert_eq!(
        raw.init_producer_id(pid, 0),
        (0, pid, 1),
        "a retried bump gets the same answer"
    );
    assert_eq!(
        raw.produce("ep", (pid, 1), 2),
        OUT_OF_ORDER_SEQUENCE_NUMBER,
        "a new epoch starts at sequence 0"
    );
    assert_eq!(raw.produce("ep", (pid, 1), 0), 0);
    assert_eq!(
        raw.produce("ep", (pid, 0), 2),
        INVALID_PRODUCER_EPOCH,
        "the old epoch is fenced"
    );
    assert_eq!(raw.init_producer_id(pid, 1), (0, pid, 2));
    assert_eq!(
        raw.init_producer_id(pid, 0).0,
        INVALID_PRODUCER_EPOCH,
        "a stale bump is refused"
    );
    let (err, fresh, epoch) = raw.init_producer_id(pid + 1000, 0);
    assert_eq!(
        (err, epoch),
        (0, 0),
        "an id never handed out gets a fresh one"
    );
    assert!(fresh > pid);

    let stored: Vec<(i64, i16, i32)> = batch_producers(&raw.fetch("ep", 0))
        .into_iter()
        .map(|(id, epoch, seq, _)| (id, epoch, seq))
        .collect();
    assert_eq!(
        stored,
        [(pid, 0, 0), (pid, 0, 1), (pid, 1, 0)],
        "the log holds exactly the accepted batches, with their epochs"
    );
}

#[test]
fn given_confluent_idempotent_producer_when_a_message_fails_for_good_should_bump_its_epoch_and_deliver_the_rest_once(
) {
    let k = kafka_cluster(1);
    k.cluster.yak_ok(&[
        "topic",
        "create",
        "bump",
        "--partitions",
        "1",
        "--replication-factor",
        "1",
    ]);
    // A message over the broker's batch limit fails for good: librdkafka's
    // idempotent producer then bumps its epoch to close the sequence gap.
    let script = r#"
import sys
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": sys.argv[1], "enable.idempotence": True, "acks": "all",
              "message.max.bytes": 20000000, "linger.ms": 5, "message.timeout.ms": 30000})
acked, failed = [0], []
def cb(err, msg):
    if err: failed.append(err.name())
    else: acked[0] += 1
for i in range(100):
    p.produce("bump", value=b"a%03d" % i, on_delivery=cb)
p.flush(20)
p.produce("bump", value=b"x" * (9 << 20), on_delivery=cb)
p.flush(20)
for i in range(100):
    p.produce("bump", value=b"b%03d" % i, on_delivery=cb)
p.flush(20)
print("acked", acked[0], "failed", ",".join(failed), flush=True)
"#;
    let child = python(script, &[&k.bootstrap()]);
    let out = wait_bounded(child, Duration::from_secs(60), "python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stdout.trim(),
        "acked 200 failed MSG_SIZE_TOO_LARGE",
        "every small message delivered, the large one refused: {stderr}"
    );

    let mut raw = Raw::connect(&k.bootstrap());
    let batches = batch_producers(&raw.fetch("bump", 0));
    let records: u32 = batches.iter().map(|b| b.3).sum();
    assert_eq!(records, 200, "every message once: {batches:?}");
    let pid = batches[0].0;
    assert!(
        batches.iter().all(|b| b.0 == pid),
        "one producer id throughout: {batches:?}"
    );
    let epochs: Vec<i16> = batches.iter().map(|b| b.1).collect();
    let bump = epochs.iter().position(|e| *e == 1).unwrap_or_else(|| {
        panic!("the producer bumped its epoch to 1: {batches:?}");
    });
    assert!(
        epochs[..bump].iter().all(|e| *e == 0) && epochs[bump..].iter().all(|e| *e == 1),
        "epoch 0 before the failure, 1 after: {batches:?}"
    );
    assert_eq!(batches[bump].2, 0, "the new epoch starts at sequence 0");
}

/// `(leader, leader epoch)` of `topic`-0 as `cluster status` shows it.
fn leader_of(k: &kafka_support::KafkaCluster, topic: &str) -> (u32, i32) {
    let status = k.cluster.status_json();
    let p = status["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["topic"] == topic)
        .unwrap()
        .clone();
    (
        p["leader"].as_u64().unwrap_or(0) as u32,
        p["leader_epoch"].as_i64().unwrap() as i32,
    )
}

#[test]
fn given_confluent_consumer_when_the_leader_is_killed_mid_read_should_validate_its_position_and_read_every_message_once(
) {
    let k = kafka_cluster_with(3, |b| b.zookeeper("leader_rebalance_interval_ms", "0"));
    let c = &k.cluster;
    c.yak_ok(&[
        "topic",
        "create",
        "lc",
        "--partitions",
        "1",
        "--replication-factor",
        "3",
    ]);
    let produce = |from: u32, n: u32| {
        let lines: String = (from..from + n).map(|i| format!("m{i:06}\n")).collect();
        c.yak_stdin_ok(&["produce", "--topic", "lc", "--acks", "all"], &lines);
    };
    let first = 20_000;
    produce(0, first);
    // The consumer reads half, waits for "go", then reads to the end; it
    // logs librdkafka's fetch debug lines, where position validation shows.
    let script = r#"
import sys, time
from confluent_kafka import Consumer, TopicPartition
bs, total = sys.argv[1], int(sys.argv[2])
c = Consumer({"bootstrap.servers": bs, "group.id": "unused", "enable.auto.commit": False,
              "debug": "fetch", "topic.metadata.refresh.interval.ms": 500})
c.assign([TopicPartition("lc", 0, 0)])
values, told = [], False
deadline = time.time() + 60
while len(values) < total and time.time() < deadline:
    m = c.poll(0.2)
    if m is not None and not m.error():
        values.append(m.value().decode())
    if len(values) >= 10000 and not told:
        told = True
        print("half", flush=True)
        sys.stdin.readline()
time.sleep(1)
m = c.poll(0.5)
extra = 0 if m is None or m.error() else 1
expected = ["m%06d" % i for i in range(total)]
print("read", len(values), "in_order", values == expected, "extra", extra, flush=True)
"#;
    let second = 5_000;
    let total = first + second;
    let mut child = python(script, &[&k.bootstrap(), &total.to_string()]);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "half", "the consumer read half");

    let (old_leader, old_epoch) = leader_of(&k, "lc");
    let pid = c.status_json()["brokers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"].as_u64() == Some(u64::from(old_leader)))
        .unwrap()["pid"]
        .as_i64()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let (leader, epoch) = kafka_support::eventually("a new leader", || {
        let (l, e) = leader_of(&k, "lc");
        (l != old_leader && l != 0 && e > old_epoch).then_some((l, e))
    });
    // Records of the new epoch: epoch `old_epoch` now ends at `first`.
    produce(first, second);
    let mut raw = Raw::connect(&format!("127.0.0.1:{}", k.port(leader)));
    assert_eq!(
        raw.epoch_end("lc", epoch, old_epoch),
        (0, old_epoch, i64::from(first)),
        "the old epoch ends where the new leader's first record is"
    );
    assert_eq!(
        raw.epoch_end("lc", epoch, epoch),
        (0, epoch, i64::from(total)),
        "the current epoch ends at the log end"
    );
    assert_eq!(
        raw.epoch_end("lc", old_epoch, old_epoch).0,
        FENCED_LEADER_EPOCH
    );
    assert_eq!(
        raw.epoch_end("lc", epoch + 1, epoch).0,
        UNKNOWN_LEADER_EPOCH
    );

    writeln!(stdin, "go").unwrap();
    drop(stdin);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let out = wait_bounded(child, Duration::from_secs(90), "python");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        rest.trim(),
        format!("read {total} in_order True extra 0"),
        "every message once, in order, across the failover"
    );
    assert!(
        stderr.contains("offset and epoch validation succeeded"),
        "the consumer validated its position with OffsetForLeaderEpoch: {}",
        stderr
            .lines()
            .filter(|l| l.contains("VALID") || l.contains("epoch"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
