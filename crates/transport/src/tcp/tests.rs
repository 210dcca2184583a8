#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use super::frame::{encode_frame, encode_hello, FrameDecoder, FrameKind};
use super::*;

const A: NodeId = NodeId(1);
const B: NodeId = NodeId(2);
const C: NodeId = NodeId(3);

/// Liveness guard, not a speed assertion: fail instead of hanging.
const PATIENCE: Duration = Duration::from_secs(15);

fn fast(c: &mut TcpConfig) {
    c.backoff_min_ms = 5;
    c.backoff_max_ms = 100;
    c.connect_timeout_ms = 1_000;
    c.handshake_timeout_ms = 1_000;
}

/// Waits for the first event matching `pred`, returning it.
fn wait_for(t: &TcpTransport, pred: impl Fn(&TransportEvent) -> bool) -> TransportEvent {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = t.events().recv_timeout(left).expect("event did not arrive");
        if pred(&e) {
            return e;
        }
    }
}

fn wait_frame(t: &TcpTransport) -> (NodeId, Bytes) {
    match wait_for(t, |e| matches!(e, TransportEvent::Frame { .. })) {
        TransportEvent::Frame { from, payload } => (from, payload),
        _ => unreachable!(),
    }
}

#[test]
fn three_nodes_connect_and_exchange_frames() {
    let nodes = start_local_cluster(&[A, B, C], fast).unwrap();
    for (i, n) in nodes.iter().enumerate() {
        for (j, m) in nodes.iter().enumerate() {
            if i != j {
                n.send(m.local_id(), Bytes::from(format!("{i}->{j}")))
                    .unwrap();
            }
        }
    }
    for (j, m) in nodes.iter().enumerate() {
        let mut got: Vec<String> = (0..2)
            .map(|_| {
                let (from, p) = wait_frame(m);
                let s = String::from_utf8(p.to_vec()).unwrap();
                assert_eq!(s, format!("{}->{j}", from.0 - 1));
                s
            })
            .collect();
        got.sort();
        assert_eq!(got.len(), 2);
    }
    assert!(nodes[0].is_connected(B) && nodes[2].is_connected(A));
    for n in &nodes {
        n.shutdown();
    }
}

#[test]
fn send_errors_are_typed() {
    let nodes = start_local_cluster(&[A, B], |c| {
        fast(c);
        c.max_payload_bytes = 10;
    })
    .unwrap();
    let a = &nodes[0];
    assert_eq!(a.send(C, Bytes::new()), Err(SendError::UnknownPeer(C)));
    assert_eq!(a.send(A, Bytes::new()), Err(SendError::ToSelf(A)));
    assert_eq!(
        a.send(B, Bytes::from(vec![0; 11])),
        Err(SendError::FrameTooLarge {
            len_bytes: 11,
            max_bytes: 10
        })
    );
    a.shutdown();
    a.shutdown();
    assert_eq!(a.send(B, Bytes::new()), Err(SendError::Shutdown));
}

#[test]
fn queue_full_when_peer_unreachable() {
    // Peer 2's address is a port nobody listens on any more.
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let peers = BTreeMap::from([(A, "127.0.0.1:0".parse().unwrap()), (B, dead)]);
    let mut config = TcpConfig::new(A, peers);
    fast(&mut config);
    config.peer_queue_max = 2;
    let a = TcpTransport::start(config).unwrap();
    // The link thread (lower id: poking) never takes frames off without a connection.
    a.send(B, Bytes::from_static(b"1")).unwrap();
    a.send(B, Bytes::from_static(b"2")).unwrap();
    assert_eq!(
        a.send(B, Bytes::from_static(b"3")),
        Err(SendError::QueueFull { to: B })
    );
    a.shutdown();
}

/// A raw socket impersonating peer 2 (higher id) towards node 1.
fn impersonate(a: &TcpTransport) -> (TcpStream, FrameDecoder) {
    let mut s = TcpStream::connect(a.local_addr()).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(&encode_hello(B, A)).unwrap();
    let mut d = FrameDecoder::new(1024);
    let mut buf = [0u8; 64];
    let hello = loop {
        if let Some(f) = d.next_frame().unwrap() {
            break f;
        }
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed during handshake");
        d.feed(&buf[..n]);
    };
    assert_eq!(hello.kind, FrameKind::Hello);
    assert_eq!((hello.sender, hello.hello_target()), (A, Ok(B)));
    (s, d)
}

/// Reads until the transport closes the socket.
fn assert_closed(mut s: TcpStream) {
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => continue,
        }
    }
}

fn lone_node_with_fake_peer() -> TcpTransport {
    // Node 1 knows a peer 2 at a dead address; tests play peer 2 by hand.
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let peers = BTreeMap::from([(B, dead)]);
    let mut config = TcpConfig::new(A, peers);
    config.listen_addr = Some("127.0.0.1:0".parse().unwrap());
    config.max_payload_bytes = 1024;
    fast(&mut config);
    TcpTransport::start(config).unwrap()
}

#[test]
fn unknown_or_misaddressed_hello_is_rejected() {
    let a = lone_node_with_fake_peer();
    let mut s = TcpStream::connect(a.local_addr()).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(&encode_hello(NodeId(99), A)).unwrap();
    assert_closed(s);
    let mut s = TcpStream::connect(a.local_addr()).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(&encode_hello(B, NodeId(5))).unwrap();
    assert_closed(s);
    let mut s = TcpStream::connect(a.local_addr()).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    assert_closed(s);
    assert!(!a.is_connected(B));
    // Still serving: a proper peer gets in.
    let (s, _) = impersonate(&a);
    assert_eq!(wait_for(&a, |_| true), TransportEvent::Connected(B));
    drop(s);
    assert_eq!(wait_for(&a, |_| true), TransportEvent::Disconnected(B));
    a.shutdown();
}

#[test]
fn bad_input_after_handshake_closes_only_that_connection() {
    let a = lone_node_with_fake_peer();
    let good = encode_frame(FrameKind::Data, B, b"ok").unwrap();
    let mut corrupt = encode_frame(FrameKind::Data, B, b"payload").unwrap();
    corrupt[20] ^= 1;
    let mut oversized = Vec::from((1024u32 + 14 + 1).to_be_bytes());
    oversized.extend_from_slice(&[0; 32]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("bad crc", corrupt),
        ("oversized", oversized),
        (
            "wrong sender",
            encode_frame(FrameKind::Data, C, b"x").unwrap(),
        ),
        ("second hello", encode_hello(B, A)),
        ("truncated", good[..good.len() - 1].to_vec()),
        ("garbage", vec![0xff; 40]),
    ];
    for (name, bytes) in cases {
        let (mut s, _) = impersonate(&a);
        assert_eq!(
            wait_for(&a, |_| true),
            TransportEvent::Connected(B),
            "{name}"
        );
        s.write_all(&good).unwrap();
        assert_eq!(wait_frame(&a), (B, Bytes::from_static(b"ok")), "{name}");
        s.write_all(&bytes).unwrap();
        if name == "truncated" {
            s.shutdown(std::net::Shutdown::Write).unwrap();
        }
        assert_eq!(
            wait_for(&a, |_| true),
            TransportEvent::Disconnected(B),
            "{name}"
        );
        assert_closed(s);
    }
    a.shutdown();
}

#[test]
fn restarted_peer_reconnects_on_the_same_address() {
    let mut nodes = start_local_cluster(&[A, B], fast).unwrap();
    wait_for(&nodes[0], |e| *e == TransportEvent::Connected(B));
    let b_config = {
        let b = nodes.pop().unwrap();
        let config = b.shared.config.clone();
        b.shutdown();
        config
    };
    wait_for(&nodes[0], |e| *e == TransportEvent::Disconnected(B));
    let b = TcpTransport::start(b_config).unwrap();
    wait_for(&nodes[0], |e| *e == TransportEvent::Connected(B));
    nodes[0].send(B, Bytes::from_static(b"again")).unwrap();
    assert_eq!(wait_frame(&b), (A, Bytes::from_static(b"again")));
    b.send(A, Bytes::from_static(b"back")).unwrap();
    assert_eq!(wait_frame(&nodes[0]), (B, Bytes::from_static(b"back")));
    b.shutdown();
    nodes[0].shutdown();
}

#[test]
fn simultaneous_start_settles_on_one_connection_per_pair_without_churn() {
    let ids: Vec<NodeId> = (1..=5).map(NodeId).collect();
    let nodes = start_local_cluster(&ids, fast).unwrap();
    for n in &nodes {
        let mut missing: Vec<NodeId> = ids.iter().copied().filter(|p| *p != n.local_id()).collect();
        while !missing.is_empty() {
            match wait_for(n, |_| true) {
                TransportEvent::Connected(p) => missing.retain(|m| *m != p),
                other => panic!("{} saw {other:?} before all peers connected", n.local_id()),
            }
        }
    }
    for n in &nodes {
        n.shutdown();
    }
}

#[test]
fn lower_id_poke_makes_the_higher_id_dial_back_at_once() {
    // Node 2 dials node 1 at start and fails (nothing listens yet); its next attempt
    // would be far later than PATIENCE. Node 1 then starts and pokes node 2, which
    // must dial back at once.
    let addr_1 = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let listener_2 = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr_2 = listener_2.local_addr().unwrap();
    let peers = BTreeMap::from([(A, addr_1), (B, addr_2)]);
    let mut c2 = TcpConfig::new(B, peers.clone());
    fast(&mut c2);
    c2.backoff_min_ms = 120_000;
    c2.backoff_max_ms = 120_000;
    // B gets no second try within the test: its dial-back must not time out on a
    // loaded machine.
    c2.connect_timeout_ms = 10_000;
    c2.handshake_timeout_ms = 10_000;
    let b = TcpTransport::start_with_listener(c2, listener_2).unwrap();
    std::thread::sleep(Duration::from_millis(100)); // let the first dial fail
    let mut c1 = TcpConfig::new(A, peers);
    fast(&mut c1);
    c1.handshake_timeout_ms = 10_000;
    let a = TcpTransport::start(c1).unwrap();
    assert_eq!(wait_for(&a, |_| true), TransportEvent::Connected(B));
    a.send(B, Bytes::from_static(b"up")).unwrap();
    assert_eq!(wait_frame(&b), (A, Bytes::from_static(b"up")));
    a.shutdown();
    b.shutdown();
}

#[test]
fn large_frames_and_backpressure_lose_nothing() {
    let nodes = start_local_cluster(&[A, B], |c| {
        fast(c);
        c.inbox_max = 4;
        c.peer_queue_max = 8;
        c.max_payload_bytes = 2 << 20;
    })
    .unwrap();
    let (a, b) = (&nodes[0], &nodes[1]);
    // Big frames cross several reads; small ones ride along.
    let big = Bytes::from(
        (0..(1 << 20) + 3)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    b.send(A, big.clone()).unwrap();
    b.send(A, Bytes::from_static(b"after")).unwrap();
    assert_eq!(wait_frame(a), (B, big));
    assert_eq!(wait_frame(a), (B, Bytes::from_static(b"after")));
    // Nobody drains B's events: its reader stops, TCP fills, A's queue fills.
    let mut sent = 0u32;
    let deadline = Instant::now() + PATIENCE;
    loop {
        match a.send(B, Bytes::from(vec![7u8; 64 * 1024])) {
            Ok(()) => sent += 1,
            Err(SendError::QueueFull { to }) => {
                assert_eq!(to, B);
                break;
            }
            Err(e) => panic!("{e}"),
        }
        assert!(Instant::now() < deadline, "queue never filled");
    }
    for _ in 0..sent {
        let (from, p) = wait_frame(b);
        assert_eq!((from, p.len()), (A, 64 * 1024));
    }
    a.shutdown();
    b.shutdown();
}

#[test]
fn restarts_under_traffic_keep_every_link_in_order() {
    let mut nodes = start_local_cluster(&[A, B, C], fast).unwrap();
    let config_b = nodes[1].shared.config.clone();
    let mut seq = 0u32;
    let mut send_round = |nodes: &[TcpTransport]| {
        for _ in 0..200 {
            for n in nodes {
                for to in [A, B, C] {
                    if to != n.local_id() {
                        // Full queues and unreachable peers are fine here; order is checked.
                        let _ = n.send(to, Bytes::copy_from_slice(&seq.to_be_bytes()));
                    }
                }
            }
            seq += 1;
        }
    };
    let mut last: BTreeMap<(NodeId, NodeId), u32> = BTreeMap::new();
    let mut check = |n: &TcpTransport| {
        for e in n.events().try_iter() {
            if let TransportEvent::Frame { from, payload } = e {
                let s = u32::from_be_bytes(payload[..4].try_into().unwrap());
                if let Some(prev) = last.insert((from, n.local_id()), s) {
                    assert!(prev < s, "{from}->{}: {prev} then {s}", n.local_id());
                }
            }
        }
    };
    for _ in 0..3 {
        send_round(&nodes);
        let old = nodes.remove(1);
        check(&old);
        old.shutdown();
        send_round(&nodes);
        nodes.insert(1, TcpTransport::start(config_b.clone()).unwrap());
        wait_for(&nodes[1], |e| *e == TransportEvent::Connected(A));
        for n in &nodes {
            check(n);
        }
    }
    // After the churn, a final frame on each link still gets through.
    for n in &nodes {
        for m in &nodes {
            if n.local_id() != m.local_id() {
                n.send(
                    m.local_id(),
                    Bytes::copy_from_slice(&u32::MAX.to_be_bytes()),
                )
                .unwrap();
            }
        }
    }
    for n in &nodes {
        let mut seen = 0;
        while seen < 2 {
            let (_, p) = wait_frame(n);
            if p[..] == u32::MAX.to_be_bytes() {
                seen += 1;
            }
        }
    }
    for n in &nodes {
        n.shutdown();
    }
}

#[test]
fn handshake_rejects_a_large_announced_frame_and_trickling_peers() {
    let a = lone_node_with_fake_peer();
    // A hello-sized limit applies before the peer is known: a 1000-byte frame is
    // refused from its length field alone.
    let mut s = TcpStream::connect(a.local_addr()).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(&encode_frame(FrameKind::Hello, B, &[0; 1000]).unwrap()[..18])
        .unwrap();
    assert_closed(s);
    // A peer that sends a byte and then nothing is cut at the handshake deadline.
    let mut s = TcpStream::connect(a.local_addr()).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(&[0]).unwrap();
    assert_closed(s);
    let (s, _) = impersonate(&a);
    assert_eq!(wait_for(&a, |_| true), TransportEvent::Connected(B));
    drop(s);
    a.shutdown();
}
