//! [`DistributedQueue`] (FIFO) and [`PriorityQueue`] on persistent sequential nodes.
//!
//! Items are `path/items/_c_<guid>-qn-<seq>` (or `...-pq-<priority>-<seq>`), created
//! with protection so a put interrupted by a connection loss is not duplicated.
//! Consumers take items under a fair internal mutex (`path/lock`): waiting consumers
//! queue on it, each watching its predecessor, and only the consumer at the head
//! watches the item directory, so an arriving item wakes one consumer, consumers are
//! served in arrival order, and items leave in order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ensemble::CreateMode;

use crate::coordinator::{deadline_in, wait_notice, ConnectionState, Coordinator, Notice};
use crate::error::{code, RecipeError, Result};
use crate::lock::InterProcessMutex;
use crate::ops;
use crate::seq::{check_path, join, sequence};

/// Sort key of an item name: (priority, sequence).
type KeyFn = fn(&str) -> (i64, i64);

fn fifo_key(name: &str) -> (i64, i64) {
    (0, sequence(name).unwrap_or(i64::MAX))
}

const PRIORITY_TAG: &str = "-pq-";

/// Priorities are written as 8 hex digits of the value with its sign bit flipped, so
/// that they sort as numbers.
fn encode_priority(p: i32) -> String {
    format!("{:08x}", (p as u32) ^ 0x8000_0000)
}

fn priority_key(name: &str) -> (i64, i64) {
    let prio = name
        .find(PRIORITY_TAG)
        .and_then(|i| name.get(i + PRIORITY_TAG.len()..i + PRIORITY_TAG.len() + 8))
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .map_or(i64::MAX, |u| i64::from((u ^ 0x8000_0000) as i32));
    (prio, sequence(name).unwrap_or(i64::MAX))
}

struct QueueCore {
    coord: Arc<Coordinator>,
    items: String,
    lock: InterProcessMutex,
    key: KeyFn,
}

impl QueueCore {
    fn new(coord: Arc<Coordinator>, path: &str, key: KeyFn) -> Result<Self> {
        check_path(path)?;
        Ok(QueueCore {
            lock: InterProcessMutex::new(Arc::clone(&coord), &join(path, "lock"))?,
            items: join(path, "items"),
            coord,
            key,
        })
    }

    fn put(&self, name: &str, data: Bytes) -> Result<String> {
        self.coord
            .create_protected(&self.items, name, data, CreateMode::PersistentSequential)
    }

    fn sorted(&self, mut names: Vec<String>) -> Vec<String> {
        let key = self.key;
        names.sort_by_key(|n| (key(n), n.clone()));
        names
    }

    fn len(&self) -> Result<usize> {
        match self
            .coord
            .retry(None, |c| ops::get_children(c, &self.items, false))
        {
            Ok(v) => Ok(v.len()),
            Err(e) if e.has_code(code::NO_NODE) => Ok(0),
            Err(e) => Err(e),
        }
    }

    fn take(&self, deadline: Option<Instant>) -> Result<Option<Bytes>> {
        if !self.lock.try_acquire_until(deadline)? {
            return Ok(None);
        }
        let r = self.take_locked(deadline);
        let released = self.lock.release();
        let item = r?;
        released?;
        Ok(item)
    }

    /// Deletes `path` that we read; a delete whose answer was lost is checked with
    /// exists (only lock holders delete, so a missing node is ours).
    fn remove(&self, path: &str) -> Result<bool> {
        loop {
            match ops::delete(&self.coord.client(), path, -1) {
                Ok(()) => return Ok(true),
                Err(e) if e.code() == code::NO_NODE => return Ok(false),
                Err(ensemble::Error::SessionExpired) => return Err(RecipeError::Lost),
                Err(e) if e.is_retryable() => {
                    std::thread::sleep(Duration::from_millis(5));
                    self.coord.wait_connected(None)?;
                    // Sync first: the node the session moved to may lag.
                    self.coord.retry(None, |c| ops::sync(c, path))?;
                    let gone = self
                        .coord
                        .retry(None, |c| ops::exists(c, path, false))?
                        .is_none();
                    if gone {
                        return Ok(true);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Takes the first item that is still there, if any.
    fn take_first(&self, names: Vec<String>, deadline: Option<Instant>) -> Result<Option<Bytes>> {
        for name in self.sorted(names) {
            let path = join(&self.items, &name);
            let data = match self
                .coord
                .retry(deadline, |c| ops::get_data(c, &path, false))
            {
                Ok((d, _)) => d,
                Err(e) if e.has_code(code::NO_NODE) => continue,
                Err(e) => return Err(e),
            };
            if self.remove(&path)? {
                return Ok(Some(data));
            }
        }
        Ok(None)
    }

    fn take_locked(&self, deadline: Option<Instant>) -> Result<Option<Bytes>> {
        loop {
            // Look without a watch first: a watch left behind by a successful take
            // would fire on our own delete and wake nobody useful.
            let names = match self
                .coord
                .retry(deadline, |c| ops::get_children(c, &self.items, false))
            {
                Ok(n) => n,
                Err(e) if e.has_code(code::NO_NODE) => {
                    self.coord.ensure_path(&self.items)?;
                    continue;
                }
                Err(RecipeError::Timeout) => return Ok(None),
                Err(e) => return Err(e),
            };
            if let Some(item) = self.take_first(names, deadline)? {
                return Ok(Some(item));
            }
            let (tx, rx) = crossbeam_channel::unbounded();
            match self.coord.children_watch(&self.items, &tx) {
                Ok((names, id)) => {
                    if !names.is_empty() {
                        // Items arrived meanwhile: take them without the watch.
                        self.coord.unwatch(id);
                        continue;
                    }
                }
                Err(ensemble::Error::SessionExpired) => return Err(RecipeError::Lost),
                Err(e) if e.is_retryable() => {
                    std::thread::sleep(Duration::from_millis(5));
                    match self.coord.wait_connected(deadline) {
                        Ok(()) => continue,
                        Err(RecipeError::Timeout) => return Ok(None),
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e.into()),
            }
            match wait_notice(&rx, deadline) {
                None => return Ok(None),
                Some(Notice::Watch(_)) => {}
                Some(Notice::State(ConnectionState::Lost)) => return Err(RecipeError::Lost),
                Some(Notice::State(ConnectionState::Closed)) => return Err(RecipeError::Closed),
                Some(Notice::State(_)) => match self.coord.wait_connected(deadline) {
                    Ok(()) => {}
                    Err(RecipeError::Timeout) => return Ok(None),
                    Err(e) => return Err(e),
                },
            }
        }
    }
}

/// A distributed FIFO queue. See the module docs.
pub struct DistributedQueue {
    core: QueueCore,
}

impl std::fmt::Debug for DistributedQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistributedQueue")
            .field("items", &self.core.items)
            .finish_non_exhaustive()
    }
}

impl DistributedQueue {
    /// A queue under `path`.
    pub fn new(coord: Arc<Coordinator>, path: &str) -> Result<Self> {
        Ok(DistributedQueue {
            core: QueueCore::new(coord, path, fifo_key)?,
        })
    }

    /// Appends an item; returns its node.
    pub fn put(&self, data: impl Into<Bytes>) -> Result<String> {
        self.core.put("qn-", data.into())
    }

    /// Removes and returns the oldest item, waiting at most `timeout` (`None`: as long
    /// as it takes) for one; `Ok(None)` on timeout.
    pub fn take(&self, timeout: Option<Duration>) -> Result<Option<Bytes>> {
        self.core.take(deadline_in(timeout))
    }

    /// Removes and returns the oldest item if there is one, without waiting for one.
    pub fn poll(&self) -> Result<Option<Bytes>> {
        self.core
            .take(Some(Instant::now() + Duration::from_millis(1)))
    }

    /// Items in the queue now.
    pub fn len(&self) -> Result<usize> {
        self.core.len()
    }

    /// Whether the queue is empty now.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Consumers waiting in `take` (holding or queued on the consumer lock).
    pub fn waiting_consumers(&self) -> Result<usize> {
        Ok(self.core.lock.participant_nodes()?.len())
    }
}

/// A distributed priority queue: the item with the lowest priority value leaves
/// first; equal priorities leave in FIFO order.
pub struct PriorityQueue {
    core: QueueCore,
}

impl std::fmt::Debug for PriorityQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PriorityQueue")
            .field("items", &self.core.items)
            .finish_non_exhaustive()
    }
}

impl PriorityQueue {
    /// A priority queue under `path`.
    pub fn new(coord: Arc<Coordinator>, path: &str) -> Result<Self> {
        Ok(PriorityQueue {
            core: QueueCore::new(coord, path, priority_key)?,
        })
    }

    /// Adds an item with `priority` (lower leaves first).
    pub fn put(&self, data: impl Into<Bytes>, priority: i32) -> Result<String> {
        let name = format!("pq-{}-", encode_priority(priority));
        self.core.put(&name, data.into())
    }

    /// Removes and returns the first item, waiting at most `timeout` for one.
    pub fn take(&self, timeout: Option<Duration>) -> Result<Option<Bytes>> {
        self.core.take(deadline_in(timeout))
    }

    /// Items in the queue now.
    pub fn len(&self) -> Result<usize> {
        self.core.len()
    }

    /// Whether the queue is empty now.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Names sort like (priority, sequence) pairs, the model order.
        #[test]
        fn priority_names_sort_like_numbers(items in proptest::collection::vec(any::<i32>(), 0..40)) {
            let mut names: Vec<String> = items
                .iter()
                .enumerate()
                .map(|(i, p)| format!("_c_00ff-pq-{}-{:010}", encode_priority(*p), i))
                .collect();
            names.reverse();
            names.sort_by_key(|n| (priority_key(n), n.clone()));
            let got: Vec<(i64, i64)> = names.iter().map(|n| priority_key(n)).collect();
            let mut model: Vec<(i64, i64)> = items
                .iter()
                .enumerate()
                .map(|(i, p)| (i64::from(*p), i as i64))
                .collect();
            model.sort_unstable();
            prop_assert_eq!(got, model);
        }
    }

    #[test]
    fn fifo_names_sort_by_sequence() {
        assert!(fifo_key("_c_1-qn-0000000002") < fifo_key("_c_0-qn-0000000010"));
    }
}
