#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every operation and its errors, through every node of a 3-node cluster (so through
//! the leader and through learners that forward).

mod common;

use std::time::Duration;

use bytes::Bytes;
use ensemble::ops::{ReadOp, ReadResult};
use ensemble::{
    Acl, AddWatchMode, Client, CreateMode, Error, Event, EventType, OpResult, WatcherType, WriteOp,
};

const T: Duration = Duration::from_secs(10);

fn code<T: std::fmt::Debug>(r: Result<T, Error>) -> i32 {
    r.unwrap_err().code()
}

fn watch_events(c: &Client, n: usize) -> Vec<(EventType, String)> {
    let mut out = Vec::new();
    while out.len() < n {
        match c.events().recv_timeout(T).expect("event") {
            Event::Watch(w) => out.push((w.event_type, w.path.to_string())),
            _ => continue,
        }
    }
    out
}

fn exercise(c: &Client, base: &str) {
    let open = Acl::open_unsafe();
    let p = |s: &str| format!("{base}{s}");
    // create: all modes
    assert_eq!(
        c.create(base, &b""[..], &open, CreateMode::Persistent)
            .unwrap(),
        base
    );
    assert_eq!(
        code(c.create(base, &b""[..], &open, CreateMode::Persistent)),
        -110
    );
    assert_eq!(
        code(c.create(&p("/x/y"), &b""[..], &open, CreateMode::Persistent)),
        -101
    );
    assert_eq!(
        code(c.create("bad", &b""[..], &open, CreateMode::Persistent)),
        -8
    );
    let s1 = c
        .create(&p("/s-"), &b""[..], &open, CreateMode::PersistentSequential)
        .unwrap();
    assert_eq!(s1, p("/s-0000000000"));
    let e = c
        .create(&p("/e"), &b"eph"[..], &open, CreateMode::Ephemeral)
        .unwrap();
    assert_eq!(
        code(c.create(&p("/e/child"), &b""[..], &open, CreateMode::Persistent)),
        -108
    );
    let es = c
        .create(&p("/es-"), &b""[..], &open, CreateMode::EphemeralSequential)
        .unwrap();
    assert_eq!(es, p("/es-0000000002"));
    c.create(&p("/cont"), &b""[..], &open, CreateMode::Container)
        .unwrap();
    let (ttl, st) = c
        .create_with_stat(
            &p("/ttl"),
            &b"t"[..],
            &open,
            CreateMode::PersistentWithTtl,
            60_000,
        )
        .unwrap();
    assert_eq!((ttl.as_str(), st.ephemeral_owner), (p("/ttl").as_str(), 0));
    assert_eq!(
        code(c.create_with_stat(
            &p("/ttl2"),
            &b""[..],
            &open,
            CreateMode::PersistentWithTtl,
            0
        )),
        -8
    );
    c.create_with_stat(
        &p("/ttls-"),
        &b""[..],
        &open,
        CreateMode::PersistentSequentialWithTtl,
        1000,
    )
    .unwrap();
    // exists / getData / setData / versions
    let st = c.exists(&e, false).unwrap().unwrap();
    assert_eq!(st.ephemeral_owner, c.session_id().0);
    assert_eq!(c.exists(&p("/none"), false).unwrap(), None);
    let (d, st) = c.get_data(&e, false).unwrap();
    assert_eq!((&d[..], st.version, st.data_length), (&b"eph"[..], 0, 3));
    assert_eq!(code(c.get_data(&p("/none"), false)), -101);
    let st2 = c.set_data(&e, Bytes::from_static(b"v2"), 0).unwrap();
    assert_eq!(st2.version, 1);
    assert_eq!(code(c.set_data(&e, &b"v3"[..], 0)), -103);
    assert_eq!(code(c.set_data(&p("/none"), &b""[..], 7)), -101);
    // children
    let (mut kids, st) = c.get_children_with_stat(base, false).unwrap();
    kids.sort();
    assert_eq!(kids.len(), 6);
    assert_eq!(st.num_children, 6);
    assert_eq!(code(c.get_children(&p("/none"), false)), -101);
    assert_eq!(c.get_all_children_number(base).unwrap(), 6);
    let mut eph = c.get_ephemerals(base).unwrap();
    eph.sort();
    assert_eq!(eph, vec![e.clone(), es.clone()]);
    // ACLs
    let (acl, st) = c.get_acl(base).unwrap();
    assert_eq!((acl, st.aversion), (open.clone(), 0));
    assert_eq!(code(c.set_acl(base, &open, 5)), -103);
    c.create(&p("/acl"), &b""[..], &open, CreateMode::Persistent)
        .unwrap();
    let st = c.set_acl(&p("/acl"), &Acl::read_unsafe(), 0).unwrap();
    assert_eq!(st.aversion, 1);
    assert_eq!(
        code(c.create(&p("/acl/denied"), &b""[..], &open, CreateMode::Persistent)),
        -102
    );
    assert_eq!(code(c.set_acl(&p("/acl"), &open, 1)), -102);
    assert_eq!(code(c.set_data(&p("/acl"), &b""[..], -1)), -102);
    // delete
    assert_eq!(code(c.delete(base, -1)), -111);
    assert_eq!(code(c.delete(&p("/none"), 3)), -101);
    assert_eq!(code(c.delete(&s1, 5)), -103);
    c.delete(&s1, 0).unwrap();
    // multi: success and failure results
    let r = c
        .multi(vec![
            WriteOp::Create {
                path: p("/m"),
                data: Bytes::new(),
                acl: open.clone(),
                mode: CreateMode::PersistentSequential,
                ttl_ms: 0,
            },
            WriteOp::Check {
                path: base.to_string(),
                version: -1,
            },
            WriteOp::SetData {
                path: e.clone(),
                data: Bytes::from_static(b"m"),
                version: 1,
            },
        ])
        .unwrap();
    assert!(matches!(&r[0], OpResult::Created { path, .. } if path.starts_with(&p("/m"))));
    assert_eq!(r[1], OpResult::Checked);
    let err = c
        .multi(vec![
            WriteOp::Delete {
                path: e.clone(),
                version: -1,
            },
            WriteOp::Check {
                path: p("/none"),
                version: -1,
            },
            WriteOp::Delete {
                path: es.clone(),
                version: -1,
            },
        ])
        .unwrap_err();
    match err {
        Error::MultiFailed(rs) => {
            assert_eq!(rs[0], OpResult::Ok);
            assert!(matches!(&rs[1], OpResult::Error(e) if e.code() == -101));
            assert!(matches!(&rs[2], OpResult::Error(e) if e.code() == -2));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        c.exists(&e, false).unwrap().is_some(),
        "failed multi applied nothing"
    );
    // multiRead
    let rs = c
        .multi_read(vec![
            ReadOp::GetData { path: e.clone() },
            ReadOp::GetChildren { path: p("/none") },
        ])
        .unwrap();
    assert!(matches!(&rs[0], Ok(ReadResult::Data(d, _)) if &d[..] == b"m"));
    assert_eq!(rs[1].as_ref().unwrap_err().code(), -101);
    // sync on a missing path succeeds
    c.sync(&p("/none")).unwrap();
    // watches: one-shot, persistent, recursive, removal
    assert_eq!(c.exists(&p("/w"), true).unwrap(), None);
    c.create(&p("/w"), &b""[..], &open, CreateMode::Persistent)
        .unwrap();
    assert_eq!(watch_events(c, 1), vec![(EventType::NodeCreated, p("/w"))]);
    c.get_children(&p("/w"), true).unwrap();
    c.get_data(&p("/w"), true).unwrap();
    c.create(&p("/w/k"), &b""[..], &open, CreateMode::Persistent)
        .unwrap();
    assert_eq!(
        watch_events(c, 1),
        vec![(EventType::NodeChildrenChanged, p("/w"))]
    );
    c.add_watch(&p("/w"), AddWatchMode::PersistentRecursive)
        .unwrap();
    c.set_data(&p("/w/k"), &b"1"[..], -1).unwrap();
    c.set_data(&p("/w/k"), &b"2"[..], -1).unwrap();
    assert_eq!(
        watch_events(c, 2),
        vec![
            (EventType::NodeDataChanged, p("/w/k")),
            (EventType::NodeDataChanged, p("/w/k"))
        ]
    );
    c.remove_watches(&p("/w"), WatcherType::PersistentRecursive)
        .unwrap();
    assert_eq!(
        code(c.remove_watches(&p("/w"), WatcherType::PersistentRecursive)),
        -121
    );
    c.remove_watches(&p("/w"), WatcherType::Data).unwrap();
    c.add_watch(&p("/w"), AddWatchMode::Persistent).unwrap();
    c.delete(&p("/w/k"), -1).unwrap();
    c.delete(&p("/w"), -1).unwrap();
    assert_eq!(
        watch_events(c, 2),
        vec![
            (EventType::NodeChildrenChanged, p("/w")),
            (EventType::NodeDeleted, p("/w"))
        ]
    );
}

#[test]
fn every_operation_and_error_through_every_node() {
    let cluster = common::cluster(3).start().unwrap();
    cluster.wait_for_leader(T).unwrap();
    for id in cluster.ids() {
        let c = cluster.client(id).unwrap();
        assert_eq!(c.node_id(), id);
        exercise(&c, &format!("/node{id}"));
        let eph = c.get_ephemerals("/").unwrap();
        c.close().unwrap();
        let other = cluster.client(id % 3 + 1).unwrap();
        other.sync("/").unwrap();
        for p in eph {
            assert_eq!(
                other.exists(&p, false).unwrap(),
                None,
                "ephemeral {p} gone after close"
            );
        }
    }
    cluster.wait_converged(T).unwrap();
}

#[test]
fn futures_and_blocking_calls_share_one_fifo() {
    let cluster = common::cluster(3).start().unwrap();
    let leader = cluster.wait_for_leader(T).unwrap();
    let follower = cluster.ids().into_iter().find(|i| *i != leader).unwrap();
    let c = cluster.client(follower).unwrap();
    let open = Acl::open_unsafe();
    let calls: Vec<_> = (0..200)
        .map(|i| c.create_async(&format!("/p{i}"), &b""[..], &open, CreateMode::Persistent))
        .collect();
    let read = c.get_children_async("/", false);
    let results = futures::executor::block_on(futures::future::join_all(calls));
    assert!(results.iter().all(|r| r.is_ok()));
    assert_eq!(
        read.wait().unwrap().0.len(),
        201,
        "a read after pipelined writes sees them all"
    );
}

#[test]
fn leader_deletes_used_empty_containers_and_expired_ttl_nodes() {
    let cluster = common::cluster(3).start().unwrap();
    let leader = cluster.wait_for_leader(T).unwrap();
    let follower = cluster.ids().into_iter().find(|i| *i != leader).unwrap();
    let c = cluster.client(follower).unwrap();
    let open = Acl::open_unsafe();
    c.create("/never-used", &b""[..], &open, CreateMode::Container)
        .unwrap();
    c.create("/box", &b""[..], &open, CreateMode::Container)
        .unwrap();
    c.create("/box/item", &b""[..], &open, CreateMode::Persistent)
        .unwrap();
    c.create_with_stat("/short", &b""[..], &open, CreateMode::PersistentWithTtl, 30)
        .unwrap();
    c.exists("/box", true).unwrap();
    c.delete("/box/item", -1).unwrap();
    let deadline = std::time::Instant::now() + T;
    while c.exists("/box", false).unwrap().is_some() || c.exists("/short", false).unwrap().is_some()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "housekeeping never ran"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        c.exists("/never-used", false).unwrap().is_some(),
        "an unused container stays"
    );
    let evs = watch_events(&c, 1);
    assert_eq!(evs, vec![(EventType::NodeDeleted, "/box".to_string())]);
    cluster.wait_converged(T).unwrap();
}
