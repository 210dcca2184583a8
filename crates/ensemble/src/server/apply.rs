//! Applying committed envelopes: digest checks, the tree, sessions, watches, replies.

use datatree::{Applied, DataTree, OpResult, Txn};
use zab_core::{Entry, Zxid};

use super::conn::WaitKind;
use super::{Server, ServerAction, DIGEST_WINDOW_MAX};
use crate::codec::{self, Body, Envelope, Header, Split};
use crate::error::Error;
use crate::ops::{ConnId, Response, SessionEvent, SessionId, Xid};

impl Server {
    /// Applies one committed entry (every replica, zxid order).
    pub(super) fn apply_entry(&mut self, entry: Entry) {
        if self.diverged.is_some() {
            return;
        }
        let zxid = entry.zxid;
        let span = tracing::trace_span!("apply", id = %self.id, zxid = %zxid);
        let _g = span.enter();
        while self.proposed.front().is_some_and(|(z, _)| *z < zxid) {
            self.proposed.pop_front();
        }
        let mine = match self.proposed.front() {
            Some((z, _)) if *z == zxid => self.proposed.pop_front().map(|(_, e)| e),
            _ => None,
        };
        // This leader's own proposal: the very envelope it encoded.
        if let Some(env) = mine {
            return self.apply_envelope(zxid, env);
        }
        let undecodable = |e: &dyn std::fmt::Display| format!("undecodable committed txn: {e}");
        match Envelope::decode_split(entry.payload) {
            Ok(Split::Tree(h, txn)) => match codec::decode_set_data(&txn) {
                // The common write, read in place: no owned txn is built for it.
                Ok(Some(sd)) => self.apply_set_data(zxid, h, &sd),
                Ok(None) => match codec::decode_txn_bytes(&txn) {
                    Ok(t) => self.apply_envelope(zxid, h.with_body(Body::Tree(t))),
                    Err(e) => self.diverge(zxid, undecodable(&e)),
                },
                Err(e) => self.diverge(zxid, undecodable(&e)),
            },
            Ok(Split::Other(env)) => self.apply_envelope(zxid, env),
            Err(e) => self.diverge(zxid, undecodable(&e)),
        }
    }

    /// The checks and bookkeeping before any committed entry applies: the leader's
    /// digest check, then this replica's applied zxid. Returns whether one of this
    /// server's clients asked for it, or `None` if the replica diverged.
    fn begin_apply(&mut self, zxid: Zxid, h: &Header) -> Option<bool> {
        if let Some(mine) = self.digest_at(h.check.0) {
            if mine != h.check.1 {
                let reason = format!(
                    "digest mismatch after {:?}: leader {:#x}, here {:#x}",
                    Zxid::from_u64(h.check.0),
                    h.check.1,
                    mine
                );
                self.diverge(zxid, reason);
                return None;
            }
        }
        // Replies (and reads held behind this txn) carry this txn's zxid, as
        // ZooKeeper's reply header does: set it before any slot completes.
        self.applied = zxid;
        Some(h.origin == self.id.0 && h.conn.0 != 0)
    }

    /// Applies a single setData read in place from a committed payload.
    fn apply_set_data(&mut self, zxid: Zxid, h: Header, sd: &datatree::SetDataRef<'_>) {
        let Some(mine) = self.begin_apply(zxid, &h) else {
            return;
        };
        let result = self.apply_tree_with(zxid, sd.zxid, |t, out, changes| {
            t.apply_set_data(sd, out, changes)
        });
        self.tree_applied(mine, h.conn, h.xid, result);
        self.after_apply(zxid);
    }

    /// Completes this server's client's tree request with what applying it gave.
    fn tree_applied(&mut self, mine: bool, conn: ConnId, xid: Xid, result: Result<(), Error>) {
        if mine {
            let result = result.map(|()| self.tree_response(conn, xid));
            self.complete(conn, xid, result);
        }
    }

    /// Applies one committed envelope.
    fn apply_envelope(&mut self, zxid: Zxid, env: Envelope) {
        let Some(mine) = self.begin_apply(zxid, &env.header()) else {
            return;
        };
        let (conn, xid, session) = (env.conn, env.xid, env.session);
        match env.body {
            Body::Tree(txn) => {
                let result = self.apply_tree(&txn, zxid);
                self.tree_applied(mine, conn, xid, result);
            }
            Body::CreateSession { timeout_ms } => {
                self.sessions
                    .apply_create(session::SessionId(session.0), timeout_ms, self.tick);
                if mine {
                    let result = match self.waiting_kind(conn, xid) {
                        Some(WaitKind::Connect { password, .. }) => Ok(Response::Connected {
                            session,
                            password: *password,
                            timeout_ms,
                        }),
                        _ => Ok(Response::Closed),
                    };
                    self.complete(conn, xid, result);
                }
            }
            Body::CloseSession(txn) => {
                let _ = self.apply_tree(&txn, zxid);
                self.sessions.apply_close(session::SessionId(session.0));
                self.watches.remove_session(session);
                self.session_closed(session, mine.then_some((conn, xid)));
            }
            Body::Error(f) => {
                if mine {
                    self.complete(conn, xid, Err(f.into_error()));
                }
            }
            Body::Noop => {
                if mine {
                    let result = match self.waiting_kind(conn, xid) {
                        Some(WaitKind::Sync(p)) => Ok(Response::Synced { path: p.clone() }),
                        Some(WaitKind::Reattach {
                            password,
                            timeout_ms,
                        }) => Ok(Response::Connected {
                            session,
                            password: *password,
                            timeout_ms: *timeout_ms,
                        }),
                        _ => Ok(Response::Done),
                    };
                    self.complete(conn, xid, result);
                }
            }
        }
        self.after_apply(zxid);
    }

    /// Bookkeeping after any committed entry applied: the prep overlay, the digest
    /// window and the snapshot schedule.
    fn after_apply(&mut self, zxid: Zxid) {
        self.applied_txns += 1;
        self.prep.handle_applied(zxid.to_u64() as i64);
        if self.digests.len() >= DIGEST_WINDOW_MAX {
            self.digests.pop_front();
        }
        self.digests.push_back((zxid.to_u64(), self.tree.digest()));
        self.since_snapshot += 1;
        if self.snapshot_every_txns > 0
            && self.since_snapshot >= self.next_snapshot_after
            && self.snap.is_none()
        {
            self.since_snapshot = 0;
            self.snapshots_started += 1;
            self.next_snapshot_after =
                snapshot_after(self.snapshot_every_txns, self.id.0, self.snapshots_started);
            self.begin_snapshot();
        }
    }

    /// Starts an incremental snapshot at the last applied zxid: the session table now,
    /// the tree in steps (see [`Server::handle_tick`]); later applies save the
    /// pre-images the snapshot still needs, so the result is exactly this point.
    fn begin_snapshot(&mut self) {
        let mut buf = codec::encode_state_header(&self.session_table());
        match self.tree.begin_snapshot(&mut buf) {
            Ok(()) => {
                self.snap = Some(super::SnapInProgress {
                    zxid: self.applied,
                    buf,
                })
            }
            Err(e) => tracing::warn!(id = %self.id, error = %e, "could not start a snapshot"),
        }
    }

    /// Writes the next step of a running snapshot; emits it when complete.
    pub(super) fn snapshot_step(&mut self, max_nodes: usize) {
        let Some(mut snap) = self.snap.take() else {
            return;
        };
        let step = self.tree.snapshot_step(max_nodes, &mut snap.buf);
        let zxid = snap.zxid;
        match step {
            Ok(datatree::SnapshotProgress::Continue) => {
                // Hand this step's bytes out now: a snapshot of a big tree never
                // sits in memory whole.
                let data = std::mem::take(&mut snap.buf);
                self.snap = Some(snap);
                self.out.push(ServerAction::SnapshotChunk {
                    zxid,
                    data,
                    last: false,
                });
            }
            Ok(datatree::SnapshotProgress::Done) => {
                self.out.push(ServerAction::SnapshotChunk {
                    zxid,
                    data: snap.buf,
                    last: true,
                });
            }
            Err(_) => {
                tracing::warn!(id = %self.id, "snapshot step failed: snapshot abandoned");
                self.tree.abort_snapshot();
                self.out.push(ServerAction::SnapshotAbort { zxid });
            }
        }
    }

    /// The digest this replica had right after applying `zxid`, if remembered.
    fn digest_at(&self, zxid: u64) -> Option<u64> {
        if zxid == 0 {
            return None;
        }
        // The leader checks against what it applied last when it proposed: nearly
        // always the newest entry here or close to it.
        let &(last, d) = self.digests.back()?;
        if last == zxid {
            return Some(d);
        }
        // Applied zxids are consecutive within an epoch (every committed entry is
        // applied and remembered), so the entry is usually at a computed offset.
        if zxid < last && last >> 32 == zxid >> 32 {
            let back = (last - zxid) as usize;
            if let Some(&(z, d)) = self
                .digests
                .len()
                .checked_sub(back + 1)
                .and_then(|i| self.digests.get(i))
            {
                if z == zxid {
                    return Some(d);
                }
            }
        }
        let i = self.digests.binary_search_by_key(&zxid, |(z, _)| *z).ok()?;
        self.digests.get(i).map(|(_, d)| *d)
    }

    /// Applies a tree txn and fires its watches; the results wait in
    /// `self.applied_scratch` for [`Server::tree_response`]. A txn that does not fit
    /// fails the same way on every replica (the tree is left untouched); divergence is
    /// caught by the digest check.
    fn apply_tree(&mut self, txn: &Txn, zxid: Zxid) -> Result<(), Error> {
        self.apply_tree_with(zxid, txn.zxid, |t, out, changes| {
            t.apply_into(txn, out, changes)
        })
    }

    /// [`Server::apply_tree`] for a txn (zxid `txn_zxid`) that `apply` applies.
    fn apply_tree_with(
        &mut self,
        zxid: Zxid,
        txn_zxid: i64,
        apply: impl FnOnce(&mut DataTree, &mut Applied, bool) -> Result<(), datatree::Error>,
    ) -> Result<(), Error> {
        if txn_zxid != zxid.to_u64() as i64 {
            tracing::warn!(id = %self.id, %zxid, txn_zxid, "txn zxid differs from its log position");
        }
        // Changes are only recorded for the watch registry: none when it is empty.
        let want_changes = !self.watches.is_empty();
        let mut applied = std::mem::take(&mut self.applied_scratch);
        let r = apply(&mut self.tree, &mut applied, want_changes);
        if r.is_ok() && want_changes {
            let mut events = std::mem::take(&mut self.scratch_events);
            events.clear();
            self.watches
                .trigger_into(&applied.changes, txn_zxid, &mut events);
            for (session, event) in events.drain(..) {
                if let Some(conn) = self.by_session.get(&session) {
                    self.out.push(ServerAction::Watch { conn: *conn, event });
                }
            }
            self.scratch_events = events;
        }
        self.applied_scratch = applied;
        r.map_err(|e| {
            tracing::warn!(id = %self.id, %zxid, error = %e, "committed txn failed to apply");
            e.into()
        })
    }

    /// The reply to the txn just applied, from the results `apply_tree` left.
    fn tree_response(&mut self, conn: ConnId, xid: Xid) -> Response {
        if matches!(self.waiting_kind(conn, xid), Some(WaitKind::Multi)) {
            return Response::Multi(std::mem::take(&mut self.applied_scratch.results));
        }
        match self.applied_scratch.results.pop() {
            Some(OpResult::Created { path, stat }) => Response::Created { path, stat },
            Some(OpResult::Deleted) => Response::Deleted,
            Some(OpResult::DataSet { stat }) | Some(OpResult::AclSet { stat }) => {
                Response::Stat(stat)
            }
            _ => Response::Done,
        }
    }

    /// A session ended (closed by its client, or expired): answer the close, or tell
    /// the session's connection here that it expired.
    fn session_closed(&mut self, session: SessionId, closer: Option<(ConnId, Xid)>) {
        let conn = self.by_session.remove(&session);
        match closer {
            Some((c, xid)) => {
                self.complete(c, xid, Ok(Response::Closed));
                self.out.push(ServerAction::Session {
                    conn: c,
                    event: SessionEvent::Closed,
                });
                self.drop_conn(c, Error::SessionExpired);
            }
            None => {
                if let Some(c) = conn {
                    self.out.push(ServerAction::Session {
                        conn: c,
                        event: SessionEvent::Expired,
                    });
                    self.drop_conn(c, Error::SessionExpired);
                }
            }
        }
    }

    fn drop_conn(&mut self, conn: ConnId, err: Error) {
        if let Some(c) = self.conns.remove(&conn) {
            for slot in c.slots {
                let result = match slot.state {
                    super::conn::SlotState::Done(r) => r,
                    _ => Err(err.clone()),
                };
                self.out.push(ServerAction::Reply {
                    conn,
                    xid: slot.xid,
                    zxid: self.applied.to_u64() as i64,
                    result,
                });
            }
        }
    }
}

/// Applied txns after which a server starts its `round`-th snapshot: between `every/2`
/// and `every`, varying with the server id and the round. ZooKeeper draws the same
/// range at random so that the servers of an ensemble do not all snapshot (and purge
/// their logs) at the same moment, when their disk writes would delay every node's
/// log fsync together; here the draw is a hash, so runs replay exactly. (In the 1M
/// znode benchmark one snapshot outlasts the spread, so it changed nothing there.)
pub(crate) fn snapshot_after(every: u64, id: u64, round: u64) -> u64 {
    if every < 2 {
        return every;
    }
    let half = every / 2;
    half + mix64(id ^ round.rotate_left(32)) % (every - half + 1)
}

/// SplitMix64's finalizer: a well-spread hash of a `u64`.
fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod snapshot_after_tests {
    use super::snapshot_after;

    #[test]
    fn stays_in_range_and_differs_between_servers() {
        assert_eq!(snapshot_after(0, 1, 0), 0);
        assert_eq!(snapshot_after(1, 1, 0), 1);
        for every in [2u64, 3, 16, 100_000] {
            for id in 1..20 {
                for round in 0..20 {
                    let t = snapshot_after(every, id, round);
                    assert!(
                        (every / 2..=every).contains(&t),
                        "{every} {id} {round}: {t}"
                    );
                }
            }
        }
        let firsts: std::collections::BTreeSet<u64> =
            (1..=5).map(|id| snapshot_after(100_000, id, 0)).collect();
        assert_eq!(firsts.len(), 5, "{firsts:?}");
        assert_eq!(snapshot_after(100_000, 7, 3), snapshot_after(100_000, 7, 3));
    }
}
