//! Finding records by time: confluent-kafka's `offsets_for_times` (Kafka's
//! ListOffsets by timestamp) against records produced with explicit,
//! partly out-of-order timestamps over several small segments, a seek by
//! timestamp and one by offset, kcat's `-o s@T`; all again after a kill -9
//! of the broker with its time index files deleted (rebuilt at start-up).
//! And YaK's own `consume --from-timestamp`. Needs what `make kafka-deps`
//! installs.

#![allow(clippy::unwrap_used)]

#[path = "kafka_support/mod.rs"]
mod kafka_support;

use kafka_support::{eventually, kafka_cluster_with, kcat, python, wait_bounded};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Messages produced.
const N: i64 = 400;
/// Timestamp of message 0.
const BASE_MS: i64 = 1_700_000_000_000;

/// Message i's timestamp: 10 ms apart, every fifth one 100 ms late.
fn ts(i: i64) -> i64 {
    BASE_MS + 10 * i - if i % 5 == 0 { 100 } else { 0 }
}

/// Kafka's answer for `t`: the first message whose timestamp is at least it.
fn expected(t: i64) -> Option<i64> {
    (0..N).find(|&i| ts(i) >= t)
}

/// Produces (when `produce`), then checks `offsets_for_times` at every
/// message's timestamp and one either side, a seek by timestamp and one by
/// offset; prints `bad <json list>`, `seek_ts <offset> <value> <timestamp>`,
/// `seek_offset <offset> <value>` and `timestamps_ok <bool>`.
const SCRIPT: &str = r#"
import sys, json
from confluent_kafka import Producer, Consumer, TopicPartition
bs, topic, n, base, produce = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
def ts(i): return base + 10 * i - (100 if i % 5 == 0 else 0)
if produce:
    p = Producer({"bootstrap.servers": bs, "linger.ms": 20, "acks": "all", "batch.num.messages": 7})
    for i in range(n):
        p.produce(topic, value=b"m%05d" % i, timestamp=ts(i))
    assert p.flush(30) == 0
def expected(t):
    return next((i for i in range(n) if ts(i) >= t), -1)
c = Consumer({"bootstrap.servers": bs, "group.id": "unused", "enable.auto.commit": False})
probes = sorted({t for i in range(n) for t in (ts(i) - 1, ts(i), ts(i) + 1)} | {0, base + 10 * n + 1})
bad = []
for t in probes:
    got = c.offsets_for_times([TopicPartition(topic, 0, t)], timeout=10)[0]
    if got.error is not None or got.offset != expected(t):
        bad.append([t, got.offset, expected(t), str(got.error)])
print("bad", json.dumps(bad[:5]), flush=True)
def first(offset):
    c.assign([TopicPartition(topic, 0, offset)])
    m = None
    while m is None or m.error():
        m = c.poll(1.0)
    return m
t = ts(123) + 1
found = c.offsets_for_times([TopicPartition(topic, 0, t)], timeout=10)[0].offset
m = first(found)
print("seek_ts", m.offset(), m.value().decode(), m.timestamp()[1], flush=True)
m = first(321)
print("seek_offset", m.offset(), m.value().decode(), flush=True)
c.assign([TopicPartition(topic, 0, 0)])
got = {}
while len(got) < n:
    m = c.poll(1.0)
    if m is not None and not m.error():
        got[m.offset()] = m.timestamp()[1]
print("timestamps_ok", all(got[i] == ts(i) for i in range(n)), flush=True)
"#;

/// Runs [`SCRIPT`] and checks what it printed.
fn check_lookups(bootstrap: &str, topic: &str, produce: bool, what: &str) {
    let flag = if produce { "1" } else { "0" };
    let child = python(
        SCRIPT,
        &[bootstrap, topic, &N.to_string(), &BASE_MS.to_string(), flag],
    );
    let out = wait_bounded(child, Duration::from_secs(60), "python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{what}: script failed: {stdout} {stderr}"
    );
    let line = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key).map(str::trim))
            .unwrap_or_else(|| panic!("{what}: no `{key}` in {stdout} {stderr}"))
            .to_string()
    };
    assert_eq!(
        line("bad"),
        "[]",
        "{what}: offsets_for_times (t, got, expected)"
    );
    let t = ts(123) + 1;
    let i = expected(t).unwrap();
    assert_eq!(
        line("seek_ts"),
        format!("{i} m{i:05} {}", ts(i)),
        "{what}: a seek by timestamp starts at the first message that new"
    );
    assert_eq!(
        line("seek_offset"),
        "321 m00321",
        "{what}: a seek by offset"
    );
    assert_eq!(line("timestamps_ok"), "True", "{what}: timestamps kept");
}

/// `offset timestamp` of the first message kcat reads from `-o s@t`.
fn kcat_from_timestamp(bootstrap: &str, topic: &str, t: i64) -> String {
    let offset = format!("s@{t}");
    let out = kcat(
        &[
            "-b", bootstrap, "-C", "-t", topic, "-p", "0", "-o", &offset, "-c", "1", "-e", "-q",
            "-f", "%o %T\\n",
        ],
        None,
    );
    String::from_utf8(out).unwrap().trim().to_string()
}

/// The time index files of `topic`-0 on broker 1.
fn time_indexes(dir: &std::path::Path, topic: &str) -> Vec<std::path::PathBuf> {
    let dir = dir.join("data").join("broker-1").join(format!("{topic}-0"));
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "timeindex"))
        .collect();
    v.sort();
    v
}

#[test]
fn given_out_of_order_timestamps_when_listing_offsets_by_time_should_find_first_record_reaching_each_also_after_kill_and_rebuild(
) {
    let k = kafka_cluster_with(1, |b| {
        b.broker("segment_bytes", "4096")
            .broker("index_interval_bytes", "256")
    });
    let c = &k.cluster;
    c.yak_ok(&[
        "topic",
        "create",
        "tt",
        "--partitions",
        "1",
        "--replication-factor",
        "1",
    ]);
    check_lookups(&k.bootstrap(), "tt", true, "fresh");
    let indexes = time_indexes(c.dir(), "tt");
    assert!(indexes.len() > 2, "several segments: {indexes:?}");
    for t in [ts(0) - 5, ts(57), ts(200) + 3] {
        let i = expected(t).unwrap();
        assert_eq!(
            kcat_from_timestamp(&k.bootstrap(), "tt", t),
            format!("{i} {}", ts(i))
        );
    }
    // A kill -9 with the time indexes gone: the broker rebuilds them.
    for p in &indexes {
        std::fs::remove_file(p).unwrap();
    }
    let status = c.status_json();
    let pid = status["brokers"][0]["pid"].as_i64().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually("the broker restarted and leads again", || {
        let s = c.try_status_json()?;
        let restarted = s["brokers"][0]["pid"].as_i64().is_some_and(|p| p != pid);
        let led = s["partitions"][0]["leader"].as_u64() == Some(1);
        (restarted && led && time_indexes(c.dir(), "tt").len() == indexes.len()).then_some(())
    });
    check_lookups(&k.bootstrap(), "tt", false, "after kill -9 and rebuild");
}

#[test]
fn given_messages_before_and_after_a_moment_when_consuming_from_that_timestamp_should_print_only_the_later_ones(
) {
    let k = kafka_cluster_with(1, |b| b);
    let c = &k.cluster;
    c.yak_ok(&[
        "topic",
        "create",
        "nt",
        "--partitions",
        "2",
        "--replication-factor",
        "1",
    ]);
    let now_ms = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    c.yak_stdin_ok(&["produce", "--topic", "nt"], "old-1\nold-2\nold-3\n");
    std::thread::sleep(Duration::from_millis(50));
    let moment = now_ms();
    std::thread::sleep(Duration::from_millis(50));
    c.yak_stdin_ok(&["produce", "--topic", "nt"], "new-1\nnew-2\n");
    let from = moment.to_string();
    let out = c.yak_ok(&[
        "consume",
        "--topic",
        "nt",
        "--from-timestamp",
        &from,
        "--max-messages",
        "2",
        "--timeout-ms",
        "3000",
    ]);
    let mut got: Vec<&str> = out.lines().collect();
    got.sort_unstable();
    assert_eq!(got, ["new-1", "new-2"]);
    // Past every message: nothing printed, from the end.
    let later = (now_ms() + 60_000).to_string();
    let out = c.yak_ok(&[
        "consume",
        "--topic",
        "nt",
        "--from-timestamp",
        &later,
        "--timeout-ms",
        "500",
    ]);
    assert_eq!(out, "");
}

/// Creates a LogAppendTime topic and a topic with a bad setting through
/// AdminClient, produces with an old timestamp and reads back; prints
/// `bad_config <code>`, `delivered <type> <ms>`, `read <type> <ms>` and
/// `window <start> <end>`.
const LOG_APPEND_SCRIPT: &str = r#"
import sys, time
from confluent_kafka import Producer, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
bs = sys.argv[1]
a = AdminClient({"bootstrap.servers": bs})
f = a.create_topics([NewTopic("lat", 1, 1, config={"message.timestamp.type": "LogAppendTime"})])
f["lat"].result(15)
bad = a.create_topics([NewTopic("badcfg", 1, 1, config={"min.insync.replicas": "2"})])
try:
    bad["badcfg"].result(15)
    print("bad_config none", flush=True)
except Exception as e:
    print("bad_config", e.args[0].code(), flush=True)
start = int(time.time() * 1000)
p = Producer({"bootstrap.servers": bs, "acks": "all"})
got = []
p.produce("lat", value=b"x", timestamp=1_000_000_000_000, on_delivery=lambda err, m: got.append(m.timestamp()))
assert p.flush(30) == 0
end = int(time.time() * 1000)
print("delivered", got[0][0], got[0][1], flush=True)
print("window", start, end, flush=True)
c = Consumer({"bootstrap.servers": bs, "group.id": "unused", "enable.auto.commit": False})
c.assign([TopicPartition("lat", 0, 0)])
m = None
while m is None or m.error():
    m = c.poll(1.0)
print("read", m.timestamp()[0], m.timestamp()[1], flush=True)
"#;

#[test]
fn given_log_append_time_topic_when_producing_an_old_timestamp_should_store_and_report_the_brokers_time(
) {
    let k = kafka_cluster_with(1, |b| b);
    let child = python(LOG_APPEND_SCRIPT, &[&k.bootstrap()]);
    let out = wait_bounded(child, Duration::from_secs(60), "python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "script failed: {stdout} {stderr}");
    let line = |key: &str| -> Vec<i64> {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no `{key}` in {stdout} {stderr}"))
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect()
    };
    // INVALID_CONFIG: min.insync.replicas 2 on a 1-replica topic.
    assert_eq!(line("bad_config"), [40]);
    let (start, end) = (line("window")[0], line("window")[1]);
    // confluent_kafka.TIMESTAMP_LOG_APPEND_TIME is 2.
    for key in ["delivered", "read"] {
        let v = line(key);
        assert_eq!(v[0], 2, "{key}: timestamp type");
        assert!(
            start <= v[1] && v[1] <= end,
            "{key}: {start} <= {} <= {end}",
            v[1]
        );
    }
    assert_eq!(line("delivered")[1], line("read")[1]);
    let d = k.cluster.yak_ok(&["topic", "describe", "lat"]);
    assert!(d.contains("LogAppendTime"), "{d}");
}
