//! The one way replies leave a connection: each connection has one writer
//! thread fed by a bounded queue. Whoever completes a request (the
//! connection's reader, the flusher, the fetch waker, the maintenance tick)
//! hands the encoded reply to [`Responder::send`], which never touches the
//! socket and never blocks on it.
//!
//! Every request gets a sequence number when it is read; the writer puts
//! replies on the wire in that order, holding a reply completed early until
//! the ones before it are written or dropped (a dropped [`Responder`], an
//! acks=0 produce: nothing is written for it). A connection whose queue
//! passes [`CONNECTION_REPLIES_QUEUED_MAX`] replies or
//! [`CONNECTION_REPLY_QUEUE_BYTES_MAX`] bytes (a client that does not read)
//! is shut down both ways and its replies dropped, once, with one log line;
//! so is one whose socket takes nothing for [`SERVER_WRITE_TIMEOUT_MS`].
//! Nobody else waits for it. Never reads from the socket.

#[cfg(test)]
use crate::limits::SERVER_WRITE_TIMEOUT_MS;
use crate::limits::{
    CONNECTION_BUFFER_BYTES, CONNECTION_REPLIES_QUEUED_MAX, CONNECTION_REPLY_QUEUE_BYTES_MAX,
};
use crate::protocol::frame;
use crate::protocol::{Reply, Response};
use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// A connection's queue bounds (the limits, or smaller ones in tests).
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueBounds {
    pub replies: usize,
    pub bytes: usize,
}

impl QueueBounds {
    pub(crate) const LIMITS: QueueBounds = QueueBounds {
        replies: CONNECTION_REPLIES_QUEUED_MAX,
        bytes: CONNECTION_REPLY_QUEUE_BYTES_MAX,
    };
}

/// What the reader and the answering threads share with the writer.
#[derive(Default)]
struct Outbox {
    /// Sequence number the next request read gets.
    next_read: u64,
    /// Requests below this were dispatched by the reader: their answer (or
    /// its absence) is final once their responder is gone.
    released: u64,
    /// Sequence number of the next reply to write.
    next_write: u64,
    /// Encoded replies (`None`: nothing to write) waiting for their turn.
    queued: BTreeMap<u64, Option<Vec<u8>>>,
    queued_bytes: usize,
    /// Responders alive.
    pending: usize,
    /// The reader stopped: no request comes after `next_read`.
    reader_done: bool,
    /// Shut down: nothing more is written.
    closed: bool,
    /// A thread is writing to the socket (the writer, or a completer's
    /// non-blocking attempt): nobody else may.
    writing: bool,
    /// Bytes of replies taken off the queue but not yet on the socket (a
    /// non-blocking attempt that found it full): written before any other.
    carry: Vec<u8>,
}

/// One connection's outgoing side.
pub(crate) struct Conn {
    id: u64,
    out: Mutex<Outbox>,
    /// A reply was queued, a request released, or the connection ended.
    queued: Condvar,
    /// A responder went away: the reader may read on.
    answered: Condvar,
    /// For shutting the connection down from any thread.
    stream: UnixStream,
    peer_pid: Option<u32>,
    bounds: QueueBounds,
}

impl Conn {
    /// A connection over `stream` (a handle of its own is kept for
    /// shutdown); its writer is started with [`Conn::spawn_writer`].
    pub(crate) fn new(
        id: u64,
        stream: &UnixStream,
        peer_pid: Option<u32>,
        bounds: QueueBounds,
    ) -> io::Result<Arc<Conn>> {
        Ok(Arc::new(Conn {
            id,
            out: Mutex::new(Outbox::default()),
            queued: Condvar::new(),
            answered: Condvar::new(),
            stream: stream.try_clone()?,
            peer_pid,
            bounds,
        }))
    }

    fn out(&self) -> MutexGuard<'_, Outbox> {
        self.out.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the writer thread on `stream`; join it after [`Conn::reader_done`].
    pub(crate) fn spawn_writer(
        self: &Arc<Conn>,
        stream: UnixStream,
    ) -> io::Result<std::thread::JoinHandle<()>> {
        let conn = Arc::clone(self);
        std::thread::Builder::new()
            .name(format!("conn-{}-writer", self.id))
            .spawn(move || {
                if let Err(e) = conn.write_all_replies(stream) {
                    let quiet = matches!(
                        e.kind(),
                        io::ErrorKind::BrokenPipe
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::NotConnected
                    );
                    conn.close(&format!("cannot write a reply: {e}"), quiet);
                }
            })
    }

    /// A responder for the next request read, with its sequence number.
    pub(crate) fn responder(self: &Arc<Conn>, correlation_id: u64) -> Responder {
        let mut out = self.out();
        let seq = out.next_read;
        out.next_read += 1;
        out.pending += 1;
        drop(out);
        Responder {
            correlation_id,
            received: Instant::now(),
            peer_pid: self.peer_pid,
            route: Route::Conn {
                conn: Arc::clone(self),
                seq,
                frame: None,
            },
        }
    }

    /// The reader is done with request `seq`: `reply` is its answer if the
    /// handler gave one at once.
    pub(crate) fn dispatched(&self, seq: u64, correlation_id: u64, reply: Option<Reply>) {
        let frame = reply.and_then(|reply| self.encode(correlation_id, reply));
        let mut out = self.out();
        if let Some(frame) = frame {
            if !self.queue(&mut out, seq, frame) {
                return;
            }
        }
        out.released = out.released.max(seq + 1);
        self.write_due_now(out);
    }

    /// Waits until fewer than `max` requests of this connection wait for an
    /// answer; false if the connection was shut down meanwhile.
    pub(crate) fn wait_below(&self, max: usize) -> bool {
        let mut out = self.out();
        while out.pending >= max && !out.closed {
            out = self.answered.wait(out).unwrap_or_else(|p| p.into_inner());
        }
        !out.closed
    }

    /// The reader stopped; the writer ends once every responder is gone and
    /// everything queued is written.
    pub(crate) fn reader_done(&self) {
        self.out().reader_done = true;
        self.queued.notify_one();
    }

    /// Shuts the connection down both ways and drops every queued reply;
    /// logs `why` once (at debug level if `quiet`).
    pub(crate) fn close(&self, why: &str, quiet: bool) {
        let mut out = self.out();
        self.close_locked(&mut out, why, quiet);
    }

    fn close_locked(&self, out: &mut Outbox, why: &str, quiet: bool) {
        if out.closed {
            return;
        }
        out.closed = true;
        out.queued.clear();
        out.carry = Vec::new();
        out.queued_bytes = 0;
        if quiet {
            tracing::debug!(conn = self.id, peer_pid = ?self.peer_pid, reason = why, "closing connection");
        } else {
            tracing::warn!(conn = self.id, peer_pid = ?self.peer_pid, reason = why, "closing connection");
        }
        // Wakes the reader (its read returns) and the writer (its write fails).
        let _ = self.stream.shutdown(Shutdown::Both);
        self.queued.notify_all();
        self.answered.notify_all();
    }

    /// Whether the connection was shut down.
    pub(crate) fn is_closed(&self) -> bool {
        self.out().closed
    }

    fn encode(&self, correlation_id: u64, reply: Reply) -> Option<Vec<u8>> {
        match frame::encode(&Response {
            correlation_id,
            reply,
        }) {
            Ok(frame) => Some(frame),
            Err(e) => {
                // The client would wait for this answer forever.
                self.close(&format!("cannot encode a reply: {e}"), false);
                None
            }
        }
    }

    /// Queues `frame` (or the absence of a reply) for `seq`; false if that
    /// closed the connection (the queue is full).
    fn queue(&self, out: &mut Outbox, seq: u64, frame: Vec<u8>) -> bool {
        if out.closed || seq < out.next_write {
            return !out.closed;
        }
        let over_count = out.queued.len() >= self.bounds.replies;
        let over_bytes =
            !out.queued.is_empty() && out.queued_bytes + frame.len() > self.bounds.bytes;
        if over_count || over_bytes {
            let why = format!(
                "reply queue full ({} replies, {} bytes): the client does not read",
                out.queued.len(),
                out.queued_bytes
            );
            self.close_locked(out, &why, false);
            return false;
        }
        out.queued_bytes += frame.len();
        if let Some(Some(old)) = out.queued.insert(seq, Some(frame)) {
            out.queued_bytes -= old.len();
        }
        true
    }

    /// A responder for `seq` went away, having sent `frame` or nothing.
    fn responder_gone(&self, seq: u64, frame: Option<Vec<u8>>) {
        let mut out = self.out();
        out.pending = out.pending.saturating_sub(1);
        match frame {
            Some(frame) => {
                self.queue(&mut out, seq, frame);
            }
            None if seq >= out.next_write && !out.closed => {
                out.queued.entry(seq).or_insert(None);
            }
            None => {}
        }
        self.write_due_now(out);
        self.answered.notify_one();
    }

    /// Takes the replies due next, in order, off the queue (none while
    /// another thread writes, or bytes of an earlier attempt wait).
    fn take_due(out: &mut Outbox) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        while out.next_write < out.released {
            let seq = out.next_write;
            // A reply is final once its responder is gone (it is in the
            // map only then, or when the reader answered at once).
            let Some(entry) = out.queued.remove(&seq) else {
                break;
            };
            out.next_write += 1;
            if let Some(frame) = entry {
                out.queued_bytes -= frame.len();
                frames.push(frame);
            }
        }
        frames
    }

    /// The fast path of a completed reply: when nobody is writing and
    /// replies are due, puts them on the socket from this thread without
    /// blocking (`MSG_DONTWAIT`); what the socket does not take at once is
    /// left to the writer thread, ahead of everything else. Saves the
    /// writer thread's wake-up on every reply of an idle connection.
    fn write_due_now<'a>(&'a self, mut out: MutexGuard<'a, Outbox>) {
        // Whoever is writing takes what is due when done: no wake-up here.
        while !out.closed && !out.writing && out.carry.is_empty() {
            let frames = Self::take_due(&mut out);
            if frames.is_empty() {
                break;
            }
            out.writing = true;
            drop(out);
            let bytes = if frames.len() == 1 {
                frames.into_iter().next().unwrap_or_default()
            } else {
                frames.concat()
            };
            let result = self.send_without_blocking(&bytes);
            out = self.out();
            out.writing = false;
            match result {
                Ok(sent) if sent < bytes.len() && !out.closed => {
                    out.carry = bytes[sent..].to_vec();
                }
                Ok(_) => {}
                Err(e) => {
                    let quiet =
                        matches!(e, nix::errno::Errno::EPIPE | nix::errno::Errno::ECONNRESET);
                    self.close_locked(&mut out, &format!("cannot write a reply: {e}"), quiet);
                }
            }
        }
        // The writer thread is woken only when it has something to do: a
        // carry to finish, or its end (every reply is out).
        let wake = out.closed
            || (!out.writing && !out.carry.is_empty())
            || (out.reader_done && out.pending == 0 && out.next_write >= out.released);
        drop(out);
        if wake {
            self.queued.notify_one();
        }
    }

    /// Writes as much of `bytes` as the socket takes without waiting.
    fn send_without_blocking(&self, bytes: &[u8]) -> Result<usize, nix::errno::Errno> {
        use nix::sys::socket::{send, MsgFlags};
        use std::os::fd::AsRawFd;
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
        let mut sent = 0;
        while sent < bytes.len() {
            match send(self.stream.as_raw_fd(), &bytes[sent..], flags) {
                Ok(n) => sent += n,
                Err(nix::errno::Errno::EINTR) => {}
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(sent)
    }

    /// Waits for the replies due next, in order (bytes a non-blocking
    /// attempt left first), and marks the socket as being written; `None`
    /// once nothing more will come (or the connection was shut down).
    fn next_frames(&self) -> Option<Vec<Vec<u8>>> {
        let mut out = self.out();
        loop {
            if out.closed {
                return None;
            }
            if !out.writing {
                let mut frames = Vec::new();
                if !out.carry.is_empty() {
                    frames.push(std::mem::take(&mut out.carry));
                }
                frames.extend(Self::take_due(&mut out));
                if !frames.is_empty() {
                    out.writing = true;
                    return Some(frames);
                }
                if out.reader_done && out.pending == 0 && out.next_write >= out.released {
                    return None;
                }
            }
            out = self.queued.wait(out).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The writer is done with the socket for now.
    fn written(&self) {
        self.out().writing = false;
    }

    /// The writer thread: writes replies as they come due, flushing once
    /// per run of replies ready together.
    fn write_all_replies(&self, stream: UnixStream) -> io::Result<()> {
        let mut w = BufWriter::with_capacity(CONNECTION_BUFFER_BYTES, stream);
        while let Some(frames) = self.next_frames() {
            for f in &frames {
                w.write_all(f)?;
            }
            w.flush()?;
            self.written();
        }
        Ok(())
    }
}

/// Where the answer to one request goes. Dropping it without sending
/// writes nothing for the request, and lets the replies after it go.
pub struct Responder {
    correlation_id: u64,
    received: Instant,
    peer_pid: Option<u32>,
    route: Route,
}

/// Called once with an in-process request's answer (`None`: none came).
type Deliver = Box<dyn FnOnce(Option<Reply>) + Send>;

/// Where a responder's answer goes.
enum Route {
    /// A connection's writer; the encoded answer is queued when the
    /// responder goes away.
    Conn {
        conn: Arc<Conn>,
        seq: u64,
        frame: Option<Vec<u8>>,
    },
    /// An in-process caller (the Kafka front door): the reply as it is,
    /// delivered when the responder goes away.
    Local {
        reply: Option<Reply>,
        deliver: Option<Deliver>,
    },
}

impl Responder {
    /// A responder for a request made in-process rather than read off a
    /// socket: `deliver` gets the answer, unencoded, once, when the
    /// responder goes away (`None`: dropped without one). It runs on the
    /// answering thread (the caller's, the flusher, the fetch waker), so it
    /// must not block. No peer pid: such a request is never a cluster
    /// process's.
    pub fn local(
        correlation_id: u64,
        deliver: impl FnOnce(Option<Reply>) + Send + 'static,
    ) -> Responder {
        Responder {
            correlation_id,
            received: Instant::now(),
            peer_pid: None,
            route: Route::Local {
                reply: None,
                deliver: Some(Box::new(deliver)),
            },
        }
    }

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

    /// Hands the answer to the connection's writer; never blocks on the
    /// socket. It goes out after the answers to earlier requests.
    pub fn send(mut self, reply: Reply) {
        match &mut self.route {
            Route::Conn { conn, frame, .. } => *frame = conn.encode(self.correlation_id, reply),
            Route::Local { reply: slot, .. } => *slot = Some(reply),
        }
    }

    /// Its place in the connection's reply order (0 for a local one).
    pub(crate) fn seq(&self) -> u64 {
        match &self.route {
            Route::Conn { seq, .. } => *seq,
            Route::Local { .. } => 0,
        }
    }

    /// The correlation id of the request this answers.
    #[cfg(test)]
    pub(crate) fn correlation_id(&self) -> u64 {
        self.correlation_id
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        match &mut self.route {
            Route::Conn { conn, seq, frame } => conn.responder_gone(*seq, frame.take()),
            Route::Local { reply, deliver } => {
                if let Some(deliver) = deliver.take() {
                    deliver(reply.take());
                }
            }
        }
    }
}

#[cfg(test)]
impl Responder {
    /// A responder writing to one end of a socket pair; the other end is returned.
    pub(crate) fn for_test(correlation_id: u64) -> (Responder, UnixStream) {
        let (a, b) = UnixStream::pair().expect("test: socket pair");
        a.set_write_timeout(Some(std::time::Duration::from_millis(
            SERVER_WRITE_TIMEOUT_MS,
        )))
        .expect("test: write timeout");
        // The other end of a socket pair is this very process.
        let conn =
            Conn::new(0, &a, Some(std::process::id()), QueueBounds::LIMITS).expect("test: conn");
        let responder = conn.responder(correlation_id);
        conn.dispatched(responder.seq(), correlation_id, None);
        conn.reader_done();
        let _ = conn.spawn_writer(a).expect("test: writer");
        (responder, b)
    }
}
