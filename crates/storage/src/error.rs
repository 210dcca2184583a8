//! The storage error type.

use std::path::PathBuf;

/// Everything that can go wrong in a store.
///
/// The variants split into three groups, and callers should treat them differently:
///
/// - **Caller errors** ([`StorageError::NotIncreasing`], [`StorageError::ZeroZxid`],
///   [`StorageError::RecordTooLarge`], [`StorageError::OutOfRange`],
///   [`StorageError::TruncateBelowBase`], [`StorageError::EpochRegression`]): the request
///   broke the contract; nothing was changed.
/// - **Damaged data** ([`StorageError::Corrupt`], [`StorageError::Gap`]): what is on disk
///   cannot be trusted. Never skipped silently; a learner may drop its log and take a
///   snapshot from the leader instead.
/// - **Dead store** ([`StorageError::Io`], [`StorageError::Poisoned`],
///   [`StorageError::Injected`]): the store must be dropped and reopened (recovery
///   decides what survived). After a failed fsync nothing unsynced may be assumed durable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An operating-system I/O call failed.
    #[error("I/O error during {op} on {}: {source}", path.display())]
    Io {
        /// What the store was doing (for example `"fsync"`).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A record, header or envelope failed its checks (CRC, magic, length, order).
    #[error("corrupt data in {} at offset {offset}: {reason}", file.display())]
    Corrupt {
        /// The damaged file (`<memory>` for in-memory stores).
        file: PathBuf,
        /// Byte offset of the damaged record or header.
        offset: u64,
        /// What check failed.
        reason: String,
    },
    /// Entries that must be present are missing: a segment file is missing between two
    /// others, or the log starts after the snapshot it must continue.
    #[error(
        "gap in log at {} offset {offset}: entries after zxid {required_after:#x} are \
         required but the log only holds entries after {held_after:#x}",
        file.display()
    )]
    Gap {
        /// The file where the gap was found (the first file after the gap).
        file: PathBuf,
        /// Byte offset in that file (0: its header).
        offset: u64,
        /// Every entry after this zxid must be present.
        required_after: u64,
        /// The log only holds entries after this zxid.
        held_after: u64,
    },
    /// An appended zxid was not greater than the last one held.
    #[error("zxid {zxid:#x} is not greater than the last zxid {last:#x}")]
    NotIncreasing {
        /// The rejected zxid.
        zxid: u64,
        /// The last zxid held (or the base zxid of an empty log).
        last: u64,
    },
    /// Zxid 0 means "none" and cannot be stored.
    #[error("zxid 0 cannot be stored")]
    ZeroZxid,
    /// A payload exceeds [`crate::MAX_RECORD_BYTES`].
    #[error("record of {len} bytes exceeds the maximum of {max} bytes")]
    RecordTooLarge {
        /// Payload length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A read asked for entries the log no longer (or never) held.
    #[error("range {from:#x}..={to:#x} reaches below the log's base zxid {base:#x}")]
    OutOfRange {
        /// First requested zxid.
        from: u64,
        /// Last requested zxid.
        to: u64,
        /// Entries at or below this zxid are not held.
        base: u64,
    },
    /// `truncate_after` was asked to keep less than the log holds at its front.
    #[error("cannot truncate after {zxid:#x}: entries up to {base:#x} were purged")]
    TruncateBelowBase {
        /// The requested zxid.
        zxid: u64,
        /// The log's base zxid.
        base: u64,
    },
    /// An entry that a caller waited on was (or may have been) removed by a truncation
    /// before it became durable.
    #[error("entry {zxid:#x} was truncated before it became durable")]
    Truncated {
        /// The zxid waited on.
        zxid: u64,
    },
    /// Store options out of range.
    #[error("invalid options: {reason}")]
    InvalidOptions {
        /// Which rule was broken.
        reason: &'static str,
    },
    /// Protocol epochs may not go backwards.
    #[error("epoch regression: {what} {new} < {old}")]
    EpochRegression {
        /// Which epoch.
        what: &'static str,
        /// The stored value.
        old: u32,
        /// The rejected value.
        new: u32,
    },
    /// An earlier fsync or write failed; the store must be reopened.
    #[error("store is poisoned by an earlier failure; reopen it")]
    Poisoned,
    /// A fault injected by a test wrapper.
    #[error("injected fault: {what}")]
    Injected {
        /// Which operation was made to fail.
        what: &'static str,
    },
}

impl StorageError {
    /// Builds an [`StorageError::Io`].
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StorageError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Builds a [`StorageError::Corrupt`].
    pub(crate) fn corrupt(
        file: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Self {
        StorageError::Corrupt {
            file: file.into(),
            offset,
            reason: reason.into(),
        }
    }

    /// True for errors after which the store must be dropped and reopened.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            StorageError::Io { .. } | StorageError::Poisoned | StorageError::Injected { .. }
        )
    }

    /// True when data on disk (or in a simulated store) is damaged.
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            StorageError::Corrupt { .. } | StorageError::Gap { .. }
        )
    }
}

/// The file name used for in-memory stores in error messages.
pub(crate) const MEMORY_FILE: &str = "<memory>";
