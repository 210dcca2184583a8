//! The coordinator's table of watch registrations: which waiter gets which event.
//! Pure bookkeeping (no I/O), so that the routing rules can be tested on their own.

use std::collections::HashMap;

use crossbeam_channel::Sender;
use ensemble::{EventType, WatchedEvent};

use crate::coordinator::Notice;

/// What a one-shot registration waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// exists / getData watches: created, data changed, deleted.
    Data,
    /// getChildren watches: children changed, deleted.
    Child,
}

impl Kind {
    /// Whether an event of type `t` on the registered path fires this kind
    /// (ZooKeeper's rules).
    fn fired_by(self, t: EventType) -> bool {
        match t {
            EventType::NodeCreated | EventType::NodeDataChanged => self == Kind::Data,
            EventType::NodeChildrenChanged => self == Kind::Child,
            _ => true,
        }
    }
}

struct Entry {
    id: u64,
    kind: Kind,
    tx: Sender<Notice>,
}

struct Recursive {
    id: u64,
    prefix: String,
    tx: Sender<Notice>,
}

/// Registrations by path (one-shot) and by subtree (recursive).
#[derive(Default)]
pub(crate) struct WatchTable {
    one_shot: HashMap<String, Vec<Entry>>,
    recursive: Vec<Recursive>,
}

/// Whether `path` is `prefix` or below it (whole segments).
pub(crate) fn prefix_matches(prefix: &str, path: &str) -> bool {
    prefix == "/"
        || path == prefix
        || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

impl WatchTable {
    /// Adds a one-shot registration.
    pub(crate) fn add_one_shot(&mut self, id: u64, path: &str, kind: Kind, tx: Sender<Notice>) {
        self.one_shot
            .entry(path.to_string())
            .or_default()
            .push(Entry { id, kind, tx });
    }

    /// Adds a recursive registration.
    pub(crate) fn add_recursive(&mut self, id: u64, prefix: &str, tx: Sender<Notice>) {
        self.recursive.push(Recursive {
            id,
            prefix: prefix.to_string(),
            tx,
        });
    }

    /// Removes registration `id`, whatever its kind.
    pub(crate) fn remove(&mut self, id: u64) {
        self.one_shot.retain(|_, v| {
            v.retain(|e| e.id != id);
            !v.is_empty()
        });
        self.recursive.retain(|r| r.id != id);
    }

    /// Hands `ev` to every registration it fires; one-shot ones are consumed. Returns
    /// how many notices were delivered (a dropped receiver does not count).
    pub(crate) fn route(&mut self, ev: &WatchedEvent) -> u64 {
        let mut sent = 0u64;
        if let Some(list) = self.one_shot.get_mut(&*ev.path) {
            let mut i = 0;
            while i < list.len() {
                if list[i].kind.fired_by(ev.event_type) {
                    let e = list.swap_remove(i);
                    if e.tx.send(Notice::Watch(ev.clone())).is_ok() {
                        sent += 1;
                    }
                } else {
                    i += 1;
                }
            }
            if list.is_empty() {
                self.one_shot.remove(&*ev.path);
            }
        }
        // Persistent recursive watches never report children changes.
        if ev.event_type != EventType::NodeChildrenChanged {
            for r in &self.recursive {
                if prefix_matches(&r.prefix, &ev.path)
                    && r.tx.send(Notice::Watch(ev.clone())).is_ok()
                {
                    sent += 1;
                }
            }
        }
        sent
    }

    /// Takes every one-shot registration (a state change voids them) and returns
    /// their senders plus the recursive ones' (which stay).
    pub(crate) fn take_for_state_change(&mut self) -> Vec<Sender<Notice>> {
        let mut out: Vec<Sender<Notice>> = self
            .one_shot
            .drain()
            .flat_map(|(_, v)| v)
            .map(|e| e.tx)
            .collect();
        out.extend(self.recursive.iter().map(|r| r.tx.clone()));
        out
    }

    /// The recursive prefixes (to register again after a reconnection).
    pub(crate) fn recursive_prefixes(&self) -> Vec<String> {
        self.recursive.iter().map(|r| r.prefix.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use crossbeam_channel::Receiver;
    use proptest::prelude::*;

    use super::*;

    fn ev(t: EventType, path: &str) -> WatchedEvent {
        WatchedEvent {
            event_type: t,
            path: Arc::from(path),
            zxid: 1,
        }
    }

    #[test]
    fn prefixes_match_whole_segments() {
        assert!(prefix_matches("/a", "/a"));
        assert!(prefix_matches("/a", "/a/b"));
        assert!(!prefix_matches("/a", "/ab"));
        assert!(prefix_matches("/", "/x/y"));
    }

    #[test]
    fn deletion_consumes_both_kinds_and_children_change_only_child_watches() {
        let mut t = WatchTable::default();
        let (tx, rx) = crossbeam_channel::unbounded();
        t.add_one_shot(1, "/p", Kind::Data, tx.clone());
        t.add_one_shot(2, "/p", Kind::Child, tx.clone());
        assert_eq!(t.route(&ev(EventType::NodeChildrenChanged, "/p")), 1);
        assert_eq!(t.route(&ev(EventType::NodeChildrenChanged, "/p")), 0);
        t.add_one_shot(3, "/p", Kind::Child, tx);
        assert_eq!(t.route(&ev(EventType::NodeDeleted, "/p")), 2);
        assert_eq!(rx.len(), 3);
        assert!(t.one_shot.is_empty());
    }

    const PATHS: [&str; 3] = ["/a", "/a/b", "/c"];
    const TYPES: [EventType; 4] = [
        EventType::NodeCreated,
        EventType::NodeDeleted,
        EventType::NodeDataChanged,
        EventType::NodeChildrenChanged,
    ];

    #[derive(Debug, Clone)]
    enum Op {
        OneShot(usize, bool),
        Recursive(usize),
        Remove(u64),
        Event(usize, usize),
        StateChange,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..3usize, any::<bool>()).prop_map(|(p, d)| Op::OneShot(p, d)),
            (0..3usize).prop_map(Op::Recursive),
            (1..12u64).prop_map(Op::Remove),
            (0..3usize, 0..4usize).prop_map(|(p, t)| Op::Event(p, t)),
            Just(Op::StateChange),
        ]
    }

    /// Model: a list of live registrations (id, path, kind-or-recursive); an event
    /// goes to every live registration it fires, and one-shot ones then die.
    #[derive(Clone, Copy, PartialEq, Debug)]
    enum M {
        Data,
        Child,
        Rec,
    }

    proptest! {
        #[test]
        fn routing_matches_the_model(ops in proptest::collection::vec(op(), 0..60)) {
            let mut t = WatchTable::default();
            let mut model: BTreeMap<u64, (usize, M)> = BTreeMap::new();
            let mut rxs: BTreeMap<u64, Receiver<Notice>> = BTreeMap::new();
            let mut got: BTreeMap<u64, usize> = BTreeMap::new();
            let mut want: BTreeMap<u64, usize> = BTreeMap::new();
            let mut next = 1u64;
            for o in ops {
                match o {
                    Op::OneShot(p, data) => {
                        let (tx, rx) = crossbeam_channel::unbounded();
                        let k = if data { Kind::Data } else { Kind::Child };
                        t.add_one_shot(next, PATHS[p], k, tx);
                        model.insert(next, (p, if data { M::Data } else { M::Child }));
                        rxs.insert(next, rx);
                        next += 1;
                    }
                    Op::Recursive(p) => {
                        let (tx, rx) = crossbeam_channel::unbounded();
                        t.add_recursive(next, PATHS[p], tx);
                        model.insert(next, (p, M::Rec));
                        rxs.insert(next, rx);
                        next += 1;
                    }
                    Op::Remove(id) => {
                        t.remove(id);
                        model.remove(&id);
                    }
                    Op::Event(p, ty) => {
                        let e = ev(TYPES[ty], PATHS[p]);
                        let mut expected = 0;
                        let mut dead = Vec::new();
                        for (id, (mp, m)) in &model {
                            let fires = match m {
                                M::Rec => TYPES[ty] != EventType::NodeChildrenChanged
                                    && prefix_matches(PATHS[*mp], PATHS[p]),
                                M::Data => *mp == p && TYPES[ty] != EventType::NodeChildrenChanged,
                                M::Child => *mp == p && matches!(TYPES[ty], EventType::NodeChildrenChanged | EventType::NodeDeleted),
                            };
                            if fires {
                                expected += 1;
                                *want.entry(*id).or_default() += 1;
                                if *m != M::Rec {
                                    dead.push(*id);
                                }
                            }
                        }
                        for d in dead {
                            model.remove(&d);
                        }
                        prop_assert_eq!(t.route(&e), expected);
                    }
                    Op::StateChange => {
                        let n = t.take_for_state_change().len();
                        prop_assert_eq!(n, model.len());
                        model.retain(|_, (_, m)| *m == M::Rec);
                    }
                }
            }
            for (id, rx) in &rxs {
                let n = rx.try_iter().count();
                if n > 0 {
                    got.insert(*id, n);
                }
            }
            prop_assert_eq!(got, want);
        }
    }
}
