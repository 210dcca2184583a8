//! `transport`: moves opaque frames between Ensemble servers.
//!
//! - [`Transport`]: the trait the node uses: non-blocking [`Transport::send`] with a
//!   bounded per-peer queue ([`PEER_QUEUE_MAX`]; a full queue is
//!   [`SendError::QueueFull`] and the frame is not queued), and one event channel
//!   ([`TransportEvent`]) for frames and connectivity changes that a core thread can
//!   `select!` on together with its other channels.
//! - [`mem`]: an in-memory network for test harnesses and simulators: partitions
//!   (symmetric, one-way, groups), isolation, drop, delay, jitter, duplication and
//!   reordering, changeable at run time, seeded, with per-link counters; real-time
//!   mode (a delivery thread) or virtual-time mode (no thread, the caller moves time).
//! - [`tcp`]: length-prefixed, CRC32C-checked frames over TCP with a handshake that
//!   rejects unknown ids, one connection per peer pair (the higher id dials), and
//!   reconnect with backoff. Bad input closes one connection, never the node.
//! - [`conformance`]: the cases every implementation passes.
//!
//! # A node's receive loop
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use crossbeam_channel::{select, tick};
//! use transport::{mem::MemNetwork, NodeId, Transport, TransportEvent};
//!
//! let net = MemNetwork::new(42); // real time
//! let (a, b) = (net.endpoint(NodeId(1)), net.endpoint(NodeId(2)));
//! a.send(NodeId(2), Bytes::from_static(b"PROPOSAL")).unwrap();
//!
//! let ticker = tick(Duration::from_millis(10));
//! loop {
//!     select! {
//!         recv(b.events()) -> ev => match ev.unwrap() {
//!             TransportEvent::Frame { from, payload } => {
//!                 assert_eq!((from, &payload[..]), (NodeId(1), &b"PROPOSAL"[..]));
//!                 break;
//!             }
//!             TransportEvent::Connected(_) | TransportEvent::Disconnected(_) => {}
//!             _ => {}
//!         },
//!         recv(ticker) -> _ => { /* the node would tick its core here */ }
//!     }
//! }
//! net.shutdown();
//! ```
//!
//! # A simulator step (virtual time, one thread, replayable)
//!
//! ```
//! use bytes::Bytes;
//! use transport::mem::{LinkFaults, MemNetwork};
//! use transport::{NodeId, Transport, TransportEvent};
//!
//! let net = MemNetwork::new_virtual(7);
//! net.set_default_faults(LinkFaults { delay_us: 1_000, jitter_us: 500, ..LinkFaults::none() });
//! let nodes: Vec<_> = (1..=3).map(|i| net.endpoint(NodeId(i))).collect();
//! net.partition_one_way(NodeId(1), NodeId(3));
//! for to in [2, 3] {
//!     nodes[0].send(NodeId(to), Bytes::from_static(b"ping")).unwrap();
//! }
//! while let Some(due_us) = net.next_due_us() {
//!     net.advance_to(due_us).unwrap();
//!     net.deliver_due();
//! }
//! let got = |i: usize| nodes[i].events().try_iter()
//!     .filter(|e| matches!(e, TransportEvent::Frame { .. })).count();
//! assert_eq!((got(1), got(2)), (1, 0));
//! assert_eq!(net.link_stats(NodeId(1), NodeId(3)).dropped, 1);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod api;
pub mod conformance;
pub mod mem;
pub mod tcp;

pub use api::{NodeId, SendError, Transport, TransportEvent, INBOX_MAX, PEER_QUEUE_MAX};
