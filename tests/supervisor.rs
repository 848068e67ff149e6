//! The supervisor: clean shutdown on SIGTERM and SIGINT, and a ZooKeeper
//! restart that loses no metadata.

#![allow(clippy::unwrap_used)]

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::time::Duration;
use yak_tests::{wait_until, TestCluster};

fn sockets_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sock"))
        .collect()
}

fn assert_clean_shutdown_on(signal: Signal) {
    let mut c = TestCluster::start(3);
    c.yak_ok(&[
        "produce",
        "--topic",
        "before-stop",
        "--message",
        "a",
        "--message",
        "b",
    ]);
    assert_eq!(
        c.cluster_processes().len(),
        5,
        "supervisor, zookeeper and 3 brokers: {:?}",
        c.cluster_processes()
    );
    let status = c
        .signal_supervisor(signal, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("supervisor still running 10 s after {signal}"));
    assert_eq!(
        status.code(),
        Some(0),
        "supervisor exit status after {signal}"
    );
    // The supervisor reaps every child before it exits: nothing may remain.
    let left = c.cluster_processes();
    assert!(left.is_empty(), "processes left after {signal}: {left:?}");
    let socks = sockets_in(c.run_dir());
    assert!(
        socks.is_empty(),
        "sockets left in the run dir after {signal}: {socks:?}"
    );
}

#[test]
fn given_sigterm_when_supervisor_runs_should_exit_0_and_leave_no_process_or_socket() {
    assert_clean_shutdown_on(Signal::SIGTERM);
}

#[test]
fn given_sigint_when_supervisor_runs_should_exit_0_and_leave_no_process_or_socket() {
    assert_clean_shutdown_on(Signal::SIGINT);
}

#[test]
fn given_zookeeper_killed_when_restarted_should_keep_topics_and_messages() {
    let mut c = TestCluster::start(3);
    c.yak_ok(&["topic", "create", "durable", "--partitions", "3"]);
    let input: String = (0..50).map(|i| format!("k{i}:v{i}\n")).collect();
    c.yak_stdin_ok(
        &["produce", "--topic", "durable", "--key-separator", ":"],
        &input,
    );

    let old = c
        .zookeeper_pid()
        .expect("zookeeper process of this cluster");
    kill(Pid::from_raw(old), Signal::SIGKILL).unwrap();
    let new = wait_until("a new zookeeper process", Duration::from_secs(15), || {
        c.zookeeper_pid().filter(|p| *p != old)
    });
    eprintln!("zookeeper pid {old} killed, restarted as {new}");
    let list = wait_until(
        "topic list --json to work again",
        Duration::from_secs(15),
        || {
            let out = c.yak(&["topic", "list", "--json"]);
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        },
    );
    let topics: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert!(
        topics
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "durable" && t["partitions"] == 3),
        "topic lost after zookeeper restart: {list}"
    );
    let out = c.yak_ok(&[
        "consume",
        "--topic",
        "durable",
        "--from-beginning",
        "--timeout-ms",
        "2000",
    ]);
    let mut got: Vec<&str> = out.lines().collect();
    got.sort_by_key(|v| v[1..].parse::<u32>().unwrap());
    let want: Vec<String> = (0..50).map(|i| format!("v{i}")).collect();
    assert_eq!(got, want, "messages after zookeeper restart");

    // Brokers re-register and the cluster takes writes again.
    c.wait_for_alive_brokers(3, Duration::from_secs(15));
    c.yak_ok(&[
        "produce",
        "--topic",
        "durable",
        "--message",
        "after-restart",
    ]);
    let out = c.yak_ok(&[
        "consume",
        "--topic",
        "durable",
        "--from-beginning",
        "--max-messages",
        "51",
        "--timeout-ms",
        "5000",
    ]);
    assert_eq!(out.lines().count(), 51);
    assert!(out.lines().any(|l| l == "after-restart"));
}
