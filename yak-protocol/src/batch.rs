//! Record batches in their on-disk form, which is also their wire form.
//!
//! A batch is built once by the producer, checked (CRC32C) by the broker,
//! stamped with its base offset and leader epoch, and appended as it is.
//! A fetch returns the stored bytes unchanged. All integers are big-endian.
//!
//! ```text
//! offset  size  field
//!      0     8  base_offset          (set by the leader)
//!      8     4  batch_length         (bytes after this field)
//!     12     4  leader_epoch         (set by the leader)
//!     16     1  magic = 2
//!     17     4  crc32c               (of every byte from offset 21 to the end)
//!     21     2  attributes
//!     23     4  last_offset_delta
//!     27     8  first_timestamp_ms
//!     35     8  max_timestamp_ms
//!     43     8  producer_id          (-1: none)
//!     51     2  producer_epoch
//!     53     4  base_sequence        (-1: none)
//!     57     4  record_count
//!     61        records
//! ```
//! A record: `u32 length` (bytes after it), `u32 offset_delta`,
//! `i64 timestamp_delta_ms`, `i32 key_length` (-1: no key), key,
//! `u32 value_length`, value, `u32 header_count` then per header
//! `u32 key_length`, key, `u32 value_length`, value.
//!
//! The fields are fixed-width, not Kafka's varints. A produced batch is
//! checked record by record before it is stored ([`check_record_count`]):
//! offset deltas are 0, 1, 2, …; only a key length may be negative (-1);
//! every length fits in what is left of its record, and each record's
//! length is exactly what its fields take. Compression (attribute bits
//! 0-2) is refused: there is no decompressor.

use thiserror::Error;

/// Bytes in a batch header.
pub const HEADER_BYTES: usize = 61;
/// Bytes before `batch_length` ends: the part of the header outside `batch_length`.
pub const LOG_OVERHEAD_BYTES: usize = 12;
/// The only batch format version.
pub const MAGIC: u8 = 2;
const CRC_START: usize = 21;
/// The attribute bits naming a compression codec (Kafka's layout).
const COMPRESSION_MASK: u16 = 0x07;

/// What is wrong with a batch.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BatchError {
    /// Fewer bytes than the header or the declared length.
    #[error("batch truncated: need {needed} bytes, have {have}")]
    Truncated {
        /// Bytes the header says the batch takes.
        needed: usize,
        /// Bytes present.
        have: usize,
    },
    /// The batch claims a size outside the allowed range.
    #[error("batch length {0} is out of range")]
    BadLength(u64),
    /// Unknown format version.
    #[error("unknown batch magic {0}")]
    BadMagic(u8),
    /// The stored checksum does not match the bytes.
    #[error("crc mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Crc {
        /// Checksum in the header.
        stored: u32,
        /// Checksum of the bytes.
        computed: u32,
    },
    /// A record inside the batch is malformed.
    #[error("corrupt record at index {index}: {fault}")]
    BadRecord {
        /// The record's index in the batch (its offset delta if well formed).
        index: u32,
        /// What is wrong with it.
        fault: RecordFault,
    },
    /// A batch must hold at least one record.
    #[error("batch holds no records")]
    NoRecords,
    /// The records end before the declared count.
    #[error("batch declares {declared} records but holds {found}")]
    MissingRecords {
        /// The header's record count.
        declared: u32,
        /// Records present.
        found: u32,
    },
    /// Bytes follow the last declared record.
    #[error("{bytes} bytes after the last of {record_count} records")]
    TrailingBytes {
        /// Bytes left over.
        bytes: usize,
        /// The header's record count.
        record_count: u32,
    },
    /// The last offset delta does not match the record count.
    #[error("last offset delta {last_offset_delta} does not match {record_count} records")]
    LastOffsetDelta {
        /// The header's last offset delta.
        last_offset_delta: u32,
        /// The header's record count.
        record_count: u32,
    },
    /// The attributes name a compression codec; YaK stores and serves
    /// records uncompressed and has no decompressor.
    #[error("compression codec {0} is not supported (records must be uncompressed)")]
    Compressed(u16),
}

/// A field of a record, to say which one is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordField {
    /// The record's length prefix.
    Length,
    /// Offset delta.
    OffsetDelta,
    /// Timestamp delta.
    TimestampDelta,
    /// Key length.
    KeyLength,
    /// Key bytes.
    Key,
    /// Value length.
    ValueLength,
    /// Value bytes.
    Value,
    /// Header count.
    HeaderCount,
    /// A header's key length.
    HeaderKeyLength,
    /// A header's key bytes.
    HeaderKey,
    /// A header's value length.
    HeaderValueLength,
    /// A header's value bytes.
    HeaderValue,
}

impl std::fmt::Display for RecordField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            RecordField::Length => "length",
            RecordField::OffsetDelta => "offset delta",
            RecordField::TimestampDelta => "timestamp delta",
            RecordField::KeyLength => "key length",
            RecordField::Key => "key",
            RecordField::ValueLength => "value length",
            RecordField::Value => "value",
            RecordField::HeaderCount => "header count",
            RecordField::HeaderKeyLength => "header key length",
            RecordField::HeaderKey => "header key",
            RecordField::HeaderValueLength => "header value length",
            RecordField::HeaderValue => "header value",
        };
        f.write_str(name)
    }
}

/// What is wrong with one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RecordFault {
    /// The record (or the batch) ends inside a fixed-size field.
    #[error("ends inside its {0}")]
    Truncated(RecordField),
    /// A length is negative (only a key may be -1: no key).
    #[error("{field} {length} is negative")]
    NegativeLength {
        /// The length field.
        field: RecordField,
        /// Its value.
        length: i32,
    },
    /// A length runs past the end of the record (or of the batch, for the
    /// record's own length).
    #[error("{field} of {length} bytes runs past the end ({left} bytes left)")]
    Overflow {
        /// The field the length is for.
        field: RecordField,
        /// The declared length.
        length: u32,
        /// Bytes left.
        left: usize,
    },
    /// Offset deltas must be 0, 1, 2, … in record order.
    #[error("offset delta {found}, expected {expected}")]
    OffsetDelta {
        /// Delta in the record.
        found: u32,
        /// The record's index.
        expected: u32,
    },
    /// The record's length prefix disagrees with what its fields take.
    #[error("length {declared} but its fields take {used} bytes")]
    LengthMismatch {
        /// The record's length prefix.
        declared: u32,
        /// Bytes its fields take.
        used: usize,
    },
}

/// The fixed fields of a batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: u64,
    /// Bytes after the `batch_length` field.
    pub batch_length: u32,
    /// Epoch of the leader that appended the batch.
    pub leader_epoch: u32,
    /// Attributes; the low three bits name a compression codec (0: none).
    pub attributes: u16,
    /// Offset of the last record minus `base_offset`.
    pub last_offset_delta: u32,
    /// Timestamp of the first record.
    pub first_timestamp_ms: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp_ms: i64,
    /// Idempotent producer id, -1 for none.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Sequence number of the first record, -1 for none.
    pub base_sequence: i32,
    /// Records in the batch.
    pub record_count: u32,
}

impl BatchHeader {
    /// Total bytes of the batch, header included.
    pub fn total_bytes(&self) -> usize {
        LOG_OVERHEAD_BYTES + self.batch_length as usize
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> u64 {
        self.base_offset
            .saturating_add(u64::from(self.last_offset_delta))
    }

    /// Offset after the last record.
    pub fn next_offset(&self) -> u64 {
        self.last_offset().saturating_add(1)
    }

    /// Sequence number of the last record (wrapping after `i32::MAX` to 0);
    /// `base_sequence` itself when the batch has none (negative).
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return self.base_sequence;
        }
        next_sequence(self.base_sequence, self.record_count.saturating_sub(1))
    }
}

/// The sequence number `n` records after `sequence`. Sequences run from 0 to
/// `i32::MAX` and then start again at 0, as Kafka's do, so a producer never
/// sends a negative one (negative means "none"). Both the producer (its next
/// batch's base) and the broker (the expected next, a batch's last) use this.
pub fn next_sequence(sequence: i32, n: u32) -> i32 {
    const SEQUENCES: i64 = 1 << 31;
    // Cannot truncate: the remainder is in 0..2^31.
    (i64::from(sequence) + i64::from(n)).rem_euclid(SEQUENCES) as i32
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(a)
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

fn be_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Reads the header of the batch at the start of `bytes` without checking
/// the CRC. Needs at least [`HEADER_BYTES`] bytes.
pub fn parse_header(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
    if bytes.len() < HEADER_BYTES {
        return Err(BatchError::Truncated {
            needed: HEADER_BYTES,
            have: bytes.len(),
        });
    }
    if bytes[16] != MAGIC {
        return Err(BatchError::BadMagic(bytes[16]));
    }
    let batch_length = be_u32(bytes, 8);
    if (batch_length as usize) < HEADER_BYTES - LOG_OVERHEAD_BYTES
        || batch_length as usize > crate::limits::FRAME_BYTES_MAX
    {
        return Err(BatchError::BadLength(u64::from(batch_length)));
    }
    Ok(BatchHeader {
        base_offset: be_u64(bytes, 0),
        batch_length,
        leader_epoch: be_u32(bytes, 12),
        attributes: be_u16(bytes, 21),
        last_offset_delta: be_u32(bytes, 23),
        first_timestamp_ms: be_u64(bytes, 27) as i64,
        max_timestamp_ms: be_u64(bytes, 35) as i64,
        producer_id: be_u64(bytes, 43) as i64,
        producer_epoch: be_u16(bytes, 51) as i16,
        base_sequence: be_u32(bytes, 53) as i32,
        record_count: be_u32(bytes, 57),
    })
}

/// Parses the header of the batch at the start of `bytes` and checks that the
/// whole batch is present and its CRC matches.
pub fn validate(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = parse_header(bytes)?;
    let total = header.total_bytes();
    if bytes.len() < total {
        return Err(BatchError::Truncated {
            needed: total,
            have: bytes.len(),
        });
    }
    let stored = be_u32(bytes, 17);
    let computed = crc32c::crc32c(&bytes[CRC_START..total]);
    if stored != computed {
        return Err(BatchError::Crc { stored, computed });
    }
    Ok(header)
}

/// Sets the leader-assigned fields. They lie outside the CRC, so the
/// batch stays valid.
pub fn stamp(bytes: &mut [u8], base_offset: u64, leader_epoch: u32) {
    bytes[0..8].copy_from_slice(&base_offset.to_be_bytes());
    bytes[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// Renumbers a sealed batch for another producer id and base sequence (a
/// producer that took a fresh id after a failed batch) and reseals its CRC,
/// which covers both fields. Needs at least [`HEADER_BYTES`] bytes.
pub fn restamp_producer(bytes: &mut [u8], producer_id: i64, base_sequence: i32) {
    bytes[43..51].copy_from_slice(&producer_id.to_be_bytes());
    bytes[53..57].copy_from_slice(&base_sequence.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[CRC_START..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// One record as read out of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// Absolute offset.
    pub offset: u64,
    /// Timestamp in ms since the Unix epoch.
    pub timestamp_ms: i64,
    /// Key, if any.
    pub key: Option<&'a [u8]>,
    /// Value.
    pub value: &'a [u8],
}

/// A record to put in a batch.
#[derive(Debug, Clone, Copy)]
pub struct NewRecord<'a> {
    /// Key, if any.
    pub key: Option<&'a [u8]>,
    /// Value.
    pub value: &'a [u8],
    /// Timestamp in ms since the Unix epoch.
    pub timestamp_ms: i64,
}

/// Bytes one record takes inside a batch.
pub fn record_bytes(key: Option<&[u8]>, value: &[u8]) -> usize {
    4 + 4 + 8 + 4 + key.map_or(0, <[u8]>::len) + 4 + value.len() + 4
}

/// Builds a batch in place, record by record, then seals it with its CRC.
#[derive(Debug)]
pub struct BatchBuilder {
    buf: Vec<u8>,
    count: u32,
    first_timestamp_ms: i64,
    max_timestamp_ms: i64,
}

impl BatchBuilder {
    /// Starts an empty batch for an idempotent producer (or -1 ids for none).
    pub fn new(producer_id: i64, producer_epoch: i16, base_sequence: i32, capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(HEADER_BYTES + capacity);
        buf.resize(HEADER_BYTES, 0);
        buf[16] = MAGIC;
        buf[43..51].copy_from_slice(&producer_id.to_be_bytes());
        buf[51..53].copy_from_slice(&producer_epoch.to_be_bytes());
        buf[53..57].copy_from_slice(&base_sequence.to_be_bytes());
        BatchBuilder {
            buf,
            count: 0,
            first_timestamp_ms: 0,
            max_timestamp_ms: 0,
        }
    }

    /// Records added so far.
    pub fn len(&self) -> u32 {
        self.count
    }

    /// True before the first record.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes the batch takes so far.
    pub fn size_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Appends one record.
    pub fn push(&mut self, record: NewRecord<'_>) {
        if self.count == 0 {
            self.first_timestamp_ms = record.timestamp_ms;
            self.max_timestamp_ms = record.timestamp_ms;
        }
        self.max_timestamp_ms = self.max_timestamp_ms.max(record.timestamp_ms);
        let len = record_bytes(record.key, record.value) - 4;
        let b = &mut self.buf;
        b.extend_from_slice(&(len as u32).to_be_bytes());
        b.extend_from_slice(&self.count.to_be_bytes());
        b.extend_from_slice(&(record.timestamp_ms - self.first_timestamp_ms).to_be_bytes());
        match record.key {
            Some(k) => {
                b.extend_from_slice(&(k.len() as i32).to_be_bytes());
                b.extend_from_slice(k);
            }
            None => b.extend_from_slice(&(-1i32).to_be_bytes()),
        }
        b.extend_from_slice(&(record.value.len() as u32).to_be_bytes());
        b.extend_from_slice(record.value);
        b.extend_from_slice(&0u32.to_be_bytes());
        self.count += 1;
    }

    /// Writes the header fields and the CRC; the batch is ready to send.
    /// Call it on a batch with at least one record: brokers refuse empty ones.
    pub fn finish(mut self) -> Vec<u8> {
        let b = &mut self.buf;
        let batch_length = (b.len() - LOG_OVERHEAD_BYTES) as u32;
        b[8..12].copy_from_slice(&batch_length.to_be_bytes());
        b[23..27].copy_from_slice(&self.count.saturating_sub(1).to_be_bytes());
        b[27..35].copy_from_slice(&self.first_timestamp_ms.to_be_bytes());
        b[35..43].copy_from_slice(&self.max_timestamp_ms.to_be_bytes());
        b[57..61].copy_from_slice(&self.count.to_be_bytes());
        let crc = crc32c::crc32c(&b[CRC_START..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        self.buf
    }
}

/// Checks, at produce time, that a validated batch holds exactly
/// `record_count` well-formed records filling it to its end: every record's
/// length prefix, fields, lengths (checked against the bytes left before
/// anything is used) and offset delta (its index: 0, 1, 2, …), and a last
/// offset delta of `record_count - 1`. So a producer can neither claim
/// offsets it does not send nor store a record a consumer cannot read. A
/// compressed batch is refused: YaK has no decompressor, so its records
/// could not be checked (or read).
pub fn check_record_count(header: &BatchHeader, batch: &[u8]) -> Result<(), BatchError> {
    let codec = header.attributes & COMPRESSION_MASK;
    if codec != 0 {
        return Err(BatchError::Compressed(codec));
    }
    if header.record_count == 0 {
        return Err(BatchError::NoRecords);
    }
    if header.last_offset_delta != header.record_count - 1 {
        return Err(BatchError::LastOffsetDelta {
            last_offset_delta: header.last_offset_delta,
            record_count: header.record_count,
        });
    }
    let body = &batch[..header.total_bytes().min(batch.len())];
    let mut at = HEADER_BYTES;
    // Each record takes at least 24 bytes or fails, so this loop is bounded
    // by the batch's size, whatever the count claims.
    for index in 0..header.record_count {
        if at >= body.len() {
            return Err(BatchError::MissingRecords {
                declared: header.record_count,
                found: index,
            });
        }
        at = parse_record(body, at, index, header)
            .map_err(|fault| BatchError::BadRecord { index, fault })?
            .0;
    }
    if at != body.len() {
        return Err(BatchError::TrailingBytes {
            bytes: body.len() - at,
            record_count: header.record_count,
        });
    }
    Ok(())
}

/// Checks a batch's CRC and returns all its records.
pub fn records(batch: &[u8]) -> Result<Vec<Record<'_>>, BatchError> {
    let header = validate(batch)?;
    iter_records(&header, batch).collect()
}

/// The records of a batch whose header was already validated, one by one,
/// without allocating. Stops at the first record that does not parse.
pub fn iter_records<'a>(
    header: &BatchHeader,
    batch: &'a [u8],
) -> impl Iterator<Item = Result<Record<'a>, BatchError>> {
    let header = *header;
    let body = &batch[..header.total_bytes().min(batch.len())];
    let mut at = HEADER_BYTES;
    let mut i = 0u32;
    std::iter::from_fn(move || {
        if i >= header.record_count {
            return None;
        }
        let item = match parse_record(body, at, i, &header) {
            Ok((next, record)) => {
                at = next;
                Ok(record)
            }
            Err(fault) => {
                let index = i;
                i = header.record_count;
                return Some(Err(BatchError::BadRecord { index, fault }));
            }
        };
        i += 1;
        Some(item)
    })
}

/// Reads fields out of one record, never past its end.
struct Fields<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Fields<'a> {
    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn fixed<const N: usize>(&mut self, field: RecordField) -> Result<[u8; N], RecordFault> {
        let mut out = [0u8; N];
        let s = self
            .bytes
            .get(self.at..self.at + N)
            .ok_or(RecordFault::Truncated(field))?;
        out.copy_from_slice(s);
        self.at += N;
        Ok(out)
    }

    fn u32(&mut self, field: RecordField) -> Result<u32, RecordFault> {
        self.fixed(field).map(u32::from_be_bytes)
    }

    /// A length-prefixed byte string; `None` for length -1 when `nullable`.
    /// The length is checked against the bytes left before it is used.
    fn sized(
        &mut self,
        length: RecordField,
        data: RecordField,
        nullable: bool,
    ) -> Result<Option<&'a [u8]>, RecordFault> {
        let n = i32::from_be_bytes(self.fixed(length)?);
        if n == -1 && nullable {
            return Ok(None);
        }
        if n < 0 {
            return Err(RecordFault::NegativeLength {
                field: length,
                length: n,
            });
        }
        let n = n as usize;
        if n > self.left() {
            return Err(RecordFault::Overflow {
                field: data,
                length: n as u32,
                left: self.left(),
            });
        }
        let s = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(Some(s))
    }
}

/// Parses the record at `start` in `body` (a batch cut to its length), which
/// must be the batch's record number `index`; returns where the next record
/// starts. Checks every field of the layout in the module doc.
fn parse_record<'a>(
    body: &'a [u8],
    start: usize,
    index: u32,
    h: &BatchHeader,
) -> Result<(usize, Record<'a>), RecordFault> {
    let mut outer = Fields {
        bytes: body,
        at: start,
    };
    let declared = outer.u32(RecordField::Length)?;
    if declared as usize > outer.left() {
        return Err(RecordFault::Overflow {
            field: RecordField::Length,
            length: declared,
            left: outer.left(),
        });
    }
    let end = outer.at + declared as usize;
    let mut f = Fields {
        bytes: &body[..end],
        at: outer.at,
    };
    let offset_delta = f.u32(RecordField::OffsetDelta)?;
    if offset_delta != index {
        return Err(RecordFault::OffsetDelta {
            found: offset_delta,
            expected: index,
        });
    }
    let ts_delta = i64::from_be_bytes(f.fixed(RecordField::TimestampDelta)?);
    let key = f.sized(RecordField::KeyLength, RecordField::Key, true)?;
    let value = f
        .sized(RecordField::ValueLength, RecordField::Value, false)?
        .unwrap_or_default();
    let headers = f.u32(RecordField::HeaderCount)?;
    // Each header takes at least 8 bytes or fails: bounded by the record.
    for _ in 0..headers {
        f.sized(RecordField::HeaderKeyLength, RecordField::HeaderKey, false)?;
        f.sized(
            RecordField::HeaderValueLength,
            RecordField::HeaderValue,
            false,
        )?;
    }
    if f.at != end {
        return Err(RecordFault::LengthMismatch {
            declared,
            used: f.at - outer.at,
        });
    }
    let record = Record {
        offset: h.base_offset.saturating_add(u64::from(offset_delta)),
        timestamp_ms: h.first_timestamp_ms.wrapping_add(ts_delta),
        key,
        value,
    };
    Ok((end, record))
}

/// Splits a run of concatenated batches into (header, bytes) pairs. Stops at
/// the first incomplete batch (a fetch may end mid-batch) or bad one.
pub fn split(mut bytes: &[u8]) -> impl Iterator<Item = Result<(BatchHeader, &[u8]), BatchError>> {
    std::iter::from_fn(move || {
        if bytes.len() < HEADER_BYTES {
            return None;
        }
        let header = match validate(bytes) {
            Ok(h) => h,
            Err(BatchError::Truncated { .. }) => return None,
            Err(e) => {
                bytes = &[];
                return Some(Err(e));
            }
        };
        let (this, rest) = bytes.split_at(header.total_bytes());
        bytes = rest;
        Some(Ok((header, this)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut b = BatchBuilder::new(7, 0, 3, 128);
        b.push(NewRecord {
            key: Some(b"k1"),
            value: b"v1",
            timestamp_ms: 1000,
        });
        b.push(NewRecord {
            key: None,
            value: b"second",
            timestamp_ms: 1005,
        });
        b.finish()
    }

    #[test]
    fn given_built_batch_when_reading_should_round_trip() {
        let mut bytes = sample();
        stamp(&mut bytes, 40, 3);
        let h = validate(&bytes).expect("valid");
        assert_eq!(h.base_offset, 40);
        assert_eq!(h.leader_epoch, 3);
        assert_eq!(h.record_count, 2);
        assert_eq!(h.last_offset(), 41);
        assert_eq!(h.producer_id, 7);
        assert_eq!(h.base_sequence, 3);
        let recs = records(&bytes).expect("records");
        assert_eq!(recs[0].key, Some(&b"k1"[..]));
        assert_eq!(recs[1].key, None);
        assert_eq!(recs[1].value, b"second");
        assert_eq!(recs[1].offset, 41);
        assert_eq!(recs[1].timestamp_ms, 1005);
    }

    #[test]
    fn given_record_count_that_lies_when_checking_should_refuse() {
        let bytes = sample();
        let h = validate(&bytes).expect("valid");
        assert!(check_record_count(&h, &bytes).is_ok());
        let more = BatchHeader {
            record_count: 3,
            last_offset_delta: 2,
            ..h
        };
        assert!(check_record_count(&more, &bytes).is_err());
        let fewer = BatchHeader {
            record_count: 1,
            last_offset_delta: 0,
            ..h
        };
        assert!(
            check_record_count(&fewer, &bytes).is_err(),
            "a record left over"
        );
        let wide = BatchHeader {
            last_offset_delta: u32::MAX,
            ..h
        };
        assert!(check_record_count(&wide, &bytes).is_err());
    }

    #[test]
    fn given_sequences_near_i32_max_when_advancing_should_wrap_to_zero_as_kafka() {
        let cases: &[(i32, u32, i32)] = &[
            (0, 1, 1),
            (i32::MAX - 1, 1, i32::MAX),
            (i32::MAX, 1, 0),
            (i32::MAX - 1, 3, 1),
            (i32::MAX, u32::MAX, i32::MAX - 1),
            (5, 0, 5),
        ];
        for &(seq, n, want) in cases {
            assert_eq!(next_sequence(seq, n), want, "{seq} + {n}");
        }
        let mut b = BatchBuilder::new(7, 0, i32::MAX - 1, 64);
        for _ in 0..4 {
            b.push(NewRecord {
                key: None,
                value: b"v",
                timestamp_ms: 0,
            });
        }
        let h = validate(&b.finish()).expect("valid");
        assert_eq!(h.last_sequence(), 1, "MAX-1, MAX, 0, 1");
        let none = BatchHeader {
            base_sequence: -1,
            ..h
        };
        assert_eq!(
            none.last_sequence(),
            -1,
            "a batch without sequences has none"
        );
    }

    /// A record's fields as raw numbers, so a test can write any of them wrong.
    #[derive(Clone)]
    struct Raw {
        length: Option<u32>,
        offset_delta: u32,
        key_length: i32,
        key: Vec<u8>,
        value_length: i32,
        value: Vec<u8>,
        header_count: u32,
        headers: Vec<u8>,
        cut: usize,
    }

    fn raw(offset_delta: u32) -> Raw {
        Raw {
            length: None,
            offset_delta,
            key_length: 2,
            key: b"k1".to_vec(),
            value_length: 3,
            value: b"val".to_vec(),
            header_count: 0,
            headers: Vec::new(),
            cut: 0,
        }
    }

    impl Raw {
        fn bytes(&self) -> Vec<u8> {
            let mut body = Vec::new();
            body.extend_from_slice(&self.offset_delta.to_be_bytes());
            body.extend_from_slice(&7i64.to_be_bytes());
            body.extend_from_slice(&self.key_length.to_be_bytes());
            body.extend_from_slice(&self.key);
            body.extend_from_slice(&self.value_length.to_be_bytes());
            body.extend_from_slice(&self.value);
            body.extend_from_slice(&self.header_count.to_be_bytes());
            body.extend_from_slice(&self.headers);
            body.truncate(body.len() - self.cut);
            let mut out = self
                .length
                .unwrap_or(body.len() as u32)
                .to_be_bytes()
                .to_vec();
            out.extend(body);
            out
        }
    }

    /// A sealed batch (CRC right) around `records`, claiming `count` records
    /// with the given last offset delta, and `tail` bytes after them.
    fn sealed(records: &[Raw], count: u32, last_offset_delta: u32, tail: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_BYTES];
        b[16] = MAGIC;
        b[23..27].copy_from_slice(&last_offset_delta.to_be_bytes());
        b[43..51].copy_from_slice(&(-1i64).to_be_bytes());
        b[53..57].copy_from_slice(&(-1i32).to_be_bytes());
        b[57..61].copy_from_slice(&count.to_be_bytes());
        for r in records {
            b.extend(r.bytes());
        }
        b.extend_from_slice(tail);
        reseal(&mut b);
        b
    }

    fn reseal(b: &mut [u8]) {
        let len = (b.len() - LOG_OVERHEAD_BYTES) as u32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        let crc = crc32c::crc32c(&b[CRC_START..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
    }

    fn check(bytes: &[u8]) -> Result<(), BatchError> {
        let h = validate(bytes).expect("the test batch is sealed");
        check_record_count(&h, bytes)
    }

    fn header_bytes(key_length: i32, key: &[u8], value_length: i32, value: &[u8]) -> Vec<u8> {
        let mut h = key_length.to_be_bytes().to_vec();
        h.extend_from_slice(key);
        h.extend_from_slice(&value_length.to_be_bytes());
        h.extend_from_slice(value);
        h
    }

    #[test]
    fn given_well_formed_records_when_checking_should_accept() {
        let built = sample();
        assert_eq!(check(&built), Ok(()), "a batch from the real BatchBuilder");
        let no_key = Raw {
            key_length: -1,
            key: vec![],
            ..raw(1)
        };
        let empty_value = Raw {
            value_length: 0,
            value: vec![],
            ..raw(2)
        };
        let with_header = Raw {
            header_count: 1,
            headers: header_bytes(1, b"h", 1, b"x"),
            ..raw(3)
        };
        let all = [raw(0), no_key, empty_value, with_header];
        assert_eq!(
            check(&sealed(&all, 4, 3, &[])),
            Ok(()),
            "no key, empty value, a header"
        );
    }

    #[test]
    fn given_malformed_record_in_crc_valid_batch_when_checking_should_refuse_as_corrupt() {
        use RecordFault::*;
        let second = |r: Raw| sealed(&[raw(0), r], 2, 1, &[]);
        let bad = |fault: RecordFault| BatchError::BadRecord { index: 1, fault };
        let short_key = Raw {
            key_length: 6,
            key: b"ab".to_vec(),
            value_length: 0,
            value: vec![],
            cut: 8,
            ..raw(1)
        };
        // raw(n)'s fields take 29 bytes after its length prefix.
        let cases: Vec<(&str, Vec<u8>, BatchError)> = vec![
            (
                "offset delta not the record's index",
                second(raw(5)),
                bad(OffsetDelta {
                    found: 5,
                    expected: 1,
                }),
            ),
            (
                "first offset delta not 0",
                sealed(&[raw(1), raw(2)], 2, 1, &[]),
                BatchError::BadRecord {
                    index: 0,
                    fault: OffsetDelta {
                        found: 1,
                        expected: 0,
                    },
                },
            ),
            (
                "record ends inside the timestamp delta",
                second(Raw {
                    length: Some(6),
                    ..raw(1)
                }),
                bad(Truncated(RecordField::TimestampDelta)),
            ),
            (
                "record ends inside the offset delta",
                second(Raw {
                    length: Some(2),
                    ..raw(1)
                }),
                bad(Truncated(RecordField::OffsetDelta)),
            ),
            (
                "batch ends inside a record's length",
                sealed(&[raw(0)], 2, 1, &[0, 0]),
                bad(Truncated(RecordField::Length)),
            ),
            (
                "negative key length other than -1",
                second(Raw {
                    key_length: -2,
                    key: vec![],
                    ..raw(1)
                }),
                bad(NegativeLength {
                    field: RecordField::KeyLength,
                    length: -2,
                }),
            ),
            (
                "negative value length",
                second(Raw {
                    value_length: -1,
                    value: vec![],
                    ..raw(1)
                }),
                bad(NegativeLength {
                    field: RecordField::ValueLength,
                    length: -1,
                }),
            ),
            (
                "key length past the record",
                second(Raw {
                    key_length: 1000,
                    ..raw(1)
                }),
                bad(Overflow {
                    field: RecordField::Key,
                    length: 1000,
                    left: 13,
                }),
            ),
            (
                "value length past the record",
                second(Raw {
                    value_length: i32::MAX,
                    ..raw(1)
                }),
                bad(Overflow {
                    field: RecordField::Value,
                    length: i32::MAX as u32,
                    left: 7,
                }),
            ),
            (
                "record length past the batch",
                second(Raw {
                    length: Some(u32::MAX),
                    ..raw(1)
                }),
                bad(Overflow {
                    field: RecordField::Length,
                    length: u32::MAX,
                    left: 29,
                }),
            ),
            (
                "short key: the record ends inside it",
                second(short_key),
                bad(Overflow {
                    field: RecordField::Key,
                    length: 6,
                    left: 2,
                }),
            ),
            (
                "bytes left inside a record",
                second(Raw {
                    headers: vec![9, 9],
                    ..raw(1)
                }),
                bad(LengthMismatch {
                    declared: 31,
                    used: 29,
                }),
            ),
            (
                "header count with no headers",
                second(Raw {
                    header_count: u32::MAX,
                    ..raw(1)
                }),
                bad(Truncated(RecordField::HeaderKeyLength)),
            ),
            (
                "negative header key length",
                second(Raw {
                    header_count: 1,
                    headers: header_bytes(-1, b"", 1, b"x"),
                    ..raw(1)
                }),
                bad(NegativeLength {
                    field: RecordField::HeaderKeyLength,
                    length: -1,
                }),
            ),
            (
                "header value past the record",
                second(Raw {
                    header_count: 1,
                    headers: header_bytes(1, b"h", 50, b"x"),
                    ..raw(1)
                }),
                bad(Overflow {
                    field: RecordField::HeaderValue,
                    length: 50,
                    left: 1,
                }),
            ),
            (
                "bytes after the last record",
                sealed(&[raw(0), raw(1)], 2, 1, &[0, 0, 0, 0]),
                BatchError::TrailingBytes {
                    bytes: 4,
                    record_count: 2,
                },
            ),
            (
                "fewer records than the count",
                sealed(&[raw(0), raw(1)], 3, 2, &[]),
                BatchError::MissingRecords {
                    declared: 3,
                    found: 2,
                },
            ),
            (
                "last offset delta not count - 1",
                sealed(&[raw(0), raw(1)], 2, 2, &[]),
                BatchError::LastOffsetDelta {
                    last_offset_delta: 2,
                    record_count: 2,
                },
            ),
            ("no records", sealed(&[], 0, 0, &[]), BatchError::NoRecords),
        ];
        for (what, bytes, want) in cases {
            assert_eq!(check(&bytes), Err(want), "{what}");
        }
    }

    #[test]
    fn given_compressed_batch_when_checking_should_refuse_since_there_is_no_decompressor() {
        let mut bytes = sample();
        bytes[21..23].copy_from_slice(&1u16.to_be_bytes());
        reseal(&mut bytes);
        assert_eq!(check(&bytes), Err(BatchError::Compressed(1)));
        bytes[21..23].copy_from_slice(&0x08u16.to_be_bytes());
        reseal(&mut bytes);
        assert_eq!(
            check(&bytes),
            Ok(()),
            "other attribute bits are not a codec"
        );
    }

    #[test]
    fn given_random_byte_flips_in_records_when_checking_should_never_panic_and_accept_only_readable_batches(
    ) {
        let mut b = BatchBuilder::new(3, 0, 0, 256);
        for i in 0..6u8 {
            let key = [i; 3];
            b.push(NewRecord {
                key: (i % 2 == 0).then_some(&key[..]),
                value: &[i; 5],
                timestamp_ms: 100 + i64::from(i),
            });
        }
        let valid = b.finish();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut accepted, mut refused) = (0u32, 0u32);
        for _ in 0..20_000 {
            let mut bytes = valid.clone();
            let flips = 1 + next() % 3;
            for _ in 0..flips {
                let at = HEADER_BYTES + (next() as usize) % (bytes.len() - HEADER_BYTES);
                bytes[at] = match next() % 3 {
                    0 => bytes[at] ^ (1 << (next() % 8)),
                    1 => 0xff,
                    _ => next() as u8,
                };
            }
            reseal(&mut bytes);
            let h = validate(&bytes).expect("resealed");
            match check_record_count(&h, &bytes) {
                Ok(()) => {
                    accepted += 1;
                    let read: Result<Vec<_>, _> = iter_records(&h, &bytes).collect();
                    assert_eq!(
                        read.map(|r| r.len()),
                        Ok(6),
                        "an accepted batch reads back whole"
                    );
                }
                Err(_) => refused += 1,
            }
        }
        assert!(
            accepted > 0 && refused > 0,
            "the flips hit both fields that matter and ones that do not"
        );
    }

    #[test]
    fn given_sealed_batch_when_restamping_producer_should_renumber_and_stay_valid() {
        let mut b = BatchBuilder::new(7, 0, 40, 64);
        b.push(NewRecord {
            key: None,
            value: b"a",
            timestamp_ms: 1,
        });
        b.push(NewRecord {
            key: None,
            value: b"b",
            timestamp_ms: 2,
        });
        let mut bytes = b.finish();
        restamp_producer(&mut bytes, 9, 0);
        let header = validate(&bytes).expect("the CRC is resealed");
        assert_eq!((header.producer_id, header.base_sequence), (9, 0));
        assert_eq!(header.last_sequence(), 1);
    }

    #[test]
    fn given_flipped_byte_when_validating_should_fail_crc() {
        let mut bytes = sample();
        let mid = bytes.len() - 5;
        bytes[mid] ^= 0x40;
        assert!(matches!(validate(&bytes), Err(BatchError::Crc { .. })));
    }

    #[test]
    fn given_half_batch_when_validating_should_report_truncated() {
        let bytes = sample();
        assert!(matches!(
            validate(&bytes[..bytes.len() / 2]),
            Err(BatchError::Truncated { .. })
        ));
    }

    #[test]
    fn given_two_batches_and_a_torn_third_when_splitting_should_yield_two() {
        let mut all = sample();
        all.extend(sample());
        let third = sample();
        all.extend(&third[..10]);
        let n = split(&all).filter(|r| r.is_ok()).count();
        assert_eq!(n, 2);
    }
}
