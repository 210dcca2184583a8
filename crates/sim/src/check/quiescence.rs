//! Quiescence: after every fault is healed, all replicas converge to the same applied
//! zxid and the same tree digest, the digest matches an independent replay of the
//! committed history, and a new write commits within a bounded number of ticks
//! (liveness; the bound is checked by the run itself, see [`crate::Simulation`]).

use ensemble::Server;

use crate::reference::Reference;

/// The checker's name in reports.
pub const NAME: &str = "quiescence";

/// Checks converged replicas against each other and against the replay.
pub fn check(servers: &[(u64, &Server)], reference: &Reference) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut first: Option<(u64, u64, u64)> = None;
    for (id, s) in servers {
        let (a, d) = (s.applied_zxid().to_u64(), s.digest());
        match first {
            None => first = Some((*id, a, d)),
            Some((id0, a0, d0)) => {
                if a != a0 || d != d0 {
                    out.push((
                        NAME,
                        format!(
                            "after healing s{id} is at {a:#x} digest {d:#x} but s{id0} at {a0:#x} digest {d0:#x}"
                        ),
                    ));
                }
            }
        }
    }
    for (zx, replica, replay) in reference.digest_mismatches.iter().take(3) {
        out.push((
            NAME,
            format!(
                "replica digest {replica:#x} after {zx:#x} differs from the replay of the agreed history ({replay:#x})"
            ),
        ));
    }
    if let Some((_, a, _)) = first {
        if !reference.knows(a) {
            out.push((
                NAME,
                format!("the replicas' applied zxid {a:#x} is not on the agreed history chain"),
            ));
        }
    }
    for zx in reference.undecodable.iter().take(3) {
        out.push((NAME, format!("committed txn {zx:#x} does not decode")));
    }
    out
}
