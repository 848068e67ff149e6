//! Operating a live cluster (issue 16), end to end, with an acks=all
//! producer and a consumer group running: grow a topic's partitions, change
//! its settings, add a broker and rebalance onto it, remove a broker; a
//! kill -9 of the leader, ZooKeeper or the new broker in the middle of a
//! reassignment; and the bad input each command refuses. Everything
//! acknowledged is read back exactly once.

#![allow(clippy::unwrap_used)]

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;
use yak_tests::{parse_records, wait_until, TestCluster};

/// Longest a reassignment (a few hundred KB) may take, kills included.
const MOVE_BOUND: Duration = Duration::from_secs(30);

fn describe(c: &TestCluster, topic: &str) -> Value {
    serde_json::from_str(&c.yak_ok(&["topic", "describe", topic, "--json"])).unwrap()
}

fn partitions(c: &TestCluster, topic: &str) -> Vec<Value> {
    describe(c, topic)["partitions"].as_array().unwrap().clone()
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_u64().unwrap())
        .collect()
}

/// Replicas per broker over `topic`.
fn spread(c: &TestCluster, topic: &str) -> BTreeMap<u64, usize> {
    let mut per = BTreeMap::new();
    for p in partitions(c, topic) {
        for b in ids(&p["replicas"]) {
            *per.entry(b).or_default() += 1;
        }
    }
    per
}

/// Every partition of `topic` settled: no reassignment, ISR = replicas.
fn settled(c: &TestCluster, topic: &str) -> bool {
    partitions(c, topic).iter().all(|p| {
        let mut isr = ids(&p["isr"]);
        let mut replicas = ids(&p["replicas"]);
        isr.sort_unstable();
        replicas.sort_unstable();
        p["reassignment"].is_null() && isr == replicas
    })
}

fn broker_pid(c: &TestCluster, id: u64) -> u64 {
    c.status_json()["brokers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == id)
        .and_then(|b| b["pid"].as_u64())
        .unwrap()
}

/// An acks=all producer fed `prefix-N` values (key `N`, so they spread
/// over every partition, new ones too) until stopped.
struct Feeder {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<u64>,
    producer: yak_tests::Background,
}

impl Feeder {
    fn start(c: &TestCluster, topic: &str, prefix: &'static str) -> Feeder {
        let (producer, mut stdin) = c.spawn_yak_stdin(&[
            "produce",
            "--topic",
            topic,
            "--acks",
            "all",
            "--key-separator",
            ":",
        ]);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let chunk: String =
                        (i..i + 10).map(|j| format!("{j}:{prefix}-{j}\n")).collect();
                    if stdin
                        .write_all(chunk.as_bytes())
                        .and_then(|()| stdin.flush())
                        .is_err()
                    {
                        break;
                    }
                    i += 10;
                    thread::sleep(Duration::from_millis(20));
                }
                i
            })
        };
        Feeder {
            stop,
            thread,
            producer,
        }
    }

    /// Stops feeding; returns the lines sent, once the producer acknowledged all.
    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        let sent = self.thread.join().unwrap();
        let out = self.producer.wait_output(Duration::from_secs(60));
        assert!(
            out.status.success(),
            "producer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        sent
    }
}

/// Reads `topic` from the beginning and checks every `prefix-0..sent`
/// appears exactly once.
fn assert_exactly_once(c: &TestCluster, topic: &str, prefix: &str, sent: u64) {
    let out = c.yak(&[
        "consume",
        "--topic",
        topic,
        "--from-beginning",
        "--format",
        "json",
        "--timeout-ms",
        "2000",
    ]);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in parse_records(&out.stdout) {
        *seen.entry(r.value).or_default() += 1;
    }
    for i in 0..sent {
        let v = format!("{prefix}-{i}");
        assert_eq!(seen.get(&v).copied(), Some(1), "{v} read back once");
    }
    assert_eq!(seen.len() as u64, sent, "nothing else in {topic}");
}

#[test]
fn given_producer_and_group_when_growing_rebalancing_and_removing_brokers_should_lose_nothing() {
    let mut c = TestCluster::start(3);
    c.yak_ok(&[
        "topic",
        "create",
        "ops",
        "--partitions",
        "6",
        "--replication-factor",
        "3",
    ]);
    let feeder = Feeder::start(&c, "ops", "m");
    let group = c.spawn_yak(&[
        "consume",
        "--topic",
        "ops",
        "--group",
        "g",
        "--from-beginning",
        "--format",
        "json",
        "--timeout-ms",
        "3000",
    ]);
    thread::sleep(Duration::from_millis(500));

    // Grow 6 -> 9, and a shrink is refused.
    let out = c.yak_ok(&["topic", "alter", "ops", "--partitions", "9"]);
    assert!(out.contains("6 -> 9"), "{out}");
    assert_eq!(partitions(&c, "ops").len(), 9);
    wait_until(
        "the producer writing to the new partitions",
        Duration::from_secs(10),
        || {
            let status = c.status_json();
            let new = status["partitions"].as_array().unwrap().iter().filter(|p| {
                p["partition"].as_u64().unwrap() >= 6
                    && p["log_end_offset"].as_u64().unwrap_or(0) > 0
            });
            (new.count() == 3).then_some(())
        },
    );
    let shrink = c.yak(&["topic", "alter", "ops", "--partitions", "4"]);
    assert!(!shrink.status.success());
    assert!(
        String::from_utf8_lossy(&shrink.stderr).contains("can only grow"),
        "{}",
        String::from_utf8_lossy(&shrink.stderr)
    );

    // Settings: an override, with where each comes from.
    c.yak_ok(&["topic", "alter", "ops", "--retention-ms", "86400000"]);
    let configs = describe(&c, "ops")["configs"].clone();
    let source = |name: &str| {
        configs
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| {
                (
                    c["value"].as_str().unwrap().to_string(),
                    c["source"].as_str().unwrap().to_string(),
                )
            })
            .unwrap()
    };
    assert_eq!(source("retention.ms"), ("86400000".into(), "topic".into()));
    assert_eq!(source("min.insync.replicas").1, "cluster default");

    // A fourth broker, and the replicas spread onto it.
    let id = c.yak_ok(&["cluster", "add-broker"]);
    assert_eq!(id.trim(), "4");
    c.wait_for_alive_brokers(4, Duration::from_secs(15));
    let plan: Value =
        serde_json::from_str(&c.yak_ok(&["cluster", "rebalance", "--dry-run", "--json"])).unwrap();
    assert!(!plan["moves"].as_array().unwrap().is_empty(), "{plan}");
    c.yak_ok(&["cluster", "rebalance"]);
    wait_until("every ISR full after the rebalance", MOVE_BOUND, || {
        settled(&c, "ops").then_some(())
    });
    let per = spread(&c, "ops");
    assert_eq!(per.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    assert!(
        per.values().all(|n| (6..=7).contains(n)),
        "27 replicas spread {per:?}"
    );

    // Broker 2 drained and gone.
    let out = c.yak_ok(&["cluster", "remove-broker", "2"]);
    assert!(out.contains("removed broker 2"), "{out}");
    wait_until("every ISR full without broker 2", MOVE_BOUND, || {
        settled(&c, "ops").then_some(())
    });
    let per = spread(&c, "ops");
    assert_eq!(per, BTreeMap::from([(1, 9), (3, 9), (4, 9)]));
    wait_until("broker 2 no longer listed", Duration::from_secs(5), || {
        let brokers = c.status_json()["brokers"].clone();
        (!brokers.as_array().unwrap().iter().any(|b| b["id"] == 2)).then_some(())
    });

    let sent = feeder.finish();
    assert!(sent > 100, "{sent} sent");
    let grouped = parse_records(&group.wait_output(Duration::from_secs(60)).stdout);
    assert!(
        grouped.iter().any(|r| r.partition >= 6),
        "the group reads the new partitions"
    );
    assert_exactly_once(&c, "ops", "m", sent);
}

/// Which process a kill -9 hits in the middle of a reassignment.
#[derive(Debug)]
enum Victim {
    /// The partition's leader, which the move takes leadership from.
    Leader,
    /// ZooKeeper, which drives the steps.
    ZooKeeper,
    /// Broker 4, the replica being added.
    NewBroker,
}

impl Victim {
    fn pid(&self, c: &TestCluster, partition: &Value) -> u64 {
        match self {
            Victim::Leader => broker_pid(c, partition["leader"].as_u64().unwrap()),
            Victim::ZooKeeper => c.zookeeper_pid().unwrap() as u64,
            Victim::NewBroker => broker_pid(c, 4),
        }
    }
}

#[test]
fn given_kill_9_mid_reassignment_when_leader_zookeeper_or_new_broker_dies_should_complete_and_lose_nothing(
) {
    let mut c = TestCluster::start(3);
    c.yak_ok(&[
        "topic",
        "create",
        "mv",
        "--partitions",
        "3",
        "--replication-factor",
        "3",
    ]);
    let feeder = Feeder::start(&c, "mv", "k");
    thread::sleep(Duration::from_millis(1500));
    assert_eq!(c.yak_ok(&["cluster", "add-broker"]).trim(), "4");
    c.wait_for_alive_brokers(4, Duration::from_secs(15));
    let victims = [Victim::Leader, Victim::ZooKeeper, Victim::NewBroker];
    for (partition, victim_kind) in victims.iter().enumerate() {
        let who = format!("{victim_kind:?}");
        let p = partitions(&c, "mv")[partition].clone();
        let leader = p["leader"].as_u64().unwrap();
        // Off the leader, onto broker 4, slowly enough to be caught in the middle.
        let target: Vec<u64> = std::iter::once(4)
            .chain(ids(&p["replicas"]).into_iter().filter(|b| *b != leader))
            .collect();
        let list = target
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let victim = victim_kind.pid(&c, &p);
        c.yak_ok(&[
            "topic",
            "reassign",
            "mv",
            "--partition",
            &partition.to_string(),
            "--replicas",
            &list,
            "--throttle-bytes-per-sec",
            "20000",
            "--no-wait",
        ]);
        let moving = &partitions(&c, "mv")[partition];
        assert!(!moving["reassignment"].is_null(), "{who}: {moving}");
        kill(Pid::from_raw(victim as i32), Signal::SIGKILL).unwrap();
        wait_until(
            &format!("the move to {list} to finish after killing the {who}"),
            MOVE_BOUND,
            || {
                let p = partitions(&c, "mv")[partition].clone();
                let mut isr = ids(&p["isr"]);
                isr.sort_unstable();
                let mut want = target.clone();
                want.sort_unstable();
                (p["reassignment"].is_null() && ids(&p["replicas"]) == target && isr == want)
                    .then_some(())
            },
        );
        assert_ne!(
            partitions(&c, "mv")[partition]["leader"],
            leader,
            "{who}: the leader moved onto the target"
        );
        wait_until("the moved-away replica deleted", MOVE_BOUND, || {
            let dir = c.dir().join(format!("data/broker-{leader}/mv-{partition}"));
            (!dir.exists()).then_some(())
        });
    }
    let sent = feeder.finish();
    assert_exactly_once(&c, "mv", "k", sent);
}

#[test]
fn given_bad_input_when_operating_should_refuse_with_clear_errors() {
    let c = TestCluster::start(3);
    c.yak_ok(&[
        "topic",
        "create",
        "t",
        "--partitions",
        "2",
        "--replication-factor",
        "3",
    ]);
    let refused = |args: &[&str], needle: &str| {
        let out = c.yak(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(err.contains(needle), "{args:?}: {err}");
    };
    refused(
        &["topic", "alter", "nope", "--partitions", "3"],
        "does not exist",
    );
    refused(
        &["topic", "alter", "t", "--partitions", "1"],
        "can only grow",
    );
    refused(
        &["topic", "alter", "t", "--min-insync-replicas", "4"],
        "min.insync.replicas",
    );
    refused(
        &["topic", "alter", "t", "--delete-config", "cleanup.policy"],
        "unknown setting",
    );
    refused(&["topic", "alter", "t"], "nothing to alter");
    refused(
        &[
            "topic",
            "reassign",
            "nope",
            "--partition",
            "0",
            "--replicas",
            "1",
        ],
        "does not exist",
    );
    refused(
        &[
            "topic",
            "reassign",
            "t",
            "--partition",
            "5",
            "--replicas",
            "1",
        ],
        "no partition 5",
    );
    refused(
        &[
            "topic",
            "reassign",
            "t",
            "--partition",
            "0",
            "--replicas",
            "1,1,2",
        ],
        "distinct",
    );
    refused(
        &[
            "topic",
            "reassign",
            "t",
            "--partition",
            "0",
            "--replicas",
            "1,2,9",
        ],
        "broker 9",
    );
    refused(
        &[
            "topic",
            "reassign",
            "t",
            "--partition",
            "0",
            "--replicas",
            "1,x",
        ],
        "not a broker id",
    );
    refused(&["cluster", "remove-broker", "9"], "not registered");
    refused(&["cluster", "remove-broker", "1"], "cannot be held");
    // Nothing changed.
    let p = partitions(&c, "t");
    assert_eq!(p.len(), 2);
    assert!(p
        .iter()
        .all(|p| p["reassignment"].is_null() && ids(&p["replicas"]).len() == 3));
}

#[test]
fn given_data_when_retention_and_segment_size_are_altered_should_apply_them_at_once() {
    let c = TestCluster::start(1);
    c.yak_ok(&[
        "topic",
        "create",
        "ret",
        "--partitions",
        "1",
        "--replication-factor",
        "1",
    ]);
    c.yak_ok(&["topic", "alter", "ret", "--segment-bytes", "1024"]);
    let lines: String = (0..300)
        .map(|i| format!("r-{i:05}-{}\n", "x".repeat(40)))
        .collect();
    c.yak_stdin_ok(
        &[
            "produce",
            "--topic",
            "ret",
            "--acks",
            "all",
            "--linger-ms",
            "0",
            "--batch-bytes",
            "200",
        ],
        &lines,
    );
    let log_start = || {
        c.status_json()["partitions"][0]["log_start_offset"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(log_start(), 0, "nothing deleted before retention is set");
    c.yak_ok(&["topic", "alter", "ret", "--retention-bytes", "2048"]);
    let start = wait_until("retention.bytes applied", Duration::from_secs(10), || {
        let s = log_start();
        (s > 0).then_some(s)
    });
    assert!(start > 200, "only about 2 KiB kept: log start {start}");
    let out = c.yak_ok(&[
        "topic",
        "alter",
        "ret",
        "--delete-config",
        "retention.bytes",
    ]);
    assert!(
        out.contains("retention.bytes = broker --retention-bytes"),
        "{out}"
    );
    assert!(out.contains("segment.bytes = 1024 (topic)"), "{out}");
}

#[test]
fn given_added_broker_when_supervisor_restarts_with_the_same_config_should_start_it_again() {
    let mut c = TestCluster::start(3);
    assert_eq!(c.yak_ok(&["cluster", "add-broker"]).trim(), "4");
    c.wait_for_alive_brokers(4, MOVE_BOUND);
    c.yak_ok(&[
        "topic",
        "create",
        "kept",
        "--partitions",
        "1",
        "--replication-factor",
        "2",
    ]);
    c.yak_stdin_ok(&["produce", "--topic", "kept"], "a\nb\nc\n");
    c.yak_ok(&[
        "topic",
        "reassign",
        "kept",
        "--partition",
        "0",
        "--replicas",
        "4,1",
    ]);
    // The config still says 3 brokers; the data dir's broker set says 4.
    c.restart_supervisor(4);
    let ids: Vec<u64> = c.status_json()["brokers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["alive"] == true)
        .map(|b| b["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2, 3, 4], "the added broker is back");
    wait_until("broker 4 to lead kept-0 again", MOVE_BOUND, || {
        (partitions(&c, "kept")[0]["leader"] == 4).then_some(())
    });
    let out = c.yak_ok(&[
        "consume",
        "--topic",
        "kept",
        "--from-beginning",
        "--timeout-ms",
        "1500",
    ]);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["a", "b", "c"]);
}

#[test]
fn given_throttled_move_when_cancelled_and_zookeeper_killed_should_stay_on_the_original_replicas() {
    let c = TestCluster::start(3);
    c.yak_ok(&[
        "topic",
        "create",
        "back",
        "--partitions",
        "1",
        "--replication-factor",
        "2",
    ]);
    let lines: String = (0..300).map(|i| format!("back-{i:0>200}\n")).collect();
    c.yak_stdin_ok(&["produce", "--topic", "back"], &lines);
    let before = ids(&partitions(&c, "back")[0]["replicas"]);
    let spare = (1..=3u64).find(|b| !before.contains(b)).unwrap();
    let target = format!("{spare},{}", before[1]);
    c.yak_ok(&[
        "topic",
        "reassign",
        "back",
        "--partition",
        "0",
        "--replicas",
        &target,
        "--throttle-bytes-per-sec",
        "1000",
        "--no-wait",
    ]);
    assert!(
        !partitions(&c, "back")[0]["reassignment"].is_null(),
        "in progress"
    );
    let out = c.yak_ok(&["topic", "reassign", "back", "--partition", "0", "--cancel"]);
    assert!(out.contains("cancelled"), "{out}");
    let err = c.yak(&["topic", "reassign", "back", "--partition", "0", "--cancel"]);
    assert!(!err.status.success(), "nothing left to cancel");
    assert!(String::from_utf8_lossy(&err.stderr).contains("not being reassigned"));
    // The cancel is one fsynced record: a ZooKeeper killed right after replays it.
    let zk = c.zookeeper_pid().unwrap();
    kill(Pid::from_raw(zk), Signal::SIGKILL).unwrap();
    wait_until("ZooKeeper back", MOVE_BOUND, || {
        c.zookeeper_pid()
            .filter(|p| *p != zk)
            .and_then(|_| c.try_status_json())
    });
    let p = partitions(&c, "back")[0].clone();
    assert_eq!(ids(&p["replicas"]), before, "original replicas, in order");
    assert!(p["reassignment"].is_null());
    let events = c.yak_ok(&["cluster", "events"]);
    assert!(events.contains("back-0 reassignment to"), "{events}");
    wait_until("settled", MOVE_BOUND, || settled(&c, "back").then_some(()));
    let copy = c.dir().join(format!("data/broker-{spare}/back-0"));
    wait_until("the cancelled copy to go", MOVE_BOUND, || {
        (!copy.exists()).then_some(())
    });
    let out = c.yak_ok(&[
        "consume",
        "--topic",
        "back",
        "--from-beginning",
        "--timeout-ms",
        "1500",
    ]);
    assert_eq!(out.lines().count(), 300, "nothing lost");
}
