//! The cluster's event history through real processes (issue 15):
//! `yak-node cluster events --json` after a kill -9 of a partition leader
//! names the leader change and the broker's restart in order; `--follow`
//! prints a new event within a second; the history survives a kill -9 of
//! ZooKeeper; `[zookeeper] events_max` bounds it. Figures are printed (see
//! --nocapture).

#![allow(clippy::unwrap_used)]

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};
use yak_tests::{wait_until, yak_node_bin, TestCluster};

const WAIT: Duration = Duration::from_secs(15);

/// `cluster events --json`, one parsed object per line.
fn events(c: &TestCluster) -> Vec<Value> {
    c.yak_ok(&["cluster", "events", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["kind"] == kind).collect()
}

fn seq(e: &Value) -> u64 {
    e["seq"].as_u64().unwrap_or_else(|| panic!("no seq in {e}"))
}

fn ms(e: &Value, field: &str) -> i64 {
    e[field]
        .as_i64()
        .unwrap_or_else(|| panic!("no {field} in {e}"))
}

/// Creates a one-partition topic on 3 brokers and waits until all are in its ISR; returns (leader, epoch).
fn topic_in_sync(c: &TestCluster, name: &str) -> (u64, u64) {
    c.yak_ok(&[
        "topic",
        "create",
        name,
        "--partitions",
        "1",
        "--replication-factor",
        "3",
    ]);
    wait_until(&format!("{name}-0 with 3 in-sync replicas"), WAIT, || {
        let s = c.try_status_json()?;
        let p = s["partitions"]
            .as_array()?
            .iter()
            .find(|p| p["topic"] == name)?
            .clone();
        (p["isr"].as_array()?.len() == 3).then(|| {
            (
                p["leader"].as_u64().unwrap(),
                p["leader_epoch"].as_u64().unwrap(),
            )
        })
    })
}

fn broker_pid(c: &TestCluster, id: u64) -> i32 {
    let s = c.status_json();
    let b = s["brokers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == id)
        .cloned();
    b.and_then(|b| b["pid"].as_i64())
        .unwrap_or_else(|| panic!("no pid of broker {id} in {s}")) as i32
}

#[test]
fn given_leader_killed_when_reading_events_should_name_leader_change_then_restart_in_order() {
    let c = TestCluster::start(3);
    let (leader, epoch) = topic_in_sync(&c, "orders");
    let pid = broker_pid(&c, leader);
    // Only what follows the kill counts (a loaded machine may expire a session before it).
    let base = events(&c).last().map(seq).unwrap();
    let killed_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();

    // The history is complete once the killed broker is back in the ISR.
    let all = wait_until(
        "the killed broker back in the ISR, in the events",
        WAIT,
        || {
            let all: Vec<Value> = events(&c).into_iter().filter(|e| seq(e) > base).collect();
            let back = of_kind(&all, "isr_expanded").iter().any(|e| {
                e["topic"] == "orders"
                    && e["after"]
                        .as_array()
                        .is_some_and(|a| a.len() == 3 && a.contains(&leader.into()))
            });
            back.then_some(all)
        },
    );
    let seqs: Vec<u64> = all.iter().map(seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "events oldest first, numbered in order: {seqs:?}"
    );

    let expired = of_kind(&all, "broker_session_expired");
    let expired = expired
        .iter()
        .find(|e| e["broker"] == leader)
        .unwrap_or_else(|| panic!("no expiry of {leader}: {all:?}"));
    assert_eq!(
        expired["reason"], "reported_down",
        "the supervisor reported the kill: {expired}"
    );
    let elected = of_kind(&all, "leader_elected");
    let elected = elected
        .iter()
        .find(|e| e["topic"] == "orders" && e["old_leader"] == leader)
        .unwrap_or_else(|| panic!("no leader change away from {leader}: {all:?}"));
    assert_eq!(elected["partition"], 0);
    assert_ne!(elected["new_leader"], leader, "{elected}");
    assert!(elected["new_leader"].is_u64(), "{elected}");
    assert_eq!(elected["leader_epoch"], epoch + 1, "{elected}");
    assert_eq!(elected["reason"], "reported_down", "{elected}");
    let restarted = of_kind(&all, "process_restarted");
    let restarted = restarted
        .iter()
        .find(|e| e["broker"] == leader)
        .unwrap_or_else(|| panic!("no restart of broker {leader}: {all:?}"));
    assert_eq!(restarted["child"], format!("broker-{leader}"));
    assert_eq!(restarted["old_pid"], pid);
    assert_eq!(restarted["signal"], "SIGKILL");
    assert!(restarted["exit_code"].is_null(), "{restarted}");
    let new_pid = restarted["new_pid"].as_u64().unwrap();
    assert_ne!(new_pid, pid as u64);
    assert!(
        restarted["restart_delay_ms"]
            .as_u64()
            .is_some_and(|d| d >= 100),
        "{restarted}"
    );
    let registered = of_kind(&all, "broker_registered");
    let registered = registered
        .iter()
        .find(|e| e["broker"] == leader && e["pid"] == new_pid)
        .unwrap_or_else(|| panic!("no registration of the new broker {leader} process: {all:?}"));
    assert_eq!(registered["old_pid"], pid);
    let back = of_kind(&all, "isr_expanded")
        .into_iter()
        .find(|e| {
            e["topic"] == "orders"
                && e["after"]
                    .as_array()
                    .is_some_and(|a| a.contains(&leader.into()))
        })
        .unwrap();
    assert_eq!(back["reason"], "follower_caught_up");

    assert!(
        seq(expired) < seq(elected) && seq(elected) < seq(restarted) && seq(registered) < seq(back),
        "order: expiry {}, election {}, restart {}; registration {}, back in ISR {}",
        seq(expired),
        seq(elected),
        seq(restarted),
        seq(registered),
        seq(back)
    );
    let exited = ms(restarted, "exited_at_ms");
    assert!(
        killed_ms <= exited && exited <= ms(elected, "time_ms"),
        "killed {killed_ms}, reaped {exited}, elected {elected}"
    );
    println!(
        "broker {leader} killed at t; reaped at t+{} ms; orders-0 led by {} at t+{} ms; restarted at t+{} ms; back in the ISR at t+{} ms",
        exited - killed_ms,
        elected["new_leader"],
        ms(elected, "time_ms") - killed_ms,
        ms(restarted, "time_ms") - killed_ms,
        ms(back, "time_ms") - killed_ms
    );

    let text = c.yak_ok(&["cluster", "events", "--since", "1m"]);
    let line = format!(
        "leader of orders-0: {leader} → {} (epoch {}), broker {leader} reported down",
        elected["new_leader"],
        epoch + 1
    );
    assert!(
        text.contains(&line),
        "human output names the change and its cause ({line}):\n{text}"
    );
    println!("{text}");
}

/// `cluster events --follow --json` whose lines arrive on a channel with
/// the instant each was read; killed on drop.
struct Follower {
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
}

impl Follower {
    fn start(c: &TestCluster) -> Follower {
        let mut child = Command::new(yak_node_bin())
            .args(["cluster", "events", "--follow", "--json", "--cluster"])
            .arg(c.run_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send((Instant::now(), line)).is_err() {
                    return;
                }
            }
        });
        Follower { child, lines }
    }

    /// The next line that parses as an event of `kind`, within `timeout`.
    fn next_of_kind(&self, kind: &str, timeout: Duration) -> Option<(Instant, Value)> {
        let end = Instant::now() + timeout;
        while let Ok((at, line)) = self
            .lines
            .recv_timeout(end.saturating_duration_since(Instant::now()))
        {
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            if v["kind"] == kind {
                return Some((at, v));
            }
        }
        None
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn given_follow_when_a_topic_is_created_should_print_its_event_within_a_second() {
    let c = TestCluster::start(1);
    let f = Follower::start(&c);
    f.next_of_kind("broker_registered", WAIT)
        .expect("--follow prints the history first");
    let asked = Instant::now();
    c.yak_ok(&[
        "topic",
        "create",
        "later",
        "--partitions",
        "1",
        "--replication-factor",
        "1",
    ]);
    let (at, e) = f
        .next_of_kind("topic_created", Duration::from_secs(5))
        .expect("topic_created printed by --follow");
    let delay = at.saturating_duration_since(asked);
    println!(
        "--follow printed topic_created {} ms after the create was asked",
        delay.as_millis()
    );
    assert_eq!(e["topic"], "later");
    assert!(delay < Duration::from_secs(1), "--follow took {delay:?}");
}

#[test]
fn given_events_when_zookeeper_is_killed_should_keep_them_and_record_its_restart() {
    let c = TestCluster::start(1);
    c.yak_ok(&[
        "topic",
        "create",
        "kept",
        "--partitions",
        "2",
        "--replication-factor",
        "1",
    ]);
    c.yak_ok(&["topic", "delete", "kept"]);
    let before = events(&c);
    assert!(
        of_kind(&before, "topic_deleted")
            .iter()
            .any(|e| e["topic"] == "kept"),
        "{before:?}"
    );
    assert_eq!(of_kind(&before, "zookeeper_started").len(), 1, "{before:?}");

    let old = c.zookeeper_pid().unwrap();
    kill(Pid::from_raw(old), Signal::SIGKILL).unwrap();
    let new = wait_until("a new zookeeper process", WAIT, || {
        c.zookeeper_pid().filter(|p| *p != old)
    });
    let after = wait_until("the restart reported in the events", WAIT, || {
        let out = c.yak(&["cluster", "events", "--json"]);
        let all: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        of_kind(&all, "process_restarted")
            .iter()
            .any(|e| e["child"] == "zookeeper")
            .then_some(all)
    });
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "every event from before the kill, unchanged and first"
    );
    let started = of_kind(&after, "zookeeper_started");
    assert_eq!(started.len(), 2, "{after:?}");
    assert_eq!(
        (&started[1]["pid"], &started[1]["restart"]),
        (&Value::from(new), &Value::from(true))
    );
    assert!(
        seq(started[1]) > seq(before.last().unwrap()),
        "numbering goes on after the restart"
    );
    let r = of_kind(&after, "process_restarted")
        .into_iter()
        .find(|e| e["child"] == "zookeeper")
        .unwrap();
    assert_eq!(
        (&r["old_pid"], &r["new_pid"], &r["signal"]),
        (
            &Value::from(old),
            &Value::from(new),
            &Value::from("SIGKILL")
        )
    );
    assert!(r["broker"].is_null(), "{r}");
}

#[test]
fn given_events_max_when_more_events_happen_should_keep_only_the_newest() {
    let c = TestCluster::builder(1).zookeeper("events_max", "3").start();
    for t in ["t1", "t2", "t3", "t4"] {
        c.yak_ok(&[
            "topic",
            "create",
            t,
            "--partitions",
            "1",
            "--replication-factor",
            "1",
        ]);
    }
    let all = events(&c);
    let kinds: Vec<(&Value, &Value)> = all.iter().map(|e| (&e["kind"], &e["topic"])).collect();
    assert_eq!(all.len(), 3, "{kinds:?}");
    let seqs: Vec<u64> = all.iter().map(seq).collect();
    assert_eq!(
        seqs,
        vec![seqs[0], seqs[0] + 1, seqs[0] + 2],
        "the newest, in order"
    );
    assert_eq!(
        (&all[2]["kind"], &all[2]["topic"]),
        (&Value::from("topic_created"), &Value::from("t4"))
    );
    let since = c.yak_ok(&["cluster", "events", "--json", "--since", "1h"]);
    assert_eq!(since.lines().count(), 3);
    let none = c.yak(&["cluster", "events", "--since", "5x"]);
    assert!(!none.status.success(), "a bad --since is refused");
}
