//! What applying a transaction changed, and the watch events clients receive.
//!
//! The tree reports raw [`Change`]s for every applied transaction, in order; the
//! [`crate::watch::WatchRegistry`] turns them into the [`WatchedEvent`]s ZooKeeper would
//! deliver to each watching session.

use std::fmt;
use std::sync::Arc;

/// A client session id, as ZooKeeper's signed 64-bit session id.
///
/// `SessionId(0)` is never a real session: it is the `ephemeralOwner` of non-ephemeral
/// nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SessionId(pub i64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:016x}", self.0)
    }
}

/// The kind of a raw change made by applying a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// The node at the path was created.
    Created,
    /// The node at the path was deleted.
    Deleted,
    /// The node's data was set (always reported, even for identical bytes).
    DataChanged,
    /// A child of the node at the path was created or deleted.
    ChildrenChanged,
}

/// One raw change made by applying a transaction.
///
/// A create of `/a/b` yields `Created(/a/b)` then `ChildrenChanged(/a)`; a delete yields
/// `Deleted(/a/b)` then `ChildrenChanged(/a)`; setData yields `DataChanged`; setACL
/// yields nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Change {
    /// The absolute path the change is about.
    pub path: Arc<str>,
    /// What happened at that path.
    pub kind: ChangeKind,
}

/// The type of a watch notification, with ZooKeeper's numeric codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// The watched node was created (code 1).
    NodeCreated,
    /// The watched node was deleted (code 2).
    NodeDeleted,
    /// The watched node's data changed (code 3).
    NodeDataChanged,
    /// The watched node's children changed (code 4).
    NodeChildrenChanged,
}

impl EventType {
    /// ZooKeeper's wire code for this event type.
    pub fn code(self) -> i32 {
        match self {
            EventType::NodeCreated => 1,
            EventType::NodeDeleted => 2,
            EventType::NodeDataChanged => 3,
            EventType::NodeChildrenChanged => 4,
        }
    }
}

/// A watch notification for one session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WatchedEvent {
    /// What happened.
    pub event_type: EventType,
    /// The path of the node the event is about.
    pub path: Arc<str>,
    /// The zxid of the transaction that caused the event.
    pub zxid: i64,
}

/// The kind of a registered watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WatcherKind {
    /// One-shot data watch, set by getData on an existing node.
    Data,
    /// One-shot exists watch, set by exists (also on a missing node).
    Exists,
    /// One-shot child watch, set by getChildren on an existing node.
    Child,
    /// Persistent watch (addWatch PERSISTENT): a permanent exists + data + child watch.
    Persistent,
    /// Persistent recursive watch (addWatch PERSISTENT_RECURSIVE): created, deleted and
    /// data-changed events for the path and all its descendants.
    PersistentRecursive,
}

/// Which watches `removeWatches` removes, as ZooKeeper 3.9's `WatcherType`.
///
/// Since ZooKeeper 3.9 (ZOOKEEPER-4471) `Children` and `Data` remove only one-shot
/// watches; persistent watches are removed with `Persistent`, `PersistentRecursive` or
/// `Any`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatcherType {
    /// One-shot child watches.
    Children,
    /// One-shot data and exists watches.
    Data,
    /// Every watch on the path.
    Any,
    /// Only persistent (non-recursive) watches.
    Persistent,
    /// Only persistent recursive watches.
    PersistentRecursive,
}
