//! A server joining an ensemble whose state is larger than one TCP frame may carry
//! (16 MiB by default) is synced by a SNAP streamed in chunks. Before the chunks, the
//! leader tried to send the whole state as one frame, the transport refused it, and
//! the new server never joined.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ensemble::{Acl, CreateMode, WriteOp};
use ensemble_server::{RunningServer, ServerConfig};

fn free_ports(n: usize) -> Vec<u16> {
    // Hold every listener until all ports are chosen, so none repeats.
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    ls.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

#[test]
fn a_new_server_joins_by_a_snap_larger_than_a_frame() {
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(6);
    let config = |i: usize| {
        let mut text = format!("server_id = {}\n", i + 1);
        for (j, peer) in ports[..3].iter().enumerate() {
            text.push_str(&format!("server.{} = 127.0.0.1:{peer}\n", j + 1));
        }
        // Roomy limits: this test is about the transfer, not failure detection.
        text.push_str(&format!(
            "data_dir = {}\nclient_port = {}\nclient_address = 127.0.0.1\n\
             tick_ms = 20\ninit_limit = 100\nsync_limit = 50\nfsync = never\n",
            dir.path().join(format!("data{}", i + 1)).display(),
            ports[3 + i],
        ));
        ServerConfig::parse(&text).unwrap()
    };
    let s1 = RunningServer::start(&config(0)).unwrap();
    let s2 = RunningServer::start(&config(1)).unwrap();
    let nodes = [s1.node().unwrap(), s2.node().unwrap()];
    let client = ensemble::Client::connect(&nodes, ensemble::ClientOptions::default()).unwrap();
    // ~90k znodes of 200 bytes: a state of ~24 MB.
    let value = Bytes::from(vec![3u8; 200]);
    let create = |path: String, data: Bytes| {
        WriteOp::create(path, data, Acl::open_unsafe(), CreateMode::Persistent)
    };
    for b in 0..180 {
        let mut ops = vec![create(format!("/p{b}"), Bytes::new())];
        ops.extend((0..500).map(|i| create(format!("/p{b}/n{i}"), value.clone())));
        client.multi(ops).unwrap();
    }
    let target = client.sync("/").map(|_| ()).and_then(|_| {
        nodes[0]
            .stats(Duration::from_secs(5))
            .map(|s| s.server.applied_zxid)
            .ok_or(ensemble::Error::ConnectionLoss)
    });
    let target = target.unwrap();
    let s3 = RunningServer::start(&config(2)).unwrap();
    let joined = s3.node().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = joined.stats(Duration::from_secs(5));
        if s.as_ref()
            .is_some_and(|s| s.server.serving && s.server.applied_zxid >= target)
        {
            let s = s.unwrap();
            assert!(s.server.znode_count > 90_000, "{}", s.server.znode_count);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server 3 never joined: {:?}",
            s.map(|s| (s.server.role, s.server.phase, s.server.applied_zxid))
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Nothing was written since: every replica is at `target` with one digest.
    let joined = joined.stats(Duration::from_secs(5)).unwrap().server;
    let other = nodes[0].stats(Duration::from_secs(5)).unwrap().server;
    assert_eq!(
        (joined.applied_zxid, joined.digest),
        (other.applied_zxid, other.digest)
    );
    drop((client, s3, s2, s1));
}
