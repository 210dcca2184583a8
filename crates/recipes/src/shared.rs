//! [`SharedValue`] and [`SharedCount`]: a value in one node, changed by version
//! compare-and-set, with a blocking wait for the next change.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ensemble::CreateMode;

use crate::coordinator::{deadline_in, wait_notice, ConnectionState, Coordinator, Notice};
use crate::error::{code, RecipeError, Result};
use crate::ops;
use crate::seq::check_path;

/// A value and the version it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// The node's data version (pass it to a compare-and-set).
    pub version: i32,
}

/// A shared byte value (Curator's `SharedValue`).
pub struct SharedValue {
    coord: Arc<Coordinator>,
    path: String,
}

impl std::fmt::Debug for SharedValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedValue")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SharedValue {
    /// The value at `path`, created with `seed` if the node does not exist.
    pub fn new(coord: Arc<Coordinator>, path: &str, seed: impl Into<Bytes>) -> Result<Self> {
        check_path(path)?;
        let seed = seed.into();
        if let Some((parent, _)) = path.rsplit_once('/') {
            coord.ensure_path(parent)?;
        }
        match coord.retry(None, |c| {
            ops::create(c, path, seed.clone(), CreateMode::Persistent)
        }) {
            Ok(_) => {}
            Err(e) if e.has_code(code::NODE_EXISTS) => {}
            Err(e) => return Err(e),
        }
        Ok(SharedValue {
            coord,
            path: path.to_string(),
        })
    }

    /// The value now, with its version.
    pub fn value(&self) -> Result<Versioned<Bytes>> {
        let (d, s) = self
            .coord
            .retry(None, |c| ops::get_data(c, &self.path, false))?;
        Ok(Versioned {
            value: d,
            version: s.version,
        })
    }

    /// Sets the value if its version is still `version`; false if someone changed it
    /// first. A connection loss during the write is reported as an error: the write
    /// may or may not have happened (read again to know).
    pub fn try_set(&self, value: impl Into<Bytes>, version: i32) -> Result<bool> {
        match self
            .coord
            .client()
            .set_data(&self.path, value.into(), version)
        {
            Ok(_) => Ok(true),
            Err(e) if e.code() == code::BAD_VERSION => Ok(false),
            Err(ensemble::Error::SessionExpired) => Err(RecipeError::Lost),
            Err(e) => Err(e.into()),
        }
    }

    /// Sets the value unconditionally.
    pub fn set(&self, value: impl Into<Bytes>) -> Result<()> {
        let v = value.into();
        self.coord
            .retry(None, |c| ops::set_data(c, &self.path, v.clone(), -1))
            .map(|_| ())
    }

    /// Waits until the version differs from `seen_version`, at most `timeout`;
    /// returns the new value, or `None` on timeout.
    pub fn wait_change(
        &self,
        seen_version: i32,
        timeout: Option<Duration>,
    ) -> Result<Option<Versioned<Bytes>>> {
        let deadline = deadline_in(timeout);
        loop {
            let (tx, rx) = crossbeam_channel::unbounded();
            match self.coord.data_watch(&self.path, &tx) {
                Ok((d, s, id)) => {
                    if s.version != seen_version {
                        self.coord.unwatch(id);
                        return Ok(Some(Versioned {
                            value: d,
                            version: s.version,
                        }));
                    }
                }
                Err(ensemble::Error::SessionExpired) => return Err(RecipeError::Lost),
                Err(e) if e.is_retryable() => {
                    std::thread::sleep(Duration::from_millis(5));
                    self.coord.wait_connected(deadline)?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            match wait_notice(&rx, deadline) {
                None => return Ok(None),
                Some(Notice::Watch(_)) => {}
                Some(Notice::State(ConnectionState::Closed)) => return Err(RecipeError::Closed),
                Some(Notice::State(_)) => match self.coord.wait_connected(deadline) {
                    Ok(()) => {}
                    Err(RecipeError::Timeout) => return Ok(None),
                    Err(e) => return Err(e),
                },
            }
        }
    }

    /// The node's path.
    pub fn path(&self) -> &str {
        &self.path
    }
}

/// A shared 64-bit counter (Curator's `SharedCount`, with an atomic add like
/// `DistributedAtomicLong`), stored as 8 big-endian bytes.
#[derive(Debug)]
pub struct SharedCount {
    value: SharedValue,
}

fn decode(path: &str, b: &[u8]) -> Result<i64> {
    let arr: [u8; 8] = b.try_into().map_err(|_| RecipeError::BadData {
        path: path.to_string(),
        reason: format!("{} bytes, expected 8", b.len()),
    })?;
    Ok(i64::from_be_bytes(arr))
}

impl SharedCount {
    /// The counter at `path`, created with `seed` if missing.
    pub fn new(coord: Arc<Coordinator>, path: &str, seed: i64) -> Result<Self> {
        Ok(SharedCount {
            value: SharedValue::new(coord, path, Bytes::copy_from_slice(&seed.to_be_bytes()))?,
        })
    }

    /// The count now, with its version.
    pub fn count(&self) -> Result<Versioned<i64>> {
        let v = self.value.value()?;
        Ok(Versioned {
            value: decode(self.value.path(), &v.value)?,
            version: v.version,
        })
    }

    /// Sets the count if its version is still `version`.
    pub fn try_set_count(&self, count: i64, version: i32) -> Result<bool> {
        self.value
            .try_set(Bytes::copy_from_slice(&count.to_be_bytes()), version)
    }

    /// Adds `delta` atomically (compare-and-set, retried on conflict); returns the
    /// new count.
    pub fn add(&self, delta: i64) -> Result<i64> {
        loop {
            let now = self.count()?;
            let next = now.value.wrapping_add(delta);
            match self.try_set_count(next, now.version) {
                Ok(true) => return Ok(next),
                Ok(false) => {}
                // The outcome of the write is unknown: read again and retry would
                // risk adding twice, so report it.
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits for the count to change from version `seen_version`.
    pub fn wait_change(
        &self,
        seen_version: i32,
        timeout: Option<Duration>,
    ) -> Result<Option<Versioned<i64>>> {
        match self.value.wait_change(seen_version, timeout)? {
            None => Ok(None),
            Some(v) => Ok(Some(Versioned {
                value: decode(self.value.path(), &v.value)?,
                version: v.version,
            })),
        }
    }
}
