//! Background writeback for [`FsyncPolicy::Never`](super::FsyncPolicy::Never).
//!
//! With fsync off, appends only reach the page cache, and the kernel may keep tens of
//! megabytes of a segment dirty. A segment roll still fsyncs the finished segment (so
//! that no torn record can precede a later segment, which keeps the log recoverable
//! after a machine crash). That one fsync then had to write a whole segment out: on
//! the reference VM, 64 MiB took 130 ms on each of three nodes at once, and every
//! write of the cluster waited for it (a 120-160 ms longest write every ~2 s at
//! 150k writes/s, where p999 was 2-3 ms). So the writer hands the current segment to
//! this thread after every [`FLUSH_BEHIND_BYTES`] it writes, and the thread fsyncs it
//! in the background; the roll's fsync finds little left to write. Nothing waits for
//! these fsyncs and nothing depends on them: they only move the writeback earlier.
//! Measured (3 nodes, 4 x 16 writes on the leader, alternated): longest write
//! 145-172 ms before, 20-45 ms with 8 MiB steps, 12-27 ms with 2 MiB steps, at the
//! same throughput and p99.

use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Bytes written to a segment between two background flushes of it.
pub(crate) const FLUSH_BEHIND_BYTES: u64 = 2 << 20;

/// The background flushing thread (see the module docs).
#[derive(Debug)]
pub(crate) struct Flusher {
    tx: Option<mpsc::Sender<Arc<File>>>,
    /// Flushes done (read by tests).
    #[cfg_attr(not(test), allow(dead_code))]
    done: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    /// Starts the thread; `None` if it cannot be started (the log then works as
    /// before, with the whole writeback at the roll).
    pub(crate) fn spawn() -> Option<Flusher> {
        let (tx, rx) = mpsc::channel::<Arc<File>>();
        let done = Arc::new(AtomicU64::new(0));
        let count = Arc::clone(&done);
        let thread = std::thread::Builder::new()
            .name("ensemble-log-flusher".into())
            .spawn(move || {
                while let Ok(mut file) = rx.recv() {
                    // Requests queued meanwhile: a newer request for the same file
                    // covers the older one; another file is flushed in turn.
                    while let Ok(next) = rx.try_recv() {
                        if !Arc::ptr_eq(&next, &file) {
                            flush(&file, &count);
                        }
                        file = next;
                    }
                    flush(&file, &count);
                }
            })
            .ok()?;
        Some(Flusher {
            tx: Some(tx),
            done,
            thread: Some(thread),
        })
    }

    /// Asks for `file` to be flushed; never blocks.
    pub(crate) fn request(&self, file: Arc<File>) {
        if let Some(tx) = self.tx.as_ref() {
            // The thread is gone only if it panicked: then the roll flushes, as before.
            let _ = tx.send(file);
        }
    }

    /// Flushes done so far.
    #[cfg(test)]
    pub(crate) fn flushes(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }
}

fn flush(file: &File, count: &AtomicU64) {
    match file.sync_data() {
        Ok(()) => {
            count.fetch_add(1, Ordering::Relaxed);
        }
        // Only an early writeback failed; durability was never promised with fsync
        // off, and the roll's own fsync reports a real failure.
        Err(e) => tracing::debug!(error = %e, "background flush of a log segment failed"),
    }
}

impl super::FileLog {
    /// With fsync off: hands the last segment to the background flusher once
    /// [`FLUSH_BEHIND_BYTES`] more of it were written (see the module docs).
    pub(super) fn flush_behind(&mut self) {
        let Some(seg) = self.segments.last() else {
            return;
        };
        let (name, written) = (seg.header.name_zxid, seg.written);
        let (flushed_name, flushed) = self.flushed_at;
        // A new segment, or this one cut back: count from the start.
        let from = if flushed_name == name && flushed <= written {
            flushed
        } else {
            0
        };
        if written - from < FLUSH_BEHIND_BYTES {
            if from == 0 {
                self.flushed_at = (name, 0);
            }
            return;
        }
        if self.flusher.is_none() {
            self.flusher = Flusher::spawn();
        }
        if let Some(f) = self.flusher.as_ref() {
            f.request(Arc::clone(&seg.file));
        }
        self.flushed_at = (name, written);
    }

    /// Background flushes done so far (fsync off only; for tests).
    #[cfg(test)]
    pub(crate) fn background_flushes(&self) -> u64 {
        self.flusher.as_ref().map_or(0, Flusher::flushes)
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
