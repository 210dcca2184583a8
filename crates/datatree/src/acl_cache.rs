//! Reference-counted ACL interning: nodes store a 4-byte index, not a list.
//!
//! Most trees use a handful of distinct ACL lists, so storing each list once (as
//! ZooKeeper's `ReferenceCountedACLCache` does) keeps per-node overhead small.

use std::collections::HashMap;
use std::sync::Arc;

use crate::acl::Acl;
use crate::digest::StableHasher;

#[derive(Debug, Clone)]
struct Entry {
    acl: Arc<[Acl]>,
    hash: u64,
    refs: u64,
}

/// Interned ACL lists with reference counts.
#[derive(Debug, Clone, Default)]
pub(crate) struct AclCache {
    entries: Vec<Option<Entry>>,
    by_value: HashMap<Arc<[Acl]>, u32>,
    free: Vec<u32>,
}

pub(crate) fn acl_hash(acl: &[Acl]) -> u64 {
    let mut h = StableHasher::new(0xac1);
    for a in acl {
        h.u64(a.perms.0 as u64);
        h.bytes(a.id.scheme.as_bytes());
        h.bytes(a.id.id.as_bytes());
    }
    h.finish()
}

impl AclCache {
    /// Interns `acl`, adding one reference, and returns its index.
    pub(crate) fn add_ref(&mut self, acl: &[Acl]) -> u32 {
        if let Some(&i) = self.by_value.get(acl) {
            if let Some(Some(e)) = self.entries.get_mut(i as usize) {
                e.refs += 1;
                return i;
            }
        }
        let arc: Arc<[Acl]> = Arc::from(acl);
        let entry = Entry {
            hash: acl_hash(acl),
            acl: arc.clone(),
            refs: 1,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.entries[i as usize] = Some(entry);
                i
            }
            None => {
                self.entries.push(Some(entry));
                (self.entries.len() - 1) as u32
            }
        };
        self.by_value.insert(arc, i);
        i
    }

    /// Adds one reference to the interned list at index `i`.
    pub(crate) fn retain(&mut self, i: u32) {
        match self.entries.get_mut(i as usize) {
            Some(Some(e)) => e.refs += 1,
            _ => debug_assert!(false, "acl index {i} not interned"),
        }
    }

    /// Drops one reference; frees the entry when none remain.
    pub(crate) fn release(&mut self, i: u32) {
        let Some(slot) = self.entries.get_mut(i as usize) else {
            debug_assert!(false, "acl index {i} out of range");
            return;
        };
        let Some(e) = slot else {
            debug_assert!(false, "acl index {i} already free");
            return;
        };
        e.refs -= 1;
        if e.refs == 0 {
            self.by_value.remove(&e.acl);
            *slot = None;
            self.free.push(i);
        }
    }

    /// The list behind an index (empty if the index is unknown, which is a bug).
    pub(crate) fn get(&self, i: u32) -> Arc<[Acl]> {
        match self.entries.get(i as usize) {
            Some(Some(e)) => e.acl.clone(),
            _ => {
                debug_assert!(false, "acl index {i} not interned");
                Arc::from(Vec::new())
            }
        }
    }

    /// The stable hash of the list behind an index.
    pub(crate) fn hash(&self, i: u32) -> u64 {
        match self.entries.get(i as usize) {
            Some(Some(e)) => e.hash,
            _ => 0,
        }
    }

    /// Number of distinct lists.
    pub(crate) fn len(&self) -> usize {
        self.by_value.len()
    }
}
