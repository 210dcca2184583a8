//! Bounded binary encoding helpers shared by the snapshot and txn codecs.
//!
//! Integers are little-endian; strings and byte strings are a `u32` length then the
//! bytes. Every length is checked against a named maximum *before* anything is
//! allocated, so hostile input cannot make the reader allocate without bound.

use std::io::{Read, Write};

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

/// Writes an ACL list: count, then (perms, scheme, id) per entry.
pub(crate) fn write_acl<W: Write>(w: &mut CrcWriter<W>, acl: &[Acl]) -> std::io::Result<()> {
    w.u32(acl.len() as u32)?;
    for a in acl {
        w.i32(a.perms.0)?;
        w.bytes(a.id.scheme.as_bytes())?;
        w.bytes(a.id.id.as_bytes())?;
    }
    Ok(())
}

/// Reads an ACL list written by [`write_acl`], bounded by [`ACL_ENTRIES_MAX`].
pub(crate) fn read_acl<R: Read>(r: &mut CrcReader<R>) -> Result<Vec<Acl>, DecodeError> {
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

/// A writer that counts bytes and keeps a running CRC32C.
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
            inner,
            crc,
            written: 0,
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

    pub(crate) fn offset(&self) -> u64 {
        self.offset
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
