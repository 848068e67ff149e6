//! `bench consume`: reads a topic from the beginning (or from its end, for
//! messages produced meanwhile) and reports read throughput.

use super::{rss::RssSampler, BenchResult, Progress};
use std::path::Path;
use std::time::{Duration, Instant};
use yak_client::{Admin, ClientError, Consumer, ConsumerConfig, StartFrom};
use yak_protocol::{Call, OffsetSpec, Reply};

/// Messages between the earliest and latest offsets of every partition.
pub fn backlog(cluster: &Path, topic: &str) -> Result<u64, ClientError> {
    let mut cache = yak_client::metadata::MetadataCache::connect(cluster)?;
    cache.refresh()?;
    let t = cache.topic(topic)?;
    let mut total = 0;
    for p in &t.partitions {
        let Some(leader) = p.leader else { continue };
        let mut offset = |spec| -> Result<u64, ClientError> {
            let call = Call::ListOffsets {
                topic: topic.to_string(),
                partition: p.partition,
                spec,
            };
            match cache.broker(leader)?.call(&call)? {
                Reply::Offset { offset } => Ok(offset),
                other => Err(ClientError::Unexpected(format!("{other:?}"))),
            }
        };
        total += offset(OffsetSpec::Latest)? - offset(OffsetSpec::Earliest)?;
    }
    Ok(total)
}

/// Reads `messages` (default: the whole backlog) from the beginning;
/// `progress` hears of the messages read.
pub fn run(
    cluster: &Path,
    topic: &str,
    messages: Option<u64>,
    progress: &mut dyn FnMut(Progress),
) -> Result<BenchResult, ClientError> {
    let target = match messages {
        Some(n) => n,
        None => backlog(cluster, topic)?,
    };
    let pids = Admin::connect(cluster)?
        .metadata()?
        .brokers
        .iter()
        .filter(|b| b.alive)
        .map(|b| b.pid)
        .collect();
    let rss = RssSampler::start(pids);
    let mut consumer = Consumer::subscribe(
        cluster,
        topic,
        StartFrom::Earliest,
        ConsumerConfig::default(),
    )?;
    let start = Instant::now();
    let (mut count, mut bytes) = (0u64, 0u64);
    let mut idle_since = Instant::now();
    while count < target && idle_since.elapsed() < Duration::from_secs(5) {
        let n = consumer.poll_each(Duration::from_millis(200), &mut |_, r| {
            bytes += r.value.map_or(0, <[u8]>::len) as u64
        })?;
        if n > 0 {
            idle_since = Instant::now();
        }
        count += n as u64;
        progress(Progress {
            done: count,
            total: target,
        });
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(BenchResult {
        name: "consume from beginning".into(),
        messages: count,
        message_bytes: bytes.checked_div(count).unwrap_or(0) as usize,
        seconds,
        failed: target.saturating_sub(count),
        broker_rss_max_mib: rss.stop(),
        ..BenchResult::default()
    }
    .with_rates())
}
