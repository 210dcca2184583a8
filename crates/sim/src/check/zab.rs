//! ZAB invariants, checked after every step of every server.
//!
//! Properties (Junqueira, Reed, Serafini, "Zab: High-performance broadcast for
//! primary-backup systems", DSN 2011, §III; ZooKeeper's own ZAB 1.0 notes):
//!
//! - **Integrity**: a server applies only txns that a leader broadcast — here, only
//!   entries that are in its own log (it appended them) at the position it applies.
//! - **Agreement / total order**: two servers that apply a txn at zxid `z` apply the
//!   same payload, and agree on the txn that follows `z` (no two histories).
//! - **No gaps / primary order**: within an epoch the applied zxids are consecutive;
//!   a new epoch starts at counter 1 and epochs only grow along the history.
//! - **Local primary order**: a server's applied zxid only moves forward (until a
//!   crash, after which it restarts from its snapshot).
//! - **Primary integrity**: a leader that reaches Broadcast in epoch `e` has applied
//!   every txn of an earlier epoch that any server applied (so it cannot lose one).
//! - **One leader per epoch**: at most one server establishes itself as leader of
//!   a given epoch.
//! - **Epochs are monotonic**: a server's durable accepted and current epochs never
//!   decrease, across crashes too. (Leaders may *learn* they are established out of
//!   epoch order — a paused leader processes old acks late — so that is not checked.)
//! - **State agreement**: replicas at the same applied zxid have the same tree
//!   digest.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use ensemble::Server;
use zab_core::{Phase, Role, Zxid};

use super::Violation;

const NAME: &str = "zab";

/// What the ZAB checker learned about the committed history: every applied payload
/// and the order of zxids, for the history checkers.
#[derive(Debug, Default, Clone)]
pub struct Committed {
    /// The committed zxids in order, from the empty history, as far as the chain of
    /// observed successors reaches.
    pub order: Vec<u64>,
    /// Payload of every committed zxid.
    pub payloads: BTreeMap<u64, Bytes>,
    /// The tree digest some replica had right after a zxid.
    pub digests: BTreeMap<u64, u64>,
    /// Virtual time (µs) a zxid was first applied anywhere.
    pub applied_at_us: BTreeMap<u64, u64>,
}

/// The stepwise ZAB invariant checker.
#[derive(Debug, Default)]
pub struct ZabChecker {
    last_applied: HashMap<u64, u64>,
    payloads: BTreeMap<u64, Bytes>,
    next: BTreeMap<u64, u64>,
    digests: BTreeMap<u64, u64>,
    epochs: HashMap<u64, (u32, u32)>,
    leaders: BTreeMap<u32, u64>,
    leading: HashMap<u64, u32>,
    /// Highest zxid applied anywhere.
    max_applied: u64,
    applied_at_us: BTreeMap<u64, u64>,
}

fn z(raw: u64) -> Zxid {
    Zxid::from_u64(raw)
}

impl ZabChecker {
    /// A checker that has seen nothing.
    pub fn new() -> ZabChecker {
        ZabChecker::default()
    }

    /// Server `id` restarted from a snapshot at `snapshot_zxid`.
    pub fn handle_restart(&mut self, id: u64, snapshot_zxid: u64) {
        self.last_applied.insert(id, snapshot_zxid);
        self.leading.remove(&id);
    }

    /// Observes server `id` after an input. `snapshot_at`: it installed a leader's
    /// snapshot at that zxid during the input. `log` mirrors the server's log (what it
    /// appended, minus truncations); entries up to the applied zxid are consumed.
    pub fn observe(
        &mut self,
        id: u64,
        server: &Server,
        snapshot_at: Option<u64>,
        log: &mut BTreeMap<u64, Bytes>,
        now_us: u64,
        out: &mut Vec<Violation>,
    ) {
        let mut report = |message: String| {
            out.push(Violation {
                check: NAME.into(),
                at_us: now_us,
                message,
            })
        };
        let applied = server.applied_zxid().to_u64();
        let mut prev = self.last_applied.get(&id).copied().unwrap_or(0);
        if let Some(s) = snapshot_at {
            prev = s;
        }
        if applied < prev {
            report(format!(
                "server {id}: applied zxid went back from {} to {} (local primary order)",
                z(prev),
                z(applied)
            ));
            prev = applied;
        }
        if applied > prev {
            let batch: Vec<(u64, Bytes)> = log
                .range(prev + 1..=applied)
                .map(|(k, v)| (*k, v.clone()))
                .collect();
            if batch.last().map(|(k, _)| *k) != Some(applied) {
                report(format!(
                    "server {id}: applied {} which is not in its log (integrity)",
                    z(applied)
                ));
            }
            for (zx, payload) in batch {
                self.link(id, prev, zx, &mut report);
                match self.payloads.get(&zx) {
                    Some(p) if *p != payload => report(format!(
                        "server {id}: applied a different txn at {} than another server (agreement)",
                        z(zx)
                    )),
                    Some(_) => {}
                    None => {
                        self.payloads.insert(zx, payload);
                        self.applied_at_us.insert(zx, now_us);
                    }
                }
                prev = zx;
            }
            let keep = log.split_off(&(applied + 1));
            *log = keep;
        }
        if applied > 0 {
            let d = server.digest();
            match self.digests.get(&applied) {
                Some(d0) if *d0 != d => report(format!(
                    "server {id}: tree digest {d:#x} after {} differs from another replica's {d0:#x}",
                    z(applied)
                )),
                Some(_) => {}
                None => {
                    self.digests.insert(applied, d);
                }
            }
        }
        self.last_applied.insert(id, applied);
        self.max_applied = self.max_applied.max(applied);
        self.check_epochs(id, server, &mut report);
    }

    fn link(&mut self, id: u64, prev: u64, zx: u64, report: &mut impl FnMut(String)) {
        let (p, n) = (z(prev), z(zx));
        let consecutive = if p.epoch == n.epoch {
            n.counter == p.counter + 1
        } else {
            n.epoch > p.epoch && n.counter == 1
        };
        if !consecutive {
            report(format!(
                "server {id}: applied {n} right after {p} (gap or disorder: primary order)"
            ));
        }
        match self.next.get(&prev) {
            Some(other) if *other != zx => report(format!(
                "server {id}: applied {n} after {p}, another server applied {} there (agreement)",
                z(*other)
            )),
            Some(_) => {}
            None => {
                self.next.insert(prev, zx);
            }
        }
    }

    fn check_epochs(&mut self, id: u64, server: &Server, report: &mut impl FnMut(String)) {
        let st = server.status();
        let (acc, cur) = self.epochs.get(&id).copied().unwrap_or((0, 0));
        if st.accepted_epoch < acc || st.current_epoch < cur {
            report(format!(
                "server {id}: durable epochs went back from accepted {acc} / current {cur} to {} / {} (epochs monotonic)",
                st.accepted_epoch, st.current_epoch
            ));
        }
        self.epochs
            .insert(id, (acc.max(st.accepted_epoch), cur.max(st.current_epoch)));
        let established = st.role == Role::Leading && st.phase == Phase::Broadcast;
        if !established {
            self.leading.remove(&id);
            return;
        }
        let epoch = st.leader_epoch;
        if self.leading.get(&id) == Some(&epoch) {
            return;
        }
        self.leading.insert(id, epoch);
        match self.leaders.get(&epoch) {
            Some(other) if *other != id => report(format!(
                "servers {other} and {id} both established themselves as leader of epoch {epoch} (one leader per epoch)"
            )),
            _ => {
                self.leaders.insert(epoch, id);
            }
        }
        // A leader may reach Broadcast for an older epoch after a newer one was
        // established elsewhere (a paused leader whose quorum's NEWLEADER acks waited
        // in its inbox): it cannot commit anything any more, so the order in which
        // leaders *learn* they are established is not checked.
        // Primary integrity: every txn of an earlier epoch that anyone applied.
        let earlier = self
            .payloads
            .range(..Zxid::new(epoch, 0).to_u64())
            .next_back()
            .map(|(k, _)| *k);
        if let Some(e) = earlier {
            if server.applied_zxid().to_u64() < e {
                report(format!(
                    "server {id} leads epoch {epoch} having applied only {} but {} was committed before (primary integrity)",
                    server.applied_zxid(),
                    z(e)
                ));
            }
        }
    }

    /// The committed history seen so far.
    pub fn committed(&self) -> Committed {
        let mut order = Vec::new();
        let mut cur = 0u64;
        let bound = self.next.len() + 1;
        while let Some(n) = self.next.get(&cur) {
            order.push(*n);
            cur = *n;
            if order.len() > bound {
                break;
            }
        }
        Committed {
            order,
            payloads: self.payloads.clone(),
            digests: self.digests.clone(),
            applied_at_us: self.applied_at_us.clone(),
        }
    }
}
