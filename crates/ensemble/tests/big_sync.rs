#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A follower that fell behind the leader's log window while the tree is large must
//! catch up by SNAP without costing the rest of the ensemble its leader.
//!
//! Before the SNAP was streamed, the leader serialized the whole state at once on
//! its core thread: with ~140k znodes (27 MB) that stalled it past `sync_limit`, its
//! healthy follower gave up on it, and the lagging one, asking again after every
//! election, kept the ensemble electing (this test took ~57 s to converge through
//! dozens of elections, or never did).

mod common;

use std::time::Duration;

use bytes::Bytes;
use ensemble::{Acl, CreateMode, WriteOp};

/// Creates `/big/p{b}` and 500 children under it, for each `b` in `batches`, one
/// multi per parent.
fn load(client: &ensemble::Client, batches: std::ops::Range<usize>, value: &Bytes) {
    let create = |path: String, data: Bytes| {
        WriteOp::create(path, data, Acl::open_unsafe(), CreateMode::Persistent)
    };
    for b in batches {
        let mut ops = vec![create(format!("/big/p{b}"), Bytes::new())];
        ops.extend((0..500).map(|i| create(format!("/big/p{b}/n{i}"), value.clone())));
        common::retry_on_loss(|| client.multi(ops.clone())).expect("load multi");
    }
}

#[test]
fn a_follower_behind_the_window_resyncs_by_snap_without_an_election() {
    // Sync 400 ms, init 1 s at a 10 ms tick: twice the defaults' proportions, so
    // that a debug build on a loaded machine does not elect for other reasons, and
    // still far below what writing this SNAP at once held the leader for.
    let cluster = ensemble::Cluster::builder(3)
        .limits_ticks(40, 100)
        .start()
        .expect("start");
    let leader = cluster.wait_for_leader(common::WAIT).expect("leader");
    let client = cluster.client(leader).expect("client");
    client
        .create("/big", &b""[..], &common::open(), CreateMode::Persistent)
        .expect("create /big");
    let value = Bytes::from(vec![7u8; 100]);
    let t = std::time::Instant::now();
    load(&client, 0..200, &value);
    eprintln!("loaded 100k znodes in {:?}", t.elapsed());
    let lagging = cluster
        .ids()
        .into_iter()
        .find(|i| *i != leader)
        .expect("a follower");
    cluster.partition(lagging);
    // ~6 MB of entries while it is away: more than the leader's 4 MiB window, so the
    // follower needs a SNAP of ~140k znodes.
    load(&client, 200..280, &value);
    // The run is judged from here: the leader and its epoch before the heal.
    // (`wait_for_leader` also waits for the partitioned node: not here.)
    let mut leader = None;
    common::wait_until("a leader", || {
        leader = cluster.leader();
        leader.is_some()
    });
    let leader = leader.expect("a leader");
    let epoch = cluster
        .stats(leader)
        .expect("stats")
        .server
        .committed_zxid
        .epoch;
    cluster.heal(lagging);
    let t = std::time::Instant::now();
    let converged = cluster.wait_converged(Duration::from_secs(60));
    eprintln!("converged in {:?}", t.elapsed());
    assert!(
        converged.is_ok(),
        "the lagging follower never caught up: {converged:?}"
    );
    let stats = cluster.stats(leader).expect("leader stats");
    assert_eq!(
        (cluster.leader(), stats.server.committed_zxid.epoch),
        (Some(leader), epoch),
        "an election happened while the follower synced"
    );
    let kids = common::synced_root_children(&cluster, lagging);
    assert!(kids.contains("/big"));
    let c = cluster
        .client(lagging)
        .expect("client on the synced follower");
    c.sync("/").expect("sync");
    assert_eq!(c.get_children("/big", false).expect("children").len(), 280);
    assert_eq!(
        c.get_data("/big/p279/n499", false).expect("last znode").0,
        value
    );
}
