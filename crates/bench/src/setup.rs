//! Starting the cluster for a run, attaching sessions, and populating the tree.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ensemble::deps::zab_core::{COMMIT_LOG_MAX_BYTES_DEFAULT, COMMIT_LOG_MAX_DEFAULT};
use ensemble::{Acl, Client, ClientOptions, Cluster, CreateMode, Fsync, WriteOp};

use crate::opts::{Attach, Options, StorageChoice, Workload};
use crate::BenchError;

/// How long to wait for a leader after start or a fault.
pub const LEADER_WAIT: Duration = Duration::from_secs(60);
/// Multi requests of a bulk load in flight at once.
const LOAD_OUTSTANDING: usize = 4;
/// Creates per multi of a bulk load.
pub const LOAD_BATCH: usize = 1000;
/// Children per parent in a bulk load (1,000,000 znodes → 1,000 parents).
const LOAD_FANOUT: usize = 1000;

/// A running cluster for one run (and the temporary directory it lives in).
pub struct Bench {
    /// The cluster.
    pub cluster: Cluster,
    /// The leader when the run started.
    pub leader: u64,
    _dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Bench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bench")
            .field("leader", &self.leader)
            .finish_non_exhaustive()
    }
}

/// Starts the cluster `o` describes; `snapshot_every_txns` overrides the default
/// snapshot interval.
pub fn start(o: &Options, snapshot_every_txns: Option<u64>) -> Result<Bench, BenchError> {
    if o.nodes == 0 {
        return Err(BenchError::Setup("--nodes must be at least 1".into()));
    }
    let mut b = Cluster::builder(o.nodes)
        .observers(o.observers)
        .tick_ms(o.tick_ms)
        .limits_ticks(o.sync_limit_ticks, o.init_limit_ticks)
        .seed(o.seed)
        .fsync(if o.fsync { Fsync::Always } else { Fsync::Never });
    if let Some(n) = snapshot_every_txns {
        b = b.snapshot_every_txns(n);
    }
    if o.commit_log_txns.is_some() || o.commit_log_bytes.is_some() {
        b = b.commit_log(
            o.commit_log_txns.unwrap_or(COMMIT_LOG_MAX_DEFAULT),
            o.commit_log_bytes.unwrap_or(COMMIT_LOG_MAX_BYTES_DEFAULT),
        );
    }
    b = b.diff_from_log(!o.no_diff_from_log && o.workload != Workload::SnapSync);
    let mut dir = None;
    if o.storage == StorageChoice::File {
        match &o.data_dir {
            Some(d) => b = b.data_dir(d),
            None => {
                let t = tempfile::tempdir().map_err(|e| BenchError::Setup(e.to_string()))?;
                b = b.data_dir(t.path());
                dir = Some(t);
            }
        }
    }
    let cluster = b.start().map_err(|e| BenchError::Setup(e.to_string()))?;
    let leader = cluster
        .wait_for_leader(LEADER_WAIT)
        .ok_or_else(|| BenchError::Setup("no leader elected".into()))?;
    Ok(Bench {
        cluster,
        leader,
        _dir: dir,
    })
}

impl Bench {
    /// The node ids sessions attach to, in round-robin order.
    pub fn attach_ids(&self, attach: Attach) -> Vec<u64> {
        let ids = self.cluster.ids();
        let others: Vec<u64> = ids.iter().copied().filter(|i| *i != self.leader).collect();
        match attach {
            Attach::Leader => vec![self.leader],
            Attach::Followers if !others.is_empty() => others,
            _ => ids,
        }
    }

    /// `n` sessions spread over the `attach` nodes.
    pub fn clients(&self, attach: Attach, n: usize) -> Result<Vec<Client>, BenchError> {
        let ids = self.attach_ids(attach);
        (0..n)
            .map(|s| self.client(ids[s % ids.len()]))
            .collect::<Result<Vec<_>, _>>()
    }

    /// One session on node `id` (moving to the others if it fails).
    pub fn client(&self, id: u64) -> Result<Client, BenchError> {
        let opts = ClientOptions {
            connect_timeout: LEADER_WAIT,
            ..ClientOptions::default()
        };
        Ok(self.cluster.client_with(id, opts)?)
    }

    /// Waits until every replica applied the same zxid.
    pub fn converge(&self) -> Result<(), BenchError> {
        self.cluster
            .wait_converged(LEADER_WAIT)
            .map(|_| ())
            .map_err(|d| BenchError::Setup(format!("replicas did not converge: {d:?}")))
    }
}

/// The path of benchmark key `k`.
pub fn key_path(k: usize) -> String {
    format!("/bench/k{k}")
}

/// Creates `/bench` and `keys` keys holding `value`.
pub fn create_keys(c: &Client, keys: usize, value: &Bytes) -> Result<(), BenchError> {
    ensure(c, "/bench")?;
    // Lazily, batch by batch: a bulk load must not leave a million freed strings
    // behind in the allocator (the memory scenario measures RSS).
    let ops = (0..keys).map(|k| WriteOp::Create {
        path: key_path(k),
        data: value.clone(),
        acl: Acl::open_unsafe(),
        mode: CreateMode::Persistent,
        ttl_ms: 0,
    });
    run_batches(c, ops)
}

/// Creates `path` unless it exists.
pub fn ensure(c: &Client, path: &str) -> Result<(), BenchError> {
    let create = || {
        match c.create(
            path,
            Bytes::new(),
            &Acl::open_unsafe(),
            CreateMode::Persistent,
        ) {
            Ok(_) => Ok(()),
            // ZooKeeper's NODEEXISTS code.
            Err(e) if e.code() == -110 => Ok(()),
            Err(e) => Err(e),
        }
    };
    match create() {
        Ok(()) => Ok(()),
        Err(e) => retry(c, e, create),
    }
}

/// Sends `ops` as multis of [`LOAD_BATCH`], [`LOAD_OUTSTANDING`] in flight. A batch
/// that fails with a retryable error (the session moving after a lost heartbeat on a
/// loaded machine) is sent again once the session is back; if the retry then fails
/// definitely, the first attempt is taken to have committed (the loader creates
/// fresh paths only, so the only definite failure is NodeExists).
fn run_batches(c: &Client, ops: impl Iterator<Item = WriteOp>) -> Result<(), BenchError> {
    let mut inflight = std::collections::VecDeque::new();
    let mut it = ops.peekable();
    while it.peek().is_some() || !inflight.is_empty() {
        while inflight.len() < LOAD_OUTSTANDING && it.peek().is_some() {
            let batch: Vec<WriteOp> = it.by_ref().take(LOAD_BATCH).collect();
            inflight.push_back((c.multi_async(batch.clone()), batch));
        }
        if let Some((call, batch)) = inflight.pop_front() {
            if let Err(e) = call.wait() {
                retry(c, e, || c.multi(batch.clone()).map(|_| ()))?;
            }
        }
    }
    Ok(())
}

/// Retries `f` after a retryable error `e` (a few times, waiting for the session
/// to reconnect); a definite error on a retry means an earlier attempt committed.
pub fn retry(
    c: &Client,
    mut e: ensemble::Error,
    f: impl Fn() -> Result<(), ensemble::Error>,
) -> Result<(), BenchError> {
    for _ in 0..RETRIES_MAX {
        if !e.is_retryable() {
            return Err(e.into());
        }
        c.wait_connected(LEADER_WAIT);
        match f() {
            Ok(()) => return Ok(()),
            Err(next) if next.is_retryable() => e = next,
            Err(_) => return Ok(()),
        }
    }
    Err(e.into())
}

/// Retries of one bulk-load step.
const RETRIES_MAX: usize = 5;

/// Loads `count` znodes of `value` under `/z` (1,000 children per parent); returns
/// how long it took.
pub fn populate(c: &Client, count: usize, value: &Bytes) -> Result<Duration, BenchError> {
    let t = Instant::now();
    ensure(c, "/z")?;
    let parents = count.div_ceil(LOAD_FANOUT).max(1);
    let mk = |path: String, data: Bytes| WriteOp::Create {
        path,
        data,
        acl: Acl::open_unsafe(),
        mode: CreateMode::Persistent,
        ttl_ms: 0,
    };
    run_batches(
        c,
        (0..parents).map(|p| mk(format!("/z/p{p}"), Bytes::new())),
    )?;
    run_batches(
        c,
        (0..count).map(|i| mk(format!("/z/p{}/n{i}", i / LOAD_FANOUT), value.clone())),
    )?;
    Ok(t.elapsed())
}
