//! Everything the supervisor prints: children's lines prefixed with their
//! name, and its own log lines (tracing) prefixed `[supervisor]`.
//!
//! Owns: one reader thread per child pipe, one writer thread per stream
//! (stdout, stderr) between them a queue bounded in bytes, and the log
//! format. A reader never blocks on the output: when the queue is full
//! (the terminal or pipe is slow or blocked) lines are dropped and their
//! count printed once there is room, so a child never blocks on its logs.
//! Never: touches processes; a reader ends only at EOF or a read error.

use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// A longer child line is cut into pieces of this size.
pub const LINE_BYTES_MAX: usize = yak_protocol::limits::SUPERVISOR_LINE_BYTES_MAX;
/// Most bytes of children's lines waiting for one of the supervisor's
/// streams (stdout or stderr); past it new lines are dropped and counted,
/// so a slow or blocked terminal or pipe never blocks a child's logging.
pub const QUEUED_BYTES_MAX: usize = yak_protocol::limits::SUPERVISOR_QUEUED_BYTES_MAX;

/// Where a child's pipe is copied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Stdout,
    Stderr,
}

/// Lines waiting for one stream, bounded in bytes, written by one thread.
pub struct Queue {
    tx: Sender<Vec<u8>>,
    queued_bytes: Arc<AtomicUsize>,
    max_bytes: usize,
}

impl Queue {
    /// A queue of at most `max_bytes`, drained by a thread writing each line
    /// in one write to the writer `lock` gives.
    pub fn start<W: Write>(
        name: &str,
        max_bytes: usize,
        mut lock: impl FnMut() -> W + Send + 'static,
    ) -> std::io::Result<Queue> {
        let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let queued = Arc::clone(&queued_bytes);
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                for line in rx {
                    // A closed stream must not stop the writer: the queue would fill and drop everything.
                    let _ = lock().write_all(&line);
                    queued.fetch_sub(line.len(), Ordering::Relaxed);
                }
            })?;
        Ok(Queue {
            tx,
            queued_bytes,
            max_bytes,
        })
    }

    /// Queues `line` unless that would pass the bound; never blocks.
    fn try_push(&self, line: Vec<u8>) -> bool {
        let len = line.len();
        let before = self.queued_bytes.fetch_add(len, Ordering::Relaxed);
        if before + len > self.max_bytes || self.tx.send(line).is_err() {
            self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Queues `line` past the bound (a reader's last notice, after its child
    /// closed the pipe: waiting can no longer block the child).
    fn push_anyway(&self, line: Vec<u8>) {
        self.queued_bytes.fetch_add(line.len(), Ordering::Relaxed);
        let _ = self.tx.send(line);
    }
}

/// The supervisor's stdout or stderr queue, started on first use.
fn queue_for(sink: Sink) -> std::io::Result<&'static Queue> {
    static STDOUT: OnceLock<Queue> = OnceLock::new();
    static STDERR: OnceLock<Queue> = OnceLock::new();
    let cell = match sink {
        Sink::Stdout => &STDOUT,
        Sink::Stderr => &STDERR,
    };
    if let Some(q) = cell.get() {
        return Ok(q);
    }
    let q = match sink {
        Sink::Stdout => Queue::start("out-stdout", QUEUED_BYTES_MAX, || std::io::stdout().lock())?,
        Sink::Stderr => Queue::start("out-stderr", QUEUED_BYTES_MAX, || std::io::stderr().lock())?,
    };
    // Only the main thread starts readers, so no other queue was set meanwhile.
    Ok(cell.get_or_init(|| q))
}

/// Starts a thread copying `fd` to `sink` line by line, each prefixed `[name] `.
pub fn forward(name: &str, fd: OwnedFd, sink: Sink) -> std::io::Result<JoinHandle<()>> {
    let prefix = format!("[{name}] ");
    let queue = queue_for(sink)?;
    std::thread::Builder::new()
        .name(format!("out-{name}"))
        .spawn(move || {
            copy_lines(std::fs::File::from(fd), &prefix, queue);
        })
}

/// Copies `input` to `queue`, one whole prefixed line per entry, so lines
/// from different children never interleave mid-line. Never blocks on the
/// output: a line that does not fit is dropped, and the count of dropped
/// lines is queued as a line of its own as soon as one fits again (or at
/// the end, whatever the bound). Returns the lines dropped.
fn copy_lines<R: Read>(input: R, prefix: &str, queue: &Queue) -> u64 {
    let mut reader = BufReader::new(input);
    let mut line = Vec::with_capacity(256);
    let (mut dropped, mut dropped_total) = (0u64, 0u64);
    loop {
        line.clear();
        line.extend_from_slice(prefix.as_bytes());
        let limit = LINE_BYTES_MAX as u64;
        let end = matches!(
            reader.by_ref().take(limit).read_until(b'\n', &mut line),
            Ok(0) | Err(_)
        );
        if end {
            if dropped > 0 {
                queue.push_anyway(dropped_notice(prefix, dropped));
            }
            return dropped_total;
        }
        if dropped > 0 && queue.try_push(dropped_notice(prefix, dropped)) {
            dropped = 0;
        }
        if line.last() != Some(&b'\n') {
            line.push(b'\n');
        }
        if dropped > 0 || !queue.try_push(std::mem::take(&mut line)) {
            dropped += 1;
            dropped_total += 1;
        }
    }
}

fn dropped_notice(prefix: &str, dropped: u64) -> Vec<u8> {
    format!("{prefix}[supervisor: {dropped} lines of this child's output dropped: the supervisor's output was blocked]\n")
        .into_bytes()
}

/// Formats the supervisor's own events as `[supervisor] LEVEL message key=value`.
struct SupervisorFormat;

impl<S, N> FormatEvent<S, N> for SupervisorFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        write!(writer, "[supervisor] {} ", event.metadata().level())?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Sends tracing events to stderr; level from `RUST_LOG`, `info` by default.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .event_format(SupervisorFormat)
        .init();
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::{Condvar, Mutex};
    use std::time::{Duration, Instant};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<Vec<u8>>>>);

    struct OneWrite(Shared);

    impl Write for OneWrite {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 .0.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn writes(out: &Shared, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while out.0.lock().unwrap().len() < count && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        out.0
            .lock()
            .unwrap()
            .iter()
            .map(|w| String::from_utf8(w.clone()).unwrap())
            .collect()
    }

    #[test]
    fn given_lines_when_copying_should_prefix_each_in_one_write() {
        let out = Shared::default();
        let queue = Queue::start("t", QUEUED_BYTES_MAX, {
            let o = out.clone();
            move || OneWrite(o.clone())
        })
        .unwrap();
        let input: &[u8] = b"hello\nworld\nno newline";
        assert_eq!(copy_lines(input, "[broker-2] ", &queue), 0);
        assert_eq!(
            writes(&out, 3),
            [
                "[broker-2] hello\n",
                "[broker-2] world\n",
                "[broker-2] no newline\n"
            ]
        );
    }

    #[test]
    fn given_overlong_line_when_copying_should_split_it() {
        let out = Shared::default();
        let queue = Queue::start("t", QUEUED_BYTES_MAX, {
            let o = out.clone();
            move || OneWrite(o.clone())
        })
        .unwrap();
        let input = vec![b'x'; LINE_BYTES_MAX + 10];
        copy_lines(&input[..], "[z] ", &queue);
        let w = writes(&out, 2);
        assert_eq!(w.len(), 2);
        assert_eq!(w[1], "[z] xxxxxxxxxx\n");
    }

    /// A writer that blocks every write until the gate opens.
    struct Gated(Arc<(Mutex<bool>, Condvar)>, Shared);

    impl Write for Gated {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let (open, cv) = &*self.0;
            let mut o = open.lock().unwrap();
            while !*o {
                o = cv.wait(o).unwrap();
            }
            self.1 .0.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn given_blocked_output_when_a_child_writes_on_should_drop_lines_never_block_and_report_the_count(
    ) {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let out = Shared::default();
        let make = {
            let (g, o) = (Arc::clone(&gate), out.clone());
            move || Gated(Arc::clone(&g), o.clone())
        };
        // Room for 10 lines of "[c] line NNNN\n" (14 bytes) besides the one the writer holds.
        let queue = Queue::start("t", 11 * 14, make).unwrap();
        let input: String = (0..1000).map(|i| format!("line {i:04}\n")).collect();
        let started = Instant::now();
        let dropped = copy_lines(input.as_bytes(), "[c] ", &queue);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the reader never waited for the blocked output"
        );
        assert!((1000 - 11..1000).contains(&dropped), "dropped {dropped}");
        let (open, cv) = &*gate;
        *open.lock().unwrap() = true;
        cv.notify_all();
        let kept = 1000 - dropped as usize;
        let w = writes(&out, kept + 1);
        assert_eq!(
            w[0], "[c] line 0000\n",
            "the first lines got through in order"
        );
        let notice = w.last().unwrap();
        assert!(
            notice.contains(&format!("{dropped} lines of this child's output dropped")),
            "{w:?}"
        );
    }
}
