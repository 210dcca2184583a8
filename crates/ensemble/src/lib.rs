//! `ensemble`: ZooKeeper's replicated znode tree and its ZAB protocol, embedded in a
//! Rust process: the [`Node`], its [`Client`] API and the in-process [`Cluster`]
//! harness.
//!
//! - [`Node`] runs one server: a core thread owning the deterministic [`Server`]
//!   (ZAB + tree + sessions), a log-writer thread with group commit, a snapshot
//!   thread, and a transport to its peers. Configure it with [`NodeConfig::builder`].
//!   A single node is simply an ensemble of one.
//! - [`Client`] is a session: blocking methods and futures ([`Call`]) for every
//!   ZooKeeper operation, FIFO order per session, and one ordered stream of watch and
//!   session events ([`Client::events`], [`Client::event_stream`]). A client given
//!   several nodes moves its session when its node leaves the quorum.
//! - [`Cluster`] starts N voters and M observers over the in-memory network, crashes,
//!   restarts, partitions and heals them, and checks that replicas converge.
//! - [`Server`] is sans-IO: a simulator drives it with virtual time (see `design.md`).
//!
//! # One node, a client, a watch
//!
//! ```
//! use std::sync::Arc;
//! use ensemble::{Acl, CreateMode, Event, EventType, Node, NodeConfig};
//! use transport::{mem::MemNetwork, NodeId};
//!
//! let net = MemNetwork::new(1);
//! let node = Node::start(
//!     NodeConfig::builder(1).tick_ms(10).build()?,
//!     Arc::new(net.endpoint(NodeId(1))),
//! )?;
//! let client = node.client()?;
//! client.create("/config", &b"v1"[..], &Acl::open_unsafe(), CreateMode::Persistent)?;
//! let (data, stat) = client.get_data("/config", true)?; // leaves a watch
//! assert_eq!((&data[..], stat.version), (&b"v1"[..], 0));
//!
//! // Futures: many operations outstanding, completed in order; no runtime needed.
//! let a = client.set_data_async("/config", &b"v2"[..], 0);
//! let b = client.get_data_async("/config", false);
//! assert_eq!(futures::executor::block_on(a)?.version, 1);
//! assert_eq!(&b.wait()?.0[..], b"v2");
//!
//! // The watch fired before the read that shows the change was answered.
//! let fired = client.events().try_iter().find_map(|e| match e {
//!     Event::Watch(w) => Some(w.event_type),
//!     _ => None,
//! });
//! assert_eq!(fired, Some(EventType::NodeDataChanged));
//! client.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Guarantees
//! Linearizable writes; FIFO order per session; reads served by the session's node
//! from its applied tree (sequentially consistent); [`Client::sync`] goes through the
//! quorum, so sync-then-read (or [`Client::get_data_linearizable`]) never returns
//! stale data, at the cost of one quorum round trip and one log write.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod auth;
pub mod client;
pub mod cluster;
pub mod codec;
pub mod error;
pub mod node;
pub mod ops;
pub mod server;

pub use client::{Call, Client, ClientOptions, EventStream};
pub use cluster::{Cluster, ClusterBuilder};
pub use datatree::{
    Acl, CreateMode, EventType, Id, OpResult, Perms, Quota, Stat, WatchedEvent, WatcherType,
    WriteOp,
};
pub use error::Error;
pub use node::{
    ConfigError, Fsync, Node, NodeConfig, NodeConfigBuilder, NodeError, NodeHandle, NodeStats,
    StorageKind, Stores,
};
pub use ops::{
    AddWatchMode, ConnId, Event, QuotaInfo, ReadOp, ReadResult, Request, Response, SessionEvent,
    SessionId, Xid,
};
pub use server::{Server, ServerAction, ServerConfig, ServerStats, StorageDone, StorageOp};

/// The crates Ensemble is built from, re-exported so users need only this one.
pub mod deps {
    pub use datatree;
    pub use session;
    pub use storage;
    pub use transport;
    pub use zab_core;
}
