//! `yak-node consume`: from the end, from the beginning, or from an offset
//! of one partition; text or JSON lines; stops after `--max-messages` or
//! `--timeout-ms` without a new message. With `--group`, a member of a
//! consumer group: it reads the partitions the group gives it, from the
//! group's committed offsets, and commits what it printed.

use super::{ClusterArg, Format};
use crate::client::{
    ConsumedRecord, Consumer, ConsumerConfig, GroupConfig, GroupConsumer, StartFrom,
};
use crate::limits::GROUP_MAX_POLL_INTERVAL_MS_DEFAULT;
use crate::protocol::{Assignor, ErrorCode, OffsetSpec};
use clap::{Args, ValueEnum};
use serde_json::json;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `--assignor` values.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum AssignorArg {
    /// Contiguous ranges of partitions per member.
    Range,
    /// Partitions dealt to members in turn.
    RoundRobin,
}

impl From<AssignorArg> for Assignor {
    fn from(a: AssignorArg) -> Assignor {
        match a {
            AssignorArg::Range => Assignor::Range,
            AssignorArg::RoundRobin => Assignor::RoundRobin,
        }
    }
}

/// Flags of `consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Topic to read.
    #[arg(long)]
    pub topic: String,
    /// Start at the first offset of each partition instead of the end.
    #[arg(long, conflicts_with_all = ["partition", "offset"])]
    pub from_beginning: bool,
    /// Read only this partition (with --offset).
    #[arg(long, requires = "offset")]
    pub partition: Option<u32>,
    /// First offset to read in --partition; below the earliest offset (deleted
    /// by retention) is an error that names the earliest offset.
    #[arg(long, requires = "partition")]
    pub offset: Option<u64>,
    /// Exit after this many messages.
    #[arg(long)]
    pub max_messages: Option<u64>,
    /// Exit after this long without a new message.
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Join this consumer group: share the topic's partitions with its other
    /// members and resume at its committed offsets (--from-beginning then
    /// applies only to partitions without one).
    #[arg(long, conflicts_with_all = ["partition", "offset"])]
    pub group: Option<String>,
    /// How the group spreads partitions over members (range by default).
    #[arg(long, value_enum, requires = "group")]
    pub assignor: Option<AssignorArg>,
    /// Group session timeout: silent this long, the member is removed
    /// (ZooKeeper's --group-session-timeout-ms by default).
    #[arg(long, requires = "group")]
    pub session_timeout_ms: Option<u64>,
    /// Longest time between two polls (a blocked stdout, say) before the
    /// member leaves the group; heartbeats go on from a background thread
    /// meanwhile (Kafka's max.poll.interval.ms).
    #[arg(long, requires = "group", default_value_t = GROUP_MAX_POLL_INTERVAL_MS_DEFAULT)]
    pub max_poll_interval_ms: u64,
    /// Name shown for this member by `group describe` (default consumer-<pid>).
    #[arg(long, requires = "group")]
    pub client_id: Option<String>,
    /// Cluster.
    #[command(flatten)]
    pub cluster: ClusterArg,
}

fn print(out: &mut (impl Write + ?Sized), r: &ConsumedRecord, format: Format) -> io::Result<()> {
    match format {
        Format::Text => {
            // A null value (a tombstone) prints as Kafka's console consumer does.
            out.write_all(r.value.as_deref().unwrap_or(b"null"))?;
            out.write_all(b"\n")
        }
        Format::Json => {
            let v = json!({
                "topic": r.topic,
                "partition": r.partition,
                "offset": r.offset,
                "key": r.key.as_ref().map(|k| String::from_utf8_lossy(k).into_owned()),
                "value": r.value.as_ref().map(|v| String::from_utf8_lossy(v).into_owned()),
                "timestamp": r.timestamp_ms,
            });
            writeln!(out, "{v}")
        }
    }
}

/// Runs `consume`.
pub fn run(a: ConsumeArgs) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(group) = &a.group {
        let mut config = GroupConfig::new(group, &a.topic);
        config.assignor = a.assignor.map_or(Assignor::Range, Assignor::from);
        config.session_timeout = a.session_timeout_ms.map(Duration::from_millis);
        config.max_poll_interval = Duration::from_millis(a.max_poll_interval_ms);
        config.reset = if a.from_beginning {
            OffsetSpec::Earliest
        } else {
            OffsetSpec::Latest
        };
        if let Some(c) = &a.client_id {
            config.client = c.clone();
        }
        let run = GroupRun {
            config,
            max_messages: a.max_messages,
            timeout: a.timeout_ms.map(Duration::from_millis),
        };
        let format = a.format;
        return run_group(&a.cluster.cluster, run, |out, r| print(out, r, format));
    }
    let start = match (a.partition, a.offset) {
        (Some(partition), Some(offset)) => StartFrom::Offset { partition, offset },
        _ if a.from_beginning => StartFrom::Earliest,
        _ => StartFrom::Latest,
    };
    let mut consumer = match Consumer::subscribe(
        &a.cluster.cluster,
        &a.topic,
        start,
        ConsumerConfig::default(),
    ) {
        Err(e) => match e.code() {
            Some(ErrorCode::OffsetOutOfRange {
                log_start_offset, ..
            }) if a.offset.is_some() => {
                return Err(format!(
                    "{e}; start at --offset {log_start_offset} or use --from-beginning"
                )
                .into());
            }
            _ => return Err(e.into()),
        },
        Ok(c) => c,
    };
    let timeout = a.timeout_ms.map(Duration::from_millis);
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut count = 0u64;
    let mut last_message = Instant::now();
    loop {
        if a.max_messages.is_some_and(|m| count >= m) {
            break;
        }
        let wait = match timeout {
            Some(t) => {
                let left = t.saturating_sub(last_message.elapsed());
                if left.is_zero() {
                    break;
                }
                left.min(Duration::from_millis(500))
            }
            None => Duration::from_millis(500),
        };
        let records = consumer.poll(wait)?;
        if !records.is_empty() {
            last_message = Instant::now();
        }
        for r in &records {
            if a.max_messages.is_some_and(|m| count >= m) {
                break;
            }
            count += 1;
            if let Err(e) = print(&mut out, r, a.format) {
                if e.kind() == io::ErrorKind::BrokenPipe {
                    return Ok(());
                }
                return Err(e.into());
            }
        }
        match out.flush() {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            other => other?,
        }
    }
    Ok(())
}

/// A group member's run: who it is and when it stops.
pub struct GroupRun {
    /// Group settings.
    pub config: GroupConfig,
    /// Stop after this many messages.
    pub max_messages: Option<u64>,
    /// Stop after this long without a new message.
    pub timeout: Option<Duration>,
}

/// Runs a group member until `--max-messages`, `--timeout-ms`, SIGINT or
/// SIGTERM; prints each record with `print`, acknowledges it once the
/// output is flushed, and commits and leaves the group on the way out.
pub fn run_group(
    cluster: &Path,
    run: GroupRun,
    mut print: impl FnMut(&mut dyn Write, &ConsumedRecord) -> io::Result<()>,
) -> Result<(), Box<dyn std::error::Error>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let mut member = GroupConsumer::join(cluster, run.config)?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut count = 0u64;
    let mut last_message = Instant::now();
    let result = loop {
        if stop.load(Ordering::Relaxed) || run.max_messages.is_some_and(|m| count >= m) {
            break Ok(());
        }
        let wait = match run.timeout {
            Some(t) => {
                let left = t.saturating_sub(last_message.elapsed());
                if left.is_zero() {
                    break Ok(());
                }
                left.min(Duration::from_millis(500))
            }
            None => Duration::from_millis(500),
        };
        let records = match member.poll(wait) {
            Ok(r) => r,
            Err(e) => break Err(e.into()),
        };
        if !records.is_empty() {
            last_message = Instant::now();
        }
        let mut printed = 0;
        let mut closed = false;
        for r in &records {
            if run.max_messages.is_some_and(|m| count >= m) {
                break;
            }
            match print(&mut out, r) {
                Ok(()) => {
                    count += 1;
                    printed += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                    closed = true;
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        match out.flush() {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => break Ok(()),
            other => other?,
        }
        // Processed means written out: only now may the offsets be committed.
        for r in &records[..printed] {
            member.ack(r);
        }
        if closed {
            break Ok(());
        }
    };
    member.close();
    result
}
