//! Mutual exclusion with faults: clients contend for a lock while the node some of
//! them depend on crashes and comes back. A holder acts only while
//! `is_held_safely()`; no two such holders may ever overlap.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use recipes::InterProcessMutex;

#[test]
fn mutual_exclusion_holds_while_a_node_crashes_and_returns() {
    let mut cluster = common::cluster();
    let doomed = common::follower(&cluster);
    let inside = Arc::new(AtomicBool::new(false));
    let entries = Arc::new(AtomicU32::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for i in 0..6u64 {
        // Two clients can only use the node that will crash: their sessions expire
        // and their coordinators open new ones once it is back.
        let coord = if i < 2 {
            common::pinned(&cluster, doomed)
        } else {
            common::coord(&cluster, 1 + i % 3)
        };
        let (inside, entries, stop) =
            (Arc::clone(&inside), Arc::clone(&entries), Arc::clone(&stop));
        threads.push(std::thread::spawn(move || {
            let m = InterProcessMutex::new(coord, "/chaos/lock").unwrap();
            while !stop.load(Ordering::SeqCst) {
                match m.try_acquire(Duration::from_millis(300)) {
                    Ok(true) => {}
                    Ok(false) | Err(_) => continue,
                }
                if m.is_held_safely() {
                    assert!(
                        !inside.swap(true, Ordering::SeqCst),
                        "two safe holders at once"
                    );
                    entries.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(2));
                    inside.store(false, Ordering::SeqCst);
                }
                let _ = m.release();
            }
        }));
    }
    let progress = |n: u32| {
        let end = Instant::now() + Duration::from_secs(20);
        let target = entries.load(Ordering::SeqCst) + n;
        while entries.load(Ordering::SeqCst) < target && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        entries.load(Ordering::SeqCst) >= target
    };
    assert!(progress(10), "no progress before the crash");
    cluster.crash(doomed);
    assert!(progress(10), "no progress with the node down");
    cluster.restart(doomed).unwrap();
    assert!(progress(10), "no progress after the restart");
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
}
