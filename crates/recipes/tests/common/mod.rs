//! Shared test harness: a 3-node in-process cluster and coordinators on it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ensemble::{ClientOptions, Cluster};
use recipes::{Coordinator, CoordinatorOptions};

/// How long a test waits for something that must happen (generous: CI machines are
/// small and busy; nothing here asserts on speed).
pub const WAIT: Duration = Duration::from_secs(20);

/// ZAB limits (sync, init) in ticks of 10 ms: 1 s and 2 s instead of the default
/// 200 ms and 500 ms, so that a heavily loaded machine does not cause spurious
/// elections. No test here is about how fast a node notices a failure.
pub const LIMITS_TICKS: (u64, u64) = (100, 200);

/// Session timeout of the coordinators that must live through a node crash or
/// partition (they re-attach elsewhere, which on a loaded machine can take seconds).
pub const SESSION_MS: u32 = 5_000;

/// Session timeout of the coordinators that are meant to expire (those bound to one
/// node that fails): short, so expiry-driven handovers are quick, but well above the
/// sync limit (1 s), so that a node cut off from the leader stops serving its clients
/// (and they learn they may no longer trust their session) before the leader expires
/// their sessions.
pub const SHORT_SESSION_MS: u32 = 3_000;

pub fn cluster() -> Cluster {
    let c = Cluster::builder(3)
        .tick_ms(10)
        .limits_ticks(LIMITS_TICKS.0, LIMITS_TICKS.1)
        // The default upper bound (400 ticks, 4 s) would cut SESSION_MS down.
        .session_timeout_ms(40, 60_000)
        .start()
        .expect("cluster starts");
    c.wait_for_leader(WAIT).expect("a leader");
    c
}

fn opts_with(session_timeout_ms: u32) -> CoordinatorOptions {
    CoordinatorOptions {
        client: ClientOptions {
            session_timeout_ms,
            connect_timeout: Duration::from_secs(10),
            ..ClientOptions::default()
        },
        renew_session: true,
    }
}

/// Options of a coordinator whose session must survive failures ([`SESSION_MS`]).
pub fn opts() -> CoordinatorOptions {
    opts_with(SESSION_MS)
}

/// Options of a coordinator whose session is meant to expire ([`SHORT_SESSION_MS`]).
pub fn short_opts() -> CoordinatorOptions {
    opts_with(SHORT_SESSION_MS)
}

/// A coordinator that may use every node, preferring `first`.
pub fn coord(c: &Cluster, first: u64) -> Arc<Coordinator> {
    Coordinator::connect(&c.handles_from(first), opts()).expect("connects")
}

/// A coordinator bound to node `id` alone (it cannot move when that node fails, so
/// its session expires then: it has a short one).
pub fn pinned(c: &Cluster, id: u64) -> Arc<Coordinator> {
    Coordinator::connect(&[c.handle(id).unwrap()], short_opts()).expect("connects")
}

/// Polls `f` until it holds or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    f()
}

/// The leader, once some node leads and serves (waits up to [`WAIT`]; a partitioned
/// node may stay not serving, so this does not wait for every node).
pub fn leader(c: &Cluster) -> u64 {
    let mut leader = None;
    assert!(
        eventually(WAIT, || {
            leader = c.leader();
            leader.is_some()
        }),
        "no leader within {WAIT:?}"
    );
    leader.expect("eventually saw a leader")
}

/// A follower (not the leader) of the cluster.
pub fn follower(c: &Cluster) -> u64 {
    let l = leader(c);
    c.running()
        .into_iter()
        .find(|i| *i != l)
        .expect("a follower")
}
