//! `yak-node bench partitioners`: the same workload through each partitioner
//! plugin, side by side, against the live cluster.
//!
//! Per plugin: a fresh topic (`bench-<strategy>-<time>-<pid>-<n>`) with
//! `--partitions` partitions, waited on until every leader answers; then
//! `--messages` messages of `--message-bytes` bytes, message `i` keyed
//! `key-{i % keys}` (unkeyed with `--keys 0`), sent as fast as the producer
//! takes them; then a flush. Measured: throughput over send + flush, ack
//! latency per batch (first send to acknowledgement, an HdrHistogram), batches
//! and mean batch size (from the producer), messages per partition (the
//! leaders' high watermarks), and whether every key stayed on one partition
//! (by consuming the topic back). The topic is deleted afterwards unless
//! `--keep-topics`.
//!
//! Prints one table (or, with `--json`, the JSON report instead);
//! `--json-file FILE` also writes the JSON report, and `--chart FILE.svg`
//! draws throughput, p99 and messages per partition per plugin.

use super::bench_chart;
use super::produce::parse_acks;
use super::ClusterArg;
use crate::client::plugin::PluginPartitioner;
use crate::client::{Admin, ClientError, Consumer, ConsumerConfig, Producer, ProducerConfig, StartFrom};
use crate::limits::{BATCH_BYTES_DEFAULT, LINGER_MS_DEFAULT};
use clap::Args;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Longest wait for a new topic's leaders, for high watermarks to cover
/// every acknowledged message, or for the consumer to make progress.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(15);
/// The producer is polled (acks read, lingering batches sent) every this many messages.
const POLL_EVERY_MESSAGES: u64 = 32;
/// Largest ack latency the histogram holds, in microseconds (60 s).
const LATENCY_US_MAX: u64 = 60_000_000;

/// Flags of `bench partitioners`.
#[derive(Debug, Args)]
pub struct BenchPartitionersArgs {
    /// A partitioner plugin to run (repeat for each).
    #[arg(long = "plugin", value_name = "FILE.so", required = true)]
    pub plugins: Vec<PathBuf>,
    /// Messages per plugin.
    #[arg(long, default_value_t = 100_000)]
    pub messages: u64,
    /// Bytes per message value.
    #[arg(long, default_value_t = 100)]
    pub message_bytes: usize,
    /// Distinct keys (message i has key `key-{i % K}`); 0 sends unkeyed messages.
    #[arg(long, default_value_t = 1000)]
    pub keys: u64,
    /// Partitions of each benchmark topic.
    #[arg(long, default_value_t = 6)]
    pub partitions: u32,
    /// Replicas per partition (cluster default if absent).
    #[arg(long)]
    pub replication_factor: Option<u32>,
    /// 0, 1 or all.
    #[arg(long, default_value = "all", value_parser = parse_acks)]
    pub acks: i8,
    /// Producer linger.
    #[arg(long, default_value_t = LINGER_MS_DEFAULT)]
    pub linger_ms: u64,
    /// Producer batch size.
    #[arg(long, default_value_t = BATCH_BYTES_DEFAULT)]
    pub batch_bytes: usize,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to this file.
    #[arg(long, value_name = "FILE.json")]
    pub json_file: Option<PathBuf>,
    /// Write an SVG chart here.
    #[arg(long, value_name = "FILE.svg")]
    pub chart: Option<PathBuf>,
    /// Keep the benchmark topics (deleted by default).
    #[arg(long)]
    pub keep_topics: bool,
    /// Cluster.
    #[command(flatten)]
    pub cluster: ClusterArg,
}

/// What one plugin's run measured.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Strategy name from the plugin.
    pub plugin: String,
    /// The .so file.
    pub path: PathBuf,
    /// The benchmark topic.
    pub topic: String,
    /// Messages acknowledged.
    pub acked: u64,
    /// Messages not acknowledged.
    pub failed: u64,
    /// Send + flush time.
    pub elapsed: Duration,
    /// Ack latency per batch, microseconds.
    pub latency_us: Histogram<u64>,
    /// Batches sent.
    pub batches: u64,
    /// Messages per partition (leaders' high watermarks).
    pub partition_messages: Vec<u64>,
    /// Each key on one partition (None when unkeyed).
    pub keys_stable: Option<bool>,
    /// Messages consumed back.
    pub consumed: u64,
    /// Messages the plugin failed to place (built-in default used).
    pub partitioner_fallbacks: u64,
    /// Key + value bytes per message, on average.
    pub message_payload_bytes: f64,
}

impl RunResult {
    /// Acknowledged messages per second.
    pub fn msgs_per_sec(&self) -> f64 {
        self.acked as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Acknowledged payload (keys + values), 10^6 bytes per second.
    pub fn mb_per_sec(&self) -> f64 {
        self.msgs_per_sec() * self.message_payload_bytes / 1e6
    }

    /// Ack latency quantile in milliseconds.
    pub fn latency_ms(&self, q: f64) -> f64 {
        self.latency_us.value_at_quantile(q) as f64 / 1000.0
    }

    /// Messages per batch, on average.
    pub fn mean_batch_records(&self) -> f64 {
        self.acked as f64 / self.batches.max(1) as f64
    }

    /// Max over mean messages per partition (1.0 is perfectly even).
    pub fn skew(&self) -> f64 {
        skew(&self.partition_messages)
    }
}

/// Max over mean of `counts` (1.0 when even; 0 for no messages).
pub fn skew(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    if counts.is_empty() || total == 0 {
        return 0.0;
    }
    let mean = total as f64 / counts.len() as f64;
    counts.iter().copied().max().unwrap_or(0) as f64 / mean
}

fn progress_bar(len: u64, prefix: &str) -> ProgressBar {
    let target =
        if std::io::stderr().is_terminal() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    let style = ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} {msg} ({per_sec}, {elapsed})")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(prefix.to_string());
    bar
}

fn topic_name(strategy: &str, n: usize) -> String {
    let clean: String =
        strategy.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!("bench-{clean}-{secs}-{}-{n}", std::process::id())
}

/// Waits until every partition of `topic` has a leader that holds it.
fn wait_for_leaders(admin: &mut Admin, topic: &str) -> Result<(), ClientError> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let meta = admin.describe_topic(topic)?;
        let offsets = admin.replica_offsets()?;
        let ready = meta
            .partitions
            .iter()
            .all(|p| p.leader.is_some_and(|l| offsets.contains_key(&(topic.to_string(), p.partition, l))));
        if ready {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(ClientError::Invalid(format!("topic '{topic}' has no leader for some partition after {SETTLE_TIMEOUT:?}")));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Messages per partition from the leaders' high watermarks, once they cover `acked`.
fn partition_messages(admin: &mut Admin, topic: &str, acked: u64) -> Result<Vec<u64>, ClientError> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let meta = admin.describe_topic(topic)?;
        let offsets = admin.replica_offsets()?;
        let counts: Vec<u64> = meta
            .partitions
            .iter()
            .map(|p| {
                p.leader
                    .and_then(|l| offsets.get(&(topic.to_string(), p.partition, l)))
                    .map_or(0, |o| o.high_watermark.saturating_sub(o.log_start_offset))
            })
            .collect();
        if counts.iter().sum::<u64>() >= acked || Instant::now() >= deadline {
            return Ok(counts);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads `topic` from the beginning until `expected` messages came or no
/// progress for [`SETTLE_TIMEOUT`]; returns (consumed, every key on one partition).
fn consume_back(dir: &Path, topic: &str, expected: u64, bar: &ProgressBar) -> Result<(u64, bool), ClientError> {
    let mut consumer = Consumer::subscribe(dir, topic, StartFrom::Earliest, ConsumerConfig::default())?;
    let mut placed: HashMap<Vec<u8>, u32> = HashMap::new();
    let mut stable = true;
    let mut consumed = 0u64;
    let mut last_progress = Instant::now();
    bar.set_position(0);
    bar.set_message("consumed back");
    while consumed < expected && last_progress.elapsed() < SETTLE_TIMEOUT {
        let records = consumer.poll(Duration::from_millis(500))?;
        if !records.is_empty() {
            last_progress = Instant::now();
        }
        for r in records {
            consumed += 1;
            if let Some(key) = r.key {
                stable &= *placed.entry(key).or_insert(r.partition) == r.partition;
            }
        }
        bar.set_position(consumed);
    }
    Ok((consumed, stable))
}

fn key_of(i: u64, keys: u64) -> Option<Vec<u8>> {
    (keys > 0).then(|| format!("key-{}", i % keys).into_bytes())
}

fn run_one(a: &BenchPartitionersArgs, plugin: PluginPartitioner, n: usize) -> Result<RunResult, Box<dyn std::error::Error>> {
    use crate::client::partitioner::Partitioner as _;
    let dir = &a.cluster.cluster;
    let name = plugin.name().to_string();
    let path = plugin.path().to_path_buf();
    let topic = topic_name(&name, n);
    let mut admin = Admin::connect(dir)?;
    admin.create_topic(&topic, Some(a.partitions), a.replication_factor)?;
    wait_for_leaders(&mut admin, &topic)?;

    let config = ProducerConfig {
        acks: a.acks,
        linger: Duration::from_millis(a.linger_ms),
        batch_bytes: a.batch_bytes,
        create_topics: false,
        ..ProducerConfig::default()
    };
    let mut producer = Producer::connect(dir, config)?;
    producer.set_partitioner(Box::new(plugin));
    let histogram = Histogram::<u64>::new_with_bounds(1, LATENCY_US_MAX, 3)
        .map_err(|e| format!("invariant: histogram bounds are valid: {e}"))?;
    let latencies = Arc::new(Mutex::new(histogram));
    let sink = Arc::clone(&latencies);
    producer.set_ack_observer(Box::new(move |_topic, ack| {
        if let Ok(mut h) = sink.lock() {
            h.saturating_record(ack.latency.as_micros() as u64);
        }
    }));

    let value = vec![b'v'; a.message_bytes];
    let mut payload_bytes = 0u64;
    let bar = progress_bar(a.messages, &name);
    bar.set_message("sent");
    let started = Instant::now();
    for i in 0..a.messages {
        let key = key_of(i, a.keys);
        payload_bytes += (value.len() + key.as_ref().map_or(0, Vec::len)) as u64;
        producer.send(&topic, key.as_deref(), &value)?;
        if i % POLL_EVERY_MESSAGES == POLL_EVERY_MESSAGES - 1 {
            producer.poll()?;
            bar.set_position(i + 1);
        }
    }
    bar.set_message("sent, flushing");
    let report = producer.flush()?;
    let elapsed = started.elapsed();
    bar.set_position(a.messages);
    drop(producer);

    let partition_messages = partition_messages(&mut admin, &topic, report.acked)?;
    let (consumed, stable) = consume_back(dir, &topic, report.acked, &bar)?;
    bar.finish_and_clear();
    if !a.keep_topics {
        if let Err(e) = admin.delete_topic(&topic) {
            tracing::warn!(%topic, "cannot delete benchmark topic: {e}");
        }
    }
    let latency_us = latencies.lock().map(|h| h.clone()).map_err(|_| "invariant: latency lock is never poisoned")?;
    Ok(RunResult {
        plugin: name,
        path,
        topic,
        acked: report.acked,
        failed: report.failed,
        elapsed,
        latency_us,
        batches: report.batches,
        partition_messages,
        keys_stable: (a.keys > 0).then_some(stable),
        consumed,
        partitioner_fallbacks: report.partitioner_fallbacks,
        message_payload_bytes: payload_bytes as f64 / a.messages.max(1) as f64,
    })
}

/// The report as a table.
pub fn table(results: &[RunResult]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "plugin",
        "msg/s",
        "MB/s",
        "ack p50 ms",
        "ack p99 ms",
        "ack p99.9 ms",
        "batches",
        "mean batch",
        "skew max/mean",
        "keys stable",
    ]);
    for r in results {
        t.add_row(vec![
            r.plugin.clone(),
            format!("{:.0}", r.msgs_per_sec()),
            format!("{:.2}", r.mb_per_sec()),
            format!("{:.2}", r.latency_ms(0.5)),
            format!("{:.2}", r.latency_ms(0.99)),
            format!("{:.2}", r.latency_ms(0.999)),
            r.batches.to_string(),
            format!("{:.1}", r.mean_batch_records()),
            format!("{:.3}", r.skew()),
            match r.keys_stable {
                Some(true) => "yes".into(),
                Some(false) => "no".into(),
                None => "n/a (unkeyed)".into(),
            },
        ]);
    }
    t
}

/// The report as JSON (stable field names).
pub fn report_json(a: &BenchPartitionersArgs, results: &[RunResult]) -> Value {
    let runs: Vec<Value> = results
        .iter()
        .map(|r| {
            json!({
                "plugin": r.plugin,
                "path": r.path.display().to_string(),
                "topic": r.topic,
                "acked": r.acked,
                "failed": r.failed,
                "consumed": r.consumed,
                "elapsed_s": r.elapsed.as_secs_f64(),
                "msgs_per_sec": r.msgs_per_sec(),
                "mb_per_sec": r.mb_per_sec(),
                "ack_latency_ms": {
                    "p50": r.latency_ms(0.5),
                    "p99": r.latency_ms(0.99),
                    "p999": r.latency_ms(0.999),
                    "max": r.latency_us.max() as f64 / 1000.0,
                    "batches_measured": r.latency_us.len(),
                },
                "batches": r.batches,
                "mean_batch_records": r.mean_batch_records(),
                "partition_messages": r.partition_messages,
                "skew": r.skew(),
                "keys_stable": r.keys_stable,
                "partitioner_fallbacks": r.partitioner_fallbacks,
            })
        })
        .collect();
    json!({
        "workload": {
            "messages": a.messages,
            "message_bytes": a.message_bytes,
            "keys": a.keys,
            "partitions": a.partitions,
            "acks": if a.acks == -1 { "all".to_string() } else { a.acks.to_string() },
            "linger_ms": a.linger_ms,
            "batch_bytes": a.batch_bytes,
        },
        "results": runs,
    })
}

/// Runs `bench partitioners`.
pub fn run(a: BenchPartitionersArgs) -> Result<(), Box<dyn std::error::Error>> {
    if a.messages == 0 || a.partitions == 0 {
        return Err("--messages and --partitions must be at least 1".into());
    }
    // Every plugin is loaded before anything runs: a bad file fails at once.
    let mut plugins = Vec::new();
    for path in &a.plugins {
        plugins.push(PluginPartitioner::load(path, a.batch_bytes)?);
    }
    let mut results = Vec::new();
    for (n, plugin) in plugins.into_iter().enumerate() {
        let r = run_one(&a, plugin, n)?;
        if r.failed > 0 {
            eprintln!("warning: {}: {} messages were not acknowledged", r.plugin, r.failed);
        }
        if r.partitioner_fallbacks > 0 {
            eprintln!("warning: {}: failed to place {} messages (built-in default used)", r.plugin, r.partitioner_fallbacks);
        }
        results.push(r);
    }
    if let Some(path) = &a.chart {
        bench_chart::draw(path, &results).map_err(|e| format!("cannot write chart {}: {e}", path.display()))?;
    }
    let report = serde_json::to_string_pretty(&report_json(&a, &results))?;
    if let Some(path) = &a.json_file {
        std::fs::write(path, format!("{report}\n")).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if a.json {
        println!("{report}");
    } else {
        println!(
            "{} messages x {} B, {} keys, {} partitions, acks={} per plugin",
            a.messages,
            a.message_bytes,
            a.keys,
            a.partitions,
            if a.acks == -1 { "all".to_string() } else { a.acks.to_string() }
        );
        println!("{}", table(&results));
        for (what, path) in [("chart", &a.chart), ("report", &a.json_file)] {
            if let Some(path) = path {
                println!("{what}: {}", path.display());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn given_counts_when_computing_skew_should_give_max_over_mean() {
        assert_eq!(skew(&[10, 10, 10]), 1.0);
        assert_eq!(skew(&[30, 0, 0]), 3.0);
        assert_eq!(skew(&[]), 0.0);
        assert_eq!(skew(&[0, 0]), 0.0);
    }

    #[test]
    fn given_strategy_names_when_naming_topics_should_be_valid_and_distinct() {
        let a = topic_name("weird name/1", 0);
        assert!(crate::protocol::names::validate_topic(&a).is_ok(), "{a}");
        assert_ne!(a, topic_name("weird name/1", 1));
    }

    #[test]
    fn given_key_count_when_generating_keys_should_cycle_or_be_absent() {
        assert_eq!(key_of(7, 5), Some(b"key-2".to_vec()));
        assert_eq!(key_of(7, 0), None);
    }
}
