//! [`Server`]: the deterministic composition of ZAB ([`zab_core::Core`]), the tree
//! ([`datatree::DataTree`], [`datatree::Prep`], [`datatree::WatchRegistry`]) and the
//! sessions ([`session::SessionTracker`]).
//!
//! No threads, clocks or I/O: inputs are method calls (`handle_*`), outputs are
//! [`ServerAction`]s taken with [`Server::drain_actions`] and executed in order by the
//! shell (the [`Node`](crate::Node), or a simulator). Time enters as the `now_ms`
//! passed to [`Server::handle_tick`].
//!
//! Write path: the server holding the client's connection either prepares the request
//! (leader) or forwards it (learner, [`zab_core::Core::forward_request`]); the leader
//! prepares against the tree plus the outstanding changes ([`datatree::Prep`]) and
//! proposes an [`Envelope`](crate::codec::Envelope); every replica applies committed
//! envelopes in zxid order, fires watches, then replies to its own clients.

mod apply;
mod conn;
mod leader;
mod sync_snap;
mod types;

pub use sync_snap::{SYNC_CHUNK_BYTES, SYNC_STEP_NODES};

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use datatree::digest::FastHash;
use datatree::{DataTree, Prep, WatchRegistry, WatchedEvent};
use session::SessionTracker;
use zab_core::{Action, Core, Message, Persisted, Phase, Role, ServerId, Zxid};

use crate::codec::{self, Forward};
use crate::ops::{ConnId, Request, SessionId, Xid};

pub use conn::ConnStats;
pub use types::{
    read_log, ReadLogOp, ServerAction, ServerConfig, ServerStats, StateCopy, StorageDone, StorageOp,
};

/// Largest client request accepted by default (ZooKeeper's `jute.maxbuffer`, 1 MiB - 1).
pub const REQUEST_MAX_BYTES_DEFAULT: usize = (1 << 20) - 1;
/// Requests a learner may have forwarded to the leader and deferred there (when the
/// leader's proposal window is full) before further ones fail with Throttled.
pub const DEFERRED_MAX: usize = 100_000;
/// Applied zxids whose digest a replica remembers to check the leader's claims.
pub const DIGEST_WINDOW_MAX: usize = 4096;
/// Connections whose last forwarded xid the leader remembers (duplicate / reorder
/// guard); the table is cleared when full and on every leadership change.
pub const FORWARD_SEEN_MAX: usize = 1 << 20;
/// Znodes written per step by a running incremental snapshot (about 1 µs each): one
/// step per tick, plus [`Server::handle_snapshot_step`] calls between ticks. Small
/// steps keep the pause a step puts on the core thread (and on every write waiting
/// for it) to about a millisecond.
pub const SNAPSHOT_STEP_NODES: usize = 1_024;
/// Outstanding requests per connection before further ones fail with Throttled.
pub const CONN_PENDING_MAX: usize = 100_000;

struct SnapInProgress {
    zxid: Zxid,
    buf: Vec<u8>,
}

/// The deterministic server. See the module docs.
pub struct Server {
    id: ServerId,
    core: Core,
    tree: DataTree,
    prep: Prep,
    watches: WatchRegistry,
    sessions: SessionTracker,
    request_max_bytes: usize,
    super_digest: Option<String>,
    snapshot_every_txns: u64,
    sync_step_nodes: usize,
    housekeeping_ticks: u64,
    outstanding_max: usize,
    forward_timeout_ticks: u64,
    tick: u64,
    now_ms: i64,
    role: Role,
    phase: Phase,
    serving: bool,
    diverged: Option<String>,
    applied: Zxid,
    applied_txns: u64,
    snapshots_installed: u64,
    log_entries_read: u64,
    since_snapshot: u64,
    /// `since_snapshot` at which the next snapshot starts (see `apply::snapshot_after`).
    next_snapshot_after: u64,
    /// Snapshots this server has started.
    snapshots_started: u64,
    digests: VecDeque<(u64, u64)>,
    snap: Option<SnapInProgress>,
    /// Leader: SNAPs being written for learners, and what waits behind them.
    syncs: sync_snap::SyncSnaps,
    /// Leader: the envelopes it proposed and has not applied yet, in zxid order, so
    /// that applying its own proposals needs no decoding.
    proposed: VecDeque<(Zxid, crate::codec::Envelope)>,
    /// Leader: the buffer proposals are encoded into and split off
    /// ([`crate::codec::Envelope::encode_in`]).
    arena: crate::codec::EncodeArena,
    conns: HashMap<ConnId, conn::Conn, FastHash>,
    by_session: HashMap<SessionId, ConnId, FastHash>,
    deferred: VecDeque<(ServerId, Forward)>,
    forward_seen: HashMap<(u64, u64), u64, FastHash>,
    out: Vec<ServerAction>,
    scratch_actions: Vec<Action>,
    scratch_events: Vec<(SessionId, WatchedEvent)>,
    /// Reused result and change buffers of `DataTree::apply_into` and
    /// `DataTree::apply_set_data`.
    applied_scratch: datatree::Applied,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("phase", &self.phase)
            .field("applied", &self.applied)
            .finish_non_exhaustive()
    }
}

/// Why a server could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The ZAB configuration is invalid.
    #[error("zab config: {0}")]
    Zab(#[from] zab_core::ConfigError),
    /// The session configuration is invalid.
    #[error("session config: {0}")]
    Session(#[from] session::ConfigError),
    /// The restored state could not be decoded.
    #[error("state: {0}")]
    State(#[from] codec::CodecError),
}

impl Server {
    /// Builds a server from its configuration, the persisted ZAB state and the state
    /// machine snapshot at `persisted.snapshot_zxid` (`None`: an empty tree, which
    /// requires `snapshot_zxid` to be zero).
    pub fn new(
        cfg: ServerConfig,
        persisted: Persisted,
        state: Option<&[u8]>,
    ) -> Result<Server, ServerError> {
        let id = cfg.zab.id;
        let outstanding_max = cfg.zab.outstanding_max;
        // Long enough for a loaded leader; a learner that lost its leader notices
        // sooner (sync limit) and disconnects everyone anyway.
        let forward_timeout_ticks = (cfg.zab.sync_limit_ticks + cfg.zab.init_limit_ticks) * 2;
        let snapshot_zxid = persisted.snapshot_zxid;
        let core = Core::new(cfg.zab, persisted)?;
        let mut sessions = SessionTracker::new(
            cfg.session,
            cfg.secret,
            cfg.start_time_ms,
            session::Role::Learner,
        )?;
        let tree = match state {
            Some(bytes) => {
                let (table, tree) = codec::decode_state(bytes)?;
                sessions.install_table(table_of(&table));
                tree
            }
            None => DataTree::new(),
        };
        let mut digests = VecDeque::new();
        digests.push_back((snapshot_zxid.to_u64(), tree.digest()));
        let mut server = Server {
            id,
            core,
            tree,
            prep: Prep::new(datatree::PrepConfig {
                max_request_bytes: cfg.request_max_bytes,
                ..datatree::PrepConfig::default()
            }),
            watches: WatchRegistry::new(),
            sessions,
            request_max_bytes: cfg.request_max_bytes,
            super_digest: cfg.super_digest,
            snapshot_every_txns: cfg.snapshot_every_txns,
            sync_step_nodes: cfg.sync_step_nodes.max(1),
            housekeeping_ticks: cfg.housekeeping_ticks.max(1),
            outstanding_max,
            forward_timeout_ticks,
            tick: 0,
            now_ms: 0,
            role: Role::Looking,
            phase: Phase::Election,
            serving: false,
            diverged: None,
            applied: snapshot_zxid,
            applied_txns: 0,
            snapshots_installed: 0,
            log_entries_read: 0,
            since_snapshot: 0,
            next_snapshot_after: apply::snapshot_after(cfg.snapshot_every_txns, id.0, 0),
            snapshots_started: 0,
            digests,
            snap: None,
            syncs: sync_snap::SyncSnaps::default(),
            proposed: VecDeque::new(),
            arena: crate::codec::EncodeArena::new(),
            conns: HashMap::default(),
            by_session: HashMap::default(),
            deferred: VecDeque::new(),
            forward_seen: HashMap::default(),
            out: Vec::new(),
            scratch_actions: Vec::new(),
            scratch_events: Vec::new(),
            applied_scratch: datatree::Applied::default(),
        };
        server.pump();
        Ok(server)
    }

    /// This server's id.
    pub fn id(&self) -> ServerId {
        self.id
    }

    /// The ZAB status.
    pub fn status(&self) -> zab_core::Status {
        self.core.status()
    }

    /// Whether an incremental snapshot is being written.
    pub fn snapshot_in_progress(&self) -> bool {
        self.snap.is_some()
    }

    /// Whether the server serves clients (in Broadcast and not diverged).
    pub fn is_serving(&self) -> bool {
        self.serving
    }

    /// Last applied zxid.
    pub fn applied_zxid(&self) -> Zxid {
        self.applied
    }

    /// The tree (read-only), for tests and harnesses.
    pub fn tree(&self) -> &DataTree {
        &self.tree
    }

    /// The incremental digest of the tree.
    pub fn digest(&self) -> u64 {
        self.tree.digest()
    }

    /// mntr-like statistics.
    pub fn stats(&self) -> ServerStats {
        let st = self.core.status();
        ServerStats {
            id: self.id.0,
            role: st.role,
            phase: st.phase,
            serving: self.serving,
            applied_zxid: self.applied,
            committed_zxid: st.committed,
            synced_learners: st.synced_learners,
            uncommitted_proposals: st.uncommitted,
            znode_count: self.tree.node_count(),
            watch_count: self.watches.watch_count(),
            ephemeral_count: self.tree.ephemeral_count(),
            session_count: self.sessions.table().len(),
            connection_count: self.conns.len(),
            outstanding_requests: self.conns.values().map(|c| c.slots.len()).sum(),
            digest: self.tree.digest(),
            applied_txns: self.applied_txns,
            snapshots_installed: self.snapshots_installed,
            log_entries_read: self.log_entries_read,
            diverged: self.diverged.clone(),
            zab: st,
        }
    }

    /// A copy of the state machine at the last applied zxid (for a periodic
    /// snapshot). Costs a clone of the tree on the calling thread.
    pub fn state_copy(&self) -> StateCopy {
        StateCopy {
            zxid: self.applied,
            sessions: self.session_table(),
            tree: self.tree.clone(),
        }
    }

    /// Takes every pending output, in execution order.
    pub fn drain_actions(&mut self) -> Vec<ServerAction> {
        std::mem::take(&mut self.out)
    }

    /// Appends every pending output to `out` (reusing the caller's buffer).
    pub fn drain_actions_into(&mut self, out: &mut Vec<ServerAction>) {
        if out.is_empty() {
            // The usual case: hand over the buffer instead of copying every action
            // (the two buffers trade places and both keep their capacity).
            std::mem::swap(out, &mut self.out);
        } else {
            out.append(&mut self.out);
        }
    }

    /// Input: the transport lost its connection to peer `peer` (see
    /// [`zab_core::Core::handle_peer_lost`]): a learner of that leader re-elects at once.
    pub fn handle_peer_lost(&mut self, peer: ServerId) {
        self.core.handle_peer_lost(peer);
        self.pump();
    }

    /// Input: the transport (re)connected to peer `peer` (see
    /// [`zab_core::Core::handle_peer_connected`]): a LOOKING server sends it its vote.
    pub fn handle_peer_connected(&mut self, peer: ServerId) {
        self.core.handle_peer_connected(peer);
        self.pump();
    }

    /// Input: write one more step of a running snapshot (nothing if none runs). The
    /// node calls it a few times between ticks so a large snapshot progresses in
    /// short steps; each step's bytes leave as a `SnapshotChunk` action.
    pub fn handle_snapshot_step(&mut self) {
        self.snapshot_step(SNAPSHOT_STEP_NODES);
    }

    /// Input: one tick of logical time; `now_ms` is the caller's wall time, used for
    /// txn times and TTLs.
    pub fn handle_tick(&mut self, now_ms: i64) {
        self.tick += 1;
        self.now_ms = self.now_ms.max(now_ms);
        self.core.handle_tick();
        self.pump();
        self.snapshot_step(SNAPSHOT_STEP_NODES);
        self.handle_sync_step();
        if self.serving {
            // In-process connections are alive while their client handle is: touch
            // every attached session once per tick (the client's heartbeat).
            let ids: Vec<SessionId> = self.by_session.keys().copied().collect();
            for id in ids {
                let _ = self.sessions.touch(session::SessionId(id.0), self.tick);
            }
            if self.role == Role::Leading {
                self.leader_housekeeping();
            } else {
                self.learner_report_touches();
                self.expire_stuck_conns(self.forward_timeout_ticks);
            }
        }
        self.pump();
    }

    /// Input: the wall time moved (for txn times), without a tick.
    pub fn handle_time(&mut self, now_ms: i64) {
        self.now_ms = self.now_ms.max(now_ms);
    }

    /// Input: a ZAB message from a peer, still encoded. Undecodable frames are dropped
    /// (and logged): a peer never crashes this server.
    pub fn handle_peer_frame(&mut self, from: ServerId, frame: Bytes) {
        match Message::decode_owned(frame) {
            Ok(msg) => self.handle_message(from, msg),
            Err(e) => {
                tracing::warn!(id = %self.id, %from, error = %e, "dropping undecodable frame")
            }
        }
    }

    /// Input: a decoded ZAB message from a peer.
    pub fn handle_message(&mut self, from: ServerId, msg: Message) {
        self.core.handle_message(from, msg);
        self.pump();
    }

    /// Input: a storage completion (in the order the ops were issued; see
    /// [`StorageDone`] for the one exception).
    pub fn handle_storage_done(&mut self, done: StorageDone) {
        match done {
            StorageDone::Durable(z) => self.core.handle_log_durable(z),
            StorageDone::Truncated(z) => self.core.handle_log_truncated(z),
            StorageDone::SnapshotInstalled(z) => self.core.handle_snapshot_installed(z),
            StorageDone::AcceptedEpoch(e) => self.core.handle_accepted_epoch_saved(e),
            StorageDone::CurrentEpoch(e) => self.core.handle_current_epoch_saved(e),
            StorageDone::LogRead { token, entries } => {
                let n = entries.as_ref().map_or(0, Vec::len);
                self.log_entries_read += n as u64;
                self.core.handle_log_read(token, entries)
            }
        }
        self.pump();
    }

    /// Input: the client on `conn` went away (its handle was dropped). Its session is
    /// not closed: it expires unless re-attached elsewhere.
    pub fn handle_conn_closed(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn) {
            if let Some(s) = c.session {
                if self.by_session.get(&s) == Some(&conn) {
                    self.by_session.remove(&s);
                }
                self.sessions
                    .detach(session::SessionId(s.0), self.owner(conn));
            }
        }
    }

    /// Input: request `xid` of the client on connection `conn`.
    pub fn handle_client(&mut self, conn: ConnId, xid: Xid, req: Request) {
        self.client_request(conn, xid, req);
        self.pump();
    }

    fn owner(&self, conn: ConnId) -> session::Owner {
        session::Owner {
            server_id: self.id.0,
            connection_id: conn.0,
        }
    }

    /// Runs the core's actions until none are left.
    fn pump(&mut self) {
        let mut actions = std::mem::take(&mut self.scratch_actions);
        loop {
            self.core.drain_actions_into(&mut actions);
            if actions.is_empty() {
                break;
            }
            for a in actions.drain(..) {
                self.handle_action(a);
            }
        }
        // Keep the buffer's capacity for the next call (a nested pump found it empty).
        self.scratch_actions = actions;
    }

    fn handle_action(&mut self, action: Action) {
        match action {
            Action::Send { to, msg } => self.send_to_peer(to, msg),
            Action::AppendLog { entries } => self
                .out
                .push(ServerAction::Storage(StorageOp::Append(entries))),
            Action::TruncateLog { after } => self
                .out
                .push(ServerAction::Storage(StorageOp::Truncate(after))),
            Action::InstallSnapshot { zxid, data } => self.install_snapshot(zxid, data),
            Action::SaveAcceptedEpoch { epoch } => self
                .out
                .push(ServerAction::Storage(StorageOp::SaveAcceptedEpoch(epoch))),
            Action::SaveCurrentEpoch { epoch } => self
                .out
                .push(ServerAction::Storage(StorageOp::SaveCurrentEpoch(epoch))),
            Action::ReadLog {
                token,
                from,
                max,
                max_bytes,
            } => self
                .out
                .push(ServerAction::Storage(StorageOp::ReadLog(ReadLogOp {
                    token,
                    from,
                    max,
                    max_bytes,
                }))),
            Action::Commit { entries } => {
                for e in entries {
                    self.apply_entry(e);
                }
                if self.role == Role::Leading {
                    self.leader_retry_deferred();
                }
            }
            Action::SendSnapshot(req) => self.start_sync_snapshot(req),
            Action::Request { origin, payload } => self.leader_handle_forward(origin, payload),
            Action::RoleChanged {
                role,
                phase,
                leader,
                epoch,
            } => self.role_changed(role, phase, leader, epoch),
            other => tracing::warn!(id = %self.id, action = ?other, "unknown zab action ignored"),
        }
    }

    fn session_table(&self) -> Vec<(SessionId, u32)> {
        self.sessions
            .table()
            .iter()
            .map(|(id, t)| (SessionId(id.0), t))
            .collect()
    }

    fn install_snapshot(&mut self, zxid: Zxid, data: Bytes) {
        match codec::decode_state(&data) {
            Ok((table, tree)) => {
                // A running periodic snapshot described the old tree: drop it.
                if let Some(old) = self.snap.take() {
                    self.out
                        .push(ServerAction::SnapshotAbort { zxid: old.zxid });
                }
                self.tree = tree;
                self.sessions.install_table(table_of(&table));
                self.applied = zxid;
                self.digests.clear();
                self.digests.push_back((zxid.to_u64(), self.tree.digest()));
                self.prep.reset();
                self.snapshots_installed += 1;
                self.out
                    .push(ServerAction::Storage(StorageOp::InstallSnapshot {
                        zxid,
                        data,
                    }));
            }
            Err(e) => self.diverge(zxid, format!("undecodable snapshot from leader: {e}")),
        }
    }

    fn role_changed(&mut self, role: Role, phase: Phase, leader: Option<ServerId>, epoch: u32) {
        tracing::info!(id = %self.id, ?role, ?phase, ?leader, epoch, "role changed");
        let was_serving = self.serving;
        self.end_sync_snapshots(role, epoch);
        self.role = role;
        self.phase = phase;
        self.prep.reset();
        self.deferred.clear();
        self.proposed.clear();
        self.forward_seen.clear();
        let serve = phase == Phase::Broadcast && self.diverged.is_none();
        if was_serving && !serve {
            self.disconnect_all();
        }
        self.serving = serve;
        if serve {
            if role == Role::Leading {
                self.sessions.become_leader(self.tick);
                let owners: Vec<session::SessionId> = self
                    .tree
                    .ephemeral_owners()
                    .into_iter()
                    .map(|s| session::SessionId(s.0))
                    .collect();
                if let Ok(closes) = self.sessions.close_orphans(owners) {
                    for txn in closes {
                        if let session::SessionTxn::Close { id } = txn {
                            self.leader_propose_close(SessionId(id.0), 0, ConnId(0), Xid(0));
                        }
                    }
                }
            } else {
                self.sessions.become_learner(self.tick);
            }
        }
    }

    /// Every connection loses its server: pending requests fail with ConnectionLoss
    /// and the client gets Disconnected (it re-attaches its session elsewhere).
    fn disconnect_all(&mut self) {
        let mut conns: Vec<ConnId> = self.conns.keys().copied().collect();
        conns.sort_unstable();
        for conn in conns {
            self.disconnect(conn);
        }
        self.by_session.clear();
    }

    fn diverge(&mut self, zxid: Zxid, reason: String) {
        tracing::error!(id = %self.id, %zxid, %reason, "replica diverged: stop serving");
        if self.diverged.is_none() {
            self.diverged = Some(reason.clone());
            self.out.push(ServerAction::Diverged { zxid, reason });
        }
        if self.serving {
            self.disconnect_all();
        }
        self.serving = false;
    }
}

fn table_of(entries: &[(SessionId, u32)]) -> session::SessionTable {
    let mut t = session::SessionTable::new();
    for (id, timeout) in entries {
        t.apply_create(session::SessionId(id.0), *timeout);
    }
    t
}

#[cfg(test)]
mod tests;
