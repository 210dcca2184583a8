//! The remote client's record of its session's watches, so a session that moves to
//! another server can register them there again (`SetWatches`).

use std::collections::BTreeSet;

use datatree::{EventType, WatcherKind, WatcherType};
use ensemble::{AddWatchMode, Request, Response};

/// What a request registers if it succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Note {
    /// exists(watch): a data watch if the node exists, else an exists watch.
    Exists(String),
    /// A one-shot or persistent watch of this kind.
    Add(String, WatcherKind),
    /// removeWatches.
    Remove(String, WatcherType),
}

impl Note {
    /// The note for `req`, if it registers or removes a watch.
    pub(crate) fn of(req: &Request) -> Option<Note> {
        Some(match req {
            Request::Exists { path, watch: true } => Note::Exists(path.clone()),
            Request::GetData { path, watch: true } => Note::Add(path.clone(), WatcherKind::Data),
            Request::GetChildren { path, watch: true } => {
                Note::Add(path.clone(), WatcherKind::Child)
            }
            Request::AddWatch { path, mode } => Note::Add(
                path.clone(),
                match mode {
                    AddWatchMode::PersistentRecursive => WatcherKind::PersistentRecursive,
                    _ => WatcherKind::Persistent,
                },
            ),
            Request::RemoveWatches { path, which } => Note::Remove(path.clone(), *which),
            _ => return None,
        })
    }
}

/// The session's watches: (path, kind).
#[derive(Debug, Default)]
pub(crate) struct Book {
    set: BTreeSet<(String, WatcherKind)>,
}

fn removed_by(which: WatcherType, k: WatcherKind) -> bool {
    match which {
        WatcherType::Any => true,
        WatcherType::Data => matches!(k, WatcherKind::Data | WatcherKind::Exists),
        WatcherType::Children => k == WatcherKind::Child,
        WatcherType::Persistent => k == WatcherKind::Persistent,
        WatcherType::PersistentRecursive => k == WatcherKind::PersistentRecursive,
    }
}

fn consumed_by(event: EventType, k: WatcherKind) -> bool {
    match event {
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
    }
}

impl Book {
    /// A request carrying `note` succeeded with `resp`.
    pub(crate) fn on_reply(&mut self, note: Note, resp: &Response) {
        match note {
            Note::Exists(p) => {
                let kind = if matches!(resp, Response::Exists(Some(_))) {
                    WatcherKind::Data
                } else {
                    WatcherKind::Exists
                };
                self.set.insert((p, kind));
            }
            Note::Add(p, k) => {
                self.set.insert((p, k));
            }
            Note::Remove(p, which) => self.set.retain(|(q, k)| *q != p || !removed_by(which, *k)),
        }
    }

    /// A watch event arrived: the one-shot watches it consumed are gone.
    pub(crate) fn on_event(&mut self, path: &str, event: EventType) {
        self.set
            .retain(|(q, k)| q.as_str() != path || !consumed_by(event, *k));
    }

    /// Every watch, for `SetWatches`.
    pub(crate) fn all(&self) -> Vec<(String, WatcherKind)> {
        self.set.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req_watch(path: &str) -> Request {
        Request::GetData {
            path: path.into(),
            watch: true,
        }
    }

    #[test]
    fn one_shots_go_when_fired_persistent_ones_stay() {
        let mut b = Book::default();
        let n = Note::of(&req_watch("/a")).into_iter().next();
        assert_eq!(n, Some(Note::Add("/a".into(), WatcherKind::Data)));
        b.on_reply(Note::Add("/a".into(), WatcherKind::Data), &Response::Done);
        b.on_reply(Note::Exists("/b".into()), &Response::Exists(None));
        b.on_reply(
            Note::Add("/a".into(), WatcherKind::PersistentRecursive),
            &Response::Done,
        );
        b.on_event("/a", EventType::NodeDataChanged);
        assert_eq!(
            b.all(),
            vec![
                ("/a".to_string(), WatcherKind::PersistentRecursive),
                ("/b".to_string(), WatcherKind::Exists)
            ]
        );
        b.on_event("/b", EventType::NodeCreated);
        b.on_reply(Note::Remove("/a".into(), WatcherType::Any), &Response::Done);
        assert!(b.all().is_empty());
        assert!(Note::of(&Request::Sync { path: "/".into() }).is_none());
    }
}
