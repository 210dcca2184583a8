//! Checkers. Each built-in one lives in its own module and cites the property it
//! checks:
//!
//! - [`zab`]: ZAB invariants after every step (one established leader per epoch,
//!   primary order and agreement on every committed zxid, no gaps, epochs monotonic,
//!   a new leader holds every earlier commit, digests agree).
//! - [`linearizable`]: per-znode linearizability of writes and linearizable reads
//!   (a Wing–Gong search with per-key decomposition, written here).
//! - [`reads`]: local reads are sequentially consistent (they show a committed prefix,
//!   and a session never goes back in time).
//! - [`fifo`]: replies in request order per connection; a session's writes commit in
//!   issue order.
//! - [`durability`]: no acknowledged write is lost.
//! - [`watches`]: one-shot watches fire once, in zxid order, before the reply that
//!   shows the change; persistent watches see every change.
//! - [`sessions`]: ephemerals of ended sessions are gone on every replica; no session
//!   expired while its client kept a live connection in a calm cluster.
//! - [`quiescence`]: after healing, identical digests everywhere and a new write
//!   commits within a bounded number of ticks.
//!
//! Users add their own invariants with the [`Check`] trait.

pub mod durability;
pub mod fifo;
pub mod linearizable;
pub mod quiescence;
pub mod reads;
pub mod sessions;
pub mod watches;
pub mod zab;

use std::fmt;

use ensemble::Server;

/// A property that did not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The checker that found it.
    pub check: String,
    /// Virtual time when it was found, µs.
    pub at_us: u64,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{:>10.3}ms] {}: {}",
            self.at_us as f64 / 1000.0,
            self.check,
            self.message
        )
    }
}

/// How much the end-of-run checkers looked at (so a pass is not vacuous).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Znodes checked for linearizability.
    pub lin_keys: usize,
    /// Operations in those per-key histories.
    pub lin_ops: usize,
    /// Keys whose search hit its bound (neither proved nor refuted).
    pub lin_inconclusive: usize,
    /// Local reads compared with the replayed history.
    pub reads_checked: usize,
    /// Changes a persistent (or recursive) watch had to report, all found.
    pub watch_changes_checked: usize,
    /// Sessions whose expiry (leader-proposed close) committed.
    pub sessions_expired: usize,
    /// Sessions closed by their client.
    pub sessions_closed: usize,
}

/// One server as a [`Check`] sees it.
#[derive(Debug)]
pub struct ServerView<'a> {
    /// Its id.
    pub id: u64,
    /// The server, `None` while it is crashed.
    pub server: Option<&'a Server>,
    /// Whether it is paused.
    pub paused: bool,
}

/// The cluster as a [`Check`] sees it after a step.
#[derive(Debug)]
pub struct ClusterView<'a> {
    /// Virtual time, µs.
    pub now_us: u64,
    /// Every server, by id.
    pub servers: Vec<ServerView<'a>>,
}

/// A user invariant, checked after every simulation step against the workload's own
/// state and the cluster. Return `Err(message)` when it does not hold.
///
/// ```
/// use ensemble_sim::{Check, ClusterView, RandomWorkload};
///
/// /// At most one server leads at a time (a deliberately strict example).
/// struct AtMostOneServingLeader;
///
/// impl Check<RandomWorkload> for AtMostOneServingLeader {
///     fn name(&self) -> &str {
///         "one-serving-leader"
///     }
///     fn check(&mut self, _w: &RandomWorkload, view: &ClusterView<'_>) -> Result<(), String> {
///         let leaders = view
///             .servers
///             .iter()
///             .filter_map(|s| s.server)
///             .filter(|s| s.is_serving() && s.status().role == zab_core::Role::Leading)
///             .map(|s| (s.status().leader_epoch, s.id()))
///             .collect::<std::collections::BTreeSet<_>>();
///         let epochs: std::collections::BTreeSet<_> = leaders.iter().map(|l| l.0).collect();
///         if epochs.len() < leaders.len() {
///             return Err(format!("two leaders in one epoch: {leaders:?}"));
///         }
///         Ok(())
///     }
/// }
/// ```
pub trait Check<W> {
    /// A short name for reports.
    fn name(&self) -> &str;
    /// Checks the invariant after a step.
    fn check(&mut self, workload: &W, view: &ClusterView<'_>) -> Result<(), String>;
}
