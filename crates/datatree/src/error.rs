//! Errors, with ZooKeeper's numeric codes.

use thiserror::Error;

/// An operation's failure, mirroring ZooKeeper's `KeeperException` codes.
///
/// Every variant maps to the code a ZooKeeper client would see ([`Error::code`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Error)]
#[non_exhaustive]
pub enum Error {
    /// -1: a server-side invariant failed (for example divergent replicas).
    #[error("system error: {0}")]
    SystemError(String),
    /// -2: reported for the multi ops after the one that failed.
    #[error("runtime inconsistency (an earlier op of the multi failed)")]
    RuntimeInconsistency,
    /// -5: a request could not be decoded (for example an op type a multi cannot carry).
    #[error("marshalling error: {0}")]
    MarshallingError(String),
    /// -6: the operation is not implemented or not enabled.
    #[error("unimplemented: {0}")]
    Unimplemented(String),
    /// -8: invalid arguments, such as a malformed path or TTL.
    #[error("bad arguments: {0}")]
    BadArguments(String),
    /// -101: the node does not exist.
    #[error("no node: {0}")]
    NoNode(String),
    /// -102: not authorised.
    #[error("not authorised: {0}")]
    NoAuth(String),
    /// -103: the expected version did not match.
    #[error("bad version: {0}")]
    BadVersion(String),
    /// -108: ephemeral nodes cannot have children.
    #[error("ephemeral nodes cannot have children: {0}")]
    NoChildrenForEphemerals(String),
    /// -110: the node already exists.
    #[error("node exists: {0}")]
    NodeExists(String),
    /// -111: the node has children.
    #[error("node not empty: {0}")]
    NotEmpty(String),
    /// -114: the ACL is invalid.
    #[error("invalid ACL: {0}")]
    InvalidAcl(String),
    /// -121: removeWatches found no matching watch.
    #[error("no watcher: {0}")]
    NoWatcher(String),
    /// -125: a quota would be exceeded.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
}

impl Error {
    /// ZooKeeper's numeric error code for this error.
    pub fn code(&self) -> i32 {
        match self {
            Error::SystemError(_) => -1,
            Error::RuntimeInconsistency => -2,
            Error::MarshallingError(_) => -5,
            Error::Unimplemented(_) => -6,
            Error::BadArguments(_) => -8,
            Error::NoNode(_) => -101,
            Error::NoAuth(_) => -102,
            Error::BadVersion(_) => -103,
            Error::NoChildrenForEphemerals(_) => -108,
            Error::NodeExists(_) => -110,
            Error::NotEmpty(_) => -111,
            Error::InvalidAcl(_) => -114,
            Error::NoWatcher(_) => -121,
            Error::QuotaExceeded(_) => -125,
        }
    }
}

/// Encoded input (a tree snapshot or a txn) that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the declared content did.
    #[error("encoded input truncated at byte {offset}")]
    Truncated {
        /// Byte offset at which more input was expected.
        offset: u64,
    },
    /// The content does not match its checksum or is structurally invalid.
    #[error("encoded input corrupt at byte {offset}: {reason}")]
    Corrupt {
        /// Byte offset of the offending field.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// An I/O error from the underlying reader or writer.
    #[error("I/O error while encoding or decoding: {0}")]
    Io(String),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn codes_match_zookeeper() {
        let table: &[(Error, i32)] = &[
            (Error::SystemError(String::new()), -1),
            (Error::RuntimeInconsistency, -2),
            (Error::MarshallingError(String::new()), -5),
            (Error::Unimplemented(String::new()), -6),
            (Error::BadArguments(String::new()), -8),
            (Error::NoNode(String::new()), -101),
            (Error::NoAuth(String::new()), -102),
            (Error::BadVersion(String::new()), -103),
            (Error::NoChildrenForEphemerals(String::new()), -108),
            (Error::NodeExists(String::new()), -110),
            (Error::NotEmpty(String::new()), -111),
            (Error::InvalidAcl(String::new()), -114),
            (Error::NoWatcher(String::new()), -121),
            (Error::QuotaExceeded(String::new()), -125),
        ];
        for (e, code) in table {
            assert_eq!(e.code(), *code, "{e:?}");
        }
    }
}
