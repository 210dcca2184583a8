//! Re-attaching a session from another connection or server, and detaching it.
//!
//! A client that lost its connection reconnects (to the same or another server) with
//! its session id, password and the last zxid it saw. The server checks, in order:
//! 1. it has applied at least that zxid (no going back in time), else
//!    [`SessionError::StaleServer`] and the client tries another server;
//! 2. the password matches the id (any server can check: see [`crate::password`]);
//! 3. the session exists and is not closing.
//!
//! Then the new connection becomes the session's owner. On a learner the leader must
//! also learn about the move ([`SessionTracker::handle_revalidate`]), so that requests
//! still arriving over the old connection get [`SessionError::SessionMoved`] there.

use super::{Entry, EntryKind, Owner, Role, SessionTracker};
use crate::error::SessionError;
use crate::id::SessionId;

/// A client's request to re-attach to an existing session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reattach<'a> {
    /// The session to re-attach to.
    pub id: SessionId,
    /// The password the client was given with the session.
    pub password: &'a [u8],
    /// The last zxid the client has seen (from replies and watch events).
    pub last_zxid_seen: u64,
}

/// A successful re-attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reattached {
    /// The session's timeout, to be sent back to the client.
    pub timeout_ms: u32,
    /// True on a learner for a global session: the caller must ask the leader to
    /// revalidate the session for the new owner ([`SessionTracker::handle_revalidate`]
    /// there) before replying, and call [`SessionTracker::detach`] here if the leader
    /// refuses.
    pub revalidate_with_leader: bool,
}

impl SessionTracker {
    /// Handles a re-attach of `req` arriving on connection `owner` of a server that has
    /// applied everything up to `applied_zxid`.
    pub fn handle_reattach(
        &mut self,
        req: Reattach<'_>,
        applied_zxid: u64,
        owner: Owner,
        now_tick: u64,
    ) -> Result<Reattached, SessionError> {
        let id = req.id;
        if applied_zxid < req.last_zxid_seen {
            return Err(SessionError::StaleServer {
                applied_zxid,
                last_zxid_seen: req.last_zxid_seen,
            });
        }
        if !self.secret.verify(id, req.password) {
            return Err(SessionError::BadPassword(id));
        }
        let kind = match self.entries.get_mut(&id) {
            Some(entry) if entry.closing => return Err(SessionError::SessionExpired(id)),
            Some(entry) => {
                entry.owner = Some(owner);
                entry.kind
            }
            None => {
                let Some(timeout_ms) = self.table.timeout_ms(id) else {
                    return Err(SessionError::SessionExpired(id));
                };
                self.entries.insert(
                    id,
                    Entry {
                        timeout_ms,
                        kind: EntryKind::Global,
                        owner: Some(owner),
                        closing: false,
                    },
                );
                EntryKind::Global
            }
        };
        let timeout_ms = self.entries.get(&id).map_or(0, |e| e.timeout_ms);
        self.refresh(id, timeout_ms, kind, now_tick);
        Ok(Reattached {
            timeout_ms,
            revalidate_with_leader: self.role == Role::Learner && kind != EntryKind::Local,
        })
    }

    /// Leader: a learner re-attached session `id` for `owner`; records the new owner
    /// (so the old connection's requests get SessionMoved) and touches the session.
    /// Returns the session's timeout, or SessionExpired if it is gone or closing.
    pub fn handle_revalidate(
        &mut self,
        id: SessionId,
        owner: Owner,
        now_tick: u64,
    ) -> Result<u32, SessionError> {
        if self.role != Role::Leader {
            return Err(SessionError::NotLeader);
        }
        let entry = self
            .entries
            .get_mut(&id)
            .ok_or(SessionError::SessionExpired(id))?;
        if entry.closing {
            return Err(SessionError::SessionExpired(id));
        }
        entry.owner = Some(owner);
        let (timeout_ms, kind) = (entry.timeout_ms, entry.kind);
        self.refresh(id, timeout_ms, kind, now_tick);
        Ok(timeout_ms)
    }

    /// Connection `owner` of session `id` went away (closed, or the leader refused a
    /// revalidation). Nothing happens unless `owner` holds the session. A learner
    /// stops tracking a global session (it is the leader's to expire); a local session
    /// stays until it expires or is re-attached; the leader keeps its entry so the
    /// session can still expire. Returns true if `owner` held the session.
    pub fn detach(&mut self, id: SessionId, owner: Owner) -> bool {
        let Some(entry) = self.entries.get_mut(&id) else {
            return false;
        };
        if entry.owner != Some(owner) {
            return false;
        }
        match (self.role, entry.kind) {
            (Role::Learner, EntryKind::Global) => self.forget(id),
            (_, EntryKind::Local | EntryKind::Upgrading) => entry.owner = None,
            (Role::Leader, EntryKind::Global) => {}
        }
        true
    }
}
