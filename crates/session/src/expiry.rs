//! Tick buckets for session expiry (ZooKeeper's `ExpiryQueue`, on logical ticks).
//!
//! Every tracked session sits in exactly one bucket, keyed by the tick at which it
//! expires. Touching a session moves it to a later bucket; [`ExpiryQueue::poll_due`]
//! removes and returns every bucket whose tick has come, so a whole bucket expires at
//! once. Buckets and their contents are ordered, so results are deterministic.

use std::collections::{BTreeMap, BTreeSet};

use crate::id::SessionId;

/// Sessions grouped by the tick at which they expire.
#[derive(Debug, Clone, Default)]
pub struct ExpiryQueue {
    // BTreeMap, not HashMap: no randomly seeded hasher in a deterministic core.
    deadline_by_id: BTreeMap<SessionId, u64>,
    buckets: BTreeMap<u64, BTreeSet<SessionId>>,
}

impl ExpiryQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts `id` in the bucket of `expiry_tick`, moving it out of its previous bucket.
    /// Returns the previous expiry tick, if it was queued.
    pub fn update(&mut self, id: SessionId, expiry_tick: u64) -> Option<u64> {
        let previous = self.deadline_by_id.insert(id, expiry_tick);
        if previous == Some(expiry_tick) {
            return previous;
        }
        if let Some(old) = previous {
            self.remove_from_bucket(id, old);
        }
        self.buckets.entry(expiry_tick).or_default().insert(id);
        previous
    }

    /// Removes `id`; returns the tick it was due at, if it was queued.
    pub fn remove(&mut self, id: SessionId) -> Option<u64> {
        let old = self.deadline_by_id.remove(&id)?;
        self.remove_from_bucket(id, old);
        Some(old)
    }

    /// The tick at which `id` expires, if queued.
    pub fn expiry_tick(&self, id: SessionId) -> Option<u64> {
        self.deadline_by_id.get(&id).copied()
    }

    /// The earliest non-empty bucket's tick: when the next expiry can happen.
    pub fn next_expiry_tick(&self) -> Option<u64> {
        self.buckets.keys().next().copied()
    }

    /// Number of queued sessions.
    pub fn len(&self) -> usize {
        self.deadline_by_id.len()
    }

    /// Whether no session is queued.
    pub fn is_empty(&self) -> bool {
        self.deadline_by_id.is_empty()
    }

    /// Removes every bucket due at or before `now_tick` and returns its sessions,
    /// ordered by bucket and then by id. Catches up if ticks were skipped.
    pub fn poll_due(&mut self, now_tick: u64) -> Vec<SessionId> {
        let later = match now_tick.checked_add(1) {
            Some(bound) => self.buckets.split_off(&bound),
            None => BTreeMap::new(),
        };
        let due = std::mem::replace(&mut self.buckets, later);
        let mut out = Vec::new();
        for (_, ids) in due {
            for id in ids {
                self.deadline_by_id.remove(&id);
                out.push(id);
            }
        }
        out
    }

    /// Removes everything.
    pub fn clear(&mut self) {
        self.deadline_by_id.clear();
        self.buckets.clear();
    }

    fn remove_from_bucket(&mut self, id: SessionId, tick: u64) {
        if let Some(bucket) = self.buckets.get_mut(&tick) {
            bucket.remove(&id);
            if bucket.is_empty() {
                self.buckets.remove(&tick);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_bucket_expires_at_once() {
        let mut q = ExpiryQueue::new();
        q.update(SessionId(2), 5);
        q.update(SessionId(1), 5);
        q.update(SessionId(3), 6);
        assert_eq!(q.next_expiry_tick(), Some(5));
        assert!(q.poll_due(4).is_empty());
        assert_eq!(q.poll_due(5), vec![SessionId(1), SessionId(2)]);
        assert_eq!(q.len(), 1);
        assert_eq!(q.poll_due(6), vec![SessionId(3)]);
        assert!(q.is_empty());
        assert_eq!(q.next_expiry_tick(), None);
    }

    #[test]
    fn touch_moves_to_later_bucket() {
        let mut q = ExpiryQueue::new();
        assert_eq!(q.update(SessionId(1), 5), None);
        assert_eq!(q.update(SessionId(1), 8), Some(5));
        assert_eq!(q.update(SessionId(1), 8), Some(8));
        assert!(q.poll_due(7).is_empty());
        assert_eq!(q.expiry_tick(SessionId(1)), Some(8));
        assert_eq!(q.poll_due(8), vec![SessionId(1)]);
    }

    #[test]
    fn poll_catches_up_over_skipped_ticks_in_bucket_order() {
        let mut q = ExpiryQueue::new();
        q.update(SessionId(9), 3);
        q.update(SessionId(1), 4);
        q.update(SessionId(5), 10);
        assert_eq!(q.poll_due(9), vec![SessionId(9), SessionId(1)]);
        assert_eq!(q.poll_due(u64::MAX), vec![SessionId(5)]);
    }

    #[test]
    fn remove_drops_empty_buckets() {
        let mut q = ExpiryQueue::new();
        q.update(SessionId(1), 3);
        assert_eq!(q.remove(SessionId(1)), Some(3));
        assert_eq!(q.remove(SessionId(1)), None);
        assert_eq!(q.next_expiry_tick(), None);
        q.update(SessionId(2), u64::MAX);
        assert_eq!(q.poll_due(u64::MAX), vec![SessionId(2)]);
    }
}
