//! Consumer groups end to end: partitions shared 2/2/2, a killed member's
//! partitions moving to the others with nothing skipped, resuming from
//! committed offsets, independent groups, committed offsets surviving a
//! kill -9 of ZooKeeper, bad admin input, and supervised worker processes.
//!
//! At-least-once window: a member commits what it printed every second,
//! before giving partitions up in a rebalance, and when it stops cleanly
//! (SIGTERM/SIGINT, --max-messages, --timeout-ms). After a clean stop
//! nothing is read twice; after a kill -9, at most what the member printed
//! since its last commit is read again by its successor. These tests kill
//! members only once their offsets are committed, so they expect no
//! duplicate at all.

#![allow(clippy::unwrap_used)]

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;
use std::time::{Duration, Instant};
use yak_tests::{assert_success, wait_until, Background, TestCluster};

/// The group session timeout the clusters here run with.
const SESSION_MS: u64 = 2000;
/// Slack on top of the session timeout for a rebalance to complete
/// (heartbeat interval, rejoin, a loaded CI machine).
const REBALANCE_SLACK: Duration = Duration::from_secs(3);
const WAIT: Duration = Duration::from_secs(30);

fn cluster() -> TestCluster {
    TestCluster::builder(3)
        .zookeeper("group_session_timeout_ms", &SESSION_MS.to_string())
        .start()
}

/// Produces `key-i:prefix-i` for i in `range`.
fn produce(c: &TestCluster, topic: &str, prefix: &str, range: std::ops::Range<u32>) -> Vec<String> {
    let input: String = range
        .clone()
        .map(|i| format!("key-{i}:{prefix}-{i}\n"))
        .collect();
    c.yak_stdin_ok(
        &["produce", "--topic", topic, "--key-separator", ":"],
        &input,
    );
    range.map(|i| format!("{prefix}-{i}")).collect()
}

fn member(c: &TestCluster, topic: &str, group: &str, name: &str) -> Background {
    c.spawn_yak(&[
        "consume",
        "--topic",
        topic,
        "--group",
        group,
        "--from-beginning",
        "--format",
        "json",
        "--client-id",
        name,
    ])
}

fn describe(c: &TestCluster, group: &str) -> Value {
    serde_json::from_str(&c.yak_ok(&["group", "describe", group, "--json"])).unwrap()
}

/// `group describe --json`, or `None` while the group does not exist yet.
fn try_describe(c: &TestCluster, group: &str) -> Option<Value> {
    let out = c.yak(&["group", "describe", group, "--json"]);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).unwrap())
}

/// Partitions per member client name, while the group is stable.
fn split(d: &Value) -> Option<BTreeMap<String, Vec<u64>>> {
    if d["state"] != "stable" {
        return None;
    }
    Some(
        d["members"]
            .as_array()?
            .iter()
            .map(|m| {
                let parts = m["partitions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_u64().unwrap())
                    .collect();
                (m["client"].as_str().unwrap().to_string(), parts)
            })
            .collect(),
    )
}

/// Waits until every partition's committed offset equals its high
/// watermark and the high watermarks sum to `total`.
fn wait_committed(c: &TestCluster, group: &str, total: u64) -> Value {
    wait_until(
        &format!("group {group} to commit {total} messages"),
        WAIT,
        || {
            let d = try_describe(c, group)?;
            let parts = d["partitions"].as_array()?.clone();
            let hw: u64 = parts
                .iter()
                .map(|p| p["high_watermark"].as_u64().unwrap_or(0))
                .sum();
            let done = !parts.is_empty() && hw == total && parts.iter().all(|p| p["lag"] == 0);
            done.then_some(d)
        },
    )
}

fn signal(b: &Background, s: Signal) {
    kill(Pid::from_raw(b.pid() as i32), s).unwrap();
}

/// Values printed by a `--format json` consumer.
fn values(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            v["value"].as_str().unwrap().to_string()
        })
        .collect()
}

fn stop(b: Background) -> Vec<String> {
    signal(&b, Signal::SIGTERM);
    let out = b.wait_output(Duration::from_secs(15));
    assert_success(&out, "consume --group (stopped by SIGTERM)");
    values(&out)
}

/// Asserts that `got` holds each of `want` exactly once and nothing else.
fn assert_exactly(got: &[String], want: &[String], what: &str) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for v in got {
        *counts.entry(v.as_str()).or_default() += 1;
    }
    let missing: Vec<&String> = want
        .iter()
        .filter(|w| !counts.contains_key(w.as_str()))
        .collect();
    let twice: Vec<(&&str, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    let want_set: BTreeSet<&str> = want.iter().map(String::as_str).collect();
    let extra: Vec<&&str> = counts.keys().filter(|v| !want_set.contains(**v)).collect();
    assert!(
        missing.is_empty(),
        "{what}: {} messages skipped: {missing:?}",
        missing.len()
    );
    assert!(twice.is_empty(), "{what}: read more than once: {twice:?}");
    assert!(extra.is_empty(), "{what}: unexpected messages: {extra:?}");
}

#[test]
fn given_three_members_over_six_partitions_when_one_is_killed_should_move_its_partitions_and_skip_nothing(
) {
    let c = cluster();
    c.yak_ok(&["topic", "create", "shared", "--partitions", "6"]);
    let m1 = member(&c, "shared", "g", "m1");
    let m2 = member(&c, "shared", "g", "m2");
    let m3 = member(&c, "shared", "g", "m3");
    let s = wait_until("a stable 3-member group", WAIT, || {
        try_describe(&c, "g")
            .and_then(|d| split(&d))
            .filter(|s| s.len() == 3)
    });
    let sizes: Vec<usize> = s.values().map(Vec::len).collect();
    assert_eq!(
        sizes,
        vec![2, 2, 2],
        "range split of 6 partitions over 3 members: {s:?}"
    );
    let all: BTreeSet<u64> = s.values().flatten().copied().collect();
    assert_eq!(
        all,
        (0..6).collect(),
        "every partition assigned once: {s:?}"
    );
    // Produced once the split is made, so each member reads its own share.
    let mut want = produce(&c, "shared", "a", 0..60);
    wait_committed(&c, "g", 60);

    signal(&m1, Signal::SIGKILL);
    let killed = Instant::now();
    let s = wait_until("m1's partitions to move to m2 and m3", WAIT, || {
        try_describe(&c, "g")
            .and_then(|d| split(&d))
            .filter(|s| s.len() == 2 && s.values().map(Vec::len).sum::<usize>() == 6)
    });
    let moved_in = killed.elapsed();
    eprintln!("partitions moved {moved_in:?} after the kill: {s:?}");
    assert!(!s.contains_key("m1"), "{s:?}");
    assert_eq!(
        s.values().map(Vec::len).collect::<Vec<_>>(),
        vec![3, 3],
        "{s:?}"
    );
    assert!(
        moved_in <= Duration::from_millis(SESSION_MS) + REBALANCE_SLACK,
        "rebalance took {moved_in:?} with a {SESSION_MS} ms session timeout"
    );

    want.extend(produce(&c, "shared", "b", 60..120));
    wait_committed(&c, "g", 120);
    let mut got = values(&m1.wait_output(Duration::from_secs(5)));
    assert!(!got.is_empty(), "m1 read before it was killed");
    got.extend(stop(m2));
    got.extend(stop(m3));
    assert_exactly(&got, &want, "three members, one killed");
}

#[test]
fn given_group_stopped_when_restarted_should_resume_from_committed_offsets() {
    let c = cluster();
    c.yak_ok(&["topic", "create", "resume", "--partitions", "3"]);
    let mut want = produce(&c, "resume", "r", 0..30);
    let run = |n: &str| {
        let args = [
            "consume",
            "--topic",
            "resume",
            "--group",
            "g",
            "--from-beginning",
            "--format",
            "json",
        ];
        let mut args = args.to_vec();
        args.extend(["--max-messages", n, "--timeout-ms", "10000"]);
        let out = c.yak(&args);
        assert_success(&out, "consume --group g --max-messages");
        values(&out)
    };
    let first = run("10");
    let second = run("10");
    assert_eq!((first.len(), second.len()), (10, 10));
    // Two members take over from there, then both stop cleanly.
    let m1 = member(&c, "resume", "g", "m1");
    let m2 = member(&c, "resume", "g", "m2");
    wait_until("two members", WAIT, || {
        try_describe(&c, "g")
            .and_then(|d| split(&d))
            .filter(|s| s.len() == 2)
    });
    wait_committed(&c, "g", 30);
    let mut got = [first, second].concat();
    got.extend(stop(m1));
    got.extend(stop(m2));
    assert_exactly(&got, &want, "three runs of one group over 30 messages");

    // --from-beginning applies only where the group has no offset.
    let more = produce(&c, "resume", "s", 30..50);
    let out = c.yak_ok(&[
        "consume",
        "--topic",
        "resume",
        "--group",
        "g",
        "--from-beginning",
        "--format",
        "json",
        "--timeout-ms",
        "3000",
    ]);
    let again: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["value"].to_string())
        .collect();
    let again: Vec<String> = again
        .iter()
        .map(|v| v.trim_matches('"').to_string())
        .collect();
    assert_exactly(
        &again,
        &more,
        "restart after a clean stop reads only the new messages",
    );
    want.extend(more);
    let d = describe(&c, "g");
    assert_eq!(
        d["members"].as_array().unwrap().len(),
        0,
        "members left: {d}"
    );
    assert_eq!(d["total_lag"], 0, "{d}");
}

#[test]
fn given_two_groups_when_consuming_should_each_read_every_message() {
    let c = cluster();
    c.yak_ok(&["topic", "create", "fanout", "--partitions", "3"]);
    let want = produce(&c, "fanout", "f", 0..50);
    let args = |g: &'static str| {
        vec![
            "consume",
            "--topic",
            "fanout",
            "--group",
            g,
            "--from-beginning",
            "--format",
            "json",
            "--timeout-ms",
            "3000",
        ]
    };
    let a = c.spawn_yak(&args("alpha"));
    let b = c.spawn_yak(&args("beta"));
    for (name, bg) in [("alpha", a), ("beta", b)] {
        let out = bg.wait_output(Duration::from_secs(30));
        assert_success(&out, name);
        assert_exactly(&values(&out), &want, name);
    }
    // Without --group a consumer reads alone, as before, and commits nothing.
    let out = c.yak_ok(&[
        "consume",
        "--topic",
        "fanout",
        "--from-beginning",
        "--timeout-ms",
        "2000",
    ]);
    assert_eq!(out.lines().count(), 50);
    let list: Value = serde_json::from_str(&c.yak_ok(&["group", "list", "--json"])).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["group"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["alpha", "beta"]);
}

#[test]
fn given_zookeeper_killed_under_running_group_should_lose_no_committed_offset() {
    let c = cluster();
    c.yak_ok(&["topic", "create", "durable", "--partitions", "3"]);
    let mut want = produce(&c, "durable", "d", 0..30);
    let m1 = member(&c, "durable", "g", "m1");
    let m2 = member(&c, "durable", "g", "m2");
    wait_until("two members", WAIT, || {
        try_describe(&c, "g")
            .and_then(|d| split(&d))
            .filter(|s| s.len() == 2)
    });
    let before = wait_committed(&c, "g", 30);
    let offsets = |d: &Value| -> Vec<(u64, u64)> {
        d["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["partition"].as_u64().unwrap(),
                    p["committed_offset"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    };

    let old = c.zookeeper_pid().unwrap();
    kill(Pid::from_raw(old), Signal::SIGKILL).unwrap();
    wait_until("a new zookeeper", WAIT, || {
        c.zookeeper_pid().filter(|p| *p != old)
    });
    let after = wait_until("group describe after the restart", WAIT, || {
        let out = c.yak(&["group", "describe", "g", "--json"]);
        out.status
            .success()
            .then(|| serde_json::from_slice::<Value>(&out.stdout).unwrap())
    });
    assert_eq!(
        offsets(&after),
        offsets(&before),
        "committed offsets after a kill -9 of ZooKeeper"
    );

    // The members rejoin the restarted coordinator and go on reading.
    let mut c = c;
    c.wait_for_alive_brokers(3, WAIT);
    wait_until("two members again", WAIT, || {
        try_describe(&c, "g")
            .and_then(|d| split(&d))
            .filter(|s| s.len() == 2)
    });
    want.extend(produce(&c, "durable", "e", 30..60));
    wait_committed(&c, "g", 60);
    let mut got = stop(m1);
    got.extend(stop(m2));
    let got_set: BTreeSet<&String> = got.iter().collect();
    let missing: Vec<&String> = want.iter().filter(|w| !got_set.contains(w)).collect();
    assert!(
        missing.is_empty(),
        "skipped across the ZooKeeper restart: {missing:?}"
    );
}

/// Asserts a failed command whose one-line error mentions each of `mentions`.
fn assert_error(out: &Output, case: &str, mentions: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{case}: should fail; stderr:\n{stderr}"
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "{case}: want one stderr line, got:\n{stderr}"
    );
    assert!(lines[0].starts_with("error: "), "{case}: {}", lines[0]);
    for m in mentions {
        assert!(
            lines[0].to_lowercase().contains(m),
            "{case}: error should mention {m:?}: {}",
            lines[0]
        );
    }
}

#[test]
fn given_bad_group_admin_input_when_run_should_fail_clearly_and_reset_should_work_on_empty_group() {
    let c = cluster();
    c.yak_ok(&["topic", "create", "admin", "--partitions", "2"]);
    produce(&c, "admin", "x", 0..10);
    assert_error(
        &c.yak(&["group", "describe", "nope"]),
        "unknown group",
        &["nope", "does not exist"],
    );

    let m = member(&c, "admin", "busy", "m");
    wait_committed(&c, "busy", 10);
    let out = c.yak(&[
        "group",
        "reset-offsets",
        "busy",
        "--topic",
        "admin",
        "--to-earliest",
    ]);
    assert_error(
        &out,
        "reset on an active group",
        &["busy", "active members"],
    );
    stop(m);
    wait_until("the group to have no members", WAIT, || {
        (describe(&c, "busy")["state"] == "empty").then_some(())
    });

    let reset = |to: &[&str]| {
        let mut args = vec!["group", "reset-offsets", "busy", "--topic", "admin"];
        args.extend(to);
        c.yak(&args)
    };
    assert_error(
        &reset(&["--to-offset", "-1"]),
        "negative offset",
        &["negative"],
    );
    assert_error(
        &reset(&["--to-offset", "1000"]),
        "past-the-end offset",
        &["past the end", "1000"],
    );
    let hws: Vec<u64> = describe(&c, "busy")["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["high_watermark"].as_u64().unwrap())
        .collect();
    let committed = || -> Vec<u64> {
        describe(&c, "busy")["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["committed_offset"].as_u64().unwrap())
            .collect()
    };
    assert_success(&reset(&["--to-earliest"]), "reset --to-earliest");
    assert_eq!(committed(), vec![0, 0]);
    assert_success(&reset(&["--to-offset", "1"]), "reset --to-offset 1");
    assert_eq!(committed(), vec![1, 1]);
    let out = c.yak_ok(&[
        "consume",
        "--topic",
        "admin",
        "--group",
        "busy",
        "--timeout-ms",
        "2000",
    ]);
    assert_eq!(
        out.lines().count() as u64,
        hws.iter().sum::<u64>() - 2,
        "read again from offset 1"
    );
    assert_success(&reset(&["--to-latest"]), "reset --to-latest");
    assert_eq!(committed(), hws);
    let text = c.yak_ok(&["group", "describe", "busy"]);
    assert!(
        text.contains("committed offset") && text.contains("lag"),
        "{text}"
    );
}

#[test]
fn given_one_producer_and_one_consumer_worker_when_cluster_runs_should_show_prefixed_flow_and_stop_workers_first(
) {
    let mut c = TestCluster::builder(3)
        .supervisor_arg("--producers")
        .supervisor_arg("1")
        .supervisor_arg("--consumers")
        .supervisor_arg("1")
        .start();
    wait_until(
        "the consumer worker to print what producer-1 sent",
        WAIT,
        || {
            let log = c.log_text();
            log.lines()
                .any(|l| l.starts_with("[consumer-1] received ") && l.contains("producer-1 #"))
                .then_some(())
        },
    );
    let d = describe(&c, "workers");
    assert_eq!(d["members"][0]["client"], "consumer-1", "{d}");
    let status = c
        .signal_supervisor(Signal::SIGTERM, Duration::from_secs(20))
        .expect("supervisor stops");
    assert_eq!(status.code(), Some(0));
    let log = c.log_text();
    let at = |needle: &str| {
        log.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in log:\n{log}"))
    };
    assert!(
        at("sending SIGTERM child=consumer-1") < at("sending SIGTERM child=broker-1"),
        "workers stop first"
    );
    assert!(
        at("sending SIGTERM child=producer-1") < at("sending SIGTERM child=broker-1"),
        "workers stop first"
    );
    assert!(
        c.cluster_processes().is_empty(),
        "{:?}",
        c.cluster_processes()
    );
}
