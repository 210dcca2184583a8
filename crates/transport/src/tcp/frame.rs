//! The TCP wire format and its decoder. Pure code: no I/O, so tests (and proptest)
//! can feed it any bytes.
//!
//! Every frame:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | body length `L` (big-endian `u32`): bytes after this field, `14 + payload` |
//! | 4 | 1 | wire version ([`WIRE_VERSION`]) |
//! | 5 | 1 | kind: 1 = hello, 2 = data |
//! | 6 | 8 | sender id (big-endian `u64`) |
//! | 14 | 4 | CRC32C over bytes 4..14 and the payload |
//! | 18 | `L - 14` | payload |
//!
//! The length is checked against the maximum payload size before any buffer is
//! grown for the frame, and the CRC before the frame is returned.

use bytes::{Buf, Bytes, BytesMut};

use crate::NodeId;

/// Version byte of this wire format. A frame with another version is rejected.
pub const WIRE_VERSION: u8 = 1;

/// Bytes before the payload: length (4), version (1), kind (1), sender (8), CRC (4).
pub const HEADER_LEN: usize = 18;

/// Bytes counted by the length field besides the payload.
const BODY_OVERHEAD: usize = HEADER_LEN - 4;

/// Largest payload the length field can describe.
pub const MAX_ENCODABLE_PAYLOAD_BYTES: usize = u32::MAX as usize - BODY_OVERHEAD;

/// Default maximum payload of one frame (16 MiB); configurable per transport.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024 * 1024;

/// Payload size of a hello frame: the id the sender believes it is talking to. Also
/// the decoder's limit until the handshake is done, so an unidentified peer cannot
/// make us buffer a large frame.
pub const HELLO_PAYLOAD_LEN: usize = 8;

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameKind {
    /// Handshake: sender id in the header, intended receiver id in the payload.
    Hello,
    /// An opaque frame for the layer above.
    Data,
}

impl FrameKind {
    fn to_byte(self) -> u8 {
        match self {
            FrameKind::Hello => 1,
            FrameKind::Data => 2,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(FrameKind::Hello),
            2 => Some(FrameKind::Data),
            _ => None,
        }
    }
}

/// A decoded, CRC-checked frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// What the frame carries.
    pub kind: FrameKind,
    /// The id the sender put in the header.
    pub sender: NodeId,
    /// The payload.
    pub payload: Bytes,
}

impl Frame {
    /// For a hello frame, the id its sender means to reach.
    pub fn hello_target(&self) -> Result<NodeId, FrameError> {
        if self.kind != FrameKind::Hello || self.payload.len() != HELLO_PAYLOAD_LEN {
            return Err(FrameError::BadHello {
                len_bytes: self.payload.len(),
            });
        }
        let mut p = &self.payload[..];
        Ok(NodeId(p.get_u64()))
    }
}

/// Why bytes could not be decoded into a frame. Any of these closes the connection.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The length field announces more than the maximum; nothing was allocated.
    #[error("frame payload of {len_bytes} bytes exceeds the maximum of {max_bytes}")]
    TooLarge {
        /// Payload length the header announced.
        len_bytes: u64,
        /// The configured maximum.
        max_bytes: usize,
    },
    /// The length field is smaller than the fixed header.
    #[error("frame body length {len_bytes} is shorter than the header")]
    TooShort {
        /// The body length the header announced.
        len_bytes: u32,
    },
    /// A wire version this build does not speak.
    #[error("unsupported wire version {0}")]
    UnsupportedVersion(u8),
    /// A kind byte this build does not know.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// The CRC does not match the content.
    #[error("checksum mismatch: header says {expected:#010x}, content gives {actual:#010x}")]
    BadChecksum {
        /// CRC in the header.
        expected: u32,
        /// CRC computed over the received bytes.
        actual: u32,
    },
    /// A hello frame whose payload is not exactly one id.
    #[error("malformed hello payload of {len_bytes} bytes")]
    BadHello {
        /// The payload length received.
        len_bytes: usize,
    },
}

/// The 18-byte header for `payload`. Write it, then the payload.
///
/// Fails with `TooLarge` only if the payload cannot be described by a `u32` length.
pub fn encode_header(
    kind: FrameKind,
    sender: NodeId,
    payload: &[u8],
) -> Result<[u8; HEADER_LEN], FrameError> {
    let body_len =
        u32::try_from(payload.len() + BODY_OVERHEAD).map_err(|_| FrameError::TooLarge {
            len_bytes: payload.len() as u64,
            max_bytes: u32::MAX as usize,
        })?;
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(&body_len.to_be_bytes());
    h[4] = WIRE_VERSION;
    h[5] = kind.to_byte();
    h[6..14].copy_from_slice(&sender.0.to_be_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&h[4..14]), payload);
    h[14..18].copy_from_slice(&crc.to_be_bytes());
    Ok(h)
}

/// A whole frame (header and payload) in one buffer.
pub fn encode_frame(
    kind: FrameKind,
    sender: NodeId,
    payload: &[u8],
) -> Result<Vec<u8>, FrameError> {
    let header = encode_header(kind, sender, payload)?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(payload);
    Ok(out)
}

/// A hello frame from `sender` meant for `target`.
pub fn encode_hello(sender: NodeId, target: NodeId) -> Vec<u8> {
    // An 8-byte payload always fits a u32 length.
    encode_frame(FrameKind::Hello, sender, &target.0.to_be_bytes()).unwrap_or_default()
}

/// Checked header fields.
struct Header {
    payload_len: usize,
    kind: FrameKind,
    sender: NodeId,
    crc: u32,
}

/// Parses and checks a header (length bound, version, kind) from the first
/// [`HEADER_LEN`] bytes of `buf`; `Ok(None)` if fewer bytes are there.
fn parse_header(buf: &[u8], max_payload_bytes: usize) -> Result<Option<Header>, FrameError> {
    let Some(h) = buf.get(..HEADER_LEN) else {
        // The length alone may already be enough to reject the frame early.
        if let Some(len) = buf.get(..4) {
            check_len(
                u32::from_be_bytes([len[0], len[1], len[2], len[3]]),
                max_payload_bytes,
            )?;
        }
        return Ok(None);
    };
    let body_len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let payload_len = check_len(body_len, max_payload_bytes)?;
    if h[4] != WIRE_VERSION {
        return Err(FrameError::UnsupportedVersion(h[4]));
    }
    let kind = FrameKind::from_byte(h[5]).ok_or(FrameError::UnknownKind(h[5]))?;
    let mut sender = &h[6..14];
    let mut crc = &h[14..18];
    Ok(Some(Header {
        payload_len,
        kind,
        sender: NodeId(sender.get_u64()),
        crc: crc.get_u32(),
    }))
}

fn check_len(body_len: u32, max_payload_bytes: usize) -> Result<usize, FrameError> {
    let body = body_len as usize;
    if body < BODY_OVERHEAD {
        return Err(FrameError::TooShort {
            len_bytes: body_len,
        });
    }
    let payload_len = body - BODY_OVERHEAD;
    if payload_len > max_payload_bytes {
        return Err(FrameError::TooLarge {
            len_bytes: payload_len as u64,
            max_bytes: max_payload_bytes,
        });
    }
    Ok(payload_len)
}

/// Incremental decoder: feed it bytes as they arrive, take frames out.
///
/// Memory bound: the buffer holds at most one frame (≤ `HEADER_LEN + max payload`)
/// plus the last chunk fed, as long as the caller takes frames out after each
/// [`feed`](Self::feed). After an error the decoder is poisoned and the connection
/// must be closed.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    max_payload_bytes: usize,
    failed: Option<FrameError>,
}

impl FrameDecoder {
    /// A decoder rejecting payloads above `max_payload_bytes`.
    pub fn new(max_payload_bytes: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            max_payload_bytes,
            failed: None,
        }
    }

    /// Changes the payload limit (e.g. from [`HELLO_PAYLOAD_LEN`] during the handshake
    /// to the transport's maximum afterwards).
    pub fn set_max_payload_bytes(&mut self, max_payload_bytes: usize) {
        self.max_payload_bytes = max_payload_bytes;
    }

    /// Appends received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// Bytes received but not yet returned as a frame. Non-zero at end of stream means
    /// the stream was truncated mid-frame.
    pub fn buffered_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Capacity of the internal buffer (for memory-bound tests).
    pub fn capacity_bytes(&self) -> usize {
        self.buf.capacity()
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed, or the error that
    /// makes the stream unusable (returned again on every later call).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.try_next() {
            Err(e) => {
                self.failed = Some(e.clone());
                self.buf = BytesMut::new();
                Err(e)
            }
            ok => ok,
        }
    }

    fn try_next(&mut self) -> Result<Option<Frame>, FrameError> {
        let Some(h) = parse_header(&self.buf, self.max_payload_bytes)? else {
            return Ok(None);
        };
        let total = HEADER_LEN + h.payload_len;
        if self.buf.len() < total {
            // The length is within bounds, so reserving the rest is bounded too.
            self.buf.reserve(total - self.buf.len());
            return Ok(None);
        }
        let actual = crc32c::crc32c_append(
            crc32c::crc32c(&self.buf[4..14]),
            &self.buf[HEADER_LEN..total],
        );
        if actual != h.crc {
            return Err(FrameError::BadChecksum {
                expected: h.crc,
                actual,
            });
        }
        let mut frame = self.buf.split_to(total);
        frame.advance(HEADER_LEN);
        Ok(Some(Frame {
            kind: h.kind,
            sender: h.sender,
            payload: frame.freeze(),
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests

    use proptest::prelude::*;

    use super::*;

    fn data(sender: u64, payload: &[u8]) -> Vec<u8> {
        encode_frame(FrameKind::Data, NodeId(sender), payload).unwrap()
    }

    #[test]
    fn round_trip_byte_by_byte() {
        let mut wire = data(7, b"hello");
        wire.extend(encode_hello(NodeId(7), NodeId(3)));
        wire.extend(data(7, b""));
        let mut d = FrameDecoder::new(1024);
        let mut got = Vec::new();
        for b in wire {
            d.feed(&[b]);
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].payload, Bytes::from_static(b"hello"));
        assert_eq!(got[0].sender, NodeId(7));
        assert_eq!(got[1].hello_target(), Ok(NodeId(3)));
        assert_eq!(got[2].kind, FrameKind::Data);
        assert_eq!(d.buffered_bytes(), 0);
    }

    #[test]
    fn oversized_length_rejected_from_the_length_field_alone() {
        let mut d = FrameDecoder::new(100);
        d.feed(&(10_000u32 + 14).to_be_bytes());
        assert_eq!(
            d.next_frame(),
            Err(FrameError::TooLarge {
                len_bytes: 10_000,
                max_bytes: 100
            })
        );
        assert!(d.capacity_bytes() < 100);
        // Poisoned: same error again.
        d.feed(&data(1, b"x"));
        assert!(d.next_frame().is_err());
    }

    #[test]
    fn corrupt_byte_fails_checksum() {
        let mut wire = data(1, b"payload");
        wire[HEADER_LEN + 2] ^= 0x40;
        let mut d = FrameDecoder::new(100);
        d.feed(&wire);
        assert!(matches!(
            d.next_frame(),
            Err(FrameError::BadChecksum { .. })
        ));
    }

    #[test]
    fn header_checks() {
        let mut short = data(1, b"");
        short[3] = 3;
        let mut d = FrameDecoder::new(100);
        d.feed(&short);
        assert_eq!(d.next_frame(), Err(FrameError::TooShort { len_bytes: 3 }));

        let mut version = data(1, b"");
        version[4] = 9;
        let mut d = FrameDecoder::new(100);
        d.feed(&version);
        assert_eq!(d.next_frame(), Err(FrameError::UnsupportedVersion(9)));

        let mut kind = data(1, b"");
        kind[5] = 0;
        let mut d = FrameDecoder::new(100);
        d.feed(&kind);
        assert_eq!(d.next_frame(), Err(FrameError::UnknownKind(0)));

        let f = Frame {
            kind: FrameKind::Hello,
            sender: NodeId(1),
            payload: Bytes::new(),
        };
        assert_eq!(f.hello_target(), Err(FrameError::BadHello { len_bytes: 0 }));
    }

    #[test]
    fn truncated_stream_leaves_bytes_buffered() {
        let wire = data(1, b"abcdef");
        let mut d = FrameDecoder::new(100);
        d.feed(&wire[..wire.len() - 1]);
        assert_eq!(d.next_frame(), Ok(None));
        assert_eq!(d.buffered_bytes(), wire.len() - 1);
    }

    proptest! {
        /// Arbitrary bytes in arbitrary chunks: no panic, and the buffer never grows
        /// beyond one maximum frame plus one chunk (times the allocator's slack).
        #[test]
        fn arbitrary_bytes_never_panic_or_overallocate(
            bytes in proptest::collection::vec(any::<u8>(), 0..4096),
            chunk in 1usize..512,
            max in 0usize..1024,
        ) {
            let mut d = FrameDecoder::new(max);
            for piece in bytes.chunks(chunk) {
                d.feed(piece);
                while let Ok(Some(f)) = d.next_frame() {
                    prop_assert!(f.payload.len() <= max);
                }
                prop_assert!(d.capacity_bytes() <= 2 * (HEADER_LEN + max + chunk));
            }
        }

        /// Valid frames interleaved with arbitrary chunking decode exactly.
        #[test]
        fn valid_frames_round_trip(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20),
            chunk in 1usize..700,
            sender in any::<u64>(),
        ) {
            let mut wire = Vec::new();
            for p in &payloads {
                wire.extend(data(sender, p));
            }
            let mut d = FrameDecoder::new(300);
            let mut got = Vec::new();
            for piece in wire.chunks(chunk) {
                d.feed(piece);
                while let Some(f) = d.next_frame().unwrap() {
                    prop_assert_eq!(f.sender, NodeId(sender));
                    got.push(f.payload.to_vec());
                }
            }
            prop_assert_eq!(got, payloads);
        }

        /// Flipping any single bit of a valid frame never yields a different frame.
        #[test]
        fn single_bit_flip_is_detected(
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            bit in any::<usize>(),
        ) {
            let mut wire = data(5, &payload);
            let i = bit % (wire.len() * 8);
            wire[i / 8] ^= 1 << (i % 8);
            let mut d = FrameDecoder::new(1024);
            d.feed(&wire);
            let decoded = d.next_frame();
            prop_assert!(!matches!(decoded, Ok(Some(_))), "accepted corrupted frame {:?}", decoded);
        }
    }
}
