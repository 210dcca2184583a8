//! Leader election on a 3-node cluster: one leader at a time as the candidates see
//! it, handover when the leader's session expires because its node crashed or was
//! partitioned away, selector terms and re-queueing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use recipes::{ConnectionState, LeaderLatch, LeaderSelector};

/// Records what every candidate believes and fails on two believed leaders.
#[derive(Default)]
struct Beliefs {
    leaders: Mutex<BTreeSet<String>>,
    violations: AtomicU32,
    changes: Mutex<Vec<(String, bool)>>,
}

impl Beliefs {
    fn watch(self: &Arc<Self>, latch: &LeaderLatch) {
        let me = latch.id().to_string();
        let b = Arc::clone(self);
        latch.add_listener(move |lead| {
            let mut l = b.leaders.lock();
            if lead {
                if !l.is_empty() {
                    b.violations.fetch_add(1, Ordering::SeqCst);
                }
                l.insert(me.clone());
            } else {
                l.remove(&me);
            }
            b.changes.lock().push((me.clone(), lead));
        });
    }
}

fn handover(kill: fn(&mut ensemble::Cluster, u64)) {
    let mut cluster = common::cluster();
    let doomed_node = common::follower(&cluster);
    let others: Vec<u64> = cluster
        .running()
        .into_iter()
        .filter(|i| *i != doomed_node)
        .collect();
    let beliefs = Arc::new(Beliefs::default());
    // The first candidate can only use the node that will fail, so its session
    // expires; the others may move between the surviving nodes.
    let a_coord = common::pinned(&cluster, doomed_node);
    let suspended = Arc::new(AtomicU32::new(0));
    {
        let s = Arc::clone(&suspended);
        a_coord.add_state_listener(move |st| {
            if st == ConnectionState::Suspended {
                s.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    let a = LeaderLatch::start(Arc::clone(&a_coord), "/election", "a").unwrap();
    beliefs.watch(&a);
    assert!(a.await_leadership(Some(common::WAIT)));
    let b = LeaderLatch::start(common::coord(&cluster, others[0]), "/election", "b").unwrap();
    beliefs.watch(&b);
    let c = LeaderLatch::start(common::coord(&cluster, others[1]), "/election", "c").unwrap();
    beliefs.watch(&c);
    assert!(common::eventually(common::WAIT, || {
        a.participants().map(|p| p.len() == 3).unwrap_or(false)
    }));
    assert_eq!(b.leader().unwrap().unwrap().id, "a");
    assert!(!b.has_leadership() && !c.has_leadership());
    // b and c join concurrently: the queue order is whatever their creates committed.
    let order: Vec<String> = a
        .participants()
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(order[0], "a");
    let (next, last) = if order[1] == "b" { (&b, &c) } else { (&c, &b) };

    kill(&mut cluster, doomed_node);
    // The leader is told at once that it may no longer lead...
    assert!(common::eventually(common::WAIT, || !a.has_leadership()));
    // (Listeners run just after the state changes.)
    assert!(common::eventually(common::WAIT, || suspended
        .load(Ordering::SeqCst)
        >= 1));
    // ...and the next candidate in line takes over once the session expired.
    assert!(
        next.await_leadership(Some(common::WAIT)),
        "{} never led (order {order:?})",
        next.id()
    );
    assert!(!last.has_leadership());
    assert_eq!(
        beliefs.violations.load(Ordering::SeqCst),
        0,
        "{:?}",
        beliefs.changes.lock()
    );
    // The next one was woken by a's node going, at most once (none if it looked only
    // after the node had gone, e.g. after a connection hiccup); the last was never
    // woken (it watches the next one): no herd.
    assert!(next.wakeups() <= 1, "next woken {} times", next.wakeups());
    assert_eq!(last.wakeups(), 0);
    // The last reads through its own node, which may lag the next one's view a moment.
    let next_id = next.id().to_string();
    assert!(common::eventually(common::WAIT, || {
        last.leader()
            .is_ok_and(|l| l.is_some_and(|p| p.id == next_id))
    }));

    // Once its node is back, the old leader's coordinator opens a new session and
    // its latch queues again behind the others.
    cluster.heal_all();
    let _ = cluster.restart(doomed_node);
    let expected = [order[1].as_str(), order[2].as_str(), "a"];
    let requeued = common::eventually(common::WAIT, || {
        last.participants()
            .map(|p| p.iter().map(|x| x.id.as_str()).collect::<Vec<_>>() == expected)
            .unwrap_or(false)
    });
    assert!(
        requeued,
        "{:?} / a's coordinator {:?} / stats {:?}",
        last.participants(),
        a_coord.state(),
        cluster.digests()
    );
    next.close();
    assert!(last.await_leadership(Some(common::WAIT)));
    assert_eq!(beliefs.violations.load(Ordering::SeqCst), 0);
}

#[test]
fn leadership_moves_when_the_leaders_node_crashes() {
    handover(|c, id| c.crash(id));
}

#[test]
fn leadership_moves_when_the_leaders_node_is_partitioned_away() {
    handover(|c, id| c.partition(id));
}

#[test]
fn leadership_moves_when_the_leader_closes() {
    let cluster = common::cluster();
    let latches: Vec<LeaderLatch> = (0..5u64)
        .map(|i| {
            let l =
                LeaderLatch::start(common::coord(&cluster, 1 + i % 3), "/el2", &format!("n{i}"))
                    .unwrap();
            // Join in a known order.
            assert!(common::eventually(common::WAIT, || l.node().is_some()));
            l
        })
        .collect();
    for (i, l) in latches.iter().enumerate() {
        assert!(l.await_leadership(Some(common::WAIT)), "n{i} never led");
        for (j, other) in latches.iter().enumerate() {
            if j != i {
                assert!(!other.has_leadership() || j < i);
            }
        }
        l.close();
        assert!(!l.has_leadership());
    }
    // Each later candidate was woken at most once: when its predecessor left (not
    // at all if it only set its watch after the predecessor had gone, which depends
    // on scheduling). A herd would wake each of them once per close before it.
    let woken: Vec<u32> = latches[1..].iter().map(LeaderLatch::wakeups).collect();
    assert!(woken.iter().all(|w| *w <= 1), "wakeups {woken:?}");
    assert!(
        woken.iter().sum::<u32>() >= 1,
        "nobody was woken by a watch: {woken:?}"
    );
}

#[test]
fn selector_runs_one_term_at_a_time_and_requeues() {
    let cluster = common::cluster();
    let running = Arc::new(AtomicU32::new(0));
    let overlaps = Arc::new(AtomicU32::new(0));
    let terms = Arc::new(AtomicU32::new(0));
    let selectors: Vec<LeaderSelector> = (0..3u64)
        .map(|i| {
            let (running, overlaps, terms) = (
                Arc::clone(&running),
                Arc::clone(&overlaps),
                Arc::clone(&terms),
            );
            LeaderSelector::start(
                common::coord(&cluster, 1 + i),
                "/selector",
                &format!("s{i}"),
                true,
                move |ctx| {
                    if running.fetch_add(1, Ordering::SeqCst) != 0 {
                        overlaps.fetch_add(1, Ordering::SeqCst);
                    }
                    terms.fetch_add(1, Ordering::SeqCst);
                    ctx.sleep(Duration::from_millis(10));
                    running.fetch_sub(1, Ordering::SeqCst);
                },
            )
            .unwrap()
        })
        .collect();
    assert!(common::eventually(common::WAIT, || {
        selectors.iter().all(|s| s.terms() >= 2)
    }));
    let p = selectors[0].participants().unwrap();
    assert!(p.len() <= 3 && p.iter().filter(|x| x.is_leader).count() <= 1);
    for s in &selectors {
        s.close();
    }
    assert_eq!(overlaps.load(Ordering::SeqCst), 0);
    assert!(terms.load(Ordering::SeqCst) >= 6);
}

#[test]
fn selector_without_auto_requeue_leads_once_until_requeued() {
    let cluster = common::cluster();
    let terms = Arc::new(AtomicU32::new(0));
    let t2 = Arc::clone(&terms);
    let s = LeaderSelector::start(
        common::coord(&cluster, 1),
        "/sel1",
        "only",
        false,
        move |_| {
            t2.fetch_add(1, Ordering::SeqCst);
        },
    )
    .unwrap();
    assert!(common::eventually(common::WAIT, || !s.is_queued()));
    assert_eq!(terms.load(Ordering::SeqCst), 1);
    s.requeue().unwrap();
    assert!(common::eventually(common::WAIT, || {
        terms.load(Ordering::SeqCst) == 2 && !s.is_queued()
    }));
    s.close();
    assert!(s.requeue().is_err());
}

#[test]
fn a_leader_whose_session_moves_steps_down_then_resumes() {
    let mut cluster = common::cluster();
    let x = common::follower(&cluster);
    let beliefs = Arc::new(Beliefs::default());
    // The leader may move to another node: its session (and node) survive.
    let a = LeaderLatch::start(common::coord(&cluster, x), "/el3", "a").unwrap();
    beliefs.watch(&a);
    assert!(a.await_leadership(Some(common::WAIT)));
    let other = common::leader(&cluster);
    let b = LeaderLatch::start(common::coord(&cluster, other), "/el3", "b").unwrap();
    beliefs.watch(&b);
    assert!(common::eventually(common::WAIT, || {
        b.participants().map(|p| p.len() == 2).unwrap_or(false)
    }));
    cluster.crash(x);
    // Told at once that it may not lead, then leading again once re-attached.
    assert!(common::eventually(common::WAIT, || {
        beliefs.changes.lock().contains(&("a".to_string(), false))
    }));
    assert!(a.await_leadership(Some(common::WAIT)));
    assert!(!b.has_leadership());
    assert_eq!(b.wakeups(), 0, "b was never woken: a's node never went");
    assert_eq!(beliefs.violations.load(Ordering::SeqCst), 0);
}
