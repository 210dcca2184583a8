//! The TCP transport: one connection per peer pair, frames as described in
//! [`frame`], a handshake that rejects unknown ids, and reconnect with backoff.
//!
//! **Who connects.** Like ZooKeeper's `QuorumCnxManager`, only the server with the
//! higher id keeps a connection it initiated. The higher id dials each lower peer
//! (and redials with exponential backoff after a failure). The lower id never keeps an
//! outgoing connection: when it has no connection to a higher peer it opens a short
//! "poke" connection and sends its hello; the higher peer closes it and dials back at
//! once. So simultaneous connects cannot leave two connections for one pair.
//!
//! **Handshake.** The dialer sends `hello(sender = me, target = peer)`; the acceptor
//! checks that the sender is a configured peer with a higher id and that the target is
//! itself, and answers with its own hello, which the dialer checks the same way. Any
//! mismatch closes the connection with a logged [`ConnError`].
//!
//! **Threads.** One listener thread, one link thread per peer (connects and writes),
//! one reader thread per live connection (decodes and forwards frames), and short-lived
//! handshake threads. [`TcpTransport::shutdown`] stops and joins all of them.
//!
//! **Loss.** A frame is queued per peer (bounded, [`TcpConfig::peer_queue_max`]) and
//! waits there while the peer is unreachable. A frame being written when a connection
//! fails, or written but not yet read by the peer, is lost; the protocol above must
//! retransmit or resync after `Disconnected`.

pub mod frame;
mod link;
mod reader;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use crate::{NodeId, SendError, Transport, TransportEvent, INBOX_MAX, PEER_QUEUE_MAX};
use frame::{FrameError, MAX_PAYLOAD_BYTES};
use link::PeerLink;

/// Settings of a [`TcpTransport`]. Build with [`TcpConfig::new`] and adjust fields.
#[derive(Clone, Debug)]
pub struct TcpConfig {
    /// This server's id.
    pub id: NodeId,
    /// Every server of the ensemble and the address it listens on. May include `id`
    /// itself (used as the listen address when `listen_addr` is `None`).
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// Where to listen; defaults to `peers[id]`.
    pub listen_addr: Option<SocketAddr>,
    /// Largest payload accepted or sent (default [`MAX_PAYLOAD_BYTES`]; capped at
    /// [`frame::MAX_ENCODABLE_PAYLOAD_BYTES`]).
    pub max_payload_bytes: usize,
    /// Frames queued per peer before `send` returns `QueueFull`.
    pub peer_queue_max: usize,
    /// Frames and events waiting for the consumer before readers stop reading.
    pub inbox_max: usize,
    /// Timeout of one connection attempt.
    pub connect_timeout_ms: u64,
    /// Time allowed for the peer's hello.
    pub handshake_timeout_ms: u64,
    /// A write blocked this long fails the connection.
    pub write_timeout_ms: u64,
    /// First reconnect delay; doubles up to `backoff_max_ms`.
    pub backoff_min_ms: u64,
    /// Largest reconnect delay.
    pub backoff_max_ms: u64,
}

impl TcpConfig {
    /// Defaults for server `id` in an ensemble of `peers`.
    pub fn new(id: NodeId, peers: BTreeMap<NodeId, SocketAddr>) -> Self {
        Self {
            id,
            peers,
            listen_addr: None,
            max_payload_bytes: MAX_PAYLOAD_BYTES,
            peer_queue_max: PEER_QUEUE_MAX,
            inbox_max: INBOX_MAX,
            connect_timeout_ms: 2_000,
            handshake_timeout_ms: 2_000,
            write_timeout_ms: 10_000,
            backoff_min_ms: 20,
            backoff_max_ms: 2_000,
        }
    }
}

/// Why the transport could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TcpError {
    /// Neither `listen_addr` nor `peers[id]` gives an address to listen on.
    #[error("no listen address for {0}")]
    NoListenAddress(NodeId),
    /// Binding or configuring the listener failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A thread could not be spawned.
    #[error("cannot spawn thread: {0}")]
    Spawn(std::io::Error),
}

/// Why one connection was closed. Logged with `tracing`; the transport keeps running
/// and reconnects.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnError {
    /// Undecodable input (bad CRC, version, kind, oversized or undersized length).
    #[error("malformed input: {0}")]
    Frame(#[from] FrameError),
    /// The stream ended in the middle of a frame.
    #[error("stream truncated with {buffered_bytes} bytes of an incomplete frame")]
    Truncated {
        /// Bytes of the incomplete frame.
        buffered_bytes: usize,
    },
    /// The peer's hello did not arrive within the handshake timeout.
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// The stream ended before the handshake finished.
    #[error("connection closed during handshake")]
    ClosedInHandshake,
    /// A hello from an id that is not a configured peer.
    #[error("hello from unknown server id {0}")]
    UnknownPeer(NodeId),
    /// A hello meant for another server id (address map mismatch).
    #[error("hello addressed to {target}, but this is {me}")]
    WrongTarget {
        /// The id the peer wanted.
        target: NodeId,
        /// Our id.
        me: NodeId,
    },
    /// A frame whose sender id is not the connection's peer.
    #[error("frame from {actual} on the connection of {expected}")]
    SenderMismatch {
        /// The handshake's peer.
        expected: NodeId,
        /// The id in the frame.
        actual: NodeId,
    },
    /// A hello where data was expected, or data before the hello.
    #[error("unexpected frame kind in this state")]
    UnexpectedKind,
    /// An I/O error.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Bound on connections that are still in their handshake; more are closed at once.
const PENDING_HANDSHAKES_MAX: usize = 64;

/// State shared by the transport handle and its threads.
pub(crate) struct Shared {
    pub(crate) id: NodeId,
    pub(crate) config: TcpConfig,
    pub(crate) events_tx: Sender<TransportEvent>,
    pub(crate) stop: AtomicBool,
    /// Never sent on; dropping `stop_tx` makes it ready, waking every `select!`.
    pub(crate) stop_rx: Receiver<()>,
    stop_tx: Mutex<Option<Sender<()>>>,
    pub(crate) links: BTreeMap<NodeId, Arc<PeerLink>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Every open socket, so shutdown can unblock the threads using them.
    sockets: Mutex<BTreeMap<u64, TcpStream>>,
    next_socket_id: AtomicU64,
    pending_handshakes: AtomicUsize,
}

impl Shared {
    pub(crate) fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Sends an event to the consumer, waiting while its channel is full (this is
    /// what pushes back on the TCP stream), unless the transport stops. Returns false
    /// if the event was not delivered.
    pub(crate) fn emit(&self, event: TransportEvent) -> bool {
        let mut event = event;
        loop {
            if self.stopped() {
                return false;
            }
            match self
                .events_tx
                .send_timeout(event, Duration::from_millis(50))
            {
                Ok(()) => return true,
                Err(crossbeam_channel::SendTimeoutError::Timeout(e)) => event = e,
                Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => return false,
            }
        }
    }

    /// Spawns a named thread that shutdown will join.
    pub(crate) fn spawn(
        self: &Arc<Self>,
        name: String,
        f: impl FnOnce(Arc<Shared>) + Send + 'static,
    ) -> std::io::Result<()> {
        let shared = Arc::clone(self);
        let handle = std::thread::Builder::new()
            .name(name)
            .spawn(move || f(shared))?;
        let mut threads = self.threads.lock();
        // Forget finished threads (connections come and go) so the list stays as long
        // as the number of live threads.
        threads.retain(|t| !t.is_finished());
        threads.push(handle);
        Ok(())
    }

    /// Registers a socket for shutdown; returns its id. If the transport is already
    /// stopping, the socket is shut down at once.
    pub(crate) fn register_socket(&self, stream: &TcpStream) -> u64 {
        let id = self.next_socket_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(clone) = stream.try_clone() {
            self.sockets.lock().insert(id, clone);
        }
        if self.stopped() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        id
    }

    pub(crate) fn unregister_socket(&self, id: u64) {
        self.sockets.lock().remove(&id);
    }
}

/// The TCP implementation of [`Transport`].
pub struct TcpTransport {
    shared: Arc<Shared>,
    events_rx: Receiver<TransportEvent>,
    local_addr: SocketAddr,
}

impl std::fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpTransport")
            .field("id", &self.shared.id)
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl TcpTransport {
    /// Binds the listen address and starts the transport's threads.
    pub fn start(config: TcpConfig) -> Result<Self, TcpError> {
        let addr = config
            .listen_addr
            .or_else(|| config.peers.get(&config.id).copied())
            .ok_or(TcpError::NoListenAddress(config.id))?;
        let listener =
            TcpListener::bind(addr).map_err(|source| TcpError::Listen { addr, source })?;
        Self::start_with_listener(config, listener)
    }

    /// Starts on an already bound listener (handy with port 0: bind every listener
    /// first, then build the address map from their `local_addr`s).
    pub fn start_with_listener(config: TcpConfig, listener: TcpListener) -> Result<Self, TcpError> {
        let unknown = SocketAddr::from(([0, 0, 0, 0], 0));
        let local_addr = listener.local_addr().map_err(|source| TcpError::Listen {
            addr: config.listen_addr.unwrap_or(unknown),
            source,
        })?;
        // The listener thread relies on a blocking accept (woken at shutdown).
        listener
            .set_nonblocking(false)
            .map_err(|source| TcpError::Listen {
                addr: local_addr,
                source,
            })?;
        let (events_tx, events_rx) = crossbeam_channel::bounded(config.inbox_max.max(1));
        let (stop_tx, stop_rx) = crossbeam_channel::bounded(0);
        let links = config
            .peers
            .iter()
            .filter(|(id, _)| **id != config.id)
            .map(|(id, addr)| {
                (
                    *id,
                    Arc::new(PeerLink::new(*id, *addr, config.peer_queue_max)),
                )
            })
            .collect();
        let mut config = config;
        config.listen_addr = Some(local_addr);
        // The length field is a u32 that also counts the 14 header bytes after it.
        config.max_payload_bytes = config
            .max_payload_bytes
            .min(frame::MAX_ENCODABLE_PAYLOAD_BYTES);
        let shared = Arc::new(Shared {
            id: config.id,
            config,
            events_tx,
            stop: AtomicBool::new(false),
            stop_rx,
            stop_tx: Mutex::new(Some(stop_tx)),
            links,
            threads: Mutex::new(Vec::new()),
            sockets: Mutex::new(BTreeMap::new()),
            next_socket_id: AtomicU64::new(1),
            pending_handshakes: AtomicUsize::new(0),
        });
        let transport = Self {
            shared: Arc::clone(&shared),
            events_rx,
            local_addr,
        };
        let id = shared.id;
        let started = shared
            .spawn(format!("tcp-listen-{}", id.0), move |s| {
                run_listener(&s, listener)
            })
            .and_then(|()| {
                for peer in shared.links.keys().copied() {
                    shared.spawn(format!("tcp-link-{}-{}", id.0, peer.0), move |s| {
                        link::run_link(&s, peer);
                    })?;
                }
                Ok(())
            });
        if let Err(e) = started {
            transport.shutdown();
            return Err(TcpError::Spawn(e));
        }
        Ok(transport)
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Whether a connection to `peer` is currently established.
    pub fn is_connected(&self, peer: NodeId) -> bool {
        self.shared
            .links
            .get(&peer)
            .is_some_and(|l| l.is_connected())
    }
}

impl Transport for TcpTransport {
    fn local_id(&self) -> NodeId {
        self.shared.id
    }

    fn send(&self, to: NodeId, payload: Bytes) -> Result<(), SendError> {
        if self.shared.stopped() {
            return Err(SendError::Shutdown);
        }
        if to == self.shared.id {
            return Err(SendError::ToSelf(to));
        }
        let link = self
            .shared
            .links
            .get(&to)
            .ok_or(SendError::UnknownPeer(to))?;
        let max_bytes = self.shared.config.max_payload_bytes;
        if payload.len() > max_bytes {
            return Err(SendError::FrameTooLarge {
                len_bytes: payload.len(),
                max_bytes,
            });
        }
        link.enqueue(payload)
    }

    fn events(&self) -> &Receiver<TransportEvent> {
        &self.events_rx
    }

    fn shutdown(&self) {
        if self.shared.stop.swap(true, Ordering::AcqRel) {
            return;
        }
        self.shared.stop_tx.lock().take();
        // Wake the listener's blocking accept with a connection of our own.
        let mut wake = self.local_addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(if wake.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_millis(500));
        for link in self.shared.links.values() {
            link.close();
        }
        loop {
            for (_, s) in std::mem::take(&mut *self.shared.sockets.lock()) {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
            let threads = std::mem::take(&mut *self.shared.threads.lock());
            if threads.is_empty() {
                break;
            }
            for t in threads {
                if t.join().is_err() {
                    tracing::error!(id = %self.shared.id, "tcp transport thread panicked");
                }
            }
        }
    }
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Accepts connections until the transport stops; each gets a handshake thread that
/// becomes its reader.
fn run_listener(shared: &Arc<Shared>, listener: TcpListener) {
    for stream in listener.incoming() {
        if shared.stopped() {
            return;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(id = %shared.id, error = %e, "accept failed");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if shared.pending_handshakes.fetch_add(1, Ordering::AcqRel) >= PENDING_HANDSHAKES_MAX {
            shared.pending_handshakes.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(id = %shared.id, "too many pending handshakes; closing connection");
            continue;
        }
        let name = format!("tcp-accept-{}", shared.id.0);
        let spawned = shared.spawn(name, move |s| {
            reader::run_accepted(&s, stream);
        });
        if let Err(e) = spawned {
            shared.pending_handshakes.fetch_sub(1, Ordering::AcqRel);
            tracing::error!(id = %shared.id, error = %e, "cannot spawn connection thread");
        }
    }
}

/// Starts one transport per id on `127.0.0.1` with ephemeral ports, all knowing each
/// other: the quickest way to a local TCP ensemble in tests and benchmarks.
/// `configure` may adjust each config before it starts.
pub fn start_local_cluster(
    ids: &[NodeId],
    configure: impl Fn(&mut TcpConfig),
) -> Result<Vec<TcpTransport>, TcpError> {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut listeners = Vec::with_capacity(ids.len());
    let mut peers = BTreeMap::new();
    for id in ids {
        let listener = TcpListener::bind(loopback).map_err(|source| TcpError::Listen {
            addr: loopback,
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| TcpError::Listen {
            addr: loopback,
            source,
        })?;
        peers.insert(*id, addr);
        listeners.push(listener);
    }
    ids.iter()
        .zip(listeners)
        .map(|(id, listener)| {
            let mut config = TcpConfig::new(*id, peers.clone());
            configure(&mut config);
            TcpTransport::start_with_listener(config, listener)
        })
        .collect()
}

impl Shared {
    pub(crate) fn handshake_done(&self) {
        self.pending_handshakes.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests;
