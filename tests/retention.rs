//! Retention through a real cluster: by size and by time, per topic over
//! cluster defaults; the earliest offset moves up, consumers reading from
//! the beginning start there, an explicit offset below it is a clear error,
//! and a follower left behind the leader's log start starts over there.
//! Every wait is bounded; nothing here asserts how long anything takes.

#![allow(clippy::unwrap_used)]

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use yak_tests::{wait_until, TestCluster};

/// Long enough for several retention passes (one a second) on a slow machine.
const RETENTION_WAIT: Duration = Duration::from_secs(60);

/// `count` messages of about 60 bytes, one a line, numbered from `from`.
fn lines(from: usize, count: usize) -> String {
    (from..from + count)
        .map(|i| format!("message-{i:06}-{}\n", "x".repeat(40)))
        .collect()
}

/// Produces in batches of at most 1 KiB, so 4 KiB segments roll often.
fn produce(c: &TestCluster, topic: &str, from: usize, count: usize) {
    c.yak_stdin_ok(
        &[
            "produce",
            "--topic",
            topic,
            "--batch-bytes",
            "1024",
            "--acks",
            "all",
        ],
        &lines(from, count),
    );
}

/// The `cluster status --json` entry of partition 0 of `topic`.
fn partition0(c: &TestCluster, topic: &str) -> Value {
    let status = c.status_json();
    status["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["topic"] == topic && p["partition"] == 0)
        .unwrap_or_else(|| panic!("no {topic}-0 in {status}"))
        .clone()
}

fn log_start(c: &TestCluster, topic: &str) -> Option<u64> {
    partition0(c, topic)["log_start_offset"].as_u64()
}

/// Segment files of `topic`-0 on `broker`.
fn segments(c: &TestCluster, broker: u64, topic: &str) -> Vec<PathBuf> {
    let dir = c
        .dir()
        .join("data")
        .join(format!("broker-{broker}"))
        .join(format!("{topic}-0"));
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "log"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn base_offset(segment: &Path) -> u64 {
    segment
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Offsets and values of `consume --format json` output.
fn consumed(stdout: &str) -> Vec<(u64, String)> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            (
                v["offset"].as_u64().unwrap(),
                v["value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn replicas(p: &Value) -> Vec<u64> {
    p["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_u64().unwrap())
        .collect()
}

#[test]
fn given_retention_bytes_when_log_grows_should_delete_old_segments_and_move_earliest_offset() {
    const N: usize = 3_000;
    const RETAIN: u64 = 16_384;
    let c = TestCluster::builder(3)
        .broker("segment_bytes", "4096")
        .start();
    let retain = RETAIN.to_string();
    c.yak_ok(&[
        "topic",
        "create",
        "bounded",
        "--partitions",
        "1",
        "--replication-factor",
        "3",
        "--retention-bytes",
        &retain,
    ]);
    let described: Value =
        serde_json::from_str(&c.yak_ok(&["topic", "describe", "bounded", "--json"])).unwrap();
    assert_eq!(described["retention_bytes"], RETAIN, "{described}");
    assert_eq!(described["retention_ms"], Value::Null, "{described}");
    assert!(c
        .yak_ok(&["topic", "describe", "bounded"])
        .contains("retention.bytes: 16384"));

    produce(&c, "bounded", 0, N);
    let start = wait_until("the earliest offset to move up", RETENTION_WAIT, || {
        log_start(&c, "bounded").filter(|s| *s > 0)
    });
    // Every replica (leaders and followers alike) keeps its disk bounded:
    // at least RETAIN bytes, and less than RETAIN once its oldest segment
    // is left out.
    for broker in replicas(&partition0(&c, "bounded")) {
        wait_until(
            &format!("broker {broker} to apply retention"),
            RETENTION_WAIT,
            || {
                let segs = segments(&c, broker, "bounded");
                let sizes: Vec<u64> = segs
                    .iter()
                    .map(|s| std::fs::metadata(s).map_or(0, |m| m.len()))
                    .collect();
                let total: u64 = sizes.iter().sum();
                (segs.len() >= 2
                    && base_offset(&segs[0]) > 0
                    && total >= RETAIN
                    && total - sizes[0] < RETAIN)
                    .then_some(())
            },
        );
    }

    let n = N.to_string();
    let all = consumed(&c.yak_ok(&[
        "consume",
        "--topic",
        "bounded",
        "--from-beginning",
        "--format",
        "json",
        "--max-messages",
        &n,
        "--timeout-ms",
        "3000",
    ]));
    let (first, _) = all
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("nothing consumed from the beginning"));
    assert!(
        first >= start,
        "from the beginning starts at the earliest offset {start}, got {first}"
    );
    assert!(all.len() < N, "old messages are gone");
    let offsets: Vec<u64> = all.iter().map(|(o, _)| *o).collect();
    assert_eq!(
        offsets,
        (first..N as u64).collect::<Vec<_>>(),
        "the rest, contiguous, to the end"
    );
    assert_eq!(
        all.last().unwrap().1,
        lines(N - 1, 1).trim_end(),
        "the newest message is kept"
    );

    let out = c.yak(&[
        "consume",
        "--topic",
        "bounded",
        "--partition",
        "0",
        "--offset",
        "0",
        "--timeout-ms",
        "2000",
    ]);
    assert!(
        !out.status.success(),
        "reading below the earliest offset fails"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("below its earliest offset") && err.contains("--from-beginning"),
        "stderr: {err}"
    );
    assert!(
        out.stdout.is_empty(),
        "nothing printed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn given_retention_ms_when_segments_age_should_delete_them_and_honour_topic_overrides() {
    const N: usize = 600;
    // Cluster default: one second. The `kept` topic overrides it with a day.
    let c = TestCluster::builder(1)
        .broker("segment_bytes", "4096")
        .broker("retention_ms", "1000")
        .start();
    c.yak_ok(&["topic", "create", "aging", "--partitions", "1"]);
    c.yak_ok(&[
        "topic",
        "create",
        "kept",
        "--partitions",
        "1",
        "--retention-ms",
        "86400000",
    ]);
    produce(&c, "kept", 0, N);
    produce(&c, "aging", 0, N);
    assert!(
        segments(&c, 1, "kept").len() > 3,
        "the logs rolled several segments"
    );

    // Soon after a second, every closed segment has aged out; the active one stays.
    wait_until(
        "old segments of 'aging' to be deleted",
        RETENTION_WAIT,
        || {
            let segs = segments(&c, 1, "aging");
            (segs.len() == 1 && base_offset(&segs[0]) > 0).then_some(())
        },
    );
    let start = log_start(&c, "aging").unwrap();
    assert!(start > 0 && start < N as u64, "earliest offset {start}");
    let rest = consumed(&c.yak_ok(&[
        "consume",
        "--topic",
        "aging",
        "--from-beginning",
        "--format",
        "json",
        "--timeout-ms",
        "2000",
    ]));
    assert_eq!(
        rest.first().map(|(o, _)| *o),
        Some(start),
        "from the beginning starts at the earliest offset"
    );
    assert_eq!(rest.last().map(|(o, _)| *o), Some(N as u64 - 1));

    // Retention has run over every partition since: the override kept everything.
    assert_eq!(log_start(&c, "kept"), Some(0));
    let described: Value =
        serde_json::from_str(&c.yak_ok(&["topic", "describe", "kept", "--json"])).unwrap();
    assert_eq!(described["retention_ms"], 86_400_000u64, "{described}");
    let n = N.to_string();
    let kept = consumed(&c.yak_ok(&[
        "consume",
        "--topic",
        "kept",
        "--from-beginning",
        "--format",
        "json",
        "--max-messages",
        &n,
        "--timeout-ms",
        "3000",
    ]));
    assert_eq!(kept.len(), N);
}

#[test]
fn given_follower_behind_leader_log_start_when_it_resumes_should_restart_at_leader_log_start() {
    let c = TestCluster::builder(3)
        .broker("segment_bytes", "4096")
        .start();
    c.yak_ok(&[
        "topic",
        "create",
        "gap",
        "--partitions",
        "1",
        "--replication-factor",
        "3",
        "--retention-bytes",
        "8192",
    ]);
    produce(&c, "gap", 0, 10);
    let p = partition0(&c, "gap");
    let leader = p["leader"].as_u64().unwrap();
    let follower = *replicas(&p).iter().find(|r| **r != leader).unwrap();
    let status = c.status_json();
    let pid = status["brokers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == follower)
        .unwrap()["pid"]
        .as_i64()
        .unwrap();
    let pid = Pid::from_raw(i32::try_from(pid).unwrap());
    let stuck_at = segments(&c, follower, "gap").len();
    assert_eq!(stuck_at, 1, "the follower holds one segment");

    kill(pid, Signal::SIGSTOP).unwrap();
    let resumed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_until(
            "the paused follower to leave the ISR",
            RETENTION_WAIT,
            || (partition0(&c, "gap")["isr"].as_array().unwrap().len() == 2).then_some(()),
        );
        produce(&c, "gap", 10, 2_000);
        wait_until(
            "the leader's earliest offset to move up",
            RETENTION_WAIT,
            || log_start(&c, "gap").filter(|s| *s > 10),
        )
    }));
    kill(pid, Signal::SIGCONT).unwrap();
    let leader_start = resumed.unwrap_or_else(|e| std::panic::resume_unwind(e));

    // The follower fetches below the leader's log start, empties its log,
    // restarts there and catches up into the ISR again.
    wait_until(
        "the follower to catch up and rejoin the ISR",
        RETENTION_WAIT,
        || {
            let p = partition0(&c, "gap");
            let leos: Vec<Option<u64>> = p["replica_log_end_offsets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["log_end_offset"].as_u64())
                .collect();
            (p["isr"].as_array().unwrap().len() == 3 && leos.iter().all(|l| *l == Some(2_010)))
                .then_some(())
        },
    );
    let segs = segments(&c, follower, "gap");
    assert!(
        base_offset(&segs[0]) >= leader_start,
        "the follower's log starts at or after {leader_start}: {segs:?}"
    );
    let n = 2_010.to_string();
    let all = consumed(&c.yak_ok(&[
        "consume",
        "--topic",
        "gap",
        "--from-beginning",
        "--format",
        "json",
        "--max-messages",
        &n,
        "--timeout-ms",
        "3000",
    ]));
    assert_eq!(all.last().map(|(o, _)| *o), Some(2_009));
}
