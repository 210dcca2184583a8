//! FileLog recovery and layout tests on real files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use super::*;
use crate::conformance::payload_for;
use crate::fault::{flip_bit_in_file, truncate_file, zero_range_in_file};
use crate::frame::RECORD_HEADER_BYTES;

fn tiny() -> FileLogOptions {
    FileLogOptions {
        segment_bytes: 1024,
        prealloc_bytes: 512,
        ..FileLogOptions::default()
    }
}

fn entry(z: u64) -> LogEntry {
    LogEntry::new(z, payload_for(z, 40))
}

fn write_log(dir: &Path, opts: &FileLogOptions, upto: u64) -> FileLog {
    let mut log = FileLog::open(dir, opts.clone()).unwrap();
    let batch: Vec<LogEntry> = (1..=upto).map(entry).collect();
    log.append(&batch).unwrap();
    log.sync().unwrap();
    log
}

/// A tiny-segment log of zxids 1..=100 in a fresh directory, purged before 60.
fn purged_log() -> (tempfile::TempDir, FileLogOptions, FileLog) {
    let dir = tempfile::tempdir().unwrap();
    let opts = tiny();
    let mut log = write_log(dir.path(), &opts, 100);
    log.purge_before(60).unwrap();
    (dir, opts, log)
}

fn reopen(dir: &Path, opts: &FileLogOptions) -> Result<FileLog, StorageError> {
    FileLog::open(dir, opts.clone())
}

#[test]
fn torn_final_record_in_preallocated_file_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let opts = FileLogOptions::default();
    let log = write_log(dir.path(), &opts, 10);
    let (path, offset) = log.record_location(10).unwrap();
    drop(log);
    // Only the first 5 bytes of record 10 reached the disk.
    zero_range_in_file(&path, offset + 5, RECORD_HEADER_BYTES + 35).unwrap();
    let mut log = reopen(dir.path(), &opts).unwrap();
    assert_eq!(log.last_zxid(), Some(9));
    assert_eq!(log.durable_zxid(), 9);
    let (torn_file, torn_at, _) = log.recovery_report().torn_tail.clone().unwrap();
    assert_eq!((torn_file, torn_at), (path.clone(), offset));
    log.append(&[entry(10), entry(11)]).unwrap();
    log.sync().unwrap();
    drop(log);
    let log = reopen(dir.path(), &opts).unwrap();
    assert_eq!(log.read_range(1, 20).unwrap().len(), 11);
}

#[test]
fn torn_final_record_without_preallocation_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let opts = FileLogOptions {
        prealloc_bytes: 0,
        ..FileLogOptions::default()
    };
    let log = write_log(dir.path(), &opts, 10);
    let (path, offset) = log.record_location(10).unwrap();
    drop(log);
    for cut in [offset + 3, offset + RECORD_HEADER_BYTES as u64 + 7] {
        truncate_file(&path, cut).unwrap();
        let log = reopen(dir.path(), &opts).unwrap();
        assert_eq!(log.last_zxid(), Some(9));
    }
}

#[test]
fn bit_flip_in_the_final_record_is_cut_as_torn() {
    let dir = tempfile::tempdir().unwrap();
    let opts = FileLogOptions::default();
    let log = write_log(dir.path(), &opts, 10);
    let (path, offset) = log.record_location(10).unwrap();
    drop(log);
    flip_bit_in_file(&path, offset + RECORD_HEADER_BYTES as u64 + 3, 2).unwrap();
    assert_eq!(reopen(dir.path(), &opts).unwrap().last_zxid(), Some(9));
}

#[test]
fn bit_flip_before_the_tail_is_corrupt_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let opts = FileLogOptions::default();
    let log = write_log(dir.path(), &opts, 10);
    let (path, offset) = log.record_location(5).unwrap();
    drop(log);
    flip_bit_in_file(&path, offset + 20, 0).unwrap();
    match reopen(dir.path(), &opts) {
        Err(StorageError::Corrupt {
            file, offset: at, ..
        }) => {
            assert_eq!(file, path);
            assert_eq!(at, offset);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn length_field_pointing_past_the_file_is_corruption_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let opts = FileLogOptions::default();
    let log = write_log(dir.path(), &opts, 10);
    let (path, offset) = log.record_location(4).unwrap();
    let (_, last_offset) = log.record_location(10).unwrap();
    drop(log);
    // Bit 30 of the length: ~1 GiB, beyond MAX_RECORD_BYTES and the file.
    flip_bit_in_file(&path, offset + 3, 6).unwrap();
    assert!(matches!(
        reopen(dir.path(), &opts),
        Err(StorageError::Corrupt { offset: at, .. }) if at == offset
    ));
    flip_bit_in_file(&path, offset + 3, 6).unwrap();
    // The same damage in the last record is a torn tail.
    flip_bit_in_file(&path, last_offset + 3, 6).unwrap();
    assert_eq!(reopen(dir.path(), &opts).unwrap().last_zxid(), Some(9));
}

#[test]
fn zeroed_record_followed_by_valid_records_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let opts = FileLogOptions::default();
    let log = write_log(dir.path(), &opts, 10);
    let (path, offset) = log.record_location(6).unwrap();
    drop(log);
    zero_range_in_file(&path, offset, RECORD_HEADER_BYTES + 40).unwrap();
    assert!(matches!(
        reopen(dir.path(), &opts),
        Err(StorageError::Corrupt { offset: at, .. }) if at == offset
    ));
}

#[test]
fn segments_roll_over_named_by_first_zxid_and_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let opts = tiny();
    let log = write_log(dir.path(), &opts, 100);
    let paths = log.segment_paths();
    assert!(
        paths.len() > 5,
        "expected several segments, got {}",
        paths.len()
    );
    for (i, seg) in log.segments.iter().enumerate() {
        let first = seg.index[0].0;
        assert_eq!(
            seg.path.file_name().unwrap().to_str().unwrap(),
            format!("log.{first:016x}")
        );
        if i + 1 < log.segments.len() {
            let len = std::fs::metadata(&seg.path).unwrap().len();
            assert_eq!(len, seg.written, "full segments are trimmed");
            assert_eq!(
                log.segments[i + 1].header.prev_zxid,
                seg.index.last().unwrap().0
            );
        }
    }
    drop(log);
    assert_eq!(
        reopen(dir.path(), &opts)
            .unwrap()
            .read_range(1, 100)
            .unwrap()
            .len(),
        100
    );
}

#[test]
fn damage_in_a_full_segment_is_corrupt_even_at_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let opts = tiny();
    let log = write_log(dir.path(), &opts, 100);
    let seg = &log.segments[1];
    let (last_zxid, _) = *seg.index.last().unwrap();
    let (path, offset) = log.record_location(last_zxid).unwrap();
    drop(log);
    flip_bit_in_file(&path, offset + 17, 1).unwrap();
    assert!(matches!(
        reopen(dir.path(), &opts),
        Err(StorageError::Corrupt { file, offset: at, .. }) if file == path && at == offset
    ));
}

#[test]
fn missing_middle_segment_is_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let opts = tiny();
    let log = write_log(dir.path(), &opts, 100);
    let paths = log.segment_paths();
    drop(log);
    std::fs::remove_file(&paths[2]).unwrap();
    match reopen(dir.path(), &opts) {
        Err(StorageError::Gap {
            file,
            offset,
            required_after,
            held_after,
        }) => {
            assert_eq!(file, paths[3]);
            assert_eq!(offset, 0);
            assert!(held_after > required_after);
        }
        other => panic!("expected Gap, got {other:?}"),
    }
}

#[test]
fn log_starting_after_the_snapshot_is_a_gap() {
    let (dir, _opts, log) = purged_log();
    let base = log.base_zxid();
    assert!(base > 0 && base < 60);
    assert!(check_log_continues_snapshot_ok(&log, base));
    assert!(check_log_continues_snapshot_ok(&log, 80));
    assert!(matches!(
        crate::check_log_continues_snapshot(&log, base - 1, dir.path()),
        Err(StorageError::Gap { required_after, held_after, .. })
            if required_after == base - 1 && held_after == base
    ));
}

fn check_log_continues_snapshot_ok(log: &FileLog, snap: u64) -> bool {
    crate::check_log_continues_snapshot(log, snap, log.dir()).is_ok()
}

#[test]
fn damaged_segment_header_is_corrupt_and_torn_new_segment_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let opts = tiny();
    let log = write_log(dir.path(), &opts, 100);
    let paths = log.segment_paths();
    drop(log);
    // A segment created but never written (crash during creation): dropped.
    let extra = dir.path().join(format!("log.{:016x}", 101));
    std::fs::write(&extra, [0u8; 10]).unwrap();
    let log = reopen(dir.path(), &opts).unwrap();
    assert_eq!(log.last_zxid(), Some(100));
    assert!(!extra.exists());
    assert_eq!(log.recovery_report().removed_segments, vec![extra.clone()]);
    drop(log);
    flip_bit_in_file(&paths[1], 9, 0).unwrap();
    assert!(matches!(
        reopen(dir.path(), &opts),
        Err(StorageError::Corrupt { file, offset: 0, .. }) if file == paths[1]
    ));
}

#[test]
fn truncate_across_segments_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let opts = tiny();
    let mut log = write_log(dir.path(), &opts, 100);
    log.truncate_after(23).unwrap();
    assert_eq!(log.last_zxid(), Some(23));
    log.append(&[entry(30), entry(31)]).unwrap();
    log.sync().unwrap();
    drop(log);
    let log = reopen(dir.path(), &opts).unwrap();
    let zs: Vec<u64> = log
        .read_range(1, 200)
        .unwrap()
        .iter()
        .map(|e| e.zxid)
        .collect();
    let mut want: Vec<u64> = (1..=23).collect();
    want.extend([30, 31]);
    assert_eq!(zs, want);
}

#[test]
fn purge_removes_whole_segments_only() {
    let dir = tempfile::tempdir().unwrap();
    let opts = tiny();
    let mut log = write_log(dir.path(), &opts, 100);
    let before = log.segment_paths().len();
    log.purge_before(50).unwrap();
    let after = log.segment_paths();
    assert!(after.len() < before);
    assert!(log.first_zxid().unwrap() <= 50);
    assert_eq!(log.base_zxid() + 1, log.first_zxid().unwrap());
    log.purge_before(u64::MAX).unwrap();
    assert_eq!(
        log.segment_paths().len(),
        1,
        "the last segment always stays"
    );
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn purged_segments_are_deleted_in_the_background_or_at_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let opts = tiny();
    let mut log = write_log(dir.path(), &opts, 100);
    let kept_before = log.segment_paths().len();
    log.purge_before(50).unwrap();
    let kept = log.segment_paths();
    assert!(kept.len() < kept_before);
    // Dropping the log waits for its reaper: only the kept segments remain.
    drop(log);
    let names = files_in(dir.path());
    assert_eq!(names.len(), kept.len(), "{names:?}");
    assert!(names.iter().all(|n| !n.ends_with(PURGED_SUFFIX)));
    // A purged file a crash left behind is deleted by recovery, and the log reads back.
    let stale = dir.path().join(format!("log.{:016x}{PURGED_SUFFIX}", 1));
    std::fs::write(&stale, b"old records").unwrap();
    let log = reopen(dir.path(), &opts).unwrap();
    assert!(!stale.exists());
    assert_eq!(log.last_zxid(), Some(100));
    assert_eq!(log.segment_paths(), kept);
}

#[test]
fn a_reset_right_after_a_purge_leaves_no_old_segment_beside_the_new_base() {
    let (dir, opts, mut log) = purged_log();
    // A SNAP install: the reset must not leave purged-but-unrenamed segments behind,
    // or a crash now would read them as a log with a gap before the new base.
    log.reset(500).unwrap();
    let names: Vec<String> = files_in(dir.path())
        .into_iter()
        .filter(|n| !n.ends_with(PURGED_SUFFIX))
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    std::mem::forget(log); // a crash: nothing more is flushed or joined
    let log = reopen(dir.path(), &opts).unwrap();
    assert_eq!(log.base_zxid(), 500);
    assert_eq!(log.last_zxid(), None);
}

#[test]
fn the_reaper_shrinks_a_large_file_step_by_step_then_deletes_it() {
    let dir = tempfile::tempdir().unwrap();
    for hurry in [false, true] {
        let p = dir.path().join(format!("big{hurry}{PURGED_SUFFIX}"));
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(2 * REAP_STEP_BYTES + 123).unwrap();
        drop(f);
        reap(&p, &AtomicBool::new(hurry)).unwrap();
        assert!(!p.exists());
    }
    // A file that is already gone is not an error (recovery may have deleted it).
    reap(&dir.path().join("missing"), &AtomicBool::new(false)).unwrap();
}

#[test]
fn a_sync_overtaken_by_truncation_reports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = FileLog::open(dir.path(), FileLogOptions::default()).unwrap();
    log.append(&(1..=10).map(entry).collect::<Vec<_>>())
        .unwrap();
    let mut pending = log.start_sync().unwrap();
    log.truncate_after(5).unwrap();
    log.append(&[entry(6), entry(7)]).unwrap();
    let result = pending.run();
    assert_eq!(log.finish_sync(pending, result).unwrap(), 5);
    assert_eq!(log.durable_zxid(), 5);
    assert_eq!(log.sync().unwrap(), 7);
}

#[test]
fn unsynced_appends_are_readable_but_lost_if_never_handed_to_the_os() {
    let dir = tempfile::tempdir().unwrap();
    let opts = FileLogOptions::default();
    let mut log = write_log(dir.path(), &opts, 5);
    log.append(&[entry(6), entry(7)]).unwrap();
    assert_eq!(log.read_range(5, 7).unwrap().len(), 3);
    assert_eq!(log.durable_zxid(), 5);
    // Bytes never handed to the OS are lost with the process: only 1..=5 remain.
    drop(log);
    assert_eq!(reopen(dir.path(), &opts).unwrap().last_zxid(), Some(5));
}

mod damage {
    use super::*;
    use proptest::prelude::*;

    /// `PROPTEST_CASES` overrides the default case count.
    fn cases(default: u32) -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    }

    #[derive(Clone, Debug)]
    enum Damage {
        Flip { at: usize, bit: u8 },
        Cut { at: usize },
        Garbage { at: usize, bytes: Vec<u8> },
    }

    fn damage() -> impl Strategy<Value = Damage> {
        prop_oneof![
            (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Damage::Flip { at, bit }),
            any::<usize>().prop_map(|at| Damage::Cut { at }),
            (
                any::<usize>(),
                proptest::collection::vec(any::<u8>(), 1..64)
            )
                .prop_map(|(at, bytes)| Damage::Garbage { at, bytes }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: cases(48), ..ProptestConfig::default() })]

        /// Whatever happens to the files, open never panics, and what it returns is a
        /// prefix of what was written, byte for byte.
        #[test]
        fn damaged_files_give_a_prefix_or_a_typed_error(
            n in 1u64..60,
            damages in proptest::collection::vec((any::<usize>(), damage()), 1..4),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let opts = tiny();
            let log = write_log(dir.path(), &opts, n);
            let paths = log.segment_paths();
            drop(log);
            for (which, d) in damages {
                let path = &paths[which % paths.len()];
                let mut bytes = std::fs::read(path).unwrap();
                match d {
                    Damage::Flip { at, bit } => {
                        if !bytes.is_empty() {
                            let i = at % bytes.len();
                            bytes[i] ^= 1 << bit;
                        }
                    }
                    Damage::Cut { at } => bytes.truncate(at % (bytes.len() + 1)),
                    Damage::Garbage { at, bytes: g } => {
                        let i = at % (bytes.len() + 1);
                        let end = (i + g.len()).min(bytes.len());
                        bytes.splice(i..end, g);
                    }
                }
                std::fs::write(path, bytes).unwrap();
            }
            match reopen(dir.path(), &opts) {
                Ok(log) => {
                    let base = log.base_zxid();
                    let got = log.read_range(base + 1, u64::MAX).unwrap();
                    for (i, e) in got.iter().enumerate() {
                        prop_assert_eq!(e.zxid, base + 1 + i as u64);
                        prop_assert_eq!(&e.payload, &entry(e.zxid).payload);
                    }
                }
                Err(e) => prop_assert!(
                    e.is_damage() || matches!(e, StorageError::Io { .. }),
                    "unexpected error {e}"
                ),
            }
        }
    }
}

#[test]
fn options_out_of_range_are_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    for opts in [
        FileLogOptions {
            segment_bytes: 0,
            ..FileLogOptions::default()
        },
        FileLogOptions {
            segment_bytes: MAX_SEGMENT_BYTES + 1,
            ..FileLogOptions::default()
        },
        FileLogOptions {
            max_record_bytes: MAX_RECORD_BYTES + 1,
            ..FileLogOptions::default()
        },
    ] {
        assert!(matches!(
            FileLog::open(dir.path(), opts),
            Err(StorageError::InvalidOptions { .. })
        ));
    }
}

#[test]
fn oversized_segment_file_is_corrupt_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("log.{:016x}", 1));
    let f = std::fs::File::create(&path).unwrap();
    // Sparse: no disk space is used, and recovery must not try to read it.
    f.set_len(MAX_SEGMENT_FILE_BYTES + 1).unwrap();
    assert!(matches!(
        FileLog::open(dir.path(), FileLogOptions::default()),
        Err(StorageError::Corrupt { offset: 0, .. })
    ));
}

/// Appends `n` entries of `bytes` each after zxid `after`, one sync per 64.
fn append_big(log: &mut FileLog, after: u64, n: u64, bytes: usize) {
    for chunk in (after + 1..=after + n).collect::<Vec<_>>().chunks(64) {
        let batch: Vec<LogEntry> = chunk
            .iter()
            .map(|&z| LogEntry::new(z, payload_for(z, bytes)))
            .collect();
        log.append(&batch).unwrap();
        log.sync().unwrap();
    }
}

#[test]
fn with_fsync_off_segments_are_written_back_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let opts = FileLogOptions {
        segment_bytes: 12 << 20,
        fsync: FsyncPolicy::Never,
        ..FileLogOptions::default()
    };
    let mut log = FileLog::open(dir.path(), opts.clone()).unwrap();
    // ~26 MiB: one roll, and more than FLUSH_BEHIND_BYTES in each segment.
    append_big(&mut log, 0, 6_500, 4096);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while log.background_flushes() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        log.background_flushes() >= 2,
        "{} background flushes",
        log.background_flushes()
    );
    assert!(log.segment_paths().len() >= 2, "the log rolled over");
    let all = log.read_range(1, 6_500).unwrap();
    assert_eq!(all.len(), 6_500);
    assert!(all.iter().all(|e| e.payload == payload_for(e.zxid, 4096)));
    drop(log);
    let log = reopen(dir.path(), &opts).unwrap();
    assert_eq!(log.last_zxid(), Some(6_500));
    assert_eq!(log.read_range(6_490, 6_500).unwrap().len(), 11);
}

#[test]
fn with_fsync_on_there_is_no_background_flusher() {
    let dir = tempfile::tempdir().unwrap();
    let opts = FileLogOptions {
        segment_bytes: 12 << 20,
        ..FileLogOptions::default()
    };
    let mut log = FileLog::open(dir.path(), opts).unwrap();
    append_big(&mut log, 0, 3_000, 4096);
    assert!(log.flusher.is_none());
    assert_eq!(log.background_flushes(), 0);
}
