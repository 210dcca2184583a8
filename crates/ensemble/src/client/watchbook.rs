//! The client's record of the watches its session holds, so that a session that
//! re-attaches to another node can re-register them there (ZooKeeper's setWatches).

use std::collections::BTreeSet;

use datatree::{EventType, WatcherKind, WatcherType};
use parking_lot::Mutex;

use crate::ops::Response;

/// What a successful reply means for the book.
#[derive(Debug, Clone)]
pub(crate) enum Note {
    /// exists(watch): an exists watch if the node was missing, else a data watch.
    Exists(String),
    /// getData(watch).
    Data(String),
    /// getChildren(watch).
    Child(String),
    /// addWatch.
    Persistent(String, WatcherKind),
    /// removeWatches.
    Remove(String, WatcherType),
}

/// The set of (path, kind) the session watches.
#[derive(Debug, Default)]
pub(crate) struct WatchBook {
    set: Mutex<BTreeSet<(String, WatcherKind)>>,
}

impl WatchBook {
    /// Applies a note after its request succeeded.
    pub(crate) fn apply(&self, note: Note, reply: &Response) {
        let mut set = self.set.lock();
        match note {
            Note::Exists(p) => {
                let kind = match reply {
                    Response::Exists(Some(_)) => WatcherKind::Data,
                    _ => WatcherKind::Exists,
                };
                set.insert((p, kind));
            }
            Note::Data(p) => {
                set.insert((p, WatcherKind::Data));
            }
            Note::Child(p) => {
                set.insert((p, WatcherKind::Child));
            }
            Note::Persistent(p, k) => {
                set.insert((p, k));
            }
            Note::Remove(p, which) => {
                let gone = |k: WatcherKind| match which {
                    WatcherType::Any => true,
                    WatcherType::Data => matches!(k, WatcherKind::Data | WatcherKind::Exists),
                    WatcherType::Children => k == WatcherKind::Child,
                    WatcherType::Persistent => k == WatcherKind::Persistent,
                    WatcherType::PersistentRecursive => k == WatcherKind::PersistentRecursive,
                };
                set.retain(|(q, k)| *q != p || !gone(*k));
            }
        }
    }

    /// A one-shot watch fired: forget the watches it consumed.
    pub(crate) fn fired(&self, path: &str, event: EventType) {
        let consumed = |k: WatcherKind| match event {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                matches!(k, WatcherKind::Data | WatcherKind::Exists)
            }
            EventType::NodeDeleted => {
                matches!(
                    k,
                    WatcherKind::Data | WatcherKind::Exists | WatcherKind::Child
                )
            }
            EventType::NodeChildrenChanged => k == WatcherKind::Child,
        };
        self.set
            .lock()
            .retain(|(q, k)| q.as_str() != path || !consumed(*k));
    }

    /// Every watch, for setWatches.
    pub(crate) fn all(&self) -> Vec<(String, WatcherKind)> {
        self.set.lock().iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fired_one_shots_are_forgotten_and_persistent_ones_kept() {
        let b = WatchBook::default();
        b.apply(Note::Data("/a".into()), &Response::Done);
        b.apply(Note::Exists("/b".into()), &Response::Exists(None));
        b.apply(Note::Child("/a".into()), &Response::Done);
        b.apply(
            Note::Persistent("/a".into(), WatcherKind::PersistentRecursive),
            &Response::Done,
        );
        b.fired("/a", EventType::NodeDataChanged);
        b.fired("/b", EventType::NodeCreated);
        assert_eq!(
            b.all(),
            vec![
                ("/a".to_string(), WatcherKind::Child),
                ("/a".to_string(), WatcherKind::PersistentRecursive)
            ]
        );
        b.apply(Note::Remove("/a".into(), WatcherType::Any), &Response::Done);
        assert!(b.all().is_empty());
    }
}
