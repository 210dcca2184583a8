#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Session scenarios of issue 5, through zab-core, datatree and the session tracker as
//! the Node runs them: a follower that missed the closeSession proposal still loses
//! the ephemerals; a leader failover neither expires a live session nor keeps a dead
//! one. Waits are bounded; nothing here asserts on speed.

mod common;

use common::wait_until;
use std::time::{Duration, Instant};

use ensemble::{Acl, Client, ClientOptions, Cluster, CreateMode};

const T: Duration = Duration::from_secs(20);

/// ZOOKEEPER-2355 class: a follower cut off while a session closes must not keep the
/// session's ephemerals once it rejoins (it catches up by DIFF/SNAP, not by the
/// proposal it missed).
#[test]
fn follower_that_missed_the_close_still_loses_the_ephemerals() {
    let cluster = Cluster::builder(3).start().unwrap();
    let leader = cluster.wait_for_leader(T).unwrap();
    let lagging = cluster.ids().into_iter().find(|i| *i != leader).unwrap();
    let owner = cluster.client(leader).unwrap();
    owner
        .create(
            "/locks",
            &b""[..],
            &Acl::open_unsafe(),
            CreateMode::Persistent,
        )
        .unwrap();
    for i in 0..3 {
        owner
            .create(
                &format!("/locks/l{i}-"),
                &b""[..],
                &Acl::open_unsafe(),
                CreateMode::EphemeralSequential,
            )
            .unwrap();
    }
    cluster.wait_converged(T).unwrap();
    cluster.partition(lagging);
    owner.close().unwrap();
    let on_leader = cluster.client(leader).unwrap();
    assert!(on_leader.get_children("/locks", false).unwrap().is_empty());
    cluster.heal(lagging);
    cluster.wait_converged(T).unwrap();
    let reader = Client::connect(
        &[cluster.handle(lagging).unwrap()],
        ClientOptions::default(),
    )
    .unwrap();
    reader.sync("/locks").unwrap();
    assert!(
        reader.get_children("/locks", false).unwrap().is_empty(),
        "ephemerals survived on the lagging follower"
    );
    let digests = cluster.digests();
    assert!(
        digests.windows(2).all(|w| w[0].2 == w[1].2),
        "replicas differ: {digests:?}"
    );
}

/// After the leader crashes, the new leader gives every session a full timeout: a live
/// session (its client keeps talking to a surviving node) is not expired, and a dead
/// one (its only node crashed with the leader) is expired and its ephemerals deleted
/// on every surviving replica.
#[test]
fn leader_failover_keeps_live_sessions_and_expires_dead_ones() {
    // Generous timeouts: this runs on loaded 2-core CI machines.
    let mut cluster = Cluster::builder(5)
        .tick_ms(20)
        .session_timeout_ms(100, 5_000)
        .start()
        .unwrap();
    let leader = cluster.wait_for_leader(T).unwrap();
    let followers: Vec<u64> = cluster.ids().into_iter().filter(|i| *i != leader).collect();
    let (live_node, dead_node) = (followers[0], followers[1]);
    let opts = ClientOptions {
        session_timeout_ms: 1_000,
        ..ClientOptions::default()
    };
    let live = Client::connect(&[cluster.handle(live_node).unwrap()], opts.clone()).unwrap();
    let dead = Client::connect(&[cluster.handle(dead_node).unwrap()], opts).unwrap();
    live.create(
        "/live",
        &b""[..],
        &Acl::open_unsafe(),
        CreateMode::Ephemeral,
    )
    .unwrap();
    dead.create(
        "/dead",
        &b""[..],
        &Acl::open_unsafe(),
        CreateMode::Ephemeral,
    )
    .unwrap();
    cluster.wait_converged(T).unwrap();
    let crashed_at = Instant::now();
    cluster.crash(leader);
    cluster.crash(dead_node);
    let new_leader = cluster.wait_for_leader(T).unwrap();
    assert_ne!(new_leader, leader);
    let observer = cluster.client(new_leader).unwrap();
    // ConnectionLoss is fine while nodes re-elect or sync; only an answer counts.
    wait_until("the dead session's ephemeral to go", || {
        matches!(observer.exists("/dead", false), Ok(None))
    });
    // Keep the live session busy for several timeouts after the failover: it must
    // never be expired, and its ephemeral must stay.
    let until = Instant::now() + Duration::from_millis(3_000);
    while Instant::now() < until {
        match live.exists("/live", false) {
            Ok(stat) => assert!(stat.is_some(), "live session lost its ephemeral"),
            Err(ensemble::Error::ConnectionLoss) => {}
            Err(e) => panic!(
                "live session: {e:?} {:?} after the crash",
                crashed_at.elapsed()
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cluster.wait_converged(T).unwrap();
    for id in cluster.running() {
        let c = Client::connect(&[cluster.handle(id).unwrap()], ClientOptions::default()).unwrap();
        c.sync("/").unwrap();
        assert!(
            c.exists("/dead", false).unwrap().is_none(),
            "node {id} kept /dead"
        );
        assert!(
            c.exists("/live", false).unwrap().is_some(),
            "node {id} lost /live"
        );
    }
}
