//! The reference replay: the committed history (as agreed by the replicas) applied
//! to a fresh tree, one txn at a time, recording what every path looked like after
//! each zxid. History checkers compare what clients saw against it.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use datatree::DataTree;
use ensemble::codec::{Body, Envelope};
use ensemble::{ConnId, SessionId, Xid};

use crate::check::zab::Committed;

/// The state of one node: `None` when absent, else its data and version.
pub type NodeState = Option<(Bytes, i32)>;

/// The committed history, replayed.
#[derive(Debug, Default)]
pub struct Reference {
    /// Committed zxids in order.
    pub order: Vec<u64>,
    /// Index of each zxid in `order`.
    pub index: HashMap<u64, usize>,
    /// Per path: (zxid, state after it) for every zxid that changed the path.
    pub paths: HashMap<String, Vec<(u64, NodeState)>>,
    /// Committed tree txns by origin (server, connection, xid).
    pub writes: HashMap<(u64, ConnId, Xid), u64>,
    /// Sessions whose close committed: the zxid, and whether it was an expiry (or
    /// orphan cleanup) by the leader rather than the client's own close.
    pub closed_sessions: HashMap<SessionId, (u64, bool)>,
    /// Sessions whose creation committed.
    pub created_sessions: BTreeSet<SessionId>,
    /// Requests committed more than once: (origin, conn, xid) and both zxids.
    pub duplicates: Vec<((u64, ConnId, Xid), u64, u64)>,
    /// zxids whose replay digest differs from a replica's.
    pub digest_mismatches: Vec<(u64, u64, u64)>,
    /// Payloads that could not be decoded.
    pub undecodable: Vec<u64>,
}

impl Reference {
    /// Replays `committed`.
    pub fn replay(committed: &Committed) -> Reference {
        let mut r = Reference::default();
        let mut tree = DataTree::new();
        for (i, &zx) in committed.order.iter().enumerate() {
            r.order.push(zx);
            r.index.insert(zx, i);
            let Some(payload) = committed.payloads.get(&zx) else {
                continue;
            };
            let env = match Envelope::decode(payload.clone()) {
                Ok(e) => e,
                Err(_) => {
                    r.undecodable.push(zx);
                    continue;
                }
            };
            let txn = match env.body {
                Body::Tree(txn) => {
                    let key = (env.origin, env.conn, env.xid);
                    if env.conn.0 != 0 {
                        if let Some(first) = r.writes.insert(key, zx) {
                            r.duplicates.push((key, first, zx));
                        }
                    }
                    Some(txn)
                }
                Body::CloseSession(txn) => {
                    r.closed_sessions.insert(env.session, (zx, env.conn.0 == 0));
                    r.writes.insert((env.origin, env.conn, env.xid), zx);
                    Some(txn)
                }
                Body::CreateSession { .. } => {
                    r.created_sessions.insert(env.session);
                    None
                }
                _ => None,
            };
            if let Some(txn) = txn {
                if let Ok(applied) = tree.apply(&txn) {
                    let touched: BTreeSet<String> =
                        applied.changes.iter().map(|c| c.path.to_string()).collect();
                    for p in touched {
                        let state = tree.data(&p).ok().map(|(d, s)| (d, s.version));
                        r.paths.entry(p).or_default().push((zx, state));
                    }
                }
            }
            if let Some(d) = committed.digests.get(&zx) {
                if *d != tree.digest() {
                    r.digest_mismatches.push((zx, *d, tree.digest()));
                }
            }
        }
        r
    }

    /// The state of `path` right after `zxid` (which must be in the history).
    pub fn state_at(&self, path: &str, zxid: u64) -> NodeState {
        let h = self.paths.get(path)?;
        let i = h.partition_point(|(z, _)| *z <= zxid);
        if i == 0 {
            None
        } else {
            h[i - 1].1.clone()
        }
    }

    /// The zxid committed right after `zxid`, if any.
    pub fn successor(&self, zxid: u64) -> Option<u64> {
        if zxid == 0 {
            return self.order.first().copied();
        }
        let i = self.index.get(&zxid)?;
        self.order.get(i + 1).copied()
    }

    /// Whether `zxid` is in the replayed history (0, the empty history, always is).
    pub fn knows(&self, zxid: u64) -> bool {
        zxid == 0 || self.index.contains_key(&zxid)
    }
}
