//! The leader's half of the write path: preparing local and forwarded requests into
//! envelopes and proposing them; session expiry and tree housekeeping; and the
//! learner's touch reports.

use bytes::Bytes;
use datatree::{Id, Perms, PrepContext, PrepError, Txn, WriteOp};
use zab_core::{Phase, ProposeError, Role, ServerId, Zxid};

use super::{Server, DEFERRED_MAX, FORWARD_SEEN_MAX};
use crate::codec::{Body, Envelope, Failure, Forward, ForwardOp};
use crate::error::Error;
use crate::ops::{ConnId, SessionId, Xid};

impl Server {
    /// The zxid the next proposal will get, if the leader is established and its
    /// proposal window has room.
    fn next_zxid(&self) -> Option<Zxid> {
        if self.role != Role::Leading || self.phase != Phase::Broadcast {
            return None;
        }
        // The core refuses past its proposal window (`outstanding_max`); otherwise this
        // is exactly the zxid `propose` will assign.
        match self.core.next_zxid() {
            Ok(z) => Some(z),
            Err(ProposeError::ZxidRollover) => {
                // Go ahead: `propose` sees the exhausted counter, steps down and the
                // next epoch starts the counter again (ZooKeeper's rollover).
                let last = self.core.status().last_zxid;
                Some(Zxid::new(last.epoch, last.counter.saturating_add(1)))
            }
            Err(_) => None,
        }
    }

    /// A request of one of this leader's own clients.
    pub(super) fn leader_local(&mut self, fwd: Forward) {
        let (conn, xid) = (fwd.conn, fwd.xid);
        if self.leader_process(self.id, fwd).is_err() {
            self.complete(conn, xid, Err(Error::Throttled("proposal window full")));
        }
    }

    /// `Action::Request`: a learner forwarded a request.
    pub(super) fn leader_handle_forward(&mut self, origin: ServerId, payload: Bytes) {
        let fwd = match Forward::decode(payload) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(id = %self.id, %origin, error = %e, "dropping undecodable forwarded request");
                return;
            }
        };
        if let ForwardOp::Touches(ids) = &fwd.op {
            let ids: Vec<session::SessionId> =
                ids.iter().map(|s| session::SessionId(s.0)).collect();
            let _ = self.sessions.handle_touches(ids, self.tick);
            return;
        }
        // Exactly once and in order per connection: a transport that duplicates or
        // reorders frames must not commit a request twice or out of issue order. A
        // request not newer than the last one seen from its connection is dropped; the
        // learner's connection then times out (ConnectionLoss) and re-attaches.
        let key = (origin.0, fwd.conn.0);
        match self.forward_seen.get(&key) {
            Some(last) if fwd.xid.0 <= *last => {
                tracing::warn!(id = %self.id, %origin, conn = fwd.conn.0, xid = fwd.xid.0, "dropping a duplicated or reordered forwarded request");
                return;
            }
            _ => {}
        }
        if self.forward_seen.len() >= FORWARD_SEEN_MAX {
            self.forward_seen.clear();
        }
        self.forward_seen.insert(key, fwd.xid.0);
        if !self.deferred.is_empty() {
            self.defer(origin, fwd);
            return;
        }
        if let Err(fwd) = self.leader_process(origin, fwd) {
            self.defer(origin, *fwd);
        }
    }

    fn defer(&mut self, origin: ServerId, fwd: Forward) {
        if self.deferred.len() >= DEFERRED_MAX {
            // The learner's client gets no answer; its operation times out. This only
            // happens when the leader is overloaded far beyond its proposal window.
            tracing::warn!(id = %self.id, %origin, "deferred queue full: dropping a forwarded request");
            return;
        }
        self.deferred.push_back((origin, fwd));
    }

    /// Retries deferred forwarded requests once commits freed proposal slots.
    pub(super) fn leader_retry_deferred(&mut self) {
        while let Some((origin, fwd)) = self.deferred.pop_front() {
            if let Err(fwd) = self.leader_process(origin, fwd) {
                self.deferred.push_front((origin, *fwd));
                return;
            }
        }
    }

    /// Prepares and proposes; `Err` hands the request back when there is no room
    /// (boxed: the rare path).
    fn leader_process(&mut self, origin: ServerId, fwd: Forward) -> Result<(), Box<Forward>> {
        let Some(zxid) = self.next_zxid() else {
            return Err(Box::new(fwd));
        };
        let span = tracing::trace_span!("prep", id = %self.id, zxid = %zxid);
        let _g = span.enter();
        let local = origin == self.id;
        let owner = session::Owner {
            server_id: origin.0,
            connection_id: fwd.conn.0,
        };
        let sid = session::SessionId(fwd.session.0);
        let z = zxid.to_u64() as i64;
        let body = match fwd.op {
            ForwardOp::Write(op) => {
                let checked = if local {
                    Ok(())
                } else {
                    let r = self.sessions.check_request(sid, owner);
                    let _ = self.sessions.touch(sid, self.tick);
                    r
                };
                match checked {
                    Err(e) => Body::Error(Failure::Single(e.into())),
                    Ok(()) => self.prepare_write(fwd.session, &fwd.auth, z, op),
                }
            }
            ForwardOp::CreateSession { timeout_ms } => {
                let tracked = if local {
                    Ok(())
                } else {
                    self.sessions
                        .track_create(sid, timeout_ms, owner, self.tick)
                };
                match tracked {
                    Ok(()) => Body::CreateSession { timeout_ms },
                    Err(e) => Body::Error(Failure::Single(e.into())),
                }
            }
            ForwardOp::CloseSession => {
                let ok = if local {
                    Ok(())
                } else {
                    self.sessions.request_close(sid, owner).map(|_| ())
                };
                match ok {
                    Ok(()) => Body::CloseSession(Txn {
                        zxid: z,
                        time_ms: self.now_ms,
                        op: self.prep.prepare_close_session(&self.tree, fwd.session, z),
                    }),
                    Err(e) => Body::Error(Failure::Single(e.into())),
                }
            }
            ForwardOp::Sync => Body::Noop,
            ForwardOp::Revalidate => match self.sessions.handle_revalidate(sid, owner, self.tick) {
                Ok(_) => Body::Noop,
                Err(e) => Body::Error(Failure::Single(e.into())),
            },
            ForwardOp::Touches(_) => return Ok(()),
        };
        // Failures go through the pipeline too, even for this leader's own clients (as
        // ZooKeeper's error txns do): `Prep` validated against uncommitted proposals,
        // and a deposed leader validates against a stale tree, so a failure is only
        // definite once everything before it committed.
        self.propose_body(origin.0, fwd.conn, fwd.xid, fwd.session, zxid, body);
        Ok(())
    }

    fn prepare_write(&mut self, session: SessionId, auth: &[Id], zxid: i64, op: WriteOp) -> Body {
        // Quotas are admin operations: ADMIN on the node (ZooKeeper guards its
        // /zookeeper/quota nodes by their ACLs instead).
        if let WriteOp::SetQuota { path, .. } | WriteOp::RemoveQuota { path } = &op {
            if let Ok(false) = self.tree.check_acl(path, Perms::ADMIN, auth) {
                return Body::Error(Failure::Single(
                    datatree::Error::NoAuth(path.clone()).into(),
                ));
            }
        }
        let ctx = PrepContext {
            session,
            auth,
            zxid,
        };
        // By value: a setData's path and data move into the txn.
        match self.prep.prepare_owned(&self.tree, &ctx, op) {
            Ok(t) => Body::Tree(Txn {
                zxid,
                time_ms: self.now_ms,
                op: t,
            }),
            Err(PrepError::Op(e)) => Body::Error(Failure::Single(e.into())),
            Err(PrepError::Multi(r)) => Body::Error(Failure::Multi(r)),
        }
    }

    fn propose_body(
        &mut self,
        origin: u64,
        conn: ConnId,
        xid: Xid,
        session: SessionId,
        zxid: Zxid,
        body: Body,
    ) {
        let env = Envelope {
            origin,
            conn,
            xid,
            session,
            check: (self.applied.to_u64(), self.tree.digest()),
            body,
        };
        match self.core.propose(env.encode_in(&mut self.arena)) {
            Ok(z) if z == zxid => {
                if self.proposed.len() < self.outstanding_max {
                    self.proposed.push_back((z, env));
                }
            }
            Ok(z) => {
                // The prediction is exact by construction; if it ever is not, the
                // overlay's zxids are wrong: forget it rather than mis-validate.
                tracing::error!(id = %self.id, predicted = %zxid, got = %z, "zxid prediction mismatch");
                self.prep.reset();
            }
            Err(e) => {
                tracing::warn!(id = %self.id, error = %e, "proposal refused");
                self.prep.reset();
                if origin == self.id.0 && conn.0 != 0 {
                    self.complete(conn, xid, Err(Error::ConnectionLoss));
                }
            }
        }
    }

    /// Proposes closeSession for `session` (expiry or orphan cleanup when `origin` is 0).
    pub(super) fn leader_propose_close(
        &mut self,
        session: SessionId,
        origin: u64,
        conn: ConnId,
        xid: Xid,
    ) {
        let Some(zxid) = self.next_zxid() else {
            // No room now: the session stays closing-less and expires again next tick
            // round (rebuild on failover also re-proposes).
            return;
        };
        let z = zxid.to_u64() as i64;
        let op = self.prep.prepare_close_session(&self.tree, session, z);
        let body = Body::CloseSession(Txn {
            zxid: z,
            time_ms: self.now_ms,
            op,
        });
        self.propose_body(origin, conn, xid, session, zxid, body);
    }

    /// Leader, every tick: expire sessions; every `housekeeping_ticks`: delete empty
    /// containers and expired TTL nodes.
    pub(super) fn leader_housekeeping(&mut self) {
        for expired in self.sessions.expire_due(self.tick) {
            if let session::Expired::ProposeClose(session::SessionTxn::Close { id }) = expired {
                tracing::debug!(id = %self.id, session = %id, "session expired");
                self.leader_propose_close(SessionId(id.0), 0, ConnId(0), Xid(0));
            }
        }
        if self.tick.checked_rem(self.housekeeping_ticks) == Some(0) {
            for path in self.tree.expired_nodes(self.now_ms) {
                let Some(zxid) = self.next_zxid() else {
                    return;
                };
                let op = WriteOp::DeleteExpired {
                    path,
                    now_ms: self.now_ms,
                };
                let z = zxid.to_u64() as i64;
                if let Body::Tree(txn) = self.prepare_write(SessionId(0), &[], z, op) {
                    self.propose_body(0, ConnId(0), Xid(0), SessionId(0), zxid, Body::Tree(txn));
                }
            }
        }
    }

    /// Learner, every tick: report the sessions its clients used to the leader.
    pub(super) fn learner_report_touches(&mut self) {
        let touched = self.sessions.drain_touched();
        if touched.is_empty() {
            return;
        }
        let fwd = Forward {
            conn: ConnId(0),
            xid: Xid(0),
            session: SessionId(0),
            auth: Vec::new(),
            op: ForwardOp::Touches(touched.into_iter().map(|s| SessionId(s.0)).collect()),
        };
        if let Ok(bytes) = fwd.encode() {
            let _ = self.core.forward_request(bytes);
        }
    }
}
