#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Driving servers by hand: a tiny deterministic shell with instant storage and a
//! perfect network.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use datatree::{Acl, CreateMode, EventType};
use session::{PasswordSecret, SessionConfig};
use zab_core::{Config, Persisted, ServerId};

use super::*;

pub(crate) struct Sim {
    pub servers: BTreeMap<u64, Server>,
    pub net: VecDeque<(ServerId, ServerId, Message)>,
    pub replies: Vec<(u64, ConnId, Xid, Result<Response, Error>)>,
    pub events: Vec<(u64, ConnId, WatchedEvent)>,
    pub session_events: Vec<(u64, ConnId, SessionEvent)>,
    pub down: Vec<u64>,
    now: i64,
}

fn config(id: u64, n: u64) -> ServerConfig {
    ServerConfig {
        zab: Config::majority(ServerId(id), (1..=n).map(ServerId), []).unwrap(),
        session: SessionConfig::new(id, 10),
        secret: PasswordSecret::from_seed(1),
        start_time_ms: 1_000,
        request_max_bytes: REQUEST_MAX_BYTES_DEFAULT,
        snapshot_every_txns: 0,
        housekeeping_ticks: 10,
    }
}

impl Sim {
    pub fn new(n: u64) -> Sim {
        let servers = (1..=n)
            .map(|i| {
                (
                    i,
                    Server::new(config(i, n), Persisted::default(), None).unwrap(),
                )
            })
            .collect();
        Sim {
            servers,
            net: VecDeque::new(),
            replies: Vec::new(),
            events: Vec::new(),
            session_events: Vec::new(),
            down: Vec::new(),
            now: 0,
        }
    }

    fn run_actions(&mut self, id: u64) {
        loop {
            let actions = self.servers.get_mut(&id).unwrap().drain_actions();
            if actions.is_empty() {
                return;
            }
            for a in actions {
                match a {
                    ServerAction::Send { to, msg } => self.net.push_back((ServerId(id), to, msg)),
                    ServerAction::Storage(op) => {
                        let done = match op {
                            StorageOp::Append(e) => StorageDone::Durable(e.last().unwrap().zxid),
                            StorageOp::Truncate(z) => StorageDone::Truncated(z),
                            StorageOp::InstallSnapshot { zxid, .. } => {
                                StorageDone::SnapshotInstalled(zxid)
                            }
                            StorageOp::SaveAcceptedEpoch(e) => StorageDone::AcceptedEpoch(e),
                            StorageOp::SaveCurrentEpoch(e) => StorageDone::CurrentEpoch(e),
                        };
                        self.servers.get_mut(&id).unwrap().handle_storage_done(done);
                    }
                    ServerAction::Reply {
                        conn, xid, result, ..
                    } => self.replies.push((id, conn, xid, result)),
                    ServerAction::Watch { conn, event } => self.events.push((id, conn, event)),
                    ServerAction::Session { conn, event } => {
                        self.session_events.push((id, conn, event))
                    }
                    ServerAction::SnapshotDue => {}
                    ServerAction::Diverged { reason, .. } => panic!("diverged: {reason}"),
                }
            }
        }
    }

    pub fn step(&mut self) {
        self.now += 10;
        let ids: Vec<u64> = self.servers.keys().copied().collect();
        for id in &ids {
            if self.down.contains(id) {
                continue;
            }
            self.servers.get_mut(id).unwrap().handle_tick(self.now);
            self.run_actions(*id);
        }
        self.deliver();
    }

    pub fn deliver(&mut self) {
        let mut budget = 100_000;
        while let Some((from, to, msg)) = self.net.pop_front() {
            budget -= 1;
            assert!(budget > 0, "message storm");
            if self.down.contains(&to.0) || self.down.contains(&from.0) {
                continue;
            }
            self.servers
                .get_mut(&to.0)
                .unwrap()
                .handle_message(from, msg);
            self.run_actions(to.0);
        }
    }

    pub fn run_until_serving(&mut self) {
        for _ in 0..500 {
            self.step();
            let up: Vec<&Server> = self
                .servers
                .iter()
                .filter(|(i, _)| !self.down.contains(i))
                .map(|(_, s)| s)
                .collect();
            if up.iter().all(|s| s.is_serving()) {
                return;
            }
        }
        panic!("cluster never served");
    }

    pub fn request(
        &mut self,
        id: u64,
        conn: u64,
        xid: u64,
        req: Request,
    ) -> Result<Response, Error> {
        self.send(id, conn, xid, req);
        self.wait_reply(id, conn, xid)
    }

    pub fn send(&mut self, id: u64, conn: u64, xid: u64, req: Request) {
        self.servers
            .get_mut(&id)
            .unwrap()
            .handle_client(ConnId(conn), Xid(xid), req);
        self.run_actions(id);
    }

    pub fn wait_reply(&mut self, id: u64, conn: u64, xid: u64) -> Result<Response, Error> {
        for _ in 0..100 {
            self.deliver();
            if let Some(i) = self
                .replies
                .iter()
                .position(|r| r.0 == id && r.1 == ConnId(conn) && r.2 == Xid(xid))
            {
                return self.replies.remove(i).3;
            }
            self.step();
        }
        panic!("no reply for {id}/{conn}/{xid}");
    }

    pub fn connect(&mut self, id: u64, conn: u64) -> SessionId {
        match self
            .request(id, conn, 0, Request::Connect { timeout_ms: 100 })
            .unwrap()
        {
            Response::Connected { session, .. } => session,
            other => panic!("{other:?}"),
        }
    }
}

fn create(path: &str, mode: CreateMode) -> Request {
    Request::Create {
        path: path.into(),
        data: Bytes::from_static(b"d"),
        acl: Acl::open_unsafe(),
        mode,
        ttl_ms: 0,
    }
}

#[test]
fn single_server_creates_reads_and_fires_watches() {
    let mut sim = Sim::new(1);
    sim.run_until_serving();
    sim.connect(1, 1);
    let r = sim
        .request(1, 1, 1, create("/a", CreateMode::Persistent))
        .unwrap();
    assert!(matches!(r, Response::Created { ref path, .. } if path == "/a"));
    let r = sim
        .request(
            1,
            1,
            2,
            Request::GetData {
                path: "/a".into(),
                watch: true,
            },
        )
        .unwrap();
    assert!(matches!(r, Response::Data(ref d, _) if &d[..] == b"d"));
    sim.request(
        1,
        1,
        3,
        Request::SetData {
            path: "/a".into(),
            data: Bytes::from_static(b"e"),
            version: 0,
        },
    )
    .unwrap();
    assert_eq!(sim.events.len(), 1);
    assert_eq!(sim.events[0].2.event_type, EventType::NodeDataChanged);
    let e = sim
        .request(
            1,
            1,
            4,
            Request::SetData {
                path: "/a".into(),
                data: Bytes::new(),
                version: 0,
            },
        )
        .unwrap_err();
    assert_eq!(e.code(), -103);
}

#[test]
fn pipelined_writes_and_reads_complete_in_fifo_order() {
    let mut sim = Sim::new(3);
    sim.run_until_serving();
    for id in 1..=3 {
        sim.connect(id, 10 + id);
    }
    for id in 1..=3u64 {
        let conn = 10 + id;
        let base = format!("/n{id}");
        sim.send(id, conn, 1, create(&base, CreateMode::Persistent));
        sim.send(
            id,
            conn,
            2,
            create(&format!("{base}/b"), CreateMode::Persistent),
        );
        sim.send(
            id,
            conn,
            3,
            Request::GetChildren {
                path: base.clone(),
                watch: false,
            },
        );
        sim.send(id, conn, 4, create(&base, CreateMode::Persistent));
        for _ in 0..50 {
            sim.step();
        }
        let mine: Vec<&(u64, ConnId, Xid, Result<Response, Error>)> = sim
            .replies
            .iter()
            .filter(|r| r.0 == id && r.1 == ConnId(conn))
            .collect();
        let order: Vec<u64> = mine.iter().map(|r| r.2 .0).collect();
        assert_eq!(order, vec![1, 2, 3, 4], "FIFO per connection");
        assert!(
            matches!(mine[2].3, Ok(Response::Children(ref c, _)) if c == &vec!["b".to_string()])
        );
        assert_eq!(mine[3].3.as_ref().unwrap_err().code(), -110);
    }
    let digests: Vec<u64> = sim.servers.values().map(|s| s.digest()).collect();
    assert!(digests.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn ephemerals_vanish_when_the_session_closes_on_a_learner() {
    let mut sim = Sim::new(3);
    sim.run_until_serving();
    let learner = sim
        .servers
        .values()
        .find(|s| s.status().role != Role::Leading)
        .unwrap()
        .id()
        .0;
    sim.connect(learner, 1);
    sim.request(learner, 1, 1, create("/e", CreateMode::Ephemeral))
        .unwrap();
    assert!(sim.servers.values().all(|s| s.tree().contains("/e")));
    assert_eq!(
        sim.request(learner, 1, 2, Request::Close).unwrap(),
        Response::Closed
    );
    sim.deliver();
    assert!(sim.servers.values().all(|s| !s.tree().contains("/e")));
}

#[test]
fn silent_sessions_expire_and_lose_their_ephemerals() {
    let mut sim = Sim::new(3);
    sim.run_until_serving();
    sim.connect(2, 1);
    sim.request(2, 1, 1, create("/e", CreateMode::Ephemeral))
        .unwrap();
    sim.servers
        .get_mut(&2)
        .unwrap()
        .handle_conn_closed(ConnId(1));
    for _ in 0..100 {
        sim.step();
    }
    assert!(sim.servers.values().all(|s| !s.tree().contains("/e")));
}

#[test]
fn a_node_out_of_quorum_disconnects_its_clients() {
    let mut sim = Sim::new(3);
    sim.run_until_serving();
    let leader = sim
        .servers
        .values()
        .find(|s| s.status().role == Role::Leading)
        .unwrap()
        .id()
        .0;
    let f = (1..=3).find(|i| *i != leader).unwrap();
    sim.connect(f, 1);
    sim.down.push(leader);
    for _ in 0..100 {
        sim.step();
    }
    assert!(sim
        .session_events
        .iter()
        .any(|(id, c, e)| *id == f && *c == ConnId(1) && *e == SessionEvent::Disconnected));
}
