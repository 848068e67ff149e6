//! Kafka framing: a request is an i32 big-endian size, then a header (API
//! key, version, correlation id, client id, tagged fields from header v2)
//! and a body. The size is checked against [`KAFKA_FRAME_BYTES_MAX`] before
//! anything is allocated, and the buffer grows with the bytes received. A
//! frame must arrive whole within [`FRAME_READ_TIMEOUT_MS`] of its first
//! byte; a connection idle for [`CONNECTION_IDLE_MS_MAX`] is closed.
//! Responses: size, header (v0 or v1 as the API's version says), body.
//! Never decides what a request means.

use crate::limits::{CONNECTION_IDLE_MS_MAX, FRAME_READ_TIMEOUT_MS, KAFKA_FRAME_BYTES_MAX};
use crate::protocol::frame::{read_body, FrameError};
use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};
use std::io::{self, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Why a connection is closed.
#[derive(Debug, thiserror::Error)]
pub enum KafkaFrameError {
    /// Reading or writing a frame failed (or the frame was too large).
    #[error("{0}")]
    Frame(#[from] FrameError),
    /// A request that does not parse as its header and version say.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// The request or header it was.
        what: String,
        /// What the decoder said.
        reason: String,
    },
    /// A response this listener built could not be encoded (a bug).
    #[error("cannot encode a {what} response: {reason}")]
    Encode {
        /// The API.
        what: &'static str,
        /// What the encoder said.
        reason: String,
    },
    /// The broker's own request server went away.
    #[error("link to the broker failed: {0}")]
    Broker(String),
}

/// A socket read with a deadline: the idle timeout between frames, the
/// frame deadline once a frame has started.
pub struct TimedReader {
    stream: TcpStream,
    deadline: Option<Instant>,
}

impl TimedReader {
    pub fn new(stream: TcpStream) -> TimedReader {
        TimedReader {
            stream,
            deadline: None,
        }
    }

    /// Reads one request frame's body (size prefix removed).
    pub fn read_frame(&mut self) -> Result<Vec<u8>, FrameError> {
        self.deadline = None;
        read_body(self, KAFKA_FRAME_BYTES_MAX)
    }
}

impl Read for TimedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let timeout = match self.deadline {
            None => Duration::from_millis(CONNECTION_IDLE_MS_MAX),
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("request frame not complete within {FRAME_READ_TIMEOUT_MS} ms"),
                    ));
                }
                left
            }
        };
        self.stream.set_read_timeout(Some(timeout))?;
        let n = self.stream.read(buf)?;
        if n > 0 && self.deadline.is_none() {
            self.deadline = Some(Instant::now() + Duration::from_millis(FRAME_READ_TIMEOUT_MS));
        }
        Ok(n)
    }
}

/// A request's header, parsed; the body is left in `body`.
pub struct Parsed {
    pub header: RequestHeader,
    /// The API, if this crate knows the key.
    pub api: Option<ApiKey>,
    pub body: Bytes,
}

/// Parses a frame's header. An API key the codec does not know is parsed
/// with header v1 (key, version, correlation id, client id), which every
/// non-flexible request shares, so it can still be answered.
pub fn parse_header(frame: Vec<u8>) -> Result<Parsed, KafkaFrameError> {
    let mut body = Bytes::from(frame);
    if body.len() < 8 {
        return Err(KafkaFrameError::Malformed {
            what: "request header".into(),
            reason: format!("{} bytes", body.len()),
        });
    }
    let key = i16::from_be_bytes([body[0], body[1]]);
    let version = i16::from_be_bytes([body[2], body[3]]);
    let api = ApiKey::try_from(key).ok();
    let header_version = match api {
        Some(api) if in_range(api.valid_versions(), version) => api.request_header_version(version),
        _ => 1,
    };
    let header = RequestHeader::decode(&mut body, header_version).map_err(|e| {
        KafkaFrameError::Malformed {
            what: format!("request header (api {key} v{version})"),
            reason: e.to_string(),
        }
    })?;
    Ok(Parsed { header, api, body })
}

/// Decodes a request body of type `R` at `version`.
pub fn decode<R: Decodable>(
    mut body: Bytes,
    version: i16,
    what: &str,
) -> Result<R, KafkaFrameError> {
    let r = R::decode(&mut body, version).map_err(|e| KafkaFrameError::Malformed {
        what: format!("{what} v{version}"),
        reason: e.to_string(),
    })?;
    // Bytes after the body are ignored, as Kafka's brokers do: librdkafka
    // 2.12 sends one after a Metadata v9 request for every topic.
    if body.has_remaining() {
        tracing::debug!(
            what,
            version,
            extra = body.remaining(),
            "bytes after a kafka request body"
        );
    }
    Ok(r)
}

/// Encodes a whole response frame: size, header (the version the API's
/// `version` calls for), body.
pub fn response<R: Encodable + HeaderVersion>(
    correlation_id: i32,
    version: i16,
    body: &R,
    what: &'static str,
) -> Result<Vec<u8>, KafkaFrameError> {
    let mut buf: Vec<u8> = vec![0; 4];
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header
        .encode(&mut buf, R::header_version(version))
        .map_err(|e| KafkaFrameError::Encode {
            what,
            reason: e.to_string(),
        })?;
    body.encode(&mut buf, version)
        .map_err(|e| KafkaFrameError::Encode {
            what,
            reason: e.to_string(),
        })?;
    let size = i32::try_from(buf.len() - 4).map_err(|_| KafkaFrameError::Encode {
        what,
        reason: format!("{} bytes", buf.len()),
    })?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf)
}

/// The answer to a request this listener does not serve (an unknown API
/// key, or a version outside what it serves): a v0 header and the error
/// code `UNSUPPORTED_VERSION`, which is how every Kafka response body
/// that has a top-level error starts.
pub fn unsupported(correlation_id: i32) -> Vec<u8> {
    let mut buf = Vec::with_capacity(10);
    buf.extend_from_slice(&6i32.to_be_bytes());
    buf.extend_from_slice(&correlation_id.to_be_bytes());
    buf.extend_from_slice(&super::errors::UNSUPPORTED_VERSION.to_be_bytes());
    buf
}

/// Whether `version` is in `range` (both ends included).
pub fn in_range(range: kafka_protocol::protocol::VersionRange, version: i16) -> bool {
    range.min <= version && version <= range.max
}
