//! End-to-end: no client can starve a server. A thousand idle client
//! connections leave produce, consume and replication working, and when
//! clients fill every slot they may use, a restarted broker still gets in
//! through the slots reserved for the cluster; slow-loris frames (16 MiB
//! declared, a byte a second) hold no memory, block nobody and are cut off
//! at the frame deadline; a 10,000-partition topic is created without any
//! broker losing its ZooKeeper session, and metadata keeps answering.

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};
use yak_tests::{wait_until, TestCluster};

/// Connections each server is configured to serve in these tests: room
/// for the thousand idle clients and the cluster, and a cap reached with a
/// few hundred more.
const CONNECTIONS_MAX: usize = 1100;
/// `yak::limits::CONNECTIONS_RESERVED`.
const RESERVED: usize = yak::limits::CONNECTIONS_RESERVED;
const IDLE_CLIENTS: usize = 1000;
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(20);

/// Lets this test process hold a few thousand sockets.
fn raise_fd_limit(at_least: u64) {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    assert!(
        hard >= at_least,
        "the open-files hard limit ({hard}) is below {at_least}"
    );
    if soft < at_least {
        setrlimit(Resource::RLIMIT_NOFILE, at_least, hard).expect("setrlimit");
    }
}

fn connect(path: &Path) -> UnixStream {
    UnixStream::connect(path).unwrap_or_else(|e| panic!("connect to {}: {e}", path.display()))
}

/// Whether the server closed its end (it refused or dropped the connection).
fn closed_by_server(s: &UnixStream) -> bool {
    s.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 1];
    let closed = match (&mut &*s).read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    };
    s.set_nonblocking(false).expect("blocking");
    closed
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

fn broker(s: &Value, id: u64) -> &Value {
    s["brokers"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["id"] == id))
        .unwrap_or_else(|| panic!("no broker {id} in status: {s}"))
}

/// Status once `topic`-0 has all of `isr` in sync and every broker is alive.
fn wait_isr(c: &TestCluster, topic: &str, isr: &[u64], brokers: u64) -> Value {
    wait_until(
        &format!("{topic}-0 with ISR {isr:?} and {brokers} brokers alive"),
        RECOVERY_TIMEOUT,
        || {
            let s = c.try_status_json()?;
            let p = s["partitions"]
                .as_array()?
                .iter()
                .find(|p| p["topic"] == topic && p["partition"] == 0)?;
            let mut got = ids(&p["isr"]);
            got.sort_unstable();
            let alive = (1..=brokers).all(|b| broker(&s, b)["alive"] == true);
            (got == isr && alive).then_some(s)
        },
    )
}

fn resident_kib(pid: u64) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("broker's /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Produces `n` numbered messages with acks=all and reads the topic back:
/// `total` messages in all.
fn produce_and_consume(c: &TestCluster, topic: &str, n: usize, total: usize) {
    let lines: String = (0..n).map(|i| format!("m{i}\n")).collect();
    c.yak_stdin_ok(&["produce", "--topic", topic, "--acks", "all"], &lines);
    let out = c.yak_ok(&[
        "consume",
        "--topic",
        topic,
        "--from-beginning",
        "--timeout-ms",
        "1500",
    ]);
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(got.len(), total, "consumed {} of {total}: {out}", got.len());
}

#[test]
fn given_1000_idle_clients_when_producing_consuming_and_filling_every_client_slot_should_still_serve_the_cluster(
) {
    raise_fd_limit(4 * CONNECTIONS_MAX as u64);
    let max = CONNECTIONS_MAX.to_string();
    let c = TestCluster::builder(2)
        .zookeeper("connections_max", &max)
        .broker("connections_max", &max)
        .start();
    c.yak_ok(&[
        "topic",
        "create",
        "busy",
        "--partitions",
        "1",
        "--replication-factor",
        "2",
    ]);
    wait_isr(&c, "busy", &[1, 2], 2);
    let (zk, b1) = (
        c.run_dir().join("zookeeper.sock"),
        c.run_dir().join("broker-1.sock"),
    );
    let started = Instant::now();
    let idle: Vec<UnixStream> = (0..IDLE_CLIENTS)
        .flat_map(|_| [connect(&zk), connect(&b1)])
        .collect();
    println!(
        "IDLE: {} idle client connections opened in {} ms",
        idle.len(),
        started.elapsed().as_millis()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        idle.iter().filter(|s| closed_by_server(s)).count(),
        0,
        "every idle client is served"
    );

    let started = Instant::now();
    produce_and_consume(&c, "busy", 100, 100);
    println!(
        "IDLE: produce + consume of 100 messages took {} ms beside them",
        started.elapsed().as_millis()
    );
    wait_isr(&c, "busy", &[1, 2], 2);

    let pid = broker(&c.status_json(), 2)["pid"]
        .as_i64()
        .expect("broker 2 pid");
    // Clients fill every slot they may use on ZooKeeper.
    let extra: Vec<UnixStream> = (0..CONNECTIONS_MAX - IDLE_CLIENTS)
        .map(|_| connect(&zk))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let refused = extra.iter().filter(|s| closed_by_server(s)).count();
    println!(
        "IDLE: {refused} of {} more client connections refused",
        extra.len()
    );
    assert!(
        refused >= RESERVED,
        "at least the reserved slots are refused to clients: {refused}"
    );
    assert!(
        !c.yak(&["cluster", "status"]).status.success(),
        "a client finds no slot"
    );

    // A broker restarted now gets in through a reserved slot.
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).expect("kill -9 broker 2");
    // Its ZooKeeper connection closed: take that slot back before it restarts.
    let top_up: Vec<UnixStream> = (0..8).map(|_| connect(&zk)).collect();
    let registered = |text: &str| {
        text.lines()
            .filter(|l| l.contains("broker registered") && l.contains("broker=2"))
            .count()
    };
    let before = registered(&c.log_text());
    wait_until(
        "broker 2 re-registered with ZooKeeper",
        RECOVERY_TIMEOUT,
        || (registered(&c.log_text()) > before).then_some(()),
    );
    assert!(
        !c.yak(&["cluster", "status"]).status.success(),
        "clients were still locked out when broker 2 got in"
    );
    drop((extra, top_up));
    let s = wait_isr(&c, "busy", &[1, 2], 2);
    assert_ne!(
        broker(&s, 2)["pid"].as_i64(),
        Some(pid),
        "the restarted broker 2 is back in the ISR"
    );
    produce_and_consume(&c, "busy", 150, 250);
    assert_eq!(
        idle.iter().filter(|s| closed_by_server(s)).count(),
        0,
        "idle clients are still served"
    );
}

/// A frame that declares 16 MiB.
const LORIS_DECLARED_BYTES: u32 = 16 * 1024 * 1024;
const LORIS_CONNECTIONS: usize = 50;

#[test]
fn given_slow_loris_frames_when_others_produce_and_consume_should_hold_no_memory_block_nobody_and_be_cut_off(
) {
    let c = TestCluster::start(1);
    c.yak_ok(&[
        "topic",
        "create",
        "slow",
        "--partitions",
        "1",
        "--replication-factor",
        "1",
    ]);
    let s = c.status_json();
    let pid = broker(&s, 1)["pid"].as_u64().expect("broker pid");
    let b1 = c.run_dir().join("broker-1.sock");
    produce_and_consume(&c, "slow", 10, 10);
    let rss_before = resident_kib(pid);
    let started = Instant::now();
    let mut loris: Vec<UnixStream> = (0..LORIS_CONNECTIONS)
        .map(|_| {
            let mut s = connect(&b1);
            s.write_all(&LORIS_DECLARED_BYTES.to_be_bytes())
                .expect("declare 16 MiB");
            s
        })
        .collect();
    let trickle = std::thread::spawn(move || {
        // One byte a second on each, until the broker closes them all.
        let mut cut_after = Vec::new();
        while !loris.is_empty() && started.elapsed() < Duration::from_secs(15) {
            loris.retain_mut(|s| {
                let alive = s.write_all(&[0x80]).is_ok() && !closed_by_server(s);
                if !alive {
                    cut_after.push(started.elapsed());
                }
                alive
            });
            std::thread::sleep(Duration::from_secs(1));
        }
        (loris.len(), cut_after)
    });
    std::thread::sleep(Duration::from_millis(1500));
    let work = Instant::now();
    produce_and_consume(&c, "slow", 100, 110);
    let work = work.elapsed();
    let rss_during = resident_kib(pid);
    println!(
        "LORIS: produce + consume of 100 beside {LORIS_CONNECTIONS} slow-loris frames took {} ms; broker RSS {} -> {} KiB",
        work.as_millis(),
        rss_before,
        rss_during
    );
    assert!(
        work < Duration::from_secs(5),
        "others were held up: {work:?}"
    );
    let grown_mib = rss_during.saturating_sub(rss_before) / 1024;
    assert!(
        grown_mib < 32,
        "{LORIS_CONNECTIONS} half-sent 16 MiB frames cost {grown_mib} MiB"
    );
    let (left, cut_after) = trickle.join().expect("trickle thread");
    assert_eq!(
        left, 0,
        "every slow-loris connection was closed by the broker"
    );
    let last = cut_after.iter().max().copied().unwrap_or_default();
    println!(
        "LORIS: all {LORIS_CONNECTIONS} cut off within {} ms of their first byte",
        last.as_millis()
    );
    let deadline = Duration::from_millis(yak::limits::FRAME_READ_TIMEOUT_MS);
    assert!(
        last >= deadline && last < deadline + Duration::from_secs(4),
        "cut off at the frame deadline: {last:?}"
    );
    assert!(
        c.log_text().contains("did not arrive whole within"),
        "the broker says why"
    );
}

#[test]
fn given_10000_partition_topic_when_created_on_3_brokers_should_lose_no_session_and_keep_metadata_answering(
) {
    let c = TestCluster::start(3);
    let started = Instant::now();
    c.yak_ok(&[
        "topic",
        "create",
        "big",
        "--partitions",
        "10000",
        "--replication-factor",
        "1",
    ]);
    println!(
        "BIG: topic create answered in {} ms",
        started.elapsed().as_millis()
    );
    let mut slowest = Duration::ZERO;
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(4) {
        let asked = Instant::now();
        let out = c.yak_ok(&["topic", "describe", "big"]);
        slowest = slowest.max(asked.elapsed());
        assert!(out.contains("9999"), "metadata names every partition");
        let s = c.status_json();
        for b in 1..=3 {
            assert_eq!(
                broker(&s, b)["alive"],
                true,
                "broker {b} lost its session while creating files: {}",
                broker(&s, b)
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let events = c.yak_ok(&["cluster", "events", "--json"]);
    let expired: Vec<&str> = events
        .lines()
        .filter(|l| l.contains("broker_session_expired"))
        .collect();
    assert!(expired.is_empty(), "sessions expired: {expired:?}");
    let s = c.status_json();
    let held = s["partitions"]
        .as_array()
        .map_or(0, |p| p.iter().filter(|p| p["topic"] == "big").count());
    println!(
        "BIG: metadata answered within {} ms at worst; {held} partitions listed after 4 s",
        slowest.as_millis()
    );
    assert!(
        slowest < Duration::from_secs(3),
        "metadata took {slowest:?}"
    );
    // Stop at once: a graceful stop would fsync every new replica first.
    for (pid, _) in c.cluster_processes() {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}
