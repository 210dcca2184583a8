//! The znode tree: an arena of nodes, a path index, and the side tables that keep
//! ephemerals, TTLs, containers, quotas and the digest current.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasher, RandomState};

use std::sync::Arc;

use bytes::Bytes;
use hashbrown::HashTable;

use crate::acl::{Acl, Perms};
use crate::acl_cache::AclCache;
use crate::digest::StableHasher;
use crate::error::Error;
use crate::event::SessionId;
use crate::mode::NodeKind;
use crate::node::{Meta, Node, NodeIdx, NIL};
use crate::path;
use crate::quota::{Quota, QuotaUsage};
use crate::snapshot::SnapState;
use crate::stat::Stat;

const META_SEED: u64 = 0x6d65_7461;
const DATA_SEED: u64 = 0x6461_7461;
const PATH_SEED: u64 = 0x7061_7468;

/// The hash of a path, computed once per change and mixed into both digest terms.
pub(crate) fn path_hash(path: &[u8]) -> u64 {
    crate::digest::hash_bytes(PATH_SEED, path)
}

/// The data term of a node whose path hashes to `ph`.
pub(crate) fn data_hash_of(ph: u64, data: &[u8]) -> u64 {
    let mut h = StableHasher::new(DATA_SEED);
    h.u64(ph);
    h.bytes(data);
    h.finish()
}

/// What the preparation step needs to know about an existing node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    /// setData count.
    pub version: i32,
    /// setACL count.
    pub aversion: i32,
    /// Child creates (the stored cversion used for sequential names).
    pub creates: i32,
    /// Number of children.
    pub num_children: u32,
    /// Stored kind.
    pub kind: NodeKind,
    /// Owning session for ephemerals.
    pub owner: SessionId,
    /// The node's ACL.
    pub acl: Arc<[Acl]>,
    /// Data length in bytes.
    pub data_len: u64,
    /// Time (ms) of the create or last setData.
    pub mtime: i64,
    /// TTL in ms for TTL nodes, else 0.
    pub ttl_ms: i64,
}

/// ZooKeeper's replicated data tree.
///
/// Reads are methods on the tree; changes go through [`crate::Txn`]s applied with
/// [`DataTree::apply`](crate::DataTree::apply), which keeps every side table and the
/// digest consistent. The tree starts with `/`, `/zookeeper` and `/zookeeper/quota`.
#[derive(Debug, Clone)]
pub struct DataTree {
    pub(crate) nodes: Vec<Option<Node>>,
    free: Vec<NodeIdx>,
    index: HashTable<NodeIdx>,
    /// Seed of the path index hash: random per process (so crafted paths cannot
    /// force collisions), never visible in any output.
    hash_seed: u64,
    pub(crate) acls: AclCache,
    pub(crate) ephemerals: BTreeMap<SessionId, BTreeSet<NodeIdx>>,
    pub(crate) owners: HashMap<NodeIdx, SessionId>,
    pub(crate) ttls: HashMap<NodeIdx, i64>,
    pub(crate) containers: BTreeSet<NodeIdx>,
    pub(crate) quotas: BTreeMap<String, QuotaUsage>,
    digest: u64,
    count: usize,
    data_bytes: u64,
    /// Zxid of the last txn applied (or the snapshot point after loading).
    pub(crate) last_applied: i64,
    /// The incremental snapshots in progress (usually none; one per stream id).
    pub(crate) snap: SnapSlot,
}

/// Holder of the running incremental snapshots; a cloned tree has none.
#[derive(Debug, Default)]
pub(crate) struct SnapSlot(pub(crate) Vec<SnapState>);

impl Clone for SnapSlot {
    fn clone(&self) -> Self {
        SnapSlot(Vec::new())
    }
}

impl Default for DataTree {
    fn default() -> Self {
        DataTree::new()
    }
}

/// The path index's hash of arena slot `i` (for rehashing the index).
fn slot_hash(nodes: &[Option<Node>], seed: u64, i: NodeIdx) -> u64 {
    match &nodes[i as usize] {
        Some(n) => crate::digest::hash_bytes(seed, n.body.path_bytes()),
        None => 0,
    }
}

impl DataTree {
    /// A tree holding `/`, `/zookeeper` and `/zookeeper/quota`, all with zxid 0.
    pub fn new() -> DataTree {
        let mut tree = DataTree::empty();
        let acl = tree.acls.add_ref(&Acl::open_unsafe());
        tree.insert_raw(Node::created(NodeKind::Persistent, "/", &[], acl, 0, 0));
        // As ZooKeeper's DataTree constructor: the system nodes are linked without
        // counting as creates, so `/` reports cversion -1 and `/zookeeper` -2, and the
        // first sequential child of `/` ends in 0000000000. `/zookeeper/config` is
        // read-only with aversion -1, as ZooKeeper stores it.
        for (p, acl) in [
            (path::RESERVED_ROOT, Acl::open_unsafe()),
            ("/zookeeper/quota", Acl::open_unsafe()),
            ("/zookeeper/config", Acl::read_unsafe()),
        ] {
            let acl = tree.acls.add_ref(&acl);
            let parent = tree.lookup(path::parent(p).unwrap_or("/"));
            let node = Node::created(NodeKind::Persistent, p, &[], acl, 0, 0);
            let idx = tree.link_new(node, parent);
            if p == "/zookeeper/config" {
                if let Some(n) = tree.node_mut(idx) {
                    n.set_acl(acl, -1);
                }
            }
        }
        tree.recompute_digest();
        tree
    }

    /// A tree with no nodes at all (for snapshot loading).
    pub(crate) fn empty() -> DataTree {
        DataTree {
            nodes: Vec::new(),
            free: Vec::new(),
            index: HashTable::new(),
            hash_seed: RandomState::new().hash_one(0x5eed_u64),
            acls: AclCache::default(),
            ephemerals: BTreeMap::new(),
            owners: HashMap::new(),
            ttls: HashMap::new(),
            containers: BTreeSet::new(),
            quotas: BTreeMap::new(),
            digest: 0,
            count: 0,
            data_bytes: 0,
            last_applied: 0,
            snap: SnapSlot(Vec::new()),
        }
    }

    // ---- index and arena -------------------------------------------------------

    fn hash_path(&self, p: &[u8]) -> u64 {
        crate::digest::hash_bytes(self.hash_seed, p)
    }

    /// Arena index of a path, or `NIL`.
    pub(crate) fn lookup(&self, p: &str) -> NodeIdx {
        let h = self.hash_path(p.as_bytes());
        let nodes = &self.nodes;
        self.index
            .find(
                h,
                |&i| matches!(&nodes[i as usize], Some(n) if n.body.path_bytes() == p.as_bytes()),
            )
            .copied()
            .unwrap_or(NIL)
    }

    pub(crate) fn node(&self, idx: NodeIdx) -> Option<&Node> {
        self.nodes.get(idx as usize).and_then(Option::as_ref)
    }

    pub(crate) fn node_mut(&mut self, idx: NodeIdx) -> Option<&mut Node> {
        self.nodes.get_mut(idx as usize).and_then(Option::as_mut)
    }

    fn by_path(&self, p: &str) -> Option<(NodeIdx, &Node)> {
        let i = self.lookup(p);
        self.node(i).map(|n| (i, n))
    }

    /// Inserts a fully formed node into the arena and the index (no linking).
    pub(crate) fn insert_raw(&mut self, node: Node) -> NodeIdx {
        self.insert_raw_at(node, None)
    }

    /// Like [`DataTree::insert_raw`], reusing slot `want` if it is free (rollback puts a
    /// deleted node back where it was, which a running snapshot relies on).
    pub(crate) fn insert_raw_at(&mut self, node: Node, want: Option<NodeIdx>) -> NodeIdx {
        if let Some(w) = want {
            if let Some(pos) = self.free.iter().rposition(|&f| f == w) {
                let last = self.free.len() - 1;
                self.free.swap(pos, last);
            }
        }
        let h = self.hash_path(node.body.path_bytes());
        self.data_bytes += node.data().len() as u64;
        self.count += 1;
        let idx = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = Some(node);
                i
            }
            None => {
                self.nodes.push(Some(node));
                (self.nodes.len() - 1) as NodeIdx
            }
        };
        let (nodes, seed) = (&self.nodes, self.hash_seed);
        self.index
            .insert_unique(h, idx, |&i| slot_hash(nodes, seed, i));
        idx
    }

    /// Makes room for `additional` more nodes in the arena and the path index, so that
    /// loading a snapshot of known size does not rehash the index as it grows (each
    /// rehash reads every node's path again).
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.nodes.reserve_exact(additional);
        let (nodes, seed) = (&self.nodes, self.hash_seed);
        self.index
            .reserve(additional, |&i| slot_hash(nodes, seed, i));
    }

    /// Creates a node under `parent` (which must exist) and links it in. Does not touch
    /// the parent's counters except `num_children` and the child list.
    pub(crate) fn link_new(&mut self, node: Node, parent: NodeIdx) -> NodeIdx {
        self.link_new_at(node, parent, None)
    }

    /// [`DataTree::link_new`] into slot `want` if it is free.
    pub(crate) fn link_new_at(
        &mut self,
        mut node: Node,
        parent: NodeIdx,
        want: Option<NodeIdx>,
    ) -> NodeIdx {
        debug_assert_eq!(
            node.first_child, NIL,
            "a node is linked before its children"
        );
        let first = self.node(parent).map_or(NIL, |n| n.first_child);
        let kind = node.kind();
        node.parent = parent;
        node.prev_sibling = NIL;
        node.next_sibling = first;
        let idx = self.insert_raw_at(node, want);
        if let Some(f) = self.node_mut(first) {
            f.prev_sibling = idx;
        }
        if let Some(pn) = self.node_mut(parent) {
            pn.first_child = idx;
            pn.num_children += 1;
        }
        if kind == NodeKind::Container {
            self.containers.insert(idx);
        }
        idx
    }

    /// Unlinks and removes a childless node; returns it. Side tables are cleaned here.
    pub(crate) fn unlink_remove(&mut self, idx: NodeIdx) -> Option<Node> {
        self.capture(idx);
        let (parent, prev, next, h) = {
            let n = self.node(idx)?;
            debug_assert_eq!(n.num_children, 0, "removing a node with children");
            (
                n.parent,
                n.prev_sibling,
                n.next_sibling,
                self.hash_path(n.body.path_bytes()),
            )
        };
        if let Some(p) = self.node_mut(prev) {
            p.next_sibling = next;
        } else if let Some(pn) = self.node_mut(parent) {
            pn.first_child = next;
        }
        if let Some(nx) = self.node_mut(next) {
            nx.prev_sibling = prev;
        }
        if let Some(pn) = self.node_mut(parent) {
            pn.num_children -= 1;
        }
        if let Ok(entry) = self.index.find_entry(h, |&i| i == idx) {
            entry.remove();
        }
        let node = self.nodes.get_mut(idx as usize)?.take()?;
        self.free.push(idx);
        self.count -= 1;
        self.data_bytes -= node.data().len() as u64;
        if let Some(owner) = self.owners.remove(&idx) {
            if let Some(set) = self.ephemerals.get_mut(&owner) {
                set.remove(&idx);
                if set.is_empty() {
                    self.ephemerals.remove(&owner);
                }
            }
        }
        self.ttls.remove(&idx);
        self.containers.remove(&idx);
        self.acls.release(node.acl());
        Some(node)
    }

    // ---- digest ----------------------------------------------------------------

    /// The metadata term of node `n` (at `idx`, with body meta `m`) whose path hashes
    /// to `ph`.
    pub(crate) fn meta_hash_of(&self, ph: u64, idx: NodeIdx, n: &Node, m: &Meta) -> u64 {
        let mut h = StableHasher::new(META_SEED);
        h.u64(ph);
        for v in [n.czxid, m.mzxid, n.pzxid, n.ctime, m.mtime] {
            h.u64(v as u64);
        }
        for v in [m.version, n.creates, m.aversion] {
            h.u64(v as u32 as u64);
        }
        let kind = n.kind();
        h.u64(kind.tag() as u64);
        h.u64(self.owner_of(idx, n) as u64);
        h.u64(self.ttl_of(idx, n) as u64);
        h.u64(self.acls.hash(m.acl));
        h.finish()
    }

    /// Both digest terms of node `idx` (metadata and data), hashing its path once.
    pub(crate) fn node_terms(&self, idx: NodeIdx) -> u64 {
        let Some(n) = self.node(idx) else { return 0 };
        let ph = path_hash(n.body.path_bytes());
        self.meta_hash_of(ph, idx, n, &n.meta())
            .wrapping_add(data_hash_of(ph, n.data()))
    }

    pub(crate) fn data_hash(&self, idx: NodeIdx) -> u64 {
        let Some(n) = self.node(idx) else { return 0 };
        data_hash_of(path_hash(n.body.path_bytes()), n.data())
    }

    pub(crate) fn digest_remove(&mut self, v: u64) {
        self.digest = self.digest.wrapping_sub(v);
    }

    pub(crate) fn digest_add(&mut self, v: u64) {
        self.digest = self.digest.wrapping_add(v);
    }

    /// Recomputes the digest from scratch (after loading a snapshot, and in tests).
    pub(crate) fn recompute_digest(&mut self) {
        self.digest = self.full_digest();
    }

    /// The digest computed from scratch, for checking the incremental one.
    pub fn full_digest(&self) -> u64 {
        let mut d = 0u64;
        for (i, n) in self.nodes.iter().enumerate() {
            if n.is_some() {
                d = d.wrapping_add(self.node_terms(i as NodeIdx));
            }
        }
        d
    }

    /// The incremental tree digest: equal trees have equal digests, and a difference in
    /// any path, data, Stat field, kind, owner, TTL or ACL changes it (up to 64-bit
    /// hash collisions).
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// Zxid of the last txn applied (after loading a snapshot: its zxid).
    pub fn last_applied_zxid(&self) -> i64 {
        self.last_applied
    }

    pub(crate) fn data_bytes_adjust(&mut self, delta: i64) {
        self.data_bytes = self.data_bytes.wrapping_add_signed(delta);
    }

    // ---- quotas ----------------------------------------------------------------

    /// Applies a change in node count and data bytes to every quota covering `p`.
    pub(crate) fn quota_adjust(&mut self, p: &str, count: i64, bytes: i64) {
        if self.quotas.is_empty() {
            return;
        }
        for (qpath, usage) in self.quotas.iter_mut() {
            if path::is_ancestor_or_self(qpath, p) {
                usage.count += count;
                usage.bytes += bytes;
            }
        }
    }

    /// The quotas covering `p` whose limits `count`/`bytes` more would exceed.
    pub(crate) fn quota_violation(
        &self,
        p: &str,
        count: i64,
        bytes: i64,
        pending: &HashMap<String, (i64, i64)>,
    ) -> Option<String> {
        for (qpath, usage) in &self.quotas {
            if !path::is_ancestor_or_self(qpath, p) {
                continue;
            }
            let (pc, pb) = pending.get(qpath).copied().unwrap_or((0, 0));
            let c = usage.count + pc + count;
            let b = usage.bytes + pb + bytes;
            if (count > 0 && usage.limit.count >= 0 && c > usage.limit.count)
                || (bytes > 0 && usage.limit.bytes >= 0 && b > usage.limit.bytes)
            {
                return Some(qpath.clone());
            }
        }
        None
    }

    /// Paths of the quotas covering `p`.
    pub(crate) fn quota_roots(&self, p: &str) -> Vec<String> {
        self.quotas
            .keys()
            .filter(|q| path::is_ancestor_or_self(q, p))
            .cloned()
            .collect()
    }

    /// Counts the nodes and data bytes of the subtree at `p` (itself included).
    pub(crate) fn subtree_usage(&self, p: &str) -> (i64, i64) {
        let mut count = 0;
        let mut bytes = 0;
        self.walk(self.lookup(p), &mut |n| {
            count += 1;
            bytes += n.data().len() as i64;
        });
        (count, bytes)
    }

    /// The quota set on `p`, with its current usage.
    pub fn quota(&self, p: &str) -> Option<(Quota, i64, i64)> {
        self.quotas.get(p).map(|u| (u.limit, u.count, u.bytes))
    }

    // ---- reads -----------------------------------------------------------------

    /// The owning session of node `n` at `idx` (0 unless ephemeral: only ephemerals
    /// have owners, so no other node pays for the lookup).
    pub(crate) fn owner_of(&self, idx: NodeIdx, n: &Node) -> i64 {
        match n.kind() {
            NodeKind::Ephemeral => self.owners.get(&idx).map_or(0, |s| s.0),
            _ => 0,
        }
    }

    /// The TTL of node `n` at `idx` (0 unless a TTL node, which alone pay the lookup).
    pub(crate) fn ttl_of(&self, idx: NodeIdx, n: &Node) -> i64 {
        match n.kind() {
            NodeKind::Ttl => self.ttls.get(&idx).copied().unwrap_or(0),
            _ => 0,
        }
    }

    fn no_node(p: &str) -> Error {
        Error::NoNode(p.to_string())
    }

    /// The node's Stat, or `None` if it does not exist (exists()).
    pub fn stat(&self, p: &str) -> Option<Stat> {
        self.by_path(p).map(|(i, n)| n.stat(self.owner_of(i, n)))
    }

    /// Whether a node exists at `p`.
    pub fn contains(&self, p: &str) -> bool {
        self.lookup(p) != NIL
    }

    /// The node's data and Stat (getData).
    pub fn data(&self, p: &str) -> Result<(Bytes, Stat), Error> {
        let (i, n) = self.by_path(p).ok_or_else(|| Self::no_node(p))?;
        Ok((
            Bytes::copy_from_slice(n.data()),
            n.stat(self.owner_of(i, n)),
        ))
    }

    /// The node's child names, sorted, and its Stat (getChildren2).
    ///
    /// ZooKeeper returns children in hash-set order; Ensemble sorts them so that every
    /// replica and every call returns the same order.
    pub fn children(&self, p: &str) -> Result<(Vec<String>, Stat), Error> {
        let (i, n) = self.by_path(p).ok_or_else(|| Self::no_node(p))?;
        let mut out = Vec::with_capacity(n.num_children as usize);
        let mut c = n.first_child;
        while let Some(child) = self.node(c) {
            out.push(child.name().to_string());
            c = child.next_sibling;
        }
        out.sort_unstable();
        Ok((out, n.stat(self.owner_of(i, n))))
    }

    /// Number of descendants of `p` (all levels, excluding `p`): getAllChildrenNumber.
    pub fn all_children_number(&self, p: &str) -> Result<u64, Error> {
        let i = self.lookup(p);
        if i == NIL {
            return Err(Self::no_node(p));
        }
        let mut n = 0u64;
        self.walk(i, &mut |_| n += 1);
        Ok(n - 1)
    }

    /// The node's ACL and Stat (getACL).
    pub fn acl(&self, p: &str) -> Result<(Vec<Acl>, Stat), Error> {
        let (i, n) = self.by_path(p).ok_or_else(|| Self::no_node(p))?;
        Ok((self.acls.get(n.acl()).to_vec(), n.stat(self.owner_of(i, n))))
    }

    /// Whether auth ids `auth` hold `perm` on the node at `p` (NoNode if missing).
    pub fn check_acl(&self, p: &str, perm: Perms, auth: &[crate::acl::Id]) -> Result<bool, Error> {
        let (_, n) = self.by_path(p).ok_or_else(|| Self::no_node(p))?;
        Ok(crate::acl::check(&self.acls.get(n.acl()), perm, auth))
    }

    /// Paths of the ephemerals owned by `session`, sorted (getEphemerals).
    pub fn ephemerals(&self, session: SessionId) -> Vec<String> {
        let mut out: Vec<String> = self
            .ephemerals
            .get(&session)
            .into_iter()
            .flatten()
            .filter_map(|&i| self.node(i).map(|n| n.path().to_string()))
            .collect();
        out.sort_unstable();
        out
    }

    /// The owning session of the ephemeral at `p` (`None` if missing or not ephemeral).
    pub fn ephemeral_owner(&self, p: &str) -> Option<SessionId> {
        self.owners.get(&self.lookup(p)).copied()
    }

    /// Sessions that own at least one ephemeral.
    pub fn ephemeral_owners(&self) -> Vec<SessionId> {
        self.ephemerals.keys().copied().collect()
    }

    /// Total number of ephemeral nodes.
    pub fn ephemeral_count(&self) -> usize {
        self.owners.len()
    }

    /// Number of nodes, the root and the `/zookeeper` subtree included.
    pub fn node_count(&self) -> usize {
        self.count
    }

    /// Sum of every node's data length.
    pub fn data_bytes(&self) -> u64 {
        self.data_bytes
    }

    /// Number of distinct ACL lists in use.
    pub fn acl_count(&self) -> usize {
        self.acls.len()
    }

    /// What preparation needs to know about the node at `p`, if it exists.
    pub fn view(&self, p: &str) -> Option<NodeView> {
        let (i, n) = self.by_path(p)?;
        let m = n.meta();
        Some(NodeView {
            version: m.version,
            aversion: m.aversion,
            creates: n.creates,
            num_children: n.num_children,
            kind: n.kind(),
            owner: SessionId(self.owner_of(i, n)),
            acl: self.acls.get(m.acl),
            data_len: n.data().len() as u64,
            mtime: m.mtime,
            ttl_ms: self.ttl_of(i, n),
        })
    }

    /// Visits the subtree rooted at `idx` in pre-order (iteratively, no recursion).
    pub(crate) fn walk(&self, idx: NodeIdx, f: &mut dyn FnMut(&Node)) {
        let mut stack = vec![idx];
        while let Some(i) = stack.pop() {
            let Some(n) = self.node(i) else { continue };
            f(n);
            let mut c = n.first_child;
            while let Some(child) = self.node(c) {
                stack.push(c);
                c = child.next_sibling;
            }
        }
    }

    /// Paths of the whole tree in a deterministic pre-order (children by name).
    pub fn paths(&self) -> Vec<String> {
        self.preorder()
            .into_iter()
            .filter_map(|i| self.node(i).map(|n| n.path().to_string()))
            .collect()
    }

    /// Arena indexes of the whole tree in pre-order, children sorted by name, so the
    /// order depends only on the tree's content, not on its history.
    pub(crate) fn preorder(&self) -> Vec<NodeIdx> {
        let mut out = Vec::with_capacity(self.count);
        let mut stack = vec![self.lookup("/")];
        let mut kids: Vec<(&str, NodeIdx)> = Vec::new();
        while let Some(i) = stack.pop() {
            let Some(n) = self.node(i) else { continue };
            out.push(i);
            kids.clear();
            let mut c = n.first_child;
            while let Some(child) = self.node(c) {
                kids.push((child.name(), c));
                c = child.next_sibling;
            }
            kids.sort_unstable_by(|a, b| b.0.cmp(a.0));
            stack.extend(kids.iter().map(|&(_, i)| i));
        }
        out
    }

    /// Leader housekeeping: TTL nodes that have no children and were last modified
    /// more than their TTL before `now_ms`, and containers that have had a child and
    /// are empty again. The leader proposes a delete txn for each (one per txn, as
    /// ZooKeeper's `ContainerManager` does). Sorted, deterministic.
    pub fn expired_nodes(&self, now_ms: i64) -> Vec<String> {
        let mut out = Vec::new();
        for &i in &self.containers {
            if let Some(n) = self.node(i) {
                if n.creates > 0 && n.num_children == 0 {
                    out.push(n.path().to_string());
                }
            }
        }
        for (&i, &ttl) in &self.ttls {
            if let Some(n) = self.node(i) {
                if n.num_children == 0 && now_ms.saturating_sub(n.mtime()) > ttl {
                    out.push(n.path().to_string());
                }
            }
        }
        out.sort_unstable();
        out
    }
}
