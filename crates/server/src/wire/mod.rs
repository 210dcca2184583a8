//! The client protocol: length-prefixed, versioned, CRC32C-checked frames carrying
//! the embedded API's [`Request`]s, [`Response`]s, errors and [`Event`]s.
//!
//! Frame: `[len u32][version u8][kind u8][crc32c(body) u32][body]`, little-endian,
//! where `len` counts everything after itself. Every decoder is bounded: lengths are
//! checked against the remaining input and the named maximums before allocating,
//! unknown tags are errors, and nothing panics on hostile input.

use bytes::Bytes;
use datatree::{
    Acl, CreateMode, EventType, Id, OpResult, Perms, Stat, WatchedEvent, WatcherKind, WatcherType,
};
use ensemble::{
    AddWatchMode, Error, Event, ReadOp, ReadResult, Request, Response, SessionEvent, SessionId,
    WriteOp,
};

/// The protocol version this crate speaks.
pub const WIRE_VERSION: u8 = 1;
/// Largest frame accepted (`len` field), in bytes.
pub const FRAME_MAX_BYTES: usize = 8 * 1024 * 1024;
/// Bytes after the length field that are not body: version, kind, crc.
const HEADER_AFTER_LEN: usize = 6;
/// Longest string accepted (paths, ACL ids, messages).
pub const STRING_MAX_BYTES: usize = 64 * 1024;
/// Most entries in a list (children, ops, ACLs, results).
pub const LIST_MAX: usize = 1 << 20;

const KIND_REQUEST: u8 = 1;
const KIND_PING: u8 = 2;
const KIND_REPLY: u8 = 3;
const KIND_EVENT: u8 = 4;
const KIND_PONG: u8 = 5;

/// Why bytes could not be decoded or a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The input ended early.
    #[error("truncated input: {0}")]
    Truncated(&'static str),
    /// A length exceeds its maximum.
    #[error("{what} too long: {len} bytes (max {max})")]
    TooLong {
        /// What was being read.
        what: &'static str,
        /// The length found.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The frame's checksum does not match its body.
    #[error("checksum mismatch")]
    BadCrc,
    /// The peer speaks another protocol version.
    #[error("unsupported protocol version {0}")]
    BadVersion(u8),
    /// An unknown tag or value.
    #[error("invalid {what}: {value}")]
    BadTag {
        /// What was being read.
        what: &'static str,
        /// The value found.
        value: i64,
    },
    /// A string is not UTF-8.
    #[error("invalid UTF-8 in {0}")]
    BadUtf8(&'static str),
    /// Bytes left over after a complete message.
    #[error("{0} trailing bytes")]
    Trailing(usize),
    /// The message cannot be carried by this protocol version.
    #[error("cannot encode: {0}")]
    Unsupported(String),
}

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientMsg {
    /// A request; the reply carries `xid` back.
    Request {
        /// Request number (FIFO within a connection).
        xid: u64,
        /// The request.
        req: Request,
    },
    /// A heartbeat; answered with [`ServerMsg::Pong`].
    Ping,
}

/// What a server sends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerMsg {
    /// The answer to request `xid`.
    Reply {
        /// The request number.
        xid: u64,
        /// The zxid the server had applied when it answered.
        zxid: i64,
        /// The outcome.
        result: Result<Response, Error>,
    },
    /// A watch or session event, in order with the replies.
    Event(Event),
    /// The answer to a ping.
    Pong,
}

// ---------------------------------------------------------------- framing

/// Wraps `body` of `kind` into a frame.
fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let len = (body.len() + HEADER_AFTER_LEN) as u32;
    let mut out = Vec::with_capacity(body.len() + 10);
    out.extend_from_slice(&len.to_le_bytes());
    out.push(WIRE_VERSION);
    out.push(kind);
    out.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// Checks a frame's header given its length field; returns the body length.
pub fn check_len(len: u32) -> Result<usize, WireError> {
    let len = len as usize;
    if len > FRAME_MAX_BYTES {
        return Err(WireError::TooLong {
            what: "frame",
            len,
            max: FRAME_MAX_BYTES,
        });
    }
    len.checked_sub(HEADER_AFTER_LEN)
        .ok_or(WireError::Truncated("frame header"))
}

/// Splits the bytes after the length field into (kind, body), checking version and CRC.
fn unframe(rest: &[u8]) -> Result<(u8, &[u8]), WireError> {
    if rest.len() < HEADER_AFTER_LEN {
        return Err(WireError::Truncated("frame header"));
    }
    if rest[0] != WIRE_VERSION {
        return Err(WireError::BadVersion(rest[0]));
    }
    let kind = rest[1];
    let crc = u32::from_le_bytes([rest[2], rest[3], rest[4], rest[5]]);
    let body = &rest[HEADER_AFTER_LEN..];
    if crc32c::crc32c(body) != crc {
        return Err(WireError::BadCrc);
    }
    Ok((kind, body))
}

/// Reads one frame (everything after the length field) from `r`; `Ok(None)` on a clean
/// end of stream before a frame starts.
pub fn read_frame<R: std::io::Read>(r: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let body_len = check_len(u32::from_le_bytes(len))
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let mut buf = vec![0u8; body_len + HEADER_AFTER_LEN];
    r.read_exact(&mut buf)?;
    Ok(Some(buf))
}

impl ClientMsg {
    /// Encodes into one frame.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut w = W::default();
        match self {
            ClientMsg::Request { xid, req } => {
                w.u64(*xid);
                put_request(&mut w, req)?;
                Ok(frame(KIND_REQUEST, &w.0))
            }
            ClientMsg::Ping => Ok(frame(KIND_PING, &[])),
        }
    }

    /// Decodes a frame as returned by [`read_frame`].
    pub fn decode(frame_rest: &[u8]) -> Result<ClientMsg, WireError> {
        let (kind, body) = unframe(frame_rest)?;
        let mut r = R::new(body);
        let msg = match kind {
            KIND_REQUEST => {
                let xid = r.u64()?;
                let req = get_request(&mut r)?;
                ClientMsg::Request { xid, req }
            }
            KIND_PING => ClientMsg::Ping,
            k => return Err(bad("client message kind", k)),
        };
        r.finish()?;
        Ok(msg)
    }
}

impl ServerMsg {
    /// Encodes into one frame.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut w = W::default();
        match self {
            ServerMsg::Reply { xid, zxid, result } => {
                w.u64(*xid);
                w.i64(*zxid);
                match result {
                    Ok(resp) => {
                        w.u8(0);
                        put_response(&mut w, resp)?;
                    }
                    Err(e) => {
                        w.u8(1);
                        put_error(&mut w, e);
                    }
                }
                Ok(frame(KIND_REPLY, &w.0))
            }
            ServerMsg::Event(e) => {
                put_event(&mut w, e)?;
                Ok(frame(KIND_EVENT, &w.0))
            }
            ServerMsg::Pong => Ok(frame(KIND_PONG, &[])),
        }
    }

    /// Decodes a frame as returned by [`read_frame`].
    pub fn decode(frame_rest: &[u8]) -> Result<ServerMsg, WireError> {
        let (kind, body) = unframe(frame_rest)?;
        let mut r = R::new(body);
        let msg = match kind {
            KIND_REPLY => {
                let xid = r.u64()?;
                let zxid = r.i64()?;
                let result = match r.u8()? {
                    0 => Ok(get_response(&mut r)?),
                    1 => Err(get_error(&mut r)?),
                    t => return Err(bad("reply outcome", t)),
                };
                ServerMsg::Reply { xid, zxid, result }
            }
            KIND_EVENT => ServerMsg::Event(get_event(&mut r)?),
            KIND_PONG => ServerMsg::Pong,
            k => return Err(bad("server message kind", k)),
        };
        r.finish()?;
        Ok(msg)
    }
}

fn bad(what: &'static str, value: impl Into<i64>) -> WireError {
    WireError::BadTag {
        what,
        value: value.into(),
    }
}

// ---------------------------------------------------------------- primitives

#[derive(Default)]
struct W(Vec<u8>);

impl W {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u32(n as u32);
    }
}

struct R<'a> {
    buf: &'a [u8],
}

impl<'a> R<'a> {
    fn new(buf: &'a [u8]) -> Self {
        R { buf }
    }
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(WireError::Truncated(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn arr<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], WireError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.arr::<1>("u8")?[0])
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.arr("u32")?))
    }
    fn i32(&mut self) -> Result<i32, WireError> {
        Ok(i32::from_le_bytes(self.arr("i32")?))
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.arr("u64")?))
    }
    fn i64(&mut self) -> Result<i64, WireError> {
        Ok(i64::from_le_bytes(self.arr("i64")?))
    }
    fn bytes(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], WireError> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(WireError::TooLong { what, len, max });
        }
        self.take(len, what)
    }
    fn string(&mut self, what: &'static str) -> Result<String, WireError> {
        let b = self.bytes(what, STRING_MAX_BYTES)?;
        String::from_utf8(b.to_vec()).map_err(|_| WireError::BadUtf8(what))
    }
    fn data(&mut self) -> Result<Bytes, WireError> {
        Ok(Bytes::copy_from_slice(self.bytes("data", FRAME_MAX_BYTES)?))
    }
    /// A list length, bounded by LIST_MAX and by the input left (each entry takes at
    /// least `min_entry` bytes), so a hostile count cannot make us allocate.
    fn len(&mut self, what: &'static str, min_entry: usize) -> Result<usize, WireError> {
        let n = self.u32()? as usize;
        let max = LIST_MAX.min(self.buf.len() / min_entry.max(1));
        if n > max {
            return Err(WireError::TooLong { what, len: n, max });
        }
        Ok(n)
    }
    fn finish(&self) -> Result<(), WireError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(WireError::Trailing(self.buf.len()))
        }
    }
}

// ---------------------------------------------------------------- leaves

fn put_stat(w: &mut W, s: &Stat) {
    w.i64(s.czxid);
    w.i64(s.mzxid);
    w.i64(s.ctime);
    w.i64(s.mtime);
    w.i32(s.version);
    w.i32(s.cversion);
    w.i32(s.aversion);
    w.i64(s.ephemeral_owner);
    w.i32(s.data_length);
    w.i32(s.num_children);
    w.i64(s.pzxid);
}

fn get_stat(r: &mut R<'_>) -> Result<Stat, WireError> {
    Ok(Stat {
        czxid: r.i64()?,
        mzxid: r.i64()?,
        ctime: r.i64()?,
        mtime: r.i64()?,
        version: r.i32()?,
        cversion: r.i32()?,
        aversion: r.i32()?,
        ephemeral_owner: r.i64()?,
        data_length: r.i32()?,
        num_children: r.i32()?,
        pzxid: r.i64()?,
    })
}

fn put_acl(w: &mut W, acl: &[Acl]) {
    w.len(acl.len());
    for a in acl {
        w.i32(a.perms.0);
        w.str(&a.id.scheme);
        w.str(&a.id.id);
    }
}

fn get_acl(r: &mut R<'_>) -> Result<Vec<Acl>, WireError> {
    let n = r.len("acl", 12)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let perms = Perms(r.i32()?);
        let scheme = r.string("acl scheme")?;
        let id = r.string("acl id")?;
        out.push(Acl {
            perms,
            id: Id { scheme, id },
        });
    }
    Ok(out)
}

fn put_strings(w: &mut W, v: &[String]) {
    w.len(v.len());
    for s in v {
        w.str(s);
    }
}

fn get_strings(r: &mut R<'_>, what: &'static str) -> Result<Vec<String>, WireError> {
    let n = r.len(what, 4)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(r.string(what)?);
    }
    Ok(out)
}

fn get_mode(r: &mut R<'_>) -> Result<CreateMode, WireError> {
    let f = r.i32()?;
    CreateMode::from_flag(f).map_err(|_| bad("create mode", f))
}

fn watcher_type_code(t: WatcherType) -> u8 {
    match t {
        WatcherType::Children => 0,
        WatcherType::Data => 1,
        WatcherType::Any => 2,
        WatcherType::Persistent => 3,
        WatcherType::PersistentRecursive => 4,
    }
}

fn get_watcher_type(r: &mut R<'_>) -> Result<WatcherType, WireError> {
    Ok(match r.u8()? {
        0 => WatcherType::Children,
        1 => WatcherType::Data,
        2 => WatcherType::Any,
        3 => WatcherType::Persistent,
        4 => WatcherType::PersistentRecursive,
        t => return Err(bad("watcher type", t)),
    })
}

fn watcher_kind_code(k: WatcherKind) -> u8 {
    match k {
        WatcherKind::Data => 0,
        WatcherKind::Exists => 1,
        WatcherKind::Child => 2,
        WatcherKind::Persistent => 3,
        WatcherKind::PersistentRecursive => 4,
    }
}

fn get_watcher_kind(r: &mut R<'_>) -> Result<WatcherKind, WireError> {
    Ok(match r.u8()? {
        0 => WatcherKind::Data,
        1 => WatcherKind::Exists,
        2 => WatcherKind::Child,
        3 => WatcherKind::Persistent,
        4 => WatcherKind::PersistentRecursive,
        t => return Err(bad("watcher kind", t)),
    })
}

fn get_bool(r: &mut R<'_>) -> Result<bool, WireError> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        t => Err(bad("bool", t)),
    }
}

mod reply;
mod request;
use reply::{get_error, get_event, get_response, put_error, put_event, put_response};
use request::{get_request, put_request};

#[cfg(test)]
mod tests;
