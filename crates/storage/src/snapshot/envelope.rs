//! The CRC-checked envelope around snapshot bytes.
//!
//! `header (24) | body | trailer (24)`:
//! - header: `magic "ENSSNAP1" | zxid: u64 | crc32c(first 16): u32 | 0: u32`
//! - trailer: `magic "ENSSEND1" | body_len: u64 | crc32c(body): u32 | crc32c(first 20): u32`

use std::io::{self, Read, Write};

/// Bytes in the header.
pub(crate) const HEADER_BYTES: u64 = 24;
/// Bytes in the trailer.
pub(crate) const TRAILER_BYTES: u64 = 24;
const HEADER_MAGIC: [u8; 8] = *b"ENSSNAP1";
const TRAILER_MAGIC: [u8; 8] = *b"ENSSEND1";

fn header(zxid: u64) -> [u8; 24] {
    let mut h = [0u8; 24];
    h[..8].copy_from_slice(&HEADER_MAGIC);
    h[8..16].copy_from_slice(&zxid.to_le_bytes());
    let crc = crc32c::crc32c(&h[..16]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    h
}

fn trailer(body_len: u64, body_crc: u32) -> [u8; 24] {
    let mut t = [0u8; 24];
    t[..8].copy_from_slice(&TRAILER_MAGIC);
    t[8..16].copy_from_slice(&body_len.to_le_bytes());
    t[16..20].copy_from_slice(&body_crc.to_le_bytes());
    let crc = crc32c::crc32c(&t[..20]);
    t[20..24].copy_from_slice(&crc.to_le_bytes());
    t
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// Streams a body into `inner`, framing it.
pub(crate) struct EnvelopeWriter<W: Write> {
    inner: W,
    crc: u32,
    len: u64,
}

impl<W: Write> EnvelopeWriter<W> {
    /// Writes the header.
    pub fn start(mut inner: W, zxid: u64) -> io::Result<Self> {
        inner.write_all(&header(zxid))?;
        Ok(EnvelopeWriter {
            inner,
            crc: 0,
            len: 0,
        })
    }

    /// The writer the body goes to (for flushing it to disk part-way).
    pub fn inner_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Writes the trailer and returns the sink and the body length.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        self.inner.write_all(&trailer(self.len, self.crc))?;
        self.inner.flush()?;
        Ok((self.inner, self.len))
    }
}

impl<W: Write> Write for EnvelopeWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads the body of an envelope, checking the CRC when the body ends. Build it with
/// [`open_body`].
pub(crate) struct BodyReader<R: Read> {
    inner: R,
    remaining: u64,
    crc: u32,
    expected_crc: u32,
}

impl<R: Read> Read for BodyReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = usize::try_from(self.remaining).map_or(buf.len(), |r| r.min(buf.len()));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "snapshot body ended early",
            ));
        }
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        self.remaining -= n as u64;
        if self.remaining == 0 && self.crc != self.expected_crc {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "snapshot body checksum mismatch (changed since it was verified)",
            ));
        }
        Ok(n)
    }
}

/// What a damaged envelope looks like: the offset and the reason.
pub(crate) type Damage = (u64, String);

/// Reads the header of an envelope of `total_len` bytes (from `r`, positioned at 0).
fn read_header<R: Read>(r: &mut R, total_len: u64) -> Result<u64, Damage> {
    if total_len < HEADER_BYTES + TRAILER_BYTES {
        return Err((
            0,
            format!("snapshot of {total_len} bytes is shorter than its envelope"),
        ));
    }
    let mut h = [0u8; 24];
    r.read_exact(&mut h)
        .map_err(|e| (0, format!("reading header: {e}")))?;
    if h[..8] != HEADER_MAGIC {
        return Err((0, "bad snapshot magic".into()));
    }
    if u32_at(&h, 16) != crc32c::crc32c(&h[..16]) {
        return Err((0, "snapshot header checksum mismatch".into()));
    }
    if u32_at(&h, 20) != 0 {
        return Err((20, "snapshot header reserved bytes are not zero".into()));
    }
    Ok(u64_at(&h, 8))
}

/// Checks a whole envelope of `total_len` bytes by reading `r` (positioned at 0) to
/// the end; returns the zxid in its header and the body CRC.
pub(crate) fn verify<R: Read>(mut r: R, total_len: u64) -> Result<(u64, u32), Damage> {
    let zxid = read_header(&mut r, total_len)?;
    let body_len = total_len - HEADER_BYTES - TRAILER_BYTES;
    let mut crc = 0u32;
    let mut left = body_len;
    let mut chunk = vec![0u8; 1 << 16];
    while left > 0 {
        let want = usize::try_from(left).map_or(chunk.len(), |l| l.min(chunk.len()));
        r.read_exact(&mut chunk[..want])
            .map_err(|e| (HEADER_BYTES + body_len - left, format!("reading body: {e}")))?;
        crc = crc32c::crc32c_append(crc, &chunk[..want]);
        left -= want as u64;
    }
    let trailer_at = HEADER_BYTES + body_len;
    let mut t = [0u8; 24];
    r.read_exact(&mut t)
        .map_err(|e| (trailer_at, format!("reading trailer: {e}")))?;
    if t[..8] != TRAILER_MAGIC {
        return Err((
            trailer_at,
            "bad snapshot trailer magic (incomplete snapshot?)".into(),
        ));
    }
    if u32_at(&t, 20) != crc32c::crc32c(&t[..20]) {
        return Err((trailer_at, "snapshot trailer checksum mismatch".into()));
    }
    if u64_at(&t, 8) != body_len {
        return Err((
            trailer_at,
            "snapshot body length does not match the file".into(),
        ));
    }
    if u32_at(&t, 16) != crc {
        return Err((HEADER_BYTES, "snapshot body checksum mismatch".into()));
    }
    Ok((zxid, crc))
}

/// After [`verify`] succeeded: positions a fresh reader (at 0) past the header and
/// returns the body reader.
pub(crate) fn open_body<R: Read>(
    mut r: R,
    total_len: u64,
    expected_crc: u32,
) -> Result<BodyReader<R>, Damage> {
    read_header(&mut r, total_len)?;
    Ok(BodyReader {
        inner: r,
        remaining: total_len - HEADER_BYTES - TRAILER_BYTES,
        crc: 0,
        expected_crc,
    })
}
