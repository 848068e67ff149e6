//! `bench produce`: P producer threads send N messages of S bytes, at full
//! speed or at a fixed total rate; reports throughput and ack latency.

use super::{histogram, percentiles_ms, rss::RssSampler, BenchResult, Progress};
use hdrhistogram::Histogram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use yak_client::{Admin, ClientError, Producer, ProducerConfig};

/// What to run.
#[derive(Debug, Clone)]
pub struct ProduceSpec {
    /// Topic (created with `partitions`/`replication_factor` if missing).
    pub topic: String,
    /// Partitions for a new topic.
    pub partitions: Option<u32>,
    /// Replicas for a new topic.
    pub replication_factor: Option<u32>,
    /// Messages in all.
    pub messages: u64,
    /// Bytes per message value.
    pub message_bytes: usize,
    /// Producer threads, each with its own connections.
    pub producers: usize,
    /// Total messages per second; `None` is as fast as possible.
    pub rate: Option<f64>,
    /// Producer settings (acks, linger, batch size, ...) of every thread;
    /// the benchmark turns on latency recording itself.
    pub producer: ProducerConfig,
    /// Messages sent (and acknowledged) before the measurement starts.
    pub warmup_messages: u64,
}

/// Creates `topic` unless it exists.
pub fn ensure_topic(
    cluster: &Path,
    topic: &str,
    partitions: Option<u32>,
    rf: Option<u32>,
) -> Result<(), ClientError> {
    let mut admin = Admin::connect(cluster)?;
    if admin.describe_topic(topic).is_ok() {
        return Ok(());
    }
    admin.create_topic(topic, partitions, rf).map(|_| ())
}

/// Sends `messages` to every partition of `topic` round-robin and waits for
/// their acks, outside any measurement: the first append to a partition
/// writes its leader-epoch checkpoint and directory entries, a one-off cost
/// a benchmark of the steady state should not include.
pub fn warm_up(cluster: &Path, topic: &str, messages: u64, acks: i8) -> Result<(), ClientError> {
    if messages == 0 {
        return Ok(());
    }
    let partitions = Admin::connect(cluster)?
        .describe_topic(topic)?
        .partitions
        .len()
        .max(1) as u64;
    let mut producer = Producer::connect(
        cluster,
        ProducerConfig {
            acks,
            ..ProducerConfig::default()
        },
    )?;
    for i in 0..messages.max(partitions) {
        producer.send_to(topic, (i % partitions) as u32, None, b"warm-up")?;
    }
    let report = producer.flush()?;
    if report.failed > 0 {
        return Err(ClientError::Invalid(format!(
            "warm-up: {} messages failed",
            report.failed
        )));
    }
    Ok(())
}

/// Pids of the alive brokers.
pub fn broker_pids(cluster: &Path) -> Result<Vec<u32>, ClientError> {
    Ok(Admin::connect(cluster)?
        .metadata()?
        .brokers
        .iter()
        .filter(|b| b.alive)
        .map(|b| b.pid)
        .collect())
}

struct ThreadResult {
    acked: u64,
    failed: u64,
    latency: Histogram<u64>,
    /// When its last message was acknowledged.
    finished: Instant,
}

fn producer_thread(
    cluster: PathBuf,
    spec: ProduceSpec,
    count: u64,
    sent: Arc<AtomicU64>,
    start: Instant,
) -> Result<ThreadResult, ClientError> {
    let config = ProducerConfig {
        record_latency: true,
        ..spec.producer.clone()
    };
    let mut producer = Producer::connect(&cluster, config)?;
    let value = vec![b'x'; spec.message_bytes];
    let rate = spec.rate.map(|r| r / spec.producers as f64);
    for i in 0..count {
        if let Some(rate) = rate {
            let due = start + Duration::from_secs_f64(i as f64 / rate);
            loop {
                producer.poll()?;
                let now = Instant::now();
                if now >= due {
                    break;
                }
                std::thread::sleep((due - now).min(Duration::from_micros(200)));
            }
        }
        producer.send(&spec.topic, None, &value)?;
        if i % 512 == 511 {
            producer.poll()?;
            sent.fetch_add(512, Ordering::Relaxed);
        }
    }
    sent.fetch_add(count % 512, Ordering::Relaxed);
    let report = producer.flush()?;
    let finished = Instant::now();
    let latency = producer.ack_latency_us().cloned().unwrap_or_else(histogram);
    Ok(ThreadResult {
        acked: report.acked,
        failed: report.failed,
        latency,
        finished,
    })
}

/// Runs the benchmark; `progress` hears of the messages sent.
pub fn run(
    cluster: &Path,
    spec: &ProduceSpec,
    progress: &mut dyn FnMut(Progress),
) -> Result<BenchResult, ClientError> {
    if spec.producers == 0 || spec.messages == 0 {
        return Err(ClientError::Invalid(
            "--producers and --messages must be at least 1".into(),
        ));
    }
    ensure_topic(
        cluster,
        &spec.topic,
        spec.partitions,
        spec.replication_factor,
    )?;
    warm_up(
        cluster,
        &spec.topic,
        spec.warmup_messages,
        spec.producer.acks,
    )?;
    let rss = RssSampler::start(broker_pids(cluster)?);
    let sent = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let threads: Vec<_> = (0..spec.producers)
        .map(|i| {
            let per = spec.messages / spec.producers as u64
                + u64::from((i as u64) < spec.messages % spec.producers as u64);
            let (cluster, spec, sent) = (cluster.to_path_buf(), spec.clone(), Arc::clone(&sent));
            std::thread::spawn(move || producer_thread(cluster, spec, per, sent, start))
        })
        .collect();
    while threads.iter().any(|t| !t.is_finished()) {
        progress(Progress {
            done: sent.load(Ordering::Relaxed),
            total: spec.messages,
        });
        std::thread::sleep(Duration::from_millis(100));
    }
    // Timed to the last acknowledgement, not to when this loop noticed.
    let mut finished = start;
    let mut latency = histogram();
    let (mut acked, mut failed) = (0, 0);
    for t in threads {
        let r = t
            .join()
            .map_err(|_| ClientError::Invalid("a producer thread panicked".into()))??;
        finished = finished.max(r.finished);
        acked += r.acked;
        failed += r.failed;
        latency
            .add(&r.latency)
            .map_err(|e| ClientError::Invalid(format!("latency histogram: {e}")))?;
    }
    let seconds = (finished - start).as_secs_f64();
    let acks = match spec.producer.acks {
        -1 => "all".to_string(),
        a => a.to_string(),
    };
    let rate = spec
        .rate
        .map_or_else(String::new, |r| format!(" @{r:.0}/s"));
    Ok(BenchResult {
        name: format!("produce acks={acks}{rate}"),
        messages: acked,
        message_bytes: spec.message_bytes,
        seconds,
        latency_ms: Some(percentiles_ms(&latency)),
        failed,
        broker_rss_max_mib: rss.stop(),
        ..BenchResult::default()
    }
    .with_rates())
}
