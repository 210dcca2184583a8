//! The [`Transport`] trait and the types every implementation shares.

use std::fmt;

use bytes::Bytes;
use crossbeam_channel::Receiver;

/// A server id, as in ZooKeeper's `myid`: unique within one ensemble.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node-{}", self.0)
    }
}

/// Something that happened on a transport, delivered in order on
/// [`Transport::events`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportEvent {
    /// A frame arrived from `from`. The payload is exactly what the sender passed to
    /// [`Transport::send`]; the transport never looks inside it.
    Frame {
        /// The peer that sent the frame.
        from: NodeId,
        /// The opaque frame.
        payload: Bytes,
    },
    /// A peer became reachable (a connection was established, or a partition healed).
    Connected(NodeId),
    /// A peer stopped being reachable (connection lost, partition, peer shut down).
    /// Frames sent to it in the meantime may be lost; the protocol above must
    /// retransmit or resynchronise.
    Disconnected(NodeId),
}

/// Why [`Transport::send`] refused a frame. In every case the frame was not queued.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The bounded queue towards `to` is full (see
    /// [`PEER_QUEUE_MAX`](crate::PEER_QUEUE_MAX)). The frame was not queued;
    /// the caller may drop it (the protocol retransmits or resyncs) or retry later.
    #[error("send queue to {to} is full")]
    QueueFull {
        /// The peer whose queue is full.
        to: NodeId,
    },
    /// `to` is not a configured peer of this transport.
    #[error("unknown peer {0}")]
    UnknownPeer(NodeId),
    /// A transport does not send to its own id; deliver locally instead.
    #[error("cannot send to self ({0})")]
    ToSelf(NodeId),
    /// The frame is larger than the transport's maximum frame size.
    #[error("frame of {len_bytes} bytes exceeds the maximum of {max_bytes}")]
    FrameTooLarge {
        /// Size of the rejected payload.
        len_bytes: usize,
        /// The configured maximum payload size.
        max_bytes: usize,
    },
    /// The transport has been shut down (or, in memory, replaced by a restart).
    #[error("transport is shut down")]
    Shutdown,
}

/// Moves opaque frames between server ids.
///
/// Contract, checked by [`conformance`](crate::conformance):
/// - `send` never blocks: it queues the frame (bounded per peer) or returns a
///   [`SendError`]. A queued frame may still be lost (connection failure, partition),
///   but frames that arrive on one link (sender → receiver) arrive in send order unless
///   a fault injector reorders them on purpose.
/// - Every [`TransportEvent::Frame`] carries the true sender id and reaches only the
///   addressed peer.
/// - [`Transport::events`] is a channel meant for one consumer (the node's core
///   thread), which can `select!` on it together with other channels.
/// - [`Transport::shutdown`] is idempotent, stops every thread the transport started
///   and closes its connections; afterwards `send` returns [`SendError::Shutdown`].
pub trait Transport: Send + Sync {
    /// This endpoint's own id.
    fn local_id(&self) -> NodeId;

    /// Queues `payload` for `to` without blocking.
    fn send(&self, to: NodeId, payload: Bytes) -> Result<(), SendError>;

    /// The stream of incoming frames and connectivity changes.
    fn events(&self) -> &Receiver<TransportEvent>;

    /// Stops the transport and joins its threads. Idempotent.
    fn shutdown(&self);
}

macro_rules! forward_transport {
    ($ptr:ty) => {
        /// Forwards to the pointee, so `Box<dyn Transport>` and `Arc<dyn Transport>`
        /// are transports too.
        impl<T: Transport + ?Sized> Transport for $ptr {
            fn local_id(&self) -> NodeId {
                (**self).local_id()
            }
            fn send(&self, to: NodeId, payload: Bytes) -> Result<(), SendError> {
                (**self).send(to, payload)
            }
            fn events(&self) -> &Receiver<TransportEvent> {
                (**self).events()
            }
            fn shutdown(&self) {
                (**self).shutdown()
            }
        }
    };
}

forward_transport!(Box<T>);
forward_transport!(std::sync::Arc<T>);

/// Default bound of the per-peer send queue. When it is full, [`Transport::send`]
/// returns [`SendError::QueueFull`] and the frame is not queued.
pub const PEER_QUEUE_MAX: usize = 4096;

/// Default bound on frames waiting in a receiver's event channel. A TCP reader stops
/// reading (back-pressure through TCP) while it is full; the in-memory network counts a
/// frame that finds it full as dropped.
pub const INBOX_MAX: usize = 65_536;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_displays_and_orders() {
        assert_eq!(NodeId(7).to_string(), "node-7");
        assert!(NodeId(2) > NodeId(1));
    }

    #[test]
    fn send_error_messages_name_the_peer() {
        let e = SendError::QueueFull { to: NodeId(3) };
        assert_eq!(e.to_string(), "send queue to node-3 is full");
    }
}
