//! The in-memory znode record, laid out for a small footprint.
//!
//! Nodes live in an arena (`Vec<Option<Node>>`) and refer to each other by `u32`
//! index: the parent, the first child and the previous/next siblings form an
//! intrusive doubly linked child list, so adding or removing a child is O(1) without a
//! per-node child set. The ACL is an index into the interned ACL cache; ephemeral owners
//! and TTLs live in side tables because most nodes have neither.

use crate::mode::NodeKind;
use crate::stat::Stat;

/// Index of a node in the arena.
pub(crate) type NodeIdx = u32;

/// "No node" marker for the intrusive links.
pub(crate) const NIL: NodeIdx = u32::MAX;

/// One znode.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) path: Box<str>,
    pub(crate) data: Box<[u8]>,
    pub(crate) czxid: i64,
    pub(crate) mzxid: i64,
    pub(crate) pzxid: i64,
    pub(crate) ctime: i64,
    pub(crate) mtime: i64,
    pub(crate) version: i32,
    /// Number of child *creates* (ZooKeeper's stored cversion). The reported cversion
    /// is `2 * creates - num_children`; sequential names use this count.
    pub(crate) creates: i32,
    pub(crate) aversion: i32,
    pub(crate) num_children: u32,
    pub(crate) acl: u32,
    pub(crate) parent: NodeIdx,
    pub(crate) first_child: NodeIdx,
    pub(crate) prev_sibling: NodeIdx,
    pub(crate) next_sibling: NodeIdx,
    pub(crate) kind: NodeKind,
}

impl Node {
    /// The last segment of the node's path.
    pub(crate) fn name(&self) -> &str {
        crate::path::name(&self.path)
    }

    /// The reported cversion: child creates plus child deletes.
    pub(crate) fn reported_cversion(&self) -> i32 {
        self.creates
            .wrapping_mul(2)
            .wrapping_sub(self.num_children as i32)
    }

    /// The client-visible Stat, given the node's ephemeral owner (0 if none).
    pub(crate) fn stat(&self, ephemeral_owner: i64) -> Stat {
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.reported_cversion(),
            aversion: self.aversion,
            ephemeral_owner,
            data_length: self.data.len() as i32,
            num_children: self.num_children as i32,
            pzxid: self.pzxid,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn node_stays_small() {
        // The memory target (< 150 bytes of overhead per znode) depends on this.
        assert!(
            std::mem::size_of::<Node>() <= 120,
            "{}",
            std::mem::size_of::<Node>()
        );
        assert_eq!(
            std::mem::size_of::<Option<Node>>(),
            std::mem::size_of::<Node>()
        );
    }
}
