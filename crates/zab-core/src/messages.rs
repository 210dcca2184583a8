//! Peer messages: what servers say to each other. The binary encoding is in
//! [`Message::encode`] / [`Message::decode`] (module `codec`): one version byte
//! ([`WIRE_VERSION`]), one tag byte, the fields big-endian, byte strings with a bounded
//! `u32` length.

use bytes::Bytes;

pub use crate::codec::{DecodeError, PAYLOAD_MAX_BYTES, SNAPSHOT_MAX_BYTES, WIRE_VERSION};
use crate::zxid::{ServerId, Zxid};

/// A txn in the replicated log: its zxid and the opaque payload.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Entry {
    /// Position of the txn in the history.
    pub zxid: Zxid,
    /// The txn itself, opaque to the core.
    pub payload: Bytes,
}

/// What a server reports about itself in election notifications.
#[derive(Clone, Copy, PartialEq, Eq, Debug, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum PeerState {
    /// Searching for a leader.
    Looking,
    /// Following a leader.
    Following,
    /// Leading.
    Leading,
    /// Observing a leader.
    Observing,
}

/// A vote: the proposed leader with the history it is known to have.
///
/// Votes are ordered by `(peer_epoch, zxid, leader)`, the order fast leader election
/// uses: the highest one wins.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct Vote {
    /// The proposed leader.
    pub leader: ServerId,
    /// Last logged zxid of the proposed leader.
    pub zxid: Zxid,
    /// Current epoch of the proposed leader.
    pub peer_epoch: u32,
}

impl Vote {
    /// The ordering key of fast leader election.
    pub fn key(&self) -> (u32, Zxid, ServerId) {
        (self.peer_epoch, self.zxid, self.leader)
    }
}

/// A message between two servers. Leader/learner messages carry the leader's epoch so
/// that stale messages of another epoch are recognised and dropped.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Message {
    /// Fast leader election notification.
    Notification {
        /// The sender's current vote.
        vote: Vote,
        /// The sender's election round (logical clock).
        election_epoch: u64,
        /// The sender's state.
        state: PeerState,
    },
    /// Learner -> leader: first message of discovery.
    FollowerInfo {
        /// The learner's accepted epoch.
        accepted_epoch: u32,
        /// The learner's last logged zxid.
        last_zxid: Zxid,
    },
    /// Leader -> learner: the new epoch.
    LeaderInfo {
        /// The epoch the leader establishes.
        epoch: u32,
    },
    /// Learner -> leader: the learner accepted `epoch` (durably).
    AckEpoch {
        /// The epoch acknowledged.
        epoch: u32,
        /// False when the learner had already accepted this epoch before: such an ack
        /// does not count towards establishing the epoch (ZooKeeper's `-1`).
        fresh: bool,
        /// The learner's current epoch.
        current_epoch: u32,
        /// The learner's last logged zxid.
        last_zxid: Zxid,
    },
    /// Leader -> learner: sync header, the learner's log is a prefix of the leader's.
    Diff {
        /// Leader epoch.
        epoch: u32,
        /// The learner last zxid this plan was computed for.
        echo: Zxid,
    },
    /// Leader -> learner: sync header, drop every entry after `to`.
    Trunc {
        /// Leader epoch.
        epoch: u32,
        /// The learner last zxid this plan was computed for.
        echo: Zxid,
        /// Last zxid to keep.
        to: Zxid,
    },
    /// Leader -> learner: sync header, replace the state with this snapshot.
    Snap {
        /// Leader epoch.
        epoch: u32,
        /// The learner last zxid this plan was computed for.
        echo: Zxid,
        /// The zxid the snapshot covers.
        zxid: Zxid,
        /// Bytes of the snapshot sent ahead of this message in [`Message::SnapChunk`]s
        /// for the same zxid (0: `data` is the whole snapshot).
        chunked: u64,
        /// The serialized state machine (its end, after `chunked` bytes), opaque to
        /// the core.
        data: Bytes,
    },
    /// Leader -> learner: a piece of the snapshot of the SNAP that follows, sent while
    /// a large snapshot is still being written so that it never travels as one huge
    /// frame and the learner hears from the leader meanwhile.
    SnapChunk {
        /// Leader epoch.
        epoch: u32,
        /// The zxid the snapshot covers.
        zxid: Zxid,
        /// Where these bytes start in the snapshot (0 starts a new one).
        offset: u64,
        /// The bytes.
        data: Bytes,
    },
    /// Leader -> follower: a txn to log. `prev` is the zxid of the entry before it in
    /// the leader's history, so a learner detects gaps.
    Proposal {
        /// Leader epoch.
        epoch: u32,
        /// The entry before this one.
        prev: Zxid,
        /// The txn.
        entry: Entry,
    },
    /// Leader -> learner: every txn up to `zxid` is committed.
    Commit {
        /// Leader epoch.
        epoch: u32,
        /// Cumulative commit point.
        zxid: Zxid,
    },
    /// Leader -> learner: end of the sync stream; `zxid` is the last entry sent.
    NewLeader {
        /// Leader epoch.
        epoch: u32,
        /// Last zxid sent before this message.
        zxid: Zxid,
    },
    /// Learner -> leader: everything up to `zxid` is durable and `current_epoch` saved.
    AckNewLeader {
        /// Leader epoch.
        epoch: u32,
        /// Zxid of the NEWLEADER acknowledged.
        zxid: Zxid,
    },
    /// Leader -> learner: the epoch is established, start serving.
    UpToDate {
        /// Leader epoch.
        epoch: u32,
        /// The leader's commit point when it sent this.
        committed: Zxid,
    },
    /// Follower -> leader: every proposal up to `zxid` is durable (cumulative).
    Ack {
        /// Leader epoch.
        epoch: u32,
        /// Cumulative durable point.
        zxid: Zxid,
    },
    /// Leader -> observer: a committed txn.
    Inform {
        /// Leader epoch.
        epoch: u32,
        /// The entry before this one.
        prev: Zxid,
        /// The committed txn.
        entry: Entry,
    },
    /// Leader -> learner heartbeat.
    Ping {
        /// Leader epoch.
        epoch: u32,
        /// The leader's last proposed zxid.
        last_zxid: Zxid,
        /// The leader's commit point.
        committed: Zxid,
    },
    /// Learner -> leader heartbeat reply.
    PingReply {
        /// Leader epoch.
        epoch: u32,
    },
    /// Learner -> leader: a client request to prepare and propose.
    Request {
        /// Leader epoch.
        epoch: u32,
        /// Opaque request bytes.
        payload: Bytes,
    },
}

impl Message {
    /// A short name for traces.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Notification { .. } => "NOTIFICATION",
            Message::FollowerInfo { .. } => "FOLLOWERINFO",
            Message::LeaderInfo { .. } => "LEADERINFO",
            Message::AckEpoch { .. } => "ACKEPOCH",
            Message::Diff { .. } => "DIFF",
            Message::Trunc { .. } => "TRUNC",
            Message::Snap { .. } => "SNAP",
            Message::SnapChunk { .. } => "SNAP(chunk)",
            Message::Proposal { .. } => "PROPOSAL",
            Message::Commit { .. } => "COMMIT",
            Message::NewLeader { .. } => "NEWLEADER",
            Message::AckNewLeader { .. } => "ACK(NEWLEADER)",
            Message::UpToDate { .. } => "UPTODATE",
            Message::Ack { .. } => "ACK",
            Message::Inform { .. } => "INFORM",
            Message::Ping { .. } => "PING",
            Message::PingReply { .. } => "PING(reply)",
            Message::Request { .. } => "REQUEST",
        }
    }
}
