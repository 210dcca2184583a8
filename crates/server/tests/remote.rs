//! The client protocol end to end against an in-process server: operations, errors,
//! watches and their order, sessions, pipelining, hostile input, the admin port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use datatree::{CreateMode, EventType, OpResult, WriteOp};
use ensemble::{AddWatchMode, Error, Event, Request, Response};
use ensemble_server::cli::ask_admin;
use ensemble_server::wire::{read_frame, ClientMsg, ServerMsg};
use ensemble_server::{RemoteClient, RemoteOptions, RunningServer, ServerConfig};

struct One {
    server: RunningServer,
    _dir: tempfile::TempDir,
}

fn one_server() -> One {
    let dir = tempfile::tempdir().unwrap();
    let (p, c, a) = common::ports();
    let text = format!(
        "server_id = 1\nserver.1 = 127.0.0.1:{p}\ndata_dir = {}\nclient_port = {c}\n\
         client_address = 127.0.0.1\nadmin_port = {a}\ntick_ms = 20\nfsync = never\n\
         session_min_ms = 100\nsession_max_ms = 60000\n",
        dir.path().display()
    );
    let cfg = ServerConfig::parse(&text).unwrap();
    let server = RunningServer::start(&cfg).unwrap();
    let admin = server.admin_addr().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while ask_admin(admin, "ruok")
        .map(|t| t.trim() != "imok")
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "server not ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    One { server, _dir: dir }
}

fn addr(o: &One) -> SocketAddr {
    o.server.client_addr().unwrap()
}

fn client(o: &One) -> RemoteClient {
    RemoteClient::connect(&[addr(o)], RemoteOptions::default()).unwrap()
}

#[test]
fn operations_and_errors() {
    let o = one_server();
    let c = client(&o);
    assert_eq!(c.create("/a", "1", CreateMode::Persistent).unwrap(), "/a");
    let seq = c
        .create("/a/s-", "", CreateMode::PersistentSequential)
        .unwrap();
    assert_eq!(seq, "/a/s-0000000000");
    let (d, st) = c.get_data("/a", false).unwrap();
    assert_eq!((&d[..], st.version), (&b"1"[..], 0));
    assert_eq!(c.set_data("/a", "2", 0).unwrap().version, 1);
    assert!(matches!(
        c.set_data("/a", "3", 0),
        Err(Error::Tree(datatree::Error::BadVersion(_)))
    ));
    assert!(matches!(
        c.create("/a", "", CreateMode::Persistent),
        Err(Error::Tree(datatree::Error::NodeExists(_)))
    ));
    assert!(matches!(
        c.get_data("/nope", false),
        Err(Error::Tree(datatree::Error::NoNode(_)))
    ));
    assert!(matches!(
        c.delete("/a", -1),
        Err(Error::Tree(datatree::Error::NotEmpty(_)))
    ));
    let (kids, parent) = c.get_children("/a", false).unwrap();
    assert_eq!(
        (kids, parent.num_children),
        (vec!["s-0000000000".to_string()], 1)
    );
    assert!(c.exists("/zz", false).unwrap().is_none());
    c.sync("/").unwrap();
    // multi: all or nothing, ZooKeeper-style results.
    let ok = c
        .multi(vec![
            WriteOp::Check {
                path: "/a".into(),
                version: 1,
            },
            WriteOp::Create {
                path: "/m".into(),
                data: "x".into(),
                acl: datatree::Acl::open_unsafe(),
                mode: CreateMode::Persistent,
                ttl_ms: 0,
            },
        ])
        .unwrap();
    assert!(matches!(
        ok[..],
        [OpResult::Checked, OpResult::Created { .. }]
    ));
    match c.multi(vec![
        WriteOp::Delete {
            path: "/m".into(),
            version: -1,
        },
        WriteOp::Delete {
            path: "/m".into(),
            version: -1,
        },
    ]) {
        Err(Error::MultiFailed(r)) => {
            assert!(
                matches!(r[1], OpResult::Error(datatree::Error::NoNode(_))),
                "{r:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(
        c.exists("/m", false).unwrap().is_some(),
        "failed multi applied nothing"
    );
    // A second connect on a live connection is refused, the session is unharmed.
    assert!(c.call(Request::Connect { timeout_ms: 1000 }).is_err());
    c.close().unwrap();
    assert_eq!(c.exists("/a", false), Err(Error::SessionExpired));
}

#[test]
fn watch_events_come_before_the_read_that_shows_the_change() {
    let o = one_server();
    let (a, b) = (client(&o), client(&o));
    a.create("/w", "0", CreateMode::Persistent).unwrap();
    a.get_data("/w", true).unwrap();
    a.add_watch("/w", AddWatchMode::PersistentRecursive)
        .unwrap();
    b.set_data("/w", "1", -1).unwrap();
    b.create("/w/k", "", CreateMode::Persistent).unwrap();
    // Pipelined read after the writes: its reply follows the events.
    let (d, _) = a.get_data("/w/k", false).unwrap();
    assert!(d.is_empty());
    let evs: Vec<Event> = a.events().try_iter().collect();
    let kinds: Vec<(EventType, String)> = evs
        .iter()
        .filter_map(|e| match e {
            Event::Watch(w) => Some((w.event_type, w.path.to_string())),
            _ => None,
        })
        .collect();
    assert!(
        kinds.contains(&(EventType::NodeDataChanged, "/w".into())),
        "{evs:?}"
    );
    assert!(
        kinds.contains(&(EventType::NodeCreated, "/w/k".into())),
        "{evs:?}"
    );
}

#[test]
fn pipelined_requests_complete_in_order() {
    let o = one_server();
    let c = client(&o);
    c.create("/p", "", CreateMode::Persistent).unwrap();
    let pending: Vec<_> = (0..200)
        .map(|i| {
            if i % 2 == 0 {
                c.submit(Request::SetData {
                    path: "/p".into(),
                    data: format!("{i}").into(),
                    version: -1,
                })
            } else {
                c.submit(Request::GetData {
                    path: "/p".into(),
                    watch: false,
                })
            }
        })
        .collect();
    for (i, rx) in pending.into_iter().enumerate() {
        match rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap() {
            Response::Stat(s) => assert_eq!(s.version as usize, i / 2 + 1),
            Response::Data(d, _) => assert_eq!(d, format!("{}", i - 1).into_bytes()),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_dropped_session_expires_and_its_ephemerals_go() {
    let o = one_server();
    let watcher = client(&o);
    let short = RemoteClient::connect(
        &[addr(&o)],
        RemoteOptions {
            // Long enough that a pause on a loaded machine between the create and
            // the watcher's read does not expire it early; short enough to expire
            // well within the wait below.
            session_timeout_ms: 1_500,
            ..RemoteOptions::default()
        },
    )
    .unwrap();
    short.create("/e", "", CreateMode::Ephemeral).unwrap();
    assert!(watcher.exists("/e", true).unwrap().is_some());
    drop(short);
    // The first watch event must be the deletion; session events may come between.
    let ev = common::next_non_session_event(watcher.events(), Duration::from_secs(20));
    assert!(
        matches!(ev, Event::Watch(ref w) if w.event_type == EventType::NodeDeleted),
        "{ev:?}"
    );
}

#[test]
fn hostile_input_closes_only_that_connection() {
    let o = one_server();
    let c = client(&o);
    // Garbage, a huge length, and a request before connect.
    let mut s = TcpStream::connect(addr(&o)).unwrap();
    s.write_all(&[0xff; 64]).unwrap();
    let mut buf = [0u8; 16];
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)));
    let mut s = TcpStream::connect(addr(&o)).unwrap();
    let f = ClientMsg::Request {
        xid: 1,
        req: Request::Exists {
            path: "/".into(),
            watch: false,
        },
    }
    .encode()
    .unwrap();
    s.write_all(&f).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let reply = ServerMsg::decode(&read_frame(&mut s).unwrap().unwrap()).unwrap();
    assert!(
        matches!(reply, ServerMsg::Reply { result: Err(_), .. }),
        "{reply:?}"
    );
    // The honest client is unaffected.
    assert!(c.exists("/", false).unwrap().is_some());
    // Bad bytes after a good handshake end that session's connection only.
    let mut s = TcpStream::connect(addr(&o)).unwrap();
    s.write_all(
        &ClientMsg::Request {
            xid: 0,
            req: Request::Connect { timeout_ms: 1000 },
        }
        .encode()
        .unwrap(),
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let r = ServerMsg::decode(&read_frame(&mut s).unwrap().unwrap()).unwrap();
    assert!(matches!(
        r,
        ServerMsg::Reply {
            result: Ok(Response::Connected { .. }),
            ..
        }
    ));
    let mut bad = ClientMsg::Ping.encode().unwrap();
    bad[5] = 99; // unknown kind, CRC still fine for the empty body
    s.write_all(&bad).unwrap();
    assert!(matches!(read_frame(&mut s), Ok(None) | Err(_)));
    assert!(c.exists("/", false).unwrap().is_some());
}

#[test]
fn admin_port_answers_words_and_http() {
    let o = one_server();
    let a = o.server.admin_addr().unwrap();
    assert_eq!(ask_admin(a, "ruok").unwrap().trim(), "imok");
    let m = ask_admin(a, "mntr").unwrap();
    assert!(m.contains("zk_server_state\tleader"), "{m}");
    let mut s = TcpStream::connect(a).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.0 200 OK"), "{text}");
    assert!(text.contains("ensemble_up 1"), "{text}");
    assert!(text.contains("ensemble_znode_count "), "{text}");
    assert!(ask_admin(a, "stat").unwrap().contains("unknown command"));
    // Nothing of this answers on the client port.
    let mut s = TcpStream::connect(addr(&o)).unwrap();
    s.write_all(b"ruok").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 8];
    assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)));
}

#[test]
fn the_cli_runs_commands_and_says_what_went_wrong() {
    let o = one_server();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ensemble-cli"))
            .args([
                "-s",
                &addr(&o).to_string(),
                "-a",
                &o.server.admin_addr().unwrap().to_string(),
            ])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, out, _) = cli(&["create", "/c", "hello world"]);
    assert!(ok && out.contains("Created /c"), "{out}");
    let (ok, out, _) = cli(&["create", "-s", "/c/q-"]);
    assert!(ok && out.contains("Created /c/q-0000000000"), "{out}");
    let (ok, out, _) = cli(&["get", "/c"]);
    assert!(
        ok && out.starts_with("hello world\n") && out.contains("dataVersion = 0"),
        "{out}"
    );
    let (ok, out, _) = cli(&["ls", "/c"]);
    assert!(ok && out.trim() == "[q-0000000000]", "{out}");
    let (ok, _, err) = cli(&["delete", "/c"]);
    assert!(!ok && err.contains("node has children"), "{err}");
    let (ok, _, err) = cli(&["get", "/missing"]);
    assert!(
        !ok && err.contains("node does not exist: /missing"),
        "{err}"
    );
    let (ok, out, _) = cli(&["ruok"]);
    assert!(ok && out.trim() == "imok", "{out}");
    // The interactive prompt reads commands from stdin.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ensemble-cli"))
        .args(["-s", &addr(&o).to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"set /c \"two words\"\nget /c\nfrobnicate\nquit\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("two words\n"), "{text}");
    assert!(
        text.contains("error: unknown command `frobnicate`"),
        "{text}"
    );
}

#[test]
fn the_server_refuses_a_bad_config_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.cfg");
    std::fs::write(
        &cfg,
        "server_id = 1\nserver.1 = 127.0.0.1:1\ndata_dir = /tmp/x\nclient_port = 2\ntick_ms = soon\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ensemble-server"))
        .arg(&cfg)
        .arg("--check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`tick_ms`"), "{err}");
}
