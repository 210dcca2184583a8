//! Test harness: N cores, an in-memory network with seeded faults, FIFO storage that
//! loses unsynced writes on crash, and a trivial state machine (the list of applied
//! txns, whose snapshot is that list). Every input is followed by the invariant checks.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod invariants;
mod script;
mod storage;

use storage::StorageOp;
#[allow(unused_imports)] // each test binary uses a different part
pub use storage::{decode_snapshot, encode_snapshot, txn, Disk};

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use zab_core::{Action, Config, Core, Entry, Message, Phase, Role, ServerId, Status, Zxid};

use invariants::Invariants;

/// Faults the network injects, in percent per message.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    pub drop_pct: u32,
    pub dup_pct: u32,
    /// Chance that `deliver_random` picks a random in-flight message rather than the oldest.
    pub reorder_pct: u32,
}

/// A deliberate bug in the shell, to show that the checkers catch it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mutation {
    #[default]
    None,
    /// Report appends durable as soon as they are issued (ACK before durable,
    /// ZOOKEEPER-3911's class of bug); the write is still lost by a crash.
    AckBeforeDurable,
    /// Report truncations done without truncating the disk (skipping TRUNC).
    SkipTruncate,
    /// The leader's COMMIT travels right behind each PROPOSAL (commit without quorum).
    CommitWithoutQuorum,
}

#[derive(Clone, Debug)]
pub struct Packet {
    pub from: ServerId,
    pub to: ServerId,
    pub bytes: Bytes,
}

pub struct Node {
    pub id: ServerId,
    pub cfg: Config,
    pub core: Option<Core>,
    pub disk: Disk,
    pending: VecDeque<StorageOp>,
    /// The state machine: every txn applied, in order.
    pub applied: Vec<Entry>,
}

impl Node {
    pub fn status(&self) -> Option<Status> {
        self.core.as_ref().map(Core::status)
    }
    pub fn last_applied(&self) -> Zxid {
        self.applied.last().map_or(Zxid::ZERO, |e| e.zxid)
    }
}

pub struct Cluster {
    pub seed: u64,
    pub rng: ChaCha8Rng,
    pub nodes: BTreeMap<ServerId, Node>,
    pub net: Vec<Packet>,
    /// Directed links that drop everything.
    pub blocked: BTreeSet<(ServerId, ServerId)>,
    pub faults: Faults,
    pub inv: Invariants,
    pub trace: VecDeque<String>,
    /// Every delivered message: (from, to, kind).
    pub delivered: Vec<(u64, u64, &'static str)>,
    pub mutation: Mutation,
    /// Do not print the trace on failure.
    pub quiet: bool,
    /// Percent of the leader's log reads (`Action::ReadLog`) that fail.
    pub read_fail_pct: u32,
    /// Servers whose storage makes no progress (a stalled disk).
    pub frozen: BTreeSet<ServerId>,
    /// Counts of interesting events, for coverage reports.
    pub stats: BTreeMap<&'static str, u64>,
    next_write: u64,
    /// Payloads of client writes, by the zxid the leader gave them.
    pub proposed: BTreeMap<Zxid, Bytes>,
}

pub const TRACE_MAX: usize = 80;

impl Cluster {
    /// `voters` participants 1..=voters, then `observers` observers.
    pub fn new(seed: u64, voters: u64, observers: u64, tweak: impl Fn(&mut Config)) -> Self {
        Self::from_disks(seed, voters, observers, BTreeMap::new(), tweak)
    }

    /// Like `new`, with some servers starting from the given disks (their state machine
    /// restored from the disk's snapshot; every txn on those disks counts as proposed).
    pub fn from_disks(
        seed: u64,
        voters: u64,
        observers: u64,
        disks: BTreeMap<u64, Disk>,
        tweak: impl Fn(&mut Config),
    ) -> Self {
        let vs: Vec<ServerId> = (1..=voters).map(ServerId).collect();
        let os: Vec<ServerId> = (voters + 1..=voters + observers).map(ServerId).collect();
        let mut nodes = BTreeMap::new();
        for id in vs.iter().chain(os.iter()) {
            let mut cfg = Config::majority(*id, vs.clone(), os.clone()).unwrap();
            tweak(&mut cfg);
            let disk = disks.get(&id.0).cloned().unwrap_or_default();
            let core = Core::new(cfg.clone(), disk.persisted()).unwrap();
            nodes.insert(
                *id,
                Node {
                    id: *id,
                    cfg,
                    core: Some(core),
                    applied: disk.snapshot.1.clone(),
                    disk,
                    pending: VecDeque::new(),
                },
            );
        }
        let mut c = Cluster {
            seed,
            rng: ChaCha8Rng::seed_from_u64(seed),
            nodes,
            net: Vec::new(),
            blocked: BTreeSet::new(),
            faults: Faults::default(),
            inv: Invariants::default(),
            trace: VecDeque::new(),
            delivered: Vec::new(),
            mutation: Mutation::None,
            quiet: false,
            read_fail_pct: 0,
            frozen: BTreeSet::new(),
            stats: BTreeMap::new(),
            next_write: 0,
            proposed: BTreeMap::new(),
        };
        for d in disks.values() {
            for e in d.snapshot.1.iter().chain(d.log.iter()) {
                c.proposed.insert(e.zxid, e.payload.clone());
            }
        }
        let ids: Vec<ServerId> = c.nodes.keys().copied().collect();
        for id in ids {
            let applied = c.nodes[&id].applied.clone();
            c.inv.on_reset(id, &applied);
            c.pump(id);
        }
        c
    }

    pub fn ids(&self) -> Vec<ServerId> {
        self.nodes.keys().copied().collect()
    }

    pub fn log(&mut self, line: String) {
        if self.trace.len() == TRACE_MAX {
            self.trace.pop_front();
        }
        self.trace.push_back(line);
    }

    /// Runs the invariant checks; on a violation prints the seed and the trace and panics.
    pub fn check(&mut self) {
        let mut inv = std::mem::take(&mut self.inv);
        let res = inv.check(self);
        self.inv = inv;
        if let Err(v) = res {
            self.fail(&v);
        }
    }

    pub fn fail(&self, why: &str) -> ! {
        if self.quiet {
            panic!("seed {}: invariant violated: {why}", self.seed);
        }
        eprintln!("---- last events (seed {}) ----", self.seed);
        for l in &self.trace {
            eprintln!("{l}");
        }
        for n in self.nodes.values() {
            eprintln!(
                "{:?} disk log last {:?} applied {}",
                n.status(),
                n.disk.log.last().map(|e| e.zxid),
                n.applied.len()
            );
        }
        panic!(
            "seed {}: invariant violated: {why}\n(replay with ZAB_SEED={})",
            self.seed, self.seed
        );
    }

    /// Executes every pending action of `id`, in order.
    pub fn pump(&mut self, id: ServerId) {
        loop {
            let Some(core) = self.nodes.get_mut(&id).and_then(|n| n.core.as_mut()) else {
                return;
            };
            let actions = core.drain_actions();
            if actions.is_empty() {
                return;
            }
            for a in actions {
                self.exec(id, a);
            }
        }
    }

    fn exec(&mut self, id: ServerId, action: Action) {
        match action {
            Action::Send { to, msg } => self.send(id, to, &msg),
            Action::AppendLog { entries } => {
                let last = entries.last().map(|e| e.zxid);
                self.node(id).pending.push_back(StorageOp::Append(entries));
                if let (Mutation::AckBeforeDurable, Some(last)) = (self.mutation, last) {
                    if let Some(c) = self.node(id).core.as_mut() {
                        c.handle_log_durable(last);
                    }
                }
            }
            Action::TruncateLog { after } => {
                self.log(format!("{id} truncate after {after:?}"));
                self.node(id).pending.push_back(StorageOp::Truncate(after));
            }
            Action::ReadLog {
                token,
                from,
                max,
                max_bytes,
            } => {
                self.node(id).pending.push_back(StorageOp::Read {
                    token,
                    from,
                    max,
                    max_bytes,
                });
            }
            Action::SaveAcceptedEpoch { epoch } => self
                .node(id)
                .pending
                .push_back(StorageOp::SaveAccepted(epoch)),
            Action::SaveCurrentEpoch { epoch } => self
                .node(id)
                .pending
                .push_back(StorageOp::SaveCurrent(epoch)),
            Action::InstallSnapshot { zxid, data } => {
                let list = decode_snapshot(data);
                if list.last().map_or(Zxid::ZERO, |e| e.zxid) != zxid {
                    self.fail(&format!("{id}: snapshot at {zxid:?} does not end there"));
                }
                self.log(format!("{id} install snapshot at {zxid:?}"));
                let n = self.node(id);
                n.applied = list.clone();
                n.pending.push_back(StorageOp::Install(zxid, list));
                self.inv.on_reset(id, &self.nodes[&id].applied);
            }
            Action::Commit { entries } => {
                *self.stats.entry("txns applied").or_insert(0) += entries.len() as u64;
                let prev = self.nodes[&id].last_applied();
                if let Err(v) = self.inv.on_apply(id, prev, &entries, &self.proposed) {
                    self.fail(&v);
                }
                self.node(id).applied.extend(entries);
            }
            Action::SendSnapshot(req) => {
                let n = &self.nodes[&id];
                if n.last_applied() != req.upto {
                    self.fail(&format!(
                        "{id}: snapshot asked at {:?} but applied up to {:?}",
                        req.upto,
                        n.last_applied()
                    ));
                }
                let data = encode_snapshot(&n.applied);
                let to = req.to;
                self.send(id, to, &req.into_message(0, data));
            }
            Action::Request { origin, payload } => {
                let core = self
                    .nodes
                    .get_mut(&id)
                    .and_then(|n| n.core.as_mut())
                    .unwrap();
                if let Ok(z) = core.propose(payload.clone()) {
                    self.log(format!("{id} proposes {z:?} (from {origin})"));
                    self.record_proposal(z, payload);
                }
            }
            Action::RoleChanged {
                role,
                phase,
                leader,
                epoch,
            } => {
                self.log(format!(
                    "{id} -> {role:?}/{phase:?} leader {leader:?} epoch {epoch}"
                ));
            }
            other => self.fail(&format!("unknown action {other:?}")),
        }
    }

    fn record_proposal(&mut self, z: Zxid, payload: Bytes) {
        if let Some(old) = self.proposed.insert(z, payload.clone()) {
            if old != payload {
                self.fail(&format!(
                    "two different txns proposed at {z:?}: two primaries in one epoch"
                ));
            }
        }
    }

    fn node(&mut self, id: ServerId) -> &mut Node {
        self.nodes.get_mut(&id).unwrap()
    }

    fn send(&mut self, from: ServerId, to: ServerId, msg: &Message) {
        let bytes = msg.encode();
        if self.faults.drop_pct > 0 && self.rng.gen_range(0..100) < self.faults.drop_pct {
            return;
        }
        let copies = if self.faults.dup_pct > 0 && self.rng.gen_range(0..100) < self.faults.dup_pct
        {
            2
        } else {
            1
        };
        for _ in 0..copies {
            self.net.push(Packet {
                from,
                to,
                bytes: bytes.clone(),
            });
        }
        if let (Mutation::CommitWithoutQuorum, Message::Proposal { epoch, entry, .. }) =
            (self.mutation, msg)
        {
            let commit = Message::Commit {
                epoch: *epoch,
                zxid: entry.zxid,
            };
            self.net.push(Packet {
                from,
                to,
                bytes: commit.encode(),
            });
        }
    }

    /// Delivers the in-flight packet at `index`.
    pub fn deliver_at(&mut self, index: usize) {
        let p = self.net.remove(index);
        if self.blocked.contains(&(p.from, p.to)) {
            return;
        }
        let msg = Message::decode(&p.bytes).unwrap_or_else(|e| self.fail(&format!("decode: {e}")));
        let Some(core) = self.nodes.get_mut(&p.to).and_then(|n| n.core.as_mut()) else {
            return;
        };
        self.delivered.push((p.from.0, p.to.0, msg.kind()));
        *self.stats.entry(msg.kind()).or_insert(0) += 1;
        if !matches!(msg, Message::Ping { .. } | Message::PingReply { .. }) {
            let line = format!("{} -> {}: {}", p.from, p.to, brief(&msg));
            core.handle_message(p.from, msg);
            // One step of any sync stream per input, as the node shell runs one per pass.
            core.stream_step();
            self.log(line);
        } else {
            core.handle_message(p.from, msg);
            core.stream_step();
        }
        self.pump(p.to);
        self.check();
    }

    /// Delivers the oldest packet from `from` to `to`; false if none.
    pub fn deliver(&mut self, from: u64, to: u64) -> bool {
        match self
            .net
            .iter()
            .position(|p| p.from == ServerId(from) && p.to == ServerId(to))
        {
            Some(i) => {
                self.deliver_at(i);
                true
            }
            None => false,
        }
    }

    /// Drops the oldest packet from `from` to `to`; returns its kind.
    pub fn drop_next(&mut self, from: u64, to: u64) -> Option<&'static str> {
        let i = self
            .net
            .iter()
            .position(|p| p.from == ServerId(from) && p.to == ServerId(to))?;
        let p = self.net.remove(i);
        let kind = Message::decode(&p.bytes).ok().map(|m| m.kind());
        self.log(format!("drop {} -> {}: {kind:?}", p.from, p.to));
        kind
    }

    /// Drops the oldest packet of `kind` from `from` to `to`; false if none.
    pub fn drop_kind(&mut self, from: u64, to: u64, kind: &str) -> bool {
        let pos = self.net.iter().position(|p| {
            p.from == ServerId(from)
                && p.to == ServerId(to)
                && Message::decode(&p.bytes).is_ok_and(|m| m.kind() == kind)
        });
        match pos {
            Some(i) => {
                self.net.remove(i);
                self.log(format!("drop {from} -> {to}: {kind}"));
                true
            }
            None => false,
        }
    }

    /// Kind of the oldest packet from `from` to `to`.
    pub fn peek(&self, from: u64, to: u64) -> Option<Message> {
        let p = self
            .net
            .iter()
            .find(|p| p.from == ServerId(from) && p.to == ServerId(to))?;
        Message::decode(&p.bytes).ok()
    }

    pub fn tick(&mut self, id: ServerId) {
        if let Some(core) = self.nodes.get_mut(&id).and_then(|n| n.core.as_mut()) {
            core.handle_tick();
            core.stream_step();
            self.pump(id);
            self.check();
        }
    }

    pub fn is_up(&self, id: ServerId) -> bool {
        self.nodes[&id].core.is_some()
    }

    /// Cuts every link between the two sides (both directions).
    pub fn partition(&mut self, side: &[u64]) {
        let a: BTreeSet<ServerId> = side.iter().map(|i| ServerId(*i)).collect();
        self.log(format!("PARTITION {a:?}"));
        for x in self.ids() {
            for y in self.ids() {
                if a.contains(&x) != a.contains(&y) {
                    self.blocked.insert((x, y));
                }
            }
        }
    }

    pub fn heal(&mut self) {
        self.log("HEAL".to_string());
        self.blocked.clear();
    }

    /// A client write entering at `id`: proposed if it leads, forwarded otherwise.
    pub fn write(&mut self, id: ServerId) -> Option<Bytes> {
        self.next_write += 1;
        let payload = Bytes::from(format!("w{}-{}", self.seed, self.next_write));
        self.write_payload(id, payload.clone());
        Some(payload)
    }

    pub fn write_payload(&mut self, id: ServerId, payload: Bytes) {
        let Some(core) = self.nodes.get_mut(&id).and_then(|n| n.core.as_mut()) else {
            return;
        };
        if core.status().role == Role::Leading {
            if let Ok(z) = core.propose(payload.clone()) {
                self.log(format!("{id} proposes {z:?}"));
                self.record_proposal(z, payload);
            }
        } else {
            let _ = core.forward_request(payload);
        }
        self.pump(id);
        self.check();
    }

    /// The established leader, if exactly one live node leads in broadcast.
    pub fn leader(&self) -> Option<ServerId> {
        let mut best: Option<(u32, ServerId)> = None;
        for n in self.nodes.values() {
            if let Some(s) = n.status() {
                if s.role == Role::Leading
                    && s.phase == Phase::Broadcast
                    && !matches!(best, Some((e, _)) if e >= s.leader_epoch)
                {
                    best = Some((s.leader_epoch, n.id));
                }
            }
        }
        best.map(|(_, id)| id)
    }

    /// One round without faults: deliver everything in flight (FIFO), flush storage,
    /// then tick every node once.
    pub fn round(&mut self) {
        let mut budget = 10_000;
        while !self.net.is_empty() && budget > 0 {
            self.deliver_at(0);
            budget -= 1;
            if self.net.is_empty() {
                self.flush_all();
            }
        }
        self.flush_all();
        for id in self.ids() {
            self.tick(id);
        }
    }

    /// Deliver and flush until the network is quiet, without ticking.
    pub fn settle(&mut self) {
        for _ in 0..10_000 {
            if self.net.is_empty() && self.nodes.values().all(|n| n.pending.is_empty()) {
                return;
            }
            if !self.net.is_empty() {
                self.deliver_at(0);
            } else {
                self.flush_all();
            }
        }
    }

    /// Delivers and flushes only among `ids` until nothing moves between them.
    pub fn settle_between(&mut self, ids: &[u64]) {
        let set: BTreeSet<ServerId> = ids.iter().map(|i| ServerId(*i)).collect();
        for _ in 0..10_000 {
            match self
                .net
                .iter()
                .position(|p| set.contains(&p.from) && set.contains(&p.to))
            {
                Some(i) => self.deliver_at(i),
                None => {
                    for id in &set {
                        self.flush(*id, usize::MAX);
                    }
                    if !self
                        .net
                        .iter()
                        .any(|p| set.contains(&p.from) && set.contains(&p.to))
                    {
                        return;
                    }
                }
            }
        }
    }

    /// Runs fault-free rounds until `pred` holds; panics after `max_rounds`.
    pub fn run_until(&mut self, max_rounds: usize, what: &str, pred: impl Fn(&Cluster) -> bool) {
        for _ in 0..max_rounds {
            self.settle();
            if pred(self) {
                return;
            }
            self.round();
        }
        self.settle();
        if !pred(self) {
            self.fail(&format!(
                "liveness: {what} not reached in {max_rounds} rounds"
            ));
        }
    }

    /// Whether every live node applied `payload`.
    pub fn all_applied(&self, payload: &Bytes) -> bool {
        self.nodes
            .values()
            .filter(|n| n.core.is_some())
            .all(|n| n.applied.iter().any(|e| e.payload == *payload))
    }

    pub fn status(&self, id: u64) -> Status {
        self.nodes[&ServerId(id)].status().unwrap()
    }
}

/// One-line rendering of a message for traces.
pub fn brief(msg: &Message) -> String {
    match msg {
        Message::Notification {
            vote,
            election_epoch,
            state,
        } => {
            format!(
                "NOTIFICATION({:?} vote {} {:?} e{} round {election_epoch})",
                state, vote.leader, vote.zxid, vote.peer_epoch
            )
        }
        Message::Proposal { prev, entry, .. } => {
            format!("PROPOSAL({:?} after {prev:?})", entry.zxid)
        }
        Message::Inform { prev, entry, .. } => format!("INFORM({:?} after {prev:?})", entry.zxid),
        Message::Snap { zxid, echo, .. } => format!("SNAP({zxid:?} for {echo:?})"),
        Message::Request { .. } => "REQUEST".to_string(),
        other => format!("{other:?}"),
    }
}
