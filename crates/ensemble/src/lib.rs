//! `ensemble`: the embeddable Node, its client API and the in-process cluster harness.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

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
    Acl, CreateMode, EventType, OpResult, Stat, WatchedEvent, WatcherType, WriteOp,
};
pub use error::Error;
pub use node::{
    ConfigError, Fsync, Node, NodeConfig, NodeConfigBuilder, NodeError, NodeHandle, NodeStats,
    StorageKind, Stores,
};
pub use ops::{
    AddWatchMode, ConnId, Event, ReadOp, ReadResult, Request, Response, SessionEvent, SessionId,
    Xid,
};
pub use server::{Server, ServerAction, ServerConfig, ServerStats, StorageDone, StorageOp};
