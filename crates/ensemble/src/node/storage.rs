//! The node's storage: opening and recovering the stores, the log-writer thread
//! (FIFO storage ops with group commit) and the snapshot writer.

use std::io::{Read, Write};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use storage::{
    EpochStore, Epochs, FileEpochStore, FileLog, FileLogOptions, FileSnapshotStore, FsyncPolicy,
    LogEntry, LogStore, MemEpochStore, MemLog, MemSnapshotStore, SnapshotStore, StorageError,
};
use zab_core::{Entry, Persisted, Zxid};

use super::config::{Fsync, StorageKind};
use crate::server::{StorageDone, StorageOp};

/// Snapshots kept on disk (older ones are removed after a new one is written).
pub const SNAPSHOTS_KEPT: usize = 3;

/// A node's durable stores. Memory stores can be handed from a stopped node to its
/// restarted self (see [`Node::stop`](crate::Node::stop)).
pub struct Stores {
    pub(crate) log: Box<dyn LogStore>,
    pub(crate) epochs: Box<dyn EpochStore>,
    pub(crate) snaps: Arc<dyn SnapshotStore>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}

/// Why a node could not start or had to stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// Storage failed.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// The configuration is invalid.
    #[error("config: {0}")]
    Config(#[from] super::config::ConfigError),
    /// The server could not be built (bad persisted state).
    #[error("server: {0}")]
    Server(#[from] crate::server::ServerError),
    /// A thread could not be started.
    #[error("thread: {0}")]
    Thread(String),
}

impl Stores {
    /// Fresh memory stores.
    pub fn memory() -> Stores {
        Stores {
            log: Box::new(MemLog::new()),
            epochs: Box::new(MemEpochStore::new()),
            snaps: Arc::new(MemSnapshotStore::new()),
        }
    }

    /// Opens (recovering) the stores of `kind`.
    pub fn open(kind: &StorageKind, fsync: Fsync) -> Result<Stores, NodeError> {
        match kind {
            StorageKind::Memory => Ok(Stores::memory()),
            StorageKind::Dir(dir) => {
                let opts = FileLogOptions {
                    fsync: match fsync {
                        Fsync::Always => FsyncPolicy::Always,
                        Fsync::Never => FsyncPolicy::Never,
                    },
                    ..FileLogOptions::default()
                };
                Ok(Stores {
                    log: Box::new(FileLog::open(dir.join("log"), opts)?),
                    epochs: Box::new(FileEpochStore::open(dir)?),
                    snaps: Arc::new(FileSnapshotStore::open(dir.join("snap"))?),
                })
            }
        }
    }

    /// Recovery: the newest valid snapshot (its state bytes) and the persisted ZAB
    /// state (epochs, snapshot zxid, the log after the log's base). A log that ends
    /// before the snapshot is reset to it.
    pub fn recover(&mut self) -> Result<(Persisted, Option<Vec<u8>>), NodeError> {
        let Epochs {
            accepted_epoch,
            current_epoch,
        } = self.epochs.epochs();
        let (snapshot_zxid, state) = match self.snaps.open_newest_valid()? {
            Some(mut opened) => {
                for s in &opened.skipped {
                    tracing::error!(zxid = s.zxid, error = %s.error, "skipped an invalid snapshot");
                }
                let mut bytes = Vec::with_capacity(opened.info.size_bytes as usize);
                opened
                    .reader
                    .read_to_end(&mut bytes)
                    .map_err(|e| StorageError::Io {
                        op: "read snapshot",
                        path: "snapshot".into(),
                        source: e,
                    })?;
                (opened.info.zxid, Some(bytes))
            }
            None => (0, None),
        };
        storage::check_log_continues_snapshot(
            self.log.as_ref(),
            snapshot_zxid,
            std::path::Path::new("log"),
        )?;
        // A snapshot newer than the whole log (the log's fsync behind the state the
        // snapshot was taken of, then a power loss): what gets appended next follows
        // the snapshot, not the log's last entry, so the log restarts at the snapshot
        // rather than keep a hole below it that a DIFF read from it could cross.
        if self.log.last_zxid().unwrap_or_else(|| self.log.base_zxid()) < snapshot_zxid {
            tracing::warn!(
                snapshot_zxid,
                "the log ends before the snapshot: restarting it there"
            );
            self.log.reset(snapshot_zxid)?;
        }
        let base = self.log.base_zxid();
        let entries = match self.log.last_zxid() {
            Some(last) if last > base => self.log.read_range(base + 1, last)?,
            _ => Vec::new(),
        };
        let log = entries
            .into_iter()
            .map(|e| Entry {
                zxid: Zxid::from_u64(e.zxid),
                payload: e.payload,
            })
            .collect();
        Ok((
            Persisted::new(
                accepted_epoch,
                current_epoch,
                Zxid::from_u64(snapshot_zxid),
                Zxid::from_u64(base),
                log,
            ),
            state,
        ))
    }
}

/// What the log-writer thread hands back when it stops.
pub(crate) type LogStores = (Box<dyn LogStore>, Box<dyn EpochStore>);

/// Commands for the log-writer thread.
pub(crate) enum LogCmd {
    /// Storage ops, in order.
    Ops(Vec<StorageOp>),
    /// A snapshot at this zxid is durable: log entries before it may go.
    Purge(u64),
}

/// Writes a snapshot of `data` at `zxid` into `snaps`.
pub(crate) fn write_snapshot(
    snaps: &dyn SnapshotStore,
    zxid: u64,
    data: &[u8],
) -> Result<(), StorageError> {
    let mut w = snaps.begin(zxid)?;
    w.write_all(data).map_err(|e| StorageError::Io {
        op: "write snapshot",
        path: "snapshot".into(),
        source: e,
    })?;
    w.finish()?;
    snaps.retain_newest(SNAPSHOTS_KEPT)?;
    Ok(())
}

/// Starts the log writer. It executes storage ops in FIFO order and reports each
/// completion on `done` in the same order; consecutive appends share one sync (group
/// commit: everything queued while the previous fsync ran goes into the next one).
/// On a storage error it logs, stops, and drops `done` (the node then stops).
pub(crate) fn spawn_log_writer(
    id: u64,
    mut log: Box<dyn LogStore>,
    mut epochs: Box<dyn EpochStore>,
    snaps: Arc<dyn SnapshotStore>,
    cmds: Receiver<LogCmd>,
    done: Sender<Vec<StorageDone>>,
) -> Result<JoinHandle<LogStores>, NodeError> {
    std::thread::Builder::new()
        .name(format!("ensemble-log-{id}"))
        .spawn(move || {
            let mut batch = Vec::new();
            let mut reports = Vec::new();
            while let Ok(first) = cmds.recv() {
                batch.push(first);
                while let Ok(more) = cmds.try_recv() {
                    batch.push(more);
                }
                let result = run_batch(
                    &mut *log,
                    &mut *epochs,
                    &*snaps,
                    batch.drain(..),
                    &mut reports,
                );
                if !reports.is_empty() && done.send(std::mem::take(&mut reports)).is_err() {
                    break;
                }
                if let Err(e) = result {
                    tracing::error!(id, error = %e, "storage failed: the node stops");
                    break;
                }
            }
            (log, epochs)
        })
        .map_err(|e| NodeError::Thread(e.to_string()))
}

pub(crate) fn run_batch(
    log: &mut dyn LogStore,
    epochs: &mut dyn EpochStore,
    snaps: &dyn SnapshotStore,
    cmds: impl Iterator<Item = LogCmd>,
    reports: &mut Vec<StorageDone>,
) -> Result<(), StorageError> {
    let mut unsynced: Option<Zxid> = None;
    let flush = |log: &mut dyn LogStore,
                 unsynced: &mut Option<Zxid>,
                 reports: &mut Vec<StorageDone>|
     -> Result<(), StorageError> {
        if let Some(z) = unsynced.take() {
            let _span = tracing::trace_span!("fsync", upto = %z).entered();
            log.sync()?;
            reports.push(StorageDone::Durable(z));
        }
        Ok(())
    };
    for cmd in cmds {
        let ops = match cmd {
            LogCmd::Purge(z) => {
                flush(log, &mut unsynced, reports)?;
                log.purge_before(z)?;
                continue;
            }
            LogCmd::Ops(ops) => ops,
        };
        for op in ops {
            match op {
                StorageOp::Append(es) => {
                    let last = es.last().map(|e| e.zxid);
                    // Moved, not cloned: a memory store keeps these very handles.
                    log.append_owned(
                        es.into_iter()
                            .map(|e| LogEntry {
                                zxid: e.zxid.to_u64(),
                                payload: e.payload,
                            })
                            .collect(),
                    )?;
                    if let Some(last) = last {
                        unsynced = Some(last);
                    }
                }
                StorageOp::Truncate(z) => {
                    flush(log, &mut unsynced, reports)?;
                    log.truncate_after(z.to_u64())?;
                    reports.push(StorageDone::Truncated(z));
                }
                StorageOp::InstallSnapshot { zxid, data } => {
                    flush(log, &mut unsynced, reports)?;
                    write_snapshot(snaps, zxid.to_u64(), &data)?;
                    log.reset(zxid.to_u64())?;
                    reports.push(StorageDone::SnapshotInstalled(zxid));
                }
                StorageOp::SaveAcceptedEpoch(e) => {
                    flush(log, &mut unsynced, reports)?;
                    let mut ep = epochs.epochs();
                    ep.accepted_epoch = ep.accepted_epoch.max(e);
                    epochs.save(ep)?;
                    reports.push(StorageDone::AcceptedEpoch(e));
                }
                StorageOp::SaveCurrentEpoch(e) => {
                    flush(log, &mut unsynced, reports)?;
                    let mut ep = epochs.epochs();
                    ep.current_epoch = ep.current_epoch.max(e);
                    ep.accepted_epoch = ep.accepted_epoch.max(e);
                    epochs.save(ep)?;
                    reports.push(StorageDone::CurrentEpoch(e));
                }
                StorageOp::ReadLog(op) => {
                    // Appends of this batch are in the store already (a read sees the
                    // unsynced tail), so no flush: the read does not cost an fsync.
                    reports.push(crate::server::read_log(log, &op));
                }
                #[allow(unreachable_patterns)] // StorageOp is non_exhaustive for other crates
                other => {
                    tracing::error!(op = ?other, "unknown storage op");
                }
            }
        }
    }
    flush(log, &mut unsynced, reports)
}

/// Most log entries a pass's append reserves room for up front.
const APPEND_HINT_MAX: usize = 4096;

/// The storage ops of one pass of the core loop, in issue order. An append that
/// directly follows another append joins it, so a pass's proposals reach the log in
/// one call (one storage op, one `append_owned`) instead of one per proposal; storage
/// order is unchanged, since only neighbours merge.
#[derive(Debug, Default)]
pub(crate) struct StorageQueue {
    ops: Vec<StorageOp>,
    /// Entries the last pass's largest append held: a new append reserves as many, so
    /// it does not regrow (copying itself) while the pass fills it.
    hint: usize,
}

impl StorageQueue {
    /// Queues `op` after the ops already queued (an append joins an append right
    /// before it). A failure of a joined append fails all of it, as it would have
    /// failed the node anyway.
    pub(crate) fn push(&mut self, op: StorageOp) {
        match (op, self.ops.last_mut()) {
            (StorageOp::Append(es), Some(StorageOp::Append(open))) => open.extend(es),
            (StorageOp::Append(es), _) if es.capacity() < self.hint => {
                let mut open = Vec::with_capacity(self.hint);
                open.extend(es);
                self.ops.push(StorageOp::Append(open));
            }
            (op, _) => self.ops.push(op),
        }
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Takes the queued ops, remembering how large this pass's largest append was (a
    /// pass without appends keeps the last hint).
    pub(crate) fn take(&mut self) -> Vec<StorageOp> {
        let largest = self.ops.iter().filter_map(|op| match op {
            StorageOp::Append(es) => Some(es.len()),
            _ => None,
        });
        if let Some(n) = largest.max() {
            self.hint = n.min(APPEND_HINT_MAX);
        }
        std::mem::take(&mut self.ops)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn append(counters: std::ops::Range<u32>) -> StorageOp {
        StorageOp::Append(
            counters
                .map(|c| Entry {
                    zxid: Zxid::new(1, c),
                    payload: bytes::Bytes::new(),
                })
                .collect(),
        )
    }

    fn shape(ops: &[StorageOp]) -> Vec<String> {
        ops.iter()
            .map(|op| match op {
                StorageOp::Append(es) => {
                    let cs: Vec<String> = es.iter().map(|e| e.zxid.counter.to_string()).collect();
                    format!("append {}", cs.join(","))
                }
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn neighbouring_appends_join_and_storage_order_holds() {
        let mut q = StorageQueue::default();
        q.push(append(1..2));
        q.push(append(2..4));
        q.push(StorageOp::SaveCurrentEpoch(2));
        q.push(append(4..5));
        q.push(StorageOp::Truncate(Zxid::new(1, 4)));
        q.push(append(5..6));
        q.push(append(6..7));
        assert_eq!(
            shape(&q.take()),
            [
                "append 1,2,3",
                "SaveCurrentEpoch(2)",
                "append 4",
                "Truncate(1:4)",
                "append 5,6",
            ]
        );
        assert!(q.is_empty());
        // The next pass's first append is reserved for the last pass's largest, and a
        // pass without appends does not forget it.
        q.push(StorageOp::SaveAcceptedEpoch(3));
        q.take();
        q.push(append(7..8));
        let ops = q.take();
        let [StorageOp::Append(es)] = ops.as_slice() else {
            panic!("{ops:?}")
        };
        assert!(es.capacity() >= 3, "{}", es.capacity());
        // The reservation is capped.
        q.push(append(8..(9 + APPEND_HINT_MAX as u32)));
        q.take();
        q.push(append(0..1));
        let ops = q.take();
        let [StorageOp::Append(es)] = ops.as_slice() else {
            panic!("{ops:?}")
        };
        assert!(es.capacity() < 2 * APPEND_HINT_MAX, "{}", es.capacity());
    }
}
