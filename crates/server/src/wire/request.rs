//! Encoding of requests and multi ops.

use super::*;

// ---------------------------------------------------------------- write ops

/// First request tag of the single writes: create, delete, setData and setACL go
/// on the wire as this plus their multi-op tag, with the same body.
const SINGLE_WRITE_BASE: u8 = 3;
/// Last request tag of the single writes (setACL).
const SINGLE_WRITE_LAST: u8 = SINGLE_WRITE_BASE + 3;

/// A multi op: its tag (0 create, 1 delete, 2 setData, 3 setACL, 4 check) plus
/// `base`, then its fields.
fn put_write_op(w: &mut W, op: &WriteOp, base: u8) -> Result<(), WireError> {
    match op {
        WriteOp::Create {
            path,
            data,
            acl,
            mode,
            ttl_ms,
        } => {
            w.u8(base);
            w.str(path);
            w.bytes(data);
            put_acl(w, acl);
            w.i32(mode.flag());
            w.i64(*ttl_ms);
        }
        WriteOp::Delete { path, version } => {
            w.u8(base + 1);
            w.str(path);
            w.i32(*version);
        }
        WriteOp::SetData {
            path,
            data,
            version,
        } => {
            w.u8(base + 2);
            w.str(path);
            w.bytes(data);
            w.i32(*version);
        }
        WriteOp::SetAcl { path, acl, version } => {
            w.u8(base + 3);
            w.str(path);
            put_acl(w, acl);
            w.i32(*version);
        }
        WriteOp::Check { path, version } => {
            w.u8(base + 4);
            w.str(path);
            w.i32(*version);
        }
        other => {
            return Err(WireError::Unsupported(format!(
                "multi op not available to clients: {other:?}"
            )))
        }
    }
    Ok(())
}

/// The fields of the multi op with tag `t` (see [`put_write_op`]).
fn get_write_op_body(r: &mut R<'_>, t: u8) -> Result<WriteOp, WireError> {
    Ok(match t {
        0 => WriteOp::Create {
            path: r.string("path")?,
            data: r.data()?,
            acl: get_acl(r)?,
            mode: get_mode(r)?,
            ttl_ms: r.i64()?,
        },
        1 => WriteOp::Delete {
            path: r.string("path")?,
            version: r.i32()?,
        },
        2 => WriteOp::SetData {
            path: r.string("path")?,
            data: r.data()?,
            version: r.i32()?,
        },
        3 => WriteOp::SetAcl {
            path: r.string("path")?,
            acl: get_acl(r)?,
            version: r.i32()?,
        },
        4 => WriteOp::Check {
            path: r.string("path")?,
            version: r.i32()?,
        },
        t => return Err(bad("multi op", t)),
    })
}

fn get_write_op(r: &mut R<'_>) -> Result<WriteOp, WireError> {
    let t = r.u8()?;
    get_write_op_body(r, t)
}

// ---------------------------------------------------------------- requests

pub(super) fn put_request(w: &mut W, req: &Request) -> Result<(), WireError> {
    if let Some(op) = req.to_write_op() {
        return put_write_op(w, &op, SINGLE_WRITE_BASE);
    }
    match req {
        Request::Connect { timeout_ms } => {
            w.u8(0);
            w.u32(*timeout_ms);
        }
        Request::Reattach {
            session,
            password,
            last_zxid_seen,
        } => {
            w.u8(1);
            w.i64(session.0);
            w.0.extend_from_slice(password);
            w.i64(*last_zxid_seen);
        }
        Request::Close => w.u8(2),
        Request::Multi(ops) => {
            w.u8(7);
            w.len(ops.len());
            for op in ops {
                put_write_op(w, op, 0)?;
            }
        }
        Request::Sync { path } => {
            w.u8(8);
            w.str(path);
        }
        Request::Exists { path, watch } => {
            w.u8(9);
            w.str(path);
            w.u8(u8::from(*watch));
        }
        Request::GetData { path, watch } => {
            w.u8(10);
            w.str(path);
            w.u8(u8::from(*watch));
        }
        Request::GetChildren { path, watch } => {
            w.u8(11);
            w.str(path);
            w.u8(u8::from(*watch));
        }
        Request::GetAllChildrenNumber { path } => {
            w.u8(12);
            w.str(path);
        }
        Request::GetEphemerals { prefix } => {
            w.u8(13);
            w.str(prefix);
        }
        Request::GetAcl { path } => {
            w.u8(14);
            w.str(path);
        }
        Request::MultiRead(ops) => {
            w.u8(15);
            w.len(ops.len());
            for op in ops {
                match op {
                    ReadOp::GetData { path } => {
                        w.u8(0);
                        w.str(path);
                    }
                    ReadOp::GetChildren { path } => {
                        w.u8(1);
                        w.str(path);
                    }
                    other => {
                        return Err(WireError::Unsupported(format!("read op {other:?}")));
                    }
                }
            }
        }
        Request::AddWatch { path, mode } => {
            w.u8(16);
            w.str(path);
            w.u8(match mode {
                AddWatchMode::Persistent => 0,
                AddWatchMode::PersistentRecursive => 1,
                other => return Err(WireError::Unsupported(format!("watch mode {other:?}"))),
            });
        }
        Request::RemoveWatches { path, which } => {
            w.u8(17);
            w.str(path);
            w.u8(watcher_type_code(*which));
        }
        Request::SetWatches {
            relative_zxid,
            watches,
        } => {
            w.u8(18);
            w.i64(*relative_zxid);
            w.len(watches.len());
            for (path, kind) in watches {
                w.str(path);
                w.u8(watcher_kind_code(*kind));
            }
        }
        other => return Err(WireError::Unsupported(format!("request {other:?}"))),
    }
    Ok(())
}

pub(super) fn get_request(r: &mut R<'_>) -> Result<Request, WireError> {
    Ok(match r.u8()? {
        0 => Request::Connect {
            timeout_ms: r.u32()?,
        },
        1 => Request::Reattach {
            session: SessionId(r.i64()?),
            password: r.arr("password")?,
            last_zxid_seen: r.i64()?,
        },
        2 => Request::Close,
        t @ SINGLE_WRITE_BASE..=SINGLE_WRITE_LAST => {
            let op = get_write_op_body(r, t - SINGLE_WRITE_BASE)?;
            Request::from_write_op(op).map_err(|_| bad("request", t))?
        }
        7 => {
            let n = r.len("multi", 5)?;
            let mut ops = Vec::with_capacity(n);
            for _ in 0..n {
                ops.push(get_write_op(r)?);
            }
            Request::Multi(ops)
        }
        8 => Request::Sync {
            path: r.string("path")?,
        },
        9 => Request::Exists {
            path: r.string("path")?,
            watch: get_bool(r)?,
        },
        10 => Request::GetData {
            path: r.string("path")?,
            watch: get_bool(r)?,
        },
        11 => Request::GetChildren {
            path: r.string("path")?,
            watch: get_bool(r)?,
        },
        12 => Request::GetAllChildrenNumber {
            path: r.string("path")?,
        },
        13 => Request::GetEphemerals {
            prefix: r.string("prefix")?,
        },
        14 => Request::GetAcl {
            path: r.string("path")?,
        },
        15 => {
            let n = r.len("multi read", 5)?;
            let mut ops = Vec::with_capacity(n);
            for _ in 0..n {
                ops.push(match r.u8()? {
                    0 => ReadOp::GetData {
                        path: r.string("path")?,
                    },
                    1 => ReadOp::GetChildren {
                        path: r.string("path")?,
                    },
                    t => return Err(bad("read op", t)),
                });
            }
            Request::MultiRead(ops)
        }
        16 => Request::AddWatch {
            path: r.string("path")?,
            mode: match r.u8()? {
                0 => AddWatchMode::Persistent,
                1 => AddWatchMode::PersistentRecursive,
                t => return Err(bad("watch mode", t)),
            },
        },
        17 => Request::RemoveWatches {
            path: r.string("path")?,
            which: get_watcher_type(r)?,
        },
        18 => {
            let relative_zxid = r.i64()?;
            let n = r.len("watches", 5)?;
            let mut watches = Vec::with_capacity(n);
            for _ in 0..n {
                let path = r.string("path")?;
                watches.push((path, get_watcher_kind(r)?));
            }
            Request::SetWatches {
                relative_zxid,
                watches,
            }
        }
        t => return Err(bad("request", t)),
    })
}
