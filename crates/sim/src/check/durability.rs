//! No acknowledged write is lost: every write a client saw succeed is in the agreed
//! committed history, at the zxid its reply reported (ZooKeeper's guarantee of
//! *reliability*: once an update is applied, it persists until overwritten). Every
//! session a client saw opened was committed too, and no request is committed twice.

use ensemble::{Request, Response};

use crate::history::History;
use crate::reference::Reference;

const NAME: &str = "durability";

/// Checks every successful write against the replayed history.
///
/// `strict`: see [`crate::SimConfig::strict_reply_zxid`].
pub fn check(
    history: &History,
    reference: &Reference,
    strict: bool,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for ((origin, conn, xid), a, b) in reference.duplicates.iter().take(3) {
        out.push((
            NAME,
            format!(
                "request s{origin} conn{} xid{} committed twice, at {a:#x} and {b:#x} (executed more than once)",
                conn.0, xid.0
            ),
        ));
    }
    for op in &history.ops {
        let Some(reply) = &op.reply else { continue };
        let Ok(resp) = &reply.result else { continue };
        match (&op.req, resp) {
            (Request::Connect { .. }, Response::Connected { session, .. }) => {
                if !reference.created_sessions.contains(session) {
                    out.push((
                        NAME,
                        format!(
                            "session {session:?} opened for c{} was never committed",
                            op.client
                        ),
                    ));
                }
                continue;
            }
            (Request::Sync { .. } | Request::Reattach { .. }, _) => continue,
            (r, _) if !r.is_write() => continue,
            _ => {}
        }
        let key = (op.server, op.conn, op.xid);
        let Some(&zx) = reference.writes.get(&key) else {
            out.push((
                NAME,
                format!(
                    "acknowledged write lost: c{} s{} conn{} xid{} {:?}",
                    op.client, op.server, op.conn.0, op.xid.0, op.req
                ),
            ));
            continue;
        };
        let claimed = match resp {
            Response::Created { stat, .. } => Some(stat.czxid),
            Response::Stat(stat) if matches!(op.req, Request::SetData { .. }) => Some(stat.mzxid),
            _ => None,
        };
        if let Some(c) = claimed {
            if c as u64 != zx {
                out.push((
                    NAME,
                    format!(
                        "c{} xid{}: reply says zxid {c:#x} but the write committed at {zx:#x}",
                        op.client, op.xid.0
                    ),
                ));
            }
        }
        let lag_ok = !strict && reference.successor(reply.zxid.max(0) as u64) == Some(zx);
        if (reply.zxid as u64) < zx && !lag_ok {
            out.push((
                NAME,
                format!(
                    "c{} xid{}: replied at applied zxid {:#x} before its own txn {zx:#x} applied",
                    op.client, op.xid.0, reply.zxid
                ),
            ));
        }
    }
    out.truncate(10);
    out
}
