//! The Kafka front door's links into YaK: [`Zk`], one shared connection to
//! ZooKeeper (metadata and admin calls), and [`BrokerLink`], one pipelined
//! connection per Kafka connection to this broker's own request server
//! (produce, fetch, list offsets). Never interprets what they answer.

use crate::limits::{CLIENT_REQUEST_TIMEOUT_MS, FRAME_BYTES_MAX, KAFKA_FETCH_WAIT_MS_MAX};
use crate::protocol::connection::Connection;
use crate::protocol::frame::{self, FrameError};
use crate::protocol::{Call, ClientError, ClusterMetadata, Reply, Request, Response};
use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// One connection to ZooKeeper shared by every Kafka connection of a
/// broker, reconnected on the next call after a failure.
pub(super) struct Zk {
    socket: PathBuf,
    conn: Mutex<Option<Connection>>,
}

impl Zk {
    pub fn new(socket: PathBuf) -> Zk {
        Zk {
            socket,
            conn: Mutex::new(None),
        }
    }

    /// Sends one call; after a broken connection, connects again once.
    pub fn call(&self, call: &Call) -> Result<Reply, ClientError> {
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut last = None;
        for _ in 0..2 {
            let conn = match guard.as_mut() {
                Some(c) => c,
                None => match Connection::connect(&self.socket) {
                    Ok(c) => guard.insert(c),
                    Err(e) => return Err(e),
                },
            };
            match conn.call(call) {
                Ok(reply) => return Ok(reply),
                // ZooKeeper answered: the connection is fine, and the call
                // must not be sent twice.
                Err(e @ ClientError::Server(_)) => return Err(e),
                Err(e) => {
                    *guard = None;
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Unexpected("no attempt made".into())))
    }

    /// Metadata of `topics` (every topic when `None`), all pages joined.
    pub fn metadata(&self, topics: Option<Vec<String>>) -> Result<ClusterMetadata, ClientError> {
        crate::protocol::metadata_pages::read_metadata(topics, |call| self.call(call))
    }
}

/// The sending half of a Kafka connection's link to its broker.
pub(super) struct BrokerLink {
    writer: BufWriter<UnixStream>,
    next_id: u64,
}

/// The receiving half: answers matched to their calls by correlation id.
pub(super) struct BrokerReplies {
    reader: BufReader<UnixStream>,
    /// Answers read while waiting for another.
    early: HashMap<u64, Reply>,
}

/// Connects to the broker's own socket; returns both halves.
pub(super) fn connect(socket: &Path) -> std::io::Result<(BrokerLink, BrokerReplies)> {
    let stream =
        crate::transport::connect(socket, Duration::from_millis(CLIENT_REQUEST_TIMEOUT_MS))?;
    // A produce waits for replication at most its ack timeout and a fetch
    // its wait: anything silent far longer is a broken broker.
    stream.set_read_timeout(Some(Duration::from_millis(
        2 * CLIENT_REQUEST_TIMEOUT_MS + KAFKA_FETCH_WAIT_MS_MAX,
    )))?;
    let read_half = stream.try_clone()?;
    Ok((
        BrokerLink {
            writer: BufWriter::with_capacity(256 * 1024, stream),
            next_id: 1,
        },
        BrokerReplies {
            reader: BufReader::with_capacity(256 * 1024, read_half),
            early: HashMap::new(),
        },
    ))
}

impl BrokerLink {
    /// Queues one call (sent at the next [`BrokerLink::flush`]); returns its id.
    pub fn send(&mut self, call: Call) -> Result<u64, FrameError> {
        let correlation_id = self.next_id;
        self.next_id += 1;
        frame::write(
            &mut self.writer,
            &Request {
                correlation_id,
                call,
            },
        )?;
        Ok(correlation_id)
    }

    /// Sends every queued call.
    pub fn flush(&mut self) -> Result<(), FrameError> {
        Ok(self.writer.flush()?)
    }
}

impl BrokerReplies {
    /// The answers to `ids`, in that order, reading as many as it takes.
    pub fn collect(&mut self, ids: &[u64]) -> Result<Vec<Reply>, FrameError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            loop {
                if let Some(reply) = self.early.remove(id) {
                    out.push(reply);
                    break;
                }
                let r: Response = frame::read(&mut self.reader, FRAME_BYTES_MAX)?;
                self.early.insert(r.correlation_id, r.reply);
            }
        }
        Ok(out)
    }
}
