//! `ensemble-bench`: the benchmark harness of Ensemble (issue 10). It starts an
//! in-process ensemble ([`ensemble::Cluster`]: 3 or 5 voters, optional observers,
//! memory or file storage, fsync on or off) and drives it through the public client
//! API only.
//!
//! - Workloads ([`opts::Workload`]): `set`, `get`, `mixed`, `create-delete`, `watch`.
//! - Scenarios: `failover`, `recovery`, `snapshot-stall`, `snap-sync`, `catch-up`,
//!   `memory`.
//! - Output: a [`report::Report`] per run, printed as a table and, with `--json`,
//!   as one JSON object on the last line. Latencies go into a log-bucketed
//!   [`hist::Histogram`] (1.6 % precision).
//!
//! ```text
//! cargo run --release -p ensemble-bench -- --workload set --nodes 3 --storage file \
//!     --fsync --outstanding 32 --sessions 8 --duration 5 --json
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod hist;
pub mod host;
pub mod json;
pub mod opts;
pub mod report;
pub mod scenario;
pub mod setup;
pub mod snap_sync;
pub mod watch;
pub mod workload;

pub use opts::{Attach, Options, StorageChoice, Workload};
pub use report::Report;

/// Why a run could not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The cluster or a scenario step failed.
    #[error("setup: {0}")]
    Setup(String),
    /// A client operation the run depends on failed.
    #[error("client: {0}")]
    Client(#[from] ensemble::Error),
}

/// Runs the workload or scenario `o` describes.
pub fn run(o: &Options) -> Result<Report, BenchError> {
    match o.workload {
        Workload::Set | Workload::Get | Workload::Mixed | Workload::CreateDelete => {
            workload::run(o)
        }
        Workload::Watch => watch::run(o),
        Workload::Failover => scenario::failover(o),
        Workload::Recovery => scenario::recovery(o),
        Workload::SnapshotStall => scenario::snapshot_stall(o),
        Workload::SnapSync => snap_sync::run(o),
        Workload::CatchUp => snap_sync::catch_up(o),
        Workload::Memory => scenario::memory(o),
        Workload::MemoryTree => scenario::memory_tree(o),
    }
}
