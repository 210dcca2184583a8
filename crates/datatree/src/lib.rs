//! `datatree`: ZooKeeper's znode tree with its exact semantics.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod event;
pub mod watch;

pub use event::{Change, ChangeKind, EventType, SessionId, WatchedEvent, WatcherKind, WatcherType};
