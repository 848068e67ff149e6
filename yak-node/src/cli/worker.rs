//! `yak-node worker produce|consume`: the long-running workers that
//! `yak-supervisor` starts from `producers = N` / `consumers = M`. A
//! producer worker sends generated messages at a steady rate; a consumer
//! worker is a group member that prints each message it receives. Both run
//! until SIGTERM/SIGINT and ride out a restarting ZooKeeper or broker.

use super::consume::{run_group, AssignorArg, GroupRun, Until};
use super::ClusterArg;
use crate::client::metadata::MetadataCache;
use crate::client::{ClientError, GroupConfig, Producer, ProducerConfig};
use crate::limits::{
    GROUP_MAX_POLL_INTERVAL_MS_DEFAULT, WORKER_CATCH_UP_MS_MAX, WORKER_IDLE_SLEEP_MS_MAX,
    WORKER_MESSAGE_BYTES_MAX, WORKER_RATE_MSGS_PER_SEC_MAX, WORKER_REPORT_INTERVAL_MS,
    WORKER_STARTUP_WAIT_MS,
};
use crate::protocol::backoff::Backoff;
use crate::protocol::{Assignor, OffsetSpec};
use clap::{Args, Subcommand};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Most messages per second one producer worker may be asked for.
const RATE_MAX: f64 = WORKER_RATE_MSGS_PER_SEC_MAX;
/// Largest generated message.
const MESSAGE_BYTES_MAX: usize = WORKER_MESSAGE_BYTES_MAX as usize;
/// How long a worker waits for the cluster at start-up before it gives up
/// (the supervisor then restarts it with backoff).
const STARTUP_WAIT: Duration = Duration::from_millis(WORKER_STARTUP_WAIT_MS);
/// How often a producer worker prints its counts.
const REPORT_EVERY: Duration = Duration::from_millis(WORKER_REPORT_INTERVAL_MS);

/// Flags of `worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Which worker.
    #[command(subcommand)]
    pub kind: WorkerKind,
    /// Cluster.
    #[command(flatten)]
    pub cluster: ClusterArg,
}

/// The two workers.
#[derive(Debug, Subcommand)]
pub enum WorkerKind {
    /// Send generated messages to a topic at a steady rate.
    Produce {
        /// The worker's name: the start of every message it sends.
        #[arg(long, default_value = "producer")]
        name: String,
        /// Topic (created with the cluster defaults if missing).
        #[arg(long, default_value = "workers")]
        topic: String,
        /// Messages per second.
        #[arg(long, default_value_t = 5.0)]
        rate: f64,
        /// Size of each message value, padded with dots.
        #[arg(long, default_value_t = 64)]
        message_bytes: usize,
    },
    /// Read a topic as a member of a consumer group; print each message.
    Consume {
        /// The worker's name, shown by `group describe`.
        #[arg(long, default_value = "consumer")]
        name: String,
        /// Topic (created with the cluster defaults if missing).
        #[arg(long, default_value = "workers")]
        topic: String,
        /// Consumer group.
        #[arg(long, default_value = "workers")]
        group: String,
        /// Assignor.
        #[arg(long, value_enum, default_value = "range")]
        assignor: AssignorArg,
        /// Longest time between two polls before the member leaves the group.
        #[arg(long, default_value_t = GROUP_MAX_POLL_INTERVAL_MS_DEFAULT)]
        max_poll_interval_ms: u64,
    },
}

/// Runs a worker.
pub fn run(a: WorkerArgs) -> Result<(), Box<dyn std::error::Error>> {
    match a.kind {
        WorkerKind::Produce {
            name,
            topic,
            rate,
            message_bytes,
        } => {
            if !(rate > 0.0 && rate <= RATE_MAX) {
                return Err(
                    format!("--rate must be above 0 and at most {RATE_MAX}, got {rate}").into(),
                );
            }
            if message_bytes == 0 || message_bytes > MESSAGE_BYTES_MAX {
                return Err(format!(
                    "--message-bytes must be 1 to {MESSAGE_BYTES_MAX}, got {message_bytes}"
                )
                .into());
            }
            produce(&a.cluster.cluster, &name, &topic, rate, message_bytes)
        }
        WorkerKind::Consume {
            name,
            topic,
            group,
            assignor,
            max_poll_interval_ms,
        } => {
            wait_for_topic(&a.cluster.cluster, &topic)?;
            let mut config = GroupConfig::new(&group, &topic);
            config.client = name;
            config.assignor = Assignor::from(assignor);
            config.reset = OffsetSpec::Earliest;
            config.max_poll_interval = Duration::from_millis(max_poll_interval_ms);
            let run = GroupRun {
                config,
                until: Until::default(),
            };
            run_group(&a.cluster.cluster, run, |out, r| {
                writeln!(
                    out,
                    "received p{}@{}: {}",
                    r.partition,
                    r.offset,
                    String::from_utf8_lossy(r.value.as_deref().unwrap_or(b"null"))
                )
            })
        }
    }
}

fn transient(e: &ClientError) -> bool {
    e.is_retriable() || matches!(e, ClientError::NoCluster { .. })
}

/// Creates the topic if missing, waiting for ZooKeeper and brokers to be up.
fn wait_for_topic(cluster: &Path, topic: &str) -> Result<(), ClientError> {
    let deadline = Instant::now() + STARTUP_WAIT;
    let (mut backoff, mut attempt) = (Backoff::default(), 0u32);
    loop {
        let r = MetadataCache::connect(cluster).and_then(|mut c| c.create_topic(topic, None, None));
        match r {
            Ok(_) => return Ok(()),
            Err(e) if transient(&e) && Instant::now() < deadline => {
                std::thread::sleep(backoff.delay(attempt));
                attempt = attempt.saturating_add(1);
            }
            Err(e) => return Err(e),
        }
    }
}

/// `name #seq time` padded with dots to `bytes`.
fn message(name: &str, seq: u64, bytes: usize) -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut m = format!("{name} #{seq} t={ms} ");
    while m.len() < bytes {
        m.push('.');
    }
    m
}

fn produce(
    cluster: &Path,
    name: &str,
    topic: &str,
    rate: f64,
    bytes: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    wait_for_topic(cluster, topic)?;
    let config = ProducerConfig {
        max_message_bytes: bytes.max(1024) * 2,
        ..ProducerConfig::default()
    };
    let mut producer = Producer::connect(cluster, config)?;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let started = Instant::now();
    let mut next_send = started;
    let mut next_report = started + REPORT_EVERY;
    let mut seq = 0u64;
    eprintln!("{name}: producing to {topic} at {rate} msg/s, {bytes} bytes each");
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        // Catch up after a stall, but never in a burst of more than a second's worth.
        if now.saturating_duration_since(next_send) > Duration::from_millis(WORKER_CATCH_UP_MS_MAX)
        {
            next_send = now;
        }
        while next_send <= now {
            seq += 1;
            // Keyed by sequence number: the key hash spreads messages over every partition.
            let key = seq.to_string();
            if let Err(e) = producer.send(
                topic,
                Some(key.as_bytes()),
                message(name, seq, bytes).as_bytes(),
            ) {
                eprintln!("{name}: message #{seq} not sent: {e}");
            }
            next_send += interval;
        }
        if let Err(e) = producer.poll() {
            eprintln!("{name}: {e}");
        }
        if now >= next_report {
            let r = producer.report();
            eprintln!(
                "{name}: {seq} messages sent, {} acknowledged, {} failed",
                r.acked, r.failed
            );
            next_report = now + REPORT_EVERY;
        }
        let wake = producer
            .next_deadline()
            .map_or(next_send, |d| d.min(next_send));
        std::thread::sleep(
            wake.saturating_duration_since(Instant::now())
                .min(Duration::from_millis(WORKER_IDLE_SLEEP_MS_MAX)),
        );
    }
    let r = producer.flush()?;
    eprintln!(
        "{name}: stopping: {seq} messages sent, {} acknowledged, {} failed",
        r.acked, r.failed
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_size_when_generating_message_should_pad_to_it_and_start_with_name() {
        let m = message("producer-1", 7, 64);
        assert_eq!(m.len(), 64);
        assert!(m.starts_with("producer-1 #7 t="), "{m}");
        assert!(message("p", 1, 1).len() > 1, "never cut the header");
    }
}
