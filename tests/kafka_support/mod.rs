//! Helpers of the Kafka e2e tests: a cluster with its own Kafka port base,
//! the Kafka clients `make kafka-deps` installs (kcat, a confluent-kafka
//! virtualenv) and raw request framing.

#![allow(dead_code, clippy::unwrap_used)]

pub mod members;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use yak_tests::{ClusterBuilder, TestCluster};

/// A cluster whose broker i serves Kafka on 127.0.0.1:base + i - 1.
pub struct KafkaCluster {
    pub cluster: TestCluster,
    pub base: u16,
}

impl KafkaCluster {
    /// Broker `id`'s Kafka port.
    pub fn port(&self, id: u32) -> u16 {
        self.base + id as u16 - 1
    }

    /// `127.0.0.1:PORT` of broker 1.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.base)
    }
}

/// A base with `n` free consecutive ports, picked at random in 20000..60000.
fn free_port_base(n: u16) -> u16 {
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        ^ std::process::id();
    for _ in 0..100 {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let base = 20_000 + (seed >> 8) as u16 % 40_000;
        if (0..n).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no {n} free consecutive ports found");
}

/// Starts `brokers` brokers with Kafka listeners.
pub fn kafka_cluster(brokers: u32) -> KafkaCluster {
    kafka_cluster_with(brokers, |b| b)
}

/// Like [`kafka_cluster`], with more settings from `configure`.
pub fn kafka_cluster_with(
    brokers: u32,
    configure: impl FnOnce(ClusterBuilder) -> ClusterBuilder,
) -> KafkaCluster {
    let base = free_port_base(brokers as u16);
    let builder = TestCluster::builder(brokers)
        .supervisor_arg("--kafka-port-base")
        .supervisor_arg(&base.to_string());
    let cluster = configure(builder).start();
    KafkaCluster { cluster, base }
}

/// Runs kcat with `args` (and `input` on stdin), bounded; panics on failure.
pub fn kcat(args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
    let mut child = Command::new("kcat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run kcat ({e}): run `make kafka-deps`"));
    let mut stdin = child.stdin.take().unwrap();
    if let Some(input) = input {
        std::io::Write::write_all(&mut stdin, input).unwrap();
    }
    drop(stdin);
    let out = wait_bounded(child, Duration::from_secs(30), "kcat");
    assert!(
        out.status.success(),
        "kcat {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Waits for `child`, killing it after `timeout`.
pub fn wait_bounded(mut child: Child, timeout: Duration, what: &str) -> std::process::Output {
    let deadline = std::time::Instant::now() + timeout;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what} did not finish in {timeout:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// The virtualenv's python (`$YAK_KAFKA_PYTHON` overrides it).
fn python_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("YAK_KAFKA_PYTHON") {
        return p.into();
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/kafka-venv/bin/python");
    assert!(p.exists(), "{} missing: run `make kafka-deps`", p.display());
    p
}

/// Starts a Python script with confluent-kafka; stdin and stdout piped.
pub fn python(script: &str, args: &[&str]) -> Child {
    Command::new(python_bin())
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A request frame with header v1 (client id "t").
pub fn request(api_key: i16, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend_from_slice(&api_key.to_be_bytes());
    r.extend_from_slice(&version.to_be_bytes());
    r.extend_from_slice(&correlation_id.to_be_bytes());
    r.extend_from_slice(&1i16.to_be_bytes());
    r.push(b't');
    r.extend_from_slice(body);
    let mut frame = (r.len() as i32).to_be_bytes().to_vec();
    frame.extend(r);
    frame
}

/// Retries `f` every 100 ms for at most 10 s until it gives a value.
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within 10 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
