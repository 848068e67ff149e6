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
    if !server {
        quiet_on_closed_stdout();
    }
    if let Err(e) = cli::run(cli) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// `yak-node topic list | head`: when the reader closes the pipe, `println!`
/// panics with "Broken pipe"; a command-line tool should stop quietly
/// instead, as `cat` does.
fn quiet_on_closed_stdout() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default_hook(info);
    }));
}
