//! `zab-core`: ZAB (ZooKeeper Atomic Broadcast) as a deterministic, sans-IO state
//! machine: fast leader election, discovery, synchronization (DIFF/TRUNC/SNAP),
//! broadcast, observers and liveness.
//!
//! The core owns no threads, clocks, sockets or randomness. Its inputs are method
//! calls ([`Core::handle_message`], [`Core::handle_tick`], the storage completions
//! `handle_*`, [`Core::propose`], [`Core::forward_request`]); its outputs are
//! [`Action`]s drained with [`Core::drain_actions`] and executed in order by the shell
//! (see [`action`] for the ordering and durability rules). Txn payloads are opaque
//! [`bytes::Bytes`]. See `design.md` in the crate for state diagrams.
//!
//! A single-voter ensemble, driven by hand:
//! ```
//! use bytes::Bytes;
//! use zab_core::{Action, Config, Core, Persisted, Phase, ServerId};
//!
//! let cfg = Config::majority(ServerId(1), [ServerId(1)], []).unwrap();
//! let mut core = Core::new(cfg, Persisted::default()).unwrap();
//! // Run the shell loop until the epoch is established.
//! for _ in 0..10 {
//!     core.handle_tick();
//!     for action in core.drain_actions() {
//!         match action {
//!             Action::SaveAcceptedEpoch { epoch } => core.handle_accepted_epoch_saved(epoch),
//!             Action::SaveCurrentEpoch { epoch } => core.handle_current_epoch_saved(epoch),
//!             _ => {}
//!         }
//!     }
//! }
//! assert_eq!(core.status().phase, Phase::Broadcast);
//! let zxid = core.propose(Bytes::from_static(b"txn")).unwrap();
//! // The txn commits once the shell reports it durable.
//! core.handle_log_durable(zxid);
//! let committed: Vec<_> = core
//!     .drain_actions()
//!     .into_iter()
//!     .filter(|a| matches!(a, Action::Commit { .. }))
//!     .collect();
//! assert_eq!(committed.len(), 1);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod action;
mod broadcast;
mod codec;
mod config;
mod core;
mod election;
mod leader;
mod learner;
mod log;
mod log_sync;
pub mod messages;
pub mod quorum;
mod sync;
mod zxid;

pub use crate::action::{Action, Phase, Role, SnapshotRequest, Status};
pub use crate::config::{
    Config, ConfigError, MemberRole, Persisted, COMMIT_LOG_MAX_BYTES_DEFAULT,
    COMMIT_LOG_MAX_DEFAULT, LOG_READ_MAX_BYTES,
};
pub use crate::core::{Core, ForwardError, ProposeError};
pub use crate::messages::{
    DecodeError, Entry, Message, PeerState, Vote, PAYLOAD_MAX_BYTES, SNAPSHOT_MAX_BYTES,
    WIRE_VERSION,
};
pub use crate::quorum::{Hierarchical, Majority, QuorumError, QuorumVerifier};
pub use crate::zxid::{ServerId, Zxid};
