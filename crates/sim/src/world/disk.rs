//! One server's simulated disk: a [`SimLog`] (crashes lose unsynced writes, sometimes
//! tearing the tail), durable epochs and snapshots, and a FIFO of storage ops that
//! complete after a seeded latency, in issue order, as the Node's log writer does.

use std::collections::VecDeque;

use bytes::Bytes;
use ensemble::{StorageDone, StorageOp};
use storage::{LogEntry, LogStore, SimLog, StorageError};
use zab_core::{Entry, Persisted, Zxid};

use crate::config::Sabotage;

/// A crash-consistent view of what a restarted server loads.
pub(crate) struct Recovered {
    pub persisted: Persisted,
    pub state: Option<Bytes>,
    pub report: String,
}

/// The disk of one server.
pub(crate) struct Disk {
    log: SimLog,
    accepted_epoch: u32,
    current_epoch: u32,
    /// Durable snapshots (zxid, state bytes), oldest first.
    snapshots: Vec<(u64, Bytes)>,
    /// Ops waiting for the device, with the time each may start.
    queue: VecDeque<(u64, DiskOp)>,
    /// Last appended zxid not yet synced (and not yet reported Durable).
    unsynced: Option<Zxid>,
    /// Completions reported ahead of durability (AckBeforeDurable sabotage).
    early_acked: Option<Zxid>,
    sabotage: Sabotage,
}

/// One queued op: a server's storage op, or the purge that follows a snapshot.
enum DiskOp {
    Storage(StorageOp),
    Purge(u64),
}

/// Ops queued on a disk before its device stalls the server (bounds the loop).
pub(crate) const DISK_QUEUE_MAX: usize = 100_000;

impl Disk {
    pub(crate) fn new(seed: u64, sabotage: Sabotage) -> Disk {
        Disk {
            log: SimLog::new(seed),
            accepted_epoch: 0,
            current_epoch: 0,
            snapshots: Vec::new(),
            queue: VecDeque::new(),
            unsynced: None,
            early_acked: None,
            sabotage,
        }
    }

    /// Queues an op to run at or after `due_us`. Returns the completions owed right
    /// now (only with the AckBeforeDurable sabotage).
    pub(crate) fn submit(&mut self, due_us: u64, op: StorageOp) -> Vec<StorageDone> {
        let mut early = Vec::new();
        if self.sabotage == Sabotage::AckBeforeDurable {
            if let StorageOp::Append(es) = &op {
                if let Some(last) = es.last() {
                    early.push(StorageDone::Durable(last.zxid));
                    self.early_acked = Some(last.zxid);
                }
            }
        }
        let due = self.queue.back().map_or(due_us, |(d, _)| (*d).max(due_us));
        self.queue.push_back((due, DiskOp::Storage(op)));
        early
    }

    /// When the next queued op may run.
    pub(crate) fn next_due_us(&self) -> Option<u64> {
        self.queue.front().map(|(d, _)| *d)
    }

    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Runs every op due by `now_us`, in order; returns the completions in order.
    pub(crate) fn run_due(&mut self, now_us: u64) -> Result<Vec<StorageDone>, StorageError> {
        let mut done = Vec::new();
        while let Some((due, _)) = self.queue.front() {
            if *due > now_us {
                break;
            }
            match self.queue.pop_front() {
                Some((_, DiskOp::Storage(op))) => self.run(op, &mut done)?,
                Some((_, DiskOp::Purge(z))) => {
                    self.flush(&mut done)?;
                    self.log.purge_before(z)?;
                }
                None => break,
            }
        }
        // The device syncs what it wrote before reporting (group commit of one batch).
        self.flush(&mut done)?;
        Ok(done)
    }

    fn flush(&mut self, done: &mut Vec<StorageDone>) -> Result<(), StorageError> {
        if let Some(z) = self.unsynced.take() {
            self.log.sync()?;
            if self.sabotage != Sabotage::AckBeforeDurable {
                done.push(StorageDone::Durable(z));
            }
        }
        Ok(())
    }

    fn run(&mut self, op: StorageOp, done: &mut Vec<StorageDone>) -> Result<(), StorageError> {
        match op {
            StorageOp::Append(es) => {
                let entries: Vec<LogEntry> = es
                    .iter()
                    .map(|e| LogEntry {
                        zxid: e.zxid.to_u64(),
                        payload: e.payload.clone(),
                    })
                    .collect();
                self.log.append(&entries)?;
                if let Some(last) = es.last() {
                    self.unsynced = Some(last.zxid);
                }
            }
            StorageOp::Truncate(z) => {
                self.flush(done)?;
                if self.sabotage != Sabotage::SkipTruncate {
                    self.log.truncate_after(z.to_u64())?;
                }
                done.push(StorageDone::Truncated(z));
            }
            StorageOp::InstallSnapshot { zxid, data } => {
                self.flush(done)?;
                self.snapshots.push((zxid.to_u64(), data));
                self.retain_snapshots();
                self.log.reset(zxid.to_u64())?;
                done.push(StorageDone::SnapshotInstalled(zxid));
            }
            StorageOp::SaveAcceptedEpoch(e) => {
                self.flush(done)?;
                if self.sabotage != Sabotage::ForgetEpochs {
                    self.accepted_epoch = self.accepted_epoch.max(e);
                }
                done.push(StorageDone::AcceptedEpoch(e));
            }
            StorageOp::SaveCurrentEpoch(e) => {
                self.flush(done)?;
                if self.sabotage != Sabotage::ForgetEpochs {
                    self.current_epoch = self.current_epoch.max(e);
                    self.accepted_epoch = self.accepted_epoch.max(e);
                }
                done.push(StorageDone::CurrentEpoch(e));
            }
            StorageOp::ReadLog(op) => {
                // Sees the unsynced tail, like the node's log writer: no flush.
                done.push(ensemble::server::read_log(&self.log, &op));
            }
            // StorageOp is non_exhaustive: an op this simulator does not know yet is
            // completed without effect (and shows up in the trace).
            #[allow(unreachable_patterns)]
            _ => {}
        }
        Ok(())
    }

    fn retain_snapshots(&mut self) {
        self.snapshots.sort_by_key(|(z, _)| *z);
        while self.snapshots.len() > 3 {
            self.snapshots.remove(0);
        }
    }

    /// A periodic snapshot of the server's state at `zxid` (durable at once); the
    /// purge of the log before the previous snapshot queues behind the pending ops,
    /// as the Node's snapshot thread asks its log writer.
    pub(crate) fn save_snapshot(&mut self, now_us: u64, zxid: u64, data: Bytes) {
        let purge_at = if self.sabotage == Sabotage::PurgeWithoutSnapshot {
            Some(zxid)
        } else {
            self.snapshots.push((zxid, data));
            self.retain_snapshots();
            self.snapshots.iter().rev().nth(1).map(|(z, _)| *z)
        };
        if let Some(z) = purge_at {
            let due = self.queue.back().map_or(now_us, |(d, _)| (*d).max(now_us));
            self.queue.push_back((due, DiskOp::Purge(z)));
        }
    }

    /// The machine crashed: queued ops are lost, unsynced log writes may be lost or
    /// torn. Returns what recovery loads.
    pub(crate) fn crash_and_recover(&mut self) -> Result<Recovered, StorageError> {
        self.queue.clear();
        self.unsynced = None;
        self.early_acked = None;
        let report = match self.log.crash() {
            Ok(r) => format!(
                "kept {} unsynced, lost {}, torn {}",
                r.kept_unsynced, r.lost, r.torn
            ),
            Err(e) => {
                let base = self.snapshots.last().map_or(0, |(z, _)| *z);
                self.log.reset(base)?;
                format!("log unrecoverable ({e}); reset to the snapshot")
            }
        };
        let (snapshot_zxid, state) = match self.snapshots.last() {
            Some((z, d)) => (*z, Some(d.clone())),
            None => (0, None),
        };
        if storage::check_log_continues_snapshot(
            &self.log,
            snapshot_zxid,
            std::path::Path::new("simlog"),
        )
        .is_err()
        {
            self.log.reset(snapshot_zxid)?;
        }
        // As the node's recovery: a log that ends before the snapshot restarts there.
        if self.log.last_zxid().unwrap_or_else(|| self.log.base_zxid()) < snapshot_zxid {
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
        Ok(Recovered {
            persisted: Persisted::new(
                self.accepted_epoch,
                self.current_epoch,
                Zxid::from_u64(snapshot_zxid),
                Zxid::from_u64(base),
                log,
            ),
            state,
            report,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn entry(c: u32) -> Entry {
        Entry {
            zxid: Zxid::new(1, c),
            payload: Bytes::from_static(b"x"),
        }
    }

    #[test]
    fn completions_come_in_order_after_their_due_time() {
        let mut d = Disk::new(1, Sabotage::None);
        assert!(d.submit(10, StorageOp::Append(vec![entry(1)])).is_empty());
        d.submit(5, StorageOp::SaveAcceptedEpoch(2));
        assert_eq!(d.next_due_us(), Some(10));
        assert!(d.run_due(9).unwrap().is_empty());
        let done = d.run_due(10).unwrap();
        assert_eq!(
            done,
            vec![
                StorageDone::Durable(Zxid::new(1, 1)),
                StorageDone::AcceptedEpoch(2)
            ]
        );
    }

    #[test]
    fn synced_entries_survive_a_crash_and_queued_ones_do_not() {
        let mut d = Disk::new(3, Sabotage::None);
        d.submit(0, StorageOp::Append(vec![entry(1), entry(2)]));
        d.run_due(0).unwrap();
        d.submit(100, StorageOp::Append(vec![entry(3)]));
        let r = d.crash_and_recover().unwrap();
        assert_eq!(r.persisted.log.len(), 2);
        assert_eq!(d.queued(), 0);
    }

    #[test]
    fn ack_before_durable_reports_at_submit() {
        let mut d = Disk::new(3, Sabotage::AckBeforeDurable);
        let early = d.submit(100, StorageOp::Append(vec![entry(1)]));
        assert_eq!(early, vec![StorageDone::Durable(Zxid::new(1, 1))]);
        assert!(d.run_due(100).unwrap().is_empty());
    }

    #[test]
    fn forget_epochs_loses_them_at_restart() {
        let mut d = Disk::new(3, Sabotage::ForgetEpochs);
        d.submit(0, StorageOp::SaveCurrentEpoch(4));
        assert_eq!(d.run_due(0).unwrap(), vec![StorageDone::CurrentEpoch(4)]);
        let r = d.crash_and_recover().unwrap();
        assert_eq!(r.persisted.current_epoch, 0);
    }
}
