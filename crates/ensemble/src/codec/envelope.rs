//! The replicated envelope and the state snapshot format.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use datatree::{OpResult, Txn};

use super::{put_bytes, CodecError, Reader, MULTI_OPS_MAX, SESSIONS_MAX, STATE_MAGIC};
use crate::error::Error;
use crate::ops::{ConnId, SessionId, Xid};

const ENVELOPE_VERSION: u8 = 1;

/// The smallest buffer [`Envelope::encode_in`] allocates when its arena runs out.
pub const ARENA_CHUNK_BYTES: usize = 64 << 10;

// ---- the replicated envelope -------------------------------------------------------

/// What a replicated txn does.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Body {
    /// A tree change (client write or leader housekeeping).
    Tree(Txn),
    /// createSession.
    CreateSession {
        /// Negotiated timeout.
        timeout_ms: u32,
    },
    /// closeSession, with the tree op deleting the session's ephemerals.
    CloseSession(Txn),
    /// A failed request: the error reaches the client in FIFO order.
    Error(Failure),
    /// sync / revalidation answer: changes nothing.
    Noop,
}

/// A failed request's outcome, as carried in an error txn.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// A single op's error.
    Single(Error),
    /// A multi's per-op results.
    Multi(Vec<OpResult>),
}

impl Failure {
    /// The client error.
    pub fn into_error(self) -> Error {
        match self {
            Failure::Single(e) => e,
            Failure::Multi(r) => Error::MultiFailed(r),
        }
    }
}

/// The payload of every replicated log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The server whose client asked for this txn (0: leader housekeeping).
    pub origin: u64,
    /// The connection on the origin server.
    pub conn: ConnId,
    /// The request number on that connection.
    pub xid: Xid,
    /// The session the txn acts for (0 for housekeeping).
    pub session: SessionId,
    /// A digest check: the tree digest every replica must have had right after
    /// applying zxid `check.0` (0: no check).
    pub check: (u64, u64),
    /// What the txn does.
    pub body: Body,
}

const B_TREE: u8 = 1;
const B_CREATE_SESSION: u8 = 2;
const B_CLOSE_SESSION: u8 = 3;
const B_ERROR: u8 = 4;
const B_NOOP: u8 = 5;
const F_SINGLE: u8 = 0;
const F_MULTI: u8 = 1;
const R_OK: u8 = 0;
const R_ERR: u8 = 1;

fn put_error(out: &mut impl BufMut, e: &Error) {
    out.put_i32(e.code());
    put_bytes(out, e.message().as_bytes());
}

fn get_error(r: &mut Reader) -> Result<Error, CodecError> {
    let code = r.i32()?;
    let msg = r.string()?;
    Ok(Error::from_code(code, msg))
}

/// Where a leader encodes its proposals ([`Envelope::encode_in`]): envelopes are
/// written into a reused scratch vector (fast to append to), then copied into a shared
/// buffer and split off it, so they share that buffer and its reference count and a
/// proposal costs no allocation of its own (one buffer of [`ARENA_CHUNK_BYTES`] serves
/// hundreds of small txns; a buffer is freed when the last envelope in it is dropped).
#[derive(Debug, Default)]
pub struct EncodeArena {
    buf: BytesMut,
    scratch: Vec<u8>,
}

/// Largest scratch capacity an [`EncodeArena`] keeps between envelopes (a bulk multi
/// can need far more, once).
const SCRATCH_KEEP_BYTES: usize = 1 << 20;

impl EncodeArena {
    /// An empty arena (it allocates on first use).
    pub fn new() -> EncodeArena {
        EncodeArena::default()
    }
}

impl Envelope {
    /// Encodes the envelope into a buffer of its own.
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::new();
        self.encode_to(&mut out);
        Bytes::from(out)
    }

    /// Encodes the envelope in `arena` (see [`EncodeArena`]).
    pub fn encode_in(&self, arena: &mut EncodeArena) -> Bytes {
        let scratch = &mut arena.scratch;
        scratch.clear();
        self.encode_to(scratch);
        let n = scratch.len();
        if arena.buf.capacity() - arena.buf.len() < n {
            arena.buf.reserve(n.max(ARENA_CHUNK_BYTES));
        }
        arena.buf.extend_from_slice(scratch);
        if scratch.capacity() > SCRATCH_KEEP_BYTES {
            *scratch = Vec::new();
        }
        arena.buf.split().freeze()
    }

    fn encode_to(&self, out: &mut Vec<u8>) {
        let header = 1 + 6 * 8 + 1;
        let body_len = match &self.body {
            Body::Tree(txn) | Body::CloseSession(txn) => {
                4 + datatree::txn_codec::encoded_len_hint(txn)
            }
            _ => 64,
        };
        out.reserve(header + body_len);
        self.header().encode_to(out);
        match &self.body {
            Body::Tree(txn) | Body::CloseSession(txn) => {
                let tag = if matches!(self.body, Body::Tree(_)) {
                    B_TREE
                } else {
                    B_CLOSE_SESSION
                };
                out.put_u8(tag);
                // The txn is encoded in place, its length filled in after.
                let at = out.len();
                out.put_u32(0);
                datatree::txn_codec::append(txn, out);
                let len = (out.len() - at - 4) as u32;
                out[at..at + 4].copy_from_slice(&len.to_be_bytes());
            }
            Body::CreateSession { timeout_ms } => {
                out.put_u8(B_CREATE_SESSION);
                out.put_u32(*timeout_ms);
            }
            Body::Error(Failure::Single(e)) => {
                out.put_u8(B_ERROR);
                out.put_u8(F_SINGLE);
                put_error(out, e);
            }
            Body::Error(Failure::Multi(results)) => {
                out.put_u8(B_ERROR);
                out.put_u8(F_MULTI);
                out.put_u32(results.len() as u32);
                for r in results {
                    match r {
                        OpResult::Error(e) => {
                            out.put_u8(R_ERR);
                            put_error(out, &Error::Tree(e.clone()));
                        }
                        _ => out.put_u8(R_OK),
                    }
                }
            }
            Body::Noop => out.put_u8(B_NOOP),
        }
    }

    /// Decodes an envelope; never panics.
    pub fn decode(bytes: Bytes) -> Result<Envelope, CodecError> {
        match Envelope::decode_split(bytes)? {
            Split::Tree(h, txn) => Ok(h.with_body(Body::Tree(decode_txn_bytes(&txn)?))),
            Split::Other(env) => Ok(env),
        }
    }

    /// Decodes an envelope but leaves a tree txn encoded ([`Split::Tree`]), so that a
    /// replica can read a single setData in place
    /// ([`datatree::txn_codec::decode_set_data`]) or decode the txn with
    /// [`decode_txn_bytes`]. Never panics.
    pub fn decode_split(bytes: Bytes) -> Result<Split, CodecError> {
        let mut r = Reader { buf: bytes };
        let h = Header::decode(&mut r)?;
        let body = match r.u8()? {
            B_TREE => {
                let txn = r.bytes(zab_core::PAYLOAD_MAX_BYTES)?;
                r.finish()?;
                return Ok(Split::Tree(h, txn));
            }
            B_CREATE_SESSION => Body::CreateSession {
                timeout_ms: r.u32()?,
            },
            B_CLOSE_SESSION => Body::CloseSession(decode_txn(&mut r)?),
            B_ERROR => match r.u8()? {
                F_SINGLE => Body::Error(Failure::Single(get_error(&mut r)?)),
                F_MULTI => {
                    let n = r.count(MULTI_OPS_MAX, 1)?;
                    let mut results = Vec::with_capacity(n);
                    for _ in 0..n {
                        results.push(match r.u8()? {
                            R_OK => OpResult::Ok,
                            R_ERR => match get_error(&mut r)? {
                                Error::Tree(e) => OpResult::Error(e),
                                other => {
                                    OpResult::Error(datatree::Error::SystemError(other.to_string()))
                                }
                            },
                            t => return Err(CodecError::Tag(t)),
                        });
                    }
                    Body::Error(Failure::Multi(results))
                }
                t => return Err(CodecError::Tag(t)),
            },
            B_NOOP => Body::Noop,
            other => return Err(CodecError::Tag(other)),
        };
        r.finish()?;
        Ok(Split::Other(h.with_body(body)))
    }
}

/// An envelope as [`Envelope::decode_split`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Split {
    /// A tree txn: the header and the txn's encoding (sharing the input's buffer).
    Tree(Header, Bytes),
    /// Any other body, decoded.
    Other(Envelope),
}

fn decode_txn(r: &mut Reader) -> Result<Txn, CodecError> {
    decode_txn_bytes(&r.bytes(zab_core::PAYLOAD_MAX_BYTES)?)
}

/// Decodes a tree txn's encoding as found in an envelope ([`Split::Tree`]).
pub fn decode_txn_bytes(txn: &Bytes) -> Result<Txn, CodecError> {
    datatree::txn_codec::decode_shared(txn).map_err(embedded)
}

/// Reads a tree txn's encoding ([`Split::Tree`]) as a single setData in place, or
/// `Ok(None)` for any other txn (see [`datatree::txn_codec::decode_set_data`]).
pub fn decode_set_data(txn: &Bytes) -> Result<Option<datatree::SetDataRef<'_>>, CodecError> {
    datatree::txn_codec::decode_set_data(txn).map_err(embedded)
}

fn embedded(e: datatree::DecodeError) -> CodecError {
    CodecError::Embedded(e.to_string())
}

/// An envelope's fields other than its body (see [`Envelope`] for each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// [`Envelope::origin`].
    pub origin: u64,
    /// [`Envelope::conn`].
    pub conn: ConnId,
    /// [`Envelope::xid`].
    pub xid: Xid,
    /// [`Envelope::session`].
    pub session: SessionId,
    /// [`Envelope::check`].
    pub check: (u64, u64),
}

impl Header {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.put_u8(ENVELOPE_VERSION);
        out.put_u64(self.origin);
        out.put_u64(self.conn.0);
        out.put_u64(self.xid.0);
        out.put_i64(self.session.0);
        out.put_u64(self.check.0);
        out.put_u64(self.check.1);
    }

    fn decode(r: &mut Reader) -> Result<Header, CodecError> {
        let v = r.u8()?;
        if v != ENVELOPE_VERSION {
            return Err(CodecError::Version(v));
        }
        Ok(Header {
            origin: r.u64()?,
            conn: ConnId(r.u64()?),
            xid: Xid(r.u64()?),
            session: SessionId(r.i64()?),
            check: (r.u64()?, r.u64()?),
        })
    }

    /// The envelope with this header and `body`.
    pub fn with_body(self, body: Body) -> Envelope {
        Envelope {
            origin: self.origin,
            conn: self.conn,
            xid: self.xid,
            session: self.session,
            check: self.check,
            body,
        }
    }
}

impl Envelope {
    /// The envelope's fields other than its body.
    pub fn header(&self) -> Header {
        Header {
            origin: self.origin,
            conn: self.conn,
            xid: self.xid,
            session: self.session,
            check: self.check,
        }
    }
}

// ---- state snapshots -------------------------------------------------------------

/// Encodes the state machine: the session table then the tree.
pub fn encode_state(sessions: &[(SessionId, u32)], tree: &datatree::DataTree) -> Vec<u8> {
    let mut out = encode_state_header(sessions);
    // Writing to a Vec cannot fail.
    let _ = tree.serialize(&mut out);
    out
}

/// The state's header (magic and session table); the tree's bytes follow it, written
/// at once ([`datatree::DataTree::serialize`]) or incrementally
/// ([`datatree::DataTree::begin_snapshot`]).
pub fn encode_state_header(sessions: &[(SessionId, u32)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + sessions.len() * 12);
    out.extend_from_slice(STATE_MAGIC);
    out.extend_from_slice(&(sessions.len() as u32).to_be_bytes());
    for (id, t) in sessions {
        out.extend_from_slice(&id.0.to_be_bytes());
        out.extend_from_slice(&t.to_be_bytes());
    }
    out
}

/// A decoded state snapshot.
pub type DecodedState = (Vec<(SessionId, u32)>, datatree::DataTree);

/// Decodes what [`encode_state`] wrote; never panics.
pub fn decode_state(bytes: &[u8]) -> Result<DecodedState, CodecError> {
    let mut r = Reader {
        buf: Bytes::copy_from_slice(&bytes[..bytes.len().min(8 + 4)]),
    };
    let mut magic = [0u8; 8];
    r.need(8)?;
    r.buf.copy_to_slice(&mut magic);
    if &magic != STATE_MAGIC {
        return Err(CodecError::Version(magic[7]));
    }
    let n = r.u32()? as usize;
    if n > SESSIONS_MAX {
        return Err(CodecError::TooLong {
            len: n,
            max: SESSIONS_MAX,
        });
    }
    let start = 12;
    let end = start + n * 12;
    if bytes.len() < end {
        return Err(CodecError::Truncated);
    }
    let mut sessions = Vec::with_capacity(n);
    let mut s = &bytes[start..end];
    for _ in 0..n {
        sessions.push((SessionId(s.get_i64()), s.get_u32()));
    }
    let tree = datatree::DataTree::deserialize(&bytes[end..])
        .map_err(|e| CodecError::Embedded(e.to_string()))?;
    Ok((sessions, tree))
}
