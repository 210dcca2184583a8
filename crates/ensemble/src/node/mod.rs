//! [`Node`]: the shell around a [`Server`](crate::Server). A core thread owns the server and
//! `select!`s over client requests, transport events, storage completions and a
//! ticker; a log-writer thread executes storage ops in FIFO order with group commit;
//! a snapshot thread serializes periodic snapshots off the core thread.

pub mod config;
mod core_loop;
mod reply;
pub mod storage;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};
use transport::Transport;

pub use self::config::{ConfigError, Fsync, NodeConfig, NodeConfigBuilder, StorageKind};
pub use self::storage::{NodeError, Stores};
use crate::error::Error;
use crate::ops::{ConnId, Event, Request, Response, Xid};
use crate::server::ServerStats;

/// Client requests queued for the core thread before new ones fail with Throttled.
pub const INBOX_MAX: usize = 65_536;
/// Storage command batches queued for the log writer (back-pressure on the core).
pub const LOG_QUEUE_MAX: usize = 4_096;
/// Inbound items the core thread takes from one source before looking at the others.
pub const DRAIN_MAX: usize = 128;

pub(crate) use reply::{reply_slot, Canceled, ReplyRx, Wakes};

/// Where a reply goes.
pub(crate) enum Completion {
    /// A [`crate::Call`]'s slot.
    Future(reply::ReplyTx),
    /// A blocking caller's channel.
    Channel(Sender<Reply>),
}

/// A reply with the zxid the server had applied when it answered.
pub(crate) type Reply = (Result<Response, Error>, i64);

impl Completion {
    /// Delivers `reply` and wakes its caller at once.
    pub(crate) fn complete(self, reply: Reply) {
        if let Some(w) = self.complete_deferred(reply) {
            w.wake();
        }
    }

    /// Delivers `reply`; the caller's waker (if it waits) is returned to be woken
    /// later, after the core thread's current pass of actions ([`Wakes`]).
    pub(crate) fn complete_deferred(self, reply: Reply) -> Option<std::task::Waker> {
        match self {
            Completion::Future(tx) => tx.put(reply),
            Completion::Channel(tx) => {
                let _ = tx.send(reply);
                None
            }
        }
    }
}

/// Receives the events of one connection (implemented by the client).
pub(crate) trait ConnListener: Send + Sync {
    /// An event for the connection `conn`, in order.
    fn on_event(self: Arc<Self>, conn: ConnId, event: Event);
}

/// What the core thread receives from clients and controllers.
pub(crate) enum Inbound {
    Open {
        conn: ConnId,
        listener: Arc<dyn ConnListener>,
    },
    Request {
        conn: ConnId,
        xid: Xid,
        req: Request,
        done: Completion,
    },
    Closed(ConnId),
    Stats(Sender<NodeStats>),
    Stop,
}

/// The first connection id of a node incarnation: wall-clock milliseconds shifted
/// left by 20 bits, so a restarted node never reuses a connection id its peers still
/// remember (the leader's duplicate guard keys on it).
fn conn_id_base() -> u64 {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    (ms << 20).max(1)
}

/// A cheap, clonable way to reach a node from clients. It stays valid across a
/// restart of the node through [`Node::restart`], so clients holding it reach the
/// restarted node.
#[derive(Clone)]
pub struct NodeHandle {
    pub(crate) id: u64,
    pub(crate) slot: Arc<HandleSlot>,
}

pub(crate) struct HandleSlot {
    inbox: parking_lot::RwLock<Sender<Inbound>>,
    next_conn: AtomicU64,
    alive: Arc<AtomicBool>,
}

impl HandleSlot {
    /// Called by a stopping core thread whose inbox sender is `mine`: marks the node
    /// dead and swaps in a closed channel, under the write lock, so that no client
    /// send can land in `mine` afterwards. (A slot already taken over by a restart is
    /// left alone.)
    pub(crate) fn close(&self, mine: &Sender<Inbound>) {
        let mut inbox = self.inbox.write();
        if !inbox.same_channel(mine) {
            return;
        }
        self.alive.store(false, Ordering::Release);
        let (dead, _) = crossbeam_channel::bounded(1);
        *inbox = dead;
    }
}

impl std::fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHandle").field("id", &self.id).finish()
    }
}

impl NodeHandle {
    /// The node's server id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether the node is running.
    pub fn is_alive(&self) -> bool {
        self.slot.alive.load(Ordering::Acquire)
    }

    pub(crate) fn new_conn(&self) -> ConnId {
        ConnId(self.slot.next_conn.fetch_add(1, Ordering::Relaxed))
    }

    pub(crate) fn send(&self, msg: Inbound) -> Result<(), Error> {
        // The read guard spans the liveness check and the send: a stopping core
        // thread takes the write lock to close the door (see `HandleSlot::close`), so
        // nothing can slip into an inbox nobody will read.
        let inbox = self.slot.inbox.read();
        if !self.is_alive() {
            return Err(Error::ConnectionLoss);
        }
        match inbox.try_send(msg) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(Error::Throttled("node inbox full")),
            Err(TrySendError::Disconnected(_)) => Err(Error::ConnectionLoss),
        }
    }

    /// mntr-like statistics (waits at most `timeout`).
    pub fn stats(&self, timeout: Duration) -> Option<NodeStats> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.send(Inbound::Stats(tx)).ok()?;
        rx.recv_timeout(timeout).ok()
    }
}

/// mntr-like statistics of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStats {
    /// The server's figures (role, zxid, counts, outstanding requests).
    pub server: ServerStats,
    /// Fastest request round trip inside the node, in µs.
    pub latency_min_us: u64,
    /// Mean request round trip, in µs.
    pub latency_avg_us: u64,
    /// Slowest request round trip, in µs.
    pub latency_max_us: u64,
    /// Requests answered.
    pub requests: u64,
    /// Snapshots written since start.
    pub snapshots: u64,
    /// Whether an incremental snapshot is being written now.
    pub snapshot_in_progress: bool,
    /// Longest snapshot step of the core thread (a tick or an extra step between
    /// ticks while an incremental snapshot ran), in µs: the write stall a snapshot
    /// causes.
    pub snapshot_stall_max_us: u64,
}

/// A running node. Dropping it stops it.
pub struct Node {
    handle: NodeHandle,
    core: Option<JoinHandle<Option<Stores>>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("id", &self.handle.id).finish()
    }
}

impl Node {
    /// Starts a node over `transport`, opening (and recovering) its configured storage.
    pub fn start(cfg: NodeConfig, transport: Arc<dyn Transport>) -> Result<Node, NodeError> {
        let stores = Stores::open(cfg.storage(), cfg.fsync())?;
        Node::start_with_stores(cfg, transport, stores)
    }

    /// Starts a node on given stores (for example the memory stores of a stopped node).
    pub fn start_with_stores(
        cfg: NodeConfig,
        transport: Arc<dyn Transport>,
        stores: Stores,
    ) -> Result<Node, NodeError> {
        let (inbox_tx, inbox_rx) = crossbeam_channel::bounded(INBOX_MAX);
        let handle = NodeHandle {
            id: cfg.id(),
            slot: Arc::new(HandleSlot {
                inbox: parking_lot::RwLock::new(inbox_tx.clone()),
                next_conn: AtomicU64::new(conn_id_base()),
                alive: Arc::new(AtomicBool::new(true)),
            }),
        };
        let slot = Arc::clone(&handle.slot);
        let core = core_loop::spawn(cfg, transport, stores, inbox_rx, inbox_tx, slot)?;
        Ok(Node {
            handle,
            core: Some(core),
        })
    }

    /// Restarts a stopped node behind its old `handle`, so clients holding the handle
    /// reach the new incarnation.
    pub fn restart(
        handle: &NodeHandle,
        cfg: NodeConfig,
        transport: Arc<dyn Transport>,
        stores: Stores,
    ) -> Result<Node, NodeError> {
        let (inbox_tx, inbox_rx) = crossbeam_channel::bounded(INBOX_MAX);
        *handle.slot.inbox.write() = inbox_tx.clone();
        handle
            .slot
            .next_conn
            .fetch_max(conn_id_base(), Ordering::Relaxed);
        handle.slot.alive.store(true, Ordering::Release);
        let slot = Arc::clone(&handle.slot);
        let core = core_loop::spawn(cfg, transport, stores, inbox_rx, inbox_tx, slot)?;
        Ok(Node {
            handle: handle.clone(),
            core: Some(core),
        })
    }

    /// A handle for clients.
    pub fn handle(&self) -> NodeHandle {
        self.handle.clone()
    }

    /// This node's id.
    pub fn id(&self) -> u64 {
        self.handle.id
    }

    /// A client with a new session on this node (blocking, default options).
    pub fn client(&self) -> Result<crate::Client, Error> {
        crate::Client::connect(&[self.handle()], crate::ClientOptions::default())
    }

    /// mntr-like statistics.
    pub fn stats(&self) -> Option<NodeStats> {
        self.handle.stats(Duration::from_secs(5))
    }

    /// Stops the node: its clients are disconnected (their sessions live on and can
    /// re-attach elsewhere), the threads are joined and the stores handed back.
    /// Everything acknowledged is already durable on a quorum, so nothing acknowledged
    /// is lost.
    pub fn stop(mut self) -> Option<Stores> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Option<Stores> {
        let _ = self.handle.slot.inbox.read().send(Inbound::Stop);
        let core = self.core.take()?;
        core.join().ok().flatten()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}
