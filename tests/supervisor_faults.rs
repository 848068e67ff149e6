//! The supervisor under faults (issue 12, item 6): SIGHUP is an ordered
//! shutdown like SIGTERM; ZooKeeper comes back within 200 ms every time, and
//! past its restart budget the supervisor stops the whole cluster with a
//! clear error and a non-zero exit instead of running on without it.

#![allow(clippy::unwrap_used)]

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::time::{Duration, Instant};
use yak_tests::{wait_until, TestCluster};

#[test]
fn given_sighup_when_supervisor_runs_should_stop_in_order_exit_0_and_leave_no_process() {
    let mut c = TestCluster::start(2);
    c.yak_ok(&["produce", "--topic", "t", "--message", "a"]);
    let status = c
        .signal_supervisor(Signal::SIGHUP, Duration::from_secs(10))
        .expect("stopped within 10 s of SIGHUP");
    assert_eq!(status.code(), Some(0));
    assert!(
        c.cluster_processes().is_empty(),
        "{:?}",
        c.cluster_processes()
    );
    let log = c.log_text();
    assert!(log.contains("shutting down"), "{log}");
    let term = |name: &str| {
        log.lines()
            .position(|l| l.contains("sending SIGTERM") && l.contains(&format!("child={name}")))
    };
    assert!(
        term("broker-1").unwrap() < term("zookeeper").unwrap(),
        "brokers are stopped before ZooKeeper:\n{log}"
    );
}

#[test]
fn given_zookeeper_crash_loop_when_past_the_budget_should_restart_fast_then_stop_everything_and_exit_non_zero(
) {
    let mut c = TestCluster::start(1);
    let mut last = None;
    let started = Instant::now();
    // The budget is 10 restarts within 60 s: the 11th crash is one too many.
    for kill_no in 1..=11 {
        let pid = wait_until(
            &format!("zookeeper before kill {kill_no}"),
            Duration::from_secs(5),
            || c.zookeeper_pid().filter(|p| Some(*p) != last),
        );
        kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
        last = Some(pid);
    }
    // SIGCONT changes nothing for a running process: this only waits for the exit.
    let status = c
        .signal_supervisor(Signal::SIGCONT, Duration::from_secs(15))
        .expect("the supervisor stopped on its own");
    println!(
        "figure: 11 ZooKeeper kills and the supervisor's stop took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_ne!(
        status.code(),
        Some(0),
        "a cluster without ZooKeeper is a failure"
    );
    assert!(
        c.cluster_processes().is_empty(),
        "{:?}",
        c.cluster_processes()
    );
    let log = c.log_text();
    assert!(
        log.contains("zookeeper crashed more than 10 times within 60 s"),
        "a clear error:\n{log}"
    );
    let delays: Vec<u64> = log
        .lines()
        .filter(|l| l.contains("child=zookeeper") && l.contains("restarting after backoff"))
        .filter_map(|l| {
            l.split("delay_ms=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(delays.len(), 10, "ten restarts:\n{log}");
    assert!(
        delays.iter().all(|&d| d <= 200),
        "ZooKeeper's restart delay is capped at 200 ms: {delays:?}"
    );
}
