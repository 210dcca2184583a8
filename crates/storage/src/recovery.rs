//! Startup recovery: the newest valid snapshot plus the log entries after it.

use std::path::Path;

use crate::log::check_log_continues_snapshot;
use crate::{LogStore, OpenedSnapshot, SnapshotStore, StorageError};

/// What a server loads at startup: a snapshot (if any) and the log range to replay.
#[derive(Debug)]
pub struct RecoveryPlan {
    /// The newest valid snapshot (with the invalid newer ones it skipped), if any.
    pub snapshot: Option<OpenedSnapshot>,
    /// The zxid the snapshot covers (0 without a snapshot).
    pub snapshot_zxid: u64,
    /// Replay every log entry with a zxid in `(snapshot_zxid, replay_to]` (page through
    /// it with [`LogStore::read_chunk`]); `None` when the log holds nothing after the
    /// snapshot.
    pub replay_to: Option<u64>,
}

/// Picks the newest valid snapshot and checks that `log` continues it without a gap:
/// if the log's base is above the snapshot (entries between them were purged, or the
/// snapshot that covered them is damaged) the answer is [`StorageError::Gap`] naming
/// `log_name`, never a silent skip (ZooKeeper has lost data exactly there). A learner
/// that gets this error can [`LogStore::reset`] its log and take a snapshot from the
/// leader instead.
pub fn plan_recovery(
    log: &dyn LogStore,
    snapshots: &dyn SnapshotStore,
    log_name: &Path,
) -> Result<RecoveryPlan, StorageError> {
    let snapshot = snapshots.open_newest_valid()?;
    if let Some(s) = &snapshot {
        for skipped in &s.skipped {
            tracing::warn!(zxid = skipped.zxid, error = %skipped.error, "invalid snapshot skipped");
        }
    }
    let snapshot_zxid = snapshot.as_ref().map_or(0, |s| s.info.zxid);
    check_log_continues_snapshot(log, snapshot_zxid, log_name)?;
    let replay_to = log.last_zxid().filter(|last| *last > snapshot_zxid);
    Ok(RecoveryPlan {
        snapshot,
        snapshot_zxid,
        replay_to,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::io::Write;

    use super::*;
    use crate::{FileLog, FileLogOptions, FileSnapshotStore, LogEntry};

    fn setup(dir: &Path) -> (FileLog, FileSnapshotStore) {
        let opts = FileLogOptions {
            segment_bytes: 1024,
            prealloc_bytes: 0,
            ..FileLogOptions::default()
        };
        let mut log = FileLog::open(dir.join("log"), opts).unwrap();
        let batch: Vec<LogEntry> = (1..=200)
            .map(|z| LogEntry::new(z, vec![z as u8; 30]))
            .collect();
        log.append(&batch).unwrap();
        log.sync().unwrap();
        let snaps = FileSnapshotStore::open(dir.join("snap")).unwrap();
        for z in [50, 150] {
            let mut w = snaps.begin(z).unwrap();
            w.write_all(b"tree").unwrap();
            w.finish().unwrap();
        }
        (log, snaps)
    }

    #[test]
    fn newest_snapshot_then_the_log_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, snaps) = setup(dir.path());
        log.purge_before(150).unwrap();
        let plan = plan_recovery(&log, &snaps, dir.path()).unwrap();
        assert_eq!(plan.snapshot_zxid, 150);
        assert_eq!(plan.replay_to, Some(200));
    }

    #[test]
    fn damaged_newest_snapshot_with_purged_log_is_a_gap_not_a_silent_skip() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, snaps) = setup(dir.path());
        log.purge_before(150).unwrap();
        crate::fault::flip_bit_in_file(&snaps.path_of(150), 25, 0).unwrap();
        assert!(matches!(
            plan_recovery(&log, &snaps, dir.path()),
            Err(StorageError::Gap {
                required_after: 50,
                ..
            })
        ));
    }

    #[test]
    fn damaged_newest_snapshot_falls_back_when_the_log_still_covers_it() {
        let dir = tempfile::tempdir().unwrap();
        let (log, snaps) = setup(dir.path());
        crate::fault::flip_bit_in_file(&snaps.path_of(150), 25, 0).unwrap();
        let plan = plan_recovery(&log, &snaps, dir.path()).unwrap();
        assert_eq!(plan.snapshot_zxid, 50);
        assert_eq!(plan.snapshot.as_ref().unwrap().skipped.len(), 1);
        assert_eq!(plan.replay_to, Some(200));
    }
}
