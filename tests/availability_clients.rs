//! Clients riding through faults (issue 12, client side): a produce started
//! while ZooKeeper is dead and being restarted, a produce past a paused
//! (SIGSTOPped) partition leader, and a group member whose stdout is
//! blocked longer than its session timeout. Each reads the data back and
//! checks every message is there exactly once.
//!
//! Two ignored tests are the measurements in BENCHMARKS.md (run by hand,
//! with `--ignored --nocapture`): produce time past a paused leader (median
//! of 3) and the longest gap between acknowledgements while a random
//! leader is killed every 1.5 s for 40 s.

#![allow(clippy::unwrap_used)]

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use yak::client::{Producer, ProducerConfig};
use yak_tests::{assert_success, parse_records, wait_until, yak_node_bin, Rec, TestCluster};

const WAIT: Duration = Duration::from_secs(30);

/// Processes stopped with SIGSTOP; resumed on drop, on every exit path.
struct Paused(Vec<i32>);

impl Paused {
    fn stop(pids: &[i32]) -> Paused {
        for &p in pids {
            kill(Pid::from_raw(p), Signal::SIGSTOP).unwrap();
        }
        Paused(pids.to_vec())
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        for &p in &self.0 {
            let _ = kill(Pid::from_raw(p), Signal::SIGCONT);
        }
    }
}

/// Creates a 3-replica topic and waits until every partition has 3 in-sync replicas.
fn create_topic(c: &TestCluster, name: &str, partitions: u32) -> Value {
    c.yak_ok(&[
        "topic",
        "create",
        name,
        "--partitions",
        &partitions.to_string(),
        "--replication-factor",
        "3",
    ]);
    wait_until("every replica in sync", WAIT, || {
        let s = c.try_status_json()?;
        let ps: Vec<&Value> = s["partitions"]
            .as_array()?
            .iter()
            .filter(|p| p["topic"] == name)
            .collect();
        let synced = ps.len() == partitions as usize
            && ps
                .iter()
                .all(|p| p["isr"].as_array().is_some_and(|i| i.len() == 3));
        synced.then_some(s)
    })
}

/// Leader broker id of `topic`'s partition `p`.
fn leader_of(s: &Value, topic: &str, p: u64) -> u64 {
    let part = s["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["topic"] == topic && x["partition"] == p)
        .unwrap();
    part["leader"]
        .as_u64()
        .unwrap_or_else(|| panic!("no leader: {part}"))
}

/// The pid `cluster status` lists for broker `id`.
fn broker_pid(s: &Value, id: u64) -> i32 {
    let b = s["brokers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == id)
        .unwrap();
    i32::try_from(b["pid"].as_i64().unwrap()).unwrap()
}

/// Everything in `topic`, from the beginning.
fn consume_all(c: &TestCluster, topic: &str) -> Vec<Rec> {
    let out = c.yak_ok(&[
        "consume",
        "--topic",
        topic,
        "--from-beginning",
        "--format",
        "json",
        "--timeout-ms",
        "3000",
    ]);
    parse_records(out.as_bytes())
}

/// Asserts `recs` holds `m-0`..`m-(n-1)` each exactly once.
fn assert_each_once(recs: &[Rec], n: usize, what: &str) {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for r in recs {
        *seen.entry(r.value.as_str()).or_default() += 1;
    }
    let dups: Vec<_> = seen.iter().filter(|(_, k)| **k > 1).collect();
    assert!(dups.is_empty(), "{what}: read more than once: {dups:?}");
    let missing: Vec<String> = (0..n)
        .map(|i| format!("m-{i}"))
        .filter(|v| !seen.contains_key(v.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{what}: {} of {n} messages missing, first {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(recs.len(), n, "{what}: nothing else in the topic");
}

fn messages(n: usize) -> String {
    (0..n).map(|i| format!("m-{i}\n")).collect()
}

#[test]
fn given_zookeeper_killed_when_produce_starts_should_wait_for_its_restart_and_exit_0() {
    let c = TestCluster::start(3);
    create_topic(&c, "zk", 3);
    let supervisor = i32::try_from(c.supervisor_pid().unwrap()).unwrap();
    let zookeeper = c.zookeeper_pid().unwrap();
    // Hold the supervisor for a moment so the produce surely starts while
    // ZooKeeper is dead (its socket file left behind, refusing connections).
    let held = Paused::stop(&[supervisor]);
    kill(Pid::from_raw(zookeeper), Signal::SIGKILL).unwrap();
    wait_until("ZooKeeper gone", WAIT, || {
        c.zookeeper_pid().is_none().then_some(())
    });
    let (producer, mut stdin) =
        c.spawn_yak_stdin(&["produce", "--topic", "zk", "--delivery-timeout-ms", "15000"]);
    std::io::Write::write_all(&mut stdin, messages(300).as_bytes()).unwrap();
    drop(stdin);
    thread::sleep(Duration::from_millis(500));
    drop(held);
    let out = producer.wait_output(WAIT);
    assert_success(&out, "produce while ZooKeeper restarts");
    assert!(
        c.zookeeper_pid().is_some_and(|p| p != zookeeper),
        "a new ZooKeeper runs"
    );
    assert_each_once(&consume_all(&c, "zk"), 300, "after a ZooKeeper restart");
}

#[test]
fn given_no_cluster_when_producing_should_fail_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = yak_tests::run_yak_node(
        &[
            "produce",
            "--topic",
            "t",
            "--message",
            "x",
            "--cluster",
            &dir.path().to_string_lossy(),
        ],
        None,
        WAIT,
    );
    assert!(!out.status.success(), "no cluster, no success");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "no wait without a cluster: {:?}",
        started.elapsed()
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no YaK cluster at") && err.contains("zookeeper.sock"),
        "{err}"
    );
}

/// Produces 200 acks=all messages to a 1-partition topic whose leader is
/// SIGSTOPped just before; returns the seconds the produce took.
fn produce_past_paused_leader(c: &TestCluster, topic: &str) -> f64 {
    let s = create_topic(c, topic, 1);
    let leader = leader_of(&s, topic, 0);
    let paused = Paused::stop(&[broker_pid(&s, leader)]);
    let started = Instant::now();
    let out = c.yak_stdin(
        &["produce", "--topic", topic, "--acks", "all"],
        &messages(200),
    );
    let secs = started.elapsed().as_secs_f64();
    drop(paused);
    assert_success(&out, "produce past a paused leader");
    let after = c.status_json();
    assert_ne!(
        leader_of(&after, topic, 0),
        leader,
        "a new leader was elected"
    );
    assert_each_once(&consume_all(c, topic), 200, "past a paused leader");
    secs
}

#[test]
fn given_partition_leader_sigstopped_when_producing_200_acks_all_should_finish_within_5s_exactly_once(
) {
    let c = TestCluster::start(3);
    let secs = produce_past_paused_leader(&c, "paused");
    println!("produce of 200 acks=all messages past a paused leader: {secs:.2} s");
    assert!(secs < 5.0, "took {secs:.2} s");
}

#[test]
#[ignore = "measurement for BENCHMARKS.md; run with --ignored --nocapture"]
fn measure_produce_past_paused_leader_median_of_3() {
    let mut runs: Vec<f64> = (0..3)
        .map(|i| {
            let c = TestCluster::start(3);
            produce_past_paused_leader(&c, &format!("paused-{i}"))
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    println!(
        "produce past a paused leader: runs {runs:.2?} s, median {:.2} s",
        runs[1]
    );
}

#[test]
#[ignore = "measurement for BENCHMARKS.md; run with --ignored --nocapture"]
fn measure_longest_ack_gap_while_killing_a_random_leader_every_1500ms_for_40s() {
    const RUN: Duration = Duration::from_secs(40);
    let mut c = TestCluster::start(3);
    create_topic(&c, "gaps", 3);
    let acks: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let dir = c.run_dir().to_path_buf();
    let (acks2, stop2) = (Arc::clone(&acks), Arc::clone(&stop));
    let producer = thread::spawn(move || {
        let config = ProducerConfig {
            delivery_timeout: Duration::from_secs(30),
            ..ProducerConfig::default()
        };
        let mut p = Producer::connect(&dir, config).unwrap();
        p.set_ack_observer(Box::new(move |_, _| {
            acks2.lock().unwrap().push(Instant::now())
        }));
        let mut n = 0u64;
        while !stop2.load(Ordering::Relaxed) {
            // 500 messages a second over 3 partitions.
            p.send(
                "gaps",
                Some(n.to_string().as_bytes()),
                format!("m-{n}").as_bytes(),
            )
            .unwrap();
            n += 1;
            p.poll().unwrap();
            thread::sleep(Duration::from_millis(2));
        }
        (n, p.flush().unwrap())
    });
    let started = Instant::now();
    let mut kills = 0;
    let mut seed = u64::from(std::process::id());
    while started.elapsed() < RUN {
        thread::sleep(Duration::from_millis(1500));
        let Some(s) = c.try_status_json() else {
            continue;
        };
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let partition = (seed >> 33) % 3;
        let Some(leader) = s["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["topic"] == "gaps" && p["partition"] == partition)
            .and_then(|p| p["leader"].as_u64())
        else {
            continue;
        };
        let _ = kill(Pid::from_raw(broker_pid(&s, leader)), Signal::SIGKILL);
        kills += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let (sent, report) = producer.join().unwrap();
    let acks = acks.lock().unwrap();
    let gap = acks
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    c.wait_for_alive_brokers(3, WAIT);
    let read: BTreeSet<String> = consume_all(&c, "gaps")
        .into_iter()
        .map(|r| r.value)
        .collect();
    println!(
        "{kills} leader kills in {:.0} s: {sent} sent, {} acknowledged, {} failed, {} distinct read back; \
         longest gap between acknowledgements {:.2} s",
        RUN.as_secs_f64(),
        report.acked,
        report.failed,
        read.len(),
        gap.as_secs_f64()
    );
    assert!(
        read.len() as u64 >= report.acked,
        "acknowledged messages missing: {} read, {} acknowledged",
        read.len(),
        report.acked
    );
    if report.failed > 0 {
        println!("first failure: {:?}", report.first_error);
    }
}

/// `group describe --json`.
fn describe(c: &TestCluster, group: &str) -> Value {
    serde_json::from_str(&c.yak_ok(&["group", "describe", group, "--json"])).unwrap()
}

/// A group member of `slow` whose stdout nobody reads until [`BlockedMember::drain`].
struct BlockedMember {
    child: std::process::Child,
    stderr_path: std::path::PathBuf,
}

/// Messages in `slow`: ~1 MB of output, far more than a pipe holds.
const SLOW_MESSAGES: usize = 4000;

impl BlockedMember {
    /// Fills `slow`, starts the member with `extra` flags and waits until it
    /// holds both partitions; returns it with the group's generation.
    fn start(c: &TestCluster, extra: &[&str]) -> (BlockedMember, Value) {
        create_topic(c, "slow", 2);
        let pad = ".".repeat(200);
        let input: String = (0..SLOW_MESSAGES)
            .map(|i| format!("m-{i}{pad}\n"))
            .collect();
        c.yak_stdin_ok(&["produce", "--topic", "slow"], &input);
        let run = c.run_dir().to_string_lossy().into_owned();
        let stderr_path = c.dir().join("member.stderr");
        let child = Command::new(yak_node_bin())
            .args([
                "consume",
                "--topic",
                "slow",
                "--group",
                "g",
                "--from-beginning",
                "--client-id",
                "blocked",
            ])
            .args(extra)
            .args(["--cluster", &run])
            .env_remove("YAK_CLUSTER")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap();
        let mut m = BlockedMember { child, stderr_path };
        let stable = wait_until("the member holds both partitions", WAIT, || {
            assert!(
                m.child.try_wait().unwrap().is_none(),
                "the member exited early: {}",
                m.log()
            );
            let out = c.yak(&["group", "describe", "g", "--json"]);
            let d: Value = serde_json::from_slice(&out.stdout).ok()?;
            let parts = d["members"].as_array()?.first()?["partitions"]
                .as_array()?
                .len();
            (d["state"] == "stable" && parts == 2).then_some(d)
        });
        (m, stable["generation"].clone())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Reads its stdout until it exits (0); returns the lines printed.
    fn drain(mut self) -> Vec<String> {
        let mut stdout = self.child.stdout.take().unwrap();
        let reader = thread::spawn(move || {
            let mut out = String::new();
            stdout.read_to_string(&mut out).unwrap();
            out
        });
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "the member did not finish: {}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "member exit: {status}: {}", self.log());
        reader.join().unwrap().lines().map(str::to_string).collect()
    }
}

impl Drop for BlockedMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn given_member_whose_stdout_is_blocked_6s_when_session_is_2s_should_keep_its_partitions() {
    let c = TestCluster::builder(3)
        .zookeeper("group_session_timeout_ms", "2000")
        .start();
    let (member, generation) =
        BlockedMember::start(&c, &["--max-messages", &SLOW_MESSAGES.to_string()]);
    // Nobody reads its stdout: the member is stuck in a write for 6 s.
    thread::sleep(Duration::from_secs(6));
    let d = describe(&c, "g");
    let members = d["members"].as_array().unwrap();
    assert_eq!(
        members.len(),
        1,
        "the blocked member is still in the group: {d}\n{}",
        member.log()
    );
    assert_eq!(members[0]["client"], "blocked", "{d}");
    assert_eq!(
        members[0]["partitions"].as_array().unwrap().len(),
        2,
        "it keeps both partitions: {d}"
    );
    assert_eq!(d["generation"], generation, "no rebalance happened: {d}");
    let lines = member.drain();
    let distinct: BTreeSet<&String> = lines.iter().collect();
    assert_eq!(
        (lines.len(), distinct.len()),
        (SLOW_MESSAGES, SLOW_MESSAGES),
        "every message printed once"
    );
}

#[test]
fn given_member_blocked_past_max_poll_interval_when_unblocked_should_have_left_then_rejoin_and_read_everything(
) {
    let c = TestCluster::builder(3)
        .zookeeper("group_session_timeout_ms", "2000")
        .start();
    let (member, generation) = BlockedMember::start(
        &c,
        &["--max-poll-interval-ms", "1000", "--timeout-ms", "3000"],
    );
    // Blocked past its 1 s max poll interval: its heartbeat thread leaves the group for it.
    wait_until(
        "the blocked member left the group",
        Duration::from_secs(10),
        || {
            let out = c.yak(&["group", "describe", "g", "--json"]);
            if !out.status.success() {
                // A group with no member and no committed offset is forgotten.
                return Some(());
            }
            let d: Value = serde_json::from_slice(&out.stdout).unwrap();
            (d["generation"] != generation && d["members"].as_array()?.is_empty()).then_some(())
        },
    );
    // Read again, it rejoins and reads on from the group's committed offsets
    // (at least once: what it printed since its last commit comes again).
    let lines = member.drain();
    let distinct: BTreeSet<&String> = lines.iter().collect();
    assert_eq!(
        distinct.len(),
        SLOW_MESSAGES,
        "every message printed at least once"
    );
}
