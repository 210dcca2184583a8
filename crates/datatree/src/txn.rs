//! Self-contained transactions and their deterministic application to the tree.
//!
//! A [`Txn`] carries every value its application needs (zxid, time, final sequential
//! name, owner, new versions), so applying the same txns in the same order produces
//! identical trees on every replica. Preparation ([`crate::prep`]) turns client
//! requests into txns; application re-checks each txn and refuses (with
//! [`Error::SystemError`], leaving the tree untouched) one that does not fit the tree,
//! which means the replica has diverged.

use std::sync::Arc;

use bytes::Bytes;

use crate::acl::Acl;
use crate::error::Error;
use crate::event::{Change, ChangeKind, SessionId};
use crate::mode::NodeKind;
use crate::quota::Quota;
use crate::stat::Stat;
use crate::tree::DataTree;
use crate::undo::Undo;

/// The create part of a transaction, with every computed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTxn {
    /// Final path (sequential suffix already appended).
    pub path: String,
    /// Initial data.
    pub data: Bytes,
    /// The ACL after `auth` expansion.
    pub acl: Vec<Acl>,
    /// What kind of node.
    pub kind: NodeKind,
    /// Owning session for ephemerals, `SessionId(0)` otherwise.
    pub owner: SessionId,
    /// TTL in ms for TTL nodes, 0 otherwise.
    pub ttl_ms: i64,
    /// The parent's create count after this create (its old count + 1).
    pub parent_creates: i32,
}

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxnOp {
    /// Create a node.
    Create(CreateTxn),
    /// Delete a childless node.
    Delete {
        /// The node.
        path: String,
    },
    /// Replace a node's data.
    SetData {
        /// The node.
        path: String,
        /// New data.
        data: Bytes,
        /// The node's version after this change (old + 1).
        version: i32,
    },
    /// Replace a node's ACL.
    SetAcl {
        /// The node.
        path: String,
        /// New ACL (after `auth` expansion).
        acl: Vec<Acl>,
        /// The node's aversion after this change (old + 1).
        version: i32,
    },
    /// Check a node's version (only inside a multi); changes nothing.
    Check {
        /// The node.
        path: String,
        /// Expected version, or -1 for existence only.
        version: i32,
    },
    /// Close a session: delete its ephemerals. `paths` is the leader's list; any
    /// ephemeral the replica still indexes for the session is deleted too, so no
    /// ephemeral can outlive its session on one replica (ZOOKEEPER-2355 class).
    CloseSession {
        /// The closing session.
        session: SessionId,
        /// Its ephemerals as the leader saw them, sorted.
        paths: Vec<String>,
    },
    /// Set (or replace) a quota on a path.
    SetQuota {
        /// The quota root.
        path: String,
        /// The limits.
        quota: Quota,
    },
    /// Remove a quota.
    RemoveQuota {
        /// The quota root.
        path: String,
    },
    /// All-or-nothing sequence of ops; each sees the effects of the ones before it.
    Multi(Vec<TxnOp>),
}

/// A transaction: an op plus the zxid and time the leader assigned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    /// The zxid (epoch << 32 | counter).
    pub zxid: i64,
    /// Leader time in ms, used for ctime/mtime.
    pub time_ms: i64,
    /// What to do.
    pub op: TxnOp,
}

/// A single-op setData txn read in place from its encoding
/// ([`crate::txn_codec::decode_set_data`]): path and data borrow the encoded bytes, so
/// reading it allocates and reference-counts nothing. Applied with
/// [`DataTree::apply_set_data`], exactly as the equivalent [`Txn`] would be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetDataRef<'a> {
    /// The zxid (epoch << 32 | counter).
    pub zxid: i64,
    /// Leader time in ms (the new mtime).
    pub time_ms: i64,
    /// The node.
    pub path: &'a str,
    /// The new data.
    pub data: &'a [u8],
    /// The node's version after this setData.
    pub version: i32,
}

impl SetDataRef<'_> {
    /// The owned [`Txn`] this stands for (copies path and data).
    pub fn to_txn(&self) -> Txn {
        Txn {
            zxid: self.zxid,
            time_ms: self.time_ms,
            op: TxnOp::SetData {
                path: self.path.to_owned(),
                data: Bytes::copy_from_slice(self.data),
                version: self.version,
            },
        }
    }
}

/// The result of one applied op, as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpResult {
    /// The node was created at `path`.
    Created {
        /// Final path.
        path: String,
        /// The new node's Stat.
        stat: Stat,
    },
    /// The node was deleted.
    Deleted,
    /// The data was set.
    DataSet {
        /// Stat after the change.
        stat: Stat,
    },
    /// The ACL was set.
    AclSet {
        /// Stat after the change.
        stat: Stat,
    },
    /// A multi's check passed.
    Checked,
    /// The session was closed.
    SessionClosed,
    /// A quota was set or removed.
    QuotaChanged,
    /// This op of a failed multi: its error (the failing op), `RuntimeInconsistency`
    /// (ops after it) — ops before it report their normal result code 0 as `Ok`.
    Error(Error),
    /// An op of a failed multi that came before the failing op (ZooKeeper code 0).
    Ok,
}

/// What applying a txn produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// One result per op (one element unless the txn is a multi).
    pub results: Vec<OpResult>,
    /// Raw changes in order, for the watch registry.
    pub changes: Vec<Change>,
}

fn diverged(what: String) -> Error {
    Error::SystemError(format!("txn does not fit this replica's tree: {what}"))
}

impl DataTree {
    /// Applies a committed txn. On `Err` nothing was changed: the txn did not fit the
    /// tree, which means this replica has diverged and must stop serving.
    pub fn apply(&mut self, txn: &Txn) -> Result<Applied, Error> {
        let mut applied = Applied::default();
        self.apply_into(txn, &mut applied, true)?;
        Ok(applied)
    }

    /// [`DataTree::apply`] into buffers the caller keeps between txns (both are
    /// cleared first), so that applying allocates nothing per txn for them. With
    /// `changes` false no [`Change`] is recorded: for a server with no watch
    /// registered, where nobody would read them.
    pub fn apply_into(&mut self, txn: &Txn, out: &mut Applied, changes: bool) -> Result<(), Error> {
        out.results.clear();
        out.changes.clear();
        let mut undo = Vec::new();
        let ops: &[TxnOp] = match &txn.op {
            TxnOp::Multi(ops) => ops,
            single => std::slice::from_ref(single),
        };
        let multi = ops.len() > 1;
        let mut sink = ChangeSink {
            out: &mut out.changes,
            on: changes,
        };
        for op in ops {
            match self.apply_op(txn, op, &mut undo, &mut sink, multi) {
                Ok(r) => out.results.push(r),
                Err(e) => {
                    self.rollback(undo);
                    out.results.clear();
                    out.changes.clear();
                    return Err(e);
                }
            }
        }
        self.last_applied = txn.zxid;
        Ok(())
    }

    /// [`DataTree::apply_into`] for a setData read in place (the follower's hot path:
    /// no owned txn is built). Same results, changes, digest and errors as applying
    /// [`SetDataRef::to_txn`].
    pub fn apply_set_data(
        &mut self,
        t: &SetDataRef<'_>,
        out: &mut Applied,
        changes: bool,
    ) -> Result<(), Error> {
        out.results.clear();
        out.changes.clear();
        let mut sink = ChangeSink {
            out: &mut out.changes,
            on: changes,
        };
        // A single op: nothing can fail after it, so no undo record.
        let r = self.set_data_op(
            t.path,
            t.data,
            t.version,
            (t.zxid, t.time_ms),
            None,
            &mut sink,
        );
        match r {
            Ok(r) => out.results.push(r),
            Err(e) => {
                out.changes.clear();
                return Err(e);
            }
        }
        self.last_applied = t.zxid;
        Ok(())
    }

    fn set_data_op(
        &mut self,
        path: &str,
        data: &[u8],
        version: i32,
        (zxid, time): (i64, i64),
        undo: Option<&mut Vec<Undo>>,
        changes: &mut ChangeSink<'_>,
    ) -> Result<OpResult, Error> {
        let stat = self.do_set_data(path, data, version, zxid, time, undo)?;
        changes.push(path, ChangeKind::DataChanged);
        Ok(OpResult::DataSet { stat })
    }

    fn apply_op(
        &mut self,
        txn: &Txn,
        op: &TxnOp,
        undo: &mut Vec<Undo>,
        changes: &mut ChangeSink<'_>,
        multi: bool,
    ) -> Result<OpResult, Error> {
        let (zxid, time) = (txn.zxid, txn.time_ms);
        match op {
            TxnOp::Create(c) => {
                let stat = self.do_create(c, zxid, time, undo)?;
                changes.push(&c.path, ChangeKind::Created);
                changes.push(
                    crate::path::parent(&c.path).unwrap_or("/"),
                    ChangeKind::ChildrenChanged,
                );
                Ok(OpResult::Created {
                    path: c.path.clone(),
                    stat,
                })
            }
            TxnOp::Delete { path } => {
                self.do_delete(path, zxid, undo)?;
                changes.push(path, ChangeKind::Deleted);
                changes.push(
                    crate::path::parent(path).unwrap_or("/"),
                    ChangeKind::ChildrenChanged,
                );
                Ok(OpResult::Deleted)
            }
            TxnOp::SetData {
                path,
                data,
                version,
            } => {
                // Nothing after a single op can fail: only a multi needs its undo record.
                let undo = if multi { Some(&mut *undo) } else { None };
                self.set_data_op(path, data, *version, (zxid, time), undo, changes)
            }
            TxnOp::SetAcl { path, acl, version } => {
                let stat = self.do_set_acl(path, acl, *version, undo)?;
                Ok(OpResult::AclSet { stat })
            }
            TxnOp::Check { path, version } => {
                let st = self
                    .stat(path)
                    .ok_or_else(|| diverged(format!("check of missing {path}")))?;
                if *version != -1 && st.version != *version {
                    return Err(diverged(format!("check version of {path}")));
                }
                Ok(OpResult::Checked)
            }
            TxnOp::CloseSession { session, paths } => {
                if session.0 == 0 {
                    return Err(diverged("closeSession of session 0".into()));
                }
                let mut all: Vec<String> = paths.clone();
                let listed: std::collections::HashSet<&str> =
                    paths.iter().map(String::as_str).collect();
                let extra: Vec<String> = self
                    .ephemerals(*session)
                    .into_iter()
                    .filter(|p| !listed.contains(p.as_str()))
                    .collect();
                all.extend(extra);
                for p in &all {
                    if !self.contains(p) {
                        // Already gone on this replica; nothing to do.
                        continue;
                    }
                    if self.ephemeral_owner(p) != Some(*session) {
                        return Err(diverged(format!("{p} is not an ephemeral of {session}")));
                    }
                    self.do_delete(p, zxid, undo)?;
                    changes.push(p, ChangeKind::Deleted);
                    changes.push(
                        crate::path::parent(p).unwrap_or("/"),
                        ChangeKind::ChildrenChanged,
                    );
                }
                Ok(OpResult::SessionClosed)
            }
            TxnOp::SetQuota { path, quota } => {
                if !self.contains(path) {
                    return Err(diverged(format!("quota on missing {path}")));
                }
                self.do_set_quota(path, Some(*quota), undo);
                Ok(OpResult::QuotaChanged)
            }
            TxnOp::RemoveQuota { path } => {
                self.do_set_quota(path, None, undo);
                Ok(OpResult::QuotaChanged)
            }
            TxnOp::Multi(_) => Err(diverged("nested multi".into())),
        }
    }
}

/// Where `apply_op` records changes; off when nobody watches.
struct ChangeSink<'a> {
    out: &'a mut Vec<Change>,
    on: bool,
}

impl ChangeSink<'_> {
    fn push(&mut self, path: &str, kind: ChangeKind) {
        if self.on {
            self.out.push(Change {
                path: Arc::from(path),
                kind,
            });
        }
    }
}
