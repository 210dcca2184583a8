//! Preparation: validating client write requests against the tree *plus* the changes
//! still in flight, and turning them into self-contained [`Txn`](crate::Txn) ops.
//!
//! This is ZooKeeper's `PrepRequestProcessor` with its `outstandingChanges`: the leader
//! proposes txns before they commit, so a pipelined `create /a` then `create /a/b` must
//! see `/a` as existing. [`Prep`] keeps an overlay of the pending state of every path a
//! proposed-but-unapplied txn touched; [`Prep::handle_applied`] drops overlay entries as
//! their txns are applied, and [`Prep::reset`] forgets everything (on a leader change,
//! when uncommitted proposals may be gone).

use std::collections::{BTreeSet, HashMap, VecDeque};

mod overlay;
use overlay::{Overlay, Pending};
use std::sync::Arc;

use bytes::Bytes;

use crate::acl::{self, Acl, Id, Perms};
use crate::error::Error;
use crate::event::SessionId;
use crate::mode::{CreateMode, NodeKind, TTL_MAX_MS};
use crate::path;
use crate::quota::Quota;
use crate::tree::{DataTree, NodeView};
use crate::txn::{CreateTxn, OpResult, TxnOp};

/// A client write request, before preparation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteOp {
    /// create(path, data, acl, mode[, ttl]).
    Create {
        /// Requested path (a prefix for sequential modes).
        path: String,
        /// Initial data.
        data: Bytes,
        /// Requested ACL (`auth` entries are expanded).
        acl: Vec<Acl>,
        /// Create mode.
        mode: CreateMode,
        /// TTL in ms for the TTL modes; must be 0 for the others.
        ttl_ms: i64,
    },
    /// delete(path, version); version -1 matches any.
    Delete {
        /// The node.
        path: String,
        /// Expected version or -1.
        version: i32,
    },
    /// setData(path, data, version); version -1 matches any.
    SetData {
        /// The node.
        path: String,
        /// New data.
        data: Bytes,
        /// Expected version or -1.
        version: i32,
    },
    /// setACL(path, acl, aversion); version -1 matches any.
    SetAcl {
        /// The node.
        path: String,
        /// New ACL.
        acl: Vec<Acl>,
        /// Expected aversion or -1.
        version: i32,
    },
    /// check(path, version), inside a multi; version -1 tests existence only.
    Check {
        /// The node.
        path: String,
        /// Expected version or -1.
        version: i32,
    },
    /// All-or-nothing batch of the ops above (no nesting).
    Multi(Vec<WriteOp>),
    /// Leader housekeeping: delete an empty used container or an expired TTL node.
    /// Re-checks the rule (a TTL against `now_ms`) and fails, so the leader proposes
    /// nothing, if the node no longer qualifies or has a change in flight.
    DeleteExpired {
        /// The node.
        path: String,
        /// Leader time in ms, to re-check a TTL.
        now_ms: i64,
    },
    /// Set a quota (admin operation).
    SetQuota {
        /// The quota root.
        path: String,
        /// The limits.
        quota: Quota,
    },
    /// Remove a quota (admin operation).
    RemoveQuota {
        /// The quota root.
        path: String,
    },
}

impl WriteOp {
    /// A create of `path` with `data`, `acl` and `mode` (no TTL), as ZooKeeper's
    /// `Op.create`: the usual element of a `multi`.
    pub fn create(
        path: impl Into<String>,
        data: impl Into<Bytes>,
        acl: Vec<Acl>,
        mode: CreateMode,
    ) -> WriteOp {
        WriteOp::Create {
            path: path.into(),
            data: data.into(),
            acl,
            mode,
            ttl_ms: 0,
        }
    }
}

/// Who is asking, and the zxid the txn will get.
#[derive(Debug, Clone, Copy)]
pub struct PrepContext<'a> {
    /// The requesting session (0 for internal requests).
    pub session: SessionId,
    /// The session's authenticated ids (for ACL checks).
    pub auth: &'a [Id],
    /// The zxid the resulting txn will carry.
    pub zxid: i64,
}

/// Why a request produced no txn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrepError {
    /// A single op failed.
    Op(Error),
    /// A multi failed: one result per op, ZooKeeper style (ops before the failing one
    /// [`OpResult::Ok`], the failing one its error, the rest `RuntimeInconsistency`).
    Multi(Vec<OpResult>),
}

impl PrepError {
    /// The error of a failed single op, or the first real error of a failed multi.
    pub fn error(&self) -> Error {
        match self {
            PrepError::Op(e) => e.clone(),
            PrepError::Multi(rs) => rs
                .iter()
                .find_map(|r| match r {
                    OpResult::Error(e) if *e != Error::RuntimeInconsistency => Some(e.clone()),
                    _ => None,
                })
                .unwrap_or(Error::RuntimeInconsistency),
        }
    }
}

/// Preparation settings.
///
/// The size limits play the role of ZooKeeper's `jute.maxbuffer`: a request over them
/// is refused with `BadArguments` before it can become a txn, so every txn and every
/// snapshot stays within what the decoders accept (the codec bounds are larger).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrepConfig {
    /// Whether TTL nodes may be created (ZooKeeper's `extendedTypesEnabled`; Ensemble
    /// enables them by default).
    pub ttl_enabled: bool,
    /// Largest encoded request (all ops of a multi together), default 1 MiB - 1.
    pub max_request_bytes: usize,
    /// Longest path in bytes, default 32 KiB (the codec accepts 64 KiB).
    pub max_path_bytes: usize,
    /// Most entries in one ACL, default 64 (the codec accepts 1024).
    pub max_acl_entries: usize,
    /// Longest ACL scheme or id in bytes, default 1 KiB (the codec accepts 4 KiB).
    pub max_id_bytes: usize,
    /// Most ops in one multi, default 10,000 (the codec accepts 65,536).
    pub max_multi_ops: usize,
}

impl Default for PrepConfig {
    fn default() -> Self {
        PrepConfig {
            ttl_enabled: true,
            max_request_bytes: (1 << 20) - 1,
            max_path_bytes: 32 * 1024,
            max_acl_entries: 64,
            max_id_bytes: 1024,
            max_multi_ops: 10_000,
        }
    }
}

impl PrepConfig {
    fn too_big(what: &str, got: usize, max: usize) -> Error {
        Error::BadArguments(format!(
            "{what} of {got} bytes or entries exceeds the limit {max}"
        ))
    }

    /// Checks `op`'s sizes; returns its approximate encoded size.
    fn check_size(&self, op: &WriteOp) -> Result<usize, Error> {
        let path = |p: &str| {
            if p.len() > self.max_path_bytes {
                Err(Self::too_big("path", p.len(), self.max_path_bytes))
            } else {
                Ok(p.len() + 8)
            }
        };
        let acl = |a: &[Acl]| {
            if a.len() > self.max_acl_entries {
                return Err(Self::too_big("ACL", a.len(), self.max_acl_entries));
            }
            let mut n = 4;
            for e in a {
                let l = e.id.scheme.len().max(e.id.id.len());
                if l > self.max_id_bytes {
                    return Err(Self::too_big("ACL id", l, self.max_id_bytes));
                }
                n += 12 + e.id.scheme.len() + e.id.id.len();
            }
            Ok(n)
        };
        Ok(16
            + match op {
                WriteOp::Create {
                    path: p,
                    data,
                    acl: a,
                    ..
                } => path(p)? + data.len() + acl(a)?,
                WriteOp::SetData { path: p, data, .. } => path(p)? + data.len(),
                WriteOp::SetAcl {
                    path: p, acl: a, ..
                } => path(p)? + acl(a)?,
                WriteOp::Delete { path: p, .. }
                | WriteOp::Check { path: p, .. }
                | WriteOp::DeleteExpired { path: p, .. }
                | WriteOp::SetQuota { path: p, .. }
                | WriteOp::RemoveQuota { path: p } => path(p)?,
                WriteOp::Multi(ops) => {
                    if ops.len() > self.max_multi_ops {
                        return Err(Self::too_big("multi", ops.len(), self.max_multi_ops));
                    }
                    let mut n = 0;
                    for op in ops {
                        n += self.check_size(op)?;
                    }
                    n
                }
            })
    }
}

/// The version after `v`: +1, skipping -1 ("any version") when it wraps, as ZooKeeper
/// does since ZOOKEEPER-4743.
pub fn next_version(v: i32) -> i32 {
    match v.wrapping_add(1) {
        -1 => 0,
        n => n,
    }
}

#[derive(Debug, Default)]
struct Batch {
    zxid: i64,
    quota: Vec<(String, i64, i64)>,
}

/// The leader's preparation state: the overlay of in-flight changes.
#[derive(Debug, Default)]
pub struct Prep {
    config: PrepConfig,
    /// Keyed by shared paths: one allocation serves the overlay, the in-flight queue
    /// and (in a multi) the undo record.
    overlay: Overlay,
    /// Every overlay entry set, with its txn's zxid and its path's overlay hash, in
    /// zxid order (one flat queue rather than a list per txn: no allocation per txn).
    set_paths: VecDeque<(i64, Arc<str>, u64)>,
    /// Txns with quota effects (most have none).
    batches: VecDeque<Batch>,
    quota_pending: HashMap<String, (i64, i64)>,
}

/// The overlay entries a request replaced, kept so a failing multi can be undone. A
/// single op changes the overlay only after its last check, so it keeps nothing
/// (`on` false) and saves the allocation.
struct Saved {
    on: bool,
    old: Vec<(Arc<str>, Option<Pending>)>,
}

impl Saved {
    fn new(on: bool) -> Saved {
        Saved {
            on,
            old: Vec::new(),
        }
    }
}

impl Prep {
    /// A preparer with the given settings.
    pub fn new(config: PrepConfig) -> Prep {
        Prep {
            config,
            ..Prep::default()
        }
    }

    /// Number of paths with in-flight changes.
    pub fn pending_paths(&self) -> usize {
        self.overlay.len()
    }

    /// Forgets every in-flight change (for example after a leader change).
    pub fn reset(&mut self) {
        self.overlay.clear();
        self.set_paths.clear();
        self.batches.clear();
        self.quota_pending.clear();
    }

    /// Drops the overlay entries of every txn with zxid up to `zxid`, which the tree has
    /// now applied.
    pub fn handle_applied(&mut self, zxid: i64) {
        while self.set_paths.front().is_some_and(|(z, _, _)| *z <= zxid) {
            let Some((z, p, h)) = self.set_paths.pop_front() else {
                break;
            };
            // The entry goes if it is this txn's, and stays if a later txn has
            // replaced it.
            self.overlay.remove_if_set_by(&p, h, z);
        }
        while self.batches.front().is_some_and(|b| b.zxid <= zxid) {
            let Some(b) = self.batches.pop_front() else {
                break;
            };
            for (q, c, by) in b.quota {
                if let Some(e) = self.quota_pending.get_mut(&q) {
                    e.0 -= c;
                    e.1 -= by;
                    if *e == (0, 0) {
                        self.quota_pending.remove(&q);
                    }
                }
            }
        }
    }

    /// The pending state of `p`: the overlay's if any, else the tree's.
    fn view(&self, tree: &DataTree, p: &str) -> Option<NodeView> {
        self.view_h(tree, p, self.overlay.hash(p))
    }

    /// [`Prep::view`] with `p`'s overlay hash already computed.
    fn view_h(&self, tree: &DataTree, p: &str, h: u64) -> Option<NodeView> {
        match self.overlay.get(p, h) {
            Some(e) => e.view.clone(),
            None => tree.view(p),
        }
    }

    fn set(&mut self, saved: &mut Saved, batch: &mut Batch, p: &str, view: Option<NodeView>) {
        let h = self.overlay.hash(p);
        self.set_h(saved, batch, p, h, view);
    }

    /// [`Prep::set`] with `p`'s overlay hash already computed.
    fn set_h(
        &mut self,
        saved: &mut Saved,
        batch: &mut Batch,
        p: &str,
        h: u64,
        view: Option<NodeView>,
    ) {
        let (key, old) = self.overlay.replace(p, h, batch.zxid, view);
        if saved.on {
            saved.old.push((Arc::clone(&key), old));
        }
        self.set_paths.push_back((batch.zxid, key, h));
    }

    /// Validates `op` for the session in `ctx` and returns the txn op to propose; the
    /// overlay then reflects it, so the next request sees its effects.
    pub fn prepare(
        &mut self,
        tree: &DataTree,
        ctx: &PrepContext<'_>,
        op: &WriteOp,
    ) -> Result<TxnOp, PrepError> {
        let (mut batch, mut saved, mark) = self.begin(ctx, op)?;
        let result = match op {
            WriteOp::Multi(ops) => {
                let mut out = Vec::with_capacity(ops.len());
                let mut failure = None;
                for (i, op) in ops.iter().enumerate() {
                    // As ZooKeeper's MultiOperationRecord: only create, delete, setData
                    // and check travel in a multi.
                    let allowed = matches!(
                        op,
                        WriteOp::Create { .. }
                            | WriteOp::Delete { .. }
                            | WriteOp::SetData { .. }
                            | WriteOp::Check { .. }
                    );
                    let r = if !allowed {
                        Err(Error::MarshallingError(
                            "op type not allowed inside multi".into(),
                        ))
                    } else {
                        self.prepare_one(tree, ctx, op, &mut saved, &mut batch)
                    };
                    match r {
                        Ok(t) => out.push(t),
                        Err(e) => {
                            failure = Some((i, e));
                            break;
                        }
                    }
                }
                match failure {
                    None => Ok(TxnOp::Multi(out)),
                    Some((i, e)) => Err(PrepError::Multi(
                        (0..ops.len())
                            .map(|j| match j.cmp(&i) {
                                std::cmp::Ordering::Less => OpResult::Ok,
                                std::cmp::Ordering::Equal => OpResult::Error(e.clone()),
                                std::cmp::Ordering::Greater => {
                                    OpResult::Error(Error::RuntimeInconsistency)
                                }
                            })
                            .collect(),
                    )),
                }
            }
            single => self
                .prepare_one(tree, ctx, single, &mut saved, &mut batch)
                .map_err(PrepError::Op),
        };
        self.finish(result, batch, saved, mark)
    }

    /// [`Prep::prepare`] taking the request by value: a setData's path and data move
    /// into the txn instead of being copied (the leader's hot path; the request is
    /// dropped after preparation anyway). Same checks, txns and errors.
    pub fn prepare_owned(
        &mut self,
        tree: &DataTree,
        ctx: &PrepContext<'_>,
        op: WriteOp,
    ) -> Result<TxnOp, PrepError> {
        if !matches!(op, WriteOp::SetData { .. }) {
            return self.prepare(tree, ctx, &op);
        }
        let (mut batch, mut saved, mark) = self.begin(ctx, &op)?;
        let result = match op {
            WriteOp::SetData {
                path,
                data,
                version,
            } => self
                .prepare_set_data(
                    tree,
                    ctx,
                    &path,
                    data.len(),
                    version,
                    &mut saved,
                    &mut batch,
                )
                .map(|version| TxnOp::SetData {
                    path,
                    data,
                    version,
                }),
            // Not reached (other requests went to `prepare` above); correct anyway.
            other => self.prepare_one(tree, ctx, &other, &mut saved, &mut batch),
        };
        self.finish(result.map_err(PrepError::Op), batch, saved, mark)
    }

    /// The size checks, and the state one request's preparation starts from.
    fn begin(
        &self,
        ctx: &PrepContext<'_>,
        op: &WriteOp,
    ) -> Result<(Batch, Saved, usize), PrepError> {
        let batch = Batch {
            zxid: ctx.zxid,
            ..Batch::default()
        };
        let saved = Saved::new(matches!(op, WriteOp::Multi(_)));
        let mark = self.set_paths.len();
        let size = self.config.check_size(op).map_err(PrepError::Op)?;
        if size > self.config.max_request_bytes {
            return Err(PrepError::Op(PrepConfig::too_big(
                "request",
                size,
                self.config.max_request_bytes,
            )));
        }
        Ok((batch, saved, mark))
    }

    /// Keeps a prepared request's quota effects, or undoes a failed one's overlay
    /// changes.
    fn finish(
        &mut self,
        result: Result<TxnOp, PrepError>,
        batch: Batch,
        saved: Saved,
        mark: usize,
    ) -> Result<TxnOp, PrepError> {
        match result {
            Ok(t) => {
                for (q, c, b) in &batch.quota {
                    let e = self.quota_pending.entry(q.clone()).or_default();
                    e.0 += c;
                    e.1 += b;
                }
                if !batch.quota.is_empty() {
                    self.batches.push_back(batch);
                }
                Ok(t)
            }
            Err(e) => {
                debug_assert!(
                    saved.on || self.set_paths.len() == mark,
                    "a single op changed the overlay before failing"
                );
                for (p, old) in saved.old.into_iter().rev() {
                    self.overlay.restore(&p, old);
                }
                self.set_paths.truncate(mark);
                Err(e)
            }
        }
    }

    /// Builds the closeSession txn for `session`: its ephemerals as the tree and the
    /// in-flight changes see them. Always succeeds.
    pub fn prepare_close_session(
        &mut self,
        tree: &DataTree,
        session: SessionId,
        zxid: i64,
    ) -> TxnOp {
        // The final pending state decides, as in ZooKeeper's closeSession prep: a tree
        // ephemeral counts unless an in-flight change deleted it or (after a delete)
        // re-created it for another session; in-flight creates of this session count.
        let owned = |v: &Option<NodeView>| {
            v.as_ref()
                .is_some_and(|v| v.owner == session && v.kind == NodeKind::Ephemeral)
        };
        let mut set: BTreeSet<String> = tree
            .ephemerals(session)
            .into_iter()
            .filter(|p| {
                let h = self.overlay.hash(p);
                self.overlay.get(p, h).is_none_or(|e| owned(&e.view))
            })
            .collect();
        for e in self.overlay.iter() {
            if owned(&e.view) {
                set.insert(e.key.to_string());
            }
        }
        let paths: Vec<String> = set.into_iter().collect();
        let mut batch = Batch {
            zxid,
            ..Batch::default()
        };
        let mut saved = Saved::new(false);
        for p in &paths {
            self.remove_pending(tree, p, &mut saved, &mut batch);
        }
        if !batch.quota.is_empty() {
            self.batches.push_back(batch);
        }
        TxnOp::CloseSession { session, paths }
    }

    fn remove_pending(&mut self, tree: &DataTree, p: &str, saved: &mut Saved, batch: &mut Batch) {
        let len = self.view(tree, p).map_or(0, |v| v.data_len as i64);
        self.set(saved, batch, p, None);
        if let Some(parent) = path::parent(p) {
            if let Some(mut pv) = self.view(tree, parent) {
                pv.num_children = pv.num_children.saturating_sub(1);
                self.set(saved, batch, parent, Some(pv));
            }
        }
        for q in tree.quota_roots(p) {
            batch.quota.push((q, -1, -len));
        }
    }

    fn check_perm(view: &NodeView, perm: Perms, auth: &[Id], p: &str) -> Result<(), Error> {
        if acl::check(&view.acl, perm, auth) {
            Ok(())
        } else {
            Err(Error::NoAuth(p.to_string()))
        }
    }

    fn check_version(expected: i32, actual: i32, p: &str) -> Result<i32, Error> {
        if expected != -1 && expected != actual {
            return Err(Error::BadVersion(p.to_string()));
        }
        Ok(next_version(actual))
    }

    fn writable(p: &str) -> Result<(), Error> {
        path::validate(p)?;
        if path::is_reserved(p) {
            return Err(Error::BadArguments(format!(
                "{p} is in the reserved /zookeeper subtree"
            )));
        }
        Ok(())
    }

    fn quota_check(
        &self,
        tree: &DataTree,
        p: &str,
        count: i64,
        bytes: i64,
        batch: &mut Batch,
    ) -> Result<(), Error> {
        if tree.quotas.is_empty() {
            return Ok(());
        }
        let mut pending = self.quota_pending.clone();
        for (q, c, b) in &batch.quota {
            let e = pending.entry(q.clone()).or_default();
            e.0 += c;
            e.1 += b;
        }
        if let Some(q) = tree.quota_violation(p, count, bytes, &pending) {
            return Err(Error::QuotaExceeded(format!("{p} (quota on {q})")));
        }
        for q in tree.quota_roots(p) {
            batch.quota.push((q, count, bytes));
        }
        Ok(())
    }

    fn prepare_one(
        &mut self,
        tree: &DataTree,
        ctx: &PrepContext<'_>,
        op: &WriteOp,
        saved: &mut Saved,
        batch: &mut Batch,
    ) -> Result<TxnOp, Error> {
        match op {
            WriteOp::Create {
                path: req,
                data,
                acl,
                mode,
                ttl_ms,
            } => self.prepare_create(tree, ctx, req, data, acl, *mode, *ttl_ms, saved, batch),
            WriteOp::Delete { path: p, version } => {
                Self::writable(p)?;
                let parent =
                    path::parent(p).ok_or_else(|| Error::BadArguments("cannot delete /".into()))?;
                let pv = self
                    .view(tree, parent)
                    .ok_or_else(|| Error::NoNode(p.clone()))?;
                Self::check_perm(&pv, Perms::DELETE, ctx.auth, p)?;
                let v = self.view(tree, p).ok_or_else(|| Error::NoNode(p.clone()))?;
                Self::check_version(*version, v.version, p)?;
                if v.num_children > 0 {
                    return Err(Error::NotEmpty(p.clone()));
                }
                self.remove_pending(tree, p, saved, batch);
                Ok(TxnOp::Delete { path: p.clone() })
            }
            WriteOp::SetData {
                path: p,
                data,
                version,
            } => {
                let new_version =
                    self.prepare_set_data(tree, ctx, p, data.len(), *version, saved, batch)?;
                Ok(TxnOp::SetData {
                    path: p.clone(),
                    data: data.clone(),
                    version: new_version,
                })
            }
            WriteOp::SetAcl {
                path: p,
                acl: requested,
                version,
            } => {
                Self::writable(p)?;
                let fixed = acl::fixup(requested, ctx.auth)?;
                let mut v = self.view(tree, p).ok_or_else(|| Error::NoNode(p.clone()))?;
                Self::check_perm(&v, Perms::ADMIN, ctx.auth, p)?;
                let new_version = Self::check_version(*version, v.aversion, p)?;
                v.aversion = new_version;
                v.acl = Arc::from(fixed.clone());
                self.set(saved, batch, p, Some(v));
                Ok(TxnOp::SetAcl {
                    path: p.clone(),
                    acl: fixed,
                    version: new_version,
                })
            }
            WriteOp::Check { path: p, version } => {
                path::validate(p)?;
                let v = self.view(tree, p).ok_or_else(|| Error::NoNode(p.clone()))?;
                Self::check_perm(&v, Perms::READ, ctx.auth, p)?;
                Self::check_version(*version, v.version, p)?;
                Ok(TxnOp::Check {
                    path: p.clone(),
                    version: *version,
                })
            }
            WriteOp::DeleteExpired { path: p, now_ms } => {
                let v = self.view(tree, p).ok_or_else(|| Error::NoNode(p.clone()))?;
                let qualifies = match v.kind {
                    NodeKind::Container => v.creates > 0 && v.num_children == 0,
                    NodeKind::Ttl => {
                        v.num_children == 0 && now_ms.saturating_sub(v.mtime) > v.ttl_ms
                    }
                    _ => false,
                };
                if !qualifies || self.overlay.get(p, self.overlay.hash(p)).is_some() {
                    // Changed since the sweep looked at it: leave it for the next sweep.
                    return Err(Error::BadArguments(format!(
                        "{p} no longer qualifies for expiry"
                    )));
                }
                self.remove_pending(tree, p, saved, batch);
                Ok(TxnOp::Delete { path: p.clone() })
            }
            WriteOp::SetQuota { path: p, quota } => {
                path::validate(p)?;
                if self.view(tree, p).is_none() {
                    return Err(Error::NoNode(p.clone()));
                }
                Ok(TxnOp::SetQuota {
                    path: p.clone(),
                    quota: *quota,
                })
            }
            WriteOp::RemoveQuota { path: p } => {
                path::validate(p)?;
                if tree.quota(p).is_none() {
                    return Err(Error::NoNode(format!("no quota on {p}")));
                }
                Ok(TxnOp::RemoveQuota { path: p.clone() })
            }
            WriteOp::Multi(_) => Err(Error::BadArguments("nested multi".into())),
        }
    }

    /// setData's checks and overlay update; returns the new version.
    #[allow(clippy::too_many_arguments)] // the fields of a setData request
    fn prepare_set_data(
        &mut self,
        tree: &DataTree,
        ctx: &PrepContext<'_>,
        p: &str,
        data_len: usize,
        version: i32,
        saved: &mut Saved,
        batch: &mut Batch,
    ) -> Result<i32, Error> {
        Self::writable(p)?;
        // One hash for the look-up and the update.
        let h = self.overlay.hash(p);
        let mut v = self
            .view_h(tree, p, h)
            .ok_or_else(|| Error::NoNode(p.to_string()))?;
        Self::check_perm(&v, Perms::WRITE, ctx.auth, p)?;
        // ZooKeeper checks the quota before the version.
        self.quota_check(tree, p, 0, data_len as i64 - v.data_len as i64, batch)?;
        let new_version = Self::check_version(version, v.version, p)?;
        v.version = new_version;
        v.data_len = data_len as u64;
        v.mtime = i64::MAX;
        self.set_h(saved, batch, p, h, Some(v));
        Ok(new_version)
    }

    #[allow(clippy::too_many_arguments)] // the fields of a create request
    fn prepare_create(
        &mut self,
        tree: &DataTree,
        ctx: &PrepContext<'_>,
        req: &str,
        data: &Bytes,
        requested_acl: &[Acl],
        mode: CreateMode,
        ttl_ms: i64,
        saved: &mut Saved,
        batch: &mut Batch,
    ) -> Result<TxnOp, Error> {
        if mode.is_ttl() {
            if !self.config.ttl_enabled {
                return Err(Error::Unimplemented("TTL nodes are disabled".into()));
            }
            if ttl_ms <= 0 || ttl_ms > TTL_MAX_MS {
                return Err(Error::BadArguments(format!(
                    "TTL {ttl_ms} out of range (0, {TTL_MAX_MS}]"
                )));
            }
        } else if ttl_ms > 0 {
            return Err(Error::BadArguments(
                "TTL given for a mode without TTL".into(),
            ));
        }
        if mode.is_sequential() {
            path::validate_sequential_prefix(req)?;
        } else {
            path::validate(req)?;
        }
        // `/q/` + suffix names a child of `/q`; `/` + suffix a child of the root.
        let parent_path = match path::parent(req) {
            Some(p) => p,
            None if mode.is_sequential() => "/",
            // create("/"): the root exists (ZooKeeper answers NodeExists too).
            None => return Err(Error::NodeExists("/".into())),
        };
        // Only the subtree *below* /zookeeper is closed; create("/zookeeper") gets
        // NodeExists and `/zookeeper` + sequential suffix is an ordinary root child.
        if path::is_reserved(parent_path) {
            return Err(Error::BadArguments(format!(
                "{req} is in the reserved /zookeeper subtree"
            )));
        }
        let fixed = acl::fixup(requested_acl, ctx.auth)?;
        let mut pv = self
            .view(tree, parent_path)
            .ok_or_else(|| Error::NoNode(req.to_string()))?;
        Self::check_perm(&pv, Perms::CREATE, ctx.auth, req)?;
        let final_path = if mode.is_sequential() {
            format!("{req}{}", path::sequential_suffix(pv.creates))
        } else {
            req.to_string()
        };
        path::validate(&final_path)?;
        if self.view(tree, &final_path).is_some() {
            return Err(Error::NodeExists(final_path));
        }
        if pv.kind == NodeKind::Ephemeral {
            return Err(Error::NoChildrenForEphemerals(final_path));
        }
        if mode.is_ephemeral() && ctx.session.0 == 0 {
            return Err(Error::BadArguments(
                "ephemeral create without a session".into(),
            ));
        }
        self.quota_check(tree, &final_path, 1, data.len() as i64, batch)?;
        let kind = NodeKind::from(mode);
        let owner = if mode.is_ephemeral() {
            ctx.session
        } else {
            SessionId(0)
        };
        pv.creates = pv.creates.wrapping_add(1);
        pv.num_children += 1;
        let parent_creates = pv.creates;
        self.set(saved, batch, parent_path, Some(pv));
        self.set(
            saved,
            batch,
            &final_path,
            Some(NodeView {
                version: 0,
                aversion: 0,
                creates: 0,
                num_children: 0,
                kind,
                owner,
                acl: Arc::from(fixed.clone()),
                data_len: data.len() as u64,
                // Unknown until the txn gets its time; "never expired" meanwhile (an
                // in-flight node is not eligible for expiry anyway).
                mtime: i64::MAX,
                ttl_ms: if mode.is_ttl() { ttl_ms } else { 0 },
            }),
        );
        Ok(TxnOp::Create(CreateTxn {
            path: final_path,
            data: data.clone(),
            acl: fixed,
            kind,
            owner,
            ttl_ms: if mode.is_ttl() { ttl_ms } else { 0 },
            parent_creates,
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::txn::Txn;

    /// Bad setData requests get the same typed errors by value as by reference, and
    /// leave nothing in the overlay.
    #[test]
    fn owned_set_data_rejects_bad_requests_like_prepare() {
        let tree = DataTree::new();
        let ctx = PrepContext {
            session: SessionId(1),
            auth: &[],
            zxid: 1,
        };
        let set = |path: &str, data: Vec<u8>, version| WriteOp::SetData {
            path: path.into(),
            data: Bytes::from(data),
            version,
        };
        let bad = [
            set("", vec![], -1),
            set("no-slash", vec![], -1),
            set("/a//b", vec![], -1),
            set("/a\u{0}", vec![], -1),
            set("/missing", vec![1], -1),
            set("/zookeeper/quota", vec![], -1),
            set("/zookeeper", vec![], 7),
            set("/x", vec![0; 1 << 20], -1),
            set(&format!("/{}", "p".repeat(40 * 1024)), vec![], -1),
        ];
        for op in bad {
            let mut by_ref = Prep::default();
            let mut by_value = Prep::default();
            let expected = by_ref.prepare(&tree, &ctx, &op);
            let got = by_value.prepare_owned(&tree, &ctx, op.clone());
            assert!(matches!(got, Err(PrepError::Op(_))), "{op:?}: {got:?}");
            assert_eq!(format!("{got:?}"), format!("{expected:?}"), "{op:?}");
            assert_eq!(by_value.pending_paths(), 0, "{op:?}");
        }
    }

    #[test]
    fn sequential_counter_wraps_like_java() {
        let mut tree = DataTree::new();
        let mut prep = Prep::default();
        let create = |p: &str, mode| WriteOp::Create {
            path: p.into(),
            data: Bytes::new(),
            acl: Acl::open_unsafe(),
            mode,
            ttl_ms: 0,
        };
        // Prepares `op` as txn `zxid` and applies it; returns the prepared op.
        let mut run = |tree: &mut DataTree, zxid: i64, op: WriteOp| -> TxnOp {
            let ctx = PrepContext {
                session: SessionId(1),
                auth: &[],
                zxid,
            };
            let prepared = prep.prepare(tree, &ctx, &op).unwrap();
            tree.apply(&Txn {
                zxid,
                time_ms: 0,
                op: prepared.clone(),
            })
            .unwrap();
            prep.handle_applied(zxid);
            prepared
        };
        run(&mut tree, 1, create("/p", CreateMode::Persistent));
        let idx = tree.lookup("/p");
        tree.node_mut(idx).unwrap().creates = i32::MAX;
        let seq = || create("/p/s", CreateMode::PersistentSequential);
        let TxnOp::Create(c) = run(&mut tree, 2, seq()) else {
            panic!("not a create")
        };
        assert_eq!(c.path, "/p/s2147483647");
        assert_eq!(c.parent_creates, i32::MIN);
        let TxnOp::Create(c) = run(&mut tree, 3, seq()) else {
            panic!("not a create")
        };
        assert_eq!(c.path, "/p/s-2147483648");
    }
}
