//! `bench e2e`: a producer at a fixed rate stamps each message with its send
//! time; a consumer reading the end of the topic measures how long each took
//! to arrive.

use super::produce::{broker_pids, ensure_topic};

use super::{histogram, percentiles_ms, rss::RssSampler, BenchResult, Progress};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use yak_client::{ClientError, Consumer, ConsumerConfig, Producer, ProducerConfig, StartFrom};

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// What to run.
#[derive(Debug, Clone)]
pub struct E2eSpec {
    /// Topic (created if missing).
    pub topic: String,
    /// Partitions for a new topic.
    pub partitions: Option<u32>,
    /// Replicas for a new topic.
    pub replication_factor: Option<u32>,
    /// Messages per second.
    pub rate: f64,
    /// Messages in all.
    pub messages: u64,
    /// Bytes per value (at least 8: the send timestamp).
    pub message_bytes: usize,
    /// Producer settings (acks, linger, batch size, ...).
    pub producer: ProducerConfig,
    /// Messages sent (and acknowledged) before the measurement starts.
    pub warmup_messages: u64,
}

/// Runs the benchmark; `progress` hears of the messages received.
pub fn run(
    cluster: &Path,
    spec: &E2eSpec,
    progress: &mut dyn FnMut(Progress),
) -> Result<BenchResult, ClientError> {
    if spec.rate <= 0.0 || spec.messages == 0 {
        return Err(ClientError::Invalid(
            "--rate and --messages must be positive".into(),
        ));
    }
    ensure_topic(
        cluster,
        &spec.topic,
        spec.partitions,
        spec.replication_factor,
    )?;
    super::produce::warm_up(
        cluster,
        &spec.topic,
        spec.warmup_messages,
        spec.producer.acks,
    )?;
    let mut consumer = Consumer::subscribe(
        cluster,
        &spec.topic,
        StartFrom::Latest,
        ConsumerConfig::default(),
    )?;
    let rss = RssSampler::start(broker_pids(cluster)?);
    let done = Arc::new(AtomicBool::new(false));
    let producer = {
        let (cluster, spec, done) = (cluster.to_path_buf(), spec.clone(), Arc::clone(&done));
        std::thread::spawn(move || -> Result<u64, ClientError> {
            let mut p = Producer::connect(&cluster, spec.producer.clone())?;
            let mut value = vec![b'x'; spec.message_bytes.max(8)];
            let start = Instant::now();
            for i in 0..spec.messages {
                let due = start + Duration::from_secs_f64(i as f64 / spec.rate);
                loop {
                    p.poll()?;
                    let now = Instant::now();
                    if now >= due {
                        break;
                    }
                    std::thread::sleep((due - now).min(Duration::from_micros(200)));
                }
                value[..8].copy_from_slice(&now_us().to_be_bytes());
                p.send(&spec.topic, None, &value)?;
                p.poll()?;
            }
            let report = p.flush();
            done.store(true, Ordering::Relaxed);
            Ok(report?.failed)
        })
    };
    let mut latency = histogram();
    let (mut count, mut bytes) = (0u64, 0u64);
    let start = Instant::now();
    let mut idle_since = Instant::now();
    while count < spec.messages && idle_since.elapsed() < Duration::from_secs(5) {
        let n = consumer.poll_each(Duration::from_millis(100), &mut |_, r| {
            let value = r.value.unwrap_or_default();
            if let Some(ts) = value.first_chunk::<8>() {
                latency.saturating_record(now_us().saturating_sub(u64::from_be_bytes(*ts)).max(1));
            }
            bytes += value.len() as u64;
        })?;
        if n > 0 || !done.load(Ordering::Relaxed) {
            idle_since = Instant::now();
        }
        count += n as u64;
        progress(Progress {
            done: count,
            total: spec.messages,
        });
    }
    let seconds = start.elapsed().as_secs_f64();
    let failed = producer
        .join()
        .map_err(|_| ClientError::Invalid("producer thread panicked".into()))??;
    Ok(BenchResult {
        name: format!("e2e @{:.0}/s", spec.rate),
        messages: count,
        message_bytes: spec.message_bytes.max(8),
        seconds,
        latency_ms: Some(percentiles_ms(&latency)),
        failed: failed + spec.messages.saturating_sub(count),
        broker_rss_max_mib: rss.stop(),
        ..BenchResult::default()
    }
    .with_rates())
}
