//! The watch registry: which session watches which path, and the events a txn fires.
//!
//! [`WatchRegistry`] holds every registered watch, keyed by the watching session, and
//! turns the raw [`Change`]s that applying a transaction produced into the
//! [`WatchedEvent`]s ZooKeeper 3.9 would deliver, in the order it would deliver them.
//!
//! # Rules (ZooKeeper 3.9's `DataTree` and `WatchManager`)
//!
//! ZooKeeper keeps two watch tables, one for data watches and one for child watches;
//! each entry is a (session, path) pair with a set of modes. This registry keeps the
//! same information in one table with a small set of [`WatcherKind`]s per entry:
//!
//! | kind | ZooKeeper's table and mode |
//! |---|---|
//! | [`WatcherKind::Data`], [`WatcherKind::Exists`] | data table, standard (one-shot) |
//! | [`WatcherKind::Child`] | child table, standard (one-shot) |
//! | [`WatcherKind::Persistent`] | both tables, persistent |
//! | [`WatcherKind::PersistentRecursive`] | data table, persistent recursive |
//!
//! Each change fires one event type at its path:
//!
//! | change | event | fires at the path | one-shot kinds consumed |
//! |---|---|---|---|
//! | `Created` | `NodeCreated` | data, exists, persistent, recursive | data, exists |
//! | `DataChanged` | `NodeDataChanged` | data, exists, persistent, recursive | data, exists |
//! | `Deleted` | `NodeDeleted` | every kind | data, exists, child |
//! | `ChildrenChanged` | `NodeChildrenChanged` | child, persistent | child |
//!
//! and, except for `ChildrenChanged`, also fires the persistent recursive watches of
//! every ancestor of the path. Recursive watches are never told about
//! `NodeChildrenChanged`: the child side of a create or delete reaches them as the
//! child's own `NodeCreated` or `NodeDeleted`.
//!
//! A session receives **at most one event per change**, however many of its watches the
//! change satisfies (exists + getData + getChildren on the path, a persistent watch, a
//! recursive watch on an ancestor): every one-shot watch it satisfied is consumed, and
//! persistent watches stay, even when their node is deleted. A txn whose changes touch
//! the same path twice (a `multi` with two setData) fires once per change, as ZooKeeper
//! does.
//!
//! # Order
//!
//! Events follow the order of the changes. Within one change, sessions come in
//! ascending [`SessionId`] order (ZooKeeper's order there is a hash set's; a fixed
//! order keeps replicas and tests reproducible). Internal hash maps never leak their
//! iteration order into any output.
//!
//! A session's watches that fire on its own close (NodeDeleted of its ephemerals) must
//! be triggered before [`WatchRegistry::remove_session`] is called for it.
//!
//! # Not replicated state
//!
//! As in ZooKeeper, watches live on the server a session is attached to: the registry
//! is kept beside the tree, not in it, and is neither serialized in snapshots nor part
//! of the digest. A client that re-attaches elsewhere re-registers what
//! [`WatchRegistry::watches_of`] listed.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use datatree::watch::WatchRegistry;
//! use datatree::{Change, ChangeKind, EventType, SessionId, WatcherKind};
//!
//! let mut watches = WatchRegistry::new();
//! let alice = SessionId(1);
//! watches.add(alice, "/app/config", WatcherKind::Data);
//! watches.add(alice, "/app", WatcherKind::Child);
//!
//! // The tree reports a delete of /app/config as two raw changes.
//! let changes = [
//!     Change { path: Arc::from("/app/config"), kind: ChangeKind::Deleted },
//!     Change { path: Arc::from("/app"), kind: ChangeKind::ChildrenChanged },
//! ];
//! let events = watches.trigger(&changes, 7);
//! assert_eq!(events.len(), 2);
//! assert_eq!(events[0].1.event_type, EventType::NodeDeleted);
//! assert_eq!(events[1].1.event_type, EventType::NodeChildrenChanged);
//! // Both watches were one-shot and are gone.
//! assert_eq!(watches.watch_count(), 0);
//! ```

use std::collections::hash_map::Entry as MapEntry;
use std::collections::{btree_map, BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::event::{
    Change, ChangeKind, EventType, SessionId, WatchedEvent, WatcherKind, WatcherType,
};

mod kinds;
mod watchers;

use kinds::Kinds;
use watchers::PathWatchers;

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;

/// removeWatches matched no watch of the session (ZooKeeper's `NoWatcher`, code −121).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no {which:?} watch of session {session} on {path}")]
pub struct NoWatcher {
    /// The session that asked.
    pub session: SessionId,
    /// The path it named.
    pub path: String,
    /// The watcher type it asked to remove.
    pub which: WatcherType,
}

impl NoWatcher {
    /// ZooKeeper's error code for this error.
    pub const CODE: i32 = -121;
}

/// Running totals kept up to date by every change of a (session, path) entry.
#[derive(Debug, Default, Clone)]
struct Totals {
    /// ZooKeeper's `zk_watch_count` measure, see [`WatchRegistry::watch_count`].
    zk_count: usize,
    /// Byte length of a path → how many (session, path) entries of that length hold a
    /// persistent recursive watch. The ancestor walk hashes only ancestors whose length
    /// is here, so one recursive watch somewhere does not slow every other change down.
    recursive_by_len: BTreeMap<usize, usize>,
}

impl Totals {
    /// Accounts for one (session, `path`) entry's kinds going from `old` to `new`.
    fn update(&mut self, path: &str, old: Kinds, new: Kinds) {
        // `zk_count` includes `old.zk_count()` (this entry's share of it), so the
        // subtraction cannot underflow.
        self.zk_count = self.zk_count + new.zk_count() - old.zk_count();
        match (
            old.contains(Kinds::RECURSIVE),
            new.contains(Kinds::RECURSIVE),
        ) {
            (false, true) => *self.recursive_by_len.entry(path.len()).or_default() += 1,
            (true, false) => {
                if let btree_map::Entry::Occupied(mut slot) =
                    self.recursive_by_len.entry(path.len())
                {
                    *slot.get_mut() -= 1;
                    if *slot.get() == 0 {
                        slot.remove();
                    }
                }
            }
            _ => {}
        }
    }

    /// Whether any recursive watch exists.
    fn any_recursive(&self) -> bool {
        !self.recursive_by_len.is_empty()
    }

    /// Whether a recursive watch may sit on a path of `len` bytes.
    fn recursive_of_len(&self, len: usize) -> bool {
        self.recursive_by_len.contains_key(&len)
    }

    /// The number of (session, path) entries holding a recursive watch.
    #[cfg(test)]
    fn recursive_count(&self) -> usize {
        self.recursive_by_len.values().sum()
    }
}

/// Every registered watch, keyed by path and by session.
///
/// See the [module documentation](self) for the firing rules and event order.
#[derive(Debug, Default)]
pub struct WatchRegistry {
    /// Path → its watchers, never empty.
    by_path: HashMap<Arc<str>, PathWatchers>,
    /// Session → the paths it watches (sharing the keys of `by_path`), never empty.
    by_session: HashMap<SessionId, HashSet<Arc<str>>>,
    totals: Totals,
    /// Scratch buffer of the sessions one change fires, reused across calls.
    fired: Vec<SessionId>,
}

impl WatchRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a watch of `kind` by `session` on `path`.
    ///
    /// The caller decides when a read leaves a watch (exists always; getData and
    /// getChildren only on an existing node) and validates the path; the registry takes
    /// any string. Returns `true` if the watch is new, `false` if the session already
    /// had a watch of this kind on the path (nothing changes then).
    pub fn add(&mut self, session: SessionId, path: &str, kind: WatcherKind) -> bool {
        let bit = Kinds::of(kind);
        let key = match self.by_path.get_key_value(path) {
            Some((key, _)) => Arc::clone(key),
            None => Arc::from(path),
        };
        let watchers = self.by_path.entry(Arc::clone(&key)).or_default();
        let old = watchers.kinds(session);
        if old.contains(bit) {
            return false;
        }
        watchers.set(session, old.with(bit));
        self.totals.update(path, old, old.with(bit));
        if old.is_empty() {
            self.by_session.entry(session).or_default().insert(key);
        }
        true
    }

    /// Fires the watches that `changes` (one applied txn's raw changes, in order)
    /// trigger, and returns the events to deliver, in delivery order.
    ///
    /// One-shot watches that fire are removed; persistent ones stay. Allocates nothing
    /// when no watch fires.
    pub fn trigger(&mut self, changes: &[Change], zxid: i64) -> Vec<(SessionId, WatchedEvent)> {
        let mut out = Vec::new();
        self.trigger_into(changes, zxid, &mut out);
        out
    }

    /// As [`trigger`](Self::trigger), appending the events to `out` so that a caller can
    /// reuse one buffer.
    pub fn trigger_into(
        &mut self,
        changes: &[Change],
        zxid: i64,
        out: &mut Vec<(SessionId, WatchedEvent)>,
    ) {
        if self.by_path.is_empty() {
            return;
        }
        for change in changes {
            let rule = Rule::of(change.kind);
            self.fire_at_path(&change.path, rule);
            if rule.reaches_ancestors && self.totals.any_recursive() {
                self.fire_recursive_ancestors(&change.path);
            }
            for &session in &self.fired {
                let event = WatchedEvent {
                    event_type: rule.event_type,
                    path: Arc::clone(&change.path),
                    zxid,
                };
                out.push((session, event));
            }
        }
    }

    /// Collects into `self.fired` (replacing its content) the sessions whose watches on
    /// `path` itself fire under `rule`, consuming their one-shot watches. The result is
    /// sorted by session.
    fn fire_at_path(&mut self, path: &str, rule: Rule) {
        self.fired.clear();
        let Some(watchers) = self.by_path.get_mut(path) else {
            return;
        };
        let fired = &mut self.fired;
        let totals = &mut self.totals;
        let by_session = &mut self.by_session;
        watchers.update_each(|session, kinds| {
            if !kinds.intersects(rule.fires) {
                return;
            }
            fired.push(session);
            let left = kinds.without(rule.consumes);
            totals.update(path, *kinds, left);
            if left.is_empty() {
                forget_path(by_session, session, path);
            }
            *kinds = left;
        });
        if watchers.is_empty() {
            self.by_path.remove(path);
        }
    }

    /// Adds to `self.fired` the sessions with a persistent recursive watch on a strict
    /// ancestor of `path`, keeping `self.fired` sorted and free of duplicates.
    fn fire_recursive_ancestors(&mut self, path: &str) {
        let before = self.fired.len();
        let mut at = parent(path);
        while let Some(ancestor) = at {
            if !self.totals.recursive_of_len(ancestor.len()) {
                at = parent(ancestor);
                continue;
            }
            if let Some(watchers) = self.by_path.get(ancestor) {
                let fired = &mut self.fired;
                watchers.for_each(|session, kinds| {
                    if kinds.contains(Kinds::RECURSIVE) {
                        fired.push(session);
                    }
                });
            }
            at = parent(ancestor);
        }
        if self.fired.len() > before {
            self.fired.sort_unstable();
            self.fired.dedup();
        }
    }

    /// Removes `session`'s watches on `path` that `which` selects, as ZooKeeper 3.9's
    /// removeWatches does on the server.
    ///
    /// - [`WatcherType::Children`]: the one-shot child watch;
    /// - [`WatcherType::Data`]: the one-shot data and exists watches;
    /// - [`WatcherType::Persistent`]: the persistent watch;
    /// - [`WatcherType::PersistentRecursive`]: the persistent recursive watch;
    /// - [`WatcherType::Any`]: every watch of the session on the path.
    ///
    /// Since ZooKeeper 3.9 (ZOOKEEPER-4471), `Children` and `Data` leave persistent
    /// watches alone. Returns [`NoWatcher`] if nothing was removed.
    pub fn remove(
        &mut self,
        session: SessionId,
        path: &str,
        which: WatcherType,
    ) -> Result<(), NoWatcher> {
        let removed = self.remove_kinds(session, path, Kinds::selected_by(which));
        if removed {
            Ok(())
        } else {
            Err(NoWatcher {
                session,
                path: path.to_owned(),
                which,
            })
        }
    }

    /// Removes the `mask` kinds of `session`'s entry on `path`; `true` if any was there.
    fn remove_kinds(&mut self, session: SessionId, path: &str, mask: Kinds) -> bool {
        let Some(watchers) = self.by_path.get_mut(path) else {
            return false;
        };
        let old = watchers.kinds(session);
        let left = old.without(mask);
        if left == old {
            return false;
        }
        watchers.set(session, left);
        self.totals.update(path, old, left);
        if watchers.is_empty() {
            self.by_path.remove(path);
        }
        if left.is_empty() {
            forget_path(&mut self.by_session, session, path);
        }
        true
    }

    /// Whether `session` has a watch on `path` that `which` selects (ZooKeeper's
    /// checkWatches); the selection is the one [`remove`](Self::remove) uses.
    pub fn contains(&self, session: SessionId, path: &str, which: WatcherType) -> bool {
        self.kinds_of(session, path)
            .intersects(Kinds::selected_by(which))
    }

    /// Drops every watch of `session` at once (its session closed or expired, or its
    /// connection moved away), returning how many (path, kind) watches it had.
    ///
    /// Trigger the session's closing txn first: ZooKeeper delivers NodeDeleted for the
    /// session's own watched ephemerals before its close completes.
    pub fn remove_session(&mut self, session: SessionId) -> usize {
        let Some(paths) = self.by_session.remove(&session) else {
            return 0;
        };
        let mut removed = 0;
        for path in paths {
            let MapEntry::Occupied(mut slot) = self.by_path.entry(path) else {
                continue; // unreachable while both maps agree; nothing to undo
            };
            let old = slot.get_mut().set(session, Kinds::NONE);
            removed += old.len();
            self.totals.update(slot.key(), old, Kinds::NONE);
            if slot.get().is_empty() {
                slot.remove();
            }
        }
        removed
    }

    /// The watches of `session`, sorted by path then kind: what a client re-attaching
    /// to another server re-registers (ZooKeeper's SetWatches lists).
    pub fn watches_of(&self, session: SessionId) -> Vec<(Arc<str>, WatcherKind)> {
        let Some(paths) = self.by_session.get(&session) else {
            return Vec::new();
        };
        let mut all = Vec::new();
        for path in paths {
            let kinds = self.kinds_of(session, path);
            all.extend(kinds.iter().map(|kind| (Arc::clone(path), kind)));
        }
        all.sort_unstable();
        all
    }

    /// The kinds `session` watches `path` with, as registered now.
    pub fn kinds_on(&self, session: SessionId, path: &str) -> Vec<WatcherKind> {
        self.kinds_of(session, path).iter().collect()
    }

    fn kinds_of(&self, session: SessionId, path: &str) -> Kinds {
        self.by_path
            .get(path)
            .map_or(Kinds::NONE, |watchers| watchers.kinds(session))
    }

    /// The number of watches, counted as ZooKeeper's `zk_watch_count` (mntr) counts
    /// them: one per (session, path) in the data table plus one per (session, path) in
    /// the child table. So data + exists on one path count 1, data + child count 2, a
    /// persistent watch counts 2 (it sits in both tables), a recursive one counts 1.
    pub fn watch_count(&self) -> usize {
        self.totals.zk_count
    }

    /// The [`watch_count`](Self::watch_count) measure restricted to one session.
    pub fn session_watch_count(&self, session: SessionId) -> usize {
        self.by_session.get(&session).map_or(0, |paths| {
            paths
                .iter()
                .map(|path| self.kinds_of(session, path).zk_count())
                .sum()
        })
    }

    /// The [`watch_count`](Self::watch_count) measure restricted to one path.
    pub fn path_watch_count(&self, path: &str) -> usize {
        let mut count = 0;
        if let Some(watchers) = self.by_path.get(path) {
            watchers.for_each(|_, kinds| count += kinds.zk_count());
        }
        count
    }

    /// The number of sessions with at least one watch.
    pub fn session_count(&self) -> usize {
        self.by_session.len()
    }

    /// The number of paths with at least one watch.
    pub fn path_count(&self) -> usize {
        self.by_path.len()
    }

    /// Whether no watch is registered.
    pub fn is_empty(&self) -> bool {
        self.by_path.is_empty()
    }
}

/// What one kind of change fires.
#[derive(Debug, Clone, Copy)]
struct Rule {
    event_type: EventType,
    /// Kinds on the changed path itself that fire.
    fires: Kinds,
    /// One-shot kinds on the changed path that firing consumes.
    consumes: Kinds,
    /// Whether recursive watches on ancestors fire too.
    reaches_ancestors: bool,
}

impl Rule {
    fn of(kind: ChangeKind) -> Rule {
        match kind {
            ChangeKind::Created => Rule {
                event_type: EventType::NodeCreated,
                fires: Kinds::DATA_TABLE,
                consumes: Kinds::ONE_SHOT_DATA,
                reaches_ancestors: true,
            },
            ChangeKind::DataChanged => Rule {
                event_type: EventType::NodeDataChanged,
                fires: Kinds::DATA_TABLE,
                consumes: Kinds::ONE_SHOT_DATA,
                reaches_ancestors: true,
            },
            // ZooKeeper triggers both tables on the deleted path; the child table's
            // NodeDeleted is suppressed for sessions the data table already notified.
            ChangeKind::Deleted => Rule {
                event_type: EventType::NodeDeleted,
                fires: Kinds::ALL,
                consumes: Kinds::ONE_SHOT,
                reaches_ancestors: true,
            },
            // Only the child table hears of child changes, and recursive watches live
            // in the data table only: they never see NodeChildrenChanged.
            ChangeKind::ChildrenChanged => Rule {
                event_type: EventType::NodeChildrenChanged,
                fires: Kinds::CHILD_TABLE,
                consumes: Kinds::CHILD,
                reaches_ancestors: false,
            },
        }
    }
}

/// Removes `path` from `session`'s path set, and the session once it watches nothing.
fn forget_path(
    by_session: &mut HashMap<SessionId, HashSet<Arc<str>>>,
    session: SessionId,
    path: &str,
) {
    if let MapEntry::Occupied(mut slot) = by_session.entry(session) {
        slot.get_mut().remove(path);
        if slot.get().is_empty() {
            slot.remove();
        }
    }
}

/// The parent of an absolute path (`/a/b` → `/a`, `/a` → `/`), `None` for `/` and for
/// strings without a `/` (the registry never panics on a path the tree would reject).
fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        None => None,
        Some(0) => Some("/"),
        // `i` indexes an ASCII '/', so it is a char boundary.
        Some(i) => path.get(..i),
    }
}
