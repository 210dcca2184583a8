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

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use datatree::{DataTree, Prep, WatchRegistry, WatchedEvent};
use session::{PasswordSecret, SessionConfig, SessionTracker};
use zab_core::{Action, Core, Message, Persisted, Phase, Role, ServerId, Zxid};

use crate::codec::{self, Forward};
use crate::error::Error;
use crate::ops::{ConnId, Request, Response, SessionEvent, SessionId, Xid};

pub use conn::ConnStats;

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
/// Znodes written per tick by a running incremental snapshot (about 1 µs each).
pub const SNAPSHOT_STEP_NODES: usize = 4_096;
/// Outstanding requests per connection before further ones fail with Throttled.
pub const CONN_PENDING_MAX: usize = 100_000;

/// Settings of a [`Server`].
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The ZAB configuration (id, members, limits in ticks).
    pub zab: zab_core::Config,
    /// Session settings (tick length, timeout bounds).
    pub session: SessionConfig,
    /// The ensemble-wide secret that derives session passwords (same on every server).
    pub secret: PasswordSecret,
    /// Seeds session ids (ZooKeeper uses the start time).
    pub start_time_ms: u64,
    /// Largest request accepted.
    pub request_max_bytes: usize,
    /// Take a snapshot after this many applied txns (0: never).
    pub snapshot_every_txns: u64,
    /// Ticks between the leader's checks for empty containers and expired TTL nodes.
    pub housekeeping_ticks: u64,
}

/// A storage action for the shell's FIFO durable pipeline (see [`zab_core::action`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageOp {
    /// Append entries; report with [`StorageDone::Durable`].
    Append(Vec<zab_core::Entry>),
    /// Truncate after a zxid; report with [`StorageDone::Truncated`].
    Truncate(Zxid),
    /// Install a received snapshot (state bytes) and drop the log; report with
    /// [`StorageDone::SnapshotInstalled`].
    InstallSnapshot {
        /// Zxid it covers.
        zxid: Zxid,
        /// The state ([`crate::codec::encode_state`] format).
        data: Bytes,
    },
    /// Save the accepted epoch; report with [`StorageDone::AcceptedEpoch`].
    SaveAcceptedEpoch(u32),
    /// Save the current epoch; report with [`StorageDone::CurrentEpoch`].
    SaveCurrentEpoch(u32),
}

/// A storage completion, reported in the order the ops were issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageDone {
    /// Everything appended up to this zxid is durable.
    Durable(Zxid),
    /// The truncation is durable.
    Truncated(Zxid),
    /// The snapshot install is durable.
    SnapshotInstalled(Zxid),
    /// The accepted epoch is durable.
    AcceptedEpoch(u32),
    /// The current epoch is durable.
    CurrentEpoch(u32),
}

/// A consistent copy of the state machine at `zxid`, to serialize off the hot path.
#[derive(Debug, Clone)]
pub struct StateCopy {
    /// The zxid the copy covers.
    pub zxid: Zxid,
    /// The session table.
    pub sessions: Vec<(SessionId, u32)>,
    /// The tree.
    pub tree: DataTree,
}

impl StateCopy {
    /// Serializes the copy ([`crate::codec::encode_state`]).
    pub fn encode(&self) -> Vec<u8> {
        codec::encode_state(&self.sessions, &self.tree)
    }
}

/// One output of the server, to execute in order.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerAction {
    /// Send a ZAB message to a peer.
    Send {
        /// Destination.
        to: ServerId,
        /// Message.
        msg: Message,
    },
    /// A storage op for the FIFO durable pipeline.
    Storage(StorageOp),
    /// The answer to request `xid` of connection `conn`.
    Reply {
        /// Connection.
        conn: ConnId,
        /// Request.
        xid: Xid,
        /// The server's applied zxid when it answered (the client's "last seen").
        zxid: i64,
        /// Outcome.
        result: Result<Response, Error>,
    },
    /// A watch fired for the session on `conn`.
    Watch {
        /// Connection.
        conn: ConnId,
        /// The event.
        event: WatchedEvent,
    },
    /// A session event for `conn`. After Disconnected, Expired and Closed the
    /// connection is gone from the server.
    Session {
        /// Connection.
        conn: ConnId,
        /// The event.
        event: SessionEvent,
    },
    /// The next bytes of a periodic snapshot at `zxid` ([`crate::codec::encode_state`]
    /// format, written incrementally, one step of [`SNAPSHOT_STEP_NODES`] per tick, so
    /// it never stalls the server for long nor sits in memory whole). Append the
    /// chunks in order; after the `last` one, make the snapshot durable, then purge
    /// log entries before `zxid`.
    SnapshotChunk {
        /// The zxid the snapshot covers.
        zxid: Zxid,
        /// The next bytes.
        data: Vec<u8>,
        /// Whether this completes the snapshot.
        last: bool,
    },
    /// Legacy: a whole snapshot in one piece. No longer emitted (see
    /// [`ServerAction::SnapshotChunk`]); kept so that shells written against it still
    /// build.
    SnapshotReady {
        /// The zxid it covers.
        zxid: Zxid,
        /// The state.
        data: Vec<u8>,
    },
    /// The snapshot at `zxid` was abandoned (its tree was replaced): drop its chunks.
    SnapshotAbort {
        /// The zxid it would have covered.
        zxid: Zxid,
    },
    /// This replica's tree diverged from the leader's (digest mismatch or a txn that
    /// does not fit): it stopped serving. Loud by design.
    Diverged {
        /// The zxid where it was detected.
        zxid: Zxid,
        /// What was detected.
        reason: String,
    },
}

/// mntr-like figures of one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStats {
    /// This server.
    pub id: u64,
    /// Role.
    pub role: Role,
    /// Phase.
    pub phase: Phase,
    /// Whether it serves clients.
    pub serving: bool,
    /// Last applied zxid.
    pub applied_zxid: Zxid,
    /// ZAB commit point.
    pub committed_zxid: Zxid,
    /// Leader: learners synced with it (ZooKeeper's `synced_followers`, observers
    /// included); 0 elsewhere.
    pub synced_learners: usize,
    /// Leader: proposals not yet committed.
    pub uncommitted_proposals: usize,
    /// Znodes in the tree.
    pub znode_count: usize,
    /// Registered watches.
    pub watch_count: usize,
    /// Ephemeral nodes.
    pub ephemeral_count: usize,
    /// Sessions in the replicated table.
    pub session_count: usize,
    /// Connections on this server.
    pub connection_count: usize,
    /// Requests received and not answered yet.
    pub outstanding_requests: usize,
    /// Tree digest.
    pub digest: u64,
    /// Txns applied since start.
    pub applied_txns: u64,
    /// Snapshots received from a leader and installed (SNAP syncs) since start.
    pub snapshots_installed: u64,
    /// Set when the replica diverged.
    pub diverged: Option<String>,
    /// The ZAB core's full status (epochs, last/durable/committed zxids, election).
    pub zab: zab_core::Status,
}

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
    snapshot_every_txns: u64,
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
    since_snapshot: u64,
    digests: VecDeque<(u64, u64)>,
    snap: Option<SnapInProgress>,
    /// Leader: the envelopes it proposed and has not applied yet, in zxid order, so
    /// that applying its own proposals needs no decoding.
    proposed: VecDeque<(Zxid, crate::codec::Envelope)>,
    conns: HashMap<ConnId, conn::Conn>,
    by_session: HashMap<SessionId, ConnId>,
    deferred: VecDeque<(ServerId, Forward)>,
    forward_seen: HashMap<(u64, u64), u64>,
    out: Vec<ServerAction>,
    scratch_events: Vec<(SessionId, WatchedEvent)>,
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
            snapshot_every_txns: cfg.snapshot_every_txns,
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
            since_snapshot: 0,
            digests,
            snap: None,
            proposed: VecDeque::new(),
            conns: HashMap::new(),
            by_session: HashMap::new(),
            deferred: VecDeque::new(),
            forward_seen: HashMap::new(),
            out: Vec::new(),
            scratch_events: Vec::new(),
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
        out.append(&mut self.out);
    }

    /// Input: one tick of logical time; `now_ms` is the caller's wall time, used for
    /// txn times and TTLs.
    pub fn handle_tick(&mut self, now_ms: i64) {
        self.tick += 1;
        self.now_ms = self.now_ms.max(now_ms);
        self.core.handle_tick();
        self.pump();
        self.snapshot_step(SNAPSHOT_STEP_NODES);
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
    pub fn handle_peer_frame(&mut self, from: ServerId, frame: &Bytes) {
        match Message::decode(frame) {
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

    /// Input: a storage completion (in the order the ops were issued).
    pub fn handle_storage_done(&mut self, done: StorageDone) {
        match done {
            StorageDone::Durable(z) => self.core.handle_log_durable(z),
            StorageDone::Truncated(z) => self.core.handle_log_truncated(z),
            StorageDone::SnapshotInstalled(z) => self.core.handle_snapshot_installed(z),
            StorageDone::AcceptedEpoch(e) => self.core.handle_accepted_epoch_saved(e),
            StorageDone::CurrentEpoch(e) => self.core.handle_current_epoch_saved(e),
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
        loop {
            let actions = self.core.drain_actions();
            if actions.is_empty() {
                return;
            }
            for a in actions {
                self.handle_action(a);
            }
        }
    }

    fn handle_action(&mut self, action: Action) {
        match action {
            Action::Send { to, msg } => self.out.push(ServerAction::Send { to, msg }),
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
            Action::Commit { entries } => {
                for e in entries {
                    self.apply_entry(e);
                }
                if self.role == Role::Leading {
                    self.leader_retry_deferred();
                }
            }
            Action::SendSnapshot(req) => {
                // The tree is exactly at `req.upto` here: every earlier Commit was applied.
                let data = codec::encode_state(&self.session_table(), &self.tree);
                let to = req.to;
                self.out.push(ServerAction::Send {
                    to,
                    msg: req.into_message(Bytes::from(data)),
                });
            }
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
