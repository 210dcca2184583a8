//! Proptest: random append/sync/truncate/purge/reset/reopen/crash sequences against a
//! simple model, for MemLog, FileLog (tiny segments) and SimLog.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use proptest::prelude::*;
use storage::{FileLog, FileLogOptions, LogEntry, LogStore, MemLog, SimLog, StorageError};

#[derive(Clone, Debug)]
enum Op {
    /// Append `n` entries, each `gap` above the previous, payloads of `len` bytes.
    Append {
        n: u8,
        gap: u8,
        len: u16,
    },
    Sync,
    /// Truncate after the entry at this fraction of the held range (or below it).
    Truncate {
        pick: u8,
    },
    Purge {
        pick: u8,
    },
    Reset {
        above: u8,
    },
    /// Clean close (after sync) and reopen.
    Reopen,
    /// Crash: unsynced entries may be lost (a prefix survives).
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u8..20, 1u8..4, 0u16..300).prop_map(|(n, gap, len)| Op::Append { n, gap, len }),
        3 => Just(Op::Sync),
        1 => any::<u8>().prop_map(|pick| Op::Truncate { pick }),
        1 => any::<u8>().prop_map(|pick| Op::Purge { pick }),
        1 => (0u8..5).prop_map(|above| Op::Reset { above }),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
    ]
}

/// `PROPTEST_CASES` overrides the default case count.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn payload(z: u64, len: u16) -> Bytes {
    Bytes::from(
        (0..len)
            .map(|i| (z as u8).wrapping_add(i as u8))
            .collect::<Vec<_>>(),
    )
}

#[derive(Default, Debug)]
struct Model {
    entries: Vec<LogEntry>,
    base: u64,
    /// Every entry at or above this must still be held (purge never removes them).
    keep_from: u64,
}

impl Model {
    fn last_or_base(&self) -> u64 {
        self.entries.last().map_or(self.base, |e| e.zxid)
    }
    fn pick(&self, pick: u8) -> u64 {
        if self.entries.is_empty() {
            return self.base;
        }
        let i = pick as usize * self.entries.len() / 256;
        self.entries[i].zxid
    }
}

trait Harness {
    type Log: LogStore;
    fn reopen(&mut self, log: Self::Log) -> Self::Log;
    fn crash(&mut self, log: Self::Log) -> Self::Log;
}

fn check<L: LogStore>(log: &L, model: &Model) {
    let base = log.base_zxid();
    assert!(base >= model.base, "base went below the model's");
    assert!(
        model
            .entries
            .iter()
            .all(|e| e.zxid < model.keep_from || e.zxid > base),
        "purge removed an entry at or above the purge point"
    );
    let held = log.read_range(base + 1, u64::MAX).unwrap();
    let want: Vec<LogEntry> = model
        .entries
        .iter()
        .filter(|e| e.zxid > base)
        .cloned()
        .collect();
    assert_eq!(held, want);
    assert_eq!(
        log.last_zxid(),
        model.entries.last().map(|e| e.zxid).filter(|z| *z > base)
    );
    assert!(log.durable_zxid() <= model.last_or_base().max(base));
}

fn run<H: Harness>(h: &mut H, mut log: H::Log, ops: &[Op]) {
    let mut model = Model::default();
    for op in ops {
        match *op {
            Op::Append { n, gap, len } => {
                let mut z = model.last_or_base().max(log.base_zxid());
                let batch: Vec<LogEntry> = (0..n)
                    .map(|_| {
                        z += u64::from(gap);
                        LogEntry::new(z, payload(z, len))
                    })
                    .collect();
                log.append(&batch).unwrap();
                model.entries.extend(batch);
            }
            Op::Sync => {
                let d = log.sync().unwrap();
                assert_eq!(d, model.last_or_base().max(log.base_zxid()));
            }
            Op::Truncate { pick } => {
                let z = model.pick(pick).saturating_sub(u64::from(pick % 3));
                match log.truncate_after(z) {
                    Ok(()) => model.entries.retain(|e| e.zxid <= z),
                    Err(StorageError::TruncateBelowBase { base, .. }) => assert!(z < base),
                    Err(e) => panic!("truncate_after({z}): {e}"),
                }
            }
            Op::Purge { pick } => {
                let z = model.pick(pick);
                log.purge_before(z).unwrap();
                model.keep_from = model.keep_from.max(z);
            }
            Op::Reset { above } => {
                let b = model.last_or_base().max(log.base_zxid()) + u64::from(above);
                log.reset(b).unwrap();
                model = Model {
                    entries: Vec::new(),
                    base: b,
                    keep_from: 0,
                };
                assert_eq!(log.durable_zxid(), b);
            }
            Op::Reopen => {
                log.sync().unwrap();
                let before = log.base_zxid();
                log = h.reopen(log);
                assert_eq!(log.base_zxid(), before);
            }
            Op::Crash => {
                let durable = log.durable_zxid();
                log = h.crash(log);
                let last = log.last_zxid().unwrap_or(0);
                assert!(
                    last >= durable.min(model.last_or_base()) || log.last_zxid().is_none(),
                    "crash lost a durable entry: durable {durable}, last {last}"
                );
                let held_after = log.last_zxid().unwrap_or(log.base_zxid());
                assert!(
                    held_after >= durable,
                    "durable {durable} > held {held_after}"
                );
                model.entries.retain(|e| e.zxid <= held_after);
            }
        }
        check(&log, &model);
    }
}

struct Mem;
impl Harness for Mem {
    type Log = MemLog;
    fn reopen(&mut self, log: MemLog) -> MemLog {
        log
    }
    fn crash(&mut self, mut log: MemLog) -> MemLog {
        log.sync().unwrap();
        log
    }
}

struct Sim;
impl Harness for Sim {
    type Log = SimLog;
    fn reopen(&mut self, mut log: SimLog) -> SimLog {
        assert_eq!(log.crash().unwrap().lost, 0);
        log
    }
    fn crash(&mut self, mut log: SimLog) -> SimLog {
        log.crash().unwrap();
        log
    }
}

struct File {
    dir: std::path::PathBuf,
    opts: FileLogOptions,
}
impl Harness for File {
    type Log = FileLog;
    fn reopen(&mut self, log: FileLog) -> FileLog {
        drop(log);
        FileLog::open(&self.dir, self.opts.clone()).unwrap()
    }
    fn crash(&mut self, log: FileLog) -> FileLog {
        // Whatever was not handed to the OS dies with the process.
        drop(log);
        FileLog::open(&self.dir, self.opts.clone()).unwrap()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(64), ..ProptestConfig::default() })]

    #[test]
    fn mem_log_matches_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(&mut Mem, MemLog::new(), &ops);
    }

    #[test]
    fn sim_log_matches_model(seed in any::<u64>(), ops in proptest::collection::vec(op(), 1..60)) {
        run(&mut Sim, SimLog::new(seed), &ops);
    }

    #[test]
    fn file_log_matches_model(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let opts = FileLogOptions {
            segment_bytes: 1500,
            prealloc_bytes: 700,
            ..FileLogOptions::default()
        };
        let log = FileLog::open(dir.path(), opts.clone()).unwrap();
        run(&mut File { dir: dir.path().to_path_buf(), opts }, log, &ops);
    }
}
