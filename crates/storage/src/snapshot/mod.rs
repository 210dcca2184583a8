//! Snapshots: the [`SnapshotStore`] trait, a file store and a memory store.
//!
//! A snapshot is opaque bytes for a zxid (the datatree serializes itself), streamed in
//! through a [`SnapshotWriter`] and out through a reader, so a tree of a million znodes
//! never has to pass through one giant buffer. Every snapshot is wrapped in a
//! CRC32C-checked envelope (header with the zxid, trailer with the body length and
//! CRC); an incomplete or damaged snapshot is never opened.

mod envelope;
mod file;
mod mem;

use std::io::{Read, Write};

pub use file::FileSnapshotStore;
pub use mem::MemSnapshotStore;

use crate::StorageError;

/// A complete snapshot in a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The zxid the snapshot covers: every txn up to it is in it.
    pub zxid: u64,
    /// Body size in bytes (without the envelope).
    pub size_bytes: u64,
}

/// A snapshot that [`SnapshotStore::open_newest_valid`] skipped, and why.
#[derive(Debug)]
pub struct SkippedSnapshot {
    /// The snapshot's zxid (from its name).
    pub zxid: u64,
    /// What was wrong with it.
    pub error: StorageError,
}

/// The newest valid snapshot, ready to stream.
pub struct OpenedSnapshot {
    /// Which snapshot.
    pub info: SnapshotInfo,
    /// The body. It re-checks the CRC as it reads and fails with
    /// `io::ErrorKind::InvalidData` if the bytes changed since they were verified.
    pub reader: Box<dyn Read + Send>,
    /// Newer snapshots that were invalid and skipped (report them loudly).
    pub skipped: Vec<SkippedSnapshot>,
}

impl std::fmt::Debug for OpenedSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedSnapshot")
            .field("info", &self.info)
            .field("skipped", &self.skipped)
            .finish_non_exhaustive()
    }
}

/// Streams one snapshot into a store. Dropping it without [`SnapshotWriter::finish`]
/// abandons the snapshot (nothing becomes visible).
pub trait SnapshotWriter: Write + Send {
    /// Seals the envelope and makes the snapshot durable and visible atomically.
    fn finish(self: Box<Self>) -> Result<SnapshotInfo, StorageError>;
}

/// Durable snapshots.
///
/// # To ensure correctness
/// - A snapshot becomes visible only through `finish`, completely and durably (file
///   store: temp file, fsync, rename, fsync directory). A crash before that leaves no
///   trace that `list` or `open_newest_valid` would show.
/// - `open_newest_valid` verifies the whole envelope before returning it, skips (and
///   reports) invalid ones, and never returns a snapshot that fails its CRC.
/// - The caller must not purge log entries after the snapshot's zxid, and must only
///   purge entries up to it after `finish` returned.
/// - `retain_newest(n)` never removes the newest *valid* snapshot.
/// - Methods take `&self`: a snapshot may be written on a background thread while the
///   owner lists or opens others.
pub trait SnapshotStore: Send + Sync {
    /// Starts a snapshot covering every txn up to `zxid`.
    fn begin(&self, zxid: u64) -> Result<Box<dyn SnapshotWriter>, StorageError>;
    /// Every complete snapshot present, newest first (validity is checked on open).
    fn list(&self) -> Result<Vec<SnapshotInfo>, StorageError>;
    /// The newest snapshot whose envelope checks out, or `None` if there is none.
    fn open_newest_valid(&self) -> Result<Option<OpenedSnapshot>, StorageError>;
    /// Removes all but the newest `n` snapshots (at least one valid one is kept);
    /// returns the zxids removed.
    fn retain_newest(&self, n: usize) -> Result<Vec<u64>, StorageError>;
}

/// Picks which zxids `retain_newest(n)` removes: all but the newest `n`, except that
/// the newest valid one (found by `is_valid`, scanning newest first) is always kept.
pub(crate) fn zxids_to_remove(
    newest_first: &[u64],
    n: usize,
    mut is_valid: impl FnMut(u64) -> bool,
) -> Vec<u64> {
    let keep_valid = newest_first.iter().copied().find(|z| is_valid(*z));
    newest_first
        .iter()
        .copied()
        .skip(n)
        .filter(|z| Some(*z) != keep_valid)
        .collect()
}

#[cfg(test)]
mod tests;
