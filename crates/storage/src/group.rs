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

/// A thread-safe front end for any [`LogStore`] that shares one write + fsync between
/// every appender waiting at the time (group commit).
///
/// Callers of [`GroupCommitLog::append_durable`] append under a short lock, then wait.
/// The first waiter that finds no sync running becomes the *sync leader*: it takes the
/// split sync ([`LogStore::start_sync`]), runs the fsync **without the lock** so that
/// other threads keep appending into the next batch, records the result, and then,
/// outside the lock, wakes every waiter whose entry is now durable (they return
/// without touching the lock again) plus one waiter that is not, which leads the next
/// sync. There is no timer and no extra thread: a batch is exactly what arrived during
/// the previous fsync.
///
/// For a Node's log writer (one producer that must not block), use
/// [`GroupCommitLog::append`] from the core thread and call [`GroupCommitLog::sync`]
/// from a writer thread, reporting the returned zxid as "durable up to".
///
/// # To ensure correctness
/// - Entries become durable in zxid order; a returned zxid covers every earlier entry.
/// - If a sync fails, every waiter whose entry was not yet durable gets an error, and
///   the store is poisoned (see [`LogStore`] rule 5): reopen it.
pub struct GroupCommitLog<L> {
    state: Mutex<State<L>>,
    /// Signalled when a sync ends (for `with_log`).
    idle: Condvar,
    syncs: AtomicU64,
    entries: AtomicU64,
}

impl<L: LogStore> GroupCommitLog<L> {
    /// Wraps `log`.
    pub fn new(log: L) -> Self {
        GroupCommitLog {
            state: Mutex::new(State {
                log,
                syncing: false,
                waiters: Vec::new(),
            }),
            idle: Condvar::new(),
            syncs: AtomicU64::new(0),
            entries: AtomicU64::new(0),
        }
    }

    /// Returns the wrapped store.
    pub fn into_inner(self) -> L {
        self.state.into_inner().log
    }

    /// Appends `entries` and waits until they are durable; returns the durable zxid
    /// (at least the last zxid of `entries`).
    pub fn append_durable(&self, entries: &[LogEntry]) -> Result<u64, StorageError> {
        let mut st = self.state.lock();
        st.log.append(entries)?;
        self.entries
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        let target = entries.last().map_or(0, |e| e.zxid);
        self.wait_durable(st, target)
    }

    /// Appends one entry whose zxid is the next free one (`last + 1`), built by `make`
    /// from that zxid, and waits until it is durable. Returns the entry's zxid. For
    /// tests and benchmarks, where any increasing zxid will do.
    pub fn append_next_durable(
        &self,
        make: impl FnOnce(u64) -> Bytes,
    ) -> Result<u64, StorageError> {
        let mut st = self.state.lock();
        let zxid = st.log.last_zxid().unwrap_or_else(|| st.log.base_zxid()) + 1;
        st.log.append(&[LogEntry {
            zxid,
            payload: make(zxid),
        }])?;
        self.entries.fetch_add(1, Ordering::Relaxed);
        self.wait_durable(st, zxid)?;
        Ok(zxid)
    }

    /// Appends without waiting (buffered; see [`LogStore::append`]).
    pub fn append(&self, entries: &[LogEntry]) -> Result<(), StorageError> {
        let mut st = self.state.lock();
        st.log.append(entries)?;
        self.entries
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Makes everything appended so far durable (joining a running sync if that is
    /// enough) and returns the durable zxid.
    pub fn sync(&self) -> Result<u64, StorageError> {
        let st = self.state.lock();
        let target = st.log.last_zxid().unwrap_or(0);
        self.wait_durable(st, target)
    }

    /// Waits until `zxid` is durable, running syncs as needed.
    pub fn wait_durable_zxid(&self, zxid: u64) -> Result<u64, StorageError> {
        let st = self.state.lock();
        self.wait_durable(st, zxid)
    }

    /// Runs `f` with exclusive access to the store (reads, truncation, purge). Waits
    /// for a running sync first, so a truncation never races an fsync; afterwards
    /// every waiter re-checks (an entry it waits on may have been truncated).
    pub fn with_log<T>(&self, f: impl FnOnce(&mut L) -> T) -> T {
        let mut st = self.state.lock();
        while st.syncing {
            self.idle.wait(&mut st);
        }
        let out = f(&mut st.log);
        let woken = std::mem::take(&mut st.waiters);
        drop(st);
        for w in woken {
            w.wake(RECHECK);
        }
        out
    }

    /// The durable zxid.
    pub fn durable_zxid(&self) -> u64 {
        self.state.lock().log.durable_zxid()
    }

    /// Counters since creation.
    pub fn stats(&self) -> GroupCommitStats {
        GroupCommitStats {
            syncs: self.syncs.load(Ordering::Relaxed),
            entries: self.entries.load(Ordering::Relaxed),
        }
    }

    fn wait_durable<'a>(
        &'a self,
        mut st: MutexGuard<'a, State<L>>,
        target: u64,
    ) -> Result<u64, StorageError> {
        loop {
            let durable = st.log.durable_zxid();
            if durable >= target {
                return Ok(durable);
            }
            if st.log.last_zxid().unwrap_or(0) < target {
                return Err(StorageError::Truncated { zxid: target });
            }
            if st.syncing {
                // Park until the leader says our entry is durable, or to re-check.
                let flag = Arc::new(AtomicU8::new(WAITING));
                st.waiters.push(Waiter {
                    target,
                    thread: std::thread::current(),
                    flag: flag.clone(),
                });
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
            st.syncing = true;
            let result = st.log.start_sync().map(|mut pending| {
                let run = MutexGuard::unlocked(&mut st, || pending.run());
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
            let woken = self.take_waiters(&mut st, durable, outcome.is_err());
            drop(st);
            for (w, how) in woken {
                w.wake(how);
            }
            outcome?;
            st = self.state.lock();
        }
    }

    /// Picks the waiters to wake after a sync: everyone whose target is durable
    /// (`DONE`), plus one other to lead the next sync (or everyone, after a failure).
    fn take_waiters(&self, st: &mut State<L>, durable: u64, failed: bool) -> Vec<(Waiter, u8)> {
        if failed {
            return st.waiters.drain(..).map(|w| (w, RECHECK)).collect();
        }
        let mut woken = Vec::with_capacity(st.waiters.len());
        // The next leader is woken first, so the next fsync overlaps the other wakeups.
        let next = (0..st.waiters.len())
            .filter(|&i| st.waiters[i].target > durable)
            .min_by_key(|&i| st.waiters[i].target);
        if let Some(next) = next {
            woken.push((st.waiters.swap_remove(next), RECHECK));
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
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::MemLog;

    #[test]
    fn many_threads_get_increasing_durable_zxids() {
        let log = Arc::new(GroupCommitLog::new(MemLog::new()));
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
}
