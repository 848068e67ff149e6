//! The request loop shared by ZooKeeper and brokers: accept connections,
//! one thread each, read frames, hand each request to a [`Handler`], write
//! the reply. A bad frame closes that connection only, with a logged reason.
//!
//! A handler may answer at once or keep the [`Responder`] and answer later
//! from another thread (a produce waiting for replication), so a slow
//! request never holds up the requests pipelined behind it. Answers then go
//! out in completion order; clients match them by correlation id.

use crate::limits::{CONNECTIONS_MAX, FRAME_BYTES_MAX, SERVER_WRITE_TIMEOUT_MS};
use crate::protocol::frame::{self, FrameError};
use crate::protocol::{Call, Reply, Request, Response};
use crate::transport::Listener;
use std::io::{BufReader, BufWriter, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type SharedWriter = Arc<Mutex<BufWriter<UnixStream>>>;

/// Where the answer to one request goes. Dropping it sends nothing.
pub struct Responder {
    correlation_id: u64,
    writer: SharedWriter,
    received: Instant,
    peer_pid: Option<u32>,
}

impl Responder {
    /// The pid of the process that sent the request, as the kernel recorded
    /// it when the connection was made (`SO_PEERCRED`); `None` if unknown.
    /// Handlers authenticate cluster-only calls with it.
    pub fn peer_pid(&self) -> Option<u32> {
        self.peer_pid
    }

    /// When the request this answers was read off its connection.
    pub fn received(&self) -> Instant {
        self.received
    }

    /// Sends the answer now, flushing it.
    pub fn send(self, reply: Reply) {
        let response = Response { correlation_id: self.correlation_id, reply };
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        // A closed connection is noticed by its reader thread.
        let _ = frame::write(&mut *w, &response).and_then(|_| w.flush().map_err(Into::into));
    }
}

#[cfg(test)]
impl Responder {
    /// A responder writing to one end of a socket pair; the other end is returned.
    pub(crate) fn for_test(correlation_id: u64) -> (Responder, UnixStream) {
        let (a, b) = UnixStream::pair().expect("test: socket pair");
        let writer = Arc::new(Mutex::new(BufWriter::new(a)));
        (Responder { correlation_id, writer, received: Instant::now(), peer_pid: None }, b)
    }
}

/// What a handler did with a request.
pub enum Handled {
    /// Answer now.
    Reply(Reply),
    /// No answer (acks=0 produce).
    NoReply,
    /// The handler kept the responder and answers later.
    Deferred,
}

/// Answers requests.
pub trait Handler: Send + Sync + 'static {
    /// Handles one request; `responder` is for a deferred answer.
    fn handle(&self, call: Call, responder: Responder) -> Handled;
}

/// Accepts connections forever, serving each on its own thread; `open`
/// counts the connections open at any moment.
pub fn serve<H: Handler>(listener: Listener, handler: Arc<H>, open: Arc<AtomicUsize>) {
    let ids = AtomicU64::new(1);
    let mut backoff_ms = 1;
    loop {
        let stream = match listener.accept() {
            Ok(s) => {
                backoff_ms = 1;
                s
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                std::thread::sleep(Duration::from_millis(backoff_ms));
                backoff_ms = (backoff_ms * 2).min(1000);
                continue;
            }
        };
        if open.load(Ordering::Relaxed) >= CONNECTIONS_MAX {
            tracing::warn!(max = CONNECTIONS_MAX, "connection limit reached; closing new connection");
            continue;
        }
        let conn_id = ids.fetch_add(1, Ordering::Relaxed);
        let handler = Arc::clone(&handler);
        let open = Arc::clone(&open);
        open.fetch_add(1, Ordering::Relaxed);
        let spawned = std::thread::Builder::new().name(format!("conn-{conn_id}")).spawn({
            let open = Arc::clone(&open);
            move || {
                match serve_connection(stream, &*handler) {
                    Ok(()) => {}
                    // A client that exits without closing politely is not news.
                    Err(FrameError::Io(e))
                        if matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe) =>
                    {
                        tracing::debug!(conn = conn_id, reason = %e, "client went away");
                    }
                    Err(reason) => tracing::warn!(conn = conn_id, %reason, "closing connection"),
                }
                open.fetch_sub(1, Ordering::Relaxed);
            }
        });
        if let Err(e) = spawned {
            open.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "cannot start connection thread");
        }
    }
}

fn serve_connection<H: Handler>(stream: UnixStream, handler: &H) -> Result<(), FrameError> {
    // A client that stops reading gets its connection closed instead of
    // holding the writer (and whoever answers it) forever.
    stream.set_write_timeout(Some(Duration::from_millis(SERVER_WRITE_TIMEOUT_MS)))?;
    // Who connected, once: the kernel's record, which the peer cannot forge.
    let peer_pid = crate::peer::peer_cred(&stream).ok().map(|c| c.pid);
    let mut reader = BufReader::with_capacity(64 * 1024, stream.try_clone()?);
    let writer: SharedWriter = Arc::new(Mutex::new(BufWriter::with_capacity(64 * 1024, stream)));
    loop {
        let body = match frame::read_body(&mut reader, FRAME_BYTES_MAX) {
            Ok(b) => b,
            Err(FrameError::Closed) => return Ok(()),
            Err(e) => return Err(e),
        };
        let request: Request = frame::decode(&body)?;
        drop(body);
        let responder = Responder {
            correlation_id: request.correlation_id,
            writer: Arc::clone(&writer),
            received: Instant::now(),
            peer_pid,
        };
        let mut w = match handler.handle(request.call, responder) {
            Handled::Reply(reply) => {
                let response = Response { correlation_id: request.correlation_id, reply };
                let mut w = writer.lock().unwrap_or_else(|p| p.into_inner());
                frame::write(&mut *w, &response)?;
                w
            }
            Handled::NoReply | Handled::Deferred => writer.lock().unwrap_or_else(|p| p.into_inner()),
        };
        // Pipelined requests already buffered are answered before one flush.
        if reader.buffer().is_empty() {
            w.flush()?;
        }
    }
}
