//! [`Options`]: what to run (command-line flags, also built directly by tests).

use clap::{Parser, ValueEnum};

/// What a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[non_exhaustive]
pub enum Workload {
    /// setData of `value_size` bytes over `keys` keys.
    Set,
    /// getData over `keys` keys.
    Get,
    /// getData / setData mixed by `read_ratio`.
    Mixed,
    /// Ephemeral sequential create, then delete it (the lock pattern).
    CreateDelete,
    /// Fan-out: `sessions` sessions watch one node; time until all are notified.
    Watch,
    /// Kill the leader under a write load; time until the next write commits.
    Failover,
    /// Restart a node holding `znodes` znodes (snapshot + log); time until it serves.
    Recovery,
    /// The longest write pause while a snapshot of `znodes` znodes is taken.
    SnapshotStall,
    /// A follower behind the DIFF window rejoins by SNAP of `znodes` znodes under a
    /// write load (the DIFF from the log is turned off): time until it serves,
    /// elections meanwhile, write latency.
    SnapSync,
    /// A follower `behind` txns behind (within the DIFF window by default) rejoins
    /// under a write load: time until it serves, whether it needed a SNAP, the log
    /// entries the leader read for it, write latency.
    CatchUp,
    /// Resident bytes per znode with `znodes` znodes of `value_size` bytes.
    Memory,
    /// The same for a bare `DataTree` (no cluster): the tree's share of `memory`.
    MemoryTree,
}

impl Workload {
    /// The name used on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Set => "set",
            Workload::Get => "get",
            Workload::Mixed => "mixed",
            Workload::CreateDelete => "create-delete",
            Workload::Watch => "watch",
            Workload::Failover => "failover",
            Workload::Recovery => "recovery",
            Workload::SnapshotStall => "snapshot-stall",
            Workload::SnapSync => "snap-sync",
            Workload::CatchUp => "catch-up",
            Workload::Memory => "memory",
            Workload::MemoryTree => "memory-tree",
        }
    }
}

/// Where the log, epochs and snapshots live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[non_exhaustive]
pub enum StorageChoice {
    /// In-memory stores (fsync has no effect).
    Mem,
    /// Files in a temporary directory (or `--data-dir`).
    File,
}

impl StorageChoice {
    /// The name used in the report.
    pub fn name(self) -> &'static str {
        match self {
            StorageChoice::Mem => "mem",
            StorageChoice::File => "file",
        }
    }
}

/// Which nodes the benchmark sessions attach to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[non_exhaustive]
pub enum Attach {
    /// Only the leader.
    Leader,
    /// Only followers and observers (round robin).
    Followers,
    /// Every node (round robin).
    All,
}

impl Attach {
    /// The name used in the report.
    pub fn name(self) -> &'static str {
        match self {
            Attach::Leader => "leader",
            Attach::Followers => "followers",
            Attach::All => "all",
        }
    }
}

/// Benchmark settings. Defaults match `NodeConfig`'s (tick 50 ms, sync limit 5
/// ticks, init limit 10 ticks).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "ensemble-bench",
    about = "Benchmarks an in-process Ensemble cluster"
)]
pub struct Options {
    /// Workload or scenario.
    #[arg(long, value_enum, default_value = "set")]
    pub workload: Workload,
    /// Voting nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// Observers (non-voting nodes).
    #[arg(long, default_value_t = 0)]
    pub observers: u64,
    /// Storage kind.
    #[arg(long, value_enum, default_value = "mem")]
    pub storage: StorageChoice,
    /// fsync every log write (file storage).
    #[arg(long)]
    pub fsync: bool,
    /// Directory for file storage (default: a fresh temporary directory).
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
    /// Outstanding requests per session.
    #[arg(long, default_value_t = 1)]
    pub outstanding: usize,
    /// Client sessions (one thread each).
    #[arg(long, default_value_t = 1)]
    pub sessions: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Unmeasured seconds before the measurement.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Keys of the set/get/mixed workloads.
    #[arg(long, default_value_t = 1000)]
    pub keys: usize,
    /// Fraction of reads in the mixed workload.
    #[arg(long, default_value_t = 0.9)]
    pub read_ratio: f64,
    /// Which nodes the sessions attach to.
    #[arg(long, value_enum, default_value = "all")]
    pub attach: Attach,
    /// Tick length in ms.
    #[arg(long, default_value_t = 50)]
    pub tick_ms: u32,
    /// ZAB sync limit in ticks (failure detection).
    #[arg(long, default_value_t = 5)]
    pub sync_limit_ticks: u64,
    /// ZAB init limit in ticks.
    #[arg(long, default_value_t = 10)]
    pub init_limit_ticks: u64,
    /// Snapshot every this many txns in the throughput workloads (default: the
    /// node's default, 100,000; 0 never snapshots).
    #[arg(long)]
    pub snapshot_every: Option<u64>,
    /// Znodes for the recovery, snapshot-stall and memory scenarios.
    #[arg(long, default_value_t = 1_000_000)]
    pub znodes: usize,
    /// Txns a follower misses in the catch-up scenario.
    #[arg(long, default_value_t = 10_000)]
    pub behind: usize,
    /// DIFF window in txns (default: the node's, 100,000).
    #[arg(long)]
    pub commit_log_txns: Option<usize>,
    /// DIFF window in payload bytes (default: the node's, 4 MiB).
    #[arg(long)]
    pub commit_log_bytes: Option<usize>,
    /// Leaders sync a learner behind the DIFF window by a SNAP at once, without
    /// trying to read what it missed from the log (always so for `snap-sync`).
    #[arg(long)]
    pub no_diff_from_log: bool,
    /// Trials of the failover scenario.
    #[arg(long, default_value_t = 5)]
    pub trials: usize,
    /// Seed of key choice and the in-memory network.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print one JSON object for the run as the last line.
    #[arg(long)]
    pub json: bool,
}

impl Options {
    /// The defaults, as if no flag were given.
    pub fn defaults() -> Options {
        Options::parse_from(["ensemble-bench"])
    }
}
