//! One run of `bench partitioners`: one plugin, one scenario, one round, on
//! a fresh topic (`bench-<scenario>-<strategy>-<time>-<pid>-<n>`), deleted
//! afterwards unless kept.
//!
//! A run creates the topic and waits until every leader answers; starts the
//! pauser (slow-broker); sends the workload's messages (paced to its rate,
//! or as fast as the producer takes them) and flushes; then reads the
//! leaders' high watermarks (messages per partition) and, for keyed
//! workloads, consumes the topic back to see whether each key stayed on one
//! partition. Measured around send + flush: wall time and this thread's CPU
//! time (`getrusage(RUSAGE_THREAD)`: the producer runs here, the pauser on
//! its own thread). Never aggregates or prints.

use super::scenarios::{KeyGen, Workload};
use super::slow_broker::Pauser;
use super::{BenchError, Settings};
use nix::sys::resource::{getrusage, UsageWho};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use yak_client::partitioner::Partitioner as _;
use yak_client::plugin::PluginPartitioner;
use yak_client::{
    Admin, ClientError, Consumer, ConsumerConfig, Producer, ProducerConfig, StartFrom,
};
use yak_protocol::limits::{
    BENCH_POLL_EVERY_MESSAGES, BENCH_SETTLE_TIMEOUT_MS, BENCH_SLOW_BROKER_PAUSE_MS,
    BENCH_SLOW_BROKER_RUN_MS,
};

/// How long the cluster may take to settle (leaders, high watermarks, consume back).
const SETTLE_TIMEOUT: Duration = Duration::from_millis(BENCH_SETTLE_TIMEOUT_MS);
/// Shortest sleep of the paced (fixed-rate) send loop, so it never spins.
const PACE_SLEEP_MIN: Duration = Duration::from_micros(100);

/// What one run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundFigures {
    /// Round number, from 1.
    pub round: u32,
    /// The run's topic.
    pub topic: String,
    /// Messages acknowledged.
    pub acked: u64,
    /// Messages not acknowledged.
    pub failed: u64,
    /// Send + flush, seconds.
    pub elapsed_s: f64,
    /// Acknowledged messages per second.
    pub msgs_per_sec: f64,
    /// Ack latency, median over messages (batch opened to acknowledged), ms.
    pub ack_p50_ms: f64,
    /// Ack latency, 99th percentile over messages, ms.
    pub ack_p99_ms: f64,
    /// Batches sent.
    pub batches: u64,
    /// Produce requests sent (batches plus retries).
    pub requests: u64,
    /// Messages per batch, on average.
    pub mean_batch_records: f64,
    /// Messages per partition (leaders' high watermarks).
    pub partition_messages: Vec<u64>,
    /// Max over mean messages per partition.
    pub skew: f64,
    /// Every key stayed on one partition (`None` when unkeyed).
    pub keys_stable: Option<bool>,
    /// Messages consumed back (`None` when unkeyed: not read back).
    pub consumed: Option<u64>,
    /// Producer CPU time (user + system) per million acknowledged messages, ms.
    pub cpu_ms_per_million: f64,
    /// Share of messages on the slowed broker's partitions (slow-broker only).
    pub slowed_broker_share: Option<f64>,
    /// Times the broker was paused (slow-broker only).
    pub broker_pauses: Option<u64>,
    /// Messages the plugin failed to place (built-in default used).
    pub partitioner_fallbacks: u64,
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

/// A topic name for run `n` of `strategy` in `scenario`.
pub fn topic_name(scenario: &str, strategy: &str, n: usize) -> String {
    let clean: String = strategy
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("bench-{scenario}-{clean}-{secs}-{}-{n}", std::process::id())
}

/// One run to do.
#[derive(Debug)]
pub struct Run<'a> {
    /// Cluster run dir.
    pub dir: &'a Path,
    /// The plugin file.
    pub plugin: &'a Path,
    /// The workload.
    pub workload: &'a Workload,
    /// Round number, from 1 (0 for a warm-up); picks the key sequence.
    pub round: u32,
    /// Distinguishes this run's topic.
    pub n: usize,
    /// Producer and topic settings.
    pub settings: &'a Settings,
    /// Stop early when set.
    pub interrupted: &'a Arc<AtomicBool>,
}

/// The slowed broker and the partitions it leads.
struct Slowed {
    pid: u32,
    partitions: Vec<u32>,
}

impl Run<'_> {
    fn context(&self, plugin: &str) -> String {
        format!(
            "{} / {plugin} / round {}",
            self.workload.scenario.name(),
            self.round
        )
    }

    /// Does the run.
    pub fn go(&self) -> Result<RoundFigures, BenchError> {
        let plugin = PluginPartitioner::load(self.plugin, self.settings.producer.batch_bytes)?;
        let name = plugin.name().to_string();
        let ctx = self.context(&name);
        let client = |source: ClientError| BenchError::Client {
            context: ctx.clone(),
            source,
        };
        let w = self.workload;
        let topic = topic_name(w.scenario.name(), &name, self.n);
        let mut admin = Admin::connect(self.dir).map_err(client)?;
        admin
            .create_topic(&topic, Some(w.partitions), w.replication_factor)
            .map_err(client)?;
        let leaders = wait_for_leaders(&mut admin, &topic).map_err(|e| e.with_context(&ctx))?;
        let slowed = if w.slow_broker {
            Some(slowed_broker(&mut admin, &leaders, &ctx)?)
        } else {
            None
        };

        let config = ProducerConfig {
            create_topics: false,
            record_latency: true,
            ..self.settings.producer.clone()
        };
        let mut producer = Producer::connect(self.dir, config).map_err(client)?;
        producer.set_partitioner(Box::new(plugin));
        let mut keys = KeyGen::new(w.keys, self.round);
        let value = vec![b'v'; self.settings.message_bytes];

        let cpu_before = thread_cpu()?;
        let started = Instant::now();
        let pauser = match &slowed {
            Some(s) => Some(
                Pauser::start(
                    s.pid,
                    Duration::from_millis(BENCH_SLOW_BROKER_PAUSE_MS),
                    Duration::from_millis(BENCH_SLOW_BROKER_RUN_MS),
                    Arc::clone(self.interrupted),
                )
                .map_err(|e| BenchError::SlowBroker {
                    context: ctx.clone(),
                    what: format!("cannot signal pid {}: {e}", s.pid),
                })?,
            ),
            None => None,
        };
        for i in 0..w.messages {
            if let Some(rate) = w.rate_per_sec {
                let due = started + Duration::from_secs_f64(i as f64 / rate.max(1) as f64);
                pace(&mut producer, due).map_err(client)?;
            }
            let key = keys.key(i);
            producer
                .send(&topic, key.as_deref(), &value)
                .map_err(client)?;
            if w.rate_per_sec.is_some()
                || i % BENCH_POLL_EVERY_MESSAGES == BENCH_POLL_EVERY_MESSAGES - 1
            {
                producer.poll().map_err(client)?;
                if self.interrupted.load(Ordering::SeqCst) {
                    return Err(BenchError::Interrupted);
                }
            }
        }
        let report = producer.flush().map_err(client)?;
        let elapsed = started.elapsed();
        let cpu = thread_cpu()?.saturating_sub(cpu_before);
        let broker_pauses = pauser.as_ref().map(Pauser::pauses);
        drop(pauser);
        let latency = producer.ack_latency_us().cloned();
        drop(producer);

        let partition_messages =
            partition_messages(&mut admin, &topic, report.acked).map_err(client)?;
        let (consumed, keys_stable) = if keys.keyed() {
            let (n, stable) =
                consume_back(self.dir, &topic, report.acked, self.interrupted).map_err(client)?;
            (Some(n), Some(stable))
        } else {
            (None, None)
        };
        if !self.settings.keep_topics {
            if let Err(e) = admin.delete_topic(&topic) {
                tracing::warn!(%topic, "cannot delete benchmark topic: {e}");
            }
        }
        let total: u64 = partition_messages.iter().sum();
        let slowed_broker_share = slowed.as_ref().map(|s| {
            let on_slowed: u64 = s
                .partitions
                .iter()
                .filter_map(|p| partition_messages.get(*p as usize))
                .sum();
            on_slowed as f64 / total.max(1) as f64
        });
        let ms = |q: f64| {
            latency
                .as_ref()
                .map_or(0.0, |h| h.value_at_quantile(q) as f64 / 1000.0)
        };
        let acked = report.acked;
        Ok(RoundFigures {
            round: self.round,
            topic,
            acked,
            failed: report.failed,
            elapsed_s: elapsed.as_secs_f64(),
            msgs_per_sec: acked as f64 / elapsed.as_secs_f64().max(1e-9),
            ack_p50_ms: ms(0.5),
            ack_p99_ms: ms(0.99),
            batches: report.batches,
            requests: report.requests,
            mean_batch_records: acked as f64 / report.batches.max(1) as f64,
            skew: skew(&partition_messages),
            partition_messages,
            keys_stable,
            consumed,
            cpu_ms_per_million: cpu.as_secs_f64() * 1e3 * 1e6 / acked.max(1) as f64,
            slowed_broker_share,
            broker_pauses,
            partitioner_fallbacks: report.partitioner_fallbacks,
        })
    }
}

/// Sends lingered batches and reads acks until `due`.
fn pace(producer: &mut Producer, due: Instant) -> Result<(), ClientError> {
    loop {
        let now = Instant::now();
        if now >= due {
            return Ok(());
        }
        let wake = producer.next_deadline().map_or(due, |d| d.min(due));
        std::thread::sleep(
            wake.saturating_duration_since(now)
                .max(PACE_SLEEP_MIN)
                .min(due - now),
        );
        producer.poll()?;
    }
}

/// This thread's CPU time, user + system.
fn thread_cpu() -> Result<Duration, BenchError> {
    let usage = getrusage(UsageWho::RUSAGE_THREAD).map_err(BenchError::CpuTime)?;
    let micros = |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64;
    Ok(Duration::from_micros(
        micros(usage.user_time()) + micros(usage.system_time()),
    ))
}

/// A settle failure before its context is known.
struct NotSettled(String);

impl NotSettled {
    fn with_context(self, ctx: &str) -> BenchError {
        BenchError::Settle {
            context: ctx.to_string(),
            what: self.0,
            waited: SETTLE_TIMEOUT,
        }
    }
}

impl From<ClientError> for NotSettled {
    fn from(e: ClientError) -> Self {
        NotSettled(e.to_string())
    }
}

/// Waits until every partition of `topic` has a leader that holds it; returns the leader of each.
fn wait_for_leaders(admin: &mut Admin, topic: &str) -> Result<Vec<u32>, NotSettled> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let meta = admin.describe_topic(topic)?;
        let offsets = admin.replica_offsets()?;
        let leaders: Vec<Option<u32>> = meta
            .partitions
            .iter()
            .map(|p| {
                p.leader
                    .filter(|l| offsets.contains_key(&(topic.to_string(), p.partition, *l)))
            })
            .collect();
        if leaders.iter().all(Option::is_some) {
            return Ok(leaders.into_iter().flatten().collect());
        }
        if Instant::now() >= deadline {
            return Err(NotSettled(format!(
                "topic '{topic}' has no leader for some partition"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The broker leading most partitions (the lowest id on a tie) and its pid.
fn slowed_broker(admin: &mut Admin, leaders: &[u32], ctx: &str) -> Result<Slowed, BenchError> {
    let meta = admin.metadata().map_err(|source| BenchError::Client {
        context: ctx.to_string(),
        source,
    })?;
    let alive = meta.brokers.iter().filter(|b| b.alive).count();
    let fail = |what: String| BenchError::SlowBroker {
        context: ctx.to_string(),
        what,
    };
    if alive < 2 {
        return Err(fail(format!(
            "needs at least 2 alive brokers, the cluster has {alive}"
        )));
    }
    let mut led: HashMap<u32, u32> = HashMap::new();
    for l in leaders {
        *led.entry(*l).or_default() += 1;
    }
    let Some((&id, _)) = led
        .iter()
        .max_by_key(|(id, n)| (**n, std::cmp::Reverse(**id)))
    else {
        return Err(fail("the topic has no partitions".into()));
    };
    if led.len() < 2 {
        return Err(fail(format!(
            "broker {id} leads every partition: nothing to route around it to"
        )));
    }
    let Some(broker) = meta.brokers.iter().find(|b| b.id == id && b.alive) else {
        return Err(fail(format!("broker {id} is not alive")));
    };
    let partitions = leaders
        .iter()
        .enumerate()
        .filter(|(_, l)| **l == id)
        .map(|(p, _)| p as u32)
        .collect();
    Ok(Slowed {
        pid: broker.pid,
        partitions,
    })
}

/// Messages per partition from the leaders' high watermarks, once they cover `acked`.
fn partition_messages(admin: &mut Admin, topic: &str, acked: u64) -> Result<Vec<u64>, ClientError> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let offsets = admin.leader_offsets(topic)?;
        let counts: Vec<u64> = offsets
            .iter()
            .map(|(_, o)| {
                o.as_ref()
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
fn consume_back(
    dir: &Path,
    topic: &str,
    expected: u64,
    interrupted: &AtomicBool,
) -> Result<(u64, bool), ClientError> {
    let mut consumer =
        Consumer::subscribe(dir, topic, StartFrom::Earliest, ConsumerConfig::default())?;
    let mut placed: HashMap<Vec<u8>, u32> = HashMap::new();
    let mut stable = true;
    let mut consumed = 0u64;
    let mut last_progress = Instant::now();
    while consumed < expected
        && last_progress.elapsed() < SETTLE_TIMEOUT
        && !interrupted.load(Ordering::SeqCst)
    {
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
    }
    Ok((consumed, stable))
}

#[cfg(test)]
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
        let a = topic_name("skewed-keys", "weird name/1", 0);
        assert!(yak_protocol::names::validate_topic(&a).is_ok(), "{a}");
        assert_ne!(a, topic_name("skewed-keys", "weird name/1", 1));
        assert!(a.starts_with("bench-skewed-keys-weird_name_1-"), "{a}");
    }

    #[test]
    fn given_this_thread_when_burning_cpu_should_count_it() {
        let before = thread_cpu().ok();
        let mut x = 0u64;
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(30) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let after = thread_cpu().ok();
        assert!(after > before, "{before:?} -> {after:?}");
    }
}
