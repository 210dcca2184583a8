//! The replicated session table: which global sessions exist, with their timeouts.
//!
//! It changes only when a committed createSession or closeSession txn is applied, in
//! zxid order, on every replica, so every replica holds the same table. Applying is
//! idempotent (replaying a log over a fuzzy snapshot applies some txns twice).

use std::collections::BTreeMap;

use crate::id::SessionId;

/// Global sessions and their negotiated timeouts, identical on every replica.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionTable {
    timeouts_ms: BTreeMap<SessionId, u32>,
}

impl SessionTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a committed createSession. Returns true if the session is new; applying
    /// it again only refreshes the timeout (the last applied value wins, as ZooKeeper's
    /// `commitSession` does).
    pub fn apply_create(&mut self, id: SessionId, timeout_ms: u32) -> bool {
        self.timeouts_ms.insert(id, timeout_ms).is_none()
    }

    /// Applies a committed closeSession. Returns true if the session existed.
    pub fn apply_close(&mut self, id: SessionId) -> bool {
        self.timeouts_ms.remove(&id).is_some()
    }

    /// The timeout of session `id`, if it exists.
    pub fn timeout_ms(&self, id: SessionId) -> Option<u32> {
        self.timeouts_ms.get(&id).copied()
    }

    /// Whether session `id` exists.
    pub fn contains(&self, id: SessionId) -> bool {
        self.timeouts_ms.contains_key(&id)
    }

    /// Number of sessions.
    pub fn len(&self) -> usize {
        self.timeouts_ms.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.timeouts_ms.is_empty()
    }

    /// All sessions with their timeouts, in id order (for snapshots and stats).
    pub fn iter(&self) -> impl Iterator<Item = (SessionId, u32)> + '_ {
        self.timeouts_ms.iter().map(|(id, t)| (*id, *t))
    }
}

impl FromIterator<(SessionId, u32)> for SessionTable {
    /// Rebuilds a table from a snapshot's `(id, timeout_ms)` pairs.
    fn from_iter<I: IntoIterator<Item = (SessionId, u32)>>(iter: I) -> Self {
        Self {
            timeouts_ms: iter.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_is_idempotent() {
        let mut t = SessionTable::new();
        assert!(t.apply_create(SessionId(1), 100));
        assert!(!t.apply_create(SessionId(1), 100));
        assert_eq!(t.len(), 1);
        assert!(t.apply_close(SessionId(1)));
        assert!(!t.apply_close(SessionId(1)));
        assert!(t.is_empty());
    }

    #[test]
    fn same_txns_give_same_table_and_snapshot_round_trips() {
        let txns = [(1, Some(100)), (2, Some(200)), (1, None), (3, Some(300))];
        let mut a = SessionTable::new();
        let mut b = SessionTable::new();
        for (id, create) in txns {
            for t in [&mut a, &mut b] {
                match create {
                    Some(ms) => t.apply_create(SessionId(id), ms),
                    None => t.apply_close(SessionId(id)),
                };
            }
        }
        assert_eq!(a, b);
        assert_eq!(a.timeout_ms(SessionId(2)), Some(200));
        assert!(!a.contains(SessionId(1)));
        let copy: SessionTable = a.iter().collect();
        assert_eq!(copy, a);
    }
}
