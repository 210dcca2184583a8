//! The overlay of in-flight changes: the pending state of every path that a
//! proposed-but-unapplied txn touched, keyed by path.
//!
//! A hash table over the entries themselves (each keeps its key), hashed by the
//! caller once per path: preparing a setData looks its path up and then replaces the
//! entry, and the hash also travels with the in-flight queue so that dropping an
//! applied entry needs no second hash.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::hash_table::Entry;
use hashbrown::HashTable;

use crate::tree::NodeView;

/// One path's pending state.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    /// The path: the table's key, shared with the in-flight queue and undo records.
    pub(super) key: Arc<str>,
    /// The txn that set this state.
    pub(super) zxid: i64,
    /// The path's state once that txn applies; `None`: deleted.
    pub(super) view: Option<NodeView>,
}

/// The overlay table.
#[derive(Debug)]
pub(super) struct Overlay {
    seed: u64,
    table: HashTable<Pending>,
}

impl Default for Overlay {
    fn default() -> Self {
        Overlay {
            seed: std::collections::hash_map::RandomState::new().hash_one(0x0e7a_u64),
            table: HashTable::new(),
        }
    }
}

impl Overlay {
    /// The hash every other method takes for `p`.
    pub(super) fn hash(&self, p: &str) -> u64 {
        crate::digest::hash_bytes(self.seed, p.as_bytes())
    }

    pub(super) fn len(&self) -> usize {
        self.table.len()
    }

    pub(super) fn clear(&mut self) {
        self.table.clear();
    }

    /// Every entry, in no particular order (the seed is per process): callers that
    /// build a txn from it sort first, so replicas never see the order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Pending> {
        self.table.iter()
    }

    /// The entry for `p` (hashed to `h`).
    pub(super) fn get(&self, p: &str, h: u64) -> Option<&Pending> {
        self.table.find(h, |e| &*e.key == p)
    }

    /// Sets `p`'s pending state to `view` for txn `zxid` (one probe) and returns the
    /// shared key and the entry it replaced. A path already in the table keeps its key,
    /// so it costs no allocation.
    pub(super) fn replace(
        &mut self,
        p: &str,
        h: u64,
        zxid: i64,
        view: Option<NodeView>,
    ) -> (Arc<str>, Option<Pending>) {
        match self.entry(p, h) {
            Entry::Occupied(mut o) => {
                let key = Arc::clone(&o.get().key);
                let new = Pending {
                    key: Arc::clone(&key),
                    zxid,
                    view,
                };
                (key, Some(std::mem::replace(o.get_mut(), new)))
            }
            Entry::Vacant(v) => {
                let key: Arc<str> = Arc::from(p);
                v.insert(Pending {
                    key: Arc::clone(&key),
                    zxid,
                    view,
                });
                (key, None)
            }
        }
    }

    /// Puts back what [`Overlay::replace`] returned for `key` (undoing a failed multi).
    pub(super) fn restore(&mut self, key: &str, old: Option<Pending>) {
        let h = self.hash(key);
        match (self.entry(key, h), old) {
            (Entry::Occupied(mut o), Some(old)) => *o.get_mut() = old,
            (Entry::Occupied(o), None) => {
                o.remove();
            }
            (Entry::Vacant(v), Some(old)) => {
                v.insert(old);
            }
            (Entry::Vacant(_), None) => {}
        }
    }

    /// The table's entry for `p` (hashed to `h`): one probe.
    fn entry(&mut self, p: &str, h: u64) -> Entry<'_, Pending> {
        let seed = self.seed;
        self.table.entry(
            h,
            |e| &*e.key == p,
            move |e| crate::digest::hash_bytes(seed, e.key.as_bytes()),
        )
    }

    /// Drops `p`'s entry if txn `zxid` set it; a later txn's entry stays.
    pub(super) fn remove_if_set_by(&mut self, p: &str, h: u64, zxid: i64) {
        if let Ok(e) = self.table.find_entry(h, |e| &*e.key == p) {
            if e.get().zxid == zxid {
                e.remove();
            }
        }
    }
}
