//! Model test: the registry against a naive list of watches scanned linearly.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure report

use std::collections::BTreeSet;
use std::sync::Arc;

use proptest::prelude::*;

use super::WatchRegistry;
use crate::event::{
    Change, ChangeKind, EventType, SessionId, WatchedEvent, WatcherKind, WatcherType,
};

/// The reference: every (session, path, kind) watch, no index, no bit sets.
#[derive(Debug, Default)]
struct Model {
    watches: Vec<(SessionId, String, WatcherKind)>,
}

fn is_one_shot(kind: WatcherKind) -> bool {
    matches!(
        kind,
        WatcherKind::Data | WatcherKind::Exists | WatcherKind::Child
    )
}

/// Whether `ancestor` is a strict ancestor of the absolute path `path`.
fn is_strict_ancestor(ancestor: &str, path: &str) -> bool {
    if ancestor == path {
        return false;
    }
    if ancestor == "/" {
        return path.starts_with('/');
    }
    path.strip_prefix(ancestor)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// ZooKeeper's rules spelled out per (watch kind, change kind), straight from the
/// Watches section of ZK-SEMANTICS.md.
fn fires_on_path(kind: WatcherKind, change: ChangeKind) -> bool {
    use ChangeKind as C;
    use WatcherKind as W;
    match kind {
        W::Data | W::Exists => change != C::ChildrenChanged,
        W::Child => matches!(change, C::Deleted | C::ChildrenChanged),
        W::Persistent => true,
        W::PersistentRecursive => change != C::ChildrenChanged,
    }
}

fn removes(which: WatcherType, kind: WatcherKind) -> bool {
    use WatcherKind as W;
    match which {
        WatcherType::Children => kind == W::Child,
        WatcherType::Data => matches!(kind, W::Data | W::Exists),
        WatcherType::Persistent => kind == W::Persistent,
        WatcherType::PersistentRecursive => kind == W::PersistentRecursive,
        WatcherType::Any => true,
    }
}

fn event_type(change: ChangeKind) -> EventType {
    match change {
        ChangeKind::Created => EventType::NodeCreated,
        ChangeKind::Deleted => EventType::NodeDeleted,
        ChangeKind::DataChanged => EventType::NodeDataChanged,
        ChangeKind::ChildrenChanged => EventType::NodeChildrenChanged,
    }
}

impl Model {
    fn add(&mut self, session: SessionId, path: &str, kind: WatcherKind) -> bool {
        let watch = (session, path.to_owned(), kind);
        if self.watches.contains(&watch) {
            return false;
        }
        self.watches.push(watch);
        true
    }

    fn trigger(&mut self, changes: &[Change], zxid: i64) -> Vec<(SessionId, WatchedEvent)> {
        let mut out = Vec::new();
        for change in changes {
            let mut sessions = BTreeSet::new();
            for (session, path, kind) in &self.watches {
                let on_path = **path == *change.path && fires_on_path(*kind, change.kind);
                let recursive_above = *kind == WatcherKind::PersistentRecursive
                    && change.kind != ChangeKind::ChildrenChanged
                    && is_strict_ancestor(path, &change.path);
                if on_path || recursive_above {
                    sessions.insert(*session);
                }
            }
            self.watches.retain(|(_, path, kind)| {
                !(**path == *change.path && is_one_shot(*kind) && fires_on_path(*kind, change.kind))
            });
            for session in sessions {
                let event = WatchedEvent {
                    event_type: event_type(change.kind),
                    path: Arc::clone(&change.path),
                    zxid,
                };
                out.push((session, event));
            }
        }
        out
    }

    fn remove(&mut self, session: SessionId, path: &str, which: WatcherType) -> bool {
        let before = self.watches.len();
        self.watches
            .retain(|(s, p, k)| !(*s == session && p == path && removes(which, *k)));
        self.watches.len() != before
    }

    fn remove_session(&mut self, session: SessionId) -> usize {
        let before = self.watches.len();
        self.watches.retain(|(s, _, _)| *s != session);
        before - self.watches.len()
    }

    fn watches_of(&self, session: SessionId) -> Vec<(String, WatcherKind)> {
        let mut all: Vec<_> = self
            .watches
            .iter()
            .filter(|(s, _, _)| *s == session)
            .map(|(_, p, k)| (p.clone(), *k))
            .collect();
        all.sort();
        all
    }

    /// ZooKeeper's count: (session, path) pairs in the data table plus in the child one.
    fn zk_count(&self, keep: impl Fn(SessionId, &str) -> bool) -> usize {
        use WatcherKind as W;
        let mut data = BTreeSet::new();
        let mut child = BTreeSet::new();
        for (session, path, kind) in self.watches.iter().filter(|(s, p, _)| keep(*s, p)) {
            if matches!(
                kind,
                W::Data | W::Exists | W::Persistent | W::PersistentRecursive
            ) {
                data.insert((*session, path.clone()));
            }
            if matches!(kind, W::Child | W::Persistent) {
                child.insert((*session, path.clone()));
            }
        }
        data.len() + child.len()
    }
}

const PATHS: [&str; 8] = ["/", "/a", "/a/b", "/a/b/c", "/a/bc", "/ab", "/b", "/b/a"];
const SESSIONS: [SessionId; 4] = [SessionId(-3), SessionId(1), SessionId(2), SessionId(77)];

#[derive(Debug, Clone)]
enum Op {
    Add(SessionId, &'static str, WatcherKind),
    Trigger(Vec<(ChangeKind, &'static str)>),
    Remove(SessionId, &'static str, WatcherType),
    RemoveSession(SessionId),
}

fn path() -> impl Strategy<Value = &'static str> {
    prop::sample::select(&PATHS[..])
}

fn session() -> impl Strategy<Value = SessionId> {
    prop::sample::select(&SESSIONS[..])
}

fn watcher_kind() -> impl Strategy<Value = WatcherKind> {
    prop::sample::select(vec![
        WatcherKind::Data,
        WatcherKind::Exists,
        WatcherKind::Child,
        WatcherKind::Persistent,
        WatcherKind::PersistentRecursive,
    ])
}

fn watcher_type() -> impl Strategy<Value = WatcherType> {
    prop::sample::select(vec![
        WatcherType::Children,
        WatcherType::Data,
        WatcherType::Any,
        WatcherType::Persistent,
        WatcherType::PersistentRecursive,
    ])
}

fn change_kind() -> impl Strategy<Value = ChangeKind> {
    prop::sample::select(vec![
        ChangeKind::Created,
        ChangeKind::Deleted,
        ChangeKind::DataChanged,
        ChangeKind::ChildrenChanged,
    ])
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (session(), path(), watcher_kind()).prop_map(|(s, p, k)| Op::Add(s, p, k)),
        4 => prop::collection::vec((change_kind(), path()), 0..4).prop_map(Op::Trigger),
        2 => (session(), path(), watcher_type()).prop_map(|(s, p, w)| Op::Remove(s, p, w)),
        1 => session().prop_map(Op::RemoveSession),
    ]
}

fn assert_same_state(reg: &WatchRegistry, model: &Model) {
    for session in SESSIONS {
        let got: Vec<(String, WatcherKind)> = reg
            .watches_of(session)
            .into_iter()
            .map(|(p, k)| (p.to_string(), k))
            .collect();
        assert_eq!(got, model.watches_of(session), "watches of {session}");
        let want = model.zk_count(|s, _| s == session);
        assert_eq!(reg.session_watch_count(session), want, "count of {session}");
    }
    for path in PATHS {
        assert_eq!(
            reg.path_watch_count(path),
            model.zk_count(|_, p| p == path),
            "count on {path}"
        );
    }
    assert_eq!(reg.watch_count(), model.zk_count(|_, _| true));
    let sessions: BTreeSet<_> = model.watches.iter().map(|(s, _, _)| *s).collect();
    let paths: BTreeSet<_> = model.watches.iter().map(|(_, p, _)| p.clone()).collect();
    assert_eq!(reg.session_count(), sessions.len());
    assert_eq!(reg.path_count(), paths.len());
    assert_eq!(reg.is_empty(), model.watches.is_empty());
    let recursive = model
        .watches
        .iter()
        .filter(|w| w.2 == WatcherKind::PersistentRecursive)
        .count();
    assert_eq!(reg.totals.recursive_count(), recursive);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn registry_matches_naive_model(ops in prop::collection::vec(op(), 1..60)) {
        let mut reg = WatchRegistry::new();
        let mut model = Model::default();
        for (zxid, op) in (1..).zip(ops) {
            match op {
                Op::Add(s, p, k) => prop_assert_eq!(reg.add(s, p, k), model.add(s, p, k)),
                Op::Trigger(raw) => {
                    let changes: Vec<Change> =
                        raw.iter().map(|&(kind, p)| Change { path: Arc::from(p), kind }).collect();
                    prop_assert_eq!(reg.trigger(&changes, zxid), model.trigger(&changes, zxid));
                }
                Op::Remove(s, p, w) => {
                    prop_assert_eq!(reg.contains(s, p, w), model.watches.iter().any(|(ms, mp, mk)| *ms == s && mp == p && removes(w, *mk)));
                    prop_assert_eq!(reg.remove(s, p, w).is_ok(), model.remove(s, p, w));
                }
                Op::RemoveSession(s) => prop_assert_eq!(reg.remove_session(s), model.remove_session(s)),
            }
            assert_same_state(&reg, &model);
        }
    }
}
