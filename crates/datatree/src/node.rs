//! The in-memory znode record, laid out for a small footprint.
//!
//! A node's kind, path, data and the Stat fields that only setData and setACL change
//! share one heap block ([`Body`]): one allocation per node instead of two, and those
//! writes build a new body anyway (setData for the data, setACL is rare), so keeping
//! the version, mzxid, mtime, ACL and ACL version there costs them nothing. The body
//! stores mzxid and mtime as differences from czxid and ctime, which stay in
//! [`Node`]: a node that was never modified spends one byte on each. The path is read
//! far less often than the stat fields, and copying it along with a setData costs a
//! few bytes per write.
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

/// Largest LEB128 encoding of a `u64`.
const VARINT_MAX: usize = 10;

// The meta (three u32 and two u64 varints) must fit the six bits above the kind tag.
const _: () = assert!(3 * 5 + 2 * VARINT_MAX < 64);

/// The Stat fields a node keeps in its [`Body`]: those only setData (version,
/// mzxid, mtime) and setACL (acl, aversion) change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Index into the tree's ACL cache.
    pub(crate) acl: u32,
    pub(crate) aversion: i32,
    pub(crate) version: i32,
    pub(crate) mzxid: i64,
    pub(crate) mtime: i64,
}

impl Meta {
    /// A node just created at `zxid` and `time` with ACL `acl`.
    pub(crate) fn created(acl: u32, zxid: i64, time: i64) -> Meta {
        Meta {
            acl,
            aversion: 0,
            version: 0,
            mzxid: zxid,
            mtime: time,
        }
    }
}

/// A node's kind, path, data and [`Meta`] in one allocation:
/// `[kind tag | meta length << 2][path length][path (UTF-8)][meta][data]`, where the
/// path length is LEB128 and the meta is five LEB128 numbers: acl, aversion and
/// version (the i32s as their u32 bits), mzxid - czxid (wrapping u64) and
/// mtime - ctime (zigzag). Finding the path reads one varint and finding the data adds
/// the meta length, so neither decodes the meta. For a path under 128 bytes, ACL
/// index and versions under 128 and a node never modified, the header takes seven
/// bytes. Only [`Body::new`] and [`Body::rebuild`] build one, so the header is always
/// well formed and the path is always valid UTF-8. A body is read against the czxid
/// and ctime of the node that holds it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Body(Box<[u8]>);

/// Writes `v` as LEB128 at the start of `out` (which has room for it); returns the
/// bytes written.
fn write_varint(out: &mut [u8], mut v: u64) -> usize {
    let mut at = 0;
    while v >= 0x80 {
        out[at] = (v as u8 & 0x7f) | 0x80;
        at += 1;
        v >>= 7;
    }
    out[at] = v as u8;
    at + 1
}

/// Appends `v` as LEB128.
fn put_varint(b: &mut Vec<u8>, v: u64) {
    let mut buf = [0u8; VARINT_MAX];
    let n = write_varint(&mut buf, v);
    b.extend_from_slice(&buf[..n]);
}

/// Length of `v` in LEB128.
fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Reads the LEB128 value at `b[at..]`: the value and the offset after it.
#[inline]
fn get_varint(b: &[u8], mut at: usize) -> (u64, usize) {
    let mut v = 0u64;
    let mut shift = 0;
    // The builders wrote at most VARINT_MAX bytes with the last one < 0x80, and the
    // header is followed by the path and data, so `at` stays inside `b`.
    while let Some(&byte) = b.get(at) {
        at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 || shift >= 63 {
            break;
        }
        shift += 7;
    }
    (v, at)
}

/// Zigzag: small negative and positive differences both encode short.
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

impl Body {
    /// A body for a path of at most [`crate::wire::PATH_LEN_MAX`] bytes, whose node
    /// has `czxid` and `ctime`.
    pub(crate) fn new(
        kind: NodeKind,
        path: &str,
        data: &[u8],
        meta: &Meta,
        czxid: i64,
        ctime: i64,
    ) -> Body {
        Body::build(kind.tag(), path.as_bytes(), data, meta, czxid, ctime)
    }

    /// The five header numbers of `meta` for a node with `czxid` and `ctime`, and
    /// their encoded length (at most 3 * 5 + 2 * 10 = 35 bytes: it fits the six bits
    /// above the kind tag).
    #[inline]
    fn meta_fields(meta: &Meta, czxid: i64, ctime: i64) -> ([u64; 5], usize) {
        let fields = [
            u64::from(meta.acl),
            u64::from(meta.aversion as u32),
            u64::from(meta.version as u32),
            meta.mzxid.wrapping_sub(czxid) as u64,
            zigzag(meta.mtime.wrapping_sub(ctime)),
        ];
        let len = fields.iter().map(|&v| varint_len(v)).sum::<usize>();
        (fields, len)
    }

    /// `path` is UTF-8 (from a `&str` or another body).
    fn build(tag: u8, path: &[u8], data: &[u8], meta: &Meta, czxid: i64, ctime: i64) -> Body {
        debug_assert!(path.len() <= crate::wire::PATH_LEN_MAX);
        let (fields, meta_len) = Body::meta_fields(meta, czxid, ctime);
        let path_len = path.len() as u64;
        // The exact size up front: `into_boxed_slice` must not shrink the block (an
        // allocator may keep a shrunk block in its larger size class).
        let size = 1 + varint_len(path_len) + path.len() + meta_len + data.len();
        let mut b = Vec::with_capacity(size);
        b.push(tag | (meta_len as u8) << 2);
        put_varint(&mut b, path_len);
        b.extend_from_slice(path);
        for v in fields {
            put_varint(&mut b, v);
        }
        b.extend_from_slice(data);
        debug_assert_eq!(b.len(), size);
        Body(b.into_boxed_slice())
    }

    /// The same kind and path with `meta` and `data` (this body's data if `None`).
    pub(crate) fn rebuild(&self, data: Option<&[u8]>, meta: &Meta, czxid: i64, ctime: i64) -> Body {
        let data = data.unwrap_or_else(|| self.data());
        Body::build(self.0[0] & 3, self.path_bytes(), data, meta, czxid, ctime)
    }

    /// Writes `meta` and `data` over this body's own when their encodings have the
    /// lengths of the current ones (a setData of a same-sized value whose version and
    /// mzxid/mtime differences keep their varint widths: the common case), so that no
    /// block is allocated, no path copied and none freed. Returns false, and changes
    /// nothing, when they do not fit.
    pub(crate) fn overwrite(&mut self, data: &[u8], meta: &Meta, czxid: i64, ctime: i64) -> bool {
        let (fields, meta_len) = Body::meta_fields(meta, czxid, ctime);
        let (start, len) = self.path_span();
        let meta_at = start + len;
        if meta_len != self.meta_len() || self.0.len() - meta_at - meta_len != data.len() {
            return false;
        }
        let (head, tail) = self.0[meta_at..].split_at_mut(meta_len);
        let mut at = 0;
        for v in fields {
            // `head` is `meta_len` bytes, the sum of the fields' varint lengths.
            at += write_varint(&mut head[at..], v);
        }
        debug_assert_eq!(at, meta_len);
        tail.copy_from_slice(data);
        true
    }

    /// Where the path starts and how long it is.
    #[inline]
    fn path_span(&self) -> (usize, usize) {
        let b = &self.0;
        // Fast path: a path under 128 bytes.
        match b.get(1) {
            Some(&len) if len < 0x80 => (2, len as usize),
            _ => {
                let (len, at) = get_varint(b, 1);
                (at, len as usize)
            }
        }
    }

    /// Length of the encoded meta.
    #[inline]
    fn meta_len(&self) -> usize {
        (self.0[0] >> 2) as usize
    }

    /// The header's [`Meta`], for a node with `czxid` and `ctime`.
    #[inline]
    pub(crate) fn meta(&self, czxid: i64, ctime: i64) -> Meta {
        let b = &self.0;
        let (start, len) = self.path_span();
        let (acl, at) = get_varint(b, start + len);
        let (aversion, at) = get_varint(b, at);
        let (version, at) = get_varint(b, at);
        let (dz, at) = get_varint(b, at);
        let (dt, _) = get_varint(b, at);
        Meta {
            acl: acl as u32,
            aversion: aversion as u32 as i32,
            version: version as u32 as i32,
            mzxid: czxid.wrapping_add(dz as i64),
            mtime: ctime.wrapping_add(unzigzag(dt)),
        }
    }

    /// The path's bytes (no UTF-8 check: for hashing and comparing).
    #[inline]
    pub(crate) fn path_bytes(&self) -> &[u8] {
        let (start, len) = self.path_span();
        &self.0[start..start + len]
    }

    /// The path.
    pub(crate) fn path(&self) -> &str {
        // `build` copied these bytes from a `&str` (or another body) and nothing else
        // writes them.
        #[allow(clippy::expect_used)]
        std::str::from_utf8(self.path_bytes()).expect("a body's path is UTF-8")
    }

    /// The data.
    #[inline]
    pub(crate) fn data(&self) -> &[u8] {
        let (start, len) = self.path_span();
        &self.0[start + len + self.meta_len()..]
    }

    /// The node kind.
    pub(crate) fn kind(&self) -> NodeKind {
        let kind = NodeKind::from_tag(self.0[0] & 3);
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
    /// Kind, path, data and [`Meta`].
    pub(crate) body: Body,
    pub(crate) czxid: i64,
    pub(crate) ctime: i64,
    pub(crate) pzxid: i64,
    /// Number of child *creates* (ZooKeeper's stored cversion). The reported cversion
    /// is `2 * creates - num_children`; sequential names use this count.
    pub(crate) creates: i32,
    pub(crate) num_children: u32,
    pub(crate) parent: NodeIdx,
    pub(crate) first_child: NodeIdx,
    pub(crate) prev_sibling: NodeIdx,
    pub(crate) next_sibling: NodeIdx,
}

impl Node {
    /// A new unlinked node created at `czxid` and `ctime` (pzxid = czxid, no children).
    pub(crate) fn new(
        kind: NodeKind,
        path: &str,
        data: &[u8],
        meta: &Meta,
        czxid: i64,
        ctime: i64,
    ) -> Node {
        Node {
            body: Body::new(kind, path, data, meta, czxid, ctime),
            czxid,
            ctime,
            pzxid: czxid,
            creates: 0,
            num_children: 0,
            parent: NIL,
            first_child: NIL,
            prev_sibling: NIL,
            next_sibling: NIL,
        }
    }

    /// A node as a create at `zxid` and `time` makes it.
    pub(crate) fn created(
        kind: NodeKind,
        path: &str,
        data: &[u8],
        acl: u32,
        zxid: i64,
        time: i64,
    ) -> Node {
        Node::new(
            kind,
            path,
            data,
            &Meta::created(acl, zxid, time),
            zxid,
            time,
        )
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

    /// The Stat fields kept in the body.
    #[inline]
    pub(crate) fn meta(&self) -> Meta {
        self.body.meta(self.czxid, self.ctime)
    }

    /// The node's ACL (an ACL cache index).
    pub(crate) fn acl(&self) -> u32 {
        self.meta().acl
    }

    /// The node's ACL version.
    pub(crate) fn aversion(&self) -> i32 {
        self.meta().aversion
    }

    /// The node's last modification time.
    pub(crate) fn mtime(&self) -> i64 {
        self.meta().mtime
    }

    /// Replaces the body's [`Meta`] and, if `data` is given, its data; returns the
    /// old body (which holds the old meta and data, for rollback).
    pub(crate) fn set_meta(&mut self, meta: &Meta, data: Option<&[u8]>) -> Body {
        let body = self.body.rebuild(data, meta, self.czxid, self.ctime);
        std::mem::replace(&mut self.body, body)
    }

    /// [`Node::set_meta`] with data when the old body is not needed: the body is
    /// rewritten in place if the new meta and data fit it ([`Body::overwrite`]).
    pub(crate) fn overwrite_meta(&mut self, meta: &Meta, data: &[u8]) {
        if !self.body.overwrite(data, meta, self.czxid, self.ctime) {
            self.set_meta(meta, Some(data));
        }
    }

    /// Sets the ACL index and ACL version (rebuilds the body if either changes: setACL
    /// is rare). Returns the old ACL index.
    pub(crate) fn set_acl(&mut self, acl: u32, aversion: i32) -> u32 {
        let m = self.meta();
        if m.acl != acl || m.aversion != aversion {
            self.set_meta(&Meta { acl, aversion, ..m }, None);
        }
        m.acl
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
        self.stat_with(ephemeral_owner, &self.meta())
    }

    /// [`Node::stat`] when the caller already holds the node's meta `m`.
    pub(crate) fn stat_with(&self, ephemeral_owner: i64, m: &Meta) -> Stat {
        debug_assert_eq!(*m, self.meta());
        Stat {
            czxid: self.czxid,
            mzxid: m.mzxid,
            ctime: self.ctime,
            mtime: m.mtime,
            version: m.version,
            cversion: self.reported_cversion(),
            aversion: m.aversion,
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
        assert_eq!(std::mem::size_of::<Node>(), 64);
        assert_eq!(
            std::mem::size_of::<Option<Node>>(),
            std::mem::size_of::<Node>()
        );
    }

    /// Metas at the edges of every header field's range.
    fn metas(czxid: i64, ctime: i64) -> Vec<Meta> {
        let mut out = vec![Meta::created(0, czxid, ctime)];
        for acl in [1, 127, 128, u32::MAX] {
            for aversion in [0, 127, 128, i32::MAX, -1, i32::MIN] {
                for version in [0, 1, 300, i32::MAX, -1] {
                    out.push(Meta {
                        acl,
                        aversion,
                        version,
                        mzxid: czxid,
                        mtime: ctime,
                    });
                }
            }
        }
        for (mzxid, mtime) in [
            (czxid + 1, ctime + 1),
            (czxid + (7 << 32), ctime + 86_400_000),
            (czxid - 1, ctime - 1),
            (i64::MAX, i64::MIN),
            (i64::MIN, i64::MAX),
        ] {
            out.push(Meta {
                acl: 3,
                aversion: 2,
                version: 9,
                mzxid,
                mtime,
            });
        }
        out
    }

    #[test]
    fn body_round_trips_kind_path_data_and_meta() {
        for kind in [
            NodeKind::Persistent,
            NodeKind::Ephemeral,
            NodeKind::Container,
            NodeKind::Ttl,
        ] {
            for (path, data) in [("/", &b""[..]), ("/a/ü", b"xyz"), ("/q", &[0u8; 300][..])] {
                for (cz, ct) in [(0, 0), ((5 << 32) | 17, 1_763_800_000_000), (-3, -9)] {
                    for m in metas(cz, ct) {
                        let b = Body::new(kind, path, data, &m, cz, ct);
                        assert_eq!((b.kind(), b.path(), b.data()), (kind, path, data));
                        assert_eq!(b.path_bytes(), path.as_bytes());
                        assert_eq!(b.meta(cz, ct), m);
                        let c = b.rebuild(Some(b"new"), &Meta::created(1, cz, ct), cz, ct);
                        assert_eq!((c.kind(), c.path(), c.data()), (kind, path, &b"new"[..]));
                        assert_eq!(c.meta(cz, ct), Meta::created(1, cz, ct));
                        assert_eq!(b.data(), data, "the old body is untouched");
                        let d = c.rebuild(None, &m, cz, ct);
                        assert_eq!((d.data(), d.meta(cz, ct)), (&b"new"[..], m));
                    }
                }
            }
        }
    }

    #[test]
    fn unmodified_short_nodes_take_the_short_header() {
        let m = Meta::created(5, (1 << 32) | 7, 1_763_800_000_000);
        let b = Body::new(NodeKind::Persistent, "/a/b", b"xy", &m, m.mzxid, m.mtime);
        assert_eq!(b.0.len(), 7 + 4 + 2);
        assert_eq!((b.path_span(), b.meta_len()), ((2, 4), 5));
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
            for m in metas(10, 20).into_iter().step_by(7) {
                let b = Body::new(NodeKind::Persistent, &path, b"d", &m, 10, 20);
                assert_eq!(
                    (b.path(), b.data(), b.meta(10, 20)),
                    (&path[..], &b"d"[..], m)
                );
            }
        }
    }

    #[test]
    fn node_setters_keep_the_rest() {
        let mut n = Node::created(NodeKind::Persistent, "/n", b"v1", 2, 100, 1000);
        let m0 = n.meta();
        assert_eq!(m0, Meta::created(2, 100, 1000));
        let m1 = Meta {
            version: 1,
            mzxid: 105,
            mtime: 1500,
            ..m0
        };
        let old = n.set_meta(&m1, Some(b"v2"));
        assert_eq!((old.data(), old.meta(100, 1000)), (&b"v1"[..], m0));
        assert_eq!((n.data(), n.meta(), n.mtime()), (&b"v2"[..], m1, 1500));
        assert_eq!(n.set_acl(7, 3), 2);
        assert_eq!((n.acl(), n.aversion(), n.data()), (7, 3, &b"v2"[..]));
        let s = n.stat(0);
        assert_eq!((s.czxid, s.mzxid, s.ctime, s.mtime), (100, 105, 1000, 1500));
        assert_eq!((s.version, s.aversion, s.data_length), (1, 3, 2));
    }

    #[test]
    fn overwrite_rewrites_in_place_only_when_the_layout_fits() {
        let (cz, ct) = ((3 << 32) | 9, 1_763_800_000_000);
        let m0 = Meta::created(4, cz, ct);
        let mut b = Body::new(NodeKind::Ephemeral, "/lock/x", b"0123", &m0, cz, ct);
        let before = b.0.as_ptr();
        // Same data length, version and differences of the same widths: in place.
        let m1 = Meta {
            version: 1,
            mzxid: cz + 5,
            mtime: ct + 7,
            ..m0
        };
        assert!(b.overwrite(b"abcd", &m1, cz, ct));
        assert_eq!(b.0.as_ptr(), before, "no new block");
        assert_eq!(
            b,
            Body::new(NodeKind::Ephemeral, "/lock/x", b"abcd", &m1, cz, ct)
        );
        // A longer value, or a wider varint, does not fit: nothing changes.
        let kept = b.clone();
        assert!(!b.overwrite(b"abcde", &m1, cz, ct));
        let wide = Meta { version: 128, ..m1 };
        assert!(!b.overwrite(b"abcd", &wide, cz, ct));
        assert_eq!(b, kept);
        // Through the node: a misfit falls back to a rebuilt body.
        let mut n = Node::created(NodeKind::Persistent, "/n", b"v1", 2, cz, ct);
        n.overwrite_meta(&wide, b"longer");
        assert_eq!((n.data(), n.meta(), n.path()), (&b"longer"[..], wide, "/n"));
        n.overwrite_meta(&m1, b"short!");
        assert_eq!((n.data(), n.meta(), n.path()), (&b"short!"[..], m1, "/n"));
    }

    proptest::proptest! {
        /// Overwriting a body gives exactly the body a rebuild would, or leaves it
        /// untouched and says so.
        #[test]
        fn overwrite_matches_rebuild(
            version in -2i32..300,
            dz in 100i64..300,
            dt in -300i64..300,
            old_len in 0usize..40,
            grow in 0usize..3,
            tag in 0u8..4,
        ) {
            // A third of the cases keep the value's length.
            let new_len = old_len + grow;
            let kind = NodeKind::from_tag(tag).unwrap();
            let (cz, ct) = (1 << 40, 1_700_000_000_000);
            let m0 = Meta { acl: 1, aversion: 0, version: 5, mzxid: cz + 200, mtime: ct - 100 };
            let m1 = Meta { version, mzxid: cz + dz, mtime: ct + dt, ..m0 };
            let mut b = Body::new(kind, "/p/q", &vec![1u8; old_len], &m0, cz, ct);
            let kept = b.clone();
            let data = vec![2u8; new_len];
            if b.overwrite(&data, &m1, cz, ct) {
                proptest::prop_assert_eq!(b, kept.rebuild(Some(&data), &m1, cz, ct));
            } else {
                proptest::prop_assert_eq!(b, kept);
            }
        }
    }

    proptest::proptest! {
        /// Any meta, against any creation zxid and time, with any path and data,
        /// reads back as written, and rebuilding keeps what it should.
        #[test]
        fn body_round_trips_anything(
            acl in proptest::prelude::any::<u32>(),
            aversion in proptest::prelude::any::<i32>(),
            version in proptest::prelude::any::<i32>(),
            mzxid in proptest::prelude::any::<i64>(),
            mtime in proptest::prelude::any::<i64>(),
            czxid in proptest::prelude::any::<i64>(),
            ctime in proptest::prelude::any::<i64>(),
            tag in 0u8..4,
            path in "/[a-zß0-9/]{0,200}",
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        ) {
            let kind = NodeKind::from_tag(tag).unwrap();
            let m = Meta { acl, aversion, version, mzxid, mtime };
            let b = Body::new(kind, &path, &data, &m, czxid, ctime);
            proptest::prop_assert_eq!(b.kind(), kind);
            proptest::prop_assert_eq!(b.path(), &path[..]);
            proptest::prop_assert_eq!(b.data(), &data[..]);
            proptest::prop_assert_eq!(b.meta(czxid, ctime), m);
            let c = b.rebuild(None, &Meta::created(0, czxid, ctime), czxid, ctime);
            proptest::prop_assert_eq!((c.kind(), c.path(), c.data()), (kind, &path[..], &data[..]));
            proptest::prop_assert_eq!(c.meta(czxid, ctime), Meta::created(0, czxid, ctime));
        }
    }

    #[test]
    fn varint_round_trips() {
        for v in [
            0u64,
            1,
            0x7f,
            0x80,
            0x3fff,
            0x4000,
            u32::MAX.into(),
            u64::MAX,
        ] {
            let mut b = vec![0xaa];
            put_varint(&mut b, v);
            assert!(b.len() <= 1 + VARINT_MAX);
            assert_eq!(b.len(), 1 + varint_len(v));
            b.push(0x55);
            let (got, at) = get_varint(&b, 1);
            assert_eq!((got, b[at]), (v, 0x55));
        }
        for v in [0i64, 1, -1, 63, -64, 64, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert!(zigzag(-1) < 0x80 && zigzag(63) < 0x80);
    }
}
