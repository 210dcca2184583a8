//! Model-based property tests: random operation sequences (multi and session close
//! included) run against the real tree and against a deliberately simple model written
//! straight from ZooKeeper's documented semantics. Results, error codes, every Stat,
//! child lists and raw changes must agree; snapshots must round-trip; digests must be
//! equal exactly when trees are.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use common::Local;
use datatree::*;
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct MNode {
    data: Vec<u8>,
    czxid: i64,
    mzxid: i64,
    pzxid: i64,
    ctime: i64,
    mtime: i64,
    version: i32,
    creates: i32,
    aversion: i32,
    ephemeral: bool,
    owner: i64,
    /// After a setACL (to READ-only for everyone) no one may change the node.
    readonly: bool,
    children: BTreeSet<String>,
}

impl MNode {
    fn new(zxid: i64, time: i64, data: Vec<u8>, ephemeral: bool, owner: i64) -> MNode {
        MNode {
            data,
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ctime: time,
            mtime: time,
            version: 0,
            creates: 0,
            aversion: 0,
            ephemeral,
            owner,
            readonly: false,
            children: BTreeSet::new(),
        }
    }

    fn stat(&self) -> Stat {
        let n = self.children.len() as i32;
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: 2 * self.creates - n,
            aversion: self.aversion,
            ephemeral_owner: if self.ephemeral { self.owner } else { 0 },
            data_length: self.data.len() as i32,
            num_children: n,
            pzxid: self.pzxid,
        }
    }
}

#[derive(Clone, Debug)]
struct Model {
    nodes: BTreeMap<String, MNode>,
}

fn parent_of(p: &str) -> String {
    let i = p.rfind('/').unwrap();
    if i == 0 {
        "/".into()
    } else {
        p[..i].into()
    }
}

fn name_of(p: &str) -> String {
    p[p.rfind('/').unwrap() + 1..].to_string()
}

#[derive(Clone, Debug)]
enum Op {
    Create {
        path: String,
        mode: CreateMode,
        data: Vec<u8>,
        session: i64,
    },
    Delete {
        path: String,
        version: i32,
    },
    SetData {
        path: String,
        data: Vec<u8>,
        version: i32,
    },
    SetAcl {
        path: String,
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
}

#[derive(Clone, Debug)]
enum Step {
    Single(Op),
    Multi(Vec<Op>),
    Close(i64),
}

/// Model result of one op: Ok(created path or "") or an error code.
type MResult = Result<String, i32>;

impl Model {
    fn new() -> Model {
        let mut nodes = BTreeMap::new();
        // ZooKeeper's initial tree: system nodes linked without counting as creates.
        let mut root = MNode::new(0, 0, vec![], false, 0);
        root.children.insert("zookeeper".into());
        let mut zk = MNode::new(0, 0, vec![], false, 0);
        zk.children.insert("quota".into());
        zk.children.insert("config".into());
        let mut config = MNode::new(0, 0, vec![], false, 0);
        config.aversion = -1;
        config.readonly = true;
        nodes.insert("/".into(), root);
        nodes.insert("/zookeeper".into(), zk);
        nodes.insert(
            "/zookeeper/quota".into(),
            MNode::new(0, 0, vec![], false, 0),
        );
        nodes.insert("/zookeeper/config".into(), config);
        Model { nodes }
    }

    fn check_version(expected: i32, actual: i32) -> Result<(), i32> {
        if expected != -1 && expected != actual {
            Err(-103)
        } else {
            Ok(())
        }
    }

    fn apply(
        &mut self,
        op: &Op,
        zxid: i64,
        time: i64,
        changes: &mut Vec<(String, ChangeKind)>,
    ) -> MResult {
        match op {
            Op::Create {
                path,
                mode,
                data,
                session,
            } => {
                let parent = parent_of(path);
                let Some(p) = self.nodes.get(&parent) else {
                    return Err(-101);
                };
                if p.readonly {
                    return Err(-102);
                }
                let full = if mode.is_sequential() {
                    format!("{path}{:010}", p.creates)
                } else {
                    path.clone()
                };
                if self.nodes.contains_key(&full) {
                    return Err(-110);
                }
                if p.ephemeral {
                    return Err(-108);
                }
                let p = self.nodes.get_mut(&parent).unwrap();
                p.creates += 1;
                p.pzxid = zxid;
                p.children.insert(name_of(&full));
                self.nodes.insert(
                    full.clone(),
                    MNode::new(zxid, time, data.clone(), mode.is_ephemeral(), *session),
                );
                changes.push((full.clone(), ChangeKind::Created));
                changes.push((parent, ChangeKind::ChildrenChanged));
                Ok(full)
            }
            Op::Delete { path, version } => {
                match self.nodes.get(&parent_of(path)) {
                    None => return Err(-101),
                    Some(p) if p.readonly => return Err(-102),
                    Some(_) => {}
                }
                let Some(n) = self.nodes.get(path) else {
                    return Err(-101);
                };
                Self::check_version(*version, n.version)?;
                if !n.children.is_empty() {
                    return Err(-111);
                }
                self.remove(path, zxid, changes);
                Ok(String::new())
            }
            Op::SetData {
                path,
                data,
                version,
            } => {
                let Some(n) = self.nodes.get_mut(path) else {
                    return Err(-101);
                };
                if n.readonly {
                    return Err(-102);
                }
                Self::check_version(*version, n.version)?;
                n.version += 1;
                n.data = data.clone();
                n.mzxid = zxid;
                n.mtime = time;
                changes.push((path.clone(), ChangeKind::DataChanged));
                Ok(String::new())
            }
            Op::SetAcl { path, version } => {
                let Some(n) = self.nodes.get_mut(path) else {
                    return Err(-101);
                };
                if n.readonly {
                    return Err(-102);
                }
                Self::check_version(*version, n.aversion)?;
                n.aversion += 1;
                n.readonly = true;
                Ok(String::new())
            }
            Op::Check { path, version } => {
                let Some(n) = self.nodes.get(path) else {
                    return Err(-101);
                };
                Self::check_version(*version, n.version)?;
                Ok(String::new())
            }
        }
    }

    fn remove(&mut self, path: &str, zxid: i64, changes: &mut Vec<(String, ChangeKind)>) {
        self.nodes.remove(path);
        let parent = parent_of(path);
        let p = self.nodes.get_mut(&parent).unwrap();
        p.children.remove(&name_of(path));
        p.pzxid = zxid;
        changes.push((path.to_string(), ChangeKind::Deleted));
        changes.push((parent, ChangeKind::ChildrenChanged));
    }
}

fn to_write(op: &Op) -> WriteOp {
    match op.clone() {
        Op::Create {
            path, mode, data, ..
        } => WriteOp::Create {
            path,
            data: Bytes::from(data),
            acl: Acl::open_unsafe(),
            mode,
            ttl_ms: 0,
        },
        Op::Delete { path, version } => WriteOp::Delete { path, version },
        Op::SetData {
            path,
            data,
            version,
        } => WriteOp::SetData {
            path,
            data: Bytes::from(data),
            version,
        },
        Op::SetAcl { path, version } => WriteOp::SetAcl {
            path,
            acl: Acl::read_unsafe(),
            version,
        },
        Op::Check { path, version } => WriteOp::Check { path, version },
    }
}

fn path_strategy() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "/a", "/b", "/a/x", "/a/y", "/b/x", "/a/x/z", "/a/s", "/a/x/s",
    ])
    .prop_map(String::from)
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let version = prop_oneof![3 => Just(-1), 1 => 0..3i32];
    let data = prop::collection::vec(any::<u8>(), 0..6);
    let mode = prop::sample::select(vec![
        CreateMode::Persistent,
        CreateMode::Persistent,
        CreateMode::Ephemeral,
        CreateMode::PersistentSequential,
        CreateMode::EphemeralSequential,
    ]);
    prop_oneof![
        4 => (path_strategy(), mode, data.clone(), 1..4i64).prop_map(|(path, mode, data, session)| Op::Create { path, mode, data, session }),
        2 => (path_strategy(), version.clone()).prop_map(|(path, version)| Op::Delete { path, version }),
        2 => (path_strategy(), data, version.clone()).prop_map(|(path, data, version)| Op::SetData { path, data, version }),
        1 => (path_strategy(), version.clone()).prop_map(|(path, version)| Op::SetAcl { path, version }),
        1 => (path_strategy(), version).prop_map(|(path, version)| Op::Check { path, version }),
    ]
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => op_strategy().prop_filter("check only in multi", |o| !matches!(o, Op::Check { .. })).prop_map(Step::Single),
        2 => prop::collection::vec(op_strategy().prop_filter("one session per multi, no setACL", |o| !matches!(o, Op::Create { session, .. } if *session != 1) && !matches!(o, Op::SetAcl { .. })), 1..5).prop_map(Step::Multi),
        1 => (1..4i64).prop_map(Step::Close),
    ]
}

fn session_of(op: &Op) -> i64 {
    match op {
        Op::Create { session, .. } => *session,
        _ => 1,
    }
}

/// Runs `steps` on both the tree and the model, asserting agreement after each.
fn run_and_compare(steps: &[Step]) -> Local {
    let mut t = Local::new();
    let mut m = Model::new();
    for step in steps {
        let zxid = t.zxid + 1;
        let time = t.time + 10;
        let mut expected_changes = Vec::new();
        match step {
            Step::Single(op) => {
                let mut scratch = m.clone();
                let expected = scratch.apply(op, zxid, time, &mut expected_changes);
                let got = t.run_as(session_of(op), &[], to_write(op));
                match (&expected, &got) {
                    (Ok(p), Ok(applied)) => {
                        m = scratch;
                        if let OpResult::Created { path, stat } = &applied.results[0] {
                            assert_eq!(path, p);
                            assert_eq!(*stat, m.nodes[p].stat());
                        }
                        let got_changes: Vec<_> = applied
                            .changes
                            .iter()
                            .map(|c| (c.path.to_string(), c.kind))
                            .collect();
                        assert_eq!(got_changes, expected_changes, "{op:?}");
                    }
                    (Err(code), Err(e)) => assert_eq!(e.error().code(), *code, "{op:?}"),
                    _ => panic!("{op:?}: model {expected:?} tree {got:?}"),
                }
            }
            Step::Multi(ops) => {
                let mut scratch = m.clone();
                let mut results = Vec::new();
                let mut failed = None;
                for (i, op) in ops.iter().enumerate() {
                    match scratch.apply(op, zxid, time, &mut expected_changes) {
                        Ok(p) => results.push(p),
                        Err(code) => {
                            failed = Some((i, code));
                            break;
                        }
                    }
                }
                let got = t.run_as(1, &[], WriteOp::Multi(ops.iter().map(to_write).collect()));
                match (failed, got) {
                    (None, Ok(applied)) => {
                        m = scratch;
                        assert_eq!(applied.results.len(), ops.len());
                        for (r, p) in applied.results.iter().zip(&results) {
                            if let OpResult::Created { path, .. } = r {
                                assert_eq!(path, p);
                            }
                        }
                        let got_changes: Vec<_> = applied
                            .changes
                            .iter()
                            .map(|c| (c.path.to_string(), c.kind))
                            .collect();
                        assert_eq!(got_changes, expected_changes);
                    }
                    (Some((i, code)), Err(PrepError::Multi(rs))) => {
                        assert_eq!(rs.len(), ops.len());
                        for (j, r) in rs.iter().enumerate() {
                            let c = match r {
                                OpResult::Ok => 0,
                                OpResult::Error(e) => e.code(),
                                other => panic!("unexpected {other:?}"),
                            };
                            let want = if j < i {
                                0
                            } else if j == i {
                                code
                            } else {
                                -2
                            };
                            assert_eq!(c, want, "op {j} of {ops:?}");
                        }
                    }
                    (f, g) => panic!("{ops:?}: model {f:?} tree {g:?}"),
                }
            }
            Step::Close(s) => {
                let owned: Vec<String> = m
                    .nodes
                    .iter()
                    .filter(|(_, n)| n.ephemeral && n.owner == *s)
                    .map(|(p, _)| p.clone())
                    .collect();
                for p in &owned {
                    m.remove(p, zxid, &mut expected_changes);
                }
                let applied = t.close_session(*s);
                let got_changes: Vec<_> = applied
                    .changes
                    .iter()
                    .map(|c| (c.path.to_string(), c.kind))
                    .collect();
                assert_eq!(got_changes, expected_changes);
                t.time = time;
            }
        }
        // Full state agreement after every step.
        let paths: BTreeSet<String> = t.tree.paths().into_iter().collect();
        let model_paths: BTreeSet<String> = m.nodes.keys().cloned().collect();
        assert_eq!(paths, model_paths);
        for (p, n) in &m.nodes {
            assert_eq!(t.tree.stat(p).unwrap(), n.stat(), "stat of {p}");
            assert_eq!(&t.tree.data(p).unwrap().0[..], &n.data[..]);
            let kids: Vec<String> = n.children.iter().cloned().collect();
            assert_eq!(t.tree.children(p).unwrap().0, kids);
        }
        for s in 1..4 {
            let want: Vec<String> = m
                .nodes
                .iter()
                .filter(|(_, n)| n.ephemeral && n.owner == s)
                .map(|(p, _)| p.clone())
                .collect();
            assert_eq!(t.tree.ephemerals(SessionId(s)), want);
        }
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn tree_matches_model(steps in prop::collection::vec(step_strategy(), 1..40)) {
        let t = run_and_compare(&steps);
        let bytes = t.tree.to_bytes();
        let back = DataTree::deserialize(&bytes[..]).unwrap();
        prop_assert_eq!(back.digest(), t.tree.digest());
        prop_assert_eq!(back.to_bytes(), bytes);
    }

    #[test]
    fn digests_equal_iff_trees_equal(
        a in prop::collection::vec(step_strategy(), 0..12),
        b in prop::collection::vec(step_strategy(), 0..12),
    ) {
        let ta = run_and_compare(&a);
        let tb = run_and_compare(&b);
        // Equal trees: identical snapshot bytes apart from the header's zxid (bytes
        // 12..20) and the CRC that covers it.
        let strip = |b: Vec<u8>| { let n = b.len(); [&b[..12], &b[20..n - 4]].concat() };
        let same_bytes = strip(ta.tree.to_bytes()) == strip(tb.tree.to_bytes());
        prop_assert_eq!(ta.tree.digest() == tb.tree.digest(), same_bytes);
    }

    #[test]
    fn truncated_or_flipped_snapshots_are_rejected(
        steps in prop::collection::vec(step_strategy(), 1..15),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        bit in 0..8u8,
    ) {
        let t = run_and_compare(&steps);
        let bytes = t.tree.to_bytes();
        let c = cut.index(bytes.len());
        prop_assert!(DataTree::deserialize(&bytes[..c]).is_err());
        let mut flipped = bytes.clone();
        flipped[flip.index(bytes.len())] ^= 1 << bit;
        prop_assert!(DataTree::deserialize(&flipped[..]).is_err());
    }

    #[test]
    fn txn_decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = datatree::txn_codec::decode(&bytes);
        let _ = DataTree::deserialize(&bytes[..]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// An incremental snapshot taken while random txns keep being applied between its
    /// steps reads back as exactly the tree at the snapshot point.
    #[test]
    fn incremental_snapshot_is_consistent_under_concurrent_writes(
        before in prop::collection::vec(step_strategy(), 0..25),
        during in prop::collection::vec(step_strategy(), 0..25),
        chunk in 1..6usize,
    ) {
        let mut t = run_and_compare(&before);
        let expected = t.tree.to_bytes();
        let mut out = Vec::new();
        t.tree.begin_snapshot(&mut out).unwrap();
        let mut steps = during.iter();
        loop {
            let progress = t.tree.snapshot_step(chunk, &mut out).unwrap();
            if progress == SnapshotProgress::Done {
                break;
            }
            // Apply one more random step between snapshot steps (errors are fine).
            if let Some(step) = steps.next() {
                match step {
                    Step::Single(op) => { let _ = t.run_as(session_of(op), &[], to_write(op)); }
                    Step::Multi(ops) => { let _ = t.run_as(1, &[], WriteOp::Multi(ops.iter().map(to_write).collect())); }
                    Step::Close(s) => { t.close_session(*s); }
                }
            }
        }
        let back = DataTree::deserialize(&out[..]).unwrap();
        prop_assert_eq!(back.to_bytes(), expected);
    }

    /// Two incremental snapshots that overlap (the periodic one and one a leader
    /// streams to a learner) each read back as the tree at its own start, with
    /// random txns applied between all their steps.
    #[test]
    fn overlapping_snapshot_streams_are_each_consistent(
        before in prop::collection::vec(step_strategy(), 0..20),
        between in prop::collection::vec(step_strategy(), 0..10),
        during in prop::collection::vec(step_strategy(), 0..25),
        chunks in (1..6usize, 1..6usize),
    ) {
        let apply = |t: &mut Local, step: &Step| match step {
            Step::Single(op) => { let _ = t.run_as(session_of(op), &[], to_write(op)); }
            Step::Multi(ops) => { let _ = t.run_as(1, &[], WriteOp::Multi(ops.iter().map(to_write).collect())); }
            Step::Close(s) => { t.close_session(*s); }
        };
        let mut t = run_and_compare(&before);
        let first = t.tree.to_bytes();
        let mut a = Vec::new();
        t.tree.begin_snapshot(&mut a).unwrap();
        // The first stream advances a step per txn while the second is not yet begun.
        let mut a_done = false;
        for step in &between {
            if !a_done {
                a_done = t.tree.snapshot_step(chunks.0, &mut a).unwrap() == SnapshotProgress::Done;
            }
            apply(&mut t, step);
        }
        let second = t.tree.to_bytes();
        let mut b = Vec::new();
        t.tree.begin_snapshot_stream(7, &mut b).unwrap();
        prop_assert_eq!(
            t.tree.begin_snapshot_stream(7, &mut Vec::new()),
            Err(SnapshotStateError::AlreadyRunning)
        );
        let mut b_done = false;
        let mut steps = during.iter();
        while !(a_done && b_done) {
            if !a_done {
                a_done = t.tree.snapshot_step(chunks.0, &mut a).unwrap() == SnapshotProgress::Done;
            }
            if !b_done {
                b_done = t.tree.snapshot_stream_step(7, chunks.1, &mut b).unwrap() == SnapshotProgress::Done;
            }
            if let Some(step) = steps.next() {
                apply(&mut t, step);
            }
        }
        prop_assert!(!t.tree.snapshot_in_progress() && !t.tree.snapshot_stream_in_progress(7));
        prop_assert_eq!(DataTree::deserialize(&a[..]).unwrap().to_bytes(), first);
        prop_assert_eq!(DataTree::deserialize(&b[..]).unwrap().to_bytes(), second);
    }
}

/// Prepares `steps` one after another while applying each prepared txn only once
/// `lag` later ones have been prepared (the leader's pipeline: proposals are prepared
/// against the overlay of in-flight changes, not the applied tree). Returns every
/// preparation's outcome and the final tree.
fn prepare_pipelined(steps: &[Step], lag: usize) -> (Vec<Result<TxnOp, PrepError>>, DataTree) {
    let mut tree = DataTree::new();
    let mut prep = Prep::default();
    let mut in_flight: std::collections::VecDeque<Txn> = std::collections::VecDeque::new();
    let mut outcomes = Vec::new();
    let apply = |tree: &mut DataTree, prep: &mut Prep, txn: Txn| {
        tree.apply(&txn).expect("a prepared txn must apply");
        prep.handle_applied(txn.zxid);
    };
    for (i, step) in steps.iter().enumerate() {
        let zxid = i as i64 + 1;
        let time_ms = 1_000 + 10 * zxid;
        let r = match step {
            Step::Single(op) => {
                let ctx = PrepContext {
                    session: SessionId(session_of(op)),
                    auth: &[],
                    zxid,
                };
                // The pipelined runs take requests by value (as the leader does), the
                // serial one by reference: the comparison covers both entry points.
                if lag > 0 {
                    prep.prepare_owned(&tree, &ctx, to_write(op))
                } else {
                    prep.prepare(&tree, &ctx, &to_write(op))
                }
            }
            Step::Multi(ops) => {
                let ctx = PrepContext {
                    session: SessionId(1),
                    auth: &[],
                    zxid,
                };
                prep.prepare(
                    &tree,
                    &ctx,
                    &WriteOp::Multi(ops.iter().map(to_write).collect()),
                )
            }
            Step::Close(s) => Ok(prep.prepare_close_session(&tree, SessionId(*s), zxid)),
        };
        if let Ok(op) = &r {
            in_flight.push_back(Txn {
                zxid,
                time_ms,
                op: op.clone(),
            });
        }
        outcomes.push(r);
        while in_flight.len() > lag {
            let txn = in_flight.pop_front().expect("non-empty");
            apply(&mut tree, &mut prep, txn);
        }
    }
    for txn in in_flight {
        apply(&mut tree, &mut prep, txn);
    }
    assert_eq!(
        prep.pending_paths(),
        0,
        "every overlay entry goes once its txn is applied"
    );
    (outcomes, tree)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Preparing against in-flight changes gives the same txns and errors as
    /// preparing each request against a tree that has applied everything before it.
    #[test]
    fn pipelined_preparation_matches_one_at_a_time(
        steps in prop::collection::vec(step_strategy(), 1..60),
        lag in 1..12usize,
    ) {
        let (serial, serial_tree) = prepare_pipelined(&steps, 0);
        let (piped, piped_tree) = prepare_pipelined(&steps, lag);
        for (i, (a, b)) in serial.iter().zip(&piped).enumerate() {
            prop_assert_eq!(a, b, "step {} ({:?}) with lag {}", i, &steps[i], lag);
        }
        prop_assert_eq!(serial_tree.digest(), piped_tree.digest());
        prop_assert_eq!(serial_tree.to_bytes(), piped_tree.to_bytes());
    }
}
