//! [`GroupCommitLog`]: many threads, one write and one fsync per batch.

use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Total wall time spent in the slow half of the syncs (the fsyncs), in ns.
    pub sync_ns: u64,
}

struct State<L> {
    log: L,
    /// A thread is running a sync outside the lock.
    syncing: bool,
    /// Syncs started so far; while `syncing`, the number of the running one. Sync `n`
    /// makes durable every entry appended before it started.
    started: u64,
    /// The zxid the running sync makes durable (meaningful while `syncing`).
    inflight_zxid: u64,
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

/// Where waiters sleep: a small mutex of its own (never held while taking `state`),
/// so that the end of a sync wakes its whole batch with one `notify_all`.
struct Bell {
    /// The last sync that succeeded: every batch numbered up to it is durable.
    completed: u64,
    /// A batch whose waiters should send one of theirs to lead the next sync (0: none).
    /// Taken (reset to 0) by the waiter that accepts it.
    offer: u64,
}

struct Inner<L> {
    state: Mutex<State<L>>,
    /// Signalled when a sync ends (for `with_log`).
    idle: Condvar,
    /// Signalled when there is work for the flusher (or it must exit).
    work: Condvar,
    bell: std::sync::Mutex<Bell>,
    /// Waiters for batch `n` sleep on `rings[n % 2]`: at most one sync runs, so at most
    /// two batches (the running one and the next) have waiters, never on the same ring.
    rings: [std::sync::Condvar; 2],
    /// Bumped (under the `state` lock) when waiters must re-check the state instead of
    /// waiting for their batch: a failed sync, or `with_log` removed entries.
    alarm: AtomicU64,
    syncs: AtomicU64,
    entries: AtomicU64,
    sync_ns: AtomicU64,
}

/// How a sleeping waiter left the bell.
enum Woken {
    /// Its batch is durable.
    Done,
    /// It must take the lock and re-check (lead the next sync, or see an error).
    Recheck,
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
///   the lock, offers the lead of the next sync to one waiter of the next batch and
///   wakes the whole finished batch with one notify (waiters sleep on one of two
///   condition variables by batch parity, so a notify never wakes a waiter whose entry
///   is not yet durable, and no per-waiter bookkeeping or allocation is needed).
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
                    started: 0,
                    inflight_zxid: 0,
                    flusher: false,
                    flusher_idle: false,
                    shutdown: false,
                    failed: false,
                    generation: 0,
                }),
                idle: Condvar::new(),
                work: Condvar::new(),
                bell: std::sync::Mutex::new(Bell {
                    completed: 0,
                    offer: 0,
                }),
                rings: [std::sync::Condvar::new(), std::sync::Condvar::new()],
                alarm: AtomicU64::new(0),
                syncs: AtomicU64::new(0),
                entries: AtomicU64::new(0),
                sync_ns: AtomicU64::new(0),
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
        if removed {
            st.generation += 1;
            self.inner.alarm.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.maybe_wake_flusher(&mut st);
        drop(st);
        if removed {
            self.inner.ring_all();
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
            sync_ns: self.inner.sync_ns.load(Ordering::Relaxed),
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

    /// The bell's lock. A panic while it was held cannot leave `Bell` inconsistent
    /// (every update is a single field store), so a poisoned lock is used as is.
    fn bell(&self) -> std::sync::MutexGuard<'_, Bell> {
        self.bell
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Wakes every sleeping waiter to re-check the state (after bumping `alarm`).
    fn ring_all(&self) {
        // Taking the bell's lock orders the `alarm` bump before any waiter's next
        // check, so a waiter between its check and its sleep cannot miss this.
        drop(self.bell());
        for ring in &self.rings {
            ring.notify_all();
        }
    }

    /// Runs one sync with `st.syncing` set and the lock released during the fsync.
    /// Returns the sync's number, its outcome, and whether unsynced entries are left
    /// for a next sync.
    fn run_sync(
        &self,
        st: &mut MutexGuard<'_, State<L>>,
    ) -> (u64, Result<u64, StorageError>, bool) {
        st.syncing = true;
        st.started += 1;
        let number = st.started;
        let result = st.log.start_sync().map(|mut pending| {
            st.inflight_zxid = pending.zxid();
            let started = std::time::Instant::now();
            let run = MutexGuard::unlocked(st, || pending.run());
            let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.sync_ns.fetch_add(ns, Ordering::Relaxed);
            (pending, run)
        });
        let outcome = match result {
            Ok((pending, run)) => st.log.finish_sync(pending, run),
            Err(e) => Err(e),
        };
        st.syncing = false;
        self.idle.notify_all();
        self.syncs.fetch_add(1, Ordering::Relaxed);
        if outcome.is_err() {
            if st.flusher {
                st.failed = true;
            }
            self.alarm.fetch_add(1, Ordering::SeqCst);
        }
        let more = st.log.last_zxid().unwrap_or(0) > st.log.durable_zxid();
        (number, outcome, more)
    }

    /// Announces the end of sync `number` (call without the `state` lock): on success
    /// its batch is woken with one notify; with `offer`, one waiter of the next batch is
    /// woken first to lead the next sync; on failure everybody re-checks.
    fn announce(&self, number: u64, ok: bool, offer: bool) {
        if !ok {
            self.ring_all();
            return;
        }
        {
            let mut bell = self.bell();
            bell.completed = bell.completed.max(number);
            if offer {
                bell.offer = number + 1;
            }
        }
        if offer {
            self.rings[ring_of(number + 1)].notify_one();
        }
        self.rings[ring_of(number)].notify_all();
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
            let (number, outcome, _) = self.run_sync(&mut st);
            if let Err(e) = &outcome {
                tracing::error!(error = %e, "log flusher: sync failed; the log is poisoned");
            }
            MutexGuard::unlocked(&mut st, || self.announce(number, outcome.is_ok(), false));
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
                // The running sync covers `target`, or else the next one will (it starts
                // after this point, so it covers everything appended so far).
                let batch = if st.syncing && target <= st.inflight_zxid {
                    st.started
                } else {
                    st.started + 1
                };
                let alarm = self.alarm.load(Ordering::SeqCst);
                let may_lead = !st.flusher;
                self.maybe_wake_flusher(&mut st);
                drop(st);
                if let Woken::Done = self.sleep(batch, alarm, may_lead) {
                    return Ok(target);
                }
                st = self.state.lock();
                continue;
            }
            // Become the sync leader.
            let (number, outcome, more) = self.run_sync(&mut st);
            drop(st);
            self.announce(number, outcome.is_ok(), more);
            let durable = outcome?;
            if durable >= target {
                // Nothing can have removed `target` meanwhile: `with_log` waits for
                // running syncs, and this one ran with `generation` unchanged.
                return Ok(durable);
            }
            st = self.state.lock();
        }
    }

    /// Sleeps until sync `batch` has succeeded, `alarm` moved, or (when `may_lead`)
    /// this waiter accepted the offer to lead the next sync.
    fn sleep(&self, batch: u64, alarm: u64, may_lead: bool) -> Woken {
        let ring = &self.rings[ring_of(batch)];
        let mut bell = self.bell();
        loop {
            if bell.completed >= batch {
                return Woken::Done;
            }
            if self.alarm.load(Ordering::SeqCst) != alarm {
                return Woken::Recheck;
            }
            if may_lead && bell.offer == batch {
                bell.offer = 0;
                return Woken::Recheck;
            }
            bell = ring
                .wait(bell)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }
}

/// The ring that waiters for batch `n` sleep on.
fn ring_of(n: u64) -> usize {
    (n % 2) as usize
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

    /// A store whose fsync blocks until the test opens a gate, so that appends can be
    /// made to queue behind a running sync deterministically.
    struct GatedLog {
        inner: MemLog,
        durable: u64,
        gate: Arc<(parking_lot::Mutex<bool>, Condvar)>,
    }

    impl LogStore for GatedLog {
        fn append(&mut self, entries: &[LogEntry]) -> Result<(), StorageError> {
            self.inner.append(entries)
        }
        fn start_sync(&mut self) -> Result<crate::PendingSync, StorageError> {
            let zxid = self.inner.last_zxid().unwrap_or(0);
            let gate = self.gate.clone();
            Ok(crate::PendingSync::new(zxid, 0, move || {
                let mut open = gate.0.lock();
                while !*open {
                    gate.1.wait(&mut open);
                }
                Ok(())
            }))
        }
        fn finish_sync(
            &mut self,
            pending: crate::PendingSync,
            result: Result<(), StorageError>,
        ) -> Result<u64, StorageError> {
            result?;
            self.durable = self.durable.max(pending.zxid());
            Ok(self.durable)
        }
        fn sync_inline(&mut self) -> Result<u64, StorageError> {
            let mut pending = self.start_sync()?;
            let result = pending.run();
            self.finish_sync(pending, result)
        }
        fn durable_zxid(&self) -> u64 {
            self.durable
        }
        fn base_zxid(&self) -> u64 {
            self.inner.base_zxid()
        }
        fn first_zxid(&self) -> Option<u64> {
            self.inner.first_zxid()
        }
        fn last_zxid(&self) -> Option<u64> {
            self.inner.last_zxid()
        }
        fn read_range(&self, from: u64, to: u64) -> Result<Vec<LogEntry>, StorageError> {
            self.inner.read_range(from, to)
        }
        fn truncate_after(&mut self, zxid: u64) -> Result<(), StorageError> {
            self.inner.truncate_after(zxid)
        }
        fn purge_before(&mut self, zxid: u64) -> Result<(), StorageError> {
            self.inner.purge_before(zxid)
        }
        fn reset(&mut self, base_zxid: u64) -> Result<(), StorageError> {
            self.inner.reset(base_zxid)
        }
    }

    #[test]
    fn appends_behind_a_running_sync_share_the_next_one_led_by_one_of_them() {
        let gate = Arc::new((parking_lot::Mutex::new(false), Condvar::new()));
        let gc = Arc::new(GroupCommitLog::new(GatedLog {
            inner: MemLog::new(),
            durable: 0,
            gate: gate.clone(),
        }));
        let spawn = || {
            let gc = gc.clone();
            std::thread::spawn(move || gc.append_next_durable(|_| Bytes::from_static(b"x")))
        };
        // The first appender leads sync 1, which blocks at the gate.
        let first = spawn();
        while !gc.inner.state.lock().syncing {
            std::thread::yield_now();
        }
        // Three more append while it runs: they form batch 2.
        let rest: Vec<_> = (0..3).map(|_| spawn()).collect();
        while gc.stats().entries < 4 {
            std::thread::yield_now();
        }
        *gate.0.lock() = true;
        gate.1.notify_all();
        assert_eq!(first.join().unwrap().unwrap(), 1);
        let mut zxids: Vec<u64> = rest
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect();
        zxids.sort_unstable();
        assert_eq!(zxids, vec![2, 3, 4]);
        // Sync 1 for the leader; one of batch 2 took the offered lead and ran sync 2
        // for all three of them.
        assert_eq!(gc.stats().syncs, 2);
        assert_eq!(gc.durable_zxid(), 4);
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
