//! Frames: a u32 big-endian length, then a MessagePack body. The length is
//! checked against the limit before anything is allocated, and the body's
//! buffer grows as its bytes arrive: a peer that declares 16 MiB and sends
//! one byte holds about one byte of memory, not 16 MiB.

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
        return Err(FrameError::TooLarge {
            len,
            max: max_bytes,
        });
    }
    let mut body = Vec::new();
    read_growing(r, len, &mut body)?;
    Ok(body)
}

/// Reads exactly `len` bytes into `body`, which grows with what arrives (at
/// most doubling), never from the declared length. On an error `body` holds
/// what arrived.
fn read_growing<R: Read>(r: &mut R, len: usize, body: &mut Vec<u8>) -> io::Result<()> {
    body.reserve(len.min(FRAME_FIRST_READ_BYTES));
    r.take(len as u64).read_to_end(body)?;
    if body.len() < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("frame ends after {} of {len} bytes", body.len()),
        ));
    }
    Ok(())
}

/// Buffer allocated before a frame's first body bytes arrive.
const FRAME_FIRST_READ_BYTES: usize = crate::limits::FRAME_FIRST_READ_BYTES;

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
        assert!(matches!(
            err,
            FrameError::TooLarge {
                len: 0xffff_ffff,
                max: 1024
            }
        ));
    }

    #[test]
    fn given_garbage_body_when_decoding_should_report_malformed() {
        let body = [0xc1u8, 0x00, 0x13];
        let r: Result<crate::Request, _> = decode(&body);
        assert!(matches!(r, Err(FrameError::Malformed(_))));
    }

    /// A reader that hands out what it holds, then fails as a socket whose
    /// read timeout passed would.
    struct Stalls(Vec<u8>);

    impl Read for Stalls {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0.drain(..n);
            Ok(n)
        }
    }

    #[test]
    fn given_large_declared_length_and_few_bytes_when_reading_should_hold_memory_for_what_arrived_only(
    ) {
        let declared = 16 * 1024 * 1024u32;
        let mut bytes = declared.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[7u8; 100]);
        let mut r = Stalls(bytes[4..].to_vec());
        let mut body = Vec::new();
        let err = read_growing(&mut r, declared as usize, &mut body).expect_err("the peer stalls");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(body.len(), 100);
        assert!(
            body.capacity() <= 2 * FRAME_FIRST_READ_BYTES,
            "capacity {} follows the bytes received",
            body.capacity()
        );
        let mut whole = declared.to_be_bytes().to_vec();
        whole.extend_from_slice(&[7u8; 100]);
        let err = read_body(&mut Stalls(whole), declared as usize).expect_err("stalled frame");
        assert!(
            matches!(err, FrameError::Io(ref e) if e.kind() == io::ErrorKind::WouldBlock),
            "{err}"
        );
    }

    #[test]
    fn given_frame_cut_short_when_reading_should_report_unexpected_eof() {
        let mut bytes: &[u8] = &[0, 0, 0, 10, 1, 2, 3];
        let err = read_body(&mut bytes, 1024).expect_err("short");
        assert!(
            matches!(err, FrameError::Io(ref e) if e.kind() == io::ErrorKind::UnexpectedEof),
            "{err}"
        );
        let mut ok: &[u8] = &[0, 0, 0, 3, 1, 2, 3];
        assert_eq!(read_body(&mut ok, 1024).expect("whole"), vec![1, 2, 3]);
    }

    #[test]
    fn given_empty_stream_when_reading_should_report_closed() {
        let mut bytes: &[u8] = &[];
        assert!(matches!(read_body(&mut bytes, 10), Err(FrameError::Closed)));
    }
}
