//! The in-memory znode record, laid out for a small footprint.
//!
//! A node's kind, path and data share one heap block ([`Body`]): one allocation per
//! node instead of two, and 16 bytes less in the node itself (one fat pointer). The
//! path is read far less often than the stat fields, and setData builds a new body
//! anyway, so copying the path along with it costs a few bytes per write.
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

/// Largest LEB128 encoding of a `u32`.
const VARINT_MAX: usize = 5;

/// A node's kind, ACL version, path and data in one allocation:
/// `[kind tag][path length: LEB128][aversion: LEB128 of its u32 bits][path (UTF-8)][data]`.
/// With the usual short paths and aversion 0 the header is three bytes. The ACL
/// version lives here rather than in [`Node`] because it is almost always 0 and
/// changes only on setACL (which then rebuilds the body): that keeps `Node` at 88
/// bytes. Only [`Body::new`], [`Body::with_data`] and [`Body::with_aversion`] build
/// one, so the header is always well formed and the path is always valid UTF-8.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Body(Box<[u8]>);

/// Appends `v` as LEB128.
fn put_varint(b: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        b.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

/// Reads the LEB128 value at `b[at..]`: the value and the offset after it.
#[inline]
fn get_varint(b: &[u8], mut at: usize) -> (u32, usize) {
    let mut v = 0u32;
    let mut shift = 0;
    // The builders wrote at most VARINT_MAX bytes with the last one < 0x80, and the
    // header is followed by the path and data, so `at` stays inside `b`.
    while let Some(&byte) = b.get(at) {
        at += 1;
        v |= u32::from(byte & 0x7f) << shift;
        if byte < 0x80 || shift >= 28 {
            break;
        }
        shift += 7;
    }
    (v, at)
}

impl Body {
    /// A body (ACL version 0) for a path of at most [`crate::wire::PATH_LEN_MAX`] bytes.
    pub(crate) fn new(kind: NodeKind, path: &str, data: &[u8]) -> Body {
        Body::build(kind, 0, path, data)
    }

    fn build(kind: NodeKind, aversion: i32, path: &str, data: &[u8]) -> Body {
        debug_assert!(path.len() <= crate::wire::PATH_LEN_MAX);
        // Every path reaching the tree is bounded by PATH_LEN_MAX (64 KiB): the
        // decoders enforce it and `do_create` checks it for direct `apply` calls.
        #[allow(clippy::expect_used)]
        let len = u32::try_from(path.len()).expect("path length fits u32");
        let mut b = Vec::with_capacity(1 + 2 * VARINT_MAX + path.len() + data.len());
        b.push(kind.tag());
        put_varint(&mut b, len);
        put_varint(&mut b, aversion as u32);
        b.extend_from_slice(path.as_bytes());
        b.extend_from_slice(data);
        Body(b.into_boxed_slice())
    }

    /// The same kind, ACL version and path with other data.
    pub(crate) fn with_data(&self, data: &[u8]) -> Body {
        let (start, len) = self.path_span();
        let keep = start + len;
        let mut b = Vec::with_capacity(keep + data.len());
        b.extend_from_slice(&self.0[..keep]);
        b.extend_from_slice(data);
        Body(b.into_boxed_slice())
    }

    /// The same kind, path and data with another ACL version (setACL, rollback).
    pub(crate) fn with_aversion(&self, aversion: i32) -> Body {
        Body::build(self.kind(), aversion, self.path(), self.data())
    }

    /// Where the path starts and how long it is.
    #[inline]
    fn path_span(&self) -> (usize, usize) {
        let b = &self.0;
        // Fast path: one-byte path length and aversion (paths < 128 bytes, aversion
        // 0..=127).
        if b.len() >= 3 && b[1] < 0x80 && b[2] < 0x80 {
            return (3, b[1] as usize);
        }
        let (len, at) = get_varint(b, 1);
        let (_, start) = get_varint(b, at);
        (start, len as usize)
    }

    /// The ACL version.
    pub(crate) fn aversion(&self) -> i32 {
        let (_, at) = get_varint(&self.0, 1);
        get_varint(&self.0, at).0 as i32
    }

    /// The path's bytes (no UTF-8 check: for hashing and comparing).
    #[inline]
    pub(crate) fn path_bytes(&self) -> &[u8] {
        let (start, len) = self.path_span();
        &self.0[start..start + len]
    }

    /// The path.
    pub(crate) fn path(&self) -> &str {
        // `build` copied these bytes from a `&str` and nothing else writes them.
        #[allow(clippy::expect_used)]
        std::str::from_utf8(self.path_bytes()).expect("a body's path is UTF-8")
    }

    /// The data.
    pub(crate) fn data(&self) -> &[u8] {
        let (start, len) = self.path_span();
        &self.0[start + len..]
    }

    /// The node kind.
    pub(crate) fn kind(&self) -> NodeKind {
        let kind = NodeKind::from_tag(self.0[0]);
        debug_assert!(kind.is_some(), "a body's tag comes from NodeKind::tag");
        kind.unwrap_or(NodeKind::Persistent)
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body")
            .field("kind", &self.kind())
            .field("path", &self.path())
            .field("data_len", &self.data().len())
            .finish()
    }
}

/// One znode.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// Kind, path and data.
    pub(crate) body: Body,
    pub(crate) czxid: i64,
    pub(crate) mzxid: i64,
    pub(crate) pzxid: i64,
    pub(crate) ctime: i64,
    pub(crate) mtime: i64,
    pub(crate) version: i32,
    /// Number of child *creates* (ZooKeeper's stored cversion). The reported cversion
    /// is `2 * creates - num_children`; sequential names use this count.
    pub(crate) creates: i32,
    pub(crate) num_children: u32,
    pub(crate) acl: u32,
    pub(crate) parent: NodeIdx,
    pub(crate) first_child: NodeIdx,
    pub(crate) prev_sibling: NodeIdx,
    pub(crate) next_sibling: NodeIdx,
}

impl Node {
    /// A new unlinked node created at `zxid` and `time` (all other counters zero).
    pub(crate) fn new(body: Body, acl: u32, zxid: i64, time: i64) -> Node {
        Node {
            body,
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ctime: time,
            mtime: time,
            version: 0,
            creates: 0,
            num_children: 0,
            acl,
            parent: NIL,
            first_child: NIL,
            prev_sibling: NIL,
            next_sibling: NIL,
        }
    }

    /// The node's path.
    pub(crate) fn path(&self) -> &str {
        self.body.path()
    }

    /// The node's data.
    pub(crate) fn data(&self) -> &[u8] {
        self.body.data()
    }

    /// The node's kind.
    pub(crate) fn kind(&self) -> NodeKind {
        self.body.kind()
    }

    /// The node's ACL version.
    pub(crate) fn aversion(&self) -> i32 {
        self.body.aversion()
    }

    /// Sets the ACL version (rebuilds the body: setACL is rare).
    pub(crate) fn set_aversion(&mut self, aversion: i32) {
        if self.aversion() != aversion {
            self.body = self.body.with_aversion(aversion);
        }
    }

    /// The last segment of the node's path.
    pub(crate) fn name(&self) -> &str {
        crate::path::name(self.path())
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
            aversion: self.aversion(),
            ephemeral_owner,
            data_length: self.data().len() as i32,
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
        assert_eq!(std::mem::size_of::<Node>(), 88);
        assert_eq!(
            std::mem::size_of::<Option<Node>>(),
            std::mem::size_of::<Node>()
        );
    }

    #[test]
    fn body_round_trips_kind_path_and_data() {
        for kind in [
            NodeKind::Persistent,
            NodeKind::Ephemeral,
            NodeKind::Container,
            NodeKind::Ttl,
        ] {
            for (path, data) in [("/", &b""[..]), ("/a/ü", b"xyz"), ("/q", &[0u8; 300][..])] {
                let b = Body::new(kind, path, data);
                assert_eq!((b.kind(), b.path(), b.data()), (kind, path, data));
                assert_eq!(b.path_bytes(), path.as_bytes());
                let c = b.with_data(b"new");
                assert_eq!((c.kind(), c.path(), c.data()), (kind, path, &b"new"[..]));
                assert_eq!(b.data(), data, "the old body is untouched");
                for av in [0, 1, 127, 128, 300, 16_384, i32::MAX, -1, i32::MIN] {
                    let a = b.with_aversion(av).with_data(b"later");
                    assert_eq!(a.aversion(), av);
                    assert_eq!((a.kind(), a.path(), a.data()), (kind, path, &b"later"[..]));
                }
                assert_eq!(b.aversion(), 0);
            }
        }
    }

    #[test]
    fn body_header_handles_long_paths() {
        // Path lengths on both sides of each varint width, up to the codec's limit.
        for len in [
            127usize,
            128,
            129,
            16_383,
            16_384,
            crate::wire::PATH_LEN_MAX,
        ] {
            let path = format!("/{}", "p".repeat(len - 1));
            for av in [0, 200, -7] {
                let b = Body::new(NodeKind::Persistent, &path, b"d").with_aversion(av);
                assert_eq!(
                    (b.path(), b.data(), b.aversion()),
                    (&path[..], &b"d"[..], av)
                );
            }
        }
    }

    #[test]
    fn varint_round_trips() {
        for v in [0u32, 1, 0x7f, 0x80, 0x3fff, 0x4000, u32::MAX] {
            let mut b = vec![0xaa];
            put_varint(&mut b, v);
            b.push(0x55);
            let (got, at) = get_varint(&b, 1);
            assert_eq!((got, b[at]), (v, 0x55));
        }
    }
}
