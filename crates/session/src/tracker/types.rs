//! The values that go in and out of the tracker: roles, owners, kinds, and the
//! outputs the caller must act upon.

use crate::id::SessionId;
use crate::password::Password;

/// Which part this server plays in the ensemble. Followers and observers are both
/// learners as far as sessions are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Owns expiry of global sessions.
    Leader,
    /// Reports touched sessions to the leader; never expires global sessions.
    Learner,
}

/// The connection currently holding a session: which server, which connection on it.
/// A request arriving with any other owner gets [`SessionError::SessionMoved`](crate::SessionError::SessionMoved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Owner {
    /// The server the client is connected to.
    pub server_id: u64,
    /// The connection on that server (unique per server, chosen by the caller).
    pub connection_id: u64,
}

/// What kind of session a client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// Replicated through a createSession txn; survives moving to another server.
    Global,
    /// Known only to the server it was opened on (no txn, cheap, read-mostly). It is
    /// upgraded to global before its first ephemeral create.
    Local,
}

/// A session txn the caller must submit to the write pipeline: the leader proposes it,
/// a learner forwards it to the leader. It takes effect only once committed and
/// applied with [`SessionTracker::apply_create`](crate::SessionTracker::apply_create) / [`SessionTracker::apply_close`](crate::SessionTracker::apply_close).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionTxn {
    /// createSession: add the session to the replicated table.
    Create {
        /// The new session.
        id: SessionId,
        /// Its negotiated timeout.
        timeout_ms: u32,
    },
    /// closeSession: remove the session and delete its ephemerals everywhere.
    Close {
        /// The session to close.
        id: SessionId,
    },
}

/// The answer to [`SessionTracker::open_session`](crate::SessionTracker::open_session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenedSession {
    /// The new session's id.
    pub id: SessionId,
    /// Its password, to be sent to the client for re-attaching.
    pub password: Password,
    /// The negotiated timeout, to be sent to the client.
    pub timeout_ms: u32,
    /// The kind of session opened.
    pub kind: SessionKind,
    /// For a global session, the createSession txn to submit; `None` for local ones.
    /// The caller replies to the client once this txn has committed.
    pub submit: Option<SessionTxn>,
}

/// What [`SessionTracker::expire_due`](crate::SessionTracker::expire_due) found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Expired {
    /// A global session timed out (leader only): it is now closing, and the caller
    /// must propose this closeSession txn.
    ProposeClose(SessionTxn),
    /// A local session timed out on this server: it is gone already (it owns no
    /// ephemerals); tell its client if still connected.
    Local(SessionId),
}

/// What [`SessionTracker::request_close`](crate::SessionTracker::request_close) decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseAction {
    /// Submit this closeSession txn; reply to the client once it has committed.
    Submit(SessionTxn),
    /// A local session: closed already; reply to the client now.
    ClosedLocally,
}

/// What [`SessionTracker::check_ephemeral_create`](crate::SessionTracker::check_ephemeral_create) decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EphemeralCheck {
    /// The session is global (or its upgrade is already submitted): go ahead.
    Ready,
    /// A local session must be upgraded first: submit this createSession txn, then the
    /// ephemeral create behind it (FIFO order makes the create commit first).
    UpgradeFirst(SessionTxn),
}
