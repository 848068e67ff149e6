//! `yak-node`: parses the command line and dispatches. Nothing else.

use clap::Parser;
use std::io::IsTerminal;
use yak::cli::{self, Cli, Command};

fn main() {
    let cli = Cli::parse();
    let server = matches!(cli.command, Command::Zookeeper(_) | Command::Broker(_));
    let default_level = if server { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
    if let Err(e) = cli::run(cli) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
