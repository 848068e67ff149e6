//! The one check of a batch, at the edge where it enters a broker. A
//! producer's batch becomes a [`CheckedBatch`]; a follower's fetched run of
//! batches becomes [`ReplicatedBatches`]. Storage and the replica take only
//! these types, so they never check again, and nothing else can make them:
//! their fields are private and their only constructors are the checks.
//!
//! Why a follower's batches get a lighter check than a producer's: the
//! leader built every one of them from a [`CheckedBatch`], whose records it
//! parsed in full, and stamped only the base offset and leader epoch, which
//! lie outside the CRC. A batch whose CRC32C still matches therefore holds
//! exactly the records the leader checked; parsing (and, for a compressed
//! batch, decompressing) them again on every follower would double the CPU
//! cost of replication and find nothing. What the follower does check is
//! what the CRC cannot vouch for: the framing (magic, lengths, no torn
//! batch), the count against the last offset delta, a known codec, and
//! that the batches follow each other (contiguous offsets, epochs never
//! going back).
//!
//! Why a producer's compressed batch is decompressed to be checked: it is
//! the only way to know its record count and framing, and a batch stored
//! unchecked could hand every consumer records it cannot read or offsets
//! the producer never sent. Kafka's broker does the same. Decompression
//! stops at [`BATCH_DECOMPRESSED_BYTES_MAX`], so a zip bomb costs no more
//! than that.

use super::header::{self, BatchHeader, HEADER_BYTES};
use super::records::decode_validated;
use super::{BatchError, Compression};
use crate::limits::BATCH_BYTES_MAX;
#[cfg(doc)]
use crate::limits::BATCH_DECOMPRESSED_BYTES_MAX;

/// A producer's batch that passed every check: magic 2, a length filling the
/// bytes exactly (one batch), at most [`BATCH_BYTES_MAX`] bytes, CRC32C, a
/// known codec, at least one record, `record_count = last_offset_delta + 1`,
/// and exactly that many well-formed records (decompressed if need be) with
/// offset deltas 0, 1, 2, … .
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedBatch {
    bytes: Vec<u8>,
    header: BatchHeader,
}

impl CheckedBatch {
    /// Checks `bytes` as a producer's single batch.
    pub fn check(bytes: Vec<u8>) -> Result<CheckedBatch, BatchError> {
        if bytes.len() > BATCH_BYTES_MAX {
            return Err(BatchError::TooLarge {
                bytes: bytes.len(),
                limit: BATCH_BYTES_MAX,
            });
        }
        let header = header::validate(&bytes)?;
        if header.total_bytes() != bytes.len() {
            return Err(BatchError::NotOneBatch {
                declared: header.total_bytes(),
                given: bytes.len(),
            });
        }
        Compression::from_attributes(header.attributes)?;
        header.check_count()?;
        decode_validated(&header, &bytes)?.check()?;
        Ok(CheckedBatch { bytes, header })
    }

    /// Its header (as last stamped).
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The batch's bytes, as stored and served.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The batch's bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Bytes in the batch.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Never true: a batch has a header. For symmetry with [`Self::len`].
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Gives every record the leader's append time `ms` (LogAppendTime);
    /// the CRC is resealed, so the batch stays checked.
    pub fn set_log_append_time(&mut self, ms: i64) {
        header::set_log_append_time(&mut self.bytes, ms);
        self.header.attributes |= header::LOG_APPEND_TIME_BIT;
        self.header.max_timestamp_ms = ms;
    }

    /// Sets the leader-assigned base offset and leader epoch, which lie
    /// outside the CRC: the batch stays checked.
    pub fn stamp(&mut self, base_offset: u64, leader_epoch: u32) {
        header::stamp(&mut self.bytes, base_offset, leader_epoch);
        self.header.base_offset = base_offset;
        self.header.leader_epoch = leader_epoch;
    }
}

/// A follower's run of whole batches fetched from the leader, each checked
/// as the module doc says, following each other. A torn batch at the end (a
/// fetch may stop mid-batch) is left out, never refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicatedBatches<'a> {
    bytes: &'a [u8],
    headers: Vec<BatchHeader>,
}

impl<'a> ReplicatedBatches<'a> {
    /// Checks every whole batch of `bytes`.
    pub fn check(bytes: &'a [u8]) -> Result<ReplicatedBatches<'a>, BatchError> {
        let mut headers: Vec<BatchHeader> = Vec::new();
        let mut at = 0;
        while bytes.len() - at >= HEADER_BYTES {
            let h = match header::validate(&bytes[at..]) {
                Err(BatchError::Truncated { .. }) => break,
                other => other?,
            };
            Compression::from_attributes(h.attributes)?;
            h.check_count()?;
            if let Some(prev) = headers.last() {
                if h.base_offset != prev.next_offset() {
                    return Err(BatchError::NotContiguous {
                        expected: prev.next_offset(),
                        got: h.base_offset,
                    });
                }
                if h.leader_epoch < prev.leader_epoch {
                    return Err(BatchError::EpochWentBack {
                        base_offset: h.base_offset,
                        epoch: h.leader_epoch,
                        previous: prev.leader_epoch,
                    });
                }
            }
            at += h.total_bytes();
            headers.push(h);
        }
        Ok(ReplicatedBatches {
            bytes: &bytes[..at],
            headers,
        })
    }

    /// The batches from the first whose base offset is at least `offset`
    /// (those a log ending at `offset` lacks).
    pub fn from_offset(self, offset: u64) -> ReplicatedBatches<'a> {
        let skip = self
            .headers
            .iter()
            .take_while(|h| h.base_offset < offset)
            .count();
        let at: usize = self.headers[..skip]
            .iter()
            .map(BatchHeader::total_bytes)
            .sum();
        ReplicatedBatches {
            bytes: &self.bytes[at..],
            headers: self.headers[skip..].to_vec(),
        }
    }

    /// The batches' headers, in order.
    pub fn headers(&self) -> &[BatchHeader] {
        &self.headers
    }

    /// The batches, each with its bytes.
    pub fn iter(&self) -> impl Iterator<Item = (&BatchHeader, &'a [u8])> + '_ {
        let mut at = 0;
        self.headers.iter().map(move |h| {
            let bytes = &self.bytes[at..at + h.total_bytes()];
            at += h.total_bytes();
            (h, bytes)
        })
    }

    /// All the batches' bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// True when no whole batch was given.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
