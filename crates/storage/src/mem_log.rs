//! [`MemLog`]: the in-memory [`LogStore`] for tests and in-memory nodes.

use std::collections::VecDeque;

use crate::log::{check_batch, check_range};
use crate::{LogEntry, LogStore, StorageError, MAX_RECORD_BYTES};

/// An in-memory log. `sync` is instant and everything appended is durable once it
/// returns (there is nothing to lose: the process is the disk). For crash modelling
/// use [`crate::SimLog`].
#[derive(Debug, Default, Clone)]
pub struct MemLog {
    entries: VecDeque<LogEntry>,
    base_zxid: u64,
    durable_zxid: u64,
}

impl MemLog {
    /// An empty log with base zxid 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no entry is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn last_or_base(&self) -> u64 {
        self.entries.back().map_or(self.base_zxid, |e| e.zxid)
    }

    /// Index of the first entry with `zxid >= target`.
    fn lower_bound(&self, target: u64) -> usize {
        self.entries.partition_point(|e| e.zxid < target)
    }
}

impl LogStore for MemLog {
    fn append(&mut self, entries: &[LogEntry]) -> Result<(), StorageError> {
        check_batch(entries, self.last_or_base(), MAX_RECORD_BYTES)?;
        self.entries.extend(entries.iter().cloned());
        Ok(())
    }

    fn append_owned(&mut self, entries: Vec<LogEntry>) -> Result<(), StorageError> {
        check_batch(&entries, self.last_or_base(), MAX_RECORD_BYTES)?;
        self.entries.extend(entries);
        Ok(())
    }

    fn sync_inline(&mut self) -> Result<u64, StorageError> {
        self.durable_zxid = self.last_or_base();
        Ok(self.durable_zxid)
    }

    fn durable_zxid(&self) -> u64 {
        self.durable_zxid
    }

    fn base_zxid(&self) -> u64 {
        self.base_zxid
    }

    fn first_zxid(&self) -> Option<u64> {
        self.entries.front().map(|e| e.zxid)
    }

    fn last_zxid(&self) -> Option<u64> {
        self.entries.back().map(|e| e.zxid)
    }

    fn read_range(&self, from: u64, to_inclusive: u64) -> Result<Vec<LogEntry>, StorageError> {
        check_range(from, to_inclusive, self.base_zxid)?;
        if from > to_inclusive {
            return Ok(Vec::new());
        }
        let start = self.lower_bound(from);
        let end = self.entries.partition_point(|e| e.zxid <= to_inclusive);
        Ok(self.entries.range(start..end.max(start)).cloned().collect())
    }

    fn read_chunk(&self, from: u64, max_entries: usize) -> Result<Vec<LogEntry>, StorageError> {
        check_range(from, from, self.base_zxid)?;
        let start = self.lower_bound(from);
        Ok(self
            .entries
            .range(start..)
            .take(max_entries)
            .cloned()
            .collect())
    }

    fn truncate_after(&mut self, zxid: u64) -> Result<(), StorageError> {
        if zxid < self.base_zxid {
            return Err(StorageError::TruncateBelowBase {
                zxid,
                base: self.base_zxid,
            });
        }
        let keep = self.entries.partition_point(|e| e.zxid <= zxid);
        self.entries.truncate(keep);
        self.durable_zxid = self.last_or_base();
        Ok(())
    }

    fn purge_before(&mut self, zxid: u64) -> Result<(), StorageError> {
        let drop = self.lower_bound(zxid);
        if drop == 0 {
            return Ok(());
        }
        // `drop > 0` guarantees the entry exists; the new base is the last removed zxid.
        if let Some(last_removed) = self.entries.get(drop - 1) {
            self.base_zxid = self.base_zxid.max(last_removed.zxid);
        }
        self.entries.drain(..drop);
        self.durable_zxid = self.durable_zxid.max(self.base_zxid);
        Ok(())
    }

    fn reset(&mut self, base_zxid: u64) -> Result<(), StorageError> {
        self.entries.clear();
        self.base_zxid = base_zxid;
        self.durable_zxid = base_zxid;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn purge_moves_base_to_last_removed() {
        let mut log = MemLog::new();
        log.append(&[
            LogEntry::new(5, "a"),
            LogEntry::new(9, "b"),
            LogEntry::new(12, "c"),
        ])
        .unwrap();
        log.purge_before(10).unwrap();
        assert_eq!(log.base_zxid(), 9);
        assert_eq!(log.first_zxid(), Some(12));
        assert!(matches!(
            log.read_range(9, 12),
            Err(StorageError::OutOfRange { base: 9, .. })
        ));
        assert_eq!(log.read_range(10, 20).unwrap().len(), 1);
    }
}
