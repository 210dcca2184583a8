//! Fault injection: SimLog crash model, FaultyLog, and group commit under failures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use bytes::Bytes;
use storage::{
    FaultyLog, FileLog, FileLogOptions, GroupCommitLog, LogEntry, LogStore, MemLog, SimLog,
    StorageError,
};

fn e(z: u64) -> LogEntry {
    LogEntry::new(z, Bytes::from(format!("txn {z}")))
}

fn batch(r: std::ops::RangeInclusive<u64>) -> Vec<LogEntry> {
    r.map(e).collect()
}

#[test]
fn crash_keeps_synced_entries_and_a_seeded_prefix_of_the_rest() {
    let mut kept_counts = std::collections::BTreeSet::new();
    for seed in 0..64 {
        let mut log = SimLog::new(seed);
        log.append(&batch(1..=10)).unwrap();
        log.sync().unwrap();
        log.append(&batch(11..=20)).unwrap();
        let report = log.crash().unwrap();
        assert_eq!(report.kept_unsynced + report.lost, 10);
        let last = log.last_zxid().unwrap();
        assert_eq!(last, 10 + report.kept_unsynced as u64);
        assert_eq!(
            log.durable_zxid(),
            last,
            "recovery makes what it kept durable"
        );
        assert_eq!(log.read_range(1, 20).unwrap(), batch(1..=last));
        kept_counts.insert(report.kept_unsynced);
        // Same seed, same choices.
        let mut again = SimLog::new(seed);
        again.append(&batch(1..=10)).unwrap();
        again.sync().unwrap();
        again.append(&batch(11..=20)).unwrap();
        assert_eq!(again.crash().unwrap(), report);
    }
    assert!(
        kept_counts.len() > 3,
        "crash choices should vary across seeds"
    );
}

#[test]
fn flipped_tail_is_cut_and_flipped_middle_fails_recovery() {
    let mut log = SimLog::new(1);
    log.append(&batch(1..=5)).unwrap();
    log.sync().unwrap();
    assert!(log.flip_bit(5));
    assert!(log.read_range(1, 5).unwrap_err().is_damage());
    let report = log.crash().unwrap();
    assert!(report.cut_corrupt_tail);
    assert_eq!(log.last_zxid(), Some(4));

    assert!(log.flip_bit(2));
    assert!(log.crash().unwrap_err().is_damage());
    assert!(
        log.append(&batch(5..=5)).is_err(),
        "a broken log refuses work"
    );
    log.reset(4).unwrap();
    log.append(&batch(5..=6)).unwrap();
    assert_eq!(log.sync().unwrap(), 6);
}

#[test]
fn failed_sync_poisons_until_crash_and_reports_nothing_durable() {
    let mut log = SimLog::new(7);
    log.append(&batch(1..=3)).unwrap();
    log.sync().unwrap();
    log.append(&batch(4..=6)).unwrap();
    log.fail_next_sync();
    assert!(matches!(log.sync(), Err(StorageError::Injected { .. })));
    assert_eq!(log.durable_zxid(), 3);
    assert!(matches!(
        log.append(&batch(7..=7)),
        Err(StorageError::Poisoned)
    ));
    log.crash().unwrap();
    assert!(log.last_zxid().unwrap() >= 3);
    let next = log.last_zxid().unwrap() + 1;
    log.append(&[e(next)]).unwrap();
    assert_eq!(log.sync().unwrap(), next);
}

#[test]
fn faulty_wrapper_fails_sync_and_append_on_a_real_file_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = FaultyLog::new(FileLog::open(dir.path(), FileLogOptions::default()).unwrap());
    log.append(&batch(1..=3)).unwrap();
    log.fail_next_sync();
    assert!(log.sync().unwrap_err().is_fatal());
    assert_eq!(log.durable_zxid(), 0);
    assert!(matches!(log.sync(), Err(StorageError::Poisoned)));
    // "Reopen": recovery decides; the data reached the OS, so it is there.
    drop(log);
    let mut log = FaultyLog::new(FileLog::open(dir.path(), FileLogOptions::default()).unwrap());
    assert_eq!(log.last_zxid(), Some(3));
    log.fail_next_append();
    assert!(log.append(&batch(4..=4)).is_err());
    assert_eq!(log.last_zxid(), Some(3));
}

#[test]
fn group_commit_reports_a_failed_fsync_to_the_waiter() {
    let mut inner = FaultyLog::new(MemLog::new());
    inner.fail_next_sync();
    let gc = GroupCommitLog::new(inner);
    assert!(gc.append_durable(&batch(1..=2)).unwrap_err().is_fatal());
    assert!(matches!(
        gc.append_durable(&batch(3..=3)),
        Err(StorageError::Poisoned)
    ));
    assert_eq!(gc.durable_zxid(), 0);
}

#[test]
fn group_commit_over_file_log_from_many_threads() {
    let dir = tempfile::tempdir().unwrap();
    let opts = FileLogOptions {
        segment_bytes: 16 << 10,
        prealloc_bytes: 8 << 10,
        ..FileLogOptions::default()
    };
    let gc = Arc::new(GroupCommitLog::new(
        FileLog::open(dir.path(), opts.clone()).unwrap(),
    ));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let gc = gc.clone();
            std::thread::spawn(move || {
                for i in 0..50u64 {
                    let z = gc
                        .append_next_durable(|z| Bytes::from(format!("t{t} i{i} z{z}")))
                        .unwrap();
                    assert!(gc.durable_zxid() >= z);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stats = gc.stats();
    assert_eq!(stats.entries, 400);
    assert!(stats.syncs >= 1 && stats.syncs <= 400);
    let log = Arc::try_unwrap(gc).ok().unwrap().into_inner();
    drop(log);
    let log = FileLog::open(dir.path(), opts).unwrap();
    let all = log.read_range(1, 400).unwrap();
    assert_eq!(all.len(), 400);
    for entry in all {
        let text = String::from_utf8(entry.payload.to_vec()).unwrap();
        assert!(text.ends_with(&format!("z{}", entry.zxid)));
    }
}

#[test]
fn group_commit_writer_thread_pattern() {
    // The Node's pattern: the core thread appends without blocking; a writer thread
    // syncs and reports "durable up to".
    let gc = Arc::new(GroupCommitLog::new(MemLog::new()));
    let (tx, rx) = std::sync::mpsc::channel::<u64>();
    let writer = {
        let gc = gc.clone();
        std::thread::spawn(move || {
            let mut reported = 0;
            while reported < 100 {
                let d = gc.sync().unwrap();
                if d > reported {
                    reported = d;
                    tx.send(d).unwrap();
                }
            }
        })
    };
    for z in 1..=100 {
        gc.append(&[e(z)]).unwrap();
    }
    let mut last = 0;
    for d in rx {
        assert!(d > last);
        last = d;
    }
    writer.join().unwrap();
    assert_eq!(last, 100);
}

fn truncation_races(gc: GroupCommitLog<FileLog>) {
    let gc = Arc::new(gc);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let gc = gc.clone();
            std::thread::spawn(move || {
                let (mut ok, mut truncated) = (0, 0);
                for _ in 0..200 {
                    match gc.append_next_durable(|z| Bytes::from(format!("z{z}"))) {
                        Ok(_) => ok += 1,
                        Err(StorageError::Truncated { .. }) => truncated += 1,
                        Err(e) => panic!("unexpected {e}"),
                    }
                }
                (ok, truncated)
            })
        })
        .collect();
    for _ in 0..20 {
        gc.with_log(|l| {
            let last = l.last_zxid().unwrap_or(0);
            l.truncate_after(last.saturating_sub(3)).unwrap();
        });
        std::thread::yield_now();
    }
    let mut total = 0;
    for t in threads {
        let (ok, truncated) = t.join().unwrap();
        total += ok + truncated;
    }
    assert_eq!(total, 800);
    let log = Arc::try_unwrap(gc).ok().unwrap().into_inner();
    let last = log.last_zxid().unwrap();
    assert_eq!(log.durable_zxid(), last);
    let all = log.read_range(1, last).unwrap();
    assert!(all.iter().all(|e| e.payload == format!("z{}", e.zxid)));
}

#[test]
fn truncation_while_appenders_wait_never_hangs_or_lies() {
    let dir = tempfile::tempdir().unwrap();
    let opts = FileLogOptions::default();
    truncation_races(GroupCommitLog::new(
        FileLog::open(dir.path().join("a"), opts.clone()).unwrap(),
    ));
    truncation_races(
        GroupCommitLog::with_flusher(FileLog::open(dir.path().join("b"), opts).unwrap()).unwrap(),
    );
}
