//! [`InterProcessSemaphore`]: a counting semaphore (Curator's
//! `InterProcessSemaphoreV2` algorithm) and [`MultiLock`].
//!
//! Leases are ephemeral nodes under `path/leases`. A process that wants a lease first
//! takes an internal mutex (`path/locks`, fair and herd-free), creates its lease node,
//! and only then, alone, watches the lease directory until at most `max_leases`
//! leases exist. Waiting processes queue on the mutex, each watching its predecessor,
//! so a returned lease wakes exactly one process.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ensemble::CreateMode;

use crate::coordinator::{
    deadline_in, remaining, wait_notice, ConnectionState, Coordinator, Notice,
};
use crate::error::{code, RecipeError, Result};
use crate::lock::{DistributedLock, InterProcessMutex};
use crate::ops;
use crate::seq::{check_path, join};

/// A counting semaphore across processes. See the module docs.
pub struct InterProcessSemaphore {
    coord: Arc<Coordinator>,
    leases_dir: String,
    max_leases: usize,
    lock: InterProcessMutex,
}

impl std::fmt::Debug for InterProcessSemaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InterProcessSemaphore")
            .field("leases_dir", &self.leases_dir)
            .field("max_leases", &self.max_leases)
            .finish_non_exhaustive()
    }
}

/// A lease of an [`InterProcessSemaphore`]; returned by [`Lease::release`] or when
/// dropped.
pub struct Lease {
    coord: Arc<Coordinator>,
    node: String,
    epoch: u64,
    released: bool,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("node", &self.node).finish()
    }
}

impl Lease {
    /// The lease node.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether the session has not been suspended or lost since the lease was taken.
    pub fn is_valid(&self) -> bool {
        self.coord.still_valid(self.epoch)
    }

    /// Returns the lease.
    pub fn release(mut self) -> Result<()> {
        self.released = true;
        delete_lease(&self.coord, &self.node)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.released {
            let _ = delete_lease(&self.coord, &self.node);
        }
    }
}

fn delete_lease(coord: &Coordinator, node: &str) -> Result<()> {
    let grace = Duration::from_millis(u64::from(coord.client().session_timeout_ms()));
    match coord.retry(Some(Instant::now() + grace), |c| ops::delete(c, node, -1)) {
        Ok(()) => Ok(()),
        Err(e) if e.has_code(code::NO_NODE) => Ok(()),
        Err(RecipeError::Lost) => Ok(()),
        Err(e) => Err(e),
    }
}

impl InterProcessSemaphore {
    /// A semaphore with `max_leases` leases under `path`. Every participant must use
    /// the same `max_leases`.
    pub fn new(coord: Arc<Coordinator>, path: &str, max_leases: usize) -> Result<Self> {
        check_path(path)?;
        if max_leases == 0 {
            return Err(RecipeError::BadArgument(
                "max_leases must be at least 1".into(),
            ));
        }
        let lock = InterProcessMutex::new(Arc::clone(&coord), &join(path, "locks"))?;
        Ok(InterProcessSemaphore {
            coord,
            leases_dir: join(path, "leases"),
            max_leases,
            lock,
        })
    }

    /// Takes one lease, waiting at most `timeout` (`None`: as long as it takes);
    /// `Ok(None)` on timeout.
    pub fn acquire(&self, timeout: Option<Duration>) -> Result<Option<Lease>> {
        let deadline = deadline_in(timeout);
        if !self.lock.try_acquire_until(deadline)? {
            return Ok(None);
        }
        let r = self.take_lease(deadline);
        let released = self.lock.release();
        let lease = r?;
        released?;
        Ok(lease)
    }

    /// The lease nodes now held.
    pub fn lease_nodes(&self) -> Result<Vec<String>> {
        match self
            .coord
            .retry(None, |c| ops::get_children(c, &self.leases_dir, false))
        {
            Ok(v) => Ok(v),
            Err(e) if e.has_code(code::NO_NODE) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// With the internal mutex held: creates a lease node and waits until it is
    /// among the first `max_leases`.
    fn take_lease(&self, deadline: Option<Instant>) -> Result<Option<Lease>> {
        let epoch = self.coord.epoch();
        let node = self.coord.create_protected(
            &self.leases_dir,
            "lease-",
            Bytes::new(),
            CreateMode::EphemeralSequential,
        )?;
        let ours = crate::seq::basename(&node).to_string();
        loop {
            let (tx, rx) = crossbeam_channel::unbounded();
            let listed = self.coord.children_watch(&self.leases_dir, &tx);
            let children = match listed {
                Ok((c, _)) => c,
                Err(ensemble::Error::SessionExpired) => return Err(RecipeError::Lost),
                Err(e) if e.is_retryable() => {
                    std::thread::sleep(Duration::from_millis(5));
                    self.coord.wait_connected(deadline)?;
                    continue;
                }
                Err(e) => {
                    let _ = delete_lease(&self.coord, &node);
                    return Err(e.into());
                }
            };
            if !children.contains(&ours) {
                return Err(RecipeError::Lost);
            }
            if children.len() <= self.max_leases {
                return Ok(Some(Lease {
                    coord: Arc::clone(&self.coord),
                    node,
                    epoch,
                    released: false,
                }));
            }
            match wait_notice(&rx, deadline) {
                None => {
                    let _ = delete_lease(&self.coord, &node);
                    return Ok(None);
                }
                Some(Notice::Watch(_)) => {}
                Some(Notice::State(ConnectionState::Lost)) => return Err(RecipeError::Lost),
                Some(Notice::State(ConnectionState::Closed)) => return Err(RecipeError::Closed),
                Some(Notice::State(_)) => {
                    if let Err(e) = self.coord.wait_connected(deadline) {
                        let _ = delete_lease(&self.coord, &node);
                        return match e {
                            RecipeError::Timeout => Ok(None),
                            e => Err(e),
                        };
                    }
                }
            }
            if remaining(deadline).is_some_and(|d| d.is_zero()) {
                let _ = delete_lease(&self.coord, &node);
                return Ok(None);
            }
        }
    }
}

/// Several locks taken as one (Curator's `InterProcessMultiLock`): acquired in the
/// given order, released in reverse; if one cannot be taken in time, the ones
/// already taken are released and the acquire fails.
pub struct MultiLock {
    locks: Vec<Box<dyn DistributedLock>>,
}

impl std::fmt::Debug for MultiLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiLock")
            .field("locks", &self.locks.len())
            .finish()
    }
}

impl MultiLock {
    /// Combines `locks` (take them in the same order everywhere to avoid deadlock).
    pub fn new(locks: Vec<Box<dyn DistributedLock>>) -> Self {
        MultiLock { locks }
    }

    /// Mutexes on each of `paths`.
    pub fn of_paths(coord: &Arc<Coordinator>, paths: &[&str]) -> Result<Self> {
        let mut locks: Vec<Box<dyn DistributedLock>> = Vec::new();
        for p in paths {
            locks.push(Box::new(InterProcessMutex::new(Arc::clone(coord), p)?));
        }
        Ok(MultiLock { locks })
    }
}

impl DistributedLock for MultiLock {
    fn try_acquire(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = deadline_in(timeout);
        for (i, lock) in self.locks.iter().enumerate() {
            let got = lock.try_acquire(remaining(deadline));
            match got {
                Ok(true) => {}
                other => {
                    for taken in self.locks[..i].iter().rev() {
                        let _ = taken.release();
                    }
                    return other.map(|_| false);
                }
            }
        }
        Ok(true)
    }

    fn release(&self) -> Result<()> {
        let mut first_err = None;
        for lock in self.locks.iter().rev() {
            if let Err(e) = lock.release() {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}
