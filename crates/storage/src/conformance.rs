//! The conformance suite every [`LogStore`] must pass.
//!
//! Each case is a public function taking a [`LogFactory`]; [`run_all`] runs them all.
//! A case panics (like a failed test assertion) when the store breaks the contract
//! in [`LogStore`]'s "To ensure correctness" section.
//!
//! # Running it against your own store
//!
//! ```
//! use storage::{conformance, MemLog};
//!
//! // A closure that builds a fresh, empty store is a factory whose "reopen" keeps
//! // the same value (fine for memory stores).
//! conformance::run_all(&mut || MemLog::new());
//! ```
//!
//! For a persistent store, implement [`LogFactory`] so that `reopen` drops the store
//! and opens the same data again (see `tests/conformance.rs` in this crate, which runs
//! the suite for `MemLog`, `FileLog`, `SimLog` and `FaultyLog`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step is a failed test

use bytes::Bytes;

use crate::{GroupCommitLog, LogEntry, LogStore, StorageError};

/// Builds stores for the suite.
pub trait LogFactory {
    /// The store under test.
    type Log: LogStore;
    /// A fresh, empty store (base zxid 0), independent of every earlier one.
    fn create(&mut self) -> Self::Log;
    /// Closes `log` cleanly (everything was synced) and opens the same data again.
    fn reopen(&mut self, log: Self::Log) -> Self::Log;
}

impl<L: LogStore, F: FnMut() -> L> LogFactory for F {
    type Log = L;
    fn create(&mut self) -> L {
        self()
    }
    fn reopen(&mut self, log: L) -> L {
        log
    }
}

/// Every case, in order.
pub fn run_all<F: LogFactory>(f: &mut F) {
    empty_log_holds_nothing(f);
    append_then_read_back(f);
    sparse_zxids_read_back(f);
    bad_batches_append_nothing(f);
    owned_appends_follow_the_same_rules(f);
    durability_is_reported_only_after_sync(f);
    split_sync_covers_only_what_was_started(f);
    truncate_after_removes_the_tail(f);
    truncate_to_before_first_empties_the_log(f);
    truncate_below_base_is_rejected(f);
    purge_before_keeps_later_entries(f);
    reset_restarts_after_base(f);
    read_range_bounds(f);
    read_chunk_pages_through_the_log(f);
    payload_sizes_round_trip(f);
    reopen_keeps_synced_entries(f);
    reopen_keeps_base_after_purge_and_reset(f);
    many_entries_survive_reopen(f);
    group_commit_from_many_threads(f);
}

/// Deterministic payload for `zxid` of `len` bytes.
pub fn payload_for(zxid: u64, len: usize) -> Bytes {
    let seed = zxid.to_le_bytes();
    Bytes::from(
        (0..len)
            .map(|i| seed[i % 8] ^ (i as u8))
            .collect::<Vec<u8>>(),
    )
}

fn entries(zxids: impl IntoIterator<Item = u64>) -> Vec<LogEntry> {
    zxids
        .into_iter()
        .map(|z| LogEntry::new(z, payload_for(z, (z % 37) as usize)))
        .collect()
}

fn zxids_of(v: &[LogEntry]) -> Vec<u64> {
    v.iter().map(|e| e.zxid).collect()
}

fn check_payloads(v: &[LogEntry]) {
    for e in v {
        assert_eq!(
            e.payload,
            payload_for(e.zxid, (e.zxid % 37) as usize),
            "payload of {:#x}",
            e.zxid
        );
    }
}

/// A new store holds nothing and reports zeros.
pub fn empty_log_holds_nothing<F: LogFactory>(f: &mut F) {
    let mut log = f.create();
    assert_eq!(log.first_zxid(), None);
    assert_eq!(log.last_zxid(), None);
    assert_eq!(log.base_zxid(), 0);
    assert_eq!(log.durable_zxid(), 0);
    assert!(log.read_range(1, 100).unwrap().is_empty());
    assert_eq!(log.sync().unwrap(), 0);
}

/// Appended entries read back in order, across several batches.
pub fn append_then_read_back<F: LogFactory>(f: &mut F) {
    let mut log = f.create();
    log.append(&entries(1..=10)).unwrap();
    log.append(&entries(11..=20)).unwrap();
    assert_eq!(log.first_zxid(), Some(1));
    assert_eq!(log.last_zxid(), Some(20));
    let all = log.read_range(1, 20).unwrap();
    assert_eq!(zxids_of(&all), (1..=20).collect::<Vec<_>>());
    check_payloads(&all);
    log.sync().unwrap();
    let mid = log.read_range(5, 12).unwrap();
    assert_eq!(zxids_of(&mid), (5..=12).collect::<Vec<_>>());
    check_payloads(&mid);
}

/// ZAB zxids jump at epoch changes; ranges are by value, not by count.
pub fn sparse_zxids_read_back<F: LogFactory>(f: &mut F) {
    let mut log = f.create();
    let zs = [1u64 << 32 | 1, 1 << 32 | 2, 2 << 32 | 1, 5 << 32 | 7];
    log.append(&entries(zs)).unwrap();
    log.sync().unwrap();
    assert_eq!(zxids_of(&log.read_range(1, u64::MAX).unwrap()), zs.to_vec());
    assert_eq!(
        zxids_of(&log.read_range(1 << 32 | 3, 5 << 32).unwrap()),
        vec![2 << 32 | 1]
    );
    assert!(log.read_range(3 << 32, 4 << 32).unwrap().is_empty());
}

/// A batch with a zero, repeated or decreasing zxid is rejected whole.
pub fn bad_batches_append_nothing<F: LogFactory>(f: &mut F) {
    let mut log = f.create();
    log.append(&entries([5])).unwrap();
    assert!(matches!(
        log.append(&entries([6, 0])),
        Err(StorageError::ZeroZxid)
    ));
    assert!(matches!(
        log.append(&entries([5])),
        Err(StorageError::NotIncreasing { zxid: 5, last: 5 })
    ));
    assert!(matches!(
        log.append(&entries([7, 9, 8])),
        Err(StorageError::NotIncreasing { .. })
    ));
    assert!(matches!(
        log.append(&entries([4])),
        Err(StorageError::NotIncreasing { .. })
    ));
    let too_big = LogEntry::new(10, Bytes::from(vec![0u8; crate::MAX_RECORD_BYTES + 1]));
    assert!(matches!(
        log.append(&[too_big]),
        Err(StorageError::RecordTooLarge { .. })
    ));
    assert_eq!(log.last_zxid(), Some(5));
    log.append(&entries([6, 7])).unwrap();
    assert_eq!(zxids_of(&log.read_range(1, 10).unwrap()), vec![5, 6, 7]);
}

/// `append_owned` stores the same entries and refuses the same batches as `append`.
pub fn owned_appends_follow_the_same_rules<F: LogFactory>(f: &mut F) {
    let mut log = f.create();
    log.append_owned(entries(1..=3)).unwrap();
    log.append(&entries([4])).unwrap();
    log.append_owned(entries([5, 6])).unwrap();
    assert!(matches!(
        log.append_owned(entries([7, 0])),
        Err(StorageError::ZeroZxid)
    ));
    assert!(matches!(
        log.append_owned(entries([6])),
        Err(StorageError::NotIncreasing { zxid: 6, last: 6 })
    ));
    let too_big = LogEntry::new(7, Bytes::from(vec![0u8; crate::MAX_RECORD_BYTES + 1]));
    assert!(matches!(
        log.append_owned(vec![too_big]),
        Err(StorageError::RecordTooLarge { .. })
    ));
    log.sync().unwrap();
    let all = log.read_range(1, 10).unwrap();
    assert_eq!(zxids_of(&all), (1..=6).collect::<Vec<_>>());
    check_payloads(&all);
}

/// `durable_zxid` moves only on sync, to the last appended zxid.
pub fn durability_is_reported_only_after_sync<F: LogFactory>(f: &mut F) {
    let mut log = f.create();
    log.append(&entries(1..=3)).unwrap();
    assert_eq!(log.durable_zxid(), 0);
    assert_eq!(log.sync().unwrap(), 3);
    assert_eq!(log.durable_zxid(), 3);
    log.append(&entries(4..=6)).unwrap();
    assert_eq!(log.durable_zxid(), 3);
    assert_eq!(log.sync().unwrap(), 6);
    assert_eq!(log.sync().unwrap(), 6);
}

/// With a split sync, entries appended after `start_sync` are not reported durable.
pub fn split_sync_covers_only_what_was_started<F: LogFactory>(f: &mut F) {
    let mut log = f.create();
    log.append(&entries(1..=4)).unwrap();
    let mut pending = log.start_sync().unwrap();
    assert_eq!(pending.zxid(), 4);
    log.append(&entries(5..=8)).unwrap();
    let result = pending.run();
    assert_eq!(log.finish_sync(pending, result).unwrap(), 4);
    assert_eq!(log.durable_zxid(), 4);
    assert_eq!(
        zxids_of(&log.read_range(1, 8).unwrap()),
        (1..=8).collect::<Vec<_>>()
    );
    assert_eq!(log.sync().unwrap(), 8);
}

/// `truncate_after` drops the tail, is durable, and appends continue after it.
pub fn truncate_after_removes_the_tail<F: LogFactory>(f: &mut F) {
    let mut log = f.create();
    log.append(&entries(1..=10)).unwrap();
    log.sync().unwrap();
    log.append(&entries(11..=12)).unwrap();
    log.truncate_after(6).unwrap();
    assert_eq!(log.last_zxid(), Some(6));
    assert_eq!(log.durable_zxid(), 6);
    assert_eq!(
        zxids_of(&log.read_range(1, 20).unwrap()),
        (1..=6).collect::<Vec<_>>()
    );
    log.truncate_after(100).unwrap();
    assert_eq!(log.last_zxid(), Some(6));
    log.append(&entries([8, 9])).unwrap();
    assert_eq!(log.sync().unwrap(), 9);
    let all = log.read_range(1, 20).unwrap();
    assert_eq!(zxids_of(&all), vec![1, 2, 3, 4, 5, 6, 8, 9]);
    check_payloads(&all);
}

/// Truncating below the first entry (but not below the base) empties the log.
pub fn truncate_to_before_first_empties_the_log<F: LogFactory>(f: &mut F) {
    let mut log = f.create();
    log.append(&entries(10..=15)).unwrap();
    log.sync().unwrap();
    log.truncate_after(3).unwrap();
    assert_eq!(log.last_zxid(), None);
    assert_eq!(log.first_zxid(), None);
    assert!(log.read_range(1, 20).unwrap().is_empty());
    log.append(&entries([4])).unwrap();
    assert_eq!(log.sync().unwrap(), 4);
}

/// After a purge, truncating into the purged part is refused.
pub fn truncate_below_base_is_rejected<F: LogFactory>(f: &mut F) {
    let mut log = f.create();
    log.reset(100).unwrap();
    log.append(&entries(101..=110)).unwrap();
    log.sync().unwrap();
    assert!(matches!(
        log.truncate_after(50),
        Err(StorageError::TruncateBelowBase {
            zxid: 50,
            base: 100
        })
    ));
    assert_eq!(log.last_zxid(), Some(110));
}

/// `purge_before(z)` keeps every entry at or above `z`; reads below the base fail.
pub fn purge_before_keeps_later_entries<F: LogFactory>(f: &mut F) {
    let mut log = f.create();
    for chunk in 0..20u64 {
        log.append(&entries(chunk * 50 + 1..=chunk * 50 + 50))
            .unwrap();
        log.sync().unwrap();
    }
    log.purge_before(700).unwrap();
    let base = log.base_zxid();
    assert!(base < 700, "base {base} must be below the purge point");
    let first = log.first_zxid().unwrap();
    assert_eq!(
        first,
        base + 1,
        "zxids are dense here, so the first follows the base"
    );
    let rest = log.read_range(700, 1000).unwrap();
    assert_eq!(zxids_of(&rest), (700..=1000).collect::<Vec<_>>());
    check_payloads(&rest);
    if base > 0 {
        assert!(matches!(
            log.read_range(base, 1000),
            Err(StorageError::OutOfRange { .. })
        ));
    }
    log.purge_before(1).unwrap();
    assert_eq!(log.base_zxid(), base);
    assert_eq!(log.durable_zxid(), 1000);
    log.append(&entries([1001])).unwrap();
    assert_eq!(log.sync().unwrap(), 1001);
}

/// `reset(b)` drops everything; the log continues after `b`.
pub fn reset_restarts_after_base<F: LogFactory>(f: &mut F) {
    let mut log = f.create();
    log.append(&entries(1..=5)).unwrap();
    log.sync().unwrap();
    log.reset(1000).unwrap();
    assert_eq!(log.base_zxid(), 1000);
    assert_eq!(log.last_zxid(), None);
    assert_eq!(log.durable_zxid(), 1000);
    assert!(matches!(
        log.append(&entries([999])),
        Err(StorageError::NotIncreasing { .. })
    ));
    assert!(matches!(
        log.read_range(5, 1001),
        Err(StorageError::OutOfRange { .. })
    ));
    log.append(&entries([1001, 1002])).unwrap();
    assert_eq!(log.sync().unwrap(), 1002);
    assert_eq!(
        zxids_of(&log.read_range(1001, 2000).unwrap()),
        vec![1001, 1002]
    );
}

/// Empty and clamped ranges.
pub fn read_range_bounds<F: LogFactory>(f: &mut F) {
    let mut log = f.create();
    log.append(&entries(1..=5)).unwrap();
    assert!(log.read_range(4, 3).unwrap().is_empty());
    assert_eq!(
        zxids_of(&log.read_range(3, u64::MAX).unwrap()),
        vec![3, 4, 5]
    );
    assert!(log.read_range(6, 9).unwrap().is_empty());
    assert!(matches!(
        log.read_range(0, 9),
        Err(StorageError::OutOfRange { .. })
    ));
}

/// `read_chunk` pages through the log (sparse zxids, unsynced tail included).
pub fn read_chunk_pages_through_the_log<F: LogFactory>(f: &mut F) {
    let mut log = f.create();
    log.append(&entries((1..=300).map(|i| i * 3))).unwrap();
    log.sync().unwrap();
    log.append(&entries((301..=320).map(|i| i * 3))).unwrap();
    let mut from = 1;
    let mut seen = Vec::new();
    loop {
        let chunk = log.read_chunk(from, 7).unwrap();
        assert!(chunk.len() <= 7);
        let Some(last) = chunk.last() else { break };
        from = last.zxid + 1;
        check_payloads(&chunk);
        seen.extend(zxids_of(&chunk));
    }
    assert_eq!(seen, (1..=320).map(|i| i * 3).collect::<Vec<_>>());
    assert!(log.read_chunk(10_000, 5).unwrap().is_empty());
    assert!(log.read_chunk(4, 0).unwrap().is_empty());
    log.purge_before(600).unwrap();
    let base = log.base_zxid();
    if base > 0 {
        assert!(matches!(
            log.read_chunk(base, 5),
            Err(StorageError::OutOfRange { .. })
        ));
    }
    assert_eq!(log.read_chunk(600, 2).unwrap().len(), 2);
}

/// Empty, small and large payloads come back byte for byte.
pub fn payload_sizes_round_trip<F: LogFactory>(f: &mut F) {
    let mut log = f.create();
    let sizes = [0usize, 1, 100, 4096, 1 << 20];
    let batch: Vec<LogEntry> = sizes
        .iter()
        .enumerate()
        .map(|(i, n)| LogEntry::new(i as u64 + 1, payload_for(i as u64 + 1, *n)))
        .collect();
    log.append(&batch).unwrap();
    log.sync().unwrap();
    assert_eq!(log.read_range(1, 10).unwrap(), batch);
    let log = f.reopen(log);
    assert_eq!(log.read_range(1, 10).unwrap(), batch);
}

/// A clean close and reopen keeps every synced entry.
pub fn reopen_keeps_synced_entries<F: LogFactory>(f: &mut F) {
    let mut log = f.create();
    log.append(&entries(1..=30)).unwrap();
    log.sync().unwrap();
    let mut log = f.reopen(log);
    assert_eq!(log.last_zxid(), Some(30));
    assert_eq!(log.durable_zxid(), 30);
    let all = log.read_range(1, 30).unwrap();
    assert_eq!(zxids_of(&all), (1..=30).collect::<Vec<_>>());
    check_payloads(&all);
    log.append(&entries(31..=32)).unwrap();
    assert_eq!(log.sync().unwrap(), 32);
}

/// The base survives a reopen (after purge, after reset, after emptying truncation).
pub fn reopen_keeps_base_after_purge_and_reset<F: LogFactory>(f: &mut F) {
    let mut log = f.create();
    log.reset(500).unwrap();
    let mut log = f.reopen(log);
    assert_eq!(log.base_zxid(), 500);
    log.append(&entries(501..=510)).unwrap();
    log.sync().unwrap();
    log.truncate_after(500).unwrap();
    let mut log = f.reopen(log);
    assert_eq!(log.base_zxid(), 500);
    assert_eq!(log.last_zxid(), None);
    log.append(&entries(501..=600)).unwrap();
    log.sync().unwrap();
    log.purge_before(550).unwrap();
    let base = log.base_zxid();
    let log = f.reopen(log);
    assert_eq!(log.base_zxid(), base);
    assert_eq!(
        zxids_of(&log.read_range(550, 600).unwrap()),
        (550..=600).collect::<Vec<_>>()
    );
}

/// Thousands of entries in many batches survive a reopen.
pub fn many_entries_survive_reopen<F: LogFactory>(f: &mut F) {
    let mut log = f.create();
    let mut next = 1u64;
    for batch in 0..200u64 {
        let n = 1 + batch % 40;
        log.append(&entries(next..next + n)).unwrap();
        next += n;
        if batch % 3 == 0 {
            log.sync().unwrap();
        }
    }
    log.sync().unwrap();
    let last = next - 1;
    let log = f.reopen(log);
    assert_eq!(log.last_zxid(), Some(last));
    let all = log.read_range(1, last).unwrap();
    assert_eq!(all.len() as u64, last);
    check_payloads(&all);
}

/// Behind a [`GroupCommitLog`], concurrent appenders each get a durable zxid, and the
/// store ends up holding all their entries in order (this exercises the split sync).
pub fn group_commit_from_many_threads<F: LogFactory>(f: &mut F) {
    let gc = GroupCommitLog::new(f.create());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..50 {
                    let z = gc
                        .append_next_durable(|z| payload_for(z, (z % 37) as usize))
                        .unwrap();
                    assert!(gc.durable_zxid() >= z);
                }
            });
        }
    });
    let log = f.reopen(gc.into_inner());
    assert_eq!(log.last_zxid(), Some(200));
    let all = log.read_range(1, 200).unwrap();
    assert_eq!(zxids_of(&all), (1..=200).collect::<Vec<_>>());
    check_payloads(&all);
}
