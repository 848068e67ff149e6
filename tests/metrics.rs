//! End-to-end: `yak-supervisor --metrics-addr` serves Prometheus text that a
//! real parser (openmetrics-parser) accepts, with plausible partition,
//! broker, group and cluster figures; a kill -9 of a broker shows as
//! under-replicated partitions and a restart, and clears after recovery;
//! garbage and silent HTTP clients do not stop the next scrape.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use openmetrics_parser::prometheus::parse_prometheus;
use openmetrics_parser::{MetricsExposition, PrometheusType, PrometheusValue};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};
use yak_tests::{wait_until, TestCluster};

type Exposition = MetricsExposition<PrometheusType, PrometheusValue>;

const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(15);

fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr")
}

/// Sends `request` and returns the whole answer (the server closes after one).
fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).expect("connect to the metrics endpoint");
    s.set_read_timeout(Some(SCRAPE_TIMEOUT))
        .expect("read timeout");
    s.write_all(request).expect("send the request");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read the answer");
    answer
}

/// `GET /metrics`, parsed; panics unless it is a 200 the parser accepts.
fn scrape(addr: SocketAddr) -> Exposition {
    let answer = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head: {answer}"));
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    parse_prometheus(body).unwrap_or_else(|e| panic!("the exposition does not parse: {e}\n{body}"))
}

/// Values of `family`'s samples whose labels include `labels`.
fn values(e: &Exposition, family: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    let Some(f) = e.families.get(family) else {
        return Vec::new();
    };
    f.iter_samples()
        .filter(|s| {
            let set = s.get_labelset().expect("a parsed sample has labels");
            labels
                .iter()
                .all(|(k, v)| set.get_label_value(k) == Some(*v))
        })
        .map(|s| match &s.value {
            PrometheusValue::Gauge(n) | PrometheusValue::Unknown(n) => n.as_f64(),
            PrometheusValue::Counter(c) => c.value.as_f64(),
            PrometheusValue::Histogram(h) => h.count.unwrap_or(0) as f64,
            PrometheusValue::Summary(s) => s.count.unwrap_or(0) as f64,
        })
        .collect()
}

fn sum(e: &Exposition, family: &str, labels: &[(&str, &str)]) -> f64 {
    values(e, family, labels).iter().sum()
}

fn one(e: &Exposition, family: &str, labels: &[(&str, &str)]) -> Option<f64> {
    match values(e, family, labels)[..] {
        [v] => Some(v),
        _ => None,
    }
}

fn broker_pid(c: &TestCluster, id: u32) -> i32 {
    c.cluster_processes()
        .into_iter()
        .find(|(_, cmd)| {
            let args: Vec<&str> = cmd.split(' ').collect();
            args.get(1) == Some(&"broker")
                && args.windows(2).any(|w| w == ["--id", &id.to_string()])
        })
        .map(|(pid, _)| pid)
        .unwrap_or_else(|| panic!("no broker {id} process"))
}

#[test]
fn given_cluster_with_metrics_when_scraped_should_parse_and_follow_a_broker_kill() {
    let addr = free_port();
    let c = TestCluster::builder(3)
        .zookeeper("default_replication_factor", "3")
        .supervisor_arg("--metrics-addr")
        .supervisor_arg(&addr.to_string())
        .start();
    c.yak_ok(&[
        "topic",
        "create",
        "orders",
        "--partitions",
        "2",
        "--replication-factor",
        "3",
    ]);
    let messages: String = (0..20).map(|i| format!("k{i}:v{i}\n")).collect();
    c.yak_stdin_ok(
        &["produce", "--topic", "orders", "--key-separator", ":"],
        &messages,
    );

    // Partition gauges, produce counters and histograms are there and add up.
    let e = wait_until(
        "every replica at the high watermark 20",
        SCRAPE_TIMEOUT,
        || {
            let e = scrape(addr);
            let hw = values(&e, "yak_partition_high_watermark", &[("topic", "orders")]);
            (hw.len() == 6
                && sum(&e, "yak_partition_high_watermark", &[("topic", "orders")]) == 60.0)
                .then_some(e)
        },
    );
    assert_eq!(
        sum(&e, "yak_partition_is_leader", &[("topic", "orders")]),
        2.0,
        "one leader per partition"
    );
    assert_eq!(
        sum(&e, "yak_partition_log_end_offset", &[("topic", "orders")]),
        60.0
    );
    assert_eq!(
        values(&e, "yak_partition_isr_size", &[("topic", "orders")]),
        [3.0; 6],
        "full ISRs everywhere"
    );
    assert!(sum(&e, "yak_broker_produce_requests_total", &[]) >= 2.0);
    assert!(
        sum(&e, "yak_broker_produce_bytes_total", &[]) > 20.0 * 4.0,
        "at least the keys and values"
    );
    assert!(
        sum(&e, "yak_broker_produce_latency_seconds", &[]) >= 2.0,
        "one observation per acknowledged batch"
    );
    assert!(
        sum(&e, "yak_broker_fsync_latency_seconds", &[]) >= 2.0,
        "fsync=always fsyncs leaders and followers"
    );
    assert!(
        sum(&e, "yak_broker_fetch_bytes_total", &[("kind", "follower")]) > 0.0,
        "followers replicated"
    );
    assert_eq!(one(&e, "yak_cluster_partitions", &[]), Some(2.0));
    assert_eq!(
        one(&e, "yak_cluster_under_replicated_partitions", &[]),
        Some(0.0)
    );
    assert_eq!(one(&e, "yak_cluster_offline_partitions", &[]), Some(0.0));
    assert_eq!(
        sum(&e, "yak_child_up", &[]),
        4.0,
        "zookeeper and three brokers"
    );
    assert!(one(
        &e,
        "yak_child_resident_memory_bytes",
        &[("child", "broker-1")]
    )
    .is_some_and(|b| b > 1e6));

    // Group lag: HW - committed, per partition.
    let read = c.yak_ok(&[
        "consume",
        "--topic",
        "orders",
        "--group",
        "g",
        "--from-beginning",
        "--max-messages",
        "20",
        "--timeout-ms",
        "5000",
    ]);
    assert_eq!(read.lines().count(), 20);
    c.yak_stdin_ok(&["produce", "--topic", "orders"], "x\ny\nz\n");
    wait_until("group lag of 3", SCRAPE_TIMEOUT, || {
        (sum(&scrape(addr), "yak_group_lag", &[("group", "g")]) == 3.0).then_some(())
    });

    // Garbage and a silent client harm nothing.
    let _silent = TcpStream::connect(addr).expect("connect");
    assert!(exchange(addr, b"\x16\x03\x01garbage\r\n\r\n").starts_with("HTTP/1.1 400"));
    assert!(exchange(addr, b"GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
    assert!(exchange(addr, b"POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
    let began = Instant::now();
    scrape(addr);
    assert!(
        began.elapsed() < Duration::from_secs(1),
        "a scrape beside a silent client took {:?}",
        began.elapsed()
    );

    // kill -9 a broker: under-replicated rises, the restart is counted, then all clears.
    let victim = broker_pid(&c, 2);
    kill(Pid::from_raw(victim), Signal::SIGKILL).expect("kill -9 broker 2");
    let killed = Instant::now();
    // The window lasts from the supervisor's report (a tick) to the restarted
    // broker's return to the ISR (backoff + recovery + catch-up): scrape
    // back to back, not every poll interval.
    let seen = loop {
        let e = scrape(addr);
        if let Some(n) =
            one(&e, "yak_cluster_under_replicated_partitions", &[]).filter(|&n| n > 0.0)
        {
            break n;
        }
        assert!(
            killed.elapsed() < RECOVERY_TIMEOUT,
            "no under-replicated partition seen after the kill"
        );
    };
    println!(
        "under-replicated {seen} seen {} ms after the kill",
        killed.elapsed().as_millis()
    );
    let e = wait_until(
        "recovery: no under-replicated partition, broker-2 up again",
        RECOVERY_TIMEOUT,
        || {
            let e = scrape(addr);
            let recovered = one(&e, "yak_cluster_under_replicated_partitions", &[]) == Some(0.0)
                && one(&e, "yak_child_up", &[("child", "broker-2")]) == Some(1.0);
            recovered.then_some(e)
        },
    );
    println!(
        "recovered {} ms after the kill",
        killed.elapsed().as_millis()
    );
    assert_eq!(
        one(&e, "yak_child_restarts_total", &[("child", "broker-2")]),
        Some(1.0)
    );
    assert_eq!(
        one(&e, "yak_child_restarts_total", &[("child", "broker-1")]),
        Some(0.0)
    );
    assert_eq!(one(&e, "yak_cluster_offline_partitions", &[]), Some(0.0));
    assert_eq!(
        one(&e, "yak_scrape_target_up", &[("target", "broker-2")]),
        Some(1.0)
    );
}
