//! The core's outputs ([`Action`]) and observable state ([`Role`], [`Phase`], [`Status`]).
//!
//! # Order and durability rules for the shell
//! Actions are drained in order with [`Core::drain_actions`](crate::Core::drain_actions)
//! and must be executed in that order. The five storage actions ([`Action::AppendLog`],
//! [`Action::TruncateLog`], [`Action::InstallSnapshot`], [`Action::SaveAcceptedEpoch`],
//! [`Action::SaveCurrentEpoch`]) go through one FIFO durable pipeline: each becomes
//! durable after every earlier storage action, and its completion is reported back in the
//! same order through the matching `handle_*` input. The other actions are executed
//! immediately, without waiting for storage: the core itself withholds every message
//! whose meaning depends on durability (ACK, ACK of NEWLEADER, ACKEPOCH) until the
//! completion came back.

use bytes::Bytes;

use crate::messages::{Entry, Message};
use crate::zxid::{ServerId, Zxid};

/// A server's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// In leader election.
    Looking,
    /// Following a leader.
    Following,
    /// Leading.
    Leading,
    /// Observing a leader.
    Observing,
}

/// Where a leader or learner is in establishing its epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Phase {
    /// Leader election (role LOOKING).
    Election,
    /// FOLLOWERINFO / LEADERINFO / ACKEPOCH.
    Discovery,
    /// DIFF/TRUNC/SNAP, NEWLEADER and its acknowledgements, up to UPTODATE.
    Sync,
    /// Established: proposals and commits flow; the server may serve clients.
    Broadcast,
}

/// What the leader asks the shell to snapshot and send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotRequest {
    /// The learner to send the snapshot to.
    pub to: ServerId,
    /// The zxid the snapshot must cover: the shell's state machine is exactly at this
    /// point when it executes the action (every earlier [`Action::Commit`] applied).
    pub upto: Zxid,
    /// The leader epoch, to put in the message.
    pub epoch: u32,
    /// The learner zxid the sync was planned for, to put in the message.
    pub echo: Zxid,
}

impl SnapshotRequest {
    /// The SNAP message carrying `data`, the serialized state at `upto`, or its end
    /// when its first `chunked` bytes went ahead in [`SnapshotRequest::chunk`]s.
    pub fn into_message(self, chunked: u64, data: Bytes) -> Message {
        Message::Snap {
            epoch: self.epoch,
            echo: self.echo,
            zxid: self.upto,
            chunked,
            data,
        }
    }

    /// A piece of the state at `upto` that starts at byte `offset`, sent before the
    /// SNAP while the state is still being written.
    pub fn chunk(&self, offset: u64, data: Bytes) -> Message {
        Message::SnapChunk {
            epoch: self.epoch,
            zxid: self.upto,
            offset,
            data,
        }
    }
}

/// One output of the core. See the module docs for ordering rules.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Send `msg` to `to`. Needs no prior durability; best effort (a lost message is
    /// recovered by the protocol). Messages to one peer should leave in this order.
    Send {
        /// Destination.
        to: ServerId,
        /// The message.
        msg: Message,
    },
    /// Append `entries` (consecutive, in zxid order) to the log after everything
    /// already appended. Storage action: report with
    /// [`Core::handle_log_durable`](crate::Core::handle_log_durable)`(last zxid)`;
    /// several appends may be reported by one call (group commit).
    AppendLog {
        /// The entries to append.
        entries: Vec<Entry>,
    },
    /// Remove every log entry after `after` (TRUNC). Storage action: report with
    /// [`Core::handle_log_truncated`](crate::Core::handle_log_truncated). Never
    /// crosses the commit point.
    TruncateLog {
        /// Last zxid to keep.
        after: Zxid,
    },
    /// Replace the state machine with `data` (a snapshot at `zxid`) and drop the whole
    /// log; both must become durable together (after a crash the shell restarts from
    /// either the old state or the new one, never a mix: ZOOKEEPER-3642). Storage
    /// action: report with
    /// [`Core::handle_snapshot_installed`](crate::Core::handle_snapshot_installed).
    InstallSnapshot {
        /// The zxid the snapshot covers.
        zxid: Zxid,
        /// The serialized state, as produced by the leader's shell.
        data: Bytes,
    },
    /// Persist `accepted_epoch = epoch`. Storage action: report with
    /// [`Core::handle_accepted_epoch_saved`](crate::Core::handle_accepted_epoch_saved).
    SaveAcceptedEpoch {
        /// The epoch.
        epoch: u32,
    },
    /// Persist `current_epoch = epoch`. Storage action: report with
    /// [`Core::handle_current_epoch_saved`](crate::Core::handle_current_epoch_saved).
    SaveCurrentEpoch {
        /// The epoch.
        epoch: u32,
    },
    /// Apply these committed txns to the state machine, in order. They directly follow
    /// the last txn applied (or the snapshot installed). Needs no durability of its own:
    /// a committed txn is durable on a quorum.
    Commit {
        /// Committed txns, in zxid order, without gaps.
        entries: Vec<Entry>,
    },
    /// Leader: serialize the state machine at `upto` and send
    /// [`SnapshotRequest::into_message`] to the learner before any later `Send` to it.
    SendSnapshot(SnapshotRequest),
    /// Leader, with [`Config::diff_from_log`](crate::Config::diff_from_log): read the
    /// durable log for the sync of a learner behind the in-memory window. The shell
    /// reads the entries with zxid `>= from` (the entry at `from` first, if the log
    /// holds it), at most `max` of them, stopping early once they carry `max_bytes`
    /// of payload, after every earlier storage action took effect (it must see every
    /// earlier append, synced or not; it needs no durability of its own, and its
    /// answer may come before earlier appends are reported durable). It reports them
    /// with [`Core::handle_log_read`](crate::Core::handle_log_read)`(token, ..)`. A
    /// failed read (`from` purged, a damaged record) is reported as `None`: it costs
    /// the learner a SNAP, never an error of the server. The log must hold this
    /// server's history, without holes, from its base on (a log reset to a snapshot
    /// newer than its last entry is only read from the snapshot on).
    ReadLog {
        /// Names this read in the answer.
        token: u64,
        /// First zxid to read: where the learner's stream stands.
        from: Zxid,
        /// Most entries to read.
        max: usize,
        /// Payload bytes after which to stop (at least one entry after `from`).
        max_bytes: usize,
    },
    /// Leader: a learner forwarded a client request; prepare it and call
    /// [`Core::propose`](crate::Core::propose) with the resulting txn. Forwarding is
    /// best effort: a request in flight during a leader change is lost, so the server
    /// holding the client must time out and retry or fail it.
    Request {
        /// The server the request came from.
        origin: ServerId,
        /// The request bytes, opaque to the core.
        payload: Bytes,
    },
    /// The role, phase or leader changed. The server may serve clients only in
    /// [`Phase::Broadcast`].
    RoleChanged {
        /// New role.
        role: Role,
        /// New phase.
        phase: Phase,
        /// The leader followed (or this server when leading).
        leader: Option<ServerId>,
        /// The epoch being established or served (0 while LOOKING).
        epoch: u32,
    },
}

/// A snapshot of the core's state, for tests, metrics and the shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// This server.
    pub id: ServerId,
    /// Current role.
    pub role: Role,
    /// Current phase.
    pub phase: Phase,
    /// Leader being followed (or self when leading).
    pub leader: Option<ServerId>,
    /// Epoch being established or served by the leader followed (0 if unknown).
    pub leader_epoch: u32,
    /// Durable accepted epoch.
    pub accepted_epoch: u32,
    /// Durable current epoch.
    pub current_epoch: u32,
    /// Last zxid in the log (appended, maybe not yet durable).
    pub last_zxid: Zxid,
    /// Last zxid known durable.
    pub durable_zxid: Zxid,
    /// Commit point (everything up to it was handed out in [`Action::Commit`] or is in
    /// the snapshot).
    pub committed: Zxid,
    /// Election round.
    pub election_epoch: u64,
    /// Leader: learners that acknowledged NEWLEADER (ZooKeeper's synced followers,
    /// observers included); 0 otherwise.
    pub synced_learners: usize,
    /// Entries logged but not yet known committed (the leader's outstanding proposals).
    pub uncommitted: usize,
}
