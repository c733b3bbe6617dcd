//! Record-batch compression codecs, as Kafka clients write them: gzip, snappy (raw or
//! Java's xerial framing), lz4 (frame format) and zstd. The log stores compressed batches
//! as they arrive; readers decompress the records section.

use std::io::{Read, Write};
use std::sync::Arc;

use super::batch::{BatchError, Compression};

/// Largest records section a batch may decompress to: a limit on decompression bombs (a
/// batch of a few kilobytes that expands to gigabytes). Far above any real batch.
pub const MAX_DECOMPRESSED_BYTES: usize = 256 * 1024 * 1024;

/// Why a records section could not be compressed or decompressed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CodecError {
    #[error("{codec}: {source}")]
    Io {
        codec: &'static str,
        #[source]
        source: Arc<std::io::Error>,
    },
    #[error("snappy: {0}")]
    Snappy(#[source] snap::Error),
    /// Java's xerial snappy framing is cut short.
    #[error("snappy: {0}")]
    Xerial(&'static str),
    #[error("{codec}: records expand to more than {MAX_DECOMPRESSED_BYTES} bytes; the batch is refused")]
    TooLarge { codec: &'static str },
}

fn io(codec: &'static str) -> impl Fn(std::io::Error) -> CodecError {
    move |e| CodecError::Io { codec, source: Arc::new(e) }
}

/// Reads all of `r`, refusing more than `MAX_DECOMPRESSED_BYTES`.
fn read_bounded(codec: &'static str, mut r: impl Read, hint: usize) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(hint.min(MAX_DECOMPRESSED_BYTES));
    (&mut r).take(MAX_DECOMPRESSED_BYTES as u64 + 1).read_to_end(&mut out).map_err(io(codec))?;
    if out.len() > MAX_DECOMPRESSED_BYTES {
        return Err(CodecError::TooLarge { codec });
    }
    Ok(out)
}

/// Decompresses a batch's records section.
pub fn decompress(codec: Compression, data: &[u8]) -> Result<Vec<u8>, BatchError> {
    let hint = data.len().saturating_mul(4);
    let out = match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => read_bounded("gzip", flate2::read::GzDecoder::new(data), hint),
        Compression::Snappy => snappy_decompress(data),
        Compression::Lz4 => lz4::Decoder::new(data).map_err(io("lz4")).and_then(|d| read_bounded("lz4", d, hint)),
        Compression::Zstd => zstd::stream::read::Decoder::new(data).map_err(io("zstd")).and_then(|d| read_bounded("zstd", d, hint)),
    };
    out.map_err(BatchError::Decompress)
}

const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";

/// One raw snappy block, checking its declared length before allocating.
fn snappy_block(block: &[u8], so_far: usize) -> Result<Vec<u8>, CodecError> {
    let len = snap::raw::decompress_len(block).map_err(CodecError::Snappy)?;
    if so_far.saturating_add(len) > MAX_DECOMPRESSED_BYTES {
        return Err(CodecError::TooLarge { codec: "snappy" });
    }
    snap::raw::Decoder::new().decompress_vec(block).map_err(CodecError::Snappy)
}

fn snappy_decompress(data: &[u8]) -> Result<Vec<u8>, CodecError> {
    if data.len() >= 16 && data.starts_with(XERIAL_MAGIC) {
        // Java's xerial framing: magic, version, compatible version, then blocks of
        // (4-byte big-endian length, raw snappy).
        let mut out = Vec::new();
        let mut pos = 16;
        while pos < data.len() {
            let len_bytes = data.get(pos..pos + 4).ok_or(CodecError::Xerial("truncated xerial block length"))?;
            let len = u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]) as usize;
            pos += 4;
            let block = data.get(pos..pos.saturating_add(len)).ok_or(CodecError::Xerial("truncated xerial block"))?;
            out.extend(snappy_block(block, out.len())?);
            pos += len;
        }
        return Ok(out);
    }
    snappy_block(data, 0)
}

/// Compresses a records section (snappy in xerial framing, as the Java client writes it).
pub fn compress(codec: Compression, data: &[u8]) -> Result<Vec<u8>, BatchError> {
    let bad = |codec: &'static str, e: std::io::Error| BatchError::Compress(io(codec)(e));
    match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(data).map_err(|e| bad("gzip", e))?;
            enc.finish().map_err(|e| bad("gzip", e))
        }
        Compression::Snappy => {
            let mut out = Vec::with_capacity(data.len() / 2 + 32);
            out.extend_from_slice(XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            for block in data.chunks(32 * 1024) {
                let c = snap::raw::Encoder::new().compress_vec(block).map_err(|e| BatchError::Compress(CodecError::Snappy(e)))?;
                out.extend_from_slice(&(c.len() as u32).to_be_bytes());
                out.extend_from_slice(&c);
            }
            Ok(out)
        }
        Compression::Lz4 => {
            let mut enc = lz4::EncoderBuilder::new().block_mode(lz4::BlockMode::Independent).build(Vec::new()).map_err(|e| bad("lz4", e))?;
            enc.write_all(data).map_err(|e| bad("lz4", e))?;
            let (out, r) = enc.finish();
            r.map_err(|e| bad("lz4", e))?;
            Ok(out)
        }
        Compression::Zstd => zstd::stream::encode_all(data, 3).map_err(|e| bad("zstd", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..100_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        for c in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            let z = compress(c, &data).unwrap();
            assert_eq!(decompress(c, &z).unwrap(), data, "{c:?}");
        }
    }

    #[test]
    fn raw_snappy_is_accepted() {
        let data = b"hello hello hello hello".to_vec();
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(decompress(Compression::Snappy, &raw).unwrap(), data);
    }

    #[test]
    fn a_decompression_bomb_is_refused_not_expanded() {
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..(MAX_DECOMPRESSED_BYTES >> 20) + 1 {
            enc.write_all(&zeros).unwrap();
        }
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
        let err = decompress(Compression::Zstd, &bomb).unwrap_err().to_string();
        assert!(err.contains("expand to more than"), "{err}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for c in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            assert!(decompress(c, b"\x00\x01garbage").is_err());
        }
    }
}
