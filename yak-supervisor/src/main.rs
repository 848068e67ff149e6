//! `yak-supervisor`: forks one mini-ZooKeeper, N brokers and any producer
//! and consumer workers (`yak-node`),
//! prefixes their output with their names, restarts them with backoff when
//! they die, and stops them all on Ctrl-C or SIGTERM.
//!
//! # Layout
//! - `config`: TOML file + flags -> checked [`config::Config`].
//! - `spawn`: fork/exec of one child with piped stdout/stderr.
//! - `output`: per-pipe reader threads and the `[supervisor]` log format.
//! - `restart`: backoff and restart budget, no I/O.
//! - `report`: tells ZooKeeper about each restart (for `cluster events`).
//! - `supervisor`: the run-dir and data-dir locks, main loop and shutdown.
//! - `board`: the children's pids and restart counts, lock-free, for metrics.
//! - `scrape`: gathers a metrics snapshot from the children at scrape time.
//! - `metrics`: the snapshot as Prometheus text (pure).
//! - `http`: the `GET /metrics` endpoint (`--metrics-addr`).
//!
//! This file only parses flags and calls into those modules.

mod board;
mod broker_set;
mod config;
mod control;
mod error;
mod http;
mod metrics;
mod output;
mod report;
mod restart;
mod rundir;
mod scrape;
mod spawn;
mod specs;
mod supervisor;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Runs a YaK cluster (1 ZooKeeper, N brokers, optional workers) in the foreground.
#[derive(Debug, Parser)]
#[command(name = "yak-supervisor", version)]
struct Args {
    /// Cluster TOML file (see examples/cluster.toml); flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Number of brokers, 1..=64 (default 3).
    #[arg(long, value_name = "N")]
    brokers: Option<u32>,
    /// Producer workers (`yak-node worker produce`), 0..=64 (default 0).
    #[arg(long, value_name = "N")]
    producers: Option<u32>,
    /// Consumer workers (`yak-node worker consume`), 0..=64 (default 0).
    #[arg(long, value_name = "M")]
    consumers: Option<u32>,
    /// Directory for sockets and the lock file (default ./yak-run).
    #[arg(long, value_name = "DIR")]
    run_dir: Option<PathBuf>,
    /// Directory for logs and metadata (default ./yak-data).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The yak-node binary (default: $YAK_NODE_BIN, else next to this program).
    #[arg(long, value_name = "PATH")]
    node_bin: Option<PathBuf>,
    /// Serve Prometheus metrics at http://HOST:PORT/metrics (default: off).
    #[arg(long, value_name = "HOST:PORT")]
    metrics_addr: Option<String>,
    /// Broker i serves the Kafka protocol on 127.0.0.1:P+i-1 (overrides
    /// `[kafka] port_base`; 0 turns the listeners off).
    #[arg(long, value_name = "P")]
    kafka_port_base: Option<u16>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    output::init_logging();
    let overrides = config::Overrides {
        config: args.config,
        brokers: args.brokers.map(i64::from),
        producers: args.producers.map(i64::from),
        consumers: args.consumers.map(i64::from),
        run_dir: args.run_dir,
        data_dir: args.data_dir,
        node_bin: args.node_bin,
        metrics_addr: args.metrics_addr,
        kafka_port_base: args.kafka_port_base,
    };
    let prepared = config::Config::load(&overrides).and_then(|config| {
        let node_bin = config::resolve_node_bin(
            overrides.node_bin.clone(),
            std::env::var_os(config::NODE_BIN_ENV),
            std::env::current_exe,
        )?;
        Ok((config, node_bin))
    });
    let (config, node_bin) = match prepared {
        Ok(prepared) => prepared,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match supervisor::run(&config, &node_bin) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
