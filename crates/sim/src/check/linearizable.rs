//! Linearizability of writes and of linearizable reads, per znode.
//!
//! Property (Herlihy & Wing, 1990): there is a total order of the operations,
//! consistent with real time (an op that returned before another was invoked comes
//! first), in which every op's result is the one a single register would give.
//! ZooKeeper promises it for writes; reads are linearizable when preceded by a
//! quorum-confirmed `sync` on the same connection (see ensemble's design notes).
//!
//! The search is Wing & Gong's (1993) with the memoization of Lowe (2017) as used
//! by Porcupine: try every op that may go next (invoked before the earliest pending
//! return), remember (set of linearized ops, register state) pairs already explored.
//! Linearizability is local (Herlihy & Wing, Theorem 1), so each znode is checked on
//! its own — the per-key decomposition that keeps the search small. A multi is
//! projected onto each node it touches (weaker than checking its atomicity).
//!
//! Ops without a definite outcome (no reply, connection loss, session expiry) may
//! take effect at any point after their invocation, or never.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use bytes::Bytes;
use ensemble::{CreateMode, Error, OpResult, Request, Response, WriteOp};

use crate::history::{History, OpRecord};

const NAME: &str = "linearizable";
/// Search nodes explored per znode before the check gives up (inconclusive).
pub const SEARCH_STEPS_MAX: u64 = 500_000;

/// The register: absent, or data with its version.
type State = Option<(Bytes, i32)>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Ok,
    /// Ok with the version the reply reported.
    OkVersion(i32),
    Exists,
    NoNode,
    BadVersion,
    NotEmpty,
    Unknown,
}

#[derive(Debug, Clone)]
enum Kind {
    Create(Bytes),
    Set(Bytes, i32),
    Delete(i32),
    Check(i32),
    Read(State),
}

#[derive(Debug, Clone)]
struct LinOp {
    invoke: u64,
    ret: u64,
    kind: Kind,
    outcome: Outcome,
    what: String,
}

fn version_ok(expected: i32, actual: i32) -> bool {
    expected == -1 || expected == actual
}

/// Applies `op` to `s`; `None` if the op's outcome is impossible in state `s`.
fn step(s: &State, op: &LinOp) -> Option<State> {
    let unknown = op.outcome == Outcome::Unknown;
    match (&op.kind, s) {
        (Kind::Create(d), None) => match op.outcome {
            Outcome::Ok | Outcome::OkVersion(0) | Outcome::Unknown => Some(Some((d.clone(), 0))),
            // The parent is missing: the node stays absent (and `per_key` checks the
            // parent's own history for an absence at that point).
            Outcome::NoNode => Some(None),
            _ => None,
        },
        (Kind::Create(_), Some(_)) => {
            (matches!(op.outcome, Outcome::Exists) || unknown).then(|| s.clone())
        }
        (Kind::Set(d, v), Some((_, cur))) => {
            if version_ok(*v, *cur) {
                match op.outcome {
                    Outcome::OkVersion(nv) if nv == cur.wrapping_add(1) => {
                        Some(Some((d.clone(), nv)))
                    }
                    Outcome::Ok | Outcome::Unknown => Some(Some((d.clone(), cur.wrapping_add(1)))),
                    _ => None,
                }
            } else {
                (op.outcome == Outcome::BadVersion || unknown).then(|| s.clone())
            }
        }
        (Kind::Set(..) | Kind::Delete(_) | Kind::Check(_), None) => {
            (op.outcome == Outcome::NoNode || unknown).then(|| s.clone())
        }
        (Kind::Delete(v), Some((_, cur))) => {
            if version_ok(*v, *cur) {
                match op.outcome {
                    Outcome::Ok | Outcome::Unknown => Some(None),
                    Outcome::NotEmpty => Some(s.clone()),
                    _ => None,
                }
            } else {
                (matches!(op.outcome, Outcome::BadVersion | Outcome::NotEmpty) || unknown)
                    .then(|| s.clone())
            }
        }
        (Kind::Check(v), Some((_, cur))) => {
            let ok = version_ok(*v, *cur);
            let fits = match op.outcome {
                Outcome::Ok => ok,
                Outcome::BadVersion => !ok,
                Outcome::Unknown => true,
                _ => false,
            };
            fits.then(|| s.clone())
        }
        (Kind::Read(seen), _) => (seen == s).then(|| s.clone()),
    }
}

fn outcome_of(op: &OpRecord, err: Option<&Error>) -> Outcome {
    if op.outcome_unknown() {
        return Outcome::Unknown;
    }
    match err {
        None => Outcome::Ok,
        Some(Error::Tree(e)) => match e {
            datatree::Error::NodeExists(_) => Outcome::Exists,
            datatree::Error::NoNode(_) => Outcome::NoNode,
            datatree::Error::BadVersion(_) => Outcome::BadVersion,
            datatree::Error::NotEmpty(_) => Outcome::NotEmpty,
            _ => Outcome::Unknown,
        },
        Some(_) => Outcome::Unknown,
    }
}

fn tree_outcome(e: &datatree::Error) -> Outcome {
    match e {
        datatree::Error::NodeExists(_) => Outcome::Exists,
        datatree::Error::NoNode(_) => Outcome::NoNode,
        datatree::Error::BadVersion(_) => Outcome::BadVersion,
        datatree::Error::NotEmpty(_) => Outcome::NotEmpty,
        _ => Outcome::Unknown,
    }
}

/// Projects one write op onto (path, kind).
fn project_write(w: &WriteOp) -> Option<(String, Kind, bool)> {
    match w {
        WriteOp::Create {
            path, data, mode, ..
        } => Some((
            path.clone(),
            Kind::Create(data.clone()),
            *mode == CreateMode::Persistent,
        )),
        WriteOp::SetData {
            path,
            data,
            version,
        } => Some((path.clone(), Kind::Set(data.clone(), *version), true)),
        WriteOp::Delete { path, version } => Some((path.clone(), Kind::Delete(*version), true)),
        WriteOp::Check { path, version } => Some((path.clone(), Kind::Check(*version), true)),
        _ => None,
    }
}

fn as_write(req: &Request) -> Option<WriteOp> {
    Some(match req {
        Request::Create {
            path,
            data,
            acl,
            mode,
            ttl_ms,
        } => WriteOp::Create {
            path: path.clone(),
            data: data.clone(),
            acl: acl.clone(),
            mode: *mode,
            ttl_ms: *ttl_ms,
        },
        Request::SetData {
            path,
            data,
            version,
        } => WriteOp::SetData {
            path: path.clone(),
            data: data.clone(),
            version: *version,
        },
        Request::Delete { path, version } => WriteOp::Delete {
            path: path.clone(),
            version: *version,
        },
        _ => return None,
    })
}

/// An error answered in the same instant it was asked: the leader's own local
/// failure, never replicated.
fn local_error(op: &OpRecord) -> bool {
    // Only definite (tree) errors: a connection loss in the same instant may follow a
    // forward that does commit.
    !op.outcome_unknown()
        && op
            .reply
            .as_ref()
            .is_some_and(|r| r.result.is_err() && r.at_us == op.invoke_us)
}

/// Builds the per-key histories. Keys touched by a non-persistent create, or twice by
/// one multi, are not registers and are left out. Unless `strict`, instant local
/// errors count as unknown outcomes.
fn per_key(history: &History, strict: bool) -> BTreeMap<String, Vec<LinOp>> {
    let mut keys: BTreeMap<String, Vec<LinOp>> = BTreeMap::new();
    let mut excluded: BTreeSet<String> = BTreeSet::new();
    let inf = u64::MAX;
    let push = |keys: &mut BTreeMap<String, Vec<LinOp>>,
                path: String,
                invoke: u64,
                ret: u64,
                kind: Kind,
                outcome: Outcome,
                what: String| {
        // A create that failed with NoNode saw its parent absent: a read of the parent.
        if let (Kind::Create(_), Outcome::NoNode) = (&kind, &outcome) {
            if let Some(parent) = datatree::path::parent(&path).filter(|p| *p != "/") {
                keys.entry(parent.to_string()).or_default().push(LinOp {
                    invoke,
                    ret,
                    kind: Kind::Read(None),
                    outcome: Outcome::Ok,
                    what: format!("{what} (parent absent)"),
                });
            }
        }
        keys.entry(path).or_default().push(LinOp {
            invoke,
            ret,
            kind,
            outcome,
            what,
        });
    };
    // Pair sync + getData on the same connection into linearizable reads.
    let mut by_conn: HashMap<u64, Vec<&OpRecord>> = HashMap::new();
    for op in &history.ops {
        by_conn.entry(op.conn.0).or_default().push(op);
    }
    for ops in by_conn.values() {
        for pair in ops.windows(2) {
            let (s, r) = (pair[0], pair[1]);
            let synced = matches!(s.req, Request::Sync { .. })
                && s.reply.as_ref().is_some_and(|x| x.result.is_ok());
            if !synced || r.xid.0 != s.xid.0 + 1 {
                continue;
            }
            let Request::GetData { path, .. } = &r.req else {
                continue;
            };
            let Some(reply) = &r.reply else { continue };
            let seen = match &reply.result {
                Ok(Response::Data(d, st)) => Some((d.clone(), st.version)),
                Err(Error::Tree(datatree::Error::NoNode(_))) => None,
                _ => continue,
            };
            let what = format!("c{} sync+getData -> {:?}", r.client, seen);
            push(
                &mut keys,
                path.clone(),
                s.invoke_us,
                reply.at_us,
                Kind::Read(seen),
                Outcome::Ok,
                what,
            );
        }
    }
    for op in &history.ops {
        if !strict && local_error(op) {
            continue;
        }
        let ret = op
            .reply
            .as_ref()
            .map_or(inf, |r| if op.outcome_unknown() { inf } else { r.at_us });
        let what = format!(
            "c{} xid{} {}",
            op.client,
            op.xid.0,
            crate::world::client::short(&op.req)
        );
        if let Request::Multi(ws) = &op.req {
            let mut seen = HashSet::new();
            for w in ws {
                if let Some((p, _, persistent)) = project_write(w) {
                    if !persistent || !seen.insert(p.clone()) {
                        excluded.insert(p);
                    }
                }
            }
            let results: Option<&Vec<OpResult>> = match op.reply.as_ref().map(|r| &r.result) {
                Some(Ok(Response::Multi(rs))) => Some(rs),
                Some(Err(Error::MultiFailed(rs))) => Some(rs),
                _ => None,
            };
            let failed = matches!(
                op.reply.as_ref().map(|r| &r.result),
                Some(Err(Error::MultiFailed(_)))
            );
            for (i, w) in ws.iter().enumerate() {
                let Some((p, kind, _)) = project_write(w) else {
                    continue;
                };
                let outcome = if op.outcome_unknown() {
                    Outcome::Unknown
                } else if failed {
                    match results.and_then(|rs| rs.get(i)) {
                        Some(OpResult::Error(e)) if *e != datatree::Error::RuntimeInconsistency => {
                            tree_outcome(e)
                        }
                        _ => continue,
                    }
                } else {
                    match results.and_then(|rs| rs.get(i)) {
                        Some(OpResult::DataSet { stat }) => Outcome::OkVersion(stat.version),
                        Some(_) => Outcome::Ok,
                        None => Outcome::Unknown,
                    }
                };
                if outcome == Outcome::Unknown && !op.outcome_unknown() {
                    continue;
                }
                push(&mut keys, p, op.invoke_us, ret, kind, outcome, what.clone());
            }
            continue;
        }
        let Some(w) = as_write(&op.req) else { continue };
        let Some((p, kind, persistent)) = project_write(&w) else {
            continue;
        };
        if !persistent {
            excluded.insert(p);
            continue;
        }
        let err = op.reply.as_ref().and_then(|r| r.result.as_ref().err());
        let mut outcome = outcome_of(op, err);
        if let (Outcome::Ok, Some(Ok(Response::Stat(st)))) =
            (&outcome, op.reply.as_ref().map(|r| &r.result))
        {
            outcome = Outcome::OkVersion(st.version);
        }
        if outcome == Outcome::Unknown && !op.outcome_unknown() {
            // A definite error this model does not describe (e.g. bad arguments).
            continue;
        }
        push(&mut keys, p, op.invoke_us, ret, kind, outcome, what);
    }
    for p in excluded {
        keys.remove(&p);
    }
    keys
}

/// Result of the search on one key.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Linearizable,
    NotLinearizable,
    Inconclusive,
}

struct Search<'a> {
    ops: &'a [LinOp],
    done: Vec<bool>,
    memo: HashSet<(Vec<u64>, State)>,
    steps: u64,
    required: usize,
}

impl Search<'_> {
    fn bits(&self) -> Vec<u64> {
        let mut v = vec![0u64; self.ops.len().div_ceil(64)];
        for (i, d) in self.done.iter().enumerate() {
            if *d {
                v[i / 64] |= 1 << (i % 64);
            }
        }
        v
    }

    /// Depth-first search; `linearized_required` counts completed ops placed so far.
    fn dfs(&mut self, state: &State, placed_required: usize) -> Option<bool> {
        if placed_required == self.required {
            return Some(true);
        }
        self.steps += 1;
        if self.steps > SEARCH_STEPS_MAX {
            return None;
        }
        if !self.memo.insert((self.bits(), state.clone())) {
            return Some(false);
        }
        let min_ret = self
            .ops
            .iter()
            .zip(&self.done)
            .filter(|(_, d)| !**d)
            .map(|(o, _)| o.ret)
            .min()
            .unwrap_or(u64::MAX);
        for i in 0..self.ops.len() {
            let op = &self.ops[i];
            if op.invoke > min_ret {
                break;
            }
            if self.done[i] {
                continue;
            }
            let Some(next) = step(state, op) else {
                continue;
            };
            self.done[i] = true;
            let add = usize::from(op.ret != u64::MAX);
            let r = self.dfs(&next, placed_required + add);
            self.done[i] = false;
            match r {
                Some(true) => return Some(true),
                None => return None,
                Some(false) => {}
            }
        }
        Some(false)
    }
}

fn check_key(ops: &mut [LinOp]) -> Verdict {
    ops.sort_by_key(|o| (o.invoke, o.ret));
    let required = ops.iter().filter(|o| o.ret != u64::MAX).count();
    let mut s = Search {
        ops,
        done: vec![false; ops.len()],
        memo: HashSet::new(),
        steps: 0,
        required,
    };
    match s.dfs(&None, 0) {
        Some(true) => Verdict::Linearizable,
        Some(false) => Verdict::NotLinearizable,
        None => Verdict::Inconclusive,
    }
}

/// Checks every register key of the history. Returns violations; inconclusive keys
/// (search budget exhausted) are not reported as violations. `strict`: see
/// [`crate::SimConfig::strict_local_errors`].
pub fn check(
    history: &History,
    strict: bool,
    coverage: &mut super::Coverage,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (key, mut ops) in per_key(history, strict) {
        coverage.lin_keys += 1;
        coverage.lin_ops += ops.len();
        match check_key(&mut ops) {
            Verdict::NotLinearizable => {}
            Verdict::Inconclusive => {
                coverage.lin_inconclusive += 1;
                continue;
            }
            Verdict::Linearizable => continue,
        }
        // The shortest failing prefix (by invocation) points at the culprit: prefixes
        // of a linearizable history are linearizable.
        let (mut lo, mut hi) = (1, ops.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let mut prefix = ops[..mid].to_vec();
            if check_key(&mut prefix) == Verdict::NotLinearizable {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        let end = hi.min(ops.len());
        let tail: Vec<String> = ops[end.saturating_sub(12)..end]
            .iter()
            .map(|o| {
                let ret = if o.ret == u64::MAX {
                    "?".to_string()
                } else {
                    format!("{:.3}", o.ret as f64 / 1000.0)
                };
                format!(
                    "[{:.3}..{ret}ms] {} => {:?}",
                    o.invoke as f64 / 1000.0,
                    o.what,
                    o.outcome
                )
            })
            .collect();
        out.push((
            NAME,
            format!(
                "history of {key} ({} ops) is not linearizable; it fails at op {end}, the last ops up to it:\n      {}",
                ops.len(),
                tail.join("\n      ")
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(invoke: u64, ret: u64, kind: Kind, outcome: Outcome) -> LinOp {
        LinOp {
            invoke,
            ret,
            kind,
            outcome,
            what: String::new(),
        }
    }

    fn b(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    #[test]
    fn sequential_register_history_is_linearizable() {
        let mut ops = vec![
            op(0, 1, Kind::Create(b("a")), Outcome::Ok),
            op(2, 3, Kind::Set(b("b"), 0), Outcome::OkVersion(1)),
            op(4, 5, Kind::Read(Some((b("b"), 1))), Outcome::Ok),
            op(6, 7, Kind::Delete(1), Outcome::Ok),
            op(8, 9, Kind::Read(None), Outcome::Ok),
        ];
        assert_eq!(check_key(&mut ops), Verdict::Linearizable);
    }

    /// A create whose parent is missing fails with NoNode and leaves the node
    /// absent (found by seed 170242: every create of the parent had ended in
    /// connection loss); a NoNode create cannot follow the node's own creation.
    #[test]
    fn a_create_under_a_missing_parent_leaves_the_node_absent() {
        let mut ops = vec![
            op(0, 1, Kind::Create(b("a")), Outcome::NoNode),
            op(2, 3, Kind::Read(None), Outcome::Ok),
            op(4, 5, Kind::Create(b("a")), Outcome::Ok),
        ];
        assert_eq!(check_key(&mut ops), Verdict::Linearizable);
        let mut ops = vec![
            op(0, 1, Kind::Create(b("a")), Outcome::Ok),
            op(2, 3, Kind::Create(b("b")), Outcome::NoNode),
        ];
        assert_eq!(check_key(&mut ops), Verdict::NotLinearizable);
    }

    /// A NoNode create also reads its parent as absent: after the parent's creation
    /// was acknowledged, it is a violation on the parent's key.
    #[test]
    fn a_nonode_create_after_its_parent_exists_is_caught() {
        use crate::history::Reply;
        use ensemble::{Acl, ConnId, Xid};
        let create = |path: &str, invoke: u64, at: u64, result| OpRecord {
            client: 0,
            session: None,
            server: 1,
            conn: ConnId(1),
            xid: Xid(invoke),
            req: Request::Create {
                path: path.into(),
                data: Bytes::new(),
                acl: Acl::open_unsafe(),
                mode: CreateMode::Persistent,
                ttl_ms: 0,
            },
            invoke_us: invoke,
            reply: Some(Reply {
                at_us: at,
                zxid: 1,
                result,
            }),
        };
        let no_node = || Err(Error::Tree(datatree::Error::NoNode("/r/k".into())));
        let created = |p: &str| {
            Ok(Response::Created {
                path: p.into(),
                stat: datatree::Stat::default(),
            })
        };
        let mut h = History::new(1);
        // The parent is created after the failed child create: fine.
        h.ops = vec![
            create("/r/k", 1, 2, no_node()),
            create("/r", 3, 4, created("/r")),
        ];
        let mut cov = crate::check::Coverage::default();
        assert!(check(&h, true, &mut cov).is_empty());
        // The parent existed (acknowledged) before the child create was invoked.
        h.ops = vec![
            create("/r", 1, 2, created("/r")),
            create("/r/k", 3, 4, no_node()),
        ];
        let v = check(&h, true, &mut cov);
        assert!(
            v.iter()
                .any(|(_, m)| m.contains("/r ") || m.contains("of /r ")),
            "{v:?}"
        );
    }

    #[test]
    fn stale_read_after_a_completed_write_is_caught() {
        let mut ops = vec![
            op(0, 1, Kind::Create(b("a")), Outcome::Ok),
            op(2, 3, Kind::Set(b("b"), -1), Outcome::OkVersion(1)),
            op(4, 5, Kind::Read(Some((b("a"), 0))), Outcome::Ok),
        ];
        assert_eq!(check_key(&mut ops), Verdict::NotLinearizable);
    }

    #[test]
    fn concurrent_ops_may_take_either_order() {
        let mut ops = vec![
            op(0, 1, Kind::Create(b("a")), Outcome::Ok),
            op(2, 10, Kind::Set(b("b"), -1), Outcome::OkVersion(1)),
            op(3, 4, Kind::Read(Some((b("a"), 0))), Outcome::Ok),
            op(5, 6, Kind::Read(Some((b("b"), 1))), Outcome::Ok),
        ];
        assert_eq!(check_key(&mut ops), Verdict::Linearizable);
    }

    #[test]
    fn unknown_write_may_or_may_not_happen() {
        let mut happened = vec![
            op(0, 1, Kind::Create(b("a")), Outcome::Ok),
            op(2, u64::MAX, Kind::Set(b("b"), -1), Outcome::Unknown),
            op(5, 6, Kind::Read(Some((b("b"), 1))), Outcome::Ok),
        ];
        assert_eq!(check_key(&mut happened), Verdict::Linearizable);
        let mut not = vec![
            op(0, 1, Kind::Create(b("a")), Outcome::Ok),
            op(2, u64::MAX, Kind::Set(b("b"), -1), Outcome::Unknown),
            op(5, 6, Kind::Read(Some((b("a"), 0))), Outcome::Ok),
        ];
        assert_eq!(check_key(&mut not), Verdict::Linearizable);
        // But it cannot take effect before it was invoked.
        let mut early = vec![
            op(0, 1, Kind::Create(b("a")), Outcome::Ok),
            op(3, 4, Kind::Read(Some((b("b"), 1))), Outcome::Ok),
            op(5, u64::MAX, Kind::Set(b("b"), -1), Outcome::Unknown),
        ];
        assert_eq!(check_key(&mut early), Verdict::NotLinearizable);
    }

    #[test]
    fn version_conditions_are_checked() {
        let mut ops = vec![
            op(0, 1, Kind::Create(b("a")), Outcome::Ok),
            op(2, 3, Kind::Set(b("b"), 0), Outcome::BadVersion),
        ];
        assert_eq!(check_key(&mut ops), Verdict::NotLinearizable);
        let mut ops = vec![
            op(0, 1, Kind::Create(b("a")), Outcome::Ok),
            op(2, 3, Kind::Create(b("c")), Outcome::Ok),
        ];
        assert_eq!(check_key(&mut ops), Verdict::NotLinearizable);
    }
}
