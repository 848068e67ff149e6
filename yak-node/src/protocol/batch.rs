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

use thiserror::Error;

/// Bytes in a batch header.
pub const HEADER_BYTES: usize = 61;
/// Bytes before `batch_length` ends: the part of the header outside `batch_length`.
pub const LOG_OVERHEAD_BYTES: usize = 12;
/// The only batch format version.
pub const MAGIC: u8 = 2;
const CRC_START: usize = 21;

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
    /// A record inside the batch does not parse.
    #[error("corrupt record at index {0}")]
    BadRecord(u32),
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
        self.base_offset.saturating_add(u64::from(self.last_offset_delta))
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
        return Err(BatchError::Truncated { needed: HEADER_BYTES, have: bytes.len() });
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
        return Err(BatchError::Truncated { needed: total, have: bytes.len() });
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
        BatchBuilder { buf, count: 0, first_timestamp_ms: 0, max_timestamp_ms: 0 }
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

/// Checks that a validated batch holds exactly `record_count` records that
/// fill it to its end, walking only their length prefixes: a producer cannot
/// claim more offsets than it sends records.
pub fn check_record_count(header: &BatchHeader, batch: &[u8]) -> Result<(), BatchError> {
    let end = header.total_bytes().min(batch.len());
    let mut at = HEADER_BYTES;
    for i in 0..header.record_count {
        let len = take_u32(&batch[..end], &mut at).ok_or(BatchError::BadRecord(i))? as usize;
        at = at.checked_add(len).filter(|a| *a <= end).ok_or(BatchError::BadRecord(i))?;
    }
    if at != end || header.last_offset_delta != header.record_count.saturating_sub(1) {
        return Err(BatchError::BadRecord(header.record_count));
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
pub fn iter_records<'a>(header: &BatchHeader, batch: &'a [u8]) -> impl Iterator<Item = Result<Record<'a>, BatchError>> {
    let header = *header;
    let body = &batch[..header.total_bytes().min(batch.len())];
    let mut at = HEADER_BYTES;
    let mut i = 0u32;
    std::iter::from_fn(move || {
        if i >= header.record_count {
            return None;
        }
        let item = match parse_record(body, at, &header) {
            Some((next, record)) => {
                at = next;
                Ok(record)
            }
            None => {
                let bad = i;
                i = header.record_count;
                return Some(Err(BatchError::BadRecord(bad)));
            }
        };
        i += 1;
        Some(item)
    })
}

fn take<'a>(b: &'a [u8], at: &mut usize, n: usize) -> Option<&'a [u8]> {
    let end = at.checked_add(n)?;
    let s = b.get(*at..end)?;
    *at = end;
    Some(s)
}

fn take_u32(b: &[u8], at: &mut usize) -> Option<u32> {
    take(b, at, 4).map(|s| be_u32(s, 0))
}

fn parse_record<'a>(b: &'a [u8], start: usize, h: &BatchHeader) -> Option<(usize, Record<'a>)> {
    let mut at = start;
    let len = take_u32(b, &mut at)? as usize;
    let end = at.checked_add(len)?;
    if end > b.len() {
        return None;
    }
    let b = &b[..end];
    let offset_delta = take_u32(b, &mut at)?;
    let ts_delta = be_u64(take(b, &mut at, 8)?, 0) as i64;
    let key_len = take_u32(b, &mut at)? as i32;
    let key = if key_len < 0 { None } else { Some(take(b, &mut at, key_len as usize)?) };
    let value_len = take_u32(b, &mut at)? as usize;
    let value = take(b, &mut at, value_len)?;
    let headers = take_u32(b, &mut at)?;
    for _ in 0..headers {
        let k = take_u32(b, &mut at)? as usize;
        take(b, &mut at, k)?;
        let v = take_u32(b, &mut at)? as usize;
        take(b, &mut at, v)?;
    }
    let record = Record {
        offset: h.base_offset.checked_add(u64::from(offset_delta))?,
        timestamp_ms: h.first_timestamp_ms.wrapping_add(ts_delta),
        key,
        value,
    };
    Some((end, record))
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
        b.push(NewRecord { key: Some(b"k1"), value: b"v1", timestamp_ms: 1000 });
        b.push(NewRecord { key: None, value: b"second", timestamp_ms: 1005 });
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
        let more = BatchHeader { record_count: 3, last_offset_delta: 2, ..h };
        assert!(check_record_count(&more, &bytes).is_err());
        let fewer = BatchHeader { record_count: 1, last_offset_delta: 0, ..h };
        assert!(check_record_count(&fewer, &bytes).is_err(), "a record left over");
        let wide = BatchHeader { last_offset_delta: u32::MAX, ..h };
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
            b.push(NewRecord { key: None, value: b"v", timestamp_ms: 0 });
        }
        let h = validate(&b.finish()).expect("valid");
        assert_eq!(h.last_sequence(), 1, "MAX-1, MAX, 0, 1");
        let none = BatchHeader { base_sequence: -1, ..h };
        assert_eq!(none.last_sequence(), -1, "a batch without sequences has none");
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
        assert!(matches!(validate(&bytes[..bytes.len() / 2]), Err(BatchError::Truncated { .. })));
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
