//! `yak-node bench partitioners` end to end, at small sizes: each scenario
//! shows the behaviour it models (not speed), and the report has every
//! contract field for every (scenario, plugin), with one entry per round.

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::path::Path;
use yak_tests::{plugin_path, TestCluster};

/// Fields every result has (the JSON contract).
const RESULT_FIELDS: [&str; 12] = [
    "scenario",
    "plugin",
    "rounds",
    "msgs_per_sec",
    "msgs_per_sec_min",
    "msgs_per_sec_max",
    "ack_p99_ms",
    "mean_batch_records",
    "requests",
    "skew",
    "keys_stable",
    "cpu_ms_per_million",
];

fn num(v: &Value, what: &str) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"))
}

/// Runs the bench with `plugins` and `flags`, writing the JSON report to a
/// file; returns (stdout, report).
fn bench(c: &TestCluster, plugins: &[&str], flags: &[&str]) -> (String, Value) {
    let json_file = c.dir().join(format!(
        "bench-{}.json",
        flags.join("_").replace(['-', '/'], "")
    ));
    let paths: Vec<String> = plugins
        .iter()
        .map(|p| plugin_path(p).to_str().unwrap().to_string())
        .collect();
    let mut args = vec![
        "bench",
        "partitioners",
        "--json-file",
        json_file.to_str().unwrap(),
    ];
    for p in &paths {
        args.extend(["--plugin", p.as_str()]);
    }
    args.extend(flags);
    let stdout = c.yak_ok(&args);
    let report = serde_json::from_str(&std::fs::read_to_string(&json_file).unwrap()).unwrap();
    (stdout, report)
}

/// The result of (scenario, plugin).
fn result<'a>(report: &'a Value, scenario: &str, plugin: &str) -> &'a Value {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["scenario"] == scenario && r["plugin"] == plugin)
        .unwrap_or_else(|| panic!("no result for {scenario} / {plugin}"))
}

/// Every round of every result acknowledged all `messages` and has them on the partitions.
fn assert_rounds_complete(report: &Value, rounds: usize, messages: u64) {
    for r in report["results"].as_array().unwrap() {
        let what = format!("{} / {}", r["scenario"], r["plugin"]);
        let per_round = r["rounds"].as_array().unwrap();
        assert_eq!(per_round.len(), rounds, "{what}: one entry per round");
        for (i, round) in per_round.iter().enumerate() {
            assert_eq!(round["round"], i + 1, "{what}");
            assert_eq!(round["acked"], messages, "{what}");
            assert_eq!(round["failed"], 0, "{what}");
            let counts: u64 = round["partition_messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .sum();
            assert_eq!(
                counts, messages,
                "{what}: high watermarks cover every message"
            );
        }
    }
}

#[test]
fn given_skewed_keys_when_benchmarking_should_show_key_hash_skew_above_round_robin() {
    let c = TestCluster::start(3);
    let (stdout, report) = bench(
        &c,
        &["round-robin", "key-hash"],
        &[
            "--scenario",
            "skewed-keys",
            "--rounds",
            "2",
            "--messages",
            "3000",
            "--warmup-messages",
            "0",
        ],
    );
    assert_rounds_complete(&report, 2, 3000);
    let (rr, kh) = (
        result(&report, "skewed-keys", "round-robin"),
        result(&report, "skewed-keys", "key-hash"),
    );
    for i in 0..2 {
        let (rr_skew, kh_skew) = (
            num(&rr["rounds"][i]["skew"], "skew"),
            num(&kh["rounds"][i]["skew"], "skew"),
        );
        assert!(
            (rr_skew - 1.0).abs() < 1e-9,
            "round-robin is exactly even: {rr_skew}"
        );
        assert!(
            kh_skew > rr_skew + 0.2,
            "round {}: key-hash piles the hot keys on one partition: {kh_skew}",
            i + 1
        );
        assert_eq!(kh["rounds"][i]["consumed"], 3000, "read back to check keys");
    }
    assert_eq!(
        kh["keys_stable"], true,
        "key-hash keeps every key on one partition"
    );
    assert_eq!(rr["keys_stable"], false, "round-robin moves keys");

    // The table: one per scenario, a row per plugin, and the verdicts.
    assert!(stdout.contains("== skewed-keys"), "{stdout}");
    for col in [
        "plugin",
        "msg/s",
        "ack p99 ms",
        "mean batch",
        "requests",
        "skew max/mean",
        "CPU ms/M msgs",
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
        row("│ key-hash").contains("yes") && row("│ round-robin").contains("no"),
        "{stdout}"
    );
    assert!(
        stdout.contains("best skew max/mean: round-robin (ahead of key-hash)"),
        "a skew verdict outside the noise:\n{stdout}"
    );
}

#[test]
fn given_a_low_rate_when_benchmarking_should_show_sticky_batches_at_least_twice_round_robins() {
    let c = TestCluster::start(3);
    let (_, report) = bench(
        &c,
        &["round-robin", "sticky"],
        &[
            "--scenario",
            "low-rate",
            "--rounds",
            "2",
            "--messages",
            "600",
            "--warmup-messages",
            "0",
        ],
    );
    assert_rounds_complete(&report, 2, 600);
    let (rr, sticky) = (
        result(&report, "low-rate", "round-robin"),
        result(&report, "low-rate", "sticky"),
    );
    let (rr_batch, sticky_batch) = (
        num(&rr["mean_batch_records"], "mean batch"),
        num(&sticky["mean_batch_records"], "mean batch"),
    );
    assert!(
        sticky_batch >= 2.0 * rr_batch,
        "sticky {sticky_batch} vs round-robin {rr_batch} records per batch"
    );
    assert!(
        sticky["requests"].as_u64().unwrap() < rr["requests"].as_u64().unwrap(),
        "fewer requests"
    );
    for r in [rr, sticky] {
        // 600 messages at 2,000 msg/s take about 0.3 s whatever the plugin.
        let rate = num(&r["msgs_per_sec"], "msgs_per_sec");
        assert!(
            (1000.0..=2100.0).contains(&rate),
            "paced to the scenario's rate: {rate}"
        );
        assert_eq!(r["keys_stable"], Value::Null, "unkeyed");
    }
}

/// The state letter of process `pid` (T when stopped), if it runs.
fn process_state(pid: u64) -> Option<char> {
    let stat =
        std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

#[test]
fn given_a_slow_broker_when_benchmarking_should_send_less_to_it_with_least_loaded_than_round_robin()
{
    let c = TestCluster::start(3);
    let (_, report) = bench(
        &c,
        &["round-robin", "least-loaded"],
        &[
            "--scenario",
            "slow-broker",
            "--rounds",
            "3",
            "--messages",
            "4000",
            "--warmup-messages",
            "0",
        ],
    );
    assert_rounds_complete(&report, 3, 4000);
    let (rr, ll) = (
        result(&report, "slow-broker", "round-robin"),
        result(&report, "slow-broker", "least-loaded"),
    );
    for r in [rr, ll] {
        for round in r["rounds"].as_array().unwrap() {
            assert!(
                round["broker_pauses"].as_u64().unwrap() >= 1,
                "the broker was paused: {round}"
            );
        }
    }
    let (rr_share, ll_share) = (
        num(&rr["slowed_broker_share"], "share"),
        num(&ll["slowed_broker_share"], "share"),
    );
    assert!(
        (rr_share - 1.0 / 3.0).abs() < 0.01,
        "round-robin gives the slowed broker its third: {rr_share}"
    );
    assert!(
        ll_share < rr_share,
        "least-loaded routes around the paused broker: {ll_share} vs {rr_share}"
    );

    // Every broker runs on afterwards: none left stopped.
    let status = c.status_json();
    for b in status["brokers"].as_array().unwrap() {
        assert_eq!(b["alive"], true, "{b}");
        let state = process_state(b["pid"].as_u64().unwrap());
        assert!(
            state.is_some_and(|s| s != 'T'),
            "broker {} is {state:?}",
            b["id"]
        );
    }
}

#[test]
fn given_every_scenario_when_benchmarking_should_report_every_field_per_round_and_draw_the_chart() {
    let c = TestCluster::start(3);
    let chart = c.dir().join("bench.svg");
    let (stdout, report) = bench(
        &c,
        &["round-robin", "sticky"],
        &[
            "--scenario",
            "all",
            "--rounds",
            "2",
            "--messages",
            "1000",
            "--warmup-messages",
            "200",
            "--keys",
            "50",
            "--json",
            "--chart",
            chart.to_str().unwrap(),
        ],
    );
    let printed: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("--json is not JSON ({e}):\n{stdout}"));
    assert_eq!(
        printed["results"].as_array().unwrap().len(),
        10,
        "--json prints the report"
    );
    assert_rounds_complete(&report, 2, 1000);
    let scenarios = [
        "uniform",
        "skewed-keys",
        "low-rate",
        "slow-broker",
        "many-partitions",
    ];
    let described: Vec<&str> = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(described, scenarios);
    for s in report["scenarios"].as_array().unwrap() {
        assert!(s["description"].as_str().unwrap().len() > 100, "{s}");
        assert!(!s["verdicts"].as_array().unwrap().is_empty(), "{s}");
    }
    for scenario in scenarios {
        for plugin in ["round-robin", "sticky"] {
            let r = result(&report, scenario, plugin);
            for field in RESULT_FIELDS {
                assert!(
                    r.get(field).is_some(),
                    "{scenario} / {plugin} lacks {field}"
                );
            }
            let (median, min, max) = (
                num(&r["msgs_per_sec"], "median"),
                num(&r["msgs_per_sec_min"], "min"),
                num(&r["msgs_per_sec_max"], "max"),
            );
            assert!(
                0.0 < min && min <= median && median <= max,
                "{scenario} / {plugin}: {min} {median} {max}"
            );
            assert!(
                num(&r["cpu_ms_per_million"], "cpu") > 0.0,
                "{scenario} / {plugin}: CPU time measured"
            );
            assert!(num(&r["ack_p99_ms"], "p99") > 0.0);
            assert!(r["requests"].as_u64().unwrap() >= 1);
        }
    }
    let many = result(&report, "many-partitions", "round-robin");
    assert_eq!(
        many["rounds"][0]["partition_messages"]
            .as_array()
            .unwrap()
            .len(),
        120
    );
    assert_eq!(
        result(&report, "uniform", "round-robin")["keys_stable"],
        false
    );
    assert_eq!(
        result(&report, "low-rate", "sticky")["keys_stable"],
        Value::Null
    );

    let svg = std::fs::read_to_string(&chart).unwrap();
    for text in [
        "<svg",
        "round-robin",
        "sticky",
        "slow-broker · msg/s",
        "many-partitions · messages per partition",
    ] {
        assert!(svg.contains(text), "chart lacks {text}");
    }
    let topics = c.yak_ok(&["topic", "list", "--json"]);
    assert!(
        !topics.contains("bench-"),
        "benchmark topics deleted: {topics}"
    );
}
