//! Clean exit on SIGTERM or SIGINT for server processes: run a last step
//! (flush logs, remove the socket), then exit 0.

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Spawns a thread that waits for SIGTERM/SIGINT, runs `last_step`, exits.
pub fn on_terminate(last_step: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    std::thread::Builder::new()
        .name("shutdown".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                tracing::info!(signal = sig, "shutting down");
                last_step();
                std::process::exit(0);
            }
        })?;
    Ok(())
}
