//! The request loop shared by ZooKeeper and brokers: accept connections,
//! read frames on one thread each, hand each request to a [`Handler`]. The
//! answers leave through the connection's writer ([`reply`]): in request
//! order, never written by the thread that completed the request. A bad
//! frame closes that connection only, with a logged reason.
//!
//! A handler may answer at once or keep the [`Responder`] and answer later
//! from another thread (a produce waiting for replication, a fetch parked
//! until data arrives), so a slow request never holds up the reading of the
//! requests pipelined behind it; their answers wait for its own.
//!
//! No connection can starve the server: one idle for
//! [`CONNECTION_IDLE_MS_MAX`] is closed, a frame must arrive whole within
//! [`FRAME_READ_TIMEOUT_MS`] of its first byte, its buffer grows with the
//! bytes received, a connection holds at most one frame being read,
//! [`CONNECTION_REQUESTS_PENDING_MAX`] deferred answers and a bounded reply
//! queue (a client that does not read is disconnected), and the last
//! [`CONNECTIONS_RESERVED`] slots are kept for the cluster's own processes
//! (told by the peer's pid, `SO_PEERCRED`).

mod reply;

pub use reply::Responder;
use reply::{Conn, QueueBounds};

use crate::limits::{
    CONNECTIONS_RESERVED, CONNECTION_BUFFER_BYTES, CONNECTION_IDLE_MS_MAX,
    CONNECTION_REQUESTS_PENDING_MAX, FRAME_BYTES_MAX, FRAME_READ_TIMEOUT_MS,
    SERVER_WRITE_TIMEOUT_MS,
};
use crate::protocol::frame::{self, FrameError};
use crate::protocol::{Call, Reply, Request};
use crate::transport::{self, Listener};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
                    match serve_connection(stream, &*handler, conn_id) {
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

/// How one connection is served: its timeouts and reply queue bounds.
#[derive(Debug, Clone, Copy)]
struct ConnSettings {
    id: u64,
    idle: Duration,
    frame_timeout: Duration,
    write_timeout: Duration,
    bounds: QueueBounds,
}

fn serve_connection<H: Handler>(
    stream: UnixStream,
    handler: &H,
    id: u64,
) -> Result<(), FrameError> {
    serve_stream(
        stream,
        handler,
        ConnSettings {
            id,
            idle: Duration::from_millis(CONNECTION_IDLE_MS_MAX),
            frame_timeout: Duration::from_millis(FRAME_READ_TIMEOUT_MS),
            write_timeout: Duration::from_millis(SERVER_WRITE_TIMEOUT_MS),
            bounds: QueueBounds::LIMITS,
        },
    )
}

/// Serves one connection: starts its writer, reads and dispatches requests
/// until the peer closes, goes idle or sends a bad frame, then waits for the
/// writer to finish the answers still owed.
fn serve_stream<H: Handler>(
    stream: UnixStream,
    handler: &H,
    settings: ConnSettings,
) -> Result<(), FrameError> {
    // A client that stops reading gets its connection closed instead of
    // holding its writer forever.
    stream.set_write_timeout(Some(settings.write_timeout))?;
    // Who connected, once: the kernel's record, which the peer cannot forge.
    let peer_pid = crate::protocol::peer::peer_cred(&stream)
        .ok()
        .map(|c| c.pid);
    let timed = TimedReader {
        stream: stream.try_clone()?,
        idle: settings.idle,
        deadline: None,
    };
    let mut reader = BufReader::with_capacity(CONNECTION_BUFFER_BYTES, timed);
    let conn = Conn::new(settings.id, &stream, peer_pid, settings.bounds)?;
    let writer = conn.spawn_writer(stream)?;
    let result = read_requests(&conn, &mut reader, handler, settings.frame_timeout);
    match &result {
        // A closed connection (a full reply queue) reads as end of input.
        Ok(()) => conn.reader_done(),
        Err(_) => {
            conn.reader_done();
            // The caller logs why.
            conn.close("bad input", true);
        }
    }
    if writer.join().is_err() {
        tracing::error!(conn = settings.id, "connection writer panicked");
    }
    result
}

fn read_requests<H: Handler>(
    conn: &Arc<Conn>,
    reader: &mut BufReader<TimedReader>,
    handler: &H,
    frame_timeout: Duration,
) -> Result<(), FrameError> {
    loop {
        if !conn.wait_below(CONNECTION_REQUESTS_PENDING_MAX) {
            return Ok(());
        }
        let body = match next_frame(reader, frame_timeout) {
            Ok(Some(body)) => body,
            Ok(None) => return Ok(()),
            Err(_) if conn.is_closed() => return Ok(()),
            Err(e) => return Err(e),
        };
        let request: Request = frame::decode(&body)?;
        drop(body);
        let correlation_id = request.correlation_id;
        let responder = conn.responder(correlation_id);
        let seq = responder.seq();
        let reply = match handler.handle(request.call, responder) {
            Handled::Reply(reply) => Some(reply),
            Handled::NoReply | Handled::Deferred => None,
        };
        conn.dispatched(seq, correlation_id, reply);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::sync::{mpsc, Mutex};

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
                .send(responder.correlation_id());
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
        serve_with(
            handler,
            ConnSettings {
                id: 1,
                idle: Duration::from_millis(idle_ms),
                frame_timeout: Duration::from_millis(frame_ms),
                write_timeout: Duration::from_millis(SERVER_WRITE_TIMEOUT_MS),
                bounds: QueueBounds::LIMITS,
            },
        )
    }

    fn serve_with<H: Handler>(
        handler: Arc<H>,
        settings: ConnSettings,
    ) -> (UnixStream, mpsc::Receiver<Result<(), String>>) {
        let (server, client) = UnixStream::pair().expect("socket pair");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let r = serve_stream(server, &*handler, settings);
            let _ = tx.send(r.map_err(|e| e.to_string()));
        });
        (client, rx)
    }

    /// Answers `Call::BrokerStats` at once and hands every other request's
    /// responder to the test (a deferred answer), in the order read.
    struct Relay {
        deferred: Mutex<mpsc::Sender<Responder>>,
    }

    impl Handler for Relay {
        fn handle(&self, call: Call, responder: Responder) -> Handled {
            if matches!(call, Call::BrokerStats) {
                return Handled::Reply(answer("now"));
            }
            let _ = self.deferred.lock().expect("test: lock").send(responder);
            Handled::Deferred
        }
    }

    fn relay() -> (Arc<Relay>, mpsc::Receiver<Responder>) {
        let (tx, rx) = mpsc::channel();
        (
            Arc::new(Relay {
                deferred: Mutex::new(tx),
            }),
            rx,
        )
    }

    fn answer(text: &str) -> Reply {
        Reply::Error(crate::protocol::ErrorBody::new(
            crate::protocol::ErrorCode::InvalidRequest,
            text,
        ))
    }

    fn ask(client: &mut UnixStream, correlation_id: u64, call: Call) {
        frame::write(
            client,
            &Request {
                correlation_id,
                call,
            },
        )
        .expect("test: write request");
    }

    /// The next answer on `client`: its correlation id and text.
    fn next_answer(client: &mut UnixStream) -> (u64, String) {
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("test: read timeout");
        let r: crate::protocol::Response = frame::read(client, FRAME_BYTES_MAX).expect("an answer");
        match r.reply {
            Reply::Error(e) => (r.correlation_id, e.message),
            other => panic!("unexpected reply {other:?}"),
        }
    }

    /// Whether an answer arrives on `client` within `wait`.
    fn answer_within(client: &UnixStream, wait: Duration) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds = [PollFd::new(client.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(wait).expect("test: poll timeout");
        poll(&mut fds, timeout).expect("test: poll") > 0
    }

    fn settings(replies: usize, bytes: usize, write_timeout_ms: u64) -> ConnSettings {
        ConnSettings {
            id: 1,
            idle: Duration::from_secs(60),
            frame_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_millis(write_timeout_ms),
            bounds: QueueBounds { replies, bytes },
        }
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

    #[test]
    fn given_replies_completed_out_of_order_when_writing_should_deliver_them_in_request_order() {
        let (handler, deferred) = relay();
        let (mut client, _done) = serve_with(handler, settings(64, 1 << 20, 5_000));
        // 1 and 3 wait (a produce parked for the ISR), 2 is answered at once
        // (a metadata call), 4 is never answered (dropped), 5 waits.
        ask(&mut client, 1, Call::ListGroups);
        ask(&mut client, 2, Call::BrokerStats);
        ask(&mut client, 3, Call::ListGroups);
        ask(&mut client, 4, Call::ListGroups);
        ask(&mut client, 5, Call::ListGroups);
        let mut r: Vec<Responder> = (0..4)
            .map(|_| {
                deferred
                    .recv_timeout(Duration::from_secs(5))
                    .expect("deferred")
            })
            .collect();
        let ids: Vec<u64> = r.iter().map(Responder::correlation_id).collect();
        assert_eq!(ids, [1, 3, 4, 5]);
        let five = r.pop().expect("5");
        drop(r.pop().expect("4"));
        let three = r.pop().expect("3");
        let one = r.pop().expect("1");
        five.send(answer("five"));
        three.send(answer("three"));
        assert!(
            !answer_within(&client, Duration::from_millis(200)),
            "nothing goes out before the answer to request 1"
        );
        one.send(answer("one"));
        let got: Vec<(u64, String)> = (0..4).map(|_| next_answer(&mut client)).collect();
        assert_eq!(
            got,
            [
                (1, "one".to_string()),
                (2, "now".to_string()),
                (3, "three".to_string()),
                (5, "five".to_string())
            ],
            "request order, nothing for the dropped request 4"
        );
    }

    #[test]
    fn given_reply_larger_than_the_socket_buffer_when_sent_at_once_should_finish_it_before_the_next(
    ) {
        let (handler, deferred) = relay();
        let (mut client, _done) = serve_with(handler, settings(64, 8 << 20, 5_000));
        ask(&mut client, 1, Call::ListGroups);
        ask(&mut client, 2, Call::ListGroups);
        let one = deferred.recv_timeout(Duration::from_secs(5)).expect("1");
        let two = deferred.recv_timeout(Duration::from_secs(5)).expect("2");
        // Far more than a socket buffer holds: the non-blocking attempt
        // writes a part, the writer thread the rest.
        let big = "x".repeat(4 << 20);
        one.send(answer(&big));
        two.send(answer("two"));
        let got: Vec<(u64, String)> = (0..2).map(|_| next_answer(&mut client)).collect();
        assert_eq!(got[0].0, 1);
        assert!(got[0].1 == big, "the large reply arrives whole");
        assert_eq!(got[1], (2, "two".to_string()));
    }

    #[test]
    fn given_client_that_never_reads_when_one_thread_answers_everyone_should_close_it_and_keep_the_others_flowing(
    ) {
        let (handler, deferred) = relay();
        // A long write timeout: the full queue, not the timeout, must close it.
        let conn_settings = settings(8, 1 << 20, 60_000);
        let (mut stuck, stuck_done) = serve_with(Arc::clone(&handler), conn_settings);
        let (mut healthy, _healthy_done) = serve_with(Arc::clone(&handler), conn_settings);
        // One thread answers both connections (like the flusher): 64 KiB each.
        let big = "x".repeat(64 * 1024);
        let answerer = std::thread::spawn(move || {
            while let Ok(r) = deferred.recv_timeout(Duration::from_millis(500)) {
                r.send(answer(&big));
            }
        });
        let started = Instant::now();
        let mut stuck_closed = None;
        let mut slowest = Duration::ZERO;
        for id in 0..200u64 {
            if stuck_closed.is_none() {
                // Far more than the socket buffer holds, never read.
                if frame::write(
                    &mut stuck,
                    &Request {
                        correlation_id: id,
                        call: Call::ListGroups,
                    },
                )
                .is_err()
                {
                    stuck_closed = Some(started.elapsed());
                }
                if stuck_done.try_recv().is_ok() {
                    stuck_closed = Some(started.elapsed());
                }
            }
            let asked = Instant::now();
            ask(&mut healthy, id, Call::ListGroups);
            assert_eq!(next_answer(&mut healthy).0, id);
            slowest = slowest.max(asked.elapsed());
        }
        let closed_at = stuck_closed
            .or_else(|| {
                stuck_done
                    .recv_timeout(Duration::from_secs(5))
                    .ok()
                    .map(|_| started.elapsed())
            })
            .expect("the stuck connection was closed");
        assert!(
            closed_at < Duration::from_secs(5),
            "closed after {closed_at:?}"
        );
        assert!(
            slowest < Duration::from_secs(1),
            "the healthy connection's slowest answer took {slowest:?}"
        );
        drop(handler);
        let _ = answerer.join();
    }

    #[test]
    fn given_client_that_stops_reading_and_writing_when_write_timeout_passes_should_close_it() {
        let (handler, deferred) = relay();
        let (mut client, done) = serve_with(handler, settings(64, 64 << 20, 300));
        // Enough answers to fill the socket buffer; then the client sits still.
        for id in 0..32u64 {
            ask(&mut client, id, Call::ListGroups);
        }
        let big = "x".repeat(64 * 1024);
        let started = Instant::now();
        for _ in 0..32 {
            let r = deferred
                .recv_timeout(Duration::from_secs(5))
                .expect("deferred");
            r.send(answer(&big));
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "handing answers over never blocks on the socket (each write would wait 300 ms)"
        );
        let r = done
            .recv_timeout(Duration::from_secs(3))
            .expect("closed at the write timeout");
        assert_eq!(r, Ok(()));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}
