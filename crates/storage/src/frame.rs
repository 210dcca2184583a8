//! On-disk framing of log records and segment headers.
//!
//! Record: `len: u32 LE | crc: u32 LE | zxid: u64 LE | payload[len]`, where `crc` is
//! CRC32C over `len`, `zxid` and the payload. An all-zero record header marks the end
//! of the data in a segment (segments are preallocated with zeros); its CRC can never
//! match because zxid 0 is invalid.
//!
//! Segment header (32 bytes): `magic[8] | prev_zxid: u64 | name_zxid: u64 |
//! crc: u32 (over the first 24 bytes) | reserved: u32 (0)`.

/// Bytes in a record header.
pub const RECORD_HEADER_BYTES: usize = 16;
/// Bytes in a segment header.
pub const SEGMENT_HEADER_BYTES: usize = 32;
/// Magic at the start of every log segment.
pub const SEGMENT_MAGIC: [u8; 8] = *b"ENSLOG01";

/// A decoded record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// Payload length.
    pub len: u32,
    /// Stored checksum.
    pub crc: u32,
    /// The record's zxid.
    pub zxid: u64,
}

impl RecordHeader {
    /// Decodes 16 bytes.
    pub fn decode(bytes: &[u8; RECORD_HEADER_BYTES]) -> Self {
        RecordHeader {
            len: u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            crc: u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
            zxid: u64_at(bytes, 8),
        }
    }

    /// True for the all-zero header that marks the end of a segment's data.
    pub fn is_end_marker(&self) -> bool {
        self.len == 0 && self.crc == 0 && self.zxid == 0
    }
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// CRC32C over a record's length, zxid and payload.
pub fn record_crc(len: u32, zxid: u64, payload: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&len.to_le_bytes());
    let crc = crc32c::crc32c_append(crc, &zxid.to_le_bytes());
    crc32c::crc32c_append(crc, payload)
}

/// Appends one encoded record to `out`. The caller has checked the payload length.
pub fn encode_record(out: &mut Vec<u8>, zxid: u64, payload: &[u8]) {
    // Lengths are checked against MAX_RECORD_BYTES (< u32::MAX) before encoding.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&record_crc(len, zxid, payload).to_le_bytes());
    out.extend_from_slice(&zxid.to_le_bytes());
    out.extend_from_slice(payload);
}

/// Encoded size of a record with a payload of `payload_len` bytes.
pub fn record_bytes(payload_len: usize) -> usize {
    RECORD_HEADER_BYTES + payload_len
}

/// A decoded segment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The last zxid of the previous segment (or the base of the log).
    pub prev_zxid: u64,
    /// The zxid in the file name; no record in the segment is below it.
    pub name_zxid: u64,
}

impl SegmentHeader {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_BYTES] {
        let mut out = [0u8; SEGMENT_HEADER_BYTES];
        out[..8].copy_from_slice(&SEGMENT_MAGIC);
        out[8..16].copy_from_slice(&self.prev_zxid.to_le_bytes());
        out[16..24].copy_from_slice(&self.name_zxid.to_le_bytes());
        let crc = crc32c::crc32c(&out[..24]);
        out[24..28].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and checks a header; `Err` carries the reason.
    pub fn decode(bytes: &[u8; SEGMENT_HEADER_BYTES]) -> Result<Self, &'static str> {
        if bytes[..8] != SEGMENT_MAGIC {
            return Err("bad segment magic");
        }
        let stored = u32::from_le_bytes([bytes[24], bytes[25], bytes[26], bytes[27]]);
        if stored != crc32c::crc32c(&bytes[..24]) {
            return Err("segment header checksum mismatch");
        }
        if bytes[28..32] != [0, 0, 0, 0] {
            return Err("segment header reserved bytes are not zero");
        }
        Ok(SegmentHeader {
            prev_zxid: u64_at(bytes, 8),
            name_zxid: u64_at(bytes, 16),
        })
    }
}

/// Outcome of parsing one record from a byte slice that holds the rest of a segment.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A valid record: its zxid, the payload range within the slice, and its total size.
    Record {
        /// The record's zxid.
        zxid: u64,
        /// Payload start within the slice.
        payload_start: usize,
        /// Total encoded size.
        size: usize,
    },
    /// The all-zero end marker, or fewer bytes left than a header and all of them zero.
    End,
    /// Not a valid record; the reason.
    Bad(&'static str),
}

/// Parses the record at the start of `rest`. Never allocates; checks the length
/// against `max_payload` and the slice before touching the payload.
pub fn parse_record(rest: &[u8], max_payload: usize) -> Parsed {
    if rest.len() < RECORD_HEADER_BYTES {
        if rest.iter().all(|b| *b == 0) {
            return Parsed::End;
        }
        return Parsed::Bad("truncated record header");
    }
    let mut hdr = [0u8; RECORD_HEADER_BYTES];
    hdr.copy_from_slice(&rest[..RECORD_HEADER_BYTES]);
    let header = RecordHeader::decode(&hdr);
    if header.is_end_marker() {
        return Parsed::End;
    }
    let len = header.len as usize;
    if len > max_payload {
        return Parsed::Bad("record length exceeds the maximum record size");
    }
    if rest.len() - RECORD_HEADER_BYTES < len {
        return Parsed::Bad("record length points past the end of the file");
    }
    let payload = &rest[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + len];
    if header.zxid == 0 {
        return Parsed::Bad("record with zxid 0");
    }
    if record_crc(header.len, header.zxid, payload) != header.crc {
        return Parsed::Bad("record checksum mismatch");
    }
    Parsed::Record {
        zxid: header.zxid,
        payload_start: RECORD_HEADER_BYTES,
        size: RECORD_HEADER_BYTES + len,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn record_round_trip_and_end_marker() {
        let mut buf = Vec::new();
        encode_record(&mut buf, 7, b"hello");
        buf.extend_from_slice(&[0u8; 40]);
        match parse_record(&buf, 1024) {
            Parsed::Record { zxid, size, .. } => {
                assert_eq!(zxid, 7);
                assert_eq!(size, 21);
                assert_eq!(parse_record(&buf[size..], 1024), Parsed::End);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let mut buf = Vec::new();
        encode_record(&mut buf, 0x1_0000_0003, b"payload bytes");
        for bit in 0..buf.len() * 8 {
            let mut damaged = buf.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(
                matches!(parse_record(&damaged, 1024), Parsed::Bad(_)),
                "flip of bit {bit} not detected"
            );
        }
    }

    #[test]
    fn segment_header_round_trip_and_damage() {
        let h = SegmentHeader {
            prev_zxid: 3,
            name_zxid: 4,
        };
        let bytes = h.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(h));
        for bit in 0..SEGMENT_HEADER_BYTES * 8 {
            let mut damaged = bytes;
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(SegmentHeader::decode(&damaged).is_err(), "bit {bit}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_record(&bytes, 64);
        }
    }
}
