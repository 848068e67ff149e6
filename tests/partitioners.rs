//! Partitioner plugins end to end: producing through round-robin and
//! key-hash plugins, a misbehaving plugin that never stops the producer, and
//! the cluster-wide default (`partitioner` in cluster.toml, then
//! `$YAK_PARTITIONER`).

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use yak::client::partitioner::key_partition;
use yak_tests::{assert_success, plugin_path, yak_node_bin, TestCluster};

fn high_watermarks(c: &TestCluster, topic: &str) -> Vec<u64> {
    let status = c.status_json();
    let mut hws: Vec<(u64, u64)> = status["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["topic"] == topic)
        .map(|p| {
            (
                p["partition"].as_u64().unwrap(),
                p["high_watermark"].as_u64().unwrap(),
            )
        })
        .collect();
    hws.sort();
    hws.into_iter().map(|(_, hw)| hw).collect()
}

fn lines(n: usize, f: impl Fn(usize) -> String) -> String {
    (0..n).map(|i| format!("{}\n", f(i))).collect()
}

#[test]
fn given_round_robin_and_key_hash_plugins_when_producing_should_spread_evenly_and_keep_keys() {
    let c = TestCluster::start(3);
    let rr = plugin_path("round-robin");
    c.yak_ok(&["topic", "create", "rr", "--partitions", "4"]);
    let out = c.yak_stdin(
        &[
            "produce",
            "--topic",
            "rr",
            "--partitioner",
            rr.to_str().unwrap(),
        ],
        &lines(400, |i| format!("v{i}")),
    );
    assert_success(&out, "produce --partitioner round-robin");
    assert!(String::from_utf8_lossy(&out.stderr).contains("partitioner round-robin"));
    assert_eq!(
        high_watermarks(&c, "rr"),
        [100, 100, 100, 100],
        "round-robin spreads exactly evenly"
    );

    let kh = plugin_path("key-hash");
    c.yak_ok(&["topic", "create", "kh", "--partitions", "4"]);
    let input = lines(1000, |i| format!("user-{}:v{i}", i % 37));
    let args = [
        "produce",
        "--topic",
        "kh",
        "--key-separator",
        ":",
        "--partitioner",
        kh.to_str().unwrap(),
    ];
    c.yak_stdin_ok(&args, &input);
    let consumed = c.yak_ok(&[
        "consume",
        "--topic",
        "kh",
        "--from-beginning",
        "--format",
        "json",
        "--max-messages",
        "1000",
        "--timeout-ms",
        "5000",
    ]);
    let mut placed: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    for l in consumed.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        placed
            .entry(v["key"].as_str().unwrap().to_string())
            .or_default()
            .insert(v["partition"].as_u64().unwrap() as u32);
    }
    assert_eq!(
        placed.values().map(BTreeSet::len).sum::<usize>(),
        37,
        "37 keys, each on exactly one partition"
    );
    for (key, parts) in &placed {
        let want = key_partition(key.as_bytes(), 4);
        assert_eq!(
            parts.iter().copied().collect::<Vec<_>>(),
            [want],
            "{key} is where Kafka would put it"
        );
    }
    assert_eq!(high_watermarks(&c, "kh").iter().sum::<u64>(), 1000);
}

#[test]
fn given_misbehaving_plugin_when_producing_should_fall_back_and_report_without_crashing() {
    let c = TestCluster::start(1);
    let bad = plugin_path("fixture-misbehaving");
    c.yak_ok(&[
        "topic",
        "create",
        "mb",
        "--partitions",
        "3",
        "--replication-factor",
        "1",
    ]);
    let input = lines(30, |i| {
        format!("{}:v{i}", ["panic", "out-of-range", "fine"][i % 3])
    });
    let out = c.yak_stdin(
        &[
            "produce",
            "--topic",
            "mb",
            "--key-separator",
            ":",
            "--partitioner",
            bad.to_str().unwrap(),
        ],
        &input,
    );
    assert_success(&out, "produce with a misbehaving plugin");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("produced 30 of 30"), "{stderr}");
    assert!(
        stderr.contains("warning: the partitioner failed for 20 messages"),
        "{stderr}"
    );
    assert!(stderr.contains("panicked"), "first failure named: {stderr}");
    assert_eq!(high_watermarks(&c, "mb").iter().sum::<u64>(), 30);
}

#[test]
fn given_cluster_wide_partitioner_when_producing_without_flag_should_use_it_unless_env_overrides() {
    let rr = plugin_path("round-robin");
    let c = TestCluster::builder(1)
        .top_level(
            "partitioner",
            &serde_json::to_string(rr.to_str().unwrap()).unwrap(),
        )
        .start();
    let client_toml = std::fs::read_to_string(c.run_dir().join("client.toml")).unwrap();
    assert!(client_toml.contains(rr.to_str().unwrap()), "{client_toml}");

    c.yak_ok(&[
        "topic",
        "create",
        "cw",
        "--partitions",
        "3",
        "--replication-factor",
        "1",
    ]);
    let out = c.yak_stdin(
        &["produce", "--topic", "cw"],
        &lines(300, |i| format!("v{i}")),
    );
    assert_success(&out, "produce with the cluster default");
    assert_eq!(
        high_watermarks(&c, "cw"),
        [100, 100, 100],
        "round-robin from client.toml"
    );

    // $YAK_PARTITIONER wins over client.toml: the fixture puts everything on partition 0.
    c.yak_ok(&[
        "topic",
        "create",
        "env",
        "--partitions",
        "3",
        "--replication-factor",
        "1",
    ]);
    let out = Command::new(yak_node_bin())
        .args([
            "produce",
            "--topic",
            "env",
            "--message",
            "a",
            "--message",
            "b",
            "--message",
            "c",
            "--cluster",
        ])
        .arg(c.run_dir())
        .env("YAK_PARTITIONER", plugin_path("fixture-misbehaving"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_success(&out, "produce with $YAK_PARTITIONER");
    assert_eq!(high_watermarks(&c, "env"), [3, 0, 0]);
}
