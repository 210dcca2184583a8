//! `session`: ZooKeeper's sessions as a deterministic state machine.
//!
//! Sessions are what make ephemeral nodes, and therefore locks and leader election,
//! safe: when a client dies or is cut off, its session expires on the leader, a
//! closeSession txn is committed, and every replica deletes the session's ephemerals.
//!
//! This crate knows nothing of the tree, storage, transport or ZAB. It holds:
//! - [`SessionId`] and its [`SessionIdGenerator`] (ZooKeeper's layout: server id in the
//!   high byte, time bits, counter), and [`PasswordSecret`] / [`Password`] for
//!   re-attaching from any server;
//! - [`SessionConfig`]: tick length and timeout negotiation (clamped to
//!   [2, 20] ticks by default);
//! - [`ExpiryQueue`]: tick buckets, rounded up to the next tick;
//! - [`SessionTable`]: the replicated table of global sessions;
//! - [`SessionTracker`]: the one type a server drives, as leader or learner.
//!
//! Time enters only as tick counts passed by the caller; randomness only from the
//! caller's secret. No threads, clocks or I/O.
//!
//! # A session's life, driven by hand
//!
//! ```
//! use session::{
//!     Expired, Owner, PasswordSecret, Reattach, Role, SessionConfig, SessionKind,
//!     SessionTracker, SessionTxn,
//! };
//!
//! let config = SessionConfig::new(1, 100); // server 1, 100 ms ticks
//! let secret = PasswordSecret::from_seed(42); // same on every server
//! let mut leader = SessionTracker::new(config, secret.clone(), 1_700_000_000_000, Role::Leader)?;
//! let conn = Owner { server_id: 1, connection_id: 7 };
//!
//! // A client asks for 50 ms; it gets the minimum, 2 ticks.
//! let opened = leader.open_session(50, SessionKind::Global, conn, 0)?;
//! assert_eq!(opened.timeout_ms, 200);
//! // The createSession txn goes through ZAB; once committed, every replica applies it.
//! let Some(SessionTxn::Create { id, timeout_ms }) = opened.submit else { unreachable!() };
//! assert!(leader.apply_create(id, timeout_ms, 0));
//!
//! // Requests and pings touch the session; silence lets it expire:
//! // touched at tick 0 with 2 ticks of timeout, it is due at tick 3.
//! leader.touch(id, 0)?;
//! assert!(leader.expire_due(2).is_empty());
//! let expired = leader.expire_due(3);
//! assert_eq!(expired, vec![Expired::ProposeClose(SessionTxn::Close { id })]);
//! // It is closing: no new request is accepted ...
//! assert!(leader.check_request(id, conn).is_err());
//! // ... and it is gone only when the closeSession txn commits and is applied.
//! assert!(leader.table().contains(id));
//! assert!(leader.apply_close(id));
//!
//! // A re-attach needs the right password and a server that is not behind the client.
//! let other = SessionTracker::new(SessionConfig::new(2, 100), secret, 0, Role::Learner)?;
//! let password = other.password_for(id);
//! let _ = Reattach { id, password: password.as_bytes(), last_zxid_seen: 0 };
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod config;
pub mod error;
pub mod expiry;
pub mod id;
pub mod password;
pub mod table;
pub mod tracker;

pub use config::{ConfigError, SessionConfig};
pub use error::SessionError;
pub use expiry::ExpiryQueue;
pub use id::{IdError, SessionId, SessionIdGenerator};
pub use password::{Password, PasswordSecret};
pub use table::SessionTable;
pub use tracker::{
    CloseAction, EphemeralCheck, Expired, OpenedSession, Owner, Reattach, Reattached, Role,
    SessionKind, SessionTracker, SessionTxn,
};
