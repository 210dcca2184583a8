//! Deterministic, CRC-checked serialization of the whole tree (plus its digest).
//!
//! Layout (little-endian): magic `ENSTREE\0`, format version `u32`, the ACL table
//! (distinct lists in canonical order), the quota table, the node count, every node in
//! pre-order with children sorted by name (so parents precede children and equal trees
//! serialize to identical bytes whatever their history), the tree digest, and a CRC32C
//! of everything before it. The reader checks every length before allocating, rebuilds
//! the tree, recomputes the digest and compares it and the CRC: truncated or corrupted
//! input is a typed [`DecodeError`], never a panic and never a partial tree.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};

use crate::acl::{Acl, Id, Perms};
use crate::error::DecodeError;
use crate::event::SessionId;
use crate::mode::NodeKind;
use crate::node::{Node, NIL};
use crate::quota::{Quota, QuotaUsage};
use crate::tree::DataTree;
use crate::wire::{CrcReader, CrcWriter, DATA_LEN_MAX, ID_LEN_MAX, PATH_LEN_MAX};

const MAGIC: &[u8; 8] = b"ENSTREE\0";
const FORMAT_VERSION: u32 = 1;
/// Most ACL entries in one list accepted from a snapshot.
const ACL_ENTRIES_MAX: u32 = 1024;
/// Most nodes a capacity hint may reserve up front (more still load, in steps).
const NODES_PREALLOC_MAX: u64 = 1 << 20;

fn io(e: std::io::Error) -> DecodeError {
    DecodeError::Io(e.to_string())
}

impl DataTree {
    /// Writes the whole tree to `out`; returns the number of bytes written.
    pub fn serialize<W: Write>(&self, out: W) -> Result<u64, DecodeError> {
        let mut w = CrcWriter::new(out);
        w.raw(MAGIC).map_err(io)?;
        w.u32(FORMAT_VERSION).map_err(io)?;
        // ACL table in canonical (sorted) order, so indexes do not depend on history.
        let order = self.preorder();
        let mut acl_table: BTreeMap<Vec<Acl>, u32> = BTreeMap::new();
        let mut node_acl: HashMap<u32, u32> = HashMap::new();
        for &idx in &order {
            if let Some(n) = self.node(idx) {
                node_acl.entry(n.acl).or_insert_with(|| {
                    acl_table.insert(self.acls.get(n.acl).to_vec(), 0);
                    0
                });
            }
        }
        for (i, v) in acl_table.values_mut().enumerate() {
            *v = i as u32;
        }
        for (cache_ix, table_ix) in node_acl.iter_mut() {
            *table_ix = acl_table
                .get(&self.acls.get(*cache_ix)[..])
                .copied()
                .unwrap_or(0);
        }
        w.u32(acl_table.len() as u32).map_err(io)?;
        for acl in acl_table.keys() {
            w.u32(acl.len() as u32).map_err(io)?;
            for a in acl {
                w.i32(a.perms.0).map_err(io)?;
                w.bytes(a.id.scheme.as_bytes()).map_err(io)?;
                w.bytes(a.id.id.as_bytes()).map_err(io)?;
            }
        }
        w.u32(self.quotas.len() as u32).map_err(io)?;
        for (p, q) in &self.quotas {
            w.bytes(p.as_bytes()).map_err(io)?;
            w.i64(q.limit.count).map_err(io)?;
            w.i64(q.limit.bytes).map_err(io)?;
        }
        w.u64(order.len() as u64).map_err(io)?;
        for &idx in &order {
            let Some(n) = self.node(idx) else {
                return Err(DecodeError::Io(format!(
                    "node {idx} vanished during serialization"
                )));
            };
            let acl_ix = node_acl.get(&n.acl).copied().unwrap_or(0);
            w.bytes(n.path.as_bytes()).map_err(io)?;
            w.bytes(&n.data).map_err(io)?;
            for v in [n.czxid, n.mzxid, n.pzxid, n.ctime, n.mtime] {
                w.i64(v).map_err(io)?;
            }
            for v in [n.version, n.creates, n.aversion] {
                w.i32(v).map_err(io)?;
            }
            w.u8(n.kind.tag()).map_err(io)?;
            w.i64(self.owners.get(&idx).map_or(0, |s| s.0))
                .map_err(io)?;
            w.i64(self.ttls.get(&idx).copied().unwrap_or(0))
                .map_err(io)?;
            w.u32(acl_ix).map_err(io)?;
        }
        w.u64(self.digest()).map_err(io)?;
        let crc = w.crc();
        w.u32(crc).map_err(io)?;
        let n = w.written();
        w.into_inner().flush().map_err(io)?;
        Ok(n)
    }

    /// Serializes into a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        // Writing to a Vec cannot fail; the tree is consistent by construction.
        let _ = self.serialize(&mut v);
        v
    }

    /// Reads a tree written by [`DataTree::serialize`].
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
        let mut tree = DataTree::empty();
        let acl_count = r.u32()?;
        let mut acl_ids = Vec::new();
        for _ in 0..acl_count {
            let n = r.u32()?;
            if n > ACL_ENTRIES_MAX {
                return Err(r.corrupt(format!("ACL with {n} entries")));
            }
            let mut acl = Vec::new();
            for _ in 0..n {
                let perms = Perms(r.i32()?);
                let scheme = r.string(ID_LEN_MAX, "ACL scheme")?;
                let id = r.string(ID_LEN_MAX, "ACL id")?;
                acl.push(Acl {
                    perms,
                    id: Id { scheme, id },
                });
            }
            acl_ids.push(acl);
        }
        let quota_count = r.u32()?;
        let mut quotas = Vec::new();
        for _ in 0..quota_count {
            let p = r.string(PATH_LEN_MAX, "quota path")?;
            let count = r.i64()?;
            let bytes = r.i64()?;
            quotas.push((p, Quota { count, bytes }));
        }
        let node_count = r.u64()?;
        tree.nodes
            .reserve(node_count.min(NODES_PREALLOC_MAX) as usize);
        for i in 0..node_count {
            let p = r.string(PATH_LEN_MAX, "path")?;
            let data = r.bytes(DATA_LEN_MAX, "data")?;
            let czxid = r.i64()?;
            let mzxid = r.i64()?;
            let pzxid = r.i64()?;
            let ctime = r.i64()?;
            let mtime = r.i64()?;
            let version = r.i32()?;
            let creates = r.i32()?;
            let aversion = r.i32()?;
            let kind = NodeKind::from_tag(r.u8()?).ok_or_else(|| r.corrupt("bad node kind"))?;
            let owner = r.i64()?;
            let ttl = r.i64()?;
            let acl_ix = r.u32()?;
            let acl = acl_ids
                .get(acl_ix as usize)
                .ok_or_else(|| r.corrupt("ACL index out of range"))?;
            let acl = tree.acls.add_ref(acl);
            if i == 0 {
                if p != "/" {
                    return Err(r.corrupt("first node is not /"));
                }
                let idx = tree.insert_raw(Node {
                    path: p.into(),
                    data: data.into(),
                    czxid,
                    mzxid,
                    pzxid,
                    ctime,
                    mtime,
                    version,
                    creates,
                    aversion,
                    num_children: 0,
                    acl,
                    parent: NIL,
                    first_child: NIL,
                    prev_sibling: NIL,
                    next_sibling: NIL,
                    kind,
                });
                debug_assert_eq!(idx, 0);
                continue;
            }
            if crate::path::validate(&p).is_err() {
                return Err(r.corrupt(format!("invalid path {p:?}")));
            }
            let parent_path = crate::path::parent(&p).unwrap_or("/");
            let parent = tree.lookup(parent_path);
            match tree.node(parent) {
                None => return Err(r.corrupt(format!("{p} precedes its parent"))),
                Some(pn) if pn.kind == NodeKind::Ephemeral => {
                    return Err(r.corrupt(format!("{p} is the child of an ephemeral")))
                }
                Some(_) => {}
            }
            if tree.lookup(&p) != NIL {
                return Err(r.corrupt(format!("duplicate path {p}")));
            }
            if (kind == NodeKind::Ephemeral) != (owner != 0) {
                return Err(r.corrupt(format!("ephemeral owner of {p}")));
            }
            let idx = tree.link_new(&p, data.into(), acl, kind, czxid, ctime, parent);
            if let Some(n) = tree.node_mut(idx) {
                n.mzxid = mzxid;
                n.pzxid = pzxid;
                n.mtime = mtime;
                n.version = version;
                n.creates = creates;
                n.aversion = aversion;
            }
            if kind == NodeKind::Ephemeral {
                tree.owners.insert(idx, SessionId(owner));
                tree.ephemerals
                    .entry(SessionId(owner))
                    .or_default()
                    .insert(idx);
            }
            if kind == NodeKind::Ttl {
                tree.ttls.insert(idx, ttl);
            }
        }
        let digest = r.u64()?;
        let computed_crc = r.crc();
        let crc = r.u32()?;
        if crc != computed_crc {
            return Err(r.corrupt("CRC mismatch"));
        }
        if node_count == 0 {
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
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn empty_tree_round_trips() {
        let t = DataTree::new();
        let b = t.to_bytes();
        let u = DataTree::deserialize(&b[..]).unwrap();
        assert_eq!(u.digest(), t.digest());
        assert_eq!(u.to_bytes(), b);
    }

    #[test]
    fn every_truncation_and_bit_flip_is_rejected() {
        let t = DataTree::new();
        let b = t.to_bytes();
        for cut in 0..b.len() {
            assert!(DataTree::deserialize(&b[..cut]).is_err(), "cut at {cut}");
        }
        for byte in 0..b.len() {
            for bit in 0..8 {
                let mut c = b.clone();
                c[byte] ^= 1 << bit;
                assert!(DataTree::deserialize(&c[..]).is_err(), "flip {byte}:{bit}");
            }
        }
    }
}
