//! Binary encodings owned by this crate: the replicated txn envelope, requests that
//! learners forward to the leader, and the state-machine snapshot (sessions + tree).
//!
//! Every decoder is bounded: lengths are checked against the input (and named maximums)
//! before anything is allocated, unknown tags are errors, and nothing panics on hostile
//! or damaged input.

mod batch;
mod envelope;
mod forward;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use datatree::{Acl, Id, Perms};

pub use batch::{
    split_batch, split_batch_into, BatchWriter, BATCH_BYTES_MAX, BATCH_MESSAGES_MAX, BATCH_TAG,
};
pub use envelope::{
    decode_set_data, decode_state, decode_txn_bytes, encode_state, encode_state_header, Body,
    DecodedState, EncodeArena, Envelope, Failure, Header, Split, ARENA_CHUNK_BYTES,
};
pub use forward::{Forward, ForwardOp, AUTH_IDS_MAX};

use crate::error::Error;

const STATE_MAGIC: &[u8; 8] = b"ENSSTAT1";
/// Most ops accepted in one forwarded multi.
pub const MULTI_OPS_MAX: usize = 64 * 1024;
/// Most ACL entries accepted in one forwarded op.
pub const ACL_ENTRIES_MAX: usize = 1024;
/// Most session ids in one forwarded touch report.
pub const TOUCHES_MAX: usize = 1 << 20;
/// Most sessions accepted from a snapshot.
pub const SESSIONS_MAX: usize = 1 << 24;
/// Largest data field accepted (the zab payload bound).
pub const DATA_LEN_MAX: usize = zab_core::PAYLOAD_MAX_BYTES;
/// Longest string accepted (paths, ACL ids, error messages).
pub const STRING_LEN_MAX: usize = 64 * 1024;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The input ended early.
    #[error("truncated input")]
    Truncated,
    /// Unknown version byte.
    #[error("unsupported version {0}")]
    Version(u8),
    /// Unknown tag.
    #[error("unknown tag {0}")]
    Tag(u8),
    /// A length beyond its bound.
    #[error("length {len} exceeds the limit {max}")]
    TooLong {
        /// Declared length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// Bytes that are not valid UTF-8 where a string was expected.
    #[error("invalid utf-8")]
    Utf8,
    /// An embedded txn or tree failed to decode.
    #[error("embedded: {0}")]
    Embedded(String),
    /// Bytes left after the value.
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

impl From<CodecError> for Error {
    fn from(e: CodecError) -> Self {
        Error::Marshalling(e.to_string())
    }
}

// ---- primitive reader / writer -------------------------------------------------

pub(crate) struct Reader {
    pub(crate) buf: Bytes,
}

impl Reader {
    pub(crate) fn need(&self, n: usize) -> Result<(), CodecError> {
        if self.buf.remaining() < n {
            Err(CodecError::Truncated)
        } else {
            Ok(())
        }
    }
    pub(crate) fn u8(&mut self) -> Result<u8, CodecError> {
        self.need(1)?;
        Ok(self.buf.get_u8())
    }
    pub(crate) fn u32(&mut self) -> Result<u32, CodecError> {
        self.need(4)?;
        Ok(self.buf.get_u32())
    }
    pub(crate) fn i32(&mut self) -> Result<i32, CodecError> {
        self.need(4)?;
        Ok(self.buf.get_i32())
    }
    pub(crate) fn u64(&mut self) -> Result<u64, CodecError> {
        self.need(8)?;
        Ok(self.buf.get_u64())
    }
    pub(crate) fn i64(&mut self) -> Result<i64, CodecError> {
        self.need(8)?;
        Ok(self.buf.get_i64())
    }
    pub(crate) fn len(&mut self, max: usize) -> Result<usize, CodecError> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(CodecError::TooLong { len, max });
        }
        self.need(len)?;
        Ok(len)
    }
    pub(crate) fn bytes(&mut self, max: usize) -> Result<Bytes, CodecError> {
        let len = self.len(max)?;
        // A byte string that ends the input takes the reader's own handle: no
        // reference count to bump (the common case: a txn, a batch's last message).
        if len == self.buf.len() {
            return Ok(std::mem::take(&mut self.buf));
        }
        Ok(self.buf.split_to(len))
    }
    pub(crate) fn string(&mut self) -> Result<String, CodecError> {
        let b = self.bytes(STRING_LEN_MAX)?;
        String::from_utf8(b.to_vec()).map_err(|_| CodecError::Utf8)
    }
    /// A count of items each at least `min_item_bytes` long, checked against the input.
    pub(crate) fn count(&mut self, max: usize, min_item_bytes: usize) -> Result<usize, CodecError> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(CodecError::TooLong { len: n, max });
        }
        self.need(n.saturating_mul(min_item_bytes))?;
        Ok(n)
    }
    pub(crate) fn finish(self) -> Result<(), CodecError> {
        if self.buf.has_remaining() {
            Err(CodecError::Trailing(self.buf.remaining()))
        } else {
            Ok(())
        }
    }
}

pub(crate) fn put_bytes(out: &mut impl BufMut, b: &[u8]) {
    out.put_u32(b.len() as u32);
    out.put_slice(b);
}

pub(crate) fn put_acl(out: &mut BytesMut, acl: &[Acl]) {
    out.put_u32(acl.len() as u32);
    for a in acl {
        out.put_i32(a.perms.0);
        put_bytes(out, a.id.scheme.as_bytes());
        put_bytes(out, a.id.id.as_bytes());
    }
}

pub(crate) fn get_acl(r: &mut Reader) -> Result<Vec<Acl>, CodecError> {
    let n = r.count(ACL_ENTRIES_MAX, 12)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let perms = Perms(r.i32()?);
        let scheme = r.string()?;
        let id = r.string()?;
        out.push(Acl {
            perms,
            id: Id::new(scheme, id),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
