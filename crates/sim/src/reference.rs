//! The reference replay: the committed history (as agreed by the replicas) applied
//! to a fresh tree, one txn at a time, recording what every path looked like after
//! each zxid. History checkers compare what clients saw against it.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use datatree::{ChangeKind, DataTree};
use ensemble::codec::{Body, Envelope};
use ensemble::{ConnId, SessionId, Xid};

use crate::check::zab::Committed;

/// The state of one node: `None` when absent, else its data and version.
pub type NodeState = Option<(Bytes, i32)>;

/// A node's sorted children, `None` when the node is absent.
pub type Children = Option<Vec<String>>;

/// The committed history, replayed.
#[derive(Debug, Default)]
pub struct Reference {
    /// Committed zxids in order.
    pub order: Vec<u64>,
    /// Index of each zxid in `order`.
    pub index: HashMap<u64, usize>,
    /// Per path: (zxid, state after it) for every zxid that changed the path.
    pub paths: HashMap<String, Vec<(u64, NodeState)>>,
    /// Per path: (zxid, sorted children after it, `None` when absent) for every zxid
    /// that touched the path.
    pub children: HashMap<String, Vec<(u64, Children)>>,
    /// Every change (zxid, path, kind) in commit order, for watch completeness.
    pub changes: Vec<(u64, String, ChangeKind)>,
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
                    for c in &applied.changes {
                        r.changes.push((zx, c.path.to_string(), c.kind));
                    }
                    let touched: BTreeSet<String> =
                        applied.changes.iter().map(|c| c.path.to_string()).collect();
                    for p in touched {
                        let state = tree.data(&p).ok().map(|(d, s)| (d, s.version));
                        let kids = tree.children(&p).ok().map(|(mut c, _)| {
                            c.sort_unstable();
                            c
                        });
                        r.children.entry(p.clone()).or_default().push((zx, kids));
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

    /// The sorted children of `path` right after `zxid`, if the replay saw the path
    /// change at or before `zxid` (`Some(None)`: absent then).
    pub fn children_at(&self, path: &str, zxid: u64) -> Option<Children> {
        let h = self.children.get(path)?;
        let i = h.partition_point(|(z, _)| *z <= zxid);
        if i == 0 {
            None
        } else {
            Some(h[i - 1].1.clone())
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use datatree::{Txn, TxnOp};
    use ensemble::codec::Envelope;

    fn set(zx: u64, data: &'static str, version: i32, xid: u64) -> Bytes {
        Envelope {
            origin: 1,
            conn: ConnId(9),
            xid: Xid(xid),
            session: SessionId(5),
            check: (0, 0),
            body: Body::Tree(Txn {
                zxid: zx as i64,
                time_ms: 0,
                op: TxnOp::SetData {
                    path: "/zookeeper".into(),
                    data: Bytes::from_static(data.as_bytes()),
                    version,
                },
            }),
        }
        .encode()
    }

    #[test]
    fn replay_records_states_writes_and_successors() {
        let mut c = Committed::default();
        for (i, d) in ["a", "b"].iter().enumerate() {
            let zx = i as u64 + 1;
            c.order.push(zx);
            c.payloads.insert(zx, set(zx, d, zx as i32, zx));
        }
        // A duplicate of xid 2 committed again at zxid 3.
        c.order.push(3);
        c.payloads.insert(3, set(3, "b", 3, 2));
        let r = Reference::replay(&c);
        assert_eq!(
            r.state_at("/zookeeper", 1),
            Some((Bytes::from_static(b"a"), 1))
        );
        assert_eq!(
            r.state_at("/zookeeper", 2),
            Some((Bytes::from_static(b"b"), 2))
        );
        assert_eq!(r.state_at("/nothing", 2), None);
        assert_eq!(r.successor(0), Some(1));
        assert_eq!(r.successor(1), Some(2));
        assert_eq!(r.successor(3), None);
        assert!(r.knows(0) && r.knows(2) && !r.knows(7));
        assert_eq!(r.writes.get(&(1, ConnId(9), Xid(1))), Some(&1));
        assert_eq!(r.duplicates.len(), 1);
    }
}
