//! `storage`: Ensemble's durable storage.
//!
//! Storage knows nothing of ZAB: a zxid is an opaque, strictly increasing `u64`
//! (0 means "none") and payloads are opaque [`bytes::Bytes`].
//!
//! - [`LogStore`]: the transaction log contract, with [`MemLog`] (memory) and
//!   [`FileLog`] (segment files, CRC32C per record, preallocation, torn-tail recovery).
//! - [`GroupCommitLog`]: any number of threads appending durably, sharing one write
//!   and one fsync per batch; [`LogWriter`]: the Node's log-writer thread (ordered
//!   commands in, "durable up to zxid" events out).
//! - [`EpochStore`]: ZAB's `accepted_epoch` and `current_epoch`, saved atomically.
//! - [`SnapshotStore`]: streamed, CRC-checked snapshots with retention;
//!   [`plan_recovery`] picks the newest valid one and checks the log continues it.
//! - Fault injection for the simulator and recovery tests: [`SimLog`], [`FaultyLog`],
//!   and helpers in [`fault`] that damage real files.
//! - [`conformance`]: the suite every `LogStore` implementation must pass.
//!
//! # A tour
//!
//! ```
//! use storage::{FileLog, FileLogOptions, GroupCommitLog, LogEntry, LogStore};
//!
//! # fn main() -> Result<(), storage::StorageError> {
//! let dir = tempfile::tempdir().map_err(|e| storage::StorageError::Io {
//!     op: "tempdir", path: "/tmp".into(), source: e })?;
//! let mut log = FileLog::open(dir.path(), FileLogOptions::default())?;
//! log.append(&[LogEntry::new(1, "create /a"), LogEntry::new(2, "set /a")])?;
//! assert_eq!(log.durable_zxid(), 0); // appended is not durable...
//! assert_eq!(log.sync()?, 2); // ...until a sync says so.
//!
//! // Many threads: one fsync covers everyone waiting.
//! let shared = GroupCommitLog::new(log);
//! assert_eq!(shared.append_durable(&[LogEntry::new(3, "delete /a")])?, 3);
//! let log = shared.into_inner();
//! drop(log);
//!
//! // Reopening recovers (and would cut a torn final record).
//! let log = FileLog::open(dir.path(), FileLogOptions::default())?;
//! assert_eq!(log.read_range(2, 3)?.len(), 2);
//! # Ok(()) }
//! ```
//!
//! Snapshots, epochs and recovery at startup:
//!
//! ```
//! use std::io::{Read, Write};
//! use storage::{EpochStore, Epochs, LogEntry, LogStore, MemEpochStore, MemLog,
//!               MemSnapshotStore, SnapshotStore};
//!
//! # fn main() -> Result<(), storage::StorageError> {
//! let mut epochs = MemEpochStore::new();
//! // Durable before the ACKEPOCH goes out.
//! epochs.save(Epochs { accepted_epoch: 1, current_epoch: 0 })?;
//!
//! let mut log = MemLog::new();
//! log.append(&[LogEntry::new(1 << 32 | 1, "txn"), LogEntry::new(1 << 32 | 2, "txn")])?;
//! log.sync()?;
//!
//! let snaps = MemSnapshotStore::new();
//! let mut w = snaps.begin(1 << 32 | 1)?; // the tree streams itself in
//! w.write_all(b"serialized tree").map_err(|e| storage::StorageError::Io {
//!     op: "write", path: "snapshot".into(), source: e })?;
//! w.finish()?;
//! log.purge_before(1 << 32 | 1)?; // only after the snapshot is durable
//!
//! let plan = storage::plan_recovery(&log, &snaps, "log".as_ref())?;
//! assert_eq!(plan.snapshot_zxid, 1 << 32 | 1);
//! assert_eq!(plan.replay_to, Some(1 << 32 | 2)); // replay (snapshot, replay_to]
//! let mut tree = Vec::new();
//! plan.snapshot.unwrap().reader.read_to_end(&mut tree).map_err(|e| {
//!     storage::StorageError::Io { op: "read", path: "snapshot".into(), source: e } })?;
//! assert_eq!(tree, b"serialized tree");
//! # Ok(()) }
//! ```
//!
//! Deterministic crashes for the simulator:
//!
//! ```
//! use storage::{LogEntry, LogStore, SimLog};
//!
//! let mut log = SimLog::new(42); // the seed picks what a crash keeps
//! log.append(&[LogEntry::new(1, "a")]).unwrap();
//! log.sync().unwrap();
//! log.append(&[LogEntry::new(2, "b"), LogEntry::new(3, "c")]).unwrap();
//! let report = log.crash().unwrap(); // unsynced entries may be lost
//! assert!(log.last_zxid() >= Some(1)); // synced ones never are
//! assert_eq!(report.kept_unsynced + report.lost, 2);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod conformance;
mod epoch;
mod error;
pub mod fault;
mod file_log;
pub mod frame;
mod fsutil;
mod group;
mod log;
mod mem_log;
mod recovery;
mod snapshot;
mod writer;

pub use epoch::{EpochStore, Epochs, FileEpochStore, MemEpochStore};
pub use error::StorageError;
pub use fault::{FaultyLog, SimLog};
pub use file_log::{
    FileLog, FileLogOptions, FsyncPolicy, RecoveryReport, MAX_PREALLOC_BYTES, MAX_SEGMENT_BYTES,
    MAX_SEGMENT_FILE_BYTES,
};
pub use group::{GroupCommitLog, GroupCommitStats};
pub use log::{check_log_continues_snapshot, LogEntry, LogStore, PendingSync};
pub use mem_log::MemLog;
pub use recovery::{plan_recovery, RecoveryPlan};
pub use snapshot::{
    FileSnapshotStore, MemSnapshotStore, OpenedSnapshot, SkippedSnapshot, SnapshotInfo,
    SnapshotStore, SnapshotWriter,
};
pub use writer::{LogCommand, LogEvent, LogWriter, WRITER_BATCH_COMMANDS_MAX};

/// The largest payload a log record may carry (16 MiB). Lengths read from disk are
/// checked against it before anything is allocated.
pub const MAX_RECORD_BYTES: usize = 16 << 20;
