//! Watch properties (ZooKeeper programmer's guide, "ZooKeeper Watches"):
//!
//! - **ordered**: a connection receives events in zxid order;
//! - **before the change is visible**: a client sees a watch event before any reply
//!   that reflects the change (no reply at applied zxid `z` or later precedes the
//!   event of zxid `z` on the same connection);
//! - **one-time trigger**: a one-shot watch fires at most once per registration, and
//!   no event arrives without a registration that covers it;
//! - **persistent watches see every change**: between `addWatch` and the last reply
//!   on that connection, every committed change of the watched node produced an event;
//!   a recursive one, every create, delete and data change at or below its path.

use std::collections::HashMap;

use ensemble::{AddWatchMode, ConnId, EventType, Request, Response, SessionId, WatcherType};

use crate::history::{Delivery, History};
use crate::reference::Reference;

const NAME: &str = "watches";

#[derive(Default)]
struct Regs {
    /// One-shot data/exists registrations per path.
    data: HashMap<String, u32>,
    /// One-shot child registrations per path.
    child: HashMap<String, u32>,
    persistent: Vec<String>,
    recursive: Vec<String>,
}

impl Regs {
    fn covered_by_persistent(&self, path: &str, ty: EventType) -> bool {
        self.persistent.iter().any(|p| p == path)
            || (ty != EventType::NodeChildrenChanged
                && self.recursive.iter().any(|p| {
                    path == p || path.starts_with(&format!("{}/", p.trim_end_matches('/')))
                }))
    }

    /// Consumes the one-shot registrations the event triggers; false if none did
    /// and no persistent watch covers it.
    fn fire(&mut self, path: &str, ty: EventType) -> bool {
        let mut hit = false;
        let data = matches!(
            ty,
            EventType::NodeCreated | EventType::NodeDeleted | EventType::NodeDataChanged
        );
        let child = matches!(ty, EventType::NodeChildrenChanged | EventType::NodeDeleted);
        if data && self.data.remove(path).is_some() {
            hit = true;
        }
        if child && self.child.remove(path).is_some() {
            hit = true;
        }
        hit || self.covered_by_persistent(path, ty)
    }
}

/// Checks every client stream.
///
/// `strict`: see [`crate::SimConfig::strict_reply_zxid`] (when false, the change right
/// after the `addWatch` reply's zxid may legitimately precede the registration).
pub fn check(
    history: &History,
    reference: &Reference,
    strict: bool,
    coverage: &mut super::Coverage,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    // Registrations live per (session, server): a session that comes back to a server
    // finds its old registrations there.
    let mut regs: HashMap<(SessionId, u64), Regs> = HashMap::new();
    let mut conn_server: HashMap<ConnId, u64> = HashMap::new();
    for op in &history.ops {
        conn_server.insert(op.conn, op.server);
    }
    for (c, stream) in history.streams.iter().enumerate() {
        let mut last_event: HashMap<ConnId, i64> = HashMap::new();
        let mut max_reply: HashMap<ConnId, i64> = HashMap::new();
        // (conn, path, since zxid, removed at zxid) of persistent watches, for the
        // coverage check.
        let mut persistent: Vec<(ConnId, String, i64, Option<i64>)> = Vec::new();
        let mut recursive: Vec<(ConnId, String, i64, Option<i64>)> = Vec::new();
        for item in stream {
            let Some(session) = item.session else {
                continue;
            };
            let server = conn_server.get(&item.conn).copied().unwrap_or(0);
            match &item.what {
                Delivery::Reply(id) => {
                    let Some(op) = history.op(*id) else { continue };
                    let Some(reply) = &op.reply else { continue };
                    let m = max_reply.entry(item.conn).or_insert(reply.zxid);
                    *m = (*m).max(reply.zxid);
                    let r = regs.entry((session, server)).or_default();
                    match (&op.req, &reply.result) {
                        (Request::GetData { path, watch: true }, Ok(_))
                        | (Request::Exists { path, watch: true }, Ok(_)) => {
                            *r.data.entry(path.clone()).or_default() += 1;
                        }
                        (Request::GetChildren { path, watch: true }, Ok(_)) => {
                            *r.child.entry(path.clone()).or_default() += 1;
                        }
                        (Request::AddWatch { path, mode }, Ok(Response::Done)) => {
                            if *mode == AddWatchMode::Persistent {
                                r.persistent.push(path.clone());
                                persistent.push((item.conn, path.clone(), reply.zxid, None));
                            } else {
                                r.recursive.push(path.clone());
                                recursive.push((item.conn, path.clone(), reply.zxid, None));
                            }
                        }
                        (Request::RemoveWatches { path, which }, Ok(_)) => {
                            let (data, child, pers, rec) = match which {
                                WatcherType::Data => (true, false, false, false),
                                WatcherType::Children => (false, true, false, false),
                                WatcherType::Persistent => (false, false, true, false),
                                WatcherType::PersistentRecursive => (false, false, false, true),
                                _ => (true, true, true, true),
                            };
                            if data {
                                r.data.remove(path);
                            }
                            if child {
                                r.child.remove(path);
                            }
                            if pers {
                                r.persistent.retain(|p| p != path);
                                for w in persistent.iter_mut() {
                                    if w.0 == item.conn && w.1 == *path && w.3.is_none() {
                                        w.3 = Some(reply.zxid);
                                    }
                                }
                            }
                            if rec {
                                r.recursive.retain(|p| p != path);
                                for w in recursive.iter_mut() {
                                    if w.0 == item.conn && w.1 == *path && w.3.is_none() {
                                        w.3 = Some(reply.zxid);
                                    }
                                }
                            }
                        }
                        (Request::Close, Ok(_)) => {
                            regs.retain(|(s, _), _| *s != session);
                        }
                        _ => {}
                    }
                }
                Delivery::Watch(ev) => {
                    let z = ev.zxid;
                    if let Some(prev) = last_event.insert(item.conn, z) {
                        if z < prev {
                            out.push((
                                NAME,
                                format!(
                                    "c{c} conn{}: event at {z:#x} after an event at {prev:#x}",
                                    item.conn.0
                                ),
                            ));
                        }
                    }
                    if let Some(m) = max_reply.get(&item.conn) {
                        if *m >= z {
                            out.push((
                                NAME,
                                format!(
                                    "c{c} conn{}: event {:?} {} at {z:#x} arrived after a reply at {m:#x} that already showed it",
                                    item.conn.0, ev.event_type, ev.path
                                ),
                            ));
                        }
                    }
                    let r = regs.entry((session, server)).or_default();
                    if !r.fire(&ev.path, ev.event_type) {
                        out.push((
                            NAME,
                            format!(
                                "c{c} conn{}: event {:?} {} at {z:#x} without a registration (fired twice?)",
                                item.conn.0, ev.event_type, ev.path
                            ),
                        ));
                    }
                }
                Delivery::Session(_) => {}
            }
        }
        // Recursive watches saw every create, delete and data change below them.
        for (conn, root, since, removed) in recursive {
            let Some(&last) = max_reply.get(&conn) else {
                continue;
            };
            let until = removed.map_or(last, |r| r.min(last));
            let prefix = format!("{}/", root.trim_end_matches('/'));
            let from = reference
                .changes
                .partition_point(|(z, _, _)| (*z as i64) <= since);
            for (zx, path, kind) in &reference.changes[from..] {
                let z = *zx as i64;
                if z > until {
                    break;
                }
                if *kind == datatree::ChangeKind::ChildrenChanged
                    || !(*path == root || path.starts_with(&prefix))
                {
                    continue;
                }
                if !strict && reference.successor(since.max(0) as u64) == Some(*zx) {
                    continue;
                }
                coverage.watch_changes_checked += 1;
                let seen = stream.iter().any(|it| {
                    it.conn == conn
                        && matches!(&it.what, Delivery::Watch(e) if e.zxid == z && *e.path == **path)
                });
                if !seen {
                    out.push((
                        NAME,
                        format!(
                            "c{c} conn{}: recursive watch on {root} missed {kind:?} {path} at {z:#x}",
                            conn.0
                        ),
                    ));
                }
            }
        }
        // Persistent watches saw every change up to the connection's last reply.
        for (conn, path, since, removed) in persistent {
            let Some(&last) = max_reply.get(&conn) else {
                continue;
            };
            // A removal at zxid r: changes after r need not be reported.
            let until = removed.map_or(last, |r| r.min(last));
            let Some(changes) = reference.paths.get(&path) else {
                continue;
            };
            for (zx, _) in changes {
                let z = *zx as i64;
                if z <= since || z > until {
                    continue;
                }
                if !strict && reference.successor(since.max(0) as u64) == Some(*zx) {
                    continue;
                }
                coverage.watch_changes_checked += 1;
                let seen = stream.iter().any(|it| {
                    it.conn == conn
                        && matches!(&it.what, Delivery::Watch(e) if e.zxid == z && *e.path == *path)
                });
                if !seen {
                    out.push((
                        NAME,
                        format!(
                            "c{c} conn{}: persistent watch on {path} missed the change at {z:#x}",
                            conn.0
                        ),
                    ));
                }
            }
        }
    }
    out.truncate(10);
    out
}
