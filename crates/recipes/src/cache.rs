//! [`TreeCache`]: a local, always-updating copy of a subtree (Curator's
//! `CuratorCache`), built on one persistent recursive watch and an initial read.
//!
//! The watch is registered before the initial read, so no change can fall between the
//! two. Each event is followed by a read of the node (reads are FIFO with the events
//! of the same session, so the read shows at least that change); a deletion removes
//! the node and everything below it. After a reconnection (or a new session) the
//! watch is added again and the whole subtree is read and compared with the cache,
//! so changes missed meanwhile are reported as events too.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use ensemble::{EventType, Stat};
use parking_lot::{Condvar, Mutex, RwLock};

use crate::coordinator::{ConnectionState, Coordinator, Notice, WatchId};
use crate::error::{code, RecipeError, Result};
use crate::ops;
use crate::seq::join;

/// A node as the cache holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedNode {
    /// Its data.
    pub data: Bytes,
    /// Its Stat when read.
    pub stat: Stat,
}

/// A change the cache saw.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheEvent {
    /// A node appeared (also reported for every node of the initial read).
    Created {
        /// Its path.
        path: String,
        /// Its data.
        data: Bytes,
    },
    /// A node's data changed.
    Changed {
        /// Its path.
        path: String,
        /// The new data.
        data: Bytes,
    },
    /// A node went away.
    Deleted {
        /// Its path.
        path: String,
    },
    /// The initial read is complete: the cache mirrors the tree.
    Initialized,
}

type CacheListener = Box<dyn Fn(&CacheEvent) + Send + Sync>;

struct CacheShared {
    coord: Arc<Coordinator>,
    root: String,
    nodes: RwLock<BTreeMap<String, CachedNode>>,
    listeners: Mutex<Vec<CacheListener>>,
    initialized: Mutex<bool>,
    init_cond: Condvar,
    closed: AtomicBool,
    events_tx: Sender<Notice>,
}

/// A cache of the subtree at a root. See the module docs.
pub struct TreeCache {
    shared: Arc<CacheShared>,
    watch: WatchId,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for TreeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeCache")
            .field("root", &self.shared.root)
            .field("nodes", &self.shared.nodes.read().len())
            .finish_non_exhaustive()
    }
}

fn is_under(root: &str, path: &str) -> bool {
    root == "/"
        || path == root
        || (path.starts_with(root) && path.as_bytes().get(root.len()) == Some(&b'/'))
}

impl TreeCache {
    /// Starts caching the subtree at `root` (which need not exist yet). The initial
    /// read starts at once on the cache's thread, so a listener added afterwards may
    /// miss some of its `Created` events; use [`TreeCache::start_with_listener`] to
    /// see them all.
    pub fn start(coord: Arc<Coordinator>, root: &str) -> Result<TreeCache> {
        Self::start_inner(coord, root, None)
    }

    /// As [`TreeCache::start`], with a listener in place before anything is read.
    pub fn start_with_listener(
        coord: Arc<Coordinator>,
        root: &str,
        listener: impl Fn(&CacheEvent) + Send + Sync + 'static,
    ) -> Result<TreeCache> {
        Self::start_inner(coord, root, Some(Box::new(listener)))
    }

    fn start_inner(
        coord: Arc<Coordinator>,
        root: &str,
        listener: Option<CacheListener>,
    ) -> Result<TreeCache> {
        if !root.starts_with('/') || (root.len() > 1 && root.ends_with('/')) {
            return Err(RecipeError::BadArgument(format!("bad root {root:?}")));
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(CacheShared {
            coord: Arc::clone(&coord),
            root: root.to_string(),
            nodes: RwLock::new(BTreeMap::new()),
            listeners: Mutex::new(listener.into_iter().collect()),
            initialized: Mutex::new(false),
            init_cond: Condvar::new(),
            closed: AtomicBool::new(false),
            events_tx: tx.clone(),
        });
        let watch = coord.recursive_watch(root, &tx)?;
        let sh = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("recipes-cache".into())
            .spawn(move || cache_loop(&sh, &rx))
            .map_err(|e| RecipeError::BadArgument(format!("cannot start the cache thread: {e}")))?;
        Ok(TreeCache {
            shared,
            watch,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Calls `f` for every later change (on the cache thread; keep it short).
    pub fn add_listener(&self, f: impl Fn(&CacheEvent) + Send + Sync + 'static) {
        self.shared.listeners.lock().push(Box::new(f));
    }

    /// Waits until the initial read is complete, at most `timeout`.
    pub fn wait_initialized(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut i = self.shared.initialized.lock();
        while !*i {
            if self
                .shared
                .init_cond
                .wait_until(&mut i, deadline)
                .timed_out()
            {
                return *i;
            }
        }
        true
    }

    /// The cached node at `path`.
    pub fn get(&self, path: &str) -> Option<CachedNode> {
        self.shared.nodes.read().get(path).cloned()
    }

    /// The cached children names of `path`, sorted.
    pub fn children(&self, path: &str) -> Vec<String> {
        let nodes = self.shared.nodes.read();
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(k, _)| {
                let rest = &k[prefix.len()..];
                (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_string())
            })
            .collect()
    }

    /// A copy of everything cached.
    pub fn snapshot(&self) -> BTreeMap<String, CachedNode> {
        self.shared.nodes.read().clone()
    }

    /// Stops the cache.
    pub fn close(&self) {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.shared.coord.unwatch(self.watch);
        let _ = self
            .shared
            .events_tx
            .send(Notice::State(ConnectionState::Closed));
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

impl Drop for TreeCache {
    fn drop(&mut self) {
        self.close();
    }
}

impl CacheShared {
    fn emit(&self, e: &CacheEvent) {
        for f in self.listeners.lock().iter() {
            f(e);
        }
    }

    /// Reads `path` into the cache, reporting what changed; a missing node is
    /// removed with its subtree.
    fn refresh(&self, path: &str) -> Result<()> {
        match self.coord.retry(None, |c| ops::get_data(c, path, false)) {
            Ok((data, stat)) => {
                let old = self.nodes.write().insert(
                    path.to_string(),
                    CachedNode {
                        data: data.clone(),
                        stat,
                    },
                );
                match old {
                    None => self.emit(&CacheEvent::Created {
                        path: path.to_string(),
                        data,
                    }),
                    Some(o) if o.stat.mzxid != stat.mzxid => self.emit(&CacheEvent::Changed {
                        path: path.to_string(),
                        data,
                    }),
                    Some(_) => {}
                }
                Ok(())
            }
            Err(e) if e.has_code(code::NO_NODE) => {
                self.remove_subtree(path);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn remove_subtree(&self, path: &str) {
        let gone: Vec<String> = {
            let mut nodes = self.nodes.write();
            let keys: Vec<String> = nodes
                .keys()
                .filter(|k| is_under(path, k))
                .cloned()
                .collect();
            for k in &keys {
                nodes.remove(k);
            }
            keys
        };
        // Deepest first, as the deletions must have happened.
        for p in gone.into_iter().rev() {
            self.emit(&CacheEvent::Deleted { path: p });
        }
    }

    /// Reads the whole subtree and reconciles the cache with it.
    fn full_read(&self) -> Result<()> {
        let mut seen = Vec::new();
        let mut stack = vec![self.root.clone()];
        while let Some(p) = stack.pop() {
            let exists = self.coord.retry(None, |c| ops::exists(c, &p, false))?;
            if exists.is_none() {
                continue;
            }
            self.refresh(&p)?;
            seen.push(p.clone());
            let children = match self.coord.retry(None, |c| ops::get_children(c, &p, false)) {
                Ok(c) => c,
                Err(e) if e.has_code(code::NO_NODE) => Vec::new(),
                Err(e) => return Err(e),
            };
            for c in children.into_iter().rev() {
                stack.push(join(&p, &c));
            }
        }
        let stale: Vec<String> = {
            let nodes = self.nodes.read();
            nodes
                .keys()
                .filter(|k| !seen.contains(k))
                .cloned()
                .collect()
        };
        for p in stale {
            self.remove_subtree(&p);
        }
        Ok(())
    }
}

fn cache_loop(sh: &CacheShared, rx: &Receiver<Notice>) {
    let mut need_full = true;
    while !sh.closed.load(Ordering::Acquire) {
        if need_full {
            match sh.full_read() {
                Ok(()) => {
                    need_full = false;
                    let mut i = sh.initialized.lock();
                    if !*i {
                        *i = true;
                        drop(i);
                        sh.init_cond.notify_all();
                        sh.emit(&CacheEvent::Initialized);
                    }
                }
                Err(RecipeError::Closed) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "tree cache: read failed; retrying");
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            }
        }
        let Ok(notice) = rx.recv() else { break };
        match notice {
            Notice::Watch(ev) => {
                let r = match ev.event_type {
                    EventType::NodeDeleted => {
                        sh.remove_subtree(&ev.path);
                        Ok(())
                    }
                    EventType::NodeChildrenChanged => Ok(()),
                    _ => sh.refresh(&ev.path),
                };
                if r.is_err() {
                    need_full = true;
                }
            }
            Notice::State(ConnectionState::Closed) => break,
            Notice::State(ConnectionState::Reconnected) => need_full = true,
            Notice::State(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtree_membership_is_by_whole_segments() {
        assert!(is_under("/a", "/a/b/c"));
        assert!(is_under("/a", "/a"));
        assert!(!is_under("/a", "/ab"));
        assert!(is_under("/", "/x"));
    }
}
