//! Three `ensemble-server` processes on 127.0.0.1: a remote client writes a stream,
//! the leader is SIGKILLed mid-stream, every acknowledged write must be on the
//! survivors, the killed server restarts and catches up. Every process started here
//! is stopped here, by its PID (a guard kills them even if the test fails).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datatree::CreateMode;
use ensemble::{Error, Event, SessionEvent};
use ensemble_server::cli::ask_admin;
use ensemble_server::{RemoteClient, RemoteOptions};

struct Server {
    id: u64,
    cfg: PathBuf,
    log: PathBuf,
    client: SocketAddr,
    admin: SocketAddr,
    child: Option<Child>,
}

impl Server {
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_ensemble-server"))
            .arg(&self.cfg)
            .arg("--stdin-stop")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn sigkill(&mut self) {
        let mut c = self.child.take().unwrap();
        c.kill().unwrap(); // SIGKILL on Unix
        c.wait().unwrap();
    }

    /// Clean stop through stdin; SIGKILL by PID if it does not exit in time.
    fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        if let Some(mut stdin) = c.stdin.take() {
            let _ = stdin.write_all(b"stop\n");
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
        panic!("server {} did not stop cleanly", self.id);
    }

    fn mntr(&self, key: &str) -> Option<String> {
        let text = ask_admin(self.admin, "mntr").ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("zk_{key}\t")).map(str::to_string))
    }

    fn ready(&self) -> bool {
        ask_admin(self.admin, "ruok").is_ok_and(|t| t.trim() == "imok")
    }
}

struct Ensemble {
    servers: Vec<Server>,
    _dir: tempfile::TempDir,
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for s in &mut self.servers {
            if let Some(mut c) = s.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

fn free_ports(n: usize) -> Vec<u16> {
    // Hold every listener until all ports are chosen, so none repeats.
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    ls.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

fn ensemble() -> Ensemble {
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(9);
    let peer = |i: usize| ports[i];
    let client = |i: usize| ports[3 + i];
    let admin = |i: usize| ports[6 + i];
    let mut servers = Vec::new();
    for i in 0..3 {
        let id = i as u64 + 1;
        let mut text = format!("server_id = {id}\n");
        for j in 0..3 {
            text.push_str(&format!(
                "server.{} = 127.0.0.1:{};127.0.0.1:{}\n",
                j + 1,
                peer(j),
                client(j)
            ));
        }
        text.push_str(&format!(
            "data_dir = {}\nclient_port = {}\nclient_address = 127.0.0.1\nadmin_port = {}\n\
             tick_ms = 50\ninit_limit = 20\nsync_limit = 10\nsession_max_ms = 30000\nfsync = always\n\
             snapshot_every_txns = 300\n",
            dir.path().join(format!("data{id}")).display(),
            client(i),
            admin(i),
        ));
        let cfg = dir.path().join(format!("server{id}.cfg"));
        std::fs::write(&cfg, text).unwrap();
        servers.push(Server {
            id,
            cfg,
            log: dir.path().join(format!("server{id}.log")),
            client: format!("127.0.0.1:{}", client(i)).parse().unwrap(),
            admin: format!("127.0.0.1:{}", admin(i)).parse().unwrap(),
            child: None,
        });
    }
    Ensemble { servers, _dir: dir }
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

fn leader(servers: &[Server], skip: Option<usize>) -> Option<usize> {
    (0..servers.len())
        .filter(|i| Some(*i) != skip)
        .find(|i| servers[*i].mntr("server_state").as_deref() == Some("leader"))
}

fn dump_logs(servers: &[Server]) {
    for s in servers {
        let text = std::fs::read_to_string(&s.log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        eprintln!("--- server {} log (last lines, newest first)", s.id);
        for l in tail {
            eprintln!("{l}");
        }
    }
}

/// Every acknowledged name must be a child of /stream on the server at `addr`.
fn check_present(addr: SocketAddr, acked: &BTreeSet<String>) {
    let c = RemoteClient::connect(
        &[addr],
        RemoteOptions {
            connect_timeout: Duration::from_secs(20),
            ..RemoteOptions::default()
        },
    )
    .unwrap();
    c.sync("/stream").unwrap();
    let (children, _) = c.get_children("/stream", false).unwrap();
    let have: BTreeSet<String> = children.into_iter().collect();
    let missing: Vec<&String> = acked.difference(&have).collect();
    assert!(
        missing.is_empty(),
        "{addr} lost acknowledged writes: {missing:?}"
    );
    c.close().unwrap();
}

#[test]
fn leader_sigkill_loses_no_acknowledged_write_and_the_server_catches_up() {
    let mut ens = ensemble();
    for s in &mut ens.servers {
        s.start();
    }
    let servers = &mut ens.servers;
    let up = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_until("three ready servers", Duration::from_secs(60), || {
            servers.iter().all(Server::ready)
        });
    }));
    if up.is_err() {
        dump_logs(servers);
        panic!("servers did not come up");
    }
    let mut lead = None;
    wait_until("a leader", Duration::from_secs(30), || {
        lead = leader(servers, None);
        lead.is_some()
    });
    let mut lead = lead.unwrap();

    // The writer's session starts on the leader, so killing it forces a re-attach.
    // On a loaded machine a spurious election can move the leadership between finding
    // the leader and connecting (the client then falls through to the next server):
    // retry, bounded, until the session is on the server that leads.
    let attach_deadline = Instant::now() + Duration::from_secs(30);
    let writer = loop {
        let first = servers[lead].client;
        let mut addrs = vec![first];
        addrs.extend(
            servers
                .iter()
                .filter(|s| s.client != first)
                .map(|s| s.client),
        );
        let w = RemoteClient::connect(
            &addrs,
            RemoteOptions {
                session_timeout_ms: 15_000,
                ..RemoteOptions::default()
            },
        )
        .unwrap();
        if w.server_addr() == first && leader(servers, None) == Some(lead) {
            break w;
        }
        assert!(
            Instant::now() < attach_deadline,
            "the writer never attached to the leading server"
        );
        let _ = w.close();
        std::thread::sleep(Duration::from_millis(100));
        if let Some(l) = leader(servers, None) {
            lead = l;
        }
    };
    assert_eq!(writer.server_addr(), servers[lead].client);
    let session = writer.session_id();
    writer
        .create("/stream", "", CreateMode::Persistent)
        .unwrap();
    writer.create("/owned", "", CreateMode::Ephemeral).unwrap();
    // A watch set on the leader must follow the session to its next server.
    assert!(writer.exists("/after", true).unwrap().is_none());

    // A watcher on a follower sees the stream's first write.
    let follower = (0..3).find(|i| *i != lead).unwrap();
    let watcher =
        RemoteClient::connect(&[servers[follower].client], RemoteOptions::default()).unwrap();
    assert!(watcher.exists("/stream/w0", true).unwrap().is_none());

    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let writer = Arc::new(writer);
    let w2 = Arc::clone(&writer);
    let stream = std::thread::spawn(move || {
        let mut acked = BTreeSet::new();
        let mut losses = 0u32;
        let mut last_ack = Instant::now();
        let mut max_gap = Duration::ZERO;
        let mut i = 0u64;
        while !stop2.load(Ordering::Acquire) {
            let name = format!("w{i}");
            i += 1;
            match w2.create(&format!("/stream/{name}"), "x", CreateMode::Persistent) {
                Ok(_) => {
                    acked.insert(name);
                    max_gap = max_gap.max(last_ack.elapsed());
                    last_ack = Instant::now();
                }
                // Unknown outcome: not acknowledged, never retried under this name.
                Err(Error::ConnectionLoss | Error::OperationTimeout) => {
                    losses += 1;
                    w2.wait_connected(Duration::from_secs(20));
                }
                Err(e) => panic!("write {name} failed: {e}"),
            }
        }
        (acked, losses, max_gap)
    });

    // The first watch event (session events may come before it) is the first write.
    let ev = common::next_non_session_event(watcher.events(), Duration::from_secs(20));
    assert!(
        matches!(ev, Event::Watch(ref w) if &*w.path == "/stream/w0"),
        "{ev:?}"
    );

    // Let the stream run, then SIGKILL the leader in the middle of it.
    let applied = |s: &Server| s.mntr("applied_txns").and_then(|v| v.parse::<u64>().ok());
    wait_until("a running stream", Duration::from_secs(60), || {
        applied(&servers[lead]).unwrap_or(0) > 150
    });
    // On a loaded machine a spurious election may have moved the leadership: kill
    // whoever leads now.
    let lead = leader(servers, None).unwrap_or(lead);
    // Normally the writer is attached to it; after such an election it may not be,
    // and then its session need not move.
    let writer_moves = writer.server_addr() == servers[lead].client;
    servers[lead].sigkill();
    let mut new_lead = None;
    wait_until("a new leader", Duration::from_secs(60), || {
        new_lead = leader(servers, Some(lead));
        new_lead.is_some()
    });
    let new_lead = new_lead.unwrap();
    // More writes after the failover, through the re-attached session.
    let base = applied(&servers[new_lead]).unwrap_or(0);
    wait_until("writes after the failover", Duration::from_secs(60), || {
        applied(&servers[new_lead]).unwrap_or(0) > base + 100
    });
    stop.store(true, Ordering::Release);
    let (acked, losses, max_gap) = stream.join().unwrap();
    assert!(
        acked.len() > 100,
        "only {} writes acknowledged",
        acked.len()
    );
    assert_eq!(
        writer.session_id(),
        session,
        "the session survived the failover"
    );
    // The re-attach may still be under way when the stream stops.
    wait_until("the writer connected", Duration::from_secs(20), || {
        writer.is_connected()
    });
    assert_ne!(writer.server_addr(), servers[lead].client);
    assert!(
        writer.exists("/owned", false).unwrap().is_some(),
        "the re-attached session still owns its ephemeral"
    );
    watcher
        .create("/after", "", CreateMode::Persistent)
        .unwrap();
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match writer.events().recv_timeout(Duration::from_millis(100)) {
            Ok(e) => {
                let done = matches!(&e, Event::Watch(w) if &*w.path == "/after");
                events.push(e);
                if done {
                    break;
                }
            }
            Err(_) => continue,
        }
    }
    if writer_moves {
        assert!(
            events.contains(&Event::Session(SessionEvent::Disconnected))
                && events.contains(&Event::Session(SessionEvent::Connected)),
            "the session moved: {events:?}"
        );
    }
    assert!(
        !events.contains(&Event::Session(SessionEvent::Expired)),
        "{events:?}"
    );
    assert!(
        matches!(events.last(), Some(Event::Watch(w)) if &*w.path == "/after"),
        "the watch followed the session: {events:?}"
    );
    eprintln!(
        "acknowledged {} writes, {} with unknown outcome, longest pause between \
         acknowledgements {} ms (the failover), leader {} killed, new leader {}",
        acked.len(),
        losses,
        max_gap.as_millis(),
        servers[lead].id,
        servers[new_lead].id
    );

    for i in (0..3).filter(|i| *i != lead) {
        check_present(servers[i].client, &acked);
    }

    // The killed server restarts from its data directory and catches up.
    servers[lead].start();
    wait_until("the restarted server", Duration::from_secs(60), || {
        servers[lead].ready()
    });
    check_present(servers[lead].client, &acked);
    let zxid = |s: &Server| s.mntr("last_zxid");
    wait_until("equal zxids", Duration::from_secs(30), || {
        let z: Vec<_> = servers.iter().map(zxid).collect();
        z[0].is_some() && z.iter().all(|x| *x == z[0])
    });

    writer.close().unwrap();
    watcher.close().unwrap();
    for s in servers.iter_mut() {
        s.stop();
    }
}
