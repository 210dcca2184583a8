//! Queues, barriers and counters on a 3-node cluster with contending clients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use recipes::{
    DistributedBarrier, DistributedDoubleBarrier, DistributedQueue, PriorityQueue, SharedCount,
    SharedValue,
};

fn num(b: &[u8]) -> u32 {
    std::str::from_utf8(b).unwrap().parse().unwrap()
}

#[test]
fn queue_items_leave_in_order_exactly_once() {
    let cluster = common::cluster();
    let producer = DistributedQueue::new(common::coord(&cluster, 1), "/q").unwrap();
    let total = 40u32;
    for i in 0..total {
        producer.put(i.to_string().into_bytes()).unwrap();
    }
    let mut threads = Vec::new();
    for c in 0..4u64 {
        let q = DistributedQueue::new(common::coord(&cluster, 1 + c % 3), "/q").unwrap();
        threads.push(std::thread::spawn(move || {
            let mut got = Vec::new();
            loop {
                match q.take(Some(Duration::from_millis(300))).unwrap() {
                    Some(item) => got.push(num(&item)),
                    // A take can time out waiting for the consumer lock behind the
                    // others on a busy machine: stop only once the queue is empty.
                    None if q.is_empty().unwrap() => break,
                    None => {}
                }
            }
            got
        }));
    }
    let mut all = BTreeSet::new();
    for t in threads {
        let got = t.join().unwrap();
        // Each consumer sees items in the order they were put.
        assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
        for g in got {
            assert!(all.insert(g), "item {g} taken twice");
        }
    }
    assert_eq!(all, (0..total).collect::<BTreeSet<_>>());
    assert!(common::eventually(common::WAIT, || {
        producer.is_empty().unwrap()
    }));
}

#[test]
fn waiting_consumers_are_served_in_arrival_order() {
    let cluster = common::cluster();
    let producer = DistributedQueue::new(common::coord(&cluster, 1), "/fair").unwrap();
    let served = Arc::new(Mutex::new(Vec::new()));
    let mut threads = Vec::new();
    for c in 0..3u32 {
        let q =
            DistributedQueue::new(common::coord(&cluster, 1 + u64::from(c) % 3), "/fair").unwrap();
        let served = Arc::clone(&served);
        threads.push(std::thread::spawn(move || {
            let item = q.take(Some(Duration::from_secs(20))).unwrap().unwrap();
            served.lock().push((c, num(&item)));
        }));
        // Let this consumer queue up before the next one arrives.
        assert!(common::eventually(common::WAIT, || {
            producer.waiting_consumers().unwrap() == c as usize + 1
        }));
    }
    for i in 0..3u32 {
        producer.put(i.to_string().into_bytes()).unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    let mut s = served.lock().clone();
    s.sort();
    // The first consumer to arrive got the first item, and so on.
    assert_eq!(s, vec![(0, 0), (1, 1), (2, 2)]);
}

#[test]
fn priority_queue_serves_lowest_priority_first_then_fifo() {
    let cluster = common::cluster();
    let q = PriorityQueue::new(common::coord(&cluster, 2), "/pq").unwrap();
    for (data, prio) in [("c", 5), ("a", -3), ("d", 5), ("b", 0), ("e", i32::MAX)] {
        q.put(data.as_bytes().to_vec(), prio).unwrap();
    }
    let mut out = String::new();
    while let Some(item) = q.take(Some(Duration::from_millis(50))).unwrap() {
        out.push_str(std::str::from_utf8(&item).unwrap());
    }
    assert_eq!(out, "abcde");
}

#[test]
fn barrier_holds_waiters_until_removed() {
    let cluster = common::cluster();
    let b = DistributedBarrier::new(common::coord(&cluster, 1), "/gate").unwrap();
    b.set_barrier().unwrap();
    let mut threads = Vec::new();
    for i in 0..3u64 {
        let w = DistributedBarrier::new(common::coord(&cluster, 1 + i), "/gate").unwrap();
        threads.push(std::thread::spawn(move || {
            w.wait_on_barrier(Some(Duration::from_secs(20)))
        }));
    }
    let probe = DistributedBarrier::new(common::coord(&cluster, 2), "/gate").unwrap();
    assert!(!probe
        .wait_on_barrier(Some(Duration::from_millis(100)))
        .unwrap());
    b.remove_barrier().unwrap();
    for t in threads {
        assert!(t.join().unwrap().unwrap());
    }
}

#[test]
fn double_barrier_enters_and_leaves_together() {
    let cluster = common::cluster();
    let n = 4usize;
    let entered = Arc::new(Mutex::new(0usize));
    let left_early = Arc::new(Mutex::new(0usize));
    let mut threads = Vec::new();
    for i in 0..n {
        let coord = common::coord(&cluster, 1 + (i % 3) as u64);
        let (entered2, left_early) = (Arc::clone(&entered), Arc::clone(&left_early));
        threads.push(std::thread::spawn(move || {
            let entered = entered2;
            let b = DistributedDoubleBarrier::new(coord, "/db", n, &format!("m{i}")).unwrap();
            assert!(b.enter(Some(Duration::from_secs(20))).unwrap());
            // Nobody gets past enter before everyone has arrived.
            *entered.lock() += 1;
            std::thread::sleep(Duration::from_millis(5 * i as u64));
            assert!(b.leave(Some(Duration::from_secs(20))).unwrap());
            if *entered.lock() != n {
                *left_early.lock() += 1;
            }
        }));
        std::thread::sleep(Duration::from_millis(20));
        if i + 1 < n {
            assert_eq!(*entered.lock(), 0, "entered before all members arrived");
        }
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(*left_early.lock(), 0);
}

#[test]
fn shared_count_adds_atomically_under_contention() {
    let cluster = common::cluster();
    let mut threads = Vec::new();
    for i in 0..4u64 {
        let coord = common::coord(&cluster, 1 + i % 3);
        threads.push(std::thread::spawn(move || {
            let c = SharedCount::new(coord, "/counters/c", 0).unwrap();
            for _ in 0..10 {
                c.add(1).unwrap();
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    let coord = common::coord(&cluster, 3);
    // A sync makes this session's next read see every write committed before it.
    coord.client().sync("/counters/c").unwrap();
    let c = SharedCount::new(coord, "/counters/c", 0).unwrap();
    assert_eq!(c.count().unwrap().value, 40);
}

#[test]
fn shared_value_compare_and_set_and_wait_for_change() {
    let cluster = common::cluster();
    let a = SharedValue::new(common::coord(&cluster, 1), "/cfg/v", &b"one"[..]).unwrap();
    let b = SharedValue::new(common::coord(&cluster, 2), "/cfg/v", &b"ignored"[..]).unwrap();
    let seen = b.value().unwrap();
    assert_eq!(&seen.value[..], b"one");
    let waiter =
        std::thread::spawn(move || b.wait_change(seen.version, Some(Duration::from_secs(20))));
    assert!(a.try_set(&b"two"[..], seen.version).unwrap());
    // A stale version loses.
    assert!(!a.try_set(&b"three"[..], seen.version).unwrap());
    let changed = waiter.join().unwrap().unwrap().unwrap();
    assert_eq!(&changed.value[..], b"two");
}

#[test]
fn an_item_wakes_one_consumer_not_all() {
    let cluster = common::cluster();
    let producer = DistributedQueue::new(common::coord(&cluster, 1), "/herd").unwrap();
    let coords: Vec<_> = (0..5u64)
        .map(|i| common::coord(&cluster, 1 + i % 3))
        .collect();
    let mut threads = Vec::new();
    for (i, c) in coords.iter().enumerate() {
        let q = DistributedQueue::new(Arc::clone(c), "/herd").unwrap();
        threads.push(std::thread::spawn(move || {
            q.take(Some(Duration::from_secs(20)))
                .unwrap()
                .map(|d| num(&d))
        }));
        assert!(common::eventually(common::WAIT, || {
            producer.waiting_consumers().unwrap() == i + 1
        }));
    }
    let before: u64 = coords.iter().map(|c| c.delivered_notices()).sum();
    assert_eq!(before, 0);
    producer.put(b"7".to_vec()).unwrap();
    let first = threads.remove(0).join().unwrap();
    assert_eq!(first, Some(7));
    // Let any herd show up before counting.
    std::thread::sleep(Duration::from_millis(200));
    let after: u64 = coords.iter().map(|c| c.delivered_notices()).sum();
    // One event woke the head consumer (the item), one woke the next in line (the
    // head left the consumer queue): independent of how many wait.
    assert!(after <= 2, "{after} notices for one item");
    for i in 0..threads.len() {
        producer.put(format!("{i}").into_bytes()).unwrap();
    }
    for t in threads {
        assert!(t.join().unwrap().is_some());
    }
}

#[test]
fn double_barrier_enter_times_out_and_withdraws() {
    let cluster = common::cluster();
    let coord = common::coord(&cluster, 1);
    let b = DistributedDoubleBarrier::new(Arc::clone(&coord), "/db2", 3, "lonely").unwrap();
    assert!(!b.enter(Some(Duration::from_millis(150))).unwrap());
    // Its member node is gone again, so it does not count for a later round.
    assert!(coord
        .client()
        .get_children("/db2", false)
        .unwrap()
        .is_empty());
    assert!(DistributedDoubleBarrier::new(coord, "/db2", 0, "x").is_err());
}
