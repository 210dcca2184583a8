//! Primary uniqueness (Zab, property "at most one established leader per epoch"):
//! two servers never both lead an established epoch `e`. The harness also checks the
//! consequence on zxids: no two different txns are ever proposed with one zxid.

use std::collections::BTreeMap;

use zab_core::{Phase, Role, ServerId};

use crate::common::Cluster;

#[derive(Default)]
pub struct OneLeaderPerEpoch {
    leaders: BTreeMap<u32, ServerId>,
    /// Highest epoch ever established.
    pub max_established: u32,
}

impl OneLeaderPerEpoch {
    pub fn check(&mut self, c: &Cluster) -> Result<(), String> {
        for n in c.nodes.values() {
            let Some(s) = n.status() else { continue };
            if s.role == Role::Leading && s.phase == Phase::Broadcast {
                let e = s.leader_epoch;
                let prev = *self.leaders.entry(e).or_insert(n.id);
                if prev != n.id {
                    return Err(format!(
                        "two established leaders in epoch {e}: {prev} and {}",
                        n.id
                    ));
                }
                self.max_established = self.max_established.max(e);
            }
        }
        Ok(())
    }
}
