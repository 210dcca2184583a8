//! The core thread: owns the [`Server`], moves inputs in and outputs out.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{select, Receiver, Sender};
use datatree::digest::FastHash;
use transport::{NodeId, Transport, TransportEvent};
use zab_core::ServerId;

use super::config::StorageKind;
use super::storage::{
    run_batch, spawn_log_writer, LogCmd, LogStores, NodeError, StorageQueue, Stores, SNAPSHOTS_KEPT,
};
use super::{
    Completion, ConnListener, Inbound, NodeConfig, NodeStats, Wakes, DRAIN_MAX, LOG_QUEUE_MAX,
};

use crate::codec::{split_batch_into, BatchWriter};
use crate::error::Error;
use crate::ops::{ConnId, Event, SessionEvent, Xid};
use crate::server::{Server, ServerAction, StorageDone};

/// Snapshot steps per tick interval besides the tick's own: with the default 50 ms
/// tick and 1,024-node steps, about 100,000 znodes/s while a snapshot runs.
const SNAPSHOT_STEPS_PER_TICK: u32 = 4;

/// What the snapshot thread receives.
enum SnapMsg {
    /// The next bytes of the snapshot at `zxid`.
    Chunk {
        zxid: u64,
        data: Vec<u8>,
        last: bool,
    },
    /// The snapshot at this zxid was abandoned.
    Abort(u64),
}

/// Where the log may be purged after a new snapshot: before the previous snapshot,
/// not the new one (as ZooKeeper keeps the txn logs of its retained snapshots). The
/// log then still holds between one and two snapshot intervals of txns: a leader
/// syncs a learner that far behind by a DIFF read from it instead of a SNAP of the
/// whole tree, and a damaged newest snapshot still leaves the previous one
/// recoverable. `None` (no purge) while there is only one snapshot.
fn purge_point(snaps: &dyn storage::SnapshotStore) -> Option<u64> {
    snaps.list().ok()?.get(1).map(|s| s.zxid)
}

/// The snapshot thread: streams chunks into the store; after the last one the
/// snapshot is durable (the store's `finish`) and the log before the previous one may
/// be purged (`purge_point`).
fn write_snapshots(
    id: u64,
    snaps: &dyn storage::SnapshotStore,
    rx: &Receiver<SnapMsg>,
    count: &AtomicU64,
    purge: &Sender<u64>,
) {
    let mut current: Option<(u64, Box<dyn storage::SnapshotWriter>)> = None;
    let mut failed: Option<u64> = None;
    for msg in rx {
        match msg {
            SnapMsg::Abort(z) => {
                if current.as_ref().is_some_and(|(c, _)| *c == z) {
                    current = None;
                }
            }
            SnapMsg::Chunk { zxid, data, last } => {
                if failed == Some(zxid) {
                    continue;
                }
                if current.as_ref().is_none_or(|(c, _)| *c != zxid) {
                    match snaps.begin(zxid) {
                        Ok(w) => current = Some((zxid, w)),
                        Err(e) => {
                            tracing::error!(id, zxid, error = %e, "snapshot failed");
                            failed = Some(zxid);
                            continue;
                        }
                    }
                }
                let Some((_, w)) = current.as_mut() else {
                    continue;
                };
                if let Err(e) = std::io::Write::write_all(w, &data) {
                    tracing::error!(id, zxid, error = %e, "snapshot failed");
                    failed = Some(zxid);
                    current = None;
                    continue;
                }
                if last {
                    let Some((_, w)) = current.take() else {
                        continue;
                    };
                    match w.finish().and_then(|_| snaps.retain_newest(SNAPSHOTS_KEPT)) {
                        Ok(_) => {
                            count.fetch_add(1, Ordering::Relaxed);
                            if let Some(z) = purge_point(snaps) {
                                let _ = purge.send(z);
                            }
                        }
                        Err(e) => tracing::error!(id, zxid, error = %e, "snapshot failed"),
                    }
                }
            }
        }
    }
}

struct ConnEntry {
    listener: Arc<dyn ConnListener>,
    pending: VecDeque<(Xid, Completion, Instant)>,
}

/// Where storage ops go: the log-writer thread, or (memory stores, where a "sync" is
/// free) executed inline on the core thread, saving two thread hand-offs per write.
enum LogSink {
    Thread(Sender<LogCmd>),
    Inline {
        /// Keeps the completion channel open (the core selects on it).
        _done: Sender<Vec<StorageDone>>,
        log: Box<dyn storage::LogStore>,
        epochs: Box<dyn storage::EpochStore>,
        snaps: Arc<dyn storage::SnapshotStore>,
    },
}

struct Shell {
    id: u64,
    server: Server,
    transport: Arc<dyn Transport>,
    conns: HashMap<ConnId, ConnEntry, FastHash>,
    log: LogSink,
    purge_rx: Receiver<u64>,
    snap_tx: Sender<SnapMsg>,
    outgoing: BatchWriter,
    /// Callers to wake after the current pass of actions (see `node::reply`).
    wakes: Wakes,
    /// Reused buffer for the messages of one batch frame.
    frames: Vec<bytes::Bytes>,
    /// Reused per-peer byte counts of one pass (`reserve_frames`).
    frame_sums: Vec<(u64, usize)>,
    actions: Vec<ServerAction>,
    storage_batch: StorageQueue,
    start: Instant,
    start_wall_ms: i64,
    lat_min_us: u64,
    lat_max_us: u64,
    /// The clock read once per pass of actions for the replies' latencies (a read per
    /// reply cost ~2 % of the leader's time).
    pass_now: Option<Instant>,
    lat_sum_us: u64,
    requests: u64,
    snapshots: Arc<AtomicU64>,
    stall_max_us: u64,
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub(crate) fn spawn(
    cfg: NodeConfig,
    transport: Arc<dyn Transport>,
    mut stores: Stores,
    inbox: Receiver<Inbound>,
    inbox_tx: Sender<Inbound>,
    slot: Arc<super::HandleSlot>,
) -> Result<JoinHandle<Option<Stores>>, NodeError> {
    let id = cfg.id();
    let start_wall_ms = wall_ms();
    let (persisted, state) = stores.recover()?;
    tracing::info!(
        id,
        snapshot = %persisted.snapshot_zxid,
        log_entries = persisted.log.len(),
        "node recovered"
    );
    let server = Server::new(
        cfg.server_config(start_wall_ms.max(0) as u64)?,
        persisted,
        state.as_deref(),
    )?;
    let Stores { log, epochs, snaps } = stores;
    let inline = *cfg.storage() == StorageKind::Memory;
    let (purge_tx, purge_rx) = crossbeam_channel::unbounded::<u64>();
    let (done_tx, done_rx) = crossbeam_channel::unbounded();
    let (sink, writer) = if inline {
        let sink = LogSink::Inline {
            _done: done_tx,
            log,
            epochs,
            snaps: Arc::clone(&snaps),
        };
        (sink, None)
    } else {
        let (log_tx, log_rx) = crossbeam_channel::bounded(LOG_QUEUE_MAX);
        let writer = spawn_log_writer(id, log, epochs, Arc::clone(&snaps), log_rx, done_tx)?;
        (LogSink::Thread(log_tx), Some(writer))
    };
    // Unbounded: chunks cannot be dropped (a snapshot must be whole), and the core
    // thread must never block on the disk; the writer keeps up with one step per tick.
    let (snap_tx, snap_rx) = crossbeam_channel::unbounded::<SnapMsg>();
    let snapshots = Arc::new(AtomicU64::new(0));
    let snap_thread = {
        let snaps = Arc::clone(&snaps);
        let count = Arc::clone(&snapshots);
        std::thread::Builder::new()
            .name(format!("ensemble-snap-{id}"))
            .spawn(move || write_snapshots(id, &*snaps, &snap_rx, &count, &purge_tx))
            .map_err(|e| NodeError::Thread(e.to_string()))?
    };
    let tick = Duration::from_millis(u64::from(cfg.tick_ms()));
    std::thread::Builder::new()
        .name(format!("ensemble-core-{id}"))
        .spawn(move || {
            let mut shell = Shell {
                id,
                server,
                transport,
                conns: HashMap::default(),
                log: sink,
                purge_rx,
                snap_tx,
                outgoing: BatchWriter::default(),
                wakes: Wakes::default(),
                frames: Vec::new(),
                frame_sums: Vec::new(),
                actions: Vec::new(),
                storage_batch: StorageQueue::default(),
                start: Instant::now(),
                start_wall_ms,
                lat_min_us: u64::MAX,
                lat_max_us: 0,
                pass_now: None,
                lat_sum_us: 0,
                requests: 0,
                snapshots,
                stall_max_us: 0,
            };
            shell.flush();
            shell.run(&inbox, &done_rx, tick);
            // Close the door, then answer everything that got in before it closed:
            // no request may stay unanswered in an inbox nobody reads.
            slot.close(&inbox_tx);
            drop(inbox_tx);
            while let Ok(m) = inbox.try_recv() {
                match m {
                    Inbound::Request { done, .. } => done.complete((Err(Error::ConnectionLoss), 0)),
                    Inbound::Open { conn, listener } => {
                        listener.on_event(conn, Event::Session(SessionEvent::Disconnected))
                    }
                    _ => {}
                }
            }
            shell.disconnect_all();
            shell.transport.shutdown();
            let Shell { log, snap_tx, .. } = shell;
            drop(snap_tx);
            let _ = snap_thread.join();
            match log {
                LogSink::Inline {
                    log, epochs, snaps, ..
                } => Some(Stores { log, epochs, snaps }),
                LogSink::Thread(log_tx) => {
                    drop(log_tx);
                    let (log, epochs): LogStores = writer?.join().ok()?;
                    Some(Stores { log, epochs, snaps })
                }
            }
        })
        .map_err(|e| NodeError::Thread(e.to_string()))
}

impl Shell {
    fn now_ms(&self) -> i64 {
        self.start_wall_ms + self.start.elapsed().as_millis() as i64
    }

    fn run(
        &mut self,
        inbox: &Receiver<Inbound>,
        done: &Receiver<Vec<StorageDone>>,
        tick: Duration,
    ) {
        let ticker = crossbeam_channel::tick(tick);
        // Extra snapshot steps between ticks (idle wake-ups are cheap: one channel
        // message and a check when no snapshot runs).
        let snap_ticker = crossbeam_channel::tick(tick / SNAPSHOT_STEPS_PER_TICK);
        let events = self.transport.events().clone();
        // While a SNAP is being written or a sync stream runs, a message on this
        // channel keeps `select!` from blocking: a step of either runs after every
        // wake-up instead of once per tick. Otherwise the loop blocks as before.
        let (wake_tx, wake_rx) = crossbeam_channel::bounded::<()>(1);
        loop {
            if self.server.sync_pending() {
                let _ = wake_tx.try_send(());
            }
            select! {
                recv(inbox) -> m => {
                    let Ok(m) = m else { return };
                    // One clock read per drained batch, not per request.
                    let now = Instant::now();
                    let now_ms = self.now_ms();
                    self.server.handle_time(now_ms);
                    if !self.inbound(m, now) {
                        return;
                    }
                    for _ in 0..DRAIN_MAX {
                        match inbox.try_recv() {
                            Ok(m) => if !self.inbound(m, now) { return },
                            Err(_) => break,
                        }
                    }
                }
                recv(events) -> ev => {
                    let Ok(ev) = ev else { return };
                    // Bounded by messages, not frames (a batch frame holds many): a
                    // long iteration would starve ticks and heartbeats.
                    let mut handled = self.peer_event(ev);
                    while handled < DRAIN_MAX {
                        match events.try_recv() {
                            Ok(ev) => handled += self.peer_event(ev),
                            Err(_) => break,
                        }
                    }
                }
                recv(done) -> d => {
                    let Ok(d) = d else {
                        tracing::error!(id = self.id, "log writer stopped: node stops");
                        return;
                    };
                    self.storage_done(d);
                    while let Ok(d) = done.try_recv() {
                        self.storage_done(d);
                    }
                }
                recv(ticker) -> _ => self.tick(),
                recv(snap_ticker) -> _ => self.snapshot_step(),
                recv(wake_rx) -> _ => {}
            }
            self.flush();
            if self.server.sync_pending() {
                // After the flush: what the input produced (a SNAP's first chunk
                // among it) leaves before this step's work.
                self.server.handle_sync_step();
                self.flush();
            }
            // Under a flood of requests a due tick must not wait for `select!`'s
            // random pick: heartbeats depend on it.
            if ticker.try_recv().is_ok() {
                self.tick();
                self.flush();
            }
        }
    }

    fn tick(&mut self) {
        let now = self.now_ms();
        self.timed_snapshot_step(|s| s.handle_tick(now));
    }

    /// An extra snapshot step between ticks (nothing when no snapshot runs).
    fn snapshot_step(&mut self) {
        if self.server.snapshot_in_progress() {
            self.timed_snapshot_step(Server::handle_snapshot_step);
        }
    }

    /// Runs `f` (a tick or an extra step) and, when a snapshot was running, records
    /// how long it held the core thread: the write stall a snapshot step causes.
    fn timed_snapshot_step(&mut self, f: impl FnOnce(&mut Server)) {
        let snapshotting = self.server.snapshot_in_progress();
        let t0 = Instant::now();
        f(&mut self.server);
        if snapshotting {
            let us = t0.elapsed().as_micros() as u64;
            self.stall_max_us = self.stall_max_us.max(us);
        }
    }

    fn storage_done(&mut self, d: Vec<StorageDone>) {
        for x in d {
            self.server.handle_storage_done(x);
        }
    }

    /// Handles one transport event; returns the number of messages it carried.
    fn peer_event(&mut self, ev: TransportEvent) -> usize {
        let (from, payload) = match ev {
            TransportEvent::Frame { from, payload } => (from, payload),
            TransportEvent::Disconnected(id) => {
                // A follower of that peer re-elects now instead of after syncLimit.
                self.server.handle_peer_lost(ServerId(id.0));
                return 0;
            }
            TransportEvent::Connected(id) => {
                // A LOOKING node tells the peer its vote now, not at its next re-send.
                self.server.handle_peer_connected(ServerId(id.0));
                return 0;
            }
            _ => return 0,
        };
        let from = ServerId(from.0);
        let mut frames = std::mem::take(&mut self.frames);
        let n = if split_batch_into(&payload, &mut frames) {
            let n = frames.len();
            for f in frames.drain(..) {
                self.server.handle_peer_frame(from, f);
            }
            n
        } else {
            self.server.handle_peer_frame(from, payload);
            1
        };
        // Keep the buffer (and its capacity) for the next frame.
        self.frames = frames;
        n
    }

    /// Handles one inbound item; false means stop.
    fn inbound(&mut self, m: Inbound, now: Instant) -> bool {
        match m {
            Inbound::Open { conn, listener } => {
                self.conns.insert(
                    conn,
                    ConnEntry {
                        listener,
                        pending: VecDeque::new(),
                    },
                );
            }
            Inbound::Request {
                conn,
                xid,
                req,
                done,
            } => match self.conns.get_mut(&conn) {
                Some(c) => {
                    c.pending.push_back((xid, done, now));
                    self.server.handle_client(conn, xid, req);
                }
                None => self
                    .wakes
                    .push(done.complete_deferred((Err(Error::ConnectionLoss), 0))),
            },
            Inbound::Closed(conn) => {
                self.conns.remove(&conn);
                self.server.handle_conn_closed(conn);
            }
            Inbound::Stats(tx) => {
                let _ = tx.send(self.stats());
            }
            Inbound::Stop => return false,
        }
        true
    }

    fn stats(&self) -> NodeStats {
        NodeStats {
            server: self.server.stats(),
            latency_min_us: if self.requests == 0 {
                0
            } else {
                self.lat_min_us
            },
            latency_avg_us: self.lat_sum_us.checked_div(self.requests).unwrap_or(0),
            latency_max_us: self.lat_max_us,
            requests: self.requests,
            snapshots: self.snapshots.load(Ordering::Relaxed),
            snapshot_in_progress: self.server.snapshot_in_progress(),
            snapshot_stall_max_us: self.stall_max_us,
        }
    }

    /// Executes the server's outputs in order.
    fn execute(&mut self) {
        self.pass_now = None;
        let mut actions = std::mem::take(&mut self.actions);
        loop {
            self.server.drain_actions_into(&mut actions);
            if actions.is_empty() {
                break;
            }
            self.reserve_frames(&actions);
            for a in actions.drain(..) {
                self.action(a);
            }
        }
        // Keep the buffer (and its capacity) for the next iteration.
        self.actions = actions;
    }

    /// Sizes each peer's frame for the messages this pass sends it, before they are
    /// encoded: a frame that grows while it fills copies everything in it each time.
    fn reserve_frames(&mut self, actions: &[ServerAction]) {
        let mut sums = std::mem::take(&mut self.frame_sums);
        for a in actions {
            if let ServerAction::Send { to, msg } = a {
                let n = 4 + msg.encoded_len_max();
                match sums.iter_mut().find(|(t, _)| *t == to.0) {
                    Some((_, total)) => *total += n,
                    None => sums.push((to.0, n)),
                }
            }
        }
        for (to, bytes) in sums.drain(..) {
            self.outgoing.reserve(to, bytes);
        }
        self.frame_sums = sums;
    }

    /// Sends the batched peer messages and hands the storage ops of this iteration to
    /// storage (inline for memory stores, whose completions loop back at once).
    fn flush(&mut self) {
        loop {
            self.execute();
            // Every reply of this pass is in: wake each waiting caller once, before
            // the peers get their frames (a woken peer thread competes for the CPU).
            self.wakes.wake_all();
            for (to, frame) in self.outgoing.drain() {
                if let Err(e) = self.transport.send(NodeId(to), frame) {
                    tracing::debug!(id = self.id, to, error = %e, "send failed");
                }
            }
            while let Ok(z) = self.purge_rx.try_recv() {
                self.purge(z);
            }
            if self.storage_batch.is_empty() {
                return;
            }
            let ops = self.storage_batch.take();
            match &mut self.log {
                LogSink::Thread(tx) => {
                    // Bounded: a slow disk pushes back on the core thread.
                    if tx.send(LogCmd::Ops(ops)).is_err() {
                        tracing::error!(id = self.id, "log writer gone");
                    }
                    return;
                }
                LogSink::Inline {
                    log, epochs, snaps, ..
                } => {
                    let mut done = Vec::new();
                    let r = run_batch(
                        &mut **log,
                        &mut **epochs,
                        &**snaps,
                        std::iter::once(LogCmd::Ops(ops)),
                        &mut done,
                    );
                    if let Err(e) = r {
                        tracing::error!(id = self.id, error = %e, "memory storage failed");
                    }
                    self.storage_done(done);
                }
            }
        }
    }

    fn purge(&mut self, z: u64) {
        match &mut self.log {
            LogSink::Thread(tx) => {
                let _ = tx.send(LogCmd::Purge(z));
            }
            LogSink::Inline { log, .. } => {
                if let Err(e) = log.purge_before(z) {
                    tracing::warn!(id = self.id, error = %e, "purge failed");
                }
            }
        }
    }

    fn action(&mut self, a: ServerAction) {
        match a {
            ServerAction::Send { to, msg } => {
                if let Some((to, frame)) = self.outgoing.push(to.0, &msg) {
                    if let Err(e) = self.transport.send(NodeId(to), frame) {
                        tracing::debug!(id = self.id, to, error = %e, "send failed");
                    }
                }
            }
            ServerAction::Storage(op) => self.storage_batch.push(op),
            ServerAction::Reply {
                conn,
                xid,
                zxid,
                result,
            } => {
                let Some(c) = self.conns.get_mut(&conn) else {
                    return;
                };
                let pos = match c.pending.front() {
                    Some((x, _, _)) if *x == xid => Some(0),
                    _ => c.pending.iter().position(|(x, _, _)| *x == xid),
                };
                if let Some((_, done, t0)) = pos.and_then(|i| c.pending.remove(i)) {
                    let now = *self.pass_now.get_or_insert_with(Instant::now);
                    let us = now.saturating_duration_since(t0).as_micros() as u64;
                    self.requests += 1;
                    self.lat_sum_us += us;
                    self.lat_min_us = self.lat_min_us.min(us);
                    self.lat_max_us = self.lat_max_us.max(us);
                    self.wakes.push(done.complete_deferred((result, zxid)));
                }
            }
            ServerAction::Watch { conn, event } => {
                if let Some(c) = self.conns.get(&conn) {
                    Arc::clone(&c.listener).on_event(conn, Event::Watch(event));
                }
            }
            ServerAction::Session { conn, event } => {
                if let Some(c) = self.conns.remove(&conn) {
                    let err = match event {
                        SessionEvent::Disconnected => Error::ConnectionLoss,
                        _ => Error::SessionExpired,
                    };
                    for (_, done, _) in c.pending {
                        self.wakes
                            .push(done.complete_deferred((Err(err.clone()), 0)));
                    }
                    c.listener.on_event(conn, Event::Session(event));
                }
            }
            ServerAction::SnapshotChunk { zxid, data, last } => {
                let _ = self.snap_tx.send(SnapMsg::Chunk {
                    zxid: zxid.to_u64(),
                    data,
                    last,
                });
            }
            ServerAction::SnapshotReady { zxid, data } => {
                let _ = self.snap_tx.send(SnapMsg::Chunk {
                    zxid: zxid.to_u64(),
                    data,
                    last: true,
                });
            }
            ServerAction::SnapshotAbort { zxid } => {
                let _ = self.snap_tx.send(SnapMsg::Abort(zxid.to_u64()));
            }
            ServerAction::Diverged { zxid, reason } => {
                tracing::error!(id = self.id, %zxid, %reason, "STOPPED SERVING: replica diverged");
            }
            #[allow(unreachable_patterns)] // ServerAction is non_exhaustive for other crates
            other => tracing::warn!(id = self.id, action = ?other, "unknown server action"),
        }
    }

    fn disconnect_all(&mut self) {
        for (conn, c) in self.conns.drain() {
            for (_, done, _) in c.pending {
                done.complete((Err(Error::ConnectionLoss), 0));
            }
            c.listener
                .on_event(conn, Event::Session(SessionEvent::Disconnected));
        }
    }
}
