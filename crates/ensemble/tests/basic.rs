#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Single node and three nodes through the public API.

mod common;

use std::time::Duration;

use ensemble::{
    Acl, Client, ClientOptions, Cluster, CreateMode, Error, Event, EventType, Node, NodeConfig,
    SessionEvent,
};

const T: Duration = Duration::from_secs(10);

fn next_watch(c: &Client) -> ensemble::WatchedEvent {
    loop {
        match c.events().recv_timeout(T).expect("event") {
            Event::Watch(w) => return w,
            _ => continue,
        }
    }
}

#[test]
fn single_node_create_get_set_and_watch() {
    let node = Node::start(
        NodeConfig::builder(1).tick_ms(5).build().unwrap(),
        std::sync::Arc::new(transport::mem::MemNetwork::new(1).endpoint(transport::NodeId(1))),
    )
    .unwrap();
    let c = node.client().unwrap();
    assert_eq!(
        c.create("/a", &b"1"[..], &Acl::open_unsafe(), CreateMode::Persistent)
            .unwrap(),
        "/a"
    );
    let (d, s) = c.get_data("/a", true).unwrap();
    assert_eq!((&d[..], s.version), (&b"1"[..], 0));
    c.set_data("/a", &b"2"[..], 0).unwrap();
    let w = next_watch(&c);
    assert_eq!((w.event_type, &*w.path), (EventType::NodeDataChanged, "/a"));
    let (stat, zxid) = c.set_data_async("/a", &b"2b"[..], 1).wait_with_zxid();
    assert_eq!(
        stat.unwrap().mzxid,
        zxid,
        "a write's reply carries its own zxid"
    );
    assert!(c.last_zxid_seen() >= zxid);
    let e = c.set_data("/a", &b"3"[..], 0).unwrap_err();
    assert_eq!(e.code(), -103);
    c.close().unwrap();
    assert!(matches!(
        c.get_data("/a", false),
        Err(Error::SessionExpired)
    ));
}

#[test]
fn three_nodes_every_node_serves_writes_and_reads() {
    let cluster = common::cluster(3).start().unwrap();
    cluster.wait_for_leader(T).unwrap();
    let clients: Vec<Client> = cluster
        .ids()
        .iter()
        .map(|i| cluster.client(*i).unwrap())
        .collect();
    for (i, c) in clients.iter().enumerate() {
        c.create(
            &format!("/n{i}"),
            &b"x"[..],
            &Acl::open_unsafe(),
            CreateMode::Persistent,
        )
        .unwrap();
    }
    for c in &clients {
        c.sync("/").unwrap();
        let mut kids = c.get_children("/", false).unwrap();
        kids.sort();
        assert_eq!(kids, vec!["n0", "n1", "n2", "zookeeper"]);
    }
    cluster.wait_converged(T).unwrap();
}

#[test]
fn connect_opts_negotiate_timeouts() {
    let cluster = Cluster::builder(1).start().unwrap();
    cluster.wait_for_leader(T).unwrap();
    let c = cluster
        .client_with(
            1,
            ClientOptions {
                session_timeout_ms: 1,
                ..ClientOptions::default()
            },
        )
        .unwrap();
    assert_eq!(c.session_timeout_ms(), 40, "clamped to the 4-tick minimum");
    assert!(matches!(
        c.events().recv_timeout(T).unwrap(),
        Event::Session(SessionEvent::Connected)
    ));
}

#[test]
fn requests_over_the_size_limit_are_refused() {
    let node = Node::start(
        NodeConfig::builder(1)
            .tick_ms(5)
            .request_max_bytes(1000)
            .build()
            .unwrap(),
        std::sync::Arc::new(transport::mem::MemNetwork::new(2).endpoint(transport::NodeId(1))),
    )
    .unwrap();
    let c = node.client().unwrap();
    let e = c
        .create(
            "/big",
            vec![0u8; 2000],
            &Acl::open_unsafe(),
            CreateMode::Persistent,
        )
        .unwrap_err();
    assert_eq!(e.code(), -8);
    c.create(
        "/small",
        vec![0u8; 500],
        &Acl::open_unsafe(),
        CreateMode::Persistent,
    )
    .unwrap();
    let stats = node.stats().unwrap();
    assert_eq!(stats.server.role, zab_core::Role::Leading);
    assert!(stats.requests >= 3);
}
