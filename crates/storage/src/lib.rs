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
