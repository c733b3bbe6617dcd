//! Kafka record batches (magic 2): the unit the log stores, exactly as the wire carries it.
//!
//! The log only needs the 61-byte header to append (assign the base offset, check the CRC
//! and producer sequence); readers decode records from the stored bytes.

use super::varint::{Cursor, put_varint, put_varlong, varint_len, varlong_len};

/// Bytes before `batchLength`'s payload: baseOffset (8) + batchLength (4).
pub const LOG_OVERHEAD: usize = 12;
/// The fixed header of a v2 batch.
pub const HEADER_LEN: usize = 61;
/// Largest batch the log accepts.
pub const MAX_BATCH_BYTES: usize = 64 * 1024 * 1024;

const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;

#[derive(Debug, Clone, thiserror::Error)]
pub enum BatchError {
    #[error("record batch is truncated: {0}")]
    Truncated(&'static str),
    #[error("record batch has magic {0}; only magic 2 (Kafka 0.11+) batches are supported")]
    UnsupportedMagic(i8),
    #[error("record batch length {0} is invalid")]
    BadLength(i32),
    #[error("record batch CRC mismatch (stored {stored:#010x}, computed {computed:#010x}); the batch is corrupt")]
    Crc { stored: u32, computed: u32 },
    #[error("record batch uses {0} compression, which this build cannot decode yet")]
    UnsupportedCompression(&'static str),
    #[error("malformed record in batch: {0}")]
    MalformedRecord(&'static str),
    #[error("cannot decompress record batch: {0}")]
    Decompress(#[source] super::compression::CodecError),
    #[error("cannot compress record batch: {0}")]
    Compress(#[source] super::compression::CodecError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// Parses a codec name (`none`, `gzip`, `snappy`, `lz4`, `zstd`).
    pub fn parse(s: &str) -> Option<Compression> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "none" | "uncompressed" | "producer" => Compression::None,
            "gzip" => Compression::Gzip,
            "snappy" => Compression::Snappy,
            "lz4" => Compression::Lz4,
            "zstd" => Compression::Zstd,
            _ => return None,
        })
    }

    fn attribute(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// The parsed fixed header of a record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(a)
}
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

impl BatchHeader {
    /// Reads the length prefix only: how many bytes the batch starting at `buf` occupies.
    pub fn peek_total_len(buf: &[u8]) -> Result<usize, BatchError> {
        if buf.len() < LOG_OVERHEAD {
            return Err(BatchError::Truncated("length prefix"));
        }
        let len = be_i32(buf, 8);
        if len < (HEADER_LEN - LOG_OVERHEAD) as i32 || len as usize > MAX_BATCH_BYTES {
            return Err(BatchError::BadLength(len));
        }
        Ok(LOG_OVERHEAD + len as usize)
    }

    /// Parses the 61-byte header at the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<Self, BatchError> {
        if buf.len() < HEADER_LEN {
            return Err(BatchError::Truncated("header"));
        }
        let h = BatchHeader {
            base_offset: be_i64(buf, 0),
            batch_length: be_i32(buf, 8),
            partition_leader_epoch: be_i32(buf, 12),
            magic: buf[16] as i8,
            crc: be_i32(buf, CRC_OFFSET) as u32,
            attributes: be_i16(buf, ATTRIBUTES_OFFSET),
            last_offset_delta: be_i32(buf, 23),
            base_timestamp: be_i64(buf, 27),
            max_timestamp: be_i64(buf, 35),
            producer_id: be_i64(buf, 43),
            producer_epoch: be_i16(buf, 51),
            base_sequence: be_i32(buf, 53),
            records_count: be_i32(buf, 57),
        };
        if h.magic != 2 {
            return Err(BatchError::UnsupportedMagic(h.magic));
        }
        if h.batch_length < (HEADER_LEN - LOG_OVERHEAD) as i32 || h.batch_length as usize > MAX_BATCH_BYTES {
            return Err(BatchError::BadLength(h.batch_length));
        }
        if h.last_offset_delta < 0 || h.records_count < 0 {
            return Err(BatchError::MalformedRecord("negative record count"));
        }
        Ok(h)
    }

    pub fn total_len(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    pub fn compression(&self) -> Result<Compression, BatchError> {
        match self.attributes & 0x7 {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            _ => Err(BatchError::MalformedRecord("unknown compression codec")),
        }
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }

    pub fn uses_log_append_time(&self) -> bool {
        self.attributes & 0x08 != 0
    }

    pub fn has_producer(&self) -> bool {
        self.producer_id >= 0
    }

    /// The sequence number of the batch's last record (sequences wrap at i32::MAX).
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return -1;
        }
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        (last % (i64::from(i32::MAX) + 1)) as i32
    }
}

/// Checks the CRC-32C of a whole batch.
pub fn verify_crc(batch: &[u8]) -> Result<(), BatchError> {
    if batch.len() < HEADER_LEN {
        return Err(BatchError::Truncated("header"));
    }
    let stored = be_i32(batch, CRC_OFFSET) as u32;
    let computed = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    if stored != computed {
        return Err(BatchError::Crc { stored, computed });
    }
    Ok(())
}

/// Rewrites the base offset in place. The CRC does not cover it, so the batch stays valid.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Sets the log-append-time attribute and max timestamp, recomputing the CRC.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attrs = be_i16(batch, ATTRIBUTES_OFFSET) | 0x08;
    batch[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attrs.to_be_bytes());
    batch[35..43].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// The marker a control batch carries: the end of a producer's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlKind {
    Abort,
    Commit,
}

/// The transaction marker in `batch`, when it is a control batch (its only record's key is
/// version i16 = 0, type i16: 0 abort, 1 commit).
pub fn control_kind(batch: &[u8]) -> Option<ControlKind> {
    let header = BatchHeader::parse(batch).ok()?;
    if !header.is_control() {
        return None;
    }
    let (h, records) = payload(batch).ok()?;
    let record = RecordIter::over(h, &records).next()?.ok()?;
    match record.key? {
        [_, _, 0, 0, ..] => Some(ControlKind::Abort),
        [_, _, 0, 1, ..] => Some(ControlKind::Commit),
        _ => None,
    }
}

/// A control batch ending a producer's transaction (what a transaction coordinator writes
/// into every partition the transaction touched).
pub fn control_batch(producer_id: i64, producer_epoch: i16, kind: ControlKind, coordinator_epoch: i32, now_ms: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new(Some(ProducerStamp { producer_id, producer_epoch, base_sequence: -1 }));
    let key = [0u8, 0, 0, if kind == ControlKind::Commit { 1 } else { 0 }];
    let mut value = vec![0u8, 0];
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    b.push(now_ms, Some(&key), Some(&value), &[]);
    let mut out = b.finish();
    let attrs = be_i16(&out, ATTRIBUTES_OFFSET) | 0x30;
    out[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attrs.to_be_bytes());
    let crc = crc32c::crc32c(&out[ATTRIBUTES_OFFSET..]);
    out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    out
}

/// One record header: a string key and optional bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    pub key: &'a [u8],
    pub value: Option<&'a [u8]>,
}

/// One decoded record, borrowing its key, value and headers from the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Vec<Header<'a>>,
}

/// Iterates the records of one batch.
pub struct RecordIter<'a> {
    header: BatchHeader,
    cursor: Cursor<'a>,
    remaining: i32,
}

/// The records section of a batch, decompressed when needed.
pub fn payload(batch: &[u8]) -> Result<(BatchHeader, std::borrow::Cow<'_, [u8]>), BatchError> {
    let header = BatchHeader::parse(batch)?;
    let total = header.total_len();
    if batch.len() < total {
        return Err(BatchError::Truncated("records"));
    }
    let body = &batch[HEADER_LEN..total];
    match header.compression()? {
        Compression::None => Ok((header, std::borrow::Cow::Borrowed(body))),
        c => Ok((header, std::borrow::Cow::Owned(super::compression::decompress(c, body)?))),
    }
}

impl<'a> RecordIter<'a> {
    /// Records of an uncompressed batch (which must hold the whole batch). Use `payload`
    /// and `over` for batches that may be compressed.
    pub fn new(batch: &'a [u8]) -> Result<Self, BatchError> {
        let header = BatchHeader::parse(batch)?;
        let total = header.total_len();
        if batch.len() < total {
            return Err(BatchError::Truncated("records"));
        }
        let compression = header.compression()?;
        if compression != Compression::None {
            return Err(BatchError::UnsupportedCompression(compression.name()));
        }
        Ok(Self::over(header, &batch[HEADER_LEN..total]))
    }

    /// Records of a (decompressed) records section.
    pub fn over(header: BatchHeader, records: &'a [u8]) -> Self {
        RecordIter { header, cursor: Cursor::new(records), remaining: header.records_count }
    }

    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    fn next_record(&mut self) -> Result<Record<'a>, BatchError> {
        let c = &mut self.cursor;
        let bad = BatchError::MalformedRecord;
        let len = c.varint().ok_or(bad("record length"))?;
        if len < 0 || len as usize > c.remaining() {
            return Err(bad("record length"));
        }
        let start = c.position();
        let _attributes = c.i8().ok_or(bad("attributes"))?;
        let ts_delta = c.varlong().ok_or(bad("timestamp delta"))?;
        let offset_delta = c.varint().ok_or(bad("offset delta"))?;
        let key = c.nullable_bytes().ok_or(bad("key"))?;
        let value = c.nullable_bytes().ok_or(bad("value"))?;
        let header_count = c.varint().ok_or(bad("header count"))?;
        if header_count < 0 {
            return Err(bad("header count"));
        }
        let mut headers = Vec::new();
        for _ in 0..header_count {
            let key = c.nullable_bytes().ok_or(bad("header key"))?.ok_or(bad("null header key"))?;
            let value = c.nullable_bytes().ok_or(bad("header value"))?;
            headers.push(Header { key, value });
        }
        if c.position() - start != len as usize {
            return Err(bad("record length does not match its fields"));
        }
        let timestamp = if self.header.uses_log_append_time() { self.header.max_timestamp } else { self.header.base_timestamp.wrapping_add(ts_delta) };
        Ok(Record { offset: self.header.base_offset + i64::from(offset_delta), timestamp, key, value, headers })
    }
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<Record<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining <= 0 {
            return None;
        }
        self.remaining -= 1;
        let r = self.next_record();
        if r.is_err() {
            self.remaining = 0;
        }
        Some(r)
    }
}

/// Identity of an idempotent producer stamped on a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerStamp {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

/// Builds an uncompressed v2 batch record by record. The base offset is left 0; the log
/// assigns it on append.
pub struct BatchBuilder {
    buf: Vec<u8>,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    producer: Option<ProducerStamp>,
    /// The batch belongs to its producer's open transaction (attribute bit 4).
    transactional: bool,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new(None)
    }
}

impl BatchBuilder {
    pub fn new(producer: Option<ProducerStamp>) -> Self {
        Self::with_capacity(producer, 256)
    }

    /// A builder whose buffer starts with room for `bytes`.
    pub fn with_capacity(producer: Option<ProducerStamp>, bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(bytes.max(HEADER_LEN));
        buf.resize(HEADER_LEN, 0);
        BatchBuilder { buf, count: 0, base_timestamp: 0, max_timestamp: -1, producer, transactional: false }
    }

    /// Sets the producer stamp (known once the batch's records are).
    pub fn stamped(mut self, producer: ProducerStamp) -> Self {
        self.producer = Some(producer);
        self
    }

    /// Marks the batch as part of its producer's transaction.
    pub fn transactional(mut self) -> Self {
        self.transactional = true;
        self
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes the batch occupies so far.
    pub fn size_bytes(&self) -> usize {
        self.buf.len()
    }

    pub fn push(&mut self, timestamp: i64, key: Option<&[u8]>, value: Option<&[u8]>, headers: &[(&[u8], Option<&[u8]>)]) {
        if self.count == 0 {
            self.base_timestamp = timestamp;
        }
        self.max_timestamp = self.max_timestamp.max(timestamp);
        let ts_delta = timestamp.wrapping_sub(self.base_timestamp);
        let offset_delta = self.count;
        let bytes_len = |b: Option<&[u8]>| match b {
            None => varint_len(-1),
            Some(b) => varint_len(b.len() as i32) + b.len(),
        };
        let mut body_len = 1 + varlong_len(ts_delta) + varint_len(offset_delta);
        body_len += bytes_len(key) + bytes_len(value);
        body_len += varint_len(headers.len() as i32);
        for (k, v) in headers {
            body_len += bytes_len(Some(k)) + bytes_len(*v);
        }
        let out = &mut self.buf;
        put_varint(out, body_len as i32);
        out.push(0);
        put_varlong(out, ts_delta);
        put_varint(out, offset_delta);
        let put_bytes = |out: &mut Vec<u8>, b: Option<&[u8]>| match b {
            None => put_varint(out, -1),
            Some(b) => {
                put_varint(out, b.len() as i32);
                out.extend_from_slice(b);
            }
        };
        put_bytes(out, key);
        put_bytes(out, value);
        put_varint(out, headers.len() as i32);
        for (k, v) in headers {
            put_bytes(out, Some(k));
            put_bytes(out, *v);
        }
        self.count += 1;
    }

    /// Completes the batch, compressing its records section with `codec`.
    pub fn finish_compressed(self, codec: Compression) -> Result<Vec<u8>, BatchError> {
        if codec == Compression::None {
            return Ok(self.finish());
        }
        let plain = self.finish();
        let mut out = plain[..HEADER_LEN].to_vec();
        out.extend(super::compression::compress(codec, &plain[HEADER_LEN..])?);
        let batch_length = (out.len() - LOG_OVERHEAD) as i32;
        out[8..12].copy_from_slice(&batch_length.to_be_bytes());
        let attrs = be_i16(&out, ATTRIBUTES_OFFSET) | codec.attribute();
        out[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attrs.to_be_bytes());
        let crc = crc32c::crc32c(&out[ATTRIBUTES_OFFSET..]);
        out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        Ok(out)
    }

    /// Completes the header and CRC and returns the encoded batch.
    pub fn finish(mut self) -> Vec<u8> {
        let b = &mut self.buf;
        let batch_length = (b.len() - LOG_OVERHEAD) as i32;
        let (pid, epoch, seq) = match self.producer {
            Some(p) => (p.producer_id, p.producer_epoch, p.base_sequence),
            None => (-1, -1, -1),
        };
        b[0..8].copy_from_slice(&0i64.to_be_bytes());
        b[8..12].copy_from_slice(&batch_length.to_be_bytes());
        b[12..16].copy_from_slice(&(-1i32).to_be_bytes());
        b[16] = 2;
        b[21..23].copy_from_slice(&(if self.transactional { 0x10i16 } else { 0 }).to_be_bytes());
        b[23..27].copy_from_slice(&(self.count - 1).max(0).to_be_bytes());
        b[27..35].copy_from_slice(&self.base_timestamp.to_be_bytes());
        b[35..43].copy_from_slice(&self.max_timestamp.max(self.base_timestamp).to_be_bytes());
        b[43..51].copy_from_slice(&pid.to_be_bytes());
        b[51..53].copy_from_slice(&epoch.to_be_bytes());
        b[53..57].copy_from_slice(&seq.to_be_bytes());
        b[57..61].copy_from_slice(&self.count.to_be_bytes());
        let crc = crc32c::crc32c(&b[ATTRIBUTES_OFFSET..]);
        b[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        self.buf
    }
}

/// Splits a buffer of concatenated batches into whole batches, stopping at a truncated one.
pub fn split_batches(mut buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let len = BatchHeader::peek_total_len(buf).ok()?;
        if buf.len() < len {
            return None;
        }
        let (head, rest) = buf.split_at(len);
        buf = rest;
        Some(head)
    })
}

/// Splits a buffer that must consist of whole batches only (a produce request's records):
/// a truncated batch or trailing bytes are an error.
pub fn split_batches_exact(mut buf: &[u8]) -> Result<Vec<&[u8]>, BatchError> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let len = BatchHeader::peek_total_len(buf)?;
        if buf.len() < len {
            return Err(BatchError::Truncated("record batch shorter than its length field"));
        }
        let (head, rest) = buf.split_at(len);
        out.push(head);
        buf = rest;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut b = BatchBuilder::new(None);
        b.push(1000, Some(b"k1"), Some(b"v1"), &[]);
        b.push(999, None, Some(b"v2"), &[(b"h", Some(b"x"))]);
        b.push(1005, Some(b"k3"), None, &[]);
        b.finish()
    }

    #[test]
    fn built_batch_decodes_to_same_records() {
        let mut batch = sample();
        verify_crc(&batch).unwrap();
        set_base_offset(&mut batch, 42);
        verify_crc(&batch).unwrap();
        let h = BatchHeader::parse(&batch).unwrap();
        assert_eq!(h.base_offset, 42);
        assert_eq!(h.last_offset(), 44);
        assert_eq!(h.records_count, 3);
        assert_eq!(h.max_timestamp, 1005);
        assert_eq!(h.total_len(), batch.len());
        let recs: Vec<_> = RecordIter::new(&batch).unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].offset, 42);
        assert_eq!(recs[0].key, Some(&b"k1"[..]));
        assert_eq!(recs[1].timestamp, 999);
        assert_eq!(recs[1].key, None);
        assert_eq!(recs[1].headers, vec![Header { key: b"h", value: Some(b"x") }]);
        assert_eq!(recs[2].value, None);
    }

    #[test]
    fn compressed_batches_decode_through_payload() {
        for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            let mut b = BatchBuilder::new(None);
            for i in 0..50 {
                b.push(i, Some(b"key"), Some(format!("value {i}").as_bytes()), &[]);
            }
            let batch = b.finish_compressed(codec).unwrap();
            verify_crc(&batch).unwrap();
            assert!(RecordIter::new(&batch).is_err());
            let (h, p) = payload(&batch).unwrap();
            assert_eq!(h.compression().unwrap(), codec);
            let recs: Vec<_> = RecordIter::over(h, &p).map(|r| r.unwrap()).collect();
            assert_eq!(recs.len(), 50);
            assert_eq!(recs[49].value, Some(&b"value 49"[..]));
        }
    }

    #[test]
    fn flipped_bit_fails_crc() {
        let mut batch = sample();
        let last = batch.len() - 1;
        batch[last] ^= 1;
        assert!(matches!(verify_crc(&batch), Err(BatchError::Crc { .. })));
    }

    #[test]
    fn producer_stamp_is_written() {
        let mut b = BatchBuilder::new(Some(ProducerStamp { producer_id: 7, producer_epoch: 1, base_sequence: 10 }));
        b.push(0, None, Some(b"a"), &[]);
        b.push(0, None, Some(b"b"), &[]);
        let batch = b.finish();
        let h = BatchHeader::parse(&batch).unwrap();
        assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence, h.last_sequence()), (7, 1, 10, 11));
    }

    #[test]
    fn split_batches_stops_at_torn_tail() {
        let one = sample();
        let mut buf = one.clone();
        buf.extend_from_slice(&one);
        buf.extend_from_slice(&one[..20]);
        assert_eq!(split_batches(&buf).count(), 2);
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let batch = sample();
        for cut in 0..batch.len() {
            let _ = BatchHeader::parse(&batch[..cut]);
            if let Ok(it) = RecordIter::new(&batch[..cut]) {
                for r in it {
                    let _ = r;
                }
            }
        }
    }
}
