//! Native group members subscribed to several topics
//! (`consume --group G --topic a --topic b`): the coordinator splits the
//! union of their partitions, each message of every topic is read once,
//! and `group describe` shows every subscribed topic with its lag. Offsets
//! of a deleted topic go with it, also after a ZooKeeper restart, and a
//! topic re-created under the same name starts with none. A session
//! timeout outside the cluster's range is refused. A KIP-848
//! ConsumerGroupHeartbeat through the Kafka front door joins the same
//! coordinator and gets its assignment by topic id.

#![allow(clippy::unwrap_used)]

mod kafka_support;

use kafka_support::{kafka_cluster, request};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Output;
use std::time::Duration;
use yak_tests::{assert_success, wait_until, Background, TestCluster};

const WAIT: Duration = Duration::from_secs(30);

fn cluster() -> TestCluster {
    TestCluster::builder(2)
        .zookeeper("group_session_timeout_ms", "2000")
        .start()
}

/// Produces `prefix-i` for i in `range` to `topic`; returns the values.
fn produce(c: &TestCluster, topic: &str, prefix: &str, range: std::ops::Range<u32>) -> Vec<String> {
    let values: Vec<String> = range.map(|i| format!("{prefix}-{i}")).collect();
    let input: String = values.iter().map(|v| format!("{v}\n")).collect();
    c.yak_stdin_ok(&["produce", "--topic", topic], &input);
    values
}

/// A group member of `group` reading every topic of `topics`.
fn member(c: &TestCluster, group: &str, topics: &[&str], name: &str) -> Background {
    let mut args = vec!["consume", "--group", group, "--from-beginning"];
    for t in topics {
        args.extend(["--topic", t]);
    }
    args.extend(["--format", "json", "--client-id", name]);
    c.spawn_yak(&args)
}

fn try_describe(c: &TestCluster, group: &str) -> Option<Value> {
    let out = c.yak(&["group", "describe", group, "--json"]);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).unwrap())
}

/// Member client → "topic-partition" list, while the group is stable.
fn split(d: &Value) -> Option<BTreeMap<String, Vec<String>>> {
    if d["state"] != "stable" {
        return None;
    }
    let members = d["members"].as_array()?;
    Some(
        members
            .iter()
            .map(|m| {
                let owned = m["assigned"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|a| {
                        let t = a["topic"].as_str().unwrap().to_string();
                        a["partitions"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(move |p| format!("{t}-{}", p.as_u64().unwrap()))
                    })
                    .collect();
                (m["client"].as_str().unwrap().to_string(), owned)
            })
            .collect(),
    )
}

/// Waits until the group's partitions all have lag 0 and hold `total`
/// messages between them.
fn wait_committed(c: &TestCluster, group: &str, total: u64) -> Value {
    wait_until(&format!("{group} to commit {total}"), WAIT, || {
        let d = try_describe(c, group)?;
        let parts = d["partitions"].as_array()?.clone();
        let hw: u64 = parts
            .iter()
            .map(|p| p["high_watermark"].as_u64().unwrap_or(0))
            .sum();
        (hw == total && parts.iter().all(|p| p["lag"] == 0)).then_some(d)
    })
}

/// (topic, value) of each record a `--format json` consumer printed.
fn records(out: &Output) -> Vec<(String, String)> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            (
                v["topic"].as_str().unwrap().to_string(),
                v["value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn stop(b: Background) -> Vec<(String, String)> {
    kill(Pid::from_raw(b.pid() as i32), Signal::SIGTERM).unwrap();
    let out = b.wait_output(Duration::from_secs(15));
    assert_success(&out, "consume --group (stopped by SIGTERM)");
    records(&out)
}

/// Each of `want` read exactly once, from the topic it was written to.
fn assert_exactly(got: &[(String, String)], want: &[(String, String)]) {
    let mut counts: BTreeMap<&(String, String), usize> = BTreeMap::new();
    for r in got {
        *counts.entry(r).or_default() += 1;
    }
    let missing: Vec<_> = want.iter().filter(|w| !counts.contains_key(w)).collect();
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    let want_set: BTreeSet<_> = want.iter().collect();
    let extra: Vec<_> = counts.keys().filter(|r| !want_set.contains(*r)).collect();
    assert!(missing.is_empty(), "skipped: {missing:?}");
    assert!(twice.is_empty(), "read more than once: {twice:?}");
    assert!(extra.is_empty(), "unexpected: {extra:?}");
}

fn tagged(topic: &str, values: Vec<String>) -> Vec<(String, String)> {
    values.into_iter().map(|v| (topic.to_string(), v)).collect()
}

/// Topics with committed offsets for `group`, per `group list --json`.
fn listed_topics(c: &TestCluster, group: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(&c.yak_ok(&["group", "list", "--json"])).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter(|g| g["group"] == group)
        .flat_map(|g| g["topics"].as_array().unwrap().clone())
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn given_two_members_on_two_topics_when_consuming_should_split_both_and_read_each_message_once() {
    let c = cluster();
    c.yak_ok(&["topic", "create", "orders", "--partitions", "3"]);
    c.yak_ok(&["topic", "create", "refunds", "--partitions", "2"]);
    let mut want = tagged("orders", produce(&c, "orders", "o", 0..40));
    want.extend(tagged("refunds", produce(&c, "refunds", "r", 0..20)));

    let m1 = member(&c, "g", &["orders", "refunds"], "m1");
    let m2 = member(&c, "g", &["orders", "refunds"], "m2");
    let s = wait_until("a stable 2-member group", WAIT, || {
        try_describe(&c, "g")
            .and_then(|d| split(&d))
            .filter(|s| s.len() == 2)
    });
    let all: Vec<&String> = s.values().flatten().collect();
    let unique: BTreeSet<&String> = all.iter().copied().collect();
    let every: BTreeSet<String> = ["orders-0", "orders-1", "orders-2", "refunds-0", "refunds-1"]
        .map(String::from)
        .into();
    assert_eq!(all.len(), 5, "each partition once: {s:?}");
    assert_eq!(unique, every.iter().collect(), "{s:?}");
    // Range per topic: m1 takes the extra partition of orders, each one of refunds.
    assert_eq!(s["m1"], ["orders-0", "orders-1", "refunds-0"], "{s:?}");

    want.extend(tagged("refunds", produce(&c, "refunds", "r", 20..40)));
    let d = wait_committed(&c, "g", 80);
    let shown: BTreeSet<&str> = d["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["topic"].as_str().unwrap())
        .collect();
    assert_eq!(
        shown,
        ["orders", "refunds"].into(),
        "lag for every subscribed topic"
    );
    assert_eq!(d["total_lag"], 0);

    let mut got = stop(m1);
    got.extend(stop(m2));
    assert_exactly(&got, &want);
}

#[test]
fn given_deleted_topic_when_zookeeper_restarts_and_it_is_recreated_should_start_without_offsets() {
    let c = cluster();
    c.yak_ok(&["topic", "create", "keep", "--partitions", "2"]);
    c.yak_ok(&["topic", "create", "gone", "--partitions", "2"]);
    produce(&c, "keep", "k", 0..10);
    produce(&c, "gone", "g", 0..10);
    let m = member(&c, "g", &["keep", "gone"], "m");
    wait_committed(&c, "g", 20);
    stop(m);
    assert_eq!(listed_topics(&c, "g"), ["gone", "keep"]);

    c.yak_ok(&["topic", "delete", "gone"]);
    assert_eq!(
        listed_topics(&c, "g"),
        ["keep"],
        "offsets go with the topic"
    );
    let old = c.zookeeper_pid().unwrap();
    kill(Pid::from_raw(old), Signal::SIGKILL).unwrap();
    wait_until("a new zookeeper", WAIT, || {
        c.zookeeper_pid().filter(|p| *p != old)
    });
    let topics = wait_until("group list after the restart", WAIT, || {
        let out = c.yak(&["group", "list", "--json"]);
        out.status.success().then(|| listed_topics(&c, "g"))
    });
    assert_eq!(topics, ["keep"], "still gone after a ZooKeeper restart");

    let mut c = c;
    c.wait_for_alive_brokers(2, WAIT);
    c.yak_ok(&["topic", "create", "gone", "--partitions", "2"]);
    let fresh = tagged("gone", produce(&c, "gone", "new", 0..6));
    // `keep` is read up to its committed offsets; the new `gone` has none,
    // so --from-beginning applies to it: exactly the new messages.
    let m = member(&c, "g", &["keep", "gone"], "m");
    wait_committed(&c, "g", 16);
    assert_exactly(&stop(m), &fresh);
}

#[test]
fn given_cluster_session_timeout_range_when_a_member_asks_outside_it_should_refuse_the_join() {
    let c = TestCluster::builder(1)
        .zookeeper("group_session_timeout_ms", "2000")
        .zookeeper("group_min_session_timeout_ms", "500")
        .zookeeper("group_max_session_timeout_ms", "5000")
        .start();
    c.yak_ok(&["topic", "create", "t", "--partitions", "1"]);
    for bad in ["100", "6000"] {
        let out = c.yak(&[
            "consume",
            "--topic",
            "t",
            "--group",
            "g",
            "--session-timeout-ms",
            bad,
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad} ms accepted");
        assert!(
            stderr.contains(&format!("{bad} ms")) && stderr.contains("500 to 5000 ms"),
            "{bad}: {stderr}"
        );
    }
    let ok = c.yak(&[
        "consume",
        "--topic",
        "t",
        "--group",
        "g",
        "--session-timeout-ms",
        "500",
        "--timeout-ms",
        "300",
    ]);
    assert_success(&ok, "a session timeout at the minimum");
}

/// A ConsumerGroupHeartbeat v0 body (flexible encoding) for group `g`.
fn cg_heartbeat(member_id: &str, epoch: i32, topics: Option<&[&str]>) -> Vec<u8> {
    let cstr = |b: &mut Vec<u8>, s: &str| {
        b.push(s.len() as u8 + 1);
        b.extend_from_slice(s.as_bytes());
    };
    let mut b = vec![0]; // request header v2: no tagged fields
    cstr(&mut b, "g");
    cstr(&mut b, member_id);
    b.extend_from_slice(&epoch.to_be_bytes());
    b.extend([0, 0]); // instance id, rack id: null
    b.extend_from_slice(&30_000i32.to_be_bytes());
    match topics {
        Some(ts) => {
            b.push(ts.len() as u8 + 1);
            for t in ts {
                cstr(&mut b, t);
            }
        }
        None => b.push(0),
    }
    b.extend([0, 0, 0]); // server assignor, owned partitions: null; no tags
    b
}

/// Reads the answer to `cg_heartbeat`: error code, member id, member
/// epoch, and (topic id, partitions) per assigned topic.
fn cg_answer(s: &mut TcpStream) -> (i16, String, i32, Vec<(u128, Vec<i32>)>) {
    let mut size = [0u8; 4];
    s.read_exact(&mut size).unwrap();
    let mut r = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut r).unwrap();
    let mut at = 5; // correlation id, header tags
    let mut take = |n: usize| {
        at += n;
        r[at - n..at].to_vec()
    };
    let i16_at = |b: Vec<u8>| i16::from_be_bytes([b[0], b[1]]);
    let i32_at = |b: Vec<u8>| i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    take(4); // throttle
    let error = i16_at(take(2));
    let msg_len = take(1)[0] as usize;
    take(msg_len.saturating_sub(1));
    let id_len = take(1)[0] as usize;
    let member = String::from_utf8(take(id_len.saturating_sub(1))).unwrap();
    let epoch = i32_at(take(4));
    take(4); // heartbeat interval
    let mut assigned = Vec::new();
    if take(1)[0] == 1 {
        for _ in 0..take(1)[0].saturating_sub(1) {
            let id = u128::from_be_bytes(take(16).try_into().unwrap());
            let parts = (0..take(1)[0].saturating_sub(1))
                .map(|_| i32_at(take(4)))
                .collect();
            take(1);
            assigned.push((id, parts));
        }
    }
    (error, member, epoch, assigned)
}

#[test]
fn given_kip848_heartbeat_through_the_kafka_front_door_should_join_the_native_coordinator() {
    let k = kafka_cluster(1);
    let c = &k.cluster;
    c.yak_ok(&["topic", "create", "a", "--partitions", "2"]);
    c.yak_ok(&["topic", "create", "b", "--partitions", "1"]);
    let mut s = TcpStream::connect(k.bootstrap()).unwrap();
    s.write_all(&request(68, 0, 1, &cg_heartbeat("", 0, Some(&["a", "b"]))))
        .unwrap();
    let (error, member, epoch, assigned) = cg_answer(&mut s);
    assert_eq!((error, epoch), (0, 1), "joined at generation 1");
    assert_eq!(assigned.len(), 2, "partitions of both topics: {assigned:?}");
    let mut sizes: Vec<usize> = assigned.iter().map(|(_, p)| p.len()).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [1, 2]);
    let d = try_describe(c, "g").unwrap();
    assert_eq!(d["members"][0]["member_id"], member.as_str());
    assert_eq!(d["members"][0]["topics"], serde_json::json!(["a", "b"]));

    s.write_all(&request(68, 0, 2, &cg_heartbeat(&member, 1, None)))
        .unwrap();
    let (error, _, epoch, again) = cg_answer(&mut s);
    assert_eq!(
        (error, epoch, again),
        (0, 1, assigned),
        "a steady heartbeat"
    );
    s.write_all(&request(68, 0, 3, &cg_heartbeat("nobody", 1, None)))
        .unwrap();
    assert_eq!(cg_answer(&mut s).0, 25, "UNKNOWN_MEMBER_ID");
    s.write_all(&request(68, 0, 4, &cg_heartbeat(&member, -1, None)))
        .unwrap();
    let (error, _, epoch, _) = cg_answer(&mut s);
    assert_eq!((error, epoch), (0, -1), "left");
    assert!(
        try_describe(c, "g").is_none(),
        "no members, no offsets: no group"
    );
}
