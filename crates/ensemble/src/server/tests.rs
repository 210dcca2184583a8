#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Driving servers by hand: a tiny deterministic shell with instant storage and a
//! perfect network.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use datatree::{Acl, CreateMode, EventType};
use session::{PasswordSecret, SessionConfig};
use zab_core::{Config, Persisted, ServerId};

use super::*;
use crate::error::Error;
use crate::ops::{Response, SessionEvent};

pub(crate) struct Sim {
    pub servers: BTreeMap<u64, Server>,
    pub net: VecDeque<(ServerId, ServerId, Message)>,
    pub replies: Vec<(u64, ConnId, Xid, Result<Response, Error>)>,
    pub events: Vec<(u64, ConnId, WatchedEvent)>,
    pub session_events: Vec<(u64, ConnId, SessionEvent)>,
    pub down: Vec<u64>,
    pub diverged: Vec<(u64, String)>,
    /// SNAP chunks delivered (a SNAP written over several steps).
    pub snap_chunks: usize,
    now: i64,
}

fn config(id: u64, n: u64) -> ServerConfig {
    let mut zab = Config::majority(ServerId(id), (1..=n).map(ServerId), []).unwrap();
    // ZooKeeper's window of 500 txns, so that a few hundred writes push a learner
    // past it (the default window is bounded by bytes).
    zab.commit_log_max = 500;
    ServerConfig {
        zab,
        session: SessionConfig::new(id, 10),
        secret: PasswordSecret::from_seed(1),
        start_time_ms: 1_000,
        request_max_bytes: REQUEST_MAX_BYTES_DEFAULT,
        snapshot_every_txns: 0,
        housekeeping_ticks: 10,
        super_digest: None,
        sync_step_nodes: SYNC_STEP_NODES,
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
            diverged: Vec::new(),
            snap_chunks: 0,
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
                            // This harness keeps no log (`diff_from_log` is off).
                            StorageOp::ReadLog(op) => StorageDone::LogRead {
                                token: op.token,
                                entries: None,
                            },
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
                    ServerAction::SnapshotChunk { .. }
                    | ServerAction::SnapshotReady { .. }
                    | ServerAction::SnapshotAbort { .. } => {}
                    ServerAction::Diverged { reason, .. } => self.diverged.push((id, reason)),
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
            if matches!(msg, Message::SnapChunk { .. }) {
                self.snap_chunks += 1;
            }
            self.servers
                .get_mut(&to.0)
                .unwrap()
                .handle_message(from, msg);
            self.run_actions(to.0);
        }
    }

    /// The id of the server that leads (panics if none does: call after
    /// [`Sim::run_until_serving`]).
    pub fn leader(&self) -> u64 {
        self.servers
            .values()
            .find(|s| s.status().role == Role::Leading)
            .expect("a leader")
            .id()
            .0
    }

    /// The id of some server that does not lead.
    pub fn follower(&self) -> u64 {
        let leader = self.leader();
        *self
            .servers
            .keys()
            .find(|i| **i != leader)
            .expect("a follower")
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
    let learner = sim.follower();
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

/// A follower behind the leader's window gets a SNAP written over several ticks
/// (more znodes than one step) while writes go on: it ends with the leader's exact
/// tree, including the writes made while its SNAP was being written, and the leader
/// never stopped leading.
#[test]
fn a_snap_written_over_several_steps_brings_a_learner_up_to_date() {
    let mut sim = Sim::new(3);
    sim.run_until_serving();
    let leader = sim.leader();
    let f = sim.follower();
    sim.connect(leader, 1);
    sim.down.push(f);
    let mut xid = 1;
    let mut write = |sim: &mut Sim, req: Request| {
        xid += 1;
        sim.request(leader, 1, xid, req).unwrap();
    };
    // ~3 steps' worth of znodes, then more single writes than the leader keeps
    // (`commit_log_max`, 500): the follower can only be synced by SNAP.
    for b in 0..3 {
        let ops = (0..SYNC_STEP_NODES)
            .map(|i| {
                datatree::WriteOp::create(
                    format!("/b{b}-{i}"),
                    Bytes::from_static(b"v"),
                    Acl::open_unsafe(),
                    CreateMode::Persistent,
                )
            })
            .collect();
        write(&mut sim, Request::Multi(ops));
    }
    for i in 0..600 {
        write(&mut sim, create(&format!("/s{i}"), CreateMode::Persistent));
    }
    sim.down.retain(|i| *i != f);
    // Keep writing while the follower rejoins and its SNAP is written.
    let mut written_during_snap = 0;
    for i in 0..40 {
        write(
            &mut sim,
            create(&format!("/during{i}"), CreateMode::Persistent),
        );
        if sim.servers[&leader].sync_snapshot_pending() {
            written_during_snap += 1;
        }
        sim.step();
    }
    assert!(
        written_during_snap > 0,
        "no write while the SNAP was written"
    );
    for _ in 0..200 {
        sim.step();
    }
    assert!(sim.snap_chunks >= 2, "chunks: {}", sim.snap_chunks);
    assert_eq!(sim.leader(), leader);
    assert!(sim.servers[&f].is_serving());
    assert!(sim.diverged.is_empty(), "{:?}", sim.diverged);
    assert_eq!(
        sim.servers[&f].tree().to_bytes(),
        sim.servers[&leader].tree().to_bytes()
    );
    assert!(sim.servers[&f].tree().contains("/during39"));
    assert!(!sim.servers[&leader].sync_snapshot_pending());
}

#[test]
fn a_node_out_of_quorum_disconnects_its_clients() {
    let mut sim = Sim::new(3);
    sim.run_until_serving();
    let leader = sim.leader();
    let f = sim.follower();
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

/// Garbage and damaged frames from a peer are dropped: the server neither panics nor
/// changes state, and keeps serving and replicating.
#[test]
fn garbage_peer_frames_are_dropped() {
    let mut sim = Sim::new(3);
    sim.run_until_serving();
    let leader = sim.leader();
    let f = sim.follower();
    let proposal = zab_core::Message::Proposal {
        epoch: 1,
        prev: Zxid::ZERO,
        entry: zab_core::Entry {
            zxid: Zxid::new(1, 1),
            payload: Bytes::from_static(b"payload"),
        },
    }
    .encode();
    let before = sim.servers[&f].status();
    let frames = [
        Bytes::new(),
        Bytes::from_static(&[0xff; 40]),
        proposal.slice(..proposal.len() - 1),
        Bytes::from([proposal.as_ref(), &[0][..]].concat()),
    ];
    for frame in frames {
        let s = sim.servers.get_mut(&f).unwrap();
        s.handle_peer_frame(ServerId(leader), frame);
        assert!(s.drain_actions().is_empty());
    }
    let s = &sim.servers[&f];
    assert_eq!(s.status(), before);
    assert!(s.is_serving() && s.stats().diverged.is_none());
    sim.connect(f, 1);
    sim.request(f, 1, 1, create("/after", CreateMode::Persistent))
        .unwrap();
}

#[test]
fn a_replica_whose_tree_diverged_stops_serving_loudly() {
    diverged_replica_stops_serving([
        create("/b", CreateMode::Persistent),
        create("/c", CreateMode::Persistent),
    ]);
}

/// The same with setData, which a follower applies in place from the payload.
#[test]
fn a_replica_that_diverged_on_an_in_place_set_data_stops_serving() {
    let set = |d: &'static [u8]| Request::SetData {
        path: "/a".into(),
        data: Bytes::from_static(d),
        version: -1,
    };
    diverged_replica_stops_serving([set(b"x"), set(b"y")]);
}

/// Corrupts a follower's tree behind the protocol's back, has the leader commit
/// `writes`, and checks that the follower notices, says why, and stops serving.
fn diverged_replica_stops_serving(writes: [Request; 2]) {
    let mut sim = Sim::new(3);
    sim.run_until_serving();
    let leader = sim.leader();
    let f = sim.follower();
    sim.connect(f, 1);
    sim.request(f, 1, 1, create("/a", CreateMode::Persistent))
        .unwrap();
    // Corrupt one follower's tree behind the protocol's back.
    let bad = datatree::Txn {
        zxid: 1,
        time_ms: 0,
        op: datatree::TxnOp::SetData {
            path: "/a".into(),
            data: Bytes::from_static(b"corrupt"),
            version: 1,
        },
    };
    sim.servers.get_mut(&f).unwrap().tree.apply(&bad).unwrap();
    sim.connect(leader, 2);
    for (xid, w) in (1..).zip(writes) {
        sim.request(leader, 2, xid, w).unwrap();
    }
    assert!(sim
        .diverged
        .iter()
        .any(|(id, r)| *id == f && r.contains("digest mismatch")));
    let s = sim.servers.get(&f).unwrap();
    assert!(!s.is_serving());
    assert!(s.stats().diverged.is_some());
    assert!(sim
        .session_events
        .iter()
        .any(|(id, c, e)| *id == f && *c == ConnId(1) && *e == SessionEvent::Disconnected));
    assert!(matches!(
        sim.request(f, 3, 1, Request::Connect { timeout_ms: 100 }),
        Err(Error::NotServing(_))
    ));
}

mod model {
    //! A proptest model test: random pipelined ops of one session, through a random
    //! server of a 3-server ensemble, against a plain map model.

    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Create(usize, u8),
        Delete(usize, i32),
        Set(usize, u8, i32),
        Get(usize),
        Children(usize),
    }

    const PATHS: [&str; 4] = ["/a", "/a/b", "/c", "/a/b/d"];

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..4usize, any::<u8>()).prop_map(|(p, d)| Op::Create(p, d)),
            (0..4usize, -1..2i32).prop_map(|(p, v)| Op::Delete(p, v)),
            (0..4usize, any::<u8>(), -1..3i32).prop_map(|(p, d, v)| Op::Set(p, d, v)),
            (0..4usize).prop_map(Op::Get),
            (0..4usize).prop_map(Op::Children),
        ]
    }

    /// path -> (data, version)
    type Model = BTreeMap<String, (u8, i32)>;

    fn parent(p: &str) -> String {
        match p.rfind('/') {
            Some(0) | None => "/".to_string(),
            Some(i) => p[..i].to_string(),
        }
    }

    fn expect(m: &mut Model, op: &Op) -> Result<String, i32> {
        match op {
            Op::Create(i, d) => {
                let p = PATHS[*i].to_string();
                if m.contains_key(&p) {
                    return Err(-110);
                }
                let par = parent(&p);
                if par != "/" && !m.contains_key(&par) {
                    return Err(-101);
                }
                m.insert(p.clone(), (*d, 0));
                Ok(p)
            }
            Op::Delete(i, v) => {
                let p = PATHS[*i].to_string();
                let Some((_, ver)) = m.get(&p) else {
                    return Err(-101);
                };
                if *v != -1 && v != ver {
                    return Err(-103);
                }
                if m.keys().any(|k| parent(k) == p) {
                    return Err(-111);
                }
                m.remove(&p);
                Ok(String::new())
            }
            Op::Set(i, d, v) => {
                let p = PATHS[*i].to_string();
                let Some((data, ver)) = m.get_mut(&p) else {
                    return Err(-101);
                };
                if *v != -1 && v != ver {
                    return Err(-103);
                }
                *data = *d;
                *ver += 1;
                Ok(format!("v{ver}"))
            }
            Op::Get(i) => match m.get(PATHS[*i]) {
                Some((d, v)) => Ok(format!("{d}@{v}")),
                None => Err(-101),
            },
            Op::Children(i) => {
                let p = PATHS[*i];
                if !m.contains_key(p) {
                    return Err(-101);
                }
                let kids: Vec<String> = m
                    .keys()
                    .filter(|k| parent(k) == p)
                    .map(|k| k[p.len() + 1..].to_string())
                    .collect();
                Ok(kids.join(","))
            }
        }
    }

    fn request(op: &Op) -> Request {
        match op {
            Op::Create(i, d) => Request::Create {
                path: PATHS[*i].into(),
                data: Bytes::from(vec![*d]),
                acl: Acl::open_unsafe(),
                mode: CreateMode::Persistent,
                ttl_ms: 0,
            },
            Op::Delete(i, v) => Request::Delete {
                path: PATHS[*i].into(),
                version: *v,
            },
            Op::Set(i, d, v) => Request::SetData {
                path: PATHS[*i].into(),
                data: Bytes::from(vec![*d]),
                version: *v,
            },
            Op::Get(i) => Request::GetData {
                path: PATHS[*i].into(),
                watch: false,
            },
            Op::Children(i) => Request::GetChildren {
                path: PATHS[*i].into(),
                watch: false,
            },
        }
    }

    fn observed(r: &Result<Response, Error>) -> Result<String, i32> {
        match r {
            Err(e) => Err(e.code()),
            Ok(Response::Created { path, .. }) => Ok(path.clone()),
            Ok(Response::Deleted) => Ok(String::new()),
            Ok(Response::Stat(s)) => Ok(format!("v{}", s.version)),
            Ok(Response::Data(d, s)) => {
                Ok(format!("{}@{}", d.first().copied().unwrap_or(0), s.version))
            }
            Ok(Response::Children(c, _)) => {
                let mut c = c.clone();
                c.sort();
                Ok(c.join(","))
            }
            Ok(other) => Ok(format!("{other:?}")),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        #[test]
        fn pipelined_ops_match_the_model(server in 1..=3u64, ops in proptest::collection::vec(op(), 1..40)) {
            let mut sim = Sim::new(3);
            sim.run_until_serving();
            sim.connect(server, 1);
            for (i, op) in ops.iter().enumerate() {
                sim.send(server, 1, i as u64 + 1, request(op));
            }
            for _ in 0..30 {
                sim.step();
            }
            let got: Vec<(Xid, Result<String, i32>)> = sim
                .replies
                .iter()
                .filter(|r| r.0 == server && r.1 == ConnId(1))
                .map(|r| (r.2, observed(&r.3)))
                .collect();
            let mut model = Model::new();
            let want: Vec<(Xid, Result<String, i32>)> = ops
                .iter()
                .enumerate()
                .map(|(i, op)| (Xid(i as u64 + 1), expect(&mut model, op)))
                .collect();
            prop_assert_eq!(got, want);
            let digests: Vec<u64> = sim.servers.values().map(|s| s.digest()).collect();
            prop_assert!(digests.windows(2).all(|w| w[0] == w[1]));
        }
    }
}

#[test]
fn a_lost_forwarded_request_costs_the_connection_not_a_hang() {
    let mut sim = Sim::new(3);
    sim.run_until_serving();
    let f = sim.follower();
    sim.connect(f, 1);
    sim.send(f, 1, 1, create("/lost", CreateMode::Persistent));
    sim.send(
        f,
        1,
        2,
        Request::GetData {
            path: "/".into(),
            watch: false,
        },
    );
    // The network loses the REQUEST.
    sim.net
        .retain(|(_, _, m)| !matches!(m, Message::Request { .. }));
    for _ in 0..200 {
        sim.step();
    }
    let mine: Vec<_> = sim
        .replies
        .iter()
        .filter(|r| r.0 == f && r.1 == ConnId(1))
        .collect();
    assert_eq!(mine.len(), 2);
    assert!(mine
        .iter()
        .all(|r| matches!(r.3, Err(Error::ConnectionLoss))));
    assert!(sim
        .session_events
        .iter()
        .any(|(id, c, e)| *id == f && *c == ConnId(1) && *e == SessionEvent::Disconnected));
}

#[test]
fn duplicated_or_reordered_forwards_commit_once_and_in_order() {
    let mut sim = Sim::new(3);
    sim.run_until_serving();
    let leader = sim.leader();
    let f = sim.follower();
    sim.connect(f, 1);
    sim.send(f, 1, 1, create("/x", CreateMode::PersistentSequential));
    sim.send(f, 1, 2, create("/y", CreateMode::PersistentSequential));
    // The network duplicates the first REQUEST and swaps the order.
    let reqs: Vec<_> = sim
        .net
        .iter()
        .filter(|(_, _, m)| matches!(m, Message::Request { .. }))
        .cloned()
        .collect();
    assert_eq!(reqs.len(), 2);
    sim.net
        .retain(|(_, _, m)| !matches!(m, Message::Request { .. }));
    sim.net.push_back(reqs[1].clone());
    sim.net.push_back(reqs[0].clone());
    sim.net.push_back(reqs[0].clone());
    for _ in 0..100 {
        sim.step();
    }
    let tree = sim.servers.get(&leader).unwrap().tree();
    let (kids, _) = tree.children("/").unwrap();
    let seq: Vec<&String> = kids
        .iter()
        .filter(|k| k.starts_with('x') || k.starts_with('y'))
        .collect();
    assert_eq!(seq.len(), 1, "only /y committed, once: {seq:?}");
    assert!(seq[0].starts_with('y'));
}
