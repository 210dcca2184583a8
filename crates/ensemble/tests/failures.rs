#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Crashes, restarts, partitions, expiry and catch-up, through the public API.

mod common;

use common::{open, wait_disconnected, wait_until};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ensemble::{Client, ClientOptions, Cluster, CreateMode, Error, Event, EventType, SessionEvent};

const T: Duration = Duration::from_secs(15);

fn follower_of(cluster: &Cluster, leader: u64) -> u64 {
    cluster.ids().into_iter().find(|i| *i != leader).unwrap()
}

#[test]
fn ephemerals_vanish_on_expiry_and_when_their_node_crashes() {
    // Short sessions are allowed; the sessions that must live through the test
    // (the watcher's) get the client default. The session limit is not under test.
    let mut cluster = common::cluster(3)
        .session_timeout_ms(40, 10_000)
        .start()
        .unwrap();
    let leader = cluster.wait_for_leader(T).unwrap();
    let f = follower_of(&cluster, leader);
    // A client that goes away without closing: its session expires. Short, but long
    // enough to outlive its own connect and create on a loaded machine.
    let dropped = cluster
        .client_with(
            leader,
            ClientOptions {
                session_timeout_ms: 500,
                ..ClientOptions::default()
            },
        )
        .unwrap();
    dropped
        .create("/gone", &b""[..], &open(), CreateMode::Ephemeral)
        .unwrap();
    drop(dropped);
    // A client bound to one node only: the node crashes, the session cannot move and
    // expires (well within the 20 s wait below).
    let bound = ensemble::Client::connect(
        &[cluster.handle(f).unwrap()],
        ClientOptions {
            session_timeout_ms: 1_500,
            ..ClientOptions::default()
        },
    )
    .unwrap();
    bound
        .create("/bound", &b""[..], &open(), CreateMode::Ephemeral)
        .unwrap();
    let watcher = cluster.client(leader).unwrap();
    assert!(watcher.exists("/bound", true).unwrap().is_some());
    cluster.crash(f);
    wait_until("Disconnected", || {
        matches!(
            bound.events().try_recv(),
            Ok(Event::Session(SessionEvent::Disconnected))
        )
    });
    // Its only node is gone: it cannot read (and by now its session may even have
    // been declared expired).
    let r = bound.get_data("/bound", false);
    assert!(
        matches!(r, Err(Error::ConnectionLoss | Error::SessionExpired)),
        "{r:?}"
    );
    // ConnectionLoss is fine while nodes notice the crash; only an answer counts.
    wait_until("ephemerals deleted", || {
        matches!(watcher.exists("/gone", false), Ok(None))
            && matches!(watcher.exists("/bound", false), Ok(None))
    });
    let deleted = loop {
        if let Event::Watch(w) = watcher.events().recv_timeout(T).unwrap() {
            break w;
        }
    };
    assert_eq!(
        (deleted.event_type, &*deleted.path),
        (EventType::NodeDeleted, "/bound")
    );
    cluster.restart(f).unwrap();
    cluster.wait_converged(T).unwrap();
}

#[test]
fn leader_crash_during_a_write_stream_loses_no_acknowledged_write() {
    let mut cluster = Cluster::builder(3).start().unwrap();
    let leader = cluster.wait_for_leader(T).unwrap();
    let f = follower_of(&cluster, leader);
    let c = cluster.client(f).unwrap();
    let mut acked = BTreeSet::new();
    let mut i = 0u64;
    let mut crashed = false;
    while acked.len() < 400 {
        let calls: Vec<_> = (0..16)
            .map(|_| {
                i += 1;
                let p = format!("/w{i}");
                (
                    p.clone(),
                    c.create_async(&p, &b"v"[..], &open(), CreateMode::Persistent),
                )
            })
            .collect();
        for (p, call) in calls {
            match call.wait() {
                Ok(_) => {
                    acked.insert(p);
                }
                Err(Error::ConnectionLoss) => {}
                Err(e) if e.code() == -110 => {
                    acked.insert(p);
                }
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        if !crashed && acked.len() >= 100 {
            cluster.crash(leader);
            crashed = true;
        }
        if !c.is_connected() {
            assert!(c.wait_connected(T), "session re-attached");
        }
    }
    let new_leader = cluster.wait_for_leader(T).unwrap();
    assert_ne!(new_leader, leader);
    for id in cluster.running() {
        let kids = common::synced_root_children(&cluster, id);
        let missing: Vec<_> = acked.difference(&kids).collect();
        assert!(
            missing.is_empty(),
            "node {id} lost acknowledged writes {missing:?}"
        );
    }
    cluster.restart(leader).unwrap();
    cluster.wait_converged(T).unwrap();
}

/// Creates `/base` through the leader, waits until every node has it, then crashes a
/// follower. Returns the leader, the follower and the leader's client.
fn base_then_crash_a_follower(cluster: &mut Cluster) -> (u64, u64, Client) {
    let leader = cluster.wait_for_leader(T).unwrap();
    let f = follower_of(cluster, leader);
    let c = cluster.client(leader).unwrap();
    c.create("/base", &b""[..], &open(), CreateMode::Persistent)
        .unwrap();
    cluster.wait_converged(T).unwrap();
    cluster.crash(f);
    (leader, f, c)
}

/// Crashes a follower, makes `writes` creates, restarts it and checks that it caught
/// up (by SNAP exactly when `expect_snap`) and that every node recovers afterwards.
/// `window` is the DIFF window in txns (default when `None`); `from_log` lets the
/// leader read a learner behind it from its log.
fn catch_up(
    writes: usize,
    snapshot_every: u64,
    window: Option<usize>,
    from_log: bool,
    expect_snap: bool,
) {
    let dir = tempfile::tempdir().unwrap();
    let mut builder = common::cluster(3)
        .data_dir(dir.path())
        .fsync(ensemble::Fsync::Never)
        .diff_from_log(from_log)
        .snapshot_every_txns(snapshot_every);
    if let Some(txns) = window {
        builder = builder.commit_log(txns, ensemble::deps::zab_core::COMMIT_LOG_MAX_BYTES_DEFAULT);
    }
    let mut cluster = builder.start().unwrap();
    let (leader, f, c) = base_then_crash_a_follower(&mut cluster);
    let calls: Vec<_> = (0..writes)
        .map(|i| {
            c.create_async(
                &format!("/base/k{i}"),
                &b"x"[..],
                &open(),
                CreateMode::Persistent,
            )
        })
        .collect();
    for call in calls {
        call.wait().unwrap();
    }
    c.set_data("/base", &b"after"[..], -1).unwrap();
    cluster.restart(f).unwrap();
    cluster.wait_converged(T).unwrap();
    let installed = cluster.stats(f).unwrap().server.snapshots_installed;
    assert_eq!(installed > 0, expect_snap, "SNAP used: {installed}");
    let read = cluster.stats(leader).unwrap().server.log_entries_read;
    let past_window = window.is_some_and(|w| writes > w);
    assert_eq!(
        read > 0,
        from_log && past_window,
        "log entries read: {read}"
    );
    let r = cluster.client(f).unwrap();
    assert_eq!(r.get_children("/base", false).unwrap().len(), writes);
    assert_eq!(&r.get_data("/base", false).unwrap().0[..], b"after");
    if snapshot_every > 0 {
        wait_until("a periodic snapshot", || {
            cluster.stats(leader).is_some_and(|s| s.snapshots > 0)
        });
    }
    // A full restart of every node recovers from snapshot + log.
    for id in cluster.ids() {
        cluster.crash(id);
    }
    for id in cluster.ids() {
        cluster.restart(id).unwrap();
    }
    cluster.wait_for_leader(T).unwrap();
    let z = cluster.wait_converged(T).unwrap();
    assert!(z.to_u64() > 0);
    let r = cluster.client(f).unwrap();
    assert_eq!(r.get_children("/base", false).unwrap().len(), writes);
}

#[test]
fn restarted_follower_catches_up_by_diff() {
    catch_up(50, 0, None, true, false);
}

#[test]
fn a_follower_more_than_zookeepers_500_txns_behind_still_catches_up_by_diff() {
    // ZooKeeper's in-memory committed log keeps 500 txns; Ensemble's DIFF window is
    // bounded by 4 MiB (and 100,000 txns), so 3,000 small creates are a DIFF.
    catch_up(3_000, 0, None, true, false);
}

#[test]
fn a_follower_behind_the_window_catches_up_by_a_diff_read_from_the_log() {
    // 700 creates behind a window of 100 txns: the leader reads them from its log
    // files (no snapshot purged them), as ZooKeeper reads its txn logs, not a SNAP.
    catch_up(700, 0, Some(100), true, false);
}

#[test]
fn a_diff_read_from_the_log_reaches_back_past_the_leaders_newest_snapshot() {
    // Snapshots every 200-400 txns and a window of 20: the follower is behind both
    // the window and the leader's (only) snapshot. The log is purged before the
    // previous snapshot, not the newest, so it still holds what the follower missed.
    // Memory stores: their purge is exact (a log file's goes by whole segments).
    let mut cluster = common::cluster(3)
        .snapshot_every_txns(400)
        .commit_log(20, ensemble::deps::zab_core::COMMIT_LOG_MAX_BYTES_DEFAULT)
        .start()
        .unwrap();
    let (leader, f, c) = base_then_crash_a_follower(&mut cluster);
    // Write in small steps until the leader's first snapshot is written: its next
    // one is at least 200 txns away, so there is exactly one.
    let mut written = 0;
    while cluster.stats(leader).unwrap().snapshots == 0 {
        assert!(written < 1000, "no snapshot after {written} creates");
        for _ in 0..5 {
            c.create(
                &format!("/base/k{written}"),
                &b"x"[..],
                &open(),
                CreateMode::Persistent,
            )
            .unwrap();
            written += 1;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(cluster.stats(leader).unwrap().snapshots, 1);
    cluster.restart(f).unwrap();
    cluster.wait_converged(T).unwrap();
    assert_eq!(cluster.stats(f).unwrap().server.snapshots_installed, 0);
    assert!(cluster.stats(leader).unwrap().server.log_entries_read > 0);
    let r = cluster.client(f).unwrap();
    assert_eq!(r.get_children("/base", false).unwrap().len(), written);
}

#[test]
fn restarted_follower_catches_up_by_snap_and_everyone_recovers_from_snapshots() {
    // More writes than a DIFF window of 500 txns, and no DIFF from the log: SNAP.
    catch_up(700, 200, Some(500), false, true);
}

#[test]
fn partitioned_node_disconnects_its_clients_who_move_elsewhere() {
    let cluster = Cluster::builder(3).start().unwrap();
    let leader = cluster.wait_for_leader(T).unwrap();
    let f = follower_of(&cluster, leader);
    let c = cluster.client(f).unwrap();
    c.create("/e", &b""[..], &open(), CreateMode::Ephemeral)
        .unwrap();
    cluster.partition(f);
    wait_disconnected(&c);
    assert!(c.wait_connected(T));
    assert_ne!(c.node_id(), f);
    // Same session, its ephemeral still there, writes work again (two nodes left: an
    // election on a loaded machine may interrupt a call, which the client survives).
    assert!(common::retry_on_loss(|| c.exists("/e", false))
        .unwrap()
        .is_some());
    common::retry_on_loss(|| c.set_data("/e", &b"moved"[..], -1)).unwrap();
    cluster.heal(f);
    cluster.wait_converged(T).unwrap();
}

#[test]
fn observers_serve_reads_and_forward_writes() {
    let cluster = common::cluster(3).observers(1).start().unwrap();
    cluster.wait_for_leader(T).unwrap();
    let o = cluster.client(4).unwrap();
    let stats = cluster.stats(4).unwrap();
    assert_eq!(stats.server.role, zab_core::Role::Observing);
    o.create("/from-observer", &b"o"[..], &open(), CreateMode::Persistent)
        .unwrap();
    let v = cluster.client(1).unwrap();
    v.create("/from-voter", &b"v"[..], &open(), CreateMode::Persistent)
        .unwrap();
    o.sync("/").unwrap();
    assert_eq!(&o.get_data("/from-voter", false).unwrap().0[..], b"v");
    cluster.wait_converged(T).unwrap();
}

#[test]
fn sync_then_read_sees_writes_committed_elsewhere() {
    let cluster = common::cluster(3).start().unwrap();
    let leader = cluster.wait_for_leader(T).unwrap();
    let f = follower_of(&cluster, leader);
    let writer = cluster.client(leader).unwrap();
    let reader = cluster.client(f).unwrap();
    for i in 0..50 {
        writer
            .set_data("/", format!("{i}").into_bytes(), -1)
            .unwrap();
        reader.sync("/").unwrap();
        assert_eq!(
            reader.get_data("/", false).unwrap().0,
            format!("{i}").into_bytes()
        );
        assert_eq!(
            reader.get_data_linearizable("/").unwrap().0,
            format!("{i}").into_bytes()
        );
    }
}

#[test]
fn watch_event_arrives_before_a_read_shows_the_change() {
    let cluster = common::cluster(3).start().unwrap();
    let leader = cluster.wait_for_leader(T).unwrap();
    let f = follower_of(&cluster, leader);
    let w: Client = cluster.client(f).unwrap();
    let writer = cluster.client(leader).unwrap();
    writer
        .create("/w", &b"0"[..], &open(), CreateMode::Persistent)
        .unwrap();
    w.sync("/").unwrap();
    for round in 1..=20 {
        w.get_data("/w", true).unwrap();
        writer
            .set_data("/w", format!("{round}").into_bytes(), -1)
            .unwrap();
        loop {
            let (d, _) = w.get_data("/w", false).unwrap();
            if d == format!("{round}").into_bytes() {
                break;
            }
        }
        let ev = w.events().try_iter().find_map(|e| match e {
            Event::Watch(x) => Some(x),
            _ => None,
        });
        let ev = ev.expect("the event precedes the read that shows the change");
        assert_eq!(ev.event_type, EventType::NodeDataChanged);
    }
}

#[test]
fn watches_follow_a_session_that_moves_to_another_node() {
    let cluster = Cluster::builder(3).start().unwrap();
    let leader = cluster.wait_for_leader(T).unwrap();
    let f = follower_of(&cluster, leader);
    let writer = cluster.client(leader).unwrap();
    writer
        .create("/quiet", &b""[..], &open(), CreateMode::Persistent)
        .unwrap();
    writer
        .create("/busy", &b""[..], &open(), CreateMode::Persistent)
        .unwrap();
    let c = cluster.client(f).unwrap();
    c.get_data("/quiet", true).unwrap();
    c.get_data("/busy", true).unwrap();
    c.exists("/later", true).unwrap();
    cluster.partition(f);
    wait_disconnected(&c);
    // A change the moving session misses while it is disconnected...
    writer.set_data("/busy", &b"changed"[..], -1).unwrap();
    assert!(c.wait_connected(T));
    // ...fires as soon as its watches are re-registered on the new node.
    let mut seen = Vec::new();
    let deadline = Instant::now() + T;
    while Instant::now() < deadline && seen.len() < 2 {
        if let Ok(Event::Watch(w)) = c.events().recv_timeout(Duration::from_millis(50)) {
            seen.push((w.event_type, w.path.to_string()));
        }
        if seen.len() == 1 {
            // And a watch that was quiet keeps working on the new node.
            let _ = writer.create("/later", &b""[..], &open(), CreateMode::Persistent);
        }
    }
    assert_eq!(
        seen,
        vec![
            (EventType::NodeDataChanged, "/busy".to_string()),
            (EventType::NodeCreated, "/later".to_string())
        ]
    );
    writer.set_data("/quiet", &b"now"[..], -1).unwrap();
    let w = loop {
        if let Event::Watch(w) = c.events().recv_timeout(T).unwrap() {
            break w;
        }
    };
    assert_eq!(
        (w.event_type, &*w.path),
        (EventType::NodeDataChanged, "/quiet")
    );
    cluster.heal(f);
}

#[test]
fn a_session_can_be_attached_elsewhere_by_id_and_password() {
    let cluster = common::cluster(3).start().unwrap();
    let leader = cluster.wait_for_leader(T).unwrap();
    let others: Vec<u64> = cluster.ids().into_iter().filter(|i| *i != leader).collect();
    let a = cluster.client(others[0]).unwrap();
    a.create("/mine", &b""[..], &open(), CreateMode::Ephemeral)
        .unwrap();
    let b = Client::attach(
        &[cluster.handle(others[1]).unwrap()],
        a.session_id(),
        a.password(),
        a.last_zxid_seen(),
        ClientOptions::default(),
    )
    .unwrap();
    assert_eq!(b.session_id(), a.session_id());
    assert_eq!(b.get_ephemerals("/").unwrap(), vec!["/mine".to_string()]);
    b.set_data("/mine", &b"b"[..], -1).unwrap();
    assert!(matches!(
        a.set_data("/mine", &b"a"[..], -1),
        Err(Error::SessionMoved)
    ));
    let mut wrong = a.password();
    wrong[0] ^= 1;
    let e = Client::attach(
        &[cluster.handle(leader).unwrap()],
        a.session_id(),
        wrong,
        0,
        ClientOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::SessionExpired));
}

#[test]
fn a_blocking_call_gives_up_after_the_operation_timeout() {
    // Roomy ZAB limits: the delayed link below must not make the leader drop f (and f
    // disconnect its clients with ConnectionLoss) before the 100 ms timeout fires,
    // even on a loaded machine.
    let cluster = common::cluster(3).start().unwrap();
    let leader = cluster.wait_for_leader(T).unwrap();
    let f = follower_of(&cluster, leader);
    let opts = ClientOptions {
        operation_timeout: Some(Duration::from_millis(100)),
        ..ClientOptions::default()
    };
    let c = Client::connect(&[cluster.handle(f).unwrap()], opts).unwrap();
    // Without faults a write succeeds within the timeout (retried, bounded: a loaded
    // machine may take longer than 100 ms once).
    wait_until("a write within the operation timeout", || {
        matches!(
            c.create("/fast", &b""[..], &open(), CreateMode::Persistent),
            Ok(_) | Err(Error::Tree(datatree::Error::NodeExists(_)))
        )
    });
    // Forwarded requests from f now take 2 s to reach the leader.
    cluster.network().set_link_faults(
        transport::NodeId(f),
        transport::NodeId(leader),
        transport::mem::LinkFaults {
            delay_us: 2_000_000,
            ..transport::mem::LinkFaults::none()
        },
    );
    let t = Instant::now();
    let e = c
        .create("/slow", &b""[..], &open(), CreateMode::Persistent)
        .unwrap_err();
    assert!(matches!(e, Error::OperationTimeout), "{e:?}");
    assert!(t.elapsed() < T);
    cluster
        .network()
        .clear_link_faults(transport::NodeId(f), transport::NodeId(leader));
}

#[test]
fn every_call_resolves_when_its_node_stops_mid_stream() {
    let mut cluster = common::cluster(3).start().unwrap();
    let leader = cluster.wait_for_leader(T).unwrap();
    let f = follower_of(&cluster, leader);
    let opts = ClientOptions {
        operation_timeout: Some(T),
        ..ClientOptions::default()
    };
    let c = Client::connect(&cluster.handles_from(f), opts).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = std::sync::Arc::clone(&stop);
    let worker = std::thread::spawn(move || {
        let mut timeouts = 0;
        let mut i = 0;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            let calls: Vec<_> = (0..20)
                .map(|_| {
                    i += 1;
                    c.exists_async(&format!("/n{i}"), false)
                })
                .collect();
            for call in calls {
                if matches!(call.wait(), Err(Error::OperationTimeout)) {
                    timeouts += 1;
                }
            }
        }
        timeouts
    });
    std::thread::sleep(Duration::from_millis(50));
    cluster.crash(f);
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(worker.join().unwrap(), 0, "a call went unanswered");
}
