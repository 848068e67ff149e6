//! Produce and consume through a real 3-broker cluster: ordering, live
//! consumers, topic lifecycle, auto-creation, status and offset reads.

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};
use yak_tests::{parse_records, Rec, TestCluster};

/// Records of `consume --format json`, each checked to carry every field of the contract.
fn parse_checked(stdout: &str) -> Vec<Rec> {
    for l in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        for field in ["topic", "partition", "offset", "key", "value", "timestamp"] {
            assert!(v.get(field).is_some(), "consumed record lacks {field}: {l}");
        }
    }
    parse_records(stdout.as_bytes())
}

fn consume_json(c: &TestCluster, extra: &[&str]) -> Vec<Rec> {
    let mut args = vec!["consume", "--format", "json"];
    args.extend_from_slice(extra);
    parse_checked(&c.yak_ok(&args))
}

fn high_watermarks(c: &TestCluster, topic: &str) -> Vec<u64> {
    let status = c.status_json();
    status["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["topic"] == topic)
        .map(|p| {
            p["high_watermark"]
                .as_u64()
                .unwrap_or_else(|| panic!("no high watermark: {p}"))
        })
        .collect()
}

#[test]
fn given_10k_keyed_messages_when_consumed_from_beginning_should_preserve_partition_order() {
    const N: usize = 10_000;
    let c = TestCluster::start(3);
    c.yak_ok(&["topic", "create", "orders", "--partitions", "3"]);
    let input: String = (0..N)
        .map(|i| format!("key-{}:value-{i}\n", i % 100))
        .collect();

    let t = Instant::now();
    c.yak_stdin_ok(
        &[
            "produce",
            "--topic",
            "orders",
            "--key-separator",
            ":",
            "--acks",
            "all",
        ],
        &input,
    );
    let produce = t.elapsed();
    let t = Instant::now();
    let n = N.to_string();
    let recs = consume_json(
        &c,
        &[
            "--topic",
            "orders",
            "--from-beginning",
            "--max-messages",
            &n,
            "--timeout-ms",
            "5000",
        ],
    );
    let consume = t.elapsed();
    let rate = |d: Duration| N as f64 / d.as_secs_f64();
    eprintln!(
        "produce {N} msgs: {produce:.2?} ({:.0} msg/s); consume: {consume:.2?} ({:.0} msg/s)",
        rate(produce),
        rate(consume)
    );

    assert_eq!(recs.len(), N, "consumed record count");
    // --max-messages would hide extras: the log itself must hold exactly N.
    assert_eq!(
        high_watermarks(&c, "orders").iter().sum::<u64>(),
        N as u64,
        "high watermarks sum"
    );
    let mut seen = vec![false; N];
    let mut key_partition: HashMap<String, u64> = HashMap::new();
    let mut last_offset: BTreeMap<u64, u64> = BTreeMap::new();
    let mut last_i_of_key: HashMap<String, usize> = HashMap::new();
    for r in &recs {
        let i: usize = r
            .value
            .strip_prefix("value-")
            .and_then(|s| s.parse().ok())
            .unwrap();
        assert!(!seen[i], "value-{i} consumed twice");
        seen[i] = true;
        let key = r
            .key
            .clone()
            .unwrap_or_else(|| panic!("record without key: {r:?}"));
        assert_eq!(
            key,
            format!("key-{}", i % 100),
            "key/value pairing of {r:?}"
        );
        let p = *key_partition.entry(key.clone()).or_insert(r.partition);
        assert_eq!(
            p, r.partition,
            "{key} on partitions {p} and {}",
            r.partition
        );
        if let Some(prev) = last_offset.insert(r.partition, r.offset) {
            assert!(
                r.offset > prev,
                "partition {} offset {} after {prev}",
                r.partition,
                r.offset
            );
        }
        if let Some(prev) = last_i_of_key.insert(key.clone(), i) {
            assert!(i > prev, "{key}: value-{i} after value-{prev}");
        }
    }
    assert!(seen.iter().all(|s| *s), "every value consumed");
    assert_eq!(
        last_offset.keys().copied().collect::<Vec<_>>(),
        vec![0, 1, 2],
        "partitions used"
    );
}

#[test]
fn given_consumer_started_before_producer_when_5_messages_sent_should_receive_exactly_those() {
    let c = TestCluster::start(3);
    c.yak_ok(&["topic", "create", "live", "--partitions", "3"]);
    c.yak_ok(&[
        "produce",
        "--topic",
        "live",
        "--message",
        "old-1",
        "--message",
        "old-2",
    ]);
    let consumer = c.spawn_yak(&[
        "consume",
        "--topic",
        "live",
        "--timeout-ms",
        "5000",
        "--max-messages",
        "5",
    ]);
    // Nothing observable says the consumer has read the end offsets: give
    // it a moment (it needs milliseconds; its idle timeout is 5 s).
    std::thread::sleep(Duration::from_millis(1000));
    let sent: Vec<String> = (1..=5).map(|i| format!("new-{i}")).collect();
    let mut args = vec!["produce", "--topic", "live"];
    for m in &sent {
        args.extend(["--message", m]);
    }
    c.yak_ok(&args);
    let out = consumer.wait_output(Duration::from_secs(30));
    yak_tests::assert_success(&out, "consume --topic live");
    let mut got: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    got.sort();
    assert_eq!(got, sent);
}

fn topic_names(c: &TestCluster) -> BTreeSet<String> {
    let v: Value = serde_json::from_str(&c.yak_ok(&["topic", "list", "--json"])).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn given_deleted_topic_when_recreated_with_same_name_should_start_empty() {
    let c = TestCluster::start(3);
    c.yak_ok(&["topic", "create", "keep", "--partitions", "1"]);
    c.yak_ok(&["topic", "create", "phoenix", "--partitions", "3"]);
    let input: String = (0..10).map(|i| format!("old-{i}\n")).collect();
    c.yak_stdin_ok(&["produce", "--topic", "phoenix"], &input);
    assert_eq!(
        topic_names(&c),
        BTreeSet::from(["keep".into(), "phoenix".into()])
    );

    c.yak_ok(&["topic", "delete", "phoenix"]);
    assert_eq!(topic_names(&c), BTreeSet::from(["keep".into()]));
    c.yak_ok(&["topic", "create", "phoenix", "--partitions", "3"]);
    assert_eq!(
        topic_names(&c),
        BTreeSet::from(["keep".into(), "phoenix".into()])
    );

    let out = c.yak_ok(&[
        "consume",
        "--topic",
        "phoenix",
        "--from-beginning",
        "--timeout-ms",
        "1000",
    ]);
    assert_eq!(
        out.lines().count(),
        0,
        "re-created topic should be empty, got:\n{out}"
    );
    // New messages start again at offset 0 and nothing old comes back.
    c.yak_ok(&[
        "produce",
        "--topic",
        "phoenix",
        "--key",
        "k",
        "--message",
        "new-1",
        "--message",
        "new-2",
    ]);
    let recs = consume_json(
        &c,
        &[
            "--topic",
            "phoenix",
            "--from-beginning",
            "--timeout-ms",
            "1000",
        ],
    );
    let got: Vec<(String, u64)> = recs.iter().map(|r| (r.value.clone(), r.offset)).collect();
    assert_eq!(
        got,
        vec![("new-1".to_string(), 0), ("new-2".to_string(), 1)]
    );
}

#[test]
fn given_missing_topic_when_producing_should_create_it_with_cluster_defaults() {
    let c = TestCluster::start(3);
    let out = c.yak(&["topic", "describe", "auto", "--json"]);
    assert!(!out.status.success(), "topic should not exist yet");
    c.yak_ok(&["produce", "--topic", "auto", "--message", "hello"]);
    let t: Value =
        serde_json::from_str(&c.yak_ok(&["topic", "describe", "auto", "--json"])).unwrap();
    assert_eq!(t["name"], "auto");
    let parts = t["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 3, "default partition count: {t}");
    for p in parts {
        assert_eq!(
            p["replicas"].as_array().unwrap().len(),
            1,
            "default replication factor: {p}"
        );
        assert!(p["leader"].is_u64(), "partition without leader: {p}");
    }
    let out = c.yak_ok(&[
        "consume",
        "--topic",
        "auto",
        "--from-beginning",
        "--max-messages",
        "1",
        "--timeout-ms",
        "5000",
    ]);
    assert_eq!(out, "hello\n");
}

#[test]
fn given_30_messages_when_reading_cluster_status_json_should_show_fields_and_high_watermarks() {
    let c = TestCluster::start(3);
    c.yak_ok(&["topic", "create", "counted", "--partitions", "3"]);
    let input: String = (0..30).map(|i| format!("k{i}:v{i}\n")).collect();
    c.yak_stdin_ok(
        &["produce", "--topic", "counted", "--key-separator", ":"],
        &input,
    );
    let s = c.status_json();

    let brokers = s["brokers"].as_array().unwrap();
    let ids: BTreeSet<u64> = brokers.iter().map(|b| b["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, BTreeSet::from([1, 2, 3]));
    for b in brokers {
        assert_eq!(b["alive"], true, "{b}");
        let pid = b["pid"]
            .as_u64()
            .unwrap_or_else(|| panic!("pid is not a number: {b}"));
        assert!(
            std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "broker pid {pid} is not running"
        );
    }
    let parts: Vec<&Value> = s["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["topic"] == "counted")
        .collect();
    assert_eq!(parts.len(), 3);
    for p in &parts {
        for field in [
            "topic",
            "partition",
            "leader",
            "replicas",
            "isr",
            "leader_epoch",
            "high_watermark",
            "log_end_offset",
        ] {
            assert!(
                p.get(field).is_some_and(|v| !v.is_null()),
                "partition lacks {field}: {p}"
            );
        }
        assert!(p["replicas"].is_array() && p["isr"].is_array(), "{p}");
        assert!(
            p["high_watermark"].as_u64() <= p["log_end_offset"].as_u64(),
            "{p}"
        );
    }
    let hw: u64 = parts
        .iter()
        .map(|p| p["high_watermark"].as_u64().unwrap())
        .sum();
    let leo: u64 = parts
        .iter()
        .map(|p| p["log_end_offset"].as_u64().unwrap())
        .sum();
    assert_eq!(
        (hw, leo),
        (30, 30),
        "sum of high watermarks and log end offsets"
    );
}

#[test]
fn given_partition_and_offset_when_consuming_should_read_that_partition_from_that_offset() {
    let c = TestCluster::start(3);
    c.yak_ok(&["topic", "create", "seek", "--partitions", "3"]);
    let input: String = (0..60).map(|i| format!("key-{i}:value-{i}\n")).collect();
    c.yak_stdin_ok(
        &["produce", "--topic", "seek", "--key-separator", ":"],
        &input,
    );
    let all = consume_json(
        &c,
        &[
            "--topic",
            "seek",
            "--from-beginning",
            "--max-messages",
            "60",
            "--timeout-ms",
            "5000",
        ],
    );
    assert_eq!(all.len(), 60);
    let mut by_partition: BTreeMap<u64, Vec<Rec>> = BTreeMap::new();
    for r in all {
        by_partition.entry(r.partition).or_default().push(r);
    }
    let (p, recs) = by_partition.iter().max_by_key(|(_, v)| v.len()).unwrap();
    assert!(
        recs.len() >= 3,
        "busiest partition has only {} records",
        recs.len()
    );
    let from = recs.len() as u64 / 2;
    let expected: Vec<Rec> = recs.iter().filter(|r| r.offset >= from).cloned().collect();
    let (p, from) = (p.to_string(), from.to_string());
    let got = consume_json(
        &c,
        &[
            "--topic",
            "seek",
            "--partition",
            &p,
            "--offset",
            &from,
            "--timeout-ms",
            "1000",
        ],
    );
    assert_eq!(got, expected);
}

#[test]
fn given_each_compression_codec_when_produced_should_be_stored_compressed_on_every_replica_and_consumed_back(
) {
    use yak::protocol::batch::{self, Compression};
    const N: usize = 300;
    let c = TestCluster::start(3);
    for codec in &Compression::ALL[1..] {
        let topic = format!("z-{codec}");
        c.yak_ok(&[
            "topic",
            "create",
            &topic,
            "--partitions",
            "1",
            "--replication-factor",
            "3",
        ]);
        let input: String = (0..N)
            .map(|i| format!("k{}:{codec} value {i}\n", i % 7))
            .collect();
        c.yak_stdin_ok(
            &[
                "produce",
                "--topic",
                &topic,
                "--key-separator",
                ":",
                "--compression",
                codec.name(),
            ],
            &input,
        );
        let n = N.to_string();
        let recs = consume_json(
            &c,
            &["--topic", &topic, "--from-beginning", "--max-messages", &n],
        );
        let got: Vec<(Option<String>, String)> =
            recs.into_iter().map(|r| (r.key, r.value)).collect();
        let want: Vec<(Option<String>, String)> = (0..N)
            .map(|i| (Some(format!("k{}", i % 7)), format!("{codec} value {i}")))
            .collect();
        assert_eq!(got, want, "{codec}: every message back, in order");
        for broker in 1..=3 {
            let log = c.dir().join(format!(
                "data/broker-{broker}/{topic}-0/00000000000000000000.log"
            ));
            let stored = wait_until_stored(&log);
            let codecs: BTreeSet<u16> = batch::split(&stored)
                .map(|b| b.expect("a stored batch").0.codec_bits())
                .collect();
            assert_eq!(
                codecs,
                BTreeSet::from([codec.bits()]),
                "{codec} on broker {broker}"
            );
        }
    }
}

/// The bytes of a segment once a replica has written some.
fn wait_until_stored(log: &std::path::Path) -> Vec<u8> {
    yak_tests::wait_until(
        &format!("{} to hold data", log.display()),
        Duration::from_secs(10),
        || std::fs::read(log).ok().filter(|b| !b.is_empty()),
    )
}
