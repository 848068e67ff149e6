//! A data dir belongs to one cluster and one process: a wiped ZooKeeper
//! never makes a broker delete anything (the cluster id differs, so the
//! broker refuses to start), and a second cluster on the same data dir (or a
//! second broker on the same broker dir) is refused before it touches a file;
//! so is a broker dir whose logs are in an older record format.

#![allow(clippy::unwrap_used)]

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use yak_tests::{bin_dir, parse_records, run_yak_node, wait_until, TestCluster};

/// Every file under `dir` (but lock files, which hold the locking pid), by
/// path relative to `dir`, with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let rel = PathBuf::from(entry.file_name());
        if path.is_dir() {
            out.extend(files(&path).into_iter().map(|(p, b)| (rel.join(p), b)));
        } else if !rel.to_string_lossy().ends_with(".lock") {
            out.insert(rel, fs::read(&path).unwrap());
        }
    }
    out
}

/// `yak-supervisor --config <cluster.toml of c> ARGS`, output to `log`.
fn spawn_supervisor(c: &TestCluster, args: &[&str], log: &Path) -> Child {
    let bins = bin_dir();
    let out = fs::File::create(log).unwrap();
    Command::new(bins.join("yak-supervisor"))
        .arg("--config")
        .arg(c.dir().join("cluster.toml"))
        .arg("--node-bin")
        .arg(bins.join("yak-node"))
        .args(args)
        .env_remove("YAK_CLUSTER")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap()
}

/// Waits at most `timeout` for `child` to exit.
fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM, then SIGKILL after 10 s; reaps.
fn stop(child: &mut Child) {
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    if wait_exit(child, Duration::from_secs(10)).is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn values(stdout: &str) -> Vec<String> {
    parse_records(stdout.as_bytes())
        .into_iter()
        .map(|r| r.value)
        .collect()
}

#[test]
fn given_wiped_zookeeper_when_cluster_restarts_on_same_broker_dirs_should_refuse_and_leave_partition_files_untouched(
) {
    let mut c = TestCluster::start(1);
    c.yak_ok(&[
        "topic",
        "create",
        "keep",
        "--partitions",
        "2",
        "--replication-factor",
        "1",
    ]);
    let input: String = (0..20).map(|i| format!("m{i}\n")).collect();
    c.yak_stdin_ok(&["produce", "--topic", "keep"], &input);
    let cluster_id = c.status_json()["cluster_id"].as_str().unwrap().to_string();
    assert_eq!(
        cluster_id.len(),
        32,
        "cluster status --json names the cluster id"
    );
    let status = c
        .signal_supervisor(Signal::SIGTERM, Duration::from_secs(10))
        .expect("supervisor stops");
    assert!(status.success());

    let data = c.dir().join("data");
    let broker_dir = data.join("broker-1");
    let before = files(&broker_dir);
    assert!(
        before.keys().any(|p| p.starts_with("keep-0"))
            && before.keys().any(|p| p.starts_with("keep-1"))
    );
    assert_eq!(
        fs::read_to_string(broker_dir.join("cluster_id"))
            .unwrap()
            .trim(),
        cluster_id
    );
    fs::remove_dir_all(data.join("zookeeper")).unwrap();

    let log = c.dir().join("second.log");
    let mut second = spawn_supervisor(&c, &[], &log);
    let text = wait_until(
        "the broker to refuse the wiped zookeeper",
        Duration::from_secs(20),
        || {
            let text = fs::read_to_string(&log).unwrap_or_default();
            text.contains("cluster id mismatch").then_some(text)
        },
    );
    stop(&mut second);
    let line = text
        .lines()
        .find(|l| l.contains("cluster id mismatch"))
        .unwrap();
    assert!(
        line.contains(&cluster_id),
        "the error names the broker's cluster id: {line}"
    );
    assert!(
        !text.contains("replica loaded"),
        "no replica was opened:\n{text}"
    );
    let after = files(&broker_dir);
    let sizes = |f: &BTreeMap<PathBuf, Vec<u8>>| {
        f.iter()
            .map(|(p, b)| (p.clone(), b.len()))
            .collect::<Vec<_>>()
    };
    assert!(
        after == before,
        "partition files changed: before {:?}, after {:?}",
        sizes(&before),
        sizes(&after)
    );
}

#[test]
fn given_broker_dir_in_the_old_record_format_when_cluster_restarts_should_refuse_naming_the_format_and_leave_it_untouched(
) {
    let mut c = TestCluster::start(1);
    c.yak_stdin_ok(&["produce", "--topic", "old"], "a\nb\n");
    let status = c
        .signal_supervisor(Signal::SIGTERM, Duration::from_secs(10))
        .expect("supervisor stops");
    assert!(status.success());
    // A dir written before the record format marker: logs, no marker.
    let broker_dir = c.dir().join("data").join("broker-1");
    fs::remove_file(broker_dir.join("record_format")).expect("the broker wrote the marker");
    let before = files(&broker_dir);

    let log = c.dir().join("second.log");
    let mut second = spawn_supervisor(&c, &[], &log);
    let text = wait_until(
        "the broker to refuse the old record format",
        Duration::from_secs(20),
        || {
            let text = fs::read_to_string(&log).unwrap_or_default();
            text.contains("fixed-width records").then_some(text)
        },
    );
    stop(&mut second);
    let line = text
        .lines()
        .find(|l| l.contains("fixed-width records"))
        .unwrap();
    assert!(
        line.contains("kafka-v2") && line.contains("broker-1"),
        "{line}"
    );
    assert!(
        !text.contains("replica loaded"),
        "no replica was opened:\n{text}"
    );
    assert!(
        files(&broker_dir) == before,
        "the old dir is left as it was"
    );
}

#[test]
fn given_zookeeper_wiped_while_brokers_run_when_it_comes_back_should_stop_brokers_before_they_delete_anything(
) {
    let c = TestCluster::start(1);
    c.yak_ok(&[
        "topic",
        "create",
        "keep",
        "--partitions",
        "2",
        "--replication-factor",
        "1",
    ]);
    let input: String = (0..20).map(|i| format!("m{i}\n")).collect();
    c.yak_stdin_ok(&["produce", "--topic", "keep"], &input);
    let data = c.dir().join("data");
    let broker_dir = data.join("broker-1");
    let before = files(&broker_dir);

    // Freeze the supervisor so it cannot restart ZooKeeper before its data is gone.
    let supervisor = Pid::from_raw(c.supervisor_pid().unwrap() as i32);
    let zk = c.zookeeper_pid().unwrap();
    kill(supervisor, Signal::SIGSTOP).unwrap();
    kill(Pid::from_raw(zk), Signal::SIGKILL).unwrap();
    wait_until("zookeeper to die", Duration::from_secs(10), || {
        (c.zookeeper_pid() != Some(zk)).then_some(())
    });
    fs::remove_dir_all(data.join("zookeeper")).unwrap();
    kill(supervisor, Signal::SIGCONT).unwrap();
    wait_until(
        "the wiped zookeeper to answer",
        Duration::from_secs(15),
        || {
            c.yak(&["topic", "list", "--json"])
                .status
                .success()
                .then_some(())
        },
    );
    // Raise the new metadata version past the one the broker applied (a
    // broker ignores older versions): a broker that followed this ZooKeeper
    // would now reconcile against metadata naming none of its replicas.
    // (Creating a topic needs an alive broker: try for a bounded while.)
    let (mut created, deadline) = (0, Instant::now() + Duration::from_secs(4));
    while created < 6 && Instant::now() < deadline {
        if c.yak(&[
            "topic",
            "create",
            &format!("filler-{created}"),
            "--partitions",
            "1",
        ])
        .status
        .success()
        {
            created += 1;
        } else {
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    let text = wait_until(
        "the running broker to stop on the new cluster id",
        Duration::from_secs(20),
        || {
            let text = c.log_text();
            text.contains("zookeeper now belongs to another cluster")
                .then_some(text)
        },
    );
    assert!(
        !text.contains("replica deleted") && !text.contains("quarantined"),
        "nothing was removed:\n{text}"
    );
    let after = files(&broker_dir);
    let sizes = |f: &BTreeMap<PathBuf, Vec<u8>>| {
        f.iter()
            .map(|(p, b)| (p.clone(), b.len()))
            .collect::<Vec<_>>()
    };
    assert!(
        after == before,
        "partition files changed: before {:?}, after {:?}",
        sizes(&before),
        sizes(&after)
    );
}

#[test]
fn given_running_cluster_when_second_supervisor_uses_same_data_dir_should_exit_naming_holder_and_first_keeps_serving(
) {
    let c = TestCluster::start(1);
    c.yak_ok(&[
        "topic",
        "create",
        "first",
        "--partitions",
        "1",
        "--replication-factor",
        "1",
    ]);
    let input: String = (0..20).map(|i| format!("m{i}\n")).collect();
    c.yak_stdin_ok(&["produce", "--topic", "first"], &input);
    let holder = c.supervisor_pid().unwrap();

    let other_run = c.dir().join("run-2");
    let log = c.dir().join("second.log");
    let mut second = spawn_supervisor(&c, &["--run-dir", other_run.to_str().unwrap()], &log);
    let status = wait_exit(&mut second, Duration::from_secs(10));
    if status.is_none() {
        stop(&mut second);
    }
    let text = fs::read_to_string(&log).unwrap();
    let status =
        status.unwrap_or_else(|| panic!("second supervisor still running after 10 s:\n{text}"));
    assert!(!status.success(), "second supervisor must fail:\n{text}");
    assert!(
        text.contains(&format!("pid={holder}")),
        "names the holder's pid {holder}:\n{text}"
    );
    assert!(
        !other_run.join("zookeeper.sock").exists(),
        "the second cluster started no child"
    );

    c.yak_ok(&["produce", "--topic", "first", "--message", "after"]);
    let out = c.yak_ok(&[
        "consume",
        "--topic",
        "first",
        "--from-beginning",
        "--max-messages",
        "21",
        "--timeout-ms",
        "5000",
        "--format",
        "json",
    ]);
    let mut want: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    want.push("after".into());
    assert_eq!(
        values(&out),
        want,
        "the first cluster still serves every message"
    );
}

#[test]
fn given_running_cluster_when_broker_or_zookeeper_started_on_its_dir_should_exit_with_clear_error()
{
    let c = TestCluster::start(1);
    let broker_pid = c.status_json()["brokers"][0]["pid"].as_u64().unwrap();
    let zk_pid = c.zookeeper_pid().unwrap();
    let data = c.dir().join("data");
    let other_run = c.dir().join("run-3");
    fs::create_dir(&other_run).unwrap();
    let (data, other_run) = (data.to_str().unwrap(), other_run.to_str().unwrap());

    let out = run_yak_node(
        &[
            "broker",
            "--id",
            "1",
            "--run-dir",
            other_run,
            "--data-dir",
            data,
        ],
        None,
        Duration::from_secs(10),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a second broker-1 must exit non-zero: {err}"
    );
    assert!(
        err.contains("is in use") && err.contains(&format!("pid={broker_pid}")),
        "{err}"
    );

    let out = run_yak_node(
        &["zookeeper", "--run-dir", other_run, "--data-dir", data],
        None,
        Duration::from_secs(10),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a second zookeeper must exit non-zero: {err}"
    );
    assert!(
        err.contains("is in use") && err.contains(&format!("pid={zk_pid}")),
        "{err}"
    );

    c.yak_ok(&["produce", "--topic", "still-up", "--message", "x"]);
}
