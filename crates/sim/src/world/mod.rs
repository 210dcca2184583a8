//! The simulated world: servers (the same [`ensemble::Server`] the Node runs), their
//! disks, the virtual-time in-memory network, clients, and the nemesis, driven by one
//! event loop in virtual time from one seeded RNG.

pub(crate) mod client;
pub(crate) mod disk;
mod faults;

use std::collections::{BTreeMap, HashMap, VecDeque};

use bytes::Bytes;
use ensemble::server::REQUEST_MAX_BYTES_DEFAULT;
use ensemble::{ConnId, Server, ServerAction, ServerConfig, StorageOp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use session::{PasswordSecret, SessionConfig};
use transport::mem::{MemNetwork, MemTransport};
use transport::{NodeId, Transport};
use zab_core::{Phase, Role, ServerId};

use crate::check::zab::ZabChecker;
use crate::check::{Check, ClusterView, ServerView, Violation};
use crate::config::SimConfig;
use crate::history::History;
use crate::nemesis::{self, Fault};
use crate::workload::Workload;
use client::SimClient;
use disk::{Disk, Recovered, DISK_QUEUE_MAX};

/// Frames handled per server per step (bounds one step).
const FRAMES_PER_STEP_MAX: usize = 10_000;
/// Rounds of draining one server's actions after one input (bounds one step).
const ACTION_ROUNDS_MAX: usize = 10_000;

pub(crate) struct SimNode {
    pub id: u64,
    pub server: Option<Server>,
    pub endpoint: Option<MemTransport>,
    pub disk: Disk,
    pub paused_until_us: u64,
    pub next_tick_us: u64,
    pub tick_us: u64,
    pub clock_offset_ms: i64,
    pub mirror: BTreeMap<u64, Bytes>,
    pub recovered: Option<Recovered>,
    pub last_role: Option<(Role, Phase, u32)>,
    /// A periodic snapshot being streamed out in chunks: (zxid, bytes so far).
    pub snap_buf: Option<(u64, Vec<u8>)>,
}

/// Counts of what happened in a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Simulation steps.
    pub steps: u64,
    /// Virtual time at the end, ms.
    pub virtual_ms: u64,
    /// Client requests issued.
    pub ops: usize,
    /// Requests that got a successful reply.
    pub ops_ok: usize,
    /// Committed zxids in the agreed history.
    pub committed: usize,
    /// Crashes injected.
    pub crashes: u64,
    /// Partitions (of any shape) injected.
    pub partitions: u64,
    /// Pauses injected.
    pub pauses: u64,
    /// Sessions opened.
    pub sessions: usize,
    /// Leader snapshots installed by followers (SNAP syncs).
    pub snap_syncs: u64,
    /// Log truncations (TRUNC syncs).
    pub truncations: u64,
    /// Chunks leaders read from their logs for learners behind the window.
    pub log_reads: u64,
    /// Periodic snapshots written.
    pub snapshots: u64,
    /// What the end-of-run checkers looked at.
    pub coverage: crate::check::Coverage,
}

pub(crate) struct World<W> {
    pub cfg: SimConfig,
    pub rng: ChaCha8Rng,
    pub now_us: u64,
    pub net: MemNetwork,
    pub nodes: Vec<SimNode>,
    pub server_cfgs: Vec<ServerConfig>,
    pub clients: Vec<SimClient>,
    pub conn_owner: HashMap<ConnId, usize>,
    pub next_conn: u64,
    pub history: History,
    pub zab: ZabChecker,
    pub violations: Vec<Violation>,
    pub trace_buf: VecDeque<String>,
    pub workload: W,
    pub checks: Vec<Box<dyn Check<W>>>,
    pub schedule: VecDeque<(u64, Fault)>,
    pub kinds: Vec<&'static str>,
    pub stats: RunStats,
    /// Closed fault intervals (start, end µs), for the session-expiry check.
    pub disturbances: Vec<(u64, u64)>,
    /// Faults in progress, by kind, with their start.
    pub open_faults: BTreeMap<String, u64>,
}

/// Virtual time a node spends on one step of a SNAP it writes for a learner.
const SYNC_STEP_US: u64 = 200;

fn server_config(cfg: &SimConfig, id: u64, counter_max: u32) -> Result<ServerConfig, String> {
    let voters = (1..=cfg.voters).map(ServerId);
    let observers = (cfg.voters + 1..=cfg.voters + cfg.observers).map(ServerId);
    let mut zab =
        zab_core::Config::majority(ServerId(id), voters, observers).map_err(|e| e.to_string())?;
    zab.init_limit_ticks = 20;
    zab.sync_limit_ticks = 8;
    zab.zxid_counter_max = counter_max;
    // The DIFF window, varied by seed so that both sync paths run under faults: the
    // simulated workloads are a few hundred txns, far below the default window, so
    // most seeds keep ZooKeeper's 500 or less and a learner that was away long enough
    // gets a SNAP; every fourth seed runs the default (byte-bounded) window.
    // Sync streams of 1-8 entries per step on most seeds (the default, larger than
    // these histories, on every eighth): proposals and faults then strike while a
    // learner's DIFF is still going out.
    zab.sync_stream_step = match (cfg.seed / 128) % 8 {
        0 => zab.sync_stream_step,
        k => k as usize,
    };
    zab.commit_log_max = match (cfg.seed / 32) % 4 {
        0 => zab.commit_log_max,
        1 => 500,
        2 => 64,
        _ => 8,
    };
    // Learners behind the window are synced from the log on three seeds in four, as
    // the node does; the rest keep the plain SNAP path under faults too.
    zab.diff_from_log = !(cfg.seed / 16).is_multiple_of(4);
    let tick_ms = u32::try_from(cfg.tick_ms).unwrap_or(10);
    let mut session = SessionConfig::new(id, tick_ms);
    session.min_session_timeout_ms = tick_ms.saturating_mul(4);
    session.max_session_timeout_ms = tick_ms.saturating_mul(400);
    Ok(ServerConfig {
        zab,
        session,
        secret: PasswordSecret::from_seed(cfg.seed),
        start_time_ms: 1_000_000,
        request_max_bytes: REQUEST_MAX_BYTES_DEFAULT,
        // A quarter of the seeds snapshot 16 times less often, so that their logs
        // reach back far enough for DIFFs read from them (`diff_from_log` is on there).
        snapshot_every_txns: if (cfg.seed / 16) % 4 == 3 {
            cfg.snapshot_every_txns.saturating_mul(16)
        } else {
            cfg.snapshot_every_txns
        },
        housekeeping_ticks: 10,
        super_digest: None,
        // A handful of znodes per step, varied by seed: the simulated trees are small,
        // and this way their SNAPs are written over several ticks (chunks, messages
        // held behind them) while faults strike, as large trees' SNAPs are.
        sync_step_nodes: 1 + (cfg.seed % 32) as usize,
    })
}

impl<W: Workload> World<W> {
    pub(crate) fn new(
        cfg: SimConfig,
        workload: W,
        checks: Vec<Box<dyn Check<W>>>,
    ) -> Result<World<W>, String> {
        let mut cfg = cfg;
        // Debug aid: SIM_TRACE_LINES=<n> keeps a longer trace for a replayed seed.
        if let Some(n) = std::env::var("SIM_TRACE_LINES")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            cfg.trace_lines = n;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let n = cfg.voters + cfg.observers;
        let net = MemNetwork::new_virtual(rng.gen());
        net.enable_trace(40);
        let mut counter_max = u32::MAX - 1;
        if cfg.faults.narrow_zxid && rng.gen_bool(0.4) {
            counter_max = rng.gen_range(6..60);
        }
        let skew = cfg.faults.tick_skew && rng.gen_bool(0.5);
        // Outstanding requests per client, drawn per seed (1 = strictly sequential).
        cfg.outstanding_max = rng.gen_range(1..=cfg.outstanding_max.max(1) * 2);
        let tick_us = cfg.tick_ms * 1000;
        let mut nodes = Vec::new();
        let mut server_cfgs = Vec::new();
        for id in 1..=n {
            let scfg = server_config(&cfg, id, counter_max)?;
            let server = Server::new(scfg.clone(), zab_core::Persisted::default(), None)
                .map_err(|e| e.to_string())?;
            let (t, off) = if skew {
                let f: f64 = rng.gen_range(0.75..1.25);
                ((tick_us as f64 * f) as u64, rng.gen_range(-500..500i64))
            } else {
                (tick_us, 0)
            };
            nodes.push(SimNode {
                id,
                server: Some(server),
                endpoint: Some(net.endpoint(NodeId(id))),
                disk: Disk::new(rng.gen(), cfg.sabotage),
                paused_until_us: 0,
                next_tick_us: rng.gen_range(0..t.max(1)),
                tick_us: t.max(1),
                clock_offset_ms: off,
                mirror: BTreeMap::new(),
                recovered: None,
                last_role: None,
                snap_buf: None,
            });
            server_cfgs.push(scfg);
        }
        let duration_us = cfg.duration_ms * 1000;
        let sched = nemesis::schedule(&mut rng, &cfg.faults, n, cfg.clients, duration_us);
        let mut kinds = sched.kinds.clone();
        if counter_max == u32::MAX - 1 {
            kinds.retain(|k| *k != "narrow-zxid");
        }
        if !skew {
            kinds.retain(|k| *k != "tick-skew");
        }
        // One extra client (the last) is the liveness probe: it never runs the workload.
        let clients = (0..=cfg.clients).map(|_| SimClient::new()).collect();
        let mut w = World {
            history: History::new(cfg.clients + 1),
            cfg,
            rng,
            now_us: 0,
            net,
            nodes,
            server_cfgs,
            clients,
            conn_owner: HashMap::new(),
            next_conn: 0,
            zab: ZabChecker::new(),
            violations: Vec::new(),
            trace_buf: VecDeque::new(),
            workload,
            checks,
            schedule: sched.faults.into_iter().collect(),
            kinds,
            stats: RunStats::default(),
            disturbances: Vec::new(),
            open_faults: BTreeMap::new(),
        };
        let probe = w.cfg.clients;
        w.clients[probe].silent_until_us = u64::MAX;
        for i in 0..w.nodes.len() {
            w.run_actions(i);
        }
        Ok(w)
    }

    pub(crate) fn trace(&mut self, line: String) {
        if self.trace_buf.len() >= self.cfg.trace_lines.max(1) {
            self.trace_buf.pop_front();
        }
        self.trace_buf
            .push_back(format!("[{:>10.3}ms] {line}", self.now_us as f64 / 1000.0));
    }

    pub(crate) fn violation(&mut self, check: &str, message: String) {
        self.trace(format!("VIOLATION {check}: {message}"));
        self.violations.push(Violation {
            check: check.into(),
            at_us: self.now_us,
            message,
        });
    }

    pub(crate) fn index_of(&self, id: u64) -> usize {
        (id as usize)
            .saturating_sub(1)
            .min(self.nodes.len().saturating_sub(1))
    }

    pub(crate) fn node_paused(&self, id: u64) -> bool {
        self.nodes[self.index_of(id)].paused_until_us > self.now_us
    }

    fn disk_latency_us(&mut self) -> u64 {
        if self.rng.gen_bool(0.01) {
            self.rng.gen_range(20_000..80_000)
        } else {
            self.rng.gen_range(100..3_000)
        }
    }

    /// Executes every pending action of server `i`, then observes it.
    pub(crate) fn run_actions(&mut self, i: usize) {
        let mut snapshot_at = None;
        for _ in 0..ACTION_ROUNDS_MAX {
            let actions = match self.nodes[i].server.as_mut() {
                Some(s) => s.drain_actions(),
                None => return,
            };
            if actions.is_empty() {
                break;
            }
            for a in actions {
                self.execute(i, a, &mut snapshot_at);
            }
        }
        let now = self.now_us;
        let World {
            nodes,
            zab,
            violations,
            ..
        } = self;
        let node = &mut nodes[i];
        let Some(server) = node.server.as_ref() else {
            return;
        };
        let before = violations.len();
        zab.observe(
            node.id,
            server,
            snapshot_at,
            &mut node.mirror,
            now,
            violations,
        );
        let st = server.status();
        let role = (st.role, st.phase, st.leader_epoch);
        let changed = node.last_role != Some(role);
        node.last_role = Some(role);
        let id = node.id;
        let applied = server.applied_zxid();
        if changed {
            self.trace(format!(
                "s{id}: {:?}/{:?} epoch {} leader {:?} applied {applied}",
                role.0, role.1, role.2, st.leader
            ));
        }
        if self.violations.len() > before {
            let lines: Vec<String> = self.violations[before..]
                .iter()
                .map(|v| format!("VIOLATION {}: {}", v.check, v.message))
                .collect();
            for l in lines {
                self.trace(l);
            }
        }
    }

    fn execute(&mut self, i: usize, action: ServerAction, snapshot_at: &mut Option<u64>) {
        let id = self.nodes[i].id;
        match action {
            ServerAction::Send { to, msg } => {
                if let Some(ep) = self.nodes[i].endpoint.as_ref() {
                    let _ = ep.send(NodeId(to.0), msg.encode());
                }
            }
            ServerAction::Storage(op) => {
                let node = &mut self.nodes[i];
                match &op {
                    StorageOp::Append(es) => {
                        for e in es {
                            node.mirror.insert(e.zxid.to_u64(), e.payload.clone());
                        }
                    }
                    StorageOp::Truncate(z) => {
                        let _ = node.mirror.split_off(&(z.to_u64() + 1));
                        self.stats.truncations += 1;
                    }
                    StorageOp::InstallSnapshot { zxid, .. } => {
                        node.mirror.clear();
                        *snapshot_at = Some(zxid.to_u64());
                        self.stats.snap_syncs += 1;
                    }
                    StorageOp::ReadLog(_) => self.stats.log_reads += 1,
                    _ => {}
                }
                if self.nodes[i].disk.queued() >= DISK_QUEUE_MAX {
                    self.violation("shell", format!("s{id}: disk queue overflow"));
                    return;
                }
                let due = self.now_us + self.disk_latency_us();
                let early = self.nodes[i].disk.submit(due, op);
                if let Some(s) = self.nodes[i].server.as_mut() {
                    for d in early {
                        s.handle_storage_done(d);
                    }
                }
            }
            ServerAction::Reply {
                conn,
                xid,
                zxid,
                result,
            } => self.handle_reply(conn, xid, zxid, result),
            ServerAction::Watch { conn, event } => self.handle_watch(conn, event),
            ServerAction::Session { conn, event } => self.handle_session_event(conn, event),
            ServerAction::SnapshotReady { zxid, data } => {
                self.nodes[i]
                    .disk
                    .save_snapshot(self.now_us, zxid.to_u64(), Bytes::from(data));
                self.stats.snapshots += 1;
                self.trace(format!("s{id}: snapshot at {zxid}"));
            }
            ServerAction::SnapshotChunk { zxid, data, last } => {
                let z = zxid.to_u64();
                let node = &mut self.nodes[i];
                let buf = match node.snap_buf.take() {
                    Some((bz, b)) if bz == z => b,
                    _ => Vec::new(),
                };
                let mut buf = buf;
                buf.extend_from_slice(&data);
                if last {
                    node.disk.save_snapshot(self.now_us, z, Bytes::from(buf));
                    self.stats.snapshots += 1;
                    self.trace(format!("s{id}: snapshot at {zxid}"));
                } else {
                    node.snap_buf = Some((z, buf));
                }
            }
            ServerAction::SnapshotAbort { zxid } => {
                self.nodes[i].snap_buf = None;
                self.trace(format!("s{id}: snapshot at {zxid} abandoned"));
            }
            ServerAction::Diverged { zxid, reason } => {
                self.violation(
                    "zab",
                    format!("s{id} diverged at {zxid}: {reason} (state agreement)"),
                );
            }
            #[allow(unreachable_patterns)] // non_exhaustive
            other => self.trace(format!("s{id}: unknown action {other:?}")),
        }
    }

    /// The earliest time something is due.
    fn next_time(&self) -> u64 {
        let mut t = u64::MAX;
        if let Some((at, _)) = self.schedule.front() {
            t = t.min(*at);
        }
        if let Some(d) = self.net.next_due_us() {
            t = t.min(d);
        }
        for n in &self.nodes {
            if n.server.is_none() {
                continue;
            }
            if n.paused_until_us > self.now_us {
                t = t.min(n.paused_until_us);
                continue;
            }
            t = t.min(n.next_tick_us);
            if n.server.as_ref().is_some_and(|s| s.sync_pending()) {
                // The node's shell writes a pending SNAP step after step while idle.
                t = t.min(self.now_us + SYNC_STEP_US);
            }
            if let Some(d) = n.disk.next_due_us() {
                t = t.min(d);
            }
        }
        for c in &self.clients {
            t = t.min(c.next_us.max(c.silent_until_us));
        }
        t.max(self.now_us)
    }

    /// Runs until `end_us` or until `stop` holds. Returns whether `stop` held.
    pub(crate) fn run_until(
        &mut self,
        end_us: u64,
        workload_on: bool,
        stop: &dyn Fn(&World<W>) -> bool,
    ) -> bool {
        loop {
            if stop(self) {
                return true;
            }
            if self.stats.steps >= self.cfg.steps_max {
                self.violation(
                    "sim",
                    format!("step budget of {} exhausted", self.cfg.steps_max),
                );
                return false;
            }
            let t = self.next_time();
            if t > end_us {
                self.now_us = end_us;
                let _ = self.net.advance_to(end_us);
                return stop(self);
            }
            self.now_us = t;
            let _ = self.net.advance_to(t);
            self.step(workload_on);
        }
    }

    fn step(&mut self, workload_on: bool) {
        self.stats.steps += 1;
        let now = self.now_us;
        while self.schedule.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, f)) = self.schedule.pop_front() {
                self.apply_fault(f);
            }
        }
        self.net.deliver_due();
        for i in 0..self.nodes.len() {
            if self.nodes[i].paused_until_us > now {
                continue;
            }
            for _ in 0..FRAMES_PER_STEP_MAX {
                let ev = match self.nodes[i].endpoint.as_ref() {
                    Some(ep) => ep.events().try_recv().ok(),
                    None => None,
                };
                let Some(ev) = ev else { break };
                // As the node shell does: frames, and the connection reports that
                // shorten failover (peer lost) and rejoining (peer connected).
                let Some(s) = self.nodes[i].server.as_mut() else {
                    continue;
                };
                match ev {
                    transport::TransportEvent::Frame { from, payload } => {
                        s.handle_peer_frame(ServerId(from.0), payload);
                    }
                    transport::TransportEvent::Disconnected(p) => {
                        s.handle_peer_lost(ServerId(p.0));
                    }
                    transport::TransportEvent::Connected(p) => {
                        s.handle_peer_connected(ServerId(p.0));
                    }
                    _ => continue,
                }
                self.run_actions(i);
            }
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].paused_until_us > now {
                continue;
            }
            // One step of a SNAP being written or of a sync stream, as the node shell
            // runs after each wake-up.
            if let Some(s) = self.nodes[i].server.as_mut() {
                if s.sync_pending() {
                    s.handle_sync_step();
                    self.run_actions(i);
                }
            }
        }
        for i in 0..self.nodes.len() {
            let n = &self.nodes[i];
            if n.server.is_none() || n.paused_until_us > now {
                continue;
            }
            if n.disk.next_due_us().is_some_and(|d| d <= now) {
                let id = n.id;
                match self.nodes[i].disk.run_due(now) {
                    Ok(done) => {
                        if let Some(s) = self.nodes[i].server.as_mut() {
                            for d in done {
                                s.handle_storage_done(d);
                            }
                        }
                        self.run_actions(i);
                    }
                    Err(e) => self.violation("shell", format!("s{id}: storage refused an op: {e}")),
                }
            }
        }
        for i in 0..self.nodes.len() {
            let n = &mut self.nodes[i];
            if n.server.is_none() || n.paused_until_us > now || n.next_tick_us > now {
                continue;
            }
            n.next_tick_us = n.next_tick_us.max(now.saturating_sub(n.tick_us)) + n.tick_us;
            let now_ms = (now / 1000) as i64 + n.clock_offset_ms + 1_000_000;
            if let Some(s) = n.server.as_mut() {
                s.handle_tick(now_ms);
            }
            self.run_actions(i);
        }
        for c in 0..self.clients.len() {
            let cl = &self.clients[c];
            if cl.next_us <= now && cl.silent_until_us <= now {
                let probe = c == self.cfg.clients;
                self.client_step(c, workload_on && !probe);
            }
        }
        self.run_user_checks();
    }

    fn run_user_checks(&mut self) {
        if self.checks.is_empty() {
            return;
        }
        let view = ClusterView {
            now_us: self.now_us,
            servers: self
                .nodes
                .iter()
                .map(|n| ServerView {
                    id: n.id,
                    server: n.server.as_ref(),
                    paused: n.paused_until_us > self.now_us,
                })
                .collect(),
        };
        let mut found = Vec::new();
        for c in self.checks.iter_mut() {
            if let Err(m) = c.check(&self.workload, &view) {
                found.push((c.name().to_string(), m));
            }
        }
        for (name, m) in found {
            self.violation(&name, m);
        }
    }

    /// Every server is up, serving, at the same applied zxid.
    pub(crate) fn converged(&self) -> bool {
        let mut applied = None;
        for n in &self.nodes {
            let Some(s) = n.server.as_ref() else {
                return false;
            };
            if !s.is_serving() || n.paused_until_us > self.now_us {
                return false;
            }
            let a = s.applied_zxid();
            if *applied.get_or_insert(a) != a {
                return false;
            }
        }
        true
    }
}
