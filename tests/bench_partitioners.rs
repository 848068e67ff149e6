//! `yak-node bench partitioners` end to end with two plugins on a small
//! workload: the JSON report, the table and the chart.

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use yak_tests::{plugin_path, TestCluster};

const MESSAGES: u64 = 3000;

fn num(v: &Value, what: &str) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"))
}

#[test]
fn given_two_plugins_when_benchmarking_should_report_plausible_json_table_and_chart() {
    let c = TestCluster::start(3);
    let rr = plugin_path("round-robin");
    let kh = plugin_path("key-hash");
    let chart = c.dir().join("bench.svg");
    let json_file = c.dir().join("bench.json");
    let n = MESSAGES.to_string();
    let stdout = c.yak_ok(&[
        "bench",
        "partitioners",
        "--plugin",
        rr.to_str().unwrap(),
        "--plugin",
        kh.to_str().unwrap(),
        "--messages",
        &n,
        "--message-bytes",
        "64",
        "--keys",
        "50",
        "--partitions",
        "4",
        "--acks",
        "all",
        "--chart",
        chart.to_str().unwrap(),
        "--json-file",
        json_file.to_str().unwrap(),
    ]);

    // The table: a header and one row per plugin.
    for col in [
        "plugin",
        "msg/s",
        "MB/s",
        "ack p50 ms",
        "ack p99 ms",
        "ack p99.9 ms",
        "batches",
        "mean batch",
        "skew",
        "keys stable",
    ] {
        assert!(stdout.contains(col), "table lacks {col}:\n{stdout}");
    }
    let row = |name: &str| {
        stdout
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{stdout}"))
    };
    assert!(
        row("round-robin").contains("no"),
        "round-robin moves keys:\n{stdout}"
    );
    assert!(
        row("key-hash").contains("yes"),
        "key-hash keeps keys:\n{stdout}"
    );

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_file).unwrap()).unwrap();
    assert_eq!(report["workload"]["messages"], MESSAGES);
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    let names: Vec<&str> = results
        .iter()
        .map(|r| r["plugin"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["round-robin", "key-hash"]);
    for r in results {
        let name = r["plugin"].as_str().unwrap();
        assert_eq!(r["acked"], MESSAGES, "{name}");
        assert_eq!(r["failed"], 0, "{name}");
        assert_eq!(r["consumed"], MESSAGES, "{name}: consumed back");
        assert!(num(&r["msgs_per_sec"], "msgs_per_sec") > 0.0, "{name}");
        let mb = num(&r["mb_per_sec"], "mb_per_sec");
        let per_msg = mb * 1e6 / num(&r["msgs_per_sec"], "msgs_per_sec");
        assert!(
            (69.0..71.0).contains(&per_msg),
            "{name}: 64 B values + 5-6 B keys, got {per_msg}"
        );
        let lat = &r["ack_latency_ms"];
        let (p50, p99, p999) = (
            num(&lat["p50"], "p50"),
            num(&lat["p99"], "p99"),
            num(&lat["p999"], "p999"),
        );
        assert!(
            p50 > 0.0 && p50 <= p99 && p99 <= p999 && p999 <= num(&lat["max"], "max") + 0.01,
            "{name}: {lat}"
        );
        assert!(lat["batches_measured"].as_u64().unwrap() > 0);
        let batches = r["batches"].as_u64().unwrap();
        assert!(
            (4..=MESSAGES).contains(&batches),
            "{name}: {batches} batches"
        );
        let mean = num(&r["mean_batch_records"], "mean_batch_records");
        assert!(
            (mean - MESSAGES as f64 / batches as f64).abs() < 0.01,
            "{name}"
        );
        let counts: Vec<u64> = r["partition_messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(counts.len(), 4, "{name}");
        assert_eq!(counts.iter().sum::<u64>(), MESSAGES, "{name}: {counts:?}");
        assert!(num(&r["skew"], "skew") >= 1.0, "{name}");
    }
    let (rr_r, kh_r) = (&results[0], &results[1]);
    assert_eq!(
        rr_r["partition_messages"],
        serde_json::json!([750, 750, 750, 750]),
        "round-robin is exactly even"
    );
    assert!((num(&rr_r["skew"], "skew") - 1.0).abs() < 1e-9);
    assert_eq!(rr_r["keys_stable"], false);
    assert_eq!(kh_r["keys_stable"], true);
    assert_ne!(
        rr_r["partition_messages"], kh_r["partition_messages"],
        "not constant across plugins"
    );
    assert_ne!(
        rr_r["msgs_per_sec"], kh_r["msgs_per_sec"],
        "measured, not constant"
    );

    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(
        svg.contains("<svg") && svg.contains("round-robin") && svg.contains("key-hash"),
        "chart names both plugins"
    );
    assert!(svg.contains("Messages per partition") && svg.contains("Throughput"));

    // --json prints the same report on stdout instead of the table; topics were deleted.
    let out = c.yak_ok(&[
        "bench",
        "partitioners",
        "--plugin",
        kh.to_str().unwrap(),
        "--messages",
        "200",
        "--partitions",
        "2",
        "--keys",
        "0",
        "--json",
    ]);
    let again: Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("--json is not JSON ({e}):\n{out}"));
    assert_eq!(
        again["results"][0]["keys_stable"],
        Value::Null,
        "unkeyed workload"
    );
    assert_eq!(
        again["results"][0]["partition_messages"],
        serde_json::json!([100, 100]),
        "key-hash round-robins unkeyed"
    );
    let topics = c.yak_ok(&["topic", "list", "--json"]);
    assert!(
        !topics.contains("bench-"),
        "benchmark topics deleted: {topics}"
    );
}
