//! Leadership comes home (issue 12, row 3): after a kill -9 of one broker
//! of three, ZooKeeper moves each partition's leadership back to its
//! preferred replica (the first in its replica list) once that replica is
//! back in the ISR, on its own, with a producer running and nothing lost;
//! and `cluster rebalance-leaders` does it on demand. Figures are printed
//! (see --nocapture).

#![allow(clippy::unwrap_used)]

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::collections::HashSet;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use yak_tests::{parse_records, wait_until, TestCluster};

/// Longest the leadership may take to come home after the broker rejoined every ISR.
const REBALANCE_BOUND: Duration = Duration::from_secs(20);
/// Longest a killed broker may take to be restarted and rejoin every ISR.
const REJOIN_BOUND: Duration = Duration::from_secs(30);

fn partitions(c: &TestCluster, topic: &str) -> Vec<Value> {
    let out = c.yak_ok(&["topic", "describe", topic, "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v["partitions"].as_array().unwrap().clone()
}

fn describe(c: &TestCluster, topic: &str) -> Value {
    serde_json::from_str(&c.yak_ok(&["topic", "describe", topic, "--json"])).unwrap()
}

fn leaders(parts: &[Value]) -> Vec<u64> {
    parts
        .iter()
        .map(|p| p["leader"].as_u64().unwrap_or(0))
        .collect()
}

fn preferred(parts: &[Value]) -> Vec<u64> {
    parts
        .iter()
        .map(|p| p["replicas"][0].as_u64().unwrap())
        .collect()
}

fn broker_pid(c: &TestCluster, id: u64) -> Option<u64> {
    let status = c.try_status_json()?;
    status["brokers"]
        .as_array()?
        .iter()
        .find(|b| b["id"] == id && b["alive"] == true)
        .and_then(|b| b["pid"].as_u64())
}

/// Kills broker `id` with SIGKILL and waits until a new process of it is in
/// the ISR of every partition of `topic`; returns when that was seen.
fn kill_and_wait_for_rejoin(c: &TestCluster, topic: &str, id: u64) -> Instant {
    let pid = broker_pid(c, id).unwrap();
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    wait_until(
        "the killed broker to lose its leaderships",
        Duration::from_secs(10),
        || (!leaders(&partitions(c, topic)).contains(&id)).then_some(()),
    );
    wait_until(
        "the restarted broker back in every ISR",
        REJOIN_BOUND,
        || {
            let new_pid = broker_pid(c, id)?;
            let back = partitions(c, topic)
                .iter()
                .all(|p| p["isr"].as_array().unwrap().iter().any(|b| b == id));
            (new_pid != pid && back).then(Instant::now)
        },
    )
}

#[test]
fn given_killed_preferred_leader_when_it_rejoins_should_lead_again_within_bound_with_nothing_lost()
{
    let c = TestCluster::start(3);
    c.yak_ok(&[
        "topic",
        "create",
        "t",
        "--partitions",
        "3",
        "--replication-factor",
        "3",
    ]);
    let parts = partitions(&c, "t");
    assert_eq!(
        leaders(&parts),
        preferred(&parts),
        "a new topic is led by its preferred replicas"
    );
    let victim = parts[1]["replicas"][0].as_u64().unwrap();

    let (producer, mut stdin) = c.spawn_yak_stdin(&["produce", "--topic", "t", "--acks", "all"]);
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let chunk: String = (i..i + 20).map(|j| format!("{j}\n")).collect();
                if stdin
                    .write_all(chunk.as_bytes())
                    .and_then(|()| stdin.flush())
                    .is_err()
                {
                    break;
                }
                i += 20;
                thread::sleep(Duration::from_millis(20));
            }
            i
        })
    };
    thread::sleep(Duration::from_millis(500));
    let rejoined = kill_and_wait_for_rejoin(&c, "t", victim);
    let home = wait_until(
        "leadership back on the preferred replicas",
        REBALANCE_BOUND,
        || {
            let parts = partitions(&c, "t");
            (leaders(&parts) == preferred(&parts)).then(Instant::now)
        },
    );
    println!("figure: leadership back on the preferred replicas {:.2} s after broker {victim} rejoined every ISR",
        (home - rejoined).as_secs_f64());
    let d = describe(&c, "t");
    assert_eq!(d["leader_imbalance"], 0, "{d}");
    assert!(
        d["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["on_preferred_leader"] == true),
        "{d}"
    );
    thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    let sent = feeder.join().unwrap();
    let out = producer.wait_output(Duration::from_secs(60));
    assert!(
        out.status.success(),
        "the producer rode through: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let read = c.yak_ok(&[
        "consume",
        "--topic",
        "t",
        "--from-beginning",
        "--format",
        "json",
        "--timeout-ms",
        "3000",
    ]);
    let values: HashSet<u64> = parse_records(read.as_bytes())
        .iter()
        .map(|r| r.value.parse().unwrap())
        .collect();
    let lost: Vec<u64> = (0..sent).filter(|i| !values.contains(i)).take(10).collect();
    assert!(lost.is_empty(), "{sent} sent, lost (first 10): {lost:?}");

    let events = c.yak_ok(&["cluster", "events", "--json"]);
    let moves: Vec<Value> = events
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["kind"] == "leader_elected" && e["reason"] == "preferred_leader")
        .collect();
    assert!(
        moves.iter().any(|e| e["new_leader"] == victim),
        "a preferred_leader election to {victim}: {events}"
    );
}

#[test]
fn given_auto_rebalance_off_when_asked_to_rebalance_leaders_should_move_leadership_home_and_say_so()
{
    let c = TestCluster::builder(3)
        .zookeeper("leader_rebalance_interval_ms", "0")
        .start();
    c.yak_ok(&[
        "topic",
        "create",
        "t",
        "--partitions",
        "3",
        "--replication-factor",
        "3",
    ]);
    let victim = partitions(&c, "t")[0]["replicas"][0].as_u64().unwrap();
    kill_and_wait_for_rejoin(&c, "t", victim);
    thread::sleep(Duration::from_millis(500));
    let d = describe(&c, "t");
    assert_eq!(
        d["leader_imbalance"], 1,
        "the rejoined broker leads nothing without a rebalance: {d}"
    );
    let p0 = &d["partitions"][0];
    assert_eq!(
        (
            p0["preferred_leader"].as_u64(),
            p0["on_preferred_leader"].as_bool()
        ),
        (Some(victim), Some(false)),
        "{d}"
    );
    let text = c.yak_ok(&["topic", "describe", "t"]);
    assert!(text.contains("leader imbalance: 1 of 3"), "{text}");

    let moved = c.yak_ok(&["cluster", "rebalance-leaders"]);
    assert!(
        moved.contains("t-0: leader ") && moved.contains(&format!("-> {victim} (preferred)")),
        "{moved}"
    );
    let d = describe(&c, "t");
    assert_eq!(d["leader_imbalance"], 0, "{d}");
    let again = c.yak_ok(&["cluster", "rebalance-leaders", "--json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&again).unwrap(),
        serde_json::json!([]),
        "nothing left to move"
    );
    let out = c.yak(&["cluster", "rebalance-leaders", "--topic", "nope"]);
    assert!(!out.status.success(), "an unknown topic is an error");
}
