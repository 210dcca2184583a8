//! Requests a client sends and the responses it gets, shared by the deterministic
//! [`Server`](crate::Server) and the [`Client`](crate::Client).

use bytes::Bytes;
use datatree::{Acl, CreateMode, OpResult, Stat, WatchedEvent, WatcherType, WriteOp};

/// A connection to one server, chosen by the caller of [`Server::handle_client`](crate::Server::handle_client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// A request number within one connection; replies carry it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Xid(pub u64);

pub use datatree::SessionId;

/// Kinds of persistent watch for [`Request::AddWatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AddWatchMode {
    /// A permanent exists + getData + getChildren watch on one path.
    Persistent,
    /// Created, deleted and data-changed events for the path and every descendant.
    PersistentRecursive,
}

/// One read of a [`Request::MultiRead`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadOp {
    /// getData(path).
    GetData {
        /// The node.
        path: String,
    },
    /// getChildren(path).
    GetChildren {
        /// The node.
        path: String,
    },
}

/// The result of one [`ReadOp`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadResult {
    /// Data and Stat.
    Data(Bytes, Stat),
    /// Children names (sorted) and the parent's Stat.
    Children(Vec<String>, Stat),
}

/// A client request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// Open a new session with the requested timeout (negotiated by the server).
    Connect {
        /// Requested session timeout.
        timeout_ms: u32,
    },
    /// Re-attach an existing session on this connection.
    Reattach {
        /// The session.
        session: SessionId,
        /// Its password.
        password: [u8; 16],
        /// The last zxid the client has seen.
        last_zxid_seen: i64,
    },
    /// Close the session (deletes its ephemerals).
    Close,
    /// create(path, data, acl, mode, ttl).
    Create {
        /// Path (a prefix for sequential modes).
        path: String,
        /// Initial data.
        data: Bytes,
        /// ACL.
        acl: Vec<Acl>,
        /// Mode.
        mode: CreateMode,
        /// TTL for the TTL modes, else 0.
        ttl_ms: i64,
    },
    /// delete(path, version).
    Delete {
        /// The node.
        path: String,
        /// Expected version or -1.
        version: i32,
    },
    /// setData(path, data, version).
    SetData {
        /// The node.
        path: String,
        /// New data.
        data: Bytes,
        /// Expected version or -1.
        version: i32,
    },
    /// setACL(path, acl, aversion).
    SetAcl {
        /// The node.
        path: String,
        /// New ACL.
        acl: Vec<Acl>,
        /// Expected aversion or -1.
        version: i32,
    },
    /// multi(ops): create, delete, setData, setACL and check ops, all or nothing.
    Multi(Vec<WriteOp>),
    /// sync(path): a no-op through the write pipeline; reads after it see every write
    /// committed before it.
    Sync {
        /// The path (only echoed back, as ZooKeeper does).
        path: String,
    },
    /// exists(path, watch).
    Exists {
        /// The node.
        path: String,
        /// Leave an exists watch.
        watch: bool,
    },
    /// getData(path, watch).
    GetData {
        /// The node.
        path: String,
        /// Leave a data watch.
        watch: bool,
    },
    /// getChildren(path, watch), with the parent's Stat.
    GetChildren {
        /// The node.
        path: String,
        /// Leave a child watch.
        watch: bool,
    },
    /// getAllChildrenNumber(path).
    GetAllChildrenNumber {
        /// The node.
        path: String,
    },
    /// getEphemerals(prefix): the session's ephemerals whose path starts with `prefix`.
    GetEphemerals {
        /// Path prefix ("/" for all).
        prefix: String,
    },
    /// getACL(path).
    GetAcl {
        /// The node.
        path: String,
    },
    /// multiRead(ops): each read succeeds or fails on its own.
    MultiRead(Vec<ReadOp>),
    /// addWatch(path, mode).
    AddWatch {
        /// The path (need not exist).
        path: String,
        /// Persistent or persistent recursive.
        mode: AddWatchMode,
    },
    /// setWatches: re-registers a re-attached session's watches on this server. For
    /// each one-shot watch whose node changed after `relative_zxid` the matching event
    /// fires at once instead (ZooKeeper's semantics); persistent ones are re-added.
    SetWatches {
        /// The last zxid the client saw.
        relative_zxid: i64,
        /// The watches: path and kind.
        watches: Vec<(String, datatree::WatcherKind)>,
    },
    /// removeWatches(path, type).
    RemoveWatches {
        /// The path.
        path: String,
        /// Which watches.
        which: WatcherType,
    },
    /// addAuth(scheme, auth): adds ids to this connection (handled by the
    /// connection's own server, not replicated; lost when the connection is).
    AddAuth {
        /// The scheme (`digest`).
        scheme: String,
        /// The credentials (`user:password` for digest).
        auth: Vec<u8>,
    },
    /// setQuota(path, count, bytes) (admin; needs ADMIN on the node).
    SetQuota {
        /// The quota root.
        path: String,
        /// Maximum number of nodes in the subtree (the root included), or -1.
        count: i64,
        /// Maximum total data bytes in the subtree, or -1.
        bytes: i64,
    },
    /// removeQuota(path) (admin; needs ADMIN on the node).
    RemoveQuota {
        /// The quota root.
        path: String,
    },
    /// The quota set on a path and the subtree's usage.
    GetQuota {
        /// The quota root.
        path: String,
    },
}

/// A quota and the current usage of its subtree ([`Request::GetQuota`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaInfo {
    /// The limits.
    pub limit: datatree::Quota,
    /// Nodes in the subtree now.
    pub count: i64,
    /// Data bytes in the subtree now.
    pub bytes: i64,
}

/// The conversions between the single-write requests and their [`WriteOp`]s, from
/// one list of the variants and their fields (the same names on both sides).
macro_rules! single_writes {
    ($($variant:ident { $($field:ident),* }),* $(,)?) => {
        /// A create, delete, setData or setACL request as the [`WriteOp`] a multi
        /// would hold for it; any other request comes back as it was.
        pub fn into_write_op(self) -> Result<WriteOp, Request> {
            match self {
                $(Request::$variant { $($field),* } => Ok(WriteOp::$variant { $($field),* }),)*
                other => Err(other),
            }
        }

        /// [`Request::into_write_op`] for a borrowed request: `None` (and no copy) for
        /// any request other than create, delete, setData and setACL.
        pub fn to_write_op(&self) -> Option<WriteOp> {
            match self {
                $(Request::$variant { .. } => self.clone().into_write_op().ok(),)*
                _ => None,
            }
        }

        /// The request for one create, delete, setData or setACL op (the inverse of
        /// [`Request::into_write_op`]); any other op comes back as it was.
        pub fn from_write_op(op: WriteOp) -> Result<Request, WriteOp> {
            match op {
                $(WriteOp::$variant { $($field),* } => Ok(Request::$variant { $($field),* }),)*
                other => Err(other),
            }
        }
    };
}

impl Request {
    single_writes! {
        Create { path, data, acl, mode, ttl_ms },
        Delete { path, version },
        SetData { path, data, version },
        SetAcl { path, acl, version },
    }

    /// Whether the request goes through the write pipeline (a txn).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Request::Connect { .. }
                | Request::Reattach { .. }
                | Request::Close
                | Request::Create { .. }
                | Request::Delete { .. }
                | Request::SetData { .. }
                | Request::SetAcl { .. }
                | Request::Multi(_)
                | Request::Sync { .. }
                | Request::SetQuota { .. }
                | Request::RemoveQuota { .. }
        )
    }

    /// Approximate encoded size, for the request size limit.
    pub fn size_bytes(&self) -> usize {
        fn acl_len(acl: &[Acl]) -> usize {
            acl.iter()
                .map(|a| 8 + a.id.scheme.len() + a.id.id.len())
                .sum()
        }
        fn op_len(op: &WriteOp) -> usize {
            match op {
                WriteOp::Create {
                    path, data, acl, ..
                } => 16 + path.len() + data.len() + acl_len(acl),
                WriteOp::SetData { path, data, .. } => 8 + path.len() + data.len(),
                WriteOp::SetAcl { path, acl, .. } => 8 + path.len() + acl_len(acl),
                WriteOp::Delete { path, .. } | WriteOp::Check { path, .. } => 8 + path.len(),
                WriteOp::Multi(ops) => ops.iter().map(op_len).sum(),
                _ => 64,
            }
        }
        match self {
            Request::Create {
                path, data, acl, ..
            } => 16 + path.len() + data.len() + acl_len(acl),
            Request::SetData { path, data, .. } => 8 + path.len() + data.len(),
            Request::SetAcl { path, acl, .. } => 8 + path.len() + acl_len(acl),
            Request::Multi(ops) => ops.iter().map(op_len).sum(),
            Request::MultiRead(ops) => ops.len() * 64,
            Request::AddAuth { scheme, auth } => 8 + scheme.len() + auth.len(),
            _ => 64,
        }
    }
}

/// A successful reply.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Response {
    /// A session was opened or re-attached.
    Connected {
        /// The session.
        session: SessionId,
        /// Its password (for re-attaching elsewhere).
        password: [u8; 16],
        /// The negotiated timeout.
        timeout_ms: u32,
    },
    /// The session is closed.
    Closed,
    /// create: the final path and the new node's Stat.
    Created {
        /// Final path (sequential suffix appended).
        path: String,
        /// The new node's Stat.
        stat: Stat,
    },
    /// delete succeeded.
    Deleted,
    /// setData / setACL: the Stat after the change.
    Stat(Stat),
    /// multi succeeded: one result per op.
    Multi(Vec<OpResult>),
    /// sync completed.
    Synced {
        /// The path given.
        path: String,
    },
    /// exists: the Stat, or `None` if the node does not exist.
    Exists(Option<Stat>),
    /// getData.
    Data(Bytes, Stat),
    /// getChildren.
    Children(Vec<String>, Stat),
    /// getAllChildrenNumber.
    Count(u64),
    /// getEphemerals.
    Ephemerals(Vec<String>),
    /// getACL.
    Acl(Vec<Acl>, Stat),
    /// multiRead: one result per read.
    MultiRead(Vec<Result<ReadResult, crate::Error>>),
    /// addWatch / removeWatches / addAuth / setQuota / removeQuota succeeded.
    Done,
    /// getQuota: the quota on the path, `None` if it has none.
    Quota(Option<QuotaInfo>),
}

/// A session-level event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionEvent {
    /// The session is (again) attached to a serving node.
    Connected,
    /// The node serving the session left the quorum; requests fail with
    /// ConnectionLoss until the session is re-attached.
    Disconnected,
    /// The session expired; its ephemerals are gone.
    Expired,
    /// The session was closed by its client.
    Closed,
}

/// One event of a session's ordered stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// A watch fired.
    Watch(WatchedEvent),
    /// The session's state changed.
    Session(SessionEvent),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn single_writes_convert_to_write_ops_and_back() {
        let requests = [
            Request::Create {
                path: "/a".into(),
                data: Bytes::from_static(b"x"),
                acl: Acl::open_unsafe(),
                mode: CreateMode::EphemeralSequential,
                ttl_ms: 0,
            },
            Request::Delete {
                path: "/a".into(),
                version: 3,
            },
            Request::SetData {
                path: "/a".into(),
                data: Bytes::from_static(b"y"),
                version: -1,
            },
            Request::SetAcl {
                path: "/a".into(),
                acl: Acl::read_unsafe(),
                version: 1,
            },
        ];
        for r in requests {
            let op = r.clone().into_write_op().unwrap();
            assert_eq!(r.to_write_op().as_ref(), Some(&op));
            assert_eq!(Request::from_write_op(op).unwrap(), r);
        }
        let sync = Request::Sync { path: "/".into() };
        assert_eq!(sync.to_write_op(), None);
        assert_eq!(sync.clone().into_write_op(), Err(sync));
        let multi = Request::Multi(vec![]);
        assert_eq!(multi.clone().into_write_op(), Err(multi));
        let check = WriteOp::Check {
            path: "/a".into(),
            version: 0,
        };
        assert_eq!(Request::from_write_op(check.clone()), Err(check));
    }
}
