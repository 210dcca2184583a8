//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ensemble::{Acl, Client, Cluster, ClusterBuilder, Error, Event, SessionEvent};

/// How long a test waits for a condition before failing (generous: CI machines are
/// small and busy; nothing here asserts on speed).
pub const WAIT: Duration = Duration::from_secs(20);

/// ZAB limits (sync, init) in ticks for clusters whose tests are not about failure
/// detection: 1 s and 2 s at the default 10 ms tick, instead of the default 200 ms
/// and 500 ms, so that a heavily loaded CI machine does not cause spurious elections
/// (and the connection losses that come with them) in the middle of a test.
pub const ROOMY_LIMITS_TICKS: (u64, u64) = (100, 200);

/// A cluster builder of `voters` voters with [`ROOMY_LIMITS_TICKS`]. Tests about
/// failure detection, failover timing or timeouts use `Cluster::builder` directly.
pub fn cluster(voters: u64) -> ClusterBuilder {
    Cluster::builder(voters).limits_ticks(ROOMY_LIMITS_TICKS.0, ROOMY_LIMITS_TICKS.1)
}

/// Polls `f` until it holds or [`WAIT`] passes; whether it held.
pub fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    f()
}

/// Polls `f` until it holds, failing the test after [`WAIT`].
pub fn wait_until(what: &str, f: impl FnMut() -> bool) {
    assert!(eventually(f), "timed out waiting for {what}");
}

/// ZooKeeper's OPEN_ACL_UNSAFE.
pub fn open() -> Vec<Acl> {
    Acl::open_unsafe()
}

/// Waits until `c` reports that its session lost its node (`Disconnected`).
pub fn wait_disconnected(c: &Client) {
    wait_until("Disconnected", || {
        c.events()
            .try_iter()
            .any(|e| e == Event::Session(SessionEvent::Disconnected))
    });
}

/// The root's children (as `/name`) read through node `id` after a `sync`: every
/// write acknowledged before the call is there. Retried, bounded by [`WAIT`]: after a
/// crash or a partition an election may still drop the connection (ConnectionLoss is
/// not an answer); the read that counts is the one that succeeds.
pub fn synced_root_children(cluster: &Cluster, id: u64) -> BTreeSet<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let r = cluster.client(id).and_then(|c| {
            c.sync("/")?;
            c.get_children("/", false)
        });
        match r {
            Ok(kids) => return kids.into_iter().map(|k| format!("/{k}")).collect(),
            Err(e) if Instant::now() < deadline => {
                eprintln!("node {id}: {e:?}; retrying");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("node {id} could not be read within {WAIT:?}: {e:?}"),
        }
    }
}

/// Retries `op` while it fails with [`Error::ConnectionLoss`] (bounded by [`WAIT`]),
/// for idempotent calls in tests where an election may interrupt them.
pub fn retry_on_loss<T>(mut op: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
    let deadline = Instant::now() + WAIT;
    loop {
        match op() {
            Err(Error::ConnectionLoss) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            r => return r,
        }
    }
}
