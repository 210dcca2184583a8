//! Errors a session operation can return.

use thiserror::Error;

use crate::id::SessionId;

/// Why the tracker refused a session operation. Every variant is an ordinary outcome
/// of client or peer input, never a bug.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SessionError {
    /// This server knows no such session (never created here, or already gone).
    #[error("unknown session {0}")]
    UnknownSession(SessionId),
    /// The session is closing (expired or asked to close) or no longer exists in the
    /// replicated table.
    #[error("session {0} expired")]
    SessionExpired(SessionId),
    /// The session moved to another connection; requests from this one are refused.
    #[error("session {0} moved to another connection")]
    SessionMoved(SessionId),
    /// The password presented for a re-attach does not match the session id.
    #[error("wrong password for session {0}")]
    BadPassword(SessionId),
    /// This server has applied less than the client has already seen; re-attaching
    /// here would take the client back in time. The client should try another server.
    #[error("server applied zxid {applied_zxid:#x} is older than client's last seen zxid {last_zxid_seen:#x}")]
    StaleServer {
        /// The last zxid this server applied.
        applied_zxid: u64,
        /// The last zxid the client saw.
        last_zxid_seen: u64,
    },
    /// A local session was requested but local sessions are disabled.
    #[error("local sessions are disabled")]
    LocalSessionsDisabled,
    /// A leader-only operation was called on a learner.
    #[error("this operation needs the leader's tracker")]
    NotLeader,
}

impl SessionError {
    /// The ZooKeeper error code a client should see for this error.
    ///
    /// A bad password is reported as SessionExpired (ZooKeeper answers a re-attach with
    /// a wrong password by a zero session, which the client reports as expired); a
    /// stale server as ConnectionLoss (the client moves on to another server).
    pub fn zk_code(&self) -> i32 {
        match self {
            SessionError::UnknownSession(_) => -12,
            SessionError::SessionExpired(_) | SessionError::BadPassword(_) => -112,
            SessionError::SessionMoved(_) => -118,
            SessionError::StaleServer { .. } => -4,
            SessionError::LocalSessionsDisabled => -8,
            SessionError::NotLeader => -1,
        }
    }
}
