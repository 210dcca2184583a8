//! Session properties (ZooKeeper: ephemeral nodes live exactly as long as their
//! session; a session expires only when the cluster stops hearing from its client):
//!
//! - no replica holds an ephemeral node of a session whose close or expiry committed;
//! - every ephemeral owner on a replica is a committed, still-open session;
//! - no session expires while its client kept heartbeating and the cluster was calm:
//!   an expiry at time `T` is a violation when no fault (partition, lossy links,
//!   crash, pause) touched the window `[T - 2 × timeout, T]` and the client did not go
//!   silent in it (with faults, a client cut off with a minority can legitimately lose
//!   its session).

use ensemble::Server;

use crate::history::History;
use crate::reference::Reference;

const NAME: &str = "sessions";

/// Checks ephemerals on every replica and unexpected expiries.
pub fn check(
    history: &History,
    reference: &Reference,
    servers: &[(u64, &Server)],
    disturbances: &[(u64, u64)],
    applied_at_us: &std::collections::BTreeMap<u64, u64>,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (id, s) in servers {
        for owner in s.tree().ephemeral_owners() {
            if let Some((zx, _)) = reference.closed_sessions.get(&owner) {
                let paths = s.tree().ephemerals(owner);
                out.push((
                    NAME,
                    format!(
                        "s{id} still holds ephemerals {paths:?} of session {owner:?} closed at {zx:#x}"
                    ),
                ));
            } else if !reference.created_sessions.contains(&owner) {
                out.push((
                    NAME,
                    format!("s{id} holds ephemerals of session {owner:?} that was never created"),
                ));
            }
        }
    }
    let overlaps = |a: u64, b: u64, (x, y): (u64, u64)| x <= b && a <= y;
    for rec in &history.sessions {
        let Some((zx, true)) = reference.closed_sessions.get(&rec.id) else {
            continue;
        };
        let Some(&t) = applied_at_us.get(zx) else {
            continue;
        };
        let window = 2 * u64::from(rec.timeout_ms) * 1000;
        let start = t.saturating_sub(window);
        if rec.opened_us > start {
            continue;
        }
        let disturbed = disturbances.iter().any(|d| overlaps(start, t, *d))
            || rec.silent.iter().any(|d| overlaps(start, t, *d));
        if !disturbed {
            out.push((
                NAME,
                format!(
                    "session {:?} of c{} expired at {zx:#x} ({:.3}ms) although the cluster was calm and its client heartbeating for the {:.3}ms before",
                    rec.id,
                    rec.client,
                    t as f64 / 1000.0,
                    window as f64 / 1000.0
                ),
            ));
        }
    }
    out.truncate(10);
    out
}
