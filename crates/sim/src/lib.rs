//! `ensemble-sim`: a seeded, single-threaded, virtual-time simulation of a whole
//! Ensemble cluster, with a nemesis, client workloads and history checkers.
//!
//! Every server is the same deterministic [`ensemble::Server`] the Node runs; the
//! network is [`transport::mem::MemNetwork`] in virtual-time mode; every disk is a
//! [`storage::SimLog`] that loses unsynced writes (sometimes tearing the tail) when
//! its server crashes. One seeded RNG decides everything — which faults the nemesis
//! uses and when, what the clients ask, disk latencies — so a run is a function of
//! its seed and replays exactly.
//!
//! A run has three phases: a faulty phase (workload + nemesis, drawing from
//! [`Faults::tcp_like`] by default: partitions of every shape, crashes, power loss,
//! pauses, lossy links, client silence, tick skew, a narrowed zxid counter), healing
//! (every fault ends; the cluster must converge within a bounded number of ticks),
//! and a liveness probe (a fresh client's write must commit). ZAB invariants are checked after every
//! step ([`check::zab`]); client histories are checked at the end against a replay of
//! the agreed committed history ([`check`] lists the checkers and their properties).
//! A failing run returns a [`SimFailure`] that prints the seed, the violations and the
//! last events.
//!
//! # Example: a user workload and a user invariant
//!
//! A leader-election recipe where each client tries to create an ephemeral
//! `/master`; the invariant is that at most one client believes it is master at any
//! time.
//!
//! ```
//! use std::collections::BTreeSet;
//!
//! use bytes::Bytes;
//! use ensemble::{Acl, CreateMode, Error, Event, Request, Response, SessionEvent};
//! use ensemble_sim::{Check, ClientId, ClusterView, Faults, Simulation, Workload, WorkloadCtx};
//!
//! #[derive(Default)]
//! struct Election {
//!     masters: BTreeSet<usize>,
//!     trying: BTreeSet<usize>,
//! }
//!
//! impl Workload for Election {
//!     fn next_request(&mut self, c: ClientId, _ctx: &mut WorkloadCtx<'_>) -> Option<Request> {
//!         if self.masters.contains(&c.0) || !self.trying.insert(c.0) {
//!             return None;
//!         }
//!         Some(Request::Create {
//!             path: "/master".into(),
//!             data: Bytes::from(format!("{}", c.0)),
//!             acl: Acl::open_unsafe(),
//!             mode: CreateMode::Ephemeral,
//!             ttl_ms: 0,
//!         })
//!     }
//!     fn handle_reply(&mut self, c: ClientId, _req: &Request, r: &Result<Response, Error>) {
//!         self.trying.remove(&c.0);
//!         if matches!(r, Ok(Response::Created { .. })) {
//!             self.masters.insert(c.0);
//!         }
//!     }
//!     fn handle_event(&mut self, c: ClientId, e: &Event) {
//!         // A client that loses its connection or session stops believing at once.
//!         if matches!(e, Event::Session(SessionEvent::Disconnected | SessionEvent::Expired)) {
//!             self.masters.remove(&c.0);
//!         }
//!     }
//! }
//!
//! struct OneMaster;
//!
//! impl Check<Election> for OneMaster {
//!     fn name(&self) -> &str {
//!         "one-master"
//!     }
//!     fn check(&mut self, w: &Election, _view: &ClusterView<'_>) -> Result<(), String> {
//!         if w.masters.len() > 1 {
//!             return Err(format!("clients {:?} all believe they are master", w.masters));
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let sim = Simulation::with_workload(3, Election::default)
//!     .clients(3)
//!     .duration_ms(1_500)
//!     .faults(Faults { crashes: true, partitions: true, ..Faults::none() })
//!     .check(|| Box::new(OneMaster));
//! for seed in 0..2 {
//!     if let Err(failure) = sim.run(seed) {
//!         panic!("{failure}");
//!     }
//! }
//! ```
//!
//! # Running many seeds
//!
//! `cargo test -p ensemble-sim` runs a fixed set of seeds; `SIM_SEEDS=<n>` runs `n`
//! seeds per cluster shape and `SIM_SEED=<s>` replays one seed (see the `seeds`
//! integration test).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod check;
pub mod config;
pub mod history;
pub mod nemesis;
pub mod reference;
mod simulation;
pub mod workload;
mod world;

pub use check::{Check, ClusterView, Coverage, ServerView, Violation};
pub use config::{Faults, Sabotage, SimConfig};
pub use history::{History, OpId, OpRecord};
pub use simulation::{RunReport, SimFailure, Simulation};
pub use workload::{ClientId, RandomWorkload, Workload, WorkloadCtx};
pub use world::RunStats;
