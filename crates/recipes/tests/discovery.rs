//! Membership, service discovery and the tree cache on a 3-node cluster.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use bytes::Bytes;
use ensemble::{Acl, CreateMode};
use parking_lot::Mutex;
use recipes::{
    group_members, CacheEvent, GroupMember, ServiceDiscovery, ServiceInstance, TreeCache,
};

#[test]
fn members_come_and_go_with_their_sessions() {
    let mut cluster = common::cluster();
    let doomed = common::follower(&cluster);
    let watcher = common::coord(&cluster, common::leader(&cluster));
    let a = GroupMember::join(common::coord(&cluster, 1), "/group", "a", &b"A"[..]).unwrap();
    let pinned = common::pinned(&cluster, doomed);
    let _b = GroupMember::join(Arc::clone(&pinned), "/group", "b", &b"B"[..]).unwrap();
    let m = group_members(&watcher, "/group").unwrap();
    assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "b"]);
    a.update(&b"A2"[..]).unwrap();
    a.leave().unwrap();
    // b's node dies with its session when its only node crashes.
    cluster.crash(doomed);
    assert!(common::eventually(common::WAIT, || {
        group_members(&watcher, "/group").is_ok_and(|m| m.is_empty())
    }));
    // When its node is back, b's coordinator opens a new session and b re-registers.
    cluster.restart(doomed).unwrap();
    assert!(common::eventually(common::WAIT, || {
        group_members(&watcher, "/group").is_ok_and(|m| m.contains_key("b"))
    }));
}

#[test]
fn discovery_finds_and_follows_instances() {
    let cluster = common::cluster();
    let reg = ServiceDiscovery::new(common::coord(&cluster, 1), "/services").unwrap();
    let client = ServiceDiscovery::new(common::coord(&cluster, 2), "/services").unwrap();
    let cache = client.service_cache("api").unwrap();
    assert!(cache.wait_initialized(common::WAIT));
    assert!(cache.instances().is_empty());
    let inst = |id: &str, port| ServiceInstance {
        name: "api".into(),
        id: id.into(),
        address: "10.0.0.1".into(),
        port,
        payload: Bytes::from_static(b"v1"),
    };
    reg.register(&inst("i1", 8080)).unwrap();
    reg.register(&inst("i2", 8081)).unwrap();
    // Reads through another node may lag the registrations a little.
    assert!(common::eventually(common::WAIT, || {
        client.query_for_names().unwrap() == ["api"]
            && client.query_for_instances("api").unwrap()
                == vec![inst("i1", 8080), inst("i2", 8081)]
    }));
    assert!(common::eventually(common::WAIT, || cache.instances().len() == 2));
    reg.unregister("api", "i1").unwrap();
    assert!(common::eventually(common::WAIT, || {
        cache.instances() == vec![inst("i2", 8081)]
    }));
}

#[test]
fn tree_cache_mirrors_the_subtree() {
    let cluster = common::cluster();
    let writer = common::coord(&cluster, 1);
    let w = writer.client();
    let open = Acl::open_unsafe();
    w.create("/conf", Bytes::new(), &open, CreateMode::Persistent)
        .unwrap();
    w.create("/conf/a", &b"1"[..], &open, CreateMode::Persistent)
        .unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let e2 = Arc::clone(&events);
    let cache = TreeCache::start_with_listener(common::coord(&cluster, 2), "/conf", move |e| {
        e2.lock().push(e.clone());
    })
    .unwrap();
    assert!(cache.wait_initialized(common::WAIT));
    assert_eq!(&cache.get("/conf/a").unwrap().data[..], b"1");
    w.set_data("/conf/a", &b"2"[..], -1).unwrap();
    w.create("/conf/b", &b"x"[..], &open, CreateMode::Persistent)
        .unwrap();
    w.create("/conf/b/c", &b"y"[..], &open, CreateMode::Persistent)
        .unwrap();
    assert!(common::eventually(common::WAIT, || {
        cache.get("/conf/b/c").is_some_and(|n| &n.data[..] == b"y")
    }));
    w.delete("/conf/b/c", -1).unwrap();
    w.delete("/conf/b", -1).unwrap();
    assert!(common::eventually(common::WAIT, || cache
        .get("/conf/b")
        .is_none()));
    assert_eq!(cache.children("/conf"), ["a"]);
    assert_eq!(&cache.get("/conf/a").unwrap().data[..], b"2");
    let ev = events.lock().clone();
    let expected = vec![
        CacheEvent::Created {
            path: "/conf".into(),
            data: Bytes::new(),
        },
        CacheEvent::Created {
            path: "/conf/a".into(),
            data: Bytes::from_static(b"1"),
        },
        CacheEvent::Initialized,
        CacheEvent::Changed {
            path: "/conf/a".into(),
            data: Bytes::from_static(b"2"),
        },
        CacheEvent::Created {
            path: "/conf/b".into(),
            data: Bytes::from_static(b"x"),
        },
        CacheEvent::Created {
            path: "/conf/b/c".into(),
            data: Bytes::from_static(b"y"),
        },
        CacheEvent::Deleted {
            path: "/conf/b/c".into(),
        },
        CacheEvent::Deleted {
            path: "/conf/b".into(),
        },
    ];
    assert_eq!(ev, expected);
}

#[test]
fn tree_cache_catches_up_after_its_node_crashes() {
    let mut cluster = common::cluster();
    let x = common::follower(&cluster);
    let leader = common::leader(&cluster);
    let writer = common::coord(&cluster, leader);
    let w = writer.client();
    let open = Acl::open_unsafe();
    w.create("/live", Bytes::new(), &open, CreateMode::Persistent)
        .unwrap();
    w.create("/live/k", &b"1"[..], &open, CreateMode::Persistent)
        .unwrap();
    let coord = common::coord(&cluster, x);
    let cache = TreeCache::start(Arc::clone(&coord), "/live").unwrap();
    assert!(cache.wait_initialized(common::WAIT));
    cluster.crash(x);
    // Changes made while the cache's session moves to another node.
    w.set_data("/live/k", &b"2"[..], -1).unwrap();
    w.create("/live/new", &b"n"[..], &open, CreateMode::Persistent)
        .unwrap();
    assert!(common::eventually(common::WAIT, || {
        cache.get("/live/k").is_some_and(|n| &n.data[..] == b"2")
            && cache.get("/live/new").is_some()
    }));
    // And the recursive watch works again on the new node.
    w.delete("/live/new", -1).unwrap();
    assert!(common::eventually(common::WAIT, || cache
        .get("/live/new")
        .is_none()));
    w.set_data("/live/k", &b"3"[..], -1).unwrap();
    assert!(common::eventually(common::WAIT, || {
        cache.get("/live/k").is_some_and(|n| &n.data[..] == b"3")
    }));
}
