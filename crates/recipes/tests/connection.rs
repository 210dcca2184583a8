//! Connection states as Curator reports them, what holders are told, and protected
//! creation across a connection loss.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ensemble::CreateMode;
use parking_lot::Mutex;
use recipes::{ConnectionState, Coordinator, CoordinatorOptions, InterProcessMutex};

fn record(coord: &Coordinator) -> Arc<Mutex<Vec<ConnectionState>>> {
    let states = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&states);
    coord.add_state_listener(move |st| s.lock().push(st));
    states
}

#[test]
fn suspended_then_lost_when_the_only_node_is_cut_off() {
    let cluster = common::cluster();
    let x = common::follower(&cluster);
    // Its session is meant to expire: a short one.
    let opts = CoordinatorOptions {
        renew_session: false,
        ..common::short_opts()
    };
    let coord = Coordinator::connect(&[cluster.handle(x).unwrap()], opts).unwrap();
    let states = record(&coord);
    let lock = InterProcessMutex::new(Arc::clone(&coord), "/cs/lock").unwrap();
    assert!(lock.try_acquire(Duration::from_secs(10)).unwrap());
    let epoch = coord.epoch();
    // The holder is told in the same moment the state changes.
    let told_at_once = Arc::new(AtomicBool::new(false));
    {
        let (t, c) = (Arc::clone(&told_at_once), Arc::clone(&coord));
        coord.add_state_listener(move |st| {
            if st == ConnectionState::Suspended && !c.still_valid(epoch) {
                t.store(true, Ordering::SeqCst);
            }
        });
    }
    cluster.partition(x);
    assert!(common::eventually(common::WAIT, || {
        coord.state() == ConnectionState::Suspended || coord.state() == ConnectionState::Lost
    }));
    assert!(!lock.is_held_safely());
    // Listeners run just after the state is published: wait for the listener (it
    // still checks that the holder's trust was gone when it was told).
    assert!(common::eventually(common::WAIT, || told_at_once.load(Ordering::SeqCst)));
    // Listeners run just after the state is published: wait for the recorded one.
    assert!(common::eventually(common::WAIT, || {
        states.lock().last() == Some(&ConnectionState::Lost)
    }));
    assert_eq!(coord.state(), ConnectionState::Lost);
    assert_eq!(
        *states.lock(),
        [ConnectionState::Suspended, ConnectionState::Lost]
    );
    // The expired session's lock node is gone: another process gets the lock.
    let other = common::coord(&cluster, common::leader(&cluster));
    let lock2 = InterProcessMutex::new(other, "/cs/lock").unwrap();
    assert!(lock2.try_acquire(common::WAIT).unwrap());
    lock2.release().unwrap();
}

#[test]
fn reconnected_keeps_the_session_but_not_the_trust() {
    let mut cluster = common::cluster();
    let x = common::follower(&cluster);
    let coord = common::coord(&cluster, x);
    let session = coord.client().session_id();
    let states = record(&coord);
    let lock = InterProcessMutex::new(Arc::clone(&coord), "/cs/lock2").unwrap();
    assert!(lock.try_acquire(Duration::from_secs(10)).unwrap());
    let node = lock.lock_node().unwrap();
    cluster.crash(x);
    assert!(common::eventually(common::WAIT, || {
        states.lock().last() == Some(&ConnectionState::Reconnected)
    }));
    assert_eq!(coord.state(), ConnectionState::Reconnected);
    assert_eq!(
        *states.lock(),
        [ConnectionState::Suspended, ConnectionState::Reconnected]
    );
    assert_eq!(
        coord.client().session_id(),
        session,
        "the session moved, not replaced"
    );
    // The lock node survived with the session, but a holder that was suspended must
    // re-check before trusting the lock again.
    assert!(coord.client().exists(&node, false).unwrap().is_some());
    assert!(!lock.is_held_safely());
    lock.release().unwrap();
    assert!(coord.client().exists(&node, false).unwrap().is_none());
}

#[test]
fn protected_creates_are_never_duplicated_across_a_crash() {
    let mut cluster = common::cluster();
    let x = common::follower(&cluster);
    let coord = common::coord(&cluster, x);
    coord.ensure_path("/pc").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let made = Arc::new(Mutex::new(Vec::new()));
    let worker = {
        let (coord, stop, made) = (Arc::clone(&coord), Arc::clone(&stop), Arc::clone(&made));
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let p = coord
                    .create_protected("/pc", "n-", Bytes::new(), CreateMode::PersistentSequential)
                    .unwrap();
                made.lock().push(p);
            }
        })
    };
    assert!(common::eventually(common::WAIT, || made.lock().len() >= 20));
    cluster.crash(x);
    assert!(common::eventually(common::WAIT, || {
        coord.state() == ConnectionState::Reconnected
    }));
    let before = made.lock().len();
    assert!(common::eventually(common::WAIT, || made.lock().len() >= before + 20));
    stop.store(true, Ordering::SeqCst);
    worker.join().unwrap();
    let made: BTreeSet<String> = made
        .lock()
        .iter()
        .map(|p| p["/pc/".len()..].to_string())
        .collect();
    let children: BTreeSet<String> = coord
        .client()
        .get_children("/pc", false)
        .unwrap()
        .into_iter()
        .collect();
    // Every node was reported once, and no create left a node nobody knows of.
    assert_eq!(made, children);
}
