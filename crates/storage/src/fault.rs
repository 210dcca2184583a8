//! Fault injection: a seeded in-memory log that models crashes ([`SimLog`]), a wrapper
//! that makes any store fail ([`FaultyLog`]), and helpers that damage real files.
//!
//! Everything here is deterministic: [`SimLog`] draws its choices from a seeded
//! ChaCha RNG, so a simulator run is reproducible from its seed.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::MEMORY_FILE;
use crate::log::{check_batch, check_range};
use crate::{LogEntry, LogStore, PendingSync, StorageError, MAX_RECORD_BYTES};

/// What a [`SimLog::crash`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrashReport {
    /// Unsynced entries that reached the "disk" before the crash and were kept.
    pub kept_unsynced: usize,
    /// Unsynced entries lost.
    pub lost: usize,
    /// The first lost entry was torn (partly written) and cut off by recovery.
    pub torn: bool,
    /// A bit-flipped record at the tail was cut off by recovery.
    pub cut_corrupt_tail: bool,
}

/// An in-memory log with a durability model, for the simulator and recovery tests.
///
/// Entries above [`LogStore::durable_zxid`] are "in the page cache": a
/// [`SimLog::crash`] keeps a seeded random prefix of them (a real disk may have written
/// some), possibly tearing the next one (recovery cuts it), and loses the rest; synced
/// entries always survive. [`SimLog::flip_bit`] damages a record: reads of it fail
/// with [`StorageError::Corrupt`], and at the next crash recovery cuts it if it is the
/// last record or fails with `Corrupt` if it is not (then only [`LogStore::reset`]
/// revives the log, as a learner dropping its log and taking a snapshot would).
/// [`SimLog::fail_next_sync`] makes the next sync fail and poisons the log until the
/// next crash.
#[derive(Debug, Clone)]
pub struct SimLog {
    entries: Vec<LogEntry>,
    base_zxid: u64,
    durable_zxid: u64,
    corrupted: BTreeSet<u64>,
    rng: ChaCha8Rng,
    fail_next_sync: bool,
    fail_next_append: bool,
    poisoned: bool,
    broken: bool,
}

impl SimLog {
    /// An empty log whose crash choices come from `seed`.
    pub fn new(seed: u64) -> Self {
        SimLog {
            entries: Vec::new(),
            base_zxid: 0,
            durable_zxid: 0,
            corrupted: BTreeSet::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            fail_next_sync: false,
            fail_next_append: false,
            poisoned: false,
            broken: false,
        }
    }

    /// Makes the next sync fail (and poison the log until the next crash).
    pub fn fail_next_sync(&mut self) {
        self.fail_next_sync = true;
    }

    /// Makes the next append fail (and poison the log until the next crash).
    pub fn fail_next_append(&mut self) {
        self.fail_next_append = true;
    }

    /// Flips a bit in the record `zxid`. Returns false if no such record is held.
    pub fn flip_bit(&mut self, zxid: u64) -> bool {
        let held = self.entries.binary_search_by_key(&zxid, |e| e.zxid).is_ok();
        if held {
            self.corrupted.insert(zxid);
        }
        held
    }

    /// Number of entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no entry is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Crashes and recovers: synced entries survive, a seeded prefix of unsynced ones
    /// survives, the rest are lost; a damaged last record is cut; a damaged record
    /// before the tail makes recovery fail with [`StorageError::Corrupt`] (and the log
    /// stays broken until [`LogStore::reset`]). Clears injected failures and poison.
    pub fn crash(&mut self) -> Result<CrashReport, StorageError> {
        self.fail_next_sync = false;
        self.fail_next_append = false;
        self.poisoned = false;
        let synced = self
            .entries
            .partition_point(|e| e.zxid <= self.durable_zxid);
        let unsynced = self.entries.len() - synced;
        let kept = self.rng.gen_range(0..=unsynced);
        let torn = kept < unsynced && self.rng.gen_bool(0.5);
        self.entries.truncate(synced + kept);
        let last = self.entries.last().map(|e| e.zxid);
        self.corrupted.retain(|z| Some(*z) <= last);
        let mut cut_corrupt_tail = false;
        if let Some(last) = last {
            if self.corrupted.remove(&last) {
                self.entries.pop();
                cut_corrupt_tail = true;
            }
        }
        self.durable_zxid = self.last_or_base();
        if let Some(&bad) = self.corrupted.iter().next() {
            self.broken = true;
            return Err(StorageError::corrupt(
                MEMORY_FILE,
                bad,
                format!("record {bad:#x} fails its checksum before the tail"),
            ));
        }
        Ok(CrashReport {
            kept_unsynced: kept,
            lost: unsynced - kept,
            torn,
            cut_corrupt_tail,
        })
    }

    fn last_or_base(&self) -> u64 {
        self.entries.last().map_or(self.base_zxid, |e| e.zxid)
    }

    fn check_alive(&self) -> Result<(), StorageError> {
        if self.broken {
            return Err(StorageError::corrupt(
                MEMORY_FILE,
                0,
                "log failed recovery; reset it",
            ));
        }
        if self.poisoned {
            return Err(StorageError::Poisoned);
        }
        Ok(())
    }
}

impl LogStore for SimLog {
    fn append(&mut self, entries: &[LogEntry]) -> Result<(), StorageError> {
        self.check_alive()?;
        if std::mem::take(&mut self.fail_next_append) {
            self.poisoned = true;
            return Err(StorageError::Injected { what: "append" });
        }
        check_batch(entries, self.last_or_base(), MAX_RECORD_BYTES)?;
        self.entries.extend_from_slice(entries);
        Ok(())
    }

    fn sync_inline(&mut self) -> Result<u64, StorageError> {
        self.check_alive()?;
        if std::mem::take(&mut self.fail_next_sync) {
            self.poisoned = true;
            return Err(StorageError::Injected { what: "fsync" });
        }
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
        self.entries.first().map(|e| e.zxid)
    }

    fn last_zxid(&self) -> Option<u64> {
        self.entries.last().map(|e| e.zxid)
    }

    fn read_range(&self, from: u64, to_inclusive: u64) -> Result<Vec<LogEntry>, StorageError> {
        self.check_alive()?;
        check_range(from, to_inclusive, self.base_zxid)?;
        if from > to_inclusive {
            return Ok(Vec::new());
        }
        let a = self.entries.partition_point(|e| e.zxid < from);
        let b = self.entries.partition_point(|e| e.zxid <= to_inclusive);
        let out = self.entries[a..b.max(a)].to_vec();
        if let Some(bad) = out.iter().find(|e| self.corrupted.contains(&e.zxid)) {
            return Err(StorageError::corrupt(
                MEMORY_FILE,
                bad.zxid,
                "record checksum mismatch",
            ));
        }
        Ok(out)
    }

    fn truncate_after(&mut self, zxid: u64) -> Result<(), StorageError> {
        self.check_alive()?;
        if zxid < self.base_zxid {
            return Err(StorageError::TruncateBelowBase {
                zxid,
                base: self.base_zxid,
            });
        }
        let keep = self.entries.partition_point(|e| e.zxid <= zxid);
        self.entries.truncate(keep);
        self.corrupted.retain(|z| *z <= zxid);
        // Truncation is durable on return, including what stays.
        self.durable_zxid = self.last_or_base();
        Ok(())
    }

    fn purge_before(&mut self, zxid: u64) -> Result<(), StorageError> {
        self.check_alive()?;
        let n = self.entries.partition_point(|e| e.zxid < zxid);
        if n == 0 {
            return Ok(());
        }
        self.base_zxid = self.base_zxid.max(self.entries[n - 1].zxid);
        self.entries.drain(..n);
        self.corrupted.retain(|z| *z >= zxid);
        self.durable_zxid = self.durable_zxid.max(self.base_zxid);
        Ok(())
    }

    fn reset(&mut self, base_zxid: u64) -> Result<(), StorageError> {
        self.entries.clear();
        self.corrupted.clear();
        self.base_zxid = base_zxid;
        self.durable_zxid = base_zxid;
        self.broken = false;
        self.poisoned = false;
        Ok(())
    }
}

/// Wraps any [`LogStore`] and makes chosen calls fail. After an injected failure the
/// wrapper is poisoned ([`StorageError::Poisoned`]) like a real store after a failed
/// fsync, until [`FaultyLog::clear_poison`] (standing in for a reopen).
#[derive(Debug)]
pub struct FaultyLog<L> {
    inner: L,
    /// What this wrapper has reported durable (a failed sync reports nothing, even if
    /// the inner store got further).
    durable_zxid: u64,
    fail_next_sync: bool,
    fail_next_append: bool,
    poisoned: bool,
}

impl<L: LogStore> FaultyLog<L> {
    /// Wraps `inner` with no fault armed.
    pub fn new(inner: L) -> Self {
        FaultyLog {
            durable_zxid: inner.durable_zxid(),
            inner,
            fail_next_sync: false,
            fail_next_append: false,
            poisoned: false,
        }
    }

    /// Makes the next sync fail (after the data reached the inner store's OS layer).
    pub fn fail_next_sync(&mut self) {
        self.fail_next_sync = true;
    }

    /// Makes the next append fail without appending anything.
    pub fn fail_next_append(&mut self) {
        self.fail_next_append = true;
    }

    /// Clears the poison left by an injected failure.
    pub fn clear_poison(&mut self) {
        self.poisoned = false;
    }

    /// The wrapped store.
    pub fn inner(&self) -> &L {
        &self.inner
    }

    /// Unwraps.
    pub fn into_inner(self) -> L {
        self.inner
    }

    fn check_alive(&self) -> Result<(), StorageError> {
        if self.poisoned {
            return Err(StorageError::Poisoned);
        }
        Ok(())
    }
}

impl<L: LogStore> LogStore for FaultyLog<L> {
    fn append(&mut self, entries: &[LogEntry]) -> Result<(), StorageError> {
        self.check_alive()?;
        if std::mem::take(&mut self.fail_next_append) {
            self.poisoned = true;
            return Err(StorageError::Injected { what: "append" });
        }
        self.inner.append(entries)
    }

    fn sync_inline(&mut self) -> Result<u64, StorageError> {
        let mut pending = self.start_sync()?;
        let result = pending.run();
        self.finish_sync(pending, result)
    }

    fn start_sync(&mut self) -> Result<PendingSync, StorageError> {
        self.check_alive()?;
        self.inner.start_sync()
    }

    fn finish_sync(
        &mut self,
        pending: PendingSync,
        result: Result<(), StorageError>,
    ) -> Result<u64, StorageError> {
        if std::mem::take(&mut self.fail_next_sync) {
            self.poisoned = true;
            return Err(StorageError::Injected { what: "fsync" });
        }
        self.check_alive()?;
        let durable = self.inner.finish_sync(pending, result)?;
        self.durable_zxid = durable;
        Ok(durable)
    }

    fn durable_zxid(&self) -> u64 {
        self.durable_zxid
    }

    fn base_zxid(&self) -> u64 {
        self.inner.base_zxid()
    }

    fn first_zxid(&self) -> Option<u64> {
        self.inner.first_zxid()
    }

    fn last_zxid(&self) -> Option<u64> {
        self.inner.last_zxid()
    }

    fn read_range(&self, from: u64, to_inclusive: u64) -> Result<Vec<LogEntry>, StorageError> {
        self.inner.read_range(from, to_inclusive)
    }

    fn read_chunk(&self, from: u64, max_entries: usize) -> Result<Vec<LogEntry>, StorageError> {
        self.inner.read_chunk(from, max_entries)
    }

    fn truncate_after(&mut self, zxid: u64) -> Result<(), StorageError> {
        self.check_alive()?;
        self.inner.truncate_after(zxid)?;
        self.durable_zxid = self.inner.durable_zxid();
        Ok(())
    }

    fn purge_before(&mut self, zxid: u64) -> Result<(), StorageError> {
        self.check_alive()?;
        self.inner.purge_before(zxid)?;
        self.durable_zxid = self.inner.durable_zxid();
        Ok(())
    }

    fn reset(&mut self, base_zxid: u64) -> Result<(), StorageError> {
        self.check_alive()?;
        self.inner.reset(base_zxid)?;
        self.durable_zxid = self.inner.durable_zxid();
        Ok(())
    }
}

/// Flips bit `bit` (0..8) of the byte at `offset` in a real file.
pub fn flip_bit_in_file(path: &Path, offset: u64, bit: u8) -> Result<(), StorageError> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| StorageError::io("open", path, e))?;
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset)
        .map_err(|e| StorageError::io("read", path, e))?;
    b[0] ^= 1 << (bit % 8);
    f.write_all_at(&b, offset)
        .map_err(|e| StorageError::io("write", path, e))
}

/// Overwrites `len` bytes at `offset` with zeros (a write that never reached the disk
/// inside a preallocated file, leaving a torn record).
pub fn zero_range_in_file(path: &Path, offset: u64, len: usize) -> Result<(), StorageError> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| StorageError::io("open", path, e))?;
    f.write_all_at(&vec![0u8; len], offset)
        .map_err(|e| StorageError::io("write", path, e))
}

/// Cuts a file to `len` bytes (a torn tail without preallocation).
pub fn truncate_file(path: &Path, len: u64) -> Result<(), StorageError> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| StorageError::io("open", path, e))?;
    f.set_len(len)
        .map_err(|e| StorageError::io("truncate", path, e))
}
