//! `transport`: moves opaque frames between Ensemble servers.
//!
//! - [`Transport`]: the trait the node uses: non-blocking [`Transport::send`] with a
//!   bounded per-peer queue, and one event channel ([`TransportEvent`]) for frames and
//!   connectivity changes that a core thread can `select!` on.
//! - [`mem`]: an in-memory network with run-time fault injection (partitions, drop,
//!   delay, duplicate, reorder), seeded, in real-time or virtual-time mode.
//! - [`tcp`]: length-prefixed, CRC-checked frames over TCP with a handshake,
//!   reconnect with backoff and one connection per peer pair.
//! - [`conformance`]: the cases every implementation must pass.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod api;
pub mod conformance;
pub mod mem;
pub mod tcp;

pub use api::{NodeId, SendError, Transport, TransportEvent, INBOX_MAX, PEER_QUEUE_MAX};
