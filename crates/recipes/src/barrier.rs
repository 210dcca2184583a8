//! [`DistributedBarrier`] (a node whose existence holds everyone back) and
//! [`DistributedDoubleBarrier`] (enter together, leave together).
//!
//! A barrier releases all its waiters at once by design, so every waiter watches the
//! same node there; that is the point of the recipe, not a herd.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::Receiver;
use ensemble::CreateMode;

use crate::coordinator::{deadline_in, wait_notice, ConnectionState, Coordinator, Notice};
use crate::error::{code, RecipeError, Result};
use crate::ops;
use crate::seq::{check_path, join};

/// What a waiter does after its notice arrived: go round again, or stop.
fn after_notice(
    coord: &Coordinator,
    rx: &Receiver<Notice>,
    deadline: Option<Instant>,
) -> Result<bool> {
    match wait_notice(rx, deadline) {
        None => Ok(false),
        Some(Notice::Watch(_)) => Ok(true),
        Some(Notice::State(ConnectionState::Lost)) => Err(RecipeError::Lost),
        Some(Notice::State(ConnectionState::Closed)) => Err(RecipeError::Closed),
        Some(Notice::State(_)) => match coord.wait_connected(deadline) {
            Ok(()) => Ok(true),
            Err(RecipeError::Timeout) => Ok(false),
            Err(e) => Err(e),
        },
    }
}

fn exists_watch(
    coord: &Coordinator,
    path: &str,
    deadline: Option<Instant>,
) -> Result<(bool, Receiver<Notice>)> {
    loop {
        let (tx, rx) = crossbeam_channel::unbounded();
        match coord.exists_watch(path, &tx) {
            Ok((s, _)) => return Ok((s.is_some(), rx)),
            Err(ensemble::Error::SessionExpired) => return Err(RecipeError::Lost),
            Err(e) if e.is_retryable() => {
                std::thread::sleep(Duration::from_millis(5));
                coord.wait_connected(deadline)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// A barrier (Curator's `DistributedBarrier`): while its node exists, waiters wait.
pub struct DistributedBarrier {
    coord: Arc<Coordinator>,
    path: String,
}

impl std::fmt::Debug for DistributedBarrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistributedBarrier")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl DistributedBarrier {
    /// A barrier at `path`.
    pub fn new(coord: Arc<Coordinator>, path: &str) -> Result<Self> {
        check_path(path)?;
        Ok(DistributedBarrier {
            coord,
            path: path.to_string(),
        })
    }

    /// Raises the barrier (creates its node; fine if it is up already).
    pub fn set_barrier(&self) -> Result<()> {
        let parent = self.path.rsplit_once('/').map_or("/", |(p, _)| p);
        self.coord
            .ensure_path(if parent.is_empty() { "/" } else { parent })?;
        match self.coord.retry(None, |c| {
            ops::create(c, &self.path, Bytes::new(), CreateMode::Persistent)
        }) {
            Ok(_) => Ok(()),
            Err(e) if e.has_code(code::NODE_EXISTS) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Lowers the barrier, releasing every waiter.
    pub fn remove_barrier(&self) -> Result<()> {
        match self.coord.retry(None, |c| ops::delete(c, &self.path, -1)) {
            Ok(()) => Ok(()),
            Err(e) if e.has_code(code::NO_NODE) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Waits until the barrier is down, at most `timeout`; false on timeout.
    pub fn wait_on_barrier(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = deadline_in(timeout);
        loop {
            let (up, rx) = exists_watch(&self.coord, &self.path, deadline)?;
            if !up {
                return Ok(true);
            }
            if !after_notice(&self.coord, &rx, deadline)? {
                return Ok(false);
            }
        }
    }
}

const READY: &str = "ready";

/// A double barrier (Curator's `DistributedDoubleBarrier`, ZooKeeper's recipe):
/// `enter` returns once `member_count` members have entered; `leave` returns once
/// every member has left. Each member needs a distinct id. Leaving follows the
/// ZooKeeper recipe: the lowest member waits for the highest, every other member
/// removes itself and waits for the lowest, so a leave wakes few members.
pub struct DistributedDoubleBarrier {
    coord: Arc<Coordinator>,
    path: String,
    ready: String,
    ours: String,
    member_count: usize,
}

impl std::fmt::Debug for DistributedDoubleBarrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistributedDoubleBarrier")
            .field("path", &self.path)
            .field("ours", &self.ours)
            .finish_non_exhaustive()
    }
}

impl DistributedDoubleBarrier {
    /// Member `id` of a double barrier for `member_count` members at `path`.
    pub fn new(coord: Arc<Coordinator>, path: &str, member_count: usize, id: &str) -> Result<Self> {
        check_path(path)?;
        if member_count == 0 || id.is_empty() || id.contains('/') || id == READY {
            return Err(RecipeError::BadArgument(format!(
                "member_count {member_count} / id {id:?}"
            )));
        }
        Ok(DistributedDoubleBarrier {
            coord,
            ready: join(path, READY),
            ours: join(path, id),
            path: path.to_string(),
            member_count,
        })
    }

    fn members(&self, deadline: Option<Instant>) -> Result<Vec<String>> {
        let mut m = match self
            .coord
            .retry(deadline, |c| ops::get_children(c, &self.path, false))
        {
            Ok(m) => m,
            Err(e) if e.has_code(code::NO_NODE) => Vec::new(),
            Err(e) => return Err(e),
        };
        m.retain(|n| n != READY);
        m.sort();
        Ok(m)
    }

    /// Enters, and waits until `member_count` members have entered (at most
    /// `timeout`; false on timeout, after which this member has left again).
    pub fn enter(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = deadline_in(timeout);
        self.coord.ensure_path(&self.path)?;
        match self.coord.retry(deadline, |c| {
            ops::create(c, &self.ours, Bytes::new(), CreateMode::Ephemeral)
        }) {
            Ok(_) => {}
            // A retried create that had succeeded, or an id in use by another member.
            Err(e) if e.has_code(code::NODE_EXISTS) => {}
            Err(e) => return Err(e),
        }
        loop {
            // Watch `ready` before counting, so its creation cannot be missed.
            let (ready, rx) = exists_watch(&self.coord, &self.ready, deadline)?;
            if ready {
                return Ok(true);
            }
            if self.members(deadline)?.len() >= self.member_count {
                match self.coord.retry(deadline, |c| {
                    ops::create(c, &self.ready, Bytes::new(), CreateMode::Persistent)
                }) {
                    Ok(_) => return Ok(true),
                    Err(e) if e.has_code(code::NODE_EXISTS) => return Ok(true),
                    Err(e) => return Err(e),
                }
            }
            if !after_notice(&self.coord, &rx, deadline)? {
                self.delete(&self.ours)?;
                return Ok(false);
            }
        }
    }

    fn delete(&self, path: &str) -> Result<()> {
        match self.coord.retry(None, |c| ops::delete(c, path, -1)) {
            Ok(()) => Ok(()),
            Err(e) if e.has_code(code::NO_NODE) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Leaves, and waits until every member has left (at most `timeout`; false on
    /// timeout).
    pub fn leave(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = deadline_in(timeout);
        let our_name = crate::seq::basename(&self.ours).to_string();
        loop {
            let members = self.members(deadline)?;
            let (Some(lowest), Some(highest)) = (members.first(), members.last()) else {
                return Ok(true);
            };
            if members.len() == 1 && *lowest == our_name {
                self.delete(&self.ours)?;
                // The last one out takes the ready flag down for the next round.
                self.delete(&self.ready)?;
                return Ok(true);
            }
            let watch = if *lowest == our_name {
                join(&self.path, highest)
            } else {
                self.delete(&self.ours)?;
                join(&self.path, lowest)
            };
            let (present, rx) = exists_watch(&self.coord, &watch, deadline)?;
            if present && !after_notice(&self.coord, &rx, deadline)? {
                return Ok(false);
            }
        }
    }
}
