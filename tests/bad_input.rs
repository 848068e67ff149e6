//! Bad input from the command line or the wire: each fails alone with a
//! clear one-line error, and the cluster keeps serving normal clients.

#![allow(clippy::unwrap_used)]

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Output;
use std::time::Duration;
use yak_tests::{run_yak_node, TestCluster, CLIENT_TIMEOUT};

/// Asserts a failed command: non-zero exit and exactly one stderr line,
/// `error: ...`, mentioning each of `mentions` (case-insensitive; `a|b`
/// accepts either).
fn assert_one_line_error(case: &str, out: &Output, mentions: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{case}: should fail; stderr:\n{stderr}"
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "{case}: want one stderr line, got:\n{stderr}"
    );
    assert!(
        lines[0].starts_with("error: "),
        "{case}: stderr line should start with 'error: ': {}",
        lines[0]
    );
    let line = lines[0].to_lowercase();
    for m in mentions {
        assert!(
            m.split('|').any(|alt| line.contains(&alt.to_lowercase())),
            "{case}: error should mention {m:?}: {}",
            lines[0]
        );
    }
}

/// Produces one message to `healthy` and reads it back at its offset.
fn assert_cluster_serves(c: &TestCluster, n: u64) {
    let msg = format!("alive-{n}");
    c.yak_ok(&["produce", "--topic", "healthy", "--message", &msg]);
    let offset = n.to_string();
    let out = c.yak_ok(&[
        "consume",
        "--topic",
        "healthy",
        "--partition",
        "0",
        "--offset",
        &offset,
        "--max-messages",
        "1",
        "--timeout-ms",
        "5000",
    ]);
    assert_eq!(
        out,
        format!("{msg}\n"),
        "cluster should still serve after bad input"
    );
}

struct Case {
    name: &'static str,
    args: Vec<String>,
    stdin: Option<String>,
    mentions: &'static [&'static str],
}

fn case(
    name: &'static str,
    args: &[&str],
    stdin: Option<String>,
    mentions: &'static [&'static str],
) -> Case {
    Case {
        name,
        args: args.iter().map(|s| s.to_string()).collect(),
        stdin,
        mentions,
    }
}

#[test]
fn given_invalid_cli_input_when_running_should_fail_with_one_error_line_and_keep_serving() {
    let c = TestCluster::start(3);
    c.yak_ok(&["topic", "create", "healthy", "--partitions", "1"]);
    let long_name = "a".repeat(250);
    let x200 = "x".repeat(200);
    let cases = vec![
        case(
            "empty topic name",
            &["topic", "create", ""],
            None,
            &["empty"],
        ),
        case(
            "250-char topic name",
            &["topic", "create", &long_name],
            None,
            &["250|249"],
        ),
        case(
            "topic name with /",
            &["topic", "create", "a/b"],
            None,
            &["a/b"],
        ),
        case(
            "topic name with space",
            &["topic", "create", "a b"],
            None,
            &["a b"],
        ),
        case(
            "zero partitions",
            &["topic", "create", "zero", "--partitions", "0"],
            None,
            &["partition"],
        ),
        case(
            "consume missing topic",
            &[
                "consume",
                "--topic",
                "no-such-topic",
                "--timeout-ms",
                "1000",
            ],
            None,
            &["no-such-topic"],
        ),
        case(
            "200-byte message, max 100",
            &["produce", "--topic", "small", "--max-message-bytes", "100"],
            Some(format!("{x200}\n")),
            &["100"],
        ),
        case(
            "200-byte --message, max 100",
            &[
                "produce",
                "--topic",
                "small",
                "--max-message-bytes",
                "100",
                "--message",
                &x200,
            ],
            None,
            &["100"],
        ),
        case(
            "2 MB line, default max 1 MiB",
            &["produce", "--topic", "big"],
            Some(format!("{}\n", "y".repeat(2_000_000))),
            &["1048576|1 mib|1mib"],
        ),
    ];
    let before = c.yak_ok(&["topic", "list", "--json"]);
    for (n, k) in cases.iter().enumerate() {
        let args: Vec<&str> = k.args.iter().map(String::as_str).collect();
        let out = match &k.stdin {
            Some(input) => c.yak_stdin(&args, input),
            None => c.yak(&args),
        };
        assert_one_line_error(k.name, &out, k.mentions);
        if args[..2] == ["topic", "create"] {
            assert_eq!(
                c.yak_ok(&["topic", "list", "--json"]),
                before,
                "{}: no topic should appear",
                k.name
            );
        }
        assert_cluster_serves(&c, n as u64);
    }
}

#[test]
fn given_nonexistent_cluster_dir_when_running_client_should_say_there_is_no_cluster() {
    for args in [
        &["cluster", "status", "--cluster", "/nonexistent/dir"][..],
        &["topic", "list", "--cluster", "/nonexistent/dir"],
        &[
            "produce",
            "--topic",
            "t",
            "--message",
            "m",
            "--cluster",
            "/nonexistent/dir",
        ],
    ] {
        let out = run_yak_node(args, None, CLIENT_TIMEOUT);
        assert_one_line_error(
            &args.join(" "),
            &out,
            &["no yak cluster|no cluster", "/nonexistent/dir"],
        );
    }
}

fn leader_socket(c: &TestCluster, topic: &str) -> std::path::PathBuf {
    let t: serde_json::Value =
        serde_json::from_str(&c.yak_ok(&["topic", "describe", topic, "--json"])).unwrap();
    let leader = t["partitions"][0]["leader"].as_u64().unwrap();
    c.run_dir().join(format!("broker-{leader}.sock"))
}

/// Sends `bytes` on a fresh connection and expects the broker to close it.
fn assert_broker_closes_after(socket: &std::path::Path, what: &str, bytes: &[u8]) {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // The broker may close before reading everything: a failed write is fine.
    let _ = s.write_all(bytes);
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("{what}: broker answered {n} bytes instead of closing the connection"),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!("{what}: broker kept the connection open for 5 s")
        }
        Err(_) => {} // reset: closed
    }
}

#[test]
fn given_malformed_and_oversized_frames_when_sent_raw_should_close_only_that_connection() {
    let c = TestCluster::start(3);
    c.yak_ok(&["topic", "create", "healthy", "--partitions", "1"]);
    let socket = leader_socket(&c, "healthy");
    // A client connected to the same broker throughout.
    let consumer = c.spawn_yak(&[
        "consume",
        "--topic",
        "healthy",
        "--max-messages",
        "2",
        "--timeout-ms",
        "15000",
    ]);
    std::thread::sleep(Duration::from_millis(1000));

    let mut garbage = 10u32.to_be_bytes().to_vec();
    garbage.extend_from_slice(&[0xc1; 10]); // 0xc1: never valid MessagePack
    assert_broker_closes_after(&socket, "malformed frame", &garbage);
    assert_cluster_serves(&c, 0);
    assert_broker_closes_after(&socket, "oversized frame", &0xFFFF_FFFFu32.to_be_bytes());
    assert_cluster_serves(&c, 1);

    let out = consumer.wait_output(Duration::from_secs(30));
    yak_tests::assert_success(&out, "consume --topic healthy");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "alive-0\nalive-1\n",
        "open consumer saw both messages"
    );
    let log = c.log_text();
    assert!(
        log.contains("frame"),
        "the broker should log why it closed the connections"
    );
}
