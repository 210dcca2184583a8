//! [`Simulation`]: the builder users drive, and the run itself (faulty phase, healing,
//! liveness probe, end-of-run checkers).

use std::fmt;

use bytes::Bytes;
use ensemble::{Acl, CreateMode, Request, Response};

use crate::check::{self, Check, Violation};
use crate::config::{Faults, Sabotage, SimConfig};
use crate::history::History;
use crate::reference::Reference;
use crate::workload::{RandomWorkload, Workload};
use crate::world::client::Phase;
use crate::world::{RunStats, World};

/// A run that passed.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The seed.
    pub seed: u64,
    /// The fault kinds this seed used.
    pub faults: Vec<&'static str>,
    /// Counts.
    pub stats: RunStats,
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        write!(
            f,
            "seed {}: ok, {} steps, {} virtual ms, {} ops ({} ok), {} txns, {} sessions ({} closed, {} expired), {} crashes, {} partitions, {} pauses, {} snapshots, {} SNAP syncs, {} log reads, {} TRUNCs; checked {} reads, {} watch changes, {} ops on {} znodes ({} inconclusive); faults [{}]",
            self.seed,
            s.steps,
            s.virtual_ms,
            s.ops,
            s.ops_ok,
            s.committed,
            s.sessions,
            s.coverage.sessions_closed,
            s.coverage.sessions_expired,
            s.crashes,
            s.partitions,
            s.pauses,
            s.snapshots,
            s.snap_syncs,
            s.log_reads,
            s.truncations,
            s.coverage.reads_checked,
            s.coverage.watch_changes_checked,
            s.coverage.lin_ops,
            s.coverage.lin_keys,
            s.coverage.lin_inconclusive,
            self.faults.join(", ")
        )
    }
}

/// A run that found violations: the seed to replay it, what was violated and the
/// last events before the first violation was found (or before the end).
#[derive(Debug, Clone)]
pub struct SimFailure {
    /// The seed (replay with `SIM_SEED=<seed>`).
    pub seed: u64,
    /// The fault kinds this seed used.
    pub faults: Vec<&'static str>,
    /// What went wrong.
    pub violations: Vec<Violation>,
    /// The last events, oldest first.
    pub trace: Vec<String>,
    /// The last network events.
    pub net_trace: Vec<String>,
}

impl fmt::Display for SimFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "simulation FAILED: seed {} (replay: SIM_SEED={}), faults [{}]",
            self.seed,
            self.seed,
            self.faults.join(", ")
        )?;
        writeln!(f, "violations ({}):", self.violations.len())?;
        let mut shown: std::collections::BTreeMap<&str, usize> = Default::default();
        for v in &self.violations {
            let n = shown.entry(v.check.as_str()).or_default();
            *n += 1;
            if *n <= 4 {
                writeln!(f, "  {v}")?;
            }
        }
        for (check, n) in shown.iter().filter(|(_, n)| **n > 4) {
            writeln!(f, "  ... {} more from {check}", n - 4)?;
        }
        writeln!(f, "last events:")?;
        for l in &self.trace {
            writeln!(f, "  {l}")?;
        }
        writeln!(f, "last network events:")?;
        for l in &self.net_trace {
            writeln!(f, "  {l}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SimFailure {}

/// Builds a fresh user check for each run.
type CheckFactory<W> = Box<dyn Fn() -> Box<dyn Check<W>>>;

/// A seeded whole-cluster simulation. See the crate docs for an example.
pub struct Simulation<W: Workload> {
    cfg: SimConfig,
    make_workload: Box<dyn Fn() -> W>,
    make_checks: Vec<CheckFactory<W>>,
}

impl Simulation<RandomWorkload> {
    /// A simulation of `voters` voting servers with the default random workload.
    pub fn new(voters: u64) -> Simulation<RandomWorkload> {
        Simulation::with_workload(voters, RandomWorkload::new)
    }
}

impl<W: Workload> Simulation<W> {
    /// A simulation of `voters` voting servers whose clients run the workload made by
    /// `make` (called once per run).
    pub fn with_workload(voters: u64, make: impl Fn() -> W + 'static) -> Simulation<W> {
        Simulation {
            cfg: SimConfig {
                voters,
                ..SimConfig::default()
            },
            make_workload: Box::new(make),
            make_checks: Vec::new(),
        }
    }

    /// Adds observers (ids after the voters).
    pub fn observers(mut self, n: u64) -> Self {
        self.cfg.observers = n;
        self
    }

    /// Number of simulated clients.
    pub fn clients(mut self, n: usize) -> Self {
        self.cfg.clients = n;
        self
    }

    /// Requests one client may have outstanding.
    pub fn outstanding(mut self, n: usize) -> Self {
        self.cfg.outstanding_max = n.max(1);
        self
    }

    /// Virtual duration of the faulty phase.
    pub fn duration_ms(mut self, ms: u64) -> Self {
        self.cfg.duration_ms = ms;
        self
    }

    /// Fault kinds the nemesis may use.
    pub fn faults(mut self, f: Faults) -> Self {
        self.cfg.faults = f;
        self
    }

    /// Snapshot every `n` applied txns (0: never).
    pub fn snapshot_every_txns(mut self, n: u64) -> Self {
        self.cfg.snapshot_every_txns = n;
        self
    }

    /// A deliberate shell bug, to test the checkers.
    pub fn sabotage(mut self, s: Sabotage) -> Self {
        self.cfg.sabotage = s;
        self
    }

    /// Adds a user invariant (`make` is called once per run).
    pub fn check(mut self, make: impl Fn() -> Box<dyn Check<W>> + 'static) -> Self {
        self.make_checks.push(Box::new(make));
        self
    }

    /// Edits the full configuration.
    pub fn configure(mut self, f: impl FnOnce(&mut SimConfig)) -> Self {
        f(&mut self.cfg);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// Runs one seed.
    pub fn run(&self, seed: u64) -> Result<RunReport, Box<SimFailure>> {
        let cfg = SimConfig {
            seed,
            ..self.cfg.clone()
        };
        let checks = self.make_checks.iter().map(|m| m()).collect();
        let mut world = match World::new(cfg, (self.make_workload)(), checks) {
            Ok(w) => w,
            Err(e) => {
                return Err(Box::new(SimFailure {
                    seed,
                    faults: Vec::new(),
                    violations: vec![Violation {
                        check: "sim".into(),
                        at_us: 0,
                        message: format!("could not build the cluster: {e}"),
                    }],
                    trace: Vec::new(),
                    net_trace: Vec::new(),
                }))
            }
        };
        run_world(&mut world);
        let mut stats = world.stats.clone();
        stats.virtual_ms = world.now_us / 1000;
        stats.ops = world.history.ops.len();
        stats.ops_ok = world
            .history
            .ops
            .iter()
            .filter(|o| o.reply.as_ref().is_some_and(|r| r.result.is_ok()))
            .count();
        stats.sessions = world.history.sessions.len();
        if world.violations.is_empty() {
            stats.committed = world.zab.committed().order.len();
            Ok(RunReport {
                seed,
                faults: world.kinds.clone(),
                stats,
            })
        } else {
            Err(Box::new(SimFailure {
                seed,
                faults: world.kinds.clone(),
                violations: world.violations.clone(),
                trace: world.trace_buf.iter().cloned().collect(),
                net_trace: world
                    .net
                    .drain_trace()
                    .iter()
                    .map(|e| e.to_string())
                    .collect(),
            }))
        }
    }

    /// Runs seeds `first..first + count`; stops at the first failure.
    pub fn run_seeds(&self, first: u64, count: u64) -> Result<Vec<RunReport>, Box<SimFailure>> {
        (first..first.saturating_add(count))
            .map(|s| self.run(s))
            .collect()
    }
}

/// The phases of one run.
fn run_world<W: Workload>(w: &mut World<W>) {
    let end = w.cfg.duration_ms * 1000;
    // Faulty phase: workload and nemesis; stop early once something is wrong.
    w.run_until(end, true, &|w| !w.violations.is_empty());
    if !w.violations.is_empty() {
        return;
    }
    // Healing: every fault ends; clients finish what they have outstanding.
    w.heal_everything();
    let tick_us = w.cfg.tick_ms * 1000;
    let budget = w.cfg.liveness_ticks * tick_us;
    let deadline = w.now_us + budget;
    let converged = w.run_until(deadline, false, &|w| {
        !w.violations.is_empty() || w.converged()
    });
    if !w.violations.is_empty() {
        return;
    }
    if !converged {
        let states = server_states(w);
        w.violation(
            check::quiescence::NAME,
            format!(
                "no convergence within {} ticks after healing: {states}",
                w.cfg.liveness_ticks
            ),
        );
        return;
    }
    // Liveness: a fresh client writes; it must commit within the budget. It retries
    // after a connection loss, as a real client would; NodeExists means an earlier
    // attempt committed.
    let probe = w.cfg.clients;
    w.clients[probe].silent_until_us = 0;
    let deadline = w.now_us + budget;
    let mut done = false;
    for _ in 0..1_000 {
        if done || w.now_us >= deadline || !w.violations.is_empty() {
            break;
        }
        w.run_until(deadline, false, &|w| {
            !w.violations.is_empty() || w.clients[probe].phase == Phase::Connected
        });
        if w.clients[probe].phase != Phase::Connected {
            break;
        }
        let probe_op = w.history.ops.len();
        w.send(
            probe,
            Request::Create {
                path: "/liveness".into(),
                data: Bytes::from_static(b"probe"),
                acl: Acl::open_unsafe(),
                mode: CreateMode::Persistent,
                ttl_ms: 0,
            },
        );
        let answered = |w: &World<W>| {
            w.history
                .ops
                .get(probe_op)
                .is_some_and(|o| o.reply.is_some())
                || w.clients[probe].outstanding.is_empty()
        };
        w.run_until(deadline, false, &|w| {
            !w.violations.is_empty() || answered(w)
        });
        done = w.history.ops.get(probe_op).is_some_and(|o| {
            o.reply.as_ref().is_some_and(|r| {
                matches!(
                    r.result,
                    Ok(Response::Created { .. })
                        | Err(ensemble::Error::Tree(datatree::Error::NodeExists(_)))
                )
            })
        });
    }
    if !w.violations.is_empty() {
        return;
    }
    if !done {
        let states = server_states(w);
        w.violation(
            check::quiescence::NAME,
            format!(
                "a new write did not commit within {} ticks after healing: {states}",
                w.cfg.liveness_ticks
            ),
        );
        return;
    }
    let deadline = w.now_us + budget;
    w.run_until(deadline, false, &|w| {
        !w.violations.is_empty() || w.converged()
    });
    end_checks(w);
}

fn server_states<W: Workload>(w: &World<W>) -> String {
    w.nodes
        .iter()
        .map(|n| match n.server.as_ref() {
            Some(s) => {
                let st = s.status();
                format!(
                    "s{}={:?}/{:?} e{} applied {} serving {}",
                    n.id,
                    st.role,
                    st.phase,
                    st.leader_epoch,
                    s.applied_zxid(),
                    s.is_serving()
                )
            }
            None => format!("s{}=down", n.id),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The history checkers, after quiescence.
fn end_checks<W: Workload>(w: &mut World<W>) {
    let strict = w.cfg.strict_reply_zxid;
    let committed = w.zab.committed();
    let reference = Reference::replay(&committed);
    let servers: Vec<(u64, &ensemble::Server)> = w
        .nodes
        .iter()
        .filter_map(|n| n.server.as_ref().map(|s| (n.id, s)))
        .collect();
    let history: &History = &w.history;
    let mut coverage = check::Coverage::default();
    let mut found = Vec::new();
    found.extend(check::quiescence::check(&servers, &reference));
    found.extend(check::durability::check(history, &reference, strict));
    found.extend(check::fifo::check(history, &reference));
    found.extend(check::reads::check(
        history,
        &reference,
        strict,
        &mut coverage,
    ));
    found.extend(check::linearizable::check(
        history,
        w.cfg.strict_local_errors,
        &mut coverage,
    ));
    found.extend(check::watches::check(
        history,
        &reference,
        strict,
        &mut coverage,
    ));
    found.extend(check::sessions::check(
        history,
        &reference,
        &servers,
        &w.disturbances,
        &committed.applied_at_us,
    ));
    coverage.sessions_expired = reference.closed_sessions.values().filter(|c| c.1).count();
    coverage.sessions_closed = reference.closed_sessions.len() - coverage.sessions_expired;
    w.stats.coverage = coverage;
    let now = w.now_us;
    for (name, message) in found {
        w.violations.push(Violation {
            check: name.to_string(),
            at_us: now,
            message,
        });
    }
}
