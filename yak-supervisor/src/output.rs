//! Everything the supervisor prints: children's lines prefixed with their
//! name, and its own log lines (tracing) prefixed `[supervisor]`.
//!
//! Owns: one reader thread per child pipe, and the log format.
//! Never: touches processes; a reader ends only at EOF or a read error.

use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::os::fd::OwnedFd;
use std::thread::JoinHandle;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// A longer child line is cut into pieces of this size.
pub const LINE_BYTES_MAX: usize = 64 * 1024;

/// Where a child's pipe is copied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Stdout,
    Stderr,
}

/// Starts a thread copying `fd` to `sink` line by line, each prefixed `[name] `.
pub fn forward(name: &str, fd: OwnedFd, sink: Sink) -> std::io::Result<JoinHandle<()>> {
    let prefix = format!("[{name}] ");
    std::thread::Builder::new()
        .name(format!("out-{name}"))
        .spawn(move || match sink {
            Sink::Stdout => copy_lines(std::fs::File::from(fd), &prefix, || std::io::stdout().lock()),
            Sink::Stderr => copy_lines(std::fs::File::from(fd), &prefix, || std::io::stderr().lock()),
        })
}

/// Copies `input` to the writer `lock` gives, one whole prefixed line per write,
/// so lines from different children never interleave mid-line.
fn copy_lines<R: Read, W: Write>(input: R, prefix: &str, mut lock: impl FnMut() -> W) {
    let mut reader = BufReader::new(input);
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        line.extend_from_slice(prefix.as_bytes());
        let limit = LINE_BYTES_MAX as u64;
        match reader.by_ref().take(limit).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.last() != Some(&b'\n') {
            line.push(b'\n');
        }
        // A closed stdout must not kill the reader: the child would block on a full pipe.
        let _ = lock().write_all(&line);
    }
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
    use std::sync::{Arc, Mutex};

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

    #[test]
    fn given_lines_when_copying_should_prefix_each_in_one_write() {
        let out = Shared::default();
        let input: &[u8] = b"hello\nworld\nno newline";
        copy_lines(input, "[broker-2] ", || OneWrite(out.clone()));
        let writes = out.0.lock().unwrap().clone();
        let writes: Vec<String> = writes.into_iter().map(|w| String::from_utf8(w).unwrap()).collect();
        assert_eq!(writes, ["[broker-2] hello\n", "[broker-2] world\n", "[broker-2] no newline\n"]);
    }

    #[test]
    fn given_overlong_line_when_copying_should_split_it() {
        let out = Shared::default();
        let input = vec![b'x'; LINE_BYTES_MAX + 10];
        copy_lines(&input[..], "[z] ", || OneWrite(out.clone()));
        let writes = out.0.lock().unwrap().clone();
        assert_eq!(writes.len(), 2);
        assert_eq!(writes[1], b"[z] xxxxxxxxxx\n");
    }
}
