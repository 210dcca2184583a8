//! Session properties (ZooKeeper: ephemeral nodes live exactly as long as their
//! session; a session expires only when the cluster stops hearing from its client):
//!
//! - no replica holds an ephemeral node of a session whose close or expiry committed;
//! - every ephemeral owner on a replica is a committed, still-open session;
//! - a session whose client never went silent does not expire in a run without faults
//!   (with faults, a client cut off with a minority can legitimately lose its session,
//!   so the check only applies to calm runs: `calm` below).

use ensemble::Server;

use crate::history::History;
use crate::reference::Reference;

const NAME: &str = "sessions";

/// Checks ephemerals on every replica and unexpected expiries.
pub fn check(
    history: &History,
    reference: &Reference,
    servers: &[(u64, &Server)],
    calm: bool,
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
    if calm {
        for rec in &history.sessions {
            if let Some((zx, true)) = reference.closed_sessions.get(&rec.id) {
                if rec.silent.is_empty() {
                    out.push((
                        NAME,
                        format!(
                            "session {:?} of c{} expired at {zx:#x} in a calm run while its client kept its connection",
                            rec.id, rec.client
                        ),
                    ));
                }
            }
        }
    }
    out.truncate(10);
    out
}
