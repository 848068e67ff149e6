//! One client connection: framed, pipelined requests matched to responses
//! by correlation id.

use crate::frame;
use crate::limits::{CLIENT_CONNECTION_BUFFER_BYTES, CLIENT_REQUEST_TIMEOUT_MS, FRAME_BYTES_MAX};
use crate::ClientError;
use crate::{Call, Reply, Response};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde::Serialize;
use std::collections::VecDeque;
use std::io::{BufReader, BufWriter, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Serialize)]
struct RequestRef<'a> {
    correlation_id: u64,
    call: &'a Call,
}

/// A connection to ZooKeeper or a broker.
pub struct Connection {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: BufWriter<UnixStream>,
    next_id: u64,
    /// Responses [`Connection::call`] read while waiting for its own (a
    /// request sent earlier is answered first: servers answer in request
    /// order); [`Connection::recv`] returns them before reading more.
    held: VecDeque<Response>,
}

impl Connection {
    /// Connects to the socket at `path`.
    pub fn connect(path: &Path) -> Result<Connection, ClientError> {
        let timeout = Duration::from_millis(CLIENT_REQUEST_TIMEOUT_MS);
        let stream =
            crate::transport::connect(path, timeout).map_err(|source| ClientError::Connect {
                path: path.to_path_buf(),
                source,
            })?;
        let read_half = stream.try_clone().map_err(|e| ClientError::io(path, e))?;
        Ok(Connection {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(CLIENT_CONNECTION_BUFFER_BYTES, read_half),
            writer: BufWriter::with_capacity(CLIENT_CONNECTION_BUFFER_BYTES, stream),
            next_id: 1,
            held: VecDeque::new(),
        })
    }

    /// The socket this connection talks to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sets how long a read may block (e.g. a long-polling fetch).
    pub fn set_read_timeout(&self, timeout: Duration) -> Result<(), ClientError> {
        self.reader
            .get_ref()
            .set_read_timeout(Some(timeout))
            .map_err(|e| ClientError::io(&self.path, e))
    }

    /// Queues a request without flushing; returns its correlation id.
    pub fn send(&mut self, call: &Call) -> Result<u64, ClientError> {
        let correlation_id = self.next_id;
        self.next_id += 1;
        frame::write(
            &mut self.writer,
            &RequestRef {
                correlation_id,
                call,
            },
        )
        .map_err(|e| ClientError::frame(&self.path, e))?;
        Ok(correlation_id)
    }

    /// The socket, for waiting on several connections at once.
    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.reader.get_ref().as_fd()
    }

    /// True when a response is already buffered.
    pub fn has_buffered(&self) -> bool {
        !self.held.is_empty() || !self.reader.buffer().is_empty()
    }

    /// Sends queued requests.
    pub fn flush(&mut self) -> Result<(), ClientError> {
        self.writer
            .flush()
            .map_err(|e| ClientError::io(&self.path, e))
    }

    /// Whether a response (or end of stream) can be read without waiting:
    /// buffered bytes, or a readable socket.
    pub fn response_ready(&self) -> bool {
        if self.has_buffered() {
            return true;
        }
        let mut fds = [PollFd::new(
            self.reader.get_ref().as_fd(),
            PollFlags::POLLIN,
        )];
        matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
    }

    /// Reads the next response.
    pub fn recv(&mut self) -> Result<Response, ClientError> {
        if let Some(held) = self.held.pop_front() {
            return Ok(held);
        }
        frame::read(&mut self.reader, FRAME_BYTES_MAX)
            .map_err(|e| ClientError::frame(&self.path, e))
    }

    /// Sends one request and waits for its reply; a server error becomes `Err`.
    pub fn call(&mut self, call: &Call) -> Result<Reply, ClientError> {
        let id = self.send(call)?;
        self.flush()?;
        loop {
            let response: Response = frame::read(&mut self.reader, FRAME_BYTES_MAX)
                .map_err(|e| ClientError::frame(&self.path, e))?;
            if response.correlation_id != id {
                // The answer to an earlier request (a long-polling fetch):
                // kept for whoever waits for it.
                self.held.push_back(response);
                continue;
            }
            return match response.reply {
                Reply::Error(e) => Err(ClientError::Server(e)),
                reply => Ok(reply),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Request;
    use std::os::unix::net::UnixListener;

    #[test]
    fn given_earlier_request_answered_first_when_calling_should_keep_its_answer_for_recv() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("server.sock");
        let listener = UnixListener::bind(&path).expect("bind");
        // A server answering in request order, as YaK's servers do.
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            let mut reader = BufReader::new(s.try_clone().expect("clone"));
            for _ in 0..2 {
                let r: Request = frame::read(&mut reader, FRAME_BYTES_MAX).expect("request");
                let response = Response {
                    correlation_id: r.correlation_id,
                    reply: Reply::Offset {
                        offset: r.correlation_id,
                    },
                };
                frame::write(&mut s, &response).expect("answer");
            }
        });
        let mut c = Connection::connect(&path).expect("connect");
        let fetch = c.send(&Call::ListGroups).expect("send");
        let asked = c.call(&Call::BrokerStats).expect("call");
        assert!(matches!(asked, Reply::Offset { offset } if offset == fetch + 1));
        assert!(c.has_buffered(), "the earlier answer is kept");
        let earlier = c.recv().expect("recv");
        assert_eq!(earlier.correlation_id, fetch);
        server.join().expect("server");
    }
}
