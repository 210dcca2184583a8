//! The server's public input and output types: configuration, storage ops and their
//! completions, actions, statistics.

use bytes::Bytes;
use datatree::{DataTree, WatchedEvent};
use session::{PasswordSecret, SessionConfig};
use zab_core::{Message, Phase, Role, ServerId, Zxid};

use crate::codec;
use crate::error::Error;
use crate::ops::{ConnId, Response, SessionEvent, SessionId, Xid};

/// Settings of a [`Server`](crate::Server).
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
    /// Take a snapshot after at most this many applied txns, at least half as many
    /// (0: never); the point in between depends on the server id.
    pub snapshot_every_txns: u64,
    /// Ticks between the leader's checks for empty containers and expired TTL nodes.
    pub housekeeping_ticks: u64,
    /// The super digest id (`super:<base64>`): a digest addAuth producing it also
    /// grants the `super` id. `None`: no super user.
    pub super_digest: Option<String>,
    /// Znodes per step of a SNAP written for a lagging learner
    /// ([`SYNC_STEP_NODES`](crate::server::SYNC_STEP_NODES) unless testing: the
    /// simulator takes a few, so that its small trees' SNAPs also stream).
    pub sync_step_nodes: usize,
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
    /// Leader: read the log for a learner's sync; run it with [`read_log`] and
    /// report [`StorageDone::LogRead`]. A failed read is reported as `None`, never
    /// as a storage failure: it costs the learner a SNAP, not the node.
    ReadLog(ReadLogOp),
}

/// A leader's read of its log for a learner's sync (see [`zab_core::Action::ReadLog`]:
/// at most `max` entries with zxid `>= from`, stopping once they carry `max_bytes`),
/// seeing every earlier append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLogOp {
    /// Names the read in its answer.
    pub token: u64,
    /// First zxid to read.
    pub from: Zxid,
    /// Most entries to read.
    pub max: usize,
    /// Payload bytes after which to stop.
    pub max_bytes: usize,
}

/// A storage completion, reported in the order the ops were issued; except that a
/// [`StorageDone::LogRead`] needs no durability, so it may come before the
/// [`StorageDone::Durable`] of appends issued before its read.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// The entries a [`StorageOp::ReadLog`] read (`None`: the read failed).
    LogRead {
        /// The op's token.
        token: u64,
        /// The entries, in zxid order.
        entries: Option<Vec<zab_core::Entry>>,
    },
}

/// Entries per store read while running a [`StorageOp::ReadLog`]: its byte bound is
/// checked between them, so large txns overshoot it by at most this many.
const READ_LOG_STEP: usize = 16;

/// Runs a [`StorageOp::ReadLog`] on `log`: its completion. A read that fails is
/// `None`: at `info` when the log was purged past `from` (the learner is simply too
/// far behind), at `warn` otherwise (a damaged record in this server's own log).
pub fn read_log(log: &dyn storage::LogStore, op: &ReadLogOp) -> StorageDone {
    let ReadLogOp {
        token,
        from,
        max,
        max_bytes,
    } = *op;
    let mut out: Vec<zab_core::Entry> = Vec::new();
    let mut bytes = 0usize;
    let mut next = from.to_u64();
    while out.len() < max && (bytes < max_bytes || out.len() < 2) {
        let want = READ_LOG_STEP.min(max - out.len());
        let chunk = match log.read_chunk(next, want) {
            Ok(c) => c,
            Err(e @ storage::StorageError::OutOfRange { .. }) => {
                tracing::info!(%from, error = %e, "log read for a sync: purged");
                return StorageDone::LogRead {
                    token,
                    entries: None,
                };
            }
            Err(e) => {
                tracing::warn!(%from, error = %e, "log read for a sync failed");
                return StorageDone::LogRead {
                    token,
                    entries: None,
                };
            }
        };
        let Some(last) = chunk.last().map(|e| e.zxid) else {
            break;
        };
        let got = chunk.len();
        for e in chunk {
            bytes = bytes.saturating_add(e.payload.len());
            out.push(zab_core::Entry {
                zxid: Zxid::from_u64(e.zxid),
                payload: e.payload,
            });
        }
        if got < want {
            break; // the end of the log
        }
        next = last.saturating_add(1);
    }
    StorageDone::LogRead {
        token,
        entries: Some(out),
    }
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
    /// format, written incrementally, steps of [`SNAPSHOT_STEP_NODES`](super::SNAPSHOT_STEP_NODES) (per tick and between ticks), so
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
    /// Log entries this server read from its durable log to sync learners behind
    /// its DIFF window (leader; see [`StorageOp::ReadLog`]).
    pub log_entries_read: u64,
    /// Set when the replica diverged.
    pub diverged: Option<String>,
    /// The ZAB core's full status (epochs, last/durable/committed zxids, election).
    pub zab: zab_core::Status,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use storage::{LogEntry, LogStore, MemLog};

    fn log_of(sizes: &[usize]) -> MemLog {
        let mut log = MemLog::new();
        let entries: Vec<LogEntry> = sizes
            .iter()
            .enumerate()
            .map(|(i, n)| LogEntry {
                zxid: Zxid::new(1, i as u32 + 1).to_u64(),
                payload: Bytes::from(vec![7u8; *n]),
            })
            .collect();
        log.append(&entries).unwrap();
        log
    }

    fn read(log: &MemLog, from: u32, max: usize, max_bytes: usize) -> Option<Vec<u32>> {
        let op = ReadLogOp {
            token: 9,
            from: Zxid::new(1, from),
            max,
            max_bytes,
        };
        match read_log(log, &op) {
            StorageDone::LogRead { token: 9, entries } => {
                entries.map(|es| es.iter().map(|e| e.zxid.counter).collect())
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn read_log_stops_at_the_entry_or_byte_bound_and_reports_a_purge_as_none() {
        let mut log = log_of(&[10; 40]);
        assert_eq!(read(&log, 3, 5, usize::MAX), Some((3..=7).collect()));
        // 40 entries of 10 bytes, 100 bytes allowed: the first step of 16 passes it.
        assert_eq!(read(&log, 1, 100, 100).map(|v| v.len()), Some(16));
        assert_eq!(read(&log, 1, 100, 200).map(|v| v.len()), Some(32));
        // The end of the log ends the read.
        assert_eq!(read(&log, 38, 100, usize::MAX), Some(vec![38, 39, 40]));
        // A large first entry still brings the one after it.
        let big = log_of(&[1000, 1000, 1000]);
        assert_eq!(read(&big, 1, 10, 10), Some(vec![1, 2, 3]));
        log.purge_before(Zxid::new(1, 10).to_u64()).unwrap();
        assert_eq!(read(&log, 3, 5, usize::MAX), None);
        assert_eq!(read(&log, 11, 2, usize::MAX), Some(vec![11, 12]));
    }

    #[test]
    fn read_log_reports_a_damaged_record_as_a_failed_read() {
        let mut log = storage::SimLog::new(1);
        let entries: Vec<LogEntry> = (1..=40)
            .map(|c| LogEntry {
                zxid: Zxid::new(1, c).to_u64(),
                payload: Bytes::from_static(b"x"),
            })
            .collect();
        log.append(&entries).unwrap();
        assert!(log.flip_bit(Zxid::new(1, 20).to_u64()));
        let op = |from: u32| ReadLogOp {
            token: 3,
            from: Zxid::new(1, from),
            max: 30,
            max_bytes: usize::MAX,
        };
        // A read that meets the damaged record fails as a whole.
        assert_eq!(
            read_log(&log, &op(1)),
            StorageDone::LogRead {
                token: 3,
                entries: None
            }
        );
        // One that starts after it is whole.
        let after = read_log(&log, &op(21));
        assert!(matches!(after, StorageDone::LogRead { entries: Some(es), .. } if es.len() == 20));
    }
}
