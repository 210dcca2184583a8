//! Locks: the shared waiting core (`LockCore`), the reentrant [`InterProcessMutex`],
//! the [`InterProcessReadWriteLock`] and the [`DistributedLock`] trait that
//! [`MultiLock`](crate::MultiLock) and the semaphore build on.
//!
//! Every contender creates an ephemeral sequential node (protected, so a create that
//! succeeded just before a connection loss is found again) and watches only the one
//! node it depends on: its predecessor for a mutex or a writer, the nearest earlier
//! writer for a reader. A release therefore wakes exactly one waiter (no herd).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ensemble::CreateMode;
use parking_lot::Mutex;

use crate::coordinator::{deadline_in, wait_notice, ConnectionState, Coordinator, Notice};
use crate::error::{code, RecipeError, Result};
use crate::ops;
use crate::seq::{basename, check_path, join, sort_by_sequence};

/// A lock that can be taken with a timeout and released: what
/// [`MultiLock`](crate::MultiLock) combines.
pub trait DistributedLock: Send + Sync {
    /// Takes the lock, waiting at most `timeout` (`None`: as long as it takes).
    /// `Ok(false)` on timeout.
    fn try_acquire(&self, timeout: Option<Duration>) -> Result<bool>;
    /// Releases one hold of the calling thread.
    fn release(&self) -> Result<()>;
}

/// What a contender should do given the sorted contenders and its own index.
pub(crate) enum Turn {
    /// It holds the lock.
    Acquired,
    /// It waits for this sibling (a name in the lock directory) to go.
    WaitFor(String),
}

/// The waiting machinery shared by every lock recipe.
pub(crate) struct LockCore {
    pub(crate) coord: Arc<Coordinator>,
    pub(crate) dir: String,
    /// The notice channel of the wait in progress, so that [`LockCore::interrupt`]
    /// can end it.
    pub(crate) waiting: Mutex<Option<crossbeam_channel::Sender<Notice>>>,
    /// Set by [`LockCore::interrupt`]: waits end with `Closed` until cleared.
    pub(crate) interrupted: std::sync::atomic::AtomicBool,
}

/// The outcome of one successful attempt.
pub(crate) struct Won {
    /// Our lock node.
    pub(crate) path: String,
    /// Watch events that woke the waiter.
    pub(crate) wakeups: u32,
}

impl LockCore {
    /// Creates a contender node named `name` and waits its turn. `Ok(None)` on
    /// timeout (the node is deleted again).
    pub(crate) fn attempt(
        &self,
        name: &str,
        data: Bytes,
        deadline: Option<Instant>,
        turn: &dyn Fn(&[String], usize) -> Turn,
    ) -> Result<Option<Won>> {
        let ours =
            self.coord
                .create_protected(&self.dir, name, data, CreateMode::EphemeralSequential)?;
        match self.wait_turn(&ours, deadline, turn) {
            Ok(wakeups) => Ok(Some(Won {
                path: ours,
                wakeups,
            })),
            Err(RecipeError::Timeout) => {
                self.delete_quietly(&ours);
                Ok(None)
            }
            Err(e) => {
                self.delete_quietly(&ours);
                Err(e)
            }
        }
    }

    fn wait_turn(
        &self,
        ours: &str,
        deadline: Option<Instant>,
        turn: &dyn Fn(&[String], usize) -> Turn,
    ) -> Result<u32> {
        let our_name = basename(ours);
        let mut wakeups = 0u32;
        loop {
            let mut children = self
                .coord
                .retry(deadline, |c| ops::get_children(c, &self.dir, false))?;
            sort_by_sequence(&mut children);
            let Some(idx) = children.iter().position(|c| c == our_name) else {
                // Our ephemeral is gone: the session that made it was lost.
                return Err(RecipeError::Lost);
            };
            let pred = match turn(&children, idx) {
                Turn::Acquired => return Ok(wakeups),
                Turn::WaitFor(p) => join(&self.dir, &p),
            };
            let (tx, rx) = crossbeam_channel::unbounded();
            *self.waiting.lock() = Some(tx.clone());
            if self.interrupted.load(Ordering::Acquire) {
                return Err(RecipeError::Closed);
            }
            match self.coord.exists_watch(&pred, &tx) {
                Ok((None, id)) => {
                    // Gone between the listing and the watch: look again.
                    self.coord.unwatch(id);
                }
                Ok((Some(_), id)) => match wait_notice(&rx, deadline) {
                    None => {
                        self.coord.unwatch(id);
                        return Err(RecipeError::Timeout);
                    }
                    Some(Notice::Watch(_)) => wakeups += 1,
                    Some(Notice::State(ConnectionState::Lost)) => return Err(RecipeError::Lost),
                    Some(Notice::State(ConnectionState::Closed)) => {
                        return Err(RecipeError::Closed)
                    }
                    Some(Notice::State(_)) => self.coord.wait_connected(deadline)?,
                },
                Err(ensemble::Error::SessionExpired) => return Err(RecipeError::Lost),
                Err(e) if e.is_retryable() => {
                    std::thread::sleep(Duration::from_millis(5));
                    self.coord.wait_connected(deadline)?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Ends the wait in progress (and every later one) with `Closed`.
    pub(crate) fn interrupt(&self) {
        self.interrupted.store(true, Ordering::Release);
        if let Some(tx) = self.waiting.lock().as_ref() {
            let _ = tx.send(Notice::State(ConnectionState::Closed));
        }
    }

    /// A core for contenders under `dir`.
    pub(crate) fn new(coord: Arc<Coordinator>, dir: &str) -> Self {
        LockCore {
            coord,
            dir: dir.to_string(),
            waiting: Mutex::new(None),
            interrupted: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Deletes a node we own, riding out a short disconnection; failures are left to
    /// session expiry (the node is ephemeral).
    pub(crate) fn delete_quietly(&self, path: &str) {
        let grace = Duration::from_millis(u64::from(self.coord.client().session_timeout_ms()));
        let r = self
            .coord
            .retry(Some(Instant::now() + grace), |c| ops::delete(c, path, -1));
        match r {
            Ok(()) => {}
            Err(e) if e.has_code(code::NO_NODE) => {}
            Err(e) => tracing::debug!(%path, error = %e, "could not delete a lock node"),
        }
    }

    /// The contenders, in order.
    pub(crate) fn contenders(&self) -> Result<Vec<String>> {
        let mut c = match self
            .coord
            .retry(None, |c| ops::get_children(c, &self.dir, false))
        {
            Ok(c) => c,
            Err(e) if e.has_code(code::NO_NODE) => Vec::new(),
            Err(e) => return Err(e),
        };
        sort_by_sequence(&mut c);
        Ok(c)
    }
}

/// The mutex rule: the first contender holds it; the others wait for their predecessor.
pub(crate) fn mutex_turn(children: &[String], idx: usize) -> Turn {
    match idx.checked_sub(1) {
        None => Turn::Acquired,
        Some(p) => Turn::WaitFor(children[p].clone()),
    }
}

fn is_writer(name: &str) -> bool {
    name.contains(WRITE_NAME)
}

/// The reader rule: a reader holds the lock when no writer is ahead of it; else it
/// waits for the nearest writer ahead.
fn read_turn(children: &[String], idx: usize) -> Turn {
    match children[..idx].iter().rev().find(|n| is_writer(n)) {
        None => Turn::Acquired,
        Some(w) => Turn::WaitFor(w.clone()),
    }
}

const LOCK_NAME: &str = "lock-";
const READ_NAME: &str = "read-";
const WRITE_NAME: &str = "write-";

struct Held {
    path: String,
    count: u32,
    epoch: u64,
}

/// Per-thread reentrant holding of one kind of lock node.
struct Reentrant {
    core: LockCore,
    name: &'static str,
    data: Bytes,
    rule: fn(&[String], usize) -> Turn,
    held: Mutex<HashMap<ThreadId, Held>>,
    last_wakeups: AtomicU32,
}

impl Reentrant {
    fn try_acquire(&self, timeout: Option<Duration>) -> Result<bool> {
        self.try_acquire_until(deadline_in(timeout))
    }

    fn try_acquire_until(&self, deadline: Option<Instant>) -> Result<bool> {
        let me = std::thread::current().id();
        if let Some(h) = self.held.lock().get_mut(&me) {
            h.count += 1;
            return Ok(true);
        }
        let epoch = self.core.coord.epoch();
        let rule = self.rule;
        let won = self
            .core
            .attempt(self.name, self.data.clone(), deadline, &rule)?;
        let Some(won) = won else {
            return Ok(false);
        };
        self.last_wakeups.store(won.wakeups, Ordering::Relaxed);
        self.held.lock().insert(
            me,
            Held {
                path: won.path,
                count: 1,
                epoch,
            },
        );
        Ok(true)
    }

    fn release(&self) -> Result<()> {
        let me = std::thread::current().id();
        let path = {
            let mut held = self.held.lock();
            let Some(h) = held.get_mut(&me) else {
                return Err(RecipeError::NotHeld(self.core.dir.clone()));
            };
            h.count -= 1;
            if h.count > 0 {
                return Ok(());
            }
            let path = h.path.clone();
            held.remove(&me);
            path
        };
        self.core.delete_quietly(&path);
        Ok(())
    }

    fn held_by_me(&self) -> bool {
        self.held.lock().contains_key(&std::thread::current().id())
    }

    fn held_safely(&self) -> bool {
        let epoch = self
            .held
            .lock()
            .get(&std::thread::current().id())
            .map(|h| h.epoch);
        epoch.is_some_and(|e| self.core.coord.still_valid(e))
    }

    fn node(&self) -> Option<String> {
        self.held
            .lock()
            .get(&std::thread::current().id())
            .map(|h| h.path.clone())
    }
}

/// A reentrant distributed mutex (Curator's `InterProcessMutex`): a thread that holds
/// it may take it again and must release it as many times. Waiters queue in arrival
/// order and each watches only its predecessor.
///
/// A holder must check [`InterProcessMutex::is_held_safely`] (or listen for
/// [`ConnectionState::Suspended`]) before acting on the lock: after a suspension the
/// session may expire and another process take the lock.
pub struct InterProcessMutex {
    inner: Reentrant,
}

impl std::fmt::Debug for InterProcessMutex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InterProcessMutex")
            .field("dir", &self.inner.core.dir)
            .finish_non_exhaustive()
    }
}

impl InterProcessMutex {
    /// A mutex whose contenders live under `path` (created if missing).
    pub fn new(coord: Arc<Coordinator>, path: &str) -> Result<Self> {
        Self::with_data(coord, path, Bytes::new())
    }

    /// As [`InterProcessMutex::new`], with `data` on this process's lock node (for
    /// example an id that others can read to see who holds the lock).
    pub fn with_data(coord: Arc<Coordinator>, path: &str, data: Bytes) -> Result<Self> {
        check_path(path)?;
        Ok(InterProcessMutex {
            inner: Reentrant {
                core: LockCore::new(coord, path),
                name: LOCK_NAME,
                data,
                rule: mutex_turn,
                held: Mutex::new(HashMap::new()),
                last_wakeups: AtomicU32::new(0),
            },
        })
    }

    /// Takes the mutex, waiting as long as it takes.
    pub fn acquire(&self) -> Result<()> {
        if self.inner.try_acquire(None)? {
            Ok(())
        } else {
            Err(RecipeError::Timeout)
        }
    }

    /// Takes the mutex, waiting at most `timeout`; `Ok(false)` if it did not get it.
    pub fn try_acquire(&self, timeout: Duration) -> Result<bool> {
        self.inner.try_acquire(Some(timeout))
    }

    /// Takes the mutex, waiting at most until `deadline` (`None`: unbounded).
    pub(crate) fn try_acquire_until(&self, deadline: Option<Instant>) -> Result<bool> {
        self.inner.try_acquire_until(deadline)
    }

    /// Releases one hold of the calling thread; the last one deletes the lock node.
    pub fn release(&self) -> Result<()> {
        self.inner.release()
    }

    /// Whether the calling thread holds the mutex (as far as this process knows).
    pub fn is_acquired_by_this_thread(&self) -> bool {
        self.inner.held_by_me()
    }

    /// Whether the calling thread holds the mutex and the session has not been
    /// suspended or lost since it took it.
    pub fn is_held_safely(&self) -> bool {
        self.inner.held_safely()
    }

    /// The calling thread's lock node, while it holds the mutex.
    pub fn lock_node(&self) -> Option<String> {
        self.inner.node()
    }

    /// The contenders' node names, holder first.
    pub fn participant_nodes(&self) -> Result<Vec<String>> {
        self.inner.core.contenders()
    }

    /// Ends a wait in progress in another thread (and every later one) with
    /// [`RecipeError::Closed`].
    pub fn interrupt(&self) {
        self.inner.core.interrupt();
    }

    /// The lock directory.
    pub fn path(&self) -> &str {
        &self.inner.core.dir
    }

    /// How many watch events woke the last successful acquire while it waited (one
    /// if it waited, zero if it got the lock at once, more only after a contender
    /// ahead of it gave up).
    pub fn last_wakeups(&self) -> u32 {
        self.inner.last_wakeups.load(Ordering::Relaxed)
    }
}

impl DistributedLock for InterProcessMutex {
    fn try_acquire(&self, timeout: Option<Duration>) -> Result<bool> {
        self.inner.try_acquire(timeout)
    }

    fn release(&self) -> Result<()> {
        self.inner.release()
    }
}

/// A distributed read-write lock (Curator's `InterProcessReadWriteLock`): many
/// readers or one writer; readers and writers are served in arrival order, so a
/// waiting writer is not starved by later readers. Each half is reentrant per thread.
/// A thread holding the write lock cannot also take the read lock (no downgrade).
pub struct InterProcessReadWriteLock {
    read: ReadLock,
    write: WriteLock,
}

impl std::fmt::Debug for InterProcessReadWriteLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InterProcessReadWriteLock")
            .field("dir", &self.read.0.core.dir)
            .finish_non_exhaustive()
    }
}

/// The read half of an [`InterProcessReadWriteLock`].
pub struct ReadLock(Reentrant);

/// The write half of an [`InterProcessReadWriteLock`].
pub struct WriteLock(Reentrant);

impl InterProcessReadWriteLock {
    /// A read-write lock whose contenders live under `path`.
    pub fn new(coord: Arc<Coordinator>, path: &str) -> Result<Self> {
        check_path(path)?;
        let half = |name, rule| Reentrant {
            core: LockCore::new(Arc::clone(&coord), path),
            name,
            data: Bytes::new(),
            rule,
            held: Mutex::new(HashMap::new()),
            last_wakeups: AtomicU32::new(0),
        };
        Ok(InterProcessReadWriteLock {
            read: ReadLock(half(READ_NAME, read_turn)),
            write: WriteLock(half(WRITE_NAME, mutex_turn)),
        })
    }

    /// The read half.
    pub fn read_lock(&self) -> &ReadLock {
        &self.read
    }

    /// The write half.
    pub fn write_lock(&self) -> &WriteLock {
        &self.write
    }
}

macro_rules! half_api {
    ($t:ty) => {
        impl $t {
            /// Takes this half, waiting at most `timeout` (`None`: as long as it
            /// takes); `Ok(false)` on timeout.
            pub fn try_acquire(&self, timeout: Option<Duration>) -> Result<bool> {
                self.0.try_acquire(timeout)
            }

            /// Releases one hold of the calling thread.
            pub fn release(&self) -> Result<()> {
                self.0.release()
            }

            /// Whether the calling thread holds this half and the session has not
            /// been suspended or lost since.
            pub fn is_held_safely(&self) -> bool {
                self.0.held_safely()
            }

            /// Watch events that woke the last successful acquire.
            pub fn last_wakeups(&self) -> u32 {
                self.0.last_wakeups.load(Ordering::Relaxed)
            }
        }

        impl DistributedLock for $t {
            fn try_acquire(&self, timeout: Option<Duration>) -> Result<bool> {
                self.0.try_acquire(timeout)
            }

            fn release(&self) -> Result<()> {
                self.0.release()
            }
        }

        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($t))
                    .field("dir", &self.0.core.dir)
                    .finish_non_exhaustive()
            }
        }
    };
}

half_api!(ReadLock);
half_api!(WriteLock);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The read-write rules against a model: the holders are the leading run of
        /// readers, or the first contender alone if it is a writer; every waiter
        /// waits for someone ahead of it (so releases always make progress), and a
        /// writer waits for exactly its predecessor.
        #[test]
        fn read_write_rules_match_the_model(kinds in proptest::collection::vec(any::<bool>(), 1..20)) {
            let names: Vec<String> = kinds
                .iter()
                .enumerate()
                .map(|(i, w)| format!("g-{}{:010}", if *w { WRITE_NAME } else { READ_NAME }, i))
                .collect();
            let first_writer = kinds.iter().position(|w| *w);
            for (i, is_w) in kinds.iter().enumerate() {
                let turn = if *is_w { mutex_turn(&names, i) } else { read_turn(&names, i) };
                let model_holds = match first_writer {
                    Some(0) => i == 0,
                    Some(f) => i < f,
                    None => true,
                };
                match turn {
                    Turn::Acquired => prop_assert!(model_holds, "{} should wait", i),
                    Turn::WaitFor(p) => {
                        prop_assert!(!model_holds, "{} should hold", i);
                        let j = names.iter().position(|n| *n == p).unwrap_or(usize::MAX);
                        prop_assert!(j < i);
                        if *is_w {
                            prop_assert_eq!(j, i - 1);
                        } else {
                            prop_assert!(kinds[j]);
                        }
                    }
                }
            }
        }
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn mutex_waits_for_its_predecessor_only() {
        let c = names(&[
            "a-lock-0000000001",
            "b-lock-0000000002",
            "c-lock-0000000003",
        ]);
        assert!(matches!(mutex_turn(&c, 0), Turn::Acquired));
        assert!(matches!(mutex_turn(&c, 2), Turn::WaitFor(p) if p == "b-lock-0000000002"));
    }

    #[test]
    fn readers_wait_for_the_nearest_writer_ahead() {
        let c = names(&[
            "x-read-0000000001",
            "x-write-0000000002",
            "x-read-0000000003",
            "x-write-0000000004",
            "x-read-0000000005",
        ]);
        assert!(matches!(read_turn(&c, 0), Turn::Acquired));
        assert!(matches!(read_turn(&c, 2), Turn::WaitFor(p) if p == "x-write-0000000002"));
        assert!(matches!(read_turn(&c, 4), Turn::WaitFor(p) if p == "x-write-0000000004"));
        // A writer waits for whoever is just ahead of it, reader or writer.
        assert!(matches!(mutex_turn(&c, 3), Turn::WaitFor(p) if p == "x-read-0000000003"));
    }
}
