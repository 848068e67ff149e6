//! `yak-node consume`: from the end, from the beginning, or from an offset
//! of one partition; text or JSON lines; stops after `--max-messages` or
//! `--timeout-ms` without a new message.

use super::{ClusterArg, Format};
use crate::client::{ConsumedRecord, Consumer, ConsumerConfig, StartFrom};
use crate::protocol::ErrorCode;
use clap::Args;
use serde_json::json;
use std::io::{self, Write};
use std::time::{Duration, Instant};

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
    /// Cluster.
    #[command(flatten)]
    pub cluster: ClusterArg,
}

fn print(out: &mut impl Write, r: &ConsumedRecord, format: Format) -> io::Result<()> {
    match format {
        Format::Text => {
            out.write_all(&r.value)?;
            out.write_all(b"\n")
        }
        Format::Json => {
            let v = json!({
                "topic": r.topic,
                "partition": r.partition,
                "offset": r.offset,
                "key": r.key.as_ref().map(|k| String::from_utf8_lossy(k).into_owned()),
                "value": String::from_utf8_lossy(&r.value),
                "timestamp": r.timestamp_ms,
            });
            writeln!(out, "{v}")
        }
    }
}

/// Runs `consume`.
pub fn run(a: ConsumeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let start = match (a.partition, a.offset) {
        (Some(partition), Some(offset)) => StartFrom::Offset { partition, offset },
        _ if a.from_beginning => StartFrom::Earliest,
        _ => StartFrom::Latest,
    };
    let mut consumer = match Consumer::subscribe(&a.cluster.cluster, &a.topic, start, ConsumerConfig::default()) {
        Err(e) => match e.code() {
            Some(ErrorCode::OffsetOutOfRange { log_start_offset, .. }) if a.offset.is_some() => {
                return Err(format!("{e}; start at --offset {log_start_offset} or use --from-beginning").into());
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
