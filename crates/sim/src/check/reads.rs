//! Sequential consistency of local reads (ZooKeeper's guarantees of *sequential
//! consistency* and *single system image*): a read served by any replica shows the
//! state of the agreed history exactly at the zxid the replica had applied, and a
//! session never sees an older state than one it already saw, even after moving to
//! another server.

use std::collections::HashMap;

use ensemble::{Error, Request, Response, SessionId};

use crate::history::History;
use crate::reference::{NodeState, Reference};

const NAME: &str = "reads";

fn describe(s: &NodeState) -> String {
    match s {
        None => "absent".into(),
        Some((d, v)) => format!("{:?} v{v}", String::from_utf8_lossy(d)),
    }
}

/// Checks every read reply against the replay, and session monotonicity.
///
/// `strict`: see [`crate::SimConfig::strict_reply_zxid`].
pub fn check(
    history: &History,
    reference: &Reference,
    strict: bool,
    coverage: &mut super::Coverage,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut seen: HashMap<SessionId, i64> = HashMap::new();
    for (c, stream) in history.streams.iter().enumerate() {
        for item in stream {
            let crate::history::Delivery::Reply(id) = item.what else {
                continue;
            };
            let (Some(op), Some(s)) = (history.op(id), item.session) else {
                continue;
            };
            let Some(reply) = &op.reply else { continue };
            if reply.result.is_err() || matches!(op.req, Request::Connect { .. }) {
                continue;
            }
            let last = seen.entry(s).or_insert(reply.zxid);
            if reply.zxid < *last {
                out.push((
                    NAME,
                    format!(
                        "session {s:?} (c{c}) went back in time: reply at {:#x} after one at {:#x}",
                        reply.zxid, *last
                    ),
                ));
            }
            *last = (*last).max(reply.zxid);
        }
    }
    for op in &history.ops {
        let Some(reply) = &op.reply else { continue };
        let z = reply.zxid.max(0) as u64;
        if !reference.knows(z) {
            continue;
        }
        let (path, observed) = match (&op.req, &reply.result) {
            (Request::GetData { path, .. }, Ok(Response::Data(d, st))) => {
                (path, Some((d.clone(), st.version)))
            }
            (Request::GetData { path, .. }, Err(Error::Tree(datatree::Error::NoNode(_)))) => {
                (path, None)
            }
            (Request::GetChildren { path, .. }, result) => {
                let seen = match result {
                    Ok(Response::Children(c, _)) => {
                        let mut c = c.clone();
                        c.sort_unstable();
                        Some(c)
                    }
                    Err(Error::Tree(datatree::Error::NoNode(_))) => None,
                    _ => continue,
                };
                // Known only once the replay saw the path change.
                if let Some(expected) = reference.children_at(path, z) {
                    coverage.reads_checked += 1;
                    if expected != seen {
                        out.push((
                            NAME,
                            format!(
                                "c{} getChildren({path}) on s{} at {z:#x} saw {seen:?}, the history has {expected:?}",
                                op.client, op.server
                            ),
                        ));
                    }
                }
                continue;
            }
            (Request::Exists { path, .. }, Ok(Response::Exists(st))) => {
                coverage.reads_checked += 1;
                let expected = reference.state_at(path, z);
                let fits = |e: &NodeState| match (st, e) {
                    (None, None) => true,
                    (Some(st), Some((_, v))) => st.version == *v,
                    _ => false,
                };
                let ok = fits(&expected)
                    || (!strict
                        && reference
                            .successor(z)
                            .is_some_and(|n| fits(&reference.state_at(path, n))));
                if !ok {
                    out.push((
                        NAME,
                        format!(
                            "c{} exists({path}) at {z:#x} saw {:?}, the history has {}",
                            op.client,
                            st.map(|s| s.version),
                            describe(&expected)
                        ),
                    ));
                }
                continue;
            }
            _ => continue,
        };
        coverage.reads_checked += 1;
        let expected = reference.state_at(path, z);
        let lagged = !strict
            && reference
                .successor(z)
                .is_some_and(|n| reference.state_at(path, n) == observed);
        if expected != observed && !lagged {
            out.push((
                NAME,
                format!(
                    "c{} getData({path}) on s{} at {z:#x} saw {}, the history has {}",
                    op.client,
                    op.server,
                    describe(&observed),
                    describe(&expected)
                ),
            ));
        }
    }
    out.truncate(10);
    out
}
