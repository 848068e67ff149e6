//! Record batches in Kafka's v2 format, which is both YaK's on-disk form and
//! its wire form: a batch is built once by the producer, checked once at the
//! broker's edge into a [`CheckedBatch`], stamped with its base offset and
//! leader epoch, and stored and served as it is. All integers big-endian.
//!
//! ```text
//! offset  size  field
//!      0     8  base_offset          (set by the leader)
//!      8     4  batch_length         (bytes after this field)
//!     12     4  leader_epoch         (set by the leader)
//!     16     1  magic = 2
//!     17     4  crc32c               (of every byte from offset 21 to the end)
//!     21     2  attributes           (bits 0-2: codec, 3: timestamp type)
//!     23     4  last_offset_delta
//!     27     8  first_timestamp_ms
//!     35     8  max_timestamp_ms
//!     43     8  producer_id          (-1: none)
//!     51     2  producer_epoch
//!     53     4  base_sequence        (-1: none)
//!     57     4  record_count
//!     61        records              (compressed as a whole when codec != 0)
//! ```
//! A record, Kafka's: `length` (varint: bytes after it), `attributes` (int8,
//! unused), `timestamp_delta` (varlong), `offset_delta` (varint),
//! `key_length` (varint, -1: null) + key, `value_length` (varint, -1: null) +
//! value, `header_count` (varint), then per header `key_length` (varint) +
//! key, `value_length` (varint, -1: null) + value. Varints are zigzag
//! ([`varint`]), at most 5 bytes (10 for a varlong).
//!
//! Layout: [`header`] (the 61 bytes, CRC, stamping, splitting a run of
//! batches), [`varint`], [`records`] (record codec, [`BatchBuilder`],
//! reading records back), [`compression`] (the four codecs), [`check`]
//! (the one validation at the edge: [`CheckedBatch`] for a producer's batch,
//! [`ReplicatedBatches`] for a follower's fetch). Does no I/O.

pub mod check;
pub mod compression;
pub mod header;
pub mod records;
pub mod varint;

pub use check::{CheckedBatch, ReplicatedBatches};
pub use compression::Compression;
pub use header::{
    next_sequence, parse_header, restamp_producer, split, stamp, validate, BatchHeader,
    HEADER_BYTES, LOG_OVERHEAD_BYTES, MAGIC,
};
pub use records::{
    decode, decode_validated, first_record_since, record_bytes, BatchBuilder, BatchRecords,
    NewRecord, Record, RecordHeader, RecordHeaders,
};

use thiserror::Error;

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
    /// The batch is larger than a produce may carry.
    #[error("batch of {bytes} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Bytes given.
        bytes: usize,
        /// [`crate::limits::BATCH_BYTES_MAX`].
        limit: usize,
    },
    /// Unknown format version.
    #[error("unknown batch magic {0} (only Kafka's v2 batches, magic 2, are accepted)")]
    BadMagic(u8),
    /// The stored checksum does not match the bytes.
    #[error("crc mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Crc {
        /// Checksum in the header.
        stored: u32,
        /// Checksum of the bytes.
        computed: u32,
    },
    /// A produce carries exactly one batch, filling it to its end.
    #[error("expected exactly one batch of {declared} bytes, got {given} bytes")]
    NotOneBatch {
        /// Bytes the header declares.
        declared: usize,
        /// Bytes given.
        given: usize,
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
    /// The attributes name a codec Kafka does not define (5, 6 or 7).
    #[error("unknown compression codec {0} (known: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd)")]
    UnknownCodec(u16),
    /// The records do not decompress.
    #[error("{codec} records do not decompress: {reason}")]
    Decompress {
        /// The batch's codec.
        codec: Compression,
        /// What the decompressor said.
        reason: String,
    },
    /// The records decompress to more than the limit.
    #[error("{codec} records decompress to more than {limit} bytes")]
    DecompressedTooLarge {
        /// The batch's codec.
        codec: Compression,
        /// [`crate::limits::BATCH_DECOMPRESSED_BYTES_MAX`].
        limit: usize,
    },
    /// Batches of one replicated run must follow each other.
    #[error("batch at offset {got} does not follow the previous one (expected {expected})")]
    NotContiguous {
        /// Offset the previous batch ended at.
        expected: u64,
        /// The batch's base offset.
        got: u64,
    },
    /// Leader epochs in one replicated run must not decrease.
    #[error("batch at offset {base_offset} has leader epoch {epoch}, below the previous batch's {previous}")]
    EpochWentBack {
        /// The batch's base offset.
        base_offset: u64,
        /// Its epoch.
        epoch: u32,
        /// The previous batch's epoch.
        previous: u32,
    },
}

/// A field of a record, to say which one is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordField {
    /// The record's length prefix.
    Length,
    /// The record's attributes byte.
    Attributes,
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
            RecordField::Attributes => "attributes",
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
    /// The record (or the batch) ends inside a field.
    #[error("ends inside its {0}")]
    Truncated(RecordField),
    /// A varint runs on past its longest form (5 bytes, 10 for a varlong).
    #[error("{field} varint is longer than {max_bytes} bytes")]
    VarintTooLong {
        /// The field.
        field: RecordField,
        /// Its longest legal form.
        max_bytes: usize,
    },
    /// A varint's last byte carries bits past 32 (64 for a varlong).
    #[error("{0} varint does not fit its width")]
    VarintOutOfRange(RecordField),
    /// A length or count is negative (only -1, null, for a key or value).
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
        found: i32,
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
