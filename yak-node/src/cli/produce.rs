//! `yak-node produce`: messages from `--message` flags or stdin lines, with
//! batching and linger; exits 0 only if every message was acknowledged.
//! The partitioner is `--partitioner FILE.so`, else `$YAK_PARTITIONER`,
//! else `partitioner` in the cluster's `client.toml`, else the built-in
//! default (key-hash for keyed messages, sticky for the rest).

use super::ClusterArg;
use crate::client::plugin::{
    resolve_plugin_path, PluginPartitioner, PluginSource, PARTITIONER_ENV,
};
use crate::client::{Acks, Producer, ProducerConfig};
use crate::limits::{
    BATCH_BYTES_DEFAULT, DELIVERY_TIMEOUT_MS_DEFAULT, LINGER_MS_DEFAULT, MESSAGE_BYTES_MAX_DEFAULT,
    PRODUCE_POLL_INTERVAL_MS, PRODUCE_STDIN_WAIT_MS_MAX,
};
use crate::protocol::batch::Compression;
use clap::{Args, ValueEnum};
use crossbeam_channel::RecvTimeoutError;
use std::io::BufRead;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Flags of `produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Topic to write to (created with the cluster defaults if missing).
    #[arg(long)]
    pub topic: String,
    /// A message to send (repeatable); without it, one message per stdin line.
    #[arg(long = "message")]
    pub messages: Vec<String>,
    /// Key for every message.
    #[arg(long)]
    pub key: Option<String>,
    /// Split each stdin line at the first SEP into key and value.
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// Producer settings.
    #[command(flatten)]
    pub producer: ProducerFlags,
    /// Partitioner plugin (.so); default: $YAK_PARTITIONER, else the
    /// cluster's client.toml, else key-hash for keyed messages and sticky
    /// for the rest.
    #[arg(long, value_name = "FILE.so")]
    pub partitioner: Option<PathBuf>,
    /// Cluster.
    #[command(flatten)]
    pub cluster: ClusterArg,
}

/// The producer's flags, one group flattened into every command that
/// produces: `produce`, `bench produce`, `bench e2e`, `bench partitioners`.
/// A command with another default changes it with
/// `#[command(mut_arg("linger_ms", ...))]`, never with a copy of the flag.
#[derive(Debug, Args, Clone)]
pub struct ProducerFlags {
    /// 0, 1 or all.
    #[arg(long, default_value = "all", value_parser = parse_acks)]
    pub acks: Acks,
    /// How long a partial batch waits for more messages.
    #[arg(long, default_value_t = LINGER_MS_DEFAULT)]
    pub linger_ms: u64,
    /// Send a batch once it reaches this many bytes.
    #[arg(long, default_value_t = BATCH_BYTES_DEFAULT)]
    pub batch_bytes: usize,
    /// Largest message accepted.
    #[arg(long, default_value_t = MESSAGE_BYTES_MAX_DEFAULT)]
    pub max_message_bytes: usize,
    /// Give up on a message not acknowledged within this long, retries included.
    #[arg(long, default_value_t = DELIVERY_TIMEOUT_MS_DEFAULT)]
    pub delivery_timeout_ms: u64,
    /// Compress each batch's records with this codec; brokers store them
    /// compressed as sent and consumers decompress them.
    #[arg(long, value_enum, default_value = "none")]
    pub compression: CompressionArg,
}

/// `--compression` values: Kafka's record batch codecs.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum CompressionArg {
    /// Records as they are.
    None,
    /// gzip.
    Gzip,
    /// snappy.
    Snappy,
    /// lz4 (frame format).
    Lz4,
    /// zstd.
    Zstd,
}

impl From<CompressionArg> for Compression {
    fn from(c: CompressionArg) -> Compression {
        match c {
            CompressionArg::None => Compression::None,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Snappy => Compression::Snappy,
            CompressionArg::Lz4 => Compression::Lz4,
            CompressionArg::Zstd => Compression::Zstd,
        }
    }
}

impl ProducerFlags {
    /// The linger as a duration.
    pub fn linger(&self) -> Duration {
        Duration::from_millis(self.linger_ms)
    }

    /// A producer configuration with these settings, the rest default.
    pub fn config(&self) -> ProducerConfig {
        ProducerConfig {
            acks: self.acks.into(),
            linger: self.linger(),
            batch_bytes: self.batch_bytes,
            max_message_bytes: self.max_message_bytes,
            delivery_timeout: Duration::from_millis(self.delivery_timeout_ms),
            compression: self.compression.into(),
            ..ProducerConfig::default()
        }
    }
}

/// Parses `0`, `1`, `all` (or `-1`); anything else is refused here, at
/// the edge, never passed on as some other level.
pub fn parse_acks(s: &str) -> Result<Acks, String> {
    s.parse()
        .map_err(|e: crate::protocol::acks::AcksError| e.to_string())
}

struct Counts {
    sent: u64,
    rejected: u64,
}

fn split<'a>(line: &'a str, key: Option<&'a str>, sep: Option<&str>) -> (Option<&'a str>, &'a str) {
    match sep {
        Some(sep) => match line.split_once(sep) {
            Some((k, v)) => (Some(k), v),
            None => (key, line),
        },
        None => (key, line),
    }
}

fn send_one(
    p: &mut Producer,
    a: &ProduceArgs,
    line: &str,
    counts: &mut Counts,
) -> Result<(), Box<dyn std::error::Error>> {
    let (key, value) = split(line, a.key.as_deref(), a.key_separator.as_deref());
    counts.sent += 1;
    match p.send(&a.topic, key.map(str::as_bytes), value.as_bytes()) {
        Ok(()) => Ok(()),
        Err(e) if e.code().is_some() && !e.is_retriable() && counts.sent > 1 => {
            // One bad message (too large) fails alone; the stream goes on.
            if counts.rejected == 0 {
                eprintln!("error: message {}: {e}", counts.sent);
            }
            counts.rejected += 1;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Runs `produce`.
pub fn run(a: ProduceArgs) -> Result<(), Box<dyn std::error::Error>> {
    let config = a.producer.config();
    let env = std::env::var(PARTITIONER_ENV).ok();
    let plugin =
        match resolve_plugin_path(a.partitioner.as_deref(), env.as_deref(), &a.cluster.cluster)? {
            Some((path, source)) => {
                let plugin = PluginPartitioner::load(&path, a.producer.batch_bytes)?;
                let from = match source {
                    PluginSource::Flag => "--partitioner".to_string(),
                    PluginSource::Env => format!("${PARTITIONER_ENV}"),
                    PluginSource::ClusterConfig(file) => file.display().to_string(),
                };
                tracing::info!(plugin = %path.display(), %from, "partitioner plugin loaded");
                Some(plugin)
            }
            None => None,
        };
    let mut producer = Producer::connect(&a.cluster.cluster, config)?;
    if let Some(plugin) = plugin {
        producer.set_partitioner(Box::new(plugin));
    }
    let mut counts = Counts {
        sent: 0,
        rejected: 0,
    };
    let started = Instant::now();
    if !a.messages.is_empty() {
        for m in &a.messages {
            send_one(&mut producer, &a, m, &mut counts)?;
        }
    } else {
        let (tx, rx) = crossbeam_channel::bounded::<String>(8192);
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut last_poll = Instant::now();
        loop {
            let wait = producer
                .next_deadline()
                .map_or(Duration::MAX, |d| {
                    d.saturating_duration_since(Instant::now())
                })
                .min(Duration::from_millis(PRODUCE_STDIN_WAIT_MS_MAX));
            match rx.recv_timeout(wait) {
                Ok(line) => send_one(&mut producer, &a, &line, &mut counts)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            // Lingering batches, acks and retries move on even while lines keep coming.
            if last_poll.elapsed() >= Duration::from_millis(PRODUCE_POLL_INTERVAL_MS) {
                producer.poll()?;
                last_poll = Instant::now();
            }
        }
    }
    let report = producer.flush()?;
    let secs = started.elapsed().as_secs_f64();
    let failed = report.failed + counts.rejected;
    eprintln!(
        "produced {} of {} messages to {} in {secs:.2}s ({} batches, {failed} not acknowledged, partitioner {})",
        report.acked,
        counts.sent,
        a.topic,
        report.batches,
        producer.partitioner_name()
    );
    if report.partitioner_fallbacks > 0 {
        eprintln!(
            "warning: the partitioner failed for {} messages, placed by the built-in default instead: {}",
            report.partitioner_fallbacks,
            report.partitioner_error.as_deref().unwrap_or("unknown error")
        );
    }
    if failed > 0 {
        let why = report
            .first_error
            .unwrap_or_else(|| "rejected by the client".into());
        return Err(format!("{failed} messages were not acknowledged: {why}").into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_separator_when_splitting_lines_should_cut_at_first_occurrence() {
        assert_eq!(split("k:v:w", None, Some(":")), (Some("k"), "v:w"));
        assert_eq!(
            split("novalue", Some("dflt"), Some(":")),
            (Some("dflt"), "novalue")
        );
        assert_eq!(split("plain", None, None), (None, "plain"));
    }

    /// The producer flags of a command line, parsed by the real CLI.
    fn producer_flags(args: &[&str]) -> ProducerFlags {
        use super::super::{bench::BenchCommand, Cli, Command};
        use clap::Parser;
        let cli = Cli::try_parse_from(std::iter::once("yak-node").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        match cli.command {
            Command::Produce(a) => a.producer,
            Command::Bench {
                command: BenchCommand::Produce(a),
            } => a.producer,
            Command::Bench {
                command: BenchCommand::E2e(a),
            } => a.producer,
            Command::Bench {
                command: BenchCommand::Partitioners(a),
            } => a.producer,
            other => panic!("not a producing command: {other:?}"),
        }
    }

    #[test]
    fn given_producing_commands_when_parsing_should_share_flags_and_keep_each_default() {
        for args in [
            &["produce", "--topic", "t"][..],
            &["bench", "produce", "--topic", "t"],
            &["bench", "partitioners", "--plugin", "p.so"],
        ] {
            let f = producer_flags(args);
            assert_eq!(
                (f.acks, f.linger_ms),
                (Acks::All, LINGER_MS_DEFAULT),
                "{args:?}"
            );
            assert_eq!(f.batch_bytes, BATCH_BYTES_DEFAULT, "{args:?}");
        }
        let e2e = producer_flags(&["bench", "e2e", "--topic", "t"]);
        assert_eq!(e2e.linger_ms, 1, "bench e2e keeps its 1 ms linger");
        let c = producer_flags(&[
            "bench",
            "e2e",
            "--topic",
            "t",
            "--acks",
            "1",
            "--linger-ms",
            "7",
            "--batch-bytes",
            "4096",
            "--max-message-bytes",
            "2048",
            "--delivery-timeout-ms",
            "900",
        ])
        .config();
        assert_eq!(c.acks, 1);
        assert_eq!(c.linger, Duration::from_millis(7));
        assert_eq!((c.batch_bytes, c.max_message_bytes), (4096, 2048));
        assert_eq!(c.delivery_timeout, Duration::from_millis(900));
    }

    #[test]
    fn given_acks_strings_when_parsing_should_accept_only_kafka_values() {
        assert_eq!(parse_acks("all"), Ok(Acks::All));
        assert_eq!(parse_acks("-1"), Ok(Acks::All));
        assert_eq!(parse_acks("1"), Ok(Acks::Leader));
        assert_eq!(parse_acks("0"), Ok(Acks::None));
        for bad in ["2", "-2", "ALL", ""] {
            let err = parse_acks(bad).expect_err("not a Kafka acks value");
            assert!(err.contains("acks must be 0, 1 or all"), "{bad:?}: {err}");
        }
    }
}
