//! Client write ops and the requests learners forward to the leader.

use bytes::{BufMut, Bytes, BytesMut};
use datatree::{Acl, CreateMode, Id, WriteOp};

use super::{
    get_acl, put_acl, put_bytes, CodecError, Reader, DATA_LEN_MAX, MULTI_OPS_MAX, TOUCHES_MAX,
};
use crate::error::Error;
use crate::ops::{ConnId, SessionId, Xid};

const FORWARD_VERSION: u8 = 2;

/// Most authenticated ids one forwarded request carries.
pub const AUTH_IDS_MAX: usize = 64;

// ---- write ops -----------------------------------------------------------------

const W_CREATE: u8 = 1;
const W_DELETE: u8 = 2;
const W_SET_DATA: u8 = 3;
const W_SET_ACL: u8 = 4;
const W_CHECK: u8 = 5;
const W_MULTI: u8 = 6;
const W_SET_QUOTA: u8 = 7;
const W_REMOVE_QUOTA: u8 = 8;

/// About the encoded size of `op` (exact for the common ops give or take the ACLs'
/// strings), so the frame is allocated once instead of growing by doubling.
fn write_op_size_hint(op: &WriteOp) -> usize {
    let acl = |a: &[Acl]| {
        4 + a
            .iter()
            .map(|x| 16 + x.id.scheme.len() + x.id.id.len())
            .sum::<usize>()
    };
    32 + match op {
        WriteOp::Create {
            path, data, acl: a, ..
        } => path.len() + data.len() + acl(a),
        WriteOp::SetData { path, data, .. } => path.len() + data.len(),
        WriteOp::SetAcl { path, acl: a, .. } => path.len() + acl(a),
        WriteOp::Delete { path, .. }
        | WriteOp::Check { path, .. }
        | WriteOp::SetQuota { path, .. }
        | WriteOp::RemoveQuota { path }
        | WriteOp::DeleteExpired { path, .. } => path.len(),
        WriteOp::Multi(ops) => ops.iter().map(write_op_size_hint).sum(),
        _ => 0,
    }
}

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
        WriteOp::SetQuota { path, quota } => {
            out.put_u8(W_SET_QUOTA);
            put_bytes(out, path.as_bytes());
            out.put_i64(quota.count);
            out.put_i64(quota.bytes);
        }
        WriteOp::RemoveQuota { path } => {
            out.put_u8(W_REMOVE_QUOTA);
            put_bytes(out, path.as_bytes());
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
        W_SET_QUOTA if !nested => WriteOp::SetQuota {
            path: r.string()?,
            quota: datatree::Quota {
                count: r.i64()?,
                bytes: r.i64()?,
            },
        },
        W_REMOVE_QUOTA if !nested => WriteOp::RemoveQuota { path: r.string()? },
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
    /// The ids the client's connection authenticated (addAuth), for ACL checks on
    /// the leader. At most [`AUTH_IDS_MAX`].
    pub auth: Vec<Id>,
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
        let hint = match &self.op {
            ForwardOp::Write(op) => write_op_size_hint(op),
            _ => 0,
        };
        let auth: usize = self
            .auth
            .iter()
            .map(|i| 8 + i.scheme.len() + i.id.len())
            .sum();
        let mut out = BytesMut::with_capacity(64 + auth + hint);
        out.put_u8(FORWARD_VERSION);
        out.put_u64(self.conn.0);
        out.put_u64(self.xid.0);
        out.put_i64(self.session.0);
        if self.auth.len() > AUTH_IDS_MAX {
            return Err(Error::Tree(datatree::Error::BadArguments(format!(
                "more than {AUTH_IDS_MAX} authenticated ids"
            ))));
        }
        out.put_u32(self.auth.len() as u32);
        for id in &self.auth {
            put_bytes(&mut out, id.scheme.as_bytes());
            put_bytes(&mut out, id.id.as_bytes());
        }
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
        let n = r.count(AUTH_IDS_MAX, 8)?;
        let mut auth = Vec::with_capacity(n);
        for _ in 0..n {
            let scheme = r.string()?;
            auth.push(Id::new(scheme, r.string()?));
        }
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
            auth,
            op,
        })
    }
}
