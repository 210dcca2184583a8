//! Runs the conformance suite for every store in this crate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use storage::conformance::{self, LogFactory};
use storage::{FaultyLog, FileLog, FileLogOptions, FsyncPolicy, MemLog, SimLog};

/// FileLog in fresh subdirectories of one temp dir; reopen drops and opens again.
struct FileFactory {
    root: tempfile::TempDir,
    n: usize,
    opts: FileLogOptions,
}

impl FileFactory {
    fn new(opts: FileLogOptions) -> Self {
        FileFactory {
            root: tempfile::tempdir().unwrap(),
            n: 0,
            opts,
        }
    }
}

impl LogFactory for FileFactory {
    type Log = FileLog;
    fn create(&mut self) -> FileLog {
        self.n += 1;
        FileLog::open(
            self.root.path().join(format!("log{}", self.n)),
            self.opts.clone(),
        )
        .unwrap()
    }
    fn reopen(&mut self, log: FileLog) -> FileLog {
        let dir = log.dir().to_path_buf();
        drop(log);
        FileLog::open(dir, self.opts.clone()).unwrap()
    }
}

#[test]
fn mem_log_conforms() {
    conformance::run_all(&mut MemLog::new);
}

#[test]
fn file_log_conforms_with_default_options() {
    conformance::run_all(&mut FileFactory::new(FileLogOptions::default()));
}

#[test]
fn file_log_conforms_with_tiny_segments() {
    let opts = FileLogOptions {
        segment_bytes: 2048,
        prealloc_bytes: 1024,
        ..FileLogOptions::default()
    };
    conformance::run_all(&mut FileFactory::new(opts));
}

#[test]
fn file_log_conforms_without_fsync_or_preallocation() {
    let opts = FileLogOptions {
        segment_bytes: 64 << 10,
        prealloc_bytes: 0,
        fsync: FsyncPolicy::Never,
        ..FileLogOptions::default()
    };
    conformance::run_all(&mut FileFactory::new(opts));
}

/// SimLog: "reopen" is a crash, which must keep everything because all was synced.
struct SimFactory(u64);

impl LogFactory for SimFactory {
    type Log = SimLog;
    fn create(&mut self) -> SimLog {
        self.0 += 1;
        SimLog::new(self.0)
    }
    fn reopen(&mut self, mut log: SimLog) -> SimLog {
        let report = log.crash().unwrap();
        assert_eq!(report.lost, 0);
        log
    }
}

#[test]
fn sim_log_conforms() {
    conformance::run_all(&mut SimFactory(0));
}

struct FaultyFileFactory(FileFactory);

impl LogFactory for FaultyFileFactory {
    type Log = FaultyLog<FileLog>;
    fn create(&mut self) -> Self::Log {
        FaultyLog::new(self.0.create())
    }
    fn reopen(&mut self, log: Self::Log) -> Self::Log {
        FaultyLog::new(self.0.reopen(log.into_inner()))
    }
}

#[test]
fn faulty_wrapper_conforms_when_no_fault_is_armed() {
    let opts = FileLogOptions {
        segment_bytes: 4096,
        prealloc_bytes: 4096,
        ..FileLogOptions::default()
    };
    conformance::run_all(&mut FaultyFileFactory(FileFactory::new(opts)));
    conformance::run_all(&mut || FaultyLog::new(MemLog::new()));
}

#[test]
fn boxed_trait_objects_conform() {
    conformance::run_all(&mut || -> Box<dyn storage::LogStore> { Box::new(MemLog::new()) });
    let mut files = FileFactory::new(FileLogOptions::default());
    conformance::run_all(&mut || -> Box<dyn storage::LogStore> { Box::new(files.create()) });
}
