//! End to end: real operations on the tree, their raw changes fed to the watch
//! registry, and the events each session receives (the table of shared/ZK-SEMANTICS.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::{create_op, Local};
use datatree::*;

fn fire(t: &mut Local, w: &mut WatchRegistry, op: WriteOp) -> Vec<(i64, EventType, String)> {
    let applied = t.run(op).unwrap();
    w.trigger(&applied.changes, t.zxid)
        .into_iter()
        .map(|(s, e)| (s.0, e.event_type, e.path.to_string()))
        .collect()
}

#[test]
fn which_watch_fires_for_which_operation() {
    use EventType::*;
    use WatcherKind::*;
    // (operation, watch kind, watched path, expected events for the watching session)
    type Case = (
        &'static str,
        WatcherKind,
        &'static str,
        Vec<(EventType, &'static str)>,
    );
    let cases: Vec<Case> = vec![
        ("create /p/c", Exists, "/p/c", vec![(NodeCreated, "/p/c")]),
        (
            "create /p/c",
            Child,
            "/p",
            vec![(NodeChildrenChanged, "/p")],
        ),
        ("create /p/c", Data, "/p", vec![]),
        (
            "create /p/c",
            PersistentRecursive,
            "/p",
            vec![(NodeCreated, "/p/c")],
        ),
        (
            "create /p/c",
            Persistent,
            "/p",
            vec![(NodeChildrenChanged, "/p")],
        ),
        ("delete /p/k", Data, "/p/k", vec![(NodeDeleted, "/p/k")]),
        ("delete /p/k", Exists, "/p/k", vec![(NodeDeleted, "/p/k")]),
        ("delete /p/k", Child, "/p/k", vec![(NodeDeleted, "/p/k")]),
        (
            "delete /p/k",
            Child,
            "/p",
            vec![(NodeChildrenChanged, "/p")],
        ),
        (
            "delete /p/k",
            PersistentRecursive,
            "/",
            vec![(NodeDeleted, "/p/k")],
        ),
        ("set /p/k", Data, "/p/k", vec![(NodeDataChanged, "/p/k")]),
        ("set /p/k", Child, "/p/k", vec![]),
        ("set /p/k", Child, "/p", vec![]),
        (
            "set /p/k",
            PersistentRecursive,
            "/p",
            vec![(NodeDataChanged, "/p/k")],
        ),
        ("setacl /p/k", Data, "/p/k", vec![]),
        ("setacl /p/k", PersistentRecursive, "/p", vec![]),
    ];
    for (op, kind, watched, expected) in cases {
        let mut t = Local::new();
        t.create("/p", CreateMode::Persistent).unwrap();
        t.create("/p/k", CreateMode::Persistent).unwrap();
        let mut w = WatchRegistry::new();
        w.add(SessionId(7), watched, kind);
        let write = match op {
            "create /p/c" => create_op("/p/c", b"", CreateMode::Persistent, 0),
            "delete /p/k" => WriteOp::Delete {
                path: "/p/k".into(),
                version: -1,
            },
            "set /p/k" => WriteOp::SetData {
                path: "/p/k".into(),
                data: Bytes::from_static(b"x"),
                version: -1,
            },
            "setacl /p/k" => WriteOp::SetAcl {
                path: "/p/k".into(),
                acl: Acl::open_unsafe(),
                version: -1,
            },
            _ => unreachable!(),
        };
        let got: Vec<(EventType, String)> = fire(&mut t, &mut w, write)
            .into_iter()
            .map(|(_, e, p)| (e, p))
            .collect();
        let want: Vec<(EventType, String)> = expected
            .into_iter()
            .map(|(e, p)| (e, p.to_string()))
            .collect();
        assert_eq!(got, want, "{op} with {kind:?} on {watched}");
    }
}

#[test]
fn one_event_per_session_and_change_and_one_shot_consumption() {
    let mut t = Local::new();
    t.create("/a", CreateMode::Persistent).unwrap();
    let mut w = WatchRegistry::new();
    w.add(SessionId(1), "/a", WatcherKind::Exists);
    w.add(SessionId(1), "/a", WatcherKind::Data);
    w.add(SessionId(2), "/a", WatcherKind::Data);
    let ev = fire(
        &mut t,
        &mut w,
        WriteOp::SetData {
            path: "/a".into(),
            data: Bytes::new(),
            version: -1,
        },
    );
    assert_eq!(
        ev,
        vec![
            (1, EventType::NodeDataChanged, "/a".into()),
            (2, EventType::NodeDataChanged, "/a".into())
        ]
    );
    let ev = fire(
        &mut t,
        &mut w,
        WriteOp::SetData {
            path: "/a".into(),
            data: Bytes::new(),
            version: -1,
        },
    );
    assert!(ev.is_empty(), "one-shot watches were consumed");
}

#[test]
fn session_close_fires_node_deleted_for_its_own_watched_ephemerals() {
    let mut t = Local::new();
    t.run_as(5, &[], create_op("/e", b"", CreateMode::Ephemeral, 0))
        .unwrap();
    let mut w = WatchRegistry::new();
    w.add(SessionId(5), "/e", WatcherKind::Data);
    w.add(SessionId(6), "/", WatcherKind::Child);
    let applied = t.close_session(5);
    let ev: Vec<_> = w
        .trigger(&applied.changes, t.zxid)
        .into_iter()
        .map(|(s, e)| (s.0, e.event_type))
        .collect();
    assert_eq!(
        ev,
        vec![
            (5, EventType::NodeDeleted),
            (6, EventType::NodeChildrenChanged)
        ]
    );
    w.remove_session(SessionId(5));
    assert_eq!(w.session_watch_count(SessionId(5)), 0);
}

#[test]
fn multi_fires_in_op_order_at_one_zxid() {
    let mut t = Local::new();
    t.create("/m", CreateMode::Persistent).unwrap();
    let mut w = WatchRegistry::new();
    w.add(SessionId(1), "/m", WatcherKind::PersistentRecursive);
    let applied = t
        .run(WriteOp::Multi(vec![
            create_op("/m/a", b"", CreateMode::Persistent, 0),
            WriteOp::SetData {
                path: "/m/a".into(),
                data: Bytes::from_static(b"1"),
                version: 0,
            },
            WriteOp::Delete {
                path: "/m/a".into(),
                version: 1,
            },
        ]))
        .unwrap();
    let ev = w.trigger(&applied.changes, t.zxid);
    let kinds: Vec<_> = ev.iter().map(|(_, e)| (e.event_type, e.zxid)).collect();
    assert_eq!(
        kinds,
        vec![
            (EventType::NodeCreated, t.zxid),
            (EventType::NodeDataChanged, t.zxid),
            (EventType::NodeDeleted, t.zxid)
        ]
    );
}
