//! Kafka's record varints: zigzag-encoded signed integers, 7 bits a byte,
//! low group first, the top bit of each byte saying another follows. A
//! varint (32 bits) takes at most 5 bytes, a varlong (64 bits) at most 10;
//! longer forms and last bytes with bits past the width are refused, never
//! wrapped. Not the protocol's unsigned varints of flexible versions.

/// Longest varint (32-bit) form.
pub const VARINT_BYTES_MAX: usize = 5;
/// Longest varlong (64-bit) form.
pub const VARLONG_BYTES_MAX: usize = 10;

/// Why a varint does not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarintError {
    /// The bytes end before the varint does.
    Truncated,
    /// More than the longest form's bytes.
    TooLong,
    /// The last byte carries bits past the width.
    OutOfRange,
}

fn put_unsigned(out: &mut Vec<u8>, mut u: u64) {
    while u >= 0x80 {
        out.push((u as u8) | 0x80);
        u >>= 7;
    }
    out.push(u as u8);
}

fn unsigned_len(mut u: u64) -> usize {
    let mut n = 1;
    while u >= 0x80 {
        u >>= 7;
        n += 1;
    }
    n
}

fn zigzag32(v: i32) -> u64 {
    u64::from(((v << 1) ^ (v >> 31)) as u32)
}

fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Appends `v` as a zigzag varint.
pub fn put_varint(out: &mut Vec<u8>, v: i32) {
    put_unsigned(out, zigzag32(v));
}

/// Appends `v` as a zigzag varlong.
pub fn put_varlong(out: &mut Vec<u8>, v: i64) {
    put_unsigned(out, zigzag64(v));
}

/// Bytes `v` takes as a varint.
pub fn varint_len(v: i32) -> usize {
    unsigned_len(zigzag32(v))
}

/// Bytes `v` takes as a varlong.
pub fn varlong_len(v: i64) -> usize {
    unsigned_len(zigzag64(v))
}

/// Reads an unsigned group sequence of at most `max_bytes` bytes whose value
/// fits in `bits`; returns it and the bytes it took.
fn read_unsigned(bytes: &[u8], max_bytes: usize, bits: u32) -> Result<(u64, usize), VarintError> {
    let mut value = 0u64;
    for i in 0..max_bytes {
        let b = *bytes.get(i).ok_or(VarintError::Truncated)?;
        let group = u64::from(b & 0x7f);
        let shift = 7 * i as u32;
        // The bits of this group that land at or past `bits` must be zero.
        if shift + 7 > bits && group >> (bits - shift) != 0 {
            return Err(VarintError::OutOfRange);
        }
        value |= group << shift;
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(VarintError::TooLong)
}

/// Reads a zigzag varint at the start of `bytes`; returns it and its length.
pub fn read_varint(bytes: &[u8]) -> Result<(i32, usize), VarintError> {
    let (u, n) = read_unsigned(bytes, VARINT_BYTES_MAX, 32)?;
    let u = u as u32;
    Ok((((u >> 1) as i32) ^ -((u & 1) as i32), n))
}

/// Reads a zigzag varlong at the start of `bytes`; returns it and its length.
pub fn read_varlong(bytes: &[u8]) -> Result<(i64, usize), VarintError> {
    let (u, n) = read_unsigned(bytes, VARLONG_BYTES_MAX, 64)?;
    Ok((((u >> 1) as i64) ^ -((u & 1) as i64), n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn given_known_values_when_encoding_should_match_kafkas_bytes() {
        let cases: &[(i32, &[u8])] = &[
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (300, &[0xd8, 0x04]),
            (i32::MAX, &[0xfe, 0xff, 0xff, 0xff, 0x0f]),
            (i32::MIN, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        ];
        for &(v, want) in cases {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out, want, "{v}");
            assert_eq!(varint_len(v), want.len(), "{v}");
            assert_eq!(read_varint(want), Ok((v, want.len())), "{v}");
        }
    }

    #[test]
    fn given_malformed_varints_when_reading_should_refuse_each_way() {
        assert_eq!(read_varint(&[]), Err(VarintError::Truncated));
        assert_eq!(read_varint(&[0x80, 0x80]), Err(VarintError::Truncated));
        assert_eq!(
            read_varint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]),
            Err(VarintError::TooLong),
            "a sixth byte"
        );
        assert_eq!(
            read_varint(&[0xff, 0xff, 0xff, 0xff, 0x1f]),
            Err(VarintError::OutOfRange),
            "a 33rd bit"
        );
        assert_eq!(
            read_varlong(&[0x80; 11]),
            Err(VarintError::TooLong),
            "an eleventh byte"
        );
        let mut past_64 = vec![0xff; 9];
        past_64.push(0x02);
        assert_eq!(read_varlong(&past_64), Err(VarintError::OutOfRange));
        let mut max = vec![0xff; 9];
        max.push(0x01);
        assert_eq!(read_varlong(&max), Ok((i64::MIN, 10)));
    }

    proptest! {
        #[test]
        fn given_any_int_when_round_tripping_should_read_back_what_was_written(v: i32, w: i64) {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            put_varlong(&mut out, w);
            let (got_v, n) = read_varint(&out).expect("varint");
            prop_assert_eq!((got_v, n), (v, varint_len(v)));
            let (got_w, m) = read_varlong(&out[n..]).expect("varlong");
            prop_assert_eq!((got_w, m), (w, varlong_len(w)));
        }

        #[test]
        fn given_any_bytes_when_reading_should_never_panic_nor_take_more_than_the_longest_form(
            bytes in proptest::collection::vec(any::<u8>(), 0..12)
        ) {
            if let Ok((_, n)) = read_varint(&bytes) {
                prop_assert!(n <= VARINT_BYTES_MAX);
            }
            if let Ok((_, n)) = read_varlong(&bytes) {
                prop_assert!(n <= VARLONG_BYTES_MAX);
            }
        }
    }
}
