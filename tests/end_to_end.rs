//! End to end through the public APIs of several crates at once: a file-backed
//! three-node cluster, workers from the recipes crate incrementing a counter under a
//! distributed lock (read-modify-write without versions, only safe under the lock),
//! then every node crashed and restarted from its data directory: the counter must be
//! exact and every replica must agree.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use ensemble::{Acl, Cluster, CreateMode};
use recipes::{Coordinator, CoordinatorOptions, InterProcessMutex};

const WAIT: Duration = Duration::from_secs(30);
const WORKERS: u64 = 3;
const ROUNDS: u64 = 5;

#[test]
fn locked_counter_survives_restarting_every_node_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    // Generous ZAB limits (1 s sync, 2 s init at 10 ms ticks): nothing here is about
    // failure detection, and a spurious election on a loaded machine would fail the
    // workers' unwrapped reads and writes with a connection loss.
    let mut cluster = Cluster::builder(3)
        .data_dir(dir.path())
        .limits_ticks(100, 200)
        .start()
        .unwrap();
    cluster.wait_for_leader(WAIT).unwrap();
    let setup = cluster.client(1).unwrap();
    setup
        .create(
            "/counter",
            &b"0"[..],
            &Acl::open_unsafe(),
            CreateMode::Persistent,
        )
        .unwrap();

    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let coord = Coordinator::connect(
            &cluster.handles_from(1 + w % 3),
            CoordinatorOptions::default(),
        )
        .unwrap();
        workers.push(std::thread::spawn(move || {
            let lock = InterProcessMutex::new(Arc::clone(&coord), "/locks/counter").unwrap();
            for _ in 0..ROUNDS {
                assert!(lock.try_acquire(WAIT).unwrap(), "lock timed out");
                let client = coord.client();
                let (data, _) = client.get_data("/counter", false).unwrap();
                let n: u64 = std::str::from_utf8(&data).unwrap().parse().unwrap();
                client
                    .set_data("/counter", (n + 1).to_string().into_bytes(), -1)
                    .unwrap();
                lock.release().unwrap();
            }
        }));
    }
    for w in workers {
        w.join().unwrap();
    }
    drop(setup);
    cluster.wait_converged(WAIT).unwrap();

    for id in cluster.ids() {
        cluster.crash(id);
    }
    for id in cluster.ids() {
        cluster.restart(id).unwrap();
    }
    cluster.wait_for_leader(WAIT).unwrap();
    cluster.wait_converged(WAIT).unwrap();
    for id in cluster.ids() {
        let c = cluster.client(id).unwrap();
        c.sync("/counter").unwrap();
        let (data, stat) = c.get_data("/counter", false).unwrap();
        assert_eq!(
            &data[..],
            (WORKERS * ROUNDS).to_string().as_bytes(),
            "node {id}"
        );
        assert_eq!(stat.version as u64, WORKERS * ROUNDS, "node {id}");
    }
    let digests = cluster.digests();
    assert!(digests.windows(2).all(|w| w[0].2 == w[1].2), "{digests:?}");
}
