//! KIP-848, Kafka's next-generation consumer protocol, served by YaK's one
//! coordinator: confluent-kafka consumers with `group.protocol=consumer`
//! (ConsumerGroupHeartbeat, Metadata with topic ids, OffsetCommit and
//! OffsetFetch v9), unchanged. The coordinator assigns; members joining
//! and leaving rebalance by revoking first, so a partition is never owned
//! by two members at once. Needs what `make kafka-deps` installs.

#![allow(clippy::unwrap_used)]

#[path = "kafka_support/mod.rs"]
mod kafka_support;

use kafka_support::{kafka_cluster, python, KafkaCluster};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};
use std::process::Child;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// A KIP-848 group consumer: prints `owned T P,P` (T: CLOCK_MONOTONIC
/// seconds, shared by every process) whenever its partitions change,
/// `msg P VALUE` per message, commits what it read before partitions are
/// revoked, and on `close` (stdin) commits, closes and prints `closed`.
/// `YAK_RDKAFKA_DEBUG` passes librdkafka debug contexts (to stderr).
const CONSUMER: &str = r#"
import os, sys, threading, time
from confluent_kafka import Consumer, KafkaException
bs, group, topic = sys.argv[1:4]
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
c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
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
    print("msg", m.partition(), m.value().decode(), flush=True)
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

/// One consumer process and the lines it printed.
struct Member {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Member {
    fn start(k: &KafkaCluster, group: &str, topic: &str) -> Member {
        let mut child = python(CONSUMER, &[&k.bootstrap(), group, topic]);
        let (tx, lines) = std::sync::mpsc::channel();
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Member {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Takes every line printed so far.
    fn drain(&mut self) {
        self.seen.extend(self.lines.try_iter());
    }

    /// The partitions it owns now.
    fn owned(&self) -> Option<BTreeSet<u32>> {
        history(&self.seen).pop().map(|(_, ps)| ps)
    }

    /// Values of every message read.
    fn values(&self) -> Vec<String> {
        self.seen
            .iter()
            .filter_map(|l| l.strip_prefix("msg "))
            .map(|l| l.split_once(' ').unwrap().1.to_string())
            .collect()
    }

    /// Commits, closes and exits; returns every line it printed.
    fn close(mut self) -> Vec<String> {
        let mut stdin = self.child.stdin.take().unwrap();
        stdin.write_all(b"close\n").unwrap();
        drop(stdin);
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.seen.iter().any(|l| l == "closed") {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(l) => self.seen.push(l),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            assert!(Instant::now() < deadline, "no close: {:?}", self.seen);
        }
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "consumer did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::mem::take(&mut self.seen)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `members` until `done` holds, at most `secs` seconds.
fn settle(
    members: &mut [&mut Member],
    secs: u64,
    what: &str,
    done: impl Fn(&[&mut Member]) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        for m in members.iter_mut() {
            m.drain();
        }
        if done(members) {
            return;
        }
        if Instant::now() > deadline {
            let state: Vec<_> = members
                .iter_mut()
                .map(|m| {
                    let _ = m.child.kill();
                    let err = m.child.stderr.take().map(|mut e| {
                        let mut s = String::new();
                        let _ = std::io::Read::read_to_string(&mut e, &mut s);
                        s.lines().rev().take(30).collect::<Vec<_>>().join("\n")
                    });
                    (
                        m.seen.iter().rev().take(4).cloned().collect::<Vec<_>>(),
                        err,
                    )
                })
                .collect();
            panic!("{what} within {secs} s: {state:#?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every member owns `sizes[i]` partitions and together they own `0..total` once.
fn split(members: &[&mut Member], sizes: &[usize], total: u32) -> bool {
    let owned: Vec<BTreeSet<u32>> = members.iter().filter_map(|m| m.owned()).collect();
    let mut got: Vec<usize> = owned.iter().map(BTreeSet::len).collect();
    got.sort_unstable();
    let union: BTreeSet<u32> = owned.iter().flatten().copied().collect();
    owned.len() == members.len() && got == sizes && union == (0..total).collect()
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

fn create_topic(k: &KafkaCluster, topic: &str, partitions: u32) {
    k.cluster.yak_ok(&[
        "topic",
        "create",
        topic,
        "--partitions",
        &partitions.to_string(),
        "--replication-factor",
        "1",
    ]);
}

/// Produces `v{from}..v{to}` with keys spread over the partitions.
fn produce(k: &KafkaCluster, topic: &str, from: usize, to: usize) {
    let input: String = (from..to).map(|i| format!("k{i}:v{i}\n")).collect();
    k.cluster.yak_stdin_ok(
        &["produce", "--topic", topic, "--key-separator", ":"],
        &input,
    );
}

fn values(range: std::ops::Range<usize>) -> BTreeSet<String> {
    range.map(|i| format!("v{i}")).collect()
}

fn describe(k: &KafkaCluster, group: &str) -> Value {
    serde_json::from_str(&k.cluster.yak_ok(&["group", "describe", group, "--json"])).unwrap()
}

#[test]
fn given_three_consumer_protocol_members_when_reading_6000_messages_should_split_2_2_2_read_each_once_rebalance_and_resume(
) {
    let k = kafka_cluster(1);
    create_topic(&k, "kt", 6);
    let mut a = Member::start(&k, "k1", "kt");
    let mut b = Member::start(&k, "k1", "kt");
    let mut c = Member::start(&k, "k1", "kt");
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
        .map(|l| l.split_once(' ').unwrap().1)
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
    let mut again = Member::start(&k, "k1", "kt");
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
