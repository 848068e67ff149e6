//! Tests of the edge checks and, through them, of the record codec.

use super::super::header::{seal, stamp, HEADER_BYTES, MAGIC};
use super::super::varint::{put_varint, put_varlong};
use super::super::{
    decode, BatchBuilder, Compression, NewRecord, RecordFault, RecordField, RecordHeader,
};
use super::*;
use crate::limits::BATCH_DECOMPRESSED_BYTES_MAX;
use proptest::prelude::*;

fn sample(codec: Compression) -> Vec<u8> {
    let mut b = BatchBuilder::new(7, 0, 3, 128).compressed(codec);
    b.push(NewRecord {
        key: Some(b"k1"),
        value: b"v1",
        timestamp_ms: 1000,
    });
    let h = [RecordHeader {
        key: b"trace",
        value: Some(b"abc"),
    }];
    b.push_full(None, None, &h, 1005);
    b.push_full(Some(b""), Some(b"third"), &[], 990);
    b.finish()
}

#[test]
fn given_built_batch_when_checked_and_read_should_round_trip_for_every_codec() {
    for codec in Compression::ALL {
        let mut checked = CheckedBatch::check(sample(codec)).expect("a built batch checks");
        checked.stamp(40, 3);
        assert_eq!(checked.header().base_offset, 40);
        let bytes = checked.into_bytes();
        let decoded = decode(&bytes).expect("decodes");
        assert_eq!(decoded.header().codec_bits(), codec.bits(), "{codec}");
        let recs: Vec<_> = decoded.iter().collect::<Result<_, _>>().expect("records");
        assert_eq!(recs.len(), 3, "{codec}");
        assert_eq!(
            (recs[0].key, recs[0].value),
            (Some(&b"k1"[..]), Some(&b"v1"[..]))
        );
        assert_eq!((recs[0].offset, recs[0].timestamp_ms), (40, 1000));
        assert_eq!(
            (recs[1].key, recs[1].value),
            (None, None),
            "null key and value"
        );
        let hs: Vec<_> = recs[1].headers.iter().collect();
        assert_eq!(
            hs,
            [RecordHeader {
                key: b"trace",
                value: Some(b"abc")
            }]
        );
        assert_eq!((recs[1].offset, recs[1].timestamp_ms), (41, 1005));
        assert_eq!(
            (recs[2].key, recs[2].value),
            (Some(&b""[..]), Some(&b"third"[..]))
        );
        assert_eq!(recs[2].timestamp_ms, 990, "a negative timestamp delta");
        assert!(recs[2].headers.is_empty());
        assert_eq!(decoded.header().max_timestamp_ms, 1005);
    }
}

/// A record's fields as raw numbers, so a test can write any of them wrong;
/// `raw_*` replace a field's encoding with the given bytes.
#[derive(Clone)]
struct Raw {
    length: Option<i32>,
    offset_delta: i32,
    raw_offset_delta: Option<Vec<u8>>,
    raw_timestamp_delta: Option<Vec<u8>>,
    key_length: i32,
    key: Vec<u8>,
    value_length: i32,
    value: Vec<u8>,
    header_count: i32,
    headers: Vec<u8>,
    cut: usize,
}

fn raw(offset_delta: i32) -> Raw {
    Raw {
        length: None,
        offset_delta,
        raw_offset_delta: None,
        raw_timestamp_delta: None,
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
        let mut body = vec![0u8];
        match &self.raw_timestamp_delta {
            Some(b) => body.extend_from_slice(b),
            None => put_varlong(&mut body, 7),
        }
        match &self.raw_offset_delta {
            Some(b) => body.extend_from_slice(b),
            None => put_varint(&mut body, self.offset_delta),
        }
        put_varint(&mut body, self.key_length);
        body.extend_from_slice(&self.key);
        put_varint(&mut body, self.value_length);
        body.extend_from_slice(&self.value);
        put_varint(&mut body, self.header_count);
        body.extend_from_slice(&self.headers);
        body.truncate(body.len() - self.cut);
        let mut out = Vec::new();
        put_varint(&mut out, self.length.unwrap_or(body.len() as i32));
        out.extend(body);
        out
    }
}

/// A sealed batch (CRC right) around `records`, compressed with `codec`,
/// claiming `count` records with the given last offset delta, and `tail`
/// bytes after them.
fn sealed_with(
    codec: Compression,
    records: &[Raw],
    count: u32,
    last_offset_delta: u32,
    tail: &[u8],
) -> Vec<u8> {
    let mut b = vec![0u8; HEADER_BYTES];
    b[16] = MAGIC;
    b[21..23].copy_from_slice(&codec.bits().to_be_bytes());
    b[23..27].copy_from_slice(&last_offset_delta.to_be_bytes());
    b[43..51].copy_from_slice(&(-1i64).to_be_bytes());
    b[53..57].copy_from_slice(&(-1i32).to_be_bytes());
    b[57..61].copy_from_slice(&count.to_be_bytes());
    let mut body: Vec<u8> = records.iter().flat_map(Raw::bytes).collect();
    body.extend_from_slice(tail);
    b.extend(codec.compress(&body).expect("compress"));
    seal(&mut b);
    b
}

fn sealed(records: &[Raw], count: u32, last_offset_delta: u32, tail: &[u8]) -> Vec<u8> {
    sealed_with(Compression::None, records, count, last_offset_delta, tail)
}

fn check(bytes: &[u8]) -> Result<(), BatchError> {
    CheckedBatch::check(bytes.to_vec()).map(|_| ())
}

fn header_bytes(key_length: i32, key: &[u8], value_length: i32, value: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    put_varint(&mut h, key_length);
    h.extend_from_slice(key);
    put_varint(&mut h, value_length);
    h.extend_from_slice(value);
    h
}

#[test]
fn given_well_formed_raw_records_when_checking_should_accept() {
    let no_key = Raw {
        key_length: -1,
        key: vec![],
        ..raw(1)
    };
    let null_value = Raw {
        value_length: -1,
        value: vec![],
        ..raw(2)
    };
    let with_header = Raw {
        header_count: 2,
        headers: [
            header_bytes(1, b"h", 1, b"x"),
            header_bytes(0, b"", -1, b""),
        ]
        .concat(),
        ..raw(3)
    };
    let all = [raw(0), no_key, null_value, with_header];
    for codec in Compression::ALL {
        assert_eq!(
            check(&sealed_with(codec, &all, 4, 3, &[])),
            Ok(()),
            "{codec}"
        );
    }
}

#[test]
fn given_malformed_record_in_crc_valid_batch_when_checking_should_refuse_with_the_fault() {
    use RecordFault::*;
    let second = |r: Raw| sealed(&[raw(0), r], 2, 1, &[]);
    let bad = |fault: RecordFault| BatchError::BadRecord { index: 1, fault };
    // raw(n)'s fields take 1 + 1 + 1 + 1 + 2 + 1 + 3 + 1 = 11 bytes after its length.
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
            "negative offset delta",
            second(raw(-1)),
            bad(OffsetDelta {
                found: -1,
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
            "record ends inside the attributes",
            second(Raw {
                length: Some(0),
                ..raw(1)
            }),
            bad(Truncated(RecordField::Attributes)),
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
            sealed(&[raw(0)], 2, 1, &[0x80]),
            bad(Truncated(RecordField::Length)),
        ),
        (
            "negative record length",
            second(Raw {
                length: Some(-3),
                ..raw(1)
            }),
            bad(NegativeLength {
                field: RecordField::Length,
                length: -3,
            }),
        ),
        (
            "overlong length varint",
            sealed(&[raw(0)], 2, 1, &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),
            bad(VarintTooLong {
                field: RecordField::Length,
                max_bytes: 5,
            }),
        ),
        (
            "length varint past 32 bits",
            sealed(&[raw(0)], 2, 1, &[0xff, 0xff, 0xff, 0xff, 0x7f]),
            bad(VarintOutOfRange(RecordField::Length)),
        ),
        (
            "overlong offset delta varint",
            second(Raw {
                raw_offset_delta: Some(vec![0x82, 0x80, 0x80, 0x80, 0x80, 0x00]),
                ..raw(1)
            }),
            bad(VarintTooLong {
                field: RecordField::OffsetDelta,
                max_bytes: 5,
            }),
        ),
        (
            "overlong timestamp delta varlong",
            second(Raw {
                raw_timestamp_delta: Some(vec![0x80; 11]),
                ..raw(1)
            }),
            bad(VarintTooLong {
                field: RecordField::TimestampDelta,
                max_bytes: 10,
            }),
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
            "value length below -1",
            second(Raw {
                value_length: -7,
                value: vec![],
                ..raw(1)
            }),
            bad(NegativeLength {
                field: RecordField::ValueLength,
                length: -7,
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
                left: 7,
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
                left: 4,
            }),
        ),
        (
            "record length past the batch",
            second(Raw {
                length: Some(i32::MAX),
                ..raw(1)
            }),
            bad(Overflow {
                field: RecordField::Length,
                length: i32::MAX as u32,
                left: 11,
            }),
        ),
        (
            "bytes left inside a record",
            second(Raw {
                headers: vec![9, 9],
                ..raw(1)
            }),
            bad(LengthMismatch {
                declared: 13,
                used: 11,
            }),
        ),
        (
            "header count with no headers",
            second(Raw {
                header_count: i32::MAX,
                ..raw(1)
            }),
            bad(Truncated(RecordField::HeaderKeyLength)),
        ),
        (
            "negative header count",
            second(Raw {
                header_count: -1,
                ..raw(1)
            }),
            bad(NegativeLength {
                field: RecordField::HeaderCount,
                length: -1,
            }),
        ),
        (
            "null header key",
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
            "a count of 2^31 over two records",
            sealed(&[raw(0), raw(1)], 1 << 31, (1 << 31) - 1, &[]),
            BatchError::MissingRecords {
                declared: 1 << 31,
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
        (
            "a bad record inside a compressed batch",
            sealed_with(Compression::Zstd, &[raw(0), raw(7)], 2, 1, &[]),
            bad(OffsetDelta {
                found: 7,
                expected: 1,
            }),
        ),
    ];
    for (what, bytes, want) in cases {
        assert_eq!(check(&bytes), Err(want), "{what}");
    }
}

#[test]
fn given_bad_framing_when_checking_should_refuse_before_reading_records() {
    let one = sample(Compression::None);
    let mut two = one.clone();
    two.extend_from_slice(&one);
    assert_eq!(
        check(&two),
        Err(BatchError::NotOneBatch {
            declared: one.len(),
            given: two.len()
        })
    );
    assert!(matches!(
        check(&one[..one.len() - 1]),
        Err(BatchError::Truncated { .. })
    ));
    let mut flipped = one.clone();
    *flipped.last_mut().expect("bytes") ^= 1;
    assert!(matches!(check(&flipped), Err(BatchError::Crc { .. })));
    let mut codec7 = one.clone();
    codec7[22] |= 0x07;
    seal(&mut codec7);
    assert_eq!(check(&codec7), Err(BatchError::UnknownCodec(7)));
    let huge = vec![0u8; BATCH_BYTES_MAX + 1];
    assert_eq!(
        check(&huge),
        Err(BatchError::TooLarge {
            bytes: BATCH_BYTES_MAX + 1,
            limit: BATCH_BYTES_MAX
        })
    );
}

#[test]
fn given_incompressible_records_filling_the_limit_when_finishing_should_stay_uncompressed_within_it(
) {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..BATCH_BYTES_MAX - HEADER_BYTES - 64)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let mut b = BatchBuilder::new(-1, 0, -1, noise.len()).compressed(Compression::Gzip);
    b.push(NewRecord {
        key: None,
        value: &noise,
        timestamp_ms: 0,
    });
    let bytes = b.finish();
    let checked = CheckedBatch::check(bytes).expect("within the limit");
    assert_eq!(
        checked.header().codec_bits(),
        0,
        "gzip would have grown it past the limit"
    );
}

#[test]
fn given_compressed_records_inflating_past_the_limit_when_checking_should_refuse() {
    let bomb = vec![0u8; BATCH_DECOMPRESSED_BYTES_MAX + 1];
    let mut b = vec![0u8; HEADER_BYTES];
    b[16] = MAGIC;
    b[21..23].copy_from_slice(&Compression::Zstd.bits().to_be_bytes());
    b[57..61].copy_from_slice(&1u32.to_be_bytes());
    b.extend(Compression::Zstd.compress(&bomb).expect("compress"));
    seal(&mut b);
    assert!(b.len() < 64 * 1024, "a small batch");
    assert_eq!(
        check(&b),
        Err(BatchError::DecompressedTooLarge {
            codec: Compression::Zstd,
            limit: BATCH_DECOMPRESSED_BYTES_MAX
        })
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
        for _ in 0..1 + next() % 3 {
            let at = HEADER_BYTES + (next() as usize) % (bytes.len() - HEADER_BYTES);
            bytes[at] = match next() % 3 {
                0 => bytes[at] ^ (1 << (next() % 8)),
                1 => 0xff,
                _ => next() as u8,
            };
        }
        seal(&mut bytes);
        match CheckedBatch::check(bytes) {
            Ok(c) => {
                accepted += 1;
                let read = decode(c.as_bytes()).expect("decodes");
                let n = read.iter().collect::<Result<Vec<_>, _>>().map(|r| r.len());
                assert_eq!(n, Ok(6), "an accepted batch reads back whole");
            }
            Err(_) => refused += 1,
        }
    }
    assert!(
        accepted > 0 && refused > 0,
        "the flips hit fields that matter and ones that do not"
    );
}

type Rec = (
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(Vec<u8>, Option<Vec<u8>>)>,
    i64,
);

fn any_record() -> impl Strategy<Value = Rec> {
    let bytes = || proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40));
    let header = (proptest::collection::vec(any::<u8>(), 0..8), bytes());
    (
        bytes(),
        bytes(),
        proptest::collection::vec(header, 0..3),
        -1_000_000i64..1_000_000,
    )
}

fn any_codec() -> impl Strategy<Value = Compression> {
    proptest::sample::select(Compression::ALL.to_vec())
}

proptest! {
    #[test]
    fn given_any_records_when_built_checked_and_read_should_round_trip(
        recs in proptest::collection::vec(any_record(), 1..20),
        codec in any_codec(),
        base in 0u64..1 << 40,
    ) {
        let mut b = BatchBuilder::new(1, 0, 0, 64).compressed(codec);
        for (key, value, headers, ts) in &recs {
            let hs: Vec<RecordHeader<'_>> = headers
                .iter()
                .map(|(k, v)| RecordHeader { key: k, value: v.as_deref() })
                .collect();
            b.push_full(key.as_deref(), value.as_deref(), &hs, *ts);
        }
        let mut checked = CheckedBatch::check(b.finish()).expect("checks");
        checked.stamp(base, 1);
        let decoded = decode(checked.as_bytes()).expect("decodes");
        let got: Vec<_> = decoded.iter().collect::<Result<_, _>>().expect("reads");
        prop_assert_eq!(got.len(), recs.len());
        for (i, (r, (key, value, headers, ts))) in got.iter().zip(&recs).enumerate() {
            prop_assert_eq!(r.offset, base + i as u64);
            prop_assert_eq!(r.timestamp_ms, *ts);
            prop_assert_eq!(r.key, key.as_deref());
            prop_assert_eq!(r.value, value.as_deref());
            let hs: Vec<_> = r.headers.iter().map(|h| (h.key.to_vec(), h.value.map(<[u8]>::to_vec))).collect();
            prop_assert_eq!(&hs, headers);
        }
    }

    #[test]
    fn given_any_record_bytes_in_a_sealed_batch_when_checking_should_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..200),
        count in 0u32..8,
        codec in any_codec(),
    ) {
        let mut b = vec![0u8; HEADER_BYTES];
        b[16] = MAGIC;
        b[21..23].copy_from_slice(&codec.bits().to_be_bytes());
        b[23..27].copy_from_slice(&count.saturating_sub(1).to_be_bytes());
        b[57..61].copy_from_slice(&count.to_be_bytes());
        let packed = if body.first().is_some_and(|&x| x % 2 == 0) {
            codec.compress(&body).expect("compress")
        } else {
            body
        };
        b.extend(packed);
        seal(&mut b);
        if let Ok(c) = CheckedBatch::check(b) {
            let decoded = decode(c.as_bytes()).expect("decodes");
            prop_assert!(decoded.iter().all(|r| r.is_ok()));
        }
    }
}

fn replicated_run() -> Vec<u8> {
    let mut all = Vec::new();
    for (base, epoch) in [(10u64, 1u32), (13, 1), (16, 2)] {
        let mut one = sample(Compression::Gzip);
        stamp(&mut one, base, epoch);
        all.extend(one);
    }
    all
}

#[test]
fn given_fetched_run_with_a_torn_tail_when_checking_replicated_should_keep_the_whole_batches() {
    let mut all = replicated_run();
    let whole = all.len();
    all.extend_from_slice(&sample(Compression::None)[..30]);
    let r = ReplicatedBatches::check(&all).expect("checks");
    let bases: Vec<u64> = r.headers().iter().map(|h| h.base_offset).collect();
    assert_eq!(bases, [10, 13, 16]);
    assert_eq!(r.as_bytes().len(), whole);
    let later = r.from_offset(13);
    assert_eq!(later.headers().len(), 2);
    let (first, bytes) = later.iter().next().expect("a batch");
    assert_eq!((first.base_offset, bytes.len()), (13, first.total_bytes()));
    assert!(later.from_offset(19).is_empty());
    assert!(ReplicatedBatches::check(&[])
        .expect("empty is fine")
        .is_empty());
}

#[test]
fn given_fetched_run_out_of_order_or_corrupt_when_checking_replicated_should_refuse() {
    let len = sample(Compression::Gzip).len();
    let mut gap = replicated_run();
    stamp(&mut gap[len..], 14, 1);
    assert_eq!(
        ReplicatedBatches::check(&gap),
        Err(BatchError::NotContiguous {
            expected: 13,
            got: 14
        })
    );
    let mut back = replicated_run();
    stamp(&mut back[2 * len..], 16, 0);
    assert_eq!(
        ReplicatedBatches::check(&back),
        Err(BatchError::EpochWentBack {
            base_offset: 16,
            epoch: 0,
            previous: 1
        })
    );
    let mut flipped = replicated_run();
    flipped[len + 70] ^= 1;
    assert!(matches!(
        ReplicatedBatches::check(&flipped),
        Err(BatchError::Crc { .. })
    ));
}

#[test]
fn given_log_append_time_when_set_on_a_checked_batch_should_reseal_it_and_give_every_record_that_time(
) {
    for codec in Compression::ALL {
        let mut checked = CheckedBatch::check(sample(codec)).expect("checks");
        checked.set_log_append_time(1_800_000_000_000);
        checked.stamp(9, 2);
        let bytes = checked.into_bytes();
        // The CRC covers the attributes and the max timestamp: still valid.
        let again = CheckedBatch::check(bytes.clone()).expect("still checks after the change");
        assert_eq!(again.header().max_timestamp_ms, 1_800_000_000_000);
        assert_eq!(
            again.header().first_timestamp_ms,
            1000,
            "kept, as Kafka does"
        );
        assert_eq!(again.header().codec_bits(), codec.bits(), "{codec}");
        let decoded = decode(&bytes).expect("decodes");
        let times: Vec<i64> = decoded
            .iter()
            .map(|r| r.expect("record").timestamp_ms)
            .collect();
        assert_eq!(times, vec![1_800_000_000_000; 3], "{codec}");
    }
}
