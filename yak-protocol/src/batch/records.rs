//! Kafka v2 records inside a batch: writing them ([`BatchBuilder`]) and
//! reading them back ([`decode`], [`BatchRecords`]). Every length is checked
//! against the bytes left before it is used, and reading never allocates
//! per record: keys, values and headers are slices of the batch (or of its
//! decompressed records).

use super::compression::Compression;
use super::header::{self, BatchHeader, HEADER_BYTES, LOG_APPEND_TIME_BIT, MAGIC};
use super::varint::{self, VarintError, VARINT_BYTES_MAX, VARLONG_BYTES_MAX};
use super::{BatchError, RecordFault, RecordField};
use crate::limits::{BATCH_BYTES_MAX, BATCH_DECOMPRESSED_BYTES_MAX};
use std::borrow::Cow;

/// One record as read out of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// Absolute offset.
    pub offset: u64,
    /// Timestamp in ms since the Unix epoch.
    pub timestamp_ms: i64,
    /// Key; `None` for a null key.
    pub key: Option<&'a [u8]>,
    /// Value; `None` for a null value (a tombstone).
    pub value: Option<&'a [u8]>,
    /// The record's headers.
    pub headers: RecordHeaders<'a>,
}

/// One record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader<'a> {
    /// Header key (Kafka: a UTF-8 string; not checked).
    pub key: &'a [u8],
    /// Header value; `None` for null.
    pub value: Option<&'a [u8]>,
}

/// A record's headers, still in their encoded form (already checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordHeaders<'a> {
    bytes: &'a [u8],
    count: u32,
}

impl<'a> RecordHeaders<'a> {
    /// How many.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True without headers.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The headers in order.
    pub fn iter(&self) -> impl Iterator<Item = RecordHeader<'a>> {
        let mut c = Cursor {
            bytes: self.bytes,
            at: 0,
        };
        (0..self.count).map_while(move |_| read_header(&mut c).ok())
    }
}

/// A record to put in a batch: a key or none, a value, no headers.
#[derive(Debug, Clone, Copy)]
pub struct NewRecord<'a> {
    /// Key, if any.
    pub key: Option<&'a [u8]>,
    /// Value.
    pub value: &'a [u8],
    /// Timestamp in ms since the Unix epoch.
    pub timestamp_ms: i64,
}

/// Most bytes one record with this key and value (and no headers) takes
/// inside an uncompressed batch: its varints at their longest.
pub fn record_bytes(key: Option<&[u8]>, value: &[u8]) -> usize {
    let header_count = 1;
    VARINT_BYTES_MAX // length
        + 1 // attributes
        + VARLONG_BYTES_MAX // timestamp delta
        + VARINT_BYTES_MAX // offset delta
        + VARINT_BYTES_MAX + key.map_or(0, <[u8]>::len)
        + VARINT_BYTES_MAX + value.len()
        + header_count
}

/// Builds a batch in place, record by record, then seals it (compressing
/// its records if asked) with its CRC.
#[derive(Debug)]
pub struct BatchBuilder {
    buf: Vec<u8>,
    count: u32,
    first_timestamp_ms: i64,
    max_timestamp_ms: i64,
    compression: Compression,
    /// One record's body, reused.
    scratch: Vec<u8>,
}

impl BatchBuilder {
    /// Starts an empty uncompressed batch for an idempotent producer (or -1
    /// ids for none).
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
            compression: Compression::None,
            scratch: Vec::new(),
        }
    }

    /// Compresses the records with `codec` when finished.
    pub fn compressed(mut self, codec: Compression) -> Self {
        self.compression = codec;
        self
    }

    /// Records added so far.
    pub fn len(&self) -> u32 {
        self.count
    }

    /// True before the first record.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes the batch takes so far, uncompressed.
    pub fn size_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Appends one record with a value and no headers.
    pub fn push(&mut self, record: NewRecord<'_>) {
        self.push_full(record.key, Some(record.value), &[], record.timestamp_ms);
    }

    /// Appends one record: a key or null, a value or null (a tombstone),
    /// headers.
    pub fn push_full(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[RecordHeader<'_>],
        timestamp_ms: i64,
    ) {
        if self.count == 0 {
            self.first_timestamp_ms = timestamp_ms;
            self.max_timestamp_ms = timestamp_ms;
        }
        self.max_timestamp_ms = self.max_timestamp_ms.max(timestamp_ms);
        let body = &mut self.scratch;
        body.clear();
        body.push(0); // attributes
        varint::put_varlong(body, timestamp_ms.wrapping_sub(self.first_timestamp_ms));
        varint::put_varint(body, self.count as i32);
        put_bytes(body, key);
        put_bytes(body, value);
        varint::put_varint(body, headers.len() as i32);
        for h in headers {
            put_bytes(body, Some(h.key));
            put_bytes(body, h.value);
        }
        varint::put_varint(&mut self.buf, body.len() as i32);
        self.buf.extend_from_slice(body);
        self.count += 1;
    }

    /// Writes the header fields and the CRC; the batch is ready to send.
    /// Call it on a batch with at least one record: brokers refuse empty
    /// ones. The records stay uncompressed should the codec fail (it writes
    /// to memory, so it does not) or grow incompressible records past
    /// [`BATCH_BYTES_MAX`] when they fit uncompressed: the batch is valid
    /// and within the broker's limit either way.
    pub fn finish(mut self) -> Vec<u8> {
        let codec = self.compression;
        if codec != Compression::None {
            let limit = BATCH_BYTES_MAX.max(self.buf.len());
            let packed = codec
                .compress(&self.buf[HEADER_BYTES..])
                .ok()
                .filter(|p| HEADER_BYTES + p.len() <= limit);
            if let Some(packed) = packed {
                self.buf.truncate(HEADER_BYTES);
                self.buf.extend_from_slice(&packed);
                self.buf[21..23].copy_from_slice(&codec.bits().to_be_bytes());
            }
        }
        let b = &mut self.buf;
        b[23..27].copy_from_slice(&self.count.saturating_sub(1).to_be_bytes());
        b[27..35].copy_from_slice(&self.first_timestamp_ms.to_be_bytes());
        b[35..43].copy_from_slice(&self.max_timestamp_ms.to_be_bytes());
        b[57..61].copy_from_slice(&self.count.to_be_bytes());
        header::seal(b);
        self.buf
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => {
            varint::put_varint(out, b.len() as i32);
            out.extend_from_slice(b);
        }
        None => varint::put_varint(out, -1),
    }
}

/// The records of one batch, decompressed if need be, ready to iterate.
#[derive(Debug)]
pub struct BatchRecords<'a> {
    header: BatchHeader,
    records: Cow<'a, [u8]>,
}

/// Checks a batch's CRC and makes its records readable (decompressing them).
pub fn decode(batch: &[u8]) -> Result<BatchRecords<'_>, BatchError> {
    let header = header::validate(batch)?;
    decode_validated(&header, batch)
}

/// Makes the records of a batch whose header and CRC were already checked
/// readable: borrowed as they are, or decompressed (up to
/// [`BATCH_DECOMPRESSED_BYTES_MAX`]).
pub fn decode_validated<'a>(
    header: &BatchHeader,
    batch: &'a [u8],
) -> Result<BatchRecords<'a>, BatchError> {
    let body = batch
        .get(HEADER_BYTES..header.total_bytes())
        .ok_or(BatchError::Truncated {
            needed: header.total_bytes(),
            have: batch.len(),
        })?;
    let records = match Compression::from_attributes(header.attributes)? {
        Compression::None => Cow::Borrowed(body),
        codec => Cow::Owned(codec.decompress(body, BATCH_DECOMPRESSED_BYTES_MAX)?),
    };
    Ok(BatchRecords {
        header: *header,
        records,
    })
}

/// Kafka's search inside one batch for ListOffsets by timestamp: the
/// offset and timestamp of the first record whose timestamp is at least
/// `timestamp_ms` (with LogAppendTime every record carries the batch's
/// largest timestamp). `None` when no record is that new.
pub fn first_record_since(
    batch: &[u8],
    timestamp_ms: i64,
) -> Result<Option<(u64, i64)>, BatchError> {
    let records = decode(batch)?;
    for record in records.iter() {
        let record = record?;
        if record.timestamp_ms >= timestamp_ms {
            return Ok(Some((record.offset, record.timestamp_ms)));
        }
    }
    Ok(None)
}

impl BatchRecords<'_> {
    /// The batch's header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The records one by one, without allocating. Stops after the first
    /// that does not parse (reported as an error).
    pub fn iter(&self) -> impl Iterator<Item = Result<Record<'_>, BatchError>> {
        let header = self.header;
        let body: &[u8] = &self.records;
        let mut at = 0;
        let mut i = 0u32;
        std::iter::from_fn(move || {
            if i >= header.record_count {
                return None;
            }
            let index = i;
            match parse_record(body, at, index, &header) {
                Ok((next, record)) => {
                    at = next;
                    i += 1;
                    Some(Ok(record))
                }
                Err(fault) => {
                    i = header.record_count;
                    Some(Err(BatchError::BadRecord { index, fault }))
                }
            }
        })
    }

    /// Checks that the records are exactly `record_count` well-formed ones
    /// filling the batch: each record's length, every field, and offset
    /// deltas 0, 1, 2, … . The loop ends at the first fault, so a lying
    /// count costs no more than the bytes present.
    pub fn check(&self) -> Result<(), BatchError> {
        let body: &[u8] = &self.records;
        let mut at = 0;
        for index in 0..self.header.record_count {
            if at >= body.len() {
                return Err(BatchError::MissingRecords {
                    declared: self.header.record_count,
                    found: index,
                });
            }
            at = parse_record(body, at, index, &self.header)
                .map_err(|fault| BatchError::BadRecord { index, fault })?
                .0;
        }
        if at != body.len() {
            return Err(BatchError::TrailingBytes {
                bytes: body.len() - at,
                record_count: self.header.record_count,
            });
        }
        Ok(())
    }
}

/// Reads fields out of one record, never past its end.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn varint_fault(field: RecordField, e: VarintError, max_bytes: usize) -> RecordFault {
        match e {
            VarintError::Truncated => RecordFault::Truncated(field),
            VarintError::TooLong => RecordFault::VarintTooLong { field, max_bytes },
            VarintError::OutOfRange => RecordFault::VarintOutOfRange(field),
        }
    }

    fn varint(&mut self, field: RecordField) -> Result<i32, RecordFault> {
        let (v, n) = varint::read_varint(&self.bytes[self.at..])
            .map_err(|e| Self::varint_fault(field, e, VARINT_BYTES_MAX))?;
        self.at += n;
        Ok(v)
    }

    fn varlong(&mut self, field: RecordField) -> Result<i64, RecordFault> {
        let (v, n) = varint::read_varlong(&self.bytes[self.at..])
            .map_err(|e| Self::varint_fault(field, e, VARLONG_BYTES_MAX))?;
        self.at += n;
        Ok(v)
    }

    fn byte(&mut self, field: RecordField) -> Result<u8, RecordFault> {
        let b = *self
            .bytes
            .get(self.at)
            .ok_or(RecordFault::Truncated(field))?;
        self.at += 1;
        Ok(b)
    }

    /// A count or length that must not be negative.
    fn count(&mut self, field: RecordField) -> Result<u32, RecordFault> {
        let n = self.varint(field)?;
        u32::try_from(n).map_err(|_| RecordFault::NegativeLength { field, length: n })
    }

    /// A varint-length-prefixed byte string; `None` for length -1 when
    /// `nullable`. The length is checked against the bytes left first.
    fn sized(
        &mut self,
        length: RecordField,
        data: RecordField,
        nullable: bool,
    ) -> Result<Option<&'a [u8]>, RecordFault> {
        let n = self.varint(length)?;
        if n == -1 && nullable {
            return Ok(None);
        }
        let n = u32::try_from(n).map_err(|_| RecordFault::NegativeLength {
            field: length,
            length: n,
        })?;
        if n as usize > self.left() {
            return Err(RecordFault::Overflow {
                field: data,
                length: n,
                left: self.left(),
            });
        }
        let s = &self.bytes[self.at..self.at + n as usize];
        self.at += n as usize;
        Ok(Some(s))
    }
}

fn read_header<'a>(c: &mut Cursor<'a>) -> Result<RecordHeader<'a>, RecordFault> {
    let key = c
        .sized(RecordField::HeaderKeyLength, RecordField::HeaderKey, false)?
        .unwrap_or_default();
    let value = c.sized(
        RecordField::HeaderValueLength,
        RecordField::HeaderValue,
        true,
    )?;
    Ok(RecordHeader { key, value })
}

/// Parses the record at `start` of `body` (a batch's records, decompressed),
/// which must be the batch's record number `index`; returns where the next
/// record starts. Checks every field of the layout in the module doc.
fn parse_record<'a>(
    body: &'a [u8],
    start: usize,
    index: u32,
    h: &BatchHeader,
) -> Result<(usize, Record<'a>), RecordFault> {
    let mut outer = Cursor {
        bytes: body,
        at: start,
    };
    let declared = outer.count(RecordField::Length)?;
    if declared as usize > outer.left() {
        return Err(RecordFault::Overflow {
            field: RecordField::Length,
            length: declared,
            left: outer.left(),
        });
    }
    let end = outer.at + declared as usize;
    let mut f = Cursor {
        bytes: &body[..end],
        at: outer.at,
    };
    f.byte(RecordField::Attributes)?;
    let ts_delta = f.varlong(RecordField::TimestampDelta)?;
    let offset_delta = f.varint(RecordField::OffsetDelta)?;
    if i64::from(offset_delta) != i64::from(index) {
        return Err(RecordFault::OffsetDelta {
            found: offset_delta,
            expected: index,
        });
    }
    let key = f.sized(RecordField::KeyLength, RecordField::Key, true)?;
    let value = f.sized(RecordField::ValueLength, RecordField::Value, true)?;
    let header_count = f.count(RecordField::HeaderCount)?;
    let headers_start = f.at;
    // Each header takes at least 2 bytes or fails: bounded by the record.
    for _ in 0..header_count {
        read_header(&mut f)?;
    }
    if f.at != end {
        return Err(RecordFault::LengthMismatch {
            declared,
            used: f.at - outer.at,
        });
    }
    let timestamp_ms = if h.attributes & LOG_APPEND_TIME_BIT != 0 {
        h.max_timestamp_ms
    } else {
        h.first_timestamp_ms.wrapping_add(ts_delta)
    };
    let record = Record {
        offset: h.base_offset.saturating_add(u64::from(index)),
        timestamp_ms,
        key,
        value,
        headers: RecordHeaders {
            bytes: &body[headers_start..end],
            count: header_count,
        },
    };
    Ok((end, record))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn given_records_out_of_time_order_when_searching_should_find_first_reaching_each_timestamp() {
        let mut b = BatchBuilder::new(-1, 0, -1, 64);
        for ts in [50, 30, 70, 70, 10] {
            b.push(NewRecord {
                key: None,
                value: b"v",
                timestamp_ms: ts,
            });
        }
        let mut bytes = b.compressed(Compression::Gzip).finish();
        header::stamp(&mut bytes, 100, 0);
        for (asked, found) in [
            (i64::MIN, Some((100, 50))),
            (50, Some((100, 50))),
            (51, Some((102, 70))),
            (70, Some((102, 70))),
            (71, None),
        ] {
            assert_eq!(first_record_since(&bytes, asked).unwrap(), found, "{asked}");
        }
    }
}
