//! The [`LogStore`] trait and its entry type.

use bytes::Bytes;

use crate::StorageError;

/// One transaction in the log: an opaque, strictly increasing zxid and opaque bytes.
///
/// Storage knows nothing of ZAB: `zab-core` packs `epoch << 32 | counter` into the
/// zxid, and the payload is whatever the server serialized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// Position of the entry; never 0 (0 means "none").
    pub zxid: u64,
    /// The serialized transaction.
    pub payload: Bytes,
}

impl LogEntry {
    /// Builds an entry.
    pub fn new(zxid: u64, payload: impl Into<Bytes>) -> Self {
        LogEntry {
            zxid,
            payload: payload.into(),
        }
    }
}

/// The slow half of a split [`LogStore::sync`]: the fsync itself, which may run
/// without exclusive access to the store (see [`LogStore::start_sync`]).
pub struct PendingSync {
    zxid: u64,
    token: u64,
    work: Option<Box<dyn FnOnce() -> Result<(), StorageError> + Send>>,
}

impl std::fmt::Debug for PendingSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSync")
            .field("zxid", &self.zxid)
            .field("token", &self.token)
            .field("has_work", &self.work.is_some())
            .finish()
    }
}

impl PendingSync {
    /// A sync that is already complete: everything up to `zxid` is durable.
    pub fn ready(zxid: u64) -> Self {
        PendingSync {
            zxid,
            token: 0,
            work: None,
        }
    }

    /// A sync that becomes complete once `work` (typically an fsync of cloned file
    /// handles) returns `Ok`. `token` is opaque to callers: the store uses it in
    /// [`LogStore::finish_sync`] to recognise a sync that a truncation made stale.
    pub fn new(
        zxid: u64,
        token: u64,
        work: impl FnOnce() -> Result<(), StorageError> + Send + 'static,
    ) -> Self {
        PendingSync {
            zxid,
            token,
            work: Some(Box::new(work)),
        }
    }

    /// The zxid that becomes durable when this sync completes.
    pub fn zxid(&self) -> u64 {
        self.zxid
    }

    /// The store's token (see [`PendingSync::new`]).
    pub fn token(&self) -> u64 {
        self.token
    }

    /// Runs the slow part (the fsync). Call it once, without holding the store.
    pub fn run(&mut self) -> Result<(), StorageError> {
        match self.work.take() {
            Some(work) => work(),
            None => Ok(()),
        }
    }
}

/// A durable, append-only log of [`LogEntry`] values.
///
/// # To ensure correctness
///
/// Every implementation must keep these rules; the [`crate::conformance`] suite checks
/// them, and every store (including yours) should run it.
///
/// 1. **Strictly increasing, no holes.** `append` accepts a batch only if its zxids are
///    non-zero, strictly increasing, and the first is greater than [`LogStore::last_zxid`]
///    (or than [`LogStore::base_zxid`] when the log is empty); otherwise nothing of the
///    batch is appended. The log holds *every* entry appended with a zxid in
///    `(base_zxid, last_zxid]`: entries are only ever removed from the back
///    (`truncate_after`) or the front (`purge_before`, `reset`), never from the middle.
/// 2. **Durability is reported, never assumed.** `append` only buffers. An entry is
///    durable once `sync` (or `finish_sync`) has returned a zxid at or above it, and
///    [`LogStore::durable_zxid`] never reports an entry that an fsync (or the configured
///    policy) has not covered. A caller (a ZAB follower) must not ACK a proposal before
///    that point: that is ZOOKEEPER-3911.
/// 3. **Writes are serialized.** Methods taking `&mut self` are never run concurrently;
///    for many writers use [`crate::GroupCommitLog`], which also shares one fsync
///    between all of them.
/// 4. **Truncation and purge are durable on return** and never leave a gap: a crash in
///    the middle leaves either the old log or a prefix/suffix of it.
/// 5. **After any fatal error** ([`StorageError::is_fatal`]) the store may refuse all
///    further calls with [`StorageError::Poisoned`]; the owner reopens it and recovery
///    decides what survived. After a failed fsync, unsynced entries are in an unknown
///    state and must not be reported durable.
/// 6. **Reads see appended entries** (durable or not) and never return an entry that
///    fails its checksum: damage is [`StorageError::Corrupt`].
pub trait LogStore: Send {
    /// Appends a batch (buffered; durable only after a sync). See rule 1.
    fn append(&mut self, entries: &[LogEntry]) -> Result<(), StorageError>;

    /// [`LogStore::append`] taking the batch by value: a store that keeps entries in
    /// memory moves them in instead of cloning each payload handle (an atomic
    /// increment and, later, a decrement per entry). Same rules and errors as
    /// `append`; the default calls it.
    fn append_owned(&mut self, entries: Vec<LogEntry>) -> Result<(), StorageError> {
        self.append(&entries)
    }

    /// Makes every appended entry durable and returns the durable zxid
    /// (the last zxid, or the base zxid if the log is empty).
    fn sync(&mut self) -> Result<u64, StorageError> {
        let mut pending = self.start_sync()?;
        let result = pending.run();
        self.finish_sync(pending, result)
    }

    /// First half of a split sync, for group commit: hands buffered bytes to the OS
    /// and returns the fsync to run *without* exclusive access to the store, so that
    /// other appends can proceed meanwhile. The default does the whole sync here.
    fn start_sync(&mut self) -> Result<PendingSync, StorageError> {
        let zxid = self.sync_inline()?;
        Ok(PendingSync::ready(zxid))
    }

    /// Second half of a split sync: records the outcome of [`PendingSync::run`] and
    /// returns the durable zxid. A failed `result` poisons the store (rule 5). Stores
    /// must ignore a stale `pending` (one overtaken by a truncation).
    fn finish_sync(
        &mut self,
        pending: PendingSync,
        result: Result<(), StorageError>,
    ) -> Result<u64, StorageError> {
        let _ = pending;
        result?;
        Ok(self.durable_zxid())
    }

    /// The whole sync in one call, holding `&mut self` throughout. Every store
    /// implements it; stores whose fsync can run unlocked also override
    /// `start_sync`/`finish_sync`. Callers normally use [`LogStore::sync`].
    fn sync_inline(&mut self) -> Result<u64, StorageError>;

    /// Every held entry with a zxid at or below this is durable.
    fn durable_zxid(&self) -> u64;

    /// Entries at or below this zxid are not held (purged, or never appended); every
    /// entry appended above it is. 0 for a log that was never purged.
    fn base_zxid(&self) -> u64;

    /// The first entry held, if any.
    fn first_zxid(&self) -> Option<u64>;

    /// The last entry held, if any.
    fn last_zxid(&self) -> Option<u64>;

    /// Every held entry with `from <= zxid <= to_inclusive`, in order.
    /// [`StorageError::OutOfRange`] if `from <= base_zxid()` and `from <= to_inclusive`
    /// (some requested entries may have been purged).
    fn read_range(&self, from: u64, to_inclusive: u64) -> Result<Vec<LogEntry>, StorageError>;

    /// At most `max_entries` held entries with `zxid >= from`, in order: a long range
    /// (a DIFF, a replay at startup) read in chunks without one giant `Vec`. Same
    /// [`StorageError::OutOfRange`] rule as `read_range`. The default reads the whole
    /// tail and cuts it; stores with an index override it.
    fn read_chunk(&self, from: u64, max_entries: usize) -> Result<Vec<LogEntry>, StorageError> {
        let Some(last) = self.last_zxid() else {
            check_range(from, from, self.base_zxid())?;
            return Ok(Vec::new());
        };
        let mut out = self.read_range(from, last.max(from))?;
        out.truncate(max_entries);
        Ok(out)
    }

    /// Removes every entry with a zxid above `zxid` (ZAB's TRUNC), durably.
    /// [`StorageError::TruncateBelowBase`] if `zxid < base_zxid()`.
    fn truncate_after(&mut self, zxid: u64) -> Result<(), StorageError>;

    /// Allows removal of entries below `zxid` (after a snapshot covers them), durably.
    /// Entries at or above `zxid` are kept; a store may keep some older ones too
    /// (`FileLog` removes whole segments only), but `base_zxid` tells the truth.
    fn purge_before(&mut self, zxid: u64) -> Result<(), StorageError>;

    /// Drops every entry and restarts the log right after `base_zxid`, durably (a
    /// learner installing a snapshot at `base_zxid`).
    fn reset(&mut self, base_zxid: u64) -> Result<(), StorageError>;
}

/// Checks a batch against rule 1 given the current last (or base) zxid.
pub(crate) fn check_batch(
    entries: &[LogEntry],
    mut last: u64,
    max_record_bytes: usize,
) -> Result<(), StorageError> {
    for entry in entries {
        if entry.zxid == 0 {
            return Err(StorageError::ZeroZxid);
        }
        if entry.zxid <= last {
            return Err(StorageError::NotIncreasing {
                zxid: entry.zxid,
                last,
            });
        }
        if entry.payload.len() > max_record_bytes {
            return Err(StorageError::RecordTooLarge {
                len: entry.payload.len(),
                max: max_record_bytes,
            });
        }
        last = entry.zxid;
    }
    Ok(())
}

/// Checks a read range against the base (shared by every store).
pub(crate) fn check_range(from: u64, to: u64, base: u64) -> Result<(), StorageError> {
    if from <= to && from <= base {
        return Err(StorageError::OutOfRange { from, to, base });
    }
    Ok(())
}

/// Checks that the log can continue a snapshot taken at `snapshot_zxid`: every entry
/// after the snapshot must be held, so the log's base must not be above it.
/// Run this at recovery, after opening the newest valid snapshot and the log.
pub fn check_log_continues_snapshot(
    log: &dyn LogStore,
    snapshot_zxid: u64,
    log_name: &std::path::Path,
) -> Result<(), StorageError> {
    let base = log.base_zxid();
    if base > snapshot_zxid {
        return Err(StorageError::Gap {
            file: log_name.to_path_buf(),
            offset: 0,
            required_after: snapshot_zxid,
            held_after: base,
        });
    }
    Ok(())
}

/// A boxed store (for example `Box<dyn LogStore>`) is a store, so it can go into
/// [`crate::GroupCommitLog`], [`crate::FaultyLog`] or [`crate::LogWriter`].
impl<L: LogStore + ?Sized> LogStore for Box<L> {
    fn append(&mut self, entries: &[LogEntry]) -> Result<(), StorageError> {
        (**self).append(entries)
    }
    fn append_owned(&mut self, entries: Vec<LogEntry>) -> Result<(), StorageError> {
        (**self).append_owned(entries)
    }
    fn sync(&mut self) -> Result<u64, StorageError> {
        (**self).sync()
    }
    fn start_sync(&mut self) -> Result<PendingSync, StorageError> {
        (**self).start_sync()
    }
    fn finish_sync(
        &mut self,
        pending: PendingSync,
        result: Result<(), StorageError>,
    ) -> Result<u64, StorageError> {
        (**self).finish_sync(pending, result)
    }
    fn sync_inline(&mut self) -> Result<u64, StorageError> {
        (**self).sync_inline()
    }
    fn durable_zxid(&self) -> u64 {
        (**self).durable_zxid()
    }
    fn base_zxid(&self) -> u64 {
        (**self).base_zxid()
    }
    fn first_zxid(&self) -> Option<u64> {
        (**self).first_zxid()
    }
    fn last_zxid(&self) -> Option<u64> {
        (**self).last_zxid()
    }
    fn read_range(&self, from: u64, to_inclusive: u64) -> Result<Vec<LogEntry>, StorageError> {
        (**self).read_range(from, to_inclusive)
    }
    fn read_chunk(&self, from: u64, max_entries: usize) -> Result<Vec<LogEntry>, StorageError> {
        (**self).read_chunk(from, max_entries)
    }
    fn truncate_after(&mut self, zxid: u64) -> Result<(), StorageError> {
        (**self).truncate_after(zxid)
    }
    fn purge_before(&mut self, zxid: u64) -> Result<(), StorageError> {
        (**self).purge_before(zxid)
    }
    fn reset(&mut self, base_zxid: u64) -> Result<(), StorageError> {
        (**self).reset(base_zxid)
    }
}
