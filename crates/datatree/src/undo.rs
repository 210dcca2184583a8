//! The mutation primitives behind [`DataTree::apply`], each recording how to undo
//! itself so a multi that fails half-way leaves the tree exactly as it was.

use crate::acl::Acl;
use crate::error::Error;
use crate::event::SessionId;
use crate::mode::NodeKind;
use crate::node::{Body, Node, NodeIdx, NIL};
use crate::quota::{Quota, QuotaUsage};
use crate::stat::Stat;
use crate::tree::DataTree;
use crate::txn::CreateTxn;

/// How to reverse one primitive.
#[derive(Debug)]
pub(crate) enum Undo {
    /// Remove the created node and restore its parent's counters.
    Created {
        path: String,
        parent_creates: i32,
        parent_pzxid: i64,
    },
    /// Re-insert the deleted node and restore its parent's pzxid.
    Deleted {
        idx: NodeIdx,
        node: Node,
        acl: Vec<Acl>,
        owner: Option<SessionId>,
        ttl: Option<i64>,
        parent_pzxid: i64,
    },
    /// Restore the old body: data, version, mzxid and mtime.
    DataSet { path: String, body: Body },
    /// Restore the ACL and aversion.
    AclSet {
        path: String,
        acl: Vec<Acl>,
        aversion: i32,
    },
    /// Restore a quota entry.
    Quota {
        path: String,
        old: Option<QuotaUsage>,
    },
}

fn diverged(what: String) -> Error {
    Error::SystemError(format!("txn does not fit this replica's tree: {what}"))
}

impl DataTree {
    /// Runs `f` on node `idx` with the digest kept current: the node's (and only its)
    /// metadata term is swapped out and back in.
    fn with_meta<R>(&mut self, idx: NodeIdx, f: impl FnOnce(&mut Node) -> R) -> Option<R> {
        self.capture(idx);
        let n = self.node(idx)?;
        let ph = crate::tree::path_hash(n.body.path_bytes());
        let old = self.meta_hash_of(ph, idx, n, &n.meta());
        let r = f(self.node_mut(idx)?);
        let n = self.node(idx)?;
        debug_assert_eq!(
            ph,
            crate::tree::path_hash(n.body.path_bytes()),
            "f keeps the path"
        );
        let new = self.meta_hash_of(ph, idx, n, &n.meta());
        self.digest_remove(old);
        self.digest_add(new);
        Some(r)
    }

    fn stat_of(&self, idx: NodeIdx) -> Stat {
        let Some(n) = self.node(idx) else {
            return Stat::default();
        };
        n.stat(self.owner_of(idx, n))
    }

    /// The Stat's ephemeralOwner of node `n` at `idx` (only ephemerals look it up).
    pub(crate) fn do_create(
        &mut self,
        c: &CreateTxn,
        zxid: i64,
        time: i64,
        undo: &mut Vec<Undo>,
    ) -> Result<Stat, Error> {
        crate::path::validate(&c.path).map_err(|e| diverged(e.to_string()))?;
        if c.path.len() > crate::wire::PATH_LEN_MAX {
            return Err(diverged(format!("path of {} bytes", c.path.len())));
        }
        let parent_path =
            crate::path::parent(&c.path).ok_or_else(|| diverged("create of /".into()))?;
        let parent = self.lookup(parent_path);
        let (p_kind, p_creates, p_pzxid) = match self.node(parent) {
            Some(p) => (p.kind(), p.creates, p.pzxid),
            None => return Err(diverged(format!("create under missing {parent_path}"))),
        };
        if self.lookup(&c.path) != NIL {
            return Err(diverged(format!("create of existing {}", c.path)));
        }
        if p_kind == NodeKind::Ephemeral {
            return Err(diverged(format!("create under ephemeral {parent_path}")));
        }
        if c.parent_creates != p_creates.wrapping_add(1) {
            return Err(diverged(format!("parent create count of {parent_path}")));
        }
        if (c.kind == NodeKind::Ephemeral) != (c.owner.0 != 0) {
            return Err(diverged(format!("owner of {}", c.path)));
        }
        if (c.kind == NodeKind::Ttl) != (c.ttl_ms > 0)
            || c.ttl_ms > crate::mode::TTL_MAX_MS
            || c.acl.is_empty()
        {
            return Err(diverged(format!("TTL or ACL of {}", c.path)));
        }
        let acl = self.acls.add_ref(&c.acl);
        let node = Node::created(c.kind, &c.path, &c.data, acl, zxid, time);
        let idx = self.link_new(node, parent);
        if c.kind == NodeKind::Ephemeral {
            self.owners.insert(idx, c.owner);
            self.ephemerals.entry(c.owner).or_default().insert(idx);
        }
        if c.kind == NodeKind::Ttl {
            self.ttls.insert(idx, c.ttl_ms);
        }
        let terms = self.node_terms(idx);
        self.digest_add(terms);
        self.with_meta(parent, |p| {
            p.creates = c.parent_creates;
            p.pzxid = zxid;
        });
        self.quota_adjust(&c.path, 1, c.data.len() as i64);
        undo.push(Undo::Created {
            path: c.path.clone(),
            parent_creates: p_creates,
            parent_pzxid: p_pzxid,
        });
        Ok(self.stat_of(idx))
    }

    pub(crate) fn do_delete(
        &mut self,
        path: &str,
        zxid: i64,
        undo: &mut Vec<Undo>,
    ) -> Result<(), Error> {
        let idx = self.lookup(path);
        let (parent, nchildren) = match self.node(idx) {
            Some(n) => (n.parent, n.num_children),
            None => return Err(diverged(format!("delete of missing {path}"))),
        };
        if nchildren != 0 || parent == NIL {
            return Err(diverged(format!("delete of non-empty or root {path}")));
        }
        let terms = self.node_terms(idx);
        self.digest_remove(terms);
        let owner = self.owners.get(&idx).copied();
        let ttl = self.ttls.get(&idx).copied();
        let acl = self
            .node(idx)
            .map(|n| self.acls.get(n.acl()).to_vec())
            .unwrap_or_default();
        let Some(node) = self.unlink_remove(idx) else {
            return Err(diverged(format!("delete of missing {path}")));
        };
        let parent_pzxid = self.node(parent).map_or(0, |p| p.pzxid);
        self.with_meta(parent, |p| p.pzxid = zxid);
        self.quota_adjust(path, -1, -(node.data().len() as i64));
        undo.push(Undo::Deleted {
            idx,
            node,
            acl,
            owner,
            ttl,
            parent_pzxid,
        });
        Ok(())
    }

    pub(crate) fn do_set_data(
        &mut self,
        path: &str,
        data: &[u8],
        version: i32,
        zxid: i64,
        time: i64,
        // `None` when nothing can fail after this op (a single-op txn): no undo record.
        undo: Option<&mut Vec<Undo>>,
    ) -> Result<Stat, Error> {
        let idx = self.lookup(path);
        let Some(n) = self.node(idx) else {
            return Err(diverged(format!("setData of missing {path}")));
        };
        let meta = n.meta();
        if version != crate::prep::next_version(meta.version) {
            return Err(diverged(format!("version of {path}")));
        }
        let old_len = n.data().len() as i64;
        // One path hash serves the old and new terms of both digest parts.
        let ph = crate::tree::path_hash(path.as_bytes());
        let old_terms = crate::tree::data_hash_of(ph, n.data())
            .wrapping_add(self.meta_hash_of(ph, idx, n, &meta));
        self.capture(idx);
        let Some(n) = self.node_mut(idx) else {
            return Err(diverged(format!("setData of missing {path}")));
        };
        let new_meta = crate::node::Meta {
            version,
            mzxid: zxid,
            mtime: time,
            ..meta
        };
        // Only a multi's undo record needs the old body; otherwise it is rewritten in
        // place when the new value fits it.
        let old = match undo {
            Some(_) => Some(n.set_meta(&new_meta, Some(data))),
            None => {
                n.overwrite_meta(&new_meta, data);
                None
            }
        };
        let mut stat = Stat::default();
        if let Some(n) = self.node(idx) {
            let new_terms = crate::tree::data_hash_of(ph, n.data())
                .wrapping_add(self.meta_hash_of(ph, idx, n, &new_meta));
            stat = n.stat_with(self.owner_of(idx, n), &new_meta);
            self.digest_remove(old_terms);
            self.digest_add(new_terms);
        }
        self.data_bytes_adjust(data.len() as i64 - old_len);
        self.quota_adjust(path, 0, data.len() as i64 - old_len);
        if let (Some(undo), Some(body)) = (undo, old) {
            undo.push(Undo::DataSet {
                path: path.to_string(),
                body,
            });
        }
        Ok(stat)
    }

    pub(crate) fn do_set_acl(
        &mut self,
        path: &str,
        acl: &[Acl],
        version: i32,
        undo: &mut Vec<Undo>,
    ) -> Result<Stat, Error> {
        let idx = self.lookup(path);
        let Some(n) = self.node(idx) else {
            return Err(diverged(format!("setACL of missing {path}")));
        };
        if version != crate::prep::next_version(n.aversion()) {
            return Err(diverged(format!("aversion of {path}")));
        }
        let crate::node::Meta {
            acl: old_idx,
            aversion: old_aversion,
            ..
        } = n.meta();
        let old_acl = self.acls.get(old_idx).to_vec();
        let new_idx = self.acls.add_ref(acl);
        self.with_meta(idx, |n| n.set_acl(new_idx, version));
        self.acls.release(old_idx);
        undo.push(Undo::AclSet {
            path: path.to_string(),
            acl: old_acl,
            aversion: old_aversion,
        });
        Ok(self.stat_of(idx))
    }

    pub(crate) fn do_set_quota(&mut self, path: &str, quota: Option<Quota>, undo: &mut Vec<Undo>) {
        let old = match quota {
            Some(limit) => {
                let (count, bytes) = if self.contains(path) {
                    self.subtree_usage(path)
                } else {
                    (0, 0)
                };
                self.quotas.insert(
                    path.to_string(),
                    QuotaUsage {
                        limit,
                        count,
                        bytes,
                    },
                )
            }
            None => self.quotas.remove(path),
        };
        undo.push(Undo::Quota {
            path: path.to_string(),
            old,
        });
    }

    /// Reverses the recorded primitives, newest first.
    pub(crate) fn rollback(&mut self, undo: Vec<Undo>) {
        for u in undo.into_iter().rev() {
            match u {
                Undo::Created {
                    path,
                    parent_creates,
                    parent_pzxid,
                } => {
                    let idx = self.lookup(&path);
                    let terms = self.node_terms(idx);
                    self.digest_remove(terms);
                    let parent = self.node(idx).map_or(NIL, |n| n.parent);
                    if let Some(node) = self.unlink_remove(idx) {
                        self.quota_adjust(&path, -1, -(node.data().len() as i64));
                    }
                    self.with_meta(parent, |p| {
                        p.creates = parent_creates;
                        p.pzxid = parent_pzxid;
                    });
                }
                Undo::Deleted {
                    idx: old_idx,
                    node,
                    acl,
                    owner,
                    ttl,
                    parent_pzxid,
                } => {
                    let parent = self.lookup(crate::path::parent(node.path()).unwrap_or("/"));
                    let acl_idx = self.acls.add_ref(&acl);
                    let p = node.path().to_string();
                    let len = node.data().len() as i64;
                    let mut node = node;
                    // The ACL list was released with the node: it may be interned
                    // at another index now.
                    node.set_acl(acl_idx, node.aversion());
                    let idx = self.link_new_at(node, parent, Some(old_idx));
                    if let Some(o) = owner {
                        self.owners.insert(idx, o);
                        self.ephemerals.entry(o).or_default().insert(idx);
                    }
                    if let Some(t) = ttl {
                        self.ttls.insert(idx, t);
                    }
                    let terms = self.node_terms(idx);
                    self.digest_add(terms);
                    self.with_meta(parent, |pn| pn.pzxid = parent_pzxid);
                    self.quota_adjust(&p, 1, len);
                }
                Undo::DataSet { path, body } => {
                    let idx = self.lookup(&path);
                    let dh = self.data_hash(idx);
                    self.digest_remove(dh);
                    let new_len = self.node(idx).map_or(0, |n| n.data().len() as i64);
                    let old_len = body.data().len() as i64;
                    self.with_meta(idx, |n| n.body = body);
                    let dh = self.data_hash(idx);
                    self.digest_add(dh);
                    self.data_bytes_adjust(old_len - new_len);
                    self.quota_adjust(&path, 0, old_len - new_len);
                }
                Undo::AclSet {
                    path,
                    acl,
                    aversion,
                } => {
                    let idx = self.lookup(&path);
                    let new_idx = self.acls.add_ref(&acl);
                    let old = self.with_meta(idx, |n| n.set_acl(new_idx, aversion));
                    if let Some(old) = old {
                        self.acls.release(old);
                    }
                }
                Undo::Quota { path, old } => match old {
                    Some(u) => {
                        self.quotas.insert(path, u);
                    }
                    None => {
                        self.quotas.remove(&path);
                    }
                },
            }
        }
    }
}
