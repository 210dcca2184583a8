//! [`Cluster`]: an in-process ensemble over the in-memory network, for tests, examples
//! and users' own harnesses: start N voters and M observers with memory or file
//! storage in one call; find the leader; crash, restart, partition and heal nodes;
//! wait until every replica applied the same zxid; compare digests.
//!
//! ```
//! use ensemble::{Cluster, CreateMode, Acl};
//!
//! let mut cluster = Cluster::builder(3).tick_ms(10).start().unwrap();
//! let leader = cluster.wait_for_leader(std::time::Duration::from_secs(10)).unwrap();
//! let client = cluster.client(leader).unwrap();
//! client.create("/hello", &b"world"[..], &Acl::open_unsafe(), CreateMode::Persistent).unwrap();
//! cluster.wait_converged(std::time::Duration::from_secs(10)).unwrap();
//! cluster.crash(leader);
//! let next = cluster.wait_for_leader(std::time::Duration::from_secs(10)).unwrap();
//! let client = cluster.client(next).unwrap();
//! assert_eq!(&client.get_data("/hello", false).unwrap().0[..], b"world");
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use transport::mem::MemNetwork;
use transport::NodeId;
use zab_core::{Role, Zxid};

use crate::client::{Client, ClientOptions};
use crate::error::Error;
use crate::node::{Fsync, Node, NodeConfig, NodeError, NodeHandle, NodeStats, StorageKind, Stores};

/// How long the harness waits for one node's statistics.
const STATS_WAIT: Duration = Duration::from_secs(2);

/// Builds a [`Cluster`].
#[derive(Debug, Clone)]
pub struct ClusterBuilder {
    voters: u64,
    observers: u64,
    tick_ms: u32,
    dir: Option<PathBuf>,
    fsync: Fsync,
    snapshot_every_txns: u64,
    session_timeout_ms: Option<(u32, u32)>,
    seed: u64,
    sync_limit_ticks: u64,
    init_limit_ticks: u64,
    super_digest: Option<String>,
    commit_log: Option<(usize, usize)>,
    diff_from_log: bool,
}

impl ClusterBuilder {
    /// Adds `n` observers (ids after the voters').
    pub fn observers(mut self, n: u64) -> Self {
        self.observers = n;
        self
    }

    /// Tick length (default 10 ms: fast elections for tests).
    pub fn tick_ms(mut self, ms: u32) -> Self {
        self.tick_ms = ms;
        self
    }

    /// File storage under `dir` (one sub-directory per node); default memory.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// The fsync policy for file storage (default always).
    pub fn fsync(mut self, f: Fsync) -> Self {
        self.fsync = f;
        self
    }

    /// Snapshot every `n` txns (default 100,000).
    pub fn snapshot_every_txns(mut self, n: u64) -> Self {
        self.snapshot_every_txns = n;
        self
    }

    /// Session timeout bounds in ms.
    pub fn session_timeout_ms(mut self, min_ms: u32, max_ms: u32) -> Self {
        self.session_timeout_ms = Some((min_ms, max_ms));
        self
    }

    /// ZAB limits in ticks (default: sync 20, init 50 — generous, so that debug
    /// builds on a loaded machine do not lose heartbeats).
    pub fn limits_ticks(mut self, sync: u64, init: u64) -> Self {
        self.sync_limit_ticks = sync;
        self.init_limit_ticks = init;
        self
    }

    /// The super digest id of every node ([`crate::NodeConfigBuilder::super_digest`]).
    pub fn super_digest(mut self, digest_id: impl Into<String>) -> Self {
        self.super_digest = Some(digest_id.into());
        self
    }

    /// The DIFF window of every node ([`crate::NodeConfigBuilder::commit_log`]).
    pub fn commit_log(mut self, max_txns: usize, max_bytes: usize) -> Self {
        self.commit_log = Some((max_txns, max_bytes));
        self
    }

    /// Whether leaders read their logs to sync learners behind the window
    /// ([`crate::NodeConfigBuilder::diff_from_log`]; default `true`).
    pub fn diff_from_log(mut self, on: bool) -> Self {
        self.diff_from_log = on;
        self
    }

    /// Seed of the in-memory network.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Starts every node.
    pub fn start(self) -> Result<Cluster, NodeError> {
        let net = MemNetwork::new(self.seed);
        let total = self.voters + self.observers;
        let mut nodes = BTreeMap::new();
        for id in 1..=total {
            let mut b = NodeConfig::builder(id)
                .tick_ms(self.tick_ms)
                .sync_limit_ticks(self.sync_limit_ticks)
                .init_limit_ticks(self.init_limit_ticks)
                .fsync(self.fsync)
                .snapshot_every_txns(self.snapshot_every_txns)
                .housekeeping_ms(self.tick_ms.saturating_mul(10));
            for v in 1..=self.voters {
                b = b.voter(v);
            }
            for o in self.voters + 1..=total {
                b = b.observer(o);
            }
            // Sessions must outlive failure detection (sync limit) so that clients of
            // a partitioned node can move before they expire: default bounds are 4
            // and 400 ticks.
            let (lo, hi) = self.session_timeout_ms.unwrap_or((
                self.tick_ms.saturating_mul(4),
                self.tick_ms.saturating_mul(400),
            ));
            b = b.session_timeout_ms(lo, hi);
            if let Some(d) = &self.super_digest {
                b = b.super_digest(d.clone());
            }
            if let Some((txns, bytes)) = self.commit_log {
                b = b.commit_log(txns, bytes);
            }
            b = b.diff_from_log(self.diff_from_log);
            if let Some(dir) = &self.dir {
                b = b.data_dir(dir.join(format!("node-{id}")));
            }
            let cfg = b.build()?;
            let node = Node::start(cfg.clone(), Arc::new(net.endpoint(NodeId(id))))?;
            let handle = node.handle();
            nodes.insert(
                id,
                Slot {
                    cfg,
                    node: Some(node),
                    handle,
                    stores: None,
                },
            );
        }
        Ok(Cluster { net, nodes })
    }
}

struct Slot {
    cfg: NodeConfig,
    node: Option<Node>,
    handle: NodeHandle,
    stores: Option<Stores>,
}

/// An in-process ensemble. See the module docs.
pub struct Cluster {
    net: MemNetwork,
    nodes: BTreeMap<u64, Slot>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("nodes", &self.nodes.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Cluster {
    /// A builder for `voters` voting nodes (ids 1..=voters), memory storage, 10 ms ticks.
    pub fn builder(voters: u64) -> ClusterBuilder {
        ClusterBuilder {
            voters,
            observers: 0,
            tick_ms: 10,
            dir: None,
            fsync: Fsync::Always,
            snapshot_every_txns: 100_000,
            session_timeout_ms: None,
            seed: 7,
            sync_limit_ticks: 20,
            init_limit_ticks: 50,
            super_digest: None,
            commit_log: None,
            diff_from_log: true,
        }
    }

    /// The in-memory network (for finer fault injection).
    pub fn network(&self) -> &MemNetwork {
        &self.net
    }

    /// Every node id.
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    /// The ids of running nodes.
    pub fn running(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|(_, s)| s.node.is_some())
            .map(|(i, _)| *i)
            .collect()
    }

    /// The handle of node `id` (valid across restarts).
    pub fn handle(&self, id: u64) -> Option<NodeHandle> {
        self.nodes.get(&id).map(|s| s.handle.clone())
    }

    /// Every node's handle, starting with `first` (a client's preference order).
    pub fn handles_from(&self, first: u64) -> Vec<NodeHandle> {
        let mut v: Vec<NodeHandle> = self.nodes.values().map(|s| s.handle.clone()).collect();
        if let Some(i) = v.iter().position(|h| h.id() == first) {
            v.rotate_left(i);
        }
        v
    }

    /// A client attached to node `id` (falling back to the others, in id order, if it
    /// leaves the quorum).
    pub fn client(&self, id: u64) -> Result<Client, Error> {
        self.client_with(id, ClientOptions::default())
    }

    /// As [`Cluster::client`] with options.
    pub fn client_with(&self, id: u64, opts: ClientOptions) -> Result<Client, Error> {
        Client::connect(&self.handles_from(id), opts)
    }

    /// Statistics of node `id`, if it runs.
    pub fn stats(&self, id: u64) -> Option<NodeStats> {
        let s = self.nodes.get(&id)?;
        s.node.as_ref()?;
        s.handle.stats(STATS_WAIT)
    }

    /// The running node that leads and serves, if any.
    pub fn leader(&self) -> Option<u64> {
        self.running().into_iter().find(|id| {
            self.stats(*id)
                .is_some_and(|s| s.server.role == Role::Leading && s.server.serving)
        })
    }

    /// Waits until some node leads and every running node serves.
    pub fn wait_for_leader(&self, timeout: Duration) -> Option<u64> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let all_serving = self
                .running()
                .iter()
                .all(|id| self.stats(*id).is_some_and(|s| s.server.serving));
            if all_serving {
                if let Some(l) = self.leader() {
                    return Some(l);
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    /// Stops node `id` abruptly (its clients are disconnected; memory stores are
    /// kept for [`Cluster::restart`]).
    pub fn crash(&mut self, id: u64) {
        if let Some(s) = self.nodes.get_mut(&id) {
            if let Some(node) = s.node.take() {
                s.stores = node.stop();
            }
        }
    }

    /// Restarts a crashed node from its stores (files, or the kept memory stores).
    pub fn restart(&mut self, id: u64) -> Result<(), NodeError> {
        let Some(s) = self.nodes.get_mut(&id) else {
            return Ok(());
        };
        if s.node.is_some() {
            return Ok(());
        }
        let stores = match (s.cfg.storage(), s.stores.take()) {
            (StorageKind::Memory, Some(st)) => st,
            (kind, _) => Stores::open(kind, s.cfg.fsync())?,
        };
        let transport = Arc::new(self.net.endpoint(NodeId(id)));
        s.node = Some(Node::restart(&s.handle, s.cfg.clone(), transport, stores)?);
        Ok(())
    }

    /// Cuts node `id` off from every other node (both directions).
    pub fn partition(&self, id: u64) {
        self.net.isolate(NodeId(id));
    }

    /// Heals node `id`'s links.
    pub fn heal(&self, id: u64) {
        self.net.heal(NodeId(id));
    }

    /// Heals every link.
    pub fn heal_all(&self) {
        self.net.heal_all();
    }

    /// (id, applied zxid, digest) of every running node.
    pub fn digests(&self) -> Vec<(u64, Zxid, u64)> {
        self.running()
            .into_iter()
            .filter_map(|id| {
                self.stats(id)
                    .map(|s| (id, s.server.applied_zxid, s.server.digest))
            })
            .collect()
    }

    /// Waits until every running node serves and all applied the same zxid with the
    /// same digest; returns that zxid, or the last observed state on timeout.
    pub fn wait_converged(&self, timeout: Duration) -> Result<Zxid, Vec<(u64, Zxid, u64)>> {
        let deadline = Instant::now() + timeout;
        loop {
            let d = self.digests();
            let serving = self
                .running()
                .iter()
                .all(|id| self.stats(*id).is_some_and(|s| s.server.serving));
            if serving
                && d.len() == self.running().len()
                && d.windows(2).all(|w| w[0].1 == w[1].1 && w[0].2 == w[1].2)
            {
                if let Some((_, z, _)) = d.first() {
                    return Ok(*z);
                }
            }
            if Instant::now() >= deadline {
                return Err(d);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops every node.
    pub fn shutdown(&mut self) {
        for s in self.nodes.values_mut() {
            if let Some(n) = s.node.take() {
                let _ = n.stop();
            }
        }
        self.net.shutdown();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}
