//! The request loop shared by ZooKeeper and brokers: accept connections,
//! one thread each, read frames, hand each request to a [`Handler`], write
//! the reply. A bad frame closes that connection only, with a logged reason.
//!
//! A handler may answer at once or keep the [`Responder`] and answer later
//! from another thread (a produce waiting for replication), so a slow
//! request never holds up the requests pipelined behind it. Answers then go
//! out in completion order; clients match them by correlation id.
//!
//! No connection can starve the server: one idle for
//! [`CONNECTION_IDLE_MS_MAX`] is closed, a frame must arrive whole within
//! [`FRAME_READ_TIMEOUT_MS`] of its first byte, its buffer grows with the
//! bytes received, a connection holds at most one frame being read and
//! [`CONNECTION_REQUESTS_PENDING_MAX`] deferred answers, and the last
//! [`CONNECTIONS_RESERVED`] slots are kept for the cluster's own processes
//! (told by the peer's pid, `SO_PEERCRED`).

use crate::limits::{
    CONNECTIONS_RESERVED, CONNECTION_BUFFER_BYTES, CONNECTION_IDLE_MS_MAX,
    CONNECTION_REQUESTS_PENDING_MAX, FRAME_BYTES_MAX, FRAME_READ_TIMEOUT_MS,
    SERVER_WRITE_TIMEOUT_MS,
};
use crate::protocol::frame::{self, FrameError};
use crate::protocol::{Call, Reply, Request, Response};
use crate::transport::{self, Listener};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One connection's writer and its count of unanswered requests.
struct Conn {
    writer: Mutex<BufWriter<UnixStream>>,
    /// The peer's pid (`SO_PEERCRED`), set once when the connection is accepted.
    peer_pid: std::sync::OnceLock<Option<u32>>,
    /// Responders alive (each request's until it is answered or dropped).
    pending: Mutex<usize>,
    answered: Condvar,
}

impl Conn {
    fn new(stream: UnixStream) -> Arc<Conn> {
        Arc::new(Conn {
            writer: Mutex::new(BufWriter::with_capacity(CONNECTION_BUFFER_BYTES, stream)),
            peer_pid: std::sync::OnceLock::new(),
            pending: Mutex::new(0),
            answered: Condvar::new(),
        })
    }

    fn writer(&self) -> MutexGuard<'_, BufWriter<UnixStream>> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_peer_pid(&self, pid: Option<u32>) {
        let _ = self.peer_pid.set(pid);
    }

    fn responder(self: &Arc<Conn>, correlation_id: u64) -> Responder {
        *self.pending.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        let peer_pid = self.peer_pid.get().copied().flatten();
        Responder {
            correlation_id,
            conn: Arc::clone(self),
            received: Instant::now(),
            peer_pid,
        }
    }

    /// Waits until fewer than `max` requests of this connection wait for an answer.
    fn wait_below(&self, max: usize) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        while *pending >= max {
            pending = self
                .answered
                .wait(pending)
                .unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Where the answer to one request goes. Dropping it sends nothing.
pub struct Responder {
    correlation_id: u64,
    conn: Arc<Conn>,
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
        let response = Response {
            correlation_id: self.correlation_id,
            reply,
        };
        let mut w = self.conn.writer();
        // A closed connection is noticed by its reader thread.
        let _ = frame::write(&mut *w, &response).and_then(|_| w.flush().map_err(Into::into));
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        let mut pending = self.conn.pending.lock().unwrap_or_else(|p| p.into_inner());
        *pending = pending.saturating_sub(1);
        self.conn.answered.notify_all();
    }
}

#[cfg(test)]
impl Responder {
    /// A responder writing to one end of a socket pair; the other end is returned.
    pub(crate) fn for_test(correlation_id: u64) -> (Responder, UnixStream) {
        let (a, b) = UnixStream::pair().expect("test: socket pair");
        let conn = Conn::new(a);
        // The other end of a socket pair is this very process.
        conn.set_peer_pid(Some(std::process::id()));
        (conn.responder(correlation_id), b)
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

/// Whether a new connection may be served, with `open` connections open:
/// clients get all but the last `reserved` of `max` slots; the cluster's own
/// processes get them all.
pub fn admit(
    open: usize,
    max: usize,
    reserved: usize,
    cluster_process: impl FnOnce() -> bool,
) -> bool {
    open < max.saturating_sub(reserved) || (open < max && cluster_process())
}

/// Accepts connections forever, serving each on its own thread, at most
/// `connections_max` at once; `open` counts the connections open at any
/// moment.
pub fn serve<H: Handler>(
    listener: Listener,
    handler: Arc<H>,
    open: Arc<AtomicUsize>,
    connections_max: usize,
) {
    let ids = AtomicU64::new(1);
    let supervisor = transport::supervisor_pid();
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
        let cluster_process = || {
            transport::peer_pid(&stream)
                .is_some_and(|pid| transport::is_cluster_process(pid, supervisor))
        };
        if !admit(
            open.load(Ordering::Relaxed),
            connections_max,
            CONNECTIONS_RESERVED,
            cluster_process,
        ) {
            tracing::warn!(max = connections_max, reserved = CONNECTIONS_RESERVED, peer_pid = ?transport::peer_pid(&stream),
                "connection limit reached; closing new connection");
            continue;
        }
        let conn_id = ids.fetch_add(1, Ordering::Relaxed);
        let handler = Arc::clone(&handler);
        let open = Arc::clone(&open);
        open.fetch_add(1, Ordering::Relaxed);
        let spawned = std::thread::Builder::new()
            .name(format!("conn-{conn_id}"))
            .spawn({
                let open = Arc::clone(&open);
                move || {
                    match serve_connection(stream, &*handler) {
                        Ok(()) => {}
                        // A client that exits without closing politely is not news.
                        Err(FrameError::Io(e))
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::ConnectionReset
                                    | std::io::ErrorKind::BrokenPipe
                            ) =>
                        {
                            tracing::debug!(conn = conn_id, reason = %e, "client went away");
                        }
                        Err(reason) => {
                            tracing::warn!(conn = conn_id, %reason, "closing connection")
                        }
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

/// A socket read with a deadline: the idle timeout between frames, the
/// frame deadline once a frame has started.
struct TimedReader {
    stream: UnixStream,
    idle: Duration,
    /// When the frame being read must be complete.
    deadline: Option<Instant>,
}

impl Read for TimedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let timeout = match self.deadline {
            None => self.idle,
            Some(d) => d
                .checked_duration_since(Instant::now())
                .filter(|t| !t.is_zero())
                .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "frame deadline passed"))?,
        };
        self.stream.set_read_timeout(Some(timeout))?;
        self.stream.read(buf)
    }
}

/// Reads the next frame: waits up to the idle timeout for its first byte,
/// then up to the frame timeout for all of it. `Ok(None)`: the peer closed
/// between frames, or stayed idle too long.
fn next_frame(
    reader: &mut BufReader<TimedReader>,
    frame_timeout: Duration,
) -> Result<Option<Vec<u8>>, FrameError> {
    reader.get_mut().deadline = None;
    match reader.fill_buf() {
        Ok([]) => return Ok(None),
        Ok(_) => {}
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            tracing::debug!(
                idle_ms = reader.get_ref().idle.as_millis() as u64,
                "closing idle connection"
            );
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    }
    reader.get_mut().deadline = Some(Instant::now() + frame_timeout);
    match frame::read_body(reader, FRAME_BYTES_MAX) {
        Ok(body) => Ok(Some(body)),
        Err(FrameError::Io(e))
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Err(FrameError::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "a frame did not arrive whole within {} ms",
                    frame_timeout.as_millis()
                ),
            )))
        }
        Err(e) => Err(e),
    }
}

fn serve_connection<H: Handler>(stream: UnixStream, handler: &H) -> Result<(), FrameError> {
    serve_stream(
        stream,
        handler,
        Duration::from_millis(CONNECTION_IDLE_MS_MAX),
        Duration::from_millis(FRAME_READ_TIMEOUT_MS),
    )
}

fn serve_stream<H: Handler>(
    stream: UnixStream,
    handler: &H,
    idle: Duration,
    frame_timeout: Duration,
) -> Result<(), FrameError> {
    // A client that stops reading gets its connection closed instead of
    // holding the writer (and whoever answers it) forever.
    stream.set_write_timeout(Some(Duration::from_millis(SERVER_WRITE_TIMEOUT_MS)))?;
    // Who connected, once: the kernel's record, which the peer cannot forge.
    let peer_pid = crate::peer::peer_cred(&stream).ok().map(|c| c.pid);
    let timed = TimedReader {
        stream: stream.try_clone()?,
        idle,
        deadline: None,
    };
    let mut reader = BufReader::with_capacity(CONNECTION_BUFFER_BYTES, timed);
    let conn = Conn::new(stream);
    conn.set_peer_pid(peer_pid);
    loop {
        conn.wait_below(CONNECTION_REQUESTS_PENDING_MAX);
        let Some(body) = next_frame(&mut reader, frame_timeout)? else {
            return Ok(());
        };
        let request: Request = frame::decode(&body)?;
        drop(body);
        let responder = conn.responder(request.correlation_id);
        let mut w = match handler.handle(request.call, responder) {
            Handled::Reply(reply) => {
                let response = Response {
                    correlation_id: request.correlation_id,
                    reply,
                };
                let mut w = conn.writer();
                frame::write(&mut *w, &response)?;
                w
            }
            Handled::NoReply | Handled::Deferred => conn.writer(),
        };
        // Pipelined requests already buffered are answered before one flush.
        if reader.buffer().is_empty() {
            w.flush()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Keeps every responder (a deferred answer that never comes) and
    /// reports each request it gets.
    struct Hoarder {
        kept: Mutex<Vec<Responder>>,
        seen: Mutex<mpsc::Sender<u64>>,
    }

    impl Handler for Hoarder {
        fn handle(&self, _call: Call, responder: Responder) -> Handled {
            let _ = self
                .seen
                .lock()
                .expect("test: lock")
                .send(responder.correlation_id);
            self.kept.lock().expect("test: lock").push(responder);
            Handled::Deferred
        }
    }

    fn hoarder() -> (Arc<Hoarder>, mpsc::Receiver<u64>) {
        let (tx, rx) = mpsc::channel();
        (
            Arc::new(Hoarder {
                kept: Mutex::new(Vec::new()),
                seen: Mutex::new(tx),
            }),
            rx,
        )
    }

    /// Serves one end of a socket pair on a thread; returns the other end
    /// and what `serve_stream` returned, when it does.
    fn serve_pair(
        handler: Arc<Hoarder>,
        idle_ms: u64,
        frame_ms: u64,
    ) -> (UnixStream, mpsc::Receiver<Result<(), String>>) {
        let (server, client) = UnixStream::pair().expect("socket pair");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let r = serve_stream(
                server,
                &*handler,
                Duration::from_millis(idle_ms),
                Duration::from_millis(frame_ms),
            );
            let _ = tx.send(r.map_err(|e| e.to_string()));
        });
        (client, rx)
    }

    #[test]
    fn given_open_connections_when_admitting_should_keep_the_reserved_slots_for_the_cluster() {
        // (open, cluster process, admitted) with max 10, 2 reserved.
        for (open, cluster, admitted) in [
            (0, false, true),
            (7, false, true),
            (8, false, false),
            (8, true, true),
            (9, true, true),
            (10, true, false),
        ] {
            assert_eq!(
                admit(open, 10, 2, || cluster),
                admitted,
                "open {open}, cluster process {cluster}"
            );
        }
        let mut asked = false;
        assert!(admit(3, 10, 2, || {
            asked = true;
            false
        }));
        assert!(!asked, "below the reserve nobody's pid is looked up");
    }

    #[test]
    fn given_frame_trickling_in_when_its_deadline_passes_should_close_the_connection() {
        let (handler, _seen) = hoarder();
        let (mut client, done) = serve_pair(handler, 5_000, 300);
        let started = Instant::now();
        client
            .write_all(&(16u32 * 1024 * 1024).to_be_bytes())
            .expect("length");
        let mut closed = None;
        for _ in 0..20 {
            if client.write_all(&[0x80]).is_err() {
                break;
            }
            if let Ok(r) = done.recv_timeout(Duration::from_millis(100)) {
                closed = Some(r);
                break;
            }
        }
        let r = closed
            .or_else(|| done.recv_timeout(Duration::from_secs(2)).ok())
            .expect("the server gave up");
        let err = r.expect_err("a timed-out frame is an error");
        assert!(err.contains("did not arrive whole within 300 ms"), "{err}");
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "closed at the deadline, not later"
        );
    }

    #[test]
    fn given_silent_connection_when_idle_timeout_passes_should_close_it_quietly() {
        let (handler, _seen) = hoarder();
        let (mut client, done) = serve_pair(handler, 200, 5_000);
        assert_eq!(
            done.recv_timeout(Duration::from_secs(2)).expect("closed"),
            Ok(())
        );
        let mut buf = [0u8; 1];
        assert_eq!(
            client.read(&mut buf).expect("eof"),
            0,
            "the server closed its end"
        );
    }

    #[test]
    fn given_many_deferred_requests_when_pipelined_should_read_no_more_than_the_pending_bound() {
        let (handler, seen) = hoarder();
        let (mut client, _done) = serve_pair(Arc::clone(&handler), 5_000, 5_000);
        let extra = 5;
        for id in 0..(CONNECTION_REQUESTS_PENDING_MAX + extra) as u64 {
            frame::write(
                &mut client,
                &Request {
                    correlation_id: id,
                    call: Call::ListGroups,
                },
            )
            .expect("write");
        }
        let mut got = 0;
        while seen.recv_timeout(Duration::from_millis(300)).is_ok() {
            got += 1;
        }
        assert_eq!(
            got, CONNECTION_REQUESTS_PENDING_MAX,
            "reading stops at the bound"
        );
        let answered: Vec<Responder> = handler.kept.lock().expect("lock").drain(..2).collect();
        drop(answered);
        let mut more = 0;
        while seen.recv_timeout(Duration::from_millis(300)).is_ok() {
            more += 1;
        }
        assert_eq!(more, 2, "each answered request lets one more in");
    }
}
