//! `cluster watch`: a full-screen live view of the cluster. A poller thread
//! takes a [`source::Source`] snapshot every interval; the terminal loop
//! feeds them to the [`model::WatchModel`], draws with [`draw`] and reads
//! keys. `q`, Ctrl-C, SIGTERM or SIGINT quit, and so does the terminal
//! going away (hang-up); the terminal is restored on every exit, an error
//! or a panic included. Without a tty on stdout it prints one plain-text
//! frame (two polls one interval apart, so rates show) and exits. Owns the
//! terminal and the clock; decides nothing shown.
//!
//! Keys are read here with poll(2) on the terminal rather than with
//! crossterm's event reader, which spins forever on a hung-up terminal
//! (its read loop retries a read that returns end-of-file).

pub mod draw;
pub mod event_text;
pub mod model;
pub mod source;

use crate::limits::{WATCH_PLAIN_WIDTH_COLUMNS, WATCH_REDRAW_INTERVAL_MS};
use crossbeam_channel::{Receiver, Sender};
use model::{Snapshot, WatchModel};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use source::Source;
use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

type CliResult = Result<(), Box<dyn std::error::Error>>;

/// Snapshots waiting for the terminal loop; the poller blocks beyond this.
const POLL_QUEUE_DEPTH: usize = 4;

/// Runs `cluster watch`.
pub fn run(cluster: &Path, interval_ms: u64) -> CliResult {
    if std::io::stdout().is_terminal() {
        live(cluster, interval_ms)
    } else {
        plain(cluster, interval_ms)
    }
}

/// One frame as text: fails (exit 1) if the cluster does not answer.
fn plain(cluster: &Path, interval_ms: u64) -> CliResult {
    let mut source = Source::new(cluster);
    let mut model = WatchModel::default();
    let start = Instant::now();
    model.apply(0, source.poll()?);
    thread::sleep(Duration::from_millis(interval_ms));
    let now_ms = start.elapsed().as_millis() as u64;
    model.apply(now_ms, source.poll()?);
    let text = draw::plain(&model.view(now_ms), interval_ms, WATCH_PLAIN_WIDTH_COLUMNS);
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

type PollResult = Result<Snapshot, String>;

/// Polls forever, one snapshot per interval, until the receiver is gone.
fn poller(cluster: &Path, interval_ms: u64) -> Receiver<PollResult> {
    let (tx, rx): (Sender<PollResult>, Receiver<PollResult>) =
        crossbeam_channel::bounded(POLL_QUEUE_DEPTH);
    let mut source = Source::new(cluster);
    thread::spawn(move || loop {
        let started = Instant::now();
        if tx.send(source.poll().map_err(|e| e.to_string())).is_err() {
            return;
        }
        thread::sleep(Duration::from_millis(interval_ms).saturating_sub(started.elapsed()));
    });
    rx
}

/// Leaves raw mode and the alternate screen when dropped, whatever the exit.
struct RestoreTerminal;

impl Drop for RestoreTerminal {
    fn drop(&mut self) {
        // Fails only when the terminal is gone: nothing to restore, and
        // nowhere to say so (printing to a hung-up terminal would panic).
        let _ = ratatui::try_restore();
    }
}

/// Bytes that quit: `q`, `Q`, Ctrl-C (a byte, not a signal, in raw mode).
const QUIT_KEYS: [u8; 3] = [b'q', b'Q', 0x03];

/// What the keyboard said.
enum Input {
    /// No key that matters.
    Nothing,
    /// A quit key.
    Quit,
    /// The terminal is gone.
    HungUp,
}

/// Where keys come from: stdin if it is the terminal, else the process's
/// controlling terminal.
struct Keys {
    tty: File,
}

impl Keys {
    fn open() -> Result<Keys, std::io::Error> {
        let stdin = std::io::stdin();
        let tty = if stdin.is_terminal() {
            File::from(stdin.as_fd().try_clone_to_owned()?)
        } else {
            File::open("/dev/tty")?
        };
        Ok(Keys { tty })
    }

    /// Waits at most `timeout_ms` for keys.
    fn wait(&mut self, timeout_ms: u64) -> Result<Input, std::io::Error> {
        let mut fds = [PollFd::new(self.tty.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(timeout_ms).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(0) | Err(Errno::EINTR) => return Ok(Input::Nothing),
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        let revents = fds[0].revents().unwrap_or(PollFlags::empty());
        if !revents.contains(PollFlags::POLLIN) {
            // POLLHUP, POLLERR or POLLNVAL without input: the terminal is gone.
            return Ok(Input::HungUp);
        }
        let mut buf = [0u8; 64];
        match self.tty.read(&mut buf) {
            Ok(0) => Ok(Input::HungUp),
            Ok(n) if buf[..n].iter().any(|b| QUIT_KEYS.contains(b)) => Ok(Input::Quit),
            Ok(_) => Ok(Input::Nothing),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
                ) =>
            {
                Ok(Input::Nothing)
            }
            // EIO: the terminal hung up.
            Err(_) => Ok(Input::HungUp),
        }
    }
}

fn live(cluster: &Path, interval_ms: u64) -> CliResult {
    let stop = Arc::new(AtomicBool::new(false));
    // SIGHUP keeps its default (exit): the terminal is gone, nothing to restore.
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    let mut keys = Keys::open()?;
    let polls = poller(cluster, interval_ms);
    let _restore = RestoreTerminal;
    // Installs a panic hook that restores the terminal before the message.
    let mut terminal = ratatui::try_init()?;
    let mut model = WatchModel::default();
    let start = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let now_ms = start.elapsed().as_millis() as u64;
        for result in polls.try_iter() {
            match result {
                Ok(snap) => model.apply(now_ms, snap),
                Err(e) => model.poll_failed(now_ms, e),
            }
        }
        let view = model.view(now_ms);
        if let Err(e) = terminal.draw(|f| draw::draw(f, &view, interval_ms, true)) {
            if matches!(keys.wait(0)?, Input::HungUp) {
                return hung_up(terminal);
            }
            return Err(e.into());
        }
        match keys.wait(WATCH_REDRAW_INTERVAL_MS)? {
            Input::Nothing => {}
            Input::Quit => break,
            Input::HungUp => return hung_up(terminal),
        }
    }
    Ok(())
}

/// The terminal is gone: nothing to draw on and nobody to tell. The
/// terminal is not dropped, as its drop would report that it cannot show
/// the cursor, and printing to a hung-up terminal panics.
fn hung_up(terminal: ratatui::DefaultTerminal) -> CliResult {
    std::mem::forget(terminal);
    Ok(())
}
