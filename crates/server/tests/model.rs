//! Same semantics as the embedded API: random operation sequences give the same
//! results through a `RemoteClient` (TCP, in-process server) as through an embedded
//! `Client` on an independent single-node cluster (the model).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use datatree::{CreateMode, Stat};
use ensemble::{Client, Cluster, Error, Request, Response};
use ensemble_server::cli::ask_admin;
use ensemble_server::{RemoteClient, RemoteOptions, RunningServer, ServerConfig};
use proptest::prelude::*;

struct World {
    _server: RunningServer,
    _cluster: Cluster,
    remote: RemoteClient,
    local: Client,
    _dir: tempfile::TempDir,
}

fn world() -> World {
    {
        let dir = tempfile::tempdir().unwrap();
        let (p, c, a) = common::ports();
        let text = format!(
            "server_id = 1\nserver.1 = 127.0.0.1:{p}\ndata_dir = {}\nclient_port = {c}\n\
             client_address = 127.0.0.1\nadmin_port = {a}\ntick_ms = 20\nfsync = never\n\
             session_max_ms = 60000\n",
            dir.path().display()
        );
        let server = RunningServer::start(&ServerConfig::parse(&text).unwrap()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while ask_admin(server.admin_addr().unwrap(), "ruok").map_or(true, |t| t.trim() != "imok") {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(20));
        }
        let remote = RemoteClient::connect(
            &[server.client_addr().unwrap()],
            RemoteOptions {
                session_timeout_ms: 60_000,
                ..RemoteOptions::default()
            },
        )
        .unwrap();
        let cluster = Cluster::builder(1)
            .tick_ms(20)
            .session_timeout_ms(40, 60_000)
            .start()
            .unwrap();
        cluster.wait_for_leader(Duration::from_secs(20)).unwrap();
        let local = cluster.client(1).unwrap();
        World {
            _server: server,
            _cluster: cluster,
            remote,
            local,
            _dir: dir,
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Create(usize, u8, CreateMode),
    Delete(usize, i32),
    Set(usize, u8, i32),
    Get(usize),
    Exists(usize),
    Ls(usize),
    Sync,
}

const PATHS: [&str; 5] = ["/a", "/b", "/a/x", "/a/y", "/b/z"];

fn op() -> impl Strategy<Value = Op> {
    let mode = prop_oneof![
        Just(CreateMode::Persistent),
        Just(CreateMode::Ephemeral),
        Just(CreateMode::PersistentSequential),
    ];
    prop_oneof![
        (0..5usize, any::<u8>(), mode).prop_map(|(p, d, m)| Op::Create(p, d, m)),
        (0..5usize, -1..2i32).prop_map(|(p, v)| Op::Delete(p, v)),
        (0..5usize, any::<u8>(), -1..2i32).prop_map(|(p, d, v)| Op::Set(p, d, v)),
        (0..5usize).prop_map(Op::Get),
        (0..5usize).prop_map(Op::Exists),
        (0..5usize).prop_map(Op::Ls),
        Just(Op::Sync),
    ]
}

fn request(root: &str, op: &Op) -> Request {
    let path = |i: usize| format!("{root}{}", PATHS[i]);
    match op {
        Op::Create(p, d, mode) => Request::Create {
            path: path(*p),
            data: vec![*d].into(),
            acl: datatree::Acl::open_unsafe(),
            mode: *mode,
            ttl_ms: 0,
        },
        Op::Delete(p, v) => Request::Delete {
            path: path(*p),
            version: *v,
        },
        Op::Set(p, d, v) => Request::SetData {
            path: path(*p),
            data: vec![*d].into(),
            version: *v,
        },
        Op::Get(p) => Request::GetData {
            path: path(*p),
            watch: false,
        },
        Op::Exists(p) => Request::Exists {
            path: path(*p),
            watch: false,
        },
        Op::Ls(p) => Request::GetChildren {
            path: path(*p),
            watch: false,
        },
        Op::Sync => Request::Sync { path: root.into() },
    }
}

/// What must agree: shapes, data, versions and counts (not zxids, times, owners).
fn norm_stat(s: &Stat) -> (i32, i32, i32, i32, bool) {
    (
        s.version,
        s.cversion,
        s.data_length,
        s.num_children,
        s.ephemeral_owner != 0,
    )
}

fn norm(r: Result<Response, Error>) -> String {
    match r {
        Err(e) => format!("error {}", e.code()),
        Ok(Response::Created { path, stat }) => {
            let name = path.rsplit('/').next().unwrap_or("").to_string();
            format!("created {name} {:?}", norm_stat(&stat))
        }
        Ok(Response::Stat(s)) => format!("stat {:?}", norm_stat(&s)),
        Ok(Response::Exists(s)) => format!("exists {:?}", s.as_ref().map(norm_stat)),
        Ok(Response::Data(d, s)) => format!("data {d:?} {:?}", norm_stat(&s)),
        Ok(Response::Children(c, s)) => format!("children {c:?} {:?}", norm_stat(&s)),
        Ok(Response::Synced { .. }) => "synced".into(),
        Ok(other) => format!("{other:?}"),
    }
}

#[test]
fn remote_and_embedded_clients_agree() {
    let w = world();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 24,
        ..ProptestConfig::default()
    });
    let case = std::sync::atomic::AtomicU64::new(0);
    runner
        .run(&proptest::collection::vec(op(), 1..40), |ops| {
            let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let root = format!("/case{n}");
            let mk = Request::Create {
                path: root.clone(),
                data: Vec::new().into(),
                acl: datatree::Acl::open_unsafe(),
                mode: CreateMode::Persistent,
                ttl_ms: 0,
            };
            prop_assert!(w.remote.call(mk.clone()).is_ok());
            prop_assert!(w.local.call(mk).wait().is_ok());
            for op in &ops {
                let req = request(&root, op);
                let remote = norm(w.remote.call(req.clone()));
                let local = norm(w.local.call(req).wait());
                prop_assert_eq!(remote, local, "op {:?}", op);
            }
            Ok(())
        })
        .unwrap();
}
