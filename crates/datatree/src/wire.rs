//! Bounded binary encoding helpers shared by the snapshot and txn codecs.
//!
//! Integers are little-endian; strings and byte strings are a `u32` length then the
//! bytes. Every length is checked against a named maximum *before* anything is
//! allocated, so hostile input cannot make the reader allocate without bound.

use std::io::{Read, Write};

use bytes::Bytes;

use crate::acl::{Acl, Id, Perms};
use crate::error::DecodeError;

/// Largest path accepted from encoded input.
pub const PATH_LEN_MAX: usize = 64 * 1024;
/// Largest data (or txn payload) accepted from encoded input.
pub const DATA_LEN_MAX: usize = 64 * 1024 * 1024;
/// Largest ACL id or scheme accepted from encoded input.
pub const ID_LEN_MAX: usize = 4 * 1024;

/// Most entries in one encoded ACL list.
pub const ACL_ENTRIES_MAX: u32 = 1024;

/// The writes the codecs share, so [`write_acl`] and the txn encoder serve both the
/// checksumming snapshot writer ([`CrcWriter`]) and plain in-memory buffers
/// ([`BufSink`]).
pub(crate) trait WireWrite {
    /// One byte.
    fn u8(&mut self, v: u8) -> std::io::Result<()>;
    /// A little-endian `u32`.
    fn u32(&mut self, v: u32) -> std::io::Result<()>;
    /// A little-endian `i32`.
    fn i32(&mut self, v: i32) -> std::io::Result<()>;
    /// A little-endian `i64`.
    fn i64(&mut self, v: i64) -> std::io::Result<()>;
    /// A `u32` length, then the bytes.
    fn bytes(&mut self, b: &[u8]) -> std::io::Result<()>;
}

/// A [`WireWrite`] straight into an in-memory buffer (any `BufMut`; the txn codec
/// uses `Vec<u8>`): no checksum, no I/O error path. A setData txn encodes in 16-21 ns
/// this way against 47 ns through `std::io::Write` and a checksum-less `CrcWriter`.
pub(crate) struct BufSink<'a, B: bytes::BufMut>(pub(crate) &'a mut B);

impl<B: bytes::BufMut> WireWrite for BufSink<'_, B> {
    #[inline]
    fn u8(&mut self, v: u8) -> std::io::Result<()> {
        self.0.put_u8(v);
        Ok(())
    }
    #[inline]
    fn u32(&mut self, v: u32) -> std::io::Result<()> {
        self.0.put_u32_le(v);
        Ok(())
    }
    #[inline]
    fn i32(&mut self, v: i32) -> std::io::Result<()> {
        self.0.put_i32_le(v);
        Ok(())
    }
    #[inline]
    fn i64(&mut self, v: i64) -> std::io::Result<()> {
        self.0.put_i64_le(v);
        Ok(())
    }
    #[inline]
    fn bytes(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.0.put_u32_le(b.len() as u32);
        self.0.put_slice(b);
        Ok(())
    }
}

impl<W: Write> WireWrite for CrcWriter<W> {
    fn u8(&mut self, v: u8) -> std::io::Result<()> {
        CrcWriter::u8(self, v)
    }
    fn u32(&mut self, v: u32) -> std::io::Result<()> {
        CrcWriter::u32(self, v)
    }
    fn i32(&mut self, v: i32) -> std::io::Result<()> {
        CrcWriter::i32(self, v)
    }
    fn i64(&mut self, v: i64) -> std::io::Result<()> {
        CrcWriter::i64(self, v)
    }
    fn bytes(&mut self, b: &[u8]) -> std::io::Result<()> {
        CrcWriter::bytes(self, b)
    }
}

/// Writes an ACL list: count, then (perms, scheme, id) per entry.
pub(crate) fn write_acl<W: WireWrite>(w: &mut W, acl: &[Acl]) -> std::io::Result<()> {
    w.u32(acl.len() as u32)?;
    for a in acl {
        w.i32(a.perms.0)?;
        w.bytes(a.id.scheme.as_bytes())?;
        w.bytes(a.id.id.as_bytes())?;
    }
    Ok(())
}

/// The reads the codecs share, so [`read_acl`] serves both the streaming snapshot
/// reader and the zero-copy txn reader.
pub(crate) trait WireRead {
    /// One byte.
    fn u8(&mut self) -> Result<u8, DecodeError>;
    /// A little-endian `u32`.
    fn u32(&mut self) -> Result<u32, DecodeError>;
    /// A little-endian `i32`.
    fn i32(&mut self) -> Result<i32, DecodeError>;
    /// A little-endian `i64`.
    fn i64(&mut self) -> Result<i64, DecodeError>;
    /// A length-prefixed UTF-8 string of at most `max` bytes.
    fn string(&mut self, max: usize, what: &str) -> Result<String, DecodeError>;
    /// A corruption error at the current offset.
    fn corrupt(&self, reason: String) -> DecodeError;
}

/// Reads an ACL list written by [`write_acl`], bounded by [`ACL_ENTRIES_MAX`].
pub(crate) fn read_acl<R: WireRead>(r: &mut R) -> Result<Vec<Acl>, DecodeError> {
    let n = r.u32()?;
    if n > ACL_ENTRIES_MAX {
        return Err(r.corrupt(format!("ACL with {n} entries")));
    }
    let mut acl = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let perms = Perms(r.i32()?);
        let scheme = r.string(ID_LEN_MAX, "ACL scheme")?;
        let id = r.string(ID_LEN_MAX, "ACL id")?;
        acl.push(Acl {
            perms,
            id: Id { scheme, id },
        });
    }
    Ok(acl)
}

/// A writer that counts bytes and keeps a running CRC32C (for snapshots; txns, whose
/// container checksums them, go through [`BufSink`]).
pub(crate) struct CrcWriter<W: Write> {
    inner: W,
    crc: u32,
    written: u64,
}

impl<W: Write> CrcWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        CrcWriter {
            inner,
            crc: 0,
            written: 0,
        }
    }

    /// A writer whose CRC continues from `crc` (bytes written earlier elsewhere).
    pub(crate) fn with_crc(inner: W, crc: u32) -> Self {
        CrcWriter {
            crc,
            ..CrcWriter::new(inner)
        }
    }

    pub(crate) fn raw(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.crc = crc32c::crc32c_append(self.crc, b);
        self.written += b.len() as u64;
        self.inner.write_all(b)
    }

    pub(crate) fn u8(&mut self, v: u8) -> std::io::Result<()> {
        self.raw(&[v])
    }

    pub(crate) fn u32(&mut self, v: u32) -> std::io::Result<()> {
        self.raw(&v.to_le_bytes())
    }

    pub(crate) fn i32(&mut self, v: i32) -> std::io::Result<()> {
        self.raw(&v.to_le_bytes())
    }

    pub(crate) fn u64(&mut self, v: u64) -> std::io::Result<()> {
        self.raw(&v.to_le_bytes())
    }

    pub(crate) fn i64(&mut self, v: i64) -> std::io::Result<()> {
        self.raw(&v.to_le_bytes())
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.u32(b.len() as u32)?;
        self.raw(b)
    }

    pub(crate) fn crc(&self) -> u32 {
        self.crc
    }

    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    pub(crate) fn into_inner(self) -> W {
        self.inner
    }
}

/// A reader that tracks its offset and running CRC32C and maps short reads to
/// [`DecodeError::Truncated`].
pub(crate) struct CrcReader<R: Read> {
    inner: R,
    crc: u32,
    offset: u64,
}

impl<R: Read> CrcReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        CrcReader {
            inner,
            crc: 0,
            offset: 0,
        }
    }

    pub(crate) fn crc(&self) -> u32 {
        self.crc
    }

    pub(crate) fn corrupt(&self, reason: impl Into<String>) -> DecodeError {
        DecodeError::Corrupt {
            offset: self.offset,
            reason: reason.into(),
        }
    }

    pub(crate) fn exact(&mut self, buf: &mut [u8]) -> Result<(), DecodeError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => {
                    return Err(DecodeError::Truncated {
                        offset: self.offset + filled as u64,
                    })
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(DecodeError::Io(e.to_string())),
            }
        }
        self.crc = crc32c::crc32c_append(self.crc, buf);
        self.offset += buf.len() as u64;
        Ok(())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut b = [0u8; N];
        self.exact(&mut b)?;
        Ok(b)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    /// A length-prefixed byte string of at most `max` bytes.
    pub(crate) fn bytes(&mut self, max: usize, what: &str) -> Result<Vec<u8>, DecodeError> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(self.corrupt(format!("{what} length {len} exceeds {max}")));
        }
        // Grow with what actually arrives, so a lying length costs no allocation.
        let mut v = Vec::with_capacity(len.min(64 * 1024));
        let mut chunk = [0u8; 8192];
        while v.len() < len {
            let n = (len - v.len()).min(chunk.len());
            self.exact(&mut chunk[..n])?;
            v.extend_from_slice(&chunk[..n]);
        }
        Ok(v)
    }

    /// A length-prefixed UTF-8 string of at most `max` bytes.
    pub(crate) fn string(&mut self, max: usize, what: &str) -> Result<String, DecodeError> {
        let b = self.bytes(max, what)?;
        String::from_utf8(b).map_err(|_| self.corrupt(format!("{what} is not UTF-8")))
    }
}

impl<R: Read> WireRead for CrcReader<R> {
    fn u8(&mut self) -> Result<u8, DecodeError> {
        CrcReader::u8(self)
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        CrcReader::u32(self)
    }
    fn i32(&mut self) -> Result<i32, DecodeError> {
        CrcReader::i32(self)
    }
    fn i64(&mut self) -> Result<i64, DecodeError> {
        CrcReader::i64(self)
    }
    fn string(&mut self, max: usize, what: &str) -> Result<String, DecodeError> {
        CrcReader::string(self, max, what)
    }
    fn corrupt(&self, reason: String) -> DecodeError {
        CrcReader::corrupt(self, reason)
    }
}

/// A reader over a complete in-memory buffer: no checksum, byte strings are
/// zero-copy slices of the input.
pub(crate) struct SliceReader<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl<'a> SliceReader<'a> {
    pub(crate) fn new(buf: &'a Bytes) -> Self {
        SliceReader { buf, pos: 0 }
    }

    pub(crate) fn offset(&self) -> usize {
        self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let buf: &'a Bytes = self.buf;
        let end = self.pos.checked_add(n).filter(|e| *e <= buf.len());
        let Some(end) = end else {
            return Err(DecodeError::Truncated {
                offset: buf.len() as u64,
            });
        };
        let out = &buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn len_prefixed(&mut self, max: usize, what: &str) -> Result<(usize, usize), DecodeError> {
        let len = WireRead::u32(self)? as usize;
        if len > max {
            return Err(self.corrupt(format!("{what} length {len} exceeds {max}")));
        }
        let start = self.pos;
        self.take(len)?;
        Ok((start, start + len))
    }

    /// A length-prefixed UTF-8 string of at most `max` bytes, borrowed from the input
    /// (no allocation).
    pub(crate) fn str_ref(&mut self, max: usize, what: &str) -> Result<&'a str, DecodeError> {
        let (a, b) = self.len_prefixed(max, what)?;
        let buf: &'a Bytes = self.buf;
        std::str::from_utf8(&buf[a..b]).map_err(|_| self.corrupt(format!("{what} is not UTF-8")))
    }

    /// A length-prefixed byte string of at most `max` bytes, borrowed from the input.
    pub(crate) fn bytes_ref(&mut self, max: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        let (a, b) = self.len_prefixed(max, what)?;
        let buf: &'a Bytes = self.buf;
        Ok(&buf[a..b])
    }

    /// `part` (a slice this reader returned) as a handle sharing the input.
    /// `Bytes::slice_ref` panics on a slice from elsewhere: callers pass only what
    /// `bytes_ref` gave them, so that would be a bug here, never bad input.
    pub(crate) fn share(&self, part: &[u8]) -> Bytes {
        self.buf.slice_ref(part)
    }

    /// A length-prefixed byte string of at most `max` bytes, sharing the input.
    pub(crate) fn bytes(&mut self, max: usize, what: &str) -> Result<Bytes, DecodeError> {
        let (a, b) = self.len_prefixed(max, what)?;
        Ok(self.buf.slice(a..b))
    }
}

impl WireRead for SliceReader<'_> {
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_le_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    fn string(&mut self, max: usize, what: &str) -> Result<String, DecodeError> {
        self.str_ref(max, what).map(str::to_owned)
    }
    fn corrupt(&self, reason: String) -> DecodeError {
        DecodeError::Corrupt {
            offset: self.pos as u64,
            reason,
        }
    }
}
