//! Frames: a u32 big-endian length, then a MessagePack body. The length is
//! checked against the limit before anything is allocated.

use serde::{de::DeserializeOwned, Serialize};
use std::io::{self, Read, Write};
use thiserror::Error;

/// Why a frame could not be read or decoded.
#[derive(Debug, Error)]
pub enum FrameError {
    /// The peer closed the connection between frames.
    #[error("connection closed")]
    Closed,
    /// The length prefix is over the limit; nothing was allocated.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Declared length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// The body is not a valid message.
    #[error("malformed frame: {0}")]
    Malformed(#[from] rmp_serde::decode::Error),
    /// The message could not be encoded.
    #[error("cannot encode frame: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
}

/// Encodes `msg` as one frame (length prefix included) in a single buffer.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(&[0u8; 4]);
    rmp_serde::encode::write_named(&mut buf, msg)?;
    let len = (buf.len() - 4) as u32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf)
}

/// Writes `msg` as one frame.
pub fn write<W: Write, T: Serialize>(w: &mut W, msg: &T) -> Result<(), FrameError> {
    let buf = encode(msg)?;
    w.write_all(&buf)?;
    Ok(())
}

/// Reads one frame body, refusing a declared length above `max_bytes`.
pub fn read_body<R: Read>(r: &mut R, max_bytes: usize) -> Result<Vec<u8>, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max_bytes {
        return Err(FrameError::TooLarge { len, max: max_bytes });
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(body)
}

/// Decodes a frame body.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    Ok(rmp_serde::from_slice(body)?)
}

/// Reads and decodes one frame.
pub fn read<R: Read, T: DeserializeOwned>(r: &mut R, max_bytes: usize) -> Result<T, FrameError> {
    decode(&read_body(r, max_bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_oversized_length_when_reading_should_refuse_before_allocating() {
        let mut bytes: &[u8] = &[0xff, 0xff, 0xff, 0xff, 1, 2, 3];
        let err = read_body(&mut bytes, 1024).expect_err("too large");
        assert!(matches!(err, FrameError::TooLarge { len: 0xffff_ffff, max: 1024 }));
    }

    #[test]
    fn given_garbage_body_when_decoding_should_report_malformed() {
        let body = [0xc1u8, 0x00, 0x13];
        let r: Result<crate::protocol::Request, _> = decode(&body);
        assert!(matches!(r, Err(FrameError::Malformed(_))));
    }

    #[test]
    fn given_empty_stream_when_reading_should_report_closed() {
        let mut bytes: &[u8] = &[];
        assert!(matches!(read_body(&mut bytes, 10), Err(FrameError::Closed)));
    }
}
