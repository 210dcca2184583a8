//! Client connections: per-connection FIFO of outstanding requests, request intake,
//! and reads served from the applied tree.

use std::collections::VecDeque;

use datatree::{path, Acl, Id, Perms, WatcherKind, WriteOp};

use super::{Server, ServerAction, CONN_PENDING_MAX};
use crate::codec::{Forward, ForwardOp};
use crate::error::Error;
use crate::ops::{
    AddWatchMode, ConnId, QuotaInfo, ReadOp, ReadResult, Request, Response, SessionId, Xid,
};

/// What a write slot waits for, to build its response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WaitKind {
    /// createSession: reply Connected.
    Connect { password: [u8; 16], timeout_ms: u32 },
    /// Re-attach on a learner, waiting for the leader's revalidation.
    Reattach { password: [u8; 16], timeout_ms: u32 },
    /// closeSession.
    Close,
    /// A single tree write.
    Write,
    /// A multi.
    Multi,
    /// sync(path).
    Sync(String),
}

#[derive(Debug)]
pub(crate) enum SlotState {
    /// In the write pipeline.
    Waiting(WaitKind),
    /// A read held behind earlier writes (FIFO), with the connection's ids when it
    /// arrived (a later addAuth does not widen it).
    Read(Request, Vec<Id>),
    /// Answered, waiting for earlier slots.
    Done(Result<Response, Error>),
}

#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) xid: Xid,
    pub(crate) state: SlotState,
    /// The tick the slot was created (for the forwarded-request timeout).
    pub(crate) tick: u64,
}

/// One client connection on this server.
#[derive(Debug, Default)]
pub(crate) struct Conn {
    pub(crate) session: Option<SessionId>,
    pub(crate) slots: VecDeque<Slot>,
    /// The ids this connection authenticated (addAuth). Per connection, as in
    /// ZooKeeper: a re-attach elsewhere starts with none (the client replays them).
    pub(crate) auth: Vec<Id>,
}

/// Counts of one connection, for tests and stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnStats {
    /// Outstanding requests.
    pub outstanding: usize,
}

impl Server {
    /// Pushes a reply now, or records it in the FIFO when earlier slots are pending.
    fn answer(&mut self, conn: ConnId, xid: Xid, result: Result<Response, Error>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            self.out.push(ServerAction::Reply {
                conn,
                xid,
                zxid: self.applied.to_u64() as i64,
                result,
            });
            return;
        };
        if c.slots.is_empty() {
            self.out.push(ServerAction::Reply {
                conn,
                xid,
                zxid: self.applied.to_u64() as i64,
                result,
            });
        } else {
            c.slots.push_back(Slot {
                xid,
                state: SlotState::Done(result),
                tick: self.tick,
            });
        }
    }

    /// Learner: connections whose oldest forwarded request got no answer within
    /// `timeout_ticks` (a lost REQUEST, or a leader that stopped answering) lose their
    /// connection as a ZooKeeper client would: pending requests fail with
    /// ConnectionLoss (outcome unknown) and the client re-attaches.
    pub(super) fn expire_stuck_conns(&mut self, timeout_ticks: u64) {
        let tick = self.tick;
        let mut stuck: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.slots.front().is_some_and(|s| {
                    matches!(s.state, SlotState::Waiting(_))
                        && tick.saturating_sub(s.tick) > timeout_ticks
                })
            })
            .map(|(id, _)| *id)
            .collect();
        stuck.sort_unstable();
        for conn in stuck {
            tracing::warn!(id = %self.id, conn = conn.0, "forwarded request unanswered: dropping the connection");
            self.disconnect(conn);
        }
    }

    /// Drops one connection: pending requests fail with ConnectionLoss, the client
    /// gets Disconnected (and re-attaches its session elsewhere or here).
    pub(super) fn disconnect(&mut self, conn: ConnId) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        let zxid = self.applied.to_u64() as i64;
        for slot in c.slots {
            let result = match slot.state {
                SlotState::Done(r) => r,
                _ => Err(Error::ConnectionLoss),
            };
            self.out.push(ServerAction::Reply {
                conn,
                xid: slot.xid,
                zxid,
                result,
            });
        }
        if let Some(s) = c.session {
            if self.by_session.get(&s) == Some(&conn) {
                self.by_session.remove(&s);
            }
            self.sessions
                .detach(session::SessionId(s.0), self.owner(conn));
        }
        self.out.push(ServerAction::Session {
            conn,
            event: crate::ops::SessionEvent::Disconnected,
        });
    }

    fn wait(&mut self, conn: ConnId, xid: Xid, kind: WaitKind) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.slots.push_back(Slot {
                xid,
                state: SlotState::Waiting(kind),
                tick: self.tick,
            });
        }
    }

    /// Completes the waiting slot `xid` of `conn` and flushes what is ready.
    pub(crate) fn complete(&mut self, conn: ConnId, xid: Xid, result: Result<Response, Error>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if let Some(slot) = c
            .slots
            .iter_mut()
            .find(|s| s.xid == xid && matches!(s.state, SlotState::Waiting(_)))
        {
            slot.state = SlotState::Done(result);
        }
        self.flush(conn);
    }

    /// The wait kind of slot `xid` on `conn`, if it is waiting.
    pub(crate) fn waiting_kind(&self, conn: ConnId, xid: Xid) -> Option<&WaitKind> {
        self.conns
            .get(&conn)?
            .slots
            .iter()
            .find_map(|s| match &s.state {
                SlotState::Waiting(k) if s.xid == xid => Some(k),
                _ => None,
            })
    }

    /// Emits every answered slot at the front, serving held reads as they come up.
    pub(crate) fn flush(&mut self, conn: ConnId) {
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            let ready = matches!(
                c.slots.front(),
                Some(Slot {
                    state: SlotState::Done(_) | SlotState::Read(..),
                    ..
                })
            );
            if !ready {
                return;
            }
            let Some(slot) = c.slots.pop_front() else {
                return;
            };
            let session = c.session;
            let result = match slot.state {
                SlotState::Done(r) => r,
                SlotState::Read(req, auth) => match session {
                    Some(s) => self.read(conn, s, req, &auth),
                    None => Err(Error::SessionExpired),
                },
                SlotState::Waiting(_) => continue,
            };
            self.out.push(ServerAction::Reply {
                conn,
                xid: slot.xid,
                zxid: self.applied.to_u64() as i64,
                result,
            });
        }
    }

    pub(super) fn client_request(&mut self, conn: ConnId, xid: Xid, req: Request) {
        if !self.serving {
            let e = match &self.diverged {
                Some(r) => Error::NotServing(r.clone()),
                None => Error::ConnectionLoss,
            };
            self.out.push(ServerAction::Reply {
                conn,
                xid,
                zxid: self.applied.to_u64() as i64,
                result: Err(e),
            });
            return;
        }
        if req.size_bytes() > self.request_max_bytes {
            let e = datatree::Error::BadArguments(format!(
                "request larger than {} bytes",
                self.request_max_bytes
            ));
            self.answer(conn, xid, Err(e.into()));
            return;
        }
        match req {
            Request::Connect { timeout_ms } => self.connect(conn, xid, timeout_ms),
            Request::Reattach {
                session,
                password,
                last_zxid_seen,
            } => self.reattach(conn, xid, session, password, last_zxid_seen),
            other => {
                let c = self.conns.entry(conn).or_default();
                let Some(session) = c.session else {
                    self.answer(conn, xid, Err(Error::SessionExpired));
                    return;
                };
                if c.slots.len() >= CONN_PENDING_MAX {
                    self.out.push(ServerAction::Reply {
                        conn,
                        xid,
                        zxid: self.applied.to_u64() as i64,
                        result: Err(Error::Throttled("connection queue full")),
                    });
                    return;
                }
                let sid = session::SessionId(session.0);
                let owner = self.owner(conn);
                if let Err(e) = self.sessions.check_request(sid, owner) {
                    self.answer(conn, xid, Err(e.into()));
                    return;
                }
                // No touch per request: every attached session is touched once per
                // tick (`Server::handle_tick`), which covers activity too.
                if let Request::AddAuth { scheme, auth } = other {
                    self.add_auth(conn, xid, &scheme, &auth);
                } else if other.is_write() {
                    self.write(conn, xid, session, other);
                } else if let Some(auth) = self
                    .conns
                    .get(&conn)
                    .filter(|c| c.slots.is_empty())
                    .map(|c| c.auth.clone())
                {
                    let r = self.read(conn, session, other, &auth);
                    self.out.push(ServerAction::Reply {
                        conn,
                        xid,
                        zxid: self.applied.to_u64() as i64,
                        result: r,
                    });
                } else if let Some(c) = self.conns.get_mut(&conn) {
                    let auth = c.auth.clone();
                    c.slots.push_back(Slot {
                        xid,
                        state: SlotState::Read(other, auth),
                        tick: self.tick,
                    });
                }
            }
        }
    }

    /// addAuth: handled here, not replicated. The ids are added at once, so every
    /// later write of the connection carries them; the reply keeps FIFO order.
    /// Unlike ZooKeeper (which closes the connection on a failed addAuth), a failure
    /// only fails this call with AuthFailed; the session and its ids stay.
    fn add_auth(&mut self, conn: ConnId, xid: Xid, scheme: &str, auth: &[u8]) {
        let result = crate::auth::authenticate(scheme, auth, self.super_digest.as_deref());
        let result = match (result, self.conns.get_mut(&conn)) {
            (Ok(ids), Some(c)) => {
                for id in ids {
                    if c.auth.len() >= crate::codec::AUTH_IDS_MAX {
                        break;
                    }
                    if !c.auth.contains(&id) {
                        c.auth.push(id);
                    }
                }
                Ok(Response::Done)
            }
            (Ok(_), None) => Err(Error::SessionExpired),
            (Err(e), _) => Err(e),
        };
        self.answer(conn, xid, result);
    }

    fn connect(&mut self, conn: ConnId, xid: Xid, timeout_ms: u32) {
        if self.conns.get(&conn).is_some_and(|c| c.session.is_some()) {
            let e = datatree::Error::BadArguments("connection already has a session".into());
            self.answer(conn, xid, Err(e.into()));
            return;
        }
        let owner = self.owner(conn);
        let opened = match self.sessions.open_session(
            timeout_ms,
            session::SessionKind::Global,
            owner,
            self.tick,
        ) {
            Ok(o) => o,
            Err(e) => {
                self.answer(conn, xid, Err(e.into()));
                return;
            }
        };
        let session = SessionId(opened.id.0);
        let c = self.conns.entry(conn).or_default();
        c.session = Some(session);
        self.by_session.insert(session, conn);
        self.wait(
            conn,
            xid,
            WaitKind::Connect {
                password: opened.password.0,
                timeout_ms: opened.timeout_ms,
            },
        );
        self.submit(
            conn,
            xid,
            session,
            ForwardOp::CreateSession {
                timeout_ms: opened.timeout_ms,
            },
        );
    }

    fn reattach(
        &mut self,
        conn: ConnId,
        xid: Xid,
        session: SessionId,
        password: [u8; 16],
        last_zxid_seen: i64,
    ) {
        let owner = self.owner(conn);
        let req = session::Reattach {
            id: session::SessionId(session.0),
            password: &password,
            last_zxid_seen: last_zxid_seen.max(0) as u64,
        };
        match self
            .sessions
            .handle_reattach(req, self.applied.to_u64(), owner, self.tick)
        {
            Ok(r) => {
                if let Some(old) = self.by_session.insert(session, conn) {
                    if old != conn {
                        if let Some(c) = self.conns.get_mut(&old) {
                            c.session = None;
                        }
                    }
                }
                self.conns.entry(conn).or_default().session = Some(session);
                if r.revalidate_with_leader {
                    self.wait(
                        conn,
                        xid,
                        WaitKind::Reattach {
                            password,
                            timeout_ms: r.timeout_ms,
                        },
                    );
                    self.submit(conn, xid, session, ForwardOp::Revalidate);
                } else {
                    self.conns.entry(conn).or_default();
                    self.answer(
                        conn,
                        xid,
                        Ok(Response::Connected {
                            session,
                            password,
                            timeout_ms: r.timeout_ms,
                        }),
                    );
                }
            }
            Err(e) => {
                self.conns.entry(conn).or_default();
                self.answer(conn, xid, Err(e.into()));
                self.conns.remove(&conn);
            }
        }
    }

    fn write(&mut self, conn: ConnId, xid: Xid, session: SessionId, req: Request) {
        let (kind, op) = match req.into_write_op() {
            // create, delete, setData, setACL
            Ok(op) => (WaitKind::Write, ForwardOp::Write(op)),
            Err(req) => match req {
                Request::Close => {
                    let owner = self.owner(conn);
                    match self
                        .sessions
                        .request_close(session::SessionId(session.0), owner)
                    {
                        Ok(_) => (WaitKind::Close, ForwardOp::CloseSession),
                        Err(e) => {
                            self.answer(conn, xid, Err(e.into()));
                            return;
                        }
                    }
                }
                Request::Sync { path } => (WaitKind::Sync(path), ForwardOp::Sync),
                Request::Multi(ops) => {
                    let bad = ops.iter().any(|op| {
                        !matches!(
                            op,
                            WriteOp::Create { .. }
                                | WriteOp::Delete { .. }
                                | WriteOp::SetData { .. }
                                | WriteOp::SetAcl { .. }
                                | WriteOp::Check { .. }
                        )
                    });
                    if bad {
                        let e = datatree::Error::BadArguments("op not allowed inside multi".into());
                        self.answer(conn, xid, Err(e.into()));
                        return;
                    }
                    (WaitKind::Multi, ForwardOp::Write(WriteOp::Multi(ops)))
                }
                Request::SetQuota { path, count, bytes } => (
                    WaitKind::Write,
                    ForwardOp::Write(WriteOp::SetQuota {
                        path,
                        quota: datatree::Quota { count, bytes },
                    }),
                ),
                Request::RemoveQuota { path } => (
                    WaitKind::Write,
                    ForwardOp::Write(WriteOp::RemoveQuota { path }),
                ),
                _ => {
                    let e = datatree::Error::BadArguments("not a write".into());
                    self.answer(conn, xid, Err(e.into()));
                    return;
                }
            },
        };
        self.wait(conn, xid, kind);
        self.submit(conn, xid, session, op);
    }

    /// Sends a write into the pipeline: prepared here on the leader, forwarded by a
    /// learner. The slot is already waiting.
    fn submit(&mut self, conn: ConnId, xid: Xid, session: SessionId, op: ForwardOp) {
        let auth = self
            .conns
            .get(&conn)
            .map(|c| c.auth.clone())
            .unwrap_or_default();
        let fwd = Forward {
            conn,
            xid,
            session,
            auth,
            op,
        };
        if self.role == zab_core::Role::Leading {
            self.leader_local(fwd);
            return;
        }
        let span = tracing::trace_span!("forward", id = %self.id, conn = conn.0, xid = xid.0);
        let _g = span.enter();
        let result = match fwd.encode() {
            Ok(bytes) => self
                .core
                .forward_request(bytes)
                .map_err(|_| Error::ConnectionLoss),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            self.complete(conn, xid, Err(e));
        }
    }

    /// Serves a read from the applied tree; registers its watch.
    pub(crate) fn read(
        &mut self,
        conn: ConnId,
        session: SessionId,
        req: Request,
        auth: &[Id],
    ) -> Result<Response, Error> {
        match req {
            Request::Exists { path, watch } => {
                path::validate(&path)?;
                let stat = self.tree.stat(&path);
                if watch {
                    self.watches.add(session, &path, WatcherKind::Exists);
                }
                Ok(Response::Exists(stat))
            }
            Request::GetData { path, watch } => {
                path::validate(&path)?;
                self.check_read_acl(&path, auth)?;
                let (data, stat) = self.tree.data(&path)?;
                if watch {
                    self.watches.add(session, &path, WatcherKind::Data);
                }
                Ok(Response::Data(data, stat))
            }
            Request::GetChildren { path, watch } => {
                path::validate(&path)?;
                self.check_read_acl(&path, auth)?;
                let (children, stat) = self.tree.children(&path)?;
                if watch {
                    self.watches.add(session, &path, WatcherKind::Child);
                }
                Ok(Response::Children(children, stat))
            }
            Request::GetAllChildrenNumber { path } => {
                path::validate(&path)?;
                self.check_read_acl(&path, auth)?;
                Ok(Response::Count(self.tree.all_children_number(&path)?))
            }
            Request::GetEphemerals { prefix } => {
                let mut v: Vec<String> = self
                    .tree
                    .ephemerals(session)
                    .into_iter()
                    .filter(|p| p.starts_with(&prefix))
                    .collect();
                v.sort_unstable();
                Ok(Response::Ephemerals(v))
            }
            Request::GetAcl { path } => {
                path::validate(&path)?;
                let (acl, stat) = self.tree.acl(&path)?;
                // As ZooKeeper's FinalRequestProcessor: READ or ADMIN lets one see
                // the ACL; without ADMIN, digest ids are shown as `user:x`.
                let allowed = |p: Perms| datatree::acl::check(&acl, p, auth);
                if !allowed(Perms::READ) && !allowed(Perms::ADMIN) {
                    return Err(datatree::Error::NoAuth(path).into());
                }
                if allowed(Perms::ADMIN) {
                    Ok(Response::Acl(acl, stat))
                } else {
                    Ok(Response::Acl(redact_digests(acl), stat))
                }
            }
            Request::GetQuota { path } => {
                path::validate(&path)?;
                self.check_read_acl(&path, auth)?;
                let info = self
                    .tree
                    .quota(&path)
                    .map(|(limit, count, bytes)| QuotaInfo {
                        limit,
                        count,
                        bytes,
                    });
                Ok(Response::Quota(info))
            }
            Request::MultiRead(ops) => {
                let results = ops
                    .into_iter()
                    .map(|op| match op {
                        ReadOp::GetData { path } => path::validate(&path)
                            .map_err(Error::from)
                            .and_then(|_| self.check_read_acl(&path, auth))
                            .and_then(|_| self.tree.data(&path).map_err(Error::from))
                            .map(|(d, s)| ReadResult::Data(d, s)),
                        ReadOp::GetChildren { path } => path::validate(&path)
                            .map_err(Error::from)
                            .and_then(|_| self.check_read_acl(&path, auth))
                            .and_then(|_| self.tree.children(&path).map_err(Error::from))
                            .map(|(c, s)| ReadResult::Children(c, s)),
                    })
                    .collect();
                Ok(Response::MultiRead(results))
            }
            Request::AddWatch { path, mode } => {
                path::validate(&path)?;
                let kind = match mode {
                    AddWatchMode::Persistent => WatcherKind::Persistent,
                    AddWatchMode::PersistentRecursive => WatcherKind::PersistentRecursive,
                };
                self.watches.add(session, &path, kind);
                Ok(Response::Done)
            }
            Request::SetWatches {
                relative_zxid,
                watches,
            } => {
                self.set_watches(conn, session, relative_zxid, watches);
                Ok(Response::Done)
            }
            Request::RemoveWatches { path, which } => {
                path::validate(&path)?;
                self.watches
                    .remove(session, &path, which)
                    .map_err(|_| datatree::Error::NoWatcher(path))?;
                Ok(Response::Done)
            }
            _ => Err(datatree::Error::BadArguments("not a read".into()).into()),
        }
    }

    fn set_watches(
        &mut self,
        conn: ConnId,
        session: SessionId,
        rel: i64,
        watches: Vec<(String, WatcherKind)>,
    ) {
        use datatree::EventType as E;
        for (path, kind) in watches {
            if path::validate(&path).is_err() {
                continue;
            }
            let stat = self.tree.stat(&path);
            let fire = match (kind, stat) {
                (WatcherKind::Data, None) | (WatcherKind::Child, None) => Some(E::NodeDeleted),
                (WatcherKind::Data, Some(s)) if s.mzxid > rel => Some(E::NodeDataChanged),
                (WatcherKind::Child, Some(s)) if s.pzxid > rel => Some(E::NodeChildrenChanged),
                (WatcherKind::Exists, Some(_)) => Some(E::NodeCreated),
                _ => None,
            };
            match fire {
                Some(event_type) => self.out.push(ServerAction::Watch {
                    conn,
                    event: datatree::WatchedEvent {
                        event_type,
                        path: path.as_str().into(),
                        zxid: self.applied.to_u64() as i64,
                    },
                }),
                None => {
                    self.watches.add(session, &path, kind);
                }
            }
        }
    }

    fn check_read_acl(&self, p: &str, auth: &[Id]) -> Result<(), Error> {
        match self.tree.check_acl(p, Perms::READ, auth) {
            Ok(true) => Ok(()),
            Ok(false) => Err(datatree::Error::NoAuth(p.to_string()).into()),
            // A missing node is reported by the read itself.
            Err(_) => Ok(()),
        }
    }
}

/// getACL without ADMIN: digest ids lose their hash (`user:x`), as ZooKeeper shows them.
fn redact_digests(acl: Vec<Acl>) -> Vec<Acl> {
    acl.into_iter()
        .map(|mut a| {
            if a.id.scheme == "digest" {
                let user = a.id.id.split(':').next().unwrap_or_default();
                a.id.id = format!("{user}:x");
            }
            a
        })
        .collect()
}
