//! Table and scenario tests of the watch registry against ZooKeeper 3.9's rules.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure report

use std::sync::Arc;

use super::{NoWatcher, WatchRegistry};
use crate::event::{
    Change, ChangeKind, EventType, SessionId, WatchedEvent, WatcherKind, WatcherType,
};

use ChangeKind::{ChildrenChanged, Created, DataChanged, Deleted};
use EventType::{NodeChildrenChanged, NodeCreated, NodeDataChanged, NodeDeleted};

const S1: SessionId = SessionId(1);
const S2: SessionId = SessionId(2);
const S3: SessionId = SessionId(3);

const ALL_KINDS: [WatcherKind; 5] = [
    WatcherKind::Data,
    WatcherKind::Exists,
    WatcherKind::Child,
    WatcherKind::Persistent,
    WatcherKind::PersistentRecursive,
];
const ALL_CHANGES: [ChangeKind; 4] = [Created, Deleted, DataChanged, ChildrenChanged];

fn change(kind: ChangeKind, path: &str) -> Change {
    Change {
        path: Arc::from(path),
        kind,
    }
}

fn event(
    session: SessionId,
    event_type: EventType,
    path: &str,
    zxid: i64,
) -> (SessionId, WatchedEvent) {
    (
        session,
        WatchedEvent {
            event_type,
            path: Arc::from(path),
            zxid,
        },
    )
}

/// The raw changes the tree reports for a create of `path` (whose parent is `parent`).
fn create(path: &str, parent: &str) -> Vec<Change> {
    vec![change(Created, path), change(ChildrenChanged, parent)]
}

/// The raw changes the tree reports for a delete of `path` (whose parent is `parent`).
fn delete(path: &str, parent: &str) -> Vec<Change> {
    vec![change(Deleted, path), change(ChildrenChanged, parent)]
}

fn set_data(path: &str) -> Vec<Change> {
    vec![change(DataChanged, path)]
}

/// A watch on the changed path itself: (kind, change, event fired, watch still there).
const SAME_PATH: [(WatcherKind, ChangeKind, Option<EventType>, bool); 20] = [
    (WatcherKind::Data, Created, Some(NodeCreated), false),
    (WatcherKind::Data, Deleted, Some(NodeDeleted), false),
    (WatcherKind::Data, DataChanged, Some(NodeDataChanged), false),
    (WatcherKind::Data, ChildrenChanged, None, true),
    (WatcherKind::Exists, Created, Some(NodeCreated), false),
    (WatcherKind::Exists, Deleted, Some(NodeDeleted), false),
    (
        WatcherKind::Exists,
        DataChanged,
        Some(NodeDataChanged),
        false,
    ),
    (WatcherKind::Exists, ChildrenChanged, None, true),
    (WatcherKind::Child, Created, None, true),
    (WatcherKind::Child, Deleted, Some(NodeDeleted), false),
    (WatcherKind::Child, DataChanged, None, true),
    (
        WatcherKind::Child,
        ChildrenChanged,
        Some(NodeChildrenChanged),
        false,
    ),
    (WatcherKind::Persistent, Created, Some(NodeCreated), true),
    (WatcherKind::Persistent, Deleted, Some(NodeDeleted), true),
    (
        WatcherKind::Persistent,
        DataChanged,
        Some(NodeDataChanged),
        true,
    ),
    (
        WatcherKind::Persistent,
        ChildrenChanged,
        Some(NodeChildrenChanged),
        true,
    ),
    (
        WatcherKind::PersistentRecursive,
        Created,
        Some(NodeCreated),
        true,
    ),
    (
        WatcherKind::PersistentRecursive,
        Deleted,
        Some(NodeDeleted),
        true,
    ),
    (
        WatcherKind::PersistentRecursive,
        DataChanged,
        Some(NodeDataChanged),
        true,
    ),
    (
        WatcherKind::PersistentRecursive,
        ChildrenChanged,
        None,
        true,
    ),
];

/// A watch on a strict ancestor (parent, grandparent, root) of the changed path:
/// only recursive watches hear of it, and never of NodeChildrenChanged.
const ANCESTOR: [(WatcherKind, ChangeKind, Option<EventType>); 20] = [
    (WatcherKind::Data, Created, None),
    (WatcherKind::Data, Deleted, None),
    (WatcherKind::Data, DataChanged, None),
    (WatcherKind::Data, ChildrenChanged, None),
    (WatcherKind::Exists, Created, None),
    (WatcherKind::Exists, Deleted, None),
    (WatcherKind::Exists, DataChanged, None),
    (WatcherKind::Exists, ChildrenChanged, None),
    (WatcherKind::Child, Created, None),
    (WatcherKind::Child, Deleted, None),
    (WatcherKind::Child, DataChanged, None),
    (WatcherKind::Child, ChildrenChanged, None),
    (WatcherKind::Persistent, Created, None),
    (WatcherKind::Persistent, Deleted, None),
    (WatcherKind::Persistent, DataChanged, None),
    (WatcherKind::Persistent, ChildrenChanged, None),
    (WatcherKind::PersistentRecursive, Created, Some(NodeCreated)),
    (WatcherKind::PersistentRecursive, Deleted, Some(NodeDeleted)),
    (
        WatcherKind::PersistentRecursive,
        DataChanged,
        Some(NodeDataChanged),
    ),
    (WatcherKind::PersistentRecursive, ChildrenChanged, None),
];

#[test]
fn table_watch_on_the_changed_path() {
    for (kind, change_kind, want, stays) in SAME_PATH {
        let mut reg = WatchRegistry::new();
        assert!(reg.add(S1, "/a/b", kind));
        let got = reg.trigger(&[change(change_kind, "/a/b")], 9);
        let want: Vec<_> = want.map(|t| event(S1, t, "/a/b", 9)).into_iter().collect();
        assert_eq!(got, want, "{kind:?} watch, {change_kind:?} change");
        let left = if stays { vec![kind] } else { vec![] };
        assert_eq!(
            reg.kinds_on(S1, "/a/b"),
            left,
            "{kind:?} after {change_kind:?}"
        );
    }
}

#[test]
fn table_watch_on_an_ancestor_of_the_changed_path() {
    for (watched, changed) in [
        ("/a", "/a/b"),
        ("/a", "/a/b/c/d"),
        ("/", "/a"),
        ("/", "/a/b"),
    ] {
        for (kind, change_kind, want) in ANCESTOR {
            let mut reg = WatchRegistry::new();
            reg.add(S1, watched, kind);
            let got = reg.trigger(&[change(change_kind, changed)], 4);
            let want: Vec<_> = want.map(|t| event(S1, t, changed, 4)).into_iter().collect();
            assert_eq!(
                got, want,
                "{kind:?} on {watched}, {change_kind:?} of {changed}"
            );
            assert_eq!(
                reg.kinds_on(S1, watched),
                vec![kind],
                "an ancestor's watch stays"
            );
        }
    }
}

#[test]
fn table_watch_on_unrelated_paths_never_fires() {
    // Descendants, siblings, and paths sharing only a string prefix ("/ab" vs "/a").
    for (watched, changed) in [
        ("/a/b", "/a"),
        ("/a/b/c", "/a"),
        ("/a/c", "/a/b"),
        ("/ab", "/a"),
        ("/a", "/ab"),
    ] {
        for kind in ALL_KINDS {
            for change_kind in ALL_CHANGES {
                let mut reg = WatchRegistry::new();
                reg.add(S1, watched, kind);
                let got = reg.trigger(&[change(change_kind, changed)], 1);
                assert_eq!(
                    got,
                    vec![],
                    "{kind:?} on {watched}, {change_kind:?} of {changed}"
                );
                assert_eq!(reg.kinds_on(S1, watched), vec![kind]);
            }
        }
    }
}

#[test]
fn create_fires_node_created_then_parent_children_changed() {
    let mut reg = WatchRegistry::new();
    reg.add(S1, "/a/b", WatcherKind::Exists);
    reg.add(S2, "/a", WatcherKind::Child);
    reg.add(S3, "/a", WatcherKind::Data);
    let got = reg.trigger(&create("/a/b", "/a"), 5);
    assert_eq!(
        got,
        vec![
            event(S1, NodeCreated, "/a/b", 5),
            event(S2, NodeChildrenChanged, "/a", 5)
        ]
    );
    // The parent's data watch did not fire and is still there.
    assert_eq!(reg.kinds_on(S3, "/a"), vec![WatcherKind::Data]);
    assert_eq!(reg.watch_count(), 1);
}

#[test]
fn delete_consumes_data_exists_and_child_watches_with_one_event() {
    let mut reg = WatchRegistry::new();
    for kind in [WatcherKind::Data, WatcherKind::Exists, WatcherKind::Child] {
        reg.add(S1, "/a/b", kind);
    }
    reg.add(S1, "/a", WatcherKind::Child);
    let got = reg.trigger(&delete("/a/b", "/a"), 6);
    assert_eq!(
        got,
        vec![
            event(S1, NodeDeleted, "/a/b", 6),
            event(S1, NodeChildrenChanged, "/a", 6)
        ]
    );
    assert!(reg.is_empty());
    assert_eq!(reg.trigger(&delete("/a/b", "/a"), 7), vec![]);
}

#[test]
fn set_data_fires_data_and_exists_once_and_not_child() {
    let mut reg = WatchRegistry::new();
    reg.add(S1, "/a", WatcherKind::Data);
    reg.add(S1, "/a", WatcherKind::Exists);
    reg.add(S2, "/a", WatcherKind::Child);
    assert_eq!(
        reg.trigger(&set_data("/a"), 3),
        vec![event(S1, NodeDataChanged, "/a", 3)]
    );
    assert_eq!(reg.trigger(&set_data("/a"), 4), vec![]);
    assert_eq!(reg.kinds_on(S2, "/a"), vec![WatcherKind::Child]);
}

#[test]
fn set_acl_fires_nothing() {
    let mut reg = WatchRegistry::new();
    for kind in ALL_KINDS {
        reg.add(S1, "/a", kind);
    }
    // The tree reports no change for setACL.
    assert_eq!(reg.trigger(&[], 2), vec![]);
    assert_eq!(reg.kinds_on(S1, "/a"), ALL_KINDS.to_vec());
}

#[test]
fn persistent_and_one_shot_on_same_path_fire_once_and_consume_the_one_shot() {
    let mut reg = WatchRegistry::new();
    reg.add(S1, "/a", WatcherKind::Persistent);
    reg.add(S1, "/a", WatcherKind::Data);
    reg.add(S1, "/a", WatcherKind::Child);
    assert_eq!(
        reg.trigger(&set_data("/a"), 1),
        vec![event(S1, NodeDataChanged, "/a", 1)]
    );
    assert_eq!(
        reg.kinds_on(S1, "/a"),
        vec![WatcherKind::Child, WatcherKind::Persistent]
    );
    let got = reg.trigger(&[change(ChildrenChanged, "/a")], 2);
    assert_eq!(got, vec![event(S1, NodeChildrenChanged, "/a", 2)]);
    assert_eq!(reg.kinds_on(S1, "/a"), vec![WatcherKind::Persistent]);
}

#[test]
fn persistent_watch_survives_delete_and_sees_recreate() {
    let mut reg = WatchRegistry::new();
    reg.add(S1, "/a/b", WatcherKind::Persistent);
    let got = reg.trigger(&delete("/a/b", "/a"), 1);
    assert_eq!(got, vec![event(S1, NodeDeleted, "/a/b", 1)]);
    let got = reg.trigger(&create("/a/b", "/a"), 2);
    assert_eq!(got, vec![event(S1, NodeCreated, "/a/b", 2)]);
    assert_eq!(reg.watch_count(), 2);
}

#[test]
fn recursive_watch_sees_child_delete_as_node_deleted_only() {
    let mut reg = WatchRegistry::new();
    reg.add(S1, "/a", WatcherKind::PersistentRecursive);
    assert_eq!(
        reg.trigger(&create("/a/b", "/a"), 1),
        vec![event(S1, NodeCreated, "/a/b", 1)]
    );
    assert_eq!(
        reg.trigger(&delete("/a/b", "/a"), 2),
        vec![event(S1, NodeDeleted, "/a/b", 2)]
    );
    assert_eq!(
        reg.trigger(&delete("/a", "/"), 3),
        vec![event(S1, NodeDeleted, "/a", 3)]
    );
    assert_eq!(
        reg.kinds_on(S1, "/a"),
        vec![WatcherKind::PersistentRecursive]
    );
}

#[test]
fn recursive_on_ancestor_and_data_watch_on_child_give_one_event() {
    let mut reg = WatchRegistry::new();
    reg.add(S1, "/a", WatcherKind::PersistentRecursive);
    reg.add(S1, "/a/b", WatcherKind::Data);
    reg.add(S2, "/a/b", WatcherKind::Data);
    let got = reg.trigger(&set_data("/a/b"), 1);
    assert_eq!(
        got,
        vec![
            event(S1, NodeDataChanged, "/a/b", 1),
            event(S2, NodeDataChanged, "/a/b", 1)
        ]
    );
    // The one-shot watches are consumed even for S1, whom the recursive watch covered.
    assert_eq!(reg.kinds_on(S1, "/a/b"), vec![]);
    assert_eq!(
        reg.trigger(&set_data("/a/b"), 2),
        vec![event(S1, NodeDataChanged, "/a/b", 2)]
    );
}

#[test]
fn recursive_and_persistent_on_same_path_split_a_create() {
    let mut reg = WatchRegistry::new();
    reg.add(S1, "/a", WatcherKind::PersistentRecursive);
    reg.add(S1, "/a", WatcherKind::Persistent);
    let got = reg.trigger(&create("/a/b", "/a"), 1);
    assert_eq!(
        got,
        vec![
            event(S1, NodeCreated, "/a/b", 1),
            event(S1, NodeChildrenChanged, "/a", 1)
        ]
    );
}

#[test]
fn nested_recursive_watches_of_one_session_give_one_event() {
    let mut reg = WatchRegistry::new();
    reg.add(S2, "/", WatcherKind::PersistentRecursive);
    reg.add(S2, "/a", WatcherKind::PersistentRecursive);
    reg.add(S2, "/a/b/c", WatcherKind::PersistentRecursive);
    reg.add(S1, "/a/b", WatcherKind::PersistentRecursive);
    let got = reg.trigger(&set_data("/a/b/c"), 1);
    assert_eq!(
        got,
        vec![
            event(S1, NodeDataChanged, "/a/b/c", 1),
            event(S2, NodeDataChanged, "/a/b/c", 1)
        ]
    );
}

#[test]
fn sessions_come_in_ascending_id_order_whatever_the_registration_order() {
    let mut reg = WatchRegistry::new();
    reg.add(SessionId(30), "/x", WatcherKind::Data);
    reg.add(SessionId(-5), "/", WatcherKind::PersistentRecursive);
    reg.add(SessionId(10), "/x", WatcherKind::Exists);
    reg.add(SessionId(20), "/", WatcherKind::PersistentRecursive);
    let got = reg.trigger(&set_data("/x"), 1);
    let order: Vec<i64> = got.iter().map(|(s, _)| s.0).collect();
    assert_eq!(order, vec![-5, 10, 20, 30]);
}

#[test]
fn events_follow_change_order_and_multi_fires_per_change() {
    let mut reg = WatchRegistry::new();
    reg.add(S1, "/a", WatcherKind::Persistent);
    reg.add(S2, "/a", WatcherKind::Data);
    // A multi with setData /a twice then a create of /a/b.
    let mut changes = set_data("/a");
    changes.extend(set_data("/a"));
    changes.extend(create("/a/b", "/a"));
    let got = reg.trigger(&changes, 8);
    let want = vec![
        event(S1, NodeDataChanged, "/a", 8),
        event(S2, NodeDataChanged, "/a", 8),
        event(S1, NodeDataChanged, "/a", 8),
        event(S1, NodeChildrenChanged, "/a", 8),
    ];
    assert_eq!(got, want);
}

#[test]
fn trigger_into_appends_and_empty_trigger_allocates_nothing() {
    let mut reg = WatchRegistry::new();
    reg.add(S1, "/watched", WatcherKind::Persistent);
    let got = reg.trigger(&create("/other", "/"), 1);
    assert_eq!(got.capacity(), 0, "no event, no allocation");
    let mut out = vec![event(S3, NodeCreated, "/earlier", 0)];
    reg.trigger_into(&set_data("/watched"), 2, &mut out);
    assert_eq!(
        out,
        vec![
            event(S3, NodeCreated, "/earlier", 0),
            event(S1, NodeDataChanged, "/watched", 2)
        ]
    );
}

#[test]
fn add_reports_whether_the_watch_is_new() {
    let mut reg = WatchRegistry::new();
    assert!(reg.add(S1, "/a", WatcherKind::Data));
    assert!(!reg.add(S1, "/a", WatcherKind::Data));
    assert!(reg.add(S1, "/a", WatcherKind::Exists));
    assert!(reg.add(S2, "/a", WatcherKind::Data));
    assert_eq!(reg.watch_count(), 2);
}

#[test]
fn remove_selects_kinds_as_zookeeper_3_9() {
    // (registered kind, removal type, removed?)
    let table = [
        (WatcherKind::Data, WatcherType::Data, true),
        (WatcherKind::Exists, WatcherType::Data, true),
        (WatcherKind::Child, WatcherType::Data, false),
        (WatcherKind::Persistent, WatcherType::Data, false),
        (WatcherKind::PersistentRecursive, WatcherType::Data, false),
        (WatcherKind::Data, WatcherType::Children, false),
        (WatcherKind::Child, WatcherType::Children, true),
        (WatcherKind::Persistent, WatcherType::Children, false),
        (WatcherKind::Persistent, WatcherType::Persistent, true),
        (
            WatcherKind::PersistentRecursive,
            WatcherType::Persistent,
            false,
        ),
        (
            WatcherKind::PersistentRecursive,
            WatcherType::PersistentRecursive,
            true,
        ),
        (
            WatcherKind::Persistent,
            WatcherType::PersistentRecursive,
            false,
        ),
        (WatcherKind::Data, WatcherType::Any, true),
        (WatcherKind::Exists, WatcherType::Any, true),
        (WatcherKind::Child, WatcherType::Any, true),
        (WatcherKind::Persistent, WatcherType::Any, true),
        (WatcherKind::PersistentRecursive, WatcherType::Any, true),
    ];
    for (kind, which, removed) in table {
        let mut reg = WatchRegistry::new();
        reg.add(S1, "/a", kind);
        assert_eq!(
            reg.contains(S1, "/a", which),
            removed,
            "contains {kind:?} by {which:?}"
        );
        let result = reg.remove(S1, "/a", which);
        assert_eq!(result.is_ok(), removed, "remove {kind:?} by {which:?}");
        let left = if removed { vec![] } else { vec![kind] };
        assert_eq!(reg.kinds_on(S1, "/a"), left);
        assert_eq!(reg.is_empty(), removed);
    }
}

#[test]
fn remove_takes_only_the_selected_kinds_of_that_session_and_path() {
    let mut reg = WatchRegistry::new();
    for kind in ALL_KINDS {
        reg.add(S1, "/a", kind);
        reg.add(S2, "/a", kind);
        reg.add(S1, "/b", kind);
    }
    reg.remove(S1, "/a", WatcherType::Data).unwrap();
    let want = vec![
        WatcherKind::Child,
        WatcherKind::Persistent,
        WatcherKind::PersistentRecursive,
    ];
    assert_eq!(reg.kinds_on(S1, "/a"), want);
    assert_eq!(reg.kinds_on(S2, "/a"), ALL_KINDS.to_vec());
    assert_eq!(reg.kinds_on(S1, "/b"), ALL_KINDS.to_vec());
    reg.remove(S1, "/a", WatcherType::Any).unwrap();
    assert_eq!(reg.kinds_on(S1, "/a"), vec![]);
    assert!(!reg.watches_of(S1).iter().any(|(path, _)| &**path == "/a"));
}

#[test]
fn remove_of_nothing_is_no_watcher() {
    let mut reg = WatchRegistry::new();
    reg.add(S1, "/a", WatcherKind::Data);
    let err = reg.remove(S2, "/a", WatcherType::Any).unwrap_err();
    assert_eq!(
        err,
        NoWatcher {
            session: S2,
            path: "/a".to_owned(),
            which: WatcherType::Any
        }
    );
    assert_eq!(NoWatcher::CODE, -121);
    assert!(reg.remove(S1, "/b", WatcherType::Any).is_err());
    assert!(reg.remove(S1, "/a", WatcherType::Children).is_err());
    reg.remove(S1, "/a", WatcherType::Data).unwrap();
    assert!(
        reg.remove(S1, "/a", WatcherType::Data).is_err(),
        "already removed"
    );
    assert!(reg.is_empty());
}

#[test]
fn removed_watch_no_longer_fires_and_recursive_walk_is_off_again() {
    let mut reg = WatchRegistry::new();
    reg.add(S1, "/", WatcherKind::PersistentRecursive);
    reg.remove(S1, "/", WatcherType::PersistentRecursive)
        .unwrap();
    assert_eq!(reg.totals.recursive_count(), 0);
    reg.add(S2, "/x", WatcherKind::Data);
    assert_eq!(reg.trigger(&create("/a", "/"), 1), vec![]);
}

#[test]
fn remove_session_drops_all_its_watches_and_only_its() {
    let mut reg = WatchRegistry::new();
    for kind in ALL_KINDS {
        reg.add(S1, "/a", kind);
    }
    reg.add(S1, "/b", WatcherKind::Child);
    reg.add(S1, "/", WatcherKind::PersistentRecursive);
    reg.add(S2, "/a", WatcherKind::Data);
    assert_eq!(reg.remove_session(S1), 7);
    assert_eq!(reg.remove_session(S1), 0);
    assert_eq!(reg.watches_of(S1), vec![]);
    assert_eq!(reg.session_count(), 1);
    assert_eq!(reg.path_count(), 1);
    assert_eq!(reg.watch_count(), 1);
    assert_eq!(reg.totals.recursive_count(), 0);
    let got = reg.trigger(&delete("/a", "/"), 3);
    assert_eq!(got, vec![event(S2, NodeDeleted, "/a", 3)]);
    assert!(reg.is_empty());
}

#[test]
fn counts_follow_zookeepers_watch_count() {
    let mut reg = WatchRegistry::new();
    reg.add(S1, "/a", WatcherKind::Data);
    reg.add(S1, "/a", WatcherKind::Exists); // same data-table entry
    reg.add(S1, "/b", WatcherKind::Persistent); // data and child tables
    reg.add(S2, "/a", WatcherKind::Child);
    reg.add(S2, "/c", WatcherKind::PersistentRecursive); // data table only
    assert_eq!(reg.watch_count(), 5);
    assert_eq!(reg.session_watch_count(S1), 3);
    assert_eq!(reg.session_watch_count(S2), 2);
    assert_eq!(reg.session_watch_count(S3), 0);
    assert_eq!(reg.path_watch_count("/a"), 2);
    assert_eq!(reg.path_watch_count("/b"), 2);
    assert_eq!(reg.path_watch_count("/z"), 0);
    assert_eq!(reg.session_count(), 2);
    assert_eq!(reg.path_count(), 3);
    reg.trigger(&delete("/a", "/"), 1);
    assert_eq!(reg.watch_count(), 3);
    assert_eq!(reg.path_count(), 2);
}

#[test]
fn watches_of_lists_every_kind_sorted_for_reattach() {
    let mut reg = WatchRegistry::new();
    reg.add(S1, "/b", WatcherKind::Child);
    reg.add(S1, "/a", WatcherKind::PersistentRecursive);
    reg.add(S1, "/a", WatcherKind::Exists);
    reg.add(S1, "/a", WatcherKind::Data);
    reg.add(S2, "/a", WatcherKind::Persistent);
    let got: Vec<(String, WatcherKind)> = reg
        .watches_of(S1)
        .into_iter()
        .map(|(p, k)| (p.to_string(), k))
        .collect();
    let want = vec![
        ("/a".to_owned(), WatcherKind::Data),
        ("/a".to_owned(), WatcherKind::Exists),
        ("/a".to_owned(), WatcherKind::PersistentRecursive),
        ("/b".to_owned(), WatcherKind::Child),
    ];
    assert_eq!(got, want);
    assert_eq!(reg.watches_of(S3), vec![]);
}

#[test]
fn odd_paths_never_panic() {
    let mut reg = WatchRegistry::new();
    for path in ["", "a", "a/b", "//", "/a/", "/é/ü"] {
        reg.add(S1, path, WatcherKind::PersistentRecursive);
    }
    for path in ["", "a/b/c", "//x", "/a//b", "/é/ü/ñ", "/"] {
        for kind in ALL_CHANGES {
            reg.trigger(&[change(kind, path)], 1);
        }
    }
    // A relative path still walks its '/'-separated ancestors ("a/b", then "a").
    let got = reg.trigger(&set_data("a/b/c"), 2);
    assert_eq!(got, vec![event(S1, NodeDataChanged, "a/b/c", 2)]);
    assert_eq!(reg.watches_of(S1).len(), 6);
}

#[test]
fn output_does_not_depend_on_registration_order() {
    let watches = [
        (S3, "/a/b", WatcherKind::Data),
        (S1, "/a", WatcherKind::PersistentRecursive),
        (S2, "/a/b", WatcherKind::Persistent),
        (S1, "/a/b", WatcherKind::Child),
        (S2, "/", WatcherKind::PersistentRecursive),
        (S3, "/a", WatcherKind::Child),
    ];
    let mut forward = WatchRegistry::new();
    let mut backward = WatchRegistry::new();
    for &(s, p, k) in &watches {
        forward.add(s, p, k);
    }
    for &(s, p, k) in watches.iter().rev() {
        backward.add(s, p, k);
    }
    let mut changes = delete("/a/b", "/a");
    changes.extend(create("/a/b", "/a"));
    let got = forward.trigger(&changes, 1);
    assert_eq!(got, backward.trigger(&changes, 1));
    assert_eq!(got.len(), 6, "{got:?}");
    for s in [S1, S2, S3] {
        assert_eq!(forward.watches_of(s), backward.watches_of(s));
    }
}
