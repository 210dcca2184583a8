//! The session tracker: one type for the leader and the learners.
//!
//! # What lives where
//! - The [`SessionTable`] (replicated): every committed global session and its timeout.
//!   It changes only through [`SessionTracker::apply_create`] and
//!   [`SessionTracker::apply_close`], called with committed txns in zxid order on every
//!   replica.
//! - Entries (per server, not replicated): the sessions this tracker is responsible
//!   for, with their owner (the connection currently holding the session), a closing
//!   flag and a kind (global, local, local-being-upgraded). On the leader: every global
//!   session plus this server's local sessions. On a learner: the sessions connected
//!   through this server.
//! - The [`ExpiryQueue`]: on the leader, every entry; on a learner, only local sessions
//!   (learners never expire global sessions: they report touches to the leader).
//! - The touched set (learners): global sessions seen since the last ping, handed over
//!   by [`SessionTracker::drain_touched`] for the ping reply.
//!
//! # Outputs
//! The tracker never deletes a global session on its own. Expiry and close requests
//! return a [`SessionTxn`] that the caller submits to the write pipeline (the leader
//! proposes it; a learner forwards it); the session leaves the table only when that
//! txn commits and is applied.

mod attach;
#[cfg(test)]
mod tests;
mod types;

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{ConfigError, SessionConfig};
use crate::error::SessionError;
use crate::expiry::ExpiryQueue;
use crate::id::{SessionId, SessionIdGenerator};
use crate::password::{Password, PasswordSecret};
use crate::table::SessionTable;

pub use attach::{Reattach, Reattached};
pub use types::{
    CloseAction, EphemeralCheck, Expired, OpenedSession, Owner, Role, SessionKind, SessionTxn,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryKind {
    Global,
    Local,
    /// A local session whose createSession (upgrade) txn is submitted, not yet applied.
    Upgrading,
}

#[derive(Debug, Clone)]
struct Entry {
    timeout_ms: u32,
    kind: EntryKind,
    owner: Option<Owner>,
    closing: bool,
}

/// Sessions of one server: id generation, negotiation, expiry (leader), touch reports
/// (learners), the replicated table, re-attach and ownership checks.
#[derive(Debug)]
pub struct SessionTracker {
    config: SessionConfig,
    secret: PasswordSecret,
    ids: SessionIdGenerator,
    role: Role,
    table: SessionTable,
    entries: BTreeMap<SessionId, Entry>,
    expiry: ExpiryQueue,
    touched: BTreeSet<SessionId>,
}

impl SessionTracker {
    /// A tracker with an empty table. `start_time_ms` seeds the id generator (see
    /// [`SessionIdGenerator::new`]); `secret` must be the same on every server.
    pub fn new(
        config: SessionConfig,
        secret: PasswordSecret,
        start_time_ms: u64,
        role: Role,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let ids = SessionIdGenerator::new(config.server_id, start_time_ms).map_err(|_| {
            ConfigError::ServerIdTooLarge {
                server_id: config.server_id,
                max: crate::id::MAX_SERVER_ID,
            }
        })?;
        Ok(Self {
            config,
            secret,
            ids,
            role,
            table: SessionTable::new(),
            entries: BTreeMap::new(),
            expiry: ExpiryQueue::new(),
            touched: BTreeSet::new(),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// This server's current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The replicated table of global sessions.
    pub fn table(&self) -> &SessionTable {
        &self.table
    }

    /// Replaces the replicated table, for example after loading or receiving a
    /// snapshot. Entries of global sessions missing from it are dropped; call
    /// [`SessionTracker::become_leader`] or [`SessionTracker::become_learner`] next.
    pub fn install_table(&mut self, table: SessionTable) {
        self.table = table;
        let table = &self.table;
        let gone: Vec<SessionId> = self
            .entries
            .iter()
            .filter(|(id, e)| e.kind == EntryKind::Global && !table.contains(**id))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.forget(id);
        }
    }

    /// The password of session `id`.
    pub fn password_for(&self, id: SessionId) -> Password {
        self.secret.password_for(id)
    }

    /// Number of local sessions (including ones being upgraded) on this server.
    pub fn local_session_count(&self) -> usize {
        self.entries
            .values()
            .filter(|e| e.kind != EntryKind::Global)
            .count()
    }

    /// Whether `id` is known here and not closing.
    pub fn is_live(&self, id: SessionId) -> bool {
        self.entries.get(&id).is_some_and(|e| !e.closing)
    }

    /// Whether `id` is known here and closing.
    pub fn is_closing(&self, id: SessionId) -> bool {
        self.entries.get(&id).is_some_and(|e| e.closing)
    }

    /// The tick at which `id` will expire, if this tracker expires it.
    pub fn expiry_tick(&self, id: SessionId) -> Option<u64> {
        self.expiry.expiry_tick(id)
    }

    /// The earliest tick at which [`SessionTracker::expire_due`] has work, if any.
    pub fn next_expiry_tick(&self) -> Option<u64> {
        self.expiry.next_expiry_tick()
    }

    /// Opens a new session for a client connected on `owner` that asked for
    /// `requested_timeout_ms`. The timeout is negotiated, an unused id generated and
    /// the password derived. A global session also yields the createSession txn to
    /// submit; on the leader it is tracked (and can expire) from now on.
    pub fn open_session(
        &mut self,
        requested_timeout_ms: u32,
        kind: SessionKind,
        owner: Owner,
        now_tick: u64,
    ) -> Result<OpenedSession, SessionError> {
        if kind == SessionKind::Local && !self.config.local_sessions_enabled {
            return Err(SessionError::LocalSessionsDisabled);
        }
        let timeout_ms = self.config.negotiate_timeout_ms(requested_timeout_ms);
        let id = self.unused_id();
        let (entry_kind, submit) = match kind {
            SessionKind::Global => (
                EntryKind::Global,
                Some(SessionTxn::Create { id, timeout_ms }),
            ),
            SessionKind::Local => (EntryKind::Local, None),
        };
        self.entries.insert(
            id,
            Entry {
                timeout_ms,
                kind: entry_kind,
                owner: Some(owner),
                closing: false,
            },
        );
        self.refresh(id, timeout_ms, entry_kind, now_tick);
        Ok(OpenedSession {
            id,
            password: self.secret.password_for(id),
            timeout_ms,
            kind,
            submit,
        })
    }

    /// Leader: starts tracking a session whose createSession txn is being proposed on
    /// behalf of a learner (ZooKeeper tracks it at prep time), owned by `owner`.
    /// Idempotent; the table changes only when the txn is applied.
    pub fn track_create(
        &mut self,
        id: SessionId,
        timeout_ms: u32,
        owner: Owner,
        now_tick: u64,
    ) -> Result<(), SessionError> {
        if self.role != Role::Leader {
            return Err(SessionError::NotLeader);
        }
        let entry = self.entries.entry(id).or_insert(Entry {
            timeout_ms,
            kind: EntryKind::Global,
            owner: Some(owner),
            closing: false,
        });
        if entry.closing {
            return Err(SessionError::SessionExpired(id));
        }
        entry.kind = EntryKind::Global;
        entry.timeout_ms = timeout_ms;
        entry.owner = Some(owner);
        self.expiry
            .update(id, self.config.expiry_tick(now_tick, timeout_ms));
        Ok(())
    }

    /// Records activity of session `id` (any request or ping from its client) during
    /// tick `now_tick`. The leader moves the session to a later expiry bucket; a
    /// learner remembers it for the next ping; local sessions are moved in this
    /// server's own queue. A closing session cannot be touched back to life.
    pub fn touch(&mut self, id: SessionId, now_tick: u64) -> Result<(), SessionError> {
        let entry = self
            .entries
            .get(&id)
            .ok_or(SessionError::UnknownSession(id))?;
        if entry.closing {
            return Err(SessionError::SessionExpired(id));
        }
        let (timeout_ms, kind) = (entry.timeout_ms, entry.kind);
        self.refresh(id, timeout_ms, kind, now_tick);
        Ok(())
    }

    /// Leader: applies the touched sessions a learner reported with its ping. Returns
    /// the ids that were not extended (unknown here, or closing), in input order.
    pub fn handle_touches(
        &mut self,
        ids: impl IntoIterator<Item = SessionId>,
        now_tick: u64,
    ) -> Result<Vec<SessionId>, SessionError> {
        if self.role != Role::Leader {
            return Err(SessionError::NotLeader);
        }
        Ok(ids
            .into_iter()
            .filter(|id| self.touch(*id, now_tick).is_err())
            .collect())
    }

    /// Learner: the global sessions touched since the last call, in id order, for the
    /// ping reply to the leader. Empty on the leader.
    pub fn drain_touched(&mut self) -> Vec<SessionId> {
        std::mem::take(&mut self.touched).into_iter().collect()
    }

    /// Checks that a request of session `id` arriving on `owner` may proceed: the
    /// session is known here, not closing, and `owner` holds it. A session without an
    /// owner yet is claimed by the first connection that uses it (as ZooKeeper does).
    pub fn check_request(&mut self, id: SessionId, owner: Owner) -> Result<(), SessionError> {
        let entry = self
            .entries
            .get_mut(&id)
            .ok_or(SessionError::UnknownSession(id))?;
        if entry.closing {
            return Err(SessionError::SessionExpired(id));
        }
        match entry.owner {
            None => {
                entry.owner = Some(owner);
                Ok(())
            }
            Some(current) if current == owner => Ok(()),
            Some(_) => Err(SessionError::SessionMoved(id)),
        }
    }

    /// Checks a request that creates an ephemeral node. Besides
    /// [`SessionTracker::check_request`], a local session must first be upgraded to a
    /// global one: the answer then carries the createSession txn to submit before the
    /// ephemeral create.
    pub fn check_ephemeral_create(
        &mut self,
        id: SessionId,
        owner: Owner,
    ) -> Result<EphemeralCheck, SessionError> {
        self.check_request(id, owner)?;
        let Some(entry) = self.entries.get_mut(&id) else {
            // check_request just found it; stay total anyway.
            return Err(SessionError::UnknownSession(id));
        };
        match entry.kind {
            EntryKind::Global | EntryKind::Upgrading => Ok(EphemeralCheck::Ready),
            EntryKind::Local => {
                entry.kind = EntryKind::Upgrading;
                Ok(EphemeralCheck::UpgradeFirst(SessionTxn::Create {
                    id,
                    timeout_ms: entry.timeout_ms,
                }))
            }
        }
    }

    /// A client asks to close its session. A global session is marked closing (no
    /// further request is accepted) and the closeSession txn is returned for
    /// submission; a local one is removed at once.
    pub fn request_close(
        &mut self,
        id: SessionId,
        owner: Owner,
    ) -> Result<CloseAction, SessionError> {
        self.check_request(id, owner)?;
        let Some(entry) = self.entries.get_mut(&id) else {
            return Err(SessionError::UnknownSession(id));
        };
        if entry.kind == EntryKind::Local {
            self.forget(id);
            return Ok(CloseAction::ClosedLocally);
        }
        entry.closing = true;
        self.expiry.remove(id);
        Ok(CloseAction::Submit(SessionTxn::Close { id }))
    }

    /// Expires every session whose bucket is due at `now_tick`. Global sessions (only
    /// the leader queues them) are marked closing and returned as closeSession txns to
    /// propose; they stay in the table until that txn is applied. Local sessions are
    /// removed here. Order: by bucket, then by id.
    pub fn expire_due(&mut self, now_tick: u64) -> Vec<Expired> {
        let mut out = Vec::new();
        for id in self.expiry.poll_due(now_tick) {
            let Some(entry) = self.entries.get_mut(&id) else {
                continue;
            };
            match entry.kind {
                EntryKind::Global => {
                    entry.closing = true;
                    out.push(Expired::ProposeClose(SessionTxn::Close { id }));
                }
                EntryKind::Upgrading if self.role == Role::Leader => {
                    // The upgrade txn is in this leader's own pipeline and will be
                    // applied; close through the log so every replica agrees.
                    entry.closing = true;
                    out.push(Expired::ProposeClose(SessionTxn::Close { id }));
                }
                EntryKind::Local | EntryKind::Upgrading => {
                    self.forget(id);
                    out.push(Expired::Local(id));
                }
            }
        }
        out
    }

    /// Applies a committed createSession txn (every replica, zxid order). Idempotent.
    /// Returns true if the session was new to the table.
    ///
    /// The leader tracks the session (with a full timeout from `now_tick` unless it
    /// already tracks it); a local session being upgraded becomes global.
    pub fn apply_create(&mut self, id: SessionId, timeout_ms: u32, now_tick: u64) -> bool {
        let added = self.table.apply_create(id, timeout_ms);
        match self.entries.get_mut(&id) {
            Some(entry) => {
                let was_global = entry.kind == EntryKind::Global;
                entry.kind = EntryKind::Global;
                entry.timeout_ms = timeout_ms;
                let closing = entry.closing;
                match self.role {
                    Role::Learner => {
                        self.expiry.remove(id);
                        if !closing {
                            self.touched.insert(id);
                        }
                    }
                    Role::Leader if !was_global && !closing => {
                        self.expiry
                            .update(id, self.config.expiry_tick(now_tick, timeout_ms));
                    }
                    Role::Leader => {}
                }
            }
            None if self.role == Role::Leader => {
                self.entries.insert(
                    id,
                    Entry {
                        timeout_ms,
                        kind: EntryKind::Global,
                        owner: None,
                        closing: false,
                    },
                );
                self.expiry
                    .update(id, self.config.expiry_tick(now_tick, timeout_ms));
            }
            None => {}
        }
        added
    }

    /// Applies a committed closeSession txn (every replica, zxid order). Idempotent.
    /// Returns true if the session was in the table. The caller deletes the session's
    /// ephemerals in the tree as part of the same txn, *whether or not* the session
    /// was in the table (a close of an orphan, see [`SessionTracker::close_orphans`],
    /// exists only to remove ephemerals).
    pub fn apply_close(&mut self, id: SessionId) -> bool {
        self.forget(id);
        self.table.apply_close(id)
    }

    /// Leader: closeSession txns for sessions that still own ephemerals in the tree
    /// (`ephemeral_owners`, as the tree reports them) but are not in the replicated
    /// table and not tracked here. Such orphans are what ZOOKEEPER-2355-class bugs
    /// leave behind; ZooKeeper deletes them locally when it loads its database, which
    /// fixes only that server. Proposing a close instead cleans every replica the same
    /// way. Call it after [`SessionTracker::become_leader`]; the owners are returned in
    /// input order, each once.
    pub fn close_orphans(
        &self,
        ephemeral_owners: impl IntoIterator<Item = SessionId>,
    ) -> Result<Vec<SessionTxn>, SessionError> {
        if self.role != Role::Leader {
            return Err(SessionError::NotLeader);
        }
        let mut seen = BTreeSet::new();
        Ok(ephemeral_owners
            .into_iter()
            .filter(|id| {
                seen.insert(*id) && !self.table.contains(*id) && !self.entries.contains_key(id)
            })
            .map(|id| SessionTxn::Close { id })
            .collect())
    }

    /// Becomes the leader at `now_tick` (after synchronization, with the table up to
    /// date) and rebuilds expiry: see [`SessionTracker::rebuild_expiry`].
    pub fn become_leader(&mut self, now_tick: u64) {
        self.role = Role::Leader;
        self.touched.clear();
        self.rebuild_expiry_from_table(now_tick);
    }

    /// Leader: rebuilds expiry from the replicated table, giving every global session a
    /// full timeout from `now_tick`, so no session expires early because the previous
    /// leader knew of touches this one did not see. Closing flags are cleared (a close
    /// that was never committed is proposed again if the session stays silent), and
    /// creates that never reached the table are dropped.
    pub fn rebuild_expiry(&mut self, now_tick: u64) -> Result<(), SessionError> {
        if self.role != Role::Leader {
            return Err(SessionError::NotLeader);
        }
        self.rebuild_expiry_from_table(now_tick);
        Ok(())
    }

    fn rebuild_expiry_from_table(&mut self, now_tick: u64) {
        self.expiry.clear();
        self.settle_uncommitted();
        for (id, timeout_ms) in self.table.iter() {
            self.entries.entry(id).or_insert(Entry {
                timeout_ms,
                kind: EntryKind::Global,
                owner: None,
                closing: false,
            });
        }
        for (id, e) in self.entries.iter_mut() {
            e.closing = false;
            self.expiry
                .update(*id, self.config.expiry_tick(now_tick, e.timeout_ms));
        }
    }

    /// Becomes a learner at `now_tick`: stops expiring global sessions and keeps only
    /// the sessions connected through this server (and local ones, which get a full
    /// timeout from now); their next touches go to the new leader with the pings.
    pub fn become_learner(&mut self, now_tick: u64) {
        self.role = Role::Learner;
        self.touched.clear();
        self.expiry.clear();
        self.settle_uncommitted();
        let me = self.config.server_id;
        self.entries.retain(|_, e| {
            e.kind != EntryKind::Global || e.owner.is_some_and(|o| o.server_id == me)
        });
        // Kept global sessions are not reported as touched here: the new leader gives
        // every session a full timeout anyway, and a report now would count as a
        // touch at the next ping and stretch a dead client's session by a tick.
        for (id, e) in self.entries.iter_mut() {
            e.closing = false;
            if e.kind != EntryKind::Global {
                self.expiry
                    .update(*id, self.config.expiry_tick(now_tick, e.timeout_ms));
            }
        }
    }

    /// Generates ids until one is free (ids already in use here are skipped, so a
    /// clock that went backwards across a restart cannot reuse a live id).
    fn unused_id(&mut self) -> SessionId {
        loop {
            let id = self.ids.next_id();
            if !self.table.contains(id) && !self.entries.contains_key(&id) {
                return id;
            }
        }
    }

    /// Moves `id` to a later expiry bucket or records the touch, per role and kind.
    fn refresh(&mut self, id: SessionId, timeout_ms: u32, kind: EntryKind, now_tick: u64) {
        let queue_here = self.role == Role::Leader || kind != EntryKind::Global;
        if queue_here {
            self.expiry
                .update(id, self.config.expiry_tick(now_tick, timeout_ms));
        }
        if self.role == Role::Learner && kind != EntryKind::Local {
            self.touched.insert(id);
        }
    }

    /// Drops every per-server trace of `id` (not the table).
    fn forget(&mut self, id: SessionId) {
        self.entries.remove(&id);
        self.expiry.remove(id);
        self.touched.remove(&id);
    }

    /// After a role change (the table is now in sync): global entries whose
    /// createSession never reached the table are dropped (the txn may be lost, the
    /// client must open a new session); upgrades are settled the same way, becoming
    /// global if their txn was applied and local again otherwise.
    fn settle_uncommitted(&mut self) {
        let table = &self.table;
        self.entries.retain(|id, e| {
            let committed = table.contains(*id);
            match e.kind {
                EntryKind::Global => committed,
                EntryKind::Upgrading => {
                    e.kind = if committed {
                        EntryKind::Global
                    } else {
                        EntryKind::Local
                    };
                    true
                }
                EntryKind::Local => true,
            }
        });
    }
}
