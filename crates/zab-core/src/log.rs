//! The in-memory view of the replicated log: a window of committed entries kept for
//! DIFF sync plus every uncommitted entry, with the commit and durability points.

use std::collections::VecDeque;

use crate::messages::Entry;
use crate::zxid::Zxid;

/// In-memory log window. Invariants: `base <= committed <= last()`,
/// `durable <= last()`, entries strictly increasing and all after `base`,
/// `committed_len` = the number of entries `<= committed`.
#[derive(Debug, Clone)]
pub(crate) struct Log {
    base: Zxid,
    entries: VecDeque<Entry>,
    committed: Zxid,
    /// Entries at or below `committed` (kept so the hot paths need no search).
    committed_len: usize,
    durable: Zxid,
    /// Payload bytes of the committed entries in the window.
    committed_bytes: usize,
    commit_log_max: usize,
    commit_log_max_bytes: usize,
    /// While set, no entry above this zxid is trimmed from the window, whatever the
    /// bounds (a learner's sync stream still has to send them).
    pin: Option<Zxid>,
}

impl Log {
    /// A log whose entries follow `base`; everything up to `committed` is committed
    /// (and applied by the shell), everything in `entries` is durable.
    pub(crate) fn new(
        base: Zxid,
        entries: Vec<Entry>,
        committed: Zxid,
        commit_log_max: usize,
        commit_log_max_bytes: usize,
    ) -> Self {
        let mut log = Log {
            base,
            entries: VecDeque::new(),
            committed: base,
            committed_len: 0,
            durable: base,
            committed_bytes: 0,
            commit_log_max,
            commit_log_max_bytes,
            pin: None,
        };
        for e in entries {
            if e.zxid > log.last() {
                log.entries.push_back(e);
            }
        }
        log.durable = log.last();
        // `committed` may exceed the log (a snapshot newer than the durable log).
        if committed > log.last() {
            log.reset(committed);
        } else {
            log.committed = committed.max(base);
            log.committed_len = log.count_upto(log.committed);
            log.committed_bytes = log
                .entries
                .iter()
                .take(log.committed_len)
                .map(|e| e.payload.len())
                .sum();
        }
        log.trim();
        log
    }

    pub(crate) fn base(&self) -> Zxid {
        self.base
    }

    pub(crate) fn last(&self) -> Zxid {
        self.entries.back().map_or(self.base, |e| e.zxid)
    }

    pub(crate) fn committed(&self) -> Zxid {
        self.committed
    }

    pub(crate) fn durable(&self) -> Zxid {
        self.durable
    }

    fn index_of(&self, zxid: Zxid) -> Result<usize, usize> {
        self.entries.binary_search_by(|e| e.zxid.cmp(&zxid))
    }

    /// The entry at `zxid`, if it is in the window.
    pub(crate) fn entry(&self, zxid: Zxid) -> Option<&Entry> {
        self.index_of(zxid).ok().and_then(|i| self.entries.get(i))
    }

    /// The largest zxid in the window (base included) that is `<= zxid`.
    /// Callers ensure `zxid >= base`.
    pub(crate) fn floor(&self, zxid: Zxid) -> Zxid {
        match self.index_of(zxid) {
            Ok(_) => zxid,
            Err(0) => self.base,
            Err(i) => self.entries.get(i - 1).map_or(self.base, |e| e.zxid),
        }
    }

    /// Number of entries `<= zxid`.
    fn count_upto(&self, zxid: Zxid) -> usize {
        match self.index_of(zxid) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    /// Entries with `after < zxid <= upto`.
    pub(crate) fn range(&self, after: Zxid, upto: Zxid) -> Vec<Entry> {
        self.range_capped(after, upto, usize::MAX)
    }

    /// At most `max` entries with `after < zxid <= upto`, from the first.
    pub(crate) fn range_capped(&self, after: Zxid, upto: Zxid, max: usize) -> Vec<Entry> {
        let start = if after == self.committed {
            self.committed_len
        } else {
            self.count_upto(after)
        };
        // Sized up front (a binary search): committing hands out every entry once,
        // and growing the vector as it filled was a realloc and a copy per commit.
        let end = self
            .count_upto(upto)
            .max(start)
            .min(start.saturating_add(max));
        self.entries.range(start..end).cloned().collect()
    }

    /// Number of entries with `after < zxid <= upto` (0 when `upto <= after`).
    pub(crate) fn count_between(&self, after: Zxid, upto: Zxid) -> usize {
        self.count_upto(upto).saturating_sub(self.count_upto(after))
    }

    /// Changes the window's entry bound (tests that resize a running core's window).
    #[cfg(test)]
    pub(crate) fn set_commit_log_max(&mut self, max: usize) {
        self.commit_log_max = max;
    }

    /// Sets (or clears) the zxid above which trimming stops; see `pin`.
    pub(crate) fn set_pin(&mut self, pin: Option<Zxid>) {
        self.pin = pin;
    }

    /// Appends an entry after the last one. Returns false (and does nothing) when the
    /// zxid does not follow the last entry.
    pub(crate) fn append(&mut self, entry: Entry) -> bool {
        if entry.zxid <= self.last() {
            return false;
        }
        self.entries.push_back(entry);
        true
    }

    /// Removes every entry after `after`. Callers check `after >= committed`.
    pub(crate) fn truncate_after(&mut self, after: Zxid) {
        while self.entries.back().is_some_and(|e| e.zxid > after) {
            self.entries.pop_back();
        }
        self.committed_len = self.committed_len.min(self.entries.len());
        self.durable = self.durable.min(self.last());
    }

    /// Replaces the whole log by a snapshot at `zxid`.
    pub(crate) fn reset(&mut self, zxid: Zxid) {
        self.entries.clear();
        self.base = zxid;
        self.committed = zxid;
        self.committed_len = 0;
        self.committed_bytes = 0;
        self.durable = zxid;
    }

    /// Marks everything up to `upto` (capped at the last entry) as committed and
    /// returns the newly committed entries in order.
    pub(crate) fn commit_upto(&mut self, upto: Zxid) -> Vec<Entry> {
        let upto = upto.min(self.last());
        if upto <= self.committed {
            return Vec::new();
        }
        let newly = self.range(self.committed, upto);
        self.committed = upto;
        self.committed_len += newly.len();
        self.committed_bytes += newly.iter().map(|e| e.payload.len()).sum::<usize>();
        debug_assert_eq!(self.committed_len, self.count_upto(upto));
        self.trim();
        newly
    }

    /// Records that everything up to `upto` is durable.
    pub(crate) fn set_durable(&mut self, upto: Zxid) {
        self.durable = upto.min(self.last());
    }

    /// Number of entries after the commit point.
    pub(crate) fn uncommitted(&self) -> usize {
        self.entries.len() - self.committed_count()
    }

    fn committed_count(&self) -> usize {
        debug_assert_eq!(self.committed_len, self.count_upto(self.committed));
        self.committed_len
    }

    /// Payload bytes of the committed entries still in the window.
    #[cfg(test)]
    pub(crate) fn committed_bytes(&self) -> usize {
        self.committed_bytes
    }

    /// Drops the oldest committed entries while there are more than
    /// `commit_log_max` of them or their payloads exceed `commit_log_max_bytes`, but
    /// none above the pin.
    /// The byte bound matters after large txns (a bulk load of 1,000-create multis
    /// is ~140 KB per entry): a learner that far behind is better served by SNAP, and
    /// the window would otherwise pin tens of MB per node.
    fn trim(&mut self) {
        while self.committed_count() > self.commit_log_max
            || (self.committed_bytes > self.commit_log_max_bytes && self.committed_len > 0)
        {
            if let (Some(pin), Some(front)) = (self.pin, self.entries.front()) {
                if front.zxid > pin {
                    break;
                }
            }
            let Some(e) = self.entries.pop_front() else {
                break;
            };
            self.base = e.zxid;
            self.committed_len -= 1;
            self.committed_bytes -= e.payload.len();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;

    fn e(epoch: u32, counter: u32) -> Entry {
        Entry {
            zxid: Zxid::new(epoch, counter),
            payload: Bytes::from(format!("{epoch}:{counter}")),
        }
    }

    #[test]
    fn floor_prev_range() {
        let log = Log::new(
            Zxid::new(1, 1),
            vec![e(1, 2), e(1, 3), e(3, 1)],
            Zxid::new(1, 1),
            10,
            usize::MAX,
        );
        assert_eq!(log.floor(Zxid::new(1, 1)), Zxid::new(1, 1));
        assert_eq!(log.floor(Zxid::new(1, 3)), Zxid::new(1, 3));
        assert_eq!(log.floor(Zxid::new(2, 7)), Zxid::new(1, 3));
        assert_eq!(log.floor(Zxid::new(9, 9)), Zxid::new(3, 1));
        let r: Vec<Zxid> = log
            .range(Zxid::new(1, 2), Zxid::new(9, 0))
            .iter()
            .map(|x| x.zxid)
            .collect();
        assert_eq!(r, vec![Zxid::new(1, 3), Zxid::new(3, 1)]);
        assert!(log.range(Zxid::new(3, 1), Zxid::new(9, 0)).is_empty());
    }

    #[test]
    fn commit_trims_to_window() {
        let mut log = Log::new(Zxid::ZERO, vec![], Zxid::ZERO, 2, usize::MAX);
        for c in 1..=5 {
            assert!(log.append(e(1, c)));
        }
        assert!(!log.append(e(1, 5)), "duplicates refused");
        let got = log.commit_upto(Zxid::new(1, 4));
        assert_eq!(got.len(), 4);
        assert_eq!(log.base(), Zxid::new(1, 2));
        assert_eq!(log.uncommitted(), 1);
        assert!(
            log.commit_upto(Zxid::new(1, 3)).is_empty(),
            "commit is monotonic"
        );
        assert_eq!(log.commit_upto(Zxid::new(9, 9)).len(), 1, "capped at last");
    }

    #[test]
    fn a_pin_stops_trimming_above_it() {
        let entries = (1..=6).map(|c| e(1, c)).collect();
        let mut log = Log::new(Zxid::ZERO, entries, Zxid::ZERO, 2, usize::MAX);
        log.set_pin(Some(Zxid::new(1, 1)));
        log.commit_upto(Zxid::new(1, 5));
        // Bounded to 2 committed entries, but nothing above 1:1 may go.
        assert_eq!(log.base(), Zxid::new(1, 1));
        assert_eq!(log.range_capped(Zxid::new(1, 1), log.last(), 2).len(), 2);
        assert_eq!(log.range_capped(Zxid::new(1, 1), log.last(), 99).len(), 5);
        log.set_pin(None);
        log.commit_upto(Zxid::new(1, 6));
        assert_eq!(log.base(), Zxid::new(1, 4));
    }

    #[test]
    fn truncate_lowers_durable() {
        let entries = vec![e(1, 1), e(1, 2), e(1, 3)];
        let mut log = Log::new(Zxid::ZERO, entries, Zxid::ZERO, 10, usize::MAX);
        assert_eq!(log.durable(), Zxid::new(1, 3));
        log.truncate_after(Zxid::new(1, 1));
        assert_eq!(log.last(), Zxid::new(1, 1));
        assert_eq!(log.durable(), Zxid::new(1, 1));
    }

    fn sized(counter: u32, len: usize) -> Entry {
        Entry {
            zxid: Zxid::new(1, counter),
            payload: Bytes::from(vec![0u8; len]),
        }
    }

    #[test]
    fn commit_trims_to_byte_bound() {
        let mut log = Log::new(Zxid::ZERO, vec![], Zxid::ZERO, 500, 250);
        for c in 1..=4 {
            assert!(log.append(sized(c, 100)));
        }
        assert_eq!(log.commit_upto(Zxid::new(1, 3)).len(), 3);
        // 300 committed bytes > 250: the oldest goes, two stay.
        assert_eq!(log.base(), Zxid::new(1, 1));
        assert_eq!(log.committed_bytes(), 200);
        assert_eq!(
            log.uncommitted(),
            1,
            "uncommitted entries are never trimmed"
        );
        // One entry larger than the bound: nothing committed stays in the window.
        assert!(log.append(sized(5, 1000)));
        log.commit_upto(Zxid::new(1, 5));
        assert_eq!(log.base(), Zxid::new(1, 5));
        assert_eq!(log.committed_bytes(), 0);
        assert_eq!(log.last(), Zxid::new(1, 5));
    }

    #[test]
    fn loading_applies_the_byte_bound() {
        let entries = (1..=5).map(|c| sized(c, 100)).collect();
        let log = Log::new(Zxid::ZERO, entries, Zxid::new(1, 4), 500, 250);
        assert_eq!(log.base(), Zxid::new(1, 2));
        assert_eq!(log.committed_bytes(), 200);
        assert_eq!(log.last(), Zxid::new(1, 5));
    }

    proptest! {
        /// Model test: the window agrees with a plain vector of all entries, and both
        /// bounds hold after every step.
        #[test]
        fn window_matches_model(ops in proptest::collection::vec((0u8..3, 0u32..4), 1..60), max in 1usize..6, max_bytes in 0usize..40) {
            let mut log = Log::new(Zxid::ZERO, vec![], Zxid::ZERO, max, max_bytes);
            let mut model: Vec<Zxid> = Vec::new();
            let mut committed = Zxid::ZERO;
            let mut next = 1u32;
            for (op, arg) in ops {
                match op {
                    0 => { let z = Zxid::new(1, next); next += 1; let ok = log.append(sized(next - 1, (next % 7) as usize)); prop_assert!(ok); model.push(z); }
                    1 => {
                        let upto = model.get(arg as usize).copied().unwrap_or(Zxid::ZERO);
                        let newly = log.commit_upto(upto);
                        let want: Vec<Zxid> = model.iter().copied().filter(|z| *z > committed && *z <= upto).collect();
                        prop_assert_eq!(newly.iter().map(|x| x.zxid).collect::<Vec<_>>(), want);
                        committed = committed.max(upto.min(model.last().copied().unwrap_or(Zxid::ZERO)));
                    }
                    _ => {
                        let keep = committed.max(model.get(arg as usize).copied().unwrap_or(Zxid::ZERO));
                        log.truncate_after(keep);
                        model.retain(|z| *z <= keep);
                    }
                }
                prop_assert_eq!(log.last(), model.last().copied().unwrap_or(Zxid::ZERO).max(log.base()));
                prop_assert_eq!(log.committed(), committed);
                prop_assert!(log.base() <= log.committed());
                let held: Vec<&Entry> = log.entries.iter().filter(|x| x.zxid <= committed).collect();
                prop_assert!(held.len() <= max);
                prop_assert_eq!(held.iter().map(|x| x.payload.len()).sum::<usize>(), log.committed_bytes());
                prop_assert!(log.committed_bytes() <= max_bytes);
                for z in model.iter().filter(|z| **z > log.base()) {
                    prop_assert!(log.entry(*z).is_some());
                }
            }
        }
    }
}
