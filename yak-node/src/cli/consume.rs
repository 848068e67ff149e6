//! `yak-node consume`: one or more topics (`--topic` repeated), from the
//! end, from the beginning, from a timestamp, or from an offset of one
//! partition; text or JSON lines; stops after `--max-messages` or
//! `--timeout-ms` without a new message. With `--group`, a member of a
//! consumer group: it reads the partitions of its topics the group gives
//! it, from the group's committed offsets, and commits what it printed.

use super::{ClusterArg, Format};
use crate::client::{
    ConsumedRecord, Consumer, ConsumerConfig, GroupConfig, GroupConsumer, RecordSource, StartFrom,
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

/// Longest wait of one poll, so a stop flag or a timeout is seen this soon.
const POLL_WAIT_MAX: Duration = Duration::from_millis(500);

/// `--assignor` values.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum AssignorArg {
    /// Contiguous ranges of partitions per member.
    Range,
    /// Partitions dealt to members in turn.
    RoundRobin,
    /// Balanced, and each member keeps what it had where it can.
    Sticky,
}

impl From<AssignorArg> for Assignor {
    fn from(a: AssignorArg) -> Assignor {
        match a {
            AssignorArg::Range => Assignor::Range,
            AssignorArg::RoundRobin => Assignor::RoundRobin,
            AssignorArg::Sticky => Assignor::Sticky,
        }
    }
}

/// Flags of `consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Topic to read; repeat to read several (--partition/--offset take one).
    #[arg(long, required = true)]
    pub topic: Vec<String>,
    /// Start at the first offset of each partition instead of the end.
    #[arg(long, conflicts_with_all = ["partition", "offset"])]
    pub from_beginning: bool,
    /// Start each partition at its first message with a timestamp at or
    /// after MS (ms since the Unix epoch), or at its end when none is that new.
    #[arg(long, value_name = "MS", conflicts_with_all = ["partition", "offset", "from_beginning", "group"])]
    pub from_timestamp: Option<i64>,
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
        let mut config = GroupConfig::for_topics(group, &a.topic);
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
            until: Until {
                max_messages: a.max_messages,
                timeout: a.timeout_ms.map(Duration::from_millis),
            },
        };
        let format = a.format;
        return run_group(&a.cluster.cluster, run, |out, r| print(out, r, format));
    }
    let start = match (a.partition, a.offset) {
        (Some(partition), Some(offset)) => StartFrom::Offset { partition, offset },
        _ if a.from_beginning => StartFrom::Earliest,
        _ => match a.from_timestamp {
            Some(timestamp_ms) => StartFrom::Timestamp { timestamp_ms },
            None => StartFrom::Latest,
        },
    };
    if a.partition.is_some() && a.topic.len() > 1 {
        return Err("--partition and --offset read one topic: give --topic once".into());
    }
    let consumer = match Consumer::subscribe_all(
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
    let until = Until {
        max_messages: a.max_messages,
        timeout: a.timeout_ms.map(Duration::from_millis),
    };
    let format = a.format;
    // No signal handler: a plain consumer has nothing to commit, so SIGINT
    // may end it where it stands.
    let never = AtomicBool::new(false);
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    read_loop(consumer, &until, &never, &mut out, |out, r| {
        print(out, r, format)
    })?;
    Ok(())
}

/// When a read loop stops, besides a signal or a closed output.
#[derive(Debug, Clone, Copy, Default)]
pub struct Until {
    /// After this many messages.
    pub max_messages: Option<u64>,
    /// After this long without a new message.
    pub timeout: Option<Duration>,
}

/// A group member's run: who it is and when it stops.
pub struct GroupRun {
    /// Group settings.
    pub config: GroupConfig,
    /// When to stop.
    pub until: Until,
}

/// Runs a group member until its [`Until`], SIGINT or SIGTERM; prints each
/// record with `print` to stdout (see [`read_loop`]), and commits and
/// leaves the group on the way out.
pub fn run_group(
    cluster: &Path,
    run: GroupRun,
    print: impl FnMut(&mut dyn Write, &ConsumedRecord) -> io::Result<()>,
) -> Result<(), Box<dyn std::error::Error>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let member = GroupConsumer::join(cluster, run.config)?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    read_loop(member, &run.until, &stop, &mut out, print)?;
    Ok(())
}

/// The one read loop of `consume` and `worker consume`: polls `source`
/// until `until` is met or `stop` is set, writes each record to `out` with
/// `print`, flushes after every poll, and only then acknowledges the
/// records written (processed means written out: a group member may commit
/// them now). A closed output (broken pipe) ends the loop quietly. The
/// source is closed on every way out. Returns the records written.
pub fn read_loop<S: RecordSource>(
    mut source: S,
    until: &Until,
    stop: &AtomicBool,
    out: &mut dyn Write,
    mut print: impl FnMut(&mut dyn Write, &ConsumedRecord) -> io::Result<()>,
) -> Result<u64, Box<dyn std::error::Error>> {
    let mut count = 0u64;
    let mut last_message = Instant::now();
    let full = |count: u64| until.max_messages.is_some_and(|m| count >= m);
    let result: Result<(), Box<dyn std::error::Error>> = 'reading: loop {
        if stop.load(Ordering::Relaxed) || full(count) {
            break Ok(());
        }
        let wait = match until.timeout {
            Some(t) => {
                let left = t.saturating_sub(last_message.elapsed());
                if left.is_zero() {
                    break Ok(());
                }
                left.min(POLL_WAIT_MAX)
            }
            None => POLL_WAIT_MAX,
        };
        let records = match source.poll(wait) {
            Ok(r) => r,
            Err(e) => break Err(e.into()),
        };
        if !records.is_empty() {
            last_message = Instant::now();
        }
        let mut printed = 0;
        let mut closed = false;
        for r in &records {
            if full(count) {
                break;
            }
            match print(&mut *out, r) {
                Ok(()) => {
                    count += 1;
                    printed += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                    closed = true;
                    break;
                }
                Err(e) => break 'reading Err(e.into()),
            }
        }
        match out.flush() {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => break Ok(()),
            Err(e) => break Err(e.into()),
            Ok(()) => {}
        }
        for r in &records[..printed] {
            source.ack(r);
        }
        if closed {
            break Ok(());
        }
    };
    source.close();
    result.map(|()| count)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::client::ClientError;
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::rc::Rc;

    /// What a fake source was told.
    #[derive(Debug, Default)]
    struct Seen {
        acked: Vec<u64>,
        closed: bool,
    }

    /// Hands out prepared polls in order, then empty ones.
    struct FakeSource {
        polls: VecDeque<Result<Vec<ConsumedRecord>, ClientError>>,
        seen: Rc<RefCell<Seen>>,
    }

    impl RecordSource for FakeSource {
        fn poll(&mut self, max_wait: Duration) -> Result<Vec<ConsumedRecord>, ClientError> {
            self.polls.pop_front().unwrap_or_else(|| {
                std::thread::sleep(max_wait.min(Duration::from_millis(5)));
                Ok(Vec::new())
            })
        }
        fn ack(&mut self, record: &ConsumedRecord) {
            self.seen.borrow_mut().acked.push(record.offset);
        }
        fn close(self) {
            self.seen.borrow_mut().closed = true;
        }
    }

    fn record(offset: u64) -> ConsumedRecord {
        ConsumedRecord {
            topic: "t".into(),
            partition: 0,
            offset,
            key: None,
            value: Some(format!("v{offset}").into_bytes()),
            timestamp_ms: 0,
        }
    }

    fn source(
        polls: Vec<Result<Vec<ConsumedRecord>, ClientError>>,
    ) -> (FakeSource, Rc<RefCell<Seen>>) {
        let seen = Rc::new(RefCell::new(Seen::default()));
        let s = FakeSource {
            polls: polls.into(),
            seen: Rc::clone(&seen),
        };
        (s, seen)
    }

    fn text(out: &mut dyn Write, r: &ConsumedRecord) -> io::Result<()> {
        print(out, r, Format::Text)
    }

    /// Refuses every write as a closed pipe.
    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
    }

    #[test]
    fn given_max_messages_when_a_poll_brings_more_should_print_and_ack_only_that_many() {
        let (src, seen) = source(vec![
            Ok(vec![record(0), record(1)]),
            Ok(vec![record(2), record(3)]),
        ]);
        let until = Until {
            max_messages: Some(3),
            timeout: None,
        };
        let mut out = Vec::new();
        let n = read_loop(src, &until, &AtomicBool::new(false), &mut out, text).unwrap();
        assert_eq!(n, 3);
        assert_eq!(String::from_utf8(out).unwrap(), "v0\nv1\nv2\n");
        let seen = seen.borrow();
        assert_eq!(seen.acked, vec![0, 1, 2], "record 3 was never written");
        assert!(seen.closed);
    }

    #[test]
    fn given_closed_output_when_printing_should_stop_quietly_without_acking() {
        let (src, seen) = source(vec![Ok(vec![record(0), record(1)])]);
        let n = read_loop(
            src,
            &Until::default(),
            &AtomicBool::new(false),
            &mut ClosedPipe,
            text,
        )
        .unwrap();
        assert_eq!(n, 0);
        let seen = seen.borrow();
        assert!(seen.acked.is_empty(), "nothing reached the output");
        assert!(seen.closed);
    }

    #[test]
    fn given_timeout_when_no_record_comes_should_stop_after_it() {
        let (src, seen) = source(vec![Ok(vec![record(7)])]);
        let until = Until {
            max_messages: None,
            timeout: Some(Duration::from_millis(50)),
        };
        let started = Instant::now();
        let n = read_loop(src, &until, &AtomicBool::new(false), &mut Vec::new(), text).unwrap();
        assert_eq!(n, 1);
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(seen.borrow().acked, vec![7]);
    }

    #[test]
    fn given_stop_flag_when_set_should_close_before_polling() {
        let (src, seen) = source(vec![Ok(vec![record(0)])]);
        let n = read_loop(
            src,
            &Until::default(),
            &AtomicBool::new(true),
            &mut Vec::new(),
            text,
        )
        .unwrap();
        assert_eq!(n, 0);
        assert!(seen.borrow().closed);
    }

    #[test]
    fn given_poll_error_when_reading_should_close_the_source_and_return_it() {
        let (src, seen) = source(vec![
            Ok(vec![record(0)]),
            Err(ClientError::Invalid("boom".into())),
        ]);
        let mut out = Vec::new();
        let err = read_loop(
            src,
            &Until::default(),
            &AtomicBool::new(false),
            &mut out,
            text,
        )
        .unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");
        assert_eq!(out, b"v0\n");
        let seen = seen.borrow();
        assert_eq!(seen.acked, vec![0]);
        assert!(seen.closed, "a group member leaves even on error");
    }
}
