//! Shared test harness: a 3-node in-process cluster and coordinators on it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ensemble::{ClientOptions, Cluster};
use recipes::{Coordinator, CoordinatorOptions};

/// Session timeout used by the tests: short, so expiry-driven handovers are quick.
pub const SESSION_MS: u32 = 1_000;

pub fn cluster() -> Cluster {
    let c = Cluster::builder(3)
        .tick_ms(10)
        .start()
        .expect("cluster starts");
    c.wait_for_leader(Duration::from_secs(20))
        .expect("a leader");
    c
}

pub fn opts() -> CoordinatorOptions {
    CoordinatorOptions {
        client: ClientOptions {
            session_timeout_ms: SESSION_MS,
            connect_timeout: Duration::from_secs(10),
            ..ClientOptions::default()
        },
        renew_session: true,
    }
}

/// A coordinator that may use every node, preferring `first`.
pub fn coord(c: &Cluster, first: u64) -> Arc<Coordinator> {
    Coordinator::connect(&c.handles_from(first), opts()).expect("connects")
}

/// A coordinator bound to node `id` alone (it cannot move when that node fails).
pub fn pinned(c: &Cluster, id: u64) -> Arc<Coordinator> {
    Coordinator::connect(&[c.handle(id).unwrap()], opts()).expect("connects")
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

/// A follower (not the leader) of the cluster.
pub fn follower(c: &Cluster) -> u64 {
    let l = c.leader().expect("leader");
    c.running()
        .into_iter()
        .find(|i| *i != l)
        .expect("a follower")
}
