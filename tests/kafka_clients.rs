//! Unmodified Kafka clients moving data through YaK: kcat with keys and
//! every compression codec, YaK's own produce and consume on the other end,
//! `acks=0`, and a confluent-kafka idempotent producer (acks=all) through a
//! kill -9 of the partition leader, read back with `Consumer.assign` and a
//! seek. Needs what `make kafka-deps` installs.

#![allow(clippy::unwrap_used)]

#[path = "kafka_support/mod.rs"]
mod kafka_support;

use kafka_support::{kafka_cluster, kcat, python, wait_bounded};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::time::Duration;

/// `key:value` lines kcat prints for the whole topic.
fn kcat_read(bootstrap: &str, topic: &str) -> Vec<String> {
    let out = kcat(
        &[
            "-b", bootstrap, "-C", "-t", topic, "-e", "-q", "-f", "%k:%s\\n",
        ],
        None,
    );
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn given_kcat_and_yak_clients_when_producing_with_keys_and_every_codec_should_read_back_exactly_on_both_sides(
) {
    let k = kafka_cluster(3);
    let c = &k.cluster;
    c.yak_ok(&[
        "topic",
        "create",
        "kc",
        "--partitions",
        "1",
        "--replication-factor",
        "3",
    ]);
    let mut expected = Vec::new();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let lines: Vec<String> = (0..50)
            .map(|i| format!("{codec}-{i}:value {i} of {codec}"))
            .collect();
        let input = lines.join("\n") + "\n";
        kcat(
            &[
                "-b",
                &k.bootstrap(),
                "-P",
                "-t",
                "kc",
                "-K:",
                "-z",
                codec,
                "-X",
                "acks=all",
            ],
            Some(input.as_bytes()),
        );
        expected.extend(lines);
    }
    assert_eq!(
        kcat_read(&k.bootstrap(), "kc"),
        expected,
        "kcat reads what kcat wrote"
    );
    // YaK's own consumer reads what kcat wrote, keys included.
    let out = c.yak_ok(&[
        "consume",
        "--topic",
        "kc",
        "--from-beginning",
        "--format",
        "json",
        "--max-messages",
        &expected.len().to_string(),
    ]);
    let yak: Vec<String> = out
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            format!(
                "{}:{}",
                v["key"].as_str().unwrap(),
                v["value"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(yak, expected, "YaK consume reads what kcat wrote");
    // kcat reads what YaK's producer wrote.
    c.yak_ok(&[
        "topic",
        "create",
        "yk",
        "--partitions",
        "1",
        "--replication-factor",
        "3",
    ]);
    let lines: Vec<String> = (0..100)
        .map(|i| format!("key{}:from yak {i}", i % 7))
        .collect();
    c.yak_stdin_ok(
        &[
            "produce",
            "--topic",
            "yk",
            "--key-separator",
            ":",
            "--compression",
            "zstd",
        ],
        &(lines.join("\n") + "\n"),
    );
    assert_eq!(
        kcat_read(&k.bootstrap(), "yk"),
        lines,
        "kcat reads what YaK wrote"
    );
    // acks=0 gets no response, and the data still lands.
    c.yak_ok(&[
        "topic",
        "create",
        "a0",
        "--partitions",
        "1",
        "--replication-factor",
        "1",
    ]);
    kcat(
        &["-b", &k.bootstrap(), "-P", "-t", "a0", "-X", "acks=0"],
        Some(b"fire\nand\nforget\n"),
    );
    kafka_support::eventually("acks=0 messages readable", || {
        let got = kcat(
            &[
                "-b",
                &k.bootstrap(),
                "-C",
                "-t",
                "a0",
                "-e",
                "-q",
                "-f",
                "%s\\n",
            ],
            None,
        );
        (got == b"fire\nand\nforget\n").then_some(())
    });
}

#[test]
fn given_idempotent_producer_when_the_leader_is_killed_mid_stream_should_deliver_every_message_once(
) {
    let k = kafka_cluster(3);
    let c = &k.cluster;
    c.yak_ok(&[
        "topic",
        "create",
        "fo",
        "--partitions",
        "1",
        "--replication-factor",
        "3",
    ]);
    let script = r#"
import sys, time
from confluent_kafka import Producer, Consumer, TopicPartition
bs, n = sys.argv[1], int(sys.argv[2])
p = Producer({"bootstrap.servers": bs, "enable.idempotence": True, "acks": "all",
              "linger.ms": 5, "message.timeout.ms": 60000})
acked, failed = [0], []
def cb(err, msg):
    if err: failed.append(str(err))
    else: acked[0] += 1
for i in range(n):
    while True:
        try:
            p.produce("fo", key=b"%d" % (i % 10), value=b"m%07d" % i, on_delivery=cb); break
        except BufferError:
            p.poll(0.05)
    p.poll(0)
    if i == n // 4:
        print("quarter", flush=True)
p.flush(90)
print("acked", acked[0], "failed", len(failed), failed[:3], flush=True)
c = Consumer({"bootstrap.servers": bs, "group.id": "unused", "enable.auto.commit": False})
# Seek by offset: start half way, then read from the start.
c.assign([TopicPartition("fo", 0, n // 2)])
m = None
while m is None or m.error():
    m = c.poll(1.0)
print("seeked", m.offset(), m.value().decode(), flush=True)
c.assign([TopicPartition("fo", 0, 0)])
seen, idle = {}, time.time()
while time.time() - idle < 3:
    m = c.poll(0.5)
    if m is None or m.error():
        continue
    idle = time.time()
    seen[m.value()] = seen.get(m.value(), 0) + 1
print("read", len(seen), "dups", sum(v - 1 for v in seen.values()), flush=True)
"#;
    let n = 200_000;
    let mut child = python(script, &[&k.bootstrap(), &n.to_string()]);
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "quarter", "the producer started");
    let status = c.status_json();
    let leader = status["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["topic"] == "fo")
        .unwrap()["leader"]
        .as_u64()
        .unwrap();
    let pid = status["brokers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"].as_u64() == Some(leader))
        .unwrap()["pid"]
        .as_i64()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let out = wait_bounded(child, Duration::from_secs(120), "python");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let fields: BTreeMap<&str, &str> = rest.lines().filter_map(|l| l.split_once(' ')).collect();
    assert_eq!(
        fields.get("acked").copied(),
        Some(format!("{n} failed 0 []").as_str()),
        "every delivery report succeeds: {rest} {stderr}"
    );
    assert_eq!(
        fields.get("seeked").copied(),
        Some(format!("{} m{:07}", n / 2, n / 2).as_str()),
        "assign at an offset starts there: {rest}"
    );
    assert_eq!(
        fields.get("read").copied(),
        Some(format!("{n} dups 0").as_str()),
        "every message once: {rest} {stderr}"
    );
}
