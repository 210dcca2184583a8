//! The in-memory network: any number of endpoints in one process, with faults
//! controllable at run time and a seeded RNG so a run replays.
//!
//! Two modes share one deterministic core (queues, fault decisions, due times):
//! - **Real-time** ([`MemNetwork::new`]): times are wall-clock microseconds since the
//!   network was created. A frame with no delay goes straight into the receiver's
//!   channel during `send`; delayed frames are delivered by one background thread that
//!   sleeps until the next due time. Used by threaded node harnesses.
//! - **Virtual** ([`MemNetwork::new_virtual`]): no thread at all. Time only moves when
//!   the caller says so ([`MemNetwork::advance_to`]) and frames are only delivered by
//!   [`MemNetwork::deliver_due`] / [`MemNetwork::deliver_one`], so a single-threaded
//!   simulator gets the same deliveries for the same seed and calls.
//!
//! ```
//! use bytes::Bytes;
//! use transport::{mem::MemNetwork, NodeId, Transport, TransportEvent};
//!
//! let net = MemNetwork::new_virtual(7);
//! let a = net.endpoint(NodeId(1));
//! let b = net.endpoint(NodeId(2));
//! a.send(NodeId(2), Bytes::from_static(b"hi")).unwrap();
//! assert_eq!(net.deliver_due(), 1);
//! let frame = b.events().try_iter().find(|e| matches!(e, TransportEvent::Frame { .. }));
//! assert_eq!(frame, Some(TransportEvent::Frame { from: NodeId(1), payload: Bytes::from_static(b"hi") }));
//! ```

mod core;
mod faults;
mod trace;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::Receiver;
use parking_lot::{Condvar, Mutex};

use self::core::{CoreConfig, NetCore, SendOutcome};
pub use faults::{Link, LinkFaults, LinkStats};
pub use trace::{DropReason, NetEvent, NetEventKind};

use crate::{NodeId, SendError, Transport, TransportEvent, INBOX_MAX, PEER_QUEUE_MAX};

/// Settings of a [`MemNetwork`].
#[derive(Clone, Copy, Debug)]
pub struct MemConfig {
    /// Seed of the fault RNG; the same seed and calls replay the same run.
    pub seed: u64,
    /// Bound on frames held per link; beyond it `send` returns
    /// [`SendError::QueueFull`].
    pub peer_queue_max: usize,
    /// Bound on frames waiting in a receiver's channel; `send` returns
    /// [`SendError::QueueFull`] while it is full, and a held frame that falls due
    /// while it is full is dropped (and counted).
    pub inbox_max: usize,
}

impl MemConfig {
    /// Defaults ([`PEER_QUEUE_MAX`], [`INBOX_MAX`]) with the given seed.
    pub fn with_seed(seed: u64) -> Self {
        Self {
            seed,
            peer_queue_max: PEER_QUEUE_MAX,
            inbox_max: INBOX_MAX,
        }
    }
}

/// Which clock drives the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// Wall-clock time and a background delivery thread.
    RealTime,
    /// Caller-driven virtual time, no thread.
    Virtual,
}

/// Error from a virtual-time control used on the wrong kind of network.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModeError {
    /// `advance_to` needs a virtual-time network.
    #[error("advance_to needs a virtual-time network")]
    NotVirtual,
    /// Virtual time never goes backwards.
    #[error("virtual time cannot go back from {now_us} to {requested_us}")]
    TimeWentBack {
        /// Current virtual time.
        now_us: u64,
        /// The earlier time that was requested.
        requested_us: u64,
    },
}

/// State shared with the delivery thread.
struct Shared {
    core: Mutex<CoreState>,
    wake: Condvar,
    stop: AtomicBool,
}

struct CoreState {
    core: NetCore,
    /// Virtual time (unused in real-time mode).
    virtual_now_us: u64,
}

struct Inner {
    shared: Arc<Shared>,
    mode: Mode,
    start: Instant,
    driver: Mutex<Option<JoinHandle<()>>>,
}

impl Inner {
    fn now_us(&self, state: &CoreState) -> u64 {
        match self.mode {
            Mode::RealTime => elapsed_us(self.start),
            Mode::Virtual => state.virtual_now_us,
        }
    }

    fn stop_driver(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        {
            // Take the lock so the driver is either waiting (and gets the notify) or
            // has not yet checked `stop`.
            let _guard = self.shared.core.lock();
            self.shared.wake.notify_all();
        }
        if let Some(handle) = self.driver.lock().take() {
            if handle.join().is_err() {
                tracing::error!("in-memory network delivery thread panicked");
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop_driver();
    }
}

fn elapsed_us(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// A cheaply clonable handle to one in-memory network. Every clone controls the same
/// network; the network (and its delivery thread) lives while any handle or endpoint
/// does, or until [`MemNetwork::shutdown`].
#[derive(Clone)]
pub struct MemNetwork {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MemNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemNetwork")
            .field("mode", &self.inner.mode)
            .finish_non_exhaustive()
    }
}

impl MemNetwork {
    /// A real-time network with default limits, seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self::with_config(Mode::RealTime, MemConfig::with_seed(seed))
    }

    /// A virtual-time network (no thread) with default limits, seeded with `seed`.
    pub fn new_virtual(seed: u64) -> Self {
        Self::with_config(Mode::Virtual, MemConfig::with_seed(seed))
    }

    /// A network in `mode` with explicit settings.
    pub fn with_config(mode: Mode, config: MemConfig) -> Self {
        let core = NetCore::new(CoreConfig {
            seed: config.seed,
            peer_queue_max: config.peer_queue_max.max(1),
            inbox_max: config.inbox_max.max(1),
            deliver_immediately: mode == Mode::RealTime,
        });
        let shared = Arc::new(Shared {
            core: Mutex::new(CoreState {
                core,
                virtual_now_us: 0,
            }),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let start = Instant::now();
        let driver = match mode {
            Mode::RealTime => {
                let shared = Arc::clone(&shared);
                let spawned = std::thread::Builder::new()
                    .name("mem-net-delivery".into())
                    .spawn(move || run_driver(&shared, start));
                match spawned {
                    Ok(handle) => Some(handle),
                    Err(e) => {
                        // Without the thread, delayed frames wait for `deliver_due`.
                        tracing::error!(error = %e, "could not start in-memory delivery thread");
                        None
                    }
                }
            }
            Mode::Virtual => None,
        };
        Self {
            inner: Arc::new(Inner {
                shared,
                mode,
                start,
                driver: Mutex::new(driver),
            }),
        }
    }

    /// The network's mode.
    pub fn mode(&self) -> Mode {
        self.inner.mode
    }

    /// Creates the endpoint for `id`. If `id` already has a live endpoint, that one is
    /// shut down first, as if the node crashed and restarted: frames still in flight
    /// to or from the old one are dropped, and its handle's `send` returns
    /// [`SendError::Shutdown`].
    ///
    /// Every live endpoint reachable both ways gets `Connected` for the new one, and
    /// the new one gets `Connected` for each of them.
    pub fn endpoint(&self, id: NodeId) -> MemTransport {
        let (tx, rx) = crossbeam_channel::unbounded();
        let generation = self.inner.shared.core.lock().core.add_endpoint(id, tx);
        MemTransport {
            id,
            generation,
            net: self.clone(),
            events: rx,
            closed: AtomicBool::new(false),
        }
    }

    fn with_core<R>(&self, f: impl FnOnce(&mut NetCore) -> R) -> R {
        f(&mut self.inner.shared.core.lock().core)
    }

    /// Faults applied to every link without its own setting.
    pub fn set_default_faults(&self, faults: LinkFaults) {
        self.with_core(|c| c.set_default_faults(faults));
    }

    /// Faults for the directed link `from → to`, overriding the default.
    pub fn set_link_faults(&self, from: NodeId, to: NodeId, faults: LinkFaults) {
        self.with_core(|c| c.set_link_faults(Link::new(from, to), faults));
    }

    /// Returns the link `from → to` to the default faults.
    pub fn clear_link_faults(&self, from: NodeId, to: NodeId) {
        self.with_core(|c| c.clear_link_faults(Link::new(from, to)));
    }

    /// Cuts both directions between `a` and `b`. Frames in flight on a cut link are
    /// dropped when they fall due.
    pub fn partition(&self, a: NodeId, b: NodeId) {
        self.with_core(|c| {
            c.block(Link::new(a, b));
            c.block(Link::new(b, a));
        });
    }

    /// Cuts only `from → to`; `to → from` keeps working.
    pub fn partition_one_way(&self, from: NodeId, to: NodeId) {
        self.with_core(|c| c.block(Link::new(from, to)));
    }

    /// Cuts every group from every other: a frame crosses only within a group. Nodes
    /// in no group are not affected.
    pub fn partition_groups(&self, groups: &[&[NodeId]]) {
        self.with_core(|c| {
            for (i, g) in groups.iter().enumerate() {
                for (j, h) in groups.iter().enumerate() {
                    if i != j {
                        for &a in g.iter() {
                            for &b in h.iter() {
                                c.block(Link::new(a, b));
                            }
                        }
                    }
                }
            }
        });
    }

    /// Restores both directions between `a` and `b` (isolation still applies).
    pub fn heal_link(&self, a: NodeId, b: NodeId) {
        self.with_core(|c| {
            c.unblock(Link::new(a, b));
            c.unblock(Link::new(b, a));
        });
    }

    /// Cuts `id` from every other node, including nodes created later.
    pub fn isolate(&self, id: NodeId) {
        self.with_core(|c| c.isolate(id));
    }

    /// Ends the isolation of `id` and removes every cut touching it.
    pub fn heal(&self, id: NodeId) {
        self.with_core(|c| c.heal(id));
    }

    /// Removes every partition and isolation (faults set with `set_*_faults` stay).
    pub fn heal_all(&self) {
        self.with_core(NetCore::heal_all);
    }

    /// Counters of the directed link `from → to`.
    pub fn link_stats(&self, from: NodeId, to: NodeId) -> LinkStats {
        self.with_core(|c| c.link_stats(Link::new(from, to)))
    }

    /// Counters of every link that has carried traffic, in link order.
    pub fn all_link_stats(&self) -> Vec<(Link, LinkStats)> {
        self.with_core(|c| c.all_link_stats())
    }

    /// Counters summed over all links.
    pub fn total_stats(&self) -> LinkStats {
        self.with_core(|c| c.total_stats())
    }

    /// Starts keeping the last `max` network events (sends, drops with their reason,
    /// deliveries) for [`drain_trace`](Self::drain_trace); 0 stops tracing.
    pub fn enable_trace(&self, max: usize) {
        self.with_core(|c| c.enable_trace(max));
    }

    /// Takes the traced events, oldest first: print them when a simulation fails.
    pub fn drain_trace(&self) -> Vec<NetEvent> {
        self.with_core(NetCore::drain_trace)
    }

    /// Frames the network currently holds (delayed, or waiting for `deliver_due`).
    pub fn in_flight(&self) -> usize {
        self.with_core(|c| c.in_flight())
    }

    /// Frames held on the link `from → to`.
    pub fn in_flight_on(&self, from: NodeId, to: NodeId) -> usize {
        self.with_core(|c| c.in_flight_on(Link::new(from, to)))
    }

    /// Ids of the live endpoints, ascending.
    pub fn endpoint_ids(&self) -> Vec<NodeId> {
        self.with_core(|c| c.endpoint_ids())
    }

    /// The network's current time in microseconds (virtual or wall-clock).
    pub fn now_us(&self) -> u64 {
        let state = self.inner.shared.core.lock();
        self.inner.now_us(&state)
    }

    /// Due time of the earliest held frame, so a simulator can jump straight to it.
    pub fn next_due_us(&self) -> Option<u64> {
        self.with_core(|c| c.next_due_us())
    }

    /// Virtual mode: moves time to `now_us` (delivering nothing; call
    /// [`deliver_due`](Self::deliver_due) next). Time never goes back.
    pub fn advance_to(&self, now_us: u64) -> Result<(), ModeError> {
        if self.inner.mode != Mode::Virtual {
            return Err(ModeError::NotVirtual);
        }
        let mut state = self.inner.shared.core.lock();
        if now_us < state.virtual_now_us {
            return Err(ModeError::TimeWentBack {
                now_us: state.virtual_now_us,
                requested_us: now_us,
            });
        }
        state.virtual_now_us = now_us;
        Ok(())
    }

    /// Delivers (or drops, per the faults) every held frame due by now, in due-time
    /// then send order. Returns how many frames it took off the queue. In real-time
    /// mode the background thread does this on its own; calling it is harmless.
    pub fn deliver_due(&self) -> usize {
        let mut state = self.inner.shared.core.lock();
        let now = self.inner.now_us(&state);
        state.core.deliver_due(now)
    }

    /// Delivers (or drops) only the earliest held frame if it is due by now; lets a
    /// simulator interleave single deliveries with node steps. Returns whether a frame
    /// was taken.
    pub fn deliver_one(&self) -> bool {
        let mut state = self.inner.shared.core.lock();
        let now = self.inner.now_us(&state);
        state.core.deliver_one(now)
    }

    /// Stops the delivery thread (real-time mode) and waits for it. Endpoints keep
    /// working for frames without delay; held frames then move only via
    /// [`deliver_due`](Self::deliver_due). Idempotent; also done when the last handle
    /// and endpoint are dropped.
    pub fn shutdown(&self) {
        self.inner.stop_driver();
    }

    fn notify_driver(&self) {
        self.inner.shared.wake.notify_one();
    }
}

/// The delivery thread of a real-time network: delivers due frames, then sleeps until
/// the next due time or until a new frame or `stop` wakes it.
fn run_driver(shared: &Shared, start: Instant) {
    /// Upper bound on one sleep, so a missed wake-up can only delay delivery this much.
    const IDLE_WAIT: Duration = Duration::from_millis(50);
    let mut state = shared.core.lock();
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let now = elapsed_us(start);
        state.core.deliver_due(now);
        let wait = match state.core.next_due_us() {
            Some(due) => Duration::from_micros(due.saturating_sub(now)).min(IDLE_WAIT),
            None => IDLE_WAIT,
        };
        if !wait.is_zero() {
            shared.wake.wait_for(&mut state, wait);
        }
    }
}

/// One endpoint of a [`MemNetwork`]. Dropping it shuts it down.
pub struct MemTransport {
    id: NodeId,
    generation: u64,
    net: MemNetwork,
    events: Receiver<TransportEvent>,
    closed: AtomicBool,
}

impl std::fmt::Debug for MemTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemTransport")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl MemTransport {
    /// The network this endpoint belongs to.
    pub fn network(&self) -> &MemNetwork {
        &self.net
    }
}

impl Transport for MemTransport {
    fn local_id(&self) -> NodeId {
        self.id
    }

    /// Never blocks. A frame to an absent or partitioned peer, or lost to a drop
    /// fault, is accepted and counted as dropped (as on a real network); only a full
    /// queue, a send to self or a shut-down endpoint is an error.
    fn send(&self, to: NodeId, payload: Bytes) -> Result<(), SendError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(SendError::Shutdown);
        }
        let outcome = {
            let mut state = self.net.inner.shared.core.lock();
            let now = self.net.inner.now_us(&state);
            state
                .core
                .handle_send(self.id, self.generation, to, payload, now)?
        };
        if matches!(outcome, SendOutcome::Queued { .. }) && self.net.mode() == Mode::RealTime {
            self.net.notify_driver();
        }
        Ok(())
    }

    fn events(&self) -> &Receiver<TransportEvent> {
        &self.events
    }

    /// Removes the endpoint: peers get `Disconnected`, frames in flight to it are
    /// dropped. The network itself keeps running.
    fn shutdown(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.net
                .with_core(|c| c.remove_endpoint(self.id, self.generation));
        }
    }
}

impl Drop for MemTransport {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests;
