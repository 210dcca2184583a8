//! Serialization of the whole tree: canonical one-shot snapshots, and incremental
//! snapshots that the owner of the tree takes a few thousand nodes at a time while it
//! keeps applying txns, so a 1,000,000-node snapshot never stalls writes for long.
//!
//! # Format (little-endian)
//! Header: magic `ENSTREE\0`, format version `u32`, the zxid the snapshot is consistent
//! at `i64`. Then node records, each a tag byte `1`, path, data, czxid, mzxid, pzxid,
//! ctime, mtime, version, creates (stored cversion), aversion, kind, ephemeral owner,
//! TTL, ACL reference; then tag `0`. Trailer: the ACL lists (referenced by position),
//! the quotas, the node count, the tree digest, and a CRC32C of everything before it.
//!
//! Records may come in any order: the reader sorts them by path (a parent's path is a
//! prefix of its child's, so it sorts first) and rebuilds the tree, then checks count,
//! digest and CRC. [`DataTree::serialize`] writes nodes in canonical pre-order, so equal
//! trees produce identical bytes whatever their history.
//!
//! # Incremental snapshots
//! [`DataTree::begin_snapshot`] fixes the snapshot point (the last applied zxid) and
//! [`DataTree::snapshot_step`] writes the next `max_nodes` arena slots. While a snapshot
//! runs, every mutation of a node that existed at the snapshot point and has not been
//! written yet first saves the node's pre-image, and the step writes that pre-image;
//! nodes created after the snapshot point are skipped. The result is exactly the tree as
//! it was at the snapshot point (checked by the digest), with no second thread, lock or
//! copy of the tree, and deterministic.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::Arc;

use crate::acl::Acl;
use crate::error::DecodeError;
use crate::event::SessionId;
use crate::mode::NodeKind;
use crate::node::{Meta, Node, NodeIdx, NIL};
use crate::quota::{Quota, QuotaUsage};
use crate::tree::DataTree;
use crate::wire::{read_acl, write_acl, CrcReader, CrcWriter, DATA_LEN_MAX, PATH_LEN_MAX};

const MAGIC: &[u8; 8] = b"ENSTREE\0";
const FORMAT_VERSION: u32 = 2;
/// Most ACL lists accepted from a snapshot.
const ACL_LISTS_MAX: u32 = 1 << 20;
/// Most quotas accepted from a snapshot.
const QUOTAS_MAX: u32 = 1 << 20;

fn io(e: std::io::Error) -> DecodeError {
    DecodeError::Io(e.to_string())
}

/// A node as it is written: everything but the arena links.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    path: Box<str>,
    data: Box<[u8]>,
    czxid: i64,
    mzxid: i64,
    pzxid: i64,
    ctime: i64,
    mtime: i64,
    version: i32,
    creates: i32,
    aversion: i32,
    kind: NodeKind,
    owner: i64,
    ttl: i64,
    acl: Arc<[Acl]>,
}

/// Writer state shared by one-shot and incremental snapshots.
struct RecordWriter {
    acl_ids: HashMap<Arc<[Acl]>, u32>,
    /// Fast path: ACL cache index -> (the list it held when seen, its written id). The
    /// pointer check guards against a cache slot reused for another list meanwhile.
    by_cache_ix: HashMap<u32, (Arc<[Acl]>, u32)>,
    acls: Vec<Arc<[Acl]>>,
    nodes: u64,
}

impl RecordWriter {
    fn new() -> Self {
        RecordWriter {
            acl_ids: HashMap::new(),
            by_cache_ix: HashMap::new(),
            acls: Vec::new(),
            nodes: 0,
        }
    }

    fn header<W: Write>(w: &mut CrcWriter<W>, zxid: i64) -> std::io::Result<()> {
        w.raw(MAGIC)?;
        w.u32(FORMAT_VERSION)?;
        w.i64(zxid)
    }

    fn acl_id(&mut self, acl: &Arc<[Acl]>, cache_ix: Option<u32>) -> u32 {
        if let Some((held, id)) = cache_ix.and_then(|c| self.by_cache_ix.get(&c)) {
            if Arc::ptr_eq(held, acl) {
                return *id;
            }
        }
        let next = self.acls.len() as u32;
        let id = match self.acl_ids.get(acl) {
            Some(&i) => i,
            None => {
                self.acl_ids.insert(acl.clone(), next);
                self.acls.push(acl.clone());
                next
            }
        };
        if let Some(c) = cache_ix {
            self.by_cache_ix.insert(c, (acl.clone(), id));
        }
        id
    }

    fn record<W: Write>(&mut self, w: &mut CrcWriter<W>, r: RecordRef<'_>) -> std::io::Result<()> {
        let acl_ix = self.acl_id(r.acl, r.acl_cache_ix);
        self.nodes += 1;
        w.u8(1)?;
        w.bytes(r.path.as_bytes())?;
        w.bytes(r.data)?;
        for v in r.zxids_times {
            w.i64(v)?;
        }
        for v in r.versions {
            w.i32(v)?;
        }
        w.u8(r.kind.tag())?;
        w.i64(r.owner)?;
        w.i64(r.ttl)?;
        w.u32(acl_ix)
    }

    fn trailer<W: Write>(
        &self,
        w: &mut CrcWriter<W>,
        quotas: &[(String, Quota)],
        digest: u64,
    ) -> std::io::Result<()> {
        w.u8(0)?;
        w.u32(self.acls.len() as u32)?;
        for acl in &self.acls {
            write_acl(w, acl)?;
        }
        w.u32(quotas.len() as u32)?;
        for (p, q) in quotas {
            w.bytes(p.as_bytes())?;
            w.i64(q.count)?;
            w.i64(q.bytes)?;
        }
        w.u64(self.nodes)?;
        w.u64(digest)?;
        let crc = w.crc();
        w.u32(crc)
    }
}

/// Borrowed view of a node for writing.
struct RecordRef<'a> {
    path: &'a str,
    data: &'a [u8],
    zxids_times: [i64; 5],
    versions: [i32; 3],
    kind: NodeKind,
    owner: i64,
    ttl: i64,
    acl: &'a Arc<[Acl]>,
    /// The tree's ACL cache index, when the record is a live node.
    acl_cache_ix: Option<u32>,
}

impl Record {
    /// The unlinked node this record describes, with ACL cache index `acl`.
    fn to_node(&self, path: &str, acl: u32) -> Node {
        let meta = Meta {
            acl,
            aversion: self.aversion,
            version: self.version,
            mzxid: self.mzxid,
            mtime: self.mtime,
        };
        let mut n = Node::new(self.kind, path, &self.data, &meta, self.czxid, self.ctime);
        n.pzxid = self.pzxid;
        n.creates = self.creates;
        n
    }

    fn as_ref(&self) -> RecordRef<'_> {
        RecordRef {
            path: &self.path,
            data: &self.data,
            zxids_times: [self.czxid, self.mzxid, self.pzxid, self.ctime, self.mtime],
            versions: [self.version, self.creates, self.aversion],
            kind: self.kind,
            owner: self.owner,
            ttl: self.ttl,
            acl: &self.acl,
            acl_cache_ix: None,
        }
    }
}

/// An incremental snapshot in progress (held inside the tree).
pub(crate) struct SnapState {
    /// The caller's name for this snapshot ([`DataTree::begin_snapshot_stream`]).
    stream: u64,
    zxid: i64,
    end: NodeIdx,
    cursor: NodeIdx,
    preimages: HashMap<NodeIdx, Record>,
    digest: u64,
    quotas: Vec<(String, Quota)>,
    writer: RecordWriter,
    crc: CrcWriter<std::io::Sink>,
    expected_nodes: u64,
}

impl std::fmt::Debug for SnapState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapState")
            .field("zxid", &self.zxid)
            .field("cursor", &self.cursor)
            .field("end", &self.end)
            .field("preimages", &self.preimages.len())
            .finish()
    }
}

/// The stream id of [`DataTree::begin_snapshot`] and the other calls without one.
pub const DEFAULT_STREAM: u64 = 0;

/// Progress of an incremental snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotProgress {
    /// More steps are needed.
    Continue,
    /// The snapshot is complete; the bytes handed out so far form it entirely.
    Done,
}

/// Why an incremental snapshot could not proceed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotStateError {
    /// `begin_snapshot` while one is running.
    #[error("a snapshot is already in progress")]
    AlreadyRunning,
    /// `snapshot_step` without a running snapshot.
    #[error("no snapshot is in progress")]
    NotRunning,
    /// The written node count disagrees with the count at the snapshot point (a bug).
    #[error("snapshot wrote {written} nodes, expected {expected}")]
    Inconsistent {
        /// Nodes written.
        written: u64,
        /// Nodes at the snapshot point.
        expected: u64,
    },
}

impl DataTree {
    fn record_of(&self, idx: NodeIdx, n: &Node) -> Record {
        let m = n.meta();
        Record {
            path: n.path().into(),
            data: n.data().into(),
            czxid: n.czxid,
            mzxid: m.mzxid,
            pzxid: n.pzxid,
            ctime: n.ctime,
            mtime: m.mtime,
            version: m.version,
            creates: n.creates,
            aversion: m.aversion,
            kind: n.kind(),
            owner: self.owners.get(&idx).map_or(0, |s| s.0),
            ttl: self.ttls.get(&idx).copied().unwrap_or(0),
            acl: self.acls.get(m.acl),
        }
    }

    fn ref_of<'a>(&'a self, idx: NodeIdx, n: &'a Node, acl: &'a Arc<[Acl]>) -> RecordRef<'a> {
        let m = n.meta();
        RecordRef {
            path: n.path(),
            data: n.data(),
            zxids_times: [n.czxid, m.mzxid, n.pzxid, n.ctime, m.mtime],
            versions: [m.version, n.creates, m.aversion],
            kind: n.kind(),
            owner: self.owners.get(&idx).map_or(0, |s| s.0),
            ttl: self.ttls.get(&idx).copied().unwrap_or(0),
            acl,
            acl_cache_ix: Some(m.acl),
        }
    }

    /// Called by every mutation primitive before it changes node `idx`: while
    /// incremental snapshots run, saves the node's pre-image for each that still needs
    /// it.
    pub(crate) fn capture(&mut self, idx: NodeIdx) {
        if self.snap.0.is_empty() {
            return;
        }
        let Some(n) = self.node(idx) else { return };
        let mut rec = None;
        for s in &self.snap.0 {
            if idx < s.cursor || idx >= s.end || n.czxid > s.zxid {
                continue;
            }
            if !s.preimages.contains_key(&idx) {
                rec.get_or_insert_with(|| self.record_of(idx, n));
            }
        }
        let Some(rec) = rec else { return };
        let czxid = n.czxid;
        for s in &mut self.snap.0 {
            if idx >= s.cursor && idx < s.end && czxid <= s.zxid {
                s.preimages.entry(idx).or_insert_with(|| rec.clone());
            }
        }
    }

    /// Whether the default incremental snapshot (stream 0) is running.
    pub fn snapshot_in_progress(&self) -> bool {
        self.snapshot_stream_in_progress(DEFAULT_STREAM)
    }

    /// Whether incremental snapshot `stream` is running.
    pub fn snapshot_stream_in_progress(&self, stream: u64) -> bool {
        self.snap.0.iter().any(|s| s.stream == stream)
    }

    /// Starts the default incremental snapshot (stream 0) of the tree as it is now (at
    /// the last applied zxid) and appends its header to `out`.
    pub fn begin_snapshot(&mut self, out: &mut Vec<u8>) -> Result<(), SnapshotStateError> {
        self.begin_snapshot_stream(DEFAULT_STREAM, out)
    }

    /// Starts incremental snapshot `stream` of the tree as it is now (at the last
    /// applied zxid) and appends its header to `out`. Several streams run side by
    /// side, each an exact image of the tree at its own start, whatever the tree does
    /// between their steps (a periodic snapshot and the snapshots a leader streams to
    /// learners that fell behind).
    pub fn begin_snapshot_stream(
        &mut self,
        stream: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), SnapshotStateError> {
        if self.snapshot_stream_in_progress(stream) {
            return Err(SnapshotStateError::AlreadyRunning);
        }
        let mut crc = CrcWriter::new(std::io::sink());
        let start = out.len();
        let mut w = CrcWriter::new(&mut *out);
        // Writes into a Vec and a Sink cannot fail.
        let _ = RecordWriter::header(&mut w, self.last_applied);
        let _ = crc.raw(&out[start..]);
        self.snap.0.push(SnapState {
            stream,
            zxid: self.last_applied,
            end: self.nodes.len() as NodeIdx,
            cursor: 0,
            preimages: HashMap::new(),
            digest: self.digest(),
            quotas: self
                .quotas
                .iter()
                .map(|(p, q)| (p.clone(), q.limit))
                .collect(),
            writer: RecordWriter::new(),
            crc,
            expected_nodes: self.node_count() as u64,
        });
        Ok(())
    }

    /// Steps the default incremental snapshot (stream 0):
    /// [`DataTree::snapshot_stream_step`].
    pub fn snapshot_step(
        &mut self,
        max_nodes: usize,
        out: &mut Vec<u8>,
    ) -> Result<SnapshotProgress, SnapshotStateError> {
        self.snapshot_stream_step(DEFAULT_STREAM, max_nodes, out)
    }

    /// Appends the next `max_nodes` arena slots of snapshot `stream` to `out`; when
    /// every slot is written, appends the trailer, ends the stream and returns
    /// [`SnapshotProgress::Done`].
    pub fn snapshot_stream_step(
        &mut self,
        stream: u64,
        max_nodes: usize,
        out: &mut Vec<u8>,
    ) -> Result<SnapshotProgress, SnapshotStateError> {
        let Some(i) = self.snap.0.iter().position(|s| s.stream == stream) else {
            return Err(SnapshotStateError::NotRunning);
        };
        // Out of the list while it reads the tree (no mutation runs meanwhile).
        let mut s = self.snap.0.swap_remove(i);
        let start = out.len();
        let stop = s.end.min(s.cursor.saturating_add(max_nodes.max(1) as u32));
        {
            let mut w = CrcWriter::new(&mut *out);
            for idx in s.cursor..stop {
                if let Some(rec) = s.preimages.remove(&idx) {
                    let _ = s.writer.record(&mut w, rec.as_ref());
                } else if let Some(n) = self.node(idx) {
                    if n.czxid <= s.zxid {
                        let acl = self.acls.get(n.acl());
                        let _ = s.writer.record(&mut w, self.ref_of(idx, n, &acl));
                    }
                }
            }
        }
        s.cursor = stop;
        let _ = s.crc.raw(&out[start..]);
        if s.cursor < s.end {
            self.snap.0.push(s);
            return Ok(SnapshotProgress::Continue);
        }
        if s.writer.nodes != s.expected_nodes {
            return Err(SnapshotStateError::Inconsistent {
                written: s.writer.nodes,
                expected: s.expected_nodes,
            });
        }
        // Continue the running CRC into the trailer.
        let mut tail = CrcWriter::with_crc(&mut *out, s.crc.crc());
        let _ = s.writer.trailer(&mut tail, &s.quotas, s.digest);
        Ok(SnapshotProgress::Done)
    }

    /// Abandons the default incremental snapshot (stream 0), if running.
    pub fn abort_snapshot(&mut self) {
        self.abort_snapshot_stream(DEFAULT_STREAM);
    }

    /// Abandons incremental snapshot `stream`, if running.
    pub fn abort_snapshot_stream(&mut self, stream: u64) {
        self.snap.0.retain(|s| s.stream != stream);
    }

    /// Writes the whole tree to `out` in canonical order; returns the bytes written.
    pub fn serialize<W: Write>(&self, out: W) -> Result<u64, DecodeError> {
        let mut w = CrcWriter::new(out);
        RecordWriter::header(&mut w, self.last_applied).map_err(io)?;
        let mut rw = RecordWriter::new();
        for idx in self.preorder() {
            let Some(n) = self.node(idx) else { continue };
            let acl = self.acls.get(n.acl());
            rw.record(&mut w, self.ref_of(idx, n, &acl)).map_err(io)?;
        }
        let quotas: Vec<(String, Quota)> = self
            .quotas
            .iter()
            .map(|(p, q)| (p.clone(), q.limit))
            .collect();
        rw.trailer(&mut w, &quotas, self.digest()).map_err(io)?;
        let n = w.written();
        w.into_inner().flush().map_err(io)?;
        Ok(n)
    }

    /// Serializes into a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = self.serialize(&mut v);
        v
    }

    /// Reads a tree written by [`DataTree::serialize`] or an incremental snapshot.
    pub fn deserialize<R: Read>(input: R) -> Result<DataTree, DecodeError> {
        let mut r = CrcReader::new(input);
        let mut magic = [0u8; 8];
        r.exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(r.corrupt("bad magic"));
        }
        let version = r.u32()?;
        if version != FORMAT_VERSION {
            return Err(r.corrupt(format!("unsupported format version {version}")));
        }
        let zxid = r.i64()?;
        // Records get their ACL from the list table at the end; until then they share
        // one empty list instead of allocating one each.
        let no_acl: Arc<[Acl]> = Arc::from(Vec::new());
        let mut records: Vec<(Record, u32)> = Vec::with_capacity(64);
        loop {
            match r.u8()? {
                0 => break,
                1 => {}
                t => return Err(r.corrupt(format!("bad record tag {t}"))),
            }
            let path = r.string(PATH_LEN_MAX, "path")?;
            let data = r.bytes(DATA_LEN_MAX, "data")?;
            let mut zt = [0i64; 5];
            for v in &mut zt {
                *v = r.i64()?;
            }
            let mut vs = [0i32; 3];
            for v in &mut vs {
                *v = r.i32()?;
            }
            let kind = NodeKind::from_tag(r.u8()?).ok_or_else(|| r.corrupt("bad node kind"))?;
            let owner = r.i64()?;
            let ttl = r.i64()?;
            let acl_ix = r.u32()?;
            records.push((
                Record {
                    path: path.into(),
                    data: data.into(),
                    czxid: zt[0],
                    mzxid: zt[1],
                    pzxid: zt[2],
                    ctime: zt[3],
                    mtime: zt[4],
                    version: vs[0],
                    creates: vs[1],
                    aversion: vs[2],
                    kind,
                    owner,
                    ttl,
                    acl: Arc::clone(&no_acl),
                },
                acl_ix,
            ));
        }
        let acl_count = r.u32()?;
        if acl_count > ACL_LISTS_MAX {
            return Err(r.corrupt(format!("{acl_count} ACL lists")));
        }
        let mut acl_lists: Vec<Arc<[Acl]>> = Vec::new();
        for _ in 0..acl_count {
            acl_lists.push(Arc::from(read_acl(&mut r)?));
        }
        let quota_count = r.u32()?;
        if quota_count > QUOTAS_MAX {
            return Err(r.corrupt(format!("{quota_count} quotas")));
        }
        let mut quotas = Vec::new();
        for _ in 0..quota_count {
            let p = r.string(PATH_LEN_MAX, "quota path")?;
            let count = r.i64()?;
            let bytes = r.i64()?;
            quotas.push((p, Quota { count, bytes }));
        }
        let node_count = r.u64()?;
        let digest = r.u64()?;
        let computed_crc = r.crc();
        let crc = r.u32()?;
        if crc != computed_crc {
            return Err(r.corrupt("CRC mismatch"));
        }
        if node_count != records.len() as u64 {
            return Err(r.corrupt("node count mismatch"));
        }
        if records
            .iter()
            .any(|(_, ix)| *ix as usize >= acl_lists.len())
        {
            return Err(r.corrupt("ACL reference out of range"));
        }
        records.sort_unstable_by(|a, b| a.0.path.cmp(&b.0.path));
        let mut tree = DataTree::empty();
        tree.last_applied = zxid;
        // `records.len()` equals the trailer's node count, checked above.
        tree.reserve(records.len());
        // Each list is interned once (hashing its entries); later nodes with the same
        // list only add a reference to its index.
        let mut interned: Vec<Option<u32>> = vec![None; acl_lists.len()];
        for (rec, ix) in records {
            let slot = &mut interned[ix as usize];
            let acl = match *slot {
                Some(i) => {
                    tree.acls.retain(i);
                    i
                }
                None => {
                    let list = &acl_lists[ix as usize];
                    if list.is_empty() {
                        return Err(r.corrupt(format!("empty ACL on {}", rec.path)));
                    }
                    let i = tree.acls.add_ref(list);
                    *slot = Some(i);
                    i
                }
            };
            tree.load_record(rec, acl).map_err(|why| r.corrupt(why))?;
        }
        if tree.lookup("/") == NIL {
            return Err(r.corrupt("no root node"));
        }
        for (p, limit) in quotas {
            let (count, bytes) = if tree.contains(&p) {
                tree.subtree_usage(&p)
            } else {
                (0, 0)
            };
            tree.quotas.insert(
                p,
                QuotaUsage {
                    limit,
                    count,
                    bytes,
                },
            );
        }
        tree.recompute_digest();
        if tree.digest() != digest {
            return Err(r.corrupt("digest mismatch"));
        }
        Ok(tree)
    }

    /// Inserts one record whose parent (if any) is already loaded, with ACL cache
    /// index `acl` (a reference the caller took for this node).
    fn load_record(&mut self, rec: Record, acl: u32) -> Result<(), String> {
        if (rec.kind == NodeKind::Ttl) != (rec.ttl > 0) || rec.ttl > crate::mode::TTL_MAX_MS {
            return Err(format!("TTL of {}", rec.path));
        }
        if &*rec.path == "/" {
            if self.lookup("/") != NIL {
                return Err("duplicate root".into());
            }
            if rec.kind != NodeKind::Persistent || rec.owner != 0 {
                return Err("root is not a plain persistent node".into());
            }
            self.insert_raw(rec.to_node("/", acl));
            return Ok(());
        }
        let p: &str = &rec.path;
        if crate::path::validate(p).is_err() {
            return Err(format!("invalid path {p:?}"));
        }
        let parent = self.lookup(crate::path::parent(p).unwrap_or("/"));
        match self.node(parent) {
            None => return Err(format!("{p} has no parent")),
            Some(pn) if pn.kind() == NodeKind::Ephemeral => {
                return Err(format!("{p} is the child of an ephemeral"))
            }
            Some(_) => {}
        }
        if self.lookup(p) != NIL {
            return Err(format!("duplicate path {p}"));
        }
        if (rec.kind == NodeKind::Ephemeral) != (rec.owner != 0) {
            return Err(format!("ephemeral owner of {p}"));
        }
        let idx = self.link_new(rec.to_node(p, acl), parent);
        if rec.kind == NodeKind::Ephemeral {
            self.owners.insert(idx, SessionId(rec.owner));
            self.ephemerals
                .entry(SessionId(rec.owner))
                .or_default()
                .insert(idx);
        }
        if rec.kind == NodeKind::Ttl {
            self.ttls.insert(idx, rec.ttl);
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
