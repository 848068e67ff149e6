//! The Kafka front door against a real cluster: `kcat -L`, confluent-kafka's
//! AdminClient, and raw requests (ordering, unsupported APIs and versions,
//! malformed frames). Needs `kcat` and the confluent-kafka virtualenv that
//! `make kafka-deps` installs.

#![allow(clippy::unwrap_used)]

#[path = "kafka_support/mod.rs"]
mod kafka_support;

use kafka_support::{kafka_cluster, kcat, python, request};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn given_kafka_listeners_when_kcat_lists_metadata_should_show_every_broker_once_at_its_address_and_the_topics(
) {
    let k = kafka_cluster(3);
    k.cluster.yak_ok(&[
        "topic",
        "create",
        "listed",
        "--partitions",
        "2",
        "--replication-factor",
        "3",
    ]);
    let out = kcat(&["-b", &k.bootstrap(), "-L", "-J"], None);
    let v: Value = serde_json::from_slice(&out).unwrap();
    let mut brokers: Vec<(u64, String)> = v["brokers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["id"].as_u64().unwrap(),
                b["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    brokers.sort();
    let expected: Vec<(u64, String)> = (1..=3)
        .map(|id| (id, format!("127.0.0.1:{}", k.port(id as u32))))
        .collect();
    assert_eq!(brokers, expected, "each broker once, at 127.0.0.1");
    let topic = v["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["topic"] == "listed")
        .unwrap_or_else(|| panic!("topic missing: {v}"));
    let partitions = topic["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 2);
    for p in partitions {
        assert!(p["leader"].as_i64().unwrap() >= 1, "{p}");
        assert_eq!(p["replicas"].as_array().unwrap().len(), 3, "{p}");
    }
    let status = k.cluster.status_json();
    for b in status["brokers"].as_array().unwrap() {
        let id = b["id"].as_u64().unwrap() as u32;
        assert_eq!(
            b["kafka_address"],
            format!("127.0.0.1:{}", k.port(id)),
            "cluster status --json names each broker's Kafka address"
        );
    }
}

#[test]
fn given_admin_client_when_creating_and_deleting_topics_should_show_them_in_yak_topic_list() {
    let k = kafka_cluster(3);
    let script = r#"
import sys
from confluent_kafka.admin import AdminClient, NewTopic
a = AdminClient({"bootstrap.servers": sys.argv[1]})
for t, f in a.create_topics([NewTopic("made-by-kafka", num_partitions=4, replication_factor=2)]).items():
    f.result(15)
print("created")
sys.stdout.flush()
sys.stdin.readline()
for t, f in a.delete_topics(["made-by-kafka"]).items():
    f.result(15)
print("deleted")
"#;
    let mut child = python(script, &[&k.bootstrap()]);
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line.trim(), "created", "AdminClient.create_topics");
    let list = k.cluster.yak_ok(&["topic", "list"]);
    assert!(list.lines().any(|l| l.trim() == "made-by-kafka"), "{list}");
    let describe = k
        .cluster
        .yak_ok(&["topic", "describe", "made-by-kafka", "--json"]);
    let d: Value = serde_json::from_str(&describe).unwrap();
    assert_eq!(d["partitions"].as_array().unwrap().len(), 4, "{d}");
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let out = kafka_support::wait_bounded(child, Duration::from_secs(30), "python");
    assert!(
        rest.contains("deleted"),
        "{rest} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = k.cluster.yak_ok(&["topic", "list"]);
    assert!(!list.lines().any(|l| l.trim() == "made-by-kafka"), "{list}");
}

/// Reads one response frame: (correlation id, the rest).
fn read_response(s: &mut TcpStream) -> (i32, Vec<u8>) {
    let mut size = [0u8; 4];
    s.read_exact(&mut size).unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut body).unwrap();
    let corr = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    (corr, body[4..].to_vec())
}

/// An ApiVersions v0 body: error code, then (key, min, max) triples.
fn api_versions(body: &[u8]) -> (i16, Vec<(i16, i16, i16)>) {
    let i16_at = |i: usize| i16::from_be_bytes([body[i], body[i + 1]]);
    let n = i32::from_be_bytes([body[2], body[3], body[4], body[5]]) as usize;
    let apis = (0..n)
        .map(|k| (i16_at(6 + 6 * k), i16_at(8 + 6 * k), i16_at(10 + 6 * k)))
        .collect();
    (i16_at(0), apis)
}

#[test]
fn given_pipelined_and_unsupported_requests_when_sent_raw_should_answer_each_in_order_and_survive_a_bad_frame(
) {
    let k = kafka_cluster(1);
    let mut s = TcpStream::connect(k.bootstrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let metadata_all = (-1i32).to_be_bytes();
    let mut burst = Vec::new();
    burst.extend(request(3, 1, 1, &metadata_all)); // Metadata v1, every topic
    burst.extend(request(18, 0, 2, &[])); // ApiVersions v0
    burst.extend(request(999, 0, 3, &[])); // an API key nobody knows
    burst.extend(request(0, 2, 4, &[0; 16])); // Produce v2: advertised, refused
    burst.extend(request(18, 99, 5, &[])); // ApiVersions from the future
    burst.extend(request(3, 1, 6, &metadata_all));
    s.write_all(&burst).unwrap();
    let answers: Vec<(i32, Vec<u8>)> = (0..6).map(|_| read_response(&mut s)).collect();
    let ids: Vec<i32> = answers.iter().map(|a| a.0).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6], "responses in request order");
    let (error, apis) = api_versions(&answers[1].1);
    assert_eq!(error, 0);
    assert!(
        apis.contains(&(0, 0, 7)),
        "Produce 0-7 advertised: {apis:?}"
    );
    assert!(
        apis.contains(&(1, 4, 11)),
        "Fetch 4-11 advertised: {apis:?}"
    );
    assert!(
        apis.iter().any(|a| a.0 == 22 && a.1 == 0),
        "InitProducerId from 0"
    );
    for unsupported in [2, 3] {
        assert_eq!(
            &answers[unsupported].1[..2],
            &35i16.to_be_bytes(),
            "UNSUPPORTED_VERSION"
        );
    }
    let (error, apis) = api_versions(&answers[4].1);
    assert_eq!(error, 35, "an unknown ApiVersions version gets 35 ...");
    assert!(
        apis.iter().any(|a| a.0 == 18 && a.2 == 3),
        "... and a v0 list to retry with"
    );

    // A frame declaring 2 GiB closes that connection, before any allocation...
    let mut bad = TcpStream::connect(k.bootstrap()).unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    bad.write_all(&i32::MAX.to_be_bytes()).unwrap();
    let mut buf = [0u8; 1];
    assert!(matches!(bad.read(&mut buf), Ok(0) | Err(_)), "closed");
    // ... so does a header that does not parse.
    let mut garbage = TcpStream::connect(k.bootstrap()).unwrap();
    garbage
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    garbage
        .write_all(&[0, 0, 0, 9, 0, 3, 0, 1, 0, 0, 0, 7, 0x7f])
        .unwrap();
    assert!(matches!(garbage.read(&mut buf), Ok(0) | Err(_)), "closed");
    // ... and harms nothing else.
    // Header v2 (tagged fields: none), then two empty compact strings, no tags.
    s.write_all(&request(18, 3, 7, &[0, 1, 1, 0])).unwrap();
    let (corr, body) = read_response(&mut s);
    assert_eq!(
        (corr, &body[..2]),
        (7, &0i16.to_be_bytes()[..]),
        "ApiVersions v3 still served"
    );
}

#[test]
fn given_a_topic_nobody_created_when_kcat_produces_to_it_should_be_created_with_the_defaults() {
    let k = kafka_cluster(3);
    kcat(
        &[
            "-b",
            &k.bootstrap(),
            "-P",
            "-t",
            "auto-made",
            "-X",
            "acks=all",
        ],
        Some(b"first\n"),
    );
    let list = k.cluster.yak_ok(&["topic", "list"]);
    assert!(list.lines().any(|l| l.trim() == "auto-made"), "{list}");
    let out = kcat(
        &["-b", &k.bootstrap(), "-C", "-t", "auto-made", "-e", "-q"],
        None,
    );
    assert_eq!(out, b"first\n");
}

#[test]
fn given_kafka_port_in_use_when_a_broker_starts_should_exit_with_one_clear_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&run).unwrap();
    let out = yak_tests::run_yak_node(
        &[
            "broker",
            "--id",
            "1",
            "--kafka-port",
            &port,
            "--run-dir",
            run.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
        None,
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines,
        [format!("error: cannot listen for Kafka clients on 127.0.0.1:{port}: Address already in use (os error 98)")],
        "one clear line"
    );
}

#[test]
fn given_auto_creation_turned_off_when_kcat_produces_to_an_unknown_topic_should_fail_and_create_nothing(
) {
    let k =
        kafka_support::kafka_cluster_with(1, |b| b.broker("kafka_no_auto_create_topics", "true"));
    let mut child = std::process::Command::new("kcat")
        .args([
            "-b",
            &k.bootstrap(),
            "-P",
            "-t",
            "never-made",
            "-X",
            "message.timeout.ms=1500",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"lost\n").unwrap();
    let out = kafka_support::wait_bounded(child, Duration::from_secs(30), "kcat");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Delivery failed") || !out.status.success(),
        "{stderr}"
    );
    let list = k.cluster.yak_ok(&["topic", "list"]);
    assert!(!list.contains("never-made"), "{list}");
}
