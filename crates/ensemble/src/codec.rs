//! Binary encodings owned by this crate: the replicated txn envelope, requests that
//! learners forward to the leader, and the state-machine snapshot (sessions + tree).
//!
//! Every decoder is bounded: lengths are checked against the input (and named maximums)
//! before anything is allocated, unknown tags are errors, and nothing panics on hostile
//! or damaged input.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use datatree::{Acl, CreateMode, Id, OpResult, Perms, Txn, WriteOp};

use crate::error::Error;
use crate::ops::{ConnId, SessionId, Xid};

const ENVELOPE_VERSION: u8 = 1;
const FORWARD_VERSION: u8 = 1;
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

struct Reader {
    buf: Bytes,
}

impl Reader {
    fn need(&self, n: usize) -> Result<(), CodecError> {
        if self.buf.remaining() < n {
            Err(CodecError::Truncated)
        } else {
            Ok(())
        }
    }
    fn u8(&mut self) -> Result<u8, CodecError> {
        self.need(1)?;
        Ok(self.buf.get_u8())
    }
    fn u32(&mut self) -> Result<u32, CodecError> {
        self.need(4)?;
        Ok(self.buf.get_u32())
    }
    fn i32(&mut self) -> Result<i32, CodecError> {
        self.need(4)?;
        Ok(self.buf.get_i32())
    }
    fn u64(&mut self) -> Result<u64, CodecError> {
        self.need(8)?;
        Ok(self.buf.get_u64())
    }
    fn i64(&mut self) -> Result<i64, CodecError> {
        self.need(8)?;
        Ok(self.buf.get_i64())
    }
    fn len(&mut self, max: usize) -> Result<usize, CodecError> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(CodecError::TooLong { len, max });
        }
        self.need(len)?;
        Ok(len)
    }
    fn bytes(&mut self, max: usize) -> Result<Bytes, CodecError> {
        let len = self.len(max)?;
        Ok(self.buf.split_to(len))
    }
    fn string(&mut self) -> Result<String, CodecError> {
        let b = self.bytes(STRING_LEN_MAX)?;
        String::from_utf8(b.to_vec()).map_err(|_| CodecError::Utf8)
    }
    /// A count of items each at least `min_item_bytes` long, checked against the input.
    fn count(&mut self, max: usize, min_item_bytes: usize) -> Result<usize, CodecError> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(CodecError::TooLong { len: n, max });
        }
        self.need(n.saturating_mul(min_item_bytes))?;
        Ok(n)
    }
    fn finish(self) -> Result<(), CodecError> {
        if self.buf.has_remaining() {
            Err(CodecError::Trailing(self.buf.remaining()))
        } else {
            Ok(())
        }
    }
}

fn put_bytes(out: &mut BytesMut, b: &[u8]) {
    out.put_u32(b.len() as u32);
    out.put_slice(b);
}

fn put_acl(out: &mut BytesMut, acl: &[Acl]) {
    out.put_u32(acl.len() as u32);
    for a in acl {
        out.put_i32(a.perms.0);
        put_bytes(out, a.id.scheme.as_bytes());
        put_bytes(out, a.id.id.as_bytes());
    }
}

fn get_acl(r: &mut Reader) -> Result<Vec<Acl>, CodecError> {
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

// ---- write ops -----------------------------------------------------------------

const W_CREATE: u8 = 1;
const W_DELETE: u8 = 2;
const W_SET_DATA: u8 = 3;
const W_SET_ACL: u8 = 4;
const W_CHECK: u8 = 5;
const W_MULTI: u8 = 6;

fn put_write_op(out: &mut BytesMut, op: &WriteOp) -> Result<(), Error> {
    match op {
        WriteOp::Create {
            path,
            data,
            acl,
            mode,
            ttl_ms,
        } => {
            out.put_u8(W_CREATE);
            put_bytes(out, path.as_bytes());
            put_bytes(out, data);
            put_acl(out, acl);
            out.put_i32(mode.flag());
            out.put_i64(*ttl_ms);
        }
        WriteOp::Delete { path, version } => {
            out.put_u8(W_DELETE);
            put_bytes(out, path.as_bytes());
            out.put_i32(*version);
        }
        WriteOp::SetData {
            path,
            data,
            version,
        } => {
            out.put_u8(W_SET_DATA);
            put_bytes(out, path.as_bytes());
            put_bytes(out, data);
            out.put_i32(*version);
        }
        WriteOp::SetAcl { path, acl, version } => {
            out.put_u8(W_SET_ACL);
            put_bytes(out, path.as_bytes());
            put_acl(out, acl);
            out.put_i32(*version);
        }
        WriteOp::Check { path, version } => {
            out.put_u8(W_CHECK);
            put_bytes(out, path.as_bytes());
            out.put_i32(*version);
        }
        WriteOp::Multi(ops) => {
            out.put_u8(W_MULTI);
            out.put_u32(ops.len() as u32);
            for op in ops {
                if matches!(op, WriteOp::Multi(_)) {
                    return Err(Error::Tree(datatree::Error::BadArguments(
                        "nested multi".into(),
                    )));
                }
                put_write_op(out, op)?;
            }
        }
        _ => {
            return Err(Error::Tree(datatree::Error::BadArguments(
                "operation not allowed from a client".into(),
            )))
        }
    }
    Ok(())
}

fn get_write_op(r: &mut Reader, nested: bool) -> Result<WriteOp, CodecError> {
    let tag = r.u8()?;
    Ok(match tag {
        W_CREATE => {
            let path = r.string()?;
            let data = r.bytes(DATA_LEN_MAX)?;
            let acl = get_acl(r)?;
            let flag = r.i32()?;
            let mode = CreateMode::from_flag(flag).map_err(|_| CodecError::Tag(flag as u8))?;
            let ttl_ms = r.i64()?;
            WriteOp::Create {
                path,
                data,
                acl,
                mode,
                ttl_ms,
            }
        }
        W_DELETE => WriteOp::Delete {
            path: r.string()?,
            version: r.i32()?,
        },
        W_SET_DATA => WriteOp::SetData {
            path: r.string()?,
            data: r.bytes(DATA_LEN_MAX)?,
            version: r.i32()?,
        },
        W_SET_ACL => WriteOp::SetAcl {
            path: r.string()?,
            acl: get_acl(r)?,
            version: r.i32()?,
        },
        W_CHECK => WriteOp::Check {
            path: r.string()?,
            version: r.i32()?,
        },
        W_MULTI if !nested => {
            let n = r.count(MULTI_OPS_MAX, 5)?;
            let mut ops = Vec::with_capacity(n);
            for _ in 0..n {
                ops.push(get_write_op(r, true)?);
            }
            WriteOp::Multi(ops)
        }
        other => return Err(CodecError::Tag(other)),
    })
}

// ---- forwarded requests (learner -> leader) --------------------------------------

/// What a learner asks the leader to prepare and propose.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForwardOp {
    /// A client write.
    Write(WriteOp),
    /// createSession of a session opened on the learner.
    CreateSession {
        /// Negotiated timeout.
        timeout_ms: u32,
    },
    /// closeSession requested by the client.
    CloseSession,
    /// sync: a no-op through the pipeline.
    Sync,
    /// Sessions whose clients were active on the learner (piggy-backed liveness).
    Touches(Vec<SessionId>),
    /// The session was re-attached on the learner: take ownership, answer with a
    /// no-op (or an error) txn.
    Revalidate,
}

/// A request forwarded by a learner, with the client identity it answers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// The connection on the origin learner.
    pub conn: ConnId,
    /// The request number on that connection.
    pub xid: Xid,
    /// The client's session.
    pub session: SessionId,
    /// The request.
    pub op: ForwardOp,
}

const F_WRITE: u8 = 1;
const F_CREATE_SESSION: u8 = 2;
const F_CLOSE_SESSION: u8 = 3;
const F_SYNC: u8 = 4;
const F_TOUCHES: u8 = 5;
const F_REVALIDATE: u8 = 6;

impl Forward {
    /// Encodes the request.
    pub fn encode(&self) -> Result<Bytes, Error> {
        let mut out = BytesMut::with_capacity(64);
        out.put_u8(FORWARD_VERSION);
        out.put_u64(self.conn.0);
        out.put_u64(self.xid.0);
        out.put_i64(self.session.0);
        match &self.op {
            ForwardOp::Write(op) => {
                out.put_u8(F_WRITE);
                put_write_op(&mut out, op)?;
            }
            ForwardOp::CreateSession { timeout_ms } => {
                out.put_u8(F_CREATE_SESSION);
                out.put_u32(*timeout_ms);
            }
            ForwardOp::CloseSession => out.put_u8(F_CLOSE_SESSION),
            ForwardOp::Sync => out.put_u8(F_SYNC),
            ForwardOp::Touches(ids) => {
                out.put_u8(F_TOUCHES);
                out.put_u32(ids.len() as u32);
                for id in ids {
                    out.put_i64(id.0);
                }
            }
            ForwardOp::Revalidate => out.put_u8(F_REVALIDATE),
        }
        Ok(out.freeze())
    }

    /// Decodes a request; never panics.
    pub fn decode(bytes: Bytes) -> Result<Forward, CodecError> {
        let mut r = Reader { buf: bytes };
        let v = r.u8()?;
        if v != FORWARD_VERSION {
            return Err(CodecError::Version(v));
        }
        let conn = ConnId(r.u64()?);
        let xid = Xid(r.u64()?);
        let session = SessionId(r.i64()?);
        let op = match r.u8()? {
            F_WRITE => ForwardOp::Write(get_write_op(&mut r, false)?),
            F_CREATE_SESSION => ForwardOp::CreateSession {
                timeout_ms: r.u32()?,
            },
            F_CLOSE_SESSION => ForwardOp::CloseSession,
            F_SYNC => ForwardOp::Sync,
            F_TOUCHES => {
                let n = r.count(TOUCHES_MAX, 8)?;
                let mut ids = Vec::with_capacity(n);
                for _ in 0..n {
                    ids.push(SessionId(r.i64()?));
                }
                ForwardOp::Touches(ids)
            }
            F_REVALIDATE => ForwardOp::Revalidate,
            other => return Err(CodecError::Tag(other)),
        };
        r.finish()?;
        Ok(Forward {
            conn,
            xid,
            session,
            op,
        })
    }
}

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

fn put_error(out: &mut BytesMut, e: &Error) {
    out.put_i32(e.code());
    put_bytes(out, e.message().as_bytes());
}

fn get_error(r: &mut Reader) -> Result<Error, CodecError> {
    let code = r.i32()?;
    let msg = r.string()?;
    Ok(Error::from_code(code, msg))
}

impl Envelope {
    /// Encodes the envelope.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(96);
        out.put_u8(ENVELOPE_VERSION);
        out.put_u64(self.origin);
        out.put_u64(self.conn.0);
        out.put_u64(self.xid.0);
        out.put_i64(self.session.0);
        out.put_u64(self.check.0);
        out.put_u64(self.check.1);
        match &self.body {
            Body::Tree(txn) => {
                out.put_u8(B_TREE);
                put_bytes(&mut out, &datatree::txn_codec::encode(txn));
            }
            Body::CreateSession { timeout_ms } => {
                out.put_u8(B_CREATE_SESSION);
                out.put_u32(*timeout_ms);
            }
            Body::CloseSession(txn) => {
                out.put_u8(B_CLOSE_SESSION);
                put_bytes(&mut out, &datatree::txn_codec::encode(txn));
            }
            Body::Error(Failure::Single(e)) => {
                out.put_u8(B_ERROR);
                out.put_u8(F_SINGLE);
                put_error(&mut out, e);
            }
            Body::Error(Failure::Multi(results)) => {
                out.put_u8(B_ERROR);
                out.put_u8(F_MULTI);
                out.put_u32(results.len() as u32);
                for r in results {
                    match r {
                        OpResult::Error(e) => {
                            out.put_u8(R_ERR);
                            put_error(&mut out, &Error::Tree(e.clone()));
                        }
                        _ => out.put_u8(R_OK),
                    }
                }
            }
            Body::Noop => out.put_u8(B_NOOP),
        }
        out.freeze()
    }

    /// Decodes an envelope; never panics.
    pub fn decode(bytes: Bytes) -> Result<Envelope, CodecError> {
        let mut r = Reader { buf: bytes };
        let v = r.u8()?;
        if v != ENVELOPE_VERSION {
            return Err(CodecError::Version(v));
        }
        let origin = r.u64()?;
        let conn = ConnId(r.u64()?);
        let xid = Xid(r.u64()?);
        let session = SessionId(r.i64()?);
        let check = (r.u64()?, r.u64()?);
        let body = match r.u8()? {
            B_TREE => Body::Tree(decode_txn(&mut r)?),
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
        Ok(Envelope {
            origin,
            conn,
            xid,
            session,
            check,
            body,
        })
    }
}

fn decode_txn(r: &mut Reader) -> Result<Txn, CodecError> {
    let b = r.bytes(zab_core::PAYLOAD_MAX_BYTES)?;
    datatree::txn_codec::decode(&b).map_err(|e| CodecError::Embedded(e.to_string()))
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

// ---- batch frames (several ZAB messages to one peer in one transport frame) --------

/// First byte of a batch frame. A ZAB message starts with its wire version (1), so the
/// two never collide.
pub const BATCH_TAG: u8 = 0xEB;
/// A batch is closed once it holds this many bytes (bigger messages travel alone).
pub const BATCH_BYTES_MAX: usize = 1 << 20;
/// Most messages accepted in one batch frame.
pub const BATCH_MESSAGES_MAX: usize = 1 << 16;

/// Collects the messages of one core-loop iteration per peer, so that each peer gets
/// one transport frame per iteration: `[BATCH_TAG][count u32]([len u32][message])*`.
#[derive(Debug, Default)]
pub struct BatchWriter {
    peers: Vec<(u64, Vec<Bytes>, usize)>,
}

impl BatchWriter {
    /// Queues `frame` for `to`; returns a full batch to send now, if one closed.
    pub fn push(&mut self, to: u64, frame: Bytes) -> Option<(u64, Bytes)> {
        let i = match self.peers.iter().position(|(p, _, _)| *p == to) {
            Some(i) => i,
            None => {
                self.peers.push((to, Vec::new(), 0));
                self.peers.len() - 1
            }
        };
        let (_, frames, bytes) = &mut self.peers[i];
        let mut out = None;
        if !frames.is_empty()
            && (*bytes + frame.len() > BATCH_BYTES_MAX || frames.len() >= BATCH_MESSAGES_MAX)
        {
            out = Some((to, encode_batch(frames)));
            frames.clear();
            *bytes = 0;
        }
        *bytes += frame.len();
        frames.push(frame);
        out
    }

    /// The frames to send, one per peer; the writer is empty afterwards.
    pub fn drain(&mut self) -> impl Iterator<Item = (u64, Bytes)> + '_ {
        self.peers
            .iter_mut()
            .filter(|(_, f, _)| !f.is_empty())
            .map(|(to, frames, bytes)| {
                *bytes = 0;
                let frame = if frames.len() == 1 {
                    frames.pop().unwrap_or_default()
                } else {
                    let b = encode_batch(frames);
                    frames.clear();
                    b
                };
                (*to, frame)
            })
    }
}

fn encode_batch(frames: &[Bytes]) -> Bytes {
    let total: usize = frames.iter().map(|f| f.len() + 4).sum();
    let mut out = BytesMut::with_capacity(5 + total);
    out.put_u8(BATCH_TAG);
    out.put_u32(frames.len() as u32);
    for f in frames {
        out.put_u32(f.len() as u32);
        out.put_slice(f);
    }
    out.freeze()
}

/// Splits a batch frame into its messages (zero-copy); `None` if `frame` is not a
/// batch. A malformed batch yields the messages before the damage (and logs).
pub fn split_batch(frame: &Bytes) -> Option<Vec<Bytes>> {
    if frame.first() != Some(&BATCH_TAG) {
        return None;
    }
    let mut r = Reader {
        buf: frame.slice(1..),
    };
    let mut out = Vec::new();
    let n = match r.count(BATCH_MESSAGES_MAX, 4) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "malformed batch frame");
            return Some(out);
        }
    };
    for _ in 0..n {
        match r.bytes(zab_core::SNAPSHOT_MAX_BYTES) {
            Ok(b) => out.push(b),
            Err(e) => {
                tracing::warn!(error = %e, "malformed batch frame");
                break;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    fn sample_envelope() -> Envelope {
        Envelope {
            origin: 2,
            conn: ConnId(9),
            xid: Xid(4),
            session: SessionId(77),
            check: (5, 123),
            body: Body::Error(Failure::Multi(vec![
                OpResult::Ok,
                OpResult::Error(datatree::Error::NoNode("/a".into())),
                OpResult::Error(datatree::Error::RuntimeInconsistency),
            ])),
        }
    }

    #[test]
    fn envelope_round_trips() {
        let e = sample_envelope();
        assert_eq!(Envelope::decode(e.encode()).unwrap(), e);
        let create = Envelope {
            body: Body::CreateSession { timeout_ms: 4000 },
            ..sample_envelope()
        };
        assert_eq!(Envelope::decode(create.encode()).unwrap(), create);
    }

    #[test]
    fn forward_round_trips() {
        let f = Forward {
            conn: ConnId(1),
            xid: Xid(2),
            session: SessionId(3),
            op: ForwardOp::Write(WriteOp::Multi(vec![
                WriteOp::Create {
                    path: "/a".into(),
                    data: Bytes::from_static(b"x"),
                    acl: Acl::open_unsafe(),
                    mode: CreateMode::EphemeralSequential,
                    ttl_ms: 0,
                },
                WriteOp::Check {
                    path: "/a".into(),
                    version: -1,
                },
            ])),
        };
        assert_eq!(Forward::decode(f.encode().unwrap()).unwrap(), f);
        let t = Forward {
            op: ForwardOp::Touches(vec![SessionId(1), SessionId(2)]),
            ..f
        };
        assert_eq!(Forward::decode(t.encode().unwrap()).unwrap(), t);
    }

    #[test]
    fn state_round_trips() {
        let tree = datatree::DataTree::new();
        let bytes = encode_state(&[(SessionId(5), 3000)], &tree);
        let (s, t) = decode_state(&bytes).unwrap();
        assert_eq!(s, vec![(SessionId(5), 3000)]);
        assert_eq!(t.digest(), tree.digest());
        assert!(decode_state(&bytes[..bytes.len() - 3]).is_err());
        assert!(decode_state(&bytes[..10]).is_err());
    }

    #[test]
    fn batches_split_back_into_their_messages() {
        let mut w = BatchWriter::default();
        assert!(w.push(2, Bytes::from_static(&[1, 9])).is_none());
        assert!(w.push(2, Bytes::from_static(&[1, 8, 7])).is_none());
        assert!(w.push(3, Bytes::from_static(&[1])).is_none());
        let out: Vec<(u64, Bytes)> = w.drain().collect();
        assert_eq!(out.len(), 2);
        let parts = split_batch(&out[0].1).unwrap();
        assert_eq!(
            parts,
            vec![Bytes::from_static(&[1, 9]), Bytes::from_static(&[1, 8, 7])]
        );
        assert_eq!(out[1].1, Bytes::from_static(&[1]));
        assert!(split_batch(&out[1].1).is_none());
        assert_eq!(w.drain().count(), 0);
    }

    proptest! {
        #[test]
        fn batch_split_never_panics(data in proptest::collection::vec(any::<u8>(), 0..100)) {
            let mut framed = vec![BATCH_TAG];
            framed.extend(data);
            let _ = split_batch(&Bytes::from(framed));
        }

        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Envelope::decode(Bytes::from(data.clone()));
            let _ = Forward::decode(Bytes::from(data.clone()));
            let _ = decode_state(&data);
        }

        #[test]
        fn truncated_envelopes_are_errors(cut in 0usize..60) {
            let bytes = sample_envelope().encode();
            let cut = cut.min(bytes.len() - 1);
            prop_assert!(Envelope::decode(bytes.slice(..cut)).is_err());
        }
    }
}
