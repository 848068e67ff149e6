//! `bench consume --group G --members N`: N members of one consumer group,
//! threads of one process, each a [`GroupConsumer`] (the member `yak-node
//! consume --group` runs), read a topic from the group's start (a fresh
//! group: from the beginning) until the members have read `messages`
//! between them; reports the aggregate rate, timed from the first join to
//! the last member's close (commit and leave), as a Kafka client's run is
//! timed from its start to its exit. Never prints.

use super::{consume::backlog, rss::RssSampler, BenchResult, Progress};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use yak_client::{Admin, ClientError, GroupConfig, GroupConsumer};
use yak_protocol::limits::{
    BENCH_GROUP_IDLE_MS_MAX, BENCH_GROUP_MEMBERS_MAX, BENCH_GROUP_POLL_WAIT_MS,
    BENCH_PROGRESS_EVERY_MS,
};
use yak_protocol::OffsetSpec;

/// What to run.
#[derive(Debug, Clone)]
pub struct GroupConsumeSpec {
    /// Topic read.
    pub topic: String,
    /// Group the members join.
    pub group: String,
    /// Members, one thread each.
    pub members: usize,
    /// Messages to read between them (default: the topic's whole backlog).
    pub messages: Option<u64>,
}

/// What the members share: counts, and when to stop.
struct Shared {
    target: u64,
    read: AtomicU64,
    bytes: AtomicU64,
    stop: AtomicBool,
}

impl Shared {
    fn done(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.read.load(Ordering::Relaxed) >= self.target
    }
}

/// One member: joins, reads and acknowledges until the group has read the
/// target (or is told to stop), then commits and leaves. Returns when it
/// finished.
fn member(cluster: PathBuf, config: GroupConfig, shared: &Shared) -> Result<Instant, ClientError> {
    let mut consumer = GroupConsumer::join(&cluster, config)?;
    let wait = Duration::from_millis(BENCH_GROUP_POLL_WAIT_MS);
    let result = loop {
        if shared.done() {
            break Ok(());
        }
        match consumer.poll(wait) {
            Ok(records) => {
                let mut bytes = 0u64;
                for r in &records {
                    bytes += r.value.as_ref().map_or(0, Vec::len) as u64;
                    consumer.ack(r);
                }
                shared.bytes.fetch_add(bytes, Ordering::Relaxed);
                shared
                    .read
                    .fetch_add(records.len() as u64, Ordering::Relaxed);
            }
            Err(e) => break Err(e),
        }
    };
    consumer.close();
    result.map(|()| Instant::now())
}

/// Runs the benchmark; `progress` hears of the messages read by all members.
pub fn run(
    cluster: &Path,
    spec: &GroupConsumeSpec,
    progress: &mut dyn FnMut(Progress),
) -> Result<BenchResult, ClientError> {
    if spec.members == 0 || spec.members > BENCH_GROUP_MEMBERS_MAX {
        return Err(ClientError::Invalid(format!(
            "--members must be 1 to {BENCH_GROUP_MEMBERS_MAX}"
        )));
    }
    let target = match spec.messages {
        Some(n) => n,
        None => backlog(cluster, &spec.topic)?,
    };
    let pids = Admin::connect(cluster)?
        .metadata()?
        .brokers
        .iter()
        .filter(|b| b.alive)
        .map(|b| b.pid)
        .collect();
    let rss = RssSampler::start(pids);
    let shared = Arc::new(Shared {
        target,
        read: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let start = Instant::now();
    let threads: Vec<_> = (1..=spec.members)
        .map(|i| {
            let mut config = GroupConfig::new(&spec.group, &spec.topic);
            config.reset = OffsetSpec::Earliest;
            config.client = format!("bench-{}-{i}", std::process::id());
            let (cluster, shared) = (cluster.to_path_buf(), Arc::clone(&shared));
            std::thread::spawn(move || {
                let r = member(cluster, config, &shared);
                // A member that failed stops the others: the run is void.
                if r.is_err() {
                    shared.stop.store(true, Ordering::Relaxed);
                }
                r
            })
        })
        .collect();
    let (mut last_read, mut last_change) = (0, Instant::now());
    let idle_max = Duration::from_millis(BENCH_GROUP_IDLE_MS_MAX);
    while threads.iter().any(|t| !t.is_finished()) {
        let read = shared.read.load(Ordering::Relaxed);
        if read != last_read {
            (last_read, last_change) = (read, Instant::now());
        } else if last_change.elapsed() > idle_max {
            shared.stop.store(true, Ordering::Relaxed);
        }
        progress(Progress {
            done: read,
            total: target,
        });
        std::thread::sleep(Duration::from_millis(BENCH_PROGRESS_EVERY_MS));
    }
    let mut finished = start;
    for t in threads {
        let at = t
            .join()
            .map_err(|_| ClientError::Invalid("a group member thread panicked".into()))??;
        finished = finished.max(at);
    }
    let read = shared.read.load(Ordering::Relaxed);
    Ok(BenchResult {
        name: format!("group consume, {} members", spec.members),
        messages: read,
        message_bytes: shared
            .bytes
            .load(Ordering::Relaxed)
            .checked_div(read)
            .unwrap_or(0) as usize,
        seconds: (finished - start).as_secs_f64(),
        failed: target.saturating_sub(read),
        broker_rss_max_mib: rss.stop(),
        members: Some(spec.members),
        ..BenchResult::default()
    }
    .with_rates())
}
