//! `datatree`: ZooKeeper's replicated znode tree, with its exact semantics.
//!
//! The tree is a deterministic state machine. A leader *prepares* client write
//! requests into self-contained [`Txn`]s with [`Prep`] (which sees the tree plus the
//! changes still in flight); every replica *applies* committed txns in zxid order with
//! [`DataTree::apply`], which returns per-op results and the raw [`Change`]s; the
//! [`WatchRegistry`] turns those changes into the [`WatchedEvent`]s each session
//! receives. Reads are plain methods on [`DataTree`].
//!
//! ```
//! use bytes::Bytes;
//! use datatree::{Acl, CreateMode, DataTree, Prep, PrepContext, SessionId, Txn, WriteOp};
//!
//! let mut tree = DataTree::new();
//! let mut prep = Prep::default();
//! let ctx = PrepContext { session: SessionId(7), auth: &[], zxid: 1 };
//! let op = WriteOp::Create {
//!     path: "/app".into(),
//!     data: Bytes::from_static(b"v1"),
//!     acl: Acl::open_unsafe(),
//!     mode: CreateMode::Persistent,
//!     ttl_ms: 0,
//! };
//! let txn = Txn { zxid: 1, time_ms: 1_000, op: prep.prepare(&tree, &ctx, &op).unwrap() };
//! tree.apply(&txn).unwrap();
//! prep.handle_applied(1);
//! let (data, stat) = tree.data("/app").unwrap();
//! assert_eq!(&data[..], b"v1");
//! assert_eq!(stat.czxid, 1);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod acl;
mod acl_cache;
pub mod digest;
pub mod error;
pub mod event;
pub mod mode;
mod node;
pub mod path;
pub mod prep;
pub mod quota;
pub mod snapshot;
pub mod stat;
mod tree;
pub mod txn;
pub mod txn_codec;
mod undo;
pub mod watch;
mod wire;

pub use acl::{Acl, Id, Perms};
pub use error::{DecodeError, Error};
pub use event::{Change, ChangeKind, EventType, SessionId, WatchedEvent, WatcherKind, WatcherType};
pub use mode::{CreateMode, NodeKind};
pub use prep::{Prep, PrepConfig, PrepContext, PrepError, WriteOp};
pub use quota::Quota;
pub use snapshot::{SnapshotProgress, SnapshotStateError, DEFAULT_STREAM};
pub use stat::Stat;
pub use tree::{DataTree, NodeView};
pub use txn::{Applied, CreateTxn, OpResult, SetDataRef, Txn, TxnOp};
pub use watch::{NoWatcher, WatchRegistry};
