//! `ensemble-recipes` (crate `recipes`): the coordination patterns most users come to
//! ZooKeeper for, done right on the public [`ensemble`] client API, the way Apache
//! Curator does them.
//!
//! | recipe | type | nodes |
//! |---|---|---|
//! | leader election | [`LeaderLatch`], [`LeaderSelector`] | ephemeral sequential, watch predecessor |
//! | locks | [`InterProcessMutex`] (reentrant), [`InterProcessReadWriteLock`], [`InterProcessSemaphore`], [`MultiLock`] | ephemeral sequential, watch predecessor / nearest writer |
//! | barriers | [`DistributedBarrier`], [`DistributedDoubleBarrier`] | one node / ephemeral members + `ready` |
//! | queues | [`DistributedQueue`] (FIFO), [`PriorityQueue`] | persistent sequential + a fair consumer lock |
//! | shared value | [`SharedValue`], [`SharedCount`] | one node, version compare-and-set |
//! | membership, discovery | [`GroupMember`], [`ServiceDiscovery`], [`ServiceCache`] | ephemeral per member |
//! | tree cache | [`TreeCache`] | persistent recursive watch + initial read |
//!
//! Everything starts from a [`Coordinator`]: one session, whose single event stream
//! it dispatches to the recipes' waiters, and whose connection state it reports as
//! Curator does ([`ConnectionState`]): `Suspended` when the session's node leaves the
//! quorum (a lock holder or leader must stop trusting what it holds *at once*),
//! `Reconnected` when it is attached again, `Lost` when the session expired (what it
//! held is gone; the coordinator then opens a new session and recipes rejoin).
//!
//! Three mistakes the recipes avoid:
//! - **herd effect**: a waiter watches only the node it depends on, so a release
//!   wakes one waiter ([`Coordinator::delivered_notices`] lets tests count it);
//! - **a lost lock on session expiry**: holders see [`InterProcessMutex::is_held_safely`]
//!   and [`LeaderLatch::has_leadership`] turn false the moment `Suspended` arrives;
//! - **a create that succeeded during a connection loss**: sequential nodes are
//!   created with a GUID prefix ([`Coordinator::create_protected`]) and found again
//!   after the reconnection instead of being created twice.
//!
//! Runnable examples at the workspace root (`cargo run --example NAME`):
//! `master_election` (failover when the master's node crashes), `lock_workers`,
//! `config_watcher` (tree cache), `work_queue` (FIFO and priority queues),
//! `service_discovery`, `master_worker` (task assignment and reassignment).
//! Design notes: `crates/recipes/design.md`.
//!
//! ```
//! use std::time::Duration;
//! use ensemble::Cluster;
//! use recipes::{Coordinator, CoordinatorOptions, InterProcessMutex, LeaderLatch};
//!
//! let cluster = Cluster::builder(3).start().unwrap();
//! cluster.wait_for_leader(Duration::from_secs(20)).unwrap();
//! let coord = Coordinator::connect(&cluster.handles_from(1), CoordinatorOptions::default()).unwrap();
//!
//! // Leader election: the only candidate leads.
//! let latch = LeaderLatch::start(coord.clone(), "/app/leader", "me").unwrap();
//! assert!(latch.await_leadership(Some(Duration::from_secs(10))));
//!
//! // A lock, with a timeout.
//! let lock = InterProcessMutex::new(coord.clone(), "/app/lock").unwrap();
//! assert!(lock.try_acquire(Duration::from_secs(10)).unwrap());
//! assert!(lock.is_held_safely());
//! lock.release().unwrap();
//! latch.close();
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// The channel crate whose `Sender<Notice>` the coordinator's watch methods take.
pub use crossbeam_channel as channel;

pub mod barrier;
pub mod cache;
pub mod coordinator;
pub mod discovery;
pub mod election;
pub mod error;
pub mod lock;
mod ops;
pub mod queue;
pub mod semaphore;
pub mod seq;
pub mod shared;
mod watch_table;

pub use barrier::{DistributedBarrier, DistributedDoubleBarrier};
pub use cache::{CacheEvent, CachedNode, TreeCache};
pub use coordinator::{
    ConnectionState, Coordinator, CoordinatorOptions, ListenerId, Notice, WatchId,
};
pub use discovery::{group_members, GroupMember, ServiceCache, ServiceDiscovery, ServiceInstance};
pub use election::{LeaderLatch, LeaderSelector, LeadershipContext, Participant};
pub use error::{RecipeError, Result};
pub use lock::{
    DistributedLock, InterProcessMutex, InterProcessReadWriteLock, ReadLock, WriteLock,
};
pub use queue::{DistributedQueue, PriorityQueue};
pub use semaphore::{InterProcessSemaphore, Lease, MultiLock};
pub use shared::{SharedCount, SharedValue, Versioned};
