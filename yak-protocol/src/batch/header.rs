//! The 61-byte v2 batch header: parsing it, checking a batch's framing and
//! CRC32C, stamping the leader's fields, renumbering a producer's batch, and
//! splitting a run of concatenated batches. Never looks inside the records.

use super::BatchError;

/// Bytes in a batch header.
pub const HEADER_BYTES: usize = 61;
/// Bytes before `batch_length` ends: the part of the header outside `batch_length`.
pub const LOG_OVERHEAD_BYTES: usize = 12;
/// The only batch format version.
pub const MAGIC: u8 = 2;
/// Where the CRC-covered bytes start (the attributes).
pub(super) const CRC_START: usize = 21;
/// The attribute bits naming a compression codec (Kafka's layout).
pub(super) const COMPRESSION_MASK: u16 = 0x07;
/// The attribute bit saying every record's timestamp is `max_timestamp_ms`
/// (Kafka's LogAppendTime).
pub(super) const LOG_APPEND_TIME_BIT: u16 = 0x08;

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

    /// The codec bits of the attributes (0: none).
    pub fn codec_bits(&self) -> u16 {
        self.attributes & COMPRESSION_MASK
    }

    /// Sequence number of the last record (wrapping after `i32::MAX` to 0);
    /// `base_sequence` itself when the batch has none (negative).
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return self.base_sequence;
        }
        next_sequence(self.base_sequence, self.record_count.saturating_sub(1))
    }

    /// Checks what the header alone says about the records: at least one,
    /// and a last offset delta of `record_count - 1`.
    pub(super) fn check_count(&self) -> Result<(), BatchError> {
        if self.record_count == 0 {
            return Err(BatchError::NoRecords);
        }
        if self.last_offset_delta != self.record_count - 1 {
            return Err(BatchError::LastOffsetDelta {
                last_offset_delta: self.last_offset_delta,
                record_count: self.record_count,
            });
        }
        Ok(())
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
/// whole batch is present and its CRC matches. Says nothing of the records:
/// [`super::CheckedBatch`] does.
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

/// Writes `batch_length` and the CRC of a batch that ends at the end of
/// `bytes`.
pub(super) fn seal(bytes: &mut [u8]) {
    let batch_length = (bytes.len() - LOG_OVERHEAD_BYTES) as u32;
    bytes[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[CRC_START..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Gives every record of a sealed batch the time `ms` (Kafka's
/// LogAppendTime): sets the attribute bit and the max timestamp, and
/// reseals the CRC, which covers both. The first timestamp and the
/// records' deltas stay as the producer wrote them, as in Kafka. Needs at
/// least [`HEADER_BYTES`] bytes.
pub fn set_log_append_time(bytes: &mut [u8], ms: i64) {
    let attributes = be_u16(bytes, CRC_START) | LOG_APPEND_TIME_BIT;
    bytes[CRC_START..CRC_START + 2].copy_from_slice(&attributes.to_be_bytes());
    bytes[35..43].copy_from_slice(&ms.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[CRC_START..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
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

/// Splits a run of concatenated batches into (header, bytes) pairs, each
/// CRC-checked. Stops at the first incomplete batch (a fetch may end
/// mid-batch) or bad one.
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
    use super::super::{BatchBuilder, NewRecord};
    use super::*;

    fn sample() -> Vec<u8> {
        let mut b = BatchBuilder::new(7, 0, 3, 128);
        for value in [&b"v1"[..], b"second"] {
            b.push(NewRecord {
                key: None,
                value,
                timestamp_ms: 1000,
            });
        }
        b.finish()
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

    #[test]
    fn given_built_batch_when_stamping_should_keep_the_crc_and_read_the_leader_fields() {
        let mut bytes = sample();
        stamp(&mut bytes, 40, 3);
        let h = validate(&bytes).expect("valid");
        assert_eq!((h.base_offset, h.leader_epoch), (40, 3));
        assert_eq!(
            (h.record_count, h.last_offset(), h.next_offset()),
            (2, 41, 42)
        );
        assert_eq!((h.producer_id, h.base_sequence), (7, 3));
    }

    #[test]
    fn given_sealed_batch_when_restamping_producer_should_renumber_and_stay_valid() {
        let mut bytes = sample();
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
    fn given_bad_magic_or_length_when_parsing_should_refuse() {
        let mut bytes = sample();
        bytes[16] = 1;
        assert_eq!(parse_header(&bytes), Err(BatchError::BadMagic(1)));
        let mut bytes = sample();
        bytes[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            parse_header(&bytes),
            Err(BatchError::BadLength(u64::from(u32::MAX)))
        );
        bytes[8..12].copy_from_slice(&3u32.to_be_bytes());
        assert_eq!(parse_header(&bytes), Err(BatchError::BadLength(3)));
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
