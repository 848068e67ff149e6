//! `yak-node bench consume --group G --members N` end to end, at small
//! sizes: the members are real members of the group (they share the
//! partitions, commit what they read and leave), a second run resumes from
//! the group's committed offsets, and the result row has the bench JSON
//! shape plus `members`.

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use yak_tests::TestCluster;

const PARTITIONS: u64 = 6;

/// Appends `messages` to `topic` (created with 6 partitions) through `bench produce`.
fn produce(c: &TestCluster, topic: &str, messages: u64) {
    let partitions = PARTITIONS.to_string();
    let messages = messages.to_string();
    c.yak_ok(&[
        "bench",
        "produce",
        "--topic",
        topic,
        "--partitions",
        &partitions,
        "--replication-factor",
        "1",
        "--messages",
        &messages,
        "--warmup-messages",
        "0",
        "--json",
    ]);
}

fn group_bench(c: &TestCluster, topic: &str, group: &str, members: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "bench",
        "consume",
        "--topic",
        topic,
        "--group",
        group,
        "--members",
        members,
        "--json",
    ];
    args.extend(extra);
    serde_json::from_str(c.yak_ok(&args).trim()).unwrap()
}

/// (sum of committed offsets, sum of log end offsets, members) of `group`.
fn committed(c: &TestCluster, group: &str) -> (u64, u64, usize) {
    let d: Value =
        serde_json::from_str(&c.yak_ok(&["group", "describe", group, "--json"])).unwrap();
    let parts = d["partitions"].as_array().unwrap();
    assert_eq!(parts.len() as u64, PARTITIONS, "{d}");
    let sum = |k: &str| parts.iter().map(|p| p[k].as_u64().unwrap_or(0)).sum();
    (
        sum("committed_offset"),
        sum("log_end_offset"),
        d["members"].as_array().unwrap().len(),
    )
}

#[test]
fn given_a_topic_when_three_group_members_bench_it_should_read_all_commit_and_resume() {
    let c = TestCluster::start(2);
    produce(&c, "gb", 6_000);

    let first = group_bench(&c, "gb", "gbench", "3", &[]);
    assert_eq!(first["members"], 3, "{first}");
    // The whole backlog (more only if a rebalance handed a partition over
    // before its reader committed: at least once).
    assert!(first["messages"].as_u64().unwrap() >= 6_000, "{first}");
    assert_eq!(first["failed"], 0, "{first}");
    assert_eq!(first["message_bytes"], 100, "{first}");
    assert!(first["msgs_per_sec"].as_f64().unwrap() > 0.0, "{first}");
    assert!(first["latency_p99_ms"].is_null(), "{first}");
    // Members commit what they read and leave on the way out.
    assert_eq!(committed(&c, "gbench"), (6_000, 6_000, 0));

    // A second run of the same group starts at its committed offsets: it
    // reads the 3,000 new messages, not the first 3,000 again.
    produce(&c, "gb", 3_000);
    let second = group_bench(&c, "gb", "gbench", "1", &["--messages", "3000"]);
    assert_eq!(second["members"], 1, "{second}");
    assert_eq!(second["failed"], 0, "{second}");
    assert_eq!(committed(&c, "gbench"), (9_000, 9_000, 0));
}

#[test]
fn given_bad_member_counts_when_benching_should_refuse() {
    let c = TestCluster::start(1);
    produce(&c, "gz", 10);
    let none = c.yak(&["bench", "consume", "--topic", "gz", "--members", "2"]);
    assert!(!none.status.success(), "--members needs --group");
    let zero = c.yak(&[
        "bench",
        "consume",
        "--topic",
        "gz",
        "--group",
        "g",
        "--members",
        "0",
    ]);
    assert!(!zero.status.success());
    assert!(
        String::from_utf8_lossy(&zero.stderr).contains("--members must be 1 to"),
        "{}",
        String::from_utf8_lossy(&zero.stderr)
    );
}
