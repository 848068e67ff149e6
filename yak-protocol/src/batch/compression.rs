//! The four codecs Kafka compresses a batch's records with (attribute bits
//! 0-2): gzip, snappy (the Java client's "xerial" framing when written; both
//! that and a bare snappy block, as librdkafka writes, when read), lz4 (the
//! LZ4 frame format) and zstd. Only the records are compressed, as one
//! stream; the 61-byte header never is. Decompression stops at a limit, so
//! no input makes it allocate more than that.

use super::BatchError;
use std::io::{Read, Write};

/// A batch's compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// Records stored as they are.
    #[default]
    None,
    /// gzip (codec 1).
    Gzip,
    /// snappy (codec 2).
    Snappy,
    /// lz4 frames (codec 3).
    Lz4,
    /// zstd (codec 4).
    Zstd,
}

/// The xerial snappy stream header (snappy-java's `SnappyOutputStream`):
/// magic, then version 1 and compatible version 1, each a big-endian i32.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_BYTES: usize = 16;
/// Input bytes per xerial block, as snappy-java writes them.
const XERIAL_BLOCK_BYTES: usize = 32 * 1024;
/// zstd level, Kafka's default.
const ZSTD_LEVEL: i32 = 3;

impl Compression {
    /// Every codec, `None` first.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The codec named by a batch's attribute bits 0-2.
    pub fn from_attributes(attributes: u16) -> Result<Compression, BatchError> {
        match attributes & super::header::COMPRESSION_MASK {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(BatchError::UnknownCodec(other)),
        }
    }

    /// Its attribute bits.
    pub fn bits(self) -> u16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// Its name, as the command line spells it.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// Compresses `records` (a batch's record bytes) with this codec.
    pub fn compress(self, records: &[u8]) -> std::io::Result<Vec<u8>> {
        match self {
            Compression::None => Ok(records.to_vec()),
            Compression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(records)?;
                e.finish()
            }
            Compression::Snappy => xerial_compress(records),
            Compression::Lz4 => {
                let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
                e.write_all(records)?;
                e.finish().map_err(std::io::Error::other)
            }
            Compression::Zstd => zstd::stream::encode_all(records, ZSTD_LEVEL),
        }
    }

    /// Decompresses a batch's records; refuses past `limit` bytes out,
    /// having allocated at most about that much.
    pub fn decompress(self, data: &[u8], limit: usize) -> Result<Vec<u8>, BatchError> {
        let fail = |reason: String| BatchError::Decompress {
            codec: self,
            reason,
        };
        let out = match self {
            Compression::None => Ok(data.to_vec()),
            Compression::Gzip => read_capped(flate2::read::MultiGzDecoder::new(data), limit),
            Compression::Snappy => return snappy_decompress(data, limit),
            Compression::Lz4 => read_capped(lz4_flex::frame::FrameDecoder::new(data), limit),
            Compression::Zstd => {
                zstd::stream::read::Decoder::new(data).and_then(|d| read_capped(d, limit))
            }
        }
        .map_err(|e| fail(e.to_string()))?;
        if out.len() > limit {
            return Err(BatchError::DecompressedTooLarge { codec: self, limit });
        }
        Ok(out)
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Reads `r` to its end or to one byte past `limit`, whichever comes first.
fn read_capped(r: impl Read, limit: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    r.take(limit as u64 + 1).read_to_end(&mut out)?;
    Ok(out)
}

fn xerial_compress(records: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(XERIAL_HEADER_BYTES + records.len() / 2);
    out.extend_from_slice(&XERIAL_MAGIC);
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    let mut encoder = snap::raw::Encoder::new();
    for chunk in records.chunks(XERIAL_BLOCK_BYTES) {
        let block = encoder.compress_vec(chunk).map_err(std::io::Error::other)?;
        let len = u32::try_from(block.len()).map_err(std::io::Error::other)?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&block);
    }
    Ok(out)
}

/// A xerial stream (blocks, each a big-endian length and a raw snappy
/// block) or a single raw snappy block. Each block's declared output length
/// is checked against what is left of `limit` before it is allocated.
fn snappy_decompress(data: &[u8], limit: usize) -> Result<Vec<u8>, BatchError> {
    let codec = Compression::Snappy;
    let fail = |reason: String| BatchError::Decompress { codec, reason };
    let mut out = Vec::new();
    let append = |block: &[u8], out: &mut Vec<u8>| -> Result<(), BatchError> {
        let n = snap::raw::decompress_len(block).map_err(|e| fail(e.to_string()))?;
        if n > limit - out.len() {
            return Err(BatchError::DecompressedTooLarge { codec, limit });
        }
        let start = out.len();
        out.resize(start + n, 0);
        snap::raw::Decoder::new()
            .decompress(block, &mut out[start..])
            .map_err(|e| fail(e.to_string()))?;
        Ok(())
    };
    if !data.starts_with(&XERIAL_MAGIC) {
        append(data, &mut out)?;
        return Ok(out);
    }
    let mut rest = data
        .get(XERIAL_HEADER_BYTES..)
        .ok_or_else(|| fail("xerial header cut short".into()))?;
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| fail("xerial block length cut short".into()))?;
        let len = u32::from_be_bytes(*len) as usize;
        let block = tail
            .get(..len)
            .ok_or_else(|| fail(format!("xerial block of {len} bytes runs past the end")))?;
        append(block, &mut out)?;
        rest = &tail[len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..100_000u32)
            .flat_map(|i| (i % 251).to_be_bytes())
            .collect()
    }

    #[test]
    fn given_each_codec_when_round_tripping_should_give_back_the_input() {
        let data = sample();
        for codec in Compression::ALL {
            let packed = codec.compress(&data).expect("compress");
            if codec != Compression::None {
                assert!(packed.len() < data.len() / 2, "{codec} compresses");
            }
            let back = codec.decompress(&packed, data.len()).expect("decompress");
            assert_eq!(back, data, "{codec}");
            assert_eq!(
                Compression::from_attributes(codec.bits() | 0x18),
                Ok(codec),
                "{codec}: only bits 0-2 name the codec"
            );
        }
        assert_eq!(
            Compression::from_attributes(5),
            Err(BatchError::UnknownCodec(5))
        );
    }

    #[test]
    fn given_output_past_the_limit_when_decompressing_should_refuse_without_growing_past_it() {
        let zeros = vec![0u8; 1 << 20];
        for codec in &Compression::ALL[1..] {
            let packed = codec.compress(&zeros).expect("compress");
            assert_eq!(
                codec.decompress(&packed, 1000),
                Err(BatchError::DecompressedTooLarge {
                    codec: *codec,
                    limit: 1000
                }),
                "{codec}"
            );
        }
    }

    #[test]
    fn given_a_bare_snappy_block_when_decompressing_should_read_it_as_librdkafka_writes_it() {
        let data = sample();
        let raw = snap::raw::Encoder::new()
            .compress_vec(&data)
            .expect("compress");
        assert_eq!(Compression::Snappy.decompress(&raw, data.len()), Ok(data));
    }

    #[test]
    fn given_garbage_or_cut_streams_when_decompressing_should_never_panic_nor_invent_bytes() {
        let data = sample();
        for codec in &Compression::ALL[1..] {
            let packed = codec.compress(&data).expect("compress");
            for cut in [0, 1, 5, 17, packed.len() / 2, packed.len() - 1] {
                // A cut stream is refused or gives back a prefix (lz4
                // frames read up to the cut end mark), never other bytes.
                if let Ok(out) = codec.decompress(&packed[..cut], data.len()) {
                    assert!(data.starts_with(&out), "{codec} cut at {cut}");
                }
            }
            let mut flipped = packed.clone();
            for b in flipped.iter_mut().skip(20).step_by(7) {
                *b ^= 0x5a;
            }
            let _ = codec.decompress(&flipped, data.len());
        }
    }
}
