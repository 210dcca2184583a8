//! [`FileLog`]: the crash-safe, segmented file log.
//!
//! Layout: a directory of segment files `log.<first zxid as 16 hex digits>`, each a
//! 32-byte header (magic, the previous segment's last zxid, CRC) followed by records
//! framed as length + CRC32C + zxid + payload (see [`crate::frame`]). Segments are
//! preallocated with zeros in `prealloc_bytes` steps, so an fdatasync rarely has to
//! update file metadata; a full segment is fsynced and trimmed before the next one is
//! created, so only the last segment can ever hold a torn record. With fsync off, a
//! background thread flushes the segment being written every few megabytes
//! (`flusher`), so that the roll's fsync stays short.

mod flusher;
mod recover;
mod segment;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::frame::{encode_record, record_bytes, SegmentHeader};
use crate::fsutil::{ensure_dir, remove_file, sync_dir};
use crate::log::{check_batch, check_range};
use crate::{LogEntry, LogStore, PendingSync, StorageError, MAX_RECORD_BYTES};

pub use recover::RecoveryReport;
use segment::Segment;

/// Largest accepted [`FileLogOptions::segment_bytes`] (1 GiB).
pub const MAX_SEGMENT_BYTES: u64 = 1 << 30;
/// Largest accepted [`FileLogOptions::prealloc_bytes`] (256 MiB).
pub const MAX_PREALLOC_BYTES: u64 = 256 << 20;
/// Largest segment file recovery will read (a segment holds at most `segment_bytes`
/// plus one record plus one preallocation step); anything larger is corruption.
pub const MAX_SEGMENT_FILE_BYTES: u64 =
    MAX_SEGMENT_BYTES + MAX_PREALLOC_BYTES + (MAX_RECORD_BYTES as u64) * 2;

/// When `sync` really calls fsync.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FsyncPolicy {
    /// fdatasync on every sync: durability as promised. The default.
    #[default]
    Always,
    /// Never fsync; `sync` only hands data to the OS. Survives a process crash, not a
    /// machine crash. For benchmarks and tests only. (A full segment is still fsynced
    /// before the next one starts, and a background thread writes the current one
    /// back every 2 MiB so that fsync stays short; see the module docs.)
    Never,
}

/// Tuning of a [`FileLog`].
#[derive(Clone, Debug)]
pub struct FileLogOptions {
    /// A segment rolls over once it holds at least this many bytes. Default 64 MiB,
    /// at most [`MAX_SEGMENT_BYTES`]. Recovery reads one whole segment at a time.
    pub segment_bytes: u64,
    /// Zeros are preallocated in steps of this size. Default 256 KiB; 0 disables; at
    /// most [`MAX_PREALLOC_BYTES`].
    ///
    /// The fdatasync after a step also flushes the step's zeros, so the step is a
    /// latency trade: on the reference VM (ext4), 3 logs appending 8 KB + fdatasync
    /// saw p999 430 us with 256 KiB steps, 1.1 ms with 1 MiB, 2.2-3.1 ms with 4 MiB and
    /// 5.7 ms with 16 MiB, against p50 135 us / max 17 ms with no preallocation (the
    /// size change sends every sync through the journal). A 3-node cluster at 150k
    /// writes/s had p99 4.4 ms with 256 KiB steps, 7.5 ms with 4 MiB.
    pub prealloc_bytes: u64,
    /// The fsync policy. Default [`FsyncPolicy::Always`].
    pub fsync: FsyncPolicy,
    /// Largest payload accepted and read back. Default (and at most)
    /// [`MAX_RECORD_BYTES`].
    pub max_record_bytes: usize,
}

impl Default for FileLogOptions {
    fn default() -> Self {
        FileLogOptions {
            segment_bytes: 64 << 20,
            prealloc_bytes: 256 << 10,
            fsync: FsyncPolicy::Always,
            max_record_bytes: MAX_RECORD_BYTES,
        }
    }
}

/// A [`LogStore`] in a directory of segment files. See the module docs for the layout
/// and [`FileLog::open`] for the recovery rules.
///
/// Only one `FileLog` may have a directory open at a time (not enforced: the Node owns
/// its data directory). Entries not yet handed to the OS by a sync are lost when the
/// log is dropped, as in a crash.
#[derive(Debug)]
pub struct FileLog {
    /// Deletes purged segments off the writer's thread (created on first purge).
    reaper: Option<Reaper>,
    /// With [`FsyncPolicy::Never`]: writes segments back in the background (created
    /// on first use).
    flusher: Option<flusher::Flusher>,
    /// The last segment's (name zxid, bytes written) at its last background flush.
    flushed_at: (u64, u64),
    dir: PathBuf,
    opts: FileLogOptions,
    segments: Vec<Segment>,
    /// Encoded records not yet handed to the OS (they belong to the last segment).
    buf: Vec<u8>,
    /// The entries encoded in `buf`, for reads.
    unwritten: VecDeque<LogEntry>,
    durable_zxid: u64,
    /// Bumped by every truncation/reset so a stale in-flight sync is ignored.
    generation: u64,
    poisoned: bool,
    recovery: RecoveryReport,
}

impl FileLog {
    /// Opens (creating if needed) the log in `dir` and recovers it.
    ///
    /// Recovery: every segment is read and checked. A torn final record (a bad record in
    /// the last segment with no valid record after it) is cut off; any other damage is
    /// [`StorageError::Corrupt`], a missing segment [`StorageError::Gap`], each naming the
    /// file and offset. Everything recovered is fsynced, so `durable_zxid() ==
    /// last_zxid()` afterwards. Also check [`crate::check_log_continues_snapshot`] once
    /// the newest snapshot is known.
    pub fn open(dir: impl AsRef<Path>, opts: FileLogOptions) -> Result<FileLog, StorageError> {
        if opts.segment_bytes == 0
            || opts.segment_bytes > MAX_SEGMENT_BYTES
            || opts.prealloc_bytes > MAX_PREALLOC_BYTES
            || opts.max_record_bytes > MAX_RECORD_BYTES
        {
            return Err(StorageError::InvalidOptions {
                reason: "segment_bytes must be in 1..=MAX_SEGMENT_BYTES, prealloc_bytes at most \
                         MAX_PREALLOC_BYTES, max_record_bytes at most MAX_RECORD_BYTES",
            });
        }
        let dir = ensure_dir(dir.as_ref())?;
        let rec = recover::recover_dir(&dir, opts.max_record_bytes)?;
        let mut log = FileLog {
            reaper: None,
            flusher: None,
            flushed_at: (0, 0),
            dir,
            opts,
            segments: rec.segments,
            buf: Vec::new(),
            unwritten: VecDeque::new(),
            durable_zxid: 0,
            generation: 0,
            poisoned: false,
            recovery: rec.report,
        };
        if let Some(last) = log.segments.last() {
            last.sync()?;
        }
        sync_dir(&log.dir)?;
        log.durable_zxid = log.last_or_base();
        Ok(log)
    }

    /// What recovery repaired when this log was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// The directory of this log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The segment files, oldest first.
    pub fn segment_paths(&self) -> Vec<PathBuf> {
        self.segments.iter().map(|s| s.path.clone()).collect()
    }

    /// Where the record for `zxid` starts on disk (for fault-injection tests), if it has
    /// been handed to the OS.
    pub fn record_location(&self, zxid: u64) -> Option<(PathBuf, u64)> {
        let seg = self.segment_for(zxid)?;
        let i = seg.index.binary_search_by_key(&zxid, |r| r.0).ok()?;
        let offset = seg.index[i].1;
        (offset < seg.written).then(|| (seg.path.clone(), offset))
    }

    fn segment_for(&self, zxid: u64) -> Option<&Segment> {
        let i = self
            .segments
            .partition_point(|s| s.header.name_zxid <= zxid);
        self.segments.get(i.checked_sub(1)?)
    }

    fn last_or_base(&self) -> u64 {
        self.segments.last().map_or(0, Segment::last_or_prev)
    }

    fn check_alive(&self) -> Result<(), StorageError> {
        if self.poisoned {
            return Err(StorageError::Poisoned);
        }
        Ok(())
    }

    fn poison<T>(&mut self, err: StorageError) -> Result<T, StorageError> {
        tracing::error!(dir = %self.dir.display(), error = %err, "file log poisoned");
        self.poisoned = true;
        Err(err)
    }

    /// Hands `buf` to the OS.
    fn write_out(&mut self) -> Result<(), StorageError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let prealloc = self.opts.prealloc_bytes;
        let Some(seg) = self.segments.last_mut() else {
            return Ok(());
        };
        if let Err(e) = seg.write(&self.buf, prealloc) {
            return self.poison(e);
        }
        self.buf.clear();
        self.unwritten.clear();
        if self.opts.fsync == FsyncPolicy::Never {
            self.flush_behind();
        }
        Ok(())
    }

    /// Starts a new segment for an entry at `zxid`: the current one is written out,
    /// fsynced and trimmed first, so no torn record can ever precede a later segment.
    fn roll_over(&mut self, zxid: u64) -> Result<(), StorageError> {
        self.write_out()?;
        let prev_zxid = self.last_or_base();
        if let Some(seg) = self.segments.last_mut() {
            let end = seg.written;
            if let Err(e) = seg.cut(end, false) {
                return self.poison(e);
            }
            self.durable_zxid = self.durable_zxid.max(prev_zxid);
        }
        self.create_segment(SegmentHeader {
            prev_zxid,
            name_zxid: zxid,
        })
    }

    /// An empty last segment (left by `reset`, an emptying truncation, or a crash
    /// before its first record was written) is replaced by one named after the entry
    /// about to go into it, so every segment is named by its first zxid. The new file
    /// appears (atomically, by rename) before the old one is removed; a crash between
    /// leaves two empty segments with the same `prev_zxid`, which recovery accepts.
    fn maybe_rename_empty_segment(&mut self, zxid: u64) -> Result<(), StorageError> {
        let Some(seg) = self.segments.last() else {
            return Ok(());
        };
        if !seg.index.is_empty() || seg.header.name_zxid == zxid {
            return Ok(());
        }
        let header = SegmentHeader {
            prev_zxid: seg.header.prev_zxid,
            name_zxid: zxid,
        };
        let old_path = seg.path.clone();
        let new = match Segment::create(&self.dir, header) {
            Ok(seg) => seg,
            Err(e) => return self.poison(e),
        };
        if let Some(last) = self.segments.last_mut() {
            *last = new;
        }
        if let Err(e) = remove_file(&old_path).and_then(|()| sync_dir(&self.dir)) {
            return self.poison(e);
        }
        Ok(())
    }

    fn create_segment(&mut self, header: SegmentHeader) -> Result<(), StorageError> {
        let seg = match Segment::create(&self.dir, header) {
            Ok(seg) => seg,
            Err(e) => return self.poison(e),
        };
        self.segments.push(seg);
        if let Err(e) = sync_dir(&self.dir) {
            return self.poison(e);
        }
        Ok(())
    }

    /// Deletes segments `range` (given oldest first) in the order `newest_first`.
    fn delete_segments(
        &mut self,
        from: usize,
        to: usize,
        newest_first: bool,
    ) -> Result<(), StorageError> {
        let mut order: Vec<usize> = (from..to).collect();
        if newest_first {
            order.reverse();
        }
        for i in order {
            if let Err(e) = remove_file(&self.segments[i].path) {
                return self.poison(e);
            }
        }
        self.segments.drain(from..to);
        if let Err(e) = sync_dir(&self.dir) {
            return self.poison(e);
        }
        Ok(())
    }
}

/// Suffix of a segment that a purge renamed out of the log; it is deleted in the
/// background, or by the next recovery if the process stops first.
pub(crate) const PURGED_SUFFIX: &str = ".purged";

/// A thread that takes purged segments out of the directory and deletes them.
///
/// A purge on the log writer's thread stalled every write queued behind it: deleting
/// a 64 MiB file on ext4 (with `discard`) took 12 ms, and the directory fsync after
/// the renames waits for the filesystem journal (8-25 ms client pauses at each
/// snapshot's end). So the writer only drops the segments from its list and hands
/// the files here. The reaper renames them to `<name>.purged` oldest first, stopping
/// at the first failure so that what is left on disk is always a suffix of the log.
/// Then it syncs the directory and frees each file. Deleting a whole file still hurt
/// off the writer's thread: the filesystem discards the freed blocks at its next
/// journal commit, and the three nodes' log fdatasyncs took 16-30 ms meanwhile
/// (`perf trace`, 3 nodes on one disk). So a file is freed in [`REAP_STEP_BYTES`]
/// steps (truncate, fsync, pause), as RocksDB's delete scheduler does.
///
/// Until the renames are durable, a crash leaves the segments under their own names:
/// the log then starts earlier, as before the purge. `reset` waits for pending
/// renames ([`Reaper::wait_renamed`]) so a new base segment never sits beside old
/// segments that would read as a gap. Dropping the reaper finishes its work without
/// pausing.
#[derive(Debug)]
struct Reaper {
    tx: Option<std::sync::mpsc::Sender<PurgeJob>>,
    hurry: Arc<AtomicBool>,
    /// Jobs whose renames are not yet durable.
    pending: Arc<(std::sync::Mutex<u64>, std::sync::Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Segments to take out of `dir`, oldest first: (current name, purged name).
#[derive(Debug)]
struct PurgeJob {
    dir: PathBuf,
    renames: Vec<(PathBuf, PathBuf)>,
}

/// Bytes a purged segment shrinks by per reaper step.
const REAP_STEP_BYTES: u64 = 4 << 20;
/// Pause between reaper steps (bounds the discard rate at ~400 MB/s).
const REAP_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

impl Reaper {
    fn spawn() -> Option<Reaper> {
        let (tx, rx) = std::sync::mpsc::channel::<PurgeJob>();
        let hurry = Arc::new(AtomicBool::new(false));
        let pending = Arc::new((std::sync::Mutex::new(0u64), std::sync::Condvar::new()));
        let (h, pend) = (Arc::clone(&hurry), Arc::clone(&pending));
        let thread = std::thread::Builder::new()
            .name("ensemble-log-reaper".into())
            .spawn(move || {
                for job in rx {
                    let renamed = rename_out(&job);
                    {
                        let (count, cv) = &*pend;
                        let mut c = count.lock().unwrap_or_else(|e| e.into_inner());
                        *c = c.saturating_sub(1);
                        cv.notify_all();
                    }
                    for p in renamed {
                        if let Err(e) = reap(&p, &h) {
                            tracing::warn!(file = %p.display(), error = %e, "could not delete a purged segment");
                        }
                    }
                }
            })
            .ok()?;
        Some(Reaper {
            tx: Some(tx),
            hurry,
            pending,
            thread: Some(thread),
        })
    }

    /// Hands `job` over; gives it back if the thread is gone.
    fn submit(&self, job: PurgeJob) -> Result<(), PurgeJob> {
        let Some(tx) = self.tx.as_ref() else {
            return Err(job);
        };
        let (count, _) = &*self.pending;
        *count.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        tx.send(job).map_err(|e| {
            let mut c = count.lock().unwrap_or_else(|e| e.into_inner());
            *c = c.saturating_sub(1);
            e.0
        })
    }

    /// Blocks until every job handed over so far has its renames durable.
    fn wait_renamed(&self) {
        let (count, cv) = &*self.pending;
        let mut c = count.lock().unwrap_or_else(|e| e.into_inner());
        while *c > 0 {
            c = cv.wait(c).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Renames the job's files oldest first (stopping at the first failure, so the log
/// left on disk stays a suffix) and syncs the directory. Returns the renamed paths.
fn rename_out(job: &PurgeJob) -> Vec<PathBuf> {
    let mut renamed = Vec::with_capacity(job.renames.len());
    for (from, to) in &job.renames {
        match std::fs::rename(from, to) {
            Ok(()) => renamed.push(to.clone()),
            Err(e) => {
                tracing::warn!(file = %from.display(), error = %e, "could not purge a log segment; it stays");
                break;
            }
        }
    }
    if let Err(e) = sync_dir(&job.dir) {
        tracing::warn!(error = %e, "could not sync the log directory after a purge");
    }
    renamed
}

/// Shrinks `path` step by step (unless `hurry`), then deletes it.
fn reap(path: &Path, hurry: &AtomicBool) -> std::io::Result<()> {
    if let Ok(file) = std::fs::OpenOptions::new().write(true).open(path) {
        let mut len = file.metadata()?.len();
        while len > REAP_STEP_BYTES && !hurry.load(Ordering::Relaxed) {
            len -= REAP_STEP_BYTES;
            file.set_len(len)?;
            // Commits this step's freed blocks (and their discard) on their own.
            file.sync_all()?;
            std::thread::sleep(REAP_PAUSE);
        }
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.hurry.store(true, Ordering::Relaxed);
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl FileLog {
    /// Removes the oldest `n` segments from the log: they leave the segment list at
    /// once and the reaper takes their files out (see [`Reaper`]); without a reaper
    /// thread the same steps run here.
    fn purge_segments(&mut self, n: usize) -> Result<(), StorageError> {
        let renames: Vec<(PathBuf, PathBuf)> = self.segments[..n]
            .iter()
            .map(|s| {
                let mut to = s.path.clone().into_os_string();
                to.push(PURGED_SUFFIX);
                (s.path.clone(), PathBuf::from(to))
            })
            .collect();
        self.segments.drain(..n);
        if self.reaper.is_none() {
            self.reaper = Reaper::spawn();
        }
        let job = PurgeJob {
            dir: self.dir.clone(),
            renames,
        };
        let job = match self.reaper.as_ref() {
            Some(r) => match r.submit(job) {
                Ok(()) => return Ok(()),
                Err(job) => job,
            },
            None => job,
        };
        // No reaper thread: rename, sync and delete here (correct, only slower).
        for (from, to) in &job.renames {
            if let Err(e) = std::fs::rename(from, to) {
                return self.poison(StorageError::io("rename purged segment", from, e));
            }
        }
        if let Err(e) = sync_dir(&self.dir) {
            return self.poison(e);
        }
        for (_, to) in &job.renames {
            if let Err(e) = remove_file(to) {
                return self.poison(e);
            }
        }
        Ok(())
    }

    /// Waits until purges handed to the reaper have their renames durable.
    fn wait_purges(&self) {
        if let Some(r) = self.reaper.as_ref() {
            r.wait_renamed();
        }
    }
}

impl FileLog {
    /// Encodes one checked entry into the write buffer, rolling over to a new segment
    /// when the current one is full, and indexes it.
    fn encode_entry(&mut self, entry: &LogEntry) -> Result<(), StorageError> {
        let needs_segment = match self.segments.last() {
            None => true,
            Some(seg) => {
                let size = seg.written + self.buf.len() as u64;
                !seg.index.is_empty() && size >= self.opts.segment_bytes
            }
        };
        if needs_segment {
            self.roll_over(entry.zxid)?;
        } else {
            self.maybe_rename_empty_segment(entry.zxid)?;
        }
        let Some(seg) = self.segments.last_mut() else {
            // roll_over either pushed a segment or returned an error.
            return Err(StorageError::Poisoned);
        };
        let offset = seg.written + self.buf.len() as u64;
        seg.index.push((entry.zxid, offset));
        self.buf.reserve(record_bytes(entry.payload.len()));
        encode_record(&mut self.buf, entry.zxid, &entry.payload);
        Ok(())
    }
}

impl LogStore for FileLog {
    fn append(&mut self, entries: &[LogEntry]) -> Result<(), StorageError> {
        self.check_alive()?;
        check_batch(entries, self.last_or_base(), self.opts.max_record_bytes)?;
        for entry in entries {
            self.encode_entry(entry)?;
            self.unwritten.push_back(entry.clone());
        }
        Ok(())
    }

    fn append_owned(&mut self, entries: Vec<LogEntry>) -> Result<(), StorageError> {
        self.check_alive()?;
        check_batch(&entries, self.last_or_base(), self.opts.max_record_bytes)?;
        for entry in entries {
            self.encode_entry(&entry)?;
            // Kept until written out (reads see it), by value: no payload handle to
            // count up here and down at the caller.
            self.unwritten.push_back(entry);
        }
        Ok(())
    }

    fn sync_inline(&mut self) -> Result<u64, StorageError> {
        let mut pending = self.start_sync()?;
        let result = pending.run();
        self.finish_sync(pending, result)
    }

    fn start_sync(&mut self) -> Result<PendingSync, StorageError> {
        self.check_alive()?;
        self.write_out()?;
        let zxid = self.last_or_base();
        let token = self.generation;
        if zxid <= self.durable_zxid || self.opts.fsync == FsyncPolicy::Never {
            return Ok(PendingSync::new(zxid, token, || Ok(())));
        }
        let Some(seg) = self.segments.last() else {
            return Ok(PendingSync::new(zxid, token, || Ok(())));
        };
        let file = seg.file.clone();
        let path = seg.path.clone();
        Ok(PendingSync::new(zxid, token, move || {
            file.sync_data()
                .map_err(|e| StorageError::io("fsync", &path, e))
        }))
    }

    fn finish_sync(
        &mut self,
        pending: PendingSync,
        result: Result<(), StorageError>,
    ) -> Result<u64, StorageError> {
        if let Err(e) = result {
            return self.poison(e);
        }
        self.check_alive()?;
        if pending.token() == self.generation {
            self.durable_zxid = self.durable_zxid.max(pending.zxid());
        }
        Ok(self.durable_zxid)
    }

    fn durable_zxid(&self) -> u64 {
        self.durable_zxid
    }

    fn base_zxid(&self) -> u64 {
        self.segments.first().map_or(0, |s| s.header.prev_zxid)
    }

    fn first_zxid(&self) -> Option<u64> {
        self.segments
            .iter()
            .find_map(|s| s.index.first().map(|r| r.0))
    }

    fn last_zxid(&self) -> Option<u64> {
        self.segments
            .iter()
            .rev()
            .find_map(|s| s.index.last().map(|r| r.0))
    }

    fn read_range(&self, from: u64, to_inclusive: u64) -> Result<Vec<LogEntry>, StorageError> {
        check_range(from, to_inclusive, self.base_zxid())?;
        let mut out = Vec::new();
        if from > to_inclusive {
            return Ok(out);
        }
        let first_unwritten = self.unwritten.front().map_or(u64::MAX, |e| e.zxid);
        let start = self
            .segments
            .partition_point(|s| s.header.name_zxid <= from)
            .saturating_sub(1);
        for seg in &self.segments[start..] {
            if seg.header.name_zxid > to_inclusive {
                break;
            }
            let a = seg.index.partition_point(|r| r.0 < from);
            let upto = to_inclusive.min(first_unwritten.saturating_sub(1));
            let b = seg.index.partition_point(|r| r.0 <= upto);
            if a < b {
                out.extend(seg.read(a, b, self.opts.max_record_bytes)?);
            }
        }
        out.extend(
            self.unwritten
                .iter()
                .filter(|e| e.zxid >= from && e.zxid <= to_inclusive)
                .cloned(),
        );
        Ok(out)
    }

    fn read_chunk(&self, from: u64, max_entries: usize) -> Result<Vec<LogEntry>, StorageError> {
        check_range(from, from, self.base_zxid())?;
        // Find the zxid of the `max_entries`-th held entry at or after `from` through
        // the indexes, then read exactly that range.
        let mut left = max_entries;
        let mut to = None;
        let start = self
            .segments
            .partition_point(|s| s.header.name_zxid <= from)
            .saturating_sub(1);
        for seg in &self.segments[start..] {
            if left == 0 {
                break;
            }
            let a = seg.index.partition_point(|r| r.0 < from);
            let n = (seg.index.len() - a).min(left);
            if n > 0 {
                to = Some(seg.index[a + n - 1].0);
                left -= n;
            }
        }
        match to {
            Some(to) => self.read_range(from, to),
            None => Ok(Vec::new()),
        }
    }

    fn truncate_after(&mut self, zxid: u64) -> Result<(), StorageError> {
        self.check_alive()?;
        let base = self.base_zxid();
        if zxid < base {
            return Err(StorageError::TruncateBelowBase { zxid, base });
        }
        if !matches!(self.last_zxid(), Some(last) if last > zxid) {
            return Ok(());
        }
        self.write_out()?;
        self.generation += 1;
        // Later segments go first (newest first), so a crash leaves a prefix.
        let keep = self
            .segments
            .partition_point(|s| s.header.name_zxid <= zxid);
        if keep < self.segments.len() {
            self.delete_segments(keep, self.segments.len(), true)?;
        }
        if let Some(seg) = self.segments.last_mut() {
            let i = seg.index.partition_point(|r| r.0 <= zxid);
            if let Some(&(_, cut_at)) = seg.index.get(i) {
                if let Err(e) = seg.cut(cut_at, true) {
                    return self.poison(e);
                }
            } else if let Err(e) = seg.sync() {
                return self.poison(e);
            }
        } else if base > 0 {
            self.create_segment(SegmentHeader {
                prev_zxid: base,
                name_zxid: base + 1,
            })?;
        }
        self.durable_zxid = self.last_or_base();
        Ok(())
    }

    fn purge_before(&mut self, zxid: u64) -> Result<(), StorageError> {
        self.check_alive()?;
        // Segment i may go when every record in it is below `zxid`, i.e. when the
        // next segment starts at or below `zxid`. The last segment always stays.
        let n = self
            .segments
            .windows(2)
            .take_while(|w| w[1].header.name_zxid <= zxid)
            .count();
        if n > 0 {
            self.purge_segments(n)?;
        }
        self.durable_zxid = self.durable_zxid.max(self.base_zxid());
        Ok(())
    }

    fn reset(&mut self, base_zxid: u64) -> Result<(), StorageError> {
        self.check_alive()?;
        // Old segments still awaiting their purge rename would read as a gap before
        // the new base segment after a crash.
        self.wait_purges();
        self.generation += 1;
        self.buf.clear();
        self.unwritten.clear();
        let n = self.segments.len();
        self.delete_segments(0, n, false)?;
        if base_zxid > 0 {
            self.create_segment(SegmentHeader {
                prev_zxid: base_zxid,
                name_zxid: base_zxid.saturating_add(1),
            })?;
        }
        self.durable_zxid = base_zxid;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
