//! [`GroupCommitLog`]: many threads, one write and one fsync per batch.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::{LogEntry, LogStore, StorageError};

/// Counters kept by a [`GroupCommitLog`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupCommitStats {
    /// Syncs (fsyncs, for a `FileLog` with `FsyncPolicy::Always`) completed.
    pub syncs: u64,
    /// Entries appended.
    pub entries: u64,
}

struct State<L> {
    log: L,
    /// A thread is running a sync outside the lock.
    syncing: bool,
    /// Threads parked until their entry is durable (or until they must re-check).
    waiters: Vec<Waiter>,
    /// A flusher thread does every sync (see [`GroupCommitLog::with_flusher`]).
    flusher: bool,
    /// The flusher is waiting for work on `Inner::work`.
    flusher_idle: bool,
    /// The flusher must exit.
    shutdown: bool,
    /// A sync failed in flusher mode: every later wait fails.
    failed: bool,
    /// Bumped whenever `with_log` removed entries, so that a waiter whose entry was
    /// removed (and maybe re-appended by someone else under the same zxid) is told so.
    generation: u64,
}

/// How a parked waiter was woken.
const WAITING: u8 = 0;
/// Its target is durable: return without taking the lock.
const DONE: u8 = 1;
/// Take the lock and re-check (become the next sync leader, or see an error).
const RECHECK: u8 = 2;

struct Waiter {
    target: u64,
    thread: std::thread::Thread,
    flag: Arc<AtomicU8>,
}

impl Waiter {
    fn wake(self, how: u8) {
        self.flag.store(how, Ordering::Release);
        self.thread.unpark();
    }
}

struct Inner<L> {
    state: Mutex<State<L>>,
    /// Signalled when a sync ends (for `with_log`).
    idle: Condvar,
    /// Signalled when there is work for the flusher (or it must exit).
    work: Condvar,
    syncs: AtomicU64,
    entries: AtomicU64,
}

/// Stops and joins the flusher thread when dropped.
struct Flusher<L> {
    inner: Arc<Inner<L>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<L> Drop for Flusher<L> {
    fn drop(&mut self) {
        self.inner.state.lock().shutdown = true;
        self.inner.work.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A thread-safe front end for any [`LogStore`] that shares one write + fsync between
/// every appender waiting at the time (group commit).
///
/// Callers of [`GroupCommitLog::append_durable`] append under a short lock, then park.
/// Two ways to run the syncs:
///
/// - [`GroupCommitLog::new`] (no extra thread): the first waiter that finds no sync
///   running becomes the *sync leader*: it takes the split sync
///   ([`LogStore::start_sync`]), runs the fsync **without the lock** so that other
///   threads keep appending into the next batch, records the result, and then, outside
///   the lock, wakes one waiter that is not yet durable (to lead the next sync) and
///   every waiter whose entry is now durable (they return without touching the lock).
/// - [`GroupCommitLog::with_flusher`]: a dedicated thread runs the syncs back to back
///   while there is unsynced data, so no leader hand-off is needed; it sleeps when the
///   log is fully durable.
///
/// Either way there is no timer: a batch is exactly what arrived during the previous
/// fsync.
///
/// For a Node's log writer (one producer that must not block), see
/// [`crate::LogWriter`], or use [`GroupCommitLog::append`] and
/// [`GroupCommitLog::sync`] directly.
///
/// # To ensure correctness
/// - Entries become durable in zxid order; a returned zxid covers every earlier entry.
/// - If a sync fails, every waiter whose entry was not yet durable gets an error, and
///   the store is poisoned (see [`LogStore`] rule 5): reopen it.
pub struct GroupCommitLog<L> {
    inner: Arc<Inner<L>>,
    flusher: Option<Flusher<L>>,
}

impl<L: LogStore> GroupCommitLog<L> {
    /// Wraps `log`; waiting callers take turns leading the syncs.
    pub fn new(log: L) -> Self {
        GroupCommitLog {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    log,
                    syncing: false,
                    waiters: Vec::new(),
                    flusher: false,
                    flusher_idle: false,
                    shutdown: false,
                    failed: false,
                    generation: 0,
                }),
                idle: Condvar::new(),
                work: Condvar::new(),
                syncs: AtomicU64::new(0),
                entries: AtomicU64::new(0),
            }),
            flusher: None,
        }
    }

    /// Returns the wrapped store (stopping the flusher thread, if any).
    pub fn into_inner(self) -> L {
        let GroupCommitLog { inner, flusher } = self;
        drop(flusher);
        match Arc::try_unwrap(inner) {
            Ok(inner) => inner.state.into_inner().log,
            // The flusher (the only other owner) has been joined above.
            Err(_) => unreachable!("GroupCommitLog inner still shared after the flusher stopped"),
        }
    }

    /// Appends `entries` and waits until they are durable; returns the durable zxid
    /// (at least the last zxid of `entries`).
    pub fn append_durable(&self, entries: &[LogEntry]) -> Result<u64, StorageError> {
        let mut st = self.inner.state.lock();
        st.log.append(entries)?;
        self.inner
            .entries
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        let target = entries.last().map_or(0, |e| e.zxid);
        let generation = st.generation;
        self.inner.wait_durable(st, target, generation)
    }

    /// Appends one entry whose zxid is the next free one (`last + 1`), built by `make`
    /// from that zxid, and waits until it is durable. Returns the entry's zxid. For
    /// tests and benchmarks, where any increasing zxid will do.
    pub fn append_next_durable(
        &self,
        make: impl FnOnce(u64) -> Bytes,
    ) -> Result<u64, StorageError> {
        let mut st = self.inner.state.lock();
        let zxid = st.log.last_zxid().unwrap_or_else(|| st.log.base_zxid()) + 1;
        st.log.append(&[LogEntry {
            zxid,
            payload: make(zxid),
        }])?;
        self.inner.entries.fetch_add(1, Ordering::Relaxed);
        let generation = st.generation;
        self.inner.wait_durable(st, zxid, generation)?;
        Ok(zxid)
    }

    /// Appends without waiting (buffered; see [`LogStore::append`]). With a flusher,
    /// the entries become durable soon without anyone asking.
    pub fn append(&self, entries: &[LogEntry]) -> Result<(), StorageError> {
        let mut st = self.inner.state.lock();
        st.log.append(entries)?;
        self.inner
            .entries
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        self.inner.maybe_wake_flusher(&mut st);
        Ok(())
    }

    /// Makes everything appended so far durable (joining a running sync if that is
    /// enough) and returns the durable zxid.
    pub fn sync(&self) -> Result<u64, StorageError> {
        let st = self.inner.state.lock();
        let target = st.log.last_zxid().unwrap_or(0);
        let generation = st.generation;
        self.inner.wait_durable(st, target, generation)
    }

    /// Waits until `zxid` is durable, running syncs as needed.
    pub fn wait_durable_zxid(&self, zxid: u64) -> Result<u64, StorageError> {
        let st = self.inner.state.lock();
        let generation = st.generation;
        self.inner.wait_durable(st, zxid, generation)
    }

    /// Runs `f` with exclusive access to the store (reads, truncation, purge, reset).
    /// Waits for a running sync first, so a truncation never races an fsync. If `f`
    /// removed entries (the last zxid went down or the base went up), every waiter
    /// whose entry was not yet durable gets [`StorageError::Truncated`], even if its
    /// zxid is appended again later. (`f` itself must not remove entries and append
    /// past the old last zxid in one call: that removal would go unnoticed.)
    pub fn with_log<T>(&self, f: impl FnOnce(&mut L) -> T) -> T {
        let mut st = self.inner.state.lock();
        while st.syncing {
            self.inner.idle.wait(&mut st);
        }
        let before = (st.log.last_zxid().unwrap_or(0), st.log.base_zxid());
        let out = f(&mut st.log);
        let after = (st.log.last_zxid().unwrap_or(0), st.log.base_zxid());
        let removed = after.0 < before.0 || after.1 > before.1;
        let woken = if removed {
            st.generation += 1;
            std::mem::take(&mut st.waiters)
        } else {
            Vec::new()
        };
        self.inner.maybe_wake_flusher(&mut st);
        drop(st);
        for w in woken {
            w.wake(RECHECK);
        }
        out
    }

    /// [`LogStore::read_range`] on the wrapped store.
    pub fn read_range(&self, from: u64, to_inclusive: u64) -> Result<Vec<LogEntry>, StorageError> {
        self.inner.state.lock().log.read_range(from, to_inclusive)
    }

    /// [`LogStore::read_chunk`] on the wrapped store.
    pub fn read_chunk(&self, from: u64, max_entries: usize) -> Result<Vec<LogEntry>, StorageError> {
        self.inner.state.lock().log.read_chunk(from, max_entries)
    }

    /// [`LogStore::last_zxid`] on the wrapped store.
    pub fn last_zxid(&self) -> Option<u64> {
        self.inner.state.lock().log.last_zxid()
    }

    /// The durable zxid.
    pub fn durable_zxid(&self) -> u64 {
        self.inner.state.lock().log.durable_zxid()
    }

    /// Counters since creation.
    pub fn stats(&self) -> GroupCommitStats {
        GroupCommitStats {
            syncs: self.inner.syncs.load(Ordering::Relaxed),
            entries: self.inner.entries.load(Ordering::Relaxed),
        }
    }
}

impl<L: LogStore + 'static> GroupCommitLog<L> {
    /// Wraps `log` with a dedicated flusher thread (named `log-flusher`) that runs
    /// every sync. Dropping the `GroupCommitLog` stops it.
    pub fn with_flusher(log: L) -> Result<Self, StorageError> {
        let mut gc = GroupCommitLog::new(log);
        gc.inner.state.lock().flusher = true;
        let inner = gc.inner.clone();
        let thread = std::thread::Builder::new()
            .name("log-flusher".into())
            .spawn(move || inner.flusher_loop())
            .map_err(|e| StorageError::io("spawn log flusher", "<thread>", e))?;
        gc.flusher = Some(Flusher {
            inner: gc.inner.clone(),
            thread: Some(thread),
        });
        Ok(gc)
    }
}

impl<L: LogStore> Inner<L> {
    fn maybe_wake_flusher(&self, st: &mut State<L>) {
        if st.flusher_idle {
            st.flusher_idle = false;
            self.work.notify_one();
        }
    }

    /// Runs one sync with `st.syncing` set and the lock released during the fsync,
    /// then picks the waiters to wake. Returns them and the outcome.
    fn run_sync(
        &self,
        st: &mut MutexGuard<'_, State<L>>,
    ) -> (Vec<(Waiter, u8)>, Result<u64, StorageError>) {
        st.syncing = true;
        let result = st.log.start_sync().map(|mut pending| {
            let run = MutexGuard::unlocked(st, || pending.run());
            (pending, run)
        });
        let outcome = match result {
            Ok((pending, run)) => st.log.finish_sync(pending, run),
            Err(e) => Err(e),
        };
        st.syncing = false;
        self.idle.notify_all();
        self.syncs.fetch_add(1, Ordering::Relaxed);
        let durable = st.log.durable_zxid();
        let failed = outcome.is_err();
        if failed && st.flusher {
            st.failed = true;
        }
        let lead_next = !st.flusher;
        (take_waiters(st, durable, failed, lead_next), outcome)
    }

    fn flusher_loop(&self) {
        let mut st = self.state.lock();
        loop {
            if st.shutdown {
                return;
            }
            let unsynced = st.log.last_zxid().unwrap_or(0) > st.log.durable_zxid();
            if st.failed || !unsynced {
                st.flusher_idle = true;
                self.work.wait(&mut st);
                continue;
            }
            let (woken, outcome) = self.run_sync(&mut st);
            if let Err(e) = outcome {
                tracing::error!(error = %e, "log flusher: sync failed; the log is poisoned");
            }
            if !woken.is_empty() {
                MutexGuard::unlocked(&mut st, || {
                    for (w, how) in woken {
                        w.wake(how);
                    }
                });
            }
        }
    }

    /// Waits until `target` is durable. `generation` is the value of
    /// `State::generation` when the caller appended (or started waiting).
    fn wait_durable<'a>(
        &'a self,
        mut st: MutexGuard<'a, State<L>>,
        target: u64,
        generation: u64,
    ) -> Result<u64, StorageError> {
        loop {
            let durable = st.log.durable_zxid();
            if st.generation != generation {
                // Entries were removed since we appended; ours may be among them, and
                // the same zxid may since have been appended (and synced) by someone
                // else, so "durable" would be a lie.
                return Err(StorageError::Truncated { zxid: target });
            }
            if durable >= target {
                return Ok(durable);
            }
            if st.log.last_zxid().unwrap_or(0) < target {
                return Err(StorageError::Truncated { zxid: target });
            }
            if st.failed {
                return Err(StorageError::Poisoned);
            }
            if st.syncing || st.flusher {
                // Park until our entry is durable, or to re-check.
                let flag = Arc::new(AtomicU8::new(WAITING));
                st.waiters.push(Waiter {
                    target,
                    thread: std::thread::current(),
                    flag: flag.clone(),
                });
                self.maybe_wake_flusher(&mut st);
                drop(st);
                let how = loop {
                    match flag.load(Ordering::Acquire) {
                        WAITING => std::thread::park(),
                        how => break how,
                    }
                };
                if how == DONE {
                    return Ok(target);
                }
                st = self.state.lock();
                continue;
            }
            // Become the sync leader.
            let (woken, outcome) = self.run_sync(&mut st);
            drop(st);
            for (w, how) in woken {
                w.wake(how);
            }
            outcome?;
            st = self.state.lock();
        }
    }
}

/// Picks the waiters to wake after a sync: everyone whose target is durable (`DONE`);
/// after a failure everyone (`RECHECK`); and, when `lead_next`, one waiter that is not
/// yet durable (`RECHECK`, woken first so the next fsync overlaps the other wakeups).
fn take_waiters<L>(
    st: &mut State<L>,
    durable: u64,
    failed: bool,
    lead_next: bool,
) -> Vec<(Waiter, u8)> {
    if failed {
        return st.waiters.drain(..).map(|w| (w, RECHECK)).collect();
    }
    let mut woken = Vec::with_capacity(st.waiters.len());
    if lead_next {
        let next = (0..st.waiters.len())
            .filter(|&i| st.waiters[i].target > durable)
            .min_by_key(|&i| st.waiters[i].target);
        if let Some(next) = next {
            woken.push((st.waiters.swap_remove(next), RECHECK));
        }
    }
    let mut i = 0;
    while i < st.waiters.len() {
        if st.waiters[i].target <= durable {
            woken.push((st.waiters.swap_remove(i), DONE));
        } else {
            i += 1;
        }
    }
    woken
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::MemLog;

    fn many_threads(log: GroupCommitLog<MemLog>) {
        let log = Arc::new(log);
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let log = log.clone();
                std::thread::spawn(move || {
                    let mut last = 0;
                    for _ in 0..100 {
                        let z = log
                            .append_next_durable(|z| Bytes::from(z.to_le_bytes().to_vec()))
                            .unwrap();
                        assert!(z > last);
                        assert!(log.durable_zxid() >= z);
                        last = z;
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let log = Arc::try_unwrap(log).ok().unwrap().into_inner();
        assert_eq!(log.last_zxid(), Some(800));
        let all = log.read_range(1, 800).unwrap();
        assert!(all
            .iter()
            .all(|e| e.payload.as_ref() == e.zxid.to_le_bytes()));
    }

    #[test]
    fn many_threads_get_increasing_durable_zxids() {
        many_threads(GroupCommitLog::new(MemLog::new()));
    }

    #[test]
    fn many_threads_with_a_flusher_thread() {
        many_threads(GroupCommitLog::with_flusher(MemLog::new()).unwrap());
    }

    #[test]
    fn flusher_makes_plain_appends_durable_and_stops_on_drop() {
        let gc = GroupCommitLog::with_flusher(MemLog::new()).unwrap();
        gc.append(&[LogEntry::new(1, "a"), LogEntry::new(2, "b")])
            .unwrap();
        assert_eq!(gc.wait_durable_zxid(2).unwrap(), 2);
        gc.with_log(|l| l.truncate_after(1)).unwrap();
        assert!(matches!(
            gc.wait_durable_zxid(2),
            Err(StorageError::Truncated { zxid: 2 })
        ));
        let log = gc.into_inner();
        assert_eq!(log.last_zxid(), Some(1));
    }

    #[test]
    fn flusher_reports_a_failed_sync_to_every_waiter() {
        let mut inner = crate::FaultyLog::new(MemLog::new());
        inner.fail_next_sync();
        let gc = GroupCommitLog::with_flusher(inner).unwrap();
        assert!(gc.append_durable(&[LogEntry::new(1, "a")]).is_err());
        assert!(gc.append_durable(&[LogEntry::new(2, "b")]).is_err());
        assert_eq!(gc.durable_zxid(), 0);
    }
}
