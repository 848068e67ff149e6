//! `cluster watch`: a full-screen live view of the cluster. A poller thread
//! takes a [`source::Source`] snapshot every interval; the terminal loop
//! feeds them to the [`model::WatchModel`], draws with [`draw`] and reads
//! keys. `q`, Esc, Ctrl-C, SIGTERM or SIGHUP quit; the terminal is restored
//! on every exit, an error or a panic included. Without a tty on stdout it
//! prints one plain-text frame (two polls one interval apart, so rates
//! show) and exits. Owns the terminal and the clock; decides nothing shown.

pub mod draw;
pub mod event_text;
pub mod model;
pub mod source;

use crate::limits::{WATCH_PLAIN_WIDTH_COLUMNS, WATCH_REDRAW_INTERVAL_MS};
use crossbeam_channel::{Receiver, Sender};
use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use model::{Snapshot, WatchModel};
use source::Source;
use std::io::{IsTerminal, Write};
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
    let (tx, rx): (Sender<PollResult>, Receiver<PollResult>) = crossbeam_channel::bounded(POLL_QUEUE_DEPTH);
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
        ratatui::restore();
    }
}

fn quits(e: &Event) -> bool {
    let Event::Key(k) = e else { return false };
    k.kind == KeyEventKind::Press
        && (matches!(k.code, KeyCode::Char('q') | KeyCode::Char('Q') | KeyCode::Esc)
            || (k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL)))
}

fn live(cluster: &Path, interval_ms: u64) -> CliResult {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
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
        terminal.draw(|f| draw::draw(f, &view, interval_ms, true))?;
        if event::poll(Duration::from_millis(WATCH_REDRAW_INTERVAL_MS))? && quits(&event::read()?) {
            break;
        }
    }
    Ok(())
}
